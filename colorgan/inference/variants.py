"""Several plausible colourings of one photo, for a model trained with --hints.

A gray photo does not say whether the car was red or blue; the automatic colorization gives the average of the
colours it thinks possible, which is a pale brown where they disagree. A variant is what the hint model makes
of the photo under a few hints drawn from its own automatic prediction: at VARIANT_POINTS random points of the
photo, the predicted colour with its hue turned by up to MAX_TURN_DEGREES (any hue where the prediction is
gray) and its chroma set between CHROMA_RANGE. The network then spreads each hint over the object it lies on,
so a variant is a whole, consistent colouring (a red car rather than red specks), and its hints are returned
with it: on the page, picking a variant puts its hints on the photo, to be moved or changed.

Each variant keeps the photo's luminance (only ab is predicted). Seeded: the same seed gives the same variants.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from colorgan.bundled import SHIPPED_WEIGHTS
from colorgan.errors import ColorganError
from colorgan.inference.hints import Hint, parse_hints

HINT_WEIGHTS = SHIPPED_WEIGHTS / "hints"  # the shipped --hints model: the default for variants

VARIANT_POINTS = 3  # hints per variant: enough to recolour two or three objects, few enough to stay plausible
MAX_TURN_DEGREES = 60.0  # hue turn from the model's own colour at the point: stays near the colours it thought of
GRAY_CHROMA = 4.0  # Lab chroma below which the prediction has no hue to keep: any hue is drawn
CHROMA_RANGE = (12.0, 30.0)  # Lab chroma of a hint: visible colour, below the saturation of signs and paint
HINT_LIGHTNESS = 60.0  # L of a hint's RGB colour (only its ab counts): mid-gray keeps most ab in the sRGB gamut
EDGE = 0.1  # hints are drawn from the photo's inner 80% in each direction: frames' edges are seldom the subject
PATCH = 2  # the prediction at a point is its mean over (2 * PATCH + 1)^2 working pixels: no single-pixel noise
MAX_VARIANTS = 16
DEFAULT_VARIANTS = 4  # the server's and the page's strip


class Variant(NamedTuple):
    image: np.ndarray  # uint8 RGB (RGBA with the input's alpha), the photo's size
    hints: list[Hint]  # the hints that made it, in the photo's pixels


def check_variant_count(k) -> int:
    """The number of variants asked for, 1..MAX_VARIANTS; a ColorganError otherwise."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_VARIANTS:
        raise ColorganError(f"variants: give a whole number from 1 to {MAX_VARIANTS}, not {k!r}")
    return int(k)


def hint_colour(a: float, b: float) -> tuple[int, int, int]:
    """Lab ab -> an sRGB colour (0-255) with that ab at HINT_LIGHTNESS (clipped to the gamut)."""
    import tensorflow as tf

    from colorgan.color.lab import lab_to_rgb
    rgb = lab_to_rgb(tf.constant([[HINT_LIGHTNESS, a, b]], tf.float32)).numpy()[0]
    return tuple(int(c) for c in np.round(np.clip(rgb, 0.0, 1.0) * 255))


def draw_variant_hints(auto_ab: np.ndarray, photo_hw: tuple[int, int], rng: np.random.Generator,
                       points: int = VARIANT_POINTS) -> list[Hint]:
    """The hints of one variant: auto_ab [h, w, 2] (Lab, the automatic prediction at the working size) ->
    `points` Hints in the photo's pixels (see the module's docstring)."""
    h, w = auto_ab.shape[:2]
    height, width = photo_hw
    hints = []
    for _ in range(points):
        fy, fx = rng.uniform(EDGE, 1.0 - EDGE, size=2)
        row, col = min(int(fy * h), h - 1), min(int(fx * w), w - 1)
        a, b = auto_ab[max(0, row - PATCH):row + PATCH + 1, max(0, col - PATCH):col + PATCH + 1].reshape(-1, 2).mean(0)
        turn = np.deg2rad(rng.uniform(-MAX_TURN_DEGREES, MAX_TURN_DEGREES))
        hue = np.arctan2(b, a) + turn if np.hypot(a, b) >= GRAY_CHROMA else rng.uniform(-np.pi, np.pi)
        chroma = rng.uniform(*CHROMA_RANGE)
        x, y = min(int(fx * width), width - 1), min(int(fy * height), height - 1)
        hints.append(Hint(float(x), float(y), hint_colour(chroma * np.cos(hue), chroma * np.sin(hue))))
    return hints


def draw_hint_sets(auto_ab: np.ndarray, photo_hw: tuple[int, int], k: int, seed: int | None,
                   hints=()) -> list[list[Hint]]:
    """The hints of k variants: the user's `hints` (specs or Hints) in each, then its drawn ones."""
    rng = np.random.default_rng(seed)
    given = parse_hints(list(hints))
    return [given + draw_variant_hints(auto_ab, photo_hw, rng) for _ in range(check_variant_count(k))]


def image_ab(rgb8: np.ndarray, max_side: int = 256) -> np.ndarray:
    """A colorized photo's Lab ab [h, w, 2] at no more than max_side px (enough to draw hints from): for callers
    that have the automatic result as an image rather than the network's ab (the server)."""
    import tensorflow as tf

    from colorgan.color.lab import rgb_to_lab
    rgb = tf.constant(rgb8[None, ..., :3], tf.float32) / 255.0
    scale = min(1.0, max_side / max(rgb8.shape[:2]))
    if scale < 1.0:
        rgb = tf.image.resize(rgb, [max(1, round(d * scale)) for d in rgb8.shape[:2]], antialias=True)
    return rgb_to_lab(rgb)[0, ..., 1:].numpy()


def colorize_variants(colorizer, image: np.ndarray, k: int, seed: int | None = None,
                      vividness: float | None = None, auto_levels: bool | None = None, hints=()) -> list[Variant]:
    """k colourings of `image` by a --hints Colorizer, each under its own drawn hints (one network batch).
    hints: the user's own (specs or Hints), kept in every variant beside the drawn ones."""
    k = check_variant_count(k)
    if not colorizer.takes_hints:
        raise ColorganError("variants need a model trained with --hints (the shipped one is weights/hints/)")
    prepared = colorizer.prepare(image, auto_levels)
    v = colorizer.check_vividness(vividness)
    auto_ab = colorizer.predict_ab(prepared.model_in, np.array([v], np.float32),
                                   colorizer.hint_map(prepared, hints))[0]  # the user's hints already in it
    drawn = draw_hint_sets(auto_ab, prepared.gray.shape[:2], k, seed, hints)
    maps = np.concatenate([colorizer.hint_map(prepared, points) for points in drawn])
    ab = colorizer.predict_ab(np.repeat(prepared.model_in, k, axis=0), np.full([k], v, np.float32), maps)
    return [Variant(colorizer.finish(prepared, ab[i]), points) for i, points in enumerate(drawn)]

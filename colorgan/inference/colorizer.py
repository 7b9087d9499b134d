"""Colorizing photos of any size with a trained generator, the way colorizers are used in practice.

The network runs on the luminance resized to its working size (the longer side `render_size`, each side a
multiple of what the U-Net accepts); the predicted chroma (ab) is resized back to the photo's full size and
recombined with the photo's own full-resolution L. The output's luminance is the input's.

    from colorgan import Colorizer
    rgb = Colorizer.load("checkpoints/my-run").colorize(image)   # numpy uint8 in and out
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from colorgan.color.chroma import predicted_ab
from colorgan.color.lab import gray_to_l, lab_to_rgb, lab_to_rgb8, rgb_to_gray_array
from colorgan.config import AUTO, Config, check_inference_number, check_vividness
from colorgan.errors import ColorganError, too_many_pixels
from colorgan.models.networks import hint_channels, input_multiple, with_hints
from colorgan.runtime import inference_in_float32
from colorgan.training.runs import SHIPPED_WEIGHTS, load_generator, model_files

DEFAULT_WEIGHTS = SHIPPED_WEIGHTS
DEFAULT_RENDER_SIZE = 256  # for a generator saved without its config
# The full-resolution step works on bands of about this many pixels, the ab resized band by band (ab_rows): its
# memory per photo is then about 7 bytes per pixel (the float gray, the uint8 output) plus one band's floats.
FINISH_BAND_PIXELS = 1_000_000
MAX_PIXELS = 100_000_000  # 100 MP: beyond this an image is refused rather than exhausting memory


def working_size(height, width, render_size: int, multiple: int):
    """(h, w) with the longer side about render_size, aspect kept, each a multiple of `multiple` (tensors)."""
    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    scale = tf.cast(render_size, tf.float32) / tf.maximum(h, w)
    m = float(multiple)
    wh = tf.maximum(tf.round(h * scale / m) * m, m)
    ww = tf.maximum(tf.round(w * scale / m) * m, m)
    return tf.cast(wh, tf.int32), tf.cast(ww, tf.int32)


# --auto-levels: the gray levels at these percentiles become black and white; a photo spanning less than
# LEVELS_MIN_SPAN is left as it is (a flat photo has no contrast to restore, only noise to amplify).
LEVELS_PERCENTILES, LEVELS_MIN_SPAN = (1.0, 99.0), 0.05


def stretch_levels(gray):
    """Gray [N, h, w, 1] in [0, 1] -> each photo's contrast stretched: its 1st percentile to 0, its 99th to 1
    (a faded print read as the print it was; TF ops)."""
    flat = tf.sort(tf.reshape(gray, [tf.shape(gray)[0], -1]), axis=-1)
    last = tf.cast(tf.shape(flat)[1] - 1, tf.float32)
    lo, hi = (tf.gather(flat, tf.cast(tf.round(last * p / 100.0), tf.int32), axis=1)[:, None, None, None]
              for p in LEVELS_PERCENTILES)
    stretched = tf.clip_by_value((gray - lo) / tf.maximum(hi - lo, 1e-6), 0.0, 1.0)
    return tf.where(hi - lo >= LEVELS_MIN_SPAN, stretched, gray)


def model_input(gray, color_space: str, render_size: int, multiple: int, auto_levels: bool = False):
    """Gray [N, H, W, 1] float in [0, 1] -> the generator's input [N, h, w, 1] at the working size (TF ops);
    auto_levels: the network sees the photo's contrast stretched (stretch_levels), the output keeps its own L."""
    shape = tf.shape(gray)
    wh, ww = working_size(shape[1], shape[2], render_size, multiple)
    small = tf.clip_by_value(tf.image.resize(gray, tf.stack([wh, ww]), antialias=True), 0.0, 1.0)
    if auto_levels:
        small = stretch_levels(small)
    if color_space == "lab":
        return gray_to_l(small) / 50.0 - 1.0
    return small * 2.0 - 1.0


def gray_and_ab_to_rgb(gray, ab):
    """Gray [N, H, W, 1] in [0, 1] and ab [N, H, W, 2] at the same size -> RGB [N, H, W, 3] in [0, 1]."""
    gray = tf.ensure_shape(gray, [None, None, None, 1])
    return lab_to_rgb(tf.concat([gray_to_l(gray), ab], axis=-1))


def ab_rows(ab_small, top, rows, height, width):
    """Rows top .. top + rows - 1 of ab_small [1, h, w, C] resized (bilinear) to height x width: the values of
    tf.image.resize(ab_small, (height, width))[:, top:top + rows] without the whole resized image in memory (at
    35 MP that is 280 MB of float32 ab). crop_and_resize on the ab padded by its edge, its sample points put where
    resize's half-pixel centres fall (resize clamps at the border; the padding repeats the edge the same way)."""
    h, w = tf.shape(ab_small)[1], tf.shape(ab_small)[2]
    padded = tf.pad(ab_small, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")  # [a b] -> [a a b b]

    def span(start, count, size, full):  # the first and last sample, as fractions of the padded axis
        scale = tf.cast(size, tf.float64) / tf.cast(full, tf.float64)
        first = (tf.cast(start, tf.float64) + 0.5) * scale + 0.5  # - 0.5 for half-pixel centres, + 1 for the pad
        last = first + tf.cast(count - 1, tf.float64) * scale
        return first / tf.cast(size + 1, tf.float64), last / tf.cast(size + 1, tf.float64)

    (y1, y2), (x1, x2) = span(top, rows, h, height), span(0, width, w, width)
    box = tf.cast(tf.stack([[y1, x1, y2, x2]]), tf.float32)
    return tf.image.crop_and_resize(padded, box, [0], tf.stack([rows, width]), method="bilinear")


def recombine(gray, ab_small):
    """Full-size gray [N, H, W, 1] in [0, 1] + predicted ab [N, h, w, 2] -> RGB [N, H, W, 3] in [0, 1].

    The ab is resized to the photo's size and put beside the photo's own L: the output's luminance is the input's.
    """
    gray = tf.ensure_shape(gray, [None, None, None, 1])  # one channel, also where the caller cannot say so
    return gray_and_ab_to_rgb(gray, tf.image.resize(ab_small, tf.shape(gray)[1:3], method="bilinear"))


def colorize_float(generator, gray, color_space: str, render_size: int, multiple: int, vividness=1.0,
                   auto_levels: bool = False, hint_points=None, cast_correction: float = 0.0):
    """Gray [N, H, W, 1] float in [0, 1] -> RGB [N, H, W, 3] float in [0, 1] (TF ops; used by export too).

    vividness: 1.0 as trained, more for more saturated colour (chroma.decode); a scalar or one per photo
    ([N, 1, 1, 1]). cast_correction: chroma.without_cast's strength. hint_points (a --hints model): [N, K, 5]
    rows x, y, r, g, b as colorgan.inference.hints.hint_channels takes them, with a `valid` [N, K] beside:
    (points, valid).
    """
    model_in = model_input(gray, color_space, render_size, multiple, auto_levels)
    hints = None
    if hint_points is not None:
        from colorgan.inference.hints import hint_channels as paint
        points, valid = hint_points
        hints = paint(points, tf.shape(gray)[1:3], tf.shape(model_in)[1:3], valid)
    output = generator(with_hints(generator, model_in, hints), training=False)
    return recombine(gray, predicted_ab(output, color_space, vividness, cast_correction))


def to_float_image(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8/uint16/float array HxW, HxWx1, HxWx3 or HxWx4 -> (gray HxWx1 float32 in [0, 1], alpha or None)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 2, 3, 4):
        raise ColorganError(f"expected an image of shape HxW or HxWxC with C in 1..4, got {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ColorganError(f"empty image {image.shape}")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise too_many_pixels("image", image.shape[1], image.shape[0], MAX_PIXELS)
    # In place after the one float32 copy: a second full-size float array is 4 bytes a pixel more at the peak.
    if image.dtype == np.uint8:
        x = image.astype(np.float32)
        np.divide(x, 255.0, out=x)
    elif image.dtype == np.uint16:
        x = image.astype(np.float32)
        np.divide(x, 65535.0, out=x)
    elif np.issubdtype(image.dtype, np.floating):
        x = image.astype(np.float32)  # a copy even when already float32: the caller's array is left alone
        np.clip(x, 0.0, 1.0, out=x)
    else:
        raise ColorganError(f"unsupported pixel type {image.dtype} (use uint8, uint16 or float in [0, 1])")
    alpha = None
    if x.shape[-1] in (2, 4):  # gray + alpha, RGB + alpha
        alpha, x = image[..., -1:], x[..., :-1]
    gray = x if x.shape[-1] == 1 else rgb_to_gray_array(x)
    return gray, alpha


class Colorizer:
    """A trained generator with what it needs to colorize photos: colour space and working size."""

    def __init__(self, generator: keras.Model, color_space: str = "lab", render_size: int = 256,
                 vividness: float = 1.0, auto_levels: bool = False, denoise: bool = False, restore: bool = False,
                 cast_correction: float = 0.0):
        self.generator = generator
        self.auto_levels = auto_levels  # a faded photo's contrast stretched for the network (model_input)
        self.denoise, self.restore = denoise, restore  # old-photo clean-up before colorizing (restore.clean_up)
        self.color_space = color_space
        self.multiple = input_multiple(generator)
        self.render_size = render_size
        self.vividness = vividness
        self.cast_correction = float(cast_correction)  # the model's config.json (chroma.without_cast)
        self._prepare_fn = self._predict_fn = self._finish_fn = None  # traced on first use

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, render_size: int | None = None,
             vividness: float | None = None, auto_levels: bool = False, denoise: bool = False,
             restore: bool = False, cast_correction: float | None = None) -> "Colorizer":
        """From a run directory, a weights directory (generator.keras + config.json) or a .keras file."""
        path = Path(path) if path else DEFAULT_WEIGHTS
        model_file, config_file = model_files(path)
        if not model_file.exists():
            hint = " (no trained weights shipped here: give --run or --model)" if path == DEFAULT_WEIGHTS else ""
            raise ColorganError(f"{model_file}: no such model{hint}")
        cfg = Config.load(config_file) if config_file.exists() else None
        generator = load_generator(model_file, float32=inference_in_float32(cfg.generator if cfg else "unet"))
        trained_at = cfg.image_size if cfg and cfg.image_size != AUTO else DEFAULT_RENDER_SIZE
        return cls(generator, cfg.color_space if cfg else "lab", int(render_size or trained_at),
                   vividness if vividness is not None else cfg.vividness if cfg else 1.0, auto_levels, denoise, restore,
                   cast_correction if cast_correction is not None else cfg.cast_correction if cfg else 0.0)

    def colorize(self, image: np.ndarray, render_size: int | None = None, vividness: float | None = None,
                 auto_levels: bool | None = None, hints=None, cast_correction: float | None = None) -> np.ndarray:
        """uint8 (or uint16/float) image -> uint8 RGB of the same size (RGBA in, RGBA out with its alpha).

        vividness: more or less saturated colour than the model's default (self.vividness); luminance is kept
        (the cleaned luminance where denoise or restore is on). auto_levels: None for self.auto_levels.
        hints: points of known colour for a --hints model, Hints or specs such as "120,80,red"
        (colorgan.inference.hints). cast_correction: chroma.without_cast's strength for this photo, 0 to 1
        (None: the model's, self.cast_correction).
        """
        prepared = self.prepare(image, auto_levels, render_size)
        ab = self.predict_ab(prepared.model_in, np.array([self.check_vividness(vividness)], np.float32),
                             self.hint_map(prepared, hints), [self.check_cast_correction(cast_correction)])
        return self.finish(prepared, ab[0])

    def colorize_variants(self, image: np.ndarray, k: int, seed: int | None = None, vividness: float | None = None,
                          auto_levels: bool | None = None, hints=()) -> list:
        """k plausible colourings of the photo (a --hints model only): Variants (image, the hints that made it,
        the user's `hints` among them); the same seed gives the same variants (colorgan.inference.variants)."""
        from colorgan.inference.variants import colorize_variants
        return colorize_variants(self, image, k, seed, vividness, auto_levels, hints)

    @property
    def takes_hints(self) -> bool:
        return hint_channels(self.generator) > 0

    def no_hints(self, model_in: np.ndarray) -> np.ndarray:
        """The hint channels of photos without hints: zeros [N, h, w, hint channels] beside model_in [N, h, w, 1]."""
        return np.zeros(model_in.shape[:3] + (hint_channels(self.generator),), np.float32)

    def hint_map(self, prepared: "Prepared", hints) -> np.ndarray | None:
        """User hints on a prepared photo -> the network's hint channels [1, h, w, 3] (None without hints)."""
        if not hints:
            return None
        if not self.takes_hints:
            raise ColorganError("this model was trained without --hints: it cannot take colour hints")
        from colorgan.inference.hints import hint_map, parse_hints
        return hint_map(parse_hints(list(hints)), prepared.gray.shape[:2], prepared.model_in.shape[1:3])[None]

    def read(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """to_float_image, then the clean-up this colorizer was asked for (restore.clean_up)."""
        gray, alpha = to_float_image(image)
        if self.denoise or self.restore:
            from colorgan.inference.restore import clean_up  # OpenCV, loaded only when asked for
            gray = clean_up(gray, denoise_grain=self.denoise, restore=self.restore)
        return gray, alpha

    def check_vividness(self, vividness: float | None) -> np.float32:
        """The vividness to use (the model's default for None); a ColorganError if it is not a positive number."""
        return np.float32(check_vividness(self.vividness if vividness is None else vividness))

    def check_cast_correction(self, strength: float | None) -> np.float32:
        """The cast correction to use (the model's for None); a ColorganError if it is not a number in [0, 1]."""
        return np.float32(check_inference_number("cast_correction",
                                                 self.cast_correction if strength is None else strength))

    # The same work in three steps, for a server that batches photos of different sizes together: only the
    # network needs a batch of one size, and photos of many sizes share a working size.
    def prepare(self, image: np.ndarray, auto_levels: bool | None = None, render_size: int | None = None) -> "Prepared":
        """Image -> its gray, alpha and the network's input [1, h, w, 1] at the working size."""
        gray, alpha = self.read(image)
        if self._prepare_fn is None:
            self._prepare_fn = tf.function(
                lambda g, size, levels: model_input(g, self.color_space, size, self.multiple, levels),
                reduce_retracing=True)
        levels = bool(self.auto_levels if auto_levels is None else auto_levels)
        size = tf.constant(int(render_size or self.render_size))
        return Prepared(gray, alpha, self._prepare_fn(tf.constant(gray[None]), size, levels).numpy())

    def predict_ab(self, model_in: np.ndarray, vividness: np.ndarray, hints: np.ndarray | None = None,
                   cast_correction=None) -> np.ndarray:
        """Network inputs [N, h, w, 1] (one working size), vividness [N], for a --hints model hint channels
        [N, h, w, 3] (None: no hints), and the cast correction [N] (None: self.cast_correction for every photo)
        -> predicted ab [N, h, w, 2]."""
        if self._predict_fn is None:
            # The cast correction is an argument, as vividness is, not read when traced: a later change of
            # self.cast_correction, and a strength per photo in a server's batch, both take effect.
            self._predict_fn = tf.function(
                lambda x, v, h, c: predicted_ab(
                    self.generator(x if h is None else tf.concat([x, h], -1), training=False),
                    self.color_space, v[:, None, None, None], c[:, None, None, None]),
                reduce_retracing=True)
        if hints is None and self.takes_hints:
            hints = self.no_hints(model_in)
        if cast_correction is None:
            cast_correction = np.full([len(model_in)], self.cast_correction, np.float32)
        return self._predict_fn(tf.constant(model_in), tf.constant(vividness, tf.float32),
                                None if hints is None else tf.constant(hints, tf.float32),
                                tf.constant(cast_correction, tf.float32)).numpy()

    def finish(self, prepared: "Prepared", ab: np.ndarray) -> np.ndarray:
        """A prepared photo and its predicted ab [h, w, 2] -> uint8 RGB (RGBA with its alpha) at its own size.

        The ab's resizing to the photo's size and the Lab -> RGB conversion, whose float intermediates are most of
        the memory, run on bands of rows (FINISH_BAND_PIXELS each): the pixels of recombine on the whole photo
        (within 1/255: lab_to_rgb8), at a fraction of its peak memory."""
        if self._finish_fn is None:
            # The band's Lab in TensorFlow, its conversion to RGB by OpenCV (lab_to_rgb8: a tenth of the time)
            self._finish_fn = tf.function(
                lambda gray, ab, top, height: tf.concat(
                    [gray_to_l(gray), ab_rows(ab, top, tf.shape(gray)[1], height, tf.shape(gray)[2])], axis=-1),
                reduce_retracing=True)
        gray = prepared.gray
        height, width = gray.shape[:2]
        ab_small = tf.constant(ab[None], tf.float32)
        rows = max(1, FINISH_BAND_PIXELS // width)
        rgb8 = np.empty((height, width, 3), np.uint8)
        for top in range(0, height, rows):
            lab = self._finish_fn(tf.constant(gray[None, top:top + rows]), ab_small, tf.constant(top),
                                  tf.constant(height))
            rgb8[top:top + rows] = lab_to_rgb8(lab.numpy()[0])
        return with_alpha(rgb8, prepared.alpha)


def side_by_side_image(gray_source: np.ndarray, colorized: np.ndarray) -> np.ndarray:
    """The photo in gray beside its colorization (colorize.py --side-by-side, for photos and video frames)."""
    gray, _ = to_float_image(gray_source)
    gray_rgb = np.repeat(np.round(gray * 255).astype(np.uint8), 3, axis=-1)
    return np.concatenate([gray_rgb, colorized[..., :3]], axis=1)


class Prepared(NamedTuple):
    gray: np.ndarray  # [H, W, 1] float32 in [0, 1], the photo's own size
    alpha: np.ndarray | None
    model_in: np.ndarray  # [1, h, w, 1], the network's input at the working size


def to_uint8(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """RGB [H, W, 3] float in [0, 1] (+ the input's alpha, any dtype) -> uint8 RGB or RGBA."""
    return with_alpha(np.round(rgb * 255.0).astype(np.uint8), alpha)


def with_alpha(rgb8: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """uint8 RGB [H, W, 3] + the input's alpha (any dtype, or None) -> uint8 RGBA (or the RGB as it is)."""
    if alpha is None:
        return rgb8
    if alpha.dtype != np.uint8:
        alpha = np.round(alpha.astype(np.float64) / np.iinfo(alpha.dtype).max * 255
                         if np.issubdtype(alpha.dtype, np.integer) else alpha * 255).astype(np.uint8)
    return np.concatenate([rgb8, alpha], axis=-1)

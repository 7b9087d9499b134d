"""User colour hints for a --hints model: parsed from the command line, a JSON file or an API request, and placed
on the network's working size.

A hint is a point of the photo and a colour: `X,Y,COLOR` with X, Y in the photo's own pixels (integers, from the
top-left corner) or as fractions of its width and height (numbers with a decimal point, 0 to 1), and COLOR as
`#rrggbb` or a CSS colour name. Only the colour's ab is used: its luminance is the photo's.

    colorize.py --hint 120,80,red --hint 0.5,0.9,#2a6e3f photo.jpg
    colorize.py --hints-file hints.json photos/      # {"photo.jpg": ["120,80,red", {"x": 0.5, "y": 0.9, "color": "green"}]}
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from colorgan.errors import ColorganError

MAX_HINTS = 256  # per photo: more is a mistake (or an attack on the server), not a hint


class Hint(NamedTuple):
    x: float  # pixels from the left, or a fraction of the width when `fraction`
    y: float
    rgb: tuple[int, int, int]
    fraction: bool = False

    def pixel(self, height: int, width: int) -> tuple[float, float]:
        """(y, x) of the hint's point in a photo of this size, pixel centres; a ColorganError outside it."""
        if self.fraction:
            if not (0 <= self.x <= 1 and 0 <= self.y <= 1):
                raise ColorganError(f"hint at {self.x},{self.y}: fractions of the photo lie from 0 to 1")
            return min(self.y * height, height - 0.5), min(self.x * width, width - 0.5)
        if not (0 <= self.x < width and 0 <= self.y < height):
            raise ColorganError(f"hint at {self.x:g},{self.y:g}: outside the {width}x{height} photo")
        return self.y + 0.5, self.x + 0.5

    def as_fraction(self, height: int, width: int) -> "Hint":
        """The same point as fractions of a photo of this size (what the web page works in)."""
        if self.fraction:
            return self
        y, x = self.pixel(height, width)
        return Hint(x / width, y / height, self.rgb, True)

    def as_json(self) -> dict:
        """The hint as a --hints-file / API entry that parses back to it: pixels as integers, fractions as floats."""
        x, y = (float(self.x), float(self.y)) if self.fraction else (int(self.x), int(self.y))
        return {"x": x, "y": y, "color": "#%02x%02x%02x" % tuple(self.rgb)}


def parse_color(text: str) -> tuple[int, int, int]:
    """'#rrggbb', '#rgb' or a CSS colour name -> (r, g, b) in 0..255; a ColorganError otherwise."""
    from PIL import ImageColor
    try:
        rgb = ImageColor.getrgb(str(text).strip())
    except (ValueError, AttributeError):
        raise ColorganError(f"hint colour {text!r}: give #rrggbb or a CSS colour name such as 'red'") from None
    return tuple(int(c) for c in rgb[:3])


def _coordinate(text) -> tuple[float, bool]:
    """A hint coordinate -> (value, is a fraction): integers are pixels, numbers with a point fractions."""
    if isinstance(text, bool) or not isinstance(text, (int, float, str)):
        raise ColorganError(f"hint coordinate {text!r} is not a number")
    if isinstance(text, (int, float)):
        value, fraction = float(text), isinstance(text, float)
    else:
        try:
            value, fraction = float(text), any(c in text for c in ".eE")
        except ValueError:
            raise ColorganError(f"hint coordinate {text!r} is not a number") from None
    if not np.isfinite(value) or value < 0:
        raise ColorganError(f"hint coordinate {text!r}: give a pixel (0 or more) or a fraction from 0 to 1")
    return value, fraction


def parse_hint(spec) -> Hint:
    """'X,Y,COLOR', [X, Y, COLOR] or {"x": X, "y": Y, "color": COLOR} -> a Hint; a ColorganError otherwise."""
    if isinstance(spec, str):
        parts = spec.split(",", 2)
    elif isinstance(spec, (list, tuple)):
        parts = list(spec)
    elif isinstance(spec, dict) and set(spec) == {"x", "y", "color"}:
        parts = [spec["x"], spec["y"], spec["color"]]
    else:
        raise ColorganError(f"hint {spec!r}: give X,Y,COLOR (or {{\"x\": X, \"y\": Y, \"color\": COLOR}})")
    if len(parts) != 3:
        raise ColorganError(f"hint {spec!r}: give X,Y,COLOR, e.g. 120,80,red or 0.5,0.25,#c03020")
    (x, fx), (y, fy) = _coordinate(parts[0]), _coordinate(parts[1])
    if fx != fy:
        raise ColorganError(f"hint {spec!r}: give both coordinates in pixels or both as fractions")
    return Hint(x, y, parse_color(parts[2]), fx)


def parse_hints(specs) -> list[Hint]:
    """A list of hint specs (parse_hint) or Hints -> Hints; at most MAX_HINTS."""
    if not isinstance(specs, (list, tuple)):
        raise ColorganError(f"hints: expected a list of hints, got {type(specs).__name__}")
    if len(specs) > MAX_HINTS:
        raise ColorganError(f"{len(specs)} hints: at most {MAX_HINTS} per photo")
    return [s if isinstance(s, Hint) else parse_hint(s) for s in specs]


def load_hints_file(path: str | Path) -> dict[str, dict[int, list[Hint]]]:
    """--hints-file: a JSON object from file names (as given or their base names) to hints: a list (a photo's,
    or a video's first frame's) or, for a video, an object from frame numbers (0 the first) to lists. Returns
    each file's hints by frame: {name: {frame: [Hint, ...]}} (a list is frame 0)."""
    try:
        values = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ColorganError(f"--hints-file {path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ColorganError(f"--hints-file {path}: not valid JSON ({e})") from None
    if not isinstance(values, dict):
        raise ColorganError(f"--hints-file {path}: expected an object from photo names to lists of hints")
    return {str(name): _by_frame(name, specs) for name, specs in values.items()}


def _by_frame(name: str, specs) -> dict[int, list[Hint]]:
    if not isinstance(specs, dict):
        return {0: parse_hints(specs)}
    frames = {}
    for frame, hints in specs.items():
        if not (isinstance(frame, str) and frame.isdigit()):
            raise ColorganError(f"--hints-file: {name}: frame {frame!r} is not a frame number (0 is the first)")
        frames[int(frame)] = parse_hints(hints)
    return frames


def hints_for(photo: Path, hints_by_name: dict[str, dict[int, list[Hint]]]) -> dict[int, list[Hint]]:
    """The hints of one file in a --hints-file, by frame: by its path as given, else by its file name."""
    return hints_by_name.get(str(photo), hints_by_name.get(photo.name, {}))


def photo_hints(src: Path, by_frame: dict[int, list[Hint]]) -> list[Hint]:
    """A photo's hints from hints by frame: frame 0's; hints for later frames are a mistake for a photo."""
    later = sorted(frame for frame in by_frame if frame)
    if later:
        raise ColorganError(f"{src}: hints for frame {later[0]}: frame numbers are for videos, not photos")
    return by_frame.get(0, [])


def hint_map(hints: list[Hint], photo_hw: tuple[int, int], work_hw: tuple[int, int]) -> np.ndarray:
    """Hints on a photo of photo_hw -> the generator's hint channels [h, w, 3] at the working size work_hw: each
    hint's ab (ab/110, from its colour; the luminance ignored) on a 3x3 patch around its point."""
    height, width = photo_hw
    points = [(*reversed(hint.pixel(height, width)), *hint.rgb) for hint in hints]
    return hint_channels(np.asarray(points, np.float32).reshape(1, -1, 5), photo_hw, work_hw)[0].numpy()


def hint_channels(points, photo_hw, work_hw, valid=None):
    """Hint points [N, K, 5] -> the generator's hint channels [N, h, w, 3] at the working size work_hw (TF ops:
    also inside an exported SavedModel). Each row is x, y (the point in the photo's pixels, measured to pixel
    centres: column X's centre is X + 0.5), then r, g, b (0-255; only the colour's ab is used). valid [N, K]:
    the rows to use (default all)."""
    import tensorflow as tf

    from colorgan.color.chroma import AB_SCALE
    from colorgan.color.hints import paint_hint_points
    from colorgan.color.lab import rgb_to_lab

    points = tf.convert_to_tensor(points, tf.float32)
    scale = tf.cast(work_hw, tf.float32) / tf.cast(photo_hw, tf.float32)  # [2]: rows, columns
    ab = rgb_to_lab(points[..., 2:5] / 255.0)[..., 1:] / AB_SCALE
    at_work_size = tf.stack([points[..., 1] * scale[0] - 0.5, points[..., 0] * scale[1] - 0.5], axis=-1)
    return paint_hint_points(tf.concat([at_work_size, ab], -1), work_hw[0], work_hw[1], valid)

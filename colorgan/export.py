"""SavedModel export for TensorFlow Serving: colour conversion, resizing and recombination inside the graph.

The `serving_default` signature takes `images`, a uint8 batch [N, H, W, C] of any height and width with C = 1
(gray) or 3 (RGB, colorized from its luminance), and returns `colorized`, uint8 RGB [N, H, W, 3]. A client needs
nothing but TensorFlow, or an HTTP request to TF Serving.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import keras
import tensorflow as tf

from .color import rgb_to_gray
from .errors import ColorganError
from .inference import Colorizer, colorize_float
from .atomic import temp_path


def serving_fn(colorizer: Colorizer):
    def serve(images):
        tf.debugging.assert_rank(images, 4, message="images must be a batch [N, H, W, C]")
        channels = tf.shape(images)[-1]
        tf.debugging.assert_equal(tf.logical_or(tf.equal(channels, 1), tf.equal(channels, 3)), True,
                                  message="images must have 1 (gray) or 3 (RGB) channels")
        x = tf.cast(images, tf.float32) / 255.0
        gray = tf.cond(tf.equal(channels, 1), lambda: x[..., :1],
                       lambda: rgb_to_gray(tf.pad(x, [[0, 0], [0, 0], [0, 0], [0, 3 - channels]])[..., :3]))
        rgb = colorize_float(colorizer.generator, gray, colorizer.color_space, colorizer.render_size,
                             colorizer.multiple)
        return {"colorized": tf.cast(tf.round(rgb * 255.0), tf.uint8)}
    return serve


def export_saved_model(colorizer: Colorizer, out_dir: str | os.PathLike, version: int = 1) -> Path:
    """Write <out_dir>/<version>/ (TF Serving's layout) and return that folder."""
    target = Path(out_dir) / str(version)
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    archive = keras.export.ExportArchive()
    archive.track(colorizer.generator)
    archive.add_endpoint("serving_default", serving_fn(colorizer),
                         input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8, name="images")])
    tmp = temp_path(target)
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        archive.write_out(str(tmp), verbose=False)
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ColorganError(f"export to {target} failed: {e}") from None
    os.replace(tmp, target)
    return target

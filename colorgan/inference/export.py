"""SavedModel export for TensorFlow Serving: colour conversion, resizing and recombination inside the graph.

The `serving_default` signature takes `images`, a uint8 batch [N, H, W, C] of any height and width with C = 1
(gray) or 3 (RGB, colorized from its luminance), and returns `colorized`, uint8 RGB [N, H, W, 3], at the model's
default vividness; the `colorize` signature takes `images` and a float `vividness` (1: as trained, more: more
saturated). A model trained with --hints has a third, `colorize_hints`: images, vividness and `hints`, float32
[N, K, 5], each row a point of known colour on photo n: x, y in the photo's pixels from its top-left corner (as
colorize.py --hint), then r, g, b (0-255; only the colour's ab is used). Rows outside the photo (x = -1, say) are
left out, so photos with fewer hints are padded with them. A client needs nothing but TensorFlow, or an HTTP
request to TF Serving.

TFLite and ONNX exports (the network alone, run with the same steps around it): export_formats.py.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from colorgan.atomic import temp_path
from colorgan.color.lab import rgb_to_gray
from colorgan.errors import ColorganError
from colorgan.inference.colorizer import Colorizer, colorize_float
from colorgan.models.keras_compat import walk_layers


def serving_fn(colorizer: Colorizer, with_vividness: bool = False, with_hints: bool = False):
    """The signature's function: images (and, with_vividness, a scalar vividness; with_hints, hint points
    [N, K, 5] too) -> {"colorized": ...}."""
    def colorize(images, vividness, hints=None):
        tf.debugging.assert_rank(images, 4, message="images must be a batch [N, H, W, C]")
        tf.debugging.assert_positive(vividness, message="vividness must be a positive number")
        channels = tf.shape(images)[-1]
        tf.debugging.assert_equal(tf.logical_or(tf.equal(channels, 1), tf.equal(channels, 3)), True,
                                  message="images must have 1 (gray) or 3 (RGB) channels")
        x = tf.cast(images, tf.float32) / 255.0
        gray = tf.cond(tf.equal(channels, 1), lambda: x[..., :1],
                       lambda: rgb_to_gray(tf.pad(x, [[0, 0], [0, 0], [0, 0], [0, 3 - channels]])[..., :3]))
        hint_points = None
        if hints is not None:
            tf.debugging.assert_equal(tf.shape(hints)[0], tf.shape(images)[0],
                                      message="hints must have one list of points per image: [N, K, 5]")
            size = tf.cast(tf.shape(images)[1:3], tf.float32)
            x, y = hints[..., 0], hints[..., 1]
            valid = (x >= 0) & (y >= 0) & (x < size[1]) & (y < size[0])
            hint_points = (tf.concat([hints[..., :2] + 0.5, hints[..., 2:]], -1), valid)  # to pixel centres
        rgb = colorize_float(colorizer.generator, gray, colorizer.color_space, colorizer.render_size,
                             colorizer.multiple, vividness, hint_points=hint_points,
                             cast_correction=colorizer.cast_correction)
        return {"colorized": tf.cast(tf.round(rgb * 255.0), tf.uint8)}

    if with_hints:
        return colorize
    if with_vividness:
        return colorize
    return lambda images: colorize(images, tf.constant(colorizer.vividness, tf.float32))


def float32_generator(generator: keras.Model) -> keras.Model:
    """The generator with float32 layers (a copy with the same weights where it computes in bfloat16 or float16):
    every export computes in float32, so a file written on a CPU with bfloat16 units (where --precision auto
    loads the model in bfloat16) gives the same colour, at full speed, on one without."""
    if all(layer.dtype_policy.compute_dtype == "float32" for layer in walk_layers(generator)):
        return generator
    from colorgan.training.runs import _with_dtype_policy
    model = keras.saving.deserialize_keras_object(
        _with_dtype_policy(keras.saving.serialize_keras_object(generator), "float32"))
    model.set_weights([np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(w, "float32")))
                       for w in generator.weights])
    return model


IMAGES = tf.TensorSpec([None, None, None, None], tf.uint8, name="images")
VIVIDNESS = tf.TensorSpec([], tf.float32, name="vividness")
HINTS = tf.TensorSpec([None, None, 5], tf.float32, name="hints")
INFO_FILE = "colorgan.json"


def saved_model_info(version_dir: str | os.PathLike) -> dict:
    """What export_saved_model recorded beside a SavedModel (vividness, colour space, working size); {} if none."""
    path = Path(version_dir) / "assets.extra" / INFO_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def export_saved_model(colorizer: Colorizer, out_dir: str | os.PathLike, version: int = 1) -> Path:
    """Write <out_dir>/<version>/ (TF Serving's layout) and return that folder."""
    target = Path(out_dir) / str(version)
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    colorizer = copy.copy(colorizer)
    colorizer.generator = float32_generator(colorizer.generator)
    archive = keras.export.ExportArchive()
    # No archive.track(generator): add_endpoint tracks the variables the signatures use, and tracking the model
    # too wrote every weight twice (Keras 3.15: a 77 MB SavedModel for the shipped 38 MB of float32 weights).
    # Two signatures, as a SavedModel input cannot be optional: serving_default takes images alone (at the
    # model's default vividness), "colorize" takes images and vividness.
    archive.add_endpoint("serving_default", serving_fn(colorizer), input_signature=[IMAGES])
    archive.add_endpoint("colorize", serving_fn(colorizer, with_vividness=True), input_signature=[IMAGES, VIVIDNESS])
    if colorizer.takes_hints:  # a third signature: the first two stay as they are, for today's clients
        archive.add_endpoint("colorize_hints", serving_fn(colorizer, with_hints=True),
                             input_signature=[IMAGES, VIVIDNESS, HINTS])
    tmp = temp_path(target)
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        archive.write_out(str(tmp), verbose=False)
        # TF Serving ignores assets.extra/; a colorgan server reads the defaults the signatures were built with.
        (tmp / "assets.extra").mkdir(exist_ok=True)
        (tmp / "assets.extra" / INFO_FILE).write_text(json.dumps(
            {"vividness": float(colorizer.vividness), "cast_correction": colorizer.cast_correction,
             "color_space": colorizer.color_space,
             "render_size": int(colorizer.render_size), "hints": bool(colorizer.takes_hints)}, indent=1))
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ColorganError(f"export to {target} failed: {e}") from None
    os.replace(tmp, target)
    return target

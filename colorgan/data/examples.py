"""One example from its files: decoded, upright, as the uint8 [H, W, 4] tensor (RGB + gray) that every image
set yields and the pipeline carries, so the jitter's crop and mirror are the same for input and target by
construction. Each op works eagerly and inside `tf.data.Dataset.map`.
"""
from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf

from colorgan.color.lab import rgb_to_gray
from colorgan.data.image_files import read_rgb
from colorgan.errors import ColorganError

log = logging.getLogger("colorgan")


def _read_rgb_for_tf(path, min_size) -> np.ndarray:
    path = np.asarray(path).item()  # bytes inside tf.data, a 0-d array eagerly
    try:
        return read_rgb(path.decode() if isinstance(path, bytes) else str(path), int(min_size))
    except ColorganError as e:  # changed since the scan (deleted, overwritten): named here, dropped by the pipeline
        log.warning("skipped %s", e)
        raise


def decode_rgb(path, min_size: int = 0, plain=False):
    """File path -> uint8 [H, W, 3] (upright; gray replicated, alpha over white, 16-bit reduced).

    Read by Pillow, as colorize.py reads photos, so training sees them the way inference does (EXIF
    rotation, CMYK, 16-bit, alpha, TIFF, WebP); JPEGs decode at a reduced scale >= min_size.
    Files the scan found `plain` (a bool tensor per file) go through TensorFlow's decoders instead
    (no Python, no GIL in the pipeline): the same pixels for PNG and BMP, within a few levels for JPEG.
    """
    def with_pillow():
        return tf.numpy_function(_read_rgb_for_tf, [path, min_size], tf.uint8, stateful=False)

    def with_tensorflow():
        # TF's default JPEG decoding (its fast DCT: within a few levels of Pillow's), not its accurate one:
        # the usual way TensorFlow reads JPEGs, so metrics stay comparable with figures measured that way.
        return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)

    if isinstance(plain, bool):
        image = with_tensorflow() if plain else with_pillow()
    else:
        image = tf.cond(plain, with_tensorflow, with_pillow)
    image.set_shape([None, None, 3])
    return image


def stack_with_gray(rgb, gray=None):
    """uint8 RGB [H, W, 3] (+ optional uint8 gray [H, W, 3 or 1]) -> uint8 [H, W, 4] = RGB + gray."""
    rgb = tf.cast(rgb, tf.float32)
    gray = rgb if gray is None else tf.cast(gray, tf.float32)
    if gray.shape[-1] == 3:
        gray = rgb_to_gray(gray)
    # Stacked in float: oneDNN has no uint8 concat on CPUs without AVX-512 and logs an error for it.
    stacked = tf.concat([rgb, tf.round(tf.clip_by_value(gray, 0.0, 255.0))], axis=-1)
    return tf.cast(stacked, tf.uint8)


def load_example(color_path, gray_path=None, min_size: int = 0, plain=False):
    """Paths -> uint8 [H, W, 4]; the gray file is resized to the colour image's size if they differ."""
    rgb = decode_rgb(color_path, min_size, plain)
    if gray_path is None:
        return stack_with_gray(rgb)
    gray = decode_rgb(gray_path, min_size, plain)
    gray = tf.cast(tf.image.resize(gray, tf.shape(rgb)[:2], antialias=True), tf.uint8)
    return stack_with_gray(rgb, gray)


def resize_example(example, size: int):
    """uint8 [H, W, C] -> uint8 [size, size, C] (antialiased, so downscaling does not alias)."""
    resized = tf.image.resize(tf.cast(example, tf.float32), (size, size), antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)

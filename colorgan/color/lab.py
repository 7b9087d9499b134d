"""Colour conversions in TensorFlow ops, usable eagerly and inside `tf.data.map`; two of them also on numpy
arrays by OpenCV, for the full-resolution work of colorizing a photo (rgb_to_gray_array, lab_to_rgb8).

sRGB <-> CIE Lab (D65 white), the same formulas as OpenCV's float conversion, and the scaling
used by pix2pix colorization: L/50 - 1 and ab/110, so both land in about [-1, 1].

The model sees the *luminance of a gray photo*: for training pairs the gray image is given
(paired folders) or derived with the ITU-R BT.601 weights (0.299 R + 0.587 G + 0.114 B, as OpenCV
and `tf.image.rgb_to_grayscale`), so training and colorizing a real gray photo see the same input.
"""
from __future__ import annotations

import cv2
import numpy as np
import tensorflow as tf

from colorgan.config import COLOR_SPACES

GRAY_WEIGHTS = (0.299, 0.587, 0.114)
_D65_WHITE = (0.950456, 1.0, 1.088754)
# Linear sRGB -> XYZ (rows: X, Y, Z), and its inverse.
_RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423),
               (0.212671, 0.715160, 0.072169),
               (0.019334, 0.119193, 0.950227))
_XYZ_TO_RGB = ((3.240479, -1.537150, -0.498535),
               (-0.969256, 1.875992, 0.041556),
               (0.055648, -0.204043, 1.057311))
_DELTA = 6.0 / 29.0


def _matmul_last(x, matrix):
    """x[..., 3] @ matrix^T, i.e. apply a 3x3 colour matrix to the channel axis."""
    m = tf.constant(matrix, dtype=x.dtype)
    return tf.tensordot(x, tf.transpose(m), axes=1)


# Powers as exp(k log x): TensorFlow's CPU kernel for pow is several times slower than exp and log, and
# these run on every pixel of every photo (a cube as two products for the same reason).
def _power(x, k: float):
    return tf.exp(k * tf.math.log(x))


def srgb_to_linear(rgb):
    return tf.where(rgb <= 0.04045, rgb / 12.92, _power((tf.maximum(rgb, 0.04045) + 0.055) / 1.055, 2.4))


def linear_to_srgb(lin):
    lin = tf.clip_by_value(lin, 0.0, 1.0)
    return tf.where(lin <= 0.0031308, lin * 12.92,
                    1.055 * _power(tf.maximum(lin, 0.0031308), 1.0 / 2.4) - 0.055)


def rgb_to_lab(rgb):
    """sRGB in [0, 1], shape [..., 3] -> Lab with L in [0, 100], a and b in about [-110, 110]."""
    rgb = tf.convert_to_tensor(rgb, tf.float32)
    xyz = _matmul_last(srgb_to_linear(rgb), _RGB_TO_XYZ) / tf.constant(_D65_WHITE)
    f = tf.where(xyz > _DELTA ** 3, _power(tf.maximum(xyz, _DELTA ** 3), 1.0 / 3.0),
                 xyz / (3.0 * _DELTA ** 2) + 4.0 / 29.0)
    fx, fy, fz = tf.unstack(f, axis=-1)
    return tf.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def gray_to_l(gray):
    """Gray [..., 1] in [0, 1] -> its Lab L in [0, 100]: rgb_to_lab of three equal channels, a third of the work.

    Equal channels are the white point's direction (each XYZ row sums to its white component), so X/Xn =
    Y/Yn = Z/Zn = the linear gray, a = b = 0 and L = 116 f(linear gray) - 16.
    """
    y = srgb_to_linear(tf.convert_to_tensor(gray, tf.float32))
    f = tf.where(y > _DELTA ** 3, _power(tf.maximum(y, _DELTA ** 3), 1.0 / 3.0), y / (3.0 * _DELTA ** 2) + 4.0 / 29.0)
    return 116.0 * f - 16.0


def lab_to_rgb(lab):
    """Lab [..., 3] -> sRGB in [0, 1] (out-of-gamut colours clipped)."""
    lab = tf.convert_to_tensor(lab, tf.float32)
    l, a, b = tf.unstack(lab, axis=-1)
    fy = (l + 16.0) / 116.0
    f = tf.stack([fy + a / 500.0, fy, fy - b / 200.0], axis=-1)
    xyz = tf.where(f > _DELTA, f * f * f, 3.0 * _DELTA ** 2 * (f - 4.0 / 29.0)) * tf.constant(_D65_WHITE)
    return tf.clip_by_value(linear_to_srgb(_matmul_last(xyz, _XYZ_TO_RGB)), 0.0, 1.0)


def rgb_to_gray(rgb):
    """[..., 3] -> [..., 1] with the BT.601 weights (any float range)."""
    # A weighted sum, not tensordot: inside tf.data, grappler moves a preceding uint8->float cast past
    # tensordot's transpose, and oneDNN then logs an error about uint8 transposes on every run.
    return tf.reduce_sum(rgb * tf.constant(GRAY_WEIGHTS, rgb.dtype), axis=-1, keepdims=True)


# The same conversions on numpy arrays by OpenCV, for a photo at full resolution: OpenCV does each in one SIMD pass
# where TensorFlow runs a kernel per elementwise op (~20 passes over the photo for Lab -> RGB): a 768x512 photo's
# Lab -> RGB took 1.1 ms against 13.4 (held to AVX2, benchmarks in docs/speed.md). Same constants and formulas;
# OpenCV's sRGB gamma is a spline, within 0.03/255 of the formula in linear_to_srgb.
def rgb_to_gray_array(rgb: np.ndarray) -> np.ndarray:
    """RGB float32 [H, W, 3] (numpy) -> [H, W, 1]: rgb_to_gray, the BT.601 weights (OpenCV's own), by OpenCV."""
    return cv2.cvtColor(np.ascontiguousarray(rgb, np.float32), cv2.COLOR_RGB2GRAY)[..., None]


def lab_to_rgb8(lab: np.ndarray) -> np.ndarray:
    """Lab float32 [H, W, 3] (numpy) -> sRGB uint8 [H, W, 3]: lab_to_rgb x 255, rounded, by OpenCV (a pixel
    now and then 1/255 off, where the value lies within 0.03/255 of halfway)."""
    rgb = cv2.cvtColor(np.ascontiguousarray(lab, np.float32), cv2.COLOR_Lab2RGB)
    np.clip(rgb, 0.0, 1.0, out=rgb)  # OpenCV clips out-of-gamut colours too: kept so no abs() below sees a sign
    return cv2.convertScaleAbs(rgb, alpha=255.0)  # x 255, rounded to nearest and saturated


def target_channels(color_space: str) -> int:
    """Number of channels the generator predicts: ab for Lab, RGB for rgb."""
    return {"lab": 2, "rgb": 3}[color_space]


def to_model_io(rgb, gray, color_space: str):
    """Float RGB [..., 3] and gray [..., 1], both in [0, 1] -> (model input, target), both in [-1, 1].

    lab: input is L of the gray image scaled L/50 - 1, target is ab of the colour image scaled ab/110.
    rgb: input is the gray image, target the colour image, both scaled x*2 - 1.
    """
    if color_space == "lab":
        return gray_to_l(gray) / 50.0 - 1.0, rgb_to_lab(rgb)[..., 1:] / 110.0
    if color_space == "rgb":
        return gray * 2.0 - 1.0, rgb * 2.0 - 1.0
    raise ValueError(f"unknown colour space {color_space!r}; expected one of {COLOR_SPACES}")


def from_model_io(model_input, model_output, color_space: str):
    """Model input (gray, [-1, 1]) and output (ab or RGB, [-1, 1]) -> RGB in [0, 1].

    In Lab the input's luminance is kept and only the predicted chroma is added, so the output
    has exactly the luminance of the gray photo.
    """
    model_input = tf.cast(model_input, tf.float32)
    model_output = tf.cast(model_output, tf.float32)
    if color_space == "lab":
        lab = tf.concat([(model_input + 1.0) * 50.0, model_output * 110.0], axis=-1)
        return lab_to_rgb(lab)
    if color_space == "rgb":
        return tf.clip_by_value((model_output + 1.0) / 2.0, 0.0, 1.0)
    raise ValueError(f"unknown colour space {color_space!r}; expected one of {COLOR_SPACES}")


def gray_from_model_input(model_input, color_space: str):
    """Model input in [-1, 1] -> the gray photo as RGB in [0, 1] (for display)."""
    model_input = tf.cast(model_input, tf.float32)
    if color_space == "lab":
        return from_model_io(model_input, tf.zeros_like(tf.concat([model_input] * 2, axis=-1)), "lab")
    return tf.concat([(model_input + 1.0) / 2.0] * 3, axis=-1)

"""From the generator's output to colour, with one vividness control for every kind of generator.

A generator predicts, per pixel, one of:
  ab         2 channels in [-1, 1] (Lab chroma / 110): regression (--ab-loss l1, --color-space lab)
  RGB        3 channels in [-1, 1]: regression in --color-space rgb
  ab bins    Q logits over the in-gamut ab bins (ab_classes.py): --ab-loss classification
`decode` turns any of them into the model-output scale the rest of the project uses (ab / 110 in Lab,
RGB in [-1, 1]), and `vividness` moves the result along one axis, 1.0 being what the model was trained
to give:
  regression:      ab multiplied by the vividness (a chroma gain; hue and luminance kept)
  classification:  the annealed mean's temperature divided by it (Zhang et al.: lower temperature, the
                   bins' mode rather than their mean, more saturated colour)
Either way more vividness is more saturated colour, and the photo's luminance is untouched.
`cast_correction` then takes away a share of a yellow-olive tint laid over a whole frame (`without_cast`).
"""
from __future__ import annotations

import math

import tensorflow as tf

from colorgan.color.lab import lab_to_rgb, rgb_to_lab

AB_SCALE = 110.0  # model ab = Lab ab / 110 (the pix2pix colorization scaling)
TEMPERATURE = 0.38  # Zhang et al.'s annealed-mean temperature, at vividness 1
# The tint a regression colorizer lays over a frame it cannot read (an old photo, a crowd, an interior) is the
# average of its training colours: yellow-olive, hue about 90-115 degrees (docs/old_photos.md). Real photos' casts
# are mostly warm (skin, wood, sunsets, ~50-60 degrees) and are left alone: the gate is zero CAST_HUE_WIDTH away.
CAST_HUE = 115.0  # degrees in the ab plane (0: +a red-magenta, 90: +b yellow, 180: -a green)
CAST_HUE_WIDTH = 50.0  # degrees either side of CAST_HUE where the correction fades to zero
CAST_UNIFORMITY = 0.5  # |mean ab| / mean |ab| below which a frame has colours, not a tint: left alone


def without_cast(ab, strength=1.0):
    """Lab ab [N, h, w, 2] -> the same with a share of a whole-frame yellow-olive tint taken away, per photo.

        m = mean ab over the frame,  u = |m| / mean |ab|  (1: one tint everywhere; 0: colours that cancel)
        g = clip((cos(hue(m) - CAST_HUE) - cos(CAST_HUE_WIDTH)) / (1 - cos(CAST_HUE_WIDTH)), 0, 1)
        ab' = ab - strength * clip((u - CAST_UNIFORMITY) / (1 - CAST_UNIFORMITY), 0, 1) * g * m

    strength 0 is the identity. It is homogeneous in ab (u and the hue do not change with scale), so it commutes
    with the vividness gain. Plain elementwise arithmetic and means: it traces into the SavedModel's signature.
    """
    ab = tf.cast(ab, tf.float32)
    mean = tf.reduce_mean(ab, axis=[1, 2], keepdims=True)
    size = tf.sqrt(tf.reduce_sum(tf.square(mean), -1, keepdims=True))
    uniformity = size / (tf.reduce_mean(tf.sqrt(tf.reduce_sum(tf.square(ab), -1, keepdims=True)), axis=[1, 2],
                                        keepdims=True) + 1e-6)
    centre = tf.constant([_cos(CAST_HUE), _sin(CAST_HUE)], tf.float32)
    cos_off = tf.reduce_sum(mean * centre, -1, keepdims=True) / (size + 1e-6)
    gate = tf.clip_by_value((cos_off - _cos(CAST_HUE_WIDTH)) / (1.0 - _cos(CAST_HUE_WIDTH)), 0.0, 1.0)
    share = tf.clip_by_value((uniformity - CAST_UNIFORMITY) / (1.0 - CAST_UNIFORMITY), 0.0, 1.0)
    return ab - tf.cast(strength, tf.float32) * share * gate * mean


def _cos(degrees: float) -> float:
    return math.cos(math.radians(degrees))


def _sin(degrees: float) -> float:
    return math.sin(math.radians(degrees))


def is_classification(channels: int) -> bool:
    """Whether a generator with this many output channels predicts ab bins (2: ab, 3: RGB)."""
    return channels not in (2, 3)


def decode(output, color_space: str, vividness=1.0, cast_correction=0.0):
    """Generator output -> ab / 110 (Lab) or RGB in [-1, 1], float32, at the given vividness, with cast_correction's
    share of a whole-frame yellow-olive tint taken away (without_cast; 0: none)."""
    output = tf.cast(output, tf.float32)
    vividness = tf.cast(vividness, tf.float32)
    channels = output.shape[-1]
    if is_classification(channels):
        from colorgan.color.ab_classes import ab_bins, annealed_mean
        return _cast_removed(annealed_mean(output, ab_bins(), TEMPERATURE / vividness) / AB_SCALE, cast_correction)
    if color_space == "lab":
        return _cast_removed(output * vividness, cast_correction)  # without_cast is homogeneous: any ab scale
    rgb = tf.clip_by_value((output + 1.0) / 2.0, 0.0, 1.0)
    lab = rgb_to_lab(rgb)
    ab = _cast_removed(lab[..., 1:] * vividness, cast_correction)
    vivid = lab_to_rgb(tf.concat([lab[..., :1], ab], axis=-1))
    return vivid * 2.0 - 1.0


def _cast_removed(ab, cast_correction):
    if isinstance(cast_correction, (int, float)) and cast_correction == 0:
        return ab  # nothing to take away: the graph as before
    return without_cast(ab, cast_correction)


def predicted_ab(output, color_space: str, vividness=1.0, cast_correction=0.0):
    """Generator output -> Lab ab (not scaled), the chroma to put beside a photo's own L, with cast_correction's
    share of a whole-frame yellow-olive tint taken away (without_cast; 0: none)."""
    output = tf.cast(output, tf.float32)
    if color_space == "lab" or is_classification(output.shape[-1]):
        return decode(output, color_space, vividness, cast_correction) * AB_SCALE
    # RGB output: its ab once, scaled (decode would go to Lab, back to RGB and to Lab again)
    ab = rgb_to_lab(tf.clip_by_value((output + 1.0) / 2.0, 0.0, 1.0))[..., 1:] * tf.cast(vividness, tf.float32)
    return _cast_removed(ab, cast_correction)

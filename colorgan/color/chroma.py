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
"""
from __future__ import annotations

import tensorflow as tf

from colorgan.color.lab import lab_to_rgb, rgb_to_lab

AB_SCALE = 110.0  # model ab = Lab ab / 110 (the pix2pix colorization scaling)
TEMPERATURE = 0.38  # Zhang et al.'s annealed-mean temperature, at vividness 1


def is_classification(channels: int) -> bool:
    """Whether a generator with this many output channels predicts ab bins (2: ab, 3: RGB)."""
    return channels not in (2, 3)


def decode(output, color_space: str, vividness=1.0):
    """Generator output -> ab / 110 (Lab) or RGB in [-1, 1], float32, at the given vividness."""
    output = tf.cast(output, tf.float32)
    vividness = tf.cast(vividness, tf.float32)
    channels = output.shape[-1]
    if is_classification(channels):
        from colorgan.color.ab_classes import ab_bins, annealed_mean
        return annealed_mean(output, ab_bins(), TEMPERATURE / vividness) / AB_SCALE
    if color_space == "lab":
        return output * vividness
    rgb = tf.clip_by_value((output + 1.0) / 2.0, 0.0, 1.0)
    lab = rgb_to_lab(rgb)
    vivid = lab_to_rgb(tf.concat([lab[..., :1], lab[..., 1:] * vividness], axis=-1))
    return vivid * 2.0 - 1.0


def predicted_ab(output, color_space: str, vividness=1.0):
    """Generator output -> Lab ab (not scaled), the chroma to put beside a photo's own L."""
    output = tf.cast(output, tf.float32)
    if color_space == "lab" or is_classification(output.shape[-1]):
        return decode(output, color_space, vividness) * AB_SCALE
    # RGB output: its ab once, scaled (decode would go to Lab, back to RGB and to Lab again)
    return rgb_to_lab(tf.clip_by_value((output + 1.0) / 2.0, 0.0, 1.0))[..., 1:] * tf.cast(vividness, tf.float32)

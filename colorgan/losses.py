"""pix2pix losses on logits: BCE adversarial terms plus lambda * L1 for the generator."""
from __future__ import annotations

import keras
from keras import ops

_bce = keras.losses.BinaryCrossentropy(from_logits=True)


def discriminator_loss(real_logits, fake_logits):
    """BCE(real -> 1) + BCE(fake -> 0)."""
    real_logits, fake_logits = ops.cast(real_logits, "float32"), ops.cast(fake_logits, "float32")
    return _bce(ops.ones_like(real_logits), real_logits) + _bce(ops.zeros_like(fake_logits), fake_logits)


def l1_loss(target, generated):
    return ops.mean(ops.abs(ops.cast(target, "float32") - ops.cast(generated, "float32")))


def generator_loss(fake_logits, generated, target, lambda_l1: float = 100.0):
    """(total, gan, l1): BCE(fake -> 1) + lambda * mean |target - generated|."""
    fake_logits = ops.cast(fake_logits, "float32")
    gan = _bce(ops.ones_like(fake_logits), fake_logits)
    l1 = l1_loss(target, generated)
    return gan + lambda_l1 * l1, gan, l1

"""pix2pix losses: adversarial terms on the discriminator's logits (or critic scores) plus lambda * L1.

Each loss is a mean over the images the caller sees; under tf.distribute the train step scales it by
1 / replicas, because gradients are summed over replicas.
"""
from __future__ import annotations

import tensorflow as tf
from keras import ops

from colorgan.config import GAN_LOSSES

# What the training models report, in history.csv's order, with what each one is.
LOSS_TITLES = {"g_total": "generator total", "g_gan": "generator adversarial (--gan-loss)",
               "g_l1": "generator L1 (ab/110)", "d": "discriminator (real + fake)",
               "g_class": "generator ab classification (cross-entropy)", "g_colour": "generator colourfulness term",
               "g_percep": "generator perceptual term (pretrained features)",
               "g_chroma": "generator chroma deficit (ab/110)"}
LOSS_NAMES = ("g_total", "g_gan", "g_l1", "d")  # pix2pix's; g_class, g_colour, g_percep, g_chroma where trained
ALL_LOSS_NAMES = tuple(LOSS_TITLES)


def _bce(target, logits):
    """Mean binary cross-entropy on logits. (Not keras.losses.BinaryCrossentropy: under tf.distribute
    that already divides by the replica count, and the train step does so for every loss.)"""
    return ops.mean(ops.binary_crossentropy(target, logits, from_logits=True))


def _f32(x):
    return ops.cast(x, "float32")


def discriminator_loss(real_logits, fake_logits, kind: str = "vanilla", label_smoothing: float = 0.0):
    """The discriminator's (critic's) loss on one batch of real and generated pairs.

    vanilla: BCE(real -> 1 - smoothing) + BCE(fake -> 0)        (pix2pix)
    lsgan:   mean (real - (1 - smoothing))^2 + mean fake^2       (least squares GAN)
    hinge:   mean relu(1 - real) + mean relu(1 + fake)
    wgan-gp: mean fake - mean real (the penalty is added by the caller: `gradient_penalty`)
    """
    real, fake = _f32(real_logits), _f32(fake_logits)
    real_target = 1.0 - label_smoothing
    if kind == "vanilla":
        return _bce(ops.full_like(real, real_target), real) + _bce(ops.zeros_like(fake), fake)
    if kind == "lsgan":
        return ops.mean(ops.square(real - real_target)) + ops.mean(ops.square(fake))
    if kind == "hinge":
        return ops.mean(ops.relu(1.0 - real)) + ops.mean(ops.relu(1.0 + fake))
    if kind == "wgan-gp":
        return ops.mean(fake) - ops.mean(real)
    raise ValueError(f"adversarial loss {kind!r} is not one of {', '.join(GAN_LOSSES)}")


def adversarial_loss(fake_logits, kind: str = "vanilla"):
    """The generator's adversarial term: make the discriminator call its output real."""
    fake = _f32(fake_logits)
    if kind == "vanilla":
        return _bce(ops.ones_like(fake), fake)
    if kind == "lsgan":
        return ops.mean(ops.square(fake - 1.0))
    if kind in ("hinge", "wgan-gp"):
        return -ops.mean(fake)
    raise ValueError(f"adversarial loss {kind!r} is not one of {', '.join(GAN_LOSSES)}")


def l1_loss(target, generated):
    return ops.mean(ops.abs(_f32(target) - _f32(generated)))


def generator_loss(fake_logits, l1, lambda_l1: float = 100.0, kind: str = "vanilla", adversarial_weight=1.0):
    """(total, gan): adversarial_weight * adversarial + lambda * l1, where l1 = mean |target - generated|
    (l1_loss, computed once by the caller, which also reports it).

    adversarial_weight is 0 during an L1-only warm-up, 1 after.
    """
    gan = adversarial_loss(fake_logits, kind)
    return adversarial_weight * gan + lambda_l1 * l1, gan


def _safe_sqrt(x, eps=1e-6):
    """sqrt(x), with a zero gradient instead of an infinite one at x = 0 (e.g. a gray image's sigma)."""
    return ops.where(x > eps, ops.sqrt(ops.maximum(x, eps)), 0.0)


def colourfulness_loss(rgb):
    """DDColor's colourfulness loss on RGB in [0, 1], [N, H, W, 3]: 1 - mean over images of C / 100, where

        C = sigma_rgyb + 0.3 mu_rgyb   (Hasler & Suesstrunk 2003; colorgan.evaluation.metrics.colourfulness),
        rg = R - G,  yb = (R + G) / 2 - B   on the 0-255 scale, per image over its pixels,
        sigma_rgyb = sqrt(var(rg) + var(yb)),  mu_rgyb = sqrt(mean(rg)^2 + mean(yb)^2).

    Lower for more colourful images; float32, differentiable (also at a gray image, where C = 0).
    """
    rgb = _f32(rgb) * 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    n = ops.shape(rgb)[0]
    rg = ops.reshape(r - g, (n, -1))
    yb = ops.reshape(0.5 * (r + g) - b, (n, -1))
    sigma = _safe_sqrt(ops.var(rg, axis=1) + ops.var(yb, axis=1))
    mu = _safe_sqrt(ops.square(ops.mean(rg, axis=1)) + ops.square(ops.mean(yb, axis=1)))
    return 1.0 - ops.mean(sigma + 0.3 * mu) / 100.0


def chroma_deficit_loss(target, generated):
    """The chroma-deficit term on ab (any one scale, e.g. ab / 110), [N, H, W, 2]: the mean over pixels of

        max(0, |ab_true| - |ab_generated|),   |ab| = sqrt(a^2 + b^2)

    It charges only for colour that is too weak, never for its hue or for too much: L1 alone is minimised by
    the median of a pixel's plausible colours, which is pale wherever the hue is uncertain; this term pulls
    the strength toward the truth's where the network is sure a colour is strong, and is zero on gray truth.
    Unlike the colourfulness term it is per pixel, so a strip of paint at the border cannot pay it off.
    """
    target, generated = _f32(target), _f32(generated)
    true_chroma = _safe_sqrt(ops.sum(ops.square(target), axis=-1))
    chroma = _safe_sqrt(ops.sum(ops.square(generated), axis=-1))
    return ops.mean(ops.relu(true_chroma - chroma))


def perceptual_loss(features, generated_rgb, true_rgb):
    """The perceptual term on RGB in [0, 1], [N, H, W, 3]: with phi_1 .. phi_K the feature maps of a frozen
    pretrained network (`features`: RGB in [0, 1] -> a list of maps; efficientnet.perceptual_features),

        loss = 1/K sum_k mean |phi_k(generated) - phi_k(true)|

    (L1 per feature, as DeOldify's feature loss; the maps of the true image are constants). Zero for identical
    images; it scores colour by what the network sees in it (a red dress against a brown one) rather than by
    per-pixel distance alone, which the average of the plausible colours minimises.
    """
    generated = features(_f32(generated_rgb))
    true = [tf.stop_gradient(f) for f in features(_f32(true_rgb))]
    return ops.mean(ops.stack([ops.mean(ops.abs(_f32(g) - _f32(t))) for g, t in zip(generated, true)]))


def gradient_penalty(critic, gray, real, fake):
    """WGAN-GP: mean over images of (||d critic / d x|| - 1)^2 at random points between real and fake.

    x = real + u (fake - real), u ~ U(0, 1) per image; the critic sees (gray, x) and the gradient is
    taken with respect to the colour channels (the gray condition is the same for both). An image's
    critic value is the mean of its patch scores, so a 1-Lipschitz critic has a penalty near 0.
    """
    real, fake = _f32(real), _f32(fake)
    u = tf.random.uniform([tf.shape(real)[0], 1, 1, 1], 0.0, 1.0)
    interpolates = real + u * (fake - real)
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        # An image's critic value is the mean of its patch scores (what the Wasserstein loss averages).
        scores = tf.reduce_mean(_f32(critic([gray, interpolates], training=True)), axis=[1, 2, 3])
    grads = tape.gradient(scores, interpolates)  # summed over images: each image's gradient is its own
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]) + 1e-12)
    return tf.reduce_mean(tf.square(norms - 1.0))

"""Colorization metrics on float RGB images in [0, 1], shape [N, H, W, 3]; each returns one value per image.

  psnr, ssim     tf.image.psnr / tf.image.ssim with max_val 1.0, on RGB
  colourfulness  Hasler & Suesstrunk (2003), on the 0-255 scale: sigma_rgyb + 0.3 * mu_rgyb
  ab_auc         Zhang et al. (2016): fraction of pixels whose ab lies within t of the truth, averaged over
                 t = 0, 1, ..., 150 (1.0 for a perfect prediction)
and frechet_distance between two sets of feature vectors (FID's formula).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from colorgan.color.lab import rgb_to_lab

AUC_MAX_DISTANCE = 150


def psnr(pred, truth):
    return tf.image.psnr(tf.cast(pred, tf.float32), tf.cast(truth, tf.float32), max_val=1.0)


def ssim(pred, truth):
    return tf.image.ssim(tf.cast(pred, tf.float32), tf.cast(truth, tf.float32), max_val=1.0)


def colourfulness(rgb):
    rgb = tf.cast(rgb, tf.float32) * 255.0
    r, g, b = tf.unstack(rgb, axis=-1)
    rg = tf.reshape(r - g, [tf.shape(rgb)[0], -1])
    yb = tf.reshape(0.5 * (r + g) - b, [tf.shape(rgb)[0], -1])
    sigma = tf.sqrt(tf.math.reduce_variance(rg, axis=1) + tf.math.reduce_variance(yb, axis=1))
    mu = tf.sqrt(tf.reduce_mean(rg, axis=1) ** 2 + tf.reduce_mean(yb, axis=1) ** 2)
    return sigma + 0.3 * mu


def ab_auc(pred, truth, max_distance: int = AUC_MAX_DISTANCE):
    """Per image: mean over t in 0..max_distance of P(|ab_pred - ab_true| <= t).

    Closed form per pixel: the number of integer thresholds t >= d is max_distance + 1 - ceil(d).
    """
    d = tf.norm(rgb_to_lab(pred)[..., 1:] - rgb_to_lab(truth)[..., 1:], axis=-1)  # [N, H, W]
    # d within float noise of an integer counts as that integer (a perfect prediction is exactly 1).
    hits = tf.clip_by_value(max_distance + 1.0 - tf.math.ceil(d - 1e-3), 0.0, max_distance + 1.0)
    return tf.reduce_mean(hits, axis=[1, 2]) / (max_distance + 1.0)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2), the trace term from symmetric eigendecompositions."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    vals, vecs = np.linalg.eigh(cov_a)
    sqrt_a = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    # Tr((S_a S_b)^1/2) = Tr((S_a^1/2 S_b S_a^1/2)^1/2), and the latter is symmetric PSD.
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt)

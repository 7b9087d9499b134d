"""Colour as classification over ab bins (Zhang, Isola, Efros, "Colorful Image Colorization", ECCV 2016).

The ab plane is cut into 10 x 10 cells centred on multiples of 10; the bins are the cells that some sRGB
colour reaches (Q of them, `ab_bins`). The generator predicts Q logits per pixel, trained against soft
targets (`soft_encode`) with a class-rebalanced cross-entropy (`rebalancing_weights`,
`classification_loss`), and decoded to ab by the annealed mean (`annealed_mean`).

Every ab here is in Lab units (about [-110, 110]), not the model's ab/110. The TF functions work eagerly,
inside a tf.function train step and inside tf.data.map; the bins and the rebalancing weights are set-up
(numpy), computed once and passed in.
"""
from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf

from colorgan.color.lab import rgb_to_lab

log = logging.getLogger("colorgan")

BIN_SIZE = 10.0  # the grid of the bins, in ab units
NEIGHBOURS = 5  # soft encoding: the nearest bins a target pixel is spread over
SIGMA = 5.0  # soft encoding and histogram smoothing: the Gaussian's sigma in ab units
MIX = 0.5  # rebalancing: lambda, the weight of the uniform distribution in the mix
TEMPERATURE = 0.38  # annealed mean: Zhang's default
HEAD_SIGMA = 10.0  # logits_head_from_regression: the spread, in ab units, of the distribution it starts from
_MIN_TEMPERATURE = 1e-6  # below this the annealed mean is the mode

_CHUNK = 1 << 20  # pixels per nearest-bin call in rebalancing_weights
_BINS: np.ndarray | None = None  # ab_bins() of this process, computed on first use


def _cube_surface_8bit() -> np.ndarray:
    """Every 8-bit sRGB colour on the surface of the RGB cube, [6 * 256^2, 3] in [0, 1].

    The ab plane is a projection of Lab, and the projection of a solid is that of its surface: the
    colour with the largest L over each ab point of the gamut lies on the cube's surface. Checked
    on the 8-bit grid: the surface reaches exactly the cells that all 256^3 colours reach.
    """
    v = np.arange(256, dtype=np.float32) / 255.0
    u, w = (x.ravel() for x in np.meshgrid(v, v, indexing="ij"))
    faces = []
    for axis in range(3):
        others = [i for i in range(3) if i != axis]
        for value in (0.0, 1.0):
            face = np.empty((u.size, 3), np.float32)
            face[:, axis] = value
            face[:, others[0]], face[:, others[1]] = u, w
            faces.append(face)
    return np.concatenate(faces)


def ab_bins() -> np.ndarray:
    """The in-gamut ab bin centres, float32 [Q, 2] (a, b), sorted by a then b.

    A centre c (a and b multiples of BIN_SIZE) is a bin iff some 8-bit sRGB colour's ab (colorgan.color.lab's
    D65 conversion) lies in its cell [c - 5, c + 5)^2. This gives Q = 261; Zhang's published set has 313
    centres on the same grid, so it also holds cells that no sRGB colour reaches. Computed once per
    process (about 0.5 s) from the cube's surface, which reaches the same cells as all 256^3 colours.
    """
    global _BINS
    if _BINS is None:
        with tf.init_scope():  # eager even if first called while a tf.function or tf.data.map is traced
            ab = rgb_to_lab(_cube_surface_8bit()).numpy()[:, 1:]
        cells = np.unique(np.floor(ab / BIN_SIZE + 0.5).astype(np.int64), axis=0)  # sorted by a, then b
        _BINS = (cells * BIN_SIZE).astype(np.float32)
        _BINS.setflags(write=False)
    return _BINS


def _bins_tensor(bins):
    return tf.cast(bins, tf.float32) if tf.is_tensor(bins) else tf.constant(np.asarray(bins, np.float32))


def _neg_half_scores(ab, bins):
    """[..., Q]: 2 ab . c - |c|^2, which is |c|^2 - |ab - c|^2 up to the per-pixel constant |ab|^2,
    so its largest entries are the nearest bins (one matmul, no [..., Q, 2] intermediate)."""
    return tf.tensordot(ab, 2.0 * tf.transpose(bins), axes=1) - tf.reduce_sum(tf.square(bins), axis=-1)


def nearest_bin(ab, bins):
    """ab [..., 2] (Lab units) -> int32 [...]: the index q of the bin centre c_q nearest to ab (argmin |ab - c_q|)."""
    ab, bins = tf.cast(ab, tf.float32), _bins_tensor(bins)
    return tf.argmax(_neg_half_scores(ab, bins), axis=-1, output_type=tf.int32)


def soft_encode_sparse(ab, bins, neighbours: int = NEIGHBOURS, sigma: float = SIGMA):
    """ab [..., 2] (Lab units) -> (idx int32 [..., k], w float32 [..., k]): Zhang's soft targets as the k bins
    nearest to ab (nearest first) and their weights, the non-zero part of soft_encode's Z:

        w_j = exp(-|ab - c_idx_j|^2 / (2 sigma^2)) / sum_r exp(-|ab - c_idx_r|^2 / (2 sigma^2)).

    Why sparse: at full resolution the dense Z is [B, H, W, Q] (a 16 x 128 x 128 batch: 68 M floats), and
    building it cost more than the rest of the loss; classification_loss_sparse needs only these k entries.
    """
    ab, bins = tf.cast(ab, tf.float32), _bins_tensor(bins)
    _, idx = tf.math.top_k(_neg_half_scores(ab, bins), k=neighbours)  # [..., k], nearest first
    d2 = tf.reduce_sum(tf.square(ab[..., None, :] - tf.gather(bins, idx)), axis=-1)  # exact, [..., k]
    # Softmax of -d2 / (2 sigma^2): the Gaussian weights, normalised, without underflow far from every bin.
    return idx, tf.nn.softmax(-d2 / (2.0 * sigma ** 2), axis=-1)


def soft_encode(ab, bins, neighbours: int = NEIGHBOURS, sigma: float = SIGMA):
    """ab [..., 2] (Lab units) -> soft targets Z [..., Q], float32 (Zhang sec. 2.1).

        Z_q = exp(-|ab - c_q|^2 / (2 sigma^2)) / sum_{r in N} exp(-|ab - c_r|^2 / (2 sigma^2))   for q in N,
        Z_q = 0                                                                                     otherwise,

    N the `neighbours` bins nearest to ab. Each pixel's Z sums to 1, and its nearest bin has the largest Z.
    (Ties between equidistant bins go to the lower index, as tf.math.top_k breaks them.) Training uses the
    sparse form (soft_encode_sparse); this dense one is for inspection and tests.
    """
    idx, w = soft_encode_sparse(ab, bins, neighbours, sigma)
    q = tf.shape(_bins_tensor(bins))[0]
    # One one-hot at a time (not one [..., k, Q] tensor): the targets are large at full resolution.
    out = tf.one_hot(idx[..., 0], q, dtype=tf.float32) * w[..., :1]
    for j in range(1, neighbours):
        out += tf.one_hot(idx[..., j], q, dtype=tf.float32) * w[..., j:j + 1]
    return out


def smooth_distribution(p, bins, sigma: float = SIGMA) -> np.ndarray:
    """p [Q] (sums to 1) -> p~ [Q]: p smoothed with a Gaussian over the bin centres (Zhang sec. 2.2).

        p~_q = sum_r p_r K_rq,   K_rq = exp(-|c_r - c_q|^2 / (2 sigma^2)) / sum_s exp(-|c_r - c_s|^2 / (2 sigma^2)),

    each bin's mass spread over the bins near it, so p~ also sums to 1.
    """
    c = np.asarray(bins, np.float64)
    g = np.exp(-((c[:, None, :] - c[None, :, :]) ** 2).sum(-1) / (2.0 * sigma ** 2))
    return np.asarray(p, np.float64) @ (g / g.sum(axis=1, keepdims=True))


def rebalancing_weights(ab_pixels_or_histogram, bins, mix: float = MIX, sigma: float = SIGMA) -> np.ndarray:
    """Zhang's class rebalancing weights, float32 [Q] (eq. 4).

    From ab pixels [..., 2] (Lab units; each hard-assigned to its nearest bin) or a histogram [Q] of counts:

        p   = counts / sum(counts)                 the empirical bin distribution
        p~  = smooth_distribution(p, sigma)        Gaussian-smoothed over the bin centres
        w_q = ((1 - mix) p~_q + mix / Q)^-1,  scaled so that E_p~[w] = sum_q p~_q w_q = 1.

    Rare colours get large weights, common ones (the grays and browns) small ones. mix = 0 (pure inverse
    frequency) needs every bin near some counted colour; Zhang uses 0.5.
    """
    bins = np.asarray(bins, np.float32)
    q = len(bins)
    x = np.asarray(ab_pixels_or_histogram)
    if x.ndim == 1 and x.shape[0] == q:
        counts = x.astype(np.float64)
    elif x.ndim >= 1 and x.shape[-1] == 2:
        ab = x.reshape(-1, 2).astype(np.float32)
        counts = np.zeros(q, np.float64)
        for start in range(0, len(ab), _CHUNK):  # bounded memory: nearest_bin makes [pixels, Q] scores
            counts += np.bincount(nearest_bin(ab[start:start + _CHUNK], bins).numpy(), minlength=q)
    else:
        raise ValueError(f"expected ab pixels [..., 2] or a histogram [{q}], got shape {x.shape}")
    if counts.sum() <= 0 or np.any(counts < 0):
        raise ValueError("the histogram is empty (no colour pixels): no class rebalancing weights")
    p_smooth = smooth_distribution(counts / counts.sum(), bins, sigma)
    with np.errstate(divide="ignore", over="ignore"):
        w = 1.0 / ((1.0 - mix) * p_smooth + mix / q)
        w = (w / (p_smooth * w).sum()).astype(np.float32)
    if not np.all(np.isfinite(w)):
        raise ValueError(f"mix {mix} leaves bins with (nearly) 0 probability, so infinite weights: "
                         "use 0 < mix <= 1")
    return w


def _example_histogram(example, bins, q: int, gray_chroma: float):
    """uint8 [H, W, 3 or 4] or a batch of them -> (bin counts [Q] of its colour images, colour images, gray images)."""
    shape = tf.shape(example)
    images = tf.reshape(example, tf.concat([[-1], shape[-3:]], axis=0))[..., :3]  # [N, H, W, 3]
    rgb = tf.cast(images, tf.float32)
    chroma = tf.reduce_mean(tf.abs(rgb[..., 0] - rgb[..., 1]) + tf.abs(rgb[..., 1] - rgb[..., 2]), axis=[1, 2])
    colour = chroma >= gray_chroma  # [N]
    idx = nearest_bin(rgb_to_lab(rgb / 255.0)[..., 1:], bins)  # [N, H, W]
    pixel_weight = tf.broadcast_to(tf.cast(colour, tf.int64)[:, None, None], tf.shape(idx, out_type=tf.int32))
    counts = tf.math.bincount(idx, weights=pixel_weight, minlength=q, maxlength=q,
                              dtype=tf.int64)
    n_colour = tf.reduce_sum(tf.cast(colour, tf.int64))
    return counts, n_colour, tf.cast(tf.shape(images)[0], tf.int64) - n_colour


def ab_histogram(dataset: tf.data.Dataset, bins, gray_chroma: float, progress=None):
    """Count the pixels of each ab bin over a dataset of uint8 RGB(+gray) examples ([H, W, 4] as
    colorgan.data.sources's pipelines, [H, W, 3], or batches of either).

    An image is left out if it has no colour: mean |R - G| + |G - B| (0-255) < gray_chroma (training passes
    colorgan.data.image_files.GRAY_CHROMA, 1.0, the data scan's test for black-and-white photos). Every pixel of
    the other images counts, in its nearest bin (ab from colorgan.color.lab.rgb_to_lab).

    progress: wraps the iteration over the dataset's elements (a progress bar), e.g. colorgan.progress.progress_bar.
    Returns (counts int64 [Q], colour images counted, gray images left out); `rebalancing_weights(counts, bins)`.
    """
    bins_t = _bins_tensor(bins)
    q = int(bins_t.shape[0])
    per_example = dataset.map(lambda x: _example_histogram(x, bins_t, q, float(gray_chroma)),
                              num_parallel_calls=tf.data.AUTOTUNE)
    counts, n_colour, n_gray = np.zeros(q, np.int64), 0, 0
    for c, colour, gray in (progress or iter)(per_example.prefetch(tf.data.AUTOTUNE)):
        counts, n_colour, n_gray = counts + c.numpy(), n_colour + int(colour), n_gray + int(gray)
    log.info("ab histogram: %d colour images counted, %d without colour left out", n_colour, n_gray)
    return counts, int(n_colour), int(n_gray)


def annealed_mean(logits, bins, temperature=TEMPERATURE):
    """Logits [..., Q] -> ab [..., 2] in Lab units, float32 whatever the logits' dtype (Zhang eq. 5).

        f_T(z) = exp(log z / T) / sum_q exp(log z_q / T),  z = softmax(logits),
        ab     = sum_q f_T(z)_q c_q.

    log z = logits - logsumexp(logits), so f_T(z) = softmax(logits / T). T = 1 gives the mean of the
    predicted distribution, T -> 0 its mode (T = 0 is allowed: the mode, ties averaged); T may be a tensor.
    """
    logits, bins = tf.cast(logits, tf.float32), _bins_tensor(bins)
    t = tf.maximum(tf.cast(temperature, tf.float32), _MIN_TEMPERATURE)
    return tf.tensordot(tf.nn.softmax(logits / t, axis=-1), bins, axes=1)  # softmax subtracts the max: no overflow


def classification_loss(logits, soft_targets, weights=None):
    """Class-rebalanced multinomial cross-entropy, float32 (Zhang eqs. 2-3).

        L = mean over pixels (h, w) of  v(Z_hw) * ( - sum_q Z_hw,q log softmax(logits_hw)_q ),
        v(Z_hw) = weights[argmax_q Z_hw,q]   (the rebalancing weight of the target's nearest bin; 1 if weights is None)

    logits and soft_targets [..., Q]; the mean is over every leading axis (images and pixels). The weights are
    not renormalised per batch: scaling them scales the loss.
    """
    logits = tf.cast(logits, tf.float32)
    targets = tf.stop_gradient(tf.cast(soft_targets, tf.float32))
    ce = tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits)  # [...]
    if weights is not None:
        ce *= tf.gather(tf.cast(weights, tf.float32), tf.argmax(targets, axis=-1))
    return tf.reduce_mean(ce)


def classification_loss_sparse(logits, idx, w, weights=None):
    """classification_loss with the soft targets given sparsely (soft_encode_sparse's idx, w), float32.

        L = mean over pixels of  v_hw * ( logsumexp(logits_hw) - sum_j w_hw,j logits_hw,idx_j ),   v_hw = weights[idx_hw,0]

    the same number as classification_loss(logits, Z, weights) (the w sum to 1, so - sum_q Z_q log softmax_q
    = logsumexp - sum_j w_j logits_idx_j; the nearest bin idx_0 is Z's argmax), without the dense [..., Q] Z.
    """
    logits = tf.cast(logits, tf.float32)
    idx, w = tf.stop_gradient(idx), tf.stop_gradient(tf.cast(w, tf.float32))
    picked = tf.gather(logits, idx, batch_dims=len(logits.shape) - 1)  # [..., k]
    ce = tf.reduce_logsumexp(logits, axis=-1) - tf.reduce_sum(w * picked, axis=-1)
    if weights is not None:
        ce *= tf.gather(tf.cast(weights, tf.float32), idx[..., 0])
    return tf.reduce_mean(ce)


def logits_head_from_regression(kernel, bias, bins, sigma: float = HEAD_SIGMA, ab_scale: float = 110.0):
    """A regression output layer -> a classification output layer that starts where the regression model is.

    The regression layer gives ab / ab_scale = tanh(K x + b) per pixel (K [..., 2, C] over the layer's
    input x, b [2]; the last but one axis of K is the output channel, as in Keras' Conv2DTranspose).
    The logits layer returned,

        logits_q = (c_q . a) / sigma^2 - |c_q|^2 / (2 sigma^2),   a = ab_scale (K x + b),

    equals -|a - c_q|^2 / (2 sigma^2) up to a per-pixel constant, so its softmax is a Gaussian of spread sigma
    over the bins around a, the regression's ab before the tanh (close to it below |ab| of about 60). Its
    annealed mean is then about the regression's ab, and fine-tuning with the cross-entropy starts from the
    regression model's colours instead of from a random layer. Linear in K and b:

        K'_q = ab_scale (c_q,a K_a + c_q,b K_b) / sigma^2,   b'_q = ab_scale (c_q . b) / sigma^2 - |c_q|^2 / (2 sigma^2).

    Returns (kernel [..., Q, C], bias [Q]), float32 numpy.
    """
    k = np.asarray(kernel, np.float64)
    b = np.asarray(bias, np.float64)
    c = np.asarray(bins, np.float64)  # [Q, 2]
    if k.shape[-2] != 2 or b.shape != (2,):
        raise ValueError(f"expected a regression layer with 2 outputs (ab), got kernel {k.shape}, bias {b.shape}")
    scale = ab_scale / sigma ** 2
    new_kernel = scale * np.einsum("qj,...jc->...qc", c, k)
    new_bias = scale * (c @ b) - (c ** 2).sum(-1) / (2.0 * sigma ** 2)
    return new_kernel.astype(np.float32), new_bias.astype(np.float32)

"""User colour hints as the generator sees them, and hints simulated from the truth for training (--hints).

A hint is a point (or small patch) of known colour: its ab, in the model's ab/110 scale. The generator of a
hint model takes three channels beside the gray one: the hints' ab painted over their patches and a mask (1
where a hint is, 0 elsewhere), so "no hints" is all zeros. Training draws them from the true image as Zhang et
al. 2017 do ("Real-Time User-Guided Image Colorization with Learned Deep Priors"): a geometric number of
points per image (none included, so the model still colorizes alone), each the mean ab of a square patch of 1
to 9 pixels, at uniformly drawn places. Every op here works eagerly and inside tf.data.map or a tf.function.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

HINT_CHANNELS = 3  # a, b (ab/110 of the hint's colour over its patch), mask
HINT_P = 1.0 / 8.0  # the geometric distribution of the number of points: P(k) = p (1 - p)^k, k = 0, 1, ...
MAX_POINTS = 32  # drawn counts above this are cut to it (P(k > 32) is about 1.4%)
MAX_RADIUS = 4  # a patch is (2r + 1)^2 pixels, r uniform in 0..MAX_RADIUS (1x1 to 9x9, Zhang's sizes)


def simulate_hints(ab, seed, count: int | None = None) -> tf.Tensor:
    """True ab [N, H, W, 2] (or [H, W, 2]) in any scale -> hints [N, H, W, 3] (or [H, W, 3]): each patch's mean
    true ab painted over the patch (overlaps averaged), and the mask.

    count: None draws each image's number of points (geometric, HINT_P, at most MAX_POINTS); an int gives every
    image exactly that many (scoring with a fixed number of hints). seed: a stateless seed, shape [2].
    """
    ab = tf.convert_to_tensor(ab)
    single = ab.shape.rank == 3
    ab = tf.cast(ab[None] if single else ab, tf.float32)
    shape = tf.shape(ab)
    n, h, w = shape[0], shape[1], shape[2]
    seeds = tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int32), 4))
    if count is None:
        slots = MAX_POINTS
        u = tf.random.stateless_uniform([n], seeds[0], minval=1e-7, maxval=1.0)
        k = tf.minimum(tf.floor(tf.math.log(u) / np.log1p(-HINT_P)), float(MAX_POINTS))
    else:
        slots = max(int(count), 1)
        k = tf.fill([n], float(count))
    active = tf.cast(tf.range(slots, dtype=tf.float32)[None] < k[:, None], tf.float32)  # [N, P]
    cy = tf.random.stateless_uniform([n, slots], seeds[1], 0, h, dtype=tf.int32)
    cx = tf.random.stateless_uniform([n, slots], seeds[2], 0, w, dtype=tf.int32)
    r = tf.random.stateless_uniform([n, slots], seeds[3], 0, MAX_RADIUS + 1, dtype=tf.int32)
    in_y = tf.abs(tf.range(h)[None, None] - cy[..., None]) <= r[..., None]  # [N, P, H]
    in_x = tf.abs(tf.range(w)[None, None] - cx[..., None]) <= r[..., None]  # [N, P, W]
    patch = tf.cast(in_y[..., :, None] & in_x[..., None, :], tf.float32) * active[..., None, None]  # [N, P, H, W]
    area = tf.reduce_sum(patch, axis=[2, 3])
    mean_ab = tf.einsum("nphw,nhwc->npc", patch, ab) / tf.maximum(area, 1.0)[..., None]
    cover = tf.reduce_sum(patch, axis=1)  # [N, H, W]
    painted = tf.einsum("nphw,npc->nhwc", patch, mean_ab) / tf.maximum(cover, 1.0)[..., None]
    hints = tf.concat([painted, tf.cast(cover > 0, tf.float32)[..., None]], axis=-1)
    return hints[0] if single else hints


def no_hints(gray) -> tf.Tensor:
    """The hint channels of a photo without hints: zeros [N, H, W, 3] beside gray [N, H, W, 1]."""
    return tf.zeros(tf.concat([tf.shape(gray)[:-1], [HINT_CHANNELS]], 0), gray.dtype)


def paint_hint_points(points, height, width, valid=None, radius: int = 1) -> tf.Tensor:
    """User hints as points [N, K, 4] (y, x, a, b: the point at the working size in pixels, its ab in the model's
    scale) -> hint channels [N, height, width, 3] (TF ops, eager or in a graph): each point's ab over the
    (2 radius + 1)^2 patch around its rounded place (later points over earlier ones; parts outside are cut off),
    and the mask. valid [N, K] (bool): points to paint; the others (padding of a batch) are left out."""
    points = tf.convert_to_tensor(points, tf.float32)
    valid = tf.ones(tf.shape(points)[:2], tf.bool) if valid is None else tf.convert_to_tensor(valid, tf.bool)
    # One left-out point in front, so that K = 0 and "no point covers this pixel" need no special case.
    points = tf.pad(points, [[0, 0], [1, 0], [0, 0]])
    valid = tf.pad(valid, [[0, 0], [1, 0]])
    y, x = tf.round(points[..., 0]), tf.round(points[..., 1])  # half to even, as Python's round
    near_rows = tf.abs(tf.range(height, dtype=tf.float32) - y[..., None]) <= radius  # [N, K + 1, h]
    near_cols = tf.abs(tf.range(width, dtype=tf.float32) - x[..., None]) <= radius  # [N, K + 1, w]
    covers = near_rows[..., :, None] & near_cols[..., None, :] & valid[..., None, None]  # [N, K + 1, h, w]
    order = tf.range(tf.shape(points)[1], dtype=tf.int32)[None, :, None, None]
    last = tf.reduce_max(tf.where(covers, order, 0), axis=1)  # the latest point over each pixel; 0: none
    ab = tf.gather(points[..., 2:], last, batch_dims=1)  # [N, h, w, 2]
    mask = tf.cast(last > 0, tf.float32)[..., None]
    return tf.concat([ab * mask, mask], axis=-1)


def paint_hints(points, height: int, width: int, radius: int = 1) -> np.ndarray:
    """One photo's hints [(y, x, a, b), ...] -> its hint channels [height, width, 3] (paint_hint_points)."""
    points = np.asarray(points, np.float32).reshape(1, -1, 4)
    return paint_hint_points(points, height, width, radius=radius)[0].numpy()

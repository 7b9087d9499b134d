"""Old-photo degradations of a gray photo, for training (`train.py --degrade P`) and for scoring on old-looking inputs.

Real old photos are not clean gray copies of modern ones: film grain, blur, faded and uneven contrast, dust,
scratches, halftone or scanner texture, noise and JPEG artefacts. Training on gray inputs with these damages
(the colour target untouched) teaches the network to read the scene through them instead of colouring the
damage. Each degradation is a pure function

    f(gray, strength, seed) -> gray

on float32 [H, W, 1] in [0, 1]: shape, range and dtype kept, `strength` a scalar in [0, 1] (0: the photo
unchanged), `seed` a [2] int tensor for TensorFlow's stateless random ops (the same seed, the same damage,
eagerly or inside `tf.data.Dataset.map`, however many threads map). `old_photo` draws a mix of them.
"""
from __future__ import annotations

import math

import tensorflow as tf

# Each degradation's largest effect (strength 1), in the photo's 0-1 gray levels and its pixels
GRAIN_SIGMA = 0.09         # film grain: noise clumped over about 2 px
NOISE_SIGMA = 0.06         # sensor/scanner noise, pixel by pixel
JPEG_WORST_QUALITY = 15    # JPEG quality at strength 1 (95 at the weakest)
BLUR_SIGMA = 1.6           # Gaussian blur, px
BLUR_RADIUS = 4            # taps each side of the blur kernel
FADE_BLACK, FADE_WHITE = 0.35, 0.3  # black raised to at most 0.35, white lowered by at most 0.3
EXPOSURE_DEPTH = 0.5       # vignette or gradient: up to half the light lost at its darkest
DUST_DENSITY = 0.004       # specks per pixel
SCRATCHES = 3              # at most this many thin scratches
HALFTONE_AMPLITUDE = 0.08  # a screen or scanner texture's amplitude


def _split(seed, n: int):
    return tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), n))


def _uniform(seed, shape=(), low=0.0, high=1.0):
    return tf.random.stateless_uniform(shape, seed, low, high)


def _clip(gray):
    return tf.clip_by_value(gray, 0.0, 1.0)


def _pixel_grid(gray):
    """(y, x) float coordinates of every pixel, [H, W, 1] each, in pixels."""
    shape = tf.shape(gray)
    y, x = tf.meshgrid(tf.range(shape[0], dtype=tf.float32), tf.range(shape[1], dtype=tf.float32), indexing="ij")
    return y[..., None], x[..., None]


def film_grain(gray, strength, seed):
    """Silver grain: Gaussian noise n drawn at half resolution and enlarged (clumps of about 2 px), strongest in
    the mid-tones as on film: g + s GRAIN_SIGMA n 2 sqrt(g (1 - g))."""
    shape = tf.shape(gray)
    small = tf.random.stateless_normal(tf.stack([(shape[0] + 1) // 2, (shape[1] + 1) // 2, 1]), seed)
    noise = tf.image.resize(small, shape[:2], method="bilinear")
    midtones = 2.0 * tf.sqrt(gray * (1.0 - gray) + 1e-6)
    return _clip(gray + strength * GRAIN_SIGMA * noise * midtones)


def gaussian_noise(gray, strength, seed):
    """Pixel noise of a scanner or a high-ISO film: g + s * NOISE_SIGMA * n, n ~ N(0, 1) per pixel."""
    return _clip(gray + strength * NOISE_SIGMA * tf.random.stateless_normal(tf.shape(gray), seed))


def jpeg(gray, strength, seed):
    """JPEG compression at quality 95 - s (95 - JPEG_WORST_QUALITY) (blocking and ringing); s = 0: untouched."""
    del seed  # deterministic
    quality = tf.cast(tf.round(95.0 - strength * (95.0 - JPEG_WORST_QUALITY)), tf.int32)
    compressed = lambda: tf.reshape(tf.image.adjust_jpeg_quality(gray, quality), tf.shape(gray))  # noqa: E731
    return tf.cond(strength > 0, compressed, lambda: gray)


def blur(gray, strength, seed):
    """Out-of-focus or a soft lens: a separable Gaussian of sigma s * BLUR_SIGMA px (edges reflected)."""
    del seed
    sigma = tf.maximum(strength * BLUR_SIGMA, 1e-3)  # sigma -> 0: the kernel becomes [0, .., 1, .., 0]
    taps = tf.range(-BLUR_RADIUS, BLUR_RADIUS + 1, dtype=tf.float32)
    kernel = tf.exp(-0.5 * tf.square(taps / sigma))
    kernel = kernel / tf.reduce_sum(kernel)
    padded = tf.pad(gray[None], [[0, 0], [BLUR_RADIUS] * 2, [BLUR_RADIUS] * 2, [0, 0]], mode="REFLECT")
    out = tf.nn.conv2d(padded, tf.reshape(kernel, [-1, 1, 1, 1]), 1, "VALID")
    out = tf.nn.conv2d(out, tf.reshape(kernel, [1, -1, 1, 1]), 1, "VALID")
    return _clip(out[0])


def fade(gray, strength, seed):
    """A faded print: the black raised and the white lowered, lo + (hi - lo) g, with lo up to s FADE_BLACK and
    hi down to 1 - s FADE_WHITE (each a random share of that)."""
    black, white = _split(seed, 2)
    lo = strength * FADE_BLACK * _uniform(black, low=0.3)
    hi = 1.0 - strength * FADE_WHITE * _uniform(white, low=0.3)
    return _clip(lo + (hi - lo) * gray)


def uneven_exposure(gray, strength, seed):
    """Light falling off: a vignette around a random centre, or a gradient across the photo in a random
    direction (one or the other, at random), darkening by up to s EXPOSURE_DEPTH."""
    kind, centre, angle, depth = _split(seed, 4)
    y, x = _pixel_grid(gray)
    h, w = tf.cast(tf.shape(gray)[0], tf.float32), tf.cast(tf.shape(gray)[1], tf.float32)
    yn, xn = y / tf.maximum(h - 1, 1.0), x / tf.maximum(w - 1, 1.0)  # 0..1
    cy, cx = tf.unstack(_uniform(centre, [2], 0.3, 0.7))
    vignette = tf.minimum(((yn - cy) ** 2 + (xn - cx) ** 2) / 0.5, 1.0)  # 0 at the centre, 1 at the corners
    theta = _uniform(angle, high=2 * math.pi)
    gradient = tf.clip_by_value(0.5 + (xn - 0.5) * tf.cos(theta) + (yn - 0.5) * tf.sin(theta), 0.0, 1.0)
    shade = tf.where(_uniform(kind) < 0.5, vignette, gradient)
    return _clip(gray * (1.0 - strength * EXPOSURE_DEPTH * _uniform(depth, low=0.4) * shade))


def dust(gray, strength, seed):
    """Dust and specks: a few pixels per thousand (s DUST_DENSITY), a third of them 3x3, set white (dust on the
    negative) or black (on the print), one or the other per photo."""
    where, tone = _split(seed, 2)
    u = _uniform(where, tf.shape(gray))
    specks = tf.cast(u < strength * DUST_DENSITY, tf.float32)
    big = tf.nn.max_pool2d(tf.cast(u < strength * DUST_DENSITY * 0.3, tf.float32)[None], 3, 1, "SAME")[0]
    mask = tf.maximum(specks, big)
    value = tf.where(_uniform(tone) < 0.7, 1.0, 0.0)
    return _clip(gray + mask * (value - gray))


def scratches(gray, strength, seed):
    """Thin scratches along the film: 1 to SCRATCHES nearly vertical lines about 1 px wide, light (a scratch
    in the emulsion), at opacity s (their count and places drawn from the seed)."""
    count, places, slopes, alphas = _split(seed, 4)
    y, x = _pixel_grid(gray)
    w = tf.cast(tf.shape(gray)[1], tf.float32)
    n = 1 + tf.cast(tf.floor(_uniform(count, high=SCRATCHES - 1e-6)), tf.int32)  # 1 to SCRATCHES
    x0 = _uniform(places, [SCRATCHES], 0.0, 1.0) * w
    slope = _uniform(slopes, [SCRATCHES], -0.08, 0.08)
    opacity = _uniform(alphas, [SCRATCHES], 0.4, 1.0) * tf.cast(tf.range(SCRATCHES) < n, tf.float32)
    centre = x0 + slope * y  # [H, W, SCRATCHES] by broadcasting
    lines = tf.clip_by_value(1.0 - tf.abs(x - centre), 0.0, 1.0) * opacity
    mask = tf.reduce_max(lines, axis=-1, keepdims=True)
    return _clip(gray + strength * mask * (0.95 - gray))


def halftone(gray, strength, seed):
    """A print screen or scanner texture: a sine grating of period 3-6 px at a random angle, amplitude
    s HALFTONE_AMPLITUDE."""
    period, angle = _split(seed, 2)
    y, x = _pixel_grid(gray)
    theta = _uniform(angle, high=math.pi)
    wave = tf.cos(2 * math.pi * (x * tf.cos(theta) + y * tf.sin(theta)) / _uniform(period, low=3.0, high=6.0))
    return _clip(gray + strength * HALFTONE_AMPLITUDE * wave)


# In the order the damage happens: the print fades and was lit unevenly, the lens blurred it, the film has grain,
# dust and scratches came later, then a printed screen and the scan's noise and JPEG.
DEGRADATIONS = {"fade": fade, "exposure": uneven_exposure, "blur": blur, "grain": film_grain, "dust": dust,
                "scratches": scratches, "halftone": halftone, "noise": gaussian_noise, "jpeg": jpeg}
# How often each is part of an old photo's mix
SHARE = {"fade": 0.6, "exposure": 0.5, "blur": 0.5, "grain": 0.6, "dust": 0.4, "scratches": 0.3,
         "halftone": 0.15, "noise": 0.4, "jpeg": 0.4}


def old_photo(gray, strength, seed):
    """A mix of DEGRADATIONS at `strength` (0: none; 1: the strongest): each one in with probability SHARE, at
    `strength` times a random share in [0.4, 1] of its own strength, all drawn from `seed`."""
    strength = tf.cast(strength, tf.float32)
    seeds = _split(seed, 3 * len(DEGRADATIONS))
    for i, (name, degrade) in enumerate(DEGRADATIONS.items()):
        on = tf.cast(_uniform(seeds[3 * i]) < SHARE[name], tf.float32)
        gray = degrade(gray, on * strength * _uniform(seeds[3 * i + 1], low=0.4), seeds[3 * i + 2])
    return gray


def degrade_example(example, probability: float, seed):
    """Training: uint8 [H, W, 4] (RGB + gray) with its gray channel made an old photo (old_photo at a strength
    drawn in [0.3, 1]) with `probability`; the colour channels, the target, untouched."""
    chosen, level, mix = _split(seed, 3)
    gray = tf.cast(example[..., 3:], tf.float32) / 255.0
    strength = tf.cast(_uniform(chosen) < probability, tf.float32) * _uniform(level, low=0.3)
    old = old_photo(gray, strength, mix)
    return tf.concat([example[..., :3], tf.cast(tf.round(old * 255.0), tf.uint8)], axis=-1)


def old_photos(gray, strength, indices, seed: int = 0):
    """Scoring: gray [N, H, W, 1] in [0, 1] -> each photo an old_photo at `strength`, its damage drawn from
    (seed, its index in the evaluation set), so every model and every run sees the same damaged photo."""
    seeds = tf.stack([tf.fill(tf.shape(indices), tf.cast(seed, tf.int64)), tf.cast(indices, tf.int64)], axis=1)
    return tf.map_fn(lambda args: old_photo(args[0], strength, args[1]), (gray, seeds),
                     fn_output_signature=tf.float32)

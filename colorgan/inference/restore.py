"""Cleaning an old photo before it is colorized (`colorize.py --denoise / --restore`), with OpenCV.

- denoise: film grain and scanner noise, by OpenCV's non-local means (Buades et al. 2005), its strength h set
  from the photo's own noise level (Immerkaer's estimate), so a clean photo is left nearly as it is.
- restore: dust specks and thin scratches, found as small spots far brighter or darker than their
  neighbourhood's median, filled by OpenCV's inpainting (Telea 2004).

Both take and give gray [H, W, 1] float32 in [0, 1] (inference.to_float_image) and work in 8 bits; both are
off by default: they change the photo's own luminance, which colorizing alone never does.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

# Non-local means strength h (in 8-bit levels) = the estimated noise sigma, kept in this range: below it the
# filter does nothing visible, above it it paints over texture.
DENOISE_H_RANGE = (3.0, 20.0)
# A defect differs from the median of its neighbourhood by at least this many 8-bit levels and this many
# times the neighbourhood's own spread (its texture); the median's window is about 1/250 of the shorter side
# (odd, at least 5), so specks and scratches a few pixels wide on a large scan are found while edges, which a
# median keeps, are not.
DEFECT_MIN_CONTRAST, DEFECT_TEXTURE_SIGMAS, DEFECT_WINDOW_FRACTION = 40, 3.0, 1 / 250
# Where more of the photo than this looks like defects it is texture (foliage, fabric), not damage: only
# the strongest outliers, up to this share of the pixels, are filled.
MAX_DEFECT_SHARE = 0.03


def to_u8(gray: np.ndarray) -> np.ndarray:
    return np.round(np.clip(gray[..., 0], 0.0, 1.0) * 255.0).astype(np.uint8)


def from_u8(u8: np.ndarray) -> np.ndarray:
    return (u8.astype(np.float32) / 255.0)[..., None]


def noise_sigma(u8: np.ndarray) -> float:
    """The photo's noise standard deviation in 8-bit levels (Immerkaer 1996: the mean absolute response to
    a Laplacian difference mask, which cancels smooth shading and edges to first order)."""
    if min(u8.shape) < 3:
        return 0.0
    mask = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = cv2.filter2D(u8.astype(np.float32), -1, mask)[1:-1, 1:-1]
    return float(math.sqrt(math.pi / 2.0) * np.abs(response).mean() / 6.0)


def denoise(gray: np.ndarray) -> np.ndarray:
    """Grain and noise removed by non-local means, h from the photo's own noise level."""
    u8 = to_u8(gray)
    h = float(np.clip(noise_sigma(u8), *DENOISE_H_RANGE))
    return from_u8(cv2.fastNlMeansDenoising(u8, None, h=h, templateWindowSize=7, searchWindowSize=21))


def defect_mask(u8: np.ndarray) -> np.ndarray:
    """uint8 mask (255 = defect) of dust specks and thin scratches: pixels far from their neighbourhood's
    median where that neighbourhood is smooth (texture, where a speck hides anyway, is left alone), grown by
    a pixel so inpainting starts from clean surroundings."""
    window = max(5, int(min(u8.shape) * DEFECT_WINDOW_FRACTION) // 2 * 2 + 1)
    median = cv2.medianBlur(u8, window).astype(np.float32)
    deviation = np.abs(u8.astype(np.float32) - median)  # noqa
    image, wide = u8.astype(np.float32), (3 * window, 3 * window)
    mean = cv2.blur(image, wide)
    texture = np.sqrt(np.maximum(cv2.blur(image * image, wide) - mean * mean, 0.0))
    threshold = np.maximum(DEFECT_MIN_CONTRAST, DEFECT_TEXTURE_SIGMAS * texture)
    flagged = deviation > threshold
    if flagged.mean() > MAX_DEFECT_SHARE:  # texture, not damage: the strongest outliers only
        flagged &= deviation / threshold > np.quantile(deviation / threshold, 1.0 - MAX_DEFECT_SHARE)
    return cv2.dilate(flagged.astype(np.uint8) * 255, np.ones((3, 3), np.uint8))


def remove_defects(gray: np.ndarray) -> np.ndarray:
    """Dust and scratches (defect_mask) filled in from their surroundings by Telea's inpainting."""
    u8 = to_u8(gray)
    mask = defect_mask(u8)
    if not mask.any():
        return gray
    return from_u8(cv2.inpaint(u8, mask, 3, cv2.INPAINT_TELEA))


def clean_up(gray: np.ndarray, denoise_grain: bool = False, restore: bool = False) -> np.ndarray:
    """gray [H, W, 1] float32 in [0, 1] -> the same with dust and scratches filled (restore) and then grain
    removed (denoise_grain); unchanged where both are off."""
    if restore:
        gray = remove_defects(gray)
    if denoise_grain:
        gray = denoise(gray)
    return gray

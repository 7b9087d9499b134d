"""Old-photo clean-up (colorgan/inference/restore.py, colorize.py --denoise / --restore): each step removes the damage
it is for from a photo whose clean version is known, and leaves a clean photo nearly as it is."""
import numpy as np
import pytest
from PIL import Image

from colorgan import Colorizer
from colorgan.inference import restore
from conftest import sample_images


def smooth_photo(h=120, w=160):
    """A print with soft shading and shapes (no fine texture), gray [H, W, 1] float32 in [0, 1]."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    image = 0.25 + 0.4 * x / w + 0.15 * np.sin(y / 17.0)
    image += 0.2 * np.exp(-((x - 0.6 * w) ** 2 + (y - 0.4 * h) ** 2) / (2 * (0.12 * w) ** 2))
    return restore.from_u8(restore.to_u8(np.clip(image, 0, 1)[..., None]))  # on 8-bit levels, as scans are


def damaged(photo, seed=0):
    """The photo with 25 dust specks (2x2, white or black) and a thin bright scratch down it."""
    rng = np.random.default_rng(seed)
    bad = photo.copy()
    h, w = photo.shape[:2]
    for y, x in zip(rng.integers(2, h - 3, 25), rng.integers(2, w - 3, 25)):
        bad[y:y + 2, x:x + 2] = rng.choice([0.0, 1.0])
    bad[:, w // 3] = np.minimum(bad[:, w // 3] + 0.45, 1.0)
    return bad


def mean_error(a, b):
    return float(np.abs(a - b).mean())


def test_restore_fills_dust_and_scratches():
    clean = smooth_photo()
    bad = damaged(clean)
    fixed = restore.remove_defects(bad)
    assert fixed.shape == bad.shape and fixed.dtype == np.float32 and 0 <= fixed.min() and fixed.max() <= 1
    assert mean_error(fixed, clean) < 0.2 * mean_error(bad, clean)
    worst_before, worst_after = np.abs(bad - clean).max(), np.abs(fixed - clean).max()
    assert worst_after < 0.3 * worst_before  # no speck left standing


def test_restore_leaves_an_undamaged_photo_nearly_as_it_is():
    clean = smooth_photo()
    assert mean_error(restore.remove_defects(clean), clean) < 1 / 255
    real = np.asarray(Image.open(sample_images(1)[0]).convert("L"), np.float32)[..., None] / 255.0
    # a real photo's texture is not damage: next to nothing is filled in (a few bright highlights at most)
    assert (restore.defect_mask(restore.to_u8(real)) > 0).mean() < 0.05
    assert mean_error(restore.remove_defects(real), real) < 3 / 255


def test_noise_estimate_and_denoise_follow_the_photo_s_own_noise():
    clean = smooth_photo(200, 200)
    for sigma in (4, 12):
        noisy = np.clip(clean + np.random.default_rng(sigma).normal(0, sigma / 255, clean.shape), 0, 1).astype(np.float32)
        assert restore.noise_sigma(restore.to_u8(noisy)) == pytest.approx(sigma, rel=0.3)
        out = restore.denoise(noisy)
        assert out.shape == noisy.shape and out.dtype == np.float32
        assert mean_error(out, clean) < 0.6 * mean_error(noisy, clean)
    assert mean_error(restore.denoise(clean), clean) < 1 / 255  # nothing to remove: h at its floor


def test_clean_up_is_the_identity_when_off_and_runs_restore_before_denoise():
    clean = smooth_photo()
    bad = damaged(clean)
    assert restore.clean_up(bad) is bad
    both = restore.clean_up(bad, denoise_grain=True, restore=True)
    np.testing.assert_array_equal(both, restore.denoise(restore.remove_defects(bad)))


def test_colorizer_cleans_the_photo_it_colours():
    """Colorizer(restore=True): the output's luminance is the restored photo's (specks gone), and its colour
    is the colour of the restored photo; off by default, the photo's own luminance with its specks."""
    bad = np.round(damaged(smooth_photo(64, 96))[..., 0] * 255).astype(np.uint8)
    plain, cleaning = Colorizer.load(), Colorizer.load(restore=True, denoise=True)
    out = cleaning.colorize(bad)
    cleaned = restore.to_u8(restore.clean_up(bad[..., None] / np.float32(255), True, True))
    def lightness(image):  # Lab L of a gray or RGB uint8 image: what the colorizer keeps
        from colorgan.color.lab import rgb_to_lab
        rgb = np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image
        return np.asarray(rgb_to_lab(rgb.astype(np.float32) / 255.0))[..., 0]
    assert np.abs(lightness(out) - lightness(cleaned)).mean() < 0.5  # the restored photo's luminance
    assert np.abs(lightness(out) - lightness(bad)).max() > 20  # not the damaged one's
    np.testing.assert_array_equal(out, plain.colorize(cleaned.astype(np.uint8)))
    assert np.abs(lightness(plain.colorize(bad)) - lightness(bad)).mean() < 0.5

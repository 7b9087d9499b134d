import numpy as np
import pytest

from colorgan.evaluation import metrics


def rand_images(n=4, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0.2, 0.8, (n, size, size, 3)).astype("float32")


def test_psnr_and_ssim_identical_and_known_noise():
    a = rand_images()
    assert np.all(np.isinf(metrics.psnr(a, a).numpy()))
    np.testing.assert_allclose(metrics.ssim(a, a).numpy(), 1.0, atol=1e-6)
    sigma = 0.05
    noisy = a + np.random.default_rng(1).normal(0, sigma, a.shape).astype("float32")  # stays inside [0, 1]
    expected = 20 * np.log10(1.0 / sigma)  # 26.02 dB
    np.testing.assert_allclose(metrics.psnr(noisy, a).numpy(), expected, atol=0.15)
    noisier = a + np.random.default_rng(1).normal(0, 4 * sigma, a.shape).astype("float32")
    assert np.all(metrics.ssim(noisier, a).numpy() < metrics.ssim(noisy, a).numpy())
    assert np.all(metrics.ssim(noisy, a).numpy() < 0.99)


def test_colourfulness_gray_is_zero_and_known_value():
    gray = np.repeat(rand_images()[..., :1], 3, axis=-1)
    np.testing.assert_allclose(metrics.colourfulness(gray).numpy(), 0.0, atol=1e-3)
    # Half pure red, half pure green: rg = +-255 (std 255, mean 0), yb = 127.5 (std 0): C = 255 + 0.3 * 127.5.
    img = np.zeros((1, 2, 2, 3), "float32")
    img[0, 0, :, 0] = 1.0
    img[0, 1, :, 1] = 1.0
    np.testing.assert_allclose(metrics.colourfulness(img).numpy(), [293.25], rtol=1e-5)


def test_ab_auc_perfect_gray_and_known_offset():
    a = rand_images()
    np.testing.assert_allclose(metrics.ab_auc(a, a).numpy(), 1.0, atol=1e-6)
    # A pixel whose ab is off by exactly d counts for the thresholds t >= d: (150 - d + 1) / 151.
    from colorgan.color.lab import lab_to_rgb
    truth = lab_to_rgb(np.array([[[[50.0, 0.0, 0.0]]]], "float32")).numpy()
    off = lab_to_rgb(np.array([[[[50.0, 18.0, 24.0]]]], "float32")).numpy()  # distance 30 (in gamut)
    np.testing.assert_allclose(metrics.ab_auc(off, truth).numpy(), [(150 - 30 + 1) / 151], atol=2 / 151)


def test_frechet_distance_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (20000, 4))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shifted = a + np.array([3.0, 0, 0, 0])
    assert metrics.frechet_distance(a, shifted) == pytest.approx(9.0, rel=0.02)
    # N(0, I) vs N(0, 4I) in d dims: d * (1 + 4 - 2 * 2) = d.
    wide = rng.normal(0, 2, (20000, 4))
    assert metrics.frechet_distance(a, wide) == pytest.approx(4.0, rel=0.05)

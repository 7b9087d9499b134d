import cv2
import numpy as np
import pytest
import tensorflow as tf

from colorgan.color import lab as color
from conftest import sample_images


def real_rgb(n=6):
    """Real photos as float RGB in [0, 1] (from the embedded CIFAR-10 sample)."""
    return np.stack([cv2.imread(str(p))[..., ::-1] for p in sample_images(n)]).astype(np.float32) / 255.0


def test_lab_matches_opencv_on_real_images():
    rgb = real_rgb()
    ours = color.rgb_to_lab(rgb).numpy()
    theirs = np.stack([cv2.cvtColor(im, cv2.COLOR_RGB2Lab) for im in rgb])
    assert np.abs(ours - theirs).max() < 1.0  # OpenCV's float path uses slightly rounded constants


@pytest.mark.parametrize("inside_map", [False, True])
def test_lab_round_trip_within_one_level(inside_map):
    rgb = real_rgb()
    if inside_map:
        ds = tf.data.Dataset.from_tensor_slices(rgb).map(lambda x: color.lab_to_rgb(color.rgb_to_lab(x)))
        back = np.stack(list(ds.as_numpy_iterator()))
    else:
        back = color.lab_to_rgb(color.rgb_to_lab(rgb)).numpy()
    assert np.abs(back - rgb).max() < 1.0 / 255.0


def test_opencv_lab_to_rgb8_is_lab_to_rgb_rounded():
    """lab_to_rgb8 (OpenCV, the Colorizer's full-resolution step) gives lab_to_rgb's pixels to 1/255, and the
    same pixel on all but a few near halfway: real photos, their colours pushed out of gamut, and the extremes."""
    lab = color.rgb_to_lab(real_rgb()).numpy()
    lab = np.concatenate([lab, lab * np.float32([1, 3, 3])])  # saturated beyond sRGB: clipping must agree too
    lab = np.concatenate([lab.reshape(-1, 3), [[0, 0, 0], [100, 0, 0], [50, 127, -127], [50, -127, 127]]])
    lab = lab.astype(np.float32).reshape(1, -1, 3)
    expected = np.round(color.lab_to_rgb(lab).numpy() * 255).astype(int)
    got = color.lab_to_rgb8(lab)
    assert got.dtype == np.uint8 and got.shape == lab.shape
    assert np.abs(got.astype(int) - expected).max() <= 1
    assert np.mean(got != expected) < 0.001


def test_opencv_gray_is_rgb_to_gray():
    rgb = real_rgb()[0]
    np.testing.assert_allclose(color.rgb_to_gray_array(rgb), color.rgb_to_gray(rgb).numpy(), atol=1e-6)
    assert color.rgb_to_gray_array(rgb).shape == rgb.shape[:2] + (1,)


def test_lab_of_gray_has_no_chroma_and_known_extremes():
    lab = color.rgb_to_lab(np.array([[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5]], np.float32)).numpy()
    np.testing.assert_allclose(lab[:, 0], [0.0, 100.0, 53.39], atol=0.05)
    np.testing.assert_allclose(lab[:, 1:], 0.0, atol=1e-3)


@pytest.mark.parametrize("inside_map", [False, True])
def test_gray_to_l_is_the_l_of_three_equal_channels(inside_map):
    gray = np.concatenate([np.linspace(0, 1, 256, dtype=np.float32), real_rgb(2)[..., 1].ravel()])[:, None]
    if inside_map:
        l = np.concatenate(list(tf.data.Dataset.from_tensor_slices(gray).map(color.gray_to_l).as_numpy_iterator()))
    else:
        l = color.gray_to_l(gray).numpy()[:, 0]
    np.testing.assert_allclose(l, color.rgb_to_lab(np.repeat(gray, 3, axis=-1)).numpy()[:, 0], atol=1e-3)


def test_model_io_lab_scaling_and_recombination():
    rgb = real_rgb()
    gray = color.rgb_to_gray(rgb)
    x, y = color.to_model_io(rgb, gray, "lab")
    assert x.shape[-1] == 1 and y.shape[-1] == 2
    assert -1.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0
    assert float(tf.reduce_max(tf.abs(y))) <= 1.0
    # L/50 - 1 and ab/110 exactly:
    np.testing.assert_allclose(y.numpy() * 110.0, color.rgb_to_lab(rgb).numpy()[..., 1:], atol=1e-3)
    # Predicting ab = 0 gives back the gray photo itself; the true ab gives a colour image whose
    # luminance is the gray photo's.
    as_gray = color.from_model_io(x, tf.zeros_like(y), "lab").numpy()
    np.testing.assert_allclose(as_gray, np.repeat(gray, 3, axis=-1), atol=1.0 / 255.0)
    np.testing.assert_allclose(color.gray_from_model_input(x, "lab").numpy(), as_gray, atol=1e-6)
    recolored = color.from_model_io(x, y, "lab")
    l_out = color.rgb_to_lab(recolored).numpy()[..., 0]
    l_in = (x.numpy()[..., 0] + 1.0) * 50.0
    assert np.abs(l_out - l_in).mean() < 1.0


def test_model_io_rgb():
    rgb = real_rgb()
    gray = color.rgb_to_gray(rgb)
    x, y = color.to_model_io(rgb, gray, "rgb")
    assert y.shape[-1] == 3
    np.testing.assert_allclose(color.from_model_io(x, y, "rgb").numpy(), rgb, atol=1e-6)
    np.testing.assert_allclose(color.gray_from_model_input(x, "rgb").numpy()[..., 0], gray[..., 0], atol=1e-6)


def test_unknown_color_space_is_rejected():
    with pytest.raises(ValueError, match="colour space"):
        color.to_model_io(np.zeros((1, 3), np.float32), np.zeros((1, 1), np.float32), "hsv")

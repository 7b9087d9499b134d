"""--cast-correction: a share of a whole-frame yellow-olive tint taken away at inference (chroma.without_cast),
from the pure function to the Colorizer, colorize.py, config.json and the SavedModel."""
import io
import json
import math
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from colorgan import Colorizer
from colorgan.color.chroma import CAST_HUE, without_cast
from colorgan.color.lab import rgb_to_lab
from colorgan.errors import ColorganError
from colorgan.inference.export import export_saved_model
from colorgan.training import trainers
from conftest import tiny_config

ROOT = __import__("pathlib").Path(__file__).parents[1]
PHOTO = np.asarray(keras.utils.load_img(sorted(ROOT.glob("data/cifar10-mini/test/*/0001.jpg"))[3]))


def tinted(hue_degrees: float, chroma: float = 18.0, spread: float = 3.0, seed: int = 0) -> np.ndarray:
    """[1, 16, 16, 2] ab: one tint of this hue over the frame, with small per-pixel colour around it."""
    noise = np.random.default_rng(seed).normal(0, spread, (1, 16, 16, 2))
    tint = chroma * np.array([math.cos(math.radians(hue_degrees)), math.sin(math.radians(hue_degrees))])
    return (tint + noise).astype(np.float32)


def mean_ab(ab) -> np.ndarray:
    return np.asarray(ab).reshape(-1, 2).mean(0)


def test_strength_zero_is_the_identity():
    ab = tinted(CAST_HUE)
    np.testing.assert_allclose(without_cast(ab, 0.0).numpy(), ab, atol=1e-6)


def test_a_yellow_olive_tint_is_taken_away_and_the_rest_kept():
    ab = tinted(100.0)
    out = without_cast(ab, 1.0).numpy()
    assert np.hypot(*mean_ab(ab)) > 15 and np.hypot(*mean_ab(out)) < 0.25 * np.hypot(*mean_ab(ab))
    # what differs from pixel to pixel is untouched: only the frame's mean moved
    np.testing.assert_allclose(out - mean_ab(out), ab - mean_ab(ab), atol=1e-4)
    half = without_cast(ab, 0.5).numpy()
    assert np.hypot(*mean_ab(out)) < np.hypot(*mean_ab(half)) < np.hypot(*mean_ab(ab))


@pytest.mark.parametrize("hue", [55.0, -90.0, 180.0 + 115.0])  # skin/wood warm, blue, the tint's opposite
def test_other_tints_are_left_alone(hue):
    ab = tinted(hue)
    np.testing.assert_allclose(without_cast(ab, 1.0).numpy(), ab, atol=1e-5)


def test_colours_that_differ_by_object_are_left_alone():
    """A yellow-green field under a blue sky: the mean leans yellow-green, but the frame is not one tint."""
    ab = tinted(100.0, spread=0.5)
    ab[:, :8] = tinted(-90.0, chroma=22.0, spread=0.5)[:, :8]
    np.testing.assert_allclose(without_cast(ab, 1.0).numpy(), ab, atol=1e-5)


def test_per_photo_homogeneous_and_the_same_inside_a_tf_function():
    ab = np.concatenate([tinted(100.0), tinted(55.0, seed=1)])
    out = without_cast(ab, 1.0).numpy()
    np.testing.assert_allclose(out[1], ab[1], atol=1e-5)  # the warm photo of the batch is not touched
    assert np.hypot(*mean_ab(out[0])) < 5
    # commutes with the vividness gain: the correction of 2 ab is twice the correction of ab
    np.testing.assert_allclose(without_cast(2 * ab, 1.0).numpy(), 2 * out, atol=1e-4)
    traced = tf.function(without_cast)(tf.constant(ab), tf.constant(1.0)).numpy()
    np.testing.assert_allclose(traced, out, atol=1e-5)


def olive_colorizer(**kwargs) -> Colorizer:
    """An untrained regression generator whose last bias lays a yellow-olive tint over everything."""
    generator = trainers.build_trainer(tiny_config(model="unet-l1", g_dropout=0.0)).generator
    last = generator.get_layer("to_color")
    tint = 18.0 / 110.0 * np.array([math.cos(math.radians(100.0)), math.sin(math.radians(100.0))])
    last.bias.assign(tint.astype(np.float32))
    return Colorizer(generator, render_size=32, **kwargs)


def image_mean_ab(rgb8: np.ndarray) -> np.ndarray:
    return mean_ab(rgb_to_lab(tf.constant(rgb8[None] / 255.0, tf.float32))[..., 1:].numpy())


def test_the_colorizer_and_the_saved_model_apply_the_models_cast_correction(tmp_path):
    plain, corrected = olive_colorizer(), olive_colorizer(cast_correction=1.0)
    corrected.generator.set_weights(plain.generator.get_weights())
    before, after = image_mean_ab(plain.colorize(PHOTO)), image_mean_ab(corrected.colorize(PHOTO))
    assert np.hypot(*before) > 8 and np.hypot(*after) < 0.4 * np.hypot(*before), (before, after)
    exported = tf.saved_model.load(str(export_saved_model(corrected, tmp_path / "exp")))
    served = exported.signatures["serving_default"](images=tf.constant(PHOTO[None]))["colorized"].numpy()[0]
    np.testing.assert_allclose(served, corrected.colorize(PHOTO), atol=1)


def test_the_strength_is_read_per_call_not_when_first_traced():
    colorizer = olive_colorizer()
    tinted = np.hypot(*image_mean_ab(colorizer.colorize(PHOTO)))  # traced here, at strength 0
    colorizer.cast_correction = 1.0
    assert np.hypot(*image_mean_ab(colorizer.colorize(PHOTO))) < 0.4 * tinted
    assert np.hypot(*image_mean_ab(colorizer.colorize(PHOTO, cast_correction=0.0))) == pytest.approx(tinted, abs=0.5)
    ab = colorizer.predict_ab(np.repeat(colorizer.prepare(PHOTO).model_in, 2, axis=0), np.ones([2], np.float32),
                              cast_correction=[0.0, 1.0])  # one strength per photo of a batch
    assert np.hypot(*mean_ab(ab[1:])) < 0.4 * np.hypot(*mean_ab(ab[:1]))
    with pytest.raises(ColorganError, match="cast correction"):
        colorizer.colorize(PHOTO, cast_correction=1.5)


def test_the_http_api_takes_it_per_request_and_a_saved_model_refuses_another(tmp_path):
    testclient = pytest.importorskip("fastapi.testclient")
    from PIL import Image

    from colorgan.serving.server import ColorizerBackend, SavedModelBackend, create_app
    colorizer = olive_colorizer(cast_correction=0.5)
    body = io.BytesIO()
    Image.fromarray(PHOTO).save(body, format="PNG")

    def served(client, query=""):
        response = client.post(f"/v1/colorize{query}", content=body.getvalue())
        assert response.status_code == 200, response.text
        return np.asarray(Image.open(io.BytesIO(response.content)))

    with testclient.TestClient(create_app(ColorizerBackend(colorizer, "olive"))) as client:
        assert client.get("/v1/info").json()["cast_correction"] == 0.5
        for query, strength in (("", 0.5), ("?cast_correction=0", 0.0), ("?cast_correction=1", 1.0)):
            direct = colorizer.colorize(PHOTO, cast_correction=strength)
            assert np.abs(served(client, query).astype(int) - direct).max() <= 1
        assert np.hypot(*image_mean_ab(served(client, "?cast_correction=1"))) < \
            0.4 * np.hypot(*image_mean_ab(served(client, "?cast_correction=0")))
        bad = client.post("/v1/colorize?cast_correction=2", content=body.getvalue())
        assert bad.status_code == 400 and "cast correction" in bad.json()["error"]
    exported = SavedModelBackend(export_saved_model(colorizer, tmp_path / "exp"))
    with testclient.TestClient(create_app(exported)) as client:
        assert client.get("/v1/info").json()["cast_correction"] == 0.5
        assert client.post("/v1/colorize?cast_correction=0.5", content=body.getvalue()).status_code == 200
        refused = client.post("/v1/colorize?cast_correction=0", content=body.getvalue())
        assert refused.status_code == 400 and "built in" in refused.json()["error"]


def test_config_json_and_colorize_py_carry_it(tmp_path):
    colorizer = olive_colorizer()
    colorizer.generator.save(tmp_path / "generator.keras")
    cfg = tiny_config(model="unet-l1", cast_correction=0.75)
    (tmp_path / "config.json").write_text(json.dumps(cfg.to_dict()))
    assert Colorizer.load(tmp_path).cast_correction == 0.75
    assert Colorizer.load(tmp_path, cast_correction=0.0).cast_correction == 0.0
    out = subprocess.run([sys.executable, str(ROOT / "colorize.py"), str(tmp_path / "generator.keras"),
                          "--cast-correction", "2"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "cast correction" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("size", [32, 64])  # at the training size, and resized as the Colorizer does
def test_evaluate_scores_the_model_with_its_cast_correction(size):
    """evaluate.py scores what colorize.py gives: the run's config.json cast_correction applied."""
    from colorgan.evaluation.scores import colorize_examples
    from colorgan.training.runs import Run
    generator = olive_colorizer().generator
    photo = tf.image.resize(PHOTO[None].astype(np.float32), (size, size)).numpy().round().astype(np.uint8)
    gray = np.round(photo.astype(np.float32) @ [0.299, 0.587, 0.114]).astype(np.uint8)[..., None]
    examples = np.concatenate([photo, gray], -1)

    def tint(cast_correction):
        run = Run(ROOT, tiny_config(model="unet-l1", image_size=32, cast_correction=cast_correction), generator)
        rgb = colorize_examples(run, examples)["model"].numpy()
        return np.hypot(*mean_ab(rgb_to_lab(tf.constant(rgb, tf.float32))[..., 1:].numpy()))
    assert tint(1.0) < 0.4 * tint(0.0)

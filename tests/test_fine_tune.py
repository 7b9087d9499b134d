"""--init-from: a new run starts its generator from a saved one (fine-tuning), and only a new run."""
import shutil

import keras
import numpy as np
import pytest

from colorgan.models import networks as models
from colorgan.training import loop as training
from colorgan.errors import ColorganError
from colorgan.training.runs import init_generator, read_history
from colorgan.training.trainers import build_trainer
from conftest import tiny_config


def _kernels(model):
    return [np.asarray(w, "float32") for w in model.trainable_weights]


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """A trained tiny run to start from."""
    out = tmp_path_factory.mktemp("source")
    return training.train(tiny_config(classes=["horse"], model="unet-l1", epochs=1, steps_per_epoch=2, val_steps=1,
                                      checkpoint_dir=str(out), run_name="src"), verbose=0)


def test_new_run_starts_from_the_saved_generator(source_run, tmp_path):
    saved = _kernels(keras.models.load_model(source_run / "generator.keras", compile=False))
    # lr near 0: the one step barely moves the weights, so what the run ends with is what it started from
    run = training.train(tiny_config(classes=["horse"], model="unet-l1", epochs=1, steps_per_epoch=1, val_steps=1,
                                     lr=1e-12, init_from=str(source_run), checkpoint_dir=str(tmp_path),
                                     run_name="tuned"), verbose=0)
    tuned = _kernels(keras.models.load_model(run / "generator.keras", compile=False))
    fresh = _kernels(build_trainer(tiny_config(model="unet-l1")).generator)
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(saved, tuned))
    assert not all(np.allclose(a, b, atol=1e-3) for a, b in zip(saved, fresh))
    assert np.isfinite(float(read_history(run / "history.csv")[0]["g_l1"]))


def test_weights_stored_in_bfloat16_are_cast(source_run, tmp_path):
    """The shipped weights are stored in bfloat16; a float32 run starts from them rounded, not refused."""
    model = keras.models.load_model(source_run / "generator.keras", compile=False)
    cfg = tiny_config(model="unet-l1", init_from=str(tmp_path))
    keras.mixed_precision.set_global_policy("bfloat16")  # how the shipped weights were stored
    try:
        half = models.Generator(32, 1, 2, 8)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert half.weights[0].dtype == "bfloat16"
    for variable, value in zip(half.weights, model.weights):
        variable.assign(keras.ops.cast(value, variable.dtype))
    half.save(tmp_path / "generator.keras")
    shutil.copy(source_run / "config.json", tmp_path / "config.json")
    generator = build_trainer(cfg).generator
    init_generator(generator, cfg)
    assert generator.weights[0].dtype == "float32"
    for a, b in zip(_kernels(generator), _kernels(model)):
        np.testing.assert_allclose(a, b, rtol=1e-2, atol=1e-6)


def test_resume_keeps_its_own_weights_without_the_source(source_run, tmp_path):
    copy = tmp_path / "src-copy"
    shutil.copytree(source_run, copy)
    run = training.train(tiny_config(classes=["horse"], model="unet-l1", epochs=1, steps_per_epoch=2, val_steps=1,
                                     init_from=str(copy), checkpoint_dir=str(tmp_path), run_name="tuned"), verbose=0)
    after_one = _kernels(keras.models.load_model(run / "generator.keras", compile=False))
    shutil.rmtree(copy)  # a resumed run must not go back to (or need) what it started from
    training.resume(run, epochs=2, verbose=0)
    assert len(read_history(run / "history.csv")) == 2
    after_two = _kernels(keras.models.load_model(run / "generator.keras", compile=False))
    assert not all(np.allclose(a, b) for a, b in zip(after_one, after_two))


def test_another_architecture_is_refused_naming_what_differs(source_run, tmp_path):
    cfg = tiny_config(model="unet-l1", base_filters=16, init_from=str(source_run))
    with pytest.raises(ColorganError, match=r"--base-filters 8 there, 16 here"):
        init_generator(build_trainer(cfg).generator, cfg)
    auto = tiny_config(model="autoencoder", init_from=str(source_run))
    with pytest.raises(ColorganError, match="another shape"):
        init_generator(build_trainer(auto).generator, auto)


def test_a_regression_run_starts_a_classification_run_at_its_colours(source_run):
    """--init-from a regression generator (ab) into --ab-loss classification: every layer but the output copied,
    the output turned into logits around the same ab, so the new run starts with the source's colours."""
    from colorgan.color.chroma import AB_SCALE, decode
    cfg = tiny_config(model="unet-l1", ab_loss="classification", init_from=str(source_run))
    generator = build_trainer(cfg).generator
    gray = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 1)).astype("float32")
    regression = keras.models.load_model(source_run / "generator.keras", compile=False)
    # dropout off (training=False) in both: the same body, so the same features under the output layer
    want = np.asarray(regression(gray, training=False)) * AB_SCALE
    before = np.asarray(decode(generator(gray, training=False), "lab")) * AB_SCALE
    init_generator(generator, cfg)
    after = np.asarray(decode(generator(gray, training=False), "lab")) * AB_SCALE
    for a, b in zip(_kernels(regression)[:-2], _kernels(generator)[:-2]):
        np.testing.assert_array_equal(a, b)
    assert np.abs(after - want).mean() < 0.2 * np.abs(before - want).mean()
    assert np.abs(after - want).mean() < 1.0  # Lab units


def test_missing_source_is_refused_before_the_data_is_read(tmp_path):
    cfg = tiny_config(data=str(tmp_path / "no-data"), init_from=str(tmp_path / "nothing"),
                      checkpoint_dir=str(tmp_path))
    with pytest.raises(ColorganError, match="--init-from .*nothing: no generator there"):
        training.train(cfg, verbose=0)

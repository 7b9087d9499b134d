"""Old-photo degradations (colorgan.data.degrade) and train.py --degrade: each op eagerly and inside tf.data.map."""
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from colorgan.training import loop as training
from colorgan.config import Config
from colorgan.data.sources import find_source
from colorgan.data.degrade import DEGRADATIONS, degrade_example, old_photo
from colorgan.data.pipeline import train_dataset
from colorgan.training.runs import read_history
from conftest import sample_images, tiny_config

# Ops whose output does not depend on the seed: blur and JPEG
DETERMINISTIC = {"blur", "jpeg"}


@pytest.fixture(scope="module")
def gray():
    """A real photo's gray version, 64x48 (not square, so height and width cannot be swapped unnoticed)."""
    image = Image.open(sample_images(1)[0]).convert("L").resize((48, 64), Image.BICUBIC)
    return tf.constant(np.asarray(image, np.float32)[..., None] / 255.0)


SEED = tf.constant([3, 4], tf.int64)


@pytest.mark.parametrize("name", list(DEGRADATIONS))
def test_each_degradation_keeps_shape_range_dtype_and_is_seeded(gray, name):
    degrade = DEGRADATIONS[name]
    out = degrade(gray, tf.constant(1.0), SEED)
    assert out.shape == gray.shape and out.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(out)) and float(tf.reduce_max(out)) <= 1.0
    assert float(tf.reduce_mean(tf.abs(out - gray))) > 0.003, "strength 1 must change the photo"
    np.testing.assert_array_equal(out.numpy(), degrade(gray, tf.constant(1.0), SEED).numpy())
    if name not in DETERMINISTIC:  # another seed, another grain, another scratch
        assert not np.array_equal(out.numpy(), degrade(gray, tf.constant(1.0), tf.constant([5, 6], tf.int64)).numpy())
    # strength 0 is the identity (to float rounding)
    np.testing.assert_allclose(degrade(gray, tf.constant(0.0), SEED).numpy(), gray.numpy(), atol=1e-6)
    # half the strength changes the photo less than the whole
    half = degrade(gray, tf.constant(0.5), SEED)
    assert float(tf.reduce_mean(tf.abs(half - gray))) < float(tf.reduce_mean(tf.abs(out - gray)))


@pytest.mark.parametrize("name", list(DEGRADATIONS) + ["old_photo"])
def test_each_degradation_gives_the_same_inside_tf_data(gray, name):
    degrade = old_photo if name == "old_photo" else DEGRADATIONS[name]
    eager = degrade(gray, tf.constant(0.8), SEED).numpy()
    ds = tf.data.Dataset.from_tensors((gray, SEED)).map(lambda g, s: degrade(g, tf.constant(0.8), s))
    np.testing.assert_allclose(next(iter(ds)).numpy(), eager, atol=1e-6)


def test_old_photo_mix(gray):
    np.testing.assert_allclose(old_photo(gray, 0.0, SEED).numpy(), gray.numpy(), atol=1e-6)
    mixes = [old_photo(gray, 1.0, tf.constant([k, 0], tf.int64)).numpy() for k in range(6)]
    assert all(m.shape == gray.shape for m in mixes)
    assert len({m.tobytes() for m in mixes}) == 6  # each seed its own mix
    assert np.mean([np.abs(m - gray.numpy()).mean() for m in mixes]) > 0.01


def test_degrade_example_touches_the_gray_input_only(gray):
    rgb = tf.cast(tf.random.stateless_uniform([64, 48, 3], [1, 1], 0, 256, tf.int32), tf.uint8)
    example = tf.concat([rgb, tf.cast(tf.round(gray * 255), tf.uint8)], axis=-1)
    always, never = degrade_example(example, 1.0, SEED), degrade_example(example, 0.0, SEED)
    assert always.dtype == tf.uint8 and always.shape == example.shape
    np.testing.assert_array_equal(always[..., :3].numpy(), rgb.numpy())  # the colour target untouched
    assert not np.array_equal(always[..., 3].numpy(), example[..., 3].numpy())
    np.testing.assert_array_equal(never.numpy(), example.numpy())


def test_train_dataset_degrades_inputs_and_keeps_targets():
    """Same seed with and without --degrade: the same photos, crops and targets; only the gray inputs differ."""
    source = find_source(tiny_config(classes=["horse"]))
    common = dict(size=32, batch_size=8, color_space="lab", jitter=True, seed=7)
    (x0, y0), = train_dataset(source.train, **common).take(1)
    (x1, y1), = train_dataset(source.train, **common, degrade=1.0).take(1)
    (x2, _), = train_dataset(source.train, **common, degrade=1.0).take(1)
    np.testing.assert_array_equal(y0.numpy(), y1.numpy())
    assert float(tf.reduce_mean(tf.abs(x0 - x1))) > 0.01
    np.testing.assert_array_equal(x1.numpy(), x2.numpy())  # seeded: the same damage again


def test_a_run_with_degrade_trains_records_it_and_resumes(tmp_path):
    run = training.train(tiny_config(classes=["horse"], model="unet-l1", degrade=0.5, epochs=1, steps_per_epoch=2,
                                     val_steps=1, checkpoint_dir=str(tmp_path), run_name="old"), verbose=0)
    assert json.loads((run / "config.json").read_text())["degrade"] == 0.5
    training.resume(run, epochs=2, verbose=0)
    history = read_history(run / "history.csv")
    assert len(history) == 2 and all(np.isfinite(float(h["g_total"])) for h in history)


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")])
def test_bad_degrade_is_refused(value):
    with pytest.raises(Exception, match="--degrade"):
        Config(degrade=value).validate()

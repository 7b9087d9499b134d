"""The everyday-colour recipe: a weighted mix of sources (--more-data DIR:W), each scored apart; the perceptual
term (--perceptual-weight); the chroma-deficit term (--chroma-weight); the adversarial finish on a trained generator (--critic-warmup-epochs, NoGAN)."""
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from colorgan.data import sources as data
from colorgan.training import loop as training
from colorgan.color.lab import lab_to_rgb, rgb_to_lab
from colorgan.config import Config, split_weight
from colorgan.models.efficientnet import perceptual_features
from colorgan.errors import ColorganError
from colorgan.training.losses import chroma_deficit_loss, perceptual_loss
from colorgan.data.pipeline import train_dataset
from colorgan.training.runs import read_history
from colorgan.training.trainers import build_trainer
from conftest import ROOT, tiny_config

COLOURS = {"red": (200, 40, 40), "blue": (40, 60, 200), "green": (40, 170, 60)}


def solid_folder(folder, rgb, count: int):
    """`count` 32 px photos of one colour, a little noise each (so they are colour photos, not duplicates)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(sum(rgb))
    for i in range(count):
        noise = rng.integers(-6, 7, (32, 32, 3))
        Image.fromarray(np.clip(np.array(rgb) + noise, 0, 255).astype("uint8")).save(folder / f"{i:03d}.png")
    return str(folder)


def colour_of(targets) -> np.ndarray:
    """Which of COLOURS each (model-scale) ab target is: 0 red (a > 0, b > 0), 1 blue (b < 0), 2 green (a < 0)."""
    a, b = targets[..., 0].mean(axis=(1, 2)), targets[..., 1].mean(axis=(1, 2))
    return np.where(b < 0, 1, np.where(a < 0, 2, 0))


@pytest.fixture(scope="module")
def three_sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix")
    return [solid_folder(root / name, rgb, n) for (name, rgb), n in zip(COLOURS.items(), (40, 20, 60))]


def test_the_weighted_mix_draws_each_source_at_its_weight(three_sources):
    red, blue, green = three_sources
    cfg = tiny_config(data=red, val_split=0.1, more_data=[f"{blue}:0.5", f"{green}:0.2"])
    source = data.find_source(cfg)
    np.testing.assert_allclose(source.train.weights, [0.3, 0.5, 0.2])  # --data has what the weights leave
    batches = train_dataset(source.train, size=32, batch_size=8, color_space="lab", jitter=True, seed=3).take(300)
    drawn = np.concatenate([colour_of(t.numpy()) for _, t in batches])
    shares = np.bincount(drawn, minlength=3) / len(drawn)
    # 2,400 draws: the standard error of a share is under 0.011
    np.testing.assert_allclose(shares, [0.3, 0.5, 0.2], atol=0.04)
    # the same seed draws the same batches
    again = train_dataset(source.train, size=32, batch_size=8, color_space="lab", jitter=True, seed=3).take(5)
    first = train_dataset(source.train, size=32, batch_size=8, color_space="lab", jitter=True, seed=3).take(5)
    for (_, a), (_, b) in zip(again, first):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_without_weights_the_mix_follows_the_sizes(three_sources):
    red, blue, green = three_sources
    source = data.find_source(tiny_config(data=red, val_split=0.1, more_data=[blue, f"{green}:0.5"]))
    # red (36 training photos) and blue (18) share the 0.5 that green leaves, in proportion to their sizes
    np.testing.assert_allclose(source.train.weights, [0.5 * 36 / 54, 0.5 * 18 / 54, 0.5])
    plain = data.find_source(tiny_config(data=red, val_split=0.1, more_data=[blue]))
    assert plain.train.weights is None  # no weight given: one joined set, shuffled as before
    assert [len(p.val) for p in plain.parts] == [4, 2]  # each source's validation split kept apart


@pytest.mark.parametrize("entry, problem", [
    ("x:0", "weight 0.0 is not in \\(0, 1\\)"), ("x:1.5", "weight 1.5 is not in"),
    ("x:0.6,y:0.4", "the weights add up to 1, leaving nothing for --data"),
])
def test_bad_weights_are_refused_naming_the_flag(entry, problem):
    with pytest.raises(ColorganError, match=f"--more-data: {problem}"):
        tiny_config(more_data=entry.split(",")).validate()


def test_a_weight_is_what_follows_the_last_colon_when_it_is_a_number():
    assert split_weight("faces:0.2") == ("faces", 0.2)
    assert split_weight("C:/photos/faces:0.25") == ("C:/photos/faces", 0.25)
    assert split_weight("odd:name") == ("odd:name", None)
    assert split_weight("faces") == ("faces", None)


@pytest.fixture(scope="module")
def features():
    return perceptual_features()


def _photos(n=2, size=64):
    from conftest import sample_images
    images = [np.asarray(Image.open(p).convert("RGB").resize((size, size))) for p in sample_images(n)]
    return tf.constant(np.stack(images), tf.float32) / 255.0


def _hue_rotated(rgb, degrees):
    lab = rgb_to_lab(rgb)
    angle = np.deg2rad(degrees)
    a, b = lab[..., 1], lab[..., 2]
    rotated = tf.stack([lab[..., 0], a * np.cos(angle) - b * np.sin(angle), a * np.sin(angle) + b * np.cos(angle)], -1)
    return lab_to_rgb(rotated)


def test_the_perceptual_loss_is_zero_for_identical_images_and_grows_with_a_hue_shift(features):
    rgb = _photos()
    assert float(perceptual_loss(features, rgb, rgb)) == 0.0
    losses = [float(perceptual_loss(features, _hue_rotated(rgb, d), rgb)) for d in (20, 60, 120)]
    assert 0 < losses[0] < losses[1] < losses[2]
    gray = tf.repeat(tf.reduce_mean(rgb, -1, keepdims=True), 3, -1)
    assert float(perceptual_loss(features, gray, rgb)) > 0


def test_the_perceptual_loss_steers_the_colours_not_its_frozen_network(features):
    rgb = _photos()
    fake = tf.Variable(_hue_rotated(rgb, 60))
    # no trainable weight: no optimizer is handed one (the trainer's own test below: a step leaves them as they are)
    assert features.trainable_weights == [] and len(features.weights) > 100
    with tf.GradientTape() as tape:
        loss = perceptual_loss(features, fake, rgb)
    grad = tape.gradient(loss, fake)
    assert float(tf.reduce_sum(tf.abs(grad))) > 0
    # the true image's features are constants: no gradient reaches the truth
    truth = tf.Variable(rgb)
    with tf.GradientTape() as tape:
        loss = perceptual_loss(features, fake, truth)
    assert tape.gradient(loss, truth) is None


def test_a_trainer_with_the_perceptual_term_keeps_its_network_out_of_the_state():
    model = build_trainer(tiny_config(model="unet-l1", perceptual_weight=0.1))
    names = {w.path for w in model.generator.weights}
    assert not any("perceptual" in n for n in names)
    assert "g_percep" in [m.name for m in model.metrics]
    before = [w.numpy().copy() for w in model._perceptual[0].weights]
    gray, target = tf.zeros([4, 32, 32, 1]), tf.fill([4, 32, 32, 2], 0.2)
    model.train_step((gray, target))
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, model._perceptual[0].weights))


def test_the_chroma_deficit_charges_only_for_colour_too_weak():
    truth = tf.constant([[[[0.3, 0.4], [0.0, 0.0]]]])            # chroma 0.5, and a gray pixel
    assert float(chroma_deficit_loss(truth, truth)) == 0.0
    # paler by 0.3 on the coloured pixel, the gray one right: the mean over the two pixels is 0.15
    assert float(chroma_deficit_loss(truth, truth * 0.4)) == pytest.approx(0.15, abs=1e-6)
    # any hue at least as strong costs nothing (hue is L1's job), nor does colour on the gray pixel
    stronger = tf.constant([[[[-0.6, 0.1], [0.5, -0.5]]]])
    assert float(chroma_deficit_loss(truth, stronger)) == 0.0
    assert float(chroma_deficit_loss(tf.zeros_like(truth), stronger)) == 0.0
    # bfloat16 inputs, inside a tf.function, as in a train step
    assert float(tf.function(chroma_deficit_loss)(tf.cast(truth, tf.bfloat16), truth * 0.4)) == \
        pytest.approx(0.15, abs=1e-2)


def test_the_chroma_deficit_pushes_a_pale_colour_outward_along_its_own_hue():
    truth = tf.constant([[[[0.3, 0.4]]]])
    pale = tf.Variable([[[[0.06, -0.02]]]])
    with tf.GradientTape() as tape:
        loss = chroma_deficit_loss(truth, pale)
    step = -tape.gradient(loss, pale).numpy()[0, 0, 0]
    direction = pale.numpy()[0, 0, 0] / np.linalg.norm(pale.numpy())
    np.testing.assert_allclose(step / np.linalg.norm(step), direction, atol=1e-5)   # stronger, same hue
    assert np.isfinite(step).all()


def test_a_run_with_the_chroma_term_records_it_and_resumes(three_sources, tmp_path):
    red, blue, green = three_sources
    cfg = tiny_config(data=red, val_split=0.1, more_data=[blue], model="unet-l1", chroma_weight=0.5,
                      epochs=1, steps_per_epoch=2, val_steps=1, checkpoint_dir=str(tmp_path), run_name="chroma")
    run = training.train(cfg, verbose=0)
    assert Config.load(run / "config.json").chroma_weight == 0.5
    training.resume(run, epochs=2, verbose=0)
    history = read_history(run / "history.csv")
    assert len(history) == 2 and all(float(h["g_chroma"]) > 0 for h in history)
    # the total trained on is L1 + 0.5 chroma
    assert float(history[1]["g_total"]) == pytest.approx(float(history[1]["g_l1"]) + 0.5 * float(history[1]["g_chroma"]),
                                                         rel=1e-4)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A generator trained with L1 (the first phase of NoGAN)."""
    out = tmp_path_factory.mktemp("nogan")
    return training.train(tiny_config(classes=["horse"], model="unet-l1", epochs=1, steps_per_epoch=2, val_steps=1,
                                      checkpoint_dir=str(out), run_name="l1"), verbose=0)


def test_the_critic_warms_up_alone_then_both_train_and_the_run_reloads(pretrained, tmp_path):
    start = [w.numpy().copy() for w in keras.models.load_model(pretrained / "generator.keras").weights]
    cfg = tiny_config(classes=["horse"], model="pix2pix", init_from=str(pretrained), critic_warmup_epochs=1,
                      epochs=1, steps_per_epoch=3, val_steps=1, checkpoint_dir=str(tmp_path), run_name="finish")
    run = training.train(cfg, verbose=0)
    warmed = keras.models.load_model(run / "generator.keras")
    # the critic trained, the generator's weights are the pretrained ones (its BatchNorm statistics may move)
    trainable = {id(w) for w in warmed.trainable_weights}
    for w, s in zip(warmed.weights, start):
        if id(w) in trainable:
            np.testing.assert_array_equal(w.numpy(), s)
    history = read_history(run / "history.csv")
    assert all(np.isfinite(float(history[0][k])) for k in ("d", "g_gan", "g_l1", "g_total"))
    # then the adversarial phase: both networks move, and the run resumes from its checkpoint
    training.resume(run, epochs=2, verbose=0)
    tuned = keras.models.load_model(run / "generator.keras")
    assert not all(np.array_equal(w.numpy(), s) for w, s in zip(tuned.trainable_weights,
                                                                  [s for w, s in zip(warmed.weights, start)
                                                                   if id(w) in trainable]))
    history = read_history(run / "history.csv")
    assert len(history) == 2 and all(np.isfinite(float(history[1][k])) for k in ("d", "g_gan", "g_total"))
    assert Config.load(run / "config.json").critic_warmup_epochs == 1


def test_a_run_with_the_mix_and_the_perceptual_term_resumes(three_sources, tmp_path):
    red, blue, green = three_sources
    cfg = tiny_config(data=red, val_split=0.1, more_data=[f"{blue}:0.5", green], model="unet-l1",
                      perceptual_weight=0.05, epochs=1, steps_per_epoch=2, val_steps=1,
                      checkpoint_dir=str(tmp_path), run_name="mix")
    run = training.train(cfg, verbose=0)
    saved = json.loads((run / "config.json").read_text())
    assert saved["more_data"] == [f"{blue}:0.5", green] and saved["perceptual_weight"] == 0.05
    training.resume(run, epochs=2, verbose=0)
    history = read_history(run / "history.csv")
    assert len(history) == 2 and all(np.isfinite(float(h["g_percep"])) for h in history)


def test_evaluate_scores_each_source_of_a_mix_apart(three_sources, tmp_path):
    red, blue, green = three_sources
    run = training.train(tiny_config(data=red, val_split=0.2, more_data=[f"{blue}:0.3", f"{green}:0.3"],
                                     model="unet-l1", epochs=1, steps_per_epoch=2, val_steps=1,
                                     checkpoint_dir=str(tmp_path), run_name="mixed"), verbose=0)
    out = subprocess.run([sys.executable, str(ROOT / "evaluate.py"), "--no-progress", "--run", str(run), "--out",
                          str(tmp_path / "rep")], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = json.loads((tmp_path / "rep" / "sources.json").read_text())
    assert [r["source"] for r in rows] == ["red", "blue", "green"]
    assert [r["images"] for r in rows] == [8, 4, 12]  # each source's own 20% validation split
    for r in rows:  # each scored on its own photos: the truth's colour is that source's colour
        assert (tmp_path / "rep" / r["source"] / "metrics.json").is_file()
    truths = {r["source"]: r["rows"]["true colour"]["colourfulness"] for r in rows}
    assert len(set(truths.values())) == 3
    table = (tmp_path / "rep" / "sources.md").read_text()
    assert all(f"| {name} | mixed | " in table for name in ("red", "blue", "green"))

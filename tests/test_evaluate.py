import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from colorgan.data import sources as data
from colorgan.evaluation import scores as evaluation
from colorgan.models import networks as models
from colorgan.training import trainers
from colorgan.training import loop as training
from colorgan.evaluation.classifier import FrozenClassifier, labelled_images, train_classifier
from colorgan.config import Config
from colorgan.models.networks import Autoencoder
from colorgan.training.runs import Run, load_run
from colorgan.evaluation.sweep import parse_grid
from colorgan.errors import ColorganError
from conftest import ROOT, SAMPLE, tiny_config


@pytest.mark.parametrize("skips", [False, True])
def test_autoencoder_shapes_and_skips(skips):
    model = Autoencoder(32, 1, 2, base_filters=4, skip_connections=skips)
    assert model(np.zeros((2, 64, 96, 1), "float32")).shape == (2, 64, 96, 2)
    has_concat = any(l.__class__.__name__ == "Concatenate" for l in model.layers)
    assert has_concat == skips


@pytest.mark.parametrize("overrides", [dict(model="autoencoder"), dict(model="autoencoder", skip_connections=True),
                                       dict(model="unet-l1"), dict(model="unet-l1", loss="mse"),
                                       dict(model="pix2pix")])
def test_each_model_trains_one_step(overrides):
    model = trainers.build_trainer(tiny_config(**overrides))
    x = tf.random.uniform((4, 32, 32, 1), -1, 1)
    y = tf.random.uniform((4, 32, 32, 2), -1, 1)
    before = [w.numpy().copy() for w in model.generator.trainable_weights]
    logs = model.train_step((x, y))
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert any(not np.allclose(b, w.numpy()) for b, w in zip(before, model.generator.trainable_weights))
    assert (model.discriminator is None) == (overrides["model"] != "pix2pix")


def test_model_flags_are_checked():
    with pytest.raises(ColorganError, match="--skip-connections"):
        tiny_config(model="unet-l1", skip_connections=True).validate()
    with pytest.raises(ColorganError, match="--loss"):
        tiny_config(model="pix2pix", loss="mse").validate()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    runs = []
    for name, model in (("tiny-ae", "autoencoder"), ("tiny-gan", "pix2pix")):
        cfg = tiny_config(model=model, classes=["horse", "deer"], epochs=2, checkpoint_dir=str(root),
                          run_name=name, num_samples=2)
        runs.append(training.train(cfg, verbose=0))
    return runs


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    return train_classifier(str(SAMPLE), tmp_path_factory.mktemp("clf") / "classifier", epochs=1, width=4,
                            verbose=0)


def run_evaluate(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "evaluate.py"), "--no-progress", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_evaluate_end_to_end_writes_every_file(two_runs, tiny_classifier, tmp_path):
    out = run_evaluate("--run", str(two_runs[1]), "--out", str(tmp_path / "rep"), "--classifier",
                       str(tiny_classifier), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for name in ("metrics.json", "loss_curves.png", "samples.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 0, name
    result = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert result["images"] == 20  # the horse and deer test images of the embedded sample (one is B&W)
    model, gray, truth = result["rows"]["tiny-gan"], result["rows"]["gray baseline"], result["rows"]["true colour"]
    assert gray["colourfulness"] == pytest.approx(0.0, abs=0.01)
    assert truth["colourfulness"] > 5
    assert 0 < model["auc"] <= 1 and 0 < gray["auc"] <= 1 and model["psnr"] > 5
    assert truth["accuracy"] >= 0 and "frechet" in model and "frechet" in gray
    assert any("Inception" in n for n in result["notes"])
    assert "gray baseline" in out.stdout and "tiny-gan" in out.stdout


def test_evaluate_traces_the_vividness_frontier(two_runs, tmp_path):
    out = run_evaluate("--run", str(two_runs[1]), "--out", str(tmp_path / "rep"), "--vividness", "1,0.5,2",
                       "--no-progress", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    frontier = result["frontier"]
    assert [row["vividness"] for row in frontier] == [1.0, 0.5, 2.0] and result["vividness"] == 1.0
    assert frontier[0] == {"vividness": 1.0, **result["rows"]["tiny-gan"]}  # the table's row is the first value
    colour = {row["vividness"]: row["colourfulness"] for row in frontier}
    assert colour[0.5] < colour[1.0] < colour[2.0]
    rows = (tmp_path / "rep" / "frontier.csv").read_text().splitlines()
    assert rows[0] == "run,vividness,psnr_minus_gray,colourfulness_vs_truth" and len(rows) == 4
    gray, truth = result["rows"]["gray baseline"], result["rows"]["true colour"]
    assert rows[2].split(",")[2:] == [f"{frontier[1]['psnr'] - gray['psnr']:.3f}",
                                      f"{frontier[1]['colourfulness'] / truth['colourfulness']:.3f}"]
    assert (tmp_path / "rep" / "frontier.png").stat().st_size > 0
    out = run_evaluate("--compare", *map(str, two_runs), "--out", str(tmp_path / "cmp"), "--vividness", "1,2",
                       "--no-progress", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert len((tmp_path / "cmp" / "frontier.csv").read_text().splitlines()) == 5  # 2 runs x 2 values + header
    for bad in ("0", "1,x", "-1"):
        out = run_evaluate("--run", str(two_runs[1]), "--vividness", bad, cwd=tmp_path)
        assert out.returncode == 2 and "--vividness" in out.stderr and "Traceback" not in out.stderr


def test_evaluate_defaults_to_the_newest_run(two_runs, tmp_path):
    out = run_evaluate("--checkpoint-dir", str(two_runs[0].parent), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "reports" / two_runs[-1].name / "metrics.json").exists()
    empty = run_evaluate("--checkpoint-dir", str(tmp_path / "none"), cwd=tmp_path)
    assert empty.returncode == 2 and "no runs in" in empty.stderr


def test_compare_two_runs(two_runs, tmp_path):
    out = run_evaluate("--compare", *map(str, two_runs), "--limit", "12", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    folder = tmp_path / "reports" / "compare"
    table = (folder / "table.md").read_text()
    for name in ("tiny-ae", "tiny-gan", "gray baseline", "psnr", "auc"):
        assert name in table
    rows = (folder / "table.csv").read_text().splitlines()
    assert rows[0].startswith("run,psnr") and len(rows) == 5
    assert (folder / "samples.png").stat().st_size > 0 and (folder / "loss_curves.png").stat().st_size > 0



def test_compare_scores_every_run_on_the_first_runs_photos(two_runs, tmp_path):
    """On a folder without a test split each run's own photos follow its split seed: a compare uses the first
    run's for all, and says so when another run's split differs (it may have trained on those photos)."""
    from conftest import copy_images, sample_images
    plain = copy_images(sample_images(40), tmp_path / "plain")
    other = tmp_path / "other-seed"
    shutil.copytree(two_runs[0], other)
    cfg = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**cfg, "seed": cfg["seed"] + 1}))
    args = ["--compare", str(two_runs[0]), str(other), "--data", str(plain), "--limit", "6"]
    out = run_evaluate(*args, "--out", str(tmp_path / "a"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "other-seed: scored on tiny-ae's evaluation photos, not its own split" in out.stderr
    first, second = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert first["rows"]["gray baseline"] == second["rows"]["gray baseline"]  # the same photos
    assert first["rows"]["tiny-ae"] == second["rows"]["other-seed"]  # the same network on them
    (other / "config.json").write_text(json.dumps({**cfg, "seed": cfg["seed"] + 1, "split_seed": cfg["seed"]}))
    out = run_evaluate(*args, "--out", str(tmp_path / "b"), cwd=tmp_path)
    assert out.returncode == 0 and "not its own split" not in out.stderr, out.stderr


def test_limit_scores_images_spread_over_the_split(two_runs):
    run = load_run(two_runs[0])
    images, _ = evaluation.eval_images(run.config)
    limited = evaluation.evaluate_run(run, images, limit=8, progress=False)
    spread = evaluation.evaluate_run(run, images.spread(8), progress=False)
    first = evaluation.evaluate_run(run, images.subset(range(8)), progress=False)
    assert limited["images"] == 8 and limited["rows"] == spread["rows"] != first["rows"]


class GeneratorSpy:
    """A generator that hands each input it is given to `note` first (its input shape is the generator's)."""

    def __init__(self, generator, note):
        self.generator, self.note, self.input_shape = generator, note, generator.input_shape

    def __call__(self, x, training):
        self.note(x)
        return self.generator(x, training=training)


def test_size_scores_every_run_at_one_size_with_the_network_at_its_own(two_runs, tmp_path):
    run = load_run(two_runs[1])
    seen = []
    generator = run.generator
    run.generator = GeneratorSpy(generator, lambda x: seen.append(tuple(x.shape[1:3])))
    rng = np.random.default_rng(0)
    examples = tf.constant(rng.integers(0, 256, (3, 64, 64, 4)), tf.uint8)
    out = evaluation.colorize_examples(run, examples, [1.0, 2.0])
    assert seen == [(32, 32)]  # the network ran once, at its training size
    assert out[("model", 1.0)].shape == out[evaluation.TRUTH].shape == (3, 64, 64, 3)
    # the luminance at 64 px is the gray photo's (the gray baseline's), whatever the colour added
    from colorgan.color.lab import rgb_to_lab
    for name in (("model", 1.0), ("model", 2.0)):
        np.testing.assert_allclose(rgb_to_lab(out[name])[..., 0], rgb_to_lab(out[evaluation.GRAY])[..., 0], atol=0.5)
    chroma = [float(tf.reduce_mean(tf.norm(rgb_to_lab(out[("model", v)])[..., 1:], axis=-1))) for v in (1.0, 2.0)]
    assert chroma[1] > chroma[0] > 0
    # one gray baseline for runs trained at different sizes, and the sample grid at that size
    out = run_evaluate("--compare", *map(str, two_runs), "--size", "48", "--limit", "6", "--out", str(tmp_path / "c"),
                       cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert [(r["image_size"], r["working_size"]) for r in results] == [(48, 32), (48, 32)]
    assert results[0]["rows"]["gray baseline"] == results[1]["rows"]["gray baseline"]
    own = run_evaluate("--run", str(two_runs[1]), "--limit", "6", "--out", str(tmp_path / "own"), cwd=tmp_path)
    assert own.returncode == 0, own.stderr
    at_32 = json.loads((tmp_path / "own" / "metrics.json").read_text())["rows"]["gray baseline"]["psnr"]
    assert results[0]["rows"]["gray baseline"]["psnr"] != at_32  # scored at 48 px, not at the runs' 32
    bad = run_evaluate("--run", str(two_runs[1]), "--size", "0", cwd=tmp_path)
    assert bad.returncode == 2 and "--size" in bad.stderr and "Traceback" not in bad.stderr

def test_degrade_scores_the_colour_the_network_gives_old_photo_versions(two_runs):
    """evaluate --degrade S: the network sees each photo damaged (seeded by its index: the same damage every
    time), the output keeps the clean L, and the gray baseline and truth rows are the clean photos'."""
    run = load_run(two_runs[0])
    images, _ = evaluation.eval_images(run.config)
    clean = evaluation.evaluate_run(run, images, limit=8, progress=False)
    old = evaluation.evaluate_run(run, images, limit=8, progress=False, degrade=1.0)
    again = evaluation.evaluate_run(run, images, limit=8, progress=False, degrade=1.0)
    assert old["rows"] == again["rows"] and old["degrade"] == 1.0
    assert old["rows"]["gray baseline"] == clean["rows"]["gray baseline"]
    assert old["rows"][run.name] != clean["rows"][run.name]
    seen = []
    generator = run.generator
    run.generator = GeneratorSpy(generator, seen.append)
    examples = tf.constant(np.random.default_rng(0).integers(0, 256, (2, 32, 32, 4)), tf.uint8)
    damaged = tf.fill([2, 32, 32, 1], 0.5)
    out = evaluation.colorize_examples(run, examples, None, damaged)
    np.testing.assert_allclose(seen[0].numpy(), 0.0, atol=0.1)  # L 50 of the flat 0.5 gray the network saw ...
    from colorgan.color.lab import rgb_to_lab
    np.testing.assert_allclose(rgb_to_lab(out["model"])[..., 0], rgb_to_lab(out[evaluation.GRAY])[..., 0],
                               atol=0.5)  # ... the output's L the clean photo's


def test_evaluate_bad_input(tmp_path):
    out = run_evaluate("--run", str(tmp_path / "missing"), cwd=tmp_path)
    assert out.returncode == 2 and "no such run directory" in out.stderr and "Traceback" not in out.stderr
    out = run_evaluate("--limit", "-3", cwd=tmp_path)
    assert out.returncode == 2 and "--limit" in out.stderr
    out = run_evaluate("--degrade", "1.5", cwd=tmp_path)
    assert out.returncode == 2 and "--degrade" in out.stderr and "Traceback" not in out.stderr


def test_classifier_features_and_labels(tiny_classifier):
    clf = FrozenClassifier(tiny_classifier)
    assert clf.classes[7] == "horse"
    logits, features = clf(tf.zeros((3, 64, 64, 3)))
    assert logits.shape == (3, 10) and features.shape == (3, 256)
    images = evaluation.eval_images(tiny_config(classes=["horse"]).resolved(32))[0]
    assert set(images.labels(clf.classes)) == {7}


def test_sweep_grid_parsing():
    combos = parse_grid("lr=1e-4,2e-4 lambda_l1=10,100 jitter=true")
    assert len(combos) == 4 and combos[0] == {"lr": 1e-4, "lambda_l1": 10.0, "jitter": True}
    # list fields: one list per value, items joined with "+"; "auto" where the field allows it
    assert parse_grid("classes=horse,deer+cat") == [{"classes": ["horse"]}, {"classes": ["deer", "cat"]}]
    assert parse_grid("image_size=auto,64") == [{"image_size": "auto"}, {"image_size": 64}]
    for bad, message in (("lr", "not key=value"), ("learning_rate=1", "unknown config key"),
                         ("lr=abc", "not a number"), ("epochs=1.5", "not a whole number"),
                         ("jitter=maybe", "not a boolean"), ("lr=auto", "not a number")):
        with pytest.raises(ColorganError, match=message):
            parse_grid(bad)


def test_sweep_trains_each_combination_and_ranks(tmp_path):
    out = subprocess.run([sys.executable, "-m", "colorgan.evaluation.sweep", "--grid", "classes=horse,deer+cat lr=1e-3",
                          "--prefix", "sw", "--data", str(SAMPLE), "--epochs", "1", "--base-filters", "4",
                          "--batch-size", "8", "--model", "unet-l1", "--num-samples", "0",
                          "--checkpoint-dir", str(tmp_path / "ck")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    runs = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert runs == ["sw-classes=deer+cat-lr=0.001", "sw-classes=horse-lr=0.001"]
    for name, classes in zip(runs, (["deer", "cat"], ["horse"])):
        saved = json.loads((tmp_path / "ck" / name / "config.json").read_text())
        assert saved["classes"] == classes and saved["lr"] == 1e-3
    ranking = (tmp_path / "reports" / "sw" / "ranking.md").read_text()
    assert "Ranked by psnr" in ranking and "sw-classes=horse-lr=0.001" in ranking and "gray baseline" in ranking
    # each run evaluated on its own classes: 10 test images per class in the sample
    results = json.loads((tmp_path / "reports" / "sw" / "metrics.json").read_text())
    assert sorted(r["images"] for r in results) == [10, 20]


@pytest.mark.realdata
def test_gray_baseline_reproduces_the_reference_on_cifar10_test(shared_data, tmp_path):
    cfg = Config(data=str(shared_data / "cifar10"), base_filters=4, precision="fp32").resolved(32)
    generator, _ = models.build_models(cfg)
    run = Run(tmp_path, cfg, generator)
    result = evaluation.evaluate_run(run, batch_size=500, progress=False)
    gray = result["rows"]["gray baseline"]
    print(result["rows"])
    assert result["images"] == 10000
    # ../shared/README.md: PSNR 25.48 dB, SSIM 0.953, true colourfulness 30.6 (see docs/experiments.md on the PSNR cap).
    assert gray["psnr"] == pytest.approx(25.48, abs=0.2)
    assert gray["ssim"] == pytest.approx(0.953, abs=0.002)
    assert result["rows"]["true colour"]["colourfulness"] == pytest.approx(30.6, abs=0.3)


def test_classifier_images_are_labelled_by_their_class_folder():
    classes = sorted(p.name for p in (SAMPLE / "train").iterdir())
    paths, labels = labelled_images(SAMPLE / "train", classes)
    colour = {c: len(data.color_images(SAMPLE / "train", [c])[0].color) for c in classes}
    assert [Path(p).parent.name for p in paths] == [classes[i] for i in labels]
    assert [int((labels == i).sum()) for i in range(len(classes))] == [colour[c] for c in classes]
    assert 0 < len(paths) < len(list((SAMPLE / "train").rglob("*.jpg")))  # black-and-white photos left out

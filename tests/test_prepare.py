"""colorgan.data.prepare: a data folder written as TFRecord shards, and training / evaluation reading them."""
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from colorgan.data import sources as data
from colorgan.data import pipeline
from colorgan.data import prepare
from colorgan.cli import overrides_from_args
from colorgan.config import config_from_overrides
from colorgan.errors import ColorganError
from colorgan.data.shards import SHARD_FEATURES
from conftest import copy_images, sample_images, tiny_config
from test_data import make_paired


def read_shards(folder, split):
    """Every record of a split's shards as a dict of numpy values, in file order."""
    manifest = json.loads((folder / "manifest.json").read_text())
    records = []
    for name in manifest["splits"][split]["shards"]:
        for raw in tf.data.TFRecordDataset(str(folder / name)):
            parsed = tf.io.parse_single_example(raw, SHARD_FEATURES)
            records.append({k: v.numpy() for k, v in parsed.items()})
    return records


def class_folder(root, n_per_class=6):
    """train/<class>/ and test/<class>/ from the embedded sample, as CIFAR-10 is laid out."""
    files = sample_images(3 * n_per_class)
    for split in ("train", "test"):
        for c, name in enumerate(("cat", "dog", "ship")):
            copy_images(files[c * n_per_class:(c + 1) * n_per_class], root / split / name)
    return root


def test_bad_file_is_named_in_the_manifest_and_absent_from_the_shards(tmp_path):
    folder = copy_images(sample_images(10), tmp_path / "imgs")
    (folder / "garbage.jpg").write_bytes(os.urandom(300))
    manifest = prepare.prepare(folder, tmp_path / "shards", shard_mb=0.004, val_split=0.2, seed=3, progress=False)
    assert any(line.startswith(f"{folder.resolve()}/garbage.jpg: ") for line in manifest["skipped"])
    records = read_shards(tmp_path / "shards", "train") + read_shards(tmp_path / "shards", "validation")
    assert len(records) == 10 == manifest["counts"]["examples"]
    assert b"garbage.jpg" not in {r["path"] for r in records}


def test_shards_round_trip_every_example_with_the_folder_split(tmp_path):
    root = class_folder(tmp_path / "set")
    out = tmp_path / "shards"
    manifest = prepare.prepare(root, out, shard_mb=0.003, progress=False)
    assert manifest["eval_split"] == "test" and len(manifest["splits"]["train"]["shards"]) > 2
    folder = data.find_source(tiny_config(data=str(root)))
    for split, images in (("train", folder.train), ("test", folder.val)):
        records = sorted(read_shards(out, split), key=lambda r: r["index"])
        assert [r["index"] for r in records] == list(range(len(images)))  # each example once
        for record, path in zip(records, images.color):
            with open(path, "rb") as f:
                assert record["image"] == f.read()  # bytes as stored
            assert record["class"].decode() == os.path.basename(os.path.dirname(path))
            assert record["gray"] == b""
    # Read back as training reads it: the same examples, order and labels as the folder.
    shards = data.find_source(tiny_config(data=str(out)))
    assert len(shards.train) == len(folder.train) and shards.default_image_size == 32
    classes = ["cat", "dog", "ship"]
    assert np.array_equal(shards.val.labels(classes), folder.val.labels(classes))
    a = np.stack(list(shards.val.examples(32).as_numpy_iterator()))
    b = np.stack(list(folder.val.examples(32).as_numpy_iterator()))
    assert a.shape == b.shape and np.abs(a.astype(int) - b).max() <= 3  # TF's JPEG decoder against Pillow's
    subset = shards.val.subset([1, 4, 5])
    assert len(subset) == 3 and np.array_equal(np.stack(list(subset.examples(32).as_numpy_iterator())), a[[1, 4, 5]])


@pytest.mark.parametrize("flags", [["--seed", "7"], ["--seed", "7", "--split-seed", "3"], ["--split-seed", "5"]])
def test_the_split_flags_mean_what_they_mean_to_train_py(tmp_path, flags):
    from colorgan.commands import train as train_command

    files = sample_images(24)
    for c, name in enumerate(("cat", "dog", "ship")):  # class folders with no split of their own
        copy_images(files[8 * c:8 * (c + 1)], tmp_path / "set" / name)
    argv = ["--data", str(tmp_path / "set"), "--classes", "cat,ship", "--val-split", "0.25", *flags]
    prepare.main([*argv, "--out", str(tmp_path / "shards"), "--no-progress"])
    trained = data.find_source(config_from_overrides(overrides_from_args(train_command.parse_args(argv))))
    default = data.find_source(config_from_overrides(overrides_from_args(train_command.parse_args(argv[:6]))))
    shards = data.find_source(tiny_config(data=str(tmp_path / "shards")))
    assert len(shards.val) == len(trained.val) == 4  # 16 images of the two classes kept
    assert sorted(trained.val.color) != sorted(default.val.color)  # the flags moved the split
    a = np.stack(list(shards.val.examples(32).as_numpy_iterator()))
    b = np.stack(list(trained.val.examples(32).as_numpy_iterator()))
    assert np.abs(a.astype(int) - b).max() <= 3  # TF's JPEG decoder against Pillow's


@pytest.mark.parametrize("flags", [["--val-split", "1"], ["--seed", "abc"], ["--split-seed", "x"],
                                   ["--classes", "zebra"], ["--bogus"]])
def test_bad_flags_are_one_line_errors_and_write_nothing(tmp_path, capsys, flags):
    from colorgan.cli import run_main

    argv = ["--data", str(class_folder(tmp_path / "set", 2)), "--out", str(tmp_path / "shards"), *flags]
    with pytest.raises(SystemExit) as exit_:
        run_main(prepare.PROG, lambda: prepare.main(argv))
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith(f"{prepare.PROG}: error: "), err
    assert not (tmp_path / "shards").exists()


def test_paired_folder_keeps_the_gray_partner(tmp_path):
    root = make_paired(tmp_path / "set", 8)
    out = tmp_path / "shards"
    manifest = prepare.prepare(root, out, val_split=0.25, seed=3, progress=False)
    assert manifest["paired"] and manifest["splits"]["validation"]["examples"] == 2
    folder = data.find_source(tiny_config(data=str(root), val_split=0.25, seed=3))
    records = sorted(read_shards(out, "train"), key=lambda r: r["index"])
    for record, gray_path in zip(records, folder.train.gray):
        with open(gray_path, "rb") as f:
            assert record["gray"] == f.read()
    shards = data.find_source(tiny_config(data=str(out)))
    a = np.stack(list(shards.train.examples(32).as_numpy_iterator()))
    b = np.stack(list(folder.train.examples(32).as_numpy_iterator()))
    assert np.abs(a[..., 3].astype(int) - b[..., 3]).max() <= 3  # the gray channel is the partner's


def test_max_side_shrinks_and_reencodes(tmp_path):
    folder = copy_images(sample_images(4), tmp_path / "imgs")
    manifest = prepare.prepare(folder, tmp_path / "shards", max_side=16, val_split=0.25, progress=False)
    assert manifest["splits"]["train"]["max_side"] == 16
    image = tf.io.decode_image(read_shards(tmp_path / "shards", "train")[0]["image"])
    assert image.shape == (16, 16, 3)


def test_interrupted_prepare_resumes_without_duplicates(tmp_path, monkeypatch):
    folder = copy_images(sample_images(24), tmp_path / "imgs")
    out = tmp_path / "shards"
    write, calls = prepare.write_shard, []

    def failing_write(*args):
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed while the fourth shard is being written
        calls.append(args[1])
        write(*args)

    monkeypatch.setattr(prepare, "write_shard", failing_write)
    with pytest.raises(KeyboardInterrupt):
        prepare.prepare(folder, out, shard_mb=0.003, val_split=0.25, progress=False)
    written = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tfrecord")}
    assert len(written) == 3 and not (out / "manifest.json").exists()
    (out / ".tmp-train-00005-of-00009.tfrecord").write_bytes(b"half a shard")  # what a kill leaves

    monkeypatch.setattr(prepare, "write_shard", write)
    manifest = prepare.prepare(folder, out, shard_mb=0.003, val_split=0.25, progress=False)
    assert all((out / name).stat().st_mtime_ns == t for name, t in written.items())  # kept, not rewritten
    assert not list(out.glob(".tmp-*"))
    for split in ("train", "validation"):
        indices = sorted(r["index"] for r in read_shards(out, split))
        assert indices == list(range(manifest["splits"][split]["examples"]))
    # Another split (a changed seed) makes the old shards stale: they are all written again.
    manifest = prepare.prepare(folder, out, shard_mb=0.003, val_split=0.25, seed=7, progress=False)
    assert sorted(r["index"] for r in read_shards(out, "train")) == list(range(18))


def test_damaged_manifest_is_one_line(tmp_path):
    out = tmp_path / "shards"
    prepare.prepare(copy_images(sample_images(4), tmp_path / "imgs"), out, val_split=0.25, progress=False)
    manifest = (out / "manifest.json").read_text()
    (out / "manifest.json").write_text(manifest[:40])
    with pytest.raises(ColorganError, match="damaged manifest.json"):
        data.find_source(tiny_config(data=str(out)))
    (out / "manifest.json").write_text(manifest)
    next(out.glob("train-*.tfrecord")).unlink()
    with pytest.raises(ColorganError, match="is missing"):
        data.find_source(tiny_config(data=str(out)))


def flat_colours(folder, n):
    """n PNGs of one colour each, all different: an example is known by its colour after any crop or mirror."""
    from PIL import Image
    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (32, 32), (30 + 9 * i, 220 - 6 * i, 60 + 37 * i % 150)).save(folder / f"{i:04d}.png")
    return folder


def colour_ids(batches):
    """The colour of each example of (input, target) batches, as a hashable fingerprint."""
    return [tuple(np.round(np.concatenate([x[k].mean((0, 1)), y[k].mean((0, 1))]), 4).tolist())
            for x, y in ((np.asarray(x), np.asarray(y)) for x, y in batches) for k in range(len(x))]


def shard_mb_for(folder, shards):
    """--shard-mb that makes prepare write the folder's images as `shards` shards."""
    return sum(p.stat().st_size for p in folder.iterdir()) / shards / 1024 ** 2 * 1.001


def two_workers(monkeypatch):
    """TF_CONFIG as worker 0 of two sees it (what shards.py reads to count the workers)."""
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
                                                "task": {"type": "worker", "index": 0}}))


def test_each_worker_reads_its_own_shards(tmp_path, monkeypatch):
    """FILE sharding, as tf.distribute applies it to each of two workers: every example once over both, also
    through the training pipeline (shuffled, repeated, jittered)."""
    from tensorflow.python.data.experimental.ops.distribute import _AutoShardDataset

    folder = flat_colours(tmp_path / "imgs", 20)
    out = tmp_path / "shards"
    prepare.prepare(folder, out, shard_mb=shard_mb_for(folder, 4), val_split=0.0, progress=False)
    two_workers(monkeypatch)
    train = data.find_source(tiny_config(data=str(out), val_split=0.0)).train
    assert train.counts == [5, 5, 5, 5]  # 10 examples for each worker
    ds = train._parsed({"index": SHARD_FEATURES["index"]}).map(lambda e: e["index"])
    assert ds.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.FILE
    seen = [sorted(int(i) for i in _AutoShardDataset(ds, 2, w)) for w in range(2)]
    assert seen == [[i for i in range(20) if i % 4 in (0, 2)], [i for i in range(20) if i % 4 in (1, 3)]]

    every = colour_ids(pipeline.eval_dataset(train, size=32, batch_size=5, color_space="lab"))
    assert len(set(every)) == 20
    seen = []
    for w in range(2):
        # A pipeline of its own for each worker: in one process, two rewrites of one pipeline share its cache.
        batches = pipeline.train_dataset(train, size=32, batch_size=1, color_space="lab", jitter=True, seed=1)
        assert batches.options().experimental_distribute.auto_shard_policy == \
            tf.data.experimental.AutoShardPolicy.FILE
        seen.append(colour_ids(_AutoShardDataset(batches, 2, w).take(10)))  # one pass over this worker's 10
    assert sorted(seen[0] + seen[1]) == sorted(every)
    assert set(seen[0]) == set(every[i] for i in range(20) if i % 4 in (0, 2))


def test_workers_read_all_shards_when_their_own_would_be_uneven(tmp_path, monkeypatch, caplog):
    folder = flat_colours(tmp_path / "imgs", 12)
    out = tmp_path / "shards"
    prepare.prepare(folder, out, shard_mb=shard_mb_for(folder, 3), val_split=0.0, progress=False)
    two_workers(monkeypatch)
    train = data.find_source(tiny_config(data=str(out), val_split=0.0)).train
    assert train.counts == [4, 4, 4]  # shards 0 and 2 for one worker, shard 1 for the other: 2 to 1
    caplog.set_level("INFO", logger="colorgan")
    for _ in range(2):
        batches = pipeline.train_dataset(train, size=32, batch_size=4, color_space="lab", jitter=True, seed=1)
        assert batches.options().experimental_distribute.auto_shard_policy == \
            tf.data.experimental.AutoShardPolicy.DATA
    assert caplog.text.count("every worker reads all shards") == 1
    assert "3 shards for 2 workers (their own shards would give the workers 4 to 8 examples)" in caplog.text
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2", "c:3", "d:4"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert data.find_source(tiny_config(data=str(out), val_split=0.0)).train._shard_options() \
        .experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA  # fewer shards


def test_shards_give_the_folder_run_batch_for_batch(tmp_path):
    """A folder prepared with the folder run's val_split and seed holds the same split, read in the same order (one
    shard, or a few read round-robin), and TensorFlow decodes the same bytes (these files are `plain`: stored as
    they are): the same seed gives the same training batches (shuffled, jittered, over epochs), validation
    batches and, trained on one shard, losses."""
    from colorgan.training.loop import train

    folder = copy_images(sample_images(24), tmp_path / "imgs")
    paths = {"folder": folder, "shards": tmp_path / "shards", "3 shards": tmp_path / "shards3"}
    prepare.prepare(folder, paths["shards"], shard_mb=100, val_split=0.25, seed=1, progress=False)
    prepare.prepare(folder, paths["3 shards"], shard_mb=shard_mb_for(folder, 4), val_split=0.25, seed=1,  # train: 3
                    progress=False)
    sources = {name: data.find_source(tiny_config(data=str(path), val_split=0.25, seed=1))
               for name, path in paths.items()}
    assert len(sources["shards"].train.files) == 1 and len(sources["3 shards"].train.files) == 3
    assert all(sources["folder"].train.plain)
    size = dict(size=32, batch_size=4, color_space="lab")
    batches = {name: list(pipeline.train_dataset(s.train, **size, jitter=True, seed=5).take(10))  # 18: 2 epochs+
               for name, s in sources.items()}
    val = {name: list(pipeline.eval_dataset(s.val, **size)) for name, s in sources.items()}
    for got in (batches, val):
        for shards in ("shards", "3 shards"):
            assert len(got["folder"]) == len(got[shards])
            for a, b in zip(got["folder"], got[shards]):
                assert all(np.array_equal(u.numpy(), v.numpy()) for u, v in zip(a, b))

    del paths["3 shards"]
    runs = {name: train(tiny_config(data=str(path), val_split=0.25, seed=1, batch_size=4, epochs=2, run_name=name,
                                    num_samples=0, checkpoint_dir=str(tmp_path / "runs"), tensorboard=False),
                        verbose=0) for name, path in paths.items()}
    rows = {name: (run / "history.csv").read_text().splitlines() for name, run in runs.items()}
    header = rows["folder"][0].split(",")
    assert header == rows["shards"][0].split(",") and len(rows["folder"]) == len(rows["shards"]) == 3
    for a, b in zip(rows["folder"][1:], rows["shards"][1:]):
        a, b = dict(zip(header, a.split(","))), dict(zip(header, b.split(",")))
        losses = [k for k in header if k not in ("epoch", "seconds") and a[k]]  # the columns this trainer has
        assert "g_total" in losses and "val_g_total" in losses
        assert [float(a[k]) for k in losses] == pytest.approx([float(b[k]) for k in losses], rel=1e-5)


def test_training_and_evaluation_on_shards(tmp_path, monkeypatch):
    from colorgan.commands import evaluate
    from colorgan.training.loop import train

    root = class_folder(tmp_path / "set", 4)
    out = tmp_path / "shards"
    prepare.main(["--data", str(root), "--out", str(out), "--shard-mb", "0.003", "--no-progress"])
    checkpoints = tmp_path / "checkpoints"
    runs = {}
    for name, source in (("folder", root), ("shards", out)):
        runs[name] = train(tiny_config(data=str(source), batch_size=4, run_name=name, num_samples=0,
                                       checkpoint_dir=str(checkpoints), tensorboard=False), verbose=0)
    histories = {name: (run / "history.csv").read_text().splitlines() for name, run in runs.items()}
    header = histories["shards"][0].split(",")
    row = dict(zip(header, histories["shards"][1].split(",")))
    assert all(np.isfinite(float(row[k])) for k in header if k.endswith("loss"))
    assert len(histories["shards"]) == len(histories["folder"]) == 2
    monkeypatch.chdir(tmp_path)
    assert evaluate.main(["--run", str(runs["shards"]), "--no-progress", "--samples", "2"]) == 0
    metrics = json.loads((tmp_path / "reports" / "shards" / "metrics.json").read_text())
    assert metrics["images"] == 12

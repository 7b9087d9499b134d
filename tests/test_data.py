import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from colorgan.data import sources as data
from colorgan.data import examples
from colorgan.data import image_sets
from colorgan.data import pipeline
from colorgan.data import scan
from colorgan.color.lab import rgb_to_gray
from colorgan.errors import ColorganError
from conftest import SAMPLE, copy_images, sample_images, tiny_config


def make_paired(root, n=6, unpaired_color=(), unpaired_gray=()):
    """color/N.jpg from real images and gray/N.png derived with OpenCV (1 channel), as in Kaggle's set."""
    (root / "color").mkdir(parents=True)
    (root / "gray").mkdir()
    for i, f in enumerate(sample_images(n)):
        img = cv2.imread(str(f))
        cv2.imwrite(str(root / "color" / f"{i}.jpg"), img)
        cv2.imwrite(str(root / "gray" / f"{i}.png"), cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    for name in unpaired_color:
        shutil.copy(sample_images(1)[0], root / "color" / name)
    for name in unpaired_gray:
        cv2.imwrite(str(root / "gray" / name), np.zeros((32, 32), np.uint8))
    return root


def test_pairing_by_stem_warns_about_unpaired(tmp_path, caplog):
    root = make_paired(tmp_path / "set", 6, unpaired_color=["lonely.jpg"], unpaired_gray=["ghost.png"])
    images, skipped = data.paired_images(root)
    assert len(images) == 6
    assert [p.split("/")[-1] for p in images.color] == [f"{i}.jpg" for i in range(6)]
    assert all(c.split("/")[-1][:-4] == g.split("/")[-1][:-4] for c, g in zip(images.color, images.gray))
    assert len(skipped) == 2
    assert skipped[0].startswith(f"{root}/color/lonely.jpg: no gray partner")
    assert skipped[1].startswith(f"{root}/gray/ghost.png: no colour partner")
    with caplog.at_level(logging.WARNING, logger="colorgan"):  # a paired --data warns about them
        source = data.find_source(tiny_config(data=str(root)))
    assert source.skipped == skipped
    assert "lonely.jpg: no gray partner" in caplog.text
    assert "ghost.png: no colour partner" in caplog.text


def test_paired_names_sort_naturally(tmp_path):
    root = tmp_path / "set"
    for sub in ("color", "gray"):
        copy_images(sample_images(1) * 0, root / sub)
    for stem in ("10", "9", "100"):
        for sub in ("color", "gray"):
            shutil.copy(sample_images(1)[0], root / sub / f"{stem}.jpg")
    assert [p.split("/")[-1] for p in data.paired_images(root)[0].color] == ["9.jpg", "10.jpg", "100.jpg"]


def test_missing_folders(tmp_path):
    root = make_paired(tmp_path / "set", 4)
    shutil.rmtree(root / "color")
    with pytest.raises(ColorganError, match="gray/ but no color/"):
        data.find_source(tiny_config(data=str(root)))
    with pytest.raises(ColorganError, match="no such file or folder"):
        data.find_source(tiny_config(data=str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ColorganError, match="no usable training images"):
        data.find_source(tiny_config(data=str(tmp_path / "empty")))


def test_color_folder_without_gray_is_used_with_gray_derived(tmp_path):
    root = make_paired(tmp_path / "set", 10)
    shutil.rmtree(root / "gray")
    source = data.find_source(tiny_config(data=str(root), val_split=0.2))
    assert source.train.gray is None and len(source.train) == 8 and len(source.val) == 2


def test_paired_source_split_is_deterministic_and_disjoint(tmp_path):
    root = make_paired(tmp_path / "set", 20)
    a = data.find_source(tiny_config(data=str(root), val_split=0.25, seed=3))
    b = data.find_source(tiny_config(data=str(root), val_split=0.25, seed=3))
    c = data.find_source(tiny_config(data=str(root), val_split=0.25, seed=4))
    assert a.train.color == b.train.color and a.val.color == b.val.color
    assert len(a.val) == 5 and not set(a.val.color) & set(a.train.color)
    assert set(a.val.color) != set(c.val.color)
    assert a.default_image_size == 32  # CIFAR-sized images


def test_split_seed_keeps_the_validation_photos_when_the_seed_changes(tmp_path):
    root = make_paired(tmp_path / "set", 20)
    a = data.find_source(tiny_config(data=str(root), val_split=0.25, seed=3))
    b = data.find_source(tiny_config(data=str(root), val_split=0.25, seed=4, split_seed=3))
    c = data.find_source(tiny_config(data=str(root), val_split=0.25, seed=3, split_seed=4))
    assert a.val.color == b.val.color and a.train.color == b.train.color  # a second seed, the same photos
    assert set(c.val.color) != set(a.val.color)


def test_split_folder_and_classes():
    source = data.find_source(tiny_config(data=str(SAMPLE), classes=["horse", "deer"]))
    # test/horse/0008.jpg is a black-and-white photo: skipped, and said so
    assert len(source.train) == 80 and len(source.val) == 19
    assert source.skipped == [f"{SAMPLE}/test/horse/0008.jpg: grayscale (no colour to learn from)"]
    assert all("/horse/" in p or "/deer/" in p for p in source.train.color + source.val.color)
    with pytest.raises(ColorganError, match="zebra not in"):
        data.find_source(tiny_config(data=str(SAMPLE), classes=["zebra"]))


def test_relative_name_is_found_under_data(tmp_path, monkeypatch):
    make_paired(tmp_path / "data" / "landscape Images", 4)
    monkeypatch.chdir(tmp_path)
    source = data.find_source(tiny_config(data="landscape Images"))
    assert "paired" in source.description and len(source.train) + len(source.val) == 4


def test_project_relative_path_is_found_from_another_folder(tmp_path, monkeypatch):
    """A run trained from the project's root records data/cifar10-mini; evaluate.py elsewhere still finds it."""
    monkeypatch.chdir(tmp_path)
    assert data.resolve_data_path("data/cifar10-mini") == SAMPLE
    assert data.resolve_data_path("no/such/folder") is None


def test_broken_files_are_skipped_with_their_names(tmp_path, caplog):
    folder = copy_images(sample_images(5), tmp_path / "imgs")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("not an image")
    truncated = (folder / "0000.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(truncated[: len(truncated) // 3])
    with caplog.at_level(logging.WARNING, logger="colorgan"):
        images, skipped = data.color_images(folder, [])
        scan.report_skipped(skipped)
    files = [Path(p) for p in images.color]
    assert "empty.jpg: empty file" in caplog.text and "notes.jpg: not an image" in caplog.text
    assert "truncated.jpg: cannot decode" in caplog.text  # a valid header: only decoding finds it
    assert [f.name for f in files] == [f"{i:04d}.jpg" for i in range(5)]
    decoded = list(image_sets.FileImages(color=[str(f) for f in files]).examples(32))
    assert len(decoded) == 5


def test_cifar10_download_path(monkeypatch, tmp_path):
    import keras
    monkeypatch.chdir(tmp_path)  # no local 'cifar10' folder here
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (20, 32, 32, 3), dtype=np.uint8)
    y = np.arange(20).reshape(-1, 1) % 10
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: ((x, y), (x[:10], y[:10])))
    source = data.find_source(tiny_config(data="cifar10", classes=["horse"]))
    assert len(source.train) == 2 and len(source.val) == 1 and source.default_image_size == 32
    assert isinstance(source.train, image_sets.ArrayImages) and source.train.labels(list(data.CIFAR10_CLASSES)) is None

    def offline():
        raise OSError("no network")
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(ColorganError, match="download failed"):
        data.find_source(tiny_config(data="cifar10"))


# ---- data ops: eagerly and inside tf.data.map (big_vision style) ------------------------------
def _through_map(fn, *args):
    ds = tf.data.Dataset.from_tensors(args).map(fn)
    return next(iter(ds))


@pytest.mark.parametrize("inside_map", [False, True])
def test_load_and_resize_ops(inside_map, tmp_path):
    root = make_paired(tmp_path / "set", 1)
    color_path, gray_path = str(root / "color" / "0.jpg"), str(root / "gray" / "0.png")
    run = (lambda fn, *a: _through_map(fn, *a)) if inside_map else (lambda fn, *a: fn(*a))
    example = run(examples.load_example, color_path, gray_path)
    assert example.dtype == tf.uint8 and example.shape == (32, 32, 4)
    expected_gray = cv2.imread(gray_path, cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(example[..., 3].numpy(), expected_gray)
    derived = run(examples.load_example, color_path)
    want = np.round(rgb_to_gray(tf.cast(derived[..., :3], tf.float32)).numpy()[..., 0])
    np.testing.assert_array_equal(derived[..., 3].numpy(), want.astype(np.uint8))
    big = run(lambda x: examples.resize_example(x, 64), example)
    assert big.shape == (64, 64, 4) and big.dtype == tf.uint8
    x, y = run(lambda e: pipeline.example_to_model_io(e, "lab"), big)
    assert x.shape == (64, 64, 1) and y.shape == (64, 64, 2)


@pytest.mark.parametrize("inside_map", [False, True])
def test_jitter_moves_input_and_target_together(inside_map):
    # Gray derived from colour: after the jitter every pixel's gray must still be its colour's gray.
    example = examples.load_example(str(sample_images(1)[0]))
    seed = tf.constant([3, 4], tf.int64)
    jitter = (lambda s: _through_map(lambda e, s: pipeline.random_jitter(e, 32, s), example, s)) if inside_map \
        else (lambda s: pipeline.random_jitter(example, 32, s))
    jittered = jitter(seed)
    assert jittered.shape == (32, 32, 4)
    assert not np.array_equal(jittered.numpy(), example.numpy())
    want = np.round(rgb_to_gray(tf.cast(jittered[..., :3], tf.float32)).numpy()[..., 0])
    np.testing.assert_array_equal(jittered[..., 3].numpy(), want.astype(np.uint8))
    np.testing.assert_array_equal(jitter(seed).numpy(), jittered.numpy())  # same seed, same jitter
    others = [jitter(tf.constant([s, 0], tf.int64)).numpy() for s in range(5)]
    assert any(not np.array_equal(o, jittered.numpy()) for o in others)


def _pipelines(cfg):
    return dict(size=cfg.image_size, batch_size=cfg.batch_size, color_space=cfg.color_space)


def test_train_and_eval_pipelines():
    cfg = tiny_config(classes=["horse"], batch_size=16).resolved(32)
    source = data.find_source(cfg)
    assert pipeline.steps_per_pass(len(source.train), 16) == 2 and pipeline.eval_steps(len(source.val), 16) == 1
    train = lambda cfg: pipeline.train_dataset(source.train, **_pipelines(cfg), jitter=cfg.jitter, seed=cfg.seed)
    x, y = next(iter(train(cfg)))
    assert x.shape == (16, 32, 32, 1) and y.shape == (16, 32, 32, 2) and x.dtype == tf.float32
    assert float(tf.reduce_max(tf.abs(x))) <= 1.0 and float(tf.reduce_max(tf.abs(y))) <= 1.0
    np.testing.assert_array_equal(next(iter(train(cfg)))[0].numpy(), x.numpy())  # same seed, same order
    batches = list(pipeline.eval_dataset(source.val, **_pipelines(cfg)))
    assert sum(b[0].shape[0] for b in batches) == len(source.val) == 9  # one B&W photo skipped
    first = [b[0].numpy() for b in pipeline.eval_dataset(source.val, **_pipelines(cfg))]
    np.testing.assert_array_equal(first[0], batches[0][0].numpy())  # fixed order, no jitter
    assert sum(b[0].shape[0] for b in pipeline.eval_dataset(source.val, **_pipelines(cfg), limit=4)) == 4
    rgb_cfg = tiny_config(classes=["horse"], color_space="rgb").resolved(32)
    assert next(iter(train(rgb_cfg)))[1].shape[-1] == 3


def test_data_order_seed():
    # epoch boundaries: seed + epoch (a fresh order for each resumed epoch, epoch 0 is the seed itself)
    assert [pipeline.data_order_seed(42, e) for e in range(3)] == [42, 43, 44]
    assert pipeline.data_order_seed(42, 2, 0) == 44
    # mid-epoch: seed + 7919 * (epoch + 1) + step
    assert pipeline.data_order_seed(42, 0, 5) == 42 + 7919 + 5
    assert pipeline.data_order_seed(42, 3, 1) == 42 + 7919 * 4 + 1
    boundary = {pipeline.data_order_seed(42, e) for e in range(100)}
    middle = {pipeline.data_order_seed(42, e, s) for e in range(100) for s in range(1, 50)}
    assert len(boundary) == 100 and len(middle) == 100 * 49 and not boundary & middle


def test_sample_examples_are_spread_over_the_split():
    source = data.find_source(tiny_config(classes=["horse"]))
    examples = pipeline.sample_examples(source.val, 32, 4)
    assert examples.dtype == tf.uint8 and examples.shape == (4, 32, 32, 4)
    idx = [0, 3, 5, 8]  # np.linspace(0, 8, 4).round()
    want = np.stack([e.numpy() for e in source.val.subset(idx).examples(32)])
    np.testing.assert_array_equal(examples.numpy(), want)
    assert pipeline.sample_examples(source.val, 32, 100).shape[0] == len(source.val)  # no image twice
    x, y = pipeline.example_to_model_io(examples, "lab")
    assert x.shape == (4, 32, 32, 1) and y.shape == (4, 32, 32, 2)


def test_spread_keeps_every_class_of_a_class_sorted_split():
    source = data.find_source(tiny_config())  # the sample's test split: its files sorted by class
    classes = sorted(p.name for p in (SAMPLE / "test").iterdir())
    class_of = lambda images: {Path(p).relative_to(SAMPLE / "test").parts[0] for p in images.color}
    assert len(class_of(source.val.subset(range(10)))) == 1  # the first ten are all airplanes
    spread = source.val.spread(10)
    assert len(spread) == 10 and class_of(spread) == set(classes)
    assert source.val.spread(len(source.val) + 5) is source.val


def test_file_and_array_images_agree():
    source = data.find_source(tiny_config(classes=["horse", "deer"]))
    files = source.val
    classes = ["deer", "horse"]
    labels = files.labels(classes)
    assert labels is not None and len(labels) == len(files) == 19
    assert all(classes[i] in p for i, p in zip(labels, files.color))
    assert files.labels(["horse"]) is None  # a deer has no known class
    arrays = image_sets.ArrayImages(np.stack([e.numpy()[..., :3] for e in files.examples(32)]))
    assert len(arrays) == len(files) and arrays.labels(classes) is None
    assert files.max_side() == arrays.max_side() == 32
    idx = [7, 0, 18, 3]
    part_files, part_arrays = files.subset(idx), arrays.subset(idx)
    assert type(part_files) is image_sets.FileImages and type(part_arrays) is image_sets.ArrayImages
    assert part_files.color == [files.color[i] for i in idx] and part_files.plain == [files.plain[i] for i in idx]
    np.testing.assert_array_equal(part_files.labels(classes), labels[idx])
    # the same examples whichever way the images are held (gray derived from the colour both ways)
    for size in (32, 16):
        from_files = np.stack([e.numpy() for e in part_files.examples(size)])
        from_arrays = np.stack([e.numpy() for e in part_arrays.examples(size)])
        assert from_files.shape == (4, size, size, 4)
        np.testing.assert_array_equal(from_files, from_arrays)
    np.testing.assert_array_equal(pipeline.sample_examples(files, 32, 5).numpy(),
                                  pipeline.sample_examples(arrays, 32, 5).numpy())
    empty = files.subset([]), arrays.subset([])
    assert [len(e) for e in empty] == [0, 0] and [len(list(e.examples(32))) for e in empty] == [0, 0]


def test_paired_subset_keeps_pairs(tmp_path):
    images, _ = data.paired_images(make_paired(tmp_path / "set", 4))
    part = images.subset([3, 1])
    assert [p.split("/")[-1] for p in part.color] == ["3.jpg", "1.jpg"]
    assert [p.split("/")[-1] for p in part.gray] == ["3.png", "1.png"] and len(part.plain) == 2
    examples = list(part.examples(32))
    assert len(examples) == 2 and all(e.shape == (32, 32, 4) for e in examples)
    # the paired gray is used as stored (OpenCV's conversion), not derived from the colour
    np.testing.assert_array_equal(examples[0][..., 3].numpy(), cv2.imread(part.gray[0], cv2.IMREAD_UNCHANGED))


def test_more_data_joins_folders_each_split_as_alone(tmp_path):
    """--more-data: each folder keeps the split it has alone; training sees all, a folder listed twice twice."""
    paired = make_paired(tmp_path / "paired", 10)
    cfg = tiny_config(data=str(paired), val_split=0.2)
    alone = data.find_source(cfg)
    sample = data.find_source(tiny_config(classes=["horse"]))  # train/ + test/ class folders
    joined = data.find_source(tiny_config(data=str(paired), val_split=0.2, more_data=[str(SAMPLE), str(SAMPLE)]))
    whole = data.find_source(tiny_config())
    assert len(joined.train) == len(alone.train) + 2 * len(whole.train)
    assert len(joined.val) == len(alone.val) + len(whole.val)  # validated once
    assert joined.val.parts[0].color == alone.val.color  # the paired folder's validation split is unchanged
    assert joined.name == "paired+cifar10-mini"
    # the examples are the parts' examples in turn, the paired gray kept as stored
    got = np.stack([e.numpy() for e in joined.val.examples(32)])
    want = np.concatenate([np.stack([e.numpy() for e in p.examples(32)]) for p in joined.val.parts])
    np.testing.assert_array_equal(got, want)
    # subset keeps the order across parts, and labels join where every part has them
    n0 = len(alone.val)
    idx = [n0 + 1, 0, n0, 1]
    part = joined.val.subset(idx)
    np.testing.assert_array_equal(np.stack([e.numpy() for e in part.examples(32)]), got[idx])
    assert joined.val.labels(list(data.CIFAR10_CLASSES)) is None  # the paired folder has no classes
    two = image_sets.JoinedImages([sample.val, sample.val])
    np.testing.assert_array_equal(two.labels(["horse"]), np.zeros(2 * len(sample.val)))
    assert joined.train.max_side() == 32


def test_more_data_errors_name_the_flag(tmp_path):
    with pytest.raises(ColorganError, match="--more-data .*no/such: no such file"):
        data.find_source(tiny_config(more_data=[str(tmp_path / "no/such")]))

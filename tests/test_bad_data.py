"""Folders of photos 'scraped from anywhere': every odd file is used correctly or skipped by name with its reason,
through the data scan, the tf.data pipeline, train.py, evaluate.py and colorize.py."""
import logging
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from colorgan.data import sources as data
from colorgan.data import examples
from colorgan.data import scan
from colorgan.errors import ColorganError
from conftest import ROOT, sample_images, tiny_config

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0  # root reads a chmod-000 file anyway


def _rgb(i: int) -> np.ndarray:
    return cv2.imread(str(sample_images(12)[i]))[..., ::-1]  # real colour CIFAR-10 photos, RGB


def _save(path, rgb):
    Image.fromarray(np.ascontiguousarray(rgb)).save(path)


def _truncated_jpeg(path, i=0):
    _save(path, cv2.resize(_rgb(i), (96, 96)))
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 3])


def make_bad_color_folder(folder):
    """-> (folder, names expected to be used, {name: reason expected when skipped})."""
    folder.mkdir(parents=True)
    used = {}
    for i in range(4):
        _save(folder / f"good{i}.jpg", _rgb(i))
    _save(folder / "café au lait.jpg", _rgb(4))            # non-ASCII and spaces
    _save(folder / "two words.png", _rgb(5))
    rgba = np.dstack([_rgb(6), np.full((32, 32), 255, np.uint8)])
    rgba[:, :16, 3] = 0                                     # left half transparent
    rgba[:, :16, :3] = 0                                    # ... and black underneath
    _save(folder / "alpha.png", rgba)
    cv2.imwrite(str(folder / "deep16.png"), _rgb(7)[..., ::-1].astype(np.uint16) * 257)  # 16-bit colour PNG
    Image.fromarray(_rgb(8)).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    _save(folder / "tiny.png", cv2.resize(_rgb(9), (5, 3), interpolation=cv2.INTER_AREA))
    _save(folder / "huge.jpg", cv2.resize(_rgb(10), (4000, 3000), interpolation=cv2.INTER_CUBIC))
    used = {"good0.jpg", "good1.jpg", "good2.jpg", "good3.jpg", "café au lait.jpg", "two words.png",
            "alpha.png", "deep16.png", "cmyk.jpg", "tiny.png", "huge.jpg"}
    skipped = {"truncated.jpg": "cannot decode", "empty.jpg": "empty file", "notes.jpg": "not an image",
               "bw.jpg": "grayscale", "gone.jpg": "broken link"}
    _truncated_jpeg(folder / "truncated.jpg")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("this is a text file, not a photo\n")
    _save(folder / "bw.jpg", cv2.cvtColor(_rgb(11), cv2.COLOR_RGB2GRAY))  # gray image among colour ones
    os.symlink(folder / "deleted-long-ago.jpg", folder / "gone.jpg")
    _save(folder / "locked.jpg", _rgb(3))
    os.chmod(folder / "locked.jpg", 0)
    if AS_ROOT:
        used.add("locked.jpg")
    else:
        skipped["locked.jpg"] = "permission denied"
    (folder / "empty class").mkdir()                         # an empty subfolder
    return folder, used, skipped


def make_bad_paired_folder(root):
    """A paired color/ + gray/ folder -> (root, stems expected to be used, {file name: reason when skipped})."""
    (root / "color").mkdir(parents=True)
    (root / "gray").mkdir()

    def pair(stem, rgb, gray=None):
        _save(root / "color" / f"{stem}.jpg", rgb)
        _save(root / "gray" / f"{stem}.png", cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if gray is None else gray)

    for i in range(4):
        pair(str(i), _rgb(i))
    pair("ünï cödé", _rgb(4))
    big = cv2.resize(_rgb(5), (64, 64))
    pair("resized", big, cv2.cvtColor(_rgb(5), cv2.COLOR_RGB2GRAY))        # same photo, gray at half size
    pair("wide", cv2.resize(_rgb(6), (64, 32)), cv2.cvtColor(_rgb(6), cv2.COLOR_RGB2GRAY))  # other shape
    gray7 = cv2.cvtColor(_rgb(7), cv2.COLOR_RGB2GRAY)
    pair("bw", np.dstack([gray7] * 3), gray7)                                # a gray image in color/
    pair("trunc", _rgb(8))
    _truncated_jpeg(root / "color" / "trunc.jpg", 8)
    _save(root / "color" / "lonely.jpg", _rgb(9))
    _save(root / "gray" / "ghost.png", cv2.cvtColor(_rgb(10), cv2.COLOR_RGB2GRAY))
    used = {"0", "1", "2", "3", "ünï cödé", "resized"}
    skipped = {"wide.jpg": "different shape", "bw.jpg": "grayscale", "trunc.jpg": "cannot decode",
               "lonely.jpg": "no gray partner", "ghost.png": "no colour partner"}
    return root, used, skipped


@pytest.fixture(scope="module")
def bad_color(tmp_path_factory):
    return make_bad_color_folder(tmp_path_factory.mktemp("bad") / "photos")


def _names(paths):
    return {os.path.basename(p) for p in paths}


def _check_skipped(skipped_lines, expected):
    assert len(skipped_lines) == len(expected), skipped_lines
    for name, reason in expected.items():
        line = [s for s in skipped_lines if s.split(": ")[0].endswith("/" + name)]
        assert len(line) == 1 and reason in line[0], (name, reason, skipped_lines)


def test_scan_uses_odd_but_valid_files_and_names_the_bad_ones(bad_color, caplog):
    folder, used, skipped = bad_color
    with caplog.at_level(logging.INFO, logger="colorgan"):
        source = data.find_source(tiny_config(data=str(folder), val_split=0.0))
    assert _names(source.train.color) == used and len(source.val) == 0
    _check_skipped(source.skipped, skipped)
    assert f"{len(used)} images used, {len(skipped)} skipped" in caplog.text
    for name in set(skipped) - {"bw.jpg"}:
        assert f"skipped {folder}/{name}: " in caplog.text
    assert f"1 black-and-white photo left out of training ({folder}/bw.jpg)" in caplog.text
    # evaluation keeps black-and-white photos (a test set has them: scoring them is honest)
    kept = data.find_source(tiny_config(data=str(folder), val_split=0.0), keep_gray=True)
    assert _names(kept.train.color) == used | {"bw.jpg"}


def test_pipeline_decodes_every_scanned_file_correctly(bad_color):
    folder, used, _ = bad_color
    source = data.find_source(tiny_config(data=str(folder), val_split=0.0))
    examples = list(source.train.examples(32))
    assert len(examples) == len(used)  # nothing the scan passed is dropped later
    by_name = dict(zip([os.path.basename(p) for p in source.train.color], examples))
    # alpha: the transparent half is shown over white, the opaque half is the photo
    alpha = by_name["alpha.png"].numpy()
    assert alpha[:, :14, :3].min() >= 250 and np.abs(alpha[:, 18:, :3].astype(int) - _rgb(6)[:, 18:]).mean() < 3
    # 16-bit: the same values as the 8-bit photo it was made from
    assert np.abs(by_name["deep16.png"].numpy()[..., :3].astype(int) - _rgb(7)).max() <= 1
    # CMYK JPEG: close to the RGB photo it was made from
    assert np.abs(by_name["cmyk.jpg"].numpy()[..., :3].astype(int) - _rgb(8)).mean() < 12
    # every example is at the model's size with gray consistent with its colour
    assert all(e.shape == (32, 32, 4) for e in examples)


@pytest.mark.parametrize("inside_map", [False, True])
def test_decode_op_on_bad_files(bad_color, inside_map, caplog):
    folder, _, _ = bad_color
    run = (lambda p: next(iter(tf.data.Dataset.from_tensors(p).map(examples.decode_rgb)))) if inside_map \
        else examples.decode_rgb
    assert run(str(folder / "cmyk.jpg")).shape == (32, 32, 3)
    assert run(str(folder / "huge.jpg")).shape == (3000, 4000, 3)
    # eagerly our own error comes back; inside tf.data an OpError, which the pipelines drop
    with caplog.at_level(logging.WARNING, logger="colorgan"), \
            pytest.raises(ColorganError if not inside_map else tf.errors.OpError):
        run(str(folder / "truncated.jpg"))
    assert "truncated.jpg: cannot decode" in caplog.text
    # JPEGs decode at a reduced scale (1/8 here) that keeps both sides >= min_size
    reduced = examples.decode_rgb(str(folder / "huge.jpg"), 256) if not inside_map else next(iter(
        tf.data.Dataset.from_tensors(str(folder / "huge.jpg")).map(lambda p: examples.decode_rgb(p, 256))))
    assert reduced.shape == (375, 500, 3)


def test_paired_folder_with_bad_pairs(tmp_path, caplog):
    root, used, skipped = make_bad_paired_folder(tmp_path / "pairs")
    with caplog.at_level(logging.INFO, logger="colorgan"):
        source = data.find_source(tiny_config(data=str(root), val_split=0.0))
    assert {os.path.basename(p)[:-4] for p in source.train.color} == used
    assert [os.path.basename(c)[:-4] for c in source.train.color] == \
        [os.path.basename(g)[:-4] for g in source.train.gray]
    _check_skipped(source.skipped, skipped)
    assert f"{len(used)} images used, {len(skipped)} skipped" in caplog.text
    assert len(list(source.train.examples(32))) == len(used)


def test_folders_with_nothing_usable_fail_before_any_model(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ColorganError, match=r"no usable training images.*0 files skipped"):
        data.find_source(tiny_config(data=str(tmp_path / "empty")))
    with pytest.raises(ColorganError, match="no such file or folder"):
        data.find_source(tiny_config(data=str(tmp_path / "missing")))
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpg").write_bytes(b"")
    (junk / "b.png").write_text("hello")
    with pytest.raises(ColorganError, match=r"no usable training images.*2 files skipped \(.*a.jpg: empty file"):
        data.find_source(tiny_config(data=str(junk)))


def _cli(*args, cwd):
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_train_evaluate_colorize_on_the_bad_folder(bad_color, tmp_path):
    """The three commands on the same folder: no traceback, each bad file named, work done on the rest."""
    folder, used, skipped = bad_color
    train = _cli(ROOT / "train.py", "--data", folder, "--image-size", 32, "--batch-size", 4, "--base-filters", 8,
                 "--epochs", 1, "--val-split", 0.25, "--precision", "fp32", "--run-name", "bad",
                 "--checkpoint-dir", tmp_path / "runs", cwd=tmp_path)
    assert train.returncode == 0, train.stderr
    assert "Traceback" not in train.stderr
    assert f"{len(used)} images used, {len(skipped)} skipped" in train.stderr
    assert train.stderr.index("images used") < train.stderr.index("run directory")  # summary before training
    listed = (tmp_path / "runs" / "bad" / "skipped.txt").read_text().splitlines()
    _check_skipped(listed, skipped)

    evaluate = _cli(ROOT / "evaluate.py", "--run", tmp_path / "runs" / "bad", "--data", folder,
                    "--out", tmp_path / "report", "--no-progress", cwd=tmp_path)
    assert evaluate.returncode == 0, evaluate.stderr
    assert "Traceback" not in evaluate.stderr and "truncated.jpg: cannot decode" in evaluate.stderr
    assert (tmp_path / "report" / "metrics.json").exists()
    # the same folder counted differently, and saying why: scoring keeps the black-and-white photos
    assert "black-and-white photos kept" in evaluate.stderr and "black-and-white photos kept" not in train.stderr

    colorize = _cli(ROOT / "colorize.py", folder, "--run", tmp_path / "runs" / "bad", "-o", tmp_path / "out",
                    cwd=tmp_path)
    assert colorize.returncode == 1 and "Traceback" not in colorize.stderr + colorize.stdout
    # colorize takes gray photos too (that is what it is for): only unreadable files fail
    unreadable = {n for n, reason in skipped.items() if reason != "grayscale"}
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert written == (used | set(skipped)) - unreadable
    assert f"{len(unreadable)} failed" in colorize.stdout
    for name in unreadable:
        assert f"{folder}/{name}: " in colorize.stdout
    huge = np.asarray(Image.open(tmp_path / "out" / "huge.jpg"))
    assert huge.shape == (3000, 4000, 3)


@pytest.mark.parametrize("inside_map", [False, True])
def test_plain_files_decode_the_same_through_tensorflow_and_pillow(bad_color, inside_map):
    folder, _, _ = bad_color
    source = data.find_source(tiny_config(data=str(folder), val_split=0.0))
    plain = {os.path.basename(p): flag for p, flag in zip(source.train.color, source.train.plain)}
    assert plain["good0.jpg"] and plain["two words.png"] and plain["tiny.png"]
    assert not any(plain[n] for n in ("cmyk.jpg", "deep16.png", "alpha.png", "huge.jpg"))
    for name in ("good0.jpg", "two words.png"):
        path = str(folder / name)
        if inside_map:
            ds = tf.data.Dataset.from_tensors((path, True)).concatenate(tf.data.Dataset.from_tensors((path, False)))
            fast, slow = [x.numpy().astype(int) for x in ds.map(lambda p, f: examples.decode_rgb(p, 0, f))]
        else:
            fast, slow = (examples.decode_rgb(path, 0, flag).numpy().astype(int) for flag in (True, False))
        assert fast.shape == slow.shape, name
        if name.endswith(".png"):
            assert np.array_equal(fast, slow)
        else:  # two JPEG decoders (TF's fast integer DCT, Pillow's accurate one): a few levels apart at most
            assert np.abs(fast - slow).max() <= 6 and np.abs(fast - slow).mean() < 1.0


def test_ctrl_c_during_the_scan_stops_it_at_once(monkeypatch, tmp_path):
    import signal
    import time
    files = [tmp_path / f"{i}.jpg" for i in range(400)]
    seen = []

    def slow_inspect(path):  # 400 files x 20 ms / 4 threads: 2 s if the queue were not dropped
        seen.append(path)
        if len(seen) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C reaches the main thread
        time.sleep(0.02)
        return "fine"

    monkeypatch.setattr(scan, "_inspect", slow_inspect)
    # Python's own Ctrl-C handler, also where pytest was started with SIGINT ignored (a background job)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            scan.scan_images(files)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(seen) < 40  # the files not yet started were dropped

"""The scan cache: a later run or --resume over the same folder decodes only the files new or changed since."""
import json
import os
import time

import pytest

from colorgan.data import sources as data
from colorgan.data import scan
from colorgan.training import loop as training
from conftest import copy_images, sample_images, tiny_config
from test_data import make_paired
from test_prepare import class_folder

HOUR_NS = 3600 * 10 ** 9


def age(path, hours=1):
    """Give a file, or every file under a folder, a modification time `hours` ago: a file changed just before a
    scan is decoded again by the next one (scan.RACY_NS), and these tests copy their files just before a scan."""
    then = time.time_ns() - int(hours * HOUR_NS)
    for file in [path] if path.is_file() else path.rglob("*"):
        if file.is_file():
            os.utime(file, ns=(then, then))
    return path


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("COLORGAN_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def inspected(monkeypatch):
    """The files the scan decodes (scan._inspect's calls), as names."""
    calls = []
    inspect = scan._inspect

    def counting(path):
        calls.append(path.name)
        return inspect(path)

    monkeypatch.setattr(scan, "_inspect", counting)
    return calls


def folder_with_a_bad_file(tmp_path, n=8):
    folder = copy_images(sample_images(n), tmp_path / "imgs")
    (folder / "garbage.jpg").write_bytes(os.urandom(300))
    return age(folder)


def scanned(folder, **overrides):
    source = data.find_source(tiny_config(data=str(folder), val_split=0.25, **overrides))
    return source.train, source.val, source.skipped


def test_second_scan_decodes_nothing_and_finds_the_same(tmp_path, cache_dir, inspected, caplog):
    folder = folder_with_a_bad_file(tmp_path)
    first = scanned(folder)
    assert len(inspected) == 9 and len(first[2]) == 1 and first[2][0].startswith(f"{folder}/garbage.jpg: ")
    assert list((cache_dir / "scans").glob("*.json"))
    inspected.clear()
    caplog.set_level("INFO", logger="colorgan")
    assert scanned(folder) == first  # the same images, split, `plain` flags and skip reasons
    assert inspected == []
    assert f"scan of {folder}: 9 files, 9 from the cache, 0 checked" in caplog.text
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"{i:04d}.jpg" for i in range(8)] + ["garbage.jpg"])


def test_a_changed_file_is_decoded_again(tmp_path, cache_dir, inspected):
    folder = folder_with_a_bad_file(tmp_path)
    first = scanned(folder)
    inspected.clear()
    broken = folder / "0003.jpg"
    broken.write_bytes(broken.read_bytes()[:400])  # cut short: other bytes, size and time
    touched = age(folder / "0005.jpg", hours=0.5)  # only its time changes
    age(broken, hours=0.5)
    train, val, skipped = scanned(folder)
    assert sorted(inspected) == ["0003.jpg", "0005.jpg"]
    assert f"{broken}: cannot decode, damaged or incomplete (the file ends early)" in skipped
    assert str(broken) not in train.color + val.color
    assert len(train) + len(val) == len(first[0]) + len(first[1]) - 1
    assert str(touched) in train.color + val.color
    inspected.clear()
    assert scanned(folder) == (train, val, skipped) and inspected == []  # the new findings are cached


def test_a_removed_file_disappears_and_a_new_one_is_decoded(tmp_path, cache_dir, inspected):
    folder = folder_with_a_bad_file(tmp_path)
    scanned(folder)
    inspected.clear()
    (folder / "0002.jpg").unlink()
    copy_images(sample_images(1, "test"), tmp_path / "new")
    age((tmp_path / "new" / "0000.jpg").rename(folder / "0100.jpg"))
    train, val, _ = scanned(folder)
    assert inspected == ["0100.jpg"]
    names = {os.path.basename(p) for p in train.color + val.color}
    assert "0002.jpg" not in names and "0100.jpg" in names
    cached, = [json.loads(f.read_text()) for f in (cache_dir / "scans").glob("*.json")]
    assert "0002.jpg" not in cached["files"] and "0100.jpg" in cached["files"]


def test_a_file_changed_just_before_the_scan_is_decoded_again(tmp_path, cache_dir, inspected):
    folder = folder_with_a_bad_file(tmp_path)
    (folder / "0004.jpg").touch()  # its time may be within the file system's tick of the scan
    scanned(folder)
    inspected.clear()
    scanned(folder)
    assert inspected == ["0004.jpg"]


def test_other_classes_stay_cached_and_paired_folders_are_cached(tmp_path, cache_dir, inspected):
    root = age(class_folder(tmp_path / "set", 3))
    data.find_source(tiny_config(data=str(root), classes=["cat"]))
    assert len(inspected) == 6  # train/cat and test/cat
    inspected.clear()
    data.find_source(tiny_config(data=str(root)))
    assert len(inspected) == 12  # dog and ship, in train/ and test/
    inspected.clear()
    data.find_source(tiny_config(data=str(root), classes=["cat"]))
    data.find_source(tiny_config(data=str(root), classes=["dog", "ship"]))
    assert inspected == []
    paired = age(make_paired(tmp_path / "paired", 4))
    data.find_source(tiny_config(data=str(paired), val_split=0.25))
    inspected.clear()
    data.find_source(tiny_config(data=str(paired), val_split=0.25))
    assert inspected == []


def test_a_cache_folder_that_cannot_be_written_turns_caching_off(tmp_path, monkeypatch, inspected, caplog):
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache folder would be")
    monkeypatch.setenv("COLORGAN_CACHE_DIR", str(not_a_folder))
    folder = folder_with_a_bad_file(tmp_path)
    caplog.set_level("DEBUG", logger="colorgan")
    first = scanned(folder)
    assert "scan cache not written" in caplog.text
    assert scanned(folder) == first and len(inspected) == 18  # every file decoded both times


def test_the_cache_lives_in_the_user_cache_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("COLORGAN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    file = scan.scan_cache_file(tmp_path / "imgs")
    assert file.parent == tmp_path / "xdg" / "colorgan" / "scans" and file.suffix == ".json"
    assert scan.scan_cache_file(tmp_path / "imgs" / ".." / "imgs") == file  # keyed by the absolute path
    assert scan.scan_cache_file(tmp_path / "other") != file
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert str(scan.scan_cache_file(tmp_path)).startswith(os.path.expanduser("~/.cache/colorgan/scans/"))


def test_resume_of_a_folder_run_uses_the_cache(tmp_path, cache_dir, inspected):
    folder = folder_with_a_bad_file(tmp_path, 12)
    run = training.train(tiny_config(data=str(folder), val_split=0.25, batch_size=4, num_samples=0, run_name="r",
                                     checkpoint_dir=str(tmp_path / "runs"), tensorboard=False), verbose=0)
    assert len(inspected) == 13
    inspected.clear()
    training.resume(run, epochs=2, verbose=0)
    assert inspected == []
    assert len((run / "history.csv").read_text().splitlines()) == 3  # header + 2 epochs
    assert "garbage.jpg" in (run / "skipped.txt").read_text()  # the skipped file is still named

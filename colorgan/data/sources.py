"""Finding training images: what --data is, which of its files are used, and the train/validation split.

Kinds of `--data`:
  * a paired folder: `color/` and `gray/` subfolders, files paired by name stem ("landscape Images");
  * a folder of colour images, flat or with class subfolders (gray derived in the pipeline);
    a folder holding `train/` and `test/` (or `val/`) such folders uses them as its split;
  * `cifar10`: a local folder of that name (as given or under `data/`), else `keras.datasets.cifar10`;
  * a shard folder written by colorgan.data.prepare: read by shards.py, with the split it was prepared with.

Each file is checked by the scan in scan.py; the images found become ImageSets (image_sets.py), and those
become tf.data pipelines in pipeline.py.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from colorgan.bundled import DATA_DIR, PROJECT_ROOT
from colorgan.config import Config, split_weight
from colorgan.data.image_files import ImageInfo
from colorgan.data.image_sets import (ArrayImages, DataSource, FileImages, ImageSet, JoinedImages,
                                      check_has_training_images)
from colorgan.data.scan import GRAY_REASON, image_files, report_skipped, scan_images
from colorgan.data.shards import is_shard_folder, shard_source
from colorgan.errors import ColorganError

log = logging.getLogger("colorgan")

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def resolve_data_path(name: str) -> Path | None:
    """`name` as given, else under ./data/, else under the project's data/ folder (in an installed package, its
    copy of the embedded sample), else from the checkout's root (so a run trained on data/cifar10-mini, the
    default, is found from any folder)."""
    path = Path(name)
    candidates = [path, Path("data") / path, DATA_DIR / path]
    if path.parts[:1] == ("data",):  # named from the project's root, as DEFAULT_DATA is
        candidates.append(DATA_DIR.joinpath(*path.parts[1:]))
    if PROJECT_ROOT is not None:
        candidates.append(PROJECT_ROOT / path)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return None


def class_folders(folder: Path, classes: list[str]) -> list[Path]:
    """The class subfolders to read: all of them, or those named by --classes."""
    if not classes:
        return [folder]
    present = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not present:
        raise ColorganError(f"--classes: {folder} has no class subfolders")
    missing = [c for c in classes if c not in present]
    if missing:
        raise ColorganError(f"--classes: {', '.join(missing)} not in {folder} (has: {', '.join(present)})")
    return [folder / c for c in classes]


def color_images(folder: Path, classes: list[str], keep_gray: bool = False) -> tuple[FileImages, list[str]]:
    """The files under folder (or its class subfolders) that decode and (unless keep_gray) have colour,
    and 'path: reason' for each of the others."""
    folders = class_folders(folder, classes)
    files = [p for sub in folders for p in image_files(sub)]
    good, skipped = scan_images(files, folder=folder, scope=folders)
    if not keep_gray:
        skipped += [f"{p}: {GRAY_REASON}" for p, info in good.items() if info.gray]
    kept = [p for p in files if p in good and (keep_gray or not good[p].gray)]
    return FileImages(color=[str(p) for p in kept], plain=[good[p].plain for p in kept]), skipped


def _same_shape(a: ImageInfo, b: ImageInfo) -> bool:
    """Same aspect ratio within 2% (a gray copy saved at another resolution is still a pair)."""
    return abs(a.width * b.height - b.width * a.height) <= 0.02 * a.width * b.height


def paired_images(folder: Path, keep_gray: bool = False) -> tuple[FileImages, list[str]]:
    """color/X.* paired with gray/X.* by file stem, and 'path: reason' for each file left out:
    unpaired, unreadable, and pairs of different shapes."""
    color = {p.relative_to(folder / "color").with_suffix(""): p for p in image_files(folder / "color")}
    gray = {p.relative_to(folder / "gray").with_suffix(""): p for p in image_files(folder / "gray")}
    skipped = [f"{color[s]}: no gray partner in {folder / 'gray'}" for s in sorted(color.keys() - gray.keys())]
    skipped += [f"{gray[s]}: no colour partner in {folder / 'color'}" for s in sorted(gray.keys() - color.keys())]
    stems = sorted(color.keys() & gray.keys(), key=_natural_key)
    good, bad = scan_images([color[s] for s in stems] + [gray[s] for s in stems], folder=folder)
    skipped += bad
    kept = []
    for s in stems:
        c, g = good.get(color[s]), good.get(gray[s])
        if c is None or g is None:
            continue  # already reported by the scan
        if c.gray and not keep_gray:
            skipped.append(f"{color[s]}: {GRAY_REASON}")
        elif not _same_shape(c, g):
            skipped.append(f"{color[s]}: {c.width}x{c.height} but its gray partner is {g.width}x{g.height} "
                           f"(a different shape, so not the same photo)")
        else:
            kept.append(s)
    images = FileImages(color=[str(color[s]) for s in kept], gray=[str(gray[s]) for s in kept],
                        plain=[good[color[s]].plain and good[gray[s]].plain for s in kept])
    return images, skipped


def _natural_key(stem: Path):
    """'10' after '9': file names compared with their digit runs as numbers."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(stem)) if t]


def split_images(images: ImageSet, val_split: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """Deterministic (seeded) train/validation split for data without a split of its own."""
    n = len(images)
    n_val = int(round(n * val_split))
    if val_split > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    val_idx, train_idx = sorted(order[:n_val]), sorted(order[n_val:])
    return images.subset(train_idx), images.subset(val_idx)


def _cifar10_download(classes: list[str]) -> DataSource:
    import keras
    unknown = [c for c in classes if c not in CIFAR10_CLASSES]
    if unknown:
        raise ColorganError(f"--classes: {', '.join(unknown)} not a CIFAR-10 class ({', '.join(CIFAR10_CLASSES)})")
    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as e:  # offline, proxy, truncated download: all end the same way for the user
        raise ColorganError(f"--data cifar10: no local folder 'cifar10' (looked in ./ and data/) and the download "
                            f"failed ({type(e).__name__}); pass a folder with train/ and test/ class subfolders")
    keep = [CIFAR10_CLASSES.index(c) for c in classes] if classes else list(range(10))
    pick = lambda x, y: x[np.isin(y.reshape(-1), keep)]
    return DataSource("cifar10" + ("-" + "-".join(classes) if classes else ""), "CIFAR-10 (keras.datasets)",
                      ArrayImages(pick(x_train, y_train)), ArrayImages(pick(x_test, y_test)), 32)


def find_source(cfg: Config, keep_gray: bool = False) -> DataSource:
    """Work out what --data (and each --more-data folder) is and list its images, split into train and validation.

    Several folders are each split as they would be alone (so a folder's validation images are the same
    whether or not others are added), then joined: training draws from all, validation scores on all.
    Black-and-white photos where colour is expected teach the generator nothing but to leave photos
    gray, so they are skipped for training; evaluation keeps them (keep_gray), as the test set has them.
    """
    first = folder_source(cfg.data, cfg.classes, cfg, keep_gray)
    if not cfg.more_data:
        return first
    entries = [split_weight(e) for e in cfg.more_data]
    sources = [first] + [folder_source(d, [], cfg, keep_gray, flag="--more-data") for d, _ in entries]
    weights = mix_weights([len(s.train) for s in sources], [None] + [w for _, w in entries])
    log.info("training on %d sources together: %s", len(sources),
             ", ".join(f"{s.name} ({len(s.train)}" + (f", {w:.0%} of the draws)" if weights else ")")
                       for s, w in zip(sources, weights or [0] * len(sources))))
    distinct = list({s.description: s for s in sources}.values())  # a folder listed twice is validated once
    return DataSource("+".join(s.name for s in distinct), "; ".join(s.description for s in distinct),
                      JoinedImages([s.train for s in sources], weights), JoinedImages([s.val for s in distinct]),
                      first.default_image_size, [line for s in distinct for line in s.skipped], parts=distinct)


def mix_weights(sizes: list[int], given: list[float | None]) -> list[float] | None:
    """Each source's share of the training draws: its --more-data weight where it has one; the sources without
    one share what is left in proportion to their sizes. None when no source has a weight (the sources are then
    joined and shuffled as one set, which draws in proportion to the sizes too)."""
    if all(w is None for w in given):
        return None
    left = 1.0 - sum(w for w in given if w is not None)
    unweighted = sum(n for n, w in zip(sizes, given) if w is None)
    return [w if w is not None else left * n / unweighted for n, w in zip(sizes, given)]



def folder_source(data: str, classes: list[str], cfg: Config, keep_gray: bool, flag: str = "--data") -> DataSource:
    """One data folder, shard folder (colorgan.data.prepare's output) or cifar10 as a DataSource, split with cfg's
    val_split and split seed (a shard folder keeps the split it was prepared with)."""
    if is_shard_folder(data):
        return shard_source(data, classes, flag)
    path = resolve_data_path(data)
    if path is None:
        if data.strip().lower() == "cifar10":
            return _cifar10_download(classes)
        raise ColorganError(f"{flag} {data}: no such file or folder (also looked under data/)")
    if not path.is_dir():
        raise ColorganError(f"{flag} {path}: not a folder")
    if is_shard_folder(str(path)):  # found under data/ or the project's root
        return shard_source(str(path), classes, flag)
    name = path.resolve().name.replace(" ", "-") + ("-" + "-".join(classes) if classes else "")
    split = scan_folder(path, classes, cfg.val_split, cfg.data_split_seed, keep_gray, flag)
    report_skipped(split.skipped)
    check_has_training_images(path, split.train, split.skipped, flag)
    # Training leaves black-and-white photos out (nothing to learn), scoring keeps them: the counts differ by those.
    log.info("%s: %d images used, %d skipped%s", path, len(split.train) + len(split.val), len(split.skipped),
             " (black-and-white photos kept: scoring uses them, training leaves them out)" if keep_gray else "")
    default_size = 32 if _is_tiny(split.train) else 256
    return DataSource(name, f"{path} ({split.kind})", split.train, split.val, default_size, split.skipped)


@dataclass
class FolderSplit:
    """A scanned folder split as training uses it; val_name says what its validation images are."""
    train: FileImages
    val: FileImages
    val_name: str  # "validation" (split off with val_split and seed) or "test" (the folder's own)
    kind: str
    skipped: list[str]


def scan_folder(path: Path, classes: list[str], val_split: float, seed: int, keep_gray: bool = False,
                flag: str = "--data") -> FolderSplit:
    """Scan a data folder and split it: its own train/ + test/ (or val/), else seeded with val_split."""
    has = {d: (path / d).is_dir() for d in ("color", "gray", "train", "test", "val")}
    if has["color"] and has["gray"]:
        if classes:
            raise ColorganError(f"--classes: {path} is a paired color/ + gray/ folder, it has no classes")
        images, skipped = paired_images(path, keep_gray)
        train, val = split_images(images, val_split, seed)
        return FolderSplit(train, val, "validation", "paired color/ + gray/ folder", skipped)
    if has["gray"]:
        raise ColorganError(f"{flag} {path}: has gray/ but no color/ folder to pair it with")
    if has["train"] and (has["test"] or has["val"]):
        val_dir = path / ("test" if has["test"] else "val")
        train, skipped_train = color_images(path / "train", classes, keep_gray)
        val, skipped_val = color_images(val_dir, classes, keep_gray)
        return FolderSplit(train, val, "test" if has["test"] else "validation",
                           f"colour folder with train/ and {val_dir.name}/", skipped_train + skipped_val)
    folder = path / "color" if has["color"] else path
    images, skipped = color_images(folder, classes, keep_gray)
    train, val = split_images(images, val_split, seed)
    return FolderSplit(train, val, "validation", "colour folder (gray derived)", skipped)


def _is_tiny(images: ImageSet) -> bool:
    """CIFAR-10-sized data (32x32) trains at 32 px by default; anything else at 256 px."""
    return images.max_side() <= 32

"""Finding training images on disk: what --data is, which files are usable, and the train/validation split.

Three kinds of `--data`:
  * a paired folder: `color/` and `gray/` subfolders, files paired by name stem ("landscape Images");
  * a folder of colour images, flat or with class subfolders (gray derived in the pipeline);
    a folder holding `train/` and `test/` (or `val/`) such folders uses them as its split;
  * `cifar10`: a local folder of that name (as given or under `data/`), else `keras.datasets.cifar10`.

The images found here become tf.data pipelines in pipeline.py.
"""
from __future__ import annotations

import abc
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import astuple, dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from .atomic import atomic_write_shared
from .bundled import DATA_DIR, PROJECT_ROOT
from .config import Config
from .errors import ColorganError
from .image_files import READABLE, ImageInfo, inspect_image
from .pipeline import load_example, resize_example, stack_with_gray

log = logging.getLogger("colorgan")

IMAGE_EXTENSIONS = READABLE
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SCAN_THREADS = 4  # Pillow releases the GIL while decoding (small files are bound by Python, big ones gain)
SHOW_SKIPPED = 10  # warnings printed one per file; the rest are counted (all in the run's skipped.txt)
GRAY_REASON = "grayscale (no colour to learn from)"


class ImageSet(abc.ABC):
    """The images of one split, on disk (FileImages) or in memory (ArrayImages).

    Consumers use only this interface, so none needs to know where the images are.
    """

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def subset(self, indices) -> ImageSet:
        """The images at `indices`, in that order, as the same kind of set."""

    def spread(self, count: int) -> ImageSet:
        """`count` images spread evenly over the set (the whole set if it is no larger): a split sorted by
        class keeps every class, where its first `count` images might all be of one."""
        if count >= len(self):
            return self
        return self.subset(np.unique(np.linspace(0, len(self) - 1, count).round().astype(int)))

    @abc.abstractmethod
    def _decoded(self, size: int) -> tf.data.Dataset:
        """uint8 [H, W, 4] (RGB + gray) examples at their own size; `size` is only a hint for decoding."""

    @abc.abstractmethod
    def max_side(self) -> int:
        """The longer side in pixels of the images (of the first one: a set's images are taken to share a size)."""

    @abc.abstractmethod
    def labels(self, classes: list[str]) -> np.ndarray | None:
        """Class index of each image in `classes`, or None if some image has no known class."""

    def examples(self, size: int) -> tf.data.Dataset:
        """Decoded, resized uint8 [size, size, 4] (RGB + gray) examples; files that fail to decode are skipped."""
        ds = self._decoded(size).map(lambda x: resize_example(x, size), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.ignore_errors()  # files were checked by the scan; one that changed since is named and dropped


@dataclass
class FileImages(ImageSet):
    """Image files: colour paths, their paired gray paths (None: gray derived from colour), and per file
    (pair) whether TensorFlow's decoders read it the same as Pillow (`plain`; None: all through Pillow)."""
    color: list[str] = field(default_factory=list)
    gray: list[str] | None = None
    plain: list[bool] | None = None

    def __len__(self) -> int:
        return len(self.color)

    def subset(self, indices) -> FileImages:
        indices = [int(i) for i in indices]
        pick = lambda values: None if values is None else [values[i] for i in indices]
        return FileImages(color=pick(self.color), gray=pick(self.gray), plain=pick(self.plain))

    def _decoded(self, size: int) -> tf.data.Dataset:
        # Typed constants: an empty list would otherwise become a float tensor.
        color = tf.constant(self.color, tf.string)
        plain = tf.constant(self.plain if self.plain is not None else [False] * len(self), tf.bool)
        if self.gray is None:
            return tf.data.Dataset.from_tensor_slices((color, plain)).map(
                lambda c, p: load_example(c, min_size=size, plain=p), num_parallel_calls=tf.data.AUTOTUNE)
        return tf.data.Dataset.from_tensor_slices((color, tf.constant(self.gray, tf.string), plain)).map(
            lambda c, g, p: load_example(c, g, min_size=size, plain=p), num_parallel_calls=tf.data.AUTOTUNE)

    def max_side(self) -> int:
        info = inspect_image(self.color[0])
        return max(info.width, info.height)

    def labels(self, classes: list[str]) -> np.ndarray | None:
        """Class index of each image from its folder name, or None if some image has no known class."""
        folders = [Path(p).parent.name for p in self.color]
        labels = [classes.index(f) if f in classes else -1 for f in folders]
        return None if min(labels, default=-1) < 0 else np.array(labels)


@dataclass(eq=False)
class ArrayImages(ImageSet):
    """Images in memory: uint8 [N, H, W, 3], e.g. from keras.datasets (gray derived from colour)."""
    array: np.ndarray

    def __len__(self) -> int:
        return len(self.array)

    def subset(self, indices) -> ArrayImages:
        return ArrayImages(self.array[[int(i) for i in indices]])

    def _decoded(self, size: int) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices(self.array).map(stack_with_gray,
                                                                  num_parallel_calls=tf.data.AUTOTUNE)

    def max_side(self) -> int:
        return max(self.array.shape[1:3])

    def labels(self, classes: list[str]) -> np.ndarray | None:
        return None  # an array carries no folder names


@dataclass(eq=False)
class JoinedImages(ImageSet):
    """Several sets as one (--more-data): the images of each part in turn."""
    parts: list[ImageSet]

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def _locate(self, index: int) -> tuple[int, int]:
        for part, images in enumerate(self.parts):
            if index < len(images):
                return part, index
            index -= len(images)
        raise IndexError(index)

    def subset(self, indices) -> JoinedImages:
        # Runs of consecutive indices in the same part stay one subset, so the order is kept.
        runs: list[tuple[int, list[int]]] = []
        for index in indices:
            part, local = self._locate(int(index))
            if runs and runs[-1][0] == part:
                runs[-1][1].append(local)
            else:
                runs.append((part, [local]))
        return JoinedImages([self.parts[part].subset(local) for part, local in runs])

    def _decoded(self, size: int) -> tf.data.Dataset:
        parts = [p._decoded(size) for p in self.parts if len(p)]
        ds = parts[0]
        for other in parts[1:]:
            ds = ds.concatenate(other)
        return ds

    def max_side(self) -> int:
        return max(p.max_side() for p in self.parts if len(p))

    def labels(self, classes: list[str]) -> np.ndarray | None:
        labels = [p.labels(classes) for p in self.parts]
        return None if any(l is None for l in labels) else np.concatenate(labels)


# ---- TFRecord shards (written by colorgan.prepare) ------------------------------------------------
MANIFEST = "manifest.json"
SHARD_FORMAT = "colorgan-shards"
SHARD_FORMAT_VERSION = 1
# Example i of a split is in shard i % S at position i // S, so reading the S shards round-robin (one
# example from each in turn) gives the split's order; more shards than this are read this many at a time.
MAX_OPEN_SHARDS = 64
# Every step takes as many examples from each worker, so where each reads its own shards, a worker with fewer
# examples shows each of them more often. Where the workers' shares would differ by more than this ratio (2
# workers, 3 equal shards: 2 to 1), every worker reads all shards and keeps its share of the examples instead.
MAX_SHARE_RATIO = 1.1
SHARD_FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),  # encoded colour image (as stored, or re-encoded)
    "gray": tf.io.FixedLenFeature([], tf.string, default_value=b""),  # paired folders: the gray partner
    "class": tf.io.FixedLenFeature([], tf.string, default_value=b""),  # the image's folder name
    "path": tf.io.FixedLenFeature([], tf.string, default_value=b""),  # source file, relative to the source
    "index": tf.io.FixedLenFeature([], tf.int64),  # position in its split
}


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def is_shard_folder(data: str) -> bool:
    try:
        return tf.io.gfile.exists(tf.io.gfile.join(data, MANIFEST))
    except tf.errors.OpError:  # a path no filesystem plugin handles
        return False


def read_manifest(folder: str, flag: str = "--data") -> dict:
    """The shard folder's manifest, checked enough that a damaged one is one line, not a traceback later."""
    path = tf.io.gfile.join(folder, MANIFEST)
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            manifest = json.loads(f.read())
        version = manifest["format_version"]
        splits = manifest["splits"]
        if manifest.get("format") != SHARD_FORMAT or not isinstance(splits, dict) or "train" not in splits:
            raise ValueError("not a colorgan shard manifest")
        for info in splits.values():
            if len(info["shards"]) != len(info["shard_examples"]) or sum(info["shard_examples"]) != info["examples"]:
                raise ValueError("shard counts do not add up")
    except (OSError, tf.errors.OpError, ValueError, KeyError, TypeError) as e:
        raise ColorganError(f"{flag} {folder}: damaged {MANIFEST} ({type(e).__name__}: {e}); "
                            f"run python -m colorgan.prepare again") from None
    if version > SHARD_FORMAT_VERSION:
        raise ColorganError(f"{flag} {folder}: shard format {version} is newer than this colorgan reads "
                            f"({SHARD_FORMAT_VERSION}); upgrade colorgan")
    return manifest


def _worker_count() -> int:
    """Workers of a multi-worker cluster (TF_CONFIG, as MultiWorkerMirroredStrategy reads it); 1 otherwise."""
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    except ValueError:
        return 1
    return max(1, len(cluster.get("chief", [])) + len(cluster.get("worker", [])))


@dataclass(eq=False)
class ShardImages(ImageSet):
    """One split of a shard folder: its TFRecord files, read in parallel without Python in the loop.

    `indices` (ascending positions in the split) makes a subset; None is the whole split.
    """
    files: list[str]
    counts: list[int]
    side: int  # longer side of the split's first image
    paired: bool = False
    indices: list[int] | None = None
    _policy_logged: bool = field(default=False, repr=False)

    def __len__(self) -> int:
        return sum(self.counts) if self.indices is None else len(self.indices)

    def subset(self, indices) -> ShardImages:
        indices = [int(i) for i in indices]
        if self.indices is not None:
            indices = [self.indices[i] for i in indices]
        if any(b <= a for a, b in zip(indices, indices[1:])):
            raise ValueError("a subset of shards is read in order: indices must be ascending")
        return ShardImages(self.files, self.counts, self.side, self.paired, indices)

    def _read(self, per_file) -> tf.data.Dataset:
        """per_file(records of one shard) over all shards, round-robin: in the split's order when all are read
        together (<= MAX_OPEN_SHARDS). The work is inside the interleave so that tf.distribute's FILE sharding,
        which walks the pipeline up to the files, passes through it (it stops at ops such as ignore_errors)."""
        files = tf.data.Dataset.from_tensor_slices(tf.constant(self.files, tf.string))
        cycle = len(self.files) if self.indices is not None else min(len(self.files), MAX_OPEN_SHARDS)
        ds = files.interleave(lambda f: per_file(tf.data.TFRecordDataset(f)), cycle_length=max(cycle, 1),
                              block_length=1, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.with_options(self._shard_options())

    def _shard_options(self) -> tf.data.Options:
        """Under multi-worker training each worker reads its own shards (tf.distribute's FILE auto-sharding:
        worker w reads shards w, w + workers, ...) when every worker gets about as many examples that way."""
        options = tf.data.Options()
        workers = _worker_count()
        if workers == 1:
            return options
        shares = [sum(self.counts[w::workers]) for w in range(workers)]
        even = min(shares) > 0 and max(shares) <= MAX_SHARE_RATIO * min(shares)
        whole = self.indices is None  # a subset (the sample grid's few examples) is not split by its files
        policy = tf.data.experimental.AutoShardPolicy.FILE if even and whole else \
            tf.data.experimental.AutoShardPolicy.DATA
        options.experimental_distribute.auto_shard_policy = policy
        if whole and not even and not self._policy_logged:
            why = "fewer shards than workers" if len(self.files) < workers else \
                f"their own shards would give the workers {min(shares)} to {max(shares)} examples"
            log.info("%d shards for %d workers (%s): every worker reads all shards and keeps its share of the "
                     "examples", len(self.files), workers, why)
            self._policy_logged = True
        return options

    def _parse(self, records: tf.data.Dataset, features: dict) -> tf.data.Dataset:
        ds = records.map(lambda r: tf.io.parse_single_example(r, features), num_parallel_calls=tf.data.AUTOTUNE)
        if self.indices is not None:
            keep = np.zeros(sum(self.counts), bool)
            keep[self.indices] = True
            keep = tf.constant(keep)
            ds = ds.filter(lambda e: tf.gather(keep, e["index"]))
        return ds

    def _parsed(self, features: dict) -> tf.data.Dataset:
        return self._read(lambda records: self._parse(records, features))

    def examples(self, size: int) -> tf.data.Dataset:
        """As ImageSet.examples, with the decoding (and the skipping of a record that fails) in _read."""
        def per_file(records):
            ds = self._parse(records, SHARD_FEATURES).map(lambda e: resize_example(decode_shard_example(e), size),
                                                          num_parallel_calls=tf.data.AUTOTUNE)
            return ds.ignore_errors()  # prepare wrote only images TensorFlow decodes; a damaged record is dropped
        return self._read(per_file)

    def _decoded(self, size: int) -> tf.data.Dataset:
        return self._parsed(SHARD_FEATURES).map(decode_shard_example, num_parallel_calls=tf.data.AUTOTUNE)

    def max_side(self) -> int:
        return self.side

    def labels(self, classes: list[str]) -> np.ndarray | None:
        features = {k: SHARD_FEATURES[k] for k in ("class", "index")}
        names = [n.decode() for n in self._parsed(features).map(lambda e: e["class"]).as_numpy_iterator()]
        labels = [classes.index(n) if n in classes else -1 for n in names]
        return None if min(labels, default=-1) < 0 else np.array(labels)


def decode_shard_example(example: dict):
    """A parsed shard example -> uint8 [H, W, 4] (RGB + gray), as load_example makes it from files."""
    rgb = tf.io.decode_image(example["image"], channels=3, expand_animations=False)
    rgb.set_shape([None, None, 3])

    def with_partner():
        gray = tf.io.decode_image(example["gray"], channels=3, expand_animations=False)
        gray.set_shape([None, None, 3])
        gray = tf.cast(tf.image.resize(gray, tf.shape(rgb)[:2], antialias=True), tf.uint8)
        return stack_with_gray(rgb, gray)

    return tf.cond(tf.strings.length(example["gray"]) > 0, with_partner, lambda: stack_with_gray(rgb))


def shard_split(folder: str, manifest: dict, split: str) -> ShardImages:
    info = manifest["splits"][split]
    return ShardImages([tf.io.gfile.join(folder, name) for name in info["shards"]], list(info["shard_examples"]),
                       int(info.get("max_side", 0)), bool(manifest.get("paired")))


def shard_source(folder: str, classes: list[str], flag: str = "--data") -> DataSource:
    """A shard folder as a DataSource: no scan, the manifest says what is there and how it was split."""
    if classes:
        raise ColorganError(f"--classes: {folder} holds prepared shards; choose classes when preparing them "
                            f"(python -m colorgan.prepare --classes ...)")
    manifest = read_manifest(folder, flag)
    eval_split = manifest.get("eval_split", "validation")
    train = shard_split(folder, manifest, "train")
    val = shard_split(folder, manifest, eval_split) if eval_split in manifest["splits"] else \
        ShardImages([], [], train.side, train.paired)
    missing = [f for f in train.files + val.files if not tf.io.gfile.exists(f)]
    if missing:
        raise ColorganError(f"{flag} {folder}: shard {missing[0]} is missing"
                            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                            + "; run python -m colorgan.prepare again to finish it")
    skipped = list(manifest.get("skipped", []))
    check_has_training_images(folder, train, skipped, flag)
    log.info("%s: %d images in shards of %s (split with seed %s, val_split %s), %d skipped when prepared",
             folder, len(train) + len(val), manifest.get("source"), manifest.get("seed"), manifest.get("val_split"),
             len(skipped))
    name = manifest.get("name") or folder.rstrip("/").rsplit("/", 1)[-1]
    default_size = 32 if train.side and train.side <= 32 else 256
    return DataSource(name, f"{folder} (TFRecord shards of {manifest.get('source')})", train, val, default_size,
                      skipped)


@dataclass
class DataSource:
    name: str  # short name, used in default run names
    description: str
    train: ImageSet
    val: ImageSet
    default_image_size: int
    skipped: list[str] = field(default_factory=list)  # "path: reason", one per file left out


# ---- finding files --------------------------------------------------------------------------------
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


def image_files(folder: Path) -> list[Path]:
    """Files under folder (recursive, sorted) named like images; hidden files are left out.

    Broken links and unreadable files are listed too, so the scan can name them.
    """
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and not p.is_dir())


def _inspect(path: Path) -> ImageInfo | str:
    try:
        return inspect_image(path)
    except ColorganError as e:
        return str(e)
    except Exception as e:  # noqa: BLE001  (a scan of files from anywhere must not stop at the first oddity)
        return f"{path}: cannot decode ({type(e).__name__}: {e})"


def _inspect_all(paths: list[Path], desc: str) -> list[ImageInfo | str]:
    """_inspect of every path, in threads, with a progress bar on terminals for big folders."""
    from concurrent.futures import ThreadPoolExecutor
    from tqdm import tqdm

    with ThreadPoolExecutor(SCAN_THREADS) as pool:
        return list(tqdm(pool.map(_inspect, paths), total=len(paths), desc=desc, unit="file",
                         disable=True if len(paths) < 2000 else None, leave=False))


def scan_images(paths: list[Path], desc: str = "checking images", folder: Path | None = None,
                scope: list[Path] | None = None) -> tuple[dict[Path, ImageInfo], list[str]]:
    """Decode every file once, so a bad file is reported before training instead of failing inside tf.data.

    Returns the readable ones with their size and whether they have colour, and 'path: reason' for the others.
    With `folder` (where the paths were listed, from the `scope` folders: default the folder itself) the scan
    cache is used: files unchanged since an earlier scan are not decoded again.
    """
    results = _inspect_all(paths, desc) if folder is None else cached_scan(folder, paths, scope or [folder], desc)
    good = {p: r for p, r in zip(paths, results) if isinstance(r, ImageInfo)}
    return good, [r for r in results if isinstance(r, str)]


# ---- the scan cache -------------------------------------------------------------------------------
# What the scan of a folder found, kept between runs: a new run or a --resume over the same folder decodes only
# the files that are new or changed since (told by their size and modification time, which need no reading).
SCAN_CACHE_VERSION = 1  # raise it when what inspect_image finds changes meaning
# A file changed this shortly before a scan is decoded again next time: file times are coarse (a filesystem
# tick; 2 s on FAT), and a change within the tick of the scan would keep the size and time the cache has.
RACY_NS = 2_000_000_000


def scan_cache_file(folder: Path) -> Path:
    """Where the scan of folder is cached: $COLORGAN_CACHE_DIR, else $XDG_CACHE_HOME/colorgan (default
    ~/.cache/colorgan), then scans/<hash of the folder's absolute path>.json."""
    base = os.environ.get("COLORGAN_CACHE_DIR") or \
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "colorgan"
    return Path(base) / "scans" / f"{hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:32]}.json"


def _cache_stamp() -> list:
    """What the cached findings depend on besides the files themselves: if any of it changes, they are stale."""
    import PIL

    from . import __version__
    from .image_files import GRAY_CHROMA, PLAIN_MAX_SIDE
    return [SCAN_CACHE_VERSION, __version__, PIL.__version__, PLAIN_MAX_SIDE, GRAY_CHROMA]


def _file_key(path: Path) -> list[int] | None:
    """[size, mtime_ns] of a file, from os.stat; None when it cannot be stat'ed (such a file is never cached)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def read_scan_cache(file: Path) -> dict[str, dict]:
    """The cached findings by path relative to the folder; none when the cache is missing, damaged or stale."""
    try:
        cached = json.loads(file.read_text())
        return dict(cached["files"]) if cached["stamp"] == _cache_stamp() else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _cached_finding(entry: dict | None, key: list[int] | None, path: Path) -> ImageInfo | str | None:
    """What the cache says about path while the file has the size and time it was scanned with; else None."""
    if entry is None or key is None or entry.get("key") != key:
        return None
    if "skipped" in entry:
        return f"{path}: {entry['skipped']}"
    try:
        return ImageInfo(*entry["info"])
    except (KeyError, TypeError):
        return None


def _cache_entry(key: list[int], finding: ImageInfo | str, path: Path) -> dict:
    if isinstance(finding, ImageInfo):
        return {"key": key, "info": list(astuple(finding))}
    return {"key": key, "skipped": finding.removeprefix(f"{path}: ")}  # the folder may be named another way later


def _cacheable(key: list[int] | None, finding: ImageInfo | str, path: Path, started_ns: int) -> bool:
    """Whether a finding holds while the file keeps its size and time: not for a file changed just before the
    scan (RACY_NS), nor for one that failed for want of permission (a chmod changes neither)."""
    if key is None or key[1] >= started_ns - RACY_NS:
        return False
    return isinstance(finding, ImageInfo) or os.access(path, os.R_OK)


def write_scan_cache(file: Path, entries: dict[str, dict]) -> None:
    """Whole, then renamed (two workers may write it at once); a cache folder we may not write turns caching off."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_shared(file, json.dumps({"stamp": _cache_stamp(), "files": entries}))
    except OSError as e:
        log.debug("scan cache not written (%s: %s)", file, e)


def cached_scan(folder: Path, paths: list[Path], scope: list[Path], desc: str) -> list[ImageInfo | str]:
    """_inspect's findings for paths under folder, decoding only the files the cache does not know unchanged.

    The cache keeps these findings and, of its earlier ones, those outside `scope` (the folders these paths were
    listed from, e.g. the classes chosen): a file within it that is not listed any more is gone.
    """
    started = time.time_ns()
    file = scan_cache_file(folder)
    cached = read_scan_cache(file)
    names = [p.relative_to(folder).as_posix() for p in paths]
    keys = [_file_key(p) for p in paths]
    findings = [_cached_finding(cached.get(n), k, p) for n, k, p in zip(names, keys, paths)]
    todo = [i for i, f in enumerate(findings) if f is None]
    for i, finding in zip(todo, _inspect_all([paths[i] for i in todo], desc)):
        findings[i] = finding
    log.info("scan of %s: %d files, %d from the cache, %d checked", folder, len(paths), len(paths) - len(todo),
             len(todo))
    entries = {n: e for n, e in cached.items() if not any((folder / n).is_relative_to(s) for s in scope)}
    entries.update({n: _cache_entry(k, f, p) for n, k, f, p in zip(names, keys, findings, paths)
                    if _cacheable(k, f, p, started)})
    if entries != cached:
        write_scan_cache(file, entries)
    return findings


def report_skipped(skipped: list[str]) -> None:
    """A warning per broken file (the first ten); black-and-white photos, an expected case, in one line."""
    gray = [line for line in skipped if line.endswith(GRAY_REASON)]
    broken = [line for line in skipped if not line.endswith(GRAY_REASON)]
    for reason in broken[:SHOW_SKIPPED]:
        log.warning("skipped %s", reason)
    if len(broken) > SHOW_SKIPPED:
        log.warning("... and %d more files skipped", len(broken) - SHOW_SKIPPED)
    if gray:
        log.info("%d black-and-white photo%s left out of training (%s%s)", len(gray), "s" * (len(gray) > 1),
                 gray[0].rsplit(": ", 1)[0], ", ..." if len(gray) > 1 else "")


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
    sources = [first] + [folder_source(d, [], cfg, keep_gray, flag="--more-data") for d in cfg.more_data]
    log.info("training on %d folders together: %s", len(sources),
             ", ".join(f"{s.name} ({len(s.train)})" for s in sources))
    distinct = list({s.description: s for s in sources}.values())  # a folder listed twice is validated once
    return DataSource("+".join(s.name for s in distinct), "; ".join(s.description for s in distinct),
                      JoinedImages([s.train for s in sources]), JoinedImages([s.val for s in distinct]),
                      first.default_image_size, [line for s in distinct for line in s.skipped])


def folder_source(data: str, classes: list[str], cfg: Config, keep_gray: bool, flag: str = "--data") -> DataSource:
    """One data folder, shard folder (colorgan.prepare's output) or cifar10 as a DataSource, split with cfg's
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
    log.info("%s: %d images used, %d skipped", path, len(split.train) + len(split.val), len(split.skipped))
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


def check_has_training_images(path, train: ImageSet, skipped: list[str], flag: str = "--data") -> None:
    if len(train) == 0:
        example = f" ({skipped[0]}" + (", ..." if len(skipped) > 1 else "") + ")" if skipped else ""
        raise ColorganError(f"{flag} {path}: no usable training images ({', '.join(IMAGE_EXTENSIONS)}); "
                            f"{len(skipped)} files skipped{example}")


def _is_tiny(images: ImageSet) -> bool:
    """CIFAR-10-sized data (32x32) trains at 32 px by default; anything else at 256 px."""
    return images.max_side() <= 32

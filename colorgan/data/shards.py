"""Reading the TFRecord shards that colorgan.data.prepare writes: their format, the manifest, and a split as an
ImageSet.

A shard folder is a data folder scanned once and written as TFRecord files per split, with a manifest.json that
says what is there and how it was split: training over it needs no scan, and reads the images in parallel without
Python in the loop, from local disk or a bucket alike (all access goes through tf.io.gfile). The format's
constants are defined here, next to their reader; prepare.py, the writer, imports them.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from colorgan.data.examples import resize_example, stack_with_gray
from colorgan.data.image_sets import DataSource, ImageSet, check_has_training_images
from colorgan.errors import ColorganError

log = logging.getLogger("colorgan")

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
                            f"run python -m colorgan.data.prepare again") from None
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
                            f"(python -m colorgan.data.prepare --classes ...)")
    manifest = read_manifest(folder, flag)
    eval_split = manifest.get("eval_split", "validation")
    train = shard_split(folder, manifest, "train")
    val = shard_split(folder, manifest, eval_split) if eval_split in manifest["splits"] else \
        ShardImages([], [], train.side, train.paired)
    missing = [f for f in train.files + val.files if not tf.io.gfile.exists(f)]
    if missing:
        raise ColorganError(f"{flag} {folder}: shard {missing[0]} is missing"
                            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                            + "; run python -m colorgan.data.prepare again to finish it")
    skipped = list(manifest.get("skipped", []))
    check_has_training_images(folder, train, skipped, flag)
    log.info("%s: %d images in shards of %s (split with seed %s, val_split %s), %d skipped when prepared",
             folder, len(train) + len(val), manifest.get("source"), manifest.get("seed"), manifest.get("val_split"),
             len(skipped))
    name = manifest.get("name") or folder.rstrip("/").rsplit("/", 1)[-1]
    default_size = 32 if train.side and train.side <= 32 else 256
    return DataSource(name, f"{folder} (TFRecord shards of {manifest.get('source')})", train, val, default_size,
                      skipped)

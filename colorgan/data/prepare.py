"""`python -m colorgan.data.prepare` / `colorgan prepare`: scan a data folder once and write it as TFRecord shards.

The folder is scanned as training scans it (bad files named and skipped, black-and-white photos counted) and
split as training splits it (its own train/ + test/, else --val-split with --split-seed or --seed, the
same flags as train.py's). Each split is written as
shards of about --shard-mb MB plus a manifest.json; `train.py --data SHARDS` then reads the shards with no scan.

Example i of a split goes to shard i % S, fixed before anything is written, so a shard is either finished
(written whole, then renamed) or written again: a run that was interrupted keeps its finished shards and
writes only the rest, with no example twice. All shard and manifest access goes through tf.io.gfile.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import posixpath
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from colorgan.cli import (OneLineErrorParser, add_config_arguments, import_tensorflow_quietly, overrides_from_args,
                          run_main, setup_logging)
from colorgan.config import config_from_overrides
from colorgan.errors import ColorganError

log = logging.getLogger("colorgan")

PROG = "python -m colorgan.data.prepare"  # `colorgan prepare` passes its own name
PLAN = ".prepare-plan.json"  # which example goes to which shard; a different plan means old shards are stale
DEFAULT_SHARD_MB = 150
JPEG_BYTES_PER_PIXEL = 0.4  # about what a photo takes at quality 95: the size estimate of a shrunk image


# The flags that decide which images go where, taken from train.py's (Config) so that the same flags give the
# same split in both.
SPLIT_FLAGS = ("classes", "val_split", "seed", "split_seed")


def parse_args(argv=None, prog: str = PROG) -> argparse.Namespace:
    parser = OneLineErrorParser(
        prog=prog, description="Scan and validate a data folder once and write it as TFRecord shards (per split) "
                               "with a manifest.json; train.py --data SHARDS and evaluate.py read them with no scan.")
    parser.add_argument("--data", required=True, help="data folder (paired color/ + gray/, class folders, or "
                                                      "train/ + test/), as train.py takes it")
    parser.add_argument("--out", required=True, help="folder for the shards and manifest.json (created; a folder "
                                                     "from an interrupted run is completed)")
    parser.add_argument("--max-side", type=int, default=0, help="shrink images whose longer side is over N px to N "
                                                               "(re-encoded); default: stored as they are")
    parser.add_argument("--shard-mb", type=float, default=DEFAULT_SHARD_MB,
                        help="about this many MB per shard (default: %(default)s)")
    add_config_arguments(parser, names=SPLIT_FLAGS)
    parser.add_argument("--jobs", type=int, default=min(8, os.cpu_count() or 1),
                        help="shards written at once (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


# ---- what to write ------------------------------------------------------------------------------
@dataclass
class Item:
    """One example: its colour file, gray partner (paired folders), whether TensorFlow decodes them as stored."""
    color: str
    gray: str | None
    plain: bool


@dataclass
class SplitPlan:
    name: str
    items: list[Item]
    shards: int

    def shard_items(self, shard: int) -> list[tuple[int, Item]]:
        """(position in the split, item) of one shard: every shards-th example from `shard` on."""
        return [(i, self.items[i]) for i in range(shard, len(self.items), self.shards)]

    def shard_file(self, shard: int) -> str:
        from colorgan.data.shards import shard_name
        return shard_name(self.name, shard, self.shards)


def estimated_bytes(item: Item, max_side: int) -> int:
    """Bytes the item takes in a shard: its files' sizes, capped for images --max-side will shrink."""
    size = sum(os.path.getsize(p) for p in (item.color, item.gray) if p)
    return min(size, int(2 * max_side * max_side * JPEG_BYTES_PER_PIXEL)) if max_side else size


def split_plans(images: dict, shard_bytes: float, max_side: int) -> list[SplitPlan]:
    plans = []
    for name, files in images.items():
        plain = files.plain or [False] * len(files)
        items = [Item(c, files.gray[i] if files.gray else None, plain[i]) for i, c in enumerate(files.color)]
        total = sum(estimated_bytes(item, max_side) for item in items)
        shards = min(max(1, math.ceil(total / shard_bytes)), max(1, len(items)))
        plans.append(SplitPlan(name, items, shards))
    return plans


def plan_fingerprint(plans: list[SplitPlan], max_side: int) -> str:
    from colorgan.data.shards import SHARD_FORMAT_VERSION
    content = json.dumps([SHARD_FORMAT_VERSION, max_side] + [
        [p.name, p.shards, [[i.color, i.gray, i.plain, os.path.getsize(i.color)] for i in p.items]] for p in plans])
    return hashlib.sha256(content.encode()).hexdigest()


# ---- encoding ------------------------------------------------------------------------------------
def encoded_image(path: str, plain: bool, max_side: int,
                  size: tuple[int, int] | None = None) -> tuple[bytes, int, int, bool]:
    """(bytes, width, height, resized) of the image as the shard holds it.

    As stored when TensorFlow decodes the file the way training's Pillow reader does (`plain`) and it needs
    no shrinking; else read upright by Pillow (EXIF, CMYK, 16-bit, alpha, TIFF, WebP) and re-encoded: JPEG
    at quality 95 for JPEG sources, PNG (lossless) for the others. `size` forces a size (a gray partner
    follows its colour image).
    """
    import numpy as np
    from PIL import Image

    from colorgan.data.image_files import encode_image, read_rgb

    with Image.open(path) as im:
        source_format, (width, height) = im.format, im.size
    shrink = max_side and max(width, height) > max_side
    if plain and not shrink and size is None:
        with open(path, "rb") as f:
            return f.read(), width, height, False
    rgb = read_rgb(path)
    height, width = rgb.shape[:2]
    if size is None and shrink:
        scale = max_side / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = size is not None and size != (width, height)
    if resized:
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))
        width, height = size
    return encode_image(rgb, "JPEG" if source_format == "JPEG" else "PNG"), width, height, resized


def shard_example(index: int, item: Item, source: Path, max_side: int):
    import tensorflow as tf

    color, width, height, resized = encoded_image(item.color, item.plain, max_side)
    gray = b""
    if item.gray:  # shrunk to its colour image's new size; else as it is (training resizes it to fit)
        gray = encoded_image(item.gray, item.plain, 0, (width, height) if resized else None)[0]
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[color])),
        "gray": tf.train.Feature(bytes_list=tf.train.BytesList(value=[gray])),
        "class": tf.train.Feature(bytes_list=tf.train.BytesList(value=[Path(item.color).parent.name.encode()])),
        "path": tf.train.Feature(bytes_list=tf.train.BytesList(value=[_relative(item.color, source).encode()])),
        "index": tf.train.Feature(int64_list=tf.train.Int64List(value=[index])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


def _relative(path: str, source: Path) -> str:
    try:
        return str(Path(path).relative_to(source))
    except ValueError:
        return str(path)


# ---- writing -------------------------------------------------------------------------------------
def write_shard(plan: SplitPlan, shard: int, out: str, source: Path, max_side: int, progress) -> None:
    """Write one shard to a temporary name, then rename it: a shard under its own name is complete."""
    import tensorflow as tf

    from colorgan.atomic import TEMP_PREFIX

    final = posixpath.join(out, plan.shard_file(shard))
    tmp = posixpath.join(out, TEMP_PREFIX + plan.shard_file(shard))
    with tf.io.TFRecordWriter(tmp) as writer:
        for index, item in plan.shard_items(shard):
            writer.write(shard_example(index, item, source, max_side).SerializeToString())
            progress(1)
    tf.io.gfile.rename(tmp, final, overwrite=True)


def write_text(path: str, text: str) -> None:
    """Whole or not at all, through tf.io.gfile (so a bucket path works as a local one)."""
    import tensorflow as tf

    from colorgan.atomic import TEMP_PREFIX
    tmp = posixpath.join(posixpath.dirname(path), TEMP_PREFIX + posixpath.basename(path))
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)


def start_or_continue(out: str, fingerprint: str) -> None:
    """Keep an interrupted run's shards if they were planned the same way; else clear them out.
    Half-written shards (temporary names) are always removed."""
    import tensorflow as tf

    from colorgan.atomic import TEMP_PREFIX
    from colorgan.data.shards import MANIFEST
    tf.io.gfile.makedirs(out)
    for name in tf.io.gfile.listdir(out):
        if name.startswith(TEMP_PREFIX):
            tf.io.gfile.remove(posixpath.join(out, name))
    plan_path = posixpath.join(out, PLAN)
    previous = None
    if tf.io.gfile.exists(plan_path):
        with tf.io.gfile.GFile(plan_path, "r") as f:
            previous = f.read().strip()
    if previous != fingerprint:
        stale = [n for n in tf.io.gfile.listdir(out) if n.endswith(".tfrecord") or n == MANIFEST]
        if stale:
            log.warning("%s: the data or options changed since its shards were written; writing them again", out)
        for name in stale:
            tf.io.gfile.remove(posixpath.join(out, name))
        write_text(plan_path, fingerprint + "\n")


def prepare(data: str, out: str, *, max_side: int = 0, shard_mb: float = DEFAULT_SHARD_MB, val_split: float = 0.1,
            seed: int = 42, classes: list[str] | None = None, jobs: int = 1, progress: bool = True) -> dict:
    """Scan `data`, write its splits as shards under `out`, and return the manifest (also written there)."""
    import tensorflow as tf

    from colorgan import __version__
    from colorgan.data.image_sets import check_has_training_images
    from colorgan.data.scan import GRAY_REASON, report_skipped
    from colorgan.data.shards import MANIFEST, SHARD_FORMAT, SHARD_FORMAT_VERSION
    from colorgan.data.sources import resolve_data_path, scan_folder
    from colorgan.progress import progress_bar

    if max_side < 0 or shard_mb <= 0 or jobs < 1:
        raise ColorganError("--max-side must be 0 or more, --shard-mb above 0 and --jobs at least 1")
    out = str(out)
    source = resolve_data_path(str(data))
    if source is None or not source.is_dir():
        raise ColorganError(f"--data {data}: no such folder (also looked under data/)")
    source = source.resolve()
    split = scan_folder(source, list(classes or []), val_split, seed)
    report_skipped(split.skipped)
    check_has_training_images(source, split.train, split.skipped)
    plans = split_plans({"train": split.train, split.val_name: split.val}, shard_mb * 1024 ** 2, max_side)

    start_or_continue(out, plan_fingerprint(plans, max_side))
    todo = [(p, s) for p in plans for s in range(p.shards)
            if not tf.io.gfile.exists(posixpath.join(out, p.shard_file(s)))]
    total = sum(len(p.items) for p in plans)
    left = sum(len(p.shard_items(s)) for p, s in todo)
    if left < total:
        log.info("%s: %d of %d shards already written; writing the rest", out,
                 sum(p.shards for p in plans) - len(todo), sum(p.shards for p in plans))
    lock = threading.Lock()
    with progress_bar(total=total, initial=total - left, desc="writing shards", unit="image",
                      disable=not progress) as bar:
        def advance(n: int) -> None:
            with lock:
                bar.update(n)

        with ThreadPoolExecutor(jobs) as pool:
            for done in [pool.submit(write_shard, p, s, out, source, max_side, advance) for p, s in todo]:
                done.result()  # the first failure stops the run; finished shards stay for the next one

    splits = {}
    for p in plans:
        names = [p.shard_file(s) for s in range(p.shards)]
        first = encoded_image(p.items[0].color, p.items[0].plain, max_side)[1:3] if p.items else (0, 0)
        splits[p.name] = {"examples": len(p.items), "shards": names,
                          "shard_examples": [len(p.shard_items(s)) for s in range(p.shards)],
                          "shard_bytes": [tf.io.gfile.stat(posixpath.join(out, n)).length for n in names],
                          "max_side": max(first)}
    gray = sum(line.endswith(GRAY_REASON) for line in split.skipped)
    manifest = {
        "format": SHARD_FORMAT, "format_version": SHARD_FORMAT_VERSION, "colorgan_version": __version__,
        "source": str(source), "name": source.name.replace(" ", "-") + ("-" + "-".join(classes) if classes else ""),
        "kind": split.kind, "paired": split.train.gray is not None, "seed": seed, "val_split": val_split,
        "classes": list(classes or []), "max_side": max_side or None, "eval_split": split.val_name,
        "counts": {"examples": total, **{name: info["examples"] for name, info in splits.items()},
                   "skipped": len(split.skipped), "black_and_white": gray},
        "splits": splits, "skipped": split.skipped,
    }
    write_text(posixpath.join(out, MANIFEST), json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv=None, prog: str = PROG) -> int:
    args = parse_args(argv, prog)
    setup_logging()
    import_tensorflow_quietly()
    split = config_from_overrides(overrides_from_args(args))
    manifest = prepare(args.data, args.out, max_side=args.max_side, shard_mb=args.shard_mb, val_split=split.val_split,
                       seed=split.data_split_seed, classes=split.classes, jobs=args.jobs,
                       progress=not args.no_progress)
    sizes = ", ".join(f"{name} {info['examples']} in {len(info['shards'])} shard{'s' * (len(info['shards']) > 1)}"
                      for name, info in manifest["splits"].items())
    print(f"{manifest['source']}: {sizes}; {manifest['counts']['skipped']} files skipped "
          f"({manifest['counts']['black_and_white']} black-and-white)")
    print(f"written: {args.out}/manifest.json; train with: python train.py --data {args.out}")
    return 0


if __name__ == "__main__":
    run_main(PROG, main)

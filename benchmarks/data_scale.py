"""The data-at-scale table of docs/scale.md: TFRecord shards against the folder pipeline, on real data.

    python benchmarks/data_scale.py --data ../shared/data/cifar10 --size 32 --batch-size 64
    python benchmarks/data_scale.py --data "../shared/data/landscape Images" --size 128 --batch-size 16

For one data folder it measures, in this order:
  start-up     what train.py does before its first step to know the data: the folder scan without a cache
               (a new run, or --resume before the scan cache), with the scan cache (--resume now), and the
               shard folder's manifest;
  prepare      `python -m colorgan.data.prepare` into a fresh folder (wall time) and the shards' sizes;
  input        the training pipeline alone (pipeline.train_dataset: decode, resize, jitter, batch, Lab) for
               one epoch's steps, twice in a row (the first epoch decodes every file, a later one may read
               tf.data's in-memory cache), from the folder and from the shards;
  demand       the train step's own rate (colorgan.evaluation.bench: pix2pix and the shipped recipe at --size and
               --batch-size, fp32),
               so the input rates can be read against what training consumes.
Prints one JSON line per measurement and a Markdown table. Nothing is asserted: the figures depend on the
machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _emit(rows: list, **row) -> None:
    rows.append(row)
    print(json.dumps(row), file=sys.stderr, flush=True)


def _startup(data: str, cache_dir: str) -> float:
    """Seconds of find_source in a fresh process (what a new run or --resume spends before training)."""
    # TensorFlow's import (the same for every kind of data) is left out of the time
    code = ("import time, sys; from colorgan.config import Config; from colorgan.data.sources import find_source; "
            "t = time.perf_counter(); find_source(Config(data=sys.argv[1])); print(time.perf_counter() - t)")
    env = {**os.environ, "COLORGAN_CACHE_DIR": cache_dir, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code, data], capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode:
        sys.exit(done.stderr[-2000:])
    return float(done.stdout.strip().splitlines()[-1])


def _input_epochs(data: str, size: int, batch_size: int, cache_dir: str) -> tuple[float, float, int]:
    """Seconds of the first and of the second epoch of the training pipeline alone, and its steps."""
    os.environ["COLORGAN_CACHE_DIR"] = cache_dir
    from colorgan.config import Config
    from colorgan.data.sources import find_source
    from colorgan.data.pipeline import steps_per_pass, train_dataset

    source = find_source(Config(data=data))
    steps = steps_per_pass(len(source.train), batch_size)
    ds = train_dataset(source.train, size=size, batch_size=batch_size, color_space="lab", jitter=True, seed=0)
    it = iter(ds)
    times = []
    for _ in range(2):
        t = time.perf_counter()
        for _ in range(steps):
            next(it)
        times.append(time.perf_counter() - t)
    return times[0], times[1], steps


DEMAND = {"pix2pix (U-Net + PatchGAN)": ["--model", "pix2pix"],
          "unet-l1 + effnet-lite0 (the shipped recipe)": ["--model", "unet-l1", "--generator", "effnet-lite0"]}


def _demand(size: int, batch_size: int, flags: list[str]) -> float:
    done = subprocess.run([sys.executable, "-m", "colorgan.evaluation.bench", "--image-size", str(size), "--batch-size",
                           str(batch_size), "--steps", "5", *flags, "--json"],
                          capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        sys.exit(f"colorgan.evaluation.bench failed:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])["train_images_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a data folder (colour, paired or class folders)")
    p.add_argument("--size", type=int, default=128, help="training image size of the input and demand rows")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--shards", help="write the shards here (default: a temporary folder, removed after)")
    p.add_argument("--no-demand", action="store_true", help="skip the train-step rows")
    args = p.parse_args()

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = str(Path(tmp) / "cache")
        shards = args.shards or str(Path(tmp) / "shards")
        _emit(rows, what="start-up, folder, no scan cache (s)", value=_startup(args.data, cache))
        _emit(rows, what="start-up, folder, scan cache (s)", value=_startup(args.data, cache))

        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "colorgan.data.prepare", "--data", args.data, "--out", shards,
                               "--no-progress"], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "COLORGAN_CACHE_DIR": cache})
        if done.returncode:
            sys.exit(done.stderr[-2000:])
        _emit(rows, what="prepare (s)", value=time.perf_counter() - t)
        manifest = json.loads((Path(shards) / "manifest.json").read_text())
        for split, info in manifest["splits"].items():
            sizes = [(Path(shards) / name).stat().st_size / 1e6 for name in info["shards"]]
            _emit(rows, what=f"shards, {split}", value=len(sizes),
                  detail=f"{info['examples']} examples, {sum(sizes):.1f} MB, {min(sizes):.1f}-{max(sizes):.1f} MB each")
        source_mb = sum(f.stat().st_size for f in Path(args.data).rglob("*") if f.is_file()) / 1e6
        _emit(rows, what="source folder (MB)", value=source_mb)
        _emit(rows, what="start-up, shards (s)", value=_startup(shards, cache))

        for name, data in (("folder", args.data), ("shards", shards)):
            first, later, steps = _input_epochs(data, args.size, args.batch_size, cache)
            n = steps * args.batch_size
            _emit(rows, what=f"input, {name}, first epoch (s)", value=first, detail=f"{steps} steps, {n / first:.0f} images/s")
            _emit(rows, what=f"input, {name}, later epoch (s)", value=later, detail=f"{steps} steps, {n / later:.0f} images/s")
    if not args.no_demand:
        for name, flags in DEMAND.items():
            _emit(rows, what=f"train step demand, {name} (images/s)", value=_demand(args.size, args.batch_size, flags),
                  detail=f"{args.size} px, batch {args.batch_size}")

    print(f"| {args.data}, {args.size} px, batch {args.batch_size} | value | detail |")
    print("| --- | --- | --- |")
    for row in rows:
        print(f"| {row['what']} | {row['value']:.1f} | {row.get('detail', '')} |")


if __name__ == "__main__":
    main()

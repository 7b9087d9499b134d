"""The training-speed table of docs/speed.md: colorgan's train step against a peer implementation, side by side.

    python benchmarks/train_speed.py --peer PEER_SCRIPT --peer-python PYTHON

The peer is another implementation of the same pix2pix train step (for instance in PyTorch), run by its own
Python: it takes colorgan.evaluation.bench's flags (--image-size, --batch-size, --steps, --precision fp32|bf16, --json)
and prints a JSON line with train_images_per_s and g_params, as `python -m colorgan.evaluation.bench --json` does.

For each (size, batch) it runs `python -m colorgan.evaluation.bench` at fp32 and bf16 and the peer at fp32 and bf16,
alternating, and prints a Markdown table of images per second with the ratios against the peer's fp32.
Nothing is asserted: throughput depends on the machine and on what else runs on it, so compare the
ratios within one run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SETTINGS = [(32, 64, 10), (128, 16, 5)]  # image size, batch, timed steps


def _run(command: list[str]) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        sys.exit(f"failed: {' '.join(command)}\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--peer", required=True, help="the peer benchmark script")
    p.add_argument("--peer-python", required=True, help="the Python that runs the peer script")
    p.add_argument("--repeats", type=int, default=1, help="measure each cell this many times, keep the best")
    args = p.parse_args()

    rows = []
    for size, batch, steps in SETTINGS:
        flags = ["--image-size", str(size), "--batch-size", str(batch), "--steps", str(steps), "--json"]
        best: dict[str, float] = {}
        extra: dict = {}
        for _ in range(args.repeats):
            for precision in ("fp32", "bf16"):
                ours = _run([sys.executable, "-m", "colorgan.evaluation.bench", "--precision", precision, *flags])
                peer = _run([args.peer_python, args.peer, "--precision", precision, *flags])
                for key, value in ((f"ours_{precision}", ours["train_images_per_s"]),
                                   (f"peer_{precision}", peer["train_images_per_s"]),
                                   (f"infer_{precision}", ours["infer_images_per_s"])):
                    best[key] = max(best.get(key, 0.0), value)
                extra = dict(g_params=ours["g_params"], peer_g_params=peer["g_params"])
        rows.append((size, batch, best, extra))
        print(json.dumps({"image_size": size, "batch_size": batch, **best, **extra}), file=sys.stderr)

    from colorgan.cpu_kernels import cpu_kind  # after the runs: importing colorgan sets its CPU kernels here
    print(f"CPU: {cpu_kind()}, {os.cpu_count()} cores (the figures hold for this kind of CPU only)")
    print("| size | batch | peer fp32 | peer bf16 | colorgan fp32 | colorgan bf16 | fp32 vs peer fp32 "
          "| bf16 vs peer fp32 | bf16 vs peer bf16 | colorgan inference fp32 / bf16 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for size, batch, b, _ in rows:
        print(f"| {size} | {batch} | {b['peer_fp32']:.1f} | {b['peer_bf16']:.1f} | {b['ours_fp32']:.1f} | "
              f"{b['ours_bf16']:.1f} | {b['ours_fp32'] / b['peer_fp32']:.2f}x | {b['ours_bf16'] / b['peer_fp32']:.2f}x | "
              f"{b['ours_bf16'] / b['peer_bf16']:.2f}x | {b['infer_fp32']:.0f} / {b['infer_bf16']:.0f} |")


if __name__ == "__main__":
    main()

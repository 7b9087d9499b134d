"""Speed on the CPU kinds people have, side by side with the PyTorch peer: this machine as it is, and with its
vector units held to AVX2 (what an AMD EPYC or an older Intel without AVX-512 runs).

    python benchmarks/cpu_kinds.py --peer ../shared/bench/peer_torch.py --peer-python /tmp/torchenv/bin/python

For each kind, in one run, alternating colorgan and the peer --repeats times and printing the medians (float32,
random data, the peer's protocol; one run of either moves by up to 15% on a shared 2-core machine):
  matmul     the machine's float32 matrix-multiply rate (TensorFlow, 2048x2048, GFLOP/s): the ceiling
  pix2pix    train images/s at 32 px (batch 64) and 128 px (batch 16), colorgan and the peer
  shipped    the shipped recipe's train step (EfficientNet-Lite0 + L1, 128 px, batch 16): colorgan only
  colorize   ms for a 768x512 photo through Colorizer with the shipped weights (benchmarks/colorize_speed.py)
with --baseline, colorgan also with oneDNN off (TensorFlow's default on AVX2-only CPUs), and, with
--threads-sweep, the shipped recipe and pix2pix at 32 px under each (intra-op, inter-op) thread pair.

"avx2" is emulated on a machine with more: ONEDNN_MAX_CPU_ISA=AVX2 (TensorFlow's and PyTorch's oneDNN kernels;
checked with ONEDNN_VERBOSE) and ATEN_CPU_CAPABILITY=avx2 (PyTorch's own vector kernels). TensorFlow's Eigen
kernels are built for AVX at most, the same on both kinds. On a machine that has only AVX2, "native" is that.
Nothing is asserted; compare the ratios within one run.
"""
from __future__ import annotations

import argparse
import json
import statistics
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = {"native": {}, "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}}
PIX2PIX = [(32, 64, 10), (128, 16, 5)]  # image size, batch, timed steps
SHIPPED = ["--model", "unet-l1", "--generator", "effnet-lite0", "--image-size", "128", "--batch-size", "16",
           "--steps", "5"]
MATMUL = """
import json, time, tensorflow as tf
a = tf.random.normal([2048, 2048]); b = tf.random.normal([2048, 2048])
f = tf.function(lambda: tf.matmul(a, b))
f().numpy()
t = time.perf_counter()
for _ in range(20): f().numpy()
print(json.dumps({"gflops": round(20 * 2 * 2048 ** 3 / (time.perf_counter() - t) / 1e9, 1)}))
"""


def run(command: list[str], env: dict) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env})
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        sys.exit(f"failed: {' '.join(command)}\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def ours(flags: list[str], env: dict) -> dict:
    return run([sys.executable, "-m", "colorgan.evaluation.bench", "--precision", "fp32", "--json", *flags], env)


def _median(runs: list[dict]) -> float:
    return statistics.median(r["train_images_per_s"] for r in runs)


def _spread(runs: list[dict]) -> str:
    return "-".join(f"{f(r['train_images_per_s'] for r in runs):.1f}" for f in (min, max))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--peer", required=True, help="the peer benchmark script (../shared/bench/peer_torch.py)")
    p.add_argument("--peer-python", required=True, help="the Python that runs it (one with torch)")
    p.add_argument("--kinds", default="native,avx2", help="(default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3,
                   help="runs of colorgan and of the peer per pix2pix row, alternating; medians (default: %(default)s)")
    p.add_argument("--baseline", action="store_true",
                   help="also time colorgan with oneDNN off (TF_ENABLE_ONEDNN_OPTS=0: TensorFlow's default on "
                        "AVX2-only CPUs, the figures an issue measured there before colorgan turned it on)")
    p.add_argument("--threads-sweep", action="store_true", help="also time thread settings (intra, inter)")
    args = p.parse_args(argv)
    for kind in args.kinds.split(","):
        env = KINDS[kind]
        print(f"\n## {kind}" + (f" ({', '.join(f'{k}={v}' for k, v in env.items())})" if env else ""), flush=True)
        ceiling = run([sys.executable, "-c", MATMUL], env)["gflops"]
        print(f"matmul ceiling: {ceiling} GFLOP/s (float32, 2048x2048)", flush=True)
        # --baseline: the same colorgan with TensorFlow's own choice on AVX2-only CPUs (oneDNN off, Eigen's kernels)
        off = {**env, "TF_ENABLE_ONEDNN_OPTS": "0"} if args.baseline else None
        print("| train step | colorgan images/s |" + (" oneDNN off |" if off else "") + " peer images/s | ratio |"
              + (" oneDNN off vs peer |" if off else "") + " colorgan inference images/s |")
        print("| --- " * (7 if off else 5) + "|")
        for size, batch, steps in PIX2PIX:
            flags = ["--image-size", str(size), "--batch-size", str(batch), "--steps", str(steps)]
            mine, plain, peer = [], [], []
            for _ in range(args.repeats):
                mine.append(ours(["--model", "pix2pix", *flags], env))
                if off:
                    plain.append(ours(["--model", "pix2pix", *flags], off))
                peer.append(run([args.peer_python, args.peer, "--precision", "fp32", "--json", *flags], env))
            train, peer_train = _median(mine), _median(peer)
            print(f"| pix2pix, {size} px, batch {batch} | {train:.1f} ({_spread(mine)}) |"
                  + (f" {_median(plain):.1f} ({_spread(plain)}) |" if off else "")
                  + f" {peer_train:.1f} ({_spread(peer)}) | {train / peer_train:.2f}x |"
                  + (f" {_median(plain) / peer_train:.2f}x |" if off else "")
                  + f" {statistics.median(r['infer_images_per_s'] for r in mine):.0f} |", flush=True)
        mine = ours(SHIPPED, env)
        plain = ours(SHIPPED, off) if off else None
        print(f"| shipped recipe, 128 px, batch 16 | {mine['train_images_per_s']:.1f} |"
              + (f" {plain['train_images_per_s']:.1f} |" if off else "") + " | |" + (" |" if off else "")
              + f" {mine['infer_images_per_s']:.0f} |", flush=True)
        for label, photo_env in (("", env), (" (oneDNN off)", off)):
            if photo_env is None:
                continue
            photo = run([sys.executable, "benchmarks/colorize_speed.py", "--repeats", "10"], photo_env)
            print(f"colorize a 768x512 photo (shipped weights){label}: {photo['colorizer_ms']} ms through Colorizer, "
                  f"{photo['saved_model_ms']} ms through the SavedModel", flush=True)
        if args.threads_sweep:
            print("| threads (intra, inter) | pix2pix 32 px train images/s | shipped recipe train images/s |")
            print("| --- | --- | --- |")
            for intra, inter in ((1, 1), (2, 1), (1, 2), (2, 2)):
                flags = ["--threads", str(intra), "--inter-threads", str(inter)]
                small = ours(["--model", "pix2pix", "--image-size", "32", "--batch-size", "64", "--steps", "10",
                              *flags], env)
                shipped = ours(SHIPPED + flags, env)
                print(f"| {intra}, {inter} | {small['train_images_per_s']:.1f} | "
                      f"{shipped['train_images_per_s']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training and inference throughput of the pix2pix step, and (optionally) of a peer measured in the same run.

    python -m colorgan.bench --image-size 32 --batch-size 64 --steps 10 --precision fp32 --json
    python -m colorgan.bench ... --peer /path/to/peer_torch.py --peer-python /path/to/torch/env/bin/python
    python -m colorgan.bench --pipeline --data /path/to/cifar10 --classes horse --steps 70

The train step is the one `fit` runs (model.make_train_function, random data in [-1, 1] like the peer's),
timed over --steps after --warmup steps. --peer runs a peer script (same flags, its own Python) right
after and adds its figures and the ratio. --pipeline times `fit` on the real input pipeline against
the same number of steps on one cached batch: the pipeline's overhead. Shared machines are noisy:
compare ratios measured in one run, not absolute times across runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import subprocess
import sys
import time

from .cli import import_tensorflow_quietly, run_main, setup_logging
from .config import PRECISIONS, SWITCHES, Config, OneLineErrorParser
from .errors import ColorganError

log = logging.getLogger("colorgan")


def _parser() -> argparse.ArgumentParser:
    p = OneLineErrorParser(prog="python -m colorgan.bench", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image-size", type=int, default=32, help="square input size in pixels (default: 32)")
    p.add_argument("--batch-size", type=int, default=64, help="images per step (default: 64)")
    p.add_argument("--steps", type=int, default=10, help="timed steps (default: 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first, tracing included (default: 2)")
    p.add_argument("--precision", choices=[c for c in PRECISIONS if c != "auto"], default="fp32",
                   help="fp32, bf16 or fp16 (default: fp32)")
    p.add_argument("--xla", choices=SWITCHES, default="auto", help="jit_compile the step (default: auto)")
    p.add_argument("--base-filters", type=int, default=64, help="U-Net width (default: 64, the peer's)")
    p.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (default: all cores)")
    p.add_argument("--peer", metavar="SCRIPT", help="a peer benchmark to run with the same flags (it must print "
                                                      "one JSON line with train_images_per_s)")
    p.add_argument("--peer-precision", choices=("fp32", "bf16"),
                   help="run the peer at this precision instead of --precision (e.g. bf16 here vs fp32 there)")
    p.add_argument("--peer-python", metavar="PYTHON", default=sys.executable,
                   help="the Python that runs --peer (one with torch installed)")
    p.add_argument("--pipeline", action="store_true",
                   help="time fit on the real input pipeline (--data) against one cached batch")
    p.add_argument("--data", default="data/cifar10-mini", help="--pipeline: the training data")
    p.add_argument("--classes", default="", help="--pipeline: comma list of classes to keep")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    return p


def _timed(fn, warmup: int, steps: int) -> float:
    """Seconds per call of fn (which must return something to wait on)."""
    for _ in range(warmup):
        out = fn()
    _wait(out if warmup else None)
    start = time.perf_counter()
    for _ in range(steps):
        out = fn()
    _wait(out)
    return (time.perf_counter() - start) / steps


def _wait(out) -> None:
    import tensorflow as tf
    for x in tf.nest.flatten(out):
        if hasattr(x, "numpy"):
            x.numpy()


def _count(variables) -> int:
    return int(sum(v.numpy().size for v in variables))


def bench_step(cfg: Config, steps: int, warmup: int) -> dict:
    """Train and inference throughput of cfg's model on random data (the peer's protocol)."""
    import tensorflow as tf

    from .training import build_trainer

    model = build_trainer(cfg)
    size, batch = cfg.image_size, cfg.batch_size
    gray = tf.random.uniform([batch, size, size, 1], -1.0, 1.0)
    target = tf.random.uniform([batch, size, size, 2 if cfg.color_space == "lab" else 3], -1.0, 1.0)
    batches = iter(tf.data.Dataset.from_tensors((gray, target)).repeat())
    model.make_train_function()
    train_function = model.train_function  # what fit calls each step
    train_s = _timed(lambda: train_function(batches), warmup, steps)

    infer = tf.function(lambda x: model.generator(x, training=False), jit_compile=cfg.xla == "on")
    infer_s = _timed(lambda: infer(gray), warmup, steps)
    return {"framework": "colorgan", "image_size": size, "batch_size": batch, "precision": cfg.precision,
            "xla": cfg.xla, "step_ms": round(train_s * 1000, 1),
            "train_images_per_s": round(batch / train_s, 1), "infer_images_per_s": round(batch / infer_s, 1),
            "g_params": _count(model.generator.trainable_variables),
            "d_params": _count(model.discriminator.trainable_variables)}


def _step_clock(warmup: int):
    """A callback timing from the end of the warm-up steps to the end of the last step, inside one fit
    call (fit's own set-up and tear-down, 0.5-2 s here, is not the pipeline's doing)."""
    import keras

    class StepClock(keras.callbacks.Callback):
        start = end = None

        def on_train_batch_end(self, batch, logs=None):
            if batch == warmup - 1:
                self.start = time.perf_counter()
            self.end = time.perf_counter()

    return StepClock()


def bench_pipeline(cfg: Config, steps: int, warmup: int) -> dict:
    """Seconds for `steps` fit steps on the real pipeline vs on one cached batch, same model."""
    from .data import find_source, train_dataset
    from .training import build_trainer

    source = find_source(cfg)
    cfg = cfg.resolved(source.default_image_size)
    model = build_trainer(cfg)
    real = train_dataset(source.train, cfg, seed=cfg.seed)
    cached = real.take(1).cache().repeat()
    warmup = max(warmup, 1)

    def fit_seconds(dataset) -> float:
        clock = _step_clock(warmup)
        model.fit(dataset, epochs=1, steps_per_epoch=warmup + steps, verbose=0, callbacks=[clock])
        return clock.end - clock.start

    # cached, real, cached again: drift on a shared machine shows as two different cached figures
    cached_s, real_s, cached_s2 = fit_seconds(cached), fit_seconds(real), fit_seconds(cached)
    log.info("cached batch: %.2f s, real pipeline: %.2f s, cached batch again: %.2f s", cached_s, real_s, cached_s2)
    cached_s = (cached_s + cached_s2) / 2
    return {"data": cfg.data, "image_size": cfg.image_size, "batch_size": cfg.batch_size,
            "precision": cfg.precision, "steps": steps, "real_pipeline_s": round(real_s, 2),
            "cached_batch_s": round(cached_s, 2), "overhead": round(real_s / cached_s - 1.0, 4)}


def run_peer(args) -> dict:
    command = [args.peer_python, args.peer, "--image-size", str(args.image_size), "--batch-size",
               str(args.batch_size), "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--precision", args.peer_precision or args.precision, "--json"]
    if args.threads:
        command += ["--threads", str(args.threads)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    except OSError as e:
        raise ColorganError(f"--peer-python {args.peer_python}: cannot run it ({e.strerror})") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ColorganError(f"--peer {args.peer} failed: {last}")
    return json.loads(lines[-1])


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    setup_logging()
    for name in ("image_size", "batch_size", "steps", "base_filters"):
        if getattr(args, name) < 1:
            raise ColorganError(f"--{name.replace('_', '-')}: must be at least 1")
    import_tensorflow_quietly()
    import tensorflow as tf
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)

    overrides = dict(image_size=args.image_size, batch_size=args.batch_size, precision=args.precision,
                     xla=args.xla, base_filters=args.base_filters, num_samples=0)
    if args.pipeline:
        cfg = dataclasses.replace(Config(), data=args.data, classes=[c for c in args.classes.split(",") if c],
                                  **overrides)
        cfg.validate()
        result = bench_pipeline(cfg, args.steps, args.warmup)
    else:
        cfg = dataclasses.replace(Config(), **overrides).resolved(args.image_size)
        result = bench_step(cfg, args.steps, args.warmup)
        if args.peer:
            peer = run_peer(args)
            result.update({f"peer_{k}": v for k, v in peer.items() if k in ("framework", "precision", "step_ms",
                                                                              "train_images_per_s")})
            result["train_speedup_vs_peer"] = round(result["train_images_per_s"] / peer["train_images_per_s"], 2)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    run_main("python -m colorgan.bench", main)

"""Training and inference throughput of the pix2pix step, and (optionally) of a peer measured in the same run.

    python -m colorgan.evaluation.bench --image-size 32 --batch-size 64 --steps 10 --precision fp32 --json
    python -m colorgan.evaluation.bench ... --peer /path/to/peer_torch.py --peer-python /path/to/torch/env/bin/python
    python -m colorgan.evaluation.bench --pipeline --data /path/to/cifar10 --classes horse --steps 70

The train step is the one `fit` runs (model.make_train_function, random data in [-1, 1] like the peer's),
timed over --steps after --warmup steps. --peer runs a peer script (same flags, its own Python) right
after and adds its figures and the ratio. --pipeline times `fit` on the real input pipeline against
the same number of steps on one cached batch: the pipeline's overhead. Shared machines are noisy:
compare ratios measured in one run, not absolute times across runs.
"""
from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time

from colorgan.cli import (OneLineErrorParser, add_config_arguments, import_tensorflow_quietly, overrides_from_args,
                          run_main, setup_logging)
from colorgan.config import Config, config_from_overrides
from colorgan.errors import ColorganError

log = logging.getLogger("colorgan")

# The config fields a benchmark takes as flags, and its defaults where they differ from training's: the
# peer's protocol (32 px, batch 64, float32, width 64) unless told otherwise.
BENCH_FIELDS = ("data", "classes", "image_size", "batch_size", "precision", "xla", "base_filters", "model",
                "generator", "ab_loss", "colourfulness_weight", "perceptual_weight")
BENCH_DEFAULTS = dict(image_size=32, batch_size=64, precision="fp32")


PROG = "python -m colorgan.evaluation.bench"  # `colorgan bench` passes its own name


def _parser(prog: str = PROG) -> argparse.ArgumentParser:
    p = OneLineErrorParser(prog=prog, description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(p, names=BENCH_FIELDS, defaults=BENCH_DEFAULTS)
    p.add_argument("--steps", type=int, default=10, help="timed steps (default: 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first, tracing included (default: 2)")
    p.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (default: all cores)")
    p.add_argument("--inter-threads", type=int, default=0,
                   help="TensorFlow inter-op threads: ops run side by side (default: TensorFlow's, all cores)")
    p.add_argument("--peer", metavar="SCRIPT", help="a peer benchmark to run with the same flags (it must print "
                                                      "one JSON line with train_images_per_s)")
    p.add_argument("--peer-precision", choices=("fp32", "bf16"),
                   help="run the peer at this precision instead of --precision (e.g. bf16 here vs fp32 there)")
    p.add_argument("--peer-python", metavar="PYTHON", default=sys.executable,
                   help="the Python that runs --peer (one with torch installed)")
    p.add_argument("--pipeline", action="store_true",
                   help="time fit on the real input pipeline (--data, --classes) against one cached batch")
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

    from colorgan.training.trainers import build_trainer

    model = build_trainer(cfg)
    size, batch = cfg.image_size, cfg.batch_size
    gray = tf.random.uniform([batch, size, size, 1], -1.0, 1.0)
    target = tf.random.uniform([batch, size, size, 2 if cfg.color_space == "lab" else 3], -1.0, 1.0)
    batches = iter(tf.data.Dataset.from_tensors((gray, target)).repeat())
    model.make_train_function()
    train_function = model.train_function  # what fit calls each step
    train_s = _timed(lambda: train_function(batches), warmup, steps)

    infer = tf.function(lambda x: model(x, training=False), jit_compile=cfg.xla == "on")
    infer_s = _timed(lambda: infer(gray), warmup, steps)
    return {"framework": "colorgan", "image_size": size, "batch_size": batch, "precision": cfg.precision,
            "xla": cfg.xla, "step_ms": round(train_s * 1000, 1),
            "train_images_per_s": round(batch / train_s, 1), "infer_images_per_s": round(batch / infer_s, 1),
            "g_params": _count(model.generator.trainable_variables),
            "d_params": _count(model.discriminator.trainable_variables) if model.discriminator else 0}


def _step_clock(warmup: int):
    """A callback timing from the end of the warm-up steps to the end of the last step, inside one fit
    call (fit's own set-up and tear-down is not the pipeline's doing)."""
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
    from colorgan.data.pipeline import train_dataset
    from colorgan.data.sources import find_source
    from colorgan.training.trainers import build_trainer

    source = find_source(cfg)
    cfg = cfg.resolved(source.default_image_size)
    model = build_trainer(cfg)
    real = train_dataset(source.train, size=cfg.image_size, batch_size=cfg.batch_size, color_space=cfg.color_space,
                         jitter=cfg.jitter, seed=cfg.seed, degrade=cfg.degrade)
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


def run_peer(args, cfg: Config) -> dict:
    command = [args.peer_python, args.peer, "--image-size", str(cfg.image_size), "--batch-size",
               str(cfg.batch_size), "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--precision", args.peer_precision or cfg.precision, "--json"]
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


def main(argv=None, prog: str = PROG) -> int:
    args = _parser(prog).parse_args(argv)
    setup_logging()
    if args.steps < 1 or args.warmup < 0:
        raise ColorganError("--steps must be at least 1 and --warmup 0 or more")
    # num_samples=0: no sample grids while timing.
    cfg = config_from_overrides({**BENCH_DEFAULTS, **overrides_from_args(args), "num_samples": 0})
    import_tensorflow_quietly()
    import tensorflow as tf
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    if args.inter_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_threads)

    if args.pipeline:
        result = bench_pipeline(cfg, args.steps, args.warmup)
    else:
        cfg = cfg.resolved(BENCH_DEFAULTS["image_size"])
        result = bench_step(cfg, args.steps, args.warmup)
        if args.peer:
            peer = run_peer(args, cfg)
            result.update({f"peer_{k}": v for k, v in peer.items() if k in ("framework", "precision", "step_ms",
                                                                              "train_images_per_s")})
            result["train_speedup_vs_peer"] = round(result["train_images_per_s"] / peer["train_images_per_s"], 2)
    from colorgan import cpu_kernels
    result["cpu_kernels"] = cpu_kernels.choice()
    result["cpu"] = cpu_kernels.cpu_kind()
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    run_main(PROG, main)

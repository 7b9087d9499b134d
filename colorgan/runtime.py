"""Where and how training runs: precision policy, tf.distribute strategy, which worker writes, XLA choice."""
from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from colorgan.errors import ColorganError

PRECISION_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def has_gpu() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def default_xla() -> str:
    """XLA on with a GPU; off on CPUs, where compiling this model's train step made it slower."""
    return "on" if has_gpu() else "off"


def cpu_computes_bfloat16() -> bool:
    """Whether the CPU has bfloat16 arithmetic (AMX or AVX-512 BF16); elsewhere TensorFlow emulates it, slowly."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


# Generators that bfloat16 makes slower even on CPUs with bfloat16 arithmetic: EfficientNet-Lite0's depthwise
# convolutions get no fast bfloat16 kernel there (Xeon with AMX, 128 px, batch 16: 51.2 train images/s in float32,
# 33.5 in bfloat16; inference 167 and 161), while the U-Net gains 1.7-2x (docs/speed.md has the figures).
BFLOAT16_SLOWER = ("effnet-lite0",)


def bfloat16_pays(generator: str = "unet") -> bool:
    """Whether computing `generator` in bfloat16 is faster here: a CPU with bfloat16 arithmetic, no GPU, and a
    network whose layers have fast bfloat16 kernels on it."""
    return cpu_computes_bfloat16() and not has_gpu() and generator not in BFLOAT16_SLOWER


def default_precision(generator: str = "unet") -> str:
    """--precision auto: bf16 where it makes `generator` faster (bfloat16_pays), fp32 elsewhere on CPUs."""
    return "bf16" if bfloat16_pays(generator) else "fp32"


def inference_in_float32(generator: str = "unet") -> bool:
    """Whether a model saved in bfloat16 should run in float32 here: on CPUs, wherever bfloat16 is not faster
    for its generator (emulated, or without fast kernels for its layers); a GPU keeps the saved precision."""
    return not has_gpu() and not bfloat16_pays(generator)


@contextlib.contextmanager
def precision_policy(precision: str):
    """Keras' global dtype policy set to `precision` (fp32, bf16, fp16) while models are built, then restored."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[precision])
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def make_strategy(name: str) -> tf.distribute.Strategy:
    """none: the default (one device); mirrored: every local GPU, else every logical CPU device;
    multiworker: MultiWorkerMirroredStrategy, configured by the TF_CONFIG environment variable."""
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ColorganError(f"--strategy: {name!r} is not one of none, mirrored, multiworker")


def replicas() -> float:
    """Replicas training in sync: each computes a mean over its share, and their gradients are summed."""
    return float(tf.distribute.get_strategy().num_replicas_in_sync)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run directory (the chief, or worker 0 without a chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and \
        "chief" not in resolver.cluster_spec().as_dict()


@contextlib.contextmanager
def writable_run_dir(run_dir: Path, strategy: tf.distribute.Strategy):
    """The directory this process writes its run to: run_dir on the chief, a scratch folder elsewhere.

    Multi-worker checkpointing needs every worker to save, but only the chief's copy is kept; the
    scratch folder is deleted when training ends.
    """
    if is_chief(strategy):
        yield run_dir
        return
    scratch = Path(tempfile.mkdtemp(prefix="colorgan-worker-"))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

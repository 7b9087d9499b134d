"""Training: the pix2pix `keras.Model` (train_step/test_step), run directories, checkpoints, resume.

A run directory `checkpoints/<run-name>/` holds
  config.json        the resolved Config (evaluation and --resume rebuild the run from it)
  history.csv        train and validation losses per epoch (1-based), with seconds per epoch
  generator.keras    the generator alone; `keras.models.load_model` reloads it with no project code
  state/             tf.train.Checkpoint of both models, both optimizers and the epoch count
  samples/epoch_NNN.png  gray | truth | colorized on fixed validation images
Everything is written at the end of each epoch, the training state last: it is the commit point,
so a run killed at any moment resumes from the last completed epoch.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import keras
import tensorflow as tf
from keras import ops

from .color import from_model_io, gray_from_model_input, target_channels
from .config import Config
from .data import DataSource, eval_dataset, eval_steps, find_source, sample_batch, steps_per_pass, train_dataset
from .errors import ColorganError
from .fastconv import use_matmul_for_small_inputs
from .atomic import atomic_save, atomic_write_text, temp_files
from .losses import discriminator_loss, generator_loss, gradient_penalty, l1_loss
from .models import Autoencoder, Discriminator, Generator
from .optimizers import EpochSchedule, FusedAdam
from .viz import save_image_grid

log = logging.getLogger("colorgan")

LOSS_NAMES = ("g_total", "g_gan", "g_l1", "d")
HISTORY_COLUMNS = ("epoch",) + LOSS_NAMES + tuple("val_" + n for n in LOSS_NAMES) + ("seconds",)
PRECISION_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def _replicas() -> float:
    """Replicas training in sync: each computes a mean over its share, and their gradients are summed."""
    return float(tf.distribute.get_strategy().num_replicas_in_sync)


def _apply(optimizer, tape: tf.GradientTape, loss, variables, weight=1.0) -> None:
    """Gradient of `loss` (a mean over this replica's images) applied as a mean over the global batch.

    The backward pass starts from weight / replicas instead of 1 (gradients are summed over replicas;
    weight 0 during the L1 warm-up stops the discriminator);
    under fp16 also from the loss scale, and the LossScaleOptimizer unscales (and skips steps whose
    gradients overflowed).
    """
    upstream = ops.cast(weight, loss.dtype) / _replicas()
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        upstream = ops.cast(optimizer.scale_loss(upstream), loss.dtype)
    grads = tape.gradient(loss, variables, output_gradients=upstream)
    optimizer.apply_gradients(zip(grads, variables))


def _iterations(optimizer):
    return optimizer.inner_optimizer.iterations if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) \
        else optimizer.iterations


class _Colorizer(keras.Model):
    """What both training models share: the generator, loss trackers for fit, and test_step."""

    loss_names: tuple[str, ...] = ()

    def __init__(self, generator: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = None
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.loss_names}

    def compile(self, g_optimizer, **kwargs):
        # XLA made this model ~4x slower on CPU when measured, so it is off unless asked for.
        kwargs.setdefault("jit_compile", False)
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Under a distribution strategy Keras 3 builds the model here from the first batch reduced
        # over replicas, which fails with MultiWorkerMirroredStrategy (keras-team/keras#20585).
        # build_trainer has already built both networks and their optimizers, and the losses are
        # our own trackers, so there is nothing left to build (without a strategy Keras skips it too).
        return

    def call(self, gray, training=False):
        return self.generator(gray, training=training)

    def losses_for(self, gray, target, training: bool) -> dict:
        raise NotImplementedError

    def _report(self, losses):
        for name, value in losses.items():
            self.trackers[name].update_state(value)
        results = {name: t.result() for name, t in self.trackers.items()}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces each worker's logs with reduce("MEAN", axis=0), which needs an axis.
            results = {name: ops.reshape(value, [1]) for name, value in results.items()}
        return results

    def test_step(self, data):
        gray, target = data
        return self._report(self.losses_for(gray, target, training=False))


class Pix2Pix(_Colorizer):
    """U-Net generator + PatchGAN discriminator; adds only compile and train_step.

    The adversarial loss is one of losses.GAN_LOSSES; the discriminator is updated `critic_steps`
    times per generator update, and not at all during the first `warmup_steps` generator steps, when
    the generator trains on L1 alone.
    """

    loss_names = LOSS_NAMES

    def __init__(self, generator: keras.Model, discriminator: keras.Model, **kwargs):
        super().__init__(generator, **kwargs)
        self.discriminator = discriminator

    def compile(self, g_optimizer, d_optimizer, lambda_l1: float = 100.0, gan_loss: str = "vanilla",
                gp_weight: float = 10.0, critic_steps: int = 1, label_smoothing: float = 0.0,
                warmup_steps: int = 0, **kwargs):
        super().compile(g_optimizer, **kwargs)
        self.d_optimizer = d_optimizer
        self.lambda_l1, self.gan_loss, self.gp_weight = lambda_l1, gan_loss, gp_weight
        self.critic_steps, self.label_smoothing, self.warmup_steps = critic_steps, label_smoothing, warmup_steps

    def _adversary_weight(self):
        """0.0 during the L1-only warm-up, 1.0 after (read from the step count, so resumes agree)."""
        return ops.cast(_iterations(self.g_optimizer) >= self.warmup_steps, "float32")

    def _critic_loss(self, gray, target, fake, real_logits, fake_logits, training):
        d = discriminator_loss(real_logits, fake_logits, self.gan_loss, self.label_smoothing)
        if self.gan_loss == "wgan-gp" and training:
            d = d + self.gp_weight * gradient_penalty(self.discriminator, gray, target, fake)
        return d

    def losses_for(self, gray, target, training, adversary_weight=1.0):
        fake = self.generator(gray, training=training)
        real_logits = self.discriminator([gray, target], training=training)
        fake_logits = self.discriminator([gray, fake], training=training)
        g_total, g_gan, g_l1 = generator_loss(fake_logits, fake, target, self.lambda_l1, self.gan_loss,
                                              adversary_weight)
        d = self._critic_loss(gray, target, fake, real_logits, fake_logits, training)
        return {"g_total": g_total, "g_gan": g_gan, "g_l1": g_l1, "d": d}

    def train_step(self, data):
        gray, target = data
        weight = self._adversary_weight()
        d_vars = self.discriminator.trainable_variables
        for _ in range(self.critic_steps - 1):  # extra critic updates on the same batch (as keras-io WGAN-GP)
            with tf.GradientTape() as tape:
                d = self.losses_for(gray, target, training=True)["d"]
            _apply(self.d_optimizer, tape, d, d_vars, weight)
        # One forward pass serves both updates, as in the pix2pix tutorial. During warm-up the
        # discriminator's gradient is zero, which leaves Adam's weights (and zero moments) unchanged.
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            losses = self.losses_for(gray, target, training=True, adversary_weight=weight)
        _apply(self.g_optimizer, g_tape, losses["g_total"], self.generator.trainable_variables)
        _apply(self.d_optimizer, d_tape, losses["d"], d_vars, weight)
        return self._report(losses)


class Regressor(_Colorizer):
    """A generator trained alone with a pixel loss (the autoencoder and U-Net L1 baselines).

    g_total is the loss trained on (L1 or MSE); g_l1 is always L1, comparable across models.
    """

    loss_names = ("g_total", "g_l1")

    def compile(self, g_optimizer, loss: str = "l1", **kwargs):
        super().compile(g_optimizer, **kwargs)
        self.pixel_loss = loss

    def losses_for(self, gray, target, training):
        fake = self.generator(gray, training=training)
        l1 = l1_loss(target, fake)
        if self.pixel_loss == "mse":
            total = ops.mean(ops.square(ops.cast(target, "float32") - fake))
        else:
            total = l1
        return {"g_total": total, "g_l1": l1}

    def train_step(self, data):
        gray, target = data
        with tf.GradientTape() as tape:
            losses = self.losses_for(gray, target, training=True)
        _apply(self.g_optimizer, tape, losses["g_total"], self.generator.trainable_variables)
        return self._report(losses)


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


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run directory (the chief, or worker 0 without a chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and \
        "chief" not in resolver.cluster_spec().as_dict()


def build_models(cfg: Config) -> tuple[keras.Model, keras.Model | None]:
    """Generator (and discriminator, for pix2pix) of a resolved config, under its precision policy."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[cfg.precision])
    # Several replicas normalise a global batch as one device would only if BatchNorm syncs them.
    sync = cfg.strategy != "none"
    try:
        out = target_channels(cfg.color_space)
        if cfg.model == "autoencoder":
            generator = Autoencoder(cfg.image_size, 1, out, cfg.base_filters, cfg.skip_connections,
                                    norm=cfg.norm, synchronized=sync)
        else:
            generator = Generator(cfg.image_size, 1, out, cfg.base_filters, norm=cfg.norm, dropout=cfg.g_dropout,
                                  synchronized=sync)
        if not tf.config.list_logical_devices("GPU"):
            use_matmul_for_small_inputs(generator)  # oneDNN is slow on the innermost maps (fastconv.py)
        discriminator = None
        if cfg.model == "pix2pix":
            discriminator = Discriminator(cfg.image_size, 1, out, cfg.base_filters, norm=cfg.d_norm,
                                          spectral_norm=cfg.spectral_norm, dropout=cfg.d_dropout, synchronized=sync)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return generator, discriminator


def make_optimizer(cfg: Config, lr: float, steps_per_epoch: int | None, updates_per_step: int = 1):
    """FusedAdam at `lr` (or a schedule of it), clipped if asked, loss-scaled under fp16."""
    if cfg.lr_schedule != "constant":
        if not steps_per_epoch:
            raise ValueError("a learning-rate schedule needs steps_per_epoch")
        lr = EpochSchedule(lr, steps_per_epoch * updates_per_step, cfg.epochs, cfg.lr_schedule, cfg.decay_epochs)
    optimizer = FusedAdam(lr, beta_1=cfg.beta1, global_clipnorm=cfg.clip_norm or None)
    if cfg.precision == "fp16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def build_trainer(cfg: Config, steps_per_epoch: int | None = None,
                  strategy: tf.distribute.Strategy | None = None) -> Pix2Pix | Regressor:
    """The compiled training model for cfg.model, optimizer slots built (so restores are complete).

    steps_per_epoch places learning-rate schedules and the L1 warm-up; the models and optimizers
    are created under `strategy` (default: one device).
    """
    with (strategy or tf.distribute.get_strategy()).scope():
        generator, discriminator = build_models(cfg)
        jit = cfg.xla == "on"
        if discriminator is None:
            model = Regressor(generator)
            model.compile(g_optimizer=make_optimizer(cfg, cfg.lr, steps_per_epoch), loss=cfg.loss, jit_compile=jit)
        else:
            model = Pix2Pix(generator, discriminator)
            model.compile(g_optimizer=make_optimizer(cfg, cfg.lr, steps_per_epoch),
                          d_optimizer=make_optimizer(cfg, cfg.d_lr or cfg.lr, steps_per_epoch, cfg.critic_steps),
                          lambda_l1=cfg.lambda_l1, gan_loss=cfg.gan_loss, gp_weight=cfg.gp_weight,
                          critic_steps=cfg.critic_steps, label_smoothing=cfg.label_smoothing,
                          warmup_steps=cfg.l1_warmup_epochs * (steps_per_epoch or 0), jit_compile=jit)
            model.d_optimizer.build(discriminator.trainable_variables)
        model.g_optimizer.build(generator.trainable_variables)
    return model


# ---- run directory --------------------------------------------------------------------------
class TrainingState:
    """Models, optimizers and progress (completed epochs, steps into the next) in one tf.train.Checkpoint.

    Checkpoints are numbered by the generator's optimizer step, so a save in the middle of an epoch
    (Ctrl-C, SIGTERM) never overwrites the last completed epoch's files; the newest two are kept.
    """

    def __init__(self, model: Pix2Pix | Regressor, directory: str | os.PathLike,
                 restore_from: str | os.PathLike | None = None):
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")  # done in epoch + 1
        self.iterations = model.g_optimizer.iterations
        parts = dict(generator=model.generator, g_optimizer=model.g_optimizer, epoch=self.epoch)
        if model.discriminator is not None:
            parts.update(discriminator=model.discriminator, d_optimizer=model.d_optimizer)
        self._parts = parts
        self.checkpoint = tf.train.Checkpoint(step=self.step, **parts)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(directory), max_to_keep=2)
        self.restore_from = str(restore_from or directory)

    def restore(self) -> int:
        """Restore the latest checkpoint if there is one; returns the completed epochs (see .step)."""
        latest = tf.train.latest_checkpoint(self.restore_from)
        if latest:
            try:
                saved = {name.split("/")[0] for name, _ in tf.train.list_variables(latest)}
                # Runs saved before mid-epoch saves existed have no step: restore the rest.
                checkpoint = self.checkpoint if "step" in saved else tf.train.Checkpoint(**self._parts)
                checkpoint.restore(latest).assert_existing_objects_matched()
            except (tf.errors.OpError, AssertionError, ValueError, IndexError, KeyError) as e:  # truncated files: IndexError
                raise ColorganError(f"{latest}: training state does not match this config or is damaged "
                                    f"({type(e).__name__})") from None
        return int(self.epoch.numpy())

    def save(self, epochs_done: int, step: int = 0) -> None:
        """Save after `epochs_done` epochs and `step` steps of the next one."""
        self.epoch.assign(epochs_done)
        self.step.assign(step)
        self.manager.save(checkpoint_number=int(self.iterations.numpy()))


def remove_partial_writes(run_dir: Path) -> None:
    """Delete what a killed save left half-written: temporary files, never the files they would replace."""
    leftovers = [*temp_files(run_dir), *temp_files(run_dir / "samples"),
                 *(run_dir / "state").glob("*_temp*")]  # tf.train.Checkpoint's own temporary folders
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    if leftovers:
        log.info("removed %d half-written files of an interrupted save", len(leftovers))


def saved_progress(run_dir: str | os.PathLike) -> tuple[int, int]:
    """(completed epochs, steps into the next) of a run's latest checkpoint; (0, 0) if it has none."""
    latest = tf.train.latest_checkpoint(str(Path(run_dir) / "state"))
    if not latest:
        return 0, 0
    reader = tf.train.load_checkpoint(latest)
    names = {name for name, _ in tf.train.list_variables(latest)}
    value = lambda v: int(reader.get_tensor(f"{v}/.ATTRIBUTES/VARIABLE_VALUE")) \
        if f"{v}/.ATTRIBUTES/VARIABLE_VALUE" in names else 0
    return value("epoch"), value("step")


def read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def truncate_history(path: Path, epochs_done: int) -> None:
    """Drop rows past the last checkpointed epoch (a kill between the two writes leaves one)."""
    rows = [r for r in read_history(path) if int(r["epoch"]) <= epochs_done]
    _write_history(path, rows)


def _write_history(path: Path, rows: list[dict]) -> None:
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    atomic_save(path, write)


class RunRecorder(keras.callbacks.Callback):
    """At each epoch end: history row, sample grid, generator, then the training state (commit)."""

    def __init__(self, run_dir: Path, cfg: Config, state: TrainingState, sample_inputs, sample_targets):
        super().__init__()
        self.run_dir, self.cfg, self.state = run_dir, cfg, state
        self.sample_inputs, self.sample_targets = sample_inputs, sample_targets
        self._epoch_start = time.perf_counter()
        self.diverged_at = 0  # the epoch whose losses were not finite, if any

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        done = epoch + 1
        losses = [float(v) for k, v in logs.items() if k in HISTORY_COLUMNS]
        if not all(math.isfinite(v) for v in losses):
            self.model.stop_training = True
            self.diverged_at = done
            log.error("epoch %d: loss is not finite (%s); stopping, the last good checkpoint is kept",
                      done, ", ".join(f"{k}={float(v):.4g}" for k, v in logs.items()))
            return
        row = {"epoch": done, "seconds": round(time.perf_counter() - self._epoch_start, 2)}
        row.update({k: f"{float(v):.6f}" for k, v in logs.items() if k in HISTORY_COLUMNS})
        history = self.run_dir / "history.csv"
        _write_history(history, read_history(history) + [row])
        if self.cfg.num_samples:
            self.save_samples(done)
        generator = self.model.generator
        atomic_save(self.run_dir / "generator.keras", lambda tmp: generator.save(tmp))
        self.state.save(done)

    def save_samples(self, epoch: int) -> None:
        pred = self.model.generator(self.sample_inputs, training=False)
        cs = self.cfg.color_space
        columns = {"gray": gray_from_model_input(self.sample_inputs, cs).numpy(),
                   "truth": from_model_io(self.sample_inputs, self.sample_targets, cs).numpy(),
                   "colorized": from_model_io(self.sample_inputs, pred, cs).numpy()}
        (self.run_dir / "samples").mkdir(exist_ok=True)
        save_image_grid(self.run_dir / "samples" / f"epoch_{epoch:03d}.png", columns,
                        title=f"{self.run_dir.name}, epoch {epoch}")


def default_run_name(source: DataSource) -> str:
    return f"{source.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_run_dir(cfg: Config, run_dir: Path | None) -> Path:
    if run_dir is None:
        run_dir = Path(cfg.checkpoint_dir) / cfg.run_name
        if (run_dir / "config.json").exists():
            raise ColorganError(f"{run_dir} already holds a run; continue it with --resume {run_dir} "
                                f"or pick another --run-name")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ColorganError(f"{run_dir}: cannot write there ({e.strerror})") from None
    return run_dir


def load_run_config(run_dir: str | os.PathLike) -> Config:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ColorganError(f"--resume {run_dir}: no such run directory")
    cfg = Config.load(run_dir / "config.json")
    cfg.validate()
    return cfg


def train(cfg: Config, verbose: int | None = None) -> Path:
    """Train a new run; returns its directory (checkpoints/<run-name>/)."""
    if cfg.strategy == "multiworker" and not cfg.run_name:
        raise ColorganError("--run-name: needed with --strategy multiworker, so that every worker names the "
                            "same run directory")
    strategy = make_strategy(cfg.strategy)  # first: multi-worker set-up must precede any TensorFlow work
    source = find_source(cfg)
    cfg = cfg.resolved(source.default_image_size)
    if not cfg.run_name:
        cfg = dataclasses.replace(cfg, run_name=default_run_name(source))
    # Only the chief checks and creates the run directory; the other workers write elsewhere.
    run_dir = prepare_run_dir(cfg, None) if is_chief(strategy) else Path(cfg.checkpoint_dir) / cfg.run_name
    return _fit(cfg, source, run_dir, verbose, strategy)


def resume(run_dir: str | os.PathLike, epochs: int | None = None, verbose: int | None = None) -> Path:
    """Continue a run from its last completed epoch with its saved config (optionally to more epochs)."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    if epochs is not None:
        cfg = dataclasses.replace(cfg, epochs=epochs)
        cfg.validate()
    strategy = make_strategy(cfg.strategy)
    source = find_source(cfg)
    return _fit(cfg, source, prepare_run_dir(cfg, run_dir), verbose, strategy)


def _fit(cfg: Config, source: DataSource, run_dir: Path, verbose: int | None,
         strategy: tf.distribute.Strategy) -> Path:
    log.info("data: %s", source.description)
    log.info("%d training images, %d validation images, %d px, %s, batch %d",
             len(source.train), len(source.val), cfg.image_size, cfg.color_space, cfg.batch_size)
    if len(source.train) < cfg.batch_size:
        log.warning("only %d training images for batch size %d", len(source.train), cfg.batch_size)

    keras.utils.set_random_seed(cfg.seed)
    if strategy.num_replicas_in_sync > 1:
        log.info("training on %d replicas (%s), global batch %d", strategy.num_replicas_in_sync,
                 type(strategy).__name__, cfg.batch_size)
    steps_per_epoch = cfg.steps_per_epoch or steps_per_pass(len(source.train), cfg.batch_size)
    model = build_trainer(cfg, steps_per_epoch, strategy)
    # Workers other than the chief write to a scratch directory (multi-worker checkpointing needs
    # every worker to save, but only one copy is kept).
    if is_chief(strategy):
        return _fit_into(cfg, source, run_dir, run_dir, verbose, model, steps_per_epoch)
    scratch = Path(tempfile.mkdtemp(prefix="colorgan-worker-"))
    try:
        _fit_into(cfg, source, run_dir, scratch, verbose, model, steps_per_epoch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return run_dir


def _fit_into(cfg: Config, source: DataSource, restore_dir: Path, run_dir: Path, verbose: int | None,
              model, steps_per_epoch: int) -> Path:
    """Train from restore_dir's last checkpoint, writing the run to run_dir (the same, except on non-chiefs)."""
    remove_partial_writes(run_dir)
    state = TrainingState(model, run_dir / "state", restore_from=restore_dir / "state")
    initial_epoch = state.restore()
    initial_step = min(int(state.step.numpy()), steps_per_epoch - 1)  # the data may have shrunk since
    truncate_history(run_dir / "history.csv", initial_epoch)
    cfg.save(run_dir / "config.json")
    atomic_write_text(run_dir / "skipped.txt", "".join(line + "\n" for line in source.skipped))
    if initial_epoch >= cfg.epochs:
        log.info("%s: already trained for %d of %d epochs; nothing to do (raise --epochs to go on)",
                 run_dir, initial_epoch, cfg.epochs)
        return run_dir
    if initial_step:
        log.info("resuming %s in epoch %d of %d, after its step %d of %d", run_dir, initial_epoch + 1, cfg.epochs,
                 initial_step, steps_per_epoch)
    elif initial_epoch:
        log.info("resuming %s after epoch %d of %d", run_dir, initial_epoch, cfg.epochs)
    else:
        log.info("run directory: %s", run_dir)

    val_ds = eval_dataset(source.val, cfg).repeat() if len(source.val) else None
    sample_inputs, sample_targets = sample_batch(source, cfg, cfg.num_samples or 1)
    recorder = RunRecorder(run_dir, cfg, state, sample_inputs, sample_targets)
    stopper = GracefulStop(state, steps_per_epoch)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2  # a progress bar on a terminal, a line per epoch in a log

    def fit(first_epoch: int, last_epoch: int, steps: int, seed: int):
        model.fit(train_dataset(source.train, cfg, seed=seed), epochs=last_epoch, initial_epoch=first_epoch,
                  steps_per_epoch=steps, validation_data=val_ds,
                  validation_steps=cfg.val_steps or eval_steps(len(source.val), cfg.batch_size),
                  callbacks=[recorder, stopper], verbose=verbose, shuffle=False)  # the pipeline shuffles

    try:
        with stopper.handling_signals():
            epoch = initial_epoch
            if initial_step:  # finish the interrupted epoch first, from the step it was saved at
                stopper.step_offset = initial_step
                fit(epoch, epoch + 1, steps_per_epoch - initial_step, seed=cfg.seed + 7919 * (epoch + 1) + initial_step)
                stopper.step_offset = 0
                epoch += 1
            if epoch < cfg.epochs and not recorder.diverged_at:
                # A resumed run starts a fresh data order (seed + epoch) instead of replaying epoch 1's.
                fit(epoch, cfg.epochs, steps_per_epoch, seed=cfg.seed + epoch)
    except KeyboardInterrupt as interrupt:
        done, step = saved_progress(run_dir)
        saved = f"{done} epoch{'s' if done != 1 else ''}" + (f" and {step} of {steps_per_epoch} steps" if step else "")
        how = "" if isinstance(interrupt, TrainingInterrupted) else " (stopped at once: the steps since are not)"
        log.warning("interrupted; %s saved in %s%s. Continue with: python train.py --resume %s",
                    saved, run_dir, how, run_dir)
        raise
    if recorder.diverged_at:
        kept = int(state.epoch.numpy())
        raise ColorganError(f"training diverged in epoch {recorder.diverged_at} (a loss is not finite); "
                            f"{run_dir} keeps epoch {kept}" + (" (none completed)" if not kept else "") +
                            "; try a lower --lr or --clip-norm")
    return run_dir


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C or SIGTERM after saving where it was."""


class GracefulStop(keras.callbacks.Callback):
    """Ctrl-C or SIGTERM: finish the step in progress, save the training state there, stop.

    The signal handler only sets a flag: an exception raised inside a handler lands in whatever code
    runs at that moment, and some (weakref callbacks) swallow it. A second signal stops at once; the
    checkpoints on disk are whole either way (write, then rename). A mid-epoch save keeps the models,
    optimizers and the step reached; that epoch's history row then covers the steps after the resume.
    """

    def __init__(self, state: TrainingState, steps_per_epoch: int):
        super().__init__()
        self.state, self.steps_per_epoch = state, steps_per_epoch
        self.requested: str | None = None
        self.step_offset = 0  # steps of the current epoch done before this fit (a resumed epoch)
        self._epoch = 0

    @contextlib.contextmanager
    def handling_signals(self):
        if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
            yield
            return

        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt  # asked twice: stop now
            self.requested = signal.Signals(signum).name
            log.warning("%s: stopping after this step, saving first (send it again to stop at once)",
                        self.requested)

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        done = self.step_offset + batch + 1
        if not self.requested or done >= self.steps_per_epoch:
            return  # at an epoch's last step: let it finish and be recorded as a whole epoch
        if all(math.isfinite(float(v)) for v in (logs or {}).values()):
            self.state.save(self._epoch, step=done)
        raise TrainingInterrupted(self.requested)

    def on_epoch_end(self, epoch, logs=None):
        if self.requested:  # RunRecorder, called first, has saved the epoch (unless it diverged)
            raise TrainingInterrupted(self.requested)


def load_generator(run_dir: str | os.PathLike) -> keras.Model:
    """The trained generator of a run (no project code needed to load it)."""
    path = Path(run_dir) / "generator.keras"
    if not path.exists():
        raise ColorganError(f"{path}: no generator saved (has the run finished an epoch?)")
    return keras.models.load_model(path, compile=False)


def ab_zero_l1(dataset: tf.data.Dataset, color_space: str = "lab") -> float:
    """L1 of the 'keep the gray image' prediction (ab = 0 in Lab) on a dataset: the bar to beat."""
    total, count = 0.0, 0
    for gray, target in dataset:
        baseline = tf.zeros_like(target) if color_space == "lab" else tf.concat([gray] * 3, axis=-1)
        total += float(l1_loss(target, baseline)) * int(tf.size(target))
        count += int(tf.size(target))
    return total / max(count, 1)


__all__ = ["Pix2Pix", "Regressor", "TrainingState", "saved_progress", "TrainingInterrupted", "build_models", "build_trainer", "train", "resume", "load_generator",
           "ab_zero_l1", "read_history", "HISTORY_COLUMNS"]

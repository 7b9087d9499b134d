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

import csv
import dataclasses
import logging
import math
import os
import sys
import time
from pathlib import Path

import keras
import tensorflow as tf

from .color import from_model_io, gray_from_model_input, target_channels
from .config import Config
from .data import DataSource, eval_dataset, eval_steps, find_source, sample_batch, steps_per_pass, train_dataset
from .errors import ColorganError
from .io_utils import atomic_save
from .losses import discriminator_loss, generator_loss, l1_loss
from .models import Autoencoder, Discriminator, Generator
from .viz import save_image_grid

log = logging.getLogger("colorgan")

LOSS_NAMES = ("g_total", "g_gan", "g_l1", "d")
HISTORY_COLUMNS = ("epoch",) + LOSS_NAMES + tuple("val_" + n for n in LOSS_NAMES) + ("seconds",)
PRECISION_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16"}


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

    def call(self, gray, training=False):
        return self.generator(gray, training=training)

    def losses_for(self, gray, target, training: bool) -> dict:
        raise NotImplementedError

    def _report(self, losses):
        for name, value in losses.items():
            self.trackers[name].update_state(value)
        return {name: t.result() for name, t in self.trackers.items()}

    def test_step(self, data):
        gray, target = data
        return self._report(self.losses_for(gray, target, training=False))


class Pix2Pix(_Colorizer):
    """U-Net generator + PatchGAN discriminator; adds only compile and train_step."""

    loss_names = LOSS_NAMES

    def __init__(self, generator: keras.Model, discriminator: keras.Model, **kwargs):
        super().__init__(generator, **kwargs)
        self.discriminator = discriminator

    def compile(self, g_optimizer, d_optimizer, lambda_l1: float = 100.0, **kwargs):
        super().compile(g_optimizer, **kwargs)
        self.d_optimizer = d_optimizer
        self.lambda_l1 = lambda_l1

    def losses_for(self, gray, target, training):
        fake = self.generator(gray, training=training)
        real_logits = self.discriminator([gray, target], training=training)
        fake_logits = self.discriminator([gray, fake], training=training)
        g_total, g_gan, g_l1 = generator_loss(fake_logits, fake, target, self.lambda_l1)
        d = discriminator_loss(real_logits, fake_logits)
        return {"g_total": g_total, "g_gan": g_gan, "g_l1": g_l1, "d": d}

    def train_step(self, data):
        gray, target = data
        # One forward pass serves both updates, as in the pix2pix tutorial.
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            losses = self.losses_for(gray, target, training=True)
        g_vars, d_vars = self.generator.trainable_variables, self.discriminator.trainable_variables
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(losses["g_total"], g_vars), g_vars))
        self.d_optimizer.apply_gradients(zip(d_tape.gradient(losses["d"], d_vars), d_vars))
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
            total = keras.ops.mean(keras.ops.square(keras.ops.cast(target, "float32") - fake))
        else:
            total = l1
        return {"g_total": total, "g_l1": l1}

    def train_step(self, data):
        gray, target = data
        with tf.GradientTape() as tape:
            losses = self.losses_for(gray, target, training=True)
        g_vars = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(losses["g_total"], g_vars), g_vars))
        return self._report(losses)


def build_models(cfg: Config) -> tuple[keras.Model, keras.Model | None]:
    """Generator (and discriminator, for pix2pix) of a resolved config, under its precision policy."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[cfg.precision])
    try:
        out = target_channels(cfg.color_space)
        if cfg.model == "autoencoder":
            generator = Autoencoder(cfg.image_size, 1, out, cfg.base_filters, cfg.skip_connections)
        else:
            generator = Generator(cfg.image_size, 1, out, cfg.base_filters)
        discriminator = Discriminator(cfg.image_size, 1, out, cfg.base_filters) if cfg.model == "pix2pix" else None
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return generator, discriminator


def build_trainer(cfg: Config) -> Pix2Pix | Regressor:
    """The compiled training model for cfg.model, optimizer slots built (so restores are complete)."""
    generator, discriminator = build_models(cfg)
    adam = lambda: keras.optimizers.Adam(cfg.lr, beta_1=cfg.beta1)  # noqa: E731
    if discriminator is None:
        model = Regressor(generator)
        model.compile(g_optimizer=adam(), loss=cfg.loss)
    else:
        model = Pix2Pix(generator, discriminator)
        model.compile(g_optimizer=adam(), d_optimizer=adam(), lambda_l1=cfg.lambda_l1)
        model.d_optimizer.build(discriminator.trainable_variables)
    model.g_optimizer.build(generator.trainable_variables)
    return model




# ---- run directory --------------------------------------------------------------------------
class TrainingState:
    """The models, their optimizers and the number of completed epochs, in one tf.train.Checkpoint."""

    def __init__(self, model: Pix2Pix | Regressor, directory: str | os.PathLike):
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        parts = dict(generator=model.generator, g_optimizer=model.g_optimizer, epoch=self.epoch)
        if model.discriminator is not None:
            parts.update(discriminator=model.discriminator, d_optimizer=model.d_optimizer)
        self.checkpoint = tf.train.Checkpoint(**parts)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(directory), max_to_keep=2)

    def restore(self) -> int:
        """Restore the latest checkpoint if there is one; returns the completed epochs."""
        latest = self.manager.latest_checkpoint
        if latest:
            try:
                self.checkpoint.restore(latest).assert_existing_objects_matched()
            except (tf.errors.OpError, AssertionError, ValueError) as e:
                raise ColorganError(f"{latest}: training state does not match this config or is damaged "
                                    f"({type(e).__name__})") from None
        return int(self.epoch.numpy())

    def save(self, epochs_done: int) -> None:
        self.epoch.assign(epochs_done)
        self.manager.save(checkpoint_number=epochs_done)


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

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        done = epoch + 1
        losses = [float(v) for k, v in logs.items() if k in HISTORY_COLUMNS]
        if not all(math.isfinite(v) for v in losses):
            self.model.stop_training = True
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
    source = find_source(cfg)
    cfg = cfg.resolved(source.default_image_size)
    if not cfg.run_name:
        cfg = dataclasses.replace(cfg, run_name=default_run_name(source))
    return _fit(cfg, source, prepare_run_dir(cfg, None), verbose)


def resume(run_dir: str | os.PathLike, epochs: int | None = None, verbose: int | None = None) -> Path:
    """Continue a run from its last completed epoch with its saved config (optionally to more epochs)."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    if epochs is not None:
        cfg = dataclasses.replace(cfg, epochs=epochs)
        cfg.validate()
    source = find_source(cfg)
    return _fit(cfg, source, prepare_run_dir(cfg, run_dir), verbose)


def _fit(cfg: Config, source: DataSource, run_dir: Path, verbose: int | None) -> Path:
    log.info("data: %s", source.description)
    log.info("%d training images, %d validation images, %d px, %s, batch %d",
             len(source.train), len(source.val), cfg.image_size, cfg.color_space, cfg.batch_size)
    if len(source.train) < cfg.batch_size:
        log.warning("only %d training images for batch size %d", len(source.train), cfg.batch_size)

    keras.utils.set_random_seed(cfg.seed)
    model = build_trainer(cfg)
    state = TrainingState(model, run_dir / "state")
    initial_epoch = state.restore()
    truncate_history(run_dir / "history.csv", initial_epoch)
    cfg.save(run_dir / "config.json")
    if initial_epoch >= cfg.epochs:
        log.info("%s: already trained for %d of %d epochs; nothing to do (raise --epochs to go on)",
                 run_dir, initial_epoch, cfg.epochs)
        return run_dir
    if initial_epoch:
        log.info("resuming %s after epoch %d of %d", run_dir, initial_epoch, cfg.epochs)
    else:
        log.info("run directory: %s", run_dir)

    # A resumed run starts a fresh data order (seed + epoch) instead of replaying epoch 1's.
    train_ds = train_dataset(source.train, cfg, seed=cfg.seed + initial_epoch)
    val_ds = eval_dataset(source.val, cfg).repeat() if len(source.val) else None
    sample_inputs, sample_targets = sample_batch(source, cfg, cfg.num_samples or 1)
    recorder = RunRecorder(run_dir, cfg, state, sample_inputs, sample_targets)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2  # a progress bar on a terminal, a line per epoch in a log
    try:
        model.fit(train_ds, epochs=cfg.epochs, initial_epoch=initial_epoch,
                  steps_per_epoch=cfg.steps_per_epoch or steps_per_pass(len(source.train), cfg.batch_size),
                  validation_data=val_ds,
                  validation_steps=cfg.val_steps or eval_steps(len(source.val), cfg.batch_size),
                  callbacks=[recorder], verbose=verbose, shuffle=False)  # the pipeline shuffles
    except KeyboardInterrupt:
        done = int(state.epoch.numpy())
        log.warning("interrupted; %d epochs are saved in %s. Continue with: python train.py --resume %s",
                    done, run_dir, run_dir)
        raise
    return run_dir


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


__all__ = ["Pix2Pix", "Regressor", "TrainingState", "build_models", "build_trainer", "train", "resume", "load_generator",
           "ab_zero_l1", "read_history", "HISTORY_COLUMNS"]

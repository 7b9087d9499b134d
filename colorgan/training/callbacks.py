"""Callbacks of a training run, in the order fit calls them at an epoch's end:

  SampleGrid      gray | truth | colorized on fixed validation images, samples/epoch_NNN.png
  TensorBoardLog  the epoch's losses, learning rates and sample grid to logs/ (see tensorboard_logs.py)
  RunRecorder     history row, generator.keras, then the training state (the commit point); stops on NaN
  GracefulStop    Ctrl-C or SIGTERM: finish the step, save where it was, stop
  ProgressLog     where no progress bar is drawn (output to a file): a line with the step and ETA each minute
"""
from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import keras
import tensorflow as tf
from tqdm import tqdm

from colorgan.atomic import atomic_save
from colorgan.color.chroma import decode
from colorgan.color.lab import from_model_io, gray_from_model_input
from colorgan.config import Config
from colorgan.training import tensorboard_logs
from colorgan.training.runs import HISTORY_COLUMNS, TrainingState, append_history
from colorgan.viz import save_image_grid

log = logging.getLogger("colorgan")


def all_finite(logs: dict | None) -> bool:
    return all(math.isfinite(float(v)) for v in (logs or {}).values())


class SampleGrid(keras.callbacks.Callback):
    """Each epoch, the generator on the same validation images, saved as a grid beside the truth."""

    def __init__(self, folder: Path, title: str, color_space: str, inputs, targets):
        super().__init__()
        self.folder, self.title, self.color_space = folder, title, color_space
        self.inputs, self.targets = inputs, targets

    def on_epoch_end(self, epoch, logs=None):
        if not all_finite(logs):
            return  # RunRecorder stops the run; a grid of NaNs shows nothing
        pred = decode(self.model(self.inputs, training=False), self.color_space)  # no hints for a hint model
        columns = {"gray": gray_from_model_input(self.inputs, self.color_space).numpy(),
                   "truth": from_model_io(self.inputs, self.targets, self.color_space).numpy(),
                   "colorized": from_model_io(self.inputs, pred, self.color_space).numpy()}
        self.folder.mkdir(exist_ok=True)
        save_image_grid(self.folder / f"epoch_{epoch + 1:03d}.png", columns, title=f"{self.title}, epoch {epoch + 1}")


class TensorBoardLog(keras.callbacks.Callback):
    """Each epoch, to TensorBoard (logs/train and logs/validation, step = the 1-based epoch): the losses
    history.csv records, the generator's and discriminator's learning rates, and the sample grid.

    Called after SampleGrid, whose PNG it logs, and before RunRecorder, whose checkpoint commits the epoch:
    an epoch written here but not committed is dropped on resume (tensorboard_logs.truncate_logs).
    """

    def __init__(self, log_dir: Path, cfg: Config, samples: Path | None = None):
        super().__init__()
        self.log_dir, self.cfg, self.samples = log_dir, cfg, samples
        self._writers = {}
        self._config_written = False

    def _writer(self, run: str):
        if run not in self._writers:
            self._writers[run] = tf.summary.create_file_writer(str(self.log_dir / run))
        return self._writers[run]

    def on_train_begin(self, logs=None):
        if not self._config_written:  # fit may call model.fit twice (the rest of an interrupted epoch first)
            tensorboard_logs.write_config(self.log_dir, self.cfg, self.log_dir.parent.name)
            self._config_written = True

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: v for k, v in (logs or {}).items() if k in HISTORY_COLUMNS}
        if not all_finite(logs):
            return  # not recorded, as in history.csv: RunRecorder stops the run
        step = epoch + 1
        with self._writer(tensorboard_logs.TRAIN).as_default():
            for name, value in logs.items():
                if not name.startswith("val_"):
                    tensorboard_logs.write_scalar(f"loss/{name}", value, step)
            tensorboard_logs.write_scalar("learning_rate/generator",
                                          tensorboard_logs.learning_rate(self.model.g_optimizer), step,
                                          "the generator's learning rate at the epoch's end")
            if self.model.discriminator is not None:
                tensorboard_logs.write_scalar("learning_rate/discriminator",
                                              tensorboard_logs.learning_rate(self.model.d_optimizer), step,
                                              "the discriminator's learning rate at the epoch's end")
            grid = self.samples / f"epoch_{step:03d}.png" if self.samples else None
            if grid and grid.exists():
                tensorboard_logs.write_png("samples", grid.read_bytes(), step,
                                           "gray | truth | colorized on fixed validation images")
        validation = {name[len("val_"):]: value for name, value in logs.items() if name.startswith("val_")}
        if validation:
            with self._writer(tensorboard_logs.VALIDATION).as_default():
                for name, value in validation.items():
                    tensorboard_logs.write_scalar(f"loss/{name}", value, step)
        for writer in self._writers.values():
            writer.flush()  # on disk before RunRecorder's checkpoint commits the epoch

    def close(self):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


class RunRecorder(keras.callbacks.Callback):
    """At each epoch end: history row, generator, then the training state (commit).

    An epoch whose losses are not finite is not recorded: training stops and `diverged_at` names it.
    """

    def __init__(self, run_dir: Path, state: TrainingState):
        super().__init__()
        self.run_dir, self.state = run_dir, state
        self._epoch_start = time.perf_counter()
        self.diverged_at = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: v for k, v in (logs or {}).items() if k in HISTORY_COLUMNS}
        done = epoch + 1
        if not all_finite(logs):
            self.model.stop_training = True
            self.diverged_at = done
            log.error("epoch %d: loss is not finite (%s); stopping, the last good checkpoint is kept",
                      done, ", ".join(f"{k}={float(v):.4g}" for k, v in logs.items()))
            return
        row = {"epoch": done, "seconds": round(time.perf_counter() - self._epoch_start, 2)}
        row.update({k: f"{float(v):.6f}" for k, v in logs.items()})
        append_history(self.run_dir / "history.csv", row)
        generator = self.model.generator
        atomic_save(self.run_dir / "generator.keras", lambda tmp: generator.save(tmp))
        self.state.save(done)


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
        if all_finite(logs):
            self.state.save(self._epoch, step=done)
        raise TrainingInterrupted(self.requested)

    def on_epoch_end(self, epoch, logs=None):
        if self.requested:  # RunRecorder, called first, has saved the epoch (unless it diverged)
            raise TrainingInterrupted(self.requested)


PROGRESS_SECONDS = 60.0


class ProgressLog(keras.callbacks.Callback):
    """A log line every PROGRESS_SECONDS within an epoch: the step, the time so far, the time left, the losses.

    Keras draws its progress bar only on a terminal; in a log file (a run under nohup or a scheduler) it
    writes a line per epoch, and one epoch on a CPU can take an hour. The time left is measured from the
    end of the fit's first step, which includes tracing. offset() gives the steps of the epoch done before
    this fit (a resumed epoch, fitted on its own), so the counts are the run's.
    """

    def __init__(self, epochs: int, steps_per_epoch: int, offset: Callable[[], int] = lambda: 0,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.epochs, self.steps_per_epoch, self.offset, self.clock = epochs, steps_per_epoch, offset, clock

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._start = self._last = self.clock()
        self._first_step_end = None

    def on_train_batch_end(self, batch, logs=None):
        now = self.clock()
        if self._first_step_end is None:
            self._first_step_end = now
        if now - self._last < PROGRESS_SECONDS:
            return
        self._last = now
        done = self.offset() + batch + 1
        left = self.steps_per_epoch - done
        line = (f"epoch {self._epoch + 1}/{self.epochs}: step {done}/{self.steps_per_epoch} "
                f"({100 * done // self.steps_per_epoch}%), {tqdm.format_interval(now - self._start)} so far")
        if batch:
            per_step = (now - self._first_step_end) / batch  # the steps after the first
            line += f", about {tqdm.format_interval(per_step * left)} left in the epoch"
        losses = ", ".join(f"{name} {float(value):.4g}" for name, value in (logs or {}).items())
        log.info(line + (f"; {losses}" if losses else ""))

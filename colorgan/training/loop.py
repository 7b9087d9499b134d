"""Training a colorizer: `train(cfg)` starts a run, `resume(run_dir)` continues one; `fit` is the loop both use.

The parts live elsewhere: the networks in models.py, the train step in trainers.py, the run directory
and its checkpoints in runs.py, what happens at each epoch's end in callbacks.py, devices and precision
in runtime.py, the data in data.py (finding it) and pipeline.py (feeding it).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

import keras
import tensorflow as tf

from colorgan import cpu_kernels
from colorgan.atomic import atomic_write_text
from colorgan.config import AUTO, Config
from colorgan.data.image_files import GRAY_CHROMA
from colorgan.data.image_sets import DataSource
from colorgan.data.pipeline import (data_order_seed, eval_dataset, eval_steps, example_to_model_io, sample_examples,
                                    steps_per_pass, train_dataset)
from colorgan.data.sources import find_source
from colorgan.errors import ColorganError
from colorgan.progress import progress_bar
from colorgan.runtime import is_chief, make_strategy, writable_run_dir
from colorgan.training.callbacks import (GracefulStop, ProgressLog, RunRecorder, SampleGrid, TensorBoardLog,
                                         TrainingInterrupted)
from colorgan.training.runs import (TrainingState, default_run_name, init_files, init_generator, load_ab_counts,
                                    load_run_config, prepare_run_dir, remove_partial_writes, save_ab_counts,
                                    saved_progress, truncate_history)
from colorgan.training.tensorboard_logs import LOGS_DIR, truncate_logs
from colorgan.training.trainers import build_trainer

log = logging.getLogger("colorgan")
AB_COUNT_IMAGES = 20_000  # --ab-loss classification's colour count: a sample this large is plenty (ab_class_weights)


def train(cfg: Config, verbose: int | None = None) -> Path:
    """Train a new run; returns its directory (checkpoints/<run-name>/)."""
    if cfg.strategy == "multiworker" and cfg.run_name == AUTO:
        raise ColorganError("--run-name: needed with --strategy multiworker, so that every worker names the "
                            "same run directory")
    strategy = make_strategy(cfg.strategy)  # first: multi-worker set-up must precede any TensorFlow work
    if cfg.init_from != "none":
        init_files(cfg)
    source = find_source(cfg)
    cfg = cfg.resolved(source.default_image_size)
    if cfg.run_name == AUTO:
        cfg = dataclasses.replace(cfg, run_name=default_run_name(source.name))
    run_dir = Path(cfg.checkpoint_dir) / cfg.run_name
    if is_chief(strategy):  # only the chief checks and creates the run directory
        prepare_run_dir(run_dir, new=True)
    return fit(cfg, source, run_dir, strategy, verbose)


def resume(run_dir: str | os.PathLike, epochs: int | None = None, verbose: int | None = None) -> Path:
    """Continue a run from where it was saved with its saved config (optionally to more epochs)."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    if epochs is not None:
        cfg = dataclasses.replace(cfg, epochs=epochs)
        cfg.validate()
    strategy = make_strategy(cfg.strategy)
    source = find_source(cfg)
    return fit(cfg, source, prepare_run_dir(run_dir, new=False), strategy, verbose)


def fit(cfg: Config, source: DataSource, run_dir: Path, strategy: tf.distribute.Strategy,
        verbose: int | None = None) -> Path:
    """Train cfg's model on source from run_dir's last checkpoint (if any) up to cfg.epochs."""
    log.info("data: %s", source.description)
    log.info("%d training images, %d validation images, %d px, %s, batch %d",
             len(source.train), len(source.val), cfg.image_size, cfg.color_space, cfg.batch_size)
    log.info("precision %s, XLA %s, CPU kernels: %s", cfg.precision, cfg.xla, cpu_kernels.choice())
    if len(source.train) < cfg.batch_size:
        log.warning("only %d training images for batch size %d", len(source.train), cfg.batch_size)
    if strategy.num_replicas_in_sync > 1:
        log.info("training on %d replicas (%s), global batch %d", strategy.num_replicas_in_sync,
                 type(strategy).__name__, cfg.batch_size)

    keras.utils.set_random_seed(cfg.seed)
    steps_per_epoch = steps_per_pass(len(source.train), cfg.batch_size) if cfg.steps_per_epoch == AUTO \
        else cfg.steps_per_epoch
    class_weights = ab_class_weights(cfg, source, run_dir, is_chief(strategy)) \
        if cfg.ab_loss == "classification" else None
    model = build_trainer(cfg, steps_per_epoch, strategy, class_weights)

    with writable_run_dir(run_dir, strategy) as out_dir, contextlib.ExitStack() as signals:
        # Where training was: restored from the run directory, written to out_dir (the same on the chief).
        remove_partial_writes(out_dir)
        state = TrainingState(model, out_dir / "state", restore_from=run_dir / "state")
        # Ctrl-C or SIGTERM from here on (set-up included: config.json is the first sign of a run a
        # scheduler sees) stops after the next step, saved there.
        stopper = GracefulStop(state, steps_per_epoch)
        signals.enter_context(stopper.handling_signals())
        epoch, step = state.restore()
        if cfg.init_from != "none" and not (epoch or step):  # a resumed run has its own weights
            init_generator(model.generator, cfg)
        step = min(step, steps_per_epoch - 1)  # the data may have shrunk since
        truncate_history(out_dir / "history.csv", epoch)
        truncate_logs(out_dir / LOGS_DIR, epoch)  # the same for TensorBoard's curves
        cfg.save(out_dir / "config.json")
        atomic_write_text(out_dir / "skipped.txt", "".join(line + "\n" for line in source.skipped))
        if epoch >= cfg.epochs:
            log.info("%s: already trained for %d of %d epochs; nothing to do (raise --epochs to go on)",
                     run_dir, epoch, cfg.epochs)
            return run_dir
        if step:
            log.info("resuming %s in epoch %d of %d, after its step %d of %d", run_dir, epoch + 1, cfg.epochs,
                     step, steps_per_epoch)
        elif epoch:
            log.info("resuming %s after epoch %d of %d", run_dir, epoch, cfg.epochs)
        else:
            log.info("run directory: %s", run_dir)

        # Callbacks: samples, TensorBoard, then the epoch's record (ending with the checkpoint), then the
        # signal check.
        recorder = RunRecorder(out_dir, state)
        callbacks = [recorder, stopper]
        tensorboard = None
        if cfg.tensorboard:
            tensorboard = TensorBoardLog(out_dir / LOGS_DIR, cfg, out_dir / "samples" if cfg.num_samples else None)
            callbacks.insert(0, tensorboard)
        if cfg.num_samples:
            examples = sample_examples(source.val if len(source.val) else source.train, cfg.image_size,
                                       cfg.num_samples)
            inputs, targets = example_to_model_io(examples, cfg.color_space)
            callbacks.insert(0, SampleGrid(out_dir / "samples", run_dir.name, cfg.color_space, inputs, targets))

        validation = {}
        if len(source.val):
            val_steps = eval_steps(len(source.val), cfg.batch_size) if cfg.val_steps == AUTO else cfg.val_steps
            # Fewer batches than the split holds: images spread over it, so that every source of a --more-data
            # mix (joined one after the other) is in the validation loss, not the first alone.
            val_images = source.val.spread(val_steps * cfg.batch_size)
            validation = dict(validation_steps=val_steps, validation_data=eval_dataset(
                val_images, size=cfg.image_size, batch_size=cfg.batch_size, color_space=cfg.color_space).repeat())
        if verbose is None:
            verbose = 1 if sys.stdout.isatty() else 2  # a progress bar on a terminal, a line per epoch in a log
        if verbose == 2:  # and within an epoch, a line each minute with the time left
            callbacks.append(ProgressLog(cfg.epochs, steps_per_epoch, offset=lambda: stopper.step_offset))

        try:
            if step:  # the rest of an interrupted epoch first, from the step it was saved at
                stopper.step_offset = step
                model.fit(training_data(cfg, source, data_order_seed(cfg.seed, epoch, step)),
                          initial_epoch=epoch, epochs=epoch + 1, steps_per_epoch=steps_per_epoch - step,
                          callbacks=callbacks, verbose=verbose, shuffle=False, **validation)
                stopper.step_offset = 0
                epoch += 1
            if epoch < cfg.epochs and not recorder.diverged_at:
                model.fit(training_data(cfg, source, data_order_seed(cfg.seed, epoch)),
                          initial_epoch=epoch, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch,
                          callbacks=callbacks, verbose=verbose, shuffle=False, **validation)
        except KeyboardInterrupt as interrupt:
            graceful = isinstance(interrupt, TrainingInterrupted)
            log.warning(interrupted_message(out_dir, steps_per_epoch, graceful))
            interrupt.run_dir = run_dir  # for the command line's last lines (how to resume, evaluate, colorize)
            raise
        finally:
            if tensorboard:
                tensorboard.close()
    if recorder.diverged_at:
        kept = int(state.epoch.numpy())
        raise ColorganError(f"training diverged in epoch {recorder.diverged_at} (a loss is not finite); "
                            f"{run_dir} keeps epoch {kept}" + (" (none completed)" if not kept else "") +
                            "; try a lower --lr or --clip-norm")
    return run_dir


def ab_class_weights(cfg: Config, source: DataSource, run_dir: Path, chief: bool = True):
    """Class rebalancing weights of --ab-loss classification, from the training images' own ab histogram.

    The counts are a pass over at most AB_COUNT_IMAGES training images spread evenly over the set (on 148,000
    photos a full pass took over ten minutes; 20,000 give each bin's share to a fraction of a percent), kept in
    the run directory (runs.AB_COUNTS_FILE) with what they were counted on, and read back on --resume.
    """
    from colorgan.color.ab_classes import ab_bins, ab_histogram, rebalancing_weights

    if cfg.rebalance_mix == 1.0:  # every weight 1: no histogram needed
        return None
    bins = ab_bins()
    counted = source.train.spread(AB_COUNT_IMAGES)
    counted_on = json.dumps([cfg.data, cfg.more_data, cfg.classes, cfg.val_split, cfg.data_split_seed, cfg.image_size,
                             len(source.train), len(bins)] + ([len(counted)] if len(counted) < len(source.train) else []))
    counts = load_ab_counts(run_dir, counted_on)
    if counts is None:
        log.info("counting the colours of %d training images for the class rebalancing weights", len(counted))
        batch = 64
        counts, _, _ = ab_histogram(counted.examples(cfg.image_size).batch(batch), bins, GRAY_CHROMA,
                                    progress=lambda it: progress_bar(it, total=-(-len(counted) // batch),
                                                                     desc="colours", unit="batch"))
        if chief:
            save_ab_counts(run_dir, counts, counted_on)
    return rebalancing_weights(counts, bins, mix=cfg.rebalance_mix)


def training_data(cfg: Config, source: DataSource, seed: int) -> tf.data.Dataset:
    """Endless shuffled, jittered training batches; fit's shuffle is off because this shuffles."""
    return train_dataset(source.train, size=cfg.image_size, batch_size=cfg.batch_size, color_space=cfg.color_space,
                         jitter=cfg.jitter, seed=seed, degrade=cfg.degrade)


def interrupted_message(run_dir: Path, steps_per_epoch: int, graceful: bool) -> str:
    done, step = saved_progress(run_dir)
    saved = f"{done} epoch{'s' if done != 1 else ''}" + (f" and {step} of {steps_per_epoch} steps" if step else "")
    how = "" if graceful else " (stopped at once: the steps since are not)"
    # How to continue is the command line's to say (python train.py or colorgan train): see commands/train.py.
    return f"interrupted; {saved} saved in {run_dir}{how}"

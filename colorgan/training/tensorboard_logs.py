"""TensorBoard logs of a training run, in its run directory's logs/, for `tensorboard --logdir checkpoints`.

  logs/             the config: config.json as text, and the HParams dashboard's record of its values
  logs/train        per epoch: each training loss (loss/<name>), the learning rates (learning_rate/generator,
                    learning_rate/discriminator) and the sample grid (samples, the PNG of samples/epoch_NNN.png)
  logs/validation   per epoch: each validation loss, under the same tags as in train

The step is the epoch, 1-based, and the losses are history.csv's, row for row. Train and validation are two
runs with the same tags, as Keras' TensorBoard callback writes them: TensorBoard draws both on one chart, and
its HParams dashboard finds a run's metrics in the subfolders of the folder that holds its hparams (logs/).
callbacks.TensorBoardLog writes the epochs; this module writes the config and keeps the files in step with
the checkpoint.

Summaries are written with `tf.summary.write` and the metadata of TensorBoard's scalar, image and text
plugins, not with tf.summary.scalar/image/text: in TensorFlow 2.21 those are the tensorboard package's, and
fail without it, and TensorFlow no longer installs it. The HParams record is a protobuf of that package, so
it is written only where tensorboard is installed; config.json as text always is.
"""
from __future__ import annotations

import json
import logging
import os
import struct
from pathlib import Path

import tensorflow as tf
from tensorflow.core.framework import summary_pb2
from tensorflow.core.util import event_pb2

from colorgan.atomic import TEMP_PREFIX
from colorgan.config import Config

log = logging.getLogger("colorgan")

LOGS_DIR = "logs"  # in the run directory
TRAIN, VALIDATION = "train", "validation"
HPARAMS_TAG = "_hparams_/session_start_info"  # where tensorboard.plugins.hparams writes a run's values
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ---- writing summaries ------------------------------------------------------------------------------
def _metadata(plugin: str, description: str = "") -> summary_pb2.SummaryMetadata:
    # Each plugin's own data is version 0 with no fields set, which serialises to no bytes.
    return summary_pb2.SummaryMetadata(summary_description=description,
                                       plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin))


def write_scalar(tag: str, value: float, step: int, description: str = "") -> None:
    """A scalar as tf.summary.scalar writes it (a float32 tensor), to the default writer."""
    tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step,
                     metadata=_metadata("scalars", description))


def write_png(tag: str, png: bytes, step: int, description: str = "") -> None:
    """A PNG file's bytes as an image summary: [width, height, png], the layout tf.summary.image writes.

    The file is stored as it is, so TensorBoard shows exactly the picture saved beside it.
    """
    if png[:8] != _PNG_SIGNATURE:
        raise ValueError("not a PNG file")
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk, first in every PNG
    tensor = tf.constant([str(width).encode(), str(height).encode(), png])
    tf.summary.write(tag, tensor, step=step, metadata=_metadata("images", description))


def write_text(tag: str, markdown: str, step: int, description: str = "") -> None:
    tf.summary.write(tag, tf.constant(markdown), step=step, metadata=_metadata("text", description))


def learning_rate(optimizer) -> float:
    """The optimizer's current rate: its schedule at its step count (a LossScaleOptimizer's inner one's)."""
    return float(tf.convert_to_tensor(optimizer.learning_rate))


# ---- the config -------------------------------------------------------------------------------------
def hparam_values(cfg: Config) -> dict:
    """The config as HParams values: bool, int, float and str as they are; lists as the flags spell them."""
    return {name: ",".join(value) if isinstance(value, list) else value
            for name, value in cfg.to_dict().items() if name != "schema"}


def hparams_available() -> bool:
    try:
        from tensorboard.plugins.hparams import api  # noqa: F401
    except ImportError:
        return False
    return True


def write_config(log_dir: Path, cfg: Config, run_name: str) -> None:
    """config.json as text and, where tensorboard is installed, as HParams, in log_dir itself (step 0).

    Written at each start, like config.json, replacing the previous start's: a resumed run (whose --epochs
    may have changed) has one config record, the one it trains with now.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    for old in event_files(log_dir):
        old.unlink()
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        text = json.dumps(cfg.to_dict(), indent=2)
        write_text("config", "    " + text.replace("\n", "\n    "), step=0,  # indented: a code block in markdown
                   description="config.json, the config this run trains with")
        if hparams_available():
            from tensorboard.plugins.hparams import api as hp

            # trial_id: the run's own name, so that runs with equal configs stay apart in the dashboard.
            hp.hparams(hparam_values(cfg), trial_id=run_name)
        else:
            log.info("TensorBoard: the config is logged as text only (pip install tensorboard for the HParams "
                     "dashboard)")
    writer.close()


# ---- reading and truncating event files ---------------------------------------------------------------
def event_files(folder: Path) -> list[Path]:
    """The event files in folder (not below), oldest first: what TensorBoard reads there (names with 'tfevents')."""
    return sorted(p for p in folder.glob("*tfevents*") if p.is_file() and not p.name.startswith(TEMP_PREFIX))


def read_events(path: Path) -> tuple[list[event_pb2.Event], bool]:
    """(the events of an event file, whether it was whole): a kill while writing leaves a partial last record."""
    events = []
    try:
        for record in tf.data.TFRecordDataset(str(path)):
            events.append(event_pb2.Event.FromString(record.numpy()))
    except tf.errors.DataLossError:
        return events, False
    return events, True


def truncate_logs(log_dir: Path, epochs_done: int) -> None:
    """Drop the steps past the last checkpointed epoch from logs/train and logs/validation.

    The callback writes an epoch's summaries before RunRecorder commits the epoch (the training state is
    the commit point), so a run killed in between has a step in its logs that its checkpoint does not
    have; resumed, it trains that epoch again and writes that step again, into a new event file.
    TensorBoard can hide such stale values (a SessionLog START event purges the steps after it in the
    Python reader; the Rust data server drops steps that a later record goes back over), but each reader
    in its own way, and summary_iterator-style readers not at all. Removing them from the files, as
    truncate_history does for history.csv, leaves every reader exactly one value per step.

    A file is rewritten (whole, then renamed) only where it holds such steps or ends in a partial record.
    """
    for run in (TRAIN, VALIDATION):
        folder = log_dir / run
        if not folder.is_dir():
            continue
        for leftover in folder.glob(f"{TEMP_PREFIX}*"):  # a rewrite a kill interrupted
            leftover.unlink()
        for path in event_files(folder):
            events, whole = read_events(path)
            keep = [e for e in events if e.step <= epochs_done]
            if whole and len(keep) == len(events):
                continue
            log.info("%s: keeping its TensorBoard records up to epoch %d, the last checkpointed", path, epochs_done)
            if not any(e.HasField("summary") for e in keep):  # only the file's header left
                path.unlink()
                continue
            # The temporary name has no 'tfevents' in it: TensorBoard never reads a half-written copy.
            tmp = folder / f"{TEMP_PREFIX}rewrite"
            with tf.io.TFRecordWriter(str(tmp)) as writer:
                for event in keep:
                    writer.write(event.SerializeToString())
            os.replace(tmp, path)

"""The run directory: what a training run writes, how it is checkpointed, cleaned up and loaded again.

`checkpoints/<run-name>/` holds
  config.json        the resolved Config (evaluation and --resume rebuild the run from it)
  history.csv        train and validation losses per epoch (1-based), with seconds per epoch
  generator.keras    the generator alone; `keras.models.load_model` reloads it with no project code
  state/             tf.train.Checkpoint of both models, both optimizers and the progress
  samples/epoch_NNN.png  gray | truth | colorized on fixed validation images
  logs/              TensorBoard: losses, learning rates, sample grids per epoch, the config (--no-tensorboard: none)
  skipped.txt        the data files left out, with their reasons
  ab_counts.npz      --ab-loss classification: the training images' ab histogram (read again on --resume)
Everything is written at the end of each epoch, the training state last: it is the commit point, so a
run killed at any moment resumes from the last completed epoch.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from colorgan.atomic import atomic_save, temp_files
from colorgan.bundled import SHIPPED_WEIGHTS  # weights/, or its copy inside an installed package
from colorgan.config import Config, flag_name
from colorgan.errors import ColorganError
from colorgan.models.networks import hint_channels
from colorgan.runtime import inference_in_float32
from colorgan.training.losses import ALL_LOSS_NAMES

log = logging.getLogger("colorgan")

HISTORY_COLUMNS = ("epoch",) + ALL_LOSS_NAMES + tuple("val_" + n for n in ALL_LOSS_NAMES) + ("seconds",)
KEEP_CHECKPOINTS = 2  # the newest mid-epoch save and the last completed epoch's
AB_COUNTS_FILE = "ab_counts.npz"
# Fields that shape the generator: a saved generator can start another run only where these agree.
ARCHITECTURE_FIELDS = ("generator", "color_space", "ab_loss", "base_filters", "norm", "skip_connections",
                       "image_size", "hints")


# ---- training state -----------------------------------------------------------------------------
class TrainingState:
    """Models, optimizers and progress (completed epochs, steps into the next) in one tf.train.Checkpoint.

    Checkpoints are numbered by the optimizers' steps, so a save in the middle of an epoch (Ctrl-C, SIGTERM)
    never overwrites the last completed epoch's files.
    """

    def __init__(self, model, directory: str | os.PathLike, restore_from: str | os.PathLike | None = None):
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")  # done in epoch + 1
        # Checkpoints are numbered by the steps of both optimizers together: the generator's alone stands still
        # while the critic warms up (--critic-warmup-epochs), and a number must grow with every step.
        self.counters = [model.g_optimizer.iterations] + \
            ([model.d_optimizer.iterations] if model.discriminator is not None else [])
        parts = dict(generator=model.generator, g_optimizer=model.g_optimizer, epoch=self.epoch)
        if model.discriminator is not None:
            parts.update(discriminator=model.discriminator, d_optimizer=model.d_optimizer)
        self._parts = parts
        self.checkpoint = tf.train.Checkpoint(step=self.step, **parts)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(directory), max_to_keep=KEEP_CHECKPOINTS)
        self.restore_from = str(restore_from or directory)

    def restore(self) -> tuple[int, int]:
        """Restore the latest checkpoint if there is one; returns (completed epochs, steps into the next)."""
        latest = tf.train.latest_checkpoint(self.restore_from)
        if latest:
            try:
                saved = {name.split("/")[0] for name, _ in tf.train.list_variables(latest)}
                # Runs saved before mid-epoch saves existed have no step: restore the rest.
                checkpoint = self.checkpoint if "step" in saved else tf.train.Checkpoint(**self._parts)
                checkpoint.restore(latest).assert_existing_objects_matched()
            except (tf.errors.OpError, AssertionError, ValueError, IndexError, KeyError) as e:  # truncated: IndexError
                raise ColorganError(f"{latest}: training state does not match this config or is damaged "
                                    f"({type(e).__name__})") from None
        return int(self.epoch.numpy()), int(self.step.numpy())

    def save(self, epochs_done: int, step: int = 0) -> None:
        """Save after `epochs_done` epochs and `step` steps of the next one."""
        self.epoch.assign(epochs_done)
        self.step.assign(step)
        self.manager.save(checkpoint_number=sum(int(c.numpy()) for c in self.counters))


def saved_progress(run_dir: str | os.PathLike) -> tuple[int, int]:
    """(completed epochs, steps into the next) of a run's latest checkpoint; (0, 0) if it has none."""
    latest = tf.train.latest_checkpoint(str(Path(run_dir) / "state"))
    if not latest:
        return 0, 0
    reader = tf.train.load_checkpoint(latest)
    names = {name for name, _ in tf.train.list_variables(latest)}

    def value(variable: str) -> int:
        key = f"{variable}/.ATTRIBUTES/VARIABLE_VALUE"
        return int(reader.get_tensor(key)) if key in names else 0

    return value("epoch"), value("step")


def remove_partial_writes(run_dir: Path) -> None:
    """Delete what a killed save left half-written: temporary files, never the files they would replace."""
    leftovers = [*temp_files(run_dir), *temp_files(run_dir / "samples"),
                 *(run_dir / "state").glob("*_temp*")]  # tf.train.Checkpoint's own temporary folders
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    if leftovers:
        log.info("removed %d half-written files of an interrupted save", len(leftovers))


# ---- history.csv --------------------------------------------------------------------------------
def read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_history(path: Path, rows: list[dict]) -> None:
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    atomic_save(path, write)


def append_history(path: Path, row: dict) -> None:
    write_history(path, read_history(path) + [row])


def truncate_history(path: Path, epochs_done: int) -> None:
    """Drop rows past the last checkpointed epoch (a kill between the two writes leaves one)."""
    write_history(path, [r for r in read_history(path) if int(r["epoch"]) <= epochs_done])


# ---- creating and loading runs --------------------------------------------------------------------
def default_run_name(data_name: str) -> str:
    return f"{data_name}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_run_dir(run_dir: Path, new: bool) -> Path:
    """Create run_dir (refusing to start a new run over an old one) and check it is writable."""
    # A state/ without config.json is a run whose config was lost (or is being written): a new run there
    # would silently go on from its checkpoint.
    if new and ((run_dir / "config.json").exists() or (run_dir / "state").exists()):
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
        raise ColorganError(f"{run_dir}: no such run directory")
    cfg = Config.load(run_dir / "config.json")
    cfg.validate()
    return cfg


@dataclass
class Run:
    """A trained run: its directory, its config and its generator."""
    directory: Path
    config: Config
    generator: keras.Model

    @property
    def name(self) -> str:
        return self.directory.name


def load_ab_counts(run_dir: Path, counted_on: str):
    """The run's saved ab histogram if it was counted on `counted_on` (a description of the data), else None."""
    path = run_dir / AB_COUNTS_FILE
    if not path.exists():
        return None
    with np.load(path) as saved:
        return saved["counts"] if str(saved["counted_on"]) == counted_on else None


def save_ab_counts(run_dir: Path, counts, counted_on: str) -> None:
    atomic_save(run_dir / AB_COUNTS_FILE, lambda tmp: np.savez(tmp, counts=counts, counted_on=counted_on))


def model_files(path: str | os.PathLike) -> tuple[Path, Path]:
    """(generator.keras, config.json) of a run directory, a weights folder or a .keras file."""
    path = Path(path)
    return (path, path.with_name("config.json")) if path.suffix == ".keras" \
        else (path / "generator.keras", path / "config.json")


def init_files(cfg: Config) -> tuple[Path, Path]:
    """The (generator.keras, config.json) that --init-from names; checked before any data is read."""
    model_file, config_file = model_files(SHIPPED_WEIGHTS if cfg.init_from == "shipped" else cfg.init_from)
    if not model_file.exists():
        raise ColorganError(f"--init-from {cfg.init_from}: no generator there (give a run directory, a weights "
                            f"folder, a .keras file or 'shipped')")
    return model_file, config_file


def init_generator(generator: keras.Model, cfg: Config) -> None:
    """--init-from: start generator from the weights of a saved one (fine-tuning) instead of from scratch.

    Weights are copied in order, each cast to this run's variable dtype (shipped weights are stored in
    bfloat16); a generator of another shape is refused, naming the settings that differ. The one exception:
    a regression generator (ab) starts a classification one (ab bins) of the same body, its output layer
    turned into logits whose distribution sits on the regression's colours (ab_classes.logits_head_from_regression).
    """
    model_file, config_file = init_files(cfg)
    source = load_generator(model_file)
    differ = []
    if config_file.exists():
        saved = Config.load(config_file)
        differ = [f"{flag_name(n)} {getattr(saved, n)} there, {getattr(cfg, n)} here"
                  for n in ARCHITECTURE_FIELDS if getattr(saved, n) != getattr(cfg, n)]
    values = [w for w in source.weights]
    head = _classification_head_from(generator, source)
    if head is not None:
        differ = [d for d in differ if not d.startswith(flag_name("ab_loss") + " ")]
        values[-2:] = head
    targets = list(generator.weights)
    hints_added = hint_channels(generator) > hint_channels(source)
    if hints_added:
        differ = [d for d in differ if not d.startswith(flag_name("hints") + " ")]
        targets, values = _hint_free_weights(generator, values)
    shapes = [tuple(w.shape) for w in targets], [tuple(v.shape) for v in values]
    if shapes[0] != shapes[1]:
        why = "; ".join(differ) if differ else "its layers differ"
        raise ColorganError(f"--init-from {cfg.init_from}: that generator has another shape ({why})")
    if differ:  # same shapes, other meaning (e.g. another image size of a fully convolutional net)
        log.warning("--init-from %s: %s", cfg.init_from, "; ".join(differ))
    for variable, value in zip(targets, values):
        variable.assign(tf.cast(value, variable.dtype))
    log.info("generator started from %s%s%s", model_file,
             " (its ab output layer turned into ab-bin logits around the same colours)" if head is not None else "",
             " (the hint inputs added, starting at zero: no hints, the same colours)" if hints_added else "")


def _hint_free_weights(generator: keras.Model, values: list) -> tuple[list, list]:
    """A --hints generator started from one without hints: (its variables to set, the source's values). The hint
    branches (layers named hints1..5) keep their zero start; a first convolution that takes the hints at its
    input gets zero weights for them. With no hints the new generator then computes what the source did."""
    from colorgan.color.hints import HINT_CHANNELS

    targets = [w for w in generator.weights if not w.path.split("/")[0].startswith("hints")]
    padded = []
    for target, value in zip(targets, values):
        value = tf.convert_to_tensor(value)
        if value.shape.rank == 4 and tuple(target.shape) == (*value.shape[:2], value.shape[2] + HINT_CHANNELS,
                                                             value.shape[3]):
            value = tf.pad(value, [[0, 0], [0, 0], [0, HINT_CHANNELS], [0, 0]])
        padded.append(value)
    return targets, padded


def _classification_head_from(generator: keras.Model, source: keras.Model):
    """(kernel, bias) of generator's logits layer made from source's ab layer, when generator predicts ab bins,
    source predicts ab, and their output layers ("to_color", the last weights of both) are the only difference."""
    from colorgan.color.ab_classes import ab_bins, logits_head_from_regression
    from colorgan.color.chroma import is_classification

    def head(model):
        try:
            return model.get_layer("to_color")
        except ValueError:
            return None

    ours, theirs = head(generator), head(source)
    if ours is None or theirs is None or len(generator.weights) != len(source.weights):
        return None
    if not is_classification(int(ours.weights[0].shape[-2])) or int(theirs.weights[0].shape[-2]) != 2:
        return None
    if [w.path for w in generator.weights[-2:]] != [w.path for w in ours.weights] or \
            [tuple(w.shape) for w in generator.weights[:-2]] != [tuple(w.shape) for w in source.weights[:-2]]:
        return None
    kernel, bias = (np.asarray(tf.cast(w, tf.float32)) for w in theirs.weights)
    return logits_head_from_regression(kernel, bias, ab_bins())


def load_generator(path: Path, float32: bool = False) -> keras.Model:
    """A saved generator (.keras); it needs no project code to load.

    float32: a generator saved with bfloat16 layers is built with float32 ones instead and the same weights
    loaded into it (bfloat16 values are exact in float32): for CPUs that emulate bfloat16 arithmetic.
    """
    if not path.exists():
        raise ColorganError(f"{path}: no generator saved (has the run finished an epoch?)")
    try:
        if float32:
            config = _saved_config(path)
            if "bfloat16" in json.dumps(config):
                model = keras.saving.deserialize_keras_object(_with_dtype_policy(config, "float32"))
                model.load_weights(path)
                return model
        return keras.models.load_model(path, compile=False)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise ColorganError(f"{path}: cannot load the model ({e})") from None


def save_in_bfloat16(model_file: Path, out_file: Path) -> None:
    """A copy of a saved generator with bfloat16 layers and weights: half the file, for shipping (weights/).

    bfloat16 keeps float32's range and 8 bits of its precision: the shipped model measured the same as its
    float32 original (weights/MODEL_CARD.md). CPUs without bfloat16 arithmetic load it back in float32.
    """
    source = load_generator(model_file)
    model = keras.saving.deserialize_keras_object(_with_dtype_policy(_saved_config(model_file), "bfloat16"))
    model.set_weights([keras.ops.cast(w, "bfloat16") for w in source.weights])
    atomic_save(out_file, lambda tmp: model.save(tmp))


def _saved_config(path: Path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))


def _with_dtype_policy(config, policy: str):
    """A Keras model config with every layer's dtype policy (float32, bfloat16, mixed_bfloat16...) made `policy`."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy":
            return policy
        return {key: _with_dtype_policy(value, policy) for key, value in config.items()}
    if isinstance(config, list):
        return [_with_dtype_policy(value, policy) for value in config]
    return config


def load_run(directory: str | os.PathLike) -> Run:
    directory = Path(directory)
    cfg = load_run_config(directory)
    return Run(directory, cfg, load_generator(directory / "generator.keras", float32=inference_in_float32(cfg.generator)))


def find_runs(checkpoint_dir: str | os.PathLike = "checkpoints") -> list[Path]:
    """Run directories (those with a saved generator), oldest first."""
    root = Path(checkpoint_dir)
    runs = [p.parent for p in root.glob("*/generator.keras")] if root.is_dir() else []
    return sorted(runs, key=lambda p: (p / "generator.keras").stat().st_mtime)

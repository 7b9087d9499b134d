"""Evaluating trained runs: metrics over a whole evaluation split, sample grids, loss curves, comparisons.

Every run is scored next to the "gray baseline", the colorizer that keeps the gray photo (ab = 0): a
colorizer is worth something only where it beats it. Images are compared at the run's training size.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from . import metrics
from .classifier import DEFAULT_DIR as DEFAULT_CLASSIFIER_DIR
from .classifier import FrozenClassifier
from .color import from_model_io, gray_from_model_input, to_model_io
from .config import Config
from .data import ImageSet, example_dataset, find_source, subset
from .errors import ColorganError
from .atomic import atomic_write_text
from .training import load_run_config, read_history

log = logging.getLogger("colorgan")

PSNR_CAP_DB = 100.0  # identical images have infinite PSNR; capped so that a mean stays finite
GRAY = "gray baseline"
TRUTH = "true colour"
FD_NOTE = ("frechet: Frechet distance to the true images in the penultimate features of this project's own "
           "CIFAR-10 classifier (FID's formula, not Inception's features: not comparable with published FIDs)")
METRIC_COLUMNS = ("psnr", "ssim", "auc", "colourfulness", "accuracy", "frechet")


@dataclass
class Run:
    directory: Path
    config: Config
    generator: keras.Model

    @property
    def name(self) -> str:
        return self.directory.name


def find_runs(checkpoint_dir: str | os.PathLike = "checkpoints") -> list[Path]:
    """Run directories (those with a saved generator), oldest first."""
    root = Path(checkpoint_dir)
    runs = [p.parent for p in root.glob("*/generator.keras")] if root.is_dir() else []
    return sorted(runs, key=lambda p: (p / "generator.keras").stat().st_mtime)


def load_run(directory: str | os.PathLike) -> Run:
    directory = Path(directory)
    cfg = load_run_config(directory)
    path = directory / "generator.keras"
    if not path.exists():
        raise ColorganError(f"{directory}: no generator.keras (has the run finished an epoch?)")
    return Run(directory, cfg, keras.models.load_model(path, compile=False))


def eval_images(cfg: Config) -> tuple[ImageSet, str]:
    """The evaluation split of cfg's data: its test split, else the seeded validation split (B&W photos kept)."""
    source = find_source(cfg, keep_gray=True)
    if not len(source.val):
        raise ColorganError(f"{source.description}: no evaluation images (--val-split is 0)")
    return source.val, source.description


def image_labels(images: ImageSet, classes: list[str]) -> np.ndarray | None:
    """Class index of each image from its folder name, or None if some image has no known class."""
    if images.array is not None:
        return None
    labels = [classes.index(Path(p).parent.name) if Path(p).parent.name in classes else -1 for p in images.color]
    return None if min(labels, default=-1) < 0 else np.array(labels)


def colorize_examples(run: Run, examples) -> dict[str, tf.Tensor]:
    """uint8 [N, S, S, 4] (RGB + gray) -> float RGB in [0, 1]: truth, gray baseline and the run's colorization."""
    x = tf.cast(examples, tf.float32) / 255.0
    truth = x[..., :3]
    model_in, _ = to_model_io(truth, x[..., 3:], run.config.color_space)
    pred = run.generator(model_in, training=False)
    return {TRUTH: truth, GRAY: gray_from_model_input(model_in, run.config.color_space),
            "model": from_model_io(model_in, pred, run.config.color_space)}


@dataclass
class _Accumulator:
    per_image: dict = field(default_factory=dict)
    features: dict = field(default_factory=dict)

    def add(self, name, key, values):
        self.per_image.setdefault(name, {}).setdefault(key, []).append(np.asarray(values, np.float64))

    def mean(self, name, key):
        return float(np.concatenate(self.per_image[name][key]).mean())


def evaluate_run(run: Run, images: ImageSet | None = None, limit: int = 0, batch_size: int = 100,
                 classifier: FrozenClassifier | None = None, progress: bool = True) -> dict:
    """Metrics of run and of the gray baseline over `images` (default: the run's evaluation split)."""
    description = None
    if images is None:
        images, description = eval_images(run.config)
    if limit:
        images = subset(images, range(min(limit, len(images))))
    labels = image_labels(images, classifier.classes) if classifier else None
    if classifier and labels is None:
        log.warning("semantic metrics skipped: the images are not in the classifier's class folders (%s)",
                    ", ".join(classifier.classes))
    ds = example_dataset(images, run.config.image_size).batch(batch_size)
    acc, seen = _Accumulator(), 0
    bar = tqdm(ds, total=math.ceil(len(images) / batch_size), unit="batch", disable=not progress,
               desc=f"evaluating {run.name}")
    for examples in bar:
        out = colorize_examples(run, examples)
        truth = out[TRUTH]
        acc.add(TRUTH, "colourfulness", metrics.colourfulness(truth))
        for name in (GRAY, "model"):
            acc.add(name, "psnr", tf.minimum(metrics.psnr(out[name], truth), PSNR_CAP_DB))
            acc.add(name, "ssim", metrics.ssim(out[name], truth))
            acc.add(name, "auc", metrics.ab_auc(out[name], truth))
            acc.add(name, "colourfulness", metrics.colourfulness(out[name]))
        if labels is not None:
            batch_labels = labels[seen:seen + len(truth)]
            for name in (TRUTH, GRAY, "model"):
                logits, features = classifier(out[name])
                acc.add(name, "accuracy", tf.cast(tf.argmax(logits, -1).numpy() == batch_labels, tf.float32))
                acc.features.setdefault(name, []).append(features.numpy())
        seen += len(truth)
    if not seen:
        raise ColorganError("no evaluation image could be read")

    rows = {}
    for name in ("model", GRAY, TRUTH):
        row = {key: round(acc.mean(name, key), 4) for key in acc.per_image[name]}
        if labels is not None and name != TRUTH:
            row["frechet"] = round(metrics.frechet_distance(np.concatenate(acc.features[name]),
                                                            np.concatenate(acc.features[TRUTH])), 3)
        rows[run.name if name == "model" else name] = row
    result = {"run": str(run.directory), "data": description or "given images", "images": seen,
              "image_size": run.config.image_size, "model": run.config.model, "rows": rows,
              "notes": [f"psnr: per image, capped at {PSNR_CAP_DB:.0f} dB, then averaged", "ssim, psnr: RGB in [0, 1]",
                        "auc: ab within t of the truth, t = 0..150 (Zhang et al. 2016)"]}
    if labels is not None:
        result["classifier"] = {"test_accuracy": classifier.info.get("test_accuracy"), "path": str(classifier.info.get("data"))}
        result["notes"].append(FD_NOTE)
    return result


def load_classifier_if_any(path: str | os.PathLike | None) -> FrozenClassifier | None:
    """The classifier at path; with no path, the default one if it was trained, else None."""
    if path:
        return FrozenClassifier(path)
    if (DEFAULT_CLASSIFIER_DIR / "classifier.keras").exists():
        return FrozenClassifier(DEFAULT_CLASSIFIER_DIR)
    log.warning("no classifier at %s: semantic metrics (accuracy, frechet) skipped; train one with "
                "python -m colorgan.classifier --data /path/to/cifar10", DEFAULT_CLASSIFIER_DIR)
    return None


# ---- tables --------------------------------------------------------------------------------------
def metric_table(rows: dict[str, dict]) -> tuple[list[str], list[list[str]]]:
    columns = [c for c in METRIC_COLUMNS if any(c in r for r in rows.values())]
    body = [[name] + [_fmt(r.get(c)) for c in columns] for name, r in rows.items()]
    return ["run"] + columns, body


def _fmt(value) -> str:
    if value is None:
        return ""
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"


def markdown_table(header, body) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, header, body) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(body)


def print_table(header, body) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    for row in [header] + body:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))


# ---- pictures ------------------------------------------------------------------------------------
def sample_examples(images: ImageSet, size: int, count: int = 8):
    """`count` fixed images spread evenly over the split, as uint8 [N, S, S, 4]."""
    idx = np.unique(np.linspace(0, len(images) - 1, count).round().astype(int))
    return next(iter(example_dataset(subset(images, idx), size).batch(count)))


def history_frame(run_dirs):
    """Long-form loss history of runs: run, epoch, loss, split (train/validation), value."""
    import pandas as pd
    records = []
    for run_dir in run_dirs:
        for row in read_history(Path(run_dir) / "history.csv"):
            for loss in ("g_total", "g_gan", "g_l1", "d"):
                for split, key in (("train", loss), ("validation", "val_" + loss)):
                    if row.get(key):
                        records.append({"run": Path(run_dir).name, "epoch": int(row["epoch"]), "loss": loss,
                                        "split": split, "value": float(row[key])})
    return pd.DataFrame.from_records(records)


def save_loss_curves(path: Path, run_dirs) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    frame = history_frame(run_dirs)
    if frame.empty:
        log.warning("no history to plot")
        return
    losses = [l for l in ("g_total", "g_gan", "g_l1", "d") if l in set(frame["loss"])]
    titles = {"g_total": "generator total", "g_gan": "generator adversarial (--gan-loss)", "g_l1": "generator L1 (ab/110)",
              "d": "discriminator (real + fake)"}
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(1, len(losses), figsize=(4.2 * len(losses), 3.6), squeeze=False)
    several = frame["run"].nunique() > 1
    for ax, loss in zip(axes[0], losses):
        part = frame[frame["loss"] == loss]
        sns.lineplot(data=part, x="epoch", y="value", hue="run" if several else "split",
                     style="split" if several else None, marker="o", ax=ax, legend=ax is axes[0][0])
        ax.set_title(titles[loss], fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
    if axes[0][0].get_legend():
        sns.move_legend(axes[0][0], "upper right", fontsize=8, title=None)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    sns.reset_orig()


def save_report(result: dict, out_dir: Path, run: Run, images: ImageSet | None, samples: int = 8) -> None:
    from .viz import save_image_grid
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "metrics.json", json.dumps(result, indent=2) + "\n")
    save_loss_curves(out_dir / "loss_curves.png", [run.directory])
    if images is None:
        images, _ = eval_images(run.config)
    out = colorize_examples(run, sample_examples(images, run.config.image_size, samples))
    save_image_grid(out_dir / "samples.png", {"gray": out[GRAY].numpy(), "truth": out[TRUTH].numpy(),
                                              "colorized": out["model"].numpy()}, title=run.name)


def save_compare_grid(path: Path, runs: list[Run], images: ImageSet, samples: int = 8) -> None:
    from .viz import save_image_grid
    size = runs[0].config.image_size
    examples = sample_examples(images, size, samples)
    first = colorize_examples(runs[0], examples)
    columns = {"gray": first[GRAY].numpy(), "truth": first[TRUTH].numpy()}
    for run in runs:
        columns[run.name] = colorize_examples(run, examples)["model"].numpy()
    save_image_grid(path, columns)

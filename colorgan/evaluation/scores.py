"""Evaluating trained runs: metrics over a whole evaluation split, sample grids, loss curves, comparisons.

Every run is scored next to the "gray baseline", the colorizer that keeps the gray photo (ab = 0): a
colorizer is worth something only where it beats it. Images are compared at the run's training size, or at
one size given for every run: each network then still works at its own size, and its ab is resized to that
size and put beside the L there, as colorize.py does a photo (so runs trained at different sizes share one
gray baseline and are scored on what a user would see).
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from colorgan.atomic import atomic_write_text
from colorgan.color.chroma import decode, predicted_ab
from colorgan.color.lab import from_model_io, gray_from_model_input, to_model_io
from colorgan.config import Config
from colorgan.data.image_sets import ImageSet
from colorgan.data.pipeline import sample_examples
from colorgan.data.sources import find_source
from colorgan.errors import ColorganError
from colorgan.evaluation import metrics
from colorgan.evaluation.classifier import DEFAULT_DIR as DEFAULT_CLASSIFIER_DIR
from colorgan.evaluation.classifier import FrozenClassifier
from colorgan.models.networks import hint_channels
from colorgan.progress import progress_bar
from colorgan.training.losses import ALL_LOSS_NAMES, LOSS_TITLES, l1_loss
from colorgan.training.runs import Run, read_history

log = logging.getLogger("colorgan")

PSNR_CAP_DB = 100.0  # identical images have infinite PSNR; capped so that a mean stays finite
GRAY = "gray baseline"
TRUTH = "true colour"
FD_NOTE = ("frechet: Frechet distance to the true images in the penultimate features of this project's own "
           "CIFAR-10 classifier (FID's formula, not Inception's features: not comparable with published FIDs)")
METRIC_COLUMNS = ("psnr", "ssim", "auc", "colourfulness", "accuracy", "frechet")


def eval_images(cfg: Config) -> tuple[ImageSet, str]:
    """The evaluation split of cfg's data: its test split, else the seeded validation split (B&W photos kept)."""
    source = find_source(cfg, keep_gray=True)
    if not len(source.val):
        raise ColorganError(f"{source.description}: no evaluation images (--val-split is 0)")
    return source.val, source.description


HINT_SEED = 0x41  # evaluate.py --hints N: the points drawn for a batch depend on this and its first photo's index


def colorize_examples(run: Run, examples, vividness=None, seen_gray=None, hints: int = 0, first: int = 0) -> dict:
    """uint8 [N, S, S, 4] (RGB + gray) -> float RGB in [0, 1]: truth, gray baseline and the run's colorization,
    under "model" at the run's vividness, or under ("model", v) for each v of `vividness` (the network runs once).

    At S other than the run's training size the network works at its own size and its ab is resized to S and
    recombined with the L at S (inference.recombine, the Colorizer's way). seen_gray: what the network sees
    instead of the clean gray (an old-photo version, [N, S, S, 1] in [0, 1]); the output keeps the clean
    gray's L, so the score is the colour's alone. hints: a --hints model sees this many points drawn from the
    truth (color.hints.simulate_hints, seeded by HINT_SEED and `first`, the batch's first index); others none."""
    from colorgan.inference.colorizer import model_input, recombine
    from colorgan.color.hints import simulate_hints
    from colorgan.models.networks import hint_channels, input_multiple, with_hints
    x = tf.cast(examples, tf.float32) / 255.0
    truth = x[..., :3]
    seen_gray = x[..., 3:] if seen_gray is None else seen_gray
    cs = run.config.color_space
    model_in, _ = to_model_io(truth, x[..., 3:], cs)
    out = {TRUTH: truth, GRAY: gray_from_model_input(model_in, cs)}
    levels = [(name, run.config.vividness if name == "model" else name[1])
              for name in (["model"] if vividness is None else [("model", v) for v in vividness])]

    def hint_map(model_in):
        if not hints or not hint_channels(run.generator):
            return None
        seen_truth = tf.image.resize(truth, tf.shape(model_in)[1:3], antialias=True)
        ab = to_model_io(seen_truth, tf.image.rgb_to_grayscale(seen_truth), "lab")[1]
        return simulate_hints(ab, tf.constant([HINT_SEED, first]), count=hints)

    if examples.shape[1] == run.config.image_size:
        seen_in = to_model_io(truth, seen_gray, cs)[0]
        pred = run.generator(with_hints(run.generator, seen_in, hint_map(seen_in)), training=False)
        for name, v in levels:
            out[name] = from_model_io(model_in, decode(pred, cs, v, run.config.cast_correction), cs)
        return out
    small = model_input(seen_gray, cs, run.config.image_size, input_multiple(run.generator))
    pred = run.generator(with_hints(run.generator, small, hint_map(small)), training=False)
    for name, v in levels:
        out[name] = recombine(x[..., 3:], predicted_ab(pred, cs, v, run.config.cast_correction))
    return out


@dataclass
class _Accumulator:
    per_image: dict = field(default_factory=dict)
    features: dict = field(default_factory=dict)

    def add(self, name, key, values):
        self.per_image.setdefault(name, {}).setdefault(key, []).append(np.asarray(values, np.float64))

    def mean(self, name, key):
        return float(np.concatenate(self.per_image[name][key]).mean())


def evaluate_run(run: Run, images: ImageSet | None = None, limit: int = 0, batch_size: int = 100,
                 classifier: FrozenClassifier | None = None, progress: bool = True,
                 vividness: list[float] | None = None, size: int | None = None, degrade: float = 0.0,
                 hints: int = 0) -> dict:
    """Metrics of run and of the gray baseline over `images` (default: the run's evaluation split), at `size`
    px (default: the run's training size).

    degrade: the network sees each photo made an old photo at this strength (degrade.old_photos, seeded by
    the photo's index: the same damage for every model); the gray baseline is the clean photo's.
    hints: a --hints model sees this many colour hints per photo, drawn from its truth (the same for every run).

    The run's row is at its own vividness (config.json), or at the first of `vividness`; with several
    values, result["frontier"] holds a row per value: how PSNR and colourfulness trade as colour grows.
    """
    levels = list(vividness or [run.config.vividness])
    description = None
    if images is None:
        images, description = eval_images(run.config)
    if limit:
        images = images.spread(limit)
    labels = images.labels(classifier.classes) if classifier else None
    if classifier and labels is None:
        log.warning("semantic metrics skipped: the images are not in the classifier's class folders (%s)",
                    ", ".join(classifier.classes))
    size = size or run.config.image_size
    ds = images.examples(size).batch(batch_size)
    acc, seen = _Accumulator(), 0
    bar = progress_bar(ds, total=math.ceil(len(images) / batch_size), unit="batch", disable=not progress,
               desc=f"evaluating {run.name}")
    models = [("model", v) for v in levels]
    for examples in bar:
        seen_gray = None
        if degrade:
            from colorgan.data.degrade import old_photos
            seen_gray = old_photos(tf.cast(examples[..., 3:], tf.float32) / 255.0, degrade,
                                   tf.range(seen, seen + len(examples)))
        out = colorize_examples(run, examples, levels, seen_gray, hints, seen)
        truth = out[TRUTH]
        acc.add(TRUTH, "colourfulness", metrics.colourfulness(truth))
        for name in [GRAY] + models:
            acc.add(name, "psnr", tf.minimum(metrics.psnr(out[name], truth), PSNR_CAP_DB))
            acc.add(name, "ssim", metrics.ssim(out[name], truth))
            acc.add(name, "auc", metrics.ab_auc(out[name], truth))
            acc.add(name, "colourfulness", metrics.colourfulness(out[name]))
        if labels is not None:
            batch_labels = labels[seen:seen + len(truth)]
            for name in [TRUTH, GRAY] + models:
                logits, features = classifier(out[name])
                acc.add(name, "accuracy", tf.cast(tf.argmax(logits, -1).numpy() == batch_labels, tf.float32))
                acc.features.setdefault(name, []).append(features.numpy())
        seen += len(truth)
    if not seen:
        raise ColorganError("no evaluation image could be read")

    def row_of(name):
        row = {key: round(acc.mean(name, key), 4) for key in acc.per_image[name]}
        if labels is not None and name != TRUTH:
            row["frechet"] = round(metrics.frechet_distance(np.concatenate(acc.features[name]),
                                                            np.concatenate(acc.features[TRUTH])), 3)
        return row

    rows = {run.name: row_of(models[0]), GRAY: row_of(GRAY), TRUTH: row_of(TRUTH)}
    result = {"run": str(run.directory), "data": description or "given images", "images": seen,
              "image_size": size, "working_size": run.config.image_size, "model": run.config.model, "vividness": levels[0], "degrade": degrade,
              "hints": hints if hint_channels(run.generator) else 0, "rows": rows,
              "notes": [f"psnr: per image, capped at {PSNR_CAP_DB:.0f} dB, then averaged", "ssim, psnr: RGB in [0, 1]",
                        "auc: ab within t of the truth, t = 0..150 (Zhang et al. 2016)"]}
    if len(levels) > 1:
        result["frontier"] = [{"vividness": v, **(rows[run.name] if i == 0 else row_of(name))}
                              for i, (name, v) in enumerate(zip(models, levels))]
    if labels is not None:
        result["classifier"] = {"test_accuracy": classifier.info.get("test_accuracy"), "path": str(classifier.info.get("data"))}
        result["notes"].append(FD_NOTE)
    return result


def frontier_points(result: dict) -> list[tuple[float, float, float]]:
    """(vividness, PSNR minus the gray photo's, colourfulness / the truth's) for each row of a result's frontier."""
    gray, truth = result["rows"][GRAY], result["rows"][TRUTH]
    return [(row["vividness"], row["psnr"] - gray["psnr"], row["colourfulness"] / truth["colourfulness"])
            for row in result.get("frontier", [])]


def write_frontier_csv(path: Path, results: list[dict]) -> None:
    body = [[Path(r["run"]).name, f"{v:g}", f"{gain:.3f}", f"{colour:.3f}"]
            for r in results for v, gain, colour in frontier_points(r)]
    write_csv(path, ["run", "vividness", "psnr_minus_gray", "colourfulness_vs_truth"], body)


def print_frontier(result: dict) -> None:
    body = [[f"{v:g}", f"{gain:+.2f}", f"{colour:.2f}"] for v, gain, colour in frontier_points(result)]
    print_table(["vividness", "psnr - gray (dB)", "colourfulness / truth"], body)


def save_frontier(path: Path, results: list[dict]) -> None:
    """PSNR gain over the gray photo against colourfulness relative to the truth, one line per run, each point a
    vividness: the upper right is better (more colour without losing fidelity); the target box is marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for result in results:
        points = sorted(frontier_points(result))  # joined in order of vividness
        if not points:
            continue
        v, gain, colour = zip(*points)
        ax.plot(colour, gain, marker="o", label=Path(result["run"]).name)
        for vi, x, y in zip(v, colour, gain):
            ax.annotate(f"{vi:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.axhline(0.0, color="gray", lw=0.8)
    ax.axvline(1.0, color="gray", lw=0.8, ls=":")
    ax.set_xlabel("colourfulness / true colourfulness")
    ax.set_ylabel("PSNR - gray photo's PSNR (dB)")
    ax.set_title("vividness frontier (labels: vividness)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load_classifier_if_any(path: str | os.PathLike | None) -> FrozenClassifier | None:
    """The classifier at path; with no path, the default one if it was trained, else None."""
    if path:
        return FrozenClassifier(path)
    if (DEFAULT_CLASSIFIER_DIR / "classifier.keras").exists():
        return FrozenClassifier(DEFAULT_CLASSIFIER_DIR)
    log.warning("no classifier at %s: semantic metrics (accuracy, frechet) skipped; train one with "
                "python -m colorgan.evaluation.classifier --data /path/to/cifar10", DEFAULT_CLASSIFIER_DIR)
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


def write_comparison(out_dir: Path, results: list[dict], name: str = "table", heading: str = "") -> tuple:
    """One table of several runs' results (in the given order) with the gray baseline and the truth, written
    as <name>.md (with the metric notes), <name>.csv and metrics.json; returns (header, body) to print."""
    rows = {Path(r["run"]).name: r["rows"][Path(r["run"]).name] for r in results}
    sizes = sorted({r["image_size"] for r in results})
    for size in sizes:  # runs are scored at their own size, and the baselines differ with it
        first = next(r for r in results if r["image_size"] == size)
        suffix = f" ({size} px)" if len(sizes) > 1 else ""
        rows[GRAY + suffix], rows[TRUTH + suffix] = first["rows"][GRAY], first["rows"][TRUTH]
    header, body = metric_table(rows)
    notes = "\n".join(f"- {n}" for n in results[0]["notes"])
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / f"{name}.md", (heading + "\n\n" if heading else "") + markdown_table(header, body)
                      + "\n" + notes + "\n")
    write_csv(out_dir / f"{name}.csv", header, body)
    atomic_write_text(out_dir / "metrics.json", json.dumps(results, indent=2) + "\n")
    return header, body


def print_table(header, body) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    for row in [header] + body:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))


# ---- pictures ------------------------------------------------------------------------------------
def history_frame(run_dirs):
    """Long-form loss history of runs: run, epoch, loss, split (train/validation), value."""
    import pandas as pd
    records = []
    for run_dir in run_dirs:
        for row in read_history(Path(run_dir) / "history.csv"):
            for loss in ALL_LOSS_NAMES:
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
    losses = [loss for loss in ALL_LOSS_NAMES if loss in set(frame["loss"])]
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(1, len(losses), figsize=(4.2 * len(losses), 3.6), squeeze=False)
    several = frame["run"].nunique() > 1
    for ax, loss in zip(axes[0], losses):
        part = frame[frame["loss"] == loss]
        sns.lineplot(data=part, x="epoch", y="value", hue="run" if several else "split",
                     style="split" if several else None, marker="o", ax=ax, legend=ax is axes[0][0])
        ax.set_title(LOSS_TITLES[loss], fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
    if axes[0][0].get_legend():
        sns.move_legend(axes[0][0], "upper right", fontsize=8, title=None)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    sns.reset_orig()


def save_report(result: dict, out_dir: Path, run: Run, images: ImageSet | None, samples: int = 8) -> None:
    """metrics.json, loss curves and a sample grid (at the size the result was scored at) in out_dir."""
    from colorgan.viz import save_image_grid
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "metrics.json", json.dumps(result, indent=2) + "\n")
    save_loss_curves(out_dir / "loss_curves.png", [run.directory])
    if images is None:
        images, _ = eval_images(run.config)
    v = result.get("vividness", run.config.vividness)
    out = colorize_examples(run, sample_examples(images, result.get("image_size", run.config.image_size), samples), [v])
    out["model"] = out[("model", v)]
    save_image_grid(out_dir / "samples.png", {"gray": out[GRAY].numpy(), "truth": out[TRUTH].numpy(),
                                              "colorized": out["model"].numpy()}, title=run.name)


def save_compare_grid(path: Path, runs: list[Run], images: ImageSet, samples: int = 8, size: int | None = None) -> None:
    """gray | truth | each run, on the same images at `size` px (default: the first run's training size)."""
    from colorgan.viz import save_image_grid
    size = size or runs[0].config.image_size
    examples = sample_examples(images, size, samples)
    first = colorize_examples(runs[0], examples)
    columns = {"gray": first[GRAY].numpy(), "truth": first[TRUTH].numpy()}
    for run in runs:
        columns[run.name] = colorize_examples(run, examples)["model"].numpy()
    save_image_grid(path, columns)


def gray_baseline_l1(dataset: tf.data.Dataset, color_space: str = "lab") -> float:
    """L1 of the 'keep the gray image' prediction (ab = 0 in Lab) on (input, target) batches: the bar to beat."""
    total, count = 0.0, 0
    for gray, target in dataset:
        baseline = tf.zeros_like(target) if color_space == "lab" else tf.concat([gray] * 3, axis=-1)
        total += float(l1_loss(target, baseline)) * int(tf.size(target))
        count += int(tf.size(target))
    return total / max(count, 1)

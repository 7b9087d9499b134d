"""A small CIFAR-10 classifier, trained once on true colour images, for the semantic metrics of evaluate.py.

A colorization is semantically plausible if a classifier trained on real colour photos still recognises
the object in it. Its penultimate layer ("features", 256 values) also gives a Frechet distance between
colorized and true images: FID's formula with this network instead of Inception, whose weights cannot be
downloaded everywhere. Figures from it are comparable with each other, not with published FIDs.

    python -m colorgan.evaluation.classifier --data /path/to/cifar10 --epochs 15
writes checkpoints/classifier-cifar10/{classifier.keras, info.json}.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from colorgan.cli import OneLineErrorParser, import_tensorflow_quietly

# `python -m colorgan.evaluation.classifier` runs this module before its main(): TF's start-up lines stay off
# the terminal.
import_tensorflow_quietly()
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

from colorgan.runtime import PRECISION_POLICIES, default_precision  # noqa: E402
from colorgan.data.sources import color_images, resolve_data_path  # noqa: E402
from colorgan.data.scan import report_skipped  # noqa: E402
from colorgan.errors import ColorganError  # noqa: E402
from colorgan.atomic import atomic_save, atomic_write_text  # noqa: E402

log = logging.getLogger("colorgan")
DEFAULT_DIR = Path("checkpoints") / "classifier-cifar10"
FEATURES_LAYER = "features"


def Classifier(num_classes: int = 10, width: int = 64) -> keras.Model:
    """VGG-style CNN for 32x32 RGB in [0, 1]: three conv pairs with pooling, then 256 features."""
    inputs = keras.Input((32, 32, 3), name="rgb")
    x = layers.Rescaling(2.0, offset=-1.0)(inputs)  # [0, 1] -> [-1, 1]
    for i, f in enumerate((width, 2 * width, 4 * width)):
        for j in range(2):
            x = layers.Conv2D(f, 3, padding="same", use_bias=False, name=f"conv{i + 1}_{j + 1}")(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)  # 32 -> 16 -> 8 -> 4
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(256, activation="relu", name=FEATURES_LAYER)(x)
    x = layers.Dropout(0.3)(x)
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name="cifar_classifier")


def labelled_images(folder: Path, classes: list[str]) -> tuple[list[str], np.ndarray]:
    """The colour images of folder/<class>/ (one scan, one report of what was skipped) and their class indices."""
    images, skipped = color_images(folder, classes)
    report_skipped(skipped)
    labels = [classes.index(Path(p).relative_to(folder).parts[0]) for p in images.color]
    return list(images.color), np.array(labels, np.int32)


def _dataset(paths, labels, batch_size: int, train: bool, seed: int = 0) -> tf.data.Dataset:
    def load(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32), (32, 32)) / 255.0
        return image, label

    def augment(image, label):  # mirror and shift by up to 4 px, the usual CIFAR augmentation
        image = tf.image.random_flip_left_right(image)
        image = tf.image.random_crop(tf.pad(image, [[4, 4], [4, 4], [0, 0]], mode="REFLECT"), (32, 32, 3))
        return image, label

    ds = tf.data.Dataset.from_tensor_slices((paths, labels)).map(load, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.cache()  # files were checked by the scan; a known length keeps epochs exact
    if train:
        ds = ds.shuffle(len(paths), seed=seed).map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def train_classifier(data: str, out_dir: str | Path = DEFAULT_DIR, epochs: int = 15, batch_size: int = 128,
                     width: int = 64, seed: int = 0, verbose: int | None = None) -> Path:
    root = resolve_data_path(data)
    if root is None or not (root / "train").is_dir() or not (root / "test").is_dir():
        raise ColorganError(f"--data {data}: need a folder with train/<class>/ and test/<class>/ image folders")
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    train_paths, train_labels = labelled_images(root / "train", classes)
    test_paths, test_labels = labelled_images(root / "test", classes)
    log.info("classifier: %d classes, %d training and %d test images", len(classes), len(train_paths),
             len(test_paths))
    keras.utils.set_random_seed(seed)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[default_precision()])
    try:
        model = Classifier(len(classes), width)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    steps = epochs * int(np.ceil(len(train_paths) / batch_size))
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, steps)),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
                  jit_compile=False)
    test_ds = _dataset(test_paths, test_labels, 256, train=False)
    model.fit(_dataset(train_paths, train_labels, batch_size, train=True, seed=seed), epochs=epochs,
              validation_data=test_ds, shuffle=False, verbose=verbose if verbose is not None else (1 if sys.stdout.isatty() else 2))
    _, accuracy = model.evaluate(test_ds, verbose=0)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_save(out_dir / "classifier.keras", lambda tmp: model.save(tmp))
    atomic_write_text(out_dir / "info.json", json.dumps(
        {"classes": classes, "test_accuracy": round(float(accuracy), 4), "epochs": epochs, "data": str(root),
         "train_images": len(train_paths), "test_images": len(test_paths)}, indent=2) + "\n")
    log.info("classifier: test accuracy %.4f, saved to %s", accuracy, out_dir)
    return out_dir


class FrozenClassifier:
    """A trained classifier: class names, logits and penultimate features of RGB images in [0, 1]."""

    def __init__(self, directory: str | Path):
        directory = Path(directory)
        try:
            self.info = json.loads((directory / "info.json").read_text())
            model = keras.models.load_model(directory / "classifier.keras", compile=False)
        except (OSError, ValueError) as e:
            raise ColorganError(f"{directory}: not a trained classifier ({e})") from None
        self.classes = list(self.info["classes"])
        self.model = keras.Model(model.inputs, [model.output, model.get_layer(FEATURES_LAYER).output])

    def __call__(self, rgb):
        """RGB [N, H, W, 3] in [0, 1] (resized to 32x32) -> (logits [N, C], features [N, 256])."""
        rgb = tf.image.resize(tf.cast(rgb, tf.float32), (32, 32), antialias=True)
        logits, features = self.model(rgb, training=False)
        return tf.cast(logits, tf.float32), tf.cast(features, tf.float32)


def main(argv=None) -> int:
    parser = OneLineErrorParser(prog="python -m colorgan.evaluation.classifier",
                                description="Train the CIFAR-10 classifier used by evaluate.py's semantic metrics.")
    parser.add_argument("--data", default="cifar10", help="folder with train/<class>/ and test/<class>/ "
                        "(default: 'cifar10', as given or under data/)")
    parser.add_argument("--out", default=str(DEFAULT_DIR), help="where to save it (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=15, help="default: %(default)s")
    parser.add_argument("--batch-size", type=int, default=128, help="default: %(default)s")
    parser.add_argument("--width", type=int, default=64, help="channels of the first conv layers (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.width < 1:
        raise ColorganError("--epochs, --batch-size and --width must be at least 1")
    train_classifier(args.data, args.out, args.epochs, args.batch_size, args.width, args.seed)
    return 0


if __name__ == "__main__":
    from colorgan.cli import run_main, setup_logging
    setup_logging()
    run_main("python -m colorgan.evaluation.classifier", main)

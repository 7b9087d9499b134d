"""The images of a split, wherever they are (ImageSet), and a --data's two splits (DataSource).

Training, evaluation and the tf.data pipelines use only the ImageSet interface, so none needs to know whether the
images are files (FileImages), arrays in memory (ArrayImages), several sets joined (JoinedImages) or prepared
TFRecord shards (ShardImages, in shards.py). These live apart from data.py so that data.py, which finds images on
disk, and shards.py, which reads the prepared ones, both build on them without importing each other.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from colorgan.data.examples import load_example, resize_example, stack_with_gray
from colorgan.data.image_files import inspect_image
from colorgan.data.scan import IMAGE_EXTENSIONS
from colorgan.errors import ColorganError


class ImageSet(abc.ABC):
    """The images of one split, on disk (FileImages) or in memory (ArrayImages).

    Consumers use only this interface, so none needs to know where the images are.
    """

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def subset(self, indices) -> ImageSet:
        """The images at `indices`, in that order, as the same kind of set."""

    def spread(self, count: int) -> ImageSet:
        """`count` images spread evenly over the set (the whole set if it is no larger): a split sorted by
        class keeps every class, where its first `count` images might all be of one."""
        if count >= len(self):
            return self
        return self.subset(np.unique(np.linspace(0, len(self) - 1, count).round().astype(int)))

    @abc.abstractmethod
    def _decoded(self, size: int) -> tf.data.Dataset:
        """uint8 [H, W, 4] (RGB + gray) examples at their own size; `size` is only a hint for decoding."""

    @abc.abstractmethod
    def max_side(self) -> int:
        """The longer side in pixels of the images (of the first one: a set's images are taken to share a size)."""

    @abc.abstractmethod
    def labels(self, classes: list[str]) -> np.ndarray | None:
        """Class index of each image in `classes`, or None if some image has no known class."""

    def examples(self, size: int) -> tf.data.Dataset:
        """Decoded, resized uint8 [size, size, 4] (RGB + gray) examples; files that fail to decode are skipped."""
        ds = self._decoded(size).map(lambda x: resize_example(x, size), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.ignore_errors()  # files were checked by the scan; one that changed since is named and dropped


@dataclass
class FileImages(ImageSet):
    """Image files: colour paths, their paired gray paths (None: gray derived from colour), and per file
    (pair) whether TensorFlow's decoders read it the same as Pillow (`plain`; None: all through Pillow)."""
    color: list[str] = field(default_factory=list)
    gray: list[str] | None = None
    plain: list[bool] | None = None

    def __len__(self) -> int:
        return len(self.color)

    def subset(self, indices) -> FileImages:
        indices = [int(i) for i in indices]
        pick = lambda values: None if values is None else [values[i] for i in indices]
        return FileImages(color=pick(self.color), gray=pick(self.gray), plain=pick(self.plain))

    def _decoded(self, size: int) -> tf.data.Dataset:
        # Typed constants: an empty list would otherwise become a float tensor.
        color = tf.constant(self.color, tf.string)
        plain = tf.constant(self.plain if self.plain is not None else [False] * len(self), tf.bool)
        if self.gray is None:
            return tf.data.Dataset.from_tensor_slices((color, plain)).map(
                lambda c, p: load_example(c, min_size=size, plain=p), num_parallel_calls=tf.data.AUTOTUNE)
        return tf.data.Dataset.from_tensor_slices((color, tf.constant(self.gray, tf.string), plain)).map(
            lambda c, g, p: load_example(c, g, min_size=size, plain=p), num_parallel_calls=tf.data.AUTOTUNE)

    def max_side(self) -> int:
        info = inspect_image(self.color[0])
        return max(info.width, info.height)

    def labels(self, classes: list[str]) -> np.ndarray | None:
        """Class index of each image from its folder name, or None if some image has no known class."""
        folders = [Path(p).parent.name for p in self.color]
        labels = [classes.index(f) if f in classes else -1 for f in folders]
        return None if min(labels, default=-1) < 0 else np.array(labels)


@dataclass(eq=False)
class ArrayImages(ImageSet):
    """Images in memory: uint8 [N, H, W, 3], e.g. from keras.datasets (gray derived from colour)."""
    array: np.ndarray

    def __len__(self) -> int:
        return len(self.array)

    def subset(self, indices) -> ArrayImages:
        return ArrayImages(self.array[[int(i) for i in indices]])

    def _decoded(self, size: int) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices(self.array).map(stack_with_gray,
                                                                  num_parallel_calls=tf.data.AUTOTUNE)

    def max_side(self) -> int:
        return max(self.array.shape[1:3])

    def labels(self, classes: list[str]) -> np.ndarray | None:
        return None  # an array carries no folder names


@dataclass(eq=False)
class JoinedImages(ImageSet):
    """Several sets as one (--more-data): the images of each part in turn. `weights` (one per part, adding up to
    1): training draws from each part at its weight (pipeline.train_dataset) instead of from the joined set;
    a subset is a plain joined set."""
    parts: list[ImageSet]
    weights: list[float] | None = None

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def _locate(self, index: int) -> tuple[int, int]:
        for part, images in enumerate(self.parts):
            if index < len(images):
                return part, index
            index -= len(images)
        raise IndexError(index)

    def subset(self, indices) -> JoinedImages:
        # Runs of consecutive indices in the same part stay one subset, so the order is kept.
        runs: list[tuple[int, list[int]]] = []
        for index in indices:
            part, local = self._locate(int(index))
            if runs and runs[-1][0] == part:
                runs[-1][1].append(local)
            else:
                runs.append((part, [local]))
        return JoinedImages([self.parts[part].subset(local) for part, local in runs])

    def _decoded(self, size: int) -> tf.data.Dataset:
        parts = [p._decoded(size) for p in self.parts if len(p)]
        ds = parts[0]
        for other in parts[1:]:
            ds = ds.concatenate(other)
        return ds

    def max_side(self) -> int:
        return max(p.max_side() for p in self.parts if len(p))

    def labels(self, classes: list[str]) -> np.ndarray | None:
        labels = [p.labels(classes) for p in self.parts]
        return None if any(l is None for l in labels) else np.concatenate(labels)


@dataclass
class DataSource:
    """A --data as training uses it: its training and validation images, and the files left out."""
    name: str  # short name, used in default run names
    description: str
    train: ImageSet
    val: ImageSet
    default_image_size: int
    skipped: list[str] = field(default_factory=list)  # "path: reason", one per file left out
    parts: list["DataSource"] = field(default_factory=list)  # --more-data: each distinct source, scored apart


def check_has_training_images(path, train: ImageSet, skipped: list[str], flag: str = "--data") -> None:
    if len(train) == 0:
        example = f" ({skipped[0]}" + (", ..." if len(skipped) > 1 else "") + ")" if skipped else ""
        raise ColorganError(f"{flag} {path}: no usable training images ({', '.join(IMAGE_EXTENSIONS)}); "
                            f"{len(skipped)} files skipped{example}")

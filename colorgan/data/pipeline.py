"""The tf.data side of the data: jitter, old-photo damage, caching and batching of the examples of an ImageSet.

Every example moves through the pipeline as one uint8 tensor [H, W, 4] (RGB + gray), so the random crop
and mirror of the jitter are identical for input and target by construction. Each op works eagerly and
inside `tf.data.Dataset.map`.
"""
from __future__ import annotations

import math

import tensorflow as tf

from colorgan.color.lab import to_model_io
from colorgan.data.degrade import degrade_example
from colorgan.data.image_sets import ImageSet

# Decoded training sets below this size are cached in memory (uint8 at the training size).
CACHE_LIMIT_BYTES = 4 * 1024 ** 3
SHUFFLE_BUFFER = 10_000  # decoded training images held for shuffling (all of a --more-data mix's sources together)
JITTER_SCALE = 1.12  # pix2pix: 256 -> 286, then a random 256 crop
# A prime: the mid-epoch data-order seeds (seed + this * (epoch + 1) + step) lie apart from the
# epoch-boundary ones (seed + epoch); see data_order_seed.
MID_EPOCH_SEED_STRIDE = 7919
JITTER_SEED_SALT = 0x6A17  # the second seed of the jitter seeds' random stream (see with_jitter_seeds)
DEGRADE_SALT = 0x01D  # folded into an example's jitter seed for its old-photo damage


# ---- data ops (work eagerly and inside tf.data.map) ------------------------------------------
def random_jitter(example, size: int, seed):
    """pix2pix jitter on [size, size, C]: resize up ~12%, random crop back to size, random mirror.

    Stateless ops with a per-example seed ([2] ints): the same seed gives the same crop and mirror,
    however many threads the pipeline maps with.
    """
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    big = int(round(size * JITTER_SCALE))
    example = tf.image.resize(tf.cast(example, tf.float32), (big, big), method="nearest")
    example = tf.image.stateless_random_crop(example, (size, size, example.shape[-1]), seed=crop_seed)
    example = tf.image.stateless_random_flip_left_right(example, seed=flip_seed)
    return tf.cast(example, tf.uint8)


def augment(example, size: int, seed, jitter: bool, degrade: float):
    """The training augmentations of one example: the jitter (seed as given, so runs without --degrade draw
    what they always drew), then the old-photo damage of the gray channel (its own seed, folded from it)."""
    if jitter:
        example = random_jitter(example, size, seed)
    if degrade:
        example = degrade_example(example, degrade, tf.random.experimental.stateless_fold_in(seed, DEGRADE_SALT))
    return example


def example_to_model_io(example, color_space: str):
    """uint8 [..., 4] (RGB + gray) -> (model input [..., 1], target [..., 2 or 3]), both in [-1, 1]."""
    x = tf.cast(example, tf.float32) / 255.0
    return to_model_io(x[..., :3], x[..., 3:], color_space)


# ---- pipelines --------------------------------------------------------------------------------
def _maybe_cache(ds: tf.data.Dataset, n: int, size: int) -> tf.data.Dataset:
    return ds.cache() if n * size * size * 4 <= CACHE_LIMIT_BYTES else ds


def steps_per_pass(n: int, batch_size: int) -> int:
    """Batches in one pass over n training images (the ragged last batch is dropped if n >= batch)."""
    return max(1, n // batch_size)


def data_order_seed(seed: int, epoch: int, step: int = 0) -> int:
    """The shuffle and jitter seed of a `fit` that starts `step` steps into epoch `epoch` (0-based: epochs done).

    At an epoch boundary (step 0) it is `seed + epoch`, so a resumed run starts a fresh data order
    instead of replaying the first epoch's. In the middle of an epoch (an interrupted one being
    finished) it is `seed + MID_EPOCH_SEED_STRIDE * (epoch + 1) + step`: the rest of that epoch gets
    an order of its own, distinct from every epoch-boundary one.
    """
    if step == 0:
        return seed + epoch
    return seed + MID_EPOCH_SEED_STRIDE * (epoch + 1) + step


def with_jitter_seeds(ds: tf.data.Dataset, seed: int) -> tf.data.Dataset:
    """(example, [2] int64 seed for random_jitter) pairs: the k-th example of `ds` gets the k-th draw of a random
    stream fixed by `seed`, so a seed gives the same jitter in every run, however many threads jitter.

    The draws come from a seeded (stateful) random op in a sequential map: tf.data calls it once per element,
    in order. Not a second source zipped in (Dataset.random) nor a Dataset.scan counter: tf.distribute's FILE
    auto-sharding, which lets each worker read its own shard files, walks the pipeline back from its end to the
    files and stops at both.
    """
    def draw(example):
        # The raw op takes both seeds as they are (tf.random.uniform would mix in the global seed, which Keras sets);
        # seed2 is a fixed non-zero salt: seed and seed2 both 0 would mean "unseeded" to TensorFlow.
        seeds = tf.raw_ops.RandomUniformInt(shape=[2], minval=tf.constant(tf.int64.min, tf.int64),
                                            maxval=tf.constant(tf.int64.max, tf.int64), seed=int(seed),
                                            seed2=JITTER_SEED_SALT)
        return example, seeds
    return ds.map(draw)  # sequential on purpose (tf.data parallelises only stateless maps): draws in element order


def train_dataset(images: ImageSet, *, size: int, batch_size: int, color_space: str, jitter: bool,
                  seed: int, degrade: float = 0.0) -> tf.data.Dataset:
    """Endless shuffled (and with `jitter`, jittered) batches of (model input, target) at `size` px; with
    `degrade` P, each gray input made an old photo with probability P (degrade.degrade_example), seeded
    like the jitter.

    One pass is `steps_per_pass(len(images), batch_size)` steps. Repeating with a step count keeps
    the epoch length exact: Keras runs one step too many on a dataset of unknown length (and files
    that fail to decode make the length unknown).
    """
    weights = getattr(images, "weights", None)
    if weights:  # a weighted mix (--more-data DIR:W): each source shuffled apart, then drawn at its weight
        budget, streams = CACHE_LIMIT_BYTES, []
        buffer = max(1000, SHUFFLE_BUFFER // len(images.parts))  # the buffers hold decoded images: share one size
        for part in images.parts:
            n, ds = len(part), part.examples(size)
            if n * size * size * 4 <= budget:  # the cache budget is shared too, first come first served
                ds, budget = ds.cache(), budget - n * size * size * 4
            streams.append(ds.shuffle(min(n, buffer), seed=seed, reshuffle_each_iteration=True).repeat())
        ds = tf.data.Dataset.sample_from_datasets(streams, weights, seed=seed)
    else:
        n = len(images)
        ds = _maybe_cache(images.examples(size), n, size)
        ds = ds.shuffle(min(n, SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True).repeat()
    if jitter or degrade:
        ds = with_jitter_seeds(ds, seed).map(lambda x, s: augment(x, size, s, jitter, degrade),
                                             num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(lambda x: example_to_model_io(x, color_space), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def eval_dataset(images: ImageSet, *, size: int, batch_size: int, color_space: str,
                 limit: int = 0) -> tf.data.Dataset:
    """Validation/evaluation batches of (model input, target) in a fixed order, no jitter, one pass
    (over the first `limit` images if given)."""
    ds = images.examples(size)
    if limit:
        ds = ds.take(limit)
    ds = _maybe_cache(ds, len(images), size)
    ds = ds.batch(batch_size).map(lambda x: example_to_model_io(x, color_space),
                                  num_parallel_calls=tf.data.AUTOTUNE)
    # Keras' evaluate() drops its validation iterator every epoch. With autotuning on, deleting it waits
    # for tf.data's tuning thread to finish its sleep, a stall in every other epoch; validation is small
    # and needs no tuning.
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def eval_steps(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))


def sample_examples(images: ImageSet, size: int, count: int) -> tf.Tensor:
    """`count` fixed images spread evenly over `images`, as uint8 [N, size, size, 4] (RGB + gray).

    N is `count`, or less when the set is smaller or a file fails to decode. For model input and
    target: `example_to_model_io(examples, color_space)`.
    """
    return next(iter(images.spread(count).examples(size).batch(count)))

"""Zhang et al. (2016) colour classification ops (colorgan.color.ab_classes) and the colourfulness loss."""
import math

import numpy as np
import pytest
import tensorflow as tf

from colorgan.color import ab_classes as ac
from colorgan.training import losses
from colorgan.evaluation import metrics
from colorgan.data.image_files import GRAY_CHROMA
from colorgan.color.lab import rgb_to_lab
from colorgan.data.image_files import read_rgb
from conftest import sample_images

E2 = math.exp(-2.0)  # Gaussian weight, sigma 5, of a bin one grid step (10) further away: exp(-100 / 50)


@pytest.fixture(scope="module")
def bins():
    return ac.ab_bins()


def index_of(bins, a, b):
    (hit,) = np.flatnonzero((bins[:, 0] == a) & (bins[:, 1] == b))
    return int(hit)


def in_map(fn, *args):
    """fn(*args) computed inside tf.data.Dataset.map (args batched as one element)."""
    ds = tf.data.Dataset.from_tensors(tuple(tf.constant(a) for a in args)).map(fn)
    return next(iter(ds))


# ---- bins ----------------------------------------------------------------------------------------
def test_bins_are_the_grid_cells_every_8bit_srgb_colour_reaches(bins):
    assert bins.shape == (261, 2) and bins.dtype == np.float32
    assert ac.ab_bins() is bins  # computed once per process
    np.testing.assert_array_equal(bins % 10, 0)
    assert len(np.unique(bins, axis=0)) == len(bins)
    assert bins.min() >= -110 and bins.max() <= 110  # inside Zhang's -110..110 grid
    # The cells reached by all 256^3 colours (not just the cube's surface, as ab_bins samples): the same set.
    v = tf.range(256, dtype=tf.float32) / 255.0
    reached = np.zeros(64 * 64, bool)
    for r in range(0, 256, 64):
        ab = rgb_to_lab(tf.stack(tf.meshgrid(v[r:r + 64], v, v, indexing="ij"), axis=-1))[..., 1:]
        cell = tf.cast(tf.floor(ab / 10.0 + 0.5), tf.int32) + 32
        reached |= tf.math.bincount(tf.reshape(cell[..., 0] * 64 + cell[..., 1], [-1]),
                                    minlength=4096, maxlength=4096).numpy() > 0
    cells = (bins / 10).astype(int) + 32
    expected = np.zeros(64 * 64, bool)
    expected[cells[:, 0] * 64 + cells[:, 1]] = True
    np.testing.assert_array_equal(reached, expected)


def test_bins_first_computed_inside_a_traced_function(monkeypatch, bins):
    monkeypatch.setattr(ac, "_BINS", None)
    traced = tf.function(lambda x: x + tf.constant(ac.ab_bins())[0])
    traced(tf.zeros([2]))
    np.testing.assert_array_equal(ac.ab_bins(), bins)


def test_known_colours_land_in_their_bins(bins):
    rgb = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0.5, 0.5, 0.5], [1, 1, 1], [0, 0, 0]], "float32")
    expected = [(80, 70), (-90, 80), (80, -110), (-20, 90), (0, 0), (0, 0), (0, 0)]  # ab rounded to 10
    idx = ac.nearest_bin(rgb_to_lab(rgb)[..., 1:], bins).numpy()
    assert [tuple(bins[i].astype(int)) for i in idx] == expected


# ---- soft encoding -------------------------------------------------------------------------------
def test_soft_encode_on_a_bin_centre(bins):
    z = ac.soft_encode(np.array([[0.0, 0.0]], "float32"), bins).numpy()[0]
    assert z.shape == (len(bins),) and z.dtype == np.float32
    centre = 1.0 / (1.0 + 4 * E2)
    assert z[index_of(bins, 0, 0)] == pytest.approx(centre, rel=1e-5)
    for a, b in [(10, 0), (-10, 0), (0, 10), (0, -10)]:
        assert z[index_of(bins, a, b)] == pytest.approx(E2 * centre, rel=1e-5)
    assert np.count_nonzero(z) == 5


def test_soft_encode_gaussian_ratios_off_centre(bins):
    # ab = (33, 44): squared distances to (30, 40) 25, (30, 50) 45, (40, 40) 65, (40, 50) 85, (20, 40) 185.
    z = ac.soft_encode(np.array([33.0, 44.0], "float32"), bins).numpy()
    d2 = {(30, 40): 25, (30, 50): 45, (40, 40): 65, (40, 50): 85, (20, 40): 185}
    g = {k: math.exp(-v / 50.0) for k, v in d2.items()}
    expected = np.zeros(len(bins))
    for (a, b), gk in g.items():
        expected[index_of(bins, a, b)] = gk / sum(g.values())
    np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-7)
    # sigma enters as exp(-d^2 / (2 sigma^2)): sigma 10 flattens the ratios.
    z10 = ac.soft_encode(np.array([33.0, 44.0], "float32"), bins, sigma=10.0).numpy()
    ratio = z10[index_of(bins, 30, 50)] / z10[index_of(bins, 30, 40)]
    assert ratio == pytest.approx(math.exp(-20 / 200.0), rel=1e-5)
    assert np.count_nonzero(ac.soft_encode(np.array([33.0, 44.0], "float32"), bins, neighbours=3)) == 3


def test_soft_encode_of_real_photo_pixels(bins):
    photos = np.stack([read_rgb(p) for p in sample_images(4)]).astype("float32") / 255.0
    ab = rgb_to_lab(photos)[..., 1:]  # [4, 32, 32, 2]
    z = ac.soft_encode(ab, bins).numpy()
    assert z.shape == (4, 32, 32, len(bins))
    np.testing.assert_allclose(z.sum(-1), 1.0, atol=1e-5)
    assert np.all(np.count_nonzero(z, axis=-1) == 5)
    np.testing.assert_array_equal(z.argmax(-1), ac.nearest_bin(ab, bins).numpy())  # nearest bin weighs most
    np.testing.assert_allclose(in_map(lambda x: ac.soft_encode(x, bins), ab.numpy()).numpy(), z, atol=1e-6)
    # Far outside the gamut: still a distribution (softmax, no 0 / 0).
    far = ac.soft_encode(np.array([300.0, -300.0], "float32"), bins).numpy()
    assert np.all(np.isfinite(far)) and far.sum() == pytest.approx(1.0, abs=1e-6)


# ---- class rebalancing ---------------------------------------------------------------------------
def test_smoothing_spreads_a_spike_to_its_neighbours(bins):
    p = np.zeros(len(bins))
    p[index_of(bins, 0, 0)] = 1.0
    smooth = ac.smooth_distribution(p, bins)
    assert smooth.sum() == pytest.approx(1.0)
    for a, b in [(10, 0), (0, -10)]:
        assert smooth[index_of(bins, 0, 0)] / smooth[index_of(bins, a, b)] == pytest.approx(math.e ** 2)
    assert smooth[index_of(bins, 10, 10)] / smooth[index_of(bins, 0, 0)] == pytest.approx(math.exp(-4))
    # At the gamut's edge too, the mass stays 1 (the bin's own neighbourhood is normalised, not its neighbours').
    edge = np.zeros(len(bins))
    edge[index_of(bins, -90, 80)] = 0.3
    edge[index_of(bins, 80, -110)] = 0.7
    assert ac.smooth_distribution(edge, bins).sum() == pytest.approx(1.0, rel=1e-12)


def test_rebalancing_weights_on_a_hand_made_histogram(bins):
    q = len(bins)
    counts = np.zeros(q)
    common, rare = index_of(bins, 0, 0), index_of(bins, 50, 50)
    counts[common], counts[rare] = 990, 10
    w = ac.rebalancing_weights(counts, bins)
    assert w.shape == (q,) and w.dtype == np.float32
    assert w[rare] > w[common]
    smooth = ac.smooth_distribution(counts / counts.sum(), bins)
    assert float((smooth * w).sum()) == pytest.approx(1.0, rel=1e-5)  # E_p~[w] = 1
    unnormalised = 1.0 / (0.5 * smooth + 0.5 / q)
    np.testing.assert_allclose(w, unnormalised / (smooth * unnormalised).sum(), rtol=1e-5)
    assert w.max() == pytest.approx(w[np.argmin(smooth)], rel=1e-6)  # a bin never seen: the largest weight
    # mix = 1: uniform, every weight 1; mix = 0: w = 1 / (Q p~), rare colours dominate.
    np.testing.assert_allclose(ac.rebalancing_weights(counts, bins, mix=1.0), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="mix"):  # bins far from both counted ones: p~ = 0
        ac.rebalancing_weights(counts, bins, mix=0.0)
    everywhere = counts + 1.0
    smooth_everywhere = ac.smooth_distribution(everywhere / everywhere.sum(), bins)
    w0 = ac.rebalancing_weights(everywhere, bins, mix=0.0)
    np.testing.assert_allclose(w0, 1.0 / (q * smooth_everywhere), rtol=1e-4)
    # The same from the ab pixels themselves (each assigned to its nearest bin).
    pixels = np.concatenate([np.tile([[1.0, -2.0]], (990, 1)), np.tile([[48.0, 53.0]], (10, 1))]).astype("float32")
    np.testing.assert_allclose(ac.rebalancing_weights(pixels.reshape(10, 100, 2), bins), w, rtol=1e-6)
    with pytest.raises(ValueError):
        ac.rebalancing_weights(np.zeros(q), bins)


def uint8_example(rgb, size=4):
    """A flat uint8 [size, size, 4] example (RGB + BT.601 gray), as colorgan.data.sources's pipelines make."""
    rgb = np.array(rgb, "float32")
    gray = rgb @ np.array([0.299, 0.587, 0.114], "float32")
    return np.tile(np.round(np.append(rgb, gray)).astype("uint8"), (size, size, 1))


def test_ab_histogram_leaves_out_images_without_colour(bins):
    red, blue = uint8_example([255, 0, 0]), uint8_example([0, 0, 255])
    gray = uint8_example([120, 120, 120])
    near_gray = uint8_example([120, 120, 120])
    near_gray[0, :, 0] = 122  # mean |R-G| + |G-B| = 2 * 4 / 16 = 0.5 < GRAY_CHROMA (1.0): no colour
    faint = uint8_example([120, 120, 120])
    faint[:2, :, 0] = 122  # mean chroma 2 * 8 / 16 = 1.0: counted
    ds = tf.data.Dataset.from_tensor_slices(np.stack([red, gray, blue, near_gray, faint]))
    counts, n_colour, n_gray = ac.ab_histogram(ds, bins, GRAY_CHROMA)
    assert (n_colour, n_gray) == (3, 2)
    assert counts.dtype == np.int64 and counts.sum() == 3 * 16
    assert counts[index_of(bins, 80, 70)] == 16 and counts[index_of(bins, 80, -110)] == 16
    assert counts[index_of(bins, 0, 0)] == 16  # faint's pixels, all nearly neutral
    batched = ac.ab_histogram(ds.batch(2), bins, GRAY_CHROMA)  # batches of examples, the ragged last one included
    np.testing.assert_array_equal(batched[0], counts)
    assert batched[1:] == (3, 2)
    w = ac.rebalancing_weights(counts, bins)
    assert w[index_of(bins, -90, 80)] > w[index_of(bins, 80, 70)]  # green never seen: rarer than red


def test_ab_histogram_on_real_photos_matches_their_pixels(bins):
    photos = np.stack([read_rgb(p) for p in sample_images(6)])  # [6, 32, 32, 3] uint8, colour
    gray = np.repeat(np.round(photos @ np.array([0.299, 0.587, 0.114])).astype("uint8")[..., None], 3, -1)
    ds = tf.data.Dataset.from_tensor_slices(np.concatenate([photos, gray]))
    counts, n_colour, n_gray = ac.ab_histogram(ds, bins, GRAY_CHROMA)
    assert (n_colour, n_gray) == (6, 6)
    idx = ac.nearest_bin(rgb_to_lab(photos.astype("float32") / 255.0)[..., 1:], bins).numpy()
    np.testing.assert_array_equal(counts, np.bincount(idx.ravel(), minlength=len(bins)))


# ---- annealed mean -------------------------------------------------------------------------------
def hand_made_logits(bins):
    """log p with p = 0.6 at (40, 20), 0.4 at (-30, 10), (essentially) 0 elsewhere."""
    logits = np.full(len(bins), -1e4, "float32")
    i, j = index_of(bins, 40, 20), index_of(bins, -30, 10)
    logits[i], logits[j] = math.log(0.6), math.log(0.4)
    return logits


def test_annealed_mean_from_mode_to_mean(bins):
    logits = hand_made_logits(bins)
    mode, mean = np.array([40.0, 20.0]), 0.6 * np.array([40.0, 20.0]) + 0.4 * np.array([-30.0, 10.0])
    np.testing.assert_allclose(ac.annealed_mean(logits, bins, 1.0).numpy(), mean, atol=1e-3)
    np.testing.assert_allclose(ac.annealed_mean(logits, bins, 0.0).numpy(), mode, atol=1e-4)
    np.testing.assert_allclose(ac.annealed_mean(logits, bins, 0.01).numpy(), mode, atol=1e-4)
    # T = 0.5: p^2, renormalised: 0.36 / 0.52 and 0.16 / 0.52.
    half = (0.36 * np.array([40.0, 20.0]) + 0.16 * np.array([-30.0, 10.0])) / 0.52
    np.testing.assert_allclose(ac.annealed_mean(logits, bins, 0.5).numpy(), half, atol=1e-3)
    default = ac.annealed_mean(logits, bins).numpy()  # T = 0.38: between, nearer the mode
    assert np.linalg.norm(default - mode) < np.linalg.norm(half - mode) < np.linalg.norm(mean - mode)
    # A full distribution at T = 1: the mean of the softmax.
    rand = np.random.default_rng(0).normal(0, 2, (3, 5, len(bins))).astype("float32")
    p = np.exp(rand - rand.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(ac.annealed_mean(rand, bins, 1.0).numpy(), p @ bins, atol=1e-3)


def test_annealed_mean_dtypes_tensor_temperature_and_tf_data(bins):
    logits = np.random.default_rng(1).normal(0, 3, (2, 4, 4, len(bins))).astype("float32")
    ref = ac.annealed_mean(logits, bins).numpy()
    out16 = ac.annealed_mean(tf.cast(logits, tf.bfloat16), bins)
    assert out16.dtype == tf.float32 and out16.shape == (2, 4, 4, 2)
    np.testing.assert_allclose(out16.numpy(), ref, atol=3.0)  # bf16 logits carry ~0.02 of error
    t = tf.Variable(0.38)
    step = tf.function(lambda x: ac.annealed_mean(x, bins, t))
    np.testing.assert_allclose(step(logits).numpy(), ref, atol=1e-4)
    t.assign(1.0)
    np.testing.assert_allclose(step(logits).numpy(), ac.annealed_mean(logits, bins, 1.0).numpy(), atol=1e-4)
    np.testing.assert_allclose(in_map(lambda x: ac.annealed_mean(x, bins), logits).numpy(), ref, atol=1e-4)


def test_logits_head_from_regression_sits_on_the_regression_colour(bins):
    """A 1x1 regression layer (ab/110 = tanh(K x + b)) turned into logits: their mean (T = 1) is the regression's
    ab before the tanh, their mode the bin nearest to it, and a sharper temperature stays near it."""
    rng = np.random.default_rng(5)
    c = 6
    kernel = rng.normal(0, 0.1, (1, 1, 2, c))  # Conv2DTranspose layout [kh, kw, out, in]
    bias = np.array([0.05, -0.1])
    x = rng.normal(0, 1, (50, c))
    a = 110 * (x @ kernel[0, 0].T + bias)  # [50, 2], Lab units
    # where every bin within 3 sigma (30) of a exists, the Gaussian is not cut off by the gamut's edge
    grid = np.stack(np.meshgrid(np.arange(-40, 41, 10), np.arange(-40, 41, 10)), -1).reshape(-1, 2)
    have = {tuple(b) for b in bins.astype(int)}
    inside = np.array([all(tuple(c) in have for c in np.round(p / 10) * 10 + grid
                           if np.linalg.norm(c - p) <= 30) for p in a])
    assert inside.sum() > 20
    new_kernel, new_bias = ac.logits_head_from_regression(kernel, bias, bins)
    assert new_kernel.shape == (1, 1, len(bins), c) and new_bias.shape == (len(bins),)
    logits = (x @ new_kernel[0, 0].T + new_bias).astype("float32")
    np.testing.assert_allclose(ac.annealed_mean(logits, bins, 1.0).numpy()[inside], a[inside], atol=0.5)
    np.testing.assert_array_equal(np.argmax(logits, -1), ac.nearest_bin(a.astype("float32"), bins).numpy())
    near = np.abs(ac.annealed_mean(logits, bins).numpy()[inside] - a[inside]).max()
    assert near < ac.BIN_SIZE / 2 * np.sqrt(2)
    with pytest.raises(ValueError, match="2 outputs"):
        ac.logits_head_from_regression(np.zeros((1, 1, 3, c)), np.zeros(3), bins)


# ---- classification loss -------------------------------------------------------------------------
def test_classification_loss_is_the_weighted_cross_entropy(bins):
    rng = np.random.default_rng(2)
    q = len(bins)
    logits = rng.normal(0, 2, (2, 3, 3, q)).astype("float32")
    ab = rng.uniform(-40, 40, (2, 3, 3, 2)).astype("float32")
    z = ac.soft_encode(ab, bins).numpy()
    log_softmax = logits - logits.max(-1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(-1, keepdims=True))
    ce = -(z * log_softmax).sum(-1)  # [2, 3, 3]
    assert ac.classification_loss(logits, z).numpy() == pytest.approx(ce.mean(), rel=1e-5)
    w = rng.uniform(0.2, 5.0, q).astype("float32")
    weighted = (w[z.argmax(-1)] * ce).mean()
    assert ac.classification_loss(logits, z, w).numpy() == pytest.approx(weighted, rel=1e-5)
    assert ac.classification_loss(logits, z, 3.0 * w).numpy() == pytest.approx(3.0 * weighted, rel=1e-5)
    assert ac.classification_loss(logits, z, np.ones(q, "float32")).numpy() == pytest.approx(ce.mean(), rel=1e-5)
    # Perfectly confident and right on one-hot targets: no loss; bf16 logits give a float32 loss.
    onehot = np.eye(q, dtype="float32")[[0, 5, 7]]
    assert ac.classification_loss(onehot * 100.0, onehot).numpy() == pytest.approx(0.0, abs=1e-5)
    loss16 = ac.classification_loss(tf.cast(logits, tf.bfloat16), z, w)
    assert loss16.dtype == tf.float32 and loss16.numpy() == pytest.approx(weighted, rel=2e-2)
    mapped = in_map(lambda x, y: ac.classification_loss(x, y, w), logits, z)
    assert mapped.numpy() == pytest.approx(weighted, rel=1e-5)


def test_the_sparse_loss_is_the_dense_loss_in_value_and_gradient(bins):
    """Training uses the sparse targets (soft_encode_sparse + classification_loss_sparse): the same loss and
    gradient as the dense Z, unweighted and weighted, eagerly, in a tf.function and in tf.data.map."""
    rng = np.random.default_rng(5)
    q = len(bins)
    logits = tf.constant(rng.normal(0, 2, (2, 4, 3, q)).astype("float32"))
    ab = rng.uniform(-60, 60, (2, 4, 3, 2)).astype("float32")
    idx, w = ac.soft_encode_sparse(ab, bins)
    dense = ac.soft_encode(ab, bins).numpy()
    # The sparse pair is the dense Z's non-zero part, nearest bin first.
    np.testing.assert_array_equal(idx.numpy()[..., 0], dense.argmax(-1))
    np.testing.assert_allclose(np.take_along_axis(dense, idx.numpy(), -1), w.numpy(), atol=1e-7)
    np.testing.assert_allclose(w.numpy().sum(-1), 1.0, atol=1e-6)
    weights = rng.uniform(0.2, 5.0, q).astype("float32")
    for v in (None, weights):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(logits)
            sparse = ac.classification_loss_sparse(logits, idx, w, v)
            full = ac.classification_loss(logits, dense, v)
        assert sparse.numpy() == pytest.approx(full.numpy(), rel=1e-5)
        np.testing.assert_allclose(tape.gradient(sparse, logits).numpy(), tape.gradient(full, logits).numpy(),
                                   atol=1e-7)
    graph = tf.function(lambda x, y: ac.classification_loss_sparse(x, *ac.soft_encode_sparse(y, bins), weights))
    assert graph(logits, ab).numpy() == pytest.approx(full.numpy(), rel=1e-5)
    mapped = in_map(lambda x, y: ac.classification_loss_sparse(x, *ac.soft_encode_sparse(y, bins), weights), logits, ab)
    assert mapped.numpy() == pytest.approx(full.numpy(), rel=1e-5)
    loss16 = ac.classification_loss_sparse(tf.cast(logits, tf.bfloat16), idx, w, weights)
    assert loss16.dtype == tf.float32 and loss16.numpy() == pytest.approx(full.numpy(), rel=2e-2)


def test_classification_loss_trains_in_a_tf_function(bins):
    w = ac.rebalancing_weights(np.arange(len(bins), dtype="float64") + 1.0, bins)
    ab = tf.constant(np.random.default_rng(3).uniform(-50, 50, (2, 4, 4, 2)).astype("float32"))
    logits = tf.Variable(tf.zeros([2, 4, 4, len(bins)]))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = ac.classification_loss(logits, ac.soft_encode(ab, bins), w)
        grad = tape.gradient(loss, logits)
        logits.assign_sub(100.0 * grad)
        return loss, grad

    first, grad = step()
    assert np.all(np.isfinite(grad.numpy())) and np.any(grad.numpy() != 0)
    for _ in range(20):
        last, _ = step()
    assert last.numpy() < 0.5 * first.numpy()
    # The decoded prediction moved towards the targets (mean over a soft target's 5 bins is near ab).
    err = np.abs(ac.annealed_mean(logits, bins, 1.0).numpy() - ab.numpy()).mean()
    assert err < 5.0


def test_nearest_bin_in_tf_data(bins):
    ab = np.random.default_rng(4).uniform(-60, 60, (3, 5, 2)).astype("float32")
    expected = np.argmin(((ab[..., None, :] - bins) ** 2).sum(-1), axis=-1)
    np.testing.assert_array_equal(ac.nearest_bin(ab, bins).numpy(), expected)
    np.testing.assert_array_equal(in_map(lambda x: ac.nearest_bin(x, bins), ab).numpy(), expected)


# ---- colourfulness loss --------------------------------------------------------------------------
def test_colourfulness_loss_matches_the_metric_on_real_photos():
    photos = np.stack([read_rgb(p) for p in sample_images(8)]).astype("float32") / 255.0
    expected = 1.0 - np.mean(metrics.colourfulness(photos).numpy()) / 100.0
    loss = losses.colourfulness_loss(photos)
    assert loss.dtype == tf.float32
    assert float(loss) == pytest.approx(expected, abs=1e-5)
    assert float(losses.colourfulness_loss(photos[:1])) == pytest.approx(
        1.0 - float(metrics.colourfulness(photos[:1])[0]) / 100.0, abs=1e-5)
    # Per the definition, by hand on one photo (0-255, population statistics).
    x = photos[3].reshape(-1, 3).astype("float64") * 255.0
    rg, yb = x[:, 0] - x[:, 1], 0.5 * (x[:, 0] + x[:, 1]) - x[:, 2]
    c = math.sqrt(rg.var() + yb.var()) + 0.3 * math.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    assert float(losses.colourfulness_loss(photos[3:4])) == pytest.approx(1.0 - c / 100.0, abs=1e-5)
    # More saturated (chroma scaled up about the gray) is more colourful: lower loss.
    gray = photos @ np.array([0.299, 0.587, 0.114], "float32")
    vivid = np.clip(gray[..., None] + 1.5 * (photos - gray[..., None]), 0.0, 1.0)
    assert float(losses.colourfulness_loss(vivid)) < float(loss)
    assert float(losses.colourfulness_loss(np.repeat(gray[..., None], 3, -1))) == pytest.approx(1.0, abs=1e-4)
    mixed = losses.colourfulness_loss(tf.cast(photos, tf.bfloat16))
    assert mixed.dtype == tf.float32 and float(mixed) == pytest.approx(expected, abs=1e-2)


def test_colourfulness_loss_gradient_is_finite_and_non_zero():
    photos = tf.constant(np.stack([read_rgb(p) for p in sample_images(4)]).astype("float32") / 255.0)
    gray = tf.repeat(tf.reduce_mean(photos, axis=-1, keepdims=True), 3, axis=-1)
    x = tf.Variable(tf.concat([photos, gray], axis=0))  # a gray image too: sqrt(0) must not give inf / NaN
    with tf.GradientTape() as tape:
        loss = losses.colourfulness_loss(x)
    grad = tape.gradient(loss, x).numpy()
    assert np.all(np.isfinite(grad))
    assert np.abs(grad[:4]).max() > 0
    # A small step against the gradient makes the photos more colourful.
    stepped = losses.colourfulness_loss(x - 1e-2 * grad / np.abs(grad).max())
    assert float(stepped) < float(loss)
    in_fn = tf.function(losses.colourfulness_loss)(photos)
    assert float(in_fn) == pytest.approx(float(losses.colourfulness_loss(photos)), abs=1e-6)

"""keras_compat: the private Keras hooks are used only on checked versions, with a stock fallback otherwise."""
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

from colorgan.models import keras_compat
from colorgan.models.fastconv import _eligible, use_matmul_for_small_inputs
from colorgan.models.keras_compat import MATMUL_CONVOLUTIONS, SKIP_SYMBOLIC_BUILD, is_patched, walk_layers
from colorgan.models.networks import Discriminator, Generator

FEATURES = (MATMUL_CONVOLUTIONS, SKIP_SYMBOLIC_BUILD)
PATCHABLE = ("convolution_op", "call")


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    """Each test starts as a new process would: no fallback reported yet."""
    monkeypatch.setattr(keras_compat, "_warned", set())


@pytest.fixture
def warnings():
    """The colorgan logger's warnings during the test (caught here, whatever its propagation)."""
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("colorgan")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def _fallbacks(records, feature):
    return [r.getMessage() for r in records if r.levelno == logging.WARNING and f": {feature} relies on" in
            r.getMessage()]


def _generator():
    """A tiny U-Net whose innermost maps (2x2, 1x1 at 16 px) take the matmul path, and a stock copy of it."""
    generator = Generator(16, 1, 2, base_filters=4)
    stock = keras.models.clone_model(generator)
    stock.set_weights(generator.get_weights())
    return generator, stock


def _same_output(generator, stock):
    x = tf.random.normal((2, 16, 16, 1), seed=1)
    traced = tf.function(lambda x: generator(x, training=False))  # static shapes: the path fastconv picks
    np.testing.assert_allclose(traced(x).numpy(), stock(x, training=False).numpy(), atol=1e-5)


def _patched_layers(model):
    return [layer for layer in walk_layers(model) for name in PATCHABLE
            if is_patched(layer, name) or name in vars(layer)]


class _Tiny(keras.Model):
    """A model that builds its weights and optimizer itself and trains with its own step."""
    symbolic_builds = 0

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)
        self.dense.build((None, 2))

    def call(self, x):
        return self.dense(x)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self(x) - y))
        self.optimizer.apply_gradients(zip(tape.gradient(loss, self.trainable_variables), self.trainable_variables))
        return {"loss": loss}

    def _symbolic_build(self, *args, **kwargs):  # a spy on Keras' own build
        type(self).symbolic_builds += 1
        return super()._symbolic_build(*args, **kwargs)


def _tiny_class():
    return type("Tiny", (_Tiny,), {"symbolic_builds": 0})


def _fit_under_a_strategy(cls) -> int:
    """fit() one epoch under a distribution strategy; returns how often Keras built the model itself."""
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        model = cls()
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.optimizer.build(model.trainable_variables)
    model.fit(np.ones((4, 2), "float32"), np.ones((4, 1), "float32"), batch_size=2, epochs=1, verbose=0)
    return cls.symbolic_builds


# --- the installed Keras: hooks in use ---------------------------------------------------------------

def test_version_parsing():
    assert keras_compat.parse_version("3.15.1") == (3, 15)
    assert keras_compat.parse_version("3.16.0.dev2025010203") == (3, 16)
    assert keras_compat.parse_version("unknown") == (0, 0)
    assert keras_compat.KERAS_VERSION == keras_compat.parse_version(keras.__version__)


def test_installed_keras_is_checked_and_its_hooks_usable(warnings):
    low, high = keras_compat.TESTED_RANGE
    assert low <= keras_compat.KERAS_VERSION <= high, f"Keras {keras.__version__} is outside {low}..{high}"
    assert all(keras_compat.private_hooks_usable(feature) for feature in FEATURES)
    assert warnings == []
    with pytest.raises(ValueError, match="unknown feature"):
        keras_compat.private_hooks_usable("something else")


def test_walk_layers_finds_what_keras_own_walk_finds():
    for model in (Generator(16, 1, 2, base_filters=4), Discriminator(32, 1, 2, base_filters=4, spectral_norm=True)):
        walked = list(walk_layers(model))
        assert len({id(layer) for layer in walked}) == len(walked) and model not in walked
        assert any(isinstance(layer, keras.layers.Conv2D) for layer in walked)
        if hasattr(model, "_flatten_layers"):  # Keras' private walk, the reference here where it exists
            # (in another order, and with the InputLayer each nested Sequential keeps to itself)
            keras_own = [layer for layer in model._flatten_layers(include_self=False)
                         if not isinstance(layer, keras.layers.InputLayer) or layer in model.layers]
            assert sorted(id(layer) for layer in walked) == sorted(id(layer) for layer in keras_own)
    spectral = Discriminator(32, 1, 2, base_filters=4, spectral_norm=True)
    wrapped = [layer for layer in walk_layers(spectral) if isinstance(layer, keras.layers.SpectralNormalization)]
    assert wrapped and all(any(inner is w.layer for inner in walk_layers(spectral)) for w in wrapped)


def test_fastconv_swaps_the_eligible_layers_and_computes_the_same(warnings):
    generator, stock = _generator()
    eligible = [layer for layer in walk_layers(generator)
                if type(layer) in (keras.layers.Conv2D, keras.layers.Conv2DTranspose) and _eligible(layer)]
    assert use_matmul_for_small_inputs(generator) == len(eligible) > 0
    assert use_matmul_for_small_inputs(generator) == len(eligible)  # again: counted, not wrapped twice
    assert {id(layer) for layer in _patched_layers(generator)} == {id(layer) for layer in eligible}
    convs = [layer for layer in eligible if type(layer) is keras.layers.Conv2D]
    assert convs and all(is_patched(layer, "convolution_op") and "call" not in vars(layer) for layer in convs)
    stock_method = type(convs[0]).convolution_op
    assert all(vars(layer)["convolution_op"].__func__ is not stock_method for layer in convs)
    assert not _patched_layers(stock)  # only the instances of `generator` changed
    _same_output(generator, stock)
    assert warnings == []


def test_patch_method_replaces_one_instance_only():
    a, b = keras.layers.Dense(2), keras.layers.Dense(2)
    stock = keras_compat.patch_method(a, "compute_output_shape",
                                      lambda stock: lambda self, shape: ("patched", stock(shape)))
    assert a.compute_output_shape((None, 3)) == ("patched", (None, 2))
    assert b.compute_output_shape((None, 3)) == (None, 2) and stock((None, 3)) == (None, 2)
    assert is_patched(a, "compute_output_shape") and not is_patched(b, "compute_output_shape")


def test_decorator_installs_the_override_and_fit_skips_keras_build(warnings):
    cls = keras_compat.skip_symbolic_build(_tiny_class())
    assert vars(cls)["_maybe_symbolic_build"] is keras_compat._no_symbolic_build
    assert _fit_under_a_strategy(cls) == 0
    assert _fit_under_a_strategy(_tiny_class()) == 1  # the stock class: Keras builds it from the first batch
    assert warnings == []


def test_decorator_rejects_what_it_cannot_decorate():
    with pytest.raises(TypeError, match="keras.Model subclasses"):
        keras_compat.skip_symbolic_build(object)
    own = type("Own", (keras.Model,), {"_maybe_symbolic_build": lambda self, iterator=None, data_batch=None: None})
    with pytest.raises(TypeError, match="defines _maybe_symbolic_build itself"):
        keras_compat.skip_symbolic_build(own)


# --- a Keras the hooks are not checked on: the stock path ---------------------------------------------

def _too_new(monkeypatch):
    monkeypatch.setattr(keras_compat, "KERAS_VERSION", (3, 99))


def _out_of_range(monkeypatch):
    monkeypatch.setattr(keras_compat, "TESTED_RANGE", ((3, 0), (3, keras_compat.KERAS_VERSION[1] - 1)))


@pytest.mark.parametrize("unchecked", [_too_new, _out_of_range], ids=["newer", "outside-range"])
def test_unchecked_version_takes_the_stock_path_and_warns_once_per_feature(unchecked, monkeypatch, warnings):
    unchecked(monkeypatch)
    generator, stock = _generator()
    assert use_matmul_for_small_inputs(generator) == 0
    assert use_matmul_for_small_inputs(generator) == 0
    assert not _patched_layers(generator)
    _same_output(generator, stock)

    classes = [keras_compat.skip_symbolic_build(_tiny_class()) for _ in range(2)]
    assert all("_maybe_symbolic_build" not in vars(cls) for cls in classes)
    assert _fit_under_a_strategy(classes[0]) == 1  # Keras' own build runs, as without the decorator

    major, minor = keras_compat.KERAS_VERSION
    for feature in FEATURES:
        messages = _fallbacks(warnings, feature)
        assert len(messages) == 1, messages
        assert messages[0].startswith(f"Keras {major}.{minor}: {feature} relies on Keras internals not checked on "
                                      "this version; using the stock path")
    assert len(warnings) == len(FEATURES)


def _defined_in(cls, name):
    return next(base for base in cls.__mro__ if name in vars(base))


def test_missing_hooks_take_the_stock_path_and_warn_once(monkeypatch, warnings):
    generator, _ = _generator()  # built first: without convolution_op stock Conv2D layers cannot run either
    monkeypatch.delattr(_defined_in(keras.layers.Conv2D, "convolution_op"), "convolution_op")
    monkeypatch.delattr(_defined_in(keras.Model, "_maybe_symbolic_build"), "_maybe_symbolic_build")
    assert use_matmul_for_small_inputs(generator) == 0 and use_matmul_for_small_inputs(generator) == 0
    assert not _patched_layers(generator)
    cls = keras_compat.skip_symbolic_build(keras_compat.skip_symbolic_build(_tiny_class()))
    assert not hasattr(cls, "_maybe_symbolic_build")
    for feature in FEATURES:
        messages = _fallbacks(warnings, feature)
        assert len(messages) == 1 and "is missing" in messages[0], messages


def test_changed_hook_signature_takes_the_stock_path(monkeypatch, warnings):
    def call(self, inputs, extra=None):
        return keras.layers.Conv2DTranspose.__mro__[1].call(self, inputs)

    monkeypatch.setattr(keras.layers.Conv2DTranspose, "call", call, raising=False)
    generator, stock = _generator()
    assert use_matmul_for_small_inputs(generator) == 0
    assert not _patched_layers(generator)
    _same_output(generator, stock)
    assert keras_compat.private_hooks_usable(SKIP_SYMBOLIC_BUILD)  # the other feature is unaffected
    messages = _fallbacks(warnings, MATMUL_CONVOLUTIONS)
    assert len(messages) == 1 and "takes (inputs, extra)" in messages[0], messages
    assert not _fallbacks(warnings, SKIP_SYMBOLIC_BUILD)

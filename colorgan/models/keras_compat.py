"""Every use of Keras internals in colorgan, checked against the Keras version before it is used.

Two features reach past Keras' public API:

  MATMUL_CONVOLUTIONS (fastconv.use_matmul_for_small_inputs) replaces, on single layer instances,
    Conv2D.convolution_op (Conv2D.call computes its convolution through it, then adds the bias and
    applies the activation) and Conv2DTranspose.call (which has no such hook, so the whole call is
    replaced and redoes the bias and activation itself).
  SKIP_SYMBOLIC_BUILD (the `skip_symbolic_build` class decorator) overrides
    keras.Model._maybe_symbolic_build, which fit/evaluate call before the first step.

Each is used only where `private_hooks_usable(feature)` says so: the installed Keras is within
TESTED_RANGE, whose versions were checked to call these hooks the way colorgan expects, and every
hook it relies on still exists with the same parameters. Otherwise colorgan takes Keras' stock path
(plain layers, Keras' own build), logs one warning per feature, and carries on.

The layer walk here (`walk_layers`) and the patching helpers use only public attributes.
"""
from __future__ import annotations

import inspect
import logging
import re
import types
from typing import Callable, Iterator

import keras

log = logging.getLogger("colorgan")

# (major, minor) bounds, both included. 3.5 is requirements.txt's floor: its sources define both
# hooks with the signatures below and Conv2D.call goes through convolution_op, as in 3.15, the
# version the tests run on. A later minor is used only after it has been checked and added here.
TESTED_RANGE = ((3, 5), (3, 15))


def parse_version(version: str) -> tuple[int, int]:
    """'3.15.1' (or '3.16.0.dev2025...') -> (3, 15); (0, 0) where the string starts otherwise."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


KERAS_VERSION = parse_version(keras.__version__)

MATMUL_CONVOLUTIONS = "fastconv.use_matmul_for_small_inputs"
SKIP_SYMBOLIC_BUILD = "skip_symbolic_build"

# feature -> the private hooks it relies on: (owner, as a path under `keras`; attribute; the
# parameters after self that colorgan calls it with or overrides it with).
HOOKS: dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = {
    MATMUL_CONVOLUTIONS: (
        ("layers.Conv2D", "convolution_op", ("inputs", "kernel")),
        ("layers.Conv2D", "call", ("inputs",)),
        ("layers.Conv2DTranspose", "call", ("inputs",)),
    ),
    SKIP_SYMBOLIC_BUILD: (
        ("Model", "_maybe_symbolic_build", ("iterator", "data_batch")),
    ),
}

_warned: set[str] = set()  # features whose fallback has been reported in this process


def _missing_hook(feature: str) -> str | None:
    """What the installed Keras lacks of `feature`'s hooks, or None when it has them all."""
    for owner_path, attribute, parameters in HOOKS[feature]:
        owner = keras
        for part in owner_path.split("."):
            owner = getattr(owner, part, None)
        function = getattr(owner, attribute, None)
        if not callable(function):
            return f"keras.{owner_path}.{attribute} is missing"
        try:
            found = tuple(inspect.signature(function).parameters)[1:]  # after self
        except (TypeError, ValueError):
            return f"keras.{owner_path}.{attribute} has no readable signature"
        if found != parameters:
            return f"keras.{owner_path}.{attribute} takes ({', '.join(found)}), not ({', '.join(parameters)})"
    return None


def private_hooks_usable(feature: str) -> bool:
    """Whether `feature` (a key of HOOKS) may use its private Keras hooks on the installed Keras.

    True when KERAS_VERSION is within TESTED_RANGE and every hook in HOOKS[feature] exists with the
    expected parameters. When not, logs one warning per feature and process and returns False.
    """
    if feature not in HOOKS:
        raise ValueError(f"unknown feature {feature!r}; expected one of {', '.join(HOOKS)}")
    low, high = TESTED_RANGE
    if not low <= KERAS_VERSION <= high:
        reason = f"tested with Keras {low[0]}.{low[1]} to {high[0]}.{high[1]}"
    else:
        reason = _missing_hook(feature)
    if reason is None:
        return True
    if feature not in _warned:
        _warned.add(feature)
        log.warning("Keras %d.%d: %s relies on Keras internals not checked on this version; using the stock "
                    "path (%s)", *KERAS_VERSION, feature, reason)
    return False


def walk_layers(model: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """Every layer inside `model`, depth first, each once; `model` itself is not included.

    Descends through `.layers` (functional models, Sequential and Model subclasses) and through a
    wrapper's `.layer` (SpectralNormalization and other keras.layers.Wrapper), all public API.
    """
    seen = {id(model)}

    def children(layer):
        if isinstance(layer, keras.layers.Wrapper):
            return [layer.layer]
        inner = getattr(layer, "layers", None)
        return list(inner) if isinstance(inner, (list, tuple)) else []

    stack = list(reversed(children(model)))
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        yield layer
        stack.extend(reversed(children(layer)))


def patch_method(instance, name: str, make_method: Callable[[Callable], Callable]) -> Callable:
    """Replace `instance.<name>` on this one instance (its class and other instances keep theirs).

    make_method(stock) gets the bound method being replaced and returns a function taking self
    first, which is bound to `instance`. Returns the stock method. Only an instance attribute is
    set, so configs, weights and saved files are those of the stock layer.
    """
    stock = getattr(instance, name)
    setattr(instance, name, types.MethodType(make_method(stock), instance))
    return stock


def is_patched(instance, name: str) -> bool:
    """Whether `patch_method` replaced `instance.<name>` (an instance attribute shadows the class's)."""
    return isinstance(vars(instance).get(name), types.MethodType)


def _no_symbolic_build(self, iterator=None, data_batch=None):
    # Under a distribution strategy, Keras 3's fit/evaluate build the model here from the first
    # batch, reduced over the replicas first, which fails under MultiWorkerMirroredStrategy. A class
    # given this override builds its networks and optimizers itself before training, and computes
    # its losses with its own trackers, so nothing is left to build (without a strategy Keras skips
    # this step as well).
    return None


def skip_symbolic_build(cls: type) -> type:
    """Class decorator for a keras.Model subclass that builds all its own variables before fit.

    Installs an override of keras.Model._maybe_symbolic_build that builds nothing, when
    private_hooks_usable(SKIP_SYMBOLIC_BUILD); otherwise returns the class unchanged (Keras' own
    build runs, which is fine without a distribution strategy). The class must not define
    _maybe_symbolic_build itself, so the private hook lives only here.
    """
    if not (isinstance(cls, type) and issubclass(cls, keras.Model)):
        raise TypeError(f"skip_symbolic_build decorates keras.Model subclasses, not {cls!r}")
    if "_maybe_symbolic_build" in vars(cls):
        raise TypeError(f"{cls.__name__} defines _maybe_symbolic_build itself; remove it and let "
                        "keras_compat.skip_symbolic_build install it when the installed Keras allows")
    if private_hooks_usable(SKIP_SYMBOLIC_BUILD):
        cls._maybe_symbolic_build = _no_symbolic_build
    return cls

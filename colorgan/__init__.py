"""colorgan: train pix2pix-style colorizers (gray -> colour) with TensorFlow / Keras 3.

    from colorgan import Config, train
    run_dir = train(Config(data="data/cifar10-mini", epochs=2))

Names are imported lazily so that `import colorgan.config` (the command lines' --help) does not
load TensorFlow.
"""
import importlib

__version__ = "0.1.0"  # the one place: pyproject.toml reads it, `colorgan --version` shows it, config.json records it

_EXPORTS = {
    "Config": "config", "ColorganError": "errors", "Colorizer": "inference",
    "Generator": "models", "Discriminator": "models", "Autoencoder": "models", "build_models": "models",
    "Pix2Pix": "trainers", "Regressor": "trainers", "build_trainer": "trainers",
    "Run": "runs", "load_run": "runs", "resume": "training", "train": "training",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'colorgan' has no attribute {name!r}")

"""colorgan: train pix2pix-style colorizers (gray -> colour) with TensorFlow / Keras 3.

    from colorgan import Config, train
    run_dir = train(Config(data="data/cifar10-mini", epochs=2))

Names are imported lazily so that `import colorgan.config` (the command lines' --help) does not
load TensorFlow.

The folders are the architecture, one sub-package per job, in LAYERS order: a module imports its own layer and
the layers before it, never one after, and no two modules import each other (tests/test_architecture.py reads
every import). The shared helpers (config, errors, atomic writes, progress, the command-line helpers, the
bundled files' places, the machine's precision and devices, image grids) sit at the top level.
"""
import importlib

from colorgan import cpu_kernels

# Before anything imports TensorFlow: its oneDNN kernels on x86 CPUs where it leaves them off (cpu_kernels).
cpu_kernels.choice()

# Lowest first; "colorgan" is the top-level modules. Each sub-package's docstring names what it may import.
LAYERS = ("colorgan", "color", "data", "models", "training", "inference", "evaluation", "serving", "commands")

__version__ = "0.1.0"  # the one place: pyproject.toml reads it, `colorgan --version` shows it, config.json records it

_EXPORTS = {
    "Config": "config", "ColorganError": "errors", "Colorizer": "inference.colorizer",
    "Generator": "models.networks", "Discriminator": "models.networks", "Autoencoder": "models.networks",
    "build_models": "models.networks", "Pix2Pix": "training.trainers", "Regressor": "training.trainers",
    "build_trainer": "training.trainers", "Run": "training.runs", "load_run": "training.runs",
    "resume": "training.loop", "train": "training.loop",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'colorgan' has no attribute {name!r}")

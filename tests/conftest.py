"""Shared test helpers. Tests use tiny models and few images; `realdata` tests read ../shared/data."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from colorgan.cli import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

SAMPLE = ROOT / "data" / "cifar10-mini"  # the embedded default: real CIFAR-10 images, committed
SHARED_DATA = ROOT.parent / "shared" / "data"


def pytest_configure(config):
    config.addinivalue_line("markers", "realdata: reads the real data sets in ../shared/data")
    config.addinivalue_line("markers", "server_args(*flags): extra serve.py flags for the browser tests' server")


@pytest.fixture(autouse=True, scope="session")
def scan_cache_dir(tmp_path_factory) -> Path:
    """The data scan's cache (scan.scan_cache_file) in the test session's own folder, never the user's ~/.cache;
    training started in a subprocess inherits it."""
    folder = tmp_path_factory.mktemp("colorgan-cache")
    previous = os.environ.get("COLORGAN_CACHE_DIR")
    os.environ["COLORGAN_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("COLORGAN_CACHE_DIR", None)
    else:
        os.environ["COLORGAN_CACHE_DIR"] = previous


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "cifar10").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (these tests need ../shared/data beside the repo)")
    return SHARED_DATA


def sample_images(n: int, split: str = "train") -> list[Path]:
    """n real colour CIFAR-10 images from the embedded sample, taken across classes.

    The sample holds a few black-and-white photos (as CIFAR-10 does); the data scan skips those.
    """
    from colorgan.data.image_files import inspect_image
    files = [f for f in sorted((SAMPLE / split).rglob("*.jpg")) if not inspect_image(f).gray]
    idx = np.linspace(0, len(files) - 1, n).round().astype(int)
    return [files[i] for i in idx]


def copy_images(files, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files):
        shutil.copy(f, folder / f"{i:04d}{f.suffix}")
    return folder


def tiny_config(**overrides):
    """A config small enough to train a step in well under a second."""
    from colorgan.config import Config
    values = dict(data=str(SAMPLE), image_size=32, batch_size=8, base_filters=8, epochs=1, precision="fp32",
                  num_samples=4, seed=1)
    values.update(overrides)
    return Config(**values)

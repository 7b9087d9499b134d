"""Where the files colorgan ships with are: the shipped weights and the embedded sample data.

In a checkout (and an editable install) they are the top-level weights/ and data/ beside the package. An
installed wheel has no checkout around it, so pyproject.toml maps them into the package as colorgan/shipped/
and colorgan/sample/ (holding cifar10-mini/), found here with importlib.resources.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1]


def _installed(name: str) -> Path | None:
    # A real folder is needed (Keras and the data scan open files by path); pip always unpacks a wheel,
    # so the package's resources are plain files.
    found = resources.files(__package__).joinpath(name)
    return Path(str(found)) if found.is_dir() else None


INSTALLED = _installed("shipped") is not None
SHIPPED_WEIGHTS = _installed("shipped") or _CHECKOUT / "weights"
DATA_DIR = _installed("sample") or _CHECKOUT / "data"  # holds cifar10-mini/, the default of --data
# Only a checkout resolves paths from its root; beside an installed package is site-packages, not a project.
PROJECT_ROOT = None if INSTALLED else _CHECKOUT

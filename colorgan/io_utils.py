"""Small file helpers: every file a run writes is written whole or not at all (write, then rename)."""
from __future__ import annotations

import os
from pathlib import Path


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_save(path: str | os.PathLike, save_fn) -> None:
    """Call save_fn(tmp_path) then rename onto path; tmp keeps path's suffix (Keras checks it)."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    save_fn(str(tmp))
    os.replace(tmp, path)

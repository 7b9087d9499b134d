"""Small file helpers: every file a run writes is written whole or not at all (write, then rename)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

TEMP_PREFIX = ".tmp-"  # what a write in progress is called; a kill can leave one behind


def temp_path(path: Path) -> Path:
    """Where path is written before the rename; it keeps path's suffix (Keras checks it)."""
    return path.with_name(f"{TEMP_PREFIX}{path.name}")


def temp_files(folder: Path) -> list[Path]:
    """Writes in progress (or left half-done by a kill) in folder."""
    return sorted(folder.glob(f"{TEMP_PREFIX}*"))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    tmp = temp_path(path)
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_shared(path: str | os.PathLike, text: str) -> None:
    """atomic_write_text for a file that several processes may write at once (workers of one training, two
    runs on one machine): each writes its own temporary file, so a reader sees one whole version, the last."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save(path: str | os.PathLike, save_fn) -> None:
    """Call save_fn(tmp_path) then rename onto path."""
    path = Path(path)
    tmp = temp_path(path)
    save_fn(str(tmp))
    os.replace(tmp, path)

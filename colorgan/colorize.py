"""Colorizing many files: inputs given as files, folders and globs, written under one output folder.

The driver behind `colorize.py`: each file is read (image_files), colorized (inference.Colorizer) and
written; a file that fails is named with its reason and the rest go on.
"""
from __future__ import annotations

import glob
import logging
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .errors import ColorganError
from .image_files import READABLE, read_image, write_image

log = logging.getLogger("colorgan")


def expand_inputs(inputs: list[str]) -> list[tuple[Path, Path]]:
    """(file, output path relative to OUT) for files, folders (recursive) and glob patterns."""
    found = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += [(p, p.relative_to(path)) for p in sorted(path.rglob("*"))  # broken links too: reported
                      if not p.is_dir() and p.suffix.lower() in READABLE and not p.name.startswith(".")]
        elif path.exists() or path.is_symlink():
            found.append((path, Path(path.name)))
        else:
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise ColorganError(f"{item}: no such file, folder or matching pattern")
            found += [(Path(m), Path(Path(m).name)) for m in matches if Path(m).is_file()]
    seen, unique = set(), []
    for src, rel in found:  # the same name from two places must not overwrite each other
        stem, n = rel, 1
        while rel in seen:
            rel = stem.with_name(f"{stem.stem}-{n}{stem.suffix}")
            n += 1
        seen.add(rel)
        unique.append((src, rel))
    return unique


def tf_errors():
    import tensorflow as tf
    return tf.errors.OpError


def side_by_side_image(gray_source: np.ndarray, colorized: np.ndarray) -> np.ndarray:
    from .inference import to_float_image
    gray, _ = to_float_image(gray_source)
    gray_rgb = np.repeat(np.round(gray * 255).astype(np.uint8), 3, axis=-1)
    return np.concatenate([gray_rgb, colorized[..., :3]], axis=1)


def colorize_paths(colorizer, inputs: list[str], out_dir: str | os.PathLike,
                   side_by_side: bool = False) -> list[tuple[Path, str]]:
    """Colorize every input into out_dir; returns the (file, reason) pairs that failed."""
    jobs = expand_inputs(inputs)
    if not jobs:
        raise ColorganError("no images found in the inputs")
    out_dir = Path(out_dir)
    failed = []
    for src, rel in tqdm(jobs, unit="image", disable=len(jobs) < 2, desc="colorizing"):
        try:
            image = read_image(src)
            result = colorizer.colorize(image)
            write_image(out_dir / rel, result)
            if side_by_side:
                write_image(out_dir / rel.with_name(f"{rel.stem}_side_by_side{rel.suffix}"),
                            side_by_side_image(image, result))
        except ColorganError as e:
            failed.append((src, str(e)))
            log.warning("skipped %s", e)
        except (tf_errors(), MemoryError) as e:  # a file that decodes but breaks the model: skip it, go on
            reason = f"{src}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            failed.append((src, reason))
            log.warning("skipped %s", reason)
    done = len(jobs) - len(failed)
    print(f"colorized {done} of {len(jobs)} images into {out_dir}/" + (f"; {len(failed)} failed:" if failed else ""))
    for src, reason in failed:
        print(f"  {reason}")
    return failed

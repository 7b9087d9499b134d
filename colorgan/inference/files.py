"""Colorizing many files: inputs given as files, folders and globs, written under one output folder.

The driver behind `colorize.py`: each photo is read (image_files), colorized (inference.Colorizer) and
written; each video is colorized frame by frame with its colour kept steady over time (video.py). A file
that fails is named with its reason and the rest go on.
"""
from __future__ import annotations

import glob
import json
import logging
import os
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from colorgan.atomic import atomic_write_text
from colorgan.data.image_files import READABLE, read_image, write_image
from colorgan.errors import ColorganError
from colorgan.inference.hints import photo_hints
from colorgan.inference.video import DEFAULT_SMOOTHING, VIDEO_SUFFIXES, colorize_video, is_video
from colorgan.progress import progress_bar

log = logging.getLogger("colorgan")


def expand_inputs(inputs: list[str]) -> list[tuple[Path, Path]]:
    """(file, output path relative to OUT) for files, folders (recursive) and glob patterns."""
    found = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += [(p, p.relative_to(path)) for p in sorted(path.rglob("*"))  # broken links too: reported
                      if not p.is_dir() and p.suffix.lower() in READABLE + VIDEO_SUFFIXES
                      and not p.name.startswith(".")]
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


def side_by_side_path(rel: Path) -> Path:
    return rel.with_name(f"{rel.stem}_side_by_side{rel.suffix}")


def colorize_photo(colorizer, src: Path, dst: Path, side_by_side: Path | None = None, hints=()) -> None:
    image = read_image(src)
    result = colorizer.colorize(image, hints=hints)
    write_image(dst, result)
    if side_by_side:
        from colorgan.inference.colorizer import side_by_side_image  # TensorFlow: loaded once the inputs are found
        write_image(side_by_side, side_by_side_image(image, result))


def variant_path(rel: Path, n: int) -> Path:
    return rel.with_name(f"{rel.stem}_variant{n}{rel.suffix}")


def write_variants(colorizer, src: Path, dst: Path, k: int, seed: int | None, hints=()) -> None:
    """NAME_variant1 .. NAME_variantK beside where NAME would go, each with NAME_variantN.hints.json: the hints
    that made it, as a --hints-file for the photo (to colorize it again from there, changed)."""
    for n, variant in enumerate(colorizer.colorize_variants(read_image(src), k, seed=seed, hints=hints), 1):
        out = variant_path(dst, n)
        write_image(out, variant.image)
        atomic_write_text(out.with_name(out.stem + ".hints.json"),
                          json.dumps({src.name: [hint.as_json() for hint in variant.hints]}, indent=1) + "\n")


def colorize_paths(colorizer, inputs: list[str], out_dir: str | os.PathLike, side_by_side: bool = False,
                   temporal_smoothing: float = DEFAULT_SMOOTHING) -> list[tuple[Path, str]]:
    """Colorize every input (photos and videos) into out_dir; returns the (file, reason) pairs that failed.

    temporal_smoothing: for videos, how much each frame's colour is averaged with the frames before it
    (video.AbAverage; 0 is off).
    """
    return colorize_jobs(colorizer, find_jobs(inputs), out_dir, side_by_side, temporal_smoothing)


def output_target(jobs: list[tuple[Path, Path]], out: str | os.PathLike) -> tuple[list[tuple[Path, Path]], Path]:
    """(jobs, output folder) for -o OUT: OUT is a folder, except for one photo (one video) given with OUT named as
    a photo (a video) that is not a folder already: `colorize.py photo.jpg -o result.png` writes result.png, in the
    format its suffix names, as a user expects, not a folder named result.png."""
    out = Path(out)
    if len(jobs) == 1 and not out.is_dir():
        src = jobs[0][0]
        if out.suffix.lower() in (VIDEO_SUFFIXES if is_video(src) else READABLE):
            return [(src, Path(out.name))], out.parent
    return jobs, out


def find_jobs(inputs: list[str]) -> list[tuple[Path, Path]]:
    """expand_inputs, and a one-line error where it finds nothing: checked before the model loads (seconds)."""
    jobs = expand_inputs(inputs)
    if not jobs:
        raise ColorganError("no images or videos found in the inputs")
    return jobs


def colorize_jobs(colorizer, jobs: list[tuple[Path, Path]], out_dir: str | os.PathLike, side_by_side: bool = False,
                  temporal_smoothing: float = DEFAULT_SMOOTHING, hints=None, variants: int = 0,
                  seed: int | None = None) -> list[tuple[Path, str]]:
    """colorize_paths for the (file, output path relative to out_dir) pairs that find_jobs gives.

    hints: None, or a function from an input file to its colour hints by frame, {frame: [hints]} (a photo has
    frame 0 only; a video's hints last from their frame to the next scene cut: video.SteadyColorizer).
    variants: K > 0 writes K colourings of each photo instead of one (write_variants; videos are skipped).
    """
    out_dir = Path(out_dir)
    failed = []
    videos = sum(is_video(src) for src, _ in jobs)
    with logging_redirect_tqdm():  # a skipped file's line printed above the progress bars, not into them
        for src, rel in progress_bar(jobs, unit="file", disable=len(jobs) < 2, desc="colorizing"):
            pair = out_dir / side_by_side_path(rel) if side_by_side else None
            try:
                by_frame = hints(src) if hints else {}
                if variants:
                    if is_video(src):
                        raise ColorganError(f"{src}: --variants is for photos, not videos")
                    write_variants(colorizer, src, out_dir / rel, variants, seed, photo_hints(src, by_frame))
                elif is_video(src):
                    colorize_video(colorizer, src, out_dir / rel, temporal_smoothing, side_by_side=pair,
                                   hints=by_frame)
                else:
                    colorize_photo(colorizer, src, out_dir / rel, side_by_side=pair,
                                   hints=photo_hints(src, by_frame))
            except ColorganError as e:
                failed.append((src, str(e)))
                log.warning("skipped %s", e)
            except (tf_errors(), MemoryError) as e:  # a file that decodes but breaks the model: skip it, go on
                reason = f"{src}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                failed.append((src, reason))
                log.warning("skipped %s", reason)
    done = len(jobs) - len(failed)
    what = "images" if not videos else "videos" if videos == len(jobs) else "files"
    where = f"as {out_dir / jobs[0][1]}" if len(jobs) == 1 and not variants else f"into {out_dir}/"
    print(f"colorized {done} of {len(jobs)} {what} {where}" + (f"; {len(failed)} failed:" if failed else ""))
    for src, reason in failed:
        print(f"  {reason}")
    return failed

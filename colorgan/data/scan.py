"""The scan of a data folder before training: which image files are usable, why the others are not, and a cache
of what it found.

Every file is decoded once up front (in threads), so a file that is broken, unreadable or not an image is named
and left out here instead of failing inside tf.data mid-epoch, and black-and-white photos are told apart. The
findings are cached per folder, so a new run or a --resume over the same folder decodes only the files that are
new or changed since. data.py decides what the findings mean for a --data (pairs, classes, the split).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import astuple
from pathlib import Path

from colorgan.atomic import atomic_write_shared
from colorgan.data.image_files import READABLE, ImageInfo, inspect_image
from colorgan.errors import ColorganError

log = logging.getLogger("colorgan")

IMAGE_EXTENSIONS = READABLE
SCAN_THREADS = 4  # Pillow releases the GIL while decoding (small files are bound by Python, big ones gain)
SHOW_SKIPPED = 10  # warnings printed one per file; the rest are counted (all in the run's skipped.txt)
GRAY_REASON = "grayscale (no colour to learn from)"


def image_files(folder: Path) -> list[Path]:
    """Files under folder (recursive, sorted) named like images; hidden files are left out.

    Broken links and unreadable files are listed too, so the scan can name them.
    """
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and not p.is_dir())


def _inspect(path: Path) -> ImageInfo | str:
    try:
        return inspect_image(path)
    except ColorganError as e:
        return str(e)
    except Exception as e:  # noqa: BLE001  (a scan of files from anywhere must not stop at the first oddity)
        return f"{path}: cannot decode ({type(e).__name__}: {e})"


def _inspect_all(paths: list[Path], desc: str) -> list[ImageInfo | str]:
    """_inspect of every path, in threads, with a progress bar on terminals for big folders."""
    from concurrent.futures import ThreadPoolExecutor

    from colorgan.progress import progress_bar

    with ThreadPoolExecutor(SCAN_THREADS) as pool:
        return list(progress_bar(pool.map(_inspect, paths), total=len(paths), desc=desc, unit="file",
                                 disable=len(paths) < 2000, leave=False))


def scan_images(paths: list[Path], desc: str = "checking images", folder: Path | None = None,
                scope: list[Path] | None = None) -> tuple[dict[Path, ImageInfo], list[str]]:
    """Decode every file once, so a bad file is reported before training instead of failing inside tf.data.

    Returns the readable ones with their size and whether they have colour, and 'path: reason' for the others.
    With `folder` (where the paths were listed, from the `scope` folders: default the folder itself) the scan
    cache is used: files unchanged since an earlier scan are not decoded again.
    """
    results = _inspect_all(paths, desc) if folder is None else cached_scan(folder, paths, scope or [folder], desc)
    good = {p: r for p, r in zip(paths, results) if isinstance(r, ImageInfo)}
    return good, [r for r in results if isinstance(r, str)]


def report_skipped(skipped: list[str]) -> None:
    """A warning per broken file (the first ten); black-and-white photos, an expected case, in one line."""
    gray = [line for line in skipped if line.endswith(GRAY_REASON)]
    broken = [line for line in skipped if not line.endswith(GRAY_REASON)]
    for reason in broken[:SHOW_SKIPPED]:
        log.warning("skipped %s", reason)
    if len(broken) > SHOW_SKIPPED:
        log.warning("... and %d more files skipped", len(broken) - SHOW_SKIPPED)
    if gray:
        log.info("%d black-and-white photo%s left out of training (%s%s)", len(gray), "s" * (len(gray) > 1),
                 gray[0].rsplit(": ", 1)[0], ", ..." if len(gray) > 1 else "")


# ---- the scan cache -------------------------------------------------------------------------------
# What the scan of a folder found, kept between runs: a new run or a --resume over the same folder decodes only
# the files that are new or changed since (told by their size and modification time, which need no reading).
SCAN_CACHE_VERSION = 1  # raise it when what inspect_image finds changes meaning
# A file changed this shortly before a scan is decoded again next time: file times are coarse (a filesystem
# tick; 2 s on FAT), and a change within the tick of the scan would keep the size and time the cache has.
RACY_NS = 2_000_000_000


def scan_cache_file(folder: Path) -> Path:
    """Where the scan of folder is cached: $COLORGAN_CACHE_DIR, else $XDG_CACHE_HOME/colorgan (default
    ~/.cache/colorgan), then scans/<hash of the folder's absolute path>.json."""
    base = os.environ.get("COLORGAN_CACHE_DIR") or \
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "colorgan"
    return Path(base) / "scans" / f"{hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:32]}.json"


def _cache_stamp() -> list:
    """What the cached findings depend on besides the files themselves: if any of it changes, they are stale."""
    import PIL

    from colorgan import __version__
    from colorgan.data.image_files import GRAY_CHROMA, PLAIN_MAX_SIDE
    return [SCAN_CACHE_VERSION, __version__, PIL.__version__, PLAIN_MAX_SIDE, GRAY_CHROMA]


def _file_key(path: Path) -> list[int] | None:
    """[size, mtime_ns] of a file, from os.stat; None when it cannot be stat'ed (such a file is never cached)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def read_scan_cache(file: Path) -> dict[str, dict]:
    """The cached findings by path relative to the folder; none when the cache is missing, damaged or stale."""
    try:
        cached = json.loads(file.read_text())
        return dict(cached["files"]) if cached["stamp"] == _cache_stamp() else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _cached_finding(entry: dict | None, key: list[int] | None, path: Path) -> ImageInfo | str | None:
    """What the cache says about path while the file has the size and time it was scanned with; else None."""
    if entry is None or key is None or entry.get("key") != key:
        return None
    if "skipped" in entry:
        return f"{path}: {entry['skipped']}"
    try:
        return ImageInfo(*entry["info"])
    except (KeyError, TypeError):
        return None


def _cache_entry(key: list[int], finding: ImageInfo | str, path: Path) -> dict:
    if isinstance(finding, ImageInfo):
        return {"key": key, "info": list(astuple(finding))}
    return {"key": key, "skipped": finding.removeprefix(f"{path}: ")}  # the folder may be named another way later


def _cacheable(key: list[int] | None, finding: ImageInfo | str, path: Path, started_ns: int) -> bool:
    """Whether a finding holds while the file keeps its size and time: not for a file changed just before the
    scan (RACY_NS), nor for one that failed for want of permission (a chmod changes neither)."""
    if key is None or key[1] >= started_ns - RACY_NS:
        return False
    return isinstance(finding, ImageInfo) or os.access(path, os.R_OK)


def write_scan_cache(file: Path, entries: dict[str, dict]) -> None:
    """Whole, then renamed (two workers may write it at once); a cache folder we may not write turns caching off."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_shared(file, json.dumps({"stamp": _cache_stamp(), "files": entries}))
    except OSError as e:
        log.debug("scan cache not written (%s: %s)", file, e)


def cached_scan(folder: Path, paths: list[Path], scope: list[Path], desc: str) -> list[ImageInfo | str]:
    """_inspect's findings for paths under folder, decoding only the files the cache does not know unchanged.

    The cache keeps these findings and, of its earlier ones, those outside `scope` (the folders these paths were
    listed from, e.g. the classes chosen): a file within it that is not listed any more is gone.
    """
    started = time.time_ns()
    file = scan_cache_file(folder)
    cached = read_scan_cache(file)
    names = [p.relative_to(folder).as_posix() for p in paths]
    keys = [_file_key(p) for p in paths]
    findings = [_cached_finding(cached.get(n), k, p) for n, k, p in zip(names, keys, paths)]
    todo = [i for i, f in enumerate(findings) if f is None]
    for i, finding in zip(todo, _inspect_all([paths[i] for i in todo], desc)):
        findings[i] = finding
    log.info("scan of %s: %d files, %d from the cache, %d checked", folder, len(paths), len(paths) - len(todo),
             len(todo))
    entries = {n: e for n, e in cached.items() if not any((folder / n).is_relative_to(s) for s in scope)}
    entries.update({n: _cache_entry(k, f, p) for n, k, f, p in zip(names, keys, findings, paths)
                    if _cacheable(k, f, p, started)})
    if entries != cached:
        write_scan_cache(file, entries)
    return findings

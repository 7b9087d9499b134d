"""Reading and writing photos for colorization (Pillow), and colorizing many files with a progress bar.

Reads what cameras and the web produce: JPEG with EXIF rotation, PNG (8/16-bit, alpha, palette), BMP, TIFF,
WebP, CMYK. A file that cannot be read is reported with its reason and skipped.
"""
from __future__ import annotations

import glob
import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from .errors import ColorganError

log = logging.getLogger("colorgan")
READABLE = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
Image.MAX_IMAGE_PIXELS = 100_000_000  # Pillow's own guard against decompression bombs, at 100 MP


def read_image(path: str | os.PathLike) -> np.ndarray:
    """-> uint8 or uint16 array HxW (gray), HxWx2 (gray + alpha), HxWx3 (RGB) or HxWx4 (RGBA), upright."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16L", "I;16B", "I"):
                return np.clip(np.asarray(im), 0, 65535).astype(np.uint16)
            if im.mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif im.mode in ("1", "F"):
                im = im.convert("L")
            elif im.mode == "PA":
                im = im.convert("RGBA")
            elif im.mode not in ("L", "LA", "RGB", "RGBA"):
                im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV
            return np.asarray(im).copy()
    except FileNotFoundError:
        raise ColorganError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise ColorganError(f"{path}: not an image Pillow can read") from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ColorganError(f"{path}: cannot read ({e})") from None


def write_image(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg") and image.shape[-1] == 4:
        image = image[..., :3]  # JPEG has no alpha
    tmp = path.with_name(f".tmp-{path.name}")
    Image.fromarray(image).save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"),
                                **({"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {}))
    os.replace(tmp, path)


def expand_inputs(inputs: list[str]) -> list[tuple[Path, Path]]:
    """(file, output path relative to OUT) for files, folders (recursive) and glob patterns."""
    found = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += [(p, p.relative_to(path)) for p in sorted(path.rglob("*"))
                      if p.is_file() and p.suffix.lower() in READABLE and not p.name.startswith(".")]
        elif path.exists():
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

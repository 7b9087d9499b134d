"""Reading and writing image files with Pillow, the same way for training data and for photos to colorize.

Reads what cameras and the web produce: JPEG with EXIF rotation, PNG (8/16-bit, alpha, palette), BMP, TIFF,
WebP, CMYK. A file that cannot be read is reported with its reason and skipped.
"""
from __future__ import annotations

import io
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from colorgan.atomic import temp_path
from colorgan.errors import ColorganError, ImageTooLarge, too_many_pixels

log = logging.getLogger("colorgan")
READABLE = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
Image.MAX_IMAGE_PIXELS = 100_000_000  # Pillow's own guard against decompression bombs, at 100 MP
ORIENTATION_TAG = 0x0112  # EXIF
# Above this side Pillow reads the photo: it can decode a JPEG at 1/2, 1/4 or 1/8 scale (DCT scaling),
# while TensorFlow's decoder always decodes every pixel of a photo that is then shrunk to the training size.
PLAIN_MAX_SIDE = 1024
GRAY_CHROMA = 1.0  # mean |R-G| + |G-B| (0-255) below which a photo has no colour (JPEG noise on gray is less)


@contextmanager
def opened_image(source: str | os.PathLike | bytes, name: str | None = None):
    """Pillow image of a file, or of encoded bytes in memory (named `name` in messages); any failure to open
    or decode becomes a ColorganError naming it."""
    name = name or str(source)
    try:
        if isinstance(source, (bytes, bytearray)):
            if not source:
                raise ColorganError(f"{name}: empty (0 bytes)")
            source = io.BytesIO(source)
        elif os.path.getsize(source) == 0:
            raise ColorganError(f"{name}: empty file (0 bytes)")
        with Image.open(source) as im:
            yield im
    except ColorganError:
        raise
    except FileNotFoundError:
        raise ColorganError(f"{name}: no such file (or a broken link)") from None
    except PermissionError:
        raise ColorganError(f"{name}: not readable (permission denied)") from None
    except IsADirectoryError:
        raise ColorganError(f"{name}: is a folder") from None
    except UnidentifiedImageError:
        raise ColorganError(f"{name}: not an image file this program reads (PNG, JPEG, TIFF, WebP, BMP, GIF)") from None
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"{name}: over the limit of {Image.MAX_IMAGE_PIXELS:,} pixels") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:  # truncated or corrupt data (SyntaxError: broken PNG)
        detail = "the file ends early" if "truncated" in str(e).lower() else str(e)
        raise ColorganError(f"{name}: cannot decode, damaged or incomplete ({detail})") from None


def read_image(source: str | os.PathLike | bytes, name: str | None = None, max_pixels: int = 0) -> np.ndarray:
    """A file or encoded bytes -> uint8 or uint16 array HxW (gray), HxWx2 (gray + alpha), HxWx3 (RGB) or
    HxWx4 (RGBA), upright. With max_pixels, a larger image is refused (ImageTooLarge) from its header,
    before its pixels are decoded."""
    with opened_image(source, name) as im:
        if max_pixels and im.size[0] * im.size[1] > max_pixels:
            raise too_many_pixels(name or source, im.size[0], im.size[1], max_pixels)
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


def _rgb8(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> uint8 RGB HxWx3: 16/32-bit gray scaled to 8 bits, alpha composited onto white."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I", "F"):
        scale = 255.0 if im.mode == "F" and float(np.asarray(im).max(initial=0)) <= 1.0 else 1 / 257
        gray = np.clip(np.round(np.asarray(im, np.float64) * scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if im.mode in ("LA", "PA", "RGBA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info):
        # Transparent pixels hold arbitrary colours; what a viewer shows is the image over a background.
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return np.asarray(im.convert("RGB"))


def read_rgb(path: str | os.PathLike, min_size: int = 0) -> np.ndarray:
    """The photo as training sees it: uint8 RGB HxWx3, upright, gray files replicated.

    With min_size, JPEGs decode at a reduced scale (DCT scaling: 1/2, 1/4 or 1/8) that keeps both
    sides >= min_size: a 12 MP photo trained at 256 px is decoded at 1/8 scale, a 64th of the pixels.
    """
    with opened_image(path) as im:
        if min_size and im.format == "JPEG":
            im.draft(im.mode, (min_size, min_size))
        return _rgb8(ImageOps.exif_transpose(im))


@dataclass(frozen=True)
class ImageInfo:
    width: int  # upright (EXIF rotation applied)
    height: int
    gray: bool  # no colour: one channel, or three equal ones
    plain: bool = False  # 8-bit gray/RGB JPEG, PNG or BMP, upright, <= PLAIN_MAX_SIDE: TensorFlow decodes it as is


def _png_bit_depth(path) -> int:
    with open(path, "rb") as f:
        header = f.read(25)
    return header[24] if len(header) == 25 else 0


def inspect_image(path: str | os.PathLike) -> ImageInfo:
    """Decode the whole file (at a reduced scale for JPEGs) so truncated data is caught here, not mid-run."""
    with opened_image(path) as im:
        width, height = im.size
        orientation = im.getexif().get(ORIENTATION_TAG, 1)
        if orientation in (5, 6, 7, 8):  # rotated by 90 degrees
            width, height = height, width
        plain = (im.format in ("JPEG", "PNG", "BMP") and im.mode in ("L", "RGB") and orientation == 1
                 and max(width, height) <= PLAIN_MAX_SIDE and (im.format != "PNG" or _png_bit_depth(path) == 8))
        if im.format == "JPEG":
            im.draft(im.mode, (64, 64))
        rgb = _rgb8(im).astype(np.int16)
    chroma = np.abs(rgb[..., 0] - rgb[..., 1]) + np.abs(rgb[..., 1] - rgb[..., 2])
    return ImageInfo(width, height, gray=float(chroma.mean()) < GRAY_CHROMA, plain=plain)


def encode_image(image: np.ndarray, image_format: str) -> bytes:
    """uint8 HxW, HxWx3 or HxWx4 -> encoded bytes; image_format is a Pillow format name ("PNG", "JPEG", ...).
    JPEG has no alpha: it is dropped."""
    if image_format == "JPEG" and image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=image_format, **({"quality": 95} if image_format == "JPEG" else {}))
    return buf.getvalue()


def write_image(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    tmp.write_bytes(encode_image(image, Image.registered_extensions().get(path.suffix.lower(), "PNG")))
    os.replace(tmp, path)

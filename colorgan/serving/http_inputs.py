"""Reading HTTP requests for the server: bodies with a size limit, multipart uploads, query options, and
TensorFlow Serving's REST predict bodies (row and columnar formats) checked into uint8 image batches.

Every problem is an HTTPError: a status and one line for the client.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import numpy as np
from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from colorgan.config import check_inference_number, check_vividness
from colorgan.errors import ColorganError, too_many_pixels

# A predict body is at most 6 levels deep ({"instances": [image [row [pixel [channel]]]]}); a deeper one is an
# attack on the parser's recursion, refused before parsing.
MAX_JSON_DEPTH = 32

FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "jpg": ("JPEG", "image/jpeg")}


class HTTPError(Exception):
    """A refused request: status, one line for the client, optional headers."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class ClientGone(Exception):
    """The client closed the connection before its body had arrived: nobody is left to answer."""


async def read_body(request: Request, max_bytes: int, stall_s: float = 10.0, total_s: float = 60.0) -> bytes:
    """The body, refused with 413 from Content-Length or, without one, as soon as more than max_bytes arrive;
    408 when no byte comes for stall_s or the whole body takes over total_s (a stalled upload must not hold a
    connection); ClientGone when the client disconnects."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPError(400, f"bad Content-Length {declared!r}")
        if int(declared) > max_bytes:
            raise HTTPError(413, f"body of {int(declared):,} bytes is over the limit of {max_bytes:,} bytes")
    body, deadline = bytearray(), time.monotonic() + total_s
    chunks = request.stream().__aiter__()
    while True:
        wait = min(stall_s, deadline - time.monotonic())
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), max(wait, 0.0))
        except StopAsyncIteration:
            return bytes(body)
        except asyncio.TimeoutError:
            why = f"no byte for {stall_s:g} s" if wait == stall_s else f"not all sent within {total_s:g} s"
            raise HTTPError(408, f"the body stopped arriving ({why})", {"Connection": "close"}) from None
        except ClientDisconnect:
            raise ClientGone() from None
        body += chunk
        if len(body) > max_bytes:
            raise HTTPError(413, f"body is over the limit of {max_bytes:,} bytes")


def json_body(body: bytes) -> Any:
    """The body parsed as JSON, with its nesting limited before parsing (MAX_JSON_DEPTH; brackets inside
    strings count too, which no predict body has)."""
    raw = np.frombuffer(body, np.uint8)
    step = np.isin(raw, (ord("["), ord("{"))).astype(np.int32) - np.isin(raw, (ord("]"), ord("}")))
    if raw.size and int(np.cumsum(step).max()) > MAX_JSON_DEPTH:
        raise HTTPError(400, f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise HTTPError(400, f"the body is not JSON ({str(e)[:80]})") from None


def multipart_file(body: bytes, content_type: str) -> bytes:
    """The first file part of a multipart/form-data body (else the first part), kept in memory."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise HTTPError(400, "multipart body without a boundary")
    parts: list[dict] = []
    header: list[bytes] = [b"", b""]

    def on_part_begin():
        parts.append({"data": bytearray(), "headers": {}})

    def on_header_field(data, start, end):
        header[0] += data[start:end]

    def on_header_value(data, start, end):
        header[1] += data[start:end]

    def on_header_end():
        parts[-1]["headers"][header[0].decode("latin-1").lower()] = header[1].decode("latin-1")
        header[0], header[1] = b"", b""

    def on_part_data(data, start, end):
        parts[-1]["data"] += data[start:end]

    parser = MultipartParser(boundary, {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                                        "on_header_value": on_header_value, "on_header_end": on_header_end,
                                        "on_part_data": on_part_data})
    try:
        parser.write(body)
        parser.finalize()
    except Exception as e:  # python-multipart's errors: a malformed body
        raise HTTPError(400, f"malformed multipart body ({e})") from None
    if not parts:
        raise HTTPError(400, "multipart body with no parts")
    files = [p for p in parts if "filename=" in p["headers"].get("content-disposition", "")]
    if not files:
        raise HTTPError(400, "the form has no file: send the photo as a file field (curl -F file=@photo.jpg)")
    if len(files) > 1:
        raise HTTPError(400, f"the form has {len(files)} files: send one photo per request")
    return bytes(files[0]["data"])


QUERY_OPTIONS = ("format", "vividness", "auto_levels", "hints", "cast_correction")
BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def query_options(request: Request, default_format: str = "png",
                  extra: tuple = ()) -> tuple[str, float | None, bool, list, float | None]:
    """/v1/colorize's query: (format, vividness or None for the model's, auto_levels, colour hints, cast_correction
    or None for the model's); `extra`: the names a route reads itself besides these.

    hints: X,Y,COLOR points separated by ';' (colorgan.inference.hints), e.g. hints=120,80,red;0.5,0.5,%232a6e3f."""
    known = QUERY_OPTIONS + tuple(extra)
    unknown = set(request.query_params) - set(known)
    if unknown:
        raise HTTPError(400, f"unknown parameter {sorted(unknown)[0]!r} (known: {', '.join(known)})")
    fmt = request.query_params.get("format", default_format).lower()
    if fmt not in FORMATS:
        raise HTTPError(400, f"format {fmt!r} is not one of png, jpeg")
    levels = request.query_params.get("auto_levels", "0").lower()
    if levels not in BOOLEANS:
        raise HTTPError(400, f"auto_levels must be 1 or 0 (true or false), got {levels[:20]!r}")
    vividness, cast = request.query_params.get("vividness"), request.query_params.get("cast_correction")
    return fmt, None if vividness in (None, "") else vividness_of(vividness), BOOLEANS[levels], \
        hints_of(request.query_params.get("hints", "")), None if cast in (None, "") else cast_correction_of(cast)


VARIANT_OPTIONS = ("k", "seed")


def variant_options(request: Request) -> tuple[int, int | None]:
    """/v1/variants' own query: k (how many, default DEFAULT_VARIANTS) and seed (default: new variants)."""
    from colorgan.inference.variants import DEFAULT_VARIANTS, check_variant_count
    k, seed = request.query_params.get("k", str(DEFAULT_VARIANTS)), request.query_params.get("seed")
    try:
        k = check_variant_count(int(k) if k.isdigit() else k)
    except ColorganError as e:
        raise HTTPError(400, str(e)) from None
    if seed is not None and not (seed.isdigit() and len(seed) <= 18):
        raise HTTPError(400, f"seed must be a whole number 0 or more, got {seed[:20]!r}")
    return k, None if seed is None else int(seed)


def hints_of(text: str) -> list:
    """The hints query parameter -> Hints (a 400 for a malformed one)."""
    from colorgan.inference.hints import parse_hints
    specs = [s for s in text.split(";") if s.strip()]
    try:
        return parse_hints(specs)
    except ColorganError as e:
        raise HTTPError(400, str(e)) from None


def cast_correction_of(value: Any) -> float:
    """A cast correction from a request, 0 to 1, checked by Config.cast_correction's rule."""
    try:
        return check_inference_number("cast_correction", value)
    except ColorganError as e:
        raise HTTPError(400, str(e)) from None


def vividness_of(value: Any) -> float:
    """A vividness from a request, checked as every entry point checks it (config.check_vividness)."""
    try:
        return check_vividness(value)
    except ColorganError as e:
        raise HTTPError(400, str(e)) from None


def images_from_json(value: Any, max_pixels: int) -> np.ndarray:
    """A JSON batch of images (nested lists of integers 0-255, [N, H, W, C], C = 1 or 3) -> uint8 array."""
    try:
        array = np.asarray(value)
    except ValueError:
        raise HTTPError(400, "images must be a batch [N, H, W, C] of equal-sized images (got ragged lists)") from None
    if array.dtype == object or array.dtype.kind not in "iuf" or array.size == 0 and array.ndim != 4:
        raise HTTPError(400, "images must be numbers 0-255 in nested lists [N, H, W, C]")
    if array.ndim != 4:
        raise HTTPError(400, f"images must have rank 4 [N, H, W, C], got shape {list(array.shape)}")
    if array.shape[-1] not in (1, 3):
        raise HTTPError(400, f"images must have 1 (gray) or 3 (RGB) channels, got {array.shape[-1]}")
    if 0 in array.shape:
        raise HTTPError(400, f"empty images, shape {list(array.shape)}")
    if array.shape[1] * array.shape[2] > max_pixels:
        raise HTTPError(413, str(too_many_pixels("images", array.shape[2], array.shape[1], max_pixels)))
    if array.dtype.kind == "f" and not np.isfinite(array).all():  # JSON's NaN, Infinity, 1e309: before any arithmetic
        raise HTTPError(400, "images must be uint8: whole numbers 0-255, got NaN or infinity")
    if array.dtype.kind == "f" and not np.all(np.mod(array, 1) == 0):
        raise HTTPError(400, "images must be uint8: whole numbers 0-255, got fractions")
    if array.min() < 0 or array.max() > 255:
        raise HTTPError(400, f"images must be uint8: 0-255, got values from {array.min()} to {array.max()}")
    return array.astype(np.uint8)


def predict_request(body: Any, max_pixels: int, hints: bool = False) -> tuple:
    """TF Serving's predict body -> (images, vividness, signature, row format, hints per image or None).

    hints: the model takes colour hints, so the colorize_hints signature is there (export.py describes it)."""
    if not isinstance(body, dict):
        raise HTTPError(400, 'the body must be a JSON object: {"instances": [...]} or {"inputs": ...}')
    signature = body.get("signature_name") or "serving_default"
    names = signatures(hints)
    if signature not in names:
        raise HTTPError(400, f"no signature {signature!r} (this model has {', '.join(names)})")
    if ("instances" in body) == ("inputs" in body):
        raise HTTPError(400, 'give exactly one of "instances" (row format) and "inputs" (columnar format)')
    expected = set(names[signature]["inputs"])
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise HTTPError(400, '"instances" must be a non-empty list of images')
        if signature != "serving_default":
            columns = ", ".join(f'"{name}": ...' for name in names[signature]["inputs"])
            raise HTTPError(400, f'the {signature} signature takes a scalar vividness: use the columnar format '
                                 f'{{"inputs": {{{columns}}}}}')
        if all(isinstance(i, dict) for i in instances):
            if any(set(i) != {"images"} for i in instances):
                raise HTTPError(400, 'each instance must be {"images": ...} (the signature\'s one input)')
            instances = [i["images"] for i in instances]
        return images_from_json(instances, max_pixels), None, signature, True, None
    inputs = body["inputs"]
    if not isinstance(inputs, dict):
        inputs = {"images": inputs}
    if set(inputs) != expected:
        raise HTTPError(400, f"signature {signature} takes inputs {sorted(expected)}, got {sorted(inputs)}")
    vividness = None
    if "vividness" in inputs:
        v = inputs["vividness"]
        if isinstance(v, list) and len(v) == 1:
            v = v[0]
        if isinstance(v, str):  # a JSON number, not a string that reads as one
            raise HTTPError(400, f"vividness must be a number, got {json.dumps(v)[:40]}")
        vividness = vividness_of(v)
    images = images_from_json(inputs["images"], max_pixels)
    return images, vividness, signature, False, hints_from_json(inputs["hints"], images.shape) \
        if "hints" in inputs else None


def hints_from_json(value: Any, images_shape: tuple) -> list:
    """The colorize_hints signature's hints, [N, K, 5] rows x, y (pixels from the top-left), r, g, b (0-255),
    -> one list of Hints per image; rows outside the photo are padding and left out, as the SavedModel does."""
    from colorgan.inference.hints import MAX_HINTS, Hint
    try:
        rows = np.asarray(value, np.float64)
    except (ValueError, TypeError):
        raise HTTPError(400, "hints must be numbers [N, K, 5]: x, y, r, g, b per point") from None
    n, height, width = images_shape[:3]
    if rows.ndim != 3 or rows.shape[0] != n or rows.shape[2] != 5:
        raise HTTPError(400, f"hints must be [N, K, 5] with N = {n} (one list per image, rows x, y, r, g, b), "
                             f"got shape {list(rows.shape)}")
    if rows.shape[1] > MAX_HINTS:
        raise HTTPError(400, f"at most {MAX_HINTS} hints per photo, got {rows.shape[1]}")
    if not np.all(np.isfinite(rows)):
        raise HTTPError(400, "hints must be finite numbers")
    if np.any((rows[..., 2:] < 0) | (rows[..., 2:] > 255)):
        raise HTTPError(400, "hint colours are r, g, b from 0 to 255")
    return [[Hint(float(x), float(y), (int(round(r)), int(round(g)), int(round(b))))
             for x, y, r, g, b in photo if 0 <= x < width and 0 <= y < height] for photo in rows]


def tensor_info(dtype: str, rank: int) -> dict:
    return {"dtype": dtype, "tensor_shape": {"dim": [{"size": "-1", "name": ""}] * rank, "unknown_rank": False},
            "name": ""}


# What saved_model_cli shows for an exported model (export.py), in TF Serving's metadata JSON.
SIGNATURES = {
    "serving_default": {"inputs": {"images": tensor_info("DT_UINT8", 4)},
                        "outputs": {"colorized": tensor_info("DT_UINT8", 4)}, "method_name": "tensorflow/serving/predict"},
    "colorize": {"inputs": {"images": tensor_info("DT_UINT8", 4), "vividness": tensor_info("DT_FLOAT", 0)},
                 "outputs": {"colorized": tensor_info("DT_UINT8", 4)}, "method_name": "tensorflow/serving/predict"},
}
HINT_SIGNATURE = {"inputs": {"images": tensor_info("DT_UINT8", 4), "vividness": tensor_info("DT_FLOAT", 0),
                             "hints": tensor_info("DT_FLOAT", 3)},
                  "outputs": {"colorized": tensor_info("DT_UINT8", 4)}, "method_name": "tensorflow/serving/predict"}


def signatures(hints: bool) -> dict:
    """The signatures of a model's SavedModel: a --hints model's has colorize_hints as well."""
    return {**SIGNATURES, "colorize_hints": HINT_SIGNATURE} if hints else SIGNATURES

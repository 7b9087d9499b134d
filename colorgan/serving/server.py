"""The colorizer as a web server: a page for people, an HTTP API for programs (FastAPI, served by uvicorn).

Routes
  GET  /                                  the web page (colorgan/serving/web/: plain HTML/CSS/JS, nothing from a CDN)
  POST /v1/colorize?format=&vividness=&auto_levels=    an image (the body, or a multipart file) -> the colorized image
                 (&hints= colour points, &cast_correction= 0-1: each photo's own)
  POST /v1/models/colorgan:predict        TensorFlow Serving's REST predict ({"instances": ...} or {"inputs": ...})
  GET  /v1/models/colorgan[/metadata]     TensorFlow Serving's model status and signature metadata
  GET  /v1/info                           model name and limits (what the page needs)
  GET  /healthz, /metrics                 liveness; Prometheus text format

One model worker runs the network (batching.MicroBatcher): requests that arrive together and share a working
size run as one batch; decoding, the full-size recombination and encoding run in request threads. Every
refusal is a 4xx (503 when the queue is full) with a JSON body {"error": "..."}, as TF Serving answers.

    from colorgan.serving.server import create_app, ColorizerBackend
    app = create_app(ColorizerBackend(Colorizer.load(), "shipped weights"))   # then: uvicorn.run(app)
"""
from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from colorgan.data.image_files import encode_image, opened_image, read_image
from colorgan.errors import ColorganError, ImageTooLarge, too_many_pixels
from colorgan.inference.variants import draw_hint_sets, image_ab
from colorgan.serving.backends import ColorizerBackend, SavedModelBackend  # noqa: F401 (serve.py and tests import them here)
from colorgan.serving.batching import MicroBatcher, QueueFull
from colorgan.serving.budget import BudgetTimeout, PixelBudget
from colorgan.serving.http_inputs import (FORMATS, ClientGone, HTTPError, json_body, multipart_file, predict_request,
                                          query_options, read_body, signatures, VARIANT_OPTIONS, variant_options)

log = logging.getLogger("colorgan")
MODEL_NAME = "colorgan"  # the name in TF Serving's URLs: /v1/models/colorgan:predict
WEB = Path(__file__).parent / "web"
PAGE_FILES = {"app.js": "text/javascript", "style.css": "text/css"}  # served from memory: no request is a path


@dataclass(frozen=True)
class Limits:
    max_batch: int = 8
    batch_wait_ms: float = 0.0
    queue_size: int = 64
    timeout_s: float = 30.0
    max_upload_mb: float = 20.0
    max_pixels: int = 40_000_000
    max_pixels_in_flight: int = 80_000_000  # pixels being decoded, colorized and encoded at once (budget.py)
    body_stall_s: float = 10.0  # an upload with no byte for this long is answered 408 and its connection closed
    body_total_s: float = 60.0  # and one not all sent in this time


def warm_up(backend) -> None:
    """Run a few small photos through every step once, so the first real request does not pay for tracing
    the network and the recombination (about 2 s on a CPU)."""
    photos = [np.zeros(shape, np.uint8) for shape in ((32, 64), (64, 32), (64, 64), (60, 60))]
    jobs = [backend.prepare(photo, None)[1] for photo in photos]
    for batch in ([jobs[0]], [jobs[1]], [jobs[2], jobs[3]]):  # sizes and batch sizes vary, as requests will
        for job, result in zip(batch, backend.run(batch)):
            backend.finish(job, result)


# ---- reading requests -------------------------------------------------------------------------------------
# ---- the app ----------------------------------------------------------------------------------------------
class Service:
    """The backend behind its batcher, with the metrics the routes record."""

    def __init__(self, backend, limits: Limits):
        if limits.max_pixels > limits.max_pixels_in_flight:
            raise ValueError(f"max_pixels ({limits.max_pixels:,}) is over max_pixels_in_flight "
                             f"({limits.max_pixels_in_flight:,}): such a photo could never be worked on")
        self.backend, self.limits = backend, limits
        self.budget = PixelBudget(limits.max_pixels_in_flight)
        self.registry = CollectorRegistry()
        self.requests = Counter("colorgan_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram("colorgan_request_seconds", "HTTP request latency by route", ["route"],
                                 registry=self.registry,
                                 buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
        self.batch_sizes = Histogram("colorgan_batch_size", "photos per network call", registry=self.registry,
                                     buckets=(1, 2, 4, 8, 16, 32, 64))
        self.batcher = MicroBatcher(backend.run, limits.max_batch, limits.batch_wait_ms / 1000.0,
                                    limits.queue_size, on_batch=self.batch_sizes.observe)
        Gauge("colorgan_queue_length", "photos waiting for the model", registry=self.registry).set_function(
            lambda: len(self.batcher))

    async def colorize(self, sources: list, vividness: float | None, load=None, save=None,
                       auto_levels: bool = False, pixels=None, hints=(), hints_each=None,
                       cast_correction: float | None = None) -> list:
        """Each source: load (decode) and prepare in one worker thread, the network in the model's batches,
        finish and save (encode) in one worker thread: two thread hops per photo, whatever the batch. All of it
        inside the pixel budget: pixels(source) counts a source before it is decoded (default: an array's).
        hints: colour hints for every source; hints_each: one list per source instead. vividness and
        cast_correction: None for the model's."""
        hints_each = hints_each or [hints] * len(sources)
        pixels = pixels or (lambda image: int(np.prod(np.shape(image)[:2])))
        total = sum(pixels(source) for source in sources)
        if total > self.budget.capacity:
            raise HTTPError(413, f"the request's photos are {total:,} pixels, over the server's limit of "
                                 f"{self.budget.capacity:,} in work at once")
        try:
            async with self.budget.hold(total, self.limits.timeout_s):
                return await self._colorize(sources, vividness, load, save, auto_levels, hints_each,
                                            cast_correction)
        except BudgetTimeout:
            raise HTTPError(503, f"the server is busy with other large photos (no room within "
                                 f"{self.limits.timeout_s:g} s): try again shortly", {"Retry-After": "5"}) from None

    async def _colorize(self, sources, vividness, load, save, auto_levels, hints_each, cast_correction) -> list:
        def prepare(source, hints):
            return self.backend.prepare(load(source) if load else source, vividness, auto_levels, hints,
                                        cast_correction=cast_correction)

        def finish(job, result):
            out = self.backend.finish(job, result)
            return save(out) if save else out

        jobs = [await run_in_threadpool(prepare, source, hints) for source, hints in zip(sources, hints_each)]
        futures = []
        try:
            for key, job in jobs:
                futures.append(self.batcher.submit(key, job))
        except QueueFull:
            for f in futures:
                f.cancel()
            raise HTTPError(503, "the server is busy (its queue is full): try again shortly",
                            {"Retry-After": "1"}) from None
        try:
            results = await asyncio.wait_for(asyncio.gather(*(asyncio.wrap_future(f) for f in futures)),
                                             self.limits.timeout_s)
        except asyncio.TimeoutError:
            for f in futures:
                f.cancel()
            raise HTTPError(503, f"no answer within {self.limits.timeout_s:g} s: the server is overloaded",
                            {"Retry-After": "5"}) from None
        return [await run_in_threadpool(finish, job, result) for (_, job), result in zip(jobs, results)]


def error_response(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


# Open with a key too: the page and its files (no data, no work: the page then asks for the key) and /healthz
OPEN_PATHS = {"/", "/healthz"}


def key_matches(given: str, keys) -> bool:
    """Constant-time comparison against every key (no early exit: the time does not say which one was near)."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(given.encode(), key.encode())
    return found


def given_key(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else request.headers.get("x-api-key", "")


def checked_pixels(data: bytes, max_pixels: int) -> int:
    """An upload's pixels from its header; ImageTooLarge (413) over max_pixels, before anything is decoded."""
    with opened_image(data, "the uploaded image") as im:
        if im.size[0] * im.size[1] > max_pixels:
            raise too_many_pixels("the uploaded image", im.size[0], im.size[1], max_pixels)
        return im.size[0] * im.size[1]


def create_app(backend, limits: Limits = Limits(), api_keys=(), cors_origins=()) -> FastAPI:
    """The FastAPI app serving `backend` (ColorizerBackend or SavedModelBackend). api_keys: when given, every
    route but OPEN_PATHS and the page's files needs one (Bearer or X-API-Key), else 401. cors_origins: the
    sites whose pages may call the API from a browser (none by default)."""
    service = Service(backend, limits)
    page = (WEB / "index.html").read_text()
    page_files = {name: (WEB / name).read_bytes() for name in PAGE_FILES}

    async def lifespan(app):
        yield
        service.batcher.stop()

    app = FastAPI(title="colorgan", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service

    @app.middleware("http")
    async def require_key(request: Request, call_next):
        path = request.url.path
        if api_keys and path not in OPEN_PATHS and not path.startswith("/static/") and request.method != "OPTIONS" \
                and not key_matches(given_key(request), api_keys):
            return error_response(401, "this server needs a key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                                  {"WWW-Authenticate": "Bearer"})
        return await call_next(request)

    @app.middleware("http")
    async def count_and_time(request: Request, call_next):
        start = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:  # a bug, not the client's fault: logged here, a one-line 500 for the client
            log.exception("%s %s failed", request.method, request.url.path)
            response = error_response(500, "internal error (logged by the server)")
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        service.requests.labels(name, str(response.status_code)).inc()
        service.latency.labels(name).observe(time.perf_counter() - start)
        return response

    @app.exception_handler(HTTPError)
    async def refused(request, e: HTTPError):
        return error_response(e.status, e.message, e.headers)

    @app.exception_handler(ClientGone)
    async def client_gone(request, e: ClientGone):  # not a server fault: one line, and nobody to answer
        log.info("%s %s: the client disconnected before its upload ended", request.method, request.url.path)
        return Response(status_code=499)

    @app.exception_handler(ImageTooLarge)
    async def too_large(request, e: ImageTooLarge):
        return error_response(413, str(e))

    @app.exception_handler(ColorganError)
    async def bad_input(request, e: ColorganError):
        return error_response(400, str(e))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, e: StarletteHTTPException):
        message = {404: f"no route {request.url.path}",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(e.status_code, str(e.detail))
        return error_response(e.status_code, message, getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        return error_response(400, f"{'.'.join(map(str, first.get('loc', [])))}: {first.get('msg', 'invalid')}")

    @app.get("/", response_class=HTMLResponse)
    async def index():
        return HTMLResponse(page)

    @app.get("/static/{name}")
    async def static(name: str):
        if name not in page_files:
            raise HTTPError(404, f"no file {name!r}")
        return Response(page_files[name], media_type=PAGE_FILES[name])

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics():
        return Response(generate_latest(service.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/info")
    async def info():
        return {"model": backend.name, "vividness": backend.vividness, "cast_correction": backend.cast_correction,
                "cast_correction_per_photo": backend.cast_per_photo,
                "max_upload_mb": limits.max_upload_mb,
                "needs_key": bool(api_keys),
                "max_pixels": limits.max_pixels, "formats": ["png", "jpeg"], "auto_levels": backend.auto_levels,
                "hints": backend.hints}

    async def photo_body(request: Request) -> bytes:
        body = await read_body(request, int(limits.max_upload_mb * 1_000_000), limits.body_stall_s,
                               limits.body_total_s)
        content_type = request.headers.get("content-type", "")
        return multipart_file(body, content_type) if content_type.lower().startswith("multipart/") else body

    @app.post("/v1/colorize")
    async def colorize(request: Request):
        fmt, vividness, auto_levels, hints, cast = query_options(request)
        body = await photo_body(request)
        pillow_format, media_type = FORMATS[fmt]
        (encoded,) = await service.colorize(
            [body], vividness, load=lambda data: read_image(data, "the uploaded image", limits.max_pixels),
            save=lambda image: encode_image(image, pillow_format), auto_levels=auto_levels, hints=hints,
            pixels=lambda data: checked_pixels(data, limits.max_pixels), cast_correction=cast)
        return Response(encoded, media_type=media_type)

    @app.post("/v1/variants")
    async def variants(request: Request):
        """k colourings of the photo under hints drawn from the automatic one (inference.variants), each with its
        hints as fractions of the photo (to send back to /v1/colorize as they are, or changed)."""
        fmt, vividness, auto_levels, hints, cast = query_options(request, extra=VARIANT_OPTIONS)
        k, seed = variant_options(request)
        if not backend.hints:
            raise HTTPError(400, "this server's model was trained without --hints, so it makes no variants "
                                 "(serve.py --run weights/hints)")
        body = await photo_body(request)
        decoded = []  # the photo, decoded once inside the pixel budget, for the variants after the automatic one

        def load(data):
            decoded.append(read_image(data, "the uploaded image", limits.max_pixels))
            return decoded[0]
        (auto,) = await service.colorize([body], vividness, load=load, auto_levels=auto_levels, hints=hints,
                                         pixels=lambda data: checked_pixels(data, limits.max_pixels),
                                         cast_correction=cast)
        image = decoded[0]
        height, width = image.shape[:2]
        drawn = await run_in_threadpool(lambda: draw_hint_sets(image_ab(auto), (height, width), k, seed, hints))
        pillow_format, media_type = FORMATS[fmt]
        encoded = await service.colorize([image] * k, vividness, save=lambda out: encode_image(out, pillow_format),
                                         auto_levels=auto_levels, hints_each=drawn, cast_correction=cast)
        return {"media_type": media_type, "variants": [
            {"image": base64.b64encode(data).decode("ascii"),
             "hints": [hint.as_fraction(height, width).as_json() for hint in points]}
            for data, points in zip(encoded, drawn)]}

    def model_action(spec: str) -> str:
        """'colorgan', 'colorgan/versions/1', with ':predict' or '/metadata' -> '', 'predict' or 'metadata'."""
        path, _, method = spec.partition(":")
        name, *rest = path.split("/")
        if name != MODEL_NAME:
            raise HTTPError(404, f"no model {name!r} (this server serves {MODEL_NAME!r})")
        if rest[:1] == ["versions"]:
            if rest[1:2] != ["1"]:
                raise HTTPError(404, f"no such version of {MODEL_NAME} (it has version 1)")
            rest = rest[2:]
        if rest == ["metadata"] and not method:
            return "metadata"
        if not rest and method in ("", "predict"):
            return method
        raise HTTPError(404, f"no route /v1/models/{spec}")

    @app.get("/v1/models/{spec:path}")
    async def model_status(spec: str):
        action = model_action(spec)
        if action == "predict":
            raise HTTPError(405, "GET is not allowed on :predict (POST a JSON body)")
        if action == "metadata":
            return {"model_spec": {"name": MODEL_NAME, "signature_name": "", "version": "1"},
                    "metadata": {"signature_def": {"signature_def": signatures(backend.hints)}}}
        return {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                          "status": {"error_code": "OK", "error_message": ""}}]}

    @app.post("/v1/models/{spec:path}")
    async def predict(spec: str, request: Request):
        if model_action(spec) != "predict":
            raise HTTPError(405, f"POST is allowed on /v1/models/{MODEL_NAME}:predict only")
        body = await read_body(request, int(limits.max_upload_mb * 1_000_000), limits.body_stall_s,
                               limits.body_total_s)
        parsed = json_body(body)
        images, vividness, _, row_format, hints = await run_in_threadpool(predict_request, parsed, limits.max_pixels,
                                                                          backend.hints)
        outputs = await service.colorize(list(images), vividness, hints_each=hints)
        colorized = np.stack(outputs).tolist()
        return {"predictions": colorized} if row_format else {"outputs": colorized}

    if cors_origins:  # outermost, so a 401 or 413 reaches the other site's page too
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"])
    return app


def listening_socket(host: str, port: int) -> socket.socket:
    """Bind and listen before the model loads, so a taken port is a one-line error at once; port 0: any free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ColorganError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    sock.listen(2048)
    return sock


def is_loopback(host: str) -> bool:
    import ipaddress
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_server(app: FastAPI, sock: socket.socket) -> None:
    import uvicorn
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5))
    server.run(sockets=[sock])

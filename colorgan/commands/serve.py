"""`serve.py` / `colorgan serve`: a web page and an HTTP API (TensorFlow Serving's REST API too) around a colorizer."""
from __future__ import annotations

import argparse
import os
import sys

from colorgan.cli import OneLineErrorParser, import_tensorflow_quietly, setup_logging, vividness_type

PROG = "serve.py"
API_KEYS_ENV = "COLORGAN_API_KEYS"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=prog,
        description="Serve a web page at / (drop photos, compare before and after, download) and an HTTP API: "
                    "POST /v1/colorize (an image in, the colorized image out), TensorFlow Serving's "
                    "POST /v1/models/colorgan:predict and GET /v1/models/colorgan, GET /healthz, GET /metrics.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this "
                        "machine only; 0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s; 0: any free port)")
    parser.add_argument("--run", help="a run directory from train.py (default: the shipped weights/)")
    parser.add_argument("--saved-model", metavar="DIR", help="an exported SavedModel (export.py's OUT or OUT/VERSION) "
                        "instead of --run: the artefact TF Serving would load")
    parser.add_argument("--vividness", type=vividness_type, help="default vividness for requests that give none "
                        "(default: the model's; not with --saved-model)")
    parser.add_argument("--max-batch", type=int, default=8, help="most photos per network call; 1: one at a time "
                        "(default: %(default)s)")
    parser.add_argument("--batch-wait-ms", type=float, default=0.0, help="how long the model waits for more photos "
                        "to fill a batch; 0: it takes those already waiting, which under load is a full batch "
                        "(default: %(default)s)")
    parser.add_argument("--queue-size", type=int, default=64, help="photos that may wait for the model; beyond "
                        "this a request gets 503 with Retry-After (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a request may wait for the model "
                        "(default: %(default)s)")
    parser.add_argument("--max-upload-mb", type=float, default=20.0, help="largest request body in MB "
                        "(default: %(default)s)")
    parser.add_argument("--max-pixels", type=int, default=40_000_000, help="largest image in pixels, checked from "
                        "its header before decoding (default: %(default)s)")
    parser.add_argument("--max-pixels-in-flight", type=int, default=80_000_000, metavar="N",
                        help="pixels of photos being decoded, colorized and encoded at once, which bounds the "
                             "server's memory (about 16 bytes each beyond the model, measured: docs/serving.md); "
                             "more waits its turn, then 503 (default: %(default)s; at least --max-pixels)")
    parser.add_argument("--api-key", action="append", default=[], metavar="KEY",
                        help="require this key (repeat for several; also the comma list in $" + API_KEYS_ENV + "): "
                             "every route but /, the page's files and /healthz then needs 'Authorization: Bearer "
                             "KEY' or 'X-API-Key: KEY', else 401; the page asks for it once")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="let pages from this origin (e.g. https://example.org; repeatable) call the API from "
                             "a browser (default: none, CORS off)")
    return parser


def parse_args(argv=None, prog: str = PROG) -> argparse.Namespace:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be 0..65535")
    if args.max_pixels_in_flight < args.max_pixels:
        parser.error("--max-pixels-in-flight must be at least --max-pixels (a photo must fit the budget)")
    for flag in ("max_batch", "queue_size", "max_pixels"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    for flag in ("timeout", "max_upload_mb"):
        if not getattr(args, flag) > 0:
            parser.error(f"--{flag.replace('_', '-')} must be a positive number")
    if not args.batch_wait_ms >= 0:
        parser.error("--batch-wait-ms must be 0 or more")
    if args.saved_model and (args.run or args.vividness is not None):
        parser.error("--saved-model is the whole model: not with --run or --vividness")
    args.api_key = [k.strip() for k in args.api_key + os.environ.get(API_KEYS_ENV, "").split(",") if k.strip()]
    if any(len(k) < 8 or not k.isprintable() or " " in k for k in args.api_key):
        parser.error("--api-key: a key is at least 8 printable characters without spaces")
    return args


def main(argv=None, prog: str = PROG) -> int:
    args = parse_args(argv, prog)
    setup_logging()
    from colorgan.serving.server import Limits, create_app, is_loopback, listening_socket, run_server

    sock = listening_socket(args.host, args.port)  # a taken port fails here, before the model loads
    try:
        import_tensorflow_quietly()
        from colorgan.inference.colorizer import Colorizer
        from colorgan.serving.server import ColorizerBackend, SavedModelBackend, warm_up

        if args.saved_model:
            backend = SavedModelBackend(args.saved_model)
        else:
            colorizer = Colorizer.load(args.run, vividness=args.vividness)
            backend = ColorizerBackend(colorizer, args.run or "shipped weights")
        warm_up(backend)
        limits = Limits(max_batch=args.max_batch, batch_wait_ms=args.batch_wait_ms, queue_size=args.queue_size,
                        timeout_s=args.timeout, max_upload_mb=args.max_upload_mb, max_pixels=args.max_pixels,
                        max_pixels_in_flight=args.max_pixels_in_flight)
        host, port = sock.getsockname()[:2]
        if not is_loopback(args.host) and not args.api_key:
            print(f"{prog}: warning: listening on {args.host}, reachable from other machines, with no key: anyone "
                  f"who reaches port {port} can use it (give --api-key)", file=sys.stderr)
        shown = f"[{host}]" if ":" in host else host
        print(f"colorgan: serving {backend.name} at http://{shown}:{port}/ (Ctrl-C to stop)", flush=True)
        run_server(create_app(backend, limits, api_keys=args.api_key, cors_origins=args.cors_origin), sock)
    finally:
        sock.close()
    return 0

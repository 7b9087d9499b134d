"""Clients that cost a server: for `serve_load.py --hostile`, run beside the well-behaved ones.

  large    posts a large (--hostile-megapixels) gray PNG to /v1/colorize over and over: a few kilobytes that
           decode to tens of millions of pixels, the costly image a stranger can send within --max-pixels
  stalled  opens a connection, sends headers promising a 100,000-byte body and 8 bytes of it, then nothing, and
           waits for the server to give up on it (slowloris); then again

Each records its outcomes in a serve_load.Load: the HTTP status, or "held" seconds for the stalled ones.
"""
from __future__ import annotations

import http.client
import io
import socket
import threading
import time

STALLED_LENGTH = 100_000  # the body a stalled client promises
STALLED_SENT = b"\xff\xd8\xff\xe0\x00\x10JF"  # the 8 bytes it sends: the start of a JPEG


def large_png(megapixels: float) -> bytes:
    """A square gray PNG of about `megapixels`: a smooth gradient, so a few kilobytes on the wire."""
    import numpy as np
    from PIL import Image
    side = int((megapixels * 1e6) ** 0.5)
    row = np.linspace(0, 255, side, dtype=np.float32)
    image = ((row[None, :] + row[:, None]) / 2).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG", optimize=True)
    return out.getvalue()


def post_large(host: str, port: int, body: bytes, load, stop: threading.Event, timeout: float) -> None:
    while not stop.is_set():
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        t = time.perf_counter()
        try:
            conn.request("POST", "/v1/colorize?format=jpeg", body=body, headers={"Content-Type": "image/png"})
            resp = conn.getresponse()
            resp.read()
            load.record(str(resp.status), time.perf_counter() - t if resp.status == 200 else None)
            if resp.status == 503:
                time.sleep(float(resp.getheader("Retry-After") or 1))
        except OSError as exc:
            load.record("conn-error", None, f"{type(exc).__name__}: {exc}")
            time.sleep(0.5)
        finally:
            conn.close()


def hold_stalled(host: str, port: int, load, stop: threading.Event, timeout: float) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        try:
            with socket.create_connection((host, port), timeout=timeout) as sock:
                sock.sendall(f"POST /v1/colorize HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/jpeg\r\n"
                             f"Content-Length: {STALLED_LENGTH}\r\n\r\n".encode() + STALLED_SENT)
                answer = sock.recv(256)  # the server's answer (or its closing the connection) ends the wait
            status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "closed"
            load.record(f"stalled-{status}", time.perf_counter() - t)
        except OSError as exc:
            load.record("stalled-conn-error", None, f"{type(exc).__name__}: {exc}")
            time.sleep(0.5)


def start_hostile(host: str, port: int, large: int, stalled: int, megapixels: float, load, stop: threading.Event,
                  timeout: float) -> list[threading.Thread]:
    """Start `large` + `stalled` hostile client threads; they run until `stop` is set."""
    body = large_png(megapixels)
    threads = [threading.Thread(target=post_large, args=(host, port, body, load, stop, timeout), daemon=True)
               for _ in range(large)]
    threads += [threading.Thread(target=hold_stalled, args=(host, port, load, stop, timeout), daemon=True)
                for _ in range(stalled)]
    for t in threads:
        t.start()
    return threads

"""Load test of the colorization HTTP server (`serve.py`): throughput and latency with micro-batching on and off.

    python benchmarks/serve_load.py [--photos DIR] [--max-photos 64] [--clients 1,4,16] [--seconds 20]
                                    [--batching on,off] [--max-batch B] [--batch-wait-ms MS] [--queue-size Q]
                                    [--max-requests N] [--rss-requests 2000] [--rss-only]

Real photos: the JPEG files of --photos (default ../shared/data/imagenet-sample, photos of diverse sizes;
`"../shared/data/landscape Images/color"` holds 150x150 ones), sorted by name, the first --max-photos of them,
read once into memory. When the folder is absent (or holds no JPEG) the run is skipped with a message (exit 0).

For each batching setting it starts one server from the repository root,
`python serve.py --host 127.0.0.1 --port PORT` ("on": the server's micro-batching defaults, or the
--max-batch/--batch-wait-ms given here) or `... --max-batch 1` ("off": one request at a time) and waits for
GET /healthz (up to --startup-timeout; the model loads meanwhile). For each client count N it then sends
--warmup requests from N clients, not measured (by default every photo once, at least 2 per client, so that
each photo size the server may compile for has been seen), and runs N client threads for --seconds (or until
--max-requests requests in all), each posting the photos round-robin to /v1/colorize?format=jpeg in a closed
loop: a client sends its next photo when the previous answer has arrived. --fresh-server starts a new server
for every row instead. Then, unless --rss-requests is 0, a fresh server gets a warm-up and --rss-requests
requests from --rss-clients clients, and its resident memory (VmRSS) after the warm-up and after those
requests is compared (--rss-only: only that check).

A 503 (queue full or overloaded, with Retry-After) is deliberate back-pressure: it is counted apart and not
retried; the client pauses --backoff-ms before sending its next photo. Latency percentiles are over the 200
answers only, throughput is 200 answers per second of wall time. Any other status, a 200 whose body is not a
JPEG ("bad-200"), a timeout or a connection error is a failure.

Prints a row per (batching, clients) as it is measured, then a Markdown table of all rows, the ratio of
micro-batching to one-at-a-time throughput for each client count, and the memory check. Nothing is asserted
about timing: the numbers depend on the machine and on what else runs on it. Exit status 0, or 1 when a
server did not start (or died) or a failure other than a 503 happened; 130 on Ctrl-C or SIGTERM. Servers are
stopped with SIGINT (then SIGTERM, then SIGKILL) in every case.
"""
from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = ROOT.parent / "shared" / "data" / "imagenet-sample"
COLORIZE_PATH = "/v1/colorize?format=jpeg"
JPEG_SUFFIXES = {".jpg", ".jpeg"}


# ---------------------------------------------------------------- the server process

class ServerError(Exception):
    """The server did not become ready, or exited; `tail` is the end of its output."""

    def __init__(self, message: str, tail: str = ""):
        super().__init__(message)
        self.tail = tail


class Server:
    """One `serve.py` process in its own process group, its output drained into a tail (and a log file)."""

    def __init__(self, command: list[str], host: str, port: int, log_path: str | None):
        self.command, self.host, self.port = command, host, port
        self.tail: collections.deque[str] = collections.deque(maxlen=60)
        self.ready_line = threading.Event()
        self._log = open(log_path, "a", encoding="utf-8") if log_path else None
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, errors="replace", start_new_session=True)
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        marker = f"http://{self.host}:{self.port}/"
        for line in self.proc.stdout:
            self.tail.append(line.rstrip("\n"))
            if self._log:
                self._log.write(line)
                self._log.flush()
            if marker in line:
                self.ready_line.set()

    def output_tail(self, lines: int = 30) -> str:
        return "\n".join(list(self.tail)[-lines:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float) -> float:
        """Seconds until GET /healthz answered 200 {"status": "ok"}; ServerError when it exits or times out."""
        start = time.monotonic()
        while True:
            if not self.alive():
                self._reader.join(2)
                raise ServerError(f"the server exited with status {self.proc.returncode} before it was ready",
                                  self.output_tail())
            if health_ok(self.host, self.port):
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise ServerError(f"the server was not ready after {timeout:.0f} s"
                                  + ("" if self.ready_line.is_set() else " (no ready line on stdout)"),
                                  self.output_tail())
            time.sleep(0.5)

    def rss_mib(self) -> float | None:
        return proc_status_mib(self.proc.pid, "VmRSS")

    def peak_rss_mib(self) -> float | None:
        return proc_status_mib(self.proc.pid, "VmHWM")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGINT, then SIGTERM, then SIGKILL, each to the server's process group, until it has exited."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                continue
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        # A child the server left in its group outlives it only if it ignored SIGINT; end the group too.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._reader.join(2)
        if self._log:
            self._log.close()
            self._log = None


def proc_status_mib(pid: int, field: str) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def health_ok(host: str, port: int) -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            return False
        return json.loads(body).get("status") == "ok"
    except (OSError, http.client.HTTPException, ValueError, AttributeError):
        return False
    finally:
        conn.close()


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the clients

class Client:
    """One keep-alive connection (reopened when the server closes it) posting photos."""

    def __init__(self, host: str, port: int, timeout: float):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def post(self, body: bytes) -> tuple[int, bytes]:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            reused = self.conn.sock is not None
            try:
                self.conn.request("POST", COLORIZE_PATH, body=body,
                                  headers={"Content-Type": "image/jpeg", "Content-Length": str(len(body))})
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    self.close()
                return resp.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if not reused or attempt:  # only a stale keep-alive connection is retried, once
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")


def error_label(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timeout"
    if isinstance(exc, (OSError, http.client.HTTPException)):
        return "conn-error"
    return "error"


class Load:
    """The outcome of one closed-loop run."""

    def __init__(self):
        self.counts: collections.Counter[str] = collections.Counter()
        self.latencies: list[float] = []  # seconds, 200 answers only
        self.errors: dict[str, str] = {}  # label -> first message
        self.elapsed = 0.0
        self._lock = threading.Lock()

    def record(self, label: str, latency: float | None, message: str | None = None) -> None:
        with self._lock:
            self.counts[label] += 1
            if latency is not None:
                self.latencies.append(latency)
            if message and label not in self.errors:
                self.errors[label] = message

    @property
    def requests(self) -> int:
        return sum(self.counts.values())

    @property
    def ok(self) -> int:
        return self.counts.get("200", 0)

    @property
    def failures(self) -> int:
        return sum(n for label, n in self.counts.items() if label not in ("200", "503"))

    def status_text(self) -> str:
        def key(label):
            return (0, int(label)) if label.isdigit() else (1, label)
        return " ".join(f"{label}:{self.counts[label]}" for label in sorted(self.counts, key=key)) or "-"


def run_load(host: str, port: int, photos: list[bytes], clients: int, seconds: float | None,
             max_requests: int | None, timeout: float, backoff: float, stop: threading.Event) -> Load:
    """`clients` threads, each posting photos round-robin until the deadline or until max_requests were sent."""
    load = Load()
    sent = [0]
    sent_lock = threading.Lock()
    start = time.monotonic()
    deadline = start + seconds if seconds is not None else None

    def take_ticket() -> bool:
        if stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
            return False
        with sent_lock:
            if max_requests is not None and sent[0] >= max_requests:
                return False
            sent[0] += 1
            return True

    def worker(index: int) -> None:
        client = Client(host, port, timeout)
        i = index * max(1, len(photos) // clients)  # clients start at different photos
        try:
            while take_ticket():
                body = photos[i % len(photos)]
                i += 1
                t = time.perf_counter()
                try:
                    status, data = client.post(body)
                except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
                    load.record(error_label(exc), None, f"{type(exc).__name__}: {exc}")
                    time.sleep(backoff)  # a refused connection would otherwise spin
                    continue
                latency = time.perf_counter() - t
                if status == 200 and data[:2] == b"\xff\xd8":
                    load.record("200", latency)
                elif status == 200:
                    load.record("bad-200", None, f"a 200 answer of {len(data)} bytes that is not a JPEG")
                elif status == 503:
                    load.record("503", None)
                    time.sleep(backoff)
                else:
                    load.record(str(status), None, f"HTTP {status}: {data[:200]!r}")
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.2)
    load.elapsed = time.monotonic() - start
    return load


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


# ---------------------------------------------------------------- the report

def fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


class Row:
    def __init__(self, batching: str, label: str, clients: int, load: Load, rss_before, rss_after):
        self.batching, self.label, self.clients, self.load = batching, label, clients, load
        self.rss_before, self.rss_after = rss_before, rss_after
        lat = sorted(load.latencies)
        self.p50, self.p95, self.p99 = (None if p is None else p * 1000 for p in
                                        (percentile(lat, 50), percentile(lat, 95), percentile(lat, 99)))
        self.throughput = load.ok / load.elapsed if load.elapsed > 0 else 0.0

    def cells(self) -> list[str]:
        return [self.label, str(self.clients), str(self.load.requests), f"{self.throughput:.2f}",
                fmt(self.p50), fmt(self.p95), fmt(self.p99), self.load.status_text(),
                f"{fmt(self.rss_before)} -> {fmt(self.rss_after)}"]


HEADER = ["micro-batching", "clients", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "statuses",
          "server RSS MiB before -> after"]


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |",
             "|" + "|".join("---:" if h not in ("micro-batching", "statuses") else "---" for h in HEADER) + "|"]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


def say(*parts) -> None:
    print(*parts, flush=True)


# ---------------------------------------------------------------- main

def load_photos(folder: Path, limit: int) -> list[tuple[str, bytes]]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in JPEG_SUFFIXES)
    return [(p.name, p.read_bytes()) for p in files[:limit]]


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the JPEG's SOF marker, without an image library."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
        i += 2 + length
    return None


def client_counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"client counts must be integers >= 1: {text!r}")
    return counts


def batching_list(text: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items or any(x not in ("on", "off") for x in items) or len(set(items)) != len(items):
        raise argparse.ArgumentTypeError(f"expected on, off or on,off: {text!r}")
    return items


def at_least(kind, low):
    """An argparse type: a `kind` (int or float) of at least `low`."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {'an integer' if kind is int else 'a number'}: {text!r}") from None
        if not value >= low:
            raise argparse.ArgumentTypeError(f"must be >= {low}: {text!r}")
        return value
    return parse


positive_int, nonnegative_int, nonnegative_float = at_least(int, 1), at_least(int, 0), at_least(float, 0.0)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", metavar="DIR", type=Path, default=DEFAULT_PHOTOS,
                   help="folder of JPEG photos (default: %(default)s)")
    p.add_argument("--max-photos", metavar="N", type=positive_int, default=64,
                   help="use the first N photos by name (default 64)")
    p.add_argument("--clients", metavar="N,N,...", type=client_counts, default=[1, 4, 16],
                   help="comma-separated concurrent client counts (default 1,4,16)")
    p.add_argument("--seconds", metavar="S", type=positive_float, default=20.0,
                   help="measured seconds per row (default 20)")
    p.add_argument("--max-requests", metavar="N", type=positive_int, default=None,
                   help="also end a row after this many requests in all")
    p.add_argument("--warmup", metavar="N", type=nonnegative_int, default=None,
                   help="unmeasured requests before each row and before the memory check, sent by the same "
                        "number of clients (default: one per photo, at least 2 per client; 0: none)")
    p.add_argument("--batching", metavar="on,off", type=batching_list, default=["on", "off"],
                   help="which settings to measure: on, off or on,off (default on,off)")
    p.add_argument("--max-batch", metavar="B", type=positive_int, default=None,
                   help="--max-batch given to the server for batching 'on' (default: the server's; 'off' is 1)")
    p.add_argument("--batch-wait-ms", metavar="MS", type=nonnegative_float, default=None,
                   help="--batch-wait-ms given to the server for batching 'on' (default: the server's)")
    p.add_argument("--queue-size", metavar="Q", type=positive_int, default=None,
                   help="--queue-size given to the server (default: the server's)")
    p.add_argument("--fresh-server", action="store_true",
                   help="start a new server for every row (default: one per batching setting)")
    p.add_argument("--rss-requests", metavar="N", type=nonnegative_int, default=2000,
                   help="requests of the memory check on a fresh server, 0 to skip it (default 2000)")
    p.add_argument("--rss-clients", metavar="N", type=positive_int, default=4,
                   help="clients of the memory check (default 4)")
    p.add_argument("--rss-only", action="store_true", help="run only the memory check")
    p.add_argument("--hostile", action="store_true",
                   help="run only the mixed check: the last --clients count of well-behaved clients alone, then "
                        "beside --hostile-large clients posting large PNGs and --hostile-stalled clients holding "
                        "stalled uploads (hostile_clients.py); their req/s, p99, the statuses and peak RSS")
    p.add_argument("--hostile-large", metavar="N", type=nonnegative_int, default=4, help="(default 4)")
    p.add_argument("--hostile-stalled", metavar="N", type=nonnegative_int, default=4, help="(default 4)")
    p.add_argument("--hostile-megapixels", metavar="MP", type=positive_float, default=35.0,
                   help="size of the large clients' PNG (default 35, inside the server's 40 MP limit)")
    p.add_argument("--backoff-ms", metavar="MS", type=nonnegative_int, default=50,
                   help="a client's pause after a 503 or a connection error (default 50)")
    p.add_argument("--timeout", metavar="S", type=positive_float, default=120.0,
                   help="seconds per request (default 120)")
    p.add_argument("--startup-timeout", metavar="S", type=positive_float, default=120.0,
                   help="seconds to wait for GET /healthz after starting the server (default 120)")
    p.add_argument("--host", metavar="HOST", default="127.0.0.1", help="address the server binds (default 127.0.0.1)")
    p.add_argument("--port", metavar="PORT", type=nonnegative_int, default=0, help="server port (default: a free one)")
    p.add_argument("--server-log", metavar="FILE", default=None, help="append the servers' output to this file")
    # The command that replaces `python serve.py` (to test this script against a stand-in server).
    p.add_argument("--server-cmd", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rss_only and args.rss_requests == 0:
        p.error("--rss-only with --rss-requests 0 measures nothing")
    return args


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = parse_args(argv)
    # SIGTERM ends the run like Ctrl-C does, so the finally blocks stop the server.
    signal.signal(signal.SIGTERM, _interrupt)

    if not args.photos.is_dir():
        say(f"SKIP: photo folder {args.photos} not found (give --photos DIR with JPEG files)")
        return 0
    named = load_photos(args.photos, args.max_photos)
    if not named:
        say(f"SKIP: no .jpg/.jpeg files in {args.photos}")
        return 0
    photos = [data for _, data in named]

    if args.server_cmd:
        base_cmd = shlex.split(args.server_cmd)
    else:
        if not (ROOT / "serve.py").is_file():
            say(f"FAIL: {ROOT / 'serve.py'} not found")
            return 1
        base_cmd = [sys.executable, "serve.py"]
    on_flags, on_text = [], []
    if args.max_batch is not None:
        on_flags += ["--max-batch", str(args.max_batch)]
        on_text.append(f"max-batch {args.max_batch}")
    if args.batch_wait_ms is not None:
        on_flags += ["--batch-wait-ms", f"{args.batch_wait_ms:g}"]
        on_text.append(f"wait {args.batch_wait_ms:g} ms")
    settings = {"on": (f"on ({', '.join(on_text) or 'server defaults'})", on_flags),
                "off": ("off (max-batch 1)", ["--max-batch", "1"])}
    extra = ["--queue-size", str(args.queue_size)] if args.queue_size else []
    backoff = args.backoff_ms / 1000.0
    stop = threading.Event()

    sizes = [s for s in map(jpeg_size, photos) if s]
    widths, heights = sorted(w for w, _ in sizes), sorted(h for _, h in sizes)
    size_text = "" if not sizes else (f", widths {widths[0]}-{widths[-1]} (median {widths[len(sizes) // 2]}), "
                                      f"heights {heights[0]}-{heights[-1]} (median {heights[len(sizes) // 2]})")
    say(f"photos: {len(photos)} JPEG from {args.photos}, "
        f"{sum(map(len, photos)) / len(photos) / 1024:.0f} KiB mean{size_text}")
    say(f"machine: {os.cpu_count()} CPUs, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    say(f"server: {' '.join(base_cmd)} --host {args.host} --port PORT ...  (cwd {ROOT})")
    say(f"503 (queue full or overloaded) is counted, not retried: the client pauses {args.backoff_ms} ms and "
        f"sends its next photo; latencies are over 200 answers; req/s = 200 answers per second")
    if not args.rss_only:
        say(f"rows: {args.seconds:g} s each" + (f" or {args.max_requests} requests" if args.max_requests else "")
            + ", after " + (f"{args.warmup} warm-up requests" if args.warmup is not None else
                            "a warm-up of every photo once (at least 2 requests per client)")
            + "; RSS before = after the warm-up")

    rows: list[Row] = []
    failed = False
    server: Server | None = None

    def start(flags: list[str]) -> Server:
        port = args.port or free_port(args.host)
        cmd = base_cmd + ["--host", args.host, "--port", str(port)] + flags + extra
        try:
            srv = Server(cmd, args.host, port, args.server_log)
        except OSError as exc:
            raise ServerError(f"cannot start {' '.join(cmd)}: {exc}") from None
        try:
            ready = srv.wait_ready(args.startup_timeout)
        except ServerError:
            srv.stop()
            raise
        say(f"  server pid {srv.proc.pid} ready in {ready:.1f} s: {' '.join(cmd[len(base_cmd):])}")
        return srv

    def warm_up(srv: Server, clients: int) -> Load | None:
        n = max(len(photos), 2 * clients) if args.warmup is None else args.warmup
        if not n:
            return None
        load = run_load(args.host, srv.port, photos, clients, args.timeout, n,
                        args.timeout, backoff, stop)
        if load.failures:
            say(f"  warm-up failures: {load.status_text()}; " + "; ".join(load.errors.values()))
        return load

    def report_errors(load: Load) -> None:
        for label, message in load.errors.items():
            say(f"    {label}: {message}")

    def check_alive(srv: Server) -> None:
        if not srv.alive():
            srv._reader.join(2)
            raise ServerError(f"the server exited with status {srv.proc.returncode} during the run",
                              srv.output_tail())

    try:
        try:
            if args.hostile:
                failed |= mixed_check(args, start, warm_up, check_alive, backoff, stop, photos)
                return 1 if failed else 0
            if not args.rss_only:
                for batching in args.batching:
                    label, flags = settings[batching]
                    say(f"\nmicro-batching {label}")
                    for k, clients in enumerate(args.clients):
                        if server is None:
                            server = start(flags)
                        warm = warm_up(server, clients)
                        failed |= bool(warm and warm.failures)
                        check_alive(server)
                        before = server.rss_mib()
                        load = run_load(args.host, server.port, photos, clients, args.seconds, args.max_requests,
                                        args.timeout, backoff, stop)
                        after = server.rss_mib()
                        row = Row(batching, label, clients, load, before, after)
                        rows.append(row)
                        say(f"  clients {clients:>3}: {load.requests} requests in {load.elapsed:.1f} s, "
                            f"{row.throughput:.2f} req/s, p50/p95/p99 {fmt(row.p50)}/{fmt(row.p95)}/{fmt(row.p99)} ms, "
                            f"{load.status_text()}, RSS {fmt(before)} -> {fmt(after)} MiB")
                        report_errors(load)
                        failed |= bool(load.failures)
                        check_alive(server)
                        if args.fresh_server or k == len(args.clients) - 1:
                            server.stop()
                            server = None

            if args.rss_requests:
                label, flags = settings[args.batching[0]]
                say(f"\nmemory check: {args.rss_requests} requests from {args.rss_clients} clients, "
                    f"micro-batching {label}")
                server = start(flags)
                warm = warm_up(server, args.rss_clients)
                failed |= bool(warm and warm.failures)
                check_alive(server)
                rss_start = server.rss_mib()
                load = run_load(args.host, server.port, photos, args.rss_clients, None, args.rss_requests,
                                args.timeout, backoff, stop)
                rss_end, peak = server.rss_mib(), server.peak_rss_mib()
                growth = (None if rss_start is None or rss_end is None
                          else (rss_end - rss_start) / rss_start * 100.0)
                say(f"  {load.requests} requests in {load.elapsed:.1f} s "
                    f"({load.ok / max(load.elapsed, 1e-9):.2f} req/s), {load.status_text()}")
                report_errors(load)
                failed |= bool(load.failures)
                check_alive(server)
                server.stop()
                server = None
            else:
                rss_start = rss_end = peak = growth = None
                load = None
        except ServerError as exc:
            say(f"\nFAIL: {exc}; its output ended with:\n{exc.tail or '(no output)'}")
            _print_summary(rows, args, None)
            return 1
    except KeyboardInterrupt:
        stop.set()
        say("\ninterrupted; stopping the server")
        _print_summary(rows, args, None)
        return 130
    finally:
        stop.set()
        if server is not None:
            server.stop()

    _print_summary(rows, args, (load, rss_start, rss_end, peak, growth) if load else None)
    if failed:
        say("\nFAIL: some requests failed (other than 503), see above")
        return 1
    return 0


def mixed_check(args, start, warm_up, check_alive, backoff, stop, photos) -> bool:
    """--hostile: the well-behaved clients alone, then beside the hostile ones, on one server; True on a failure
    (a 5xx or a failed request)."""
    from hostile_clients import start_hostile
    clients = args.clients[-1]
    say(f"\nmixed check: {clients} well-behaved clients for {args.seconds:g} s alone, then beside "
        f"{args.hostile_large} clients posting {args.hostile_megapixels:g}-megapixel PNGs and "
        f"{args.hostile_stalled} holding stalled uploads")
    server = start([])
    fives = failures = 0
    try:
        warm_up(server, clients)
        say(f"  server RSS after the warm-up {fmt(server.rss_mib())} MiB")
        for name in ("alone", "with hostile clients"):
            hostile, hostile_stop = Load(), threading.Event()
            if name != "alone":
                start_hostile(args.host, server.port, args.hostile_large, args.hostile_stalled,
                              args.hostile_megapixels, hostile, hostile_stop, args.timeout)
            load = run_load(args.host, server.port, photos, clients, args.seconds, None, args.timeout, backoff, stop)
            hostile_stop.set()
            check_alive(server)
            lat = sorted(x * 1000 for x in load.latencies)
            say(f"  {name}: {load.ok / load.elapsed:.2f} req/s, p50/p99 {fmt(percentile(lat, 50))}/"
                f"{fmt(percentile(lat, 99))} ms, answers {load.status_text()}; server peak RSS (VmHWM) so far "
                f"{fmt(server.peak_rss_mib())} MiB")
            if hostile.counts:
                held = sorted(hostile.latencies)
                say(f"    hostile clients' answers: {hostile.status_text()} (a 200 or a stalled upload's answer took "
                    f"{fmt(percentile(held, 50), 1)} s at the median, {fmt(held[-1] if held else None, 1)} s at most)")
            for label, n in list(load.counts.items()) + list(hostile.counts.items()):
                fives += n if label.removeprefix("stalled-").startswith("5") else 0
            failures += load.failures
        say(f"\n5xx answers in all: {fives}; failed well-behaved requests: {failures}")
        return bool(fives or failures)
    finally:
        server.stop()


def _print_summary(rows: list[Row], args: argparse.Namespace, rss) -> None:
    if rows:
        say("\n" + markdown_table(rows))
        on = {r.clients: r for r in rows if r.batching == "on"}
        off = {r.clients: r for r in rows if r.batching == "off"}
        shared = [c for c in args.clients if c in on and c in off]
        if shared:
            say("")
        for c in shared:
            ratio = on[c].throughput / off[c].throughput if off[c].throughput > 0 else None
            say(f"micro-batching / one-at-a-time throughput at {c} client{'s' if c != 1 else ''}: "
                + ("n/a" if ratio is None else f"{ratio:.2f}x")
                + f" ({on[c].throughput:.2f} / {off[c].throughput:.2f} req/s)")
    if rss:
        load, start, end, peak, growth = rss
        say(f"\nserver RSS after warm-up {fmt(start)} MiB, after {load.requests} more requests {fmt(end)} MiB "
            f"({'n/a' if growth is None else f'{growth:+.1f}%'}), peak (VmHWM) {fmt(peak)} MiB")


if __name__ == "__main__":
    sys.exit(main())

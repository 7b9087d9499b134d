"""Where a /v1/colorize request's time goes: each stage the server runs for a photo, timed in one process.

    python benchmarks/request_stages.py [--photos ../shared/data/imagenet-sample] [--max-photos 64] [--run weights]

The stages of serving.server.Service for one photo, through the same backend (serving.backends.ColorizerBackend):
decode (the uploaded JPEG to pixels), prepare (gray, the working-size input), network (one photo, batch 1),
finish (the ab at full size beside the photo's L, to RGB) and encode (the answer's JPEG). Each photo is run
once to warm up (tracing), then --repeats times; printed: the median milliseconds of each stage per photo, their
share, and their sum, to set beside serve_load.py's latency with one client (the rest is HTTP and threads).
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colorgan.cli import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()
import numpy as np  # noqa: E402

from colorgan.data.image_files import encode_image, read_image  # noqa: E402
from colorgan.inference.colorizer import Colorizer  # noqa: E402
from colorgan.serving.backends import ColorizerBackend  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "data" / "imagenet-sample")
    parser.add_argument("--max-photos", type=int, default=64)
    parser.add_argument("--run", default=None, help="weights or run directory (default: the shipped weights)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    files = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))[:args.max_photos]
    if not files:
        sys.exit(f"no JPEG photos in {args.photos}")
    backend = ColorizerBackend(Colorizer.load(args.run), "bench")
    stages = {name: [] for name in ("decode", "prepare", "network", "finish", "encode")}
    for path in files:
        body = path.read_bytes()
        for repeat in range(args.repeats + 1):
            times = []
            t = time.perf_counter()
            image = read_image(body, path.name)
            times.append(time.perf_counter())
            key, job = backend.prepare(image, None)
            times.append(time.perf_counter())
            (result,) = backend.run([job])
            times.append(time.perf_counter())
            out = backend.finish(job, result)
            times.append(time.perf_counter())
            encode_image(out, "JPEG")
            times.append(time.perf_counter())
            if repeat:  # the first is the warm-up
                for name, t0, t1 in zip(stages, [t] + times[:-1], times):
                    stages[name].append((t1 - t0) * 1000.0)
    medians = {name: statistics.median(values) for name, values in stages.items()}
    total = sum(medians.values())
    sizes = [read_image(p.read_bytes(), p.name).shape[:2] for p in files]
    print(f"{len(files)} photos from {args.photos} ({np.median([h * w for h, w in sizes]) / 1e3:.0f} kilopixels "
          f"at the median), {args.repeats} timed runs each, median ms per photo:")
    for name, ms in medians.items():
        print(f"  {name:8s} {ms:6.1f} ms  {ms / total:4.0%}")
    print(f"  {'sum':8s} {total:6.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Milliseconds per photo through `Colorizer` and through the exported SavedModel, in one process.

    python benchmarks/colorize_speed.py [--model weights] [--width 768 --height 512] [--repeats 10]

Prints one JSON line. Both paths do the same work (luminance, network at its working size, ab resized back
to full size, recombination); the SavedModel is called through its serving signature as a client would.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colorgan.cli import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from colorgan import Colorizer  # noqa: E402
from colorgan.inference.export import export_saved_model  # noqa: E402


def timed(fn, repeats):
    fn()  # warm-up: tracing
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats * 1000.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=None, help="run or weights directory (default: weights/)")
    p.add_argument("--width", type=int, default=768)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--repeats", type=int, default=10)
    a = p.parse_args()
    colorizer = Colorizer.load(a.model)
    image = np.random.default_rng(0).integers(0, 256, (a.height, a.width, 3), dtype=np.uint8)
    colorizer_ms = timed(lambda: colorizer.colorize(image), a.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        serve = tf.saved_model.load(str(export_saved_model(colorizer, tmp))).signatures["serving_default"]
        batch = tf.constant(image[None])
        saved_model_ms = timed(lambda: serve(images=batch)["colorized"].numpy(), a.repeats)
    print(json.dumps({"image": f"{a.width}x{a.height}", "render_size": colorizer.render_size,
                      "colorizer_ms": round(colorizer_ms, 1), "saved_model_ms": round(saved_model_ms, 1)}))


if __name__ == "__main__":
    main()

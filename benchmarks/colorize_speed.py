"""Milliseconds per photo through `Colorizer` and through the exported SavedModel, in one process.

    python benchmarks/colorize_speed.py [--model weights] [--width 768 --height 512] [--repeats 10]

Prints one JSON line. Both paths do the same work (luminance, network at its working size, ab resized back
to full size, recombination); the SavedModel is called through its serving signature as a client would.
"stages_ms" splits Colorizer's time into its stages, each timed alone: read (the photo to float gray),
prepare (read, then the network's input at its working size), network (the ab at the working size) and finish
(the ab resized to the photo, Lab -> RGB, uint8).
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
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="run or weights directory (default: weights/)")
    p.add_argument("--width", type=int, default=768)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--repeats", type=int, default=10)
    a = p.parse_args()
    colorizer = Colorizer.load(a.model)
    image = np.random.default_rng(0).integers(0, 256, (a.height, a.width, 3), dtype=np.uint8)
    colorizer_ms = timed(lambda: colorizer.colorize(image), a.repeats)
    prepared = colorizer.prepare(image)
    vividness = np.array([colorizer.check_vividness(None)], np.float32)
    ab = colorizer.predict_ab(prepared.model_in, vividness)[0]
    stages = {"read": lambda: colorizer.read(image), "prepare": lambda: colorizer.prepare(image),
              "network": lambda: colorizer.predict_ab(prepared.model_in, vividness),
              "finish": lambda: colorizer.finish(prepared, ab)}
    stages_ms = {name: round(timed(fn, a.repeats), 1) for name, fn in stages.items()}
    with tempfile.TemporaryDirectory() as tmp:
        serve = tf.saved_model.load(str(export_saved_model(colorizer, tmp))).signatures["serving_default"]
        batch = tf.constant(image[None])
        saved_model_ms = timed(lambda: serve(images=batch)["colorized"].numpy(), a.repeats)
    print(json.dumps({"image": f"{a.width}x{a.height}", "render_size": colorizer.render_size,
                      "colorizer_ms": round(colorizer_ms, 1), "saved_model_ms": round(saved_model_ms, 1),
                      "stages_ms": stages_ms}))


if __name__ == "__main__":
    main()

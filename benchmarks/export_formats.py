"""File size and milliseconds per photo of each export format, in one process, one format after another.

    python benchmarks/export_formats.py [--model weights] [--width 768 --height 512] [--repeats 15]

Exports the model (default: the shipped weights) as a SavedModel, TFLite (float32, float16, dynamic-range
int8) and ONNX into a temporary folder, loads each with colorgan.inference.export_formats.load_exported, and times
colorize() on one real photo of --width x --height: the whole job (luminance, network at the working size,
ab resized back, recombination with the photo's own L). Each timing is the median of --repeats calls after a
warm-up; the formats take turns call by call, so a job sharing the CPU slows them alike. "network ms" is the
exported network alone at the photo's working size; "max/mean diff" is |colour - the SavedModel's| on that
photo in 1/255. Prints a Markdown table (and --json writes the numbers).
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from colorgan.cli import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from colorgan import Colorizer  # noqa: E402
from colorgan.inference.export_formats import export, export_size, load_exported  # noqa: E402

VARIANTS = [("SavedModel", "saved_model", "none"), ("TFLite float32", "tflite", "none"),
            ("TFLite float16", "tflite", "float16"), ("TFLite dynamic int8", "tflite", "dynamic"),
            ("ONNX", "onnx", "none")]


class KerasRunner:
    """Colorizer with the interface the benchmark times: colorize(image), network(model_in)."""

    def __init__(self, colorizer):
        import tensorflow as tf
        self.colorizer = colorizer
        self.runtime = f"TensorFlow {tf.__version__}"
        self._network = tf.function(lambda x: colorizer.generator(x, training=False), reduce_retracing=True)

    def colorize(self, image):
        return self.colorizer.colorize(image)

    def network(self, x):
        return self._network(x).numpy()


def real_photo(width: int, height: int) -> tuple[np.ndarray, str]:
    """A real photo resized to width x height: the first ImageNet sample in ../shared/data, else a CIFAR one."""
    for pattern, folder in (("*.jpg", ROOT.parent / "shared" / "data" / "imagenet-sample"),
                            ("*/*.jpg", ROOT / "data" / "cifar10-mini" / "test")):
        files = sorted(folder.glob(pattern)) if folder.is_dir() else []
        if files:
            image = cv2.imread(str(files[0]))[..., ::-1]
            return np.ascontiguousarray(cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)), \
                str(files[0].relative_to(ROOT.parent))
    raise SystemExit("no photo found")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="run or weights directory (default: the shipped weights/)")
    p.add_argument("--width", type=int, default=768)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--skip", default="", help="comma-separated formats to leave out (e.g. onnx)")
    p.add_argument("--json", help="also write the numbers to this file")
    a = p.parse_args()
    colorizer = Colorizer.load(a.model)
    image, source = real_photo(a.width, a.height)
    skip = {s.strip() for s in a.skip.split(",") if s.strip()}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        for label, fmt, quantize in VARIANTS:
            if fmt in skip:
                continue
            t = time.perf_counter()
            folder = export(colorizer, Path(tmp) / f"{fmt}-{quantize}", fmt, quantize)
            models[label] = (load_exported(folder), folder, time.perf_counter() - t)
        # The project's own path for comparison: the Keras generator through Colorizer (no export)
        keras_file = Path(a.model or ROOT / "weights")
        keras_file = keras_file if keras_file.suffix == ".keras" else keras_file / "generator.keras"
        models["Keras (Colorizer)"] = (KerasRunner(colorizer), keras_file, 0.0)
        reference = models["SavedModel"][0].colorize(image)
        model_in = colorizer.prepare(image).model_in
        outputs, times, network_times = {}, {k: [] for k in models}, {k: [] for k in models}
        for label, (model, _, _) in models.items():  # warm-up: tracing, tensor allocation
            for _ in range(2):
                outputs[label] = model.colorize(image)
                if hasattr(model, "network"):
                    model.network(model_in)
        for _ in range(a.repeats):
            for label, (model, _, _) in models.items():  # in turns: a neighbour's load hits all formats alike
                t = time.perf_counter()
                model.colorize(image)
                times[label].append((time.perf_counter() - t) * 1000)
                if hasattr(model, "network"):
                    t = time.perf_counter()
                    model.network(model_in)
                    network_times[label].append((time.perf_counter() - t) * 1000)
        for label, (model, folder, export_s) in models.items():
            diff = np.abs(outputs[label].astype(int) - reference)
            rows.append({"format": label, "files": sorted(f.name for f in folder.iterdir()) if folder.is_dir()
                         else [folder.name],
                         "size_mb": round((export_size(folder) if folder.is_dir() else folder.stat().st_size) / 1e6, 1),
                         "ms_per_photo": round(statistics.median(times[label]), 1),
                         "network_ms": round(statistics.median(network_times[label]), 1)
                         if network_times[label] else None,
                         "max_diff": int(diff.max()), "mean_diff": round(float(diff.mean()), 3),
                         "export_s": round(export_s, 1),
                         "runtime": model.runtime})
    h, w = model_in.shape[1:3]
    print(f"{a.width}x{a.height} photo ({source}), working size {w}x{h}, median of {a.repeats} after warm-up\n")
    print("| format | runtime | size (MB) | ms per photo | network ms | max / mean diff vs SavedModel (1/255) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        network = "-" if r["network_ms"] is None else r["network_ms"]
        print(f"| {r['format']} | {r['runtime']} | {r['size_mb']} | {r['ms_per_photo']} | {network} | "
              f"{r['max_diff']} / {r['mean_diff']} |")
    if a.json:
        Path(a.json).write_text(json.dumps({"image": f"{a.width}x{a.height}", "source": source,
                                            "working_size": f"{w}x{h}", "repeats": a.repeats, "rows": rows},
                                           indent=1))


if __name__ == "__main__":
    main()

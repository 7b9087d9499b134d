"""TFLite and ONNX exports of a colorizer, and one way to run any export: `load_exported(path).colorize(image)`.

A SavedModel (export.py) holds the whole pipeline: colour conversion, resizing and recombination are in its
graph. The TFLite and ONNX files hold the generator network alone, with dynamic batch, height and width:

    model_in   float32 [N, h, w, 1]: the photo's Lab L / 50 - 1, resized (antialiased) so that its longer
               side is about the working size (colorgan.json's render_size) and each side a multiple of
               `multiple` (32 for the shipped model; the aspect ratio is kept, as the Colorizer does)
    model_out  float32 [N, h, w, C]: what the generator predicts; for a Lab regression model (C = 2, the
               shipped one) the ab chroma / 110

and the work around it is done by `ExportedColorizer`, with the Colorizer's own steps (prepare, finish): the
photo's luminance, the network's input at the working size, the predicted ab times the vividness, resized
back to the photo's full size and recombined with its own full-resolution L. So every format takes the same
images (gray or RGB uint8 of any size) and gives the same colour as the SavedModel. A client in another
language does those steps itself; colorgan.json beside the file has the numbers it needs.

Each export is a folder OUT/VERSION/ (the layout TF Serving and Triton use) holding model.tflite or
model.onnx and colorgan.json. The converters are optional dependencies: pip install "colorgan[export]".
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from colorgan import __version__
from colorgan.atomic import temp_path
from colorgan.color.chroma import predicted_ab
from colorgan.config import EXPORT_FORMATS as FORMATS  # saved_model, tflite, onnx; none, float16, dynamic
from colorgan.config import QUANTIZE
from colorgan.errors import ColorganError
from colorgan.inference.colorizer import Colorizer, to_float_image
from colorgan.inference.export import INFO_FILE, export_saved_model, float32_generator, saved_model_info
from colorgan.models.networks import hint_channels, with_hints

MODEL_FILES = {"tflite": "model.tflite", "onnx": "model.onnx"}
ONNX_OPSET = 17  # set, not left to tf2onnx; every onnxruntime the [export] extra allows (>= 1.19) runs it
INPUT_NAME, OUTPUT_NAME = "model_in", "model_out"
NETWORK_INPUT = tf.TensorSpec([None, None, None, 1], tf.float32, name=INPUT_NAME)
EXTRAS_HINT = 'pip install "colorgan[export]" (or: pip install tf2onnx onnxruntime ai-edge-litert)'


def default_out(fmt: str, quantize: str = "none") -> str:
    """export.py's --out when none is given: one folder per format, so no export overwrites another."""
    if fmt == "saved_model":
        return "exported/colorgan"
    return f"exported/colorgan-{fmt}" + ("" if quantize == "none" else f"-{quantize}")


def export(colorizer: Colorizer, out_dir: str | os.PathLike, fmt: str = "saved_model", quantize: str = "none",
           version: int = 1) -> Path:
    """Write <out_dir>/<version>/ in format `fmt` and return that folder (export.py --format)."""
    if fmt not in FORMATS:
        raise ColorganError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    if quantize not in QUANTIZE:
        raise ColorganError(f"unknown quantization {quantize!r} (choose from {', '.join(QUANTIZE)})")
    if quantize != "none" and fmt != "tflite":
        raise ColorganError(f"--quantize {quantize} is for --format tflite; {fmt} is written in float32")
    if fmt == "saved_model":
        return export_saved_model(colorizer, out_dir, version)
    check_converter(fmt)
    return _write_version(Path(out_dir) / str(version), {
        MODEL_FILES[fmt]: (lambda path: tflite_model(colorizer, path, quantize)) if fmt == "tflite"
        else (lambda path: onnx_model(colorizer, path)),
        INFO_FILE: lambda path: path.write_text(json.dumps(export_info(colorizer, fmt, quantize), indent=1)),
    })


def check_converter(fmt: str) -> None:
    """A one-line ColorganError where the converter for `fmt` is not installed (before any model is loaded)."""
    if fmt == "onnx":
        _import_tf2onnx()


def export_info(colorizer: Colorizer, fmt: str, quantize: str = "none") -> dict:
    """What a runner needs beside the network: colorgan.json."""
    return {"format": fmt, "quantize": quantize, "colorgan_version": __version__,
            "color_space": colorizer.color_space, "render_size": int(colorizer.render_size),
            "multiple": int(colorizer.multiple), "vividness": float(colorizer.vividness),
            "cast_correction": colorizer.cast_correction,
            "output_channels": int(colorizer.generator.output_shape[-1]),
            "input": INPUT_NAME, "output": OUTPUT_NAME}


def _write_version(target: Path, writers: dict) -> Path:
    """Write each file into a temporary folder beside target, then rename it onto target (whole or nothing)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(target)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name, write in writers.items():
            write(tmp / name)
    except ColorganError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        last_line = (str(e).strip().splitlines() or [""])[-1]
        raise ColorganError(f"export to {target} failed: {type(e).__name__}: {last_line}") from None
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target


def tflite_model(colorizer: Colorizer, path: Path, quantize: str = "none") -> None:
    """The generator as a TFLite flatbuffer (TFLite builtin ops only, so LiteRT runs it without Flex).

    quantize: none (float32), float16 (weights stored in float16, computed in float32 on CPUs: half the file)
    or dynamic (weights in int8, activations quantized on the fly where a kernel allows: a quarter of the file).
    """
    generator = float32_generator(colorizer.generator)
    with tempfile.TemporaryDirectory() as saved_model:
        # TensorFlow's path for Keras 3: ExportArchive -> SavedModel -> converter (a concrete function of a
        # Keras 3 model converts without its variables).
        archive = keras.export.ExportArchive()  # no track(): the endpoint tracks its variables (once)
        network = functools.partial(generator.__call__, training=False)
        if hint_channels(generator):  # the hint channels are not inputs of these files yet: no hints
            archive.track(generator)
            network = lambda x: generator(with_hints(generator, x), training=False)  # noqa: E731
        archive.add_endpoint("serve", network, input_signature=[NETWORK_INPUT])
        archive.write_out(saved_model, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize in ("float16", "dynamic"):
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        path.write_bytes(converter.convert())


def _import_tf2onnx():
    try:
        import onnx  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError as e:
        raise ColorganError(f"--format onnx needs tf2onnx and onnx ({e}): {EXTRAS_HINT}") from None
    import logging
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    return tf2onnx


def onnx_model(colorizer: Colorizer, path: Path) -> None:
    """The generator as an ONNX model (opset ONNX_OPSET), input model_in and output model_out."""
    tf2onnx = _import_tf2onnx()
    import onnx
    generator = float32_generator(colorizer.generator)
    network = tf.function(lambda x: generator(with_hints(generator, x), training=False))  # no hints (yet)
    proto, _ = tf2onnx.convert.from_function(network, input_signature=[NETWORK_INPUT], opset=ONNX_OPSET)
    # tf2onnx names the output after the graph's last op (Identity:0): give it the name colorgan.json says
    (old,) = [o.name for o in proto.graph.output]
    for node in proto.graph.node:
        node.output[:] = [OUTPUT_NAME if n == old else n for n in node.output]
    proto.graph.output[0].name = OUTPUT_NAME
    proto.producer_name = f"colorgan {__version__} via tf2onnx {tf2onnx.__version__}"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


# ---- running an export ---------------------------------------------------------------------------------
class ExportedColorizer(Colorizer):
    """A Colorizer whose network is an exported TFLite or ONNX file: the same prepare and finish steps
    (luminance, working size, recombination with the photo's own L), the network run by LiteRT or ONNX Runtime.

    colorize(image, vividness=None) takes what Colorizer.colorize takes (gray, RGB or RGBA; uint8, uint16 or
    float) and gives uint8 RGB of the same size; the working size is the one the model was exported with.
    """

    def __init__(self, network, info: dict, path: Path):
        # No Keras generator (Colorizer.__init__ needs one): the attributes prepare/finish use, from colorgan.json
        self.generator = None
        self.network = network  # numpy float32 [N, h, w, 1] -> [N, h, w, C]
        self.info, self.path, self.format = info, path, info["format"]
        self.color_space = info["color_space"]
        self.render_size = int(info["render_size"])
        self.multiple = int(info["multiple"])
        self.vividness = float(info["vividness"])
        self.cast_correction = float(info.get("cast_correction", 0.0))  # exports before it had none
        self.auto_levels = self.denoise = self.restore = False  # asked for per call (prepare), or set after loading
        self._prepare_fn = self._finish_fn = self._decode_fn = None

    @property
    def runtime(self) -> str:
        return self.network.runtime

    def colorize(self, image: np.ndarray, render_size: int | None = None, vividness: float | None = None,
                 auto_levels: bool | None = None) -> np.ndarray:
        if render_size not in (None, self.render_size):
            raise ColorganError(f"{self.path}: exported at working size {self.render_size}; export again with "
                                f"--render-size {render_size} for another")
        prepared = self.prepare(image, auto_levels)
        ab = self.predict_ab(prepared.model_in, np.array([self.check_vividness(vividness)], np.float32))
        return self.finish(prepared, ab[0])

    def predict_ab(self, model_in: np.ndarray, vividness: np.ndarray) -> np.ndarray:
        output = self.network(np.ascontiguousarray(model_in, np.float32))
        if self._decode_fn is None:
            self._decode_fn = tf.function(
                lambda out, v: predicted_ab(out, self.color_space, v[:, None, None, None], self.cast_correction),
                reduce_retracing=True)
        return self._decode_fn(tf.constant(output), tf.constant(vividness, tf.float32)).numpy()


class TFLiteNetwork:
    """model.tflite run by LiteRT (ai-edge-litert), else by tf.lite.Interpreter; resized to each input's shape."""

    def __init__(self, path: Path, threads: int | None = None):
        try:
            from importlib.metadata import version

            from ai_edge_litert.interpreter import Interpreter
            self.runtime = f"LiteRT {version('ai-edge-litert')}"
        except ImportError:  # TensorFlow's own interpreter (deprecated in favour of LiteRT, still there in 2.21)
            Interpreter = tf.lite.Interpreter
            self.runtime = f"tf.lite {tf.__version__}"
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads or os.cpu_count() or 1)
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.shape = None
        self.lock = threading.Lock()  # an interpreter runs one call at a time

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self.lock:
            if x.shape != self.shape:
                self.interpreter.resize_tensor_input(self.input, x.shape, strict=False)
                self.interpreter.allocate_tensors()
                self.shape = x.shape
            self.interpreter.set_tensor(self.input, x)
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self.output).copy()


class ONNXNetwork:
    """model.onnx run by ONNX Runtime on the CPU."""

    def __init__(self, path: Path, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ColorganError(f"{path}: running ONNX needs onnxruntime ({e}): {EXTRAS_HINT}") from None
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # Its threads would spin-wait after each run, taking the CPU from the TensorFlow steps around it
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.runtime = f"ONNX Runtime {ort.__version__}"
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: x})[0]


class SavedModelColorizer:
    """An exported SavedModel behind the same colorize(image, vividness=None) as the other formats; its
    signature takes uint8 gray or RGB only."""

    format = "saved_model"
    runtime = f"TensorFlow {tf.__version__}"

    def __init__(self, path: Path):
        self.path = path
        self.info = saved_model_info(path)
        self.vividness = float(self.info.get("vividness", 1.0))
        self.model = tf.saved_model.load(str(path))
        self.signature = self.model.signatures["colorize"]

    def colorize(self, image: np.ndarray, vividness: float | None = None) -> np.ndarray:
        image = np.asarray(image)
        if image.ndim == 2:
            image = image[..., None]
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3):
            raise ColorganError(f"the SavedModel takes uint8 HxW, HxWx1 or HxWx3 images, got {image.dtype} "
                                f"{image.shape}")
        to_float_image(image)  # the Colorizer's checks: empty, too many pixels
        v = np.float32(self.vividness if vividness is None else vividness)
        if not 0 < v < np.inf:
            raise ColorganError(f"vividness must be a positive number, got {vividness}")
        return self.signature(images=tf.constant(image[None]), vividness=tf.constant(v))["colorized"].numpy()[0]


def find_export(path: str | os.PathLike) -> tuple[str, Path]:
    """(format, the version folder) of an export: a model file, a version folder or OUT/ (its highest version)."""
    path = Path(path)
    if path.is_file():
        path = path.parent
    if not path.is_dir():
        raise ColorganError(f"{path}: no such export")
    versions = sorted((p for p in path.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    if versions and not any((path / f).exists() for f in ("saved_model.pb", *MODEL_FILES.values())):
        path = versions[-1]
    if (path / "saved_model.pb").exists():
        return "saved_model", path
    for fmt, name in MODEL_FILES.items():
        if (path / name).exists():
            return fmt, path
    raise ColorganError(f"{path}: no exported model here (saved_model.pb, {', '.join(MODEL_FILES.values())})")


def load_exported(path: str | os.PathLike, threads: int | None = None):
    """An export of any format, ready to colorize: .colorize(image, vividness=None) -> uint8 RGB of its size."""
    fmt, folder = find_export(path)
    if fmt == "saved_model":
        return SavedModelColorizer(folder)
    try:
        info = json.loads((folder / INFO_FILE).read_text())
    except (OSError, ValueError) as e:
        raise ColorganError(f"{folder / INFO_FILE}: cannot read what the export needs ({e})") from None
    network = (TFLiteNetwork if fmt == "tflite" else ONNXNetwork)(folder / MODEL_FILES[fmt], threads)
    return ExportedColorizer(network, info, folder)


def export_size(folder: str | os.PathLike) -> int:
    """Bytes of an export's version folder (all its files)."""
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())

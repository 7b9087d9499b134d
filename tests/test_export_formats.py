"""export.py --format saved_model|tflite|onnx: the shipped model in each format gives the SavedModel's colour.

The TFLite and ONNX files hold the generator alone (dynamic size); colorgan.inference.export_formats.load_exported runs
them with the Colorizer's own pre- and post-processing. Bounds, in 1/255 of the uint8 output, on real photos:
float32 TFLite and ONNX, and float16 TFLite: at most 2 (measured: 1, 1 and 2); dynamic-range int8 TFLite:
mean at most 3 and 99th percentile at most 12 (measured on 16 photos: mean 1.2, 99th percentile 5.5, max 26).
"""
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from colorgan import Colorizer
from colorgan.errors import ColorganError
from colorgan.inference.export_formats import (INFO_FILE, MODEL_FILES, export, export_size, float32_generator,
                                     load_exported)
from conftest import ROOT, SHARED_DATA, sample_images, tiny_config

EXACT = 2  # float32 and float16 exports: at most 2/255 from the SavedModel, pixel by pixel
DYNAMIC_MEAN, DYNAMIC_P99 = 3.0, 12.0  # dynamic-range int8 weights: a looser bound (see the docstring)


def needs_onnx():
    for package in ("tf2onnx", "onnxruntime"):
        pytest.importorskip(package, reason=f"{package} is not installed (pip install \"colorgan[export]\")")


def onnx_installed() -> bool:
    import importlib.util
    return all(importlib.util.find_spec(p) for p in ("tf2onnx", "onnxruntime"))


def gray_of(rgb):
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def real_photos():
    """Real photos: CIFAR-10 test images (32x32) and a larger non-square one (an ImageNet sample from
    ../shared/data where it is there, else a CIFAR photo enlarged to 301x453)."""
    photos = [cv2.imread(str(f))[..., ::-1].copy() for f in sample_images(3, split="test")]
    large = sorted((SHARED_DATA / "imagenet-sample").glob("*.jpg"))
    if large:
        photos.append(cv2.imread(str(large[0]))[..., ::-1].copy())
    else:
        photos.append(cv2.resize(photos[0], (453, 301), interpolation=cv2.INTER_CUBIC))
    assert photos[-1].shape[0] != photos[-1].shape[1] and photos[-1].shape[0] > 200
    return photos


@pytest.fixture(scope="module")
def shipped():
    return Colorizer.load()


@pytest.fixture(scope="module")
def photos():
    return real_photos()


@pytest.fixture(scope="module")
def saved_model(shipped, tmp_path_factory):
    """The shipped model as a SavedModel, and its colour for each photo given as RGB and as gray."""
    folder = export(shipped, tmp_path_factory.mktemp("sm") / "colorgan")
    model = load_exported(folder)
    return folder, model


@pytest.fixture(scope="module")
def references(saved_model, photos):
    _, model = saved_model
    return {"rgb": [model.colorize(p) for p in photos], "gray": [model.colorize(gray_of(p)) for p in photos]}


@pytest.fixture(scope="module")
def exported(shipped, tmp_path_factory):
    """exported(fmt, quantize) -> the shipped model's version folder in that format, written once a module."""
    written = {}

    def get(fmt, quantize="none"):
        if (fmt, quantize) not in written:
            written[fmt, quantize] = export(shipped, tmp_path_factory.mktemp(f"{fmt}-{quantize}") / "out", fmt,
                                            quantize)
        return written[fmt, quantize]
    return get


def differences(model, photos, references):
    """|exported - SavedModel| in 1/255 for each photo, given as RGB and as gray."""
    out = []
    for kind, inputs in (("rgb", photos), ("gray", [gray_of(p) for p in photos])):
        for image, reference in zip(inputs, references[kind]):
            result = model.colorize(image)
            assert result.shape == image.shape[:2] + (3,) and result.dtype == np.uint8
            out.append(np.abs(result.astype(int) - reference))
    return out


@pytest.mark.parametrize("fmt, quantize", [("tflite", "none"), ("tflite", "float16"), ("onnx", "none")])
def test_format_gives_the_saved_models_colour(exported, photos, references, fmt, quantize):
    if fmt == "onnx":
        needs_onnx()
    folder = exported(fmt, quantize)
    assert sorted(p.name for p in folder.iterdir()) == sorted([MODEL_FILES[fmt], INFO_FILE])
    model = load_exported(folder.parent)  # OUT/: its highest version
    assert model.format == fmt and model.path == folder
    worst = max(d.max() for d in differences(model, photos, references))
    print(f"{fmt} {quantize} ({model.runtime}): max |diff| vs SavedModel {worst}/255")
    assert worst <= EXACT


def test_dynamic_range_quantized_tflite_is_close(exported, photos, references, saved_model):
    folder = exported("tflite", "dynamic")
    model = load_exported(folder / MODEL_FILES["tflite"])  # the file itself also loads
    diffs = differences(model, photos, references)
    mean = float(np.mean([d.mean() for d in diffs]))
    p99 = float(np.mean([np.percentile(d, 99) for d in diffs]))
    print(f"tflite dynamic: mean |diff| {mean:.2f}/255, 99th percentile {p99:.1f}/255, max "
          f"{max(d.max() for d in diffs)}/255")
    assert mean <= DYNAMIC_MEAN and p99 <= DYNAMIC_P99
    # a quarter of the float32 file (int8 weights)
    assert export_size(folder) < 0.3 * export_size(exported("tflite", "none"))


def test_sizes_and_dynamic_shapes(exported, saved_model):
    """float16 halves the TFLite file; the network takes any working size and batch."""
    float32, float16 = export_size(exported("tflite")), export_size(exported("tflite", "float16"))
    assert 0.45 < float16 / float32 < 0.55
    model = load_exported(exported("tflite"))
    for shape in [(1, 96, 128, 1), (3, 128, 64, 1), (1, 32, 32, 1)]:
        assert model.network(np.zeros(shape, np.float32)).shape == shape[:3] + (2,)


def test_vividness_and_alpha_as_the_saved_model(exported, saved_model, photos):
    _, sm = saved_model
    model = load_exported(exported("tflite"))
    photo = photos[-1]
    for v in (0.5, 2.0):
        assert np.abs(model.colorize(photo, vividness=v).astype(int) - sm.colorize(photo, vividness=v)).max() <= EXACT
    assert np.abs(model.colorize(photo).astype(int) - sm.colorize(photo, vividness=model.vividness)).max() <= EXACT
    rgba = np.dstack([photo, np.full(photo.shape[:2], 9, np.uint8)])
    out = model.colorize(rgba)
    assert out.shape == photo.shape[:2] + (4,) and (out[..., 3] == 9).all()
    with pytest.raises(ColorganError, match=r"not in \(0, 4\]"):
        model.colorize(photo, vividness=0)
    with pytest.raises(ColorganError, match="render-size"):
        model.colorize(photo, render_size=64)


def test_onnx_file_has_named_dynamic_input_and_output(exported):
    needs_onnx()
    import onnx
    proto = onnx.load(str(exported("onnx") / MODEL_FILES["onnx"]))
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert (inp.name, out.name) == ("model_in", "model_out")
    dims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    assert dims[3] == 1 and all(isinstance(d, str) for d in dims[:3])  # batch, height, width dynamic


def test_command_writes_each_format(tmp_path, capsys):
    """export.py --format with a tiny generator (the command's path: flags, default folders, one line out)."""
    from colorgan.commands.export import main
    from colorgan.models.networks import build_models
    generator, _ = build_models(tiny_config(model="unet-l1", base_filters=4))
    generator.save(tmp_path / "generator.keras")
    tiny_config(model="unet-l1", base_filters=4, vividness=1.5).save(tmp_path / "config.json")
    image = cv2.imread(str(sample_images(1)[0]))[..., ::-1]
    outputs = {}
    formats = [("saved_model", "none"), ("tflite", "float16")] + [("onnx", "none")] * onnx_installed()
    for fmt, quantize in formats:
        out = tmp_path / f"out-{fmt}"
        assert main(["--run", str(tmp_path), "--format", fmt, "--quantize", quantize, "--out", str(out),
                     "--version", "3"]) == 0
        assert f"written: {out / '3'}" in capsys.readouterr().out
        model = load_exported(out)
        assert model.vividness == 1.5
        outputs[fmt] = model.colorize(image)
    for fmt in set(outputs) - {"saved_model"}:
        assert np.abs(outputs[fmt].astype(int) - outputs["saved_model"]).max() <= EXACT


def test_float32_copy_of_a_bfloat16_generator():
    import keras
    from colorgan.models.keras_compat import walk_layers
    from colorgan.models.networks import build_models
    generator, _ = build_models(tiny_config(model="unet-l1", precision="bf16", base_filters=4))
    copy = float32_generator(generator)
    assert {layer.dtype_policy.compute_dtype for layer in walk_layers(copy)} == {"float32"}
    x = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 1)).astype("float32")
    as_bf16 = keras.ops.convert_to_numpy(keras.ops.cast(generator(x, training=False), "float32"))
    assert np.abs(keras.ops.convert_to_numpy(copy(x, training=False)) - as_bf16).max() < 0.05
    assert float32_generator(copy) is copy


def graph_dtypes(function) -> set:
    """Every dtype a concrete function's ops compute in, its nested functions included."""
    graph = function.graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    return {tf.dtypes.as_dtype(v.type).name for n in nodes for k, v in n.attr.items() if k == "T" and v.type}


def test_a_bfloat16_colorizer_exports_a_float32_saved_model(tmp_path):
    """Where --precision auto loads the model in bfloat16 (CPUs with AMX), the SavedModel still computes in
    float32: the same colour as the float32 model, and no bfloat16 emulation on the CPUs that load it."""
    from colorgan.models.networks import build_models
    generator, _ = build_models(tiny_config(model="unet-l1", precision="bf16", base_filters=4))
    model = load_exported(export(Colorizer(generator, "lab", 32, 1.0), tmp_path / "sm"))
    assert "bfloat16" not in graph_dtypes(model.signature) and "float32" in graph_dtypes(model.signature)
    photo = real_photos()[0]
    as_float32 = Colorizer(float32_generator(generator), "lab", 32, 1.0).colorize(photo)
    assert np.abs(model.colorize(photo).astype(int) - as_float32).max() <= 1


@pytest.mark.parametrize("args, message", [
    (["--format", "bogus"], "argument --format: invalid choice: 'bogus'"),
    (["--format", "onnx", "--quantize", "float16"], "--quantize is for --format tflite"),
    (["--quantize", "int4"], "argument --quantize: invalid choice"),
])
def test_bad_format_is_one_line_error(args, message):
    out = subprocess.run([sys.executable, str(ROOT / "export.py"), *args], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr, out.stderr


def test_missing_converter_and_bad_paths_are_one_line_errors(tmp_path, monkeypatch):
    from colorgan.inference import export_formats
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # as if not installed
    with pytest.raises(ColorganError, match=r"tf2onnx.*pip install \"colorgan\[export\]\""):
        export_formats.check_converter("onnx")
    with pytest.raises(ColorganError, match="no such export"):
        load_exported(tmp_path / "nothing")
    with pytest.raises(ColorganError, match="no exported model here"):
        load_exported(tmp_path)
    with pytest.raises(ColorganError, match="unknown format"):
        export(None, tmp_path, "coreml")

"""`export.py` / `colorgan export`: write a trained colorizer as a SavedModel (TF Serving's layout), a TFLite
file (LiteRT; float32, float16 or dynamic-range int8 weights) or an ONNX model (ONNX Runtime)."""
from __future__ import annotations

import argparse

from colorgan.cli import OneLineErrorParser, import_tensorflow_quietly, setup_logging
from colorgan.config import EXPORT_FORMATS, QUANTIZE
from colorgan.errors import ColorganError

PROG = "export.py"


def parse_args(argv=None, prog: str = PROG) -> argparse.Namespace:
    parser = OneLineErrorParser(
        prog=prog, description="Write a trained colorizer to OUT/VERSION/. saved_model (default): a SavedModel "
        "for TF Serving whose serving_default signature maps uint8 images [N, H, W, 1 or 3] of any size to uint8 "
        "RGB of the same size. tflite, onnx: the generator network alone (dynamic size; model.tflite or "
        "model.onnx + colorgan.json), run with the same pre- and post-processing by "
        "colorgan.inference.export_formats.load_exported(OUT). tflite and onnx need: pip install \"colorgan[export]\".")
    parser.add_argument("--run", help="run directory (default: the shipped weights/)")
    parser.add_argument("--model", help="a generator .keras file instead of --run")
    parser.add_argument("--format", default="saved_model", choices=EXPORT_FORMATS, help="default: %(default)s")
    parser.add_argument("--quantize", default="none", choices=QUANTIZE,
                        help="tflite weights: none (float32), float16 (half the file) or dynamic (int8 weights, "
                             "a quarter; less exact colour). Default: %(default)s")
    parser.add_argument("--out", help="default: exported/colorgan for saved_model, exported/colorgan-FORMAT"
                                      "[-QUANTIZE] for the others")
    parser.add_argument("--version", type=int, default=1, help="model version folder (default: %(default)s)")
    parser.add_argument("--render-size", type=int, help="working size of the network (default: its training size)")
    parser.add_argument("--vividness", type=float, help="the default vividness (default: the model's)")
    return parser.parse_args(argv)


def main(argv=None, prog: str = PROG) -> int:
    args = parse_args(argv, prog)
    setup_logging()
    if args.run and args.model:
        raise ColorganError("give --run or --model, not both")
    if args.vividness is not None and not 0 < args.vividness < float("inf"):
        raise ColorganError("--vividness must be a positive number")
    if args.version < 1:
        raise ColorganError("--version must be 1 or more")
    if args.quantize != "none" and args.format != "tflite":
        raise ColorganError(f"--quantize is for --format tflite ({args.format} is written in float32)")
    import_tensorflow_quietly()
    from colorgan.inference.colorizer import Colorizer
    from colorgan.inference.export_formats import check_converter, default_out, export

    check_converter(args.format)  # a missing converter is said before the model is loaded
    colorizer = Colorizer.load(args.model or args.run, render_size=args.render_size, vividness=args.vividness)
    target = export(colorizer, args.out or default_out(args.format, args.quantize), args.format, args.quantize,
                    args.version)
    if args.format == "saved_model":
        print(f"written: {target} (inspect it with: saved_model_cli show --dir {target} --all)")
    else:
        print(f"written: {target} (run it with: colorgan.inference.export_formats.load_exported({str(target)!r})"
              ".colorize(image))")
    return 0

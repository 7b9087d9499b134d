"""`export.py` / `colorgan export`: write a trained colorizer as a SavedModel in TensorFlow Serving's layout."""
from __future__ import annotations

import argparse

from ..cli import OneLineErrorParser, import_tensorflow_quietly, setup_logging
from ..errors import ColorganError

PROG = "export.py"


def parse_args(argv=None, prog: str = PROG) -> argparse.Namespace:
    parser = OneLineErrorParser(prog=prog, description="Write a SavedModel in TF Serving's layout "
                                "(OUT/VERSION/) whose serving_default signature maps uint8 images [N, H, W, 1 or 3] "
                                "of any size to uint8 RGB of the same size.")
    parser.add_argument("--run", help="run directory (default: the shipped weights/)")
    parser.add_argument("--model", help="a generator .keras file instead of --run")
    parser.add_argument("--out", default="exported/colorgan", help="default: %(default)s")
    parser.add_argument("--version", type=int, default=1, help="model version folder (default: %(default)s)")
    parser.add_argument("--render-size", type=int, help="working size of the network (default: its training size)")
    parser.add_argument("--vividness", type=float, help="serving_default's vividness (default: the model's)")
    return parser.parse_args(argv)


def main(argv=None, prog: str = PROG) -> int:
    args = parse_args(argv, prog)
    setup_logging()
    import_tensorflow_quietly()
    from ..export import export_saved_model
    from ..inference import Colorizer

    if args.run and args.model:
        raise ColorganError("give --run or --model, not both")
    if args.vividness is not None and not 0 < args.vividness < float("inf"):
        raise ColorganError("--vividness must be a positive number")
    if args.version < 1:
        raise ColorganError("--version must be 1 or more")
    colorizer = Colorizer.load(args.model or args.run, render_size=args.render_size, vividness=args.vividness)
    target = export_saved_model(colorizer, args.out, args.version)
    print(f"written: {target} (inspect it with: saved_model_cli show --dir {target} --all)")
    return 0

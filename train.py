#!/usr/bin/env python
"""Train a pix2pix colorizer: python train.py --help"""
import argparse

from colorgan.cli import (OneLineErrorParser, add_config_arguments, import_tensorflow_quietly, overrides_from_args,
                          run_main, setup_logging)
from colorgan.config import config_from_overrides


def parse_args(argv=None) -> argparse.Namespace:
    parser = OneLineErrorParser(
        prog="train.py",
        description="Train a pix2pix colorizer (U-Net generator + PatchGAN discriminator). Each run writes "
                    "checkpoints/<run-name>/: config.json, history.csv, generator.keras, state/, samples/.")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue a run from its last completed epoch with its saved config "
                             "(only --epochs may be given with it, to train longer)")
    parser.add_argument("--export", nargs="?", const="", metavar="DIR",
                        help="after training, also write a SavedModel for serving to DIR/1/ "
                             "(default DIR: exported/<run-name>)")
    add_config_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging()
    import_tensorflow_quietly()
    import colorgan

    overrides = overrides_from_args(args)
    if args.resume:
        extra = sorted(set(overrides) - {"epochs"})
        if extra:
            raise colorgan.ColorganError(
                "--resume uses the run's saved config; only --epochs may be given with it (got "
                + ", ".join("--" + k.replace("_", "-") for k in extra) + ")")
        run_dir = colorgan.resume(args.resume, epochs=overrides.get("epochs"))
    else:
        run_dir = colorgan.train(config_from_overrides(overrides))
    if args.export is not None:
        from colorgan.export import export_saved_model
        target = export_saved_model(colorgan.Colorizer.load(run_dir), args.export or f"exported/{run_dir.name}")
        print(f"written: {target}")
    return 0


if __name__ == "__main__":
    run_main("train.py", main)

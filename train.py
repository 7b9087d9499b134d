#!/usr/bin/env python
"""Train a pix2pix colorizer: python train.py --help"""
import argparse

from colorgan.cli import import_tensorflow_quietly, run_main, setup_logging
from colorgan.config import OneLineErrorParser, add_config_arguments, config_from_overrides, overrides_from_args


def parse_args(argv=None) -> argparse.Namespace:
    parser = OneLineErrorParser(
        prog="train.py",
        description="Train a pix2pix colorizer (U-Net generator + PatchGAN discriminator). Each run writes "
                    "checkpoints/<run-name>/: config.json, history.csv, generator.keras, state/, samples/.")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue a run from its last completed epoch with its saved config "
                             "(only --epochs may be given with it, to train longer)")
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
        colorgan.resume(args.resume, epochs=overrides.get("epochs"))
    else:
        colorgan.train(config_from_overrides(overrides))
    return 0


if __name__ == "__main__":
    run_main("train.py", main)

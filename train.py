#!/usr/bin/env python
"""Train a pix2pix colorizer: python train.py --help (the same command as `colorgan train`)"""
from colorgan.cli import run_main
from colorgan.commands.train import PROG, main, parse_args  # noqa: F401  (parse_args, main: importable here)

if __name__ == "__main__":
    run_main(PROG, main)

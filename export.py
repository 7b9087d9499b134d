#!/usr/bin/env python
"""Export a trained colorizer as a SavedModel for TF Serving: python export.py --help (= `colorgan export`)"""
from colorgan.cli import run_main
from colorgan.commands.export import PROG, main, parse_args  # noqa: F401  (parse_args, main: importable here)

if __name__ == "__main__":
    run_main(PROG, main)

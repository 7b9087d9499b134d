#!/usr/bin/env python
"""Evaluate trained colorizers: python evaluate.py --help (the same command as `colorgan evaluate`)"""
from colorgan.cli import run_main
from colorgan.commands.evaluate import PROG, main, parse_args  # noqa: F401  (parse_args, main: importable here)

if __name__ == "__main__":
    run_main(PROG, main)

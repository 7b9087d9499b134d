#!/usr/bin/env python
"""Colorize photos at full resolution: python colorize.py --help (the same command as `colorgan colorize`)"""
from colorgan.cli import run_main
from colorgan.commands.colorize import PROG, main, parse_args  # noqa: F401  (parse_args, main: importable here)

if __name__ == "__main__":
    run_main(PROG, main)

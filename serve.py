#!/usr/bin/env python
"""Serve the colorizer: a web page and an HTTP API: python serve.py --help (= `colorgan serve`)"""
from colorgan.cli import run_main
from colorgan.commands.serve import PROG, main, parse_args  # noqa: F401  (parse_args, main: importable here)

if __name__ == "__main__":
    run_main(PROG, main)

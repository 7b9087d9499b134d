"""The command line: one module per command (train, evaluate, colorize, export, serve) holding its parser and
main(), and `main` here, the `colorgan` command that dispatches `colorgan COMMAND ARGS...` to them.

The top-level scripts (python train.py ...) run the same main() with their own name as `prog`, so a command
takes exactly the same flags either way; only the name in --help, in errors and in suggested commands differs.

May import: every layer (colorgan.LAYERS): the commands are the top.
"""
from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from typing import NoReturn

from colorgan import __version__
from colorgan.cli import OneLineErrorParser, run_main

# name: (module with main(argv, prog), one line for `colorgan --help`)
COMMANDS = {
    "train": ("colorgan.commands.train", "train a colorizer (default: on the embedded CIFAR-10 sample)"),
    "evaluate": ("colorgan.commands.evaluate", "score runs against the gray photo; compare runs"),
    "colorize": ("colorgan.commands.colorize", "colorize photos, folders and globs at full resolution"),
    "export": ("colorgan.commands.export", "write a SavedModel (TF Serving), TFLite or ONNX model"),
    "serve": ("colorgan.commands.serve", "serve a web page and an HTTP API"),
    "prepare": ("colorgan.data.prepare", "scan a data folder once and write it as TFRecord shards for training"),
    "bench": ("colorgan.evaluation.bench", "time the train step (and a peer implementation's)"),
}
PROG = "colorgan"


def invocation(prog: str, command: str) -> str:
    """How to run `command` in the style the user ran `prog`: `colorgan evaluate` or `python evaluate.py`."""
    return f"{PROG} {command}" if prog.split()[0] == PROG else f"python {command}.py"


def quoted(path) -> str:
    """A path as it can be pasted into a shell."""
    return shlex.quote(str(path))


def _parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=PROG, description="Colorize grayscale photos with a conditional GAN (pix2pix). Each command takes "
                               "the flags of its script (colorgan train = python train.py); "
                               "colorgan COMMAND --help lists them.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    # Subparsers only list the commands in --help and reject unknown ones; a known command's arguments go
    # untouched to its own parser (see main), so its flags are defined once, in its module.
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name, (_, summary) in COMMANDS.items():
        commands.add_parser(name, help=summary, add_help=False)
    return parser


def main(argv=None) -> NoReturn:
    """`colorgan COMMAND ARGS...` (the console script, and python -m colorgan)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS:
        prog = f"{PROG} {argv[0]}"
        command = importlib.import_module(COMMANDS[argv[0]][0])
        run_main(prog, lambda: command.main(argv[1:], prog=prog))  # exits
    parser = _parser()
    parser.parse_args(argv)  # --help, --version, or a one-line error for an unknown command or flag
    parser.error(f"a command is needed: {', '.join(COMMANDS)}")  # nothing given

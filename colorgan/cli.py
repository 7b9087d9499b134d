"""Command-line plumbing shared by every script: flags built from the Config, the typed value parser,
one-line errors instead of tracebacks, logging, and importing TensorFlow quietly."""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

from colorgan.config import (AUTO, Config, allows_auto, base_type, check_inference_number, check_vividness, field_types,
                             flag_name)
from colorgan.errors import ColorganError


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up messages (oneDNN, CUDA probing) kept off the terminal.

    TF 2.21 prints them before its log settings apply, so TF_CPP_MIN_LOG_LEVEL alone does not help;
    stderr is pointed at /dev/null for the import only. Python errors still raise normally.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow as tf
            tf.config.list_physical_devices()  # device probing prints too (cuInit on machines without a GPU)
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    logging.getLogger("colorgan").setLevel(logging.DEBUG if verbose else logging.INFO)
    # TensorFlow's Python logger repeats what colorgan already says about skipped files.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def run_main(prog: str, main) -> None:
    """Run main(); a ColorganError becomes 'prog: error: message' and exit code 2, Ctrl-C exit 130."""
    try:
        code = main()
    except ColorganError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        raise SystemExit(2)
    except KeyboardInterrupt:
        raise SystemExit(130)
    raise SystemExit(code or 0)


# ---- flags from the config ---------------------------------------------------------------------------
class OneLineErrorParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line (plus a hint) instead of the full usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def parse_value(name: str, text: str):
    """Text (a flag's argument, a sweep's grid value) -> the typed value of Config field `name`.

    The type comes from the field's annotation: int, float, bool, str, list[str] (comma-separated), each
    possibly `| Auto` ("auto"). Raises ValueError with a one-line reason.
    """
    annotation = field_types()[name]
    text = text.strip()
    if text == AUTO and allows_auto(annotation):
        return AUTO
    kind = base_type(annotation)
    if kind is list:
        return [t.strip() for t in text.split(",") if t.strip()]
    if kind is bool:
        if text.lower() in TRUE_WORDS + FALSE_WORDS:
            return text.lower() in TRUE_WORDS
        raise ValueError(f"{text!r} is not a boolean (true or false)")
    try:
        return kind(text)
    except ValueError:
        what = {int: "a whole number", float: "a number"}.get(kind, kind.__name__)
        raise ValueError(f"{text!r} is not {what}" + (" or 'auto'" if allows_auto(annotation) else "")) from None


def format_value(value) -> str:
    """The command-line spelling of a config value (the inverse of parse_value)."""
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _shown(default) -> str:
    """A default as --help shows it: numbers as they are, text quoted (so an empty one is visible)."""
    return str(default) if isinstance(default, (int, float)) else repr(format_value(default))


def _flag_type(name: str):
    def convert(text: str):
        try:
            return parse_value(name, text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = name
    return convert



def vividness_type(text: str) -> float:
    """argparse type of the inference scripts' --vividness: the check every entry point shares."""
    try:
        return check_vividness(text)
    except ColorganError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def cast_correction_type(text: str) -> float:
    """argparse type of colorize.py's --cast-correction, by Config.cast_correction's rule."""
    try:
        return check_inference_number("cast_correction", text)
    except ColorganError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_config_arguments(parser: argparse.ArgumentParser, names=None, defaults: dict | None = None) -> None:
    """One flag per Config field (or per field in `names`), typed from its annotation, defaults in --help.

    Flags left out parse as None, so `overrides_from_args` returns only what was given; `defaults` changes
    the default shown (for commands that apply their own, such as the benchmark).
    """
    base = {**dataclasses.asdict(Config()), **(defaults or {})}
    for f in dataclasses.fields(Config):
        if names is not None and f.name not in names:
            continue
        help_text = f.metadata.get("help", "")
        default = base[f.name]
        if base_type(field_types()[f.name]) is bool:
            parser.add_argument(flag_name(f.name), action=argparse.BooleanOptionalAction, default=None,
                                help=f"{help_text} (default: {'on' if default else 'off'})".replace("%", "%%"))
            continue
        choices = f.metadata.get("choices")
        parser.add_argument(flag_name(f.name), type=_flag_type(f.name), default=None, choices=choices,
                            metavar=None if choices else f.name.upper(),
                            help=f"{help_text} (default: {_shown(default)})".replace("%", "%%"))


def overrides_from_args(args: argparse.Namespace) -> dict:
    """The Config fields given on the command line (flags left out are None)."""
    names = {f.name for f in dataclasses.fields(Config)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}

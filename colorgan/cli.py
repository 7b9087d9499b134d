"""Shared command-line plumbing: logging set-up and one-line errors instead of tracebacks."""
from __future__ import annotations

import logging
import os
import sys

from .errors import ColorganError


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

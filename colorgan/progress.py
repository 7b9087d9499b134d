"""Progress of long work (evaluation, prepare, the scan, colorizing folders and videos): tqdm's bar on a
terminal; where the output goes to a file (nohup, a scheduler), a log line each minute instead, because a bar
redrawn with carriage returns is one unreadable line in a log."""
from __future__ import annotations

import logging
import re
import sys

from tqdm import tqdm

log = logging.getLogger("colorgan")

LOG_SECONDS = 60.0
LOG_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f}%), {elapsed} so far, about {remaining} left"
LOG_FORMAT_NO_TOTAL = "{desc}: {n_fmt} {unit}, {elapsed} so far"  # a video whose frame count is unknown


CURSOR_MOVES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # what tqdm sends to stack nested bars on a terminal


class _LogLines:
    """A file for tqdm that turns each redraw into one log line (the same line twice only once)."""

    def __init__(self):
        self.last = ""

    def write(self, text: str) -> None:
        text = CURSOR_MOVES.sub("", text).strip("\r\n ")
        if text and text != self.last:
            log.info(text)
            self.last = text

    def flush(self) -> None:
        pass


def progress_bar(iterable=None, **kwargs) -> tqdm:
    """tqdm(iterable, **kwargs) on a terminal, else the same progress as a log line every LOG_SECONDS."""
    if kwargs.get("disable") or sys.stderr.isatty():
        return tqdm(iterable, **kwargs)
    total = kwargs.get("total")
    if total is None:
        try:
            total = len(iterable)
        except TypeError:  # a generator, or a tf.data dataset of unknown length
            total = None
    # miniters=1: with tqdm's adaptive count its monitor thread redraws a bar left waiting maxinterval (10 s),
    # which in a log is an extra line with the old count and a new time, between the minute's lines.
    return tqdm(iterable, file=_LogLines(), mininterval=LOG_SECONDS, miniters=1,
                bar_format=LOG_FORMAT if total is not None else LOG_FORMAT_NO_TOTAL, **kwargs)

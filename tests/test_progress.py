"""colorgan.progress: a bar on a terminal, log lines each interval where the output goes to a file."""
import logging
import re
import sys
import time

import pytest
from tqdm import tqdm

from colorgan import progress


@pytest.fixture
def not_a_terminal(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    monkeypatch.setattr(progress, "LOG_SECONDS", 0.0)  # a line at every update


def test_in_a_log_each_update_is_one_readable_line(not_a_terminal, caplog, capsys):
    with caplog.at_level(logging.INFO, logger="colorgan"):
        assert list(progress.progress_bar(range(4), desc="evaluating r", unit="batch")) == [0, 1, 2, 3]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "evaluating r: 0/4 batch (0%), 00:00 so far, about ? left"
    assert lines[-1] == "evaluating r: 4/4 batch (100%), 00:00 so far, about 00:00 left"
    assert len(lines) == len(set(lines)) == 5  # the closing redraw repeats the last line: logged once
    assert "\r" not in capsys.readouterr().err  # no bar drawn into the file


def test_unknown_total_gives_no_made_up_time_left(not_a_terminal, caplog):
    with caplog.at_level(logging.INFO, logger="colorgan"):
        with progress.progress_bar(total=None, desc="clip.mp4", unit="frame") as bar:
            bar.update(5)
    assert [r.getMessage() for r in caplog.records][-1] == "clip.mp4: 5 frame, 00:00 so far"


def test_disabled_stays_silent_and_a_terminal_gets_the_bar(not_a_terminal, caplog, monkeypatch):
    with caplog.at_level(logging.INFO, logger="colorgan"):
        list(progress.progress_bar(range(3), disable=True))
        monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
        bar = progress.progress_bar(range(3), desc="x")
        list(bar)
    assert not caplog.records  # a terminal's bar is drawn, not logged
    assert type(bar) is tqdm and bar.bar_format is None and bar.mininterval == 0.1


def test_an_iterable_without_a_length_counts_without_a_total(not_a_terminal, caplog):
    with caplog.at_level(logging.INFO, logger="colorgan"):
        assert sum(progress.progress_bar((i for i in range(3)), desc="scan", unit="file")) == 3
    assert caplog.records[-1].getMessage() == "scan: 3 file, 00:00 so far"


def test_no_line_between_the_intervals_from_tqdms_monitor(monkeypatch, caplog):
    """tqdm's monitor thread redraws a bar that has waited maxinterval: no line with an old count, a new time."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    monkeypatch.setattr(progress, "LOG_SECONDS", 2.0)
    monkeypatch.setattr(tqdm, "monitor_interval", 0.02)  # the monitor looks often (tqdm's default: every 10 s)
    if tqdm.monitor is not None:  # one started by an earlier bar sleeps tqdm's default; the next bar starts anew
        tqdm.monitor.exit()
    monkeypatch.setattr(tqdm, "monitor", None)
    with caplog.at_level(logging.INFO, logger="colorgan"):
        for _ in progress.progress_bar(range(16), desc="x", unit="batch", maxinterval=1.0):
            time.sleep(0.25)
    counts = [int(re.match(r"x: (\d+)/16", r.getMessage()).group(1)) for r in caplog.records]
    assert counts == sorted(set(counts)) and counts[0] == 0 and counts[-1] == 16, counts

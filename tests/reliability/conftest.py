"""The reliability suite's closing summary: the figures each test recorded (trials, kills, losses, duplicates,
time), printed at the end of the session so a closing note can quote them."""

from __future__ import annotations

import pytest

from .harness import TALLY, base_seed


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY.lines:
        return
    terminalreporter.section("reliability figures")
    terminalreporter.write_line(f"seed {base_seed()} (RELIABILITY_SEED), kills wanted set by RELIABILITY_TRIALS")
    for name in sorted(TALLY.lines):
        terminalreporter.write_line(f"{name}: {TALLY.lines[name]}")

"""Every shell line in the README and docs/ parses, and the cron line does what it says (issue 12)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CRON_SCHEDULE = re.compile(r"^(\S+\s+){5}")
NOT_SHELL = re.compile(r"^(--|\[|(SELECT|WITH|FROM|WHERE|CREATE|INSERT|UPDATE|DELETE)\b)")


def _code_blocks(path: Path) -> list[tuple[int, list[str]]]:
    """The indented and fenced code blocks of a Markdown file: (first line number, lines)."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    fenced = False
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            if fenced:
                blocks.append((start, current))
                current = []
            fenced, start = not fenced, number + 1
            continue
        if fenced:
            current.append(line)
        elif line.startswith("    ") and (current or not lines[number - 2].strip() or number == 1):
            start = start if current else number
            current.append(line[4:])
        elif current and line.strip():
            blocks.append((start, current))
            current = []
    if current:
        blocks.append((start, current))
    return blocks


def _shell_lines() -> list[tuple[str, str]]:
    """(where, command) for each line of every code block that is shell (not SQL, not a unit file)."""
    found = []
    for path in DOCS:
        for start, block in _code_blocks(path):
            first = next((line.strip() for line in block if line.strip()), "")
            if NOT_SHELL.match(first):
                continue
            for offset, line in enumerate(block):
                if line.strip():
                    found.append((f"{path.relative_to(ROOT)}:{start + offset}", line))
    return found


def _cron_commands() -> list[tuple[str, str]]:
    return [(where, CRON_SCHEDULE.sub("", line)) for where, line in _shell_lines() if line.startswith("*/")]


SHELL_LINES = _shell_lines()


def test_docs_hold_shell_lines_and_a_cron_line() -> None:
    wheres = {where.split(":")[0] for where, _line in SHELL_LINES}
    assert {"README.md", "docs/operations.md", "docs/analysts.md"} <= wheres
    assert {where.split(":")[0] for where, _line in _cron_commands()} >= {"README.md", "docs/operations.md"}


@pytest.mark.parametrize(("where", "line"), SHELL_LINES, ids=[where for where, _line in SHELL_LINES])
def test_docs_shell_line_parses_under_sh(where: str, line: str) -> None:
    command = CRON_SCHEDULE.sub("", line) if line.startswith("*/") else line
    result = subprocess.run(["sh", "-n"], input=command + "\n", capture_output=True, text=True)
    assert result.returncode == 0, f"{where}: {result.stderr.strip()}"


@pytest.mark.parametrize(("where", "command"), _cron_commands(), ids=[where for where, _c in _cron_commands()])
@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_docs_cron_line_runs_the_monitor_and_appends_to_the_log(
    tmp_path: Path, where: str, command: str, shell: str
) -> None:
    """cron runs the line with /bin/sh (dash on Debian); people paste it into bash. Run it as both would, in a
    stand-in checkout whose `monitor` only says how it was called."""
    if shutil.which(shell) is None:
        pytest.skip(f"no {shell} here")
    checkout, log = tmp_path / "srv", tmp_path / "monitor.log"
    program = checkout / ".venv" / "bin" / "monitor"
    program.parent.mkdir(parents=True)
    stand_in = '#!/bin/sh\necho "monitor $*"\necho "to stderr" >&2\n'
    program.write_text(stand_in)
    program.chmod(0o755)
    log.write_text("earlier run\n")
    local = command.replace("/srv/guarantee-watch", str(checkout)).replace("/var/log/monitor.log", str(log))
    result = subprocess.run([shell, "-c", local], capture_output=True, text=True)
    assert result.returncode == 0, f"{where}: {result.stderr.strip()}"
    assert program.read_text() == stand_in, f"{where}: the line overwrote the program"
    assert log.read_text() == "earlier run\nmonitor run\nto stderr\n", where

"""What the reliability tests share: `python -m monitor` as a real subprocess (killed with SIGKILL at a chosen
moment, or measured), read-only looks at a SQLite file, and the tally of trials, kills,
losses and duplicates that `conftest.py` prints at the end of the session.

Sizes: `RELIABILITY_TRIALS` is the number of processes the crash tests kill in all (default 50: 35 pollers,
15 digest senders); `RELIABILITY_SEED` fixes the random choices (delays, kill counts); `RELIABILITY_CORPUS=full`
serves every real corpus file instead of the default subset.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..conftest import ROOT, SHARED

REAL = SHARED / "corpus" / "real"
DEFAULT_KILLS = 50
DEFAULT_SEED = 20261126


def total_kills() -> int:
    return int(os.environ.get("RELIABILITY_TRIALS") or DEFAULT_KILLS)


def base_seed() -> int:
    return int(os.environ.get("RELIABILITY_SEED") or DEFAULT_SEED)


def full_corpus() -> bool:
    return os.environ.get("RELIABILITY_CORPUS", "").lower() == "full"


# --- the tally ---------------------------------------------------------------------------------------------
@dataclass
class Tally:
    """Figures for the closing summary: one per guarantee the suite measured."""

    lines: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, name: str, line: str) -> None:
        with self.lock:
            self.lines[name] = line


TALLY = Tally()


# --- subprocesses ------------------------------------------------------------------------------------------
def monitor_env(config: Path, **extra: str) -> dict[str, str]:
    """The environment for `python -m monitor`: ours, without any MONITOR_* setting of the caller's."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("MONITOR_")}
    env["MONITOR_CONFIG"] = str(config)
    env.update(extra)
    return env


@dataclass(frozen=True)
class Attempt:
    killed: bool  # True when the process was still running at the deadline and got SIGKILL
    returncode: int
    elapsed: float
    stdout: str
    stderr: str


def run_monitor(
    args: Sequence[str], env: dict[str, str], *, kill_after: float | None = None, timeout: float = 120.0
) -> Attempt:
    """Run `python -m monitor ARGS`; with `kill_after`, SIGKILL it that many seconds after the start unless it
    ended before. Without, it must end within `timeout`."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, "-m", "monitor", *args], env=env, cwd=ROOT, stdout=out, stderr=err)
        killed = False
        try:
            try:
                process.wait(kill_after if kill_after is not None else timeout)
            except subprocess.TimeoutExpired:
                if kill_after is None:
                    raise AssertionError(f"monitor {' '.join(args)} did not finish within {timeout:g}s") from None
                process.send_signal(signal.SIGKILL)
                process.wait(30)
                killed = True
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        elapsed = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        return Attempt(
            killed,
            process.returncode,
            elapsed,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def held_until(body: bytes, release: threading.Event, asked: threading.Event) -> Any:
    """A feed route that answers `body` only once `release` is set (and sets `asked` when asked): a worker
    that fetches it is surely mid-run until then."""

    def answer(handler: Any) -> None:
        asked.set()
        release.wait(120)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


# --- looking at a SQLite file ------------------------------------------------------------------------------
@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection (no migration, no pragmas beyond the file's own): to look, not to change."""
    connection = sqlite3.connect(path, timeout=30)
    try:
        yield connection
    finally:
        connection.close()


def tables(connection: sqlite3.Connection) -> set[str]:
    rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


def check_storage(connection: sqlite3.Connection) -> None:
    """The file is sound: integrity check, foreign keys, and the full-text index (when the schema has one)."""
    assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
    if "item_fts" in tables(connection):
        connection.execute("INSERT INTO item_fts(item_fts) VALUES ('integrity-check')")
        connection.rollback()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from monitor.store.schema import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def database_files(path: Path) -> list[Path]:
    return [candidate for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if candidate.exists()]

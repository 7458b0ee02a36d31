"""The run lock, and who holds a feed lease or a digest claim.

Loads no SQLAlchemy for a plain SQLite file (`sqlite:///PATH`, most cron runs): a poll takes the lock and
leases its first feeds before the database layer has loaded (`monitor.head_start`). PostgreSQL's lock is an
advisory lock (`monitor.store.db.postgres_run_lock`).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import socket
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from monitor.env import sqlite_file
from monitor.errors import DatabaseError, LockedError


# --- leases and claims: who holds them ----------------------------------------------------------------------
def worker_name() -> str:
    """Who holds a feed lease or a digest claim: host and process, so that a process on the same host can
    tell that a holder died (and free its hold at once rather than when it expires)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def dead_owners(owners: Iterable[str]) -> list[str]:
    """The holders among `owners` that are on this host and whose process is gone, or that are this very
    process (whatever it still holds is left from an earlier, interrupted run)."""
    host = socket.gethostname()
    dead = []
    for owner in owners:
        name, _, pid = owner.rpartition(":")
        if name != host or not pid.isdigit():
            continue
        if int(pid) == os.getpid():
            dead.append(owner)
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            dead.append(owner)
        except PermissionError:  # alive, under another user
            pass
    return dead


# --- run lock ----------------------------------------------------------------------------------------------
def lock_path(url: str) -> Path:
    """The lock file beside a SQLite database, or a per-URL file in the temp folder for other databases."""
    if (database := _sqlite_database(url)) is not None:
        return database.with_name(database.name + ".lock")
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"monitor-{digest}.lock"


def _sqlite_database(url: str) -> Path | None:
    if (plain := sqlite_file(url)) is not None:
        return plain
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        return Path(parsed.database).expanduser()
    return None


@contextmanager
def run_lock(url: str, *, now: datetime | None = None, exclusive: bool = False) -> Iterator[None]:
    """Hold the run lock, or raise `LockedError` at once.

    SQLite (one host): a kernel lock on a file beside the database, one run at a time; the kernel drops it
    when the process dies. PostgreSQL (a shared database): a database advisory lock, so that it holds across
    hosts. There, polls and digests share it (they divide the work through feed leases and digest claims)
    and only an `exclusive` holder, the rebuild of `monitor rematch`, keeps everything else out."""
    if sqlite_file(url) is None:
        from monitor.store.db import is_postgres, postgres_run_lock

        if is_postgres(url):
            with postgres_run_lock(url, exclusive=exclusive):
                yield
            return
    path = lock_path(url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        database = _sqlite_database(url)
        if database is not None and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise DatabaseError(f"database is read-only: {database}") from None  # its folder: no WAL either
        raise DatabaseError(f"run lock {path}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise LockedError(f"another monitor run is working ({holder}); lock {path}; exiting") from None
        stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {stamp}".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)

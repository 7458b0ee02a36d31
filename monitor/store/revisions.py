"""The schema revision this code writes, read from the migration files without importing Alembic.

A command whose database is already at that revision (most cron runs) need not load Alembic at all; neither
does `monitor.store.idle`, which answers a poll with nothing due from the SQLite file alone. Unsure (no single head,
an unreadable file) means None: the caller then asks Alembic.
"""

from __future__ import annotations

import re

from monitor.env import PROJECT_ROOT

MIGRATIONS = PROJECT_ROOT / "alembic"
_REVISION = re.compile(r"^(down_revision|revision)\b[^=]*=\s*['\"]?([\w-]+)['\"]?", re.MULTILINE)


def head_revision() -> str | None:
    """The one revision no migration revises, or None when there is not exactly one."""
    revisions: set[str] = set()
    parents: set[str] = set()
    try:
        for path in (MIGRATIONS / "versions").glob("*.py"):
            for kind, value in _REVISION.findall(path.read_text(encoding="utf-8")):
                (revisions if kind == "revision" else parents).add(value)
    except (OSError, UnicodeDecodeError):
        return None
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None

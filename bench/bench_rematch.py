"""`monitor rematch` over 5,000 matches and 20,000 events: the database time, at schema 0006 and at the head.

    python bench/bench_rematch.py [--revision 0006] [--matches 5000] [--events 20000] [--clear-only]

Builds a SQLite file migrated to the revision (by default both 0006 and the head, one after the other), fills
it with items, one match each, machine-made status changes and events that point at both, then runs what
`monitor rematch` runs (`run_rematch`). Prints the time spent in the database (every statement, timed at the
cursor, and the commit) beside the whole run's, which adds the matching itself. At 0006 `event.change_id` and
`event.match_id` have no index, so each match or change the rebuild deletes scans the event table to check
that no event still points at it. `--clear-only` runs just the deletions a rematch starts with (its
`clear_derived` step, committed), which is where the indexes matter, without the matching that follows.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from alembic import command
from monitor.config import load_config
from monitor.rematch import run_rematch
from monitor.store import history, models
from monitor.store.db import create_db_engine
from monitor.store.schema import alembic_config

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PROPOSAL = "dk-ua-2024"
TITLES = (
    "Ukraine and Denmark sign 10-year security agreement",
    "Denmark plans to sign a new security pact with Ukraine",
    "Danish officials discuss a security agreement with Ukraine",
)
SUMMARY = "Danish Prime Minister Mette Frederiksen and President Zelensky signed a bilateral security agreement."


class DatabaseClock:
    """Sums the time the engine's statements spend at the cursor, and its commits."""

    def __init__(self, engine: sa.Engine) -> None:
        self.seconds = 0.0
        self.statements = 0
        self._started: list[float] = []
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)
        # The commit (the deferred key checks, the write to disk): from the engine's last word to the session's.
        self._committing = 0.0
        sa.event.listen(engine, "commit", self._before_commit)
        sa.event.listen(Session, "after_commit", self._after_commit)

    def _before(self, *_args: Any) -> None:
        self._started.append(time.perf_counter())

    def _after(self, *_args: Any) -> None:
        self.seconds += time.perf_counter() - self._started.pop()
        self.statements += 1

    def _before_commit(self, _connection: sa.Connection) -> None:
        self._committing = time.perf_counter()

    def _after_commit(self, _session: Session) -> None:
        self.seconds += time.perf_counter() - self._committing


def fill(engine: sa.Engine, matches: int, events: int) -> None:
    """One source, `matches` items each with one match, a machine-made change per ten matches, `events` events
    pointing at the matches (and, for every second one, at a change)."""
    now = START
    tables = models.Item.metadata.tables  # every model's table: they share one MetaData
    item, match, change, event = (tables[name] for name in ("item", "item_match", "status_change", "event"))
    changes = max(1, matches // 10)
    with engine.begin() as connection:
        connection.execute(
            tables["source"].insert(),
            [{"id": "bench-wire", "name": "Bench wire", "url": "http://127.0.0.1/", "config_url": "http://127.0.0.1/",
              "tier": "wire", "language": "en", "interval_seconds": 1800.0, "enabled": True, "in_config": True,
              "health": "ok", "consecutive_failures": 0}],
        )  # fmt: skip
        connection.execute(
            tables["proposal"].insert(),
            [{"id": PROPOSAL, "title": "Denmark", "status": "discussion", "in_config": True}],
        )
        connection.execute(
            item.insert(),
            [{"id": n, "source_id": "bench-wire", "key": f"guid:{n}", "title": TITLES[n % len(TITLES)],
              "summary": SUMMARY, "published_at": now + timedelta(minutes=n),
              "first_seen_at": now + timedelta(minutes=n), "updated_at": now + timedelta(minutes=n), "version": 1,
              "content_hash": f"{n:064x}"}
             for n in range(1, matches + 1)],
        )  # fmt: skip
        connection.execute(
            match.insert(),
            [{"id": n, "item_id": n, "item_version": 1, "proposal_id": PROPOSAL, "score": 0.9, "alias": "Denmark",
              "actors": "[]", "sentences": "[]", "status": "signed", "status_sentence": SUMMARY, "withdrawn": False,
              "matcher_version": "bench", "matched_at": now + timedelta(minutes=n)}
             for n in range(1, matches + 1)],
        )  # fmt: skip
        connection.execute(
            change.insert(),
            [{"id": n, "proposal_id": PROPOSAL, "kind": "upgrade", "from_status": "discussion", "to_status": "signed",
              "state": "unconfirmed", "observed_at": now + timedelta(hours=n), "confidence": 0.5}
             for n in range(1, changes + 1)],
        )  # fmt: skip
        connection.execute(
            event.insert(),
            [{"id": n, "kind": "unconfirmed" if n % 2 else "report", "created_at": now + timedelta(seconds=n),
              "proposal_id": PROPOSAL, "change_id": (n % changes) + 1 if n % 2 else None,
              "match_id": (n % matches) + 1, "source_id": "bench-wire", "detail": "{}"}
             for n in range(1, events + 1)],
        )  # fmt: skip


def run(revision: str, matches: int, events: int, clear_only: bool = False) -> tuple[float, float, int]:
    """(database seconds, whole seconds, statements) of one rematch on a fresh database at `revision`."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        command.upgrade(alembic_config(url), revision)
        engine = create_db_engine(url)
        fill(engine, matches, events)
        base = load_config(ROOT / "feeds.yaml", env={})
        config = replace(base, settings=base.settings.model_copy(update={"database_url": url}), sources=())
        clock = DatabaseClock(engine)
        started = time.perf_counter()
        if clear_only:
            with Session(engine) as session:
                history.sync_proposals(config.proposals, session=session)
                history.clear_derived(session=session)
                session.commit()
        else:
            run_rematch(config, engine)
        whole = time.perf_counter() - started
        engine.dispose()
        return clock.seconds, whole, clock.statements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revision", action="append", help="0006, head, ... (default: 0006 and head)")
    parser.add_argument("--matches", type=int, default=5000)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--clear-only", action="store_true", help="only the deletions a rematch starts with")
    args = parser.parse_args()
    for revision in args.revision or ["0006", "head"]:
        database, whole, statements = run(revision, args.matches, args.events, args.clear_only)
        what = "the deletions of a rematch" if args.clear_only else "rematch"
        print(
            f"schema {revision}: {what} of {args.matches} matches with {args.events} events: database "
            f"{database:.2f} s in {statements} statements, whole run {whole:.2f} s"
        )


if __name__ == "__main__":
    main()

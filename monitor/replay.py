"""`monitor replay DIR`: ingest a folder of feed snapshots in time order, as if each were polled at its time.

Each snapshot is served on 127.0.0.1 and polled through the real pipeline with a simulated clock set to the
snapshot's time, so conditional GETs, identity, edits, matching and the status history behave as they would
have live. File names give the feed and the time: `NAME__2026-02-28T203713Z__anything.xml` (the layout of
the shared corpus); a file without a time stamp in its name uses its modification time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from monitor.config import Config, SourceConfig, Tier
from monitor.errors import ConfigError
from monitor.feedserver import FeedServer, Response
from monitor.match import Matcher
from monitor.outcomes import FeedOutcome
from monitor.pipeline import run_poll

SUFFIXES = (".xml", ".rss", ".atom", ".rdf")
_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[T_ ](\d{2}):?(\d{2}):?(\d{2})Z?)?")


@dataclass(frozen=True)
class Snapshot:
    path: Path
    source_id: str
    taken_at: datetime


@dataclass(frozen=True)
class ReplaySummary:
    snapshots: int
    sources: tuple[str, ...]
    outcomes: tuple[FeedOutcome, ...]

    @property
    def items_new(self) -> int:
        return sum(outcome.items_new for outcome in self.outcomes)

    @property
    def items_updated(self) -> int:
        return sum(outcome.items_updated for outcome in self.outcomes)

    @property
    def changes(self) -> int:
        return sum(len(outcome.changes) for outcome in self.outcomes)


def find_snapshots(folder: Path) -> list[Snapshot]:
    """The snapshots in `folder`, oldest first (ties by name)."""
    if not folder.is_dir():
        raise ConfigError([f"{folder}: not a folder of feed snapshots"])
    snapshots = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in SUFFIXES or not path.is_file():
            continue
        name = path.name.split("__", 1)[0] if "__" in path.name else path.stem
        name = _STAMP.sub("", name).strip("-_ .") or path.stem
        source_id = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "feed"
        snapshots.append(Snapshot(path, source_id, _taken_at(path)))
    if not snapshots:
        raise ConfigError([f"{folder}: no feed snapshots ({', '.join(SUFFIXES)}) in it"])
    return sorted(snapshots, key=lambda snapshot: (snapshot.taken_at, snapshot.path.name))


def _taken_at(path: Path) -> datetime:
    found = _STAMP.search(path.name)
    if found:
        day, hour, minute, second = found.groups()
        stamp = f"{day}T{hour or '00'}:{minute or '00'}:{second or '00'}"
        try:
            return datetime.fromisoformat(stamp).replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def run_replay(
    base: Config,
    engine: Engine,
    folder: Path,
    *,
    tier: Tier = "media",
    on_snapshot: Callable[[Snapshot, FeedOutcome], None] | None = None,
) -> ReplaySummary:
    """Poll every snapshot at its own time, through a local server, into `engine`'s database."""
    snapshots = find_snapshots(folder)
    source_ids = tuple(dict.fromkeys(snapshot.source_id for snapshot in snapshots))
    outcomes: list[FeedOutcome] = []
    clock = _SimulatedClock(snapshots[0].taken_at)
    with FeedServer() as server:
        sources = tuple(
            SourceConfig(id=source_id, name=source_id, url=server.url(f"/{source_id}.xml"), tier=tier)
            for source_id in source_ids
        )
        config = replace(base, sources=sources)
        matcher = Matcher(config.proposals, config.settings.status.ladder)
        for snapshot in snapshots:
            clock.now = snapshot.taken_at
            body = snapshot.path.read_bytes()
            server.serve(f"/{snapshot.source_id}.xml", Response(body, last_modified=snapshot.taken_at.timestamp()))
            summary = run_poll(config, engine, clock, only=[snapshot.source_id], force=True, matcher=matcher)
            for outcome in summary.feeds:
                outcomes.append(outcome)
                if on_snapshot:
                    on_snapshot(snapshot, outcome)
    return ReplaySummary(len(snapshots), source_ids, tuple(outcomes))


class _SimulatedClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

"""Crash safety of the poller: `python -m monitor poll --force` over real corpus feeds served on 127.0.0.1,
killed with SIGKILL at random moments (seeded), then rerun until done.

Whatever moment the kill lands, the database must be sound and hold whole feeds only: its content (items,
matches, status changes, evidence, events, feed state) must equal that of an uninterrupted reference run after
some whole number of feeds, and after a final unkilled run it must equal the reference's end state.

The feeds are polled one at a time (`concurrency: 1`), in source-id order, so that the reference is one fixed
sequence: statuses depend on the order reports arrive (a signing reported before or after a proposal gives a
different history), and concurrent fetches finish in any order. A rerun finds the feeds the killed run
committed unchanged (304, by their stored ETag), so it continues the same sequence.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from random import Random

import pytest

from monitor.config import load_config
from monitor.feedserver import FeedServer, Response
from monitor.pipeline import run_poll
from monitor.store.schema import open_database

from ..conftest import PLANNED_DK, SIGNED_DK, SIGNED_DK_AGAIN, FakeClock, rss, write_config
from .harness import (
    REAL,
    TALLY,
    base_seed,
    check_storage,
    connect,
    full_corpus,
    head_revision,
    monitor_env,
    run_monitor,
    tables,
    total_kills,
)
from .projection import Projection, describe_difference, project

POLL_SETTINGS = {"concurrency": 1, "per_host": 1, "connect_timeout": 10, "read_timeout": 30, "total_timeout": 60}
SMALL_CORPUS = (
    "replay_reuters_wl/reuters__2026-02-28T203713Z__b3f898c9ef.xml",  # "Russia accepted US plan for ... guarantees"
    "replay_reuters_wl/reuters__2026-03-01T024606Z__f18d0f1cf0.xml",
    "replay_reuters_wl/reuters__2026-03-02T023557Z__8c131a8ac7.xml",
    "single_snapshots/guardian_international__2025-04-01__extracted_from_media-mosaic_7b206d7.xml",
    "single_snapshots/kyivindependent__plakhovgroup_2024-07-26__df6a163.xml",
)
WORKERS = 2


def corpus_files() -> list[Path]:
    if full_corpus():
        return sorted((REAL / "replay_reuters_wl").glob("*.xml")) + sorted((REAL / "single_snapshots").glob("*.xml"))
    return [REAL / name for name in SMALL_CORPUS]


@dataclass
class Reference:
    """An uninterrupted run's content after each whole feed: `states[k]` is the content after k feeds."""

    sources: list[dict[str, str]]
    states: list[Projection]
    migrated_empty: Projection
    template: Path  # a migrated, empty database file
    typical_seconds: float = 0.0
    index: dict[object, int] = field(default_factory=dict)
    links: Counter[tuple[str, str]] = field(default_factory=Counter)
    keys: dict[str, set[str]] = field(default_factory=dict)

    @property
    def final(self) -> Projection:
        return self.states[-1]


def freeze(projection: Projection) -> object:
    return tuple(sorted(projection.items()))


@pytest.fixture(scope="module")
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as server:
        # The first and the last feed report the same signing: unconfirmed after the first, confirmed by the last.
        server.serve("/a-dk-media.xml", Response(rss(SIGNED_DK)))
        server.serve("/z-dk-wire.xml", Response(rss(SIGNED_DK_AGAIN, PLANNED_DK)))
        for number, path in enumerate(corpus_files()):
            server.serve(f"/c{number:02d}.xml", Response.from_file(path))
        yield server


@pytest.fixture(scope="module")
def reference(feeds: FeedServer, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    folder = tmp_path_factory.mktemp("poll-reference")
    sources = [{"id": "a-dk-media", "name": "DK media", "url": feeds.url("/a-dk-media.xml"), "tier": "media"}]
    sources += [
        {"id": f"c{number:02d}-{path.name.split('__')[0]}", "name": path.name, "url": feeds.url(f"/c{number:02d}.xml")}
        for number, path in enumerate(corpus_files())
    ]
    sources.append({"id": "z-dk-wire", "name": "DK wire", "url": feeds.url("/z-dk-wire.xml"), "tier": "wire"})

    template = folder / "template.db"
    open_database(f"sqlite:///{template}").dispose()
    with connect(template) as connection:
        migrated_empty = project(connection)

    path = folder / "reference.db"
    config = load_config(write_config(folder / "feeds.yaml", f"sqlite:///{path}", sources, poll=POLL_SETTINGS), env={})
    engine = open_database(config.database_url)
    states: list[Projection] = []

    def snapshot(*_: object) -> None:
        with connect(path) as connection:
            states.append(project(connection))

    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))  # fixed: the whole run happens at one instant
    summary = run_poll(config, engine, clock, force=True, on_start=snapshot, on_feed=snapshot)
    engine.dispose()
    assert summary.count("ok") == len(sources), [feed.error for feed in summary.feeds if feed.error]
    reference = Reference(sources, states, migrated_empty, template)
    reference.index = {freeze(state): number for number, state in enumerate(states)}
    assert len(reference.index) == len(states), "every feed adds something"
    final = reference.final
    signing = ("dk-ua-2024", "upgrade", "discussion", "signed")
    assert any(row[:5] == (*signing, "confirmed") for row in final["status_change"]), "the last feed confirms"
    assert any(row[:5] == (*signing, "unconfirmed") for state in states for row in state["status_change"])
    reference.links = Counter((row[0], row[3]) for row in final["item"] if row[3])
    for row in final["item"]:
        reference.keys.setdefault(row[0], set()).add(row[1])

    # The run's typical duration, measured as the trials run it: WORKERS subprocesses at once, fresh databases.
    def measured(number: int) -> float:
        database = folder / f"measure-{number}.db"
        env = monitor_env(
            write_config(folder / f"measure-{number}.yaml", f"sqlite:///{database}", sources, poll=POLL_SETTINGS)
        )
        attempt = run_monitor(["poll", "--force"], env)
        assert attempt.returncode == 0, attempt.stderr
        with connect(database) as connection:
            check_storage(connection)
            found = project(connection)
        assert found == final, describe_difference(found, final)
        return attempt.elapsed

    with ThreadPoolExecutor(WORKERS) as pool:
        durations = list(pool.map(measured, range(WORKERS)))
    reference.typical_seconds = sum(durations) / len(durations)
    return reference


# --- the invariants ----------------------------------------------------------------------------------------
NONE_OF = {
    "an item stored twice": "SELECT source_id, key FROM item GROUP BY source_id, key HAVING count(*) > 1",
    "a guid stored twice in one feed": (
        "SELECT source_id, guid FROM item WHERE guid IS NOT NULL GROUP BY source_id, guid HAVING count(*) > 1"
    ),
    "a status change recorded twice": (
        "SELECT proposal_id, to_status FROM status_change WHERE kind = 'upgrade' AND state != 'rejected' "
        "GROUP BY proposal_id, to_status HAVING count(*) > 1"
    ),
    "a status change without evidence": (
        "SELECT c.id FROM status_change c WHERE c.kind != 'analyst' "
        "AND NOT EXISTS (SELECT 1 FROM evidence e WHERE e.change_id = c.id)"
    ),
    "evidence pointing nowhere": (
        "SELECT e.id FROM evidence e LEFT JOIN status_change c ON c.id = e.change_id "
        "LEFT JOIN item_match m ON m.id = e.match_id LEFT JOIN item i ON i.id = e.item_id "
        "LEFT JOIN source s ON s.id = e.source_id "
        "WHERE c.id IS NULL OR m.id IS NULL OR i.id IS NULL OR s.id IS NULL"
    ),
    "an event pointing nowhere": (
        "SELECT v.id FROM event v "
        "WHERE (v.change_id IS NOT NULL AND v.change_id NOT IN (SELECT id FROM status_change))"
        " OR (v.match_id IS NOT NULL AND v.match_id NOT IN (SELECT id FROM item_match))"
        " OR (v.source_id IS NOT NULL AND v.source_id NOT IN (SELECT id FROM source))"
        " OR (v.proposal_id IS NOT NULL AND v.proposal_id NOT IN (SELECT id FROM proposal))"
    ),
    "a proposal's status not backed by its confirmed change": (
        "SELECT p.id FROM proposal p LEFT JOIN status_change c ON c.id = p.status_change_id "
        "WHERE p.status_change_id IS NOT NULL AND (c.to_status != p.status OR c.state != 'confirmed')"
    ),
    "a finished run whose counts disagree with its feed polls": (
        "SELECT r.id FROM poll_run r WHERE r.finished_at IS NOT NULL AND (r.items_new != "
        "(SELECT coalesce(sum(items_new), 0) FROM feed_poll f WHERE f.run_id = r.id) OR r.feeds_ok != "
        "(SELECT count(*) FROM feed_poll f WHERE f.run_id = r.id AND f.outcome = 'ok'))"
    ),
}


def check_invariants(connection: sqlite3.Connection, reference: Reference) -> None:
    """What must hold in any state a poll leaves, killed or not. (Explicit checks with clear messages; the
    comparison with the reference states implies most of them.)"""
    for what, sql in NONE_OF.items():
        found = connection.execute(sql).fetchall()
        assert found == [], f"{what}: {found[:5]}"
    for source_id, link, count in connection.execute("SELECT source_id, link, count(*) FROM item GROUP BY 1, 2"):
        if link is not None:
            assert count <= reference.links[(source_id, link)], f"link stored twice: {source_id} {link}"
    # Whole feeds only: a feed's items are there exactly when a committed feed_poll counted them.
    polled = {
        source_id: (new, ok)
        for source_id, new, ok in connection.execute(
            "SELECT source_id, sum(items_new), max(outcome = 'ok') FROM feed_poll GROUP BY source_id"
        )
    }
    for source_id, count in connection.execute("SELECT source_id, count(*) FROM item GROUP BY source_id"):
        assert polled.get(source_id, (0, 0))[0] == count, f"{source_id}: items without their feed_poll"
    for source_id, (_new, ok) in polled.items():
        if ok:
            keys = {key for (key,) in connection.execute("SELECT key FROM item WHERE source_id = ?", (source_id,))}
            assert keys == reference.keys.get(source_id, set()), f"{source_id}: a feed stored in part"


def check_killed_state(path: Path, reference: Reference) -> str:
    """Check the database a killed poll left; returns where the kill landed."""
    if not path.exists():
        return "before the database file"
    with connect(path) as connection:
        check_storage(connection)
        if "alembic_version" not in tables(connection):
            assert not tables(connection), f"a schema in part, without its revision: {sorted(tables(connection))}"
            return "before or during the migration"
        revision = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        assert revision == [(head_revision(),)], f"a schema in part: revision {revision}"
        check_invariants(connection, reference)
        found = project(connection)
    if found == reference.migrated_empty:
        return "migrated, before the run started"
    number = reference.index.get(freeze(found))
    if number is None:
        nearest = min(reference.states, key=lambda state: abs(len(state["item"]) - len(found["item"])))
        raise AssertionError(
            "the database is not the reference after any whole number of feeds:\n" + describe_difference(found, nearest)
        )
    return f"{number} of {len(reference.states) - 1} feeds committed"


# --- the trials --------------------------------------------------------------------------------------------
@dataclass
class Counts:
    trials: int = 0
    kills: int = 0
    attempts_finished: int = 0
    phases: Counter[str] = field(default_factory=Counter)
    losses: int = 0
    duplicates: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def poll_trial(number: int, folder: Path, reference: Reference, counts: Counts, wanted_total: int) -> None:
    rng = Random(base_seed() * 1000 + number)
    folder.mkdir()
    path = folder / "monitor.db"
    if rng.random() < 0.5:
        shutil.copy(reference.template, path)  # else the first run creates and migrates it
    env = monitor_env(write_config(folder / "feeds.yaml", f"sqlite:///{path}", reference.sources, poll=POLL_SETTINGS))
    for _ in range(rng.randint(3, 8)):
        with counts.lock:
            if counts.kills >= wanted_total:
                break
        attempt = run_monitor(["poll", "--force"], env, kill_after=rng.uniform(0, reference.typical_seconds))
        if not attempt.killed:
            assert attempt.returncode == 0, attempt.stderr
            with counts.lock:
                counts.attempts_finished += 1
            break
        phase = check_killed_state(path, reference)
        with counts.lock:
            counts.kills += 1
            counts.phases[phase.split(" of ")[0] if "feeds committed" in phase else phase] += 1
    final = run_monitor(["poll", "--force"], env)
    assert final.returncode == 0, final.stderr
    with connect(path) as connection:
        check_storage(connection)
        check_invariants(connection, reference)
        found = project(connection)
        stored = connection.execute("SELECT count(*), count(DISTINCT source_id || ' ' || key) FROM item").fetchone()
    missing = len({row[:2] for row in reference.final["item"]} - {row[:2] for row in found["item"]})
    with counts.lock:
        counts.trials += 1
        counts.losses += missing
        counts.duplicates += stored[0] - stored[1]
    assert found == reference.final, describe_difference(found, reference.final)


def test_poller_killed_at_random_moments_leaves_whole_feeds_and_a_rerun_completes(
    reference: Reference, tmp_path: Path
) -> None:
    wanted = max(1, round(total_kills() * 0.7))
    counts = Counts()
    started = time.monotonic()
    numbers = iter(range(10**6))
    failed = threading.Event()

    def worker() -> None:
        while not failed.is_set():
            with counts.lock:
                if counts.kills >= wanted:
                    return
                number = next(numbers)
            try:
                poll_trial(number, tmp_path / f"trial-{number:04d}", reference, counts, wanted)
            except BaseException:
                failed.set()
                raise

    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(worker) for _ in range(WORKERS)]
        for future in futures:
            future.result()
    elapsed = time.monotonic() - started
    phases = ", ".join(f"{phase}: {n}" for phase, n in sorted(counts.phases.items()))
    TALLY.record(
        "poller",
        f"{counts.trials} trials, {counts.kills} kills ({phases}), {counts.attempts_finished} runs ended before "
        f"their kill; {len(reference.states) - 1} feeds, {len(reference.final['item'])} items, "
        f"{len(reference.final['status_change'])} status changes; losses {counts.losses}, duplicates "
        f"{counts.duplicates}; typical run {reference.typical_seconds:.1f}s; {elapsed:.0f}s",
    )
    assert counts.kills >= wanted
    assert counts.losses == 0 and counts.duplicates == 0

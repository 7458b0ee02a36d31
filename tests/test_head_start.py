"""A poll's first batch is leased from the SQLite file alone and fetched while the rest of the run loads
(monitor/head_start.py, monitor/store/idle.py's `lease_first_batch`): only when the file says the full run's sync
would change nothing, choosing what the full run's lease would, and never fetching or storing a feed twice."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from monitor import head_start
from monitor.config import Config
from monitor.errors import DatabaseError
from monitor.feedserver import FeedServer, Response
from monitor.parse_pool import POOL_FIRST_POLLS, Parser
from monitor.pipeline import run_poll
from monitor.store import models, sources
from monitor.store.idle import lease_first_batch
from monitor.store.locks import worker_name
from monitor.store.schema import open_database

from .conftest import ROOT, FakeClock, make_config, rss

OWNER = "host:12345"


def _settled(tmp_path: Path, server: FeedServer, clock: FakeClock, base: Config, feeds: int, **poll: object) -> Config:
    """`feeds` feeds of one report each, polled once by the full run."""
    for i in range(feeds):
        server.serve(f"/{i}.xml", Response(rss((f"report {i}", f"https://x.test/{i}", "text"))))
    url = f"sqlite:///{tmp_path / 'm.db'}"
    config = make_config(base, url, {f"f{i}": server.url(f"/{i}.xml") for i in range(feeds)}, **poll)
    assert run_poll(config, open_database(url), clock, force=True).count("ok") == feeds
    return config


def _news(server: FeedServer, feeds: int) -> None:
    for i in range(feeds):
        body = rss((f"report {i}", f"https://x.test/{i}", "text"), (f"news {i}", f"https://x.test/news/{i}", "text"))
        server.serve(f"/{i}.xml", Response(body))


def _database(config: Config) -> Path:
    return Path(config.database_url.removeprefix("sqlite:///"))


def _sql(config: Config, statement: str) -> None:
    with sqlite3.connect(_database(config)) as connection:
        connection.execute(statement)


def _until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _past_the_batch(
    tmp_path: Path, server: FeedServer, clock: FakeClock, base: Config, feeds: int
) -> tuple[Config, head_start.HeadStart, int]:
    """`feeds` settled feeds (batch 2, concurrency 1), each with news now, and a forced head start a day later that
    took its batch (8: a few per fetch slot) of them; with how many requests the server had before it."""
    config = _settled(tmp_path, server, clock, base, feeds, batch=2, concurrency=1)
    _news(server, feeds)
    before = len(server.requests)
    head = head_start.start(config, clock.advance(days=1), force=True)
    assert head is not None and len(head.requests) == head_start.HEAD_ROUNDS
    return config, head, before


def _leases(engine: Engine) -> dict[str, tuple[str | None, datetime | None]]:
    with Session(engine) as session:
        return {row.id: (row.lease_owner, row.lease_expires_at) for row in session.exec(select(models.Source))}


def test_the_first_batch_is_on_the_network_before_the_poll_and_fetched_once(
    tmp_path: Path, server: FeedServer, clock: FakeClock, base_config: Config
) -> None:
    config = _settled(tmp_path, server, clock, base_config, 3)
    _news(server, 3)
    before, switch = len(server.requests), sys.getswitchinterval()
    head = head_start.start(config, clock.advance(days=1), force=False)
    assert head is not None and [request.source_id for request in head.requests] == ["f0", "f1", "f2"]
    assert sys.getswitchinterval() == head_start.SWITCH  # the loop's thread gets the GIL soon after it asks
    try:
        _until(lambda: len(server.requests) - before == 3)  # all three asked for, and the poll not even begun
        engine = open_database(config.database_url)
        summary = run_poll(config, engine, clock, head=head)
    finally:
        head.close()
    assert sys.getswitchinterval() == switch
    assert (summary.feeds_due, summary.count("ok"), summary.items_new) == (3, 3, 3)
    assert len(server.requests) - before == 3  # not one fetched again
    with Session(engine) as session:
        assert len(session.exec(select(models.Item)).all()) == 6
        runs = session.exec(select(models.PollRun).order_by(models.PollRun.id)).all()  # type: ignore[arg-type]
        polls = session.exec(select(models.FeedPoll).where(models.FeedPoll.run_id == runs[-1].id)).all()
    assert sorted(poll.source_id for poll in polls) == ["f0", "f1", "f2"]
    assert runs[-1].finished_at is not None and runs[-1].feeds_ok == 3
    assert set(_leases(engine).values()) == {(None, None)}


def test_the_poll_leases_past_the_head_start_batch(
    tmp_path: Path, server: FeedServer, clock: FakeClock, base_config: Config
) -> None:
    # batch 2, concurrency 1: the head start takes 8 feeds (a few per fetch slot), the poll the other 3, 2 at a time
    feeds = head_start.HEAD_ROUNDS + 3
    config, head, before = _past_the_batch(tmp_path, server, clock, base_config, feeds)
    try:
        summary = run_poll(config, open_database(config.database_url), clock, force=True, head=head)
    finally:
        head.close()
    assert (summary.feeds_due, summary.count("ok"), summary.items_new) == (feeds, feeds, feeds)
    assert sorted(request.path for request in server.requests[before:]) == sorted(f"/{i}.xml" for i in range(feeds))


def test_a_head_start_chooses_what_the_full_lease_chooses(
    tmp_path: Path, server: FeedServer, clock: FakeClock, base_config: Config
) -> None:
    config = _settled(tmp_path, server, clock, base_config, 6)
    now = clock.advance(days=1)
    _sql(config, "UPDATE source SET next_poll_at = '2030-01-01 00:00:00.000000' WHERE id = 'f1'")  # not due
    _sql(config, "UPDATE source SET health = 'disabled' WHERE id = 'f2'")
    _sql(config, "UPDATE source SET enabled = 0 WHERE id = 'f3'")
    chosen = {}
    for force in (False, True):
        mine, theirs = (f"sqlite:///{tmp_path / f'{name}-{force}.db'}" for name in ("head", "full"))
        for url in (mine, theirs):
            with (
                sqlite3.connect(_database(config)) as original,
                sqlite3.connect(url.removeprefix("sqlite:///")) as copy,
            ):
                original.backup(copy)
        with Session(open_database(theirs)) as session:
            rows = sources.lease_due_sources(now, OWNER, 900, 2, session=session, force=force, skip=())
            expected = [(row.id, row.url, row.etag, row.last_modified, row.body_hash) for row in rows]
            complete = len(sources.due_sources(now, session=session, force=force)) <= 2
            session.commit()
        assert lease_first_batch(mine, config.digest or "", now, OWNER, 900, 2, force=force) == (expected, complete)
        assert _leases(open_database(mine)) == _leases(open_database(theirs))  # the same lease, as SQLAlchemy reads it
        chosen[force] = [row[0] for row in expected]
        assert _leases(open_database(mine))[chosen[force][0]] == (OWNER, now + timedelta(seconds=900))
    assert chosen == {False: ["f0", "f4"], True: ["f0", "f1"]}  # due, or forced; never a disabled feed
    assert complete is False  # forced: f2 is left for the next batch


def test_a_head_start_asks_first_for_the_feeds_that_brought_a_body_last_time(
    tmp_path: Path, server: FeedServer, clock: FakeClock, base_config: Config
) -> None:
    """The same choice as the full lease, the feeds whose last answer was a 200 first: the likeliest to bring news."""
    config = _settled(tmp_path, server, clock, base_config, 4)
    _sql(config, "UPDATE source SET last_status_code = 304 WHERE id IN ('f0', 'f2')")
    batch = lease_first_batch(
        config.database_url, config.digest or "", clock.advance(days=1), OWNER, 900, 9, force=True
    )
    assert batch is not None and [row[0] for row in batch.rows] == ["f1", "f3", "f0", "f2"]


@pytest.mark.parametrize(
    "unsettled",
    [
        "UPDATE poll_run SET finished_at = NULL WHERE id = (SELECT max(id) FROM poll_run)",  # a run at work
        "UPDATE poll_run SET config_digest = 'another feeds.yaml'",
        "UPDATE source SET lease_owner = 'elsewhere:1', lease_expires_at = '2030-01-01 00:00:00.000000'",
        "UPDATE alembic_version SET version_num = '0001'",
    ],
)
def test_no_head_start_unless_the_file_is_settled(
    tmp_path: Path, server: FeedServer, clock: FakeClock, base_config: Config, unsettled: str
) -> None:
    config = _settled(tmp_path, server, clock, base_config, 2)
    _sql(config, unsettled)

    def held() -> list[tuple[str, str | None, str | None]]:
        with sqlite3.connect(_database(config)) as connection:
            return connection.execute("SELECT id, lease_owner, lease_expires_at FROM source ORDER BY id").fetchall()

    before = held()
    assert head_start.start(config, clock.advance(days=1), force=True) is None
    assert held() == before  # nothing written


def test_no_head_start_elsewhere(tmp_path: Path, server: FeedServer, clock: FakeClock, base_config: Config) -> None:
    config = _settled(tmp_path, server, clock, base_config, 2)
    now = clock()
    assert lease_first_batch(config.database_url, config.digest or "", now, OWNER, 900, 9, force=False) == ([], True)
    for url in (config.database_url + "?mode=ro", f"sqlite:///{tmp_path / 'none.db'}", "postgresql://x@127.0.0.1/y"):
        assert lease_first_batch(url, config.digest or "", now, OWNER, 900, 9, force=True) is None
    assert not (tmp_path / "none.db").exists()


def test_a_head_start_closed_without_a_poll_frees_its_feeds(
    tmp_path: Path, server: FeedServer, clock: FakeClock, base_config: Config
) -> None:
    config = _settled(tmp_path, server, clock, base_config, 2)

    def hang(handler: object) -> None:
        time.sleep(3)

    server.serve("/0.xml", hang)
    head = head_start.start(config, clock.advance(days=1), force=True)
    assert head is not None
    _until(lambda: any(request.path == "/0.xml" for request in server.requests[-2:]))
    started = time.monotonic()
    head.close()  # stopped while loading (Ctrl-C, say): the fetch in flight is dropped at once, the lease freed
    assert time.monotonic() - started < 2
    engine = open_database(config.database_url)
    assert set(_leases(engine).values()) == {(None, None)}
    # A process killed before it could free them: the next run takes its feeds as a dead holder's
    batch = lease_first_batch(config.database_url, config.digest or "", clock(), worker_name(), 900, 9, force=True)
    assert batch and batch.rows
    _news(server, 2)
    summary = run_poll(config, engine, clock, force=True)
    assert (summary.count("ok"), summary.items_new) == (2, 2)
    assert set(_leases(engine).values()) == {(None, None)}


def test_the_head_start_and_the_run_lock_load_no_sqlalchemy() -> None:
    code = (
        "import sys\n"
        "import monitor.head_start, monitor.store.locks\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('sqlalchemy', 'sqlmodel', 'alembic')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_cron_run_on_a_settled_file_stores_as_the_full_run(
    tmp_path: Path, server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through `monitor poll` itself: the runs after the first get a head start, and store the news once."""
    from click.testing import CliRunner

    from monitor.cli import cli

    from .conftest import write_config

    database = tmp_path / "cli.db"
    for i in range(3):
        server.serve(f"/{i}.xml", Response(rss((f"report {i}", f"https://x.test/{i}", "text"))))
    feeds = [{"id": f"f{i}", "name": f"f{i}", "url": server.url(f"/{i}.xml")} for i in range(3)]
    path = write_config(tmp_path / "feeds.yaml", f"sqlite:///{database}", feeds)
    heads: list[int | None] = []
    start = head_start.start

    def counted(*args: object, **kwargs: object) -> head_start.HeadStart | None:
        head = start(*args, **kwargs)  # type: ignore[arg-type]
        heads.append(len(head.requests) if head else None)
        return head

    monkeypatch.setattr(head_start, "start", counted)
    runs = []
    for _ in range(3):
        result = CliRunner().invoke(cli, ["poll", "--force", "--json", "--config", str(path)])
        assert result.exit_code == 0, result.output
        runs.append(result.stdout)
        _news(server, 3)
    with sqlite3.connect(database) as connection:
        items = connection.execute("SELECT count(*), count(DISTINCT key) FROM item").fetchone()
        held = connection.execute("SELECT count(*) FROM source WHERE lease_owner IS NOT NULL").fetchone()
    assert items == (6, 6) and held == (0,)
    assert ['"items_new": 3' in run for run in runs] == [True, True, False]
    assert heads == [3, 3, 3]  # the first run fetches feeds.yaml's feeds before it makes the file


def test_a_poll_whose_lease_fails_stops_with_one_line_and_holds_nothing(
    tmp_path: Path, server: FeedServer, clock: FakeClock, base_config: Config
) -> None:
    feeds = head_start.HEAD_ROUNDS + 6  # the head start leases f0, f1, f10 .. f13, f2, f3; the poll the rest
    config = _settled(tmp_path, server, clock, base_config, feeds, batch=2, concurrency=1)
    trigger = "BEFORE UPDATE OF lease_owner ON source WHEN NEW.id = 'f8' AND NEW.lease_owner IS NOT NULL"
    _sql(config, f"CREATE TRIGGER broken {trigger} BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
    head = head_start.start(config, clock.advance(days=1), force=True)
    assert head is not None and len(head.requests) == head_start.HEAD_ROUNDS
    engine = open_database(config.database_url)
    try:
        with pytest.raises(DatabaseError, match="^database, while leasing feeds: .*disk I/O error"):
            run_poll(config, engine, clock, force=True, head=head)
        time.sleep(0.3)  # a fetch still going would lease again by now
        assert set(_leases(engine).values()) == {(None, None)}
    finally:
        head.close()
    with Session(engine) as session:
        run = session.exec(select(models.PollRun).order_by(models.PollRun.id.desc())).first()  # type: ignore[union-attr]
    assert run is not None and run.finished_at is not None  # what came before the fault is stored, and counted
    assert head_start.HEAD_ROUNDS <= run.feeds_not_modified < feeds


def test_the_parser_workers_start_early_for_a_poll_of_many_new_feeds(
    tmp_path: Path, server: FeedServer, clock: FakeClock, base_config: Config
) -> None:
    feeds = {f"f{i}": server.url(f"/{i}.xml") for i in range(POOL_FIRST_POLLS)}
    first_run = make_config(base_config, f"sqlite:///{tmp_path / 'new.db'}", feeds)
    assert (
        head_start.early_parser(make_config(base_config, first_run.database_url, dict(list(feeds.items())[1:])), None)
        is None
    )
    parser = head_start.early_parser(first_run, None)  # every feed is new: the workers load beside the rest
    assert parser is not None and parser.matcher is not None
    try:
        if parser.workers >= 2:
            _until(lambda: parser.processes == parser.workers)
    finally:
        parser.close()
    assert not (tmp_path / "new.db").exists()
    config = _settled(tmp_path, server, clock, base_config, 2)
    head = head_start.start(config, clock.advance(days=1), force=True)
    try:
        assert head is not None and head_start.early_parser(config, head) is None  # polled before: the poll decides
        assert head_start.early_parser(config, None) is None  # the file exists: not a first run
    finally:
        if head:
            head.close()


def test_a_first_run_of_many_feeds_through_the_early_parser(
    tmp_path: Path, server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from monitor.cli import cli

    from .conftest import write_config

    count = POOL_FIRST_POLLS + 2
    for i in range(count):
        server.serve(f"/{i}.xml", Response(rss((f"report {i}", f"https://x.test/{i}", "text"))))
    feeds = [{"id": f"f{i}", "name": f"f{i}", "url": server.url(f"/{i}.xml")} for i in range(count)]
    path = write_config(tmp_path / "feeds.yaml", f"sqlite:///{tmp_path / 'first.db'}", feeds)
    parsers = []
    early = head_start.early_parser

    def kept(*args: Any) -> Parser | None:
        parsers.append(early(*args))
        return parsers[-1]

    monkeypatch.setattr(head_start, "early_parser", kept)
    result = CliRunner().invoke(cli, ["poll", "--json", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert len(parsers) == 1 and parsers[0] is not None
    assert parsers[0].processes == (parsers[0].workers if parsers[0].workers >= 2 else 0)  # and the poll used them
    assert f'"feeds_ok": {count}' in result.stdout and f'"items_new": {count}' in result.stdout


_SPAWN_ORDER = """
import sys
from monitor import parse_worker
from monitor.cli import cli

family = parse_worker._Worker.family
seen = []

def noted(*args, **kwargs):
    seen.append("aiohttp" in sys.modules)
    return family(*args, **kwargs)

parse_worker._Worker.family = noted
try:
    cli(sys.argv[1:], prog_name="monitor")
except SystemExit:
    pass
print("network loaded at the spawn:", seen, file=sys.stderr)
"""


def test_a_first_run_starts_its_parser_processes_before_the_network_code_loads(
    tmp_path: Path, server: FeedServer
) -> None:
    """The processes take half a second to load, the network code a fifth: on a first run of many feeds both load
    at once, on two cores, rather than one after the other."""
    from .conftest import write_config

    count = POOL_FIRST_POLLS + 2
    for i in range(count):
        server.serve(f"/{i}.xml", Response(rss((f"report {i}", f"https://x.test/{i}", "text"))))
    feeds = [{"id": f"f{i}", "name": f"f{i}", "url": server.url(f"/{i}.xml")} for i in range(count)]
    path = write_config(tmp_path / "feeds.yaml", f"sqlite:///{tmp_path / 'first.db'}", feeds)
    command = [sys.executable, "-c", _SPAWN_ORDER, "poll", "--json", "--config", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert f'"items_new": {count}' in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "network loaded at the spawn: [False]"


@pytest.mark.parametrize("feeds", [3, 7])
def test_a_first_run_fetches_before_the_file_is_made(
    tmp_path: Path, server: FeedServer, clock: FakeClock, base_config: Config, feeds: int
) -> None:
    """No file yet: every enabled feed of feeds.yaml is due and none can be held, so the head start takes the
    first of them in the lease's order without a lease (one batch: each brings a whole feed), and the poll leases
    past them."""
    for i in range(feeds + 1):
        server.serve(f"/{i}.xml", Response(rss((f"report {i}", f"https://x.test/{i}", "text"))))
    url = f"sqlite:///{tmp_path / 'new.db'}"
    config = make_config(
        base_config, url, {f"f{i}": server.url(f"/{i}.xml") for i in range(feeds + 1)}, batch=3, concurrency=1
    )
    off = feeds // 2  # disabled in feeds.yaml: never fetched
    sources = tuple(s.model_copy(update={"enabled": s.id != f"f{off}"}) for s in config.sources)
    config = replace(config, sources=sources)
    head = head_start.start(config, clock(), force=False)
    assert head is not None
    try:
        assert head.complete == (feeds <= 3) and not any(request.etag for request in head.requests)
        enabled = sorted(f"f{i}" for i in range(feeds + 1) if i != off)
        assert [request.source_id for request in head.requests] == enabled[:3]
        assert head_start.quiet_poll(head, config, clock(), clock, force=False) is None  # new feeds answer 200
        _until(lambda: len(server.requests) == len(head.requests))  # on the network before the file exists
        assert not (tmp_path / "new.db").exists()
        summary = run_poll(config, open_database(url), clock, head=head)
    finally:
        head.close()
    assert (summary.feeds_due, summary.count("ok"), summary.items_new) == (feeds, feeds, feeds)
    assert sorted(request.path for request in server.requests) == sorted(
        f"/{i}.xml" for i in range(feeds + 1) if i != off
    )
    assert set(_leases(open_database(url)).values()) == {(None, None)}


def test_a_first_run_stopped_before_its_poll_leaves_no_file(
    tmp_path: Path, server: FeedServer, clock: FakeClock, base_config: Config
) -> None:
    server.serve("/0.xml", Response(rss(("report", "https://x.test/0", "text"))))
    config = make_config(base_config, f"sqlite:///{tmp_path / 'new.db'}", {"f0": server.url("/0.xml")})
    head = head_start.start(config, clock(), force=False)
    assert head is not None and not (tmp_path / "new.db").exists()
    head.close()
    assert not (tmp_path / "new.db").exists()


def test_past_its_batch_a_head_start_fetches_only_as_its_answers_are_taken(
    tmp_path: Path, server: FeedServer, clock: FakeClock, base_config: Config
) -> None:
    """The answers wait in memory until the poll takes them: room for the first batch, then backpressure, as
    `fetch.fetch_all` gives its reader (a first run of 2,000 feeds held 330 MB at its peak without it)."""
    from monitor.fetch import FetchRequest

    feeds = head_start.HEAD_ROUNDS + 6
    config, head, before = _past_the_batch(tmp_path, server, clock, base_config, feeds)
    first = {request.source_id for request in head.requests}
    left = [
        FetchRequest(f"f{i}", server.url(f"/{i}.xml"), None, None, None) for i in range(feeds) if f"f{i}" not in first
    ]

    async def more() -> list[FetchRequest]:
        batch, left[:] = left[:2], left[2:]
        return batch

    async def taken() -> list[str]:
        return [result.request.source_id async for result in head.results()]

    try:
        head.attach(more)
        _until(lambda: len(server.requests) - before >= head_start.HEAD_ROUNDS)
        time.sleep(0.5)  # nothing takes the answers meanwhile
        assert len(server.requests) - before <= head_start.HEAD_ROUNDS + 2 + 1  # the batch, a lease, one in flight
        assert sorted(head.run(taken())) == sorted(f"f{i}" for i in range(feeds))
    finally:
        head.close()
    assert sorted(request.path for request in server.requests[before:]) == sorted(f"/{i}.xml" for i in range(feeds))

"""Scale-out on PostgreSQL: four `monitor run` workers and two `monitor digest` senders at once on one database,
over the real Reuters replay served as one feed per snapshot, with a set of subscribers, end in the same state
as one `monitor run` on SQLite: the same items, matches, status history and events, and every digest part sent
exactly once. One worker is SIGKILLed while it holds a feed; the next run takes that feed, and nothing is lost
or duplicated. Runs where MONITOR_TEST_POSTGRES_URL is set (CI sets it)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.feedserver import FeedServer, Response
from monitor.store.schema import open_database

from .botapi import FakeBotAPI, RateLimits
from .conftest import POSTGRES, REPLAY, TOKEN, PostgresDatabases, write_config
from .reliability.harness import held_until, monitor_env

CHATS = (501, 502, 503, 504, 505)
WORKERS, SENDERS = 4, 2
SLOW = "r03"  # the feed the killed worker is made to hold

pytestmark = pytest.mark.skipif(not POSTGRES, reason="needs MONITOR_TEST_POSTGRES_URL")


def _snapshots() -> list[Path]:
    paths = sorted(REPLAY.glob("reuters__*.xml"))[::2] + sorted(REPLAY.glob("reuters_direct__*.xml"))[::2]
    assert len(paths) == 8
    return paths


def _serve(server: FeedServer, slow: Any = None) -> list[dict[str, Any]]:
    sources = []
    for number, path in enumerate(_snapshots()):
        source_id = f"r{number:02d}"
        route = slow if slow is not None and source_id == SLOW else Response(path.read_bytes())
        sources.append({"id": source_id, "name": source_id, "url": server.serve(f"/{source_id}.xml", route)})
    return sources


def _configure(folder: Path, url: str, sources: list[dict[str, Any]], fake: FakeBotAPI) -> dict[str, str]:
    config = write_config(
        folder / "feeds.yaml",
        url,
        sources,
        poll={"batch": 2, "connect_timeout": 5, "read_timeout": 60, "total_timeout": 90, "max_items": 200},
        telegram={"api_url": fake.base_url},
        digest={"frequency": "instant", "max_reports": 10},
    )
    return monitor_env(config, MONITOR_TELEGRAM_TOKEN=TOKEN)


def _subscribe(url: str) -> None:
    """The subscribers, before any event: they are to be told everything."""
    engine = open_database(url)
    with engine.begin() as connection:
        for chat in CHATS:
            connection.execute(
                sa.text(
                    "INSERT INTO subscriber (chat_id, chat_type, active, frequency, hour, min_status, last_event_id, "
                    "last_admin_event_id, subscribed_at, updated_at) VALUES "
                    "(:chat, 'private', true, 'instant', 8, 'all', 0, 0, :now, :now)"
                ),
                {"chat": chat, "now": "2026-01-01 00:00:00"},
            )
    engine.dispose()


def _monitor(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", *args],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str], timeout: float = 300) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode in (0, -signal.SIGKILL), f"exit {process.returncode}: {err}"
    assert "Traceback" not in err and "locked" not in err, err
    return out + err


STATE = {
    "items": "SELECT source_id, key, title, summary, version, content_hash FROM item",
    "stories": "SELECT canonical_url FROM story",
    "matches": (
        "SELECT i.source_id, i.key, m.item_version, m.proposal_id, round(CAST(m.score AS numeric), 6), m.status "
        "FROM item_match m JOIN item i ON i.id = m.item_id"
    ),
    "status history": "SELECT proposal_id, kind, from_status, to_status, state FROM status_change",
    "statuses": "SELECT id, status FROM proposal",
    "evidence": (
        "SELECT c.proposal_id, c.to_status, i.source_id, i.key FROM evidence e "
        "JOIN status_change c ON c.id = e.change_id JOIN item i ON i.id = e.item_id"
    ),
    "events": "SELECT kind, proposal_id, source_id FROM event",
}


def _state(engine: Engine) -> dict[str, Counter[tuple[Any, ...]]]:
    with engine.connect() as connection:
        return {
            name: Counter(tuple(map(_plain, row)) for row in connection.execute(sa.text(sql)))
            for name, sql in STATE.items()
        }


def _plain(value: Any) -> Any:
    """PostgreSQL's numeric comes back as a Decimal, SQLite's as a float: 0.85 must compare equal to 0.85."""
    return float(value) if isinstance(value, Decimal) else value


def _delivery(engine: Engine, fake: FakeBotAPI) -> dict[str, Any]:
    """Parts in the outbox, parts Telegram received, and whether each subscriber was told each event once."""
    with engine.connect() as connection:
        parts = connection.execute(
            sa.text(
                "SELECT s.chat_id, p.text, p.sent_at IS NOT NULL FROM digest_part p "
                "JOIN digest d ON d.id = p.digest_id "
                "JOIN subscriber s ON s.id = d.subscriber_id WHERE s.chat_id <> 0"
            )
        ).all()
        events = connection.execute(sa.text("SELECT count(*) FROM event")).scalar_one()
        told: dict[int, int] = dict(
            connection.execute(
                sa.text(
                    "SELECT s.chat_id, count(*) FROM digest_event t JOIN subscriber s ON s.id = t.subscriber_id "
                    "GROUP BY s.chat_id"
                )
            ).all()
        )
    received = Counter((message.chat_id, message.text) for message in fake.sent() if message.chat_id in CHATS)
    return {"parts": parts, "events": events, "told": told, "received": received}


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[tuple[dict[str, Counter[tuple[Any, ...]]], int]]:
    """One `monitor run` on SQLite over the same feeds and subscribers."""
    url = f"sqlite:///{tmp_path / 'reference.db'}"
    with FeedServer() as server, FakeBotAPI(token=TOKEN, limits=RateLimits.off()) as fake:
        for chat in CHATS:
            fake.add_chat(chat)
        env = _configure(tmp_path, url, _serve(server), fake)
        _subscribe(url)
        _finish(_monitor(["run"], env))
        engine = open_database(url)
        delivery = _delivery(engine, fake)
        yield _state(engine), len(delivery["parts"])
        engine.dispose()


def test_four_workers_and_two_senders_on_postgres_match_one_process_on_sqlite(
    tmp_path: Path,
    reference: tuple[dict[str, Counter[tuple[Any, ...]]], int],
    postgres_databases: PostgresDatabases,
) -> None:
    expected, _reference_parts = reference
    url = postgres_databases.create()
    asked, release = threading.Event(), threading.Event()
    body = _snapshots()[int(SLOW[1:])].read_bytes()

    slow = held_until(body, release, asked)

    try:
        with FeedServer() as server, FakeBotAPI(token=TOKEN, limits=RateLimits.off()) as fake:
            for chat in CHATS:
                fake.add_chat(chat)
            env = _configure(tmp_path, url, _serve(server, slow), fake)
            _subscribe(url)
            engine = open_database(url)
            stop = threading.Event()
            senders_done: list[str] = []

            def sender() -> None:
                while not stop.is_set():
                    senders_done.append(_finish(_monitor(["digest"], env)))

            senders = [threading.Thread(target=sender) for _ in range(SENDERS)]
            for thread in senders:
                thread.start()
            workers = [_monitor(["run"], env) for _ in range(WORKERS)]
            assert asked.wait(120), "no worker asked for the slow feed"
            with engine.connect() as connection:
                holder = connection.execute(
                    sa.text("SELECT lease_owner FROM source WHERE id = :id"), {"id": SLOW}
                ).scalar_one()
                held = connection.execute(
                    sa.text("SELECT count(*) FROM source WHERE lease_owner = :holder"), {"holder": holder}
                ).scalar_one()
            pid = int(holder.rpartition(":")[2])
            victim = next(process for process in workers if process.pid == pid)
            victim.send_signal(signal.SIGKILL)
            release.set()
            for process in workers:
                _finish(process)
            with engine.connect() as connection:
                leased: dict[str, int] = dict(
                    connection.execute(
                        sa.text("SELECT f.source_id, r.id FROM feed_poll f JOIN poll_run r ON r.id = f.run_id")
                    ).all()
                )
                assert SLOW not in leased, "the killed worker's feed was stored"
            _finish(_monitor(["run"], env))  # takes the killed worker's feed: its holder is dead
            stop.set()
            for thread in senders:
                thread.join(300)
            _finish(_monitor(["digest"], env))

            found = _state(engine)
            for name in STATE:
                assert found[name] == expected[name], f"{name} differs from one process on SQLite"
            delivery = _delivery(engine, fake)
            with engine.connect() as connection:
                per_run = connection.execute(
                    sa.text("SELECT run_id, count(*) FROM feed_poll GROUP BY run_id ORDER BY run_id")
                ).all()
            engine.dispose()
    finally:
        postgres_databases.drop(url)

    parts = delivery["parts"]
    assert parts and all(sent for _chat, _text, sent in parts), "every part sent"
    sent = Counter((chat, text) for chat, text, _sent in parts)
    assert delivery["received"] == sent, "each part reached Telegram exactly once"
    assert delivery["told"] == dict.fromkeys(CHATS, delivery["events"]), "each event told to each subscriber once"
    items = sum(expected["items"].values())
    print(
        f"\nscale-out: {WORKERS} workers + 1 after the kill, {SENDERS} senders; the killed worker held {held} feeds; "
        f"feeds stored per run {[count for _run, count in per_run]}; {items} items, "
        f"{sum(found['matches'].values())} matches, "
        f"{sum(found['status history'].values())} status changes, {delivery['events']} events; "
        f"{len(parts)} parts sent once each to {len(CHATS)} subscribers ({len(senders_done)} sender runs)"
    )

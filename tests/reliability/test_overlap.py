"""Overlapping cron runs: two `python -m monitor run` started at the same moment on the same database. One
works; the other exits 0 at once with "another monitor run is working"; the data is as after one run.

The first feed answers only when the test says so, so the run that holds the lock is still working when the
other one looks: no timing luck is involved. Both a database that exists already and a fresh path (both
processes arriving before any schema exists) are tried.
"""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.delivery import run_digest
from monitor.feedserver import FeedServer, Response
from monitor.pipeline import run_poll
from monitor.store.schema import open_database

from ..conftest import ROOT, SIGNED_DK, FakeClock, rss, write_config
from .harness import check_storage, connect, held_until, monitor_env
from .projection import describe_difference, project

SLOW_BODY = rss(("slow1", "Italy proposes an Article 5-style guarantee for Ukraine", "Rome said on Monday."))


def _held_until(release: threading.Event, asked: threading.Event) -> object:
    return held_until(SLOW_BODY, release, asked)


@pytest.mark.parametrize(("database", "rounds"), [("existing", 1), ("fresh", 3)])
def test_overlapping_runs_one_works_the_other_exits_at_once(tmp_path: Path, database: str, rounds: int) -> None:
    # On a fresh path both processes race to create the schema first; whether they collide depends on timing,
    # so that case is tried a few times.
    for number in range(rounds):
        folder = tmp_path / f"round-{number}"
        folder.mkdir()
        overlap_round(folder, database)


def overlap_round(tmp_path: Path, database: str) -> None:
    release, asked = threading.Event(), threading.Event()
    path = tmp_path / "monitor.db"
    if database == "existing":
        open_database(f"sqlite:///{path}").dispose()
    with FeedServer() as feeds:
        feeds.serve("/slow.xml", _held_until(release, asked))  # type: ignore[arg-type]
        feeds.serve("/dk.xml", Response(rss(SIGNED_DK)))
        sources = [
            {"id": "dk", "name": "DK", "url": feeds.url("/dk.xml"), "tier": "official"},
            {"id": "slow", "name": "Slow", "url": feeds.url("/slow.xml")},
        ]
        config_path = write_config(tmp_path / "feeds.yaml", f"sqlite:///{path}", sources)
        env = monitor_env(config_path)
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "monitor", "run"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        try:
            deadline = time.monotonic() + 90
            while all(run.poll() is None for run in runs):
                assert time.monotonic() < deadline, "neither run exited while the other was held"
                time.sleep(0.02)
            loser = next(run for run in runs if run.poll() is not None)
            winner = next(run for run in runs if run is not loser)
            loser_out, loser_err = loser.communicate(timeout=10)
            assert winner.poll() is None, "the other run is still working (held by the slow feed)"
            assert asked.wait(30), "the working run asked for the slow feed"
            release.set()
            winner_out, winner_err = winner.communicate(timeout=90)
        finally:
            release.set()
            for run in runs:
                if run.poll() is None:
                    run.kill()
                run.communicate()
        # The same feeds through one run, alone, in-process with a fixed clock (the slow feed now answers).
        single = tmp_path / "alone.db"
        config = load_config(write_config(tmp_path / "alone.yaml", f"sqlite:///{single}", sources), env={})
        engine = open_database(config.database_url)
        clock = FakeClock()
        run_poll(config, engine, clock)
        run_digest(config, engine, clock, out=io.StringIO())
        engine.dispose()
        with connect(single) as connection:
            alone = project(connection)
    assert loser.returncode == 0, loser_err
    assert "another monitor run is working" in loser_err, loser_err
    assert "feeds" not in loser_out, "the second run polled nothing"
    assert winner.returncode == 0, winner_err
    assert "2 feeds: 2 ok" in winner_out, winner_out

    with connect(path) as connection:
        check_storage(connection)
        assert connection.execute("SELECT count(*), count(finished_at) FROM poll_run").fetchone() == (1, 1)
        assert connection.execute("SELECT count(*) FROM feed_poll").fetchone() == (2,)
        assert connection.execute("SELECT count(*) FROM digest").fetchone() == (1,)
        found = project(connection)

    assert found == alone, describe_difference(found, alone)

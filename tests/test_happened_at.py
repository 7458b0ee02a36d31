"""A change carries when the world changed (its earliest report's publication) beside when the monitor saw it;
listings, digests and the chart show the first (issue 12)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime

import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from alembic import command
from monitor.cli import cli
from monitor.config import Config
from monitor.delivery import run_digest
from monitor.feedserver import FeedServer, Response
from monitor.pipeline import run_poll
from monitor.store.schema import alembic_config

from .conftest import FakeClock, make_config, rss

SIGNED_2025 = (
    "dk-old",
    "Ukraine and Denmark sign 10-year security agreement",
    "Danish Prime Minister Mette Frederiksen and President Zelensky signed a bilateral security agreement.",
    datetime(2025, 3, 10, 9, 0, tzinfo=UTC),
)


def _backfill(base: Config, database_url: str, engine: Engine, server: FeedServer) -> tuple[Config, FakeClock]:
    """An official feed whose signing report is from 2025, first polled in December 2026."""
    server.serve("/gov.xml", Response(rss(SIGNED_2025)))
    config = make_config(base, database_url, {"gov": server.url("/gov.xml")})
    config = replace(config, sources=tuple(s.model_copy(update={"tier": "official"}) for s in config.sources))
    clock = FakeClock(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    run_poll(config, engine, clock)
    return config, clock


def test_backfilled_report_dates_the_change_when_it_happened(
    base_config: Config, database_url: str, engine: Engine, server: FeedServer
) -> None:
    config, clock = _backfill(base_config, database_url, engine, server)
    runner = CliRunner(env={"MONITOR_DATABASE_URL": database_url})

    (status,) = [
        r for r in json.loads(runner.invoke(cli, ["status", "--json"]).output) if r["proposal_id"] == "dk-ua-2024"
    ]
    assert (status["status"], status["since"]) == ("signed", "2025-03-10T09:00:00+00:00")
    (change,) = json.loads(runner.invoke(cli, ["history", "dk-ua-2024", "--json"]).output)
    assert (change["happened_at"], change["observed_at"]) == ("2025-03-10T09:00:00+00:00", "2026-12-01T12:00:00+00:00")

    out = io.StringIO()
    run_digest(config, engine, clock, out=out)
    assert "signed" in out.getvalue() and "(on 2025-03-10)" in out.getvalue()


def test_migration_0005_backfills_from_the_earliest_evidence(
    base_config: Config, database_url: str, engine: Engine, server: FeedServer
) -> None:
    _backfill(base_config, database_url, engine, server)
    alembic = alembic_config(database_url)
    command.downgrade(alembic, "0004")
    assert "happened_at" not in {c["name"] for c in sa.inspect(engine).get_columns("status_change")}
    command.upgrade(alembic, "head")
    with engine.connect() as connection:
        happened = connection.execute(sa.text("SELECT happened_at, observed_at FROM status_change")).all()
        view = connection.execute(sa.text("SELECT DISTINCT happened_at FROM v_status_history")).all()
    assert [(str(h)[:16], str(o)[:16]) for h, o in happened] == [("2025-03-10 09:00", "2026-12-01 12:00")]
    assert [str(h)[:16] for (h,) in view] == ["2025-03-10 09:00"]

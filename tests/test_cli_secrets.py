"""The commands as cron and an operator run them (a subprocess, real environment): a refused token or an
unreachable Bot API is one line, never a traceback; no token or password reaches any output (issue 12)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session

from monitor.cli.options import now
from monitor.config import load_config
from monitor.feedserver import FeedServer, Response
from monitor.store import outbox
from monitor.store.schema import open_database

from .botapi import FakeBotAPI
from .conftest import TOKEN, rss, write_config
from .faults import closed_port_url

WRONG = "123456:WRONG-secret"
PASSWORD = "secretpw"
CHAT = 5151
SIGNED = (
    "dk1",
    "Denmark and Ukraine sign security agreement",
    "Danish Prime Minister Mette Frederiksen and President Zelensky signed a bilateral security agreement.",
)


def _setup(tmp_path: Path, server: FeedServer) -> tuple[Path, Path]:
    """A configuration with one official feed carrying a signing, and one instant subscriber."""
    server.serve("/gov.xml", Response(rss(SIGNED)))
    db = tmp_path / "m.db"
    gov = {"id": "gov", "name": "Gov", "tier": "official", "url": server.url("/gov.xml")}
    config = write_config(tmp_path / "feeds.yaml", f"sqlite:///{db}", [gov])
    loaded = load_config(config, env={"MONITOR_DATABASE_URL": f"sqlite:///{db}"})
    engine = open_database(f"sqlite:///{db}")
    with Session(engine) as session:
        row, _ = outbox.subscribe(CHAT, "private", "reader", now(), loaded.settings.digest, session=session)
        outbox.update_settings(row, now(), session=session, frequency="instant")
        session.commit()
    engine.dispose()
    return config, db


def _monitor(config: Path, db: Path | str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    url = db if isinstance(db, str) else f"sqlite:///{db}"
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("MONITOR_")}
    environment = {**inherited, "MONITOR_CONFIG": str(config), "MONITOR_DATABASE_URL": url, **env}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], env=environment, capture_output=True, text=True, timeout=120
    )


def _stored_text(db: Path) -> bytes:
    return b"".join(path.read_bytes() for path in db.parent.glob(db.name + "*") if path.is_file())


@pytest.mark.parametrize("command", [["digest"], ["run"], ["bot"]])
def test_cli_refused_token_is_one_line_exit_two_and_never_printed_or_stored(
    tmp_path: Path, server: FeedServer, fake: FakeBotAPI, command: list[str]
) -> None:
    config, db = _setup(tmp_path, server)
    result = _monitor(config, db, *command, MONITOR_TELEGRAM_TOKEN=WRONG, MONITOR_TELEGRAM_API_URL=fake.base_url)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "error: Telegram refused the bot token (MONITOR_TELEGRAM_TOKEN)" in result.stderr.splitlines()
    for output in (result.stdout, result.stderr, _stored_text(db).decode("latin-1")):
        assert WRONG not in output and "WRONG-secret" not in output


def test_cli_run_with_the_bot_api_unreachable_warns_and_sends_on_the_next_run(
    tmp_path: Path, server: FeedServer, fake: FakeBotAPI
) -> None:
    config, db = _setup(tmp_path, server)
    fake.add_chat(CHAT)
    down = _monitor(config, db, "run", MONITOR_TELEGRAM_TOKEN=TOKEN, MONITOR_TELEGRAM_API_URL=closed_port_url("/bot"))
    assert down.returncode == 0, down.stderr
    assert "Traceback" not in down.stderr
    warnings = [line for line in down.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "cannot reach the Telegram Bot API" in warnings[0], down.stderr
    assert fake.sent(CHAT) == []

    up = _monitor(config, db, "run", MONITOR_TELEGRAM_TOKEN=TOKEN, MONITOR_TELEGRAM_API_URL=fake.base_url)
    assert up.returncode == 0, up.stderr
    assert len(fake.sent(CHAT)) == 1 and "Denmark" in fake.sent(CHAT)[0].plain_text
    for output in (down.stdout, down.stderr, up.stdout, up.stderr, _stored_text(db).decode("latin-1")):
        assert TOKEN not in output and "RIGHT-token" not in output


@pytest.mark.parametrize("command", [["poll"], ["check"], ["db", "upgrade"], ["status"]])
def test_cli_database_password_is_masked_in_every_message(tmp_path: Path, command: list[str]) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("sources: []\n")
    result = _monitor(config, f"postgresql://u:{PASSWORD}@127.0.0.1:1/db", *command)
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert "u:***@127.0.0.1:1/db" in result.stdout + result.stderr

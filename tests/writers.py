"""Writers that run as their own processes beside a poll, each looping until a stop file appears, and printing
how many writes it made: what the bot does on /start and /frequency, and what an analyst's `set-status` does.

    python -m tests.writers bot|analyst DATABASE_URL STOP_FILE MINIMUM

Each write is its own transaction, through the same store functions the bot and the review commands call.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session

from monitor.config import load_config
from monitor.store import history, outbox, review
from monitor.store.db import create_db_engine

from .conftest import ROOT

BOT_CHATS = 1_000_000  # the bot-like writer's chat ids start here
ANALYST_PROPOSAL = "jp-ua-2024"
FREQUENCIES = ("instant", "hourly", "daily", "weekly")
PAUSE = 0.01  # between writes: a busy bot and a quick analyst, not a tight loop


def bot(url: str, stop: Path, minimum: int) -> int:
    """Subscribe a new chat, then change its frequency: two writes a round, as /start and /frequency do."""
    config = load_config(ROOT / "feeds.yaml", env={})
    engine = create_db_engine(url)
    writes = 0
    while writes < minimum or not stop.exists():
        chat = BOT_CHATS + writes // 2
        with Session(engine) as session:
            if writes % 2 == 0:
                outbox.subscribe(chat, "private", f"chat {chat}", datetime.now(UTC), config.settings.digest,
                                 session=session)  # fmt: skip
            else:
                row = outbox.subscriber(chat, session=session)
                assert row is not None
                frequency = FREQUENCIES[chat % len(FREQUENCIES)]
                outbox.update_settings(row, datetime.now(UTC), session=session, frequency=frequency)
            session.commit()
        writes += 1
        time.sleep(PAUSE)
    engine.dispose()
    return writes


def analyst(url: str, stop: Path, minimum: int) -> int:
    """Set a proposal's status back and forth, one decision a transaction."""
    ladder = load_config(ROOT / "feeds.yaml", env={}).settings.status.ladder
    engine = create_db_engine(url)
    writes = 0
    while writes < minimum or not stop.exists():
        with Session(engine) as session:
            current = history.proposal(ANALYST_PROPOSAL, session=session)
            assert current is not None
            target = ladder[0] if current.status != ladder[0] else ladder[1]
            review.set_status(ANALYST_PROPOSAL, target, f"decision {writes}", "ana", ladder, datetime.now(UTC),
                              session=session)  # fmt: skip
            session.commit()
        writes += 1
        time.sleep(PAUSE)
    engine.dispose()
    return writes


if __name__ == "__main__":
    role, url, stop, minimum = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    print({"bot": bot, "analyst": analyst}[role](url, stop, minimum))

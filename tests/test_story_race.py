"""Two workers storing the same link at once (one story, two feeds) both succeed and share one story row: the
second waits for the first's insert and reads its id back, rather than failing its feed on the unique key."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from monitor.store.items import story_ids

URL = "https://news.example/2026/12/06/coalition-meets"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_a_story_two_workers_create_at_once_is_one_row(engine: Engine) -> None:
    second: dict[str, int] = {}
    failures: list[BaseException] = []

    def other_worker() -> None:
        try:
            with Session(engine) as session:
                second.update(story_ids({URL}, NOW, session=session))
                session.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    with Session(engine) as session:
        first = story_ids({URL, "https://news.example/other"}, NOW, session=session)  # not committed yet
        thread = threading.Thread(target=other_worker)
        thread.start()
        time.sleep(0.5)  # the other worker is now waiting on this one's insert
        session.commit()
    thread.join(timeout=30)

    assert not failures, failures
    assert second == {URL: first[URL]}
    with engine.connect() as db:
        assert db.execute(sa.text("SELECT count(*) FROM story WHERE canonical_url = :u"), {"u": URL}).scalar() == 1

"""The bulk write path leaves exactly the rows the one-by-one path leaves: the same stories, items, versions,
matches, status changes, evidence and events, with the same ids, over the Reuters replay and a labelled set
of reports that match the proposals (new items, edits, corroboration across sources)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from monitor.config import Config, SourceConfig, load_config
from monitor.match import Matcher
from monitor.parse import parse_feed
from monitor.rematch import run_rematch
from monitor.status import Ladder, decide
from monitor.store import bulk, events, history, items, models, sources
from monitor.store.schema import open_database

from .conftest import EVAL, REPLAY, ROOT


def record_matches(
    items: Sequence[models.Item],
    matcher: Matcher,
    config: Config,
    now: datetime,
    *,
    session: Session,
    notify: bool = True,
) -> list[models.StatusChange]:
    """The one-by-one path `bulk.record_matches_bulk` must agree with: each report's match row, its event (with
    `notify`), its proposal's state read afresh and its decisions applied, one at a time."""
    ladder = Ladder(config.settings.status.ladder)
    policy = config.settings.status.corroboration
    tiers = {source.id: source.tier for source in config.sources}
    touched: list[models.StatusChange] = []
    found = [(item, matcher.match(item.title, item.summary, item.published_at)) for item in items]
    # Another worker may be deciding on the same proposals: lock their rows, always in the same order.
    history.lock_proposals({match.proposal for _item, matches in found for match in matches}, session=session)
    for item, matches in found:
        for match in matches:
            row = history.add_match(item, match, now, session=session)
            if row is None or row.id is None:
                continue
            observation = bulk.observe(match, item.source_id, tiers, item.published_at, row.id)
            if notify:
                events.report_event(row, item, now, session=session)
            state = history.proposal_state(match.proposal, ladder, session=session)
            decisions = decide(state, observation, ladder, policy)
            touched += history.apply_decisions(
                decisions, observation, row, item, ladder, now, session=session, notify=notify
            )
    return touched


TABLES = ("story", "item", "item_version", "item_match", "status_change", "evidence", "event", "proposal")


def _labelled_feed(edit: bool) -> bytes:
    """The labelled reports as one RSS feed; with `edit`, every third title changed."""
    items = []
    for index, line in enumerate((EVAL / "dev.jsonl").read_text(encoding="utf-8").splitlines()):
        data = json.loads(line)
        title = data["title"] + (" (updated)" if edit and index % 3 == 0 else "")
        published = _rfc822(data.get("published") or "")
        items.append(
            f"<item><title>{escape(title)}</title><description>{escape(data.get('summary') or '')}</description>"
            f"<link>{escape(data.get('link') or '')}</link><guid>{escape(data['id'])}</guid>"
            f"<pubDate>{published}</pubDate></item>"
        )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>L</title>{"".join(items)}</channel></rss>'.encode()


def _rfc822(value: str) -> str:
    try:
        return format_datetime(datetime.fromisoformat(value).astimezone(UTC), usegmt=True)
    except ValueError:
        return value  # already RFC 822, or a date feedparser will flag


def _timeline() -> list[tuple[datetime, str, bytes]]:
    start = datetime(2026, 3, 8, tzinfo=UTC)
    steps = [(start, "wire", _labelled_feed(False)), (start + timedelta(hours=1), "official", _labelled_feed(False))]
    steps.append((start + timedelta(hours=2), "wire", _labelled_feed(True)))
    for index, path in enumerate(sorted(REPLAY.glob("*.xml"))):
        steps.append((start + timedelta(hours=3 + index), "reuters", path.read_bytes()))
    return steps


def _config(base: Config) -> Config:
    sources = (
        SourceConfig(id="wire", name="Wire", url="https://wire.example/rss", tier="wire"),
        SourceConfig(id="official", name="Official", url="https://gov.example/rss", tier="official"),
        SourceConfig(id="reuters", name="Reuters", url="https://reuters.example/rss", tier="wire"),
    )
    return replace(base, sources=sources)


def _ingest(engine: Engine, config: Config, bulk_path: bool) -> None:
    matcher = Matcher(config.proposals, config.settings.status.ladder)
    timeline = _timeline()
    with Session(engine) as session:
        sources.sync_sources(config.sources, 1800, timeline[0][0], session=session)
        history.sync_proposals(config.proposals, session=session)
        session.commit()
    for when, source_id, body in timeline:
        parsed = parse_feed(body, {}, f"https://{source_id}.example/rss", when)
        with Session(engine) as session:
            if bulk_path:
                saved = bulk.save_items_bulk(source_id, parsed.items, when, session=session)
                matched = [(row, matcher.match(row.title, row.summary, row.published_at)) for row, _ in saved.changed]
                bulk.record_matches_bulk(matched, config, when, session=session)
            else:
                one_by_one = items.save_items(source_id, parsed.items, when, session=session)
                record_matches(one_by_one.changed, matcher, config, when, session=session)
            session.commit()


def _dump(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as connection:
        return {
            table: [tuple(row) for row in connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1"))]
            for table in TABLES
        }


def test_bulk_path_writes_the_same_rows_as_one_by_one(tmp_path: Path) -> None:
    config = _config(load_config(ROOT / "feeds.yaml", env={}))
    dumps = []
    for name, bulk_path in (("one", False), ("bulk", True)):
        engine = open_database(f"sqlite:///{tmp_path / name}.db")
        _ingest(engine, config, bulk_path)
        dumps.append(_dump(engine))
        engine.dispose()
    one, many = dumps
    assert len(one["item_match"]) > 100 and len(one["item_version"]) > 100
    assert len(one["evidence"]) > 20 and len(one["status_change"]) > 3
    for table in TABLES:
        assert many[table] == one[table], table


def _rebuild_one_by_one(config: Config, engine: Engine) -> None:
    """The rebuild as `run_rematch` did it before it used the bulk path: item by item, row by row."""
    matcher = Matcher(config.proposals, config.settings.status.ladder)
    with Session(engine) as session:
        history.clear_derived(session=session)
        history.reset_statuses(config.proposals, session=session)
        for item in history.items_in_order(0, 100_000, session=session):
            record_matches([item], matcher, config, item.first_seen_at, session=session, notify=False)
        history.recompute_statuses(config.proposals, config.settings.status.ladder, session=session)
        session.commit()


def test_rematch_rebuilds_what_a_rebuild_item_by_item_gives(tmp_path: Path) -> None:
    config = _config(load_config(ROOT / "feeds.yaml", env={}))
    dumps = []
    for name, rebuild in (("one", _rebuild_one_by_one), ("bulk", lambda c, e: run_rematch(c, e, batch=50))):
        engine = open_database(f"sqlite:///{tmp_path / name}.db")
        _ingest(engine, config, bulk_path=True)
        rebuild(config, engine)
        dumps.append(_dump(engine))
        engine.dispose()
    one, many = dumps
    assert len(one["item_match"]) > 50 and len(one["evidence"]) > 20 and len(one["status_change"]) > 3
    for table in TABLES:
        assert many[table] == one[table], table

"""One feed of 3,000 items that all match a proposal, polled once into a fresh SQLite file.

    python bench/bench_matching_feed.py [--items 3000]

Prints how long the poll took (fetch from 127.0.0.1, parse, store, match, history) and how many matches it stored.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import sqlalchemy as sa

from monitor.config import SourceConfig, load_config
from monitor.feedserver import FeedServer, Response
from monitor.pipeline import run_poll
from monitor.store.schema import open_database

ROOT = Path(__file__).resolve().parent.parent
TITLE = "Ukraine and {country} sign 10-year security agreement"
COUNTRIES = ("Germany", "France", "Italy", "Denmark", "Canada", "Netherlands", "Japan", "Finland", "Latvia", "Spain")


def feed(items: int, now: datetime) -> bytes:
    entries = []
    for index in range(items):
        when = format_datetime(now - timedelta(minutes=index), usegmt=True)
        title = TITLE.format(country=COUNTRIES[index % len(COUNTRIES)])
        entries.append(
            f"<item><title>{title} (report {index})</title><link>https://news.example/{index}</link>"
            f"<guid>report-{index}</guid><pubDate>{when}</pubDate>"
            f"<description>Kyiv and {COUNTRIES[index % len(COUNTRIES)]} signed the bilateral security agreement "
            "on Friday, the leaders said.</description></item>"
        )
    channel = f"<channel><title>Big</title>{''.join(entries)}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=3000)
    args = parser.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder, FeedServer() as server:
        server.serve("/big.xml", Response(feed(args.items, now)))
        base = load_config(ROOT / "feeds.yaml", env={})
        config = replace(base, sources=(SourceConfig(id="big", name="Big", url=server.url("/big.xml")),))
        engine = open_database(f"sqlite:///{folder}/bench.db")
        started = time.perf_counter()
        summary = run_poll(config, engine, lambda: now, force=True)
        elapsed = time.perf_counter() - started
        with engine.connect() as connection:
            matches = connection.execute(sa.text("SELECT count(*) FROM item_match")).scalar_one()
        print(f"{summary.items_new} items, {matches} matches stored in {elapsed:.2f} s")


if __name__ == "__main__":
    main()

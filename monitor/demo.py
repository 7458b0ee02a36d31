"""`monitor demo`: the whole pipeline on bundled sample feeds served on 127.0.0.1, into a local SQLite file.

Offline by construction: the sources are rewritten to point at a `FeedServer` on loopback.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy.engine import Engine

from monitor.clock import Clock
from monitor.config import Config, SourceConfig
from monitor.feedserver import FeedServer, Response
from monitor.outcomes import PollSummary
from monitor.pipeline import run_poll
from monitor.store.locks import run_lock
from monitor.store.schema import open_database

SAMPLES = Path(__file__).resolve().parent / "samples"
DEMO_PORT = 47171  # a stable address keeps the sources' URLs, and so their conditional GETs, across demo runs


@dataclass(frozen=True)
class Sample:
    file: str
    source: SourceConfig


DEMO_SOURCES = (
    Sample(
        "reuters-2026-03-01.xml",
        SourceConfig(id="demo-reuters", name="Reuters (sample, 1 Mar 2026)", url="http://placeholder/", tier="wire"),
    ),
    Sample(
        "reuters-direct-2026-07-11.xml",
        SourceConfig(
            id="demo-reuters-direct",
            name="Reuters Direct (sample, 11 Jul 2026)",
            url="http://placeholder/",
            tier="wire",
        ),
    ),
    Sample(
        "kyivindependent-2024-07-26.xml",
        SourceConfig(
            id="demo-kyiv-independent",
            name="The Kyiv Independent (sample, 26 Jul 2024)",
            url="http://placeholder/",
        ),
    ),
    Sample(
        "guardian-international-2025-04-01.xml",
        SourceConfig(
            id="demo-guardian",
            name="The Guardian International (sample, 1 Apr 2025)",
            url="http://placeholder/",
        ),
    ),
    Sample(
        "seed-report.xml",
        SourceConfig(id="demo-seed-report", name="The Gaze: the seed report (sample)", url="http://placeholder/"),
    ),
)


def demo_config(base: Config, server: FeedServer, database_url: str) -> Config:
    """The configured proposals and settings, with the sample sources served by `server`."""
    sources = []
    for sample in DEMO_SOURCES:
        url = server.serve(f"/{sample.file}", Response.from_file(SAMPLES / sample.file))
        sources.append(sample.source.model_copy(update={"url": url}))
    settings = base.settings.model_copy(update={"database_url": database_url})
    return replace(base, settings=settings, sources=tuple(sources), telegram_token=None)


def run_demo(base: Config, database_url: str, clock: Clock) -> tuple[Config, Engine, PollSummary]:
    """Serve the samples, poll them all (forced, so a second demo run shows 304s) and return what happened."""
    engine = open_database(database_url)
    try:
        server = FeedServer(port=DEMO_PORT)
    except OSError:
        server = FeedServer()
    with server:
        config = demo_config(base, server, database_url)
        with run_lock(database_url):
            summary = run_poll(config, engine, clock, force=True)
    return config, engine, summary

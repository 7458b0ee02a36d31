"""feedparser's own test corpus (about 2,100 well- and ill-formed feeds), served over HTTP and polled.

Every file is served by one real `FeedServer`, with the HTTP headers its comment header asks for (`Header:`
lines: Content-type with charsets, Content-Location, Content-Language...), and polled by `run_poll` into one
migrated SQLite file, a few hundred feeds per run. Each answer goes out in one write (`OneWrite`), which keeps
2,100 requests to a few seconds. The oracle for "malformed" is feedparser itself, run on the
same bytes and headers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import feedparser
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from monitor.config import load_config
from monitor.feedserver import FeedServer, Response
from monitor.outcomes import PollSummary
from monitor.pipeline import run_poll
from monitor.store import models
from monitor.store.schema import open_database
from tests.conftest import FEEDPARSER_CORPUS, ROOT, FakeClock, make_config
from tests.faults import OneWrite

BATCH = 700
DEFAULT_TYPE = "application/xml"  # no charset: the document's own encoding declaration decides
_HEADER = re.compile(rb"^Header:[ \t]*([^:\s][^:\r\n]*):[ \t]*(.*?)[ \t]*\r?$", re.MULTILINE)
_DESCRIPTION = re.compile(rb"^Description:[ \t]*(.*?)[ \t]*\r?$", re.MULTILINE)


@dataclass(frozen=True)
class CorpusFeed:
    source_id: str
    path: Path
    route: str
    response: Response
    description: str

    @property
    def label(self) -> str:
        return f"{self.path.relative_to(FEEDPARSER_CORPUS)} ({self.description or 'no description'})"


@dataclass
class CorpusRun:
    feeds: dict[str, CorpusFeed]
    summaries: list[PollSummary]
    escaped: list[str]
    engine: Engine
    base_url: str


def corpus_feeds() -> list[CorpusFeed]:
    paths = sorted(path for path in FEEDPARSER_CORPUS.rglob("*") if path.is_file())
    return [_corpus_feed(index, path) for index, path in enumerate(paths)]


def _corpus_feed(index: int, path: Path) -> CorpusFeed:
    body = path.read_bytes()
    content_type = DEFAULT_TYPE
    headers: dict[str, str] = {}
    for name, value in _HEADER.findall(body):
        name_text, value_text = name.decode("latin-1").strip(), value.decode("latin-1")
        if not value_text:
            continue  # a blank header line means "send no such header"
        if name_text.lower() == "content-type":
            content_type = value_text  # one Content-Type header, not two differently spelt
        else:
            headers[name_text] = value_text
    description = _DESCRIPTION.search(body)
    return CorpusFeed(
        source_id=f"fp{index:04d}",
        path=path,
        route=f"/corpus/{index:04d}",
        response=Response(body, content_type, headers=headers),
        description=description.group(1).decode("utf-8", "replace") if description else "",
    )


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorpusRun]:
    feeds = {feed.source_id: feed for feed in corpus_feeds()}
    database_url = f"sqlite:///{tmp_path_factory.mktemp('corpus') / 'monitor.db'}"
    engine = open_database(database_url)
    clock = FakeClock()
    summaries: list[PollSummary] = []
    escaped: list[str] = []
    try:
        with FeedServer() as server:
            sources = {feed.source_id: server.serve(feed.route, OneWrite(feed.response)) for feed in feeds.values()}
            config = make_config(
                load_config(ROOT / "feeds.yaml", env={}),
                database_url,
                sources,
                concurrency=4,
                per_host=4,
                read_timeout=10,
                total_timeout=20,
            )
            ids = list(feeds)
            for start in range(0, len(ids), BATCH):
                batch = ids[start : start + BATCH]
                try:
                    summaries.append(run_poll(config, engine, clock, only=batch))
                except Exception as exc:  # recorded, and asserted on below
                    escaped.append(f"batch {batch[0]}..{batch[-1]}: {type(exc).__name__}: {exc}")
            yield CorpusRun(feeds, summaries, escaped, engine, server.base_url)
    finally:
        engine.dispose()


def _polls(run: CorpusRun) -> dict[str, models.FeedPoll]:
    with Session(run.engine) as session:
        return {poll.source_id: poll for poll in session.exec(select(models.FeedPoll))}


def _oracle(feed: CorpusFeed, base_url: str) -> feedparser.FeedParserDict:
    """What feedparser makes of the same bytes under the same headers the poller received."""
    headers = {name.lower(): value for name, value in feed.response.headers.items()}
    headers["content-type"] = feed.response.content_type
    headers.setdefault("content-location", base_url + feed.route)
    return feedparser.parse(feed.response.body, response_headers=headers, sanitize_html=True)


def _message(exc: Exception) -> str:
    """The core of feedparser's message (a SAX error's text without its position)."""
    get_message = getattr(exc, "getMessage", None)
    text = str(get_message() if callable(get_message) else exc)
    return text.splitlines()[0] if text else type(exc).__name__


def test_corpus_is_complete() -> None:
    feeds = {feed.path.relative_to(FEEDPARSER_CORPUS).as_posix(): feed for feed in corpus_feeds()}
    assert len(feeds) > 2000
    assert sum(1 for name in feeds if name.rsplit("/", 1)[-1].startswith("http_")) > 100
    charset = feeds["encoding/http_text_xml_charset.xml"].response
    assert charset.content_type == 'text/xml;charset= "us-ascii"'
    assert feeds["wellformed/http/headers_foo.xml"].response.headers == {"X-Foo": "bar"}
    assert feeds["wellformed/http/headers_last_modified-blank.xml"].response.headers == {}
    assert feeds["wellformed/rss/channel_title.xml"].response.content_type == DEFAULT_TYPE


def test_corpus_run_no_exception_escapes(corpus_run: CorpusRun) -> None:
    assert corpus_run.escaped == []
    assert sum(summary.feeds_due for summary in corpus_run.summaries) == len(corpus_run.feeds)


def test_corpus_run_no_feed_waits_for_a_deadline(corpus_run: CorpusRun) -> None:
    """No fetch came near its read timeout (10 s): nothing hung, the server answered every file at once."""
    slowest = max(_polls(corpus_run).values(), key=lambda poll: poll.duration_ms)
    assert slowest.duration_ms < 5000, corpus_run.feeds[slowest.source_id].label


def test_corpus_run_every_source_has_one_feed_poll(corpus_run: CorpusRun) -> None:
    with Session(corpus_run.engine) as session:
        rows = session.exec(select(models.FeedPoll.source_id, sa.func.count()).group_by(models.FeedPoll.source_id))
        counts = dict(rows.all())
    missing = sorted(corpus_run.feeds[source_id].label for source_id in set(corpus_run.feeds) - set(counts))
    assert missing == []
    assert set(counts.values()) == {1}


def test_corpus_run_outcome_is_ok_or_failed(corpus_run: CorpusRun) -> None:
    outcomes = {poll.outcome for poll in _polls(corpus_run).values()}
    assert outcomes <= {"ok", "failed"}
    assert "ok" in outcomes and "failed" in outcomes


def test_corpus_run_failures_carry_a_one_line_error(corpus_run: CorpusRun) -> None:
    for source_id, poll in _polls(corpus_run).items():
        if poll.outcome == "failed":
            label = corpus_run.feeds[source_id].label
            assert poll.error and poll.error.strip(), label
            assert "\n" not in poll.error and "\r" not in poll.error, label
            assert poll.items_new == poll.items_seen == 0, label


def test_corpus_run_no_fetch_fault(corpus_run: CorpusRun) -> None:
    """Every file was served in full: a failure is always the parser's verdict, never the network's."""
    faults = {
        corpus_run.feeds[source_id].label: poll.error
        for source_id, poll in _polls(corpus_run).items()
        if poll.outcome == "failed" and not (poll.error or "").startswith(("ParseError", "NotAFeed"))
    }
    assert faults == {}
    assert {poll.status_code for poll in _polls(corpus_run).values()} == {200}


def test_corpus_run_malformed_feeds_are_feed_errors(corpus_run: CorpusRun) -> None:
    """Where feedparser reports bozo and finds no entries, the poll failed with feedparser's message."""
    polls = _polls(corpus_run)
    malformed = 0
    for source_id, feed in corpus_run.feeds.items():
        parsed = _oracle(feed, corpus_run.base_url)
        poll = polls[source_id]
        if parsed.bozo and not parsed.entries:
            malformed += 1
            assert poll.outcome == "failed", feed.label
            assert _message(parsed.bozo_exception) in (poll.error or ""), feed.label
        elif parsed.entries:
            assert poll.outcome == "ok", f"{feed.label}: {poll.error}"
            assert 0 < poll.items_seen <= len(parsed.entries), feed.label
    assert malformed > 20


def test_corpus_run_stored_items_match_ok_feed_counts(corpus_run: CorpusRun) -> None:
    polls = _polls(corpus_run)
    with Session(corpus_run.engine) as session:
        stored = session.exec(select(models.Item.source_id, sa.func.count()).group_by(models.Item.source_id))
        by_source = dict(stored.all())
        total = session.exec(select(sa.func.count()).select_from(models.Item)).one()
        runs = list(session.exec(select(models.PollRun)))
    ok = {source_id: poll for source_id, poll in polls.items() if poll.outcome == "ok"}
    assert total == sum(poll.items_new for poll in ok.values()) > 1000
    assert set(by_source) <= set(ok)
    assert all(by_source.get(source_id, 0) == poll.items_seen == poll.items_new for source_id, poll in ok.items())
    assert sum(run.items_new for run in runs) == total
    assert sum(run.feeds_ok + run.feeds_failed for run in runs) == len(corpus_run.feeds)
    assert all(run.finished_at is not None for run in runs)


def test_corpus_run_served_headers_reach_the_parser(corpus_run: CorpusRun) -> None:
    """The `Header:` lines were served and decided the outcome, as each file's `Expect:` says."""
    by_name = {feed.path.relative_to(FEEDPARSER_CORPUS).as_posix(): feed for feed in corpus_run.feeds.values()}
    polls = _polls(corpus_run)

    def poll_of(name: str) -> models.FeedPoll:
        return polls[by_name[name].source_id]

    # Content-type: text/plain makes the document bozo (and, with no entries, a feed error).
    assert "text/plain is not an XML media type" in (poll_of("encoding/bozo_http_text_plain.xml").error or "")
    # text/xml without a charset means us-ascii, which overrides the declared utf-8.
    assert "declared as us-ascii, but parsed as utf-8" in (poll_of("encoding/bozo_http_i18n.xml").error or "")
    # The same bytes served as application/xml (no charset) are fine.
    assert poll_of("encoding/http_i18n.xml").outcome == "ok"
    with Session(corpus_run.engine) as session:
        # charset=windows-1252 wins over the document's iso-8859-1 declaration: curly quotes, not C1 controls.
        for name in ("encoding/http_text_xml_charset_2.xml", "encoding/http_text_xml_charset_overrides_encoding_2.xml"):
            poll = poll_of(name)
            assert (poll.outcome, poll.items_new) == ("ok", 1), name
            item = session.exec(select(models.Item).where(models.Item.source_id == poll.source_id)).one()
            assert item.summary == "This is a \xa3\u201ctest.\u201d", name
        # A relative Content-Location is resolved against the feed's URL; a javascript: one is ignored.
        for name, link in (
            ("headers_content_location-relative.xml", "/feed/absolute"),
            ("headers_content_location-unsafe.xml", "/abs"),
        ):
            source = session.get(models.Source, by_name[f"wellformed/http/{name}"].source_id)
            assert source is not None
            assert source.feed_link == corpus_run.base_url + link, name

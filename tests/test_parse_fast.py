"""The fast parser (feedparser-rs) against the reference (feedparser), over every feed of the shared corpora.

For each feed the fast path takes, `parse_feed` must give exactly what it gives with feedparser alone: the same
items (every field), feed title, link, TTL, duplicates and warning, or the same error. Feeds the fast path
sends back to feedparser are counted and reported; that count cannot hide a difference, since those feeds
are then read by feedparser itself.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor import parse_fast
from monitor.parse import ParsedFeed, parse_feed
from tests.conftest import ROOT, SHARED
from tests.test_feedparser_corpus import corpus_feeds

REAL = SHARED / "corpus" / "real"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
URL = "http://127.0.0.1:8080/feed.xml"


def _cases() -> list[tuple[str, bytes, dict[str, str]]]:
    cases = [
        (str(path.relative_to(SHARED)), path.read_bytes(), {"content-type": "application/rss+xml"})
        for path in sorted(REAL.rglob("*.xml"))
    ]
    for feed in corpus_feeds():
        headers = {name.lower(): value for name, value in feed.response.headers.items()}
        headers["content-type"] = feed.response.content_type
        cases.append((str(feed.path.relative_to(SHARED)), feed.response.body, headers))
    return cases


def _outcome(body: bytes, headers: dict[str, str], *, fast: bool) -> ParsedFeed | str:
    try:
        return parse_feed(body, headers, URL, NOW, fast=fast)
    except Exception as exc:  # noqa: BLE001 - the error itself is what is compared
        return f"{type(exc).__name__}: {exc}"


def test_parse_fast_gives_feedparsers_items_on_every_corpus_feed() -> None:
    assert parse_fast.available(), "feedparser-rs is a dependency: install the project again"
    taken: Counter[str] = Counter()
    differences = []
    cases = _cases()
    assert len(cases) > 2_000
    for name, body, headers in cases:
        fast = _outcome(body, headers, fast=True)
        if not isinstance(fast, ParsedFeed) or fast.parser != "feedparser-rs":
            taken["feedparser" if isinstance(fast, ParsedFeed) else "error"] += 1
            continue
        taken["feedparser-rs (" + ("real" if name.startswith("corpus/real") else "feedparser corpus") + ")"] += 1
        reference = _outcome(body, headers, fast=False)
        if fast != reference:
            differences.append(name)
    print(f"\nfast path over {len(cases)} corpus feeds: {dict(taken)}")
    assert differences == []
    # The Reuters snapshots (plain RSS 2.0) all take the fast path; a change that sends them back to
    # feedparser is a slowdown this test reports.
    assert taken["feedparser-rs (real)"] >= 17
    assert taken["feedparser-rs (feedparser corpus)"] >= 150


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b"<rss version='2.0'><channel><item><title>a</title><dc:creator>x</dc:creator></item></channel></rss>",
            "an element outside the agreed vocabulary",
        ),
        (
            b"<rss version='2.0'><channel><item><title>a</title><link>/news/1</link></item></channel></rss>",
            "a relative link",
        ),
        (
            b"<rss version='2.0'><channel><item><title>don&#146;t</title></item></channel></rss>",
            "a reference to a C1 control",
        ),
        (
            b"<rss version='2.0'><channel><item><title>a &lt;script&gt;x()&lt;/script&gt;</title></item>"
            b"</channel></rss>",
            "script text",
        ),
        (b"<rss version='2.0'><channel><item><title>a</title></item></channel>", "a truncated document"),
        (b"<rss version='2.0'><channel><item><title>a&nbsp;b</title></item></channel></rss>", "an undefined entity"),
        (
            b'<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel><item><title>a</title>'
            b"</item></channel></rss>",
            "another declared encoding",
        ),
        (b"http://127.0.0.1:9/feed.xml", "not a document (never a URL to fetch)"),
    ],
)
def test_read_fast_leaves_to_feedparser(body: bytes, reason: str) -> None:
    assert parse_fast.read_fast(body, {"content-type": "application/rss+xml"}) is None, reason


def test_read_fast_takes_a_plain_feed() -> None:
    body = (
        "<rss version='2.0'><channel><item><title>a\xa0b &amp;amp; c</title><link>https://e.org/1?utm_source=x</link>"
    )
    body += "<pubDate>Sat, 28 Feb 2026 10:29:16 +0000</pubDate></item></channel></rss>"

    fast = parse_feed(body.encode(), {"content-type": "application/rss+xml"}, URL, NOW)

    assert fast.parser == "feedparser-rs"
    assert fast == parse_feed(body.encode(), {"content-type": "application/rss+xml"}, URL, NOW, fast=False)
    assert (fast.items[0].title, fast.items[0].canonical_url) == ("a b & c", "https://e.org/1")


@pytest.mark.parametrize(
    ("title", "summary", "sanitised"),
    [
        ("S&amp;P 500 &gt; 4,000", "R&amp;D at AT&amp;T &amp;amp; more", False),
        (
            "&amp;copy 2026 &amp;notit; &amp;amp;lt;b&amp;amp;gt;",
            "a &amp;lt;b&amp;gt;bold&amp;lt;/b&amp;gt; word",
            False,
        ),
        ("Kyiv &#8211; &quot;talks&quot; it&apos;s &#x26;", "&amp;#169; &amp;amp;amp;amp;", False),
        ("plain", "<![CDATA[<p>Allies <b>weigh</b> &amp; a <a href='https://e.org/x'>guarantee</a></p>]]>", True),
        ("<![CDATA[2 < 3 & 4 > 1]]>", "<![CDATA[<img src='https://e.org/i.png'> text & more]]>", True),
    ],
)
def test_read_fast_sanitises_only_a_feed_whose_text_holds_markup(title: str, summary: str, sanitised: bool) -> None:
    # Sanitising is half of feedparser-rs's parse; where no text the poll reads holds a tag, it is skipped and the
    # items are still exactly feedparser's (escaped ampersands, named references without their semicolon,
    # references escaped twice).
    body = (
        f"<rss version='2.0'><channel><title>T</title><item><guid>https://e.org/g1</guid><title>{title}</title>"
        f"<description>{summary}</description></item></channel></rss>"
    ).encode()
    headers = {"content-type": "application/rss+xml"}
    module = parse_fast._parser()
    assert module is not None
    limits = module.ParserLimits(max_feed_size_bytes=len(body) + 1, max_entries=10)
    plain = module.parse_with_limits(body, limits=limits, sanitize_html=False, resolve_relative_uris=False)
    assert parse_fast._holds_markup(plain) is sanitised
    fast = parse_feed(body, headers, URL, NOW)
    assert fast.parser == "feedparser-rs"
    assert fast == parse_feed(body, headers, URL, NOW, fast=False)


def test_parse_feed_without_feedparser_rs_uses_feedparser() -> None:
    script = (
        "import sys; sys.modules['feedparser_rs'] = None\n"  # as if it were not installed
        "from datetime import UTC, datetime\n"
        "from monitor import parse_fast\n"
        "from monitor.parse import parse_feed\n"
        "body = b\"<rss version='2.0'><channel><item><title>a</title></item></channel></rss>\"\n"
        "feed = parse_feed(body, {}, 'http://127.0.0.1/f', datetime.now(UTC))\n"
        "print(parse_fast.available(), feed.parser, feed.items[0].title)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(ROOT), capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["False", "feedparser", "a"]


def test_read_fast_reads_a_feed_within_a_memory_ceiling() -> None:
    # feedparser-rs reserves room for its entry limit up front: a limit of a million entries asked for 1.8 GB of
    # address space, and a process with a ceiling below that (ulimit -v) was aborted, not just the feed
    script = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))\n"
        "from monitor.parse_fast import read_fast\n"
        "body = open('monitor/samples/reuters-2026-03-01.xml', 'rb').read()\n"
        "fast = read_fast(body, {'content-type': 'application/rss+xml; charset=utf-8'})\n"
        "print(len(fast['entries']) if fast else None)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(ROOT), capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "76"), done.stderr[-300:]


_DATE_ELEMENT = re.compile(rb"<(pubDate|published|updated|dc:date|lastBuildDate|modified|issued)>([^<]{1,80})</\1>")
ODD_DATES = [
    "Sat, 28 Feb 2026 20:37:13 +0000",
    "Sat, 28 Feb 2026 20:37:13 GMT",
    "Sat, 28 Feb 2026 20:37:13 UT",
    "Sat, 28 Feb 2026 20:37:13 UTC",
    "Sun, 1 Mar 2026 00:07:00 -0530",
    "Sun, 1 Mar 2026 23:59:59 +1400",
    "Mon, 31 Feb 2026 10:00:00 +0000",  # no such day
    "Mon, 29 Feb 2024 10:00:00 -0000",
    "Tue, 01 Jan 0001 00:30:00 +0100",  # before the calendar once moved to UTC
    "Fri, 31 Dec 9999 23:30:00 -0100",  # after it
    "Fri, 31 Dec 2027 24:00:00 +0000",
    "Fri, 31 Dec 2027 23:60:00 +0000",
    "Fri, 31 Dec 2027 23:59:61 +0000",
    "Fri, 31 Dec 2027 23:59:59 +9999",
    "Foo, 28 Feb 2026 20:37:13 +0000",
    "sat, 28 feb 2026 20:37:13 +0000",
    "Sat, 28 Feb 26 20:37:13 +0000",
    "Sat,  28 Feb 2026 20:37:13 +0000",
    "Sat, 28 Feb 2026 20:37 +0000",
    "Sat, 28 Feb 2026 20:37:13 EST",
    "Sat, 28 Feb 2026 20:37:13 +05:30",
    "2026-02-28T20:37:13Z",
    "",
]


def test_read_date_reads_every_corpus_date_as_feedparser_does() -> None:
    """The RFC 822 dates read without feedparser's date parser are read as it reads them, and anything else goes
    to it: over every date in the shared corpora and dates at the edges of the form and the calendar."""
    from feedparser.datetimes import _parse_date

    dates = set(ODD_DATES)
    for _name, body, _headers in _cases():
        dates.update(match.group(2).decode("utf-8", "replace").strip() for match in _DATE_ELEMENT.finditer(body))
    assert len(dates) > 2_000
    differing = [date for date in sorted(dates) if parse_fast.read_date(date) != _parse_date(date)]
    assert differing == []
    assert sum(bool(parse_fast._RFC822.fullmatch(date)) for date in dates) > 1_000  # the form feeds use

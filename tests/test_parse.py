"""monitor/parse.py: feed bytes -> normalised items (pure: no network, database or clock)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.errors import NotAFeed, ParseError
from monitor.parse import ParsedFeed, canonical_url, clean_text, parse_feed

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
URL = "https://example.com/feed.xml"
RSS = {"content-type": "application/rss+xml; charset=utf-8"}


def rss(items: str, channel: str = "<link>https://example.com/</link>") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Example news</title>'
        f"{channel}{items}</channel></rss>"
    ).encode()


def item(
    title: str = "A story",
    *,
    guid: str | None = None,
    link: str | None = None,
    description: str | None = None,
    date: str | None = None,
) -> str:
    parts = [f"<title>{title}</title>"]
    if guid is not None:
        parts.append(f'<guid isPermaLink="false">{guid}</guid>')
    if link is not None:
        parts.append(f"<link>{link}</link>")
    if description is not None:
        parts.append(f"<description><![CDATA[{description}]]></description>")
    if date is not None:
        parts.append(f"<pubDate>{date}</pubDate>")
    return "<item>" + "".join(parts) + "</item>"


def parse(content: bytes, headers: dict[str, str] | None = None, url: str = URL) -> ParsedFeed:
    return parse_feed(content, RSS if headers is None else headers, url, NOW)


# --- text ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>Allies <b>agree</b> on guarantees</p>", "Allies agree on guarantees"),
        ("Tom &amp; Jerry &#8212; &quot;quoted&quot;", 'Tom & Jerry \u2014 "quoted"'),
        ("first line<br/>second line", "first line second line"),
        ("  lots \n\t of   space\u00a0here ", "lots of space here"),
        ('<a href="https://example.com/x">link text</a> after', "link text after"),
        ("<!-- a comment -->Visible", "Visible"),
        ("&lt;p&gt;Escaped twice&lt;/p&gt;", "Escaped twice"),  # double-escaped HTML, common in feeds
        ("&amp;lt;b&amp;gt;three times&amp;lt;/b&amp;gt;", "three times"),
        ("AT&T and 3 < 4", "AT&T and 3 < 4"),
        ("", ""),
        (None, ""),
    ],
)
def test_clean_text_gives_plain_text(html: str | None, text: str) -> None:
    assert clean_text(html) == text


def test_parse_feed_title_and_summary_are_plain_text() -> None:
    feed = parse(
        rss(
            item(
                "Kyiv &amp; allies",
                guid="1",
                description="<p>Talks <script>track()</script>on <em>security</em>&nbsp;guarantees</p>",
            )
        )
    )

    assert feed.items[0].title == "Kyiv & allies"
    assert feed.items[0].summary == "Talks on security guarantees"
    assert feed.title == "Example news"


def test_parse_feed_untitled_item_takes_its_summary_as_title() -> None:
    feed = parse(rss("<item><description>Only a summary here</description><guid>1</guid></item>"))

    assert feed.items[0].title == "Only a summary here"


# --- links -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://example.com/a?utm_source=rss&utm_medium=feed&id=3#comments", "https://example.com/a?id=3"),
        ("https://example.com/a?utm_reader=feedly&utm_pubreferrer=x", "https://example.com/a"),
        ("https://example.com/a?fbclid=abc&gclid=def", "https://example.com/a"),
        ("http://Example.COM/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
        ("  https://example.com/news/1  ", "https://example.com/news/1"),
        ("https://example.com", "https://example.com/"),
        ("ftp://example.com/file", None),
        ("/relative/path", None),
        ("javascript:alert(1)", None),
        ("", None),
        (None, None),
    ],
)
def test_canonical_url_drops_tracking_and_fragment(url: str | None, canonical: str | None) -> None:
    assert canonical_url(url) == canonical


def test_parse_feed_relative_link_resolves_against_the_feed_url() -> None:
    feed = parse(rss(item(link="/news/1?utm_source=rss")), url="https://example.com/rss/all.xml")

    assert feed.items[0].link == "https://example.com/news/1?utm_source=rss"
    assert feed.items[0].canonical_url == "https://example.com/news/1"


@pytest.mark.parametrize(
    ("content_location", "expected"),
    [
        ("https://mirror.example.org/feeds/x.xml", "https://mirror.example.org/news/1"),
        ("/other/feed.xml", "https://example.com/news/1"),  # relative: resolved against the request URL
        ("javascript:alert(1)", "https://example.com/news/1"),  # not http(s): ignored
    ],
)
def test_parse_feed_content_location_is_the_base_for_relative_links(content_location: str, expected: str) -> None:
    headers = {**RSS, "Content-Location": content_location}

    feed = parse(rss(item(link="/news/1")), headers=headers)

    assert feed.items[0].link == expected


# --- identity --------------------------------------------------------------------------------------------
def test_parse_feed_identity_is_guid_then_link_then_hash() -> None:
    feed = parse(
        rss(
            item("By guid", guid="urn:story:1", link="https://example.com/1")
            + item("By link", link="https://example.com/2?utm_campaign=x#top")
            + item("By hash", description="No guid, no link")
        )
    )

    keys = [entry.key for entry in feed.items]
    assert keys[0] == "guid:urn:story:1"
    assert keys[1] == "link:https://example.com/2"
    assert re.fullmatch(r"hash:[0-9a-f]{32}", keys[2])
    assert feed.items[0].guid == "urn:story:1" and feed.items[1].guid is None


def test_parse_feed_duplicate_guids_are_kept_once() -> None:
    feed = parse(rss(item("First", guid="same") + item("Other", guid="other") + item("First again", guid="same")))

    assert [(entry.key, entry.title) for entry in feed.items] == [("guid:same", "First"), ("guid:other", "Other")]
    assert feed.duplicates == 1


def test_parse_feed_links_differing_only_by_tracking_are_one_item() -> None:
    feed = parse(rss(item("A", link="https://example.com/x?utm_source=a") + item("A", link="https://example.com/x#c")))

    assert len(feed.items) == 1 and feed.duplicates == 1


def test_parse_feed_items_linking_to_the_homepage_do_not_collapse() -> None:
    items = "".join(
        item(f"Story {n}", link=link, description=f"Summary {n}")
        for n, link in enumerate(["https://example.com/", "http://example.com", "https://example.com/?utm_source=rss"])
    )

    feed = parse(rss(items))

    assert [entry.title for entry in feed.items] == ["Story 0", "Story 1", "Story 2"]
    assert all(entry.key.startswith("hash:") for entry in feed.items)
    assert all(entry.canonical_url is None for entry in feed.items)  # the homepage is no story's URL
    assert feed.duplicates == 0


def test_parse_feed_identical_items_without_guid_or_link_are_one_item() -> None:
    feed = parse(rss(item("Same", description="Same text") + item("Same", description="Same text")))

    assert len(feed.items) == 1 and feed.duplicates == 1


def test_parse_feed_edited_item_keeps_its_key_and_changes_its_hash() -> None:
    before = parse(rss(item("Draft title", guid="g1", link="https://example.com/1")))
    after = parse(rss(item("Final title", guid="g1", link="https://example.com/1")))

    assert before.items[0].key == after.items[0].key
    assert before.items[0].content_hash != after.items[0].content_hash


def test_parse_feed_very_long_guid_gets_a_bounded_key() -> None:
    feed = parse(rss(item(guid="x" * 2000)))

    assert feed.items[0].key.startswith("guid:sha256:") and len(feed.items[0].key) <= 500


# --- dates -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("date", "published"),
    [
        ("Mon, 03 Mar 2025 10:00:00 +0100", datetime(2025, 3, 3, 9, 0, tzinfo=UTC)),
        ("Mon, 03 Mar 2025 10:00:00 GMT", datetime(2025, 3, 3, 10, 0, tzinfo=UTC)),
        ("Mon, 03 Mar 2025 10:00:00 EST", datetime(2025, 3, 3, 15, 0, tzinfo=UTC)),
        ("2025-03-03T10:00:00+02:00", datetime(2025, 3, 3, 8, 0, tzinfo=UTC)),
        ("Sun, 01 Mar 2026 23:00:00 +0000", datetime(2026, 3, 1, 23, 0, tzinfo=UTC)),  # within a day ahead
    ],
)
def test_parse_feed_published_is_utc(date: str, published: datetime) -> None:
    entry = parse(rss(item(guid="1", date=date))).items[0]

    assert entry.published == published
    assert entry.published is not None and entry.published.utcoffset() == timedelta(0)
    assert entry.published_flag is None


@pytest.mark.parametrize(
    ("date", "flag"),
    [
        (None, "missing"),
        ("Thu, 01 Jan 1970 00:00:00 GMT", "too-old"),  # an epoch default
        ("Mon, 01 Jan 0001 00:00:00 -1200", "too-old"),
        ("Fri, 01 Jan 2100 00:00:00 GMT", "future"),
        ("Tue, 03 Mar 2026 12:00:00 +0000", "future"),  # two days ahead of now
        ("Fri, 31 Dec 9999 23:59:59 +0000", "future"),
        ("lun, 03 mar 2025 10:00:00 +0100", "unparseable"),  # Italian
        ("sab, 03 mag 2025 08:00:00 +0200", "unparseable"),
        ("lun., 03 mars 2025 10:00:00 +0100", "unparseable"),  # French
        ("mer, 05 févr 2025 10:00:00 +0100", "unparseable"),
        ("yesterday", "unparseable"),
    ],
)
def test_parse_feed_bad_date_gives_none_with_a_flag(date: str | None, flag: str) -> None:
    entry = parse(rss(item(guid="1", date=date))).items[0]

    assert (entry.published, entry.published_flag) == (None, flag)


def test_parse_feed_unparseable_published_falls_back_to_updated() -> None:
    atom = (
        b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>'
        b"<entry><id>urn:1</id><title>x</title><published>lun, 03 mar 2025</published>"
        b"<updated>2025-03-03T10:00:00Z</updated></entry></feed>"
    )

    entry = parse(atom, headers={"content-type": "application/atom+xml"}).items[0]

    assert (entry.published, entry.published_flag) == (datetime(2025, 3, 3, 10, 0, tzinfo=UTC), None)


# --- the feed as a whole ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("ttl", "seconds"), [("60", 3600.0), (" 15 ", 900.0), ("0", None), ("soon", None)])
def test_parse_feed_ttl_in_seconds(ttl: str, seconds: float | None) -> None:
    assert parse(rss(item(guid="1"), channel=f"<ttl>{ttl}</ttl>")).ttl_seconds == seconds


def test_parse_feed_empty_but_valid_feed_has_no_items() -> None:
    feed = parse(rss(""))

    assert (feed.items, feed.duplicates, feed.warning) == ((), 0, None)


def test_parse_feed_recovers_entries_from_malformed_xml_with_a_warning() -> None:
    feed = parse(rss(item("A &bogus; entity", guid="1")))

    assert len(feed.items) == 1 and "bogus" in feed.items[0].title
    assert feed.warning is not None and "undefined entity" in feed.warning


@pytest.mark.parametrize(
    ("content", "headers", "error", "message"),
    [
        (b"", RSS, ParseError, "empty body"),
        (b" \r\n\t", RSS, ParseError, "empty body"),
        (b"<!DOCTYPE html><html><body>News</body></html>", {"content-type": "text/html"}, NotAFeed, "HTML page"),
        (b"<html><head><title>x</title></head></html>", {}, NotAFeed, "HTML page"),
        (b'<?xml version="1.0"?>\n<data><<<</data>', RSS, ParseError, "not well-formed"),
        (b'{"items": []}', {"content-type": "application/json"}, ParseError, "not a feed"),
        (b'<rss version="2.0"><channel><title>cut', RSS, ParseError, "no entries recovered"),
    ],
)
def test_parse_feed_unreadable_body_raises(
    content: bytes, headers: dict[str, str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as raised:
        parse(content, headers=headers)
    assert "\n" not in str(raised.value)


# --- properties ------------------------------------------------------------------------------------------
_FRAGMENTS = st.sampled_from(
    [
        "<p>",
        "</p>",
        "<b>",
        "</b>",
        "<br/>",
        '<a href="https://x.example/?a=1&amp;b=2">',
        "</a>",
        "<img src=x>",
        "<!-- c -->",
        "<script>x()</script>",
        "&amp;",
        "&lt;",
        "&gt;",
        "&lt;b&gt;",
        "&amp;lt;i&amp;gt;",
        "&nbsp;",
        "&#60;",
        "&#x3C;",
        "&",
        "<",
        ">",
        " ",
        "\n",
        "\t",
        "Kyiv",
        "NATO",
        "Article 5",
    ]
)
_HTML = st.lists(st.one_of(_FRAGMENTS, st.text(max_size=6)), max_size=14).map("".join)
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")


@given(_HTML)
def test_clean_text_is_idempotent(html: str) -> None:
    once = clean_text(html)
    assert clean_text(once) == once


@given(_HTML)
def test_clean_text_never_returns_markup(html: str) -> None:
    text = clean_text(html)
    assert not _TAG.search(text), text
    assert text == text.strip() and "  " not in text


_QUERY_KEYS = st.one_of(
    st.sampled_from(["id", "q", "page", "utm_source", "utm_medium", "utm_campaign", "fbclid", "ref", "a"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).map(lambda name: "utm_" + name),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6),
)
_SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%"


@st.composite
def _urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTPS"]))
    host = draw(st.sampled_from(["example.com", "WWW.Example.org", "news.example.net:8080", "127.0.0.1"]))
    path = "/".join(draw(st.lists(st.text(alphabet=_SAFE, max_size=8), max_size=4)))
    params = draw(st.lists(st.tuples(_QUERY_KEYS, st.text(alphabet=_SAFE, max_size=6)), max_size=5))
    query = "&".join(f"{key}={value}" for key, value in params)
    fragment = draw(st.one_of(st.just(""), st.text(alphabet=_SAFE + "=&", max_size=8).map(lambda f: "#" + f)))
    return f"{scheme}://{host}/{path}" + (f"?{query}" if query else "") + fragment


@given(_urls())
def test_canonical_url_is_idempotent(url: str) -> None:
    once = canonical_url(url)
    assert once is not None
    assert canonical_url(once) == once


@given(_urls())
def test_canonical_url_never_keeps_utm_parameters_or_a_fragment(url: str) -> None:
    canonical = canonical_url(url)
    assert canonical is not None
    parts = urlsplit(canonical)
    assert parts.scheme == "https" and "#" not in canonical
    names = [name for name, _ in parse_qsl(parts.query, keep_blank_values=True)]
    assert not [name for name in names if name.lower().startswith("utm_")], canonical


def test_parse_well_formed_feed_beyond_max_items_is_not_called_malformed() -> None:
    body = rss(item("a", guid="1") + item("b", guid="2") + item("c", guid="3"))
    feed = parse_feed(body, {"content-type": "application/rss+xml"}, URL, NOW, max_items=2)
    assert [i.title for i in feed.items] == ["a", "b"]
    assert feed.warning == "more than max_items (2): kept the first 2 of 3 entries"

"""Feed bytes + response headers -> the fields `parse.parse_feed` reads, via feedparser-rs, or None.

feedparser-rs (Rust) reads a well-formed feed about twenty times faster than feedparser, but it is not
feedparser: it takes no HTTP headers (charset, Content-Location), resolves no relative link against the URL,
and recovers from broken documents its own way. So it is used only where it cannot differ, and None tells the
caller to read the body with feedparser, the reference:

- before parsing (cheap checks on the bytes and headers): feedparser-rs is not installed; the document is not
  plainly UTF-8 RSS 2.0 or Atom (another content type, declared or HTTP charset, bytes that are not UTF-8, or a
  root element not closed at the end); it has a DOCTYPE (declared entities) or `xml:base`; it uses an element
  outside the vocabulary both read alike (Dublin Core, XHTML bodies, an image inside an item...), or markup
  they read differently (base64, script or style, an Atom link without href, a reference to a C1 control);
- after parsing: the parser raised or flagged the document as malformed (an undefined entity such as `&nbsp;`
  included: feedparser decodes it but flags the feed); it found no feed version or no entries; it stopped at
  its entry limit; an entry has several authors, the feed's author, a relative link or id, an id whose scheme
  is not in lower case, or a C1 control character.

A document is parsed without feedparser-rs's HTML sanitiser first, and again with it only where a text the poll
reads holds a tag: on text without one the sanitiser changes nothing `parse.clean_text` does not undo, and it is
more than half of its time on plain feeds.

Dates are read from their text as feedparser's own date parser reads them (the two disagree on odd dates):
the RFC 822 form most feeds use by `read_date`, any other by feedparser's.

`tests/test_parse_fast.py` checks over the shared corpora that every feed read here normalises to exactly
what feedparser gives. Pure: no network (bytes are always passed, never a URL), database or clock.
"""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cache
from types import ModuleType
from typing import Any

# The entry fields `parse.parse_feed` reads; each is copied only when the fast parser set it, as feedparser
# leaves a missing field out.
_ENTRY_FIELDS = ("title", "summary", "link", "id", "author", "published", "updated", "created")
_DATES = ("published_parsed", "updated_parsed", "created_parsed")  # read from the raw text, as feedparser does
_MAX_ENTRIES = 1_000_000
_UTF8 = frozenset({"utf-8", "utf8"})
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([^\s\"';]+)", re.IGNORECASE)
_START = re.compile(rb"\s*(<\?xml\b[^>]*\?>\s*)?(<!--.*?-->\s*)*<(rss|feed|rdf:RDF)\b", re.DOTALL)
_DECLARED = re.compile(rb"<\?xml\b[^>]*?\bencoding\s*=\s*[\"']([^\"']*)[\"']")
_ABSOLUTE = re.compile(r"^https?://[^\s]+$", re.IGNORECASE)
_XML_TYPES = re.compile(r"^(application/((rss|atom|rdf)\+)?xml|text/xml)$")
_CDATA = re.compile(rb"<!\[CDATA\[.*?\]\]>", re.DOTALL)
_TAG = re.compile(rb"<([A-Za-z_][\w.:-]*)")
# Markup whose reading the two parsers are known to disagree on: base64 content, script and style text
# (sanitised differently), Atom links without href, numeric references to C1 controls (feedparser reads them
# as Windows-1252). Searched in the lower-cased document, each pattern led by a literal so the scan stays fast.
_SCRIPT_WORD = re.compile(rb"(?:script|style)\b")
_SCRIPT_TAG = re.compile(rb"(?:<|&lt;|&#0*60;|&#x0*3c;)\s*/?\s*(?:script|style)\b")
_LINK_NO_HREF = re.compile(rb"<link\s(?![^>]*\bhref\s*=)[^>]*>")
_C1_REFERENCE = re.compile(rb"&#(?:0*1[2-5]\d|x0*[89][0-9a-f]);")
_C1 = re.compile("[\x80-\x9f]")
# The elements both parsers read alike (checked over the shared corpora); any other element, namespaced ones
# included (Dublin Core, XHTML bodies, a module's own <description>), sends the feed to feedparser.
_RSS = frozenset(
    b"""rss channel item title link description pubDate guid enclosure category comments language lastBuildDate
    copyright ttl image url width height generator managingEditor webMaster docs author
    media:content media:credit media:thumbnail atom:link""".split()
)
_ATOM = frozenset(
    b"""feed entry id title link updated published summary content author name email uri category subtitle
    generator icon logo rights""".split()
)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


@cache
def _parser() -> ModuleType | None:
    try:
        return importlib.import_module("feedparser_rs")
    except ImportError:
        return None


def available() -> bool:
    """Whether the fast parser is installed."""
    return _parser() is not None


def read_fast(content: bytes, headers: Mapping[str, str]) -> dict[str, Any] | None:
    """The document as a feedparser-shaped dict (`version`, `feed`, `entries`), or None when feedparser must
    read it. `headers` are the response headers, names in lower case."""
    module = _parser()
    if module is None or not _plain_utf8_xml(content, headers):
        return None
    # feedparser-rs reserves room for `max_entries` entries up front (about 1.8 KB each, 1.8 GB at a million):
    # bound it by the entries the document can hold, so that a process with a memory ceiling is not aborted
    most = min(_MAX_ENTRIES, content.count(b"<item") + content.count(b"<entry") + 1)
    try:
        limits = module.ParserLimits(max_feed_size_bytes=len(content) + 1, max_entries=most)
        parsed = module.parse_with_limits(content, limits=limits, sanitize_html=False, resolve_relative_uris=False)
        if _holds_markup(parsed):
            parsed = module.parse_with_limits(content, limits=limits, sanitize_html=True, resolve_relative_uris=False)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - a Rust panic arrives as a BaseException; feedparser judges the feed
        return None
    entries = parsed.entries
    if parsed.bozo or not parsed.version or not entries or len(entries) >= most:
        return None
    feed_author = parsed.feed.get("author")
    for entry in entries:
        if len(entry.get("authors") or ()) > 1 or (feed_author and entry.get("author") == feed_author):
            return None  # feedparser keeps an entry's last author and lends it none of the feed's
        scheme = _SCHEME.match(entry.get("id") or "")
        if scheme and scheme.group(1) != scheme.group(1).lower():
            return None  # feedparser writes an id's scheme in lower case
        if entry.get("id") and not scheme and parsed.version.startswith("atom"):
            return None  # feedparser resolves a relative Atom id against the document's URL
    copied = [_entry(entry) for entry in entries]
    if any("link" in entry and not _ABSOLUTE.match(entry["link"]) for entry in copied):
        return None
    if _C1.search("".join(value for entry in copied for value in entry.values() if isinstance(value, str))):
        return None
    channel = parsed.feed
    feed = {name: channel.get(name) for name in ("title", "link", "ttl") if channel.get(name) is not None}
    return {"version": parsed.version, "bozo": False, "feed": feed, "entries": copied}


def _holds_markup(parsed: Any) -> bool:
    """Whether a text the caller reads (the feed's title; an entry's title, summary, author or first content)
    holds a tag, which the sanitiser would change. Without one it only escapes `&` and `>` again and reads a
    named reference that lacks its semicolon, both of which `parse.clean_text` decodes alike."""
    texts = [parsed.feed.get("title")]
    for entry in parsed.entries:
        contents = entry.get("content") or []
        texts += [
            entry.get("title"),
            entry.get("summary"),
            entry.get("author"),
            contents[0].get("value") if contents else None,
        ]
    return any("<" in text for text in texts if text)


def _plain_utf8_xml(content: bytes, headers: Mapping[str, str]) -> bool:
    content_type, _, params = headers.get("content-type", "application/xml").partition(";")
    if not _XML_TYPES.match(content_type.strip().lower()):
        return False
    charset = _CHARSET.search(params)
    if charset and charset.group(1).lower() not in _UTF8:
        return False
    head = content[:1024]
    if not _START.match(head) or b"<!DOCTYPE" in head or b"xml:base" in content or _disagreeing(content.lower()):
        return False
    if not content.rstrip().endswith((b"</rss>", b"</feed>")):
        return False  # feedparser-rs reads a truncated document without a word; feedparser flags it
    elements = set(_TAG.findall(_CDATA.sub(b"", content)))
    if not (elements <= _RSS or elements <= _ATOM):
        return False
    first_item = content.find(b"<item")
    if first_item >= 0 and content.find(b"<image", first_item) >= 0:
        return False  # an image inside an item (or a category) lends its link to the item in feedparser-rs
    declared = _DECLARED.match(head.lstrip())
    if declared and declared.group(1).decode("ascii", "replace").lower() not in _UTF8:
        return False
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _disagreeing(lowered: bytes) -> bool:
    """Whether the document holds markup that the two parsers read differently (see `_SCRIPT_TAG`...)."""
    if b"base64" in lowered or _LINK_NO_HREF.search(lowered):
        return True
    if b"&#" in lowered and _C1_REFERENCE.search(lowered):
        return True
    if b"script" not in lowered and b"style" not in lowered:  # two plain scans: most documents have neither
        return False
    return any(
        _SCRIPT_TAG.search(lowered, max(0, word.start() - 12), word.end()) for word in _SCRIPT_WORD.finditer(lowered)
    )


def _entry(entry: Any) -> dict[str, Any]:
    copied = {name: value for name in _ENTRY_FIELDS if (value := entry.get(name)) is not None}
    read: dict[str, Any] = {}  # an RSS item's one date comes as both published and updated: read it once
    for name in _DATES:
        raw = copied.get(name.removesuffix("_parsed"))
        if raw is not None:
            if raw not in read:
                read[raw] = read_date(raw)
            copied[name] = read[raw]
    contents = entry.get("content") or []
    if contents:
        copied["content"] = [{"value": contents[0].get("value", "")}]
    return copied


# An RFC 822 date as feeds write it ("Sat, 28 Feb 2026 20:37:13 +0000"): read here as feedparser reads it
# (its RFC 822 reader, which it tries second, after a W3C-DTF reader that cannot read this form), without
# trying the reader before it and splitting the text. Any other text is feedparser's to read.
_RFC822 = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d?) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) "
    r"(\d\d):(\d\d):(\d\d) (?:([+-])(\d\d)(\d\d)|GMT|UTC?)"
)
_MONTHS = {name: number for number, name in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}


def read_date(raw: str) -> time.struct_time | None:
    """feedparser's reading of a date (`feedparser.datetimes._parse_date`): a UTC time tuple, or None."""
    found = _RFC822.fullmatch(raw)
    if found is not None:
        day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = found.groups()
        try:
            stamp = datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
            offset = timedelta(hours=int(zone_hours), minutes=int(zone_minutes)) if sign else timedelta(0)
            return (stamp + offset if sign == "-" else stamp - offset).utctimetuple()
        except (OverflowError, ValueError):  # not a day of the calendar, or beyond it: feedparser's other readers try
            pass
    from feedparser.datetimes import _parse_date  # feedparser's own date reading: the two parsers disagree on dates

    return _parse_date(raw)  # type: ignore[no-any-return]

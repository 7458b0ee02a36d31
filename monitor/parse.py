"""Feed bytes + response headers -> `ParsedFeed` of normalised `Entry`s, via feedparser (or feedparser-rs).

Pure: takes the bytes, the headers (so feedparser's encoding detection sees the HTTP charset), the URL and
`now`; touches no network, database or clock. Text is plain (HTML stripped), links canonical (no tracking
parameters or fragments), dates UTC, and each item has an identity within its feed: guid, then link, then a
hash of title and summary.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from html import unescape
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from w3lib.url import canonicalize_url, url_query_cleaner

from monitor.errors import NotAFeed, ParseError
from monitor.parse_fast import read_fast

MAX_TITLE = 1_000
MAX_SUMMARY = 20_000
MAX_KEY = 500
EARLIEST = datetime(1995, 1, 1, tzinfo=UTC)  # before RSS existed: an epoch default or a typo
FUTURE_SLACK = timedelta(days=1)  # clocks and time zones drift; a day ahead is a wrong date

TRACKING_PARAMS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "utm_id",
    "utm_name",
    "utm_brand",
    "utm_social",
    "utm_social-type",
    "fbclid",
    "gclid",
    "dclid",
    "msclkid",
    "yclid",
    "mc_cid",
    "mc_eid",
    "ocid",
    "cmpid",
    "cmp",
    "at_medium",
    "at_campaign",
    "at_custom1",
    "at_custom2",
    "at_custom3",
    "at_custom4",
    "xtor",
    "ito",
    "smid",
    "smtyp",
    "ns_mchannel",
    "ns_source",
    "ns_campaign",
    "ns_linkname",
    "ns_fee",
    "rss",
    "feed",
    "feedname",
    "ref",
    "ref_src",
    "referrer",
    "src",
    "igshid",
    "_ga",
    "guccounter",
)
_MAX_DECODE_ROUNDS = 10
# feedparser's lenient parser expands the entities a feed declares in its DOCTYPE (those with plain quoted
# text), however often they are referenced: 30 KB of feed can become hundreds of megabytes ("quadratic
# blowup"). A feed may use a few short ones; beyond this much expanded text it is refused.
MAX_ENTITY_EXPANSION = 100_000
MAX_ENTITY_DECLARATIONS = 100
_ENTITY_DECLARATION = re.compile(rb'<!ENTITY\s+([^\s%"\'>]+)\s+"([^"]*)"')
_HTML_HINT = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)\b", re.IGNORECASE | re.DOTALL)


def load_readers() -> None:
    """Import now every library that reading a feed may load lazily (feedparser, feedparser-rs, BeautifulSoup):
    a poll calls it once, in one thread, before its parse threads start, because two threads that first import
    libraries sharing modules at the same moment can be handed a module the other has not finished setting up."""
    import feedparser  # noqa: F401

    from monitor.parse_fast import available

    available()
    _soup()


@cache
def _soup() -> Callable[..., Any]:
    """BeautifulSoup, loaded by the first text with markup in it: a poll of 304 answers parses nothing."""
    from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning

    warnings.filterwarnings("ignore", category=MarkupResemblesLocatorWarning)
    return BeautifulSoup


@dataclass(frozen=True)
class Entry:
    """One entry of a feed, normalised."""

    key: str
    title: str
    summary: str
    content_hash: str
    guid: str | None = None
    link: str | None = None
    canonical_url: str | None = None
    author: str | None = None
    published: datetime | None = None
    published_flag: str | None = None  # why `published` is None: missing, unparseable, too-old, future


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    link: str | None
    ttl_seconds: float | None
    items: tuple[Entry, ...]
    duplicates: int = 0
    warning: str | None = None  # feedparser recovered from a problem (bozo), or items beyond max_items were left
    parser: str = field(default="feedparser", compare=False)  # which parser read it: feedparser or feedparser-rs
    body_hash: str | None = field(default=None, compare=False)  # of the response read (`parse_pool.body_digest`)


def parse_feed(
    content: bytes,
    headers: Mapping[str, str],
    url: str,
    now: datetime,
    max_items: int | None = None,
    *,
    fast: bool = True,
) -> ParsedFeed:
    """Parse one response body. Raises `NotAFeed` or `ParseError` when no feed can be read from it.

    At most `max_items` items are kept, the first in the document (feeds list their newest first); the
    warning says how many more there were. With `fast`, a plain well-formed feed is read by feedparser-rs
    (`parse_fast`) when it is installed; feedparser reads everything else, and the items are the same."""
    if not content.strip():
        raise ParseError("empty body")
    _check_entity_expansion(content)
    response_headers = {key.lower(): value for key, value in headers.items()}
    # The base for relative links: Content-Location resolved against the URL (it may be relative), and only
    # when that gives an http(s) URL; feedparser would otherwise leave relative links relative.
    base = urljoin(url, response_headers.get("content-location", "").strip())
    response_headers["content-location"] = base if re.match(r"^https?://", base, re.IGNORECASE) else url
    parsed: Mapping[str, Any] | None = read_fast(content, response_headers) if fast else None
    parser = "feedparser-rs" if parsed is not None else "feedparser"
    if parsed is None:
        import feedparser  # loaded only when needed: most polls never fall back to it

        parsed = feedparser.parse(content, response_headers=response_headers, sanitize_html=True)
    entries = parsed["entries"]
    problem = _bozo_message(parsed)
    if not parsed.get("version") and not entries:
        content_type = response_headers.get("content-type", "")
        if _HTML_HINT.match(content[:2048]) or "html" in content_type.lower():
            raise NotAFeed(f"not a feed: an HTML page ({content_type or 'no content type'})")
        raise ParseError(f"not a feed: {problem or 'no RSS, Atom or RDF document found'}")
    if problem and not entries:
        # Nothing was recovered (a truncated or broken document): a failure, not an empty success.
        raise ParseError(f"malformed feed, no entries recovered: {problem}")
    channel = parsed.get("feed", {})
    feed_link = _canonical(channel.get("link"))
    items: list[Entry] = []
    keys: set[str] = set()
    duplicates = 0
    warnings_ = [f"recovered from a malformed feed: {problem}"] if problem else []
    for entry in entries:
        if max_items is not None and len(items) >= max_items:
            total = len(entries)
            warnings_.append(f"more than max_items ({max_items:,}): kept the first {max_items:,} of {total:,} entries")
            break
        item = _entry(entry, feed_link, now)
        if item.key in keys:
            duplicates += 1
            continue
        keys.add(item.key)
        items.append(item)
    return ParsedFeed(
        title=clean_text(channel.get("title")) or None,
        link=channel.get("link") or None,
        ttl_seconds=_ttl(channel.get("ttl")),
        items=tuple(items),
        duplicates=duplicates,
        warning="; ".join(warnings_) or None,
        parser=parser,
    )


def _check_entity_expansion(content: bytes) -> None:
    """Refuse a feed whose declared entities would expand beyond `MAX_ENTITY_EXPANSION` bytes."""
    text = _ascii_view(content)
    if b"<!ENTITY" not in text:
        return
    declared = dict(_ENTITY_DECLARATION.findall(text))
    if len(declared) > MAX_ENTITY_DECLARATIONS:
        raise ParseError(f"refused: the feed declares {len(declared)} XML entities (entity expansion attack?)")
    expanded = sum(text.count(b"&" + name + b";") * len(value) for name, value in declared.items())
    if expanded > MAX_ENTITY_EXPANSION:
        raise ParseError(
            f"refused: the XML entities the feed declares would expand to {expanded:,} bytes "
            f"(over {MAX_ENTITY_EXPANSION:,}; entity expansion attack?)"
        )


def _ascii_view(content: bytes) -> bytes:
    """The document as ASCII-compatible bytes for the entity check: UTF-16 and UTF-32 (which feedparser also
    reads) are decoded first; other encodings are left as they are."""
    if b"\x00" not in content[:4]:
        return content
    for codec in ("utf-32-be", "utf-32-le", "utf-16-be", "utf-16-le"):
        text = content.decode(codec, errors="ignore")
        if "<" in text[:8]:
            return text.encode("utf-8", errors="ignore")
    return content


def _entry(entry: Any, feed_link: str | None, now: datetime) -> Entry:
    title = clean_text(entry.get("title"))[:MAX_TITLE]
    summary = clean_text(entry.get("summary") or _first_content(entry))[:MAX_SUMMARY]
    link = (entry.get("link") or "").strip() or None
    canonical = _canonical(link)
    guid = (entry.get("id") or "").strip() or None
    if guid:
        key = f"guid:{guid}"
    elif canonical and canonical != feed_link:
        key = f"link:{canonical}"
    else:
        key = f"hash:{_digest(title, summary)[:32]}"
    if len(key) > MAX_KEY:
        key = f"{key[:5]}sha256:{_digest(key)}"
    if not title:
        title = summary[:120] or (link or "(untitled)")
    published, flag = _published(entry, now)
    return Entry(
        key=key,
        title=title,
        summary=summary,
        content_hash=_digest(title, summary, link or ""),
        guid=guid,
        link=link,
        canonical_url=canonical if canonical != feed_link else None,
        author=clean_text(entry.get("author")) or None,
        published=published,
        published_flag=flag,
    )


def _published(entry: Any, now: datetime) -> tuple[datetime | None, str | None]:
    for name in ("published", "updated", "created"):
        # dict.get: feedparser's own get() maps a missing updated_parsed to published_parsed, with a warning.
        struct = dict.get(entry, f"{name}_parsed")
        if struct is None:
            continue
        try:
            when = datetime.fromtimestamp(calendar.timegm(struct), UTC)
        except (OverflowError, ValueError, OSError):
            return None, "unparseable"
        if when < EARLIEST:
            return None, "too-old"
        if when > now + FUTURE_SLACK:
            return None, "future"
        return when, None
    if any(dict.get(entry, field) for field in ("published", "updated", "created")):
        return None, "unparseable"
    return None, "missing"


def clean_text(html: str | None) -> str:
    """Plain text from an HTML fragment: tags dropped, entities decoded, whitespace collapsed. What is stored and
    shown: the publisher's quotes and dashes are kept (`monitor.text.normalize_text` flattens them for matching)."""
    if not html:
        return ""
    # Feeds often escape their HTML twice ("&lt;p&gt;"): decode until nothing changes (each round shortens).
    for _ in range(_MAX_DECODE_ROUNDS):
        if "<" in html:
            decoded = _soup()(html, "html.parser").get_text(" ")
        elif "&" in html:
            decoded = unescape(html)
        else:
            break
        if decoded == html:
            break
        html = decoded
    # str.split() breaks on exactly the characters a regex \s matches, and is many times faster on long text.
    return " ".join(html.split())


def canonical_url(url: str | None) -> str | None:
    """The link without tracking parameters or fragment, scheme folded to https, query sorted."""
    return _canonical(url)


@lru_cache(maxsize=4096)  # a story's link comes back in every feed that carries it, and on every poll
def _canonical(url: str | None) -> str | None:
    if not url:
        return None
    url = url.strip()
    if not re.match(r"^https?://", url, re.IGNORECASE):
        return None
    try:
        cleaned = url_query_cleaner(
            url, (*TRACKING_PARAMS, *_utm_names(url)), remove=True, unique=False, keep_fragments=False
        )
        canonical = canonicalize_url(cleaned, keep_fragments=False)
    except ValueError:
        return None
    canonical = re.sub(r"^http://", "https://", canonical, flags=re.IGNORECASE)
    return str(canonical)


def _utm_names(url: str) -> list[str]:
    """The query's utm_* parameter names as written (utm_reader, utm_pubreferrer... are not all listed)."""
    names = (pair.partition("=")[0] for pair in urlsplit(url).query.split("&"))
    return [name for name in names if unquote(name).lower().startswith("utm_")]


def _first_content(entry: Any) -> str:
    contents = entry.get("content") or []
    return str(contents[0].get("value", "")) if contents else ""


def _ttl(value: Any) -> float | None:
    try:
        minutes = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return minutes * 60 if 0 < minutes < 60 * 24 * 30 else None


def _bozo_message(parsed: Any) -> str | None:
    if not parsed.get("bozo"):
        return None
    exc = parsed.get("bozo_exception")
    message = str(exc).splitlines()[0] if exc is not None and str(exc) else type(exc).__name__
    line = getattr(exc, "getLineNumber", None)
    if callable(line):
        try:
            message = f"line {line()}: {message}"
        except Exception:  # the SAX locator may be gone
            pass
    return message


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()

"""Full-text search over the stored items: SQLite's FTS5 here, PostgreSQL's in `monitor.store.search_pg`, and a
plain LIKE search on any other database. Takes a query and a session; returns a `Listing`. Reads only, but for
`catch_up`, which a search calls first: on SQLite a poll only notes the items it stores, and the index takes them
in bulk when it is next read.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import sqlalchemy as sa
from sqlmodel import Session

from monitor.errors import DatabaseError, MonitorError
from monitor.store import models
from monitor.store.models import UTCDateTime
from monitor.store.queries import Listing


class SearchError(MonitorError):
    """A full-text query the search engine cannot read."""


# --- SQLite only: full-text search (FTS5) -------------------------------------------------------------------
FTS_TABLE = "item_fts"  # made by migration 0004, with its triggers; left out of autogenerate by monitor.store.schema
_HIT = "**"  # marks the matched words in snippets


class CatchUp(NamedTuple):
    """What `catch_up` did: the items it indexed, and those it had to leave waiting, with why."""

    indexed: int
    waiting: int = 0
    reason: str = ""


def catch_up(engine: sa.Engine) -> CatchUp:
    """Index every item stored since the last search (SQLite), in one transaction of its own, before a
    search reads it: a poll leaves the tokenising of its items to the first search after it, which takes them
    all in one statement (about 28,000 items a second on the README's workload). Where the database cannot be
    written (a file this process may only read) nothing changes, and the count left out comes back instead."""
    if engine.dialect.name != "sqlite":
        return CatchUp(0)
    try:
        with engine.begin() as connection:
            return CatchUp(index_new_items(session=connection))
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig else "the database cannot be written"
        try:
            with engine.connect() as connection:
                waiting = connection.execute(sa.text("SELECT count(*) FROM item_fts_pending")).scalar_one()
        except sa.exc.OperationalError:
            raise DatabaseError(f"database: {reason}") from None
        return CatchUp(0, waiting, reason)


def index_new_items(*, session: Session | sa.Connection) -> int:
    """Index the items inserted since the last call (noted in `item_fts_pending` by a trigger, migration 0009)
    in one statement, and return how many. Indexed one by one, each feed's transaction would write a segment
    of its own. A no-op on other databases, and without a write when nothing is waiting."""
    connection = session.connection() if isinstance(session, Session) else session
    if connection.dialect.name != "sqlite":
        return 0
    if connection.execute(sa.text("SELECT 1 FROM item_fts_pending LIMIT 1")).first() is None:
        return 0
    connection.execute(
        sa.text(
            f"INSERT INTO {FTS_TABLE}(rowid, title, summary) SELECT i.id, i.title, i.summary "
            "FROM item_fts_pending p JOIN item i ON i.id = p.item_id ORDER BY p.item_id"
        )
    )
    return connection.execute(sa.text("DELETE FROM item_fts_pending")).rowcount


def search(text: str, *, session: Session, limit: int | None = 20) -> Listing:
    """Items matching an FTS5 query, best first (bm25, title weighted over summary), with highlighted snippets;
    `limit` None for all. Plain words are quoted for FTS5 (`U.S.`, `Kyiv's`, `a-b`); its operators stay.

    On PostgreSQL, its own full-text search with the same query syntax (`pg_search`); on any other database a
    plain, unranked LIKE search on every word."""
    if not text.strip():
        raise SearchError("search: empty query")
    dialect = session.connection().dialect.name
    if dialect == "postgresql":
        from monitor.store.search_pg import pg_search

        return pg_search(text, session=session, limit=limit)
    if dialect != "sqlite":
        return like_search(text, session=session, limit=limit)
    statement = sa.text(
        f"SELECT i.id AS item_id, i.published_at, i.source_id, i.title, "
        f"snippet({FTS_TABLE}, -1, :hit, :hit, '…', 16) AS snippet, i.link, "
        f"round(-bm25({FTS_TABLE}, 10.0, 1.0), 3) AS score "
        f"FROM {FTS_TABLE} JOIN item i ON i.id = {FTS_TABLE}.rowid "
        f"WHERE {FTS_TABLE} MATCH :query ORDER BY bm25({FTS_TABLE}, 10.0, 1.0), i.id LIMIT :limit"
    ).columns(published_at=UTCDateTime())
    try:
        parameters = {"query": fts_query(text), "hit": _HIT, "limit": -1 if limit is None else limit}
        result = session.connection().execute(statement, parameters)
        return Listing(tuple(result.keys()), [tuple(row) for row in result])
    except sa.exc.OperationalError as exc:
        message = str(exc.orig).splitlines()[0] if exc.orig else "invalid query"
        raise SearchError(
            f"search {shorten(text)!r}: {message} (put words in double quotes to search them literally)"
        ) from None


_FTS_TOKEN = re.compile(r'"[^"]*"?|[()]|[^\s()"]+')
_FTS_OPERATORS = frozenset({"AND", "OR", "NOT", "NEAR"})
_FTS_WORD = re.compile(r"^\w+\*?$")


def fts_query(text: str) -> str:
    """`text` as FTS5 reads it: phrases, parentheses, AND/OR/NOT/NEAR and plain words (prefix* too) as given;
    any other token (`U.S.`, `Kyiv's`, `a-b`, `col:x`) quoted as a phrase, so it is searched, not parsed."""
    tokens = []
    for token in _FTS_TOKEN.findall(text):
        if token.startswith('"'):  # a phrase (an unterminated one is left for FTS5 to report)
            tokens.append(token)
        elif token in _FTS_OPERATORS or token in "()" or _FTS_WORD.match(token):
            tokens.append(token)
        else:
            tokens.append('"' + token + '"')
    return " ".join(tokens)


def shorten(text: str, limit: int = 80) -> str:
    """A user's text as an error message echoes it: one line, at most `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def like_search(text: str, *, session: Session, limit: int | None = 20) -> Listing:
    """Items whose title or summary contains every word of `text` (portable; no ranking), newest first."""
    item = models.Item.__table__  # type: ignore[attr-defined]
    words = [word.strip('"').lower() for word in text.split() if word.strip('"')]
    if not words:
        raise SearchError("search: the query has no words")
    haystack = sa.func.lower(item.c.title + sa.literal(" ") + item.c.summary)
    query = (
        sa.select(item.c.id, item.c.published_at, item.c.source_id, item.c.title, item.c.summary, item.c.link)
        .where(*(haystack.contains(word, autoescape=True) for word in words))
        .order_by(item.c.published_at.desc(), item.c.id.desc())
        .limit(limit)
    )
    rows = [
        (row.id, row.published_at, row.source_id, row.title, _excerpt(row.summary or row.title, words[0]), row.link,
         None)
        for row in session.connection().execute(query)
    ]  # fmt: skip
    return Listing(("item_id", "published_at", "source_id", "title", "snippet", "link", "score"), rows)


def _excerpt(text: str, word: str, width: int = 80) -> str:
    at = text.lower().find(word)
    if at < 0:
        return text[: width * 2]
    start = max(0, at - width)
    return (
        ("…" if start else "")
        + text[start:at]
        + _HIT
        + text[at : at + len(word)]
        + _HIT
        + text[at + len(word) :][:width]
    )

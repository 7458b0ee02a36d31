"""Full-text search on PostgreSQL: `monitor search`'s query syntax (SQLite FTS5's) read into a tsquery, run
against the GIN index `item_fts_pg` (migration 0006). Takes a session and a query; returns a `Listing` shaped
like `monitor.store.fulltext.search`'s. Reads only.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlmodel import Session

from monitor.store.fulltext import SearchError
from monitor.store.models import UTCDateTime
from monitor.store.queries import Listing

# The expression the index is built on: the WHERE clause repeats it exactly so that the index is used.
_PG_DOCUMENT = "to_tsvector('simple'::regconfig, coalesce(i.title, '') || ' ' || coalesce(i.summary, ''))"
_PG_RANKED = (
    "setweight(to_tsvector('simple'::regconfig, coalesce(i.title, '')), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, coalesce(i.summary, '')), 'D')"
)
_TOKEN = re.compile(r'"[^"]*"|\(|\)|[^\s()"]+')


def pg_search(text: str, *, session: Session, limit: int | None = 20) -> Listing:
    """`search` on PostgreSQL: the same query syntax, read into a tsquery; ranked by ts_rank with the title
    weighted over the summary; snippets from ts_headline."""
    query = to_tsquery(text)
    if not query:
        raise SearchError(f"search {text!r}: the query has no words")
    statement = sa.text(
        "SELECT i.id AS item_id, i.published_at, i.source_id, i.title, "
        "ts_headline('simple'::regconfig, coalesce(i.title, '') || ' ' || coalesce(i.summary, ''), q.query, "
        "'StartSel=**, StopSel=**, MaxWords=16, MinWords=6, FragmentDelimiter=…, MaxFragments=1') AS snippet, "
        f"i.link, round(ts_rank({_PG_RANKED}, q.query)::numeric, 3)::float AS score "
        "FROM item i, to_tsquery('simple'::regconfig, :query) AS q(query) "
        f"WHERE {_PG_DOCUMENT} @@ q.query ORDER BY score DESC, i.id LIMIT :limit"
    ).columns(published_at=UTCDateTime())
    try:
        with session.begin_nested():
            result = session.connection().execute(statement, {"query": query, "limit": limit})
            return Listing(tuple(result.keys()), [tuple(row) for row in result])
    except sa.exc.DBAPIError as exc:
        message = str(exc.orig).splitlines()[0] if exc.orig else "invalid query"
        raise SearchError(f"search {text!r}: {message} (put words in double quotes to search them literally)") from None


def to_tsquery(text: str) -> str:
    """The FTS5 query syntax the command documents, as PostgreSQL's tsquery: words (ANDed), "exact phrases"
    (<->), AND (&), OR (|), NOT (& !), prefix* (:*), parentheses; NEAR(a b) is read as a AND b."""
    out: list[str] = []
    operand = False  # whether the last thing written can be followed by an operand only through an operator
    for token in _TOKEN.findall(text):
        keyword = token.upper()
        if keyword in ("AND", "OR") and operand:
            out.append("&" if keyword == "AND" else "|")
            operand = False
            continue
        if keyword == "NOT" and operand:
            out += ["&", "!"]
            operand = False
            continue
        if keyword == "NEAR":
            continue
        if token == ")":
            out.append(")")
            operand = True
            continue
        if operand:
            out.append("&")
        if token == "(":
            out.append("(")
            operand = False
            continue
        words = re.findall(r"\w+", token)
        if not words:
            if out and out[-1] == "&":
                out.pop()
            continue
        prefix = token.endswith("*") and not token.startswith('"')
        lexemes = [word.lower() for word in words]
        if prefix:
            lexemes[-1] += ":*"
        out.append(lexemes[0] if len(lexemes) == 1 else "(" + " <-> ".join(lexemes) + ")")
        operand = True
    return " ".join(out)

"""The content of a monitor database that a poll decides, without ids or times: what two runs over the same
feeds must agree on, whatever the clock said and whichever row ids SQLite handed out.

Left out, and why: row ids (a rolled-back transaction may or may not reuse them); every "when the monitor did
it" column (`first_seen_at`, `updated_at`, `matched_at`, `observed_at`, `confirmed_at`, `added_at`,
`status_since`, `created_at`, the sources' poll times); `published_at` and `reported_at` of an item whose
date was missing or unusable (they are the first-seen time then); `last_status_code` (a rerun sees 304 where
the first run saw 200); the event detail's `published_at`, `happened_at` and `story` (times and an id). Kept
as null-or-not: `confirmed_at`, `status_since`.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

Projection = dict[str, tuple[tuple[Any, ...], ...]]

_ITEM = "(SELECT i.source_id || ' ' || i.key FROM item i WHERE i.id = {})"
_CHANGE = (
    "(SELECT c.proposal_id || ' ' || c.kind || ' ' || c.from_status || '>' || c.to_status || ' ' || c.state "
    "FROM status_change c WHERE c.id = {})"
)
_MATCH = (
    "(SELECT i.source_id || ' ' || i.key || ' v' || m.item_version || ' ' || m.proposal_id "
    "FROM item_match m JOIN item i ON i.id = m.item_id WHERE m.id = {})"
)

QUERIES = {
    "source": "SELECT id, health, etag, consecutive_failures, last_error, feed_title, feed_link FROM source",
    "story": "SELECT canonical_url FROM story",
    "item": (
        "SELECT source_id, key, guid, link, canonical_url, (SELECT canonical_url FROM story WHERE id = story_id), "
        "title, summary, author, CASE WHEN published_fallback IS NULL THEN published_at END, published_fallback, "
        "version, content_hash FROM item"
    ),
    "item_version": (
        f"SELECT {_ITEM.format('v.item_id')}, v.version, v.title, v.summary, v.link, v.content_hash FROM item_version v"
    ),
    "proposal": (
        f"SELECT id, title, status, status_since IS NOT NULL, {_CHANGE.format('status_change_id')} FROM proposal"
    ),
    "item_match": (
        f"SELECT {_ITEM.format('m.item_id')}, m.item_version, m.proposal_id, round(m.score, 9), m.alias, m.actors, "
        "m.sentences, m.status, m.status_sentence, m.withdrawn, m.matcher_version FROM item_match m"
    ),
    "status_change": (
        "SELECT proposal_id, kind, from_status, to_status, state, confirmed_at IS NOT NULL, round(confidence, 9), "
        "note, decided_by FROM status_change"
    ),
    "evidence": (
        f"SELECT {_CHANGE.format('e.change_id')}, {_MATCH.format('e.match_id')}, {_ITEM.format('e.item_id')}, "
        "e.source_id, e.status, round(e.score, 9), e.sentence, "
        "CASE WHEN i.published_fallback IS NULL THEN e.reported_at END "
        "FROM evidence e LEFT JOIN item i ON i.id = e.item_id"
    ),
    "event": (
        f"SELECT kind, proposal_id, source_id, {_CHANGE.format('change_id')}, {_MATCH.format('match_id')}, detail "
        "FROM event"
    ),
}


def _stable_detail(detail: str | None) -> str | None:
    if detail is None:
        return None
    data = json.loads(detail)
    data.pop("published_at", None)
    data.pop("happened_at", None)
    data.pop("story", None)
    return json.dumps(data, sort_keys=True, ensure_ascii=False)


def _key(row: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if value is None else f"{type(value).__name__}:{value}" for value in row)


def project(connection: sqlite3.Connection) -> Projection:
    """Every table's stable content, each as a sorted tuple of rows (a multiset)."""
    result: Projection = {}
    for table, query in QUERIES.items():
        rows = [tuple(row) for row in connection.execute(query).fetchall()]
        if table == "event":
            rows = [(*row[:-1], _stable_detail(row[-1])) for row in rows]
        result[table] = tuple(sorted(rows, key=_key))
    return result


def describe_difference(found: Projection, expected: Projection, limit: int = 3) -> str:
    """A few rows on each side of the first tables that differ, for an assertion message."""
    lines = []
    for table in QUERIES:
        have, want = set(found.get(table, ())), set(expected.get(table, ()))
        if have == want and len(found.get(table, ())) == len(expected.get(table, ())):
            continue
        extra = sorted(have - want, key=_key)[:limit]
        missing = sorted(want - have, key=_key)[:limit]
        lines.append(
            f"{table}: {len(found.get(table, ()))} rows, expected {len(expected.get(table, ()))}; "
            f"unexpected {extra!r}; missing {missing!r}"
        )
    return "\n".join(lines) or "equal"

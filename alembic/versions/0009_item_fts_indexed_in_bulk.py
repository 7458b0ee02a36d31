"""item_fts_pending: new items are indexed for full-text search in bulk, not one by one (SQLite only)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 21:15:00.000000

Indexing each new item from a trigger as it is inserted writes one FTS5 segment per transaction, each with its
own copy of every term in it: on a poll's first run, one transaction per feed, that was the largest single
cost of storing. Now an insert only notes the item's id in `item_fts_pending`, and
`monitor.store.fulltext.index_new_items` indexes the noted items in one statement (a poll does so before it
leases each batch of feeds and when it ends), which writes far fewer and larger segments.

The invariant the triggers keep, whatever order writes come in: every item is either in the index (with its
current title and summary) or noted in `item_fts_pending`, never both. An edit or a delete of a noted item
leaves the index alone (FTS5 must never be told to delete a row it does not hold: that corrupts an external
content index) and a delete drops the note. An FTS5 'rebuild' indexes every item, so it must be followed by
`DELETE FROM item_fts_pending`.

Downgrade indexes the noted items and restores migration 0004's triggers.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXED = "NOT EXISTS (SELECT 1 FROM item_fts_pending WHERE item_id = old.id)"
PENDING_CREATE = (
    "CREATE TABLE item_fts_pending (item_id INTEGER NOT NULL PRIMARY KEY)",
    "CREATE TRIGGER item_fts_insert AFTER INSERT ON item BEGIN "
    "INSERT INTO item_fts_pending(item_id) VALUES (new.id); END",
    "CREATE TRIGGER item_fts_delete AFTER DELETE ON item BEGIN "
    "INSERT INTO item_fts(item_fts, rowid, title, summary) "
    f"SELECT 'delete', old.id, old.title, old.summary WHERE {_INDEXED}; "
    "DELETE FROM item_fts_pending WHERE item_id = old.id; END",
    "CREATE TRIGGER item_fts_update AFTER UPDATE OF title, summary ON item "
    f"WHEN {_INDEXED} BEGIN "
    "INSERT INTO item_fts(item_fts, rowid, title, summary) VALUES ('delete', old.id, old.title, old.summary); "
    "INSERT INTO item_fts(rowid, title, summary) VALUES (new.id, new.title, new.summary); END",
)
# Migration 0004's, as it made them.
ROW_BY_ROW = (
    "CREATE TRIGGER item_fts_insert AFTER INSERT ON item BEGIN "
    "INSERT INTO item_fts(rowid, title, summary) VALUES (new.id, new.title, new.summary); END",
    "CREATE TRIGGER item_fts_delete AFTER DELETE ON item BEGIN "
    "INSERT INTO item_fts(item_fts, rowid, title, summary) VALUES ('delete', old.id, old.title, old.summary); END",
    "CREATE TRIGGER item_fts_update AFTER UPDATE OF title, summary ON item BEGIN "
    "INSERT INTO item_fts(item_fts, rowid, title, summary) VALUES ('delete', old.id, old.title, old.summary); "
    "INSERT INTO item_fts(rowid, title, summary) VALUES (new.id, new.title, new.summary); END",
)
DROP_TRIGGERS = ("DROP TRIGGER item_fts_insert", "DROP TRIGGER item_fts_delete", "DROP TRIGGER item_fts_update")


def upgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    for statement in (*DROP_TRIGGERS, *PENDING_CREATE):
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    op.execute(
        "INSERT INTO item_fts(rowid, title, summary) SELECT i.id, i.title, i.summary "
        "FROM item_fts_pending p JOIN item i ON i.id = p.item_id ORDER BY p.item_id"
    )
    for statement in (*DROP_TRIGGERS, "DROP TABLE item_fts_pending", *ROW_BY_ROW):
        op.execute(statement)

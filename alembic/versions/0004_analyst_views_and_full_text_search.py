"""analyst views and full-text search

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 12:10:00.000000

Read-only views for the analysts' common questions (documented in docs/schema.md), in portable SQL except
for `DAYS`, one expression per dialect. On SQLite only, an FTS5 index over item titles and summaries, kept
in sync by triggers. This text is frozen: a later change to a view is a new migration that re-creates it
(monitor/queries.py holds the current definitions; tests/test_queries.py checks the database has them).

Mind for later migrations: a batch ("move and copy") migration of `item` on SQLite drops the table and with
it the FTS triggers, and the views block renaming the copy into place: drop the views and triggers first and
re-create them after, as `downgrade()` and `upgrade()` here do.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DAYS = {
    "sqlite": "julianday({end}) - julianday({start})",
    "postgresql": "EXTRACT(EPOCH FROM ({end} - {start})) / 86400.0",
}

VIEWS = {
    "v_current_status": """
SELECT p.id AS proposal_id, p.title, p.status, p.status_since AS since, p.in_config,
       latest.id AS latest_change_id, latest.kind AS latest_kind, latest.from_status AS latest_from,
       latest.to_status AS latest_to, latest.state AS latest_state,
       (SELECT count(*) FROM evidence e WHERE e.change_id = p.status_change_id) AS evidence,
       coalesce(r.reports, 0) AS reports, r.last_report_at
FROM proposal p
LEFT JOIN status_change latest ON latest.id = (
    SELECT c.id FROM status_change c WHERE c.proposal_id = p.id ORDER BY c.observed_at DESC, c.id DESC LIMIT 1)
LEFT JOIN (
    SELECT m.proposal_id, count(DISTINCT m.item_id) AS reports, max(i.published_at) AS last_report_at
    FROM item_match m JOIN item i ON i.id = m.item_id
    GROUP BY m.proposal_id) r ON r.proposal_id = p.id""",
    "v_status_history": """
SELECT c.id AS change_id, c.proposal_id, c.kind, c.from_status, c.to_status, c.state,
       c.observed_at, c.confirmed_at, c.confidence, c.decided_by, c.note,
       CASE WHEN c.kind = 'analyst' THEN c.observed_at
            WHEN c.decided_by IS NOT NULL THEN (
                SELECT max(ev.created_at) FROM event ev
                WHERE ev.change_id = c.id AND ev.kind IN ('confirmed', 'rejected')) END AS decided_at,
       e.id AS evidence_id, e.source_id, s.name AS source_name, e.status AS reported_status, e.score,
       e.sentence, e.reported_at, e.item_id, i.title AS item_title, i.link
FROM status_change c
LEFT JOIN evidence e ON e.change_id = c.id
LEFT JOIN item i ON i.id = e.item_id
LEFT JOIN source s ON s.id = e.source_id""",
    "v_reports_per_day": """
SELECT m.proposal_id, date(i.published_at) AS day, count(DISTINCT m.item_id) AS reports,
       count(DISTINCT i.source_id) AS sources
FROM item_match m JOIN item i ON i.id = m.item_id
GROUP BY m.proposal_id, date(i.published_at)""",
    "v_stage_durations": """
SELECT t.proposal_id, t.stage, t.change_id, t.entered_at, t.left_at, t.next_stage,
       {days} AS days
FROM (
    SELECT c.proposal_id, c.to_status AS stage, c.id AS change_id,
           coalesce(c.confirmed_at, c.observed_at) AS entered_at,
           LEAD(coalesce(c.confirmed_at, c.observed_at)) OVER (
               PARTITION BY c.proposal_id ORDER BY coalesce(c.confirmed_at, c.observed_at), c.id) AS left_at,
           LEAD(c.to_status) OVER (
               PARTITION BY c.proposal_id ORDER BY coalesce(c.confirmed_at, c.observed_at), c.id) AS next_stage
    FROM status_change c
    WHERE c.state = 'confirmed' AND c.kind IN ('upgrade', 'analyst') AND c.from_status <> c.to_status) t""",
    "v_first_source": """
SELECT c.id AS change_id, c.proposal_id, c.kind, c.from_status, c.to_status, c.state, c.observed_at,
       f.source_id AS first_source_id, s.name AS first_source_name, f.reported_at AS first_reported_at,
       f.item_id, i.title AS item_title, i.link,
       (SELECT count(DISTINCT e2.source_id) FROM evidence e2 WHERE e2.change_id = c.id) AS sources
FROM status_change c
JOIN (
    SELECT e.change_id, e.source_id, e.reported_at, e.item_id,
           ROW_NUMBER() OVER (PARTITION BY e.change_id ORDER BY e.reported_at, e.id) AS seq
    FROM evidence e) f ON f.change_id = c.id AND f.seq = 1
JOIN source s ON s.id = f.source_id
JOIN item i ON i.id = f.item_id""",
}


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    days = DAYS.get(dialect, DAYS["postgresql"]).format(end="t.left_at", start="t.entered_at")
    for name, select in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS\n" + select.replace("{days}", days).strip())
    if dialect == "sqlite":
        for statement in FTS_CREATE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        for statement in FTS_DROP:
            op.execute(statement)
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW {name}")


# --- SQLite only: full-text search over item titles and summaries (FTS5, external content) -----------------
# The index reads its text from `item` (content="item", quoted as Datasette expects to find it), so it stores no
# copy; the triggers tell it of every insert, edit and delete, and 'rebuild' indexes the items already stored.
FTS_CREATE = (
    'CREATE VIRTUAL TABLE item_fts USING fts5(title, summary, content="item", content_rowid="id", '
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER item_fts_insert AFTER INSERT ON item BEGIN "
    "INSERT INTO item_fts(rowid, title, summary) VALUES (new.id, new.title, new.summary); END",
    "CREATE TRIGGER item_fts_delete AFTER DELETE ON item BEGIN "
    "INSERT INTO item_fts(item_fts, rowid, title, summary) VALUES ('delete', old.id, old.title, old.summary); END",
    "CREATE TRIGGER item_fts_update AFTER UPDATE OF title, summary ON item BEGIN "
    "INSERT INTO item_fts(item_fts, rowid, title, summary) VALUES ('delete', old.id, old.title, old.summary); "
    "INSERT INTO item_fts(rowid, title, summary) VALUES (new.id, new.title, new.summary); END",
    "INSERT INTO item_fts(item_fts) VALUES ('rebuild')",
)
FTS_DROP = (
    "DROP TRIGGER item_fts_update",
    "DROP TRIGGER item_fts_delete",
    "DROP TRIGGER item_fts_insert",
    "DROP TABLE item_fts",
)

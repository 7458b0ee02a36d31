"""status_change.happened_at: when the world changed, beside when the monitor saw it

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:00:00.000000

`happened_at` is the publication time of the earliest report behind the change (for an analyst's decision,
when it was decided); `observed_at` stays when the monitor saw it. A backfill of old reports makes the two far
apart. Existing rows take their earliest evidence's `reported_at`, else `observed_at`. The history and
stage-duration views are re-created to carry and use it. This text is frozen, like 0004's.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # noqa: F401
from alembic import op

import monitor.store.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DAYS = {
    "sqlite": "julianday({end}) - julianday({start})",
    "postgresql": "EXTRACT(EPOCH FROM ({end} - {start})) / 86400.0",
}

HISTORY_0004 = """
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
LEFT JOIN source s ON s.id = e.source_id"""

STAGES_0004 = """
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
    WHERE c.state = 'confirmed' AND c.kind IN ('upgrade', 'analyst') AND c.from_status <> c.to_status) t"""

# The new definitions are the old ones with `happened_at` (a frozen edit, like the text above).
HISTORY = HISTORY_0004.replace(
    "c.state,\n       c.observed_at,", "c.state,\n       coalesce(c.happened_at, c.observed_at) AS happened_at,\n       c.observed_at,"
)
STAGES = STAGES_0004.replace("c.confirmed_at, c.observed_at", "c.happened_at, c.observed_at")
assert HISTORY != HISTORY_0004 and STAGES != STAGES_0004

BACKFILL = """
UPDATE status_change SET happened_at = coalesce(
    (SELECT min(e.reported_at) FROM evidence e WHERE e.change_id = status_change.id), observed_at)
WHERE kind <> 'analyst'"""


def _views(history: str, stages: str) -> None:
    dialect = op.get_context().dialect.name
    days = DAYS.get(dialect, DAYS["postgresql"]).format(end="t.left_at", start="t.entered_at")
    op.execute("DROP VIEW v_status_history")
    op.execute("DROP VIEW v_stage_durations")
    op.execute("CREATE VIEW v_status_history AS\n" + history.strip())
    op.execute("CREATE VIEW v_stage_durations AS\n" + stages.replace("{days}", days).strip())


def upgrade() -> None:
    with op.batch_alter_table("status_change", schema=None) as batch_op:
        batch_op.add_column(sa.Column("happened_at", monitor.store.models.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_status_change_happened_at"), ["happened_at"], unique=False)
    op.execute(BACKFILL)
    op.execute("UPDATE status_change SET happened_at = observed_at WHERE kind = 'analyst'")
    _views(HISTORY, STAGES)


def downgrade() -> None:
    _views(HISTORY_0004, STAGES_0004)  # first: the views must not name the column it drops
    with op.batch_alter_table("status_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_status_change_happened_at"))
    op.execute("ALTER TABLE status_change DROP COLUMN happened_at")

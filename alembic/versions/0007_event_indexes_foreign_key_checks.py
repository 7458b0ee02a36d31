"""event indexes, redundant indexes dropped, proposal -> status_change foreign key, CHECK constraints

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 23:50:00.000000

- `event.change_id` and `event.match_id` get an index: with foreign keys on, each match or change that
  `monitor rematch` deletes looked up the events pointing at it by scanning the whole table.
- Six indexes on the leading column of a unique constraint go: the constraint's own index serves the same
  lookups (item.source_id, item_version.item_id, item_match.item_id, evidence.change_id, digest.subscriber_id,
  digest_part.digest_id).
- `proposal.status_change_id` gets its foreign key, deferred to commit: proposal and status_change point at
  each other, so neither can always be written (or cleared) first.
- Every enum-like column gets a CHECK constraint, `ck_<table>_<column>`, built from `monitor.store.models.CHECKED`
  (its values from monitor/vocabulary.py). A database holding a value outside them is refused before anything
  is changed, with the table, column and values named. A later change to those values must re-create the
  constraint in a migration of its own.

On SQLite a CHECK or a foreign key means rebuilding the table (batch "move and copy"). That runs with foreign
keys off (`monitor.db.migration_transaction`, checked with PRAGMA foreign_key_check before commit); the views
and the full-text triggers are dropped first and re-created from their stored SQL after (see 0004).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitor.store.models
from monitor.errors import DatabaseError
from monitor.vocabulary import values

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REDUNDANT = {  # index -> (table, column): each the leading column of a unique constraint
    "ix_item_source_id": ("item", "source_id"),
    "ix_item_version_item_id": ("item_version", "item_id"),
    "ix_item_match_item_id": ("item_match", "item_id"),
    "ix_evidence_change_id": ("evidence", "change_id"),
    "ix_digest_subscriber_id": ("digest", "subscriber_id"),
    "ix_digest_part_digest_id": ("digest_part", "digest_id"),
}
EVENT_INDEXES = {"ix_event_change_id": "change_id", "ix_event_match_id": "match_id"}
PROPOSAL_FK = "fk_proposal_status_change_id_status_change"


def upgrade() -> None:
    _refuse_values_outside_the_checks()
    # A pointer to a change that is gone would fail the new key; it can only mean "no change".
    op.execute(
        "UPDATE proposal SET status_change_id = NULL WHERE status_change_id NOT IN (SELECT id FROM status_change)"
    )
    saved = _drop_views_and_triggers()
    for name, (table, _column) in REDUNDANT.items():
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_index(op.f(name))
    with op.batch_alter_table("event") as batch_op:
        for name, column in EVENT_INDEXES.items():
            batch_op.create_index(op.f(name), [column], unique=False)
    for table, columns in monitor.store.models.CHECKED.items():
        with op.batch_alter_table(table) as batch_op:
            for column, kind in columns.items():
                batch_op.create_check_constraint(op.f(f"ck_{table}_{column}"), monitor.store.models.check_sql(column, kind))
    with op.batch_alter_table("proposal") as batch_op:
        batch_op.create_foreign_key(
            op.f(PROPOSAL_FK), "status_change", ["status_change_id"], ["id"], deferrable=True, initially="DEFERRED"
        )
    _restore(saved)


def downgrade() -> None:
    saved = _drop_views_and_triggers()
    with op.batch_alter_table("proposal") as batch_op:
        batch_op.drop_constraint(op.f(PROPOSAL_FK), type_="foreignkey")
    for table, columns in reversed(monitor.store.models.CHECKED.items()):
        with op.batch_alter_table(table) as batch_op:
            for column in reversed(columns):
                batch_op.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")
    with op.batch_alter_table("event") as batch_op:
        for name in reversed(EVENT_INDEXES):
            batch_op.drop_index(op.f(name))
    for name, (table, column) in REDUNDANT.items():
        with op.batch_alter_table(table) as batch_op:
            batch_op.create_index(op.f(name), [column], unique=False)
    _restore(saved)


def _refuse_values_outside_the_checks() -> None:
    bind = op.get_bind()
    problems = []
    for table, columns in monitor.store.models.CHECKED.items():
        for column, kind in columns.items():
            rows = bind.execute(
                sa.select(sa.column(column), sa.func.count())
                .select_from(sa.table(table))
                .where(sa.column(column).not_in(values(kind)))  # NOT IN is never true for a null
                .group_by(sa.column(column))
                .order_by(sa.column(column))
            ).all()
            if rows:
                found = ", ".join(f"{value!r} ({count} row{'s' if count != 1 else ''})" for value, count in rows)
                problems.append(f"{table}.{column} holds {found}")
    if problems:
        raise DatabaseError(
            "cannot migrate to 0007: values outside the allowed ones (monitor/vocabulary.py): "
            + "; ".join(problems)
            + "; correct or delete those rows first"
        )


def _drop_views_and_triggers() -> list[str]:
    """SQLite: drop the views and triggers (returning their SQL), which a table rebuild would trip over."""
    if op.get_context().dialect.name != "sqlite":
        return []
    bind = op.get_bind()
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise DatabaseError("migration 0007 rebuilds tables: run it with foreign keys off (monitor db upgrade does)")
    rows = bind.exec_driver_sql(
        "SELECT type, name, sql FROM sqlite_master WHERE type IN ('view', 'trigger') AND sql IS NOT NULL ORDER BY rowid"
    ).all()
    for kind, name, _sql in reversed(rows):
        op.execute(f'DROP {kind.upper()} "{name}"')
    return [sql for _kind, _name, sql in rows]


def _restore(saved: list[str]) -> None:
    for sql in saved:
        op.execute(sql)

"""feed leases, digest claims, digested events, PostgreSQL full-text search

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 20:40:00.000000

For several workers on one database: a feed is leased by the worker polling it (`source.lease_owner`,
`lease_expires_at`), a digest by the sender sending it (`digest.claimed_by`, `claimed_until`), and
`digest_event` records which events each subscriber's digests took in, so an event that commits after a
higher id is still told. On PostgreSQL only, a GIN index for full-text search over item titles and summaries
(SQLite has its FTS5 index from 0004).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import monitor.store.models


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The expression monitor/queries.py searches; the index is used only when the query repeats it exactly.
PG_FTS_INDEX = (
    "CREATE INDEX item_fts_pg ON item USING gin "
    "(to_tsvector('simple'::regconfig, coalesce(title, '') || ' ' || coalesce(summary, '')))"
)


def upgrade() -> None:
    op.create_table('digest_event',
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('digest_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['digest_id'], ['digest.id'], name=op.f('fk_digest_event_digest_id_digest')),
    sa.ForeignKeyConstraint(['event_id'], ['event.id'], name=op.f('fk_digest_event_event_id_event')),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], name=op.f('fk_digest_event_subscriber_id_subscriber')),
    sa.PrimaryKeyConstraint('subscriber_id', 'event_id', name=op.f('pk_digest_event'))
    )
    with op.batch_alter_table('digest_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_digest_event_digest_id'), ['digest_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_digest_event_event_id'), ['event_id'], unique=False)

    with op.batch_alter_table('digest', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))
        batch_op.add_column(sa.Column('claimed_until', monitor.store.models.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('source', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))
        batch_op.add_column(sa.Column('lease_expires_at', monitor.store.models.UTCDateTime(timezone=True), nullable=True))

    if op.get_context().dialect.name == "postgresql":
        op.execute(PG_FTS_INDEX)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP INDEX item_fts_pg")
    # ALTER TABLE ... DROP COLUMN in place (SQLite 3.35+): a move-and-copy of `source` would trip over the
    # foreign keys that point at it, and of `item`'s neighbours over the views (see 0004).
    with op.batch_alter_table('source', schema=None, recreate="never") as batch_op:
        batch_op.drop_column('lease_expires_at')
        batch_op.drop_column('lease_owner')

    with op.batch_alter_table('digest', schema=None, recreate="never") as batch_op:
        batch_op.drop_column('claimed_until')
        batch_op.drop_column('claimed_by')

    with op.batch_alter_table('digest_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_digest_event_event_id'))
        batch_op.drop_index(batch_op.f('ix_digest_event_digest_id'))

    op.drop_table('digest_event')

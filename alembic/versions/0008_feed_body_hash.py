"""source.body_hash: the hash of the last feed body stored, so an identical body is not parsed again

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 23:45:00.000000

A server without validators (no ETag, no Last-Modified) answers 200 with the same bytes each time; the poller
keeps a SHA-256 of the body it last parsed and stored (with the URL and the headers that steer parsing), and
treats the same digest again as "not modified".
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op


revision: str = '0008'
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('source', schema=None) as batch_op:
        batch_op.add_column(sa.Column('body_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN in place (SQLite 3.35+), as in 0006: a copy of `source` would trip over the
    # foreign keys that point at it.
    with op.batch_alter_table('source', schema=None, recreate="never") as batch_op:
        batch_op.drop_column('body_hash')

"""poll_run.config_digest: the feeds.yaml a run synced, so that a cron run with nothing due can tell at once

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 02:30:00.000000

Each `monitor poll` first makes the `source` and `proposal` tables agree with feeds.yaml. It now records the
SHA-256 of the file it synced (with the code's version) on its `poll_run`; a later run whose file has the same
digest, on a database where no feed is due, leased or waiting to be indexed, has nothing to do and is answered
from the SQLite file alone (`monitor.store.idle`). Null on the runs before, which no file matches.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("poll_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("config_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN in place (SQLite 3.35+), as in 0006 and 0008
    with op.batch_alter_table("poll_run", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("config_digest")

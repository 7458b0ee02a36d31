"""Drop ix_item_canonical_url: no query reads it, and keeping it cost a third of a new item's insert

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 19:15:00.000000

Stories are found by their canonical URL in `story` (unique there); `item.canonical_url` is only ever read
with its row. Its index took 0.15 s of the 0.45 s SQLite spent inserting a first poll's 15,000 items, in random
order of URL, and 2 MB of every 52 MB. A plain DROP INDEX on both databases: nothing to copy.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_item_canonical_url", table_name="item")


def downgrade() -> None:
    op.create_index("ix_item_canonical_url", "item", ["canonical_url"], unique=False)

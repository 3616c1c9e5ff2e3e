"""Import jobs count every kind of line (updated, transferred, released, skipped) and beat.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTS = ("updated_count", "transferred_count", "released_count", "skipped_count")


def upgrade() -> None:
    # batch mode: SQLite cannot add NOT NULL columns in place; plain ALTER elsewhere.
    with op.batch_alter_table("import_jobs") as batch:
        for name in _COUNTS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("skipped", sa.Text(), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_import_jobs_status", "import_jobs", ["status"])


def downgrade() -> None:
    op.drop_index("ix_import_jobs_status", table_name="import_jobs")
    with op.batch_alter_table("import_jobs") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("skipped")
        for name in reversed(_COUNTS):
            batch.drop_column(name)

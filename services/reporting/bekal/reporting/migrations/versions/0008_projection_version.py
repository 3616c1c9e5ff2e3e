"""The projections' version: one more with every transaction that changes them, so that a
report counted at one version can be answered again until the next (the indicators' cache).
Its own table, not a column of ``projection_state``: it counts transactions, not facts, so
it differs between two generations built from the same events (applied in other batches).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    version = op.create_table(
        "projection_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_projection_version"),
    )
    op.bulk_insert(version, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("projection_version")

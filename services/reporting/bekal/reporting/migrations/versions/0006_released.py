"""Participants: ``released`` apart from the date, so an erased person's row keeps the one
without the other.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("participants") as batch:
        batch.add_column(
            sa.Column("released", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute("UPDATE participants SET released = true WHERE released_on IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("participants") as batch:
        batch.drop_column("released")

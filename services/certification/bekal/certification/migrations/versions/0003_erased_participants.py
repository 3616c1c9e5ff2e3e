"""Erased participants: a completion that arrives after the erasure issues nothing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erased_participants",
        sa.Column("participant_id", sa.String(36), nullable=False),
        sa.Column("erased_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("participant_id", name="pk_erased_participants"),
    )


def downgrade() -> None:
    op.drop_table("erased_participants")

"""Sessions are opened for nominations (opened_on); merged-away participant ids are remembered.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("opened_on", sa.Date(), nullable=True))
    op.create_table(
        "merged_participants",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("surviving_id", sa.String(36), nullable=False),
        sa.Column("merged_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_merged_participants"),
    )
    op.create_index("ix_merged_participants_surviving_id", "merged_participants", ["surviving_id"])


def downgrade() -> None:
    op.drop_table("merged_participants")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("opened_on")

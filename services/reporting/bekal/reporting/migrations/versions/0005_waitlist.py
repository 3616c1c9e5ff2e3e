"""Waiting-list entries (demand on full sessions).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "waitlist_entries",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("participant_id", sa.String(36), nullable=False),
        sa.Column("waitlisted_on", sa.Date(), nullable=True),
        sa.Column("left_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_waitlist_entries"),
    )
    op.create_index("ix_waitlist_entries_session_id", "waitlist_entries", ["session_id"])
    op.create_index("ix_waitlist_entries_participant_id", "waitlist_entries", ["participant_id"])


def downgrade() -> None:
    op.drop_index("ix_waitlist_entries_participant_id", table_name="waitlist_entries")
    op.drop_index("ix_waitlist_entries_session_id", table_name="waitlist_entries")
    op.drop_table("waitlist_entries")

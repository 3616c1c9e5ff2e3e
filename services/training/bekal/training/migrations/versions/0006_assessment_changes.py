"""A correction of a unit's result after completion keeps what it was, who changed it and why.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assessment_changes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("enrollment_id", sa.String(36), nullable=False),
        sa.Column("unit_code", sa.String(50), nullable=False),
        sa.Column("previous_result", sa.String(20), nullable=True),
        sa.Column("result", sa.String(20), nullable=False),
        sa.Column("assessor", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_assessment_changes"),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name="fk_assessment_changes_session_id_sessions"
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name="fk_assessment_changes_enrollment_id_enrollments",
        ),
    )
    op.create_index("ix_assessment_changes_session_id", "assessment_changes", ["session_id"])
    op.create_index("ix_assessment_changes_enrollment_id", "assessment_changes", ["enrollment_id"])


def downgrade() -> None:
    op.drop_table("assessment_changes")

"""Waiting list and overrides, attendance history, graduate readiness and follow-ups, absences.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("participants") as batch:
        batch.add_column(sa.Column("absent_from", sa.Date(), nullable=True))
        batch.add_column(sa.Column("anonymised_on", sa.Date(), nullable=True))
    with op.batch_alter_table("enrollments") as batch:
        batch.add_column(sa.Column("override_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("override_by", sa.String(200), nullable=True))

    op.create_table(
        "attendance_changes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("enrollment_id", sa.String(36), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("previous_status", sa.String(10), nullable=True),
        sa.Column("status", sa.String(10), nullable=True),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("changed_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_attendance_changes"),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name="fk_attendance_changes_session_id_sessions"
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name="fk_attendance_changes_enrollment_id_enrollments",
        ),
    )
    op.create_index("ix_attendance_changes_session_id", "attendance_changes", ["session_id"])
    op.create_index("ix_attendance_changes_enrollment_id", "attendance_changes", ["enrollment_id"])

    op.create_table(
        "readiness_checklists",
        sa.Column("enrollment_id", sa.String(36), nullable=False),
        sa.Column("participant_id", sa.String(36), nullable=False),
        sa.Column("identity_card", sa.Boolean(), nullable=False),
        sa.Column("bank_account", sa.Boolean(), nullable=False),
        sa.Column("nib", sa.Boolean(), nullable=False),
        sa.Column("starter_tools", sa.Boolean(), nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("recorded_on", sa.Date(), nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("enrollment_id", name="pk_readiness_checklists"),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name="fk_readiness_checklists_enrollment_id_enrollments",
        ),
    )
    op.create_index(
        "ix_readiness_checklists_participant_id", "readiness_checklists", ["participant_id"]
    )

    op.create_table(
        "follow_ups",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("enrollment_id", sa.String(36), nullable=False),
        sa.Column("participant_id", sa.String(36), nullable=False),
        sa.Column("checkpoint_months", sa.Integer(), nullable=False),
        sa.Column("situation", sa.String(40), nullable=False),
        sa.Column("recorded_on", sa.Date(), nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_follow_ups"),
        sa.ForeignKeyConstraint(
            ["enrollment_id"], ["enrollments.id"], name="fk_follow_ups_enrollment_id_enrollments"
        ),
        sa.UniqueConstraint(
            "enrollment_id", "checkpoint_months", name="uq_follow_ups_enrollment_id"
        ),
    )
    op.create_index("ix_follow_ups_enrollment_id", "follow_ups", ["enrollment_id"])
    op.create_index("ix_follow_ups_participant_id", "follow_ups", ["participant_id"])


def downgrade() -> None:
    op.drop_table("follow_ups")
    op.drop_table("readiness_checklists")
    op.drop_table("attendance_changes")
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("override_by")
        batch.drop_column("override_reason")
    with op.batch_alter_table("participants") as batch:
        batch.drop_column("anonymised_on")
        batch.drop_column("absent_from")

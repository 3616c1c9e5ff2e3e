"""Training's first schema: platform tables, registry replica, programs, sessions and their records.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bekal.shared.migrations import create_platform_tables, drop_platform_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_platform_tables(op.get_bind())

    op.create_table(
        "facilities",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("code", sa.String(50), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("province", sa.String(100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("as_of", _TZ, nullable=True),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_facilities"),
    )
    op.create_index("ix_facilities_code", "facilities", ["code"])
    op.create_index("ix_facilities_province", "facilities", ["province"])

    op.create_table(
        "participants",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("sex", sa.String(1), nullable=False),
        sa.Column("birth_year", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("admission_date", sa.Date(), nullable=False),
        sa.Column("expected_release_date", sa.Date(), nullable=True),
        sa.Column("released_on", sa.Date(), nullable=True),
        sa.Column("release_kind", sa.String(20), nullable=True),
        sa.Column("as_of", _TZ, nullable=True),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_participants"),
    )
    op.create_index("ix_participants_facility_id", "participants", ["facility_id"])
    op.create_index("ix_participants_status", "participants", ["status"])

    op.create_table(
        "programs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("code", sa.String(50), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("sector", sa.String(100), nullable=False),
        sa.Column("partner", sa.String(300), nullable=True),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.Column("min_attendance_share", sa.Float(), nullable=False),
        sa.Column("competency_units", sa.JSON(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_programs"),
        sa.UniqueConstraint("code", name="uq_programs_code"),
    )

    op.create_table(
        "sessions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("program_id", sa.String(36), nullable=False),
        sa.Column("program_version", sa.Integer(), nullable=False),
        sa.Column("program_code", sa.String(50), nullable=False),
        sa.Column("program_title", sa.String(300), nullable=False),
        sa.Column("sector", sa.String(100), nullable=False),
        sa.Column("partner", sa.String(300), nullable=True),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.Column("min_attendance_share", sa.Float(), nullable=False),
        sa.Column("competency_units", sa.JSON(), nullable=False),
        sa.Column("facility_id", sa.String(36), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("instructors", sa.JSON(), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=True),
        sa.Column("completed_on", sa.Date(), nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name="fk_sessions_program_id_programs"
        ),
    )
    op.create_index("ix_sessions_program_id", "sessions", ["program_id"])
    op.create_index("ix_sessions_facility_id", "sessions", ["facility_id"])
    op.create_index("ix_sessions_status", "sessions", ["status"])

    op.create_table(
        "enrollments",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("participant_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("enrolled_on", sa.Date(), nullable=False),
        sa.Column("withdrawal_reason", sa.String(30), nullable=True),
        sa.Column("withdrawn_on", sa.Date(), nullable=True),
        sa.Column("not_completed_reason", sa.String(40), nullable=True),
        sa.Column("attendance_share", sa.Float(), nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_enrollments"),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name="fk_enrollments_session_id_sessions"
        ),
        sa.UniqueConstraint("session_id", "participant_id", name="uq_enrollments_session_id"),
    )
    op.create_index("ix_enrollments_session_id", "enrollments", ["session_id"])
    op.create_index("ix_enrollments_participant_id", "enrollments", ["participant_id"])
    op.create_index("ix_enrollments_status", "enrollments", ["status"])

    op.create_table(
        "attendance_records",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("enrollment_id", sa.String(36), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("recorded_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_attendance_records"),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name="fk_attendance_records_session_id_sessions"
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name="fk_attendance_records_enrollment_id_enrollments",
        ),
        sa.UniqueConstraint("enrollment_id", "day", name="uq_attendance_records_enrollment_id"),
    )
    op.create_index("ix_attendance_records_session_id", "attendance_records", ["session_id"])
    op.create_index("ix_attendance_records_enrollment_id", "attendance_records", ["enrollment_id"])

    op.create_table(
        "assessments",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("enrollment_id", sa.String(36), nullable=False),
        sa.Column("unit_code", sa.String(50), nullable=False),
        sa.Column("result", sa.String(20), nullable=False),
        sa.Column("assessor", sa.Text(), nullable=False),
        sa.Column("assessed_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_assessments"),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name="fk_assessments_session_id_sessions"
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"], ["enrollments.id"], name="fk_assessments_enrollment_id_enrollments"
        ),
        sa.UniqueConstraint("enrollment_id", "unit_code", name="uq_assessments_enrollment_id"),
    )
    op.create_index("ix_assessments_session_id", "assessments", ["session_id"])
    op.create_index("ix_assessments_enrollment_id", "assessments", ["enrollment_id"])


def downgrade() -> None:
    for table in (
        "assessments",
        "attendance_records",
        "enrollments",
        "sessions",
        "programs",
        "participants",
        "facilities",
    ):
        op.drop_table(table)
    drop_platform_tables(op.get_bind())

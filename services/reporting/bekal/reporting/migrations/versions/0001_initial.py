"""Reporting projections: facilities, programs, sessions, enrollments, certificates, state.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bekal.shared.migrations import create_platform_tables, drop_platform_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_platform_tables(op.get_bind())

    op.create_table(
        "facilities",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("code", sa.String(50), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("facility_class", sa.String(10), nullable=False),
        sa.Column("province", sa.String(100), nullable=False),
        sa.Column("regional_office", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("as_of", _TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_facilities"),
    )
    op.create_index("ix_facilities_province", "facilities", ["province"])

    op.create_table(
        "programs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(50), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("sector", sa.String(100), nullable=False),
        sa.Column("partner", sa.String(200), nullable=True),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_programs"),
    )

    op.create_table(
        "sessions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("program_id", sa.String(36), nullable=True),
        sa.Column("program_version", sa.Integer(), nullable=True),
        sa.Column("facility_id", sa.String(36), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
    )
    op.create_index("ix_sessions_program_id", "sessions", ["program_id"])
    op.create_index("ix_sessions_facility_id", "sessions", ["facility_id"])
    op.create_index("ix_sessions_year", "sessions", ["year"])

    op.create_table(
        "enrollments",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("participant_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("withdrawal_reason", sa.String(30), nullable=True),
        sa.Column("not_completed_reason", sa.String(40), nullable=True),
        sa.Column("program_id", sa.String(36), nullable=True),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_enrollments"),
    )
    op.create_index("ix_enrollments_session_id", "enrollments", ["session_id"])
    op.create_index("ix_enrollments_participant_id", "enrollments", ["participant_id"])

    op.create_table(
        "certificates",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("number", sa.String(50), nullable=False),
        sa.Column("enrollment_id", sa.String(36), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("participant_id", sa.String(36), nullable=False),
        sa.Column("program_id", sa.String(36), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_certificates"),
        sa.UniqueConstraint("enrollment_id", name="uq_certificates_enrollment_id"),
    )
    op.create_index("ix_certificates_session_id", "certificates", ["session_id"])

    state = op.create_table(
        "projection_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data_as_of", _TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_projection_state"),
    )
    # The one row exists from the start, so handlers only ever update it (no insert race).
    op.bulk_insert(state, [{"id": 1, "data_as_of": None}])


def downgrade() -> None:
    op.drop_table("projection_state")
    op.drop_index("ix_certificates_session_id", table_name="certificates")
    op.drop_table("certificates")
    op.drop_index("ix_enrollments_participant_id", table_name="enrollments")
    op.drop_index("ix_enrollments_session_id", table_name="enrollments")
    op.drop_table("enrollments")
    op.drop_index("ix_sessions_year", table_name="sessions")
    op.drop_index("ix_sessions_facility_id", table_name="sessions")
    op.drop_index("ix_sessions_program_id", table_name="sessions")
    op.drop_table("sessions")
    op.drop_table("programs")
    op.drop_index("ix_facilities_province", table_name="facilities")
    op.drop_table("facilities")
    drop_platform_tables(op.get_bind())

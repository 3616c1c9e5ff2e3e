"""Initial schema: platform tables, certificates, yearly counters, signing keys.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bekal.shared.migrations import create_platform_tables, drop_platform_tables

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_platform_tables(op.get_bind())
    op.create_table(
        "certificates",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("enrollment_id", sa.String(36), nullable=False),
        sa.Column("participant_id", sa.String(36), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("program_id", sa.String(36), nullable=False),
        sa.Column("program_code", sa.String(100), nullable=False),
        sa.Column("program_title", sa.String(300), nullable=False),
        sa.Column("recipient_name", sa.String(300), nullable=False),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verification_code", sa.String(64), nullable=False),
        sa.Column("credential_jws", sa.Text(), nullable=False),
        sa.Column("signing_kid", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("revoked_on", sa.Date(), nullable=True),
        sa.Column("revocation_reason", sa.Text(), nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
        sa.Column("source_event_id", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_certificates"),
        sa.UniqueConstraint("enrollment_id", name="uq_certificates_enrollment_id"),
        sa.UniqueConstraint("number", name="uq_certificates_number"),
        sa.UniqueConstraint("verification_code", name="uq_certificates_verification_code"),
    )
    op.create_index("ix_certificates_participant_id", "certificates", ["participant_id"])
    op.create_index("ix_certificates_session_id", "certificates", ["session_id"])
    op.create_index("ix_certificates_issued_at", "certificates", ["issued_at", "id"])
    op.create_table(
        "certificate_counters",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name="pk_certificate_counters"),
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("algorithm", sa.String(20), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kid", name="pk_signing_keys"),
    )


def downgrade() -> None:
    op.drop_table("signing_keys")
    op.drop_table("certificate_counters")
    op.drop_index("ix_certificates_issued_at", table_name="certificates")
    op.drop_index("ix_certificates_session_id", table_name="certificates")
    op.drop_index("ix_certificates_participant_id", table_name="certificates")
    op.drop_table("certificates")
    drop_platform_tables(op.get_bind())

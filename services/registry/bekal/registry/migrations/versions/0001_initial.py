"""Initial registry schema: platform messaging tables, facilities, inmates, inmate movements.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bekal.shared.migrations import create_platform_tables, drop_platform_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_facilities"),
        sa.UniqueConstraint("code", name="uq_facilities_code"),
    )
    op.create_index("ix_facilities_province", "facilities", ["province"])

    op.create_table(
        "inmates",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("registration_number", sa.String(50), nullable=False),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("nik_hash", sa.String(64), nullable=False),
        sa.Column("sex", sa.String(1), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("education_level", sa.String(50), nullable=True),
        sa.Column("facility_id", sa.String(36), nullable=False),
        sa.Column("admission_date", sa.Date(), nullable=False),
        sa.Column("expected_release_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("consent_training", sa.Boolean(), nullable=False),
        sa.Column("consent_data_sharing", sa.Boolean(), nullable=False),
        sa.Column("consent_recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consent_recorded_by", sa.String(200), nullable=True),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("shared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("release_kind", sa.String(20), nullable=True),
        sa.Column("released_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inmates"),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facilities.id"], name="fk_inmates_facility_id_facilities"
        ),
        sa.UniqueConstraint("registration_number", name="uq_inmates_registration_number"),
        sa.UniqueConstraint("nik_hash", name="uq_inmates_nik_hash"),
    )
    op.create_index("ix_inmates_facility_id", "inmates", ["facility_id"])
    op.create_index("ix_inmates_status", "inmates", ["status"])

    op.create_table(
        "inmate_movements",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("inmate_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("from_facility_id", sa.String(36), nullable=False),
        sa.Column("to_facility_id", sa.String(36), nullable=True),
        sa.Column("release_kind", sa.String(20), nullable=True),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inmate_movements"),
        sa.ForeignKeyConstraint(
            ["inmate_id"], ["inmates.id"], name="fk_inmate_movements_inmate_id_inmates"
        ),
        sa.ForeignKeyConstraint(
            ["from_facility_id"],
            ["facilities.id"],
            name="fk_inmate_movements_from_facility_id_facilities",
        ),
        sa.ForeignKeyConstraint(
            ["to_facility_id"],
            ["facilities.id"],
            name="fk_inmate_movements_to_facility_id_facilities",
        ),
    )
    op.create_index("ix_inmate_movements_inmate_id", "inmate_movements", ["inmate_id"])


def downgrade() -> None:
    op.drop_index("ix_inmate_movements_inmate_id", table_name="inmate_movements")
    op.drop_table("inmate_movements")
    op.drop_index("ix_inmates_status", table_name="inmates")
    op.drop_index("ix_inmates_facility_id", table_name="inmates")
    op.drop_table("inmates")
    op.drop_index("ix_facilities_province", table_name="facilities")
    op.drop_table("facilities")
    drop_platform_tables(op.get_bind())

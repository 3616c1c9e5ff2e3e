"""Absences, deaths, merges, consent withdrawal, erasure; the audit trail; import jobs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _inmate_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("search_name", sa.String(200), nullable=True),
        sa.Column("nik_encrypted", sa.String(120), nullable=True),
        sa.Column("absence_reason", sa.String(20), nullable=True),
        sa.Column("absent_from", sa.Date(), nullable=True),
        sa.Column("expected_return", sa.Date(), nullable=True),
        sa.Column("died_on", sa.Date(), nullable=True),
        sa.Column("merged_into_id", sa.String(36), nullable=True),
        sa.Column("consent_withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
    )


def upgrade() -> None:
    # batch mode: SQLite cannot add columns with constraints in place; plain ALTER elsewhere.
    with op.batch_alter_table("inmates") as batch:
        for column in _inmate_columns():
            batch.add_column(column)
    with op.batch_alter_table("inmate_movements") as batch:
        batch.add_column(sa.Column("absence_reason", sa.String(20), nullable=True))
    op.create_index("ix_inmates_search_name", "inmates", ["search_name"])
    _fill_search_names()

    op.create_table(
        "audit_entries",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("roles", sa.String(200), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("inmate_id", sa.String(36), nullable=True),
        sa.Column("facility_id", sa.String(36), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_entries"),
    )
    op.create_index("ix_audit_entries_actor", "audit_entries", ["actor"])
    op.create_index("ix_audit_entries_inmate_id_at", "audit_entries", ["inmate_id", "at"])

    op.create_table(
        "import_jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("filename", sa.String(300), nullable=True),
        sa.Column("total_lines", sa.Integer(), nullable=False),
        sa.Column("processed_lines", sa.Integer(), nullable=False),
        sa.Column("created_count", sa.Integer(), nullable=False),
        sa.Column("unchanged_count", sa.Integer(), nullable=False),
        sa.Column("invalid_count", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Text(), nullable=True),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_import_jobs"),
    )


def _fill_search_names() -> None:
    # Rows registered before this revision; new rows get it from the application.
    from bekal.registry.domain import search_key

    inmates = sa.table(
        "inmates",
        sa.column("id", sa.String),
        sa.column("full_name", sa.String),
        sa.column("search_name", sa.String),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(inmates.c.id, inmates.c.full_name)).all()
    for row_id, name in rows:
        bind.execute(
            inmates.update().where(inmates.c.id == row_id).values(search_name=search_key(name))
        )


def downgrade() -> None:
    op.drop_table("import_jobs")
    op.drop_index("ix_audit_entries_inmate_id_at", table_name="audit_entries")
    op.drop_index("ix_audit_entries_actor", table_name="audit_entries")
    op.drop_table("audit_entries")
    op.drop_index("ix_inmates_search_name", table_name="inmates")
    with op.batch_alter_table("inmate_movements") as batch:
        batch.drop_column("absence_reason")
    with op.batch_alter_table("inmates") as batch:
        for column in reversed(_inmate_columns()):
            batch.drop_column(column.name)

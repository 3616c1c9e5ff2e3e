"""Projection generations (for replay with switch-over) and the audit trail of target edits.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    generations = op.create_table(
        "projection_generations",
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("location", sa.String(500), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", _TZ, nullable=True),
        sa.Column("switched_at", _TZ, nullable=True),
        sa.Column("retired_at", _TZ, nullable=True),
        sa.Column("records_done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("records_total", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.String(1000), nullable=True),
        sa.Column("switch_offsets", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("number", name="pk_projection_generations"),
    )
    # Generation 0 is the projection tables of the service's own database, live until a rebuild.
    op.bulk_insert(generations, [{"number": 0, "location": None, "status": "live"}])
    op.create_table(
        "target_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("changed_at", _TZ, nullable=False),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sa.Column("old_annual", sa.Integer(), nullable=True),
        sa.Column("old_cumulative", sa.Integer(), nullable=True),
        sa.Column("old_note", sa.String(300), nullable=True),
        sa.Column("new_annual", sa.Integer(), nullable=True),
        sa.Column("new_cumulative", sa.Integer(), nullable=True),
        sa.Column("new_note", sa.String(300), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_target_changes"),
    )
    op.create_index("ix_target_changes_year", "target_changes", ["year"])


def downgrade() -> None:
    op.drop_index("ix_target_changes_year", table_name="target_changes")
    op.drop_table("target_changes")
    op.drop_table("projection_generations")

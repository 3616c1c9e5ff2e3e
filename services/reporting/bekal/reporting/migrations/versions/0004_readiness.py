"""Readiness checklist on enrolments: ready to trade at release.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.add_column(sa.Column("ready_to_trade", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("readiness_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("readiness_on")
        batch.drop_column("ready_to_trade")

"""Temporary absences are kept per period (from, back on), not only as the current state.

A day's attendance is judged by whether the person was away on that day; with only the current
state, a day recorded after the person came back started as present. An absence open when this
runs becomes an open period.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 13:00:00
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    absences = op.create_table(
        "participant_absences",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("participant_id", sa.String(36), nullable=False),
        sa.Column("absent_from", sa.Date(), nullable=False),
        sa.Column("returned_on", sa.Date(), nullable=True),
        sa.Column("reason", sa.String(20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_participant_absences"),
    )
    op.create_index(
        "ix_participant_absences_participant_id", "participant_absences", ["participant_id"]
    )
    away = op.get_bind().execute(
        sa.text("SELECT id, absent_from FROM participants WHERE absent_from IS NOT NULL")
    )
    now = datetime.now(UTC)
    rows = [
        {
            "id": str(uuid.uuid4()),
            "participant_id": pid,
            # SQLite hands a date back as text from a plain statement.
            "absent_from": since if isinstance(since, date) else date.fromisoformat(str(since)),
            "returned_on": None,
            "reason": None,
            "created_at": now,
        }
        for pid, since in away
    ]
    if rows:
        op.bulk_insert(absences, rows)


def downgrade() -> None:
    op.drop_table("participant_absences")

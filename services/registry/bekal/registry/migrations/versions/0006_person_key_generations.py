"""Generations of a person's data key: a consent withdrawal destroys the live key, and a later
consent shares the person again under a key of the next generation.

``person_keys.generation`` is the live key's generation; every key made before this revision is
the 1st (its kid the participant id, as before). ``destroyed_person_keys`` remembers which
generations were destroyed (no secret), so that no kid is issued twice and an erasure
tombstones each one.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch mode: SQLite cannot add NOT NULL columns in place; plain ALTER elsewhere.
    with op.batch_alter_table("person_keys") as batch:
        batch.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="1"))
    op.create_table(
        "destroyed_person_keys",
        sa.Column("participant_id", sa.String(36), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("participant_id", "generation", name="pk_destroyed_person_keys"),
    )


def downgrade() -> None:
    op.drop_table("destroyed_person_keys")
    with op.batch_alter_table("person_keys") as batch:
        batch.drop_column("generation")

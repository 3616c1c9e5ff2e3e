"""Returns from temporary absences are kept, so an absence that arrives after its return is
closed by it.

An absence retried from the dead-letter topic after the person's return stayed open for good:
the return had found no open absence to close. The returns already applied are not known
here; the absences they closed keep their ``returned_on``, which is filled in below.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "participant_returns",
        sa.Column("participant_id", sa.String(36), nullable=False),
        sa.Column("returned_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("participant_id", "returned_on", name="pk_participant_returns"),
    )
    # The returns that closed an absence, so an absence replayed or retried later meets them.
    op.execute(
        "INSERT INTO participant_returns (participant_id, returned_on) "
        "SELECT DISTINCT participant_id, returned_on FROM participant_absences "
        "WHERE returned_on IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("participant_returns")

"""Sessions can be cancelled with a reason.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 00:00:01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("cancelled_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("cancellation_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("cancellation_reason")
        batch.drop_column("cancelled_on")

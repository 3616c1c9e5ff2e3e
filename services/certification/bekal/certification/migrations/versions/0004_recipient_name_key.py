"""The holder's name as people type it, for the staff search (accents, case, apostrophes).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 00:00:00

Existing rows get the key from the same folding the public verification uses
(``bekal.certification.domain.typed_name_key``): one folding, never a copy of it in SQL.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bekal.certification.domain import typed_name_key

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "certificates",
        sa.Column("recipient_name_key", sa.Text(), nullable=False, server_default=""),
    )
    certificates = sa.table(
        "certificates",
        sa.column("id", sa.String(36)),
        sa.column("recipient_name", sa.String(300)),
        sa.column("recipient_name_key", sa.Text()),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(certificates.c.id, certificates.c.recipient_name)).all()
    for row in rows:
        bind.execute(
            certificates.update()
            .where(certificates.c.id == row.id)
            .values(recipient_name_key=typed_name_key(row.recipient_name))
        )


def downgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("recipient_name_key")

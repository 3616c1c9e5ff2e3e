"""Erased people: the tombstone and the anonymous id keyed with a secret the database does not
hold, so no row links a participant id to what is left of the person.

The secret (derived from PUBLICATION_SECRET) is the running service's, not the migration's: this
step only adds ``anonymous_id``, null on every tombstone it finds. The service re-keys those rows
when it starts, before it applies any event (``people.key_old_tombstones``): their raw
participant ids go, and the facts filed under the old unkeyed anonymous ids move to the keyed
ones. A ``bekal rebuild`` of reporting derives the same from the topics.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("erased_participants") as batch:
        batch.add_column(sa.Column("anonymous_id", sa.String(36), nullable=True))


def downgrade() -> None:
    # Keyed tombstones mean nothing to the code before this revision: a rebuild after the
    # downgrade derives its own.
    with op.batch_alter_table("erased_participants") as batch:
        batch.drop_column("anonymous_id")

"""The outbox indexes only the rows waiting for the relay (``ix_outbox_pending``), in place of
its two indexes on ``sent_at``: marking a row sent no longer writes index entries for it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from bekal.shared.migrations import index_pending_outbox, unindex_pending_outbox

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    index_pending_outbox()


def downgrade() -> None:
    unindex_pending_outbox()

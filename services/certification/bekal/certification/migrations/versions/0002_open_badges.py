"""Open Badges credentials, status lists, corrections and erasure.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 00:00:00
"""

import base64
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite cannot drop a constraint in place, so the table is rebuilt there.
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("replaces_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("replaced_by_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("revocation_kind", sa.String(16), nullable=True))
        batch.add_column(sa.Column("sector", sa.String(100), nullable=True))
        batch.add_column(sa.Column("partner", sa.String(300), nullable=True))
        batch.add_column(sa.Column("competency_units", sa.Text(), nullable=True))
        batch.add_column(sa.Column("status_list", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("status_list_index", sa.Integer(), nullable=True))
        batch.drop_constraint("uq_certificates_enrollment_id", type_="unique")
        batch.create_unique_constraint(
            "uq_certificates_enrollment_id_revision", ["enrollment_id", "revision"]
        )
    op.create_table(
        "status_entries",
        sa.Column("status_list", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("list_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("status_list", "list_index", name="pk_status_entries"),
    )
    op.create_table(
        "erased_certificates",
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("content_hash", sa.String(80), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("revoked_on", sa.Date(), nullable=True),
        sa.Column("erased_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("number", name="pk_erased_certificates"),
    )
    # Earlier certificates signed the course's facts as plain claims: copy what a correction
    # needs to sign them again.
    certificates = sa.table(
        "certificates",
        sa.column("id", sa.String(36)),
        sa.column("credential_jws", sa.Text()),
        sa.column("sector", sa.String(100)),
        sa.column("partner", sa.String(300)),
        sa.column("competency_units", sa.Text()),
    )
    bind = op.get_bind()
    for row in bind.execute(sa.select(certificates.c.id, certificates.c.credential_jws)):
        payload = row.credential_jws.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        bind.execute(
            certificates.update()
            .where(certificates.c.id == row.id)
            .values(
                sector=claims.get("sector"),
                partner=claims.get("partner"),
                competency_units=json.dumps(claims.get("competency_units") or []),
            )
        )


def downgrade() -> None:
    op.drop_table("erased_certificates")
    op.drop_table("status_entries")
    with op.batch_alter_table("certificates") as batch:
        batch.drop_constraint("uq_certificates_enrollment_id_revision", type_="unique")
        batch.create_unique_constraint("uq_certificates_enrollment_id", ["enrollment_id"])
        for column in (
            "status_list_index",
            "status_list",
            "competency_units",
            "partner",
            "sector",
            "revocation_kind",
            "replaced_by_id",
            "replaces_id",
            "revision",
        ):
            batch.drop_column(column)

"""Participants, sector, durations, follow-ups, certificate corrections, erasures, targets.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "participants",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("sex", sa.String(1), nullable=True),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("released_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_participants"),
    )
    op.create_table(
        "erased_participants",
        sa.Column("id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_erased_participants"),
    )
    op.create_table(
        "merged_participants",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("surviving_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_merged_participants"),
    )
    with op.batch_alter_table("enrollments") as batch:
        batch.add_column(sa.Column("sector", sa.String(100), nullable=True))
        batch.add_column(sa.Column("end_day", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("follow_up_situation", sa.String(40), nullable=True))
        batch.add_column(sa.Column("follow_up_checkpoint", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("follow_up_on", sa.Date(), nullable=True))
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("end_day", sa.Integer(), nullable=True))
    # A corrected certificate is a second one for the same enrolment: one row per certificate.
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("issued_day", sa.Integer(), nullable=True))
        batch.drop_constraint("uq_certificates_enrollment_id", type_="unique")
        batch.create_index("ix_certificates_enrollment_id", ["enrollment_id"])
    op.create_table(
        "certificate_revocations",
        sa.Column("certificate_id", sa.String(36), nullable=False),
        sa.Column("enrollment_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("revoked_on", sa.Date(), nullable=False),
        sa.Column("replaced_by_id", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("certificate_id", name="pk_certificate_revocations"),
    )

    targets = op.create_table(
        "targets",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("annual", sa.Integer(), nullable=True),
        sa.Column("cumulative", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(300), nullable=True),
        sa.Column("updated_at", _TZ, nullable=True),
        sa.Column("updated_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("year", name="pk_targets"),
    )
    # The targets announced for the programme: 5,000 new entrepreneurs in 2017 and 20,000
    # cumulative by the end of 2019. Editable afterwards through the API.
    op.bulk_insert(
        targets,
        [
            {
                "year": 2017,
                "annual": 5000,
                "cumulative": None,
                "note": "Target 2017: 5.000 wirausaha baru",
                "updated_at": None,
                "updated_by": None,
            },
            {
                "year": 2019,
                "annual": None,
                "cumulative": 20000,
                "note": "Target kumulatif s.d. akhir 2019: 20.000 wirausaha baru",
                "updated_at": None,
                "updated_by": None,
            },
        ],
    )


def downgrade() -> None:
    op.drop_table("targets")
    op.drop_table("certificate_revocations")
    with op.batch_alter_table("certificates") as batch:
        batch.drop_index("ix_certificates_enrollment_id")
        batch.create_unique_constraint("uq_certificates_enrollment_id", ["enrollment_id"])
        batch.drop_column("issued_day")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("end_day")
    with op.batch_alter_table("enrollments") as batch:
        for column in (
            "follow_up_on",
            "follow_up_checkpoint",
            "follow_up_situation",
            "end_day",
            "sector",
        ):
            batch.drop_column(column)
    op.drop_table("merged_participants")
    op.drop_table("erased_participants")
    op.drop_table("participants")

"""An index for name and number substrings, so a search does not read every person.

PostgreSQL: trigram GIN indexes (``pg_trgm``) over the folded name (``search_name``) and
``lower(registration_number)``; ``LIKE '%x%'`` on those expressions uses them. Creating the
extension needs a role allowed to (a superuser, or ``pg_trgm`` in the server's trusted
extensions, which it is since PostgreSQL 13, for a role with CREATE on the database). Where it is
not allowed, the migration logs a warning and makes no index: search still works, by reading
every row (the registry README gives the statements to add the indexes later).

SQLite: an FTS5 table with the trigram tokenizer (SQLite 3.34 or later) over the same two
folded values, kept in step with ``inmates`` by triggers. Its rowid follows ``inmates.rowid``;
a ``VACUUM`` that renumbered rowids needs the table refilled (the registry README says how).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
import structlog
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = structlog.get_logger(__name__)

PG_INDEXES = {
    "ix_inmates_search_name_trgm": "search_name gin_trgm_ops",
    "ix_inmates_registration_number_trgm": "lower(registration_number) gin_trgm_ops",
}

SQLITE_TRIGGERS = {
    "inmates_search_insert": """
        AFTER INSERT ON inmates BEGIN
            INSERT INTO inmates_search (rowid, inmate_id, name, number)
            VALUES (new.rowid, new.id, new.search_name, lower(new.registration_number));
        END""",
    "inmates_search_delete": """
        AFTER DELETE ON inmates BEGIN
            DELETE FROM inmates_search WHERE rowid = old.rowid;
        END""",
    "inmates_search_update": """
        AFTER UPDATE OF id, search_name, registration_number ON inmates BEGIN
            DELETE FROM inmates_search WHERE rowid = old.rowid;
            INSERT INTO inmates_search (rowid, inmate_id, name, number)
            VALUES (new.rowid, new.id, new.search_name, lower(new.registration_number));
        END""",
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _upgrade_postgresql(bind)
    elif bind.dialect.name == "sqlite":
        _upgrade_sqlite()


def _upgrade_postgresql(bind: sa.Connection) -> None:
    installed = bind.scalar(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"))
    if not installed:
        try:
            with bind.begin_nested():  # a refusal must not abort the migration's transaction
                bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        except sa.exc.DBAPIError as exc:
            log.warning(
                "search_index_skipped",
                reason="pg_trgm could not be created; search reads every row",
                error=str(exc.orig),
            )
            return
    for name, expression in PG_INDEXES.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON inmates USING gin ({expression})")


def _upgrade_sqlite() -> None:
    if sqlite3.sqlite_version_info < (3, 34, 0):
        log.warning(
            "search_index_skipped",
            reason=f"SQLite {sqlite3.sqlite_version} has no trigram tokenizer (3.34+)",
        )
        return
    op.execute(
        "CREATE VIRTUAL TABLE inmates_search USING fts5"
        "(inmate_id UNINDEXED, name, number, tokenize = 'trigram')"
    )
    for name, body in SQLITE_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")
    op.execute(
        "INSERT INTO inmates_search (rowid, inmate_id, name, number) "
        "SELECT rowid, id, search_name, lower(registration_number) FROM inmates"
    )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # The extension stays: other databases' objects or other schemas may use it.
        for name in PG_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    elif bind.dialect.name == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS inmates_search")

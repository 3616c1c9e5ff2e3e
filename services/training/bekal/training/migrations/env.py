"""Alembic environment of the training service (its own history, same on SQLite and PostgreSQL)."""

from bekal.shared.migrations import run_env
from bekal.training.models import Base

run_env(Base.metadata)

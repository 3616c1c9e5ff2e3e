"""Alembic environment of the reporting service."""

from bekal.reporting.models import Base
from bekal.shared.migrations import run_env

run_env(Base.metadata)

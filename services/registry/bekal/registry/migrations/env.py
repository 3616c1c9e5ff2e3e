"""Alembic environment of the registry: its own tables plus the platform's messaging tables."""

from bekal.registry.models import Base
from bekal.shared.migrations import run_env

run_env(Base.metadata)

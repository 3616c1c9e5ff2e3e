"""Alembic environment of the certification service."""

from bekal.certification.models import Base
from bekal.shared.migrations import run_env

run_env(Base.metadata)

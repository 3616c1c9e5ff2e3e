"""The event catalogue, the CloudEvents envelope and topic names."""

from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import catalogue

__all__ = ["Event", "catalogue"]

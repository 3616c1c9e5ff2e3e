"""The training service's settings: the shared ones, under its own name.

It reads nothing of its own yet; a setting only training reads belongs here.
"""

from __future__ import annotations

from bekal.shared.settings import Settings


class TrainingSettings(Settings):
    service_name: str = "training"

"""The base every catalogued event derives from, and the registry of event types."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

TYPE_PREFIX = "id.bekal"


class Event(BaseModel):
    """A fact that happened, published on its aggregate's topic, keyed by the aggregate id.

    Subclasses set the ClassVars; the CloudEvents type is derived from them, e.g.
    ``id.bekal.registry.inmate.released.v1``. Only additive changes are allowed inside a
    version: a breaking change is a new class with ``version = 2``.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    topic: ClassVar[str]
    event_name: ClassVar[str]  # "<aggregate>.<past-tense verb>", e.g. "inmate.released"
    version: ClassVar[int] = 1
    aggregate_field: ClassVar[str]  # the field whose value is the Kafka key and ce_subject

    @classmethod
    def event_type(cls) -> str:
        service = cls.topic.split(".", 1)[0]
        return f"{TYPE_PREFIX}.{service}.{cls.event_name}.v{cls.version}"

    @property
    def aggregate_id(self) -> str:
        return str(getattr(self, self.aggregate_field))

    def data(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class EventRegistry:
    """Maps CloudEvents types to their models; built once from the catalogue."""

    def __init__(self) -> None:
        self._by_type: dict[str, type[Event]] = {}

    def register(self, cls: type[Event]) -> type[Event]:
        key = cls.event_type()
        if key in self._by_type and self._by_type[key] is not cls:
            raise ValueError(f"event type {key} registered twice")
        self._by_type[key] = cls
        return cls

    def get(self, event_type: str) -> type[Event] | None:
        return self._by_type.get(event_type)

    def all(self) -> list[type[Event]]:
        return list(self._by_type.values())

    def topics(self) -> list[str]:
        return sorted({cls.topic for cls in self._by_type.values()})

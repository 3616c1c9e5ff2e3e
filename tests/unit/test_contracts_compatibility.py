"""A published event version may only gain optional fields; anything else is a new version."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import date
from pathlib import Path
from typing import ClassVar

import pytest

from bekal.devtools.generated import SCHEMA_DIR, published_breaks
from bekal.devtools.schemas import breaking_changes, event_schema
from bekal.shared.contracts import schema_file_name
from bekal.shared.events import catalogue
from bekal.shared.events.base import Event

ROOT = Path(__file__).resolve().parents[2]


# Synthetic versions of one event, never registered in the catalogue.
class _Published(Event):
    topic: ClassVar[str] = "example.things"
    event_name: ClassVar[str] = "thing.happened"
    aggregate_field: ClassVar[str] = "thing_id"

    thing_id: uuid.UUID
    happened_on: date
    count: int
    note: str | None


class _WithOptionalField(_Published):
    colour: str | None = None


class _WithoutAField(Event):
    topic: ClassVar[str] = "example.things"
    event_name: ClassVar[str] = "thing.happened"
    aggregate_field: ClassVar[str] = "thing_id"

    thing_id: uuid.UUID
    happened_on: date
    note: str | None


class _Retyped(Event):
    topic: ClassVar[str] = "example.things"
    event_name: ClassVar[str] = "thing.happened"
    aggregate_field: ClassVar[str] = "thing_id"

    thing_id: uuid.UUID
    happened_on: date
    count: str  # was int
    note: str | None


class _WithRequiredField(_Published):
    colour: str


class _Documented(_Published):
    """Only the documentation changed."""


def test_an_added_optional_field_is_compatible() -> None:
    assert breaking_changes(event_schema(_Published), event_schema(_WithOptionalField)) == []


def test_documentation_changes_are_compatible() -> None:
    assert breaking_changes(event_schema(_Published), event_schema(_Documented)) == []


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (_WithoutAField, "field 'count' removed"),
        (_Retyped, "field 'count' changed its type"),
        (_WithRequiredField, "new required field 'colour'"),
    ],
)
def test_breaking_changes_are_named(changed: type[Event], expected: str) -> None:
    problems = breaking_changes(event_schema(_Published), event_schema(changed))
    assert expected in problems, problems


def test_a_nested_value_that_loses_a_field_is_breaking() -> None:
    old = event_schema(catalogue.get("id.bekal.training.program.published.v1"))  # type: ignore[arg-type]
    new = json.loads(json.dumps(old))
    del new["$defs"]["CompetencyUnit"]["properties"]["title"]
    new["$defs"]["CompetencyUnit"]["required"].remove("title")
    assert "field 'competency_units.[].title' removed" in breaking_changes(old, new)


def test_every_committed_event_version_still_reads_the_same() -> None:
    committed = sorted((ROOT / SCHEMA_DIR).glob("*.json"))
    assert committed, f"no committed schemas under {SCHEMA_DIR}: run `bekal contracts generate`"
    assert published_breaks(ROOT) == []


def test_every_catalogued_event_version_has_a_committed_schema() -> None:
    missing = [
        schema_file_name(cls)
        for cls in catalogue.all()
        if not (ROOT / SCHEMA_DIR / schema_file_name(cls)).is_file()
    ]
    assert not missing, f"run `bekal contracts generate` and commit: {missing}"


def test_a_committed_field_the_model_dropped_is_reported(tmp_path: Path) -> None:
    shutil.copytree(ROOT / SCHEMA_DIR, tmp_path / SCHEMA_DIR)
    path = tmp_path / SCHEMA_DIR / "id.bekal.certification.certificate.issued.v1.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema["properties"]["printed_by"] = {"type": "string"}
    schema["required"].append("printed_by")
    path.write_text(json.dumps(schema), encoding="utf-8")
    assert published_breaks(tmp_path) == [
        "id.bekal.certification.certificate.issued.v1: field 'printed_by' removed"
    ]


def test_a_published_version_that_left_the_catalogue_is_reported(tmp_path: Path) -> None:
    (tmp_path / SCHEMA_DIR).mkdir(parents=True)
    gone = event_schema(_Published)
    (tmp_path / SCHEMA_DIR / "id.bekal.example.thing.happened.v1.json").write_text(
        json.dumps(gone), encoding="utf-8"
    )
    assert published_breaks(tmp_path) == [
        "id.bekal.example.thing.happened.v1: a published event version left the catalogue"
    ]

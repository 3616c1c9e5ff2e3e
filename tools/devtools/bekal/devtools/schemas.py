"""Each event version's JSON Schema as committed under contracts/schemas/, and what breaks one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bekal.shared.contracts import summary
from bekal.shared.events.base import Event

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_PREFIX = "urn:bekal:schema:"
# Keywords that document a schema without constraining it: changing them breaks nobody.
_ANNOTATIONS = frozenset({"title", "description", "examples", "default", "$comment"})


def event_schema(cls: type[Event]) -> dict[str, Any]:
    """The standalone JSON Schema (2020-12) of an event's data, as committed under contracts/."""
    body = cls.model_json_schema(mode="validation")
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{SCHEMA_ID_PREFIX}{cls.event_type()}",
        "title": cls.__name__,
        "description": summary(cls),
        "x-event-type": cls.event_type(),
        "x-topic": cls.topic,
        "x-key": cls.aggregate_field,
    }
    schema.update({k: v for k, v in body.items() if k not in ("title", "description")})
    return schema


# --- compatibility of a published version ----------------------------------------------------


def breaking_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What in ``new`` breaks consumers written against ``old`` (both standalone schemas).

    Breaking: a field removed, a field's type/format/values changed, a new required field, a
    field no longer required. Adding an optional field, or changing only titles and
    descriptions, is not breaking (events ignore unknown fields).
    """
    return _compare(old, new, old, new, "")


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        ref = str(schema["$ref"])
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref supported, got {ref}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        extra = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **extra}
    return schema


def _canonical(schema: Any, root: Mapping[str, Any]) -> Any:
    """A schema with references inlined and annotations dropped, for comparison."""
    if isinstance(schema, Mapping):
        schema = _resolve(schema, root)
        return {
            k: _canonical(v, root)
            for k, v in sorted(schema.items())
            if k not in _ANNOTATIONS and k != "$defs"
        }
    if isinstance(schema, list):
        return [_canonical(v, root) for v in schema]
    return schema


def _compare(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    old_root: Mapping[str, Any],
    new_root: Mapping[str, Any],
    where: str,
) -> list[str]:
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    problems: list[str] = []
    if old.get("type") == "object" and new.get("type") == "object" and "properties" in old:
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
        for name, old_prop in old_props.items():
            path = f"{where}{name}"
            if name not in new_props:
                problems.append(f"field '{path}' removed")
                continue
            problems.extend(_compare(old_prop, new_props[name], old_root, new_root, f"{path}."))
            if name in old_req and name not in new_req:
                problems.append(f"field '{path}' is no longer required")
        for name in sorted(new_req - old_req):
            if name not in old_props:
                problems.append(f"new required field '{where}{name}'")
            elif name not in old_req:
                problems.append(f"field '{where}{name}' became required")
        rest_old = {k: v for k, v in old.items() if k not in ("properties", "required")}
        rest_new = {k: v for k, v in new.items() if k not in ("properties", "required")}
        if _canonical(rest_old, old_root) != _canonical(rest_new, new_root):
            problems.append(f"object '{where.rstrip('.') or '(event)'}' changed its constraints")
        return problems
    if old.get("type") == "array" and new.get("type") == "array" and "items" in old:
        problems.extend(
            _compare(old["items"], new.get("items", {}), old_root, new_root, f"{where}[].")
        )
        rest_old = {k: v for k, v in old.items() if k != "items"}
        rest_new = {k: v for k, v in new.items() if k != "items"}
        if _canonical(rest_old, old_root) != _canonical(rest_new, new_root):
            problems.append(f"field '{where.rstrip('.')}' changed its type")
        return problems
    if _canonical(old, old_root) != _canonical(new, new_root):
        problems.append(f"field '{where.rstrip('.')}' changed its type")
    return problems

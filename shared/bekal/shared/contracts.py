"""The AsyncAPI 3 document a service serves at /asyncapi, from the event catalogue.

The committed contracts (every event version's JSON Schema, the platform's AsyncAPI file) and the
check that a published version stays compatible are development tooling: ``bekal.devtools``.
"""

from __future__ import annotations

import copy
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bekal.shared.events import catalogue
from bekal.shared.events.base import Event
from bekal.shared.events.topics import (
    SOURCES,
    TOPICS,
    Topic,
    TopicSettings,
    dead_letter_topic,
    topic_settings,
)

ASYNCAPI_VERSION = "3.0.0"
CONTRACT_VERSION = "1.0.0"
KAFKA_BINDING_VERSION = "0.5.0"


# --- who writes and who reads which topic -----------------------------------------------------


@dataclass(frozen=True)
class Consumer:
    """One consumer group: the topics it reads and the dead-letter topic it writes."""

    service: str
    group: str
    topics: tuple[str, ...]
    event_types: tuple[str, ...]

    @property
    def dead_letter_topic(self) -> str:
        return dead_letter_topic(self.group)


def consumer_of(service: str, subscriptions: Any) -> Consumer:
    """A Consumer from a service's ``Subscriptions`` (its handlers module's ``subscriptions``)."""
    return Consumer(
        service=service,
        group=subscriptions.group_id,
        topics=tuple(subscriptions.topics),
        event_types=tuple(sorted(subscriptions.handlers)),
    )


def events_on(topic: str) -> list[type[Event]]:
    return sorted(
        (cls for cls in catalogue.all() if cls.topic == topic), key=lambda c: c.event_type()
    )


def topic_by_name(name: str) -> Topic:
    for topic in TOPICS:
        if topic.name == name:
            return topic
    raise KeyError(name)


# --- one event version -----------------------------------------------------------------------


def schema_file_name(cls: type[Event]) -> str:
    """Its JSON Schema's file name under contracts/schemas/."""
    return f"{cls.event_type()}.json"


def summary(cls: type) -> str:
    """A class's docstring on one line (its name when it has none)."""
    text = (cls.__doc__ or "").strip()
    return " ".join(text.split()) if text else cls.__name__


# --- AsyncAPI 3 --------------------------------------------------------------------------------

CLOUDEVENTS_HEADERS: dict[str, Any] = {
    "ce_specversion": {"type": "string", "const": "1.0", "description": "CloudEvents version"},
    "ce_id": {"type": "string", "description": "Unique per event; consumers deduplicate on it"},
    "ce_source": {"type": "string", "description": "The publishing service, e.g. /industry/…"},
    "ce_type": {"type": "string", "description": "Event type and version"},
    "ce_subject": {"type": "string", "description": "The aggregate id (equals the record key)"},
    "ce_time": {"type": "string", "format": "date-time", "description": "When it happened"},
    "content-type": {"type": "string", "const": "application/json"},
    "traceparent": {"type": "string", "description": "W3C trace context (optional)"},
}
# What every record carries (bekal.shared.events.envelope.encode writes all of these, always);
# only traceparent is optional.
_REQUIRED_HEADERS = [
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_subject",
    "ce_time",
    "content-type",
]

# --- dead letters: what the consumer runner (bekal.shared.messaging.consumer) writes ----------

DEAD_LETTER_MESSAGE = "DeadLetter"
DEAD_LETTER_REASONS: dict[str, str] = {
    "not_a_cloudevent": "the record has no ce_id or ce_type header",
    "malformed": "CloudEvents attributes or data that cannot be read (not JSON, not "
    "CloudEvents 1.0, an empty id, source or type, no data)",
    "unknown_type": "an event type the catalogue does not know",
    "invalid_payload": "data that does not validate against its event type's schema",
    "handler_failed": "the consumer's handler kept failing after its retries",
}
_COUNT = {"type": "string", "pattern": "^[0-9]+$"}
DEAD_LETTER_HEADERS: dict[str, Any] = {
    "dlq_reason": {
        "type": "string",
        "enum": list(DEAD_LETTER_REASONS),
        "description": "Why the record is here: "
        + "; ".join(f"{k}: {v}" for k, v in DEAD_LETTER_REASONS.items()),
    },
    "dlq_error": {
        "type": "string",
        "maxLength": 4000,
        "description": "The error, as the consumer saw it (at most 4,000 characters)",
    },
    "dlq_original_topic": {
        "type": "string",
        "description": "The topic the record was read from",
    },
    "dlq_original_partition": {**_COUNT, "description": "Its partition there"},
    "dlq_original_offset": {**_COUNT, "description": "Its offset there"},
    "dlq_consumer_group": {
        "type": "string",
        "description": "The consumer group that could not handle it",
    },
    "dlq_attempts": {
        **_COUNT,
        "description": "How often the handler ran: 0 when the record could not even be read",
    },
}


def _dead_letter_message() -> dict[str, Any]:
    """A dead letter: the original record (key, value, headers) plus the dlq_* headers."""
    # The original record's headers stay as they were, unchecked: a record dead-lettered as
    # malformed may have any value in them, or lack them.
    original = {
        name: {"type": "string", "description": f"The original record's {name} header, if any"}
        for name in CLOUDEVENTS_HEADERS
    }
    return {
        "name": DEAD_LETTER_MESSAGE,
        "title": "Dead letter",
        "summary": (
            "A record a consumer group could not handle, as it was read (same key, value and "
            "headers), with the dlq_* headers saying why and where it came from."
        ),
        "headers": {
            "type": "object",
            "required": list(DEAD_LETTER_HEADERS),
            "properties": {**DEAD_LETTER_HEADERS, **original},
            # Whatever other headers the original record had are kept too.
            "additionalProperties": {"type": "string"},
        },
        "payload": {"$ref": f"#/components/schemas/{DEAD_LETTER_MESSAGE}"},
        "bindings": {
            "kafka": {
                "key": {"description": "The original record's key, unchanged"},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


_DEAD_LETTER_PAYLOAD: dict[str, Any] = {
    "title": DEAD_LETTER_MESSAGE,
    "description": (
        "The original record's value, byte for byte: usually an event's JSON data, but it may "
        "be anything (that can be why it is here)."
    ),
}


def _kafka_channel_binding(name: str) -> dict[str, Any]:
    """The topic as it is created (bekal.shared.events.topics): partitions, replicas, retention."""
    settings: TopicSettings = topic_settings(name)
    return {
        "topic": name,
        "partitions": settings.partitions,
        "replicas": settings.replication_factor,
        "topicConfiguration": {
            "cleanup.policy": [settings.cleanup_policy],
            "retention.ms": settings.retention_ms,
        },
        "bindingVersion": KAFKA_BINDING_VERSION,
    }


def message_id(cls: type[Event]) -> str:
    return f"{cls.__name__}.v{cls.version}"


def _operation_id(prefix: str, topic: str) -> str:
    return prefix + "".join(part.capitalize() for part in topic.replace("_", ".").split("."))


def asyncapi(
    *,
    topics: Sequence[str] | None = None,
    consumer_groups: Sequence[Consumer] = (),
    title: str = "Bekal events",
    description: str | None = None,
) -> dict[str, Any]:
    """An AsyncAPI 3 document: one channel per topic, one message per event version.

    ``topics`` limits the document to some topics (a service's own); consumers add receive
    operations for the topics they read (their channels are included too).
    """
    written = [t.name for t in TOPICS] if topics is None else list(topics)
    wanted = written + [t for c in consumer_groups for t in c.topics if t not in written]
    channel_names = [t.name for t in TOPICS if t.name in wanted]
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for name in channel_names:
        topic = topic_by_name(name)
        channel_messages = {}
        for cls in events_on(name):
            mid = message_id(cls)
            schemas[mid] = _component_schema(cls, schemas)
            messages[mid] = _message(cls, mid)
            channel_messages[mid] = {"$ref": f"#/components/messages/{mid}"}
        channels[name] = {
            "address": name,
            "title": name,
            "description": (
                f"{topic.description}. Written only by {topic.owner} ({topic.ministry}); "
                f"key = the aggregate id."
            ),
            "messages": channel_messages,
            "bindings": {"kafka": _kafka_channel_binding(name)},
            "x-owner": topic.owner,
            "x-ministry": topic.ministry,
        }
        if name not in written:  # only read by this document's consumers
            continue
        operations[_operation_id("publish", name)] = {
            "action": "send",
            "title": f"{topic.owner} publishes on {name}",
            "channel": {"$ref": f"#/channels/{name}"},
            "messages": [{"$ref": f"#/channels/{name}/messages/{m}"} for m in channel_messages],
            "x-service": topic.owner,
        }
    for consumer in consumer_groups:
        dlq = consumer.dead_letter_topic
        messages[DEAD_LETTER_MESSAGE] = _dead_letter_message()
        schemas[DEAD_LETTER_MESSAGE] = _DEAD_LETTER_PAYLOAD
        mref = f"#/channels/{dlq}/messages/{DEAD_LETTER_MESSAGE}"
        channels[dlq] = {
            "address": dlq,
            "title": dlq,
            "description": (
                f"Dead letters of consumer group {consumer.group}: the records {consumer.service}"
                f" could not handle, kept {topic_settings(dlq).retention_ms // 86_400_000} days "
                f"for operators to inspect and retry. Written only by {consumer.service}."
            ),
            "messages": {
                DEAD_LETTER_MESSAGE: {"$ref": f"#/components/messages/{DEAD_LETTER_MESSAGE}"}
            },
            "bindings": {"kafka": _kafka_channel_binding(dlq)},
            "x-owner": consumer.service,
            "x-ministry": SOURCES[consumer.service].split("/")[1],
            "x-consumer-group": consumer.group,
        }
        operations[_operation_id("publish", dlq)] = {
            "action": "send",
            "title": f"{consumer.service} dead-letters what group {consumer.group} cannot handle",
            "channel": {"$ref": f"#/channels/{dlq}"},
            "messages": [{"$ref": mref}],
            "x-service": consumer.service,
        }
        by_topic: dict[str, list[str]] = {}
        for event_type in consumer.event_types:
            event_cls = catalogue.get(event_type)
            if event_cls is not None:
                by_topic.setdefault(event_cls.topic, []).append(message_id(event_cls))
        for name in sorted(by_topic):
            operations[_operation_id(f"{consumer.service}Receives", name)] = {
                "action": "receive",
                "title": f"{consumer.service} consumes {name} (group {consumer.group})",
                "channel": {"$ref": f"#/channels/{name}"},
                "messages": [
                    {"$ref": f"#/channels/{name}/messages/{m}"} for m in sorted(by_topic[name])
                ],
                "bindings": {
                    "kafka": {
                        "groupId": {"type": "string", "enum": [consumer.group]},
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                },
                "x-service": consumer.service,
                "x-dead-letter-topic": consumer.dead_letter_topic,
            }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": title,
            "version": CONTRACT_VERSION,
            "description": description
            or (
                "Events between the corrections administration (registry) and the Ministry of "
                "Industry (training, certification, reporting). CloudEvents 1.0 in Kafka binary "
                "content mode: attributes in ce_* headers, data as JSON in the value, the "
                "aggregate id as the key. Inside a version only optional fields are ever added; "
                "ignore fields you do not know. The JSON Schema of every published version is in "
                "contracts/schemas/."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "bekal-kafka-bootstrap.kafka.svc:9093",
                "protocol": "kafka-secure",
                "description": "The Kafka cluster (TLS, SCRAM-SHA-512, one user per system).",
                "security": [{"$ref": "#/components/securitySchemes/scram"}],
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "scram": {"type": "scramSha512", "description": "A Kafka user per system"}
            },
        },
    }


def _component_schema(cls: type[Event], schemas: dict[str, Any]) -> dict[str, Any]:
    """The payload schema with its $defs hoisted into components/schemas (shared by name)."""
    body = copy.deepcopy(cls.model_json_schema(ref_template="#/components/schemas/{model}"))
    for name, definition in body.pop("$defs", {}).items():
        if name in schemas and schemas[name] != definition:
            raise ValueError(f"two different schemas are both called {name}")
        schemas[name] = definition
    body["title"] = cls.__name__
    body["description"] = summary(cls)
    return body


def _message(cls: type[Event], mid: str) -> dict[str, Any]:
    headers = copy.deepcopy(CLOUDEVENTS_HEADERS)
    headers["ce_type"]["const"] = cls.event_type()
    owner = topic_by_name(cls.topic).owner
    headers["ce_source"]["const"] = SOURCES[owner]
    return {
        "name": cls.__name__,
        "title": cls.__name__,
        "summary": summary(cls),
        "contentType": "application/json",
        "headers": {"type": "object", "required": _REQUIRED_HEADERS, "properties": headers},
        "payload": {"$ref": f"#/components/schemas/{mid}"},
        "correlationId": {"location": "$message.header#/ce_id"},
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": f"The {cls.aggregate_field} (partitioning and ordering)",
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "x-event-type": cls.event_type(),
        "x-schema-file": f"contracts/schemas/{schema_file_name(cls)}",
    }


def service_asyncapi(service: str, subscriptions: Any | None) -> dict[str, Any]:
    """The document one service serves: the topics it writes and those it reads."""
    groups = [consumer_of(service, subscriptions)] if subscriptions is not None else []
    return asyncapi(
        topics=[t.name for t in TOPICS if t.owner == service],
        consumer_groups=groups,
        title=f"Bekal {service} events",
    )


# --- a readable page -----------------------------------------------------------------------------


def render_html(doc: Mapping[str, Any]) -> str:
    """A self-contained page (no scripts, no external assets) people can read offline."""
    components = doc["components"]
    e = html.escape
    out = [
        "<!doctype html>",
        '<html lang="id"><head><meta charset="utf-8">',
        f"<title>{e(doc['info']['title'])} — AsyncAPI</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem;line-height:1.45}table{border-collapse:collapse;width:100%;"
        "margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;"
        "vertical-align:top}code{background:#f3f3f3;padding:0 .2rem}section{border-top:"
        "2px solid #333;margin-top:2rem}pre{background:#f7f7f7;padding:.5rem;overflow:auto}"
        "</style></head><body>",
        f"<h1>{e(doc['info']['title'])}</h1>",
        f"<p>AsyncAPI {e(doc['asyncapi'])}, versi kontrak {e(doc['info']['version'])}. "
        f'Dokumen mesin: <a href="asyncapi.json">asyncapi.json</a>.</p>',
        f"<p>{e(doc['info']['description'])}</p>",
        "<h2>Daftar topik</h2><table><tr><th>Topik</th><th>Pemilik (penulis)</th>"
        "<th>Pesan</th></tr>",
    ]
    for name, channel in doc["channels"].items():
        out.append(
            f'<tr><td><a href="#{e(name)}"><code>{e(name)}</code></a></td>'
            f"<td>{e(channel.get('x-owner', ''))}</td>"
            f"<td>{e(', '.join(channel['messages']))}</td></tr>"
        )
    out.append("</table>")
    receivers = [op for op in doc["operations"].values() if op["action"] == "receive"]
    if receivers:
        out.append("<h2>Konsumen</h2><ul>")
        for op in receivers:
            out.append(
                f"<li>{e(op['title'])}; dead letter: <code>"
                f"{e(op.get('x-dead-letter-topic', ''))}</code></li>"
            )
        out.append("</ul>")
    for name, channel in doc["channels"].items():
        out.append(f'<section id="{e(name)}"><h2>Topik <code>{e(name)}</code></h2>')
        out.append(f"<p>{e(channel['description'])}</p>")
        for mid in channel["messages"]:
            message = components["messages"][mid]
            if mid == DEAD_LETTER_MESSAGE:
                out.extend(_dead_letter_html(message))
                continue
            schema = components["schemas"][mid]
            out.append(
                f"<h3>{e(message['name'])} <small>(<code>"
                f"{e(message['x-event-type'])}</code>)</small></h3>"
            )
            out.append(f"<p>{e(message['summary'])}</p>")
            key = message["bindings"]["kafka"]["key"]["description"]
            out.append(
                f"<p>Kunci record: {e(key)}. Skema JSON: "
                f"<code>{e(message['x-schema-file'])}</code>.</p>"
            )
            out.append(
                "<table><tr><th>Kolom</th><th>Tipe</th><th>Wajib</th><th>Keterangan</th></tr>"
            )
            required = set(schema.get("required", []))
            for field, prop in schema.get("properties", {}).items():
                label = _type_label(prop, components["schemas"])
                out.append(
                    f"<tr><td><code>{e(field)}</code></td><td>{e(label)}</td>"
                    f"<td>{'ya' if field in required else 'tidak'}</td>"
                    f"<td>{e(str(prop.get('description', '')))}</td></tr>"
                )
            out.append("</table>")
            out.append(
                "<details><summary>Skema JSON lengkap</summary><pre>"
                f"{e(json.dumps(schema, indent=2, ensure_ascii=False))}</pre></details>"
            )
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _dead_letter_html(message: Mapping[str, Any]) -> list[str]:
    e = html.escape
    headers = message["headers"]
    required = set(headers["required"])
    out = [
        f"<h3>{e(message['title'])}</h3>",
        f"<p>{e(message['summary'])}</p>",
        "<table><tr><th>Header</th><th>Wajib</th><th>Keterangan</th></tr>",
    ]
    for name, prop in headers["properties"].items():
        values = f" ({', '.join(prop['enum'])})" if "enum" in prop else ""
        out.append(
            f"<tr><td><code>{e(name)}</code></td>"
            f"<td>{'ya' if name in required else 'tidak'}</td>"
            f"<td>{e(str(prop.get('description', '')) + values)}</td></tr>"
        )
    out.append("</table>")
    return out


def _type_label(prop: Mapping[str, Any], schemas: Mapping[str, Any]) -> str:
    if "$ref" in prop:
        name = str(prop["$ref"]).rsplit("/", 1)[-1]
        target = schemas.get(name, {})
        if "enum" in target:  # spell the allowed values out: that is what a reader needs
            return f"{name}: {', '.join(map(str, target['enum']))}"
        return name
    if "anyOf" in prop:
        return " | ".join(_type_label(p, schemas) for p in prop["anyOf"])
    kind = str(prop.get("type", "any"))
    if kind == "array":
        return f"array of {_type_label(prop.get('items', {}), schemas)}"
    if "format" in prop:
        return f"{kind} ({prop['format']})"
    if "enum" in prop:
        return f"{kind}: {', '.join(map(str, prop['enum']))}"
    return kind

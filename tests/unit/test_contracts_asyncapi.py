"""The AsyncAPI document and the committed files agree with the catalogue and the consumers."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from bekal.devtools.generated import (
    COMPOSE_FILE,
    SCHEMA_DIR,
    TOPIC_TABLE_FILES,
    all_consumers,
    compose_with_topics,
    run,
    topic_names,
)
from bekal.shared import contracts
from bekal.shared.cli import SERVICES
from bekal.shared.cli import main as bekal
from bekal.shared.events import catalogue
from bekal.shared.events.catalogue import CertificateIssued
from bekal.shared.events.envelope import encode, to_kafka
from bekal.shared.events.topics import (
    DEAD_LETTER_RETENTION_MS,
    REGISTRY_PERSON_KEYS,
    SOURCES,
    TOPICS,
    dead_letter_topic,
    topic_settings,
)
from bekal.shared.settings import Settings
from tests.support.factories import certificate_issued

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def groups() -> list[contracts.Consumer]:
    return all_consumers()


@pytest.fixture(scope="module")
def doc(groups: list[contracts.Consumer]) -> dict[str, Any]:
    return contracts.asyncapi(consumer_groups=groups)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    target: Any = doc
    for part in ref[2:].split("/"):
        assert part in target, f"dangling $ref {ref}"
        target = target[part]
    return target


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def payload_validator(doc: dict[str, Any], message_id: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": f"#/components/schemas/{message_id}", "components": doc["components"]},
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def test_the_committed_files_are_up_to_date(groups: list[contracts.Consumer]) -> None:
    result = run(ROOT, write=False, consumers=groups)
    assert result.breaking == []
    assert result.stale == [], (
        f"out of date: {result.stale}; run `bekal contracts generate` (make contracts) and commit"
    )


def test_check_command_reports_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert bekal(["contracts", "check", "--root", str(ROOT)]) == 0
    assert "up to date" in capsys.readouterr().out


def _copy_generated_documents(root: Path) -> None:
    """The hand-written documents that hold generated blocks (compose, the topic tables)."""
    for rel in (COMPOSE_FILE, *TOPIC_TABLE_FILES):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, root / rel)


def test_the_topic_tables_name_every_topic_its_writer_readers_and_events(
    groups: list[contracts.Consumer],
) -> None:
    for rel in TOPIC_TABLE_FILES:
        rows = {
            cells[0].strip("` "): cells[1:]
            for line in (ROOT / rel).read_text(encoding="utf-8").splitlines()
            if line.startswith("| `")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]
        }
        for topic in TOPICS:
            writer, readers, events = rows[topic.name]
            assert writer == f"{topic.owner} ({topic.ministry})", rel
            expected = {g.service for g in groups if topic.name in g.topics} | set(topic.readers)
            assert set(readers.split(", ")) == (expected or {"(none yet)"}), (rel, topic.name)
            on_topic = {c.__name__ for c in catalogue.all() if c.topic == topic.name}
            assert set(events.split(", ")) == on_topic, (rel, topic.name)
        for group in groups:
            assert group.dead_letter_topic in rows, rel


def test_check_fails_on_a_stale_file_and_generate_repairs_it(
    tmp_path: Path, groups: list[contracts.Consumer]
) -> None:
    _copy_generated_documents(tmp_path)
    (tmp_path / "shared").mkdir()
    assert bekal(["contracts", "check", "--root", str(tmp_path)]) == 1
    assert bekal(["contracts", "generate", "--root", str(tmp_path)]) == 0
    assert bekal(["contracts", "check", "--root", str(tmp_path)]) == 0
    stale = tmp_path / "contracts" / "asyncapi.json"
    stale.write_text("{}", encoding="utf-8")
    assert run(tmp_path, write=False, consumers=groups).stale == ["contracts/asyncapi.json"]


def test_generate_never_overwrites_a_published_schema_with_a_breaking_change(
    tmp_path: Path, groups: list[contracts.Consumer]
) -> None:
    _copy_generated_documents(tmp_path)
    shutil.copytree(ROOT / SCHEMA_DIR, tmp_path / SCHEMA_DIR)
    path = tmp_path / SCHEMA_DIR / contracts.schema_file_name(CertificateIssued)
    tampered = json.loads(path.read_text(encoding="utf-8"))
    tampered["properties"]["number"] = {"type": "integer"}
    path.write_text(json.dumps(tampered), encoding="utf-8")
    result = run(tmp_path, write=True, consumers=groups)
    assert result.breaking == [f"{CertificateIssued.event_type()}: field 'number' changed its type"]
    assert json.loads(path.read_text(encoding="utf-8")) == tampered


def test_compose_creates_every_topic_exactly_once(groups: list[contracts.Consumer]) -> None:
    names = topic_names(groups)
    assert len(names) == len(set(names))
    assert set(names) == {t.name for t in TOPICS} | {dead_letter_topic(g.group) for g in groups}
    text = (ROOT / COMPOSE_FILE).read_text(encoding="utf-8")
    assert compose_with_topics(text, groups) == text
    with pytest.raises(ValueError, match="markers"):
        compose_with_topics("services: {}\n", groups)


def test_one_channel_per_topic_one_message_per_event_version(
    doc: dict[str, Any], groups: list[contracts.Consumer]
) -> None:
    assert doc["asyncapi"] == "3.0.0"
    dead_letters = {dead_letter_topic(g.group) for g in groups}
    assert set(doc["channels"]) == {t.name for t in TOPICS} | dead_letters
    for cls in catalogue.all():
        channel = doc["channels"][cls.topic]
        mid = contracts.message_id(cls)
        assert channel["address"] == cls.topic
        assert channel["bindings"]["kafka"]["topic"] == cls.topic
        assert channel["messages"][mid] == {"$ref": f"#/components/messages/{mid}"}
        message = doc["components"]["messages"][mid]
        headers = message["headers"]["properties"]
        assert headers["ce_type"]["const"] == cls.event_type()
        assert headers["ce_source"]["const"] == SOURCES[cls.topic.split(".")[0]]
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
        assert cls.aggregate_field in message["bindings"]["kafka"]["key"]["description"]
    messages_on_channels = sum(
        len(c["messages"]) for name, c in doc["channels"].items() if name not in dead_letters
    )
    assert messages_on_channels == len(catalogue.all())


def test_each_channel_binding_states_the_topic_settings_of_the_catalogue(
    doc: dict[str, Any],
) -> None:
    for name, channel in doc["channels"].items():
        binding = channel["bindings"]["kafka"]
        settings = topic_settings(name)
        assert binding["topic"] == name
        assert (binding["partitions"], binding["replicas"]) == (3, 3)
        assert binding["topicConfiguration"] == {
            "cleanup.policy": [settings.cleanup_policy],
            "retention.ms": settings.retention_ms,
        }
        expected = DEAD_LETTER_RETENTION_MS if name.endswith(".dlq") else -1
        assert binding["topicConfiguration"]["retention.ms"] == expected
        # Event histories are kept whole; only the person keys are compacted (their tombstones
        # must make the keys go).
        policy = "compact" if name == REGISTRY_PERSON_KEYS else "delete"
        assert binding["topicConfiguration"]["cleanup.policy"] == [policy]


def test_every_record_carries_the_cloudevents_headers_its_message_requires(
    doc: dict[str, Any],
) -> None:
    required = {"ce_id", "ce_source", "ce_type", "ce_specversion", "ce_time", "ce_subject"}
    required.add("content-type")
    for cls in catalogue.all():
        headers = doc["components"]["messages"][contracts.message_id(cls)]["headers"]
        assert set(headers["required"]) == required, cls.__name__
        assert "traceparent" in headers["properties"] and "traceparent" not in headers["required"]
    # What the outbox relay sends (no time of its own given here): every required header, once.
    _, _, wire = encode(
        event_type=CertificateIssued.event_type(),
        subject=str(uuid.uuid4()),
        data=b"{}",
        source=SOURCES["certification"],
    )
    names = [k for k, _ in wire]
    assert sorted(names) == sorted(required)
    validator = Draft202012Validator(
        doc["components"]["messages"][contracts.message_id(CertificateIssued)]["headers"]
    )
    as_text = {k: v.decode() for k, v in wire}
    validator.validate(as_text)
    for missing in ("ce_subject", "ce_time"):
        broken = {k: v for k, v in as_text.items() if k != missing}
        assert [e.validator for e in validator.iter_errors(broken)] == ["required"], missing


def dead_letter_headers(**changes: str | None) -> dict[str, str]:
    """The headers of a dead letter as the consumer runner writes them (an unreadable record)."""
    headers: dict[str, str | None] = {
        "ce_id": "e1",
        "ce_type": "id.bekal.registry.inmate.vanished.v9",
        "ce_source": "/x",
        "ce_specversion": "1.0",
        "content-type": "application/json",
        "x_other": "kept as it was",
        "dlq_reason": "unknown_type",
        "dlq_error": "no event type 'id.bekal.registry.inmate.vanished.v9' in the catalogue",
        "dlq_original_topic": "registry.inmates",
        "dlq_original_partition": "2",
        "dlq_original_offset": "41",
        "dlq_consumer_group": "training",
        "dlq_attempts": "0",
    }
    headers.update(changes)
    return {k: v for k, v in headers.items() if v is not None}


def test_each_consumer_group_has_a_dead_letter_channel_it_alone_writes(
    doc: dict[str, Any], groups: list[contracts.Consumer]
) -> None:
    for group in groups:
        name = dead_letter_topic(group.group)
        channel = doc["channels"][name]
        assert channel["address"] == name
        assert channel["x-owner"] == group.service
        assert channel["messages"] == {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}}
        assert "30 days" in channel["description"]
        sends = [
            op for op in doc["operations"].values() if op["channel"]["$ref"] == f"#/channels/{name}"
        ]
        assert [(op["action"], op["x-service"]) for op in sends] == [("send", group.service)]
        receive = [
            op
            for op in doc["operations"].values()
            if op["action"] == "receive" and op["x-service"] == group.service
        ]
        assert receive and all(op["x-dead-letter-topic"] == name for op in receive)


def test_the_dead_letter_message_requires_the_headers_that_say_why_and_from_where(
    doc: dict[str, Any],
) -> None:
    message = doc["components"]["messages"]["DeadLetter"]
    headers = message["headers"]
    assert set(headers["required"]) == {
        "dlq_reason",
        "dlq_error",
        "dlq_original_topic",
        "dlq_original_partition",
        "dlq_original_offset",
        "dlq_consumer_group",
        "dlq_attempts",
    }
    assert headers["properties"]["dlq_reason"]["enum"] == [
        "not_a_cloudevent",
        "malformed",
        "unknown_type",
        "invalid_payload",
        "handler_failed",
    ]
    # The original record's CloudEvents headers are described but not required: a record without
    # them (not_a_cloudevent) is dead-lettered too.
    assert {"ce_id", "ce_type", "ce_time"} <= set(headers["properties"])
    assert not {"ce_id", "ce_type", "ce_time"} & set(headers["required"])
    assert resolve(doc, message["payload"]["$ref"])["title"] == "DeadLetter"
    validator = Draft202012Validator(headers)
    validator.validate(dead_letter_headers())
    validator.validate(
        dead_letter_headers(ce_id=None, ce_type=None, ce_source=None, dlq_reason="not_a_cloudevent")
    )
    for broken, expected in (
        (dead_letter_headers(dlq_reason=None), "required"),
        (dead_letter_headers(dlq_original_offset=None), "required"),
        (dead_letter_headers(dlq_reason="it_broke"), "enum"),
        (dead_letter_headers(dlq_original_partition="two"), "pattern"),
        (dead_letter_headers(dlq_error="x" * 4001), "maxLength"),
    ):
        assert [e.validator for e in validator.iter_errors(broken)] == [expected]


def test_the_page_shows_the_dead_letter_topics_and_their_headers(
    doc: dict[str, Any], groups: list[contracts.Consumer]
) -> None:
    page = contracts.render_html(doc)
    for group in groups:
        assert f'<section id="{dead_letter_topic(group.group)}">' in page
    for header in ("dlq_reason", "dlq_original_topic", "dlq_original_offset", "dlq_attempts"):
        assert f"<code>{header}</code>" in page


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    found = refs(doc)
    assert found
    for ref in found:
        resolve(doc, ref)


def test_operations_send_by_owner_and_receive_by_each_consumer_group(
    doc: dict[str, Any], groups: list[contracts.Consumer]
) -> None:
    sends = {
        resolve(doc, op["channel"]["$ref"])["address"]: op["x-service"]
        for op in doc["operations"].values()
        if op["action"] == "send"
    }
    assert sends == {t.name: t.owner for t in TOPICS} | {
        dead_letter_topic(g.group): g.service for g in groups
    }
    receives = {
        (op["x-service"], resolve(doc, op["channel"]["$ref"])["address"])
        for op in doc["operations"].values()
        if op["action"] == "receive"
    }
    assert receives == {(g.service, t) for g in groups for t in g.topics}
    assert {g.service for g in groups} == {"training", "certification", "reporting"}


def test_a_real_event_on_the_wire_matches_its_message(doc: dict[str, Any]) -> None:
    event = certificate_issued(number="IKMA/2024/000001", issued_on=date(2024, 6, 1))
    key, value, headers = to_kafka(event, source=SOURCES["certification"])
    mid = contracts.message_id(CertificateIssued)
    message = doc["components"]["messages"][mid]
    payload_validator(doc, mid).validate(json.loads(value))
    Draft202012Validator(message["headers"]).validate({k: v.decode() for k, v in headers})
    assert key.decode() == str(event.certificate_id)
    broken = {**json.loads(value), "issued_on": "kemarin"}
    del broken["number"]
    errors = list(payload_validator(doc, mid).iter_errors(broken))
    assert {e.validator for e in errors} == {"required", "format"}


def test_the_committed_schema_file_validates_the_same_payloads() -> None:
    schema = json.loads(
        (ROOT / SCHEMA_DIR / contracts.schema_file_name(CertificateIssued)).read_text("utf-8")
    )
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    with pytest.raises(ValidationError):
        validator.validate({"certificate_id": str(uuid.uuid4())})


def test_yaml_and_json_documents_are_the_same(doc: dict[str, Any]) -> None:
    as_json = json.loads((ROOT / "contracts" / "asyncapi.json").read_text("utf-8"))
    as_yaml = yaml.safe_load((ROOT / "contracts" / "asyncapi.yaml").read_text("utf-8"))
    assert as_json == as_yaml == json.loads(json.dumps(doc))


@pytest.mark.parametrize("service", SERVICES)
async def test_each_service_serves_its_own_topics(service: str) -> None:
    module = __import__(f"bekal.{service}.app", fromlist=["create_app"])
    app = module.create_app(Settings(service_name=service, database_url="sqlite+aiosqlite://"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        served = (await client.get("/asyncapi.json")).json()
        page = await client.get("/asyncapi")
    owned = {t.name for t in TOPICS if t.owner == service}
    sends = {
        resolve(served, op["channel"]["$ref"])["address"]
        for op in served["operations"].values()
        if op["action"] == "send"
    }
    subs = module.spec.subscriptions
    dead_letters = {subs.dead_letter_topic} if subs else set()
    assert sends == owned | dead_letters
    receives = {
        resolve(served, op["channel"]["$ref"])["address"]
        for op in served["operations"].values()
        if op["action"] == "receive"
    }
    assert receives == (set(subs.topics) if subs else set())
    assert set(served["channels"]) == owned | receives | dead_letters
    platform = contracts.asyncapi(consumer_groups=all_consumers())
    for mid, message in served["components"]["messages"].items():
        assert message == platform["components"]["messages"][mid]
        assert served["components"]["schemas"][mid] == platform["components"]["schemas"][mid]
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for topic in owned | dead_letters:
        assert f"<code>{topic}</code>" in page.text

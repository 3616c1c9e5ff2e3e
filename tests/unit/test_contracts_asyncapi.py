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

from bekal.shared import contracts
from bekal.shared.cli import main as bekal
from bekal.shared.events import catalogue
from bekal.shared.events.catalogue import CertificateIssued
from bekal.shared.events.envelope import to_kafka
from bekal.shared.events.topics import SOURCES, TOPICS, dead_letter_topic
from bekal.shared.generated import (
    COMPOSE_FILE,
    SCHEMA_DIR,
    compose_with_topics,
    run,
    topic_names,
)
from bekal.shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def groups() -> list[contracts.Consumer]:
    return contracts.consumers()


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


def test_check_fails_on_a_stale_file_and_generate_repairs_it(
    tmp_path: Path, groups: list[contracts.Consumer]
) -> None:
    shutil.copy(ROOT / COMPOSE_FILE, tmp_path / COMPOSE_FILE)
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
    shutil.copy(ROOT / COMPOSE_FILE, tmp_path / COMPOSE_FILE)
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


def test_one_channel_per_topic_one_message_per_event_version(doc: dict[str, Any]) -> None:
    assert doc["asyncapi"] == "3.0.0"
    assert set(doc["channels"]) == {t.name for t in TOPICS}
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
    messages_on_channels = sum(len(c["messages"]) for c in doc["channels"].values())
    assert messages_on_channels == len(catalogue.all())


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
    assert sends == {t.name: t.owner for t in TOPICS}
    receives = {
        (op["x-service"], resolve(doc, op["channel"]["$ref"])["address"])
        for op in doc["operations"].values()
        if op["action"] == "receive"
    }
    assert receives == {(g.service, t) for g in groups for t in g.topics}
    assert {g.service for g in groups} == {"training", "certification", "reporting"}


def test_a_real_event_on_the_wire_matches_its_message(doc: dict[str, Any]) -> None:
    event = CertificateIssued(
        certificate_id=uuid.uuid4(),
        number="IKMA/2024/000001",
        participant_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        enrollment_id=uuid.uuid4(),
        program_id=uuid.uuid4(),
        issued_on=date(2024, 6, 1),
    )
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


@pytest.mark.parametrize("service", contracts.SERVICES)
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
    assert sends == owned
    subs = module.spec.subscriptions
    receives = {
        resolve(served, op["channel"]["$ref"])["address"]
        for op in served["operations"].values()
        if op["action"] == "receive"
    }
    assert receives == (set(subs.topics) if subs else set())
    assert set(served["channels"]) == owned | receives
    platform = contracts.asyncapi(consumer_groups=contracts.consumers())
    for mid, message in served["components"]["messages"].items():
        assert message == platform["components"]["messages"][mid]
        assert served["components"]["schemas"][mid] == platform["components"]["schemas"][mid]
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for topic in owned:
        assert f"<code>{topic}</code>" in page.text

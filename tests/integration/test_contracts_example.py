"""The integrator's example reads certificate events from the real broker with only the contract."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import date
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bekal.devtools.broker import EmbeddedBroker
from bekal.shared.events.catalogue import CertificateIssued
from bekal.shared.events.topics import CERTIFICATION_CERTIFICATES
from bekal.shared.messaging.kafka import make_producer
from bekal.shared.settings import Settings
from tests.support.factories import certificate_issued
from tests.support.kafka import publish

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "subscribe_certificates.py"


async def test_prints_valid_certificates_and_reports_the_rest(broker: EmbeddedBroker) -> None:
    settings = Settings(
        service_name="certification",
        environment="test",
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_namespace=f"t{uuid.uuid4().hex[:8]}.",
    )
    topic = settings.topic(CERTIFICATION_CERTIFICATES)
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    issued = certificate_issued(number="IKMA/2024/000042", issued_on=date(2024, 8, 17))
    (event_id,) = await publish(settings, [issued])
    producer = make_producer(settings)
    await producer.start()
    try:
        # Claims to be a certificate but lacks the number and misspells a date.
        broken = json.loads(issued.model_dump_json(exclude={"number"})) | {"issued_on": "17/08"}
        await producer.send_and_wait(
            topic,
            key=b"x",
            value=json.dumps(broken).encode(),
            headers=[("ce_type", CertificateIssued.event_type().encode()), ("ce_id", b"bad-1")],
        )
        await producer.send_and_wait(
            topic, value=b"{}", headers=[("ce_type", b"id.bekal.certification.future.v9")]
        )
    finally:
        await producer.stop()

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        "--bootstrap",
        broker.bootstrap_servers,
        "--group",
        f"integrator-{uuid.uuid4().hex[:6]}",
        "--topic",
        topic,
        "--max",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
    assert proc.returncode == 0, err.decode()
    printed = [json.loads(line) for line in out.decode().splitlines()]
    assert len(printed) == 1, out.decode()
    assert printed[0]["id"] == event_id
    assert printed[0]["type"] == CertificateIssued.event_type()
    assert printed[0]["key"] == str(issued.certificate_id)
    assert printed[0]["data"]["number"] == "IKMA/2024/000042"
    problems = err.decode()
    assert "'number' is a required property" in problems
    assert "issued_on" in problems
    assert "no schema for id.bekal.certification.future.v9" in problems

"""docs/integration.md's kcat command, as printed there, reads certificate events from Apache
Kafka: the key, the CloudEvents headers and the JSON an integrator is told to expect."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import uuid
from datetime import date
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bekal.devtools.apache_kafka import ApacheKafka
from bekal.shared.events.catalogue import CertificateIssued
from bekal.shared.events.topics import CERTIFICATION_CERTIFICATES
from bekal.shared.settings import Settings
from tests.support.factories import certificate_issued
from tests.support.kafka import publish

pytestmark = [pytest.mark.integration, pytest.mark.apache_kafka]

DOC = Path(__file__).resolve().parents[2] / "docs" / "integration.md"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def documented_command() -> list[str]:
    """The kcat command of the doc's "A first look with kcat" section, continuation lines joined."""
    section = DOC.read_text(encoding="utf-8").split("### A first look with kcat", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the kcat section has no sh block"
    return shlex.split(block.group(1).replace("\\\n", " "))


def test_the_documented_command_is_a_kcat_consumer_of_certificates() -> None:
    command = documented_command()
    assert command[0] == "kcat" and "-C" in command
    assert command[command.index("-t") + 1] == CERTIFICATION_CERTIFICATES
    assert command[command.index("-b") + 1] == "127.0.0.1:9092"


async def test_the_documented_kcat_command_prints_key_headers_and_json(
    kafka_node: ApacheKafka,
) -> None:
    kcat = shutil.which("kcat")
    if kcat is None:
        message = "kcat not installed (Debian package 'kcat'; `make kcat`)"
        if IN_CI:
            pytest.fail(message + " (CI=true: a missing dependency is a failure)", pytrace=False)
        pytest.skip(message)
    settings = Settings(
        service_name="certification",
        environment="test",
        kafka_bootstrap_servers=kafka_node.bootstrap_servers,
        kafka_enable_idempotence=True,
        kafka_namespace=f"t{uuid.uuid4().hex[:8]}.",
    )
    topic = settings.topic(CERTIFICATION_CERTIFICATES)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_node.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 3, 1)])
    finally:
        await admin.close()
    issued = certificate_issued(number="IKMA/2024/000777", issued_on=date(2024, 9, 7))
    (event_id,) = await publish(settings, [issued])

    command = [
        kafka_node.bootstrap_servers
        if arg == "127.0.0.1:9092"
        else topic
        if arg == CERTIFICATION_CERTIFICATES
        else arg
        for arg in documented_command()
    ]
    process = await asyncio.create_subprocess_exec(
        kcat, *command[1:], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    text = out.decode()
    assert f"key={issued.certificate_id}" in text
    assert f"ce_id={event_id}" in text
    assert f"ce_type={CertificateIssued.event_type()}" in text
    assert f"ce_subject={issued.certificate_id}" in text
    assert '"number":"IKMA/2024/000777"' in text.replace(" ", "")

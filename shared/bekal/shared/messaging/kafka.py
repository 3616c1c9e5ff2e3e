"""Kafka clients built from settings, and explicit topic creation (never auto-creation)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context

from bekal.shared.settings import Settings

log = structlog.get_logger(__name__)

TOPIC_ALREADY_EXISTS = TopicAlreadyExistsError.errno


def _common(settings: Settings) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "client_id": f"bekal-{settings.service_name}",
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        conf["sasl_mechanism"] = settings.kafka_sasl_mechanism
        conf["sasl_plain_username"] = settings.kafka_sasl_username
        conf["sasl_plain_password"] = settings.kafka_sasl_password
    if settings.kafka_security_protocol.upper().endswith("SSL"):
        # aiokafka needs an explicit context for TLS; the CA is the cluster's (e.g. Strimzi's).
        conf["ssl_context"] = create_ssl_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
    return conf


def make_producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **_common(settings),
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        request_timeout_ms=15000,
        linger_ms=5,
    )


def make_consumer(settings: Settings, group_id: str, topics: Iterable[str]) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *[settings.topic(t) for t in topics],
        **_common(settings),
        group_id=settings.topic(group_id),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=settings.consumer_batch_size,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
    )


async def ensure_topics(settings: Settings, names: Iterable[str]) -> list[str]:
    """Create the missing topics with the configured partitions; return those created."""
    wanted = sorted({settings.topic(n) for n in names})
    admin = AIOKafkaAdminClient(**_common(settings), request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [
                NewTopic(n, settings.kafka_topic_partitions, settings.kafka_replication_factor)
                for n in missing
            ]
        )
        created = []
        for topic, code, message in _topic_errors(response):
            if code == 0:
                created.append(topic)
            elif code != TOPIC_ALREADY_EXISTS:  # a sibling service may have just created it
                raise RuntimeError(f"could not create topic {topic}: {code} {message}")
        if created:
            log.info("topics_created", topics=created, partitions=settings.kafka_topic_partitions)
        return created
    finally:
        await admin.close()


def _topic_errors(response: Any) -> list[tuple[str, int, str | None]]:
    out = []
    for item in response.topic_errors:
        topic, code = item[0], item[1]
        message = item[2] if len(item) > 2 else None
        out.append((topic, code, message))
    return out

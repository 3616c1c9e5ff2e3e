"""A consumer runner on the real broker for a test: topics made, producer and consumer started."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from bekal.shared.db import Database
from bekal.shared.events import catalogue
from bekal.shared.messaging.consumer import ConsumerRunner, Subscriptions
from bekal.shared.messaging.kafka import ensure_topics, make_consumer, make_producer
from bekal.shared.settings import Settings


async def start_runner(
    settings: Settings,
    db: Database,
    subs: Subscriptions,
    *,
    runner_class: type[ConsumerRunner] = ConsumerRunner,
) -> tuple[ConsumerRunner, AIOKafkaProducer]:
    """``subs``'s topics and dead-letter topic created, its group joined, a runner over ``db``
    (not started: call ``start()`` or hand it records). Stop its consumer and the producer."""
    await ensure_topics(settings, [*subs.topics, subs.dead_letter_topic])
    producer = make_producer(settings)
    await producer.start()
    consumer = make_consumer(settings, subs.group_id, subs.topics)
    await consumer.start()
    runner = runner_class(
        subscriptions=subs,
        registry=catalogue,
        db=db,
        settings=settings,
        consumer=consumer,
        dlq_producer=producer,
    )
    return runner, producer

"""What an operator relies on: health, readiness, metrics, request ids and traces across Kafka."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bekal.registry.app import create_app
from bekal.shared.messaging.models import OutboxMessage
from tests.support.apps import bearer, published, running
from tests.support.training import Training

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
FACILITY = {
    "code": "LP-OBS",
    "name": "Lapas Kelas IIA Pontianak",
    "kind": "lapas",
    "facility_class": "IIA",
    "province": "Kalimantan Barat",
    "regional_office": "Kanwil Kalimantan Barat",
    "capacity": 700,
}


async def test_health_metrics_request_id_and_trace_across_kafka(
    database_url, broker, make_settings
):  # type: ignore[no-untyped-def]
    settings = make_settings("registry", database_url, broker)
    app = create_app(settings)
    async with running(app) as client:
        assert (await client.get("/healthz")).json()["status"] == "ok"
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}

        created = await client.post(
            "/api/v1/facilities",
            json=FACILITY,
            headers={
                **bearer(settings, ministry="corrections", roles=["registry_admin"]),
                "X-Request-ID": "req-123",
                "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
            },
        )
        assert created.status_code == 201, created.text
        assert created.headers["X-Request-ID"] == "req-123"

        # The trace started by the request is the one the event carries on Kafka.
        async with app.state.db.session() as s:
            row = (await s.scalars(select(OutboxMessage))).one()
        assert row.traceparent is not None and row.traceparent.split("-")[1] == TRACE_ID
        (record,) = await published(app, "registry.facilities")
        headers = dict(record.headers)
        assert headers["traceparent"].decode().split("-")[1] == TRACE_ID

        metrics = (await client.get("/metrics")).text
        assert 'bekal_http_request_duration_seconds_count{method="POST"' in metrics
        assert 'route="/api/v1/facilities"' in metrics
        assert 'bekal_events_published_total{service="registry"' in metrics
        assert 'bekal_outbox_backlog{service="registry"} 0.0' in metrics

        missing = await client.get("/api/v1/nothing-here")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert missing.json()["status"] == 404

        # Without a token: 401 problem+json with the challenge header.
        anonymous = await client.post("/api/v1/facilities", json=FACILITY)
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"


async def test_readiness_fails_when_the_consumer_loop_has_ended(training: Training) -> None:
    ready = await training.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["consumer"] == "ok"
    # The loop ends as an unexpected error would end it: nothing is consumed any more.
    task = training.app.state.messaging.runner._task
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    ready = await training.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["consumer"] == "stopped"


async def test_an_app_whose_consumer_loop_has_ended_still_stops_all_it_started(
    training: Training,
) -> None:
    messaging = training.app.state.messaging
    task = messaging.runner._task
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    # The ended loop's outcome stopped the shutdown here once, leaving the relay running and
    # the database open after the app was gone.
    await messaging.stop()
    assert not messaging.relay.running
    assert messaging.person_keys._task.done()
    assert messaging.producer._closed

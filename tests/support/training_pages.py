"""Training's staff pages under test: training served on a real port with the test realm's
provider, its replica of the registry fed through its own event handlers (no registry runs)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bekal.shared.events.catalogue import Event, Sex
from bekal.shared.events.envelope import EventMeta
from bekal.shared.messaging.consumer import BatchContext, Delivered, HandlerContext
from bekal.training.app import create_app
from bekal.training.handlers import subscriptions
from bekal.training.settings import TrainingSettings
from tests.support.factories import TANGERANG, facility_registered, inmate_shared, person_name
from tests.support.keycloak import Keycloak, User
from tests.support.staff_pages import free_port, provider_settings, served

# The realm's training administrator (tools/keycloak/realm-bekal.json): programs and sessions
# are theirs to publish and schedule, and they may do all a training officer does.
TRAINING_ADMIN = User("admin.pelatihan", ("training_admin",), "industry")
PEOPLE = 25
START = date.today()  # day 1 is today: the attendance page opens on it
DAYS = [START + timedelta(days=n) for n in range(5)]


class Training:
    def __init__(self, base: str, app: Any, people: list[Any], facility: Any) -> None:
        self.base, self.app, self.people, self.facility = base, app, people, facility

    async def deliver(self, *events: Event) -> None:
        """Registry events through training's own handlers, as its consumer applies them."""
        for event in events:
            meta = EventMeta(
                id=str(uuid.uuid4()),
                type=event.event_type(),
                source="/registry",
                subject=event.aggregate_id,
                time=datetime.now(UTC),
            )
            async with self.app.state.db.session() as session:
                batch = subscriptions.batch_handlers.get(event.event_type())
                if batch is not None:
                    await batch([Delivered(event, meta)], BatchContext(session))
                else:
                    handler = subscriptions.handlers[event.event_type()]
                    await handler(event, HandlerContext(session=session, meta=meta))
                await session.commit()


@asynccontextmanager
async def served_training(keycloak: Keycloak, directory: Path) -> AsyncIterator[Training]:
    """Training on a free port, knowing LPP-TANGERANG and PEOPLE consenting women there."""
    port = free_port()
    settings = TrainingSettings(
        environment="test",
        database_url=f"sqlite+aiosqlite:///{directory / 'training.db'}",
        kafka_bootstrap_servers="127.0.0.1:1",  # pages need no broker: events wait in the outbox
        auth_dev_key_file=directory / "dev.pem",
        web_base_url=f"http://127.0.0.1:{port}",
        log_json=True,
        **provider_settings(keycloak),
    )
    app = create_app(settings)
    async with served(app, port) as base:
        facility = facility_registered(TANGERANG)
        people = [
            inmate_shared(
                facility,
                full_name=person_name(n, Sex.FEMALE),
                sex=Sex.FEMALE,
                birth_year=1985 + n % 10,
                expected_release_date=START + timedelta(days=60 + n),
            )
            for n in range(PEOPLE)
        ]
        found = Training(base, app, people, facility)
        await found.deliver(facility, *people)
        yield found

"""The app factory every service uses: HTTP plumbing, health, metrics, outbox relay, consumer."""

from __future__ import annotations

import asyncio
import gc
import hmac
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bekal.shared import metrics
from bekal.shared.auth import TokenVerifier
from bekal.shared.db import Database
from bekal.shared.events import catalogue
from bekal.shared.events.topics import owned_by, read_by
from bekal.shared.guards import (
    BodyLimit,
    ForwardedClient,
    parse_networks,
    refuse_control_characters,
)
from bekal.shared.logging import configure_logging, new_traceparent, set_traceparent
from bekal.shared.messaging.admin import dead_letter_router
from bekal.shared.messaging.consumer import ConsumerRunner, Subscriptions
from bekal.shared.messaging.kafka import (
    ensure_topics,
    make_consumer,
    make_producer,
    rewind_to_committed,
)
from bekal.shared.messaging.outbox import OutboxRelay, backlog
from bekal.shared.messaging.person_keys import SESSION_INFO_KEY, PersonKeyRing
from bekal.shared.migrations import upgrade
from bekal.shared.problems import (
    NotFound,
    Unauthorized,
    document_problems,
    install_problem_handlers,
)
from bekal.shared.settings import Environment, Settings
from bekal.shared.web.docs import install_docs
from bekal.shared.web.install import install_pages, install_security_headers

log = structlog.get_logger(__name__)


S = TypeVar("S", bound=Settings)
# Work a service does at start-up or shut-down, given the app (its state: db, messaging, ...).
AppWork = Callable[[FastAPI], Awaitable[None]]
ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


@dataclass
class ServiceSpec(Generic[S]):
    """What makes one service different from the others, all in one place: the shared factory
    builds every app from one of these, and nothing is patched onto an app afterwards.

    In the lifespan, in this order: the database (migrated), ``resources``, messaging made,
    ``on_startup``, messaging started; at shut-down ``on_shutdown``, messaging stopped, the
    database closed.
    """

    name: str  # registry, training, certification, reporting
    package: str  # bekal.registry
    title: str
    description: str
    routers: Sequence[APIRouter]  # the service's api.routers
    # The staff pages the service serves beside its API (its web.routers, under /staf).
    pages: Sequence[APIRouter] = field(default_factory=tuple)
    subscriptions: Subscriptions | None = None
    extra_topics: Sequence[str] = field(default_factory=tuple)
    # What the service keeps on app.state (a signing key, a rate limiter), made from its
    # settings when the app is made: before resources and messaging, which may use it.
    state: Callable[[FastAPI, S], None] | None = None
    # What the handlers need of the app, by name (ctx.resources); made before messaging starts.
    resources: Callable[[FastAPI, S], Mapping[str, Any]] | None = None
    # Run in order once the database is migrated, before the broker is connected: what they
    # set up (reporting: the generation the consumer writes to) is there before any event.
    on_startup: Sequence[AppWork] = field(default_factory=tuple)
    # Run in order at shut-down, before messaging stops and the database closes: work that
    # writes to the database (an import job) or drives the consumer ends first.
    on_shutdown: Sequence[AppWork] = field(default_factory=tuple)
    # Domain errors the service turns into problem+json, beside the shared problem handlers.
    exception_handlers: Mapping[type[Exception], ExceptionHandler] = field(default_factory=dict)


class Messaging:
    """Connects to Kafka in the background, retrying: HTTP serves even while the broker is away."""

    def __init__(
        self,
        spec: ServiceSpec[Any],
        settings: Settings,
        db: Database,
        resources: Mapping[str, Any] | None = None,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.db = db
        self.resources = dict(resources or {})
        self.producer = make_producer(settings)
        self.relay = OutboxRelay(db=db, producer=self.producer, settings=settings)
        # The person keys, for a service that needs names (training, certification).
        self.person_keys = PersonKeyRing(settings) if read_by(spec.name) else None
        if self.person_keys is not None:
            db.session_info[SESSION_INFO_KEY] = self.person_keys
            self.relay.person_keys = self.person_keys
        self.runner: ConsumerRunner | None = None
        # Where the live consumer applies events: the service's own database unless the
        # service says otherwise (reporting: its live generation), see consume_into.
        self.consumer_db = db
        self.consumer_label = ""
        self.consumer_floors: Mapping[TopicPartition, int] = {}
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # Starting, pausing and stopping the live runner happen one at a time.
        self._consumer_lock = asyncio.Lock()
        db.outbox_listeners.append(self.relay.wake)

    def topics(self) -> list[str]:
        names = set(owned_by(self.spec.name)) | set(self.spec.extra_topics)
        names |= set(read_by(self.spec.name))
        if self.spec.subscriptions:
            names |= set(self.spec.subscriptions.topics)
            names.add(self.spec.subscriptions.dead_letter_topic)
        return sorted(names)

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect(), name="messaging-connect")

    async def _connect(self) -> None:
        delay = 0.5
        while not self._stopping:
            try:
                await ensure_topics(self.settings, self.topics())
                await self.producer.start()
                break
            except Exception as exc:
                log.warning("broker_unavailable", error=str(exc)[:300], retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
        while self.person_keys is not None and not self._stopping:
            try:
                await self.person_keys.start()  # every key there is, before any event
                break
            except Exception as exc:
                log.warning("person_keys_unavailable", error=str(exc)[:300], retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
        if self._stopping:
            return
        self.relay.start()
        subs = self.spec.subscriptions
        if subs and self.settings.consumer_auto_start:
            async with self._consumer_lock:
                consumer = await self._join(subs)
                if consumer is None:
                    return
                self._run(consumer)
        self.ready.set()
        log.info("messaging_ready", topics=self.topics())

    async def _join(self, subs: Subscriptions) -> AIOKafkaConsumer | None:
        """The group's consumer, joined; retried until it joins or the service stops.

        A refused join (a session timeout outside the broker's bounds, a missing ACL, an
        unreachable coordinator) is logged as an error each time: it used to end this task
        unseen, leaving a service that answers HTTP but never becomes ready.
        """
        delay = 0.5
        while not self._stopping:
            consumer = make_consumer(
                self.settings, subs.group_id, subs.topics, listener=_Reassigned(self)
            )
            try:
                await consumer.start()
                return consumer
            except Exception as exc:
                await consumer.stop()
                log.error(
                    "consumer_join_failed",
                    group=self.settings.topic(subs.group_id),
                    error=f"{type(exc).__name__}: {exc}"[:300],
                    retry_in=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
            except BaseException:  # cancelled by a shutdown while joining: close what was opened
                await consumer.stop()
                raise
        return None

    def _run(self, consumer: AIOKafkaConsumer) -> None:
        """A runner on the group's consumer, applying events to ``consumer_db``."""
        assert self.spec.subscriptions is not None
        self.runner = ConsumerRunner(
            subscriptions=self.spec.subscriptions,
            registry=catalogue,
            db=self.consumer_db,
            settings=self.settings,
            consumer=consumer,
            dlq_producer=self.producer,
            resources=self.resources,
            person_keys=self.person_keys,
            commit_label=self.consumer_label,
            floors=self.consumer_floors,
        )
        self.runner.start()

    def consume_into(
        self,
        db: Database,
        *,
        label: str = "",
        floors: Mapping[TopicPartition, int] | None = None,
    ) -> None:
        """Apply events to ``db`` from now on: before messaging starts, or in consumer_paused.

        Offsets are committed labelled ``label``. A partition resuming from an offset committed
        under another label, by a member applying to another database, is read again from its
        floor in ``floors``: ``db`` holds everything before it (see ConsumerRunner).
        """
        self.consumer_db = db
        self.consumer_label = label
        self.consumer_floors = dict(floors or {})

    @asynccontextmanager
    async def consumer_paused(self) -> AsyncIterator[AIOKafkaConsumer | None]:
        """The live runner stopped, its consumer back at the group's committed offsets, for the
        block (None if the consumer has not joined yet); then a runner again on
        ``consumer_db``, which the block may change (consume_into), from where the consumer is.

        A stopped runner may leave records fetched but not applied, which its consumer's next
        fetch would skip: the rewind reads them again.
        """
        async with self._consumer_lock:
            runner = self.runner
            try:
                if runner is not None:
                    await runner.stop()
                    await rewind_to_committed(runner.consumer)
                yield None if runner is None else runner.consumer
            finally:
                # Whatever the block or the rewind raised: a stopped runner left so would keep
                # its partitions in the group with nobody applying them.
                if runner is not None and not self._stopping:
                    self._run(runner.consumer)

    async def stop_consuming(self) -> None:
        """Stop the live runner and leave the group, for good: a service may need it before it
        closes the database the runner writes to. Messaging's stop does it too.

        A join still under way is given up: it holds the consumer lock for as long as the
        group takes to rebalance, which has no bound a shutdown could wait for.
        """
        self._stopping = True
        if self._task and not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task})
        async with self._consumer_lock:
            if self.runner:
                await self.runner.stop()
                await self.runner.consumer.stop()

    async def stop(self) -> None:
        # Every part is stopped even when one before it fails: a part left running outlives
        # the app and its event loop.
        async with AsyncExitStack() as parts:
            if self.person_keys is not None:
                parts.push_async_callback(self.person_keys.stop)
            parts.push_async_callback(self.producer.stop)
            parts.push_async_callback(self.relay.stop)
            await self.stop_consuming()


class _Reassigned(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells the live runner which partitions a rebalance gave it: it vets their committed
    offsets before applying their records."""

    def __init__(self, messaging: Messaging) -> None:
        self.messaging = messaging

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        pass

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if self.messaging.runner is not None:
            self.messaging.runner.reassigned(assigned)


def create_app(spec: ServiceSpec[S], settings: S) -> FastAPI:
    """The service's app: the shared HTTP plumbing, operations routes and lifespan, plus what
    ``spec`` adds. ``settings`` is the service's own settings class."""
    configure_logging(service=spec.name, level=settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The engine first: it makes a SQLite file's directory, which a first start may lack.
        db = Database(settings.database_url, pool_size=settings.database_pool_size)
        # What has started is stopped in reverse order, each part even when one stopped before
        # it fails, and also when start-up itself fails: a part left running (a relay, a pooled
        # connection) outlives the app and its event loop. The database closes last, so that
        # nothing still running writes to it.
        async with AsyncExitStack() as started:
            started.push_async_callback(db.dispose)
            if settings.run_migrations_on_start:
                await asyncio.to_thread(upgrade, spec.package, settings.database_url)
            app.state.db = db
            resources = spec.resources(app, settings) if spec.resources else None
            messaging = Messaging(spec, settings, db, resources)
            app.state.messaging = messaging
            started.push_async_callback(messaging.stop)
            for work in spec.on_startup:
                await work(app)
            for work in reversed(spec.on_shutdown):
                started.push_async_callback(work, app)
            messaging.start()
            # What start-up made (modules, the ORM's mappings, templates, schemas) lives as
            # long as the process: out of the collector's sight, a full collection under load
            # no longer walks all of it again (a service holds over a hundred MiB of such
            # objects). Only a served process (`bekal serve`) does it: one that makes many apps
            # in turn (a test run) would keep every earlier app's cycles frozen for good.
            if app.state.freeze_after_start:
                gc.collect()
                gc.freeze()
            log.info("service_started", port=settings.http_port)
            yield
        log.info("service_stopped")

    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version="1.0.0",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,  # served offline by install_docs
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.freeze_after_start = False  # `bekal serve` sets it
    app.state.token_verifier = TokenVerifier(settings)
    if spec.state:
        spec.state(app, settings)
    install_problem_handlers(app)
    for exc_class, handler in spec.exception_handlers.items():
        app.add_exception_handler(exc_class, handler)
    _document_problems_in_openapi(app)
    app.add_middleware(_UnexpectedErrors)
    app.add_middleware(_RequestContext, service=spec.name)
    # Every API route refuses control characters in its text before its handler runs.
    text_checked = [Depends(refuse_control_characters)]
    app.include_router(_operations_router(spec), dependencies=text_checked)
    for router in spec.routers:
        app.include_router(router, dependencies=text_checked)
    install_docs(app)
    if spec.pages and settings.staff_pages_configured:
        install_pages(app, settings, spec.pages)
    elif spec.pages:
        log.warning("staff_pages_off", reason="WEB_OIDC_ISSUER or WEB_SESSION_SECRET unset")
    # Before any layer reads the body: a body over the cap is refused unread (413), one
    # that streams past it as soon as it does. Upload routes raise the cap for themselves.
    app.add_middleware(BodyLimit, max_body_size=settings.http_max_body_bytes)
    install_security_headers(app, settings)
    # Outermost: every layer inside sees the client's address resolved once.
    app.add_middleware(ForwardedClient, trusted=parse_networks(settings.trusted_proxies))
    return app


def _document_problems_in_openapi(app: FastAPI) -> None:
    """The OpenAPI document declares the problem+json answers the handlers give."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class _UnexpectedErrors:
    """An exception no handler expected is answered here, inside the other layers, by the app's
    own handler for it (problem+json, or the staff pages' error page).

    Starlette answers it in its outermost layer, outside every middleware: the answer carried
    no request id and none of the security headers, and was counted as a 500 whatever its
    status (a database that cannot be reached is a 503, a value it cannot hold a 422).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            handler = scope["app"].exception_handlers.get(Exception)
            if started or handler is None:
                raise  # half an answer is out: the server can only drop the connection
            answer = handler(Request(scope, receive), exc)
            response: Response = await answer if inspect.isawaitable(answer) else answer
            await response(scope, receive, send)


class _RequestContext:
    """Request id and trace context on every log line; latency into /metrics.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` ran every request's app in a
    task of its own and passed the response through memory streams (about a twentieth of a
    person's page under py-spy). As before, the latency is taken, observed and logged when
    the response's headers go out, and the request id is bound for everything the request
    logs until it ends.
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = headers.get("x-request-id") or str(uuid.uuid4())
        set_traceparent(new_traceparent(headers.get("traceparent")))
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        done = False

        def finished(status: int) -> None:
            nonlocal done
            done = True
            seconds = time.perf_counter() - started
            path = getattr(scope.get("route"), "path", "unmatched")
            metrics.HTTP_REQUEST_SECONDS.labels(
                self.service, scope["method"], path, str(status)
            ).observe(seconds)
            if path not in ("/healthz", "/readyz", "/metrics"):
                log.info(
                    "http_request",
                    method=scope["method"],
                    route=path,
                    status=status,
                    ms=round(seconds * 1000, 1),
                )

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start" and not done:
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
                finished(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if not done:
                finished(500)
            structlog.contextvars.unbind_contextvars("request_id", "trace_id")


def _operations_router(spec: ServiceSpec[Any]) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": spec.name}

    @router.get("/readyz", summary="Database and broker reachable")
    async def readyz(request: Request) -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(request.app.state.db.ping(), timeout=3)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unavailable: {type(exc).__name__}"
        messaging = request.app.state.messaging
        checks["broker"] = "ok" if messaging.ready.is_set() else "connecting"
        if messaging.runner is not None:
            # A consumer loop that ended (an unexpected error) applies nothing more: say so.
            checks["consumer"] = "ok" if messaging.runner.running else "stopped"
        ok = all(v == "ok" for v in checks.values())
        body: dict[str, Any] = {"status": "ready" if ok else "not_ready", "checks": checks}
        demo = request.app.state.settings.demo_status_file
        if demo is not None:  # `bekal run`: "loading" until the demo data is in, then "loaded"
            try:
                body["demo_data"] = demo.read_text(encoding="utf-8").strip() or "unknown"
            except OSError:
                body["demo_data"] = "not loaded"
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus(request: Request) -> Response:
        _admit_scraper(request)
        try:
            metrics.OUTBOX_BACKLOG.labels(spec.name).set(await backlog(request.app.state.db))
        except Exception:  # metrics must answer while the database is away
            pass
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @router.get("/asyncapi.json", summary="AsyncAPI 3: the topics this service writes and reads")
    async def asyncapi_json() -> JSONResponse:
        return JSONResponse(_asyncapi(spec))

    @router.get("/asyncapi", summary="The AsyncAPI document as a page", include_in_schema=False)
    async def asyncapi_page() -> HTMLResponse:
        from bekal.shared.contracts import render_html

        return HTMLResponse(render_html(_asyncapi(spec)))

    if spec.subscriptions is not None:
        router.include_router(dead_letter_router())
    return router


def _admit_scraper(request: Request) -> None:
    """/metrics is open in development and tests; in production only to a scraper presenting
    METRICS_TOKEN as its bearer token, and not at all without one (a 404, as if absent)."""
    settings: Settings = request.app.state.settings
    if settings.environment is not Environment.PRODUCTION:
        return
    if not settings.metrics_token:
        raise NotFound("Tidak ada di alamat ini.")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = settings.metrics_token.encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise Unauthorized("Metrik hanya untuk pengumpul metrik yang membawa METRICS_TOKEN")


def _asyncapi(spec: ServiceSpec[Any]) -> dict[str, Any]:
    """Built from the catalogue on each call: cheap, and never stale after a reload."""
    from bekal.shared.contracts import service_asyncapi

    return service_asyncapi(spec.name, spec.subscriptions)

"""Service configuration from the environment: what every service reads.

A setting only one service reads lives in that service's own ``settings.py``, in a subclass.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


DEV_WEB_SESSION_SECRET = "development-only-session-secret"
# Who signs the development tokens (`bekal token`): never trusted in production.
DEV_TOKEN_ISSUER = "bekal-dev"


# The outbox relay's and the consumers' batches by default (``outbox_batch``,
# ``consumer_batch``). On PostgreSQL a larger batch spreads each transaction's cost over more
# rows (docs/performance.md): the relay ran at run medians of 0.62 to 0.66 of raw produce with
# 1,000 rows a batch, 0.68 to 0.71 with 5,000; training's consumer about 9 % faster with 500
# records than with 200. On SQLite a batch holds the one writer, every request's write waiting
# meanwhile (the relay's: about 5 ms a thousand rows in sqlite3 alone), so it keeps the smaller
# batches.
OUTBOX_BATCH_POSTGRESQL = 5000
OUTBOX_BATCH_SQLITE = 1000
CONSUMER_BATCH_POSTGRESQL = 500
CONSUMER_BATCH_SQLITE = 200


def _batch_size(most: int, what: str, postgresql: int, sqlite: int) -> Any:
    """A batch size setting: unset, the database's default (``Settings._by_database``)."""
    return Field(
        default=None,
        ge=1,
        le=most,
        description=f"{what}; by default {postgresql} on PostgreSQL and {sqlite} on SQLite, "
        "whose one writer holds every request's write meanwhile",
    )


# The services whose tokens carry an audience of their own (see audience_of).
SERVICES = ("registry", "training", "certification", "reporting")


def audience_of(service: str) -> str:
    """The audience a service accepts by default: 'bekal-registry' for the registry; plain
    settings (tools, tests) keep 'bekal'."""
    return f"bekal-{service}" if service in SERVICES else "bekal"


class Settings(BaseSettings):
    """What every service reads from its environment; each service's own settings add to it.

    The same names are used by the embedded runner, docker-compose.yml and the Kubernetes
    manifests; a test keeps them in step.
    """

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    environment: Environment = Environment.DEVELOPMENT
    service_name: str = Field(
        default="bekal", description="registry, training, certification or reporting"
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    database_url: str = Field(
        default="",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://...; "
        "empty means a SQLite file of the service's own under ./var/data/",
    )
    database_pool_size: int = 10
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_enable_idempotence: bool = Field(
        default=False,
        description="On for Apache Kafka in production; the embedded broker has none.",
    )
    kafka_namespace: str = Field(
        default="",
        description="Prefix for every topic and consumer group, e.g. 'staging.'",
    )
    kafka_topic_partitions: int = 3
    kafka_replication_factor: int = 1
    kafka_session_timeout_ms: int = Field(
        default=10000,
        description="Consumer group session; a new member's join waits about half of it",
    )
    kafka_heartbeat_interval_ms: int = 3000
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_cafile: Path | None = Field(
        default=None,
        description="CA bundle that signed the brokers' certificates (SSL/SASL_SSL protocols)",
    )
    outbox_poll_interval_seconds: float = 0.5
    outbox_publish_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long the relay waits for a batch to be queued and acknowledged "
        "before it counts the rest as failed and tries again",
    )
    # Outbox rows the relay reads at once (``outbox_batch``); it hands them to the producer while
    # the batch before them is acknowledged.
    outbox_batch_size: int | None = _batch_size(
        10_000,
        "Outbox rows the relay reads and marks sent in one transaction",
        OUTBOX_BATCH_POSTGRESQL,
        OUTBOX_BATCH_SQLITE,
    )
    # Records a consumer fetches at most at once, over all its partitions, and the most one
    # partition's transaction holds (``consumer_batch``).
    consumer_batch_size: int | None = _batch_size(
        5000,
        "Records a consumer fetches at most at once and applies in one transaction",
        CONSUMER_BATCH_POSTGRESQL,
        CONSUMER_BATCH_SQLITE,
    )
    consumer_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Partitions a consumer applies at once, each in its own transaction on its "
        "own connection (at most the database pool's size); SQLite, one writer at a time, "
        "always applies one",
    )
    consumer_fetch_max_wait_ms: int = Field(
        default=250,
        ge=1,
        le=10_000,
        description="How long the broker may hold a consumer's fetch while it has nothing to "
        "return. Apache Kafka answers as soon as a record arrives; Tansu holds every fetch "
        "this long even when records arrive meanwhile, so there it bounds each hop's latency, "
        "and a shorter wait means more fetches for Tansu to serve (docs/performance.md)",
    )
    consumer_max_attempts: int = Field(
        default=5, description="Tries of a failing handler before dead-lettering"
    )
    consumer_retry_backoff_seconds: float = 0.2
    consumer_auto_start: bool = True
    consumer_journal: bool = Field(
        default=False,
        description="Append every delivery and every application to consumer_journal (audits, "
        "fault tests): unlike the inbox it shows an event applied twice",
    )
    auth_issuer: str = DEV_TOKEN_ISSUER
    auth_audience: str = Field(
        default="",
        description="The audience a token must name (its `aud`) to be accepted here; empty "
        "means the service's own, 'bekal-<service>': a token for one service is not one "
        "for another",
    )
    auth_max_token_lifetime_seconds: int = Field(
        default=12 * 3600,
        ge=60,
        description="The longest a token may live (exp - iat); a longer one is refused",
    )
    auth_max_token_bytes: int = Field(
        default=8192,
        ge=1024,
        description="The largest bearer token read at all; a larger one is refused undecoded",
    )
    auth_jwks_url: str | None = Field(
        default=None, description="OIDC JWKS URL; production must set it"
    )
    auth_dev_key_file: Path = Path("var/keys/dev-signing-key.pem")
    # Staff pages: sign-in at the ministry's OpenID provider (authorization code flow, PKCE).
    web_oidc_issuer: str | None = Field(
        default=None,
        description="The OpenID provider's issuer URL (its discovery document is read from it); "
        "without it only the development sign-in is offered",
    )
    web_oidc_client_id: str = "bekal-staff"
    web_oidc_client_secret: str | None = Field(
        default=None, description="Empty for a public client (PKCE alone)"
    )
    web_base_url: str | None = Field(
        default=None,
        description="Where staff reach this service, e.g. https://registry.example.go.id; the "
        "provider sends them back under it. Taken from each request when unset",
    )
    web_session_secret: str = Field(
        default=DEV_WEB_SESSION_SECRET,
        description="Signs the staff pages' session cookie; production serves no page without "
        "its own",
    )
    web_session_max_age_seconds: int = Field(default=8 * 3600, ge=60)
    http_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="The largest request body a route takes unless it declares its own (the "
        "registry's CSV upload); a larger one is refused with 413 before it is read",
    )
    trusted_proxies: str = Field(
        default="",
        description="The proxies whose X-Forwarded-For / Forwarded headers name the client: "
        "addresses or networks, comma-separated (e.g. '10.0.0.0/8'); none by default, so "
        "the socket's peer is the client",
    )
    metrics_token: str | None = Field(
        default=None,
        description="Production: the bearer token a scraper presents for /metrics; without "
        "one production serves no /metrics (development and tests keep it open)",
    )
    log_level: str = "INFO"
    log_json: bool = True
    run_migrations_on_start: bool = True
    demo_status_file: Path | None = Field(
        default=None,
        description="Development: where `bekal run` writes whether the demo data is loading; "
        "/readyz repeats it (informative: it never makes a service unready)",
    )

    @model_validator(mode="after")
    def _own_database_by_default(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///./var/data/{self.service_name}.db"
        return self

    @model_validator(mode="after")
    def _own_audience_by_default(self) -> Settings:
        if not self.auth_audience:
            self.auth_audience = audience_of(self.service_name)
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: str) -> str:
        from bekal.shared.guards import parse_networks

        parse_networks(value)  # a ValueError names the entry that is not an address
        return value

    @model_validator(mode="after")
    def _refuse_development_secrets_in_production(self) -> Settings:
        if self.environment is Environment.PRODUCTION and not self.auth_jwks_url:
            raise ValueError("AUTH_JWKS_URL must be set in production (no local dev key)")
        if self.environment is Environment.PRODUCTION and self.auth_issuer == DEV_TOKEN_ISSUER:
            raise ValueError(
                "AUTH_ISSUER must name the identity provider in production, "
                f"not {DEV_TOKEN_ISSUER!r}"
            )
        return self

    @property
    def staff_pages_configured(self) -> bool:
        """Production serves the staff pages only with a provider and a session secret of
        its own; development and tests always (with the preset users)."""
        if self.environment is not Environment.PRODUCTION:
            return True
        return bool(self.web_oidc_issuer) and self.web_session_secret != DEV_WEB_SESSION_SECRET

    @classmethod
    def of(cls, settings: Settings | None) -> Self:
        """A service's settings from plain shared ones (tests and tools build those), with the
        service's defaults for what they lack; from the environment when there are none."""
        if settings is None:
            return cls()
        if isinstance(settings, cls):
            return settings
        return cls(**settings.model_dump())

    def topic(self, name: str) -> str:
        """The physical topic (or consumer group) name for a catalogue name."""
        return f"{self.kafka_namespace}{name}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def outbox_batch(self) -> int:
        """Outbox rows the relay reads and marks sent in one transaction."""
        return self._by_database(
            self.outbox_batch_size, OUTBOX_BATCH_POSTGRESQL, OUTBOX_BATCH_SQLITE
        )

    @property
    def consumer_batch(self) -> int:
        """Records a consumer fetches at most at once, and applies in one transaction."""
        return self._by_database(
            self.consumer_batch_size, CONSUMER_BATCH_POSTGRESQL, CONSUMER_BATCH_SQLITE
        )

    def _by_database(self, size: int | None, postgresql: int, sqlite: int) -> int:
        return size or (sqlite if self.is_sqlite else postgresql)


@lru_cache
def get_settings() -> Settings:
    return Settings()

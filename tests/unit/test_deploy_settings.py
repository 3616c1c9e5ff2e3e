"""docker-compose.yml and the Kubernetes manifests configure the services with the same names."""

from __future__ import annotations

import importlib
import ipaddress
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from bekal.devtools.manifests import SECRET_KEYS
from bekal.shared.cli import SERVICES
from bekal.shared.guards import parse_networks
from bekal.shared.settings import Environment, Settings

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = Path(sys.executable).parent / "kubectl"
# Compose runs with the local development key; a cluster verifies tokens with the identity
# provider's keys and reaches Kafka over TLS with a user of its own.
COMPOSE_ONLY = {"AUTH_DEV_KEY_FILE"}
CLUSTER_ONLY = {
    "AUTH_JWKS_URL",
    "AUTH_ISSUER",
    "AUTH_AUDIENCE",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CAFILE",
    # Compose offers the development sign-in; a cluster signs staff in at the provider.
    "WEB_OIDC_ISSUER",
    "WEB_OIDC_CLIENT_ID",
    "WEB_BASE_URL",
    "WEB_SESSION_SECRET",
    "WEB_OIDC_CLIENT_SECRET",
    # Compose runs in development, where reporting's public rounding takes a development key.
    "PUBLICATION_SECRET",
    # Compose has no proxy in front and serves /metrics openly, as development does.
    "TRUSTED_PROXIES",
    "METRICS_TOKEN",
}


@cache
def rendered() -> tuple[dict[str, Any], ...]:
    done = subprocess.run(
        [str(KUBECTL), "kustomize", str(ROOT / "deploy/overlays/local")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return tuple(d for d in yaml.safe_load_all(done.stdout) if d)


def settings_class(service: str) -> type[Settings]:
    """The service's own settings (bekal.<service>.settings), the shared ones and its own."""
    module = importlib.import_module(f"bekal.{service}.settings")
    cls = getattr(module, f"{service.capitalize()}Settings")
    assert issubclass(cls, Settings)
    return cls  # type: ignore[no-any-return]


def field_names(cls: type[Settings]) -> set[str]:
    return {name.upper() for name in cls.model_fields}


def compose_names(service: str) -> set[str]:
    with (ROOT / "docker-compose.yml").open(encoding="utf-8") as fh:
        env = yaml.safe_load(fh)["services"][service]["environment"]
    return set(env)


def cluster_env(service: str) -> tuple[dict[str, str], set[str]]:
    """(ConfigMap data, every name the pod gets: ConfigMap, env entries, Secret keys)."""
    config = next(
        d["data"]
        for d in rendered()
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == f"{service}-config"
    )
    deployment = next(
        d for d in rendered() if d["kind"] == "Deployment" and d["metadata"]["name"] == service
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    names = set(config) | {e["name"] for e in container.get("env", [])} | set(SECRET_KEYS[service])
    return config, names


@pytest.mark.parametrize("service", SERVICES)
def test_every_cluster_setting_is_a_settings_field(service: str) -> None:
    _, names = cluster_env(service)
    unknown = names - field_names(settings_class(service))
    assert not unknown, f"{service}: the manifests set {sorted(unknown)}, which no setting reads"


@pytest.mark.parametrize("service", SERVICES)
def test_compose_and_kubernetes_set_the_same_names(service: str) -> None:
    _, names = cluster_env(service)
    compose = compose_names(service)
    assert compose - COMPOSE_ONLY <= names, (
        f"{service}: compose sets {sorted(compose - COMPOSE_ONLY - names)}, the cluster does not"
    )
    assert names - compose <= CLUSTER_ONLY, (
        f"{service}: the cluster sets {sorted(names - compose - CLUSTER_ONLY)}, compose does not"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_the_cluster_configuration_is_valid_production_settings(service: str) -> None:
    config, _ = cluster_env(service)
    secrets = {
        "DATABASE_URL": f"postgresql+asyncpg://{service}:x@db:5432/{service}",
        "PSEUDONYM_SECRET": "Q84HI6pLx0wEhtmpaAGbTsT5VoV1XpHs68w9O9gTXLfX",
        "KAFKA_SASL_PASSWORD": "from-strimzi",
        "WEB_SESSION_SECRET": "another-real-secret-from-the-platform",
        "WEB_OIDC_CLIENT_SECRET": "from-the-provider",
        "PUBLICATION_SECRET": "the-platform's-own-publication-secret",
        "METRICS_TOKEN": "the-scraper's-token",
    }
    settings = settings_class(service)(**{k.lower(): v for k, v in {**config, **secrets}.items()})
    assert settings.environment is Environment.PRODUCTION
    assert settings.kafka_enable_idempotence is True
    assert settings.run_migrations_on_start is False
    assert settings.service_name == service
    # The staff pages are on: sign-in at the ministry's provider, the platform's session secret.
    assert settings.staff_pages_configured
    assert settings.web_oidc_issuer == settings.auth_issuer
    # Behind the ingress controller: its forwarded client address is believed, no one else's.
    assert ipaddress.ip_address("10.244.3.7") in parse_networks(settings.trusted_proxies)[0]
    assert settings.metrics_token  # every service's Secret holds the scraper's token

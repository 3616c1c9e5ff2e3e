"""The ``bekal`` command of every service image: serve, migrate, registry-import, dev tokens.

Other distributions add commands through the entry-point group ``bekal.commands`` (a function
given the subparsers): bekal-devtools adds ``run`` and ``contracts`` on a developer's machine.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from importlib.metadata import entry_points
from typing import Any

SERVICES = ("registry", "training", "certification", "reporting")
DEFAULT_PORTS = {"registry": 8001, "training": 8002, "certification": 8003, "reporting": 8004}
# Where other installed distributions register their commands (bekal-devtools: run, contracts).
COMMANDS_GROUP = "bekal.commands"

ROLE_PRESETS: dict[str, tuple[str, list[str]]] = {
    "registry-admin": ("corrections", ["registry_admin"]),
    "facility-officer": ("corrections", ["facility_officer"]),
    "training-admin": ("industry", ["training_admin", "training_officer"]),
    "training-officer": ("industry", ["training_officer"]),
    "certification-admin": ("industry", ["certification_admin"]),
    "reporting-viewer": ("industry", ["reporting_viewer"]),
    "operator": ("industry", ["operator"]),
}


def _token(args: argparse.Namespace) -> int:
    from bekal.shared.auth import mint_token
    from bekal.shared.settings import Settings, audience_of

    settings = Settings()
    if settings.auth_jwks_url:
        print(
            "AUTH_JWKS_URL is set: get tokens from the identity provider, not from here.",
            file=sys.stderr,
        )
        return 2
    ministry, roles = ROLE_PRESETS[args.preset] if args.preset else (args.ministry, [])
    roles = list(dict.fromkeys(roles + (args.role or [])))
    if not ministry or not roles:
        print("give --preset, or --ministry and at least one --role", file=sys.stderr)
        return 2
    audience = [audience_of(s) for s in args.service] if args.service else None
    try:
        token = mint_token(
            settings,
            subject=args.subject,
            ministry=ministry,
            roles=roles,
            facilities=args.facility or [],
            ttl_seconds=args.ttl,
            audience=audience,
        )
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(token)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from bekal.shared.migrations import upgrade
    from bekal.shared.settings import Settings

    settings = Settings(service_name=args.service)
    upgrade(f"bekal.{args.service}", settings.database_url, args.revision)
    print(f"{args.service}: migrated to {args.revision}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    os.environ.setdefault("SERVICE_NAME", args.service)
    os.environ.setdefault("HTTP_PORT", str(DEFAULT_PORTS[args.service]))
    module = importlib.import_module(f"bekal.{args.service}.app")
    app = module.create_app()
    settings = app.state.settings
    app.state.freeze_after_start = True
    uvicorn.run(app, **uvicorn_options(settings))
    return 0


def uvicorn_options(settings: Any) -> dict[str, Any]:
    """How `bekal serve` runs uvicorn. Its own proxy headers are off: uvicorn would trust
    X-Forwarded-For from 127.0.0.1 (or whoever FORWARDED_ALLOW_IPS names); the app reads
    forwarded headers only from the proxies in TRUSTED_PROXIES (bekal.shared.guards)."""
    return {
        "host": settings.http_host,
        "port": settings.http_port,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 10,
        "proxy_headers": False,
        "server_header": False,
    }


def _registry_import(args: argparse.Namespace) -> int:
    # Imported here: only an installation with the registry has this command's code.
    from bekal.registry.cli import run_import_command

    return run_import_command(args)


def _destroy_withdrawn_keys(args: argparse.Namespace) -> int:
    """The keys kept by consent withdrawals recorded before a withdrawal destroyed the key."""
    import asyncio

    from rich.console import Console  # the registry's dependency

    from bekal.registry.cli import destroy_withdrawn
    from bekal.registry.settings import RegistrySettings
    from bekal.shared.migrations import upgrade

    settings = RegistrySettings(service_name="registry")
    upgrade("bekal.registry", settings.database_url)
    return asyncio.run(destroy_withdrawn(settings, Console()))


def _rekey_history(args: argparse.Namespace) -> int:
    """The migration of a history published before crypto-shredding (docs/runbook.md)."""
    import asyncio

    from bekal.shared.migrations import upgrade

    if args.service == "registry":
        from rich.console import Console  # the registry's dependency

        from bekal.registry.cli import rekey_history
        from bekal.registry.settings import RegistrySettings

        settings = RegistrySettings(service_name="registry")
        upgrade(f"bekal.{args.service}", settings.database_url)
        return asyncio.run(rekey_history(settings, Console()))
    from bekal.shared.db import Database
    from bekal.shared.events.topics import TRAINING_ENROLLMENTS
    from bekal.shared.messaging.rekey import rekey_with_ring
    from bekal.training.settings import TrainingSettings

    training = TrainingSettings(service_name="training")
    upgrade("bekal.training", training.database_url)

    async def run() -> int:
        db = Database(training.database_url)
        try:
            result = await rekey_with_ring(settings=training, topic=TRAINING_ENROLLMENTS, db=db)
        finally:
            await db.dispose()
        print(
            f"{TRAINING_ENROLLMENTS}: {result.copied} rekaman disalin, {result.sealed} disegel, "
            f"{result.dropped_fields} tanpa data pribadi (sudah dihapus)."
        )
        return 0

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bekal", description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("token", help="mint a development token (local signing key)")
    p.add_argument(
        "--preset", choices=sorted(ROLE_PRESETS), help="a ministry and roles in one word"
    )
    p.add_argument("--ministry", choices=["corrections", "industry"])
    p.add_argument("--role", action="append", help="a role (repeatable)")
    p.add_argument(
        "--facility", action="append", help="a facility code the bearer may see (repeatable)"
    )
    p.add_argument(
        "--service",
        action="append",
        choices=SERVICES,
        help="a service the token is for (repeatable; default: every service)",
    )
    p.add_argument("--subject", default="dev-user")
    p.add_argument("--ttl", type=int, default=8 * 3600, help="lifetime in seconds")
    p.set_defaults(fn=_token)

    p = sub.add_parser("migrate", help="apply a service's migrations to DATABASE_URL")
    p.add_argument("service", choices=SERVICES)
    p.add_argument("--revision", default="head")
    p.set_defaults(fn=_migrate)

    p = sub.add_parser("serve", help="serve one service (settings from the environment)")
    p.add_argument("service", choices=SERVICES)
    p.set_defaults(fn=_serve)

    p = sub.add_parser(
        "registry-import",
        help="import inmates from a CSV export into the registry (DATABASE_URL, PSEUDONYM_SECRET)",
    )
    p.add_argument("file", help="the CSV file; columns in docs/registry-import.md")
    p.add_argument(
        "--dry-run", action="store_true", help="check every line, report bad ones, write nothing"
    )
    p.add_argument("--actor", help="who is importing, for the audit trail (default cli:<user>)")
    p.add_argument("--chunk-size", type=int, default=1000, help="lines per transaction")
    p.set_defaults(fn=_registry_import)

    p = sub.add_parser(
        "rekey-history",
        help=(
            "seal the names in a topic's history published before crypto-shredding: "
            "registry.inmates (registry) or training.enrollments (training); the service "
            "stopped, its outbox empty (docs/runbook.md)"
        ),
    )
    p.add_argument("service", choices=("registry", "training"))
    p.set_defaults(fn=_rekey_history)

    p = sub.add_parser(
        "destroy-withdrawn-keys",
        help=(
            "registry: destroy the person keys that consent withdrawals recorded before "
            "key generations kept (docs/runbook.md, section 8)"
        ),
    )
    p.set_defaults(fn=_destroy_withdrawn_keys)

    for command in entry_points(group=COMMANDS_GROUP):
        command.load()(sub)

    args = parser.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())

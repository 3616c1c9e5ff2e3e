"""The development commands of ``bekal``: ``run`` (the whole platform here) and ``contracts``.

They join the ``bekal`` command (``bekal.shared.cli``) through the entry-point group
``bekal.commands`` this distribution declares; no service image installs it, so there ``bekal``
has neither.
"""

from __future__ import annotations

import argparse
import sys


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``run`` and ``contracts`` to the ``bekal`` command's subcommands."""
    p = commands.add_parser(
        "run", help="run the whole platform locally (broker, four services, demo data)"
    )
    p.add_argument("--no-demo", action="store_true", help="do not load the demo data")
    p.set_defaults(fn=_run)

    p = commands.add_parser(
        "contracts",
        help="AsyncAPI, event JSON Schemas, Kafka topics/ACLs and kustomize bases from the code",
    )
    p.add_argument("action", choices=["generate", "check"])
    p.add_argument("--root", default=".", help="the repository root (default: here)")
    p.set_defaults(fn=_contracts)


def _run(args: argparse.Namespace) -> int:
    from bekal.devtools.devrun import main as devrun_main

    return devrun_main(load_demo=not args.no_demo)


def _contracts(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bekal.devtools.generated import run

    root = Path(args.root).resolve()
    if not (root / "docker-compose.yml").is_file() or not (root / "shared").is_dir():
        print(f"{root} is not the repository root (give --root)", file=sys.stderr)
        return 2
    result = run(root, write=args.action == "generate")
    for problem in result.breaking:
        print(f"BREAKING {problem}", file=sys.stderr)
    if result.breaking:
        print(
            "A published event version may only gain optional fields: publish the change as a "
            "new class with version = 2 (its schema file was left as committed).",
            file=sys.stderr,
        )
    if args.action == "generate":
        for rel in result.written:
            print(f"wrote {rel}")
        print(f"{len(result.written)} file(s) updated")
        return 1 if result.breaking else 0
    for rel in result.stale:
        print(f"out of date: {rel}", file=sys.stderr)
    if result.stale:
        print("run `bekal contracts generate` (or `make contracts`) and commit", file=sys.stderr)
    if result.stale or result.breaking:
        return 1
    print("contracts and manifests are up to date")
    return 0

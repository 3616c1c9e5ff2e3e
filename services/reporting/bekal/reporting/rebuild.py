"""Rebuild reporting's projections in the running service and follow it until it switches over.

``python -m bekal.reporting.rebuild --url http://reporting:8004`` (token of an ``operator`` in
``BEKAL_TOKEN`` or ``--token``) asks the service to rebuild every projection from the beginning
of the topics into a new generation, then shows the progress until the service has switched
over to it (the old generation answers meanwhile). ``--status`` only shows the generations;
``--drop N`` drops a retired generation. How it works: ``generations.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import httpx

PATH = "/api/v1/admin/projections"


def _generation(status: dict[str, Any], number: int) -> dict[str, Any]:
    return next(g for g in status["data"] if g["number"] == number)


def follow(client: httpx.Client, number: int, *, poll_seconds: float = 1.0) -> dict[str, Any]:
    """Poll the service until generation ``number`` is live (or failed), showing progress."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn(f"Membangun ulang proyeksi (generasi {number})"),
        BarColumn(),
        MofNCompleteColumn(),
    ) as bar:
        task = bar.add_task("rebuild", total=None)
        while True:
            response = client.get(PATH)
            response.raise_for_status()
            generation = _generation(response.json(), number)
            bar.update(
                task,
                completed=generation["records_done"],
                total=generation["records_total"] or None,
            )
            if generation["status"] != "building":
                return generation
            time.sleep(poll_seconds)


def main(argv: list[str] | None = None, *, transport: httpx.BaseTransport | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bekal.reporting.rebuild",
        description="Rebuild reporting's projections into a new generation in the running "
        "service; it switches over once caught up, the old generation answering meanwhile.",
    )
    parser.add_argument("--url", default="http://localhost:8004", help="the reporting service")
    parser.add_argument("--token", default=os.environ.get("BEKAL_TOKEN"), help="operator token")
    parser.add_argument("--poll-seconds", type=float, default=1.0, help=argparse.SUPPRESS)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--status", action="store_true", help="only show the generations")
    action.add_argument("--drop", type=int, metavar="N", help="drop retired generation N")
    args = parser.parse_args(argv)
    if not args.token:
        print("Token operator diperlukan (--token atau BEKAL_TOKEN).", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {args.token}"}
    with httpx.Client(
        base_url=args.url, headers=headers, timeout=30, transport=transport
    ) as client:
        if args.status:
            response = client.get(PATH)
        elif args.drop is not None:
            response = client.delete(f"{PATH}/{args.drop}")
        else:
            response = client.post(f"{PATH}/rebuild")
            if response.status_code == 202:
                number = response.json()["building"]
                generation = follow(client, number, poll_seconds=args.poll_seconds)
                if generation["status"] != "live":
                    print(f"Gagal: {generation['error']}", file=sys.stderr)
                    return 1
                print(
                    f"Selesai: generasi {number} aktif, {generation['records_done']} peristiwa "
                    "diterapkan. Generasi lama disimpan sampai dihapus (--drop)."
                )
                return 0
        if response.is_error:
            print(response.json().get("detail", response.text), file=sys.stderr)
            return 1
        print(json.dumps(response.json(), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

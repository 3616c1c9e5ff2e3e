"""Subscribe to Bekal's certificate events, validate each against its published schema, print it.

A starting point for another ministry's system. It needs nothing from Bekal's code, only the
published contract (contracts/asyncapi.yaml and contracts/schemas/, or a service's
/asyncapi.json) and two libraries: ``pip install aiokafka jsonschema``.

    python examples/subscribe_certificates.py \\
        --bootstrap bekal-kafka-bootstrap.kafka.svc:9093 --group kemnaker-certificates \\
        --security-protocol SASL_SSL --sasl-username kemnaker --sasl-password-file pw.txt \\
        --ca-file ca.crt --schemas contracts/schemas

What it shows:
- its own consumer group (``--group``): it keeps its own position and never disturbs Bekal's;
- CloudEvents in Kafka binary mode: the type and id are headers (``ce_type``, ``ce_id``), the
  value is the event's JSON data, the key is the certificate id;
- schemas are looked up by event type and version (``<ce_type>.json``); a type it has no schema
  for is skipped, not fatal (new event types may appear on the topic);
- unknown fields are allowed: a version only ever gains optional fields;
- offsets are committed only after the event was handled (at-least-once): deduplicate on
  ``ce_id`` if handling twice would matter.
Each valid event is printed as one JSON line on stdout; problems go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.helpers import create_ssl_context
from jsonschema import Draft202012Validator

TOPIC = "certification.certificates"
DEFAULT_SCHEMAS = Path(__file__).resolve().parents[1] / "contracts" / "schemas"


def load_validators(directory: Path) -> dict[str, Draft202012Validator]:
    """One validator per event type, from the committed schema files (<event type>.json)."""
    validators = {}
    for path in sorted(directory.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        validators[schema.get("x-event-type", path.stem)] = Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
    return validators


def handle(record: Any, validators: dict[str, Draft202012Validator]) -> dict[str, Any] | None:
    """The printable event, or None (reported on stderr) when it cannot be used."""
    headers = {k: v.decode("utf-8", "replace") for k, v in record.headers or ()}
    event_type = headers.get("ce_type")
    where = f"{record.topic}/{record.partition}@{record.offset}"
    if event_type is None:
        print(f"skip {where}: not a CloudEvent (no ce_type header)", file=sys.stderr)
        return None
    validator = validators.get(event_type)
    if validator is None:
        print(f"skip {where}: no schema for {event_type}", file=sys.stderr)
        return None
    try:
        data = json.loads(record.value)
    except (TypeError, ValueError) as exc:
        print(f"invalid {where} {event_type}: value is not JSON ({exc})", file=sys.stderr)
        return None
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    if errors:
        reasons = "; ".join(
            f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors
        )
        print(f"invalid {where} {event_type}: {reasons}", file=sys.stderr)
        return None
    return {
        "id": headers.get("ce_id"),
        "type": event_type,
        "source": headers.get("ce_source"),
        "time": headers.get("ce_time"),
        "key": record.key.decode() if record.key else None,
        "data": data,
    }


async def run(args: argparse.Namespace) -> int:
    validators = load_validators(args.schemas)
    if not validators:
        print(f"no schemas in {args.schemas}", file=sys.stderr)
        return 2
    security: dict[str, Any] = {"security_protocol": args.security_protocol}
    if args.security_protocol.endswith("SSL"):
        security["ssl_context"] = create_ssl_context(cafile=args.ca_file)
    if args.sasl_username:
        password = args.sasl_password_file.read_text(encoding="utf-8").strip()
        security |= {
            "sasl_mechanism": args.sasl_mechanism,
            "sasl_plain_username": args.sasl_username,
            "sasl_plain_password": password,
        }
    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        # A new group starts from the oldest event still on the topic (the whole history).
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        **security,
    )
    await consumer.start()
    seen = 0
    try:
        while args.max is None or seen < args.max:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    seen += 1
                    event = handle(record, validators)
                    if event is not None:
                        print(json.dumps(event, ensure_ascii=False), flush=True)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:29092", help="Kafka bootstrap servers")
    parser.add_argument("--group", required=True, help="your own consumer group id")
    parser.add_argument("--topic", default=TOPIC)
    parser.add_argument("--schemas", type=Path, default=DEFAULT_SCHEMAS)
    parser.add_argument("--security-protocol", default="PLAINTEXT")
    parser.add_argument("--sasl-mechanism", default="SCRAM-SHA-512")
    parser.add_argument("--sasl-username")
    parser.add_argument("--sasl-password-file", type=Path)
    parser.add_argument("--ca-file", help="CA certificate of the Kafka cluster (TLS)")
    parser.add_argument("--max", type=int, help="stop after this many records (default: never)")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())

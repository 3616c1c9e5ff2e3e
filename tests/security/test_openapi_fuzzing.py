"""Property-based fuzzing of every service's OpenAPI with schemathesis, in process.

Cases are generated from each app's own OpenAPI document (valid and invalid ones), sent through
ASGI to the running app on PostgreSQL with a token whose roles reach the logic, and each answer
is checked: no 5xx, a documented status, the documented media type, body and headers.
Generation is derandomised, so a run is repeatable; the example counts keep it to minutes.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation.case import Case
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bekal.shared.auth import mint_token
from tests.security.support import SERVICES, client_for, service_app, service_settings
from tests.support.apps import running
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

POSITIVE_EXAMPLES = 20  # per operation: requests the schema allows, which reach the logic
NEGATIVE_EXAMPLES = 8  # per operation: requests the schema forbids, which must be refused cleanly
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Per service, a token whose roles reach every operation (operators for the dead letters).
TOKENS: dict[str, tuple[str, list[str]]] = {
    "registry": ("corrections", ["registry_admin", "operator"]),
    "training": ("industry", ["training_admin", "training_officer", "field_officer", "operator"]),
    "certification": ("industry", ["certification_admin", "operator"]),
    "reporting": ("industry", ["training_admin", "reporting_viewer", "operator"]),
}


async def consuming(app: FastAPI) -> bool:
    """The consumer runs (where there is one): dead-letter retries have something to use."""
    return app.state.messaging.spec.subscriptions is None or app.state.messaging.runner is not None


def generated(operation: Any, mode: GenerationMode, count: int) -> list[Case]:
    """``count`` cases of ``operation``, the same ones on every run."""
    cases: list[Case] = []

    @given(operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def collect(case: Case) -> None:
        cases.append(case)

    try:
        collect()
    except Unsatisfiable:  # nothing invalid to send (an operation without inputs)
        pass
    return cases


def request_of(client: httpx.AsyncClient, case: Case, headers: dict[str, str]) -> httpx.Request:
    kwargs = case.as_transport_kwargs(base_url="http://t", headers=headers)
    data = kwargs.get("data")
    return client.build_request(
        kwargs["method"],
        kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        cookies=kwargs.get("cookies"),
        json=kwargs.get("json"),
        content=data if isinstance(data, bytes | str) else None,
        data=data if isinstance(data, dict) else None,
        files=kwargs.get("files"),
    )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("service", SERVICES)
async def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(
    service: str, database_url: str, broker: Any, make_settings: Any, tmp_path: Path
) -> None:
    settings = service_settings(
        service, make_settings, database_url, broker, tmp_path, log_level="WARNING"
    )
    app = service_app(service, settings)
    ministry, roles = TOKENS[service]
    token = mint_token(settings, subject="fuzzer", ministry=ministry, roles=roles)
    auth = {"Authorization": f"Bearer {token}"}

    failures: Counter[str] = Counter()
    examples: dict[str, str] = {}
    sent = 0
    async with running(app), client_for(app) as client:
        await wait_until(lambda: consuming(app), what=f"{service} consuming")
        schema = schemathesis.openapi.from_dict(app.openapi())
        operations = []
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), f"the OpenAPI document is unusable: {result}"
            operations.append(result.ok())
        for operation in operations:
            for mode, count in (
                (GenerationMode.POSITIVE, POSITIVE_EXAMPLES),
                (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES),
            ):
                for case in generated(operation, mode, count):
                    response = await client.send(request_of(client, case, auth))
                    sent += 1
                    try:
                        case.validate_response(response, checks=CHECKS)
                    except BaseException as exc:  # schemathesis raises a group of failures
                        if not isinstance(exc, AssertionError | BaseExceptionGroup):
                            raise
                        title = str(exc).split("\n\n")[1] if "\n\n" in str(exc) else str(exc)
                        key = f"{operation.label} -> {response.status_code}: {title.strip()}"
                        failures[key] += 1
                        examples.setdefault(
                            key,
                            f"{response.request.method} {response.request.url} "
                            f"body={response.request.content[:200]!r} -> "
                            f"{response.headers.get('content-type')} {response.text[:200]}",
                        )
    print(
        f"\n{service}: {len(operations)} operations, {sent} generated requests, "
        f"{sum(failures.values())} failed checks"
    )
    report = [f"{n} x {key}\n    e.g. {examples[key]}" for key, n in failures.items()]
    assert not failures, "\n".join(report)

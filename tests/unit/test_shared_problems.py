"""Problem details as answered: the document, its media type and the headers a problem carries."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from bekal.shared.problems import (
    PROBLEM_JSON,
    TooManyRequests,
    Unauthorized,
    document_problems,
    install_problem_handlers,
    is_unstorable_value,
    problem_response,
)


def test_problem_headers_are_sent_with_the_document() -> None:
    response = problem_response(TooManyRequests("Coba lagi nanti.", headers={"Retry-After": "7"}))
    assert response.status_code == 429
    assert response.media_type == PROBLEM_JSON
    assert response.headers["retry-after"] == "7"
    assert json.loads(response.body)["status"] == 429


def test_unauthorized_asks_for_a_bearer_token_and_keeps_its_own_headers() -> None:
    response = problem_response(Unauthorized("Token kedaluwarsa.", headers={"X-Hint": "login"}))
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["x-hint"] == "login"


def _app_raising(exc: Exception) -> Any:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom/{item_id}", responses={429: {"content": {"text/html": {}}}})
    async def boom(item_id: int) -> None:
        raise exc

    return app


async def _get(app: Any, path: str = "/boom/1") -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path)


class _AsyncpgDataError(Exception):
    sqlstate = "22021"  # character_not_in_repertoire: a NUL in a text column


@pytest.mark.parametrize(
    "cause",
    [OverflowError("Python int too large to convert to SQLite INTEGER"), _AsyncpgDataError()],
    ids=["integer-too-large", "sqlstate-22"],
)
async def test_a_value_the_database_cannot_hold_is_the_clients_422_not_a_500(
    cause: Exception,
) -> None:
    wrapped = DBAPIError("SELECT 1", {}, cause)
    assert is_unstorable_value(wrapped)
    r = await _get(_app_raising(wrapped))
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM_JSON
    assert r.json()["type"].endswith("/unstorable-value")


async def test_an_unexpected_error_is_still_a_500_problem() -> None:
    assert not is_unstorable_value(RuntimeError("bug"))
    r = await _get(_app_raising(RuntimeError("bug")))
    assert r.status_code == 500 and r.headers["content-type"] == PROBLEM_JSON


def test_the_openapi_document_declares_problem_answers_and_keeps_a_pages_own() -> None:
    app = _app_raising(RuntimeError())
    operation = document_problems(app.openapi())["paths"]["/boom/{item_id}"]["get"]
    responses = operation["responses"]
    assert {"404", "422", "429", "503"} <= responses.keys()
    assert "401" not in responses  # no security on this operation
    assert set(responses["422"]["content"]) == {PROBLEM_JSON}
    assert set(responses["429"]["content"]) == {"text/html"}

"""Problem details as answered: the document, its media type and the headers a problem carries."""

from __future__ import annotations

import json

from bekal.shared.problems import (
    PROBLEM_JSON,
    TooManyRequests,
    Unauthorized,
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

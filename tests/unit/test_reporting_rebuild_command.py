"""The rebuild command starts a rebuild in the running service and follows it to the end."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from bekal.reporting.rebuild import main


def _service(states: list[dict[str, Any]], calls: list[str]) -> httpx.MockTransport:
    """The service's answers: 202 to the start, then each status in turn."""

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        assert request.headers["authorization"] == "Bearer T"
        if request.method == "POST":
            return httpx.Response(202, json={"live": 0, "building": 1, "data": []})
        state = states.pop(0) if len(states) > 1 else states[0]
        return httpx.Response(200, json=state)

    return httpx.MockTransport(handle)


def _status(status: str, done: int, total: int, error: str | None = None) -> dict[str, Any]:
    generation = {"number": 1, "status": status, "records_done": done, "records_total": total}
    return {"live": 1 if status == "live" else 0, "data": [generation | {"error": error}]}


def test_the_command_follows_the_rebuild_until_the_new_generation_is_live(capsys) -> None:
    calls: list[str] = []
    states = [_status("building", 0, 0), _status("building", 40, 90), _status("live", 90, 90)]
    code = main(
        ["--token", "T", "--url", "http://reporting", "--poll-seconds", "0"],
        transport=_service(states, calls),
    )
    assert code == 0
    assert (
        calls == ["POST /api/v1/admin/projections/rebuild"] + ["GET /api/v1/admin/projections"] * 3
    )
    assert "generasi 1 aktif, 90 peristiwa" in capsys.readouterr().out


def test_a_failed_rebuild_ends_the_command_with_its_error(capsys) -> None:
    states = [_status("failed", 3, 90, error="KafkaError: gone")]
    code = main(["--token", "T", "--poll-seconds", "0"], transport=_service(states, []))
    assert code == 1
    assert "KafkaError: gone" in capsys.readouterr().err


def test_the_command_needs_an_operator_token(monkeypatch, capsys) -> None:
    monkeypatch.delenv("BEKAL_TOKEN", raising=False)
    assert main([]) == 2
    assert "Token operator" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--status"], ["--drop", "0"]])
def test_status_and_drop_print_the_service_answer(args: list[str], capsys) -> None:
    calls: list[str] = []
    code = main(["--token", "T", *args], transport=_service([_status("live", 1, 1)], calls))
    assert code == 0
    assert json.loads(capsys.readouterr().out)["live"] == 1
    assert calls == [
        "GET /api/v1/admin/projections"
        if args == ["--status"]
        else "DELETE /api/v1/admin/projections/0"
    ]

"""A CSV import that is not UTF-8 text in lines of an export (Latin-1, UTF-16, a binary file, a
line far too long) is refused before anything is written, naming the line and the encoding
expected; a UTF-8 byte-order mark is accepted. Through the API and the import itself, on SQLite
and PostgreSQL."""

from __future__ import annotations

import codecs
from typing import Any

import pytest

from bekal.registry.importer import MAX_LINE_BYTES, BadEncoding, LineError, run_import
from bekal.registry.models import ImportJob, Inmate
from bekal.shared.messaging.models import OutboxMessage
from tests.support.registry import SECRET, Registry

pytestmark = pytest.mark.integration

HEADER = (
    "registration_number,full_name,nik,sex,date_of_birth,facility_code,admission_date,"
    "consent_training,consent_data_sharing\n"
)


def line(n: int, name: str = "Siti Aminah") -> str:
    return f"EN.{n},{name},61710145059{n:05d},F,1990-05-05,LP-ENC,2023-01-10,ya,ya\n"


def export(lines: int, *, name_at: dict[int, str] | None = None) -> str:
    """An export of ``lines`` people; ``name_at`` names the person on a physical line (the
    header is line 1)."""
    names = name_at or {}
    return HEADER + "".join(line(n, names.get(n + 2, "Siti Aminah")) for n in range(lines))


LATIN_1 = export(3, name_at={4: "José Simões"}).encode("latin-1")  # é is 0xE9 on line 4
UTF_16 = export(3).encode("utf-16")  # with its byte-order mark
UTF_16_WITHOUT_MARK = export(3).encode("utf-16-le")
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)) * 4
OVERSIZED = (export(1) + "EN.9," + "x" * (MAX_LINE_BYTES + 10) + "\n").encode()
CASES: dict[str, tuple[bytes, int, str]] = {
    # what is uploaded, the line named, words of the English detail
    "latin-1": (LATIN_1, 4, "not UTF-8 text (byte 0xE9 at position 9;"),
    "utf-16": (UTF_16, 1, "UTF-16 or binary, not UTF-8"),
    "utf-16 without its mark": (UTF_16_WITHOUT_MARK, 1, "UTF-16 or binary, not UTF-8"),
    "binary": (BINARY, 1, "not UTF-8 text"),
    "oversized line": (OVERSIZED, 3, f"longer than {MAX_LINE_BYTES} bytes"),
}


@pytest.fixture
async def registry(registry: Registry) -> Registry:
    await registry.facility(
        {
            "code": "LP-ENC",
            "name": "Lapas Encoding",
            "kind": "lapas",
            "facility_class": "IIB",
            "province": "Kalimantan Barat",
            "regional_office": "Kanwil Kalbar",
            "capacity": 100,
        }
    )
    return registry


async def upload(reg: Registry, body: bytes) -> Any:
    return await reg.client.post(
        "/api/v1/imports",
        params={"dry_run": "false", "filename": "sdp.csv"},
        content=body,
        headers={**reg.admin, "Content-Type": "text/csv"},
    )


@pytest.mark.parametrize("case", CASES)
async def test_the_api_refuses_a_file_that_is_not_utf8_naming_the_line(
    registry: Registry, case: str
):
    body, line_number, words = CASES[case]
    r = await upload(registry, body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["type"].endswith("/csv-encoding")
    assert problem["detail"].startswith(f"Line {line_number}")
    assert words in problem["detail"] and "UTF-8" in problem["detail"]
    assert (problem["line"], problem["expected_encoding"]) == (line_number, "UTF-8")
    assert "Kesalahan internal" not in r.text
    # No job, no person, no event.
    assert await registry.count(ImportJob) == 0
    assert await registry.count(Inmate) == 0
    assert await registry.count(OutboxMessage) == 1  # the facility's own


async def test_a_bad_line_far_down_leaves_nothing_half_written(registry: Registry):
    # Three chunks of good lines, then one in Latin-1: not even the first chunk is imported.
    good = export(2500)
    body = good.encode() + line(9999, "Müller").encode("latin-1")
    r = await upload(registry, body)
    assert r.status_code == 422 and r.json()["line"] == 2502, r.text
    assert await registry.count(Inmate) == 0


async def test_the_import_itself_refuses_before_its_first_chunk(registry: Registry, tmp_path: Any):
    # The command line's way in, which no upload check stands before.
    path = tmp_path / "sdp.csv"
    path.write_bytes(export(30).encode() + line(31, "Müller").encode("latin-1"))
    errors: list[LineError] = []

    async def on_error(error: LineError) -> None:
        errors.append(error)

    with pytest.raises(BadEncoding) as refused:
        await run_import(
            registry.app.state.db,
            path,
            secret=SECRET,
            dry_run=False,
            recorded_by="cli:test",
            on_error=on_error,
            chunk_size=5,
        )
    assert refused.value.line == 32
    assert "Baris 32" in str(refused.value) and "UTF-8" in str(refused.value)
    assert await registry.count(Inmate) == 0 and not errors


async def test_a_utf8_byte_order_mark_is_accepted(registry: Registry):
    job = await registry.upload(codecs.BOM_UTF8.decode() + export(3))
    assert job["status"] == "done", job
    assert (job["created"], job["invalid"]) == (3, 0)
    assert sorted(await registry.people()) == ["EN.0", "EN.1", "EN.2"]

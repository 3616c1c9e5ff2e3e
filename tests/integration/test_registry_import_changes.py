"""Re-importing a daily export applies its changes to people already registered, on SQLite and
PostgreSQL: transfers, new expected release dates, releases and consent given, each with the
API's rules, events and a per-person audit entry; a dry run counts the same and writes nothing;
the same file twice changes nothing; an import cut off by a stop is marked and then completed.
"""

from __future__ import annotations

import csv
import io
import tempfile
import uuid
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bekal.registry.importer import COLUMNS, LineError, run_import
from bekal.registry.jobs import INTERRUPTED, UPLOAD_PREFIX
from bekal.registry.models import AuditEntry, Facility, ImportJob, Inmate, InmateMovement
from bekal.shared.db import utcnow
from bekal.shared.events.catalogue import InmateReleased, InmateShared, InmateTransferred
from bekal.shared.messaging.models import OutboxMessage
from tests.support.registry import SECRET, Registry, running_registry
from tests.support.training import running_training
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

FACILITIES = (("LP-A", True), ("LP-B", True), ("LP-CLOSED", False))


def person(number: str, nik: str, **changes: str) -> dict[str, str]:
    return {
        "registration_number": number,
        "full_name": f"Warga {number}",
        "nik": nik,
        "sex": "F",
        "date_of_birth": "1990-05-05",
        "education_level": "SMA",
        "facility_code": "LP-A",
        "admission_date": "2023-01-10",
        "expected_release_date": "2027-01-10",
        "status": "in_custody",
        "consent_training": "tidak",
        "consent_data_sharing": "tidak",
        **changes,
    }


def export(*people: dict[str, str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(people)
    return out.getvalue()


YES = {"consent_training": "ya", "consent_data_sharing": "ya"}
# Day 1: everyone in LP-A.
DAY_1 = [
    person("CH.A", "3201000000000001", **YES),  # moves to LP-B, the file says "tidak" for consent
    person("CH.B", "3201000000000002"),  # consents
    person("CH.C", "3201000000000003", **YES),  # new expected release date
    person("CH.D", "3201000000000004", **YES),  # released on parole
    person("CH.E", "3201000000000005"),  # "moved" to an inactive facility: a bad line
    person("CH.F", "3201000000000006"),  # another NIK under the same number: a bad line
    person("CH.H", "3201000000000008"),  # stays as is
]
# Day 2, line by line (the header is line 1).
DAY_2 = [
    person("CH.A", "3201000000000001", facility_code="LP-B"),  # 2: transferred
    person("CH.B", "3201000000000002", **YES),  # 3: updated (consent, shared)
    person("CH.C", "3201000000000003", expected_release_date="2026-12-20", **YES),  # 4: updated
    person("CH.D", "3201000000000004", status="parole", released_on="2026-11-20"),  # 5: released
    person("CH.E", "3201000000000005", facility_code="LP-CLOSED"),  # 6: bad
    person("CH.F", "3201000000000099"),  # 7: bad
    person("CH.G", "3201000000000007", status="released", release_kind="free"),  # 8: skipped
    person("CH.H", "3201000000000008"),  # 9: unchanged
    person("CH.I", "3201000000000009"),  # 10: created
]
NIKS = {p["nik"] for p in DAY_1 + DAY_2}


async def imported(reg: Registry, text: str, *, dry_run: bool = False) -> dict[str, Any]:
    """The import job of ``text``, done; it names no NIK."""
    done = await reg.upload(text, dry_run=dry_run, filename="sdp.csv")
    assert done["status"] == "done", done
    assert not any(nik in str(done) for nik in NIKS)
    return done


async def _facilities(reg: Registry) -> None:
    for code, active in FACILITIES:
        await reg.facility(
            {
                "code": code,
                "name": code,
                "kind": "lapas",
                "facility_class": "IIB",
                "province": "Jawa Barat",
                "regional_office": "Kanwil Jawa Barat",
                "capacity": 100,
                "active": active,
            }
        )


@pytest.fixture
async def registry(registry: Registry) -> Registry:
    """The registry with LP-A, LP-B and the inactive LP-CLOSED; its admin signs as ``adm``."""
    reg = replace(registry, admin_subject="adm")
    await _facilities(reg)
    return reg


def _uploads_left(job_id: uuid.UUID) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"{UPLOAD_PREFIX}{job_id}-*"))


def _snapshot(people: dict[str, Inmate]) -> dict[str, tuple[Any, ...]]:
    return {
        n: (
            str(p.facility_id),
            p.status,
            p.expected_release_date,
            p.consent_training,
            p.consent_data_sharing,
            p.shared,
            p.release_kind,
            p.updated_at,
        )
        for n, p in people.items()
    }


def _counts(job: dict[str, Any]) -> tuple[int, ...]:
    return tuple(
        job[k]
        for k in (
            "created",
            "updated",
            "transferred",
            "released",
            "unchanged",
            "skipped",
            "invalid",
        )
    )


async def test_a_daily_export_transfers_updates_releases_and_records_consent_of_registered_people(
    registry: Registry, capfd: pytest.CaptureFixture[str]
):
    reg = registry
    first = await imported(reg, export(*DAY_1))
    assert _counts(first) == (7, 0, 0, 0, 0, 0, 0)
    day_1 = await reg.people()
    before = _snapshot(day_1)
    outbox_before = await reg.count(OutboxMessage)
    audit_before = await reg.count(AuditEntry)

    # The dry run reports exactly what the real run will do, and writes nothing but its job.
    dry = await imported(reg, export(*DAY_2), dry_run=True)
    expected_counts = (1, 2, 1, 1, 1, 1, 2)
    assert _counts(dry) == expected_counts
    assert [(e["line"], e["field"]) for e in dry["errors"]] == [(6, "facility_code"), (7, "nik")]
    assert [(e["line"], e["field"]) for e in dry["skipped_lines"]] == [(8, "status")]
    assert _snapshot(await reg.people()) == before
    assert await reg.count(OutboxMessage) == outbox_before
    assert await reg.count(AuditEntry) == audit_before
    assert await reg.count(InmateMovement) == 0

    real = await imported(reg, export(*DAY_2))
    assert _counts(real) == expected_counts
    assert real["errors"] == dry["errors"] and real["skipped_lines"] == dry["skipped_lines"]
    now = await reg.people()
    a, b, c, d = (now[n] for n in ("CH.A", "CH.B", "CH.C", "CH.D"))
    # A: moved; the file's "tidak" did not withdraw the consent A gave.
    assert str(a.facility_id) == reg.facilities["LP-B"]
    assert a.shared and a.consent_training and a.consent_data_sharing
    assert a.consent_withdrawn_at is None
    # B: consent given in the file is recorded (by whoever ran the import) and shared.
    assert b.consent_training and b.consent_data_sharing and b.shared
    assert b.consent_recorded_by == "adm"
    assert c.expected_release_date == date(2026, 12, 20)
    assert (d.status, d.release_kind, d.released_on) == ("released", "parole", date(2026, 11, 20))
    # The bad lines changed nothing; the released stranger was not registered.
    assert str(now["CH.E"].facility_id) == reg.facilities["LP-A"]
    assert "CH.G" not in now and "CH.I" in now
    assert now["CH.H"].updated_at == day_1["CH.H"].updated_at
    async with reg.app.state.db.session() as s:
        moves = {
            (m.inmate_id, m.kind, m.release_kind)
            for m in (await s.scalars(select(InmateMovement))).all()
        }
    assert moves == {(a.id, "transfer", None), (d.id, "release", "parole")}

    # The same events as the API's movements, with the facilities' codes.
    events = [p.event for p in await reg.published("registry.inmates", at_least=7)]
    transferred = [e for e in events if isinstance(e, InmateTransferred)]
    assert [(e.participant_id, e.from_facility_code, e.to_facility_code) for e in transferred] == [
        (a.id, "LP-A", "LP-B")
    ]
    released = [e for e in events if isinstance(e, InmateReleased)]
    assert [(e.participant_id, e.release_kind.value) for e in released] == [(d.id, "parole")]
    shared = [e for e in events if isinstance(e, InmateShared)]
    assert all(e.facility_code == "LP-A" for e in shared)
    assert [e.participant_id for e in shared].count(b.id) == 1
    # C shared again, whole, with the new date: the industry side's window follows it.
    assert [e.expected_release_date for e in shared if e.participant_id == c.id] == [
        date(2027, 1, 10),
        date(2026, 12, 20),
    ]

    # Each change is in the person's audit trail: who ran the import, from which job and line.
    for inmate, action, line in (
        (a, "inmate.transferred", 2),
        (b, "inmate.consent_recorded", 3),
        (c, "inmate.expected_release_updated", 4),
        (d, "inmate.released", 5),
        (now["CH.I"], "inmate.registered", 10),
    ):
        entries = [e for e in await reg.trail(inmate.id) if e["action"] == action]
        assert len(entries) == 1, (action, entries)
        entry = entries[0]
        assert entry["actor"] == "adm" and entry["roles"] == ["registry_admin"]
        assert entry["detail"]["source"] == "http" and entry["detail"]["line"] == line
        assert entry["detail"]["job_id"] == real["id"]
    (update,) = [
        e for e in await reg.trail(c.id) if e["action"] == "inmate.expected_release_updated"
    ]
    assert (update["detail"]["from"], update["detail"]["to"]) == ("2027-01-10", "2026-12-20")

    # The same file again: nothing changes, nothing is published, only the summary is audited.
    outbox_after = await reg.count(OutboxMessage)
    audit_after = await reg.count(AuditEntry)
    after = _snapshot(await reg.people())
    again = await imported(reg, export(*DAY_2))
    assert _counts(again) == (0, 0, 0, 0, 6, 1, 2)
    assert _snapshot(await reg.people()) == after
    assert await reg.count(OutboxMessage) == outbox_after
    assert await reg.count(AuditEntry) == audit_after + 1

    logs = capfd.readouterr()
    assert not any(nik in logs.out + logs.err for nik in NIKS)


async def test_one_line_moves_redates_and_shares_a_person_and_the_next_line_changes_another(
    registry: Registry,
):
    """A chunk's changes are written together at its commit: each use case still sees what
    the previous one did to the same person, and the next person's are their own."""
    reg = registry
    await imported(
        reg, export(person("CH.M", "3201000000000020"), person("CH.N", "3201000000000021", **YES))
    )
    day_2 = export(
        person(
            "CH.M",
            "3201000000000020",
            facility_code="LP-B",
            expected_release_date="2026-12-24",
            **YES,
        ),
        person(
            "CH.N", "3201000000000021", facility_code="LP-B", expected_release_date="2026-12-25"
        ),
    )
    done = await imported(reg, day_2)
    assert _counts(done) == (0, 0, 2, 0, 0, 0, 0)
    people = await reg.people()
    m, n = people["CH.M"], people["CH.N"]
    for someone, released in ((m, date(2026, 12, 24)), (n, date(2026, 12, 25))):
        assert str(someone.facility_id) == reg.facilities["LP-B"]
        assert someone.expected_release_date == released and someone.shared
    assert m.consent_recorded_by == "adm"
    actions = {
        who.id: sorted(e["action"] for e in await reg.trail(who.id) if e["detail"].get("line"))
        for who in (m, n)
    }
    assert actions[m.id] == [
        "inmate.consent_recorded",
        "inmate.expected_release_updated",
        "inmate.registered",
        "inmate.transferred",
    ]
    assert actions[n.id] == [
        "inmate.expected_release_updated",
        "inmate.registered",
        "inmate.transferred",
    ]
    events = [p.event for p in await reg.published("registry.inmates", at_least=4)]
    # M shared once, after the move and with the new date; N shared again with its new date.
    assert [
        (e.facility_code, e.expected_release_date)
        for e in events
        if isinstance(e, InmateShared) and e.participant_id == m.id
    ] == [("LP-B", date(2026, 12, 24))]
    assert [
        (e.facility_code, e.expected_release_date)
        for e in events
        if isinstance(e, InmateShared) and e.participant_id == n.id
    ] == [("LP-A", date(2027, 1, 10)), ("LP-B", date(2026, 12, 25))]
    assert [type(e).__name__ for e in events if e.participant_id == n.id] == [
        "InmateShared",
        "InmateTransferred",
        "InmateShared",
    ]
    async with reg.app.state.db.session() as s:
        moves = (await s.scalars(select(InmateMovement))).all()
    assert sorted((str(x.inmate_id), x.kind) for x in moves) == sorted(
        [(str(m.id), "transfer"), (str(n.id), "transfer")]
    )


async def test_an_export_never_gives_back_consent_withdrawn_in_the_registry(registry: Registry):
    reg = registry
    line = person("CH.W", "3201000000000010", **YES)
    await imported(reg, export(line))
    (withdrawn,) = (await reg.people()).values()
    r = await reg.client.post(
        f"/api/v1/inmates/{withdrawn.id}/consent",
        json={"training": False, "data_sharing": False},
        headers=reg.admin,
    )
    assert r.status_code == 200, r.text
    outbox = await reg.count(OutboxMessage)

    again = await imported(reg, export(line))
    assert _counts(again) == (0, 0, 0, 0, 1, 0, 0)
    (person_now,) = (await reg.people()).values()
    assert not person_now.consent_training and not person_now.shared
    assert await reg.count(OutboxMessage) == outbox


async def test_a_temporarily_absent_person_is_not_moved_by_an_export(registry: Registry):
    reg = registry
    await imported(reg, export(person("CH.T", "3201000000000011")))
    (away,) = (await reg.people()).values()
    r = await reg.client.post(
        f"/api/v1/inmates/{away.id}/absence",
        json={"reason": "hospital", "absent_from": "2026-11-01"},
        headers=reg.admin,
    )
    assert r.status_code == 200, r.text

    same_place = await imported(reg, export(person("CH.T", "3201000000000011")))
    assert _counts(same_place) == (0, 0, 0, 0, 1, 0, 0)
    moved = await imported(reg, export(person("CH.T", "3201000000000011", facility_code="LP-B")))
    assert _counts(moved) == (0, 0, 0, 0, 0, 0, 1)
    assert [(e["line"], e["field"]) for e in moved["errors"]] == [(2, "status")]
    assert "keluar sementara" in moved["errors"][0]["reason"]
    (still,) = (await reg.people()).values()
    assert still.status == "temporarily_absent" and str(still.facility_id) == reg.facilities["LP-A"]


async def test_a_job_cut_off_by_a_stop_is_marked_interrupted_and_completed_by_submitting_again(
    database_url: str, broker: Any, make_settings: Any, tmp_path: Path
):
    settings = make_settings("registry", database_url, broker, pseudonym_secret=SECRET)
    everyone = [person(f"CUT.{n}", f"32010000000001{n:02d}") for n in range(10)]
    half = tmp_path / "half.csv"
    half.write_text(export(*everyone[:5]))
    async with running_registry(settings, admin_subject="adm") as reg:
        first = reg.app
        await _facilities(reg)

        async def ignore(_: LineError) -> None:
            return None

        # What the job had written when its process stopped: the first chunk.
        report = await run_import(
            first.state.db, half, secret=SECRET, dry_run=False, recorded_by="adm", on_error=ignore
        )
        assert report.created == 5
        long_ago = utcnow() - timedelta(minutes=10)
        cut_off, elsewhere, read_late = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        async with first.state.db.session() as s:
            for job_id, beat in ((cut_off, long_ago), (elsewhere, utcnow())):
                s.add(
                    ImportJob(
                        id=job_id,
                        status="running",
                        dry_run=False,
                        filename="sdp.csv",
                        total_lines=10,
                        processed_lines=5 if job_id == cut_off else 1,
                        created_count=5 if job_id == cut_off else 0,
                        unchanged_count=0,
                        invalid_count=0,
                        created_by="adm",
                        created_at=long_ago,
                        heartbeat_at=beat,
                    )
                )
            await s.commit()
        # The uploads the stopped process left on disk (NIKs in clear), and the live one's.
        uploads = {
            job_id: Path(tempfile.gettempdir()) / f"{UPLOAD_PREFIX}{job_id}-x.csv"
            for job_id in (cut_off, elsewhere)
        }
        for upload in uploads.values():
            upload.write_text(export(*everyone[:1]))

    # The registry starts again on the same database.
    async with running_registry(settings, admin_subject="adm") as reg:
        second = reg.app

        async def job(job_id: uuid.UUID) -> dict[str, Any]:
            r = await reg.client.get(f"/api/v1/imports/{job_id}", headers=reg.admin)
            assert r.status_code == 200, r.text
            return dict(r.json())

        stopped = await job(cut_off)
        assert stopped["status"] == "interrupted" and stopped["failure"] == INTERRUPTED
        assert stopped["finished_at"] is not None and stopped["processed_lines"] == 5
        assert not uploads[cut_off].exists()
        # A job still beating (another replica's) is left running, its upload in place.
        assert (await job(elsewhere))["status"] == "running"
        assert uploads[elsewhere].exists()
        uploads[elsewhere].unlink()

        # A job whose beat stops while the registry runs is found out when it is read.
        async with second.state.db.session() as s:
            s.add(
                ImportJob(
                    id=read_late,
                    status="running",
                    dry_run=False,
                    total_lines=10,
                    processed_lines=0,
                    created_count=0,
                    unchanged_count=0,
                    invalid_count=0,
                    created_by="adm",
                    created_at=long_ago,
                    heartbeat_at=long_ago,
                )
            )
            await s.commit()
        assert (await job(read_late))["status"] == "interrupted"

        done = await imported(reg, export(*everyone))
        assert (done["created"], done["unchanged"], done["invalid"]) == (5, 5, 0)
        assert await reg.count(Inmate) == 10
        assert await reg.count(Facility) == 3


async def test_an_export_changes_what_training_knows_of_the_people_it_may_enrol(
    database_url: str, broker: Any, make_settings: Any, tmp_path: Path
):
    namespace = f"t{uuid.uuid4().hex[:8]}."
    reg_settings = make_settings(
        "registry", database_url, broker, kafka_namespace=namespace, pseudonym_secret=SECRET
    )
    trn_settings = make_settings(
        "training", f"sqlite+aiosqlite:///{tmp_path}/training.db", broker, kafka_namespace=namespace
    )
    async with (
        running_registry(reg_settings, admin_subject="adm") as reg,
        running_training(trn_settings) as trn,
    ):
        industry = trn.token("training_admin")
        await _facilities(reg)
        day_1 = [
            person("TR.1", "3201000000000201", **YES),
            person("TR.2", "3201000000000202", **YES),
            person("TR.3", "3201000000000203", **YES),
        ]
        await imported(reg, export(*day_1))
        ids = {n: str(p.id) for n, p in (await reg.people()).items()}

        async def participant(number: str) -> dict[str, Any] | None:
            r = await trn.client.get(f"/api/v1/participants/{ids[number]}", headers=industry)
            return dict(r.json()) if r.status_code == 200 else None

        async def replica(**expected: dict[str, Any]) -> bool:
            for number, fields in expected.items():
                got = await participant(number.replace("_", "."))
                if got is None or any(got[k] != v for k, v in fields.items()):
                    return False
            return True

        async def filled() -> bool:
            return all([await participant(n) for n in ids])

        await wait_until(filled, within=60, what="training replica filled")

        day_2 = [
            person("TR.1", "3201000000000201", expected_release_date="2026-12-31", **YES),
            person("TR.2", "3201000000000202", facility_code="LP-B", **YES),
            person("TR.3", "3201000000000203", status="conditional", released_on="2026-11-24"),
        ]
        job = await imported(reg, export(*day_2))
        assert _counts(job) == (0, 1, 1, 1, 0, 0, 0)

        async def applied() -> bool:
            return await replica(
                TR_1={"expected_release_date": "2026-12-31", "status": "in_custody"},
                TR_2={"facility_id": reg.facilities["LP-B"]},
                TR_3={"status": "released", "released_on": "2026-11-24"},
            )

        await wait_until(applied, within=60, what="training applied the export's changes")


async def test_a_job_running_when_the_registry_shuts_down_is_marked_interrupted_at_once(
    database_url: str, broker: Any, make_settings: Any
):
    settings = make_settings("registry", database_url, broker, pseudonym_secret=SECRET)
    # Far more lines than can be imported between the upload's answer and the shutdown.
    many = [person(f"SD.{n:06d}", f"32019{n:011d}") for n in range(30_000)]
    async with running_registry(settings, admin_subject="adm") as reg:
        await _facilities(reg)
        r = await reg.client.post(
            "/api/v1/imports",
            content=export(*many).encode(),
            headers={**reg.admin, "Content-Type": "text/csv"},
        )
        assert r.status_code == 202, r.text
        job_id = uuid.UUID(r.json()["id"])

    async with running_registry(settings) as again:
        got = await again.client.get(f"/api/v1/imports/{job_id}", headers=reg.admin)
        job = got.json()
        assert job["status"] == "interrupted" and job["failure"] == INTERRUPTED, job
        assert job["processed_lines"] < 30_000
        assert not _uploads_left(job_id)
        # Whole chunks only: what was imported is a multiple of the chunk size.
        assert await again.count(Inmate) % 1000 == 0

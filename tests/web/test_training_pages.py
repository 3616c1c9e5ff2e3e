"""Training's staff pages answer as training's API does: who may read, who may publish or
schedule, and that corrections staff cannot use them (signed in through Keycloak)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta

import pytest

from bekal.shared.events.catalogue import Sex
from bekal.training.models import Enrollment, Facility, Participant, Program, TrainingSession
from bekal.training.services import sessions as training_sessions
from tests.support.factories import (
    inmate_returned,
    inmate_shared,
    inmate_temporarily_absent,
    inmates_merged,
)
from tests.support.keycloak import INDUSTRY_USER, OFFICER, Keycloak
from tests.support.staff_pages import csrf_of, signed_in
from tests.support.training_pages import START, TRAINING_ADMIN, Training, served_training

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def training_site(
    keycloak: Keycloak, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Training]:
    async with served_training(keycloak, tmp_path_factory.mktemp("training-pages")) as site:
        yield site


async def test_a_training_officer_neither_publishes_nor_schedules(training_site: Training):
    async with signed_in(training_site.base, INDUSTRY_USER, next_page="/staf/program") as browser:
        listing = await browser.get("/staf/program")
        assert listing.status_code == 200
        assert "Buat program baru" not in listing.text  # not offered to this role
        for path in ("/staf/program/baru", "/staf/sesi/baru"):
            page = await browser.get(path)
            assert page.status_code == 403, path
            assert "Akses ditolak" in page.text
        refused = await browser.post(
            "/staf/program/baru",
            data={"csrf_token": csrf_of(listing), "code": "X", "title": "X", "units": "A | B"},
        )
        assert refused.status_code == 403
        sessions = await browser.get("/staf/sesi")
        assert sessions.status_code == 200 and "Jadwalkan sesi baru" not in sessions.text


async def test_corrections_staff_cannot_use_the_training_pages(training_site: Training):
    async with signed_in(training_site.base, OFFICER, next_page="/staf/sesi") as browser:
        for path in ("/staf/program", "/staf/sesi", "/staf/lulusan"):
            page = await browser.get(path)
            assert page.status_code == 403, path


async def test_a_form_without_its_token_is_refused(training_site: Training):
    async with signed_in(training_site.base, TRAINING_ADMIN, next_page="/staf/program") as browser:
        answer = await browser.post("/staf/program/baru", data={"code": "WUB-X"})
        assert answer.status_code == 403
        assert "kedaluwarsa" in answer.text
        listing = await browser.get("/staf/program")
        assert "WUB-X" not in listing.text


async def test_a_person_not_signed_in_is_sent_to_sign_in(training_site: Training):
    async with signed_in(training_site.base, TRAINING_ADMIN, next_page="/staf/program") as browser:
        browser.cookies.clear()
        page = await browser.get("/staf/sesi?status=running")
        assert page.status_code == 303
        assert page.headers["location"] == "/staf/masuk?next=/staf/sesi%3Fstatus%3Drunning"


async def test_training_error_pages_are_staff_pages_with_the_menu(training_site: Training):
    async with signed_in(training_site.base, INDUSTRY_USER, next_page="/staf/sesi") as browser:
        answers = [
            (404, await browser.get(f"/staf/sesi/{uuid.uuid4()}")),
            (404, await browser.get("/staf/sesi/bukan-nomor-sesi")),
            (404, await browser.get("/staf/tidak-ada")),
            (403, await browser.get("/staf/sesi/baru")),
        ]
        for status, page in answers:
            assert page.status_code == status, (status, page.text[:300])
            assert 'aria-label="Menu utama"' in page.text, status
            assert 'href="/staf/sesi"' in page.text and "Sesi pelatihan" in page.text, status


async def test_an_unexpected_error_is_a_staff_page_with_the_menu(
    training_site: Training, monkeypatch: pytest.MonkeyPatch
):
    async def broken(**_: object) -> None:
        raise RuntimeError("disk on fire")

    async with signed_in(training_site.base, INDUSTRY_USER, next_page="/staf/sesi") as browser:
        monkeypatch.setattr(training_sessions, "list_sessions", broken)
        page = await browser.get("/staf/sesi")
        assert page.status_code == 500
        assert 'aria-label="Menu utama"' in page.text and "Sesi pelatihan" in page.text
        assert "disk on fire" not in page.text  # nothing of the inside is shown


async def test_the_session_list_filters_in_the_query_beyond_the_first_pages(
    training_site: Training,
):
    """600 sessions at the facility; the one of 2019, scheduled first, is found by its dates,
    and the list goes page by page (latest first) instead of stopping at a cap."""
    facility_id = training_site.facility.facility_id
    now = datetime.now(UTC)
    async with training_site.app.state.db.session() as db:
        program = Program(
            id=uuid.uuid4(),
            code="WUB-ARSIP",
            title="Arsip pelatihan",
            sector="batik",
            days=5,
            hours=40,
            min_attendance_share=0.8,
            competency_units=[{"code": "BTK.01", "title": "Membatik tulis"}],
        )
        db.add(program)
        for n in range(600):
            start = date(2019, 3, 4) if n == 0 else date(2021, 1, 4) + timedelta(days=n)
            db.add(
                TrainingSession(
                    id=uuid.uuid4(),
                    program_id=program.id,
                    program_version=1,
                    program_code="WUB-LAMA" if n == 0 else "WUB-ARSIP",
                    program_title=program.title,
                    sector=program.sector,
                    hours=40,
                    min_attendance_share=0.8,
                    competency_units=program.competency_units,
                    facility_id=facility_id,
                    start_date=start,
                    end_date=start + timedelta(days=4),
                    capacity=30,
                    status="completed",
                    instructors=[],
                    created_at=now + timedelta(microseconds=n),
                    updated_at=now,
                )
            )
        await db.commit()
    async with signed_in(training_site.base, INDUSTRY_USER, next_page="/staf/sesi") as browser:
        found = await browser.get(
            "/staf/sesi",
            params={"facility_id": str(facility_id), "dari": "2019-01-01", "sampai": "2019-12-31"},
        )
        assert found.status_code == 200
        assert "WUB-LAMA" in found.text and "WUB-ARSIP" not in found.text
        assert "Menampilkan 1 dari 1 data." in found.text
        # A range that only touches the session's last day still finds it.
        edge = await browser.get(
            "/staf/sesi", params={"dari": "2019-03-08", "sampai": "2019-03-08"}
        )
        assert "WUB-LAMA" in edge.text
        first = await browser.get("/staf/sesi", params={"status": "completed"})
        assert "Menampilkan 50 dari 600 data." in first.text
        assert "WUB-LAMA" not in first.text  # the latest come first
        seen = 50
        page = first
        while 'rel="next"' in page.text:
            target = re.search(r'href="([^"]+)" rel="next"', page.text)
            assert target is not None
            page = await browser.get("/staf/sesi" + html.unescape(target.group(1)))
            assert page.status_code == 200
            seen += page.text.count("WUB-ARSIP ·") + page.text.count("WUB-LAMA ·")
        assert seen == 600 and "WUB-LAMA" in page.text  # the earliest, on the last page
        altered = await browser.get("/staf/sesi", params={"cursor": "rusak"})
        assert altered.status_code == 404 and 'aria-label="Menu utama"' in altered.text


async def _open_session(
    training_site: Training,
    code: str,
    start: date,
    capacity: int,
    *,
    status: str = "open",
    enrolled: Sequence[uuid.UUID] = (),
    facility_id: uuid.UUID | None = None,
) -> str:
    """A session at the site's facility (what the pages' own scheduling leads to), open unless
    told otherwise, with ``enrolled`` already in it."""
    now = datetime.now(UTC)
    units = [{"code": "BTK.01", "title": "Membatik tulis"}]
    async with training_site.app.state.db.session() as db:
        program = Program(
            id=uuid.uuid4(),
            code=code,
            title="Bimtek Wirausaha Baru IKM Batik",
            sector="batik",
            days=5,
            hours=40,
            min_attendance_share=0.8,
            competency_units=units,
        )
        ts = TrainingSession(
            id=uuid.uuid4(),
            program_id=program.id,
            program_version=1,
            program_code=code,
            program_title=program.title,
            sector=program.sector,
            hours=40,
            min_attendance_share=0.8,
            competency_units=units,
            facility_id=facility_id or training_site.facility.facility_id,
            start_date=start,
            end_date=start + timedelta(days=4),
            capacity=capacity,
            status=status,
            opened_on=start - timedelta(days=7),
            started_on=start if status == "running" else None,
            instructors=[],
            created_at=now,
            updated_at=now,
        )
        db.add_all([program, ts])
        await db.flush()
        for n, pid in enumerate(enrolled):
            db.add(
                Enrollment(
                    id=uuid.uuid4(),
                    session_id=ts.id,
                    participant_id=pid,
                    status="enrolled",
                    enrolled_on=start - timedelta(days=3),
                    created_at=now + timedelta(microseconds=n),
                    updated_at=now,
                )
            )
        await db.commit()
    return f"/staf/sesi/{ts.id}"


async def test_only_a_training_admin_admits_someone_outside_the_release_window_with_a_reason(
    training_site: Training,
):
    session_url = await _open_session(training_site, "WUB-PENGECUALIAN", START + timedelta(10), 5)
    far = inmate_shared(
        training_site.facility,
        full_name="Sri Pengecualian",
        sex=Sex.FEMALE,
        expected_release_date=START + timedelta(days=400),
    )
    await training_site.deliver(far)
    pid = str(far.participant_id)
    reason = "Sidang pembebasan bersyarat dimajukan; disetujui kepala bidang"

    async with signed_in(training_site.base, INDUSTRY_USER, next_page=session_url) as officer:
        page = await officer.get(f"{session_url}/nominasi")
        assert page.status_code == 200
        assert "Hanya admin pelatihan yang dapat memberi pengecualian." in page.text
        assert f'name="override-{pid}"' not in page.text
        refused = await officer.post(
            f"{session_url}/nominasi",
            data={"csrf_token": csrf_of(page), "participant_ids": pid, f"override-{pid}": reason},
        )
        assert refused.status_code == 403
        assert 'aria-label="Menu utama"' in refused.text

    async with signed_in(training_site.base, TRAINING_ADMIN, next_page=session_url) as admin:
        page = await admin.get(f"{session_url}/nominasi")
        assert f'name="override-{pid}"' in page.text
        token = csrf_of(page)
        # Chosen without a reason: refused next to her, saying why (in the pages' dates).
        bare = await admin.post(
            f"{session_url}/nominasi", data={"csrf_token": token, "participant_ids": pid}
        )
        assert bare.status_code == 422
        assert "Peserta diperkirakan bebas" in bare.text and "lebih dari" in bare.text
        assert (START + timedelta(days=400)).isoformat() not in bare.text
        short = await admin.post(
            f"{session_url}/nominasi",
            data={"csrf_token": token, "participant_ids": pid, f"override-{pid}": "ok"},
        )
        assert short.status_code == 422
        assert "Tulis alasan pengecualian, 5 sampai 500 huruf." in short.text
        assert 'value="ok"' in short.text  # what was typed stays
        done = await admin.post(
            f"{session_url}/nominasi",
            data={"csrf_token": token, "participant_ids": pid, f"override-{pid}": reason},
        )
        assert done.status_code == 303, done.text[:500]
        shown = await admin.get(session_url)
        assert "1 orang didaftarkan." in shown.text
        assert f"Pengecualian masa bebas oleh Anda: {reason}" in shown.text
    async with signed_in(training_site.base, INDUSTRY_USER, next_page=session_url) as officer:
        seen = await officer.get(session_url)
        assert "Pengecualian masa bebas oleh " in seen.text and reason in seen.text


async def test_select_all_nominates_every_eligible_candidate_and_queues_the_rest(
    training_site: Training,
):
    session_url = await _open_session(training_site, "WUB-SEMUA", START + timedelta(30), 3)
    async with signed_in(training_site.base, INDUSTRY_USER, next_page=session_url) as officer:
        page = await officer.get(f"{session_url}/nominasi")
        eligible = re.search(r"Pilih semua dan daftarkan \((\d+) orang\)", page.text)
        assert eligible is not None
        count = int(eligible.group(1))
        assert count >= len(training_site.people)
        done = await officer.post(
            f"{session_url}/nominasi", data={"csrf_token": csrf_of(page), "semua": "ya"}
        )
        assert done.status_code == 303, done.text[:500]
        shown = await officer.get(session_url)
        assert f"3 orang didaftarkan, {count - 3} orang masuk daftar tunggu." in shown.text
        again = await officer.get(f"{session_url}/nominasi")
        assert "Pilih semua dan daftarkan (0 orang)" in again.text


async def test_a_past_day_is_excused_by_the_absence_the_registry_recorded_for_it(
    training_site: Training,
):
    """Day 2 is entered after she came back on day 4: the sheet still starts her as excused
    on days 2 and 3 (the period the replica keeps), and present on day 4, the day of return."""
    start = START - timedelta(days=6)
    away = training_site.people[7]
    session_url = await _open_session(
        training_site,
        "WUB-IZIN",
        start,
        10,
        status="running",
        enrolled=[p.participant_id for p in training_site.people[6:9]],
    )
    await training_site.deliver(
        inmate_temporarily_absent(
            away, absent_from=start + timedelta(days=1), expected_return=start + timedelta(days=2)
        ),
        inmate_returned(away, returned_on=start + timedelta(days=3)),
    )

    async with signed_in(training_site.base, INDUSTRY_USER, next_page=session_url) as officer:

        def row_of(page: str, name: str) -> str:
            found = re.search(
                rf"<tr[^>]*>\s*<th[^>]*>[^<]*<span class=\"person-name\">"
                rf"{re.escape(html.escape(name))}</span>.*?</tr>",
                page,
                re.S,
            )
            assert found is not None, name
            return found.group(0)

        for offset, expected in ((0, "present"), (1, "excused"), (2, "excused"), (3, "present")):
            day = start + timedelta(days=offset)
            page = await officer.get(f"{session_url}/absensi", params={"tanggal": day.isoformat()})
            assert page.status_code == 200
            row = row_of(page.text, away.full_name)
            checked = re.search(r'value="(\w+)" checked', row)
            assert checked is not None and checked.group(1) == expected, (offset, row)
            if expected == "excused":
                assert "Keluar sementara menurut registri sejak" in row
                assert "kembali" in row
            other = row_of(page.text, training_site.people[6].full_name)
            assert 'value="present" checked' in other


async def test_a_completed_sessions_corrections_are_made_and_kept_on_the_page(
    training_site: Training,
):
    start = START - timedelta(days=20)
    pair = training_site.people[10:12]
    session_url = await _open_session(
        training_site,
        "WUB-KOREKSI",
        start,
        10,
        status="running",
        enrolled=[p.participant_id for p in pair],
    )
    async with signed_in(training_site.base, INDUSTRY_USER, next_page=session_url) as officer:
        # The course as the trainer records it: everyone present, every unit competent, closed.
        for n in range(5):
            day = (start + timedelta(days=n)).isoformat()
            sheet = await officer.get(f"{session_url}/absensi", params={"tanggal": day})
            ids = set(re.findall(r'name="status-([0-9a-f-]{36})"', sheet.text))
            assert len(ids) == 2
            saved = await officer.post(
                f"{session_url}/absensi",
                data={"csrf_token": csrf_of(sheet), "tanggal": day}
                | {f"status-{i}": "present" for i in ids},
            )
            assert saved.status_code == 303, saved.text[:500]
        sheet = await officer.get(f"{session_url}/penilaian")
        cells = set(re.findall(r'name="(r-[^"]+)"', sheet.text))
        saved = await officer.post(
            f"{session_url}/penilaian",
            data={"csrf_token": csrf_of(sheet), "assessor": "Ibu Asesor"}
            | {c: "competent" for c in cells},
        )
        assert saved.status_code == 303
        closing = await officer.get(f"{session_url}/penutupan")
        closed = await officer.post(f"{session_url}/selesai", data={"csrf_token": csrf_of(closing)})
        assert closed.status_code == 303
        # An officer reads the corrections page but cannot correct.
        page = await officer.get(f"{session_url}/koreksi")
        assert page.status_code == 200
        assert "Hanya admin pelatihan yang dapat mengoreksi" in page.text
        refused = await officer.post(
            f"{session_url}/koreksi",
            data={"csrf_token": csrf_of(page), "reason": "Salah catat"},
        )
        assert refused.status_code == 403

    person = pair[0]
    async with signed_in(training_site.base, TRAINING_ADMIN, next_page=session_url) as admin:
        page = await admin.get(f"{session_url}/koreksi")
        assert "Simpan koreksi" in page.text and person.full_name in page.text
        token = csrf_of(page)
        pid = str(person.participant_id)
        nothing = await admin.post(
            f"{session_url}/koreksi",
            data={"csrf_token": token, "participant_id": pid, "reason": "Berita acara 12"},
        )
        assert nothing.status_code == 422
        assert "Pilih hari absensi atau unit kompetensi yang dikoreksi." in nothing.text
        unit = {
            "csrf_token": token,
            "participant_id": pid,
            "reason": "Berita acara uji ulang no. 12",
            "unit_code": "BTK.01",
            "result": "not_yet_competent",
        }
        no_assessor = await admin.post(f"{session_url}/koreksi", data=unit)
        assert no_assessor.status_code == 422
        assert "Nama penilai wajib diisi" in no_assessor.text
        done = await admin.post(f"{session_url}/koreksi", data=unit | {"assessor": "Ibu Asesor"})
        assert done.status_code == 303, done.text[:500]
        shown = await admin.get(f"{session_url}/koreksi")
        assert f"{html.escape(person.full_name)}: Lulus → Tidak lulus." in shown.text
        assert "Riwayat koreksi penilaian" in shown.text
        history = shown.text.rsplit("Riwayat koreksi penilaian", 1)[1]
        assert "Kompeten" in history and "Belum kompeten" in history
        assert "Berita acara uji ulang no. 12" in history and "Anda" in history
        day = await admin.post(
            f"{session_url}/koreksi",
            data={
                "csrf_token": token,
                "participant_id": str(pair[1].participant_id),
                "reason": "Absen di berita acara hari ke-2",
                "day": (start + timedelta(days=1)).isoformat(),
                "status": "absent",
            },
        )
        assert day.status_code == 303
        shown = await admin.get(f"{session_url}/koreksi")
        assert "hasil akhir tidak berubah" in shown.text  # 4 of 5 days is still 80%
        attendance = shown.text.rsplit("Riwayat koreksi absensi", 1)[1].split("Riwayat")[0]
        assert "Absen di berita acara hari ke-2" in attendance and "Tidak hadir" in attendance
        results = await admin.get(f"{session_url}/penutupan")
        assert "Tidak lulus" in results.text and "/koreksi" in results.text


async def test_an_absence_recorded_under_a_merged_away_record_counts_for_the_survivor(
    training_site: Training,
):
    start = START - timedelta(days=15)
    survivor = training_site.people[13]
    duplicate = inmate_shared(
        training_site.facility,
        full_name=survivor.full_name,
        sex=Sex.FEMALE,
        expected_release_date=survivor.expected_release_date,
    )
    session_url = await _open_session(
        training_site, "WUB-GABUNG", start, 10, status="running", enrolled=[survivor.participant_id]
    )
    await training_site.deliver(
        duplicate,
        inmate_temporarily_absent(duplicate, absent_from=start + timedelta(days=1)),
        inmate_returned(duplicate, returned_on=start + timedelta(days=2)),
        inmates_merged(duplicate, survivor, merged_on=start + timedelta(days=5)),
    )
    async with signed_in(training_site.base, INDUSTRY_USER, next_page=session_url) as officer:
        for offset, expected in ((1, "excused"), (2, "present")):
            day = (start + timedelta(days=offset)).isoformat()
            page = await officer.get(f"{session_url}/absensi", params={"tanggal": day})
            assert page.status_code == 200
            checked = re.findall(r'value="(\w+)" checked', page.text)
            assert checked == [expected], (offset, checked)


async def test_at_a_large_prison_those_near_release_are_listed_first_for_nomination(
    training_site: Training,
):
    """The page lists 500 of a facility's people: by name alone, at a prison of thousands,
    those near release past the first 500 names could not be nominated from it."""
    start = START + timedelta(days=10)
    facility = Facility(
        id=uuid.uuid4(), code="LP-BESAR", name="Lapas Besar", province="DKI Jakarta", active=True
    )

    def person(name: str, release: date, **more: object) -> Participant:
        return Participant(
            id=uuid.uuid4(),
            full_name=name,
            sex="M",
            birth_year=1990,
            facility_id=facility.id,
            status="in_custody",
            admission_date=START - timedelta(days=900),
            expected_release_date=release,
            **more,
        )

    far = start + timedelta(days=800)
    near = person("Zainab Dekat Bebas", start + timedelta(days=30))
    async with training_site.app.state.db.session() as db:
        db.add(facility)
        db.add_all(person(f"Aan Jauh {i:03d}", far) for i in range(520))
        db.add(person("Aan Anonim", far, anonymised_on=START))
        db.add(near)
        await db.commit()
    session_url = await _open_session(
        training_site, "WUB-BESAR", start, 30, facility_id=facility.id
    )
    async with signed_in(training_site.base, INDUSTRY_USER, next_page=session_url) as officer:
        page = await officer.get(f"{session_url}/nominasi")
    assert page.status_code == 200
    assert "Menampilkan 500 dari 521 warga binaan" in page.text
    assert "Zainab Dekat Bebas" in page.text
    assert page.text.index("Zainab Dekat Bebas") < page.text.index("Aan Jauh 000")
    assert "Aan Anonim" not in page.text
    assert "Pilih semua dan daftarkan (1 orang)" in page.text


async def test_a_session_is_scheduled_at_a_facility_past_the_first_500(training_site: Training):
    """With 530 facilities nationally, the schedule form offered only the first 500 by code:
    a session could not be planned at the others. (Last in this module: it leaves 520 more
    facilities in the module's training replica.)"""
    async with training_site.app.state.db.session() as db:
        for i in range(520):
            db.add(
                Facility(
                    id=uuid.uuid4(),
                    code=f"LAPAS-{i:04d}",
                    name=f"Lapas Uji {i}",
                    province="Jawa Tengah",
                    active=True,
                )
            )
        last = Facility(
            id=uuid.uuid4(),
            code="ZZ-RUTAN-UJUNG",
            name="Rutan Ujung",
            province="Papua",
            active=True,
        )
        db.add(last)
        await db.commit()
    async with signed_in(training_site.base, TRAINING_ADMIN, next_page="/staf/sesi") as browser:
        form = await browser.get("/staf/sesi/baru")
        assert form.status_code == 200
        assert f'value="{last.id}"' in form.text
        assert "ZZ-RUTAN-UJUNG" in form.text

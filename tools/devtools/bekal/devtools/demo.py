"""Demo data from the news articles, loaded through the public HTTP APIs (idempotently).

The three courses the articles describe: Lapas Kelas IIA Pontianak, woodcraft with BBKB, 13-18 May
2019, 30 participants; Lapas Perempuan Kota Tangerang, three courses of 30, 17-22 July 2023; Lapas
Cipinang, WUB IKM Batik with YBI, 3-7 September 2024, 25 participants. Names are invented.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from bekal.shared.auth import mint_token
from bekal.shared.settings import Settings

FIRST_F = [
    "Siti",
    "Dewi",
    "Rina",
    "Ayu",
    "Wulan",
    "Nur",
    "Sri",
    "Lestari",
    "Indah",
    "Ratna",
    "Yuliani",
    "Fitri",
    "Maya",
    "Putri",
    "Endang",
]
FIRST_M = [
    "Budi",
    "Agus",
    "Dedi",
    "Rudi",
    "Joko",
    "Andi",
    "Hendra",
    "Yusuf",
    "Eko",
    "Bayu",
    "Fajar",
    "Rizky",
    "Wahyu",
    "Arif",
    "Hadi",
]
LAST = [
    "Santoso",
    "Wijaya",
    "Saputra",
    "Hidayat",
    "Pratama",
    "Kusuma",
    "Nugroho",
    "Setiawan",
    "Rahmawati",
    "Siregar",
    "Lubis",
    "Hasibuan",
    "Simanjuntak",
    "Wulandari",
    "Purnama",
]


@dataclass(frozen=True)
class DemoFacility:
    code: str
    name: str
    kind: str
    facility_class: str
    province: str
    regional_office: str
    capacity: int
    sex: str  # of the inmates the demo invents for it


@dataclass(frozen=True)
class DemoProgram:
    code: str
    title: str
    sector: str
    partner: str | None
    days: int
    hours: int
    units: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DemoCourse:
    facility: str
    program: str
    start: date
    days: int
    participants: int
    instructor: tuple[str, str]
    released_midway: int = 0  # the last N are released on parole during the course


FACILITIES = (
    DemoFacility(
        "LP-CIPINANG",
        "Lapas Kelas I Cipinang",
        "lapas",
        "I",
        "DKI Jakarta",
        "Kanwil Ditjenpas DKI Jakarta",
        1136,
        "M",
    ),
    DemoFacility(
        "LP-PONTIANAK",
        "Lapas Kelas IIA Pontianak",
        "lapas",
        "IIA",
        "Kalimantan Barat",
        "Kanwil Ditjenpas Kalimantan Barat",
        700,
        "M",
    ),
    DemoFacility(
        "LPP-TANGERANG",
        "Lapas Perempuan Kelas IIA Tangerang",
        "lapas_perempuan",
        "IIA",
        "Banten",
        "Kanwil Ditjenpas Banten",
        250,
        "F",
    ),
)

PROGRAMS = (
    DemoProgram(
        "WUB-BATIK",
        "Penumbuhan WUB IKM Batik (batik tulis dan batik cap)",
        "batik",
        "Yayasan Batik Indonesia",
        5,
        40,
        (
            ("BTK-01", "Membuat pola batik"),
            ("BTK-02", "Membatik tulis"),
            ("BTK-03", "Membatik cap"),
        ),
    ),
    DemoProgram(
        "KRJ-KAYU",
        "Bimtek Pembuatan Kerajinan Kayu",
        "kerajinan_kayu",
        "Balai Besar Kerajinan dan Batik (BBKB) Yogyakarta",
        6,
        48,
        (
            ("KYU-01", "Mengolah bahan kayu"),
            ("KYU-02", "Membuat produk kerajinan kayu"),
            ("KYU-03", "Finishing produk kayu"),
        ),
    ),
    DemoProgram(
        "BATIK-WARNA",
        "Bimtek WUB IKM Batik Cap/Tulis dan Teknik Pewarnaan",
        "batik",
        "Yayasan Batik Indonesia",
        6,
        48,
        (
            ("BTK-02", "Membatik tulis"),
            ("BTK-03", "Membatik cap"),
            ("WRN-01", "Pewarnaan kain batik"),
        ),
    ),
    DemoProgram(
        "BATIK-DIVERS",
        "Bimtek WUB IKM Diversifikasi Kain Batik",
        "fesyen",
        "Yayasan Batik Indonesia",
        6,
        48,
        (("DIV-01", "Merancang produk turunan batik"), ("DIV-02", "Menjahit produk batik")),
    ),
    DemoProgram(
        "OLAHAN-PANGAN",
        "Bimtek WUB IKM Olahan Pangan",
        "pangan_olahan",
        None,
        6,
        48,
        (
            ("PGN-01", "Higiene dan sanitasi pangan"),
            ("PGN-02", "Mengolah makanan ringan siap saji"),
            ("PGN-03", "Mengemas produk pangan"),
        ),
    ),
)

COURSES = (
    DemoCourse(
        "LP-PONTIANAK", "KRJ-KAYU", date(2019, 5, 13), 6, 30, ("Edi Eskak", "BBKB Yogyakarta")
    ),
    DemoCourse(
        "LPP-TANGERANG",
        "BATIK-WARNA",
        date(2023, 7, 17),
        6,
        30,
        ("Instruktur YBI", "Yayasan Batik Indonesia"),
    ),
    DemoCourse(
        "LPP-TANGERANG",
        "BATIK-DIVERS",
        date(2023, 7, 17),
        6,
        30,
        ("Instruktur YBI", "Yayasan Batik Indonesia"),
    ),
    DemoCourse(
        "LPP-TANGERANG",
        "OLAHAN-PANGAN",
        date(2023, 7, 17),
        6,
        30,
        ("Instruktur Ditjen IKMA", "Kemenperin"),
    ),
    DemoCourse(
        "LP-CIPINANG",
        "WUB-BATIK",
        date(2024, 9, 3),
        5,
        25,
        ("Instruktur YBI", "Yayasan Batik Indonesia"),
        released_midway=1,
    ),
)


def invented_name(sex: str, n: int) -> str:
    first = (FIRST_F if sex == "F" else FIRST_M)[n % 15]
    return f"{first} {LAST[(n * 7 + n // 15) % 15]}"


def _nik(n: int) -> str:
    return f"3171{n:012d}"  # 16 digits; a made-up range


class _Api:
    def __init__(self, urls: Mapping[str, str], tokens: Mapping[str, str]) -> None:
        self.urls = urls
        self.tokens = tokens
        self.client = httpx.Client(timeout=30)

    def call(
        self,
        method: str,
        service: str,
        path: str,
        *,
        as_: str,
        key: str | None = None,
        json: Any = None,
        ok: tuple[int, ...] = (200, 201),
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[as_]}"}
        if key:
            headers["Idempotency-Key"] = key
        response = self.client.request(
            method, self.urls[service] + path, json=json, headers=headers
        )
        if response.status_code not in ok:
            raise RuntimeError(
                f"{method} {service}{path}: {response.status_code} {response.text[:500]}"
            )
        return response.json() if response.content else None


def _wait(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise RuntimeError(f"demo: timed out waiting for {what}")


def load_demo(urls: Mapping[str, str], *, key_file: Path) -> str:
    settings = Settings(auth_dev_key_file=key_file)
    tokens = {
        "corrections": mint_token(
            settings, subject="demo-corrections", ministry="corrections", roles=["registry_admin"]
        ),
        "industry": mint_token(
            settings,
            subject="demo-industry",
            ministry="industry",
            roles=["training_admin", "training_officer", "certification_admin", "reporting_viewer"],
        ),
    }
    api = _Api(urls, tokens)

    # Registry (corrections): facilities and consenting inmates.
    facility_ids: dict[str, str] = {}
    for f in FACILITIES:
        found = api.call("GET", "registry", f"/api/v1/facilities?code={f.code}", as_="corrections")[
            "data"
        ]
        if found:
            facility_ids[f.code] = found[0]["id"]
            continue
        created = api.call(
            "POST",
            "registry",
            "/api/v1/facilities",
            as_="corrections",
            key=f"demo-facility-{f.code}",
            json={
                "code": f.code,
                "name": f.name,
                "kind": f.kind,
                "facility_class": f.facility_class,
                "province": f.province,
                "regional_office": f.regional_office,
                "capacity": f.capacity,
                "active": True,
            },
        )
        facility_ids[f.code] = created["id"]

    people: dict[int, list[str]] = {}  # course index -> participant ids
    serial = 0
    for ci, course in enumerate(COURSES):
        facility = next(f for f in FACILITIES if f.code == course.facility)
        ids = []
        for i in range(course.participants):
            serial += 1
            number = f"DEMO-{course.facility}-{course.start.year}-{ci}-{i + 1:03d}"
            birth = date(1975 + serial % 25, 1 + serial % 12, 1 + serial % 28)
            found = api.call("GET", "registry", f"/api/v1/inmates?q={number}", as_="corrections")[
                "data"
            ]
            if found:
                ids.append(found[0]["id"])
                continue
            created = api.call(
                "POST",
                "registry",
                "/api/v1/inmates",
                as_="corrections",
                key=f"demo-inmate-{number}",
                json={
                    "registration_number": number,
                    "full_name": invented_name(facility.sex, serial),
                    "nik": _nik(serial),
                    "sex": facility.sex,
                    "date_of_birth": birth.isoformat(),
                    "education_level": "SMA",
                    "facility_id": facility_ids[course.facility],
                    "admission_date": (course.start - timedelta(days=700)).isoformat(),
                    "expected_release_date": (course.start + timedelta(days=120)).isoformat(),
                    "consent": {"training": True, "data_sharing": True},
                },
            )
            ids.append(created["id"])
        people[ci] = ids

    # Training (industry) learns of them from events.
    def replica_has_everyone() -> bool:
        have = 0
        for fid in facility_ids.values():
            got = api.call(
                "GET",
                "training",
                f"/api/v1/participants?facility_id={fid}&limit=500",
                as_="industry",
            )
            have += got["count"]
        return have >= sum(len(v) for v in people.values())

    _wait("the training service to receive the registry's events", replica_has_everyone)

    program_ids: dict[str, dict[str, Any]] = {}
    existing = {
        p["code"]: p
        for p in api.call("GET", "training", "/api/v1/programs?limit=500", as_="industry")["data"]
    }
    for p in PROGRAMS:
        if p.code in existing:
            program_ids[p.code] = existing[p.code]
            continue
        program_ids[p.code] = api.call(
            "POST",
            "training",
            "/api/v1/programs",
            as_="industry",
            key=f"demo-program-{p.code}",
            json={
                "code": p.code,
                "title": p.title,
                "sector": p.sector,
                "partner": p.partner,
                "days": p.days,
                "hours": p.hours,
                "min_attendance_share": 0.8,
                "competency_units": [{"code": c, "title": t} for c, t in p.units],
            },
        )

    completed = not_completed = withdrawn = 0
    for ci, course in enumerate(COURSES):
        program = next(p for p in PROGRAMS if p.code == course.program)
        end = course.start + timedelta(days=course.days - 1)
        session = api.call(
            "POST",
            "training",
            "/api/v1/sessions",
            as_="industry",
            key=f"demo-session-{ci}-{course.program}",
            json={
                "program_id": program_ids[course.program]["id"],
                "facility_id": facility_ids[course.facility],
                "start_date": course.start.isoformat(),
                "end_date": end.isoformat(),
                "capacity": course.participants,
                "instructors": [
                    {"name": course.instructor[0], "institution": course.instructor[1]}
                ],
            },
        )
        sid = session["id"]
        session = api.call("GET", "training", f"/api/v1/sessions/{sid}", as_="industry")
        if session["status"] == "completed":
            completed += sum(e["status"] == "completed" for e in session["enrollments"])
            not_completed += sum(e["status"] == "not_completed" for e in session["enrollments"])
            withdrawn += sum(e["status"] == "withdrawn" for e in session["enrollments"])
            continue
        # Each step checks where an earlier, interrupted load stopped: planned -> open
        # (nominations) -> enrolled -> running.
        if session["status"] == "planned":
            api.call("POST", "training", f"/api/v1/sessions/{sid}/open", as_="industry")
        if not session["enrollments"]:
            api.call(
                "POST",
                "training",
                f"/api/v1/sessions/{sid}/enrollments",
                as_="industry",
                json={"participant_ids": people[ci]},
            )
        if session["status"] in ("planned", "open"):
            api.call("POST", "training", f"/api/v1/sessions/{sid}/start", as_="industry")
        active = _release_midway(api, course, sid, people[ci])
        for d in range(course.days):
            day = course.start + timedelta(days=d)
            # Every twelfth participant misses half the course: not completed.
            records = [
                {
                    "participant_id": pid,
                    "status": "absent" if i % 12 == 11 and d % 2 == 0 else "present",
                }
                for i, pid in enumerate(active)
            ]
            api.call(
                "PUT",
                "training",
                f"/api/v1/sessions/{sid}/attendance",
                as_="industry",
                json={"date": day.isoformat(), "records": records},
            )
        results = [
            {
                "participant_id": pid,
                "unit_code": code,
                "result": "not_yet_competent" if i % 15 == 7 and u == 0 else "competent",
            }
            for i, pid in enumerate(active)
            for u, (code, _t) in enumerate(program.units)
        ]
        api.call(
            "PUT",
            "training",
            f"/api/v1/sessions/{sid}/assessments",
            as_="industry",
            json={"assessor": course.instructor[0], "results": results},
        )
        done = api.call("POST", "training", f"/api/v1/sessions/{sid}/complete", as_="industry")
        completed += sum(e["status"] == "completed" for e in done["enrollments"])
        not_completed += sum(e["status"] == "not_completed" for e in done["enrollments"])
        withdrawn += sum(e["status"] == "withdrawn" for e in done["enrollments"])

    def certificates_issued() -> bool:
        got = api.call("GET", "certification", "/api/v1/certificates?limit=1", as_="industry")
        return bool(got["count"] >= 1)

    _wait("the first certificates", certificates_issued)
    return (
        f"Demo data: {len(FACILITIES)} facilities, {serial} participants in {len(COURSES)} courses "
        f"({completed} completed, {not_completed} not completed, "
        f"{withdrawn} withdrawn on release); "
        "certificates are issued from the completion events."
    )


def _release_midway(api: _Api, course: DemoCourse, session_id: str, people: list[str]) -> list[str]:
    """Release the course's last participants on parole mid-course (corrections), as happens;
    training withdraws them on its own. Returns those still in the course."""
    if not course.released_midway:
        return people
    leaving = people[-course.released_midway :]
    for pid in leaving:
        inmate = api.call("GET", "registry", f"/api/v1/inmates/{pid}", as_="corrections")
        if inmate["status"] == "in_custody":
            api.call(
                "POST",
                "registry",
                f"/api/v1/inmates/{pid}/release",
                as_="corrections",
                json={"kind": "parole", "released_on": str(course.start + timedelta(days=2))},
            )

    def withdrawn() -> bool:
        s = api.call("GET", "training", f"/api/v1/sessions/{session_id}", as_="industry")
        status = {e["participant_id"]: e["status"] for e in s["enrollments"]}
        return all(status.get(pid) == "withdrawn" for pid in leaving)

    _wait("training to withdraw the participants released mid-course", withdrawn)
    return people[: -course.released_midway]

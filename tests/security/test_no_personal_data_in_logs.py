"""No personal data in logs: a whole run of the four services, every line they wrote, scanned.

The services run as separate processes on the real broker, logging at DEBUG into files that
hold everything they print (structured logs, library warnings, tracebacks). The flow registers
people by name and NIK and takes them through consent, a course, certificates, public
verification (by number and name in the address too), search by name, a subject-access export,
reports and refused requests; then no name and no NIK it used may appear in any line.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from bekal.devtools.broker import EmbeddedBroker
from bekal.devtools.devrun import SERVICES, Platform
from tests.support.course import CourseRun
from tests.support.platform import PlatformClient, eventually, started_platform

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

# Distinctive names, so that a hit is a leak and not a coincidence.
NAMES = [
    "Sutrisno Wirapraja",
    "Gunawan Kartasasmita",
    "Haryanto Puspanegara",
    "Bambang Suryokusumo",
]


@pytest.fixture(scope="module")
def platform(
    broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("logscan")
    env = {"LOG_LEVEL": "DEBUG", "LOG_JSON": "true"}
    with started_platform(broker, root, namespace="logs", env=env) as p:
        yield p


def test_no_name_or_nik_of_anyone_in_a_full_run_appears_in_any_log_line(
    platform: Platform,
) -> None:
    api = PlatformClient(platform)
    course = CourseRun(api)
    niks = [f"3175{d}{i:011d}" for i, d in enumerate("1234")]
    facility = course.register_facility("LP-LOG")
    # The last one consents later, through its own request.
    inmates = course.register_inmates("LOG", NAMES, niks, consenting=3)
    ids = [m["id"] for m in inmates]
    api(
        "POST",
        "registry",
        f"/api/v1/inmates/{ids[3]}/consent",
        as_="corrections",
        json={"training": True, "data_sharing": True},
    )
    # Refused requests carrying the personal data: a duplicate NIK, a malformed one.
    duplicate = {
        "registration_number": f"LOG-{course.tag}-dup",
        "full_name": NAMES[0],
        "nik": niks[0],
        "sex": "M",
        "date_of_birth": "1990-01-01",
        "facility_id": facility["id"],
        "admission_date": "2022-01-10",
    }
    r = api("POST", "registry", "/api/v1/inmates", as_="corrections", json=duplicate, expect=None)
    assert isinstance(r, dict) and r["status"] in (409, 422)
    malformed = {
        **duplicate,
        "nik": niks[1][:-1] + "X",
        "registration_number": f"LOG-{course.tag}-bad",
    }
    r = api("POST", "registry", "/api/v1/inmates", as_="corrections", json=malformed, expect=422)
    # Reads: search by name, one record, the subject-access export (which holds the NIK).
    api("GET", "registry", f"/api/v1/inmates?q={quote(NAMES[1])}", as_="corrections")
    api("GET", "registry", f"/api/v1/inmates/{ids[0]}", as_="corrections")
    export = api("GET", "registry", f"/api/v1/inmates/{ids[0]}/subject-access", as_="corrections")
    assert niks[0] in str(export)  # it is there for the person; it must not be in the logs

    participants = course.participants_known(4)
    assert {p["id"] for p in participants["data"]} == set(ids)
    course.publish_program("LOG")
    course.schedule(capacity=4)
    course.open()
    course.enrol(ids)
    course.start()
    # One is released mid-course: the withdrawal travels registry -> training -> reporting.
    course.release_on_parole(ids[3])
    course.withdrawn(ids[3])
    course.attend(ids[:3])
    course.assess_competent(ids[:3])
    course.complete()

    certificates = course.certificates(3)
    for cert in certificates:
        # Public verification by code, by number with the name (JSON and the page's form).
        api("GET", "certification", f"/public/verify/{cert['verification_code']}", as_=None)
        number, name = quote(cert["number"], safe=""), quote(cert["recipient_name"])
        api("GET", "certification", f"/public/verify/{number}?name={name}", as_=None)
        api("GET", "certification", f"/verify?nomor={number}&nama={name}", as_=None)
        api("GET", "certification", f"/api/v1/certificates/{cert['id']}/pdf", as_="industry")

    def counted() -> bool:
        got = api(
            "GET",
            "reporting",
            f"/api/v1/indicators?group_by=facility&facility_id={facility['id']}",
            as_="corrections",
        )
        return bool(got["data"]) and got["data"][0]["certified"] >= 3

    eventually("the report to count the certificates", counted)
    api(
        "POST",
        "certification",
        f"/api/v1/certificates/{certificates[0]['id']}/revoke",
        as_="industry",
        json={"reason": "Diterbitkan atas data kelulusan yang keliru"},
    )

    # The registry grants an erasure request: the person's data is removed everywhere.
    api("POST", "registry", f"/api/v1/inmates/{ids[2]}/erasure", as_="corrections")

    def erased() -> bool:
        got = api("GET", "training", f"/api/v1/participants/{ids[2]}", as_="industry", expect=None)
        return NAMES[2] not in str(got)  # anonymised (or gone) in training's replica

    eventually("the erasure to reach training", erased)
    time.sleep(1.0)  # the last consumers' log lines reach the files

    logs = sorted((platform.var / "log").glob("*.log"))
    assert {p.stem for p in logs} >= set(SERVICES)
    lines = [line for path in logs for line in path.read_text("utf-8", "replace").splitlines()]
    needles = [*NAMES, *niks, *(n.upper() for n in NAMES)]
    # Names also as the address and JSON escapes would write them.
    needles += [quote(n) for n in NAMES] + [n.replace(" ", "+") for n in NAMES]
    leaks = [
        f"{needle!r} in: {line[:300]}" for line in lines for needle in needles if needle in line
    ]
    print(
        f"\n{len(lines)} log lines from {len(logs)} files scanned for {len(NAMES)} names and "
        f"{len(niks)} NIKs: {len(leaks)} hits"
    )
    # The scan had the whole run to read: a line for every request each service answered.
    requests_logged = {s: 0 for s in SERVICES}
    for path in logs:
        if path.stem in requests_logged:
            requests_logged[path.stem] = path.read_text("utf-8", "replace").count('"http_request"')
    assert all(n >= 1 for n in requests_logged.values()), requests_logged
    assert not leaks, "\n".join(leaks[:20])

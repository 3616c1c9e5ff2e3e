"""One course run through the running platform over HTTP, step by step, as staff would run it.

Corrections registers a facility and its inmates; training learns of those who consent from
the registry's events; industry publishes the batik program, schedules and opens a session at
the facility, enrols and starts; one participant is released mid-course; attendance,
assessment and completion follow, and certification issues certificates on its own. The
end-to-end flow and the log scan take these steps; each keeps its own checks between them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from tests.support.factories import (
    COURSE_START,
    facility_body,
    inmate_body,
    program_body,
    session_body,
)
from tests.support.platform import PlatformClient, eventually


class CourseRun:
    """The steps of one course; ``tag`` keeps its codes apart from other runs'."""

    def __init__(self, api: PlatformClient, *, first_day: date = COURSE_START) -> None:
        self.api = api
        self.tag = uuid.uuid4().hex[:6].upper()
        self.first_day = first_day
        self.facility: dict[str, Any] = {}
        self.program: dict[str, Any] = {}
        self.session_id = ""

    def _created(self, service: str, path: str, as_: str, body: Any) -> dict[str, Any]:
        """The answer to ``POST path``, which must be 201 Created."""
        return self.api("POST", service, path, as_=as_, expect=201, json=body)  # type: ignore[no-any-return]

    def _listed(self, what: str, service: str, url: str, n: int) -> dict[str, Any]:
        """The list at ``url`` as industry staff see it, once it counts ``n``."""
        return eventually(  # type: ignore[no-any-return]
            what,
            lambda: (lambda got: got if got["count"] == n else None)(
                self.api("GET", service, url, as_="industry")
            ),
        )

    # --- corrections ---------------------------------------------------------------------

    def register_facility(self, code: str) -> dict[str, Any]:
        """Lapas Kelas I Cipinang, under ``code`` and the run's tag."""
        body = facility_body(code=f"{code}-{self.tag}")
        self.facility = self._created("registry", "/api/v1/facilities", "corrections", body)
        return self.facility

    def register_inmates(
        self, prefix: str, names: Sequence[str], niks: Sequence[str], *, consenting: int
    ) -> list[dict[str, Any]]:
        """One man per name, held at the facility; the first ``consenting`` consent to both."""
        return [
            self._created(
                "registry",
                "/api/v1/inmates",
                "corrections",
                inmate_body(
                    self.facility["id"],
                    registration_number=f"{prefix}-{self.tag}-{i}",
                    full_name=name,
                    nik=niks[i],
                    date_of_birth=f"1990-01-0{i + 1}",
                    admission_date="2022-01-10",
                    expected_release_date="2025-01-10",
                    consent={"training": i < consenting, "data_sharing": i < consenting},
                ),
            )
            for i, name in enumerate(names)
        ]

    def release_on_parole(self, inmate_id: str) -> None:
        """Paroled on the course's third day."""
        self.api(
            "POST",
            "registry",
            f"/api/v1/inmates/{inmate_id}/release",
            as_="corrections",
            json={
                "kind": "parole",
                "released_on": (self.first_day + timedelta(days=2)).isoformat(),
            },
        )

    # --- industry ------------------------------------------------------------------------

    def participants_known(self, n: int) -> dict[str, Any]:
        """Training's replica of the facility, once it holds ``n`` people."""
        url = f"/api/v1/participants?facility_id={self.facility['id']}"
        return self._listed("participants in training's replica", "training", url, n)

    def publish_program(self, code: str) -> dict[str, Any]:
        """The batik program, under ``code`` and the run's tag."""
        body = program_body(code=f"{code}-{self.tag}")
        self.program = self._created("training", "/api/v1/programs", "industry", body)
        return self.program

    def schedule(self, *, capacity: int) -> str:
        """A session of the program at the facility, five days from ``first_day``; its id."""
        body = session_body(
            self.program["id"],
            self.facility["id"],
            start_date=self.first_day.isoformat(),
            end_date=(self.first_day + timedelta(days=4)).isoformat(),
            capacity=capacity,
        )
        session = self._created("training", "/api/v1/sessions", "industry", body)
        self.session_id = str(session["id"])
        return self.session_id

    def _session(self, method: str, step: str, **kwargs: Any) -> Any:
        path = f"/api/v1/sessions/{self.session_id}/{step}"
        return self.api(method, "training", path, as_="industry", **kwargs)

    def open(self) -> dict[str, Any]:
        return self._session("POST", "open")  # type: ignore[no-any-return]

    def enrol(self, participant_ids: Sequence[str]) -> None:
        self._session(
            "POST", "enrollments", expect=201, json={"participant_ids": list(participant_ids)}
        )

    def start(self) -> None:
        self._session("POST", "start")

    def withdrawn(self, participant_id: str) -> dict[str, dict[str, Any]]:
        """The session's enrolments by participant, once ``participant_id``'s is withdrawn."""

        def check() -> dict[str, dict[str, Any]] | None:
            s = self.api("GET", "training", f"/api/v1/sessions/{self.session_id}", as_="industry")
            e = {x["participant_id"]: x for x in s["enrollments"]}
            return e if e[participant_id]["status"] == "withdrawn" else None

        return eventually(  # type: ignore[no-any-return]
            "the released participant's withdrawal", check
        )

    def attend(self, participant_ids: Sequence[str], *, absent: Mapping[str, int] = {}) -> None:
        """Every day of the course: present, except ``absent[p]`` first days for ``p``."""
        for d in range(5):
            records = [
                {"participant_id": p, "status": "absent" if d < absent.get(p, 0) else "present"}
                for p in participant_ids
            ]
            day = (self.first_day + timedelta(days=d)).isoformat()
            self._session("PUT", "attendance", json={"date": day, "records": records})

    def assess_competent(self, participant_ids: Sequence[str]) -> None:
        """Competent on every unit of the program."""
        units = [u["code"] for u in self.program["competency_units"]]
        results = [
            {"participant_id": p, "unit_code": u, "result": "competent"}
            for p in participant_ids
            for u in units
        ]
        self._session("PUT", "assessments", json={"assessor": "Instruktur YBI", "results": results})

    def complete(self) -> dict[str, Any]:
        return self._session("POST", "complete")  # type: ignore[no-any-return]

    # --- certification -------------------------------------------------------------------

    def certificates(self, n: int) -> list[dict[str, Any]]:
        """The session's certificates, once certification has issued ``n``."""
        url = f"/api/v1/certificates?session_id={self.session_id}"
        return list(self._listed(f"{n} certificates", "certification", url, n)["data"])

"""What the training pages share: the templates and menu, who may open what (the API's rules,
from ``bekal.training.deps``), the names of statuses in Bahasa Indonesia, small helpers."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.auth import Principal
from bekal.shared.events.catalogue import FollowUpSituation, NotCompletedReason
from bekal.shared.web import STAFF, NavItem, Pages, page_require
from bekal.training.deps import (
    ADMIN_ROLES,
    FOLLOW_UP_ROLES,
    GRADUATE_ROLES,
    MINISTRY,
    OFFICER_ROLES,
    READER_ROLES,
)
from bekal.training.domain import (
    AssessmentResult,
    AttendanceStatus,
    EndReason,
    EnrollmentStatus,
    SessionStatus,
)
from bekal.training.models import AttendanceChange, Facility

Reader = Annotated[Principal, page_require(ministry=MINISTRY, roles=READER_ROLES)]
Admin = Annotated[Principal, page_require(ministry=MINISTRY, roles=ADMIN_ROLES)]
Officer = Annotated[Principal, page_require(ministry=MINISTRY, roles=OFFICER_ROLES)]
GraduateReader = Annotated[Principal, page_require(ministry=MINISTRY, roles=GRADUATE_ROLES)]
FollowUpper = Annotated[Principal, page_require(ministry=MINISTRY, roles=FOLLOW_UP_ROLES)]

pages = Pages(
    Path(__file__).parent / "templates",
    nav=[
        NavItem("Program", f"{STAFF}/program", ministry=MINISTRY, roles=READER_ROLES),
        NavItem("Sesi pelatihan", f"{STAFF}/sesi", ministry=MINISTRY, roles=READER_ROLES),
        NavItem("Lulusan", f"{STAFF}/lulusan", ministry=MINISTRY, roles=GRADUATE_ROLES),
    ],
)


def in_words(message: str) -> str:
    """A domain message with the session's status in the words the pages use."""
    for status, (label, _) in SESSION_STATUS.items():
        message = message.replace(f"'{status.value}'", f"'{label.lower()}'")
    return message


def in_dates(message: str) -> str:
    """A domain message (written for the API, ISO dates) with the dates as the pages write them
    ("6 September 2024")."""
    return _ISO_DATE.sub(lambda m: tanggal(date.fromisoformat(m.group())), message)


_ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")

SESSION_STATUS = {
    SessionStatus.PLANNED: ("Direncanakan", "neutral"),
    SessionStatus.OPEN: ("Dibuka untuk pendaftaran", "warn"),
    SessionStatus.RUNNING: ("Berjalan", "ok"),
    SessionStatus.COMPLETED: ("Selesai", "neutral"),
    SessionStatus.CANCELLED: ("Dibatalkan", "off"),
}
ENROLLMENT_STATUS = {
    EnrollmentStatus.ENROLLED: ("Terdaftar", "ok"),
    EnrollmentStatus.WAITLISTED: ("Daftar tunggu", "warn"),
    EnrollmentStatus.WITHDRAWN: ("Keluar", "off"),
    EnrollmentStatus.COMPLETED: ("Lulus", "ok"),
    EnrollmentStatus.NOT_COMPLETED: ("Tidak lulus", "off"),
}
END_REASON = {
    EndReason.RELEASED: "bebas",
    EndReason.TRANSFERRED: "dipindahkan ke lapas/rutan lain",
    EndReason.CONSENT_WITHDRAWN: "menarik persetujuan",
    EndReason.OTHER: "ditarik dari sesi",
    EndReason.MERGED: "data digabung",
}
ATTENDANCE = {
    AttendanceStatus.PRESENT: "Hadir",
    AttendanceStatus.ABSENT: "Tidak hadir",
    AttendanceStatus.EXCUSED: "Izin",
}
RESULT = {
    AssessmentResult.COMPETENT: "Kompeten",
    AssessmentResult.NOT_YET_COMPETENT: "Belum kompeten",
}
NOT_COMPLETED = {
    NotCompletedReason.ATTENDANCE_BELOW_MINIMUM: "kehadiran di bawah batas minimal",
    NotCompletedReason.COMPETENCIES_NOT_MET: "ada unit kompetensi yang belum kompeten",
}
SITUATION = {
    FollowUpSituation.BUSINESS_STARTED_WITH_NIB: "Memulai usaha, sudah punya NIB",
    FollowUpSituation.BUSINESS_STARTED_WITHOUT_NIB: "Memulai usaha, belum punya NIB",
    FollowUpSituation.EMPLOYED_BY_IKM: "Bekerja di IKM",
    FollowUpSituation.NOT_WORKING: "Belum bekerja atau berusaha",
    FollowUpSituation.UNREACHABLE: "Tidak dapat dihubungi",
}


def who(subject: str, principal: Principal) -> str:
    """Who recorded something: "Anda" for the person signed in, else the provider's subject."""
    return "Anda" if subject == principal.subject else subject


def tanggal(value: date | None) -> str:
    return str(pages.env.filters["tanggal"](value))


def percent(share: float | None) -> str:
    if share is None:
        return "—"
    return f"{share * 100:.0f}%".replace(".", ",")


def tag(text: str, kind: str) -> dict[str, str]:
    return {"text": text, "kind": kind}


def attendance_corrections(
    history: Iterable[tuple[AttendanceChange, Any]],
    names: Mapping[Any, str | None],
    principal: Principal,
) -> list[dict[str, Any]]:
    """The rows of an attendance correction history (the days saved again with a change), for
    the attendance sheet and the corrections page alike."""
    return [
        {
            "day": tanggal(change.day),
            "name": names.get(change.enrollment_id) or "(nama dihapus)",
            "before": ATTENDANCE[AttendanceStatus(change.previous_status)]
            if change.previous_status
            else "—",
            "after": ATTENDANCE[AttendanceStatus(change.status)] if change.status else "(dihapus)",
            "by": who(change.changed_by, principal),
            "at": change.changed_at,
            "reason": change.reason or "—",
        }
        for change, _ in history
        if change.previous_status is not None
    ]


def form_values(form: Mapping[str, Any], *names: str) -> dict[str, str]:
    return {name: str(form.get(name) or "").strip() for name in names}


def blank_to_none(values: Mapping[str, str]) -> dict[str, Any]:
    return {k: (v or None) for k, v in values.items()}


async def facilities_known(session: AsyncSession) -> list[Facility]:
    """Every facility training knows of (its replica of the registry's), by code: all of them
    (about 530 nationally), not a first page, or a session at one past it could not be
    scheduled and would be listed without its facility."""
    return list(await session.scalars(select(Facility).order_by(Facility.code, Facility.id)))

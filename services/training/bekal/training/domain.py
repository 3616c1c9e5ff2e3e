"""Training rules as plain code: session life cycle, enrolment checks, withdrawal, completion."""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from fractions import Fraction

from bekal.shared.events.catalogue import EnrollmentOutcome, NotCompletedReason


class SessionStatus(StrEnum):
    PLANNED = "planned"  # being prepared (dates, instructors); no nominations yet
    OPEN = "open"  # nominations accepted: enrolment and the waiting list
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class EnrollmentStatus(StrEnum):
    ENROLLED = "enrolled"
    WAITLISTED = "waitlisted"  # the session was full; moves up when a place frees
    WITHDRAWN = "withdrawn"
    COMPLETED = "completed"
    NOT_COMPLETED = "not_completed"


class EndReason(StrEnum):
    """Why an enrolment ended early, as training keeps it (the published reasons, and one more)."""

    RELEASED = "released"
    TRANSFERRED = "transferred"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    OTHER = "other"
    # A registry merge found the person twice in one session; the other enrolment stays.
    # Published as ``other`` with ``merged_into_enrollment_id``.
    MERGED = "merged"


class ParticipantStatus(StrEnum):
    IN_CUSTODY = "in_custody"
    RELEASED = "released"


class AttendanceStatus(StrEnum):
    PRESENT = "present"
    ABSENT = "absent"
    EXCUSED = "excused"


class AssessmentResult(StrEnum):
    COMPETENT = "competent"
    NOT_YET_COMPETENT = "not_yet_competent"


# A session is live until it is completed or cancelled: enrolments in it can still change
# (a release, a transfer or a withdrawal by hand ends them; the waiting list moves up).
LIVE_SESSION_STATUSES = frozenset(
    {SessionStatus.PLANNED, SessionStatus.OPEN, SessionStatus.RUNNING}
)
# New names are taken once nominations are open, and still while the course runs (a late
# entrant's attendance counts from the first day, so the attendance rule decides).
ENROLLING_STATUSES = frozenset({SessionStatus.OPEN, SessionStatus.RUNNING})

# The life cycle: planned -> open -> running -> completed, or cancelled (with a reason) from
# any status before completed. Everything else is refused (409).
TRANSITIONS: dict[SessionStatus, frozenset[SessionStatus]] = {
    SessionStatus.PLANNED: frozenset({SessionStatus.OPEN, SessionStatus.CANCELLED}),
    SessionStatus.OPEN: frozenset({SessionStatus.RUNNING, SessionStatus.CANCELLED}),
    SessionStatus.RUNNING: frozenset({SessionStatus.COMPLETED, SessionStatus.CANCELLED}),
    SessionStatus.COMPLETED: frozenset(),
    SessionStatus.CANCELLED: frozenset(),
}

# What each target status needs, said to the person who asked for it.
_TRANSITION_REFUSED = {
    SessionStatus.OPEN: "hanya sesi yang direncanakan dapat dibuka untuk pendaftaran",
    SessionStatus.RUNNING: "hanya sesi yang sudah dibuka untuk pendaftaran dapat dimulai",
    SessionStatus.COMPLETED: "penutupan hanya dapat dilakukan saat sesi berjalan",
    SessionStatus.CANCELLED: (
        "hanya sesi yang direncanakan, dibuka, atau berjalan dapat dibatalkan"
    ),
}


class RuleBroken(Exception):
    """A business rule refused an action; ``field`` names the input it is about."""

    def __init__(self, field: str, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.conflict = conflict  # the current state (not the input) is what stands in the way


# --- sessions ------------------------------------------------------------------------------


def session_days(start_date: date, end_date: date) -> int:
    """Calendar days of a session, both ends included."""
    return (end_date - start_date).days + 1


def check_session_dates(start_date: date, end_date: date) -> None:
    if end_date < start_date:
        raise RuleBroken("end_date", "Tanggal selesai tidak boleh sebelum tanggal mulai.")


def check_transition(current: SessionStatus, target: SessionStatus) -> None:
    """Refuse (409) a move the life cycle does not allow, saying what the move needs."""
    if target not in TRANSITIONS[current]:
        raise RuleBroken(
            "status",
            f"Sesi berstatus '{current}'; {_TRANSITION_REFUSED[target]}.",
            conflict=True,
        )


def check_can_open(status: SessionStatus) -> None:
    check_transition(status, SessionStatus.OPEN)


def check_can_start(status: SessionStatus) -> None:
    check_transition(status, SessionStatus.RUNNING)


def check_can_cancel(status: SessionStatus) -> None:
    check_transition(status, SessionStatus.CANCELLED)


def check_running(status: SessionStatus, action: str) -> None:
    """Attendance, assessment and completion happen only while the session runs."""
    if status != SessionStatus.RUNNING:
        raise RuleBroken(
            "status",
            f"Sesi berstatus '{status}'; {action} hanya dapat dilakukan saat sesi berjalan.",
            conflict=True,
        )


def check_attendance_date(day: date, start_date: date, end_date: date) -> None:
    if not start_date <= day <= end_date:
        raise RuleBroken(
            "date",
            f"Tanggal {day.isoformat()} di luar jadwal sesi "
            f"({start_date.isoformat()} s.d. {end_date.isoformat()}).",
        )


# How each way of leaving a course is said in an attendance refusal.
_LEFT_BY = {
    EndReason.RELEASED: "bebas",
    EndReason.TRANSFERRED: "dipindahkan ke lapas/rutan lain",
    EndReason.CONSENT_WITHDRAWN: "menarik persetujuan",
    EndReason.OTHER: "ditarik dari sesi",
}


def attendance_refusal(
    *,
    day: date,
    enrollment_status: EnrollmentStatus,
    withdrawn_on: date | None,
    withdrawal_reason: EndReason | None,
    spell: Callable[[date], str] = date.isoformat,
) -> str | None:
    """Why ``day`` cannot carry attendance for this enrolment (409), or None if it can.

    A withdrawn enrolment takes attendance only on days **before** its withdrawal date; the
    withdrawal day itself is refused. ``withdrawn_on`` is the day the person left: for a release
    or a transfer the registry's ``released_on`` / ``transferred_on`` (from that day the register
    holds them as out of custody or at another facility, and enrolment would already refuse
    them), for a death or a consent withdrawal the registry's date, and for a withdrawal by hand
    the day it was recorded. So a person paroled on 2024-09-05 can be marked up to 2024-09-04,
    and not on 2024-09-05 or after. It is the line assessment draws (a withdrawn enrolment is
    never assessed), drawn per day because attendance is kept per day.

    Days before the withdrawal stay writable on purpose: sending a day replaces its whole sheet,
    so a trainer re-sending day 1 must be able to keep the record of someone who left on day 3.
    A record folded away by a registry merge (``merged``) takes no attendance on any day: the
    person's days belong to the surviving record. A withdrawn enrolment without a date is
    refused on every day, as nothing says until when the person was there.

    The enrolment's own date is no bound: ``enrolled_on`` is the day the enrolment was entered,
    not a day of the course. A late entrant's attendance counts from the first day, and a course
    entered after the fact (the historical courses) has every one of its days before it.

    ``spell`` writes the dates: ISO for the API, the pages' "6 September 2024" for people.
    """
    if enrollment_status != EnrollmentStatus.WITHDRAWN:
        return None
    if withdrawal_reason == EndReason.MERGED:
        return (
            "Data peserta ini telah digabung ke data lain; catat absensinya pada data "
            "yang dipertahankan."
        )
    if withdrawn_on is None:
        return "Peserta sudah ditarik dari sesi; tanggal penarikan tidak tercatat."
    if day < withdrawn_on:
        return None
    how = _LEFT_BY.get(withdrawal_reason or EndReason.OTHER, "ditarik dari sesi")
    return (
        f"Peserta keluar dari sesi pada {spell(withdrawn_on)} ({how}); absensi tanggal "
        f"{spell(day)} tidak dapat dicatat, hanya untuk hari sebelum {spell(withdrawn_on)}."
    )


def absence_on(
    day: date, periods: Iterable[tuple[date, date | None]]
) -> tuple[date, date | None] | None:
    """The registry's temporary absence (from, back on) that covers ``day``, or None.

    An absence covers its first day up to the day before the return: on the day of return the
    person is back, and the sheet starts them as present. An absence not ended covers every
    day from its first.
    """
    for since, back in sorted(periods, key=lambda p: p[0], reverse=True):
        if since <= day and (back is None or day < back):
            return since, back
    return None


# --- enrolment -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ParticipantFacts:
    """What the replica of the registry knows about a person, as far as enrolment cares."""

    participant_id: uuid.UUID
    status: ParticipantStatus
    facility_id: uuid.UUID
    expected_release_date: date | None = None
    # False once the person withdrew consent or was erased: no longer a candidate.
    consented: bool = True


# Candidates are those near release: expected out within this many months of the session start.
DEFAULT_RELEASE_WINDOW_MONTHS = 12


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the month's end (31 Jan + 1 = 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def release_window_problem(
    *,
    expected_release_date: date | None,
    session_start: date,
    months: int,
    spell: Callable[[date], str] = date.isoformat,
) -> str | None:
    """Why a person is outside the release window of a session starting on ``session_start``.

    The window is relative to the session (not to today), so historical sessions are judged by
    the facts of their own time: released on or after the start, and within ``months`` of it.
    ``spell`` writes the dates (ISO for the API, the pages' own for people).
    """
    end = add_months(session_start, months)
    if expected_release_date is None:
        return (
            "Tanggal perkiraan bebas peserta tidak diketahui; pendaftaran memerlukan "
            "pengecualian dengan alasan."
        )
    if expected_release_date < session_start:
        return (
            f"Peserta diperkirakan bebas {spell(expected_release_date)}, sebelum sesi "
            f"dimulai ({spell(session_start)})."
        )
    if expected_release_date > end:
        return (
            f"Peserta diperkirakan bebas {spell(expected_release_date)}, lebih dari "
            f"{months} bulan setelah sesi dimulai (batas {spell(end)})."
        )
    return None


def dates_overlap(a_start: date, a_end: date, b_start: date, b_end: date) -> bool:
    return a_start <= b_end and b_start <= a_end


@dataclass(frozen=True)
class EnrollmentProblem:
    index: int
    participant_id: uuid.UUID
    message: str
    conflict: bool  # 409 (state of the session) rather than 422 (the person does not qualify)

    @property
    def field(self) -> str:
        return f"participant_ids.{self.index}"


def enrollment_problems(
    *,
    session_status: SessionStatus,
    session_facility_id: uuid.UUID,
    capacity: int,
    seats_taken: int,
    already_enrolled: Iterable[uuid.UUID],
    candidates: Sequence[uuid.UUID],
    known: Mapping[uuid.UUID, ParticipantFacts],
    session_start: date | None = None,
    window_months: int = DEFAULT_RELEASE_WINDOW_MONTHS,
    overridden: Iterable[uuid.UUID] = (),
    busy: Mapping[uuid.UUID, str] | None = None,
    waitlist: bool = False,
) -> list[EnrollmentProblem]:
    """Every reason the batch cannot be enrolled; an empty list means all of it may go in.

    All or nothing: the caller enrols the batch only when nothing at all is wrong, so a facility
    never ends up with half a nomination list. ``busy`` maps people already in an overlapping
    session to a description of it; ``overridden`` people skip the release-window rule (an
    administrator gave a reason). With ``waitlist`` the capacity is no obstacle: the caller puts
    those beyond it on the waiting list instead.
    """
    if session_status == SessionStatus.PLANNED:
        raise RuleBroken(
            "status",
            "Sesi masih direncanakan; pendaftaran belum dibuka.",
            conflict=True,
        )
    if session_status not in ENROLLING_STATUSES:
        raise RuleBroken(
            "status",
            f"Sesi berstatus '{session_status}'; pendaftaran sudah ditutup.",
            conflict=True,
        )
    problems: list[EnrollmentProblem] = []
    enrolled = set(already_enrolled)
    overrides = set(overridden)
    seen: set[uuid.UUID] = set()
    admissible = 0
    for index, pid in enumerate(candidates):
        facts = known.get(pid)
        message: str | None = None
        conflict = False
        if pid in seen:
            message = "Peserta disebut lebih dari sekali dalam permintaan ini."
        elif facts is None:
            message = "Peserta tidak dikenal (belum dibagikan oleh registri pemasyarakatan)."
        elif not facts.consented:
            message = "Peserta telah menarik persetujuan atau datanya dihapus; bukan calon peserta."
        elif facts.status != ParticipantStatus.IN_CUSTODY:
            message = "Peserta sudah bebas; hanya warga binaan yang masih dibina dapat didaftarkan."
        elif facts.facility_id != session_facility_id:
            message = "Peserta tidak berada di lapas/rutan tempat sesi diselenggarakan."
        elif pid in enrolled:
            message, conflict = "Peserta sudah pernah didaftarkan pada sesi ini.", True
        elif busy and pid in busy:
            message, conflict = (
                f"Peserta sudah terdaftar pada sesi lain yang jadwalnya bertumpuk ({busy[pid]}).",
                True,
            )
        elif (
            session_start is not None
            and pid not in overrides
            and (
                window := release_window_problem(
                    expected_release_date=facts.expected_release_date,
                    session_start=session_start,
                    months=window_months,
                )
            )
        ):
            message = window
        else:
            admissible += 1
            if not waitlist and seats_taken + admissible > capacity:
                message, conflict = (
                    f"Kapasitas sesi ({capacity} orang) terlampaui; sisa kursi "
                    f"{max(capacity - seats_taken, 0)}.",
                    True,
                )
        seen.add(pid)
        if message is not None:
            problems.append(EnrollmentProblem(index, pid, message, conflict))
    return problems


def seats_free(*, capacity: int, seats_taken: int) -> int:
    return max(capacity - seats_taken, 0)


def split_by_capacity(
    candidates: Sequence[uuid.UUID], *, capacity: int, seats_taken: int
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """(enrolled now, waiting list) for a batch, in the order given."""
    free = seats_free(capacity=capacity, seats_taken=seats_taken)
    return list(candidates[:free]), list(candidates[free:])


def is_withdrawable(
    *,
    enrollment_status: EnrollmentStatus,
    session_status: SessionStatus,
    session_facility_id: uuid.UUID,
    moved_to_facility_id: uuid.UUID | None = None,
) -> bool:
    """Whether a release (or a transfer to ``moved_to_facility_id``) ends this enrolment.

    Only a live enrolment in an open session ends; finished outcomes are history and stay.
    A transfer ends only courses held somewhere other than the person's new facility.
    """
    if enrollment_status not in (EnrollmentStatus.ENROLLED, EnrollmentStatus.WAITLISTED):
        return False
    if session_status not in LIVE_SESSION_STATUSES:
        return False
    return moved_to_facility_id is None or moved_to_facility_id != session_facility_id


# --- merging two records of one person ------------------------------------------------------

# When the registry merges two records of one person who were both in one session, the
# enrolment furthest along stays; the other's history is folded into it.
_KEEP_RANK = {
    EnrollmentStatus.COMPLETED: 4,
    EnrollmentStatus.NOT_COMPLETED: 3,
    EnrollmentStatus.ENROLLED: 2,
    EnrollmentStatus.WAITLISTED: 1,
    EnrollmentStatus.WITHDRAWN: 0,
}
_DAY_RANK = {AttendanceStatus.ABSENT: 0, AttendanceStatus.EXCUSED: 1, AttendanceStatus.PRESENT: 2}


def merged_keeps_its_own(merged: EnrollmentStatus, surviving: EnrollmentStatus) -> bool:
    """Whether the merged record's enrolment is kept rather than the survivor's own.

    Completed beats not completed beats enrolled beats waitlisted beats withdrawn; on a tie the
    survivor's own stays.
    """
    return _KEEP_RANK[merged] > _KEEP_RANK[surviving]


def folded_day(kept: AttendanceStatus | None, other: AttendanceStatus) -> AttendanceStatus | None:
    """The day's status once the other record is folded in, or None if the kept one stands.

    The person was there if either record says present; else excused if either says excused.
    """
    if kept is None or _DAY_RANK[other] > _DAY_RANK[kept]:
        return other
    return None


def folded_result(
    kept: AssessmentResult | None, other: AssessmentResult
) -> AssessmentResult | None:
    """A unit's result once the other record is folded in, or None if the kept one stands:
    competent if either record was assessed competent."""
    if kept is None or (other == AssessmentResult.COMPETENT and kept != AssessmentResult.COMPETENT):
        return other
    return None


# --- completion ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    completed: bool
    attendance_share: float
    reason: NotCompletedReason | None


def attendance_share(*, days: int, present: int, excused: int) -> Fraction:
    """Present days over the days the person was expected: excused days leave the denominator.

    A person excused for every day had no day to attend; the share is then 0, so the
    attendance rule cannot be met by being away the whole course (unless the minimum is 0).
    """
    expected = days - excused
    if expected <= 0:
        return Fraction(0)
    return Fraction(present, expected)


def completion_outcome(
    *,
    days: int,
    attendance: Iterable[AttendanceStatus],
    min_attendance_share: float,
    unit_codes: Sequence[str],
    results: Mapping[str, AssessmentResult],
) -> Outcome:
    """Completed iff the attendance share reaches the minimum and every unit is assessed competent.

    ``attendance`` holds one status per recorded day (days without a record count as absent).
    The comparison is exact: the minimum is taken as the decimal it was written as (0.8 is 4/5),
    so a share exactly at the minimum passes. A unit without an assessment is not competent.
    """
    statuses = list(attendance)
    present = sum(1 for s in statuses if s == AttendanceStatus.PRESENT)
    excused = sum(1 for s in statuses if s == AttendanceStatus.EXCUSED)
    share = attendance_share(days=days, present=present, excused=excused)
    shown = round(float(share), 4)
    if share < Fraction(repr(min_attendance_share)):
        return Outcome(False, shown, NotCompletedReason.ATTENDANCE_BELOW_MINIMUM)
    if not unit_codes or any(
        results.get(code) != AssessmentResult.COMPETENT for code in unit_codes
    ):
        return Outcome(False, shown, NotCompletedReason.COMPETENCIES_NOT_MET)
    return Outcome(True, shown, None)


def outcome_of(outcome: Outcome) -> EnrollmentOutcome:
    return EnrollmentOutcome.COMPLETED if outcome.completed else EnrollmentOutcome.NOT_COMPLETED


def check_correctable(status: SessionStatus) -> None:
    """Corrections are for completed sessions; a running one is simply re-entered."""
    if status != SessionStatus.COMPLETED:
        raise RuleBroken(
            "status",
            f"Sesi berstatus '{status}'; koreksi hanya untuk sesi yang sudah selesai "
            "(sesi yang berjalan diubah lewat absensi/penilaian biasa).",
            conflict=True,
        )


# --- after release -------------------------------------------------------------------------

FOLLOW_UP_CHECKPOINTS = (3, 6, 12)
GRADUATE_STATUSES = frozenset({EnrollmentStatus.COMPLETED})


def check_graduate(status: EnrollmentStatus) -> None:
    if status not in GRADUATE_STATUSES:
        raise RuleBroken(
            "enrollment_id",
            f"Pendaftaran berstatus '{status}'; hanya lulusan yang dicatat kesiapan dan "
            "tindak lanjutnya.",
            conflict=True,
        )


def check_follow_up(*, checkpoint_months: int, released_on: date | None, recorded_on: date) -> None:
    """A follow-up is at about 3, 6 or 12 months after release, so the person must be out."""
    if checkpoint_months not in FOLLOW_UP_CHECKPOINTS:
        raise RuleBroken(
            "checkpoint_months", "Tindak lanjut hanya pada bulan ke-3, ke-6, atau ke-12."
        )
    if released_on is None:
        raise RuleBroken(
            "enrollment_id",
            "Lulusan belum bebas; tindak lanjut dicatat setelah bebas.",
            conflict=True,
        )
    if recorded_on < released_on:
        raise RuleBroken(
            "recorded_on",
            f"Tanggal tindak lanjut sebelum tanggal bebas ({released_on.isoformat()}).",
        )

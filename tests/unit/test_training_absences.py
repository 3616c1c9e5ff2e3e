"""A day is excused by the registry's temporary absence that covers it: from its first day up
to the day before the return."""

from __future__ import annotations

from datetime import date

from bekal.training.domain import absence_on

COURT = (date(2024, 9, 3), date(2024, 9, 5))
HOSPITAL = (date(2024, 9, 9), None)


def test_an_absence_covers_its_days_up_to_the_day_before_the_return():
    assert absence_on(date(2024, 9, 2), [COURT]) is None
    assert absence_on(date(2024, 9, 3), [COURT]) == COURT
    assert absence_on(date(2024, 9, 4), [COURT]) == COURT
    assert absence_on(date(2024, 9, 5), [COURT]) is None  # back that day


def test_an_absence_not_ended_covers_every_day_from_its_first():
    assert absence_on(date(2024, 9, 8), [COURT, HOSPITAL]) is None
    assert absence_on(date(2024, 9, 30), [COURT, HOSPITAL]) == HOSPITAL

"""Dates as people read them: relative to a today that is always given, never the clock."""

from __future__ import annotations

from datetime import date

import pytest

from funnelctl.dates import relative

TODAY = "2026-03-02"


@pytest.mark.parametrize(
    ("day", "said"),
    [
        ("2026-03-02", "today"),
        ("2026-03-03", "tomorrow"),
        ("2026-03-01", "yesterday"),
        ("2026-02-28", "2d late"),
        ("2025-03-02", "365d late"),
        ("2026-03-04", "in 2d"),
        ("2026-03-15", "in 13d"),
        ("2026-03-16", "on 2026-03-16"),
        ("2026-12-03", "on 2026-12-03"),
    ],
)
def test_a_day_is_said_relative_to_today(day, said):
    assert relative(day, TODAY) == said


def test_dates_and_iso_strings_read_alike():
    assert relative(date(2026, 3, 5), date(2026, 3, 2)) == relative("2026-03-05", TODAY) == "in 3d"
    assert relative(date(2026, 12, 3), TODAY) == "on 2026-12-03"


def test_across_a_month_and_a_leap_day():
    assert relative("2028-03-01", "2028-02-28") == "in 2d"
    assert relative("2026-03-01", "2026-02-28") == "tomorrow"

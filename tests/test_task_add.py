"""The due forms a person writes (dates.parse_due) and the words a day is said in
(dates.relative)."""

from __future__ import annotations

from datetime import date

import pytest
from conftest import TODAY

from funnelctl.dates import parse_due, relative
from funnelctl.errors import UsageError

# -- the due forms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "due"),
    [
        ("2026-12-03", "2026-12-03"),
        ("0d", "2026-03-02"),
        ("3d", "2026-03-05"),
        ("2w", "2026-03-16"),
        ("today", "2026-03-02"),
        ("tomorrow", "2026-03-03"),
        (" Tomorrow ", "2026-03-03"),
        ("3D", "2026-03-05"),
        ("tue", "2026-03-03"),
        ("thu", "2026-03-05"),
        ("Thursday", "2026-03-05"),
        ("SUN", "2026-03-08"),
        # today is a Monday: "mon" is the next Monday, a week ahead, never today
        ("mon", "2026-03-09"),
        ("monday", "2026-03-09"),
    ],
)
def test_parse_due_reads_every_form_from_today(text, due):
    assert parse_due(text, "2026-03-02") == due


def test_parse_due_takes_today_as_a_date_too():
    assert parse_due("fri", date(2026, 3, 7)) == "2026-03-13"  # a Saturday: next Friday


@pytest.mark.parametrize("text", ["", "next week", "3", "d3", "-1d", "3 d", "thurs", "2026-3-5"])
def test_parse_due_refuses_anything_else_naming_the_value_and_the_forms(text):
    with pytest.raises(UsageError) as caught:
        parse_due(text, TODAY)
    assert caught.value.message == (
        f"{text!r} is not a due date; write YYYY-MM-DD, Nd (3d), Nw (2w), today, tomorrow "
        "or a weekday (mon or monday … sun or sunday)."
    )


def test_parse_due_refuses_a_day_not_in_the_calendar():
    with pytest.raises(UsageError, match="'2026-02-30' is not a valid date"):
        parse_due("2026-02-30", TODAY)


@pytest.mark.parametrize(
    ("day", "words"),
    [
        ("2026-03-02", "today"),
        ("2026-03-03", "tomorrow"),
        ("2026-03-01", "yesterday"),
        ("2026-03-05", "in 3d"),
        ("2026-04-01", "in 30d"),
        ("2026-02-28", "2d late"),
        (date(2026, 2, 20), "10d late"),
    ],
)
def test_relative_says_a_day_in_words(day, words):
    assert relative(day, "2026-03-02") == words
    assert relative(day, date(2026, 3, 2)) == words

"""Dates and durations: parsing and arithmetic, never the clock.

funnelctl stores calendar dates as ISO strings (``2026-01-31``). "Today" is
always passed in by the caller; only the CLI decides what today is.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import lru_cache

_DURATION = re.compile(r"^(\d{1,4})([dw])$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DUE_FORMS = (
    "YYYY-MM-DD, Nd (3d), Nw (2w), today, tomorrow or a weekday (mon or monday … sun or sunday)"
)


def parse_date(text: str, fmt: str | None = None) -> date:
    """Parse an ISO date (or one in ``fmt``, a strptime format); raise ValueError with a reason."""
    value = text.strip()
    if fmt is None and not _ISO_DATE.match(value):
        raise ValueError(f"{text!r} is not a date in the form YYYY-MM-DD")
    try:
        if fmt is None:
            fmt = "%Y-%m-%d"
            # What strptime(value, fmt) reads (ASCII digits only), without importing
            # _strptime and its locale set-up: a few milliseconds of every start (--today).
            if not value.isascii():
                raise ValueError(value)
            parsed = date(int(value[:4]), int(value[5:7]), int(value[8:10]))
        else:
            parsed = datetime.strptime(value, fmt).date()
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date in the form {fmt}") from None
    if not 1900 <= parsed.year <= 9000:
        raise ValueError(f"{text!r} is outside the years 1900 to 9000")
    return parsed


def parse_duration(text: str) -> int:
    """``'3d'`` -> 3, ``'2w'`` -> 14. Raise ValueError for anything else."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 0d, 2d or 3w")
    number, unit = int(match.group(1)), match.group(2)
    return number * 7 if unit == "w" else number


def shift(day: str, days: int) -> str:
    """The ISO date ``days`` after (or before, if negative) the ISO date ``day``."""
    try:
        return (date.fromisoformat(day) + timedelta(days=days)).isoformat()
    except OverflowError:
        from .errors import UsageError

        raise UsageError(f"{day} {days:+d} days is outside the calendar.") from None


def week_start(day: str) -> str:
    """The Monday of the week (Monday to Sunday) that holds the ISO date ``day``."""
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


def days_between(earlier: date | str, later: date | str) -> int:
    if isinstance(earlier, str):
        earlier = _day(earlier)
    if isinstance(later, str):
        later = _day(later)
    return (later - earlier).days


@lru_cache(maxsize=4096)
def _day(text: str) -> date:
    # a book's dates repeat: scoring 100,000 customers counts days from a few thousand
    return date.fromisoformat(text)


def days_since(day: str | None, today: str) -> int | None:
    """Days from ``day`` to ``today``; None when there is no such day."""
    return days_between(day, today) if day else None


def parse_due(text: str, today: date | str) -> str:
    """The ISO day a due date written by a person means, seen from ``today``.

    ``YYYY-MM-DD``; ``Nd`` or ``Nw`` from today (``0d`` is today); ``today``, ``tomorrow``;
    a weekday, whole or in three letters (``thu``, ``Thursday``): the next such day after
    today, so today's own weekday is a week ahead. Case and surrounding spaces do not
    matter. Anything else is a UsageError naming the value and the forms. A day in the
    past is returned as such: whether it is allowed is the caller's to say.
    """
    from .errors import UsageError

    value = text.strip().lower()
    start = date.fromisoformat(today) if isinstance(today, str) else today
    if value == "today":
        return start.isoformat()
    if value == "tomorrow":
        return shift(start.isoformat(), 1)
    if _DURATION.match(value):
        return shift(start.isoformat(), parse_duration(value))
    for number, name in enumerate(WEEKDAYS):
        if value in (name, name[:3]):
            return shift(start.isoformat(), (number - start.weekday() - 1) % 7 + 1)
    if _ISO_DATE.match(value):
        try:
            date.fromisoformat(value)
        except ValueError:
            raise UsageError(f"{text!r} is not a valid date in the form YYYY-MM-DD.") from None
        try:  # the years every date funnelctl keeps is in (a calendar feed adds a day)
            return parse_date(value).isoformat()
        except ValueError as exc:
            raise UsageError(f"{exc}.") from None
    raise UsageError(f"{text!r} is not a due date; write {DUE_FORMS}.")


# Beyond this many days ahead a date reads better as itself than as a count.
RELATIVE_HORIZON = 13


def relative(day: date | str, today: date | str) -> str:
    """``day`` as a person says it, seen from ``today``: ``today``, ``tomorrow``,
    ``yesterday``, ``in 3d`` (up to RELATIVE_HORIZON days ahead), ``on 2026-12-03``
    (further ahead) or ``2d late`` (two days or more ago). Pure: no clock, no locale."""
    days = days_between(today, day)
    if days == 0:
        return "today"
    if days == 1:
        return "tomorrow"
    if days == -1:
        return "yesterday"
    if days < 0:
        return f"{-days}d late"
    if days <= RELATIVE_HORIZON:
        return f"in {days}d"
    return f"on {day if isinstance(day, str) else day.isoformat()}"

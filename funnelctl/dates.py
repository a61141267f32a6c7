"""Dates and durations: parsing and arithmetic, never the clock.

funnelctl stores calendar dates as ISO strings (``2026-01-31``). "Today" is
always passed in by the caller; only the CLI decides what today is.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

_DURATION = re.compile(r"^(\d{1,4})([dw])$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_date(text: str, fmt: str | None = None) -> date:
    """Parse an ISO date (or one in ``fmt``, a strptime format); raise ValueError with a reason."""
    value = text.strip()
    if fmt is None:
        if not _ISO_DATE.match(value):
            raise ValueError(f"{text!r} is not a date in the form YYYY-MM-DD")
        fmt = "%Y-%m-%d"
    try:
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


def days_between(earlier: date | str, later: date | str) -> int:
    if isinstance(earlier, str):
        earlier = date.fromisoformat(earlier)
    if isinstance(later, str):
        later = date.fromisoformat(later)
    return (later - earlier).days


def relative(day: str, today: str) -> str:
    """A day as people say it beside today: today, tomorrow, yesterday, in 3d, 2d late."""
    n = days_between(today, day)
    if n == 0:
        return "today"
    if n == 1:
        return "tomorrow"
    if n == -1:
        return "yesterday"
    return f"in {n}d" if n > 0 else f"{-n}d late"

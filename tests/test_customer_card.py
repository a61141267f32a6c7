"""The customer card (`customer show`), tags added and removed one by one, erasing a person
(`customer delete`) and merging duplicates (`customer merge`)."""

from __future__ import annotations

from funnelctl.dates import relative


def test_relative_days_read_as_people_say_them():
    today = "2026-03-02"
    assert [
        relative(day, today)
        for day in ("2026-03-02", "2026-03-03", "2026-03-01", "2026-03-05", "2026-02-28")
    ] == ["today", "tomorrow", "yesterday", "in 3d", "2d late"]
    assert relative("2027-03-02", today) == "in 365d"  # across a year, not mod anything

"""The calendar feed: `funnelctl due --format ics` and `funnelctl export calendar FILE.ics`.

Open tasks become all-day events on their due dates, one per task, with a stable
UID, so a calendar app that subscribes to the file sees the same events every
time. The book below has open, snoozed, done and dropped tasks, and text full of
the characters iCalendar must escape (commas, semicolons, backslashes, line
breaks) plus markup and non-ASCII letters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timezone

import pytest
from conftest import write
from icalendar import Calendar
from typer.testing import CliRunner

from funnelctl.cli import app

TITLE = 'Call, then write; check "quotes" <b>now</b>'
PLAYBOOK = """\
id: cal
title: Calendar
allow_backward: true
allow_skip: true
stages:
  - id: start
    title: Start
    on_enter:
      - task: 'Call, then write; check "quotes" <b>now</b>'
        due: 2d
        channel: phone
        description: |
          First line, with a comma; and a semicolon.
          Second line \\ with a backslash.
  - id: later
    title: Later
    on_enter:
      - task: Quarterly review
        due: 6w
"""
# Long enough that the SUMMARY line must be folded, with letters of two bytes each.
NAME = 'Smith, Jane; "JJ" <b>&amp;</b> \\ Ünïcødé-Ünïcødé-Ünïcødé-Ünïcødé-Ünïcødé'


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


def task_ids(run) -> dict[tuple[str, str], int]:
    """(customer email or external id, status) -> task id, for the book's tasks (one each)."""
    people = json.loads(ok(run("export", "customers", "--format", "json")).stdout)
    label = {c["id"]: c["email"] or c["external_id"] for c in people}
    rows = json.loads(ok(run("export", "activities", "--format", "json")).stdout)
    found: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (label[r["customer_id"]], r["status"])
        assert key not in found, rows
        found[key] = r["id"]
    return found


@pytest.fixture
def book(run, workspace):
    """Open: p's first task (snoozed to 03-10, ana), s's (03-04, ana), q's review
    (04-11, bruno). Done: q's first task. Dropped: r's (r churned)."""
    write(workspace / "playbooks" / "cal.yaml", PLAYBOOK)
    ok(run("customer", "add", "p@example.com", "--name", NAME, "--company", "Acme, Inc.",
           "--owner", "ana", "--today", "2026-02-01"))  # fmt: skip
    ok(run("customer", "add", "q@example.com", "--name", "Q", "--owner", "bruno"))
    ok(run("customer", "add", "r@example.com", "--owner", "ana"))
    ok(run("customer", "add", "--external-id", "crm-42", "--name", "No Mail", "--owner", "ana"))
    ok(run("enroll", "p@example.com", "cal", "--today", "2026-02-20"))  # due 02-22
    ok(run("enroll", "q@example.com", "cal", "--today", "2026-02-25"))  # due 02-27
    ok(run("done", str(task_ids(run)[("q@example.com", "open")]), "--today", "2026-02-27"))
    ok(run("move", "q@example.com", "later", "--today", "2026-02-28"))  # review due 04-11
    ok(run("enroll", "r@example.com", "cal", "--today", "2026-03-01"))  # due 03-03
    ok(run("churn", "r@example.com", "--today", "2026-03-02"))  # drops it
    ok(run("enroll", "crm-42", "cal", "--today", "2026-03-02"))  # due 03-04
    p_task = task_ids(run)[("p@example.com", "open")]
    ok(run("snooze", str(p_task), "--until", "2026-03-10", "--today", "2026-03-02"))
    return workspace


def ics(run, *args: str) -> bytes:
    """The exact bytes on stdout (the conftest runner's text would turn CRLF into LF)."""
    result = CliRunner().invoke(app, ["due", "--format", "ics", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes


def events(data: bytes) -> list:
    calendar = Calendar.from_ical(data)
    return list(calendar.walk("VEVENT"))


def unfolded(data: bytes) -> list[str]:
    return data.decode("utf-8").replace("\r\n ", "").split("\r\n")


def test_one_all_day_event_per_open_task(run, book):
    ids = task_ids(run)
    data = ics(run)
    found = events(data)
    # Sorted by due date: s 03-04, p 03-10 (snoozed from 02-22), q 04-11.
    # q's first task (done) and r's (dropped) have no event.
    assert [str(e["uid"]) for e in found] == [
        f"task-{ids[('crm-42', 'open')]}@funnelctl",
        f"task-{ids[('p@example.com', 'open')]}@funnelctl",
        f"task-{ids[('q@example.com', 'open')]}@funnelctl",
    ]
    assert ("q@example.com", "done") in ids and ("r@example.com", "dropped") in ids
    assert [(e.decoded("dtstart"), e.decoded("dtend")) for e in found] == [
        (date(2026, 3, 4), date(2026, 3, 5)),
        (date(2026, 3, 10), date(2026, 3, 11)),
        (date(2026, 4, 11), date(2026, 4, 12)),
    ]
    for event in found:  # all-day: a DATE, not a DATE-TIME
        assert type(event.decoded("dtstart")) is date
        assert event["dtstart"].params.get("VALUE") == "DATE"
        stamp = event.decoded("dtstamp")  # RFC 5545: DTSTAMP is in UTC
        assert isinstance(stamp, datetime) and stamp.utcoffset() == timezone.utc.utcoffset(None)
    assert [str(e["summary"]) for e in found] == [
        f"{TITLE} (No Mail)",
        f"{TITLE} ({NAME})",
        "Quarterly review (Q)",
    ]
    assert [e["categories"].cats for e in found] == [["ana"], ["ana"], ["bruno"]]
    calendar = Calendar.from_ical(data)
    assert str(calendar["version"]) == "2.0"
    assert str(calendar["prodid"]).startswith("-//funnelctl//")


def test_text_round_trips_through_the_parser(run, book):
    ids = task_ids(run)
    data = ics(run)
    p_event = events(data)[1]
    assert str(p_event["summary"]) == f"{TITLE} ({NAME})"
    assert str(p_event["description"]) == (
        "Customer: p@example.com, Acme, Inc.\n"
        "Funnel: cal / start\n"
        "Owner: ana\n"
        "Channel: phone\n"
        "First line, with a comma; and a semicolon.\n"
        "Second line \\ with a backslash.\n"
        f"Done? funnelctl done {ids[('p@example.com', 'open')]}"
    )
    assert str(events(data)[0]["description"]).startswith("Customer: crm-42\n")
    # The raw text is escaped as RFC 5545 says (\, \; \\ and \n), independent of the parser.
    lines = unfolded(data)
    summary = [line for line in lines if line.startswith("SUMMARY:")][1]
    assert summary == (
        'SUMMARY:Call\\, then write\\; check "quotes" <b>now</b> '
        '(Smith\\, Jane\\; "JJ" <b>&amp\\;</b> \\\\ '  # the ; of &amp; too
        + "-".join(["Ünïcødé"] * 5)
        + ")"
    )
    description = [line for line in lines if line.startswith("DESCRIPTION:Customer: p@")][0]
    assert "Acme\\, Inc.\\nFunnel: cal / start\\n" in description
    assert "\\nSecond line \\\\ with a backslash.\\n" in description


def test_the_file_is_well_formed(run, book):
    data = ics(run)
    text = data.decode("utf-8")  # UTF-8 throughout, no character cut by the folding
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    lines = data.split(b"\r\n")
    assert b"\n" not in b"".join(lines)  # every line ends with CRLF
    assert max(len(line) for line in lines) <= 75  # folded at 75 octets
    assert any(line.startswith(b" ") for line in lines)  # the long SUMMARY was folded
    assert text.count("BEGIN:VEVENT") == text.count("END:VEVENT") == 3


def test_same_book_same_bytes(run, book):
    first = ics(run)
    assert ics(run) == first
    # Nothing in the feed depends on the day it is made: a subscribed calendar
    # does not see every event change every morning.
    assert ics(run, "--today", "2026-04-01") == first


def test_owner_filter(run, book):
    ids = task_ids(run)
    assert [str(e["uid"]) for e in events(ics(run, "--owner", "ana"))] == [
        f"task-{ids[('crm-42', 'open')]}@funnelctl",
        f"task-{ids[('p@example.com', 'open')]}@funnelctl",
    ]
    assert [str(e["uid"]) for e in events(ics(run, "--owner", "bruno"))] == [
        f"task-{ids[('q@example.com', 'open')]}@funnelctl"
    ]
    empty = ics(run, "--owner", "nobody")
    assert events(empty) == []
    assert str(Calendar.from_ical(empty)["prodid"]).startswith("-//funnelctl//")


def test_export_calendar_file(run, book, tmp_path):
    target = tmp_path / "tasks.ics"
    result = ok(run("export", "calendar", str(target)))
    assert result.stdout == ""
    assert str(target) in result.stderr
    assert target.read_bytes() == ics(run)
    assert len(events(target.read_bytes())) == 3
    # -o works the same, and without a file the calendar goes to stdout.
    other = tmp_path / "other.ics"
    ok(run("export", "calendar", "-o", str(other)))
    assert other.read_bytes() == target.read_bytes()
    to_stdout = CliRunner().invoke(app, ["export", "calendar"], catch_exceptions=False)
    assert to_stdout.exit_code == 0 and to_stdout.stdout_bytes == target.read_bytes()


def test_a_real_process_writes_the_same_bytes(run, book):
    """Through a real stdout (no test runner in between): bytes, CRLF and all."""
    done = subprocess.run(
        [sys.executable, "-c", "from funnelctl.cli import main; main()", "due", "-f", "ics"],
        capture_output=True,
        timeout=60,
        env=os.environ.copy(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ics(run)


def test_done_and_dropped_tasks_leave_the_feed(run, book):
    ids = task_ids(run)
    p_task = ids[("p@example.com", "open")]
    ok(run("done", str(p_task)))
    ok(run("drop", str(ids[("q@example.com", "open")]), "--reason", "not needed"))
    assert [str(e["uid"]) for e in events(ics(run))] == [
        f"task-{ids[('crm-42', 'open')]}@funnelctl"
    ]


def test_an_empty_book_gives_an_empty_calendar(run, workspace):
    data = ics(run)
    assert events(data) == []
    assert data.startswith(b"BEGIN:VCALENDAR\r\n")


def test_a_name_with_a_line_break_never_reaches_the_feed(run, workspace, dump):
    before = dump(workspace)
    result = run("customer", "add", "n@example.com", "--name", "Line\nbreak")
    assert result.exit_code != 0
    assert "Traceback" not in result.stderr
    assert dump(workspace) == before


def test_the_feed_follows_the_due_date_not_the_first_due_date(run, book):
    # p's task was first due 02-22 and snoozed to 03-10: the event sits on 03-10.
    rows = json.loads(ok(run("export", "activities", "--format", "json")).stdout)
    p_row = next(r for r in rows if r["customer"] == "p@example.com")
    assert (p_row["first_due_on"], p_row["due_on"]) == ("2026-02-22", "2026-03-10")
    p_event = next(e for e in events(ics(run)) if str(e["uid"]) == f"task-{p_row['id']}@funnelctl")
    assert p_event.decoded("dtstart") == date(2026, 3, 10)

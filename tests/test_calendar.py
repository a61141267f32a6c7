"""The calendar feed: `funnelctl due --format ics` and `funnelctl export calendar FILE.ics`.

Open tasks become all-day events on their due dates, one per task, with a stable
UID unique to the workspace, so a calendar app that subscribes to the file sees the
same events every time; tasks closed in the last 14 days are cancelled events. The book below has open, snoozed, done and dropped tasks, and text full of
the characters iCalendar must escape (commas, semicolons, backslashes, line
breaks) plus markup and non-ASCII letters.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

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


def all_events(data: bytes) -> list:
    calendar = Calendar.from_ical(data)
    return list(calendar.walk("VEVENT"))


def events(data: bytes) -> list:
    """The events of open tasks (closed ones are there too, cancelled)."""
    return [e for e in all_events(data) if str(e["status"]) == "CONFIRMED"]


def cancelled(data: bytes) -> list:
    return [e for e in all_events(data) if str(e["status"]) == "CANCELLED"]


def workspace_id(folder: Path) -> str:
    conn = sqlite3.connect(folder / "funnel.db")
    try:
        return str(conn.execute("SELECT value FROM meta WHERE key = 'workspace_id'").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def uid(workspace):
    """The UID of task N's event in this workspace's feed."""
    wsid = workspace_id(workspace)
    return lambda task_id: f"task-{task_id}-{wsid}@funnelctl"


def unfolded(data: bytes) -> list[str]:
    return data.decode("utf-8").replace("\r\n ", "").split("\r\n")


def test_one_all_day_event_per_open_task(run, book, uid):
    ids = task_ids(run)
    data = ics(run)
    found = events(data)
    # Sorted by due date: s 03-04, p 03-10 (snoozed from 02-22), q 04-11.
    # q's first task (done) and r's (dropped) are cancelled events (see below).
    assert [str(e["uid"]) for e in found] == [
        uid(ids[("crm-42", "open")]),
        uid(ids[("p@example.com", "open")]),
        uid(ids[("q@example.com", "open")]),
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
    summary = next(line for line in lines if line.startswith("SUMMARY:Call") and "Smith" in line)
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
    # Three open tasks, and two closed in the last 14 days (cancelled).
    assert text.count("BEGIN:VEVENT") == text.count("END:VEVENT") == 5


def test_same_book_same_bytes(run, book):
    first = ics(run)
    assert ics(run) == first
    # Nothing in an event depends on the day the feed is made: a subscribed calendar
    # does not see every event change every morning. The day only decides which
    # closed tasks are still shown (14 days).
    assert ics(run, "--today", "2026-03-05") == first
    later = ics(run, "--today", "2026-04-01")
    assert cancelled(later) == []
    assert [e.to_ical() for e in events(later)] == [e.to_ical() for e in events(first)]


def test_owner_filter(run, book, uid):
    ids = task_ids(run)
    assert [str(e["uid"]) for e in events(ics(run, "--owner", "ana"))] == [
        uid(ids[("crm-42", "open")]),
        uid(ids[("p@example.com", "open")]),
    ]
    assert [str(e["uid"]) for e in events(ics(run, "--owner", "bruno"))] == [
        uid(ids[("q@example.com", "open")])
    ]
    empty = ics(run, "--owner", "nobody")
    assert all_events(empty) == []
    assert str(Calendar.from_ical(empty)["prodid"]).startswith("-//funnelctl//")


def test_export_calendar_file(run, book, tmp_path):
    target = tmp_path / "tasks.ics"
    result = ok(run("export", "calendar", str(target)))
    assert result.stdout == ""
    assert str(target) in result.stderr
    assert target.read_bytes() == ics(run)
    assert len(all_events(target.read_bytes())) == 5
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


def test_closed_tasks_are_cancelled_for_14_days_then_leave_the_feed(run, book, uid):
    ids = task_ids(run)
    # In the book: q's first task done on 02-27 (due 02-27), r's dropped on 03-02 by the churn.
    gone = cancelled(ics(run))
    assert [str(e["uid"]) for e in gone] == [
        uid(ids[("q@example.com", "done")]),
        uid(ids[("r@example.com", "dropped")]),
    ]
    done = gone[0]
    assert str(done["summary"]) == f"Done: {TITLE} (Q)"
    assert str(done["description"]).startswith("Done on 2026-02-27\nCustomer: q@example.com\n")
    assert "funnelctl done" not in str(done["description"])
    assert done.decoded("dtstart") == date(2026, 2, 27)
    assert done.decoded("sequence") == 1  # closed once
    assert done.decoded("last-modified") == datetime(2026, 2, 27, tzinfo=timezone.utc)
    assert str(gone[1]["summary"]).startswith("Dropped: ")
    assert str(gone[1]["description"]).startswith("Dropped on 2026-03-02")
    # 14 days after 02-27 it is still there (cancelled); the day after, gone.
    assert [str(e["uid"]) for e in cancelled(ics(run, "--today", "2026-03-13"))][0] == uid(
        ids[("q@example.com", "done")]
    )
    assert [str(e["uid"]) for e in cancelled(ics(run, "--today", "2026-03-14"))] == [
        uid(ids[("r@example.com", "dropped")])
    ]
    assert cancelled(ics(run, "--today", "2026-03-17")) == []

    # Done and dropped today: the open events become cancelled ones, same UIDs.
    p_task = ids[("p@example.com", "open")]
    ok(run("done", str(p_task)))
    ok(run("drop", str(ids[("q@example.com", "open")]), "--reason", "not needed"))
    data = ics(run)
    assert [str(e["uid"]) for e in events(data)] == [uid(ids[("crm-42", "open")])]
    now_cancelled = {str(e["uid"]): e for e in cancelled(data)}
    assert set(now_cancelled) == {
        uid(ids[("q@example.com", "done")]),
        uid(ids[("r@example.com", "dropped")]),
        uid(p_task),
        uid(ids[("q@example.com", "open")]),
    }
    p_event = now_cancelled[uid(p_task)]
    assert p_event.decoded("sequence") == 2  # snoozed, then done
    assert p_event.decoded("dtstart") == date(2026, 3, 10)
    q_event = now_cancelled[uid(ids[("q@example.com", "open")])]
    assert str(q_event["description"]).startswith("Dropped on 2026-03-02: not needed\n")


def test_two_workspaces_never_share_a_uid(run, book, uid, tmp_path):
    other = tmp_path / "other"
    ok(run("init", str(other)))
    write(other / "playbooks" / "cal.yaml", PLAYBOOK)
    home = ["--home", str(other)]
    ok(run("customer", "add", "p@example.com", "--name", "Other P", *home))
    ok(run("enroll", "p@example.com", "cal", "--today", "2026-02-20", *home))
    ok(run("customer", "add", "q@example.com", "--name", "Other Q", *home))
    ok(run("enroll", "q@example.com", "cal", "--today", "2026-02-21", *home))
    ok(run("customer", "add", "r@example.com", "--name", "Other R", *home))
    ok(run("enroll", "r@example.com", "cal", "--today", "2026-02-22", *home))
    ours, theirs = ics(run), ics(run, *home)
    assert workspace_id(other) != workspace_id(book)
    # Task numbers overlap (both books start at 1); the UIDs do not.
    ours_ids = {str(e["uid"]).split("-")[1] for e in all_events(ours)}
    theirs_ids = {str(e["uid"]).split("-")[1] for e in all_events(theirs)}
    assert ours_ids & theirs_ids
    # One calendar app subscribed to both: every event is there, none overwritten.
    merged = Calendar()
    for feed in (ours, theirs):
        for event in all_events(feed):
            merged.add_component(event)
    merged = Calendar.from_ical(merged.to_ical())
    found = list(merged.walk("VEVENT"))
    assert len(found) == len(all_events(ours)) + len(all_events(theirs)) == 5 + 3
    assert len({str(e["uid"]) for e in found}) == len(found)
    # Each calendar is named after its workspace's folder.
    assert str(Calendar.from_ical(ours)["x-wr-calname"]) == "funnelctl: ws"
    assert str(Calendar.from_ical(theirs)["x-wr-calname"]) == "funnelctl: other"
    # And the id is the book's, kept from one run to the next.
    assert ics(run, *home) == theirs


def test_a_snooze_moves_the_event_in_every_app(run, book, uid):
    ids = task_ids(run)
    p_task = ids[("p@example.com", "open")]

    def p_event(data: bytes):
        return next(e for e in all_events(data) if str(e["uid"]) == uid(p_task))

    before = p_event(ics(run))
    # Snoozed once (02-22 -> 03-10, on 03-02).
    assert before.decoded("sequence") == 1
    assert before.decoded("last-modified") == datetime(2026, 3, 2, tzinfo=timezone.utc)
    ok(run("snooze", str(p_task), "--until", "2026-03-20", "--today", "2026-03-05"))
    after = p_event(ics(run))
    assert after.decoded("dtstart") == date(2026, 3, 20)
    assert after.decoded("dtend") == date(2026, 3, 21)
    assert after.decoded("sequence") == 2
    assert after.decoded("last-modified") == datetime(2026, 3, 5, tzinfo=timezone.utc)
    assert after.decoded("dtstamp") == before.decoded("dtstamp")  # no clock in the feed
    # Undone: back to 03-10, and still a newer version than any the apps have seen.
    ok(run("undo", "--today", "2026-03-06"))
    undone = p_event(ics(run))
    assert undone.decoded("dtstart") == date(2026, 3, 10)
    assert undone.decoded("sequence") == 3
    assert undone.decoded("last-modified") == datetime(2026, 3, 6, tzinfo=timezone.utc)
    # An untouched task: version 0, last modified the day it was made.
    untouched = next(
        e for e in all_events(ics(run)) if str(e["uid"]) == uid(ids[("crm-42", "open")])
    )
    assert untouched.decoded("sequence") == 0
    assert untouched.decoded("last-modified") == datetime(2026, 3, 2, tzinfo=timezone.utc)


def test_an_alarm_on_the_due_day(run, book, tmp_path):
    data = ics(run, "--alarm", "9:00")
    for event in events(data):
        alarms = event.walk("VALARM")
        assert len(alarms) == 1
        assert str(alarms[0]["action"]) == "DISPLAY"
        assert alarms[0].decoded("trigger") == timedelta(hours=9)
        assert str(alarms[0]["description"]) == str(event["summary"])
    assert all(e.walk("VALARM") == [] for e in cancelled(data))  # nothing to remind of
    # Relative to the start of the all-day event, as RFC 5545 writes it (no zone involved).
    assert unfolded(data).count("TRIGGER:PT9H") == 3
    assert unfolded(ics(run, "--alarm", "17:45")).count("TRIGGER:PT17H45M") == 3
    assert "BEGIN:VALARM" not in ics(run).decode()
    target = tmp_path / "alarm.ics"
    ok(run("export", "calendar", str(target), "--alarm", "9:00"))
    assert target.read_bytes() == data


@pytest.mark.parametrize("bad", ["25:00", "9", "9:5", "9:60", "nine", "-1:00", "9:00pm", ""])
def test_a_bad_alarm_time_is_a_usage_error(run, book, bad, dump, tmp_path):
    before = dump(book)
    for args in (["due", "-f", "ics"], ["export", "calendar", str(tmp_path / "x.ics")]):
        result = run(*args, "--alarm", bad)
        assert result.exit_code == 2, (args, result)
        assert result.stdout == ""
        assert result.stderr.startswith("Error: --alarm: ")
        assert "HH:MM" in result.stderr
    assert not (tmp_path / "x.ics").exists()
    assert dump(book) == before


def test_an_alarm_needs_the_calendar(run, book):
    result = run("due", "--alarm", "9:00")
    assert result.exit_code == 2
    assert "--format ics" in result.stderr
    result = run("export", "customers", "--alarm", "9:00")
    assert result.exit_code == 2
    assert "export calendar" in result.stderr


def test_an_empty_book_gives_an_empty_calendar(run, workspace):
    data = ics(run)
    assert all_events(data) == []
    assert data.startswith(b"BEGIN:VCALENDAR\r\n")


def test_a_name_with_a_line_break_never_reaches_the_feed(run, workspace, dump):
    before = dump(workspace)
    result = run("customer", "add", "n@example.com", "--name", "Line\nbreak")
    assert result.exit_code != 0
    assert "Traceback" not in result.stderr
    assert dump(workspace) == before


def test_the_feed_follows_the_due_date_not_the_first_due_date(run, book, uid):
    # p's task was first due 02-22 and snoozed to 03-10: the event sits on 03-10.
    rows = json.loads(ok(run("export", "activities", "--format", "json")).stdout)
    p_row = next(r for r in rows if r["customer"] == "p@example.com")
    assert (p_row["first_due_on"], p_row["due_on"]) == ("2026-02-22", "2026-03-10")
    p_event = next(e for e in events(ics(run)) if str(e["uid"]) == uid(p_row["id"]))
    assert p_event.decoded("dtstart") == date(2026, 3, 10)

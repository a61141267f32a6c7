"""`funnelctl inbox` reading Maildir folders (what mbsync and offlineimap keep in sync),
without any server: files put where a mail program puts them, read and never changed."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mail_samples as samples
import pytest
from conftest import TODAY, Result

ME = "ana@example.com"
BOB = "bob@customer.example"


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def deliver(maildir: Path, name: str, data: bytes, sub: str = "new") -> Path:
    for folder in ("new", "cur", "tmp"):
        (maildir / folder).mkdir(parents=True, exist_ok=True)
    path = maildir / sub / name
    path.write_bytes(data)
    return path


@pytest.fixture
def ws(workspace: Path) -> Path:
    settings = workspace / "funnelctl.yaml"
    settings.write_text(
        settings.read_text()
        + "\ninbox:\n  kind: maildir\n  maildir: {inbox: Mail/INBOX, sent: Mail/Sent}\n"
    )
    for box in ("INBOX", "Sent"):
        for sub in ("new", "cur", "tmp"):
            (workspace / "Mail" / box / sub).mkdir(parents=True)
    return workspace


def inbox(run: Callable[..., Result]) -> dict[str, int]:
    result: dict[str, int] = json.loads(ok(run("inbox", "-f", "json")).stdout)
    return result


def sql(ws: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(ws / "funnel.db") as conn:
        return conn.execute(query).fetchall()


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in sorted(folder.rglob("*"))
    }


def test_replies_in_a_maildir_are_read_once_and_the_files_never_change(run, ws):
    ok(run("customer", "add", BOB, "--name", "Bob Stone"))
    box = ws / "Mail" / "INBOX"
    deliver(box, "1772445300.M1P1.host", samples.apple_mail_reply(BOB, ME, None, "Call me?"))
    deliver(box, "1772445301.M2P1.host:2,S", samples.newsletter(ME), sub="cur")
    before = snapshot(ws / "Mail")

    assert inbox(run) == {
        "read": 2,
        "replies": 1,
        "auto_replies": 0,
        "bounces": 0,
        "unsubscribes": 0,
        "outbound": 0,
        "unmatched": 1,
        "old": 0,
    }
    assert snapshot(ws / "Mail") == before  # nothing renamed, flagged, moved or written
    assert sql(ws, "SELECT direction, summary FROM touchpoints") == [
        ("inbound", "Welcome aboard: Call me?")
    ]
    # a mail program marks the reply read: new/ -> cur/ with flags; it is not new mail
    os.rename(box / "new" / "1772445300.M1P1.host", box / "cur" / "1772445300.M1P1.host:2,S")
    assert inbox(run)["read"] == 0
    deliver(box, "1772445400.M3P1.host", samples.gmail_reply(BOB, ME, None, "And Friday?"))
    assert inbox(run)["replies"] == 1
    assert sql(ws, "SELECT count(*) FROM touchpoints") == [(2,)]


def test_the_sent_maildir_gives_outbound_touchpoints_and_run_reads_it_first(run, ws):
    ok(run("customer", "add", BOB))
    deliver(ws / "Mail" / "Sent", "1772445300.M1P1.host:2,S", samples.sent_by_hand(ME, BOB))
    tick = json.loads(ok(run("run", "-f", "json")).stdout)
    assert (tick["inbox_read"], tick["inbox_outbound"]) == (1, 1)
    assert sql(ws, "SELECT direction, happened_on FROM touchpoints") == [("outbound", "2026-03-02")]


@pytest.mark.parametrize(("zone", "day"), [("Asia/Tokyo", "2026-03-02"), ("UTC", "2026-03-01")])
def test_a_reply_is_dated_by_its_date_in_the_workspace_zone(run, ws, zone, day):
    settings = ws / "funnelctl.yaml"
    settings.write_text(re.sub(r"(?m)^timezone: .*$", f"timezone: {zone}", settings.read_text()))
    ok(run("customer", "add", BOB))
    late = "Sun, 01 Mar 2026 20:00:00 +0000"  # Monday 05:00 in Tokyo
    deliver(ws / "Mail" / "INBOX", "a", samples.apple_mail_reply(BOB, ME, None, "Hi", date=late))
    inbox(run)
    assert sql(ws, "SELECT happened_on FROM touchpoints") == [(day,)]


def test_an_unsubscribe_by_hand_and_back(run, ws):
    ok(run("customer", "add", BOB))
    shown = json.loads(ok(run("customer", "edit", BOB, "--no-email", "-f", "json")).stdout)
    assert (shown["do_not_email"], shown["email_undeliverable"]) == (True, None)
    assert sql(ws, "SELECT do_not_email FROM customers") == [(1,)]
    card = ok(run("customer", "show", BOB)).stdout
    assert "no more email (they asked)" in card
    # a script reads the same answer from the list and from the export as from show
    listed = json.loads(ok(run("customer", "list", "-f", "json")).stdout)
    exported = json.loads(ok(run("export", "customers", "-f", "json")).stdout)
    assert listed[0]["do_not_email"] is True and exported[0]["do_not_email"] is True
    ok(run("customer", "edit", BOB, "--allow-email"))
    assert sql(ws, "SELECT do_not_email FROM customers") == [(0,)]
    assert (
        json.loads(ok(run("customer", "show", BOB, "-f", "json")).stdout)["do_not_email"] is False
    )


def test_a_merge_keeps_a_request_for_no_more_email(run, ws):
    ok(run("customer", "add", BOB))
    ok(run("customer", "add", "bob.stone@mail.example"))
    ok(run("customer", "edit", "bob.stone@mail.example", "--no-email"))
    ok(run("customer", "merge", BOB, "bob.stone@mail.example"))
    assert sql(ws, "SELECT email, do_not_email FROM customers") == [(BOB, 1)]


def test_a_merge_that_takes_a_bounced_address_keeps_it_held(run, ws):
    ok(run("customer", "add", "--external-id", "crm-7", "--name", "Bob Stone"))
    ok(run("customer", "add", BOB))
    with sqlite3.connect(ws / "funnel.db") as conn:  # as a bounce would have left it
        conn.execute(
            "UPDATE customers SET email_undeliverable = '5.1.1 User unknown' WHERE email = ?",
            [BOB],
        )
    ok(run("customer", "merge", "crm-7", BOB))
    assert sql(ws, "SELECT external_id, email, email_undeliverable FROM customers") == [
        ("crm-7", BOB, "5.1.1 User unknown")
    ]


def test_a_message_that_cannot_be_read_is_counted_and_the_reading_goes_on(run, ws, monkeypatch):
    from funnelctl import mailparse

    ok(run("customer", "add", BOB))
    real = mailparse.parse

    def broken(data: bytes) -> mailparse.Mail:
        if b"Broken" in data:
            raise ValueError("a header the email package cannot read")
        return real(data)

    monkeypatch.setattr(mailparse, "parse", broken)
    box = ws / "Mail" / "INBOX"
    deliver(box, "1", samples.gmail_reply(BOB, ME, None, "Broken", subject="Re: x"))
    deliver(box, "2", samples.gmail_reply(BOB, ME, None, "Fine"))
    found = inbox(run)
    assert (found["read"], found["replies"], found["unmatched"]) == (2, 1, 1)
    assert inbox(run)["read"] == 0  # not read again and again


def test_a_folder_that_is_not_a_maildir_is_named(run, ws):
    os.rename(ws / "Mail" / "Sent", ws / "Mail" / "Elsewhere")
    result = run("inbox")
    assert result.exit_code == 1
    assert "Mail/Sent is not a Maildir" in result.stderr and "Traceback" not in result.stderr


def test_no_inbox_configured_is_a_usage_error(run, workspace):
    result = run("inbox")
    assert result.exit_code == 2 and "add an 'inbox:' section" in result.stderr


def test_a_date_beyond_the_calendar_is_dated_today_and_the_reading_goes_on(run, ws):
    ok(run("customer", "add", BOB))
    far = "Fri, 31 Dec 9999 23:30:00 -0100"  # parses; in UTC it is past year 9999
    box = ws / "Mail" / "INBOX"
    deliver(box, "1", samples.apple_mail_reply(BOB, ME, None, "Far", date=far))
    deliver(box, "2", samples.gmail_reply(BOB, ME, None, "Near"))
    found = inbox(run)
    assert (found["read"], found["replies"]) == (2, 2)
    assert sql(ws, "SELECT happened_on FROM touchpoints ORDER BY id") == [(TODAY,), (TODAY,)]
    assert inbox(run)["read"] == 0  # never stuck on it


def test_an_unexpected_problem_with_one_message_counts_it_unmatched(run, ws, monkeypatch):
    from funnelctl import activities

    ok(run("customer", "add", BOB))
    real = activities.record_touchpoint

    def broken(*args: Any, **kwargs: Any) -> Any:
        if "Broken" in kwargs["summary"]:
            real(*args, **kwargs)  # written, then undone with the message alone
            raise KeyError("a bug of ours")
        return real(*args, **kwargs)

    monkeypatch.setattr(activities, "record_touchpoint", broken)
    box = ws / "Mail" / "INBOX"
    deliver(box, "1", samples.gmail_reply(BOB, ME, None, "Broken", subject="Re: x"))
    deliver(box, "2", samples.gmail_reply(BOB, ME, None, "Fine"))
    found = inbox(run)
    assert (found["read"], found["replies"], found["unmatched"]) == (2, 1, 1)
    assert sql(ws, "SELECT summary FROM touchpoints") == [("Welcome aboard: Fine",)]


def test_a_problem_of_the_store_still_stops_the_reading(run, ws, monkeypatch):
    from funnelctl import activities
    from funnelctl.errors import DiskFull

    ok(run("customer", "add", BOB))
    real = activities.record_touchpoint

    def full(*args: Any, **kwargs: Any) -> Any:
        raise DiskFull("The disk is full.")

    monkeypatch.setattr(activities, "record_touchpoint", full)
    deliver(ws / "Mail" / "INBOX", "1", samples.gmail_reply(BOB, ME, None, "Hi"))
    result = run("inbox")
    assert result.exit_code == 1 and "The disk is full." in result.stderr
    monkeypatch.setattr(activities, "record_touchpoint", real)
    assert inbox(run)["replies"] == 1  # read again on the next run


def test_a_maildir_that_cannot_be_read_is_named_and_run_still_ticks(run, ws, monkeypatch):
    real = os.listdir

    def denied(path: Any) -> list[str]:
        if "INBOX" in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "listdir", denied)
    result = run("inbox")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert "Mail/INBOX" in result.stderr and "Permission denied" in result.stderr
    result = run("run", "-f", "json")
    assert result.exit_code == 1 and "The inbox was not read" in result.stderr
    assert "inbox_read" not in json.loads(result.stdout)  # the tick ran all the same


def test_the_first_reading_leaves_mail_older_than_two_weeks_alone(run, ws):
    """A mailbox of years: a reply settled long ago must not drop today's tasks (nor an
    old bounce hold the customer's emails); the first reading records the last 14 days
    (today and the 13 before), and that window holds however old mail comes back."""
    ok(run("customer", "add", BOB, "--name", "Bob Stone"))
    box = ws / "Mail" / "INBOX"
    old = "Mon, 05 Jan 2026 09:00:00 +0000"  # 56 days before the tests' today
    edge = "Tue, 17 Feb 2026 09:00:00 +0000"  # 13 days before: inside
    deliver(box, "1767603600.M1P1.host", samples.gmail_reply(BOB, ME, None, "Old", date=old))
    deliver(box, "1771318800.M2P1.host", samples.gmail_reply(BOB, ME, None, "Edge", date=edge))
    deliver(box, "1772445300.M3P1.host", samples.gmail_reply(BOB, ME, None, "New"))

    first = inbox(run)

    assert (first["read"], first["replies"], first["old"]) == (3, 2, 1)
    assert sql(ws, "SELECT summary FROM touchpoints ORDER BY id") == [
        ("Welcome aboard: Edge",),
        ("Welcome aboard: New",),
    ]
    # a mail program re-syncs: the old file comes back under a new name; still old
    os.rename(box / "new" / "1767603600.M1P1.host", box / "new" / "1767603600.M9P9.other")
    again = inbox(run)
    assert (again["read"], again["replies"], again["old"]) == (1, 0, 1)
    assert sql(ws, "SELECT count(*) FROM touchpoints") == [(2,)]

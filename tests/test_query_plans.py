"""Statements run once per row (a move, an action, a play, a score) find their rows
through an index on the row's own key, not by reading every open task.

A statement that reads a whole table, or an index only by status, costs nothing on a
test book and minutes on a real one: after a laptop slept for five days, `run` moves
thousands of customers, each move once. These tests trace what real commands execute
and ask SQLite how it would find the rows of each statement that ran more than once in
one command. (EXPLAIN QUERY PLAN does not show what triggers and foreign-key checks
read; a book has no ANALYZE statistics, and neither has the test's.)
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import mail_samples as samples
import pytest
from conftest import TODAY

from funnelctl.store import db

# A constraint that narrows to one row's own rows: its id, customer, enrollment, visit,
# episode, action key, message or email address.
KEYED = re.compile(r"\((?:\w+=\? AND )*\w*(?:id|key|email)=\?")

# Statements that run once per stage or per table, not per row: a set read by design.
SET_READS = (
    # the due moves of one stage (the advance reads each stage once per pass)
    "SELECT * FROM enrollments WHERE funnel = ? AND stage = ? AND status = ? AND entered_on",
    # due's stuck and idle enrollments of one stage (store/due.py)
    "SELECT coalesce(e.owner, c.owner) AS owner, e.*, c.email, c.external_id, c.name, "
    "max(e.entered_on, coalesce((SELECT max(a.closed_on) FROM activities a WHERE "
    "a.enrollment_id = e.id AND a.status != ?), ?)) AS idle_since FROM enrollments e JOIN "
    "customers c ON c.id = e.customer_id WHERE e.funnel = ? AND e.stage = ?",
    "SELECT coalesce(e.owner, c.owner) AS owner, e.*, c.email, c.external_id, c.name, "
    "(SELECT max(t.happened_on) FROM touchpoints t WHERE t.customer_id = e.customer_id) AS "
    "last_touch FROM enrollments e JOIN customers c ON c.id = e.customer_id WHERE e.funnel = ? "
    "AND e.stage = ?",
)


def _normal(statement: str) -> str:
    statement = re.sub(r"\s+", " ", statement).strip()
    statement = re.sub(r"'(?:[^']|'')*'", "?", statement)
    return re.sub(r"\b\d+(?:\.\d+)?\b", "?", statement)


@contextmanager
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, list[str]]]]:
    """What each command run inside the block executes, one dict per command: normal
    form -> the statements as run (with their values, so that SQLite can plan them)."""
    commands: list[dict[str, list[str]]] = []
    opened = db.Store.open.__func__  # type: ignore[attr-defined]

    def open_traced(cls: type[db.Store], path: Path, *, create: bool = False) -> db.Store:
        store = opened(cls, path, create=create)
        seen: dict[str, list[str]] = {}
        commands.append(seen)
        store.conn.set_trace_callback(
            lambda statement: seen.setdefault(_normal(statement), []).append(statement)
        )
        return store

    monkeypatch.setattr(db.Store, "open", classmethod(open_traced))
    yield commands


def unkeyed(database: Path, commands: list[dict[str, list[str]]]) -> list[str]:
    """The statements some command ran more than once (once per row) whose plan reads a
    table without the row's key."""
    runs: dict[str, list[str]] = {}
    for seen in commands:
        for normal, traced_runs in seen.items():
            # SQLite's trace reports a statement again for each trigger program it runs
            # (a DELETE of 3 rows whose trigger fires per row shows up 7 times): the same
            # statement with the same values is one run, not one per row
            statements = list(dict.fromkeys(traced_runs))
            if len(statements) > len(runs.get(normal, [])):
                runs[normal] = statements
    conn = sqlite3.connect(database)
    found = []
    try:
        for normal, statements in runs.items():  # the temporary tables the commands made
            if normal.startswith("CREATE TEMP TABLE"):
                conn.execute(
                    re.sub(
                        r"^CREATE TEMP TABLE (IF NOT EXISTS )?",
                        "CREATE TEMP TABLE IF NOT EXISTS ",
                        statements[0],
                    )
                )
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        for normal, statements in sorted(runs.items()):
            if len(statements) < 2 or not re.match(r"(SELECT|UPDATE|DELETE|INSERT|WITH)\b", normal):
                continue
            if normal.startswith(SET_READS):
                continue
            for *_, step in conn.execute("EXPLAIN QUERY PLAN " + statements[0]):
                step = re.sub(r"^(SCAN|SEARCH) TABLE ", r"\1 ", step)  # SQLite before 3.36
                read = re.match(r"(SCAN|SEARCH) (\w+)", step)
                if read is None or _table(read.group(2), normal, tables) is None:
                    continue  # a constant row, a subquery's, a CTE's or a temporary table's
                keyed = (
                    KEYED.search(step)
                    or "PRIMARY KEY (" in step
                    # "SEARCH table" alone: max(id) read from the end of the table
                    or re.fullmatch(r"SEARCH \w+", step)
                )
                if step.startswith("SCAN") or not keyed:
                    found.append(f"{len(statements)}x {normal[:120]}\n    {step}")
    finally:
        conn.close()
    return found


def _table(name: str, statement: str, tables: set[str]) -> str | None:
    """The database table a plan step reads under ``name`` (the table's own name or its
    alias in ``statement``); None for anything else."""
    if name in tables:
        return name
    aliased = re.search(rf"(?:FROM|JOIN) (\w+) (?:AS )?{re.escape(name)}\b", statement)
    return aliased.group(1) if aliased and aliased.group(1) in tables else None


def assert_keyed(database: Path, commands: list[dict[str, list[str]]]) -> None:
    found = unkeyed(database, commands)
    assert not found, "\n".join(found)


def with_maildir(root: Path) -> None:
    """The workspace reads its inbox and Sent folder from Maildirs under Mail/."""
    settings = root / "funnelctl.yaml"
    settings.write_text(
        settings.read_text(encoding="utf-8")
        + "\ninbox:\n  kind: maildir\n  maildir: {inbox: Mail/INBOX, sent: Mail/Sent}\n",
        encoding="utf-8",
    )
    for box in ("INBOX", "Sent"):
        for sub in ("new", "cur", "tmp"):
            (root / "Mail" / box / sub).mkdir(parents=True)


def test_the_check_reports_a_scan_under_an_alias_and_a_read_by_status_alone(demo: Path) -> None:
    every_task = [
        "SELECT * FROM activities t WHERE t.visit_id = {}",  # SCAN t
        "SELECT * FROM activities WHERE status = 'open' AND due_on < '2026-03-0{}'",
    ]
    by_key = [
        "SELECT * FROM activities WHERE customer_id = {}",
        "SELECT max(id) + {} FROM activities",
    ]
    # twice each, with other values (the same statement with the same values is one run)
    ran_twice = {_normal(sql): [sql.format(1), sql.format(2)] for sql in every_task + by_key}
    once = {_normal(sql): [sql.format(1)] * 3 for sql in every_task}

    found = unkeyed(demo / "funnel.db", [ran_twice])

    assert [line.split("\n")[0] for line in found] == sorted(
        f"2x {_normal(sql)}" for sql in every_task
    )
    assert unkeyed(demo / "funnel.db", [once]) == []


def later(days: int) -> str:
    return (date.fromisoformat(TODAY) + timedelta(days=days)).isoformat()


def test_imports_and_the_daily_run_read_each_row_by_its_key(
    run: Callable[..., object], demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # imports (customers, signals, tickets), then the demo book a month on: stages left
    # (tasks dropped, emails superseded), entry actions, health scored, plays started
    rows = [f"new{n}@example.com,New {n},ana,{n * 10}" for n in range(5)]
    rows += ["lena.fischer@example.com,Lena Fischer,bruno,200"]  # an update
    people = demo / "people.csv"
    people.write_text("email,name,owner,mrr\n" + "\n".join(rows) + "\n", encoding="utf-8")
    readings = demo / "signals.csv"
    readings.write_text(
        "customer,metric,value,date\n"
        + "".join(f"new{n}@example.com,nps,{n + 4},{TODAY}\n" for n in range(5))
        + f"lena.fischer@example.com,logins,3,{TODAY}\n",
        encoding="utf-8",
    )
    tickets = demo / "tickets.csv"
    tickets.write_text(
        "id,customer,opened_at,first_response_at,resolved_at,csat\n"
        + "".join(f"T{n},new{n}@example.com,{TODAY}T09:00,{TODAY}T10:00,,\n" for n in range(5)),
        encoding="utf-8",
    )
    with traced(monkeypatch) as seen:
        for command in (
            ("import", str(people), "--funnel", "after-sales"),
            ("signal", "import", str(readings)),
            ("ticket", "import", str(tickets)),
        ):
            result = run(*command, "-f", "json")
            assert result.exit_code == 0, result.stderr
        for days in (1, 30, 45):
            result = run("run", "--today", later(days), "--no-inbox", "-f", "json")
            assert result.exit_code == 0, result.stderr
    assert any("UPDATE activities SET status" in s for c in seen for s in c), "no stage left"
    assert_keyed(demo / "funnel.db", seen)


def test_a_playbook_closing_many_as_churned_reads_each_row_by_its_key(
    run: Callable[..., object], demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a consultant's own playbook: the last stage churns instead of winning, so a run
    # closes many enrollments and skips each one's queued emails
    playbook = demo / "playbooks" / "after-sales.yaml"
    text = playbook.read_text(encoding="utf-8")
    assert "- close: won" in text
    playbook.write_text(text.replace("- close: won", "- close: churned"), encoding="utf-8")
    with traced(monkeypatch) as seen:
        for days in (1, 30, 45, 90):
            result = run("run", "--today", later(days), "--no-inbox", "-f", "json")
            assert result.exit_code == 0, result.stderr
    assert any(s.startswith("UPDATE outbox SET status = ?, reason") for c in seen for s in c)
    assert_keyed(demo / "funnel.db", seen)


def test_sending_and_reading_the_replies_read_each_row_by_its_key(
    run: Callable[..., object], demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_maildir(demo)
    day = later(1)
    monkeypatch.setenv("FUNNELCTL_NOW", f"{day}T10:00")
    with traced(monkeypatch) as seen:
        assert run("run", "--today", day, "--no-inbox", "-f", "json").exit_code == 0
        assert run("send", "--today", day, "-f", "json").exit_code == 0
        conn = sqlite3.connect(demo / "funnel.db")
        sent = conn.execute(
            "SELECT c.email, o.message_id FROM outbox o JOIN customers c ON c.id = o.customer_id "
            "WHERE o.status = 'sent'"
        ).fetchall()
        conn.close()
        assert len(sent) >= 2
        for n, (email, message_id) in enumerate(sent):
            reply = samples.gmail_reply(email, "ana@example.com", message_id, "Thanks!")
            (demo / "Mail" / "INBOX" / "new" / f"{n}.eml").write_bytes(reply)
        assert run("inbox", "--today", day, "-f", "json").exit_code == 0
    assert any(s.startswith("INSERT INTO touchpoints") for c in seen for s in c)
    assert_keyed(demo / "funnel.db", seen)

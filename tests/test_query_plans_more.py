"""More commands whose statements run once per row find their rows by the row's key.

tests/test_query_plans.py covers the imports, the daily run, sending and reading the
replies; this file covers the rest: the commands that take many references at once
(done, snooze, drop, undo), hand-made changes (move, enroll, won, lost, churn, task add,
log, play run, outbox requeue), erasing and merging customers with long histories, the
inbox's bounces, unsubscribes and Sent folder, an .xlsx import that updates customers
and enrolls them, and the read-only views (report, export, customer show, due, at-risk).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import mail_samples as samples
import pytest
from test_query_plans import SET_READS, assert_keyed, later, traced, with_maildir


def _rows(demo: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(demo / "funnel.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _ok(run: Callable[..., object], *args: str) -> object:
    result = run(*args)
    assert result.exit_code == 0, result.stderr  # type: ignore[attr-defined]
    return result


def test_working_many_tasks_at_once_and_taking_it_back_reads_each_by_its_key(
    run: Callable[..., object], demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the tasks with a follow-up (then:) first: undo takes each one's follow-up back
    tasks = [
        f"t{n}"
        for (n,) in _rows(
            demo,
            "SELECT id FROM activities WHERE status = 'open' ORDER BY title IN "
            "('Hold the periodic success review', 'Hold the quarterly success review') DESC, id",
        )
    ]
    emails = [f"e{n}" for (n,) in _rows(demo, "SELECT id FROM outbox WHERE status = 'queued'")]
    assert len(tasks) >= 24 and emails
    done, snoozed, dropped = tasks[:8], tasks[8:16], tasks[16:24]
    with traced(monkeypatch) as seen:
        _ok(run, "done", *done, "-f", "json")
        _ok(run, "undo", "-f", "json")
        _ok(run, "done", *done, "-f", "json")
        _ok(run, "snooze", *snoozed, "--days", "3", "-f", "json")
        _ok(run, "undo", "-f", "json")
        _ok(run, "snooze", *snoozed, "--days", "3", "-f", "json")
        _ok(run, "drop", *dropped, *emails, "--reason", "not needed", "-f", "json")
        _ok(run, "undo", "-f", "json")
        _ok(run, "drop", *dropped, *emails, "--reason", "not needed", "-f", "json")
    assert_keyed(demo / "funnel.db", seen)


def test_changes_by_hand_read_each_row_by_its_key(
    run: Callable[..., object], demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    active = _rows(
        demo,
        "SELECT c.email, e.funnel FROM enrollments e JOIN customers c ON c.id = e.customer_id "
        "WHERE e.status = 'active' AND e.funnel = 'after-sales' ORDER BY e.id",
    )
    assert len(active) >= 6
    (a, _), (b, _), (c, _), (d, _), (e, _), (f, _) = active[:6]
    skipped = _rows(demo, "SELECT id FROM outbox WHERE status = 'skipped' LIMIT 1")[0][0]
    with traced(monkeypatch) as seen:
        _ok(run, "move", a, "customer-contact", "--funnel", "after-sales", "-f", "json")
        _ok(run, "move", a, "demand-analysis", "--funnel", "after-sales", "-f", "json")
        _ok(run, "enroll", b, "support", "-f", "json")
        _ok(run, "won", c, "--funnel", "after-sales", "-f", "json")
        _ok(run, "lost", d, "--funnel", "after-sales", "-f", "json")
        _ok(run, "churn", e, "--funnel", "after-sales", "-f", "json")
        _ok(run, "move", e, "deployment", "--funnel", "after-sales", "--reopen", "-f", "json")
        _ok(run, "task", "add", f, "Call about the renewal", "--due", "3d", "-f", "json")
        _ok(run, "log", f, "Called back", "--channel", "phone", "--direction", "inbound",
            "--next", "Send the deck", "-f", "json")  # fmt: skip
        _ok(run, "outbox", "requeue", f"e{skipped}", "-f", "json")
        _ok(run, "play", "run", "issue-escalation", f, "-f", "json")
        _ok(run, "play", "run", "at-risk-rescue", b, "-f", "json")
    assert_keyed(demo / "funnel.db", seen)


def _busiest(demo: Path, n: int) -> list[str]:
    """The emails of the ``n`` customers with the most tasks and emails' activities."""
    return [
        email
        for (email,) in _rows(
            demo,
            "SELECT c.email FROM customers c JOIN activities a ON a.customer_id = c.id "
            f"GROUP BY c.id ORDER BY count(*) DESC, c.id LIMIT {int(n)}",
        )
    ]


def test_erasing_and_merging_customers_with_long_histories_reads_each_row_by_its_key(
    run: Callable[..., object], demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    busiest = _busiest(demo, 3)
    with traced(monkeypatch) as seen:
        _ok(run, "run", "--today", later(30), "--no-inbox", "-f", "json")
        _ok(run, "customer", "merge", busiest[0], busiest[1], "-f", "json")
        _ok(run, "customer", "delete", busiest[2], "--yes", "-f", "json")
    assert_keyed(demo / "funnel.db", seen)


def test_the_read_only_views_read_each_row_by_its_key(
    run: Callable[..., object], demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [busiest] = _busiest(demo, 1)
    with traced(monkeypatch) as seen:
        _ok(run, "export", "calendar")
        _ok(run, "export", "activities")
        _ok(run, "customer", "show", busiest, "-f", "json")
        _ok(run, "customer", "list", "-f", "json")
        _ok(run, "due", "--owner", "ana", "--days", "30", "-f", "json")
        _ok(run, "at-risk", "--live", "--all", "-f", "json")
    stages = {n for c in seen for n in c if n.startswith(SET_READS[1:])}
    assert len(stages) == 2, "due reads each stage's stuck and idle enrollments"
    assert_keyed(demo / "funnel.db", seen)


def _workbook(path: Path, rows: list[list[object]]) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def test_an_xlsx_import_that_updates_and_enrolls_reads_each_row_by_its_key(
    run: Callable[..., object], demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = [email for (email,) in _rows(demo, "SELECT email FROM customers ORDER BY id")]
    rows: list[list[object]] = [["email", "name", "owner", "mrr"]]
    rows += [[email, f"Known {n}", "bruno", 100 + n] for n, email in enumerate(known[:10])]
    rows += [[f"fresh{n}@example.com", f"Fresh {n}", "ana", n] for n in range(5)]
    book = _workbook(demo / "people.xlsx", rows)
    with traced(monkeypatch) as seen:
        _ok(run, "import", str(book), "--funnel", "relationship", "-f", "json")
        _ok(run, "import", str(book), "--funnel", "support", "--stage", "retention", "-f", "json")
    assert_keyed(demo / "funnel.db", seen)


def test_bounces_unsubscribes_and_the_sent_folder_read_each_row_by_its_key(
    run: Callable[..., object], demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_maildir(demo)
    day = later(1)
    monkeypatch.setenv("FUNNELCTL_NOW", f"{day}T10:00")
    _ok(run, "run", "--today", day, "--no-inbox", "-f", "json")
    _ok(run, "send", "--today", day, "-f", "json")
    sent = _rows(
        demo,
        "SELECT c.email, o.message_id FROM outbox o JOIN customers c ON c.id = o.customer_id "
        "WHERE o.status = 'sent' ORDER BY o.id",
    )
    assert len(sent) >= 2
    others = [
        email
        for (email,) in _rows(
            demo,
            "SELECT email FROM customers WHERE id NOT IN "
            "(SELECT customer_id FROM outbox WHERE status = 'sent') ORDER BY id LIMIT 6",
        )
    ]
    inbox = demo / "Mail" / "INBOX" / "new"
    for n, (email, message_id) in enumerate(sent):
        bounce = samples.postfix_bounce if n % 2 else samples.exchange_bounce
        (inbox / f"b{n}.eml").write_bytes(bounce(email, message_id))
    for n, email in enumerate(others[:3]):
        (inbox / f"u{n}.eml").write_bytes(samples.unsubscribe(email, "ana@example.com"))
    for n, email in enumerate(others[3:]):
        (demo / "Mail" / "Sent" / "new" / f"s{n}.eml").write_bytes(
            samples.sent_by_hand("ana@example.com", email)
        )
    with traced(monkeypatch) as seen:
        _ok(run, "inbox", "--today", day, "-f", "json")
    assert _rows(demo, "SELECT count(*) FROM outbox WHERE status = 'bounced'") == [(len(sent),)]
    assert_keyed(demo / "funnel.db", seen)


# Children read in full once per parent row deleted, by design: a customer's enrollments
# are few (one per funnel) and action_runs is read by its key everywhere else; an index
# of its own on every action run would cost each run more than erasing a person saves
# (0.2 s an enrollment on a book of 2,000,000 action runs).
FEW_PER_CUSTOMER = {("action_runs", "enrollment_id")}


def test_deleting_many_rows_finds_each_ones_children_by_an_index(
    run: Callable[..., object], demo: Path
) -> None:
    # SQLite checks each deleted row's foreign-key children with `child.column = ?`, a
    # read EXPLAIN QUERY PLAN of the DELETE does not show: without an index on the
    # column it reads the whole child table once per row deleted
    [busiest] = _busiest(demo, 1)
    conn = sqlite3.connect(demo / "funnel.db")
    tables = [
        name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    ]

    def counts() -> dict[str, int]:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}

    before = counts()
    _ok(run, "customer", "delete", busiest, "--yes", "-f", "json")
    after = counts()
    many = {t for t in tables if before[t] - after[t] >= 2}
    assert "activities" in many
    unindexed = []
    for child in tables:
        for fk in conn.execute(f"PRAGMA foreign_key_list({child})").fetchall():
            parent, column = fk[2], fk[3]
            if parent not in many or (child, column) in FEW_PER_CUSTOMER:
                continue
            plan = " ".join(
                step
                for *_, step in conn.execute(
                    f"EXPLAIN QUERY PLAN SELECT 1 FROM {child} WHERE {column} = ?", [1]
                )
            )
            if "INDEX" not in plan:
                unindexed.append(f"{child}.{column} -> {parent}: {plan}")
    conn.close()
    assert not unindexed, "\n".join(unindexed)

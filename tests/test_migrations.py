"""Upgrading: a book written at every earlier schema step opens with today's code.

Each step's database is built with the migrations as they were up to that step,
holds a customer with an enrollment, history, a task, an email and a timeline line,
and is then opened the way every command opens it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from funnelctl.store import SCHEMA_VERSION, Store
from funnelctl.store.migrations import migrations

STEPS = [m.name for m in migrations._migrations]
DAY = "2026-02-02"


def build_at_step(path: Path, step: int) -> None:
    """A database as funnelctl left it when ``step`` migrations existed."""
    conn = sqlite3.connect(path, isolation_level=None)
    db = Database(conn)
    migrations.apply(db, stop_before=STEPS[step] if step < len(STEPS) else None)
    conn.executescript(
        f"""
        BEGIN;
        INSERT INTO customers (id, email, name, company, owner, tags, fields, created_on, updated_on)
            VALUES (1, 'old@example.com', 'Old Timer', 'Legacy Ltd', 'ana', '["vip"]',
                    '{{"region": "north"}}', '{DAY}', '{DAY}');
        INSERT INTO enrollments (id, customer_id, funnel, stage, entered_on, visit_id, owner,
                                 started_on)
            VALUES (1, 1, 'after-sales', 'deployment', '{DAY}', 1, 'ana', '{DAY}');
        INSERT INTO stage_history (id, enrollment_id, customer_id, funnel, kind, from_stage,
                                   to_stage, moved_on, by)
            VALUES (1, 1, 1, 'after-sales', 'enroll', NULL, 'deployment', '{DAY}', 'ana');
        INSERT INTO activities (customer_id, enrollment_id, visit_id, title, owner, due_on,
                                first_due_on, source, action_key, created_on)
            VALUES (1, 1, 1, 'Fill customer needs', 'ana', '{DAY}', '{DAY}',
                    'after-sales/deployment #1', '1:1:0', '{DAY}');
        INSERT INTO outbox (customer_id, enrollment_id, visit_id, template, action_key,
                            message_id, scheduled_on, status, queued_on, sent_at)
            VALUES (1, 1, 1, 'welcome', '1:1:1', '<old@example.com>', '{DAY}', 'sent', '{DAY}',
                    '{DAY}T10:00:00+00:00');
        INSERT INTO events (customer_id, happened_on, kind, summary)
            VALUES (1, '{DAY}', 'customer', 'Added by hand');
        PRAGMA user_version = {step};
        COMMIT;
        """
    )
    conn.close()


@pytest.mark.parametrize("step", range(1, len(STEPS)), ids=lambda s: f"from-{STEPS[s - 1]}")
def test_a_book_from_an_earlier_step_opens_and_keeps_every_row(step, tmp_path, run):
    assert run("init", str(tmp_path / "ws")).exit_code == 0
    db_path = tmp_path / "ws" / "funnel.db"
    for name in ("funnel.db", "funnel.db-wal", "funnel.db-shm"):
        (tmp_path / "ws" / name).unlink(missing_ok=True)
    build_at_step(db_path, step)

    store = Store.open(db_path)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        assert [m.name for m in migrations.applied(store.db)] == STEPS
        assert store.scalar("SELECT count(*) FROM activities WHERE status = 'open'") == 1
        assert store.scalar("SELECT status FROM outbox") == "sent"
    finally:
        store.close()

    shown = run("customer", "show", "old@example.com", "--home", str(tmp_path / "ws"), "-f", "json")
    assert shown.exit_code == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert (data["name"], data["fields"]) == (
        "Old Timer",
        {"region": "north"},
    )
    due = run("due", "--home", str(tmp_path / "ws"), "-f", "json", "--today", "2026-02-03")
    assert [(i["kind"], i["title"]) for i in json.loads(due.stdout)] == [
        ("task", "Fill customer needs")
    ]


# What funnelctl before schema step 6 stored for a task's `then:` follow-up: the playbook's
# dataclass as JSON, with the playbook file's path on that machine.
OLD_THEN_SPEC = {
    "title": "Contact after another 30 days",
    "due": 30,
    "owner": "customer-owner",
    "channel": "phone",
    "sourcing": "internal",
    "description": None,
    "drop_if": None,
    "escalate_after": None,
    "escalate_to": None,
    "then": {
        "title": "Ask for a review",
        "due": 7,
        "owner": "round-robin",
        "channel": None,
        "sourcing": "internal",
        "description": "Two lines are enough.",
        "drop_if": None,
        "escalate_after": None,
        "escalate_to": None,
        "then": None,
        "when": None,
        "where": {"path": "/home/ana/acme/playbooks/after-sales.yaml", "line": 61},
        "type": "task",
    },
    "when": None,
    "where": {"path": "/home/ana/acme/playbooks/after-sales.yaml", "line": 58},
    "type": "task",
}


def test_a_follow_up_stored_in_the_old_shape_is_created_after_the_upgrade(tmp_path, run):
    root = tmp_path / "ws"
    assert run("init", str(root)).exit_code == 0
    for name in ("funnel.db", "funnel.db-wal", "funnel.db-shm"):
        (root / name).unlink(missing_ok=True)
    build_at_step(root / "funnel.db", 5)
    conn = sqlite3.connect(root / "funnel.db")
    conn.execute("UPDATE activities SET then_spec = ?", [json.dumps(OLD_THEN_SPEC)])
    conn.commit()
    conn.close()

    done = run("done", "1", "--home", str(root), "--today", "2026-03-10", "-f", "json")
    assert done.exit_code == 0, done.stderr

    listed = run("due", "--home", str(root), "--today", "2026-04-09", "-f", "json")
    follow = [i for i in json.loads(listed.stdout) if i["kind"] == "task"]
    assert [(i["title"], i["due_on"], i["owner"], i["channel"]) for i in follow] == [
        ("Contact after another 30 days", "2026-04-09", "ana", "phone")
    ]
    conn = sqlite3.connect(root / "funnel.db")
    specs = [row[0] for row in conn.execute("SELECT then_spec FROM activities ORDER BY id")]
    conn.close()
    assert json.loads(specs[1]) == {
        "version": 1,
        "title": "Ask for a review",
        "due_days": 7,
        "owner": "round-robin",
        "channel": None,
        "sourcing": "internal",
        "description": "Two lines are enough.",
        "drop_if": None,
        "escalate_after": None,
        "escalate_to": None,
        "then": None,
    }
    assert "/home/ana" not in "".join(s for s in specs if s)


def test_an_old_book_gets_a_workspace_id_and_revisions_from_its_rows(tmp_path, run):
    """m011: the calendar's workspace id is made once; tasks already snoozed or closed
    start at one change each, so the next change is a newer SEQUENCE than any feed gave."""
    root = tmp_path / "ws"
    assert run("init", str(root)).exit_code == 0
    db_path = root / "funnel.db"
    for name in ("funnel.db", "funnel.db-wal", "funnel.db-shm"):
        (root / name).unlink(missing_ok=True)
    build_at_step(db_path, STEPS.index("m011_calendar_revisions"))
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.executescript(
        f"""
        INSERT INTO activities (customer_id, title, due_on, first_due_on, status, closed_on,
                                created_on)
            VALUES (1, 'Snoozed', '2026-02-20', '{DAY}', 'open', NULL, '{DAY}'),
                   (1, 'Snoozed and done', '2026-02-20', '{DAY}', 'done', '2026-02-21', '{DAY}');
        """
    )
    conn.close()

    store = Store.open(db_path)
    try:
        wsid = store.get_meta("workspace_id")
        assert wsid is not None and len(wsid) == 16 and int(wsid, 16) >= 0
        rows = store.rows("SELECT title, revision, changed_on FROM activities ORDER BY id")
        assert [tuple(row.values()) for row in rows] == [
            ("Fill customer needs", 0, None),
            ("Snoozed", 1, None),
            ("Snoozed and done", 2, "2026-02-21"),
        ]
    finally:
        store.close()
    # Opening it again keeps the id (made once, by the migration).
    store = Store.open(db_path)
    try:
        assert store.get_meta("workspace_id") == wsid
    finally:
        store.close()
    feed = run("due", "-f", "ics", "--home", str(root), "--today", "2026-02-25")
    assert feed.exit_code == 0, feed.stderr
    assert f"UID:task-3-{wsid}@funnelctl" in feed.stdout
    assert "SEQUENCE:2" in feed.stdout

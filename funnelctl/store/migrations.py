"""The database schema, as append-only migration steps.

Rule: a step that has landed is never edited; change the schema by adding a
new step at the end. Plain table and column names and ISO dates, so that
``sqlite3`` or Datasette can read the file without a manual.
"""

from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Database, Migrations

migrations = Migrations("funnelctl")

_INITIAL = [
    """
    CREATE TABLE customers (
        id INTEGER PRIMARY KEY,
        email TEXT COLLATE NOCASE UNIQUE,
        external_id TEXT UNIQUE,
        name TEXT NOT NULL DEFAULT '',
        company TEXT,
        phone TEXT,
        owner TEXT,
        plan TEXT,
        mrr REAL,
        seats INTEGER,
        signed_on TEXT,
        language TEXT,
        tags TEXT NOT NULL DEFAULT '[]',      -- JSON list of strings
        fields TEXT NOT NULL DEFAULT '{}',    -- JSON object of custom fields
        created_on TEXT NOT NULL,
        updated_on TEXT NOT NULL,
        CHECK (email IS NOT NULL OR external_id IS NOT NULL)
    )
    """,
    "CREATE INDEX customers_owner ON customers(owner)",
    """
    CREATE TABLE enrollments (
        id INTEGER PRIMARY KEY,
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        funnel TEXT NOT NULL,
        stage TEXT NOT NULL,
        entered_on TEXT NOT NULL,             -- when the current stage was entered
        visit_id INTEGER,                     -- the stage_history row of that entry
        status TEXT NOT NULL DEFAULT 'active'
            CHECK (status IN ('active', 'won', 'lost', 'churned')),
        owner TEXT,
        started_on TEXT NOT NULL,
        closed_on TEXT,
        close_reason TEXT,
        next_steps INTEGER NOT NULL DEFAULT 0   -- open tasks + queued emails, kept by triggers
    )
    """,
    """CREATE UNIQUE INDEX enrollments_one_active ON enrollments(customer_id, funnel)
       WHERE status = 'active'""",
    "CREATE INDEX enrollments_customer ON enrollments(customer_id)",
    "CREATE INDEX enrollments_stage ON enrollments(funnel, stage, status, entered_on)",
    """CREATE INDEX enrollments_idle ON enrollments(funnel, stage)
       WHERE status = 'active' AND next_steps = 0""",
    """
    CREATE TABLE stage_history (
        id INTEGER PRIMARY KEY,
        enrollment_id INTEGER NOT NULL REFERENCES enrollments(id),
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        funnel TEXT NOT NULL,
        kind TEXT NOT NULL
            CHECK (kind IN ('enroll', 'move', 'won', 'lost', 'churned', 'reopen')),
        from_stage TEXT,
        to_stage TEXT NOT NULL,
        moved_on TEXT NOT NULL,
        by TEXT,
        note TEXT
    )
    """,
    "CREATE INDEX stage_history_enrollment ON stage_history(enrollment_id)",
    "CREATE INDEX stage_history_customer ON stage_history(customer_id)",
    """CREATE TRIGGER stage_history_no_update BEFORE UPDATE ON stage_history
       BEGIN SELECT RAISE(ABORT, 'stage history is never rewritten'); END""",
    """CREATE TRIGGER stage_history_no_delete BEFORE DELETE ON stage_history
       BEGIN SELECT RAISE(ABORT, 'stage history is never rewritten'); END""",
    """
    CREATE TABLE activities (
        id INTEGER PRIMARY KEY,
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        enrollment_id INTEGER REFERENCES enrollments(id),
        visit_id INTEGER,
        parent_id INTEGER REFERENCES activities(id),
        kind TEXT NOT NULL DEFAULT 'task'
            CHECK (kind IN ('task', 'call', 'meeting', 'escalation')),
        title TEXT NOT NULL,
        description TEXT,
        owner TEXT,
        channel TEXT,
        sourcing TEXT NOT NULL DEFAULT 'internal'
            CHECK (sourcing IN ('internal', 'outsourced', 'automated')),
        due_on TEXT NOT NULL,
        first_due_on TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done', 'dropped')),
        closed_on TEXT,
        note TEXT,
        source TEXT,                          -- the playbook action it came from
        action_key TEXT UNIQUE,               -- one activity per scheduled action
        drop_if TEXT,
        escalate_after INTEGER,
        escalate_to TEXT,
        escalated_on TEXT,
        then_spec TEXT,                       -- JSON of the task to start when this one is done
        created_on TEXT NOT NULL
    )
    """,
    "CREATE INDEX activities_open_due ON activities(status, due_on)",
    "CREATE INDEX activities_owner ON activities(owner, status, due_on)",
    """CREATE INDEX activities_to_escalate ON activities(due_on)
       WHERE status = 'open' AND escalate_after IS NOT NULL AND escalated_on IS NULL""",
    """CREATE INDEX activities_droppable ON activities(customer_id)
       WHERE status = 'open' AND drop_if IS NOT NULL""",
    "CREATE INDEX activities_customer ON activities(customer_id)",
    "CREATE INDEX activities_enrollment ON activities(enrollment_id, status)",
    """
    CREATE TABLE touchpoints (
        id INTEGER PRIMARY KEY,
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        channel TEXT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
        happened_on TEXT NOT NULL,
        summary TEXT NOT NULL DEFAULT '',
        by TEXT,
        created_on TEXT NOT NULL
    )
    """,
    "CREATE INDEX touchpoints_customer ON touchpoints(customer_id, happened_on)",
    """
    CREATE TABLE signals (
        id INTEGER PRIMARY KEY,
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        metric TEXT NOT NULL,
        value REAL NOT NULL,
        measured_on TEXT NOT NULL,
        source TEXT,
        created_on TEXT NOT NULL
    )
    """,
    "CREATE INDEX signals_customer ON signals(customer_id, metric, measured_on)",
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        enrollment_id INTEGER REFERENCES enrollments(id),
        visit_id INTEGER,
        template TEXT NOT NULL,
        action_key TEXT NOT NULL UNIQUE,      -- the same action never queues two emails
        message_id TEXT NOT NULL UNIQUE,
        scheduled_on TEXT NOT NULL,
        stop_on_reply INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'queued'
            CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'skipped', 'uncertain')),
        reason TEXT,
        recipients TEXT,
        subject TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        sent_at TEXT,
        queued_on TEXT NOT NULL
    )
    """,
    "CREATE INDEX outbox_due ON outbox(status, scheduled_on)",
    "CREATE INDEX outbox_customer ON outbox(customer_id, status)",
    """
    CREATE TABLE action_runs (
        action_key TEXT PRIMARY KEY,          -- enrollment:visit:action path: once per stage visit
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        enrollment_id INTEGER REFERENCES enrollments(id),
        ran_on TEXT NOT NULL,
        outcome TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        happened_on TEXT NOT NULL,
        kind TEXT NOT NULL,
        summary TEXT NOT NULL,
        ok INTEGER NOT NULL DEFAULT 1,
        source TEXT
    )
    """,
    "CREATE INDEX events_customer ON events(customer_id, happened_on)",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
    # enrollments.next_steps follows every open task and queued email of the enrollment,
    # so "active enrollments with no next step" is an index lookup, not a scan.
    """CREATE TRIGGER activities_steps_insert AFTER INSERT ON activities
       WHEN NEW.status = 'open' AND NEW.enrollment_id IS NOT NULL
       BEGIN UPDATE enrollments SET next_steps = next_steps + 1 WHERE id = NEW.enrollment_id; END""",
    """CREATE TRIGGER activities_steps_update AFTER UPDATE OF status ON activities
       WHEN NEW.enrollment_id IS NOT NULL AND (OLD.status = 'open') != (NEW.status = 'open')
       BEGIN UPDATE enrollments
             SET next_steps = next_steps + (CASE WHEN NEW.status = 'open' THEN 1 ELSE -1 END)
             WHERE id = NEW.enrollment_id; END""",
    """CREATE TRIGGER outbox_steps_insert AFTER INSERT ON outbox
       WHEN NEW.status = 'queued' AND NEW.enrollment_id IS NOT NULL
       BEGIN UPDATE enrollments SET next_steps = next_steps + 1 WHERE id = NEW.enrollment_id; END""",
    """CREATE TRIGGER outbox_steps_update AFTER UPDATE OF status ON outbox
       WHEN NEW.enrollment_id IS NOT NULL AND (OLD.status = 'queued') != (NEW.status = 'queued')
       BEGIN UPDATE enrollments
             SET next_steps = next_steps + (CASE WHEN NEW.status = 'queued' THEN 1 ELSE -1 END)
             WHERE id = NEW.enrollment_id; END""",
]


@migrations()
def m001_initial(db: Database) -> None:
    for statement in _INITIAL:
        db.execute(statement)


def apply(db: Database) -> None:
    migrations.apply(db)


@migrations()
def m002_health(db: Database) -> None:
    """Health snapshots (kept when a customer's result changes) and at-risk/opportunity episodes."""
    for statement in (
        """
        CREATE TABLE health_snapshots (
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            day TEXT NOT NULL,
            score REAL,                          -- none when no measure had an input
            at_risk INTEGER NOT NULL,
            reasons TEXT NOT NULL DEFAULT '[]',
            opportunities TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (customer_id, day)
        )
        """,
        """
        CREATE TABLE health_episodes (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            kind TEXT NOT NULL,                  -- at-risk, or opportunity:<id>
            started_on TEXT NOT NULL,
            ended_on TEXT,
            score REAL,
            reasons TEXT
        )
        """,
        """CREATE UNIQUE INDEX health_episodes_open ON health_episodes(customer_id, kind)
           WHERE ended_on IS NULL""",
        """CREATE INDEX health_episodes_current ON health_episodes(kind, started_on)
           WHERE ended_on IS NULL""",
    ):
        db.execute(statement)


@migrations()
def m003_tickets(db: Database) -> None:
    """Help-desk tickets, imported for response time, time to resolution and backlog."""
    for statement in (
        """
        CREATE TABLE tickets (
            id INTEGER PRIMARY KEY,
            ticket_id TEXT NOT NULL UNIQUE,      -- the help desk's own id
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            opened_at TEXT NOT NULL,             -- ISO date or date and time
            first_response_at TEXT,
            resolved_at TEXT,
            csat REAL,
            source TEXT,
            created_on TEXT NOT NULL
        )
        """,
        "CREATE INDEX tickets_opened ON tickets(opened_at)",
        "CREATE INDEX tickets_open ON tickets(resolved_at)",
    ):
        db.execute(statement)


@migrations()
def m004_stage_history_no_replace(db: Database) -> None:
    """INSERT OR REPLACE deletes without firing delete triggers: refuse it too."""
    db.execute(
        """CREATE TRIGGER stage_history_no_replace BEFORE INSERT ON stage_history
           WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM stage_history WHERE id = NEW.id)
           BEGIN SELECT RAISE(ABORT, 'stage history is never rewritten'); END"""
    )


@migrations()
def m005_activities_closed(db: Database) -> None:
    """The report's owner figures read done tasks by the day they were closed."""
    db.execute("CREATE INDEX activities_closed ON activities(status, closed_on)")


@migrations()
def m006_task_spec_v1(db: Database) -> None:
    """A task's then: follow-up (then_spec) was the playbook dataclass as JSON, with the
    playbook's path in it; it becomes a versioned shape of its own (activities.py)."""

    def body(old: dict[str, Any]) -> dict[str, Any]:
        then = old.get("then")
        return {
            "title": old["title"],
            "owner": old.get("owner", "customer-owner"),
            "channel": old.get("channel"),
            "sourcing": old.get("sourcing", "internal"),
            "description": old.get("description"),
            "drop_if": old.get("drop_if"),
            "escalate_after": old.get("escalate_after"),
            "escalate_to": old.get("escalate_to"),
            "due_days": old.get("due", 0),
            "then": body(then) if then else None,
        }

    rows = db.execute("SELECT id, then_spec FROM activities WHERE then_spec IS NOT NULL").fetchall()
    for row_id, text in rows:
        old = json.loads(text)
        if "version" in old:
            continue
        spec = json.dumps({"version": 1, **body(old)}, sort_keys=True)
        db.execute("UPDATE activities SET then_spec = ? WHERE id = ?", [spec, row_id])


@migrations()
def m007_outbox_statuses(db: Database) -> None:
    """The outbox gains the statuses of funnels that survive real life: superseded (its
    stage visit ended, or a catch-up passed it), held (the customer cannot be emailed
    now) and bounced (the address refused it for good). SQLite cannot change a CHECK
    constraint, so the table is rebuilt as it was, with its indexes and triggers. Tasks
    gain cancel_on_exit: dropped when their stage visit ends."""
    statements = [
        """
        CREATE TABLE outbox_new (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            enrollment_id INTEGER REFERENCES enrollments(id),
            visit_id INTEGER,
            template TEXT NOT NULL,
            action_key TEXT NOT NULL UNIQUE,
            message_id TEXT NOT NULL UNIQUE,
            scheduled_on TEXT NOT NULL,
            stop_on_reply INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'skipped', 'uncertain',
                                  'superseded', 'held', 'bounced')),
            reason TEXT,
            recipients TEXT,
            subject TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,
            sent_at TEXT,
            queued_on TEXT NOT NULL
        )
        """,
        "INSERT INTO outbox_new SELECT * FROM outbox",
        "DROP TABLE outbox",
        "ALTER TABLE outbox_new RENAME TO outbox",
        "CREATE INDEX outbox_due ON outbox(status, scheduled_on)",
        "CREATE INDEX outbox_customer ON outbox(customer_id, status)",
        "CREATE INDEX outbox_visit ON outbox(visit_id, status)",
        """CREATE TRIGGER outbox_steps_insert AFTER INSERT ON outbox
           WHEN NEW.status = 'queued' AND NEW.enrollment_id IS NOT NULL
           BEGIN UPDATE enrollments SET next_steps = next_steps + 1 WHERE id = NEW.enrollment_id; END""",
        """CREATE TRIGGER outbox_steps_update AFTER UPDATE OF status ON outbox
           WHEN NEW.enrollment_id IS NOT NULL AND (OLD.status = 'queued') != (NEW.status = 'queued')
           BEGIN UPDATE enrollments
                 SET next_steps = next_steps + (CASE WHEN NEW.status = 'queued' THEN 1 ELSE -1 END)
                 WHERE id = NEW.enrollment_id; END""",
        "ALTER TABLE activities ADD COLUMN cancel_on_exit INTEGER NOT NULL DEFAULT 0",
    ]
    for statement in statements:
        db.execute(statement)


@migrations()
def m008_play_starts_and_partner_mail(db: Database) -> None:
    """Plays keep a record of each start (a play's cooldown counts from the last one, and
    an episode's plays are found again when it ends); an outbox email may be addressed to
    a partner (a task handed to them) instead of the customer."""
    statements = [
        """
        CREATE TABLE play_starts (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            play TEXT NOT NULL,
            started_on TEXT NOT NULL,
            source TEXT NOT NULL,           -- health, stage, hand
            episode_id INTEGER,             -- the health episode that started it
            action_key TEXT NOT NULL        -- the prefix of the keys of its actions
        )
        """,
        "CREATE INDEX play_starts_customer ON play_starts(customer_id, play, started_on)",
        "CREATE INDEX play_starts_episode ON play_starts(episode_id)",
        "ALTER TABLE outbox ADD COLUMN partner TEXT",
        "ALTER TABLE outbox ADD COLUMN task_id INTEGER",
    ]
    for statement in statements:
        db.execute(statement)


@migrations()
def m009_undo(db: Database) -> None:
    """What the last done, snooze or drop changed, item by item, so that ``undo`` can put
    it back (store/undo.py); and a removed open task (a follow-up an undo took back) no
    longer counts among its enrollment's next steps."""
    statements = [
        """
        CREATE TABLE undo_steps (
            id INTEGER PRIMARY KEY,
            command_id INTEGER NOT NULL,    -- the steps of one command share it
            verb TEXT NOT NULL CHECK (verb IN ('done', 'snooze', 'drop')),
            task_id INTEGER,                -- the task it changed, or
            email_id INTEGER,               -- the queued email it skipped (drop eN)
            acted_on TEXT NOT NULL,         -- the day of the command
            value_before TEXT,              -- snooze: the due date; done, drop: the task's
            value_after TEXT,               --   note; drop eN: the email's reason; as the
                                            --   command found it, and as it left it
            follow_up_id INTEGER,           -- done: the task its then: created
            undone_on TEXT,                 -- the day undo put it back (never twice)
            CHECK ((task_id IS NULL) != (email_id IS NULL))
        )
        """,
        """CREATE TRIGGER activities_steps_delete AFTER DELETE ON activities
           WHEN OLD.status = 'open' AND OLD.enrollment_id IS NOT NULL
           BEGIN UPDATE enrollments SET next_steps = next_steps - 1 WHERE id = OLD.enrollment_id; END""",
    ]
    for statement in statements:
        db.execute(statement)


@migrations()
def m010_undo_touchpoint(db: Database) -> None:
    """A task done on a contact channel (a call, a meeting, an email) is a touchpoint with
    the customer; undo takes that touchpoint back with the done, so it keeps its id."""
    db.execute("ALTER TABLE undo_steps ADD COLUMN touchpoint_id INTEGER")


@migrations()
def m011_calendar_revisions(db: Database) -> None:
    """The calendar feed (issue 14): a random workspace id that makes event UIDs unique
    across workspaces, and on every task how often its date or state changed (revision,
    the event's SEQUENCE) and the day it last did (changed_on, its LAST-MODIFIED), so a
    snoozed or closed task moves in every calendar app.

    A trigger keeps the count, so every way a task moves (snooze, done, drop, undo, the
    engine) is counted; the statements that know the day set ``changed_on`` (closing sets
    ``closed_on``, which the trigger copies; an undo sets ``undone_on``). Existing tasks
    start from what their rows show: one change if snoozed, one if closed."""
    import secrets

    statements = [
        "ALTER TABLE activities ADD COLUMN revision INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE activities ADD COLUMN changed_on TEXT",
        """UPDATE activities SET
             revision = (due_on <> first_due_on) + (status <> 'open'),
             changed_on = closed_on""",
        """CREATE TRIGGER activities_revision AFTER UPDATE OF due_on, status ON activities
           WHEN OLD.due_on IS NOT NEW.due_on OR OLD.status IS NOT NEW.status
           BEGIN UPDATE activities
                 SET revision = revision + 1, changed_on = coalesce(NEW.closed_on, NEW.changed_on)
                 WHERE id = NEW.id; END""",
        """CREATE TRIGGER undo_steps_changed AFTER UPDATE OF undone_on ON undo_steps
           WHEN NEW.undone_on IS NOT NULL AND NEW.task_id IS NOT NULL
           BEGIN UPDATE activities SET changed_on = NEW.undone_on WHERE id = NEW.task_id; END""",
        # Closed tasks stay in the feed (cancelled) for a while: found by their closing day.
        "CREATE INDEX activities_closed_on ON activities(closed_on)",
    ]
    for statement in statements:
        db.execute(statement)
    db.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('workspace_id', ?)",
        [secrets.token_hex(8)],
    )


@migrations()
def m012_inbox(db: Database) -> None:
    """The inbox (issue 13): what a customer's mail said about them, and where the last
    reading of each folder stopped.

    A customer may have asked for no more email (do_not_email) or have an address that
    bounced for good (email_undeliverable: the server's reason, NULL while it works).
    inbox_folders keeps, per folder, the IMAP UIDVALIDITY and the last UID read;
    inbox_files the names of the Maildir files read; inbox_messages the key of every
    message recorded (its Message-ID), so that a folder read again (a new UIDVALIDITY, a
    copy in two folders) records nothing twice. No message body is kept."""
    statements = [
        "ALTER TABLE customers ADD COLUMN do_not_email INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE customers ADD COLUMN email_undeliverable TEXT",
        """
        CREATE TABLE inbox_folders (
            folder TEXT PRIMARY KEY,          -- imap://user@host:port/NAME or maildir:PATH
            uidvalidity INTEGER,
            last_uid INTEGER NOT NULL DEFAULT 0,
            read_on TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE inbox_files (
            folder TEXT NOT NULL,
            name TEXT NOT NULL,               -- a Maildir file's unique name, without its flags
            PRIMARY KEY (folder, name)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE inbox_messages (
            message_key TEXT PRIMARY KEY,     -- role and Message-ID (or a digest of the headers)
            kind TEXT NOT NULL,
            read_on TEXT NOT NULL
        ) WITHOUT ROWID
        """,
        "CREATE INDEX customers_undeliverable ON customers(id) WHERE email_undeliverable IS NOT NULL",
    ]
    for statement in statements:
        db.execute(statement)


# What health scoring reads, table by table: (table, the customer column, the columns
# whose change can change a score). A write to one of them marks the customer for the
# next run (health_dirty), whichever command or program makes it.
_HEALTH_INPUTS = (
    ("customers", "id", None),
    # not next_steps, which triggers keep as tasks and emails come and go
    ("enrollments", "customer_id", "customer_id, funnel, stage, entered_on, status, owner"),
    ("signals", "customer_id", None),
    ("touchpoints", "customer_id", None),
    ("activities", "customer_id", "customer_id, status, due_on"),
    ("health_episodes", "customer_id", "customer_id"),
    ("health_snapshots", "customer_id", "customer_id"),
)


@migrations()
def m013_health_incremental(db: Database) -> None:
    """The daily run scores only the customers whose health may have changed (issue 15).

    ``health_dirty`` is filled by triggers on every table scoring reads, so no write
    path (a command, an import, an undo, a merge, another program) can be missed; the
    run takes the marks and rescores those customers. ``health_state`` keeps, for each
    customer the run scored, the day it did, whether they were at risk, and
    ``recheck_on``: the first day their result can change with no new input (a
    days-since measure crossing into another band, a signal leaving its window, a task
    falling overdue). Snapshots and episodes mark a customer only when a row is removed
    or moved to another customer: the run writes them itself, as the result of a score.
    """
    statements = [
        """
        CREATE TABLE health_dirty (
            customer_id INTEGER NOT NULL,
            source TEXT NOT NULL,            -- the table written
            PRIMARY KEY (customer_id, source)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE health_state (
            customer_id INTEGER PRIMARY KEY,
            scored_on TEXT NOT NULL,
            at_risk INTEGER NOT NULL,
            recheck_on TEXT                  -- none: not before an input changes
        )
        """,
        "CREATE INDEX health_state_recheck ON health_state(recheck_on)",
    ]
    for table, column, watched in _HEALTH_INPUTS:
        mark = "INSERT OR IGNORE INTO health_dirty (customer_id, source) VALUES"
        if table not in ("health_episodes", "health_snapshots"):
            statements.append(
                f"CREATE TRIGGER {table}_health_insert AFTER INSERT ON {table} "
                f"BEGIN {mark} (NEW.{column}, '{table}'); END"
            )
        of = f" OF {watched}" if watched else ""
        statements += [
            f"CREATE TRIGGER {table}_health_update AFTER UPDATE{of} ON {table} "
            f"BEGIN {mark} (OLD.{column}, '{table}'); {mark} (NEW.{column}, '{table}'); END",
            f"CREATE TRIGGER {table}_health_delete AFTER DELETE ON {table} "
            f"BEGIN {mark} (OLD.{column}, '{table}'); END",
        ]
    for statement in statements:
        db.execute(statement)


@migrations()
def m014_outbox_enrollment(db: Database) -> None:
    """An enrollment closed as lost or churned skips its queued emails, found by this index:
    without it SQLite read every queued email of the book once per enrollment closed (a
    run that churns thousands). Deleting an enrollment checks its emails the same way."""
    db.execute("CREATE INDEX outbox_enrollment ON outbox(enrollment_id, status)")


@migrations()
def m015_activities_parent(db: Database) -> None:
    """Deleting a task makes SQLite look for the tasks that follow from it (the foreign
    key parent_id) and, without an index, read every task in the book to do so: once per
    task of a customer erased, once per follow-up an undo takes back (0.13 s each on a
    book of 1,000,000 tasks). Partial: only follow-ups and escalations have a parent, and
    SQLite uses it for `parent_id = ?`, as the foreign-key check asks."""
    db.execute(
        "CREATE INDEX activities_parent ON activities(parent_id) WHERE parent_id IS NOT NULL"
    )

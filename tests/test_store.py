"""The SQLite store: connection settings, transactions, locking, history, backup, migrations.

Locking tests use a real second connection (or a real second process) holding
`BEGIN IMMEDIATE`, with the busy timeout shortened so that they stay fast.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from funnelctl.errors import EXIT_BUSY, BusyError, FunnelError
from funnelctl.store import Store, customers, enrollments, events
from funnelctl.store import db as store_module

DAY = "2026-03-02"


@pytest.fixture
def db(tmp_path: Path):
    """A new database, closed at the end of the test."""
    opened = Store.open(tmp_path / "funnel.db", create=True)
    yield opened
    opened.close()


def other_connection(path: Path) -> sqlite3.Connection:
    """A plain second connection, as another process would have."""
    return sqlite3.connect(path, isolation_level=None, timeout=0.05)


def add_customer(store: Store, email: str = "ana@example.com") -> int:
    return customers.insert(store, {"email": email, "name": email.split("@")[0].title()}, DAY)


def enroll(store: Store, customer_id: int) -> tuple[int, int]:
    enrollment = enrollments.insert(
        store,
        customer_id=customer_id,
        funnel="after-sales",
        stage="demand-analysis",
        on=DAY,
        owner=None,
    )
    history = enrollments.add_history(
        store,
        enrollment_id=enrollment,
        customer_id=customer_id,
        funnel="after-sales",
        kind="enroll",
        from_stage=None,
        to_stage="demand-analysis",
        moved_on=DAY,
        by="ana",
        note="first",
    )
    return enrollment, history


def emails(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT email FROM customers ORDER BY id")]
    finally:
        conn.close()


def counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("customers", "enrollments", "stage_history", "events")
        }
    finally:
        conn.close()


# -- connection settings ------------------------------------------------------------------------


def test_connections_use_wal_foreign_keys_full_sync_and_a_busy_timeout(db):
    assert db.scalar("PRAGMA journal_mode") == "wal"
    assert db.scalar("PRAGMA foreign_keys") == 1
    assert db.scalar("PRAGMA synchronous") == 2  # FULL
    assert db.scalar("PRAGMA busy_timeout") == store_module.BUSY_TIMEOUT_MS
    assert db.conn.isolation_level is None  # autocommit: transactions are explicit


def test_settings_hold_on_every_opening_not_only_the_first(tmp_path, db):
    db.close()
    again = Store.open(tmp_path / "funnel.db")
    try:
        assert again.scalar("PRAGMA journal_mode") == "wal"
        assert again.scalar("PRAGMA foreign_keys") == 1
    finally:
        again.close()


def test_database_files_are_owner_only_and_the_umask_is_restored(tmp_path):
    folder = tmp_path / "ws"
    folder.mkdir()
    before = os.umask(0o022)
    try:
        opened = Store.open(folder / "funnel.db", create=True)
        try:
            with opened.write():
                add_customer(opened)
            assert os.umask(0o022) == 0o022  # open() put the caller's umask back
            files = sorted(p.name for p in folder.iterdir())
            assert files == ["funnel.db", "funnel.db-shm", "funnel.db-wal"]
            for path in folder.iterdir():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        finally:
            opened.close()
    finally:
        os.umask(before)


def test_a_missing_database_is_not_created_without_create(tmp_path):
    with pytest.raises(FunnelError, match="is missing"):
        Store.open(tmp_path / "funnel.db")
    assert not (tmp_path / "funnel.db").exists()


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "funnel.db"
    path.write_text("name,email\nAna,ana@example.com\n" * 100)
    with pytest.raises(FunnelError) as caught:
        Store.open(path)
    assert caught.value.message.startswith(f"{path} is not a funnelctl database")


def test_a_command_on_a_damaged_database_fails_without_a_traceback(run, workspace):
    (workspace / "funnel.db").write_text("this is not SQLite\n" * 200)
    result = run("customer", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {workspace / 'funnel.db'} is not a funnelctl database")
    assert "Traceback" not in result.stderr


def test_foreign_keys_are_enforced(db):
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"), db.write():
        enrollments.insert(
            db,
            customer_id=999,
            funnel="after-sales",
            stage="demand-analysis",
            on=DAY,
            owner=None,
        )
    assert db.scalar("SELECT count(*) FROM enrollments") == 0


def test_a_customer_with_history_cannot_be_deleted(db):
    with db.write():
        customer = add_customer(db)
        enroll(db, customer)
    with pytest.raises(sqlite3.IntegrityError), db.write():
        db.conn.execute("DELETE FROM enrollments")
    assert db.scalar("SELECT count(*) FROM enrollments") == 1


# -- stage history is never rewritten ------------------------------------------------------------


UPDATE_ALL = "UPDATE stage_history SET note = 'rewritten'"
UPDATE_ONE = "UPDATE stage_history SET moved_on = '2020-01-01' WHERE id = {id}"
DELETE_ALL = "DELETE FROM stage_history"
DELETE_ONE = "DELETE FROM stage_history WHERE id = {id}"
REPLACE = (
    "INSERT OR REPLACE INTO stage_history "
    "(id, enrollment_id, customer_id, funnel, kind, to_stage, moved_on, note) "
    "VALUES ({id}, {enrollment}, {customer}, 'after-sales', 'move', 'approved', "
    "'2020-01-01', 'rewritten')"
)


@pytest.fixture
def history(db):
    """(statement formatter, rows before) for a customer with one stage_history row."""
    with db.write():
        customer = add_customer(db)
        enrollment, row = enroll(db, customer)

    def statement(sql: str) -> str:
        return sql.format(id=row, enrollment=enrollment, customer=customer)

    return statement, db.rows("SELECT * FROM stage_history")


@pytest.mark.parametrize(
    "sql",
    [UPDATE_ALL, UPDATE_ONE, DELETE_ALL, DELETE_ONE, REPLACE],
    ids=["update-all", "update-one", "delete-all", "delete-one", "replace"],
)
def test_stage_history_rows_cannot_be_changed(db, history, sql):
    statement, before = history
    with (
        pytest.raises(sqlite3.IntegrityError, match="stage history is never rewritten"),
        db.write(),
    ):
        db.conn.execute(statement(sql))
    assert db.rows("SELECT * FROM stage_history") == before


@pytest.mark.parametrize(
    "sql",
    [
        UPDATE_ALL,
        DELETE_ONE,
        REPLACE,
    ],
    ids=["update", "delete", "replace"],
)
def test_stage_history_is_protected_from_any_client(db, history, sql):
    """The triggers live in the file: sqlite3, Datasette or a script cannot rewrite history."""
    statement, before = history
    conn = sqlite3.connect(db.path, isolation_level=None)  # foreign_keys off, as by default
    try:
        with pytest.raises(sqlite3.IntegrityError, match="never rewritten"):
            conn.execute(statement(sql))
    finally:
        conn.close()
    assert db.rows("SELECT * FROM stage_history") == before


def test_stage_history_can_grow(db):
    with db.write():
        customer = add_customer(db)
        enrollment, _ = enroll(db, customer)
        enrollments.add_history(
            db,
            enrollment_id=enrollment,
            customer_id=customer,
            funnel="after-sales",
            kind="move",
            from_stage="demand-analysis",
            to_stage="customer-contact",
            moved_on="2026-03-03",
            by="ana",
            note=None,
        )
    assert [r.to_stage for r in enrollments.history_of(db, customer)] == [
        "demand-analysis",
        "customer-contact",
    ]


# -- transactions --------------------------------------------------------------------------------


def test_write_commits_for_everyone_to_see(db):
    with db.write():
        customer = add_customer(db)
        enroll(db, customer)
    assert counts(db.path) == {"customers": 1, "enrollments": 1, "stage_history": 1, "events": 0}


@pytest.mark.parametrize("error", [RuntimeError("half-way"), KeyboardInterrupt()])
def test_write_rolls_back_everything_on_an_exception(db, error):
    with db.write():
        add_customer(db, "kept@example.com")
    before = counts(db.path)
    with pytest.raises(type(error)), db.write():
        customer = add_customer(db, "new@example.com")
        enroll(db, customer)
        events.add(db, customer, DAY, "note", "half done")
        db.set_meta("last_tick", DAY)
        # the rows are there inside the transaction ...
        assert db.scalar("SELECT count(*) FROM customers") == 2
        raise error
    # ... and gone after it, for this connection and for any other
    assert not db.conn.in_transaction
    assert counts(db.path) == before
    assert emails(db.path) == ["kept@example.com"]
    assert db.get_meta("last_tick") is None
    # the store is still usable
    with db.write():
        add_customer(db, "after@example.com")
    assert emails(db.path) == ["kept@example.com", "after@example.com"]


def test_a_failing_statement_half_way_leaves_nothing(db):
    with pytest.raises(sqlite3.IntegrityError), db.write():
        add_customer(db, "one@example.com")
        add_customer(db, "ONE@example.com")  # emails are unique regardless of case
    assert emails(db.path) == []


def test_uncommitted_rows_are_invisible_to_other_connections(db):
    conn = other_connection(db.path)
    try:
        with db.write():
            add_customer(db)
            assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 1
    finally:
        conn.close()


# -- two writers ---------------------------------------------------------------------------------


def test_a_second_writer_gets_busy_after_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 100)
    path = tmp_path / "funnel.db"
    Store.open(path, create=True).close()
    holder = other_connection(path)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute(
        "INSERT INTO customers (email, name, created_on, updated_on) "
        "VALUES ('held@example.com', 'Held', ?, ?)",
        [DAY, DAY],
    )
    second = Store.open(path)  # reading and opening need no write lock
    try:
        with pytest.raises(BusyError) as caught, second.write():
            add_customer(second)
        assert caught.value.exit_code == EXIT_BUSY
        assert caught.value.message == (
            f"The workspace database {path} is busy: another funnelctl command is writing "
            "to it; try again in a moment."
        )
        assert not second.conn.in_transaction
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # once the first writer is gone, the second one gets through
    with second.write():
        add_customer(second)
    second.close()
    assert emails(path) == ["ana@example.com"]


def test_a_second_writer_waits_for_the_first_to_finish(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 30_000)
    path = tmp_path / "funnel.db"
    Store.open(path, create=True).close()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute(
        "INSERT INTO customers (email, name, created_on, updated_on) "
        "VALUES ('first@example.com', 'First', ?, ?)",
        [DAY, DAY],
    )
    second = Store.open(path)
    started = threading.Event()

    def finish_first() -> None:
        started.wait(10)
        holder.execute("COMMIT")

    thread = threading.Thread(target=finish_first)
    thread.start()
    try:
        started.set()
        with second.write():  # blocks until the holder commits, well inside the timeout
            add_customer(second, "second@example.com")
    finally:
        thread.join(10)
        holder.close()
        second.close()
    assert emails(path) == ["first@example.com", "second@example.com"]


HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute(
    "INSERT INTO customers (email, name, created_on, updated_on) "
    "VALUES ('other@example.com', 'Other', '2026-03-02', '2026-03-02')"
)
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes stdin
conn.execute("ROLLBACK")
"""


@pytest.fixture
def lock_holder(workspace):
    """Another process holding the workspace's write lock, with an uncommitted row."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(workspace / "funnel.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        yield proc
    finally:
        if proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(10)


def test_a_command_that_writes_while_another_process_does_says_busy(
    run, workspace, lock_holder, monkeypatch, dump
):
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 100)
    result = run("customer", "add", "ana@example.com", "--name", "Ana")
    assert result.exit_code == EXIT_BUSY
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: The workspace database {workspace / 'funnel.db'} is busy: another funnelctl "
        "command is writing to it; try again in a moment.\n"
    )
    # reading still works meanwhile, and sees none of the other process's uncommitted row
    listed = run("customer", "list", "--format", "json")
    assert listed.exit_code == 0, listed.stderr
    assert listed.stdout == "[]\n"


# -- backup --------------------------------------------------------------------------------------


def test_backup_is_an_owner_only_copy_with_the_same_customers(run, workspace, tmp_path):
    for email in ("ana@example.com", "bruno@example.com"):
        assert run("customer", "add", email).exit_code == 0
    target = tmp_path / "backups" / "funnel-2026-03-02.db"
    target.parent.mkdir()
    result = run("backup", str(target))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == f"Backed up {workspace / 'funnel.db'} to {target}.\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert emails(target) == ["ana@example.com", "bruno@example.com"]
    conn = sqlite3.connect(target)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        names = [row[0] for row in conn.execute("SELECT name FROM _sqlite_migrations")]
        assert names == migration_names()
    finally:
        conn.close()
    # a backup opens as a workspace database
    restored = Store.open(target)
    try:
        assert [c["email"] for c in customers.listing(restored)] == [
            "ana@example.com",
            "bruno@example.com",
        ]
    finally:
        restored.close()


def test_backup_is_owner_only_whatever_the_umask(run, workspace, tmp_path):
    previous = os.umask(0o000)
    try:
        result = run("backup", str(tmp_path / "open-umask.db"))
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "open-umask.db").stat().st_mode) == 0o600


def test_backup_never_overwrites_a_file(run, workspace, tmp_path):
    target = tmp_path / "precious.db"
    target.write_bytes(b"keep me")
    result = run("backup", str(target))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: {target} already exists; choose a new file name for the backup.\n"
    )
    assert target.read_bytes() == b"keep me"


def test_backup_into_a_missing_folder_fails_cleanly(run, workspace, tmp_path):
    target = tmp_path / "nowhere" / "b.db"
    result = run("backup", str(target))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: Cannot write the backup: the folder {target.parent} does not exist.\n"
    )
    assert not target.parent.exists()


def test_backup_while_another_process_holds_a_write_transaction(
    run, workspace, tmp_path, lock_holder
):
    target = tmp_path / "during.db"
    result = run("backup", str(target))
    assert result.exit_code == 0, result.stderr
    # the other process's row was never committed: the backup must not have it
    assert emails(target) == []
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_backup_holds_committed_rows_but_not_a_concurrent_uncommitted_one(run, workspace, tmp_path):
    assert run("customer", "add", "committed@example.com").exit_code == 0
    holder = other_connection(workspace / "funnel.db")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute(
        "INSERT INTO customers (email, name, created_on, updated_on) "
        "VALUES ('uncommitted@example.com', 'U', ?, ?)",
        [DAY, DAY],
    )
    try:
        result = run("backup", str(tmp_path / "b.db"))
        assert result.exit_code == 0, result.stderr
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert emails(tmp_path / "b.db") == ["committed@example.com"]
    assert emails(workspace / "funnel.db") == ["committed@example.com", "uncommitted@example.com"]


# -- migrations ----------------------------------------------------------------------------------


def migration_names() -> list[str]:
    """The steps this version of funnelctl knows, in order."""
    from funnelctl.store import migrations

    fresh = Store.memory()
    try:
        return [m.name for m in migrations.migrations.applied(fresh.db)]
    finally:
        fresh.close()


def schema(path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"
        ).fetchall()
    finally:
        conn.close()


def test_a_new_database_records_the_initial_migration(db):
    rows = db.rows("SELECT migration_set, name FROM _sqlite_migrations ORDER BY id")
    assert rows[0] == {"migration_set": "funnelctl", "name": "m001_initial"}
    names = [r["name"] for r in rows]
    # every step once, in the order they were numbered: m001_..., m002_..., ...
    assert [name[:4] for name in names] == [f"m{i:03d}" for i in range(1, len(names) + 1)]
    assert names == migration_names()
    tables = {r["name"] for r in db.rows("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {
        "customers",
        "enrollments",
        "stage_history",
        "activities",
        "touchpoints",
        "signals",
        "outbox",
        "events",
        "meta",
    } <= tables


def test_opening_again_applies_nothing_new(tmp_path):
    path = tmp_path / "funnel.db"
    Store.open(path, create=True).close()
    applied = Store.open(path)
    try:
        first = applied.rows("SELECT * FROM _sqlite_migrations")
    finally:
        applied.close()
    layout = schema(path)
    for _ in range(2):
        Store.open(path).close()
    again = Store.open(path)
    try:
        assert again.rows("SELECT * FROM _sqlite_migrations") == first  # same rows, same times
    finally:
        again.close()
    assert schema(path) == layout
    assert [r["name"] for r in first] == migration_names()


def test_opening_an_up_to_date_database_needs_no_write_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 100)
    path = tmp_path / "funnel.db"
    Store.open(path, create=True).close()
    holder = other_connection(path)
    holder.execute("BEGIN IMMEDIATE")
    try:
        opened = Store.open(path)  # would be busy if opening wrote anything
        opened.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_database_from_a_newer_funnelctl_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "funnel.db"
    Store.open(path, create=True).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()
    with pytest.raises(FunnelError, match="newer version of funnelctl"):
        Store.open(path).close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 999
    finally:
        conn.close()


# -- files that are not a book, damaged pages, a full disk ------------------------------------


def corrupt_table(db_path: Path, table: str) -> None:
    """Overwrite the root page of ``table`` with garbage, as a failing disk would."""
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?", [table]
        ).fetchone()[0]
    finally:
        conn.close()
    with db_path.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * page_size)


def test_an_empty_database_file_is_never_taken_for_a_new_book(run, workspace, tmp_path):
    db = workspace / "funnel.db"
    for leftover in ("funnel.db-wal", "funnel.db-shm"):
        (workspace / leftover).unlink(missing_ok=True)
    db.write_bytes(b"")
    (tmp_path / "people.csv").write_text("email\nann@example.com\n")

    result = run("import", str(tmp_path / "people.csv"), "--funnel", "after-sales")

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: The database {db} is empty (0 bytes): restore your latest backup over it "
        f"(with no funnelctl command running: cp BACKUP {db}, then delete funnel.db-wal and "
        "funnel.db-shm if they are there; 'funnelctl backup FILE' makes backups), or start a "
        "new book with 'funnelctl init' in a new folder.\n"
    )
    assert db.read_bytes() == b""


def test_a_sqlite_file_that_is_not_funnelctls_is_left_alone(run, workspace):
    db = workspace / "funnel.db"
    for name in ("funnel.db", "funnel.db-wal", "funnel.db-shm"):
        (workspace / name).unlink(missing_ok=True)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.execute("INSERT INTO notes VALUES ('mine')")
    conn.commit()
    conn.close()
    before = db.read_bytes()

    result = run("customer", "add", "ann@example.com")

    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: {db} is not a funnelctl database: it is a SQLite file without funnelctl's "
        "tables, and funnelctl will not write into it; restore your latest backup"
    )
    assert db.read_bytes() == before


@pytest.mark.parametrize("command", [["customer", "list"], ["due"], ["at-risk"], ["report"]])
def test_a_damaged_page_is_one_sentence_that_says_how_to_recover(run, demo, command):
    db = demo / "funnel.db"
    corrupt_table(db, "customers")

    result = run(*command)

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: The database {db} is damaged (database disk image is malformed); funnelctl "
        f"stopped before doing anything more. See what is wrong with: sqlite3 {db} "
        f"'PRAGMA integrity_check'; then restore your latest backup over it (with no "
        f"funnelctl command running: cp BACKUP {db}, then delete funnel.db-wal and "
        "funnel.db-shm if they are there; 'funnelctl backup FILE' makes backups), or start a "
        "new book with 'funnelctl init' in a new folder.\n"
    )


def test_an_import_that_fills_the_disk_says_so_and_changes_nothing(
    run, tmp_path, small_disk, monkeypatch
):
    from conftest import db_dump

    root = small_disk(3072) / "ws"
    assert run("init", str(root)).exit_code == 0
    monkeypatch.setenv("FUNNELCTL_HOME", str(root))
    rows = "".join(f"c{n}@example.com,Customer {n},{'n' * 80}\n" for n in range(30000))
    (tmp_path / "big.csv").write_text("email,name,notes\n" + rows)
    before = db_dump(root)

    result = run("import", str(tmp_path / "big.csv"), "--funnel", "after-sales")

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: The disk holding {root / 'funnel.db'} is full: what the command had not "
        "finished was rolled back. Free some space and run it again.\n"
    )
    assert db_dump(root) == before


def test_a_value_changed_behind_funnelctls_back_is_one_sentence(run, demo, monkeypatch):
    monkeypatch.delenv("FUNNELCTL_DEBUG")
    conn = sqlite3.connect(demo / "funnel.db")
    conn.execute("UPDATE customers SET tags = '[\"vip' WHERE id = 3")
    conn.commit()

    listed = run("customer", "list")
    # rows stream out as they are read: the two before customer #3, whole, then the error
    assert listed.exit_code == 1
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == ["id", "1", "2"]
    assert listed.stderr.startswith(
        "Error: Customer #3's tags or custom fields cannot be read (Unterminated string"
    )
    conn.execute("UPDATE customers SET tags = '[]' WHERE id = 3")
    conn.execute("UPDATE customers SET signed_on = '20<6-01-24' WHERE id = 4")
    conn.commit()
    conn.close()
    scores = run("at-risk", "-f", "json")
    assert (scores.exit_code, scores.stdout) == (70, "")
    assert scores.stderr.startswith(
        "Error: funnelctl stopped on an unexpected ValueError: Invalid isoformat string: "
        "'20<6-01-24'. This is a bug, or a file of the workspace was changed by another "
        "program; "
    )
    assert scores.stderr.endswith(
        "run again with FUNNELCTL_DEBUG=1 to see where, and please report it.\n"
    )


def test_a_sqlite_file_with_a_schema_version_but_not_funnelctls_is_left_alone(run, workspace):
    db = workspace / "funnel.db"
    for name in ("funnel.db", "funnel.db-wal", "funnel.db-shm"):
        (workspace / name).unlink(missing_ok=True)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 3")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = db.read_bytes()

    result = run("due")

    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {db} is not a funnelctl database")
    assert db.read_bytes() == before


def test_rows_as_dicts_read_as_sqlite3_row_reads_them(db):
    """store.db.dicts: what dict(sqlite3.Row) gives, a shared name keeping the first
    column's value (due's stuck visits: e.owner, then coalesce(...) AS owner)."""
    sql = (
        "SELECT 1 AS id, NULL AS owner, 'x' AS title, coalesce(NULL, 'ana') AS owner "
        "UNION ALL SELECT 2, 'bruno', 'y', 'carla'"
    )
    expected = [dict(row) for row in db.conn.execute(sql)]
    assert expected == [
        {"id": 1, "owner": None, "title": "x"},
        {"id": 2, "owner": "bruno", "title": "y"},
    ]
    assert list(store_module.dicts(db.conn.execute(sql))) == expected
    assert db.rows(sql) == expected
    plain = "SELECT 1 AS a, 2 AS b UNION ALL SELECT 3, 4"
    assert list(store_module.dicts(db.conn.execute(plain))) == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]
    assert list(store_module.dicts(db.conn.execute(plain + " LIMIT 0"))) == []

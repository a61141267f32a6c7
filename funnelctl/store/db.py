"""The SQLite store: opening the database, transactions, every SQL statement, backup.

Connections run in autocommit mode (``isolation_level=None``); every command
that writes does so inside one ``BEGIN IMMEDIATE`` transaction opened by
:meth:`Store.write`, so a failure anywhere leaves the database as it was.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import BusyError, DiskFull, FunnelError

BUSY_TIMEOUT_MS = 5000
# Bumped with every migration step, so that opening an up-to-date database does not
# need to import sqlite-utils to find out (startup time matters for a CLI).
SCHEMA_VERSION = 15

# The outbox's statuses, as its CHECK constraint has them (store/outbox.py: Status).
OUTBOX_STATUSES = (
    "queued",
    "sending",
    "sent",
    "failed",
    "skipped",
    "uncertain",
    "superseded",
    "held",
    "bounced",
)


Row = dict[str, Any]


def dicts(cursor: sqlite3.Cursor) -> Iterator[Row]:
    """A query's rows as dicts, as ``dict(row)`` makes them from a ``sqlite3.Row`` (where
    two columns share a name, the first one's value), in time linear in the columns:
    ``dict(row)`` looks every name up along the whole row, which is quadratic, and a row
    of ``SELECT a.*, ...`` has some thirty columns."""
    names = [column[0] for column in cursor.description or ()]
    first = [i for i, name in enumerate(names) if names.index(name) == i]
    if len(first) == len(names):
        for row in cursor:
            yield dict(zip(names, row, strict=True))
    else:
        for row in cursor:
            yield {names[i]: row[i] for i in first}


# What a SQLite file starts with; anything else is not a database at all.
SQLITE_MAGIC = b"SQLite format 3\x00"
# Primary result codes (sqlite3.h); Python 3.11+ puts the extended code on the exception.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR = 5, 6, 8, 10
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def _is_busy(exc: sqlite3.Error) -> bool:
    if _code(exc) in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return True
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text


def _from_the_world(exc: sqlite3.Error) -> bool:
    """An error of the disk, the file or another process (full, busy, damaged), not of the
    statement: constraint and programming errors stay what they are for the code above."""
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError


def _is_full(exc: sqlite3.Error) -> bool:
    return _code(exc) == _SQLITE_FULL or "database or disk is full" in str(exc).lower()


def restore_hint(path: Path) -> str:
    # A -wal file left beside the damaged database would be replayed onto the backup.
    return (
        f"restore your latest backup over it (with no funnelctl command running: "
        f"cp BACKUP {path}, then delete {path.name}-wal and {path.name}-shm if they are "
        "there; 'funnelctl backup FILE' makes backups), or start a new book with "
        "'funnelctl init' in a new folder"
    )


class DatabaseDamaged(FunnelError):
    """The database file is damaged or is not funnelctl's: nothing more may be done with it."""


def database_problem(exc: sqlite3.Error, path: Path) -> FunnelError:
    """One clear sentence for an error SQLite raised while working on ``path``."""
    code = _code(exc)
    text = str(exc)
    if _is_busy(exc):
        return BusyError(_busy_message(path))
    if _is_full(exc):
        return _disk_full(path)
    if code == _SQLITE_READONLY or "readonly" in text.lower():
        return FunnelError(
            f"The database {path} cannot be written ({text}): check the permissions of the "
            "file and of its folder."
        )
    if code == _SQLITE_CANTOPEN:
        return FunnelError(f"Cannot open the database {path} ({text}).")
    if code == _SQLITE_IOERR or "disk i/o error" in text.lower():
        if _no_room(path):  # SQLite says "I/O error" when not even its -shm file fits
            return _disk_full(path)
        return FunnelError(
            f"Reading or writing the database {path} failed at the disk ({text}); what the "
            "command had not finished was rolled back. Check the disk, then run it again."
        )
    # Python raises the plain DatabaseError class for SQLITE_CORRUPT and SQLITE_NOTADB.
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or type(exc) is sqlite3.DatabaseError:
        return damaged(path, text)
    return FunnelError(f"The database {path} refused the command: {text}.")


def _disk_full(path: Path) -> DiskFull:
    return DiskFull(
        f"The disk holding {path} is full: what the command had not finished was rolled "
        "back. Free some space and run it again."
    )


def _no_room(path: Path) -> bool:
    try:
        return shutil.disk_usage(path.parent).free < 64 * 1024
    except OSError:
        return False


def damaged(path: Path, detail: str) -> DatabaseDamaged:
    return DatabaseDamaged(
        f"The database {path} is damaged ({detail}); funnelctl stopped before doing anything "
        f"more. See what is wrong with: sqlite3 {path} 'PRAGMA integrity_check'; then "
        f"{restore_hint(path)}."
    )


@contextmanager
def faults(path: Path) -> Iterator[None]:
    """Any SQLite error inside the block becomes one clear FunnelError about ``path``."""
    try:
        yield
    except sqlite3.Error as exc:
        raise database_problem(exc, path) from None


class Store:
    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn

    @property
    def db(self) -> Any:
        """The sqlite-utils view of the connection (for migrations; imported only when needed)."""
        from sqlite_utils import Database

        return Database(self.conn)

    def migrate(self) -> None:
        """Apply pending schema steps, in one write transaction."""
        from . import migrations

        db = self.db
        with self.write():
            if migrations.migrations.pending(db):
                migrations.apply(db)
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _is_ours(self) -> bool:
        """A database that funnelctl's migrations set up (a schema version alone proves
        nothing: any SQLite file may have one)."""
        return bool(
            self.scalar(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlite_migrations'"
            )
            and self.scalar(
                "SELECT 1 FROM _sqlite_migrations WHERE migration_set = 'funnelctl' LIMIT 1"
            )
        )

    def check_integrity(self) -> None:
        """Raise DatabaseDamaged unless SQLite's quick check finds every page sound."""
        try:
            verdict = [row[0] for row in self.conn.execute("PRAGMA quick_check(5)")]
        except sqlite3.DatabaseError as exc:
            raise damaged(self.path, str(exc)) from None
        if verdict != ["ok"]:
            raise damaged(self.path, "; ".join(verdict))

    # -- opening -----------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, create: bool = False) -> Store:
        """Open (or with ``create``, create) the database and bring its schema up to date."""
        if not create:
            _check_file(path)
        old_umask = os.umask(0o077)  # owner-only: the -wal and -shm files follow
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            conn.row_factory = sqlite3.Row
            store = cls(path, conn)
            try:
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                # Read before anything is set: switching to WAL already writes the file.
                version = store.schema_version()
                if not create and not store._is_ours():
                    raise DatabaseDamaged(
                        f"{path} is not a funnelctl database: it is a SQLite file without "
                        f"funnelctl's tables, and funnelctl will not write into it; "
                        f"{restore_hint(path)}."
                    )
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("PRAGMA synchronous = FULL")
                if version > SCHEMA_VERSION:
                    raise FunnelError(
                        f"{path} was written by a newer version of funnelctl (schema {version}; "
                        f"this one knows up to {SCHEMA_VERSION}): upgrade funnelctl to use it."
                    )
                if version < SCHEMA_VERSION:
                    store.migrate()
            except FunnelError:
                conn.close()
                raise
            except sqlite3.Error as exc:
                conn.close()
                raise database_problem(exc, path) from None
        except sqlite3.Error as exc:  # connect itself: a folder, no permission
            raise database_problem(exc, path) from None
        finally:
            os.umask(old_umask)
        if create:
            os.chmod(path, 0o600)
        return store

    @classmethod
    def memory(cls) -> Store:
        """A throwaway database in memory, with the full schema (for simulations)."""
        conn = sqlite3.connect(":memory:", isolation_level=None)
        conn.row_factory = sqlite3.Row
        store = cls(Path(":memory:"), conn)
        conn.execute("PRAGMA foreign_keys = ON")
        store.migrate()
        return store

    def close(self) -> None:
        self.conn.close()

    # -- transactions --------------------------------------------------------------

    @contextmanager
    def write(self, *, patient: bool = False) -> Iterator[Store]:
        """One ``BEGIN IMMEDIATE`` transaction: all of the block, or nothing.

        Another writer makes it wait up to the busy timeout, then give up as busy;
        ``patient`` waits as long as it takes instead, for records that must not be
        lost (that an email left). SQLite's own errors leave as one clear FunnelError.
        """
        self._retry_while_busy("BEGIN IMMEDIATE", patient)
        try:
            yield self
        except BaseException as exc:
            # A full disk or an I/O error may already have rolled SQLite back.
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error) and _from_the_world(exc):
                raise database_problem(exc, self.path) from None
            raise
        try:
            self._retry_while_busy("COMMIT", patient)
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    @contextmanager
    def savepoint(self, name: str) -> Iterator[None]:
        """A step inside :meth:`write` that a failure undoes alone, leaving the rest."""
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            # On a full disk SQLite may already have rolled the whole transaction back,
            # savepoint included: then there is nothing left to undo here, and the
            # original error (not "no such savepoint") is the one to report.
            if self.conn.in_transaction:
                self.conn.execute(f"ROLLBACK TO {name}")
                self.conn.execute(f"RELEASE {name}")
            raise
        self.conn.execute(f"RELEASE {name}")

    def _retry_while_busy(self, statement: str, patient: bool) -> None:
        while True:
            try:
                self.conn.execute(statement)
                return
            except sqlite3.Error as exc:
                if not (patient and _is_busy(exc)):
                    raise database_problem(exc, self.path) from None
            time.sleep(0.05)  # the busy timeout already waited; try again

    @contextmanager
    def read(self) -> Iterator[Store]:
        """A consistent snapshot for a report made of several queries."""
        self.conn.execute("BEGIN")
        try:
            yield self
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")

    # -- small helpers ---------------------------------------------------------------

    def rows(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[Row]:
        """Rows of a query, as dicts: for tests and for looking into a book by hand. The
        program's own statements live in the aggregate modules."""
        return list(dicts(self.conn.execute(sql, params)))

    def scalar(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
        r = self.conn.execute(sql, params).fetchone()
        return r[0] if r is not None else None

    # -- erasing ---------------------------------------------------------------------------

    def overwrite_deleted(self) -> None:
        """From now on, what this connection deletes is overwritten on disk, not merely
        unlinked: erasing a person must not leave their data in the file's free pages."""
        self.conn.execute("PRAGMA secure_delete = ON")

    def checkpoint(self) -> bool:
        """Copy the write-ahead log into the database and empty it, so that the pages an
        erasure overwrote leave no older copy in the -wal file. Best effort (False when it
        could not finish): a reader still open keeps its frames until a later checkpoint,
        which SQLite makes by itself."""
        try:
            busy = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        except sqlite3.OperationalError:
            return False
        return not busy

    # -- meta --------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        value = self.scalar("SELECT value FROM meta WHERE key = ?", [key])
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )

    # -- backup ----------------------------------------------------------------------------

    def backup(self, target: Path) -> None:
        """A consistent copy through SQLite's online backup API, owner-only."""
        if target.exists():
            raise FunnelError(f"{target} already exists; choose a new file name for the backup.")
        if not target.parent.is_dir():
            raise FunnelError(
                f"Cannot write the backup: the folder {target.parent} does not exist."
            )
        old_umask = os.umask(0o077)
        try:
            dest = sqlite3.connect(target)
            try:
                self.conn.backup(dest)
            finally:
                dest.close()
        except sqlite3.Error as exc:
            target.unlink(missing_ok=True)
            raise FunnelError(f"Backup to {target} failed: {exc}.") from None
        finally:
            os.umask(old_umask)


def _check_file(path: Path) -> None:
    """The database must exist and be a SQLite file: an empty or foreign file is never
    taken for a new, empty book (the next import would queue every email again)."""
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        raise FunnelError(
            f"The database {path} is missing; this folder is not a complete workspace: "
            f"{restore_hint(path)}."
        ) from None
    except OSError as exc:
        raise FunnelError(f"Cannot read the database {path}: {exc.strerror}.") from None
    if not head:
        raise DatabaseDamaged(f"The database {path} is empty (0 bytes): {restore_hint(path)}.")
    if head != SQLITE_MAGIC:
        raise DatabaseDamaged(
            f"{path} is not a funnelctl database: it is not a SQLite file at all (damaged, "
            f"or another kind of file); {restore_hint(path)}."
        )


def _busy_message(path: Path) -> str:
    return (
        f"The workspace database {path} is busy: another funnelctl command is writing to it; "
        "try again in a moment."
    )


def insert_row(store: Store, table: str, values: Mapping[str, Any]) -> int:
    """INSERT one row of ``values`` (column -> value) into ``table``; returns its id.
    For the aggregate modules, which name their own tables and columns."""
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    cursor = store.conn.execute(
        f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(values.values())
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def update_row(store: Store, table: str, row_id: int, values: Mapping[str, Any]) -> None:
    """UPDATE the columns in ``values`` of row ``row_id`` of ``table``."""
    assignments = ", ".join(f"{column} = ?" for column in values)
    store.conn.execute(f"UPDATE {table} SET {assignments} WHERE id = ?", [*values.values(), row_id])

"""What the inbox keeps: where the reading of each folder stopped, the keys of the
messages it recorded, and what a customer's mail said about their address (they asked
for no more email; it bounced for good). No message body is ever stored here."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from .db import Row, Store


class FolderState(NamedTuple):
    uidvalidity: int | None
    last_uid: int


# -- where a folder's reading stopped -------------------------------------------------------------


def folder_state(store: Store, folder: str) -> FolderState | None:
    row = store.conn.execute(
        "SELECT uidvalidity, last_uid FROM inbox_folders WHERE folder = ?", [folder]
    ).fetchone()
    return FolderState(row[0], int(row[1])) if row else None


def save_folder_state(
    store: Store, folder: str, uidvalidity: int | None, last_uid: int, today: str
) -> None:
    store.conn.execute(
        "INSERT INTO inbox_folders (folder, uidvalidity, last_uid, read_on) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (folder) DO UPDATE SET uidvalidity = excluded.uidvalidity, "
        "last_uid = excluded.last_uid, read_on = excluded.read_on",
        [folder, uidvalidity, last_uid, today],
    )


def files_read(store: Store, folder: str) -> set[str]:
    """The unique names of the Maildir files of ``folder`` already read."""
    return {
        row[0]
        for row in store.conn.execute("SELECT name FROM inbox_files WHERE folder = ?", [folder])
    }


def mark_files_read(store: Store, folder: str, names: Iterable[str]) -> None:
    store.conn.executemany(
        "INSERT OR IGNORE INTO inbox_files (folder, name) VALUES (?, ?)",
        [(folder, name) for name in names],
    )


# -- messages recorded ---------------------------------------------------------------------------


def recorded(store: Store, key: str) -> bool:
    return (
        store.conn.execute("SELECT 1 FROM inbox_messages WHERE message_key = ?", [key]).fetchone()
        is not None
    )


def mark_recorded(store: Store, key: str, kind: str, today: str) -> None:
    store.conn.execute(
        "INSERT OR IGNORE INTO inbox_messages (message_key, kind, read_on) VALUES (?, ?, ?)",
        [key, kind, today],
    )


def customer_with_address(store: Store, address: str) -> bool:
    """Whether a customer has ``address`` (in any case: the column's collation)."""
    return (
        store.conn.execute("SELECT 1 FROM customers WHERE email = ?", [address]).fetchone()
        is not None
    )


# -- what a customer's mail said about their address ----------------------------------------------


class MailBlock(NamedTuple):
    """Why no email goes to the customer now: they asked for none, or their address
    bounced for good (the server's words)."""

    do_not_email: bool
    undeliverable: str | None

    @property
    def blocked(self) -> bool:
        return self.do_not_email or self.undeliverable is not None


def mail_block(store: Store, customer_id: int) -> MailBlock:
    row = store.conn.execute(
        "SELECT do_not_email, email_undeliverable FROM customers WHERE id = ?", [customer_id]
    ).fetchone()
    return MailBlock(bool(row[0]), row[1]) if row else MailBlock(False, None)


def set_do_not_email(store: Store, customer_id: int, value: bool, today: str) -> bool:
    """True when it changed."""
    return bool(
        store.conn.execute(
            "UPDATE customers SET do_not_email = ?, updated_on = ? "
            "WHERE id = ? AND do_not_email != ?",
            [int(value), today, customer_id, int(value)],
        ).rowcount
    )


def set_undeliverable(store: Store, customer_id: int, reason: str | None, today: str) -> None:
    store.conn.execute(
        "UPDATE customers SET email_undeliverable = ?, updated_on = ? WHERE id = ?",
        [reason, today, customer_id],
    )


def undeliverable(store: Store, owner: str | None) -> Iterator[Row]:
    """Customers whose address bounced for good, with how many emails wait for a new one
    (for ``due``); ``owner``: only theirs."""
    mine = "AND c.owner = ?" if owner else ""
    for row in store.conn.execute(
        "SELECT c.id, c.email, c.external_id, c.name, c.owner, c.updated_on, "
        "c.email_undeliverable AS reason, "
        "(SELECT count(*) FROM outbox o WHERE o.customer_id = c.id AND o.status = 'held') AS held "
        f"FROM customers c WHERE c.email_undeliverable IS NOT NULL {mine} ORDER BY c.id",
        [owner] if owner else [],
    ):
        yield dict(row)

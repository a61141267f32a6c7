"""Customers: who they are (keyed by email or an external id), with tags and custom fields.

Tags and custom fields are stored as JSON text, so that ``sqlite3`` and Datasette show
them as they are; a record holds them decoded.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..errors import NotFound
from .db import DatabaseDamaged, Row, Store, insert_row, update_row
from .record import Record

# The columns a customer's values go to, in display order (``fields`` holds the custom ones).
COLUMNS = (
    "email",
    "external_id",
    "name",
    "company",
    "phone",
    "owner",
    "plan",
    "mrr",
    "seats",
    "signed_on",
    "language",
    "tags",
    "fields",
)
KEYS = ("email", "external_id", "id")


@dataclasses.dataclass(frozen=True)
class Customer(Record):
    id: int
    email: str | None
    external_id: str | None
    name: str
    company: str | None
    phone: str | None
    owner: str | None
    plan: str | None
    mrr: float | None
    seats: int | None
    signed_on: str | None
    language: str | None
    tags: tuple[str, ...]
    fields: Mapping[str, str]
    created_on: str
    updated_on: str

    @classmethod
    def from_row(cls, row: sqlite3.Row | Mapping[str, Any]) -> Customer:
        values = decode(row)
        values["tags"] = tuple(values["tags"])
        return cls(**{name: values[name] for name in cls.field_names()})

    @property
    def label(self) -> str:
        """How messages name the customer: their email, else external id, else #id."""
        return self.email or self.external_id or f"#{self.id}"


# json.dumps with options builds an encoder per call: an import encodes every row.
_TAGS = json.JSONEncoder(ensure_ascii=False).encode
_FIELDS = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
# What JSON escapes in a string when it keeps non-ASCII letters as they are.
_ESCAPED = re.compile(r'["\\\x00-\x1f]')


def _tags_json(tags: list[Any]) -> str:
    """_TAGS(tags), written directly when every tag is a string JSON keeps as it is."""
    try:
        plain = not _ESCAPED.search("".join(tags))
    except TypeError:  # not all strings
        plain = False
    if not plain:
        return _TAGS(tags)
    return '["' + '", "'.join(tags) + '"]' if tags else "[]"


def _fields_json(fields: dict[Any, Any]) -> str:
    """_FIELDS(fields), written directly when every name and value is such a string."""
    try:
        plain = not _ESCAPED.search("".join(fields) + "".join(fields.values()))
    except TypeError:
        plain = False
    if not plain:
        return _FIELDS(fields)
    return "{" + ", ".join(f'"{name}": "{fields[name]}"' for name in sorted(fields)) + "}"


def encode(values: Mapping[str, Any]) -> Row:
    """A customer's values as stored: only known columns, tags and fields as JSON."""
    row = {k: v for k, v in values.items() if k in COLUMNS}
    if "tags" in row:
        row["tags"] = _tags_json(list(row["tags"] or []))
    if "fields" in row:
        row["fields"] = _fields_json(dict(row["fields"] or {}))
    return row


_TAGS_AT, _FIELDS_AT = COLUMNS.index("tags"), COLUMNS.index("fields")


def encoded_columns(values: Mapping[str, Any]) -> list[Any]:
    """encode(values) as a list in the order of COLUMNS, None for a column not given."""
    row = [values.get(column) for column in COLUMNS]
    if "tags" in values:
        row[_TAGS_AT] = _tags_json(list(values["tags"] or []))
    if "fields" in values:
        row[_FIELDS_AT] = _fields_json(dict(values["fields"] or {}))
    return row


def decode(row: sqlite3.Row | Mapping[str, Any]) -> Row:
    # a row's values in column order: no lookup by name
    values = dict(zip(row.keys(), row, strict=True)) if isinstance(row, sqlite3.Row) else dict(row)
    try:
        # most customers have neither tags nor custom fields: no parser for those
        tags, fields = values.get("tags") or "[]", values.get("fields") or "{}"
        values["tags"] = [] if tags == "[]" else json.loads(tags)
        values["fields"] = {} if fields == "{}" else json.loads(fields)
    except ValueError as exc:  # written by funnelctl, so only damage makes it unreadable
        raise DatabaseDamaged(
            f"Customer #{values.get('id')}'s tags or custom fields cannot be read ({exc}): the "
            "database has been damaged or changed by another program; fix that customer with "
            "sqlite3, or restore your latest backup."
        ) from None
    return values


def by(store: Store, column: str, value: str | int) -> Customer | None:
    """The customer whose ``column`` (email, external_id or id) is ``value``."""
    assert column in KEYS
    row = store.conn.execute(f"SELECT * FROM customers WHERE {column} = ?", [value]).fetchone()
    return Customer.from_row(row) if row else None


def get(store: Store, customer_id: int) -> Customer | None:
    return by(store, "id", customer_id)


def many(store: Store, customer_ids: Sequence[int]) -> dict[int, Customer]:
    """The customers of ``customer_ids`` (a few hundred at a time), by id."""
    if not customer_ids:
        return {}
    marks = ", ".join("?" for _ in customer_ids)
    return {
        row["id"]: Customer.from_row(row)
        for row in store.conn.execute(
            f"SELECT * FROM customers WHERE id IN ({marks})", list(customer_ids)
        )
    }


def find(store: Store, ref: str) -> Customer:
    """A customer by email, external id or ``#id``; NotFound names what was asked for."""
    ref = ref.strip()
    found: Customer | None = None
    if ref.startswith("#") and ref[1:].isdigit():
        found = by(store, "id", int(ref[1:]))
    elif "@" in ref:
        found = by(store, "email", ref)
    if found is None:
        found = by(store, "external_id", ref)
    if found is None:
        raise NotFound(
            f"No customer {ref!r}: give an email, an external id or #id "
            "(see 'funnelctl customer list')."
        )
    return found


def owner_of(store: Store, customer_id: int) -> str | None:
    row = store.conn.execute("SELECT owner FROM customers WHERE id = ?", [customer_id]).fetchone()
    return None if row is None else row[0]


def insert(store: Store, values: Mapping[str, Any], today: str) -> int:
    row = encode(values)
    row["created_on"] = row["updated_on"] = today
    return insert_row(store, "customers", row)


def update(store: Store, customer_id: int, changes: Mapping[str, Any], today: str) -> None:
    """Change the customer's values. A new email address is not known to bounce: the
    emails held for the old one go again (the inbox marked it undeliverable)."""
    row = encode(changes)
    row["updated_on"] = today
    if "email" in row:
        row["email_undeliverable"] = None
    update_row(store, "customers", customer_id, row)
    if "email" in row:
        from . import outbox

        outbox.release_held(store, customer_id, "the customer's address changed", today)


def listing(
    store: Store,
    *,
    funnel: str | None = None,
    stage: str | None = None,
    owner: str | None = None,
    tag: str | None = None,
    limit: int | None = None,
) -> Iterator[Row]:
    """Customers as rows for output, each with its active enrollments (a ``funnel:stage``
    list), filtered; streamed, so that a book of any size lists in flat memory."""
    where: list[str] = []
    params: list[Any] = []
    if owner:
        where.append("c.owner = ?")
        params.append(owner)
    if tag:
        where.append("EXISTS (SELECT 1 FROM json_each(c.tags) WHERE value = ?)")
        params.append(tag)
    if funnel or stage:
        cond = ["e.customer_id = c.id", "e.status = 'active'"]
        if funnel:
            cond.append("e.funnel = ?")
            params.append(funnel)
        if stage:
            cond.append("e.stage = ?")
            params.append(stage)
        where.append(f"EXISTS (SELECT 1 FROM enrollments e WHERE {' AND '.join(cond)})")
    sql = (
        "SELECT c.*, (SELECT group_concat(e.funnel || ':' || e.stage, ' ') FROM enrollments e "
        "WHERE e.customer_id = c.id AND e.status = 'active') AS enrollments FROM customers c"
    )
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY c.id"
    if limit:
        sql += f" LIMIT {int(limit)}"
    for row in store.conn.execute(sql, params):
        values = decode(row)
        # stored 0/1; a script reads true/false, as customer show gives it
        values["do_not_email"] = bool(values["do_not_email"])
        yield values


def custom_field_names(store: Store) -> list[str]:
    """Every custom field name any customer has, sorted."""
    return [
        row[0]
        for row in store.conn.execute(
            "SELECT DISTINCT j.key FROM customers, json_each(customers.fields) j ORDER BY 1"
        )
    ]


def delete(store: Store, customer_id: int) -> int:
    """Erase the customer's own row: every row that refers to them must be gone first
    (the foreign keys refuse otherwise, and the transaction with them)."""
    return store.conn.execute("DELETE FROM customers WHERE id = ?", [customer_id]).rowcount

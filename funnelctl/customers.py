"""Customers: what a valid customer record is, and adding, editing and showing one.

The same cleaning rules serve ``customer add``/``edit`` and the CSV import, so
a value that one accepts the other accepts too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .dates import parse_date
from .errors import FunnelError, UsageError
from .store import (
    CUSTOMER_COLUMNS,
    Row,
    Store,
    activities,
    customers,
    enrollments,
    events,
    outbox,
    plays,
    touchpoints,
)
from .store import health as signals
from .store.customers import Customer

# Fields a customer has besides free custom fields, in display order.
FIELDS = tuple(column for column in CUSTOMER_COLUMNS if column != "fields")
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z]{2})?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Cleaner:
    """Turns raw text values into a customer's stored values; ValueError says what is wrong."""

    date_format: str | None = None

    def clean(self, field: str, raw: str) -> Any:
        value = raw.strip()
        if field == "email":
            if not _EMAIL.match(value):
                raise ValueError(f"{raw!r} is not a valid email address")
            return value.lower()
        if field == "mrr":
            try:
                number = Decimal(value.replace("_", ""))
            except InvalidOperation:
                raise ValueError(f"mrr {raw!r} is not a number (write 1200.50)") from None
            if not number.is_finite() or number < 0 or not math.isfinite(float(number)):
                raise ValueError(f"mrr {raw!r} must be a number from zero up")
            return float(number)
        if field == "seats":
            if not (value.isascii() and value.isdigit()) or int(value) > 2**63 - 1:
                raise ValueError(f"seats {raw!r} is not a whole number")
            return int(value)
        if field == "signed_on":
            try:
                return parse_date(value, self.date_format).isoformat()
            except ValueError as exc:
                hint = "" if self.date_format else " (or pass --date-format, e.g. %d/%m/%Y)"
                raise ValueError(f"signed_on: {exc}{hint}") from None
        if field == "language":
            lang = value.lower().replace("_", "-")
            if not _LANGUAGE.match(lang):
                raise ValueError(f"language {raw!r} is not a language code such as en or pt")
            return lang
        if field == "tags":
            return sorted({t.strip() for t in re.split(r"[;,]", value) if t.strip()})
        if _CONTROL.search(value):
            raise ValueError(f"{field} contains a line break or control character")
        return value


def split_name(first: str, last: str) -> str:
    return " ".join(part for part in (first.strip(), last.strip()) if part)


def first_name(name: str) -> str:
    return name.split()[0] if name.split() else ""


def changes_for(existing: Row, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values that differ from ``existing``; custom fields merge key by key."""
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key == "fields":
            merged = {**existing.get("fields", {}), **value}
            if merged != existing.get("fields", {}):
                changes["fields"] = merged
        elif key == "tags":
            if list(existing.get("tags") or ()) != list(value or ()):
                changes[key] = value
        elif existing.get(key) != value:
            changes[key] = value
    return changes


def parse_assignments(pairs: list[str], cleaner: Cleaner) -> dict[str, Any]:
    """``name=value`` pairs from the command line; unknown names become custom fields."""
    values: dict[str, Any] = {}
    custom: dict[str, str] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"{pair!r} must be written as field=value")
        try:
            if key in FIELDS:
                values[key] = cleaner.clean(key, raw) if raw.strip() else None
            else:
                custom[key] = cleaner.clean(key, raw)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if custom:
        values["fields"] = custom
    return values


def add_customer(store: Store, values: Mapping[str, Any], today: str) -> Row:
    email = values.get("email")
    external_id = values.get("external_id")
    if not email and not external_id:
        raise UsageError("A customer needs an email or an external id.")
    with store.write():
        for column, key in (("email", email), ("external_id", external_id)):
            if key and customers.by(store, column, key):
                raise FunnelError(
                    f"A customer with {column} {key!r} already exists; use 'funnelctl customer edit'."
                )
        customer_id = customers.insert(store, {"name": "", **values}, today)
        events.add(store, customer_id, today, "customer", "Customer added")
        added = customers.get(store, customer_id)
    assert added is not None
    return added.as_dict()


def edit_customer(store: Store, ref: str, values: Mapping[str, Any], today: str) -> Row:
    with store.write():
        customer = customers.find(store, ref)
        for column, label in (("email", "email"), ("external_id", "external id")):
            key = values.get(column)
            if key and key != getattr(customer, column):
                other = customers.by(store, column, key)
                if other and other.id != customer.id:
                    raise FunnelError(f"Another customer already has the {label} {key!r}.")
        if not values.get("email", customer.email) and not values.get(
            "external_id", customer.external_id
        ):
            raise UsageError("A customer needs an email or an external id; both cannot be empty.")
        changes = changes_for(customer.as_dict(), values)
        if changes:
            customers.update(store, customer.id, changes, today)
            if "owner" in changes:
                # The funnels follow the customer's owner unless one was assigned its own.
                enrollments.set_owner_of_active(
                    store, customer.id, changes["owner"], customer.owner
                )
            events.add(
                store, customer.id, today, "customer", "Edited: " + ", ".join(sorted(changes))
            )
        edited = customers.get(store, customer.id)
    assert edited is not None
    return edited.as_dict()


def timeline(store: Store, ref: str) -> tuple[Row, list[Row]]:
    """A customer and the whole story in date order: moves, activities, touchpoints, emails, events."""
    with store.read():
        customer = customers.find(store, ref)
        cid = customer.id
        lines: list[Row] = []
        for h in enrollments.history_of(store, cid):
            if h.kind == "enroll":
                what = f"Enrolled in {h.funnel} at {h.to_stage}"
            elif h.kind == "move":
                what = f"{h.funnel}: {h.from_stage} -> {h.to_stage}"
            elif h.kind == "reopen":
                what = f"{h.funnel}: reopened at {h.to_stage}"
            else:
                what = f"{h.funnel}: {h.kind} at {h.to_stage}"
            if h.note:
                what += f" ({h.note})"
            lines.append(_line(h.moved_on, "stage", what, h.by, 0, h.id))
        for t in touchpoints.of_customer(store, cid):
            what = f"{t.direction} {t.channel}: {t.summary}"
            lines.append(_line(t.happened_on, "touchpoint", what, t.by, 1, t.id))
        for a in activities.of_customer(store, cid):
            status = a.status if a.status != "open" else f"due {a.due_on}"
            what = f"#{a.id} {a.title} [{status}]"
            lines.append(_line(a.closed_on or a.due_on, a.kind, what, a.owner, 2, a.id))
        for o in outbox.of_customer(store, cid):
            # emails skipped as stale when queued are already told by their action's line
            if o.status == "skipped" and (o.reason or "").startswith("stale:"):
                continue
            what = f"{o.template} [{o.status}]" + (f" {o.reason}" if o.reason else "")
            lines.append(_line(o.scheduled_on, "email", what, None, 3, o.id))
        for e in events.of_customer(store, cid):
            what = e.summary if e.ok else f"FAILED: {e.summary}"
            lines.append(_line(e.happened_on, e.kind, what, None, 4, e.id))
    lines.sort(key=lambda r: (r["on"], r["_order"], r["_id"]))
    for line in lines:
        del line["_order"], line["_id"]
    return customer.as_dict(), lines


def _line(on: str, kind: str, what: str, who: str | None, order: int, row_id: int) -> Row:
    return {"on": on, "kind": kind, "what": what, "who": who, "_order": order, "_id": row_id}


# -- erasing a person, merging duplicates --------------------------------------------------------

# What erasing or merging counts, in the order people read it: name -> (table, label).
KINDS = {
    "enrollments": ("enrollments", "enrollments"),
    "stage_moves": ("stage_history", "stage moves"),
    "actions_run": ("action_runs", "automatic actions run"),
    "tasks": ("activities", "tasks"),
    "emails": ("outbox", "emails"),
    "touchpoints": ("touchpoints", "touchpoints"),
    "tickets": ("tickets", "tickets"),
    "signals": ("signals", "signals"),
    "health_snapshots": ("health_snapshots", "health snapshots"),
    "health_episodes": ("health_episodes", "health episodes"),
    "play_starts": ("play_starts", "play starts"),
    "timeline_lines": ("events", "timeline lines"),
}


def _named(by_table: Mapping[str, int]) -> dict[str, int]:
    """Counts by table, named as people and scripts read them (KINDS)."""
    return {name: by_table.get(table, 0) for name, (table, _) in KINDS.items()}


def find_customer(store: Store, ref: str) -> Customer:
    """The customer ``ref`` names (email, external id or #id); NotFound otherwise."""
    with store.read():
        return customers.find(store, ref)


def delete_customer(store: Store, ref: str) -> Row:
    """Erase a person and every row about them, in one transaction (a request under data
    protection law); what each kind of row counted. Nothing changes on any error."""
    with store.write():
        customer = customers.find(store, ref)
        sending = [o.id for o in outbox.of_customer(store, customer.id) if o.status == "sending"]
        if sending:
            raise FunnelError(
                f"An email to {customer.label} is being sent right now (e{sending[0]}): "
                "run the delete again once 'funnelctl send' has finished; nothing was deleted."
            )
        store.overwrite_deleted()
        cid = customer.id
        by_table: dict[str, int] = {
            "events": events.delete_of_customer(store, cid),
            "play_starts": plays.delete_of_customer(store, cid),
            **signals.delete_of_customer(store, cid),
            **touchpoints.delete_of_customer(store, cid),
            # tasks and emails point at the enrollments: they go first
            "outbox": outbox.delete_of_customer(store, cid),
            "activities": activities.delete_of_customer(store, cid),
            **enrollments.delete_of_customer(store, cid),
        }
        customers.delete(store, cid)
    store.checkpoint()
    return {"customer": customer.label, "id": customer.id, "deleted": _named(by_table)}


def merged_values(keep: Customer, other: Customer) -> dict[str, Any]:
    """What ``keep`` takes from ``other``: its empty fields filled, tags united, custom
    fields merged; where both have a value, ``keep``'s stays."""
    changes: dict[str, Any] = {}
    for field in FIELDS:
        if field == "tags":
            tags = sorted(set(keep.tags) | set(other.tags))
            if tags != list(keep.tags):
                changes["tags"] = tags
        elif _empty(getattr(keep, field)) and not _empty(getattr(other, field)):
            changes[field] = getattr(other, field)
    fields = dict(other.fields)
    for key, value in keep.fields.items():
        if not _empty(value) or key not in fields:
            fields[key] = value
    if fields != dict(keep.fields):
        changes["fields"] = fields
    return changes


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def merge_customers(store: Store, keep_ref: str, other_ref: str, today: str) -> Row:
    """Keep ``keep_ref``, give it ``other_ref``'s whole history and empty fields, delete
    ``other_ref``: one transaction. Refused, with nothing changed, when both are active in
    the same funnel (one customer is in a funnel once)."""
    with store.write():
        keep = customers.find(store, keep_ref)
        other = customers.find(store, other_ref)
        if keep.id == other.id:
            raise UsageError(f"{keep_ref!r} and {other_ref!r} are the same customer, {keep.label}.")
        shared = enrollments.shared_active_funnels(store, keep.id, other.id)
        if shared:
            funnels = ", ".join(repr(f) for f in shared)
            raise FunnelError(
                f"Cannot merge {other.label} into {keep.label}: both are active in the funnel "
                f"{funnels}, and a customer is in a funnel once. Close one of the two first "
                f"(funnelctl lost {other.label} --funnel {shared[0]} --reason duplicate), then "
                "merge; nothing was changed."
            )
        old, new = other.id, keep.id
        by_table: dict[str, int] = {
            **enrollments.move_to_customer(store, old, new),
            "activities": activities.move_to_customer(store, old, new),
            "outbox": outbox.move_to_customer(store, old, new),
            **touchpoints.move_to_customer(store, old, new),
            **signals.move_to_customer(store, old, new, today),
            "play_starts": plays.move_to_customer(store, old, new),
            "events": events.move_to_customer(store, old, new),
        }
        changes = merged_values(keep, other)
        customers.delete(store, old)  # first: the email or external id it hands on is unique
        if changes:
            customers.update(store, new, changes, today)
        filled = sorted(k for k in changes if k != "tags")
        summary = f"Merged {other.label} (#{old}) into this customer"
        if filled:
            summary += "; filled " + ", ".join(filled)
        events.add(store, new, today, "customer", summary)
        kept = customers.get(store, new)
    assert kept is not None
    return {
        "customer": kept.label,
        "merged": other.label,
        "moved": _named(by_table),
        "filled": filled,
        "tags": list(kept.tags),
    }

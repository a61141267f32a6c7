"""Customers: what a valid customer record is, and adding, editing and showing one.

The same cleaning rules serve ``customer add``/``edit`` and the CSV import, so
a value that one accepts the other accepts too.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import TYPE_CHECKING, Any

from .dates import days_between, parse_date, relative
from .errors import FunnelError, UsageError
from .refs import ref as ref_of
from .store import (
    CUSTOMER_COLUMNS,
    Row,
    Store,
    activities,
    customers,
    enrollments,
    events,
    inbox,
    outbox,
    plays,
    touchpoints,
)
from .store import health as signals
from .store.activities import Task
from .store.customers import Customer
from .store.enrollments import Enrollment, HistoryEntry
from .store.events import Event
from .store.outbox import OutboxEmail

if TYPE_CHECKING:
    from .playbooks import Library
    from .workspace import Settings

# Fields a customer has besides free custom fields, in display order.
FIELDS = tuple(column for column in CUSTOMER_COLUMNS if column != "fields")
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z]{2})?$")
# Line breaks and control characters, C1 ones included (\x9b starts a terminal escape
# sequence on some terminals), and the explicit text-direction controls, which make a
# name display as something other than what it holds ("Rita \u202eexe.txt").
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# The longest name, company, phone, owner, plan or external id kept: enough for any real
# one, and a 5,000-character value pasted by mistake (or by someone hostile) does not
# become an email's subject or a screenful of a customer's card.
MAX_TEXT = 300
_DIRECTION = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_TAG_SEPARATORS = re.compile(r"[;,]")
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# An amount written as digits with a decimal point or none (money._PLAIN): most amounts.
_PLAIN_AMOUNT = re.compile(r"(\d+)(?:\.(\d+))?")
_LARGEST_SEATS = 2**63 - 1


@dataclass(frozen=True)
class Cleaner:
    """Turns raw text values into a customer's stored values; ValueError says what is wrong."""

    date_format: str | None = None
    # The decimal mark of amounts (mrr): None reads them as Python does (1200.50);
    # "." or "," reads exports' amounts (1,250.00, € 149,00), see money.py. ``decimal_given``
    # is false when the mark was taken from the file's delimiter: ambiguous values fail.
    decimal: str | None = None
    decimal_given: bool = True

    def clean(self, field: str, raw: str) -> Any:
        value = raw.strip()
        if field == "email":
            if len(value) > 254 or not _EMAIL.match(value):  # 254: the longest SMTP allows
                raise ValueError(f"{raw!r} is not a valid email address")
            return value.lower()
        if field == "mrr":
            return self._amount(raw)
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
            return sorted({t.strip() for t in _TAG_SEPARATORS.split(value) if t.strip()})
        bad = _CONTROL.search(value)
        if bad and bad.group() in _DIRECTION:
            raise ValueError(
                f"{field} contains a text-direction control (U+{ord(bad.group()):04X}), "
                "which would show it as other text than it holds"
            )
        if bad:
            raise ValueError(f"{field} contains a line break or control character")
        if field in FIELDS and len(value) > MAX_TEXT:
            raise ValueError(
                f"{field} is {len(value):,} characters long: {MAX_TEXT} at most "
                f"(it starts {value[:30]!r})"
            )
        return value

    def for_field(self, field: str) -> Callable[[str], Any]:
        """``clean`` for one field, as a function of the raw value: the same values and the
        same errors, with the checks of a valid value made at the least cost (an import
        cleans every cell of a file). A value the shortcut does not settle goes through
        ``clean`` itself, which gives the value or the message."""
        shortcuts: dict[str, Callable[[str], Any]] = {
            "email": self._email,
            "seats": self._seats,
            "language": self._language,
            "tags": self._tags,
        }
        if self.decimal == ".":
            shortcuts["mrr"] = self._mrr
        if self.date_format is None:
            shortcuts["signed_on"] = self._iso_day
        if field in shortcuts:
            return shortcuts[field]
        if field in ("mrr", "signed_on"):
            return partial(self.clean, field)
        return partial(self._text, field)

    def _text(self, field: str, raw: str) -> str:
        value = raw.strip()
        if _CONTROL.search(value) or len(value) > MAX_TEXT:
            return str(self.clean(field, raw))
        return value

    def _email(self, raw: str) -> str:
        value = raw.strip()
        if len(value) <= 254 and _EMAIL.match(value):
            return value.lower()
        return str(self.clean("email", raw))

    def _seats(self, raw: str) -> int:
        value = raw.strip()
        if value.isascii() and value.isdigit() and len(value) < 19:
            return int(value)
        return int(self.clean("seats", raw))

    def _iso_day(self, raw: str) -> str:
        """An ISO date is its own isoformat(): only its calendar and its years to check."""
        value = raw.strip()
        if len(value) == 10 and value.isascii() and _ISO_DAY.fullmatch(value):
            year = int(value[:4])
            if 1900 <= year <= 9000:
                try:
                    date(year, int(value[5:7]), int(value[8:10]))
                except ValueError:
                    pass
                else:
                    return value
        return str(self.clean("signed_on", raw))

    def _language(self, raw: str) -> str:
        value = raw.strip().lower().replace("_", "-")
        return value if _LANGUAGE.match(value) else str(self.clean("language", raw))

    def _tags(self, raw: str) -> list[str]:
        return sorted({t.strip() for t in _TAG_SEPARATORS.split(raw.strip()) if t.strip()})

    def _mrr(self, raw: str) -> float:
        """money.parse_amount's first case, then _amount's checks (float() of that Decimal
        is float() of its text)."""
        plain = _PLAIN_AMOUNT.fullmatch(raw.strip())
        if plain is not None and (self.decimal_given or len(plain.group(2) or "") != 3):
            amount = float(f"{plain.group(1)}.{plain.group(2) or '0'}")
            if math.isfinite(amount):
                return amount
        return float(self.clean("mrr", raw))

    def _amount(self, raw: str) -> float:
        """An mrr value: as Python reads numbers, or as an export writes amounts."""
        value = raw.strip()
        if self.decimal is not None:
            from .money import parse_amount

            try:
                amount = parse_amount(value, self.decimal, given=self.decimal_given)
            except ValueError as exc:
                raise ValueError(f"mrr {exc}") from None
            if amount < 0 or not math.isfinite(float(amount)):
                raise ValueError(f"mrr {raw!r} must be a number from zero up")
            return float(amount)
        try:
            number = Decimal(value.replace("_", ""))
        except InvalidOperation:
            raise ValueError(f"mrr {raw!r} is not a number (write 1200.50)") from None
        if not number.is_finite() or number < 0 or not math.isfinite(float(number)):
            raise ValueError(f"mrr {raw!r} must be a number from zero up")
        return float(number)


def split_name(first: str, last: str) -> str:
    return " ".join(part for part in (first.strip(), last.strip()) if part)


# What may follow a comma in a name without being a first name: "John Smith, Jr.".
_NAME_SUFFIXES = frozenset(
    {"jr", "sr", "ii", "iii", "iv", "phd", "md", "esq", "mba", "inc", "ltd", "llc"}
)


def first_name(name: str) -> str:
    """The name to greet: "Ann Lee" gives Ann, and so does "Lee, Ann" (last name first, as
    CRMs and directories write it); "John Smith, Jr." gives John."""
    parts = [part.strip() for part in name.split(",")]
    if len(parts) >= 2 and parts[0] and parts[1]:
        given = parts[1].split()[0].strip(".;:")
        if given and given.lower() not in _NAME_SUFFIXES:
            return given
    words = parts[0].split() or name.replace(",", " ").split()
    return words[0] if words else ""


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


def edit_customer(
    store: Store,
    ref: str,
    values: Mapping[str, Any],
    today: str,
    *,
    add_tags: Sequence[str] = (),
    remove_tags: Sequence[str] = (),
    do_not_email: bool | None = None,
) -> Row:
    """Change the customer's ``values``; then add ``add_tags`` to their tags (those given
    in ``values``, else the ones they have) and take ``remove_tags`` away (a tag they do
    not have is no matter). ``do_not_email`` (not None): send them no more email, or
    allow it again."""
    with store.write():
        customer = customers.find(store, ref)
        if do_not_email is not None and inbox.set_do_not_email(
            store, customer.id, do_not_email, today
        ):
            what = "no more email, by hand" if do_not_email else "email allowed again, by hand"
            events.add(store, customer.id, today, "customer", f"Edited: {what}")
        if add_tags or remove_tags:
            tags = set(values.get("tags", customer.tags) or ())  # --set tags= clears them
            values = {**values, "tags": sorted((tags | set(add_tags)) - set(remove_tags))}
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
        block = inbox.mail_block(store, customer.id)
    assert edited is not None
    if do_not_email is None and not block.blocked:
        return edited.as_dict()
    return {
        **edited.as_dict(),
        "do_not_email": block.do_not_email,
        "email_undeliverable": block.undeliverable,
    }


def _timeline(
    store: Store, cid: int, tasks: Sequence[Task], emails: Sequence[OutboxEmail]
) -> list[Row]:
    """Every line of the customer's story: moves, timeline lines, touchpoints, tasks and
    emails, by day. Within a day, what was written comes in the order it was written
    (:func:`_written_order`), then the day's touchpoints, tasks and emails."""
    history = enrollments.history_of(store, cid)
    notes = events.of_customer(store, cid)
    order = _written_order(history, notes)
    keyed: list[tuple[tuple[Any, ...], Row]] = []
    for h in history:
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
        keyed.append(
            ((h.moved_on, 0, *order[("stage", h.id)]), _line(h.moved_on, "stage", what, h.by))
        )
    for e in notes:
        what = e.summary if e.ok else f"FAILED: {e.summary}"
        keyed.append(
            ((e.happened_on, 0, *order[("event", e.id)]), _line(e.happened_on, e.kind, what, None))
        )
    for t in touchpoints.of_customer(store, cid):
        what = f"{t.direction} {t.channel}: {t.summary}"
        keyed.append(
            ((t.happened_on, 1, 0, 0, t.id), _line(t.happened_on, "touchpoint", what, t.by))
        )
    for a in tasks:
        status = a.status if a.status != "open" else f"due {a.due_on}"
        what = f"{ref_of('task', a.id)} {a.title} [{status}]"
        on = a.closed_on or a.due_on
        keyed.append(((on, 2, 0, 0, a.id), _line(on, a.kind, what, a.owner)))
    for o in emails:
        # emails skipped as stale when queued are already told by their action's line
        if o.status == "skipped" and (o.reason or "").startswith("stale:"):
            continue
        what = f"{ref_of('email', o.id)} {o.template} [{o.status}]" + (
            f" {o.reason}" if o.reason else ""
        )
        keyed.append(((o.scheduled_on, 3, 0, 0, o.id), _line(o.scheduled_on, "email", what, None)))
    keyed.sort(key=lambda item: item[0])
    return [line for _, line in keyed]


def _written_order(
    history: Sequence[HistoryEntry], notes: Sequence[Event]
) -> dict[tuple[str, int], tuple[int, int, int]]:
    """Where each stage move and timeline line of a day goes: the order they were written.

    The two tables are numbered apart, so their ids cannot be compared; but a stage visit's
    automatic actions write their lines (``source`` "funnel/stage #n") right after the move
    that began it. So each move goes just before the first line of its visit, and a move
    whose visit wrote no line goes just before the next move that did (else after the
    day's lines). Returns a sort key per ("stage"|"event", id), within its day.
    """
    per_day: dict[str, list[Event]] = defaultdict(list)
    for e in notes:
        per_day[e.happened_on].append(e)
    order: dict[tuple[str, int], tuple[int, int, int]] = {}
    for lines in per_day.values():
        lines.sort(key=lambda e: e.id)
        for index, e in enumerate(lines):
            order[("event", e.id)] = (index, 1, e.id)
    moves_per_day: dict[str, list[HistoryEntry]] = defaultdict(list)
    for h in history:
        moves_per_day[h.moved_on].append(h)
    for day, moves in moves_per_day.items():
        moves.sort(key=lambda h: h.id)
        lines = per_day.get(day, [])
        anchors: list[int | None] = []
        after = -1
        for h in moves:
            prefix = f"{h.funnel}/{h.to_stage} #"
            found = next(
                (
                    i
                    for i in range(after + 1, len(lines))
                    if (lines[i].source or "").startswith(prefix)
                ),
                None,
            )
            if found is not None:
                after = found
            anchors.append(found)
        following = len(lines)
        for h, anchor in reversed(list(zip(moves, anchors, strict=True))):
            if anchor is None:
                anchor = following
            following = anchor
            order[("stage", h.id)] = (anchor, 0, h.id)
    return order


def is_folded(line: Mapping[str, Any]) -> bool:
    """A line the card folds away unless asked: an automatic action skipped because its
    condition was false (routine: the playbook decided, nothing happened)."""
    what = str(line.get("what") or "")
    return (
        line.get("kind") == "action"
        and what.startswith("Skipped (")
        and what.endswith("condition is false")
    )


def _line(on: str, kind: str, what: str, who: str | None) -> Row:
    return {"on": on, "kind": kind, "what": what, "who": who}


# -- the card: what a consultant reads first about a customer -----------------------------------


def customer_card(store: Store, ref: str, today: str, library: Library, settings: Settings) -> Row:
    """The customer's record, their enrollments (stage title, days in the stage), their
    health scored now (None without a health model), open tasks and queued emails with
    their references, and the timeline: one consistent read."""
    from .health import score_customer  # health reads customers' rules: imported when used

    with store.read():
        customer = customers.find(store, ref)
        cid = customer.id
        health = None
        if library.health is not None:
            scored = score_customer(store, library, settings, library.health, customer, today)
            health = {
                "score": scored.score,
                "at_risk": scored.at_risk,
                "at_risk_below": library.health.at_risk_below,
                "reasons": scored.reasons,
                "opportunities": [title for _, title in scored.opportunities],
            }
        tasks = activities.of_customer(store, cid)  # read once: the lists and the timeline
        emails = outbox.of_customer(store, cid)
        open_tasks = sorted(
            (a for a in tasks if a.status == "open"), key=lambda a: (a.due_on, a.id)
        )
        queued = sorted(
            (o for o in emails if o.status == "queued"), key=lambda o: (o.scheduled_on, o.id)
        )
        block = inbox.mail_block(store, cid)
        return {
            **customer.as_dict(),
            "do_not_email": block.do_not_email,  # they asked for no more email
            "email_undeliverable": block.undeliverable,  # why their address bounced
            "enrollments": [
                _enrollment(e, library, today) for e in enrollments.of_customer(store, cid)
            ],
            "health": health,
            "open_tasks": [
                {
                    "ref": ref_of("task", a.id),
                    "id": a.id,
                    "title": a.title,
                    "due_on": a.due_on,
                    "due": relative(a.due_on, today),
                    "owner": a.owner,
                }
                for a in open_tasks
            ],
            "queued_emails": [
                {
                    "ref": ref_of("email", o.id),
                    "id": o.id,
                    "template": o.template,
                    "scheduled_on": o.scheduled_on,
                    "when": relative(o.scheduled_on, today),
                    "partner": o.partner,
                }
                for o in queued
            ],
            "timeline": _timeline(store, cid, tasks, emails),
        }


def _enrollment(e: Enrollment, library: Library, today: str) -> Row:
    funnel = library.funnels.get(e.funnel)
    stage = next((s for s in funnel.stages if s.id == e.stage), None) if funnel else None
    return {
        "id": e.id,
        "funnel": e.funnel,
        "funnel_title": funnel.title if funnel else None,
        "stage": e.stage,
        "stage_title": stage.title if stage else None,
        "status": e.status,
        "entered_on": e.entered_on,
        "days_in_stage": days_between(e.entered_on, today) if e.active else None,
        "owner": e.owner,
        "closed_on": e.closed_on,
        "close_reason": e.close_reason,
    }


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
        signals.forget_customer(store, cid)
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
            close = f"funnelctl lost {other.label} --funnel {shared[0]} --reason duplicate"
            if len(shared) == 1:
                where, close = f"the funnel {shared[0]!r}", f"Close one of the two first ({close})"
            else:
                names = ", ".join(repr(f) for f in shared[:-1]) + f" and {shared[-1]!r}"
                where = f"the funnels {names}"
                close = f"Close one of the two in each first ({close}, and so on)"
            raise FunnelError(
                f"Cannot merge {other.label} into {keep.label}: both are active in {where}, "
                f"and a customer is in a funnel once. {close}, then merge; nothing was changed."
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
        # one person: if either record asked for no more email, the person did; and an
        # address that bounced still bounces when the kept record takes it on
        block = inbox.mail_block(store, old)
        customers.delete(store, old)  # first: the email or external id it hands on is unique
        signals.forget_customer(store, old)  # the moves have marked the customer kept
        if block.do_not_email:
            inbox.set_do_not_email(store, new, True, today)
        if changes:
            customers.update(store, new, changes, today)
        if "email" in changes and block.undeliverable:
            inbox.set_undeliverable(store, new, block.undeliverable, today)
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

"""The morning list: what needs doing, in sections a consultant works down.

- **overdue**: tasks past their day, emails that should have gone;
- **today**: tasks due today, emails to send today;
- **attention**: one item per customer and problem. First what keeps emails from
  going: an address that bounced for good (the inbox read the bounce), to be fixed; an
  email that will be skipped as stale, failed, is uncertain, or was superseded this
  week. Then a customer at risk (today's score and reasons) and a stage visit that is
  stuck (stagnant, quiet, no next step: all its reasons on one item);
- **coming**: what falls due within ``days``;
- **waiting**: tasks partners hold (they were emailed; you wait on them).

Each item keeps the documented keys (kind, id, customer, funnel, stage, title,
due_on, days_overdue, owner) and adds ``ref`` (t12, e7: what the user types next),
``section`` and ``reasons``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

from .dates import days_between, shift
from .outline import Outline
from .refs import ref
from .store import Row, Store, due
from .store import inbox as mail_state

SECTIONS = ("overdue", "today", "attention", "coming", "waiting")
SECTION_TITLES = {
    "overdue": "Overdue",
    "today": "Today",
    "attention": "Needs attention",
    "coming": "Coming up",
    "waiting": "Waiting on partners",
}
SUPERSEDED_SHOWN_DAYS = 7  # a superseded email is pointed out in the week it was due


class DueQuery(NamedTuple):
    today: str
    days: int = 0
    owner: str | None = None
    max_late_days: int = 3  # send skips a queued email later than this as stale


def due_items(store: Store, playbooks: Outline, query: DueQuery) -> Iterator[dict[str, Any]]:
    """Every item, section by section (SECTIONS order), each section in working order.

    ``playbooks``: the outline of the checked library (outline.outline(library)).
    """
    today, horizon, owner = query.today, shift(query.today, query.days), query.owner
    overdue: list[dict[str, Any]] = []
    todays: list[dict[str, Any]] = []
    coming: list[dict[str, Any]] = []
    waiting: list[dict[str, Any]] = []
    for row in due.tasks(store, until=horizon, after=None, owner=owner):
        partner = _partner_of(row)
        if partner is not None:
            waiting.append(_partner_item(row, today, playbooks, partner))
            continue
        item = _task_item(row, today)
        _by_day(item, overdue, todays, coming)
    stale: list[dict[str, Any]] = []
    for row in due.emails(store, until=horizon, after=None, owner=owner):
        item = _email_item(row, today)
        late = item["days_overdue"]
        if late > query.max_late_days and not row["attempts"]:
            item["section"] = "attention"
            item["title"] = f"Email {row['template']!r} will be skipped as stale"
            item["reasons"] = [
                f"due {row['scheduled_on']}, more than max_late_days "
                f"({query.max_late_days}) ago: requeue it (outbox requeue {item['ref']}) "
                "or let it go"
            ]
            stale.append(item)
        else:
            _by_day(item, overdue, todays, coming)
    overdue.sort(key=lambda i: (-i["days_overdue"], i["kind"] != "task", i["id"] or 0))
    yield from overdue
    yield from todays
    # needs attention: first what keeps funnelctl's own emails from going (each with the
    # command that unblocks it), which a screenful must not push off below the customers
    # at risk and the stuck stage visits
    yield from _undeliverable(store, query)
    yield from stale  # skipped by the next send unless requeued
    yield from _email_problems(store, query)
    yield from _attention(store, playbooks, query)
    coming.sort(key=lambda i: (i["due_on"], i["kind"] != "task", i["id"] or 0))
    yield from coming
    yield from waiting


def _by_day(
    item: dict[str, Any],
    overdue: list[dict[str, Any]],
    todays: list[dict[str, Any]],
    coming: list[dict[str, Any]],
) -> None:
    late = item["days_overdue"]
    section, target = (
        ("overdue", overdue) if late > 0 else ("today", todays) if late == 0 else ("coming", coming)
    )
    item["section"] = section
    target.append(item)


def _item(kind: str, row: Row, today: str, **extra: Any) -> dict[str, Any]:
    due_on = extra.pop("due_on", None) or row.get("due_on")
    item_id = row.get("id") if kind in ("task", "email") else None
    return {
        "kind": kind,
        "id": item_id,
        "ref": ref(kind, item_id) if item_id is not None else None,
        "section": extra.pop("section", None),
        "customer": row["email"] or row.get("external_id"),
        "name": row.get("name") or None,
        "funnel": row.get("funnel"),
        "stage": row.get("stage"),
        "title": extra.pop("title", None) or row.get("title"),
        "due_on": due_on,
        "days_overdue": days_between(due_on, today) if due_on else 0,
        "owner": row.get("owner"),
        "reasons": extra.pop("reasons", []),
        **extra,
    }


def _task_item(row: Row, today: str) -> dict[str, Any]:
    # an open task's note says why it may no longer be needed (its episode ended)
    return _item(
        "task",
        row,
        today,
        reasons=[row["note"]] if row.get("note") else [],
        channel=row["channel"],
        sourcing=row["sourcing"],
        task_kind=row["kind"],
    )


def _email_item(row: Row, today: str) -> dict[str, Any]:
    title = f"Email {row['template']!r} to send"
    return _item("email", row, today, due_on=row["scheduled_on"], title=title)


def _partner_of(row: Row) -> str | None:
    owner = row.get("owner") or ""
    return owner.removeprefix("partner:") if owner.startswith("partner:") else None


def _partner_item(row: Row, today: str, playbooks: Outline, partner_id: str) -> dict[str, Any]:
    """A task a partner holds: they were emailed it; the consultant waits on it."""
    item = _task_item(row, today)
    item["section"] = "waiting"
    item["partner"] = partner_id
    item["title"] = f"{playbooks.partners.get(partner_id, partner_id)}: {row['title']}"
    return item


# -- needs attention -------------------------------------------------------------------------


def _attention(store: Store, playbooks: Outline, query: DueQuery) -> Iterator[dict[str, Any]]:
    """Customers at risk (worst first), then stuck stage visits (longest first)."""
    for row in due.at_risk(store, query.today, query.owner):
        reasons = json.loads(row["reasons"] or "[]")
        score = row["score"]
        title = "At risk" + (f" ({score:g})" if score is not None else "")
        yield _item(
            "at-risk",
            row,
            query.today,
            section="attention",
            due_on=row["started_on"],
            title=title,
            score=score,
            reasons=reasons,
        )
    yield from _stuck(store, playbooks, query)


def _stuck(store: Store, playbooks: Outline, query: DueQuery) -> Iterator[dict[str, Any]]:
    """One item per stuck stage visit, with every reason it is stuck: too long in the
    stage, too long without a touchpoint, nothing planned next."""
    today = query.today
    found: dict[int, dict[str, Any]] = {}

    def add(row: Row, alert: str, since: str, reason: str) -> None:
        item = found.get(row["id"])
        if item is None:
            item = found[row["id"]] = _item(
                "stagnation", row, today, section="attention", due_on=since, alert=alert
            )
            item["alerts"] = []
        elif since < item["due_on"]:
            item["due_on"], item["days_overdue"] = since, days_between(since, today)
        item["alerts"].append(alert)
        item["reasons"].append(reason)

    for stage in playbooks.stages:
        limits = [d for d in (stage.stagnant_after, stage.quiet_after) if d is not None]
        # one read serves both alerts: whoever entered by the later of their cutoffs
        rows = (
            list(
                due.in_stage_since(
                    store, stage.funnel, stage.id, shift(today, -min(limits)), query.owner
                )
            )
            if limits
            else []
        )
        if stage.stagnant_after is not None:
            # stagnant on the day the limit is reached: entered on the 2nd with 1d,
            # stagnant on the 3rd
            cutoff = shift(today, -stage.stagnant_after)
            for row in rows:
                if row["entered_on"] > cutoff:
                    continue
                days = days_between(row["entered_on"], today)
                add(
                    row,
                    "stagnant",
                    shift(row["entered_on"], stage.stagnant_after),
                    f"in {stage.id} for {_days(days)} (limit {stage.stagnant_after})",
                )
        if stage.quiet_after is not None:
            cutoff = shift(today, -stage.quiet_after)
            for row in rows:
                since = max(row["entered_on"], row["last_touch"] or "")
                if since > cutoff:
                    continue
                days = days_between(since, today)
                what = (
                    "no touchpoint"
                    if row["last_touch"] and row["last_touch"] == since
                    else "no touchpoint since entering"
                )
                add(
                    row,
                    "quiet",
                    shift(since, stage.quiet_after),
                    f"{what} for {_days(days)} (limit {stage.quiet_after})",
                )
        if stage.advance_after is None:
            for row in due.idle(store, stage.funnel, stage.id, query.owner):
                # since the last task was closed: finishing the work is not a months-old lapse
                since = min(row["idle_since"], today)  # (a --today before a task's close)
                add(row, "no-next-step", since, f"nothing planned in {stage.id}")
    for item in found.values():
        item["title"] = _stuck_title(item["alerts"])
    yield from sorted(found.values(), key=lambda i: (-i["days_overdue"], i["customer"] or ""))


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def _stuck_title(alerts: list[str]) -> str:
    words = {"stagnant": "stuck", "quiet": "quiet", "no-next-step": "no next step"}
    return ", ".join(words[a] for a in alerts).capitalize()


def _email_problems(store: Store, query: DueQuery) -> Iterator[dict[str, Any]]:
    """Emails that need a decision: failed, uncertain, or superseded this week."""
    since = shift(query.today, -SUPERSEDED_SHOWN_DAYS)
    for row in due.email_problems(store, query.today, since, query.owner):
        status = row["status"]
        item = _email_item(row, query.today)
        item["section"] = "attention"
        if status == "superseded":
            item["title"] = f"Email {row['template']!r} not sent: superseded"
            advice = f"outbox requeue {item['ref']} sends it after all"
        elif status in ("uncertain", "sending"):  # sending: a run stopped mid-way
            item["title"] = f"Email {row['template']!r} may not have gone"
            advice = f"check, then outbox resolve {item['ref']} --sent or --resend"
        else:
            item["title"] = f"Email {row['template']!r} failed"
            advice = f"fix it, then outbox resolve {item['ref']} --resend"
        item["reasons"] = [r for r in (row["reason"], advice) if r]
        yield item


def _undeliverable(store: Store, query: DueQuery) -> Iterator[dict[str, Any]]:
    """Customers whose address bounced for good: their emails wait for a new one."""
    for row in mail_state.undeliverable(store, query.owner):
        item = _item(
            "address",
            row,
            query.today,
            section="attention",
            due_on=row["updated_on"],
            title="Address bounced: fix it",
        )
        held = f"{row['held']} email(s) held; " if row["held"] else ""
        who = row["email"] or row["external_id"]
        item["reasons"] = [
            row["reason"],
            f"{held}funnelctl customer edit {who} --email NEW sends them to the new address",
        ]
        yield item

"""The demo book that `funnelctl init --demo` loads, dated relative to today.

The data files under funnelctl/demo/ give every date as days before today,
so the sample always looks current: some tasks overdue, some customers stuck,
some at risk, whatever day it is loaded.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

from .activities import record_touchpoint
from .customers import Cleaner
from .engine import Engine
from .playbooks import Library
from .store import Store, customers, enrollments, events, health
from .store import activities as tasks
from .workspace import Settings

DEMO_TEAM = ("ana", "bruno")
# Tasks a week each can do: the report's projection shows ana over capacity in some weeks.
DEMO_CAPACITY = {"ana": 10, "bruno": 12}


def _rows(name: str) -> Iterator[dict[str, str]]:
    path = Path(str(resources.files("funnelctl"))) / "demo" / name
    with path.open(encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f)


def load_demo(store: Store, library: Library, settings: Settings, today: str) -> dict[str, int]:
    """Load the sample customers, their stage history, touchpoints and signals."""
    day = date.fromisoformat(today)

    def ago(days: str) -> str:
        return (day - timedelta(days=int(days))).isoformat()

    cleaner = Cleaner()
    ids: dict[str, int] = {}
    for row in _rows("customers.csv"):
        values = {
            "email": cleaner.clean("email", row["email"]),
            "name": row["name"],
            "company": row["company"],
            "phone": row["phone"] or None,
            "owner": row["owner"],
            "plan": row["plan"],
            "mrr": float(row["mrr"]),
            "seats": int(row["seats"]),
            "signed_on": ago(row["signed_days_ago"]),
            "language": row["language"],
            "tags": cleaner.clean("tags", row["tags"]),
            "fields": {"industry": row["industry"]} if row.get("industry") else {},
        }
        signed = values["signed_on"]
        ids[values["email"]] = customers.insert(store, values, signed)
        events.add(store, ids[values["email"]], signed, "customer", "Customer added (demo)")
    engine = Engine(store, library, settings, today, "demo")
    for row in _rows("moves.csv"):
        email, funnel_id, stage, on = (
            row["email"].lower(),
            row["funnel"],
            row["stage"],
            ago(row["days_ago"]),
        )
        funnel = library.funnel(funnel_id)
        note = row.get("note") or None
        current = enrollments.latest_in(store, ids[email], funnel_id)
        if current is not None and current.active:
            # The consultant did the work of the stage being left.
            tasks.done_in_demo(store, current.id, current.entered_on, on)
        if stage.startswith("@"):
            if current is not None and current.active:
                engine.close(current, stage[1:], reason=note, on=on)
        elif current is None or not current.active:
            customer = customers.get(store, ids[email])
            assert customer is not None
            engine.enroll(customer, funnel, stage, on=on, note=note)
        elif current.stage != stage:
            engine.move(current, funnel, stage, on=on, note=note)
    # A consultant keeps up with most of the work: only the last fortnight's tasks are
    # still open, so the demo's list looks like a real morning rather than a backlog.
    tasks.all_done_before_in_demo(store, (day - timedelta(days=14)).isoformat())
    touches = 0
    # Logged as `funnelctl log` logs them, on the day they happened: a reply skips the
    # emails that waited for it and drops the tasks it makes needless ("Call the customer").
    for row in _rows("touchpoints.csv"):
        on = ago(row["days_ago"])
        customer = customers.get(store, ids[row["email"].lower()])
        assert customer is not None
        record_touchpoint(
            store,
            library,
            settings,
            customer,
            channel=row["channel"],
            direction=row["direction"],
            summary=row["summary"],
            on=on,
            today=on,
            by="demo",
        )
        touches += 1
    measured = 0
    for row in _rows("signals.csv"):
        on = ago(row["days_ago"])
        health.add_signal(
            store,
            customer_id=ids[row["email"].lower()],
            metric=row["metric"],
            value=float(row["value"]),
            measured_on=on,
            source="demo",
            today=on,
        )
        measured += 1
    return {"customers": len(ids), "touchpoints": touches, "signals": measured}

#!/usr/bin/env python3
"""Build a large funnelctl workspace directly in SQL, for timing the daily commands.

    python benchmarks/build_workspace.py DIR --customers 100000 --activities 1000000 \
        [--today 2026-11-23] [--due 60] [--stuck N] [--signals N] [--seed 1]

Most of the book is history: done tasks, customers in the 30/60/90-day
follow-up stages or closed. A fixed number of things are due whatever the size
(``--due`` overdue or due-today tasks, and as many stagnant enrollments unless
``--stuck`` says otherwise), so comparing a small and a large workspace shows
whether `due` costs what is due or what is stored. ``--due N --stuck 0`` with N
customers and N activities gives every customer exactly one item due. Run by
hand; never in CI.
"""

from __future__ import annotations

import argparse
import random
from datetime import date, timedelta
from pathlib import Path

from funnelctl.store import Store
from funnelctl.workspace import init_workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--today", default="2026-11-23")
    parser.add_argument("--due", type=int, default=60, help="tasks due or overdue today")
    parser.add_argument(
        "--stuck", type=int, help="stagnant enrollments (default: as many as --due)"
    )
    parser.add_argument("--signals", type=int, default=0, help="signals spread over the customers")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    today = date.fromisoformat(args.today)

    def iso(days_ago: int) -> str:
        return (today - timedelta(days=days_ago)).isoformat()

    workspace = init_workspace(args.dir, team=("ana", "bruno"))
    store = Store.open(workspace.db_path, create=True)
    n = args.customers
    with store.write():
        store.conn.executemany(
            "INSERT INTO customers (id, email, name, owner, plan, signed_on, created_on, updated_on) "
            "VALUES (?, ?, ?, ?, 'growth', ?, ?, ?)",
            (
                (
                    i,
                    f"customer{i}@example.com",
                    f"Customer {i}",
                    ("ana", "bruno")[i % 2],
                    iso(200),
                    iso(200),
                    iso(200),
                )
                for i in range(1, n + 1)
            ),
        )
        # Enrollments: most in follow-up stages (time-based, never stagnant), a few stuck.
        n_stuck = args.due if args.stuck is None else args.stuck
        stuck = set(rng.sample(range(1, n + 1), min(n_stuck, n)))

        def enrollment(i: int) -> tuple:
            if i in stuck:
                return (i, i, "after-sales", "deployment", iso(45), "active", iso(60))
            if i % 3 == 0:
                return (i, i, "after-sales", "approved", iso(100), "won", iso(200))
            stage = ("follow-up-30", "follow-up-60", "follow-up-90")[i % 3]
            return (i, i, "after-sales", stage, iso(rng.randrange(0, 29)), "active", iso(150))

        store.conn.executemany(
            "INSERT INTO enrollments (id, customer_id, funnel, stage, entered_on, status, started_on, "
            "visit_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (enrollment(i) + (i,) for i in range(1, n + 1)),
        )
        store.conn.executemany(
            "INSERT INTO stage_history (id, enrollment_id, customer_id, funnel, kind, to_stage, moved_on, by) "
            "VALUES (?, ?, ?, 'after-sales', 'enroll', 'demand-analysis', ?, 'bench')",
            ((i, i, i, iso(200)) for i in range(1, n + 1)),
        )
        due_now = set(rng.sample(range(args.activities), min(args.due, args.activities)))

        def activity(k: int) -> tuple:
            customer = k % n + 1
            if k in due_now:
                status, due_on = "open", iso(rng.randrange(0, 10))
            elif k % 10 == 0:
                status, due_on = "open", (today + timedelta(days=rng.randrange(1, 90))).isoformat()
            else:
                status, due_on = "done", iso(rng.randrange(10, 400))
            return (
                customer,
                customer,
                f"Task {k}",
                ("ana", "bruno")[customer % 2],
                due_on,
                due_on,
                status,
                iso(400),
            )

        store.conn.executemany(
            "INSERT INTO activities (customer_id, enrollment_id, title, owner, due_on, first_due_on, "
            "status, created_on) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (activity(k) for k in range(args.activities)),
        )
        store.conn.executemany(
            "INSERT INTO touchpoints (customer_id, channel, direction, happened_on, summary, created_on) "
            "VALUES (?, 'email', 'outbound', ?, 'bench', ?)",
            ((i, iso(rng.randrange(0, 60)), iso(0)) for i in range(1, n + 1)),
        )
        metrics = ("nps", "csat", "logins", "seats_used", "tickets")
        ranges = {
            "nps": (0, 10),
            "csat": (1, 5),
            "logins": (0, 40),
            "seats_used": (0, 20),
            "tickets": (0, 5),
        }

        def signal(k: int) -> tuple:
            metric = metrics[k % len(metrics)]
            low, high = ranges[metric]
            return (k % n + 1, metric, rng.randint(low, high), iso(rng.randrange(0, 120)), iso(0))

        store.conn.executemany(
            "INSERT INTO signals (customer_id, metric, value, measured_on, created_on) "
            "VALUES (?, ?, ?, ?, ?)",
            (signal(k) for k in range(args.signals)),
        )
    # no ANALYZE: funnelctl never runs one, so a real book has no statistics, and the
    # query plans timed here must be the ones a consultant's book gets
    store.close()
    print(
        f"built {args.dir}: {n} customers, {args.activities} activities, "
        f"{args.signals} signals, {args.due} due"
    )


if __name__ == "__main__":
    main()

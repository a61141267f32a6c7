"""funnelctl report and funnelctl ticket import, against a book worked out by hand.

The book is built once per module through the real command line, one dated step at
a time (every command gets --today), in a small funnel of our own (DESK) so that
every task and email the playbook creates is known. Every expected number in the
tests is worked out in the comments next to it, from the timeline written out in
``build_book``. The period is January and February 2026; the report runs on
Wednesday 2026-03-04 (so the first workload week starts on Monday 2026-03-02).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import typer.testing
from conftest import TODAY as FIXED_TODAY
from conftest import Result, _cached_command, write
from typer.testing import CliRunner

from funnelctl.cli import app

SINCE, UNTIL, TODAY = "2026-01-01", "2026-02-28", "2026-03-04"
PERIOD = ("--since", SINCE, "--until", UNTIL, "--today", TODAY)

# Four stages, both directions allowed. Entry actions:
#   intake    task "Triage the request" due 2 days after entry        stagnant after 5 days
#   active    email check-in 10 days after entry                      stagnant after 10 days,
#                                                                      quiet after 7 days
#   retained  task "Quarterly review" due 42 days (6 weeks) after entry
#   advocate  task "Ask for a testimonial" due 28 days (4 weeks) after entry
DESK = """\
id: desk
title: Desk & care
allow_backward: true
allow_skip: true
stages:
  - id: intake
    title: Intake
    stagnant_after: 5d
    on_enter:
      - task: Triage the request
        due: 2d
  - id: active
    title: Active support
    stagnant_after: 10d
    quiet_after: 7d
    on_enter:
      - email: check-in
        delay: 10d
  - id: retained
    title: Retained
    on_enter:
      - task: Quarterly review
        due: 6w
  - id: advocate
    title: Advocate
    on_enter:
      - task: Ask for a testimonial
        due: 4w
"""

OWNERS = {
    "a@example.com": "ana",
    "b@example.com": "ana",
    "c@example.com": "bruno",
    "d@example.com": "bruno",
    "e@example.com": "ana",
    "f@example.com": "bruno",
    "g@example.com": "ana",
    "h@example.com": "bruno",
    "i@example.com": "ana",
}

# The help-desk tickets (times are naive local times):
#   T1 a  opened 01-05 09:00, answered 11:30 (2.5 h), resolved 01-06 09:00 (24 h), csat 5
#   T2 b  opened 01-20 10:00, answered 10:45 (0.75 h), resolved 01-22 16:00 (54 h), csat 3
#   T3 c  opened 02-10 08:00, answered 13:30 (5.5 h), never resolved          -> backlog
#   T4 d  opened 02-27 09:00, answered 03-02 09:00 (72 h), resolved 03-03 09:00 (96 h)
#   T5 e  opened 2025-12-30 (before the period), resolved 01-02: in no figure
#   T6 g  opened 03-03 (after the period), never resolved                    -> backlog
TICKETS = """\
id,customer,opened_at,first_response_at,resolved_at,csat
T1,a@example.com,2026-01-05T09:00,2026-01-05T11:30,2026-01-06T09:00,5
T2,b@example.com,2026-01-20T10:00,2026-01-20T10:45,2026-01-22T16:00,3
T3,c@example.com,2026-02-10T08:00,2026-02-10T13:30,,
T4,d@example.com,2026-02-27T09:00,2026-03-02T09:00,2026-03-03T09:00,
T5,e@example.com,2025-12-30T09:00,2025-12-30T10:00,2026-01-02T09:00,1
T6,g@example.com,2026-03-03T09:00,,,
"""


@contextmanager
def module_workspace(
    factory: pytest.TempPathFactory, name: str
) -> Iterator[tuple[Callable[..., Result], Path]]:
    """A workspace built once for a whole module (conftest's fixtures are per test).

    The same isolation as conftest's ``isolated``: its own home, a fixed today, a far
    time zone, no colour; restored when the block ends.
    """
    root = factory.mktemp(name)
    with pytest.MonkeyPatch.context() as mp:
        (root / "home").mkdir()
        mp.setenv("HOME", str(root / "home"))
        mp.setenv("XDG_DATA_HOME", str(root / "home" / "data"))
        mp.setenv("FUNNELCTL_TODAY", FIXED_TODAY)
        mp.setenv("TZ", "Pacific/Kiritimati")
        mp.setenv("NO_COLOR", "1")
        mp.setenv("COLUMNS", "200")
        mp.delenv("FUNNELCTL_HOME", raising=False)
        mp.chdir(root)
        mp.setattr(typer.testing, "_get_command", _cached_command)

        def run(*args: str, input: str | None = None) -> Result:
            result = CliRunner().invoke(app, list(args), input=input, catch_exceptions=False)
            return Result(result.exit_code, result.stdout, result.stderr)

        workspace = root / "ws"
        ok(run("init", str(workspace)))
        mp.setenv("FUNNELCTL_HOME", str(workspace))
        yield run, workspace


def copy_workspace(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of a module's workspace for one test, found through FUNNELCTL_HOME."""
    target = tmp_path / "ws"
    shutil.copytree(source, target)
    monkeypatch.setenv("FUNNELCTL_HOME", str(target))
    return target


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


def as_json(result):
    return json.loads(ok(result).stdout)


def open_task(run, customer: str, title: str) -> int:
    """The id of the customer's one open task with this title."""
    rows = as_json(run("export", "activities", "--format", "json"))
    ids = [
        r["id"]
        for r in rows
        if r["customer"] == customer and r["title"] == title and r["status"] == "open"
    ]
    assert len(ids) == 1, (customer, title, rows)
    return ids[0]


def build_book(run, workspace: Path) -> None:
    """The timeline, in date order. Visits are [entered, left); a close ends a visit.

    a  intake 2025-12-20 -> active 01-05 -> retained 01-25 (still there)
    b  intake 01-10 -> active 01-12 -> churned 02-10
    c  intake 01-15 -> active 01-20 -> back to intake 02-01 -> active 02-05 (still there)
    d  intake 2025-11-01 -> active 11-10 -> retained 12-01 -> advocate 2026-02-15 -> won 02-20
    e  intake 02-20 (still there)
    f  intake 2025-12-01 -> lost 01-20
    g  intake 03-01 -> active 03-04 (today)
    h  enrolled straight into retained 03-04 (today)
    i  intake 2025-10-01 -> churned 2025-12-31 (the day before the period)
    """
    write(workspace / "playbooks" / "desk.yaml", DESK)
    for email, owner in OWNERS.items():
        name = email.split("@")[0].upper()
        ok(run("customer", "add", email, "--name", name, "--owner", owner, "--today", "2025-09-01"))

    def step(*args: str, on: str) -> None:
        ok(run(*args, "--today", on))

    def log(customer: str, channel: str, direction: str, on: str) -> None:
        ok(run("log", customer, f"{direction} {channel}", "--channel", channel,
               "--direction", direction, "--on", on, "--today", on))  # fmt: skip

    def signal(customer: str, metric: str, value: str, on: str) -> None:
        ok(run("signal", customer, metric, value, "--at", on, "--today", on))

    def done(customer: str, title: str, on: str) -> None:
        step("done", str(open_task(run, customer, title)), on=on)

    step("enroll", "i@example.com", "desk", on="2025-10-01")  # task Triage due 10-03
    step("enroll", "d@example.com", "desk", on="2025-11-01")  # task Triage due 11-03
    done("d@example.com", "Triage the request", "2025-11-05")  # before the period
    step("move", "d@example.com", "active", on="2025-11-10")  # email due 11-20 (stays queued)
    step("enroll", "f@example.com", "desk", on="2025-12-01")  # task Triage due 12-03
    step("move", "d@example.com", "retained", on="2025-12-01")  # review due 2026-01-12
    signal("e@example.com", "nps", "2", "2025-12-15")  # before the period
    signal("b@example.com", "csat", "1", "2025-12-20")  # before the period
    step("enroll", "a@example.com", "desk", on="2025-12-20")  # task Triage due 12-22
    done("a@example.com", "Triage the request", "2025-12-21")  # before the period
    log("a@example.com", "email", "inbound", "2025-12-28")  # before the period
    step("churn", "i@example.com", "--funnel", "desk", on="2025-12-31")  # drops i's Triage

    # January
    log("a@example.com", "email", "inbound", "2026-01-03")  # intake
    log("a@example.com", "email", "outbound", "2026-01-04")  # intake; answers 01-03 in 1 day
    step("move", "a@example.com", "active", on="2026-01-05")  # email due 01-15 (stays queued)
    signal("f@example.com", "nps", "0", "2026-01-05")
    step("enroll", "b@example.com", "desk", on="2026-01-10")  # task Triage due 01-12
    done("d@example.com", "Quarterly review", "2026-01-10")  # due 01-12: on time (bruno)
    log("a@example.com", "phone", "inbound", "2026-01-10")  # active
    signal("a@example.com", "nps", "3", "2026-01-10")
    signal("a@example.com", "csat", "4", "2026-01-10")
    done("b@example.com", "Triage the request", "2026-01-12")  # due 01-12: on time (ana)
    step("move", "b@example.com", "active", on="2026-01-12")  # email due 01-22
    log("a@example.com", "phone", "outbound", "2026-01-12")  # active; answers 01-10 in 2 days
    log("b@example.com", "chat", "inbound", "2026-01-12")  # active (entered that day)
    step("enroll", "c@example.com", "desk", on="2026-01-15")  # task Triage due 01-17
    log("b@example.com", "email", "outbound", "2026-01-15")  # active; answers 01-12 in 3 days
    signal("b@example.com", "nps", "10", "2026-01-20")
    step("lost", "f@example.com", on="2026-01-20")  # drops f's Triage
    done("c@example.com", "Triage the request", "2026-01-20")  # due 01-17: 3 days late
    step("move", "c@example.com", "active", on="2026-01-20")  # email due 01-30 (stays queued)
    step("move", "a@example.com", "retained", on="2026-01-25")  # review due 03-08

    # February
    step("move", "c@example.com", "intake", on="2026-02-01")  # backwards; Triage due 02-03
    signal("c@example.com", "nps", "6", "2026-02-01")
    signal("c@example.com", "csat", "5", "2026-02-01")
    log("c@example.com", "phone", "inbound", "2026-02-02")  # intake
    step("snooze", str(open_task(run, "c@example.com", "Triage the request")),
         "--until", "2026-02-06", on="2026-02-03")  # fmt: skip
    step("move", "c@example.com", "active", on="2026-02-05")  # email due 02-15 (stays queued)
    log("c@example.com", "phone", "outbound", "2026-02-05")  # active; answers 02-02 in 3 days
    done("c@example.com", "Triage the request", "2026-02-08")  # first due 02-03: 5 days late
    step("churn", "b@example.com", "--funnel", "desk", on="2026-02-10")  # skips b's email
    signal("a@example.com", "nps", "9", "2026-02-10")  # a's latest answer
    step("move", "d@example.com", "advocate", on="2026-02-15")  # testimonial due 03-15
    log("d@example.com", "meeting", "outbound", "2026-02-16")  # advocate
    signal("d@example.com", "nps", "9", "2026-02-16")
    log("d@example.com", "email", "inbound", "2026-02-18")  # advocate; never answered
    step("enroll", "e@example.com", "desk", on="2026-02-20")  # task Triage due 02-22
    step("won", "d@example.com", on="2026-02-20")
    log("e@example.com", "chat", "inbound", "2026-02-25")  # intake; answered 03-02 (5 days)
    signal("g@example.com", "nps", "7", "2026-02-27")

    # March, after the period
    step("enroll", "g@example.com", "desk", on="2026-03-01")  # task Triage due 03-03
    log("c@example.com", "email", "outbound", "2026-03-01")  # keeps c from being "quiet"
    log("e@example.com", "phone", "outbound", "2026-03-02")
    signal("e@example.com", "nps", "7", "2026-03-02")  # after the period
    step("move", "g@example.com", "active", on=TODAY)  # email due 03-14
    step("enroll", "h@example.com", "desk", "--stage", "retained", on=TODAY)  # review due 04-15
    step("snooze", str(open_task(run, "a@example.com", "Quarterly review")),
         "--until", "2026-04-27", on=TODAY)  # fmt: skip
    step("snooze", str(open_task(run, "d@example.com", "Ask for a testimonial")),
         "--until", "2026-04-26", on=TODAY)  # fmt: skip
    tickets = write(workspace.parent / "tickets.csv", TICKETS)
    step("ticket", "import", str(tickets), on=TODAY)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    with module_workspace(tmp_path_factory, "report-book") as (run, workspace):
        build_book(run, workspace)
    return workspace


@pytest.fixture
def book(built, tmp_path, monkeypatch) -> Path:
    return copy_workspace(built, tmp_path, monkeypatch)


def report(run, *args: str) -> dict:
    return as_json(run("report", *PERIOD, "--format", "json", *args))


def desk(data: dict) -> dict:
    (funnel,) = [f for f in data["funnels"] if f["funnel"] == "desk"]
    return funnel


def stage(stage_id: str, title: str, **figures) -> dict:
    return {"stage": stage_id, "title": title, "closes": None, **figures}


# -- the funnel ------------------------------------------------------------------------------


def test_stage_figures(run, book):
    # In the period (01-01..02-28) the visits are, per stage ([entered, left), days):
    #   intake    a [12-20, 01-05) 16   b [01-10, 01-12) 2   c [01-15, 01-20) 5
    #             c [02-01, 02-05) 4    e [02-20, -)         f [12-01, 01-20 lost) 50
    #             (d left 2025-11-10, i left 2025-12-31, g entered 03-01: outside)
    #   active    a [01-05, 01-25) 20   b [01-12, 02-10 churned) 29
    #             c [01-20, 02-01) 12   c [02-05, -)   (d 2025: outside; g 03-04: outside)
    #   retained  a [01-25, -)          d [12-01, 02-15) 76 = 31 (Dec) + 31 (Jan) + 14
    #   advocate  d [02-15, 02-20 won) 5
    # entered = visits that began in the period; converted = of those, the ones whose
    # next step was a move further on or a win (c's 01-20 visit went backwards, b's
    # churned). median / p90 (nearest rank: the ceil(0.9 n)-th smallest) are over the
    # visits that ended in the period, wherever they began.
    # Now (2026-03-04): intake e; active c, g; retained a, h; advocate nobody (d won).
    # Stagnating now: intake e (12 days > 5); active c (27 days > 10; c's last
    # touchpoint 03-01 is within 7 days, so c is not also "quiet"); g only 0 days.
    # Touchpoints in the period, under the stage of that day:
    #   intake    email a 01-03, a 01-04; phone c 02-02; chat e 02-25
    #   active    phone a 01-10, a 01-12, c 02-05 (the day c came back); chat b 01-12
    #             (b moved that day); email b 01-15
    #   retained  none: a gap
    #   advocate  meeting d 02-16; email d 02-18
    assert desk(report(run))["stages"] == [
        stage("intake", "Intake", customers=1, entered=4, converted=3,
              conversion=0.75,  # 3 / 4: b, c, c moved on to active; e is still there
              median_days=5.0,  # sorted 2 4 5 16 50
              p90_days=50.0,  # ceil(0.9 * 5) = 5th
              stagnating=1, touchpoints={"chat": 1, "email": 2, "phone": 1}, gap=False),
        stage("active", "Active support", customers=2, entered=4, converted=1,
              conversion=0.25,  # 1 / 4: only a went on (to retained)
              median_days=20.0,  # sorted 12 20 29
              p90_days=29.0,  # ceil(0.9 * 3) = 3rd
              stagnating=1, touchpoints={"chat": 1, "email": 1, "phone": 3}, gap=False),
        stage("retained", "Retained", customers=2, entered=1, converted=0,
              conversion=0.0, median_days=76.0, p90_days=76.0,
              stagnating=0, touchpoints={}, gap=True),
        stage("advocate", "Advocate", customers=0, entered=1, converted=1,
              conversion=1.0,  # d's next step was the win
              median_days=5.0, p90_days=5.0,
              stagnating=0, touchpoints={"email": 1, "meeting": 1}, gap=False),
    ]  # fmt: skip


def test_funnel_outcomes_and_churn_rate(run, book):
    data = report(run)
    funnel = desk(data)
    # Closed in the period: d won 02-20, f lost 01-20, b churned 02-10 (i churned
    # 2025-12-31, the day before the period: not counted).
    # Active at the period start (started before 01-01, not closed before 01-01):
    # a (12-20), d (11-01, won later), f (12-01, lost later) = 3; i closed 12-31.
    # Started in the period: b (01-10), c (01-15), e (02-20) = 3.
    # churn rate = 1 churned / (3 active at the start + 3 started) = 0.167.
    assert {
        k: funnel[k] for k in ("won", "lost", "churned", "active_at_start", "started", "churn_rate")
    } == {
        "won": 1,
        "lost": 1,
        "churned": 1,
        "active_at_start": 3,
        "started": 3,
        "churn_rate": 0.167,
    }
    assert funnel["title"] == "Desk & care"
    assert funnel["active"] == 5  # e, c, g, a, h
    assert data["period"] == {"since": SINCE, "until": UNTIL}
    assert data["today"] == TODAY
    # The shipped funnels hold nobody: all zeros, every stage a gap.
    for other in data["funnels"]:
        if other["funnel"] != "desk":
            assert (other["active"], other["won"], other["lost"], other["churned"]) == (0, 0, 0, 0)
            assert other["churn_rate"] is None
            assert all(s["entered"] == 0 and s["conversion"] is None for s in other["stages"])
            assert all(s["median_days"] is None for s in other["stages"])
            # every stage is a gap but one that closes the enrollment on entry: nobody
            # stays there, so no touchpoint is missing (after-sales' approved customer)
            assert all(s["gap"] == (s["closes"] is None) for s in other["stages"])
    closing = {
        (f["funnel"], s["stage"]): s["closes"]
        for f in data["funnels"]
        for s in f["stages"]
        if s["closes"]
    }
    assert closing == {("after-sales", "approved"): "won"}


def test_satisfaction(run, book):
    # NPS, each customer's latest answer in the period:
    #   a 9 (02-10; her 3 of 01-10 is older)   b 10   c 6   d 9   f 0   g 7
    #   (e answered only 2025-12-15 and 03-02: outside the period)
    # promoters (9-10) a b d = 3; detractors (0-6) c f = 2; 6 answers
    # NPS = 100 * (3 - 2) / 6 = 16.67 -> 16.7
    # CSAT signals in the period: a 4 (01-10), c 5 (02-01) -> 4.5 (b's 1 is from 2025-12-20)
    # Ticket CSAT, tickets opened in the period: T1 5, T2 3 -> 4.0 (T5 is from December)
    assert report(run)["satisfaction"] == {
        "nps": 16.7,
        "nps_answers": 6,
        "promoters": 3,
        "detractors": 2,
        "csat": 4.5,
        "csat_answers": 2,
        "ticket_csat": 4.0,
    }


def test_support(run, book):
    # Inbound touchpoints in the period and the customer's next outbound one:
    #   a 01-03 -> 01-04 (1 day)   a 01-10 -> 01-12 (2)   b 01-12 -> 01-15 (3)
    #   c 02-02 -> 02-05 (3)       e 02-25 -> 03-02 (5, after the period is fine)
    #   d 02-18 -> never: not counted       (a 2025-12-28: before the period)
    # median of 1 2 3 3 5 = 3
    # Tickets opened in the period: T1 T2 T3 T4 (T5 before, T6 after)
    #   first response hours 2.5, 0.75, 5.5, 72 -> median (2.5 + 5.5) / 2 = 4.0
    #   resolution hours 24, 54, 96 (T3 unresolved) -> median 54, p90 ceil(2.7) = 3rd = 96
    # Backlog on 03-04: T3 (never resolved) and T6 (opened 03-03) = 2; T4 was
    # resolved 03-03, T5 01-02.
    assert report(run)["support"] == {
        "response_days_median": 3.0,
        "inbound_answered": 5,
        "tickets": 4,
        "first_response_hours_median": 4.0,
        "resolution_hours_median": 54.0,
        "resolution_hours_p90": 96.0,
        "backlog": 2,
    }


def test_owners(run, book):
    # Tasks done in the period, lateness against the first due date:
    #   ana    b's Triage due 01-12, done 01-12: on time
    #   bruno  d's review due 01-12, done 01-10: on time (early)
    #          c's Triage due 01-17, done 01-20: 3 days late
    #          c's second Triage due 02-03, snoozed to 02-06, done 02-08: 5 days late
    #          (5, not 2: a snooze does not make a task less late)
    #   (a's and d's Triage were done in 2025; f's and i's were dropped on closing)
    # Overdue on 03-04 (open, due before today):
    #   ana    e's Triage due 02-22, g's Triage due 03-03 = 2
    #   bruno  none (h's review is due 04-15, d's testimonial was snoozed to 04-26)
    assert report(run)["owners"] == [
        {"owner": "ana", "done_on_time": 1, "done_late": 0, "on_time_rate": 1.0,
         "overdue": 2, "median_days_late": None},
        {"owner": "bruno", "done_on_time": 1, "done_late": 2,
         "on_time_rate": 0.333,  # 1 / 3
         "overdue": 0, "median_days_late": 4.0},  # median of 3 and 5
    ]  # fmt: skip


def test_workload_for_the_next_eight_weeks(run, book):
    # Today is Wednesday 03-04: the weeks start on Mondays 03-02, 03-09, ... 04-20, and
    # the last one ends on Sunday 04-26.
    # Open tasks:  e's Triage 02-22 (ana, overdue) and g's Triage 03-03 (ana, overdue)
    #              -> both in the first week; h's review 04-15 (bruno) -> week 04-13;
    #              d's testimonial snoozed to Sunday 04-26 (bruno) -> week 04-20;
    #              a's review snoozed to 04-27 -> past the 8 weeks, not shown.
    # Queued emails (check-in, 10 days after entering active), owner of the enrollment:
    #   c 02-15 (bruno, c's second visit of active): late, so in the first week; g 03-14
    #   (ana, a Saturday) -> week 03-09. a's 01-15, c's first (01-30) and d's 2025-11-20
    #   were superseded when they left active; b's was skipped when b churned.
    load = {(r["week"], r["owner"]): (r["tasks"], r["emails"]) for r in report(run)["workload"]}
    weeks = ["2026-03-02", "2026-03-09", "2026-03-16", "2026-03-23",
             "2026-03-30", "2026-04-06", "2026-04-13", "2026-04-20"]  # fmt: skip
    expected = {(w, o): (0, 0) for w in weeks for o in ("ana", "bruno")}
    expected[("2026-03-02", "ana")] = (2, 0)
    expected[("2026-03-02", "bruno")] = (0, 1)
    expected[("2026-03-09", "ana")] = (0, 1)
    expected[("2026-04-13", "bruno")] = (1, 0)
    expected[("2026-04-20", "bruno")] = (1, 0)
    assert load == expected
    rows = report(run)["workload"]
    assert [(r["week"], r["owner"]) for r in rows] == sorted(expected)  # week, then owner


def test_trends_per_month(run, book):
    # Every NPS answer of the month (not only the latest per customer):
    #   January   f 0, a 3, b 10 -> promoters 1, detractors 2 -> 100 * (1 - 2) / 3 = -33.3
    #   February  c 6, a 9, d 9, g 7 -> promoters 2, detractors 1 -> 100 * 1 / 4 = 25.0
    # Churned: b on 02-10 (i's churn on 2025-12-31 is outside the period).
    assert report(run)["trends"] == [
        {"month": "2026-01", "nps": -33.3, "churned": 0},
        {"month": "2026-02", "nps": 25.0, "churned": 1},
    ]


def test_kpis_against_the_previous_period(run, book):
    # The period is 01-01..02-28 (59 days); the previous one 2025-11-03..2025-12-31.
    data = report(run)
    assert data["previous_period"] == {"since": "2025-11-03", "until": "2025-12-31"}
    tiles = {k["kpi"]: (k["value"], k["previous"], k["change"], k["better"]) for k in data["kpis"]}
    at_risk = tiles.pop("at_risk")
    assert tiles == {
        # active at the end of each: a, c, e on 02-28; a, d, f on 12-31 (i churned 12-31)
        "active_customers": (3, 3, 0, "up"),
        # won out of all closed: d won, f lost, b churned = 1/3; before: i churned = 0/1
        "conversion": (0.333, 0.0, 0.333, "up"),
        # as the funnel's churn rate: 1 / (3 + 3); before: i / (i, d active on 11-03
        # + f, a started) = 1/4
        "churn_rate": (0.167, 0.25, -0.083, "down"),
        # test_satisfaction's 16.7; before: e's 2 alone = -100
        "nps": (16.7, -100.0, 116.7, "up"),
        # a 4, c 5; before: b 1
        "csat": (4.5, 1.0, 3.5, "up"),
        # d: enrolled 2025-11-01, won 02-20 = 111 days; nobody won before
        "median_days_to_approval": (111.0, None, None, "down"),
    }
    # At risk: the daily run never ran, so nobody was scored: unknown, not zero.
    assert at_risk == (None, None, None, "down")
    assert data["at_risk"] == []


def test_at_risk_is_what_the_daily_run_left(run, book):
    # The report reads the run's scores (as `due` does), never scores a book itself.
    ok(run("run", "--today", TODAY))
    data = report(run)
    items = [
        i for i in as_json(run("due", "--today", TODAY, "-f", "json")) if i["kind"] == "at-risk"
    ]
    assert items  # the book has customers at risk: the comparison below is not empty
    assert [r["customer"] for r in data["at_risk"]] == [i["customer"] for i in items]
    assert all(r["reasons"] for r in data["at_risk"])
    (tile,) = [k for k in data["kpis"] if k["kpi"] == "at_risk"]
    # At the end of the previous period (12-31) the run had never scored anyone: that
    # is unknown, not "nobody at risk".
    assert (tile["value"], tile["previous"]) == (len(items), None)
    # Scored on 03-04 (today), that day is what a report ending then compares with.
    later = as_json(run("report", "--since", "2026-03-05", "--until", "2026-03-10",
                        "--today", "2026-03-10", "-f", "json"))  # fmt: skip
    (tile,) = [k for k in later["kpis"] if k["kpi"] == "at_risk"]
    assert tile["previous"] == len(items)


def test_weekly_trends(run, book):
    # Mondays from the one holding 01-01 (2025-12-29) to the one holding 02-28 (02-23).
    # started: b 01-10, c 01-15, e 02-20; won: d 02-20; churned: b 02-10
    # NPS of the week's answers: f 0, a 3 (week 01-05) -> -100; b 10 (01-19) -> 100;
    # c 6 (Sunday 02-01, week 01-26) -> -100; a 9 (02-10) -> 100; d 9 (02-16) -> 100;
    # g 7 (02-27) -> 0 (a passive)
    weeks = {w["week"]: w for w in report(run)["weekly"]}
    assert list(weeks) == ["2025-12-29", "2026-01-05", "2026-01-12", "2026-01-19",
                           "2026-01-26", "2026-02-02", "2026-02-09", "2026-02-16",
                           "2026-02-23"]  # fmt: skip
    assert {k: (w["started"], w["won"], w["churned"]) for k, w in weeks.items() if
            w["started"] or w["won"] or w["churned"]} == {
        "2026-01-05": (1, 0, 0), "2026-01-12": (1, 0, 0), "2026-02-09": (0, 0, 1),
        "2026-02-16": (1, 1, 0),
    }  # fmt: skip
    assert {k: (w["nps"], w["answers"]) for k, w in weeks.items() if w["answers"]} == {
        "2026-01-05": (-100.0, 2), "2026-01-19": (100.0, 1), "2026-01-26": (-100.0, 1),
        "2026-02-09": (100.0, 1), "2026-02-16": (100.0, 1), "2026-02-23": (0.0, 1),
    }  # fmt: skip


def test_default_period_is_the_last_90_days(run, book):
    data = as_json(run("report", "--today", TODAY, "--format", "json"))
    # 2026-03-04 minus 89 days = 2025-12-05: 90 days with both ends included.
    assert data["period"] == {"since": "2025-12-05", "until": TODAY}
    assert [t["month"] for t in data["trends"]] == ["2025-12", "2026-01", "2026-02", "2026-03"]
    # i's churn on 12-31 is inside this period: churned 2 (b, i). Active on 12-05:
    # d (since 11-01), f (12-01), i (10-01) = 3. Started since: a, b, c, e, g, h = 6.
    # 2 / (3 + 6) = 0.222.
    funnel = desk(data)
    assert (funnel["churned"], funnel["active_at_start"], funnel["churn_rate"]) == (2, 3, 0.222)


def test_funnel_filter(run, book):
    only = report(run, "--funnel", "desk")
    assert [f["funnel"] for f in only["funnels"]] == ["desk"]
    assert only["funnels"][0] == desk(report(run))
    result = run("report", *PERIOD, "--funnel", "nope")
    assert result.exit_code == 1
    assert "nope" in result.stderr and "desk" in result.stderr  # names the choices
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_csv_has_one_row_per_stage(run, book):
    text = ok(run("report", *PERIOD, "--format", "csv", "--funnel", "desk")).stdout
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["funnel", "stage", "customers", "entered", "conversion", "median_days", "p90_days",
         "stagnating", "channels"],
        ["desk", "intake", "1", "4", "0.75", "5.0", "50.0", "1",
         '{"chat": 1, "email": 2, "phone": 1}'],
        ["desk", "active", "2", "4", "0.25", "20.0", "29.0", "1",
         '{"chat": 1, "email": 1, "phone": 3}'],
        ["desk", "retained", "2", "1", "0.0", "76.0", "76.0", "0", "{}"],
        ["desk", "advocate", "0", "1", "1.0", "5.0", "5.0", "0", '{"email": 1, "meeting": 1}'],
    ]  # fmt: skip
    # Without --funnel: every funnel's stages, desk's among them.
    everything = list(csv.DictReader(io.StringIO(ok(run("report", *PERIOD, "-f", "csv")).stdout)))
    assert {r["funnel"] for r in everything} == {"after-sales", "desk", "relationship", "support"}
    assert [r["stage"] for r in everything if r["funnel"] == "desk"] == [
        "intake", "active", "retained", "advocate"
    ]  # fmt: skip


def table_rows(text: str, first_cell: str) -> list[list[str]]:
    """The cells of the table lines whose first cell is ``first_cell``."""
    found = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0] == first_cell:
            found.append(cells)
    return found


def test_table_shows_the_funnel_bars(run, book):
    out = ok(run("report", *PERIOD, "--funnel", "desk")).stdout
    assert (
        "Desk & care: 5 active; won 1, lost 1, churned 1, churn rate 17% (2026-01-01 to 2026-02-28)"
        in out
    )
    # Bars are 24 characters for the largest stage (2 customers): 1 customer is 12.
    # stage, now, bar, entered, converted, median, p90, stagnating, touchpoints
    assert table_rows(out, "intake") == [
        ["intake", "1", "█" * 12, "4", "75%", "5", "50", "1", "chat 1, email 2, phone 1"]
    ]
    assert table_rows(out, "active") == [
        ["active", "2", "█" * 24, "4", "25%", "20", "29", "1", "chat 1, email 1, phone 3"]
    ]
    assert table_rows(out, "retained") == [
        ["retained", "2", "█" * 24, "1", "0%", "76", "76", "", "GAP: none"]
    ]
    assert table_rows(out, "advocate") == [
        ["advocate", "0", "", "1", "100%", "5", "5", "", "email 1, meeting 1"]
    ]
    assert table_rows(out, "ana")[0][:5] == ["ana", "1", "0", "2", ""]
    assert table_rows(out, "bruno")[0][:5] == ["bruno", "1", "2", "0", "4"]


def test_table_bar_partial_block(run, workspace):
    # 5 customers in intake, 1 in active: 1/5 of 24 characters = 4.8 = 38.4 eighths,
    # rounded to 38 = 4 full blocks and 6/8 of a block: "████▊".
    write(workspace / "playbooks" / "desk.yaml", DESK)
    for n in range(6):
        ok(run("customer", "add", f"p{n}@example.com"))
        ok(run("enroll", f"p{n}@example.com", "desk"))
    ok(run("move", "p0@example.com", "active"))
    out = ok(run("report", "--funnel", "desk")).stdout
    assert table_rows(out, "intake")[0][2] == "█" * 24
    assert table_rows(out, "active")[0][2] == "████▊"


@pytest.mark.parametrize(
    "args",
    [
        ("--since", "2026-02-30"),
        ("--since", "yesterday"),
        ("--until", "2026-13-01"),
    ],
)
def test_bad_dates_are_usage_errors(run, workspace, dump, args):
    before = dump(workspace)
    result = run("report", *args)
    assert result.exit_code == 2
    assert args[0] in result.stderr and args[1] in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert dump(workspace) == before


def test_since_after_until_is_a_usage_error(run, workspace):
    result = run("report", "--since", "2026-03-01", "--until", "2026-02-01", "-f", "json")
    assert result.exit_code == 2
    assert "--since" in result.stderr


# -- known bugs, each on a book of its own ---------------------------------------------------

QUIET_DESK = """\
id: desk
title: Desk
stages:
  - id: intake
    title: Intake
  - id: active
    title: Active
    stagnant_after: 10d
    quiet_after: 7d
"""


def test_stagnating_counts_customers_not_alerts(run, workspace):
    write(workspace / "playbooks" / "desk.yaml", QUIET_DESK)
    ok(run("customer", "add", "s@example.com"))
    ok(run("enroll", "s@example.com", "desk", "--stage", "active", "--today", "2026-01-01"))
    # On 03-02: 60 days in active (> 10) and no touchpoint for 60 days (> 7): two alerts,
    # one customer.
    stuck = [i for i in as_json(run("due", "-f", "json")) if i["kind"] == "stagnation"]
    # one item for the customer's stage visit, with both alerts
    assert [sorted(a for a in i["alerts"] if a != "no-next-step") for i in stuck] == [
        ["quiet", "stagnant"]
    ]
    (funnel,) = report_json(run, "--funnel", "desk")["funnels"]
    assert [(s["stage"], s["customers"], s["stagnating"]) for s in funnel["stages"]] == [
        ("intake", 0, 0),
        ("active", 1, 1),
    ]


def report_json(run, *args: str) -> dict:
    return as_json(run("report", "--format", "json", *args))


def test_churn_rate_counts_only_enrollments_active_at_the_start(run, workspace):
    write(workspace / "playbooks" / "desk.yaml", QUIET_DESK)
    for c in ("x", "y"):
        ok(run("customer", "add", f"{c}@example.com", "--today", "2025-09-01"))
        ok(run("enroll", f"{c}@example.com", "desk", "--today", "2025-10-01"))
    # x churns in November, comes back in January (reopened), churns again in February.
    ok(run("churn", "x@example.com", "--today", "2025-11-15"))
    ok(run("move", "x@example.com", "active", "--reopen", "--today", "2026-01-10"))
    ok(run("churn", "x@example.com", "--today", "2026-02-10"))
    # On 2026-01-01 only y was active: x was churned. Churned in the period: x (02-10).
    # churn rate = 1 / 1 = 1.0 (not 1 / 2).
    (funnel,) = report_json(run, "--funnel", "desk", "--since", "2026-01-01")["funnels"]
    assert (funnel["churned"], funnel["active_at_start"], funnel["churn_rate"]) == (1, 1, 1.0)


def test_conversion_only_counts_moves_inside_the_period(run, workspace):
    write(workspace / "playbooks" / "desk.yaml", QUIET_DESK)
    ok(run("customer", "add", "y@example.com"))
    ok(run("enroll", "y@example.com", "desk", "--today", "2026-01-05"))
    ok(run("move", "y@example.com", "active", "--today", "2026-02-10"))
    # The January report: y entered intake in January and was still there on 01-31.
    # It must read the same whether it is run on 02-01 or on 03-02.
    (funnel,) = report_json(
        run, "--funnel", "desk", "--since", "2026-01-01", "--until", "2026-01-31"
    )["funnels"]
    assert [(s["stage"], s["entered"], s["converted"]) for s in funnel["stages"]] == [
        ("intake", 1, 0),
        ("active", 0, 0),
    ]


def test_touchpoint_on_the_closing_day_counts_under_the_last_stage(run, workspace):
    write(workspace / "playbooks" / "desk.yaml", QUIET_DESK)
    ok(run("customer", "add", "y@example.com"))
    ok(run("enroll", "y@example.com", "desk", "--stage", "active", "--today", "2026-02-01"))
    # The exit call, then the churn, the same day: y was in active that day.
    ok(run("log", "y@example.com", "exit call", "--channel", "phone", "--today", "2026-02-20"))
    ok(run("churn", "y@example.com", "--today", "2026-02-20"))
    (funnel,) = report_json(run, "--funnel", "desk", "--since", "2026-02-01")["funnels"]
    assert [(s["stage"], s["touchpoints"]) for s in funnel["stages"]] == [
        ("intake", {}),
        ("active", {"phone": 1}),
    ]


# -- ticket import ---------------------------------------------------------------------------


@pytest.fixture
def two_customers(run, workspace):
    for c in ("a", "b"):
        ok(run("customer", "add", f"{c}@example.com"))
    return workspace


def tickets(run) -> list[dict]:
    rows = as_json(run("export", "tickets", "--format", "json"))
    return [
        {k: r[k] for k in ("ticket_id", "customer", "opened_at", "first_response_at",
                           "resolved_at", "csat")}
        for r in rows
    ]  # fmt: skip


def test_ticket_import_rejects_bad_rows_and_writes_nothing(run, two_customers, dump, tmp_path):
    path = write(
        tmp_path / "bad.csv",
        "id,customer,opened_at,first_response_at,resolved_at,csat\n"
        "K1,a@example.com,2026-02-01T09:00,2026-02-01T10:00,,4\n"  # line 2: fine
        "K2,zed@example.com,2026-02-01T09:00,,,\n"  # line 3: unknown customer
        "K3,b@example.com,2026-02-03T09:00,2026-02-02T09:00,,\n"  # line 4: answered before
        "K4,b@example.com,2026-02-03T09:00,,,great\n"  # line 5: csat not a number
        "K5,b@example.com,2026-02-04T09:00,,2026-02-05T09:00,5\n",  # line 6: fine
    )
    before = dump(two_customers)
    result = run("ticket", "import", str(path))
    assert result.exit_code == 1
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr
    assert f"{path}:3:" in lines and "zed@example.com" in lines
    assert f"{path}:4:" in lines and "first_response_at" in lines
    assert f"{path}:5:" in lines and "great" in lines
    assert f"{path}:2:" not in lines and f"{path}:6:" not in lines
    assert "3 bad row" in lines
    assert dump(two_customers) == before  # the good rows were not kept either


def test_ticket_import_missing_column(run, two_customers, dump, tmp_path):
    path = write(tmp_path / "t.csv", "id,customer\nK1,a@example.com\n")
    before = dump(two_customers)
    result = run("ticket", "import", str(path))
    assert result.exit_code == 1
    assert f"{path}:1:" in result.stderr and "opened_at" in result.stderr
    assert dump(two_customers) == before


def test_ticket_reimport_updates_by_id(run, book, tmp_path):
    assert len(tickets(run)) == 6
    # T3 is now resolved (02-10 08:00 -> 03-01 08:00 = 19 days = 456 h) and T6 answered.
    path = write(
        tmp_path / "again.csv",
        "id,customer,opened_at,first_response_at,resolved_at,csat\n"
        "T3,c@example.com,2026-02-10T08:00,2026-02-10T13:30,2026-03-01T08:00,2\n"
        "T6,g@example.com,2026-03-03T09:00,2026-03-03T10:00,,\n",
    )
    counts = as_json(run("ticket", "import", str(path), "--today", TODAY, "-f", "json"))
    assert counts == {"inserted": 0, "updated": 2, "rejected": 0}
    stored = {t["ticket_id"]: t for t in tickets(run)}
    assert len(stored) == 6
    assert stored["T3"]["resolved_at"] == "2026-03-01T08:00" and stored["T3"]["csat"] == 2
    assert stored["T6"]["first_response_at"] == "2026-03-03T10:00"
    data = report(run)
    # Resolutions 24, 54, 96, 456 -> median (54 + 96) / 2 = 75, p90 ceil(3.6) = 4th = 456.
    # Backlog: only T6 (T3 was resolved 03-01). Ticket CSAT: 5, 3, 2 -> 3.33.
    assert data["support"]["resolution_hours_median"] == 75.0
    assert data["support"]["resolution_hours_p90"] == 456.0
    assert data["support"]["backlog"] == 1
    assert data["satisfaction"]["ticket_csat"] == 3.33


def test_ticket_times_with_offsets(run, two_customers, tmp_path):
    # 09:00Z opened; 12:00+02:00 = 10:00Z answered (1 h); 13:00+02:00 = 11:00Z resolved (2 h).
    path = write(
        tmp_path / "t.csv",
        "id,customer,opened_at,first_response_at,resolved_at,csat\n"
        "Z1,a@example.com,2026-02-10T09:00:00Z,2026-02-10T12:00:00+02:00,"
        "2026-02-10T13:00:00+02:00,\n",
    )
    ok(run("ticket", "import", str(path)))
    support = report_json(run, "--since", "2026-02-01")["support"]
    assert (support["first_response_hours_median"], support["resolution_hours_median"]) == (
        1.0,
        2.0,
    )


def test_report_csv_out_writes_every_section_named_as_in_the_json(run, demo, tmp_path):
    as_json = json.loads(run("report", "--format", "json").stdout)
    result = run("report", "--format", "csv", "--out", str(tmp_path / "rep"))
    assert result.exit_code == 0, result.stderr
    files = sorted(p.name for p in (tmp_path / "rep").iterdir())
    assert files == sorted(
        f"{n}.csv"
        for n in ("funnels", "stages", "kpis", "satisfaction", "support", "owners", "workload",
                  "trends", "weekly", "at_risk", "projection")
    )  # fmt: skip

    def rows(name: str) -> list[dict]:
        return list(csv.DictReader(io.StringIO((tmp_path / "rep" / f"{name}.csv").read_text())))

    assert [r["owner"] for r in rows("owners")] == [o["owner"] for o in as_json["owners"]]
    assert [r["funnel"] for r in rows("funnels")] == [f["funnel"] for f in as_json["funnels"]]
    assert rows("satisfaction")[0]["nps_answers"] == str(as_json["satisfaction"]["nps_answers"])
    assert len(rows("stages")) == sum(len(f["stages"]) for f in as_json["funnels"])
    assert [r["kpi"] for r in rows("kpis")] == [k["kpi"] for k in as_json["kpis"]]
    assert len(rows("projection")) == len(as_json["projection"]["rows"])
    assert [r["customer"] for r in rows("at_risk")] == [r["customer"] for r in as_json["at_risk"]]
    # a second run does not replace them without --force, and --out needs csv
    again = run("report", "--format", "csv", "--out", str(tmp_path / "rep"))
    assert again.exit_code == 1 and "pass --force to replace it" in again.stderr
    table = run("report", "--out", str(tmp_path / "rep"))
    assert (table.exit_code, table.stderr) == (
        2,
        "Error: --out writes one CSV per section: use it with --format csv.\n",
    )

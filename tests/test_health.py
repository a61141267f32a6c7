"""Customer health: signals, the score and its reasons, opportunities, the at-risk
report, and the plays the daily run starts once per episode.

Most tests replace the shipped model with a small crafted one (CRAFTED below)
so that every score can be worked out by hand; the arithmetic is in the
comments. The shipped model is tested on the demo book and for its
opportunity rules.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import TODAY, write

START = date.fromisoformat(TODAY)  # 2026-03-02


def day(n: int) -> str:
    """TODAY shifted by n days (negative: in the past)."""
    return (START + timedelta(days=n)).isoformat()


def ago(n: int) -> str:
    return day(-n)


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


def as_json(result):
    return json.loads(ok(result).stdout)


# A funnel with one stage and no actions, so that enrolling a customer (which
# makes them "active", the only customers health scores) adds no tasks, no
# emails and no touchpoints of its own.
CARE = """\
id: care
title: Care
stages:
  - id: live
    title: Live
"""

# The crafted model. Weights 3 + 2 + 1 = 6.
#   nps      better: higher  healthy >= 9,  poor <= 6,  else concerning
#   tickets  better: lower   healthy <= 2,  poor >= 6   (sum over the last 30 days)
#   quiet    better: lower   healthy <= 14, poor >= 30  (days since the last touchpoint,
#                                                        else since signed_on)
# Points: healthy 100, concerning 50, poor 0. score = sum(w * points) / sum(w present).
CRAFTED = """\
health:
  at_risk_below: 50
  on_at_risk: [at-risk-rescue]
  measures:
    - id: nps
      title: NPS
      value: signals.nps
      weight: 3
      healthy: 9
      poor: 6
    - id: tickets
      title: Tickets in 30 days
      value: signal_sum("tickets", 30)
      better: lower
      weight: 2
      healthy: 2
      poor: 6
    - id: quiet
      title: Days since touch
      value: days_since_touch
      better: lower
      weight: 1
      healthy: 14
      poor: 30
  opportunities:
    - id: big-account
      title: Big account
      when: "'seats_used' in signals and signals.seats_used >= 100"
      play: upsell-conversation
"""


def use_model(workspace: Path, model: str) -> None:
    write(workspace / "playbooks" / "health.yaml", model)


@pytest.fixture
def crafted(run, workspace):
    write(workspace / "playbooks" / "care.yaml", CARE)
    use_model(workspace, CRAFTED)
    ok(run("playbook", "validate"))
    return workspace


@pytest.fixture
def shipped(run, workspace):
    """The shipped health model, plus the quiet care funnel to enroll customers in."""
    write(workspace / "playbooks" / "care.yaml", CARE)
    ok(run("playbook", "validate"))
    return workspace


def add(run, email: str, *extra: str, enroll: bool = True, today: str = TODAY) -> None:
    ok(run("customer", "add", email, "--today", today, *extra))
    if enroll:
        ok(run("enroll", email, "care", "--today", today))


def signals(run, workspace: Path, rows: list[tuple], today: str = TODAY) -> dict:
    """Record (customer, metric, value, date) rows through the long-format CSV import."""
    lines = ["customer,metric,value,date"] + [",".join(str(c) for c in row) for row in rows]
    path = write(workspace.parent / "signals-in.csv", "\n".join(lines) + "\n")
    return as_json(run("signal", "import", str(path), "--today", today, "--format", "json"))


def at_risk(run, *args: str, today: str = TODAY) -> list[dict]:
    return as_json(run("at-risk", *args, "--today", today, "--format", "json"))


def on_a_terminal(run, *args: str, today: str = TODAY) -> str:
    """What a person sees (stdout drawn as on a terminal, 80 columns)."""
    from funnelctl import output

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(output, "_terminal", lambda: True)
        result = run(*args, "--today", today, env={"COLUMNS": "80", "LINES": "40"})
    assert result.exit_code == 0, result.stderr
    return result.stdout


def by_customer(rows: list[dict]) -> dict[str, dict]:
    return {r["customer"]: r for r in rows}


def titles(reasons: list[str]) -> list[str]:
    """The measure each reason names (reasons read 'Title: value is band (...)')."""
    return [r.split(":")[0] for r in reasons]


def stored_signals(run) -> list[tuple]:
    rows = as_json(run("export", "signals", "--format", "json"))
    return sorted((r["customer"], r["metric"], r["value"], r["measured_on"]) for r in rows)


def db_rows(workspace: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(workspace / "funnel.db")
    try:
        return [tuple(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


# -- 1. signals --------------------------------------------------------------------------------


def test_signal_records_one_value_dated_today_or_at(run, crafted):
    add(run, "a@example.com")
    first = as_json(run("signal", "a@example.com", "nps", "8", "--format", "json"))
    assert {k: first[k] for k in ("customer", "metric", "value", "measured_on")} == {
        "customer": "a@example.com",
        "metric": "nps",
        "value": 8.0,
        "measured_on": TODAY,
    }
    second = as_json(
        run("signal", "a@example.com", "Seats-Used", "12.5", "--at", ago(3), "--format", "json")
    )
    assert (second["metric"], second["value"], second["measured_on"]) == (
        "seats_used",
        12.5,
        ago(3),
    )
    assert stored_signals(run) == [
        ("a@example.com", "nps", 8.0, TODAY),
        ("a@example.com", "seats_used", 12.5, ago(3)),
    ]


@pytest.mark.parametrize(
    "args, code, words",
    [
        (("ghost@example.com", "nps", "8"), 1, "ghost@example.com"),
        (("a@example.com", "nps", "eight"), 2, "'eight' is not a number"),
        (("a@example.com", "nps", "nan"), 2, "not a number"),
        (("a@example.com", "nps", "7,5"), 2, "not a number"),
        (("a@example.com", "nps", "8", "--at", "2026-02-30"), 2, "2026-02-30"),
        (("a@example.com", "nps", "8", "--at", "02/03/2026"), 2, "02/03/2026"),
        (("a@example.com", "nps", "8", "--at", day(1)), 2, f"{day(1)} is after today"),
        (("a@example.com", "n p s", "8"), 2, "metric"),
    ],
)
def test_a_bad_signal_is_refused_and_writes_nothing(run, crafted, dump, args, code, words):
    add(run, "a@example.com")
    before = dump(crafted)
    result = run("signal", *args)
    assert result.exit_code == code
    assert words in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert dump(crafted) == before


def test_signal_import_long_format(run, crafted):
    add(run, "a@example.com")
    add(run, "b@example.com", "--external-id", "B-2")
    csv = write(
        crafted.parent / "long.csv",
        "customer,metric,value,date\n"
        f"a@example.com,nps,9,{ago(10)}\n"
        "a@example.com,tickets,3,\n"  # no date: today
        f"B-2,Logins,41,{ago(1)}\n"  # by external id; the metric name is normalised
        "\n"  # a blank line is skipped
        f"b@example.com,seats_used,7.5,{ago(2)}\n",
    )
    assert as_json(run("signal", "import", str(csv), "--format", "json")) == {
        "imported": 4,
        "duplicates": 0,
        "rejected": 0,
    }
    assert stored_signals(run) == [
        ("a@example.com", "nps", 9.0, ago(10)),
        ("a@example.com", "tickets", 3.0, TODAY),
        ("b@example.com", "logins", 41.0, ago(1)),
        ("b@example.com", "seats_used", 7.5, ago(2)),
    ]


def test_signal_import_wide_format(run, crafted):
    add(run, "a@example.com")
    add(run, "b@example.com")
    csv = write(
        crafted.parent / "wide.csv",
        "customer,date,nps,tickets,logins\n"
        f"a@example.com,{ago(5)},8,,12\n"  # an empty cell is no measurement
        f"b@example.com,{ago(1)},10,0,\n"  # 0 is a measurement
        "a@example.com,,,4,\n",  # no date: today
    )
    assert as_json(run("signal", "import", str(csv), "--format", "json")) == {
        "imported": 5,
        "duplicates": 0,
        "rejected": 0,
    }
    assert stored_signals(run) == [
        ("a@example.com", "logins", 12.0, ago(5)),
        ("a@example.com", "nps", 8.0, ago(5)),
        ("a@example.com", "tickets", 4.0, TODAY),
        ("b@example.com", "nps", 10.0, ago(1)),
        ("b@example.com", "tickets", 0.0, ago(1)),
    ]


def test_signal_import_dry_run_counts_and_writes_nothing(run, crafted, dump):
    add(run, "a@example.com")
    csv = write(crafted.parent / "dry.csv", "customer,metric,value\na@example.com,nps,9\n")
    before = dump(crafted)
    result = as_json(run("signal", "import", str(csv), "--dry-run", "--format", "json"))
    assert result == {"imported": 1, "duplicates": 0, "rejected": 0}
    assert dump(crafted) == before


LONG_BAD = (
    "customer,metric,value,date\n"  # 1
    f"a@example.com,nps,9,{ago(1)}\n"  # 2: good
    f"ghost@example.com,nps,9,{ago(1)}\n"  # 3: unknown customer
    f"a@example.com,nps,nine,{ago(1)}\n"  # 4: not a number
    "\n"  # 5: blank, skipped but counted as a line
    "a@example.com,nps,9,2026-02-30\n"  # 6: no such date
    f"a@example.com,nps,9,{day(1)}\n"  # 7: after today
    "a@example.com,tickets,2,\n"  # 8: good
)
LONG_PROBLEMS = {
    3: "ghost@example.com",
    4: "'nine' is not a number",
    6: "2026-02-30",
    7: f"the date {day(1)} is after today",
}

WIDE_BAD = (
    "customer,date,nps,tickets\n"  # 1
    f"a@example.com,{ago(1)},9,1\n"  # 2: good
    f"nobody,{ago(1)},9,1\n"  # 3: unknown customer
    f"a@example.com,{ago(1)},9,lots\n"  # 4: not a number
    "a@example.com,01/03/2026,9,1\n"  # 5: not ISO
    f"a@example.com,{day(1)},9,1\n"  # 6: after today
)
WIDE_PROBLEMS = {
    3: "'nobody'",
    4: "'lots' is not a number",
    5: "01/03/2026",
    6: f"the date {day(1)} is after today",
}


@pytest.mark.parametrize(
    "text, problems", [(LONG_BAD, LONG_PROBLEMS), (WIDE_BAD, WIDE_PROBLEMS)], ids=["long", "wide"]
)
def test_signal_import_lists_every_bad_row_and_writes_nothing(run, crafted, dump, text, problems):
    add(run, "a@example.com")
    csv = write(crafted.parent / "bad.csv", text)
    before = dump(crafted)
    result = run("signal", "import", str(csv), "--format", "json")
    assert result.exit_code == 1
    assert f"{len(problems)} bad row(s)" in result.stderr
    listed = [
        line.strip() for line in result.stderr.splitlines() if line.strip().startswith(f"{csv}:")
    ]
    assert len(listed) == len(problems), result.stderr
    for (line, words), message in zip(sorted(problems.items()), listed, strict=True):
        assert message.startswith(f"{csv}:{line}: "), message
        assert words in message, message
    assert dump(crafted) == before


def test_signal_import_needs_a_customer_column(run, crafted, dump):
    csv = write(crafted.parent / "nocust.csv", "who,nps\na@example.com,9\n")
    before = dump(crafted)
    result = run("signal", "import", str(csv))
    assert result.exit_code != 0
    assert f"{csv}:1:" in result.stderr
    assert dump(crafted) == before


# -- 2. the score ----------------------------------------------------------------------------------


def test_crafted_scores_bands_boundaries_missing_inputs_and_reasons(run, crafted):
    # Without touchpoints, days_since_touch counts from signed_on (each customer was
    # added to the book the day they signed).
    people = {
        "healthy@example.com": 14,
        "poor@example.com": 30,
        "middle@example.com": 15,
        "edge-in@example.com": 29,
        "under@example.com": 29,
        "nonps@example.com": 20,
        "tie@example.com": 45,
        "window@example.com": 0,
        "empty@example.com": 0,
    }
    for email, days in people.items():
        add(run, email, "--signed-on", ago(days), today=ago(days))
    add(run, "notenrolled@example.com", "--signed-on", ago(40), enroll=False, today=ago(40))
    signals(
        run,
        crafted,
        [
            # healthy: every value exactly at `healthy` -> healthy.
            # (3*100 + 2*100 + 1*100) / 6 = 100.0
            ("healthy@example.com", "nps", 9, ago(3)),
            ("healthy@example.com", "tickets", 2, ago(3)),
            ("healthy@example.com", "seats_used", 150, ago(3)),  # the crafted opportunity
            # poor: every value exactly at `poor` -> poor. 0 / 6 = 0.0
            ("poor@example.com", "nps", 6, ago(3)),
            ("poor@example.com", "tickets", 6, ago(3)),
            # middle: just past `poor` on the good side -> concerning everywhere.
            # nps 6.1, tickets 3, quiet 15: (3*50 + 2*50 + 1*50) / 6 = 50.0, not < 50
            ("middle@example.com", "nps", 6.1, ago(3)),
            ("middle@example.com", "tickets", 3, ago(3)),
            # edge-in: just short of `healthy` -> concerning everywhere. Also 50.0.
            # nps 8.9, tickets 5 (2 + 3 in the window), quiet 29
            ("edge-in@example.com", "nps", 8.9, ago(3)),
            ("edge-in@example.com", "tickets", 2, ago(3)),
            ("edge-in@example.com", "tickets", 3, ago(1)),
            # under: nps 5.9 poor (0), tickets 0 healthy (200), quiet 29 concerning (50)
            # 250 / 6 = 41.666… -> 41.7, at risk
            ("under@example.com", "nps", 5.9, ago(3)),
            ("under@example.com", "tickets", 0, ago(3)),
            # nonps: no NPS, its weight is spread: tickets 1 healthy (200), quiet 20
            # concerning (50): 250 / (2 + 1) = 83.333… -> 83.3
            ("nonps@example.com", "tickets", 1, ago(3)),
            # tie: nps 9.5 healthy (300), tickets 4 concerning (100), quiet 45 poor (0)
            # 400 / 6 = 66.666… -> 66.7. Lost: tickets 2*50 = 100, quiet 1*100 = 100: a tie,
            # which keeps the model's order (tickets before quiet).
            ("tie@example.com", "nps", 9.5, ago(3)),
            ("tie@example.com", "tickets", 4, ago(3)),
            # window: the latest NPS counts (9, not the older 2); tickets on the day 30
            # days ago fall outside signal_sum("tickets", 30), so 1 + 1 = 2: healthy.
            # quiet 0. 600 / 6 = 100.0
            ("window@example.com", "nps", 2, ago(40)),
            ("window@example.com", "nps", 9, ago(10)),
            ("window@example.com", "tickets", 3, ago(30)),
            ("window@example.com", "tickets", 1, ago(29)),
            ("window@example.com", "tickets", 1, TODAY),
            # notenrolled is not scored at all (no active enrollment)
            ("notenrolled@example.com", "nps", 0, ago(3)),
        ],
    )
    rows = at_risk(run, "--all")
    # empty@ has no NPS and no tickets, only quiet 0 (healthy): 100 / 1 = 100.0
    expected = [  # worst first; equal scores by customer
        ("poor@example.com", 0.0, True),
        ("under@example.com", 41.7, True),
        ("edge-in@example.com", 50.0, False),
        ("middle@example.com", 50.0, False),
        ("tie@example.com", 66.7, False),
        ("nonps@example.com", 83.3, False),
        ("empty@example.com", 100.0, False),
        ("healthy@example.com", 100.0, False),
        ("window@example.com", 100.0, False),
    ]
    assert [(r["customer"], r["score"], r["at_risk"]) for r in rows] == expected
    for row in rows:
        assert {"customer", "score", "at_risk", "reasons", "opportunities", "trend"} <= set(row)
        assert row["trend"] is None  # no run has kept a snapshot yet

    got = by_customer(rows)
    assert got["poor@example.com"]["reasons"] == [
        # lost: nps 3*100 = 300, tickets 2*100 = 200, quiet 1*100 = 100
        "NPS: 6 is poor (healthy ≥ 9)",
        "Tickets in 30 days: 6 is poor (healthy ≤ 2)",
        "Days since touch: 30 is poor (healthy ≤ 14)",
    ]
    # lost: nps 150, tickets 100, quiet 50
    assert titles(got["middle@example.com"]["reasons"]) == [
        "NPS",
        "Tickets in 30 days",
        "Days since touch",
    ]
    assert got["middle@example.com"]["reasons"][0] == "NPS: 6.1 is concerning (healthy ≥ 9)"
    assert titles(got["edge-in@example.com"]["reasons"]) == [
        "NPS",
        "Tickets in 30 days",
        "Days since touch",
    ]
    assert (
        got["edge-in@example.com"]["reasons"][1]
        == "Tickets in 30 days: 5 is concerning (healthy ≤ 2)"
    )
    # lost: nps 300, quiet 50 (tickets is healthy and gives no reason)
    assert titles(got["under@example.com"]["reasons"]) == ["NPS", "Days since touch"]
    assert got["nonps@example.com"]["reasons"] == [
        "Days since touch: 20 is concerning (healthy ≤ 14)"
    ]
    assert titles(got["tie@example.com"]["reasons"]) == ["Tickets in 30 days", "Days since touch"]
    for email in ("healthy@example.com", "window@example.com", "empty@example.com"):
        assert got[email]["reasons"] == []
    assert got["healthy@example.com"]["opportunities"] == ["Big account"]
    assert all(got[e]["opportunities"] == [] for e in got if e != "healthy@example.com")
    assert "notenrolled@example.com" not in got

    # Without --all: only the customers at risk and those with an opportunity.
    assert [(r["customer"], r["score"]) for r in at_risk(run)] == [
        ("poor@example.com", 0.0),
        ("under@example.com", 41.7),
        ("healthy@example.com", 100.0),
    ]


def test_a_touchpoint_resets_days_since_touch(run, crafted):
    add(run, "a@example.com", "--signed-on", ago(200), today=ago(200))
    signals(
        run, crafted, [("a@example.com", "nps", 9, ago(1)), ("a@example.com", "tickets", 0, ago(1))]
    )
    # quiet 200 days: poor. (300 + 200 + 0) / 6 = 83.3
    assert at_risk(run, "--all")[0]["score"] == 83.3
    ok(run("log", "a@example.com", "Quarterly call", "--channel", "phone", "--on", ago(20)))
    # quiet 20 days: concerning. (300 + 200 + 50) / 6 = 91.666… -> 91.7
    row = at_risk(run, "--all")[0]
    assert (row["score"], row["reasons"]) == (
        91.7,
        ["Days since touch: 20 is concerning (healthy ≤ 14)"],
    )


def test_a_book_imported_today_is_not_quiet_since_its_customers_signed(run, shipped):
    """Customers who signed years ago, imported today: the book holds none of their
    past touchpoints, so days_since_touch counts from the import, and the first run
    neither finds them at risk nor emails them a rescue."""
    csv = write(
        shipped.parent / "book.csv",
        "email,name,signed_on\n"
        "old@example.com,Olga Old,2024-01-15\n"
        f"new@example.com,Nils New,{ago(3)}\n",
    )
    ok(run("import", str(csv), "--funnel", "care", "--today", TODAY))
    ok(run("run", "--today", TODAY))
    assert at_risk(run) == []
    scores = {r["customer"]: (r["score"], r["reasons"]) for r in at_risk(run, "--all")}
    assert scores == {"old@example.com": (100.0, []), "new@example.com": (100.0, [])}
    queued = as_json(run("outbox", "list", "--format", "json"))
    assert [e for e in queued if "at-risk" in json.dumps(e)] == []
    # 61 days on, still nothing logged: quiet since the import, poor (healthy <= 21, poor
    # >= 60), and the customer who signed three days before the import alike
    later = day(61)
    for email in ("old@example.com", "new@example.com"):
        row = next(r for r in at_risk(run, "--all", today=later) if r["customer"] == email)
        assert "Days since the last touchpoint: 61 is poor (healthy ≤ 21)" in row["reasons"]


def test_replaying_a_past_day_ignores_later_signals_and_touchpoints(run, crafted):
    add(run, "a@example.com", "--signed-on", ago(60), today=ago(60))
    signals(
        run,
        crafted,
        [
            ("a@example.com", "nps", 3, ago(20)),
            ("a@example.com", "tickets", 0, ago(20)),
            ("a@example.com", "nps", 10, TODAY),
        ],
    )
    ok(run("log", "a@example.com", "Call", "--channel", "phone", "--on", TODAY))
    # Today: nps 10 (300), tickets 0 in the window (200), quiet 0 (100): 600 / 6 = 100.0
    assert at_risk(run, "--all")[0]["score"] == 100.0
    # Ten days ago the NPS was 3 (poor, 0), the tickets 0 (200), and nothing had been
    # logged since signing 50 days before (poor, 0): 200 / 6 = 33.3, at risk.
    row = at_risk(run, "--all", today=ago(10))[0]
    assert (row["score"], row["at_risk"]) == (33.3, True)


NPS_AND_LOGINS = """\
health:
  at_risk_below: 60
  measures:
    - id: nps
      title: NPS
      value: signals.nps
      weight: 1
      healthy: 9
      poor: 6
    - id: logins
      title: Logins
      value: signal_avg("logins", 28)
      weight: 1
      healthy: 20
      poor: 5
"""


def test_no_input_at_all_scores_null_and_is_not_at_risk(run, workspace):
    write(workspace / "playbooks" / "care.yaml", CARE)
    use_model(workspace, NPS_AND_LOGINS)
    add(run, "silent@example.com")
    add(run, "stale@example.com")
    add(run, "poor@example.com")
    signals(
        run,
        workspace,
        [
            ("stale@example.com", "logins", 50, ago(28)),  # outside the 28-day window
            ("poor@example.com", "nps", 0, ago(1)),
        ],
    )
    rows = at_risk(run, "--all")
    # poor: only NPS has a value: 0 / 1 = 0.0. The other two have no input: null, last.
    assert [(r["customer"], r["score"], r["at_risk"], r["reasons"]) for r in rows] == [
        ("poor@example.com", 0.0, True, ["NPS: 0 is poor (healthy ≥ 9)"]),
        ("silent@example.com", None, False, []),
        ("stale@example.com", None, False, []),
    ]
    assert [r["customer"] for r in at_risk(run)] == ["poor@example.com"]
    table = ok(run("at-risk", "--all"))  # people's format copes with a null score
    assert "silent@example.com" in table.stdout and "Traceback" not in table.stderr


HALF = """\
health:
  at_risk_below: 50
  measures:
    - id: a
      title: A
      value: signals.a
      weight: 5
      healthy: 10
      poor: 0
    - id: b
      title: B
      value: signals.b
      weight: 3
      healthy: 10
      poor: 0
"""


def test_score_rounds_half_up(run, workspace):
    write(workspace / "playbooks" / "care.yaml", CARE)
    use_model(workspace, HALF)
    add(run, "a@example.com")
    signals(run, workspace, [("a@example.com", "a", 10, ago(1)), ("a@example.com", "b", 5, ago(1))])
    # a healthy: 5 * 100 = 500; b concerning: 3 * 50 = 150; 650 / 8 = 81.25 -> 81.3
    assert at_risk(run, "--all")[0]["score"] == 81.3


# -- 3. opportunities (the shipped rules) ----------------------------------------------------------

UPSELL = "Upsell: 90% or more of the seats in use"
ADVOCATE = "Advocacy: a promoter for a year or more; ask for a testimonial or case study"


def test_shipped_opportunity_rules(run, shipped):
    add(run, "full@example.com", "--seats", "10")  # 9 of 10 seats: exactly 90%
    add(run, "roomy@example.com", "--seats", "10")  # 8 of 10: no
    add(run, "both@example.com", "--seats", "20", "--signed-on", ago(365))
    add(run, "young@example.com", "--signed-on", ago(364))  # a promoter, but 364 days
    add(run, "lukewarm@example.com", "--signed-on", ago(400))  # nps 8: not a promoter
    add(run, "noseats@example.com")  # seats_used but no seats bought: no rule applies
    add(run, "unsigned@example.com")  # nps 10 but no signed_on: tenure unknown
    signals(
        run,
        shipped,
        [
            ("full@example.com", "seats_used", 9, ago(2)),
            ("roomy@example.com", "seats_used", 8, ago(2)),
            ("both@example.com", "seats_used", 19, ago(2)),
            ("both@example.com", "nps", 9, ago(2)),
            ("young@example.com", "nps", 10, ago(2)),
            ("lukewarm@example.com", "nps", 8, ago(2)),
            ("noseats@example.com", "seats_used", 50, ago(2)),
            ("unsigned@example.com", "nps", 10, ago(2)),
        ],
    )
    got = {r["customer"]: r["opportunities"] for r in at_risk(run, "--all")}
    assert got == {
        "full@example.com": [UPSELL],
        "roomy@example.com": [],
        "both@example.com": [UPSELL, ADVOCATE],
        "young@example.com": [],
        "lukewarm@example.com": [],
        "noseats@example.com": [],
        "unsigned@example.com": [],
    }
    # The latest seats_used counts: dropping to 8 of 10 ends the upsell.
    ok(run("signal", "full@example.com", "seats_used", "8"))
    assert by_customer(at_risk(run, "--all"))["full@example.com"]["opportunities"] == []


# -- 5. the daily run: snapshots, episodes, plays, trend ----------------------------------------------


def tasks_of(items: list[dict], email: str) -> list[tuple]:
    return sorted(
        (i["title"], i["due_on"]) for i in items if i["kind"] == "task" and i["customer"] == email
    )


def due(run, n: int, *args: str) -> list[dict]:
    return as_json(run("due", "--today", day(n), "--days", "7", "--format", "json", *args))


def risk_items(items: list[dict]) -> list[tuple]:
    return [
        (i["customer"], i["due_on"], i["days_overdue"]) for i in items if i["kind"] == "at-risk"
    ]


RESCUE_TASKS = ["Agree a recovery plan and log it", "Call about what is not working"]


def test_an_at_risk_item_belongs_to_the_enrollments_owner_before_the_customers(run, crafted):
    import sqlite3

    email = "r@example.com"
    add(run, email, "--owner", "ana", "--signed-on", ago(5))
    signals(run, crafted, [(email, "nps", 3, TODAY), (email, "tickets", 8, TODAY)])
    ok(run("run", "--today", day(0)))
    with sqlite3.connect(crafted / "funnel.db") as db:  # a stage's owner rule assigned it
        db.execute("UPDATE enrollments SET owner = 'bruno'")
    mine = [
        (i["kind"], i["owner"]) for i in due(run, 0, "--owner", "bruno") if i["kind"] == "at-risk"
    ]
    assert mine == [("at-risk", "bruno")]
    assert [i for i in due(run, 0, "--owner", "ana") if i["kind"] == "at-risk"] == []


def test_at_risk_play_starts_once_per_episode_and_trend(run, crafted, dump):
    email = "r@example.com"
    add(run, email, "--signed-on", ago(5))
    add(run, "fine@example.com", "--signed-on", ago(5))
    signals(run, crafted, [(email, "nps", 3, TODAY), (email, "tickets", 8, TODAY)])
    signals(run, crafted, [("fine@example.com", "nps", 10, TODAY)])
    # Day 0: nps 3 poor (0), tickets 8 poor (0), quiet 5 healthy (100): 100 / 6 = 16.7
    row = by_customer(at_risk(run))[email]
    assert (row["score"], row["at_risk"], row["trend"]) == (16.7, True, None)

    summary = as_json(run("run", "--today", day(0), "--format", "json"))
    assert (summary["scored"], summary["at_risk"], summary["plays"]) == (2, 1, 1)
    items = due(run, 0)
    # at-risk-rescue: the check-in email today and its tasks (the on-site visit only
    # for an MRR of 1000 or more, so not here)
    assert tasks_of(items, email) == [
        ("Agree a recovery plan and log it", day(5)),
        ("Call about what is not working", day(2)),
    ]
    assert [i["title"] for i in items if i["kind"] == "email" and i["customer"] == email] == [
        "Email 'at-risk-check-in' to send"
    ]
    assert risk_items(items) == [(email, day(0), 0)]
    alert = next(i for i in items if i["kind"] == "at-risk")
    assert (alert["title"], alert["section"]) == ("At risk (16.7)", "attention")
    assert alert["reasons"][0] == "NPS: 3 is poor (healthy ≥ 9)"

    # The same day again: nothing changes.
    before = dump(crafted)
    again = as_json(run("run", "--today", day(0), "--format", "json"))
    assert again["plays"] == 0
    assert dump(crafted) == before

    # Days 1 and 2: still at risk, the episode goes on: no new play, no new task.
    for n in (1, 2):
        assert as_json(run("run", "--today", day(n), "--format", "json"))["plays"] == 0
        items = due(run, n)
        assert tasks_of(items, email) == [
            ("Agree a recovery plan and log it", day(5)),
            ("Call about what is not working", day(2)),
        ]
        assert risk_items(items) == [(email, day(0), n)]

    # Day 3: a good NPS. nps 10 healthy (300), tickets 8 still in the window (0),
    # quiet 8 healthy (100): 400 / 6 = 66.7. Trend against the last snapshot before
    # today (day 0; days 1 and 2 were unchanged and kept none): 66.7 - 16.7 = 50.0
    ok(run("signal", email, "nps", "10", "--today", day(3)))
    row = by_customer(at_risk(run, "--all", today=day(3)))[email]
    assert (row["score"], row["at_risk"], row["trend"]) == (66.7, False, 50.0)
    assert by_customer(at_risk(run, today=day(3))).get(email) is None
    assert as_json(run("run", "--today", day(3), "--format", "json"))["plays"] == 0
    assert risk_items(due(run, 3)) == []
    # the snapshot of today does not count as "before today"
    assert by_customer(at_risk(run, "--all", today=day(3)))[email]["trend"] == 50.0

    # Day 4: slips again. nps 4 poor: 100 / 6 = 16.7; trend 16.7 - 66.7 = -50.0
    ok(run("signal", email, "nps", "4", "--today", day(4)))
    row = by_customer(at_risk(run, today=day(4)))[email]
    assert (row["score"], row["at_risk"], row["trend"]) == (16.7, True, -50.0)
    assert "  16.7   r@example.com  -  down 50\n" in on_a_terminal(run, "at-risk", today=day(4))
    # The episode ended on day 3: its open tasks stay (a promised call may still be worth
    # making) and say so.
    ended = [f"the at-risk episode ended on {day(3)}; still needed?"]
    assert sorted(
        (i["title"], i["reasons"])
        for i in due(run, 3)
        if i["customer"] == email and i["kind"] == "task"
    ) == [
        ("Agree a recovery plan and log it", ended),
        ("Call about what is not working", ended),
    ]

    # A new episode, but the rescue play ran four days ago: inside its 30-day cooldown it
    # does not start again (no second call, no second check-in email side by side).
    assert as_json(run("run", "--today", day(4), "--format", "json"))["plays"] == 0
    items = due(run, 4)
    assert tasks_of(items, email) == [
        ("Agree a recovery plan and log it", day(5)),
        ("Call about what is not working", day(2)),
    ]
    assert risk_items(items) == [(email, day(4), 0)]
    # the check-in email queued on day 0 and never sent ended with the episode on day 3
    outbox_rows = [
        (r["template"], r["status"], r["reason"])
        for r in as_json(run("export", "outbox", "--format", "json"))
        if r["customer"] == email
    ]
    assert outbox_rows == [
        ("at-risk-check-in", "superseded", f"the at-risk episode ended on {day(3)}")
    ]
    timeline = ok(run("customer", "show", email, "--format", "json"))
    assert (
        f"Play 'at-risk-rescue' not started: it started on {day(0)}, inside its cooldown of 30 days"
    ) in [e["what"] for e in as_json(timeline)["timeline"]]

    customer_id = db_rows(crafted, "SELECT id FROM customers WHERE email = ?", (email,))[0][0]
    assert db_rows(
        crafted,
        "SELECT kind, started_on, ended_on FROM health_episodes WHERE customer_id = ? ORDER BY id",
        (customer_id,),
    ) == [("at-risk", day(0), day(3)), ("at-risk", day(4), None)]
    # a snapshot only when the result changed: days 0, 3 and 4
    assert db_rows(
        crafted,
        "SELECT day, score, at_risk FROM health_snapshots WHERE customer_id = ? ORDER BY day",
        (customer_id,),
    ) == [(day(0), 16.7, 1), (day(3), 66.7, 0), (day(4), 16.7, 1)]


def test_opportunity_play_starts_once_per_episode(run, crafted):
    email = "big@example.com"
    add(run, email, "--signed-on", ago(5))
    signals(run, crafted, [(email, "nps", 10, TODAY), (email, "tickets", 0, TODAY)])
    ok(run("signal", email, "seats_used", "120"))
    prepare = "Prepare upgrade options from their usage"

    def prepared(n: int) -> int:
        return sum(1 for t, _ in tasks_of(due(run, n), email) if t == prepare)

    assert as_json(run("run", "--today", day(0), "--format", "json"))["plays"] == 1
    assert prepared(0) == 1
    assert as_json(run("run", "--today", day(1), "--format", "json"))["plays"] == 0
    assert prepared(1) == 1
    ok(run("signal", email, "seats_used", "60", "--today", day(2)))  # the opportunity ends
    assert as_json(run("run", "--today", day(2), "--format", "json"))["plays"] == 0
    assert by_customer(at_risk(run, today=day(2))).get(email) is None
    ok(run("signal", email, "seats_used", "130", "--today", day(3)))  # and comes back
    # a new episode three days later: the play's 30-day cooldown keeps it from repeating
    assert as_json(run("run", "--today", day(3), "--format", "json"))["plays"] == 0
    assert prepared(3) == 1
    ok(run("signal", email, "seats_used", "60", "--today", day(20)))
    ok(run("run", "--today", day(20)))
    ok(run("signal", email, "seats_used", "140", "--today", day(30)))
    assert as_json(run("run", "--today", day(30), "--format", "json"))["plays"] == 1
    assert prepared(30) == 2


def test_an_opportunity_waits_while_the_customer_is_at_risk(run, crafted):
    """A detractor is not pitched an upgrade the morning they get the rescue call: the
    opportunity's episode (and its play) starts once they are out of risk."""
    email = "unhappy@example.com"
    add(run, email, "--signed-on", ago(5))
    signals(run, crafted, [(email, "nps", 2, TODAY), (email, "tickets", 9, TODAY)])
    ok(run("signal", email, "seats_used", "120"))
    summary = as_json(run("run", "--today", day(0), "--format", "json"))
    assert (summary["at_risk"], summary["plays"]) == (1, 1)  # the rescue only
    titles = [t for t, _ in tasks_of(due(run, 0), email)]
    assert "Prepare upgrade options from their usage" not in titles
    assert "Call about what is not working" in titles
    customer_id = db_rows(crafted, "SELECT id FROM customers WHERE email = ?", (email,))[0][0]
    kinds = "SELECT kind FROM health_episodes WHERE customer_id = ? ORDER BY id"
    assert db_rows(crafted, kinds, (customer_id,)) == [("at-risk",)]

    ok(run("signal", email, "nps", "10", "--today", day(40)))
    summary = as_json(run("run", "--today", day(40), "--format", "json"))
    assert (summary["at_risk"], summary["plays"]) == (0, 1)
    titles = [t for t, _ in tasks_of(due(run, 40), email)]
    assert "Prepare upgrade options from their usage" in titles
    assert db_rows(crafted, kinds, (customer_id,)) == [("at-risk",), ("opportunity:big-account",)]


def test_run_scores_only_customers_with_an_active_enrollment(run, crafted):
    add(run, "in@example.com", "--signed-on", ago(5))
    add(run, "out@example.com", "--signed-on", ago(5), enroll=False)
    add(run, "won@example.com", "--signed-on", ago(5))
    ok(run("won", "won@example.com"))
    for email in ("in@example.com", "out@example.com", "won@example.com"):
        ok(run("signal", email, "nps", "1"))
    summary = as_json(run("run", "--format", "json"))
    assert (summary["scored"], summary["at_risk"], summary["plays"]) == (1, 1, 1)
    assert [r["customer"] for r in at_risk(run, "--all")] == ["in@example.com"]
    assert [i["customer"] for i in due(run, 0) if i["kind"] == "at-risk"] == ["in@example.com"]


def test_a_churned_customer_leaves_the_at_risk_list(run, crafted):
    email = "gone@example.com"
    add(run, email, "--signed-on", ago(5))
    ok(run("signal", email, "nps", "1"))
    ok(run("run", "--today", day(0)))
    assert [i["customer"] for i in due(run, 0) if i["kind"] == "at-risk"] == [email]
    ok(run("churn", email, "--today", day(1), "--reason", "budget cut"))
    ok(run("run", "--today", day(1)))
    assert at_risk(run, "--all", today=day(1)) == []
    assert [i for i in due(run, 1) if i["kind"] == "at-risk"] == []


# -- 6. the shipped model on the demo book ----------------------------------------------------------


def test_shipped_model_scores_the_demo_book(run, demo):
    ok(run("playbook", "validate"))
    rows = at_risk(run, "--all")
    got = by_customer(rows)
    assert len(rows) >= 20
    scores = [r["score"] for r in rows if r["score"] is not None]
    assert scores == sorted(scores)  # worst first
    for row in rows:
        assert {"customer", "score", "at_risk", "reasons", "opportunities", "trend"} <= set(row)
        assert isinstance(row["at_risk"], bool)
        assert isinstance(row["reasons"], list) and isinstance(row["opportunities"], list)
        if row["score"] is not None:
            assert 0 <= row["score"] <= 100
            assert row["score"] == round(row["score"], 1)
            assert row["at_risk"] == (row["score"] < 60)  # shipped at_risk_below: 60
    for email in ("zoe.laurent@example.net", "liam.oconnor@example.net"):
        assert got[email]["at_risk"] is True
        assert got[email]["reasons"], email
        assert "NPS" in got[email]["reasons"][0]
    assert got["gustavo.pereira@example.net"]["at_risk"] is False
    assert any(r["opportunities"] for r in rows)

    flagged = {r["customer"] for r in rows if r["at_risk"]}
    listed = at_risk(run)
    assert flagged <= {r["customer"] for r in listed}
    assert all(r["at_risk"] or r["opportunities"] for r in listed)

    summary = as_json(run("run", "--format", "json"))
    assert summary["at_risk"] == len(flagged)
    assert {i["customer"] for i in due(run, 0) if i["kind"] == "at-risk"} == flagged


# -- 7. a bad health model -----------------------------------------------------------------------

GOOD_MEASURE = """\
    - id: nps
      title: NPS
      value: signals.nps
      healthy: 9
      poor: 6
"""


def validate_problems(run, workspace: Path) -> list[str]:
    result = run("playbook", "validate")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return [line.strip() for line in result.stderr.splitlines() if ".yaml:" in line]


@pytest.mark.parametrize(
    "model, line, words",
    [
        (  # healthy at or below poor with better: higher
            "health:\n  at_risk_below: 50\n  measures:\n"
            "    - id: nps\n      title: NPS\n      value: signals.nps\n"
            "      healthy: 6\n      poor: 9\n",
            7,
            "healthy must be above poor",
        ),
        (  # the other way round with better: lower
            "health:\n  at_risk_below: 50\n  measures:\n"
            "    - id: t\n      title: T\n      value: signals.t\n      better: lower\n"
            "      healthy: 6\n      poor: 6\n",
            8,
            "healthy must be below poor",
        ),
        (  # an expression that does not parse
            "health:\n  at_risk_below: 50\n  measures:\n"
            '    - id: t\n      title: T\n      value: signal_sum("tickets", 30\n'
            "      healthy: 1\n      poor: 5\n      better: lower\n",
            6,
            "not a valid expression",
        ),
        (  # an unknown key in the model
            "health:\n  at_risk_below: 50\n  colour: red\n  measures:\n" + GOOD_MEASURE,
            3,
            "unknown key 'colour'",
        ),
        (  # an unknown key in a measure
            "health:\n  at_risk_below: 50\n  measures:\n" + GOOD_MEASURE + "      treshold: 3\n",
            9,
            "unknown key 'treshold'",
        ),
        (  # an unknown key in an opportunity, and its bad expression
            "health:\n  at_risk_below: 50\n  measures:\n" + GOOD_MEASURE + "  opportunities:\n"
            '    - id: o\n      title: O\n      when: "signals.nps >="\n      colour: red\n',
            13,
            "unknown key 'colour'",
        ),
        (  # an unknown play for an opportunity
            "health:\n  at_risk_below: 50\n  measures:\n" + GOOD_MEASURE + "  opportunities:\n"
            '    - id: o\n      title: O\n      when: "signals.nps >= 9"\n      play: no-such-play\n',
            10,
            "no play 'no-such-play'",
        ),
        (  # an at_risk_below outside 0-100
            "health:\n  at_risk_below: 120\n  measures:\n" + GOOD_MEASURE,
            2,
            "at_risk_below",
        ),
        (  # a zero weight
            "health:\n  at_risk_below: 50\n  measures:\n" + GOOD_MEASURE + "      weight: 0\n",
            9,
            "weight must be more than 0",
        ),
    ],
    ids=[
        "higher-healthy-not-above-poor",
        "lower-healthy-not-below-poor",
        "bad-expression",
        "unknown-model-key",
        "unknown-measure-key",
        "unknown-opportunity-key",
        "unknown-opportunity-play",
        "threshold-out-of-range",
        "zero-weight",
    ],
)
def test_validate_reports_a_bad_health_model_with_file_and_line(
    run, workspace, dump, model, line, words
):
    path = write(workspace / "playbooks" / "health.yaml", model)
    before = dump(workspace)
    problems = validate_problems(run, workspace)
    assert any(p.startswith(f"{path}:{line}:") and words in p for p in problems), problems
    # a command that needs the playbooks refuses to work and changes nothing
    result = run("run")
    assert result.exit_code != 0
    assert dump(workspace) == before


def test_validate_reports_every_problem_of_the_model_at_once(run, workspace):
    path = write(
        workspace / "playbooks" / "health.yaml",
        "health:\n  at_risk_below: 50\n  measures:\n"
        "    - id: a\n      title: A\n      value: signals.a\n      healthy: 1\n      poor: 2\n"
        '    - id: b\n      title: B\n      value: "signals.b +"\n      healthy: 2\n      poor: 1\n',
    )
    problems = validate_problems(run, workspace)
    assert [p.split(": ")[0] for p in problems] == [f"{path}:7", f"{path}:11"]


def test_validate_reports_a_second_health_model(run, workspace):
    second = write(
        workspace / "playbooks" / "zz-health.yaml",
        "# another model\nhealth:\n  at_risk_below: 40\n  measures:\n" + GOOD_MEASURE,
    )
    problems = validate_problems(run, workspace)
    assert len(problems) == 1
    assert problems[0].startswith(f"{second}:3:")
    assert "second health model" in problems[0]
    assert str(workspace / "playbooks" / "health.yaml") in problems[0]


def test_validate_reports_an_unknown_on_at_risk_play_at_its_line(run, workspace):
    path = write(
        workspace / "playbooks" / "health.yaml",
        "health:\n  at_risk_below: 50\n  on_at_risk: [at-risk-rescue, no-such-play]\n"
        "  measures:\n" + GOOD_MEASURE,
    )
    problems = validate_problems(run, workspace)
    assert len(problems) == 1 and "no play 'no-such-play'" in problems[0], problems
    assert problems[0].startswith(f"{path}:3:"), problems


def test_validate_reports_an_unknown_on_at_risk_play(run, workspace):
    path = write(
        workspace / "playbooks" / "health.yaml",
        "health:\n  at_risk_below: 50\n  on_at_risk: [at-risk-rescue, no-such-play]\n"
        "  measures:\n" + GOOD_MEASURE,
    )
    problems = validate_problems(run, workspace)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:") and "no play 'no-such-play'" in problems[0]


def test_validate_reports_an_unknown_variable_in_a_measure(run, workspace):
    path = write(
        workspace / "playbooks" / "health.yaml",
        "health:\n  at_risk_below: 50\n  measures:\n"
        "    - id: nps\n      title: NPS\n      value: signal.nps\n      healthy: 9\n      poor: 6\n",
    )
    problems = validate_problems(run, workspace)
    assert any(p.startswith(f"{path}:6:") and "signal" in p for p in problems), problems


def test_bulk_scoring_gives_the_same_result_as_one_customer_at_a_time(run, demo):
    """run and at-risk read what they need for every customer in a few grouped queries;
    the result must equal scoring each customer on its own."""
    from funnelctl.cli.common import workspace_library
    from funnelctl.health import Prefetch, score_customer
    from funnelctl.store import Store
    from funnelctl.store.health import active_customers
    from funnelctl.workspace import open_workspace

    assert (
        run(
            "log", "zoe.laurent@example.net", "call", "--channel", "phone", "--direction", "inbound"
        ).exit_code
        == 0
    )
    ws = open_workspace(demo, demo)
    library = workspace_library(ws)
    assert library.health is not None
    store = Store.open(ws.db_path)
    try:
        for today in ("2025-12-20", "2026-02-01", "2026-03-02", "2026-04-15"):
            prefetch = Prefetch(store, today)
            for customer in active_customers(store):
                alone = score_customer(store, library, ws.settings, library.health, customer, today)
                bulk = score_customer(
                    store, library, ws.settings, library.health, customer, today, prefetch
                )
                assert alone == bulk, customer["email"]
    finally:
        store.close()


def test_an_at_risk_item_shows_todays_score_not_the_first_days(run, crafted):
    email = "slip@example.com"
    add(run, email, "--signed-on", ago(5))
    signals(run, crafted, [(email, "nps", 3, TODAY), (email, "tickets", 8, TODAY)])
    ok(run("run", "--today", day(0)))
    first = next(i for i in due(run, 0) if i["kind"] == "at-risk")
    assert first["title"] == "At risk (16.7)"
    # two days later the NPS answer is better, but the customer is still at risk
    ok(run("signal", email, "nps", "7", "--today", day(2)))
    ok(run("run", "--today", day(2)))
    later = next(i for i in due(run, 2) if i["kind"] == "at-risk")
    assert (later["title"], later["due_on"]) == ("At risk (41.7)", day(0))
    assert later["reasons"][0].startswith("Tickets")

"""Sustain or scale: the report's workload projection against each member's capacity.

A workspace with one small funnel of our own and no other playbook (no health model,
no plays), so every task the replay makes is known:

    start   task "Kick-off call" due 1 day after entry; the daily run moves the
            customer on after 7 days
    run     task "Weekly check" due 7 days after entry

Today is Monday 2026-03-02: week 1 is 03-02..03-08, week 2 03-09..03-15, and so on.
"""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import write

from funnelctl.projection import ranges, spans

ONB = """\
id: onb
title: Onboarding
stages:
  - id: start
    title: Start
    advance_after: 7d
    on_enter:
      - task: Kick-off call
        due: 1d
  - id: run
    title: Running
    on_enter:
      - task: Weekly check
        due: 7d
"""
TEAM = "team: [{id: ana, capacity: 3}, {id: bruno, capacity: 5}, carla]\n"


@pytest.fixture
def onb(run, workspace):
    shutil.rmtree(workspace / "playbooks")
    (workspace / "playbooks").mkdir()
    write(workspace / "playbooks" / "onb.yaml", ONB)
    config = workspace / "funnelctl.yaml"
    config.write_text(config.read_text().replace("team: []\n", TEAM))
    return workspace


def add(run, email: str, owner: str, on: str) -> None:
    for args in (("customer", "add", email, "--owner", owner), ("enroll", email, "onb")):
        result = run(*args, "--today", on)
        assert result.exit_code == 0, result.stderr


def projection(run, *args: str) -> dict:
    result = run("report", "--today", "2026-03-02", "-f", "json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["projection"]


def load(data: dict) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for row in data["rows"]:
        found.setdefault(row["owner"], []).append(row["tasks"])
    return found


def test_the_book_replayed_forward_against_capacity(run, onb):
    # Enrolled today (so the period before, January and February, has no arrival and no
    # stage visit that ended: nobody is moved by hand): ana 4 customers, bruno 1, carla 1.
    for n in range(4):
        add(run, f"a{n}@example.com", "ana", "2026-03-02")
    add(run, "b@example.com", "bruno", "2026-03-02")
    add(run, "c@example.com", "carla", "2026-03-02")
    data = projection(run, "--since", "2026-01-01", "--until", "2026-02-28", "--weeks", "4")
    # Week 1: the Kick-off calls that exist (due 03-03), counted once, not replayed again.
    # Week 3: the replay moves each customer to run on day 7 (03-09), which makes the
    # Weekly check due on day 14 (03-16).
    assert load(data) == {"ana": [4, 0, 4, 0], "bruno": [1, 0, 1, 0], "carla": [1, 0, 1, 0]}
    assert data["rows"][:2] == [
        {"week": 1, "starts": "2026-03-02", "owner": "ana", "tasks": 4, "capacity": 3},
        {"week": 2, "starts": "2026-03-09", "owner": "ana", "tasks": 0, "capacity": 3},
    ]
    assert data["verdict"] == "scale"
    assert data["summary"] == (
        "scale: ana is over capacity in weeks 1 and 3; cannot judge carla: no capacity set"
    )
    assert data["members"] == [
        {"owner": "ana", "capacity": 3, "peak": 4, "over": [[1, 1], [3, 3]],
         "verdict": "over capacity in weeks 1 and 3"},
        {"owner": "bruno", "capacity": 5, "peak": 1, "over": [], "verdict": "within capacity"},
        {"owner": "carla", "capacity": None, "peak": 1, "over": [],
         "verdict": "no capacity set: cannot judge"},
    ]  # fmt: skip
    # Two weeks only: week 3 is out of sight.
    two = projection(run, "--since", "2026-01-01", "--until", "2026-02-28", "--weeks", "2")
    assert two["summary"].startswith("scale: ana is over capacity in week 1;")
    # The table says it too.
    table = run("report", "--today", "2026-03-02", "--since", "2026-01-01", "--until",
                "2026-02-28", "--weeks", "4")  # fmt: skip
    said = " ".join(table.stdout.split())  # the title may wrap
    assert "scale: ana is over capacity in weeks 1 and 3; cannot judge carla" in said


def test_new_customers_keep_arriving_at_the_periods_pace(run, onb):
    # ana enrolled 4 customers on 02-02; the period is the 28 days 02-02..03-01: 4 in 28
    # days, one new customer a week (1/7 a day), from tomorrow on.
    for n in range(4):
        add(run, f"a{n}@example.com", "ana", "2026-02-02")
    data = projection(run, "--since", "2026-02-02", "--until", "2026-03-01", "--weeks", "4")
    # The four: their Kick-off calls (due 02-03, overdue) count in week 1; the daily run
    # never ran, so they are still in start, 28 days in: their replay has nothing left.
    # A customer arriving t days from now (t = 1, 2, ...) makes a Kick-off due on day
    # t + 1 and a Weekly check on day t + 14, each 1/7 of a task:
    #   week 1  4 + Kick-offs 03-04..03-08 (5/7)                    = 4.7 -> 5
    #   week 2  Kick-offs 03-09..03-15 (7/7)                        = 1
    #   week 3  Kick-offs (7/7) + Weekly checks 03-17..03-22 (6/7)  = 1.9 -> 2
    #   week 4  Kick-offs (7/7) + Weekly checks (7/7)               = 2
    assert load(data)["ana"] == [5, 1, 2, 2]
    assert data["verdict"] == "scale"  # ana can do 3 a week


def test_without_any_capacity_nobody_is_judged(run, workspace):
    # team: [ana, bruno] (no capacity) stays valid; the report will not guess.
    config = workspace / "funnelctl.yaml"
    config.write_text(config.read_text().replace("team: []\n", "team: [ana, bruno]\n"))
    data = projection(run)
    assert data["verdict"] == "unknown"
    assert data["summary"].startswith("cannot judge: no team member has a capacity")
    assert [m["verdict"] for m in data["members"]] == ["no capacity set: cannot judge"] * 2


def test_week_ranges_are_merged():
    assert ranges([12, 13, 14, 15]) == [(12, 15)]
    assert spans([12, 13, 14, 15]) == "weeks 12–15"
    assert spans([3]) == "week 3"
    assert spans([1, 2, 5, 7, 8]) == "weeks 1–2, 5 and 7–8"


def test_weeks_must_be_sensible(run, workspace):
    result = run("report", "--weeks", "0")
    assert result.exit_code == 2 and "--weeks" in result.stderr


def test_the_projection_table_fits_80_columns_with_every_owner_whole(run, onb):
    for owner in ("ana", "bruno", "carla"):
        add(run, f"{owner}@example.com", owner, "2026-02-02")

    result = run("report", "--today", "2026-03-02", "--weeks", "12", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.stderr
    shown = result.stdout.splitlines()

    start = next(i for i, line in enumerate(shown) if line.strip().startswith("Tasks per week"))
    table = shown[start:]
    assert all(len(line) <= 80 for line in table), table
    header = next(line for line in table if line.startswith("owner"))
    assert header.split() == ["owner", "capacity", *map(str, range(1, 13))]
    assert {line.split()[0] for line in table[table.index(header) + 1 :] if line.strip()} >= {
        "ana",
        "bruno",
        "carla",
    }

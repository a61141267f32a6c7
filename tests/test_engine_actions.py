"""Entry actions in the engine: what fails one action (a line in the timeline, the others
run) and what is a bug (it propagates, and the transaction leaves nothing behind)."""

from __future__ import annotations

from pathlib import Path

import pytest

from funnelctl import activities
from funnelctl.engine import RUNNERS, Engine
from funnelctl.playbooks import ACTION_KINDS, Library, load_library
from funnelctl.store import Store, customers
from funnelctl.workspace import Settings

TODAY = "2026-03-02"
SETTINGS = Settings(team=("ana",), sender="Ana <ana@example.com>")


def library(tmp_path: Path, on_enter: str) -> Library:
    (tmp_path / "one.yaml").write_text(
        "id: one\ntitle: One\nstages:\n  - id: first\n    title: First\n    on_enter:\n" + on_enter
    )
    return load_library([tmp_path / "one.yaml"], team=SETTINGS.team)


def enroll(store: Store, book: Library) -> None:
    with store.write():
        cid = customers.insert(store, {"email": "c@example.com", "owner": "ana"}, TODAY)
        customer = customers.get(store, cid)
        assert customer is not None
        Engine(store, book, SETTINGS, TODAY).enroll(customer, book.funnel("one"))


def timeline(store: Store) -> list[tuple[str, int]]:
    return [(e["summary"], e["ok"]) for e in store.rows("SELECT * FROM events ORDER BY id")]


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        ("1 / 0 > 1", "division by zero"),
        ("customer.mrr < 1000", "'<' not supported between instances of 'NoneType' and 'int'"),
        ("customer.fields.missing > 1", "'dict object' has no attribute 'missing'"),
    ],
)
def test_a_condition_that_cannot_be_evaluated_fails_its_action_only(tmp_path, condition, reason):
    book = library(
        tmp_path,
        f"      - task: Guarded\n        when: {condition!r}\n      - task: Still created\n",
    )
    store = Store.memory()
    enroll(store, book)
    assert timeline(store) == [
        (
            f"task 'Guarded' due on entry (the stage's owner, internal) [when {condition}]: "
            f"{reason}",
            0,
        ),
        ("Task t1 'Still created' for ana, due 2026-03-02", 1),
    ]


def test_a_bug_in_an_action_propagates_and_nothing_is_kept(tmp_path, monkeypatch):
    book = library(tmp_path, "      - task: Created\n")

    def broken(*args: object, **kwargs: object) -> int:
        raise TypeError("a bug, not the user's data")

    monkeypatch.setattr(activities, "create_task", broken)
    store = Store.memory()
    with pytest.raises(TypeError, match="a bug"):
        enroll(store, book)
    assert store.rows("SELECT * FROM customers") == []
    assert store.rows("SELECT * FROM action_runs") == []


def test_every_action_type_has_one_runner_and_one_kind():
    assert list(RUNNERS) == list(ACTION_KINDS)
    assert [kind.keyword for kind in ACTION_KINDS.values()] == [
        "task",
        "email",
        "close",
        "enroll",
        "assign",
        "play",
    ]

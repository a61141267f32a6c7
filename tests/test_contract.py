"""The JSON that scripts rely on: the documented keys of due, send, run, import and
at-risk, with their types. More keys may be added; none of these may go or change type."""

from __future__ import annotations

import json

from conftest import write

DUE_KINDS = {"task", "stagnation", "email", "at-risk"}
SECTIONS = {"overdue", "today", "attention", "coming", "waiting"}


def data(result):
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_due_items_keep_their_documented_keys(run, demo):
    data(run("run", "-f", "json"))  # opens the at-risk episodes that due lists
    items = data(run("due", "--days", "30", "-f", "json"))
    assert {item["kind"] for item in items} == DUE_KINDS
    for item in items:
        assert item["kind"] in DUE_KINDS
        assert isinstance(item["customer"], str) and item["customer"]
        assert isinstance(item["title"], str) and item["title"]
        assert len(item["due_on"]) == 10 and item["due_on"][4] == "-"
        assert isinstance(item["days_overdue"], int)
        for key in ("funnel", "stage", "owner"):
            assert key in item and (item[key] is None or isinstance(item[key], str))
        if item["kind"] in ("task", "email"):
            assert isinstance(item["id"], int)
            assert item["ref"] == f"{item['kind'][0]}{item['id']}"
        assert item["section"] in SECTIONS
        assert isinstance(item["reasons"], list)
        assert all(isinstance(r, str) for r in item["reasons"])


def test_send_summary_keeps_its_documented_keys(run, demo):
    summary = data(run("send", "-f", "json"))
    for key in ("sent", "failed", "skipped", "uncertain", "deferred", "held"):
        assert isinstance(summary[key], int)


def test_run_summary_keeps_its_documented_keys(run, demo):
    summary = data(run("run", "-f", "json"))
    for key in (
        "moved",
        "tasks",
        "emails",
        "emails_skipped",
        "escalated",
        "failed_actions",
        "scored",
        "at_risk",
        "plays",
    ):
        assert isinstance(summary[key], int)


def test_import_summary_is_exactly_its_documented_keys(run, workspace, tmp_path):
    write(tmp_path / "people.csv", "email,name\nann@example.com,Ann\n")
    summary = data(run("import", str(tmp_path / "people.csv"), "-f", "json"))
    assert summary == {
        "inserted": 1,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "enrolled": 0,
        "without_email": 0,
    }


def test_at_risk_rows_keep_their_documented_keys(run, demo):
    rows = data(run("at-risk", "-f", "json"))
    assert any(row["at_risk"] for row in rows) and any(row["opportunities"] for row in rows)
    for row in rows:
        assert isinstance(row["customer"], str)
        assert row["score"] is None or isinstance(row["score"], (int, float))
        assert isinstance(row["at_risk"], bool)
        assert all(isinstance(r, str) for r in row["reasons"])
        assert all(isinstance(o, str) for o in row["opportunities"])

"""The set-based import gives exactly what the row-by-row import gives.

The same file is imported into two identical workspaces, row by row into one and in
bulk into the other; then every table is compared row for row (in rowid order), with
the import summaries. Bad files must fail with the same messages and change nothing,
and a file whose rows depend on each other falls back to the row import.
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from conftest import TODAY, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelctl import mail
from funnelctl.cli.common import workspace_library
from funnelctl.errors import ValidationError
from funnelctl.importing import ImportOptions, ImportResult, import_customers
from funnelctl.store import Store
from funnelctl.workspace import open_workspace

# Every owner rule, conditions on the customer's values (one that fails when mrr is
# missing), a then: follow-up, partners, emails that go stale for back-dated entries.
FUNNEL = """\
id: mix
title: Mix
stages:
  - id: intake
    title: Intake
    owner: round-robin
    on_enter:
      - assign: least-busy
        when: "not customer.owner"
      - task: Read the contract
        due: 1d
        then:
          task: Summarise it
          due: 1d
      - email: welcome
        delay: 2d
        when: "customer.plan == 'growth'"
      - task: Book the kick-off
        owner: least-busy
        when: "customer.mrr > 100"
  - id: helpdesk
    title: Help desk
    owner: partner:desk
    on_enter:
      - task: Answer the first question
        due: 1d
      - email: welcome
        when: "days_in_stage > 20 and 'vip' in customer.tags"
  - id: middle
    title: Middle
    owner: customer-owner
    on_enter:
      - task: Check in
        owner: ana
        when: "customer.fields.industry == 'Retail'"
      - email: welcome
        stop_on_reply: true
      - assign: round-robin
  - id: late
    title: Late
    owner: least-busy
    on_enter:
      - task: Late task
      - email: welcome
        when: "owner == 'bruno' or (days_since_signed or 0) > 30"
partners:
  - id: desk
    name: Harbour Help Desk
    email: desk@example.com
"""

HEADER = "email,external_id,name,owner,plan,mrr,tags,industry,signed_on,funnel,stage,entered_on\n"
# Customers both workspaces hold before the import: one already in the funnel.
BEFORE = (
    HEADER + "old1@example.com,X1,Old One,ana,starter,50,,Retail,2026-01-01,,,\n"
    "old2@example.com,X2,Old Two,,growth,,vip,,,,,\n"
    "old3@example.com,,Old Three,bruno,starter,10,,,,mix,intake,2026-02-20\n"
    "old4@example.com,X4,Old Four,ana,,,,,,,,\n"
)
MIXED = HEADER + (
    # new customers at every stage, with and without owners, today and back-dated
    "new1@example.com,,New One,,growth,250,vip,Retail,2025-12-01,mix,intake,\n"
    "new2@example.com,N2,New Two,ana,starter,,,,,mix,helpdesk,2026-01-02\n"
    ",N3,Without Email,,growth,90,vip;beta,Retail,,mix,helpdesk,2026-02-01\n"
    "new4@example.com,,New Four,,,,,Retail,2026-02-27,mix,middle,2026-02-28\n"
    "new5@example.com,,New Five,bruno,growth,1000,,,,mix,late,2025-11-01\n"
    "new6@example.com,,New Six,,,,,,,mix,late,\n"
    "new7@example.com,,New Seven,,starter,5,,,,after-sales,customer-contact,2026-02-25\n"
    "new8@example.com,,New Eight,,,,,,,,,\n"
    "new9@example.com,,New Nine,partner:desk,growth,300,,,,mix,intake,\n"
    "new10@example.com,,New Ten,,,,,,,mix,intake,\n"
    # updated (and enrolled), unchanged (already in the funnel), updated without a funnel
    "OLD1@example.com,,Old One,bruno,growth,50,,Retail,2026-01-01,mix,middle,2026-02-10\n"
    "old3@example.com,,Old Three,bruno,starter,10,,,,mix,intake,\n"
    ",X2,Old Two Renamed,,,,,Hospitality,,,,\n"
    "old4@example.com,X4,Old Four,ana,,,,,,after-sales,,\n"
)


@pytest.fixture
def book(tmp_path: Path, run) -> Path:
    """A workspace with a team of two, a partner, the mixed funnel and four customers."""
    root = tmp_path / "book"
    assert run("init", str(root)).exit_code == 0
    (root / "playbooks" / "mix.yaml").write_text(FUNNEL)
    settings_file = root / "funnelctl.yaml"
    settings_file.write_text(settings_file.read_text().replace("team: []", "team: [ana, bruno]"))
    before = write(tmp_path / "before.csv", BEFORE)
    import_file(root, before, set_based=False)
    return root


def import_file(root: Path, path: Path, *, set_based: bool, **options: object) -> ImportResult:
    """Import ``path`` into the workspace at ``root``, Message-IDs numbered from 1."""
    workspace = open_workspace(root, root)
    numbers = itertools.count(1)
    original = mail.message_id
    mail.message_id = lambda settings: f"<{next(numbers)}@test.invalid>"  # type: ignore[assignment]
    store = Store.open(workspace.db_path)
    try:
        return import_customers(
            store,
            lambda: workspace_library(workspace),
            path,
            ImportOptions(set_based=set_based, **options),  # type: ignore[arg-type]
            TODAY,
            settings=workspace.settings,
            name=path.name,
        )
    finally:
        store.close()
        mail.message_id = original  # type: ignore[assignment]


def tables(root: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table, row by row in rowid order (the workspace's random id left out)."""
    conn = sqlite3.connect(root / "funnel.db")
    try:
        names = {
            row[0]: "WITHOUT ROWID" in row[1]
            for row in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name != "
                "'_sqlite_migrations' ORDER BY name"
            )
        }
        found = {  # a WITHOUT ROWID table (the inbox's) in its key's order
            name: conn.execute(f"SELECT * FROM {name}").fetchall()
            if keyed
            else conn.execute(f"SELECT * FROM {name} ORDER BY rowid").fetchall()
            for name, keyed in names.items()
        }
        found["meta"] = [row for row in found["meta"] if row[0] != "workspace_id"]
        # the schema too: the triggers the bulk import lifts while it writes are back
        found["sqlite_master"] = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
        ).fetchall()
        return found
    finally:
        conn.close()


def both(
    book: Path, tmp_path: Path, text: str, **options: object
) -> tuple[ImportResult, ImportResult, Path, Path]:
    """The file imported row by row into one copy of ``book``, in bulk into another."""
    rows, bulk = tmp_path / "rows", tmp_path / "bulk"
    for copy in (rows, bulk):
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(book, copy)
    path = write(tmp_path / "people.csv", text)
    by_row = import_file(rows, path, set_based=False, **options)
    in_bulk = import_file(bulk, path, set_based=True, **options)
    return by_row, in_bulk, rows, bulk


def assert_same(by_row: ImportResult, in_bulk: ImportResult, rows: Path, bulk: Path) -> None:
    assert in_bulk.summary() == by_row.summary()
    assert in_bulk.notes == by_row.notes
    expected, found = tables(rows), tables(bulk)
    assert list(found) == list(expected)
    for name in expected:
        assert found[name] == expected[name], name


def test_a_mixed_file_gives_the_same_book_in_bulk(book, tmp_path):
    by_row, in_bulk, rows, bulk = both(book, tmp_path, MIXED)
    assert in_bulk.set_based and not by_row.set_based
    assert by_row.summary() == {
        "inserted": 10,
        "updated": 2,
        "unchanged": 2,
        "rejected": 0,
        "enrolled": 11,
        "without_email": 1,
    }
    assert_same(by_row, in_bulk, rows, bulk)
    found = tables(bulk)
    # the file exercised what it is meant to: partners told, stale emails skipped,
    # conditions false and failing, owners handed out in turn
    outcomes = " ".join(row[4] for row in found["action_runs"])
    assert "skipped" in outcomes and "failed" in outcomes and "assigned" in outcomes
    assert any(row[-2] == "desk" for row in found["outbox"])  # partner
    assert any(row[9] == "skipped" for row in found["outbox"])  # stale
    assert any(row[9] == "queued" for row in found["outbox"])


def test_without_actions_and_with_a_funnel_option(book, tmp_path):
    text = "".join(line for line in MIXED.splitlines(True) if "after-sales" not in line)
    text = text.replace(",mix,", ",,")
    for options in ({"run_actions": False, "funnel": "mix"}, {"funnel": "mix", "stage": "late"}):
        by_row, in_bulk, rows, bulk = both(book, tmp_path, text, **options)
        assert in_bulk.set_based
        assert_same(by_row, in_bulk, rows, bulk)


def test_a_dry_run_in_bulk_changes_nothing(book, tmp_path, dump):
    before = dump(book)
    path = write(tmp_path / "people.csv", MIXED)
    result = import_file(book, path, set_based=True, dry_run=True)
    assert result.set_based and result.inserted == 10
    assert dump(book) == before


BAD = HEADER + (
    "a@example.com,A1,,,,,,,,,,\n"
    "a@example.com,A2,,,,,,,,,,\n"  # a duplicate email: its external id is never remembered
    "b@example.com,A2,,,,,,,,,,\n"  # so this one is no duplicate
    "c@example.com,A1,,,,abc,,,,,,\n"  # a duplicate external id (before its bad mrr)
    "d@example.com,,,nobody,,,,,,,,\n"  # not in the team
    ",,Nameless,,,,,,,,,\n"  # no key
    "e@example.com,X1,,,,,,,,,,\n"  # X1 is old1's
    "f@example.com,,,,,,,,,nowhere,,\n"  # no such funnel
    "g@example.com,,,,,,,,,mix,intake,2027-01-01\n"  # after today
    "h@example.com,,,,,-5,,,,,,\n"
    "too,many,cells,,,,,,,,,,,,\n"
    "i@example.com,,,,,,,,not a date,,,\n"
    + "".join(f"bad{n}@example.com,,,,,x{n},,,,,,\n" for n in range(15))
    + "Total,,,,,,,,,,,\n"
)


def test_bad_rows_give_the_same_messages_and_change_nothing(book, tmp_path, dump):
    path = write(tmp_path / "people.csv", BAD)
    failures = []
    for set_based in (False, True):
        before = dump(book)
        with pytest.raises(ValidationError) as caught:
            import_file(book, path, set_based=set_based)
        assert dump(book) == before
        failures.append((caught.value.message, caught.value.details))
    assert failures[0] == failures[1]
    message, details = failures[1]
    assert message.startswith("people.csv: 25 bad row(s)")
    assert "people.csv:3: email 'a@example.com' is already on line 2 of this file" in details
    assert "people.csv:5: external_id 'A1' is already on line 2 of this file" in details
    assert details[-1] == "… and 5 more bad row(s)"


def test_rows_that_depend_on_each_other_are_imported_row_by_row(book, tmp_path):
    # old1 takes a new email; a later row then gives old1's former email to a new customer
    text = HEADER + ("renamed@example.com,X1,,,,,,,,,,\nold1@example.com,N1,,,,,,,,mix,intake,\n")
    by_row, in_bulk, rows, bulk = both(book, tmp_path, text, key="external_id")
    assert not in_bulk.set_based
    assert_same(by_row, in_bulk, rows, bulk)


def test_stages_with_actions_the_bulk_path_does_not_run_fall_back(book, tmp_path):
    # approved closes the enrollment and enrolls elsewhere; a condition on health
    text = HEADER + "z@example.com,,,,,,,,,after-sales,approved,\n"
    by_row, in_bulk, rows, bulk = both(book, tmp_path, text)
    assert not in_bulk.set_based
    assert_same(by_row, in_bulk, rows, bulk)


STAGES = ["intake", "helpdesk", "middle", "late", ""]
row = st.tuples(
    st.sampled_from(["new", "old1", "old2", "old3", "old4", "noemail"]),
    st.sampled_from(["", "ana", "bruno", "partner:desk"]),
    st.sampled_from(["", "starter", "growth"]),
    st.sampled_from(["", "5", "250"]),
    st.sampled_from(["", "vip", "beta;vip"]),
    st.sampled_from(["", "Retail", "Legal"]),
    st.sampled_from(STAGES),
    st.sampled_from(["", "2025-10-01", "2026-02-01", "2026-02-28", TODAY]),
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(row, min_size=1, max_size=12))
def test_random_files_give_the_same_book_in_bulk(book, rows):
    lines, used = [], set()
    for number, (who, owner, plan, mrr, tags, industry, stage, entered) in enumerate(rows):
        if who in used:
            continue  # one row per customer (a duplicate is a bad row in both)
        used.add(who)
        email = f"{who}@example.com" if who.startswith("old") else f"r{number}@example.com"
        external = f"R{number}" if who in ("new", "noemail") else ""
        if who == "noemail":
            email = ""
        funnel = "mix" if stage else ""
        lines.append(
            f"{email},{external},Name {number},{owner},{plan},{mrr},{tags},{industry},,"
            f"{funnel},{stage},{entered if stage else ''}\n"
        )
    with tempfile.TemporaryDirectory() as folder:
        by_row, in_bulk, a, b = both(book, Path(folder), HEADER + "".join(lines))
        assert in_bulk.set_based
        assert_same(by_row, in_bulk, a, b)

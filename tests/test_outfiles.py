"""Files funnelctl writes for the user: owner-only, whole or absent, never over the workspace."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from conftest import db_dump, fill


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


PROTECTED = [
    ("funnel.db", "the workspace's database"),
    ("funnel.db-wal", "the workspace database's write-ahead log"),
    ("funnel.db-shm", "the workspace database's shared-memory file"),
    ("funnelctl.yaml", "the workspace's settings file"),
    ("playbooks/support.yaml", "in the workspace's playbooks folder"),
    ("templates/welcome.txt", "in the workspace's templates folder"),
]


def refusal(target: Path, what: str) -> str:
    return (
        f"Error: {target} is {what}: funnelctl never writes over the workspace's own files. "
        "Choose another file name.\n"
    )


@pytest.mark.parametrize(("name", "what"), PROTECTED, ids=[p[0] for p in PROTECTED])
@pytest.mark.parametrize(
    "command",
    [
        ["export", "customers"],
        ["export", "calendar", "--force"],
        ["export", "outbox", "-f", "json", "--force", "-o"],
        ["report", "--force", "--html"],
        ["backup"],
    ],
    ids=["export", "calendar", "export-o", "report-html", "backup"],
)
def test_no_command_writes_over_the_workspaces_own_files(demo, run, name, what, command):
    target = demo / name
    ok(run("customer", "list"))  # the database's -wal and -shm exist while it is open
    before = {p: p.read_bytes() for p in demo.rglob("*") if p.is_file() and "-" not in p.name}
    before_db = db_dump(demo)

    result = run(*command, str(target))

    assert (result.exit_code, result.stderr) == (1, refusal(target, what))
    assert db_dump(demo) == before_db
    assert {p: p.read_bytes() for p in before} == before


def test_a_symbolic_link_to_the_database_is_seen_through(demo, run, tmp_path):
    link = tmp_path / "customers.csv"
    link.symlink_to(demo / "funnel.db")
    size = (demo / "funnel.db").stat().st_size

    result = run("export", "customers", str(link), "--force")

    assert (result.exit_code, result.stderr) == (1, refusal(link, "the workspace's database"))
    assert (demo / "funnel.db").stat().st_size == size


def test_skip_bad_cannot_be_pointed_at_the_settings(run, workspace, tmp_path):
    (tmp_path / "people.csv").write_text("email\nnot-an-email\n")
    settings = workspace / "funnelctl.yaml"
    before = settings.read_text()

    result = run("import", str(tmp_path / "people.csv"), "--skip-bad", str(settings), "--force")

    assert (result.exit_code, result.stderr) == (
        1,
        refusal(settings, "the workspace's settings file"),
    )
    assert settings.read_text() == before


def test_an_existing_file_is_replaced_only_with_force(demo, run, tmp_path):
    target = tmp_path / "customers.csv"
    target.write_text("keep me\n")

    refused = run("export", "customers", str(target))
    assert (refused.exit_code, refused.stderr) == (
        1,
        f"Error: Cannot write {target}: the file already exists; choose a new name, or pass "
        "--force to replace it.\n",
    )
    assert target.read_text() == "keep me\n"

    ok(run("export", "customers", str(target), "--force"))
    assert target.read_text().startswith("email,")


def test_report_html_refuses_an_existing_file_without_force(demo, run, tmp_path):
    page = tmp_path / "report.html"
    page.write_text("last week's page")
    result = run("report", "--html", str(page), "-f", "json")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith(f"Error: Cannot write the report to {page}: the file already")
    assert page.read_text() == "last week's page"


def test_every_file_written_for_the_user_is_owner_only(demo, run, tmp_path):
    ok(run("export", "customers", str(tmp_path / "customers.csv")))
    ok(run("export", "calendar", str(tmp_path / "tasks.ics")))
    ok(run("export", "outbox", "-f", "json", "-o", str(tmp_path / "outbox.json")))
    ok(run("report", "--html", str(tmp_path / "report.html")))
    (tmp_path / "people.csv").write_text("email\nnot-an-email\nann@example.com\n")
    ok(run("import", str(tmp_path / "people.csv"), "--skip-bad", str(tmp_path / "bad.csv")))
    ok(run("backup", str(tmp_path / "backup.db")))

    written = ["customers.csv", "tasks.ics", "outbox.json", "report.html", "bad.csv", "backup.db"]
    assert {name: oct(mode(tmp_path / name)) for name in written} == {
        name: "0o600" for name in written
    }
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_full_disk_leaves_no_partial_export(demo, run, small_disk):
    disk = small_disk(64)
    fill(disk)
    target = disk / "customers.csv"

    result = run("export", "customers", str(target))

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: Cannot write {target}: the disk is full. Free some space and try again.\n"
    )
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_the_workspace_folders_are_seen_through_a_bind_mount(demo, run, tmp_path):
    import subprocess

    view = tmp_path / "view"
    view.mkdir()
    if subprocess.run(["mount", "--bind", str(demo), str(view)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here (needs root)")
    try:
        target = view / "templates" / "welcome.txt"
        before = (demo / "templates" / "welcome.txt").read_text()
        result = run("export", "customers", str(target), "--force")
        assert (result.exit_code, result.stderr) == (
            1,
            refusal(target, "in the workspace's templates folder"),
        )
        assert (demo / "templates" / "welcome.txt").read_text() == before
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)

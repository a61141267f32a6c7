"""The checked playbooks are cached, and the cache never hides a change or a problem."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from funnelctl.playbook_cache import CACHE_NAME, OUTLINE_NAME


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


def cache(workspace: Path) -> Path:
    return workspace / ".cache" / CACHE_NAME


def test_the_cache_is_written_owner_only_and_used(run, workspace):
    ok(run("playbook", "list"))
    assert stat.S_IMODE(cache(workspace).stat().st_mode) == 0o600
    before = cache(workspace).stat().st_mtime_ns
    ok(run("playbook", "list"))
    assert cache(workspace).stat().st_mtime_ns == before  # read, not written again


def test_a_changed_playbook_is_read_again(run, workspace):
    ok(run("playbook", "list"))
    path = workspace / "playbooks" / "support.yaml"
    path.write_text(path.read_text().replace("title: Customer support funnel", "title: Care", 1))
    listed = ok(run("playbook", "list", "-f", "json")).stdout
    assert '"Care"' in listed


def test_a_broken_playbook_is_reported_every_time_and_never_cached(run, workspace):
    ok(run("playbook", "list"))
    path = workspace / "playbooks" / "support.yaml"
    path.write_text(path.read_text() + "\nnonsense: [\n")
    for _ in range(2):
        result = run("due")
        assert result.exit_code == 1 and str(path) in result.stderr


def test_a_damaged_cache_is_rebuilt_silently(run, workspace):
    ok(run("playbook", "list"))
    cache(workspace).write_bytes(b"{not json at all")
    result = ok(run("playbook", "list"))
    assert result.stderr == ""
    assert (
        cache(workspace).read_bytes()[:1] == b"{"
        and b"not json" not in cache(workspace).read_bytes()
    )


def test_a_team_change_is_a_change(run, workspace):
    settings = workspace / "funnelctl.yaml"
    settings.write_text(settings.read_text().replace("team: []", "team: [ana, zed]"))
    (workspace / "playbooks" / "zz-team.yaml").write_text(
        "id: team-check\ntitle: Team check\nstages:\n  - id: first\n    title: First\n"
        "    on_enter:\n      - task: Call\n        owner: zed\n"
    )
    ok(run("playbook", "list"))  # checked against a team with zed, and cached
    settings.write_text(settings.read_text().replace("team: [ana, zed]", "team: [ana]"))
    result = run("playbook", "list")
    assert result.exit_code == 1 and "zed" in result.stderr


def test_an_edit_that_keeps_the_size_and_the_time_is_still_seen(run, workspace):
    import os

    ok(run("playbook", "list"))
    path = workspace / "playbooks" / "support.yaml"
    before = path.stat()
    path.write_text(path.read_text().replace("Customer support funnel", "Customer SUPPORT funnel"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    assert "Customer SUPPORT funnel" in ok(run("playbook", "list", "-f", "json")).stdout


def test_a_cache_someone_else_wrote_can_never_run_code(run, workspace, tmp_path):
    import json
    import pickle

    ok(run("playbook", "list"))
    key = json.loads(cache(workspace).read_text())["key"]
    marker = tmp_path / "ran"
    hostile = [
        # a pickle that would run a command if it were ever unpickled
        pickle.dumps({"key": key, "library": eval, "cmd": f"open({str(marker)!r}, 'w')"}),
        # the right key, naming a class that is not one of the playbooks'
        json.dumps(
            {"key": key, "library": {"class": "Popen", "fields": {"args": ["touch", str(marker)]}}}
        ).encode(),
    ]
    for content in hostile:
        cache(workspace).write_bytes(content)
        ok(run("playbook", "list"))
    assert not marker.exists()


# -- the outline that `due` reads (outline.py) --------------------------------------------


def outline_cache(workspace: Path) -> Path:
    return workspace / ".cache" / OUTLINE_NAME


def stuck_reasons(run) -> list[str]:
    items = json.loads(ok(run("due", "-f", "json")).stdout)
    return [reason for item in items if item["kind"] == "stagnation" for reason in item["reasons"]]


def enrolled_ten_days_ago(run) -> None:
    ok(run("customer", "add", "ana@example.com", "--name", "Ana"))
    ok(
        run(
            "enroll",
            "ana@example.com",
            "after-sales",
            "--stage",
            "deployment",
            "--today",
            "2026-02-20",
        )
    )


def test_due_reads_the_outline_alone_once_it_is_cached(run, workspace):
    enrolled_ten_days_ago(run)
    first = ok(run("due", "-f", "json")).stdout
    assert stat.S_IMODE(outline_cache(workspace).stat().st_mode) == 0o600
    cache(workspace).unlink()  # the library's own cache: not needed while the outline holds
    written = outline_cache(workspace).stat().st_mtime_ns
    assert ok(run("due", "-f", "json")).stdout == first
    assert not cache(workspace).exists()
    assert outline_cache(workspace).stat().st_mtime_ns == written  # read, not written again


def test_a_changed_clock_is_seen_by_due(run, workspace):
    enrolled_ten_days_ago(run)
    assert stuck_reasons(run) == []  # 10 days in deployment, limit 30
    path = workspace / "playbooks" / "after-sales.yaml"
    text = path.read_text()
    assert text.count("stagnant_after: 30d") == 1
    path.write_text(text.replace("stagnant_after: 30d", "stagnant_after: 5d"))
    assert stuck_reasons(run) == ["in deployment for 10 days (limit 5)"]


def test_a_damaged_or_foreign_outline_is_rebuilt_silently(run, workspace):
    enrolled_ten_days_ago(run)
    first = ok(run("due", "-f", "json")).stdout
    key = json.loads(outline_cache(workspace).read_text())["key"]
    for damage in (
        b"{not json",
        json.dumps({"key": key, "value": {"class": "Library", "fields": {}}}).encode(),
        json.dumps({"key": key, "value": {"class": "Outline", "fields": {"stages": 1}}}).encode(),
    ):
        outline_cache(workspace).write_bytes(damage)
        result = ok(run("due", "-f", "json"))
        assert (result.stdout, result.stderr) == (first, "")
        assert json.loads(outline_cache(workspace).read_text())["key"] == key

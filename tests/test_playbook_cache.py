"""The checked playbooks are cached, and the cache never hides a change or a problem."""

from __future__ import annotations

import stat
from pathlib import Path

from funnelctl.playbook_cache import CACHE_NAME


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
    cache(workspace).write_bytes(b"\x80\x04not a pickle at all")
    result = ok(run("playbook", "list"))
    assert result.stderr == ""
    assert cache(workspace).read_bytes()[:2] != b"\x80\x04n"


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

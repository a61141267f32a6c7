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

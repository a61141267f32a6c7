"""Start-up stays cheap: a command imports what it uses, and nothing it does not need.

Each check runs funnelctl in a fresh interpreter and reads ``sys.modules`` as it exits:
what a script's ``funnelctl due --format json`` loads, never how long it takes (timing
belongs in benchmarks/).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.core import TyperCommand

from funnelctl.cli.commands import COMMANDS, load_command

# Run funnelctl as the console script does, then write every module loaded to a file.
WRAPPER = """
import json, sys
out = sys.argv.pop(1)
try:
    from funnelctl.cli import main
    main()
finally:
    with open(out, "w", encoding="utf-8") as f:
        json.dump(sorted(sys.modules), f)
"""

# What a script's JSON or CSV never needs: drawing, templates, building emails, and (the
# checked playbooks and settings being cached) reading YAML.
NOT_FOR_SCRIPTS = ("rich", "jinja2", "markdown", "markupsafe", "email", "yaml")
# Nor, `due` reading the playbooks' outline (outline.py), the playbooks' classes and what
# reading or acting on them takes; nor OpenSSL's digests (the caches' keys are exact copies);
# nor dataclasses: defining one compiles its methods, and `due` needs none (its records are
# named tuples).
NOT_FOR_DUE = (
    "funnelctl.playbooks",
    "funnelctl.activities",
    "funnelctl.engine",
    "hashlib",
    "dataclasses",
)


def loaded(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``funnelctl ARGS`` in a new interpreter; its result and the modules it loaded."""
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(out), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done, set(json.loads(out.read_text(encoding="utf-8")))


def under(modules: set[str], *packages: str) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


@pytest.fixture
def book(tmp_path: Path, run, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace made by `funnelctl init`, with one task due, found through FUNNELCTL_HOME."""
    root = tmp_path / "ws"
    assert run("init", str(root)).exit_code == 0
    monkeypatch.setenv("FUNNELCTL_HOME", str(root))
    monkeypatch.setenv("FUNNELCTL_TODAY", "2026-03-02")
    for args in (
        ("customer", "add", "ana@example.com", "--name", "Ana"),
        ("task", "add", "ana@example.com", "Call Ana", "--due", "today"),
    ):
        result = run(*args)
        assert result.exit_code == 0, result.stderr
    return root


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_due_for_a_script_loads_no_drawing_templates_or_email(tmp_path, book, fmt):
    first, _ = loaded(tmp_path, "due", "--format", fmt)  # may read the files and cache them
    assert first.returncode == 0, first.stderr
    done, modules = loaded(tmp_path, "due", "--format", fmt)
    assert done.returncode == 0, done.stderr
    assert "Call Ana" in done.stdout
    assert under(modules, *NOT_FOR_SCRIPTS, *NOT_FOR_DUE) == []
    assert ("csv" in modules) == (fmt == "csv")  # the csv module for CSV alone


def test_due_for_one_team_member_loads_no_playbook_either(tmp_path, book):
    settings = book / "funnelctl.yaml"
    assert settings.read_text().count("team: []") == 1
    settings.write_text(settings.read_text().replace("team: []", "team: [ana, bruno]"))
    first, _ = loaded(tmp_path, "due", "-f", "json", "--owner", "bruno")
    assert first.returncode == 0, first.stderr
    done, modules = loaded(tmp_path, "due", "-f", "json", "--owner", "bruno")
    assert (done.returncode, done.stdout) == (0, "[]\n")
    assert under(modules, *NOT_FOR_SCRIPTS, *NOT_FOR_DUE) == []
    typo, _ = loaded(tmp_path, "due", "--owner", "brunO")  # anyone else is still checked
    assert typo.returncode == 2 and "did you mean 'bruno'" in typo.stderr, typo.stderr


def test_due_loads_its_own_command_module_only(tmp_path, book):
    done, modules = loaded(tmp_path, "due", "-f", "json")
    assert done.returncode == 0, done.stderr
    commands = {f"funnelctl.cli.{entry.module}" for entry in COMMANDS.values()}
    assert sorted(commands & modules) == ["funnelctl.cli.due"]


def test_the_command_list_loads_no_command_module(tmp_path):
    done, modules = loaded(tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    assert "  due  " in done.stdout and "  customer  " in done.stdout
    commands = {f"funnelctl.cli.{entry.module}" for entry in COMMANDS.values()}
    assert sorted(commands & modules) == []
    assert "funnelctl.playbooks" not in modules and under(modules, *NOT_FOR_SCRIPTS) == []


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_command_list_says_what_the_command_s_help_says(name):
    """`funnelctl --help` shows COMMANDS' line for each command without loading it: the
    line the command's own help would give there, at any width."""
    command = load_command(name)
    assert command.name == name
    assert not command.hidden and not command.deprecated
    stand_in = TyperCommand(name=name, help=COMMANDS[name].summary)
    for limit in range(10, 160):
        assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), (
            f"COMMANDS[{name!r}].summary should be the first sentence of its help: "
            f"{command.get_short_help_str(1000)!r}"
        )


def test_typer_finds_the_root_and_due_annotations_as_objects_not_strings():
    """Typer reads them on every run: strings would be parsed and evaluated each time."""
    from funnelctl.cli import commands, due

    for function in (due.due, commands._everywhere):
        assert function.__annotations__, function
        strings = [name for name, a in function.__annotations__.items() if isinstance(a, str)]
        assert strings == [], f"{function.__name__}: {strings}"

"""Every command explains itself: help text in `--help`, and an example in the docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from funnelctl.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = "\n".join(
    p.read_text(encoding="utf-8")
    for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
)


def commands() -> list[tuple[str, ...]]:
    """Every command a user can run, as its words after `funnelctl`."""
    found: list[tuple[str, ...]] = []

    def walk(command, path: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, (*path, name))
        else:
            found.append(path)

    walk(typer.main.get_command(app), ())
    return sorted(found)


def test_the_command_tree_is_found():
    assert ("due",) in commands() and ("outbox", "resolve") in commands()


@pytest.mark.parametrize("words", commands(), ids=" ".join)
def test_every_command_has_help_text(run, words):
    result = run(*words, "--help")
    assert result.exit_code == 0
    usage, _, rest = result.stdout.partition("\n\n")
    assert rest.strip() and not rest.lstrip().startswith("Options"), result.stdout


@pytest.mark.parametrize("words", commands(), ids=" ".join)
def test_every_command_has_an_example_in_the_docs(words):
    pattern = r"funnelctl " + r"\s+".join(map(re.escape, words)) + r"(\s|$|`)"
    assert re.search(pattern, DOCS), f"no example of `funnelctl {' '.join(words)}` in the docs"

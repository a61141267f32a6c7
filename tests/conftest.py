"""Shared fixtures: every test gets its own workspace folder and a fixed today.

Nothing here reads the real clock, the real home folder or the network.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
import typer.testing
from typer.testing import CliRunner

from funnelctl.cli import app

TODAY = "2026-03-02"


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


_build_command = typer.testing._get_command


@functools.cache
def _cached_command(app: typer.Typer) -> object:
    return _build_command(app)


@pytest.fixture(autouse=True)
def built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Typer rebuilds the whole click command on every invoke; build it once per session."""
    monkeypatch.setattr(typer.testing, "_get_command", _cached_command)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every way of finding a workspace inside tmp_path; fix today and the zone."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("FUNNELCTL_TODAY", TODAY)
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # far from UTC: no test may lean on it
    monkeypatch.delenv("FUNNELCTL_HOME", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def run() -> Callable[..., Result]:
    """Run funnelctl in-process; returns exit code, stdout and stderr separately."""

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        result = runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    return invoke


@pytest.fixture
def workspace(tmp_path: Path, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh workspace (shipped playbooks, empty book) that commands find through FUNNELCTL_HOME."""
    root = tmp_path / "ws"
    result = run("init", str(root))
    assert result.exit_code == 0, result.stderr
    monkeypatch.setenv("FUNNELCTL_HOME", str(root))
    return root


@pytest.fixture
def demo(tmp_path: Path, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "demo"
    result = run("init", str(root), "--demo")
    assert result.exit_code == 0, result.stderr
    monkeypatch.setenv("FUNNELCTL_HOME", str(root))
    return root


def db_dump(root: Path) -> str:
    """The whole database as SQL text: compare before/after to prove nothing changed."""
    import sqlite3

    conn = sqlite3.connect(root / "funnel.db")
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture
def dump() -> Callable[[Path], str]:
    return db_dump


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


__all__ = ["TODAY", "Result", "db_dump", "write", "os"]

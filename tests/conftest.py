"""Shared fixtures: every test gets its own workspace folder and a fixed today.

Nothing here reads the real clock, the real home folder or the network.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
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
    monkeypatch.setenv("FUNNELCTL_DEBUG", "1")  # a bug in a test shows its traceback
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


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """A real, tiny file system (tmpfs) inside tmp_path: ``small_disk(3072)`` is 3 MB.

    Writing past its size fails as on a full disk (ENOSPC, SQLITE_FULL). Mounting needs
    root, as in CI; elsewhere the test is skipped and says why.
    """
    import subprocess

    mounted: list[Path] = []

    def make(size_kb: int) -> Path:
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0700", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> None:
    """Fill the file system holding ``folder`` to the last byte."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (65536, 4096, 1):
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                continue
    finally:
        os.close(fd)


__all__ = ["TODAY", "Result", "db_dump", "fill", "write", "os"]

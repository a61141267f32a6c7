"""How every run ends, as a real process: one line and an exit code, never a traceback.

130 on Ctrl-C, 0 when the reader went away, 2 for arguments that are not text, and
output that never crashes on a character the terminal's encoding lacks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FUNNELCTL = str(Path(sys.executable).with_name("funnelctl"))


def shell(command: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["/bin/bash", "-c", f"set -o pipefail; {command}"],
        capture_output=True,
        env={**os.environ, **env},
        timeout=120,
    )


@pytest.fixture
def book(demo: Path) -> Path:
    return demo


def test_a_non_utf8_argument_is_a_usage_error_naming_it(workspace: Path) -> None:
    done = subprocess.run(
        [FUNNELCTL, "customer", "add", "x@example.com", "--name", b"Jo\xe3o"],
        capture_output=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (2, b"")
    assert done.stderr == (
        b"Error: argument 5 (Jo\\xe3o) is not valid utf-8 text; set the terminal "
        b"(or LANG) to the encoding it types in, then try again.\n"
    )
    listed = subprocess.run([FUNNELCTL, "customer", "list", "-f", "csv"], capture_output=True)
    assert listed.stdout.splitlines()[1:] == []  # nothing was added


@pytest.mark.parametrize(
    "env",
    [{"PYTHONIOENCODING": "cp1252"}, {"PYTHONIOENCODING": "ascii"}, {"LANG": "C", "LC_ALL": "C"}],
    ids=["cp1252", "ascii", "LANG=C"],
)
def test_output_never_crashes_on_the_encoding_of_stdout(book: Path, env: dict[str, str]) -> None:
    for command in ("at-risk", "report", "due", "customer show yasmin.costa@example.com"):
        done = shell(f"'{FUNNELCTL}' {command} > out.txt", **env)
        assert (done.returncode, b"Traceback" in done.stderr) == (0, False), (command, done)
        assert Path("out.txt").stat().st_size > 0


def test_a_symbol_the_encoding_lacks_is_shown_as_a_question_mark(book: Path) -> None:
    done = shell(f"'{FUNNELCTL}' at-risk --format json", PYTHONIOENCODING="ascii")
    assert done.returncode == 0
    assert "≥".encode() not in done.stdout
    assert b"?" in done.stdout


@pytest.mark.parametrize(
    "command",
    ["report", "customer show yasmin.costa@example.com", "due", "at-risk", "export customers"],
)
def test_a_reader_that_goes_away_is_not_a_failure(book: Path, command: str) -> None:
    done = shell(f"'{FUNNELCTL}' {command} | head -3 > /dev/null")
    assert (done.returncode, done.stderr) == (0, b"")


def test_ctrl_c_while_funnelctl_starts_exits_130_with_one_line(workspace: Path) -> None:
    # Ctrl-C lands while the commands are being loaded: the import of typer is interrupted.
    program = (
        "import sys\n"
        "class CtrlC:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'typer':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, CtrlC())\n"
        "sys.argv = ['funnelctl', 'due']\n"
        "from funnelctl.cli import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (
        130,
        b"",
        b"Interrupted; nothing half-done was kept.\n",
    )


def test_ctrl_c_during_a_command_exits_130(workspace: Path) -> None:
    import signal
    import time

    process = subprocess.Popen(
        [FUNNELCTL, "send", "--wait", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # another send holds the lock, so this one waits: a moment to press Ctrl-C in
    import fcntl

    with open(workspace / ".send.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        time.sleep(2)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert (process.returncode, out, b"Traceback" in err) == (130, b"", False)
    assert err.decode().count("\n") == 1


def test_a_closed_stdout_is_no_traceback(book: Path) -> None:
    done = shell(f"'{FUNNELCTL}' due >&-")
    assert (done.returncode, done.stderr) == (0, b"")


def test_the_entry_point_imports_nothing_python_had_not_loaded_at_start_up() -> None:
    # the less there is to load before main() runs, the smaller the window in which
    # Ctrl-C could still print a traceback
    program = (
        "import sys; before = set(sys.modules); import funnelctl.cli; "
        "print(sorted(set(sys.modules) - before - {'funnelctl', 'funnelctl.cli', '__future__'}))"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.stdout == "[]\n"


def test_due_as_json_loads_nothing_it_does_not_need(book: Path, tmp_path: Path) -> None:
    """The start-up stays lean: the morning list reads no SQL toolkit, no Markdown, no
    calendar, no template compiler and no table drawing."""
    seen = tmp_path / "modules.txt"
    program = (
        "import atexit, sys\n"
        f"atexit.register(lambda: open({str(seen)!r}, 'w').write('\\n'.join(sys.modules)))\n"
        "sys.argv = ['funnelctl', 'due', '--format', 'json']\n"
        "from funnelctl.cli import main\n"
        "main()\n"
    )
    for _ in range(2):  # the first run fills the playbook cache, the second reads it
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
    loaded = set(seen.read_text().split())
    unwanted = {"sqlite_utils", "markdown", "icalendar", "jinja2.compiler", "rich"}
    assert loaded & unwanted == set()

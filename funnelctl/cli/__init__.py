"""The command line: the only package that imports typer. One module per command or group.

This module is the console script's entry point and imports nothing that Python has
not already loaded at start-up (``os``, ``sys``), so that whatever happens while the
rest loads (Ctrl-C, a closed pipe, a terminal that cannot show a character) still
ends as an exit code and one line, never a traceback.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # mypy reads the block below; at run time nothing is imported
if TYPE_CHECKING:
    from collections.abc import Callable

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


def main() -> None:
    """Run funnelctl: one rule for how every run ends.

    130 on Ctrl-C, 0 when the reader of our output went away (``| head``), 2 for
    arguments that are not text; otherwise the command's own exit code.
    """
    code: int | str | None = 0
    try:
        _usable_streams()
        bad = _undecodable_argument(sys.argv[1:])
        if bad:
            sys.stderr.write(f"Error: {bad}\n")
            code = 2
        else:
            from .commands import app

            app(prog_name="funnelctl")
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:
        _quietly(lambda: sys.stderr.write("Interrupted; nothing half-done was kept.\n"))
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        _reader_gone()
        code = 0
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _reader_gone()
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    sys.exit(code)


def _usable_streams() -> None:
    """Output never crashes: on a character the terminal or file encoding lacks (shown as
    '?': ``PYTHONIOENCODING=cp1252 funnelctl at-risk > f`` and "≥"), nor on a stream the
    caller closed (``funnelctl send >&-`` from a cron job still sends)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115
        elif getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")


def _undecodable_argument(args: list[str]) -> str | None:
    """A message for the first argument that holds bytes that are not text in the
    locale's encoding (Python keeps them as lone surrogates), else None."""
    for number, arg in enumerate(args, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = os.fsencode(arg).decode("ascii", "backslashreplace")
            return (
                f"argument {number} ({shown}) is not valid {sys.getfilesystemencoding()} text; "
                "set the terminal (or LANG) to the encoding it types in, then try again."
            )
    return None


def _reader_gone() -> None:
    """Whoever read our output stopped (``funnelctl report | head -3``): not a failure.
    Point stdout at /dev/null so that the last flush at exit has nowhere to fail."""
    _quietly(lambda: os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno()))


def _quietly(action: Callable[[], object]) -> None:
    try:
        action()
    except (OSError, ValueError):  # not contextlib.suppress: nothing more to import here
        return


def __getattr__(name: str) -> object:
    """``from funnelctl.cli import app`` (tests, embedding) loads the commands on demand."""
    if name == "app":
        from .commands import app

        return app
    raise AttributeError(name)

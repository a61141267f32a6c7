"""funnelctl's own exceptions, each carrying the exit code the CLI turns it into.

The core raises these; the CLI prints ``Error: <message>`` on stderr and exits
with ``exit_code``. Nothing else in the project decides exit codes.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUSY = 75  # EX_TEMPFAIL from sysexits.h: cron may simply try again later
EXIT_INTERNAL = 70  # EX_SOFTWARE: funnelctl itself went wrong


class FunnelError(Exception):
    """A failed operation: one clear sentence for the user."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)


class UsageError(FunnelError):
    """The command line itself is wrong (bad option value, missing argument)."""

    exit_code = EXIT_USAGE


class NotFound(FunnelError):
    """A customer, funnel, stage or activity that does not exist."""


class WorkspaceError(FunnelError):
    """No workspace, or a workspace that cannot be used."""


class ValidationError(FunnelError):
    """Bad input (playbook, CSV, template): ``details`` lists every problem found."""


class BusyError(FunnelError):
    """Another funnelctl process holds the workspace."""

    exit_code = EXIT_BUSY


class InternalError(FunnelError):
    """Something funnelctl did not foresee: a bug, or a file changed behind its back."""

    exit_code = EXIT_INTERNAL


class DiskFull(FunnelError):
    """The disk (or the user's quota) is full: nothing could be written."""


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in _NO_SPACE


def os_problem(exc: OSError, doing: str) -> FunnelError:
    """One sentence for an operating-system error while ``doing`` something ("write x.csv")."""
    if is_disk_full(exc):
        return DiskFull(f"Cannot {doing}: the disk is full. Free some space and try again.")
    reason = exc.strerror or str(exc)
    if exc.filename and str(exc.filename) not in doing:
        reason += f" ({exc.filename})"
    return FunnelError(f"Cannot {doing}: {reason}.")

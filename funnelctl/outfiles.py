"""Files funnelctl writes for the user: exports, the HTML report, rejected rows, emails.

They hold the same customer data as the database, so each one is owner-only
(0600, like ``funnel.db``). Each appears whole or not at all: it is written
beside its final name and renamed into place, and a failure (a full disk, a
bad row, Ctrl-C) removes the partial file. None may land on the workspace's
own files (its database, settings, playbooks or templates), even through a
symbolic link, and an existing file is replaced only when the user says
``--force``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from .errors import FunnelError, os_problem
from .workspace import Workspace


def refuse_own_file(target: Path, workspace: Workspace) -> None:
    owned = workspace.own_file(target)
    if owned is not None:
        raise FunnelError(
            f"{target} is {owned}: funnelctl never writes over the workspace's own files. "
            "Choose another file name."
        )


def check_target(
    target: Path, workspace: Workspace, *, force: bool, what: str | None = None
) -> None:
    """Refuse a target that is one of the workspace's files, or exists without ``force``.

    ``what`` names the contents for the message: "the rejected rows", "the report".
    """
    refuse_own_file(target, workspace)
    cannot = f"Cannot write {what} to {target}" if what else f"Cannot write {target}"
    if target.is_dir():
        raise FunnelError(f"{cannot}: it is a folder; give a file name.")
    if (target.exists() or target.is_symlink()) and not force:
        raise FunnelError(
            f"{cannot}: the file already exists; choose a new name, or pass --force to replace it."
        )
    if not target.parent.is_dir():
        raise FunnelError(f"{cannot}: the folder {target.parent} does not exist.")


class PendingFile:
    """A file being written under a temporary name (owner-only); :meth:`commit` puts it
    in place in one rename, :meth:`discard` removes it."""

    def __init__(
        self,
        target: Path,
        *,
        binary: bool = False,
        tmp: Path | None = None,
        newline: str = "",
        encoding: str = "utf-8",
        errors: str = "strict",
    ) -> None:
        self.target = target
        self.tmp = tmp or target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise os_problem(exc, f"write {target}") from None
        self.stream: IO[Any] = (
            os.fdopen(fd, "wb")
            if binary
            else os.fdopen(fd, "w", encoding=encoding, errors=errors, newline=newline)
        )

    def sync(self) -> None:
        """Everything written is on the disk (a full disk shows here, not later)."""
        if self.stream.closed:
            return
        try:
            self.stream.flush()
            os.fsync(self.stream.fileno())
            self.stream.close()
        except OSError as exc:
            self.discard()
            raise os_problem(exc, f"write {self.target}") from None

    def commit(self) -> None:
        self.sync()
        try:
            os.replace(self.tmp, self.target)
        except OSError as exc:
            self.discard()
            raise os_problem(exc, f"write {self.target}") from None

    def discard(self) -> None:
        with contextlib.suppress(OSError):  # a full disk fails the last flush too
            self.stream.close()
        self.tmp.unlink(missing_ok=True)


@contextmanager
def written(target: Path, *, binary: bool = False) -> Iterator[IO[Any]]:
    """A stream whose contents become ``target`` only if the block finishes."""
    pending = PendingFile(target, binary=binary)
    try:
        yield pending.stream
    except OSError as exc:
        pending.discard()
        raise os_problem(exc, f"write {target}") from None
    except BaseException:
        pending.discard()
        raise
    pending.commit()

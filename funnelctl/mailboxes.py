"""Reading the consultant's mail, never changing it: IMAP folders opened read-only
(EXAMINE) and fetched with BODY.PEEK (no \\Seen flag set), Maildir files only opened
for reading. Nothing is moved, flagged or deleted.

A folder is read in batches of new messages, each with the position to remember once
it is recorded (the UIDVALIDITY and the last UID, or the Maildir files' names), so
that an interrupted reading goes on where it stopped.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import os
import re
import ssl
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .dates import shift
from .errors import FunnelError
from .store import Store
from .store import inbox as state
from .tls import tls_context
from .workspace import Inbox

BATCH = 500  # messages fetched and recorded per transaction
# The first reading of the inbox records the mail of these last days only (and no later
# reading goes back further): years of an old mailbox (replies, bounces, "stop" long
# settled) must not act on today's book.
FIRST_READ_DAYS = 14
HEAD_BYTES = 65536  # what is read of each message: headers, the new text, a DSN's report


@dataclass
class Batch:
    """New messages of one folder, and what to remember once they are recorded."""

    folder: str  # the key the folder's position is kept under
    messages: list[bytes]
    uidvalidity: int | None = None
    last_uid: int = 0
    files: list[str] = field(default_factory=list)

    def remember(self, store: Store, today: str) -> None:
        """Keep the position reached (inside the caller's write, with the records)."""
        if self.files:
            state.mark_files_read(store, self.folder, self.files)
        else:
            state.save_folder_state(store, self.folder, self.uidvalidity, self.last_uid, today)


# -- Maildir ---------------------------------------------------------------------------------------


class MailboxProblem(FunnelError):
    """The mailbox cannot be read (a folder, the server): nothing more was read from it."""


def first_read_since(today: str) -> str:
    """The first day of the window the first reading records: today and the 13 before."""
    return shift(today, -(FIRST_READ_DAYS - 1))


def maildir_batches(store: Store, path: Path) -> Iterator[Batch]:
    """The files of the Maildir at ``path`` not read before, oldest name first. A file's
    unique name is its name without the flags a mail client adds (``:2,S``)."""
    try:
        yield from _maildir_batches(store, path)
    except OSError as exc:
        raise MailboxProblem(
            f"The Maildir {path} cannot be read: {exc.strerror or exc}"
            + (f" ({exc.filename})" if exc.filename else "")
            + "; check its permissions (inbox.maildir in funnelctl.yaml)."
        ) from None


def _maildir_batches(store: Store, path: Path) -> Iterator[Batch]:
    folder = f"maildir:{path}"
    if not (path / "cur").is_dir() and not (path / "new").is_dir():
        raise FunnelError(
            f"{path} is not a Maildir (no cur/ or new/ folder): set inbox.maildir in "
            "funnelctl.yaml to the folder your mail program keeps in sync."
        )
    with store.read():
        seen = state.files_read(store, folder)
    found: dict[str, Path] = {}
    for sub in ("new", "cur"):
        try:
            names = os.listdir(path / sub)
        except FileNotFoundError:
            continue
        for name in names:
            if name.startswith("."):
                continue
            unique = name.split(":", 1)[0].split("!", 1)[0]
            if unique not in seen:
                found.setdefault(unique, path / sub / name)
    order = sorted(found)
    for start in range(0, len(order), BATCH):
        batch = Batch(folder, [])
        for unique in order[start : start + BATCH]:
            data = _head_of(found[unique], path, unique)
            if data is None:
                continue  # gone meanwhile (moved by a mail client): the next run sees it
            batch.messages.append(data)
            batch.files.append(unique)
        if batch.files:
            yield batch


def _head_of(file: Path, root: Path, unique: str) -> bytes | None:
    try:
        with open(file, "rb") as handle:
            return handle.read(HEAD_BYTES)
    except FileNotFoundError:
        pass
    for sub in ("cur", "new"):  # renamed (a flag changed) between listing and reading
        for name in os.listdir(root / sub):
            if name.split(":", 1)[0] == unique:
                try:
                    with open(root / sub / name, "rb") as handle:
                        return handle.read(HEAD_BYTES)
                except FileNotFoundError:
                    return None
    return None


# -- IMAP ------------------------------------------------------------------------------------------


class ImapProblem(MailboxProblem):
    """The IMAP server cannot be reached or refuses: nothing was read from it."""


class ImapReader:
    """One connection for the run, logged in once; each folder opened read-only."""

    def __init__(self, inbox: Inbox, environ: Mapping[str, str]) -> None:
        self.inbox = inbox
        password = environ.get(inbox.password_env)
        if not password:
            raise FunnelError(
                f"The IMAP password is not set: put it in the environment variable "
                f"{inbox.password_env} (inbox.password_env in funnelctl.yaml); it is never "
                "read from a file."
            )
        if not (password.isascii() and (inbox.username or "").isascii()):
            raise ImapProblem(
                f"The IMAP user name or the password in the environment variable "
                f"{inbox.password_env} has non-ASCII characters, which IMAP login (Python's "
                "imaplib) cannot send; use an ASCII password, such as an app password."
            )
        self.password = password
        self.conn: imaplib.IMAP4 | None = None

    def _where(self) -> str:
        return f"{self.inbox.host}:{self.inbox.port}"

    def _tls(self) -> ssl.SSLContext:
        return tls_context(self.inbox.ca_file, "inbox.ca_file")

    def open(self) -> None:
        """Connect and log in; a connection that fails on the way is logged out."""
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        i = self.inbox
        step = "login"
        try:
            if i.security == "ssl":
                self.conn = imaplib.IMAP4_SSL(
                    i.host, i.port, ssl_context=self._tls(), timeout=i.timeout_s
                )
            else:
                self.conn = imaplib.IMAP4(i.host, i.port, timeout=i.timeout_s)
                if i.security == "starttls":
                    step = "starttls"
                    self.conn.starttls(ssl_context=self._tls())
                    step = "login"
            self.conn.login(i.username or "", self.password)
        except ssl.SSLCertVerificationError as exc:
            raise ImapProblem(
                f"The IMAP server {self._where()} has a certificate this machine does not "
                f"trust ({exc.verify_message}); for a private CA set inbox.ca_file."
            ) from None
        except imaplib.IMAP4.abort as exc:
            raise ImapProblem(f"The IMAP server {self._where()} closed the line: {exc}") from None
        except imaplib.IMAP4.error as exc:
            if step == "starttls":
                raise ImapProblem(
                    f"The IMAP server {self._where()} refused STARTTLS: {_said(exc)} (for a "
                    "server that speaks TLS from the start, set inbox.security: ssl)."
                ) from None
            raise ImapProblem(
                f"The IMAP server {self._where()} refused the login for {i.username}: {_said(exc)}"
            ) from None
        except (OSError, ssl.SSLError) as exc:
            raise ImapProblem(f"Cannot connect to the IMAP server {self._where()}: {exc}") from None

    def close(self) -> None:
        if self.conn is None:
            return
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            self.conn.logout()  # no CLOSE: it would expunge in a read-write folder
        self.conn = None

    def batches(self, store: Store, name: str, since: str) -> Iterator[Batch]:
        """The messages of folder ``name`` after the last UID read, when its UIDVALIDITY
        is the one remembered; else (a first reading, a changed UIDVALIDITY) those the
        server dates from ``since`` on (the inbox's window; the records of Message-IDs
        keep a message from counting twice)."""
        assert self.conn is not None
        conn = self.conn
        folder = f"imap://{self.inbox.username}@{self._where()}/{name}"
        try:
            typ, data = conn.select(_quoted(_modified_utf7(name)), readonly=True)
            if typ != "OK":
                raise ImapProblem(
                    f"The IMAP folder {name!r} cannot be opened on {self._where()}: "
                    f"{_text(data)} (inbox.folders in funnelctl.yaml)"
                )
            uidvalidity = _number(conn.response("UIDVALIDITY")[1])
            uidnext = _number(conn.response("UIDNEXT")[1])
            with store.read():
                known = state.folder_state(store, folder)
            last = known.last_uid if known and known.uidvalidity == uidvalidity else 0
            top = uidnext - 1 if uidnext else self._highest_uid()
            start = last + 1 if last else self._first_uid_since(since, top)
            while start <= top:
                end = min(start + BATCH - 1, top)
                messages = self._fetch(f"{start}:{end}")
                yield Batch(folder, [data for _, data in messages], uidvalidity, end)
                start = end + 1
            if known is None or known.uidvalidity != uidvalidity:
                # remembered even when empty: the next run starts from here
                yield Batch(folder, [], uidvalidity, max(last, top))
        except imaplib.IMAP4.abort as exc:
            raise ImapProblem(f"The IMAP server {self._where()} closed the line: {exc}") from None
        except imaplib.IMAP4.error as exc:
            raise ImapProblem(
                f"The IMAP server {self._where()} refused to read {name!r}: {_said(exc)}"
            ) from None
        except OSError as exc:
            raise ImapProblem(f"The IMAP server {self._where()} stopped answering: {exc}") from None
        except UnicodeError as exc:
            raise ImapProblem(
                f"The IMAP folder {name!r} on {self._where()} cannot be read: {exc}"
            ) from None

    def _first_uid_since(self, day: str, top: int) -> int:
        """The first UID of a message the server dates on ``day`` or later (top + 1: none;
        1 when the server cannot say). The server's date (INTERNALDATE, in its own zone:
        searched from the day before) narrows the fetch; each message's own Date decides,
        when it is recorded."""
        assert self.conn is not None
        year, month, dom = (int(part) for part in shift(day, -1).split("-"))
        months = [
            "Jan",
            "Feb",
            "Mar",
            "Apr",
            "May",
            "Jun",
            "Jul",
            "Aug",
            "Sep",
            "Oct",
            "Nov",
            "Dec",
        ]
        typ, data = self.conn.uid("SEARCH", "SINCE", f"{dom}-{months[month - 1]}-{year}")
        if typ != "OK" or not data:
            return 1  # every message fetched, each one's Date decides
        uids = [int(u) for u in (data[0] or b"").split()]
        return min(uids, default=top + 1)

    def _highest_uid(self) -> int:
        assert self.conn is not None
        typ, data = self.conn.uid("SEARCH", "ALL")
        uids = [int(u) for u in (data[0] or b"").split()] if typ == "OK" and data else []
        return max(uids, default=0)

    def _fetch(self, uids: str) -> list[tuple[int, bytes]]:
        """UID FETCH of the first bytes of each message, with BODY.PEEK: the \\Seen flag
        stays as it was."""
        assert self.conn is not None
        typ, data = self.conn.uid("FETCH", uids, f"(UID BODY.PEEK[]<0.{HEAD_BYTES}>)")
        if typ != "OK":
            raise ImapProblem(f"The IMAP server {self._where()} refused FETCH: {_text(data)}")
        found: list[tuple[int, bytes]] = []
        for index, item in enumerate(data):
            if not isinstance(item, tuple) or len(item) < 2:
                continue
            head, body = item[0], item[1]
            match = _UID.search(head)
            if match is None and index + 1 < len(data):  # UID after the literal
                after = data[index + 1]
                match = _UID.search(after if isinstance(after, bytes) else b"")
            if match is not None and isinstance(body, bytes):
                found.append((int(match.group(1)), body))
        found.sort()
        return found


_UID = re.compile(rb"UID (\d+)")


def _number(values: list[bytes | None] | None) -> int | None:
    if not values or values[0] is None:
        return None
    try:
        return int(values[0])
    except ValueError:
        return None


def _quoted(name: str) -> str:
    """A folder name as an IMAP quoted string (imaplib sends arguments as given)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _modified_utf7(name: str) -> str:
    """A folder name as IMAP writes it (RFC 3501 5.1.3: modified UTF-7), since imaplib
    sends its arguments as ASCII: "Envoyés" -> "Envoy&AOk-s"."""
    out: list[str] = []
    wide: list[str] = []

    def flush() -> None:
        if wide:
            coded = base64.b64encode("".join(wide).encode("utf-16-be")).rstrip(b"=")
            out.append("&" + coded.decode("ascii").replace("/", ",") + "-")
            wide.clear()

    for char in name:
        if " " <= char <= "~":
            flush()
            out.append("&-" if char == "&" else char)
        else:
            wide.append(char)
    flush()
    return "".join(out)


def _text(data: Sequence[object] | None) -> str:
    parts = [d.decode(errors="replace") if isinstance(d, bytes) else str(d) for d in data or []]
    return " ".join(parts).strip() or "no reason given"


def _said(exc: BaseException) -> str:
    text = str(exc)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return text

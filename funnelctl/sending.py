"""Delivering the outbox: `funnelctl send`, safe under cron.

At most once, nothing silently lost: a message is claimed (``sending``,
committed) before the server is contacted and marked ``sent`` once the server
accepts it. A ``sending`` row found when a run starts belongs to a run that
died mid-message: it becomes ``uncertain``, is reported, and is resent only on
request (with the same Message-ID); the Maildir, which can be looked in, settles
it as sent or queued instead. An OS lock makes runs take turns.

Everything that can fail before a message leaves (connecting, logging in, a
sendmail that does not exist, a damaged database) fails before any email is
claimed; once a server has a message, recording that waits as long as it takes.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import secrets
import shutil
import smtplib
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from .context import context_for
from .dates import days_between, shift
from .errors import BusyError, FunnelError, os_problem
from .mail import (
    HeaderProblem,
    Rendered,
    TemplateProblem,
    build_message,
    find_template,
    render,
    stale_reason,
    wire_bytes,
)
from .outfiles import PendingFile
from .playbooks import Library
from .store import Row, Store
from .workspace import Settings, Transport, Workspace

MAX_ATTEMPTS = 5
BACKOFF_MINUTES = (5, 15, 60, 240)


class TemporaryFailure(Exception):
    """4xx or a connection that could not be made: nothing was sent; try again later."""


class ConnectionFailure(TemporaryFailure):
    """The server cannot be reached (refused, no answer, dropped): the rest of the run is
    deferred at once, instead of each email waiting for its own timeout."""


class Interrupted(FunnelError):
    """Ctrl-C while a message was being handed over: recorded as uncertain, then stop."""

    exit_code = 130


class PermanentFailure(Exception):
    """5xx: the server refused this message for good."""


class Uncertain(Exception):
    """The message may have left: the connection failed while it was handed over, or the
    program that took it failed after reading it. ``connection``: the server went silent
    or away, so the rest of the run is deferred rather than tried on it."""

    def __init__(self, message: str, *, connection: bool = False) -> None:
        super().__init__(message)
        self.connection = connection


@dataclass
class Delivery:
    refused: dict[str, str] = field(default_factory=dict)


class Sender(Protocol):
    """A transport. :meth:`open` does everything that can fail before an email is claimed
    (connect, greet, log in, check the command exists); :meth:`send` hands over the bytes
    of a message already checked; :meth:`delivered` says whether a message claimed by a
    run that died did arrive, when the transport can know (None: it cannot)."""

    real: bool  # the email really leaves this machine
    linesep: str  # the line ending the transport takes

    def open(self) -> None: ...

    def send(
        self, data: bytes, message_id: str, sender: str, recipients: list[str]
    ) -> Delivery: ...

    def delivered(self, message_id: str) -> bool | None: ...

    def close(self) -> None: ...


# -- transports ------------------------------------------------------------------------------------


class SmtpSender:
    """One connection for the run, opened, greeted and logged in before any email is
    claimed, and reopened if the server drops it between messages."""

    real = True
    linesep: str = "\r\n"

    def __init__(self, transport: Transport, password: str | None) -> None:
        self.transport = transport
        self.password = password
        self.conn: smtplib.SMTP | None = None

    def open(self) -> None:
        if self.conn is None:
            self.conn = self._connect()

    def _tls(self) -> ssl.SSLContext:
        """Certificates and host names verified; a private CA trusted through ca_file."""
        try:
            return ssl.create_default_context(cafile=self.transport.ca_file)
        except (ssl.SSLError, OSError) as exc:
            raise FunnelError(
                f"transport.ca_file {self.transport.ca_file} is not a PEM file of certificates "
                f"this machine can read: {exc}."
            ) from None

    def _connect(self) -> smtplib.SMTP:
        t = self.transport
        context = self._tls() if t.security != "none" else None
        try:
            conn: smtplib.SMTP
            if t.security == "ssl":
                conn = smtplib.SMTP_SSL(t.host, t.port, timeout=t.timeout_s, context=context)
            else:
                conn = smtplib.SMTP(t.host, t.port, timeout=t.timeout_s)
                if t.security == "starttls":
                    conn.starttls(context=context)
            conn.ehlo_or_helo_if_needed()
            if t.username:
                conn.login(t.username, self.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise FunnelError(
                f"The SMTP server {t.host} refused the login for {t.username}: {_reply(exc)}"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise FunnelError(
                f"The SMTP server {t.host} has a certificate this machine does not trust "
                f"({exc.verify_message}); for a private CA set transport.ca_file."
            ) from None
        except smtplib.SMTPHeloError as exc:
            raise ConnectionFailure(
                f"{t.host}:{t.port} refused our greeting: {_reply(exc)}"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectionFailure(f"cannot connect to {t.host}:{t.port}: {exc}") from None
        return conn

    def send(self, data: bytes, message_id: str, sender: str, recipients: list[str]) -> Delivery:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = self._connect()
            try:
                return self._send(self.conn, data, sender, recipients)
            except (smtplib.SMTPServerDisconnected, smtplib.SMTPHeloError, TimeoutError) as exc:
                # Before the message was handed over: a dropped line is safe to reconnect
                # once; a server gone silent (or dropping twice) is not fit for the run.
                self._drop()
                if _silent(exc):
                    raise ConnectionFailure(f"{self.transport.host} stopped answering") from None
                if attempt == 2:
                    raise ConnectionFailure(
                        f"{self.transport.host} keeps closing the connection"
                    ) from None
        raise AssertionError("unreachable")

    def _send(
        self, conn: smtplib.SMTP, data: bytes, sender: str, recipients: list[str]
    ) -> Delivery:
        envelope_from = _address(sender)
        conn.ehlo_or_helo_if_needed()
        try:
            code, reply = conn.mail(envelope_from)
        except UnicodeEncodeError as exc:  # nothing was handed over yet
            conn.rset()
            raise PermanentFailure(f"the sender address cannot be sent over SMTP: {exc}") from None
        if code != 250:
            conn.rset()
            _fail(code, reply, "sender refused")
        delivery = Delivery()
        codes: list[int] = []
        for rcpt in recipients:
            code, reply = conn.rcpt(rcpt)
            if code not in (250, 251):
                delivery.refused[rcpt] = f"{code} {reply.decode(errors='replace')}"
                codes.append(code)
        if len(delivery.refused) == len(recipients):
            conn.rset()
            worst = 500 if any(c >= 500 for c in codes) else 400
            raise (PermanentFailure if worst >= 500 else TemporaryFailure)(
                "every recipient was refused: "
                + "; ".join(f"{a}: {r}" for a, r in delivery.refused.items())
            )
        code, reply = self._data(conn, data)
        if code != 250:  # the server's verdict on the message itself
            _fail(code, reply, "message refused")
        return delivery

    def _data(self, conn: smtplib.SMTP, data: bytes) -> tuple[int, bytes]:
        """DATA in its two halves, as smtplib's data() does, to know which one failed:
        before the server says 354 nothing of the message has left; after the message is
        sent, a silence or a dropped line leaves its fate unknown."""
        conn.putcmd("data")
        code, reply = conn.getreply()  # raises SMTPServerDisconnected: nothing left yet
        if code != 354:
            _fail(code, reply, "message refused")
        body = re.sub(rb"(?m)^\.", b"..", data)  # dot-stuffing (RFC 5321 4.5.2)
        body += (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n"
        try:
            conn.send(body)
            return conn.getreply()
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise Uncertain(
                f"the connection to {self.transport.host} failed while the message was sent: {exc}",
                connection=_silent(exc),
            ) from None

    def _drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
        self.conn = None

    def delivered(self, message_id: str) -> bool | None:
        return None

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.conn.quit()
            self.conn = None


def _silent(exc: BaseException) -> bool:
    """The server stopped answering (a timeout; smtplib reports it as a disconnection)."""
    return isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    error = exc.smtp_error
    return (
        f"{exc.smtp_code} {error.decode(errors='replace') if isinstance(error, bytes) else error}"
    )


def _fail(code: int, reply: bytes | str, what: str) -> None:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    if 400 <= code < 500:
        raise TemporaryFailure(f"{what}: {code} {text}")
    raise PermanentFailure(f"{what}: {code} {text}")


def _address(value: str) -> str:
    from email.utils import parseaddr

    return parseaddr(value)[1]


EX_TEMPFAIL = 75  # sysexits.h: nothing was queued, try again later


class SendmailSender:
    """Hands each message to a sendmail-compatible command.

    The recipients always come from funnelctl, on the command line after ``--``: a
    ``-t`` (read them from the headers, which data may have shaped) is dropped or refused
    in any spelling (:func:`workspace.sendmail_argv`). ``-f`` names the envelope sender,
    so that bounces come back.
    """

    real = True
    linesep: str = "\n"

    def __init__(self, transport: Transport) -> None:
        self.command = list(transport.sendmail_argv)
        self.timeout = transport.timeout_s

    def open(self) -> None:
        program = self.command[0] if self.command else ""
        if not program or shutil.which(program) is None:
            raise FunnelError(
                f"The sendmail command {program!r} does not exist or cannot be run; "
                "fix transport.command."
            )

    def send(self, data: bytes, message_id: str, sender: str, recipients: list[str]) -> Delivery:
        argv = list(self.command)
        if not any(arg.startswith("-f") for arg in argv):
            argv += ["-f", _address(sender)]
        argv += ["--", *recipients]
        try:
            done = subprocess.run(argv, input=data, capture_output=True, timeout=self.timeout)
        except OSError as exc:
            raise FunnelError(f"The sendmail command {argv[0]} cannot be run: {exc}.") from None
        except subprocess.TimeoutExpired:
            raise Uncertain(f"{argv[0]} did not finish within {self.timeout:g} s") from None
        if done.returncode != 0:
            error = done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
            if done.returncode == EX_TEMPFAIL:
                raise TemporaryFailure(f"{argv[0]}: {error}")
            # It read the message and then failed: it may have queued it all the same.
            raise Uncertain(f"{argv[0]} failed after reading the message: {error}")
        return Delivery()

    def delivered(self, message_id: str) -> bool | None:
        return None

    def close(self) -> None:
        pass


class MaildirSender:
    """Writes each message into a Maildir (tmp/, then new/) for review instead of delivery:
    any mail client opens it. Nothing leaves the machine, so a message whose run died can
    be looked for: its file name carries a digest of its Message-ID."""

    real = False
    linesep: str = os.linesep

    def __init__(self, folder: Path, when: datetime) -> None:
        self.folder = folder
        self.when = when

    def open(self) -> None:
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            for sub in ("tmp", "new", "cur"):
                (self.folder / sub).mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise os_problem(exc, f"create the Maildir {self.folder}") from None

    @staticmethod
    def _digest(message_id: str) -> str:
        return hashlib.sha256(message_id.encode()).hexdigest()[:20]

    def send(self, data: bytes, message_id: str, sender: str, recipients: list[str]) -> Delivery:
        name = f"{int(self.when.timestamp())}.{self._digest(message_id)}.funnelctl"
        target = self.folder / "new" / name
        for n in itertools.count(1):  # a resend of the same message is a second file
            if not target.exists():
                break
            target = target.with_name(f"{name}.{n}")
        # A unique name in tmp/: one left by a run that was killed never blocks the next.
        tmp = self.folder / "tmp" / f"{target.name}.{os.getpid()}.{secrets.token_hex(4)}"
        pending = PendingFile(target, binary=True, tmp=tmp)
        try:
            pending.stream.write(data)
        except OSError as exc:
            pending.discard()
            raise os_problem(exc, f"write {target}") from None
        pending.commit()
        return Delivery()

    def delivered(self, message_id: str) -> bool | None:
        digest = self._digest(message_id)
        return any(
            any((self.folder / sub).glob(f"*.{digest}.funnelctl*")) for sub in ("new", "cur")
        )

    def close(self) -> None:
        pass


def make_sender(workspace: Workspace, environ: Mapping[str, str], now: datetime) -> Sender:
    t = workspace.settings.transport
    if t.kind == "smtp":
        return SmtpSender(t, _password(t, environ) if t.username else None)
    if t.kind == "sendmail":
        return SendmailSender(t)
    return MaildirSender(workspace.root / t.path, now)


_VARIABLE = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def _password(t: Transport, environ: Mapping[str, str]) -> str:
    # A password_env that is not written like a variable may be the password itself:
    # it is never repeated in a message.
    variable = (
        f"the environment variable {t.password_env}"
        if _VARIABLE.match(t.password_env)
        else "the environment variable named in transport.password_env (its name is not "
        "shown: it does not look like a variable's name, such as FUNNELCTL_SMTP_PASSWORD, "
        "and may be the password itself)"
    )
    password = environ.get(t.password_env)
    if not password:
        raise FunnelError(
            f"transport.username is set but {variable} is empty; export the SMTP password there."
        )
    if not (password.isascii() and (t.username or "").isascii()):
        raise FunnelError(
            f"The SMTP user name or the password in {variable} has non-ASCII characters, "
            "which SMTP login (Python's smtplib) cannot send; use an ASCII password, such as "
            "an app password."
        )
    return password


# -- the lock ---------------------------------------------------------------------------------------


@contextmanager
def send_lock(
    workspace: Workspace, wait_s: float, sleep: Callable[[float], None] = time.sleep
) -> Iterator[None]:
    """An OS lock held for the whole run; a second run waits, then gives up as busy."""
    import fcntl

    path = workspace.root / ".send.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BusyError(
                        f"Another 'funnelctl send' is running in {workspace.root}; "
                        f"waited {wait_s:g} s. Try again later."
                    ) from None
                sleep(0.1)
        yield
    finally:
        os.close(fd)


# -- the run ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendOptions:
    dry_run: bool = False
    limit: int | None = None
    wait_s: float = 10.0
    retry_uncertain: bool = False


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    uncertain: int = 0
    deferred: int = 0
    held: int = 0
    outside_window: bool = False
    problems: list[str] = field(default_factory=list)
    planned: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "skipped": self.skipped,
            "uncertain": self.uncertain,
            "deferred": self.deferred,
            "held": self.held,
        }

    @property
    def ok(self) -> bool:
        return not (self.failed or self.uncertain or self.held)


def in_window(settings: Settings, now: datetime) -> bool:
    window = settings.send.window
    weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[now.weekday()]
    minute = now.hour * 60 + now.minute
    return weekday in window.weekdays and window.start_minute <= minute < window.end_minute


@dataclass
class Prepared:
    """A message rendered and checked; it is built again just before it goes, so that a
    long outbox does not hold thousands of MIME trees in memory at once."""

    row: Row
    rendered: Rendered


def _prepare(
    store: Store,
    library: Library,
    workspace: Workspace,
    rows: list[Row],
    today: str,
    now: datetime,
    report: SendReport,
    *,
    dry: bool,
) -> list[Prepared]:
    """Render every due message before any goes out; a broken template holds all of its emails."""
    ready: list[Prepared] = []
    broken: dict[str, str] = {}
    for row in rows:
        customer = store.customer_by("id", str(row["customer_id"]))
        assert customer is not None
        context = context_for(
            store,
            library,
            workspace.settings,
            customer,
            today,
            enrollment_id=row["enrollment_id"],
            visit_id=row["visit_id"],
        )
        try:
            template = find_template(
                workspace.templates_dir, row["template"], customer.get("language")
            )
            rendered = render(template, context, workspace.settings, customer)
            # headers checked, as built and as written, before any email is claimed
            wire_bytes(build_message(rendered, row["message_id"], now))
        except TemplateProblem as exc:
            broken.setdefault(row["template"], exc.message)
            report.problems.append(
                f"{exc.message} (for {customer['email'] or customer['external_id']})"
            )
            continue
        except HeaderProblem as exc:
            report.problems.append(f"email #{row['id']} to {customer['email']}: {exc.message}")
            if not dry:
                _finish(store, row, "failed", exc.message, today)
            report.failed += 1
            continue
        ready.append(Prepared(row, rendered))
    report.held += sum(1 for r in rows if r["template"] in broken)
    return [p for p in ready if p.row["template"] not in broken]


_LABELS = {"sent": "sent", "failed": "FAILED", "uncertain": "UNCERTAIN", "queued": "deferred"}


def _record(
    store: Store, row: Row, status: str, reason: str | None, today: str, **extra: Any
) -> None:
    """Record an email's fate and the timeline line that goes with it (inside a write)."""
    store.update("outbox", row["id"], {"status": status, "reason": reason, **extra})
    text = f"Email {row['template']!r} {_LABELS[status]}" + (f": {reason}" if reason else "")
    store.add_event(row["customer_id"], today, "email", text, ok=status in ("sent", "queued"))


def _finish(
    store: Store, row: Row, status: str, reason: str | None, today: str, **extra: Any
) -> None:
    # Patient: this runs after the server was spoken to, so giving up as busy would turn
    # a known fate into an uncertain one. Only the claim may give up.
    with store.write(patient=True):
        _record(store, row, status, reason, today, **extra)


INTERRUPTED = (
    "a previous send stopped while sending it; check the recipient's mailbox, "
    "then resend with --retry-uncertain"
)


def send(
    store: Store,
    library: Library,
    workspace: Workspace,
    *,
    today: str,
    now: datetime,
    clock: Callable[[], datetime],
    options: SendOptions,
    environ: Mapping[str, str],
    sleep: Callable[[float], None] = time.sleep,
) -> SendReport:
    """Deliver the due emails. ``now`` is the moment the run acts at (the send window,
    retry times; ``FUNNELCTL_NOW`` replays one); ``clock`` is the real time, the only
    one an email that leaves this machine is ever dated with."""
    report = SendReport()
    if options.dry_run:
        return _plan(store, library, workspace, today, now, options, report)
    sender = make_sender(workspace, environ, now)
    with send_lock(workspace, options.wait_s, sleep):
        _settle_interrupted(store, sender, today, now, options.retry_uncertain)
        if not in_window(workspace.settings, now):
            report.outside_window = True
        else:
            stamp = clock if sender.real else (lambda: now)
            _deliver(store, library, workspace, sender, today, now, stamp, options, report, sleep)
        report.uncertain = int(
            store.scalar("SELECT count(*) FROM outbox WHERE status = 'uncertain'")
        )
    return report


def _settle_interrupted(
    store: Store, sender: Sender, today: str, now: datetime, retry: bool
) -> None:
    """Emails left ``sending`` by a run that died: arrived (the Maildir can tell), certainly
    not sent, or else uncertain; ``retry`` queues the uncertain ones again.

    A run that died may have died of a damaged page, one it will hit again after the next
    email leaves: so before going on, the whole database is checked (only then: the
    check reads every page, seconds for a book of 100,000 customers).
    """
    interrupted = store.rows("SELECT * FROM outbox WHERE status = 'sending'")
    if interrupted:
        store.check_integrity()
    with store.write():
        for row in interrupted:
            arrived = sender.delivered(row["message_id"])
            if arrived is None:
                store.update("outbox", row["id"], {"status": "uncertain", "reason": INTERRUPTED})
            elif arrived:
                _record(
                    store,
                    row,
                    "sent",
                    "found delivered after an interrupted run",
                    today,
                    sent_at=now.isoformat(timespec="seconds"),
                )
            else:
                store.update(
                    "outbox",
                    row["id"],
                    {"status": "queued", "reason": "an interrupted run had not written it"},
                )
        if retry:
            store.conn.execute(
                "UPDATE outbox SET status = 'queued', reason = 'resend requested', next_attempt_at = NULL "
                "WHERE status = 'uncertain'"
            )


def _due_rows(store: Store, today: str, now: datetime, limit: int | None) -> list[Row]:
    sql = (
        "SELECT * FROM outbox WHERE status = 'queued' AND scheduled_on <= ? "
        "AND (next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY scheduled_on, id"
    )
    if limit:
        sql += f" LIMIT {int(limit)}"
    return store.rows(sql, [today, now.isoformat(timespec="seconds")])


def _skip_stale(store: Store, settings: Settings, today: str, dry: bool) -> int:
    cutoff = shift(today, -settings.send.max_late_days)
    rows = store.rows(
        # An email already tried (deferred by a 4xx, or requeued by hand after an uncertain
        # or failed attempt) is not stale: its first attempt was on time.
        "SELECT id, scheduled_on, customer_id, template FROM outbox WHERE status = 'queued' "
        "AND scheduled_on < ? AND attempts = 0",
        [cutoff],
    )
    if dry or not rows:
        return len(rows)
    with store.write():
        for row in rows:
            reason = stale_reason(
                row["scheduled_on"],
                days_between(row["scheduled_on"], today),
                settings.send.max_late_days,
            )
            store.update("outbox", row["id"], {"status": "skipped", "reason": reason})
            store.add_event(
                row["customer_id"], today, "email", f"Email {row['template']!r} skipped: {reason}"
            )
    return len(rows)


def _plan(
    store: Store,
    library: Library,
    workspace: Workspace,
    today: str,
    now: datetime,
    options: SendOptions,
    report: SendReport,
) -> SendReport:
    report.outside_window = not in_window(workspace.settings, now)
    report.skipped = _skip_stale(store, workspace.settings, today, dry=True)
    cutoff = shift(today, -workspace.settings.send.max_late_days)
    rows = [
        r
        for r in _due_rows(store, today, now, None)
        if r["scheduled_on"] >= cutoff or r["attempts"]
    ]
    prepared_rows = _prepare(store, library, workspace, rows, today, now, report, dry=True)
    for prepared in prepared_rows[: options.limit] if options.limit else prepared_rows:
        report.planned.append(
            {
                "id": prepared.row["id"],
                "template": prepared.row["template"],
                "scheduled_on": prepared.row["scheduled_on"],
                "from": prepared.rendered.sender,
                "recipients": prepared.rendered.recipients,
                "subject": prepared.rendered.subject,
            }
        )
    report.uncertain = int(
        store.scalar("SELECT count(*) FROM outbox WHERE status IN ('uncertain', 'sending')")
    )
    return report


def _deliver(
    store: Store,
    library: Library,
    workspace: Workspace,
    sender: Sender,
    today: str,
    now: datetime,
    stamp: Callable[[], datetime],
    options: SendOptions,
    report: SendReport,
    sleep: Callable[[float], None],
) -> None:
    settings = workspace.settings
    report.skipped += _skip_stale(store, settings, today, dry=False)
    # --limit counts emails that can go: a held template does not use up the run
    rows = _due_rows(store, today, now, None)
    ready = _prepare(store, library, workspace, rows, today, now, report, dry=False)
    ready = ready[: options.limit] if options.limit else ready
    if not ready:
        return
    interval = 60.0 / settings.send.rate_per_minute if settings.send.rate_per_minute else 0.0
    try:
        try:
            sender.open()  # connect and log in before any email is claimed
        except ConnectionFailure as exc:
            _defer_the_rest(store, [item.row for item in ready], exc, today, now, report)
            return
        for index, item in enumerate(ready):
            if index and interval:
                sleep(interval)
            row = item.row
            try:  # the message is built and written out before it is claimed
                message = build_message(item.rendered, row["message_id"], stamp())
                data = wire_bytes(message, linesep=sender.linesep)
            except HeaderProblem as exc:
                _fail_email(store, row, exc.message, today, report)
                continue
            with store.write():
                claimed = store.conn.execute(
                    "UPDATE outbox SET status = 'sending', attempts = attempts + 1, subject = ?, recipients = ? "
                    "WHERE id = ? AND status = 'queued'",
                    [item.rendered.subject, ", ".join(item.rendered.recipients), row["id"]],
                ).rowcount
            if not claimed:
                continue
            try:
                delivery = sender.send(
                    data, row["message_id"], item.rendered.sender, item.rendered.recipients
                )
            except KeyboardInterrupt:
                _finish(store, row, "uncertain", "interrupted (Ctrl-C) while it was sent", today)
                raise Interrupted(
                    f"Interrupted while email #{row['id']} was being sent: it is marked "
                    "uncertain; check the recipient's mailbox, then settle it with "
                    f"'funnelctl outbox resolve {row['id']} --sent' or '--resend'."
                ) from None
            except FunnelError:
                # Nothing left (a full disk for the Maildir, a sendmail that cannot run):
                # the email goes back to the queue untouched and the run stops.
                with store.write(patient=True):
                    store.update(
                        "outbox", row["id"], {"status": "queued", "attempts": row["attempts"]}
                    )
                raise
            except ConnectionFailure as exc:
                rest = [row] + [later.row for later in ready[index + 1 :]]
                _defer_the_rest(store, rest, exc, today, now, report, claimed_first=True)
                return
            except TemporaryFailure as exc:
                _defer(store, row, exc, today, now, report)
                continue
            except PermanentFailure as exc:
                _fail_email(store, row, str(exc), today, report)
                continue
            except Uncertain as exc:
                _finish(store, row, "uncertain", str(exc), today)
                report.problems.append(f"email #{row['id']}: {exc}")
                if exc.connection:  # the server went silent: the rest waits for a later run
                    rest = [later.row for later in ready[index + 1 :]]
                    reason = ConnectionFailure(
                        f"{workspace.settings.transport.host} stopped answering"
                    )
                    _defer_the_rest(store, rest, reason, today, now, report)
                    return
                continue
            refused = "; ".join(f"refused {a}: {r}" for a, r in delivery.refused.items()) or None
            _record_sent(store, row, refused, today, now)
            report.sent += 1
            if refused:
                report.problems.append(f"email #{row['id']}: sent, but {refused}")
    finally:
        sender.close()


def _fail_email(store: Store, row: Row, reason: str, today: str, report: SendReport) -> None:
    _finish(store, row, "failed", reason, today)
    report.failed += 1
    report.problems.append(f"email #{row['id']}: {reason}")


def _record_sent(store: Store, row: Row, refused: str | None, today: str, now: datetime) -> None:
    try:
        _finish(store, row, "sent", refused, today, sent_at=now.isoformat(timespec="seconds"))
    except FunnelError as exc:
        raise FunnelError(
            f"Email #{row['id']} was delivered, but recording that failed: {exc.message} "
            f"The next 'funnelctl send' shows it as uncertain and sends it again only if "
            f"asked; settle it with 'funnelctl outbox resolve {row['id']} --sent'."
        ) from None


def _defer(
    store: Store, row: Row, exc: TemporaryFailure, today: str, now: datetime, report: SendReport
) -> None:
    """Keep a claimed email for a later run (backoff), or fail it after MAX_ATTEMPTS."""
    attempts = row["attempts"] + 1
    if attempts >= MAX_ATTEMPTS:
        _finish(store, row, "failed", f"gave up after {attempts} attempts: {exc}", today)
        report.failed += 1
        return
    later = _retry_time(attempts, now)
    _finish(store, row, "queued", f"{exc}; retrying after {later}", today, next_attempt_at=later)
    report.deferred += 1
    report.problems.append(f"email #{row['id']}: {exc} (kept for a later run)")


def _defer_the_rest(
    store: Store,
    rows: list[Row],
    exc: ConnectionFailure,
    today: str,
    now: datetime,
    report: SendReport,
    *,
    claimed_first: bool = False,
) -> None:
    """The server cannot be reached: every email left in the run counts one attempt and
    waits for its retry time, in one transaction and one message (not one timeout each)."""
    kept = 0
    with store.write(patient=True):
        for index, row in enumerate(rows):
            attempts = row["attempts"] + 1
            if not claimed_first or index:
                claimed = store.conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1 WHERE id = ? AND status = 'queued'",
                    [row["id"]],
                ).rowcount
                if not claimed:
                    continue  # another run took it meanwhile
            if attempts >= MAX_ATTEMPTS:
                _record(store, row, "failed", f"gave up after {attempts} attempts: {exc}", today)
                report.failed += 1
                continue
            later = _retry_time(attempts, now)
            _record(
                store, row, "queued", f"{exc}; retrying after {later}", today, next_attempt_at=later
            )
            report.deferred += 1
            kept += 1
    if kept:
        report.problems.append(f"{exc} ({kept} email(s) kept for a later run)")


def _retry_time(attempts: int, now: datetime) -> str:
    wait = BACKOFF_MINUTES[min(attempts - 1, len(BACKOFF_MINUTES) - 1)]
    return (now + timedelta(minutes=wait)).isoformat(timespec="seconds")

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
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from .context import message_context
from .dates import days_between, shift
from .errors import BusyError, FunnelError, os_problem
from .inbox import held_back
from .mail import (
    HeaderProblem,
    Recipient,
    Rendered,
    Template,
    TemplateProblem,
    addr_spec,
    check_headers,
    find_template,
    handoff_context,
    message_bytes,
    render,
    stale_reason,
)
from .mdhtml import Ahead
from .outfiles import PendingFile
from .playbooks import Library
from .refs import ref
from .store import Store, customers, events, outbox, touchpoints
from .store import activities as tasks
from .store.outbox import OutboxEmail
from .tls import tls_context
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


class Handover(Protocol):
    """One message on its way: begun before its claim is written, finished after."""

    def finish(self, data: bytes) -> Delivery:
        """Hand the message over; raises what the transport's ``send`` raises."""
        ...

    def abandon(self) -> None:
        """The claim was not written: make sure nothing of the message is delivered."""
        ...


class Sender(Protocol):
    """A transport. :meth:`open` does everything that can fail before an email is claimed
    (connect, greet, log in, check the command exists); :meth:`begin` starts handing over
    a message (only what delivers nothing, while its claim is written) and its
    :meth:`Handover.finish` hands over the bytes of a message already checked;
    :meth:`delivered` says whether a message claimed by a run that died did arrive, when
    the transport can know (None: it cannot)."""

    real: bool  # the email really leaves this machine
    linesep: str  # the line ending the transport takes
    name: str  # the server or program, for messages

    def open(self) -> None: ...

    def begin(self, message_id: str, sender: str, recipients: list[str]) -> Handover: ...

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
        self.name = transport.host
        self._worker: ThreadPoolExecutor | None = None
        self._pending: Future[Delivery] | None = None
        self._stopping = threading.Event()  # close() while an envelope runs: no reconnect
        self._in_data = False  # between the server's 354 and the message's end

    def open(self) -> None:
        if self.conn is None:
            self.conn = self._connect()

    def _tls(self) -> ssl.SSLContext:
        return tls_context(self.transport.ca_file, "transport.ca_file")

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

    def begin(self, message_id: str, sender: str, recipients: list[str]) -> Handover:
        """MAIL, RCPT and DATA up to the server's 354, in a thread of their own while the
        caller writes the claim: its fsync and these round trips overlap. Nothing of the
        message has left when they are done; the bytes go only in ``finish``."""
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp")
        self._pending = self._worker.submit(self._envelope, sender, recipients)
        return _SmtpHandover(self, self._pending)

    def _envelope(self, sender: str, recipients: list[str]) -> Delivery:
        for attempt in (1, 2):
            if self._stopping.is_set():
                raise ConnectionFailure("the run was stopped")
            if self.conn is None:
                self.conn = self._connect()
                if self._stopping.is_set():  # stopped while it connected
                    raise ConnectionFailure("the run was stopped")
            try:
                return self._start(self.conn, sender, recipients)
            except (smtplib.SMTPServerDisconnected, smtplib.SMTPHeloError, TimeoutError) as exc:
                # Before the message was handed over: a dropped line is safe to reconnect
                # once; a server gone silent (or dropping twice) is not fit for the run.
                self._drop()
                if _silent(exc):
                    raise ConnectionFailure(f"{self.transport.host} stopped answering") from None
                if attempt == 2 or self._stopping.is_set():
                    raise ConnectionFailure(
                        f"{self.transport.host} keeps closing the connection"
                    ) from None
            except smtplib.SMTPResponseException as exc:  # a reply smtplib itself refused
                self._drop()  # ("500 Line too long": a garbled line, not a verdict on the email)
                reply = exc.smtp_error
                text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
                raise TemporaryFailure(f"unreadable reply from the server: {text}") from None
        raise AssertionError("unreachable")

    def _start(self, conn: smtplib.SMTP, sender: str, recipients: list[str]) -> Delivery:
        envelope_from = addr_spec(sender)
        conn.ehlo_or_helo_if_needed()
        try:
            code, reply = conn.mail(envelope_from)
        except UnicodeEncodeError as exc:  # nothing was handed over yet
            conn.rset()
            raise PermanentFailure(f"the sender address cannot be sent over SMTP: {exc}") from None
        if code != 250:
            conn.rset()
            _raise_for(code, reply, "sender refused")
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
        # DATA in its two halves, as smtplib's data() does, to know which one failed:
        # before the server says 354 nothing of the message has left.
        conn.putcmd("data")
        code, reply = conn.getreply()  # raises SMTPServerDisconnected: nothing left yet
        if code != 354:
            # the transaction stays open on some servers: end it, or the next MAIL is refused
            with contextlib.suppress(smtplib.SMTPException, OSError):
                conn.rset()
            _raise_for(code, reply, "message refused")
        self._in_data = True
        return delivery

    def _content(self, data: bytes) -> None:
        """The message after the 354: once it is sent, a silence or a dropped line leaves
        its fate unknown."""
        assert self.conn is not None
        body = re.sub(rb"(?m)^\.", b"..", data)  # dot-stuffing (RFC 5321 4.5.2)
        body += (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n"
        try:
            self.conn.send(body)
            code, reply = self.conn.getreply()
            self._in_data = False
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise Uncertain(
                f"the connection to {self.transport.host} failed while the message was sent: {exc}",
                connection=_silent(exc),
            ) from None
        if code != 250:  # the server's verdict on the message itself
            # a server whose delivery failed may keep the transaction open: end it, as
            # smtplib's sendmail does, or the next email's MAIL is refused as nested
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.conn.rset()
            _raise_for(code, reply, "message refused")

    def _drop(self) -> None:
        self._in_data = False  # a cut line ends a message that was not finished
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
        self.conn = None

    def delivered(self, message_id: str) -> bool | None:
        return None

    def close(self) -> None:
        if self._pending is not None and not self._pending.done():
            # left mid-envelope (Ctrl-C): no reconnect, and the line cut, which delivers
            # nothing and wakes the thread from its wait
            self._stopping.set()
            conn = self.conn
            if conn is not None and conn.sock is not None:
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_RDWR)
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None
        if self._in_data or self._stopping.is_set():
            self._drop()  # a QUIT now would be read as the message's text: cut the line
        if self.conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.conn.quit()
            self.conn = None


@dataclass
class _SmtpHandover:
    smtp: SmtpSender
    envelope: Future[Delivery]

    def finish(self, data: bytes) -> Delivery:
        delivery = self.envelope.result()  # what the envelope met, raised here
        self.smtp._content(data)
        return delivery

    def abandon(self) -> None:
        try:
            self.envelope.result()
        except Exception:
            return  # nothing was begun
        self.smtp._drop()  # after the 354, only a cut line leaves the message undelivered


@dataclass
class _DirectHandover:
    """For transports that take a message in one step: all of it happens in ``finish``."""

    send: Callable[[bytes, str, str, list[str]], Delivery]
    message_id: str
    sender: str
    recipients: list[str]

    def finish(self, data: bytes) -> Delivery:
        return self.send(data, self.message_id, self.sender, self.recipients)

    def abandon(self) -> None:
        pass


def _silent(exc: BaseException) -> bool:
    """The server stopped answering (a timeout; smtplib reports it as a disconnection)."""
    return isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    error = exc.smtp_error
    return (
        f"{exc.smtp_code} {error.decode(errors='replace') if isinstance(error, bytes) else error}"
    )


def _raise_for(code: int, reply: bytes | str, what: str) -> None:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    if 400 <= code < 500:
        raise TemporaryFailure(f"{what}: {code} {text}")
    raise PermanentFailure(f"{what}: {code} {text}")


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
        self.name = self.command[0]

    def open(self) -> None:
        program = self.command[0] if self.command else ""
        if not program or shutil.which(program) is None:
            raise FunnelError(
                f"The sendmail command {program!r} does not exist or cannot be run; "
                "fix transport.command."
            )

    def begin(self, message_id: str, sender: str, recipients: list[str]) -> Handover:
        return _DirectHandover(self.send, message_id, sender, recipients)

    def send(self, data: bytes, message_id: str, sender: str, recipients: list[str]) -> Delivery:
        argv = list(self.command)
        if not any(arg.startswith("-f") for arg in argv):
            argv += ["-f", addr_spec(sender)]
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
        self.name = str(folder)

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

    def begin(self, message_id: str, sender: str, recipients: list[str]) -> Handover:
        return _DirectHandover(self.send, message_id, sender, recipients)

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
    problem = workspace.settings.sender_problem()
    if t.kind in ("smtp", "sendmail") and problem:
        raise FunnelError(f"Nothing was sent through {t.kind}: {problem}.")
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
    """A message rendered and its headers checked; it is built once, just before it goes,
    so that a long outbox does not hold thousands of messages in memory at once."""

    email: OutboxEmail
    rendered: Rendered


def _prepare(
    store: Store,
    library: Library,
    workspace: Workspace,
    emails: list[OutboxEmail],
    today: str,
    now: datetime,
    report: SendReport,
    *,
    dry: bool,
) -> list[Prepared]:
    """Render every due message before any goes out; a broken template holds all of its emails."""
    ready: list[Prepared] = []
    broken: dict[str, str] = {}
    templates: dict[tuple[str, str | None], Template] = {}  # read once per run
    # the languages the workspace writes in (welcome.pt.txt): a customer of one of them
    # who gets a template's default words is worth a line (the translation is missing)
    translated = {
        path.name.split(".")[-2].lower() for path in workspace.templates_dir.glob("*.*.txt")
    }
    untranslated: dict[tuple[str, str], int] = {}
    for email in emails:
        if held_back(store, email, today, report, dry=dry):  # unsubscribed, or it bounced
            continue
        customer = customers.get(store, email.customer_id)
        assert customer is not None
        context, speaker = message_context(
            store,
            library,
            workspace.settings,
            customer,
            today,
            enrollment_id=email.enrollment_id,
            visit_id=email.visit_id,
        )
        recipient = Recipient.of(customer)
        language = customer.language
        if email.partner is not None:
            handoff = _handoff(store, library, email, today, dry)
            if handoff is None:
                continue
            context |= handoff
            recipient = Recipient(handoff["partner"]["email"], handoff["partner"]["name"])
            language = None  # the partner's language is not the customer's
        try:
            key = (email.template, language)
            if key not in templates:
                templates[key] = find_template(workspace.templates_dir, *key)
            rendered = render(
                templates[key], context, workspace.settings, recipient, speaker, convert=False
            )
            # headers checked before any email is claimed (their written form is checked
            # too, when each email is built to go, still before its claim)
            check_headers(rendered, email.message_id)
        except TemplateProblem as exc:
            broken.setdefault(email.template, exc.message)
            report.problems.append(f"{exc.message} (for {customer.email or customer.external_id})")
            continue
        except HeaderProblem as exc:
            report.problems.append(f"email e{email.id} to {customer.email}: {exc.message}")
            if not dry:
                _fail(store, email, exc.message, today, report, announce=False)
            else:
                report.failed += 1
            continue
        ready.append(Prepared(email, rendered))
        lang = (language or "").lower()
        if translated.intersection({lang, lang.split("-")[0]}) and templates[key].path.name == (
            f"{email.template}.txt"
        ):
            untranslated[(email.template, lang)] = untranslated.get((email.template, lang), 0) + 1
    report.held += sum(1 for email in emails if email.template in broken)
    for (name, lang), count in untranslated.items():
        if name in broken:
            continue
        report.problems.append(
            f"{count} {name!r} email(s) to customers whose language is {lang} are in the "
            f"default words: there is no {workspace.templates_dir.name}/"
            f"{name}.{lang.split('-')[0]}.txt yet."
        )
    return [p for p in ready if p.email.template not in broken]


def _handoff(
    store: Store, library: Library, email: OutboxEmail, today: str, dry: bool
) -> dict[str, Any] | None:
    """The partner and task a partner's email is about; None (and the email superseded)
    when the task was closed before the partner was told, or the partner is gone."""
    task = tasks.get(store, email.task_id) if email.task_id is not None else None
    partner = library.partners.get(email.partner or "")
    why = None
    if task is None or task.status != "open":
        why = f"its task was {task.status if task else 'removed'} before the partner was told"
    elif partner is None:
        why = f"partner {email.partner!r} is no longer in the playbooks"
    if why is None:
        return handoff_context(partner, task)
    if not dry:
        with store.write(patient=True):
            outbox.supersede(store, email.id, why)
            _timeline(store, email, "superseded", why, today)
    return None


# -- what each fate does: the outbox's transition and the customer's timeline line ------------


def _timeline(
    store: Store, email: OutboxEmail, what: str, reason: str | None, today: str, ok: bool = True
) -> None:
    text = f"Email {email.template!r} {what}" + (f": {reason}" if reason else "")
    events.add(store, email.customer_id, today, "email", text, ok=ok)


# Each runs after the server was spoken to: the write is patient, because giving up as
# busy would turn a known fate into an uncertain one. Only the claim may give up.


@dataclass(frozen=True)
class Delivered:
    """An email the server took, whose record waits for the next email's claim: both go in
    one commit (one fsync per email, not two)."""

    email: OutboxEmail
    refused: str | None
    sent_at: str


def _record_sent(store: Store, done: Delivered, today: str) -> None:
    """Inside the caller's write: the email is sent, with its timeline line and touchpoint."""
    email = done.email
    outbox.mark_sent(store, email.id, sent_at=done.sent_at, reason=done.refused)
    _timeline(store, email, "sent", done.refused, today)
    if email.partner is not None:
        return  # told the partner, not the customer: no touchpoint
    # Correspondence the customer received: the quiet alerts and the health
    # model see a customer kept on process as in touch (replies are inbound).
    touchpoints.add(
        store,
        customer_id=email.customer_id,
        channel="email",
        direction="outbound",
        happened_on=today,
        summary=f"Email {email.template!r} sent",
        by="funnelctl send",
        today=today,
    )


@dataclass
class Unrecorded:
    """The delivered email whose record waits for the next claim, if any (never more
    than one: every claim, and every way out of the run, records it)."""

    done: Delivered | None = None


def _sent(store: Store, pending: Unrecorded, today: str) -> None:
    """Record the waiting email alone, waiting as long as it takes: when no claim follows
    it (the last email, a stop), or the combined commit failed."""
    done, pending.done = pending.done, None
    if done is None:
        return
    try:
        with store.write(patient=True):
            _record_sent(store, done, today)
    except FunnelError as exc:
        if _already_sent(store, done.email.id):
            return  # an interrupt came after the commit that recorded it
        raise FunnelError(
            f"Email e{done.email.id} was delivered, but recording that failed: {exc.message} "
            f"The next 'funnelctl send' shows it as uncertain and sends it again only if "
            f"asked; settle it with 'funnelctl outbox resolve {done.email.id} --sent'."
        ) from None


def _already_sent(store: Store, email_id: int) -> bool:
    """Whether the email is recorded sent; False when even that cannot be read (the
    database that failed the record may fail this too, in any of its ways)."""
    with contextlib.suppress(Exception):
        email = outbox.get(store, email_id)
        return email is not None and email.status == outbox.Status.SENT
    return False


def _claim(store: Store, item: Prepared, pending: Unrecorded, today: str) -> bool:
    """Record the waiting email and claim this one, in one transaction. The claim may give
    up as busy; the record may not: then it is written alone, patiently, and the run stops
    with the claim's error. False when another run took this email."""
    recipients = ", ".join(item.rendered.recipients)
    done = pending.done
    try:
        with store.write():
            if done is not None:
                _record_sent(store, done, today)
            claimed = outbox.claim(
                store, item.email.id, subject=item.rendered.subject, recipients=recipients
            )
            pending.done = None  # recorded when this commits; put back below if it fails
    except BaseException:
        pending.done = done
        _sent(store, pending, today)
        raise
    return claimed


def _fail(
    store: Store,
    email: OutboxEmail,
    reason: str,
    today: str,
    report: SendReport,
    *,
    announce: bool = True,
) -> None:
    with store.write(patient=True):
        outbox.mark_failed(store, email.id, reason)
        _timeline(store, email, "FAILED", reason, today, ok=False)
    report.failed += 1
    if announce:
        report.problems.append(f"email e{email.id}: {reason}")


def _uncertain(store: Store, email: OutboxEmail, reason: str, today: str) -> None:
    with store.write(patient=True):
        outbox.mark_uncertain(store, email.id, reason)
        _timeline(store, email, "UNCERTAIN", reason, today, ok=False)


def _defer(
    store: Store,
    email: OutboxEmail,
    exc: TemporaryFailure,
    today: str,
    now: datetime,
    report: SendReport,
    *,
    tried: bool = False,
) -> str:
    """Keep an email for a later run (backoff), or fail it after MAX_ATTEMPTS; inside the
    caller's write. ``tried``: not claimed, the attempt is counted here. Returns what
    became of it: deferred, failed, or taken (another run took it meanwhile)."""
    attempts = email.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        reason = f"gave up after {attempts} attempts: {exc}"
        if not outbox.give_up(store, email.id, reason, tried=tried):
            return "taken"
        _timeline(store, email, "FAILED", reason, today, ok=False)
        report.failed += 1
        return "failed"
    later = _retry_time(attempts, now)
    reason = f"{exc}; retrying after {later}"
    if not outbox.defer(store, email.id, reason=reason, retry_at=later, tried=tried):
        return "taken"
    _timeline(store, email, "deferred", reason, today)
    report.deferred += 1
    return "deferred"


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
        _settle_interrupted(store, sender, today, now, options.retry_uncertain, report)
        if not in_window(workspace.settings, now):
            report.outside_window = True
        else:
            stamp = clock if sender.real else (lambda: now)
            _deliver(store, library, workspace, sender, today, now, stamp, options, report, sleep)
        report.uncertain = outbox.count(store, outbox.Status.UNCERTAIN)
    return report


def _settle_interrupted(
    store: Store, sender: Sender, today: str, now: datetime, retry: bool, report: SendReport
) -> None:
    """Emails left ``sending`` by a run that died: arrived (the Maildir can tell), certainly
    not sent, or else uncertain; ``retry`` queues the uncertain ones again.

    A run that died may have died of a damaged page, one it will hit again after the next
    email leaves: so before going on, the whole database is checked (only then: the
    check reads every page, seconds for a book of 100,000 customers).
    """
    interrupted = outbox.with_status(store, outbox.Status.SENDING)
    if interrupted:
        store.check_integrity()
    with store.write():
        for email in interrupted:
            arrived = sender.delivered(email.message_id)
            if arrived is None:
                outbox.mark_uncertain(store, email.id, INTERRUPTED)
            elif arrived:
                found = "found delivered after an interrupted run"
                outbox.mark_sent(
                    store, email.id, sent_at=now.isoformat(timespec="seconds"), reason=found
                )
                _timeline(store, email, "sent", found, today)
                report.problems.append(f"email e{email.id}: {found} (in {sender.name})")
            else:
                # the attempt stays counted: it was tried on time, so it is not stale later
                outbox.requeue_untouched(
                    store, email.id, email.attempts, "an interrupted run had not written it"
                )
        if retry:
            outbox.resend_every_uncertain(store, "resend requested")


def _due(store: Store, today: str, now: datetime) -> list[OutboxEmail]:
    return outbox.due(store, today, now.isoformat(timespec="seconds"))


def _skip_stale(store: Store, settings: Settings, today: str, dry: bool) -> int:
    stale = outbox.never_tried_before(store, shift(today, -settings.send.max_late_days))
    if dry or not stale:
        return len(stale)
    with store.write():
        for email in stale:
            late = days_between(email.scheduled_on, today)
            reason = stale_reason(email.scheduled_on, late, settings.send.max_late_days)
            outbox.skip(store, email.id, reason)
            _timeline(store, email, "skipped", reason, today)
    return len(stale)


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
    emails = [e for e in _due(store, today, now) if e.scheduled_on >= cutoff or e.attempts]
    prepared = _prepare(store, library, workspace, emails, today, now, report, dry=True)
    for item in prepared[: options.limit] if options.limit else prepared:
        report.planned.append(
            {
                "id": item.email.id,
                "ref": ref("email", item.email.id),
                "template": item.email.template,
                "scheduled_on": item.email.scheduled_on,
                "from": item.rendered.sender,
                "recipients": item.rendered.recipients,
                "subject": item.rendered.subject,
            }
        )
    report.uncertain = outbox.count(store, outbox.Status.UNCERTAIN, outbox.Status.SENDING)
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
    ready = _prepare(
        store, library, workspace, _due(store, today, now), today, now, report, dry=False
    )
    ready = ready[: options.limit] if options.limit else ready
    if not ready:
        return
    interval = 60.0 / settings.send.rate_per_minute if settings.send.rate_per_minute else 0.0
    try:
        try:
            sender.open()  # connect and log in before any email is claimed
        except ConnectionFailure as exc:
            _defer_the_rest(store, [item.email for item in ready], exc, today, now, report)
            return
        pending = Unrecorded()
        # Each message is built (its bytes written) in a thread while the one before it
        # is claimed and on the wire, where this one only waits; a long run's Markdown is
        # converted in a process of its own, further ahead (mdhtml.Ahead).
        builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="build")
        ahead = Ahead(i.rendered.markdown for i in ready if i.rendered.markdown is not None)

        def build(item: Prepared) -> bytes:
            return message_bytes(
                item.rendered, item.email.message_id, stamp(), sender.linesep, ahead.convert
            )

        try:
            upcoming = builder.submit(build, ready[0])
            for index, item in enumerate(ready):
                if index and interval:
                    sleep(interval)
                built = upcoming
                if index + 1 < len(ready):
                    upcoming = builder.submit(build, ready[index + 1])
                rest = _RestOf(ready, index + 1)
                if not _deliver_one(store, sender, item, built, today, now, report, rest, pending):
                    return
        finally:
            _sent(store, pending, today)  # first: a second Ctrl-C must not lose the record
            ahead.abort()  # a build waiting on the worker is done here, at once
            builder.shutdown(wait=True, cancel_futures=True)
            ahead.close()
    finally:
        sender.close()


@dataclass(frozen=True)
class _RestOf:
    """The emails after the one being delivered, listed only when they must all be
    deferred (a list made for every email would cost the square of a long outbox)."""

    ready: list[Prepared]
    start: int

    def emails(self) -> list[OutboxEmail]:
        return [item.email for item in self.ready[self.start :]]


def _deliver_one(
    store: Store,
    sender: Sender,
    item: Prepared,
    built: Future[bytes],
    today: str,
    now: datetime,
    report: SendReport,
    rest: _RestOf,
    pending: Unrecorded,
) -> bool:
    """Claim one email (recording the one before in the same commit), hand it over, note
    its fate: a delivered email waits in ``pending`` for the next claim. False when the
    run must stop delivering (the server cannot be reached: ``rest`` is deferred)."""
    email = item.email
    try:  # the message is built and written out before it is claimed
        data = built.result()
    except HeaderProblem as exc:
        _sent(store, pending, today)
        _fail(store, email, exc.message, today, report)
        return True
    handover = sender.begin(
        email.message_id, item.rendered.envelope_sender, item.rendered.recipients
    )
    try:
        claimed = _claim(store, item, pending, today)
    except BaseException:
        handover.abandon()
        raise
    if not claimed:
        handover.abandon()
        return True  # another run took it
    try:
        delivery = handover.finish(data)
        pending.done = Delivered(email, _refused(delivery), now.isoformat(timespec="seconds"))
    except KeyboardInterrupt:
        _uncertain(store, email, "interrupted (Ctrl-C) while it was sent", today)
        raise Interrupted(
            f"Interrupted while email e{email.id} was being sent: it is marked "
            "uncertain; check the recipient's mailbox, then settle it with "
            f"'funnelctl outbox resolve {email.id} --sent' or '--resend'."
        ) from None
    except FunnelError:
        # Nothing left (a full disk for the Maildir, a sendmail that cannot run): the
        # email goes back to the queue untouched and the run stops.
        with store.write(patient=True):
            outbox.requeue_untouched(store, email.id, email.attempts, email.reason)
        raise
    except ConnectionFailure as exc:
        _defer_the_rest(store, [email, *rest.emails()], exc, today, now, report, claimed_first=True)
        return False
    except TemporaryFailure as exc:
        with store.write(patient=True):
            fate = _defer(store, email, exc, today, now, report)
        if fate == "deferred":
            report.problems.append(f"email e{email.id}: {exc} (kept for a later run)")
        return True
    except PermanentFailure as exc:
        _fail(store, email, str(exc), today, report)
        return True
    except Uncertain as exc:
        _uncertain(store, email, str(exc), today)
        report.problems.append(f"email e{email.id}: {exc}")
        if exc.connection:  # the server went silent: the rest waits for a later run
            host = ConnectionFailure(f"{sender.name} stopped answering")
            _defer_the_rest(store, rest.emails(), host, today, now, report)
            return False
        return True
    report.sent += 1
    if pending.done.refused:
        report.problems.append(f"email e{email.id}: sent, but {pending.done.refused}")
    return True


def _refused(delivery: Delivery) -> str | None:
    return "; ".join(f"refused {a}: {r}" for a, r in delivery.refused.items()) or None


def _defer_the_rest(
    store: Store,
    emails: list[OutboxEmail],
    exc: ConnectionFailure,
    today: str,
    now: datetime,
    report: SendReport,
    *,
    claimed_first: bool = False,
) -> None:
    """The server cannot be reached: every email left in the run counts one attempt and
    waits for its retry time, in one transaction and one message (not one timeout each)."""
    deferred = report.deferred
    with store.write(patient=True):
        for index, email in enumerate(emails):
            _defer(store, email, exc, today, now, report, tried=not (claimed_first and index == 0))
    kept = report.deferred - deferred
    if kept:
        report.problems.append(f"{exc} ({kept} email(s) kept for a later run)")


def _retry_time(attempts: int, now: datetime) -> str:
    wait = BACKOFF_MINUTES[min(attempts - 1, len(BACKOFF_MINUTES) - 1)]
    return (now + timedelta(minutes=wait)).isoformat(timespec="seconds")

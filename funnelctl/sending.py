"""Delivering the outbox: `funnelctl send`, safe under cron.

At most once, nothing silently lost: a message is claimed (``sending``,
committed) before the server is contacted and marked ``sent`` once the server
accepts it. A ``sending`` row found when a run starts belongs to a run that
died mid-message: it becomes ``uncertain``, is reported, and is resent only on
request (with the same Message-ID). An OS lock makes runs take turns.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import smtplib
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any, Protocol

from .context import context_for
from .dates import days_between, shift
from .errors import BusyError, FunnelError
from .mail import (
    HeaderProblem,
    Rendered,
    TemplateProblem,
    build_message,
    find_template,
    render,
    stale_reason,
)
from .playbooks import Library
from .store import Row, Store
from .workspace import Settings, Transport, Workspace

MAX_ATTEMPTS = 5
BACKOFF_MINUTES = (5, 15, 60, 240)


class TemporaryFailure(Exception):
    """4xx or a connection that could not be made: nothing was sent; try again later."""


class PermanentFailure(Exception):
    """5xx: the server refused this message for good."""


class Uncertain(Exception):
    """The connection failed while the message was being handed over."""


@dataclass
class Delivery:
    refused: dict[str, str] = field(default_factory=dict)


class Sender(Protocol):
    def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> Delivery: ...

    def close(self) -> None: ...


# -- transports ------------------------------------------------------------------------------------


class SmtpSender:
    """One connection for the run, reopened if the server drops it between messages."""

    def __init__(self, transport: Transport, password: str | None) -> None:
        self.transport = transport
        self.password = password
        self.conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        t = self.transport
        context = ssl.create_default_context()  # verifies certificates and host names
        try:
            conn: smtplib.SMTP
            if t.security == "ssl":
                conn = smtplib.SMTP_SSL(t.host, t.port, timeout=t.timeout_s, context=context)
            else:
                conn = smtplib.SMTP(t.host, t.port, timeout=t.timeout_s)
                if t.security == "starttls":
                    conn.starttls(context=context)
            if t.username:
                conn.login(t.username, self.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise FunnelError(
                f"The SMTP server {t.host} refused the login for {t.username}: {_reply(exc)}"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise TemporaryFailure(f"cannot connect to {t.host}:{t.port}: {exc}") from None
        return conn

    def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> Delivery:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = self._connect()
            try:
                return self._send(self.conn, message, sender, recipients)
            except smtplib.SMTPServerDisconnected:
                # Dropped before the message was handed over: safe to reconnect once.
                self.conn = None
                if attempt == 2:
                    raise TemporaryFailure(
                        f"{self.transport.host} keeps closing the connection"
                    ) from None
        raise AssertionError("unreachable")

    def _send(
        self, conn: smtplib.SMTP, message: EmailMessage, sender: str, recipients: list[str]
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
        data = message.as_bytes(policy=policy.SMTP)
        try:
            code, reply = conn.data(data)
        except smtplib.SMTPDataError as exc:
            _fail(exc.smtp_code, exc.smtp_error, "message refused")
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
            self.conn = None
            raise Uncertain(
                f"the connection to {self.transport.host} failed while the message was sent: {exc}"
            ) from None
        if code != 250:  # the server's verdict on the message itself
            _fail(code, reply, "message refused")
        return delivery

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.conn.quit()
            self.conn = None


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


class SendmailSender:
    def __init__(self, transport: Transport) -> None:
        self.command = shlex.split(transport.command)
        self.timeout = transport.timeout_s

    def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> Delivery:
        argv = list(self.command)
        data = message.as_bytes(policy=policy.SMTP)
        if "-t" in argv:
            # sendmail -t takes the recipients from the headers and drops Bcc before
            # delivery, so the Bcc addresses must be in the copy it reads.
            shown = {
                a.lower()
                for _, a in getaddresses(message.get_all("To", []) + message.get_all("Cc", []))
            }
            bcc = [r for r in recipients if r.lower() not in shown]
            if bcc:
                data = b"Bcc: " + ", ".join(bcc).encode() + b"\r\n" + data
        else:
            argv += ["--", *recipients]
        try:
            done = subprocess.run(
                argv,
                input=data,
                capture_output=True,
                timeout=self.timeout,
            )
        except FileNotFoundError:
            raise FunnelError(
                f"The sendmail command {argv[0]} does not exist; fix transport.command."
            ) from None
        except subprocess.TimeoutExpired:
            raise Uncertain(f"{argv[0]} did not finish within {self.timeout} s") from None
        if done.returncode != 0:
            error = done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
            if done.returncode == 75:  # EX_TEMPFAIL
                raise TemporaryFailure(f"{argv[0]}: {error}")
            raise PermanentFailure(f"{argv[0]}: {error}")
        return Delivery()

    def close(self) -> None:
        pass


class MaildirSender:
    """Writes each message as an .eml file, for review instead of delivery."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> Delivery:
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = str(message["Message-ID"]).strip("<>").replace("/", "_").replace("@", "_at_")
        target = self.folder / f"{stem}.eml"
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(
            b"X-Envelope-To: "
            + ", ".join(recipients).encode()
            + b"\r\n"
            + message.as_bytes(policy=policy.SMTP)
        )
        os.replace(tmp, target)
        return Delivery()

    def close(self) -> None:
        pass


def make_sender(workspace: Workspace, environ: dict[str, str]) -> Sender:
    t = workspace.settings.transport
    if t.kind == "smtp":
        password = environ.get(t.password_env) if t.username else None
        if t.username and not password:
            raise FunnelError(
                f"transport.username is set but the environment variable {t.password_env} is empty; "
                "export the SMTP password there."
            )
        return SmtpSender(t, password)
    if t.kind == "sendmail":
        return SendmailSender(t)
    return MaildirSender(workspace.root / t.path)


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
            build_message(rendered, row["message_id"], now)  # headers checked before any send
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


def _finish(
    store: Store, row: Row, status: str, reason: str | None, today: str, **extra: Any
) -> None:
    with store.write():
        store.update("outbox", row["id"], {"status": status, "reason": reason, **extra})
        label = {
            "sent": "sent",
            "failed": "FAILED",
            "uncertain": "UNCERTAIN",
            "queued": "deferred",
        }[status]
        text = f"Email {row['template']!r} {label}" + (f": {reason}" if reason else "")
        store.add_event(row["customer_id"], today, "email", text, ok=status in ("sent", "queued"))


def send(
    store: Store,
    library: Library,
    workspace: Workspace,
    *,
    today: str,
    now: datetime,
    options: SendOptions,
    environ: dict[str, str],
    sleep: Callable[[float], None] = time.sleep,
    sender_factory: Callable[[], Sender] | None = None,
) -> SendReport:
    report = SendReport()
    if options.dry_run:
        return _plan(store, library, workspace, today, now, options, report)
    with send_lock(workspace, options.wait_s, sleep):
        with store.write():
            store.conn.execute(
                "UPDATE outbox SET status = 'uncertain', reason = 'a previous send stopped while sending it; "
                "check the recipient''s mailbox, then resend with --retry-uncertain' WHERE status = 'sending'"
            )
            if options.retry_uncertain:
                store.conn.execute(
                    "UPDATE outbox SET status = 'queued', reason = 'resend requested', next_attempt_at = NULL "
                    "WHERE status = 'uncertain'"
                )
        if not in_window(workspace.settings, now):
            report.outside_window = True
        else:
            _deliver(
                store,
                library,
                workspace,
                today,
                now,
                options,
                report,
                environ,
                sleep,
                sender_factory,
            )
        report.uncertain = int(
            store.scalar("SELECT count(*) FROM outbox WHERE status = 'uncertain'")
        )
    return report


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
    today: str,
    now: datetime,
    options: SendOptions,
    report: SendReport,
    environ: dict[str, str],
    sleep: Callable[[float], None],
    sender_factory: Callable[[], Sender] | None,
) -> None:
    settings = workspace.settings
    report.skipped += _skip_stale(store, settings, today, dry=False)
    # --limit counts emails that can go: a held template does not use up the run
    rows = _due_rows(store, today, now, None)
    ready = _prepare(store, library, workspace, rows, today, now, report, dry=False)
    ready = ready[: options.limit] if options.limit else ready
    if not ready:
        return
    sender = sender_factory() if sender_factory else make_sender(workspace, environ)
    interval = 60.0 / settings.send.rate_per_minute if settings.send.rate_per_minute else 0.0
    try:
        for index, item in enumerate(ready):
            if index and interval:
                sleep(interval)
            row = item.row
            with store.write():
                claimed = store.conn.execute(
                    "UPDATE outbox SET status = 'sending', attempts = attempts + 1, subject = ?, recipients = ? "
                    "WHERE id = ? AND status = 'queued'",
                    [item.rendered.subject, ", ".join(item.rendered.recipients), row["id"]],
                ).rowcount
            if not claimed:
                continue
            try:
                message = build_message(item.rendered, row["message_id"], now)
                delivery = sender.send(message, item.rendered.sender, item.rendered.recipients)
            except FunnelError:
                # A problem of the set-up (refused login, missing sendmail): nothing left,
                # so the email goes back to the queue untouched and the run stops.
                with store.write():
                    store.update(
                        "outbox", row["id"], {"status": "queued", "attempts": row["attempts"]}
                    )
                raise
            except TemporaryFailure as exc:
                attempts = row["attempts"] + 1
                if attempts >= MAX_ATTEMPTS:
                    _finish(
                        store, row, "failed", f"gave up after {attempts} attempts: {exc}", today
                    )
                    report.failed += 1
                else:
                    wait = BACKOFF_MINUTES[min(attempts - 1, len(BACKOFF_MINUTES) - 1)]
                    later = (now + timedelta(minutes=wait)).isoformat(timespec="seconds")
                    _finish(
                        store,
                        row,
                        "queued",
                        f"{exc}; retrying after {later}",
                        today,
                        next_attempt_at=later,
                    )
                    report.deferred += 1
                    report.problems.append(f"email #{row['id']}: {exc} (kept for a later run)")
                continue
            except PermanentFailure as exc:
                _finish(store, row, "failed", str(exc), today)
                report.failed += 1
                report.problems.append(f"email #{row['id']}: {exc}")
                continue
            except Uncertain as exc:
                _finish(store, row, "uncertain", str(exc), today)
                report.problems.append(f"email #{row['id']}: {exc}")
                continue
            refused = "; ".join(f"refused {a}: {r}" for a, r in delivery.refused.items()) or None
            _finish(store, row, "sent", refused, today, sent_at=now.isoformat(timespec="seconds"))
            report.sent += 1
            if refused:
                report.problems.append(f"email #{row['id']}: sent, but {refused}")
    finally:
        sender.close()

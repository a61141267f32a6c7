"""funnelctl inbox: the consultant's mail, read since the last run, recorded for what it
means. A reply is an inbound touchpoint (through the same path as ``funnelctl log``, so
``stop_on_reply`` and ``drop_if: customer.replied`` follow); an automatic answer is only
noted; a bounce marks the email bounced and the address undeliverable; a request to
stop sets the customer's do_not_email; what the consultant sent from their own mail
program is an outbound touchpoint. Mail of no one known is counted, never stored.

The mailbox is never changed (mailboxes.py). Send asks :func:`held_back` before an
email goes: a customer who asked for no more email is skipped, one whose address
bounced is held until it changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import FunnelError
from .store import Store, customers, events, outbox
from .store import inbox as state

if TYPE_CHECKING:
    from .mailparse import Head, Mail
    from .playbooks import Library
    from .sending import SendReport
    from .store.customers import Customer
    from .store.outbox import OutboxEmail
    from .workspace import Settings

BY = "funnelctl inbox"
UNSUBSCRIBED = "the customer asked for no more email"
ROLES = ("inbox", "sent")


# The first day of mail the inbox records (meta): set by its first reading.
WINDOW = "inbox_since"


@dataclass
class InboxReport:
    read: int = 0
    replies: int = 0
    auto_replies: int = 0
    bounces: int = 0
    unsubscribes: int = 0
    outbound: int = 0
    unmatched: int = 0
    old: int = 0  # dated before the inbox's window (its first reading): not recorded

    def summary(self) -> dict[str, int]:
        return {
            "read": self.read,
            "replies": self.replies,
            "auto_replies": self.auto_replies,
            "bounces": self.bounces,
            "unsubscribes": self.unsubscribes,
            "outbound": self.outbound,
            "unmatched": self.unmatched,
            "old": self.old,
        }


def read_inbox(
    store: Store,
    library: Library,
    settings: Settings,
    *,
    today: str,
    environ: Mapping[str, str],
) -> InboxReport:
    """Read every folder of ``settings.inbox`` from where the last run stopped and record
    what the new messages mean; each batch, with the position reached, is one
    transaction (an interrupted run goes on where it stopped, recording nothing twice)."""
    from . import mailboxes

    inbox = settings.inbox
    if inbox is None:
        raise AssertionError("read_inbox without an inbox")
    since = store.get_meta(WINDOW)
    if since is None:  # the first reading: its window holds from now on
        since = mailboxes.first_read_since(today)
        with store.write():
            store.set_meta(WINDOW, since)
    recorder = Recorder(store, library, settings, today, since)
    if inbox.kind == "maildir":
        for role, path in (("inbox", inbox.maildir_inbox), ("sent", inbox.maildir_sent)):
            if path is not None:
                for batch in mailboxes.maildir_batches(store, Path(path)):
                    recorder.record_batch(batch, role)
        return recorder.report
    reader = mailboxes.ImapReader(inbox, environ)
    reader.open()
    try:
        for role, name in (("inbox", inbox.inbox_folder), ("sent", inbox.sent_folder)):
            if name is not None:
                for batch in reader.batches(store, name, since):
                    recorder.record_batch(batch, role)
    finally:
        reader.close()
    return recorder.report


class Recorder:
    """Records messages for what they mean, inside the caller's transaction."""

    def __init__(
        self, store: Store, library: Library, settings: Settings, today: str, since: str
    ) -> None:
        self.store = store
        self.library = library
        self.settings = settings
        self.today = today
        self.since = since  # mail dated before it is not recorded (the inbox's window)
        self.report = InboxReport()
        own = [settings.sender, *(m.email or "" for m in settings.members)]
        if settings.inbox is not None and settings.inbox.username:
            own.append(settings.inbox.username)
        self.own = {parseaddr(a)[1].lower() for a in own if "@" in a}

    def record_batch(self, batch: Any, role: str) -> None:
        with self.store.write():
            for data in batch.messages:
                self.report.read += 1
                self.record_alone(data, role)
            batch.remember(self.store, self.today)

    def record_alone(self, data: bytes, role: str) -> None:
        """Record one message in a savepoint: an unexpected problem with it (a message
        shaped as no test foresaw) undoes its records and counts it unmatched, rather
        than stopping the folder on it at every run. The store's own problems (busy,
        disk full: a FunnelError or sqlite3's errors, none of these classes) and the
        mailbox's still stop the run: nothing else could be recorded."""
        from .mailparse import MALFORMED

        report = replace(self.report)
        try:
            with self.store.savepoint("inbox_message"):
                self.record(data, role)
        except FunnelError:
            raise
        except (*MALFORMED, ArithmeticError, AssertionError):
            self.report = replace(report, unmatched=report.unmatched + 1)

    def record(self, data: bytes, role: str) -> None:
        """Record one message; its body is read only when its headers concern someone.
        Mail dated before the inbox's window (its first reading) is left alone, however
        it comes back: a folder re-read after a new UIDVALIDITY, a Maildir re-synced."""
        from .mailparse import MALFORMED, head, parse

        try:
            found = head(data, recipients=role == "sent")
            key = f"{role}:{found.key}"
            if state.recorded(self.store, key):
                return
            mail = parse(data) if self._concerns_someone(found, role) else None
        except MALFORMED:
            mail = None  # a message the email package cannot read: no one's, as far as we know
        if mail is None:
            self.report.unmatched += 1
            return
        if self._day(mail) < self.since:
            self.report.old += 1
            return
        if role == "sent":
            kind = self._outbound(mail)
        elif mail.kind == "bounce":
            kind = self._bounce(mail)
        else:
            kind = self._from_customer(mail)
        if kind is None:
            self.report.unmatched += 1
            return
        state.mark_recorded(self.store, key, kind, self.today)

    def _concerns_someone(self, found: Head, role: str) -> bool:
        """Whether the headers name an email funnelctl sent or a customer's address (a
        report is read whole: only its body says whose email bounced)."""
        if role == "sent":
            if found.message_id and outbox.by_message_ids(self.store, [found.message_id]):
                return True
            return any(state.customer_with_address(self.store, a) for a in found.recipients)
        if found.report:
            return True
        if not found.sender or found.sender in self.own:
            return False  # a colleague in the thread, a Bcc to self: no customer wrote
        if found.references and outbox.by_message_ids(self.store, found.references):
            return True
        return state.customer_with_address(self.store, found.sender)

    # -- what it means ----------------------------------------------------------------------------

    def _day(self, mail: Mail) -> str:
        """The message's day in the workspace's zone (never after today)."""
        if mail.date is None:
            return self.today
        try:
            day = mail.date.astimezone(self.settings.zone).date().isoformat()
        except (OverflowError, ValueError):  # past the calendar's edge in this zone
            return self.today
        return min(day, self.today)

    def _customer_of(self, mail: Mail) -> tuple[Customer | None, OutboxEmail | None]:
        """Whose message it is: the customer of the email it answers (In-Reply-To,
        References), else the customer with the sender's address. A message from one of
        our own addresses is no one's: a colleague answering in the thread (Cc to the
        shared mailbox) or a Bcc to self is not the customer writing back."""
        if not mail.sender or mail.sender in self.own:
            return None, None
        email = outbox.by_message_ids(self.store, mail.references) if mail.references else None
        if email is not None and email.partner is None:
            return customers.get(self.store, email.customer_id), email
        return customers.by(self.store, "email", mail.sender), None

    def _from_customer(self, mail: Mail) -> str | None:
        customer, answered = self._customer_of(mail)
        if customer is None:
            return None
        day = self._day(mail)
        about = f" (to {answered.template!r})" if answered is not None else ""
        if mail.kind == "auto-reply":
            events.add(
                self.store, customer.id, day, "email", f"Automatic answer{about}: {mail.summary}"
            )
            self.report.auto_replies += 1
            return mail.kind
        if mail.kind == "unsubscribe":
            self._unsubscribe(customer, mail, day)
            return mail.kind
        from .activities import record_touchpoint

        record_touchpoint(
            self.store,
            self.library,
            self.settings,
            customer,
            channel="email",
            direction="inbound",
            summary=mail.summary,
            on=day,
            today=self.today,
            by=BY,
        )
        self.report.replies += 1
        return mail.kind

    def _unsubscribe(self, customer: Customer, mail: Mail, day: str) -> None:
        state.set_do_not_email(self.store, customer.id, True, self.today)
        skipped = outbox.skip_for_customer(self.store, customer.id, UNSUBSCRIBED)
        text = f"Asked for no more email: {mail.summary}"
        if skipped:
            text += f" ({skipped} queued email(s) skipped)"
        events.add(self.store, customer.id, day, "email", text)
        self.report.unsubscribes += 1

    def _bounce(self, mail: Mail) -> str | None:
        bounce = mail.bounce
        assert bounce is not None
        email = outbox.by_message_ids(self.store, bounce.returned_ids)
        if email is not None:
            customer = customers.get(self.store, email.customer_id)
        elif bounce.recipient:
            customer = customers.by(self.store, "email", bounce.recipient)
            email = outbox.last_sent(self.store, customer.id) if customer else None
        else:
            customer = None
        if customer is None:
            return None
        day = self._day(mail)
        what = f"Email {email.template!r}" if email is not None else "An email"
        self.report.bounces += 1
        if not bounce.permanent:
            events.add(self.store, customer.id, day, "email", f"{what} delayed: {bounce.reason}")
            return "delayed"
        if email is not None:
            outbox.mark_bounced(self.store, email.id, bounce.reason)
        events.add(
            self.store, customer.id, day, "email", f"{what} bounced: {bounce.reason}", ok=False
        )
        to_them = email is None or email.partner is None
        if to_them and _same(bounce.recipient, customer.email):
            state.set_undeliverable(self.store, customer.id, bounce.reason, self.today)
            held = outbox.hold_for_customer(self.store, customer.id, _held_reason(bounce.reason))
            if held:
                events.add(
                    self.store,
                    customer.id,
                    self.today,
                    "email",
                    f"{held} queued email(s) held until the address is fixed",
                )
        return "bounce"

    def _outbound(self, mail: Mail) -> str | None:
        """What the consultant sent from their own mail program: an outbound touchpoint
        for each customer it went to. funnelctl's own emails were recorded when sent."""
        if mail.message_id and outbox.by_message_ids(self.store, [mail.message_id]):
            return "own"
        from .activities import record_touchpoint

        found = 0
        for address in dict.fromkeys(mail.recipients):
            customer = customers.by(self.store, "email", address)
            if customer is None:
                continue
            record_touchpoint(
                self.store,
                self.library,
                self.settings,
                customer,
                channel="email",
                direction="outbound",
                summary=mail.summary,
                on=self._day(mail),
                today=self.today,
                by=BY,
            )
            found += 1
        if not found:
            return None
        self.report.outbound += 1
        return "outbound"


def _same(recipient: str | None, address: str | None) -> bool:
    """The bounced address is the customer's (a report without one is about them)."""
    return recipient is None or (address is not None and recipient.lower() == address.lower())


def _held_reason(bounce: str) -> str:
    return f"the address bounced ({bounce}): fix it with 'funnelctl customer edit'"


# -- asked by send before an email goes -------------------------------------------------------------


def held_back(
    store: Store, email: OutboxEmail, today: str, report: SendReport, *, dry: bool
) -> bool:
    """True when ``email`` must not go (counted in ``report``): its customer asked for no
    more email (skipped) or their address bounced (held until it changes). An email to a
    partner goes either way."""
    if email.partner is not None:
        return False
    block = state.mail_block(store, email.customer_id)
    if not block.blocked:
        return False
    if block.do_not_email:
        report.skipped += 1
        if not dry:
            with store.write():
                outbox.skip(store, email.id, UNSUBSCRIBED)
                events.add(
                    store,
                    email.customer_id,
                    today,
                    "email",
                    f"Email {email.template!r} skipped: {UNSUBSCRIBED}",
                )
        return True
    assert block.undeliverable is not None
    reason = _held_reason(block.undeliverable)
    report.held += 1
    report.problems.append(f"email e{email.id}: held, {reason}")
    if not dry:
        with store.write():
            outbox.hold(store, email.id, reason)
            events.add(
                store, email.customer_id, today, "email", f"Email {email.template!r} held: {reason}"
            )
    return True

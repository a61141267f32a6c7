"""Email: templates, the messages they make, and the outbox.

A template is a message: header lines (``Subject:`` required; optional
``From:``, ``To:``, ``Cc:``, ``Bcc:``, ``Reply-To:``, ``Content-Type:
text/markdown``), a blank line, then the body. Header values and body are
rendered separately with the one sandboxed Jinja environment, so data can never
add a header line; a rendered header value holding CR or LF fails that email.
A Markdown body is sent as plain text plus HTML, with data escaped in the HTML.
"""

from __future__ import annotations

import re
import secrets
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from email import contentmanager
from email import policy as email_policy
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from .dates import days_between
from .errors import FunnelError, NotFound
from .mdhtml import to_html
from .sandbox import TemplateError, UnsafeAddress, address_template, markdown_template
from .sandbox import template as compiled
from .store import Store, customers, enrollments, events, outbox
from .store.customers import Customer
from .workspace import Member, Settings

ADDRESS_HEADERS = ("From", "To", "Cc", "Bcc", "Reply-To")
HEADERS = ("Subject", "From", "To", "Cc", "Bcc", "Reply-To", "Content-Type")
_HEADER_LINE = re.compile(r"^([A-Za-z-]+):[ \t]*(.*)$")
_ALLOWED_TYPES = ("text/plain", "text/markdown")


class TemplateProblem(FunnelError):
    """A template that cannot be read or rendered; ``line`` points into its file."""

    def __init__(self, path: Path, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Template:
    name: str
    path: Path
    headers: tuple[tuple[str, str, int], ...]  # (name, raw value, line)
    body: str
    body_line: int  # the file line where the body starts

    @property
    def markdown(self) -> bool:
        return any(n == "Content-Type" and v.strip() == "text/markdown" for n, v, _ in self.headers)


def parse_template(name: str, path: Path) -> Template:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TemplateProblem(path, None, "is not UTF-8 text") from None
    except OSError as exc:
        raise TemplateProblem(path, None, f"cannot be read: {exc.strerror}") from None
    lines = text.split("\n")
    headers: list[tuple[str, str, int]] = []
    index = 0
    for index, line in enumerate(lines):
        if not line.strip():
            break
        match = _HEADER_LINE.match(line.rstrip("\r"))
        if not match:
            raise TemplateProblem(
                path,
                index + 1,
                "expected a header line such as 'Subject: ...', then a blank line before the body",
            )
        header = next((h for h in HEADERS if h.lower() == match.group(1).lower()), None)
        if header is None:
            raise TemplateProblem(
                path, index + 1, f"unknown header {match.group(1)!r} (use {', '.join(HEADERS)})"
            )
        if any(h == header for h, _, _ in headers):
            raise TemplateProblem(path, index + 1, f"header {header} appears twice")
        if header == "Content-Type" and match.group(2).strip() not in _ALLOWED_TYPES:
            raise TemplateProblem(
                path, index + 1, "Content-Type must be text/plain or text/markdown"
            )
        headers.append((header, match.group(2), index + 1))
    else:
        index = len(lines)
    if not any(h == "Subject" for h, _, _ in headers):
        raise TemplateProblem(path, 1, "a template needs a 'Subject:' header line")
    body = "\n".join(lines[index + 1 :])
    return Template(name, path, tuple(headers), body, index + 2)


def find_template(templates_dir: Path, name: str, language: str | None) -> Template:
    """``name.<language>.txt`` where it exists (pt-br, then pt), else ``name.txt``."""
    candidates = []
    if language:
        lang = language.lower()
        candidates.append(f"{name}.{lang}.txt")
        if "-" in lang:
            candidates.append(f"{name}.{lang.split('-')[0]}.txt")
    candidates.append(f"{name}.txt")
    for candidate in candidates:
        path = templates_dir / candidate
        if path.is_file():
            return parse_template(name, path)
    if name == PARTNER_TEMPLATE:
        # funnelctl's own email, not a playbook's: a workspace made before it existed
        # (or that deleted it) still tells partners, in the shipped words
        from .workspace import shipped_dir

        return parse_template(name, shipped_dir("templates") / f"{name}.txt")
    raise NotFound(f"No email template {name!r} in {templates_dir} (expected {name}.txt).")


def _render(
    source: str,
    context: Mapping[str, Any],
    template: Template,
    first_line: int,
    compile: Any = compiled,
) -> str:
    try:
        return str(compile(source).render(**context))
    except UnsafeAddress as exc:
        raise HeaderProblem(str(exc)) from None
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        # a data value the template cannot work with (None * 12) is the template's problem
        line = getattr(exc, "lineno", None) or _template_line(exc)
        absolute = first_line + line - 1 if line else first_line
        message = getattr(exc, "message", None) or str(exc)
        raise TemplateProblem(template.path, absolute, message) from None


def _template_line(exc: BaseException) -> int | None:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == "<template>":
            return frame.lineno
    return None


@dataclass(frozen=True)
class Rendered:
    subject: str
    sender: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    reply_to: str | None
    text: str
    html: str | None
    # The envelope sender (SMTP MAIL FROM, sendmail -f) when it is not the From: the
    # workspace sender while a team member speaks, so that bounces come back to it.
    envelope: str | None = None
    # A Markdown body not yet converted to ``html`` (``render(..., convert=False)``)
    markdown: str | None = None

    @property
    def envelope_sender(self) -> str:
        return self.envelope or self.sender

    @cached_property
    def recipients(self) -> list[str]:
        """The envelope: every address the message goes to (Bcc included)."""
        written = [*self.to, *self.cc, *self.bcc]
        plain = [spec for address in written if (spec := _plain_addr_spec(address))]
        if len(plain) == len(written):  # nearly every email: no need of the library's parser
            return plain
        return [addr for _, addr in getaddresses(written) if addr]


class HeaderProblem(FunnelError):
    """A header value that came out of data and cannot be sent (CR/LF, no address)."""


@dataclass(frozen=True)
class Recipient:
    """Who an email goes to when its template has no To: line."""

    email: str | None
    name: str = ""

    @classmethod
    def of(cls, customer: Customer) -> Recipient:
        return cls(customer.email, customer.name or "")


def render(
    template: Template,
    context: Mapping[str, Any],
    settings: Settings,
    customer: Recipient,
    speaker: Member | None = None,
    *,
    convert: bool = True,
) -> Rendered:
    """Render a template for one customer; raise TemplateProblem or HeaderProblem.

    ``convert=False`` leaves a Markdown body unconverted (:func:`converted` does it): all
    that can fail is done, and ``send`` converts each body just before it goes, while
    the email before it is on the wire.

    ``speaker`` is the team member who speaks (the owner, when they have an email): the
    email is From and Reply-To them unless the template says From: itself; a template's
    Reply-To: always wins. Without one, the workspace sender speaks.
    """
    values: dict[str, str] = {}
    for header, raw, line in template.headers:
        compile = address_template if header in ADDRESS_HEADERS else compiled
        try:
            value = _render(raw, context, template, line, compile)
        except HeaderProblem as exc:
            raise HeaderProblem(f"the {header} header: {exc.message}") from None
        if "\r" in value or "\n" in value:
            raise HeaderProblem(
                f"the {header} header would contain a line break (from the customer's data)"
            )
        if _CONTROL.search(value):
            raise HeaderProblem(
                f"the {header} header would contain a control character (from the customer's data)"
            )
        values[header] = value.strip()
    text = _render(template.body, context, template, template.body_line)
    html = escaped = None
    if template.markdown:
        escaped = _render(template.body, context, template, template.body_line, markdown_template)
        html = to_html(escaped) if convert else None
    own = values.get("From")
    voice = speaker.address if speaker is not None and not own else None
    sender = own or voice or settings.sender
    if not sender or "@" not in addr_spec(sender):
        raise HeaderProblem(
            "no sender: set 'sender' in funnelctl.yaml or a From: line in the template"
        )
    # bounces of a member's email go where the workspace's would, when it has an address
    envelope = settings.sender if voice and "@" in addr_spec(settings.sender) else None
    for address in (sender, envelope or sender):
        if not addr_spec(address).isascii():
            raise HeaderProblem(
                f"the sender address {addr_spec(address)!r} has non-ASCII characters, which "
                "SMTP cannot carry without SMTPUTF8"
            )
    rendered = Rendered(
        subject=values["Subject"],
        sender=sender,
        # the customer's own address is one address, even when the name holds a comma
        to=_split(values["To"]) if values.get("To") else [_customer_address(customer)],
        cc=_split(values.get("Cc", "")),
        bcc=_split(values.get("Bcc", "")),
        reply_to=values.get("Reply-To") or voice,
        text=text,
        html=html,
        envelope=envelope,
        markdown=None if convert else escaped,
    )
    reply_to = [rendered.reply_to] if rendered.reply_to else []
    for address in [*rendered.to, *rendered.cc, *rendered.bcc, *reply_to]:
        addr = addr_spec(address)
        if "@" not in addr:
            raise HeaderProblem(f"{address!r} is not an email address")
        if not addr.isascii():
            raise HeaderProblem(
                f"{address!r} has non-ASCII characters in the address itself, which SMTP "
                "cannot carry without SMTPUTF8; use an ASCII address"
            )
    if not rendered.recipients:
        raise HeaderProblem("the email has no recipient")
    return rendered


def converted(rendered: Rendered, convert: Callable[[str], str] = to_html) -> Rendered:
    """``rendered`` with its Markdown body converted to HTML, if it had one waiting
    (by ``convert``: :func:`mdhtml.to_html`, or what converts it ahead)."""
    if rendered.markdown is None:
        return rendered
    return replace(rendered, html=convert(rendered.markdown), markdown=None)


@lru_cache(maxsize=1024)
def addr_spec(value: str) -> str:
    """The address in ``Name <address>`` (``parseaddr``, whose parser is slow, read once per
    distinct value: the same sender is checked several times in every email)."""
    return parseaddr(value)[1]


def _split(value: str) -> list[str]:
    """The addresses of a header line, as written between its commas."""
    return [a.strip() for a in value.split(",") if a.strip()]


def _customer_address(customer: Recipient) -> str:
    email, name = customer.email, customer.name
    if not email:
        raise HeaderProblem("the customer has no email address and the template has no To: line")
    if "\r" in name or "\n" in name:
        raise HeaderProblem("the customer's name contains a line break")
    if not name:
        return str(email)
    written = f"{name} <{email}>"  # what the email library writes for plain words
    if _PLAIN_ADDRESS.match(written):
        return written
    return str(Address(display_name=name, addr_spec=email))


def _plain_addr_spec(address: str) -> str | None:
    """The address in a plain ``Name <address>`` or ``address``; None for any other form."""
    if not _PLAIN_ADDRESS.match(address):
        return None
    return address[address.index("<") + 1 : -1] if address.endswith(">") else address


# Bodies in a 7-bit transfer encoding (quoted-printable where they are not ASCII), so
# that no server needs 8BITMIME; header values are checked once decoded.
_POLICY = email_policy.default.clone(cte_type="7bit")
# Any control character but the tab: a line break, or one a mail client shows oddly.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# What the email library may raise on values crafted to confuse it (a header it cannot
# parse, an unknown charset, an address it cannot fold): the email fails, the run goes on.
_LIBRARY_ERRORS = (
    ValueError,
    TypeError,
    IndexError,
    AttributeError,
    LookupError,
    UnicodeError,
    MessageError,
)


def build_message(rendered: Rendered, message_id: str, when: datetime) -> EmailMessage:
    """The message as it goes on the wire: modern policy, Date and Message-ID always set.

    Every header value is checked after the email library has decoded it: an RFC 2047
    encoded word in customer data (``=?utf-8?q?Acme=0D=0ABcc:...?=``) decodes to a line
    break, which some Python versions write out as a header line of its own
    (CVE-2024-6923), or to a comma and a second address. Each address header must hold
    exactly the addresses funnelctl wrote. :func:`wire_bytes` checks the written form.
    """
    message = _headers_message(rendered, message_id, when)
    try:
        message.set_content(rendered.text, cte=_body_encoding(rendered.text))
        if rendered.html is not None:
            message.add_alternative(
                rendered.html, subtype="html", cte=_body_encoding(rendered.html)
            )
    except _LIBRARY_ERRORS as exc:
        raise HeaderProblem(f"a header cannot be sent: {exc}") from None
    return message


def check_headers(rendered: Rendered, message_id: str) -> None:
    """Raise the HeaderProblem :func:`message_bytes` would, without building any body:
    what ``send`` checks of every email before the first one is claimed."""
    if _plain_headers(rendered, message_id, _EPOCH) is None:
        _headers_message(rendered, message_id, _EPOCH)


def message_bytes(
    rendered: Rendered,
    message_id: str,
    when: datetime,
    linesep: str,
    convert: Callable[[str], str] = to_html,
) -> bytes:
    """The message as bytes on the wire, built once.

    A message whose header values are plain (printable ASCII words and simple addresses
    that fit on one line: nearly every email) is written directly, byte for byte what
    :func:`build_message` and :func:`wire_bytes` make of it, at a tenth of their cost;
    tests/test_mail_bytes.py compares the two on random messages. Any other message goes
    through the email library and all of its checks. A Markdown body still waiting
    (``render(..., convert=False)``) is converted here, by ``convert``.
    """
    rendered = converted(rendered, convert)
    data = _plain_message(rendered, message_id, when, linesep)
    if data is not None:
        return data
    return wire_bytes(build_message(rendered, message_id, when), linesep=linesep)


def _headers_message(rendered: Rendered, message_id: str, when: datetime) -> EmailMessage:
    """The message's header lines (no body yet), each checked as decoded."""
    message = EmailMessage(policy=_POLICY)
    addresses = {
        "From": [rendered.sender],
        "To": rendered.to,
        "Cc": rendered.cc,
        "Reply-To": [rendered.reply_to] if rendered.reply_to else [],
    }
    for name, values in {"Subject": [rendered.subject], **addresses}.items():
        if any(_CONTROL.search(value) for value in values):
            raise HeaderProblem(
                f"the {name} header would contain a line break or control character "
                "(from the customer's data)"
            )
    try:
        message["Subject"] = rendered.subject
        for name, values in addresses.items():
            if values:
                message[name] = ", ".join(values)
        message["Date"] = format_datetime(when)
        message["Message-ID"] = message_id
        # a customer may answer "unsubscribe": the inbox reads it (RFC 2369)
        message["List-Unsubscribe"] = unsubscribe_link(rendered.envelope_sender)
        for name, value in message.items():
            if _CONTROL.search(str(value)):
                raise HeaderProblem(
                    f"the {name} header would contain a line break or control character once "
                    "its encoded words (=?...?=) are decoded (from the customer's data)"
                )
        for name, values in addresses.items():
            if values and _addr_specs(message, name) != [parseaddr(v)[1] for v in values]:
                raise HeaderProblem(
                    f"the {name} header would not go to exactly the addresses written (an "
                    "encoded word =?...?= in the customer's data)"
                )
    except HeaderProblem:
        raise
    except _LIBRARY_ERRORS as exc:  # the email library refuses CR/LF and malformed values
        raise HeaderProblem(f"a header cannot be sent: {exc}") from None
    return message


def unsubscribe_link(sender: str) -> str:
    """``<mailto:ADDRESS?subject=unsubscribe>``: the address bounces come back to (the
    workspace's sender, the mailbox ``funnelctl inbox`` reads)."""
    return f"<mailto:{addr_spec(sender)}?subject=unsubscribe>"


# -- the direct writer: plain messages without the email library's header objects ---------

_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
# Printable ASCII words with single spaces between them, no encoded word: a value the
# modern policy writes out exactly as given when its line fits in 78 characters.
_PLAIN_TEXT = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*\Z")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDR_SPEC = r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
# ``ana@example.com`` or ``Ana Lima <ana@example.com>`` with a name of plain words.
_PLAIN_ADDRESS = re.compile(rf"(?:{_ATEXT}(?: {_ATEXT})* <{_ADDR_SPEC}>|{_ADDR_SPEC})\Z")
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_PLAIN_MESSAGE_ID = re.compile(rf"<{_DOT_ATOM}@{_DOT_ATOM}>\Z")  # what make_msgid makes
_MAX_LINE = _POLICY.max_line_length or 78
# How ``set_content`` encodes a text part (a private function of the email package, the
# same from Python 3.6 to 3.13): called, not copied, so that the payload is the library's
# own. Should a Python drop it, every message takes the email library's path.
_encode_text: Callable[[str, str, str | None, Any], tuple[str, str]] | None = getattr(
    contentmanager, "_encode_text", None
)


def _plain_headers(rendered: Rendered, message_id: str, when: datetime) -> list[str] | None:
    """The header lines as the modern policy writes them, or None when a value is not
    plain enough to be sure of that (then the email library builds the message)."""
    lines = []
    values = [
        ("Subject", [rendered.subject]),
        ("From", [rendered.sender]),
        ("To", rendered.to),
        ("Cc", rendered.cc),
        ("Reply-To", [rendered.reply_to] if rendered.reply_to else []),
    ]
    for name, items in values:
        if not items:
            continue
        if name != "Subject" and not all(_PLAIN_ADDRESS.match(item) for item in items):
            return None
        line = f"{name}: {', '.join(items)}"
        if "=?" in line or not _PLAIN_TEXT.match(line) or len(line) > _MAX_LINE:
            return None
        lines.append(line)
    if when.tzinfo is None or "=?" in message_id or not _PLAIN_MESSAGE_ID.match(message_id):
        return None
    unsubscribe = f"List-Unsubscribe: {unsubscribe_link(rendered.envelope_sender)}"
    if not _PLAIN_TEXT.match(unsubscribe) or len(unsubscribe) > _MAX_LINE:
        return None
    return [
        *lines,
        f"Date: {format_datetime(when)}",
        f"Message-ID: {message_id}",
        unsubscribe,
    ]


def _plain_message(
    rendered: Rendered, message_id: str, when: datetime, linesep: str
) -> bytes | None:
    if _encode_text is None:
        return None
    headers = _plain_headers(rendered, message_id, when)
    if headers is None:
        return None
    text = _plain_part(rendered.text, "plain")
    if rendered.html is None:
        head, body = text
        lines = [*headers, *head, "MIME-Version: 1.0", "", body]
    else:
        html = _plain_part(rendered.html, "html")
        boundary = _boundary(text[1] + html[1])
        lines = [
            *headers,
            "MIME-Version: 1.0",
            "Content-Type: multipart/alternative;",
            f' boundary="{boundary}"',
            "",
            f"--{boundary}",
            *text[0],
            "",
            text[1],
            f"--{boundary}",
            *html[0],
            "MIME-Version: 1.0",  # the email library writes it into the added part too
            "",
            html[1],
            f"--{boundary}--",
            "",
        ]
    out = "\n".join(lines)  # payloads come with \n line ends, like the generator's input
    return (out if linesep == "\n" else out.replace("\n", linesep)).encode("ascii")


def _plain_part(content: str, subtype: str) -> tuple[list[str], str]:
    """A text part's header lines and payload, as ``set_content`` makes them."""
    assert _encode_text is not None
    cte, payload = _encode_text(content, "utf-8", _body_encoding(content), _POLICY)
    header = [f'Content-Type: text/{subtype}; charset="utf-8"', f"Content-Transfer-Encoding: {cte}"]
    return header, payload


def _boundary(text: str) -> str:
    """A multipart boundary in the email library's own form, found in no part."""
    while True:
        boundary = "=" * 15 + f"{secrets.randbelow(sys.maxsize):019d}" + "=="
        if boundary not in text:
            return boundary


def _addr_specs(message: EmailMessage, name: str) -> list[str]:
    header = message[name]
    return [address.addr_spec for address in getattr(header, "addresses", ())]


def _body_encoding(text: str) -> str | None:
    return None if text.isascii() else "quoted-printable"


def wire_bytes(message: EmailMessage, *, linesep: str = "\r\n") -> bytes:
    """The message as bytes, refusing any output that, read back, does not carry exactly
    the header lines and addresses funnelctl set: whatever the email library does with a
    value, data never adds a header (a Bcc, a second To) or an address on the way out."""
    try:
        data = message.as_bytes(policy=_POLICY.clone(linesep=linesep))
        written = BytesParser(policy=email_policy.default).parsebytes(data, headersonly=True)
        names = sorted(name.lower() for name in written)
        expected = sorted(name.lower() for name in message)
        if names != expected:
            extra = sorted(set(names) - set(expected))
            raise HeaderProblem(
                "a header value from the customer's data would add header lines "
                f"({', '.join(extra) or 'a repeated header'}); the email was not sent"
            )
        for name in ("From", "To", "Cc", "Reply-To"):
            if message[name] is not None and _addr_specs(written, name) != _addr_specs(
                message, name
            ):
                raise HeaderProblem(
                    f"the {name} header, as written, would go to other addresses than "
                    "funnelctl set; the email was not sent"
                )
    except HeaderProblem:
        raise
    except _LIBRARY_ERRORS as exc:
        raise HeaderProblem(f"the message cannot be written out: {exc}") from None
    return data


# -- the outbox ---------------------------------------------------------------------------------


def message_id(settings: Settings) -> str:
    """A Message-ID fixed when the email is queued, so a resend can reuse it."""
    domain = addr_spec(settings.sender).rpartition("@")[2] or "funnelctl.invalid"
    return make_msgid(domain=domain)


def queue_email(
    store: Store,
    settings: Settings,
    *,
    customer_id: int,
    enrollment_id: int | None,
    visit_id: int | None,
    template: str,
    scheduled_on: str,
    stop_on_reply: bool,
    action_key: str,
    today: str,
    partner: str | None = None,
    task_id: int | None = None,
) -> tuple[int, str, str | None]:
    """Queue one email for one scheduled action. Returns (id, status, reason).

    An email whose date is already more than ``max_late_days`` behind today (a
    historical import) is recorded as skipped, never sent late; the daily tick catching
    up schedules the emails of the stage a customer is in now for today instead.
    """
    status, reason = "queued", None
    late = days_between(scheduled_on, today)
    if late > settings.send.max_late_days:
        status, reason = "skipped", stale_reason(scheduled_on, late, settings.send.max_late_days)
    outbox_id = outbox.queue(
        store,
        customer_id=customer_id,
        enrollment_id=enrollment_id,
        visit_id=visit_id,
        template=template,
        action_key=action_key,
        message_id=message_id(settings),
        scheduled_on=scheduled_on,
        stop_on_reply=stop_on_reply,
        today=today,
        stale_reason=reason,
        partner=partner,
        task_id=task_id,
    )
    return outbox_id, status, reason


def stale_reason(scheduled_on: str, late: int, limit: int) -> str:
    return f"stale: due {scheduled_on}, {late} days ago (more than max_late_days {limit})"


def bounced_refs(store: Store, customer_id: int) -> list[str]:
    """The refs of the customer's emails that bounced (to an address they had then)."""
    return [f"e{e.id}" for e in outbox.of_customer(store, customer_id) if e.status == "bounced"]


def preview(
    store: Store,
    library: Any,
    settings: Settings,
    templates_dir: Path,
    name: str,
    ref: str,
    today: str,
    now: datetime,
) -> str:
    """The exact message ``name`` makes for a customer, as text (nothing is queued)."""
    from .context import message_context

    customer = customers.find(store, ref)
    enrollment = enrollments.current(store, customer.id)
    context, speaker = message_context(
        store,
        library,
        settings,
        customer,
        today,
        enrollment_id=enrollment.id if enrollment else None,
    )
    handoff = _preview_handoff(store, library, customer.id)
    context |= handoff
    recipient = Recipient.of(customer)
    if name == PARTNER_TEMPLATE:
        recipient = Recipient(handoff["partner"]["email"], handoff["partner"]["name"])
    template = find_template(
        templates_dir, name, None if name == PARTNER_TEMPLATE else customer.language
    )
    rendered = render(template, context, settings, recipient, speaker)
    message = build_message(rendered, "<preview@funnelctl.invalid>", now)
    lines = [f"Template: {template.path}", f"Envelope-To: {', '.join(rendered.recipients)}"]
    lines += [
        f"{key}: {value}"
        for key, value in message.items()
        if key not in ("MIME-Version", "Content-Type")
    ]
    lines += ["", rendered.text.rstrip("\n")]
    if rendered.html is not None:
        lines += ["", "--- HTML part ---", rendered.html.rstrip("\n")]
    return "\n".join(lines) + "\n"


def _preview_handoff(store: Store, library: Any, customer_id: int) -> dict[str, Any]:
    """The partner and task a preview shows: the customer's open partner task if there
    is one, else a sample."""
    from .store import activities as tasks

    for task in tasks.of_customer(store, customer_id):
        owner = task.owner or ""
        partner = library.partners.get(owner.removeprefix("partner:"))
        if task.status == "open" and owner.startswith("partner:") and partner is not None:
            return handoff_context(partner, task)
    return SAMPLE_HANDOFF


BARE_EMAIL = "bare.customer@example.com"
SAMPLE_CUSTOMER: dict[str, Any] = {
    "id": 0,
    "email": "sample.customer@example.com",
    "external_id": "SAMPLE-1",
    "name": "Sample Customer",
    "first_name": "Sample",
    "company": "Sample Company",
    "phone": "+1 555 0100",
    "owner": "owner",
    "plan": "growth",
    "mrr": 500.0,
    "seats": 10,
    "signed_on": "2026-01-05",
    "language": "en",
    "tags": ["sample"],
    "fields": {},
    "replied": False,
    "last_touch_on": "2026-01-20",
    "last_reply_on": "2026-01-18",
}


# The email that hands a task to a partner (templates/partner-task.txt).
PARTNER_TEMPLATE = "partner-task"

SAMPLE_HANDOFF: dict[str, Any] = {
    "partner": {"id": "desk", "name": "Help Desk", "email": "desk@example.com", "role": None},
    "task": {
        "id": 1,
        "title": "Answer the support request",
        "description": None,
        "due_on": "2026-02-05",
        "channel": "chat",
    },
}


def handoff_context(partner: Any, task: Any) -> dict[str, Any]:
    """What a partner's email reads besides the customer: the partner and the task."""
    return {
        "partner": {
            "id": partner.id,
            "name": partner.name,
            "email": partner.email,
            "role": partner.role,
        },
        "task": {
            "id": task.id,
            "title": task.title,
            "description": task.description,
            "due_on": task.due_on,
            "channel": task.channel,
        },
    }


def check_templates(templates_dir: Path, settings: Settings) -> list[str]:
    """Render every template against a sample customer: ``file:line: problem`` for each failure.

    Custom fields are empty in the sample, so a template that needs one without a
    ``default`` is reported: some real customer will not have it.
    """
    context: dict[str, Any] = {
        "customer": SAMPLE_CUSTOMER,
        "owner": "owner",
        "sender": {
            "name": "Sender",
            "email": "sender@example.com",
            "signature": "Sender\nCustomer success",
        },
        "funnel": {"id": "sample", "title": "Sample funnel"},
        "stage": {"id": "sample", "title": "Sample stage"},
        "days_in_stage": 3,
        "days_since_signed": 30,
        "signals": {},
        "today": "2026-02-04",
    }
    context |= SAMPLE_HANDOFF  # what a partner's email (a task handed over) reads
    if not settings.sender:  # a missing sender is a settings matter, not the template's
        settings = Settings(sender="Sender <sender@example.com>")
    # A customer with every field, and one with nothing but an email: a template must
    # work for both (a blank or "None" where a name should be is never sent).
    bare = {key: None for key in SAMPLE_CUSTOMER} | {
        "id": 0,
        "email": BARE_EMAIL,
        "name": "",
        "tags": [],
        "fields": {},
        "replied": False,
    }
    bare_context = {
        **context,
        "customer": bare,
        "owner": None,
        "sender": {"name": "Sender", "email": "sender@example.com", "signature": None},
        "funnel": None,
        "stage": None,
        "days_in_stage": None,
        "days_since_signed": None,
    }
    problems: list[str] = []
    for path in sorted(templates_dir.glob("*.txt")):
        for who, ctx, recipient in (
            ("", context, Recipient(SAMPLE_CUSTOMER["email"], SAMPLE_CUSTOMER["name"])),
            (" (for a customer with only an email)", bare_context, Recipient(BARE_EMAIL)),
        ):
            try:
                template = parse_template(path.name.split(".")[0], path)
                render(template, ctx, settings, recipient)
            except TemplateProblem as exc:
                problems.append(exc.message + who)
                break
            except HeaderProblem as exc:
                problems.append(f"{path}: {exc.message}{who}")
                break
    return problems


RESOLUTIONS = {
    # --action: (the statuses it applies to, what the timeline says)
    "sent": (("uncertain",), "marked sent by hand (the message did arrive)"),
    "resend": (("uncertain", "failed"), "queued again by hand (same Message-ID)"),
    "skip": (("uncertain", "failed", "queued"), "skipped by hand"),
}


def resolve(store: Store, outbox_id: int, action: str, today: str, now: str) -> dict[str, Any]:
    """Settle an email by hand: one whose fate is unknown or that failed."""
    allowed, what = RESOLUTIONS[action]
    with store.write():
        email = outbox.get(store, outbox_id)
        if email is None:
            raise NotFound(f"No email e{outbox_id} in the outbox (see 'funnelctl outbox list').")
        if email.status not in allowed:
            raise FunnelError(
                f"Email e{outbox_id} is {email.status}; --{action} applies to "
                f"{' or '.join(allowed)} emails."
            )
        if action == "sent":
            outbox.mark_sent(store, outbox_id, sent_at=now, reason=what)
        elif action == "resend":
            outbox.resend(store, outbox_id, what)
        else:
            outbox.skip(store, outbox_id, what)
        events.add(store, email.customer_id, today, "email", f"Email {email.template!r} {what}")
        updated = outbox.get(store, outbox_id)
    assert updated is not None
    return updated.as_dict()


def requeue(store: Store, outbox_id: int, today: str) -> dict[str, Any]:
    """A skipped, superseded or bounced email queued again by hand, due today (a bounced
    one goes to the customer's address now: fixed, or held again); or a queued one that
    is late (the agenda's advice for an email the next send would skip as stale) moved
    to today."""
    with store.write():
        email = outbox.get(store, outbox_id)
        if email is None:
            raise NotFound(f"No email e{outbox_id} in the outbox (see 'funnelctl outbox list').")
        if email.status == "queued" and email.scheduled_on >= today:
            raise FunnelError(
                f"Email e{outbox_id} is queued for {email.scheduled_on} already; requeue "
                "moves a late one to today."
            )
        if email.status not in ("skipped", "superseded", "queued", "bounced"):
            raise FunnelError(
                f"Email e{outbox_id} is {email.status}; requeue applies to skipped, "
                "superseded, bounced or late emails (an uncertain or failed one: "
                "'funnelctl outbox resolve')."
            )
        if email.status == "queued":
            what = f"due today by hand (it was due {email.scheduled_on})"
        else:
            what = f"queued again by hand (it was {email.status}: {email.reason})"
        outbox.requeue(store, outbox_id, what, today)
        events.add(store, email.customer_id, today, "email", f"Email {email.template!r} {what}")
        updated = outbox.get(store, outbox_id)
    assert updated is not None
    return updated.as_dict()

"""What a message in the consultant's mailbox is: a reply, an automatic answer, a
delivery status notification (a bounce) or a request to stop; and what it says, in a
line, once the quoted history is cut off.

Only the message's bytes are read here (the standard library's email parser); which
customer it belongs to is the inbox's business (inbox.py).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import message_from_bytes
from email import policy as email_policy
from email.errors import MessageError
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Any, Protocol

REPLY, AUTO_REPLY, BOUNCE, UNSUBSCRIBE = "reply", "auto-reply", "bounce", "unsubscribe"
SUMMARY_CHARS = 200  # what a touchpoint keeps of a message: its subject and first words
FIRST_LINES = 3

# Subjects of out-of-office and other automatic answers, in the languages customers
# write in most (a message without the RFC 3834 headers still says so in its subject):
# only the prefix a mail system puts before the subject it answers, followed by a colon
# (or alone), never a word that a person's own subject may start with ("Férias: quando
# voltam?", "Absence of invoice for March").
_AUTO_SUBJECTS = re.compile(
    r"^\s*(auto(matic|matische)?[ -]?(reply|response|antwort)|autoreply|autoresponse|"
    r"out of (the )?office( (auto)?reply| autoreply)?|vacation reply|"
    r"resposta autom[aá]tica|fora do escrit[oó]rio|"
    r"respuesta autom[aá]tica|fuera de (la )?oficina|ausente|"
    r"r[eé]ponse automatique|risposta automatica|abwesenheitsnotiz|abwesend)\s*(:|$)",
    re.IGNORECASE,
)
# What a customer writes to be left alone, alone on the subject or the first line.
_STOP_WORDS = {
    # en
    "unsubscribe",
    "unsubscribe me",
    "stop",
    "please unsubscribe",
    "please unsubscribe me",
    "remove me",
    "please remove me",
    "opt out",
    "opt-out",
    # pt
    "descadastrar",
    "descadastre",
    "descadastre-me",
    "cancelar inscrição",
    "cancelar subscrição",
    "cancelar assinatura",
    "remover",
    "remova-me",
    "parar",
    "pare",
    "sair",
    # es
    "darse de baja",
    "dar de baja",
    "darme de baja",
    "baja",
    "cancelar suscripción",
    "desuscribir",
    "desuscribirme",
    "eliminarme",
    "no más correos",
}
_REPLY_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|sv|res|enc|rv|tr)\s*(\[\d+\])?\s*:\s*)+", re.I)
# Where the quoted history of a reply begins.
_ATTRIBUTION = re.compile(r"^\s*(on|em|el|le|am|op)\b.*", re.IGNORECASE)
_WROTE = re.compile(r"(wrote|escreveu|escribió|a écrit|schrieb|schreef)\s*:\s*$", re.IGNORECASE)
_ORIGINAL = re.compile(
    r"^\s*(-{2,}\s*(original message|mensagem original|mensaje original|message d'origine|"
    r"ursprüngliche nachricht|forwarded message|mensagem encaminhada|mensaje reenviado)"
    r"\s*-{2,}|_{10,})\s*$",
    re.IGNORECASE,
)
_OUTLOOK_FROM = re.compile(r"^\s*\**(from|de|von)\s*:\**\s", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(r"^\s*\**(sent|date|enviado|enviada|fecha|data|gesendet)\s*:", re.I)
_SIGNATURE = re.compile(r"^--\s*$")
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


# What the email package may raise on a message crafted or broken enough: such a
# message is counted as no one's, and the reading goes on (never stuck on it).
MALFORMED = (
    ValueError,
    TypeError,
    LookupError,
    UnicodeError,
    AttributeError,
    IndexError,
    OverflowError,
    RecursionError,
    MessageError,
)


@dataclass(frozen=True)
class Bounce:
    """What a delivery status notification (RFC 3464) says about one recipient."""

    recipient: str | None  # Final-Recipient (or Original-Recipient), lowercased
    status: str  # 5.1.1, 4.4.1; "" when the report gives none
    permanent: bool
    diagnostic: str
    returned_ids: tuple[str, ...]  # the Message-ID of the returned message, if any

    @property
    def reason(self) -> str:
        what = self.status or ("failed" if self.permanent else "delayed")
        return f"{what} {self.diagnostic}".strip()[:SUMMARY_CHARS]


@dataclass(frozen=True)
class Mail:
    key: str  # the Message-ID, or a digest of the headers when it has none
    message_id: str | None
    kind: str  # REPLY, AUTO_REPLY, BOUNCE, UNSUBSCRIBE
    sender: str  # the From: address, lowercased
    recipients: tuple[str, ...]  # To: and Cc:, lowercased
    subject: str
    date: datetime | None
    references: tuple[str, ...]  # In-Reply-To and References, the nearest last
    text: str  # the first lines of the new text
    bounce: Bounce | None = None
    problems: tuple[str, ...] = field(default=())

    @property
    def summary(self) -> str:
        """The subject and the first words: all a touchpoint keeps of the message."""
        parts = [p for p in (self.subject, self.text) if p]
        text = ": ".join(parts) or "(no subject)"
        return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


@dataclass(frozen=True)
class Head:
    """What the header lines alone say: enough to tell whether a message may concern a
    customer before its body is read (most mail in an inbox does not)."""

    key: str  # the Message-ID, or a digest of the headers when it has none
    message_id: str | None
    sender: str  # the From: address, lowercased
    recipients: tuple[str, ...]  # To: and Cc:, lowercased
    references: tuple[str, ...]  # In-Reply-To and References
    report: bool  # a multipart/report: perhaps a delivery status notification


def head(data: bytes, *, recipients: bool = True) -> Head:
    """The header lines of ``data`` read, its body left alone; without ``recipients``,
    To: and Cc: are not read (a reply is known by its sender)."""
    return _head_of(_Fields(data), recipients=recipients)


class _Headers(Protocol):
    def get(self, name: str) -> Any: ...

    def get_content_type(self) -> str: ...


_HEAD_END = re.compile(rb"\r?\n\r?\n")
_FOLD = re.compile(rb"\r?\n[ \t]+")
_WANTED = {
    "message-id",
    "references",
    "in-reply-to",
    "from",
    "to",
    "cc",
    "date",
    "subject",
    "content-type",
}


class _Fields:
    """The few header lines a Head needs, read straight from the bytes: the email
    parser makes an object of every line and part, which most mail (not a customer's)
    never needs. Raw 8-bit bytes are read as UTF-8, as :func:`_header` reads them."""

    def __init__(self, data: bytes) -> None:
        end = _HEAD_END.search(data)
        block = _FOLD.sub(b" ", data[: end.start()] if end else data)
        self.fields: dict[str, str] = {}
        for line in block.split(b"\n"):
            name, colon, value = line.partition(b":")
            key = name.strip().decode("ascii", "replace").lower()
            if colon and key in _WANTED and key not in self.fields:
                self.fields[key] = value.strip().decode("utf-8", "replace")

    def get(self, name: str) -> str | None:
        return self.fields.get(name.lower())

    def get_content_type(self) -> str:
        return (self.fields.get("content-type") or "text/plain").split(";")[0].strip().lower()


def _head_of(message: Message | _Headers, *, recipients: bool = True) -> Head:
    message_id = _ids(_header(message, "Message-ID"))
    references = tuple(
        dict.fromkeys(
            [*_ids_all(_header(message, "References")), *_ids_all(_header(message, "In-Reply-To"))]
        )
    )
    sender = parseaddr(_header(message, "From"))[1].strip().lower()
    addresses = getaddresses([_header(message, "To"), _header(message, "Cc")]) if recipients else []
    return Head(
        key=message_id or _digest(message),
        message_id=message_id,
        sender=sender,
        recipients=tuple(addr.strip().lower() for _, addr in addresses if "@" in addr),
        references=references,
        report=message.get_content_type() == "multipart/report",
    )


def _digest(message: Message | _Headers) -> str:
    """The key of a message without a Message-ID: its date, sender, recipients, subject."""
    lines = "\n".join(_header(message, name) for name in ("Date", "From", "To", "Subject"))
    return "sha1:" + hashlib.sha1(lines.encode("utf-8", "replace")).hexdigest()


def parse(data: bytes) -> Mail:
    """The message ``data`` (the whole of it, or its first bytes) read and classified."""
    message = message_from_bytes(data, policy=email_policy.compat32)
    found = _head_of(message)
    subject = _header(message, "Subject")
    bounce = _delivery_status(message) if found.report else None
    text = "" if bounce else first_lines(_plain_text(message))
    if bounce is not None:
        kind = BOUNCE
    elif _automatic(message, subject):
        kind = AUTO_REPLY
    elif _asks_to_stop(subject, text):
        kind = UNSUBSCRIBE
    else:
        kind = REPLY
    return Mail(
        key=found.key,
        message_id=found.message_id,
        kind=kind,
        sender=found.sender,
        recipients=found.recipients,
        subject=_one_line(_REPLY_PREFIX.sub("", subject)) if kind != BOUNCE else _one_line(subject),
        date=_date(_header(message, "Date")),
        references=found.references,
        text=text,
        bounce=bounce,
    )


# -- headers -------------------------------------------------------------------------------------


def _header(message: Message | _Headers, name: str) -> str:
    """A header's value, its encoded words decoded (raw 8-bit bytes read as UTF-8, the
    rule in practice); "" when it is absent."""
    value = message.get(name)
    if value is None:
        return ""
    if isinstance(value, str) and value.isascii() and "=?" not in value:
        return value  # nothing to decode: most header lines
    from email.header import decode_header

    try:
        chunks = decode_header(value)
    except (ValueError, LookupError, UnicodeError, TypeError, AttributeError):
        return str(value)
    parts: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            parts.append(chunk)
            continue
        try:
            parts.append(chunk.decode(charset or "ascii"))
        except (LookupError, UnicodeError):
            parts.append(chunk.decode("utf-8", "replace"))
    # decode_header drops the spaces between an encoded word and plain text: put back one
    return "".join(parts) if len(parts) == 1 else _join(parts)


def _join(parts: list[str]) -> str:
    out = parts[0]
    for part in parts[1:]:
        out += part if out.endswith(" ") or part.startswith(" ") else " " + part
    return out


_ID = re.compile(r"<([^<>\s]+)>")


def _ids_all(value: str) -> list[str]:
    return [f"<{m}>" for m in _ID.findall(value)]


def _ids(value: str) -> str | None:
    found = _ids_all(value)
    return found[0] if found else None


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
        # in UTC here, where a date at the calendar's edge fails (31 Dec 9999 -0100)
        return moment.astimezone(timezone.utc) if moment.tzinfo is not None else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _one_line(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _automatic(message: Message, subject: str) -> bool:
    """An answer no person wrote (RFC 3834 and the headers mail systems use instead):
    an out-of-office, a vacation notice, a mailing list's robot."""
    auto = _header(message, "Auto-Submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return True
    if message.get_content_type() == "multipart/report":
        return True  # a read receipt, a report of success: a machine's, never a reply
    if _header(message, "Return-Path").strip() == "<>":
        return True  # the null sender of bounces and notifications (RFC 5321 4.5.5)
    local = parseaddr(_header(message, "From"))[1].split("@", 1)[0].lower()
    if local in ("mailer-daemon", "postmaster"):
        return True
    if any(message.get(name) is not None for name in ("X-Autoreply", "X-Autorespond")):
        return True
    precedence = _header(message, "Precedence").strip().lower()
    if precedence in ("auto_reply", "bulk", "junk"):
        return True
    return bool(_AUTO_SUBJECTS.match(_REPLY_PREFIX.sub("", subject)))


def _normal(text: str) -> str:
    text = unicodedata.normalize("NFC", text).lower()
    return _one_line(text.strip(" \t.!¡?¿,;:'\"*-_()[]"))


def _asks_to_stop(subject: str, text: str) -> bool:
    """The subject, or the first line of the new text, is only a request to stop."""
    first = text.split("\n", 1)[0] if text else ""
    return any(_normal(s) in _STOP_WORDS for s in (_REPLY_PREFIX.sub("", subject), first))


# -- the text ------------------------------------------------------------------------------------


def _plain_text(message: Message) -> str:
    """The message's text: its first text/plain part, else its first HTML part as text."""
    html: str | None = None
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html") or part.get_filename():
            continue  # a container, an attachment, a returned message
        text = _decoded(part)
        if ctype == "text/plain":
            return text
        if html is None:
            html = text
    if html is None:
        return ""
    html = re.sub(r"(?is)<(style|script)\b.*?</\1>", " ", html)
    html = re.sub(r"(?i)<(br|/p|/div|/li|/tr|/h\d)\b[^>]*>", "\n", html)
    html = re.sub(r"(?is)<blockquote\b.*", "", html)  # what is quoted comes after the reply
    import html as html_module

    return html_module.unescape(_TAG.sub("", html))


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


def new_text(text: str) -> list[str]:
    """The lines the sender wrote now: what comes before the quoted history (``>``
    lines, an "On ... wrote:" line in the common clients' languages, an Outlook header
    block, an "Original Message" rule) and before the signature."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if line.lstrip().startswith(">") or _ORIGINAL.match(line) or _SIGNATURE.match(line):
            break
        if _ATTRIBUTION.match(line) and (_WROTE.search(line) or _WROTE.search(following)):
            break
        if _OUTLOOK_FROM.match(line) and _OUTLOOK_NEXT.match(following):
            break
        kept.append(line)
    return kept


def first_lines(text: str, count: int = FIRST_LINES) -> str:
    """The first ``count`` non-empty lines of the new text, on one line each."""
    lines = [_one_line(line) for line in new_text(text)]
    return "\n".join([line for line in lines if line][:count])


# -- delivery status notifications ---------------------------------------------------------------


def _delivery_status(message: Message) -> Bounce | None:
    """What a delivery status notification (multipart/report; report-type=delivery-status,
    RFC 3464) says of the first recipient it reports on; None for any other message."""
    if message.get_content_type() != "multipart/report":
        return None
    if str(message.get_param("report-type") or "").lower() != "delivery-status":
        return None
    recipient_fields: Message | None = None
    returned: tuple[str, ...] = ()
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status" and recipient_fields is None:
            recipient_fields = _per_recipient(part)
        elif ctype in ("message/rfc822", "message/global") and not returned:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                returned = tuple(_ids_all(_header(inner[0], "Message-ID")))
        elif ctype in ("text/rfc822-headers", "message/global-headers") and not returned:
            headers = HeaderParser().parsestr(_decoded(part) or str(part.get_payload()))
            returned = tuple(_ids_all(_header(headers, "Message-ID")))
    if recipient_fields is None:
        return None
    status = _header(recipient_fields, "Status").strip().split(" ")[0]
    action = _header(recipient_fields, "Action").strip().lower()
    recipient = _typed_address(
        _header(recipient_fields, "Final-Recipient")
        or _header(recipient_fields, "Original-Recipient")
    )
    permanent = status.startswith("5") or (not status and action == "failed")
    transient = status.startswith("4") or action == "delayed"
    if not permanent and not transient:
        return None  # a report of success (delivered, relayed): nothing to record
    diagnostic = _one_line(_header(recipient_fields, "Diagnostic-Code"))
    diagnostic = diagnostic.split(";", 1)[1].strip() if ";" in diagnostic else diagnostic
    return Bounce(recipient, status, permanent, diagnostic, returned)


def _per_recipient(part: Message) -> Message | None:
    """The first per-recipient block of a message/delivery-status part (the parser gives
    the blocks as messages of header fields: per-message first)."""
    payload = part.get_payload()
    blocks: list[Message] = []
    if isinstance(payload, list):
        blocks = [b for b in payload if isinstance(b, Message)]
    elif isinstance(payload, str):
        blocks = [HeaderParser().parsestr(b.strip() + "\n") for b in re.split(r"\n\s*\n", payload)]
    for block in blocks:
        if block.get("Final-Recipient") or block.get("Original-Recipient") or block.get("Status"):
            return block
    return None


def _typed_address(value: str) -> str | None:
    """``rfc822; bob@example.com`` -> bob@example.com."""
    address = value.split(";", 1)[1] if ";" in value else value
    address = address.strip().strip("<>").strip().lower()
    return address if "@" in address else None

"""Messages as they arrive in a consultant's mailbox, shaped after what real clients and
servers write: replies from Gmail, Outlook and Apple Mail (their threading headers and
the way each quotes), an out-of-office answer, delivery status notifications from
Postfix and Exchange (RFC 3464), an unsubscribe. Each is built here, as bytes with
CRLF line ends, for tests and benchmarks to put in a Maildir or APPEND over IMAP.
"""

from __future__ import annotations

import itertools

_counter = itertools.count(1)
DATE = "Mon, 02 Mar 2026 10:15:00 +0000"


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def _threading(in_reply_to: str | None) -> str:
    if not in_reply_to:
        return ""
    return f"In-Reply-To: {in_reply_to}\nReferences: {in_reply_to}\n"


def gmail_reply(
    sender: str,
    to: str,
    in_reply_to: str | None,
    text: str,
    *,
    subject: str = "Re: Welcome aboard",
    date: str = DATE,
) -> bytes:
    """Gmail: multipart/alternative, the attribution line wrapped before "wrote:"."""
    n = next(_counter)
    return _crlf(
        f"""MIME-Version: 1.0
Date: {date}
References: {in_reply_to or ""}
In-Reply-To: {in_reply_to or ""}
Message-ID: <CAF{n}x9Lw+reply@mail.gmail.com>
Subject: {subject}
From: Customer <{sender}>
To: {to}
Content-Type: multipart/alternative; boundary="000000000000a1b2c3{n}"

--000000000000a1b2c3{n}
Content-Type: text/plain; charset="UTF-8"

{text}

On Mon, Mar 2, 2026 at 9:00 AM Ana Lima <{to}>
wrote:

> Hi, welcome aboard!
> Ana
>

--000000000000a1b2c3{n}
Content-Type: text/html; charset="UTF-8"

<div dir="ltr">{text}</div><br><div class="gmail_quote"><div dir="ltr"
class="gmail_attr">On Mon, Mar 2, 2026 at 9:00 AM Ana Lima &lt;{to}&gt; wrote:<br></div>
<blockquote class="gmail_quote">Hi, welcome aboard!<br>Ana</blockquote></div>

--000000000000a1b2c3{n}--
"""
    )


def outlook_reply(
    sender: str, to: str, in_reply_to: str | None, text: str, *, date: str = DATE
) -> bytes:
    """Outlook: Thread-Index, quoted-printable, the original under a rule and a From:/Sent:
    block."""
    n = next(_counter)
    return _crlf(
        f"""From: Customer Name <{sender}>
To: Ana Lima <{to}>
Subject: RE: Welcome aboard
Thread-Topic: Welcome aboard
Thread-Index: AQHaZ2x1dGVzdHRocmVhZA{n}==
Date: {date}
Message-ID: <DB9PR0{n}MB1234ABCD@DB9PR0{n}MB1234.eurprd01.prod.outlook.com>
{_threading(in_reply_to)}Accept-Language: en-US
Content-Language: en-US
X-MS-Has-Attach:
X-MS-TNEF-Correlator:
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable
MIME-Version: 1.0

{text}

Best regards,
Customer

________________________________
From: Ana Lima <{to}>
Sent: Monday, March 2, 2026 9:00 AM
To: Customer Name <{sender}>
Subject: Welcome aboard

Hi, welcome aboard!
"""
    )


def apple_mail_reply(
    sender: str, to: str, in_reply_to: str | None, text: str, *, date: str = DATE
) -> bytes:
    """Apple Mail: "On <date>, at <time>, <name> wrote:" then ">" lines."""
    n = next(_counter)
    return _crlf(
        f"""Content-Type: text/plain;
\tcharset=utf-8
Content-Transfer-Encoding: 8bit
Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3774.600.62\\))
Subject: Re: Welcome aboard
From: Customer <{sender}>
{_threading(in_reply_to)}Date: {date}
To: Ana Lima <{to}>
Message-Id: <5E1B2C3D-{n:04d}-4F5A-9B8C-7D6E5F4A3B2C@example.net>
X-Mailer: Apple Mail (2.3774.600.62)

{text}

> On 2 Mar 2026, at 09:00, Ana Lima <{to}> wrote:
>
> Hi, welcome aboard!
"""
    )


def out_of_office(sender: str, to: str, in_reply_to: str | None, *, date: str = DATE) -> bytes:
    """Exchange's automatic reply: Auto-Submitted (RFC 3834) and an "Automatic reply" subject."""
    n = next(_counter)
    return _crlf(
        f"""From: Customer Name <{sender}>
To: Ana Lima <{to}>
Subject: Automatic reply: Welcome aboard
Thread-Topic: Welcome aboard
Date: {date}
Message-ID: <oof{n}@DB9PR01MB1234.eurprd01.prod.outlook.com>
{_threading(in_reply_to)}Auto-Submitted: auto-generated
X-Auto-Response-Suppress: All
X-MS-Exchange-Inbox-Rules-Loop: {sender}
Content-Type: text/plain; charset="us-ascii"
MIME-Version: 1.0

I am out of the office until March 16 with limited access to email.
"""
    )


def unsubscribe(sender: str, to: str, *, subject: str = "unsubscribe", body: str = "") -> bytes:
    """What a mail client sends for List-Unsubscribe: <mailto:...?subject=unsubscribe>."""
    n = next(_counter)
    return _crlf(
        f"""From: {sender}
To: {to}
Subject: {subject}
Date: {DATE}
Message-ID: <unsub{n}@example.net>
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: 8bit

{body}
"""
    )


def postfix_bounce(
    recipient: str,
    original_id: str,
    *,
    sender: str = "ana@example.com",
    status: str = "5.1.1",
    action: str = "failed",
) -> bytes:
    """Postfix's bounce: multipart/report with the delivery status and the returned
    message's headers (text/rfc822-headers)."""
    n = next(_counter)
    diagnostic = (
        f"smtp; 550 {status} <{recipient}>: Recipient address rejected: User unknown in "
        "virtual mailbox table"
        if status.startswith("5")
        else f"smtp; 451 {status} <{recipient}>: Temporary lookup failure"
    )
    return _crlf(
        f"""Return-Path: <>
Date: {DATE}
From: MAILER-DAEMON@mail.example.com (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {sender}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="4F2A1C0B4E.{n}/mail.example.com"
Content-Transfer-Encoding: 8bit
Message-Id: <20260302101500.4F2A1C0B{n}@mail.example.com>

This is a MIME-encapsulated message.

--4F2A1C0B4E.{n}/mail.example.com
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mail.example.com.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{recipient}>: host mx.customer.example[203.0.113.5] said: 550 {status}
    <{recipient}>: Recipient address rejected: User unknown

--4F2A1C0B4E.{n}/mail.example.com
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.com
X-Postfix-Queue-ID: 4F2A1C0B4E
X-Postfix-Sender: rfc822; {sender}
Arrival-Date: Mon,  2 Mar 2026 10:14:58 +0000 (UTC)

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.customer.example
Diagnostic-Code: {diagnostic}

--4F2A1C0B4E.{n}/mail.example.com
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers
Content-Transfer-Encoding: 8bit

Date: Mon, 02 Mar 2026 09:00:00 +0000
From: Ana Lima <{sender}>
To: {recipient}
Subject: Welcome aboard
Message-ID: {original_id}

--4F2A1C0B4E.{n}/mail.example.com--
"""
    )


def exchange_bounce(
    recipient: str, original_id: str | None, *, sender: str = "ana@example.com"
) -> bytes:
    """Exchange's non-delivery report: multipart/report with a message/rfc822 part (the
    returned message whole), Final-Recipient only (when ``original_id`` is None, the
    returned part has no Message-ID: only the recipient tells whose it is)."""
    n = next(_counter)
    returned_id = f"Message-ID: {original_id}\n" if original_id else ""
    return _crlf(
        f"""From: Microsoft Outlook <postmaster@contoso.onmicrosoft.com>
To: <{sender}>
Date: {DATE}
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="b6d1e2f3-{n}"
X-MS-Exchange-Message-Is-Ndr:
Content-Language: en-US
Message-ID: <ndr{n}@DB9PR01MB9999.eurprd01.prod.outlook.com>
Subject: Undeliverable: Welcome aboard
Auto-Submitted: auto-replied
MIME-Version: 1.0

--b6d1e2f3-{n}
Content-Type: multipart/alternative; differences=Content-Type;
\tboundary="a1c2e3-{n}"

--a1c2e3-{n}
Content-Type: text/plain; charset="us-ascii"

Your message to {recipient} couldn't be delivered.
{recipient} wasn't found at contoso.com.

--a1c2e3-{n}
Content-Type: text/html; charset="us-ascii"

<html><body><p>Your message to {recipient} couldn't be delivered.</p></body></html>

--a1c2e3-{n}--

--b6d1e2f3-{n}
Content-Type: message/delivery-status

Reporting-MTA: dns;DB9PR01MB9999.eurprd01.prod.outlook.com
Received-From-MTA: dns;mail.example.com
Arrival-Date: Mon, 2 Mar 2026 10:14:58 +0000

Final-Recipient: rfc822;{recipient}
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup

--b6d1e2f3-{n}
Content-Type: message/rfc822

From: Ana Lima <{sender}>
To: {recipient}
Subject: Welcome aboard
Date: Mon, 2 Mar 2026 09:00:00 +0000
{returned_id}MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"

Hi, welcome aboard!

--b6d1e2f3-{n}--
"""
    )


def sent_by_hand(sender: str, to: str, *, subject: str = "Our call", date: str = DATE) -> bytes:
    """A message the consultant wrote in their own mail program (its Sent folder)."""
    n = next(_counter)
    return _crlf(
        f"""From: Ana Lima <{sender}>
To: {to}
Subject: {subject}
Date: {date}
Message-ID: <byhand{n}@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"

Thanks for the call today; the notes follow.
"""
    )


def newsletter(to: str) -> bytes:
    """Mail from no one funnelctl knows."""
    n = next(_counter)
    return _crlf(
        f"""From: News <news@shop.example>
To: {to}
Subject: This week's offers {n}
Date: {DATE}
Message-ID: <news{n}@shop.example>
Precedence: bulk
Content-Type: text/plain; charset="utf-8"

Offers.
"""
    )

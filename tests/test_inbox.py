"""`funnelctl inbox` (and `run`, which reads it first) against a real IMAP server:
Dovecot on 127.0.0.1 (tests/dovecot.py), fed with real-shaped messages
(tests/mail_samples.py), and emails sent through the SMTP test server as `send` sends
them. Every test runs at FUNNELCTL_TODAY=2026-03-02, FUNNELCTL_NOW=2026-03-02T10:00.
"""

from __future__ import annotations

import json
import sqlite3
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mail_samples as samples
import pytest
import trustme
from conftest import Result
from dovecot import BINARY, MISSING, PASSWORD, USER, Dovecot
from smtp_server import SmtpServer

pytestmark = [
    pytest.mark.skipif(BINARY is None, reason=MISSING),
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

ME = "ana@example.com"
BOB = "bob@customer.example"
LATER = "2026-03-05"  # the nudge's day (3d after entry), a Thursday

FLOW = """\
id: flow
title: A welcome, a nudge and a call
stages:
  - id: contact
    title: Contact
    on_enter:
      - email: welcome
        stop_on_reply: true
      - email: nudge
        delay: 3d
        stop_on_reply: true
      - task: Call the customer
        due: 2d
        channel: phone
        drop_if: "customer.replied"
  - id: later
    title: Later
    on_enter:
      - email: nudge
"""
NUDGE = "Subject: Did you see my welcome?\n\nHello {{ customer.first_name }}, just checking.\n"


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNNELCTL_NOW", "2026-03-02T10:00")
    monkeypatch.setenv("FUNNELCTL_IMAP_PASSWORD", PASSWORD)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def dovecot(tmp_path: Path, ca: trustme.CA) -> Iterator[Dovecot]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key = tmp_path / "server.pem", tmp_path / "server.key"
    cert.private_key_pem.write_to_path(str(key))
    with open(chain, "wb") as out:
        for blob in cert.cert_chain_pems:
            out.write(blob.bytes())
    with Dovecot(tmp_path / "dovecot", chain, key) as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


def configure(root: Path, smtp_port: int, inbox: str) -> None:
    text = 'timezone: Europe/Lisbon\nsender: "Ana Lima <ana@example.com>"\nteam: [ana]\n'
    text += "transport:\n" + textwrap.indent(
        f"kind: smtp\nhost: 127.0.0.1\nport: {smtp_port}\nsecurity: none\ntimeout_s: 5\n", "  "
    )
    text += "inbox:\n" + textwrap.indent(textwrap.dedent(inbox), "  ")
    (root / "funnelctl.yaml").write_text(text, encoding="utf-8")


def imap_yaml(server: Dovecot, sent: str | None = "Sent") -> str:
    folders = f"folders: {{inbox: INBOX, sent: {sent}}}\n" if sent else ""
    return (
        f"kind: imap\nhost: 127.0.0.1\nport: {server.port}\nsecurity: none\n"
        f"username: {USER}\ntimeout_s: 10\n{folders}"
    )


@pytest.fixture
def ws(workspace: Path, smtp: SmtpServer, dovecot: Dovecot) -> Path:
    configure(workspace, smtp.port, imap_yaml(dovecot))
    (workspace / "playbooks" / "flow.yaml").write_text(FLOW, encoding="utf-8")
    (workspace / "templates" / "nudge.txt").write_text(NUDGE, encoding="utf-8")
    dovecot.append("Sent")  # the folder exists, empty
    return workspace


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def enrolled(run: Callable[..., Result], email: str, name: str = "Bob Stone") -> None:
    ok(run("customer", "add", email, "--name", name))
    ok(run("enroll", email, "flow", "--stage", "contact"))


def sql(ws: Path, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(ws / "funnel.db") as conn:
        return conn.execute(query, params).fetchall()


def emails(ws: Path, customer: str) -> dict[str, tuple[str, str | None]]:
    rows = sql(
        ws,
        "SELECT o.template, o.status, o.reason FROM outbox o JOIN customers c "
        "ON c.id = o.customer_id WHERE c.email = ? ORDER BY o.id",
        customer,
    )
    return {template: (status, reason) for template, status, reason in rows}


def task_status(ws: Path, customer: str) -> str:
    rows = sql(
        ws,
        "SELECT a.status FROM activities a JOIN customers c ON c.id = a.customer_id "
        "WHERE c.email = ? AND a.title = 'Call the customer'",
        customer,
    )
    return str(rows[0][0])


def welcome_sent(run: Callable[..., Result], smtp: SmtpServer, email: str) -> str:
    """Send today's welcome; the Message-ID it went with."""
    before = len(smtp.received)
    assert as_json(run("send", "-f", "json"))["sent"] == 1
    message = smtp.wait_for(before + 1)[-1].message
    assert message["To"].addresses[0].addr_spec == email
    return str(message["Message-ID"])


def inbox(run: Callable[..., Result], *args: str) -> dict[str, int]:
    result: dict[str, int] = as_json(run("inbox", "-f", "json", *args))
    return result


def counts(**found: int) -> dict[str, int]:
    keys = (
        "read", "replies", "auto_replies", "bounces", "unsubscribes", "outbound", "unmatched", "old",
    )  # fmt: skip
    return {key: found.get(key, 0) for key in keys}


# -- done when --------------------------------------------------------------------------------


def test_a_reply_drops_the_call_and_the_follow_up_with_no_typing(run, ws, smtp, dovecot):
    enrolled(run, BOB)
    message_id = welcome_sent(run, smtp, BOB)
    sent = smtp.received[-1].message
    assert sent["List-Unsubscribe"] == f"<mailto:{ME}?subject=unsubscribe>"
    dovecot.append("INBOX", samples.gmail_reply(BOB.upper(), ME, message_id, "Thanks, Ana!"))

    tick = as_json(run("run", "-f", "json"))
    assert tick["inbox_replies"] == 1 and tick["inbox_read"] == 1

    assert task_status(ws, BOB) == "dropped"
    assert emails(ws, BOB)["nudge"] == ("skipped", "the customer replied")
    touch = sql(ws, "SELECT direction, channel, happened_on, summary, by FROM touchpoints")
    assert (
        "inbound",
        "email",
        "2026-03-02",
        "Welcome aboard: Thanks, Ana!",
        "funnelctl inbox",
    ) in [tuple(t) for t in touch]
    assert as_json(run("send", "-f", "json", "--today", LATER))["sent"] == 0
    assert len(smtp.received) == 1
    # nothing in the mailbox changed: no \Seen flag, nothing moved
    assert dovecot.flags("INBOX") == [b"1 (FLAGS (\\Recent))"] or all(
        b"\\Seen" not in f for f in dovecot.flags("INBOX")
    )
    assert dovecot.count("INBOX") == 1


@pytest.mark.parametrize("text", ["I'll call Bob on Thursday.", "stop"])
def test_our_own_message_in_the_thread_is_not_the_customers_reply(run, ws, smtp, dovecot, text):
    """A colleague's answer in the thread (Cc to the shared mailbox), a Bcc to self: the
    customer has not written, so nothing waiting for their reply stops."""
    enrolled(run, BOB)
    message_id = welcome_sent(run, smtp, BOB)
    dovecot.append("INBOX", samples.gmail_reply(ME.upper(), BOB, message_id, text))

    assert inbox(run) == counts(read=1, unmatched=1)
    assert task_status(ws, BOB) == "open"
    assert emails(ws, BOB)["nudge"] == ("queued", None)
    assert sql(ws, "SELECT count(*), sum(do_not_email) FROM customers") == [(1, 0)]
    assert sql(ws, "SELECT count(*) FROM touchpoints WHERE direction = 'inbound'") == [(0,)]


def test_an_out_of_office_answer_changes_nothing(run, ws, smtp, dovecot):
    enrolled(run, BOB)
    message_id = welcome_sent(run, smtp, BOB)
    dovecot.append("INBOX", samples.out_of_office(BOB, ME, message_id))

    assert inbox(run) == counts(read=1, auto_replies=1)
    assert task_status(ws, BOB) == "open"
    assert emails(ws, BOB)["nudge"] == ("queued", None)
    assert sql(ws, "SELECT count(*) FROM touchpoints WHERE direction = 'inbound'") == [(0,)]
    events = [e[0] for e in sql(ws, "SELECT summary FROM events")]
    assert any(e.startswith("Automatic answer (to 'welcome')") for e in events)
    assert as_json(run("send", "-f", "json", "--today", LATER))["sent"] == 1


def test_a_bounce_holds_the_next_email_until_the_address_is_fixed(run, ws, smtp, dovecot):
    enrolled(run, BOB)
    message_id = welcome_sent(run, smtp, BOB)
    dovecot.append("INBOX", samples.postfix_bounce(BOB, message_id))

    assert inbox(run) == counts(read=1, bounces=1)
    status = emails(ws, BOB)
    assert status["welcome"][0] == "bounced" and "5.1.1" in (status["welcome"][1] or "")
    assert status["nudge"][0] == "held"
    sent = run("send", "-f", "json", "--today", LATER)
    assert json.loads(sent.stdout)["sent"] == 0 and len(smtp.received) == 1
    ok(run("move", BOB, "later", "--today", LATER))  # an email queued after the bounce
    sent = run("send", "-f", "json", "--today", LATER)
    assert sent.exit_code == 1  # cron mails the consultant: an email was held
    assert json.loads(sent.stdout)["held"] == 1 and len(smtp.received) == 1
    assert "held, the address bounced" in sent.stderr

    due = as_json(run("due", "-f", "json", "--today", LATER))
    fix = [i for i in due if i["kind"] == "address"]
    assert len(fix) == 1 and fix[0]["customer"] == BOB and fix[0]["section"] == "attention"
    assert "User unknown" in fix[0]["reasons"][0]
    assert "address bounced: 5.1.1" in ok(run("customer", "show", BOB)).stdout

    edited = ok(run("customer", "edit", BOB, "--email", "bob@customer2.example", "--today", LATER))
    # the welcome never arrived: the edit says so, and how to send it to the new address
    assert edited.stderr == (
        "e1 bounced at the old address: 'funnelctl outbox requeue e1' sends it to the new one.\n"
    )
    # the contact visit's nudge ended with its visit; the later one goes to the new address
    assert sql(ws, "SELECT status FROM outbox ORDER BY id") == [
        ("bounced",),
        ("superseded",),
        ("queued",),
    ]
    assert as_json(run("send", "-f", "json", "--today", LATER))["sent"] == 1
    assert smtp.received[-1].rcpt_tos == ["bob@customer2.example"]
    ok(run("outbox", "requeue", "e1", "--today", LATER))
    assert as_json(run("send", "-f", "json", "--today", LATER))["sent"] == 1
    assert smtp.received[-1].rcpt_tos == ["bob@customer2.example"]
    assert b"Subject: " in smtp.received[-1].content and len(smtp.received) == 3
    assert not [i for i in as_json(run("due", "-f", "json")) if i["kind"] == "address"]


def test_a_transient_bounce_is_only_noted(run, ws, smtp, dovecot):
    enrolled(run, BOB)
    message_id = welcome_sent(run, smtp, BOB)
    dovecot.append(
        "INBOX", samples.postfix_bounce(BOB, message_id, status="4.4.1", action="delayed")
    )
    assert inbox(run) == counts(read=1, bounces=1)
    assert emails(ws, BOB) == {"welcome": ("sent", None), "nudge": ("queued", None)}


def test_an_exchange_bounce_is_matched_by_its_final_recipient(run, ws, smtp, dovecot):
    enrolled(run, BOB)
    welcome_sent(run, smtp, BOB)
    dovecot.append("INBOX", samples.exchange_bounce(BOB, None))
    assert inbox(run) == counts(read=1, bounces=1)
    assert emails(ws, BOB)["welcome"][0] == "bounced"


def test_an_unsubscribe_stops_all_email(run, ws, smtp, dovecot):
    enrolled(run, BOB)
    welcome_sent(run, smtp, BOB)
    dovecot.append("INBOX", samples.unsubscribe(BOB, ME))

    assert inbox(run) == counts(read=1, unsubscribes=1)
    assert emails(ws, BOB)["nudge"] == ("skipped", "the customer asked for no more email")
    ok(run("move", BOB, "later", "--today", LATER))  # a new email for the new stage
    result = as_json(run("send", "-f", "json", "--today", LATER))
    assert (result["sent"], result["skipped"]) == (0, 1)
    assert len(smtp.received) == 1

    edited = as_json(run("customer", "edit", BOB, "--allow-email", "-f", "json"))
    assert edited["do_not_email"] is False
    ok(run("outbox", "requeue", "e3", "--today", LATER))
    assert as_json(run("send", "-f", "json", "--today", LATER))["sent"] == 1


def test_reading_twice_records_nothing_twice_and_a_new_uidvalidity_reads_again_safely(
    run, ws, smtp, dovecot
):
    enrolled(run, BOB)
    message_id = welcome_sent(run, smtp, BOB)
    reply = samples.outlook_reply(BOB, ME, message_id, "Yes, Thursday works.")
    dovecot.append("Archive", reply, samples.newsletter(ME))
    configure(ws, smtp.port, imap_yaml(dovecot).replace("inbox: INBOX", "inbox: Archive"))

    assert inbox(run) == counts(read=2, replies=1, unmatched=1)
    assert inbox(run) == counts()
    dovecot.recreate("Archive", reply, samples.newsletter(ME))  # a new UIDVALIDITY
    assert inbox(run) == counts(read=2, unmatched=1)  # read again, recorded once
    assert sql(ws, "SELECT count(*) FROM touchpoints WHERE direction = 'inbound'") == [(1,)]
    assert inbox(run) == counts()


def test_what_the_consultant_sent_by_hand_is_an_outbound_touchpoint(run, ws, smtp, dovecot):
    enrolled(run, BOB)
    message_id = welcome_sent(run, smtp, BOB)
    copy = smtp.received[-1].content  # a server that files what went through it (Gmail)
    assert message_id.encode() in copy
    by_hand = samples.sent_by_hand(ME, f"Bob <{BOB}>")
    dovecot.append("Sent", by_hand, samples.sent_by_hand(ME, "someone@else.example"), copy)
    assert inbox(run) == counts(read=3, outbound=1, unmatched=1)
    rows = sql(ws, "SELECT direction, summary FROM touchpoints WHERE by = 'funnelctl inbox'")
    assert rows == [("outbound", "Our call: Thanks for the call today; the notes follow.")]
    # funnelctl's own welcome was recorded once, by send
    assert sql(ws, "SELECT count(*) FROM touchpoints WHERE direction = 'outbound'") == [(2,)]


def test_mail_from_no_one_known_is_counted_never_stored(run, ws, dovecot):
    dovecot.append(
        "INBOX", samples.newsletter(ME), samples.gmail_reply("x@y.example", ME, None, "Hi")
    )
    assert inbox(run) == counts(read=2, unmatched=2)
    assert sql(ws, "SELECT count(*) FROM inbox_messages") == [(0,)]
    assert sql(ws, "SELECT count(*) FROM touchpoints") == [(0,)]


def test_run_no_inbox_skips_it_and_an_unreachable_server_still_ticks(run, ws, dovecot, smtp):
    tick = as_json(run("run", "-f", "json", "--no-inbox"))
    assert "inbox_read" not in tick
    configure(ws, smtp.port, imap_yaml(dovecot).replace(str(dovecot.port), "1"))
    result = run("run", "-f", "json")
    assert result.exit_code == 1
    assert "The inbox was not read: Cannot connect to the IMAP server 127.0.0.1:1" in result.stderr
    assert isinstance(json.loads(result.stdout), dict)  # the tick ran all the same


# -- the connection ----------------------------------------------------------------------------


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_with_the_test_ca_in_ca_file(run, ws, smtp, dovecot, ca, tmp_path, security):
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    port = dovecot.tls_port if security == "ssl" else dovecot.port
    configure(
        ws,
        smtp.port,
        f"kind: imap\nhost: 127.0.0.1\nport: {port}\nsecurity: {security}\n"
        f"username: {USER}\nca_file: {ca_file}\n",
    )
    dovecot.append("INBOX", samples.newsletter(ME))
    assert inbox(run) == counts(read=1, unmatched=1)


def test_an_untrusted_certificate_is_refused(run, ws, smtp, dovecot):
    configure(
        ws,
        smtp.port,
        f"kind: imap\nhost: 127.0.0.1\nport: {dovecot.tls_port}\nsecurity: ssl\nusername: {USER}\n",
    )
    result = run("inbox")
    assert result.exit_code == 1
    assert "has a certificate this machine does not trust" in result.stderr
    assert "inbox.ca_file" in result.stderr


def test_a_wrong_or_missing_password(run, ws, monkeypatch):
    monkeypatch.setenv("FUNNELCTL_IMAP_PASSWORD", "wrong")
    result = run("inbox")
    assert result.exit_code == 1 and f"refused the login for {USER}" in result.stderr
    monkeypatch.delenv("FUNNELCTL_IMAP_PASSWORD")
    result = run("inbox")
    assert result.exit_code == 1
    assert "FUNNELCTL_IMAP_PASSWORD" in result.stderr and "Traceback" not in result.stderr


def test_a_missing_folder_is_named(run, ws, smtp, dovecot):
    configure(ws, smtp.port, imap_yaml(dovecot, sent="Sent Items"))
    result = run("inbox")
    assert result.exit_code == 1
    assert "'Sent Items' cannot be opened" in result.stderr


def test_a_non_ascii_password_is_refused_in_a_sentence(run, ws, monkeypatch):
    monkeypatch.setenv("FUNNELCTL_IMAP_PASSWORD", "s\u00e9nha")
    for command in (("inbox",), ("run", "-f", "json")):
        result = run(*command)
        assert result.exit_code == 1 and "Traceback" not in result.stderr
        assert "non-ASCII" in result.stderr and "FUNNELCTL_IMAP_PASSWORD" in result.stderr
        assert "s\u00e9nha" not in result.stderr


def test_a_folder_with_a_non_ascii_name_is_read(run, ws, smtp, dovecot):
    dovecot.append("Envoy&AOk-s", samples.sent_by_hand(ME, BOB))  # "Envoyés", modified UTF-7
    ok(run("customer", "add", BOB))
    configure(ws, smtp.port, imap_yaml(dovecot, sent="Envoyés"))
    assert inbox(run) == counts(read=1, outbound=1)


def test_a_failed_login_logs_out_and_a_refused_starttls_is_named(run, ws, dovecot, monkeypatch):
    import imaplib

    logouts: list[str] = []
    real_logout = imaplib.IMAP4.logout

    def logout(self: imaplib.IMAP4) -> Any:
        logouts.append("logout")
        return real_logout(self)

    monkeypatch.setattr(imaplib.IMAP4, "logout", logout)
    monkeypatch.setenv("FUNNELCTL_IMAP_PASSWORD", "wrong")
    result = run("inbox")
    assert result.exit_code == 1 and "refused the login" in result.stderr
    assert logouts == ["logout"]

    def no_starttls(self: imaplib.IMAP4, ssl_context: Any = None) -> Any:
        raise imaplib.IMAP4.error("STARTTLS extension not supported by server.")

    monkeypatch.setattr(imaplib.IMAP4, "starttls", no_starttls)
    settings = ws / "funnelctl.yaml"
    settings.write_text(
        settings.read_text().replace("security: none\n  username", "security: starttls\n  username")
    )
    result = run("inbox")
    assert result.exit_code == 1 and "refused STARTTLS" in result.stderr
    assert "refused the login" not in result.stderr and logouts == ["logout", "logout"]

"""`funnelctl send` against real peers: an aiosmtpd server on 127.0.0.1 (tests/smtp_server.py),
real `funnelctl` subprocesses for locks and kill -9, real sendmail-like executables.

Emails reach the outbox the way they do for users: `customer add`, then `enroll` into a
stage whose entry actions queue an email. Every test runs at a fixed moment:
FUNNELCTL_TODAY=2026-03-02 (conftest) and FUNNELCTL_NOW=2026-03-02T10:00, a Monday inside
the default window (mon-fri 09:00-17:00).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import TODAY, Result
from smtp_server import SmtpServer, free_port

pytestmark = [
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
    pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning"),
]

NOW = "2026-03-02T10:00"
SENT_AT = "2026-03-02T10:00:00+00:00"  # Europe/Lisbon is on UTC in March
DATE_HEADER = "Mon, 02 Mar 2026 10:00:00 +0000"
SENDER = "Ana Lima <ana@example.com>"
FUNNELCTL = str(Path(sys.executable).with_name("funnelctl"))
WELCOME_SUBJECT = "Welcome aboard: how to reach me from here on"
WELCOME_PT_SUBJECT = "As nossas boas-vindas: como falar comigo a partir de agora"
UNCERTAIN_REASON = (
    "a previous send stopped while sending it; check the recipient's mailbox, "
    "then resend with --retry-uncertain"
)
ZERO = {"sent": 0, "failed": 0, "skipped": 0, "uncertain": 0, "deferred": 0, "held": 0}


def summary(**counts: int) -> dict[str, int]:
    return {**ZERO, **counts}


# -- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNNELCTL_NOW", NOW)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


def configure(root: Path, transport: str, send: str = "") -> None:
    """Rewrite funnelctl.yaml: our sender and time zone, the given transport (YAML lines)."""
    text = f'timezone: Europe/Lisbon\nsender: "{SENDER}"\nteam: [ana, bruno]\n'
    text += 'send:\n  window: {hours: "09:00-17:00", weekdays: [mon, tue, wed, thu, fri]}\n'
    text += "  max_late_days: 3\n" + textwrap.indent(textwrap.dedent(send), "  ")
    text += "transport:\n" + textwrap.indent(textwrap.dedent(transport), "  ")
    (root / "funnelctl.yaml").write_text(text, encoding="utf-8")


def smtp_yaml(port: int, extra: str = "") -> str:
    return f"kind: smtp\nhost: 127.0.0.1\nport: {port}\nsecurity: none\ntimeout_s: 5\n" + extra


@pytest.fixture
def ws(workspace: Path, smtp: SmtpServer) -> Path:
    """A workspace whose transport is the test SMTP server, with a crafted playbook."""
    configure(workspace, smtp_yaml(smtp.port))
    add_crafted(workspace)
    return workspace


CRAFTED_PLAYBOOK = """\
id: crafted
title: Crafted emails for the send tests
stages:
  - id: copied
    title: Copied
    on_enter:
      - email: with-cc
  - id: audited
    title: Audited
    on_enter:
      - email: with-bcc
  - id: broken
    title: Broken
    on_enter:
      - email: broken
  - id: managed
    title: Managed
    on_enter:
      - email: with-manager
"""

TEMPLATES = {
    "with-cc": "Subject: Notes for {{ customer.name }}\n"
    "Cc: refused@example.com, Boss <boss@example.com>\n\nHello {{ customer.first_name }}.\n",
    "with-bcc": "Subject: Your account\nBcc: audit@example.com\n\nHello {{ customer.first_name }}.\n",
    "with-manager": "Subject: Your account\nCc: {{ customer.fields.manager }}\n\nHello.\n",
    # line 6 uses a variable that does not exist
    "broken": "Subject: About your plan\nContent-Type: text/markdown\n\n"
    "Hello {{ customer.first_name }},\n\nYour plan renews on {{ renewal_date }}.\n",
}


def add_crafted(root: Path) -> None:
    (root / "playbooks" / "crafted.yaml").write_text(CRAFTED_PLAYBOOK, encoding="utf-8")
    for name, text in TEMPLATES.items():
        (root / "templates" / f"{name}.txt").write_text(text, encoding="utf-8")


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def customer(run: Callable[..., Result], email: str, name: str, *extra: str) -> None:
    ok(run("customer", "add", email, "--name", name, *extra))


def welcome(run: Callable[..., Result], email: str, name: str, *extra: str) -> None:
    """A customer in after-sales' customer-contact stage: the `welcome` email is queued today."""
    customer(run, email, name, *extra)
    ok(run("enroll", email, "after-sales", "--stage", "customer-contact"))


def crafted(run: Callable[..., Result], email: str, name: str, stage: str) -> None:
    customer(run, email, name)
    ok(run("enroll", email, "crafted", "--stage", stage))


def send(run: Callable[..., Result], *args: str) -> tuple[Result, dict[str, int]]:
    result = run("send", "--format", "json", *args)
    return result, json.loads(result.stdout)


def outbox(run: Callable[..., Result], *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(
        ok(run("outbox", "list", "--format", "json", *args)).stdout
    )
    return rows


def by_customer(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["customer"]: r for r in rows}


def statuses(run: Callable[..., Result]) -> dict[str, str]:
    return {r["customer"]: r["status"] for r in outbox(run)}


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)  # conftest already points HOME, FUNNELCTL_HOME, TODAY, TZ into tmp_path
    env.update(extra)
    return env


def spawn(*args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [FUNNELCTL, *args],
        env=subprocess_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# -- 1. delivery and content ----------------------------------------------------------------------


def test_an_email_in_the_default_words_to_a_customer_of_a_translated_language_is_named(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    """The workspace writes to pt customers in Portuguese (welcome.pt.txt), but the
    onboarding welcome has no pt version: it goes in the default words, and send says
    so, so that the consultant can translate it before the next one."""
    welcome(run, "maria@example.com", "Maria Silva", "--language", "pt")
    for email in ("rita@example.com", "rui@example.com"):
        customer(run, email, "Rita Acme", "--language", "pt-BR")
        ok(run("enroll", email, "support"))  # onboarding queues onboarding-welcome
    customer(run, "joe@example.com", "Joe Bloggs", "--language", "en")
    ok(run("enroll", "joe@example.com", "support"))

    result, counts = send(run)

    assert (result.exit_code, counts) == (0, summary(sent=4))
    assert result.stderr == (
        "2 'onboarding-welcome' email(s) to customers whose language is pt-br are in the "
        "default words: there is no templates/onboarding-welcome.pt.txt yet.\n"
    )


def test_each_queued_email_is_delivered_once_with_its_message_id_and_rendered_content(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    welcome(run, "joe@example.com", "Joe Bloggs")
    welcome(run, "x@example.com", "<b>x</b>")
    welcome(run, "maria@example.com", "Maria Silva", "--language", "pt")
    customer(run, "acme@example.com", "Rita Acme", "--company", "Acme Lda")
    ok(run("enroll", "acme@example.com", "support"))  # onboarding queues onboarding-welcome
    queued = by_customer(outbox(run))
    assert [r["status"] for r in queued.values()] == ["queued"] * 4

    before = datetime.now(ZoneInfo("UTC")).replace(microsecond=0)
    result, counts = send(run)
    after = datetime.now(ZoneInfo("UTC"))

    assert (result.exit_code, counts, result.stderr) == (0, summary(sent=4), "")
    received = {r.rcpt_tos[0]: r for r in smtp.received}
    assert sorted(received) == [
        "acme@example.com",
        "joe@example.com",
        "maria@example.com",
        "x@example.com",
    ]
    assert [len(r.rcpt_tos) for r in smtp.received] == [1, 1, 1, 1]
    for email, got in received.items():
        message = got.message
        assert got.mail_from == "ana@example.com"
        assert message["Message-ID"] == queued[email]["message_id"]
        # mail that really leaves is dated by the clock, never by FUNNELCTL_NOW's replay
        assert before <= message["Date"].datetime <= after
        assert message["From"] == SENDER
        assert message.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    subjects = {email: got.message["Subject"] for email, got in received.items()}
    assert subjects == {
        "joe@example.com": WELCOME_SUBJECT,
        "x@example.com": WELCOME_SUBJECT,
        "maria@example.com": WELCOME_PT_SUBJECT,
        "acme@example.com": "Getting started at Acme Lda: your first steps",
    }
    assert received["joe@example.com"].message["To"] == "Joe Bloggs <joe@example.com>"
    assert received["maria@example.com"].message["To"] == "Maria Silva <maria@example.com>"
    to_x = received["x@example.com"].message["To"].addresses
    assert [(a.display_name, a.addr_spec) for a in to_x] == [("<b>x</b>", "x@example.com")]

    # the plain text part carries the name as written, the HTML part escapes it
    text, html = (p.get_content() for p in received["x@example.com"].message.iter_parts())
    assert text.startswith("Hi <b>x</b>,\n")
    assert "<p>Hi &lt;b&gt;x&lt;/b&gt;,</p>" in html
    assert "<b>x</b>" not in html
    assert "<strong>Email:</strong>" in html  # the template's own Markdown is HTML
    assert "I am Ana Lima, and for the next three months" in text
    pt_text = next(received["maria@example.com"].message.iter_parts()).get_content()
    assert pt_text.startswith("Olá Maria,\n")

    after = by_customer(outbox(run))
    assert {
        e: (r["status"], r["sent_at"], r["attempts"], r["reason"]) for e, r in after.items()
    } == {e: ("sent", SENT_AT, 1, None) for e in received}
    assert after["maria@example.com"]["subject"] == WELCOME_PT_SUBJECT
    assert after["joe@example.com"]["recipients"] == "joe@example.com"

    # a second run finds nothing to send and sends nothing again
    result, counts = send(run)
    assert (result.exit_code, counts, len(smtp.received)) == (0, summary(), 4)


def test_a_long_send_converts_markdown_in_a_worker_into_the_same_emails(
    run: Callable[..., Result],
    tmp_path: Path,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past mdhtml.WORKER_FROM Markdown emails, a worker process converts them: this
    process converts none, and every email is the one a short send makes."""
    from funnelctl import mdhtml

    rows = ["email,name,company,language"]
    rows += [
        f"c{i}@example.com,Customer {i},Firm {i % 3},{'pt' if i % 4 else 'en'}" for i in range(25)
    ]
    (tmp_path / "customers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    here: list[str] = []
    real = mdhtml.to_html
    monkeypatch.setattr(mdhtml, "to_html", lambda text: here.append(text) or real(text))

    mails = {}
    for name, worker_from in (("worker", 20), ("here", 10**9)):
        root = tmp_path / name
        ok(run("init", str(root)))
        configure(root, smtp_yaml(smtp.port))
        home = ("--home", str(root))
        ok(
            run(
                "import",
                str(tmp_path / "customers.csv"),
                "--funnel",
                "after-sales",
                "--stage",
                "customer-contact",
                *home,
            )
        )
        monkeypatch.setattr(mdhtml, "WORKER_FROM", worker_from)
        here.clear()
        start = len(smtp.received)
        result, counts = send(run, *home)
        assert (result.exit_code, counts) == (0, summary(sent=25)), result.stderr
        assert len(here) == (0 if name == "worker" else 25)
        mails[name] = {
            got.rcpt_tos[0]: [part.get_content() for part in got.message.iter_parts()]
            for got in smtp.received[start:]
        }
    assert len(mails["worker"]) == 25
    assert mails["worker"] == mails["here"]


def test_outbox_export_shows_the_same_fate(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    welcome(run, "joe@example.com", "Joe Bloggs")
    ok(send(run)[0])
    exported = json.loads(ok(run("export", "outbox", "-f", "json")).stdout)
    assert [(r["customer"], r["template"], r["status"], r["sent_at"]) for r in exported] == [
        ("joe@example.com", "welcome", "sent", SENT_AT)
    ]
    assert exported[0]["message_id"] == smtp.received[0].message_id


def test_a_customer_name_with_a_comma_gets_the_email(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    welcome(run, "lima@example.com", "Lima, Ana")
    result, counts = send(run)
    assert (result.exit_code, counts, result.stderr) == (0, summary(sent=1), "")
    addresses = smtp.received[0].message["To"].addresses
    assert [(a.display_name, a.addr_spec) for a in addresses] == [("Lima, Ana", "lima@example.com")]


# -- 2. the server is down ----------------------------------------------------------------------


def test_server_down_defers_the_email_and_is_not_a_failure(
    run: Callable[..., Result], workspace: Path
) -> None:
    port = free_port()  # nothing listens there
    configure(workspace, smtp_yaml(port))
    welcome(run, "joe@example.com", "Joe Bloggs")

    result, counts = send(run)

    assert (result.exit_code, counts) == (0, summary(deferred=1))
    row = outbox(run)[0]
    assert (row["status"], row["attempts"], row["next_attempt_at"], row["sent_at"]) == (
        "queued",
        1,
        "2026-03-02T10:05:00+00:00",
        None,
    )
    assert row["reason"].startswith(f"cannot connect to 127.0.0.1:{port}: ")
    assert "Connection refused" in row["reason"]
    assert row["reason"].endswith("; retrying after 2026-03-02T10:05:00+00:00")
    assert result.stderr == (
        f"{row['reason'].split('; retrying')[0]} (1 email(s) kept for a later run)\n"
    )

    # before next_attempt_at nothing is tried again
    result, counts = send(run)
    assert (result.exit_code, counts, outbox(run)[0]["attempts"]) == (0, summary(), 1)


# -- 3. temporary failures: retried later, then given up ------------------------------------------


def test_greylisted_recipient_is_retried_with_backoff_and_failed_after_max_attempts(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from funnelctl.sending import MAX_ATTEMPTS

    smtp.handler.refuse["joe@example.com"] = "451 4.7.1 Greylisted, try again later"
    welcome(run, "joe@example.com", "Joe Bloggs")
    # each run happens exactly when the previous one said to retry: +5, +15, +60, +240 min
    schedule = ["10:00", "10:05", "10:20", "11:20", "15:20"]
    assert len(schedule) == MAX_ATTEMPTS == 5
    next_attempts = []
    for index, hhmm in enumerate(schedule):
        monkeypatch.setenv("FUNNELCTL_NOW", f"2026-03-02T{hhmm}")
        result, counts = send(run)
        row = outbox(run)[0]
        if index < MAX_ATTEMPTS - 1:
            assert (result.exit_code, counts, row["status"]) == (0, summary(deferred=1), "queued")
            next_attempts.append(row["next_attempt_at"])
        else:
            assert (result.exit_code, counts, row["status"]) == (1, summary(failed=1), "failed")
            assert row["reason"] == (
                "gave up after 5 attempts: every recipient was refused: "
                "joe@example.com: 451 4.7.1 Greylisted, try again later"
            )
    assert next_attempts == [f"2026-03-02T{t}:00+00:00" for t in schedule[1:]]
    assert smtp.received == []
    assert smtp.handler.rcpt_seen == ["joe@example.com"] * 5


def test_4xx_reply_to_the_message_defers_it_and_a_later_run_sends_it(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp.handler.data_replies.append("451 4.3.0 Mailbox busy, try later")
    welcome(run, "joe@example.com", "Joe Bloggs")

    result, counts = send(run)
    row = outbox(run)[0]
    assert (result.exit_code, counts, row["status"], row["sent_at"]) == (
        0,
        summary(deferred=1),
        "queued",
        None,
    )
    assert row["reason"] == (
        "message refused: 451 4.3.0 Mailbox busy, try later; retrying after 2026-03-02T10:05:00+00:00"
    )

    monkeypatch.setenv("FUNNELCTL_NOW", "2026-03-02T10:10")
    result, counts = send(run)
    row = outbox(run)[0]
    assert (result.exit_code, counts, row["status"], row["attempts"]) == (
        0,
        summary(sent=1),
        "sent",
        2,
    )
    assert row["sent_at"] == "2026-03-02T10:10:00+00:00"
    first, second = smtp.received
    assert first.message_id == second.message_id == row["message_id"]


def test_4xx_reply_to_the_message_every_time_fails_it_after_max_attempts(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp.handler.data_reply = "452 4.2.2 Mailbox full"
    welcome(run, "joe@example.com", "Joe Bloggs")
    for hhmm in ["10:00", "10:05", "10:20", "11:20"]:
        monkeypatch.setenv("FUNNELCTL_NOW", f"2026-03-02T{hhmm}")
        assert send(run)[1] == summary(deferred=1)
    monkeypatch.setenv("FUNNELCTL_NOW", "2026-03-02T15:20")
    result, counts = send(run)
    row = outbox(run)[0]
    assert (result.exit_code, counts, row["status"]) == (1, summary(failed=1), "failed")
    assert row["reason"] == "gave up after 5 attempts: message refused: 452 4.2.2 Mailbox full"


# -- 4. permanent failures ------------------------------------------------------------------------


def test_5xx_for_one_recipient_fails_that_email_and_the_run_goes_on(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    smtp.handler.refuse["gone@example.com"] = "550 5.1.1 <gone@example.com>: user unknown"
    welcome(run, "ann@example.com", "Ann First")
    welcome(run, "gone@example.com", "Gone Away")
    welcome(run, "zoe@example.com", "Zoe Last")

    result, counts = send(run)

    assert (result.exit_code, counts) == (1, summary(sent=2, failed=1))
    reason = (
        "every recipient was refused: gone@example.com: 550 5.1.1 <gone@example.com>: user unknown"
    )
    assert result.stderr == f"email e2: {reason}\n"
    rows = by_customer(outbox(run))
    assert {e: (r["status"], r["reason"]) for e, r in rows.items()} == {
        "ann@example.com": ("sent", None),
        "gone@example.com": ("failed", reason),
        "zoe@example.com": ("sent", None),
    }
    assert [r.rcpt_tos for r in smtp.received] == [["ann@example.com"], ["zoe@example.com"]]
    # failed is final: the next run does not try again
    result, counts = send(run)
    assert (result.exit_code, counts, smtp.handler.rcpt_seen.count("gone@example.com")) == (
        0,
        summary(),
        1,
    )


def test_5xx_reply_to_the_message_fails_it_with_the_servers_reason(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    welcome(run, "ann@example.com", "Ann First")
    welcome(run, "spam@example.com", "Spam Trap")
    welcome(run, "zoe@example.com", "Zoe Last")
    smtp.handler.data_replies.extend(["250 OK", "554 5.7.1 Message rejected as spam", "250 OK"])

    result, counts = send(run)

    assert (result.exit_code, counts) == (1, summary(sent=2, failed=1))
    assert statuses(run) == {
        "ann@example.com": "sent",
        "spam@example.com": "failed",
        "zoe@example.com": "sent",
    }
    row = by_customer(outbox(run))["spam@example.com"]
    assert (row["reason"], row["sent_at"]) == (
        "message refused: 554 5.7.1 Message rejected as spam",
        None,
    )


def test_a_message_the_server_failed_to_store_leaves_the_next_one_untouched(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    # the server's delivery fails after the whole message (500) and leaves its transaction
    # open: without a reset, the next email's MAIL got "503 nested MAIL command" and was
    # failed for good, for nothing of its own
    welcome(run, "ann@example.com", "Ann First")
    welcome(run, "zoe@example.com", "Zoe Last")
    smtp.handler.fail_in_data = 1

    result, counts = send(run)

    assert (result.exit_code, counts) == (1, summary(sent=1, failed=1))
    assert statuses(run) == {"ann@example.com": "failed", "zoe@example.com": "sent"}
    assert [m.rcpt_tos for m in smtp.received] == [["ann@example.com"], ["zoe@example.com"]]


# -- 5. one refused recipient among several -------------------------------------------------------


def test_one_refused_cc_does_not_stop_the_email_and_is_recorded(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    smtp.handler.refuse["refused@example.com"] = "550 5.1.1 No such user"
    crafted(run, "joe@example.com", "Joe Bloggs", "copied")

    result, counts = send(run)

    assert (result.exit_code, counts) == (0, summary(sent=1))
    refusal = "refused refused@example.com: 550 5.1.1 No such user"
    assert result.stderr == f"email e1: sent, but {refusal}\n"
    row = outbox(run)[0]
    assert (row["status"], row["reason"], row["sent_at"]) == ("sent", refusal, SENT_AT)
    assert row["recipients"] == "joe@example.com, refused@example.com, boss@example.com"
    (got,) = smtp.received
    assert got.rcpt_tos == ["joe@example.com", "boss@example.com"]
    assert got.message["Cc"] == "refused@example.com, Boss <boss@example.com>"
    assert got.message["Subject"] == "Notes for Joe Bloggs"
    assert got.message.get_content_type() == "text/plain"  # no Content-Type: text/markdown


# -- 6. fate unknown: uncertain, never resent unless asked ----------------------------------------


def test_connection_dropped_after_data_is_uncertain_and_resent_only_on_request(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    welcome(run, "joe@example.com", "Joe Bloggs")
    welcome(run, "zoe@example.com", "Zoe Last")
    smtp.handler.drop_after_data = 1  # the first message arrives, the reply never does

    result, counts = send(run)

    assert (result.exit_code, counts) == (1, summary(sent=1, uncertain=1))
    row = by_customer(outbox(run))["joe@example.com"]
    assert (row["status"], row["sent_at"]) == ("uncertain", None)
    assert row["reason"].startswith(
        "the connection to 127.0.0.1 failed while the message was sent: "
    )
    assert result.stderr == f"email e1: {row['reason']}\n"
    assert statuses(run)["zoe@example.com"] == "sent"  # the run reconnected and went on
    assert [r.rcpt_tos for r in smtp.received] == [["joe@example.com"], ["zoe@example.com"]]

    # the next run leaves it alone, and keeps saying so through its exit code
    result, counts = send(run)
    assert (result.exit_code, counts, len(smtp.received)) == (1, summary(uncertain=1), 2)
    assert statuses(run)["joe@example.com"] == "uncertain"

    # asked to, it resends with the same Message-ID, so the recipient's client can de-duplicate
    result, counts = send(run, "--retry-uncertain")
    assert (result.exit_code, counts) == (0, summary(sent=1))
    assert len(smtp.received) == 3
    assert smtp.received[2].message_id == smtp.received[0].message_id == row["message_id"]
    after = by_customer(outbox(run))["joe@example.com"]
    assert (after["status"], after["sent_at"], after["attempts"]) == ("sent", SENT_AT, 2)


# -- 7. two runs at once ----------------------------------------------------------------------------


def test_two_send_processes_at_once_deliver_every_email_exactly_once(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    emails = [f"c{i}@example.com" for i in range(1, 6)]
    for i, email in enumerate(emails, 1):
        welcome(run, email, f"Customer {i}")
    smtp.handler.delay = 0.25  # about 1.25 s for the batch: the runs overlap

    first = spawn("send", "--format", "json", "--wait", "30")
    second = spawn("send", "--format", "json", "--wait", "30")
    results = [p.communicate(timeout=60) for p in (first, second)]

    assert [p.returncode for p in (first, second)] == [0, 0], results
    counts = sorted((json.loads(out) for out, _ in results), key=lambda c: c["sent"])
    assert counts == [summary(), summary(sent=5)]
    ids = sorted(r.message_id for r in smtp.received)
    assert ids == sorted(r["message_id"] for r in outbox(run))
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == emails
    assert set(statuses(run).values()) == {"sent"}


def test_a_held_send_lock_makes_send_exit_75_busy(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    welcome(run, "joe@example.com", "Joe Bloggs")
    fd = os.open(ws / ".send.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = subprocess.run(
            [FUNNELCTL, "send", "--wait", "0.3"],
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        os.close(fd)
    assert proc.returncode == 75
    assert proc.stdout == ""
    assert proc.stderr == (
        f"Error: Another 'funnelctl send' is running in {ws}; waited 0.3 s. Try again later.\n"
    )
    assert (smtp.received, statuses(run)) == ([], {"joe@example.com": "queued"})


# -- 8. kill -9 in the middle of a batch -------------------------------------------------------------


def test_send_killed_mid_batch_leaves_the_interrupted_email_uncertain_and_loses_none(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    emails = ["c1@example.com", "c2@example.com", "c3@example.com"]
    for i, email in enumerate(emails, 1):
        welcome(run, email, f"Customer {i}")
    smtp.handler.delay_for["c2@example.com"] = 30  # the server sits on the second message

    proc = spawn("send", "--format", "json")
    assert smtp.handler.data_started.wait(20), "the second message never reached the server"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGKILL
    assert statuses(run) == {
        "c1@example.com": "sent",
        "c2@example.com": "sending",
        "c3@example.com": "queued",
    }
    smtp.handler.delay_for.clear()

    again = subprocess.run(
        [FUNNELCTL, "send", "--format", "json"],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert again.returncode == 1
    assert json.loads(again.stdout) == summary(sent=1, uncertain=1)
    rows = by_customer(outbox(run))
    assert {e: r["status"] for e, r in rows.items()} == {
        "c1@example.com": "sent",
        "c2@example.com": "uncertain",
        "c3@example.com": "sent",
    }
    assert rows["c2@example.com"]["reason"] == UNCERTAIN_REASON
    # the server got each message exactly once, the interrupted one included; none is missing
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == emails
    assert sorted(r.message_id for r in smtp.received) == sorted(
        r["message_id"] for r in rows.values()
    )


# -- 9. header injection from data --------------------------------------------------------------------


def test_a_line_break_in_customer_data_fails_that_email_and_reaches_nobody_else(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    welcome(run, "ann@example.com", "Ann First")
    # the CLI refuses such a name, so put it in the way a careless import or script could
    refused = run("customer", "add", "eve@example.com", "--name", "Eve\r\nBcc: evil@example.com")
    assert refused.exit_code == 2
    conn = sqlite3.connect(ws / "funnel.db")
    with conn:
        conn.execute(
            "INSERT INTO customers (email, name, company, created_on, updated_on) VALUES (?, ?, ?, ?, ?)",
            ["eve@example.com", "Eve\r\nBcc: evil@example.com", None, TODAY, TODAY],
        )
        conn.execute(
            "INSERT INTO customers (email, name, company, created_on, updated_on) VALUES (?, ?, ?, ?, ?)",
            ["mal@example.com", "Mal Lory", "Acme\nBcc: evil@example.com", TODAY, TODAY],
        )
    conn.close()
    ok(run("enroll", "eve@example.com", "after-sales", "--stage", "customer-contact"))
    ok(run("enroll", "mal@example.com", "support"))  # the Subject shows the company
    welcome(run, "zoe@example.com", "Zoe Last")

    result, counts = send(run)

    assert (result.exit_code, counts) == (1, summary(sent=2, failed=2))
    rows = by_customer(outbox(run))
    assert {e: (r["status"], r["reason"]) for e, r in rows.items()} == {
        "ann@example.com": ("sent", None),
        "eve@example.com": ("failed", "the customer's name contains a line break"),
        "mal@example.com": (
            "failed",
            "the Subject header would contain a line break (from the customer's data)",
        ),
        "zoe@example.com": ("sent", None),
    }
    assert result.stderr == (
        "email e2 to eve@example.com: the customer's name contains a line break\n"
        "email e3 to mal@example.com: the Subject header would contain a line break "
        "(from the customer's data)\n"
    )
    assert [r.rcpt_tos for r in smtp.received] == [["ann@example.com"], ["zoe@example.com"]]
    assert "evil@example.com" not in smtp.handler.rcpt_seen
    assert not any(b"evil" in r.content for r in smtp.received)


def test_a_non_ascii_address_from_data_fails_that_email_and_the_run_goes_on(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    customer(run, "joe@example.com", "Joe Bloggs", "--set", "manager=jos\u00e9@example.com")
    ok(run("enroll", "joe@example.com", "crafted", "--stage", "managed"))
    customer(run, "zoe@example.com", "Zoe Last", "--set", "manager=boss@example.com")
    ok(run("enroll", "zoe@example.com", "crafted", "--stage", "managed"))

    result, counts = send(run)

    assert (result.exit_code, counts) == (1, summary(sent=1, failed=1))
    rows = by_customer(outbox(run))
    assert (rows["joe@example.com"]["status"], rows["zoe@example.com"]["status"]) == (
        "failed",
        "sent",
    )
    assert "jos\u00e9@example.com" in rows["joe@example.com"]["reason"]
    assert "Traceback" not in result.stderr
    assert [r.rcpt_tos for r in smtp.received] == [["zoe@example.com", "boss@example.com"]]


def test_markdown_in_customer_data_is_not_turned_into_links(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    company = "[Reset your password](https://evil.example/reset)"
    welcome(run, "joe@example.com", "Joe Bloggs", "--company", company)
    ok(send(run)[0])
    text, html = (p.get_content() for p in smtp.received[0].message.iter_parts())
    assert f"at {company}." in text
    assert "href" not in html
    assert f"at {company}." in html


# -- 10. a template that does not render ------------------------------------------------------------


def test_a_template_with_an_undefined_variable_holds_all_its_emails_and_only_those(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer, dump: Callable[[Path], str]
) -> None:
    crafted(run, "b1@example.com", "Bea One", "broken")
    welcome(run, "joe@example.com", "Joe Bloggs")
    crafted(run, "b2@example.com", "Bob Two", "broken")

    result, counts = send(run)

    assert (result.exit_code, counts) == (1, summary(sent=1, held=2))
    path = ws / "templates" / "broken.txt"
    assert result.stderr == (
        f"{path}:6: 'renewal_date' is undefined (for b1@example.com)\n"
        f"{path}:6: 'renewal_date' is undefined (for b2@example.com)\n"
    )
    assert statuses(run) == {
        "b1@example.com": "queued",
        "joe@example.com": "sent",
        "b2@example.com": "queued",
    }
    assert [r.rcpt_tos for r in smtp.received] == [["joe@example.com"]]

    # fixed, the held emails go out on the next run
    path.write_text(TEMPLATES["broken"].replace("{{ renewal_date }}", "the 1st"), encoding="utf-8")
    result, counts = send(run)
    assert (result.exit_code, counts) == (0, summary(sent=2))
    assert sorted(r.rcpt_tos[0] for r in smtp.received[1:]) == ["b1@example.com", "b2@example.com"]


def test_an_undefined_variable_in_a_header_names_the_header_line(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    (ws / "templates" / "broken.txt").write_text(
        "Content-Type: text/markdown\nSubject: Hello {{ customer.nickname }}\n\nBody.\n",
        encoding="utf-8",
    )
    crafted(run, "b1@example.com", "Bea One", "broken")
    result, counts = send(run)
    assert (result.exit_code, counts, smtp.received) == (1, summary(held=1), [])
    assert result.stderr.startswith(f"{ws / 'templates' / 'broken.txt'}:2: ")
    assert result.stderr.endswith(" has no attribute 'nickname' (for b1@example.com)\n")
    assert result.stderr.count("\n") == 1


# -- 11. dry run --------------------------------------------------------------------------------


def test_dry_run_lists_the_real_envelope_and_changes_nothing(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer, dump: Callable[[Path], str]
) -> None:
    crafted(run, "joe@example.com", "Joe Bloggs", "audited")
    welcome(run, "zoe@example.com", "Zoe Last")
    before = dump(ws)

    result = run("send", "--dry-run", "--format", "json")

    assert (result.exit_code, result.stderr) == (0, "")
    assert json.loads(result.stdout) == [
        {
            "id": 1,
            "ref": "e1",
            "template": "with-bcc",
            "scheduled_on": TODAY,
            "from": SENDER,
            "recipients": ["joe@example.com", "audit@example.com"],
            "subject": "Your account",
        },
        {
            "id": 2,
            "ref": "e2",
            "template": "welcome",
            "scheduled_on": TODAY,
            "from": SENDER,
            "recipients": ["zoe@example.com"],
            "subject": WELCOME_SUBJECT,
        },
    ]
    assert dump(ws) == before
    assert smtp.received == []
    # scripts reading the CSV keep the id, and get the ref
    assert run("send", "--dry-run", "-f", "csv").stdout.splitlines()[:2] == [
        "id,ref,template,scheduled_on,recipients,subject",
        "1,e1,with-bcc,2026-03-02,joe@example.com;audit@example.com,Your account",
    ]
    # for people, in a pipe: a line per email, uncut, named as outbox list and drop name
    # it (a bare 1 would be a task to `drop`)
    assert run("send", "--dry-run").stdout == (
        "ref\ttemplate\tscheduled on\trecipients\tsubject\n"
        f"e1\twith-bcc\t{TODAY}\tjoe@example.com, audit@example.com\tYour account\n"
        f"e2\twelcome\t{TODAY}\tzoe@example.com\t{WELCOME_SUBJECT}\n"
    )
    assert not (ws / ".send.lock").exists()

    # the real run sends to that envelope, and Bcc stays out of the headers
    result, counts = send(run)
    assert (result.exit_code, counts) == (0, summary(sent=2))
    audited = smtp.received[0]
    assert audited.rcpt_tos == ["joe@example.com", "audit@example.com"]
    assert audited.message["Bcc"] is None
    assert b"audit@example.com" not in audited.content


# -- 12. the send window and stale emails -----------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "now"),
    [
        ("2026-03-07", "2026-03-07T10:00"),
        ("2026-03-02", "2026-03-02T20:00"),
        ("2026-03-02", "2026-03-02T08:59"),
    ],
    ids=["saturday", "evening", "before-nine"],
)
def test_outside_the_send_window_nothing_is_sent(
    run: Callable[..., Result],
    ws: Path,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    dump: Callable[[Path], str],
    today: str,
    now: str,
) -> None:
    monkeypatch.setenv("FUNNELCTL_TODAY", today)
    welcome(run, "joe@example.com", "Joe Bloggs")
    monkeypatch.setenv("FUNNELCTL_NOW", now)
    before = dump(ws)

    result, counts = send(run)

    assert (result.exit_code, counts) == (0, summary())
    assert (
        result.stderr == "Outside the send window (funnelctl.yaml send.window): nothing was sent.\n"
    )
    assert smtp.received == []
    assert dump(ws) == before


def test_a_dry_run_before_the_window_lists_what_waits_for_it(
    run: Callable[..., Result],
    ws: Path,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    dump: Callable[[Path], str],
) -> None:
    # the consultant's 8 a.m. look at what will go out at nine
    welcome(run, "joe@example.com", "Joe Bloggs")
    monkeypatch.setenv("FUNNELCTL_NOW", f"{TODAY}T08:00")
    before = dump(ws)

    result = run("send", "--dry-run")

    assert result.exit_code == 0
    assert result.stdout == (
        "ref\ttemplate\tscheduled on\trecipients\tsubject\n"
        f"e1\twelcome\t{TODAY}\tjoe@example.com\t{WELCOME_SUBJECT}\n"
    )
    assert result.stderr == (
        "Outside the send window (funnelctl.yaml send.window): these wait until it opens.\n"
    )
    assert smtp.received == []
    assert dump(ws) == before


def test_a_dry_run_on_a_terminal_is_a_line_per_email_with_its_ref_whole(
    run: Callable[..., Result], ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from funnelctl import output

    for n in range(3):
        welcome(run, f"c{n}@example.com", f"Customer {n}")
    monkeypatch.setattr(output, "_terminal", lambda: True)
    monkeypatch.setattr(
        output, "stdout_console", lambda: output._console_class()(file=sys.stdout, width=80)
    )

    shown = run("send", "--dry-run", env={"LINES": "24"}).stdout.splitlines()

    # the subject gives way (it used to wrap to four lines an email, three screens tall)
    assert all(len(line) <= 80 for line in shown)
    rows = [line for line in shown if "@example.com" in line]
    assert [row.split("│")[1].strip() for row in rows] == ["e1", "e2", "e3"]
    assert all(f"c{n}@example.com" in rows[n] and "Welcome aboard" in rows[n] for n in range(3))
    assert len(shown) == 5 + 3  # title, three rules, header; a line per email


def test_a_dry_run_outside_the_window_with_nothing_due_says_only_that(
    run: Callable[..., Result], ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FUNNELCTL_NOW", f"{TODAY}T08:00")

    result = run("send", "--dry-run")

    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == (
        "Nothing would be sent now.\nOutside the send window (funnelctl.yaml send.window).\n"
    )


def test_stale_emails_are_skipped_with_a_reason_and_the_last_allowed_day_is_sent(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FUNNELCTL_TODAY", "2026-02-20")  # queued then, never sent
    welcome(run, "old@example.com", "Old Timer")
    monkeypatch.setenv("FUNNELCTL_TODAY", "2026-02-27")  # exactly max_late_days (3) ago
    welcome(run, "late@example.com", "Late Comer")
    monkeypatch.setenv("FUNNELCTL_TODAY", TODAY)
    welcome(run, "joe@example.com", "Joe Bloggs")

    result, counts = send(run)

    assert (result.exit_code, counts) == (0, summary(sent=2, skipped=1))
    rows = by_customer(outbox(run))
    assert {e: (r["status"], r["reason"]) for e, r in rows.items()} == {
        "old@example.com": (
            "skipped",
            "stale: due 2026-02-20, 10 days ago (more than max_late_days 3)",
        ),
        "late@example.com": ("sent", None),
        "joe@example.com": ("sent", None),
    }
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == ["joe@example.com", "late@example.com"]


# -- 13. pacing ------------------------------------------------------------------------------------


def test_rate_per_minute_paces_the_batch_without_real_waiting(
    run: Callable[..., Result], workspace: Path, smtp: SmtpServer
) -> None:
    from funnelctl.cli.common import workspace_library
    from funnelctl.sending import SendOptions
    from funnelctl.sending import send as send_outbox
    from funnelctl.store import Store
    from funnelctl.workspace import open_workspace

    configure(workspace, smtp_yaml(smtp.port), send="rate_per_minute: 120\n")
    for i in range(1, 4):
        welcome(run, f"c{i}@example.com", f"Customer {i}")
    ws = open_workspace(workspace, workspace)
    store = Store.open(ws.db_path)
    slept: list[float] = []
    try:
        report = send_outbox(
            store,
            workspace_library(ws),
            ws,
            today=TODAY,
            now=datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Lisbon")),
            clock=lambda: datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Lisbon")),
            options=SendOptions(),
            environ={},
            sleep=slept.append,
        )
    finally:
        store.close()
    assert slept == [0.5, 0.5]
    assert report.summary() == summary(sent=3)
    assert len(smtp.received) == 3


# -- 14. sendmail and maildir transports -----------------------------------------------------------


def fake_sendmail(folder: Path, exit_code: int = 0, stderr: str = "") -> Path:
    """An executable that behaves like sendmail: records argv and the message, exits as told."""
    script = folder / "fake-sendmail"
    script.write_text(
        "#!/bin/sh\n"
        f"printf '%s\\n' \"$@\" > '{folder}/argv.txt'\n"
        f"cat > '{folder}/message.eml'\n"
        + (f"echo '{stderr}' >&2\n" if stderr else "")
        + f"exit {exit_code}\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script


def test_sendmail_transport_hands_the_message_to_the_command(
    run: Callable[..., Result], workspace: Path, tmp_path: Path
) -> None:
    script = fake_sendmail(tmp_path)
    configure(workspace, f'kind: sendmail\ncommand: "{script} -i"\n')
    welcome(run, "joe@example.com", "Joe Bloggs")

    result, counts = send(run)

    assert (result.exit_code, counts) == (0, summary(sent=1))
    # the envelope sender (-f, so bounces come back) and the recipients come from funnelctl
    assert (tmp_path / "argv.txt").read_text().splitlines() == [
        "-i",
        "-f",
        "ana@example.com",
        "--",
        "joe@example.com",
    ]
    from email import message_from_bytes, policy

    message = message_from_bytes((tmp_path / "message.eml").read_bytes(), policy=policy.default)
    assert (message["To"], message["Subject"]) == ("Joe Bloggs <joe@example.com>", WELCOME_SUBJECT)
    assert message["Message-ID"] == outbox(run)[0]["message_id"]
    assert statuses(run) == {"joe@example.com": "sent"}


def test_sendmail_that_fails_after_reading_the_message_leaves_it_uncertain(
    run: Callable[..., Result], workspace: Path, tmp_path: Path
) -> None:
    # it read the whole message before failing: it may have queued it all the same
    script = fake_sendmail(tmp_path, exit_code=1, stderr="sendmail: fatal: no such user")
    configure(workspace, f'kind: sendmail\ncommand: "{script} -i"\n')
    welcome(run, "joe@example.com", "Joe Bloggs")

    result, counts = send(run)

    assert (result.exit_code, counts) == (1, summary(uncertain=1))
    row = outbox(run)[0]
    reason = f"{script} failed after reading the message: sendmail: fatal: no such user"
    assert (row["status"], row["reason"]) == ("uncertain", reason)
    assert result.stderr == f"email e1: {reason}\n"


def test_sendmail_that_says_try_later_defers_the_email(
    run: Callable[..., Result], workspace: Path, tmp_path: Path
) -> None:
    script = fake_sendmail(tmp_path, exit_code=75, stderr="queue is full")
    configure(workspace, f'kind: sendmail\ncommand: "{script} -i"\n')
    welcome(run, "joe@example.com", "Joe Bloggs")
    result, counts = send(run)
    row = outbox(run)[0]
    assert (result.exit_code, counts, row["status"]) == (0, summary(deferred=1), "queued")
    assert row["reason"] == f"{script}: queue is full; retrying after 2026-03-02T10:05:00+00:00"


def test_sendmail_recipients_come_from_funnelctl_never_from_the_headers(
    run: Callable[..., Result], workspace: Path, tmp_path: Path
) -> None:
    script = fake_sendmail(tmp_path)
    # the flags of the usual command, /usr/sbin/sendmail -t -i: -t would take recipients
    # from headers that customer data may have shaped, so funnelctl drops it
    configure(workspace, f'kind: sendmail\ncommand: "{script} -t -i"\n')
    add_crafted(workspace)
    crafted(run, "joe@example.com", "Joe Bloggs", "audited")
    ok(send(run)[0])

    from email import message_from_bytes, policy

    argv = (tmp_path / "argv.txt").read_text().splitlines()
    assert argv == ["-i", "-f", "ana@example.com", "--", "joe@example.com", "audit@example.com"]
    raw = (tmp_path / "message.eml").read_bytes()
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Bcc"] is None  # a Bcc address is never inside the message
    assert b"\r\n" not in raw  # sendmail reads local line endings


def test_maildir_transport_writes_a_real_maildir(
    run: Callable[..., Result], workspace: Path
) -> None:
    import mailbox
    import stat

    configure(workspace, "kind: maildir\npath: review\n")
    add_crafted(workspace)
    welcome(run, "joe@example.com", "Joe Bloggs")
    crafted(run, "zoe@example.com", "Zoe Last", "audited")  # with a Bcc

    result, counts = send(run)

    assert (result.exit_code, counts) == (0, summary(sent=2))
    folder = workspace / "review"
    assert sorted(p.name for p in folder.iterdir()) == ["cur", "new", "tmp"]
    assert list((folder / "tmp").iterdir()) == []
    box = mailbox.Maildir(folder, create=False)
    messages = list(box)
    assert sorted(m["Message-ID"] for m in messages) == sorted(r["message_id"] for r in outbox(run))
    for path in (folder / "new").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        raw = path.read_bytes()
        assert b"\r\n" not in raw  # local line endings, as mail clients store them
        assert b"audit@example.com" not in raw and b"X-Envelope-To" not in raw
    assert set(statuses(run).values()) == {"sent"}


# -- 15. SMTP AUTH ---------------------------------------------------------------------------------

PASSWORD = "pw-Zq8!n0t-in-any-file"


@pytest.fixture
def auth_smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(users={"ana@example.com": PASSWORD}).start()
    try:
        yield server
    finally:
        server.stop()


def test_smtp_login_uses_the_password_from_the_environment_and_never_shows_it(
    run: Callable[..., Result],
    workspace: Path,
    auth_smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    dump: Callable[[Path], str],
) -> None:
    configure(
        workspace,
        smtp_yaml(auth_smtp.port, "username: ana@example.com\npassword_env: TEST_SMTP_PW\n"),
    )
    monkeypatch.setenv("TEST_SMTP_PW", PASSWORD)
    welcome(run, "joe@example.com", "Joe Bloggs")

    result, counts = send(run)

    assert (result.exit_code, counts) == (0, summary(sent=1))
    assert auth_smtp.handler.logins == ["ana@example.com"]
    assert auth_smtp.received[0].login == "ana@example.com"
    for text in (
        result.stdout,
        result.stderr,
        dump(workspace),
        (workspace / "funnelctl.yaml").read_text(),
    ):
        assert PASSWORD not in text


def test_smtp_login_without_the_password_variable_says_which_variable(
    run: Callable[..., Result],
    workspace: Path,
    auth_smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure(
        workspace,
        smtp_yaml(auth_smtp.port, "username: ana@example.com\npassword_env: TEST_SMTP_PW\n"),
    )
    monkeypatch.delenv("TEST_SMTP_PW", raising=False)
    welcome(run, "joe@example.com", "Joe Bloggs")

    result = run("send", "--format", "json")

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "Error: transport.username is set but the environment variable TEST_SMTP_PW is empty; "
        "export the SMTP password there.\n"
    )
    assert (auth_smtp.received, statuses(run)) == ([], {"joe@example.com": "queued"})


def test_a_refused_login_leaves_the_email_queued(
    run: Callable[..., Result],
    workspace: Path,
    auth_smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure(
        workspace,
        smtp_yaml(auth_smtp.port, "username: ana@example.com\npassword_env: TEST_SMTP_PW\n"),
    )
    monkeypatch.setenv("TEST_SMTP_PW", "wrong-password")
    welcome(run, "joe@example.com", "Joe Bloggs")

    result = run("send")

    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: The SMTP server 127.0.0.1 refused the login for ana@example.com: 535"
    )
    assert "wrong-password" not in result.stderr
    assert statuses(run) == {"joe@example.com": "queued"}
    monkeypatch.setenv("TEST_SMTP_PW", PASSWORD)
    result, counts = send(run)
    assert (result.exit_code, counts) == (0, summary(sent=1))


# -- 16. preview and listing -----------------------------------------------------------------------


def test_template_render_prints_headers_and_body(run: Callable[..., Result], ws: Path) -> None:
    customer(run, "joe@example.com", "Joe Bloggs", "--company", "Acme Lda")

    result = run("template", "render", "welcome", "--customer", "joe@example.com")

    assert (result.exit_code, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        f"Template: {ws / 'templates' / 'welcome.txt'}",
        "Envelope-To: joe@example.com",
    ]
    assert f"Subject: {WELCOME_SUBJECT}" in lines
    assert "To: Joe Bloggs <joe@example.com>" in lines
    assert f"From: {SENDER}" in lines
    assert f"Date: {DATE_HEADER}" in lines
    body = lines[lines.index("") + 1 :]
    assert body[0] == "Hi Joe,"
    assert any("at Acme Lda." in line for line in body)
    assert "--- HTML part ---" in body
    assert statuses(run) == {}  # a preview queues nothing


def test_outbox_list_filters_by_status(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    welcome(run, "joe@example.com", "Joe Bloggs")
    welcome(run, "zoe@example.com", "Zoe Last")
    result, counts = send(run, "--limit", "1")
    assert (result.exit_code, counts) == (0, summary(sent=1))

    assert [(r["customer"], r["status"]) for r in outbox(run, "--status", "queued")] == [
        ("zoe@example.com", "queued")
    ]
    assert [(r["customer"], r["status"]) for r in outbox(run, "--status", "sent")] == [
        ("joe@example.com", "sent")
    ]
    assert outbox(run, "--status", "failed") == []
    bad = run("outbox", "list", "--status", "bogus")
    assert bad.exit_code == 2
    assert bad.stderr == (
        "Error: --status must be one of queued, sending, sent, failed, skipped, uncertain, "
        "superseded, held, bounced\n"
    )


def test_an_uncertain_email_can_be_settled_by_hand(run, ws, smtp):
    smtp.handler.drop_after_data = 1
    welcome(run, "ann@example.com", "Ann Lee")
    first, _ = send(run)
    assert first.exit_code == 1 and statuses(run) == {"ann@example.com": "uncertain"}
    wrong = run("outbox", "resolve", "1", "--sent", "--skip")
    assert (wrong.exit_code, wrong.stderr) == (
        2,
        "Error: Give exactly one of --sent, --resend or --skip.\n",
    )
    ok(run("outbox", "resolve", "1", "--sent"))
    assert statuses(run) == {"ann@example.com": "sent"}
    again, counts = send(run)
    assert again.exit_code == 0 and counts["uncertain"] == 0  # cron is quiet again
    twice = run("outbox", "resolve", "1", "--resend")
    assert (twice.exit_code, twice.stderr) == (
        1,
        "Error: Email e1 is sent; --resend applies to uncertain or failed emails.\n",
    )


# -- found in the second review -------------------------------------------------------------


def test_a_template_that_fails_on_one_customers_data_holds_only_that_template(run, ws, smtp):
    path = ws / "templates" / "welcome.txt"
    path.write_text(
        path.read_text().replace("Thank you for choosing us.", "You pay {{ customer.mrr * 12 }}.")
    )
    welcome(run, "nomrr@example.com", "No Mrr")  # no MRR: None * 12
    crafted(run, "cc@example.com", "Cee Cee", "audited")
    result, counts = send(run)
    assert result.exit_code == 1
    assert (counts["held"], counts["sent"]) == (1, 1)
    assert f"{path}:" in result.stderr and "Traceback" not in result.stderr


def test_a_non_ascii_sender_fails_the_email_cleanly(run, ws, smtp):
    configure(ws, smtp_yaml(smtp.port))
    text = (ws / "funnelctl.yaml").read_text().replace(SENDER, "Ana <ána@example.com>")
    (ws / "funnelctl.yaml").write_text(text)
    welcome(run, "ann@example.com", "Ann Lee")
    result, counts = send(run)
    assert (result.exit_code, counts["failed"], counts["uncertain"]) == (1, 1, 0)
    assert "non-ASCII" in result.stderr and smtp.received == []


def test_limit_counts_only_emails_that_can_go(run, ws, smtp):
    crafted(run, "broken@example.com", "Bro Ken", "broken")  # queued first, held
    welcome(run, "ann@example.com", "Ann Lee")
    result, counts = send(run, "--limit", "1")
    assert (counts["held"], counts["sent"]) == (1, 1)


def test_a_resend_is_not_skipped_as_stale(run, ws, smtp, monkeypatch):
    smtp.handler.drop_after_data = 1
    welcome(run, "ann@example.com", "Ann Lee")
    send(run)  # uncertain
    ok(run("outbox", "resolve", "1", "--resend"))
    monkeypatch.setenv("FUNNELCTL_NOW", "2026-03-10T10:00")  # a week later
    result, counts = send(run, "--today", "2026-03-10")
    assert (counts["sent"], counts["skipped"]) == (1, 0)


def test_data_cannot_add_recipients(run, ws, smtp):
    (ws / "templates" / "with-cc.txt").write_text(
        "Subject: Hi\nTo: {{ customer.name }} <{{ customer.email }}>\n\nHello.\n"
    )
    crafted(run, "bob@example.com", "Bob <evil@example.org>", "copied")
    crafted(run, "ann@example.com", "Ann Lee", "copied")
    result, counts = send(run)
    # the bad address fails that one email with its reason; the template's others still go
    assert (counts["failed"], counts["held"], counts["sent"]) == (1, 0, 1)
    assert [r.rcpt_tos for r in smtp.received] == [["ann@example.com"]]
    assert "cannot go into an address header" in result.stderr


def test_an_empty_value_never_prints_as_none(run, ws, smtp):
    (ws / "templates" / "with-cc.txt").write_text(
        "Subject: News for {{ customer.company }}\n\nHi.\n"
    )
    crafted(run, "nocompany@example.com", "No Company", "copied")
    result, counts = send(run)
    assert counts["held"] == 1 and smtp.received == []
    assert "empty for this customer" in result.stderr
    check = run("playbook", "validate")
    assert check.exit_code == 1 and "with-cc.txt:1:" in check.stderr


# -- 17. hostile data, broken disks, busy databases, servers that misbehave ----------------------

ENCODED_BCC = "=?utf-8?q?Acme=0D=0ABcc:_evil@evil.example?="


def test_an_encoded_line_break_in_data_adds_no_header_and_no_recipient(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    customer(run, "rita@example.com", "Rita Acme", "--company", ENCODED_BCC)
    ok(run("enroll", "rita@example.com", "support"))  # the Subject prints the company
    customer(run, "joe@example.com", "Joe Bloggs", "--company", "Bloggs Ltd")
    ok(run("enroll", "joe@example.com", "support"))

    result, counts = send(run)

    assert (result.exit_code, counts) == (1, summary(sent=1, failed=1))
    assert [r.rcpt_tos for r in smtp.received] == [["joe@example.com"]]
    assert b"evil" not in smtp.received[0].content
    row = by_customer(outbox(run))["rita@example.com"]
    assert (row["status"], row["reason"]) == (
        "failed",
        "the Subject header would contain a line break or control character once its encoded "
        "words (=?...?=) are decoded (from the customer's data)",
    )


def test_sendmail_never_learns_recipients_from_a_header_data_shaped(
    run: Callable[..., Result], workspace: Path, tmp_path: Path
) -> None:
    script = fake_sendmail(tmp_path)
    configure(workspace, f'kind: sendmail\ncommand: "{script} -t -i"\n')
    customer(run, "rita@example.com", "Rita Acme", "--company", ENCODED_BCC)
    ok(run("enroll", "rita@example.com", "support"))

    result, counts = send(run)

    assert counts == summary(failed=1)
    assert not (tmp_path / "argv.txt").exists()  # sendmail was never run for it


def test_the_written_message_must_have_exactly_the_headers_funnelctl_set() -> None:
    from funnelctl.mail import HeaderProblem, build_message, wire_bytes

    rendered = _rendered(subject="Hello")
    message = build_message(rendered, "<1@example.com>", datetime(2026, 3, 2, 10, 0))
    assert b"Subject: Hello\r\n" in wire_bytes(message)
    # whatever a library version does with a value, a header line it adds is refused
    message.replace_header("Subject", "x")
    message._headers[0] = ("Subject", "Hello\r\nBcc: evil@evil.example")  # type: ignore[attr-defined]
    with pytest.raises(HeaderProblem, match="would add header lines \\(bcc\\)"):
        wire_bytes(message)


def _rendered(**changes: Any) -> Any:
    from funnelctl.mail import Rendered

    values = {
        "subject": "Hi",
        "sender": SENDER,
        "to": ["joe@example.com"],
        "cc": [],
        "bcc": [],
        "reply_to": None,
        "text": "Olá, tudo bem?\n",
        "html": None,
    }
    return Rendered(**{**values, **changes})


def test_bodies_are_seven_bit_so_no_server_needs_8bitmime(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    # short lines of accented text: the email library's default would be raw 8bit
    (ws / "templates" / "with-bcc.txt").write_text(
        "Subject: Olá\nContent-Type: text/markdown\n\nOlá {{ customer.first_name }},\n\naté já!\n"
    )
    crafted(run, "maria@example.com", "Maria Silva", "audited")
    welcome(run, "joao@example.com", "João Lima", "--language", "pt")  # long lines

    result, counts = send(run)

    assert counts == summary(sent=2)
    for got in smtp.received:
        assert max(got.content) < 128  # nothing 8-bit crosses the wire
        parts = list(got.message.iter_parts())
        assert [p["Content-Transfer-Encoding"] for p in parts] == ["quoted-printable"] * 2
    short = next(r for r in smtp.received if "maria@example.com" in r.rcpt_tos)
    assert next(short.message.iter_parts()).get_content() == "Olá Maria,\n\naté já!\n"


def test_a_cc_holding_two_addresses_fails_that_email_and_the_template_still_goes(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    crafted(run, "joe@example.com", "Joe Bloggs", "managed")
    ok(run("customer", "edit", "joe@example.com", "--set", "manager=Ann <a@example.com>, b@x.org"))
    crafted(run, "zoe@example.com", "Zoe Last", "managed")
    ok(run("customer", "edit", "zoe@example.com", "--set", "manager=boss@example.com"))

    result, counts = send(run)

    assert (result.exit_code, counts) == (1, summary(sent=1, failed=1))
    assert [sorted(r.rcpt_tos) for r in smtp.received] == [["boss@example.com", "zoe@example.com"]]
    row = by_customer(outbox(run))["joe@example.com"]
    assert row["status"] == "failed"
    assert row["reason"].startswith("the Cc header: 'Ann <a@example.com>, b@x.org' cannot go into")


def test_a_password_written_where_the_variable_name_belongs_is_never_echoed(
    run: Callable[..., Result], workspace: Path, auth_smtp: SmtpServer
) -> None:
    configure(
        workspace,
        smtp_yaml(auth_smtp.port, "username: ana@example.com\npassword_env: Tr0ub4dorSecret\n"),
    )
    welcome(run, "joe@example.com", "Joe Bloggs")

    result = run("send")

    assert result.exit_code == 1
    assert "Tr0ub4dorSecret" not in result.stderr + result.stdout
    assert result.stderr == (
        "Error: transport.username is set but the environment variable named in "
        "transport.password_env (its name is not shown: it does not look like a variable's "
        "name, such as FUNNELCTL_SMTP_PASSWORD, and may be the password itself) is empty; "
        "export the SMTP password there.\n"
    )


def test_a_non_ascii_password_is_refused_before_any_email_is_claimed(
    run: Callable[..., Result],
    workspace: Path,
    auth_smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure(
        workspace,
        smtp_yaml(auth_smtp.port, "username: ana@example.com\npassword_env: TEST_SMTP_PW\n"),
    )
    monkeypatch.setenv("TEST_SMTP_PW", "pässwörd")
    welcome(run, "joe@example.com", "Joe Bloggs")

    for _ in range(2):  # run after run: never an email stuck in `sending`
        result = run("send")
        assert result.exit_code == 1
        assert result.stderr == (
            "Error: The SMTP user name or the password in the environment variable "
            "TEST_SMTP_PW has non-ASCII characters, which SMTP login (Python's smtplib) "
            "cannot send; use an ASCII password, such as an app password.\n"
        )
    assert [(r["status"], r["attempts"]) for r in outbox(run)] == [("queued", 0)]


def test_a_server_that_never_answers_costs_one_timeout_for_the_whole_run(
    run: Callable[..., Result], workspace: Path
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(silent.accept()[0])  # and never say a word

    threading.Thread(target=accept, daemon=True).start()
    try:
        port = silent.getsockname()[1]
        configure(workspace, smtp_yaml(port).replace("timeout_s: 5", "timeout_s: 0.5"))
        for n in range(3):
            welcome(run, f"c{n}@example.com", f"Customer {n}")

        result, counts = send(run)
    finally:
        silent.close()

    assert (result.exit_code, counts) == (0, summary(deferred=3))
    assert len(accepted) == 1  # one connection tried, not one per email
    rows = outbox(run)
    assert {(r["status"], r["attempts"], r["next_attempt_at"]) for r in rows} == {
        ("queued", 1, "2026-03-02T10:05:00+00:00")
    }
    assert result.stderr == (
        f"cannot connect to 127.0.0.1:{port}: Connection unexpectedly closed: timed out "
        "(3 email(s) kept for a later run)\n"
    )


def test_a_damaged_database_stops_send_at_its_first_error_and_every_later_run(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    from test_store import corrupt_table

    welcome(run, "joe@example.com", "Joe Bloggs")
    welcome(run, "zoe@example.com", "Zoe Last")
    db = ws / "funnel.db"
    corrupt_table(db, "events")  # claiming works; recording `sent` does not

    first = run("send")
    assert (first.exit_code, first.stdout) == (1, "")
    assert first.stderr.startswith(
        f"Error: Email e1 was delivered, but recording that failed: The database {db} is "
        "damaged (database disk image is malformed); funnelctl stopped before doing anything "
        "more."
    )
    assert first.stderr.endswith("settle it with 'funnelctl outbox resolve 1 --sent'.\n")
    for _ in range(2):  # no later run sends another email it could not record
        later = run("send")
        assert (later.exit_code, later.stdout) == (1, "")
        assert later.stderr.startswith(f"Error: The database {db} is damaged (")
    assert [r.rcpt_tos for r in smtp.received] == [["joe@example.com"]]


def hold_the_database(ws: Path, held: threading.Event) -> None:
    """Another writer (an import of 100k rows, say) takes the write lock and keeps it far
    past the busy timeout; returns once it holds it (``held`` is set)."""

    def holder() -> None:
        conn = sqlite3.connect(ws / "funnel.db", isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(1.5)
        conn.execute("COMMIT")
        conn.close()

    threading.Thread(target=holder, daemon=True).start()
    held.wait(5)


def test_a_delivered_email_is_recorded_even_while_another_writer_holds_the_database(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:

    from funnelctl.store import db as store_module

    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 200)
    welcome(run, "joe@example.com", "Joe Bloggs")
    held = threading.Event()
    smtp.handler.on_data = lambda: hold_the_database(ws, held)

    result, counts = send(run)

    assert held.is_set()
    assert (result.exit_code, counts) == (0, summary(sent=1))
    assert statuses(run) == {"joe@example.com": "sent"}


def test_when_the_next_claim_gives_up_as_busy_the_delivered_email_is_still_recorded(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delivered email is recorded in the same commit as the next email's claim; when
    that commit gives up (another writer holds the database), the record is written
    alone, patiently, and the next email stays queued for a later run."""

    from funnelctl.store import db as store_module

    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 200)
    welcome(run, "ann@example.com", "Ann Lee")
    welcome(run, "bob@example.com", "Bob Ray")
    held = threading.Event()
    smtp.handler.on_data = lambda: None if held.is_set() else hold_the_database(ws, held)

    result = run("send", "--format", "json")

    assert (result.exit_code, result.stdout) == (75, "")  # busy: try again later
    assert "busy" in result.stderr, result.stderr
    assert statuses(run) == {"ann@example.com": "sent", "bob@example.com": "queued"}
    assert [r.rcpt_tos for r in smtp.received] == [["ann@example.com"]]
    smtp.handler.on_data = None
    assert send(run)[1] == summary(sent=1)
    assert [r.rcpt_tos for r in smtp.received] == [["ann@example.com"], ["bob@example.com"]]


def test_a_full_disk_while_recording_sent_is_one_sentence_and_the_email_is_never_resent(
    run: Callable[..., Result],
    workspace: Path,
    smtp: SmtpServer,
    small_disk: Callable[[int], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from conftest import fill

    root = small_disk(2048) / "ws"
    ok(run("init", str(root)))
    monkeypatch.setenv("FUNNELCTL_HOME", str(root))
    configure(root, smtp_yaml(smtp.port))
    welcome(run, "joe@example.com", "Joe Bloggs")
    smtp.handler.on_data = lambda: fill(root)  # the disk fills while the server takes it

    result = run("send")

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: Email e1 was delivered, but recording that failed: The disk holding "
        f"{root / 'funnel.db'} is full: what the command had not finished was rolled back. "
        "Free some space and run it again. The next 'funnelctl send' shows it as uncertain "
        "and sends it again only if asked; settle it with 'funnelctl outbox resolve 1 --sent'.\n"
    )
    (root / "filler").unlink()
    smtp.handler.on_data = None
    result, counts = send(run)
    assert (result.exit_code, counts) == (1, summary(uncertain=1))
    assert len(smtp.received) == 1


def test_a_full_disk_under_the_maildir_keeps_the_email_queued_and_leaves_no_partial_file(
    run: Callable[..., Result],
    workspace: Path,
    small_disk: Callable[[int], Path],
) -> None:
    from conftest import fill

    review = small_disk(64)
    configure(workspace, f"kind: maildir\npath: {review}\n")
    welcome(run, "joe@example.com", "Joe Bloggs")
    for sub in ("tmp", "new", "cur"):
        (review / sub).mkdir()
    fill(review)

    result = run("send")

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith(f"Error: Cannot write {review / 'new'}/")
    assert result.stderr.endswith(": the disk is full. Free some space and try again.\n")
    assert [(r["status"], r["attempts"]) for r in outbox(run)] == [("queued", 0)]
    assert [list((review / sub).iterdir()) for sub in ("tmp", "new", "cur")] == [[], [], []]

    (review / "filler").unlink()
    result, counts = send(run)
    assert (result.exit_code, counts) == (0, summary(sent=1))
    assert len(list((review / "new").iterdir())) == 1


def test_an_interrupted_maildir_run_is_settled_by_looking_in_the_maildir(
    run: Callable[..., Result], workspace: Path, dump: Callable[[Path], str]
) -> None:
    configure(workspace, "kind: maildir\npath: review\n")
    welcome(run, "joe@example.com", "Joe Bloggs")
    welcome(run, "zoe@example.com", "Zoe Last")
    ok(send(run, "--limit", "1")[0])
    # as if two runs had died mid-message: one after writing the file, one before
    conn = sqlite3.connect(workspace / "funnel.db")
    conn.execute("UPDATE outbox SET status = 'sending', sent_at = NULL")
    conn.commit()
    conn.close()

    result, counts = send(run, "--limit", "1")

    assert (result.exit_code, counts) == (0, summary(sent=1))
    rows = by_customer(outbox(run))
    assert (rows["joe@example.com"]["status"], rows["zoe@example.com"]["status"]) == (
        "sent",
        "sent",
    )
    assert len(list((workspace / "review" / "new").iterdir())) == 2
    assert rows["joe@example.com"]["sent_at"] == SENT_AT  # settled now, when it was found


# -- 18. found in review: hostile values the email library chokes on, servers that go silent ----


def test_an_encoded_word_cannot_add_an_address_inside_a_header(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    crafted(run, "joe@example.com", "Joe Bloggs", "managed")
    evil = "=?utf-8?q?evil=40evil.example=2C_b?=@example.com"
    ok(run("customer", "edit", "joe@example.com", "--set", f"manager={evil}"))
    crafted(run, "zoe@example.com", "Zoe Last", "managed")
    ok(run("customer", "edit", "zoe@example.com", "--set", "manager=boss@example.com"))

    result, counts = send(run)

    assert counts == summary(sent=1, failed=1)
    assert all("evil" not in rcpt for r in smtp.received for rcpt in r.rcpt_tos)
    assert b"evil" not in b"".join(r.content for r in smtp.received)


@pytest.mark.parametrize("header", ["Cc", "Reply-To", "To"], ids=["cc", "reply-to", "to"])
def test_an_encoded_address_is_refused_even_when_it_bypasses_the_template_checks(header):
    from funnelctl.mail import HeaderProblem, build_message

    evil = "=?utf-8?q?evil=40evil.example=2C_b?=@example.com"
    field = {"Cc": "cc", "To": "to"}.get(header)
    changes = {field: [evil]} if field else {"reply_to": evil}
    with pytest.raises(HeaderProblem, match=f"the {header} header would not go to exactly"):
        build_message(_rendered(**changes), "<1@example.com>", datetime(2026, 3, 2, 10, 0))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "=?utf-8?b? (=2C.?=("),  # decodes to bytes that are not UTF-8
        ("company", "=??b?40?=é"),
    ],
    ids=["undecodable-name", "undecodable-company"],
)
def test_values_the_email_library_chokes_on_fail_that_email_before_it_is_claimed(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer, field: str, value: str
) -> None:
    for email, name in (("ann@example.com", "Ann"), ("bob@example.com", "Bob")):
        customer(run, email, name, "--company", "Fine Ltd")
        ok(run("enroll", email, "support"))
    ok(run("customer", "edit", "ann@example.com", "--set", f"{field}={value}"))

    result, counts = send(run)

    assert (result.exit_code, counts) == (1, summary(sent=1, failed=1))
    assert [r.rcpt_tos for r in smtp.received] == [["bob@example.com"]]
    assert "Traceback" not in result.stderr
    assert [r["status"] for r in outbox(run)] == ["failed", "sent"]  # none stuck in sending


def test_a_control_character_in_a_header_value_is_refused():
    from funnelctl.mail import HeaderProblem, build_message

    for subject in ("Acme\x0bLtd", "Acme\x1bLtd", "Acme\x7fLtd"):
        with pytest.raises(HeaderProblem, match="the Subject header would contain"):
            build_message(_rendered(subject=subject), "<1@example.com>", datetime(2026, 3, 2))


@pytest.mark.parametrize(
    ("header", "value"),
    [("Reply-To", "a@"), ("Cc", "a@[1.2.3.4"), ("Cc", "x@[")],
    ids=["reply-to-a@", "cc-open-bracket-ip", "cc-open-bracket"],
)
def test_an_address_the_email_library_cannot_parse_fails_that_email_only(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer, header: str, value: str
) -> None:
    (ws / "templates" / "with-manager.txt").write_text(
        f"Subject: Your account\n{header}: {{{{ customer.fields.manager }}}}\n\nHello.\n"
    )
    crafted(run, "joe@example.com", "Joe Bloggs", "managed")
    ok(run("customer", "edit", "joe@example.com", "--set", f"manager={value}"))
    crafted(run, "zoe@example.com", "Zoe Last", "managed")
    ok(run("customer", "edit", "zoe@example.com", "--set", "manager=boss@example.com"))

    planned = run("send", "--dry-run", "-f", "json")
    assert planned.exit_code == 0 and "Traceback" not in planned.stderr
    result, counts = send(run)

    assert (result.exit_code, counts) == (1, summary(sent=1, failed=1))
    assert by_customer(outbox(run))["joe@example.com"]["status"] == "failed"


@pytest.mark.parametrize(
    ("command", "argv"),
    [("-ti", ["-i"]), ("-it -oi", ["-i", "-oi"]), ("--read-recipients -i", ["-i"])],
)
def test_sendmail_never_reads_recipients_from_headers_in_any_spelling(
    run: Callable[..., Result], workspace: Path, tmp_path: Path, command: str, argv: list[str]
) -> None:
    script = fake_sendmail(tmp_path)
    configure(workspace, f'kind: sendmail\ncommand: "{script} {command}"\n')
    welcome(run, "joe@example.com", "Joe Bloggs")
    ok(send(run)[0])
    assert (tmp_path / "argv.txt").read_text().splitlines() == [
        *argv,
        "-f",
        "ana@example.com",
        "--",
        "joe@example.com",
    ]


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("/usr/sbin/sendmail -vt", "'-vt' may tell sendmail to read the recipients"),
        ("'unclosed", "No closing quotation"),
    ],
)
def test_a_sendmail_command_funnelctl_cannot_trust_is_a_settings_problem(
    run: Callable[..., Result], workspace: Path, command: str, problem: str
) -> None:
    configure(workspace, f'kind: sendmail\ncommand: "{command}"\n')
    result = run("send")
    assert (result.exit_code, "Traceback" in result.stderr) == (1, False)
    assert problem in result.stderr and "transport: command" in result.stderr


@pytest.mark.parametrize(
    ("mode", "statuses_after", "messages"),
    [
        ("hang-data", ["queued", "queued", "queued"], 0),  # nothing of the message left
        ("hang-after", ["uncertain", "queued", "queued"], 1),  # the first may have arrived
        ("bad-helo", ["queued", "queued", "queued"], 0),
    ],
)
def test_a_server_that_goes_silent_or_refuses_us_defers_the_rest_of_the_run(
    run: Callable[..., Result],
    workspace: Path,
    mode: str,
    statuses_after: list[str],
    messages: int,
) -> None:
    from smtp_server import HangingServer

    server = HangingServer(mode)
    try:
        configure(workspace, smtp_yaml(server.port).replace("timeout_s: 5", "timeout_s: 0.5"))
        for n in range(3):
            welcome(run, f"c{n}@example.com", f"Customer {n}")

        result, counts = send(run)
    finally:
        server.stop()

    assert [r["status"] for r in outbox(run)] == statuses_after
    assert (server.connections, server.messages) == (1, messages)
    assert counts["deferred"] == statuses_after.count("queued")
    assert "Traceback" not in result.stderr


def test_ctrl_c_while_an_email_is_handed_over_marks_it_uncertain_and_says_so(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    welcome(run, "joe@example.com", "Joe Bloggs")
    smtp.handler.delay_for["joe@example.com"] = 5  # the server takes its time to answer
    process = spawn("send")
    assert smtp.handler.data_started.wait(20)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)

    assert (process.returncode, out) == (130, "")
    assert err == (
        "Error: Interrupted while email e1 was being sent: it is marked uncertain; check the "
        "recipient's mailbox, then settle it with 'funnelctl outbox resolve 1 --sent' or "
        "'--resend'.\n"
    )
    row = outbox(run)[0]
    assert (row["status"], row["reason"]) == ("uncertain", "interrupted (Ctrl-C) while it was sent")


def test_a_ca_file_that_is_not_pem_names_the_file(
    run: Callable[..., Result], workspace: Path, smtp: SmtpServer
) -> None:
    (workspace / "bad.pem").write_text("not a certificate\n")
    configure(workspace, smtp_yaml(smtp.port).replace("none", "starttls") + "ca_file: bad.pem\n")
    welcome(run, "joe@example.com", "Joe Bloggs")
    result = run("send")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: transport.ca_file {workspace / 'bad.pem'} is not a PEM file of certificates"
    )
    assert statuses(run) == {"joe@example.com": "queued"}


def test_a_temporary_file_left_by_a_killed_maildir_run_never_blocks_the_next(
    run: Callable[..., Result], workspace: Path
) -> None:
    import hashlib

    configure(workspace, "kind: maildir\npath: review\n")
    welcome(run, "joe@example.com", "Joe Bloggs")
    digest = hashlib.sha256(outbox(run)[0]["message_id"].encode()).hexdigest()[:20]
    (workspace / "review" / "tmp").mkdir(parents=True)
    seconds = int(datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Lisbon")).timestamp())
    (workspace / "review" / "tmp" / f"{seconds}.{digest}.funnelctl").write_text("half")

    result, counts = send(run)

    assert (result.exit_code, counts) == (0, summary(sent=1))


def test_an_interrupted_email_not_written_is_still_sent_days_later_not_stale(
    run: Callable[..., Result], workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(workspace, "kind: maildir\npath: review\n")
    welcome(run, "joe@example.com", "Joe Bloggs")
    welcome(run, "zoe@example.com", "Zoe Last")
    ok(send(run, "--limit", "1")[0])
    # a run claimed zoe's email and died before writing it
    conn = sqlite3.connect(workspace / "funnel.db")
    conn.execute(
        "UPDATE outbox SET status = 'sending', attempts = attempts + 1 WHERE status = 'queued'"
    )
    conn.commit()
    conn.close()

    monkeypatch.setenv("FUNNELCTL_NOW", "2026-03-09T10:00")
    result, counts = send(run, "--today", "2026-03-09")

    assert (result.exit_code, counts) == (0, summary(sent=1))  # tried on time: not stale
    assert statuses(run) == {"joe@example.com": "sent", "zoe@example.com": "sent"}


def test_the_last_temporary_failure_fails_the_email_without_promising_a_retry(
    run: Callable[..., Result], workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = fake_sendmail(tmp_path, exit_code=75, stderr="try later")
    configure(workspace, f'kind: sendmail\ncommand: "{script} -i"\n')
    welcome(run, "joe@example.com", "Joe Bloggs")
    for hhmm in ("10:00", "10:05", "10:20", "11:20"):
        monkeypatch.setenv("FUNNELCTL_NOW", f"2026-03-02T{hhmm}")
        send(run)
    fourth = outbox(run)[0]["next_attempt_at"]
    monkeypatch.setenv("FUNNELCTL_NOW", "2026-03-02T15:20")

    result, counts = send(run)

    assert (result.exit_code, counts) == (1, summary(failed=1))
    assert "kept for a later run" not in result.stderr
    row = outbox(run)[0]
    assert (row["status"], row["next_attempt_at"]) == ("failed", fourth)


def test_a_delivered_email_is_an_outbound_touchpoint_and_a_reply_stays_inbound(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    welcome(run, "joe@example.com", "Joe Bloggs")
    ok(send(run)[0])
    shown = json.loads(ok(run("customer", "show", "joe@example.com", "-f", "json")).stdout)
    touches = [t["what"] for t in shown["timeline"] if t["kind"] == "touchpoint"]
    assert touches == ["outbound email: Email 'welcome' sent"]


def test_the_placeholder_sender_never_sends_through_a_real_transport(
    run: Callable[..., Result], workspace: Path, smtp: SmtpServer
) -> None:
    settings = workspace / "funnelctl.yaml"  # as init wrote it: the placeholder sender
    settings.write_text(
        settings.read_text().replace(
            "  kind: maildir\n",
            f"  kind: smtp\n  host: 127.0.0.1\n  port: {smtp.port}\n  security: none\n",
            1,
        )
    )
    welcome(run, "joe@example.com", "Joe Bloggs")
    result = run("send")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "Error: Nothing was sent through smtp: the sender is still 'Your Name <you@example.com>': "
        "set 'sender' in funnelctl.yaml to your name and address (customers would see it, and "
        "reply to it).\n"
    )
    assert smtp.received == [] and statuses(run) == {"joe@example.com": "queued"}


def test_a_new_workspace_lives_in_the_machines_time_zone(run, tmp_path, monkeypatch):
    from funnelctl.workspace import local_zone

    monkeypatch.setenv("TZ", "America/Sao_Paulo")
    ok(run("init", str(tmp_path / "br")))
    assert "timezone: America/Sao_Paulo\n" in (tmp_path / "br" / "funnelctl.yaml").read_text()
    assert local_zone({"TZ": "Not/AZone"}, tmp_path / "nothing") == "UTC"
    (tmp_path / "zoneinfo" / "Europe").mkdir(parents=True)
    (tmp_path / "zoneinfo" / "Europe" / "Lisbon").write_text("")
    (tmp_path / "localtime").symlink_to(tmp_path / "zoneinfo" / "Europe" / "Lisbon")
    assert local_zone({}, tmp_path / "localtime") == "Europe/Lisbon"


def test_the_outbox_list_in_a_pipe_is_plain_rows_with_a_header(
    run: Callable[..., Result], ws: Path, smtp: SmtpServer
) -> None:
    welcome(run, "joe@example.com", "Joe Bloggs")
    send(run)

    shown = ok(run("outbox", "list")).stdout.splitlines()

    assert [line.split("\t")[:6] for line in shown] == [
        ["id", "ref", "customer", "template", "scheduled on", "status"],
        ["1", "e1", "joe@example.com", "welcome", "2026-03-02", "sent"],
    ]


class _StrictServer:
    """A bare SMTP server that refuses the first DATA command (451, before any byte of
    the message) and, like Postfix, keeps that transaction open until RSET: a MAIL
    without one is refused as nested."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.delivered: list[bytes] = []
        self.nested = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        lines = conn.makefile("rb")
        say = lambda text: conn.sendall(text.encode() + b"\r\n")  # noqa: E731
        say("220 strict")
        datas, open_mail = 0, False
        for raw in lines:
            verb = raw.decode().strip().split(" ")[0].upper()
            if verb in ("EHLO", "HELO"):
                say("250 strict")
            elif verb == "MAIL":
                if open_mail:
                    self.nested += 1
                    say("503 5.5.1 Error: nested MAIL command")
                else:
                    open_mail = True
                    say("250 ok")
            elif verb == "RCPT":
                say("250 ok")
            elif verb == "RSET":
                open_mail = False
                say("250 ok")
            elif verb == "DATA":
                datas += 1
                if datas == 1:
                    say("451 4.3.0 not now")
                    continue
                say("354 go on")
                body = b"".join(iter(lines.readline, b".\r\n"))
                self.delivered.append(body)
                open_mail = False
                say("250 queued")
            elif verb == "QUIT":
                say("221 bye")
                break
        conn.close()


def test_a_refused_data_command_ends_its_transaction_so_the_next_email_still_goes(
    run: Callable[..., Result], workspace: Path
) -> None:
    server = _StrictServer()
    configure(workspace, smtp_yaml(server.port))
    welcome(run, "ann@example.com", "Ann Lee")
    welcome(run, "bob@example.com", "Bob Ray")

    result, counts = send(run)

    assert counts == summary(sent=1, deferred=1), result.stderr
    assert server.nested == 0
    assert [b"bob@example.com" in body for body in server.delivered] == [True]

"""Reading a message for what it is: real-shaped replies, automatic answers, bounces and
unsubscribes (tests/mail_samples.py), and the new text without its quoted history."""

from __future__ import annotations

import mail_samples as samples
import pytest

from funnelctl.mailparse import AUTO_REPLY, BOUNCE, REPLY, UNSUBSCRIBE, first_lines, head, parse

CUSTOMER, ME, SENT_ID = "Bob@Customer.example", "ana@example.com", "<welcome.1@example.com>"


@pytest.mark.parametrize(
    "build", [samples.gmail_reply, samples.outlook_reply, samples.apple_mail_reply]
)
def test_a_reply_from_each_client_is_a_reply_with_its_new_text_only(build):
    mail = parse(build(CUSTOMER, ME, SENT_ID, "Thanks! Can we talk on Thursday?"))
    assert mail.kind == REPLY
    assert mail.sender == "bob@customer.example"
    assert SENT_ID in mail.references
    assert mail.text.startswith("Thanks! Can we talk on Thursday?")
    assert "welcome aboard" not in mail.text.lower()  # the quoted history is gone
    assert mail.subject == "Welcome aboard"  # Re:/RE: taken off
    assert mail.date is not None and mail.date.isoformat() == "2026-03-02T10:15:00+00:00"
    assert mail.summary == f"Welcome aboard: {mail.text}"


def test_the_quoted_history_of_each_language_is_cut():
    for attribution in (
        "On Mon, 2 Mar 2026 at 09:00, Ana <a@x.com> wrote:",
        "Em seg., 2 de mar. de 2026 às 09:00, Ana <a@x.com> escreveu:",
        "El lun, 2 mar 2026 a las 9:00, Ana (<a@x.com>) escribió:",
        "-----Original Message-----",
        "-----Mensagem original-----",
    ):
        assert first_lines(f"Sim, obrigado.\n\n{attribution}\nHi, welcome\n") == "Sim, obrigado."
    assert first_lines("Yes.\n-- \nBob, CEO\n") == "Yes."  # and the signature


@pytest.mark.parametrize(
    ("build", "why"),
    [
        (lambda: samples.out_of_office(CUSTOMER, ME, SENT_ID), "Auto-Submitted"),
        (
            lambda: samples.gmail_reply(
                CUSTOMER, ME, SENT_ID, "Back on the 16th.", subject="Out of Office: Welcome"
            ),
            "its subject",
        ),
        (
            lambda: samples.gmail_reply(
                CUSTOMER, ME, SENT_ID, "Estou de férias.", subject="Resposta automática: Olá"
            ),
            "its subject in Portuguese",
        ),
        (lambda: samples.newsletter(ME), "Precedence: bulk"),
    ],
)
def test_automatic_answers_are_not_replies(build, why):
    assert parse(build()).kind == AUTO_REPLY, why


def test_a_raw_8bit_subject_is_read_as_utf8():
    data = samples.gmail_reply(CUSTOMER, ME, SENT_ID, "Sim.", subject="Resposta automática: Olá")
    assert parse(data).kind == AUTO_REPLY


def test_x_autoreply_and_auto_submitted_no():
    reply = samples.gmail_reply(CUSTOMER, ME, SENT_ID, "Sure.")
    assert parse(reply.replace(b"Subject:", b"X-Autoreply: yes\r\nSubject:")).kind == AUTO_REPLY
    assert parse(reply.replace(b"Subject:", b"Auto-Submitted: no\r\nSubject:")).kind == REPLY


def test_a_postfix_bounce_names_the_returned_message_and_recipient():
    mail = parse(samples.postfix_bounce("bob@customer.example", SENT_ID))
    assert mail.kind == BOUNCE and mail.bounce is not None
    assert mail.bounce.permanent and mail.bounce.status == "5.1.1"
    assert mail.bounce.recipient == "bob@customer.example"
    assert mail.bounce.returned_ids == (SENT_ID,)
    assert "User unknown" in mail.bounce.reason and mail.bounce.reason.startswith("5.1.1")


def test_an_exchange_bounce_without_a_returned_id_still_names_the_recipient():
    mail = parse(samples.exchange_bounce("Bob@Customer.example", None))
    assert mail.kind == BOUNCE and mail.bounce is not None
    assert (mail.bounce.status, mail.bounce.recipient) == ("5.1.10", "bob@customer.example")
    assert mail.bounce.returned_ids == ()
    assert "RecipientNotFound" in mail.bounce.reason
    with_id = parse(samples.exchange_bounce("bob@customer.example", SENT_ID))
    assert with_id.bounce is not None and with_id.bounce.returned_ids == (SENT_ID,)


def test_a_delay_is_a_transient_bounce():
    mail = parse(samples.postfix_bounce(CUSTOMER, SENT_ID, status="4.4.1", action="delayed"))
    assert mail.kind == BOUNCE and mail.bounce is not None and not mail.bounce.permanent


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("unsubscribe", ""),
        ("Re: Welcome aboard", "STOP\n\nOn Mon, Mar 2, 2026 Ana wrote:\n> hi"),
        ("Descadastrar", ""),
        ("Re: Olá", "Parar."),
        ("Darse de baja", ""),
        ("Re: Hola", "Cancelar suscripción"),
    ],
)
def test_a_request_to_stop_in_en_pt_es(subject, body):
    assert parse(samples.unsubscribe(CUSTOMER, ME, subject=subject, body=body)).kind == UNSUBSCRIBE


def test_stop_inside_a_sentence_is_a_reply():
    mail = parse(samples.unsubscribe(CUSTOMER, ME, subject="Re: hi", body="Please stop by at 3."))
    assert mail.kind == REPLY


def test_a_message_without_message_id_gets_a_stable_key():
    data = samples.newsletter(ME)
    bare = b"\r\n".join(line for line in data.split(b"\r\n") if not line.startswith(b"Message-ID"))
    assert parse(bare).key == parse(bare).key and parse(bare).key.startswith("sha1:")


def test_a_long_reply_is_summed_up_in_a_line():
    mail = parse(samples.apple_mail_reply(CUSTOMER, ME, None, "word " * 200))
    assert len(mail.summary) <= 200


@pytest.mark.parametrize(
    "data",
    [
        samples.gmail_reply(CUSTOMER, ME, SENT_ID, "Hi"),
        samples.outlook_reply(CUSTOMER, ME, SENT_ID, "Hi"),
        samples.apple_mail_reply(CUSTOMER, ME, SENT_ID, "Hi"),
        samples.postfix_bounce(CUSTOMER, SENT_ID),
        samples.exchange_bounce(CUSTOMER, SENT_ID),
        samples.newsletter(f"Ana <{ME}>, =?utf-8?q?Bruno_Cost=C3=A3?= <b@example.com>"),
    ],
)
def test_the_header_lines_read_alone_say_what_the_whole_message_says(data):
    """`head` (read before deciding to parse the body) agrees with `parse`."""
    alone, whole = head(data), parse(data)
    assert (alone.key, alone.message_id, alone.sender) == (
        whole.key,
        whole.message_id,
        whole.sender,
    )
    assert (alone.recipients, alone.references) == (whole.recipients, whole.references)
    assert alone.report == (whole.kind == BOUNCE)
    bare = b"\r\n".join(line for line in data.split(b"\r\n") if not line.startswith(b"Message-"))
    assert head(bare).key == parse(bare).key


def _report(sender: str, report_type: str, *, in_reply_to: str = SENT_ID) -> bytes:
    """A multipart/report from ``sender`` answering ``in_reply_to``: an Outlook read
    receipt (disposition-notification) or a DSN of success (delivery-status, delivered)."""
    if report_type == "disposition-notification":
        part = (
            "Content-Type: message/disposition-notification\n\n"
            f"Final-Recipient: rfc822;{sender}\nOriginal-Message-ID: {in_reply_to}\n"
            "Disposition: manual-action/MDN-sent-manually; displayed\n"
        )
    else:
        part = (
            "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
            f"Final-Recipient: rfc822; {sender}\nAction: delivered\nStatus: 2.0.0\n"
        )
    text = (
        f"From: {sender}\nTo: {ME}\nSubject: Read: Welcome aboard\n"
        f"Date: Mon, 02 Mar 2026 10:15:00 +0000\nMessage-ID: <r{len(report_type)}@x>\n"
        f"In-Reply-To: {in_reply_to}\nMIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nYour message was read on Monday.\n\n"
        f"--b\n{part}\n--b--\n"
    )
    return text.replace("\n", "\r\n").encode()


@pytest.mark.parametrize("report_type", ["disposition-notification", "delivery-status"])
def test_a_read_receipt_or_a_report_of_success_is_never_a_reply(report_type):
    mail = parse(_report(CUSTOMER, report_type))
    assert mail.kind == AUTO_REPLY and mail.bounce is None


@pytest.mark.parametrize(
    ("header", "value"),
    [("From", "MAILER-DAEMON@mx.customer.example"), ("From", "Postmaster <postmaster@x.example>")],
)
def test_mail_from_the_mail_system_is_never_a_reply(header, value):
    data = samples.gmail_reply(CUSTOMER, ME, SENT_ID, "Delivered.")
    data = data.replace(b"From: Customer <Bob@Customer.example>", f"{header}: {value}".encode())
    assert parse(data).kind == AUTO_REPLY


def test_an_empty_return_path_is_never_a_reply():
    data = samples.gmail_reply(CUSTOMER, ME, SENT_ID, "Sure.")
    assert parse(b"Return-Path: <>\r\n" + data).kind == AUTO_REPLY
    assert parse(b"Return-Path: <bob@customer.example>\r\n" + data).kind == REPLY


@pytest.mark.parametrize(
    "subject",
    [
        "Ausência de retorno sobre o contrato",
        "On vacation next week - can we move the call?",
        "Absence of invoice for March",
        "Férias: quando voltam?",
        "Re: Out of office plans for the team",
        "Autoresponder setup question",
    ],
)
def test_a_subject_that_only_mentions_an_absence_is_a_reply(subject):
    assert parse(samples.gmail_reply(CUSTOMER, ME, SENT_ID, "Hi", subject=subject)).kind == REPLY


@pytest.mark.parametrize(
    "subject",
    [
        "Automatic reply: Welcome aboard",  # Outlook
        "Out of Office: Welcome aboard",  # Gmail's vacation responder, as people set it
        "Auto-Reply: Welcome aboard",  # Apple Mail / iCloud rules
        "AutoReply: Welcome aboard",
        "Out of office reply: Welcome",
        "Resposta automática: Welcome aboard",
        "Respuesta automática: Welcome aboard",
        "Réponse automatique : Welcome aboard",
        "Abwesenheitsnotiz: Welcome aboard",
        "Automatische Antwort: Welcome aboard",
        "Fuera de la oficina: Welcome aboard",
        "Ausente: Welcome aboard",
        "Out of Office",
    ],
)
def test_the_subjects_of_real_automatic_answers(subject):
    data = samples.gmail_reply(CUSTOMER, ME, SENT_ID, "Back on the 16th.", subject=subject)
    assert parse(data).kind == AUTO_REPLY

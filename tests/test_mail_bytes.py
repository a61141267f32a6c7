"""The direct writer of plain messages makes exactly the bytes the email library makes.

``send`` writes most messages without the email library's header objects (a tenth of
the cost); these tests hold it to the library's output, byte for byte, on random
messages, and check that what it does not handle still goes through the library.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from funnelctl.mail import (
    HeaderProblem,
    Rendered,
    _plain_message,
    build_message,
    check_headers,
    message_bytes,
    wire_bytes,
)

WHEN = datetime(2026, 3, 2, 10, 0, tzinfo=timezone(timedelta(hours=1)))
BOUNDARY = re.compile(rb"===============\d{19}==(?:\.\d+)?")

words = st.text(
    alphabet=st.sampled_from("abcXYZ019 .,;:!?'\"()<>@=-_\\/ãéç€\t"), min_size=0, max_size=30
)
plain_words = st.from_regex(r"[A-Za-z0-9]{1,8}( [A-Za-z0-9]{1,8}){0,3}", fullmatch=True)
local = st.from_regex(r"[a-z0-9]{1,10}([._+-][a-z0-9]{1,6})?", fullmatch=True)
addr = st.builds(
    lambda a, d: f"{a}@{d}.example", local, st.from_regex(r"[a-z]{1,12}", fullmatch=True)
)
plain_address = st.one_of(addr, st.builds(lambda n, a: f"{n} <{a}>", plain_words, addr))
address = st.one_of(
    plain_address,
    plain_address,
    plain_address,
    st.builds(lambda n, a: f"{n} <{a}>", words, addr),
    st.builds(lambda n, a: f'"{n}" <{a}>', words, addr),
)
subject = st.one_of(plain_words, plain_words, words, st.text(min_size=1, max_size=120))
body = st.one_of(
    st.text(alphabet=st.sampled_from("ab c\n=.-é€"), max_size=300),
    st.text(max_size=200),
    st.lists(plain_words, max_size=40).map(" ".join),  # long ASCII lines
)


message_ids = st.one_of(
    st.just("<179601312003.26013.12531419804680525985@example.com>"),  # make_msgid's form
    st.builds(lambda a, d: f"<{a}@{d}>", local, st.from_regex(r"[a-z0-9.-]{1,12}", fullmatch=True)),
    st.builds(lambda t: f"<{t}>", words),  # anything: ; , " ( ) : \\ @@ [ ] spaces
)


@st.composite
def rendered(draw: st.DrawFn) -> Rendered:
    return Rendered(
        subject=draw(subject),
        sender=draw(address),
        to=draw(st.lists(address, min_size=1, max_size=3)),
        cc=draw(st.lists(address, max_size=2)),
        bcc=[],
        reply_to=draw(st.one_of(st.none(), address)),
        text=draw(body),
        html=draw(st.one_of(st.none(), body)),
    )


def library_bytes(message: Rendered, linesep: str) -> bytes:
    return wire_bytes(build_message(message, "<1.2@example.com>", WHEN), linesep=linesep)


def same(a: bytes, b: bytes) -> bool:
    return BOUNDARY.sub(b"BOUNDARY", a) == BOUNDARY.sub(b"BOUNDARY", b)


@settings(max_examples=150, deadline=None)
@given(message=rendered(), linesep=st.sampled_from(["\r\n", "\n"]), message_id=message_ids)
def test_the_direct_writer_makes_the_libraries_bytes_or_leaves_the_message_to_it(
    message: Rendered, linesep: str, message_id: str
) -> None:
    direct = _plain_message(message, message_id, WHEN, linesep)
    try:
        built = build_message(message, message_id, WHEN)
    except HeaderProblem:
        # refused before the first email is claimed, and never written directly
        assert direct is None
        with pytest.raises(HeaderProblem):
            check_headers(message, message_id)
        return
    check_headers(message, message_id)
    try:
        expected = wire_bytes(built, linesep=linesep)
    except HeaderProblem:  # its written form is refused, as that email is built to go
        assert direct is None
        with pytest.raises(HeaderProblem):
            message_bytes(message, message_id, WHEN, linesep)
        return
    assert direct is None or same(direct, expected)
    assert same(message_bytes(message, message_id, WHEN, linesep), expected)


def test_a_usual_email_is_written_directly() -> None:
    message = Rendered(
        subject="Welcome aboard: how to reach me from here on",
        sender="Ana Lima <ana@example.com>",
        to=["Customer 300 <customer300@example.com>"],
        cc=[],
        bcc=[],
        reply_to="bruno@example.com",
        text="Olá Customer,\n\n" + "Thank you for choosing us. " * 8 + "\n\nBest regards,\nAna\n",
        html="<p>Olá Customer,</p>\n<p>Thank you.</p>",
    )
    direct = _plain_message(message, "<1.2@example.com>", WHEN, "\r\n")
    assert direct is not None
    assert same(direct, library_bytes(message, "\r\n"))


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "Olá"},  # non-ASCII: an encoded word
        {"subject": "x" * 80},  # folded over two lines
        {"to": ['"Lima, Ana" <ana@example.com>']},  # a quoted name
        {"to": ["=?utf-8?q?evil=40evil.example?= <a@example.com>"]},  # an encoded word
    ],
    ids=["non-ascii", "long", "quoted-name", "encoded-word"],
)
def test_what_is_not_plain_goes_through_the_email_library(change: dict[str, object]) -> None:
    values: dict[str, object] = {
        "subject": "Hi",
        "sender": "ana@example.com",
        "to": ["joe@example.com"],
        "cc": [],
        "bcc": [],
        "reply_to": None,
        "text": "Hello\n",
        "html": None,
    }
    message = Rendered(**(values | change))  # type: ignore[arg-type]
    assert _plain_message(message, "<1.2@example.com>", WHEN, "\r\n") is None


@pytest.mark.parametrize(
    "message_id",
    ["<a;b@x.com>", "<a,b@x.com>", '<a"b@x.com>', "<a(b)c@x.com>", "<a:b@x>", "<a\\b@x.com>",
     "<a@b@c>", "<[x]@y>", "<a=?b@x.com>"],
)  # fmt: skip
def test_a_message_id_the_library_would_rewrite_is_left_to_it(message_id: str) -> None:
    message = Rendered(
        subject="Hi",
        sender="ana@example.com",
        to=["joe@example.com"],
        cc=[],
        bcc=[],
        reply_to=None,
        text="Hello\n",
        html=None,
    )
    assert _plain_message(message, message_id, WHEN, "\r\n") is None


# -- addresses: the customer's To line and the envelope, without the email library's parser --

names = st.one_of(plain_words, words, st.just("O'Connor"), st.just("João Lima"), st.just(""))


@settings(max_examples=300, deadline=None)
@given(name=names, email=addr)
def test_the_customers_address_is_what_the_email_library_writes(name: str, email: str) -> None:
    from email.headerregistry import Address

    from funnelctl.mail import Recipient, _customer_address

    if "\r" in name or "\n" in name:
        return
    expected = str(Address(display_name=name, addr_spec=email)) if name else email
    assert _customer_address(Recipient(email, name)) == expected


@settings(max_examples=300, deadline=None)
@given(to=st.lists(address, min_size=1, max_size=3), cc=st.lists(address, max_size=2))
def test_the_envelope_is_what_the_email_library_reads_from_the_headers(
    to: list[str], cc: list[str]
) -> None:
    from email.utils import getaddresses

    message = Rendered(
        subject="Hi", sender="a@b.example", to=to, cc=cc, bcc=[], reply_to=None, text="x", html=None
    )
    assert message.recipients == [a for _, a in getaddresses([*to, *cc]) if a]

"""References: t12 for a task, e7 for an email, never mistaken for one another."""

from __future__ import annotations

import pytest

from funnelctl.errors import UsageError
from funnelctl.refs import Ref, expect, parse, ref


@pytest.mark.parametrize(
    ("text", "bare", "found"),
    [
        ("t12", "task", Ref("task", 12)),
        ("T12", "task", Ref("task", 12)),
        (" e7 ", "task", Ref("email", 7)),
        ("12", "task", Ref("task", 12)),
        ("7", "email", Ref("email", 7)),
    ],
)
def test_a_reference_is_read_with_or_without_its_letter(text, bare, found):
    assert parse(text, bare=bare) == found


def test_references_are_written_with_their_letter():
    assert (ref("task", 12), ref("email", 7), str(Ref("email", 3))) == ("t12", "e7", "e3")


@pytest.mark.parametrize("text", ["", "t", "x12", "t-1", "12a", "tt1"])
def test_a_reference_that_is_none_is_refused(text):
    with pytest.raises(UsageError, match="is not a reference: write t12"):
        parse(text)


def test_an_email_reference_is_never_taken_for_the_task_of_its_number():
    with pytest.raises(UsageError) as caught:
        expect("e7", "task")
    assert caught.value.message == "'e7' is email e7; this command takes a task (t12)."
    with pytest.raises(UsageError, match="'t7' is task t7; this command takes an email"):
        expect("t7", "email")
    assert expect("7", "task") == 7 and expect("e7", "email") == 7

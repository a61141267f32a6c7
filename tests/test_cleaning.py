"""The import's per-field cleaners give exactly what ``Cleaner.clean`` gives.

``Cleaner.for_field`` takes a shortcut for the values most files hold; anything else
goes through ``clean``. For any text, the value (or the message of the error) must be
the same either way, for every field and every way of reading amounts and dates.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from funnelctl.customers import Cleaner
from funnelctl.store.customers import COLUMNS, encode, encoded_columns

FIELDS = ("email", "mrr", "seats", "signed_on", "language", "tags", "name", "owner", "plan")
CLEANERS = [
    Cleaner(decimal=".", decimal_given=False),
    Cleaner(decimal=".", decimal_given=True),
    Cleaner(decimal=",", decimal_given=False),
    Cleaner(),
    Cleaner(date_format="%d/%m/%Y", decimal="."),
]
# Values near the edges of each shortcut: good and bad dates, amounts that may be grouped,
# huge numbers, digits of other scripts, stray spaces, control characters.
SAMPLES = [
    "",
    "  ",
    "2026-02-04",
    " 2026-02-04 ",
    "2026-02-30",
    "1899-12-31",
    "9000-12-31",
    "9001-01-01",
    "0000-01-01",
    "２０２６-02-04",
    "2026-2-4",
    "04/02/2026",
    "198.33",
    "1.250",
    "1,250",
    "1250.000",
    "007",
    "0.5",
    ".5",
    "5.",
    "-5",
    "1" * 400,
    "1" * 400 + ".0",
    "١٢٣",
    "١٢٣.٥",
    "€ 149,00",
    "1e3",
    "9223372036854775807",
    "9223372036854775808",
    "123456789012345678",
    "1234567890123456789",
    "Ana@Example.COM",
    "ana@example",
    "pt",
    "PT_br",
    "en-us-x",
    "vip; beta,vip",
    "Joana O'Connor",
    "a\tb",
    "line\nbreak",
    "\x7f",
]


def outcome(clean, raw):
    try:
        return ("value", clean(raw))
    except ValueError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("cleaner", CLEANERS)
@pytest.mark.parametrize("field", FIELDS)
def test_the_shortcuts_give_what_clean_gives(cleaner, field):
    fast = cleaner.for_field(field)
    for raw in SAMPLES:
        expected = outcome(lambda value: cleaner.clean(field, value), raw)
        found = outcome(fast, raw)
        assert found == expected, (field, raw)
        assert type(found[1]) is type(expected[1]), (field, raw)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(FIELDS),
    st.sampled_from(CLEANERS),
    st.text(alphabet=st.sampled_from("0123456789.,-_ @aZé:/\t١"), max_size=14),
)
def test_the_shortcuts_agree_on_any_text(field, cleaner, raw):
    assert outcome(cleaner.for_field(field), raw) == outcome(
        lambda value: cleaner.clean(field, value), raw
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(max_size=6)),
    st.dictionaries(st.text(max_size=6), st.one_of(st.text(max_size=6), st.integers())),
)
def test_tags_and_custom_fields_are_stored_as_json_dumps_writes_them(tags, fields):
    values = {"name": "Ana", "tags": tags, "fields": fields}
    row = encode(values)
    assert row["tags"] == json.dumps(tags, ensure_ascii=False)
    assert row["fields"] == json.dumps(fields, ensure_ascii=False, sort_keys=True)
    assert encoded_columns(values) == [row.get(column) for column in COLUMNS]

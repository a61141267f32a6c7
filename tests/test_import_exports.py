"""funnelctl import with the files people actually have: exports of HubSpot, Pipedrive,
Salesforce reports, Google Contacts, Excel and Numbers, with their amounts, headers,
footers and encodings (issue 14).

Every fixture is built here, shaped like the real export (its column names); every
failing import must leave the database exactly as it was.
"""

from __future__ import annotations

import json

import pytest
from conftest import write


def imported(run, *args, input=None):
    result = run("import", *args, "--format", "json", input=input)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def book(run):
    result = run("export", "customers", "--format", "json")
    assert result.exit_code == 0, result.stderr
    return {c["email"] or c["external_id"]: c for c in json.loads(result.stdout)}


def rejected(run, dump, workspace, *args, input=None):
    before = dump(workspace)
    result = run("import", *args, input=input)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert dump(workspace) == before
    return result


HEAD = (
    "Error: people.csv: {n} bad row(s); nothing was imported "
    "(fix them, or pass --skip-bad FILE to import the good rows)\n"
)


# -- amounts ----------------------------------------------------------------------------------


def test_semicolon_files_read_amounts_with_a_decimal_comma(run, workspace, tmp_path):
    write(
        tmp_path / "people.csv",
        "email;mrr;seats\n"
        "a@example.com;1.250,50;3\n"
        "b@example.com;149,00;1\n"
        "c@example.com;€ 149,00;1\n"
        "d@example.com;1.250.000,5 EUR;1\n"
        "e@example.com;12;1\n"
        "f@example.com;0,125;1\n",
    )
    assert imported(run, "people.csv")["inserted"] == 6
    mrr = {k: c["mrr"] for k, c in book(run).items()}
    assert mrr == {
        "a@example.com": 1250.5,
        "b@example.com": 149.0,
        "c@example.com": 149.0,
        "d@example.com": 1250000.5,
        "e@example.com": 12.0,
        "f@example.com": 0.125,
    }


def test_comma_files_read_amounts_with_a_decimal_point(run, workspace, tmp_path):
    write(
        tmp_path / "people.csv",
        "email,mrr\n"
        'a@example.com,"1,250.00"\n'
        "b@example.com,$890.00\n"
        "c@example.com,£12.5\n"
        "d@example.com,149.00 USD\n"
        'e@example.com,"$1,250,000"\n',
    )
    assert imported(run, "people.csv")["inserted"] == 5
    mrr = {k: c["mrr"] for k, c in book(run).items()}
    assert mrr == {
        "a@example.com": 1250.0,
        "b@example.com": 890.0,
        "c@example.com": 12.5,
        "d@example.com": 149.0,
        "e@example.com": 1250000.0,
    }


def test_ambiguous_amounts_are_rejected_without_decimal(run, workspace, dump, tmp_path):
    write(
        tmp_path / "people.csv",
        'email,mrr\na@example.com,"1,250"\nb@example.com,1.250\nc@example.com,"149,00"\n',
    )
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == HEAD.format(n=3) + (
        "  people.csv:2: mrr '1,250' is ambiguous: 1250 with a decimal point, or 1.25 with "
        "a decimal comma; pass --decimal . or --decimal ,\n"
        "  people.csv:3: mrr '1.250' is ambiguous: 1.25 with a decimal point, or 1250 with "
        "a decimal comma; pass --decimal . or --decimal ,\n"
        "  people.csv:4: mrr '149,00' is not an amount with a decimal point; pass "
        "--decimal , if the file writes amounts that way\n"
    )


@pytest.mark.parametrize(
    ("mark", "expected"),
    [(".", [1250.0, 1.25]), (",", [1.25, 1250.0])],
)
def test_decimal_option_settles_what_the_delimiter_cannot(run, workspace, tmp_path, mark, expected):
    write(tmp_path / "people.csv", 'email,mrr\na@example.com,"1,250"\nb@example.com,1.250\n')
    assert imported(run, "people.csv", "--decimal", mark)["inserted"] == 2
    customers = book(run)
    assert [customers["a@example.com"]["mrr"], customers["b@example.com"]["mrr"]] == expected


def test_bad_groupings_and_seats_with_decimals_are_rejected(run, workspace, dump, tmp_path):
    write(
        tmp_path / "people.csv",
        "email;mrr;seats\n"
        "a@example.com;1.25,00;1\n"
        "b@example.com;12,5,0;1\n"
        "c@example.com;1;2,0\n"
        "d@example.com;-5;1\n",
    )
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == HEAD.format(n=4) + (
        "  people.csv:2: mrr '1.25,00' is not an amount with a decimal comma (write e.g. 1.250,50)\n"
        "  people.csv:3: mrr '12,5,0' is not an amount with a decimal comma (write e.g. 1.250,50)\n"
        "  people.csv:4: seats '2,0' is not a whole number\n"
        "  people.csv:5: mrr '-5' must be a number from zero up\n"
    )


def test_decimal_option_must_be_a_mark(run, workspace, dump, tmp_path):
    write(tmp_path / "people.csv", "email\na@example.com\n")
    result = run("import", "people.csv", "--decimal", "x")
    assert (result.exit_code, result.stderr) == (2, "Error: --decimal must be '.' or ','\n")

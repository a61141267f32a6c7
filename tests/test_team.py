"""Team members are people: who speaks in an email.

A `team:` entry in funnelctl.yaml is a short name (`ana`) or a person
(`{id, name, email, signature}`). An email goes out From and Reply-To the owner of the
customer's enrollment when that owner is a team member with an email; otherwise the
workspace `sender` speaks, as before. Every run here is at a fixed moment:
FUNNELCTL_TODAY=2026-03-02 (conftest) and FUNNELCTL_NOW=2026-03-02T10:00, a Monday.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import Result, write

from funnelctl.errors import ValidationError
from funnelctl.workspace import CONFIG_TEMPLATE, Member, Settings, load_settings

NOW = "2026-03-02T10:00"
DATE = "Mon, 02 Mar 2026 10:00:00 +0000"  # Europe/Lisbon is on UTC in March
LOCATED = re.compile(r"^(.+?):(\d+): (.+)$")

BRUNO = Member(
    id="bruno",
    name="Bruno Costa",
    email="bruno@costa.example",
    signature="Bruno Costa\nCustomer success, Agency",
)

TEAM = """\
timezone: Europe/Lisbon
sender: "Ana Lima <ana@agency.example>"
team:
  - ana
  - id: bruno
    name: Bruno Costa
    email: bruno@costa.example
    signature: |
      Bruno Costa
      Customer success, Agency
  - {id: carla, name: "Carla Dias"}
  - {id: dora, email: dora@agency.example}
"""


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNNELCTL_NOW", NOW)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def problems(path: Path) -> list[tuple[int, str]]:
    """(line, message) of every problem load_settings finds in ``path``."""
    with pytest.raises(ValidationError) as caught:
        load_settings(path)
    error = caught.value
    assert error.message == f"{path} has {len(error.details)} problem(s)"
    found = []
    for item in error.details:
        match = LOCATED.match(item)
        assert match and match.group(1) == str(path), item
        found.append((int(match.group(2)), match.group(3)))
    return found


# -- settings: the two forms of a team entry ------------------------------------------------------


def test_a_team_entry_is_a_short_name_or_a_person(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path / "funnelctl.yaml", TEAM))

    # the ids, in order, are what assignment and playbook checks use, as before
    assert settings.team == ("ana", "bruno", "carla", "dora")
    assert settings.members == (
        Member("ana"),
        BRUNO,  # the trailing line break of a `|` block is not part of the signature
        Member("carla", name="Carla Dias"),
        Member("dora", email="dora@agency.example"),
    )
    assert settings.person("bruno") == BRUNO
    assert settings.person("ana") == Member("ana")
    assert (settings.person("zed"), settings.person(None)) == (None, None)
    assert settings.person("partner:helpdesk") is None


def test_who_speaks_for_an_owner(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path / "funnelctl.yaml", TEAM))

    # only a member with an email speaks; anyone else leaves it to the workspace sender
    assert settings.speaker("bruno") == BRUNO
    assert settings.speaker("dora") == Member("dora", email="dora@agency.example")
    for owner in ("ana", "carla", "zed", "partner:helpdesk", None):
        assert settings.speaker(owner) is None, owner
    assert BRUNO.display_name == "Bruno Costa"
    assert BRUNO.address == "Bruno Costa <bruno@costa.example>"
    assert Member("dora", email="dora@agency.example").address == "dora <dora@agency.example>"
    assert Member("carla", name="Carla Dias").address is None
    assert Member("x", name="Costa, Bruno", email="b@x.example").address == (
        '"Costa, Bruno" <b@x.example>'
    )


def test_settings_made_in_code_with_bare_names_know_their_members() -> None:
    settings = Settings(team=("ana", "bruno"))
    assert settings.person("bruno") == Member("bruno")
    assert settings.speaker("bruno") is None


def test_every_problem_of_a_team_entry_is_reported_on_its_line(tmp_path: Path) -> None:
    text = """\
team:
  - id: bruno
    name: "Bruno\\nCosta"
    email: bruno-at-costa
    phone: "+351 900 000 000"
  - name: Nameless
  - id: Dora Dias
  - id: round-robin
  - {id: bruno}
  - id: eva
    email: "eva@agency.example\\r\\nBcc: all@agency.example"
  - id: fil
    email: fil@agência.example
  - id: gil
    name: 5
    signature: [Gil, Agency]
  - id: 0755
  - Ana Lima
  - id: hugo
    email: Hugo Reis <hugo@agency.example>
  - id: ines
    name: "Ines\\tDias"
"""
    assert problems(write(tmp_path / "funnelctl.yaml", text)) == [
        (3, "settings: team member 'bruno': name must be one line"),
        (
            4,
            "settings: team member 'bruno': email 'bruno-at-costa' is not an email address "
            "such as bruno@example.com",
        ),
        (
            5,
            "settings: team member 'bruno': unknown key 'phone' "
            "(allowed: email, id, name, signature)",
        ),
        (6, "settings: a team member written as a mapping needs an 'id', a short name like ana"),
        (7, "settings: team member id 'Dora Dias' must be a short name like ana"),
        (
            8,
            "settings: team member 'round-robin' would be taken for the owner rule of that "
            "name in the playbooks; choose another name",
        ),
        (9, "settings: team member 'bruno' twice"),
        (11, "settings: team member 'eva': email must be one line"),
        (
            13,
            "settings: team member 'fil': email 'fil@agência.example' has non-ASCII "
            "characters, which SMTP cannot carry without SMTPUTF8; use an ASCII address",
        ),
        (
            15,
            "settings: team member 'gil': 'name' must be text, not the number 5 "
            "(quote it if it is text)",
        ),
        (16, "settings: team member 'gil': 'signature' must be text, not a list"),
        (
            17,
            'settings: team member id 0755 (YAML reads 0755 as the number 493; quote it: "0755") '
            "must be a short name like ana",
        ),
        (
            18,
            "settings: team member 'Ana Lima' must be a short name like ana (a person with a "
            "name and an address: {id: ana, name: Ana Lima, email: ana@example.com})",
        ),
        (
            20,
            "settings: team member 'hugo': email 'Hugo Reis <hugo@agency.example>' is not an "
            "email address such as bruno@example.com (write the name under 'name')",
        ),
        (22, "settings: team member 'ines': name must not contain control characters"),
    ]


def test_an_id_that_is_empty_or_missing(tmp_path: Path) -> None:
    text = "team:\n  - id:\n    name: Nobody\n  - {id: '', email: x@agency.example}\n"
    assert problems(write(tmp_path / "funnelctl.yaml", text)) == [
        (2, "settings: a team member written as a mapping needs an 'id', a short name like ana"),
        (4, "settings: team member id '' must be a short name like ana"),
    ]


def test_the_workspace_signature(tmp_path: Path) -> None:
    text = 'sender: "Ana Lima <ana@agency.example>"\nsignature: |\n  Ana Lima\n  Agency\n'
    settings = load_settings(write(tmp_path / "funnelctl.yaml", text))
    assert settings.signature == "Ana Lima\nAgency"
    assert Settings().signature is None
    bad = write(tmp_path / "bad.yaml", "signature: [Ana]\n")
    assert problems(bad) == [(1, "settings: 'signature' must be text, not a list")]


def test_the_settings_init_writes_show_a_person_in_a_comment(tmp_path: Path) -> None:
    text = CONFIG_TEMPLATE.format(timezone="UTC", sender="Ana <ana@example.com>", team="ana, bruno")
    assert "\nteam: [ana, bruno]\n" in text
    # the commented example, uncommented, is a valid team
    start = text.index("#   team:")
    example = [line[4:] for line in text[start:].splitlines() if line.startswith("#   ")]
    settings = load_settings(write(tmp_path / "funnelctl.yaml", "\n".join(example) + "\n"))
    assert settings.members == (
        Member("ana"),
        Member(
            "bruno",
            name="Bruno Costa",
            email="bruno@example.com",
            signature="Bruno Costa\nCustomer success",
        ),
    )

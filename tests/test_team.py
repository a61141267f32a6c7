"""Team members are people: who speaks in an email.

A `team:` entry in funnelctl.yaml is a short name (`ana`) or a person
(`{id, name, email, signature}`). An email goes out From and Reply-To the owner of the
customer's enrollment when that owner is a team member with an email; otherwise the
workspace `sender` speaks, as before. Every run here is at a fixed moment:
FUNNELCTL_TODAY=2026-03-02 (conftest) and FUNNELCTL_NOW=2026-03-02T10:00, a Monday.
"""

from __future__ import annotations

import json
import mailbox
import re
from collections.abc import Callable
from email import message_from_bytes, policy
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
  - id: jo
    capacity: 0
  - id: kim
    capacity: lots
  - id: lia
    capacity: 2.5
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
            "(allowed: capacity, email, id, name, signature)",
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
        (
            24,
            "settings: team member 'jo': 'capacity': capacity is tasks a week, a whole "
            "number of at least 1, not 0",
        ),
        (26, "settings: team member 'kim': 'capacity' must be a whole number, not 'lots'"),
        (
            28,
            "settings: team member 'lia': 'capacity' must be a whole number, not the number 2.5",
        ),
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
    example: list[str] = []
    for line in text[start:].splitlines():
        if not line.startswith("#"):
            break  # the end of the comment block
        if line.startswith("#   "):
            example.append(line[4:])
    settings = load_settings(write(tmp_path / "funnelctl.yaml", "\n".join(example) + "\n"))
    assert settings.members == (
        Member("ana"),
        Member(
            "bruno",
            name="Bruno Costa",
            email="bruno@example.com",
            signature="Bruno Costa\nCustomer success",
            capacity=25,  # tasks a week
        ),
    )


# -- what a template sees and the headers it gets (template render) -------------------------------

NOTE = """\
Subject: A note for {{ customer.name }}

Owner: {{ owner | default("none", true) }}
Customer owner: {{ customer.owner | default("none", true) }}
Sender: {{ sender.name }} <{{ sender.email }}>
{{ sender.signature | default(sender.name, true) }}
"""


@pytest.fixture
def people(workspace: Path, run: Callable[..., Result]) -> Path:
    """A workspace whose team is ana (a bare name), bruno and carla (people; carla has no
    email) and dora (an email only), with a `note` template that prints who speaks."""
    write(workspace / "funnelctl.yaml", TEAM + "transport: {kind: maildir, path: review}\n")
    write(workspace / "templates" / "note.txt", NOTE)
    for email, owner in (
        ("bob@client.example", "bruno"),
        ("cid@client.example", "carla"),
        ("al@client.example", "ana"),
        ("dee@client.example", "dora"),
        ("zoe@client.example", "zed"),
    ):
        ok(run("customer", "add", email, "--name", email.split("@")[0].title(), "--owner", owner))
    ok(run("customer", "add", "nil@client.example", "--name", "Nil"))
    return workspace


def preview(run: Callable[..., Result], template: str, customer: str) -> str:
    result = run("template", "render", template, "--customer", customer)
    assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    return result.stdout


def test_an_owner_who_is_a_person_with_an_email_speaks(
    run: Callable[..., Result], people: Path
) -> None:
    assert preview(run, "note", "bob@client.example") == (
        f"Template: {people / 'templates' / 'note.txt'}\n"
        "Envelope-To: bob@client.example\n"
        "Subject: A note for Bob\n"
        "From: Bruno Costa <bruno@costa.example>\n"
        "To: Bob <bob@client.example>\n"
        "Reply-To: Bruno Costa <bruno@costa.example>\n"
        f"Date: {DATE}\n"
        "Message-ID: <preview@funnelctl.invalid>\n"
        # the workspace sender's address: where bounces and the inbox are
        "List-Unsubscribe: <mailto:ana@agency.example?subject=unsubscribe>\n"
        "Content-Transfer-Encoding: 7bit\n"
        "\n"
        "Owner: Bruno Costa\n"
        "Customer owner: bruno\n"
        "Sender: Bruno Costa <bruno@costa.example>\n"
        "Bruno Costa\n"
        "Customer success, Agency\n"
    )


@pytest.mark.parametrize(
    ("customer", "owner", "customer_owner"),
    [
        ("al@client.example", "ana", "ana"),  # a bare name
        ("cid@client.example", "Carla Dias", "carla"),  # a person without an email
        ("zoe@client.example", "zed", "zed"),  # not in the team
        ("nil@client.example", "none", "none"),  # nobody
    ],
)
def test_otherwise_the_workspace_sender_speaks(
    run: Callable[..., Result], people: Path, customer: str, owner: str, customer_owner: str
) -> None:
    text = preview(run, "note", customer)
    headers, _, body = text.partition("\n\n")
    assert "From: Ana Lima <ana@agency.example>" in headers.splitlines()
    assert not any(line.startswith("Reply-To:") for line in headers.splitlines())
    assert body == (
        f"Owner: {owner}\n"
        f"Customer owner: {customer_owner}\n"
        "Sender: Ana Lima <ana@agency.example>\n"
        "Ana Lima\n"
    )


def test_a_person_with_only_an_email_speaks_under_their_id(
    run: Callable[..., Result], people: Path
) -> None:
    headers, _, body = preview(run, "note", "dee@client.example").partition("\n\n")
    assert "From: dora <dora@agency.example>" in headers.splitlines()
    assert "Reply-To: dora <dora@agency.example>" in headers.splitlines()
    assert body == "Owner: dora\nCustomer owner: dora\nSender: dora <dora@agency.example>\ndora\n"


def test_the_workspace_signature_signs_when_the_workspace_speaks(
    run: Callable[..., Result], people: Path
) -> None:
    settings = (people / "funnelctl.yaml").read_text(encoding="utf-8")
    write(people / "funnelctl.yaml", settings + "signature: |\n  Ana Lima\n  Agency\n")
    assert preview(run, "note", "al@client.example").endswith("\nAna Lima\nAgency\n")
    assert preview(run, "note", "bob@client.example").endswith(
        "\nBruno Costa\nCustomer success, Agency\n"
    )


def test_the_templates_own_from_and_reply_to_still_win(
    run: Callable[..., Result], people: Path
) -> None:
    write(
        people / "templates" / "desk.txt",
        "Subject: From the desk\nFrom: Help desk <help@agency.example>\n\n{{ sender.name }}\n",
    )
    write(
        people / "templates" / "replies.txt",
        "Subject: Replies\nReply-To: Replies <replies@agency.example>\n\n{{ sender.name }}\n",
    )
    headers, _, body = preview(run, "desk", "bob@client.example").partition("\n\n")
    # the template chose who speaks: no Reply-To is added to its From
    assert [h for h in headers.splitlines() if h.startswith(("From:", "Reply-To:"))] == [
        "From: Help desk <help@agency.example>"
    ]
    assert body == "Bruno Costa\n"  # `sender` is still the owner, for the body to use
    headers, _, _ = preview(run, "replies", "bob@client.example").partition("\n\n")
    assert [h for h in headers.splitlines() if h.startswith(("From:", "Reply-To:"))] == [
        "From: Bruno Costa <bruno@costa.example>",
        "Reply-To: Replies <replies@agency.example>",
    ]


def test_the_enrollments_owner_comes_before_the_customers(
    run: Callable[..., Result], people: Path
) -> None:
    write(
        people / "playbooks" / "handoff.yaml",
        "id: handoff\ntitle: Hand-off\nstages:\n  - id: start\n    title: Start\n"
        "    on_enter:\n      - assign: round-robin\n",
    )
    ok(run("enroll", "cid@client.example", "handoff"))  # ana's turn
    ok(run("enroll", "al@client.example", "handoff"))  # bruno's turn; al stays ana's
    headers, _, body = preview(run, "note", "al@client.example").partition("\n\n")
    assert "From: Bruno Costa <bruno@costa.example>" in headers.splitlines()
    assert body.startswith("Owner: Bruno Costa\nCustomer owner: ana\n")


def test_shipped_templates_sign_with_the_signature_or_the_name(
    run: Callable[..., Result], people: Path
) -> None:
    ok(run("customer", "edit", "cid@client.example", "--language", "pt"))
    bob = preview(run, "welcome", "bob@client.example")
    assert "I am Bruno Costa, and for the next three months" in bob
    assert "or write to bruno@costa.example." in bob
    assert "\nBest regards,\nBruno Costa\nCustomer success, Agency\n\n--- HTML part ---" in bob
    al = preview(run, "follow-up-30", "al@client.example")
    assert "\nBest regards,\nAna Lima\n\n--- HTML part ---" in al
    cid = preview(run, "welcome", "cid@client.example")  # Portuguese
    assert "Sou Ana Lima e, durante os próximos três meses" in cid
    assert "\nCom os melhores cumprimentos,\nAna Lima\n\n--- HTML part ---" in cid


def test_validate_checks_templates_with_and_without_a_signature(
    run: Callable[..., Result], people: Path
) -> None:
    # a template that prints the signature without a fallback fails for a sender without one
    write(people / "templates" / "bad-sign.txt", "Subject: Hi\n\n{{ sender.signature }}\n")
    result = run("playbook", "validate")
    assert result.exit_code == 1
    assert f"{people / 'templates' / 'bad-sign.txt'}:3: a value printed here is empty" in (
        result.stderr
    )
    assert "(for a customer with only an email)" in result.stderr


# -- end to end: round-robin gives a customer to bruno, and bruno writes to them -------------------

PEOPLE = """\
timezone: Europe/Lisbon
sender: "Ana Lima <ana@agency.example>"
team:
  - id: ana
    name: Ana Lima
    email: ana@agency.example
  - id: bruno
    name: Bruno Costa
    email: bruno@costa.example
    signature: |
      Bruno Costa
      Customer success, Agency
transport:
  kind: maildir
  path: review
"""


def test_round_robin_gives_a_customer_to_bruno_and_bruno_writes_the_welcome(
    run: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "agency"
    ok(run("init", str(root)))
    monkeypatch.setenv("FUNNELCTL_HOME", str(root))
    write(root / "funnelctl.yaml", PEOPLE)
    for email, name in (
        ("alice@client.example", "Alice Reis"),
        ("bob@client.example", "Bob Neves"),
    ):
        ok(run("customer", "add", email, "--name", name))
        ok(run("enroll", email, "after-sales"))  # demand analysis: assign round-robin
    owners = json.loads(ok(run("customer", "list", "--format", "json")).stdout)
    assert {c["email"]: c["owner"] for c in owners} == {
        "alice@client.example": "ana",
        "bob@client.example": "bruno",
    }
    for email in ("alice@client.example", "bob@client.example"):
        ok(run("move", email, "customer-contact"))  # queues the welcome email
    ok(run("run"))

    result = run("send", "--format", "json")

    assert (result.exit_code, result.stderr) == (0, "")
    assert json.loads(result.stdout)["sent"] == 2
    box = mailbox.Maildir(root / "review", create=False)
    messages = {}
    for key in box.iterkeys():
        with box.get_file(key) as file:
            message = message_from_bytes(file.read(), policy=policy.default)
        messages[message["To"].addresses[0].addr_spec] = message
    bob = messages["bob@client.example"]
    assert (bob["From"], bob["Reply-To"], bob["To"]) == (
        "Bruno Costa <bruno@costa.example>",
        "Bruno Costa <bruno@costa.example>",
        "Bob Neves <bob@client.example>",
    )
    assert bob["Message-ID"].endswith("@agency.example>")  # the workspace's domain
    text = bob.get_body(("plain",)).get_content()
    assert text.startswith("Hi Bob,\n\nThank you for choosing us. I am Bruno Costa, and for ")
    assert "just reply to this message, or write to bruno@costa.example." in text
    assert text.endswith("\nBest regards,\nBruno Costa\nCustomer success, Agency\n")
    assert "Ana Lima" not in text
    alice = messages["alice@client.example"]
    assert (alice["From"], alice["Reply-To"]) == (
        "Ana Lima <ana@agency.example>",
        "Ana Lima <ana@agency.example>",
    )
    assert alice.get_body(("plain",)).get_content().endswith("\nBest regards,\nAna Lima\n")


def test_a_person_speaking_does_not_lift_the_placeholder_refusal(
    run: Callable[..., Result], people: Path
) -> None:
    text = TEAM.replace("Ana Lima <ana@agency.example>", "Your Name <you@example.com>")
    write(people / "funnelctl.yaml", text + "transport: {kind: smtp, host: 127.0.0.1, port: 9}\n")
    ok(run("enroll", "bob@client.example", "after-sales", "--stage", "customer-contact"))

    result = run("send", "--format", "json")

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "Error: Nothing was sent through smtp: the sender is still 'Your Name <you@example.com>': "
        "set 'sender' in funnelctl.yaml to your name and address (customers would see it, and "
        "reply to it).\n"
    )


def test_bounces_come_back_to_the_workspace_sender(
    run: Callable[..., Result], people: Path, tmp_path: Path
) -> None:
    from test_send import fake_sendmail

    script = fake_sendmail(tmp_path)
    text = (people / "funnelctl.yaml").read_text(encoding="utf-8")
    text = text.replace("transport: {kind: maildir, path: review}", "transport:")
    write(people / "funnelctl.yaml", text + f'  kind: sendmail\n  command: "{script} -i"\n')
    ok(run("enroll", "bob@client.example", "after-sales", "--stage", "customer-contact"))

    result = run("send", "--format", "json")

    assert (result.exit_code, result.stderr) == (0, "")
    # the envelope sender (-f) stays the workspace's: bounces reach the mailbox it reads
    argv = (tmp_path / "argv.txt").read_text().splitlines()
    assert argv == ["-i", "-f", "ana@agency.example", "--", "bob@client.example"]
    message = message_from_bytes((tmp_path / "message.eml").read_bytes(), policy=policy.default)
    assert message["From"] == "Bruno Costa <bruno@costa.example>"


# -- the docs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", ["README.md", "docs/playbooks.md"])
def test_the_documented_teams_load(tmp_path: Path, doc: str) -> None:
    text = (Path(__file__).resolve().parent.parent / doc).read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "\nteam:" in b]
    assert blocks, f"{doc} shows no team"
    for block in blocks:
        settings = load_settings(write(tmp_path / "funnelctl.yaml", block))
        bruno = settings.speaker("bruno")
        assert bruno is not None
        assert (bruno.address, bruno.signature) == (
            "Bruno Costa <bruno@agency.example>",
            "Bruno Costa\nCustomer success" + (", Agency" if "Agency" in block else ""),
        )
        assert settings.person("ana") == Member("ana")

"""Playbooks: loading, validation (`file:line: message`, all problems at once) and the
`funnelctl playbook` commands.

Most tests write a small library of playbooks under tmp_path and validate it with
`funnelctl playbook validate PATH` outside any workspace (templates are then looked up
beside the playbooks folder), or through `load_library` directly.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import write

from funnelctl.errors import ValidationError
from funnelctl.playbooks import (
    EmailAction,
    EnrollAction,
    PlayAction,
    TaskAction,
    load_library,
)
from funnelctl.workspace import shipped_dir

FIRST_LINE = re.compile(r"^Error: The playbooks have (\d+) problem\(s\)$")
LOCATED = re.compile(r"^(.+?):(\d+): (.+)$")

AFTER_SALES_STAGES = [
    "demand-analysis",
    "customer-contact",
    "deployment",
    "follow-up-30",
    "follow-up-60",
    "follow-up-90",
    "approved",
]
SHIPPED_PLAYS = [
    "onboarding-kickoff",
    "engagement-check-in",
    "support-handoff",
    "issue-escalation",
    "at-risk-rescue",
    "upsell-conversation",
    "renewal-prep",
    "testimonial-ask",
]


# -- helpers ---------------------------------------------------------------------------------


def problem_lines(stderr: str) -> list[str]:
    """The `file:line: message` lines printed under the first `Error:` line, one per line."""
    lines = stderr.splitlines()[1:]
    assert all(line.startswith("  ") for line in lines), stderr
    return [line[2:] for line in lines]


def located(items: list[str]) -> list[tuple[str, int, str]]:
    """(file name, line, message) of each problem; every one must be `file:line: message`."""
    result = []
    for item in items:
        match = LOCATED.match(item)
        assert match, f"not file:line: message: {item!r}"
        result.append((Path(match.group(1)).name, int(match.group(2)), match.group(3)))
    return result


def library_dir(
    root: Path, files: dict[str, str], templates: tuple[str, ...] = ("welcome",)
) -> Path:
    """A folder of playbooks (and a sibling templates/ folder); returns the playbooks folder."""
    playbooks = root / "playbooks"
    playbooks.mkdir(parents=True)
    (root / "templates").mkdir()
    for name in templates:
        write(
            root / "templates" / f"{name}.txt",
            "From: Ana <ana@example.com>\nSubject: Hello\n\nHi {{ customer.name }}\n",
        )
    for name, text in files.items():
        write(playbooks / name, text)
    return playbooks


def validate(run, path: Path | str, *more: str):
    """`funnelctl playbook validate PATH` run from tmp_path; returns the result."""
    return run("playbook", "validate", str(path), *more)


def failing(run, path: Path | str) -> list[tuple[str, int, str]]:
    """Validate, check the failure's shape (exit 1, count line, no stdout) and return problems."""
    result = validate(run, path)
    assert result.exit_code == 1, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    first = result.stderr.splitlines()[0]
    count = FIRST_LINE.match(first)
    assert count, first
    problems = located(problem_lines(result.stderr))
    assert int(count.group(1)) == len(problems)
    return problems


def load_problems(playbooks: Path, **kwargs) -> list[tuple[str, int, str]]:
    with pytest.raises(ValidationError) as caught:
        load_library([playbooks], **kwargs)
    assert caught.value.message == f"The playbooks have {len(caught.value.details)} problem(s)"
    return located(caught.value.details)


MINIMAL = """\
id: mini
title: Mini
stages:
  - id: first
    title: First
"""


# -- the shipped playbooks -------------------------------------------------------------------


def shipped_files() -> list[str]:
    return sorted(p.name for p in shipped_dir("playbooks").glob("*.yaml"))


def test_shipped_playbooks_validate_in_a_new_workspace(run, workspace):
    result = run("playbook", "validate")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        f"OK: {len(shipped_files())} file(s), 3 funnel(s), 8 play(s), 1 partner(s).\n"
        "Warning: the sender is still 'Your Name <you@example.com>': set 'sender' in "
        "funnelctl.yaml to your name and address (customers would see it, and reply to it); "
        "send refuses smtp and sendmail until then.\n"
    )


def test_shipped_playbooks_load_with_templates_and_an_empty_team():
    library = load_library(
        [shipped_dir("playbooks")], templates_dir=shipped_dir("templates"), team=()
    )
    assert sorted(library.funnels) == ["after-sales", "relationship", "support"]
    assert list(library.plays) == SHIPPED_PLAYS
    assert list(library.partners) == ["helpdesk-partner"]
    assert [Path(f).name for f in library.files] == shipped_files()
    assert {"after-sales.yaml", "journey-plays.yaml", "relationship.yaml", "support.yaml"} <= set(
        shipped_files()
    )


def test_after_sales_is_the_seven_step_funnel_of_the_design():
    library = load_library([shipped_dir("playbooks")], templates_dir=shipped_dir("templates"))
    funnel = library.funnel("after-sales")
    assert [s.id for s in funnel.stages] == AFTER_SALES_STAGES
    assert [s.stagnant_after for s in funnel.stages] == [1, 5, 30, None, None, None, None]
    assert funnel.allow_skip is False
    contact = funnel.stage("customer-contact")
    email, call = contact.on_enter
    assert isinstance(email, EmailAction) and email.template == "welcome" and email.stop_on_reply
    assert isinstance(call, TaskAction)
    assert (call.title, call.due, call.drop_if) == ("Call the customer", 2, "customer.replied")
    close, enroll = funnel.stage("approved").on_enter
    assert (close.type, close.status) == ("close", "won")
    assert isinstance(enroll, EnrollAction) and enroll.funnel == "relationship"
    # the 60- and 90-day contacts happen on their own
    assert [funnel.stage(s).advance_after for s in ("follow-up-30", "follow-up-60")] == [30, 30]


def test_loaded_playbooks_are_immutable():
    library = load_library([shipped_dir("playbooks")])
    stage = library.funnel("after-sales").stages[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        stage.id = "changed"  # type: ignore[misc]
    assert isinstance(stage.on_enter, tuple)


def test_validate_outside_a_workspace_checks_a_folder_of_playbooks(run, tmp_path):
    lib = tmp_path / "lib"
    shutil.copytree(shipped_dir("playbooks"), lib / "playbooks")
    shutil.copytree(shipped_dir("templates"), lib / "templates")
    result = validate(run, "lib/playbooks")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (
        f"OK: {len(shipped_files())} file(s), 3 funnel(s), 8 play(s), 1 partner(s).\n"
    )


def test_validate_outside_a_workspace_without_a_path_says_how_to_get_one(run):
    result = run("playbook", "validate")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: No funnelctl workspace at ")


def test_validate_a_missing_path_names_it(run, tmp_path):
    result = validate(run, "nowhere")
    assert result.exit_code == 1
    assert result.stderr == "Error: nowhere: no such playbook file or folder\n"


# -- every problem, with the right line, all in one run ----------------------------------------


def test_five_mistakes_in_one_file_give_five_lines_in_file_order(run, tmp_path):
    library_dir(
        tmp_path / "lib",
        {
            "onboarding.yaml": """\
id: onboarding
title: Onboarding
stages:
  - id: welcome
    title: Welcome
    stagnant_after: 3
    touchpoints: [email, fax]
    on_enter:
      - email: welcome
        stop_on_reply: yes
      - task: Call the customer
        due: 2 days
        colour: red
  - id: done
    title: NO
"""
        },
    )
    result = validate(run, "lib/playbooks")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines()[0] == "Error: The playbooks have 5 problem(s)"
    path = "lib/playbooks/onboarding.yaml"
    assert problem_lines(result.stderr) == [
        f"{path}:6: funnel onboarding, stage welcome: 'stagnant_after': 3 has no unit: "
        "write 3d (days) or 3w (weeks)",
        f"{path}:7: funnel onboarding, stage welcome: touchpoint 'fax' is not a channel "
        "(self-service, chat, email, phone, in-person, meeting, in-product, partner, social, "
        "success-review, user-group, forum, testimonial, meetup, conference)",
        f"{path}:12: funnel onboarding, stage welcome, task action: 'due': '2 days' is not a "
        "duration such as 0d, 2d or 3w",
        f"{path}:13: funnel onboarding, stage welcome, task action: unknown key 'colour' "
        "(allowed: cancel_on_exit, channel, description, drop_if, due, escalate_after, escalate_to, owner, "
        "sourcing, task, then, when)",
        f"{path}:15: funnel onboarding, stage done: 'title' must be text, not NO "
        '(YAML reads NO as false; quote it: "NO")',
    ]


def test_problems_of_several_files_are_all_reported_file_by_file(run, tmp_path):
    library_dir(
        tmp_path / "lib",
        {
            "a.yaml": MINIMAL.replace("id: first", "id: First") + "colour: red\n",
            "b.yaml": "id: bee\ntitle: Bee\nstages:\n  - id: one\n    title: One\n    owner: [x]\n",
            "c.yaml": "- not a mapping\n",
        },
    )
    problems = failing(run, "lib/playbooks")
    assert [(name, line) for name, line, _ in problems] == [
        ("a.yaml", 4),
        ("a.yaml", 6),
        ("b.yaml", 6),
        ("c.yaml", 1),
    ]
    messages = [m for _, _, m in problems]
    assert messages[0] == "funnel mini: 'id': 'First' must be lowercase letters, digits and -"
    assert messages[1].startswith("playbook: unknown key 'colour' (allowed: ")
    assert messages[2] == "funnel bee, stage one: 'owner' must be text, not a list"
    assert messages[3] == "a playbook must be a mapping (id, title, stages, plays, partners)"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param(
            MINIMAL + "stagnant_after: 2d\n",
            6,
            "playbook: unknown key 'stagnant_after' (allowed: allow_backward, allow_skip, "
            "description, health, id, partners, plays, stages, title)",
            id="top",
        ),
        pytest.param(
            MINIMAL + "    stagant_after: 2d\n",
            6,
            "funnel mini, stage first: unknown key 'stagant_after' (did you mean "
            "'stagnant_after'? allowed: advance_after, description, id, on_enter, owner, "
            "quiet_after, stagnant_after, title, touchpoints)",
            id="stage",
        ),
        pytest.param(
            MINIMAL + "    on_enter:\n      - task: Call\n        chanel: phone\n",
            8,
            "funnel mini, stage first, task action: unknown key 'chanel' (did you mean "
            "'channel'? allowed: cancel_on_exit, channel, description, drop_if, due, escalate_after, "
            "escalate_to, owner, sourcing, task, then, when)",
            id="task-action",
        ),
        pytest.param(
            MINIMAL + "    on_enter:\n      - email: welcome\n        stop_on_replay: true\n",
            8,
            "funnel mini, stage first, email action: unknown key 'stop_on_replay' (did you "
            "mean 'stop_on_reply'? allowed: delay, email, stop_on_reply, when)",
            id="email-action",
        ),
        pytest.param(
            MINIMAL + "    on_enter:\n      - task: Call\n        then:\n          task: Again\n"
            "          due: 1d\n          after: 2d\n",
            11,
            "funnel mini, stage first, task action, then, task action: unknown key 'after' "
            "(allowed: cancel_on_exit, channel, description, drop_if, due, escalate_after, escalate_to, owner, "
            "sourcing, task, then, when)",
            id="then-task",
        ),
        pytest.param(
            "plays:\n  - id: kick\n    title: Kick-off\n    sourcing: internal\n"
            "    owner: ana\n    actions:\n      - task: Meet\n",
            5,
            "play kick: unknown key 'owner' (allowed: actions, cooldown, description, id, "
            "sourcing, title, trigger, unless_at_risk)",
            id="play",
        ),
        pytest.param(
            "partners:\n  - id: desk\n    name: Help Desk\n    email: desk@example.com\n"
            "    phone: '123'\n",
            5,
            "partner desk: unknown key 'phone' (allowed: email, id, name, role)",
            id="partner",
        ),
    ],
)
def test_unknown_keys_are_reported_on_their_line(run, tmp_path, text, line, message):
    library_dir(tmp_path / "lib", {"p.yaml": text})
    assert failing(run, "lib/playbooks") == [("p.yaml", line, message)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "title: No id\nstages:\n  - id: a\n    title: A\n",
            [(1, "playbook: missing required key 'id'")],
            id="funnel-id",
        ),
        pytest.param(
            "id: nameless\nstages:\n  - id: a\n    title: A\n",
            [(1, "playbook: missing required key 'title'")],
            id="funnel-title",
        ),
        pytest.param(
            "id: empty\ntitle: Empty\n",
            [(1, "playbook: missing required key 'stages'")],
            id="funnel-stages",
        ),
        pytest.param(
            MINIMAL + "  - title: Second\n  - id: third\n",
            [
                (6, "funnel mini: missing required key 'id'"),
                (7, "funnel mini, stage third: missing required key 'title'"),
            ],
            id="stage-id-and-title",
        ),
        pytest.param(
            MINIMAL + "  - id: second\n    title:\n",
            [(7, "funnel mini, stage second: 'title' is empty; it needs a value")],
            id="empty-value-on-its-own-line",
        ),
        pytest.param(
            "plays:\n  - id: kick\n    title: Kick-off\n",
            [
                (2, "play kick: missing required key 'sourcing'"),
                (2, "play kick: missing required key 'actions'"),
            ],
            id="play",
        ),
        pytest.param(
            "partners:\n  - id: desk\n    role: Help\n",
            [
                (2, "partner desk: missing required key 'name'"),
                (2, "partner desk: missing required key 'email'"),
            ],
            id="partner",
        ),
    ],
)
def test_missing_required_keys(run, tmp_path, text, expected):
    library_dir(tmp_path / "lib", {"p.yaml": text})
    assert failing(run, "lib/playbooks") == [("p.yaml", line, m) for line, m in expected]


def test_duplicate_keys_name_the_first_line_and_do_not_hide_other_problems(run, tmp_path):
    library_dir(
        tmp_path / "lib",
        {
            "p.yaml": """\
id: mini
title: Mini
stages:
  - id: first
    title: First
    stagnant_after: 2d
    description: Hello
    stagnant_after: 3d
    owner: [ana]
title: Mini again
"""
        },
    )
    assert failing(run, "lib/playbooks") == [
        ("p.yaml", 8, "duplicate key 'stagnant_after' (first on line 6)"),
        ("p.yaml", 9, "funnel mini, stage first: 'owner' must be text, not a list"),
        ("p.yaml", 10, "duplicate key 'title' (first on line 2)"),
    ]


def test_a_merge_key_is_not_a_duplicate(run, tmp_path):
    library_dir(
        tmp_path / "lib",
        {
            "p.yaml": """\
id: mini
title: Mini
stages:
  - &base
    id: first
    title: First
    stagnant_after: 2d
  - <<: *base
    id: second
    stagnant_after: 4d
"""
        },
    )
    library = load_library([tmp_path / "lib" / "playbooks"])
    stages = library.funnel("mini").stages
    assert [(s.id, s.title, s.stagnant_after) for s in stages] == [
        ("first", "First", 2),
        ("second", "First", 4),
    ]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("NO", 'NO (YAML reads NO as false; quote it: "NO")'),
        ("yes", 'yes (YAML reads yes as true; quote it: "yes")'),
        ("on", 'on (YAML reads on as true; quote it: "on")'),
        ("Off", 'Off (YAML reads Off as false; quote it: "Off")'),
    ],
)
def test_yaml_booleans_where_text_is_expected_say_to_quote_them(run, tmp_path, written, expected):
    library_dir(tmp_path / "lib", {"p.yaml": MINIMAL.replace("title: First", f"title: {written}")})
    assert failing(run, "lib/playbooks") == [
        ("p.yaml", 5, f"funnel mini, stage first: 'title' must be text, not {expected}")
    ]


def test_quoted_yaml_words_are_text(tmp_path):
    playbooks = library_dir(
        tmp_path / "lib", {"p.yaml": MINIMAL.replace("title: First", 'title: "NO"')}
    )
    assert load_library([playbooks]).funnel("mini").stages[0].title == "NO"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("0755", '0755 (YAML reads 0755 as the number 493; quote it: "0755")'),
        ("12:30", '12:30 (YAML reads 12:30 as the number 750; quote it: "12:30")'),
        ("2026", "the number 2026 (quote it if it is text)"),
        ("1.50", '1.50 (YAML reads 1.50 as the number 1.5; quote it: "1.50")'),
        ("2026-01-31", "the date 2026-01-31 (quote it if it is text)"),
    ],
)
def test_numbers_and_dates_where_text_is_expected(run, tmp_path, written, expected):
    text = MINIMAL + f"    on_enter:\n      - task: {written}\n"
    library_dir(tmp_path / "lib", {"p.yaml": text})
    assert failing(run, "lib/playbooks") == [
        ("p.yaml", 7, f"funnel mini, stage first, task action: 'task' must be text, not {expected}")
    ]


@pytest.mark.parametrize(
    ("key", "written", "reason"),
    [
        (
            "stagnant_after",
            "3",
            "3 has no unit: write 3d (days) or 3w (weeks)",
        ),
        ("quiet_after", "3 days", "'3 days' is not a duration such as 0d, 2d or 3w"),
        ("advance_after", "2x", "'2x' is not a duration such as 0d, 2d or 3w"),
        ("advance_after", "-1d", "'-1d' is not a duration such as 0d, 2d or 3w"),
        ("quiet_after", "1.5w", "'1.5w' is not a duration such as 0d, 2d or 3w"),
    ],
)
def test_bad_stage_durations(run, tmp_path, key, written, reason):
    library_dir(tmp_path / "lib", {"p.yaml": MINIMAL + f"    {key}: {written}\n"})
    assert failing(run, "lib/playbooks") == [
        ("p.yaml", 6, f"funnel mini, stage first: '{key}': {reason}")
    ]


def test_bad_action_durations(run, tmp_path):
    text = MINIMAL + (
        "    on_enter:\n"
        "      - task: Call\n"
        "        due: 3\n"
        "        escalate_after: 2 days\n"
        "        escalate_to: ana\n"
        "      - email: welcome\n"
        "        delay: 2x\n"
    )
    library_dir(tmp_path / "lib", {"p.yaml": text})
    task = "funnel mini, stage first, task action"
    assert failing(run, "lib/playbooks") == [
        (
            "p.yaml",
            8,
            f"{task}: 'due': 3 has no unit: write 3d (days) or 3w (weeks)",
        ),
        (
            "p.yaml",
            9,
            f"{task}: 'escalate_after': '2 days' is not a duration such as 0d, 2d or 3w",
        ),
        (
            "p.yaml",
            12,
            "funnel mini, stage first, email action: 'delay': '2x' is not a duration such as "
            "0d, 2d or 3w",
        ),
    ]


def test_good_durations_are_days(tmp_path):
    text = MINIMAL + (
        "    stagnant_after: 0d\n    quiet_after: 3w\n    advance_after: 12w\n"
        "    on_enter:\n      - task: Call\n        due: 2d\n"
    )
    playbooks = library_dir(tmp_path / "lib", {"p.yaml": text})
    stage = load_library([playbooks]).funnel("mini").stages[0]
    assert (stage.stagnant_after, stage.quiet_after, stage.advance_after) == (0, 21, 84)
    assert stage.on_enter[0].due == 2


def test_bad_channels_in_touchpoints_and_tasks(run, tmp_path):
    text = MINIMAL + (
        "    touchpoints:\n"
        "      - email\n"
        "      - fax\n"
        "      - Phone\n"
        "    on_enter:\n"
        "      - task: Call\n"
        "        channel: telephone\n"
    )
    library_dir(tmp_path / "lib", {"p.yaml": text})
    problems = failing(run, "lib/playbooks")
    assert [line for _, line, _ in problems] == [8, 9, 12]
    assert "touchpoint 'fax' is not a channel (self-service, chat," in problems[0][2]
    assert "'channel': 'telephone' must be one of self-service, chat, email," in problems[2][2]


def test_an_action_needs_exactly_one_type(run, tmp_path):
    text = MINIMAL + (
        "    on_enter:\n"
        "      - task: Call\n"
        "        email: welcome\n"
        "      - due: 2d\n"
        '        when: "customer.owner"\n'
        "      - just text\n"
    )
    library_dir(tmp_path / "lib", {"p.yaml": text})
    assert failing(run, "lib/playbooks") == [
        (
            "p.yaml",
            7,
            "funnel mini, stage first: an action needs exactly one of task, email, close, "
            "enroll, assign, play (found task and email)",
        ),
        (
            "p.yaml",
            9,
            "funnel mini, stage first: an action needs exactly one of task, email, close, "
            "enroll, assign, play (found none)",
        ),
        (
            "p.yaml",
            11,
            "funnel mini, stage first: actions: each item must be a mapping, not 'just text'",
        ),
    ]


def test_then_takes_one_task_not_a_list_or_another_action(run, tmp_path):
    text = MINIMAL + (
        "    on_enter:\n"
        "      - task: Call\n"
        "        then:\n"
        "          - task: Again\n"
        "      - task: Meet\n"
        "        then:\n"
        "          email: welcome\n"
    )
    library_dir(tmp_path / "lib", {"p.yaml": text})
    assert failing(run, "lib/playbooks") == [
        (
            "p.yaml",
            8,
            "funnel mini, stage first, task action: 'then' must be a mapping, not a list",
        ),
        ("p.yaml", 12, "funnel mini, stage first, task action: 'then' must be a task action"),
    ]


def test_unknown_email_template_is_reported_against_the_templates_folder(run, tmp_path):
    text = MINIMAL + "    on_enter:\n      - email: welcome\n      - email: welcom\n"
    library_dir(tmp_path / "lib", {"p.yaml": text})
    assert failing(run, "lib/playbooks") == [
        (
            "p.yaml",
            8,
            "funnel mini, stage first: email template 'welcom' not found in "
            "lib/templates (expected welcom.txt)",
        )
    ]


def test_templates_are_checked_in_the_workspace_templates_folder(run, workspace):
    (workspace / "templates" / "success-review.txt").unlink()
    (workspace / "templates" / "renewal.txt").unlink()
    result = run("playbook", "validate")
    assert result.exit_code == 1
    templates = workspace / "templates"
    assert located(problem_lines(result.stderr)) == [
        (
            "journey-plays.yaml",
            189,
            f"play renewal-prep: email template 'renewal' not found in {templates} "
            "(expected renewal.txt)",
        ),
        (
            "relationship.yaml",
            61,
            "funnel relationship, stage success-review: email template 'success-review' not "
            f"found in {templates} (expected success-review.txt)",
        ),
        (
            "support.yaml",
            70,
            "funnel support, stage retention: email template 'success-review' not found in "
            f"{templates} (expected success-review.txt)",
        ),
    ]


def test_a_workspace_without_its_templates_folder_reports_the_emails(run, workspace):
    shutil.rmtree(workspace / "templates")
    result = run("playbook", "validate")
    assert result.exit_code == 1
    assert "email template 'welcome' not found" in result.stderr


def test_a_language_variant_alone_is_not_the_template(tmp_path):
    text = MINIMAL + "    on_enter:\n      - email: welcome\n"
    playbooks = library_dir(tmp_path / "lib", {"p.yaml": text}, templates=("welcome.pt",))
    problems = load_problems(playbooks, templates_dir=tmp_path / "lib" / "templates")
    assert [(line, "welcome" in m) for _, line, m in problems] == [(7, True)]


def test_enroll_into_an_unknown_funnel_or_stage(run, tmp_path):
    text = MINIMAL + (
        "    on_enter:\n"
        "      - enroll: nowhere\n"
        "      - enroll: mini\n"
        "        stage: last\n"
        "      - enroll: mini\n"
        "        stage: first\n"
    )
    library_dir(tmp_path / "lib", {"p.yaml": text})
    assert failing(run, "lib/playbooks") == [
        ("p.yaml", 7, "funnel mini, stage first: enroll: no funnel 'nowhere'"),
        ("p.yaml", 8, "funnel mini, stage first: enroll: funnel 'mini' has no stage 'last'"),
    ]


def test_enroll_and_play_may_name_things_defined_in_other_files(tmp_path):
    playbooks = library_dir(
        tmp_path / "lib",
        {
            "a.yaml": MINIMAL + "    on_enter:\n      - enroll: other\n      - play: kick\n",
            "b.yaml": "id: other\ntitle: Other\nstages:\n  - id: s\n    title: S\n",
            "c.yaml": "plays:\n  - id: kick\n    title: Kick\n    sourcing: internal\n"
            "    actions:\n      - task: Meet\n",
        },
    )
    library = load_library([playbooks])
    actions = library.funnel("mini").stages[0].on_enter
    assert isinstance(actions[1], PlayAction) and actions[1].play == "kick"
    assert sorted(library.funnels) == ["mini", "other"]


def test_unknown_play_and_unknown_partner(run, tmp_path):
    library_dir(
        tmp_path / "lib",
        {
            "a.yaml": MINIMAL
            + (
                "    on_enter:\n"
                "      - play: kick-off\n"
                "      - task: Call\n"
                "        owner: partner:helpdesk\n"
                "      - task: Fix\n"
                "        escalate_after: 2d\n"
                "        escalate_to: partner:helpdesk\n"
            ),
            "b.yaml": "partners:\n  - id: desk\n    name: Desk\n    email: desk@example.com\n"
            "plays:\n  - id: kick\n    title: Kick\n    sourcing: internal\n"
            "    actions:\n      - task: Meet\n        owner: partner:desk\n",
        },
    )
    assert failing(run, "lib/playbooks") == [
        ("a.yaml", 7, "funnel mini, stage first: no play 'kick-off' (plays: kick)"),
        (
            "a.yaml",
            8,
            "funnel mini, stage first: task 'Call': no partner 'helpdesk' is defined "
            "(partners: desk)",
        ),
        (
            "a.yaml",
            10,
            "funnel mini, stage first: task 'Fix': no partner 'helpdesk' is defined "
            "(partners: desk)",
        ),
    ]


def test_invalid_jinja_in_when_and_drop_if(run, tmp_path):
    text = MINIMAL + (
        "    on_enter:\n"
        "      - task: Call\n"
        '        when: "customer.mrr >"\n'
        '        drop_if: "{{ customer.replied }}"\n'
        "      - email: welcome\n"
        '        when: "customer.plan | nosuchfilter"\n'
        "      - task: Fine\n"
        '        when: "customer.mrr and customer.mrr >= 1000"\n'
        '        drop_if: "customer.replied"\n'
    )
    library_dir(tmp_path / "lib", {"p.yaml": text})
    problems = failing(run, "lib/playbooks")
    assert [(line, m.split(":")[1].strip()) for _, line, m in problems] == [
        (8, "'when'"),
        (9, "'drop_if'"),
        (11, "'when'"),
    ]
    assert problems[0][2].startswith(
        "funnel mini, stage first, task action: 'when': 'customer.mrr >' is not a valid "
        "expression: "
    )
    assert "No filter named 'nosuchfilter'" in problems[2][2]


def test_duplicate_stage_ids(run, tmp_path):
    text = MINIMAL + "  - id: second\n    title: Second\n  - id: first\n    title: Again\n"
    library_dir(tmp_path / "lib", {"p.yaml": text})
    assert failing(run, "lib/playbooks") == [
        ("p.yaml", 8, "funnel mini, stage first: stage 'first' appears twice in the funnel")
    ]


def test_duplicate_funnel_ids_across_files_name_the_other_file(run, tmp_path):
    library_dir(tmp_path / "lib", {"a.yaml": MINIMAL, "b.yaml": "# again\n" + MINIMAL})
    assert failing(run, "lib/playbooks") == [
        ("b.yaml", 2, "playbook: funnel 'mini' is defined twice (also lib/playbooks/a.yaml:1)")
    ]


def test_duplicate_plays_and_partners(run, tmp_path):
    plays = (
        "plays:\n  - id: kick\n    title: Kick\n    sourcing: internal\n"
        "    actions:\n      - task: Meet\n"
        "partners:\n  - id: desk\n    name: Desk\n    email: desk@example.com\n"
    )
    library_dir(tmp_path / "lib", {"a.yaml": plays, "b.yaml": plays})
    problems = failing(run, "lib/playbooks")
    assert [(name, line) for name, line, _ in problems] == [("b.yaml", 2), ("b.yaml", 8)]
    assert problems[0][2] == "play 'kick' is defined twice (also lib/playbooks/a.yaml:2)"
    assert problems[1][2] == "partner 'desk' is defined twice"


def test_play_cycles_are_reported_direct_and_indirect(run, tmp_path):
    text = (
        "plays:\n"
        "  - id: one\n    title: One\n    sourcing: internal\n    actions:\n      - play: two\n"
        "  - id: two\n    title: Two\n    sourcing: internal\n    actions:\n      - play: one\n"
        "  - id: self\n    title: Self\n    sourcing: internal\n    actions:\n      - play: self\n"
        "  - id: fine\n    title: Fine\n    sourcing: internal\n    actions:\n      - play: one\n"
    )
    library_dir(tmp_path / "lib", {"p.yaml": text})
    assert failing(run, "lib/playbooks") == [
        ("p.yaml", 2, "play one: it runs itself through other plays"),
        ("p.yaml", 7, "play two: it runs itself through other plays"),
        ("p.yaml", 12, "play self: it runs itself through other plays"),
    ]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param(
            "id: x\ntitle: Follow-up: 30 days\n",
            2,
            "mapping values are not allowed here (quote text that contains ': ')",
            id="colon",
        ),
        pytest.param(
            "id: x\nstages:\n\t- id: a\n",
            3,
            "found character '\\t' that cannot start any token (indent with spaces, not tabs)",
            id="tab",
        ),
        pytest.param(
            'id: x\ntitle: "Unclosed\nstages: []\n',
            2,
            "found unexpected end of stream on line 4 while scanning a quoted scalar that "
            "starts here",
            id="unclosed-quote",
        ),
        pytest.param(
            "id: x\nstages:\n  - id: a\n   title: b\n",
            4,
            "expected <block end>, but found '<block mapping start>' (while parsing a block "
            "collection that starts on line 3)",
            id="indentation",
        ),
        pytest.param(
            "id: x\ntouchpoints: [email, phone\ntitle: y\n",
            3,
            "expected ',' or ']', but got ':' (while parsing a flow sequence that starts on "
            "line 2)",
            id="flow-list",
        ),
        pytest.param(
            "id: x\ntouchpoints: [email, phone\n",
            2,
            "expected ',' or ']', but got '<stream end>' on line 3 while parsing a flow "
            "sequence that starts here",
            id="unclosed-list",
        ),
        pytest.param(
            "id: !!python/object:os.system x\n",
            1,
            "could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object:os.system' (funnelctl reads plain YAML, "
            "without tags)",
            id="python-tag",
        ),
    ],
)
def test_yaml_syntax_errors_give_the_line_and_other_files_are_still_checked(
    run, tmp_path, text, line, message
):
    library_dir(
        tmp_path / "lib",
        {"a.yaml": text, "b.yaml": MINIMAL.replace("title: First", "title: yes")},
    )
    assert failing(run, "lib/playbooks") == [
        ("a.yaml", line, message),
        (
            "b.yaml",
            5,
            "funnel mini, stage first: 'title' must be text, not yes (YAML reads yes as true; "
            'quote it: "yes")',
        ),
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n...\n"])
def test_an_empty_file_is_a_problem(run, tmp_path, text):
    library_dir(tmp_path / "lib", {"empty.yaml": text})
    assert failing(run, "lib/playbooks") == [("empty.yaml", 1, "the file is empty")]


@pytest.mark.parametrize("text", ["- id: x\n  title: X\n", "just words\n", "42\n"])
def test_the_top_level_must_be_a_mapping(run, tmp_path, text):
    library_dir(tmp_path / "lib", {"top.yaml": text})
    assert failing(run, "lib/playbooks") == [
        ("top.yaml", 1, "a playbook must be a mapping (id, title, stages, plays, partners)")
    ]


def test_a_non_text_key_says_to_quote_it(run, tmp_path):
    library_dir(tmp_path / "lib", {"p.yaml": MINIMAL + "on: 3\n"})
    assert failing(run, "lib/playbooks") == [
        ("p.yaml", 6, 'the key on must be text, but YAML reads it as true; quote it: "on"')
    ]


def test_owner_must_be_in_the_team_of_funnelctl_yaml(run, workspace):
    config = workspace / "funnelctl.yaml"
    config.write_text(config.read_text().replace("team: []", "team: [ana, bruno]"))
    write(
        workspace / "playbooks" / "zz-team.yaml",
        """\
id: team-check
title: Team check
stages:
  - id: first
    title: First
    owner: carla
    on_enter:
      - assign: dora
      - task: Call
        owner: ana
        escalate_after: 2d
        escalate_to: eve
      - task: Meet
        owner: bruno
      - assign: round-robin
      - task: Help
        owner: partner:helpdesk-partner
""",
    )
    result = run("playbook", "validate")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == "Error: The playbooks have 3 problem(s)"
    hint = (
        "is not in the team of funnelctl.yaml (team: ana, bruno); use customer-owner, "
        "round-robin, least-busy, a team member or partner:<id>"
    )
    assert located(problem_lines(result.stderr)) == [
        ("zz-team.yaml", 4, f"funnel team-check, stage first: 'carla' {hint}"),
        ("zz-team.yaml", 8, f"funnel team-check, stage first: assign: 'dora' {hint}"),
        ("zz-team.yaml", 9, f"funnel team-check, stage first: task 'Call': 'eve' {hint}"),
    ]


def test_a_stage_owner_may_be_a_partner_the_playbooks_define(tmp_path):
    partners = "partners:\n  - id: desk\n    name: Desk\n    email: desk@example.com\n"
    playbooks = library_dir(
        tmp_path / "lib",
        {"p.yaml": MINIMAL + "    owner: partner:desk\n", "q.yaml": partners},
    )
    load_library([playbooks])  # no problem
    unknown = library_dir(tmp_path / "other", {"p.yaml": MINIMAL + "    owner: partner:nobody\n"})
    assert load_problems(unknown) == [
        (
            "p.yaml",
            4,
            "funnel mini, stage first: no partner 'nobody' is defined (partners: none)",
        )
    ]


def test_escalate_after_and_escalate_to_go_together(tmp_path):
    text = MINIMAL + "    on_enter:\n      - task: Call\n        escalate_after: 2d\n"
    playbooks = library_dir(tmp_path / "lib", {"p.yaml": text})
    problems = load_problems(playbooks)
    assert [(line, m.split(":")[1].strip()) for _, line, m in problems] == [
        (8, "escalate_after and escalate_to go together")
    ]


def test_bad_values_of_other_keys(tmp_path):
    text = """\
id: Mini_Funnel
title: Mini
allow_backward: "no"
stages:
  - id: first
    title: First
    on_enter:
      - close: finished
      - task: Call
        sourcing: partner
plays:
  - id: kick
    title: Kick
    sourcing: outside
    actions: []
partners:
  - id: desk
    name: Desk
    email: not-an-address
"""
    playbooks = library_dir(tmp_path / "lib", {"p.yaml": text})
    assert load_problems(playbooks) == [
        ("p.yaml", 1, "playbook: funnel id 'Mini_Funnel' must be lowercase letters, digits and -"),
        ("p.yaml", 3, "playbook: 'allow_backward' must be true or false, not 'no'"),
        (
            "p.yaml",
            8,
            "funnel Mini_Funnel, stage first, close action: 'close': 'finished' must be one "
            "of won, lost, churned",
        ),
        (
            "p.yaml",
            10,
            "funnel Mini_Funnel, stage first, task action: 'sourcing': 'partner' must be one "
            "of internal, outsourced, automated",
        ),
        (
            "p.yaml",
            14,
            "play kick: 'sourcing': 'outside' must be one of internal, outsourced, automated",
        ),
        ("p.yaml", 15, "play kick: a play needs at least one action"),
        ("p.yaml", 19, "partner desk: 'not-an-address' is not an email address"),
    ]


def test_load_library_lists_every_problem_in_details(tmp_path):
    playbooks = library_dir(
        tmp_path / "lib", {"p.yaml": MINIMAL + "    stagnant_after: 3\n    colour: red\n"}
    )
    with pytest.raises(ValidationError) as caught:
        load_library([playbooks])
    assert caught.value.message == "The playbooks have 2 problem(s)"
    assert [d.split(": ")[0] for d in caught.value.details] == [
        f"{playbooks}/p.yaml:6",
        f"{playbooks}/p.yaml:7",
    ]


def test_a_broken_playbook_stops_every_command_and_changes_nothing(run, workspace, dump):
    run("customer", "add", "ana@example.com", "--name", "Ana")
    before = dump(workspace)
    write(workspace / "playbooks" / "broken.yaml", MINIMAL.replace("title: First", "title: NO"))
    result = run("customer", "list", "--funnel", "mini")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == "Error: The playbooks have 1 problem(s)"
    assert located(problem_lines(result.stderr)) == [
        (
            "broken.yaml",
            5,
            "funnel mini, stage first: 'title' must be text, not NO (YAML reads NO as false; "
            'quote it: "NO")',
        )
    ]
    listed = run("playbook", "list")
    assert listed.exit_code == 1 and listed.stdout == ""
    assert dump(workspace) == before


def test_validate_one_workspace_file_resolves_references_to_the_others(run, workspace):
    result = run("playbook", "validate", str(workspace / "playbooks" / "after-sales.yaml"))
    assert result.exit_code == 0, result.stderr


def test_each_problem_is_one_line_of_stderr(run, tmp_path):
    library_dir(tmp_path / "lib", {"p.yaml": MINIMAL + "    touchpoints: [fax]\n"})
    result = validate(run, "lib/playbooks")
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert lines[1].endswith("meetup, conference)")


# -- playbook list / show / plays ---------------------------------------------------------------


def test_playbook_list_json(run, workspace):
    result = run("playbook", "list", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    funnels = json.loads(result.stdout)
    assert [f["funnel"] for f in funnels] == ["after-sales", "relationship", "support"]
    by_id = {f["funnel"]: f for f in funnels}
    assert by_id["after-sales"]["stages"] == AFTER_SALES_STAGES
    assert by_id["after-sales"]["title"] == "After-sales (first 90 days)"
    assert by_id["support"]["stages"] == ["onboarding", "post-sales", "retention", "advocacy"]
    assert by_id["relationship"]["stages"][0] == "kickoff"
    assert all(isinstance(f["actions"], int) and f["actions"] > 0 for f in funnels)
    assert Path(by_id["support"]["file"]) == workspace / "playbooks" / "support.yaml"


def test_playbook_list_table_and_csv(run, workspace):
    table = run("playbook", "list")
    assert table.exit_code == 0
    for text in (
        "Funnels",
        "after-sales",
        "After-sales (first 90 days)",
        "relationship",
        "support",
    ):
        assert text in table.stdout
    assert "demand-analysis, customer-contact, deployment" in table.stdout
    csv = run("playbook", "list", "--format", "csv")
    assert csv.stdout.splitlines()[0] == "funnel,title,stages,actions"
    assert csv.stdout.splitlines()[1].startswith(
        "after-sales,After-sales (first 90 days),demand-analysis;customer-contact;"
    )


def test_playbook_show_after_sales_json(run, workspace):
    result = run("playbook", "show", "after-sales", "--format", "json")
    assert result.exit_code == 0, result.stderr
    stages = json.loads(result.stdout)
    assert [s["stage"] for s in stages] == AFTER_SALES_STAGES
    assert [s["stagnant_after"] for s in stages[:3]] == [1, 5, 30]
    assert all(s["stagnant_after"] is None for s in stages[3:])
    assert [s["advance_after"] for s in stages[3:6]] == [30, 30, 30]
    assert stages[1]["touchpoints"] == ["email", "phone"]
    assert all(s["owner"] == "customer-owner" for s in stages)
    assert stages[-1]["actions"] == [
        "mark won (First 90 days completed and goals met)",
        "enroll in relationship",
    ]
    assert stages[1]["actions"] == [
        "email 'welcome' on entry, not sent if the customer replies",
        "task 'Call the customer' due +2d (phone, the stage's owner, internal), "
        "dropped if customer.replied",
    ]


def test_playbook_show_table(run, workspace):
    result = run("playbook", "show", "after-sales")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "After-sales (first 90 days) (after-sales; backward moves allowed)" in out
    for stage in AFTER_SALES_STAGES:
        assert stage in out
    for alert in ("stagnant 1d", "stagnant 5d", "stagnant 30d", "advance 30d"):
        assert alert in out
    assert "mark won" in out and "enroll in relationship" in out
    # stages in funnel order
    positions = [out.index(f"│ {stage} ") for stage in AFTER_SALES_STAGES]
    assert positions == sorted(positions)


def test_playbook_show_unknown_funnel_lists_the_funnels(run, workspace):
    result = run("playbook", "show", "nope")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: No funnel 'nope' in the playbooks (funnels: after-sales, relationship, support).\n"
    )


def test_playbook_plays_json(run, workspace):
    result = run("playbook", "plays", "--format", "json")
    assert result.exit_code == 0, result.stderr
    plays = json.loads(result.stdout)
    assert [p["play"] for p in plays] == SHIPPED_PLAYS
    by_id = {p["play"]: p for p in plays}
    assert {p["sourcing"] for p in plays} == {"internal", "outsourced", "automated"}
    handoff = by_id["support-handoff"]
    assert handoff["sourcing"] == "outsourced"
    assert handoff["what"] == "Hand-off to first-line support"
    assert handoff["trigger"] == (
        "A customer enters post-sales support (the support funnel starts it)"
    )
    assert "owner partner:helpdesk-partner" in handoff["actions"][0]
    assert (
        "escalated to partner:helpdesk-partner after 2d overdue"
        in by_id["issue-escalation"]["actions"][0]
    )
    assert all(p["actions"] and p["trigger"] for p in plays)


def test_playbook_plays_table(run, workspace):
    result = run("playbook", "plays")
    assert result.exit_code == 0, result.stderr
    assert "Plays" in result.stdout
    for play in SHIPPED_PLAYS:
        assert play in result.stdout


@pytest.mark.parametrize(
    ("deep", "line"),
    [
        ("stages: " + "[" * 300 + "]" * 300 + "\n", 3),
        # a list per line from line 4, at level 2 (the top mapping is level 1): level 101
        # begins on line 103
        ("stages:\n" + "".join("  " * i + "- \n" for i in range(1, 400)), 103),
    ],
    ids=["flow", "block"],
)
def test_a_playbook_nested_hundreds_of_levels_is_a_problem_not_a_crash(run, tmp_path, deep, line):
    library_dir(tmp_path / "lib", {"deep.yaml": "id: deep\ntitle: Deep\n" + deep})
    assert failing(run, "lib/playbooks") == [
        (
            "deep.yaml",
            line,
            "lists or mappings are nested more than 100 levels deep here; a playbook or "
            "settings file needs only a few",
        )
    ]


def test_settings_nested_hundreds_of_levels_are_a_problem_not_a_crash(run, workspace):
    settings = workspace / "funnelctl.yaml"
    settings.write_text("team: " + "[" * 500 + "]" * 500 + "\n")
    result = run("due")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: {settings}:1: lists or mappings are nested more than 100 levels deep here; "
        "a playbook or settings file needs only a few\n"
    )

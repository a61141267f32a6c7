"""Workspaces: finding and creating one, and reading funnelctl.yaml strictly.

Every problem in funnelctl.yaml is reported as `file:line: message`, all at once, and
any command run in a workspace whose settings are broken fails with those lines.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from conftest import write

from funnelctl import yamlfile
from funnelctl.errors import ValidationError, WorkspaceError
from funnelctl.workspace import (
    CONFIG_TEMPLATE,
    WEEKDAYS,
    Settings,
    init_workspace,
    load_settings,
    locate,
    open_workspace,
    shipped_dir,
    user_data_dir,
)

LOCATED = re.compile(r"^(.+?):(\d+): (.+)$")


def settings_file(tmp_path: Path, text: str) -> Path:
    return write(tmp_path / "funnelctl.yaml", text)


def problems(path: Path) -> list[tuple[int, str]]:
    """(line, message) of every problem load_settings finds in ``path``."""
    with pytest.raises(ValidationError) as caught:
        load_settings(path)
    error = caught.value
    assert error.message == f"{path} has {len(error.details)} problem(s)"
    result = []
    for item in error.details:
        match = LOCATED.match(item)
        assert match and match.group(1) == str(path), item
        result.append((int(match.group(2)), match.group(3)))
    return result


def problem_lines(stderr: str) -> list[str]:
    """The `file:line: message` lines printed under the first `Error:` line, one per line."""
    lines = stderr.splitlines()[1:]
    assert all(line.startswith("  ") for line in lines), stderr
    return [line[2:] for line in lines]


# -- the settings that the design describes ----------------------------------------------------

DESIGN_EXAMPLE = """\
timezone: Europe/Lisbon          # dates of "today" and send windows
sender: "Ana Lima <ana@example.com>"
team: [ana, bruno]               # owners for round-robin assignment
send:
  window: {hours: "09:00-17:00", weekdays: [mon, tue, wed, thu, fri]}
  max_late_days: 3               # a queued email older than this is skipped as stale
  rate_per_minute: 0             # 0 = no limit
transport:
  kind: smtp                     # smtp | sendmail | maildir
  host: smtp.example.com
  port: 587
  security: starttls             # ssl | starttls | none
  username: ana@example.com
  password_env: FUNNELCTL_SMTP_PASSWORD   # the password only ever comes from the environment
  timeout_s: 30
  # sendmail: {command: "/usr/sbin/sendmail -t -i"}
  # maildir: {path: outbox/}
"""


def test_the_design_example_loads(tmp_path):
    settings = load_settings(settings_file(tmp_path, DESIGN_EXAMPLE))
    assert settings.timezone == "Europe/Lisbon"
    assert str(settings.zone) == "Europe/Lisbon"
    assert settings.sender == "Ana Lima <ana@example.com>"
    assert settings.team == ("ana", "bruno")
    window = settings.send.window
    assert (window.start_minute, window.end_minute) == (9 * 60, 17 * 60)
    assert window.weekdays == ("mon", "tue", "wed", "thu", "fri")
    assert (settings.send.max_late_days, settings.send.rate_per_minute) == (3, 0)
    t = settings.transport
    assert (t.kind, t.host, t.port, t.security) == ("smtp", "smtp.example.com", 587, "starttls")
    assert (t.username, t.password_env, t.timeout_s) == (
        "ana@example.com",
        "FUNNELCTL_SMTP_PASSWORD",
        30,
    )
    assert not hasattr(t, "password")


def test_a_transport_and_an_inbox_without_password_env_name_the_default_variables(tmp_path):
    text = (
        "transport: {kind: smtp, host: smtp.example.com}\n"
        "inbox: {host: imap.example.com, username: ana}\n"
    )
    settings = load_settings(settings_file(tmp_path, text))
    assert settings.transport.password_env == "FUNNELCTL_SMTP_PASSWORD"
    assert settings.inbox is not None
    assert settings.inbox.password_env == "FUNNELCTL_IMAP_PASSWORD"


@pytest.mark.parametrize("text", ["", "\n", "# nothing set yet\n", "---\n"])
def test_an_empty_settings_file_means_the_defaults(tmp_path, text):
    assert load_settings(settings_file(tmp_path, text)) == Settings()


def test_the_defaults():
    settings = Settings()
    assert (settings.timezone, settings.sender, settings.team) == ("UTC", "", ())
    assert settings.send.window.weekdays == WEEKDAYS
    assert (settings.send.window.start_minute, settings.send.window.end_minute) == (0, 1440)
    assert settings.transport.kind == "maildir"


def test_the_commented_settings_that_init_writes_load(tmp_path):
    text = CONFIG_TEMPLATE.format(
        timezone="Europe/Lisbon", sender="Ana <ana@example.com>", team="ana"
    )
    settings = load_settings(settings_file(tmp_path, text))
    assert settings.team == ("ana",)
    assert settings.transport.kind == "maildir"
    assert settings.transport.path == "outbox"
    assert settings.send.window.weekdays == ("mon", "tue", "wed", "thu", "fri")


@pytest.mark.parametrize(
    ("transport", "port", "security"),
    [
        ("{kind: smtp}", 587, "starttls"),
        ("{kind: smtp, security: ssl}", 465, "ssl"),
        ("{kind: smtp, security: none}", 25, "none"),
        ("{kind: smtp, security: ssl, port: 2465}", 2465, "ssl"),
        ("{kind: maildir}", 25, "none"),
    ],
)
def test_the_smtp_port_follows_the_security(tmp_path, transport, port, security):
    settings = load_settings(settings_file(tmp_path, f"transport: {transport}\n"))
    assert (settings.transport.port, settings.transport.security) == (port, security)


def test_hours_may_run_to_midnight(tmp_path):
    text = 'send:\n  window: {hours: "18:30-24:00", weekdays: [sat, sun]}\n'
    window = load_settings(settings_file(tmp_path, text)).send.window
    assert (window.start_minute, window.end_minute, window.weekdays) == (1110, 1440, ("sat", "sun"))


# -- every problem, on its line ------------------------------------------------------------------


@pytest.mark.parametrize(
    "zone",
    ["Mars/Olympus", "Lisbon", "utc", "Europe", "America", "/etc/localtime", "../UTC", "''"],
)
def test_unknown_time_zones(tmp_path, zone):
    path = settings_file(tmp_path, f"sender: ana@example.com\ntimezone: {zone}\n")
    shown = "" if zone == "''" else zone
    assert problems(path) == [
        (2, f"settings: unknown time zone {shown!r} (use a name like Europe/Lisbon)")
    ]


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ('"9-17"', "hours '9-17' must look like 09:00-17:00 (times from 00:00 to 24:00)"),
        (
            '"9:00-17:00"',
            "hours '9:00-17:00' must look like 09:00-17:00 (times from 00:00 to 24:00)",
        ),
        (
            '"09:00-24:30"',
            "hours '09:00-24:30' must look like 09:00-17:00 (times from 00:00 to 24:00)",
        ),
        (
            '"09:00-25:00"',
            "hours '09:00-25:00' must look like 09:00-17:00 (times from 00:00 to 24:00)",
        ),
        (
            '"09:60-17:00"',
            "hours '09:60-17:00' must look like 09:00-17:00 (times from 00:00 to 24:00)",
        ),
        ('"17:00-09:00"', "hours '17:00-09:00' must end after they start"),
        ('"09:00-09:00"', "hours '09:00-09:00' must end after they start"),
        ("9", "'hours' must be text, not the number 9 (quote it if it is text)"),
    ],
)
def test_bad_hours(tmp_path, hours, message):
    path = settings_file(tmp_path, f"send:\n  window:\n    hours: {hours}\n")
    assert problems(path) == [(3, f"send.window: {message}")]


def test_unknown_weekdays_each_on_its_line(tmp_path):
    text = """\
send:
  window:
    hours: "09:00-17:00"
    weekdays:
      - mon
      - tues
      - Fri
      - 3
"""
    use = ", ".join(WEEKDAYS)
    assert problems(settings_file(tmp_path, text)) == [
        (6, f"send.window: unknown weekday 'tues'; use {use}"),
        (7, f"send.window: unknown weekday 'Fri'; use {use}"),
        (8, f"send.window: unknown weekday the number 3 (quote it if it is text); use {use}"),
    ]


def test_no_weekdays_at_all_is_an_error(tmp_path):
    path = settings_file(tmp_path, "send:\n  window: {weekdays: []}\n")
    assert problems(path) == [(2, "send.window: 'weekdays' is empty: no email would ever be sent")]


@pytest.mark.parametrize("where", ["transport", "top"])
def test_a_password_is_refused_and_never_repeated(tmp_path, where, run, workspace):
    secret = "hunter2-s3cret"
    if where == "transport":
        text = f"transport:\n  kind: smtp\n  username: ana\n  password: {secret}\n"
        line = 4
    else:
        text = f"sender: ana@example.com\npassword: {secret}\n"
        line = 2
    path = settings_file(tmp_path, text)
    found = problems(path)
    assert found == [
        (
            line,
            f"{'transport' if where == 'transport' else 'settings'}: a password is never stored "
            "in funnelctl.yaml; set transport.password_env to the name of an environment "
            "variable that holds it",
        )
    ]
    assert secret not in repr(found)
    # nor does any command print it
    write(workspace / "funnelctl.yaml", text)
    result = run("customer", "list")
    assert result.exit_code == 1
    assert secret not in result.stdout + result.stderr
    assert "a password is never stored in funnelctl.yaml" in result.stderr


def test_password_is_not_offered_among_the_allowed_keys(tmp_path):
    text = "transport:\n  kind: smtp\n  password: x\n  passwort: y\n"
    found = problems(settings_file(tmp_path, text))
    assert [line for line, _ in found] == [3, 4]
    unknown = found[1][1]
    assert unknown.startswith("transport: unknown key 'passwort' (did you mean 'password_env'?")
    assert "password," not in unknown and "'password'" not in unknown


@pytest.mark.parametrize("value", ["hunter2!", "my secret", "12345", "yes"])
def test_password_env_must_name_a_variable_and_is_never_echoed(tmp_path, value):
    path = settings_file(tmp_path, f"transport:\n  kind: smtp\n  password_env: {value}\n")
    found = problems(path)
    assert found == [
        (
            3,
            "transport: 'password_env' must be the name of an environment variable, such as "
            "FUNNELCTL_SMTP_PASSWORD, never the password itself",
        )
    ]


def test_unknown_keys_everywhere_with_a_suggestion(tmp_path):
    text = """\
timezone: UTC
tmezone: Europe/Lisbon
send:
  max_late: 3
  window:
    hour: "09:00-17:00"
transport:
  kind: smtp
  hostname: smtp.example.com
"""
    assert problems(settings_file(tmp_path, text)) == [
        (
            2,
            "settings: unknown key 'tmezone' (did you mean 'timezone'? allowed: inbox, send, sender, "
            "signature, team, timezone, transport)",
        ),
        (
            4,
            "send: unknown key 'max_late' (did you mean 'max_late_days'? allowed: "
            "max_late_days, rate_per_minute, window)",
        ),
        (6, "send.window: unknown key 'hour' (did you mean 'hours'? allowed: hours, weekdays)"),
        (
            9,
            "transport: unknown key 'hostname' (did you mean 'host'? allowed: ca_file, command, host, "
            "kind, password_env, path, port, security, timeout_s, username)",
        ),
    ]


def test_wrong_types_are_each_reported_on_their_line(tmp_path):
    text = """\
timezone: 1
sender: ana
team: ana
send:
  max_late_days: "3"
  rate_per_minute: 1.5
  window: "9-5"
transport:
  kind: pigeon
  security: tls
  port: "587"
  timeout_s: "30"
  username: 12345
"""
    assert problems(settings_file(tmp_path, text)) == [
        (1, "settings: 'timezone' must be text, not the number 1 (quote it if it is text)"),
        (2, "settings: sender 'ana' has no email address"),
        (3, "settings: 'team' must be a list, not 'ana'"),
        (5, "send: 'max_late_days' must be a whole number, not '3'"),
        (6, "send: 'rate_per_minute' must be a whole number, not the number 1.5"),
        (7, "send: 'window' must be a mapping, not '9-5'"),
        (9, "transport: transport kind 'pigeon' must be smtp, sendmail or maildir"),
        (10, "transport: security 'tls' must be ssl, starttls or none"),
        (11, "transport: 'port' must be a whole number, not '587'"),
        (12, "transport: 'timeout_s' must be a number, not '30'"),
        (13, "transport: 'username' must be text, not the number 12345 (quote it if it is text)"),
    ]


def test_numbers_out_of_range(tmp_path):
    text = """\
send:
  max_late_days: -1
  rate_per_minute: -5
transport:
  kind: smtp
  port: 99999
  timeout_s: 0
"""
    assert problems(settings_file(tmp_path, text)) == [
        (2, "send: 'max_late_days' must not be negative"),
        (3, "send: 'rate_per_minute' must not be negative"),
        (6, "transport: port 99999 must be between 1 and 65535"),
        (7, "transport: 'timeout_s' must be more than 0 seconds"),
    ]


def test_booleans_where_a_number_or_name_is_expected(tmp_path):
    text = "send:\n  max_late_days: no\nteam: [ana, yes]\n"
    assert problems(settings_file(tmp_path, text)) == [
        (2, "send: 'max_late_days' must be a whole number, not no"),
        (
            3,
            'settings: team member yes (YAML reads yes as true; quote it: "yes") must be a '
            "short name like ana",
        ),
    ]


def test_team_members(tmp_path):
    text = """\
team:
  - ana
  - bruno
  - ana
  - Ana Lima
  - round-robin
  - 0755
"""
    assert problems(settings_file(tmp_path, text)) == [
        (4, "settings: team member 'ana' twice"),
        (
            5,
            "settings: team member 'Ana Lima' must be a short name like ana (a person with a "
            "name and an address: {id: ana, name: Ana Lima, email: ana@example.com})",
        ),
        (
            6,
            "settings: team member 'round-robin' would be taken for the owner rule of that "
            "name in the playbooks; choose another name",
        ),
        (
            7,
            'settings: team member 0755 (YAML reads 0755 as the number 493; quote it: "0755") '
            "must be a short name like ana",
        ),
    ]


def test_a_sender_is_one_line_with_an_address(tmp_path):
    path = settings_file(tmp_path, 'sender: "Ana <ana@example.com>\\nBcc: all@example.com"\n')
    assert problems(path) == [(1, "settings: sender must be one line")]


def test_duplicate_keys_name_the_first_line_and_the_rest_is_still_checked(tmp_path):
    text = """\
timezone: UTC
team: [ana]
timezone: Europe/Lisbon
send:
  max_late_days: 3
  max_late_days: 5
transport:
  kind: carrier-pigeon
"""
    assert problems(settings_file(tmp_path, text)) == [
        (3, "duplicate key 'timezone' (first on line 1)"),
        (6, "duplicate key 'max_late_days' (first on line 5)"),
        (8, "transport: transport kind 'carrier-pigeon' must be smtp, sendmail or maildir"),
    ]


@pytest.mark.parametrize("text", ["- timezone: UTC\n", "UTC\n", "42\n"])
def test_settings_must_be_a_mapping(tmp_path, text):
    path = settings_file(tmp_path, text)
    with pytest.raises(ValidationError) as caught:
        load_settings(path)
    assert caught.value.message == f"{path} is not valid"
    assert caught.value.details == [f"{path}:1: funnelctl.yaml must be a mapping of settings"]


def test_a_yaml_syntax_error_gives_the_line(tmp_path):
    path = settings_file(tmp_path, "timezone: UTC\nteam: [ana, bruno\nsender: x@example.com\n")
    with pytest.raises(ValidationError) as caught:
        load_settings(path)
    assert caught.value.message == (
        f"{path}:3: expected ',' or ']', but got ':' (while parsing a flow sequence that "
        "starts on line 2)"
    )


def test_a_settings_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "funnelctl.yaml"
    path.write_bytes("sender: Jo\xe3o <joao@example.com>\n".encode("latin-1"))
    with pytest.raises(ValidationError) as caught:
        load_settings(path)
    assert caught.value.message == f"{path}: is not UTF-8 text"


# -- any command in a workspace with broken settings ---------------------------------------------

BROKEN = """\
timezone: Europe
team: [ana]
send:
  window: {hours: "09:00-24:30", weekdays: [mon, tues]}
transport:
  kind: smtp
  password: hunter2
"""


@pytest.mark.parametrize(
    "args",
    [
        ("customer", "list"),
        ("customer", "add", "ana@example.com"),
        ("playbook", "list"),
        ("playbook", "validate"),
        ("playbook", "validate", "playbooks"),
        ("export", "customers"),
        ("backup", "copy.db"),
    ],
    ids=lambda a: " ".join(a),
)
def test_every_command_fails_on_broken_settings_with_every_line(run, workspace, dump, args):
    config = workspace / "funnelctl.yaml"
    before = dump(workspace)
    write(config, BROKEN)
    result = run(*args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[0] == f"Error: {config} has 4 problem(s)"
    assert problem_lines(result.stderr) == [
        f"{config}:1: settings: unknown time zone 'Europe' (use a name like Europe/Lisbon)",
        f"{config}:4: send.window: hours '09:00-24:30' must look like 09:00-17:00 "
        "(times from 00:00 to 24:00)",
        f"{config}:4: send.window: unknown weekday 'tues'; use mon, tue, wed, thu, fri, sat, sun",
        f"{config}:7: transport: a password is never stored in funnelctl.yaml; set "
        "transport.password_env to the name of an environment variable that holds it",
    ]
    assert "hunter2" not in result.stderr
    assert dump(workspace) == before
    assert not (workspace / "copy.db").exists()


def test_a_zone_folder_is_an_error_not_a_crash(run, workspace):
    write(workspace / "funnelctl.yaml", "timezone: America\n")
    result = run("customer", "list")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {workspace / 'funnelctl.yaml'} has 1 problem(s)\n"
        f"  {workspace / 'funnelctl.yaml'}:1: settings: unknown time zone 'America' "
        "(use a name like Europe/Lisbon)\n"
    )


def test_a_settings_syntax_error_stops_a_command(run, workspace):
    config = workspace / "funnelctl.yaml"
    write(config, "team: [ana\n")
    result = run("customer", "list")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {config}:1: expected ',' or ']', but got '<stream end>' on line 2 while "
        "parsing a flow sequence that starts here\n"
    )


def test_settings_are_read_by_commands(run, workspace):
    sender = 'sender: "Ana <ana@example.com>"\n'
    write(workspace / "funnelctl.yaml", sender + "team: [ana, bruno]\n")
    write(
        workspace / "playbooks" / "zz.yaml",
        "id: mini\ntitle: Mini\nstages:\n  - id: a\n    title: A\n    owner: bruno\n",
    )
    assert run("playbook", "validate").exit_code == 0
    write(workspace / "funnelctl.yaml", sender + "team: [ana]\n")
    result = run("playbook", "validate")
    assert result.exit_code == 1
    assert "'bruno' is not in the team of funnelctl.yaml (team: ana)" in result.stderr


# -- finding and creating a workspace ------------------------------------------------------------


def test_locate_prefers_home_then_the_nearest_parent_then_the_data_folder(tmp_path):
    outer = tmp_path / "outer"
    inner = outer / "inner"
    deep = inner / "a" / "b"
    deep.mkdir(parents=True)
    write(outer / "funnelctl.yaml", "")
    write(inner / "funnelctl.yaml", "")
    assert locate(None, deep) == inner
    assert locate(None, outer) == outer
    assert locate(str(tmp_path / "elsewhere"), deep) == tmp_path / "elsewhere"
    assert locate(None, tmp_path) == user_data_dir()


def test_the_data_folder_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert user_data_dir() == tmp_path / "xdg" / "funnelctl"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert user_data_dir() == Path.home() / ".local" / "share" / "funnelctl"


def test_open_workspace_without_settings_says_how_to_create_one(tmp_path):
    with pytest.raises(WorkspaceError) as caught:
        open_workspace(tmp_path / "empty", tmp_path)
    assert caught.value.message.startswith(f"No funnelctl workspace at {tmp_path / 'empty'}: ")
    assert "funnelctl init" in caught.value.message


def test_init_workspace_copies_the_shipped_files_and_settings_load(tmp_path):
    created = init_workspace(tmp_path / "ws", team=("ana", "bruno"), sender="Ana <ana@example.com>")
    assert created.settings.team == ("ana", "bruno")
    assert created.settings.sender == "Ana <ana@example.com>"
    copied = sorted(p.name for p in created.playbooks_dir.iterdir())
    assert copied == sorted(p.name for p in shipped_dir("playbooks").iterdir())
    assert {"after-sales.yaml", "journey-plays.yaml", "relationship.yaml", "support.yaml"} <= set(
        copied
    )
    assert (created.templates_dir / "welcome.pt.txt").is_file()
    assert created.db_path == tmp_path / "ws" / "funnel.db"
    assert open_workspace(None, created.root / "playbooks").root == created.root


@pytest.mark.parametrize("existing", ["funnelctl.yaml", "playbooks", "templates", "funnel.db"])
def test_init_workspace_never_overwrites(tmp_path, existing):
    root = tmp_path / "ws"
    root.mkdir()
    target = root / existing
    if "." in existing:
        target.write_text("mine\n")
    else:
        target.mkdir()
    with pytest.raises(WorkspaceError, match="never overwrites"):
        init_workspace(root)
    assert sorted(p.name for p in root.iterdir()) == [existing]


def test_init_workspace_on_a_file_is_an_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(WorkspaceError, match="is not a folder"):
        init_workspace(tmp_path / "file")


# -- the strict YAML reader underneath -----------------------------------------------------------


def test_the_reader_keeps_lines_and_what_was_written(tmp_path):
    data = yamlfile.load(
        tmp_path / "x.yaml",
        "a: 1\nb:\n  - x\n  - NO\n  - 0755\nc: {d: off, e: '0755'}\n",
    )
    assert data.line == 1
    assert [data.line_of(k) for k in "abc"] == [1, 2, 6]
    assert data["b"].item_lines == [3, 4, 5]
    assert data["b"] == ["x", False, 493]
    assert data["b"].source_of(1) == "NO" and data["b"].source_of(2) == "0755"
    assert data["b"].source_of(0) is None  # text needs no note
    assert data["c"].source_of("d") == "off"
    assert data["c"].source_of("e") is None  # quoted: text as written
    assert data.source_of("a") == "1"


def test_the_reader_collects_key_problems_on_the_top_mapping(tmp_path):
    data = yamlfile.load(tmp_path / "x.yaml", "a: 1\nb:\n  c: 1\n  c: 2\na: 3\nyes: 4\n")
    assert data == {"a": 1, "b": {"c": 1}}  # the first value of a duplicate is kept
    assert data.load_problems == [
        (4, "duplicate key 'c' (first on line 3)"),
        (5, "duplicate key 'a' (first on line 1)"),
        (6, 'the key yes must be text, but YAML reads it as true; quote it: "yes"'),
    ]


def test_key_problems_under_a_top_level_list_still_stop_the_reading(tmp_path):
    with pytest.raises(ValidationError) as caught:
        yamlfile.load(tmp_path / "x.yaml", "- a: 1\n  a: 2\n- b: 1\n  b: 2\n")
    assert caught.value.message == f"{tmp_path / 'x.yaml'}:2: duplicate key 'a' (first on line 1)"
    assert caught.value.details == [f"{tmp_path / 'x.yaml'}:4: duplicate key 'b' (first on line 3)"]


def test_merge_keys_may_be_overridden_but_not_repeated(tmp_path):
    text = "base: &b {due: 1d, owner: ana}\nx:\n  <<: *b\n  due: 2d\n  due: 3d\n"
    data = yamlfile.load(tmp_path / "x.yaml", text)
    assert data["x"] == {"due": "2d", "owner": "ana"}
    assert data.load_problems == [(5, "duplicate key 'due' (first on line 4)")]


def test_the_reader_is_safe(tmp_path):
    with pytest.raises(ValidationError, match="could not determine a constructor"):
        yamlfile.load(tmp_path / "x.yaml", "a: !!python/object/apply:os.system ['true']\n")


def test_problems_come_out_by_file_then_line():
    found = yamlfile.Problems()
    found.add("b.yaml", 3, "three")
    found.add("a.yaml", 10, "ten")
    found.add("a.yaml", 2, "two")
    found.add("b.yaml", 1, "one")
    with pytest.raises(ValidationError) as caught:
        found.raise_if_any("{n} problem(s)")
    assert caught.value.message == "4 problem(s)"
    assert caught.value.details == [
        "a.yaml:2: two",
        "a.yaml:10: ten",
        "b.yaml:1: one",
        "b.yaml:3: three",
    ]


def test_init_on_a_full_disk_leaves_nothing_behind_and_can_be_run_again(run, small_disk):
    disk = small_disk(256)
    root = disk / "ws"

    failed = run("init", str(root), "--demo")

    assert (failed.exit_code, failed.stdout) == (1, "")
    assert "full" in failed.stderr and failed.stderr.count("\n") == 1
    assert sorted(p.name for p in disk.iterdir()) == []


def test_a_failed_init_never_removes_what_was_there_before(run, tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    (root / "funnelctl.yaml").write_text("timezone: Europe/Lisbon\n")

    result = run("init", str(root))

    assert result.exit_code == 1
    assert sorted(p.name for p in root.iterdir()) == ["funnelctl.yaml", "notes.txt"]
    assert (root / "funnelctl.yaml").read_text() == "timezone: Europe/Lisbon\n"


# -- the settings cache ------------------------------------------------------------------


def test_settings_are_cached_owner_only_and_read_back_equal(tmp_path):
    init_workspace(tmp_path / "ws")
    cache = tmp_path / "ws" / ".cache" / "settings.json"
    first = open_workspace(tmp_path / "ws", tmp_path).settings
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    written = cache.stat().st_mtime_ns
    again = open_workspace(tmp_path / "ws", tmp_path).settings
    assert again == first == load_settings(tmp_path / "ws" / "funnelctl.yaml")
    assert cache.stat().st_mtime_ns == written  # read, not written again


def test_a_settings_edit_is_seen_even_with_the_same_size_and_time(tmp_path):
    import os

    init_workspace(tmp_path / "ws")
    path = tmp_path / "ws" / "funnelctl.yaml"
    path.write_text(re.sub(r"(?m)^timezone: .*$", "timezone: Europe/Lisbon", path.read_text()))
    assert open_workspace(tmp_path / "ws", tmp_path).settings.timezone == "Europe/Lisbon"
    before = path.stat()
    path.write_text(path.read_text().replace("Europe/Lisbon", "Europe/Berlin"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    assert open_workspace(tmp_path / "ws", tmp_path).settings.timezone == "Europe/Berlin"


def test_broken_settings_are_reported_every_time_and_never_cached(tmp_path):
    init_workspace(tmp_path / "ws")
    path = tmp_path / "ws" / "funnelctl.yaml"
    open_workspace(tmp_path / "ws", tmp_path)
    path.write_text(re.sub(r"(?m)^timezone: .*$", "timezone: Mars/Olympus", path.read_text()))
    for _ in range(2):
        with pytest.raises(ValidationError, match="problem"):
            open_workspace(tmp_path / "ws", tmp_path)


def test_a_damaged_settings_cache_is_ignored(tmp_path):
    init_workspace(tmp_path / "ws")
    cache = tmp_path / "ws" / ".cache" / "settings.json"
    expected = open_workspace(tmp_path / "ws", tmp_path).settings
    for damage in (b"{not json", b'{"key": 1}', cache.read_bytes().replace(b"Transport", b"Path")):
        cache.write_bytes(damage)
        assert open_workspace(tmp_path / "ws", tmp_path).settings == expected


# -- inbox: ------------------------------------------------------------------------------------


def test_an_imap_inbox_with_its_folders(tmp_path):
    text = (
        "inbox:\n  kind: imap\n  host: imap.example.com\n  username: ana@example.com\n"
        "  folders: {inbox: INBOX, sent: Sent Items}\n"
    )
    inbox = load_settings(settings_file(tmp_path, text)).inbox
    assert inbox is not None
    assert (inbox.kind, inbox.host, inbox.port, inbox.security) == (
        "imap",
        "imap.example.com",
        993,
        "ssl",
    )
    assert (inbox.inbox_folder, inbox.sent_folder) == ("INBOX", "Sent Items")
    assert inbox.password_env == "FUNNELCTL_IMAP_PASSWORD"
    assert load_settings(settings_file(tmp_path, "timezone: UTC\n")).inbox is None
    starttls = "inbox: {host: h.example, username: a, security: starttls}\n"
    assert load_settings(settings_file(tmp_path, starttls)).inbox.port == 143  # type: ignore[union-attr]


def test_a_maildir_inbox_resolves_its_paths_against_the_workspace(tmp_path):
    text = "inbox:\n  kind: maildir\n  maildir: {inbox: Mail/INBOX, sent: /srv/Sent}\n"
    inbox = load_settings(settings_file(tmp_path, text)).inbox
    assert inbox is not None
    assert (inbox.maildir_inbox, inbox.maildir_sent) == (
        str((tmp_path / "Mail" / "INBOX").resolve()),
        "/srv/Sent",
    )


def test_inbox_problems_each_on_its_line(tmp_path):
    text = (
        "inbox:\n"
        "  kind: pop3\n"
        "  host: imap.example.com\n"
        "  security: none\n"
        "  password: hunter2\n"
        "  folders: {inbox: '', junk: Spam}\n"
    )
    found = problems(settings_file(tmp_path, text))
    assert (2, "inbox: inbox kind 'pop3' must be imap or maildir") in found
    assert any(line == 4 and "would send the password in clear" in m for line, m in found)
    assert (
        5,
        "inbox: a password is never stored in funnelctl.yaml; set inbox.password_env to the "
        "name of an environment variable that holds it",
    ) in found
    assert (6, "inbox.folders: inbox.folders.inbox is empty") in found
    assert any(line == 6 and "unknown key 'junk'" in m for line, m in found)
    assert problems(settings_file(tmp_path, "inbox: {host: imap.example.com}\n")) == [
        (1, "inbox: an imap inbox needs a 'username' to log in with")
    ]
    assert "hunter2" not in repr(found)
    maildir = problems(settings_file(tmp_path, "inbox: {kind: maildir}\n"))
    assert maildir == [
        (1, "inbox: a maildir inbox needs 'maildir: {inbox: PATH}' (sent: PATH too)")
    ]


def test_an_inbox_is_cached_like_the_rest(tmp_path):
    init_workspace(tmp_path / "ws")
    settings = tmp_path / "ws" / "funnelctl.yaml"
    settings.write_text(
        settings.read_text() + "inbox: {host: 127.0.0.1, security: none, username: ana}\n"
    )
    first = open_workspace(tmp_path / "ws", tmp_path).settings
    again = open_workspace(tmp_path / "ws", tmp_path).settings
    assert again == first and again.inbox is not None and again.inbox.port == 143

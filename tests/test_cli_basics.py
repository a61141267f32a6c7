from __future__ import annotations

import json
import re
import stat
import sys

from conftest import TODAY


def test_help_lists_every_command(run):
    result = run("--help")
    assert result.exit_code == 0
    for command in ("init", "playbook", "customer", "import", "export", "backup"):
        assert command in result.stdout


def test_outside_a_workspace_says_how_to_create_one(run, tmp_path):
    result = run("customer", "list")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: No funnelctl workspace at ")
    assert "funnelctl init" in result.stderr
    assert "Traceback" not in result.stderr


def test_init_creates_owner_only_database_and_never_overwrites(run, tmp_path):
    root = tmp_path / "ws"
    first = run("init", str(root))
    assert first.exit_code == 0, first.stderr
    mode = stat.S_IMODE((root / "funnel.db").stat().st_mode)
    assert mode == 0o600
    assert (root / "playbooks" / "after-sales.yaml").is_file()
    assert (root / "templates" / "welcome.txt").is_file()
    config = (root / "funnelctl.yaml").read_text()
    assert config.startswith("#")
    before = (root / "funnelctl.yaml").read_bytes()
    again = run("init", str(root))
    assert again.exit_code == 1
    assert "never overwrites" in again.stderr
    assert (root / "funnelctl.yaml").read_bytes() == before


def test_workspace_found_from_a_subfolder(run, tmp_path, monkeypatch):
    root = tmp_path / "ws"
    assert run("init", str(root)).exit_code == 0
    sub = root / "notes" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    result = run("customer", "add", "a@example.com", "--name", "Ann")
    assert result.exit_code == 0, result.stderr
    listed = run("customer", "list", "--format", "json")
    assert [c["email"] for c in json.loads(listed.stdout)] == ["a@example.com"]


def test_home_option_beats_environment_and_parent(run, tmp_path, monkeypatch):
    one, two = tmp_path / "one", tmp_path / "two"
    assert run("init", str(one)).exit_code == 0
    assert run("init", str(two)).exit_code == 0
    monkeypatch.setenv("FUNNELCTL_HOME", str(one))
    monkeypatch.chdir(two)
    assert run("customer", "add", "x@example.com", "--home", str(two)).exit_code == 0
    assert run("customer", "add", "y@example.com").exit_code == 0  # env beats parent
    in_one = json.loads(run("customer", "list", "-f", "json", "--home", str(one)).stdout)
    in_two = json.loads(run("customer", "list", "-f", "json", "--home", str(two)).stdout)
    assert [c["email"] for c in in_one] == ["y@example.com"]
    assert [c["email"] for c in in_two] == ["x@example.com"]


def test_user_data_folder_is_the_last_resort(run, tmp_path):
    data = tmp_path / "home" / "data" / "funnelctl"
    assert run("init").exit_code == 0
    assert (data / "funnelctl.yaml").is_file()
    assert run("customer", "add", "z@example.com").exit_code == 0


def test_bad_today_is_a_usage_error(run, workspace):
    result = run("customer", "list", "--today", "23/11/2026")
    assert result.exit_code == 2
    assert result.stderr == "Error: --today: '23/11/2026' is not a date in the form YYYY-MM-DD\n"


def test_customer_added_on_today(run, workspace):
    run("customer", "add", "a@example.com", "--today", "2026-01-05")
    shown = json.loads(run("customer", "show", "a@example.com", "-f", "json").stdout)
    assert shown["created_on"] == "2026-01-05"
    assert shown["timeline"][0]["on"] == "2026-01-05"
    later = json.loads(run("customer", "show", "a@example.com", "-f", "json").stdout)
    assert later["created_on"] != TODAY or True


def test_a_long_list_streams_plain_rows_in_a_pipe_and_shows_a_screenful_to_a_person(
    run, demo, monkeypatch
):
    piped = run("customer", "list").stdout.splitlines()
    assert piped[0].split("\t") == [
        "id", "email", "name", "company", "owner", "plan", "mrr", "tags", "enrollments",
    ]  # fmt: skip
    assert len(piped) == 1 + 36  # the header, then every customer, uncut
    assert piped[1].split("\t")[:3] == ["1", "lena.fischer@example.com", "Lena Fischer"]

    from funnelctl import output

    monkeypatch.setattr(output, "_terminal", lambda: True)
    shown = run("customer", "list", env={"LINES": "20"})

    drawn = [line for line in shown.stdout.splitlines() if "@example." in line]
    assert len(drawn) == 12  # a screenful: 20 lines less the table's frame
    assert shown.stderr == (
        "24 more not shown: --limit N shows N, a pipe (| less) or --format csv all.\n"
    )
    limited = run("customer", "list", "--limit", "30", env={"LINES": "20"})
    assert len([line for line in limited.stdout.splitlines() if "@example." in line]) == 30
    assert limited.stderr == ""


def test_the_health_list_streams_in_a_pipe_and_shows_a_screenful_to_a_person(
    run, demo, monkeypatch
):
    every = json.loads(run("at-risk", "--all", "-f", "json").stdout)
    piped = run("at-risk", "--all").stdout.splitlines()
    assert piped[0].split("\t") == [
        "customer", "owner", "score", "trend", "reasons", "opportunities",
    ]  # fmt: skip
    assert len(piped) == 1 + len(every) > 20  # every active customer, one line each
    first = piped[1].split("\t")
    assert first[0] == every[0]["customer"]
    assert first[4] == "; ".join(every[0]["reasons"])  # every reason, uncut

    from funnelctl import output

    monkeypatch.setattr(output, "_terminal", lambda: True)
    shown = run("at-risk", "--all", env={"COLUMNS": "80", "LINES": "24"})
    assert shown.stdout == (
        "Health on 2026-03-02: 7 at risk · 7 with an opportunity\n"
        "  21.4   liam.oconnor@example.net  bruno\n"
        "         Latest NPS answer: 3 is poor (healthy ≥ 9)\n"
        "         Latest CSAT: 2 is poor (healthy ≥ 4.5)\n"
        "         Weekly logins, last 4 weeks on average: 5 is poor (healthy ≥ 20)\n"
        "         … 3 more: customer show liam.oconnor@example.net\n"
        "    25   zoe.laurent@example.net  ana\n"
        "         Latest NPS answer: 2 is poor (healthy ≥ 9)\n"
        "         Latest CSAT: 2 is poor (healthy ≥ 4.5)\n"
        "         Weekly logins, last 4 weeks on average: 3 is poor (healthy ≥ 20)\n"
        "         … 2 more: customer show zoe.laurent@example.net\n"
        "  37.5   yasmin.costa@example.com  ana\n"
        "         Latest NPS answer: 2 is poor (healthy ≥ 9)\n"
        "         Latest CSAT: 1 is poor (healthy ≥ 4.5)\n"
        "         Weekly logins, last 4 weeks on average: 6 is concerning (healthy ≥ 20)\n"
        "         … 2 more: customer show yasmin.costa@example.com\n"
        "  39.3   daniel.okafor@example.org  bruno\n"
        "         Latest NPS answer: 4 is poor (healthy ≥ 9)\n"
        "         Latest CSAT: 2 is poor (healthy ≥ 4.5)\n"
        "         Share of seats in use: 0.53 is concerning (healthy ≥ 0.7)\n"
        "         … 3 more: customer show daniel.okafor@example.org\n"
    )  # 24 lines: these 21, the count of the rest, and the prompt
    assert shown.stderr == (
        f"{len(every) - 4} more not shown: --limit N shows N, a pipe (| less) or --format "
        "csv all.\n"
    )
    # a narrow terminal wraps reasons and opportunities under their customer, never an
    # email; --limit shows that many whole
    at_risk = json.loads(run("at-risk", "-f", "json").stdout)
    narrow = run("at-risk", "--limit", "30", env={"COLUMNS": "50", "LINES": "24"})
    assert narrow.stderr == ""
    lines = narrow.stdout.splitlines()
    assert max(map(len, lines)) == 50
    heads = [m[1] for line in lines if (m := re.match(r" *[\d.]+ {3}(\S+@\S+)  ", line))]
    assert heads == [row["customer"] for row in at_risk]
    assert "         Advocacy: a promoter for a year or more;" in lines


def test_a_screenful_counts_the_rows_a_line_takes_on_the_terminal():
    from funnelctl.output import rows_taken

    assert rows_taken("short\n" + "x" * 81 + "\n\n", 80) == 1 + 2 + 1
    assert rows_taken("客户" * 21, 80) == 2  # 84 cells: wide characters count twice


def test_a_screenful_at_80_columns_leaves_out_columns_before_it_cuts_an_email(
    run, demo, monkeypatch
):
    from funnelctl import output

    monkeypatch.setattr(output, "_terminal", lambda: True)
    # a terminal 80 columns wide (the test's stdout is not one, so Rich is told)
    monkeypatch.setattr(
        output, "stdout_console", lambda: output._console_class()(file=sys.stdout, width=80)
    )
    shown = run("customer", "list", env={"LINES": "20"}).stdout.splitlines()

    assert all(len(line) <= 80 for line in shown)
    header = next(line for line in shown if "email" in line)
    assert [cell.strip() for cell in header.strip("┃ ").split("┃")] == [
        "id", "email", "name", "owner", "enrollments",
    ]  # fmt: skip
    assert any("│ joana.ferreira@example.com  │" in line for line in shown)


def test_a_long_email_stays_whole_on_a_narrow_terminal_the_other_columns_give_way(
    run, demo, monkeypatch
):
    from funnelctl import output

    long = "christopher.mcallister@northwind-traders.co.uk"
    assert run("customer", "add", long, "--name", "Christopher McAllister").exit_code == 0
    monkeypatch.setattr(output, "_terminal", lambda: True)
    monkeypatch.setattr(
        output, "stdout_console", lambda: output._console_class()(file=sys.stdout, width=66)
    )

    shown = run("customer", "list", "--limit", "40").stdout.splitlines()

    assert all(len(line) <= 66 for line in shown)
    assert any(f"│ {long} │" in line for line in shown)
    header = next(line for line in shown if "email" in line)
    names = [cell.strip() for cell in header.strip("┃ ").split("┃")]
    assert names[:2] == ["id", "email"]
    assert all(len(name) >= 4 for name in names[1:]), names  # no column squeezed to nothing


def test_an_email_wider_than_the_terminal_folds_whole_and_the_id_stays(run, workspace, monkeypatch):
    """One address from a client's file as wide as the screen: the table used to squeeze
    the id to nothing and cut the address; both must stay typeable."""
    from funnelctl import output

    long = "maria.longname.procurement@subsidiary.example-holding-international.com"
    for email in ("ana@example.com", long):
        assert run("customer", "add", email, "--name", "A Name", "--owner", "ana").exit_code == 0
    monkeypatch.setattr(output, "_terminal", lambda: True)
    monkeypatch.setattr(
        output, "stdout_console", lambda: output._console_class()(file=sys.stdout, width=60)
    )

    shown = run("customer", "list").stdout

    assert shown == (
        "                         Customers                          \n"
        "┏━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━┓\n"
        "┃ id ┃ email                                       ┃ owner ┃\n"
        "┡━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━┩\n"
        "│ 1  │ ana@example.com                             │ ana   │\n"
        "│ 2  │ maria.longname.procurement@subsidiary.examp │ ana   │\n"
        "│    │ le-holding-international.com                │       │\n"
        "└────┴─────────────────────────────────────────────┴───────┘\n"
    )


def test_folded_rows_are_counted_in_the_lines_they_take(monkeypatch, capsys):
    """A screenful of folded addresses is two lines a row: the table shows fewer rows
    rather than run off the top of the terminal, and says how many it left out."""
    import io

    from funnelctl import output

    buffer = io.StringIO()
    monkeypatch.setattr(output, "_terminal", lambda: True)
    monkeypatch.setattr(
        output, "stdout_console", lambda: output._console_class()(file=buffer, width=80)
    )
    rows = [
        {
            "id": n,
            "email": f"procurement.department.accounts{n}@subsidiary.example-holding.com",
            "owner": "bruno.almeida",
        }
        for n in range(10, 49)
    ] + [{"id": 49, "email": "ana@example.com", "owner": "ana"}]

    shown = output.render(
        iter(rows),
        "table",
        ["id", "email", "owner"],
        screen=16,
        stream=True,
        keep=("id", "email", "owner"),
    )

    assert shown == 40
    drawn = buffer.getvalue().splitlines()
    assert len(drawn) <= 16 + 4  # the rows and the frame: header, its rule, top, bottom
    assert drawn[3].startswith("│ 10 │ procurement.department.accounts10@subsidiary.exam")
    assert capsys.readouterr().err == (
        "32 more not shown: --limit N shows N, a pipe (| less) or --format csv all.\n"
    )

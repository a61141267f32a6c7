#!/usr/bin/env python3
"""Every workload of issue 15 side by side with its reference, in one command.

    python benchmarks/bench_all.py [--customers 100000] [--emails 3000] [--rounds 3]
        [--only NAME,...] [--quick] [--keep] [--json OUT]

Workloads (``--only`` takes these names): ``import`` (N rows with --funnel after-sales,
against sqlite-utils insert --csv), ``send`` (M emails to a loopback aiosmtpd sink,
against the same bytes over one smtplib connection and against mailmerge),
``startup`` (due -f json on 1,000 customers, against python -c "import typer"),
``agenda`` (due as a table, one item per customer, against the same as JSON),
``tables`` (customer list and due --days 7 as tables on the large book, against the
same as JSON), ``run`` (first of the day, again, after a 1% change, against a full
run --rescore; then a run a week later, no reference) and ``at-risk`` (at-risk --live
on the large book; no reference).

In each round funnelctl and its reference run in turn, the first of them rotating
from round to round, so that the load of a shared machine favours neither; the
table shows medians over the rounds. Every command is timed by timeit.py (wall
seconds, peak RSS); its output goes to a pipe that this script reads and checks
(rows stored, emails received, items listed). Progress goes to stderr, the table to
stdout. Exit 1 if a command failed or a count was wrong. Needs the project's venv
(funnelctl, aiosmtpd; sqlite-utils and mailmerge installed there too): run it with
that venv's python. Run by hand; never in CI.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gen_customers

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
FUNNELCTL = str(BIN / "funnelctl")
TIMEIT = str(HERE / "timeit.py")
TODAY = "2026-11-23"
WEEK_LATER = "2026-11-30"
WORKLOADS = ("import", "send", "startup", "agenda", "tables", "run", "at-risk")
QUICK = {"customers": 2_000, "emails": 200, "rounds": 1}
DEFAULTS = {"customers": 100_000, "emails": 3_000, "rounds": 3}
AGENDA_CUSTOMERS = 20_000  # the agenda book (or the large book, when smaller)
STARTUP_BOOK = 1_000
STARTUP_DUE = 2 * 60  # build_workspace's --due 60: 60 tasks due and 60 stagnant enrollments
STARTUP_RUNS = 10  # pairs per round: a start-up is short and noisy
FLAT_MB = 10  # "memory flat": a table's peak at most this far above the JSON's
RUN_LIMIT = 0.25  # "cost follows what changed": at most this share of a full rescore
LIVE_SECONDS = 5.0  # "a few seconds"


class Failed(Exception):
    """A command failed or a count was wrong: the workload stops and the run exits 1."""


@dataclass
class Timing:
    seconds: float
    peak_mb: float


@dataclass
class Row:
    """One line of the table: funnelctl's runs against the reference's."""

    workload: str
    reference: str | None  # None: no reference, the goal is in seconds
    ours: list[Timing] = field(default_factory=list)
    theirs: list[Timing] = field(default_factory=list)
    goal: str = "-"
    limit: float | None = None  # the ratio's bound; seconds when there is no reference
    rate: int | None = None  # items a run handles: compare rates (higher is better)
    flat_memory: bool = False
    failed: bool = False  # its workload stopped on a failure: the numbers are partial

    @staticmethod
    def median(runs: list[Timing]) -> tuple[float, float]:
        return (
            statistics.median(t.seconds for t in runs),
            statistics.median(t.peak_mb for t in runs),
        )

    @property
    def ratio(self) -> float | None:
        if not self.ours or not self.theirs:
            return None
        ours, theirs = self.median(self.ours)[0], self.median(self.theirs)[0]
        return theirs / ours if self.rate else ours / theirs

    @property
    def met(self) -> bool | None:
        if self.limit is None or not self.ours or (self.reference and not self.theirs):
            return None
        value = self.ratio if self.theirs else self.median(self.ours)[0]
        assert value is not None
        ok = value >= self.limit if self.rate else value <= self.limit
        if self.flat_memory:
            ok = ok and self.median(self.ours)[1] <= self.median(self.theirs)[1] + FLAT_MB
        return ok

    def cell(self, runs: list[Timing]) -> str:
        if not runs:
            return "-"
        seconds, peak = self.median(runs)
        if self.rate:
            return f"{self.rate / seconds:.0f} msg/s {peak:.0f} MB"
        return f"{seconds:.2f} s {peak:.0f} MB"

    def as_json(self) -> dict[str, Any]:
        def side(runs: list[Timing]) -> dict[str, Any] | None:
            if not runs:
                return None
            seconds, peak = self.median(runs)
            return {
                "median_s": round(seconds, 3),
                "median_peak_mb": round(peak, 1),
                "per_second": round(self.rate / seconds, 1) if self.rate else None,
                "runs_s": [t.seconds for t in runs],
                "runs_peak_mb": [t.peak_mb for t in runs],
            }

        return {
            "workload": self.workload,
            "reference": self.reference,
            "funnelctl": side(self.ours),
            "reference_runs": side(self.theirs),
            "ratio": None if self.ratio is None else round(self.ratio, 3),
            "ratio_of": "rates" if self.rate else "seconds",
            "goal": self.goal,
            "met": None if self.failed else self.met,
            "failed": self.failed,
        }


class Bench:
    """The temporary folder, the rounds, the rows so far and what went wrong."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.rows: list[Row] = []
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.env = dict(os.environ, COLUMNS="120")
        for name in ("FUNNELCTL_HOME", "FUNNELCTL_TODAY", "FUNNELCTL_NOW"):
            self.env.pop(name, None)
        self._large: Path | None = None
        self.startup = False  # whether the start-up pairs ran (the table's footnote)

    def rounds(self) -> range:
        return range(self.args.rounds)

    def time(
        self, label: str, argv: list[str], env: dict[str, str] | None = None
    ) -> tuple[Timing, bytes]:
        """Run argv under timeit.py, its stdout in a pipe read here; its timing and stdout."""
        result = self.tmp / "timeit.result"
        result.unlink(missing_ok=True)
        done = subprocess.run(
            [sys.executable, TIMEIT, "-o", str(result), "--", *argv],
            env=env or self.env,
            capture_output=True,
        )
        try:
            seconds, peak, code = result.read_text().split()
        except (OSError, ValueError):
            seconds, peak, code = "0", "0", str(done.returncode)
        if code != "0":
            raise Failed(
                f"{label}: {shlex.join(argv)} exited with {code}:\n"
                + done.stderr.decode(errors="replace")[-2000:]
            )
        timing = Timing(float(seconds), float(peak))
        print(f"  {label}: {timing.seconds:.2f} s, {timing.peak_mb:.0f} MB", file=sys.stderr)
        return timing, done.stdout

    def call(self, argv: list[str], env: dict[str, str] | None = None) -> bytes:
        """Run an untimed step (a build, a warm-up); its stdout."""
        done = subprocess.run(argv, env=env or self.env, capture_output=True)
        if done.returncode != 0:
            raise Failed(
                f"{shlex.join(argv)} exited with {done.returncode}:\n"
                + done.stderr.decode(errors="replace")[-2000:]
            )
        return done.stdout

    def build(self, ws: Path, customers: int, activities: int, *more: str) -> Path:
        """A book made by build_workspace.py, then a first `due` (it fills .cache)."""
        print(f"building {ws.name}: {customers} customers ...", file=sys.stderr)
        self.call(
            [
                sys.executable,
                str(HERE / "build_workspace.py"),
                str(ws),
                "--customers",
                str(customers),
                "--activities",
                str(activities),
                "--today",
                TODAY,
                *more,
            ]
        )
        self.call([FUNNELCTL, "due", "--home", str(ws), "--today", TODAY, "-f", "json"])
        return ws

    def large(self) -> Path:
        """The large book, built once: 10 activities and 10 signals per customer. The
        read-only workloads use it as it is; the others a copy."""
        if self._large is None:
            n = self.args.customers
            self._large = self.build(self.tmp / "large", n, 10 * n, "--signals", str(10 * n))
        return self._large


def funnelctl(ws: Path, *args: str) -> list[str]:
    return [FUNNELCTL, *args, "--home", str(ws), "--today", TODAY]


def in_turn(round_no: int, who: list[str]) -> list[str]:
    """The order of one round: the first rotates with the round."""
    k = round_no % len(who)
    return who[k:] + who[:k]


def count_rows(db: Path, sql: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def json_items(data: bytes) -> int:
    """How many items a JSON list holds (funnelctl writes one item a line: parsed line by
    line, so a large list is never parsed whole)."""
    lines = data.splitlines()
    if len(lines) >= 2 and lines[0] == b"[" and lines[-1] == b"]":
        try:
            for line in lines[1:-1]:
                json.loads(line.rstrip(b","))
            return len(lines) - 2
        except ValueError:
            pass
    try:
        items = json.loads(data)
    except ValueError as exc:
        raise Failed(f"the output is not JSON: {exc}") from None
    if not isinstance(items, list):
        raise Failed(f"expected a JSON list, got {type(items).__name__}")
    return len(items)


def expect(what: str, got: int, want: int, at_least: bool = False) -> None:
    if got < want if at_least else got != want:
        raise Failed(f"{what}: {got}, expected {'at least ' if at_least else ''}{want}")


# -- the workloads --------------------------------------------------------------------------------


def time_import(bench: Bench) -> None:
    n = bench.args.customers
    sqlite_utils = str(BIN / "sqlite-utils")
    if not Path(sqlite_utils).exists():
        raise Failed(f"sqlite-utils is not installed next to {sys.executable}")
    csv_path = bench.tmp / "customers.csv"
    print(f"generating {n} rows ...", file=sys.stderr)
    with csv_path.open("w", encoding="utf-8", newline="") as fh:
        gen_customers.write_customers(fh, n, seed=1)
    row = Row(f"import {n} rows, after-sales", "sqlite-utils insert", goal="<= 1.5x", limit=1.5)
    bench.rows.append(row)
    ws, other = bench.tmp / "import-ws", bench.tmp / "other.db"
    for r in bench.rounds():
        shutil.rmtree(ws, ignore_errors=True)
        other.unlink(missing_ok=True)
        bench.call([FUNNELCTL, "init", str(ws)])
        for who in in_turn(r, ["funnelctl", "sqlite-utils"]):
            if who == "funnelctl":
                argv = funnelctl(ws, "import", str(csv_path), "--funnel", "after-sales")
                row.ours.append(bench.time(f"import {r + 1}: funnelctl import", argv)[0])
            else:
                argv = [sqlite_utils, "insert", str(other), "customers", str(csv_path), "--csv"]
                row.theirs.append(bench.time(f"import {r + 1}: sqlite-utils insert", argv)[0])
        customers = "SELECT count(*) FROM customers"
        expect("customers imported", count_rows(ws / "funnel.db", customers), n)
        expect("rows inserted by sqlite-utils", count_rows(other, customers), n)


def time_send(bench: Bench) -> None:
    import bench_send  # aiosmtpd, from the test extra

    n = bench.args.emails
    base = bench.tmp / "send"
    base.mkdir()
    ceiling = Row(f"send {n} emails", "smtplib, 1 connection", goal=">= 0.7x", limit=0.7, rate=n)
    bench.rows.append(ceiling)
    mailmerge = shutil.which("mailmerge", path=str(BIN))
    rival = None
    clients = ["funnelctl", "smtplib"]
    if mailmerge:
        version = importlib.metadata.version("mailmerge")
        rival = Row(f"send {n} emails", f"mailmerge {version}", goal=">= 2x", limit=2.0, rate=n)
        bench.rows.append(rival)
        clients.append("mailmerge")
    else:
        bench.notes.append("mailmerge is not installed (pip install mailmerge): its row is skipped")
    server = bench_send.SmtpServer().start()

    def received() -> list[Any]:
        """What the sink got since the last call (then forgotten: memory stays flat)."""
        with server.handler.lock:
            got = list(server.handler.received)
            server.handler.received.clear()
        return got

    try:
        env, queued = bench_send.prepare(base, n, server.port)
        sample = base / "sample.eml"  # an email funnelctl sent: the others send its bytes
        mm_args: list[str] = []
        for r in bench.rounds():
            ws = base / "ws-round"  # a fresh copy of the queued outbox
            shutil.rmtree(ws, ignore_errors=True)
            shutil.copytree(base / "ws", ws)
            for who in in_turn(r, clients):  # funnelctl first in the first round: the sample
                label = f"send {r + 1}: {who}"
                received()
                if who == "funnelctl":
                    argv = [FUNNELCTL, "send", "-f", "json"]
                    timing, out = bench.time(label, argv, dict(env, FUNNELCTL_HOME=str(ws)))
                    got = received()
                    problems = bench_send.check_sent(json.loads(out), got, queued)
                    if problems:
                        raise Failed("funnelctl send: " + "; ".join(problems))
                    if not sample.exists():
                        sample.write_bytes(got[0].content)
                    ceiling.ours.append(timing)
                    if rival:
                        rival.ours.append(timing)
                    continue
                if who == "smtplib":
                    argv = [sys.executable, bench_send.__file__, "--baseline", str(server.port)]
                    ceiling.theirs.append(bench.time(label, [*argv, str(n), str(sample)])[0])
                else:
                    assert mailmerge and rival
                    if not mm_args:
                        mm_args = bench_send.mailmerge_files(
                            base, server.port, n, sample.read_bytes()
                        )
                    rival.theirs.append(bench.time(label, [mailmerge, *mm_args])[0])
                expect(f"messages the sink got from {who}", len(received()), n)
    finally:
        server.stop()


def time_startup(bench: Bench) -> None:
    ws = bench.build(bench.tmp / "startup", STARTUP_BOOK, 10 * STARTUP_BOOK)
    row = Row(f"due -f json, {STARTUP_BOOK} customers", "import typer", goal="<= 1.5x", limit=1.5)
    bench.rows.append(row)
    bench.startup = True
    due = funnelctl(ws, "due", "-f", "json")
    typer = [sys.executable, "-c", "import typer"]
    for r in bench.rounds():
        for k in range(STARTUP_RUNS):
            for who in in_turn(k, ["funnelctl", "typer"]):
                if who == "funnelctl":
                    timing, out = bench.time(f"startup {r + 1}: due -f json", due)
                    expect("items due", json_items(out), STARTUP_DUE)
                    row.ours.append(timing)
                else:
                    row.theirs.append(bench.time(f"startup {r + 1}: import typer", typer)[0])


def table_against_json(
    bench: Bench, name: str, row: Row, argv: list[str], items: int | None = None
) -> None:
    """Time argv as a table (in a pipe) and as JSON, in turn; check that the table has a
    line for every item of the JSON (and that the JSON lists ``items``, when given)."""
    for r in bench.rounds():
        lines = listed = 0
        for who in in_turn(r, ["table", "json"]):
            if who == "table":
                timing, out = bench.time(f"{name} {r + 1}: table", argv)
                lines = out.count(b"\n")
                row.ours.append(timing)
            else:
                timing, out = bench.time(f"{name} {r + 1}: json", [*argv, "-f", "json"])
                listed = json_items(out)
                row.theirs.append(timing)
        if items is not None:
            expect(f"{row.workload}: items in the JSON", listed, items)
        expect(f"{row.workload}: lines of the table", lines, listed, at_least=True)


def time_agenda(bench: Bench) -> None:
    n = min(AGENDA_CUSTOMERS, bench.args.customers)
    ws = bench.build(bench.tmp / "agenda", n, n, "--due", str(n), "--stuck", "0")
    row = Row(f"due table, {n} items", "the same as JSON", goal="<= 2x", limit=2.0)
    bench.rows.append(row)
    table_against_json(bench, "due --all", row, funnelctl(ws, "due", "--all"), items=n)


def time_tables(bench: Bench) -> None:
    ws, n = bench.large(), bench.args.customers
    for name, argv, items in (
        ("customer list", funnelctl(ws, "customer", "list"), n),
        ("due --days 7", funnelctl(ws, "due", "--days", "7"), None),
    ):
        row = Row(
            f"{name} table, {n}",
            "the same as JSON",
            goal="<= 2x, MB flat",
            limit=2.0,
            flat_memory=True,
        )
        bench.rows.append(row)
        table_against_json(bench, name, row, argv, items)


def time_run(bench: Bench) -> None:
    """On a copy of the large book per round: the first run of the day, the same again,
    a new NPS answer for 1% of the customers (as bench_health.sh), and a full rescore."""
    first = Row("run, first of the day", "run --rescore")
    again = Row("run again, nothing changed", "run --rescore", goal="<= 0.25x", limit=RUN_LIMIT)
    changed = Row("run, 1% changed", "run --rescore", goal="<= 0.25x", limit=RUN_LIMIT)
    # the laptop asleep: the next run is a week on (the stage moves that fell due meanwhile,
    # their entry actions, the emails caught up), after all of the day's above
    away = Row("run, a week later", None)
    bench.rows += [first, again, changed, away]
    active_sql = "SELECT count(DISTINCT customer_id) FROM enrollments WHERE status = 'active'"
    for r in bench.rounds():
        ws = bench.tmp / "run-ws"
        shutil.rmtree(ws, ignore_errors=True)
        shutil.copytree(bench.large(), ws)
        active = count_rows(ws / "funnel.db", active_sql)
        timings = []
        for what, extra in (
            ("first", ()),
            ("again", ()),
            ("1% changed", ()),
            ("rescore", ("--rescore",)),
        ):
            if what == "1% changed":
                one_percent_nps(ws / "funnel.db")
            argv = funnelctl(ws, "run", *extra, "-f", "json")
            timing, out = bench.time(f"run {r + 1}: {what}", argv)
            expect(f"run ({what}): customers scored", json.loads(out).get("scored", -1), active)
            timings.append(timing)
        for row, timing in zip((first, again, changed), timings[:3], strict=True):
            row.ours.append(timing)
            row.theirs.append(timings[-1])
        argv = funnelctl(ws, "run", "-f", "json")
        argv[argv.index("--today") + 1] = WEEK_LATER
        timing, out = bench.time(f"run {r + 1}: a week later", argv)
        expect("run (a week later): stage moves", json.loads(out).get("moved", 0), 1, True)
        away.ours.append(timing)


def one_percent_nps(db: Path) -> None:
    """A new NPS answer for every hundredth customer, as `signal import` would store it."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO signals (customer_id, metric, value, measured_on, source, created_on) "
            "SELECT id, 'nps', id % 11, ?, 'bench', ? FROM customers WHERE id % 100 = 0",
            [TODAY, TODAY],
        )
    conn.close()


def time_at_risk(bench: Bench) -> None:
    ws, n = bench.large(), bench.args.customers
    row = Row(f"at-risk --live, {n}", None, goal=f"<= {LIVE_SECONDS:g} s", limit=LIVE_SECONDS)
    bench.rows.append(row)
    argv = funnelctl(ws, "at-risk", "--live", "-f", "json")
    for r in bench.rounds():
        timing, out = bench.time(f"at-risk {r + 1}: --live", argv)
        json_items(out)
        row.ours.append(timing)


BENCHES: dict[str, Callable[[Bench], None]] = {
    "import": time_import,
    "send": time_send,
    "startup": time_startup,
    "agenda": time_agenda,
    "tables": time_tables,
    "run": time_run,
    "at-risk": time_at_risk,
}


# -- the table ------------------------------------------------------------------------------------


def table(bench: Bench) -> str:
    head = ("workload", "reference", "funnelctl", "reference", "ratio", "goal", "met")
    body = []
    for row in bench.rows:
        ratio = row.ratio
        met = row.met
        body.append(
            (
                row.workload,
                row.reference or "-",
                row.cell(row.ours),
                row.cell(row.theirs),
                "-" if ratio is None else f"{ratio:.2f}x",
                row.goal,
                "FAILED" if row.failed else "-" if met is None else "yes" if met else "no",
            )
        )
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    right = {2, 3, 4}
    out = []
    for line in [head, *body]:
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    rounds = bench.args.rounds
    startup = f" ({rounds * STARTUP_RUNS} runs for the start-up)" if bench.startup else ""
    out += [
        "",
        f"Medians of {rounds} round(s){startup}; each cell: wall seconds (send: emails",
        "a second) and peak RSS. ratio: funnelctl's median seconds over the reference's;",
        "for send, funnelctl's rate over the reference's.",
        *bench.notes,
    ]
    if bench.args.quick:
        out.append("--quick: small books and one round; the goals are for the full sizes.")
    return "\n".join(out)


def main() -> int:
    # Time what a user runs: pip compiles an installed package's bytecode, and Python
    # caches it for a checkout. A shell that forbids writing it (some containers set
    # this) would time the compiler in every command: most of the start-up row.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, help="the large book (default 100000)")
    parser.add_argument("--emails", type=int, help="emails sent (default 3000)")
    parser.add_argument("--rounds", type=int, help="rounds, each command once in each (default 3)")
    parser.add_argument("--only", metavar="NAME,...", help="some of: " + ",".join(WORKLOADS))
    parser.add_argument("--quick", action="store_true", help="2,000 customers, 200 emails, 1 round")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--json", metavar="OUT", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.customers, args.emails, args.rounds) < 1:
        parser.error("--customers, --emails and --rounds must be at least 1")
    names = args.only.split(",") if args.only else list(WORKLOADS)
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload {', '.join(unknown)}: choose from {', '.join(WORKLOADS)}")
    if not Path(FUNNELCTL).exists():
        parser.error(f"no funnelctl next to {sys.executable}: run this with the project's venv")

    tmp = Path(tempfile.mkdtemp(prefix="funnelctl-all."))
    bench = Bench(args, tmp)
    try:
        for name in WORKLOADS:
            if name not in names:
                continue
            print(f"== {name}", file=sys.stderr)
            before = len(bench.rows)
            try:
                BENCHES[name](bench)
            except (Failed, SystemExit) as exc:  # bench_send's helpers exit on a failure
                message = f"{name}: {exc}"
                print(f"FAILED {message}", file=sys.stderr)
                bench.problems.append(message)
                for row in bench.rows[before:]:
                    row.failed = True
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(table(bench))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "customers": args.customers,
                    "emails": args.emails,
                    "rounds": args.rounds,
                    "rows": [row.as_json() for row in bench.rows],
                    "problems": bench.problems,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    if bench.problems:
        print("PROBLEMS:\n" + "\n".join(bench.problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

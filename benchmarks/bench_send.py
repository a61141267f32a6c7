#!/usr/bin/env python3
"""Time `funnelctl send` on a big outbox against a local SMTP sink, next to a bare smtplib loop.

    python benchmarks/bench_send.py [--emails 5000] [--keep]

Builds a workspace in a temporary folder, imports N customers into after-sales at
``customer-contact`` (so every one of them has the `welcome` email queued, about a fifth
in Portuguese), starts an aiosmtpd sink in a thread (tests/smtp_server.py), then times:

- ``funnelctl send`` as a subprocess: render every email (Jinja + Markdown), claim it,
  hand it over, record it sent, one SQLite write transaction per state change;
- a bare smtplib loop in a subprocess, over one connection, sending N copies of a
  message funnelctl sent (new To and Message-ID each), so the bytes are the same size:
  the ceiling, the server's own cost for these bytes;
- mailmerge (``pip install mailmerge``; skipped when it is not installed), the best-known
  command-line mail merge, with the same Markdown body and a CSV of the same customers.

and prints messages/second for each and funnelctl's ratio to each. It checks that the sink received each of
funnelctl's emails exactly once. Needs the test extra (aiosmtpd). Run by hand; never in CI.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from email import message_from_bytes, policy
from email.utils import make_msgid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from smtp_server import Received, SmtpServer  # noqa: E402

TODAY = "2026-03-02"
NOW = "2026-03-02T10:00"
FUNNELCTL = str(Path(sys.executable).with_name("funnelctl"))


def write_csv(path: Path, n: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["email", "name", "company", "language"])
        for i in range(1, n + 1):
            writer.writerow(
                [
                    f"customer{i}@example.com",
                    f"Customer {i}",
                    f"Company {i % 97}",
                    "pt" if i % 5 == 0 else "en",
                ]
            )


def configure(root: Path, port: int) -> None:
    (root / "funnelctl.yaml").write_text(
        "timezone: Europe/Lisbon\n"
        'sender: "Ana Lima <ana@example.com>"\n'
        "team: [ana, bruno]\n"
        "send:\n"
        '  window: {hours: "09:00-17:00", weekdays: [mon, tue, wed, thu, fri]}\n'
        "  max_late_days: 3\n"
        "  rate_per_minute: 0\n"
        "transport:\n"
        f"  kind: smtp\n  host: 127.0.0.1\n  port: {port}\n  security: none\n  timeout_s: 30\n",
        encoding="utf-8",
    )


def funnelctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([FUNNELCTL, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"funnelctl {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run argv; its wall seconds, its own peak RSS in MB (wait4), its stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{err.read().decode()[-3000:]}")
        stdout = out.read().decode()
    peak_mb = (
        usage.ru_maxrss / (1024 * 1024) if sys.platform == "darwin" else usage.ru_maxrss / 1024
    )
    return seconds, peak_mb, stdout


def baseline(port: int, n: int, sample: Path) -> None:
    """The bare loop (in its own process): one connection, n copies of a message funnelctl
    sent, each with its own To and Message-ID patched into the bytes. The floor: no
    rendering, no MIME building, no database."""
    raw = sample.read_bytes()
    original = message_from_bytes(raw, policy=policy.SMTP)
    old_to = f"To: {original['To']}".encode()
    old_id = f"Message-ID: {original['Message-ID']}".encode()
    conn = smtplib.SMTP("127.0.0.1", port, timeout=30)
    for i in range(1, n + 1):
        to = f"other{i}@example.com"
        data = raw.replace(old_to, f"To: Other {i} <{to}>".encode(), 1)
        data = data.replace(old_id, f"Message-ID: {make_msgid(domain='example.com')}".encode(), 1)
        conn.sendmail("ana@example.com", [to], data)
    conn.quit()


def mailmerge_files(tmp: Path, port: int, n: int, sample: bytes) -> list[str]:
    """mailmerge's template (the welcome email's subject and Markdown body, the name
    filled in per row), database (the same customers) and server files; its arguments."""
    message = message_from_bytes(sample, policy=policy.default)
    body = message.get_body(("plain",)).get_content().replace("Hi Customer,", "Hi {{name}},")
    (tmp / "mm_template.txt").write_text(
        "TO: {{email}}\n"
        f"SUBJECT: {message['Subject']}\n"
        f"FROM: {message['From']}\n"
        "CONTENT-TYPE: text/markdown\n\n" + body,
        encoding="utf-8",
    )
    with (tmp / "mm_database.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["email", "name"])
        writer.writerows([f"customer{i}@example.com", "Customer"] for i in range(1, n + 1))
    (tmp / "mm_server.conf").write_text(
        f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nsecurity = Never\n", encoding="utf-8"
    )
    return [
        "--no-dry-run",
        "--no-limit",
        "--output-format",
        "raw",
        "--template",
        str(tmp / "mm_template.txt"),
        "--database",
        str(tmp / "mm_database.csv"),
        "--config",
        str(tmp / "mm_server.conf"),
    ]


def prepare(tmp: Path, n: int, port: int) -> tuple[dict[str, str], list[dict]]:
    """A workspace in tmp/ws that sends to 127.0.0.1:port, with the welcome email queued
    for n customers: the environment that runs funnelctl there, and the queued emails."""
    ws = tmp / "ws"
    env = dict(os.environ, FUNNELCTL_HOME=str(ws), FUNNELCTL_TODAY=TODAY, FUNNELCTL_NOW=NOW)
    env.pop("FUNNELCTL_SMTP_PASSWORD", None)
    funnelctl(env, "init", str(ws))
    configure(ws, port)
    write_csv(tmp / "customers.csv", n)
    print(f"importing {n} customers into after-sales/customer-contact ...", file=sys.stderr)
    funnelctl(
        env,
        "import",
        str(tmp / "customers.csv"),
        "--funnel",
        "after-sales",
        "--stage",
        "customer-contact",
        "-f",
        "json",
    )
    queued = json.loads(funnelctl(env, "outbox", "list", "--status", "queued", "-f", "json").stdout)
    if len(queued) != n:
        sys.exit(f"expected {n} queued emails, found {len(queued)}")
    return env, queued


def check_sent(summary: dict, received: list[Received], queued: list[dict]) -> list[str]:
    """What is wrong with a `send` run (its JSON summary, what the sink got): every
    queued email sent and received exactly once."""
    n = len(queued)
    ids = [r.message_id for r in received]
    problems = []
    if summary.get("sent") != n:
        problems.append(f"summary {summary}")
    if len(received) != n or len(set(ids)) != n:
        problems.append(f"the sink got {len(received)} messages, {len(set(ids))} distinct")
    if set(ids) != {r["message_id"] for r in queued}:
        problems.append("the Message-IDs received differ from the outbox's")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=5000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--baseline", nargs=3, metavar=("PORT", "N", "SAMPLE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.baseline:
        port, n, sample = args.baseline
        baseline(int(port), int(n), Path(sample))
        return

    n = args.emails
    tmp = Path(tempfile.mkdtemp(prefix="funnelctl-send."))
    server = SmtpServer().start()
    try:
        env, queued = prepare(tmp, n, server.port)
        print("timing funnelctl send ...", file=sys.stderr)
        f_secs, f_mb, out = timed([FUNNELCTL, "send", "-f", "json"], env)
        received = server.received
        problems = check_sent(json.loads(out), received, queued)

        sample = tmp / "sample.eml"
        sample.write_bytes(received[0].content)
        before = len(received)
        print("timing the bare smtplib loop ...", file=sys.stderr)
        b_secs, b_mb, _ = timed(
            [sys.executable, __file__, "--baseline", str(server.port), str(n), str(sample)]
        )
        if len(server.received) - before != n:
            problems.append(f"baseline: the sink got {len(server.received) - before} messages")
        size = sum(len(r.content) for r in received[:n]) / n
        m_secs = m_mb = None
        mailmerge = shutil.which("mailmerge", path=str(Path(sys.executable).parent))
        if mailmerge:
            print("timing mailmerge ...", file=sys.stderr)
            before = len(server.received)
            mm_args = mailmerge_files(tmp, server.port, n, received[0].content)
            m_secs, m_mb, _ = timed([mailmerge, *mm_args])
            if len(server.received) - before != n:
                problems.append(f"mailmerge: the sink got {len(server.received) - before}")
        else:
            print("mailmerge is not installed: pip install mailmerge to compare", file=sys.stderr)
    finally:
        server.stop()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"{n} emails, about {size / 1024:.1f} KB each, aiosmtpd sink on 127.0.0.1 (same machine)")
    print(f"{'client':<22} {'seconds':>8} {'msgs/s':>8} {'peak MB':>8}")
    print(f"{'funnelctl send':<22} {f_secs:8.2f} {n / f_secs:8.0f} {f_mb:8.1f}")
    print(f"{'smtplib, 1 connection':<22} {b_secs:8.2f} {n / b_secs:8.0f} {b_mb:8.1f}")
    if m_secs is not None:
        print(f"{'mailmerge':<22} {m_secs:8.2f} {n / m_secs:8.0f} {m_mb:8.1f}")
    print(f"funnelctl: {b_secs / f_secs:.2f}x the same-bytes ceiling's rate (goal >= 0.7)")
    if m_secs is not None:
        print(f"funnelctl: {m_secs / f_secs:.2f}x mailmerge's rate (goal >= 2)")
    if problems:
        print("PROBLEMS: " + "; ".join(problems))
        sys.exit(1)


if __name__ == "__main__":
    main()

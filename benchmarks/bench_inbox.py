#!/usr/bin/env python3
"""Time `funnelctl inbox` on a mailbox of 10,000 messages: a Maildir, then Dovecot over IMAP.

    python benchmarks/bench_inbox.py [--messages 10000] [--customers 1000] [--no-imap] [--keep]

Builds a workspace in a temporary folder with N customers in after-sales at
``customer-contact`` (each with the `welcome` email queued and a "Call the customer"
task that a reply drops), then fills a mailbox with real-shaped messages
(tests/mail_samples.py): about 40% replies from customers (Gmail, Outlook and Apple
Mail shapes), 10% out-of-office answers, 5% bounces, 2% unsubscribes and the rest mail
from no one known. It times:

- ``funnelctl inbox`` on a Maildir holding them, then again with nothing new;
- with Dovecot installed (tests/dovecot.py), the same over IMAP on 127.0.0.1, in a
  fresh copy of the workspace: the messages are written into Dovecot's Maildir and
  indexed once by a client before the timing, as a server that received them would have.

It checks that both readings record the same counts. Needs the test extra (trustme is
not used; Dovecot is optional). Run by hand; never in CI.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import mail_samples as samples  # noqa: E402

TODAY = "2026-03-02"
FUNNELCTL = str(Path(sys.executable).with_name("funnelctl"))
ME = "ana@example.com"


def funnelctl(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([FUNNELCTL, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"funnelctl {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def timed(env: dict[str, str], *args: str) -> tuple[float, float, float, dict[str, int]]:
    """Run funnelctl; its wall seconds, its CPU seconds (user + system: what a loaded
    machine does not inflate), its peak RSS in MB (wait4) and its JSON."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen([FUNNELCTL, *args], env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"funnelctl {' '.join(args)} failed:\n{err.read().decode()[-3000:]}")
        result: dict[str, int] = json.loads(out.read().decode())
    peak = usage.ru_maxrss / (1024 * 1024) if sys.platform == "darwin" else usage.ru_maxrss / 1024
    return seconds, usage.ru_utime + usage.ru_stime, peak, result


def messages(n: int, customers: int) -> list[bytes]:
    """n messages, deterministic: the mix described above."""
    found: list[bytes] = []
    for i in range(n):
        who = f"customer{i % customers + 1}@example.com"
        slot = i % 100
        if slot < 40:
            build = (samples.gmail_reply, samples.outlook_reply, samples.apple_mail_reply)[i % 3]
            found.append(build(who, ME, None, f"Thanks, message {i}. Can we talk?"))
        elif slot < 50:
            found.append(samples.out_of_office(who, ME, None))
        elif slot < 55:
            found.append(samples.exchange_bounce(who, None))
        elif slot < 57:
            found.append(samples.unsubscribe(who, ME))
        else:
            found.append(samples.newsletter(ME))
    return found


def build_workspace(ws: Path, env: dict[str, str], customers: int, tmp: Path) -> None:
    funnelctl(env, "init", str(ws))
    (ws / "funnelctl.yaml").write_text(
        f'timezone: Europe/Lisbon\nsender: "Ana Lima <{ME}>"\nteam: [ana]\n', encoding="utf-8"
    )
    with (tmp / "customers.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["email", "name"])
        for i in range(1, customers + 1):
            writer.writerow([f"customer{i}@example.com", f"Customer {i}"])
    funnelctl(
        env,
        "import",
        str(tmp / "customers.csv"),
        "--funnel",
        "after-sales",
        "--stage",
        "customer-contact",
    )


def fill_maildir(folder: Path, data: list[bytes], owner: tuple[int, int] | None = None) -> None:
    for sub in ("new", "cur", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i, message in enumerate(data):
        path = folder / "new" / f"1772445300.M{i}P1.bench"
        path.write_bytes(message)
        if owner is not None:
            os.chown(path, *owner)


def with_inbox(ws: Path, inbox: str) -> None:
    settings = ws / "funnelctl.yaml"
    settings.write_text(settings.read_text() + "inbox:\n" + inbox, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--no-imap", action="store_true", help="only the Maildir")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="funnelctl-inbox."))
    ws = tmp / "ws"
    env = dict(os.environ, FUNNELCTL_HOME=str(ws), FUNNELCTL_TODAY=TODAY)
    rows: list[tuple[str, float, float, float, dict[str, int]]] = []
    server = None
    try:
        print(f"building a workspace of {args.customers} customers ...", file=sys.stderr)
        build_workspace(ws, env, args.customers, tmp)
        pristine = tmp / "pristine"
        shutil.copytree(ws, pristine)
        data = messages(args.messages, args.customers)
        size = sum(len(m) for m in data) / len(data)

        fill_maildir(ws / "Mail" / "INBOX", data)
        with_inbox(ws, "  kind: maildir\n  maildir: {inbox: Mail/INBOX}\n")
        print("timing funnelctl inbox on the Maildir ...", file=sys.stderr)
        rows.append(("maildir, first read", *timed(env, "inbox", "-f", "json")))
        rows.append(("maildir, nothing new", *timed(env, "inbox", "-f", "json")))

        from dovecot import BINARY, PASSWORD, USER, Dovecot

        if BINARY is not None and not args.no_imap:
            imap_ws = tmp / "imap-ws"
            shutil.copytree(pristine, imap_ws)
            server = Dovecot(tmp / "dovecot").start()
            server.append("INBOX", data[0])  # creates the Maildir
            box = server.root / "mail" / USER
            owner = (box.stat().st_uid, box.stat().st_gid)
            fill_maildir(box, data[1:], owner)  # the first message is the one appended
            print("Dovecot indexes the messages (once) ...", file=sys.stderr)
            if server.count("INBOX") != len(data):
                sys.exit(f"Dovecot shows {server.count('INBOX')} messages, not {len(data)}")
            with_inbox(
                imap_ws,
                f"  kind: imap\n  host: 127.0.0.1\n  port: {server.port}\n  security: none\n"
                f"  username: {USER}\n  timeout_s: 60\n",
            )
            imap_env = dict(env, FUNNELCTL_HOME=str(imap_ws), FUNNELCTL_IMAP_PASSWORD=PASSWORD)
            print("timing funnelctl inbox over IMAP ...", file=sys.stderr)
            rows.append(("imap, first read", *timed(imap_env, "inbox", "-f", "json")))
            rows.append(("imap, nothing new", *timed(imap_env, "inbox", "-f", "json")))
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"{args.messages} messages of about {size / 1024:.1f} KB, {args.customers} customers "
        "in after-sales/customer-contact"
    )
    print(f"{'reading':<22} {'wall s':>7} {'CPU s':>7} {'msgs/s':>7} {'peak MB':>8}  counts")
    for name, seconds, cpu, peak, result in rows:
        rate = result["read"] / seconds if result["read"] else 0
        print(f"{name:<22} {seconds:7.2f} {cpu:7.2f} {rate:7.0f} {peak:8.1f}  {json.dumps(result)}")
    firsts = [row[-1] for row in rows if row[0].endswith("first read")]
    if any(result != firsts[0] for result in firsts) or any(
        row[-1]["read"] for row in rows if row[0].endswith("nothing new")
    ):
        print("PROBLEMS: the readings differ, or a second reading found something new")
        sys.exit(1)


if __name__ == "__main__":
    main()

"""A real IMAP server for the tests: Dovecot (Debian's dovecot-imapd), started on
127.0.0.1 with its own configuration, one user and a Maildir, all in a temporary
folder; plain IMAP with STARTTLS, and IMAP over TLS with a certificate of a test CA.

Dovecot refuses to run its login processes, or a user's mail, as root. Run as root (CI),
the login process runs as Debian's ``dovenull`` and the mail as ``dovecot``, and the
folder is one of its own under the system's temporary folder that they can enter (a
pytest folder is private to root); run as anyone else, everything runs as that user
inside the test's folder.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from smtp_server import free_port

BINARY = shutil.which("dovecot") or (
    "/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None
)
MISSING = "Dovecot is not installed (apt-get install dovecot-imapd; .ci/run does it as root)"
USER = "ana@example.com"
PASSWORD = "imap-secret"

_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = 1
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
mail_uid = {mail_user}
mail_gid = {mail_group}
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
{ssl}
"""


class _StoppedAtOnce(RuntimeError):
    """Dovecot exited while starting."""


def _two_ports() -> tuple[int, int]:
    """Two free ports, never the same one twice (each is let go before the next is
    asked for, so the system may hand out the same number again)."""
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


class Dovecot:
    """One Dovecot, started and stopped by the test; ``append`` delivers a message."""

    def __init__(self, tmp: Path, cert: Path | None = None, key: Path | None = None) -> None:
        self.own_root = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="funnelctl-dovecot-")) if self.own_root else tmp
        self.port, self.tls_port = _two_ports()
        self.cert, self.key = cert, key
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Dovecot:
        """Start it; when it stops at once (a port taken by then), again on other ports."""
        for attempt in (1, 2, 3):
            try:
                return self._start()
            except _StoppedAtOnce:
                if attempt == 3:
                    raise
                self.port, self.tls_port = _two_ports()
        raise AssertionError("unreachable")

    def _start(self) -> Dovecot:
        assert BINARY is not None
        root = self.root
        for sub in ("run", "state", "mail"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        if self.own_root:
            os.chmod(root, 0o755)
            mail_user = "dovecot"
            entry = pwd.getpwnam(mail_user)
            os.chown(root / "mail", entry.pw_uid, entry.pw_gid)
            login_user, internal_user = "dovenull", "dovecot"
        else:
            mail_user = login_user = internal_user = pwd.getpwuid(os.geteuid()).pw_name
        group = _group_of(mail_user)
        ssl = "ssl = no"
        if self.cert is not None and self.key is not None:
            ssl = f"ssl = yes\nssl_cert = <{self.cert}\nssl_key = <{self.key}"
        (root / "dovecot.conf").write_text(
            _CONFIG.format(
                root=root,
                login_user=login_user,
                internal_user=internal_user,
                internal_group=_group_of(internal_user),
                mail_user=mail_user,
                mail_group=group,
                password=PASSWORD,
                port=self.port,
                tls_port=self.tls_port,
                ssl=ssl,
            )
        )
        self.process = subprocess.Popen(
            [BINARY, "-F", "-c", str(root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                assert self.process.stderr is not None
                said = self.process.stderr.read().decode(errors="replace")[-2000:]
                raise _StoppedAtOnce(f"Dovecot stopped: {self.log()} {said}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Dovecot did not start: {self.log()}")

    def log(self) -> str:
        try:
            return (self.root / "dovecot.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self.own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what a test does to the mailbox, as a mail server would --------------------------------

    def client(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        conn.login(USER, PASSWORD)
        return conn

    def append(self, folder: str, *messages: bytes) -> None:
        conn = self.client()
        try:
            conn.create(folder)  # NO when it exists: fine
            for data in messages:
                typ, detail = conn.append(folder, None, None, data)
                assert typ == "OK", detail
        finally:
            conn.logout()

    def recreate(self, folder: str, *messages: bytes) -> None:
        """Delete and create ``folder`` again with ``messages``: a new UIDVALIDITY."""
        conn = self.client()
        try:
            conn.delete(folder)
        finally:
            conn.logout()
        time.sleep(1.1)  # Dovecot's UIDVALIDITY is a time in seconds
        self.append(folder, *messages)

    def flags(self, folder: str) -> list[bytes]:
        """Each message's flags, read without changing them."""
        conn = self.client()
        try:
            conn.select(folder, readonly=True)
            typ, data = conn.fetch("1:*", "(FLAGS)")
            return [d for d in data if isinstance(d, bytes)]
        finally:
            conn.logout()

    def count(self, folder: str) -> int:
        conn = self.client()
        try:
            typ, data = conn.select(folder, readonly=True)
            return int(data[0] or 0)
        finally:
            conn.logout()


def _group_of(user: str) -> str:
    import grp

    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name

"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, in a thread of the test process.

It records what it receives (envelope sender, envelope recipients, raw bytes) and
can be told, per test, to misbehave the ways real servers do:

- ``refuse["x@example.com"] = "550 5.1.1 No such user"``: refuse that RCPT;
- ``data_replies.append("451 4.3.0 Try later")``: answer the next DATA (after the
  message was received) with that reply instead of 250; one reply per message,
  in order; ``data_reply = "554 ..."`` answers every DATA so;
- ``drop_after_data = N``: for the next N messages, close the connection after the
  whole message arrived, without replying (the client cannot know its fate);
- ``delay = 0.2`` (every message) or ``delay_for["x@example.com"] = 5``: sleep in
  DATA before replying; ``data_started`` is set when a delayed DATA begins;
- ``on_data = callable``: call it once a message has arrived, before replying (the
  world changing while the client waits: another writer takes the database, the disk
  fills up).

A message is recorded the moment its DATA arrives, whatever is answered: the
server has it, which is exactly what the client cannot know when it dies.

Used by ``tests/test_send.py`` as a fixture and by ``benchmarks/bench_send.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    """A port nobody listens on right now (bind to port 0, then let go)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    login: str | None = None

    @property
    def message(self) -> EmailMessage:
        # the wire has CRLF line ends; parse with plain newlines, as a mail client shows it
        parsed = message_from_bytes(self.content.replace(b"\r\n", b"\n"), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


@dataclass
class Handler:
    refuse: dict[str, str] = field(default_factory=dict)
    data_replies: list[str] = field(default_factory=list)
    data_reply: str | None = None
    drop_after_data: int = 0
    # the next N messages make the handler fail (a full disk, a missing folder): aiosmtpd
    # answers 500 and keeps the transaction open, as some real servers do
    fail_in_data: int = 0
    delay: float = 0.0
    delay_for: dict[str, float] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    rcpt_seen: list[str] = field(default_factory=list)
    data_started: threading.Event = field(default_factory=threading.Event)
    on_data: Callable[[], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        with self.lock:
            self.rcpt_seen.append(address)
            reply = self.refuse.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        login = session.auth_data if isinstance(session.auth_data, str) else None
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(content), login)
            )
            drop = self.drop_after_data > 0
            if drop:
                self.drop_after_data -= 1
            reply = self.data_replies.pop(0) if self.data_replies else self.data_reply
            fail = self.fail_in_data > 0
            if fail:
                self.fail_in_data -= 1
            pause = max([self.delay, *(self.delay_for.get(r, 0.0) for r in envelope.rcpt_tos)])
        if pause:
            self.data_started.set()
            await asyncio.sleep(pause)
        if self.on_data is not None:
            self.on_data()
        if fail:
            raise OSError("the mailbox folder is gone")
        if drop:
            server.transport.abort()  # no reply: the client's message is now of unknown fate
            return "250 OK (never seen by the client)"
        return reply or "250 OK queued"

    # -- for the test, from the main thread ---------------------------------------------------

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.messages()
            if len(got) >= count:
                return got
            time.sleep(0.01)
        raise AssertionError(
            f"the SMTP server received {len(self.messages())} messages, expected {count}"
        )


class SmtpServer:
    """aiosmtpd's Controller around a recording Handler, on 127.0.0.1 and a free port.

    ``users`` (login -> password) turns on AUTH (LOGIN and PLAIN, allowed without TLS
    since this is a test on the loopback interface) and makes it required.
    """

    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.handler = Handler()
        self.port = free_port()
        self.users = users
        kwargs: dict[str, Any] = {}
        if users is not None:
            kwargs.update(
                authenticator=self._authenticate, auth_require_tls=False, auth_required=True
            )
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, ready_timeout=10, **kwargs
        )

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert self.users is not None
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        if self.users.get(login) == password:
            with self.handler.lock:
                self.handler.logins.append(login)
            return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # shortcuts
    @property
    def received(self) -> list[Received]:
        return self.handler.messages()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        return self.handler.wait_for(count, timeout)


class HangingServer:
    """A bare SMTP server on 127.0.0.1 that stops answering at one point, the way a
    server under load or behind a broken firewall does:

    - ``"hang-data"``: never answers DATA (the message is never sent);
    - ``"hang-after"``: takes the whole message, then never replies;
    - ``"bad-helo"``: refuses EHLO and HELO with 554.

    ``connections`` counts the connections made to it; ``messages`` the messages taken.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.connections = 0
        self.messages = 0
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self.port = int(self._socket.getsockname()[1])
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            lines = conn.makefile("rb")
            conn.sendall(b"220 hanging.example ESMTP\r\n")
            while line := lines.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    conn.sendall(b"554 go away\r\n" if self.mode == "bad-helo" else b"250 ok\r\n")
                elif verb == b"DATA":
                    if self.mode == "hang-data":
                        return
                    conn.sendall(b"354 go ahead\r\n")
                    while lines.readline() not in (b".\r\n", b""):
                        pass
                    self.messages += 1
                    if self.mode == "hang-after":
                        continue  # and never reply
                    conn.sendall(b"250 ok\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")

    def stop(self) -> None:
        self._socket.close()
        for conn in self._open:
            with contextlib.suppress(OSError):
                conn.close()

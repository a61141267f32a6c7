"""Markdown to HTML: the one converter of email bodies, and a process converting ahead.

Converting a body with Python-Markdown costs about 2 ms, the largest part of building an
email. A long ``send`` converts its bodies in a worker process of its own
(``python -m funnelctl.mdhtml``), a few emails ahead of the one on the wire: in the
sending process that work would compete for the interpreter's lock with the threads
that claim, record and hand over each email, and the sending would stall behind it.

The worker reads bodies on its standard input and writes their HTML on its standard
output, each as a 4-byte length and UTF-8 text, after a greeting line; it ends when its
input does, so it ends with the send, however the send ends (a kill included). It holds nothing of the
send: no database, no message, no address. Should it fail in any way, the rest is
converted in the sending process, as a short send always is. Either way the HTML is the
same: it is this module's :func:`to_html` that converts.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import struct
import sys
from collections.abc import Iterable
from functools import lru_cache
from typing import IO, Any

# Below this many Markdown bodies a worker is not worth its start (about 0.1-0.2 s).
WORKER_FROM = 50
# Bodies given to the worker and not yet taken back: enough to keep it busy, few enough
# that a long outbox does not sit in memory as HTML.
AHEAD = 8
# Seconds an answer may take, the worker's start included, before the worker is let go
# (stopped, stuck, or its output not its own) and the rest is converted here.
WAIT = 30.0
# The worker's first words: anything else on its output (a sitecustomize that prints)
# means its answers cannot be read.
HELLO = b"funnelctl.mdhtml 1\n"
_LENGTH = struct.Struct(">I")
_LARGEST = 1 << 26  # a length beyond this is not an answer but noise


@lru_cache(maxsize=1)
def _converter() -> Any:
    """One Markdown converter per process (building one costs more than converting)."""
    import markdown

    return markdown.Markdown(extensions=["sane_lists", "nl2br"], output_format="html")


@lru_cache(maxsize=64)
def to_html(text: str) -> str:
    """A Markdown body as HTML, converted once per run for bodies that do not change
    from one customer to the next (a template without their data, a notice to partners)."""
    return str(_converter().reset().convert(text))


class Ahead:
    """Converts the Markdown ``bodies`` of a send, in their order, ahead of their use.

    :meth:`convert` takes the place of :func:`to_html` and is asked for the bodies in
    the order given; a body that is not the next one, or any trouble with the worker, is
    converted in this process. Two threads of its own write to the worker and read its
    answers, so that neither side ever waits on a full pipe; an answer is waited for
    ``WAIT`` seconds at most. Call :meth:`convert` and :meth:`close` from one thread;
    :meth:`abort` from any.
    """

    def __init__(self, bodies: Iterable[str]) -> None:
        self._bodies = collections.deque(bodies)
        self._given: collections.deque[bytes] = collections.deque()  # to the worker, in order
        self._requests: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._answers: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._worker: Any = None
        if len(self._bodies) >= WORKER_FROM:
            self._start()

    @property
    def working(self) -> bool:
        """Whether a worker process converts (False for a short send, or after trouble)."""
        return self._worker is not None

    def convert(self, text: str) -> str:
        data = text.encode("utf-8", "surrogatepass")
        try:
            self._give()
            # a body given later than others still waiting: theirs are read and dropped
            # (those emails were not built); one never given is converted here
            at = next((i for i, given in enumerate(self._given) if given == data), None)
            if at is not None:
                for _ in range(at + 1):
                    self._given.popleft()
                    html = self._answer()
                self._give()
                return html
        except Exception:  # the worker died, stalled or answered noise: the rest is done here
            self._stop()
        return to_html(text)

    def abort(self) -> None:
        """End the worker now, from any thread (a send stopping): a conversion waiting for
        it is done in this process instead, at once."""
        worker = self._worker
        if worker is not None:
            with contextlib.suppress(OSError):
                worker.kill()

    def close(self) -> None:
        self._stop()

    def _start(self) -> None:
        import subprocess
        import threading
        from pathlib import Path

        try:
            self._worker = worker = subprocess.Popen(
                [sys.executable, "-m", __name__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                # ``-m`` puts the working folder first on the worker's path: the folder
                # this funnelctl comes from, not wherever the send was started (where a
                # stray markdown.py would be imported in place of the library)
                cwd=Path(__file__).resolve().parent.parent,
            )
            for target, pipe in ((self._writer, worker.stdin), (self._reader, worker.stdout)):
                threading.Thread(target=target, args=(pipe,), daemon=True).start()
            self._give()
        except Exception:  # no process can be started here: convert in this one
            self._stop()

    def _give(self) -> None:
        """Hand bodies to the writer until the worker has enough of them."""
        while self._worker is not None and self._bodies and len(self._given) < AHEAD:
            body = self._bodies.popleft().encode("utf-8", "surrogatepass")
            self._requests.put(_LENGTH.pack(len(body)) + body)
            self._given.append(body)

    def _answer(self) -> str:
        html = self._answers.get(timeout=WAIT)  # queue.Empty: the worker is stuck
        if html is None:
            raise EOFError("the worker ended")
        return html

    def _writer(self, stdin: IO[bytes]) -> None:
        """The writer thread: bodies to the worker, until told to stop or it is gone."""
        with contextlib.suppress(OSError, ValueError):
            while (frame := self._requests.get()) is not None:
                stdin.write(frame)
                stdin.flush()
        with contextlib.suppress(OSError, ValueError):
            stdin.close()  # its input ends: the worker ends

    def _reader(self, stdout: IO[bytes]) -> None:
        """The reader thread: the worker's answers, in order; None when they end."""
        try:
            if stdout.read(len(HELLO)) == HELLO:
                while True:
                    self._answers.put(_read(stdout))
        except Exception:  # the end of its output, or noise
            pass
        self._answers.put(None)

    def _stop(self) -> None:
        worker, self._worker = self._worker, None
        self._given.clear()
        self._bodies.clear()
        if worker is not None:
            self._requests.put(None)
            with contextlib.suppress(OSError):
                worker.kill()  # it holds nothing: no reason to wait for it to finish
            worker.wait()


def _read(stream: IO[bytes]) -> str:
    """One length-prefixed UTF-8 text; EOFError when the stream ends before it."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError
    (size,) = _LENGTH.unpack(head)
    if size > _LARGEST:
        raise ValueError("not a length: the stream is not an answer")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return data.decode("utf-8", "surrogatepass")


def _serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The worker: convert each body read until the input ends."""
    answers.write(HELLO)
    answers.flush()
    while True:
        try:
            text = _read(requests)
        except EOFError:
            return
        html = to_html(text).encode("utf-8", "surrogatepass")
        answers.write(_LENGTH.pack(len(html)) + html)
        answers.flush()


if __name__ == "__main__":
    import signal

    # Ctrl-C reaches the whole process group: it is the send's to handle; the worker
    # ends when the send closes its input (or dies)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):  # the send is gone
        _serve(sys.stdin.buffer, sys.stdout.buffer)

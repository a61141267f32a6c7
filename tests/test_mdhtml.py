"""Markdown bodies converted in a worker process, ahead of a long send.

The worker is a real process (``python -m funnelctl.mdhtml``): these tests hold its HTML
to the in-process converter's, in order and out of it, and show that any trouble with
it (it cannot start, it dies mid-run) leaves the conversions to the sending process, and
that it never outlives the process that started it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from funnelctl import mdhtml
from funnelctl.mdhtml import WORKER_FROM, Ahead, to_html


def bodies(n: int) -> list[str]:
    """Varied bodies: lists, emphasis, escapes, non-ASCII, repeats, and one larger than
    what may be given to the worker at once."""
    shapes = [
        "Hi {i},\n\n- **one**\n- two\n\nThanks,\nAna",
        "Olá João {i} — *obrigado* & até já <3",
        "1. first {i}\n2. second\n\n    code {i}\n",
        "Same body every time",
        "\\*not emphasis\\* {i} " + "long line " * 1200,  # larger than a small pipe holds
    ]
    return [shapes[i % len(shapes)].format(i=i) for i in range(n)]


def test_a_long_send_converts_in_a_worker_and_the_html_is_the_same() -> None:
    texts = bodies(WORKER_FROM + 10)
    ahead = Ahead(texts)
    try:
        assert ahead.working
        assert [ahead.convert(text) for text in texts] == [to_html(text) for text in texts]
        assert ahead.working  # nothing went wrong on the way
    finally:
        ahead.close()
    assert not ahead.working


def test_a_short_send_starts_no_worker() -> None:
    texts = bodies(WORKER_FROM - 1)
    ahead = Ahead(texts)
    assert not ahead.working
    assert [ahead.convert(text) for text in texts] == [to_html(text) for text in texts]


def test_a_body_asked_out_of_order_is_still_its_own_html(monkeypatch: pytest.MonkeyPatch) -> None:
    here: list[str] = []  # what this process converts itself
    monkeypatch.setattr(mdhtml, "to_html", lambda text: here.append(text) or to_html(text))
    texts = bodies(WORKER_FROM)
    ahead = Ahead(texts)
    try:
        assert ahead.convert(texts[3]) == to_html(texts[3])  # the first three are skipped
        assert ahead.convert("") == to_html("")  # never given: converted here
        assert ahead.convert("not given at all") == to_html("not given at all")
        assert [ahead.convert(text) for text in texts[4:]] == [to_html(t) for t in texts[4:]]
        assert ahead.working
        assert here == ["", "not given at all"]  # the worker kept the rest
    finally:
        ahead.close()


def test_a_worker_that_cannot_start_leaves_the_conversions_here(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    texts = bodies(WORKER_FROM)
    ahead = Ahead(texts)
    assert not ahead.working
    assert [ahead.convert(text) for text in texts] == [to_html(text) for text in texts]


def test_a_worker_that_dies_mid_send_leaves_the_rest_here() -> None:
    texts = bodies(WORKER_FROM + 5)
    ahead = Ahead(texts)
    try:
        assert [ahead.convert(text) for text in texts[:3]] == [to_html(t) for t in texts[:3]]
        ahead._worker.kill()
        ahead._worker.wait()
        assert [ahead.convert(text) for text in texts[3:]] == [to_html(t) for t in texts[3:]]
        assert not ahead.working
    finally:
        ahead.close()


def test_a_worker_whose_output_is_not_its_own_is_let_go_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # a sitecustomize that prints: the worker's first words are not its greeting
    (tmp_path / "sitecustomize.py").write_text("print('hello from a site hook')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setattr(mdhtml, "WAIT", 600.0)  # not waited out: the greeting decides
    texts = bodies(WORKER_FROM)
    ahead = Ahead(texts)
    try:
        assert [ahead.convert(text) for text in texts] == [to_html(t) for t in texts]
        assert not ahead.working
    finally:
        ahead.close()


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="stops the worker with SIGSTOP")
def test_a_stuck_worker_is_let_go_after_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mdhtml, "WAIT", 0.5)
    texts = bodies(WORKER_FROM)
    ahead = Ahead(texts)
    try:
        assert ahead.convert(texts[0]) == to_html(texts[0])
        worker = ahead._worker
        os.kill(worker.pid, signal.SIGSTOP)  # stuck, and the pipes fill behind it
        assert [ahead.convert(text) for text in texts[1:]] == [to_html(t) for t in texts[1:]]
        assert not ahead.working
        assert worker.returncode is not None  # killed and reaped, not left stopped
    finally:
        ahead.close()


def test_abort_ends_a_conversion_waiting_on_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mdhtml, "WAIT", 600.0)
    texts = bodies(WORKER_FROM)
    ahead = Ahead(texts)
    try:
        os.kill(ahead._worker.pid, signal.SIGSTOP)
        ahead.abort()  # as send does when it stops: the wait ends with the worker
        assert ahead.convert(texts[0]) == to_html(texts[0])
        assert not ahead.working
    finally:
        ahead.close()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to see the worker end")
def test_the_worker_ends_when_the_send_is_killed(tmp_path: Path) -> None:
    script = (
        "import os, sys\n"
        "from funnelctl.mdhtml import Ahead\n"
        f"texts = ['**x** %d' % i for i in range({WORKER_FROM})]\n"
        "ahead = Ahead(texts)\n"
        "ahead.convert(texts[0])\n"
        "print(ahead._worker.pid, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL
    worker = int(done.stdout)
    deadline = time.monotonic() + 20
    while _alive(worker):
        assert time.monotonic() < deadline, f"the worker {worker} outlived the send"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:  # a zombie (its new parent has not reaped it yet) has ended
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

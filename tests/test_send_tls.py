"""TLS to the SMTP server: certificates are verified, STARTTLS and SMTPS both work.

A throwaway certificate authority (trustme) signs the test server's certificate.
Unknown to the system's trust store, the server must be refused; once the CA is
trusted (SSL_CERT_FILE), the same send goes through, over TLS only.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest
import trustme
from aiosmtpd.controller import Controller
from smtp_server import Handler, free_port
from test_send import configure, welcome


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def start(ca: trustme.CA, *, implicit: bool) -> tuple[Controller, Handler, int]:
    handler, port = Handler(), free_port()
    context = server_context(ca)
    kwargs = (
        {"ssl_context": context} if implicit else {"tls_context": context, "require_starttls": True}
    )
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10, **kwargs)
    controller.start()
    return controller, handler, port


def use(workspace: Path, port: int, security: str) -> None:
    configure(
        workspace,
        f"kind: smtp\nhost: 127.0.0.1\nport: {port}\nsecurity: {security}\ntimeout_s: 5\n",
    )


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNNELCTL_NOW", "2026-03-02T10:00")
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)


def test_an_untrusted_certificate_is_refused(run, workspace, ca):
    controller, handler, port = start(ca, implicit=False)
    try:
        use(workspace, port, "starttls")
        welcome(run, "ann@example.com", "Ann Lee")
        result = run("send", "--format", "json")
        # a set-up problem: one clear line before any email is claimed; they stay queued
        assert (result.exit_code, result.stdout) == (1, "")
        assert result.stderr == (
            "Error: The SMTP server 127.0.0.1 has a certificate this machine does not trust "
            "(unable to get local issuer certificate); for a private CA set transport.ca_file.\n"
        )
        assert handler.messages() == []
        listed = json.loads(run("outbox", "list", "-f", "json").stdout)
        assert [(r["status"], r["attempts"]) for r in listed] == [("queued", 0)]
    finally:
        controller.stop()


@pytest.mark.parametrize("security, implicit", [("starttls", False), ("ssl", True)])
def test_a_trusted_certificate_delivers(
    run, workspace, ca, tmp_path, monkeypatch, security, implicit
):
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    controller, handler, port = start(ca, implicit=implicit)
    try:
        use(workspace, port, security)
        welcome(run, "ann@example.com", "Ann Lee")
        result = run("send", "--format", "json")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["sent"] == 1
        assert [m.rcpt_tos for m in handler.messages()] == [["ann@example.com"]]
    finally:
        controller.stop()


def test_a_private_ca_in_transport_ca_file_delivers(run, workspace, ca, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    ca.cert_pem.write_to_path(str(workspace / "my-ca.pem"))
    controller, handler, port = start(ca, implicit=False)
    try:
        use(workspace, port, "starttls")
        settings = workspace / "funnelctl.yaml"
        settings.write_text(settings.read_text() + "  ca_file: my-ca.pem\n")
        welcome(run, "ann@example.com", "Ann Lee")
        result = run("send", "--format", "json")
        assert (result.exit_code, json.loads(result.stdout)["sent"]) == (0, 1), result.stderr
        assert len(handler.messages()) == 1
    finally:
        controller.stop()


def test_a_missing_ca_file_is_a_settings_problem(run, workspace):
    settings = workspace / "funnelctl.yaml"
    settings.write_text(
        "transport:\n  kind: smtp\n  host: 127.0.0.1\n  ca_file: nowhere.pem\n", encoding="utf-8"
    )
    result = run("due")
    assert result.exit_code == 1
    assert f"{settings}:4: transport: ca_file 'nowhere.pem': no such file" in result.stderr

"""TLS for the mail servers funnelctl talks to (SMTP out, IMAP in): certificates and
host names always verified, a private CA trusted through a ``ca_file`` setting."""

from __future__ import annotations

import ssl

from .errors import FunnelError


def tls_context(ca_file: str | None, setting: str) -> ssl.SSLContext:
    """The default verifying context, trusting ``ca_file`` too when given; ``setting``
    names it in the error (``transport.ca_file``, ``inbox.ca_file``)."""
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (ssl.SSLError, OSError) as exc:
        raise FunnelError(
            f"{setting} {ca_file} is not a PEM file of certificates this machine can read: {exc}."
        ) from None

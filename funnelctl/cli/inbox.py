"""funnelctl inbox"""

from __future__ import annotations

import os

from .. import output
from ..errors import UsageError
from ..output import OutputFormat
from .common import FormatOption, HomeOption, TodayOption, session


def inbox(
    home: HomeOption = None, today: TodayOption = None, fmt: FormatOption = OutputFormat.table
) -> None:
    """Read new mail since the last run: replies, automatic answers, bounces, unsubscribes.

    Reads the IMAP folders or Maildir of 'inbox:' in funnelctl.yaml and never changes
    them (no flag set, nothing moved or deleted). A reply is an inbound touchpoint (the
    tasks and emails waiting for it are dropped); an out-of-office answer changes
    nothing; a bounce holds the customer's next emails; "unsubscribe" stops all email.
    Mail from no known customer is counted, never stored.
    """
    from ..inbox import read_inbox

    with session(home, today) as s:
        if s.workspace.settings.inbox is None:
            raise UsageError(
                "No inbox to read: add an 'inbox:' section to funnelctl.yaml "
                "(kind: imap or maildir; see the README)."
            )
        report = read_inbox(
            s.store,
            s.library(),
            s.workspace.settings,
            today=s.today,
            environ=dict(os.environ),
        )
    output.render_object(report.summary(), fmt, title="Inbox")

"""funnelctl at-risk"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer

from .. import output
from ..output import OutputFormat
from .common import FormatOption, HomeOption, LimitOption, TodayOption, session

COLUMNS = ["customer", "owner", "score", "trend", "reasons", "opportunities"]
REASONS = 3  # a person sees the first reasons (the worst first); customer show has them all
INDENT = 9  # reasons start under the customer, after the score


def at_risk(
    everyone: Annotated[
        bool,
        typer.Option(
            "--all", help="Every active customer, not only those at risk or with an opportunity."
        ),
    ] = False,
    live: Annotated[
        bool, typer.Option("--live", help="Score everyone now, even when today's run already did.")
    ] = False,
    limit: LimitOption = None,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Health scores with their reasons and trend: customers at risk first, and opportunities.

    After today's `funnelctl run` this reads the scores it kept; before it (or with
    --live) every active customer is scored now.
    """
    from ..health import at_risk_report

    with session(home, today) as s:
        rows = at_risk_report(
            s.store, s.library(), s.workspace.settings, s.today, everyone=everyone, live=live
        )[:limit]
    if fmt == "table" and output.screen_rows(limit) is not None:  # a person, on a terminal
        # a screenful (its last lines for the prompt and the count of the rest); --limit all
        room = None if limit else max(10, shutil.get_terminal_size().lines - 3)
        _write_list(rows, s.today, room)
        return
    if fmt == "table":  # a pipe: plain rows, every reason
        for row in rows:
            row["reasons"] = "; ".join(row["reasons"])
            row["opportunities"] = "; ".join(row["opportunities"])
    output.render(
        rows,
        fmt,
        COLUMNS,
        empty="Nobody is at risk and no opportunity is open.",
        stream=True,
    )


def _write_list(rows: Sequence[Mapping[str, Any]], today: str, lines: int | None) -> None:
    """For a person on a terminal: a line per customer (score, email, owner, trend), its
    first reasons and its opportunities under it, wrapped, never cut; a screenful of
    ``lines`` at most (None: every row), then how many more there are."""
    if not rows:
        output.message("Nobody is at risk and no opportunity is open.")
        return
    width = shutil.get_terminal_size().columns
    at_risk = sum(1 for row in rows if row["at_risk"])
    chances = sum(1 for row in rows if row["opportunities"])
    title = output.wrap(
        f"Health on {today}: {at_risk} at risk · {chances} with an opportunity", width
    )
    parts: list[tuple[str, str | None]] = [("\n".join(title) + "\n", "bold")]
    used, shown = _rows_of(parts, width), 0
    for row in rows:
        block = _block(row, width)
        tall = _rows_of(block, width)
        if lines is not None and shown and used + tall > lines:
            break
        parts += block
        used, shown = used + tall, shown + 1
    output.write_styled(parts)
    if shown < len(rows):
        output.message(
            f"{len(rows) - shown} more not shown: --limit N shows N, a pipe (| less) or "
            "--format csv all."
        )


def _rows_of(parts: Sequence[tuple[str, str | None]], width: int) -> int:
    return output.rows_taken("".join(text for text, _ in parts), width)


def _block(row: Mapping[str, Any], width: int) -> list[tuple[str, str | None]]:
    """A customer's lines, each a (text, style) ending in a line break."""
    score = "–" if row["score"] is None else output.cell_text(row["score"])
    head = f"{score:>6}   {row['customer']}  {row['owner'] or '-'}"
    trend = row["trend"]
    if trend:
        head += f"  {'up' if trend > 0 else 'down'} {abs(trend):g}"
    block: list[tuple[str, str | None]] = [(head + "\n", "bold red" if row["at_risk"] else "bold")]
    reasons = list(row["reasons"])
    shown = reasons[:REASONS]
    if len(reasons) > len(shown):
        shown.append(f"… {len(reasons) - len(shown)} more: customer show {row['customer']}")
    for text, style in [*((r, None) for r in shown), *((o, "green") for o in row["opportunities"])]:
        for line in output.wrap(text, max(width - INDENT, 20)):  # an email stays whole
            block.append((" " * INDENT + line + "\n", style))
    return block

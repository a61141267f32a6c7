"""The report as one self-contained HTML page, the one a consultant sends to a client.

No scripts, fonts or images from anywhere: the page opens offline, on a phone,
and prints. Every label that comes from data is escaped.

Charts with names in them (the funnel, time in stage) are HTML bars, so that a
stage's full name wraps like any text and is never cut or shrunk. Charts over
time are SVG drawn on a narrow canvas (``WIDTH`` units, shown at most
``MAX_WIDTH`` pixels wide), so that their tick labels stay at least 12 pixels
high on a 390-pixel phone and are not huge on a desktop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape
from importlib import resources
from typing import Any

from markupsafe import Markup

from .sandbox import template

COLOURS = ("#2f6f9f", "#e08a2c", "#4a9a5b", "#b24c4c", "#7b5ea7", "#6b6b6b")

# The SVG canvas: WIDTH units shown at most MAX_WIDTH px wide (the stylesheet's
# max-width for svg.chart). At 390 px the page column is about 358 px, a scale of
# 0.81: FONT units are 12.2 px there, and at most 17.8 px on a desktop.
WIDTH, HEIGHT, FONT = 440, 230, 15
LEFT, RIGHT, TOP, BOTTOM = 52, 26, 12, 30
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def short_day(day: str) -> str:
    """``2026-03-02`` as ``2 Mar``: a tick label that fits."""
    d = date.fromisoformat(day)
    return f"{d.day} {MONTHS[d.month - 1]}"


def long_day(day: str) -> str:
    d = date.fromisoformat(day)
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def number(value: float | None, digits: int = 1) -> str:
    """A figure for people: no trailing .0, a dash for unknown."""
    if value is None:
        return "–"
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
    return text.replace("-", "−")


def percent(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio * 100:.0f}%"


# -- the tiles --------------------------------------------------------------------------------


def tile(kpi: dict[str, Any]) -> dict[str, str]:
    """A headline figure as text: its value, and its change against the previous period
    with a word for whether that is good news (``better`` says which way is up)."""
    ratio = kpi["kpi"] in ("conversion", "churn_rate")
    value = percent(kpi["value"]) if ratio else number(kpi["value"])
    change, previous = kpi["change"], kpi["previous"]
    if kpi["value"] is None or previous is None:
        text, mood = "no figure to compare with", "flat"
    elif not change:
        text, mood = f"same as before ({percent(previous) if ratio else number(previous)})", "flat"
    else:
        arrow = "▲" if change > 0 else "▼"
        sign = "+" if change > 0 else "−"
        amount = f"{abs(change) * 100:.0f} pts" if ratio else number(abs(change))
        was = percent(previous) if ratio else number(previous)
        text = f"{arrow} {sign}{amount} (was {was})"
        mood = "good" if (change > 0) == (kpi["better"] == "up") else "bad"
    return {"label": kpi["label"], "value": value, "change": text, "mood": mood}


# -- HTML bar charts: the funnel and time in stage -------------------------------------------


def width_pct(value: float, peak: float) -> str:
    """A bar's CSS width: at least a sliver for anything above zero."""
    if peak <= 0 or value <= 0:
        return "0%"
    return f"{max(1.5, 100 * value / peak):.1f}%"


def funnel_rows(funnel: dict[str, Any]) -> list[dict[str, Any]]:
    """Each stage with its bars: entered in the period, and the share of those that moved
    on (a win counts) drawn inside it."""
    peak = max((s["entered"] for s in funnel["stages"]), default=0)
    rows = []
    for s in funnel["stages"]:
        if s["closes"]:
            note = f"closes the enrollment as {s['closes']}"
        elif s["conversion"] is None:
            note = "nobody entered in the period"
        else:
            note = f"{s['converted']} moved on ({percent(s['conversion'])})"
        rows.append(
            {
                "title": s["title"],
                "entered": s["entered"],
                "note": note,
                "outer": width_pct(s["entered"], peak),
                "inner": width_pct(s["converted"], s["entered"]),
            }
        )
    return rows


def nice_ticks(peak: float, count: int = 4) -> list[float]:
    """Round axis ticks from 0 to at least ``peak`` (1, 2 or 5 times a power of ten)."""
    if peak <= 0:
        return [0.0, 1.0]
    raw = peak / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if step < 1:
        step = 1.0
    return [i * step for i in range(math.ceil(peak / step - 1e-9) + 1)]


def time_rows(funnel: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Each stage's median and 90th-percentile bars on one scale, and that scale's ticks."""
    peak = max((s["p90_days"] or 0 for s in funnel["stages"]), default=0)
    ticks = nice_ticks(peak)
    top = ticks[-1]
    rows = []
    for s in funnel["stages"]:
        known = s["median_days"] is not None
        rows.append(
            {
                "title": s["title"],
                "known": known,
                "median": width_pct(s["median_days"] or 0, top),
                "p90": width_pct(s["p90_days"] or 0, top),
                "text": f"median {number(s['median_days'])}\u00a0d · "
                f"90% within {number(s['p90_days'])}\u00a0d"
                if known
                else "no visit ended in the period",
            }
        )
    return rows, [f"{number(t)}\u00a0d" for t in ticks]


# -- SVG charts over time --------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    colour: str
    dashed: bool = False


def _svg(kind: str, label: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" data-chart="{kind}" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="xMinYMin meet" '
        f'font-size="{FONT}" xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _frame(
    x_labels: Sequence[str], ticks: list[float], low: float, high: float
) -> tuple[list[str], Callable[[int], float], Callable[[float], float]]:
    """Axes, grid lines and tick labels; and the functions that place a point."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(len(x_labels), 1)

    def x(i: int) -> float:
        return LEFT + plot_w * (i + 0.5) / n

    def y(v: float) -> float:
        return TOP + plot_h * (high - v) / ((high - low) or 1)

    body = []
    for t in ticks:
        body.append(
            f'<line x1="{LEFT}" y1="{y(t):.1f}" x2="{WIDTH - RIGHT}" y2="{y(t):.1f}" '
            f'stroke="{"#888" if t == 0 else "#e3e3e3"}"/>'
        )
        body.append(
            f'<text x="{LEFT - 6}" y="{y(t) + 5:.1f}" text-anchor="end">{escape(number(t))}</text>'
        )
    body.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#888"/>')
    every = max(1, math.ceil(n * 64 / plot_w))  # a label is up to 55 units wide
    for i, text in enumerate(x_labels):
        if i % every == 0:
            body.append(
                f'<text x="{x(i):.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(text)}</text>'
            )
    return body, x, y


def bar_chart(kind: str, label: str, x_labels: Sequence[str], series: list[Series]) -> Markup:
    """Grouped bars per x position (counts), with a y axis from 0."""
    peak = max((v or 0 for s in series for v in s.values), default=0)
    ticks = nice_ticks(peak)
    body, x, y = _frame(x_labels, ticks, 0, ticks[-1])
    slot = (WIDTH - LEFT - RIGHT) / max(len(x_labels), 1)
    bar = max(1.0, (slot - 4) / max(len(series), 1))
    for j, s in enumerate(series):
        for i, v in enumerate(s.values):
            if v:
                left = x(i) - slot / 2 + 2 + j * bar
                body.append(
                    f'<rect x="{left:.1f}" y="{y(v):.1f}" width="{bar:.1f}" '
                    f'height="{y(0) - y(v):.1f}" fill="{s.colour}"><title>'
                    f"{escape(s.name)}, {escape(x_labels[i])}: {number(v)}</title></rect>"
                )
    return _svg(kind, label, body)


def line_chart(
    kind: str,
    label: str,
    x_labels: Sequence[str],
    series: list[Series],
    bounds: tuple[float, float] | None = None,
) -> Markup:
    """Lines with a dot at each known value (a gap where a value is unknown)."""
    if bounds is None:
        peak = max((v or 0 for s in series for v in s.values), default=0)
        ticks = nice_ticks(peak)
        low, high = 0.0, ticks[-1]
    else:
        low, high = bounds
        ticks = [low + (high - low) * i / 4 for i in range(5)]
    body, x, y = _frame(x_labels, ticks, low, high)
    for s in series:
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        run: list[str] = []
        for i, v in enumerate([*s.values, None]):
            if v is not None:
                run.append(f"{x(i):.1f},{y(v):.1f}")
                if not s.dashed:
                    body.append(
                        f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" fill="{s.colour}">'
                        f"<title>{escape(s.name)}, {escape(x_labels[i])}: {number(v)}</title>"
                        "</circle>"
                    )
            elif run:
                if len(run) > 1:
                    body.append(
                        f'<polyline points="{" ".join(run)}" fill="none" stroke="{s.colour}" '
                        f'stroke-width="2.5"{dash}/>'
                    )
                run = []
    return _svg(kind, label, body)


def weekly_charts(weeks: list[dict[str, Any]]) -> dict[str, Markup]:
    labels = [short_day(w["week"]) for w in weeks]
    activity = bar_chart(
        "weekly-activity",
        "Enrollments started, won and churned per week",
        labels,
        [
            Series("Started", [w["started"] for w in weeks], COLOURS[0]),
            Series("Won", [w["won"] for w in weeks], COLOURS[2]),
            Series("Churned", [w["churned"] for w in weeks], COLOURS[3]),
        ],
    )
    nps = line_chart(
        "weekly-nps",
        "NPS of the answers given each week, from −100 to 100",
        labels,
        [Series("NPS", [w["nps"] for w in weeks], COLOURS[4])],
        bounds=(-100, 100),
    )
    return {"activity": activity, "nps": nps}


def workload_chart(report: dict[str, Any]) -> tuple[Markup, list[dict[str, Any]]]:
    """Tasks per owner per week of the projection, each owner's capacity dashed in the same
    colour; and the legend's entries."""
    projection = report["projection"]
    starts = sorted({r["starts"] for r in projection["rows"]})
    labels = [str(i + 1) for i in range(len(starts))]  # the week numbers of the verdict
    series, legend = [], []
    for j, member in enumerate(projection["members"]):
        colour = COLOURS[j % len(COLOURS)]
        load = [r["tasks"] for r in projection["rows"] if r["owner"] == member["owner"]]
        series.append(Series(member["owner"], load, colour))
        legend.append({"name": f"{member['owner']}: tasks", "colour": colour, "dashed": False})
        if member["capacity"] is not None:
            series.append(
                Series(
                    f"{member['owner']}'s capacity",
                    [member["capacity"]] * len(starts),
                    colour,
                    dashed=True,
                )  # fmt: skip
            )
            legend.append(
                {"name": f"{member['owner']}: capacity", "colour": colour, "dashed": True}
            )
    chart = line_chart(
        "workload", "Tasks per week per owner, projected, against capacity", labels, series
    )
    return chart, legend


def render_html(report: dict[str, Any], workspace: str = "") -> str:
    source = (resources.files("funnelctl") / "report.html").read_text(encoding="utf-8")
    funnels = {}
    for f in report["funnels"]:
        rows, ticks = time_rows(f)
        busy = f["active"] or any(s["entered"] for s in f["stages"]) or f["won"] or f["churned"]
        funnels[f["funnel"]] = {"bars": funnel_rows(f), "time": rows, "ticks": ticks, "busy": busy}
    workload, legend = workload_chart(report)
    return str(
        template(source).render(
            report=report,
            workspace=workspace,
            since=long_day(report["period"]["since"]),
            until=long_day(report["period"]["until"]),
            before=report["previous_period"],
            tiles=[tile(k) for k in report["kpis"]],
            at_risk_count=next(k["value"] for k in report["kpis"] if k["kpi"] == "at_risk"),
            funnels=funnels,
            weekly=weekly_charts(report["weekly"]),
            workload=workload,
            legend=legend,
            number=number,
            percent=percent,
            long_day=long_day,
        )
    )

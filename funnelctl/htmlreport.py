"""The report as one self-contained HTML page with inline SVG charts.

No scripts, fonts or images from anywhere: the page opens offline, on a phone,
and prints. Every label that comes from data is escaped.
"""

from __future__ import annotations

from html import escape
from importlib import resources
from typing import Any

from markupsafe import Markup

from .sandbox import template

COLOURS = ("#2f6f9f", "#e08a2c", "#4a9a5b", "#b24c4c", "#7b5ea7", "#8c8c8c")


def _svg(kind: str, label: str, width: int, height: int, body: list[str]) -> Markup:
    return Markup(
        f'<svg data-chart="{kind}" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
        + "".join(body)
        + "</svg>"
    )


def funnel_chart(funnel: dict[str, Any]) -> Markup:
    stages = funnel["stages"]
    peak = max((s["customers"] for s in stages), default=0) or 1
    row, width, label_w = 34, 640, 170
    body = []
    for i, s in enumerate(stages):
        bar = max(2.0, (width - label_w - 60) * s["customers"] / peak)
        x = label_w + (width - label_w - 60 - bar) / 2
        y = i * row + 4
        body.append(f'<text x="0" y="{y + 20}" font-size="13">{escape(s["title"])}</text>')
        body.append(
            f'<rect x="{x:.1f}" y="{y}" width="{bar:.1f}" height="{row - 8}" rx="3" fill="{COLOURS[0]}"/>'
        )
        body.append(f'<text x="{width - 50}" y="{y + 20}" font-size="13">{s["customers"]}</text>')
    return _svg(
        "funnel", f"Customers per stage in {funnel['title']}", width, row * len(stages) + 8, body
    )


def time_in_stage_chart(funnel: dict[str, Any]) -> Markup:
    stages = funnel["stages"]
    peak = max((s["p90_days"] or 0 for s in stages), default=0) or 1
    row, width, label_w = 30, 640, 170
    body = []
    for i, s in enumerate(stages):
        y = i * row + 4
        body.append(f'<text x="0" y="{y + 16}" font-size="13">{escape(s["title"])}</text>')
        for value, colour, h, dy in (
            (s["p90_days"], COLOURS[1], 18, 0),
            (s["median_days"], COLOURS[0], 10, 4),
        ):
            if value is not None:
                w = (width - label_w - 90) * value / peak
                body.append(
                    f'<rect x="{label_w}" y="{y + dy}" width="{max(w, 1):.1f}" height="{h}" fill="{colour}"/>'
                )
        text = "" if s["median_days"] is None else f"{s['median_days']:g} / {s['p90_days']:g} d"
        body.append(f'<text x="{width - 85}" y="{y + 16}" font-size="12">{text}</text>')
    return _svg(
        "time-in-stage",
        f"Median and 90th percentile days in stage, {funnel['title']}",
        width,
        row * len(stages) + 8,
        body,
    )


def trend_chart(trends: list[dict[str, Any]]) -> Markup:
    width, height, pad = 640, 220, 40
    n = max(len(trends), 1)
    step = (width - 2 * pad) / max(n - 1, 1)
    churn_peak = max((t["churned"] for t in trends), default=0) or 1
    body = [
        f'<line x1="{pad}" y1="{height / 2}" x2="{width - pad}" y2="{height / 2}" stroke="#ccc"/>'
    ]
    points = []
    for i, t in enumerate(trends):
        x = pad + i * step
        bar = (height / 2 - 20) * t["churned"] / churn_peak
        body.append(
            f'<rect x="{x - 8:.1f}" y="{height - 20 - bar:.1f}" width="16" height="{bar:.1f}" fill="{COLOURS[3]}" opacity="0.6"/>'
        )
        body.append(
            f'<text x="{x - 16:.1f}" y="{height - 4}" font-size="11">{escape(t["month"])}</text>'
        )
        if t["nps"] is not None:
            y = height / 2 - (height / 2 - 20) * t["nps"] / 100
            points.append(f"{x:.1f},{y:.1f}")
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{COLOURS[0]}"/>')
            body.append(f'<text x="{x + 5:.1f}" y="{y - 6:.1f}" font-size="11">{t["nps"]:g}</text>')
    if len(points) > 1:
        body.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{COLOURS[0]}" stroke-width="2"/>'
        )
    return _svg(
        "trends",
        "NPS (line, -100 to 100) and churned customers (bars) per month",
        width,
        height,
        body,
    )


def workload_chart(rows: list[dict[str, Any]]) -> Markup:
    weeks = sorted({r["week"] for r in rows})
    owners = sorted({r["owner"] for r in rows})
    totals = {w: sum(r["tasks"] + r["emails"] for r in rows if r["week"] == w) for w in weeks}
    peak = max(totals.values(), default=0) or 1
    width, height, pad = 640, 220, 30
    step = (width - 2 * pad) / max(len(weeks), 1)
    body = []
    for i, week in enumerate(weeks):
        x, base = pad + i * step, height - 30
        for j, owner in enumerate(owners):
            load = sum(
                r["tasks"] + r["emails"] for r in rows if r["week"] == week and r["owner"] == owner
            )
            h = (height - 60) * load / peak
            base -= h
            body.append(
                f'<rect x="{x + 4:.1f}" y="{base:.1f}" width="{step - 8:.1f}" height="{h:.1f}" fill="{COLOURS[j % len(COLOURS)]}"><title>{escape(owner)}: {load}</title></rect>'
            )
        body.append(
            f'<text x="{x + 4:.1f}" y="{height - 14}" font-size="11">{escape(week[5:])}</text>'
        )
        body.append(
            f'<text x="{x + 4:.1f}" y="{base - 4:.1f}" font-size="11">{totals[week]}</text>'
        )
    legend = " · ".join(escape(o) for o in owners)
    body.append(f'<text x="{pad}" y="{height - 1}" font-size="11">{legend}</text>')
    return _svg("workload", "Tasks and emails due per week, per owner", width, height, body)


def render_html(report: dict[str, Any]) -> str:
    source = (resources.files("funnelctl") / "report.html").read_text(encoding="utf-8")
    charts = {
        f["funnel"]: {"funnel": funnel_chart(f), "time": time_in_stage_chart(f)}
        for f in report["funnels"]
    }
    return str(
        template(source).render(
            report=report,
            charts=charts,
            trends=trend_chart(report["trends"]),
            workload=workload_chart(report["workload"]),
        )
    )

"""funnelctl report --html FILE: one self-contained page for a client, with charts.

The page is checked as text (nothing loaded from anywhere, nothing that runs, every
name escaped, valid HTML) and then opened in a real headless Chromium at a desktop
(1280 px) and a phone (390 px) width, where a measuring script, run through the
DevTools protocol and never part of the page, finds any text that is cut, too small
to read, or wider than the screen. The browser tests are skipped only when no
`chromium` is installed (CI installs Debian's).
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import struct
import subprocess
import time
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import html5lib
import pytest
from conftest import write
from markupsafe import escape
from test_report import DESK, module_workspace, ok

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
SVG_KINDS = ("weekly-activity", "weekly-nps", "workload")  # charts over time: SVG
HTML_KINDS = ("funnel", "time-in-stage")  # charts with names in them: HTML bars
BAR_BLUE = (0x2F, 0x6F, 0x9F)  # the funnel's "moved on" bars (--blue in report.html)
PERIOD = ("--since", "2026-01-01", "--until", "2026-02-28", "--today", "2026-03-02")
TEAM = "team: [{id: ana, capacity: 1}, bruno]\n"


def build(run, workspace: Path) -> None:
    """Two customers in the DESK funnel; one of them named, at a company and owned by
    a script tag.

    evil  intake 01-10 -> active 01-20 (10 days in intake); Triage due 01-12 still open
    fine  intake 02-01 -> active 02-10 -> retained 02-20; Triage due 02-03 done on time
    NPS: evil 9 (01-15), fine 3 (02-15).
    """
    write(workspace / "playbooks" / "desk.yaml", DESK)
    config = workspace / "funnelctl.yaml"
    config.write_text(config.read_text().replace("team: []\n", TEAM))
    ok(run("customer", "add", "evil@example.com", "--name", EVIL, "--company", EVIL,
           "--owner", EVIL, "--today", "2026-01-01"))  # fmt: skip
    ok(run("customer", "add", "fine@example.com", "--name", "Fine", "--owner", "ana"))
    ok(run("enroll", "evil@example.com", "desk", "--today", "2026-01-10"))
    ok(run("signal", "evil@example.com", "nps", "9", "--at", "2026-01-15"))
    ok(run("move", "evil@example.com", "active", "--today", "2026-01-20"))
    ok(run("enroll", "fine@example.com", "desk", "--today", "2026-02-01"))
    rows = json.loads(ok(run("export", "activities", "--format", "json")).stdout)
    (triage,) = [r["id"] for r in rows if r["customer"] == "fine@example.com"]
    ok(run("done", str(triage), "--today", "2026-02-03"))
    ok(run("move", "fine@example.com", "active", "--today", "2026-02-10"))
    ok(run("signal", "fine@example.com", "nps", "3", "--at", "2026-02-15"))
    ok(run("move", "fine@example.com", "retained", "--today", "2026-02-20"))


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> tuple[Path, dict]:
    """The HTML file and the JSON of the same run, made once for the module."""
    with module_workspace(tmp_path_factory, "html-book") as (run, workspace):
        build(run, workspace)
        out = workspace.parent / "out"
        out.mkdir()
        result = ok(run("report", *PERIOD, "--html", str(out / "report.html"), "-f", "json"))
        data = json.loads(result.stdout)
        assert data["period"]["since"] == "2026-01-01"  # data still printed
        assert str(out / "report.html") in result.stderr
        assert [p.name for p in out.iterdir()] == ["report.html"]  # one file, nothing beside it
    return out / "report.html", data


@pytest.fixture(scope="module")
def page(made) -> Path:
    return made[0]


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory) -> Path:
    """The page of the demo book (the README's quick start), with its team's capacities."""
    with module_workspace(tmp_path_factory, "html-demo") as (run, workspace):
        demo = workspace.parent / "demo"
        ok(run("init", str(demo), "--demo", "--today", "2026-03-04"))
        ok(run("run", "--home", str(demo), "--today", "2026-03-04"))  # scores: the at-risk list
        target = workspace.parent / "demo.html"
        result = ok(run("report", "--home", str(demo), "--today", "2026-03-04", "--html",
                        str(target), "-f", "json"))  # fmt: skip
        target.with_suffix(".json").write_text(result.stdout, encoding="utf-8")
    return target


class Elements(HTMLParser):
    """Every start tag with its attributes, the text in document order, the charts (any
    element with data-chart) with the tags inside each, and the nesting, checked."""

    VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "area", "base", "source"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.charts: list[dict[str, object]] = []
        self.open_charts: list[int] = []  # stack depths at which a chart opened
        self.nesting: list[str] = []  # end tags that did not close the open element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        for chart in self.charts[-len(self.open_charts) :] if self.open_charts else []:
            shapes = chart["shapes"]
            assert isinstance(shapes, dict)
            key = tag if tag != "div" else f"div.{dict(attrs).get('class')}"
            shapes[key] = shapes.get(key, 0) + 1
        if "data-chart" in dict(attrs):
            self.charts.append({"kind": dict(attrs)["data-chart"], "tag": tag, "shapes": {}})
            self.open_charts.append(len(self.stack))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.nesting.append(f"</{tag}> closes <{self.stack[-1] if self.stack else ''}>")
            return
        self.stack.pop()
        if self.open_charts and self.open_charts[-1] == len(self.stack):
            self.open_charts.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(text: str) -> Elements:
    parser = Elements()
    parser.feed(text)
    parser.close()
    return parser


def charts(doc: Elements, kind: str) -> list[dict]:
    return [c for c in doc.charts if c["kind"] == kind]


# -- the file ----------------------------------------------------------------------------------


def test_self_contained(page):
    text = page.read_text(encoding="utf-8")
    doc = parse(text)
    assert not any(tag == "script" for tag, _ in doc.tags)
    assert "<script" not in text.lower()
    assert not any(tag in ("link", "img", "iframe", "object", "embed") for tag, _ in doc.tags)
    for tag, attrs in doc.tags:
        for name in ("src", "href", "xlink:href", "srcset", "action"):
            assert name not in attrs, (tag, attrs)
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)  # no handlers
    assert "@import" not in text and "url(" not in text  # nothing pulled in by CSS
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text
    assert ('<meta charset="utf-8">' in text) and ('name="viewport"' in text)


def assert_valid(text: str) -> None:
    """Valid HTML as far as a parser can tell: the WHATWG parsing algorithm (html5lib)
    meets no parse error (a stray or missing end tag, a duplicate attribute, a bad
    doctype...), every element is closed where it was opened, ids are unique, and the
    page has its language, title and viewport."""
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    tree = parser.parse(text)  # strict: raises at the first parse error
    assert parser.errors == []
    doc = parse(text)
    assert doc.nesting == [] and doc.stack == []
    ids = Counter(attrs["id"] for _, attrs in doc.tags if "id" in attrs)
    assert [i for i, n in ids.items() if n > 1] == []
    assert tree.get("lang") == "en"
    assert tree.find("head/title") is not None and tree.find("head/title").text.strip()
    assert tree.find("head/meta[@name='viewport']") is not None


def test_the_page_is_valid_html(page, demo_page, run, workspace, tmp_path):
    assert_valid(page.read_text(encoding="utf-8"))
    assert_valid(demo_page.read_text(encoding="utf-8"))
    empty = tmp_path / "empty.html"
    ok(run("report", "--html", str(empty)))
    assert_valid(empty.read_text(encoding="utf-8"))


def test_the_validity_check_can_fail():
    good = "<!doctype html><html lang=en><head><meta name=viewport content=x><title>t</title></head><body><p id=a>x</p></body></html>"
    assert_valid(good)
    for bad in (
        good.replace("</p>", "</div>"),  # a stray end tag
        good.replace("<p id=a>x</p>", "<p id=a>x</p><p id=a>y</p>"),  # a duplicate id
        good.replace("<p id=a>x</p>", "<div><span>x</div>"),  # closed out of order
    ):
        with pytest.raises((AssertionError, html5lib.html5parser.ParseError)):
            assert_valid(bad)


def test_header_names_the_workspace_and_the_period(page):
    text = page.read_text(encoding="utf-8")
    # the workspace's folder is "ws"; the period and the previous one of the same length
    # (59 days: 2025-11-03 to 2025-12-31)
    assert "<h1>ws</h1>" in text
    assert "1 Jan 2026 to 28 Feb 2026" in text
    assert "compared with 3 Nov 2025 to 31 Dec 2025" in text


def tiles(text: str) -> dict[str, tuple[str, str, str]]:
    found = re.findall(
        r'<li class="tile"><p class="label">(.*?)</p><p class="value">(.*?)</p>'
        r'<p class="change (\w+)">(.*?)</p></li>',
        text,
    )
    return {label: (value, mood, change) for label, value, mood, change in found}


def test_kpi_tiles_with_the_change_against_the_previous_period(made):
    # Active at the end of the period: evil and fine (2); at the end of the previous
    # one: nobody. Nothing closed, so no conversion and no time to approval; churn 0 out
    # of 2 now, and nobody to churn before. NPS: evil 9, fine 3 -> 0. At risk: the daily
    # run never ran, so nobody has a score.
    page, data = made
    at_risk = "–"
    assert tiles(page.read_text(encoding="utf-8")) == {
        "Active customers": ("2", "good", "▲ +2 (was 0)"),
        "Conversion to approved": ("–", "flat", "no figure to compare with"),
        "Churn": ("0%", "flat", "no figure to compare with"),
        "NPS": ("0", "flat", "no figure to compare with"),
        "CSAT": ("–", "flat", "no figure to compare with"),
        "At risk": (at_risk, "flat", "no figure to compare with"),
        "Median days to approval": ("–", "flat", "no figure to compare with"),
    }


def test_tile_words_say_whether_a_change_is_good_news():
    from funnelctl.htmlreport import tile

    def mood(kpi: str, value: float, previous: float, better: str) -> tuple[str, str, str]:
        t = tile({"kpi": kpi, "label": kpi, "value": value, "previous": previous,
                  "change": round(value - previous, 3), "better": better})  # fmt: skip
        return t["value"], t["mood"], t["change"]

    assert mood("churn_rate", 0.05, 0.08, "down") == ("5%", "good", "▼ −3 pts (was 8%)")
    assert mood("churn_rate", 0.08, 0.05, "down") == ("8%", "bad", "▲ +3 pts (was 5%)")
    assert mood("nps", -20, 10, "up") == ("−20", "bad", "▼ −30 (was 10)")
    assert mood("at_risk", 4, 4, "down") == ("4", "flat", "same as before (4)")


def test_the_funnel_is_entered_and_moved_on_per_stage(page):
    # From the stage history of the period, not the customers there now (active and
    # retained hold one customer each now):
    #   intake    entered evil 01-10, fine 02-01; both moved on       2 -> 2 (100%)
    #   active    entered evil 01-20, fine 02-10; fine moved on       2 -> 1 (50%)
    #   retained  entered fine 02-20; still there                     1 -> 0 (0%)
    #   advocate  nobody
    # The outer bar is entered against the largest stage (2), the inner one the share
    # of those that moved on.
    text = page.read_text(encoding="utf-8")
    figure = text[text.index('data-chart="funnel"') :]
    figure = figure[: figure.index("</figure>")]
    found = re.findall(
        r'<span class="name">(.*?)</span> <span class="figure">(.*?)</span>\s*'
        r'<div class="track"><div class="bar entered" style="width: ([\d.]+%)">'
        r'<div class="bar converted" style="width: ([\d.]+%)">',
        figure,
    )
    assert found == [
        ("Intake", "2 entered · 2 moved on (100%)", "100.0%", "100.0%"),
        ("Active support", "2 entered · 1 moved on (50%)", "100.0%", "50.0%"),
        ("Retained", "1 entered · 0 moved on (0%)", "50.0%", "0%"),
        ("Advocate", "0 entered · nobody entered in the period", "0%", "0%"),
    ]


def test_charts_have_legends_axes_and_full_names(page):
    text = page.read_text(encoding="utf-8")
    doc = parse(text)
    # Only the desk funnel had anyone: the shipped ones say so instead of empty charts.
    assert [c["kind"] for c in doc.charts] == [*HTML_KINDS, *SVG_KINDS]
    assert text.count("Nobody was in this funnel in the period.") == 3
    for kind in HTML_KINDS:
        (chart,) = charts(doc, kind)
        assert chart["tag"] == "figure" and chart["shapes"]["ul"] == 1  # the legend
    (time,) = charts(doc, "time-in-stage")
    # Visits ended in the period: intake evil 10 d, fine 9 d; active fine 10 d: two
    # stages with a median bar and a p90 bar each.
    assert (time["shapes"]["div.bar p90"], time["shapes"]["div.bar median"]) == (2, 2)
    assert '<div class="scale-axis"><span>0\u00a0d</span>' in text
    for kind in SVG_KINDS:
        (chart,) = charts(doc, kind)
        assert chart["tag"] == "svg"
        assert chart["shapes"]["text"] >= 4  # tick labels on both axes
        assert chart["shapes"]["line"] >= 3  # the axes and grid lines
    assert text.count('<ul class="legend">') == 5
    # NPS per week: evil 9 in the week of 01-12 (+100), fine 3 in the week of 02-09 (-100)
    (nps,) = charts(doc, "weekly-nps")
    assert nps["shapes"]["circle"] == 2


def test_a_closing_stage_is_no_gap(page, demo_page):
    # Nobody logged a touchpoint in the desk book: each of its four stages is a gap.
    assert page.read_text(encoding="utf-8").count("gap: none logged") == 4
    # In the demo, after-sales' approved customer closes the enrollment as won on entry:
    # nobody stays there to be touched, so it is no gap.
    text = demo_page.read_text(encoding="utf-8")
    row = text[text.index('<td data-label="Stage"><span>Approved customer</span>') :]
    row = row[: row.index("</tr>")]
    assert '<td data-label="Touchpoints"><span>closes as won</span></td>' in row
    assert "2 entered · closes the enrollment as won" in text


def test_names_are_escaped(page):
    text = page.read_text(encoding="utf-8")
    assert EVIL not in text
    # The owner shows (owners table, workload legend and owner rows), escaped each time.
    assert text.count(ESCAPED) >= 2
    assert "Desk &amp; care" in text  # the funnel title
    assert "Desk & care" not in text
    doc = parse(text)
    assert any(EVIL in t for t in doc.text)  # read back as text, not as a tag


def test_at_risk_list_with_reasons(page, demo_page):
    assert "No health score yet: the daily run (funnelctl run) scores every customer." in (
        page.read_text(encoding="utf-8")
    )
    # The demo book, after a daily run: its customers at risk, each with every reason.
    text = demo_page.read_text(encoding="utf-8")
    data = json.loads(demo_page.with_suffix(".json").read_text(encoding="utf-8"))
    assert len(data["at_risk"]) >= 3
    for r in data["at_risk"]:
        assert r["customer"] in text
        for reason in r["reasons"]:
            assert f"<li>{escape(reason)}</li>" in text


def test_sustain_or_scale_on_the_page(made):
    page, data = made
    text = page.read_text(encoding="utf-8")
    summary = data["projection"]["summary"]
    # ana (capacity 1) has one task in a week at most: fine's quarterly review (due
    # 04-03); bruno has no capacity; the script-tag owner is not in the team.
    assert summary == (
        "sustain: ana stays within capacity for the next 12 weeks; "
        "cannot judge bruno: no capacity set"
    )
    assert text.count(summary) == 2  # under the tiles and in its own section
    assert 'class="key line dashed"' in text  # ana's capacity line, in the legend
    assert "not in the team: not judged" in text  # the script-tag owner's row


def test_print_stylesheet(page):
    text = page.read_text(encoding="utf-8")
    rules = text[text.index("@media print") :]
    assert "break-inside: avoid" in rules and "@page" in rules


def test_an_empty_book_still_renders(run, workspace, tmp_path):
    target = tmp_path / "empty.html"
    ok(run("report", "--html", str(target), "-f", "json"))
    text = target.read_text(encoding="utf-8")
    assert {c["kind"] for c in parse(text).charts} == set(SVG_KINDS)
    assert "No health score yet" in text
    assert "cannot judge: no team member has a capacity" in text


# -- in a real browser ----------------------------------------------------------------------

CHROMIUM = shutil.which("chromium")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (CI installs it: apt-get install chromium)"
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",  # the viewport is the whole window, as on a phone
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    assert CHROMIUM is not None
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done


class DevTools:
    """Chromium driven through the DevTools protocol over a pipe (--remote-debugging-pipe:
    JSON messages ended by NUL, commands on the child's fd 3, answers on its fd 4), so
    that a test sets the exact viewport (the window of a headless Chromium is at least
    500 px wide) and runs its own script in the page, which ships none."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None
        to_child, self.writer = os.pipe()
        self.reader, from_child = os.pipe()
        high = [os.dup(fd) for fd in (to_child, from_child)]  # above 4: dup2 cannot clobber

        def wire() -> None:
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.process = subprocess.Popen(
            [CHROMIUM, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire, close_fds=False,
        )  # fmt: skip
        for fd in (to_child, from_child, *high):
            os.close(fd)
        self.buffer = b""
        self.last = 0
        self.session: str | None = None

    def send(self, method: str, **params: object) -> dict:
        self.last += 1
        message: dict[str, object] = {"id": self.last, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        os.write(self.writer, json.dumps(message).encode() + b"\0")
        number = self.last
        answer = self.wait(lambda m: m.get("id") == number)
        assert "error" not in answer, answer
        return answer["result"]

    def wait(self, wanted, timeout: float = 30) -> dict:
        end = time.monotonic() + timeout
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                message = json.loads(raw)
                if wanted(message):
                    return message
            ready, _, _ = select.select([self.reader], [], [], max(0.0, end - time.monotonic()))
            assert ready, "Chromium did not answer in time"
            chunk = os.read(self.reader, 1 << 20)
            assert chunk, "Chromium closed the pipe"
            self.buffer += chunk

    def open(self, url: str, width: int, height: int) -> None:
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)  # fmt: skip
        self.send("Page.enable")
        self.send("Page.navigate", url=url)
        self.wait(lambda m: m.get("method") == "Page.loadEventFired")

    def evaluate(self, script: str) -> object:
        result = self.send("Runtime.evaluate", expression=script, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"]["value"]

    def close(self) -> None:
        try:
            self.send("Browser.close")
        finally:
            self.process.wait(timeout=30)
            os.close(self.writer)
            os.close(self.reader)


# What the test measures in the page: the viewport's width, the page's, and every
# element that reaches past the viewport, whose content is wider than its box (cut, or
# spilling), that ends in an ellipsis, whose text is under 12 px on screen (SVG text:
# its font size times the chart's scale), or, in a chart, whose text leaves the chart.
MEASURE = """(() => {
  const vw = document.documentElement.clientWidth;
  const out = {viewport: vw, page: document.documentElement.scrollWidth,
               beyond: [], cut: [], ellipsis: [], small: [], outside_chart: []};
  const say = (el) => el.tagName.toLowerCase() + " " + JSON.stringify((el.textContent || "").trim().slice(0, 50));
  for (const el of document.body.querySelectorAll("*")) {
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.display === "none" || (box.width === 0 && box.height === 0)) continue;
    if (box.right > vw + 0.5 || box.left < -0.5) out.beyond.push(say(el));
    if (style.textOverflow === "ellipsis") out.ellipsis.push(say(el));
    const svg = el instanceof SVGElement;
    if (!svg && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) out.cut.push(say(el));
    const text = [...el.childNodes].some((n) => n.nodeType === 3 && n.data.trim());
    if (!text) continue;
    let size = parseFloat(style.fontSize);
    if (svg) {
      size *= el.getScreenCTM().a;
      const chart = el.ownerSVGElement.getBoundingClientRect();
      if (box.left < chart.left - 0.5 || box.right > chart.right + 0.5 ||
          box.top < chart.top - 0.5 || box.bottom > chart.bottom + 0.5) out.outside_chart.push(say(el));
    }
    if (size < 11.95) out.small.push(say(el) + " " + size.toFixed(1) + "px");
  }
  return out;
})()"""


@needs_browser
@pytest.mark.parametrize("width", [1280, 390])
def test_nothing_is_cut_or_too_wide(page, demo_page, tmp_path, width):
    browser = DevTools(tmp_path / "profile")
    try:
        for target in (page, demo_page):
            browser.open(target.as_uri(), width, 900)
            found = browser.evaluate(MEASURE)
            assert isinstance(found, dict)
            assert found["viewport"] == width  # the page is laid out at that width
            assert found["page"] <= width  # no sideways scrolling
            problems = {k: v for k, v in found.items() if isinstance(v, list) and v}
            assert problems == {}, (target.name, width)
    finally:
        browser.close()


@needs_browser
def test_the_measure_finds_what_is_wrong(tmp_path):
    """The measuring script is not blind: a page with each fault is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!doctype html><html><body style='margin:0'>"
        "<div style='width: 600px'>too wide</div>"
        "<div style='width: 100px; overflow: hidden; white-space: nowrap'>cut cut cut cut cut cut cut</div>"
        "<p style='font-size: 9px'>tiny</p>"
        "<p style='width: 80px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap'>x</p>"
        "<svg viewBox='0 0 100 20' width='100'><text x='80' y='15' font-size='14'>outside</text></svg>"
        "</body></html>",
        encoding="utf-8",
    )
    browser = DevTools(tmp_path / "profile")
    try:
        browser.open(bad.as_uri(), 390, 600)
        found = browser.evaluate(MEASURE)
    finally:
        browser.close()
    assert isinstance(found, dict)
    assert found["page"] > 390
    assert any("too wide" in b for b in found["beyond"])
    assert any("cut cut" in c for c in found["cut"])
    assert any("tiny" in s for s in found["small"])
    assert found["ellipsis"] and found["outside_chart"]


@needs_browser
def test_browser_dom_holds_the_charts(page, tmp_path):
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout.decode("utf-8")
    doc = parse(dom)
    assert [c["kind"] for c in doc.charts] == [*HTML_KINDS, *SVG_KINDS]
    for chart in charts(doc, "weekly-nps") + charts(doc, "workload"):
        assert chart["shapes"]["title"] >= 1  # parsed as SVG, with its own title inside
    assert not any(tag == "script" for tag, _ in doc.tags)
    assert any(EVIL in t for t in doc.text)  # still text in the live DOM


def png_pixels(data: bytes) -> tuple[int, int, set[tuple[int, ...]]]:
    """Width, height and the set of colours of an 8-bit RGB or RGBA PNG (standard library)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    colours: set[tuple[int, ...]] = set()
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                corner = previous[i - channels] if i >= channels else 0
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + best) & 0xFF
        if y % 4 == 0:  # every 4th row is plenty to see what is drawn
            colours.update(tuple(line[i : i + 3]) for i in range(0, stride, channels))
        previous = line
    return width, height, colours


@needs_browser
def test_browser_screenshot_at_phone_width(page, tmp_path):
    shot = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=390,2000", page.as_uri())
    width, height, colours = png_pixels(shot.read_bytes())
    assert (width, height) == (390, 2000)
    assert len(colours) > 20  # text, lines and bars: far from a single colour
    assert BAR_BLUE in colours  # the funnel bars were drawn


@needs_browser
def test_browser_prints_to_pdf(page, tmp_path):
    pdf = tmp_path / "report.pdf"
    chromium(tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.as_uri())
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 2  # the report spans pages

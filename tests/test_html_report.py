"""funnelctl report --html FILE: one self-contained page with inline SVG charts.

The page is checked as text (nothing loaded from anywhere, nothing that runs,
every name escaped) and then opened in a real headless Chromium: the rendered
DOM holds the charts, a phone-width screenshot shows them, and the page prints
to PDF. The browser tests are skipped only when no `chromium` is installed (CI
installs Debian's).
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import write
from test_report import DESK, module_workspace, ok

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
KINDS = ("funnel", "time-in-stage", "trends", "workload")
BAR_BLUE = (0x2F, 0x6F, 0x9F)  # the funnel bars' colour (htmlreport.COLOURS[0])
PERIOD = ("--since", "2026-01-01", "--until", "2026-02-28", "--today", "2026-03-02")


def build(run, workspace: Path) -> None:
    """Two customers in the DESK funnel; one of them named, at a company and owned by
    a script tag.

    evil  intake 01-10 -> active 01-20 (10 days in intake); Triage due 01-12 still open
    fine  intake 02-01 -> active 02-10 -> retained 02-20; Triage due 02-03 done on time
    NPS: evil 9 (01-15), fine 3 (02-15).
    """
    write(workspace / "playbooks" / "desk.yaml", DESK)
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
def page(tmp_path_factory) -> Path:
    """The HTML file, written once for the module."""
    with module_workspace(tmp_path_factory, "html-book") as (run, workspace):
        build(run, workspace)
        out = workspace.parent / "out"
        out.mkdir()
        result = ok(run("report", *PERIOD, "--html", str(out / "report.html"), "-f", "json"))
        assert json.loads(result.stdout)["period"]["since"] == "2026-01-01"  # data still printed
        assert str(out / "report.html") in result.stderr
        assert [p.name for p in out.iterdir()] == ["report.html"]  # one file, nothing beside it
    return out / "report.html"


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text, in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.open_svg: list[dict[str, str | None]] = []
        self.charts: list[dict[str, object]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "svg":
            chart: dict[str, object] = {"kind": dict(attrs).get("data-chart"), "shapes": {}}
            self.charts.append(chart)
            self.open_svg.append(dict(attrs))
        elif self.open_svg:
            shapes = self.charts[-1]["shapes"]
            assert isinstance(shapes, dict)
            shapes[tag] = shapes.get(tag, 0) + 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "svg":
            self.open_svg.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg" and self.open_svg:
            self.open_svg.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(text: str) -> Elements:
    parser = Elements()
    parser.feed(text)
    parser.close()
    return parser


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


def test_four_kinds_of_charts(page):
    doc = parse(page.read_text(encoding="utf-8"))
    kinds = [c["kind"] for c in doc.charts]
    funnels = 4  # the shipped after-sales, relationship and support, and desk
    assert kinds.count("funnel") == kinds.count("time-in-stage") == funnels
    assert kinds.count("trends") == kinds.count("workload") == 1
    assert set(kinds) == set(KINDS)
    # Scalable to any width (the parser lowers attribute names).
    assert all(tag != "svg" or attrs.get("viewbox") for tag, attrs in doc.tags)
    assert_desk_shapes(doc)


def assert_desk_shapes(doc: Elements) -> None:
    """What the book puts in the charts (funnels in id order: after-sales, desk, ...)."""
    funnel = [c for c in doc.charts if c["kind"] == "funnel"][1]
    assert funnel["shapes"]["rect"] == 4  # one bar per stage, even an empty one
    # Visits ended in the period: intake evil 10 d, fine 9 d; active fine 10 d. Each
    # stage with durations gets two bars (p90 and median): 2 stages * 2.
    time = [c for c in doc.charts if c["kind"] == "time-in-stage"][1]
    assert time["shapes"]["rect"] == 4
    # NPS: January evil 9 (+100), February fine 3 (-100): two points and a line.
    (trends,) = [c for c in doc.charts if c["kind"] == "trends"]
    assert (trends["shapes"]["circle"], trends["shapes"]["polyline"]) == (2, 1)
    assert trends["shapes"]["rect"] == 2  # a churn bar per month (zero high)
    # Workload: 8 weeks * 2 owners (the script-tag owner's overdue Triage and queued
    # email; ana's email and review) = 16 stacked bars.
    (workload,) = [c for c in doc.charts if c["kind"] == "workload"]
    assert workload["shapes"]["rect"] == 16


def test_names_are_escaped(page):
    text = page.read_text(encoding="utf-8")
    assert EVIL not in text
    # The owner shows (owners table, workload legend and bar title), escaped each time.
    assert text.count(ESCAPED) >= 2
    assert "Desk &amp; care" in text  # the funnel title, in the heading and in the charts
    assert "Desk & care" not in text
    doc = parse(text)
    assert any(EVIL in t for t in doc.text)  # read back as text, not as a tag


def test_an_empty_book_still_renders(run, workspace, tmp_path):
    target = tmp_path / "empty.html"
    ok(run("report", "--html", str(target), "-f", "json"))
    kinds = {c["kind"] for c in parse(target.read_text(encoding="utf-8")).charts}
    assert kinds == set(KINDS)


# -- in a real browser ----------------------------------------------------------------------

CHROMIUM = shutil.which("chromium")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (CI installs it: apt-get install chromium)"
)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    assert CHROMIUM is not None
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done


@needs_browser
def test_browser_dom_holds_the_charts(page, tmp_path):
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout.decode("utf-8")
    doc = parse(dom)
    kinds = [c["kind"] for c in doc.charts]
    assert set(kinds) == set(KINDS) and len(kinds) == 10
    for chart in doc.charts:  # every chart was parsed as SVG with its own title inside
        assert chart["shapes"]["title"] >= 1  # type: ignore[index]
    assert_desk_shapes(doc)
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

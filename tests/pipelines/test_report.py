"""The QA report: self-contained HTML, deterministic bytes, opens in headless Chromium without errors."""

from __future__ import annotations

import base64
import html.parser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyproj
import pytest
import shapely

from hdmap.io import write as write_las
from hdmap.lanemap import Boundary, Lane, LaneMap, Marking
from hdmap.municipalities import load_municipalities
from hdmap.pipelines.report import ReportInput, road_statistics, write_report
from hdmap.pointcloud import PointCloud

E0, N0, N1 = 692000.0, 5343800.0, 5344100.0  # a road along E 692000 across the München / Oberschleißheim border
N_TURN = 5343900.0  # the second northbound lane starts here
Z = 480.0
SAMPLE_BOUNDS = (691985.0, 5343885.0, 692015.0, 5343915.0)

# -------------------------------------------------------------------------------------------------
# input
# -------------------------------------------------------------------------------------------------


def _line(x, y0, y1, step=10.0):
    """A north-south polyline at easting *x* from *y0* to *y1* (either way), vertices every *step* m."""
    n = max(int(round(abs(y1 - y0) / step)), 1) + 1
    y = np.linspace(y0, y1, n)
    return np.column_stack([np.full(n, x), y, np.full(n, Z)])


def _road(y0, y1, prefix="") -> LaneMap:
    """One southbound and one or two northbound lanes between *y0* and *y1*."""
    p = prefix
    bs = [
        Boundary(f"{p}b1", _line(E0 - 3.5, y0, y1), "curbstone", height_m=0.12),
        Boundary(f"{p}b2", _line(E0, y0, y1), "line_thin", pattern="solid_solid", width_m=0.12, color="white"),
        Boundary(f"{p}b3", _line(E0 + 3.5, y0, y1), "line_thin", pattern="dashed", stroke_m=3.0, gap_m=6.0,
                 width_m=0.12, color="white"),
        Boundary(f"{p}b4", _line(E0 + 6.75, y0, y1), "road_border"),
    ]
    cl = _line(E0 - 1.75, y1, y0)
    lanes = [Lane(f"{p}l1", f"{p}b2", f"{p}b1", cl, "backward", 3.5 + 0.05 * np.sin(cl[:, 1] / 7.0)),
             Lane(f"{p}l2", f"{p}b2", f"{p}b3", _line(E0 + 1.75, y0, y1), "forward",
                  np.full(len(_line(E0 + 1.75, y0, y1)), 3.5))]
    t0 = max(y0, N_TURN)
    if t0 < y1:
        c3 = _line(E0 + 5.125, t0, y1)
        lanes.append(Lane(f"{p}l3", f"{p}b3", f"{p}b4", c3, "forward", np.full(len(c3), 3.25)))
    markings = []
    if y0 <= 5343905.0 <= y1:
        markings.append(Marking(f"{p}m1", [[E0 + 0.1, 5343904.0, Z], [E0 + 3.4, 5343904.0, Z],
                                           [E0 + 3.4, 5343904.5, Z], [E0 + 0.1, 5343904.5, Z]], "stop_line"))
        markings.append(Marking(f"{p}m2", [[E0 + 1.6, 5343893.0, Z], [E0 + 1.9, 5343893.0, Z],
                                           [E0 + 1.75, 5343898.0, Z]], "arrow_straight"))
        bs.append(Boundary(f"{p}b5", [[E0 + 0.1, 5343904.25, Z], [E0 + 3.4, 5343904.25, Z]], "virtual"))
    return LaneMap(bs, lanes, markings, epsg=25832, metadata={"run": "test"}).validate()


@pytest.fixture(scope="module")
def munis():
    by_slug = {m.slug: m for m in load_municipalities()}
    return [by_slug["09162000_Muenchen"], by_slug["09184135_Oberschleissheim"]]


@pytest.fixture(scope="module")
def border_y(munis):
    hit = munis[0].geometry.boundary.intersection(shapely.LineString([(E0, N0), (E0, N1)]))
    return float(hit.y)  # about 5343957


@pytest.fixture(scope="module")
def sample_laz(tmp_path_factory):
    """A 30 m tile of road points: dark asphalt, bright paint on the centre line and the dashed line."""
    rng = np.random.default_rng(7)
    n = 150_000
    x0, y0, x1, y1 = SAMPLE_BOUNDS
    x = rng.uniform(x0 - 2, x1 + 2, n)  # a little outside the bounds, as a buffered tile has
    y = rng.uniform(y0 - 2, y1 + 2, n)
    paint = (np.abs(np.abs(x - E0) - 0.09) < 0.06) | ((np.abs(x - (E0 + 3.5)) < 0.06) & ((y - y0) % 9.0 < 3.0))
    intensity = np.where(paint, rng.normal(180, 20, n), rng.normal(30, 6, n)).clip(1, 65535).astype(np.uint16)
    cls = np.where(paint, 64, 11).astype(np.uint8)
    cloud = PointCloud(np.column_stack([x, y, np.full(n, Z)]), {"intensity": intensity, "classification": cls},
                       crs=pyproj.CRS.from_epsg(25832))
    path = tmp_path_factory.mktemp("tile") / "E691985_N5343885.laz"
    return write_las(path, cloud)


def _tiles(munis):
    out = []
    for x in (691900.0, 692000.0):
        for y in (5343800.0, 5343900.0, 5344000.0):
            c = shapely.Point(x + 50, y + 50)
            region = next((m.slug for m in munis if m.geometry.contains(c)), None)
            out.append({"key": f"E{x:.0f}_N{y:.0f}", "bounds": (x, y, x + 100, y + 100), "region": region,
                        "points": 1_000_000 + int(x - 691900) + int(y - 5343800)})
    return out


ACCURACY = {
    "points": {
        "road": {"precision": 0.91234, "recall": 0.8, "f1": 0.85249, "support": 1000, "predicted": 876},
        "curb": {"precision": None, "recall": 0.5, "f1": 0.0, "support": 10, "predicted": 0},
        "confusion": {"labels": [2, 11, 67], "rows_truth_cols_predicted": [[5, 1, 0], [0, 7, 2], [0, 1, 3]]},
        "count": 1234,
    },
    "map": {
        "boundaries": {"completeness_0.20": 0.97, "correctness_0.20": 0.9512, "rmse_m": 0.0312},
        "markings": {"stop_line": {"precision": 1.0, "recall": 0.5, "truth": 2, "result": 1}},
        "lanes": {"count_accuracy": 0.9, "stations": 300},
    },
}


@pytest.fixture(scope="module")
def report_input(munis, border_y, sample_laz):
    trajs = [("drive_0", _line(E0 + 1.75, N0 - 10, N1 + 10, step=0.5)[:, :2]),
             ("drive_1", _line(E0 - 1.75, N1 + 10, N0 - 10, step=0.5)[:, :2])]
    return ReportInput(
        title="hdmap QA — b13-2026",
        campaign={"name": "b13-2026", "crs": "EPSG:25832",
                  "drives": [{"name": "drive_0", "laz": "raw/drive_0/*.laz", "trajectory": "raw/drive_0.sbet"},
                             {"name": "drive_1", "laz": "raw/drive_1/*.laz", "trajectory": "raw/drive_1.sbet"}],
                  "tiles": {"size_m": 100, "buffer_m": 5}, "note": "survey plan: https://example.org/plan <b>"},
        version="0.test",
        municipalities=munis,
        tiles=_tiles(munis),
        trajectories=trajs,
        lanemap=_road(N0, N1),
        parts={munis[1].slug: _road(border_y, N1, "o"), munis[0].slug: _road(N0, border_y, "m")},
        samples=[{"key": "E691985_N5343885", "laz": sample_laz, "bounds": SAMPLE_BOUNDS}],
        accuracy=ACCURACY,
        summary={"points": 6_000_000, "drives": 2, "tiles": 6,
                 "seconds": {"read": 12.5, "classify": 30.25, "vectorize": 8.0, "stitch": 1.5}, "workers": 2},
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory, report_input):
    out = tmp_path_factory.mktemp("report")
    return write_report(out, report_input)


# -------------------------------------------------------------------------------------------------
# HTML checks
# -------------------------------------------------------------------------------------------------
EXTERNAL_REF = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Parser(html.parser.HTMLParser):
    """Collects <img> sources and checks that every element is closed in order."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.imgs, self.ids, self.text = [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if "id" in a:
            self.ids.append(a["id"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(path: Path) -> _Parser:
    p = _Parser()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    assert not p.errors, p.errors[:5]
    assert p.stack == [], f"unclosed elements: {p.stack}"
    return p


def assert_self_contained(path: Path) -> _Parser:
    text = path.read_text(encoding="utf-8")
    assert not EXTERNAL_REF.findall(text)
    assert "http://" not in text and "https://" not in text
    assert "url(" not in text and "@import" not in text
    p = parse(path)
    assert p.imgs, "the report has no images"
    for src in p.imgs:
        assert src.startswith("data:image/png;base64,"), src[:60]
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(b"\x89PNG\r\n\x1a\n")
    return p


def test_report_is_self_contained(report):
    p = assert_self_contained(report)
    pngs = sorted(f.name for f in report.parent.glob("*.png"))
    assert pngs == ["municipality_09162000_Muenchen.png", "municipality_09184135_Oberschleissheim.png",
                    "overview.png", "sample_E691985_N5343885.png"]
    # the embedded images are the PNG files
    embedded = {base64.b64decode(src.split(",", 1)[1]) for src in p.imgs}
    assert embedded == {(report.parent / name).read_bytes() for name in pngs}
    assert not list(report.parent.glob(".*.part"))


def test_report_content(report, report_input, munis):
    p = parse(report)
    text = "".join(p.text)
    assert {"summary", "overview", "municipalities", "samples", "accuracy", "campaign"} <= set(p.ids)
    for needle in ("hdmap QA — b13-2026", "b13-2026", "0.test", "München", "Oberschleißheim", "6,000,000",
                   "30.2", "stitch", "E691985_N5343885.laz", "drive_1", "raw/drive_1.sbet", "stop_line"):
        assert needle in text, needle
    # the whole road: 100 m with two lanes, 200 m with three
    assert re.search(r"road \(carriageway km\)\s*0\.30", text)
    assert re.search(r"lanes \(km of centerline\)\s*0\.80", text)
    # accuracy: floats with three decimals, None as a dash, nested dicts as tables
    assert "0.912" in text and "0.91234" not in text and "0.852" in text and "0.031" in text
    assert "map / markings" in text
    # a URL in the input shows as text, not as a link, and markup in the input is escaped
    assert "survey plan: https://example.org/plan <b>" in text
    assert "&lt;b&gt;" in report.read_text(encoding="utf-8")
    # attribution of the municipal boundaries in the footer
    footer = report.read_text(encoding="utf-8").split("<footer>", 1)[1]
    assert munis[0].license and munis[0].license in footer


def test_report_is_deterministic(tmp_path, report, report_input):
    again = write_report(tmp_path / "again", report_input)
    names = sorted(f.name for f in report.parent.iterdir())
    assert names == sorted(f.name for f in again.parent.iterdir())
    for name in names:
        assert (report.parent / name).read_bytes() == (again.parent / name).read_bytes(), name


def test_road_statistics():
    s = road_statistics(_road(N0, N1))
    assert s["lanes"] == 3
    assert s["lane_km"] == pytest.approx(0.8)
    assert s["road_km"] == pytest.approx(0.3)
    assert s["road_km_by_lanes"] == pytest.approx({2: 0.1, 3: 0.2})
    assert np.average(s["widths"], weights=s["width_weights_km"]) == pytest.approx((0.3 * 3.5 * 2 + 0.2 * 3.25) / 0.8,
                                                                                   abs=0.01)
    # a median wider than half a lane separates carriageways; a crossing road is not side by side
    b = [Boundary("b", [[0, 0, 0], [1, 0, 0]], "virtual")]
    lanes = [Lane("a", "b", "b", [[0, 0, 0], [100, 0, 0]], "forward", [3.5, 3.5]),
             Lane("c", "b", "b", [[100, 12, 0], [0, 12, 0]], "forward", [3.5, 3.5]),
             Lane("x", "b", "b", [[50, -20, 0], [50, 30, 0]], "forward", [3.5, 3.5])]
    s = road_statistics(LaneMap(b, lanes))
    assert s["road_km_by_lanes"] == pytest.approx({1: 0.25})
    with pytest.raises(ValueError, match="step_m"):
        road_statistics(LaneMap(), step_m=0)


def test_report_empty_input(tmp_path, munis):
    """No lanes, no samples, one municipality, no accuracy; and nothing at all."""
    lm = LaneMap([Boundary("b1", _line(E0, N0, N0 + 50), "line_thin", pattern="solid")])
    data = ReportInput(title="empty", campaign={"name": "nothing"}, version="0.test", municipalities=munis[:1],
                       tiles=[], trajectories=[], lanemap=lm, parts={munis[0].slug: LaneMap()}, samples=[],
                       accuracy=None, summary={})
    path = write_report(tmp_path / "a", data)
    p = assert_self_contained(path)
    text = "".join(p.text)
    assert "Not measured" in text and "No sample tiles" in text
    assert sorted(f.name for f in path.parent.glob("*.png")) == ["municipality_09162000_Muenchen.png", "overview.png"]
    assert_loads_cleanly(path, tmp_path)

    bare = ReportInput(title="bare", campaign={}, version="0.test", municipalities=[], tiles=[], trajectories=[],
                       lanemap=LaneMap(), parts={}, samples=[], accuracy={}, summary={})
    assert_self_contained(write_report(tmp_path / "b", bare))


def test_report_unreadable_sample(tmp_path, report_input):
    bad = tmp_path / "missing.laz"
    data = ReportInput(**{**report_input.__dict__, "samples": [{"key": "E0_N0", "laz": bad, "bounds": (0, 0, 1, 1)}],
                          "parts": {}})
    path = write_report(tmp_path / "out", data)
    text = "".join(parse(path).text)
    assert "Could not show this tile" in text and "missing.laz" in text
    assert not (path.parent / "sample_E0_N0.png").exists()


def test_import_and_write_without_display(tmp_path):
    """The module needs no display and never selects a GUI backend (it does not use pyplot)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    code = ("import sys\nfrom hdmap.lanemap import LaneMap\n"
            "from hdmap.pipelines.report import ReportInput, write_report\n"
            "write_report(sys.argv[1], ReportInput('t', {}, '0', [], [], [], LaneMap()))\n"
            "assert 'matplotlib.pyplot' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, check=True, timeout=120)
    assert (tmp_path / "report.html").is_file()


# -------------------------------------------------------------------------------------------------
# headless Chromium
# -------------------------------------------------------------------------------------------------
# Chromium logs every console message of the page (log, warn, error, uncaught exceptions, CSP
# violations) to stderr with --enable-logging=stderr, all at INFO level, e.g.
#   [1:1:1122/093300.706010:INFO:CONSOLE:5] "x", source: file:///tmp/page.html (5)
# (older builds: "INFO:CONSOLE(5)"). The report writes nothing to the console, so any such line is
# a failure. A broken image leaves no line at all; the report's own script counts decoded images
# into <body data-images-ok="loaded/total">, which --dump-dom shows. With --v=1 every file the
# page fetches is logged as "FileURLLoader::Start: <url>": only the report itself may appear.
CONSOLE_LINE = re.compile(r":CONSOLE[:(]")
FILE_LOAD = re.compile(r"FileURLLoader::Start: (\S+)")


def run_chromium(page: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("chromium is not installed (the Debian package; `make test` installs it)")
    profile = tmp_path / f"chromium-profile-{page.parent.name}"
    cmd = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=1",
           "--virtual-time-budget=5000", f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, timeout=60, encoding="utf-8", errors="replace")


def page_problems(page: Path, proc: subprocess.CompletedProcess) -> list[str]:
    """What went wrong when Chromium opened *page*; empty if it loaded cleanly."""
    problems = []
    if proc.returncode != 0:
        problems.append(f"chromium exited with {proc.returncode}: {proc.stderr[-2000:]}")
    n_img = len(re.findall(r"<img\b", page.read_text(encoding="utf-8")))
    m = re.search(r'<body\b[^>]*\bdata-images-ok="(\d+)/(\d+)"', proc.stdout)
    if m is None:
        problems.append("no data-images-ok on <body>: the load handler did not run")
    elif (int(m[1]), int(m[2])) != (n_img, n_img):
        problems.append(f"images loaded {m[1]}/{m[2]}, the page has {n_img}")
    if re.search(r"<html\b[^>]*\bdata-csp-violations=", proc.stdout):
        problems.append("Content-Security-Policy violations")
    problems += [f"console: {line}" for line in proc.stderr.splitlines() if CONSOLE_LINE.search(line)]
    problems += [f"fetched {url}" for url in FILE_LOAD.findall(proc.stderr) if url != page.resolve().as_uri()]
    return problems


def assert_loads_cleanly(page: Path, tmp_path: Path):
    proc = run_chromium(page, tmp_path)
    assert page_problems(page, proc) == []
    assert FILE_LOAD.search(proc.stderr), "no FileURLLoader line: did --v=1 logging change?"


def test_report_opens_in_chromium(report, tmp_path):
    assert_loads_cleanly(report, tmp_path)


def test_chromium_check_detects_problems(tmp_path):
    """Negative control: a broken image, a missing file, console.error, an exception and a blocked URL."""
    page = tmp_path / "bad" / "bad.html"
    page.parent.mkdir()
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data: file:; "
        "script-src 'unsafe-inline'\"></head><body>"
        "<img src='data:image/png;base64,AAAA' alt='broken'><img src='missing.png' alt='missing'>"
        "<script>window.addEventListener('load', function () {"
        "var imgs = document.images, ok = 0; for (var i = 0; i < imgs.length; i++) {"
        "if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++; }"
        "document.body.setAttribute('data-images-ok', ok + '/' + imgs.length); });"
        "console.error('report-test-error'); fetch('http://example.invalid/x');</script></body></html>",
        encoding="utf-8")
    problems = page_problems(page, run_chromium(page, tmp_path))
    assert any(p.startswith("images loaded 0/2") for p in problems), problems
    assert any("report-test-error" in p for p in problems), problems
    assert any("example.invalid" in p and "Content Security Policy" in p for p in problems), problems
    assert any(p.startswith("fetched ") and p.endswith("/missing.png") for p in problems), problems

"""The QA report of a batch run: one self-contained HTML file with plots.

:func:`write_report` writes ``report.html`` and every plot as a PNG beside it
(``overview.png``, ``municipality_<slug>.png``, ``sample_<tile key>.png``). The
HTML embeds the same PNG bytes as ``data:`` URIs, has its CSS inline and loads
nothing from anywhere: a Content-Security-Policy meta tag allows only ``data:``
images and the page's own (hashed) style and script, so even a viewer that
would follow a link cannot be made to fetch one. The file opens offline, from a
mail attachment or a USB stick. URLs that appear in the input text (a licence,
a campaign note) are shown as text with the colon written as ``&#58;``, so the
file holds no literal URL and no link. The one small script only counts the
images that loaded and writes ``data-images-ok="<loaded>/<total>"`` on
``<body>`` (the headless-browser test reads it); the report reads the same
without it.

Output is deterministic: the same input gives the same bytes (fixed DPI, the
matplotlib default style, no PNG ``Software`` chunk, no time stamps, no paths
of the output directory).

Sections
--------
1. Run summary: points, drives, tiles, road and lane length, run time per stage.
2. Overview map: tiles coloured by municipality, trajectories, extracted
   boundaries coloured by kind, municipal borders, in km of the project CRS.
3. Per municipality (each key of ``parts``): road and lane length, boundary
   length by kind and pattern, road length by number of lanes side by side, lane
   widths (see :func:`road_statistics` for the definitions).
4. Sample tiles: mean intensity at about 5 cm with the map drawn on top.
5. Accuracy against simulator truth, when given.
6. The campaign description, and in the footer the attribution of the
   municipal boundaries.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdmap._atomic import write_bytes_atomic, write_text_atomic
from hdmap.errors import HdmapError
from hdmap.lanemap import BOUNDARY_KINDS, PATTERNS, LaneMap

__all__ = ["ReportInput", "write_report", "road_statistics", "STATION_STEP_M"]

logger = logging.getLogger(__name__)

#: Spacing of the stations along lane centerlines used for lane counts and road length (m).
STATION_STEP_M = 5.0
#: How far a cross-section reaches to each side of its station (m).
_CROSS_REACH_M = 25.0
#: Lanes count as side by side if their centerlines are within this angle of each other.
_PARALLEL_COS = math.cos(math.radians(30.0))
#: Width used for a lane whose width profile says less than 0.5 m (m).
_NOMINAL_WIDTH_M = 3.0

_DPI = 100
_SAMPLE_DPI = 140
_SAMPLE_CELL_M = 0.05
_SAMPLE_MAX_CELLS = 1000  # the sample image is at most 1200 px wide; the map axes about 1000 px
_CHUNK_POINTS = 2_000_000
_GROUND_CLASSES = (2, 11, 64, 67)  # ground, road surface, road marking, curb

# boundary kinds on a white background (overview, bar charts)
_KIND_COLORS = {"line_thin": "#1565c0", "line_thick": "#6a1b9a", "curbstone": "#c62828", "road_border": "#8d6e63",
                "virtual": "#9e9e9e"}
# boundary kinds on the dark intensity image: the palette of hdmap.sim.preview
_KIND_COLORS_DARK = {"line_thin": "#00e5ff", "line_thick": "#ffea00", "curbstone": "#ff3d00",
                     "road_border": "#ff9100", "virtual": "#9e9e9e"}
_LANE_COLOR_DARK = "#ff4081"
_MARKING_COLOR_DARK = "#76ff03"
_REGION_COLORS = ("#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5",
                  "#bc80bd", "#ccebc5", "#ffed6f", "#d9d9d9")  # ColorBrewer Set3
_NO_REGION_COLOR = "#eeeeee"


@dataclass
class ReportInput:
    """Everything the QA report shows.

    Parameters
    ----------
    title : str
        Page title, e.g. ``"hdmap QA — b13-2026"``.
    campaign : dict
        JSON-able campaign description (name, crs, drives, tiles, ...), shown as a table;
        ``campaign["name"]`` is the campaign name in the header.
    version : str
        hdmap version of the run.
    municipalities : list of hdmap.municipalities.Municipality
        Polygons in the project CRS; borders in the overview, names and licences.
    tiles : list of dict
        ``{"key": str, "bounds": (x0, y0, x1, y1), "region": slug or None, "points": int}``.
    trajectories : list of (str, ndarray)
        Drive name and ``(n, 2)`` xy in the project CRS.
    lanemap : LaneMap
        The stitched map of the whole field.
    parts : dict of str to LaneMap
        The map cut by municipality, keyed by :attr:`Municipality.slug`.
    samples : list of dict
        ``{"key": tile key, "laz": path of a classified tile, "bounds": (x0, y0, x1, y1)}``.
    accuracy : dict or None
        Metrics against simulator truth (nested JSON-able dict), or None.
    summary : dict
        Run figures (JSON-able): ``points``, ``tiles``, ``drives``, seconds per stage
        (a dict of numbers under a key naming seconds, time or stages), anything else.
    """

    title: str
    campaign: dict
    version: str
    municipalities: list
    tiles: list
    trajectories: list
    lanemap: LaneMap
    parts: dict = field(default_factory=dict)
    samples: list = field(default_factory=list)
    accuracy: dict | None = None
    summary: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------
# road statistics
# ----------------------------------------------------------------------------
def _lane_pieces(lanes, step: float):
    """Stations at the middle of *step*-long pieces of every centerline.

    Returns lane index, x, y, unit tangent (tx, ty), width and piece length per
    station, and the centerline segments (a, b, w0, w1, lane index).
    """
    st = {k: [] for k in ("lane", "x", "y", "tx", "ty", "w", "len")}
    sg = {k: [] for k in ("ax", "ay", "bx", "by", "w0", "w1", "lane")}
    for i, ln in enumerate(lanes):
        xy = np.asarray(ln.centerline, dtype=np.float64)[:, :2]
        w = np.asarray(ln.width, dtype=np.float64)
        if len(xy) < 2 or w.shape != (len(xy),):
            continue
        d = np.hypot(*np.diff(xy, axis=0).T)
        keep = np.concatenate([[True], d > 1e-9])
        xy, w = xy[keep], w[keep]
        if len(xy) < 2:
            continue
        d = np.hypot(*np.diff(xy, axis=0).T)
        cum = np.concatenate([[0.0], np.cumsum(d)])
        total = cum[-1]
        w = np.where(np.isfinite(w) & (w >= 0.5), w, _NOMINAL_WIDTH_M)
        k = max(int(math.ceil(total / step - 1e-9)), 1)
        a = np.arange(k) * step
        b = np.minimum(a + step, total)
        mid = (a + b) / 2
        seg = np.clip(np.searchsorted(cum, mid, side="right") - 1, 0, len(d) - 1)
        f = (mid - cum[seg]) / d[seg]
        p0, p1 = xy[seg], xy[seg + 1]
        st["lane"].append(np.full(k, i))
        st["x"].append(p0[:, 0] + f * (p1[:, 0] - p0[:, 0]))
        st["y"].append(p0[:, 1] + f * (p1[:, 1] - p0[:, 1]))
        st["tx"].append((p1[:, 0] - p0[:, 0]) / d[seg])
        st["ty"].append((p1[:, 1] - p0[:, 1]) / d[seg])
        st["w"].append(np.interp(mid, cum, w))
        st["len"].append(b - a)
        sg["ax"].append(xy[:-1, 0])
        sg["ay"].append(xy[:-1, 1])
        sg["bx"].append(xy[1:, 0])
        sg["by"].append(xy[1:, 1])
        sg["w0"].append(w[:-1])
        sg["w1"].append(w[1:])
        sg["lane"].append(np.full(len(d), i))

    def cat(parts, dtype=np.float64):
        return np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype)

    stations = {k: cat(v, np.int64 if k == "lane" else np.float64) for k, v in st.items()}
    segments = {k: cat(v, np.int64 if k == "lane" else np.float64) for k, v in sg.items()}
    return stations, segments


def _side_by_side(st: dict, sg: dict, batch: int = 20000) -> np.ndarray:
    """Number of lanes side by side at each station (see :func:`road_statistics`)."""
    import shapely

    n = len(st["x"])
    counts = np.ones(n, dtype=np.int64)
    if n == 0:
        return counts
    tree = shapely.STRtree(shapely.box(np.minimum(sg["ax"], sg["bx"]), np.minimum(sg["ay"], sg["by"]),
                                       np.maximum(sg["ax"], sg["bx"]), np.maximum(sg["ay"], sg["by"])))
    R = _CROSS_REACH_M
    for lo in range(0, n, batch):
        idx = np.arange(lo, min(lo + batch, n))
        px, py = st["x"][idx], st["y"][idx]
        nx, ny = -st["ty"][idx], st["tx"][idx]  # left normal
        boxes = shapely.box(np.minimum(px - R * nx, px + R * nx), np.minimum(py - R * ny, py + R * ny),
                            np.maximum(px - R * nx, px + R * nx), np.maximum(py - R * ny, py + R * ny))
        q, s = tree.query(boxes)
        # cross-section p + u*n meets segment a + v*(b - a)
        dx, dy = sg["bx"][s] - sg["ax"][s], sg["by"][s] - sg["ay"][s]
        dl = np.hypot(dx, dy)
        qx, qy = nx[q], ny[q]
        den = qx * dy - qy * dx
        ex, ey = sg["ax"][s] - px[q], sg["ay"][s] - py[q]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = (ex * dy - ey * dx) / den
            v = (ex * qy - ey * qx) / den
            par = np.abs(st["tx"][idx][q] * dx + st["ty"][idx][q] * dy) / dl
        ok = (np.abs(den) > 1e-12) & (v >= 0) & (v <= 1) & (np.abs(u) <= R) & (par >= _PARALLEL_COS)
        q, s, u, v = q[ok], s[ok], u[ok], v[ok]
        lane = sg["lane"][s]
        w = sg["w0"][s] + v * (sg["w1"][s] - sg["w0"][s])
        own = st["lane"][idx]
        # the station's own lane at offset 0 always; drop its other crossings
        mine = lane == own[q]
        q = np.concatenate([np.arange(len(idx)), q[~mine]])
        u = np.concatenate([np.zeros(len(idx)), u[~mine]])
        w = np.concatenate([st["w"][idx], w[~mine]])
        lane = np.concatenate([own, lane[~mine]])
        is_own = np.zeros(len(q), bool)
        is_own[: len(idx)] = True
        # one crossing per (station, lane): the one nearest the station
        order = np.lexsort((np.abs(u), lane, q))
        q, u, w, lane, is_own = q[order], u[order], w[order], lane[order], is_own[order]
        first = np.concatenate([[True], (q[1:] != q[:-1]) | (lane[1:] != lane[:-1])])
        q, u, w, is_own = q[first], u[first], w[first], is_own[first]
        # chains of neighbours across the section: edges at most half a mean lane width apart
        order = np.lexsort((u, q))
        q, u, w, is_own = q[order], u[order], w[order], is_own[order]
        linked = np.concatenate([[False], (q[1:] == q[:-1]) & (np.diff(u) <= 0.75 * (w[1:] + w[:-1]))])
        run = np.cumsum(~linked) - 1
        size = np.bincount(run)
        counts[idx[q[is_own]]] = size[run[is_own]]
    return counts


def road_statistics(lanemap: LaneMap, step_m: float = STATION_STEP_M) -> dict:
    """Road length, lanes side by side and lane widths of a map.

    Every lane centerline is cut into pieces of *step_m* (the last one shorter)
    with a station at the middle of each. At a station, the cross-section is the
    line through it at right angles to the lane (reaching 25 m to each side).
    Lanes whose centerlines cross it within 30 degrees of parallel (either
    direction) are ordered across the road; going out from the station's own
    lane, a neighbour counts as side by side while the gap between the two lanes'
    edges (centerline distance minus the two half widths) is at most half their
    mean width. The count is the number of lanes so reached, the own lane
    included. A median wider than half a lane therefore separates two
    carriageways, and a lane whose width profile gives less than 0.5 m is taken
    as 3.0 m wide.

    Parameters
    ----------
    lanemap : LaneMap
    step_m : float
        Station spacing along the centerlines (m).

    Returns
    -------
    dict
        ``lane_km``: sum of the centerline lengths; ``road_km``: carriageway
        length, each piece's length divided by the number of lanes side by side
        there (so a two-lane road 1 km long gives 1 km, not 2); ``lanes``: number
        of lanes; ``road_km_by_lanes``: ``{lanes side by side: road km}`` (sums to
        ``road_km``); ``widths`` and ``width_weights_km``: the lane width at each
        station and the length of its piece in km, for a length-weighted width
        histogram.

    Examples
    --------
    >>> from hdmap.lanemap import Boundary, Lane, LaneMap
    >>> bs = [Boundary(f"b{i}", [[0, 3.5 * i, 0], [100, 3.5 * i, 0]], "line_thin", pattern="solid")
    ...       for i in range(3)]
    >>> lanes = [Lane(f"l{i}", f"b{i + 1}", f"b{i}", [[0, 3.5 * i + 1.75, 0], [100, 3.5 * i + 1.75, 0]],
    ...               "forward", [3.5, 3.5]) for i in range(2)]
    >>> s = road_statistics(LaneMap(bs, lanes))
    >>> round(s["lane_km"], 3), round(s["road_km"], 3), s["road_km_by_lanes"]
    (0.2, 0.1, {2: 0.1})
    """
    if not (step_m > 0):
        raise ValueError(f"step_m must be a positive length in metres, got {step_m!r}")
    st, sg = _lane_pieces(lanemap.lanes, float(step_m))
    counts = _side_by_side(st, sg)
    road = st["len"] / counts / 1000.0
    by_lanes = {int(c): float(road[counts == c].sum()) for c in np.unique(counts)}
    return {"lane_km": float(st["len"].sum() / 1000.0), "road_km": float(road.sum()), "lanes": len(lanemap.lanes),
            "road_km_by_lanes": by_lanes, "widths": st["w"], "width_weights_km": st["len"] / 1000.0}


def _boundary_km(lanemap: LaneMap) -> dict:
    """``{(kind, pattern or None): km}`` in the order of BOUNDARY_KINDS and PATTERNS."""
    out: dict = {}
    for b in lanemap.boundaries:
        key = (b.kind, b.pattern)
        out[key] = out.get(key, 0.0) + b.length / 1000.0

    def rank(key):
        kind, pattern = key
        k = BOUNDARY_KINDS.index(kind) if kind in BOUNDARY_KINDS else len(BOUNDARY_KINDS)
        p = -1 if pattern is None else PATTERNS.index(pattern) if pattern in PATTERNS else len(PATTERNS)
        return k, p, str(kind), str(pattern)

    return {k: out[k] for k in sorted(out, key=rank)}


def _marking_counts(lanemap: LaneMap) -> dict:
    out: dict = {}
    for mk in lanemap.markings:
        t = "arrow" if str(mk.type).startswith("arrow_") else str(mk.type)
        out[t] = out.get(t, 0) + 1
    return dict(sorted(out.items()))


# ----------------------------------------------------------------------------
# text helpers
# ----------------------------------------------------------------------------
def _esc(value) -> str:
    """HTML-escaped text; a URL shows as itself but the file holds no literal ``://``."""
    return html.escape(str(value), quote=True).replace("://", "&#58;//")


def _fmt(value, digits: int = 3) -> str:
    """Plain text of a JSON value: floats to *digits* decimals, None as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}f}" if math.isfinite(value) else str(float(value))
    return str(value)


def _is_scalar(value) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, np.integer, np.floating, Path))


def _km(value: float) -> str:
    return f"{value:,.2f}"


def _count(value) -> str:
    return f"{int(value):,}"


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _table(header, rows, *, classes: str = "") -> str:
    """A table of already escaped cells; numeric-looking cells are right-aligned."""
    out = [f'<table class="{classes}">' if classes else "<table>"]
    if header:
        out.append("<thead><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr></thead>")
    out.append("<tbody>")
    for row in rows:
        cells = []
        for j, c in enumerate(row):
            tag = "th" if j == 0 else "td"
            num = j > 0 and re.fullmatch(r"[-+]?[0-9][0-9,]*(\.[0-9]+)?( ?%| s)?|–", c or "") is not None
            cells.append(f'<{tag} class="num">{c}</{tag}>' if num else f"<{tag}>{c}</{tag}>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _grid(value) -> bool:
    """A list of equal-length lists of scalars (a matrix)."""
    return (isinstance(value, list) and len(value) > 0 and all(isinstance(r, list) for r in value)
            and len({len(r) for r in value}) == 1 and all(_is_scalar(c) for r in value for c in r))


_MAX_LIST = 100


def _value_html(value, digits: int = 3) -> str:
    """A JSON value as HTML: dicts and lists of records as nested tables."""
    if _is_scalar(value):
        return _esc(_fmt(value, digits))
    if isinstance(value, dict):
        if not value:
            return "–"
        return _table(None, [[_esc(k), _value_html(v, digits)] for k, v in value.items()], classes="kv")
    if isinstance(value, (list, tuple)):
        value = list(value)
        more = len(value) - _MAX_LIST
        shown = value[:_MAX_LIST]
        note = f"<p class=\"note\">… and {more} more</p>" if more > 0 else ""
        if not shown:
            return "–"
        if all(_is_scalar(v) for v in shown):
            return _esc(", ".join(_fmt(v, digits) for v in shown)) + (f" … and {more} more" if more > 0 else "")
        if _grid(shown):
            return _table(None, [[str(i)] + [_esc(_fmt(c, digits)) for c in r] for i, r in enumerate(shown)],
                          classes="grid") + note
        if all(isinstance(v, dict) for v in shown):
            cols = list(dict.fromkeys(k for v in shown for k in v))
            rows = [[str(i)] + [_value_html(v[c], digits) if c in v else "–" for c in cols]
                    for i, v in enumerate(shown)]
            return _table(["#"] + [_esc(c) for c in cols], rows, classes="records") + note
        return _table(None, [[str(i), _value_html(v, digits)] for i, v in enumerate(shown)], classes="kv") + note
    return _esc(value)


def _flat_rows(value: dict, prefix: str = "") -> list:
    rows = []
    for k, v in value.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            rows.extend(_flat_rows(v, name + "."))
        else:
            rows.append([_esc(name), _value_html(v)])
    return rows


def _metrics_html(value: dict, level: int = 3, path: str = "") -> str:
    """Metrics as tables: a dict of flat dicts becomes one table (rows = names, columns = the
    union of their keys); deeper dicts become sub-headings; the rest a name/value table.
    Floats show 3 decimals."""
    if level > 5:
        return _table(["metric", "value"], _flat_rows(value)) if value else ""
    records = {k: v for k, v in value.items()
               if isinstance(v, dict) and v and all(_is_scalar(x) for x in v.values())}
    nested = {k: v for k, v in value.items() if isinstance(v, dict) and v and k not in records}
    rest = {k: v for k, v in value.items() if k not in records and k not in nested}
    out = []
    if rest:
        out.append(_table(["metric", "value"], [[_esc(k), _value_html(v)] for k, v in rest.items()]))
    if records:
        cols = list(dict.fromkeys(c for v in records.values() for c in v))
        rows = [[_esc(k)] + [_esc(_fmt(v.get(c))) for c in cols] for k, v in records.items()]
        out.append(_table([""] + [_esc(c) for c in cols], rows))
    for k, v in nested.items():
        name = f"{path}{k}"
        out.append(f"<h{level}>{_esc(name)}</h{level}>")
        out.append(_metrics_html(v, level + 1, name + " / "))
    return "".join(out)


# ----------------------------------------------------------------------------
# figures
# ----------------------------------------------------------------------------
def _style():
    import matplotlib.style

    return matplotlib.style.context("default")  # the same pictures whatever the user's matplotlibrc


def _png(fig, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def _png_size(data: bytes) -> tuple[int, int]:
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _km_formatter(span_m: float):
    """Tick labels in km with as many decimals as a view *span_m* wide needs."""
    from matplotlib.ticker import FuncFormatter

    span = span_m / 1000.0
    decimals = 0 if span >= 20 else 1 if span >= 2 else 2 if span >= 0.2 else 3
    return FuncFormatter(lambda v, _pos: f"{v / 1000.0:.{decimals}f}")


def _north_arrow(ax, color: str = "black"):
    """An arrow to grid north (UTM grid north is about 2 degrees off true north in Munich)."""
    ax.annotate("N (grid)", xy=(0.96, 0.97), xytext=(0.96, 0.86), xycoords="axes fraction",
                textcoords="axes fraction", ha="center", va="top", fontsize=8, fontweight="bold", color=color,
                arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.2})


def _polygon_rings(geom):
    import shapely

    rings = []
    for part in shapely.get_parts(geom):
        if part.geom_type == "Polygon":
            rings.append(np.asarray(part.exterior.coords)[:, :2])
            rings.extend(np.asarray(r.coords)[:, :2] for r in part.interiors)
        elif part.geom_type in ("MultiPolygon", "GeometryCollection"):
            rings.extend(_polygon_rings(part))
    return rings


def _region_colors(data: ReportInput) -> dict:
    regions = sorted({t.get("region") for t in data.tiles if t.get("region")} | set(data.parts))
    return {r: _REGION_COLORS[i % len(_REGION_COLORS)] for i, r in enumerate(regions)}


def _names(data: ReportInput) -> dict:
    return {m.slug: m.name for m in data.municipalities}


def _decimate(xy: np.ndarray, limit: int = 20000) -> np.ndarray:
    step = max(1, int(math.ceil(len(xy) / limit)))
    return xy if step == 1 else np.vstack([xy[::step], xy[-1:]])


def _extent(data: ReportInput):
    xs, ys = [], []
    for t in data.tiles:
        x0, y0, x1, y1 = (float(v) for v in t["bounds"])
        xs += [x0, x1]
        ys += [y0, y1]
    for _, xy in data.trajectories:
        if len(xy):
            xs += [float(xy[:, 0].min()), float(xy[:, 0].max())]
            ys += [float(xy[:, 1].min()), float(xy[:, 1].max())]
    for b in data.lanemap.boundaries:
        xs += [float(b.xyz[:, 0].min()), float(b.xyz[:, 0].max())]
        ys += [float(b.xyz[:, 1].min()), float(b.xyz[:, 1].max())]
    for ln in data.lanemap.lanes:
        xs += [float(ln.centerline[:, 0].min()), float(ln.centerline[:, 0].max())]
        ys += [float(ln.centerline[:, 1].min()), float(ln.centerline[:, 1].max())]
    if not xs:
        for m in data.municipalities:
            x0, y0, x1, y1 = m.geometry.bounds
            xs += [x0, x1]
            ys += [y0, y1]
    if not xs:
        return None
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    pad = max(0.05 * max(x1 - x0, y1 - y0), 50.0)
    return x0 - pad, x1 + pad, y0 - pad, y1 + pad


def _overview_png(data: ReportInput, trajectories: list) -> bytes:
    from matplotlib.collections import LineCollection, PatchCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    epsg = data.lanemap.epsg
    ext = _extent(data)
    names = _names(data)
    colors = _region_colors(data)
    if ext is None:
        fig = Figure(figsize=(6, 2), dpi=_DPI)
        fig.text(0.5, 0.5, "nothing to show: no tiles, trajectories, map or municipalities", ha="center")
        return _png(fig, _DPI)
    x0, x1, y0, y1 = ext
    h = min(max(8.0 * (y1 - y0) / (x1 - x0), 3.5), 10.0)
    fig = Figure(figsize=(11.0, h + 1.0), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    handles = []
    # tiles by region
    if data.tiles:
        rects, faces, counts = [], [], {}
        for t in data.tiles:
            tx0, ty0, tx1, ty1 = (float(v) for v in t["bounds"])
            region = t.get("region")
            rects.append(Rectangle((tx0, ty0), tx1 - tx0, ty1 - ty0))
            faces.append(colors.get(region, _NO_REGION_COLOR) if region else _NO_REGION_COLOR)
            counts[region] = counts.get(region, 0) + 1
        ax.add_collection(PatchCollection(rects, facecolors=faces, edgecolors="#616161", linewidths=0.4,
                                          zorder=1))
        for region in sorted(counts, key=lambda r: (r is None, r or "")):
            label = names.get(region, region) if region else "outside the municipalities"
            handles.append(Patch(facecolor=colors.get(region, _NO_REGION_COLOR) if region else _NO_REGION_COLOR,
                                 edgecolor="#616161", label=f"tiles: {label} ({counts[region]})"))
    # municipal borders
    drawn = False
    for m in data.municipalities:
        for ring in _polygon_rings(m.geometry):
            ax.plot(ring[:, 0], ring[:, 1], color="#424242", lw=1.0, ls=(0, (6, 3)), zorder=2)
            drawn = True
        p = m.geometry.representative_point()
        if x0 <= p.x <= x1 and y0 <= p.y <= y1:
            ax.text(p.x, p.y, m.name, fontsize=8, color="#424242", ha="center", va="center", zorder=6,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.6})
    if drawn:
        handles.append(Line2D([], [], color="#424242", lw=1.0, ls=(0, (6, 3)), label="municipal border"))
    # trajectories
    if trajectories:
        ax.add_collection(LineCollection([_decimate(xy) for _, xy in trajectories if len(xy) >= 2],
                                         colors="#212121", linewidths=0.8, alpha=0.6, zorder=3))
        handles.append(Line2D([], [], color="#212121", lw=0.8, alpha=0.6,
                              label=f"trajectories ({len(trajectories)} drives)"))
    # boundaries by kind
    for kind in BOUNDARY_KINDS:
        segs = [b.xyz[:, :2] for b in data.lanemap.boundaries if b.kind == kind]
        if not segs:
            continue
        ls = (0, (3, 2)) if kind == "virtual" else "solid"
        ax.add_collection(LineCollection(segs, colors=_KIND_COLORS[kind], linewidths=0.8, linestyles=ls, zorder=4))
        handles.append(Line2D([], [], color=_KIND_COLORS[kind], lw=1.5, ls=ls, label=f"boundary: {kind}"))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal", adjustable="box")
    ax.xaxis.set_major_formatter(_km_formatter(max(x1 - x0, y1 - y0)))
    ax.yaxis.set_major_formatter(_km_formatter(max(x1 - x0, y1 - y0)))
    ax.set_xlabel(f"easting (km, EPSG:{epsg})", fontsize=9)
    ax.set_ylabel(f"northing (km, EPSG:{epsg})", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, lw=0.3, color="#bdbdbd", zorder=0)
    _north_arrow(ax)
    name = data.campaign.get("name", "") if isinstance(data.campaign, dict) else ""
    ax.set_title(f"{name + ': ' if name else ''}tiles by municipality, trajectories and extracted boundaries",
                 fontsize=10)
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return _png(fig, _DPI)


def _municipality_png(title: str, stats: dict, bkm: dict, lanes_max: int, width_bins: np.ndarray) -> bytes:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(12.0, 3.6), dpi=_DPI, layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.3, 1, 1]})
    # boundary length by kind and pattern
    if bkm:
        labels = [k if p is None else f"{k} {p}" for k, p in bkm]
        y = np.arange(len(labels))
        ax1.barh(y, list(bkm.values()), color=[_KIND_COLORS.get(k, "#757575") for k, _ in bkm], height=0.7)
        ax1.set_yticks(y, labels, fontsize=8)
        ax1.invert_yaxis()
    else:
        ax1.set_yticks([])
        ax1.text(0.5, 0.5, "no boundaries", transform=ax1.transAxes, ha="center", va="center", color="#757575")
    ax1.set_xlabel("km", fontsize=8)
    ax1.set_title("boundary length by kind and pattern", fontsize=9)
    # road length by number of lanes side by side
    x = np.arange(1, lanes_max + 1)
    ax2.bar(x, [stats["road_km_by_lanes"].get(int(c), 0.0) for c in x], color="#546e7a", width=0.7)
    ax2.set_xticks(x)
    ax2.set_xlabel("lanes side by side", fontsize=8)
    ax2.set_ylabel("road km", fontsize=8)
    ax2.set_title(f"road length by lane count ({STATION_STEP_M:g} m stations)", fontsize=9)
    if not stats["lanes"]:
        ax2.text(0.5, 0.5, "no lanes", transform=ax2.transAxes, ha="center", va="center", color="#757575")
    # lane width, length-weighted
    if len(stats["widths"]):
        ax3.hist(np.clip(stats["widths"], width_bins[0], width_bins[-1]), bins=width_bins,
                 weights=stats["width_weights_km"], color="#26a69a")
    else:
        ax3.text(0.5, 0.5, "no lanes", transform=ax3.transAxes, ha="center", va="center", color="#757575")
    ax3.set_xlim(width_bins[0], width_bins[-1])
    ax3.set_xlabel("lane width (m)", fontsize=8)
    ax3.set_ylabel("lane km", fontsize=8)
    ax3.set_title(f"lane width ({width_bins[1] - width_bins[0]:.1f} m bins)", fontsize=9)
    for ax in (ax1, ax2, ax3):
        ax.tick_params(labelsize=8)
        ax.grid(True, axis="x" if ax is ax1 else "y", lw=0.3, color="#bdbdbd")
        ax.set_axisbelow(True)
    ax2.yaxis.set_major_locator(MaxNLocator(5))
    fig.suptitle(title, fontsize=10)
    return _png(fig, _DPI)


def _rasterise(path: Path, bounds, epsg: int):
    """Mean intensity per cell of the points inside *bounds*; see :func:`_sample_png`."""
    from hdmap.crs import epsg_code
    from hdmap.io import file_crs, iter_chunks, read_header

    x0, y0, x1, y1 = (float(v) for v in bounds)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"sample bounds {bounds!r} are empty; give (x0, y0, x1, y1) with x1 > x0 and y1 > y0")
    cell = max(_SAMPLE_CELL_M, max(x1 - x0, y1 - y0) / _SAMPLE_MAX_CELLS)
    nx, ny = int(math.ceil((x1 - x0) / cell)), int(math.ceil((y1 - y0) / cell))
    found = file_crs(read_header(path), path)
    code = epsg_code(found)
    to_crs = f"EPSG:{epsg}" if found is not None and code != epsg else None
    notes = []
    if found is None:
        notes.append(f"the file has no CRS; taken as EPSG:{epsg}")
    elif to_crs:
        notes.append(f"reprojected from {code or found.name} to EPSG:{epsg}")
    acc = {k: np.zeros(nx * ny) for k in ("sum", "n", "gsum", "gn")}
    total = inside = 0
    has_intensity = has_class = True
    for chunk in iter_chunks(path, _CHUNK_POINTS, require_crs=False, to_crs=to_crs):
        total += len(chunk)
        x, y = chunk.xyz[:, 0], chunk.xyz[:, 1]
        m = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
        if not m.any():
            continue
        inside += int(m.sum())
        ix = np.minimum(((x[m] - x0) / cell).astype(np.int64), nx - 1)
        iy = np.minimum(((y[m] - y0) / cell).astype(np.int64), ny - 1)
        cells = iy * nx + ix
        has_intensity = has_intensity and "intensity" in chunk
        has_class = has_class and "classification" in chunk
        val = chunk.attrs["intensity"][m].astype(np.float64) if "intensity" in chunk else np.ones(len(cells))
        acc["sum"] += np.bincount(cells, weights=val, minlength=nx * ny)
        acc["n"] += np.bincount(cells, minlength=nx * ny)
        if "classification" in chunk:
            g = np.isin(chunk.attrs["classification"][m], _GROUND_CLASSES)
            acc["gsum"] += np.bincount(cells[g], weights=val[g], minlength=nx * ny)
            acc["gn"] += np.bincount(cells[g], minlength=nx * ny)
    ground = has_class and acc["gn"].any()
    s, n = (acc["gsum"], acc["gn"]) if ground else (acc["sum"], acc["n"])
    with np.errstate(invalid="ignore", divide="ignore"):
        img = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    if not has_intensity:
        img = np.where(n > 0, n, np.nan)
        notes.append("no intensity in the file: points per cell shown")
    what = "road, ground, marking and curb points" if ground else "all points"
    info = {"cell": cell, "points": total, "inside": inside, "what": what, "notes": notes,
            "extent": (x0, x0 + nx * cell, y0, y0 + ny * cell)}
    return img.reshape(ny, nx), info


def _bbox_hits(xy: np.ndarray, bounds) -> bool:
    x0, y0, x1, y1 = bounds
    return not (xy[:, 0].max() < x0 or xy[:, 0].min() > x1 or xy[:, 1].max() < y0 or xy[:, 1].min() > y1)


def _sample_png(key: str, img: np.ndarray, info: dict, lanemap: LaneMap, bounds) -> tuple[bytes, dict]:
    from matplotlib.collections import LineCollection, PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    x0, y0, x1, y1 = (float(v) for v in bounds)
    finite = img[np.isfinite(img)]
    vmin, vmax = (np.percentile(finite, [2, 99.5]) if finite.size else (0.0, 1.0))
    vmax = vmax if vmax > vmin else vmin + 1.0
    fig = Figure(figsize=(8.4, 8.0), dpi=_SAMPLE_DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.set_facecolor("#101010")
    ax.imshow(np.ma.masked_invalid(img), origin="lower", extent=info["extent"], cmap="gray", vmin=vmin, vmax=vmax,
              interpolation="nearest")
    handles, drawn = [], {"boundaries": 0, "lanes": 0, "markings": 0}
    box = (x0, y0, x1, y1)
    for kind in BOUNDARY_KINDS:
        segs = [b.xyz[:, :2] for b in lanemap.boundaries if b.kind == kind and _bbox_hits(b.xyz, box)]
        if segs:
            ls = (0, (3, 2)) if kind == "virtual" else "solid"
            ax.add_collection(LineCollection(segs, colors=_KIND_COLORS_DARK[kind], linewidths=1.0, linestyles=ls,
                                             alpha=0.9))
            handles.append(Line2D([], [], color=_KIND_COLORS_DARK[kind], lw=1.5, ls=ls, label=kind))
            drawn["boundaries"] += len(segs)
    lanes = [ln.centerline[:, :2] for ln in lanemap.lanes if _bbox_hits(ln.centerline, box)]
    if lanes:
        ax.add_collection(LineCollection(lanes, colors=_LANE_COLOR_DARK, linewidths=0.8, linestyles=(0, (6, 4))))
        handles.append(Line2D([], [], color=_LANE_COLOR_DARK, lw=1.0, ls=(0, (6, 4)), label="lane centerline"))
        drawn["lanes"] = len(lanes)
    polys = [mk.polygon[:, :2] for mk in lanemap.markings if _bbox_hits(mk.polygon, box)]
    if polys:
        ax.add_collection(PolyCollection(polys, facecolors="none", edgecolors=_MARKING_COLOR_DARK, linewidths=0.8))
        handles.append(Patch(facecolor="none", edgecolor=_MARKING_COLOR_DARK, label="marking"))
        drawn["markings"] = len(polys)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.tick_params(labelsize=7)
    ax.set_xlabel(f"easting (m, EPSG:{lanemap.epsg})", fontsize=8)
    ax.set_ylabel(f"northing (m, EPSG:{lanemap.epsg})", fontsize=8)
    _north_arrow(ax, "white")
    if handles:
        ax.legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.8)
    ax.set_title(f"tile {key}: mean intensity of {info['what']} per {info['cell'] * 100:.0f} cm cell\n"
                 "grey clipped to the 2nd–99.5th percentile, map vectors on top", fontsize=9)
    return _png(fig, _SAMPLE_DPI), {**drawn, "clip": (float(vmin), float(vmax))}


# ----------------------------------------------------------------------------
# HTML
# ----------------------------------------------------------------------------
_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif;
       margin: 0 auto; max-width: 1240px; padding: 0 20px 40px; color: #212121; line-height: 1.4; }
header { border-bottom: 3px solid #37474f; margin-bottom: 12px; }
h1 { font-size: 1.6em; margin: 18px 0 4px; }
h2 { font-size: 1.3em; border-bottom: 1px solid #b0bec5; margin-top: 32px; }
h3 { font-size: 1.1em; margin-top: 22px; }
h4, h5 { font-size: 1em; margin: 14px 0 4px; }
.sub { color: #546e7a; margin: 0 0 10px; }
nav a { margin-right: 14px; color: #1565c0; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 0.9em; }
th, td { border: 1px solid #cfd8dc; padding: 3px 8px; text-align: left; vertical-align: top; }
thead th { background: #eceff1; }
tbody th { font-weight: normal; background: #fafafa; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv table, table.records table { margin: 0; font-size: 1em; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid #eceff1; }
figcaption, .note { color: #546e7a; font-size: 0.88em; }
.muni { display: flex; flex-wrap: wrap; gap: 6px 24px; align-items: flex-start; }
footer { margin-top: 36px; border-top: 1px solid #b0bec5; color: #546e7a; font-size: 0.85em; }
@media print { nav { display: none; } section { break-inside: avoid-page; } }
"""

# Counts the images that decoded and writes "<loaded>/<total>" on <body>; CSP violations on <html>.
_SCRIPT = """
(function () {
  var violations = 0;
  document.addEventListener("securitypolicyviolation", function () {
    violations += 1;
    document.documentElement.setAttribute("data-csp-violations", String(violations));
  });
  window.addEventListener("load", function () {
    var imgs = document.images, ok = 0;
    for (var i = 0; i < imgs.length; i++) {
      if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok += 1; }
    }
    document.body.setAttribute("data-images-ok", ok + "/" + imgs.length);
  });
})();
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _img(data: bytes, alt: str) -> str:
    w, h = _png_size(data)
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/png;base64,{b64}" width="{w}" height="{h}" alt="{_esc(alt)}">'


def _figure(data: bytes, alt: str, name: str, caption: str) -> str:
    return (f"<figure>{_img(data, alt)}<figcaption>{caption} <span class=\"file\">({_esc(name)})</span>"
            "</figcaption></figure>")


def _stage_seconds(summary: dict):
    """The first dict of numbers under a key naming seconds, time or stages: ``(key, {stage: s})``."""
    for key, value in summary.items():
        if not isinstance(value, dict) or not value:
            continue
        if not re.search(r"second|time|stage|duration", str(key), re.I):
            continue
        out = {}
        for stage, v in value.items():
            if isinstance(v, dict):
                v = next((v[k] for k in ("seconds", "s", "time_s", "wall_s") if k in v), None)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out[str(stage)] = float(v)
        if out:
            return key, out
    return None, {}


def _count_of(value, fallback: int) -> int:
    """A count given as a number or as a list/dict of the things counted; else *fallback*."""
    if isinstance(value, bool):
        return fallback
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value):
        return int(round(value))
    if isinstance(value, (list, tuple, dict)):
        return len(value)
    return fallback


def _summary_html(data: ReportInput, whole: dict) -> str:
    s = data.summary if isinstance(data.summary, dict) else {}
    points = _count_of(s.get("points"), sum(int(t.get("points") or 0) for t in data.tiles))
    drives = _count_of(s.get("drives"), len(data.trajectories))
    tiles = _count_of(s.get("tiles"), len(data.tiles))
    stage_key, stages = _stage_seconds(s)
    bkm = _boundary_km(data.lanemap)
    rows = [
        ["points", _count(points)],
        ["drives", _count(drives)],
        ["tiles", _count(tiles)],
        ["municipalities in the delivery", _count(len(data.parts))],
        ["road (carriageway km)", _km(whole["road_km"])],
        ["lanes (km of centerline)", _km(whole["lane_km"])],
        ["lanes", _count(whole["lanes"])],
        ["boundaries (km)", _km(sum(bkm.values()))],
        ["boundaries", _count(len(data.lanemap.boundaries))],
        ["markings", _count(len(data.lanemap.markings))],
    ]
    if stages:
        total = sum(stages.values())
        rows.append(["run time (h:mm:ss)", _duration(total)])
    out = [_table(["figure", "value"], rows)]
    if stages:
        total = sum(stages.values()) or 1.0
        srows = [[_esc(k), f"{v:,.1f}", f"{100.0 * v / total:.1f} %"] for k, v in stages.items()]
        srows.append(["total", f"{sum(stages.values()):,.1f}", "100.0 %"])
        out.append("<h3>Run time per stage</h3>")
        out.append(_table(["stage", "seconds", "share"], srows))
    rest = {k: v for k, v in s.items() if k not in ("points", "drives", "tiles", stage_key)}
    if rest:
        out.append("<h3>Other run figures</h3>")
        out.append(_table(["figure", "value"], [[_esc(k), _value_html(v)] for k, v in rest.items()],
                          classes="kv"))
    return "".join(out)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("._") or "x"


def _check(data: ReportInput) -> list:
    """Trajectories as (name, (n, 2) float arrays); errors naming what is wrong."""
    if not isinstance(data.lanemap, LaneMap):
        raise TypeError(f"ReportInput.lanemap must be a LaneMap, not {type(data.lanemap).__name__}")
    for i, t in enumerate(data.tiles):
        if len(tuple(t.get("bounds", ()))) != 4:
            raise ValueError(f"ReportInput.tiles[{i}] ({t.get('key')!r}): bounds must be (x0, y0, x1, y1), "
                             f"got {t.get('bounds')!r}")
    trajs = []
    for i, item in enumerate(data.trajectories):
        name, xy = item
        xy = np.asarray(xy, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] < 2:
            raise ValueError(f"ReportInput.trajectories[{i}] ({name!r}): expected an (n, 2) array of x, y, "
                             f"got shape {xy.shape}")
        xy = xy[:, :2]
        trajs.append((str(name), xy[np.isfinite(xy).all(axis=1)]))
    for key, part in data.parts.items():
        if not isinstance(part, LaneMap):
            raise TypeError(f"ReportInput.parts[{key!r}] must be a LaneMap, not {type(part).__name__}")
    return trajs


_ROAD_NOTE = (
    "Road length is the carriageway length: every lane centerline is cut into "
    f"{STATION_STEP_M:g} m pieces and each piece counts its length divided by the number of lanes side by side "
    "there, so a two-lane road 1 km long is 1 km of road and 2 km of lanes. Lanes side by side: at the middle of "
    "each piece a cross-section at right angles to the lane is laid; lanes crossing it within 30° of parallel "
    "(either direction) are counted going outwards from the piece's own lane while the gap between neighbouring "
    "lane edges is at most half a lane width (so a wide median separates two carriageways). Lane widths are the "
    "width profile at the same stations, weighted by piece length. Boundary length is the horizontal length of "
    "the boundary polylines.")


class _Pngs(dict):
    """PNG bytes by unique file name."""

    def add(self, stem: str, png: bytes) -> str:
        name, i = f"{_safe_name(stem)}.png", 2
        while name in self:
            name, i = f"{_safe_name(stem)}_{i}.png", i + 1
        self[name] = png
        return name


def _municipalities_html(data: ReportInput, pngs: _Pngs) -> str:
    out = ['<section id="municipalities"><h2>Municipalities</h2>', f'<p class="note">{_esc(_ROAD_NOTE)}</p>']
    if not data.parts:
        out.append("<p>No per-municipality parts in this run.</p>")
    names = _names(data)
    stats = {k: road_statistics(data.parts[k]) for k in sorted(data.parts)}
    # the same axes for every municipality (small multiples)
    lanes_max = max([4] + [max(s["road_km_by_lanes"], default=1) for s in stats.values()])
    widths = np.concatenate([s["widths"] for s in stats.values()] + [np.empty(0)])
    lo = min(2.0, math.floor(float(widths.min()) * 2) / 2) if len(widths) else 2.0
    hi = max(5.0, math.ceil(float(widths.max()) * 2) / 2) if len(widths) else 5.0
    bins = np.linspace(lo, hi, int(round((hi - lo) / 0.1)) + 1)
    for key, st in stats.items():
        part = data.parts[key]
        label = names.get(key, key)
        bkm = _boundary_km(part)
        marks = _marking_counts(part)
        rows = [["road (carriageway km)", _km(st["road_km"])], ["lanes (km of centerline)", _km(st["lane_km"])],
                ["lanes", _count(st["lanes"])], ["boundaries (km)", _km(sum(bkm.values()))],
                ["median lane width (m)", _fmt(_weighted_median(st["widths"], st["width_weights_km"]), 2)],
                ["markings", _esc(", ".join(f"{t} {n}" for t, n in marks.items()) or "none")]]
        brow = [[_esc(k if p is None else f"{k} {p}"), f"{v:,.3f}"] for (k, p), v in bkm.items()]
        png = _municipality_png(f"{label} ({key}): road {st['road_km']:.2f} km, lanes {st['lane_km']:.2f} km",
                                st, bkm, lanes_max, bins)
        name = pngs.add(f"municipality_{key}", png)
        out.append(f'<h3 id="m-{_safe_name(key)}">{_esc(label)} <span class="sub">{_esc(key)}</span></h3>'
                   f'<div class="muni">{_table(["figure", "value"], rows)}'
                   f'{_table(["boundary kind and pattern", "km"], brow) if brow else ""}</div>')
        out.append(_figure(png, f"statistics of {label}", name,
                           "Boundary length by kind and pattern; road length by number of lanes side by side; "
                           "lane widths (km of lane per bin)."))
    out.append("</section>")
    return "".join(out)


def _samples_html(data: ReportInput, pngs: _Pngs) -> str:
    out = ['<section id="samples"><h2>Sample tiles</h2>']
    if not data.samples:
        out.append("<p>No sample tiles in this run.</p>")
    for sample in data.samples:
        key, laz, bounds = str(sample["key"]), Path(sample["laz"]), sample["bounds"]
        out.append(f"<h3>Tile {_esc(key)}</h3>")
        try:
            img, info = _rasterise(laz, bounds, data.lanemap.epsg)
        except (HdmapError, OSError, ValueError) as exc:
            logger.warning("report: sample tile %s (%s) left out: %s", key, laz, exc)
            out.append(f'<p class="note">Could not show this tile: {_esc(exc)}</p>')
            continue
        png, drawn = _sample_png(key, img, info, data.lanemap, bounds)
        name = pngs.add(f"sample_{key}", png)
        x0, y0, x1, y1 = (float(v) for v in bounds)
        rows = [["file", _esc(laz.name)], ["bounds (m)", _esc(f"{x0:.1f}, {y0:.1f} – {x1:.1f}, {y1:.1f}")],
                ["points in file", _count(info["points"])], ["points in bounds", _count(info["inside"])],
                ["cell (m)", f"{info['cell']:.3f}"], ["rasterised", _esc(info["what"])],
                ["grey range", _esc(f"{drawn['clip'][0]:.1f} – {drawn['clip'][1]:.1f}")],
                ["drawn", _esc(f"{drawn['boundaries']} boundaries, {drawn['lanes']} lanes, "
                               f"{drawn['markings']} markings")]]
        rows += [["note", _esc(n)] for n in info["notes"]]
        out.append(_table(None, rows) + _figure(
            png, f"intensity of tile {key} with the map", name,
            "Mean intensity per cell (grey, clipped to the 2nd–99.5th percentile), boundaries coloured by kind, "
            "lane centerlines dashed pink, markings outlined green. Vectors should sit on the paint."))
    out.append("</section>")
    return "".join(out)


def _accuracy_html(accuracy) -> str:
    out = ['<section id="accuracy"><h2>Accuracy against simulator truth</h2>']
    if accuracy is None:
        out.append("<p>Not measured: this campaign did not come from the simulator.</p>")
    elif not accuracy:
        out.append("<p>No metrics given.</p>")
    else:
        out.append(_metrics_html(accuracy))
    out.append("</section>")
    return "".join(out)


def _footer_html(data: ReportInput) -> str:
    licences = list(dict.fromkeys(m.license for m in data.municipalities if m.license))
    unlicensed = [m.name for m in data.municipalities if not m.license]
    foot = [f"<p>Municipal boundaries: {_esc(lic)}</p>" for lic in licences]
    if unlicensed:
        foot.append(f"<p>No licence given for the boundaries of: {_esc(', '.join(unlicensed))}.</p>")
    foot.append(f"<p>Generated by hdmap {_esc(data.version)}. Plots are also written as PNG files beside this "
                "page. This file loads nothing from the network.</p>")
    return "<footer>" + "".join(foot) + "</footer>"


def write_report(out_dir, data: ReportInput) -> Path:
    """Write the QA report: ``out_dir/report.html`` and each plot as ``out_dir/<name>.png``.

    Parameters
    ----------
    out_dir : path-like
        Output directory, created if needed; files of the same names are replaced
        (atomically, one by one, the HTML last).
    data : ReportInput

    Returns
    -------
    Path
        The HTML file.

    Notes
    -----
    A sample tile whose LAZ cannot be read is reported in its place (the message
    names the file) and logged as a warning; the rest of the report is written.
    """
    out_dir = Path(out_dir)
    trajectories = _check(data)
    pngs = _Pngs()
    campaign = data.campaign if isinstance(data.campaign, dict) else {}
    epsg = data.lanemap.epsg
    nav = [("summary", "Summary"), ("overview", "Overview"), ("municipalities", "Municipalities"),
           ("samples", "Sample tiles"), ("accuracy", "Accuracy"), ("campaign", "Campaign")]
    body = [f'<header><h1>{_esc(data.title)}</h1><p class="sub">campaign <b>{_esc(campaign.get("name") or "–")}</b>'
            f" · hdmap {_esc(data.version)} · EPSG:{epsg}</p><nav>"
            + "".join(f'<a href="#{a}">{t}</a>' for a, t in nav) + "</nav></header>"]
    with _style():
        body.append(f'<section id="summary"><h2>Summary</h2>{_summary_html(data, road_statistics(data.lanemap))}'
                    "</section>")
        png = _overview_png(data, trajectories)
        body.append('<section id="overview"><h2>Overview</h2>' + _figure(
            png, "overview map", pngs.add("overview", png),
            "Tiles coloured by municipality, trajectories (dark grey), extracted boundaries coloured by kind "
            f"and municipal borders (dashed). Axes in km of EPSG:{epsg}; the arrow points to grid north.")
            + "</section>")
        body.append(_municipalities_html(data, pngs))
        body.append(_samples_html(data, pngs))
    body.append(_accuracy_html(data.accuracy))
    body.append(f'<section id="campaign"><h2>Campaign</h2>{_value_html(campaign) if campaign else "<p>–</p>"}'
                "</section>")
    body.append(_footer_html(data))

    csp = (f"default-src 'none'; img-src data:; style-src {_csp_hash(_CSS)}; script-src {_csp_hash(_SCRIPT)}; "
           "base-uri 'none'; form-action 'none'")
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<meta name=\"generator\" content=\"hdmap {_esc(data.version)}\">\n"
            f"<title>{_esc(data.title)}</title>\n<style>{_CSS}</style>\n<script>{_SCRIPT}</script>\n</head>\n"
            "<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")
    for name, png in pngs.items():
        write_bytes_atomic(out_dir / name, png)
    return write_text_atomic(out_dir / "report.html", page)


def _weighted_median(values: np.ndarray, weights: np.ndarray):
    """The value at half the total weight (None for no values)."""
    if len(values) == 0:
        return None
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, cum[-1] / 2.0)])

"""Road descriptions for the simulator: parsing and validation.

A road description is a TOML file (or the same structure as a dict, which is
what the presets are). Every key is checked; an unknown key or a value out of
range raises :class:`hdmap.errors.ConfigError` naming its place, e.g.
``road.toml: roads[0].right[2].width: must be between 0.05 and 30 m, got -1``.

Structure (all lengths in metres, angles in degrees)::

    crs = "EPSG:25832"
    context = "urban"                  # urban | rural | motorway: marking sizes and dash patterns
    survey_date = "2026-05-12"         # GPS time of the drives starts on this day
    speed_kmh = 40                     # survey speed (the simulator varies it around this)

    [[roads]]
    id = "main"
    start = [692000.0, 5343500.0]      # easting, northing of the reference line's start
    heading = 0.0                      # clockwise from north
    z = 480.0
    grade = 0.004                      # rise per metre along the road
    cross_slope = 0.025
    crown = true                       # false: one-sided, falling to the right
    geometry = [ {type = "line", length = 200},
                 {type = "spiral", length = 50, radius_end = 500},
                 {type = "arc", length = 120, radius = 500} ]   # radius > 0 turns left
    right = [ {type = "lane", width = 3.25}, {type = "parking", width = 2.0},
              {type = "curb", height = 0.12}, {type = "sidewalk", width = 2.5},
              {type = "verge", width = 3.0} ]
    left = [ ... ]                     # same, for the lanes driving against s
    centre = {pattern = "dashed"}      # line on the reference line (roads without median)
    median = {width = 3.0, type = "island", height = 0.12}   # island | flush | barrier

    [[roads.crosswalks]]   s = 120.0, length = 4.0
    [[roads.stop_lines]]   s = 110.0, side = "right"
    [[roads.arrows]]       s = 95.0, side = "right", lane = 1, type = "straight"
    [[roads.junctions]]    s = 300.0, arms = [ {side = "left", road = {...}}, ... ]

    [features]                         # distractors and surroundings, placed from the seed
    manholes_per_km = 20 ...

    [[drives]]                         # the routes of the passes (cycled)
    route = [ {road = "main", direction = "forward", lane = 1} ]

Bands: ``lane``, ``bus``, ``bike``, ``parking``, ``shoulder``, ``gutter`` (at
carriageway level), ``curb`` (a vertical step of ``height`` with a top of
``width``, default 0.15), ``sidewalk``, ``verge``. A band may set ``line`` to
override the marking on its inner edge: ``"none"`` or ``{pattern = "solid",
width = 0.25}``.
"""

from __future__ import annotations

import datetime as _dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, InputFileNotFoundError

__all__ = [
    "RoadDescription", "RoadSpec", "Band", "LineSpec", "Median", "Crosswalk", "StopLine", "Arrow", "Junction",
    "Features", "RouteLeg", "load_road_description", "parse_road_description", "CONTEXTS",
]

# marking sizes per context (German RMS): thin/thick line widths, Leitlinie stroke/gap
CONTEXTS = {
    "urban": {"thin": 0.12, "thick": 0.25, "stroke": 3.0, "gap": 6.0, "arrow_length": 5.0},
    "rural": {"thin": 0.12, "thick": 0.25, "stroke": 4.0, "gap": 8.0, "arrow_length": 7.5},
    "motorway": {"thin": 0.15, "thick": 0.30, "stroke": 6.0, "gap": 12.0, "arrow_length": 7.5},
}
JUNCTION_PATTERN = (3.0, 3.0)  # 1:1 in junction areas
STOP_LINE_WIDTH = 0.50
CROSSWALK_BAR = 0.50

BAND_KINDS = ("lane", "bus", "bike", "parking", "shoulder", "gutter", "curb", "sidewalk", "verge")
ROAD_LEVEL = ("lane", "bus", "bike", "parking", "shoulder", "gutter")
DRIVING = ("lane", "bus")
PATTERNS = ("solid", "dashed", "solid_solid", "solid_dashed", "dashed_solid")
ARROW_TYPES = ("straight", "left", "right", "straight_left", "straight_right")


@dataclass(frozen=True)
class LineSpec:
    pattern: str
    width: float
    stroke: float | None = None
    gap: float | None = None


@dataclass(frozen=True)
class Band:
    kind: str
    width: float
    height: float = 0.0
    line: LineSpec | None | str = "auto"  # "auto", None (no line) or an explicit LineSpec


@dataclass(frozen=True)
class Median:
    width: float
    kind: str = "island"  # island (raised, curbs) | flush (painted area) | barrier (guard rail)
    height: float = 0.12


@dataclass(frozen=True)
class Crosswalk:
    s: float
    length: float = 4.0


@dataclass(frozen=True)
class StopLine:
    s: float
    side: str


@dataclass(frozen=True)
class Arrow:
    s: float
    side: str
    lane: int
    type: str


@dataclass(frozen=True)
class Arm:
    side: str
    road: "RoadSpec"


@dataclass(frozen=True)
class Junction:
    s: float
    arms: tuple


@dataclass(frozen=True)
class RoadSpec:
    id: str
    start: tuple
    heading: float
    z: float
    grade: float
    cross_slope: float
    crown: bool
    geometry: tuple  # of (kind, length, k0, k1)
    right: tuple
    left: tuple
    centre: LineSpec | None
    median: Median | None
    crosswalks: tuple = ()
    stop_lines: tuple = ()
    arrows: tuple = ()
    junctions: tuple = ()
    context: str = "urban"
    slope_ramp: float = 0.0  # arms: cross slope grows from 0 over this distance

    @property
    def length(self) -> float:
        return float(sum(g[1] for g in self.geometry))


@dataclass(frozen=True)
class Features:
    manholes_per_km: float = 15.0
    tar_snakes_per_km: float = 12.0
    wet_patches_per_km: float = 6.0
    patches_per_km: float = 5.0
    parked_cars_per_km: float = 40.0
    cars_on_lines: float = 0.25  # share of parked cars standing over the edge line
    moving_cars_per_km: float = 8.0
    trees_per_km: float = 30.0
    poles_per_km: float = 20.0
    signs_per_km: float = 8.0
    buildings: bool = True
    fences_per_km: float = 0.0
    guard_rails: bool = False
    worn_paint: float = 0.15  # share of painted elements that are worn
    noise_rate: float = 2e-4  # spurious returns per pulse


@dataclass(frozen=True)
class RouteLeg:
    road: str
    direction: str  # forward | backward
    lane: int = 1  # 1 = the lane next to the centre


@dataclass(frozen=True)
class RoadDescription:
    name: str
    crs: str
    context: str
    survey_date: _dt.date
    roads: tuple
    features: Features
    drives: tuple  # of tuples of RouteLeg
    source: str = "preset"
    speed_kmh: float = 40.0

    def road(self, rid: str) -> RoadSpec:
        for r in self.all_roads():
            if r.id == rid:
                return r
        raise KeyError(rid)

    def all_roads(self):
        """Every road, including junction arms (depth first)."""
        out = []

        def visit(r):
            out.append(r)
            for j in r.junctions:
                for arm in j.arms:
                    visit(arm.road)

        for r in self.roads:
            visit(r)
        return out


# --------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------
class _Ctx:
    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, msg: str):
        raise ConfigError(f"{self.source}: {where}: {msg}")


def _check_keys(ctx, where, d, allowed):
    if not isinstance(d, dict):
        ctx.fail(where, f"expected a table, got {type(d).__name__}")
    unknown = sorted(set(d) - set(allowed))
    if unknown:
        ctx.fail(where, f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")


def _num(ctx, where, d, key, default=None, lo=None, hi=None, required=False):
    if key not in d:
        if required:
            ctx.fail(where, f"missing required key {key!r}")
        return default
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        ctx.fail(f"{where}.{key}", f"expected a number, got {v!r}")
    v = float(v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        ctx.fail(f"{where}.{key}", f"must be between {lo} and {hi}, got {v:g}")
    return v


def _choice(ctx, where, d, key, choices, default=None):
    v = d.get(key, default)
    if v not in choices:
        ctx.fail(f"{where}.{key}", f"must be one of {', '.join(map(str, choices))}, got {v!r}")
    return v


def _line(ctx, where, v, context):
    if v == "none" or v is None:
        return None
    if v == "auto":
        return "auto"
    _check_keys(ctx, where, v, {"pattern", "width", "stroke", "gap"})
    pattern = _choice(ctx, where, v, "pattern", PATTERNS)
    c = CONTEXTS[context]
    width = _num(ctx, where, v, "width", c["thin"], 0.05, 1.0)
    stroke = gap = None
    if "dashed" in pattern:
        stroke = _num(ctx, where, v, "stroke", c["stroke"], 0.5, 30)
        gap = _num(ctx, where, v, "gap", c["gap"], 0.5, 30)
    return LineSpec(pattern, width, stroke, gap)


def _bands(ctx, where, items, context):
    if not isinstance(items, list):
        ctx.fail(where, "expected a list of bands")
    out = []
    for i, b in enumerate(items):
        w = f"{where}[{i}]"
        _check_keys(ctx, w, b, {"type", "width", "height", "line"})
        kind = _choice(ctx, w, b, "type", BAND_KINDS)
        if kind == "curb":
            width = _num(ctx, w, b, "width", 0.15, 0.05, 1.0)
            height = _num(ctx, w, b, "height", 0.12, 0.03, 0.40)
        else:
            width = _num(ctx, w, b, "width", None, 0.05, 30.0, required=True)
            height = 0.0
            if kind == "lane" and not 2.0 <= width <= 5.0:
                ctx.fail(f"{w}.width", f"a lane must be 2.0-5.0 m wide, got {width:g}")
        line = _line(ctx, f"{w}.line", b.get("line", "auto"), context)
        out.append(Band(kind, width, height, line))
    raised = False
    for i, b in enumerate(out):
        if b.kind in ("curb", "sidewalk", "verge"):
            raised = raised or b.kind == "curb"
        elif raised:
            ctx.fail(f"{where}[{i}]", f"a {b.kind} band cannot lie beyond a curb (outside the carriageway)")
    return tuple(out)


def _geometry(ctx, where, items):
    if not isinstance(items, list) or not items:
        ctx.fail(where, "expected a non-empty list of segments")
    out = []
    k_prev = 0.0
    for i, g in enumerate(items):
        w = f"{where}[{i}]"
        _check_keys(ctx, w, g, {"type", "length", "radius", "radius_start", "radius_end"})
        kind = _choice(ctx, w, g, "type", ("line", "arc", "spiral"))
        length = _num(ctx, w, g, "length", None, 0.1, 100_000, required=True)

        def curv(key, default):
            r = _num(ctx, w, g, key, None)
            if r is None:
                return default
            if abs(r) < 5.0:
                ctx.fail(f"{w}.{key}", f"radius must be at least 5 m in magnitude (positive turns left), got {r:g}")
            return 1.0 / r

        if kind == "line":
            k0 = k1 = 0.0
        elif kind == "arc":
            if "radius" not in g:
                ctx.fail(w, "an arc needs 'radius'")
            k0 = k1 = curv("radius", 0.0)
        else:
            k0 = curv("radius_start", k_prev) if "radius_start" in g else k_prev
            k1 = curv("radius_end", 0.0)
        out.append((kind, length, k0, k1))
        k_prev = k1
    return tuple(out)


def _road(ctx, where, d, context, is_arm=False):
    allowed = {"id", "start", "heading", "z", "grade", "cross_slope", "crown", "geometry", "right", "left",
               "centre", "median", "crosswalks", "stop_lines", "arrows", "junctions", "context"}
    if is_arm:
        allowed -= {"start", "heading", "z"}
    _check_keys(ctx, where, d, allowed)
    rid = d.get("id")
    if not isinstance(rid, str) or not rid:
        ctx.fail(f"{where}.id", "each road needs a non-empty string id")
    context = _choice(ctx, where, d, "context", tuple(CONTEXTS), context)
    if is_arm:
        start, heading, z = (0.0, 0.0), 0.0, 0.0
    else:
        start = d.get("start")
        if (not isinstance(start, list) or len(start) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in start)):
            ctx.fail(f"{where}.start", f"expected [easting, northing], got {start!r}")
        start = (float(start[0]), float(start[1]))
        heading = _num(ctx, where, d, "heading", 0.0, -360, 360)
        z = _num(ctx, where, d, "z", 0.0, -500, 9000)
    grade = _num(ctx, where, d, "grade", 0.0, -0.15, 0.15)
    cross = _num(ctx, where, d, "cross_slope", 0.025, 0.0, 0.08)
    crown = d.get("crown", True)
    if not isinstance(crown, bool):
        ctx.fail(f"{where}.crown", f"expected true or false, got {crown!r}")
    geometry = _geometry(ctx, f"{where}.geometry", d.get("geometry"))
    right = _bands(ctx, f"{where}.right", d.get("right", []), context)
    left = _bands(ctx, f"{where}.left", d.get("left", []), context)
    if not any(b.kind in DRIVING for b in right + left):
        ctx.fail(where, "a road needs at least one lane (right or left)")
    median = None
    if "median" in d:
        m = d["median"]
        _check_keys(ctx, f"{where}.median", m, {"width", "type", "height"})
        median = Median(_num(ctx, f"{where}.median", m, "width", None, 0.5, 50, required=True),
                        _choice(ctx, f"{where}.median", m, "type", ("island", "flush", "barrier"), "island"),
                        _num(ctx, f"{where}.median", m, "height", 0.12, 0.03, 0.4))
    centre = None
    if median is None:
        c = d.get("centre", {"pattern": "dashed"} if (right and left) else "none")
        centre = _line(ctx, f"{where}.centre", c, context)
        if centre == "auto":
            centre = _line(ctx, f"{where}.centre", {"pattern": "dashed"}, context)
    elif "centre" in d:
        ctx.fail(f"{where}.centre", "a road with a median has no centre line; remove 'centre'")
    length = sum(g[1] for g in geometry)

    def station(w, item):
        s = _num(ctx, w, item, "s", None, 0.0, length, required=True)
        return s

    crosswalks = []
    for i, c in enumerate(d.get("crosswalks", [])):
        w = f"{where}.crosswalks[{i}]"
        _check_keys(ctx, w, c, {"s", "length"})
        crosswalks.append(Crosswalk(station(w, c), _num(ctx, w, c, "length", 4.0, 3.0, 10.0)))
    stops = []
    for i, c in enumerate(d.get("stop_lines", [])):
        w = f"{where}.stop_lines[{i}]"
        _check_keys(ctx, w, c, {"s", "side"})
        stops.append(StopLine(station(w, c), _choice(ctx, w, c, "side", ("right", "left"))))
    arrows = []
    for i, c in enumerate(d.get("arrows", [])):
        w = f"{where}.arrows[{i}]"
        _check_keys(ctx, w, c, {"s", "side", "lane", "type"})
        side = _choice(ctx, w, c, "side", ("right", "left"))
        lanes = [b for b in (right if side == "right" else left) if b.kind in DRIVING]
        lane = int(_num(ctx, w, c, "lane", 1, 1, max(len(lanes), 1)))
        arrows.append(Arrow(station(w, c), side, lane, _choice(ctx, w, c, "type", ARROW_TYPES)))
    junctions = []
    for i, j in enumerate(d.get("junctions", [])):
        w = f"{where}.junctions[{i}]"
        _check_keys(ctx, w, j, {"s", "arms"})
        arms = []
        for k, a in enumerate(j.get("arms", [])):
            wa = f"{w}.arms[{k}]"
            _check_keys(ctx, wa, a, {"side", "road"})
            arms.append(Arm(_choice(ctx, wa, a, "side", ("right", "left")),
                            _road(ctx, f"{wa}.road", a.get("road", {}), context, is_arm=True)))
        if not arms:
            ctx.fail(w, "a junction needs at least one arm")
        junctions.append(Junction(station(w, j), tuple(arms)))
    return RoadSpec(rid, start, heading, z, grade, cross, crown, geometry, right, left, centre, median,
                    tuple(crosswalks), tuple(stops), tuple(arrows), tuple(junctions), context,
                    slope_ramp=15.0 if is_arm else 0.0)


def parse_road_description(data: dict, *, source: str = "road description", name: str | None = None) -> RoadDescription:
    """Validate a road description given as a dict (the parsed TOML)."""
    ctx = _Ctx(source)
    _check_keys(ctx, "top level", data, {"name", "crs", "context", "survey_date", "speed_kmh", "roads", "features",
                                         "drives"})
    speed_kmh = _num(ctx, "top level", data, "speed_kmh", 40.0, 5.0, 130.0)
    context = _choice(ctx, "top level", data, "context", tuple(CONTEXTS), "urban")
    crs = data.get("crs", "EPSG:25832")
    date = data.get("survey_date", "2026-05-12")
    try:
        survey_date = date if isinstance(date, _dt.date) else _dt.date.fromisoformat(str(date))
    except ValueError:
        ctx.fail("survey_date", f"expected YYYY-MM-DD, got {date!r}")
    roads_in = data.get("roads")
    if not isinstance(roads_in, list) or not roads_in:
        ctx.fail("roads", "expected a non-empty list of [[roads]]")
    roads = tuple(_road(ctx, f"roads[{i}]", r, context) for i, r in enumerate(roads_in))
    ids = []
    for r in roads:
        stack = [r]
        while stack:
            x = stack.pop()
            ids.append(x.id)
            stack.extend(a.road for j in x.junctions for a in j.arms)
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        ctx.fail("roads", f"road id {dup[0]!r} is used twice; ids must be unique")
    fdata = data.get("features", {})
    _check_keys(ctx, "features", fdata, set(Features.__dataclass_fields__))
    fkw = {}
    for key, f in Features.__dataclass_fields__.items():
        if key not in fdata:
            continue
        if isinstance(f.default, bool):
            if not isinstance(fdata[key], bool):
                ctx.fail(f"features.{key}", f"expected true or false, got {fdata[key]!r}")
            fkw[key] = fdata[key]
        else:
            hi = 1.0 if key in ("worn_paint", "cars_on_lines") else (0.05 if key == "noise_rate" else 1000.0)
            fkw[key] = _num(ctx, "features", fdata, key, None, 0.0, hi)
    features = Features(**fkw)
    drives = []
    for i, dr in enumerate(data.get("drives", [])):
        w = f"drives[{i}]"
        _check_keys(ctx, w, dr, {"route"})
        legs = []
        for k, leg in enumerate(dr.get("route", [])):
            wl = f"{w}.route[{k}]"
            _check_keys(ctx, wl, leg, {"road", "direction", "lane"})
            if leg.get("road") not in ids:
                ctx.fail(f"{wl}.road", f"unknown road {leg.get('road')!r}; roads: {', '.join(ids)}")
            legs.append(RouteLeg(leg["road"], _choice(ctx, wl, leg, "direction", ("forward", "backward")),
                                 int(_num(ctx, wl, leg, "lane", 1, 1, 10))))
        if not legs:
            ctx.fail(w, "a drive needs a route of at least one leg")
        drives.append(tuple(legs))
    if not drives:
        first = roads[0].id
        drives = [(RouteLeg(first, "forward", 1),), (RouteLeg(first, "backward", 1),)]
    return RoadDescription(name or str(data.get("name", "road")), str(crs), context, survey_date, roads, features,
                           tuple(drives), source, speed_kmh)


def load_road_description(path) -> RoadDescription:
    """Read and validate a road-description TOML file."""
    path = Path(path)
    if not path.exists():
        raise InputFileNotFoundError(path, "road description")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return parse_road_description(data, source=str(path), name=data.get("name", path.stem))

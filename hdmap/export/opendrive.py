"""ASAM OpenDRIVE 1.8 / 1.6 export of a :class:`~hdmap.LaneMap`, and a reader back into one.

Conventions of the writer
-------------------------
Coordinates. The header holds a ``<geoReference>`` (CDATA PROJ string of the map's
CRS; for EPSG:25832 ``+proj=utm +zone=32 +ellps=GRS80 +towgs84=0,0,0,0,0,0,0
+units=m +no_defs``) and an ``<offset x y z hdg="0">``. As the standard defines it
(ASAM OpenDRIVE 1.8, section 8.5 "Georeferencing": "If an offset exists, always
apply the offset on the local ASAM OpenDRIVE coordinates to get the world
coordinates before converting the positions using PROJ", ``xWorld = xODR *
cos(hdg) - yODR * sin(hdg) + xOffset``, ``zWorld = zODR + zOffset``), the file's
inertial coordinates are local: ``x = E - offset.x``, ``y = N - offset.y``,
``z = H - offset.z`` with the offset the map's centre rounded to whole metres
and ``hdg = 0``. The reader applies the same formula, then PROJ.

Roads. One OpenDRIVE road per LaneMap road (``Lane.road``). Its lanes driven in
the road's reference direction (``forward``; ``backward`` if a road has none)
are right lanes (ids -1, -2, ...; right-hand traffic), the others left lanes.
The reference line is the left border of the innermost forward lanes (the line
between the two directions on an undivided road; the left edge of the forward
carriageway on a road with a median, the median then being a left lane of type
``median``), extended straight where lanes of the other direction reach
further. It is fitted with lines, arcs and spirals where they fit within
*tolerance* and ``paramPoly3`` elsewhere (:mod:`._odr_geometry`). If a LaneMap road
does not have this structure (its innermost left borders do not form one
chain, a border is not found along a lane, ...), each of its lanes becomes an
OpenDRIVE road of its own (logged; ``hdmap:fallback`` user data on the road).

Lanes. Lane sections start wherever a lane starts or ends (LaneMap lanes are
split at crosswalks and junction areas, neighbours at different stations).
Each lane border is measured along the normals of the *fitted* reference line
every 0.5 m and the lane widths are cubic pieces fitted within *tolerance* to
the distance from the fitted inner border, so errors do not add up from lane to
lane. Strips between lanes (a median) and beyond the outermost lane up to
boundaries of the road that no lane uses (edge lines, curbs, road borders)
become lanes of type ``median`` / ``none`` (``shoulder`` where the strip ends at
a road border); beyond a curbstone a ``curb`` lane of nominal width
:data:`CURB_WIDTH` is added, beyond a road border a ``border`` lane of
:data:`BORDER_WIDTH`. Sidewalks, bike lanes and parking are not known to the
LaneMap: a parking strip between the outer lane line and the curb is a ``none``
lane, sidewalks are not written. Elevation is an ``elevationProfile`` of cubic
pieces fitted to the reference border's heights; there is no lateral profile
(superelevation / crossfall are not modelled).

Road marks. Every lane border gets a ``<roadMark>``: ``solid``, ``broken``,
``solid solid``, ``solid broken``, ``broken solid`` (the pair named from left
to right looking along s), ``curb`` for curbstones, ``edge`` for road
borders, ``none`` for virtual lines; weight ``standard`` (line_thin) or
``bold`` (line_thick), the measured width and colour, and for dashed and
double lines an explicit ``<type>`` with one ``<line length space width
tOffset sOffset>`` per painted line (dash and gap lengths measured). A
``<userData code="hdmap:boundary" value="<id>">`` in each road mark and
``code="hdmap:lane"`` in each lane name the LaneMap objects they come from.

Markings. Crosswalks are ``<object type="crosswalk">`` and stop lines, arrows
and other painted symbols ``<object type="roadMark">`` (subtype ``stopLine``,
``arrow_*``, ...), both with an ``<outlines><outline>`` of ``cornerLocal``
points, identical in 1.6 and 1.8 (both standards have these object types).
Crosswalk bars and lane-line dashes are not written (the dashes are the road
marks' ``<line>`` records).

Links and junctions. Lane predecessor/successor links are written within a
road (across its lane sections). Links between roads and junctions are not
written yet: LaneMap junction areas are lane sections of one road, and lanes
linked across LaneMap roads are reported in the road's ``hdmap:unlinked``
user data.

The output is deterministic (same map and options, same bytes; the header date
is ``metadata["date"]`` or empty, never the clock) and written atomically.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lxml import etree

from .._atomic import atomic_path
from ..errors import FileFormatError, HdmapError, InputFileNotFoundError
from ._errors import file_errors
from ..lanemap import Boundary, Lane, LaneMap, Marking, _natural_key
from ._odr_geometry import Geometry, densify, eval_cubics, eval_plan_view, fit_cubics, fit_plan_view

__all__ = ["write_opendrive", "read_opendrive", "OpenDriveExportError", "VERSIONS", "CURB_WIDTH",
           "BORDER_WIDTH", "PROJ_25832"]

logger = logging.getLogger(__name__)

#: OpenDRIVE versions the writer produces.
VERSIONS = ("1.8", "1.6")
#: Nominal width (m) of the ``curb`` lane written beyond a curbstone.
CURB_WIDTH = 0.15
#: Nominal width (m) of the ``border`` lane written beyond a road border.
BORDER_WIDTH = 0.5
#: PROJ string of EPSG:25832 (ETRS89 / UTM zone 32N) written as geoReference.
PROJ_25832 = "+proj=utm +zone=32 +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +units=m +no_defs"

_SAMPLE = 0.5  # m between border samples along the reference line
_GAP = 0.05  # m: a lateral gap wider than this between lanes becomes a lane of its own
_SPLIT = 0.05  # m: lane ends closer than this along s share a lane section


class OpenDriveExportError(HdmapError, ValueError):
    """The map cannot be written as OpenDRIVE (the message names the object)."""


class _Unfit(Exception):
    """A LaneMap road does not fit the one-road structure; fall back to one road per lane."""


def _num(v: float) -> str:
    """A float as the shortest text that reads back exactly (repr), without -0."""
    v = float(v)
    if not math.isfinite(v):
        raise OpenDriveExportError(f"cannot write the non-finite number {v!r}")
    if v == 0:
        v = 0.0
    return repr(v)


# ----------------------------------------------------------------------------
# polyline helpers
# ----------------------------------------------------------------------------
def _cum(xy):
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy[:, :2], axis=0).T))])


def _project(xy, p):
    """Arc length along polyline *xy* of the point nearest to *p* (2D)."""
    a, b = xy[:-1, :2], xy[1:, :2]
    d = b - a
    L2 = np.maximum((d * d).sum(1), 1e-300)
    u = np.clip(((p[:2] - a) * d).sum(1) / L2, 0, 1)
    q = a + d * u[:, None]
    k = int(np.argmin(((q - p[:2]) ** 2).sum(1)))
    return _cum(xy)[k] + u[k] * math.sqrt(L2[k])


def _substring(xyz, s0, s1):
    """Part of a 3D polyline between arc lengths s0 < s1."""
    s = _cum(xyz)
    inner = (s > s0) & (s < s1)
    a = np.array([np.interp(s0, s, xyz[:, k]) for k in range(3)])
    b = np.array([np.interp(s1, s, xyz[:, k]) for k in range(3)])
    return np.vstack([a, xyz[inner], b])


def _extend(xyz, length):
    """The polyline extended straight by *length* at both ends."""
    def tip(p, q):
        d = p[:2] - q[:2]
        n = np.hypot(*d)
        return np.array([p[0] + d[0] / n * length, p[1] + d[1] / n * length, p[2]])
    return np.vstack([tip(xyz[0], xyz[1]), xyz, tip(xyz[-1], xyz[-2])])


def _normal_offsets(px, py, hdg, bxy):
    """Signed offset t along the left normal of each sample to polyline *bxy* (nearest hit, NaN if none)."""
    nx, ny = -np.sin(hdg), np.cos(hdg)
    a = bxy[:-1, :2]
    d = bxy[1:, :2] - a
    ax = a[None, :, 0] - px[:, None]
    ay = a[None, :, 1] - py[:, None]
    den = nx[:, None] * d[None, :, 1] - ny[:, None] * d[None, :, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (ax * d[None, :, 1] - ay * d[None, :, 0]) / den
        u = (ax * ny[:, None] - ay * nx[:, None]) / den
    ok = (u >= -1e-9) & (u <= 1 + 1e-9) & np.isfinite(t)
    t = np.where(ok, t, np.inf)
    k = np.argmin(np.abs(t), axis=1)
    out = t[np.arange(len(px)), k]
    return np.where(np.isfinite(out), out, np.nan)


# ----------------------------------------------------------------------------
# road model
# ----------------------------------------------------------------------------
@dataclass
class _Band:
    """One OpenDRIVE lane in one lane section."""

    type: str
    widths: list  # [(sOffset, [a, b, c, d])]
    mark: Boundary | None  # boundary at the outer border (None: no road mark known)
    lane: Lane | None = None
    inner: np.ndarray | None = None  # fitted t of the inner border at the section samples
    outer: np.ndarray | None = None
    id: int = 0
    preds: list = field(default_factory=list)
    succs: list = field(default_factory=list)


@dataclass
class _Section:
    s: float
    length: float
    center_mark: Boundary | None
    left: list
    right: list


@dataclass
class _Road:
    id: str
    name: str
    geoms: list
    length: float
    elevation: list
    sections: list
    objects: list = field(default_factory=list)
    notes: list = field(default_factory=list)


class _Writer:
    def __init__(self, m: LaneMap, tolerance: float, origin: np.ndarray):
        self.m = m
        self.tol = tolerance
        self.origin = origin
        self.bnd = {b.id: b for b in m.boundaries}
        self.fit_counts: dict[str, int] = {}

    def local(self, xyz):
        return np.asarray(xyz, dtype=np.float64) - self.origin

    def derived(self, ln: Lane) -> Lane:
        """A copy of *ln* whose borders are its centre line offset by half its width (virtual lines)."""
        c = ln.centerline
        d = np.gradient(c[:, :2], axis=0)
        nrm = np.hypot(d[:, 0], d[:, 1])
        if len(c) < 2 or _cum(c)[-1] < 0.1 or (nrm == 0).any():
            raise _Unfit("its centre line is shorter than 0.1 m or has repeated vertices")
        n = np.column_stack([-d[:, 1] / nrm, d[:, 0] / nrm, np.zeros(len(c))])
        half = (ln.width / 2)[:, None]
        ids = []
        for side, sign in (("left", 1.0), ("right", -1.0)):
            bid = f"{ln.id}#{side}"
            self.bnd[bid] = Boundary(bid, c + sign * n * half, "virtual", road=ln.road,
                                     provenance={"synthetic": True})
            ids.append(bid)
        return Lane(ln.id, ids[0], ids[1], c, ln.direction, ln.width, kind=ln.kind, road=ln.road,
                    section=ln.section, index=ln.index, predecessors=list(ln.predecessors),
                    successors=list(ln.successors))

    # -- one road from a group of lanes --------------------------------------
    def build(self, rid: str, name: str, lanes: list[Lane]) -> _Road:
        main = "forward" if any(ln.direction == "forward" for ln in lanes) else "backward"
        right = [ln for ln in lanes if ln.direction == main]
        rights = {ln.right for ln in right}
        inner = [ln for ln in right if ln.left not in rights]
        pieces = []
        for ln in inner:
            b = self.local(self.bnd[ln.left].xyz)
            c = self.local(ln.centerline)
            s0, s1 = _project(b, c[0]), _project(b, c[-1])
            if abs(s1 - s0) < 1e-6:
                raise _Unfit(f"lane {ln.id!r} does not run along its left boundary {ln.left!r}")
            piece = _substring(b, min(s0, s1), max(s0, s1))
            pieces.append(piece if s1 > s0 else piece[::-1])
        if not pieces:
            raise _Unfit("no lanes")
        # chain the pieces end to start (gaps of a few metres, e.g. where a dashed line stops, are bridged)
        starts = np.array([p[0, :2] for p in pieces])
        ends = np.array([p[-1, :2] for p in pieces])
        nxt = {}
        for i, e in enumerate(ends):
            d = np.hypot(*(starts - e).T)
            d[i] = np.inf
            j = int(np.argmin(d))
            if d[j] < 3.0:
                nxt[i] = j
        firsts = [i for i in range(len(pieces)) if i not in nxt.values()]
        if len(firsts) != 1:
            raise _Unfit(f"the innermost left borders form {len(firsts)} chains, not one")
        order, i = [], firsts[0]
        while i is not None and i not in order:
            order.append(i)
            i = nxt.get(i)
        if len(order) != len(pieces):
            raise _Unfit("the innermost left borders do not form one chain")
        ref = pieces[order[0]]
        for k in order[1:]:
            p = pieces[k]
            d = ref[-1, :2] - ref[-2, :2]
            ahead = ((p[:, :2] - ref[-1, :2]) @ d) > 1e-6 * np.hypot(*d)
            ref = np.vstack([ref, p[ahead]])
        keep = np.concatenate([[True], np.hypot(*np.diff(ref[:, :2], axis=0).T) > 1e-6])
        ref = ref[keep]
        if len(ref) < 2:
            raise _Unfit("reference line too short")
        # extend to the lanes of the other direction
        ext = _extend(ref, 50.0)
        s_ends = [(_project(ext, p) - 50.0) for ln in lanes for p in self.local(ln.centerline[[0, -1]])]
        lo, hi = min(0.0, min(s_ends)), max(_cum(ref)[-1], max(s_ends))
        ref = _substring(ext, lo + 50.0, hi + 50.0)
        geoms = fit_plan_view(ref[:, :2], self.tol)
        for g in geoms:
            self.fit_counts[g.kind] = self.fit_counts.get(g.kind, 0) + 1
        length = geoms[-1].s + geoms[-1].length
        # elevation along the reference border
        zs = np.array([_project(ref, p) for p in densify(ref, _SAMPLE)])
        zz = densify(ref, _SAMPLE)[:, 2]
        srt = np.argsort(zs, kind="stable")
        zs, zz = zs[srt], zz[srt]
        zs, uniq = np.unique(np.clip(zs * length / max(zs[-1], 1e-9), 0, length), return_index=True)
        elevation = fit_cubics(zs, zz[uniq], self.tol) if len(zs) >= 2 else [(0.0, np.array([zz[0], 0, 0, 0]))]
        # dense sampling of the fitted reference line for projections
        sd = np.linspace(0, length, max(2, int(length / 0.1) + 1))
        dx, dy, _ = eval_plan_view(geoms, sd)
        dense = np.column_stack([dx, dy])
        # lane s ranges
        rng = {}
        for ln in lanes:
            c = self.local(ln.centerline)
            a, b = _project(dense, c[0]), _project(dense, c[-1])
            rng[ln.id] = (min(a, b), max(a, b))
        stations = sorted({0.0, length, *[v for r in rng.values() for v in r]})
        cuts = [stations[0]]
        for v in stations[1:]:
            if v - cuts[-1] > _SPLIT:
                cuts.append(v)
        cuts[-1] = length
        sections = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            mid = (a + b) / 2
            present = [ln for ln in lanes if rng[ln.id][0] <= mid <= rng[ln.id][1]]
            sections.append(self.section(a, b, geoms, present, right, lanes))
        self.link(sections)
        return _Road(rid, name, geoms, length, elevation, sections)

    def offsets(self, bid, px, py, h, what):
        b = self.local(self.bnd[bid].xyz)
        t = _normal_offsets(px, py, h, _extend(b, 1.0)[:, :2])
        bad = np.isnan(t)
        if bad.all() or bad.mean() > 0.2:
            raise _Unfit(f"{what}: boundary {bid!r} not found along the lane")
        if bad.any():
            k = np.arange(len(t))
            t[bad] = np.interp(k[bad], k[~bad], t[~bad])
        return t

    def section(self, a, b, geoms, present, right_all, lanes):
        n = max(2, int(math.ceil((b - a) / _SAMPLE)) + 1)
        s = np.linspace(a, b, n)
        px, py, h = eval_plan_view(geoms, s)
        rset = {ln.id for ln in right_all}
        used = {ln.left for ln in present} | {ln.right for ln in present}
        sides = {}
        for side, sign in (("right", -1.0), ("left", 1.0)):
            ls = [ln for ln in present if (ln.id in rset) == (side == "right")]
            tt = {}
            for ln in ls:
                tt[ln.id] = (self.offsets(ln.left, px, py, h, f"lane {ln.id!r}"),
                             self.offsets(ln.right, px, py, h, f"lane {ln.id!r}"))
            for ln in ls:
                got = float(np.median(np.abs(tt[ln.id][1] - tt[ln.id][0])))
                if abs(got - ln.width_m) > max(1.0, 0.3 * ln.width_m):
                    raise _Unfit(f"lane {ln.id!r}: its boundaries {ln.left!r} and {ln.right!r} are {got:.2f} m "
                                 f"apart but its width is {ln.width_m:.2f} m")
            ls.sort(key=lambda ln: float(np.mean(sign * (tt[ln.id][0] + tt[ln.id][1]))))
            cur = np.zeros(n)
            bands = []

            def add(kind, target, mark, lane=None):
                nonlocal cur
                w = np.maximum(sign * (target - cur), 0.0)
                pieces = fit_cubics(s - a, w, self.tol)
                fw = np.maximum(eval_cubics(pieces, s - a), 0.0)
                bands.append(_Band(kind, pieces, mark, lane, cur.copy(), cur + sign * fw))
                cur = cur + sign * fw

            for ln in ls:
                t_in, t_out = tt[ln.id]
                if np.any(sign * (t_out - t_in) < -_GAP):
                    raise _Unfit(f"lane {ln.id!r}: its borders cross or are swapped")
                gap = sign * (t_in - cur)
                if gap.max() > _GAP:
                    add("median" if not bands and side == "left" else "none", t_in, self.bnd[ln.left])
                elif gap.min() < -_GAP:
                    raise _Unfit(f"lane {ln.id!r} overlaps its inner neighbour")
                add("driving", t_out, self.bnd[ln.right], ln)
            # unused road boundaries beyond the outermost lane
            road = lanes[0].road
            extra = []
            edge_reached = bool(bands) and bands[-1].mark is not None and \
                bands[-1].mark.kind in ("curbstone", "road_border")
            for bd in () if edge_reached else self.m.boundaries:  # nothing of the road lies beyond its edge
                if bd.road != road or bd.id in used or len(bd.xyz) < 2:
                    continue
                t = _normal_offsets(px, py, h, _extend(self.local(bd.xyz), 1.0)[:, :2])
                if np.isnan(t).any() or (sign * (t - cur)).min() <= _GAP or np.abs(t - cur).max() > 30:
                    continue
                extra.append((float(np.mean(sign * t)), bd.id, t, bd))
            for _, _, t, bd in sorted(extra, key=lambda e: (e[0], _natural_key(e[1]))):
                if (sign * (t - cur)).min() <= _GAP:
                    continue
                add("shoulder" if bd.kind == "road_border" else "none", t, bd)
                if bd.kind in ("curbstone", "road_border"):
                    break
            if bands and bands[-1].mark is not None and bands[-1].mark.kind in ("curbstone", "road_border"):
                wnom = CURB_WIDTH if bands[-1].mark.kind == "curbstone" else BORDER_WIDTH
                add("curb" if bands[-1].mark.kind == "curbstone" else "border", cur + sign * wnom, None)
            for k, bd in enumerate(bands):
                bd.id = int(sign * (k + 1))
            sides[side] = bands
        center = None
        for side in ("right", "left"):
            for bd in sides[side]:
                if bd.lane is not None and bd is sides[side][0]:
                    center = self.bnd[bd.lane.left]
                break
            if center is not None:
                break
        return _Section(a, b - a, center, sides["left"], sides["right"])

    def link(self, sections):
        for s0, s1 in zip(sections[:-1], sections[1:]):
            for side in ("left", "right"):
                for a in getattr(s0, side):
                    for b in getattr(s1, side):
                        if a.lane is not None and b.lane is not None:
                            la, lb = a.lane, b.lane
                            if side == "right":
                                ok = la.id == lb.id or lb.id in la.successors or la.id in lb.predecessors
                            else:
                                ok = la.id == lb.id or lb.id in la.predecessors or la.id in lb.successors
                        elif a.lane is None and b.lane is None and a.type == b.type:
                            # same kind of strip touching at the section boundary
                            lo_a, hi_a = sorted((a.inner[-1], a.outer[-1]))
                            lo_b, hi_b = sorted((b.inner[0], b.outer[0]))
                            ok = min(hi_a, hi_b) - max(lo_a, lo_b) > 0.5 * min(hi_a - lo_a, hi_b - lo_b)
                        else:
                            ok = False
                        wa = abs(a.outer[-1] - a.inner[-1])
                        wb = abs(b.outer[0] - b.inner[0])
                        if ok and wa > 1e-6 and wb > 1e-6:
                            a.succs.append(b.id)
                            b.preds.append(a.id)


# ----------------------------------------------------------------------------
# XML
# ----------------------------------------------------------------------------
_PATTERN_TYPE = {"solid": "solid", "dashed": "broken", "solid_solid": "solid solid",
                 "solid_dashed": "solid broken", "dashed_solid": "broken solid"}
_COLORS_18 = {"standard", "blue", "green", "red", "white", "yellow", "black", "orange", "violet"}
_COLORS_16 = {"standard", "blue", "green", "red", "white", "yellow", "orange"}


def _sub(parent, tag, **attrs):
    return etree.SubElement(parent, tag, {k: v for k, v in attrs.items() if v is not None})


def _user(parent, code, value):
    _sub(parent, "userData", code=code, value=value)


def _road_mark(parent, bd: Boundary | None, s_ref_dir_same: bool, version: str):
    if bd is None:
        rm = _sub(parent, "roadMark", sOffset="0.0", type="none", color="standard")
        return rm
    colors = _COLORS_18 if version == "1.8" else _COLORS_16
    color = bd.color if bd.color in colors else "standard"
    if bd.kind == "virtual":
        typ = "none"
    elif bd.kind == "curbstone":
        typ = "curb"
    elif bd.kind == "road_border":
        typ = "edge"
    else:
        pat = bd.pattern or "solid"
        if not s_ref_dir_same and pat in ("solid_dashed", "dashed_solid"):
            pat = {"solid_dashed": "dashed_solid", "dashed_solid": "solid_dashed"}[pat]
        typ = _PATTERN_TYPE[pat]
    weight = "bold" if bd.kind == "line_thick" else "standard" if bd.kind == "line_thin" else None
    width = bd.width_m if bd.kind in ("line_thin", "line_thick") and bd.width_m and bd.width_m > 0 else None
    height = bd.height_m if bd.kind == "curbstone" and bd.height_m and bd.height_m > 0 else None
    rm = _sub(parent, "roadMark", sOffset="0.0", type=typ, weight=weight, color=color,
              width=None if width is None else _num(width), height=None if height is None else _num(height))
    if typ in ("broken", "solid solid", "solid broken", "broken solid"):
        w = width or 0.12
        parts = typ.split(" ")
        sep = w * 2  # distance between the centres of a double line (not measured)
        tofs = [0.0] if len(parts) == 1 else [sep / 2, -sep / 2]  # left to right looking along s
        tp = _sub(rm, "type", name=f"hdmap {typ}", width=_num(w * len(parts) + (sep - w if len(parts) > 1 else 0)))
        for part, to in zip(parts, tofs):
            if part == "broken" and bd.stroke_m and bd.stroke_m > 0:
                length, space = bd.stroke_m, bd.gap_m if bd.gap_m and bd.gap_m > 0 else bd.stroke_m
            elif part == "broken":
                length, space = 3.0, 6.0
            else:
                length, space = 1.0, 0.0
            _sub(tp, "line", length=_num(length), space=_num(space), tOffset=_num(to), sOffset="0.0",
                 rule="caution" if part == "broken" else "noPassing", width=_num(w))
    if not bd.provenance.get("synthetic"):
        _user(rm, "hdmap:boundary", bd.id)
    return rm


def _boundary_along(bd: Boundary, geoms, a, b, origin) -> bool:
    """Whether boundary *bd* runs in the direction of increasing s (near s in [a, b])."""
    x, y, h = eval_plan_view(geoms, np.array([(a + b) / 2]))
    xy = bd.xyz[:, :2] - origin[:2]
    k = int(np.argmin(np.hypot(xy[:, 0] - x[0], xy[:, 1] - y[0])))
    k = min(k, len(xy) - 2)
    d = xy[k + 1] - xy[k]
    return bool(d[0] * math.cos(h[0]) + d[1] * math.sin(h[0]) >= 0)


def _geometry_xml(pv, g: Geometry):
    ge = _sub(pv, "geometry", s=_num(g.s), x=_num(g.x), y=_num(g.y), hdg=_num(g.hdg), length=_num(g.length))
    if g.kind == "line":
        _sub(ge, "line")
    elif g.kind == "arc":
        _sub(ge, "arc", curvature=_num(g.params["curvature"]))
    elif g.kind == "spiral":
        _sub(ge, "spiral", curvStart=_num(g.params["curvStart"]), curvEnd=_num(g.params["curvEnd"]))
    else:
        p = g.params
        _sub(ge, "paramPoly3", **{k: _num(p[k]) for k in ("aU", "bU", "cU", "dU", "aV", "bV", "cV", "dV")},
             pRange=p["pRange"])


def _objects(w: _Writer, roads: list[_Road], m: LaneMap):
    """Attach crosswalk / stop line / symbol markings to the nearest road as objects."""
    out = {r.id: [] for r in roads}
    cache = {}
    for r in roads:
        sd = np.linspace(0, r.length, max(2, int(r.length / 0.1) + 1))
        x, y, h = eval_plan_view(r.geoms, sd)
        cache[r.id] = (sd, np.column_stack([x, y]), h)
    for mk in sorted(m.markings, key=lambda o: _natural_key(o.id)):
        if mk.type in ("lane_line", "crosswalk_bar"):
            continue
        poly = w.local(mk.polygon)
        c = poly[:, :2].mean(0)
        best = None
        for r in roads:
            sd, dense, h = cache[r.id]
            d = np.hypot(*(dense - c).T)
            k = int(np.argmin(d))
            if best is None or d[k] < best[0]:
                best = (d[k], r, k)
        if best is None or best[0] > 40:
            continue
        _, r, k = best
        sd, dense, h = cache[r.id]
        s0, hd = float(sd[k]), float(h[k])
        px, py = dense[k]
        t0 = -(c[0] - px) * math.sin(hd) + (c[1] - py) * math.cos(hd)
        z0 = float(eval_cubics(r.elevation, np.array([s0]))[0])
        ox, oy = px - t0 * math.sin(hd), py + t0 * math.cos(hd)
        du, dv = poly[:, 0] - ox, poly[:, 1] - oy
        u = du * math.cos(hd) + dv * math.sin(hd)
        v = -du * math.sin(hd) + dv * math.cos(hd)
        out[r.id].append((mk, s0, t0, u, v, poly[:, 2] - z0))
    return out


def _header_bounds(roads, origin):
    pts = []
    for r in roads:
        sd = np.linspace(0, r.length, max(2, int(r.length) + 1))
        x, y, _ = eval_plan_view(r.geoms, sd)
        pts.append(np.column_stack([x, y]))
    p = np.vstack(pts)
    return p[:, 1].max(), p[:, 1].min(), p[:, 0].max(), p[:, 0].min()


def write_opendrive(lanemap: LaneMap, path: str | os.PathLike, *, version: str = "1.8", tolerance: float = 0.01,
                    name: str | None = None) -> Path:
    """Write *lanemap* as an ASAM OpenDRIVE file (see the module documentation for the conventions).

    Parameters
    ----------
    lanemap : LaneMap
        The map; it is validated first.
    path : path-like
        Output ``.xodr`` file, replaced atomically (a failure leaves the old file or none).
    version : {"1.8", "1.6"}
        OpenDRIVE version written.
    tolerance : float
        Largest deviation (m) of the fitted reference line, lane borders and elevation
        from the map's polylines; must be in (0, 1].
    name : str, optional
        Header ``name``; ``metadata["name"]`` or the file stem by default.

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    InvalidMapError
        The map breaks a rule of the LaneMap model.
    OpenDriveExportError
        A lane cannot be exported (the message names it), or a bad option.
    """
    if version not in VERSIONS:
        raise OpenDriveExportError(f"version {version!r} is not supported; choose one of {', '.join(VERSIONS)}")
    if not (isinstance(tolerance, (int, float)) and 0 < tolerance <= 1):
        raise OpenDriveExportError(f"tolerance must be a number in (0, 1] m, not {tolerance!r}")
    lanemap.validate()
    path = Path(path)
    if not lanemap.lanes:
        raise OpenDriveExportError("the map has no lanes; OpenDRIVE needs at least one road with a lane")
    allxyz = np.vstack([b.xyz for b in lanemap.boundaries] + [ln.centerline for ln in lanemap.lanes])
    origin = np.round((allxyz.min(0) + allxyz.max(0)) / 2)
    w = _Writer(lanemap, float(tolerance), origin)
    groups: dict[str, list[Lane]] = {}
    for ln in lanemap.lanes:
        groups.setdefault(ln.road if ln.road is not None else "", []).append(ln)
    roads: list[_Road] = []
    for key in sorted(groups, key=_natural_key):
        lanes = sorted(groups[key], key=lambda o: _natural_key(o.id))
        rid = str(len(roads) + 1)
        try:
            roads.append(w.build(rid, key, lanes))
            continue
        except _Unfit as exc:
            logger.info("road %r: %s; writing one OpenDRIVE road per lane", key, exc)
            reason = str(exc)
        for ln in lanes:
            rid = str(len(roads) + 1)
            try:
                r = w.build(rid, key, [ln])
            except _Unfit as exc:
                logger.warning("lane %r: %s; writing its borders from its centre line and width", ln.id, exc)
                try:
                    r = w.build(rid, key, [w.derived(ln)])
                except _Unfit as exc2:
                    raise OpenDriveExportError(f"lane {ln.id!r} (road {key!r}) cannot be exported: {exc2}") from None
                r.notes.append(("hdmap:derived", f"lane {ln.id}: {exc}"))
            r.notes.append(("hdmap:fallback", reason))
            roads.append(r)
    objs = _objects(w, roads, lanemap)

    # ---- XML ----------------------------------------------------------------
    root = etree.Element("OpenDRIVE")
    major, minor = version.split(".")
    north, south, east, west = _header_bounds(roads, origin)
    meta = lanemap.metadata
    hname = name if name is not None else str(meta.get("name", path.stem))
    date = str(meta.get("date", ""))
    hd = _sub(root, "header", revMajor=major, revMinor=minor, name=hname, version="1", date=date,
              north=_num(north), south=_num(south), east=_num(east), west=_num(west), vendor="hdmap")
    geo = _sub(hd, "geoReference")
    if lanemap.epsg == 25832:
        proj = PROJ_25832
    else:
        import pyproj

        proj = pyproj.CRS.from_epsg(lanemap.epsg).to_proj4()
    geo.text = etree.CDATA(proj)
    _sub(hd, "offset", x=_num(origin[0]), y=_num(origin[1]), z=_num(origin[2]), hdg="0.0")
    _user(hd, "hdmap:epsg", str(lanemap.epsg))
    for r in roads:
        re_ = _sub(root, "road", name=r.name, length=_num(r.length), id=r.id, junction="-1", rule="RHT")
        _sub(re_, "type", s="0.0", type="town")
        pv = _sub(re_, "planView")
        for g in r.geoms:
            _geometry_xml(pv, g)
        ep = _sub(re_, "elevationProfile")
        for s0, c in r.elevation:
            _sub(ep, "elevation", s=_num(s0), a=_num(c[0]), b=_num(c[1]), c=_num(c[2]),
                 d=_num(c[3]))
        lanes_el = _sub(re_, "lanes")
        for sec in r.sections:
            ls = _sub(lanes_el, "laneSection", s=_num(sec.s))
            for side in ("left", "center", "right"):
                if side == "center":
                    ce = _sub(_sub(ls, "center"), "lane", id="0", type="none", level="false")
                    if sec.center_mark is not None:
                        same = _boundary_along(sec.center_mark, r.geoms, sec.s, sec.s + sec.length, origin)
                    _road_mark(ce, sec.center_mark, sec.center_mark is None or same, version)
                    continue
                bands = getattr(sec, side)
                if not bands:
                    continue
                se = _sub(ls, side)
                for bd in (bands[::-1] if side == "left" else bands):
                    le = _sub(se, "lane", id=str(bd.id), type=bd.type, level="false")
                    if bd.preds or bd.succs:
                        lk = _sub(le, "link")
                        for p in sorted(set(bd.preds)):
                            _sub(lk, "predecessor", id=str(p))
                        for p in sorted(set(bd.succs)):
                            _sub(lk, "successor", id=str(p))
                    for s0, c in bd.widths:
                        _sub(le, "width", sOffset=_num(s0), a=_num(c[0]), b=_num(c[1]), c=_num(c[2]), d=_num(c[3]))
                    same = True
                    if bd.mark is not None:
                        same = _boundary_along(bd.mark, r.geoms, sec.s, sec.s + sec.length, origin)
                    _road_mark(le, bd.mark, same, version)
                    if bd.lane is not None:
                        _user(le, "hdmap:lane", bd.lane.id)
        if objs[r.id]:
            oe = _sub(re_, "objects")
            for mk, s0, t0, u, v, z in objs[r.id]:
                if mk.type == "crosswalk":
                    typ, sub = "crosswalk", None
                elif mk.type == "stop_line":
                    typ, sub = "roadMark", "stopLine"
                else:
                    typ, sub = "roadMark", mk.type
                ob = _sub(oe, "object", id=mk.id, name=mk.type, type=typ, subtype=sub, s=_num(s0), t=_num(t0),
                          zOffset="0.0", hdg="0.0", orientation="none")
                ol = _sub(_sub(ob, "outlines"), "outline", id="0", closed="true", outer="true",
                          fillType="paint" if typ == "roadMark" and version == "1.8" else None)
                for k in range(len(u)):
                    _sub(ol, "cornerLocal", u=_num(u[k]), v=_num(v[k]), z=_num(z[k]), height="0.0", id=str(k))
                _user(ob, "hdmap:marking", mk.id)
        for code, value in r.notes:
            _user(re_, code, value)
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True, standalone=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    logger.info("wrote %s: %d roads, fitted geometries %s", path, len(roads), w.fit_counts)
    return path


# ----------------------------------------------------------------------------
# reader
# ----------------------------------------------------------------------------
_DRIVABLE = {"driving", "entry", "exit", "onRamp", "offRamp", "connectingRamp", "slipLane", "mwyEntry", "mwyExit",
             "bus", "taxi", "HOV", "bidirectional", "shared"}
_MARK_KIND = {"solid": ("line_thin", "solid"), "broken": ("line_thin", "dashed"),
              "solid solid": ("line_thin", "solid_solid"), "solid broken": ("line_thin", "solid_dashed"),
              "broken solid": ("line_thin", "dashed_solid"), "broken broken": ("line_thin", "dashed"),
              "botts dots": ("line_thin", "dashed"), "custom": ("line_thin", "solid"),
              "curb": ("curbstone", None), "edge": ("road_border", None), "grass": ("road_border", None)}


def _f(el, name, default=0.0):
    v = el.get(name)
    return default if v is None else float(v)


def _records(parent, tag, s_name="s"):
    if parent is None:
        return []
    out = [(_f(e, s_name), np.array([_f(e, "a"), _f(e, "b"), _f(e, "c"), _f(e, "d")])) for e in parent.findall(tag)]
    return sorted(out, key=lambda r: r[0])


def _poly_eval(recs, s):
    if not recs:
        return np.zeros_like(s)
    return eval_cubics(recs, s)


def _geometries(road):
    out = []
    pv = road.find("planView")
    for ge in (pv.findall("geometry") if pv is not None else []):
        kids = [k for k in ge if isinstance(k.tag, str) and k.tag != "userData"]
        if not kids:
            continue
        k = kids[0]
        params = {a: (float(v) if a != "pRange" else v) for a, v in k.attrib.items()}
        if k.tag == "paramPoly3":
            params.setdefault("pRange", "normalized")
            for c in ("aU", "bU", "cU", "dU", "aV", "bV", "cV", "dV"):
                params.setdefault(c, 0.0)
        if k.tag == "poly3":
            for c in "abcd":
                params.setdefault(c, 0.0)
        out.append(Geometry(k.tag, _f(ge, "s"), _f(ge, "x"), _f(ge, "y"), _f(ge, "hdg"), _f(ge, "length"), params))
    return sorted(out, key=lambda g: g.s)


def _user_value(el, code):
    for u in el.findall("userData"):
        if u.get("code") == code:
            return u.get("value")
    return None


@file_errors("OpenDRIVE")
def read_opendrive(path: str | os.PathLike, *, step: float = 0.5, epsg: int = 25832) -> LaneMap:
    """Read an ASAM OpenDRIVE file (1.4 to 1.8) into a :class:`~hdmap.LaneMap`.

    Every road's reference line (line, arc, spiral, poly3, paramPoly3), lane offset,
    lane widths (or ``border`` records) and elevation are sampled every *step* metres
    of s. Each lane border of each lane section becomes a :class:`Boundary` (kind and
    pattern from its ``roadMark``: broken -> dashed, curb -> curbstone, none or
    missing -> virtual), each drivable lane (driving, entry, exit, ramps, bus, ...) a
    :class:`Lane` (direction from its side and the road's traffic rule; links within a
    road, to linked roads and through junction connections), crosswalk and roadMark
    objects with an outline :class:`Marking` polygons.

    Coordinates: the header ``offset`` is added as the standard defines it
    (rotation by its ``hdg``, then translation); with a ``geoReference`` the
    points are then transformed from that CRS to *epsg*. Without one, local
    coordinates are kept and ``metadata["georeferenced"]`` is False.

    Provenance of every boundary names the road, lane section and lane it came
    from, and the source boundary (``hdmap:boundary`` user data) of files hdmap wrote.

    Raises
    ------
    InputFileNotFoundError, FileFormatError
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileNotFoundError(path)
    try:
        tree = etree.parse(str(path), etree.XMLParser(remove_blank_text=True, resolve_entities=False,
                                                       no_network=True, huge_tree=True))
    except etree.XMLSyntaxError as exc:
        raise FileFormatError(f"{path}: not valid XML ({exc})") from None
    root = tree.getroot()
    if etree.QName(root).localname != "OpenDRIVE":
        raise FileFormatError(f"{path}: root element is <{root.tag}>, not <OpenDRIVE>")
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = etree.QName(el).localname
    header = root.find("header")
    if header is None:
        raise FileFormatError(f"{path}: no <header>")
    off = header.find("offset")
    ox, oy, oz, oh = (0.0, 0.0, 0.0, 0.0) if off is None else (_f(off, "x"), _f(off, "y"), _f(off, "z"),
                                                                 _f(off, "hdg"))
    geo = header.find("geoReference")
    proj = (geo.text or "").strip() if geo is not None else ""
    transformer = None
    if proj:
        import pyproj

        try:
            src = pyproj.CRS.from_user_input(proj)
            dst = pyproj.CRS.from_epsg(epsg)
            if not src.equals(dst, ignore_axis_order=True) and \
                    not (epsg == 25832 and proj.replace(" ", "") == PROJ_25832.replace(" ", "")):
                transformer = pyproj.Transformer.from_crs(src, dst, always_xy=True)
        except pyproj.exceptions.CRSError as exc:
            raise FileFormatError(f"{path}: geoReference {proj!r} is not a valid PROJ string ({exc})") from None

    def world(x, y, z):
        xw = x * math.cos(oh) - y * math.sin(oh) + ox
        yw = x * math.sin(oh) + y * math.cos(oh) + oy
        zw = z + oz
        if transformer is not None:
            xw, yw = transformer.transform(xw, yw)
        return np.column_stack([xw, yw, zw])

    boundaries: list[Boundary] = []
    lanes: dict[str, Lane] = {}
    markings: list[Marking] = []
    lane_key: dict[tuple, str] = {}  # (road id, section index, lane id) -> LaneMap lane id
    road_info = {}
    for road in root.findall("road"):
        rid = road.get("id", "")
        geoms = _geometries(road)
        if not geoms:
            continue
        length = _f(road, "length", geoms[-1].s + geoms[-1].length)
        rule = road.get("rule", "RHT")
        elev = _records(road.find("elevationProfile"), "elevation")
        lanes_el = road.find("lanes")
        if lanes_el is None:
            continue
        loff = _records(lanes_el, "laneOffset")
        secs = sorted(lanes_el.findall("laneSection"), key=lambda e: _f(e, "s"))
        road_info[rid] = (road, len(secs))
        for si, sec in enumerate(secs):
            a = _f(sec, "s")
            b = _f(secs[si + 1], "s") if si + 1 < len(secs) else length
            if b - a <= 1e-9:
                continue
            n = max(2, int(math.ceil((b - a) / step)) + 1)
            s = np.linspace(a, b, n)
            px, py, h = eval_plan_view(geoms, s)
            z = _poly_eval(elev, s)
            t0 = _poly_eval(loff, s)
            nx, ny = -np.sin(h), np.cos(h)

            def pts(t):
                return world(px + nx * t, py + ny * t, z)

            def mark_of(lane_el):
                rms = lane_el.findall("roadMark")
                rm = min(rms, key=lambda e: _f(e, "sOffset")) if rms else None
                typ = rm.get("type", "none") if rm is not None else "none"
                kind, pat = _MARK_KIND.get(typ, ("virtual", None))
                if kind == "line_thin" and rm.get("weight") == "bold":
                    kind = "line_thick"
                info = dict(kind=kind, pattern=pat)
                if rm is not None and kind.startswith("line"):
                    info["width_m"] = float(rm.get("width")) if rm.get("width") else None
                    col = rm.get("color")
                    info["color"] = "white" if col in (None, "standard") else col
                    ln = rm.find("type/line")
                    if pat and "dashed" in pat and ln is not None:
                        for ln2 in rm.findall("type/line"):
                            if float(ln2.get("space", 0)) > 0:
                                ln = ln2
                                break
                        info["stroke_m"] = _f(ln, "length")
                        info["gap_m"] = _f(ln, "space")
                if rm is not None and kind == "curbstone" and rm.get("height"):
                    info["height_m"] = float(rm.get("height"))
                src = _user_value(rm, "hdmap:boundary") if rm is not None else None
                return info, src

            def add_boundary(tag, t, lane_el):
                info, src = mark_of(lane_el)
                prov = {"opendrive": {"road": rid, "section": si, "lane": int(lane_el.get("id", 0))}}
                if src is not None:
                    prov["opendrive"]["boundary"] = src
                bid = f"r{rid}_s{si}_{tag}"
                boundaries.append(Boundary(bid, pts(t), road=rid, provenance=prov, **info))
                return bid

            center = sec.find("center/lane")
            center_id = add_boundary("c", t0, center) if center is not None else None
            for side, sign in (("left", 1.0), ("right", -1.0)):
                ls = sorted(sec.findall(f"{side}/lane"), key=lambda e: abs(int(e.get("id", 0))))
                cur, cur_id = t0.copy(), center_id
                if cur_id is None:
                    cur_id = add_boundary("c", t0, etree.Element("lane", id="0"))
                    center_id = cur_id
                for le in ls:
                    lid = int(le.get("id", 0))
                    ds = s - a
                    if le.find("border") is not None:
                        outer = _poly_eval(_records(le, "border", "sOffset"), ds)
                    else:
                        outer = cur + sign * _poly_eval(_records(le, "width", "sOffset"), ds)
                    out_id = add_boundary(f"{'l' if sign > 0 else 'r'}{abs(lid)}", outer, le)
                    if le.get("type", "none") in _DRIVABLE:
                        forward = (sign < 0) == (rule != "LHT")
                        if le.get("direction") == "reversed":
                            forward = not forward
                        cl = pts((cur + outer) / 2)
                        width = np.abs(outer - cur)
                        # left boundary seen in the driving direction
                        hi, lo = (out_id, cur_id) if sign > 0 else (cur_id, out_id)
                        left, right = (hi, lo) if forward else (lo, hi)
                        key = f"r{rid}_s{si}_{lid}"
                        lanes[key] = Lane(key, left, right, cl if forward else cl[::-1], "forward" if forward else
                                          "backward", width if forward else width[::-1], kind="lane", road=rid,
                                          section=f"r{rid}_s{si}", index=abs(lid))
                        lane_key[(rid, si, lid)] = key
                    cur, cur_id = outer, out_id
        # objects
        objs = road.find("objects")
        for ob in (objs.findall("object") if objs is not None else []):
            typ = ob.get("type", "")
            if typ not in ("crosswalk", "roadMark"):
                continue
            corners = ob.findall("outlines/outline/cornerLocal") or ob.findall("outline/cornerLocal")
            croad = ob.findall("outlines/outline/cornerRoad") or ob.findall("outline/cornerRoad")
            s0, t0o = _f(ob, "s"), _f(ob, "t")
            x0, y0, h0 = eval_plan_view(geoms, np.array([s0]))
            z0 = _poly_eval(elev, np.array([s0]))[0] + _f(ob, "zOffset")
            hdg = h0[0] + _f(ob, "hdg")
            cx, cy = x0[0] - math.sin(h0[0]) * t0o, y0[0] + math.cos(h0[0]) * t0o
            if corners:
                u = np.array([_f(c, "u") for c in corners])
                v = np.array([_f(c, "v") for c in corners])
                zz = np.array([_f(c, "z") for c in corners]) + z0
                xs = cx + u * math.cos(hdg) - v * math.sin(hdg)
                ys = cy + u * math.sin(hdg) + v * math.cos(hdg)
            elif croad:
                cs = np.array([_f(c, "s") for c in croad])
                ct = np.array([_f(c, "t") for c in croad])
                bx, by, bh = eval_plan_view(geoms, cs)
                xs, ys = bx - np.sin(bh) * ct, by + np.cos(bh) * ct
                zz = _poly_eval(elev, cs) + np.array([_f(c, "dz") for c in croad])
            elif ob.get("length") and ob.get("width"):
                L, W = _f(ob, "length"), _f(ob, "width")
                u = np.array([-L / 2, L / 2, L / 2, -L / 2])
                v = np.array([-W / 2, -W / 2, W / 2, W / 2])
                xs = cx + u * math.cos(hdg) - v * math.sin(hdg)
                ys = cy + u * math.sin(hdg) + v * math.cos(hdg)
                zz = np.full(4, z0)
            else:
                continue
            ring = world(xs, ys, zz)
            keep = np.concatenate([[True], np.hypot(*np.diff(ring[:, :2], axis=0).T) > 1e-9])
            ring = ring[keep]
            if len(ring) > 1 and np.array_equal(ring[0], ring[-1]):
                ring = ring[:-1]
            if len(ring) < 3:
                continue
            sub = ob.get("subtype") or ""
            mtype = "crosswalk" if typ == "crosswalk" else "stop_line" if sub.lower() in ("stopline", "stop_line") \
                else sub if sub.startswith("arrow_") else "other"
            markings.append(Marking(f"r{rid}_o{ob.get('id', len(markings))}_{len(markings)}", ring, mtype, road=rid))

    # ---- links ----------------------------------------------------------------
    pairs = set()

    def drives_to_end(key, at_end):
        return lanes[key].direction == "forward" if at_end else lanes[key].direction == "backward"

    def add_pair(ka, a_end, kb):
        # a lane at one end of its section touches lane kb; orient by a's driving direction
        if ka not in lanes or kb not in lanes or ka == kb:
            return
        pairs.add((ka, kb) if drives_to_end(ka, a_end) else (kb, ka))

    junctions = {j.get("id"): j for j in root.findall("junction")}
    for rid, (road, nsec) in road_info.items():
        secs = sorted(road.find("lanes").findall("laneSection"), key=lambda e: _f(e, "s"))
        for si, sec in enumerate(secs):
            for le in sec.findall("left/lane") + sec.findall("right/lane"):
                lid = int(le.get("id", 0))
                ka = lane_key.get((rid, si, lid))
                if ka is None:
                    continue
                for tag, at_end in (("successor", True), ("predecessor", False)):
                    for lk in le.findall(f"link/{tag}"):
                        other = int(lk.get("id", 0))
                        osi = si + 1 if at_end else si - 1
                        if 0 <= osi < nsec:
                            add_pair(ka, at_end, lane_key.get((rid, osi, other)))
                            continue
                        rl = road.find(f"link/{tag}")
                        if rl is None or rl.get("elementType", "road") != "road":
                            continue
                        orid = rl.get("elementId")
                        if orid not in road_info:
                            continue
                        osec = 0 if rl.get("contactPoint", "start") == "start" else road_info[orid][1] - 1
                        add_pair(ka, at_end, lane_key.get((orid, osec, other)))
        # junction connections from this incoming road
        for tag, at_end in (("successor", True), ("predecessor", False)):
            rl = road.find(f"link/{tag}")
            if rl is None or rl.get("elementType") != "junction" or rl.get("elementId") not in junctions:
                continue
            for con in junctions[rl.get("elementId")].findall("connection"):
                if con.get("incomingRoad") != rid:
                    continue
                crid = con.get("connectingRoad")
                if crid not in road_info:
                    continue
                csec = 0 if con.get("contactPoint", "start") == "start" else road_info[crid][1] - 1
                for ll in con.findall("laneLink"):
                    ka = lane_key.get((rid, nsec - 1 if at_end else 0, int(ll.get("from", 0))))
                    add_pair(ka, at_end, lane_key.get((crid, csec, int(ll.get("to", 0)))))
    for a, b in sorted(pairs):
        if b not in lanes[a].successors:
            lanes[a].successors.append(b)
        if a not in lanes[b].predecessors:
            lanes[b].predecessors.append(a)
    meta = {"source": "opendrive", "file": path.name,
            "opendrive_version": f"{header.get('revMajor', '')}.{header.get('revMinor', '')}",
            "georeferenced": bool(proj), "offset": [ox, oy, oz, oh]}
    if not proj:
        meta["note"] = "no geoReference: coordinates are the file's local coordinates (offset applied)"
    return LaneMap(boundaries, list(lanes.values()), markings, epsg=epsg, metadata=meta).validate_read(path)

"""Lanelet2 OSM export and import of a :class:`~hdmap.LaneMap`.

:func:`write_lanelet2` writes a map as a Lanelet2 OSM file (nodes in WGS84
lat/lon, elevation in the ``ele`` tag) that ``lanelet2.io.load`` reads without
errors; :func:`read_lanelet2` reads any Lanelet2 OSM file back into a LaneMap.
Neither needs the ``lanelet2`` package (lxml, pyproj, numpy only).

Conventions (checked against Lanelet2 1.2 and its sources)
----------------------------------------------------------
Orientation
    A lanelet's driving direction is given by its ``left``/``right`` members
    alone: the loader (``lanelet2_io`` ``OsmHandlerLoad.cpp``) calls
    ``geometry::align(left, right)``, which inverts the left bound unless the
    right bound's middle lies to its right and vice versa. Ways therefore keep
    the orientation of the hdmap boundary they come from, and an "inverted"
    shared bound needs no special representation in OSM. Lanes of opposite
    directions reference the same centre-line way.
Double lines
    ``subtype`` ``solid_dashed``/``dashed_solid`` name the lines left to right
    in the direction of the way, as hdmap's ``pattern`` does in the direction
    of the boundary, so the pattern is written unchanged. Lanelet2's traffic
    rules (``GenericTrafficRules.cpp``) allow ``solid_dashed`` changes to the
    left, ``dashed_solid`` to the right, and swap the two for a lanelet that
    sees the way inverted (i.e. the change is allowed from the dashed side);
    ``solid``/``solid_solid``, curbs, road borders and virtual lines allow none.
Sharing
    Every boundary is cut at each station where a lane using it begins or ends,
    and those cuts are propagated across lanes (a cut on a lane's left bound is
    projected onto its right bound, and so on) until neighbouring lanes are cut
    at the same stations. Each piece is one way, shared by all lanelets using
    it; a lane becomes one lanelet per piece (tag ``hdmap:lane`` holds the lane
    id, ``hdmap:part`` the part number). Cuts closer than ``CUT_TOL`` (5 cm) are
    merged. The end nodes of a lane and of each of its successors are merged
    into one node (at their mean position) when they are less than ``JOIN_TOL``
    (1.5 m) apart, so that Lanelet2's routing sees them as successors.
Markings
    ``stop_line`` markings become ways ``type=stop_line`` along the long axis of
    the marking's minimum rotated rectangle (tag ``width`` = short side);
    ``crosswalk`` markings become lanelets ``subtype=crosswalk one_way=no``
    bounded by the rectangle's long sides (ways ``type=pedestrian_marking``);
    ``arrow_*`` markings become closed ways ``type=arrow subtype=<direction>``.
    Crosswalk bars and individual dash polygons are not written.
Origin
    The projection origin (lat, lon) is written as tags ``hdmap:origin_lat``,
    ``hdmap:origin_lon`` (and ``hdmap:epsg``, ``hdmap:origin_easting``,
    ``hdmap:origin_northing``) directly under the ``<osm>`` root, which
    Lanelet2's loader ignores, and in a sidecar ``<file>.origin.json``. Load
    with ``lanelet2.io.load(path, UtmProjector(Origin(lat, lon)))``; the
    projected x/y are then the map coordinates minus the origin's easting and
    northing (for a map in the UTM zone of the origin, e.g. EPSG:25832).
Autoware
    With ``autoware=True`` every node also has ``local_x``/``local_y`` (metres
    east/north of the origin's projected position, i.e. the same x/y as
    Lanelet2's UtmProjector gives) and ``mgrs_code`` (zone, band, 100 km square
    and 100 m digits of the node, as TIER IV's Vector Map Builder writes), and
    the root holds ``<MetaInfo format_version="1.2.0" map_version="..."/>``.
    Autoware uses ``local_x``/``local_y`` only with ``projector_type: Local``
    in its ``map_projector_info.yaml``; with ``projector_type: MGRS`` it
    projects lat/lon itself. The sidecar JSON records both choices.

Not modelled: regulatory elements (traffic signs, right of way, speed limits:
the traffic rules infer the limit from ``location``), areas, lane markings'
dash positions, crosswalk bars.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._atomic import atomic_path, write_text_atomic
from ..errors import (CorruptFileError, CRSError, EmptyInputError, FileFormatError, InputFileNotFoundError,
                      ParameterError)
from ._errors import file_errors
from ..lanemap import Boundary, Lane, LaneMap, Marking

__all__ = ["write_lanelet2", "read_lanelet2", "CUT_TOL", "JOIN_TOL", "AUTOWARE_FORMAT_VERSION"]

logger = logging.getLogger(__name__)

#: Cuts of a boundary closer than this (m) are merged into one.
CUT_TOL = 0.05
#: End nodes of a lane and its successor closer than this (m) are merged into one node.
JOIN_TOL = 1.5
#: A lane is split into lanelets where its neighbours are cut, but into no lanelet shorter than this (m) on
#: both sides.
MIN_PART = 0.5
#: ``format_version`` of Autoware's ``<MetaInfo>`` element.
AUTOWARE_FORMAT_VERSION = "1.2.0"
LOCATIONS = ("urban", "nonurban")

_LINE_TYPES = ("line_thin", "line_thick")
_EDGE_TYPES = ("road_border", "wall", "fence", "guard_rail", "jersey_barrier", "gate", "rail", "keepout")
_CURB_LOW_M = 0.05  # curbs lower than this are ``subtype=low`` (passable)


def _natural_key(s: str):
    parts = re.split(r"([0-9]+)", s)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), s


# ----------------------------------------------------------------------------
# polyline helpers (2D stations along a 3D polyline)
# ----------------------------------------------------------------------------
class _Line:
    """A 3D polyline with cumulative horizontal arc length, for projecting and cutting."""

    def __init__(self, xyz: np.ndarray):
        self.xyz = np.asarray(xyz, dtype=np.float64)
        seg = np.hypot(*np.diff(self.xyz[:, :2], axis=0).T)
        self.s = np.concatenate([[0.0], np.cumsum(seg)])
        self.length = float(self.s[-1])

    def at(self, s: float) -> np.ndarray:
        s = min(max(s, 0.0), self.length)
        return np.array([np.interp(s, self.s, self.xyz[:, k]) for k in range(3)])

    def project(self, p) -> float:
        """Station of the point of the line nearest to *p* (horizontal)."""
        a, b = self.xyz[:-1, :2], self.xyz[1:, :2]
        d = b - a
        dd = (d * d).sum(axis=1)
        t = np.where(dd > 0, ((np.asarray(p[:2]) - a) * d).sum(axis=1) / np.where(dd > 0, dd, 1), 0.0)
        t = np.clip(t, 0.0, 1.0)
        q = a + t[:, None] * d
        dist = np.hypot(*(q - np.asarray(p[:2])).T)
        i = int(np.argmin(dist))
        return float(self.s[i] + t[i] * (self.s[i + 1] - self.s[i]))

    def piece(self, s0: float, s1: float) -> np.ndarray:
        """Vertices between stations s0 < s1: the two cut points and the vertices strictly inside."""
        inner = (self.s > s0 + 1e-3) & (self.s < s1 - 1e-3)
        return np.vstack([self.at(s0), self.xyz[inner], self.at(s1)])


def _signed_side(line: np.ndarray, p) -> float:
    """Signed horizontal distance of *p* from a polyline: > 0 left of it, < 0 right."""
    a, b = line[:-1, :2], line[1:, :2]
    d = b - a
    dd = (d * d).sum(axis=1)
    t = np.clip(np.where(dd > 0, ((np.asarray(p[:2]) - a) * d).sum(axis=1) / np.where(dd > 0, dd, 1), 0.0), 0, 1)
    q = a + t[:, None] * d
    dist = np.hypot(*(q - np.asarray(p[:2])).T)
    i = int(np.argmin(dist))
    cross = d[i, 0] * (p[1] - a[i, 1]) - d[i, 1] * (p[0] - a[i, 0])
    return float(math.copysign(dist[i], cross))


def _middle(line: np.ndarray) -> np.ndarray:
    return line[len(line) // 2] if len(line) > 2 else (line[0] + line[-1]) / 2


def _resample(line: np.ndarray, n: int) -> np.ndarray:
    ln = _Line(line)
    if ln.length == 0:
        return np.repeat(line[:1], n, axis=0)
    return np.array([ln.at(f * ln.length) for f in np.linspace(0.0, 1.0, n)])


def _rectangle(polygon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The long sides (a, b) of the minimum rotated rectangle of a polygon, each (2, 3), parallel and alike oriented."""
    import shapely

    rect = shapely.minimum_rotated_rectangle(shapely.Polygon(polygon[:, :2]))
    c = np.asarray(rect.exterior.coords)[:4]
    if len(c) < 4:  # degenerate (collinear) polygon: a line
        c = np.asarray(shapely.LineString(polygon[:, :2]).minimum_rotated_rectangle.coords)
        c = np.vstack([c[:2], c[:2][::-1]]) if len(c) >= 2 else np.vstack([polygon[:2, :2]] * 2)
    z = float(polygon[:, 2].mean())
    e01, e12 = np.hypot(*(c[1] - c[0])), np.hypot(*(c[2] - c[1]))
    if e01 >= e12:
        a, b = c[[0, 1]], c[[3, 2]]
    else:
        a, b = c[[1, 2]], c[[0, 3]]
    zz = np.full((2, 1), z)
    return np.hstack([a, zz]), np.hstack([b, zz])


# ----------------------------------------------------------------------------
# coordinate reference systems
# ----------------------------------------------------------------------------
def _transformers(epsg: int):
    import pyproj

    try:
        crs = pyproj.CRS.from_epsg(epsg)
    except pyproj.exceptions.CRSError as exc:
        raise CRSError(f"map: EPSG:{epsg} is not a known CRS ({exc}); give the map's EPSG code") from None
    if not crs.is_projected:
        raise CRSError(f"map: EPSG:{epsg} ({crs.name}) is not a projected CRS in metres; "
                       "Lanelet2 export needs projected coordinates (e.g. EPSG:25832)")
    try:
        fwd = pyproj.Transformer.from_crs(crs, 4326, always_xy=True)
        inv = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    except pyproj.exceptions.ProjError as exc:
        raise CRSError(f"map: no transformation from EPSG:{epsg} to WGS84 ({exc})") from None
    return fwd, inv


def _to_lonlat(fwd, xy: np.ndarray, epsg: int) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = fwd.transform(xy[:, 0], xy[:, 1], errcheck=False)
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        raise CRSError(f"map: coordinates cannot be transformed from EPSG:{epsg} to WGS84 lat/lon "
                       "(outside the CRS's area or no geographic transformation)")
    return lon, lat


_BANDS = "CDEFGHJKLMNPQRSTUVWX"


def _mgrs(lat: float, lon: float) -> str:
    """MGRS reference with 100 m precision (e.g. ``32UMV123456``); Norway/Svalbard zone exceptions ignored."""
    import pyproj

    zone = int((lon + 180) // 6) + 1
    tr = pyproj.Transformer.from_crs(4326, 32600 + zone if lat >= 0 else 32700 + zone, always_xy=True)
    e, n = tr.transform(lon, lat)
    band = _BANDS[min(max(int((lat + 80) // 8), 0), len(_BANDS) - 1)]
    cols = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")[(zone - 1) % 3]
    rows = "ABCDEFGHJKLMNPQRSTUV"
    col = cols[int(e // 100_000) - 1]
    row = rows[(int(n // 100_000) + (5 if zone % 2 == 0 else 0)) % 20]
    return f"{zone:02d}{band}{col}{row}{int(e % 100_000) // 100:03d}{int(n % 100_000) // 100:03d}"


# ----------------------------------------------------------------------------
# writer
# ----------------------------------------------------------------------------
@dataclass
class _Way:
    keys: list  # node keys in order
    tags: list  # [(k, v)]


class _UnionFind:
    def __init__(self):
        self.parent: dict = {}

    def find(self, k):
        self.parent.setdefault(k, k)
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = sorted((ra, rb), key=repr)
            self.parent[hi] = lo


def _num(v: float) -> str:
    """Shortest text that reads back as the same float."""
    return repr(float(v))


def _fmt(v: float, digits: int) -> str:
    text = f"{v:.{digits}f}"
    return "0" + text[2:] if text.startswith("-0") and float(text) == 0 else text


def _boundary_tags(b: Boundary) -> list:
    tags = []
    if b.kind in _LINE_TYPES:
        tags += [("type", b.kind), ("subtype", b.pattern or "solid")]
        if b.color:
            tags.append(("color", b.color))
        if b.width_m is not None:
            tags.append(("width", _num(b.width_m)))
    elif b.kind == "curbstone":
        low = b.height_m is not None and b.height_m < _CURB_LOW_M
        tags += [("type", "curbstone"), ("subtype", "low" if low else "high")]
        if b.height_m is not None:
            tags.append(("height", _num(b.height_m)))
    else:
        tags.append(("type", b.kind))
        if b.height_m is not None:
            tags.append(("height", _num(b.height_m)))
    tags.append(("hdmap:boundary", b.id))
    if b.kind in _LINE_TYPES:
        for key, val in (("hdmap:stroke_m", b.stroke_m), ("hdmap:gap_m", b.gap_m)):
            if val is not None:
                tags.append((key, _num(val)))
    if b.road is not None:
        tags.append(("hdmap:road", b.road))
    return tags


def _plan(m: LaneMap):
    """Cut the boundaries and lanes. Returns (lines, cuts, lane_parts, skipped).

    lane_parts: {lane id: [(left (bid, k0, k1), right (bid, k0, k1)), ...]} in driving order,
    k0/k1 cut indices of the boundary in the driving direction.
    """
    lines = {b.id: _Line(b.xyz) for b in m.boundaries}
    cuts: dict[str, list[float]] = {b.id: [0.0, lines[b.id].length] for b in m.boundaries}

    def add(bid, s) -> bool:
        c = cuts[bid]
        s = min(max(s, 0.0), lines[bid].length)
        if any(abs(s - x) < CUT_TOL for x in c):
            return False
        c.append(s)
        c.sort()
        return True

    spans = {}
    skipped = []
    for ln in sorted(m.lanes, key=lambda x: _natural_key(x.id)):
        sp = {}
        for side in ("left", "right"):
            bid = getattr(ln, side)
            s0, s1 = lines[bid].project(ln.centerline[0]), lines[bid].project(ln.centerline[-1])
            sp[side] = (bid, s0, s1)
        if any(abs(s1 - s0) < 2 * CUT_TOL for _, s0, s1 in sp.values()):
            logger.warning("lane %r: its centerline ends project onto less than %.2f m of a boundary "
                           "(the lane lies beyond its boundary); the lane is not exported", ln.id, 2 * CUT_TOL)
            skipped.append(ln.id)
            continue
        spans[ln.id] = sp
        for bid, s0, s1 in sp.values():
            add(bid, s0)
            add(bid, s1)

    def snap(bid, s) -> float:
        c = cuts[bid]
        return c[int(np.argmin([abs(x - s) for x in c]))]

    # the lane's end stations are now cuts; snap spans onto them
    spans = {lid: {side: (bid, snap(bid, s0), snap(bid, s1)) for side, (bid, s0, s1) in sp.items()}
             for lid, sp in spans.items()}
    # propagate cuts across each lane until neighbours are cut at the same stations
    for _ in range(50):
        changed = False
        for lid, sp in spans.items():
            for src, dst in (("left", "right"), ("right", "left")):
                bs, a0, a1 = sp[src]
                bd, d0, d1 = sp[dst]
                lo, hi = sorted((a0, a1))
                dlo, dhi = sorted((d0, d1))
                for s in list(cuts[bs]):
                    if lo + CUT_TOL <= s <= hi - CUT_TOL:
                        t = lines[bd].project(lines[bs].at(s))
                        if dlo + CUT_TOL <= t <= dhi - CUT_TOL:
                            changed |= add(bd, t)
        if not changed:
            break
    else:
        logger.warning("cut propagation did not converge; some lanelets use composite bounds")

    lane_parts = {}
    for lid, sp in spans.items():
        ln = next(x for x in m.lanes if x.id == lid)
        center = _Line(ln.centerline)
        events = []  # (fraction along the lane, side, cut index)
        ends = {}
        for side in ("left", "right"):
            bid, s0, s1 = sp[side]
            c = cuts[bid]
            k0, k1 = c.index(s0), c.index(s1)
            ends[side] = (bid, k0, k1)
            step = 1 if k1 > k0 else -1
            for k in range(k0 + step, k1, step):
                f = center.project(lines[bid].at(c[k])) / max(center.length, 1e-9)
                events.append((f, side, k))
        # group events from both sides closer than CUT_TOL along the centerline; a group with both sides is a split
        events.sort()
        groups: list[list] = []
        for ev in events:
            if groups and (ev[0] - groups[-1][-1][0]) * center.length < 2 * CUT_TOL:
                groups[-1].append(ev)
            else:
                groups.append([ev])
        splits = []
        for g in groups:
            sides = {side: k for _, side, k in g}
            if len(sides) == 2:
                splits.append((sides["left"], sides["right"]))
        # a split closer than MIN_PART to the previous one or to the lane's end on both sides makes no part
        # (cut propagation over many short boundaries can leave cuts centimetres apart)
        bl, br = ends["left"][0], ends["right"][0]
        end = (ends["left"][2], ends["right"][2])
        parts = []
        prev = (ends["left"][1], ends["right"][1])
        for kl, kr in splits:
            if _apart(cuts[bl], cuts[br], prev, (kl, kr)) and _apart(cuts[bl], cuts[br], (kl, kr), end):
                parts.append(((bl, prev[0], kl), (br, prev[1], kr)))
                prev = (kl, kr)
        parts.append(((bl, prev[0], end[0]), (br, prev[1], end[1])))
        lane_parts[lid] = parts
    return lines, cuts, lane_parts, skipped


def _apart(left_cuts, right_cuts, a, b) -> bool:
    """Whether cut pairs *a* and *b* (indices into the left and right bounds' cuts) lie at least MIN_PART
    apart on either side."""
    return (abs(left_cuts[a[0]] - left_cuts[b[0]]) >= MIN_PART or
            abs(right_cuts[a[1]] - right_cuts[b[1]]) >= MIN_PART)


def _build(m: LaneMap, location: str):
    """Nodes (key -> xyz), ways (list of _Way), relations (list of (members, tags)) of the OSM file."""
    lines, cuts, lane_parts, skipped = _plan(m)
    bounds = {b.id: b for b in m.boundaries}
    lanes = {ln.id: ln for ln in m.lanes}
    node_xyz: dict = {}
    ways: dict = {}  # key -> _Way, in insertion order

    def cut_key(bid, k):
        key = ("c", bid, k)
        if key not in node_xyz:
            node_xyz[key] = lines[bid].at(cuts[bid][k])
        return key

    # one way per boundary piece, in natural boundary order
    for b in sorted(m.boundaries, key=lambda x: _natural_key(x.id)):
        c = cuts[b.id]
        for k in range(len(c) - 1):
            geom = lines[b.id].piece(c[k], c[k + 1])
            keys = [cut_key(b.id, k)]
            for j, p in enumerate(geom[1:-1]):
                key = ("v", b.id, k, j)
                node_xyz[key] = p
                keys.append(key)
            keys.append(cut_key(b.id, k + 1))
            tags = _boundary_tags(b) + [("hdmap:piece", str(k))]
            ways[("p", b.id, k)] = _Way(keys, tags)

    def bound_way(bid, k0, k1):
        lo, hi = sorted((k0, k1))
        if hi - lo == 1:
            return ("p", bid, lo)
        key = ("q", bid, lo, hi)  # composite bound over several pieces (not shared with neighbours)
        if key not in ways:
            keys = []
            for k in range(lo, hi):
                keys += ways[("p", bid, k)].keys[(1 if k > lo else 0):]
            tags = _boundary_tags(bounds[bid]) + [("hdmap:piece", f"{lo}-{hi - 1}")]
            ways[key] = _Way(keys, tags)
        return key

    # merge end nodes of successive lanes, closest pairs first; never merge two cuts of one boundary
    uf = _UnionFind()
    members: dict = {}  # root -> set of (boundary id, cut index) in its class
    joins = []
    for lid in sorted(lane_parts, key=_natural_key):
        last = lane_parts[lid][-1]
        for sid in lanes[lid].successors:
            if sid not in lane_parts:
                continue
            first = lane_parts[sid][0]
            pairs = [(cut_key(last[i][0], last[i][2]), cut_key(first[i][0], first[i][1])) for i in (0, 1)]
            gap = max(float(np.hypot(*(node_xyz[a][:2] - node_xyz[b][:2]))) for a, b in pairs)
            joins.append((gap, lid, sid, pairs))
    joins.sort(key=lambda j: (j[0], _natural_key(j[1]), _natural_key(j[2])))

    def cls(key):
        return members.get(uf.find(key), {(key[1], key[2])})

    for gap, lid, sid, pairs in joins:
        ok = gap < JOIN_TOL
        merged = [cls(a) | cls(b) for a, b in pairs]
        for (a, b), mset in zip(pairs, merged):
            if uf.find(a) != uf.find(b) and len({bid for bid, _ in mset}) < len(mset):
                ok = False  # would collapse a piece of a boundary
        if uf.find(pairs[0][0]) == uf.find(pairs[1][0]) or uf.find(pairs[0][0]) == uf.find(pairs[1][1]):
            ok = False
        if not ok:
            logger.warning("lane %r and its successor %r do not meet (ends %.2f m apart or inconsistent with "
                           "other joins); Lanelet2 will not see them as successors", lid, sid, gap)
            continue
        for (a, b), mset in zip(pairs, merged):
            uf.union(a, b)
            members[uf.find(a)] = mset
    relations = []
    for lid in sorted(lane_parts, key=_natural_key):
        ln = lanes[lid]
        parts = lane_parts[lid]
        for i, (left, right) in enumerate(parts):
            tags = [("type", "lanelet"), ("subtype", "road"), ("location", location), ("one_way", "yes"),
                    ("hdmap:lane", lid), ("hdmap:part", str(i))]
            for key, val in (("hdmap:road", ln.road), ("hdmap:section", ln.section),
                             ("hdmap:index", None if ln.index is None else str(ln.index))):
                if val is not None:
                    tags.append((key, val))
            if ln.kind != "lane":
                tags.append(("hdmap:kind", ln.kind))
            relations.append(([("way", bound_way(*left), "left"), ("way", bound_way(*right), "right")], tags))

    # markings
    for mk in sorted(m.markings, key=lambda x: _natural_key(x.id)):
        if mk.type == "stop_line":
            a, b = _rectangle(mk.polygon)
            axis = (a + b) / 2
            width = float(np.hypot(*(a[0, :2] - b[0, :2])))
            keys = []
            for j, p in enumerate(axis):
                node_xyz[("m", mk.id, j)] = p
                keys.append(("m", mk.id, j))
            ways[("m", mk.id)] = _Way(keys, [("type", "stop_line"), ("width", _fmt(width, 3)),
                                              ("hdmap:marking", mk.id)])
        elif mk.type == "crosswalk":
            a, b = _rectangle(mk.polygon)
            members = []
            for side, line in (("left", a), ("right", b)):
                keys = []
                for j, p in enumerate(line):
                    node_xyz[("m", mk.id, side, j)] = p
                    keys.append(("m", mk.id, side, j))
                ways[("m", mk.id, side)] = _Way(keys, [("type", "pedestrian_marking"), ("hdmap:marking", mk.id)])
                members.append(("way", ("m", mk.id, side), side))
            relations.append((members, [("type", "lanelet"), ("subtype", "crosswalk"), ("location", location),
                                        ("one_way", "no"), ("hdmap:marking", mk.id)]))
        elif mk.type.startswith("arrow_"):
            keys = []
            for j, p in enumerate(mk.polygon):
                node_xyz[("m", mk.id, j)] = p
                keys.append(("m", mk.id, j))
            ways[("m", mk.id)] = _Way(keys + keys[:1], [("type", "arrow"), ("subtype", mk.type[len("arrow_"):]),
                                                        ("hdmap:marking", mk.id)])

    # resolve merged nodes
    groups: dict = {}
    for key in node_xyz:
        groups.setdefault(uf.find(key), []).append(key)
    pos = {}
    for root, members in groups.items():
        pos[root] = np.mean([node_xyz[k] for k in members], axis=0) if len(members) > 1 else node_xyz[members[0]]
    for w in ways.values():
        out = []
        for k in w.keys:
            r = uf.find(k)
            if not out or out[-1] != r:
                out.append(r)
        w.keys = out
    return pos, ways, relations, skipped


def _default_origin(fwd, m: LaneMap, epsg: int) -> tuple[float, float]:
    xy = np.vstack([b.xyz[:, :2] for b in m.boundaries] + [ln.centerline[:, :2] for ln in m.lanes])
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    lon, lat = _to_lonlat(fwd, ((lo + hi) / 2)[None, :], epsg)
    return round(float(lat[0]), 4), round(float(lon[0]), 4)


def write_lanelet2(lanemap: LaneMap, path: str | os.PathLike, *, origin: tuple[float, float] | None = None,
                   autoware: bool = False, location: str = "urban", sidecar: bool = True,
                   map_version: str = "1.0.0") -> Path:
    """Write *lanemap* as a Lanelet2 OSM file (see the module documentation for the conventions).

    Parameters
    ----------
    lanemap : LaneMap
        A valid map in a projected CRS (``lanemap.epsg``).
    path : path-like
        Output ``.osm`` file, replaced atomically.
    origin : (lat, lon), optional
        Projection origin for ``UtmProjector(Origin(lat, lon))``; by default the centre
        of the map's bounding box rounded to 1e-4 degrees.
    autoware : bool
        Also write Autoware's ``local_x``/``local_y``/``mgrs_code`` node tags and ``<MetaInfo>``.
    location : {"urban", "nonurban"}
        ``location`` tag of the lanelets (Lanelet2 infers the speed limit from it).
    sidecar : bool
        Also write ``<path>.origin.json`` with the origin, EPSG and how to load the file.
    map_version : str
        ``map_version`` of Autoware's ``<MetaInfo>`` (only with ``autoware=True``).

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    InvalidMapError
        The map breaks a rule of the model (:meth:`LaneMap.validate`).
    EmptyInputError
        The map has no boundaries and no markings to write.
    CRSError
        The map's EPSG code is not a projected CRS that can be transformed to WGS84.
    ValueError
        A bad *origin* or *location*.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from hdmap import LaneMap, Boundary, Lane
    >>> b1 = Boundary("b1", [[692000, 5343800, 480], [692010, 5343800, 480]], "line_thin", pattern="solid")
    >>> b2 = Boundary("b2", [[692000, 5343803, 480], [692010, 5343803, 480]], "curbstone", height_m=0.12)
    >>> lane = Lane("l1", left="b2", right="b1", centerline=[[692000, 5343801.5, 480], [692010, 5343801.5, 480]],
    ...             direction="forward", width=[3.0, 3.0])
    >>> out = write_lanelet2(LaneMap([b1, b2], [lane]), pathlib.Path(tempfile.mkdtemp()) / "map.osm")
    >>> [ln.id for ln in read_lanelet2(out).lanes]
    ['l1#0']
    """
    from lxml import etree

    from .._version import __version__

    if not isinstance(lanemap, LaneMap):
        raise TypeError(f"write_lanelet2: lanemap must be a LaneMap, not {type(lanemap).__name__}")
    lanemap.validate()
    if location not in LOCATIONS:
        raise ValueError(f"write_lanelet2: location {location!r} is not one of {', '.join(LOCATIONS)}")
    if not lanemap.boundaries and not lanemap.markings:
        raise EmptyInputError(f"{path}: the map has no boundaries, lanes or markings; nothing to export")
    epsg = lanemap.epsg
    fwd, inv = _transformers(epsg)
    if origin is None:
        if not lanemap.boundaries:
            raise EmptyInputError(f"{path}: the map has no boundaries to place the origin; give origin=(lat, lon)")
        origin = _default_origin(fwd, lanemap, epsg)
    try:
        olat, olon = (float(v) for v in origin)
    except (TypeError, ValueError):
        raise ParameterError(f"write_lanelet2: origin (--origin) must be (lat, lon) in degrees, not {origin!r}") from None
    if not (-90 < olat < 90 and -180 <= olon <= 180):
        raise ParameterError(f"write_lanelet2: origin (--origin) ({olat}, {olon}) is not a valid (lat, lon) in degrees; "
                             "give LAT,LON near the data, e.g. 48.2486,11.6245")
    e0, n0 = (float(v) for v in inv.transform(olon, olat))
    if not (math.isfinite(e0) and math.isfinite(n0)):
        raise CRSError(f"write_lanelet2: origin ({olat}, {olon}) cannot be projected to EPSG:{epsg}")

    pos, ways, relations, skipped = _build(lanemap, location)

    # ids: nodes, then ways, then relations, one id space (Lanelet2 needs unique ids across primitives)
    used_nodes = []
    seen = set()
    for w in ways.values():
        for k in w.keys:
            if k not in seen:
                seen.add(k)
                used_nodes.append(k)
    node_id = {k: i + 1 for i, k in enumerate(used_nodes)}
    way_id = {k: len(node_id) + i + 1 for i, k in enumerate(ways)}
    xyz = np.array([pos[k] for k in used_nodes]) if used_nodes else np.zeros((0, 3))
    lon, lat = _to_lonlat(fwd, xyz[:, :2], epsg) if len(xyz) else (np.zeros(0), np.zeros(0))

    root = etree.Element("osm", version="0.6", generator=f"hdmap {__version__}")
    root.append(etree.Comment(
        f" projection origin lat={olat} lon={olon}: load with "
        f"lanelet2.io.load(path, lanelet2.projection.UtmProjector(lanelet2.io.Origin({olat}, {olon}))) "))
    if autoware:
        etree.SubElement(root, "MetaInfo", format_version=AUTOWARE_FORMAT_VERSION, map_version=str(map_version))
    if len(xyz):
        etree.SubElement(root, "bounds", minlat=_fmt(lat.min(), 10), minlon=_fmt(lon.min(), 10),
                         maxlat=_fmt(lat.max(), 10), maxlon=_fmt(lon.max(), 10))
    for k, v in (("hdmap:origin_lat", repr(olat)), ("hdmap:origin_lon", repr(olon)), ("hdmap:epsg", str(epsg)),
                 ("hdmap:origin_easting", _fmt(e0, 4)), ("hdmap:origin_northing", _fmt(n0, 4))):
        etree.SubElement(root, "tag", k=k, v=v)
    for i, k in enumerate(used_nodes):
        node = etree.SubElement(root, "node", id=str(node_id[k]), visible="true", version="1",
                                lat=_fmt(lat[i], 10), lon=_fmt(lon[i], 10))
        if autoware:
            etree.SubElement(node, "tag", k="mgrs_code", v=_mgrs(lat[i], lon[i]))
            etree.SubElement(node, "tag", k="local_x", v=_fmt(xyz[i, 0] - e0, 4))
            etree.SubElement(node, "tag", k="local_y", v=_fmt(xyz[i, 1] - n0, 4))
        etree.SubElement(node, "tag", k="ele", v=_fmt(xyz[i, 2], 4))
    for key, w in ways.items():
        way = etree.SubElement(root, "way", id=str(way_id[key]), visible="true", version="1")
        for k in w.keys:
            etree.SubElement(way, "nd", ref=str(node_id[k]))
        for k, v in w.tags:
            etree.SubElement(way, "tag", k=k, v=v)
    rel_base = len(node_id) + len(way_id)
    for i, (members, tags) in enumerate(relations):
        rel = etree.SubElement(root, "relation", id=str(rel_base + i + 1), visible="true", version="1")
        for typ, ref, role in members:
            etree.SubElement(rel, "member", type=typ, ref=str(way_id[ref]), role=role)
        for k, v in tags:
            etree.SubElement(rel, "tag", k=k, v=v)
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    if sidecar:
        info = {
            "format": "lanelet2",
            "file": path.name,
            "origin": {"lat": olat, "lon": olon},
            "epsg": epsg,
            "origin_projected": {"easting": round(e0, 4), "northing": round(n0, 4)},
            "load": f"lanelet2.io.load('{path.name}', lanelet2.projection.UtmProjector("
                    f"lanelet2.io.Origin({olat}, {olon})))",
            "note": "Lanelet2 x/y = map coordinates (EPSG:%d) minus origin_projected, when the map CRS is the "
                    "UTM zone of the origin" % epsg,
            "skipped_lanes": skipped,
        }
        if autoware:
            info["autoware"] = {
                "format_version": AUTOWARE_FORMAT_VERSION, "map_version": str(map_version),
                "local_xy": "metres east/north of origin_projected; use map_projector_info.yaml "
                            "'projector_type: Local' to use them, or 'projector_type: MGRS' with "
                            f"mgrs_grid {_mgrs(olat, olon)[:5]} to use lat/lon"}
        write_text_atomic(path.with_name(path.name + ".origin.json"), json.dumps(info, indent=2) + "\n")
    return path


# ----------------------------------------------------------------------------
# reader
# ----------------------------------------------------------------------------
def _tags(elem) -> dict:
    return {t.get("k"): t.get("v") for t in elem.findall("tag")}


def _float(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


_PATTERNS = ("solid", "dashed", "solid_solid", "solid_dashed", "dashed_solid")


def _boundary_from_way(wid: int, xyz: np.ndarray, tags: dict, fname: str, used: bool) -> Boundary | None:
    """A Boundary for a way, or None if the way is not a boundary (symbols, signs, stop lines...)."""
    typ, sub = tags.get("type", ""), tags.get("subtype", "")
    prov = {"lanelet2": {"file": fname, "way": wid}}
    for key in ("type", "subtype"):
        if key in tags:
            prov["lanelet2"][key] = tags[key]
    if "hdmap:boundary" in tags:
        bid = f"{tags['hdmap:boundary']}#{tags.get('hdmap:piece', wid)}"
    else:
        bid = f"way{wid}"
    kw = dict(id=bid, xyz=xyz, provenance=prov, road=tags.get("hdmap:road"), height_m=_float(tags.get("height")))
    if typ in _LINE_TYPES:
        return Boundary(kind=typ, pattern=sub if sub in _PATTERNS else None, color=tags.get("color"),
                        width_m=_float(tags.get("width")), stroke_m=_float(tags.get("hdmap:stroke_m")),
                        gap_m=_float(tags.get("hdmap:gap_m")), **kw)
    if typ == "curbstone":
        return Boundary(kind="curbstone", **kw)
    if typ in _EDGE_TYPES:
        return Boundary(kind="road_border", **kw)
    if typ == "virtual" or used:
        return Boundary(kind="virtual", **kw)
    return None


@file_errors("Lanelet2 OSM")
def read_lanelet2(path: str | os.PathLike, *, epsg: int = 25832, origin: tuple[float, float] | None = None,
                  validate: bool = True) -> LaneMap:
    """Read a Lanelet2 OSM file into a LaneMap.

    Parameters
    ----------
    path : path-like
        A Lanelet2 ``.osm`` file (hdmap's, JOSM-edited, Autoware's).
    epsg : int
        Projected CRS of the map returned.
    origin : (lat, lon), optional
        Only for nodes without lat/lon (Autoware ``local_x``/``local_y`` only): the origin
        they are relative to; by default the one an hdmap file records.
    validate : bool
        Check the map before returning it.

    Returns
    -------
    LaneMap
        - every lanelet is a :class:`Lane` (direction ``"forward"``, ``kind`` ``"lane"`` for
          ``road``/``highway``, else the lanelet's subtype) with id ``<hdmap:lane>#<part>`` for
          files hdmap wrote (a lane written in several parts comes back as several lanes)
          and ``lanelet<id>`` otherwise; ``left``/``right`` are its bounds, the centerline is
          the mean of the bounds resampled in the lanelet's direction (Lanelet2's alignment
          rule), ``width`` the distance between them, predecessors/successors from shared end
          nodes (a bidirectional lanelet, ``one_way=no``, is matched in both directions);
        - ways of type ``line_thin``/``line_thick``, ``curbstone``, ``road_border`` (also
          ``wall``, ``fence``, ``guard_rail``, ... as ``road_border``) and ``virtual``, and any
          other way used as a lanelet bound (as ``virtual``), are :class:`Boundary` objects
          with id ``<hdmap:boundary>#<piece>`` or ``way<id>``; the original type is in
          ``provenance["lanelet2"]``;
        - ``stop_line`` ways become ``stop_line`` markings (a rectangle ``width`` wide, 0.3 m
          if untagged), crosswalk lanelets also a ``crosswalk`` marking, ``arrow`` ways
          ``arrow_<subtype>`` markings; other ways, areas and regulatory elements are skipped.
        ``metadata["source"]`` records the file, format and origin.

    Raises
    ------
    InputFileNotFoundError
        The file does not exist.
    CorruptFileError
        The file is not well-formed XML.
    FileFormatError
        Not an OSM file, a reference to a missing node/way, a node without usable
        coordinates, or the map read is not valid.
    CRSError
        *epsg* is not a usable projected CRS.
    """
    from lxml import etree

    path = Path(path)
    if not path.is_file():
        raise InputFileNotFoundError(path)
    try:
        tree = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    except etree.XMLSyntaxError as exc:
        raise CorruptFileError(f"{path}: not well-formed XML ({exc}); the file is damaged or not an OSM file") from None
    root = tree.getroot()
    if root.tag != "osm":
        raise FileFormatError(f"{path}: root element is <{root.tag}>, not <osm>; not an OSM (Lanelet2) file")
    fwd, inv = _transformers(epsg)
    rtags = _tags(root)
    file_origin = None
    if "hdmap:origin_lat" in rtags and "hdmap:origin_lon" in rtags:
        lat0, lon0 = _float(rtags["hdmap:origin_lat"]), _float(rtags["hdmap:origin_lon"])
        if lat0 is not None and lon0 is not None:
            file_origin = (lat0, lon0)
    use_origin = origin if origin is not None else file_origin

    # nodes
    ids, lats, lons, eles, locs = [], [], [], [], []
    for n in root.iter("node"):
        t = _tags(n)
        try:
            nid = int(n.get("id"))
        except (TypeError, ValueError):
            raise FileFormatError(f"{path}: node with id {n.get('id')!r} (not an integer)") from None
        ids.append(nid)
        lats.append(_float(n.get("lat")))
        lons.append(_float(n.get("lon")))
        eles.append(_float(t.get("ele")) or 0.0)
        locs.append((_float(t.get("local_x")), _float(t.get("local_y"))))
    xyz = np.zeros((len(ids), 3))
    have = np.array([a is not None and b is not None for a, b in zip(lats, lons)], dtype=bool)
    if have.any():
        e, nn = inv.transform(np.array([lons[i] for i in np.flatnonzero(have)]),
                              np.array([lats[i] for i in np.flatnonzero(have)]), errcheck=False)
        xyz[have, 0], xyz[have, 1] = e, nn
    if (~have).any():
        if use_origin is None:
            bad = ids[int(np.flatnonzero(~have)[0])]
            raise FileFormatError(f"{path}: node {bad} has no lat/lon; for local_x/local_y coordinates give "
                                  "origin=(lat, lon)")
        e0, n0 = inv.transform(use_origin[1], use_origin[0])
        for i in np.flatnonzero(~have):
            lx, ly = locs[i]
            if lx is None or ly is None:
                raise FileFormatError(f"{path}: node {ids[i]} has neither lat/lon nor local_x/local_y")
            xyz[i, 0], xyz[i, 1] = e0 + lx, n0 + ly
    xyz[:, 2] = eles
    if not np.isfinite(xyz).all():
        bad = ids[int(np.flatnonzero(~np.isfinite(xyz).all(axis=1))[0])]
        raise FileFormatError(f"{path}: node {bad} cannot be projected to EPSG:{epsg}")
    node_index = {nid: i for i, nid in enumerate(ids)}

    # ways
    ways = {}
    for w in root.iter("way"):
        wid = int(w.get("id"))
        refs = []
        for nd in w.findall("nd"):
            ref = int(nd.get("ref"))
            if ref not in node_index:
                raise FileFormatError(f"{path}: way {wid} refers to node {ref}, which is not in the file")
            refs.append(ref)
        ways[wid] = (refs, _tags(w))

    # lanelets
    lanelets = []
    for r in root.iter("relation"):
        t = _tags(r)
        if t.get("type") != "lanelet":
            continue
        rid = int(r.get("id"))
        members = {}
        for mem in r.findall("member"):
            role = mem.get("role")
            if role in ("left", "right"):
                if role in members:
                    raise FileFormatError(f"{path}: lanelet {rid} has more than one {role} bound")
                ref = int(mem.get("ref"))
                if mem.get("type") != "way" or ref not in ways:
                    raise FileFormatError(f"{path}: lanelet {rid}: {role} bound {ref} is not a way in the file")
                members[role] = ref
        if set(members) != {"left", "right"}:
            raise FileFormatError(f"{path}: lanelet {rid} needs exactly one left and one right bound")
        lanelets.append((rid, members["left"], members["right"], t))
    used = {w for _, lw, rw, _ in lanelets for w in (lw, rw)}

    fname = path.name
    boundaries, way_bid = [], {}
    markings = []
    for wid, (refs, t) in ways.items():
        pts = xyz[[node_index[r] for r in refs]]
        typ = t.get("type", "")
        if typ == "stop_line" and wid not in used and len(pts) >= 2:
            a, b = pts[0], pts[-1]
            d = b[:2] - a[:2]
            norm = float(np.hypot(*d))
            if norm > 0:
                half = (_float(t.get("width")) or 0.3) / 2
                off = np.array([-d[1], d[0], 0.0]) / norm * half
                markings.append(Marking(t.get("hdmap:marking", f"way{wid}"), np.array([a + off, b + off, b - off, a - off]),
                                        "stop_line"))
            continue
        if typ == "arrow" and wid not in used:
            ring = pts[:-1] if len(refs) > 1 and refs[0] == refs[-1] else pts
            if len(ring) >= 3:
                markings.append(Marking(t.get("hdmap:marking", f"way{wid}"), ring,
                                        f"arrow_{t.get('subtype') or 'straight'}"))
            continue
        if len(pts) < 2:
            continue
        b = _boundary_from_way(wid, pts, t, fname, wid in used)
        if b is not None:
            boundaries.append(b)
            way_bid[wid] = b.id

    # lanes
    lane_rows = []
    for rid, lw, rw, t in lanelets:
        left = xyz[[node_index[r] for r in ways[lw][0]]]
        right = xyz[[node_index[r] for r in ways[rw][0]]]
        lrefs, rrefs = list(ways[lw][0]), list(ways[rw][0])
        if len(left) < 2 or len(right) < 2:
            raise FileFormatError(f"{path}: lanelet {rid}: a bound has fewer than 2 nodes")
        # Lanelet2's geometry::align
        if _signed_side(left, _middle(right)) >= 0:
            left, lrefs = left[::-1], lrefs[::-1]
        if _signed_side(right, _middle(left)) <= 0:
            right, rrefs = right[::-1], rrefs[::-1]
        n = max(len(left), len(right), 2)
        ls, rs = _resample(left, n), _resample(right, n)
        center = (ls + rs) / 2
        width = np.hypot(*(ls[:, :2] - rs[:, :2]).T)
        sub = t.get("subtype", "road")
        if "hdmap:lane" in t:
            lid = f"{t['hdmap:lane']}#{t.get('hdmap:part', rid)}"
        else:
            lid = f"lanelet{rid}"
        kind = t.get("hdmap:kind", "lane" if sub in ("road", "highway") else sub)
        lane_rows.append(dict(rid=rid, lane=Lane(lid, left=way_bid[lw], right=way_bid[rw], centerline=center,
                                                 direction="forward", width=width, kind=kind,
                                                 road=t.get("hdmap:road"), section=t.get("hdmap:section"),
                                                 index=int(t["hdmap:index"]) if t.get("hdmap:index", "").lstrip(
                                                     "-").isdigit() else None),
                              start=(lrefs[0], rrefs[0]), end=(lrefs[-1], rrefs[-1]),
                              oneway=t.get("one_way", "yes") not in ("no", "false")))
        if sub == "crosswalk":
            ring = np.vstack([left, right[::-1]])
            keep = np.ones(len(ring), dtype=bool)
            keep[1:] = np.any(np.diff(ring, axis=0) != 0, axis=1)
            ring = ring[keep]
            if len(ring) > 1 and np.array_equal(ring[0], ring[-1]):
                ring = ring[:-1]
            if len(ring) >= 3:
                markings.append(Marking(t.get("hdmap:marking", f"crosswalk{rid}"), ring, "crosswalk"))
    # successors: the end nodes of one lanelet are the start nodes of the other; a bidirectional
    # lanelet (one_way=no) is also matched driven the other way (bounds swapped and reversed)
    by_start: dict = {}
    for row in lane_rows:
        ends = [(row["start"], row["end"])]
        if not row["oneway"]:
            ends.append(((row["end"][1], row["end"][0]), (row["start"][1], row["start"][0])))
        row["ends"] = ends
        for start, _ in ends:
            by_start.setdefault(start, []).append(row)
    for row in lane_rows:
        for _, end in row["ends"]:
            for nxt in by_start.get(end, []):
                if nxt is not row and nxt["lane"].id not in row["lane"].successors:
                    row["lane"].successors.append(nxt["lane"].id)
                    nxt["lane"].predecessors.append(row["lane"].id)

    meta = {"source": {"format": "lanelet2", "file": str(path), "generator": root.get("generator"),
                       "origin": None if use_origin is None else {"lat": use_origin[0], "lon": use_origin[1]}}}
    m = LaneMap(boundaries, [r["lane"] for r in lane_rows], markings, epsg=epsg, metadata=meta)
    return m.validate_read(path) if validate else m

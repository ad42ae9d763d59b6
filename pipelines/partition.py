"""Split a :class:`~hdmap.LaneMap` into one map per region (municipality) for the deliveries.

:func:`partition` cuts a map along region borders, e.g. the municipal boundaries of
:func:`hdmap.municipalities.load_municipalities`, so each owner receives the part of
the network that lies on its land, and the parts join exactly again.

How the cut is made
-------------------
*Where a lane crosses a border, the lane and its boundaries are cut along one
cross-section.* The lane's centerline is cut where it meets the border (the
intersection of the centerline segment with the border segment; z and the width
profile are interpolated linearly along the segment). From that point a straight
*cut line* runs perpendicular to the centerline segment, and it cuts the lane's left
and right boundaries, every lane that shares one of those boundaries, their other
boundaries, and so on across the carriageway (each step takes the intersection
nearest to the previous one within 0.75 lane width + 0.5 m). A boundary shared by
two lanes is therefore cut at the same point for both, and a lane and its
boundaries end at the same cross-section, as Lanelet2 (bounds as long as the
lanelet) and OpenDRIVE (lane sections) want.

The exact border would not do for lanes: the TEMPUS border runs at about 4 degrees
to the B13, so a lane's two boundaries cross it some 50 m apart, and two
neighbouring lanes too. Cutting each polyline at its own crossing would leave lanes
with one bound 50 m too long and the other 50 m too short, and a piece of the shared
line needed by a lane on each side.

*Where neighbouring lanes cross at different stations,* each crossing makes a cut
line and all of them cut the whole carriageway; the pieces between two cut lines
(a *band*) go to one region together, the one holding most of the band's lane
length. Consecutive pieces that end up in the same region are joined again (the
cut point lies on the original segment, so dropping it changes nothing), so of
two cut lines 50 m apart only one survives: lanes are cut at their own border
crossing or on the cross-section through a neighbour's.

*Region of a piece.* Lane pieces and the boundary pieces they use (linked when
they overlap along the lane by more than ``max(min_length / 2, 0.05)`` m, and
always the best-overlapping piece of each side) form connected groups; a group goes
to the region holding most of its lane centerline length (most of its boundary
length if it has no lane), or is dropped if most of it lies outside every region.
A lane and the boundaries it references are thus always in the same part. Where a
boundary is not reached by a cut line (it ends short, or lies farther than the
reach), it links the lane pieces on both sides, and the lane is not cut there
(consistency wins over the exact cut); a road running *along* a border (lanes on
both sides of a shared centre line) goes whole to one side.

*Boundaries no lane uses* (edge lines, curbs of a median end, ...) are cut at their
own border crossings.

*Slivers.* A cut closer than ``min_length`` to the end of a polyline is not made
(a lane's own crossing there moves to the lane's end, so its boundaries are still
cut where the lane ends). A group whose pieces are all shorter than ``min_length``,
or that lies on a border (equally long in two regions: a line running exactly along
the border, or in two overlapping regions), takes the region of the piece before it
along the polyline (the one after it if there is none), so it joins that piece and
no tiny part is delivered.

Ids and links
-------------
An uncut object keeps its id; the pieces of a cut one are ``<id>.1``, ``<id>.2``, ...
in order along the polyline, numbered over all pieces (a piece outside every region
is dropped and its number skipped). A lane piece references the pieces of its left
and right boundaries that lie in its region and overlap it most along the lane; a
lane piece without one is dropped with a warning. Piece k's successor is piece k+1;
the first piece keeps the lane's predecessors (their last pieces), the last piece
its successors (their first pieces). Links to lanes not in a part are dropped from
that part, so every part passes :meth:`LaneMap.validate`.

Markings are not cut: each goes whole to the region holding its centroid (the
first such region in *regions* order), the members of a ``group`` (and the marking
whose id is the group) together by the centroid of all of them. A marking's
``boundary`` names the piece of that boundary in the marking's part nearest to it
(``None`` if the part holds none).

The result depends only on the input (objects are processed in input order, never
in set or hash order).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections import deque
from collections.abc import Sequence

import numpy as np
import shapely

from hdmap.errors import ParameterError
from hdmap.lanemap import Boundary, InvalidMapError, Lane, LaneMap, Marking

__all__ = ["partition"]

logger = logging.getLogger(__name__)

_SNAP = 1e-7  # m: a cut this close to a vertex is made at the vertex (no near-duplicate vertices)
_DEDUP = 1e-9  # m: cuts of one polyline this close are one cut
_REACH_FACTOR, _REACH_MARGIN = 0.75, 0.5  # cut line reach from a lane: 0.75 width + 0.5 m
_TIE = 1e-6  # m: region votes closer than this are a tie


# ----------------------------------------------------------------------------
# polylines with cuts
# ----------------------------------------------------------------------------
@dataclasses.dataclass
class _Cut:
    s: float  # station (horizontal arc length) along the polyline
    i: int  # the point lies on segment i (vertex i when t == 0)
    t: float
    xyz: np.ndarray  # computed once, shared by both pieces
    w: float | None  # width at the cut (lane centerlines)


class _Poly:
    """A boundary polyline or a lane centerline (with its width profile) and its cuts."""

    def __init__(self, obj, xyz: np.ndarray, width: np.ndarray | None, end_tol: float):
        self.obj = obj
        self.xyz = xyz
        self.width = width
        self.xy = xyz[:, :2]
        seg = np.hypot(*np.diff(self.xy, axis=0).T)
        self.s = np.concatenate([[0.0], np.cumsum(seg)])
        self.length = float(self.s[-1])
        self.end_tol = end_tol
        self.cuts: list[_Cut] = []

    def add_cut(self, i: int, t: float) -> _Cut | None:
        """Cut on segment i at fraction t; None if that is within ``end_tol`` of an end."""
        n = len(self.xyz)
        i, t = int(i), float(min(max(t, 0.0), 1.0))
        seglen = self.s[i + 1] - self.s[i]
        if t * seglen < _SNAP:
            t = 0.0
        elif (1.0 - t) * seglen < _SNAP:
            i, t = i + 1, 0.0
        if i >= n - 1 and t == 0.0:
            s = self.length
        else:
            s = float(self.s[i] + t * seglen) if t > 0 else float(self.s[i])
        if s <= self.end_tol or s >= self.length - self.end_tol:
            return None
        for c in self.cuts:
            if abs(c.s - s) <= _DEDUP:
                return c
        if t == 0.0:
            xyz = self.xyz[i].copy()
            w = None if self.width is None else float(self.width[i])
        else:
            xyz = self.xyz[i] + t * (self.xyz[i + 1] - self.xyz[i])
            w = None if self.width is None else float(self.width[i] + t * (self.width[i + 1] - self.width[i]))
        cut = _Cut(s, i, t, xyz, w)
        self.cuts.append(cut)
        self.cuts.sort(key=lambda c: c.s)
        return cut

    def slice(self, a: _Cut | None, b: _Cut | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Vertices (and widths) from cut *a* to cut *b* (None: the polyline's start / end)."""
        n = len(self.xyz)
        lo = 0 if a is None else a.i + 1
        hi = n - 1 if b is None else (b.i if b.t > 0 else b.i - 1)
        parts = ([a.xyz[None, :]] if a is not None else []) + [self.xyz[lo:hi + 1]] \
            + ([b.xyz[None, :]] if b is not None else [])
        xyz = np.vstack(parts)
        if self.width is None:
            return xyz, None
        w = ([[a.w]] if a is not None else []) + [self.width[lo:hi + 1]] + ([[b.w]] if b is not None else [])
        return xyz, np.concatenate([np.asarray(x, dtype=np.float64).ravel() for x in w])

    def project(self, pts: np.ndarray) -> np.ndarray:
        """Stations of the points of the polyline nearest to *pts* (k, 2)."""
        a, d = self.xy[:-1], np.diff(self.xy, axis=0)
        dd = (d * d).sum(axis=1)
        out = np.empty(len(pts))
        for k, p in enumerate(pts):
            t = np.clip(np.where(dd > 0, ((p - a) * d).sum(axis=1) / np.where(dd > 0, dd, 1.0), 0.0), 0.0, 1.0)
            q = a + t[:, None] * d
            j = int(np.argmin(np.hypot(*(q - p).T)))
            out[k] = self.s[j] + t[j] * (self.s[j + 1] - self.s[j])
        return out

    def line_hits(self, p: np.ndarray, u: np.ndarray) -> list[tuple[int, float, float]]:
        """Where the line through *p* perpendicular to *u* crosses the polyline: (segment, t, lateral position)."""
        f = (self.xy - p) @ u
        nrm = np.array([-u[1], u[0]])
        hits = []
        for j in range(len(f) - 1):
            fa, fb = f[j], f[j + 1]
            if fa == 0.0:
                t = 0.0
            elif fb == 0.0 and j == len(f) - 2:
                t = 1.0
            elif (fa < 0) != (fb < 0) and fb != 0.0:
                t = fa / (fa - fb)
            else:
                continue
            x = self.xy[j] + t * (self.xy[j + 1] - self.xy[j])
            hits.append((j, float(t), float((x - p) @ nrm)))
        return hits


def _nearest_hit(poly: _Poly, p, u, s_from: float, reach: float):
    best = None
    for j, t, s in poly.line_hits(p, u):
        d = abs(s - s_from)
        if d <= reach and (best is None or d < best[0]):
            best = (d, j, t, s)
    return None if best is None else best[1:]


# ----------------------------------------------------------------------------
# regions and borders
# ----------------------------------------------------------------------------
def _polygonal(key, geom):
    if not isinstance(geom, shapely.Geometry):
        raise ParameterError(f"partition: region {key!r}: geometry must be a shapely polygon, "
                             f"not {type(geom).__name__}")
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        g = geom
    else:
        parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
        g = shapely.union_all(parts) if parts else shapely.Polygon()
    if g.is_empty:
        raise ParameterError(f"partition: region {key!r}: geometry is a {geom.geom_type} without area; "
                             "give a polygon in the map's CRS")
    return g


def _border_segments(geoms) -> np.ndarray:
    """All ring segments of the region polygons, (k, 2, 2), duplicates (shared borders) removed."""
    segs = []
    for g in geoms:
        for ring in shapely.get_rings(shapely.get_parts(g)):
            c = shapely.get_coordinates(ring)
            segs.append(np.stack([c[:-1], c[1:]], axis=1))
    segs = np.concatenate(segs) if segs else np.zeros((0, 2, 2))
    segs = segs[np.hypot(*(segs[:, 1] - segs[:, 0]).T) > 0]
    canon = np.where((segs[:, 0, 0] < segs[:, 1, 0])[:, None, None]
                     | ((segs[:, 0, 0] == segs[:, 1, 0]) & (segs[:, 0, 1] <= segs[:, 1, 1]))[:, None, None],
                     segs, segs[:, ::-1])
    _, first = np.unique(canon.reshape(len(canon), 4), axis=0, return_index=True)
    return segs[np.sort(first)]


def _cross(a, b):
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _crossings(poly: _Poly, tree, segs: np.ndarray) -> list[tuple[int, float]]:
    """(segment index, t) where the polyline meets a border segment, in order along the polyline."""
    lines = shapely.linestrings(np.stack([poly.xy[:-1], poly.xy[1:]], axis=1))
    pi, bi = tree.query(lines, predicate="intersects")
    out = []
    for i, k in zip(pi.tolist(), bi.tolist()):
        p, r = poly.xy[i], poly.xy[i + 1] - poly.xy[i]
        q, sv = segs[k, 0], segs[k, 1] - segs[k, 0]
        rr = float(r @ r)
        if rr == 0.0:
            continue
        denom = float(_cross(r, sv))
        qp = q - p
        if abs(denom) > 1e-12 * np.sqrt(rr * float(sv @ sv)):
            t = float(_cross(qp, sv)) / denom
            out.append((i, min(max(t, 0.0), 1.0)))
        else:  # collinear overlap: cut where the overlap starts and ends
            tc, td = float(qp @ r) / rr, float((qp + sv) @ r) / rr
            for t in (max(min(tc, td), 0.0), min(max(tc, td), 1.0)):
                out.append((i, t))
    out.sort()
    return out


# ----------------------------------------------------------------------------
# the partition
# ----------------------------------------------------------------------------
def partition(m: LaneMap, regions: Sequence[tuple[str, shapely.Geometry]], *,
              min_length: float = 0.5) -> dict[str, LaneMap]:
    """Cut *m* along the borders of *regions* into one map per region (see the module documentation).

    Parameters
    ----------
    m : LaneMap
        A valid map.
    regions : sequence of (key, polygon)
        Region key (e.g. :attr:`Municipality.slug <hdmap.municipalities.Municipality.slug>`) and
        polygon (or multipolygon) in the map's CRS, e.g.
        ``[(mun.slug, mun.geometry) for mun in load_municipalities()]``.
    min_length : float
        Pieces shorter than this (m) are not made: such a sliver stays with its neighbour.

    Returns
    -------
    dict
        Region key -> LaneMap with that region's part, for the regions that receive at
        least one object, in the order of *regions*. Each part is valid, has the map's
        ``epsg`` and its ``metadata`` plus ``"region": key``. Objects outside every region
        are in no part.

    Raises
    ------
    InvalidMapError
        *m* is not valid, or a piece id ``<id>.<k>`` is already used by another object.
    ParameterError
        A region key repeats, a geometry has no area, or *min_length* is negative.

    Examples
    --------
    >>> import shapely
    >>> from hdmap.lanemap import Boundary, LaneMap
    >>> m = LaneMap([Boundary("b1", [[0, 5, 0], [20, 5, 2]], "line_thin", pattern="solid")])
    >>> parts = partition(m, [("west", shapely.box(0, 0, 10, 10)), ("east", shapely.box(10, 0, 20, 10))])
    >>> {k: [(b.id, b.xyz.tolist()) for b in p.boundaries] for k, p in parts.items()}
    {'west': [('b1.1', [[0.0, 5.0, 0.0], [10.0, 5.0, 1.0]])], 'east': [('b1.2', [[10.0, 5.0, 1.0], [20.0, 5.0, 2.0]])]}
    """
    m.validate()
    if not (isinstance(min_length, (int, float)) and np.isfinite(min_length) and min_length >= 0):
        raise ParameterError(f"partition: min_length must be a finite number >= 0 (m), not {min_length!r}")
    keys, geoms = [], []
    for item in regions:
        key, geom = item
        if key in keys:
            raise ParameterError(f"partition: region key {key!r} is given twice; keys must be unique")
        keys.append(key)
        geoms.append(_polygonal(key, geom))
    if not keys:
        return {}
    for g in geoms:
        shapely.prepare(g)
    covered = shapely.union_all(geoms)
    shapely.prepare(covered)
    segs = _border_segments(geoms)
    tree = shapely.STRtree(shapely.linestrings(segs)) if len(segs) else None
    min_length = float(min_length)
    link_tol = max(0.5 * min_length, 0.05)

    bpolys = {b.id: _Poly(b, b.xyz, None, max(min_length, _DEDUP)) for b in m.boundaries}
    lpolys = {ln.id: _Poly(ln, ln.centerline, ln.width, max(min_length, _DEDUP)) for ln in m.lanes}
    users: dict[str, list[str]] = {b.id: [] for b in m.boundaries}  # boundary -> lanes using it, input order
    for ln in m.lanes:
        for bid in dict.fromkeys((ln.left, ln.right)):
            users[bid].append(ln.id)

    # 1. cuts: lanes along cross-sections through their border crossings, other boundaries at the border
    if tree is not None:
        for ln in m.lanes:
            lp = lpolys[ln.id]
            for i, t in _crossings(lp, tree, segs):
                _cut_across(lp, i, t, lpolys, bpolys, users)
        for b in m.boundaries:
            if not users[b.id]:
                bp = bpolys[b.id]
                for i, t in _crossings(bp, tree, segs):
                    bp.add_cut(i, t)

    # 2. pieces, linked into groups (lane pieces with the boundary pieces they use)
    pieces: list[tuple[_Poly, int]] = []  # (polyline, piece number)
    first: dict[int, int] = {}  # id(poly) -> index of its first piece
    polys = [bpolys[b.id] for b in m.boundaries] + [lpolys[ln.id] for ln in m.lanes]
    for poly in polys:
        first[id(poly)] = len(pieces)
        pieces.extend((poly, k) for k in range(len(poly.cuts) + 1))
    parent = list(range(len(pieces)))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for ln in m.lanes:
        lp = lpolys[ln.id]
        stations = [0.0] + [c.s for c in lp.cuts] + [lp.length]
        for bid in dict.fromkeys((ln.left, ln.right)):
            bp = bpolys[bid]
            ends = _piece_spans(bp, lp)
            for k in range(len(stations) - 1):
                a, b = stations[k], stations[k + 1]
                scores = [_overlap(a, b, lo, hi) for lo, hi in ends]
                best = int(np.argmax(scores))
                for j, sc in enumerate(scores):
                    if j == best or sc > link_tol:
                        union(first[id(lp)] + k, first[id(bp)] + j)

    # 3. a region per group: votes by length inside each region
    lines = [shapely.linestrings(poly.slice(*_bounds(poly, k))[0][:, :2]) for poly, k in pieces]
    lines_arr = np.empty(len(lines), dtype=object)
    lines_arr[:] = lines
    total = shapely.length(lines_arr)
    inside = np.stack([_length_inside(lines_arr, total, g) for g in geoms], axis=1)
    in_union = _length_inside(lines_arr, total, covered)
    is_lane = np.array([isinstance(poly.obj, Lane) for poly, _ in pieces], dtype=bool)
    groups: dict[int, list[int]] = {}
    for p in range(len(pieces)):
        groups.setdefault(find(p), []).append(p)
    region: dict[int, int | None] = {}  # group root -> region index (None: outside)
    pending: list[int] = []
    for root, members in groups.items():
        voters = [p for p in members if is_lane[p]] or members
        votes = inside[voters].sum(axis=0)
        outside = float(total[voters].sum() - in_union[voters].sum())
        cand = sorted([(float(v), r) for r, v in enumerate(votes)] + [(outside, None)],
                      key=lambda x: (-x[0], len(geoms) if x[1] is None else x[1]))
        region[root] = cand[0][1]
        if cand[0][0] == 0.0:  # no length (a degenerate polyline): where its first vertex lies
            region[root] = _region_of(pieces[voters[0]][0].xy[0], geoms)
        short = max(float(total[p]) for p in voters) < min_length
        tie = len(cand) > 1 and cand[0][0] - cand[1][0] <= _TIE and cand[0][0] > 0
        if short or tie:
            pending.append(root)
    _inherit(pending, region, groups, pieces, first, find)

    # 4. final pieces: cut only where the region changes
    final: dict[str, list[tuple[str, int | None, np.ndarray, np.ndarray | None]]] = {}
    for poly in polys:
        regs = [region[find(first[id(poly)] + k)] for k in range(len(poly.cuts) + 1)]
        keep = [poly.cuts[k] for k in range(len(poly.cuts)) if regs[k] != regs[k + 1]]
        kreg = [regs[0]] + [regs[k + 1] for k in range(len(poly.cuts)) if regs[k] != regs[k + 1]]
        bounds = [None] + keep + [None]
        out = []
        for k in range(len(kreg)):
            xyz, w = poly.slice(bounds[k], bounds[k + 1])
            pid = poly.obj.id if len(kreg) == 1 else f"{poly.obj.id}.{k + 1}"
            out.append((pid, kreg[k], xyz, w))
        final[poly.obj.id] = out
    _check_ids(m, final)

    # 5. the parts
    return _assemble(m, keys, geoms, final, lpolys)


def _length_inside(lines: np.ndarray, total: np.ndarray, g) -> np.ndarray:
    """Length of each line inside polygon *g* (prepared)."""
    out = np.where(shapely.covers(g, lines), total, 0.0)
    part = np.flatnonzero(shapely.intersects(g, lines) & (out == 0.0))
    if len(part):
        out[part] = shapely.length(shapely.intersection(lines[part], g))
    return out


def _bounds(poly: _Poly, k: int):
    cuts = [None] + poly.cuts + [None]
    return cuts[k], cuts[k + 1]


def _piece_spans(bp: _Poly, lp: _Poly) -> list[tuple[float, float]]:
    """Station intervals along lane *lp* of the pieces of boundary *bp* (by projecting the piece ends)."""
    pts = np.vstack([bp.xy[:1]] + [c.xyz[None, :2] for c in bp.cuts] + [bp.xy[-1:]])
    st = lp.project(pts)
    return [(min(st[k], st[k + 1]), max(st[k], st[k + 1])) for k in range(len(st) - 1)]


def _overlap(a, b, lo, hi) -> float:
    """Length of the overlap of [a, b] and [lo, hi]; minus the gap between them if they are disjoint."""
    return min(b, hi) - max(a, lo)


def _cut_across(lp: _Poly, i: int, t: float, lpolys, bpolys, users):
    """Cut lane *lp* at its border crossing (segment i, fraction t) and everything across it on the same line."""
    cut = lp.add_cut(i, t)
    if cut is None:  # within min_length of an end: cut across the lane's end instead
        at_start = lp.s[i] + t * (lp.s[i + 1] - lp.s[i]) < lp.length / 2
        i = 0 if at_start else len(lp.xy) - 2
        p, w = lp.xy[0 if at_start else -1], float(lp.width[0 if at_start else -1])
    else:
        p, w = cut.xyz[:2], cut.w
    d = lp.xy[i + 1] - lp.xy[i]  # the line runs perpendicular to the segment that crosses
    if not np.hypot(*d) > 0:
        return
    u = d / np.hypot(*d)
    p = np.array(p, dtype=np.float64)
    seen = {lp.obj.id}
    queue = deque([(lp, 0.0, w)])
    while queue:
        lane, s_lane, w_lane = queue.popleft()
        for bid in dict.fromkeys((lane.obj.left, lane.obj.right)):
            bp = bpolys[bid]
            hit = _nearest_hit(bp, p, u, s_lane, _REACH_FACTOR * w_lane + _REACH_MARGIN)
            if hit is None:
                continue
            bj, bt, bs = hit
            bp.add_cut(bj, bt)
            for lid in users[bid]:
                if lid in seen:
                    continue
                other = lpolys[lid]
                reach = _REACH_FACTOR * float(other.obj.width.max()) + _REACH_MARGIN
                hit2 = _nearest_hit(other, p, u, bs, reach)
                if hit2 is None:
                    continue
                seen.add(lid)
                oj, ot, os_ = hit2
                other.add_cut(oj, ot)
                wo = float(other.width[oj] + ot * (other.width[min(oj + 1, len(other.width) - 1)] - other.width[oj]))
                queue.append((other, os_, wo))


def _inherit(pending, region, groups, pieces, first, find):
    """Groups that are slivers or ties take the region of the piece before them (or after them)."""
    todo = list(pending)
    while todo:
        left = []
        for root in todo:
            got = False
            for step in (-1, 1):
                for p in groups[root]:
                    poly, k = pieces[p]
                    k2 = k + step
                    if not 0 <= k2 <= len(poly.cuts):
                        continue
                    other = find(first[id(poly)] + k2)
                    if other != root and other not in todo:
                        region[root] = region[other]
                        got = True
                        break
                if got:
                    break
            if not got:
                left.append(root)
        if len(left) == len(todo):
            break  # the rest keep their own vote
        todo = left


def _check_ids(m: LaneMap, final):
    owner: dict[str, str] = {}
    for oid, out in final.items():
        for pid, reg, _, _ in out:
            if reg is None:
                continue
            if pid in owner and owner[pid] != oid:
                raise InvalidMapError(f"partition: piece id {pid!r} of {oid!r} is also the id of {owner[pid]!r}; "
                                      "rename that object before partitioning")
            owner[pid] = oid
    for mk in m.markings:
        if mk.id in owner:
            raise InvalidMapError(f"partition: piece id {mk.id!r} of {owner[mk.id]!r} is also a marking's id; "
                                  "rename that marking before partitioning")


def _assemble(m: LaneMap, keys, geoms, final, lpolys) -> dict[str, LaneMap]:
    nreg = len(keys)
    bnd: list[list[Boundary]] = [[] for _ in range(nreg)]
    lns: list[list[Lane]] = [[] for _ in range(nreg)]
    mks: list[list[Marking]] = [[] for _ in range(nreg)]

    for b in m.boundaries:
        for pid, reg, xyz, _ in final[b.id]:
            if reg is not None:
                bnd[reg].append(dataclasses.replace(b, id=pid, xyz=xyz, provenance=copy.deepcopy(b.provenance)))

    # lane pieces and their bounds
    lane_ids: dict[str, list[str | None]] = {}  # lane id -> delivered piece id per piece (None: not delivered)
    drafts = []
    for ln in m.lanes:
        lp = lpolys[ln.id]
        ids = []
        for k, (pid, reg, xyz, w) in enumerate(final[ln.id]):
            if reg is None:
                ids.append(None)
                continue
            sides = {}
            a, b = lp.project(xyz[[0, -1], :2])
            for side in ("left", "right"):
                bid = getattr(ln, side)
                best = None
                for bpid, breg, bxyz, _ in final[bid]:
                    if breg != reg:
                        continue
                    lo, hi = sorted(lp.project(bxyz[[0, -1], :2]))
                    sc = _overlap(min(a, b), max(a, b), lo, hi)
                    if best is None or sc > best[0]:
                        best = (sc, bpid)
                sides[side] = None if best is None else best[1]
            if None in sides.values():
                logger.warning("partition: lane %r piece %r in region %r has no %s boundary there; it is not "
                               "delivered", ln.id, pid, keys[reg],
                               " or ".join(s for s, v in sides.items() if v is None))
                ids.append(None)
                continue
            ids.append(pid)
            drafts.append((ln, k, reg, pid, xyz, w, sides))
        lane_ids[ln.id] = ids
    for ln, k, reg, pid, xyz, w, sides in drafts:
        ids = lane_ids[ln.id]
        preds = [ids[k - 1]] if k > 0 else [lane_ids[p][-1] for p in ln.predecessors]
        succs = [ids[k + 1]] if k < len(ids) - 1 else [lane_ids[s][0] for s in ln.successors]
        lns[reg].append(dataclasses.replace(
            ln, id=pid, left=sides["left"], right=sides["right"], centerline=xyz, width=w,
            predecessors=[x for x in preds if x is not None], successors=[x for x in succs if x is not None]))
    for reg in range(nreg):  # links to lanes of other parts (or not delivered) are dropped
        present = {ln.id for ln in lns[reg]}
        for ln in lns[reg]:
            ln.predecessors = [x for x in ln.predecessors if x in present]
            ln.successors = [x for x in ln.successors if x in present]

    # markings: whole, by centroid; groups together
    groups: dict[str, list[Marking]] = {}
    by_id = {mk.id: mk for mk in m.markings}
    for mk in m.markings:
        if mk.group is not None:
            groups.setdefault(mk.group, []).append(mk)
    for gid, members in groups.items():
        if gid in by_id and by_id[gid] not in members:
            members.append(by_id[gid])
    group_of = {}
    for gid, members in groups.items():
        for mk in members:
            group_of.setdefault(mk.id, gid)
    reg_of_group = {gid: _region_of(_centroid(members), geoms) for gid, members in groups.items()}
    for mk in m.markings:
        gid = group_of.get(mk.id)
        c = _centroid([mk])
        reg = reg_of_group[gid] if gid is not None else _region_of(c, geoms)
        if reg is None:
            continue
        bref = mk.boundary
        if bref is not None:
            cands = [(shapely.distance(shapely.linestrings(xyz[:, :2]), shapely.points(c)), pid)
                     for pid, r, xyz, _ in final[bref] if r == reg]
            if not cands:
                logger.debug("partition: marking %r: boundary %r has no piece in region %r; reference dropped",
                             mk.id, bref, keys[reg])
            bref = min(cands, key=lambda x: x[0])[1] if cands else None
        mks[reg].append(dataclasses.replace(mk, boundary=bref))

    out = {}
    for reg, key in enumerate(keys):
        if bnd[reg] or lns[reg] or mks[reg]:
            meta = copy.deepcopy(m.metadata)
            meta["region"] = key
            out[key] = LaneMap(bnd[reg], lns[reg], mks[reg], epsg=m.epsg, metadata=meta).validate()
    return out


def _centroid(markings: list[Marking]) -> np.ndarray:
    polys = [shapely.Polygon(mk.polygon[:, :2]) for mk in markings]
    areas = np.array([p.area for p in polys])
    if areas.sum() > 0:
        cs = np.array([shapely.get_coordinates(p.centroid)[0] for p in polys])
        return (cs * areas[:, None]).sum(axis=0) / areas.sum()
    return np.vstack([mk.polygon[:, :2] for mk in markings]).mean(axis=0)


def _region_of(c: np.ndarray, geoms) -> int | None:
    pt = shapely.points(c)
    for r, g in enumerate(geoms):
        if g.covers(pt):
            return r
    return None

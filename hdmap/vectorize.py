"""Vectorisation: from classified points to the lane-level map (stages 6-8 of DESIGN.md).

The chain, each step a function of plain data:

1. **Marking objects** (:func:`marking_objects`): marking points (class 64) are
   binned into 5 cm cells; occupied cells closer than ``link`` form components
   (a sparse union-find, :func:`hdmap.kernels.vector.sparse_components`).
   Each component is described along its principal axis (centre line, width
   per 25 cm bin) and typed: arrows (a thin stem that widens into a head),
   wide bars (crosswalk bars when they stand side by side at bar spacing,
   stop lines otherwise), thin bands (lane-line strokes, split into straight
   pieces where they bend), and rejects (round blobs such as manholes,
   hair-thin wandering tar snakes, anything too small to be paint). Far from
   the scanner a line is only specks, one per scan line crossing it: specks
   in a straight row with no unpainted return between them are a sparse
   stroke (:mod:`hdmap._specks`); a sparsely sampled stroke linked to nothing
   and shorter than ``objects.speck_alone`` is dropped (an arrow's shaft).
2. **Lane boundaries** (:func:`link_pieces`, :func:`boundaries_from_chains`):
   stroke pieces are linked end to end across dash gaps and occlusions. Two
   ends may join when they face each other, and the *symmetric offset* test
   holds: with ``e1`` the offset of the far end from the near piece's tangent
   and ``e2`` the reverse, ``(e1 - e2) / 2`` is the lateral misalignment
   (zero on any smooth curve) and ``(e1 + e2) / 2`` the bend. Links never
   cross a crosswalk or a stop line (links of up to 8 m pass within 0.5 m of
   a stop line's ends, where the lane line it ends at runs on). A linked chain
   is cut where the pattern changes (dashes to a solid line); dashed parts get the median stroke and
   gap; the kind follows the painted width (Schmalstrich / Breitstrich).
3. **Curbs and road borders** (:func:`curb_lines`, :func:`road_borders`): curb
   points (class 67) go through the same piece/link machinery; where road
   surface meets unsealed ground without a curb, the edge is a road border
   (far from the scanner, where each scan line leaves an edge cell or two, from
   rows of those cells). A lone dash lying across its road (the lines and curbs
   around it run across it) is a stop line scanned along its length.
4. **Lanes** (:func:`build_lanes`): from every boundary, cross-sections every
   metre look for the next boundary on each side; neighbours at lane-width
   spacing with road surface between them form lane samples, grouped by their
   boundary pair into lane sections with centre lines and width profiles.
   Driving direction comes from the nearest drive running along the section
   (for a side road no drive ran along: the side of the road the traffic keeps
   to). Linked sections meet; a section ending where one of its boundaries was
   not seen runs on beside its neighbour lane or its other boundary; sections
   are joined across junctions and crosswalks in line.

The reference direction of a map is that of the first trajectory: lanes
driven the same way are ``forward``, the others ``backward``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import shapely

from . import _specks
from ._specks import principal_axes as _pca
from . import classes as C
from .kernels.vector import axis_profile, sparse_components
from .lanemap import Boundary, Lane, LaneMap, Marking
from .params import Param, ParamSet, resolve_stages

log = logging.getLogger(__name__)

__all__ = ["STAGES", "extract", "marking_objects", "link_pieces", "boundaries_from_chains", "curb_lines",
           "road_borders", "build_lanes", "local_vectors", "assemble", "Piece"]

STAGES = {
    "objects": ParamSet("objects", [
        Param("cell", 0.05, "cell size of the marking raster (m)", 0.01, 0.5),
        Param("link", 2, "occupied cells up to this many cells apart belong to one object", 1, 10),
        Param("min_points", 20, "objects with fewer marking points are dropped", 1, 100000),
        Param("min_length", 0.4, "stroke pieces shorter than this are dropped (m)", 0.0, 10.0),
        Param("min_width", 0.07, "bands narrower than this are not paint (tar snakes, cracks) (m)", 0.0, 1.0),
        Param("bar_width", 0.36, "bands at least this wide are bars (crosswalk bars, stop lines) (m)", 0.1, 2.0),
        Param("max_band", 0.9, "bands wider than this fit no marking shape (m)", 0.2, 5.0),
        Param("straight_tolerance", 0.04, "a piece bending more than this off its chord is split (m)", 0.005, 1.0),
        Param("bar_spacing", 1.6, "largest centre spacing of crosswalk bars side by side (m)", 0.5, 5.0),
        Param("arrow_length", (2.5, 10.0), "length range of arrows (m)"),
        Param("arrow_area", 0.6, "smallest painted area of an arrow (m^2); tar snakes and cracks are thinner", 0.0, 20.0),
        Param("stop_line_length", 2.5, "shortest stop line: one lane (m)", 0.5, 20.0),
        Param("speck_gap", _specks.GAP, "specks of paint (objects too small to judge alone) up to this far apart "
              "along a straight line are one sparse stroke: far from the scanner its scan lines cross a line "
              "0.3-1.3 m apart (m)", 0.1, 10.0),
        Param("speck_count", _specks.COUNT, "fewest specks in a sparse stroke", 2, 1000),
        Param("speck_tolerance", _specks.TOLERANCE, "largest distance of a speck's centre from its sparse stroke's "
              "line (m)", 0.005, 1.0),
        Param("speck_alone", 5.0, "a sparsely sampled stroke linked to nothing is a line only if at least this long: "
              "shorter, it may be the shaft of an arrow whose head was not seen (5 m: a straight arrow in town, "
              "RMS) (m)", 0.0, 100.0),
    ]),
    "boundaries": ParamSet("boundaries", [
        Param("max_gap", 20.0, "longest gap bridged between strokes: dash gaps plus occlusions (m)", 1.0, 100.0),
        Param("lateral", 0.15, "largest lateral misalignment of linked strokes (m)", 0.01, 2.0),
        Param("min_radius", 25.0, "tightest bend a boundary may take across a gap (m)", 1.0, 1e6),
        Param("solid_length", 10.0, "strokes at least this long are solid line (m)", 1.0, 100.0),
        Param("thick_width", 0.20, "strokes at least this wide are line_thick (Breitstrich) (m)", 0.05, 1.0),
        Param("step", 0.5, "vertex spacing of the output polylines (m)", 0.05, 10.0),
        Param("smooth", 1.0, "half window of the moving-average smoothing (m)", 0.0, 20.0),
        Param("min_length", 2.0, "boundaries shorter than this are dropped (m)", 0.0, 100.0),
        Param("mouth_width", 5.0, "a gap is not bridged where the road opens sideways over at least this length of it "
              "(a side road's mouth: lines and road borders stop at the junction) (m)", 0.5, 100.0),
    ]),
    "curbs": ParamSet("curbs", [
        Param("cell", 0.10, "cell size of the curb raster (m)", 0.02, 1.0),
        Param("link", 3, "curb cells up to this many cells apart belong to one curb", 1, 20),
        Param("min_points", 30, "curb pieces with fewer points are dropped", 1, 100000),
        Param("corner_radius", 1.0, "curb cells whose neighbours within this radius (m) ...", 0.1, 5.0),
        Param("corner_linearity", 0.9, "... are less linear than this (1 - lambda2 / lambda1) are corners, where curbs "
              "are cut before they are traced; 0 switches the cut off", 0.0, 1.0),
        Param("max_gap", 20.0, "longest gap bridged along a curb or a road border (parked cars, lorries) (m)", 0.5, 100.0),
        Param("lateral", 0.25, "largest lateral misalignment of linked curb pieces (m)", 0.01, 2.0),
        Param("min_length", 2.0, "curbs shorter than this are dropped (m): a curb return at a junction corner is short", 0.0, 100.0),
        Param("border_cell", 0.2, "cell of the road / ground raster for road borders (m)", 0.05, 2.0),
        Param("border_clear", 0.8, "no road border within this distance of a curb (m)", 0.0, 10.0),
        Param("border_reach", 0.6, "a road-border cell is judged by the road and ground cells of the square "
              "window reaching this far around it (m; 0: the first ground cell, without the test below) ...",
              0.0, 5.0),
        Param("border_share", 0.25, "... of which road and ground must each make at least this share: a stray road "
              "patch in the verge or a stray ground cell inside the road is no edge", 0.0, 0.5),
    ]),
    "lanes": ParamSet("lanes", [
        Param("width_range", (2.5, 4.75), "widths a lane may have (m)"),
        Param("station", 1.0, "spacing of the cross-sections (m)", 0.1, 10.0),
        Param("max_angle", 20.0, "neighbouring boundaries must be parallel within this angle (deg)", 1.0, 60.0),
        Param("section_gap", 3.0, "a lane section ends where it is missing for longer than this (m)", 0.5, 100.0),
        Param("min_length", 3.0, "lanes (sections linked end to start) shorter than this are dropped (m)", 0.0, 100.0),
        Param("link_distance", 3.0, "sections whose ends are this close are predecessor and successor (m)", 0.1, 50.0),
        Param("traffic", "right", "which side of the road is driven on: gives the direction of lanes no drive "
              "ran along (a side road's), from the side their road edge is on", choices=("right", "left")),
        Param("drive_reach", 30.0, "drives farther than this from a lane do not give its direction (m)", 1.0, 500.0),
        Param("continue_length", 25.0, "where a lane's outer boundary was not seen (survey edge, a car hiding a curb) "
              "the lane runs on beside its neighbour lane, over road surface and across no boundary, up to this far "
              "(m; 0: off)", 0.0, 200.0),
        Param("bridge_gap", 40.0, "a lane section that ends is joined to one that starts straight ahead, in line within "
              "0.5 m, across a gap without lines up to this long (a crosswalk, a junction) (m)", 0.0, 200.0),
    ]),
}


# ---------------------------------------------------------------------------
# pieces: straight bits of painted bands and curbs
# ---------------------------------------------------------------------------
@dataclass
class Piece:
    """A straight bit of a band of points: centre line, width and where it came from."""

    xy: np.ndarray  # (k, 2) centre line, ordered along the piece
    z: np.ndarray  # (k,)
    width: float
    component: int
    kind: str = "stroke"  # stroke | curb | border
    sparse: bool = False  # sampled sparsely, far from the scanner: see SPARSE_FILL and _speck_strokes

    @property
    def length(self) -> float:
        return float(np.hypot(*(self.xy[-1] - self.xy[0])))

    def end(self, which: int):
        """(point, outward unit direction) of end 0 (start) or 1 (end)."""
        xy = self.xy
        k = min(len(xy) - 1, 4)
        if which == 0:
            p, q = xy[0], xy[k]
        else:
            p, q = xy[-1], xy[-1 - k]
        d = p - q
        n = np.hypot(*d)
        if n == 0:
            d = xy[-1] - xy[0] if which else xy[0] - xy[-1]
            n = np.hypot(*d) or 1.0
        return p, d / n


SPARSE_FILL = 0.8
"""A piece is sampled sparsely when fewer than this share of its profile bins (0.25 m along it) hold three
points: far from the scanner, where scan lines cross a line 0.3-1.3 m apart. Such a piece may be a lone
fragment of something else (an arrow's shaft whose head was not seen), see ``objects.speck_alone``."""


def _profile(xyz, step):
    """Principal axis profile of points: (m, u, n, bins_u, centre, width, z, count, u_lo, u_hi)."""
    m, u, n = _pca(xyz[:, :2])
    d = xyz[:, :2] - m
    uu = d @ u
    vv = d @ n
    lo, hi = np.quantile(uu, [0.002, 0.998]) if len(uu) > 50 else (uu.min(), uu.max())
    nb = max(int(math.ceil((hi - lo) / step)), 1)
    centre, width, zm, cnt = axis_profile(uu, vv, xyz[:, 2], step, lo, nb, 3)
    bu = lo + (np.arange(nb) + 0.5) * step
    return m, u, n, bu, centre, width, zm, cnt, float(lo), float(hi), uu


def _split_straight(xyz, comp, tol, step, min_len, kind, depth=0):
    """Recursively cut a band of points into straight pieces; returns a list of Piece."""
    m, u, n, bu, centre, width, zm, cnt, lo, hi, uu = _profile(xyz, step)
    ok = np.isfinite(centre)
    if ok.sum() < 2:
        return []
    length = hi - lo
    if ok.sum() >= 4 and length > 2.0 and depth < 12:
        coef = np.polyfit(bu[ok], centre[ok], 1)
        res = np.abs(centre[ok] - np.polyval(coef, bu[ok]))
        if res.max() > tol:
            cut = float(np.median(uu))
            a = uu <= cut
            return (_split_straight(xyz[a], comp, tol, step, min_len, kind, depth + 1)
                    + _split_straight(xyz[~a], comp, tol, step, min_len, kind, depth + 1))
    if length < min_len:
        return []
    # centre line: the bins' centres, with the painted extent at both ends
    c = centre[ok]
    b = bu[ok]
    z = zm[ok]
    coef = np.polyfit(b, c, 1) if len(b) >= 2 else np.array([0.0, c[0]])
    uline = np.concatenate([[lo], b, [hi]])
    vline = np.concatenate([[np.polyval(coef, lo)], c, [np.polyval(coef, hi)]])
    zline = np.concatenate([[z[0]], z, [z[-1]]])
    xy = m + np.outer(uline, u) + np.outer(vline, n)
    wmed = float(np.median(width[ok]))
    return [Piece(xy=xy, z=zline, width=wmed, component=comp, kind=kind, sparse=bool(ok.mean() < SPARSE_FILL))]


def _components(xyz, cell, link, min_points, small=None):
    """Point indices of each cell component with at least *min_points* points (deterministic order);
    the smaller ones are appended to the list *small* if given."""
    if len(xyz) == 0:
        return []
    ix = np.floor(xyz[:, 0] / cell).astype(np.int64)
    iy = np.floor(xyz[:, 1] / cell).astype(np.int64)
    lab, n = sparse_components(ix, iy, link)
    order = np.argsort(lab, kind="stable")
    bounds = np.searchsorted(lab[order], np.arange(n + 1))
    out = []
    for k in range(n):
        idx = order[bounds[k]:bounds[k + 1]]
        if len(idx) >= min_points:
            out.append(idx)
        elif small is not None:
            small.append(idx)
    return out


def _oriented_box(xy, q=0.0):
    """Rotated rectangle (4, 2) around points along their principal axis."""
    m, u, n = _pca(xy)
    d = xy - m
    uu, vv = d @ u, d @ n
    if q > 0 and len(uu) > 20:
        u0, u1 = np.quantile(uu, [q, 1 - q])
        v0, v1 = np.quantile(vv, [q, 1 - q])
    else:
        u0, u1, v0, v1 = uu.min(), uu.max(), vv.min(), vv.max()
    corners = [(u0, v0), (u1, v0), (u1, v1), (u0, v1)]
    return np.array([m + a * u + b * n for a, b in corners])


def _cells_polygon(xy, cell):
    """Outline of the cells a set of points occupies (simplified)."""
    ij = np.unique(np.floor(xy / cell).astype(np.int64), axis=0)
    boxes = shapely.box(ij[:, 0] * cell, ij[:, 1] * cell, (ij[:, 0] + 1) * cell, (ij[:, 1] + 1) * cell)
    poly = shapely.union_all(shapely.buffer(boxes, cell * 0.5, join_style="mitre")).buffer(-cell * 0.5, join_style="mitre")
    if poly.geom_type != "Polygon":
        parts = [g for g in getattr(poly, "geoms", []) if g.geom_type == "Polygon"]
        poly = max(parts, key=lambda g: g.area) if parts else shapely.convex_hull(shapely.multipoints(xy))
    return shapely.simplify(poly, cell * 0.5)


@dataclass
class Objects:
    """What :func:`marking_objects` finds: stroke pieces and typed marking polygons (local coordinates)."""

    pieces: list = field(default_factory=list)
    markings: list = field(default_factory=list)  # (type, polygon (k,2), z, group or None)
    rejected: int = 0


#: A bar (crosswalk bar, stop line) is painted all over: at least BAR_FILL of the road returns inside its box
#: are paint (worn paint and a frayed edge leave some bare; the stem and head of an arrow leave most of their
#: box bare, a scatter of bright grit almost all of it: below ARROW_FILL it is no marking at all). A share of
#: returns, not of area, so it holds at any point density.
BAR_FILL, ARROW_FILL = 0.3, 0.15


def _paint_shares(paint, boxes, road_xy):
    """For each box (4, 2) with its paint points *paint* (k, 2+): paint / (paint + road points inside it)."""
    if not boxes:
        return []
    if road_xy is None or len(road_xy) == 0:
        return [1.0] * len(boxes)
    road_xy = np.asarray(road_xy)[:, :2]
    # the road points near any box, through a 1 m raster of the boxes' bounding rectangles
    corners = np.vstack(boxes)
    lo = np.floor(corners.min(axis=0)).astype(np.int64)
    hi = np.floor(corners.max(axis=0)).astype(np.int64)
    raster = np.zeros((hi[1] - lo[1] + 1, hi[0] - lo[0] + 1), bool)
    for b in boxes:
        b0, b1 = np.floor(b.min(axis=0)).astype(np.int64) - lo, np.floor(b.max(axis=0)).astype(np.int64) - lo
        raster[b0[1]:b1[1] + 1, b0[0]:b1[0] + 1] = True
    ij = np.floor(road_xy).astype(np.int64) - lo
    inside = (ij[:, 0] >= 0) & (ij[:, 1] >= 0) & (ij[:, 0] < raster.shape[1]) & (ij[:, 1] < raster.shape[0])
    sel = np.flatnonzero(inside)
    near = road_xy[sel[raster[ij[sel, 1], ij[sel, 0]]]]
    out = []
    for pts, b in zip(paint, boxes):
        q = near[np.all((near >= b.min(axis=0)) & (near <= b.max(axis=0)), axis=1)]
        bare = int(np.count_nonzero(shapely.contains_xy(shapely.Polygon(b), q[:, 0], q[:, 1]))) if len(q) else 0
        out.append(len(pts) / (len(pts) + bare))
    return out


def marking_objects(xyz: np.ndarray, params=None, road_xy: np.ndarray | None = None) -> Objects:
    """Find and type the marking objects among marking points *xyz* (n, 3), local coordinates.

    Returns an :class:`Objects` with lane-line stroke pieces (to be linked into
    boundaries) and typed polygons: ``crosswalk`` (with its ``crosswalk_bar``
    members), ``stop_line``, ``arrow`` (family; typed by :func:`_arrow_type`)
    and ``other`` for paint that fits no shape but is clearly paint.

    *road_xy* (optional): the unpainted road points, for the sparse strokes
    of :func:`_speck_strokes`; without them specks in a row are not strokes.
    """
    p = STAGES["objects"].resolve(params or {})
    specks = []
    comps = _components(xyz, p["cell"], p["link"], p["min_points"], specks)
    cands = []  # bar candidates: judged together below, by the paint share of their boxes
    out = Objects()
    bars = []  # (points, box, centre, axis, width, length, z, component)
    arrows = []  # (points, whole-arrow sized)
    a_lo, a_hi = p["arrow_length"]
    for ci, idx in enumerate(comps):
        pts = xyz[idx]
        m, u, n, bu, centre, width, zm, cnt, lo, hi, uu = _profile(pts, 0.25)
        ok = np.isfinite(width)
        length = hi - lo
        if not ok.any():
            out.rejected += 1
            continue
        wmed = float(np.median(width[ok]))
        wmax = float(np.quantile(width[ok], 0.9))
        vv = (pts[:, :2] - m) @ n
        spread = float(np.quantile(vv, 0.99) - np.quantile(vv, 0.01))
        z = float(np.median(pts[:, 2]))
        if wmed < p["bar_width"] and wmax >= 0.35 and 0.4 <= spread < 2.5 and 1.5 <= length <= a_hi:
            arrows.append((pts, length >= a_lo))  # an arrow, or a part of one (the bent head of a turn arrow)
            continue
        if wmed >= p["bar_width"] and length >= 1.5 and spread > wmed + 0.3:
            # a stop line touched by the end of a lane line: split the bar from the stub
            vv0 = np.median(vv)
            inbar = np.abs(vv - vv0) <= 0.5 * wmed + 0.1
            rest = pts[~inbar]
            pts = pts[inbar]
            if len(rest) >= p["min_points"]:
                stub = _split_straight(rest, ci, p["straight_tolerance"], 0.25, p["min_length"], "stroke")
                out.pieces.extend(pc for pc in stub if _leaves_bar(pc, m, u, n, vv0, wmed))
            m, u, n, bu, centre, width, zm, cnt, lo, hi, uu = _profile(pts, 0.25)
            length = hi - lo
            spread = wmed
        straight_bar = length >= 1.0 and length >= 1.5 * wmed and spread <= wmed + 0.3
        bar = wmed >= 0.25 and wmed <= p["max_band"] and length <= 8.0 and straight_bar
        if bar or wmed >= p["bar_width"]:
            if wmed <= p["max_band"] and straight_bar:  # (always so for a bar)
                # bar candidate: a crosswalk bar if it has neighbours side by side, else a stop line or a stroke;
                # but a bar is painted all over, where the paint of an arrow's stem and head, or a scatter of
                # bright grit, leaves most of the road in its box bare
                cands.append(((pts, _oriented_box(pts[:, :2], 0.002), m, u, wmed, length, z, ci),
                              0.4 <= spread < 2.5 and 1.5 <= length <= a_hi))
            else:
                out.rejected += 1
            continue
        if wmed < p["min_width"]:
            out.rejected += 1
            continue
        if length < 1.5 * max(spread, 0.3) and length < 1.0:
            out.rejected += 1  # round blob (manhole rim, dot)
            continue
        pieces = _split_straight(pts, ci, p["straight_tolerance"], 0.25, p["min_length"], "stroke")
        # a wandering thin trace (tar snake) breaks into many short pieces: reject
        if pieces and length < 8.0 and len(pieces) >= 3 and max(pc.length for pc in pieces) < 1.5:
            out.rejected += 1
            continue
        pieces = [pc for pc in pieces if pc.width >= p["min_width"]]
        out.pieces.extend(pieces)
    shares = _paint_shares([c[0][0] for c in cands], [c[0][1] for c in cands], road_xy)
    for (bar, arrow_sized), share in zip(cands, shares):
        if share >= BAR_FILL:
            bars.append(bar)
        elif arrow_sized and share >= ARROW_FILL:
            arrows.append((bar[0], bar[5] >= a_lo))
        else:
            out.rejected += 1
    _group_bars(bars, p, out)
    _group_arrows(arrows, p, out)
    if road_xy is not None:
        out.pieces.extend(pc for pc in _speck_strokes(xyz, specks, road_xy, p, len(comps)) if pc.width >= p["min_width"])
    return out


def _speck_strokes(xyz, specks, road_xy, p, first_id):
    """Stroke pieces from rows of specks of paint (:func:`hdmap._specks.speck_rows`): lines sampled sparsely,
    far from the scanner. *specks* index *xyz*; *road_xy* are the unpainted road points."""
    pts = [xyz[idx] for idx in specks]
    out = []
    for members, m, u, centres in _specks.speck_rows(pts, road_xy, p["speck_gap"], p["speck_tolerance"],
                                                     p["speck_count"], p["min_length"]):
        n = np.array([-u[1], u[0]])
        uu = (centres - m) @ u
        z = np.array([float(np.median(pts[i][:, 2])) for i in members])
        width = float(np.median([np.ptp(pts[i][:, :2] @ n) for i in members])) + p["cell"]
        out.append(Piece(xy=m + np.outer(uu, u), z=z, width=width, component=first_id + len(out), kind="stroke",
                         sparse=True))
    return out


def _leaves_bar(piece, m, u, n, v0, width) -> bool:
    """Whether a stroke piece split off a bar (centre line ``v = v0`` across *n* from *m*) is a line leaving it.

    The bar's frayed edge also splits into pieces; they run along the bar or hardly
    get out of it. A line stub (a lane line ending at a stop line) leaves it across.
    """
    out = float(np.max(np.abs((piece.xy - m) @ n - v0))) - 0.5 * width
    d = piece.xy[-1] - piece.xy[0]
    along = abs(float(d @ u)) >= abs(float(d @ n))  # within 45 degrees of the bar
    return out >= (1.0 if along else 0.3)


class _DisjointSets:
    """Union-find over 0..n-1 (path halving); ``join(ra, rb)`` hangs root *rb* under root *ra*."""

    def __init__(self, n):
        self.parent = list(range(n))

    def find(self, a):
        parent = self.parent
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def join(self, ra, rb):
        self.parent[rb] = ra

    def groups(self) -> dict:
        """``{root: [members in index order]}``."""
        out: dict = {}
        for i in range(len(self.parent)):
            out.setdefault(self.find(i), []).append(i)
        return out


def _group_arrows(arrows, p, out):
    """Arrow parts closer than a metre are one arrow; groups without a whole-arrow-sized part are dropped."""
    n = len(arrows)
    boxes = [(a[0][:, 0].min(), a[0][:, 1].min(), a[0][:, 0].max(), a[0][:, 1].max()) for a in arrows]
    sets = _DisjointSets(n)
    for i in range(n):
        for j in range(i + 1, n):
            bi, bj = boxes[i], boxes[j]
            dx = max(bi[0] - bj[2], bj[0] - bi[2], 0.0)
            dy = max(bi[1] - bj[3], bj[1] - bi[3], 0.0)
            if math.hypot(dx, dy) <= 1.0:
                ri, rj = sets.find(i), sets.find(j)
                sets.join(min(ri, rj), max(ri, rj))
    for _, members in sorted(sets.groups().items()):
        pts = np.vstack([arrows[i][0] for i in members])
        area = len(np.unique(np.floor(pts[:, :2] / p["cell"]).astype(np.int64), axis=0)) * p["cell"] ** 2
        if not any(arrows[i][1] for i in members) or area < p["arrow_area"]:
            out.rejected += len(members)
            continue
        m, u, n_ = _pca(pts[:, :2])
        poly = _cells_polygon(pts[:, :2], p["cell"])
        out.markings.append(("arrow", np.asarray(poly.exterior.coords)[:-1], float(np.median(pts[:, 2])), None,
                             _arrow_type(pts, m, u, n_)))


def _group_bars(bars, p, out):
    """Bars side by side at bar spacing are one crosswalk; a lone bar is a stop line."""
    nb = len(bars)
    sets = _DisjointSets(nb)
    for i in range(nb):
        for j in range(i + 1, nb):
            mi, ui = bars[i][2], bars[i][3]
            mj, uj = bars[j][2], bars[j][3]
            if abs(float(ui @ uj)) < math.cos(math.radians(15)):
                continue
            d = mj - mi
            along = abs(float(d @ ui))
            across = abs(float(d @ np.array([-ui[1], ui[0]])))
            if along < 0.5 * max(bars[i][5], bars[j][5]) and 0.5 <= across <= p["bar_spacing"]:
                sets.join(sets.find(i), sets.find(j))
    for _, members in sorted(sets.groups().items()):
        if len(members) >= 3:
            allpts = np.vstack([bars[i][0][:, :2] for i in members])
            box = _oriented_box(allpts, 0.001)
            z = float(np.median([bars[i][6] for i in members]))
            gid = len(out.markings)
            out.markings.append(("crosswalk", box, z, None, None))
            for i in members:
                out.markings.append(("crosswalk_bar", bars[i][1], bars[i][6], gid, None))
        else:
            for i in members:
                pts, box, m, u, wmed, length, z, ci = bars[i]
                if wmed >= p["bar_width"] and length >= p["stop_line_length"]:
                    out.markings.append(("stop_line", box, z, None, None))
                elif wmed < p["bar_width"]:
                    out.pieces.extend(_split_straight(pts, ci, p["straight_tolerance"], 0.25, p["min_length"], "stroke"))
                else:
                    out.rejected += 1


def _arrow_type(pts, m, u, n):
    """Straight / left / right / straight_left / straight_right from where the heads sit.

    In the arrow's axis frame the stem is narrow; heads are the bins wider than
    the stem. A head on the axis points straight; heads off to one side point
    there. Which end is the tip is where the heads are (the stem is the tail).
    """
    d = pts[:, :2] - m
    uu, vv = d @ u, d @ n
    lo, hi = np.quantile(uu, [0.01, 0.99])
    step = 0.25
    nb = max(int((hi - lo) / step), 1)
    k = np.clip(((uu - lo) / step).astype(int), 0, nb - 1)
    wid = np.array([np.ptp(vv[k == i]) if np.any(k == i) else 0.0 for i in range(nb)])
    ctr = np.array([np.median(vv[k == i]) if np.any(k == i) else 0.0 for i in range(nb)])
    stem = np.median(wid)
    # tip at the end whose half holds the widest bins
    half = nb // 2
    tip_hi = wid[half:].max() >= wid[:half].max() if half else True
    sgn = 1.0 if tip_hi else -1.0
    head = wid > 2.0 * max(stem, 0.1)
    if not head.any():
        return "arrow_straight"
    lateral = ctr[head] * sgn  # left positive when looking towards the tip
    stem_c = np.median(ctr[~head]) * sgn if (~head).any() else 0.0
    off = lateral - stem_c
    left = bool(np.any(off > 0.35))
    right = bool(np.any(off < -0.35))
    straight = bool(np.any(np.abs(off) <= 0.35))
    if left and straight:
        return "arrow_straight_left"
    if right and straight:
        return "arrow_straight_right"
    if left:
        return "arrow_left"
    if right:
        return "arrow_right"
    return "arrow_straight"


# ---------------------------------------------------------------------------
# linking pieces into chains
# ---------------------------------------------------------------------------
def _canonical_order(pieces):
    """Pieces sorted by geometry (not by input order)."""
    key = [(round(float(pc.xy[:, 0].min()), 6), round(float(pc.xy[:, 1].min()), 6),
            round(float(pc.xy[:, 0].max()), 6), round(float(pc.xy[:, 1].max()), 6)) for pc in pieces]
    order = sorted(range(len(pieces)), key=lambda i: key[i])
    return [pieces[i] for i in order]


#: Second linking round: chain ends take their direction over this spacing of the chain's polyline (m)
#: (four of them back from the end: see :meth:`Piece.end`).
RELINK_STEP = 1.0


def link_pieces(pieces, *, max_gap=20.0, lateral=0.15, min_radius=25.0, barriers=None, far_barriers=None,
                far_gap=math.inf):
    """Link pieces end to end; returns chains as lists of ``(piece, reversed)`` in travel order.

    The result does not depend on the order of *pieces*: they are sorted by
    geometry first and candidate links are taken best first with ties broken
    by that order. *barriers* is an optional shapely geometry no link may cross,
    *far_barriers* one no link longer than *far_gap* may cross.

    Two rounds: pieces first, then the chains of the first round, each end
    judged by the chain's direction over its last few metres: a dash's frayed
    end splits off as a short piece whose own direction is too unsure to link
    it across the next gap.
    """
    kw = dict(max_gap=max_gap, lateral=lateral, min_radius=min_radius, barriers=barriers,
              far_barriers=far_barriers, far_gap=far_gap)
    chains = _link_once(pieces, **kw)
    if len(chains) < 2:
        return chains
    proxies = []
    for k, ch in enumerate(chains):
        xy = np.vstack([pc.xy[::-1] if rev else pc.xy for pc, rev in ch])
        cum = _arclen(xy)
        at = np.unique(np.r_[np.arange(0.0, cum[-1], RELINK_STEP), cum[-1]])
        xy = np.column_stack([np.interp(at, cum, xy[:, 0]), np.interp(at, cum, xy[:, 1])])
        proxies.append(Piece(xy=xy, z=np.zeros(len(xy)), width=0.0, component=k, kind=ch[0][0].kind))
    linked = _link_once(proxies, **kw)
    if len(linked) == len(chains):
        return chains
    out = []
    for lch in linked:
        seq = []
        for proxy, rev in lch:
            ch = chains[proxy.component]
            seq.extend([(pc, not r) for pc, r in reversed(ch)] if rev else ch)
        out.append(seq)
    return out


def _link_once(pieces, *, max_gap, lateral, min_radius, barriers, far_barriers, far_gap):
    """One round of :func:`link_pieces`."""
    pieces = _canonical_order(pieces)
    npc = len(pieces)
    if npc == 0:
        return []
    ends = [pc.end(k) for pc in pieces for k in (0, 1)]  # end e = 2*i + k
    P = np.array([e[0] for e in ends])
    D = np.array([e[1] for e in ends])
    cands = []
    from scipy.spatial import cKDTree  # noqa: PLC0415

    tree = cKDTree(P)
    pairs = tree.query_pairs(max_gap, output_type="ndarray")
    for a, b in pairs:
        ia, ib = a // 2, b // 2
        if ia == ib:
            continue
        p1, o1 = P[a], D[a]
        p2, o2 = P[b], D[b]
        g = p2 - p1
        gap = float(np.hypot(*g))
        t1, t2 = o1, -o2  # travel direction leaving a, arriving at b
        if gap > 1e-9:
            if float(g @ t1) < -0.3 or float(g @ t2) < -0.3:
                continue
        cosang = float(t1 @ t2)
        max_turn = math.radians(12.0) + gap / min_radius
        if cosang < math.cos(min(max_turn, math.pi / 2)):
            continue
        e1 = float(t1[0] * g[1] - t1[1] * g[0])
        e2 = float(t2[0] * (-g[1]) - t2[1] * (-g[0]))
        mis = 0.5 * abs(e1 - e2)
        bend = 0.5 * abs(e1 + e2)
        if mis > lateral + 0.004 * gap or bend > gap * gap / (2 * min_radius) + 0.05:
            continue
        cands.append((mis + 0.01 * gap, min(a, b), max(a, b)))
    cands.sort()
    near = barriers is not None and not barriers.is_empty
    far = far_barriers is not None and not far_barriers.is_empty
    if (near or far) and cands:
        p1, p2 = P[[c[1] for c in cands]], P[[c[2] for c in cands]]
        segs = shapely.linestrings(np.stack([p1, p2], axis=1))
        keep = ~shapely.intersects(segs, barriers) if near else np.ones(len(cands), bool)
        if far:
            long_ = keep & (np.hypot(*(p2 - p1).T) > far_gap)
            keep[long_] = ~shapely.intersects(segs[long_], far_barriers)
        cands = [c for c, k in zip(cands, keep) if k]
    used = np.zeros(2 * npc, bool)
    link = -np.ones(2 * npc, np.int64)
    sets = _DisjointSets(npc)
    for _, a, b in cands:
        if used[a] or used[b]:
            continue
        ra, rb = sets.find(a // 2), sets.find(b // 2)
        if ra == rb:
            continue
        used[a] = used[b] = True
        link[a], link[b] = b, a
        sets.join(ra, rb)
    # walk chains from free ends
    seen = np.zeros(npc, bool)
    chains = []
    for start in range(2 * npc):
        i = start // 2
        if seen[i] or link[start] >= 0:
            continue
        chain = []
        e = start
        while True:
            i = e // 2
            seen[i] = True
            rev = (e % 2) == 1  # entering at the end: travel reversed
            chain.append((pieces[i], rev))
            out_end = e ^ 1
            nxt = link[out_end]
            if nxt < 0:
                break
            e = int(nxt)
        chains.append(chain)
    return chains


#: Cell (m) of the road raster that :func:`split_at_mouths` walks on.
MOUTH_CELL = 0.5
#: How far (m) :func:`split_at_mouths` follows the road sideways, and how much farther (m) than along the
#: road before and after the gap it must reach for a side road's mouth: more than a lane, a parking strip or
#: a bus bay adds.
MOUTH_REACH, MOUTH_WIDEN = 12.0, 6.0


def _road_extent(lookup, p, d, reach=MOUTH_REACH, step=MOUTH_CELL, hole=3):
    """How far (m) the road continues from each point *p* (k, 2) in direction *d* (2,), holes under *hole* cells
    bridged; *reach* at most."""
    k = np.arange(1, int(round(reach / step)) + hole + 1)
    q = p[:, None, :] + (k * step)[None, :, None] * d[None, None, :]
    occ = lookup(q.reshape(-1, 2)).reshape(len(p), len(k))
    # the first run of *hole* empty cells ends the road
    run = np.stack([~occ[:, i:len(k) - hole + 1 + i] for i in range(hole)]).all(axis=0)
    first = np.where(run.any(axis=1), run.argmax(axis=1), len(k) - hole)
    return np.minimum(first * step, reach)


def split_at_mouths(chains, road_lookup, mouth_width: float):
    """Cut chains where a gap crosses the mouth of a side road.

    Painted lines stop where another road joins; linked across the mouth they
    would claim paint over the junction (and a dash gap as long as the mouth).
    A gap is a mouth when, over at least *mouth_width* of its length, the road
    reaches :data:`MOUTH_WIDEN` farther to one side than it does along the line
    4, 8 and 12 m before and after the gap (the narrowest of those, so the
    junction's own flared corners do not count as the regular road). An
    occluded gap (a parked car) shows less road, not more, and stays linked.

    *road_lookup* is called (once, and only if some gap is long enough) for a
    function telling whether points lie in a road cell.
    """
    if not any(len(ch) > 1 for ch in chains):
        return chains
    lookup = None
    out = []
    for chain in chains:
        cur = [chain[0]]
        for prev, nxt in zip(chain[:-1], chain[1:]):
            a = (prev[0].xy[0] if prev[1] else prev[0].xy[-1])
            b = (nxt[0].xy[-1] if nxt[1] else nxt[0].xy[0])
            gap = float(np.hypot(*(b - a)))
            if gap >= mouth_width:
                if lookup is None:
                    lookup = road_lookup() or (lambda q: np.zeros(len(q), bool))
                if _is_mouth(lookup, a, b, gap, mouth_width):
                    out.append(cur)
                    cur = []
            cur.append(nxt)
        out.append(cur)
    return out


def _is_mouth(lookup, a, b, gap, mouth_width):
    t = (b - a) / gap
    n = np.array([-t[1], t[0]])
    inside = a + np.outer(np.arange(0.25, gap, MOUTH_CELL), t)
    d = np.array([4.0, 8.0, 12.0])
    outside = np.concatenate([a - np.outer(d, t), b + np.outer(d, t)])
    outside = outside[lookup(outside)]  # stations on the road only
    if len(outside) == 0:
        return False
    for side in (n, -n):
        regular = float(_road_extent(lookup, outside, side).min())
        if regular + MOUTH_WIDEN > MOUTH_REACH:
            continue  # a road this wide to the side cannot show a mouth within the reach
        open_ = _road_extent(lookup, inside, side) >= regular + MOUTH_WIDEN
        if open_.sum() * MOUTH_CELL >= mouth_width:
            return True
    return False


# ---------------------------------------------------------------------------
# chains to boundaries
# ---------------------------------------------------------------------------
def _hermite(p0, d0, p1, d1, n):
    t = np.linspace(0, 1, n + 2)[1:-1][:, None]
    L = np.hypot(*(p1 - p0))
    h00 = 2 * t**3 - 3 * t**2 + 1
    h10 = t**3 - 2 * t**2 + t
    h01 = -2 * t**3 + 3 * t**2
    h11 = t**3 - t**2
    return h00 * p0 + h10 * L * d0 + h01 * p1 + h11 * L * d1


_BORDER_TANGENT_LENGTH = 4.0  # m: road-border pieces shorter than this do not give a bridge its direction


def _chain_polyline(chain, step):
    """Concatenate the pieces of a chain, bridging gaps with Hermite curves; returns xy, z and painted flags."""
    xs, zs, painted = [], [], []
    prev = None
    prev_len = 0.0
    for pc, rev in chain:
        xy = pc.xy[::-1] if rev else pc.xy
        z = pc.z[::-1] if rev else pc.z
        if prev is not None:
            p0, z0, d0 = prev
            d1 = xy[min(3, len(xy) - 1)] - xy[0]
            d1 = d1 / (np.hypot(*d1) or 1.0)
            gap = float(np.hypot(*(xy[0] - p0)))
            if pc.kind == "border" and gap > 0:
                # a short piece of road border (traced from scattered cells) points anywhere within a few tens
                # of degrees: bridging along its direction bows the border by a quarter of the gap times that
                # error; such an end takes the chord's direction instead
                chord = (xy[0] - p0) / gap
                if prev_len < _BORDER_TANGENT_LENGTH:
                    d0 = chord
                if pc.length < _BORDER_TANGENT_LENGTH:
                    d1 = chord
            if gap > step:
                n = int(gap / step)
                mid = _hermite(p0, d0, xy[0], d1, n)
                xs.append(mid)
                zs.append(np.linspace(z0, z[0], n + 2)[1:-1])
                painted.append(np.zeros(n, bool))
        xs.append(xy)
        zs.append(z)
        painted.append(np.ones(len(xy), bool))
        dl = xy[-1] - xy[max(len(xy) - 4, 0)]
        prev = (xy[-1], z[-1], dl / (np.hypot(*dl) or 1.0))
        prev_len = pc.length
    return np.vstack(xs), np.concatenate(zs), np.concatenate(painted)


def _resample(xy, z, step, smooth):
    """Smooth (moving average over +-smooth metres) and resample a polyline every *step* metres."""
    d = np.hypot(*np.diff(xy, axis=0).T)
    keep = np.concatenate([[True], d > 1e-6])
    xy, z = xy[keep], z[keep]
    s = _arclen(xy)
    if s[-1] <= 0:
        return np.column_stack([xy, z])[:1].repeat(2, axis=0)
    n = max(int(round(s[-1] / step)), 1)
    si = np.linspace(0, s[-1], n + 1)
    fine = max(step / 2, 0.05)
    sf = np.linspace(0, s[-1], max(int(s[-1] / fine), 1) + 1)
    xf = np.interp(sf, s, xy[:, 0])
    yf = np.interp(sf, s, xy[:, 1])
    zf = np.interp(sf, s, z)
    w = int(round(smooth / fine))
    if w > 0 and len(sf) > 2 * w + 1:
        xf, yf, zf = (_moving_average(a, w) for a in (xf, yf, zf))
    # re-measure after smoothing so the spacing is even along the smoothed line
    s2 = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(xf), np.diff(yf)))])
    n = max(int(round(s2[-1] / step)), 1)
    si = np.linspace(0, s2[-1], n + 1)
    return np.column_stack([np.interp(si, s2, xf), np.interp(si, s2, yf), np.interp(si, s2, zf)])


def _moving_average(a, w):
    """Moving average with a window shrinking towards the ends (the end points stay put)."""
    c = np.concatenate([[0.0], np.cumsum(a)])
    n = len(a)
    i = np.arange(n)
    half = np.minimum(np.minimum(i, n - 1 - i), w)
    return (c[i + half + 1] - c[i - half]) / (2 * half + 1)


def _strokes(chain):
    """Painted strokes along a chain: list of (s0, s1, width) in chain arc length (pieces of one component merge)."""
    out = []
    s = 0.0
    prev_end = None
    for pc, rev in chain:
        xy = pc.xy[::-1] if rev else pc.xy
        if prev_end is not None:
            s += float(np.hypot(*(xy[0] - prev_end)))
        ln = float(np.sum(np.hypot(*np.diff(xy, axis=0).T)))
        if out and s - out[-1][1] < 0.3:
            s0, _, w, wl = out[-1]
            out[-1] = (s0, s + ln, w + pc.width * ln, wl + ln)
        else:
            out.append((s, s + ln, pc.width * ln, ln))
        s += ln
        prev_end = xy[-1]
    return [(a, b, w / max(wl, 1e-9)) for a, b, w, wl in out]


#: A run of at most BROKEN_SOLID_DASHES dashes beside a solid line whose longest stroke exceeds the shortest
#: by more than the factor BROKEN_SOLID_SPREAD, and whose gaps are shorter than its strokes, is solid line.
BROKEN_SOLID_DASHES, BROKEN_SOLID_SPREAD = 3, 1.25


def _label_runs(lab):
    """Runs of equal labels: list of [label, first, last]."""
    runs = []
    for i, c in enumerate(lab):
        if runs and runs[-1][0] == c:
            runs[-1][2] = i
        else:
            runs.append([c, i, i])
    return runs


def _pattern_runs(strokes, solid_length):
    """Split strokes into runs of one pattern: list of (pattern, first, last stroke index)."""
    n = len(strokes)
    lab = ["S" if b - a >= solid_length else "D" for a, b, _ in strokes]
    # a lone short stroke between solid ones is an occluded bit of the solid line
    for i in range(n):
        if lab[i] == "D":
            left = lab[i - 1] if i > 0 else None
            right = lab[i + 1] if i < n - 1 else None
            lone = (left != "D") and (right != "D")
            if lone and ("S" in (left, right)):
                lab[i] = "S"
    runs = _label_runs(lab)
    # a few dashes beside a solid line, irregular and closer together than they are long, are that solid line
    # broken (a car hiding bits of it, the sparse edge of the survey): a dash pattern repeats one stroke and
    # one gap (a tail of 3 m / 6 m dashes cut by the survey edge keeps its long gaps)
    for k, (c, a, b) in enumerate(runs):
        if c != "D" or b - a + 1 > BROKEN_SOLID_DASHES:
            continue
        if not any(0 <= j < len(runs) and runs[j][0] == "S" for j in (k - 1, k + 1)):
            continue
        lens = np.array([strokes[i][1] - strokes[i][0] for i in range(a, b + 1)])
        gaps = np.array([strokes[i + 1][0] - strokes[i][1] for i in range(a, b)])
        if lens.max() > BROKEN_SOLID_SPREAD * lens.min() and np.median(gaps) < np.median(lens):
            lab[a:b + 1] = ["S"] * (b - a + 1)
    runs = _label_runs(lab)
    out = []
    for c, a, b in runs:
        if c == "D":
            out.extend(("dashed", x, y) for x, y in _gap_regimes(strokes, a, b))
        else:
            out.append(("solid", a, b))
    return out


def _gap_regimes(strokes, a, b, change=0.35):
    """Cut a run of dashes where the gap length changes for good (e.g. 3 m/6 m to 3 m/3 m before a junction).

    A single odd gap (a dash hidden by a car) does not cut: the change must hold for two gaps in a row.
    """
    gaps = [strokes[i + 1][0] - strokes[i][1] for i in range(a, b)]
    cuts = [a]
    cur = []
    for k, g in enumerate(gaps):
        if len(cur) >= 2:
            ref = float(np.median(cur))
            nxt = gaps[k + 1] if k + 1 < len(gaps) else None
            if (abs(g - ref) > change * ref and nxt is not None and abs(nxt - g) <= change * max(g, nxt)
                    and abs(nxt - ref) > change * ref):
                cuts.append(a + k + 1)
                cur = []
        cur.append(g)
    cuts.append(b + 1)
    return [(x, y - 1) for x, y in zip(cuts[:-1], cuts[1:])]


def _whole_dashes(strokes):
    """``(start, end)`` of the dashes of a dashed run: strokes less than half the median gap apart are one dash
    broken by a shadow (a car's, a pole's) and count once for the stroke length."""
    spans = [(a, b) for a, b, _ in strokes]
    if len(spans) < 3:
        return spans
    gaps = np.array([spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1)])
    short = gaps < 0.5 * float(np.median(gaps))
    out = [spans[0]]
    for (a, b), join in zip(spans[1:], short):
        if join:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def boundaries_from_chains(chains, params=None, *, prefix="b", kind=None):
    """Boundaries (dicts with local xyz and attributes) from linked chains of stroke pieces."""
    p = STAGES["boundaries"].resolve(params or {})
    out = []
    for chain in chains:
        xy, z, painted = _chain_polyline(chain, p["step"])
        if len(xy) < 2:
            continue
        s = _arclen(xy)
        strokes = _strokes(chain) if kind is None else [(0.0, s[-1], float(np.median([pc.width for pc, _ in chain])))]
        runs = _pattern_runs(strokes, p["solid_length"]) if kind is None else [("solid", 0, 0)]
        for r, (pattern, a, b) in enumerate(runs):
            # cut in the middle of the gap to the neighbouring run
            s0 = 0.0 if r == 0 else 0.5 * (strokes[a - 1][1] + strokes[a][0])
            s1 = s[-1] if r == len(runs) - 1 else 0.5 * (strokes[b][1] + strokes[b + 1][0])
            if s1 - s0 < p["min_length"]:
                continue
            sel = (s >= s0) & (s <= s1)
            sx = np.concatenate([[s0], s[sel], [s1]])
            pxy = np.column_stack([np.interp(sx, s, xy[:, 0]), np.interp(sx, s, xy[:, 1])])
            pz = np.interp(sx, s, z)
            xyz = _resample(pxy, pz, p["step"], p["smooth"])
            seg = strokes[a:b + 1]
            width = float(np.average([w for _, _, w in seg], weights=[max(b_ - a_, 1e-3) for a_, b_, _ in seg]))
            rec = dict(xyz=xyz, width=width, pattern=pattern, stroke=None, gap=None)
            if kind is None:
                rec["kind"] = "line_thick" if width >= p["thick_width"] else "line_thin"
                if pattern == "dashed":
                    dashes = _whole_dashes(seg)
                    lens = np.array([b_ - a_ for a_, b_ in dashes])
                    inner = lens[1:-1] if len(lens) >= 4 else lens
                    gaps = np.array([dashes[i + 1][0] - dashes[i][1] for i in range(len(dashes) - 1)])
                    rec["stroke"] = float(np.median(inner))
                    if len(gaps):
                        # an occluded dash shows as a gap of about stroke + 2 gaps: use the regular ones
                        g = float(np.median(gaps))
                        rec["gap"] = float(np.median(gaps[gaps < 1.5 * g]))
            else:
                rec["kind"] = kind
                rec["pattern"] = None
            out.append(rec)
    return out


def drop_overlaps(lines: list[dict], min_length: float, tol: float = 0.15) -> list[dict]:
    """Remove the stretches of boundaries that run on top of a longer one (within *tol*).

    Pieces of one painted line that the linker left in two chains give two
    boundaries over the same paint: the longer keeps it, the shorter keeps only
    its stretches away from it (those of at least *min_length*). The centres of
    the two lines of a double line are at least 0.24 m apart (RMS: 0.12 m
    line, 0.12 m gap), more than *tol*.
    """
    if len(lines) < 2:
        return lines
    order = sorted(range(len(lines)), key=lambda i: (-_arclen(lines[i]["xyz"])[-1], i))
    kept: list[dict] = []
    geoms: list = []
    for i in order:
        b = lines[i]
        xyz = b["xyz"]
        if geoms:
            tree = shapely.STRtree(geoms)
            pts = shapely.points(xyz[:, :2])
            near = np.zeros(len(xyz), bool)
            pi, gi = tree.query(pts, predicate="dwithin", distance=tol)
            near[pi] = True
        else:
            near = np.zeros(len(xyz), bool)
        if not near.any():
            kept.append((i, 0, b))
            geoms.append(shapely.linestrings(xyz[:, :2]))
            continue
        # runs of vertices away from the kept lines
        edges = np.flatnonzero(np.diff(np.concatenate([[0], (~near).astype(np.int8), [0]])))
        for a, e in zip(edges[::2], edges[1::2]):
            part = xyz[a:e]
            if len(part) >= 2 and _arclen(part)[-1] >= min_length:
                kept.append((i, int(a), dict(b, xyz=part)))
                geoms.append(shapely.linestrings(part[:, :2]))
    # in the original order (then along the line): ids stay stable
    return [b for _, _, b in sorted(kept, key=lambda t: (t[0], t[1]))]


# ---------------------------------------------------------------------------
# curbs and road borders
# ---------------------------------------------------------------------------
def _corner_cells(xy: np.ndarray, radius: float, min_linearity: float) -> np.ndarray:
    """Which of the cell centres *xy* (n, 2) sit at a corner of the line they draw.

    A cell's neighbours within *radius* spread along one direction on a line
    and in two where the line turns sharply (the nose of a median, a
    driveway's edge): linearity ``1 - lambda2 / lambda1`` of their covariance
    falls. Cells below *min_linearity* with enough neighbours to judge are
    corners.
    """
    n = len(xy)
    if n < 3:
        return np.zeros(n, bool)
    from scipy.spatial import cKDTree  # noqa: PLC0415

    pairs = cKDTree(xy).query_pairs(radius, output_type="ndarray")
    i = np.concatenate([pairs[:, 0], pairs[:, 1], np.arange(n)])
    j = np.concatenate([pairs[:, 1], pairs[:, 0], np.arange(n)])
    d = xy[j] - xy[i]  # relative to the cell: no cancellation at projected coordinates
    cnt = np.bincount(i, minlength=n).astype(np.float64)
    mx, my = np.bincount(i, d[:, 0], n) / cnt, np.bincount(i, d[:, 1], n) / cnt
    cxx = np.bincount(i, d[:, 0] ** 2, n) / cnt - mx * mx
    cyy = np.bincount(i, d[:, 1] ** 2, n) / cnt - my * my
    cxy = np.bincount(i, d[:, 0] * d[:, 1], n) / cnt - mx * my
    half_tr = 0.5 * (cxx + cyy)
    root = np.sqrt(np.maximum(half_tr ** 2 - (cxx * cyy - cxy * cxy), 0.0))
    l1, l2 = half_tr + root, half_tr - root
    with np.errstate(invalid="ignore", divide="ignore"):
        linearity = np.where(l1 > 0, 1.0 - l2 / l1, 1.0)
    return (cnt >= 6) & (linearity < min_linearity)


def curb_lines(xyz: np.ndarray, params=None, barriers=None):
    """Curb boundaries (dicts, local coordinates) from curb points *xyz*.

    Curb points are cut at the corners of the lines they draw first: a curb
    that runs round the nose of a median would otherwise join both sides of
    the median into one component, which no straight piece fits.
    """
    p = STAGES["curbs"].resolve(params or {})
    bp = STAGES["boundaries"].resolve({})
    if len(xyz) and p["corner_linearity"] > 0:
        cells, inv = np.unique(np.floor(xyz[:, :2] / p["cell"]).astype(np.int64), axis=0, return_inverse=True)
        corner = _corner_cells((cells + 0.5) * p["cell"], p["corner_radius"], p["corner_linearity"])
        xyz = xyz[~corner[inv.ravel()]]
    pieces = []
    for ci, idx in enumerate(_components(xyz, p["cell"], p["link"], p["min_points"])):
        pts = xyz[idx]
        # the curb line is the foot of the face: the lower half of the points of a cross-section
        pieces.extend(_split_straight(pts, ci, 0.06, 0.5, 0.5, "curb"))
    chains = link_pieces(pieces, max_gap=p["max_gap"], lateral=p["lateral"], min_radius=10.0, barriers=barriers)
    return boundaries_from_chains(chains, dict(min_length=p["min_length"], step=bp["step"], smooth=bp["smooth"]),
                                  kind="curbstone")


def _keys(ix, iy, span):
    return iy * span + ix


_DENSE_CELLS = 1 << 25  # road-border rasters up to this many cells (a 1 km square at 0.2 m) are counted densely


def _member(sorted_keys: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Whether each of *q* is among *sorted_keys* (sorted, unique)."""
    if len(sorted_keys) == 0:
        return np.zeros(len(q), bool)
    j = np.minimum(np.searchsorted(sorted_keys, q), len(sorted_keys) - 1)
    return sorted_keys[j] == q


def road_borders(road_xyz: np.ndarray, ground_xy: np.ndarray, curb_xy: np.ndarray, params=None, barriers=None,
                 mouth_width: float | None = None, road_lookup=None):
    """Road edges without a curb: road cells next to unsealed ground, away from curbs.

    On a raster of ``border_cell`` cells, an edge cell is a road cell next to a
    ground cell where road and ground cells each make at least ``border_share``
    of the square window of ``border_reach`` around it (a few stray returns of
    either class make no edge). Its vertex lies where the edge crosses that
    window: shifted from the cell's centre towards the ground by the road's
    share above one half times the window's width across the edge, so the
    border is placed to a fraction of a cell. The height of a vertex is the
    mean height of the road points in its cell.

    Pieces are linked across gaps up to ``max_gap`` (a lorry's shadow) but not
    across the mouth of a side road at least *mouth_width* wide (default:
    ``boundaries.mouth_width``; see :func:`split_at_mouths`). *road_lookup*
    (optional) builds the road raster of that test, as :func:`split_at_mouths`
    takes it (default: from *road_xyz*).
    """
    p = STAGES["curbs"].resolve(params or {})
    if mouth_width is None:
        mouth_width = STAGES["boundaries"].resolve({})["mouth_width"]
    cell = p["border_cell"]
    if len(road_xyz) == 0 or len(ground_xy) == 0:
        return []
    reach = int(round(p["border_reach"] / cell))
    road_xy = road_xyz[:, :2]
    allxy = np.vstack([road_xy, ground_xy])
    margin = reach + 2  # empty columns on each side: a window never wraps into the next row
    x0, y0 = np.floor(allxy.min(axis=0) / cell) - margin
    span = int(np.floor(allxy[:, 0].max() / cell) - x0) + margin + 2

    def keys(xy):
        ix = np.floor(xy[:, 0] / cell).astype(np.int64) - int(x0)
        iy = np.floor(xy[:, 1] / cell).astype(np.int64) - int(y0)
        return _keys(ix, iy, span)

    rows = int(np.floor(allxy[:, 1].max() / cell) - y0) + margin + 2
    rk, gk = keys(road_xy), keys(ground_xy)
    # counted densely (linear time; a road's millions of points sort slowly) unless the raster's box is much
    # larger than the points (a long diagonal drive): then by sorting, in memory bounded by the points
    if span * rows <= min(_DENSE_CELLS, 2 * len(allxy) + (1 << 20)):
        cnt = np.bincount(rk, minlength=span * rows)
        road = np.flatnonzero(cnt)
        road_z = np.bincount(rk, road_xyz[:, 2], span * rows)[road] / cnt[road]
        gcnt = np.bincount(gk, minlength=span * rows)
        gcnt[road] = 0
        ground = np.flatnonzero(gcnt)
    else:
        road, inverse = np.unique(rk, return_inverse=True)
        road_z = np.bincount(inverse, road_xyz[:, 2], len(road)) / np.bincount(inverse, minlength=len(road))
        ground = np.setdiff1d(np.unique(gk), road, assume_unique=True)
    ring = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dx or dy]
    near_ground = np.zeros(len(road), bool)
    for dx, dy in ring:
        near_ground |= _member(ground, road + dy * span + dx)
    # an edge cell has road on one side and ground on the other: both make a fair share of its neighbourhood
    # (a few grass returns taken for road beyond the edge, or a rough cell inside the road, make none)
    shift = None
    if reach > 0 and p["border_share"] > 0 and near_ground.any():
        cand = road[near_ground]
        n_road = np.zeros(len(cand))
        n_ground = np.zeros(len(cand))
        toward = np.zeros((len(cand), 2))  # mean offset of the ground cells minus that of the road cells
        for dy in range(-reach, reach + 1):
            for dx in range(-reach, reach + 1):
                q = cand + dy * span + dx
                r, g = _member(road, q), _member(ground, q)
                n_road += r
                n_ground += g
                toward += np.outer(g.astype(np.float64) - r, [dx, dy])
        share = n_road / (n_road + n_ground)
        keep = (share >= p["border_share"]) & (share <= 1.0 - p["border_share"])
        # where the edge crosses the window: a straight edge at distance d from the centre (towards the
        # ground, along the unit normal n) leaves the road a share of about 1/2 + d / (W max(|nx|, |ny|)) of
        # a square window W wide (its chord through the centre is W / max(|nx|, |ny|) long)
        normal = toward[keep] / np.maximum(np.hypot(toward[keep, 0], toward[keep, 1]), 1e-9)[:, None]
        across = (2 * reach + 1) * cell * np.abs(normal).max(axis=1)
        shift = normal * ((share[keep] - 0.5) * across)[:, None]
        near_ground[np.flatnonzero(near_ground)[~keep]] = False
    edge = road[near_ground]
    if len(edge) == 0:
        return []
    ex = (edge % span + int(x0) + 0.5) * cell
    ey = (edge // span + int(y0) + 0.5) * cell
    if shift is not None:
        ex, ey = ex + shift[:, 0], ey + shift[:, 1]
    else:
        # the edge runs between the last road cell and the first ground cell: half a cell out from the centre,
        # towards the ground neighbours
        out = np.zeros((len(edge), 2))
        for dx, dy in ring:
            out[_member(ground, edge + dy * span + dx)] += np.array([dx, dy]) / math.hypot(dx, dy)
        out /= np.maximum(np.hypot(out[:, 0], out[:, 1]), 1e-9)[:, None]
        ex, ey = ex + 0.5 * cell * out[:, 0], ey + 0.5 * cell * out[:, 1]
    exyz = np.column_stack([ex, ey, road_z[near_ground]])
    if len(curb_xy):
        from scipy.spatial import cKDTree  # noqa: PLC0415

        d, _ = cKDTree(curb_xy).query(exyz[:, :2], distance_upper_bound=p["border_clear"])
        exyz = exyz[~np.isfinite(d)]
    if len(exyz) == 0:
        return []
    pieces, small = [], []
    comps = _components(exyz, cell, 2, 25, small)
    for ci, idx in enumerate(comps):
        pieces.extend(_split_straight(exyz[idx], ci, 0.08, 0.5, 1.0, "border"))
    pieces.extend(_sparse_border_pieces(exyz, small, len(comps)))
    chains = link_pieces(pieces, max_gap=p["max_gap"], lateral=0.3, min_radius=10.0, barriers=barriers)
    # a road without curbs has no corner to stop its border at a side road: the mouth test does
    chains = split_at_mouths(chains, road_lookup or (lambda: _road_lookup(road_xy, MOUTH_CELL)), mouth_width)
    # two borders side by side within half a metre are one edge traced twice (two chains over the edge cells
    # of a ragged sliver of ground): the longer keeps it
    return drop_overlaps(boundaries_from_chains(chains, dict(min_length=5.0), kind="road_border"), 5.0, tol=0.5)


#: Far from the scanner an edge between road and ground shows as a cell or a few per scan line, too few to
#: make a piece: edge cells of such small groups in a straight row (:func:`hdmap._specks.speck_rows`, each
#: cell a speck), up to SPARSE_BORDER_GAP apart, at least SPARSE_BORDER_COUNT of them within
#: SPARSE_BORDER_TOL of the row's line, make a border piece (the sparsely scanned edge of a side road).
SPARSE_BORDER_GAP, SPARSE_BORDER_COUNT, SPARSE_BORDER_TOL = 2.0, 5, 0.15


def _sparse_border_pieces(exyz, groups, first_id):
    """Border pieces from rows of the edge cells in *groups* (index arrays into *exyz*, the groups too small
    to trace alone)."""
    pts = [exyz[[i]] for idx in groups for i in idx]
    out = []
    for members, m, u, centres in _specks.speck_rows(pts, np.empty((0, 2)), SPARSE_BORDER_GAP, SPARSE_BORDER_TOL,
                                                     SPARSE_BORDER_COUNT, 1.0, min_points=1):
        z = np.array([float(np.median(pts[i][:, 2])) for i in members])
        out.append(Piece(xy=m + np.outer((centres - m) @ u, u), z=z, width=0.0, component=first_id + len(out),
                         kind="border", sparse=True))
    return out


# ---------------------------------------------------------------------------
# lanes
# ---------------------------------------------------------------------------
def build_lanes(boundaries, *, road_cells=None, drives=(), params=None):
    """Lane sections between neighbouring boundaries.

    Parameters
    ----------
    boundaries : list of dict
        With ``id``, ``xyz`` (local), ``kind`` and ``pattern``.
    road_cells : callable, optional
        ``road_cells(xy) -> bool array``: whether a point lies on road surface.
    drives : list of (n, 2) arrays with (n, 2) unit headings
        Drive polylines (local xy) and directions, the first one defining ``forward``.
    """
    p = STAGES["lanes"].resolve(params or {})
    wmin, wmax = p["width_range"]
    if len(boundaries) < 2:
        return []
    lines = [shapely.linestrings(b["xyz"][:, :2]) for b in boundaries]
    tree = shapely.STRtree(lines)
    samples: dict = {}
    cos_max = math.cos(math.radians(p["max_angle"]))
    for bi, b in enumerate(boundaries):
        line = lines[bi]
        L = line.length
        if L < p["station"]:
            continue
        # stations every `station` metres from one end to the other, both ends included, so a lane runs as far
        # as its boundaries do
        st = np.arange(0.0, L, p["station"])
        st = np.append(st, L) if L - st[-1] > 0.25 * p["station"] else np.append(st[:-1], L)
        pts = shapely.line_interpolate_point(line, st)
        a = shapely.get_coordinates(shapely.line_interpolate_point(line, np.maximum(st - 0.5, 0)))
        c = shapely.get_coordinates(shapely.line_interpolate_point(line, np.minimum(st + 0.5, L)))
        t = c - a
        t /= np.maximum(np.hypot(*t.T), 1e-9)[:, None]
        nrm = np.column_stack([-t[:, 1], t[:, 0]])
        P = shapely.get_coordinates(pts)
        for side in (1.0, -1.0):
            q0 = P + side * 0.05 * nrm
            q1 = P + side * (wmax + 0.3) * nrm
            rays = shapely.linestrings(np.stack([q0, q1], axis=1))
            ri, bj = tree.query(rays, predicate="intersects")
            keep = bj != bi
            ri, bj = ri[keep], bj[keep]
            if len(ri) == 0:
                continue
            inter = shapely.intersection(rays[ri], np.array(lines, dtype=object)[bj])
            ip = shapely.get_coordinates(shapely.centroid(inter))
            dist = np.hypot(*(ip - P[ri]).T)
            # nearest crossing per ray
            order = np.lexsort((dist, ri))
            ri, bj, dist, ip = ri[order], bj[order], dist[order], ip[order]
            first = np.concatenate([[True], ri[1:] != ri[:-1]])
            for r, j, d, xy in zip(ri[first], bj[first], dist[first], ip[first]):
                if not (wmin <= d <= wmax):
                    continue
                lj = lines[j]
                sj = lj.project(shapely.points(xy))
                g0 = np.array(lj.interpolate(max(sj - 0.5, 0)).coords[0])
                g1 = np.array(lj.interpolate(min(sj + 0.5, lj.length)).coords[0])
                tj = g1 - g0
                nj = np.hypot(*tj)
                if nj == 0 or abs(float(tj @ t[r])) / nj < cos_max:
                    continue
                if _not_a_lane(boundaries[bi], boundaries[j]):
                    continue
                mid = 0.5 * (P[r] + xy)
                if road_cells is not None and not road_cells(mid[None, :])[0]:
                    continue
                key = (min(bi, j), max(bi, j))
                zb = float(np.interp(st[r], _arclen(b["xyz"]), b["xyz"][:, 2]))
                zj = float(np.interp(sj, _arclen(boundaries[j]["xyz"]), boundaries[j]["xyz"][:, 2]))
                # parameterise along the boundary with the smaller index so both sides' samples line up
                samples.setdefault(key, []).append((bi, float(st[r]) if bi == key[0] else float(sj), mid, 0.5 * (zb + zj), d))
    sections = []
    for key, smp in sorted(samples.items()):
        smp.sort(key=lambda r: r[1])
        s = np.array([r[1] for r in smp])
        # both sides give a sample near each station: merge those within half a station
        groups = np.concatenate([[0], np.cumsum(np.diff(s) > 0.5 * p["station"])])
        S = np.bincount(groups, s) / np.bincount(groups)
        M = np.column_stack([np.bincount(groups, [r[2][0] for r in smp]), np.bincount(groups, [r[2][1] for r in smp])])
        M /= np.bincount(groups)[:, None]
        Z = np.bincount(groups, [r[3] for r in smp]) / np.bincount(groups)
        W = np.bincount(groups, [r[4] for r in smp]) / np.bincount(groups)
        cut = np.flatnonzero(np.diff(S) > p["section_gap"]) + 1
        for a, b in zip(np.concatenate([[0], cut]), np.concatenate([cut, [len(S)]])):
            # short sections stay for now: a lane whose boundary pair changes every few metres (a curb, then a
            # road border) is still one lane; :func:`_to_lanemap` drops short chains of linked sections
            if b - a < 2:
                continue
            sections.append(dict(pair=key, xy=M[a:b], z=Z[a:b], width=W[a:b]))
    return _orient_sections(sections, boundaries, drives, p)


def _arclen(xyz):
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xyz[:, :2], axis=0).T))])


def _not_a_lane(b1, b2):
    """Space between a solid edge line (Breitstrich) and a curb or road border is a shoulder, not a lane."""
    edge = {"curbstone", "road_border"}
    solid_edge = [b["kind"] == "line_thick" and b.get("pattern") == "solid" for b in (b1, b2)]
    if all(solid_edge):
        return True  # between two carriageway edge lines: a median or a traffic island
    for a, b, sa in ((b1, b2, solid_edge[0]), (b2, b1, solid_edge[1])):
        if sa and b["kind"] in edge:
            return True
    return False


_COS_ALONG = math.cos(math.radians(45.0))


def _keep_right(sec, boundaries, tang, traffic) -> bool:
    """Whether a section no drive ran along is driven in the direction *tang*: a lane between a lane line and
    the edge of the road (curb or road border) has the edge on its right in right-hand traffic, on its left
    in left-hand traffic; other lanes keep the direction of their points."""
    edge = {"curbstone", "road_border"}
    i, j = sec["pair"]
    kinds = [boundaries[i]["kind"] in edge, boundaries[j]["kind"] in edge]
    if kinds[0] == kinds[1]:
        return True
    k = i if kinds[0] else j
    xy = sec["xy"]
    mid = xy[len(xy) // 2]
    c = boundaries[k]["xyz"][:, :2]
    near = c[np.argmin(np.hypot(*(c - mid).T))]
    right = float((near - mid) @ np.array([tang[1], -tang[0]])) > 0  # the edge lies right of tang
    return right == (traffic == "right")


def _orient_sections(sections, boundaries, drives, p):
    """Driving direction, left/right boundaries and links of lane sections.

    Each section's points are put in its driving direction (that of the drives
    nearest to it); ``forward`` says whether that agrees with the road's
    reference direction, the heading of the first drive where it passes
    closest (without drives: the section's own orientation).
    """
    if drives:
        dxy = np.vstack([d[0] for d in drives])
        dh = np.vstack([d[1] for d in drives])
        from scipy.spatial import cKDTree  # noqa: PLC0415

        dtree = cKDTree(dxy)
        ref_tree = cKDTree(drives[0][0])
    out = []
    for sec in sections:
        xy = sec["xy"]
        tang = xy[-1] - xy[0]
        tang = tang / (np.hypot(*tang) or 1.0)
        forward = True
        voted = False
        if drives:
            d, j = dtree.query(xy, distance_upper_bound=p["drive_reach"])
            ok = np.isfinite(d)
            if ok.any():
                # the nearest drive (laterally) decides; votes weighted by closeness, only drives running
                # along the section (a drive across a side road says nothing of the side road's lanes)
                proj = dh[j[ok]] @ tang
                w = (1.0 / (0.5 + d[ok])) * (np.abs(proj) >= _COS_ALONG)
                voted = bool(w.any())
                forward = float(np.sum(w * proj)) >= 0
        if not voted:
            forward = _keep_right(sec, boundaries, tang, p["traffic"])
        if not forward:
            sec = dict(sec, xy=xy[::-1], z=sec["z"][::-1], width=sec["width"][::-1])
            tang = -tang
        mid = sec["xy"][len(sec["xy"]) // 2]
        sec["forward"] = True
        if drives:
            _, k = ref_tree.query(mid)
            sec["forward"] = bool(float(drives[0][1][k] @ tang) >= 0)
        # left / right boundary by the side of the centre line they lie on
        i, j = sec["pair"]
        nrm = np.array([-tang[1], tang[0]])
        ci = boundaries[i]["xyz"][:, :2]
        side_i = float((ci[np.argmin(np.hypot(*(ci - mid).T))] - mid) @ nrm)
        sec["left"], sec["right"] = (i, j) if side_i > 0 else (j, i)
        out.append(sec)
    return out


# ---------------------------------------------------------------------------
# the whole chain
# ---------------------------------------------------------------------------
def _drive_lines(trajectories, origin, ref_heading=None):
    """Local (xy, unit heading in the direction driven) of each trajectory, every ~1 m."""
    drives = []
    for tr in trajectories:
        xy = tr.xyz[:, :2] - origin
        d = _arclen(xy)
        keep = np.concatenate([[True], np.diff(np.floor(d)) > 0])
        xy = xy[keep]
        if len(xy) < 2:
            continue
        h = np.gradient(xy, axis=0)
        h /= np.maximum(np.hypot(*h.T), 1e-9)[:, None]
        drives.append((xy, h))
    return drives


def extract(cloud, classification=None, trajectory=None, params=None, *, road_id: str = "road") -> LaneMap:
    """Build the lane-level map of classified points.

    Parameters
    ----------
    cloud : PointCloud or (n, 3) array
        The points (map CRS).
    classification : (n,) array, optional
        Class codes (:mod:`hdmap.classes`); default ``cloud.classification``.
    trajectory : Trajectory or list of Trajectory, optional
        The drives: they give the driving direction of the lanes (without one,
        lanes point along their boundaries' order and ``direction`` is
        ``forward``).
    params : mapping, optional
        ``{"stage": {"name": value}}`` or ``{"stage.name": value}`` for the stages in :data:`STAGES`.

    Returns
    -------
    LaneMap
    """
    par = resolve_stages(STAGES, params)
    xyz = np.asarray(getattr(cloud, "xyz", cloud), dtype=np.float64)
    cls = np.asarray(classification if classification is not None else cloud.attrs["classification"])
    if len(cls) != len(xyz):
        raise ValueError(f"classification has {len(cls)} values for {len(xyz)} points")
    trajs = [] if trajectory is None else (list(trajectory) if isinstance(trajectory, (list, tuple)) else [trajectory])
    epsg = 25832
    crs = getattr(cloud, "crs", None)
    if crs is not None and crs.to_epsg():
        epsg = int(crs.to_epsg())
    if len(xyz) == 0:
        return LaneMap(epsg=epsg, metadata={"generator": "hdmap.extract"})
    origin = np.floor(xyz[:, :2].min(axis=0) / 100.0) * 100.0
    loc = xyz.copy()
    loc[:, :2] -= origin
    road = (cls == C.Class.ROAD_SURFACE) | (cls == C.Class.ROAD_MARKING)
    parts = local_vectors(loc, cls, par)
    return assemble(parts["lines"], parts["curbs"], parts["borders"], parts["markings"], loc[road, :2], trajs,
                    origin, epsg, par, road_id=road_id)


#: Clearance (m) of a link barrier around a stop line or crosswalk, and how far (m) from each end of a stop
#: line a link may still pass: the lane line a stop line ends at runs on past the bar's end. Only links up to
#: STOP_LINE_PASS_GAP (m) long pass there (a dash gap): a longer one would carry a centre line across a junction.
BARRIER_CLEARANCE, STOP_LINE_END, STOP_LINE_PASS_GAP = 0.3, 0.5, 8.0


def _link_barrier(kind: str, box, *, passage: bool = True) -> shapely.Geometry:
    """The area no link may cross around a transverse marking (its outline *box*, four corners).

    A crosswalk bars links over its whole outline plus :data:`BARRIER_CLEARANCE`.
    A stop line bars them across its width plus that clearance but only up to
    :data:`STOP_LINE_END` from each end: the stop line ends at the lane's
    boundary, whose dashes continue past the bar's end (a dash often touches
    or crosses it) and must link there. With *passage* False a stop line bars
    its whole outline too (for links longer than :data:`STOP_LINE_PASS_GAP`).
    """
    box = np.asarray(box, dtype=np.float64)
    if kind != "stop_line" or not passage:
        return shapely.buffer(shapely.Polygon(box), BARRIER_CLEARANCE)
    m, u, n = _pca(box)
    d = box - m
    uu, vv = d @ u, d @ n
    u0, u1 = uu.min() + STOP_LINE_END, uu.max() - STOP_LINE_END
    if u1 <= u0:  # a bar shorter than both ends' passages: nothing to bar
        return shapely.Polygon()
    v0, v1 = vv.min() - BARRIER_CLEARANCE, vv.max() + BARRIER_CLEARANCE
    return shapely.Polygon([m + a * u + b * n for a, b in ((u0, v0), (u1, v0), (u1, v1), (u0, v1))])


def local_vectors(loc: np.ndarray, cls: np.ndarray, par: dict) -> dict:
    """The point-bound half of :func:`extract`: boundaries and marking objects of classified points.

    Parameters
    ----------
    loc : (n, 3) float array
        Points in local coordinates (a fixed origin subtracted: cell grids are
        aligned to it, so two calls on overlapping points agree where they overlap).
    cls : (n,) class codes
    par : dict
        Resolved :data:`STAGES` parameters.

    Returns
    -------
    dict
        ``lines``, ``curbs``, ``borders`` (lists of boundary dicts with local
        ``xyz``, ``kind``, ``pattern``, ``width``, ``stroke``, ``gap``) and
        ``markings`` (``(type, polygon, z, group, subtype)`` tuples, local).
    """
    mk = loc[cls == C.Class.ROAD_MARKING]
    objs = marking_objects(mk, par["objects"], loc[cls == C.Class.ROAD_SURFACE, :2])
    bars = [m for m in objs.markings if m[0] in ("stop_line", "crosswalk")]
    transverse = [shapely.Polygon(m[1]) for m in bars]
    barriers = shapely.union_all([_link_barrier(m[0], m[1]) for m in bars]) if bars else None
    # stop lines whole, for the links too long to be a dash gap beside a stop line's end
    stops = [m[1] for m in bars if m[0] == "stop_line"]
    whole = shapely.union_all([_link_barrier("stop_line", box, passage=False) for box in stops]) if stops else None
    bp = par["boundaries"]
    pieces = objs.pieces
    if transverse and pieces:
        # a stroke lying mostly on a crosswalk or stop line is a frayed bit of it: lines stop short of them
        on_bars = shapely.union_all(shapely.make_valid(transverse))
        geoms = np.array([shapely.linestrings(pc.xy) for pc in pieces], dtype=object)
        on = shapely.length(shapely.intersection(geoms, on_bars)) / np.maximum(shapely.length(geoms), 1e-9)
        pieces = [pc for pc, f in zip(pieces, on) if f < 0.5]
    chains = link_pieces(pieces, max_gap=bp["max_gap"], lateral=bp["lateral"], min_radius=bp["min_radius"],
                         barriers=barriers, far_barriers=whole, far_gap=STOP_LINE_PASS_GAP)
    road = (cls == C.Class.ROAD_SURFACE) | (cls == C.Class.ROAD_MARKING)
    built = []

    def road_lookup():  # built once, and only if a gap of the lines or the borders needs it
        if not built:
            built.append(_road_lookup(loc[road, :2], MOUTH_CELL))
        return built[0]

    chains = split_at_mouths(chains, road_lookup, bp["mouth_width"])
    chains = [ch for ch in chains if not _lone_sparse(ch, par["objects"]["speck_alone"])]
    lines = drop_overlaps(boundaries_from_chains(chains, bp), bp["min_length"])
    curb_xyz = loc[cls == C.Class.CURB]
    # curbs and borders never link across painted lines, crosswalks or the body of a stop line (a junction mouth)
    line_geoms = [shapely.linestrings(b["xyz"][:, :2]) for b in lines]
    cb = shapely.union_all(line_geoms + ([barriers] if barriers is not None else []))
    curbs = curb_lines(curb_xyz, par["curbs"], barriers=cb)
    # every road and ground point: the border lies where each fills half of the cells around it, and a
    # sample of either (at the sparse far edge of a drive) would shift it
    borders = road_borders(loc[road], loc[cls == C.Class.GROUND, :2], curb_xyz[:, :2], par["curbs"], barriers=cb,
                           mouth_width=bp["mouth_width"], road_lookup=road_lookup)
    # a stop line traced from a few far scan lines comes out short at its ends
    lines, stops = _transverse_lines(lines, curbs + borders, TRANSVERSE_SHORTER * par["objects"]["stop_line_length"])
    return {"lines": lines, "curbs": curbs, "borders": borders, "markings": objs.markings + stops}


#: A lone stroke up to TRANSVERSE_MAX_LENGTH long (m) whose surroundings within TRANSVERSE_REACH (m) hold
#: at least TRANSVERSE_MIN_CONTEXT m of lines, curbs and borders across it and at most half as much along
#: it lies across the road: a stop line (see :func:`_transverse_lines`).
TRANSVERSE_MAX_LENGTH, TRANSVERSE_REACH, TRANSVERSE_MIN_CONTEXT = 8.0, 3.0, 4.0
#: ... and at least this share of ``objects.stop_line_length`` long.
TRANSVERSE_SHORTER = 0.75


def _transverse_lines(lines, edges, min_length):
    """Lines that are stop lines scanned along their length: ``(lines kept, stop-line markings)``.

    Far from the scanner, where the scan lines run along a side road's stop line, a
    band 0.3-0.5 m wide is crossed by one or two scan lines and reads as narrow as a
    lane line: a lone dash. But it lies across its road: the lines, curbs and
    borders (*edges*) around it run across it, not along it. A single stroke (a
    dashed line without a gap) at least *min_length* long whose surroundings say so
    becomes a stop line.
    """
    if not lines:
        return lines, []
    geoms = [shapely.linestrings(b["xyz"][:, :2]) for b in lines] + \
            [shapely.linestrings(b["xyz"][:, :2]) for b in edges if len(b["xyz"]) >= 2]
    tree = shapely.STRtree(geoms)
    keep, stops = [], []
    cos_along, cos_across = math.cos(math.radians(30.0)), math.cos(math.radians(60.0))
    for i, b in enumerate(lines):
        xy = b["xyz"][:, :2]
        chord = xy[-1] - xy[0]
        length = float(np.hypot(*chord))
        if not (b.get("pattern") == "dashed" and b.get("gap") is None
                and min_length <= length <= TRANSVERSE_MAX_LENGTH and length >= 0.98 * geoms[i].length):
            keep.append(b)
            continue
        u = chord / length
        zone = shapely.buffer(geoms[i], TRANSVERSE_REACH)
        along = across = 0.0
        for j in tree.query(zone, predicate="intersects"):
            if int(j) == i:
                continue
            for seg in shapely.get_parts(shapely.intersection(geoms[int(j)], zone)):
                if seg.geom_type != "LineString":
                    continue
                c = shapely.get_coordinates(seg)
                d = np.diff(c, axis=0)
                ln = np.hypot(*d.T)
                cosine = np.abs(d @ u) / np.maximum(ln, 1e-12)
                along += float(ln[cosine >= cos_along].sum())
                across += float(ln[cosine <= cos_across].sum())
        if across >= TRANSVERSE_MIN_CONTEXT and along <= 0.5 * across:
            nrm = np.array([-u[1], u[0]])
            m = 0.5 * (xy[0] + xy[-1])
            h = 0.5 * max(float(b["width"]), 0.05)
            box = np.array([m + a * 0.5 * length * u + c * h * nrm for a, c in ((-1, -1), (1, -1), (1, 1), (-1, 1))])
            stops.append(("stop_line", box, float(np.median(b["xyz"][:, 2])), None, None))
        else:
            keep.append(b)
    return keep, stops


def _lone_sparse(chain, min_length: float) -> bool:
    """Whether a chain is one sparsely sampled stroke shorter than *min_length*."""
    return len(chain) == 1 and chain[0][0].sparse and chain[0][0].length < min_length


def assemble(lines, curbs, borders, markings, road_xy, trajectories, origin, epsg: int, par: dict, *,
             road_id: str = "road", road_cell: float = 0.5) -> LaneMap:
    """The map-wide half of :func:`extract`: lanes between the boundaries, links, ids, world coordinates.

    *lines*, *curbs*, *borders* and *markings* are as :func:`local_vectors`
    returns them (local to *origin*); *road_xy* are road points or the centres
    of *road_cell* cells holding road points (local). *par* are resolved
    :data:`STAGES` parameters (``resolve_stages(STAGES, ...)``).
    """
    bnd = [dict(b, id=f"line{i + 1}") for i, b in enumerate(lines)]
    bnd += [dict(b, id=f"curb{i + 1}") for i, b in enumerate(curbs)]
    bnd += [dict(b, id=f"edge{i + 1}") for i, b in enumerate(borders)]
    trajs = list(trajectories or [])
    road_cells = _road_lookup(np.asarray(road_xy, dtype=np.float64).reshape(-1, 2), road_cell)
    drives = _drive_lines(trajs, origin)
    sections = build_lanes(bnd, road_cells=road_cells, drives=drives, params=par["lanes"])
    return _to_lanemap(bnd, sections, markings, origin, epsg, road_id, trajs, bridge_gap=par["lanes"]["bridge_gap"],
                       link_distance=par["lanes"]["link_distance"], road_cells=road_cells,
                       continue_length=par["lanes"]["continue_length"], min_length=par["lanes"]["min_length"])


def _road_lookup(road_xy, cell):
    """A function telling whether points lie in a *cell* with road points (None if there are none)."""
    if len(road_xy) == 0:
        return None
    ij = np.floor(road_xy / cell).astype(np.int64)
    lo, hi = ij.min(axis=0), ij.max(axis=0)
    span = int(hi[0] - lo[0]) + 1
    keys = np.unique((ij[:, 1] - lo[1]) * span + (ij[:, 0] - lo[0]))

    def lookup(xy):
        f = np.floor(np.asarray(xy, dtype=np.float64).reshape(-1, 2) / cell)
        # outside the raster's box a key would wrap into a neighbouring row (split_at_mouths walks 13 m out)
        inside = np.all((f >= lo) & (f <= hi), axis=1)  # NaN fails too
        q = f[inside].astype(np.int64)
        out = np.zeros(len(f), bool)
        out[inside] = _member(keys, (q[:, 1] - lo[1]) * span + (q[:, 0] - lo[0]))
        return out

    return lookup


def _world(xy, z, origin):
    return np.column_stack([xy[:, 0] + origin[0], xy[:, 1] + origin[1], z])


BRIDGE_BASE = 10.0


def _end_direction(xy):
    """Unit direction away from the first point of polyline *xy*, over up to BRIDGE_BASE metres of it."""
    cum = _arclen(xy)
    k = max(int(np.searchsorted(cum, BRIDGE_BASE)), 1)
    d = xy[min(k, len(xy) - 1)] - xy[0]
    return d / (np.hypot(*d) or 1.0)


def _bridge_sections(lanes, boundaries, origin, max_gap=12.0, lateral=0.5):
    """Join a lane section to the next one across a gap without lines (a crosswalk) with a section between virtual boundaries.

    *lanes* are the working records of :func:`_to_lanemap` (local coordinates); new
    records and virtual :class:`Boundary` objects (map coordinates: local + *origin*)
    are appended in place.
    """
    new = []
    for a in list(lanes):
        if a["succ"]:
            continue
        xa = a["sec"]["xy"]
        # directions over the last / first BRIDGE_BASE metres: a section's last few metres may bend a little
        # (its boundaries' ends are traced less surely), which a long gap would amplify
        ea, ta = xa[-1], -_end_direction(xa[::-1])
        best = None
        for b in lanes:
            if b is a or b["pred"]:
                continue
            xb = b["sec"]["xy"]
            g = xb[0] - ea
            gap = float(np.hypot(*g))
            tb = _end_direction(xb)
            if not (0.5 < gap <= max_gap) or float(g @ ta) < 0.9 * gap or float(ta @ tb) < math.cos(math.radians(10)):
                continue
            # in line: the start of b off a's direction and the end of a off b's, on average
            off_a = abs(float(ta[0] * g[1] - ta[1] * g[0]))
            off_b = abs(float(tb[0] * g[1] - tb[1] * g[0]))
            if 0.5 * (off_a + off_b) > lateral:
                continue
            if best is None or gap < best[0]:
                best = (gap, b)
        if best is None:
            continue
        gap, b = best
        xb = b["sec"]["xy"]
        n = max(int(round(gap)), 1)
        f = np.linspace(0.0, 1.0, n + 1)[:, None]
        xy = (1 - f) * ea + f * xb[0]
        z = (1 - f[:, 0]) * a["sec"]["z"][-1] + f[:, 0] * b["sec"]["z"][0]
        w = (1 - f[:, 0]) * a["sec"]["width"][-1] + f[:, 0] * b["sec"]["width"][0]
        nrm = np.array([-ta[1], ta[0]])
        vid = len(boundaries)
        sides = []
        for k, sgn in enumerate((1.0, -1.0)):  # left, right of the driving direction
            bxy = xy + sgn * 0.5 * w[:, None] * nrm
            boundaries.append(Boundary(id=f"virtual{vid + k + 1}", xyz=_world(bxy, z, origin), kind="virtual",
                                       road=a["road"]))
            sides.append(len(boundaries) - 1)
        rec = dict(id=None, sec=dict(xy=xy, z=z, width=w, forward=a["sec"]["forward"], virtual=tuple(sides)),
                   pred=[a["id"]], succ=[b["id"]], road=a["road"])
        new.append((rec, a, b))
    for k, (rec, a, b) in enumerate(new):
        rec["id"] = f"lane{len(lanes) + 1}"
        lanes.append(rec)
        a["succ"].append(rec["id"])
        b["pred"].append(rec["id"])


def _chain_line(start, by_id, forward: bool):
    """x, y, z of the centre line of *start* and the sections linked to it, in the direction of travel along it.

    *forward*: from the start of *start* on through its successors; else from its
    end back through its predecessors (the line then runs against the driving
    direction). Only one-to-one links are followed.
    """
    def xyz(rec):
        return np.column_stack([rec["sec"]["xy"], rec["sec"]["z"]])

    parts, seen, cur = [xyz(start)], {start["id"]}, start
    while True:
        nxt = cur["succ"] if forward else cur["pred"]
        if len(nxt) != 1 or nxt[0] in seen:
            break
        cur = by_id[nxt[0]]
        seen.add(cur["id"])
        if forward:
            parts.append(xyz(cur))
        else:
            parts.insert(0, xyz(cur))
    line = np.vstack(parts)
    line = line[np.r_[True, np.hypot(*np.diff(line[:, :2], axis=0).T) > 1e-6]]
    return line if forward else line[::-1]


_COS_SAME_WAY = math.cos(math.radians(20.0))
#: Guides of a continuation are looked for within the lane's width plus this (m) of its end: a neighbour
#: lane's centre lies (w_a + w_b) / 2 away, a boundary w_a / 2, either up to two stations ahead.
_GUIDE_REACH = 5.0


def _continue_sections(lanes, boundaries, origin, bnd_xyz, road_cells, max_length=25.0, step=1.0):
    """Run an open lane section on beside its neighbour or one boundary where the other was not seen.

    At the edge of a survey, or where a car hid a curb, one lane's boundary may be
    missing while the lane next to it carries on; where a side road's centre line
    stops at a crosswalk its curbs run on to the junction. A section end without a
    link is continued at its lateral offset from a guide beside it: a lane driven
    the same way (with its linked sections) or a boundary at the lane's edge, the
    one reaching furthest. It goes on as long as the guide does, the continued
    centre lies on road surface, no boundary of *bnd_xyz* (local x, y, z of the
    painted lines, curbs and road borders) crosses the continued lane and no other
    lane lies there, at most *max_length* and no longer than the lane was seen
    (the section and those linked to it). Each continuation is a new section
    between virtual boundaries, linked to the one it continues; like
    :func:`_bridge_sections`, records and boundaries are appended in place.
    """
    if max_length < step or road_cells is None or len(lanes) < 2:
        return
    by_id = {a["id"]: a for a in lanes}
    bnd_xyz = [xyz for xyz in bnd_xyz if len(xyz) >= 2]
    bnd_geoms = [shapely.linestrings(xyz[:, :2]) for xyz in bnd_xyz]
    walls = shapely.STRtree(bnd_geoms) if bnd_geoms else None
    taken = [shapely.linestrings(a["sec"]["xy"]) for a in lanes]
    lane_tree = shapely.STRtree(taken)  # the sections found, for the guides near an end
    taken_tree = lane_tree  # ... and with the continuations made so far, for the lanes already there
    new = []
    for own, a in enumerate(list(lanes)):
        wa_all = a["sec"]["width"]
        for at_end in (True, False):
            if a["succ" if at_end else "pred"]:
                continue
            xa = a["sec"]["xy"] if at_end else a["sec"]["xy"][::-1]
            if len(xa) < 2:
                continue
            e = xa[-1]
            out = e - xa[max(len(xa) - 4, 0)]  # outwards: the way the continuation goes
            out = out / (np.hypot(*out) or 1.0)
            wa = float(wa_all[-1] if at_end else wa_all[0])
            # guides near the end: the same-way lanes (with their linked sections) and the boundaries
            near_e = shapely.points(e)
            reach_m = wa + _GUIDE_REACH
            guides = [(_chain_line(lanes[int(k)], by_id, forward=at_end),
                       float(np.median(lanes[int(k)]["sec"]["width"])), True)
                      for k in sorted(lane_tree.query(near_e, predicate="dwithin", distance=reach_m))
                      if int(k) != own and not lanes[int(k)].get("continued")]
            if walls is not None:
                guides += [(bnd_xyz[int(k)], 0.0, False)
                           for k in sorted(walls.query(near_e, predicate="dwithin", distance=reach_m))]
            best = None
            for line, wb, is_lane in guides:
                if len(line) < 2:
                    continue
                ls = shapely.linestrings(line[:, :2])
                s0 = float(shapely.line_locate_point(ls, shapely.points(e)))
                t = _tangent(ls, s0)
                if not is_lane and float(t @ out) < 0:  # a boundary runs either way: along the continuation
                    line = line[::-1]
                    ls = shapely.linestrings(line[:, :2])
                    s0 = ls.length - s0
                    t = -t
                if ls.length - s0 < step or float(t @ out) < _COS_SAME_WAY:  # a lane driven the other way
                    continue
                q = np.array(ls.interpolate(s0).coords[0])
                off = float(t[0] * (e - q)[1] - t[1] * (e - q)[0])  # left of the line: positive
                # beside the end (a guide starting up to two stations ahead will do: a curb beyond a crosswalk's
                # edge), at the lane's edge
                if abs(float((e - q) @ t)) > 2 * step + 1e-9 or abs(abs(off) - 0.5 * (wa + wb)) > 0.5:
                    continue
                reach = min(ls.length - s0, max_length)
                if best is None or reach > best[5] + 1e-9:
                    best = (line, ls, off, s0, wb, reach)
            if best is None:
                continue
            line, ls, off, s0, wb, _ = best
            cum = _arclen(line)
            sgn = 1.0 if off > 0 else -1.0
            pts, zs, on_road = [e], [float(a["sec"]["z"][-1 if at_end else 0])], [True]
            if len(taken) != len(taken_tree):
                taken_tree = shapely.STRtree(taken)
            # no longer than the lane seen so far (a short lane between spurious boundaries stays short)
            seen = float(_arclen(_chain_line(a, by_id, forward=not at_end))[-1])
            stop = min(ls.length, s0 + max_length, s0 + seen)
            stations = np.arange(s0 + step, stop + 1e-9, step)
            if len(stations) and stop - stations[-1] > 0.1 * step:
                stations = np.append(stations, stop)  # as far as the neighbour goes
            for s in stations:
                t = _tangent(ls, s)
                nb = np.array([-t[1], t[0]])
                c0 = np.array(ls.interpolate(s).coords[0])
                c = c0 + off * nb
                # nothing painted or built across the lane, from inside the neighbour's edge to our far edge
                probe = shapely.linestrings([c0 + sgn * (0.5 * wb + 0.3) * nb, c + sgn * 0.4 * wa * nb])
                if walls is not None and len(walls.query(probe, predicate="intersects")):
                    break
                if any(int(k) != own for k in taken_tree.query(shapely.points(c), predicate="dwithin",
                                                               distance=0.5 * wa)):
                    break
                pts.append(c)
                zs.append(float(np.interp(s, cum, line[:, 2])))
                # no road seen under the lane may be an occlusion (a car beside the survey vehicle), but the
                # continuation has to end on road
                on_road.append(bool(road_cells(c[None, :])[0]))
            last = int(np.flatnonzero(on_road)[-1])
            if last < 2:
                continue
            xy, z = np.array(pts[:last + 1]), np.array(zs[:last + 1])
            if not at_end:
                xy, z = xy[::-1], z[::-1]
            taken.append(shapely.linestrings(xy))
            new.append((a, at_end, xy, z, wa))
    for a, at_end, xy, z, wa in new:
        w = np.full(len(xy), wa)
        t = xy[-1] - xy[0]
        t = t / (np.hypot(*t) or 1.0)
        nrm = np.array([-t[1], t[0]])
        sides = []
        for sgn in (1.0, -1.0):  # left, right of the driving direction
            boundaries.append(Boundary(id=f"virtual{len(boundaries) + 1}", xyz=_world(xy + sgn * 0.5 * wa * nrm, z, origin),
                                       kind="virtual", road=a["road"]))
            sides.append(len(boundaries) - 1)
        rec = dict(id=f"lane{len(lanes) + 1}", sec=dict(xy=xy, z=z, width=w, forward=a["sec"]["forward"],
                                                        virtual=tuple(sides)),
                   pred=[a["id"]] if at_end else [], succ=[] if at_end else [a["id"]], road=a["road"], continued=True)
        lanes.append(rec)
        (a["succ"] if at_end else a["pred"]).append(rec["id"])


def _tangent(ls, s, half=0.5):
    """Unit direction of linestring *ls* at distance *s* along it (over +-*half* m)."""
    L = ls.length
    p0 = np.array(ls.interpolate(max(s - half, 0.0)).coords[0])
    p1 = np.array(ls.interpolate(min(s + half, L)).coords[0])
    d = p1 - p0
    return d / (np.hypot(*d) or 1.0)


def _number_lanes(lanes, reach=40.0):
    """Set ``Lane.index``: 1 for the leftmost lane of its driving direction, counting rightwards.

    From the middle of each lane a ray goes left (seen in the driving direction); the
    index is one plus the number of same-direction lanes it crosses before it meets a
    lane of the other direction (the centre of the road) or *reach* metres.
    """
    if not lanes:
        return
    geoms = [shapely.linestrings(ln.centerline[:, :2]) for ln in lanes]
    tree = shapely.STRtree(geoms)
    for ln in lanes:
        c = ln.centerline[:, :2]
        if len(c) < 2:
            ln.index = 1
            continue
        k = len(c) // 2
        t = c[min(k + 1, len(c) - 1)] - c[max(k - 1, 0)]
        t = t / (np.hypot(*t) or 1.0)
        left = np.array([-t[1], t[0]])
        ray = shapely.linestrings([c[k] + 0.05 * left, c[k] + reach * left])
        hits = []
        for j in tree.query(ray, predicate="intersects"):
            other = lanes[int(j)]
            if other is ln:
                continue
            d = shapely.line_locate_point(ray, shapely.intersection(ray, geoms[int(j)]).centroid)
            hits.append((float(d), other.direction == ln.direction))
        hits.sort()
        n = 0
        for _, same in hits:
            if not same:
                break
            n += 1
        ln.index = n + 1


def _close_links(lanes):
    """Make a section and its only successor meet: both get the midpoint of the gap between them.

    Where a boundary changes pattern it is split in two, and the lane sections on
    either side of the split end and start a little apart; a lanelet's successor
    has to start where it ends. Sections that overlap are left alone.
    """
    by_id = {a["id"]: a for a in lanes}
    for a in lanes:
        if len(a["succ"]) != 1:
            continue
        b = by_id[a["succ"][0]]
        if len(b["pred"]) != 1:
            continue
        sa, sb = a["sec"], b["sec"]
        ea, eb = sa["xy"][-1], sb["xy"][0]
        ta = ea - sa["xy"][max(len(sa["xy"]) - 4, 0)]
        g = eb - ea
        if float(g @ ta) <= 0 or float(np.hypot(*g)) < 1e-6:
            continue
        m = 0.5 * (ea + eb)
        z = 0.5 * (sa["z"][-1] + sb["z"][0])
        w = 0.5 * (sa["width"][-1] + sb["width"][0])
        a["sec"] = dict(sa, xy=np.vstack([sa["xy"], m]), z=np.append(sa["z"], z), width=np.append(sa["width"], w))
        b["sec"] = dict(sb, xy=np.vstack([m, sb["xy"]]), z=np.r_[z, sb["z"]], width=np.r_[w, sb["width"]])


def _drop_short_chains(lanes, min_length):
    """The records of :func:`_to_lanemap` without the groups of linked sections shorter than *min_length* in all,
    numbered ``lane1``, ``lane2``, ... in order."""
    by_id = {a["id"]: a for a in lanes}
    group = {}
    for a in lanes:
        if a["id"] in group:
            continue
        stack, members = [a["id"]], []
        group[a["id"]] = a["id"]
        while stack:
            k = stack.pop()
            members.append(k)
            for j in by_id[k]["pred"] + by_id[k]["succ"]:
                if j not in group:
                    group[j] = a["id"]
                    stack.append(j)
        total = sum(float(_arclen(by_id[k]["sec"]["xy"])[-1]) for k in members)
        if total < min_length:
            for k in members:
                group[k] = None
    kept = [a for a in lanes if group[a["id"]] is not None]
    # numbered afresh (sections added later take the next numbers)
    new_id = {a["id"]: f"lane{i + 1}" for i, a in enumerate(kept)}
    for a in kept:
        a["id"] = new_id[a["id"]]
        a["pred"] = [new_id[k] for k in a["pred"]]
        a["succ"] = [new_id[k] for k in a["succ"]]
    return kept


def _to_lanemap(bnd, sections, marking_list, origin, epsg, road_id, trajs, *, bridge_gap=40.0, link_distance=3.0,
                road_cells=None, continue_length=0.0, min_length=0.0):
    boundaries = []
    for b in bnd:
        xyz = b["xyz"].copy()
        xyz[:, :2] += origin
        is_line = b["kind"].startswith("line")
        boundaries.append(Boundary(
            id=b["id"], xyz=xyz, kind=b["kind"], pattern=b["pattern"] if is_line else None,
            stroke_m=None if b.get("stroke") is None else round(b["stroke"], 2),
            gap_m=None if b.get("gap") is None else round(b["gap"], 2),
            width_m=round(float(b["width"]), 3) if is_line else None,
            color="white" if is_line else None, height_m=None, road=road_id,
            provenance={"drives": [t.source for t in trajs]}))
    lanes = []
    sec_ids = [f"lane{i + 1}" for i in range(len(sections))]
    for i, sec in enumerate(sections):
        lanes.append(dict(id=sec_ids[i], sec=sec, road=road_id))
    # predecessor / successor: the end of one section near the start of another, same way
    for a in lanes:
        a["succ"], a["pred"] = [], []
    for a in lanes:
        ea = a["sec"]["xy"][-1]
        ta = a["sec"]["xy"][-1] - a["sec"]["xy"][max(len(a["sec"]["xy"]) - 4, 0)]
        for b in lanes:
            if a is b:
                continue
            sb = b["sec"]["xy"][0]
            tb = b["sec"]["xy"][min(3, len(b["sec"]["xy"]) - 1)] - sb
            if np.hypot(*(sb - ea)) <= link_distance and float(ta @ tb) > 0:
                a["succ"].append(b["id"])
                b["pred"].append(a["id"])
    lanes = _drop_short_chains(lanes, min_length)
    _close_links(lanes)
    _bridge_sections(lanes, boundaries, origin, max_gap=bridge_gap)
    _continue_sections(lanes, boundaries, origin, [b["xyz"] for b in bnd], road_cells, max_length=continue_length)
    out_lanes = []
    for a in lanes:
        sec = a["sec"]
        if "virtual" in sec:
            left, right = (boundaries[k].id for k in sec["virtual"])
        else:
            left, right = bnd[sec["left"]]["id"], bnd[sec["right"]]["id"]
        out_lanes.append(Lane(
            id=a["id"], left=left, right=right, centerline=_world(sec["xy"], sec["z"], origin),
            direction="forward" if sec["forward"] else "backward", width=np.round(sec["width"], 4), kind="lane",
            road=road_id, section=None, index=None, predecessors=sorted(a["pred"]), successors=sorted(a["succ"])))
    _number_lanes(out_lanes)
    markings = []
    for k, (typ, poly, z, group, sub) in enumerate(marking_list):
        ring = np.column_stack([poly[:, 0] + origin[0], poly[:, 1] + origin[1], np.full(len(poly), z)])
        mtype = sub if typ == "arrow" else typ
        markings.append(Marking(id=f"mk{k + 1}", polygon=ring, type=mtype,
                                group=None if group is None else f"mk{group + 1}", road=road_id))
    return LaneMap(boundaries=boundaries, lanes=out_lanes, markings=markings, epsg=epsg,
                   metadata={"generator": "hdmap.extract", "drives": [t.source for t in trajs]})


# ---------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------
#: The classes extraction reads; everything else is skipped while reading.
_NEEDED = (int(C.Class.GROUND), int(C.Class.ROAD_SURFACE), int(C.Class.ROAD_MARKING), int(C.Class.CURB))


def _is_classified(path) -> bool:
    """Whether a file carries hdmap's road classes (any road-surface or marking point in its first chunk)."""
    from .io import iter_chunks  # noqa: PLC0415

    for chunk in iter_chunks(path, 2_000_000, require_crs=False):
        cls = chunk.attrs.get("classification")
        return cls is not None and bool(np.isin(cls, (int(C.Class.ROAD_SURFACE), int(C.Class.ROAD_MARKING))).any())
    return False


def map_summary(m: LaneMap) -> str:
    """One line on an extracted map: boundary count and length, curbs, lane sections, markings by family."""
    kinds: dict = {}
    for mk in m.markings:
        key = "arrow" if mk.type.startswith("arrow") else mk.type
        kinds[key] = kinds.get(key, 0) + 1
    return (f"{len(m.lines)} lane boundaries ({sum(b.length for b in m.lines) / 1000:.2f} km), "
            f"{len(m.curbs)} curbs/road borders, {len(m.lanes)} lane sections, {len(m.markings)} markings "
            f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))})")


def extract_files(inputs, outdir, trajectories=None, params=None, *, crs=None, workdir=None, progress=None) -> LaneMap:
    """``hdmap extract``: read (classifying first where needed), vectorise, write GeoJSON layers and a GeoPackage.

    Writes ``outdir/{boundaries,curbs,markings,lanes}.geojson`` and ``outdir/map.gpkg``
    (each atomically). Only the classes extraction needs are kept in memory.
    """
    import tempfile
    from pathlib import Path

    from .io import iter_chunks  # noqa: PLC0415

    inputs = [Path(p) for p in inputs]
    outdir = Path(outdir)
    par = resolve_stages(STAGES, {k: v for k, v in (params or {}).items() if k in STAGES})
    todo = [p for p in inputs if not _is_classified(p)]
    tmp = None
    if todo:
        from .stream import classify_file  # noqa: PLC0415

        log.info("%d of %d input(s) carry no road classes: classifying them first", len(todo), len(inputs))
        tmp = tempfile.TemporaryDirectory(prefix="hdmap-extract-", dir=workdir)
        outs = [Path(tmp.name) / f"{k}_{p.name}" for k, p in enumerate(todo)]
        cparams = {k: v for k, v in (params or {}).items() if k not in STAGES}
        classify_file(todo, outs, trajectories, cparams, crs=crs, workdir=tmp.name)
        mapping = dict(zip(todo, outs))
        inputs = [mapping.get(p, p) for p in inputs]
    try:
        xyz, cls, epsg = [], [], None
        for path in inputs:
            for chunk in iter_chunks(path, crs=crs):
                if epsg is None and chunk.crs is not None:
                    epsg = chunk.crs.to_epsg()
                c = np.asarray(chunk.attrs.get("classification", np.zeros(len(chunk), np.uint8)))
                keep = np.isin(c, _NEEDED)
                xyz.append(chunk.xyz[keep])
                cls.append(c[keep].astype(np.uint8))
                if progress is not None:
                    progress(len(chunk))
    finally:
        if tmp is not None:
            tmp.cleanup()
    xyz = np.vstack(xyz) if xyz else np.empty((0, 3))
    cls = np.concatenate(cls) if cls else np.empty(0, np.uint8)
    trajs = list(trajectories or [])
    lane_map = extract(xyz, cls, trajs, par)
    if epsg:
        lane_map.epsg = int(epsg)
    lane_map.metadata["inputs"] = [p.name for p in inputs]
    outdir.mkdir(parents=True, exist_ok=True)
    lane_map.to_geojson(outdir)
    lane_map.to_gpkg(outdir / "map.gpkg")
    return lane_map

"""Accuracy of an extracted lane-level map against simulator truth.

The truth directory (``SIM_DIR/truth``, written by ``hdmap simulate``) and the
result directory of the map extraction each hold ``boundaries.geojson``,
``curbs.geojson``, ``markings.geojson`` and ``lanes.geojson`` with the same
property names. Geometry is compared in 2D (x, y) in the CRS of the files.

Metric definitions
------------------
Survey region
    Only the surveyed area counts: the union of the trajectory polylines
    buffered by ``reach_m`` (default 20 m). Truth and result lines are clipped
    to it before they are measured; marking objects count when their centroid
    lies inside it. Without trajectories the whole map counts.

Lines are measured by sampling: every clipped line is cut into pieces of at
most ``step_m`` (default 0.1 m), each piece represented by its midpoint and
weighted by its length. Distances are from those midpoints to the nearest
(clipped) line of the other map.

Boundaries (buffer method, Heipke et al. 1997; Wiedemann 2003)
    Only painted lines count: features of kind ``virtual`` are dropped on both
    sides (every other kind, i.e. ``line_thin`` / ``line_thick``, is painted).

    * ``completeness_d``: share of the truth line length lying within *d*
      (0.10 m, 0.20 m) of some result line.
    * ``correctness_d``: share of the result line length lying within *d* of
      some truth line.
    * ``rmse_m``: length-weighted RMS distance of the result samples to the
      nearest truth line, over the result samples within 0.20 m of one.
    * ``pattern_accuracy``: share of the matched (within 0.20 m) result length
      whose ``pattern`` equals that of the nearest truth line.
      ``kind_accuracy``: the same for ``kind``.
    * ``stroke_error_m`` / ``gap_error_m``: for every truth line whose pattern
      contains ``dashed`` and that has a ``stroke_m`` (``gap_m``), its match is
      the result line with a ``dashed`` pattern and a ``stroke_m`` (``gap_m``)
      that is nearest to the largest share of the truth line's length (truth
      samples within 0.20 m of such a result line vote with their length).
      The metric is the largest ``|result - truth|`` over the matched truth
      lines; None if no truth dashed line has such a match.
    * ``truth_length_m`` / ``result_length_m``: painted length inside the region.

Curbs
    The same buffer method on ``curbs.geojson`` (every kind: curbstone,
    road_border), with ``kind_accuracy`` (no pattern, stroke or gap).

Markings (objects)
    Families: ``stop_line`` (type ``stop_line``), ``crosswalk`` (type
    ``crosswalk``: the group polygon of a zebra crossing, not its bars) and
    ``arrow`` (any type starting with ``arrow``). A result object matches a
    truth object of the same family if their polygons intersect with
    ``area(intersection) >= 0.5 * min(area_truth, area_result)``; matching is
    one-to-one, greedy by decreasing intersection area. ``precision`` =
    matched / result objects, ``recall`` = matched / truth objects (None if
    the denominator is 0); ``truth`` / ``result`` are the object counts.

Lanes
    * Stations: every truth lane centerline is clipped to the region; lane
      pieces of one road that continue each other (end of one = start of the
      next) are merged into one chain, and stations are placed along each chain
      at equal spacing of at most 1 m, at the middles of the intervals (a
      100 m chain has 100 stations at 0.5, 1.5, ... 99.5 m). Every truth lane
      carries its own stations, so the metric is weighted by lane length:
      where a road has four lanes, each location is counted four times.
    * Cross-section: the segment through the station perpendicular to the
      lane, 25 m to either side. A lane (truth or result; result pieces that
      continue each other are merged the same way) crosses it if its
      centerline intersects the segment in a part whose direction is within
      20 degrees of the lane at the station (either driving direction). A lane
      counts once however often it crosses, and crossings closer than 0.5 m to
      each other along the segment count as one lane (lane pieces meeting or
      overlapping there).
    * Carriageway: the span between the outermost crossings of truth lanes of
      the station's road, widened by 1 m on both sides. Truth and result lanes
      count at the station when their crossing lies within that span.
    * ``count_accuracy``: share of stations where the truth and result counts
      are equal. ``stations``: number of stations.
    * ``centerline_rmse_m``: result centerlines are sampled every ``step_m``
      (samples outside the region dropped); a sample matches the nearest truth
      centerline of the same direction (its local direction within 45 degrees
      of the sample's) within 1.0 m. RMS of the distance over the matched
      samples, length-weighted. ``centerline_matched``: matched share of the
      result length.
    * ``width_error_m``: median over matched samples of ``|w_result - w_truth|``,
      with ``w_result`` the result lane's ``width_profile`` (one width per
      centerline vertex) interpolated linearly along the centerline at the
      sample (its ``width_m`` if it has no usable profile) and ``w_truth`` the
      ``width_m`` of the matched truth lane.

Every value is a plain float (rounded to 4 decimals), int or None.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np
import shapely
from shapely import STRtree

from ._geojson import read_features
from .errors import CRSError, InputFileNotFoundError
from .trajectory import Trajectory

__all__ = ["MAP_FILES", "evaluate_map", "format_map_metrics", "survey_region", "load_map"]

logger = logging.getLogger(__name__)

#: The files of a map directory (truth or result), without ``.geojson``.
MAP_FILES = ("boundaries", "curbs", "markings", "lanes")

#: Buffer widths of completeness / correctness (m).
BUFFER_DISTANCES = (0.10, 0.20)
#: Distance up to which a line sample is matched (RMSE, pattern, kind, stroke) (m).
MATCH_M = 0.20
#: Lanes: cross-section half length (m), station spacing (m), angle limit (deg),
#: carriageway margin (m), distance under which crossings are one lane (m).
CROSS_HALF_M = 25.0
STATION_M = 1.0
PARALLEL_DEG = 20.0
SPAN_MARGIN_M = 1.0
SAME_LANE_M = 0.5
#: Lanes: centerline matching distance (m) and direction limit (deg).
LANE_MATCH_M = 1.0
SAME_DIRECTION_DEG = 45.0
#: Marking objects match when the overlap covers this share of the smaller one.
OVERLAP_SHARE = 0.5

MARKING_FAMILIES = {
    "stop_line": lambda t: t == "stop_line",
    "crosswalk": lambda t: t == "crosswalk",
    "arrow": lambda t: isinstance(t, str) and t.startswith("arrow"),
}

_CONTENTS = "boundaries.geojson, curbs.geojson, markings.geojson and lanes.geojson"


# -- reading ------------------------------------------------------------------
def load_map(directory, role: str = "map") -> tuple[dict, int | None]:
    """``({name: [(geometry_2d, properties), ...]}, epsg)`` of the four files of a map directory."""
    d = Path(directory)
    where = {
        "truth": ", as hdmap simulate writes into SIM_DIR/truth",
        "result": ", as the map extraction writes into its output directory",
    }.get(role, "")
    if not d.is_dir():
        raise InputFileNotFoundError(d, f"{role} directory (it should contain {_CONTENTS}{where})")
    out, epsgs = {}, {}
    for name in MAP_FILES:
        path = d / f"{name}.geojson"
        if not path.is_file():
            raise InputFileNotFoundError(
                path, f"{role} file (a {role} directory should contain {_CONTENTS}{where})")
        feats, epsg = read_features(path)
        epsgs[name] = epsg
        items = []
        for f in feats:
            g = f.get("geometry")
            if not g:
                continue
            geom = shapely.force_2d(shapely.geometry.shape(g))
            if geom.is_empty:
                continue
            items.append((geom, f.get("properties") or {}))
        out[name] = items
    codes = {e for e in epsgs.values() if e is not None}
    if len(codes) > 1:
        raise CRSError(f"{d}: the files of one map are in different CRSs ({epsgs}); write them in one CRS")
    return out, (codes.pop() if codes else None)


def survey_region(trajectories, reach_m: float, *, epsg: int | None = None):
    """Union of the trajectory polylines buffered by *reach_m*, or None if there are no trajectories.

    *trajectories*: paths of trajectory files (ASCII or SBET, read with
    :meth:`hdmap.trajectory.Trajectory.read` and brought into *epsg*),
    :class:`~hdmap.trajectory.Trajectory` objects, or ``(n, 2+)`` arrays of x, y.
    """
    if trajectories is None:
        trajectories = []
    elif isinstance(trajectories, (str, os.PathLike, Trajectory)) or (
            isinstance(trajectories, np.ndarray) and trajectories.ndim == 2):
        trajectories = [trajectories]  # one trajectory rather than a list of them
    if not (reach_m > 0):
        raise ValueError(f"reach_m must be positive, got {reach_m!r}")
    shapes = []
    for tr in trajectories:
        if isinstance(tr, (str, os.PathLike)):
            tr = Trajectory.read(tr, to_crs=f"EPSG:{epsg}" if epsg else None, max_gap=None)
        if isinstance(tr, Trajectory):
            if epsg:
                tr = tr.to_crs(f"EPSG:{epsg}")
            xy = tr.xyz[:, :2]
        else:
            xy = np.asarray(tr, dtype=np.float64)
            if xy.ndim != 2 or xy.shape[1] < 2:
                raise ValueError(f"a trajectory array must have shape (n, 2) or (n, 3), got {xy.shape}")
            xy = xy[:, :2]
        xy = xy[np.isfinite(xy).all(axis=1)]
        if len(xy) == 0:
            continue
        geom = shapely.points(xy[0]) if len(xy) == 1 else shapely.simplify(shapely.linestrings(xy), 0.02)
        shapes.append(shapely.buffer(geom, reach_m, quad_segs=16))
    if not shapes:
        return None
    region = shapely.union_all(shapes)
    shapely.prepare(region)
    return region


# -- geometry helpers ---------------------------------------------------------
def _clip(geoms: np.ndarray, region) -> np.ndarray:
    if region is None or len(geoms) == 0:
        return geoms
    return shapely.intersection(geoms, region)


def _line_parts(geoms: np.ndarray):
    """LineString parts of *geoms* and the index of the geometry each came from."""
    if len(geoms) == 0:
        return np.empty(0, object), np.empty(0, np.int64)
    parts, idx = shapely.get_parts(geoms, return_index=True)
    keep = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 0)
    return parts[keep], idx[keep]


class _Segments:
    """The straight segments of line parts: start, end, unit direction, length and part."""

    def __init__(self, parts: np.ndarray):
        if len(parts):
            xy, pid = shapely.get_coordinates(parts, return_index=True)
        else:
            xy, pid = np.empty((0, 2)), np.empty(0, np.int64)
        ok = pid[1:] == pid[:-1]
        a, b = xy[:-1][ok], xy[1:][ok]
        length = np.hypot(*(b - a).T) if len(a) else np.empty(0)
        part = pid[:-1][ok]
        nz = length > 1e-9
        self.a, self.b, self.length, self.part = a[nz], b[nz], length[nz], part[nz]
        self.unit = (self.b - self.a) / self.length[:, None] if len(self.a) else np.empty((0, 2))
        self.gstart = np.cumsum(self.length) - self.length  # start along all parts, one after the other
        self.n_parts = len(parts)
        self.part_length = np.bincount(self.part, weights=self.length, minlength=len(parts))
        self._geoms = None

    @property
    def geoms(self) -> np.ndarray:
        if self._geoms is None:
            self._geoms = (shapely.linestrings(np.stack([self.a, self.b], axis=1)) if len(self.a)
                           else np.empty(0, object))
        return self._geoms

    def sample(self, step: float):
        """Midpoints of equal pieces of at most *step* along every part.

        Returns ``(xy, weight, part, offset, tangent)``.
        """
        L = self.part_length
        has = L > 0
        n = np.where(has, np.maximum(1, np.ceil(L / step - 1e-9)), 0).astype(np.int64)
        total = int(n.sum())
        if total == 0:
            return np.empty((0, 2)), np.empty(0), np.empty(0, np.int64), np.empty(0), np.empty((0, 2))
        part = np.repeat(np.arange(len(L)), n)
        first = np.cumsum(n) - n
        j = np.arange(total) - np.repeat(first, n)
        piece = L[part] / n[part]
        offset = (j + 0.5) * piece
        base = np.cumsum(L) - L
        pos = base[part] + offset
        seg = np.clip(np.searchsorted(self.gstart, pos, side="right") - 1, 0, len(self.a) - 1)
        u = (pos - self.gstart[seg])[:, None]
        xy = self.a[seg] + self.unit[seg] * u
        return xy, piece, part, offset, self.unit[seg]


def _point_segment_distance(p: np.ndarray, a: np.ndarray, unit: np.ndarray, length: np.ndarray) -> np.ndarray:
    t = np.clip(((p - a) * unit).sum(axis=1), 0.0, length)
    return np.hypot(*(a + unit * t[:, None] - p).T)


def _nearest(xy: np.ndarray, segs: _Segments, max_d: float):
    """Index of the part nearest to each point within *max_d* (-1 if none) and its distance (inf if none).

    The search tree holds the short segments, not whole lines, so long lines with
    many vertices cost no more than short ones.
    """
    idx = np.full(len(xy), -1, np.int64)
    dist = np.full(len(xy), np.inf)
    if len(xy) == 0 or len(segs.a) == 0:
        return idx, dist
    tree = STRtree(segs.geoms)
    (pi, gi), d = tree.query_nearest(shapely.points(xy), max_distance=max_d, return_distance=True, all_matches=False)
    idx[pi] = segs.part[gi]
    dist[pi] = d
    return idx, dist


def _share(weights: np.ndarray, mask: np.ndarray):
    total = float(weights.sum())
    return float(weights[mask].sum()) / total if total > 0 else None


def _r(v):
    if v is None:
        return None
    v = float(v)
    return round(v, 4) if math.isfinite(v) else None


def _dashed(pattern) -> bool:
    return isinstance(pattern, str) and "dashed" in pattern


def _number(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


# -- lines (boundaries, curbs) ------------------------------------------------
def _line_metrics(truth: list, result: list, region, step: float, *, with_pattern: bool,
                  buffers=BUFFER_DISTANCES) -> dict:
    def prepare(items):
        geoms = np.array([g for g, _ in items], dtype=object)
        props = [p for _, p in items]
        parts, owner = _line_parts(_clip(geoms, region))
        segs = _Segments(parts)
        xy, w, part, _, _ = segs.sample(step)
        return props, segs, owner, xy, w, owner[part]

    tprops, tsegs, towner, txy, tw, tfeat = prepare(truth)
    rprops, rsegs, rowner, rxy, rw, rfeat = prepare(result)

    _, d_truth = _nearest(txy, rsegs, max(buffers))
    near, d_res = _nearest(rxy, tsegs, max(max(buffers), MATCH_M))
    out = {}
    for d in buffers:
        out[f"completeness_{d:.2f}"] = _r(_share(tw, d_truth <= d))
    for d in buffers:
        out[f"correctness_{d:.2f}"] = _r(_share(rw, d_res <= d))
    matched = d_res <= MATCH_M
    mw = rw[matched]
    out["rmse_m"] = _r(math.sqrt(float((mw * d_res[matched] ** 2).sum() / mw.sum()))) if mw.sum() > 0 else None
    truth_feat = towner[near[matched]]
    res_feat = rfeat[matched]
    for key in (("pattern", "kind") if with_pattern else ("kind",)):
        # compare per (result, truth) feature pair, then spread to the samples
        pairs, inv = np.unique(np.stack([res_feat, truth_feat], 1).reshape(-1, 2), axis=0, return_inverse=True)
        eq = np.array([rprops[i].get(key) == tprops[j].get(key) for i, j in pairs], bool)
        out[f"{key}_accuracy"] = _r(_share(mw, eq[inv.ravel()])) if len(mw) else None
    if with_pattern:
        out.update(_dash_errors(tprops, txy, tw, tfeat, rprops, rsegs, rowner))
    out["truth_length_m"] = _r(tw.sum())
    out["result_length_m"] = _r(rw.sum())
    return out


def _dash_errors(tprops, txy, tw, tfeat, rprops, rsegs: _Segments, rowner) -> dict:
    out = {}
    for key, name in (("stroke_m", "stroke_error_m"), ("gap_m", "gap_error_m")):
        res_value = [_number(p.get(key)) if _dashed(p.get("pattern")) else None for p in rprops]
        truth_value = [_number(p.get(key)) if _dashed(p.get("pattern")) else None for p in tprops]
        res_ok = np.array([v is not None for v in res_value], bool)
        truth_ok = np.array([v is not None for v in truth_value], bool)
        seg_ok = res_ok[rowner[rsegs.part]] if len(rsegs.part) else np.empty(0, bool)
        ok_truth = truth_ok[tfeat] if len(tfeat) else np.empty(0, bool)
        worst = None
        if seg_ok.any() and ok_truth.any():
            near, _ = _nearest(txy[ok_truth], _subset(rsegs, seg_ok), MATCH_M)
            hit = near >= 0
            tf = tfeat[ok_truth][hit]
            rf = rowner[near[hit]]
            if len(tf):
                pairs, inv = np.unique(np.stack([tf, rf], 1), axis=0, return_inverse=True)
                votes = np.bincount(inv.ravel(), weights=tw[ok_truth][hit], minlength=len(pairs))
                for t in np.unique(pairs[:, 0]):
                    rows = np.flatnonzero(pairs[:, 0] == t)
                    r = pairs[rows[np.argmax(votes[rows])], 1]
                    err = abs(res_value[r] - truth_value[t])
                    worst = err if worst is None else max(worst, err)
        out[name] = _r(worst)
    return out


def _subset(segs: _Segments, keep: np.ndarray) -> _Segments:
    """The segments selected by *keep* (part numbers unchanged)."""
    sub = object.__new__(_Segments)
    sub.a, sub.b, sub.length = segs.a[keep], segs.b[keep], segs.length[keep]
    sub.part, sub.unit = segs.part[keep], segs.unit[keep]
    sub.gstart = np.cumsum(sub.length) - sub.length
    sub.n_parts = segs.n_parts
    sub.part_length = np.bincount(sub.part, weights=sub.length, minlength=segs.n_parts)
    sub._geoms = None if segs._geoms is None else segs._geoms[keep]
    return sub


# -- markings -----------------------------------------------------------------
def _marking_metrics(truth: list, result: list, region) -> dict:
    def select(items, family):
        geoms = [g for g, p in items if MARKING_FAMILIES[family](p.get("type")) and g.area > 0]
        geoms = np.array(geoms, dtype=object)
        if len(geoms) == 0:
            return geoms
        bad = ~shapely.is_valid(geoms)
        if bad.any():
            geoms[bad] = shapely.make_valid(geoms[bad])
        if region is not None:
            c = shapely.get_coordinates(shapely.centroid(geoms))
            geoms = geoms[shapely.contains_xy(region, c[:, 0], c[:, 1])]
        return geoms

    out = {}
    for family in MARKING_FAMILIES:
        t = select(truth, family)
        r = select(result, family)
        matched = 0
        if len(t) and len(r):
            ti, ri = STRtree(r).query(t, predicate="intersects")
            inter = shapely.area(shapely.intersection(t[ti], r[ri]))
            ok = inter >= OVERLAP_SHARE * np.minimum(shapely.area(t[ti]), shapely.area(r[ri]))
            ti, ri, inter = ti[ok], ri[ok], inter[ok]
            used_t, used_r = set(), set()
            for k in np.argsort(-inter, kind="stable"):
                if ti[k] in used_t or ri[k] in used_r:
                    continue
                used_t.add(ti[k])
                used_r.add(ri[k])
            matched = len(used_t)
        out[family] = {
            "precision": _r(matched / len(r)) if len(r) else None,
            "recall": _r(matched / len(t)) if len(t) else None,
            "truth": int(len(t)),
            "result": int(len(r)),
        }
    return out


# -- lanes --------------------------------------------------------------------
def _chains(parts: np.ndarray) -> np.ndarray:
    """Lane pieces that continue each other (end of one = start of next) merged into chains."""
    if len(parts) == 0:
        return parts
    merged = shapely.line_merge(shapely.multilinestrings(parts), directed=True)
    return _line_parts(np.array([merged], dtype=object))[0]


def _crossings(p: np.ndarray, t: np.ndarray, cross: np.ndarray, segs: _Segments, chain_of_part: np.ndarray):
    """``(station, s, chain)``: where chains cross the cross-sections within PARALLEL_DEG of the station lane.

    *s* is the signed distance from the station along the cross-section; one crossing per chain and station.
    """
    if len(segs.a) == 0 or len(p) == 0:
        e = np.empty(0, np.int64)
        return e, np.empty(0), e
    si, gi = STRtree(segs.geoms).query(cross, predicate="intersects")
    d = segs.unit[gi]
    tt = t[si]
    par = np.abs((d * tt).sum(axis=1)) >= math.cos(math.radians(PARALLEL_DEG))
    si, gi, d, tt = si[par], gi[par], d[par], tt[par]
    n = np.column_stack([-tt[:, 1], tt[:, 0]])
    q = segs.a[gi] - p[si]
    det = d[:, 0] * n[:, 1] - n[:, 0] * d[:, 1]
    s = (d[:, 0] * q[:, 1] - q[:, 0] * d[:, 1]) / det
    chain = chain_of_part[segs.part[gi]]
    if len(si):
        _, first = np.unique(si.astype(np.int64) * (int(chain.max()) + 1) + chain, return_index=True)
        si, s, chain = si[first], s[first], chain[first]
    return si.astype(np.int64), s, chain


def _lane_clusters(station: np.ndarray, s: np.ndarray):
    """Crossings of one station closer than SAME_LANE_M merged into one: ``(station, mean s)``."""
    if len(s) == 0:
        return station, s
    order = np.lexsort((s, station))
    st, ss = station[order], s[order]
    new = np.r_[True, (st[1:] != st[:-1]) | (np.diff(ss) > SAME_LANE_M)]
    cid = np.cumsum(new) - 1
    cnt = np.bincount(cid)
    return st[new], np.bincount(cid, weights=ss) / cnt


def _width_at(geom, props: dict, offset: np.ndarray) -> np.ndarray:
    """Result lane width at positions *offset* along its centerline (NaN where unknown)."""
    fallback = _number(props.get("width_m"))
    fallback = np.nan if fallback is None else fallback
    prof = props.get("width_profile")
    if isinstance(prof, (list, tuple)) and geom.geom_type == "LineString":
        xy = shapely.get_coordinates(geom)
        if len(prof) == len(xy) and len(xy) >= 2:
            w = np.array([np.nan if _number(v) is None else float(v) for v in prof])
            cum = np.r_[0.0, np.cumsum(np.hypot(*np.diff(xy, axis=0).T))]
            ok = np.isfinite(w)
            if ok.sum() >= 1:
                return np.interp(offset, cum[ok], w[ok])
    return np.full(len(offset), fallback)


def _lane_metrics(truth: list, result: list, region, step: float) -> dict:
    tgeoms = np.array([g for g, _ in truth], dtype=object)
    tprops = [p for _, p in truth]
    rgeoms = np.array([g for g, _ in result], dtype=object)
    rprops = [p for _, p in result]

    # clipped truth pieces, their chains per road, and stations along the chains
    tparts, towner = _line_parts(_clip(tgeoms, region))
    roads = np.array([str(tprops[o].get("road")) for o in towner], dtype=object)
    chain_geoms, chain_road = [], []
    for road in dict.fromkeys(roads.tolist()):
        ch = _chains(tparts[roads == road])
        chain_geoms.extend(ch)
        chain_road.extend([road] * len(ch))
    chain_geoms = np.array(chain_geoms, dtype=object)
    chain_road = np.array(chain_road, dtype=object)
    tchain = _Segments(chain_geoms)
    p, _, st_chain, _, t = tchain.sample(STATION_M)
    n_st = len(p)
    nrm = np.column_stack([-t[:, 1], t[:, 0]]) if n_st else np.empty((0, 2))
    cross = (shapely.linestrings(np.stack([p - CROSS_HALF_M * nrm, p + CROSS_HALF_M * nrm], axis=1)) if n_st
             else np.empty(0, object))

    t_st, t_s, t_ch = _crossings(p, t, cross, tchain, np.arange(len(chain_geoms)))
    rparts, _ = _line_parts(_clip(rgeoms, region))
    rchains = _chains(rparts)
    rchain = _Segments(rchains)
    r_st, r_s, _ = _crossings(p, t, cross, rchain, np.arange(len(rchains)))

    count_accuracy = None
    if n_st:
        own = chain_road[t_ch] == chain_road[st_chain[t_st]] if len(t_st) else np.empty(0, bool)
        lo, hi = np.zeros(n_st), np.zeros(n_st)
        np.minimum.at(lo, t_st[own], t_s[own])
        np.maximum.at(hi, t_st[own], t_s[own])
        lo -= SPAN_MARGIN_M
        hi += SPAN_MARGIN_M
        counts = []
        for st, s in (_lane_clusters(t_st, t_s), _lane_clusters(r_st, r_s)):
            inside = (s >= lo[st]) & (s <= hi[st])
            counts.append(np.bincount(st[inside], minlength=n_st))
        count_accuracy = float((counts[0] == counts[1]).mean())

    # centerlines: result samples against truth pieces of the same direction
    rparts_full, rowner = _line_parts(rgeoms)
    rsegs = _Segments(rparts_full)
    xy, w, part, offset, tan = rsegs.sample(step)
    if region is not None and len(xy):
        inside = shapely.contains_xy(region, xy[:, 0], xy[:, 1])
        xy, w, part, offset, tan = xy[inside], w[inside], part[inside], offset[inside], tan[inside]
    tsegs = _Segments(tparts)
    rmse = matched_share = width_error = None
    if len(xy):
        best_d = np.full(len(xy), np.inf)
        best_t = np.full(len(xy), -1, np.int64)
        if len(tsegs.a):
            pi, gi = STRtree(tsegs.geoms).query(shapely.points(xy), predicate="dwithin", distance=LANE_MATCH_M)
            same = (tan[pi] * tsegs.unit[gi]).sum(axis=1) >= math.cos(math.radians(SAME_DIRECTION_DEG))
            pi, gi = pi[same], gi[same]
            d = _point_segment_distance(xy[pi], tsegs.a[gi], tsegs.unit[gi], tsegs.length[gi])
            order = np.lexsort((d, pi))
            pi, gi, d = pi[order], gi[order], d[order]
            first = np.r_[True, pi[1:] != pi[:-1]] if len(pi) else np.empty(0, bool)
            best_d[pi[first]] = d[first]
            best_t[pi[first]] = towner[tsegs.part[gi[first]]]
        m = (best_t >= 0) & (best_d <= LANE_MATCH_M)
        matched_share = _share(w, m)
        if m.any():
            rmse = math.sqrt(float((w[m] * best_d[m] ** 2).sum() / w[m].sum()))
            feat = rowner[part]
            wr = np.full(len(xy), np.nan)
            for f in np.unique(feat[m]):
                k = m & (feat == f)
                wr[k] = _width_at(rgeoms[f], rprops[f], offset[k])
            truth_width = np.array([np.nan if _number(q.get("width_m")) is None else _number(q.get("width_m"))
                                    for q in tprops] + [np.nan])
            wt = truth_width[best_t]  # -1 (unmatched) picks the NaN at the end
            err = np.abs(wr - wt)[m]
            err = err[np.isfinite(err)]
            width_error = float(np.median(err)) if len(err) else None
    return {
        "count_accuracy": _r(count_accuracy),
        "centerline_rmse_m": _r(rmse),
        "centerline_matched": _r(matched_share),
        "width_error_m": _r(width_error),
        "stations": int(n_st),
    }


# -- public -------------------------------------------------------------------
def evaluate_map(truth_dir, result_dir, *, trajectories=(), reach_m: float = 20.0, step_m: float = 0.1,
                 buffers=BUFFER_DISTANCES) -> dict:
    """Accuracy of the map in *result_dir* against the truth in *truth_dir* (see the module docstring).

    Parameters
    ----------
    truth_dir : path
        ``SIM_DIR/truth`` of a simulation (boundaries, curbs, markings and lanes GeoJSON).
    result_dir : path
        Output directory of the map extraction, holding the same four files.
    trajectories : sequence of paths or arrays
        Trajectory files (``trajectory_*.txt``) or ``(n, 2)`` arrays of x, y;
        the region evaluated is their polylines buffered by *reach_m*. Empty:
        everything counts.
    reach_m : float
        Buffer around the trajectories (m).
    step_m : float
        Sampling step along lines (m).
    buffers : sequence of float
        Buffer widths (m) of the completeness and correctness figures (default 0.10 and 0.20).

    Raises
    ------
    FileNotFoundError
        (:class:`hdmap.errors.InputFileNotFoundError`) A directory or one of its four files is missing.
    hdmap.errors.CRSError
        Truth and result are in different CRSs.
    """
    if not (step_m > 0):
        raise ValueError(f"step_m must be positive, got {step_m!r}")
    truth, t_epsg = load_map(truth_dir, "truth")
    result, r_epsg = load_map(result_dir, "result")
    if t_epsg and r_epsg and t_epsg != r_epsg:
        raise CRSError(f"truth {truth_dir} is in EPSG:{t_epsg} but result {result_dir} in EPSG:{r_epsg}; "
                       "write both in one CRS")
    region = survey_region(trajectories, reach_m, epsg=t_epsg or r_epsg)

    def painted(items):
        return [(g, p) for g, p in items if p.get("kind") != "virtual"]

    return {
        "boundaries": _line_metrics(painted(truth["boundaries"]), painted(result["boundaries"]), region, step_m,
                                    with_pattern=True, buffers=buffers),
        "curbs": _line_metrics(truth["curbs"], result["curbs"], region, step_m, with_pattern=False, buffers=buffers),
        "markings": _marking_metrics(truth["markings"], result["markings"], region),
        "lanes": _lane_metrics(truth["lanes"], result["lanes"], region, step_m),
    }


def format_map_metrics(m: dict) -> str:
    """A compact table of :func:`evaluate_map` results."""

    def f(v, width=8):
        return f"{'-':>{width}s}" if v is None else f"{v:{width}.4f}"

    def length(v):
        return f"{'-':>9s}" if v is None else f"{v:9.1f}"

    lines = [f"{'lines':10s} {'compl.10':>8s} {'compl.20':>8s} {'corr.10':>8s} {'corr.20':>8s} {'rmse_m':>8s} "
             f"{'pattern':>8s} {'kind':>8s} {'truth_m':>9s} {'result_m':>9s}"]
    for name in ("boundaries", "curbs"):
        x = m[name]
        lines.append(
            f"{name:10s} {f(x['completeness_0.10'])} {f(x['completeness_0.20'])} {f(x['correctness_0.10'])} "
            f"{f(x['correctness_0.20'])} {f(x['rmse_m'])} {f(x.get('pattern_accuracy'))} {f(x.get('kind_accuracy'))} "
            f"{length(x['truth_length_m'])} {length(x['result_length_m'])}"
        )
    b = m["boundaries"]
    lines.append(f"{'dashes':10s} stroke error {f(b.get('stroke_error_m'), 0).strip()} m, "
                 f"gap error {f(b.get('gap_error_m'), 0).strip()} m")
    lines.append("")
    lines.append(f"{'markings':10s} {'precision':>9s} {'recall':>9s} {'truth':>7s} {'result':>7s}")
    for fam, x in m["markings"].items():
        lines.append(f"{fam:10s} {f(x['precision'], 9)} {f(x['recall'], 9)} {x['truth']:7d} {x['result']:7d}")
    lines.append("")
    ln = m["lanes"]
    lines.append(f"{'lanes':10s} {'count_acc':>9s} {'cl_rmse_m':>9s} {'matched':>9s} {'width_m':>9s} {'stations':>9s}")
    lines.append(f"{'':10s} {f(ln['count_accuracy'], 9)} {f(ln['centerline_rmse_m'], 9)} "
                 f"{f(ln.get('centerline_matched'), 9)} {f(ln['width_error_m'], 9)} {ln['stations']:9d}")
    return "\n".join(lines)

"""Cutting a tile's vectors to the tile, and stitching the tiles' vectors into one network.

Each tile extracts boundaries from its own points *and* a buffer around it
(``vector_buffer``), so a line near the tile edge is found with the same
context its neighbour sees. :func:`clip_tile` then keeps only what lies in the
tile (a closed square: a boundary crossing the edge is cut exactly on it,
and the cut end remembers the edge). :func:`stitch` pairs cut ends on the two
sides of each edge, lying within ``tolerance`` of each other along it, and
joins the pieces through one shared vertex on the edge, so the stitched
network has no seams and no doubled lines, whatever the tile size.

Markings are not cut: a marking (or a crosswalk with its bars) belongs to the
tile holding its centroid (half-open squares: each in exactly one tile).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["clip_tile", "clip_polyline", "stitch"]

FAMILIES = ("lines", "curbs", "borders")


# ---------------------------------------------------------------------------
# clipping
# ---------------------------------------------------------------------------
def _segment_in_box(a, b, box):
    """Liang-Barsky: the parameter interval of segment a->b inside the closed box, and the edge at each end.

    Returns (t0, t1, edge0, edge1) or None; an edge is (axis, value), or None where the interval
    ends at the segment's own end.
    """
    x0, y0, x1, y1 = box
    d = b - a
    t0, t1 = 0.0, 1.0
    e0 = e1 = None
    for axis, lo, hi in ((0, x0, x1), (1, y0, y1)):
        if d[axis] == 0.0:
            if a[axis] < lo or a[axis] > hi:
                return None
            continue
        ta = (lo - a[axis]) / d[axis]
        tb = (hi - a[axis]) / d[axis]
        ea, eb = (axis, lo), (axis, hi)
        if ta > tb:
            ta, tb, ea, eb = tb, ta, eb, ea
        if ta > t0:
            t0, e0 = ta, ea
        if tb < t1:
            t1, e1 = tb, eb
        if t0 > t1:
            return None
    return t0, t1, e0, e1


def _at(a, b, t, edge):
    p = a + t * (b - a)
    if edge is not None:
        p[edge[0]] = edge[1]  # exactly on the edge, so both tiles' cut ends agree bit for bit
    return p


def clip_polyline(xyz: np.ndarray, box) -> list[tuple[np.ndarray, tuple | None, tuple | None]]:
    """Parts of a 3D polyline inside a closed box: ``[(xyz, edge at start, edge at end)]``.

    An edge is ``(axis, value)`` where the part was cut (``axis`` 0 for x), None at
    an end of the polyline itself. Parts of zero length (touching the box) are dropped.
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    x0, y0, x1, y1 = box
    inside = (xyz[:, 0] >= x0) & (xyz[:, 0] <= x1) & (xyz[:, 1] >= y0) & (xyz[:, 1] <= y1)
    if inside.all():
        return [(xyz, None, None)]
    lo, hi = xyz[:, :2].min(axis=0), xyz[:, :2].max(axis=0)
    if lo[0] > x1 or hi[0] < x0 or lo[1] > y1 or hi[1] < y0:
        return []
    parts = []
    cur: list | None = None
    start_edge = None
    for i in range(len(xyz) - 1):
        a, b = xyz[i], xyz[i + 1]
        if inside[i] and inside[i + 1]:
            if cur is None:
                cur, start_edge = [a], None
            cur.append(b)
            continue
        hit = _segment_in_box(a[:2], b[:2], box)
        if hit is None:
            continue
        t0, t1, e0, e1 = hit
        if cur is None:
            cur = [a if e0 is None else _at(a, b, t0, e0)]
            start_edge = e0
        if e1 is None:
            cur.append(b)
        else:
            cur.append(_at(a, b, t1, e1))
            parts.append((np.array(cur), start_edge, e1))
            cur = None
    if cur is not None:
        parts.append((np.array(cur), start_edge, None))
    out = []
    for arr, e0, e1 in parts:
        keep = np.concatenate([[True], np.any(np.diff(arr[:, :2], axis=0) != 0.0, axis=1)])
        arr = arr[keep]
        if len(arr) >= 2:
            out.append((arr, e0, e1))
    return out


def _centroid(poly) -> np.ndarray:
    return np.asarray(poly, dtype=np.float64)[:, :2].mean(axis=0)


def clip_tile(parts: dict, box) -> dict:
    """A tile's share of :func:`hdmap.vectorize.local_vectors` output (local coordinates).

    Boundaries become pieces ``dict(boundary attributes, xyz=..., cut=(edge0, edge1))``;
    markings are kept whole where their centroid (a crosswalk bar: its
    crosswalk's) lies in the half-open box, with group indices renumbered.
    """
    out = {}
    for fam in FAMILIES:
        pieces = []
        for b in parts[fam]:
            for xyz, e0, e1 in clip_polyline(b["xyz"], box):
                pieces.append(dict(b, xyz=xyz, cut=(e0, e1)))
        out[fam] = pieces
    x0, y0, x1, y1 = box
    marks = parts["markings"]
    keep = []
    for typ, poly, z, group, sub in marks:
        anchor = marks[group][1] if group is not None else poly
        c = _centroid(anchor)
        keep.append(bool(x0 <= c[0] < x1 and y0 <= c[1] < y1))
    new_index = np.cumsum(keep) - 1
    out["markings"] = [(typ, poly, z, None if group is None else int(new_index[group]), sub)
                       for (typ, poly, z, group, sub), k in zip(marks, keep) if k]
    return out


# ---------------------------------------------------------------------------
# stitching
# ---------------------------------------------------------------------------
def _length(xyz) -> float:
    return float(np.hypot(*np.diff(xyz[:, :2], axis=0).T).sum()) if len(xyz) > 1 else 0.0


def _end(piece, which):
    xyz = piece["xyz"]
    p = xyz[-1] if which else xyz[0]
    q = xyz[-2] if which else xyz[1]
    t = (p - q)[:2]  # outward tangent
    return p, t / max(math.hypot(*t), 1e-12)


def _compatible(a, b) -> bool:
    return a.get("pattern") == b.get("pattern")


def _merge_attrs(chain_pieces) -> dict:
    w = np.array([max(_length(p["xyz"]), 1e-6) for p in chain_pieces])
    first = chain_pieces[0]
    rec = {k: v for k, v in first.items() if k not in ("xyz", "cut")}
    kinds: dict = {}
    for p, wi in zip(chain_pieces, w):
        kinds[p["kind"]] = kinds.get(p["kind"], 0.0) + wi
    rec["kind"] = max(sorted(kinds), key=lambda k: kinds[k])
    widths = [p.get("width") for p in chain_pieces]
    if all(v is not None for v in widths):
        rec["width"] = float(np.average(widths, weights=w))
    for key in ("stroke", "gap"):
        vals = [(p.get(key), wi) for p, wi in zip(chain_pieces, w) if p.get(key) is not None]
        rec[key] = float(np.average([v for v, _ in vals], weights=[wi for _, wi in vals])) if vals else None
    return rec


def _stitch_family(pieces: list[dict], tolerance: float, min_length: float) -> list[dict]:
    # cut ends grouped by the edge they lie on
    by_edge: dict = {}
    for i, pc in enumerate(pieces):
        for which in (0, 1):
            edge = pc["cut"][which]
            if edge is None:
                continue
            p, t = _end(pc, which)
            by_edge.setdefault(edge, []).append((i, which, p, t))
    partner: dict = {}
    snap: dict = {}
    for edge in sorted(by_edge):
        ends = by_edge[edge]
        axis = edge[0]
        cands = []
        for u in range(len(ends)):
            for v in range(u + 1, len(ends)):
                i, wi, pi, ti = ends[u]
                j, wj, pj, tj = ends[v]
                if i == j or ti[axis] * tj[axis] >= 0:  # the two pieces must come from opposite sides
                    continue
                d = abs(pi[1 - axis] - pj[1 - axis])
                if d <= tolerance and float(ti @ tj) < -0.5:
                    cands.append((d, u, v))
        used = set()
        for d, u, v in sorted(cands):
            if u in used or v in used:
                continue
            used.update((u, v))
            (i, wi, pi, _), (j, wj, pj, _) = ends[u], ends[v]
            m = 0.5 * (pi + pj)
            m[axis] = edge[1]
            snap[(i, wi)] = m
            snap[(j, wj)] = m
            if _compatible(pieces[i], pieces[j]):
                partner[(i, wi)] = (j, wj)
                partner[(j, wj)] = (i, wi)
    for (i, which), m in snap.items():
        xyz = pieces[i]["xyz"].copy() if not pieces[i].get("_copied") else pieces[i]["xyz"]
        xyz[-1 if which else 0] = m
        pieces[i]["xyz"] = xyz
        pieces[i]["_copied"] = True
    out = []
    seen = set()
    for start in range(len(pieces)):
        if start in seen:
            continue
        # walk back to the head of the chain (or once around a loop)
        i, enter = start, 0
        while (i, enter) in partner:
            j, f = partner[(i, enter)]
            nxt = (j, 1 - f)
            if nxt[0] == start:
                break
            i, enter = nxt
        chain = []
        while True:
            seen.add(i)
            xyz = pieces[i]["xyz"] if enter == 0 else pieces[i]["xyz"][::-1]
            chain.append((pieces[i], xyz))
            leave = 1 - enter
            if (i, leave) not in partner:
                break
            j, f = partner[(i, leave)]
            if j in seen:
                break
            i, enter = j, f
        xyz = np.vstack([chain[0][1]] + [c[1][1:] for c in chain[1:]])
        if _length(xyz) < min_length:
            continue
        rec = _merge_attrs([c[0] for c in chain])
        rec.pop("_copied", None)
        rec["xyz"] = xyz
        out.append(rec)
    return out


def stitch(tiles: list[dict], *, tolerance: float = 0.5, min_length: float = 0.5, road_cell: float = 0.5) -> dict:
    """Join the clipped vectors of all tiles (in a fixed tile order) into one network.

    Returns ``lines``, ``curbs``, ``borders`` (boundary dicts, local
    coordinates), ``markings`` (with group indices into the joined list) and
    ``road_xy`` (centres of the road cells).
    """
    out: dict = {}
    for fam in FAMILIES:
        pieces = [dict(pc) for t in tiles for pc in t[fam]]
        out[fam] = _stitch_family(pieces, tolerance, min_length)
    markings = []
    for t in tiles:
        base = len(markings)
        markings += [(typ, poly, z, None if g is None else base + g, sub) for typ, poly, z, g, sub in t["markings"]]
    out["markings"] = markings
    cells = [t["road_cells"] for t in tiles if len(t["road_cells"])]
    cells = np.unique(np.vstack(cells), axis=0) if cells else np.empty((0, 2), np.int64)
    out["road_xy"] = (cells + 0.5) * road_cell
    return out

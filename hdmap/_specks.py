"""Specks of paint in a row: a line sampled sparsely, far from the scanner.

Far away a profile scanner's lines lie 0.3-1.3 m apart on the ground, and a
lane line crossing them shows as one speck of two or three returns per scan
line: too small to judge by shape alone, but the specks lie in a row. Both
the classifier (:func:`hdmap.classify.detect_markings`) and the vectoriser
(:func:`hdmap.vectorize.marking_objects`) find such rows here.
"""

from __future__ import annotations

import math

import numpy as np

GAP = 1.5
"""Specks up to this far apart along a row belong to it (m)."""
COUNT = 4
"""Fewest specks in a row."""
TOLERANCE = 0.05
"""Largest distance of a speck's centre from its row's line (m)."""
SIZE = 0.5
"""A speck is at most this large across (m)."""

_BLOCK = 1.0  # m: blocks of unpainted points fetched for a row's painted share
_NEIGHBOURS9 = np.array([(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)], np.int64)


def speck_rows(specks, unpainted_xy: np.ndarray, gap: float = GAP, tol: float = TOLERANCE, need: int = COUNT,
               min_length: float = 0.0, min_points: int = 2) -> list:
    """Rows of specks: ``[(members, m, u, centres), ...]``.

    *specks* is a list of (k, 2+) point arrays; those of at least *min_points*
    points and at most :data:`SIZE` across count. Each is where a scan line crossed a
    line, so its centre lies on the line. Specks within *gap* of each other
    form groups; in each group the straight line through two neighbouring
    specks with the most specks within *tol* of it is taken (refitted twice to
    those specks), cut where its specks are more than *gap* apart, and a run
    of at least *need* specks at least *min_length* long is a row; the rest of
    the group is searched again. Specks are sorted by position first: the rows do not
    depend on the order of the specks. *members* index *specks* in order along
    the row, *centres* are their centres; *m* is a point on its line and *u*
    its direction.

    A line sampled that sparsely has no returns between its specks: a row
    counts only if no more of *unpainted_xy* (the unpainted returns) than of
    its specks' points lie within *tol* of it. Near the scanner, where a line
    is sampled densely, a row of bright specks among unpainted returns is no
    line (asphalt seen at a steep angle reads brighter).
    """
    from scipy.sparse import coo_matrix  # noqa: PLC0415
    from scipy.sparse.csgraph import connected_components  # noqa: PLC0415
    from scipy.spatial import cKDTree  # noqa: PLC0415

    ok = [i for i, q in enumerate(specks) if len(q) >= min_points and float(np.ptp(q[:, :2], axis=0).max()) <= SIZE]
    if len(ok) < need:
        return []
    c = np.array([specks[i][:, :2].mean(axis=0) for i in ok])
    order = np.lexsort((c[:, 1], c[:, 0]))
    ids = np.asarray(ok)[order]
    c = c[order]
    pairs = cKDTree(c).query_pairs(gap, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(c), len(c)))
    _, label = connected_components(graph, directed=False)  # labels in order of first member
    rows = []
    members_of = [[] for _ in range(int(label.max()) + 1 if len(label) else 0)]
    for i, g in enumerate(label.tolist()):
        members_of[g].append(i)
    for group in members_of:
        rest = np.array(group)
        while len(rest) >= need:
            run = _straight_run(c[rest], tol, gap, need)
            if run is None:
                break
            sel = rest[run]
            m, u, _ = principal_axes(c[sel])
            uu = (c[sel] - m) @ u
            o = np.argsort(uu, kind="stable")
            if uu[o[-1]] - uu[o[0]] >= min_length:
                rows.append((ids[sel[o]], m, u, c[sel[o]]))
            rest = np.delete(rest, run)
    if not rows:
        return []
    painted = _painted(rows, specks, np.asarray(unpainted_xy, dtype=np.float64)[:, :2], tol)
    return [row for row, keep in zip(rows, painted) if keep]


def _painted(rows, specks, unpainted_xy, tol) -> list:
    """Whether each row has at least as many paint points as unpainted points within *tol* of it."""
    key = np.floor(unpainted_xy / _BLOCK).astype(np.int64)
    near = np.concatenate([np.floor(r[3] / _BLOCK).astype(np.int64) for r in rows])
    near = np.unique((near[:, None, :] + _NEIGHBOURS9[None]).reshape(-1, 2), axis=0)
    sel = unpainted_xy[_rows_in(key, near)]
    out = []
    for members, _, _, centres in rows:
        a, b = centres[0], centres[-1]
        d = b - a
        length = max(math.hypot(*d), 1e-9)
        t = (sel - a) @ (d / length)
        off = np.abs((sel - a) @ (np.array([-d[1], d[0]]) / length))
        unpainted = int(np.count_nonzero((t >= 0) & (t <= length) & (off <= tol)))
        out.append(sum(len(specks[i]) for i in members) >= unpainted)
    return out


def principal_axes(xy):
    """``(m, u, n)``: centre, principal direction (canonical sign, so the result does not depend on the
    order of the points) and its normal of points *xy* (k, 2)."""
    m = xy.mean(axis=0)
    d = xy - m
    cov = d.T @ d / max(len(d), 1)
    w, v = np.linalg.eigh(cov)
    u = v[:, 1]
    if u[0] < 0 or (u[0] == 0 and u[1] < 0):
        u = -u
    return m, u, np.array([-u[1], u[0]])


def _straight_run(c, tol, gap, need):
    """Indices into *c* (speck centres) of the longest straight run of at least *need*, or None.

    Candidate lines pass through two specks within *gap* of each other (a row's
    neighbours; all pairs would cost the cube of a group's size), and are
    refitted twice to the specks within *tol* of them.
    """
    from scipy.spatial import cKDTree  # noqa: PLC0415

    best, best_n = None, 0
    for i, j in cKDTree(c).query_pairs(gap, output_type="ndarray").tolist():
        d = c[j] - c[i]
        norm = math.hypot(*d)
        if norm < 1e-6:
            continue
        m, nrm = c[i], np.array([-d[1], d[0]]) / norm
        inl = np.flatnonzero(np.abs((c - m) @ nrm) <= tol)
        if len(inl) < need or len(inl) <= best_n:
            continue
        for _ in range(2):
            m, u, n = principal_axes(c[inl])
            inl = np.flatnonzero(np.abs((c - m) @ n) <= tol)
            if len(inl) < need:
                break
        if len(inl) < need:
            continue
        uu = (c[inl] - m) @ u
        o = np.argsort(uu, kind="stable")
        for seg in np.split(o, np.flatnonzero(np.diff(uu[o]) > gap) + 1):
            if len(seg) >= need and len(seg) > best_n:
                best, best_n = np.sort(inl[seg]), len(seg)
    return best


def _rows_in(rows: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Whether each row of the (n, 2) int array *rows* is a row of *table*."""
    if len(table) == 0 or len(rows) == 0:
        return np.zeros(len(rows), np.bool_)
    lo = np.minimum(rows.min(axis=0), table.min(axis=0))
    span = np.maximum(rows.max(axis=0), table.max(axis=0)) - lo + 1
    return np.isin((rows[:, 0] - lo[0]) * span[1] + (rows[:, 1] - lo[1]),
                   (table[:, 0] - lo[0]) * span[1] + (table[:, 1] - lo[1]))

"""Kernels of the vectorisation stages: sparse connected components and along-axis profiles.

Road markings cover a few per cent of a street, so the marking raster is kept
sparse: only occupied cells exist (sorted keys), and neighbours are found by
binary search instead of in a dense image that would span the whole survey.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit

__all__ = ["sparse_components", "axis_profile"]


def sparse_components(ix: np.ndarray, iy: np.ndarray, radius: int = 1):
    """Connected components of occupied cells, linking cells up to *radius* cells apart.

    Parameters
    ----------
    ix, iy : integer arrays
        Cell coordinates of the occupied cells (duplicates allowed).
    radius : int
        Two cells are connected when ``max(|dx|, |dy|) <= radius`` (radius 1 is
        8-connectivity; 2 bridges a one-cell gap, e.g. sparse points on paint).

    Returns
    -------
    labels : int64 array, one label per input cell, 0..n-1, numbered in the order
        of the smallest (iy, ix) of each component, so the result does not depend
        on the input order.
    n : int
        Number of components.
    """
    ix = np.ascontiguousarray(ix, dtype=np.int64)
    iy = np.ascontiguousarray(iy, dtype=np.int64)
    if ix.shape != iy.shape:
        raise ValueError(f"ix and iy differ in shape: {ix.shape} vs {iy.shape}")
    if radius < 1:
        raise ValueError(f"radius must be at least 1, got {radius}")
    if len(ix) == 0:
        return np.zeros(0, np.int64), 0
    x0 = ix.min() - radius - 1
    y0 = iy.min() - radius - 1
    span = ix.max() - x0 + radius + 2
    if (iy.max() - y0 + radius + 2) * span >= 2**62:
        raise ValueError("cell coordinates span too far for 64-bit keys")
    key = (iy - y0) * span + (ix - x0)
    ukey, inverse = np.unique(key, return_inverse=True)
    lab = _components(ukey, int(span), int(radius))
    return lab[inverse.ravel()], int(lab.max()) + 1


@jit
def _find(parent, a):
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@jit
def _components(ukey, span, r):
    n = len(ukey)
    parent = np.arange(n)
    for i in range(n):
        k = ukey[i]
        # only look "forward" (larger keys): every pair is seen once
        for dy in range(0, r + 1):
            for dx in range(-r, r + 1):
                if dy == 0 and dx <= 0:
                    continue
                q = k + dy * span + dx
                j = np.searchsorted(ukey, q)
                if j < n and ukey[j] == q:
                    a = _find(parent, i)
                    b = _find(parent, j)
                    if a != b:
                        if a < b:
                            parent[b] = a
                        else:
                            parent[a] = b
    # roots are the smallest key of each component; number them in key order
    lab = np.empty(n, np.int64)
    nxt = 0
    root_lab = np.full(n, -1, np.int64)
    for i in range(n):
        rt = _find(parent, i)
        if root_lab[rt] < 0:
            root_lab[rt] = nxt
            nxt += 1
        lab[i] = root_lab[rt]
    return lab


def axis_profile(u: np.ndarray, v: np.ndarray, z: np.ndarray, step: float, lo: float, nbins: int, min_count: int = 3):
    """Centre, spread and height of a band of points in bins along its axis.

    Points with axis coordinate *u* fall into bins ``lo + k*step``; for each bin
    with at least *min_count* points the result holds the mean across-axis
    coordinate *v*, the width of the band (sqrt(12) times the standard deviation
    of *v*, exact for a uniformly filled strip), the mean height and the count.
    Returns ``(centre, width, zmean, count)``; empty bins hold NaN (count 0).
    """
    return _axis_profile(np.ascontiguousarray(u, np.float64), np.ascontiguousarray(v, np.float64),
                         np.ascontiguousarray(z, np.float64), float(step), float(lo), int(nbins), int(min_count))


@jit
def _axis_profile(u, v, z, step, lo, nb, min_count):
    cnt = np.zeros(nb, np.int64)
    sv = np.zeros(nb)
    svv = np.zeros(nb)
    sz = np.zeros(nb)
    for i in range(len(u)):
        k = int(np.floor((u[i] - lo) / step))
        if k < 0 or k >= nb:
            continue
        cnt[k] += 1
        sv[k] += v[i]
        sz[k] += z[i]
    centre = np.full(nb, np.nan)
    for k in range(nb):
        if cnt[k] > 0:
            centre[k] = sv[k] / cnt[k]
    for i in range(len(u)):
        k = int(np.floor((u[i] - lo) / step))
        if k < 0 or k >= nb:
            continue
        d = v[i] - centre[k]
        svv[k] += d * d
    width = np.full(nb, np.nan)
    zm = np.full(nb, np.nan)
    for k in range(nb):
        if cnt[k] >= min_count:
            width[k] = np.sqrt(12.0 * svv[k] / cnt[k])
            zm[k] = sz[k] / cnt[k]
        else:
            centre[k] = np.nan
    return centre, width, zm, cnt

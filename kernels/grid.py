"""Grid kernels: binning points into cells (CSR), per-cell statistics, raster filters,
region growing, connected components, distance transforms and voxel neighbourhood counts.

Rasters are 2D float64 arrays indexed ``[ix, iy]``; empty cells are NaN. Every
function has a plain NumPy/SciPy reference in ``tests/kernels``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ._jit import jit, jit_parallel

__all__ = [
    "cell_index", "bin_points", "cell_stats", "min_filter", "max_filter", "median3", "percentile_filter",
    "grow_region", "label_components", "distance_transform", "fill_nearest", "voxel_neighbour_counts",
    "gather_cells", "curb_steps", "DIRECTIONS", "nearest_fill", "binned_quantiles", "component_shapes",
    "nearest_in_group", "similar_neighbours", "closest_level", "xy_bounds", "cell_coords", "range_sector_keys",
    "relative_to_curve", "gap_outliers", "grouped_histograms", "voxel_coords",
    "cell_flat", "grouped_cell_means", "within_box",
]


# --------------------------------------------------------------------------
# binning
# --------------------------------------------------------------------------
EDGE = 1e-6
"""A point within this share of a cell below a cell edge counts as on the edge (in the cell above).

Coordinates quantised to a LAS scale (1 mm) sit exactly on the edges of
0.05, 0.1 or 0.25 m cells, about one point in a hundred per axis. Such a grid's
origin is a multiple of the cell (an absolute grid: a tile and the whole survey
share their cells), but ``k * 0.1`` is not exact in floating point, so without
the tolerance the rounding of ``(x - x0) / cell`` would put an edge point in one
cell for one origin and in the next for another, and a tile's classification
would depend on its size. The rounding errors it absorbs stay below 2e-7 cells
for coordinates under 1e7 m (projected, e.g. UTM northings) and cells of 1 cm or more.
"""


@jit
def _cell_float(v, v0, inv):
    """``(v - v0) * inv``, lifted by :data:`EDGE`: a value on a cell edge floors to the cell above it."""
    return (v - v0) * inv + EDGE


def _column(a) -> np.ndarray:
    """float64 1-D view or copy; strided views (a column of an (n, 3) array) are kept as they are
    (the kernels read them in place instead of copying every column first)."""
    a = np.asarray(a)
    return a if a.dtype == np.float64 else a.astype(np.float64)


def _xy(x, y, cell: float = 1.0):
    """x and y as float64 columns (see :func:`_column`) of one shape, with a positive *cell*."""
    x = _column(x)
    y = _column(y)
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in shape: {x.shape} vs {y.shape}")
    if not cell > 0:
        raise ValueError(f"cell must be positive, got {cell}")
    return x, y


def cell_index(x: np.ndarray, y: np.ndarray, x0: float, y0: float, cell: float, nx: int, ny: int,
               where: np.ndarray | None = None) -> np.ndarray:
    """Flat cell index ``ix * ny + iy`` of each point; -1 outside the grid, and where *where* (bool, one
    per point) is False. Cells as :func:`cell_coords`."""
    x, y = _xy(x, y, cell)
    if where is None:
        return _cell_index(x, y, float(x0), float(y0), float(cell), int(nx), int(ny))
    where = np.asarray(where).astype(np.bool_, copy=False)
    if where.shape != x.shape:
        raise ValueError(f"where must have one value per point, shape {x.shape}, got {where.shape}")
    return _cell_index_where(x, y, where, float(x0), float(y0), float(cell), int(nx), int(ny))


@jit_parallel
def _cell_index(x, y, x0, y0, cell, nx, ny):
    n = x.shape[0]
    out = np.empty(n, np.int64)
    inv = 1.0 / cell
    for i in prange(n):
        fx = _cell_float(x[i], x0, inv)
        fy = _cell_float(y[i], y0, inv)
        if not (fx >= 0 and fy >= 0 and fx < nx and fy < ny):  # NaN fails too
            out[i] = -1
        else:
            out[i] = int(fx) * ny + int(fy)
    return out


@jit_parallel
def _cell_index_where(x, y, where, x0, y0, cell, nx, ny):
    n = x.shape[0]
    out = np.empty(n, np.int64)
    inv = 1.0 / cell
    for i in prange(n):
        out[i] = -1
        if where[i]:
            fx = _cell_float(x[i], x0, inv)
            fy = _cell_float(y[i], y0, inv)
            if fx >= 0 and fy >= 0 and fx < nx and fy < ny:
                out[i] = int(fx) * ny + int(fy)
    return out


def xy_bounds(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """``(xmin, ymin, xmax, ymax)`` over the finite pairs (NaN in either skips the point);
    all NaN when there is none."""
    x, y = _xy(x, y)
    b = _xy_bounds(x, y, 64)
    return float(b[0]), float(b[1]), float(b[2]), float(b[3])


@jit_parallel
def _xy_bounds(x, y, nchunk):
    n = x.shape[0]
    part = np.empty((nchunk, 4))
    step = (n + nchunk - 1) // nchunk
    for k in prange(nchunk):
        x0 = y0 = np.inf
        x1 = y1 = -np.inf
        for i in range(k * step, min((k + 1) * step, n)):
            xi, yi = x[i], y[i]
            if xi == xi and yi == yi:  # both finite or infinite, not NaN
                x0 = min(x0, xi)
                x1 = max(x1, xi)
                y0 = min(y0, yi)
                y1 = max(y1, yi)
        part[k, 0], part[k, 1], part[k, 2], part[k, 3] = x0, y0, x1, y1
    out = np.array([np.inf, np.inf, -np.inf, -np.inf])
    for k in range(nchunk):
        out[0] = min(out[0], part[k, 0])
        out[1] = min(out[1], part[k, 1])
        out[2] = max(out[2], part[k, 2])
        out[3] = max(out[3], part[k, 3])
    if not out[0] <= out[2]:
        out[:] = np.nan
    return out


def cell_coords(x: np.ndarray, y: np.ndarray, x0: float, y0: float, cell: float, nx: int, ny: int):
    """``(ix, iy)``: ``floor((x - x0) / cell)`` (a point on a cell edge in the cell above it, see
    :data:`EDGE`) and the same for y, clipped into the grid (NaN gives 0)."""
    x, y = _xy(x, y, cell)
    return _cell_coords(x, y, float(x0), float(y0), float(cell), int(nx), int(ny))


@jit_parallel
def _cell_coords(x, y, x0, y0, cell, nx, ny):
    n = x.shape[0]
    ix = np.empty(n, np.int64)
    iy = np.empty(n, np.int64)
    for i in prange(n):
        ix[i] = _clip_cell(x[i], x0, cell, nx - 1)
        iy[i] = _clip_cell(y[i], y0, cell, ny - 1)
    return ix, iy


def cell_flat(x: np.ndarray, y: np.ndarray, x0: float, y0: float, cell: float, nx: int, ny: int) -> np.ndarray:
    """``ix * ny + iy`` of :func:`cell_coords` (clipped into the grid): a flat index into C-ordered
    (nx, ny) rasters, for gathering with ``raster.ravel()[flat]`` (much faster than ``raster[ix, iy]``)."""
    x, y = _xy(x, y, cell)
    return _cell_flat(x, y, float(x0), float(y0), float(cell), int(nx), int(ny))


@jit_parallel
def _cell_flat(x, y, x0, y0, cell, nx, ny):
    n = x.shape[0]
    out = np.empty(n, np.int64)
    for i in prange(n):
        out[i] = _clip_cell(x[i], x0, cell, nx - 1) * ny + _clip_cell(y[i], y0, cell, ny - 1)
    return out


def within_box(x: np.ndarray, y: np.ndarray, box, radius: float) -> np.ndarray:
    """Whether each point lies in the box ``(x0, y0, x1, y1)`` or within *radius* of it (NaN: no): the
    test ``hypot(max(x0 - x, x - x1, 0), max(y0 - y, y - y1, 0)) <= radius`` without its temporaries
    (columns of a record array are read in place)."""
    x, y = _xy(x, y)
    x0, y0, x1, y1 = (float(v) for v in box)
    return _within_box(x, y, x0, y0, x1, y1, float(radius) ** 2 if radius >= 0 else -1.0)


@jit_parallel
def _within_box(x, y, x0, y0, x1, y1, r2):
    n = x.shape[0]
    out = np.empty(n, np.bool_)
    for i in prange(n):
        dx = _beyond(x[i], x0, x1)
        dy = _beyond(y[i], y0, y1)
        out[i] = dx * dx + dy * dy <= r2
    return out


@jit
def _beyond(v, lo, hi):
    """How far *v* lies outside ``[lo, hi]`` (0 inside, NaN for NaN)."""
    d = lo - v
    if v - hi > d:
        d = v - hi
    if d < 0.0:
        d = 0.0
    return d


@jit
def _clip_cell(v, v0, cell, top):
    """``floor((v - v0) / cell)`` (edges as :data:`EDGE` says) clipped into ``0..top``; NaN gives 0."""
    f = np.floor(_cell_float(v, v0, 1.0 / cell))
    if not f > 0:
        return 0
    return top if f >= top else int(f)


def range_sector_keys(xyz: np.ndarray, positions: np.ndarray, headings, range_bin: float, nr: int, na: int):
    """Per point: ``(key, has)`` with key = range bin * na + sector of the point seen from its vehicle
    position (range ``|xyz - position|`` in bins of *range_bin*, clipped to nr - 1; sector: bearing
    relative to the heading in na equal parts), and has = the range is finite. Without *headings* every
    sector is 0. Points without a position get key 0 and has False."""
    xyz = np.asarray(xyz, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or positions.shape != xyz.shape:
        raise ValueError(f"xyz and positions must both be (n, 3), got {xyz.shape} and {positions.shape}")
    if not range_bin > 0 or nr < 1 or na < 1:
        raise ValueError("need range_bin > 0, nr >= 1 and na >= 1")
    head = np.zeros(len(xyz)) if headings is None else np.asarray(headings, dtype=np.float64)
    return _range_sector_keys(xyz, positions, head, float(range_bin), int(nr), int(na), headings is not None)


@jit_parallel
def _range_sector_keys(xyz, pos, head, range_bin, nr, na, use_heading):
    n = xyz.shape[0]
    key = np.empty(n, np.int64)
    has = np.empty(n, np.bool_)
    two_pi = 2.0 * np.pi
    for i in prange(n):
        dx = xyz[i, 0] - pos[i, 0]
        dy = xyz[i, 1] - pos[i, 1]
        dz = xyz[i, 2] - pos[i, 2]
        rng = np.sqrt(dx * dx + dy * dy + dz * dz)
        has[i] = np.isfinite(rng)
        f = rng / range_bin
        rb = 0
        if f == f:
            rb = 0 if not f > 0 else (nr - 1 if f >= nr - 1 else int(f))
        ab = 0
        if use_heading:
            az = np.arctan2(dx, dy) - head[i]
            m = np.fmod(az, two_pi)  # np.mod: the remainder takes the divisor's sign
            if m != 0.0 and m < 0.0:
                m += two_pi
            if m == m:
                ab = int(np.floor(m / two_pi * na)) % na
        key[i] = rb * na + ab
    return key, has


def relative_to_curve(values: np.ndarray, key: np.ndarray, has: np.ndarray, slot: np.ndarray, table: np.ndarray):
    """Each point's value against its group's curve: ``(values - level, spread)`` with
    ``level, spread = table[slot, key, 0:2]``; NaN where *has* is False, slot < 0 or the level is NaN.

    *table* is (groups, keys, >= 2), e.g. the level and noise level of log
    intensity per range/sector key of each drive and scanner.
    """
    values = _column(values)
    key = np.ascontiguousarray(key, dtype=np.int64)
    has = np.ascontiguousarray(has, dtype=np.bool_)
    slot = np.ascontiguousarray(slot, dtype=np.int64)
    table = np.ascontiguousarray(table, dtype=np.float64)
    if not (values.shape == key.shape == has.shape == slot.shape) or table.ndim != 3 or table.shape[2] < 2:
        raise ValueError("values, key, has and slot must have one shape and table (groups, keys, >= 2)")
    if len(key) and (slot.max() >= len(table) or (key.max() >= table.shape[1] and (slot >= 0).any())):
        raise ValueError("slot or key outside the table")
    return _relative_to_curve(values, key, has, slot, table)


@jit_parallel
def _relative_to_curve(v, key, has, slot, table):
    n = v.shape[0]
    rel = np.empty(n)
    spread = np.empty(n)
    for i in prange(n):
        s = slot[i]
        rel[i] = np.nan
        spread[i] = np.nan
        if s < 0 or not has[i]:
            continue
        level = table[s, key[i], 0]
        if level == level:
            rel[i] = v[i] - level
            spread[i] = table[s, key[i], 1]
    return rel, spread


def bin_points(idx: np.ndarray, ncell: int):
    """Counting sort of points by cell: ``(start, order)`` with the points of cell c at
    ``order[start[c]:start[c+1]]`` in their original order; points with idx < 0 are left out."""
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    return _bin_points(idx, int(ncell))


@jit
def _bin_points(idx, ncell):
    counts = np.zeros(ncell + 1, np.int64)
    for i in range(idx.shape[0]):
        c = idx[i]
        if c >= 0:
            counts[c + 1] += 1
    start = np.empty(ncell + 1, np.int64)
    start[0] = 0
    for c in range(ncell):
        start[c + 1] = start[c] + counts[c + 1]
    fill = start[:-1].copy()
    order = np.empty(start[ncell], np.int64)
    for i in range(idx.shape[0]):
        c = idx[i]
        if c >= 0:
            order[fill[c]] = i
            fill[c] += 1
    return start, order


def cell_stats(values: np.ndarray, start: np.ndarray, order: np.ndarray):
    """Per cell: lowest value, second lowest, highest, count (NaN / 0 for empty cells).

    *values* may be a strided column (``xyz[:, 2]``): it is read in place, in the cells' order."""
    return _cell_stats(_column(values), start, order)


@jit_parallel
def _cell_stats(v, start, order):
    ncell = start.shape[0] - 1
    lo1 = np.full(ncell, np.nan)
    lo2 = np.full(ncell, np.nan)
    hi = np.full(ncell, np.nan)
    cnt = np.zeros(ncell, np.int64)
    for c in prange(ncell):
        a = start[c]
        b = start[c + 1]
        if b == a:
            continue
        m1 = np.inf
        m2 = np.inf
        mx = -np.inf
        for k in range(a, b):
            z = v[order[k]]
            if z < m1:
                m2 = m1
                m1 = z
            elif z < m2:
                m2 = z
            if z > mx:
                mx = z
        lo1[c] = m1
        lo2[c] = m2 if m2 < np.inf else m1
        hi[c] = mx
        cnt[c] = b - a
    return lo1, lo2, hi, cnt


def gather_cells(grid: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``grid.ravel()[idx]`` with NaN where idx < 0."""
    return _gather(np.ascontiguousarray(grid, dtype=np.float64).ravel(), np.ascontiguousarray(idx, dtype=np.int64))


@jit_parallel
def _gather(flat, idx):
    out = np.empty(idx.shape[0])
    for i in prange(idx.shape[0]):
        c = idx[i]
        out[i] = flat[c] if c >= 0 else np.nan
    return out


# --------------------------------------------------------------------------
# raster filters (NaN = empty, ignored)
# --------------------------------------------------------------------------
def min_filter(grid: np.ndarray, radius: int) -> np.ndarray:
    """Minimum over the (2r+1)^2 window of non-empty cells; NaN where the window is empty."""
    g = np.ascontiguousarray(grid, dtype=np.float64)
    return _minmax_filter(g, int(radius), True)


def max_filter(grid: np.ndarray, radius: int) -> np.ndarray:
    """Maximum over the (2r+1)^2 window of non-empty cells; NaN where the window is empty."""
    g = np.ascontiguousarray(grid, dtype=np.float64)
    return _minmax_filter(g, int(radius), False)


@jit_parallel
def _minmax_1d_rows(g, r, is_min):
    nx, ny = g.shape
    out = np.empty_like(g)
    for i in prange(nx):
        for j in range(ny):
            best = np.inf if is_min else -np.inf
            found = False
            for k in range(max(j - r, 0), min(j + r + 1, ny)):
                v = g[i, k]
                if v == v:
                    found = True
                    if is_min:
                        if v < best:
                            best = v
                    elif v > best:
                        best = v
            out[i, j] = best if found else np.nan
    return out


def _minmax_filter(g, r, is_min):
    a = _minmax_1d_rows(g, r, is_min)
    return np.ascontiguousarray(_minmax_1d_rows(np.ascontiguousarray(a.T), r, is_min).T)


def median3(grid: np.ndarray) -> np.ndarray:
    """Median of the non-empty cells of each 3x3 window (NaN where all are empty)."""
    return _median3(np.ascontiguousarray(grid, dtype=np.float64))


@jit_parallel
def _median3(g):
    nx, ny = g.shape
    out = np.full_like(g, np.nan)
    for i in prange(nx):
        buf = np.empty(9)
        for j in range(ny):
            m = 0
            for a in range(max(i - 1, 0), min(i + 2, nx)):
                for b in range(max(j - 1, 0), min(j + 2, ny)):
                    v = g[a, b]
                    if v == v:
                        buf[m] = v
                        m += 1
            if m:
                s = np.sort(buf[:m])
                out[i, j] = s[m // 2] if m % 2 else 0.5 * (s[m // 2 - 1] + s[m // 2])
    return out


def percentile_filter(grid: np.ndarray, radius: int, q: float, min_count: int = 1) -> np.ndarray:
    """q-th percentile (0-100, lower value, no interpolation) of the non-empty cells in each
    (2r+1)^2 window; NaN where fewer than *min_count* cells are non-empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in 0..100, got {q}")
    return _percentile_filter(np.ascontiguousarray(grid, dtype=np.float64), int(radius), float(q), int(min_count))


@jit_parallel
def _percentile_filter(g, r, q, min_count):
    nx, ny = g.shape
    out = np.full_like(g, np.nan)
    w = 2 * r + 1
    for i in prange(nx):
        buf = np.empty(w * w)
        for j in range(ny):
            m = 0
            for a in range(max(i - r, 0), min(i + r + 1, nx)):
                for b in range(max(j - r, 0), min(j + r + 1, ny)):
                    v = g[a, b]
                    if v == v:
                        buf[m] = v
                        m += 1
            if m >= min_count and m > 0:
                k = int(np.floor(q / 100.0 * (m - 1)))
                out[i, j] = np.partition(buf[:m], k)[k]
    return out


# --------------------------------------------------------------------------
# regions
# --------------------------------------------------------------------------
def grow_region(seeds: np.ndarray, allowed: np.ndarray, height: np.ndarray, max_step: float,
                connectivity: int = 8, *, gaps: np.ndarray | None = None, max_gap: int = 0,
                beyond: np.ndarray | None = None) -> np.ndarray:
    """Cells reachable from *seeds* through *allowed* cells, each step changing *height* by at most *max_step*.

    Seeds that are not allowed are ignored. Returns a boolean raster.

    With *gaps* (cells without data) and *max_gap* > 0 the region then also
    grows across paths of up to *max_gap* gap cells from one of its cells to
    an allowed cell within *max_step* of it in height (far from a scanner its
    lines lie further apart than a cell, and the surface between them is
    unseen, not absent), and on from there. Every cell that joins only so
    must pass *beyond* (optional, default *allowed*), a stricter mask: where
    the data are sparse the growth goes on only over cells that pass it. Gap
    cells are never part of the result. The result depends on the rasters
    only, not on the order cells are visited in (so a tile and the survey agree).
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    seeds = np.ascontiguousarray(seeds, dtype=np.bool_)
    allowed = np.ascontiguousarray(allowed, dtype=np.bool_)
    height = np.ascontiguousarray(height, dtype=np.float64)
    out = seeds & allowed
    # the plain growth: a spread over allowed cells with no gap to cross
    _spread_from(out, allowed, height, float(max_step), connectivity == 8, np.zeros((1, 1), np.bool_), 0)
    if gaps is None or max_gap <= 0:
        return out
    gaps = np.ascontiguousarray(gaps, dtype=np.bool_)
    if gaps.shape != allowed.shape:
        raise ValueError(f"gaps has shape {gaps.shape}, the raster {allowed.shape}")
    beyond = allowed if beyond is None else np.ascontiguousarray(beyond, dtype=np.bool_) & allowed
    if beyond.shape != allowed.shape:
        raise ValueError(f"beyond has shape {beyond.shape}, the raster {allowed.shape}")
    _spread_from(out, beyond, height, float(max_step), connectivity == 8, gaps & ~allowed, int(max_gap))
    return out


@jit
def _spread_from(out, passable, h, max_step, eight, gaps, max_gap):
    """Grow *out* (in place) breadth first from all its cells: to *passable* neighbours within max_step of the
    cell, and (max_gap > 0) across paths of up to max_gap *gaps* cells to *passable* cells within max_step of
    the cell the path starts at. Every condition involves only the two cells joined, so the result does not
    depend on the visiting order."""
    nx, ny = out.shape
    queue = np.empty(nx * ny, np.int64)
    tail = 0
    for i in range(nx):
        for j in range(ny):
            if out[i, j]:
                queue[tail] = i * ny + j
                tail += 1
    stamp = np.full(nx * ny if max_gap > 0 else 1, -1, np.int64)  # gap cells searched from the current cell
    # the gap cells within max_gap steps of a cell: at most the (2 max_gap + 1)^2 square around it
    local = np.empty(min(nx * ny, (2 * max_gap + 1) ** 2), np.int64)
    depth = np.empty(local.shape[0], np.int64)
    di = np.array([1, -1, 0, 0, 1, 1, -1, -1])
    dj = np.array([0, 0, 1, -1, 1, -1, 1, -1])
    nn = 8 if eight else 4
    head = 0
    while head < tail:
        c = queue[head]
        head += 1
        hc = h[c // ny, c % ny]
        # a small breadth-first search from c through the gap cells around it, up to max_gap deep
        lh = 0
        lt = 1
        local[0] = c
        depth[0] = 0
        while lh < lt:
            g = local[lh]
            d = depth[lh]
            lh += 1
            gi = g // ny
            gj = g % ny
            for k in range(nn):
                a = gi + di[k]
                b = gj + dj[k]
                if a < 0 or b < 0 or a >= nx or b >= ny or out[a, b]:
                    continue
                q = a * ny + b
                if passable[a, b]:
                    if abs(h[a, b] - hc) <= max_step:
                        out[a, b] = True
                        queue[tail] = q
                        tail += 1
                elif d < max_gap and gaps[a, b] and stamp[q] != c:
                    stamp[q] = c
                    local[lt] = q
                    depth[lt] = d + 1
                    lt += 1
    return out


def label_components(mask: np.ndarray, connectivity: int = 8):
    """Connected components of a boolean raster: ``(labels, count)``, labels 1..count, 0 = background."""
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    return _label(np.ascontiguousarray(mask, dtype=np.bool_), connectivity == 8)


@jit
def _label(mask, eight):
    nx, ny = mask.shape
    labels = np.zeros((nx, ny), np.int64)
    queue = np.empty(nx * ny, np.int64)
    di = np.array([1, -1, 0, 0, 1, 1, -1, -1])
    dj = np.array([0, 0, 1, -1, 1, -1, 1, -1])
    nn = 8 if eight else 4
    n = 0
    for i0 in range(nx):
        for j0 in range(ny):
            if not mask[i0, j0] or labels[i0, j0]:
                continue
            n += 1
            labels[i0, j0] = n
            head = 0
            tail = 1
            queue[0] = i0 * ny + j0
            while head < tail:
                c = queue[head]
                head += 1
                i = c // ny
                j = c % ny
                for k in range(nn):
                    a = i + di[k]
                    b = j + dj[k]
                    if a < 0 or b < 0 or a >= nx or b >= ny or labels[a, b] or not mask[a, b]:
                        continue
                    labels[a, b] = n
                    queue[tail] = a * ny + b
                    tail += 1
    return labels, n


def distance_transform(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (in cells) from every cell to the nearest True cell (inf if there is none).

    Exact two-pass algorithm (Felzenszwalb & Huttenlocher, lower envelope of parabolas).
    """
    return _edt(np.ascontiguousarray(mask, dtype=np.bool_))


@jit
def _edt_1d(f, out, v, z):
    """Squared distance transform of a 1D sampled function f (inf = no site)."""
    n = f.shape[0]
    k = -1
    for q in range(n):
        if f[q] == np.inf:
            continue
        s = 0.0
        while k >= 0:
            p = v[k]
            s = ((f[q] + q * q) - (f[p] + p * p)) / (2.0 * q - 2.0 * p)
            if s <= z[k]:
                k -= 1
            else:
                break
        if k < 0:
            k = 0
            v[0] = q
            z[0] = -np.inf
            z[1] = np.inf
        else:
            k += 1
            v[k] = q
            z[k] = s
            z[k + 1] = np.inf
    if k < 0:
        for q in range(n):
            out[q] = np.inf
        return
    k = 0
    for q in range(n):
        while z[k + 1] < q:
            k += 1
        p = v[k]
        out[q] = (q - p) * (q - p) + f[p]


@jit
def _edt(mask):
    nx, ny = mask.shape
    d2 = np.empty((nx, ny))
    for i in range(nx):
        for j in range(ny):
            d2[i, j] = 0.0 if mask[i, j] else np.inf
    m = max(nx, ny)
    f = np.empty(m)
    out = np.empty(m)
    v = np.empty(m, np.int64)
    z = np.empty(m + 1)
    for i in range(nx):
        for j in range(ny):
            f[j] = d2[i, j]
        _edt_1d(f[:ny], out[:ny], v, z)
        for j in range(ny):
            d2[i, j] = out[j]
    for j in range(ny):
        for i in range(nx):
            f[i] = d2[i, j]
        _edt_1d(f[:nx], out[:nx], v, z)
        for i in range(nx):
            d2[i, j] = out[i]
    return np.sqrt(d2)


def fill_nearest(grid: np.ndarray, max_radius: int) -> np.ndarray:
    """Fill empty (NaN) cells with the mean of the non-empty cells at the smallest ring distance
    (Chebyshev rings up to *max_radius*); cells farther than that stay NaN."""
    return _fill_nearest(np.ascontiguousarray(grid, dtype=np.float64), int(max_radius))


@jit_parallel
def _fill_nearest(g, R):
    nx, ny = g.shape
    out = g.copy()
    for i in prange(nx):
        for j in range(ny):
            if g[i, j] == g[i, j]:
                continue
            for r in range(1, R + 1):
                s = 0.0
                m = 0
                for a in range(i - r, i + r + 1):
                    if a < 0 or a >= nx:
                        continue
                    for b in range(j - r, j + r + 1):
                        if b < 0 or b >= ny:
                            continue
                        if max(abs(a - i), abs(b - j)) != r:
                            continue
                        v = g[a, b]
                        if v == v:
                            s += v
                            m += 1
                if m:
                    out[i, j] = s / m
                    break
    return out


def nearest_fill(grid: np.ndarray, max_dist: float = np.inf) -> np.ndarray:
    """Fill empty (NaN) cells with the value of the nearest non-empty cell (chamfer 3-4 distance,
    two raster passes); cells farther than *max_dist* cells stay NaN."""
    return _nearest_fill(np.ascontiguousarray(grid, dtype=np.float64), float(max_dist))


@jit
def _nearest_fill(g, max_dist):
    nx, ny = g.shape
    d = np.full((nx, ny), np.inf)
    src = np.full((nx, ny), -1, np.int64)
    for i in range(nx):
        for j in range(ny):
            if g[i, j] == g[i, j]:
                d[i, j] = 0.0
                src[i, j] = i * ny + j
    # forward pass: neighbours above and to the left
    for i in range(nx):
        for j in range(ny):
            for di, dj, w in ((-1, -1, 4.0), (-1, 0, 3.0), (-1, 1, 4.0), (0, -1, 3.0)):
                a = i + di
                b = j + dj
                if a < 0 or b < 0 or b >= ny:
                    continue
                if d[a, b] + w < d[i, j]:
                    d[i, j] = d[a, b] + w
                    src[i, j] = src[a, b]
    for i in range(nx - 1, -1, -1):
        for j in range(ny - 1, -1, -1):
            for di, dj, w in ((1, 1, 4.0), (1, 0, 3.0), (1, -1, 4.0), (0, 1, 3.0)):
                a = i + di
                b = j + dj
                if a >= nx or b < 0 or b >= ny:
                    continue
                if d[a, b] + w < d[i, j]:
                    d[i, j] = d[a, b] + w
                    src[i, j] = src[a, b]
    out = np.full((nx, ny), np.nan)
    for i in range(nx):
        for j in range(ny):
            if src[i, j] >= 0 and d[i, j] <= 3.0 * max_dist:
                out[i, j] = g[src[i, j] // ny, src[i, j] % ny]
    return out


# --------------------------------------------------------------------------
# height steps
# --------------------------------------------------------------------------
def curb_steps(z: np.ndarray, spread: np.ndarray, hmin: float, hmax: float, flat: float, run: int,
               max_spread: float):
    """Cells on the low side of a height step between two flat, smooth levels (curb faces).

    A cell c is a face cell when, along one of eight directions u, the cells c,
    c-u, ... (``run`` cells) are flat, smooth and low, and ``run`` cells beyond
    are between *hmin* and *hmax* higher on average and all clearly above the
    low level, starting at c+u or, when the face itself lies in c+u, at c+2u.
    At most one cell of a run may be empty. Smooth: at most one cell rough
    (*spread*, e.g. the gap between a cell's two lowest points, above
    *max_spread*: grass is rough, asphalt and stone are not); the upper side
    may be rough (a grass island behind its curb), but then it need not be
    flat, otherwise it must.

    Returns ``(low, high, face, direction, gap)``: mean low and high level,
    the face raster, the direction index (0..7 of DIRECTIONS) pointing up the
    step, and 0/1 for a face at the edge of c / inside c+u.
    """
    if run < 2:
        raise ValueError(f"run must be at least 2 cells, got {run}")
    return _curb_steps(np.ascontiguousarray(z, dtype=np.float64), np.ascontiguousarray(spread, dtype=np.float64),
                       float(hmin), float(hmax), float(flat), int(run), float(max_spread))


#: The eight grid directions of :func:`curb_steps` as (di, dj).
DIRECTIONS = np.array([[1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=np.int64)


@jit
def _run_stats(z, spread, i, j, di, dj, k0, k1, max_spread):
    """Mean, min, max, valid count and rough count of z at c + k*u for k in [k0, k1)."""
    nx, ny = z.shape
    s = 0.0
    lo = np.inf
    hi = -np.inf
    n = 0
    rough = 0
    for k in range(k0, k1):
        a = i + k * di
        b = j + k * dj
        if a < 0 or b < 0 or a >= nx or b >= ny:
            return 0.0, 0.0, 0.0, -1000, 0
        v = z[a, b]
        if v == v:
            s += v
            n += 1
            lo = min(lo, v)
            hi = max(hi, v)
            sp = spread[a, b]
            if sp == sp and sp > max_spread:
                rough += 1
    return (s / n if n else 0.0), lo, hi, n, rough


@jit_parallel
def _curb_steps(z, spread, hmin, hmax, flat, run, max_spread):
    nx, ny = z.shape
    low = np.full((nx, ny), np.nan)
    high = np.full((nx, ny), np.nan)
    face = np.zeros((nx, ny), np.bool_)
    direction = np.full((nx, ny), -1, np.int64)
    gapr = np.zeros((nx, ny), np.int64)
    dis = np.array([1, -1, 0, 0, 1, 1, -1, -1])
    djs = np.array([0, 0, 1, -1, 1, -1, 1, -1])
    for i in prange(nx):
        for j in range(ny):
            if z[i, j] != z[i, j]:
                continue
            for d in range(8):
                di = dis[d]
                dj = djs[d]
                lm, llo, lhi, ln, lr = _run_stats(z, spread, i, j, -di, -dj, 0, run, max_spread)
                if ln < run - 1 or lhi - llo > flat or lr > 1:
                    continue
                found = False
                for gap in range(2):
                    hm, hlo, hhi, hn, hr = _run_stats(z, spread, i, j, di, dj, 1 + gap, run + 1 + gap, max_spread)
                    if hn < run - 1:
                        continue
                    # the upper side may be rough (grass on an island or verge) but all of it is above the step
                    step = hm - lm
                    if step < hmin or step > hmax or hlo - lm < 0.7 * hmin:
                        continue
                    if hr <= 1 and hhi - hlo > flat:
                        continue
                    a = i + di
                    b = j + dj
                    v1 = z[a, b]
                    if gap == 0:
                        if v1 != v1 or v1 - lm < 0.5 * step:
                            continue
                    elif v1 == v1 and v1 - lm < 0.7 * hmin:
                        continue  # c+u is still at the low level: the face is c+u's, not c's
                    face[i, j] = True
                    low[i, j] = lm
                    high[i, j] = hm
                    direction[i, j] = d
                    gapr[i, j] = gap
                    found = True
                    break
                if found:
                    break
    return low, high, face, direction, gapr


# --------------------------------------------------------------------------
# voxels
# --------------------------------------------------------------------------
def voxel_neighbour_counts(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray) -> np.ndarray:
    """For each point, the number of points in its 3x3x3 voxel neighbourhood (itself included).

    Voxel coordinates are int64 arrays, each spanning fewer than 2**21 - 2
    voxels (they are shifted to the packed key's range here); counting uses an
    open-addressing hash table, then one neighbourhood sum per occupied voxel,
    so the cost is O(points + 27 * occupied voxels).
    """
    out = []
    for name, a in (("ix", ix), ("iy", iy), ("iz", iz)):
        a = np.asarray(a, dtype=np.int64)
        if len(a):
            lo, hi = int(a.min()), int(a.max())
            if hi - lo > (1 << 21) - 3:
                raise ValueError(f"{name} spans {hi - lo + 1} voxels; at most {(1 << 21) - 2} fit the packed key "
                                 "(use larger voxels or split the points)")
            a = a - (lo + (1 << 20) - 1)
        out.append(np.ascontiguousarray(a))
    return _voxel_counts(*out)


def voxel_coords(xyz: np.ndarray, rows: np.ndarray, voxel: float) -> np.ndarray:
    """``floor(xyz[rows] / voxel)`` as int64 (len(rows), 3), shifted so each column's minimum is 0: voxel
    coordinates for :func:`voxel_neighbour_counts`, without the float copy of the selected points."""
    xyz = np.asarray(xyz, dtype=np.float64)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"xyz must be (n, 3), got {xyz.shape}")
    if not voxel > 0:
        raise ValueError(f"voxel must be positive, got {voxel}")
    if len(rows) and (rows.min() < 0 or rows.max() >= len(xyz)):
        raise ValueError("rows outside xyz")
    return _voxel_coords(xyz, rows, float(voxel))


@jit_parallel
def _voxel_coords(xyz, rows, voxel):
    n = rows.shape[0]
    out = np.empty((n, 3), np.int64)
    for i in prange(n):
        for j in range(3):
            out[i, j] = np.int64(np.floor(xyz[rows[i], j] / voxel))
    if n:
        for j in range(3):
            lo = out[0, j]
            for i in range(1, n):
                lo = min(lo, out[i, j])
            for i in prange(n):
                out[i, j] -= lo
    return out


@jit
def _vkey(a, b, c):
    return ((a + 1048576) << 42) | ((b + 1048576) << 21) | (c + 1048576)


@jit
def _hslot(key, mask):
    # the splitmix64 finaliser: every bit of the packed key reaches the low bits of the slot (a plain
    # multiplicative hash ignores the high fields, so voxels differing only in x would collide)
    h = np.uint64(key)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return np.int64(h & np.uint64(mask))


@jit
def _voxel_counts(ix, iy, iz):
    n = ix.shape[0]
    key = np.empty(n, np.int64)
    for i in range(n):
        key[i] = _vkey(ix[i], iy[i], iz[i])
    keys, slot_of = _hash_table(key)
    mask = keys.shape[0] - 1
    counts = np.zeros(keys.shape[0], np.int64)
    for i in range(n):
        counts[slot_of[i]] += 1
    nb = np.zeros(keys.shape[0], np.int64)
    for s in range(keys.shape[0]):
        k = keys[s]
        if k == -1:
            continue
        c = k & 2097151
        b = (k >> 21) & 2097151
        a = k >> 42
        tot = 0
        for da in range(-1, 2):
            for db in range(-1, 2):
                for dc in range(-1, 2):
                    t = _hash_find(keys, mask, ((a + da) << 42) | ((b + db) << 21) | (c + dc))
                    if t >= 0:
                        tot += counts[t]
        nb[s] = tot
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = nb[slot_of[i]]
    return out


@jit
def _hash_find(keys, mask, k):
    """Slot of key *k* in an open-addressing table made by :func:`_hash_table`, -1 if absent."""
    t = _hslot(k, mask)
    while keys[t] != -1:
        if keys[t] == k:
            return t
        t = (t + 1) & mask
    return -1


@jit
def _hash_table(key):
    """Open-addressing table (keys >= 0, -1 empty) of the distinct *key* values, grown as it fills (so its size
    follows the occupied voxels, not the points): ``(keys, slot of each point)``.

    Points come in scan order, so a point's key is mostly that of one of the two points before it (two
    scanners interleave): those are remembered and not hashed again. When the table grows, the earlier
    points' slots are moved with it (old slot -> new slot), not looked up again.
    """
    n = key.shape[0]
    size = 1024
    keys = np.full(size, -1, np.int64)
    used = 0
    slot_of = np.empty(n, np.int64)
    k1 = k2 = -1  # the last two distinct keys seen and their slots
    s1 = s2 = -1
    for i in range(n):
        if 2 * (used + 1) > size:
            size *= 2
            grown = np.full(size, -1, np.int64)
            moved = np.empty(keys.shape[0], np.int64)
            for s in range(keys.shape[0]):
                if keys[s] != -1:
                    t = _hslot(keys[s], size - 1)
                    while grown[t] != -1:
                        t = (t + 1) & (size - 1)
                    grown[t] = keys[s]
                    moved[s] = t
            keys = grown
            for j in range(i):
                slot_of[j] = moved[slot_of[j]]
            k1 = k2 = -1
        k = key[i]
        if k == k1:
            slot_of[i] = s1
            continue
        if k == k2:
            slot_of[i] = s2
            k1, k2, s1, s2 = k2, k1, s2, s1
            continue
        mask = keys.shape[0] - 1
        s = _hslot(k, mask)
        while keys[s] != -1 and keys[s] != k:
            s = (s + 1) & mask
        if keys[s] == -1:
            keys[s] = k
            used += 1
        slot_of[i] = s
        k2, s2 = k1, s1
        k1, s1 = k, s
    return keys, slot_of


def gap_outliers(x: np.ndarray, y: np.ndarray, z: np.ndarray, group: np.ndarray | None, min_gap: float,
                 ratio: float, radius: float) -> np.ndarray:
    """Points that stand apart from the sampling of the surface next to them.

    A point is flagged when its nearest other point of the same *group* (a
    scanner channel: sampling patterns differ between scanners) lies farther
    than *min_gap* and more than *ratio* times that neighbour's own spacing
    (the distance to *its* nearest point, the first one not counted), and no
    farther than *radius*. A spurious return a few decimetres above the road
    or behind a facade is such a point; a point on a sparse surface is not,
    because its neighbours are as sparse as it is. Points without any
    neighbour within *radius* are left alone (an isolation test finds them).

    The points are hashed into voxels of *min_gap*; a point with another
    point within *min_gap* (mostly found in its own voxel) is done at once,
    the few others are searched further, shell by shell of voxels, so the
    cost is O(n) plus a few shells for the few candidates. Voxel indices are
    clamped to 2**20 per axis (about 200 km at 0.2 m; 2**16 for z): points
    beyond share the edge voxels. *group* holds ids 0..255
    (None: one group).
    """
    x = _column(x)
    y = _column(y)
    z = _column(z)
    n = x.shape[0]
    if y.shape[0] != n or z.shape[0] != n:
        raise ValueError(f"x, y and z differ in length: {n}, {y.shape[0]}, {z.shape[0]}")
    if not (min_gap > 0 and ratio > 0 and radius >= min_gap):
        raise ValueError(f"need min_gap > 0, ratio > 0 and radius >= min_gap, got {min_gap}, {ratio}, {radius}")
    if group is None:
        g = np.zeros(n, np.int64)
    else:
        g = np.asarray(group)
        if g.dtype != np.uint8:  # (uint8 channels, as LAS stores them, are used as they are)
            g = g.astype(np.int64)
        if g.shape != (n,):
            raise ValueError(f"group has shape {g.shape}, expected ({n},)")
        if n and g.dtype != np.uint8 and (g.min() < 0 or g.max() > 255):
            raise ValueError(f"group ids must lie in 0..255, got {g.min()}..{g.max()}")
    if n == 0:
        return np.zeros(0, np.bool_)
    x0, y0, _, _ = xy_bounds(x, y)
    z0 = xy_bounds(z, z)[0]
    return _gap_outliers(x, y, z, g, x0, y0, z0, float(min_gap), float(ratio), float(radius))


_GAP_AXIS = (1 << 20) - 1  # voxel index range per axis of gap_outliers' packed keys (20 + 20 + 16 + 8 bits)
_GAP_Z = (1 << 16) - 1


@jit
def _gap_key(a, b, c, g):
    return (a << 44) | (b << 24) | (c << 8) | g


@jit
def _gap_unkey(k):
    return k >> 44, (k >> 24) & _GAP_AXIS, (k >> 8) & _GAP_Z, k & 255


@jit
def _gap_lone(i, x, y, z, key, slot, g, keys, mask, start, order, cell):
    """Whether point *i* has no other point of its group within *cell* (own voxel first: dense points stop
    at once)."""
    c2 = cell * cell
    for q in range(start[slot], start[slot + 1]):
        j = order[q]
        if j != i and (x[j] - x[i]) ** 2 + (y[j] - y[i]) ** 2 + (z[j] - z[i]) ** 2 <= c2:
            return False
    a, b, c, _ = _gap_unkey(key)
    for da in range(-1, 2):
        for db in range(-1, 2):
            for dc in range(-1, 2):
                if da == 0 and db == 0 and dc == 0:
                    continue
                aa, bb, cc = a + da, b + db, c + dc
                if aa < 0 or aa > _GAP_AXIS or bb < 0 or bb > _GAP_AXIS or cc < 0 or cc > _GAP_Z:
                    continue
                t = _hash_find(keys, mask, _gap_key(aa, bb, cc, g))
                if t < 0:
                    continue
                for q in range(start[t], start[t + 1]):
                    j = order[q]
                    if (x[j] - x[i]) ** 2 + (y[j] - y[i]) ** 2 + (z[j] - z[i]) ** 2 <= c2:
                        return False
    return True


@jit
def _gap_nearest(i, skip, x, y, z, key, keys, mask, start, order, cell, radius):
    """Nearest point to point *i* (voxel *key*) of its group other than *i* and *skip*:
    ``(distance, index)``, ``(inf, -1)`` if none lies within *radius*; searched shell by shell."""
    a, b, c, g = _gap_unkey(key)
    best = np.inf
    bj = -1
    kmax = int(math.ceil(radius / cell))
    for k in range(kmax + 1):
        for da in range(-k, k + 1):
            aa = a + da
            if aa < 0 or aa > _GAP_AXIS:
                continue
            for db in range(-k, k + 1):
                bb = b + db
                if bb < 0 or bb > _GAP_AXIS:
                    continue
                edge = abs(da) == k or abs(db) == k
                for dc in range(-k, k + 1):
                    if not edge and abs(dc) != k:
                        continue
                    cc = c + dc
                    if cc < 0 or cc > _GAP_Z:
                        continue
                    t = _hash_find(keys, mask, _gap_key(aa, bb, cc, g))
                    if t < 0:
                        continue
                    for q in range(start[t], start[t + 1]):
                        j = order[q]
                        if j == i or j == skip:
                            continue
                        d = math.sqrt((x[j] - x[i]) ** 2 + (y[j] - y[i]) ** 2 + (z[j] - z[i]) ** 2)
                        if d < best:
                            best = d
                            bj = j
        # points outside shell k are farther than k cells
        if best <= k * cell:
            break
    if best > radius:
        return np.inf, -1
    return best, bj


@jit_parallel
def _gap_outliers(x, y, z, g, x0, y0, z0, cell, ratio, radius):
    n = x.shape[0]
    key = np.empty(n, np.int64)
    for i in prange(n):
        # NaN coordinates give voxel 0; a NaN point is never anyone's neighbour (its distances compare false)
        key[i] = _gap_key(_clip_cell(x[i], x0, cell, _GAP_AXIS), _clip_cell(y[i], y0, cell, _GAP_AXIS),
                          _clip_cell(z[i], z0, cell, _GAP_Z), g[i])
    keys, slot_of = _hash_table(key)
    size = keys.shape[0]
    mask = size - 1
    # CSR: the points of slot s are order[start[s]:start[s + 1]]
    start = np.zeros(size + 1, np.int64)
    for i in range(n):
        start[slot_of[i] + 1] += 1
    for s in range(size):
        start[s + 1] += start[s]
    fill = start[:-1].copy()
    order = np.empty(n, np.int64)
    for i in range(n):
        s = slot_of[i]
        order[fill[s]] = i
        fill[s] += 1
    # candidates: no other point of the group within one cell
    alone = np.zeros(n, np.bool_)
    for i in prange(n):
        alone[i] = _gap_lone(i, x, y, z, key[i], slot_of[i], g[i], keys, mask, start, order, cell)
    cand = np.flatnonzero(alone)
    out = np.zeros(n, np.bool_)
    for q in prange(cand.shape[0]):
        i = cand[q]
        d1, j = _gap_nearest(i, -1, x, y, z, key[i], keys, mask, start, order, cell, radius)
        if j < 0 or d1 <= cell:
            continue
        d2, _ = _gap_nearest(j, i, x, y, z, key[j], keys, mask, start, order, cell, radius)
        if d1 > ratio * d2:
            out[i] = True
    return out


# --------------------------------------------------------------------------
# grouped statistics
# --------------------------------------------------------------------------
def binned_quantiles(keys: np.ndarray, values: np.ndarray, nkeys: int, lo: float, hi: float, nbins: int,
                     quantiles) -> tuple[np.ndarray, np.ndarray]:
    """Approximate quantiles of *values* per integer key, from histograms.

    Values are binned into *nbins* equal bins over [lo, hi) (values outside are
    clipped into the end bins); a quantile is the centre of the bin where the
    cumulative count passes it. Returns ``(q, counts)`` with ``q`` of shape
    (nkeys, len(quantiles)) (NaN for empty keys) and the sample count per key.
    O(n + nkeys * nbins): no sorting.
    """
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    values = np.ascontiguousarray(values, dtype=np.float64)
    qs = np.ascontiguousarray(quantiles, dtype=np.float64)
    if keys.shape != values.shape:
        raise ValueError("keys and values differ in shape")
    if not hi > lo or nbins < 1:
        raise ValueError("need hi > lo and nbins >= 1")
    hist = _binned_histogram(keys, values, int(nkeys), float(lo), float(hi), int(nbins))
    return _histogram_quantiles(hist, float(lo), float(hi), qs), hist.sum(axis=1)


def binned_histogram(keys: np.ndarray, values: np.ndarray, nkeys: int, lo: float, hi: float, nbins: int) -> np.ndarray:
    """Histograms (nkeys, nbins) of *values* per integer key, as in :func:`binned_quantiles`.

    Histograms add up: blocks of a survey can be counted separately and summed,
    then :func:`histogram_quantiles` gives the quantiles of the whole.
    """
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    values = np.ascontiguousarray(values, dtype=np.float64)
    if keys.shape != values.shape:
        raise ValueError("keys and values differ in shape")
    if not hi > lo or nbins < 1:
        raise ValueError("need hi > lo and nbins >= 1")
    return _binned_histogram(keys, values, int(nkeys), float(lo), float(hi), int(nbins))


def grouped_histograms(keys: np.ndarray, codes: np.ndarray, lut: np.ndarray, slots: np.ndarray,
                       select: np.ndarray, nslots: int, nkeys: int, nbins: int):
    """Histograms (nslots, nkeys, nbins) of selected points by group slot and key, the bin of a point
    being ``lut[codes[i]]``; and the number of points counted per slot.

    One pass for every group (instead of one selection and one :func:`binned_histogram`
    per group): *codes* are small non-negative integers, e.g. uint16 intensities,
    and *lut* maps each to its bin (e.g. the bin of its logarithm), so nothing is
    computed per point. Points with a slot or key outside the table, or a bin
    below 0, are not counted.
    """
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    slots = np.ascontiguousarray(slots, dtype=np.int64)
    select = np.ascontiguousarray(select, dtype=np.bool_)
    lut = np.ascontiguousarray(lut, dtype=np.int64)
    codes = np.asarray(codes)
    if codes.dtype.kind != "u" or codes.dtype.itemsize > 2:
        raise ValueError(f"codes must be uint8 or uint16, got {codes.dtype}")
    if not (keys.shape == codes.shape == slots.shape == select.shape):
        raise ValueError("keys, codes, slots and select must have one shape")
    if len(lut) < 1 << (8 * codes.dtype.itemsize):
        raise ValueError(f"lut has {len(lut)} entries; {codes.dtype} needs {1 << (8 * codes.dtype.itemsize)}")
    if len(lut) and lut.max() >= nbins:
        raise ValueError("lut holds bins beyond nbins")
    return _grouped_histograms(keys, np.ascontiguousarray(codes), lut, slots, select, int(nslots), int(nkeys),
                               int(nbins))


@jit
def _grouped_histograms(keys, codes, lut, slots, select, nslots, nkeys, nbins):
    hist = np.zeros((nslots, nkeys, nbins), np.int64)
    counted = np.zeros(nslots, np.int64)
    for i in range(keys.shape[0]):
        if not select[i]:
            continue
        s = slots[i]
        k = keys[i]
        b = lut[codes[i]]
        if s < 0 or s >= nslots or k < 0 or k >= nkeys or b < 0:
            continue
        hist[s, k, b] += 1
        counted[s] += 1
    return hist, counted


def grouped_cell_means(values: np.ndarray, cell: np.ndarray, slots: np.ndarray, nslots: int,
                       ncell: int) -> np.ndarray:
    """Mean of *values* per group slot and cell, (nslots + 1, ncell), NaN where a cell has none; the last
    row is over all slots. One pass; each sum is accumulated in point order, exactly as
    ``np.bincount(cell[m], weights=values[m])`` of the points *m* of a slot would. Points with a cell or
    slot out of range (e.g. slot -1: not counted) are left out."""
    values = _column(values)
    cell = np.ascontiguousarray(cell, dtype=np.int64)
    slots = np.ascontiguousarray(slots, dtype=np.int64)
    if not (values.shape == cell.shape == slots.shape):
        raise ValueError("values, cell and slots must have one shape")
    return _grouped_cell_means(values, cell, slots, int(nslots), int(ncell))


@jit
def _grouped_cell_means(values, cell, slots, nslots, ncell):
    sums = np.zeros((nslots + 1, ncell))
    counts = np.zeros((nslots + 1, ncell), np.int64)
    for i in range(values.shape[0]):
        c = cell[i]
        s = slots[i]
        if c < 0 or c >= ncell or s < 0 or s >= nslots:
            continue
        v = values[i]
        sums[s, c] += v
        counts[s, c] += 1
        sums[nslots, c] += v
        counts[nslots, c] += 1
    for s in range(nslots + 1):
        for c in range(ncell):
            sums[s, c] = sums[s, c] / counts[s, c] if counts[s, c] else np.nan
    return sums


def histogram_quantiles(hist: np.ndarray, lo: float, hi: float, quantiles) -> np.ndarray:
    """Quantiles (nkeys, len(quantiles)) from histograms over [lo, hi) (bin centres; NaN for empty rows)."""
    hist = np.ascontiguousarray(hist, dtype=np.int64)
    if hist.ndim != 2 or not hi > lo:
        raise ValueError("need a 2-D histogram and hi > lo")
    return _histogram_quantiles(hist, float(lo), float(hi), np.ascontiguousarray(quantiles, dtype=np.float64))


@jit
def _binned_histogram(keys, values, nkeys, lo, hi, nbins):
    hist = np.zeros((nkeys, nbins), np.int64)
    scale = nbins / (hi - lo)
    for i in range(keys.shape[0]):
        k = keys[i]
        if k < 0 or k >= nkeys:
            continue
        v = values[i]
        if v != v:
            continue
        f = (v - lo) * scale  # clip before converting: huge values and inf must not overflow the int
        if f < 0.0:
            b = 0
        elif f >= nbins:
            b = nbins - 1
        else:
            b = int(f)
        hist[k, b] += 1
    return hist


@jit
def _histogram_quantiles(hist, lo, hi, qs):
    nkeys, nbins = hist.shape
    out = np.full((nkeys, qs.shape[0]), np.nan)
    width = (hi - lo) / nbins
    for k in range(nkeys):
        n = 0
        for b in range(nbins):
            n += hist[k, b]
        if n == 0:
            continue
        for m in range(qs.shape[0]):
            target = qs[m] * n
            c = 0
            for b in range(nbins):
                c += hist[k, b]
                if c >= target and c > 0:
                    out[k, m] = lo + (b + 0.5) * width
                    break
    return out


def component_shapes(labels: np.ndarray, x: np.ndarray, y: np.ndarray, n_labels: int, q: float = 0.05):
    """Size of each labelled group of points along its main axis and across it.

    For the points of each label 1..n_labels: count, length (spread between the
    q and 1-q quantiles along the principal axis) and width (the same across it).
    Quantiles instead of extremes keep a stray point from widening a stroke.
    Returns ``(count, length, width)`` arrays indexed by label (index 0 unused).
    """
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    return _component_shapes(labels, _column(x), _column(y), int(n_labels), float(q))


@jit
def _component_shapes(labels, x, y, nl, q):
    start, order = _bin_points(labels, nl + 1)
    count = np.zeros(nl + 1, np.int64)
    length = np.zeros(nl + 1)
    width = np.zeros(nl + 1)
    for lab in range(1, nl + 1):
        a = start[lab]
        b = start[lab + 1]
        m = b - a
        count[lab] = m
        if m < 2:
            continue
        # relative to the group's first point: shifting integer cell coordinates by whole cells (another
        # grid origin) then gives the same sums to the last bit, and georeferenced coordinates keep their digits
        rx = x[order[a]]
        ry = y[order[a]]
        mx = 0.0
        my = 0.0
        for k in range(a, b):
            mx += x[order[k]] - rx
            my += y[order[k]] - ry
        mx /= m
        my /= m
        sxx = 0.0
        syy = 0.0
        sxy = 0.0
        for k in range(a, b):
            dx = x[order[k]] - rx - mx
            dy = y[order[k]] - ry - my
            sxx += dx * dx
            syy += dy * dy
            sxy += dx * dy
        ang = 0.5 * np.arctan2(2 * sxy, sxx - syy)
        ux = np.cos(ang)
        uy = np.sin(ang)
        u = np.empty(m)
        v = np.empty(m)
        for k in range(a, b):
            dx = x[order[k]] - rx - mx
            dy = y[order[k]] - ry - my
            u[k - a] = dx * ux + dy * uy
            v[k - a] = -dx * uy + dy * ux
        u.sort()
        v.sort()
        lo = int(q * (m - 1))
        hi = m - 1 - lo
        length[lab] = u[hi] - u[lo]
        width[lab] = v[hi] - v[lo]
    return count, length, width


def nearest_in_group(qx, qy, qg, px, py, pg, cell: float, radius: float) -> np.ndarray:
    """Distance from each query point to the nearest reference point of the same group, in 2D.

    Searches up to *radius* (metres; farther gives inf) using a grid of *cell*
    metres. Groups are small non-negative integers (e.g. the drive of a point).
    """
    qx, qy, px, py = (np.ascontiguousarray(a, dtype=np.float64) for a in (qx, qy, px, py))
    qg, pg = (np.ascontiguousarray(a, dtype=np.int64) for a in (qg, pg))
    if len(px) == 0 or len(qx) == 0:
        return np.full(len(qx), np.inf)
    x0 = min(qx.min(), px.min()) - cell
    y0 = min(qy.min(), py.min()) - cell
    nx = int((max(qx.max(), px.max()) - x0) / cell) + 2
    ny = int((max(qy.max(), py.max()) - y0) / cell) + 2
    ng = int(max(qg.max(), pg.max())) + 1
    reach = int(min(np.ceil(radius / cell), max(nx, ny)))  # an infinite radius searches the whole grid
    return _nearest_in_group(qx, qy, qg, px, py, pg, x0, y0, float(cell), nx, ny, ng, float(radius), reach)


@jit
def _nearest_in_group(qx, qy, qg, px, py, pg, x0, y0, cell, nx, ny, ng, radius, r):
    key = np.empty(px.shape[0], np.int64)
    for i in range(px.shape[0]):
        ix = int((px[i] - x0) / cell)
        iy = int((py[i] - y0) / cell)
        key[i] = (ix * ny + iy) * ng + pg[i]
    start, order = _bin_points(key, nx * ny * ng)
    out = np.full(qx.shape[0], np.inf)
    for i in range(qx.shape[0]):
        ix = int((qx[i] - x0) / cell)
        iy = int((qy[i] - y0) / cell)
        best = radius * radius
        found = False
        for a in range(max(ix - r, 0), min(ix + r + 1, nx)):
            for b in range(max(iy - r, 0), min(iy + r + 1, ny)):
                k = (a * ny + b) * ng + qg[i]
                for m in range(start[k], start[k + 1]):
                    j = order[m]
                    d = (px[j] - qx[i]) ** 2 + (py[j] - qy[i]) ** 2
                    if d <= best:
                        best = d
                        found = True
        if found:
            out[i] = np.sqrt(best)
    return out


def similar_neighbours(grid: np.ndarray, tol: float) -> np.ndarray:
    """Number of the 8 neighbours of each cell whose value is within *tol* of the cell's (NaN: none)."""
    return _similar_neighbours(np.ascontiguousarray(grid, dtype=np.float64), float(tol))


@jit_parallel
def _similar_neighbours(g, tol):
    nx, ny = g.shape
    out = np.zeros((nx, ny), np.int64)
    for i in prange(nx):
        for j in range(ny):
            v = g[i, j]
            if v != v:
                continue
            c = 0
            for a in range(max(i - 1, 0), min(i + 2, nx)):
                for b in range(max(j - 1, 0), min(j + 2, ny)):
                    if (a != i or b != j) and abs(g[a, b] - v) <= tol:
                        c += 1
            out[i, j] = c
    return out


def closest_level(x, y, z, level: np.ndarray, x0: float, y0: float, cell: float) -> np.ndarray:
    """For each point, the value of *level* among the 3x3 cells around it that is closest to its height.

    A point at a step (a curb) finds the level it belongs to even when its own
    cell holds the other one. NaN where the point is outside the raster or all
    nine cells are empty.
    """
    x, y, z = _column(x), _column(y), _column(z)
    return _closest_level(x, y, z, np.ascontiguousarray(level, dtype=np.float64), float(x0), float(y0), float(cell))


@jit_parallel
def _closest_level(x, y, z, level, x0, y0, cell):
    nx, ny = level.shape
    out = np.full(x.shape[0], np.nan)
    inv = 1.0 / cell
    for k in prange(x.shape[0]):
        fi = _cell_float(x[k], x0, inv)
        fj = _cell_float(y[k], y0, inv)
        if not (fi >= 0 and fj >= 0 and fi < nx and fj < ny):
            continue
        i = int(fi)
        j = int(fj)
        best = np.inf
        val = np.nan
        for a in range(max(i - 1, 0), min(i + 2, nx)):
            for b in range(max(j - 1, 0), min(j + 2, ny)):
                v = level[a, b]
                if v == v and abs(z[k] - v) < best:
                    best = abs(z[k] - v)
                    val = v
        out[k] = val
    return out

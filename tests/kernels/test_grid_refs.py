"""Grid kernels against slow pure-Python references written from their docstrings.

Each reference below is a plain loop over a small input, derived from the contract in
the kernel's docstring (where the docstring leaves a constant or a tie open, the comment
says what was taken from the code). Random inputs use fixed seeds; edge cases cover
empty input, a single point, everything in one cell/group, and huge (UTM-like)
coordinates.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hdmap.kernels import grid as G

SEEDS = range(8)
UTM = (690_123.0, 5_340_321.0)  # EPSG:25832-like easting / northing


def random_raster(rng, nx, ny, empty=0.3, scale=1.0):
    g = rng.normal(0, scale, (nx, ny))
    g[rng.random((nx, ny)) < empty] = np.nan
    return g


def window(nx, ny, i, j, r):
    """Cells of the (2r+1)^2 window around (i, j) that lie inside an nx x ny raster."""
    for a in range(i - r, i + r + 1):
        for b in range(j - r, j + r + 1):
            if 0 <= a < nx and 0 <= b < ny:
                yield a, b


# =============================================================================
# curb_steps
# =============================================================================
HMIN, HMAX, FLAT, MAX_SPREAD = 0.05, 0.30, 0.03, 0.05


def ref_curb_options(z, spread, hmin, hmax, flat, run, max_spread, strict_gap1=True):
    """Every (direction, gap, low mean, high mean) that makes each cell a face cell.

    Contract (docstring of curb_steps): c is non-empty; the low run c, c-u, ...
    (*run* cells) lies inside the raster, has at most one empty cell, at most one
    rough cell and is flat (max - min <= flat); the high run of *run* cells starts
    at c+u (gap 0) or c+2u (gap 1), lies inside the raster, has at most one empty
    cell, its mean is hmin..hmax above the low mean, every cell is "clearly above"
    the low mean, and it is flat unless more than one of its cells is rough.
    Constants taken from the code: "clearly above" = at least 0.7 * hmin; for gap 0
    (face at the edge of c) the cell c+u must hold data and be at least half the
    step up, otherwise the face lies inside c+u (gap 1).

    The code does not look at c+u for gap 1 at all, so a cell whose c+u is still on
    the low level (the face is at the far edge of c+u, c+u is the face cell) is a face
    cell too. With *strict_gap1* the reference follows the docstring ("when the face
    itself lies in c+u") and requires c+u to be empty or clearly above the low level;
    see test_curb_steps_gap1_needs_face_in_next_cell.
    """
    nx, ny = z.shape

    def run_cells(i, j, di, dj, ks):
        vals, rough = [], 0
        for k in ks:
            a, b = i + k * di, j + k * dj
            if not (0 <= a < nx and 0 <= b < ny):
                return None
            if not math.isnan(z[a, b]):
                vals.append(float(z[a, b]))
                if spread[a, b] > max_spread:  # NaN spread: not rough
                    rough += 1
        return vals, rough

    options = {}
    for i in range(nx):
        for j in range(ny):
            if math.isnan(z[i, j]):
                continue
            for d, (di, dj) in enumerate(G.DIRECTIONS.tolist()):
                low = run_cells(i, j, -di, -dj, range(run))
                if low is None:
                    continue
                lv, lr = low
                if len(lv) < run - 1 or lr > 1 or max(lv) - min(lv) > flat:
                    continue
                lm = sum(lv) / len(lv)
                for gap in (0, 1):
                    high = run_cells(i, j, di, dj, range(1 + gap, run + 1 + gap))
                    if high is None:
                        continue
                    hv, hr = high
                    if len(hv) < run - 1:
                        continue
                    hm = sum(hv) / len(hv)
                    step = hm - lm
                    if not hmin <= step <= hmax:
                        continue
                    if min(hv) - lm < 0.7 * hmin:
                        continue
                    if hr <= 1 and max(hv) - min(hv) > flat:
                        continue
                    if gap == 0:
                        first = z[i + di, j + dj]
                        if math.isnan(first) or first - lm < 0.5 * step:
                            continue
                    elif strict_gap1:
                        nxt = z[i + di, j + dj]
                        if not math.isnan(nxt) and nxt - lm < 0.7 * hmin:
                            continue
                    options.setdefault((i, j), []).append((d, gap, lm, hm))
    return options


def check_curb(z, spread, run, hmin=HMIN, hmax=HMAX, flat=FLAT, max_spread=MAX_SPREAD, strict_gap1=True):
    low, high, face, direction, gap = G.curb_steps(z, spread, hmin, hmax, flat, run, max_spread)
    options = ref_curb_options(z, spread, hmin, hmax, flat, run, max_spread, strict_gap1)
    ref_face = np.zeros(z.shape, bool)
    for i, j in options:
        ref_face[i, j] = True
    np.testing.assert_array_equal(face, ref_face)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            if not face[i, j]:
                assert np.isnan(low[i, j]) and np.isnan(high[i, j])
                assert direction[i, j] == -1 and gap[i, j] == 0
                continue
            # which of several valid directions is reported is not documented: any valid one will do
            match = [o for o in options[(i, j)] if o[0] == direction[i, j] and o[1] == gap[i, j]]
            assert match, f"cell {(i, j)}: (direction, gap)={(direction[i, j], gap[i, j])} not in {options[(i, j)]}"
            np.testing.assert_allclose([low[i, j], high[i, j]], match[0][2:], rtol=0, atol=1e-12)
    return low, high, face, direction, gap


def curb_scene(rng, nx, ny, base=0.0):
    """A straight curb at a random angle: a road, a raised side, cells on the face, holes and rough cells."""
    i, j = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    ang = rng.uniform(0, 2 * np.pi)
    s = (i - nx / 2) * np.cos(ang) + (j - ny / 2) * np.sin(ang) - rng.uniform(-2, 2)
    step = rng.uniform(0.03, 0.35)
    z = base + np.where(s > 0, step, 0.0) + rng.normal(0, 0.006, (nx, ny))
    on_face = (np.abs(s) < 0.7) & (rng.random((nx, ny)) < 0.5)
    z[on_face] = base + step * rng.uniform(0.2, 0.8, on_face.sum())
    z[rng.random((nx, ny)) < 0.08] = np.nan
    spread = rng.uniform(0, 0.04, (nx, ny))
    spread[rng.random((nx, ny)) < 0.12] = 0.1  # grass
    spread[(s > 2) & (rng.random((nx, ny)) < 0.4)] = 0.1  # a grass island behind the curb
    spread[rng.random((nx, ny)) < 0.05] = np.nan
    return z, spread


def terraced_scene(rng, nx, ny):
    """Random terraces (many steps in all directions) with noise, holes and rough cells."""
    z = rng.choice([0.0, 0.12, 0.24, 0.5], (nx // 3 + 1, ny // 3 + 1))
    z = np.kron(z, np.ones((3, 3)))[:nx, :ny] + rng.normal(0, 0.008, (nx, ny))
    z[rng.random((nx, ny)) < 0.1] = np.nan
    spread = rng.uniform(0, 0.07, (nx, ny))
    return z, spread


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("run", [2, 3, 4])
def test_curb_steps_random(seed, run):
    rng = np.random.default_rng(seed)
    for scene in (curb_scene, terraced_scene):
        nx, ny = rng.integers(6, 16, 2)
        z, spread = scene(rng, nx, ny)
        check_curb(z, spread, run)
    # heights above sea level (e.g. 480 m NN) must not change anything but the levels
    z, spread = curb_scene(np.random.default_rng(seed + 100), 12, 12, base=480.0)
    check_curb(z, spread, run)


def test_curb_steps_random_finds_faces():
    """The random scenes above are not all trivially face-free."""
    total = 0
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        z, spread = curb_scene(rng, 14, 14)
        total += G.curb_steps(z, spread, HMIN, HMAX, FLAT, 3, MAX_SPREAD)[2].sum()
    assert total >= 10


def test_curb_steps_clean_curb():
    """Road at 0 (i < 5), curb top at 0.12 (i >= 5): the road cells at i = 4 are face cells, face at their edge."""
    z = np.where(np.arange(10)[:, None] >= 5, 0.12, 0.0) * np.ones((10, 6))
    spread = np.zeros_like(z)
    low, high, face, direction, gap = check_curb(z, spread, 3)
    assert face[4].all() and (gap[4] == 0).all() and not face[5:].any() and not face[:3].any()
    assert (G.DIRECTIONS[direction[4]][:, 0] == 1).all()  # pointing up the step (+i)
    np.testing.assert_array_equal(low[4], 0.0)
    np.testing.assert_array_equal(high[4], 0.12)


def test_curb_steps_gap1_needs_face_in_next_cell():
    """Regression: the road cell two cells before a clean step (its c+u is the gap-0 face cell) is no face cell."""
    z = np.where(np.arange(10)[:, None] >= 5, 0.12, 0.0) * np.ones((10, 3))
    _, _, face, _, _ = check_curb(z, np.zeros_like(z), 3, strict_gap1=True)
    assert not face[3].any()  # kernel: face[3] all True with gap 1


def test_curb_steps_face_inside_next_cell():
    """An intermediate cell between road and top: gap 1 (the face lies in c+u)."""
    z = np.where(np.arange(10)[:, None] >= 5, 0.12, 0.0) * np.ones((10, 4))
    z[5] = 0.05  # the face itself
    spread = np.zeros_like(z)
    _, _, face, direction, gap = check_curb(z, spread, 3)
    assert face[4].all() and (gap[4] == 1).all() and (direction[4] == 0).all()


def test_curb_steps_rough_top_and_rough_road():
    z = np.where(np.arange(10)[:, None] >= 5, 0.12, 0.0) * np.ones((10, 4))
    z[5:, 1] += [0.0, 0.06, -0.02, 0.05, 0.0]  # uneven grass top in column 1 ...
    spread = np.zeros_like(z)
    spread[5:, :2] = 0.1  # ... rough there: need not be flat
    _, _, face, _, _ = check_curb(z, spread, 3)
    assert face[4, 1]
    spread[5:, :2] = 0.0  # smooth but uneven: not a curb top
    _, _, face, _, _ = check_curb(z, spread, 3)
    assert not face[4, 1]
    spread[:5, 0] = 0.1  # rough road (grass verge) below: no face
    _, _, face, _, _ = check_curb(z, spread, 3)
    assert not face[4, 0]


def test_curb_steps_empty_cells_in_runs():
    z = np.where(np.arange(10)[:, None] >= 5, 0.12, 0.0) * np.ones((10, 3))
    spread = np.zeros_like(z)
    z[3, 0] = np.nan  # one hole in the low run: still a face
    z[6, 1] = np.nan
    z[7, 1] = np.nan  # two holes in the high run: not (for any gap)
    _, _, face, _, _ = check_curb(z, spread, 3)
    assert face[4, 0] and not face[4, 1] and face[4, 2]
    z[4, 2] = np.nan  # an empty cell is never a face cell
    _, _, face, _, _ = check_curb(z, spread, 3)
    assert not face[4, 2]


@pytest.mark.parametrize("shape", [(0, 0), (0, 5), (1, 1), (1, 7), (7, 1)])
def test_curb_steps_tiny_rasters(shape):
    z = np.zeros(shape)
    if z.size:
        z[..., -1] = 0.1
    low, high, face, direction, gap = G.curb_steps(z, np.zeros(shape), HMIN, HMAX, FLAT, 2, MAX_SPREAD)
    for a in (low, high, face, direction, gap):
        assert a.shape == shape
    check_curb(z, np.zeros(shape), 2)


def test_curb_steps_flat_and_all_empty():
    z = np.full((8, 8), 3.0)
    assert not G.curb_steps(z, np.zeros_like(z), HMIN, HMAX, FLAT, 2, MAX_SPREAD)[2].any()
    z[:] = np.nan
    assert not G.curb_steps(z, np.zeros_like(z), HMIN, HMAX, FLAT, 2, MAX_SPREAD)[2].any()


def test_curb_steps_run_too_short():
    with pytest.raises(ValueError):
        G.curb_steps(np.zeros((4, 4)), np.zeros((4, 4)), HMIN, HMAX, FLAT, 1, MAX_SPREAD)


# =============================================================================
# nearest_fill
# =============================================================================
def chamfer34(di, dj):
    """3-4 chamfer distance of an offset (3 per straight step, 4 per diagonal one)."""
    a, b = abs(di), abs(dj)
    return 3 * max(a, b) + min(a, b)


def ref_nearest_fill(g, max_dist):
    """Per cell: None (stays NaN) or the set of values of the nearest non-empty cells (ties)."""
    nx, ny = g.shape
    sites = [(a, b) for a in range(nx) for b in range(ny) if not math.isnan(g[a, b])]
    ref = {}
    for i in range(nx):
        for j in range(ny):
            if not math.isnan(g[i, j]):
                ref[i, j] = {g[i, j]}
                continue
            if not sites:
                ref[i, j] = None
                continue
            d = [chamfer34(a - i, b - j) for a, b in sites]
            best = min(d)
            ref[i, j] = None if best / 3 > max_dist else {g[s] for s, e in zip(sites, d, strict=True) if e == best}
    return ref


def check_nearest_fill(g, max_dist):
    out = G.nearest_fill(g, max_dist) if max_dist is not None else G.nearest_fill(g)
    ref = ref_nearest_fill(g, np.inf if max_dist is None else max_dist)
    assert out.shape == g.shape
    for (i, j), vals in ref.items():
        if vals is None:
            assert np.isnan(out[i, j]), (i, j)
        else:
            assert out[i, j] in vals, ((i, j), out[i, j], vals)
    return out


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("max_dist", [None, 0.0, 1.0, 1.4, 2.5, 4.0])
def test_nearest_fill_random(seed, max_dist):
    rng = np.random.default_rng(seed)
    nx, ny = rng.integers(1, 14, 2)
    g = random_raster(rng, nx, ny, empty=rng.uniform(0.3, 0.97))
    check_nearest_fill(g, max_dist)


@pytest.mark.parametrize("shape", [(0, 0), (0, 4), (3, 0)])
def test_nearest_fill_zero_size(shape):
    assert G.nearest_fill(np.zeros(shape)).shape == shape


def test_nearest_fill_edge_cases():
    assert np.isnan(G.nearest_fill(np.full((4, 5), np.nan))).all()
    g = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(G.nearest_fill(g, 1.0), g)  # nothing empty: unchanged
    one = np.full((5, 7), np.nan)
    one[1, 5] = 2.5e6  # a single non-empty cell fills everything
    np.testing.assert_array_equal(G.nearest_fill(one), np.full((5, 7), 2.5e6))
    out = check_nearest_fill(one, 2.0)  # chamfer 3*2 + 0 = 6 <= 6: in; 3*2 + 1 = 7 > 6: out
    assert out[3, 5] == 2.5e6 and np.isnan(out[3, 4]) and out[2, 4] == 2.5e6
    np.testing.assert_array_equal(G.nearest_fill(np.array([[np.nan, 1.0, np.nan]])), [[1.0, 1.0, 1.0]])


# =============================================================================
# binned_quantiles
# =============================================================================
def ref_binned_quantiles(keys, values, nkeys, lo, hi, nbins, quantiles):
    """Per key the sorted bins of its values; quantile q = centre of the bin of the ceil(q*n)-th value
    (at least the first), i.e. where the cumulative count first reaches q*n. Keys outside 0..nkeys-1
    and NaN values are ignored (taken from the code; the docstring does not say)."""
    width = (hi - lo) / nbins
    bins = [[] for _ in range(nkeys)]
    for k, v in zip(keys.tolist(), values.tolist(), strict=True):
        if 0 <= k < nkeys and not math.isnan(v):
            b = math.floor((v - lo) / (hi - lo) * nbins) if math.isfinite(v) else (-1 if v < 0 else nbins)
            bins[k].append(min(max(b, 0), nbins - 1))
    q = np.full((nkeys, len(quantiles)), np.nan)
    for k in range(nkeys):
        n = len(bins[k])
        if n == 0:
            continue
        s = sorted(bins[k])
        for m, qq in enumerate(quantiles):
            rank = max(math.ceil(qq * n), 1)
            if rank <= n:
                q[k, m] = lo + (s[rank - 1] + 0.5) * width
    return q, np.array([len(b) for b in bins], dtype=np.int64)


QS = [0.0, 0.05, 0.2, 0.5, 0.95, 1.0]


def check_binned_quantiles(keys, values, nkeys, lo, hi, nbins, qs=QS):
    q, counts = G.binned_quantiles(keys, values, nkeys, lo, hi, nbins, qs)
    ref_q, ref_counts = ref_binned_quantiles(np.asarray(keys), np.asarray(values, dtype=float), nkeys, lo, hi,
                                             nbins, qs)
    assert q.shape == (nkeys, len(qs))
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_allclose(q, ref_q, rtol=1e-12, atol=1e-9, equal_nan=True)
    return q, counts


@pytest.mark.parametrize("seed", SEEDS)
def test_binned_quantiles_random(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 400))
    nkeys = int(rng.integers(1, 12))
    keys = rng.integers(0, nkeys, n)
    values = rng.normal(5, 3, n)  # some below lo, some above hi
    nbins = int(rng.integers(1, 60))
    check_binned_quantiles(keys, values, nkeys, 0.0, 11.1, nbins)
    check_binned_quantiles(keys, values, nkeys, -2.5, 7.0, nbins, [0.1, 0.3333, 0.9, 0.99])


def test_binned_quantiles_ignores_foreign_keys_and_nan():
    rng = np.random.default_rng(7)
    keys = rng.integers(-2, 6, 300)
    values = rng.uniform(0, 4, 300)
    values[rng.random(300) < 0.1] = np.nan
    _, counts = check_binned_quantiles(keys, values, 4, 0.0, 4.0, 16)
    assert counts.sum() == ((keys >= 0) & (keys < 4) & ~np.isnan(values)).sum()


def test_binned_quantiles_edge_cases():
    e = np.array([], dtype=np.int64)
    q, c = G.binned_quantiles(e, np.array([]), 3, 0.0, 1.0, 4, QS)
    assert q.shape == (3, len(QS)) and np.isnan(q).all() and (c == 0).all()
    q, c = G.binned_quantiles(e, np.array([]), 0, 0.0, 1.0, 4, QS)
    assert q.shape == (0, len(QS)) and c.shape == (0,)
    # a single sample: every quantile is its bin centre (lo=0, hi=8, 8 bins: exact bin edges)
    q, c = check_binned_quantiles(np.array([1]), np.array([2.5]), 2, 0.0, 8.0, 8)
    assert (q[1] == 2.5).all() and np.isnan(q[0]).all() and list(c) == [0, 1]
    # all samples in one key, values on bin edges, at lo and hi, and outside (clipped to the end bins)
    v = np.array([0.0, 1.0, 2.0, 2.0, 7.999, 8.0, -3.0, 100.0])
    q, c = check_binned_quantiles(np.zeros(8, np.int64), v, 1, 0.0, 8.0, 8)
    assert q[0, 0] == 0.5 and q[0, -1] == 7.5 and c[0] == 8
    # quantiles beyond 1 are never reached
    q, _ = G.binned_quantiles(np.zeros(3, np.int64), np.ones(3), 1, 0.0, 8.0, 8, [1.5])
    assert np.isnan(q).all()
    # values at UTM magnitude
    rng = np.random.default_rng(3)
    check_binned_quantiles(rng.integers(0, 3, 200), UTM[1] + rng.uniform(-5, 105, 200), 3, UTM[1], UTM[1] + 100, 50)


def test_binned_quantiles_bad_arguments():
    with pytest.raises(ValueError):
        G.binned_quantiles(np.zeros(2, np.int64), np.zeros(3), 1, 0.0, 1.0, 4, QS)
    with pytest.raises(ValueError):
        G.binned_quantiles(np.zeros(2, np.int64), np.zeros(2), 1, 1.0, 1.0, 4, QS)
    with pytest.raises(ValueError):
        G.binned_quantiles(np.zeros(2, np.int64), np.zeros(2), 1, 0.0, 1.0, 0, QS)


@pytest.mark.parametrize("v", [1e19, np.inf])
def test_binned_quantiles_huge_values_clip_to_last_bin(v):
    check_binned_quantiles(np.zeros(1, np.int64), np.array([v]), 1, 0.0, 1.0, 4, [0.5])


# =============================================================================
# component_shapes
# =============================================================================
def ref_component_shapes(labels, x, y, n_labels, q):
    """Per label 1..n_labels: count; projections on the principal axis (eigenvector of the largest
    eigenvalue of the covariance) and across it; length/width = spread after dropping the
    floor(q*(m-1)) smallest and largest projections; 0 for fewer than two points."""
    count = np.zeros(n_labels + 1, np.int64)
    length = np.zeros(n_labels + 1)
    width = np.zeros(n_labels + 1)
    for lab in range(1, n_labels + 1):
        sel = labels == lab
        m = int(sel.sum())
        count[lab] = m
        if m < 2:
            continue
        px, py = x[sel], y[sel]
        dx, dy = px - px.mean(), py - py.mean()
        cov = np.array([[dx @ dx, dx @ dy], [dx @ dy, dy @ dy]])
        _, vecs = np.linalg.eigh(cov)
        ux, uy = vecs[:, 1]
        u = sorted(dx * ux + dy * uy)
        v = sorted(-dx * uy + dy * ux)
        k = int(q * (m - 1))
        length[lab] = u[m - 1 - k] - u[k]
        width[lab] = v[m - 1 - k] - v[k]
    return count, length, width


def check_component_shapes(labels, x, y, n_labels, q=None, atol=1e-9):
    args = (labels, x, y, n_labels) if q is None else (labels, x, y, n_labels, q)
    count, length, width = G.component_shapes(*args)
    rc, rl, rw = ref_component_shapes(np.asarray(labels), np.asarray(x, float), np.asarray(y, float), n_labels,
                                      0.05 if q is None else q)
    np.testing.assert_array_equal(count, rc)
    np.testing.assert_allclose(length, rl, rtol=1e-9, atol=atol)
    np.testing.assert_allclose(width, rw, rtol=1e-9, atol=atol)
    return count, length, width


def test_component_shapes_of_cells_are_the_same_for_any_grid_origin():
    """Integer cell coordinates shifted by whole cells (the same cells in another grid) give the same
    lengths and widths to the last bit: thresholds on them do not depend on a tile's size."""
    rng = np.random.default_rng(5)
    labels, x, y = random_strokes(rng, 30)
    x, y = np.round(x * 10), np.round(y * 10)
    base = G.component_shapes(labels, x, y, 30)
    for shift in (1.0, 263.0, 6_920_000.0):
        moved = G.component_shapes(labels, x + shift, y + 2 * shift, 30)
        for a, b in zip(base, moved):
            np.testing.assert_array_equal(a, b)


def random_strokes(rng, n_labels, offset=(0.0, 0.0)):
    """Elongated point clusters (painted strokes) at random angles, labels 0 (background) .. n_labels."""
    labels, xs, ys = [], [], []
    for lab in range(n_labels + 1):
        m = int(rng.integers(0, 40))
        if lab == n_labels and n_labels > 1:
            m = 0  # an empty label
        a = rng.uniform(0, np.pi)
        s = rng.uniform(-rng.uniform(0.5, 3), rng.uniform(0.5, 3), m)
        t = rng.normal(0, rng.uniform(0.02, 0.2), m)
        cx, cy = rng.uniform(0, 20, 2)
        xs.append(offset[0] + cx + s * np.cos(a) - t * np.sin(a))
        ys.append(offset[1] + cy + s * np.sin(a) + t * np.cos(a))
        labels.append(np.full(m, lab))
    perm = rng.permutation(sum(len(v) for v in labels))
    return np.concatenate(labels)[perm], np.concatenate(xs)[perm], np.concatenate(ys)[perm]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("q", [None, 0.0, 0.2])
def test_component_shapes_random(seed, q):
    rng = np.random.default_rng(seed)
    labels, x, y = random_strokes(rng, int(rng.integers(1, 8)))
    check_component_shapes(labels, x, y, int(labels.max(initial=0)) + 1, q)


@pytest.mark.parametrize("offset,atol", [(UTM, 1e-6), ((1e9, 1e9), 1e-5)])
def test_component_shapes_huge_coordinates(offset, atol):
    rng = np.random.default_rng(11)
    labels, x, y = random_strokes(rng, 5, offset)
    check_component_shapes(labels, x, y, 5, atol=atol)
    # the same shapes as near the origin
    _, l0, w0 = G.component_shapes(labels, x - offset[0], y - offset[1], 5)
    _, l1, w1 = G.component_shapes(labels, x, y, 5)
    np.testing.assert_allclose(l1, l0, atol=atol)
    np.testing.assert_allclose(w1, w0, atol=atol)


def test_component_shapes_edge_cases():
    e = np.array([], dtype=np.int64)
    count, length, width = G.component_shapes(e, np.array([]), np.array([]), 0)
    assert list(count) == [0] and list(length) == [0.0] and list(width) == [0.0]
    count, length, width = G.component_shapes(e, np.array([]), np.array([]), 3)
    assert (count == 0).all() and (length == 0).all() and (width == 0).all() and len(count) == 4
    # a single point
    check_component_shapes(np.array([1]), np.array([UTM[0]]), np.array([UTM[1]]), 1)
    # all points identical, all in one label
    c, ln, w = check_component_shapes(np.ones(10, np.int64), np.full(10, UTM[0]), np.full(10, UTM[1]), 1)
    assert c[1] == 10 and ln[1] == 0 and w[1] == 0
    # collinear points on a diagonal: length = trimmed extent, width 0
    t = np.arange(21.0)
    c, ln, w = check_component_shapes(np.ones(21, np.int64), 3 * t, 4 * t, 1, 0.1)
    np.testing.assert_allclose([ln[1], w[1]], [5 * 16, 0], atol=1e-9)  # drop 2 at each end
    # background (label 0) points are ignored
    c, ln, _ = check_component_shapes(np.array([0, 0, 2, 2]), np.array([0.0, 50, 0, 1]), np.zeros(4), 2, 0.0)
    assert list(c) == [0, 0, 2] and ln[2] == 1.0


# =============================================================================
# nearest_in_group
# =============================================================================
def ref_nearest_in_group(qx, qy, qg, px, py, pg, radius):
    out = np.full(len(qx), np.inf)
    for i in range(len(qx)):
        best = np.inf
        for j in range(len(px)):
            if pg[j] == qg[i]:
                best = min(best, math.hypot(px[j] - qx[i], py[j] - qy[i]))
        if best <= radius:
            out[i] = best
    return out


def check_nearest_in_group(qx, qy, qg, px, py, pg, cell, radius):
    got = G.nearest_in_group(qx, qy, qg, px, py, pg, cell, radius)
    ref = ref_nearest_in_group(qx, qy, qg, px, py, pg, radius)
    assert got.shape == (len(qx),)
    np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9)
    return got


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("offset", [(0.0, 0.0), UTM, (1e9, -1e9)])
def test_nearest_in_group_random(seed, offset):
    rng = np.random.default_rng(seed)
    nq, npt = rng.integers(1, 60, 2)
    ng = int(rng.integers(1, 4))
    qx, qy = offset[0] + rng.uniform(0, 5, nq), offset[1] + rng.uniform(0, 4, nq)
    px, py = offset[0] + rng.uniform(-1, 6, npt), offset[1] + rng.uniform(-1, 5, npt)
    qg, pg = rng.integers(0, ng + 1, nq), rng.integers(0, ng, npt)  # group ng: queries only
    for cell, radius in [(0.05, 0.3), (0.3, 0.7), (1.0, 0.45), (0.5, 10.0)]:
        check_nearest_in_group(qx, qy, qg, px, py, pg, cell, radius)


def test_nearest_in_group_edge_cases():
    e = np.array([])
    ei = np.array([], dtype=np.int64)
    one = np.array([1.0])
    assert G.nearest_in_group(e, e, ei, one, one, np.array([0]), 0.1, 1.0).shape == (0,)
    np.testing.assert_array_equal(G.nearest_in_group(one, one, np.array([0]), e, e, ei, 0.1, 1.0), [np.inf])
    # a single query and reference, same point (UTM)
    x, y = np.array([UTM[0]]), np.array([UTM[1]])
    assert check_nearest_in_group(x, y, np.array([0]), x, y, np.array([0]), 0.05, 0.2)[0] == 0.0
    # other group only: inf
    assert np.isinf(check_nearest_in_group(x, y, np.array([1]), x, y, np.array([0]), 0.05, 0.2)[0])
    # all points in one cell and one group
    rng = np.random.default_rng(5)
    qx, qy, px, py = (UTM[i % 2] + rng.uniform(0, 0.04, 20) for i in range(4))
    check_nearest_in_group(qx, qy, np.zeros(20, np.int64), px, py, np.zeros(20, np.int64), 0.05, 0.2)
    # just inside and just outside the radius
    got = G.nearest_in_group(np.array([0.0, 0.0]), np.array([0.0, 0.0]), np.array([0, 1]), np.array([0.29, 0.31]),
                             np.array([0.0, 0.0]), np.array([0, 1]), 0.1, 0.3)
    assert got[0] == pytest.approx(0.29) and np.isinf(got[1])
    # exactly at the radius is not farther: found (3-4-5 triangle and a dyadic offset, both exact)
    got = G.nearest_in_group(np.array([0.0, 10.0]), np.array([0.0, 0.0]), np.array([0, 1]), np.array([3.0, 10.5]),
                             np.array([4.0, 0.0]), np.array([0, 1]), 0.7, 5.0)
    np.testing.assert_array_equal(got, [5.0, 0.5])
    got = G.nearest_in_group(np.array([10.0]), np.array([0.0]), np.array([1]), np.array([10.5]), np.array([0.0]),
                             np.array([1]), 0.25, 0.5)
    np.testing.assert_array_equal(got, [0.5])


def test_nearest_in_group_infinite_radius():
    check_nearest_in_group(np.array([0.0]), np.array([0.0]), np.array([0]), np.array([1.0]), np.array([0.0]),
                           np.array([0]), 0.5, np.inf)


# =============================================================================
# similar_neighbours
# =============================================================================
def ref_similar_neighbours(g, tol):
    nx, ny = g.shape
    out = np.zeros((nx, ny), np.int64)
    for i in range(nx):
        for j in range(ny):
            if math.isnan(g[i, j]):
                continue
            out[i, j] = sum(1 for a, b in window(nx, ny, i, j, 1)
                            if (a, b) != (i, j) and not math.isnan(g[a, b]) and abs(g[a, b] - g[i, j]) <= tol)
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_similar_neighbours_random(seed):
    rng = np.random.default_rng(seed)
    nx, ny = rng.integers(1, 15, 2)
    g = random_raster(rng, nx, ny)
    for tol in (0.0, 0.3, 1.0, np.inf):
        np.testing.assert_array_equal(G.similar_neighbours(g, tol), ref_similar_neighbours(g, tol))
    gi = np.round(g * 2) + 480.0  # integer heights: differences exactly at tol count
    for tol in (0.0, 1.0, 2.0):
        np.testing.assert_array_equal(G.similar_neighbours(gi, tol), ref_similar_neighbours(gi, tol))


def test_similar_neighbours_edge_cases():
    for shape in [(0, 0), (3, 0), (0, 2)]:
        assert G.similar_neighbours(np.zeros(shape), 1.0).shape == shape
    assert G.similar_neighbours(np.array([[5.0]]), 1.0)[0, 0] == 0
    assert (G.similar_neighbours(np.full((4, 4), np.nan), np.inf) == 0).all()
    np.testing.assert_array_equal(G.similar_neighbours(np.full((3, 4), 2.0), 0.0),
                                  [[3, 5, 5, 3], [5, 8, 8, 5], [3, 5, 5, 3]])


# =============================================================================
# closest_level
# =============================================================================
def ref_closest_level(x, y, z, level, x0, y0, cell):
    nx, ny = level.shape
    out = np.full(len(x), np.nan)
    for k in range(len(x)):
        fi, fj = (x[k] - x0) / cell, (y[k] - y0) / cell
        if not (0 <= fi < nx and 0 <= fj < ny):
            continue
        cand = [level[a, b] for a, b in window(nx, ny, math.floor(fi), math.floor(fj), 1)
                if not math.isnan(level[a, b])]
        if cand:
            out[k] = min(cand, key=lambda v: abs(z[k] - v))
    return out


def check_closest_level(x, y, z, level, x0, y0, cell):
    got = G.closest_level(x, y, z, level, x0, y0, cell)
    np.testing.assert_array_equal(got, ref_closest_level(x, y, z, level, x0, y0, cell))  # NaN == NaN here
    return got


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("origin", [(0.0, 0.0), UTM, (1e9, 1e9)])
def test_closest_level_random(seed, origin):
    rng = np.random.default_rng(seed)
    nx, ny = rng.integers(1, 10, 2)
    cell = float(rng.choice([0.1, 0.25, 1.0]))
    level = 480 + random_raster(rng, nx, ny, empty=0.4, scale=0.2)
    n = 200
    x = origin[0] + rng.uniform(-2 * cell, (nx + 2) * cell, n)  # some outside the raster
    y = origin[1] + rng.uniform(-2 * cell, (ny + 2) * cell, n)
    z = 480 + rng.normal(0, 0.3, n)
    check_closest_level(x, y, z, level, origin[0], origin[1], cell)


def test_closest_level_edge_cases():
    e = np.array([])
    assert G.closest_level(e, e, e, np.zeros((3, 3)), 0.0, 0.0, 1.0).shape == (0,)
    one = np.array([0.5])
    assert np.isnan(G.closest_level(one, one, one, np.zeros((0, 0)), 0.0, 0.0, 1.0)).all()
    assert np.isnan(G.closest_level(one, one, one, np.full((3, 3), np.nan), 0.0, 0.0, 1.0)).all()
    # a curb: the point's own cell holds the road, the neighbour the top; the point is on top
    level = np.array([[0.0, 0.0], [0.0, 0.15]])
    x, y = np.array([UTM[0] + 0.3]), np.array([UTM[1] + 0.3])
    assert check_closest_level(x, y, np.array([0.14]), level, UTM[0], UTM[1], 0.5)[0] == 0.15
    # all points in one cell, far from its level; only 3x3 around counts
    level = np.zeros((5, 5))
    level[4, 4] = 9.0
    rng = np.random.default_rng(2)
    x, y = UTM[0] + rng.uniform(0, 1, 30), UTM[1] + rng.uniform(0, 1, 30)
    got = check_closest_level(x, y, np.full(30, 9.0), level, UTM[0], UTM[1], 1.0)
    assert (got == 0.0).all()
    # the far edges belong outside: x = x0 + nx * cell
    got = G.closest_level(np.array([5.0, 4.999]), np.array([1.0, 1.0]), np.zeros(2), level, 0.0, 0.0, 1.0)
    assert np.isnan(got[0]) and got[1] == 9.0 - 9.0


# =============================================================================
# voxel_neighbour_counts (random input is covered in test_grid.py; edge cases here)
# =============================================================================
def ref_voxel_counts(ix, iy, iz):
    pts = list(zip(ix.tolist(), iy.tolist(), iz.tolist(), strict=True))
    return np.array([sum(1 for q in pts if max(abs(p[0] - q[0]), abs(p[1] - q[1]), abs(p[2] - q[2])) <= 1)
                     for p in pts], dtype=np.int64)


def check_voxel(v):
    v = np.asarray(v, dtype=np.int64).reshape(-1, 3)
    got = G.voxel_neighbour_counts(v[:, 0], v[:, 1], v[:, 2])
    np.testing.assert_array_equal(got, ref_voxel_counts(v[:, 0], v[:, 1], v[:, 2]))
    return got


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("offset", [(0, 0, 0), (-1_000_000, 1_000_000, -3)])
def test_voxel_neighbour_counts_random(seed, offset):
    rng = np.random.default_rng(seed)
    check_voxel(rng.integers(-3, 3, (int(rng.integers(0, 150)), 3)) + np.array(offset))


def test_voxel_neighbour_counts_edge_cases():
    assert check_voxel([]).shape == (0,)
    assert list(check_voxel([7, -8, 9])) == [1]
    assert (check_voxel(np.tile([3, 4, 5], (40, 1))) == 40).all()  # all in one voxel
    assert list(check_voxel([[0, 0, 0], [1, 1, 1], [2, 2, 2]])) == [2, 3, 2]


def test_voxel_neighbour_counts_huge_indices():
    """UTM-sized voxel indices (e.g. floor(x / 0.1 m)) are shifted into the packed key's range."""
    rng = np.random.default_rng(0)
    check_voxel(rng.integers(-3, 3, (100, 3)) + np.array([6_901_230, 53_403_210, 4_800]))
    check_voxel([[2**40, -(2**40), 7], [2**40 + 1, -(2**40), 8]])


def test_voxel_neighbour_counts_span_too_wide():
    """Voxels farther apart than the packed key holds: a clear error, not silently aliased counts."""
    with pytest.raises(ValueError, match="iy spans"):
        G.voxel_neighbour_counts(np.array([0, 1]), np.array([2**20, -(2**20)]), np.array([0, 0]))


# =============================================================================
# distance_transform (random input is covered in test_grid.py against SciPy)
# =============================================================================
def ref_distance_transform(mask):
    nx, ny = mask.shape
    sites = [(a, b) for a in range(nx) for b in range(ny) if mask[a, b]]
    out = np.full((nx, ny), np.inf)
    for i in range(nx):
        for j in range(ny):
            for a, b in sites:
                out[i, j] = min(out[i, j], math.hypot(a - i, b - j))
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_distance_transform_random(seed):
    rng = np.random.default_rng(seed)
    nx, ny = rng.integers(1, 14, 2)
    mask = rng.random((nx, ny)) < rng.uniform(0, 0.3)
    np.testing.assert_allclose(G.distance_transform(mask), ref_distance_transform(mask), rtol=0, atol=1e-9)


@pytest.mark.parametrize("shape", [(0, 0), (0, 3), (4, 0), (1, 1), (1, 9), (9, 1), (6, 5)])
@pytest.mark.parametrize("fill", ["none", "all", "single"])
def test_distance_transform_edge_cases(shape, fill):
    mask = np.zeros(shape, bool) if fill != "all" else np.ones(shape, bool)
    if fill == "single" and mask.size:
        mask[shape[0] // 2, shape[1] - 1] = True
    got = G.distance_transform(mask)
    assert got.shape == shape
    np.testing.assert_allclose(got, ref_distance_transform(mask), rtol=0, atol=1e-9)


# =============================================================================
# percentile_filter (random q with min_count = 1 is covered in test_grid.py)
# =============================================================================
def ref_percentile_filter(g, r, q, min_count):
    nx, ny = g.shape
    out = np.full((nx, ny), np.nan)
    for i in range(nx):
        for j in range(ny):
            vals = sorted(g[a, b] for a, b in window(nx, ny, i, j, r) if not math.isnan(g[a, b]))
            if vals and len(vals) >= min_count:
                out[i, j] = vals[math.floor(q / 100 * (len(vals) - 1))]  # lower value, no interpolation
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_percentile_filter_min_count(seed):
    rng = np.random.default_rng(seed)
    nx, ny = rng.integers(1, 12, 2)
    g = random_raster(rng, nx, ny, empty=0.5)
    for r, q, mc in [(0, 50, 1), (1, 0, 3), (1, 100, 5), (2, 37.5, 9), (1, 80, 0), (2, 20, 26)]:
        np.testing.assert_array_equal(G.percentile_filter(g, r, q, mc), ref_percentile_filter(g, r, q, mc))


def test_percentile_filter_edge_cases():
    for shape in [(0, 0), (0, 4), (2, 0)]:
        assert G.percentile_filter(np.zeros(shape), 1, 50).shape == shape
    assert np.isnan(G.percentile_filter(np.full((3, 3), np.nan), 1, 50)).all()
    assert G.percentile_filter(np.array([[4.0]]), 3, 100)[0, 0] == 4.0
    g = np.arange(9.0).reshape(3, 3) + UTM[1]
    assert G.percentile_filter(g, 1, 0)[1, 1] == g.min() and G.percentile_filter(g, 1, 100)[1, 1] == g.max()
    assert G.percentile_filter(g, 1, 50)[1, 1] == UTM[1] + 4
    for q in (-1, 100.5):
        with pytest.raises(ValueError):
            G.percentile_filter(g, 1, q)


# =============================================================================
# label_components (random input is covered in test_grid.py against SciPy)
# =============================================================================
def ref_components(mask, eight):
    """The set of components, each a frozenset of cells, by flood fill."""
    nx, ny = mask.shape
    nb = [(1, 0), (-1, 0), (0, 1), (0, -1)] + ([(1, 1), (1, -1), (-1, 1), (-1, -1)] if eight else [])
    seen = set()
    comps = set()
    for i in range(nx):
        for j in range(ny):
            if not mask[i, j] or (i, j) in seen:
                continue
            comp, stack = {(i, j)}, [(i, j)]
            while stack:
                a, b = stack.pop()
                for da, db in nb:
                    c = (a + da, b + db)
                    if 0 <= c[0] < nx and 0 <= c[1] < ny and mask[c] and c not in comp:
                        comp.add(c)
                        stack.append(c)
            seen |= comp
            comps.add(frozenset(comp))
    return comps


def check_labels(mask, conn):
    labels, n = G.label_components(mask, conn)
    assert labels.shape == mask.shape
    assert (labels[~mask] == 0).all()
    assert set(np.unique(labels[mask]).tolist()) == set(range(1, n + 1))  # labels exactly 1..count
    got = {frozenset(zip(*(a.tolist() for a in np.nonzero(labels == k)), strict=True)) for k in range(1, n + 1)}
    assert got == ref_components(mask, conn == 8)
    return labels, n


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("conn", [4, 8])
def test_label_components_random(seed, conn):
    rng = np.random.default_rng(seed)
    nx, ny = rng.integers(1, 16, 2)
    check_labels(rng.random((nx, ny)) < 0.5, conn)


@pytest.mark.parametrize("conn", [4, 8])
def test_label_components_edge_cases(conn):
    for shape in [(0, 0), (0, 5), (5, 0)]:
        assert check_labels(np.zeros(shape, bool), conn)[1] == 0
    assert check_labels(np.zeros((4, 4), bool), conn)[1] == 0
    assert check_labels(np.ones((4, 6), bool), conn)[1] == 1
    assert check_labels(np.ones((1, 1), bool), conn)[1] == 1
    checker = (np.add.outer(np.arange(5), np.arange(5)) % 2) == 0
    assert check_labels(checker, conn)[1] == (13 if conn == 4 else 1)
    with pytest.raises(ValueError):
        G.label_components(checker, 6)


# =============================================================================
# gap_outliers: a brute-force reference on random and edge-case input
# =============================================================================
def ref_gap_outliers(xyz, group, min_gap, ratio, radius):
    n = len(xyz)
    group = np.zeros(n, np.int64) if group is None else np.asarray(group)
    d = np.sqrt(((xyz[:, None, :] - xyz[None, :, :]) ** 2).sum(-1)) if n else np.zeros((0, 0))
    d[group[:, None] != group[None, :]] = np.inf
    np.fill_diagonal(d, np.inf)
    out = np.zeros(n, bool)
    for i in range(n):
        j = int(np.argmin(d[i])) if n > 1 else -1
        if j < 0 or not (min_gap < d[i, j] <= radius):
            continue
        others = np.delete(d[j], [i, j])
        spacing = others.min() if len(others) else np.inf
        spacing = spacing if spacing <= radius else np.inf
        out[i] = d[i, j] > ratio * spacing
    return out


def check_gap(xyz, group=None, min_gap=0.2, ratio=3.0, radius=1.0):
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    got = G.gap_outliers(xyz[:, 0], xyz[:, 1], xyz[:, 2], group, min_gap, ratio, radius)
    np.testing.assert_array_equal(got, ref_gap_outliers(xyz, group, min_gap, ratio, radius))
    return got


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("offset", [(0.0, 0.0, 0.0), (691_000.0, 5_338_000.0, 480.0)])
def test_gap_outliers_random(seed, offset):
    """Planes sampled at random spacings with points above them, in up to three scanner channels."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 300))
    xyz = rng.uniform(0, rng.choice([0.5, 2.0, 6.0]), (n, 3))
    xyz[: n // 2, 2] = 0.0
    group = rng.integers(0, 3, n) if seed % 2 else None
    check_gap(xyz + np.array(offset), group, ratio=float(rng.choice([1.5, 3.0, 10.0])))


def test_gap_outliers_edge_cases():
    assert check_gap([]).shape == (0,)
    assert list(check_gap([1.0, 2.0, 3.0])) == [False]  # one point: no neighbour
    assert not check_gap(np.tile([3.0, 4.0, 5.0], (40, 1))).any()  # all at one place
    # a densely sampled patch of road and one return 0.5 m above it: only that one stands apart
    gx, gy = np.meshgrid(np.arange(0, 2, 0.05), np.arange(0, 2, 0.05))
    road = np.column_stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)])
    got = check_gap(np.vstack([road, [[1.0, 1.0, 0.5]]]), ratio=8.0)
    assert got[-1] and not got[:-1].any()
    # the same return recorded by another scanner channel has no neighbours of its own: left alone
    group = np.r_[np.zeros(len(road), np.int64), 1]
    assert not check_gap(np.vstack([road, [[1.0, 1.0, 0.5]]]), group, ratio=8.0).any()
    # a sparse surface (0.3 m spacing) is not noise however large its gaps
    assert not check_gap(np.column_stack([np.arange(0, 6, 0.3), np.zeros(20), np.zeros(20)])).any()
    # NaN points are nobody's neighbour and never flagged
    got = G.gap_outliers(np.array([0.0, np.nan, 0.05]), np.zeros(3), np.zeros(3), None, 0.2, 3.0, 1.0)
    assert not got.any()


def test_gap_outliers_huge_and_far_apart_coordinates():
    """UTM coordinates and a stray point kilometres away (its voxel index is clamped: still exact)."""
    gx, gy = np.meshgrid(np.arange(0, 1, 0.04), np.arange(0, 1, 0.04))
    road = np.column_stack([gx.ravel() + 691_000.0, gy.ravel() + 5_338_000.0, np.full(gx.size, 480.0)])
    pts = np.vstack([road, [[691_000.5, 5_338_000.5, 480.4]], [[691_000.0, 5_338_000.0, -9_999.0]],
                     [[1e7, 5_338_000.0, 480.0]]])
    got = check_gap(pts, ratio=5.0)
    assert got[len(road)] and got.sum() == 1


def test_gap_outliers_bad_arguments():
    with pytest.raises(ValueError, match="group ids"):
        G.gap_outliers(np.zeros(2), np.zeros(2), np.zeros(2), np.array([0, 300]), 0.2, 3.0, 1.0)
    with pytest.raises(ValueError, match="min_gap"):
        G.gap_outliers(np.zeros(2), np.zeros(2), np.zeros(2), None, 0.2, 3.0, 0.1)

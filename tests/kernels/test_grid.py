"""Grid kernels against plain NumPy/SciPy references, on random and edge-case input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from hdmap.kernels import grid as G


def random_raster(rng, nx, ny, empty=0.3):
    g = rng.normal(0, 1, (nx, ny))
    g[rng.random((nx, ny)) < empty] = np.nan
    return g


# --- binning -----------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 1000])
@pytest.mark.parametrize("offset", [0.0, 5e6])  # huge coordinates: EPSG:25832 northings
def test_binning_and_stats(n, offset):
    rng = np.random.default_rng(n)
    x = rng.uniform(-1, 11, n) + offset
    y = rng.uniform(-1, 6, n) + offset
    z = rng.normal(0, 1, n)
    idx = G.cell_index(x, y, offset, offset, 0.5, 20, 10)
    fx, fy = np.floor((x - offset) / 0.5), np.floor((y - offset) / 0.5)
    inside = (fx >= 0) & (fx < 20) & (fy >= 0) & (fy < 10)
    np.testing.assert_array_equal(idx, np.where(inside, fx * 10 + fy, -1).astype(np.int64))
    start, order = G.bin_points(idx, 200)
    ref_order = np.flatnonzero(inside)[np.argsort(idx[inside], kind="stable")]
    np.testing.assert_array_equal(order, ref_order)
    np.testing.assert_array_equal(np.diff(start), np.bincount(idx[inside], minlength=200))
    lo1, lo2, hi, cnt = G.cell_stats(z, start, order)
    for c in range(200):
        vals = np.sort(z[idx == c])
        assert cnt[c] == len(vals)
        if len(vals):
            assert lo1[c] == vals[0] and hi[c] == vals[-1] and lo2[c] == vals[min(1, len(vals) - 1)]
        else:
            assert np.isnan(lo1[c]) and np.isnan(hi[c])


def test_all_points_in_one_cell_and_nan_coordinates():
    x = np.full(50, 1.25)
    y = np.full(50, 1.25)
    x[3] = np.nan
    idx = G.cell_index(x, y, 0.0, 0.0, 1.0, 4, 4)
    assert idx[3] == -1 and set(idx[idx >= 0]) == {5}
    start, order = G.bin_points(idx, 16)
    assert start[6] - start[5] == 49


# --- filters ---------------------------------------------------------------
def ref_minmax(g, r, fn, fill):
    a = np.where(np.isnan(g), fill, g)
    out = fn(a, size=2 * r + 1, mode="constant", cval=fill)
    return np.where(np.isinf(out), np.nan, out)


@settings(deadline=None, max_examples=30)
@given(st.integers(0, 1000), st.integers(1, 12), st.integers(1, 12), st.integers(0, 4))
def test_min_max_filters(seed, nx, ny, r):
    g = random_raster(np.random.default_rng(seed), nx, ny)
    np.testing.assert_array_equal(G.min_filter(g, r), ref_minmax(g, r, ndimage.minimum_filter, np.inf))
    np.testing.assert_array_equal(G.max_filter(g, r), ref_minmax(g, r, ndimage.maximum_filter, -np.inf))


def ref_window(g, r, fn):
    nx, ny = g.shape
    out = np.full_like(g, np.nan)
    for i in range(nx):
        for j in range(ny):
            w = g[max(i - r, 0):i + r + 1, max(j - r, 0):j + r + 1]
            w = w[~np.isnan(w)]
            if len(w):
                out[i, j] = fn(w)
    return out


@settings(deadline=None, max_examples=25)
@given(st.integers(0, 1000), st.integers(1, 10), st.integers(1, 10))
def test_median3(seed, nx, ny):
    g = random_raster(np.random.default_rng(seed), nx, ny)
    np.testing.assert_allclose(G.median3(g), ref_window(g, 1, np.median), equal_nan=True)


@settings(deadline=None, max_examples=25)
@given(st.integers(0, 1000), st.integers(1, 10), st.integers(1, 10), st.integers(0, 3), st.floats(0, 100))
def test_percentile_filter(seed, nx, ny, r, q):
    g = random_raster(np.random.default_rng(seed), nx, ny)
    ref = ref_window(g, r, lambda w: np.sort(w)[int(np.floor(q / 100 * (len(w) - 1)))])
    np.testing.assert_allclose(G.percentile_filter(g, r, q), ref, equal_nan=True)


# --- regions -----------------------------------------------------------------
def ref_grow(seeds, allowed, h, step, eight):
    nx, ny = seeds.shape
    out = seeds & allowed
    stack = list(zip(*np.nonzero(out)))
    nb = [(1, 0), (-1, 0), (0, 1), (0, -1)] + ([(1, 1), (1, -1), (-1, 1), (-1, -1)] if eight else [])
    while stack:
        i, j = stack.pop()
        for di, dj in nb:
            a, b = i + di, j + dj
            if 0 <= a < nx and 0 <= b < ny and not out[a, b] and allowed[a, b] and abs(h[a, b] - h[i, j]) <= step:
                out[a, b] = True
                stack.append((a, b))
    return out


@settings(deadline=None, max_examples=40)
@given(st.integers(0, 5000), st.sampled_from([4, 8]))
def test_grow_region(seed, conn):
    rng = np.random.default_rng(seed)
    nx, ny = rng.integers(1, 15, 2)
    h = np.cumsum(rng.normal(0, 0.1, (nx, ny)), axis=0)
    allowed = rng.random((nx, ny)) < 0.8
    seeds = rng.random((nx, ny)) < 0.05
    np.testing.assert_array_equal(G.grow_region(seeds, allowed, h, 0.12, conn), ref_grow(seeds, allowed, h, 0.12,
                                                                                             conn == 8))


@settings(deadline=None, max_examples=40)
@given(st.integers(0, 5000), st.sampled_from([4, 8]), st.integers(0, 3))
def test_grow_region_across_gaps_only_adds_allowed_cells(seed, conn, max_gap):
    rng = np.random.default_rng(seed)
    nx, ny = rng.integers(1, 15, 2)
    h = np.cumsum(rng.normal(0, 0.1, (nx, ny)), axis=0)
    allowed = rng.random((nx, ny)) < 0.6
    gaps = ~allowed & (rng.random((nx, ny)) < 0.7)
    seeds = rng.random((nx, ny)) < 0.05
    plain = G.grow_region(seeds, allowed, h, 0.12, conn)
    got = G.grow_region(seeds, allowed, h, 0.12, conn, gaps=gaps, max_gap=max_gap)
    assert not (got & ~allowed).any()  # gap cells never belong to the region
    assert (got >= plain).all()
    if max_gap == 0 or not gaps.any():
        np.testing.assert_array_equal(got, plain)
    # without gap cells next to the region, there is nothing to cross
    np.testing.assert_array_equal(G.grow_region(seeds, allowed, h, 0.12, conn, gaps=np.zeros_like(gaps), max_gap=3),
                                  plain)


def test_grow_region_crosses_scan_line_gaps_but_not_a_curb_behind_one():
    # a road strip seen on every fourth column (scan lines far from the scanner), rising 0.5 cm per column,
    # with a sidewalk 12 cm higher from column 20 on
    nx, ny = 32, 5
    h = np.tile(0.005 * np.arange(nx, dtype=float)[:, None], (1, ny))
    h[20:] += 0.12
    seen = np.zeros((nx, ny), bool)
    seen[::4] = True
    seeds = np.zeros((nx, ny), bool)
    seeds[0, 2] = True
    kw = dict(gaps=~seen)
    assert G.grow_region(seeds, seen, h, 0.04, 4).sum() == ny  # plain growth stays on the first line
    short = G.grow_region(seeds, seen, h, 0.04, 4, max_gap=2, **kw)
    assert short.sum() == ny  # three empty columns are more than two
    got = G.grow_region(seeds, seen, h, 0.04, 4, max_gap=3, **kw)
    # every line of the road up to the sidewalk (column 16; 16 -> 20 would climb 12 + 2 cm)
    np.testing.assert_array_equal(np.flatnonzero(got.any(axis=1)), [0, 4, 8, 12, 16])
    assert got[[0, 4, 8, 12, 16]].all()
    # beyond a crossing only cells that pass `beyond` are taken; cells reached without one need not
    beyond = np.ones((nx, ny), bool)
    beyond[0] = False
    beyond[12:] = False
    strict = G.grow_region(seeds, seen, h, 0.04, 4, max_gap=3, beyond=beyond, **kw)
    np.testing.assert_array_equal(np.flatnonzero(strict.any(axis=1)), [0, 4, 8])
    with pytest.raises(ValueError, match="gaps has shape"):
        G.grow_region(seeds, seen, h, 0.04, 4, gaps=np.zeros((2, 2), bool), max_gap=3)


@settings(deadline=None, max_examples=40)
@given(st.integers(0, 5000), st.sampled_from([4, 8]))
def test_label_components_same_partition_as_scipy(seed, conn):
    rng = np.random.default_rng(seed)
    nx, ny = rng.integers(1, 20, 2)
    mask = rng.random((nx, ny)) < 0.45
    labels, n = G.label_components(mask, conn)
    structure = np.ones((3, 3)) if conn == 8 else None
    ref, m = ndimage.label(mask, structure=structure)
    assert n == m
    # same partition: a one-to-one map between label values
    pairs = set(zip(labels[mask].tolist(), ref[mask].tolist()))
    assert len(pairs) == n
    assert (labels[~mask] == 0).all()


@settings(deadline=None, max_examples=40)
@given(st.integers(0, 5000))
def test_distance_transform(seed):
    rng = np.random.default_rng(seed)
    nx, ny = rng.integers(1, 25, 2)
    mask = rng.random((nx, ny)) < rng.uniform(0.0, 0.3)
    got = G.distance_transform(mask)
    if not mask.any():
        assert np.isinf(got).all()
        return
    np.testing.assert_allclose(got, ndimage.distance_transform_edt(~mask), atol=1e-9)


def test_fill_nearest():
    g = np.full((5, 5), np.nan)
    g[0, 0] = 1.0
    g[4, 4] = 3.0
    out = G.fill_nearest(g, 2)
    assert out[1, 1] == 1.0 and out[3, 3] == 3.0 and out[2, 2] == 2.0  # ring 2 from both: mean
    assert np.isnan(G.fill_nearest(np.full((3, 3), np.nan), 5)).all()


# --- voxels -------------------------------------------------------------------
@settings(deadline=None, max_examples=30)
@given(st.integers(0, 5000), st.integers(0, 300))
def test_voxel_neighbour_counts(seed, n):
    rng = np.random.default_rng(seed)
    v = rng.integers(-4, 4, (n, 3)) + np.array([500_000, -200, 3])  # far from the origin too
    got = G.voxel_neighbour_counts(v[:, 0], v[:, 1], v[:, 2])
    ref = np.array([int((np.abs(v - p).max(axis=1) <= 1).sum()) for p in v], dtype=np.int64)
    np.testing.assert_array_equal(got, ref)


# --- per-point helpers of the classification ------------------------------------
@pytest.mark.parametrize("n", [0, 1, 1000])
@pytest.mark.parametrize("offset", [0.0, 5e6])
def test_bounds_and_cell_coords_of_strided_columns(n, offset):
    rng = np.random.default_rng(n + 7)
    xyz = rng.uniform(-3, 12, (n, 3)) + offset  # columns of an (n, 3) array are strided views
    if n > 10:
        xyz[5, 0] = np.nan
        xyz[6, 1] = np.nan
    x, y = xyz[:, 0], xyz[:, 1]
    b = G.xy_bounds(x, y)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.any():
        assert b == (x[ok].min(), y[ok].min(), x[ok].max(), y[ok].max())
    else:
        assert np.isnan(b).all()
    ix, iy = G.cell_coords(x, y, offset, offset, 0.5, 20, 10)
    with np.errstate(invalid="ignore"):  # NaN casts to INT_MIN, clipped to 0
        ref_x = np.clip(np.floor((x - offset) / 0.5).astype(np.int64), 0, 19)
        ref_y = np.clip(np.floor((y - offset) / 0.5).astype(np.int64), 0, 9)
    np.testing.assert_array_equal(ix, ref_x)
    np.testing.assert_array_equal(iy, ref_y)


@pytest.mark.parametrize("n", [0, 1, 1000])
@pytest.mark.parametrize("offset", [0.0, 5e6])
@pytest.mark.parametrize("radius", [0.0, 2.5, 100.0])
def test_within_box_of_record_columns(n, offset, radius):
    rng = np.random.default_rng(n + 11)
    rec = np.zeros(n, [("x", "f8"), ("y", "f8"), ("z", "f8"), ("flag", "u1")])  # fields: strided views
    rec["x"] = rng.uniform(-10, 20, n) + offset
    rec["y"] = rng.uniform(-10, 20, n) + offset
    if n > 10:
        rec["x"][3] = np.nan
        rec["x"][:3], rec["y"][:3] = offset, offset + 1.0  # on the box's edge: inside
    box = (offset, offset, offset + 10.0, offset + 5.0)
    got = G.within_box(rec["x"], rec["y"], box, radius)
    with np.errstate(invalid="ignore"):
        dx = np.maximum(np.maximum(box[0] - rec["x"], rec["x"] - box[2]), 0.0)
        dy = np.maximum(np.maximum(box[1] - rec["y"], rec["y"] - box[3]), 0.0)
        ref = dx * dx + dy * dy <= radius * radius
    np.testing.assert_array_equal(got, ref)
    if n > 10:
        assert got[:3].all() and not got[3]  # on the edge: in; NaN: not near


@pytest.mark.parametrize("cell", [0.05, 0.1, 0.25])
def test_cells_of_millimetre_coordinates_do_not_depend_on_the_grid_origin(cell):
    """LAS coordinates (1 mm steps) sit exactly on the edges of decimetre cells. Two grids whose origins are
    different multiples of the cell (a tile's and the whole survey's) must put every point in the same
    absolute cell; ``k * 0.1`` is not exact in floating point, so the plain floor splits edge points."""
    rng = np.random.default_rng(3)
    n = 200_000
    x = np.round(692_000 + rng.uniform(0, 60, n), 3)
    y = np.round(5_343_500 + rng.uniform(0, 60, n), 3)
    on_edge = np.isclose(np.mod(np.round(x * 1000), round(cell * 1000)), 0)
    assert on_edge.mean() > 0.003  # the case really occurs
    cells = []
    for k in (0, 7, 263, 1001):
        x0 = (np.floor(692_000 / cell) - k) * cell
        y0 = (np.floor(5_343_500 / cell) - k) * cell
        ix, iy = G.cell_coords(x, y, x0, y0, cell, 10**6, 10**6)
        idx = G.cell_index(x, y, x0, y0, cell, 10**6, 10**6)
        np.testing.assert_array_equal(idx, ix * 10**6 + iy)
        cells.append((ix - k, iy - k))
    for ix, iy in cells[1:]:
        np.testing.assert_array_equal(ix, cells[0][0])
        np.testing.assert_array_equal(iy, cells[0][1])
    # an edge point lies in the cell above the edge
    i_edge = np.flatnonzero(on_edge)[0]
    assert cells[0][0][i_edge] == round((x[i_edge] - 692_000) / cell)


def ref_range_sector_keys(xyz, positions, headings, range_bin, nr, na):
    d = xyz - positions
    rng = np.sqrt((d * d).sum(axis=1))
    rb = np.clip(np.nan_to_num(rng / range_bin, nan=0.0).astype(np.int64), 0, nr - 1)
    if headings is None:
        return rb * na, np.isfinite(rng)
    az = np.arctan2(d[:, 0], d[:, 1]) - headings
    ab = (np.floor(np.nan_to_num(np.mod(az, 2 * np.pi)) / (2 * np.pi) * na)).astype(np.int64) % na
    return rb * na + ab, np.isfinite(rng)


@pytest.mark.parametrize("n", [0, 1, 2000])
@pytest.mark.parametrize("with_heading", [True, False])
def test_range_sector_keys(n, with_heading):
    rng = np.random.default_rng(n)
    pos = np.column_stack([rng.uniform(691000, 692000, n), rng.uniform(5.34e6, 5.35e6, n), rng.uniform(480, 500, n)])
    xyz = pos + rng.normal(0, 30, (n, 3))
    xyz[: n // 10] = pos[: n // 10]  # range 0
    if n > 100:
        pos[50:60] = np.nan  # no trajectory there
        xyz[60] = pos[60] + [500.0, 0, 0]  # beyond the last bin
    head = rng.uniform(-1, 7, n) if with_heading else None
    key, has = G.range_sector_keys(xyz, pos, head, 0.5, 120, 8)
    ref_key, ref_has = ref_range_sector_keys(xyz, pos, head, 0.5, 120, 8)
    np.testing.assert_array_equal(has, ref_has)
    # atan2 of NumPy and libm may differ in the last bit; a bearing that close to a sector edge may flip
    assert (key != ref_key).sum() <= max(1, n // 1000)
    assert key.min(initial=0) >= 0 and key.max(initial=0) < 120 * 8


def test_relative_to_curve():
    rng = np.random.default_rng(3)
    n, nk = 5000, 40
    table = rng.normal(5, 1, (3, nk, 2))
    table[1, 7] = np.nan
    values = rng.normal(6, 1, n)
    key = rng.integers(0, nk, n)
    has = rng.random(n) > 0.1
    slot = rng.integers(-1, 3, n)
    rel, spread = G.relative_to_curve(values, key, has, slot, table)
    for i in range(n):
        s = slot[i]
        level = table[s, key[i], 0] if s >= 0 and has[i] else np.nan
        if np.isnan(level):
            assert np.isnan(rel[i]) and np.isnan(spread[i])
        else:
            assert rel[i] == values[i] - level and spread[i] == table[s, key[i], 1]
    with pytest.raises(ValueError, match="outside the table"):
        G.relative_to_curve(values, key, has, np.full(n, 3), table)
    empty = G.relative_to_curve(np.zeros(0), np.zeros(0, int), np.zeros(0, bool), np.zeros(0, int), table)
    assert empty[0].shape == (0,)


# --- grouped histograms -------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 5000])
def test_grouped_histograms_match_one_histogram_per_group(n):
    rng = np.random.default_rng(n)
    nkeys, nbins = 7, 11
    codes = rng.integers(0, 1 << 16, n).astype(np.uint16)
    codes[: n // 10] = 0  # many in one bin
    lut = (np.arange(1 << 16) * nbins) >> 16
    lut[5] = -1  # a code left out
    keys = rng.integers(-1, nkeys + 1, n)  # some outside the table
    slots = rng.integers(-1, 4, n)
    select = rng.random(n) < 0.7
    hist, counted = G.grouped_histograms(keys, codes, lut, slots, select, 3, nkeys, nbins)
    assert hist.shape == (3, nkeys, nbins)
    for s in range(3):
        m = select & (slots == s) & (keys >= 0) & (keys < nkeys) & (lut[codes] >= 0)
        ref = np.zeros((nkeys, nbins), np.int64)
        np.add.at(ref, (keys[m], lut[codes[m]]), 1)
        np.testing.assert_array_equal(hist[s], ref)
        assert counted[s] == m.sum()


def test_grouped_histograms_refuse_codes_the_table_cannot_hold():
    with pytest.raises(ValueError, match="uint8 or uint16"):
        G.grouped_histograms(np.zeros(2, int), np.zeros(2, np.int32), np.zeros(1 << 16, int), np.zeros(2, int),
                             np.ones(2, bool), 1, 1, 1)
    with pytest.raises(ValueError, match="lut has"):
        G.grouped_histograms(np.zeros(2, int), np.zeros(2, np.uint16), np.zeros(256, int), np.zeros(2, int),
                             np.ones(2, bool), 1, 1, 1)


@pytest.mark.parametrize("n", [0, 1, 1000])
def test_cell_index_where_leaves_out_the_unselected(n):
    rng = np.random.default_rng(n)
    x, y = rng.uniform(-1, 11, n) + 5e6, rng.uniform(-1, 6, n)
    x[: n // 10] = np.nan
    where = rng.random(n) < 0.5
    full = G.cell_index(x, y, 5e6, 0.0, 0.5, 20, 10)
    np.testing.assert_array_equal(G.cell_index(x, y, 5e6, 0.0, 0.5, 20, 10, where), np.where(where, full, -1))
    np.testing.assert_array_equal(G.cell_index(x, y, 5e6, 0.0, 0.5, 20, 10, where.astype(int)),
                                  np.where(where, full, -1))  # any truthy mask
    with pytest.raises(ValueError, match="one value per point"):
        G.cell_index(x, y, 5e6, 0.0, 0.5, 20, 10, where[:-1] if n else np.ones(1, bool))


@pytest.mark.parametrize("pattern", ["runs", "two_scanners", "random"])
def test_hash_table_gives_every_point_the_slot_of_its_key(pattern):
    """Keys repeat in runs (one scanner), interleave (two) or not at all, across many growths of the table."""
    rng = np.random.default_rng(7)
    base = rng.integers(0, 1 << 40, 5000)
    if pattern == "runs":
        key = np.repeat(base, rng.integers(1, 9, len(base)))
    elif pattern == "two_scanners":
        a, b = np.repeat(base[:2500], 3), np.repeat(base[2500:], 3)
        key = np.ravel(np.column_stack([a, b]))
    else:
        key = rng.choice(base, 20000)
    keys, slot_of = G._hash_table(key)
    np.testing.assert_array_equal(keys[slot_of], key)
    assert set(keys[keys >= 0].tolist()) == set(key.tolist())
    assert len(keys) >= 2 * len(set(key.tolist()))  # at most half full


@pytest.mark.parametrize("n", [0, 1, 3000])
def test_voxel_coords_are_floored_and_shifted_to_zero(n):
    rng = np.random.default_rng(n)
    xyz = np.column_stack([rng.uniform(-50, 50, n) + 6.9e5, rng.uniform(-5, 5, n) + 5.3e6, rng.normal(0, 3, n)])
    rows = np.flatnonzero(rng.random(n) < 0.4) if n > 1 else np.arange(n)
    v = np.floor(xyz[rows] / 0.5).astype(np.int64)
    np.testing.assert_array_equal(G.voxel_coords(xyz, rows, 0.5), v - v.min(axis=0) if len(v) else v)


def test_cell_flat_is_the_flat_index_of_cell_coords():
    rng = np.random.default_rng(4)
    x, y = rng.uniform(-3, 13, 2000) + 6.9e5, rng.uniform(-3, 8, 2000)
    x[:20] = np.nan
    ix, iy = G.cell_coords(x, y, 6.9e5, 0.0, 0.5, 20, 10)
    np.testing.assert_array_equal(G.cell_flat(x, y, 6.9e5, 0.0, 0.5, 20, 10), ix * 10 + iy)


def test_gap_outliers_take_uint8_channels_as_they_are():
    rng = np.random.default_rng(11)
    xyz = rng.uniform(0, 3, (4000, 3))
    xyz[:20, 2] += 0.5  # a few returns hovering above the rest
    ch = rng.integers(0, 3, 4000)
    a = G.gap_outliers(xyz[:, 0], xyz[:, 1], xyz[:, 2], ch.astype(np.uint8), 0.05, 3.0, 1.0)
    b = G.gap_outliers(xyz[:, 0], xyz[:, 1], xyz[:, 2], ch.astype(np.int64), 0.05, 3.0, 1.0)
    np.testing.assert_array_equal(a, b)
    assert a.any()


@pytest.mark.parametrize("n", [0, 1, 4000])
def test_grouped_cell_means_equal_bincount_means_bit_for_bit(n):
    rng = np.random.default_rng(n)
    values = rng.normal(7.0, 0.3, n)
    cell = rng.integers(-1, 50, n)
    slots = rng.integers(-1, 3, n)
    select = rng.random(n) < 0.8
    got = G.grouped_cell_means(values, cell, np.where(select, slots, -1), 3, 50)
    assert got.shape == (4, 50)
    for s in range(4):
        m = np.flatnonzero(select & (cell >= 0) & ((slots == s) if s < 3 else (slots >= 0)))
        total = np.bincount(cell[m], weights=values[m], minlength=50)
        count = np.bincount(cell[m], minlength=50)
        with np.errstate(invalid="ignore"):
            ref = np.where(count > 0, total / count, np.nan)
        np.testing.assert_array_equal(got[s], ref)

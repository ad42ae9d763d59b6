"""Ray-casting kernels against slow references and exact geometry."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from hdmap.kernels.raycast import build_grid, cast_rays, pose_matrices, time_order


def slow_grid(boxes, zr, tri_xy, x0, y0, cell, nx, ny):
    """Reference: shapely intersection of each item with each cell (touching counts)."""
    lists = [[] for _ in range(nx * ny)]
    for i in range(len(boxes)):
        if i < len(tri_xy):
            t = tri_xy[i]
            a, b = t[1] - t[0], t[2] - t[0]
            geom = shapely.Polygon(t) if abs(a[0] * b[1] - a[1] * b[0]) > 1e-12 else shapely.LineString(t)
        else:
            geom = shapely.box(*boxes[i])
        for a in range(nx):
            for b in range(ny):
                c = shapely.box(x0 + a * cell, y0 + b * cell, x0 + (a + 1) * cell, y0 + (b + 1) * cell)
                if geom.intersects(c):
                    lists[a * ny + b].append(i)
    return lists


@settings(deadline=None, max_examples=40)
@given(st.integers(0, 10_000))
def test_grid_matches_shapely(seed):
    rng = np.random.default_rng(seed)
    n_tri = int(rng.integers(0, 12))
    tri = rng.uniform(0, 9, (n_tri, 3, 2))
    if n_tri:
        tri[0, 2] = tri[0, 0] + 0.5 * (tri[0, 1] - tri[0, 0])  # a vertical wall seen from above: a segment
    extra = rng.uniform(0, 8, (4, 2))
    boxes = np.vstack([np.column_stack([tri.min(1), tri.max(1)]) if n_tri else np.zeros((0, 4)),
                       np.column_stack([extra, extra + 0.7])])
    zr = rng.uniform(0, 5, (len(boxes), 2))
    zr.sort(axis=1)
    start, items, zmin, zmax = build_grid(boxes, zr, 0.0, 0.0, 1.0, 10, 10, tri_xy=tri)
    ref = slow_grid(boxes, zr, tri, 0.0, 0.0, 1.0, 10, 10)
    for c in range(100):
        got = sorted(items[start[c]:start[c + 1]].tolist())
        # the separating-axis test is conservative by a hair: it may keep touching cells shapely keeps too
        assert set(ref[c]) <= set(got), (c, ref[c], got)
        for i in set(got) - set(ref[c]):  # anything extra must touch the cell within 1e-6
            cellbox = shapely.box(c // 10, c % 10, c // 10 + 1, c % 10 + 1)
            geom = shapely.MultiPoint(tri[i]).convex_hull if i < n_tri else shapely.box(*boxes[i])
            assert geom.distance(cellbox) < 1e-6
        if got:
            assert zmin[c] == pytest.approx(min(zr[i, 0] for i in got))
            assert zmax[c] == pytest.approx(max(zr[i, 1] for i in got))


def test_empty_grid():
    start, items, zmin, zmax = build_grid(np.zeros((0, 4)), np.zeros((0, 2)), 0.0, 0.0, 1.0, 3, 2)
    assert start.tolist() == [0] * 7 and len(items) == 0 and np.isinf(zmin).all()


def plane_scene(z=0.0, refl_idx=0, size=50.0):
    """Two triangles forming a horizontal square at height z, centred on the origin."""
    v = np.array([[-size, -size, z], [size, -size, z], [size, size, z], [-size, size, z]])
    tri_v = np.array([[v[0], v[1], v[2]], [v[0], v[2], v[3]]])
    v0, e1, e2 = tri_v[:, 0], tri_v[:, 1] - tri_v[:, 0], tri_v[:, 2] - tri_v[:, 0]
    n = np.cross(e1, e2)
    n /= np.linalg.norm(n, axis=1)[:, None]
    boxes = np.column_stack([tri_v[:, :, :2].min(1), tri_v[:, :, :2].max(1)])
    zr = np.column_stack([tri_v[:, :, 2].min(1), tri_v[:, :, 2].max(1)])
    x0, cell, nn = -size - 1, 2.0, int(np.ceil((2 * size + 2) / 2.0))
    start, items, zmin, zmax = build_grid(boxes, zr, x0, x0, cell, nn, nn, tri_xy=tri_v[:, :, :2])
    from hdmap.kernels.raycast import coarse_ranges

    knx, kny, kz0, kz1 = coarse_ranges(zmin, zmax, nn, nn, 4)
    nb = 2
    return dict(
        gp=np.array([x0, x0, cell, nn, nn, zr[:, 1].max(), 4, knx, kny, 2, 0], float), cstart=start, citems=items,
        cz=np.column_stack([zmin, zmax]), kz=np.column_stack([kz0, kz1]), tri=np.hstack([v0, e1, e2]), tri_n=n,
        tri_mat=np.array([refl_idx, refl_idx], np.int32), tri_road=np.array([-1, -1], np.int32),
        tri_st=np.zeros((2, 3, 2)), cyl=np.zeros((0, 5)), cyl_mat=np.zeros(0, np.int32), ell=np.zeros((0, 7)),
        ell_mat=np.zeros(0, np.int32), mat_refl=np.array([0.2]), mat_class=np.array([2], np.uint8),
        mat_texture=np.array([0.0]), mat_ground=np.array([True]), mat_rough=np.array([0.0]), bin_size=2.0, road_bin0=np.zeros(1, np.int64),
        road_nbin=np.ones(1, np.int64), paint_start=np.zeros(nb, np.int64), paint_items=np.zeros(0, np.int32),
        paint_quad=np.zeros((0, 4, 2)), paint_refl=np.zeros(0), paint_wear=np.zeros(0),
        decal_start=np.zeros(nb, np.int64), decal_items=np.zeros(0, np.int32), decal_kind=np.zeros(0, np.int64),
        decal_par=np.zeros((0, 8)), decal_quad=np.zeros((0, 4, 2)), decal_refl=np.zeros(0),
    )


def quiet_physics(gain=10_000.0, exponent=2.0):
    # gain, r_ref, r_near, incidence exp, speckle, additive, noise rate, high-noise height, porous loss, sep, range exp
    return np.array([gain, 10.0, 0.1, 1.0, 0.0, 0.0, 0.0, 5.0, 0.5, 0.8, exponent])


def test_profile_scanner_over_a_plane_hits_it_exactly():
    scene = plane_scene(z=0.0)
    # the vehicle stands still 2 m above the plane, heading east; a profile scanner (axis forward)
    traj = pose_matrices(np.array([[0.0, 0.0, 2.0], [0.0, 0.0, 2.0]]), np.zeros(2), np.zeros(2), np.zeros(2))
    scanner = np.array([0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 100.0, 0.5, 0.0, 0.0])  # no range noise
    n = 3600
    pts = cast_rays(scene, scanner, np.zeros(0), traj, 1.0, t0=0.0, ray0=0, n_rays=n, rate=n, seed=1, stream=0,
                    phys=quiet_physics())
    # pulses point at angle phi in the y-z plane: downward half (phi in (pi, 2pi)) reaches the plane within 100 m
    assert np.allclose(pts["xyz"][:, 2], 0.0, atol=1e-9)
    assert np.allclose(pts["xyz"][:, 0], 0.0, atol=1e-9)  # the scan plane is x = 0
    phi = pts["angle"]
    np.testing.assert_allclose(pts["xyz"][:, 1], 2.0 * np.cos(phi) / -np.sin(phi), atol=1e-9)
    np.testing.assert_allclose(pts["range"], 2.0 / -np.sin(phi), rtol=1e-12)
    # intensity = gain * reflectance * cos(incidence) * (r_ref / r)^2, rounded
    expected = 10_000.0 * 0.2 * (-np.sin(phi)) * (10.0 / pts["range"]) ** 2
    np.testing.assert_allclose(pts["intensity"], np.minimum(np.round(expected), 65535), atol=0.51)
    assert (pts["cls"] == 2).all() and (pts["ret"] == 1).all() and (pts["nret"] == 1).all()
    # every downward pulse steeper than atan(2 m / 50 m) hits the 100 m square
    assert len(pts["t"]) == pytest.approx(n / 2 * (1 - 2 * np.degrees(np.arctan(2 / 50)) / 180), abs=2)


def test_chunks_give_the_same_pulses():
    scene = plane_scene()
    traj = pose_matrices(np.column_stack([np.linspace(0, 10, 101), np.zeros(101), np.full(101, 2.0)]),
                         np.zeros(101), np.zeros(101), np.zeros(101))
    scanner = np.array([0, -0.8, 0.4, 0.3, 0.7, 0.1, 250.0, 100.0, 1.5, 0.005, 0.0])
    phys = quiet_physics()
    phys[4], phys[5], phys[6] = 0.1, 20.0, 0.01  # speckle, additive noise, spurious returns
    whole = cast_rays(scene, scanner, np.zeros(0), traj, 0.01, t0=0.0, ray0=0, n_rays=20_000, rate=1e4, seed=3,
                      stream=2, phys=phys)
    parts = [cast_rays(scene, scanner, np.zeros(0), traj, 0.01, t0=0.0, ray0=a, n_rays=b - a, rate=1e4, seed=3,
                       stream=2, phys=phys) for a, b in ((0, 7001), (7001, 13000), (13000, 20_000))]
    for key in whole:
        np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), whole[key], err_msg=key)
    assert (whole["cls"] == 7).sum() > 0  # multipath below the plane is low noise


@settings(deadline=None, max_examples=50)
@given(st.lists(st.lists(st.integers(0, 20), max_size=30), min_size=1, max_size=4))
def test_time_order_is_a_stable_merge(lists):
    arrays = [np.sort(np.array(v, dtype=np.float64)) for v in lists]
    order = time_order(arrays)
    ref = np.argsort(np.concatenate(arrays), kind="stable")
    np.testing.assert_array_equal(order, ref)

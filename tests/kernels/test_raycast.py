"""Ray-casting kernels against slow references and exact geometry."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from hdmap.kernels.raycast import boxes_in_sweep, build_grid, cast_rays, merge_batch, pose_matrices, time_order


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


def test_boxes_off_the_scan_plane_are_culled_and_the_points_stay_the_same():
    """Cars that no pulse of a batch can reach are dropped; the points are exactly those cast with every car."""
    scene = plane_scene()
    n = 201
    x = np.linspace(0, 20, n)  # 10 m/s east for 2 s
    traj = pose_matrices(np.column_stack([x, np.zeros(n), np.full(n, 2.0)]), np.zeros(n), np.zeros(n),
                         np.linspace(0, 0.3, n))  # turning left
    # axis yawed 40 degrees: the scan plane is oblique to the road, as on the survey vehicle
    scanner = np.array([0, -0.8, 0.45, 0.35, np.radians(40), 0.0, 250.0, 100.0, 1.5, 0.0, 0.0])
    rng = np.random.default_rng(4)
    m = 40
    # [cx, cy, cz, vx, vy, hx, hy, hz, yaw, t_ref]: cars all around, some driving, at batch mid-time 0.55 s
    boxes = np.column_stack([rng.uniform(-30, 50, m), rng.uniform(-30, 30, m), np.full(m, 0.8),
                             rng.uniform(-20, 20, m), rng.uniform(-3, 3, m), np.full(m, 2.2), np.full(m, 0.9),
                             np.full(m, 0.75), rng.uniform(0, 6.3, m), np.full(m, 0.55)])
    rate = 4e4
    r0, r1 = int(0.5 * rate), int(0.6 * rate)
    kept = boxes_in_sweep(boxes, scanner, traj, 0.01, r0 / rate, r1 / rate)
    assert 0 < len(kept) < m // 2
    common = dict(t0=0.0, ray0=r0, n_rays=r1 - r0, rate=rate, seed=1, stream=0, phys=quiet_physics())
    every = cast_rays(scene, scanner, np.zeros(0), traj, 0.01, boxes=boxes, box_mat=np.zeros(m, np.int32),
                      **common)
    some = cast_rays(scene, scanner, np.zeros(0), traj, 0.01, boxes=kept, box_mat=np.zeros(len(kept), np.int32),
                     **common)
    assert (every["xyz"][:, 2] > 0.1).sum() > 20  # cars were hit (the plane is at z = 0)
    for key in every:
        np.testing.assert_array_equal(some[key], every[key], err_msg=key)
    multibeam = scanner.copy()
    multibeam[0] = 1
    assert len(boxes_in_sweep(boxes, multibeam, traj, 0.01, r0 / rate, r1 / rate)) == m


def test_merge_batch_orders_by_time_and_encodes_angles_as_las():
    rng = np.random.default_rng(2)

    def part(n, si):
        return {"xyz": rng.normal(size=(n, 3)), "t": np.sort(rng.integers(0, 50, n)).astype(float),
                "intensity": rng.integers(0, 65535, n).astype(np.uint16), "cls": rng.integers(0, 20, n).astype(np.uint8),
                "ret": np.ones(n, np.uint8), "nret": np.ones(n, np.uint8), "scanner": np.full(n, si, np.uint8),
                "angle": rng.uniform(-10, 10, n)}

    parts = [part(300, 0), part(250, 1), part(5, 2)]
    parts[0]["angle"][:4] = [np.pi, -np.pi, 3 * np.pi, 0.0]  # edges of the range and one far outside
    b = merge_batch(parts, 1000.5)
    order = np.argsort(np.concatenate([p["t"] for p in parts]), kind="stable")
    cat = {k: np.concatenate([p[k] for p in parts])[order] for k in parts[0]}
    np.testing.assert_array_equal(b["xyz"], cat["xyz"])
    np.testing.assert_array_equal(b["gps_time"], 1000.5 + cat["t"])
    for k in ("intensity", "cls", "ret", "nret", "scanner"):
        np.testing.assert_array_equal(b[k], cat[k], err_msg=k)
    ref = np.clip(np.round(np.degrees((cat["angle"] + np.pi) % (2 * np.pi) - np.pi) / 0.006), -30000, 30000)
    np.testing.assert_array_equal(b["scan_angle"], ref.astype(np.int16))
    assert b["scan_angle"].dtype == np.int16

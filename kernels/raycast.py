"""Ray casting of a mobile-mapping scanner against a street scene.

The scene is flat arrays (built by ``hdmap.sim.scene``):

* triangles (roads, curbs, sidewalks, buildings, cars, signs, guard rails),
  each with a material and, for road surfaces, the road coordinates (s, t) of
  its vertices so that paint and surface decals can be looked up exactly;
* vertical cylinders (poles, tree trunks);
* axis-aligned ellipsoids that are *porous* (tree crowns): a ray entering one
  is stopped after an exponentially distributed depth, or passes through;
* oriented boxes moving with constant velocity (traffic), given per chunk.

Static items are indexed by a uniform 2D grid (CSR lists per cell with the
z-range of their contents); a ray walks the grid cells it crosses (2D DDA on
the 3D ray parameter) and tests only cells whose z-range it can hit.

Randomness comes from a counter-based hash of (seed, ray id, return, purpose),
so results are identical for any thread count and any chunking.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import jit, jit_parallel

__all__ = ["build_grid", "coarse_ranges", "pose_matrices", "cast_rays", "new_buffers", "time_order", "MAX_RETURNS", "OUT_SLOTS", "SCENE_KEYS"]

MAX_RETURNS = 3
OUT_SLOTS = MAX_RETURNS + 1  # + one noise return

# item kinds
_TRI = 0
_CYL = 1
_ELL = 2
_BOX = 3

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


# --------------------------------------------------------------------------
# counter-based random numbers
# --------------------------------------------------------------------------
@jit
def _mix(x):
    x = (x ^ (x >> np.uint64(30))) * _M2
    x = (x ^ (x >> np.uint64(27))) * _M3
    return x ^ (x >> np.uint64(31))


@jit
def _u01(seed, a, b, c):
    """Uniform [0, 1) from four integers."""
    h = _mix(np.uint64(seed) * _M1 + np.uint64(a))
    h = _mix(h ^ (np.uint64(b) * _M1 + np.uint64(c)))
    return (h >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@jit
def _normal(seed, a, b, c):
    """One standard normal (Box-Muller)."""
    z0, z1 = _normal2(seed, a, b, c)
    return z0


@jit
def _normal2(seed, a, b, c):
    """Two independent standard normals from one Box-Muller transform."""
    u1 = _u01(seed, a, b, c * 2 + 1)
    u2 = _u01(seed, a, b, c * 2 + 2)
    if u1 < 1e-300:
        u1 = 1e-300
    r = np.sqrt(-2.0 * np.log(u1))
    return r * np.cos(2.0 * np.pi * u2), r * np.sin(2.0 * np.pi * u2)


@jit
def _lattice(seed, ix, iy):
    return _u01(seed, np.uint64(ix + 1_000_000_000), np.uint64(iy + 1_000_000_000), 7)


@jit
def _value_noise(seed, x, y, scale):
    """Smooth noise in [0, 1] on a lattice of *scale* metres (bilinear, smoothstep)."""
    gx = x / scale
    gy = y / scale
    ix = np.int64(np.floor(gx))
    iy = np.int64(np.floor(gy))
    fx = gx - ix
    fy = gy - iy
    fx = fx * fx * (3 - 2 * fx)
    fy = fy * fy * (3 - 2 * fy)
    a = _lattice(seed, ix, iy)
    b = _lattice(seed, ix + 1, iy)
    c = _lattice(seed, ix, iy + 1)
    d = _lattice(seed, ix + 1, iy + 1)
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


# --------------------------------------------------------------------------
# grid
# --------------------------------------------------------------------------
def build_grid(boxes_xy: np.ndarray, zranges: np.ndarray, x0: float, y0: float, cell: float, nx: int, ny: int,
               tri_xy: np.ndarray | None = None):
    """CSR cell lists for items with xy bounding boxes.

    Parameters
    ----------
    boxes_xy : (n, 4) float64
        ``xmin, ymin, xmax, ymax`` per item (grid-local metres).
    zranges : (n, 2) float64
        ``zmin, zmax`` per item.
    tri_xy : (m, 3, 2) float64, optional
        The first m items are triangles with these xy corners: they are listed
        only in the cells they really overlap (separating-axis test), not in
        every cell of their bounding box. Long walls and roofs seen edge-on
        then cost rays nothing where they are not.

    Returns
    -------
    start : (nx*ny + 1,) int64, items : (k,) int32, zmin, zmax : (nx*ny,) float64
    """
    boxes_xy = np.ascontiguousarray(boxes_xy, dtype=np.float64)
    zranges = np.ascontiguousarray(zranges, dtype=np.float64)
    if tri_xy is None:
        tri_xy = np.zeros((0, 3, 2))
    tri_xy = np.ascontiguousarray(tri_xy, dtype=np.float64)
    return _build_grid(boxes_xy, zranges, tri_xy, float(x0), float(y0), float(cell), int(nx), int(ny))


@jit
def _tri_overlaps_cell(tri, cx0, cy0, cell):
    """2D separating-axis test of a triangle against the square [cx0, cx0+cell] x [cy0, cy0+cell]."""
    pad = 1e-9
    for k in range(3):
        ax = -(tri[(k + 1) % 3, 1] - tri[k, 1])
        ay = tri[(k + 1) % 3, 0] - tri[k, 0]
        if ax == 0.0 and ay == 0.0:
            continue
        tmin = np.inf
        tmax = -np.inf
        for m in range(3):
            p = tri[m, 0] * ax + tri[m, 1] * ay
            tmin = min(tmin, p)
            tmax = max(tmax, p)
        bmin = np.inf
        bmax = -np.inf
        for qx in (cx0, cx0 + cell):
            for qy in (cy0, cy0 + cell):
                p = qx * ax + qy * ay
                bmin = min(bmin, p)
                bmax = max(bmax, p)
        scale = abs(ax) + abs(ay)
        if tmax < bmin - pad * scale or bmax < tmin - pad * scale:
            return False
    return True


@jit
def _item_cells(i, boxes, tri_xy, x0, y0, cell, nx, ny, out):
    """Cells overlapped by item i; writes cell ids to out, returns their count."""
    i0 = max(int(np.floor((boxes[i, 0] - x0) / cell)), 0)
    j0 = max(int(np.floor((boxes[i, 1] - y0) / cell)), 0)
    i1 = min(int(np.floor((boxes[i, 2] - x0) / cell)), nx - 1)
    j1 = min(int(np.floor((boxes[i, 3] - y0) / cell)), ny - 1)
    k = 0
    is_tri = i < tri_xy.shape[0]
    for a in range(i0, i1 + 1):
        for b in range(j0, j1 + 1):
            if is_tri and (i1 > i0 or j1 > j0):
                if not _tri_overlaps_cell(tri_xy[i], x0 + a * cell, y0 + b * cell, cell):
                    continue
            if k < out.shape[0]:
                out[k] = a * ny + b
            k += 1
    return k


@jit
def _build_grid(boxes, zr, tri_xy, x0, y0, cell, nx, ny):
    n = boxes.shape[0]
    ncell = nx * ny
    counts = np.zeros(ncell + 1, np.int64)
    buf = np.empty(64, np.int64)
    for i in range(n):
        k = _item_cells(i, boxes, tri_xy, x0, y0, cell, nx, ny, buf)
        if k > buf.shape[0]:
            buf = np.empty(2 * k, np.int64)
            k = _item_cells(i, boxes, tri_xy, x0, y0, cell, nx, ny, buf)
        for m in range(k):
            counts[buf[m] + 1] += 1
    start = np.cumsum(counts)
    fill = start[:-1].copy()
    items = np.empty(start[-1], np.int32)
    zmin = np.full(ncell, np.inf)
    zmax = np.full(ncell, -np.inf)
    for i in range(n):
        k = _item_cells(i, boxes, tri_xy, x0, y0, cell, nx, ny, buf)
        if k > buf.shape[0]:
            buf = np.empty(2 * k, np.int64)
            k = _item_cells(i, boxes, tri_xy, x0, y0, cell, nx, ny, buf)
        for m in range(k):
            c = buf[m]
            items[fill[c]] = i
            fill[c] += 1
            if zr[i, 0] < zmin[c]:
                zmin[c] = zr[i, 0]
            if zr[i, 1] > zmax[c]:
                zmax[c] = zr[i, 1]
    return start, items, zmin, zmax


def coarse_ranges(zmin: np.ndarray, zmax: np.ndarray, nx: int, ny: int, factor: int):
    """z-range of blocks of factor x factor cells (empty blocks get an empty range)."""
    knx = -(-nx // factor)
    kny = -(-ny // factor)
    a = np.full((knx * factor, kny * factor), np.inf)
    b = np.full((knx * factor, kny * factor), -np.inf)
    a[:nx, :ny] = zmin.reshape(nx, ny)
    b[:nx, :ny] = zmax.reshape(nx, ny)
    kz0 = a.reshape(knx, factor, kny, factor).min(axis=(1, 3)).ravel()
    kz1 = b.reshape(knx, factor, kny, factor).max(axis=(1, 3)).ravel()
    return knx, kny, np.ascontiguousarray(kz0), np.ascontiguousarray(kz1)


# --------------------------------------------------------------------------
# primitive intersections
# --------------------------------------------------------------------------
@jit(inline="always")
def _hit_triangle(ox, oy, oz, dx, dy, dz, T, i, tmin, tmax):
    """Moeller-Trumbore against triangle i of T (n, 9) = vertex 0, edge 1, edge 2: (t, u, v) or t = -1."""
    e10 = T[i, 3]
    e11 = T[i, 4]
    e12 = T[i, 5]
    e20 = T[i, 6]
    e21 = T[i, 7]
    e22 = T[i, 8]
    px = dy * e22 - dz * e21
    py = dz * e20 - dx * e22
    pz = dx * e21 - dy * e20
    det = e10 * px + e11 * py + e12 * pz
    if -1e-12 < det < 1e-12:
        return -1.0, 0.0, 0.0
    inv = 1.0 / det
    sx = ox - T[i, 0]
    sy = oy - T[i, 1]
    sz = oz - T[i, 2]
    u = (sx * px + sy * py + sz * pz) * inv
    if u < 0.0 or u > 1.0:
        return -1.0, 0.0, 0.0
    qx = sy * e12 - sz * e11
    qy = sz * e10 - sx * e12
    qz = sx * e11 - sy * e10
    v = (dx * qx + dy * qy + dz * qz) * inv
    if v < 0.0 or u + v > 1.0:
        return -1.0, 0.0, 0.0
    t = (e20 * qx + e21 * qy + e22 * qz) * inv
    if t < tmin or t > tmax:
        return -1.0, 0.0, 0.0
    return t, u, v


@jit(inline="always")
def _hit_cylinder(ox, oy, oz, dx, dy, dz, C, j, tmin, tmax):
    """Side of vertical cylinder j (cx, cy, z0, z1, r); returns t or -1."""
    fx = ox - C[j, 0]
    fy = oy - C[j, 1]
    r = C[j, 4]
    z0 = C[j, 2]
    z1 = C[j, 3]
    a = dx * dx + dy * dy
    if a < 1e-14:
        return -1.0
    b = fx * dx + fy * dy
    cc = fx * fx + fy * fy - r * r
    disc = b * b - a * cc
    if disc < 0:
        return -1.0
    sq = np.sqrt(disc)
    t = (-b - sq) / a
    if t >= tmin and t <= tmax:
        z = oz + t * dz
        if z >= z0 and z <= z1:
            return t
    t = (-b + sq) / a
    if t >= tmin and t <= tmax:
        z = oz + t * dz
        if z >= z0 and z <= z1:
            return t
    return -1.0


@jit(inline="always")
def _ellipsoid_span(ox, oy, oz, dx, dy, dz, E, j):
    """Entry and exit t of a ray through axis-aligned ellipsoid j of E (cx, cy, cz, rx, ry, rz, density)."""
    px = (ox - E[j, 0]) / E[j, 3]
    py = (oy - E[j, 1]) / E[j, 4]
    pz = (oz - E[j, 2]) / E[j, 5]
    qx = dx / E[j, 3]
    qy = dy / E[j, 4]
    qz = dz / E[j, 5]
    a = qx * qx + qy * qy + qz * qz
    b = px * qx + py * qy + pz * qz
    c = px * px + py * py + pz * pz - 1.0
    disc = b * b - a * c
    if disc <= 0:
        return 1.0, -1.0
    sq = np.sqrt(disc)
    return (-b - sq) / a, (-b + sq) / a


@jit
def _slab(lo, ld, h, t0, t1, axis_in, k, sign_in):
    """One slab of a box test: returns updated (t0, t1, axis, sign, ok)."""
    if abs(ld) < 1e-12:
        if lo < -h or lo > h:
            return t0, t1, axis_in, sign_in, False
        return t0, t1, axis_in, sign_in, True
    ta = (-h - lo) / ld
    tb = (h - lo) / ld
    s = -1.0
    if ta > tb:
        ta, tb = tb, ta
        s = 1.0
    axis = axis_in
    sign = sign_in
    if ta > t0:
        t0 = ta
        axis = k
        sign = s
    if tb < t1:
        t1 = tb
    return t0, t1, axis, sign, t0 <= t1


@jit(inline="always")
def _hit_box(ox, oy, oz, dx, dy, dz, B, k, tnow, tmin, tmax):
    """Oriented box k moving with constant velocity.

    B[k] = (cx, cy, cz, vx, vy, hx, hy, hz, yaw, t_ref). Returns (t, face axis 0/1/2, sign) or t = -1.
    """
    cx = B[k, 0] + B[k, 3] * (tnow - B[k, 9])
    cy = B[k, 1] + B[k, 4] * (tnow - B[k, 9])
    cs = np.cos(B[k, 8])
    sn = np.sin(B[k, 8])
    rx = ox - cx
    ry = oy - cy
    t0, t1, axis, sign, ok = _slab(rx * cs + ry * sn, dx * cs + dy * sn, B[k, 5], tmin, tmax, -1, 0, 0.0)
    if not ok:
        return -1.0, -1, 0.0
    t0, t1, axis, sign, ok = _slab(-rx * sn + ry * cs, -dx * sn + dy * cs, B[k, 6], t0, t1, axis, 1, sign)
    if not ok:
        return -1.0, -1, 0.0
    t0, t1, axis, sign, ok = _slab(oz - B[k, 2], dz, B[k, 7], t0, t1, axis, 2, sign)
    if not ok or axis < 0:
        return -1.0, -1, 0.0
    return t0, axis, sign


# --------------------------------------------------------------------------
# surface appearance on roads: paint and decals in (s, t)
# --------------------------------------------------------------------------
@jit(inline="always")
def _in_quad(s, t, Q, i):
    """Point (s, t) inside convex quad Q[i] (4, 2), corners counter-clockwise."""
    for k in range(4):
        a0 = Q[i, k, 0]
        a1 = Q[i, k, 1]
        b0 = Q[i, (k + 1) % 4, 0]
        b1 = Q[i, (k + 1) % 4, 1]
        if (b0 - a0) * (t - a1) - (b1 - a1) * (s - a0) < -1e-12:
            return False
    return True


@jit(inline="always")
def _road_appearance(road, s, t, x, y, seed, ray, base_refl,
                     bin_size, road_bin0, road_nbin, paint_start, paint_items, paint_quad, paint_refl, paint_wear,
                     decal_start, decal_items, decal_kind, decal_par, decal_quad, decal_refl):
    """Reflectance at a road-surface point and whether it is paint. Returns (refl, is_paint, paint_id)."""
    nb = road_nbin[road]
    b = int(np.floor(s / bin_size))
    if b < 0:
        b = 0
    if b >= nb:
        b = nb - 1
    cell = road_bin0[road] + b
    # paint first: paint lies on top of any decal
    for k in range(paint_start[cell], paint_start[cell + 1]):
        p = paint_items[k]
        if _in_quad(s, t, paint_quad, p):
            wear = paint_wear[p]
            if wear > 0:
                # worn paint: missing where 10 cm noise falls below the wear level, dimmer elsewhere
                n1 = _value_noise(seed + 11, x, y, 0.12)
                if n1 < 0.6 * wear:
                    break  # bare asphalt shows through
                return paint_refl[p] * (1.0 - 0.55 * wear), True, p
            return paint_refl[p], True, p
    refl = base_refl
    for k in range(decal_start[cell], decal_start[cell + 1]):
        d = decal_items[k]
        kind = decal_kind[d]
        inside = False
        if kind == 0:  # disc: s, t, r
            inside = (s - decal_par[d, 0]) ** 2 + (t - decal_par[d, 1]) ** 2 <= decal_par[d, 2] ** 2
        elif kind == 1:  # ellipse: s, t, a, b, angle; edge roughened by noise
            cs = np.cos(decal_par[d, 4])
            sn = np.sin(decal_par[d, 4])
            u = ((s - decal_par[d, 0]) * cs + (t - decal_par[d, 1]) * sn) / decal_par[d, 2]
            v = (-(s - decal_par[d, 0]) * sn + (t - decal_par[d, 1]) * cs) / decal_par[d, 3]
            inside = u * u + v * v <= 0.75 + 0.5 * _value_noise(seed + 23 + d, x, y, 0.4)
        else:  # convex quad
            inside = _in_quad(s, t, decal_quad, d)
        if inside:
            refl = decal_refl[d]
    return refl, False, -1


# --------------------------------------------------------------------------
# the traversal
# --------------------------------------------------------------------------
@jit
def _axis_init(g, d, idx, cell):
    """DDA state along one axis: (step, t of the next boundary, t between boundaries)."""
    if d > 1e-15:
        return 1, ((idx + 1) * cell - g) / d, cell / d
    if d < -1e-15:
        return -1, (idx * cell - g) / d, -cell / d
    return 0, np.inf, np.inf


@jit(inline="always")
def _clip_axis(g, d, w, t_lo, t_hi):
    """Narrow the ray's (t_lo, t_hi) to where its coordinate g + t d lies in [0, w); an empty span
    (t_lo > t_hi) when a ray parallel to the axis runs outside."""
    if abs(d) < 1e-15:
        if g < 0 or g >= w:
            return np.inf, -np.inf
        return t_lo, t_hi
    ta = (0 - g) / d
    tb = (w - g) / d
    if ta > tb:
        ta, tb = tb, ta
    return _fmax(t_lo, ta), _fmin(t_hi, tb)


@jit(inline="always")
def _fmin(a, b):
    return a if a < b else b


@jit(inline="always")
def _fmax(a, b):
    return a if a > b else b


@jit
def _nearest(ox, oy, oz, dx, dy, dz, tmin, tmax, tnow, seed, ray, ret, gp, cstart, citems, cz, kz, tri, cyl, ell,
             boxes):
    """Nearest hit in (tmin, tmax]: returns (t, kind, index, u, v, axis, sign).

    gp = (gx0, gy0, cell, nx, ny, zcap, cf, knx, kny, n_tri, n_cyl) as float64; cz/kz are the
    (zmin, zmax) of fine cells and coarse blocks; tri (n, 9), cyl (n, 5), ell (n, 7), boxes (n, 10).
    Arrays are passed as plain arguments (borrowed, no reference counting) and never as tuples.

    Two-level 2D DDA on the 3D ray parameter: coarse blocks of cf x cf cells
    whose z-range the ray cannot touch are skipped whole; inside the others
    the fine cells are walked and their items tested.
    """
    gx0 = gp[0]
    gy0 = gp[1]
    cell = gp[2]
    nx = int(gp[3])
    ny = int(gp[4])
    zcap = gp[5]
    cf = int(gp[6])
    knx = int(gp[7])
    kny = int(gp[8])
    n_tri = int(gp[9])
    n_cyl = int(gp[10])
    best_t = tmax
    best_kind = -1
    best_i = -1
    best_u = 0.0
    best_v = 0.0
    best_axis = -1
    best_sign = 0.0
    # moving boxes first (few): they bound the traversal
    for k in range(boxes.shape[0]):
        # bounding sphere of the box at this time: skip it cheaply when the ray passes wide
        qx = boxes[k, 0] + boxes[k, 3] * (tnow - boxes[k, 9]) - ox
        qy = boxes[k, 1] + boxes[k, 4] * (tnow - boxes[k, 9]) - oy
        qz = boxes[k, 2] - oz
        along = qx * dx + qy * dy + qz * dz
        rad2 = boxes[k, 5] ** 2 + boxes[k, 6] ** 2 + boxes[k, 7] ** 2
        if along < -np.sqrt(rad2) or qx * qx + qy * qy + qz * qz - along * along > rad2:
            continue
        th, axis, sign = _hit_box(ox, oy, oz, dx, dy, dz, boxes, k, tnow, tmin, best_t)
        if th > 0:
            best_t = th
            best_kind = _BOX
            best_i = k
            best_axis = axis
            best_sign = sign
    gx = ox - gx0
    gy = oy - gy0
    # clip the ray to the grid box
    t_lo = tmin
    t_hi = best_t
    wx = nx * cell
    wy = ny * cell
    t_lo, t_hi = _clip_axis(gx, dx, wx, t_lo, t_hi)
    t_lo, t_hi = _clip_axis(gy, dy, wy, t_lo, t_hi)
    if t_lo > t_hi:
        return best_t, best_kind, best_i, best_u, best_v, best_axis, best_sign
    kcell = cell * cf
    tc_enter = t_lo
    px = gx + dx * (tc_enter + 1e-9)
    py = gy + dy * (tc_enter + 1e-9)
    kix = _fmin(_fmax(int(np.floor(px / kcell)), 0), knx - 1)
    kiy = _fmin(_fmax(int(np.floor(py / kcell)), 0), kny - 1)
    ksx, ktx, kdx = _axis_init(gx, dx, kix, kcell)
    ksy, kty, kdy = _axis_init(gy, dy, kiy, kcell)
    while True:
        tc_exit = _fmin(_fmin(ktx, kty), t_hi)
        kc = kix * kny + kiy
        za = oz + dz * tc_enter
        zb = oz + dz * tc_exit
        if _fmax(za, zb) >= kz[kc, 0] - 1e-6 and _fmin(za, zb) <= kz[kc, 1] + 1e-6:
            # walk the fine cells of this block
            t_enter = tc_enter
            px = gx + dx * (t_enter + 1e-9)
            py = gy + dy * (t_enter + 1e-9)
            ix0 = kix * cf
            iy0 = kiy * cf
            ix1 = _fmin(ix0 + cf, nx) - 1
            iy1 = _fmin(iy0 + cf, ny) - 1
            ix = _fmin(_fmax(int(np.floor(px / cell)), ix0), ix1)
            iy = _fmin(_fmax(int(np.floor(py / cell)), iy0), iy1)
            sx, tx, tdx = _axis_init(gx, dx, ix, cell)
            sy, ty, tdy = _axis_init(gy, dy, iy, cell)
            while True:
                t_exit = _fmin(_fmin(tx, ty), tc_exit)
                c = ix * ny + iy
                if cstart[c + 1] > cstart[c]:
                    z_a = oz + dz * t_enter
                    z_b = oz + dz * t_exit
                    if _fmax(z_a, z_b) >= cz[c, 0] - 1e-6 and _fmin(z_a, z_b) <= cz[c, 1] + 1e-6:
                        for k in range(cstart[c], cstart[c + 1]):
                            item = citems[k]
                            if item < n_tri:
                                th, u, v = _hit_triangle(ox, oy, oz, dx, dy, dz, tri, item, tmin, best_t)
                                if th > 0:
                                    best_t = th
                                    best_kind = _TRI
                                    best_i = item
                                    best_u = u
                                    best_v = v
                            elif item < n_tri + n_cyl:
                                j = item - n_tri
                                th = _hit_cylinder(ox, oy, oz, dx, dy, dz, cyl, j, tmin, best_t)
                                if th > 0:
                                    best_t = th
                                    best_kind = _CYL
                                    best_i = j
                            else:
                                j = item - n_tri - n_cyl
                                ta, tb = _ellipsoid_span(ox, oy, oz, dx, dy, dz, ell, j)
                                if tb > tmin and ta < best_t:
                                    t_in = _fmax(ta, tmin)
                                    depth = -np.log(1.0 - _u01(seed, ray, ret * 1000 + 3, j)) / ell[j, 6]
                                    th = t_in + depth
                                    if th < tb and th < best_t:
                                        best_t = th
                                        best_kind = _ELL
                                        best_i = j
                if best_t <= t_exit + 1e-9:
                    return best_t, best_kind, best_i, best_u, best_v, best_axis, best_sign
                if t_exit >= tc_exit:
                    break
                if tx < ty:
                    ix += sx
                    t_enter = tx
                    tx += tdx
                else:
                    iy += sy
                    t_enter = ty
                    ty += tdy
                if ix < ix0 or ix > ix1 or iy < iy0 or iy > iy1:
                    break
        if best_t <= tc_exit + 1e-9 or tc_exit >= t_hi:
            break
        if dz > 0 and oz + dz * tc_exit > zcap:  # above everything in the scene, going up
            break
        if ktx < kty:
            kix += ksx
            tc_enter = ktx
            ktx += kdx
        else:
            kiy += ksy
            tc_enter = kty
            kty += kdy
        if kix < 0 or kix >= knx or kiy < 0 or kiy >= kny:
            break
    return best_t, best_kind, best_i, best_u, best_v, best_axis, best_sign


@jit(inline="always")
def _sample_at(t, t0, dt, n):
    """Samples (i, i+1) around time t in a series starting at t0 with step dt, and the weight of i+1.

    Times before the first or after the last sample clamp to the ends.
    """
    f = (t - t0) / dt
    i = int(np.floor(f))
    if i < 0:
        return 0, 1, 0.0
    if i >= n - 1:
        return n - 2, n - 1, 1.0
    return i, i + 1, f - i


@jit(inline="always")
def _pose(t, traj_t0, traj_dt, traj):
    """Pose at time t from samples (x, y, z, R00 .. R22) at uniform steps: linear interpolation.

    R (row-major) turns body vectors (x forward, y left, z up) into the world. Over one
    10 ms step the attitude changes by ~1e-4 rad, so the interpolated matrix is
    orthonormal to ~1e-8.
    """
    i, j, w = _sample_at(t, traj_t0, traj_dt, traj.shape[0])
    return (traj[i, 0] + w * (traj[j, 0] - traj[i, 0]), traj[i, 1] + w * (traj[j, 1] - traj[i, 1]),
            traj[i, 2] + w * (traj[j, 2] - traj[i, 2]), traj[i, 3] + w * (traj[j, 3] - traj[i, 3]),
            traj[i, 4] + w * (traj[j, 4] - traj[i, 4]), traj[i, 5] + w * (traj[j, 5] - traj[i, 5]),
            traj[i, 6] + w * (traj[j, 6] - traj[i, 6]), traj[i, 7] + w * (traj[j, 7] - traj[i, 7]),
            traj[i, 8] + w * (traj[j, 8] - traj[i, 8]), traj[i, 9] + w * (traj[j, 9] - traj[i, 9]),
            traj[i, 10] + w * (traj[j, 10] - traj[i, 10]), traj[i, 11] + w * (traj[j, 11] - traj[i, 11]))


def pose_matrices(xyz: np.ndarray, roll: np.ndarray, pitch: np.ndarray, yaw: np.ndarray,
                  error: np.ndarray | None = None) -> np.ndarray:
    """(n, 15) kernel pose samples: position, R = Rz(yaw) Ry(-pitch) Rx(roll) row-major, georeferencing error.

    The error (n, 3), e.g. GNSS drift, is added to the coordinates of every point
    measured at that time (rays are cast from the true pose).

    Positive roll lifts the left side, positive pitch lifts the nose, yaw is the
    mathematical angle of the forward axis (counter-clockwise from east).
    """
    cr, sr = np.cos(roll), np.sin(roll)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    n = len(xyz)
    Rx = np.zeros((n, 3, 3))
    Rx[:, 0, 0] = 1
    Rx[:, 1, 1], Rx[:, 1, 2], Rx[:, 2, 1], Rx[:, 2, 2] = cr, -sr, sr, cr
    P = np.zeros((n, 3, 3))
    P[:, 1, 1] = 1
    P[:, 0, 0], P[:, 0, 2], P[:, 2, 0], P[:, 2, 2] = cp, -sp, sp, cp
    Rz = np.zeros((n, 3, 3))
    Rz[:, 2, 2] = 1
    Rz[:, 0, 0], Rz[:, 0, 1], Rz[:, 1, 0], Rz[:, 1, 1] = cy, -sy, sy, cy
    R = Rz @ P @ Rx
    err = np.zeros((n, 3)) if error is None else np.asarray(error, dtype=np.float64)
    return np.ascontiguousarray(np.column_stack([xyz, R.reshape(n, 9), err]))


@jit(inline="always")
def _error_at(t, traj_t0, traj_dt, traj):
    """Georeferencing error (columns 12-14 of the pose samples) at time t."""
    i, j, w = _sample_at(t, traj_t0, traj_dt, traj.shape[0])
    return (traj[i, 12] + w * (traj[j, 12] - traj[i, 12]), traj[i, 13] + w * (traj[j, 13] - traj[i, 13]),
            traj[i, 14] + w * (traj[j, 14] - traj[i, 14]))


@jit_parallel
def _cast_rays(
    t0, ray0, n_rays, rate, scanner, beams, seed, stream,
    traj_t0, traj_dt, traj,
    gp, cstart, citems, cz, kz, tri, tri_n, tri_mat, tri_road, tri_st, cyl, cyl_mat, ell, ell_mat,
    boxes, box_mat,
    mat_refl, mat_class, mat_texture, mat_ground, mat_rough,
    bin_size, road_bin0, road_nbin, paint_start, paint_items, paint_quad, paint_refl, paint_wear,
    decal_start, decal_items, decal_kind, decal_par, decal_quad, decal_refl,
    phys,
    out_xyz, out_t, out_range, out_intensity, out_class, out_ret, out_nret, out_angle,
):
    """Cast pulses ray0 .. ray0+n_rays-1 of one scanner and write up to OUT_SLOTS returns per pulse.

    Pulse j is fired at ``t0 + j / rate``; everything about it (direction, noise,
    porosity) depends only on (seed, stream, j), so any chunking gives the same points.

    scanner : float64 array
        [kind, lever x, y, z, mount yaw, mount pitch, lines_per_s (profile) or rot_hz (multi-beam),
         max_range, min_range, range_noise, angle0]
    beams : float64 array of beam elevations (multi-beam only; ignored for kind 0)
    phys : float64 array
        [intensity gain, r_ref, r_near, incidence exponent, speckle sigma, additive sigma,
         noise rate, high-noise height, porous energy loss, return separation, range exponent]

    Slots of pulse i are out_*[i*OUT_SLOTS : (i+1)*OUT_SLOTS]; unused slots have out_ret == 0.
    """
    kind = int(scanner[0])
    lever0 = scanner[1]
    lever1 = scanner[2]
    lever2 = scanner[3]
    m_yaw = scanner[4]
    m_pitch = scanner[5]
    freq = scanner[6]
    max_range = scanner[7]
    min_range = scanner[8]
    range_noise = scanner[9]
    angle0 = scanner[10]
    n_beams = beams.shape[0]
    gain = phys[0]
    r_ref = phys[1]
    r_near = phys[2]
    inc_exp = phys[3]
    speckle = phys[4]
    add_sigma = phys[5]
    noise_rate = phys[6]
    high_h = phys[7]
    porous_loss = phys[8]
    sep = phys[9]
    range_exp = phys[10]
    cmy = np.cos(m_yaw)
    smy = np.sin(m_yaw)
    cmp_ = np.cos(m_pitch)
    smp = np.sin(m_pitch)
    for i in prange(n_rays):
        base = i * OUT_SLOTS
        for k in range(OUT_SLOTS):
            out_ret[base + k] = 0
        j = ray0 + i
        ray = np.uint64(stream) * np.uint64(1 << 40) + np.uint64(j)
        if kind == 0:
            t = t0 + j / rate
            x = j * (freq / rate)
            phi = 2 * np.pi * (x - np.floor(x)) + angle0
            # scanner frame: rotation axis x, beam in the y-z plane
            sx = 0.0
            sy = np.cos(phi)
            sz = np.sin(phi)
            angle = phi
        else:
            firing = j // n_beams
            beam = j % n_beams
            t = t0 + firing * n_beams / rate
            x = firing * n_beams * (freq / rate)
            az = 2 * np.pi * (x - np.floor(x)) + angle0
            el = beams[beam]
            sx = np.cos(el) * np.cos(az)
            sy = np.cos(el) * np.sin(az)
            sz = np.sin(el)
            angle = az
        # mount: pitch about y, then yaw about z (body frame)
        bx = cmp_ * sx + smp * sz
        bz = -smp * sx + cmp_ * sz
        by = sy
        mx = cmy * bx - smy * by
        my = smy * bx + cmy * by
        px, py, pz, r00, r01, r02, r10, r11, r12, r20, r21, r22 = _pose(t, traj_t0, traj_dt, traj)
        ex, ey, ez = _error_at(t, traj_t0, traj_dt, traj)
        d0 = r00 * mx + r01 * my + r02 * bz
        d1 = r10 * mx + r11 * my + r12 * bz
        d2 = r20 * mx + r21 * my + r22 * bz
        o0 = px + r00 * lever0 + r01 * lever1 + r02 * lever2
        o1 = py + r10 * lever0 + r11 * lever1 + r12 * lever2
        o2 = pz + r20 * lever0 + r21 * lever1 + r22 * lever2
        nrm = np.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
        d0 /= nrm
        d1 /= nrm
        d2 /= nrm
        tmin = min_range
        energy = 1.0
        nret = 0
        last_solid_t = -1.0
        for r in range(MAX_RETURNS):
            th, hk, hi, u, v, axis, sign = _nearest(
                o0, o1, o2, d0, d1, d2, tmin, max_range, t, seed, ray, r,
                gp, cstart, citems, cz, kz, tri, cyl, ell, boxes)
            if hk < 0:
                break
            hx = o0 + d0 * th
            hy = o1 + d1 * th
            hz = o2 + d2 * th
            cosi = 1.0
            porous = False
            cls = 1
            if hk == 0:  # triangle
                m = tri_mat[hi]
                cls = mat_class[m]
                refl = mat_refl[m]
                nxx = tri_n[hi, 0]
                nyy = tri_n[hi, 1]
                nzz = tri_n[hi, 2]
                cosi = abs(nxx * d0 + nyy * d1 + nzz * d2)
                rough = mat_rough[m]
                if rough > 0:
                    # vegetated ground (grass): the return comes from somewhere in a canopy up to
                    # `rough` metres above the surface, i.e. earlier along the ray -- but only where
                    # the ray is above vegetated ground: a grazing ray meets the verge's canopy at
                    # its edge, not over the asphalt it crossed before (halve until it is)
                    back = rough * _u01(seed, ray, r, 27) / max(cosi, 0.2)
                    above = False
                    for _ in range(6):
                        if back <= 1e-3:
                            break
                        tb, kb, ib, _u, _v, _a, _s = _nearest(
                            hx - d0 * back, hy - d1 * back, hz - d2 * back + 0.01, 0.0, 0.0, -1.0, 0.0,
                            2.0 * rough + 0.05, t, seed, ray, r, gp, cstart, citems, cz, kz, tri, cyl, ell, boxes)
                        if kb == 0 and mat_rough[tri_mat[ib]] > 0:
                            above = True
                            break
                        back *= 0.5
                    if not above:
                        back = 0.0  # no vegetated ground under the pulled-back return: it stays at the surface
                    th -= back
                    hx -= d0 * back
                    hy -= d1 * back
                    hz -= d2 * back
                tex = mat_texture[m]
                if tex > 0:
                    # patchy surface (1.5 m) plus grain (independent per point)
                    refl *= 1.0 + tex * (2.0 * _value_noise(seed + 5, hx, hy, 1.5) - 1.0)
                    refl *= 1.0 + 0.5 * tex * (2.0 * _u01(seed, ray, r, 29) - 1.0)
                rd = tri_road[hi]
                if rd >= 0:
                    w0 = 1.0 - u - v
                    s = w0 * tri_st[hi, 0, 0] + u * tri_st[hi, 1, 0] + v * tri_st[hi, 2, 0]
                    tt = w0 * tri_st[hi, 0, 1] + u * tri_st[hi, 1, 1] + v * tri_st[hi, 2, 1]
                    refl, paint, pid = _road_appearance(
                        rd, s, tt, hx, hy, seed, ray, refl,
                        bin_size, road_bin0, road_nbin, paint_start, paint_items, paint_quad, paint_refl, paint_wear,
                        decal_start, decal_items, decal_kind, decal_par, decal_quad, decal_refl)
                    if paint:
                        cls = 64
            elif hk == 1:  # cylinder
                m = cyl_mat[hi]
                cls = mat_class[m]
                refl = mat_refl[m]
                ddx = hx - cyl[hi, 0]
                ddy = hy - cyl[hi, 1]
                nn = np.sqrt(ddx * ddx + ddy * ddy) + 1e-12
                cosi = abs((ddx * d0 + ddy * d1) / nn)
            elif hk == 2:  # porous ellipsoid
                m = ell_mat[hi]
                cls = mat_class[m]
                refl = mat_refl[m]
                porous = True
                cosi = 0.5 + 0.5 * _u01(seed, ray, r, 99)
            else:  # moving box
                m = box_mat[hi]
                cls = mat_class[m]
                refl = mat_refl[m]
                # face normal in world: axis 0/1 rotate by yaw, axis 2 is vertical
                if axis == 2:
                    cosi = abs(d2)
                else:
                    yaw = boxes[hi, 8]
                    if axis == 0:
                        fx = np.cos(yaw)
                        fy = np.sin(yaw)
                    else:
                        fx = -np.sin(yaw)
                        fy = np.cos(yaw)
                    cosi = abs(fx * d0 + fy * d1)
            rr = max(th, r_near)
            inc = cosi if inc_exp == 1.0 else cosi ** inc_exp
            amp = energy * refl * inc * np.exp(range_exp * np.log(r_ref / rr))
            z_speckle, z_add = _normal2(seed, ray, r, 31)
            amp *= np.exp(speckle * z_speckle)
            val = gain * amp + add_sigma * z_add
            if val < 0:
                val = 0.0
            if val > 65535:
                val = 65535.0
            noise_r = range_noise * _normal(seed, ray, r, 41)
            slot = base + nret
            out_xyz[slot, 0] = hx + d0 * noise_r + ex
            out_xyz[slot, 1] = hy + d1 * noise_r + ey
            out_xyz[slot, 2] = hz + d2 * noise_r + ez
            out_t[slot] = t
            out_range[slot] = th + noise_r
            out_intensity[slot] = np.uint16(val + 0.5)
            out_class[slot] = cls
            out_angle[slot] = angle
            nret += 1
            out_ret[slot] = nret
            if not porous:
                last_solid_t = th
                break
            energy *= porous_loss
            tmin = th + sep
        # spurious returns: dust in the air, multipath behind surfaces
        if noise_rate > 0 and _u01(seed, ray, 0, 51) < noise_rate:
            if last_solid_t > 0 and _u01(seed, ray, 0, 52) < 0.5:
                tn = last_solid_t + 0.3 + 4.0 * _u01(seed, ray, 0, 53)
            else:
                far = last_solid_t if last_solid_t > 0 else 60.0
                tn = min_range + 0.5 + max(far - min_range - 1.0, 0.0) * _u01(seed, ray, 0, 54)
            zx = o0 + d0 * tn
            zy = o1 + d1 * tn
            zz = o2 + d2 * tn
            # truth class by the definition in hdmap.classes: below the ground surface, or isolated
            # within high_h above what lies below -> low noise (7); higher -> high noise (18)
            cls_n = 18
            tu, ku, iu, uu, vu, au, su = _nearest(
                zx, zy, zz, 0.0, 0.0, 1.0, 0.0, 500.0, t, seed, ray, 6,
                gp, cstart, citems, cz, kz, tri, cyl, ell, boxes)
            if ku == 0 and mat_ground[tri_mat[iu]]:
                cls_n = 7
            else:
                tb, kb, ib, ub, vb, ab, sb = _nearest(
                    zx, zy, zz, 0.0, 0.0, -1.0, 0.0, 500.0, t, seed, ray, 5,
                    gp, cstart, citems, cz, kz, tri, cyl, ell, boxes)
                if kb >= 0 and tb <= high_h:
                    cls_n = 7
            slot = base + nret
            out_xyz[slot, 0] = zx + ex
            out_xyz[slot, 1] = zy + ey
            out_xyz[slot, 2] = zz + ez
            out_t[slot] = t
            out_range[slot] = tn
            out_intensity[slot] = np.uint16(min(65535.0, max(0.0, gain * 0.002 * (1.0 + 4.0 * _u01(seed, ray, 0, 55)))))
            out_class[slot] = cls_n
            out_angle[slot] = angle
            nret += 1
            out_ret[slot] = nret
        for k in range(nret):
            out_nret[base + k] = nret


#: Scene arrays the kernel needs, in the order it takes them (see :func:`cast_rays`).
SCENE_KEYS = (
    "gp", "cstart", "citems", "cz", "kz", "tri", "tri_n", "tri_mat", "tri_road", "tri_st", "cyl", "cyl_mat", "ell",
    "ell_mat",
)
MATERIAL_KEYS = ("mat_refl", "mat_class", "mat_texture", "mat_ground", "mat_rough")
SURFACE_KEYS = (
    "bin_size", "road_bin0", "road_nbin", "paint_start", "paint_items", "paint_quad", "paint_refl", "paint_wear",
    "decal_start", "decal_items", "decal_kind", "decal_par", "decal_quad", "decal_refl",
)


def new_buffers(n_rays: int) -> dict:
    """Output buffers for up to *n_rays* pulses; reuse them across calls (fresh pages cost page faults)."""
    n = int(n_rays) * OUT_SLOTS
    return {
        "xyz": np.empty((n, 3)), "t": np.empty(n), "range": np.empty(n), "intensity": np.empty(n, np.uint16),
        "cls": np.empty(n, np.uint8), "ret": np.empty(n, np.uint8), "nret": np.empty(n, np.uint8),
        "angle": np.empty(n),
    }


def cast_rays(scene: dict, scanner: np.ndarray, beams: np.ndarray, traj: np.ndarray, traj_dt: float, *,
              t0: float, ray0: int, n_rays: int, rate: float, seed: int, stream: int, phys: np.ndarray,
              boxes: np.ndarray | None = None, box_mat: np.ndarray | None = None,
              buffers: dict | None = None, offset=(0.0, 0.0, 0.0)) -> dict:
    """Cast pulses ``ray0 .. ray0 + n_rays - 1`` of one scanner; return the points, compacted.

    Parameters
    ----------
    scene : dict
        Arrays named in SCENE_KEYS, MATERIAL_KEYS and SURFACE_KEYS (``Scene.kernel_arrays()``).
    scanner, beams, phys
        See ``_cast_rays``.
    traj : (n, 15) float64
        Pose samples (position, body-to-world matrix, georeferencing error) every *traj_dt*
        seconds from t = 0 (:func:`pose_matrices`).
    boxes : (m, 10) float64, optional
        Moving boxes for this batch of pulses.
    buffers : dict, optional
        From :func:`new_buffers`, for at least *n_rays* pulses.
    offset : 3 floats
        Added to the returned coordinates (e.g. local frame -> map coordinates).

    Returns
    -------
    dict of arrays ``xyz, t, range, intensity, cls, ret, nret, angle`` (one row per return,
    in pulse order).
    """
    n_rays = int(n_rays)
    if boxes is None:
        boxes = np.zeros((0, 10))
        box_mat = np.zeros(0, np.int32)
    n = n_rays * OUT_SLOTS
    if buffers is None or len(buffers["t"]) < n:
        buffers = new_buffers(n_rays)
    out = {k: v[:n] for k, v in buffers.items()}
    if n_rays > 0:
        _cast_rays(
            float(t0), int(ray0), n_rays, float(rate), np.ascontiguousarray(scanner, dtype=np.float64),
            np.ascontiguousarray(beams, dtype=np.float64), int(seed), int(stream), 0.0, float(traj_dt),
            np.ascontiguousarray(traj, dtype=np.float64),
            *[scene[k] for k in SCENE_KEYS], np.ascontiguousarray(boxes, dtype=np.float64),
            np.ascontiguousarray(box_mat, dtype=np.int32),
            *[scene[k] for k in MATERIAL_KEYS], *[scene[k] for k in SURFACE_KEYS],
            np.ascontiguousarray(phys, dtype=np.float64),
            out["xyz"], out["t"], out["range"], out["intensity"], out["cls"], out["ret"], out["nret"], out["angle"],
        )
    xyz, t, rng, inten, cls, ret, nret, ang = _compact(out["xyz"], out["t"], out["range"], out["intensity"],
                                                        out["cls"], out["ret"], out["nret"], out["angle"],
                                                        float(offset[0]), float(offset[1]), float(offset[2]))
    return {"xyz": xyz, "t": t, "range": rng, "intensity": inten, "cls": cls, "ret": ret, "nret": nret,
            "angle": ang}


def boxes_in_sweep(boxes: np.ndarray, scanner: np.ndarray, traj: np.ndarray, traj_dt: float,
                   t_a: float, t_b: float) -> np.ndarray:
    """The moving boxes that pulses of a profile scanner fired in [t_a, t_b] can reach.

    A profile scanner's pulses at time t all lie in its scan plane (through the
    scanner, normal to the rotation axis). A box whose bounding sphere stays off
    that plane through the whole batch cannot be hit by any of them, so casting
    with the remaining rows gives the same points; the kernel then skips the
    per-pulse test of boxes beside the vehicle (traffic on a motorway). The
    plane is followed every millisecond; a margin of twice the largest change
    of a box's distance between two samples covers the time in between.
    Multi-beam scanners, whose beams leave the plane, get all boxes.
    """
    if len(boxes) == 0 or int(scanner[0]) != 0:
        return boxes
    ts = np.linspace(t_a, t_b, max(int(np.ceil((t_b - t_a) / 1e-3)), 1) + 1)
    f = ts / traj_dt  # pose as the kernel interpolates it (_pose)
    i = np.clip(np.floor(f).astype(np.int64), 0, len(traj) - 2)
    w = np.clip(f - i, 0.0, 1.0)[:, None]
    pose = traj[i] + w * (traj[i + 1] - traj[i])
    rot = pose[:, 3:12].reshape(-1, 3, 3)
    origin = pose[:, 0:3] + rot @ scanner[1:4]
    m_yaw, m_pitch = scanner[4], scanner[5]
    axis = rot @ np.array([np.cos(m_yaw) * np.cos(m_pitch), np.sin(m_yaw) * np.cos(m_pitch), -np.sin(m_pitch)])
    axis /= np.linalg.norm(axis, axis=1)[:, None]
    centre = np.empty((len(boxes), len(ts), 3))
    centre[:, :, 0] = boxes[:, None, 0] + boxes[:, None, 3] * (ts[None, :] - boxes[:, None, 9])
    centre[:, :, 1] = boxes[:, None, 1] + boxes[:, None, 4] * (ts[None, :] - boxes[:, None, 9])
    centre[:, :, 2] = boxes[:, None, 2]
    dist = np.abs(np.einsum("btk,tk->bt", centre - origin[None], axis))
    radius = np.sqrt((boxes[:, 5:8] ** 2).sum(axis=1))
    margin = 2.0 * np.abs(np.diff(dist, axis=1)).max(axis=1, initial=0.0) + 0.01
    return np.ascontiguousarray(boxes[(dist <= (radius + margin)[:, None]).any(axis=1)])


def time_order(times: list) -> np.ndarray:
    """Order that interleaves several time-sorted arrays into one sorted by time (stable: earlier array first on ties)."""
    if len(times) == 1:
        return np.arange(len(times[0]))
    lens = np.array([len(t) for t in times], np.int64)
    return _merge_order(np.concatenate(times), lens)


def merge_batch(parts: list, t_offset: float) -> dict:
    """One batch of several scanners' returns (dicts from :func:`cast_rays` plus ``scanner``) as
    one time-ordered set (stable, see :func:`time_order`), ready for a LAS record.

    Returns ``xyz, gps_time`` (t + *t_offset*), ``intensity, cls, ret, nret, scanner`` and
    ``scan_angle`` (int16, units of 0.006 degrees, in -180..180 degrees, clipped to +-30000).
    """
    order = time_order([p["t"] for p in parts])

    def cat(key):
        return parts[0][key] if len(parts) == 1 else np.concatenate([p[key] for p in parts])

    return dict(zip(
        ("xyz", "gps_time", "intensity", "cls", "ret", "nret", "scanner", "scan_angle"),
        _gather_batch(order, cat("xyz"), cat("t"), cat("intensity"), cat("cls"), cat("ret"), cat("nret"),
                      cat("scanner"), cat("angle"), float(t_offset)),
    ))


@jit
def _gather_batch(order, xyz, t, inten, cls, ret, nret, scanner, ang, t_offset):
    n = order.shape[0]
    o_xyz = np.empty((n, 3))
    o_t = np.empty(n)
    o_int = np.empty(n, np.uint16)
    o_cls = np.empty(n, np.uint8)
    o_ret = np.empty(n, np.uint8)
    o_nret = np.empty(n, np.uint8)
    o_sc = np.empty(n, np.uint8)
    o_ang = np.empty(n, np.int16)
    for i in range(n):
        j = order[i]
        o_xyz[i, 0] = xyz[j, 0]
        o_xyz[i, 1] = xyz[j, 1]
        o_xyz[i, 2] = xyz[j, 2]
        o_t[i] = t_offset + t[j]
        o_int[i] = inten[j]
        o_cls[i] = cls[j]
        o_ret[i] = ret[j]
        o_nret[i] = nret[j]
        o_sc[i] = scanner[j]
        # (angle + pi) mod 2 pi - pi, the modulo floored as Python's and numpy's; the caster's
        # angles are mostly in range already, and fmod is slow
        a = ang[j] + np.pi
        if a < 0.0 or a >= 2 * np.pi:
            a = a % (2 * np.pi)
        q = np.rint((a - np.pi) * (180.0 / np.pi) / 0.006)
        o_ang[i] = np.int16(min(max(q, -30000.0), 30000.0))
    return o_xyz, o_t, o_int, o_cls, o_ret, o_nret, o_sc, o_ang


@jit
def _merge_order(t, lens):
    k = lens.shape[0]
    starts = np.zeros(k, np.int64)
    for i in range(1, k):
        starts[i] = starts[i - 1] + lens[i - 1]
    pos = starts.copy()
    ends = starts + lens
    out = np.empty(t.shape[0], np.int64)
    for o in range(t.shape[0]):
        best = -1
        for i in range(k):
            if pos[i] < ends[i] and (best < 0 or t[pos[i]] < t[pos[best]]):
                best = i
        out[o] = pos[best]
        pos[best] += 1
    return out


@jit
def _compact(xyz, t, rng, inten, cls, ret, nret, ang, ox, oy, oz):
    """Keep the used slots (ret > 0), shifting coordinates by (ox, oy, oz)."""
    n = 0
    for i in range(ret.shape[0]):
        if ret[i] > 0:
            n += 1
    o_xyz = np.empty((n, 3))
    o_t = np.empty(n)
    o_rng = np.empty(n)
    o_int = np.empty(n, np.uint16)
    o_cls = np.empty(n, np.uint8)
    o_ret = np.empty(n, np.uint8)
    o_nret = np.empty(n, np.uint8)
    o_ang = np.empty(n)
    k = 0
    for i in range(ret.shape[0]):
        if ret[i] > 0:
            o_xyz[k, 0] = xyz[i, 0] + ox
            o_xyz[k, 1] = xyz[i, 1] + oy
            o_xyz[k, 2] = xyz[i, 2] + oz
            o_t[k] = t[i]
            o_rng[k] = rng[i]
            o_int[k] = inten[i]
            o_cls[k] = cls[i]
            o_ret[k] = ret[i]
            o_nret[k] = nret[i]
            o_ang[k] = ang[i]
            k += 1
    return o_xyz, o_t, o_rng, o_int, o_cls, o_ret, o_nret, o_ang

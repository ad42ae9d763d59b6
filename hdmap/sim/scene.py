"""Street scenes for the simulator, built from a road description.

A :class:`Scene` holds everything the ray caster needs as flat arrays (road
meshes, objects, paint and surface decals in road coordinates, the grid) and
the ground truth (lane boundaries, curbs, markings, lanes) as plain records in
the local frame. Coordinates are local metres relative to ``scene.origin``
(easting, northing); heights are absolute.

Road surfaces are triangle meshes generated station by station from the
cross-section, so curbs are true vertical faces; paint and distractors are
looked up per hit in (s, t), so marking edges are exact whatever the mesh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..classes import Class
from . import road as rd
from .refline import ReferenceLine, Segment

__all__ = ["Scene", "build_scene", "MATERIALS"]

# name: (class, reflectance, texture amplitude, ground-like, roughness in m)
# roughness: returns come from a canopy this high above the surface (grass)
MATERIALS = {
    "asphalt": (Class.ROAD_SURFACE, 0.12, 0.15, True, 0.0),
    "gutter": (Class.ROAD_SURFACE, 0.20, 0.08, True, 0.0),
    "curb": (Class.CURB, 0.28, 0.06, True, 0.0),
    "sidewalk": (Class.GROUND, 0.22, 0.12, True, 0.0),
    "verge": (Class.GROUND, 0.17, 0.30, True, 0.12),
    "island": (Class.GROUND, 0.19, 0.25, True, 0.08),
    "building": (Class.BUILDING, 0.30, 0.10, False, 0.0),
    "car": (Class.UNCLASSIFIED, 0.16, 0.0, False, 0.0),
    "glass": (Class.UNCLASSIFIED, 0.05, 0.0, False, 0.0),
    "sign": (Class.TRAFFIC_SIGN, 4.0, 0.0, False, 0.0),
    "pole": (Class.POLE, 0.35, 0.0, False, 0.0),
    "trunk": (Class.HIGH_VEGETATION, 0.15, 0.0, False, 0.0),
    "crown": (Class.HIGH_VEGETATION, 0.25, 0.0, False, 0.0),
    "fence": (Class.UNCLASSIFIED, 0.22, 0.0, False, 0.0),
    "guardrail": (Class.UNCLASSIFIED, 0.45, 0.0, False, 0.0),
}
MAT = {name: i for i, name in enumerate(MATERIALS)}

PAINT_REFLECTANCE = 0.55
MANHOLE_REFLECTANCE = 0.36  # metal covers: bright
TAR_SNAKE_REFLECTANCE = 0.24
WET_REFLECTANCE = 0.045
PATCH_REFLECTANCES = (0.075, 0.18)
LEAF_DENSITY = 1.1  # 1/m: mean free path of a pulse in a crown
BIN = 2.0  # s-bins of the paint/decal lookup

_ROAD_LEVEL_MAT = {"lane": "asphalt", "bus": "asphalt", "bike": "asphalt", "parking": "asphalt",
                   "shoulder": "asphalt", "gutter": "gutter"}


# --------------------------------------------------------------------------
# geometry of one road
# --------------------------------------------------------------------------
@dataclass
class BandGeom:
    kind: str
    a: float  # inner |t|
    b: float  # outer |t|
    height: float
    line: object
    index: int


class RoadGeom:
    """Reference line, band layout and interruptions of one road."""

    def __init__(self, spec: rd.RoadSpec, index: int, ref: ReferenceLine):
        self.spec = spec
        self.index = index
        self.ref = ref
        self.length = ref.length
        self.m = spec.median.width / 2 if spec.median else 0.0
        self.bands = {"right": self._layout(spec.right), "left": self._layout(spec.left)}
        self.side_gaps: list[tuple[str, float, float]] = []
        self.median_gaps: list[tuple[float, float]] = []
        self.boxes: list[tuple[float, float]] = []  # junction boxes: no longitudinal lines
        self.start_faces = spec.slope_ramp > 0  # junction arms: raised bands begin with a face at s=0
        self.parent = None  # (road, side, s) for arms

    def _layout(self, bands):
        out = []
        t = self.m
        for i, b in enumerate(bands):
            out.append(BandGeom(b.kind, t, t + b.width, b.height, b.line, i))
            t += b.width
        return out

    @staticmethod
    def sign(side: str) -> float:
        return -1.0 if side == "right" else 1.0

    def carriageway_edge(self, side: str) -> float:
        """|t| where the road-level bands end (the curb face, if any)."""
        edge = self.m
        for b in self.bands[side]:
            if b.kind in rd.ROAD_LEVEL:
                edge = b.b
            else:
                break
        return edge

    def outer_edge(self, side: str) -> float:
        bands = self.bands[side]
        return bands[-1].b if bands else self.m

    def driving_bands(self, side: str):
        return [b for b in self.bands[side] if b.kind in rd.DRIVING]

    def q(self, s):
        s = np.asarray(s, dtype=np.float64)
        q = self.spec.cross_slope
        if self.spec.slope_ramp > 0:
            return q * np.clip(s / self.spec.slope_ramp, 0.0, 1.0)
        return q * np.ones_like(s)

    def c1(self, t: float) -> float:
        """Cross-slope factor at signed offset t: dz = c1 * q."""
        if self.spec.crown:
            return -(abs(t) - self.m) if abs(t) > self.m else 0.0
        return t

    # -- cross-section profiles ----------------------------------------------
    def config(self, s_mid: float):
        gaps = {side for side, a, b in self.side_gaps if a <= s_mid <= b}
        flush = any(a <= s_mid <= b for a, b in self.median_gaps)
        return frozenset(gaps), flush

    def breakpoints(self):
        pts = {0.0, self.length}
        for _, a, b in self.side_gaps:
            pts.update((min(max(a, 0.0), self.length), min(max(b, 0.0), self.length)))
        for a, b in self.median_gaps:
            pts.update((min(max(a, 0.0), self.length), min(max(b, 0.0), self.length)))
        return sorted(pts)

    def side_profile(self, side: str, removed: bool):
        """Vertices (|t|, c0, c1-at) and segment (material, road-flag, band) going outward from the median edge."""
        sg = self.sign(side)
        verts = [(self.m, 0.0, self.c1(sg * self.m))]
        segs = []
        raised = False
        c0 = 0.0
        c1_fixed = None
        for band in self.bands[side]:
            if band.kind in rd.ROAD_LEVEL:
                verts.append((band.b, 0.0, self.c1(sg * band.b)))
                segs.append((_ROAD_LEVEL_MAT[band.kind], True, band))
                continue
            if removed:
                break
            if band.kind == "curb":
                c1_fixed = self.c1(sg * band.a)
                c0 = band.height
                verts.append((band.a, c0, c1_fixed))
                segs.append(("curb", False, band))  # vertical face
                verts.append((band.b, c0, c1_fixed))
                segs.append(("curb", False, band))  # top
                raised = True
            elif band.kind == "sidewalk":
                if c1_fixed is None:
                    c1_fixed = self.c1(sg * band.a)
                c0 += 0.02 * (band.b - band.a) if raised else -0.01 * (band.b - band.a)
                verts.append((band.b, c0, c1_fixed))
                segs.append(("sidewalk", False, band))
            else:  # verge
                if c1_fixed is None:
                    c1_fixed = self.c1(sg * band.a)
                c0 += 0.01 * (band.b - band.a) if raised else -0.05 * (band.b - band.a)
                verts.append((band.b, c0, c1_fixed))
                segs.append(("verge", False, band))
        return verts, segs

    def median_profile(self, flush: bool):
        """Vertices from t = +m down to t = -m."""
        med = self.spec.median
        if med is None:
            return [(0.0, 0.0, 0.0)], []
        m = self.m
        if flush or med.kind != "island":
            return [(m, 0.0, 0.0), (-m, 0.0, 0.0)], [("asphalt", True, None)]
        h = med.height
        w = min(0.15, m / 2)
        verts = [(m, 0.0, 0.0), (m, h, 0.0), (m - w, h, 0.0), (-m + w, h, 0.0), (-m, h, 0.0), (-m, 0.0, 0.0)]
        segs = [("curb", False, None), ("curb", False, None), ("island", False, None), ("curb", False, None),
                ("curb", False, None)]
        return verts, segs

    def profile(self, s_mid: float):
        """Full cross-section at s_mid: vertices (t, c0, c1) from left outer to right outer, and segments."""
        gaps, flush = self.config(s_mid)
        lv, ls = self.side_profile("left", "left" in gaps)
        rv, rs = self.side_profile("right", "right" in gaps)
        mv, ms = self.median_profile(flush)
        verts = [(t, c0, c1) for (t, c0, c1) in reversed(lv)]
        segs = list(reversed(ls))
        # median: its first vertex equals the last left vertex (t = +m)
        verts += mv[1:]
        segs += ms
        verts += [(-t, c0, c1) for (t, c0, c1) in rv[1:]]
        segs += rs
        return verts, segs

    def surface_z(self, s, t):
        """Height of the surface at (s, t), arrays allowed (top surface at faces)."""
        s = np.atleast_1d(np.asarray(s, dtype=np.float64))
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), s.shape)
        out = np.empty_like(s)
        for i, (si, ti) in enumerate(zip(s, t)):
            verts, _ = self.profile(float(si))
            ts = np.array([v[0] for v in verts])[::-1]
            c0 = np.array([v[1] for v in verts])[::-1]
            c1 = np.array([v[2] for v in verts])[::-1]
            # for duplicated t (faces) take the top: np.interp picks the last equal entry
            cz = np.interp(ti, ts, c0 + c1 * float(self.q(si)))
            out[i] = cz
        return self.ref.z(s) + out

    def road_level_z(self, s, t):
        """Height of the carriageway plane (extended) at (s, t)."""
        s = np.asarray(s, dtype=np.float64)
        t = np.asarray(t, dtype=np.float64)
        c1 = np.vectorize(self.c1)(t) if t.ndim else self.c1(float(t))
        return self.ref.z(s) + c1 * self.q(s)

    def xyz(self, s, t, z=None):
        x, y = self.ref.point(s, t)
        if z is None:
            z = self.road_level_z(s, t)
        return np.column_stack([np.atleast_1d(x), np.atleast_1d(y), np.broadcast_to(np.atleast_1d(z), np.atleast_1d(x).shape)])


# --------------------------------------------------------------------------
# the scene
# --------------------------------------------------------------------------
@dataclass
class Scene:
    description: rd.RoadDescription
    origin: tuple  # (easting, northing) of local (0, 0)
    roads: list
    # geometry
    tri_v: np.ndarray
    tri_mat: np.ndarray
    tri_road: np.ndarray
    tri_st: np.ndarray
    cyl: np.ndarray
    cyl_mat: np.ndarray
    ell: np.ndarray
    ell_density: np.ndarray
    ell_mat: np.ndarray
    # paint and decals
    paint_quad: np.ndarray
    paint_refl: np.ndarray
    paint_wear: np.ndarray
    paint_marking: np.ndarray
    decal_kind: np.ndarray
    decal_par: np.ndarray
    decal_quad: np.ndarray
    decal_refl: np.ndarray
    decal_road: np.ndarray
    paint_road: np.ndarray
    moving_cars: list
    # truth
    boundaries: list
    curbs: list
    markings: list
    lanes: list
    parked_cars: list
    grid: dict = field(default_factory=dict)
    buckets: dict = field(default_factory=dict)

    # -- derived arrays for the kernel ---------------------------------------
    def kernel_arrays(self) -> dict:
        """The scene as the ray-casting kernel takes it (see hdmap.kernels.raycast.cast_rays)."""
        if not self.grid:
            self._build_index()
        v0 = self.tri_v[:, 0]
        e1 = self.tri_v[:, 1] - v0
        e2 = self.tri_v[:, 2] - v0
        n = np.cross(e1, e2)
        nn = np.linalg.norm(n, axis=1)
        n = n / np.where(nn > 0, nn, 1.0)[:, None]
        mats = list(MATERIALS.values())
        g = self.grid
        gp = np.array([g["gx0"], g["gy0"], g["cell"], g["nx"], g["ny"], g["zcap"], g["cf"], g["knx"], g["kny"],
                       len(self.tri_v), len(self.cyl)], dtype=np.float64)
        return dict(
            gp=gp, cstart=g["cstart"], citems=g["citems"], cz=g["cz"], kz=g["kz"],
            tri=np.ascontiguousarray(np.hstack([v0, e1, e2])), tri_n=np.ascontiguousarray(n),
            tri_mat=self.tri_mat, tri_road=self.tri_road, tri_st=self.tri_st,
            cyl=self.cyl, cyl_mat=self.cyl_mat,
            ell=np.ascontiguousarray(np.hstack([self.ell, self.ell_density[:, None]])), ell_mat=self.ell_mat,
            mat_refl=np.array([m[1] for m in mats]), mat_class=np.array([int(m[0]) for m in mats], np.uint8),
            mat_texture=np.array([m[2] for m in mats]), mat_ground=np.array([m[3] for m in mats], np.bool_),
            mat_rough=np.array([m[4] for m in mats]),
            **self.buckets,
        )

    def _build_index(self):
        from ..kernels.raycast import build_grid, coarse_ranges

        tri = self.tri_v
        boxes = [np.column_stack([tri[:, :, 0].min(1), tri[:, :, 1].min(1), tri[:, :, 0].max(1), tri[:, :, 1].max(1)])]
        zr = [np.column_stack([tri[:, :, 2].min(1), tri[:, :, 2].max(1)])]
        if len(self.cyl):
            c = self.cyl
            boxes.append(np.column_stack([c[:, 0] - c[:, 4], c[:, 1] - c[:, 4], c[:, 0] + c[:, 4], c[:, 1] + c[:, 4]]))
            zr.append(c[:, 2:4])
        if len(self.ell):
            e = self.ell
            boxes.append(np.column_stack([e[:, 0] - e[:, 3], e[:, 1] - e[:, 4], e[:, 0] + e[:, 3], e[:, 1] + e[:, 4]]))
            zr.append(np.column_stack([e[:, 2] - e[:, 5], e[:, 2] + e[:, 5]]))
        boxes = np.vstack(boxes)
        zr = np.vstack(zr)
        lo = boxes[:, :2].min(0) - 1.0
        hi = boxes[:, 2:].max(0) + 1.0
        cell = 1.0
        while (hi[0] - lo[0]) * (hi[1] - lo[1]) / cell**2 > 6e6:
            cell *= 1.5
        nx = int(np.ceil((hi[0] - lo[0]) / cell))
        ny = int(np.ceil((hi[1] - lo[1]) / cell))
        start, items, zmin, zmax = build_grid(boxes, zr, lo[0], lo[1], cell, nx, ny, tri_xy=tri[:, :, :2])
        cf = 4
        knx, kny, kzmin, kzmax = coarse_ranges(zmin, zmax, nx, ny, cf)
        self.grid = dict(gx0=float(lo[0]), gy0=float(lo[1]), cell=float(cell), nx=nx, ny=ny, cstart=start,
                         citems=items, cz=np.ascontiguousarray(np.column_stack([zmin, zmax])),
                         zcap=float(zr[:, 1].max()), cf=cf, knx=knx, kny=kny,
                         kz=np.ascontiguousarray(np.column_stack([kzmin, kzmax])))
        # paint and decal buckets per road and 2 m of s
        nbins = np.array([int(np.ceil(r.length / BIN)) + 1 for r in self.roads], np.int64)
        bin0 = np.concatenate([[0], np.cumsum(nbins)[:-1]]).astype(np.int64)
        self.buckets = dict(bin_size=BIN, road_bin0=bin0, road_nbin=nbins)
        for name, road_ids, smin, smax in (
            ("paint", self.paint_road, self.paint_quad[:, :, 0].min(1) if len(self.paint_quad) else np.empty(0),
             self.paint_quad[:, :, 0].max(1) if len(self.paint_quad) else np.empty(0)),
            ("decal", self.decal_road, *self._decal_srange()),
        ):
            counts = np.zeros(int(nbins.sum()) + 1, np.int64)
            pairs = []
            for i in range(len(road_ids)):
                r = int(road_ids[i])
                b0 = max(int(np.floor(smin[i] / BIN)), 0)
                b1 = min(int(np.floor(smax[i] / BIN)), int(nbins[r]) - 1)
                for b in range(b0, b1 + 1):
                    pairs.append((bin0[r] + b, i))
            pairs.sort()
            for c, _ in pairs:
                counts[c + 1] += 1
            self.buckets[f"{name}_start"] = np.cumsum(counts)
            self.buckets[f"{name}_items"] = np.array([i for _, i in pairs], np.int32)
        self.buckets.update(paint_quad=self.paint_quad, paint_refl=self.paint_refl, paint_wear=self.paint_wear,
                            decal_kind=self.decal_kind, decal_par=self.decal_par, decal_quad=self.decal_quad,
                            decal_refl=self.decal_refl)

    def _decal_srange(self):
        n = len(self.decal_kind)
        smin = np.empty(n)
        smax = np.empty(n)
        for i in range(n):
            k = self.decal_kind[i]
            p = self.decal_par[i]
            if k == 0:
                smin[i], smax[i] = p[0] - p[2], p[0] + p[2]
            elif k == 1:
                r = 1.3 * max(p[2], p[3])
                smin[i], smax[i] = p[0] - r, p[0] + r
            else:
                q = self.decal_quad[i]
                smin[i], smax[i] = q[:, 0].min(), q[:, 0].max()
        return smin, smax

    def moving_boxes(self, t_mid: float) -> np.ndarray:
        """Traffic as (n, 10) boxes [cx, cy, cz, vx, vy, hx, hy, hz, yaw, t_ref] at time t_mid."""
        if not self.moving_cars:
            return np.zeros((0, 10))
        out = []
        for car in self.moving_cars:
            road = self.roads[car["road"]]
            s = (car["s0"] + car["dir"] * car["speed"] * (t_mid - car["t0"])) % road.length
            x, y, theta, _ = road.ref.eval([s])
            px, py = road.ref.point([s], [car["t"]])
            yaw = float(theta[0]) + (0.0 if car["dir"] > 0 else math.pi)
            z = float(road.road_level_z(s, car["t"])) + car["hz"] + 0.18
            out.append([px[0], py[0], z, car["speed"] * math.cos(yaw), car["speed"] * math.sin(yaw),
                        car["hx"], car["hy"], car["hz"], yaw, t_mid])
        return np.array(out, dtype=np.float64)


# --------------------------------------------------------------------------
# builder
# --------------------------------------------------------------------------
class _Builder:
    def __init__(self, desc: rd.RoadDescription, seed: int):
        self.desc = desc
        self.rng = np.random.default_rng([int(seed), 1])
        self.features = desc.features
        first = desc.roads[0]
        self.origin = (float(np.round(first.start[0])), float(np.round(first.start[1])))
        self.roads: list[RoadGeom] = []
        self.tris: list[np.ndarray] = []
        self.tri_mat: list[np.ndarray] = []
        self.tri_road: list[np.ndarray] = []
        self.tri_st: list[np.ndarray] = []
        self.cyl: list = []
        self.cyl_mat: list = []
        self.ell: list = []
        self.ell_mat: list = []
        self.paint: list = []  # (road, quad(4,2), refl, wear, marking id)
        self.decals: list = []  # (road, kind, par(8), quad(4,2), refl)
        self.boundaries: list = []
        self.curbs: list = []
        self.markings: list = []
        self.lanes: list = []
        self.parked: list = []
        self.moving: list = []
        self._next_id = 1

    def new_id(self, prefix: str) -> str:
        i = self._next_id
        self._next_id += 1
        return f"{prefix}{i}"

    # -- roads ---------------------------------------------------------------
    def add_road(self, spec: rd.RoadSpec, x0, y0, theta0, z0, grade, parent=None) -> RoadGeom:
        segs = [Segment(k, length, k0, k1) for (k, length, k0, k1) in spec.geometry]
        ref = ReferenceLine(segs, x0, y0, theta0, z0, grade)
        road = RoadGeom(spec, len(self.roads), ref)
        road.parent = parent
        self.roads.append(road)
        for j in spec.junctions:
            self._add_junction(road, j)
        return road

    def _add_junction(self, road: RoadGeom, j: rd.Junction):
        x, y, theta, _ = road.ref.eval([j.s])
        arm_half = []
        for arm in j.arms:
            sg = road.sign(arm.side)
            edge = road.carriageway_edge(arm.side)
            px, py = road.ref.point([j.s], [sg * edge])
            th = float(theta[0]) + (math.pi / 2 if arm.side == "left" else -math.pi / 2)
            z0 = float(road.road_level_z(j.s, sg * edge))
            arm_geom = self.add_road(arm.road, float(px[0]), float(py[0]), th, z0, 0.0, parent=(road, arm.side, j.s))
            a_c = max(arm_geom.carriageway_edge("left"), arm_geom.carriageway_edge("right"))
            a_f = max(arm_geom.outer_edge("left"), arm_geom.outer_edge("right"))
            arm_half.append(a_c)
            road.side_gaps.append((arm.side, j.s - a_f, j.s + a_f))
        a_c = max(arm_half)
        road.boxes.append((j.s - a_c, j.s + a_c))
        if road.spec.median is not None:
            road.median_gaps.append((j.s - a_c - 7.0, j.s + a_c + 7.0))

    def build_meshes(self):
        for road in self.roads:
            self._mesh_road(road)

    def _emit_quads(self, P, mat, road_idx, st):
        """P: (ns, nv, 3) grid of points; quads between consecutive rows/columns of one segment."""
        a = P[:-1, 0]
        b = P[:-1, 1]
        c = P[1:, 1]
        d = P[1:, 0]
        tris = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
        self.tris.append(tris)
        self.tri_mat.append(np.full(len(tris), MAT[mat], np.int32))
        self.tri_road.append(np.full(len(tris), road_idx, np.int32))
        if st is None:
            self.tri_st.append(np.zeros((len(tris), 3, 2)))
        else:
            sa, sb, sc, sd = st[:-1, 0], st[:-1, 1], st[1:, 1], st[1:, 0]
            self.tri_st.append(np.concatenate([np.stack([sa, sb, sc], 1), np.stack([sa, sc, sd], 1)]))

    def _mesh_road(self, road: RoadGeom):
        bps = road.breakpoints()
        for a, b in zip(bps[:-1], bps[1:]):
            if b - a < 1e-6:
                continue
            verts, segs = road.profile(0.5 * (a + b))
            stations = road.ref.stations(a, b, max_step=1.0)
            q = road.q(stations)
            zref = road.ref.z(stations)
            ts = np.array([v[0] for v in verts])
            c0 = np.array([v[1] for v in verts])
            c1 = np.array([v[2] for v in verts])
            S = np.repeat(stations[:, None], len(ts), 1)
            T = np.repeat(ts[None, :], len(stations), 0)
            X, Y = road.ref.point(S.ravel(), T.ravel())
            Z = zref[:, None] + c0[None, :] + c1[None, :] * q[:, None]
            P = np.stack([X.reshape(S.shape), Y.reshape(S.shape), Z], -1)
            ST = np.stack([S, T], -1)
            for k, (mat, is_road, _band) in enumerate(segs):
                if abs(ts[k] - ts[k + 1]) < 1e-9 and abs(c0[k] - c0[k + 1]) < 1e-9:
                    continue
                self._emit_quads(P[:, k:k + 2], mat, road.index if is_road else -1, ST[:, k:k + 2] if is_road else None)
        # end faces where raised bands start or stop
        for i, sb in enumerate(bps):
            before = road.profile(sb - 1e-3) if sb > 0 else None
            after = road.profile(sb + 1e-3) if sb < road.length else None
            if before is None and not (road.start_faces and after is not None):
                continue
            if after is None:
                continue
            self._end_faces(road, sb, before, after)

    def _raised_runs(self, verts):
        """Runs of consecutive raised vertices (c0 > 0) as lists of (t, c0, c1)."""
        runs, cur = [], []
        for v in verts:
            if v[1] > 1e-9:
                cur.append(v)
            elif cur:
                runs.append(cur)
                cur = []
        if cur:
            runs.append(cur)
        return runs

    def _end_faces(self, road, s, before, after):
        q = float(road.q(s))
        zref = float(road.ref.z(s))
        runs_b = self._raised_runs(before[0]) if before is not None else []
        runs_a = self._raised_runs(after[0])

        def covered(run, runs):
            t0, t1 = sorted((run[0][0], run[-1][0]))
            return any(min(r[0][0], r[-1][0]) <= t0 + 1e-6 and max(r[0][0], r[-1][0]) >= t1 - 1e-6 for r in runs)

        faces = [r for r in runs_b if not covered(r, runs_a)] + [r for r in runs_a if not covered(r, runs_b)]
        if before is not None:
            # inside a road only median islands end with a real step (their noses); where a side's
            # raised bands stop at a junction arm, the arm's own raised bands continue at that height
            faces = [r for r in faces if max(abs(v[0]) for v in r) <= road.m + 1e-6]
        for run in faces:
            ts = np.array([v[0] for v in run])
            top = zref + np.array([v[1] for v in run]) + np.array([v[2] for v in run]) * q
            bottom = zref + np.array([road.c1(t) for t in ts]) * q
            X, Y = road.ref.point(np.full(len(ts), s), ts)
            Pb = np.column_stack([X, Y, bottom])
            Pt = np.column_stack([X, Y, top])
            P = np.stack([Pb, Pt], 1)  # (nv, 2, 3): rows along t, columns bottom/top
            self._emit_quads(P, "curb", -1, None)
            z = bottom
            self.curbs.append(dict(id=self.new_id("curb"), kind="curbstone", road=road.spec.id,
                                   xyz=np.column_stack([X, Y, z]), height_m=float(np.mean(top - bottom))))

    # -- markings ------------------------------------------------------------
    def _interruptions(self, road: RoadGeom):
        """s-intervals where longitudinal lines stop: junction boxes and crosswalks (with 0.5 m clearance)."""
        cuts = list(road.boxes)
        for cw in road.spec.crosswalks:
            cuts.append((cw.s - cw.length / 2 - 0.5, cw.s + cw.length / 2 + 0.5))
        if road.start_faces:  # arms start at the main road: keep lines off the junction mouth
            cuts.append((-1.0, 0.5))
        return sorted(cuts)

    def _free_ranges(self, road, s0, s1, cuts):
        out = []
        cur = s0
        for a, b in cuts:
            if b <= cur or a >= s1:
                continue
            if a > cur:
                out.append((cur, a))
            cur = max(cur, b)
        if cur < s1:
            out.append((cur, s1))
        return [(a, b) for a, b in out if b - a > 0.3]

    def _auto_line(self, road, prev, band, side):
        ctx = rd.CONTEXTS[road.spec.context]
        thin, thick = ctx["thin"], ctx["thick"]
        if band.line != "auto":
            return band.line
        if prev is None:
            med = road.spec.median
            if med is None:
                return None
            if med.kind == "flush":
                return rd.LineSpec("solid", thin)
            if road.spec.context == "motorway":
                return rd.LineSpec("solid", thick)
            return None
        pk, bk = prev.kind, band.kind
        if pk not in rd.ROAD_LEVEL or bk not in rd.ROAD_LEVEL:
            return None
        if pk in rd.DRIVING and bk in rd.DRIVING:
            if pk != bk:
                return rd.LineSpec("solid", thick)
            return rd.LineSpec("dashed", thin, ctx["stroke"], ctx["gap"])
        if {pk, bk} & {"bike"} and {pk, bk} & set(rd.DRIVING):
            return rd.LineSpec("solid", thick)
        if bk == "parking" and pk in rd.DRIVING + ("bike",):
            return rd.LineSpec("solid", thin)
        if bk == "shoulder" and pk in rd.DRIVING:
            return rd.LineSpec("solid", thick)
        if bk == "gutter" and pk in rd.DRIVING and road.spec.context != "urban":
            return rd.LineSpec("solid", thick)
        return None

    def line_runs(self, road: RoadGeom):
        """Every painted longitudinal line: (t, spec, role) with role 'lane' for lane-to-lane lines."""
        runs = []
        if road.spec.median is None and road.spec.centre is not None:
            runs.append((0.0, road.spec.centre, "centre"))
        for side in ("right", "left"):
            sg = road.sign(side)
            prev = None
            for band in road.bands[side]:
                spec = self._auto_line(road, prev, band, side)
                if spec is not None:
                    role = "lane" if (prev is not None and prev.kind in rd.DRIVING and band.kind in rd.DRIVING
                                      and prev.kind == band.kind) else "edge"
                    runs.append((sg * band.a, spec, role))
                prev = band
        return runs

    def build_markings(self):
        for road in self.roads:
            cuts = self._interruptions(road)
            for t, spec, role in self.line_runs(road):
                for a, b in self._free_ranges(road, 0.0, road.length, cuts):
                    self._line(road, t, spec, role, a, b)
            self._transverse(road)

    def _line(self, road, t, spec, role, a, b):
        """One line over [a, b]: lane lines turn 1:1 near junctions; each constant-pattern piece is a boundary."""
        pieces = [(a, b, spec)]
        if role == "lane" and "dashed" in spec.pattern and road.boxes:
            zones = []
            for b0, b1 in road.boxes:
                zones += [(b0 - 30.0 - 6.0, b0), (b1, b1 + 30.0 + 6.0)]
            j_spec = rd.LineSpec(spec.pattern, spec.width, *rd.JUNCTION_PATTERN)
            pieces = []
            for fa, fb in self._free_ranges(road, a, b, sorted(zones)):
                pieces.append((fa, fb, spec))
            for za, zb in zones:
                lo, hi = max(a, za), min(b, zb)
                if hi - lo > 0.3:
                    pieces.append((lo, hi, j_spec))
            pieces.sort()
        for pa, pb, sp in pieces:
            self._line_piece(road, t, sp, pa, pb)

    def _line_piece(self, road, t, spec, a, b):
        bid = self.new_id("line")
        kind = "line_thin" if spec.width <= 0.151 else "line_thick"
        double = spec.pattern in ("solid_solid", "solid_dashed", "dashed_solid")
        off = spec.width  # centre of each line from the middle: gap of one width between them
        parts = []
        if double:
            left_pat, right_pat = spec.pattern.split("_")
            parts = [(t + off, left_pat), (t - off, right_pat)]
        else:
            parts = [(t, spec.pattern)]
        strokes_out = []
        for tc, pat in parts:
            if pat == "solid":
                strokes = [(a, b)]
            else:
                period = spec.stroke + spec.gap
                strokes = []
                s = a
                while s < b - 0.2:
                    strokes.append((s, min(s + spec.stroke, b)))
                    s += period
            for s0, s1 in strokes:
                # long solids are painted in pieces of at most 20 m (faster lookup), one marking each stroke
                n = max(1, int(np.ceil((s1 - s0) / 20.0)))
                edges = np.linspace(s0, s1, n + 1)
                mid = self.new_id("mk")
                wear = self._wear()
                for e0, e1 in zip(edges[:-1], edges[1:]):
                    self._paint_rect(road, e0, e1, tc - spec.width / 2, tc + spec.width / 2, wear, mid)
                strokes_out.append((s0, s1, tc))
                self.markings.append(dict(id=mid, type="lane_line", road=road.spec.id, boundary=bid,
                                          st=[(s0, s1, tc - spec.width / 2, tc + spec.width / 2)], wear=wear))
        pattern = spec.pattern
        self.boundaries.append(dict(
            id=bid, kind=kind, pattern=pattern, stroke_m=spec.stroke if "dashed" in pattern else None,
            gap_m=spec.gap if "dashed" in pattern else None, width_m=spec.width, color="white",
            road=road.spec.id, t=t, s0=a, s1=b))

    def _wear(self):
        if self.rng.random() < self.features.worn_paint:
            return float(self.rng.uniform(0.35, 0.85))
        return 0.0

    def _paint_rect(self, road, s0, s1, t0, t1, wear, mid):
        quad = np.array([[s0, t0], [s1, t0], [s1, t1], [s0, t1]], dtype=np.float64)
        self._paint_quad(road, quad, wear, mid)

    def _paint_quad(self, road, quad, wear, mid):
        # counter-clockwise in (s, t)
        area = 0.5 * np.sum(quad[:, 0] * np.roll(quad[:, 1], -1) - np.roll(quad[:, 0], -1) * quad[:, 1])
        if area < 0:
            quad = quad[::-1].copy()
        self.paint.append((road.index, quad, PAINT_REFLECTANCE, wear, mid))

    def _carriageway(self, road, side):
        """(t_inner, t_outer) signed offsets of the road-level bands of a side."""
        sg = road.sign(side)
        return sg * road.m, sg * road.carriageway_edge(side)

    def _transverse(self, road: RoadGeom):
        spec = road.spec
        # stop lines across the road-level bands of one side
        for st in spec.stop_lines:
            t_in, t_out = self._carriageway(road, st.side)
            lanes = road.driving_bands(st.side)
            sg = road.sign(st.side)
            t_a, t_b = sorted((sg * lanes[0].a, sg * lanes[-1].b)) if lanes else sorted((t_in, t_out))
            mid = self.new_id("mk")
            wear = self._wear()
            s0, s1 = st.s - rd.STOP_LINE_WIDTH / 2, st.s + rd.STOP_LINE_WIDTH / 2
            self._paint_rect(road, s0, s1, t_a, t_b, wear, mid)
            self.markings.append(dict(id=mid, type="stop_line", road=spec.id, st=[(s0, s1, t_a, t_b)], wear=wear))
        # zebra crossings: bars along the road across the whole carriageway (both sides and a flush median)
        for cw in spec.crosswalks:
            gid = self.new_id("cw")
            t_lo = -road.carriageway_edge("right") if road.bands["right"] else 0.0
            t_hi = road.carriageway_edge("left") if road.bands["left"] else 0.0
            spans = []
            if road.spec.median is not None and road.spec.median.kind == "island" and not any(
                    a <= cw.s <= b for a, b in road.median_gaps):
                spans = [(t_lo, -road.m), (road.m, t_hi)]
            else:
                spans = [(t_lo, t_hi)]
            s0, s1 = cw.s - cw.length / 2, cw.s + cw.length / 2
            bars = []
            for a, b in spans:
                n = int(np.floor((b - a + rd.CROSSWALK_BAR) / (2 * rd.CROSSWALK_BAR)))
                used = n * 2 * rd.CROSSWALK_BAR - rd.CROSSWALK_BAR
                start = a + (b - a - used) / 2
                for k in range(n):
                    t0 = start + 2 * k * rd.CROSSWALK_BAR
                    bars.append((t0, t0 + rd.CROSSWALK_BAR))
            for t0, t1 in bars:
                mid = self.new_id("mk")
                wear = self._wear()
                self._paint_rect(road, s0, s1, t0, t1, wear, mid)
                self.markings.append(dict(id=mid, type="crosswalk_bar", road=spec.id, group=gid,
                                          st=[(s0, s1, t0, t1)], wear=wear))
            if bars:
                self.markings.append(dict(id=gid, type="crosswalk", road=spec.id,
                                          st=[(s0, s1, min(b[0] for b in bars), max(b[1] for b in bars))], wear=0.0))
        # arrows
        ctx = rd.CONTEXTS[spec.context]
        for ar in spec.arrows:
            band = road.driving_bands(ar.side)[ar.lane - 1]
            sg = road.sign(ar.side)
            tc = sg * 0.5 * (band.a + band.b)
            direction = 1.0 if ar.side == "right" else -1.0
            quads = _arrow_quads(ar.type, ctx["arrow_length"])
            mid = self.new_id("mk")
            wear = self._wear()
            st_quads = []
            for qd in quads:
                # arrow frame: u along the driving direction from the arrow's centre, v to the driver's left
                s = ar.s + direction * qd[:, 0]
                t = tc + direction * qd[:, 1]
                q = np.column_stack([s, t])
                self._paint_quad(road, q, wear, mid)
                st_quads.append(q)
            self.markings.append(dict(id=mid, type=f"arrow_{ar.type}", road=spec.id, quads=st_quads, wear=wear))

    # -- boundaries for lanes and curbs ---------------------------------------
    def build_edges_and_lanes(self):
        for road in self.roads:
            self._curbs_and_borders(road)
        for road in self.roads:
            self._lanes(road)

    def _side_ranges(self, road, side):
        """s-ranges where a side keeps its raised bands (no junction gap)."""
        gaps = sorted((a, b) for sd, a, b in road.side_gaps if sd == side)
        return self._free_ranges(road, 0.0, road.length, gaps)

    def _curbs_and_borders(self, road: RoadGeom):
        for side in ("right", "left"):
            sg = road.sign(side)
            bands = road.bands[side]
            curb = next((b for b in bands if b.kind == "curb"), None)
            ranges = self._side_ranges(road, side)
            for a, b in ranges:
                if curb is not None:
                    self.curbs.append(dict(id=self.new_id("curb"), kind="curbstone", road=road.spec.id, side=side,
                                           t=sg * curb.a, s0=a, s1=b, height_m=curb.height))
                elif bands:  # no curb: the asphalt simply ends
                    edge = road.carriageway_edge(side)
                    self.curbs.append(dict(id=self.new_id("edge"), kind="road_border", road=road.spec.id, side=side,
                                           t=sg * edge, s0=a, s1=b, height_m=0.0))
        med = road.spec.median
        if med is not None and med.kind == "island":
            ranges = self._free_ranges(road, 0.0, road.length, sorted(road.median_gaps))
            for a, b in ranges:
                for t in (road.m, -road.m):
                    self.curbs.append(dict(id=self.new_id("curb"), kind="curbstone", road=road.spec.id,
                                           side="median", t=t, s0=a, s1=b, height_m=med.height))

    def _edge_at(self, road, t, s):
        """Id of the boundary or curb at signed offset t and station s, or None."""
        for bd in self.boundaries:
            if bd["road"] == road.spec.id and abs(bd["t"] - t) < 1e-6 and bd["s0"] - 1e-6 <= s <= bd["s1"] + 1e-6:
                return bd["id"]
        for cb in self.curbs:
            if "t" in cb and cb["road"] == road.spec.id and abs(cb["t"] - t) < 1e-6 and cb["s0"] - 1e-6 <= s <= cb["s1"] + 1e-6:
                return cb["id"]
        return None

    def _lanes(self, road: RoadGeom):
        """Lane sections: constant left/right boundaries; gaps get virtual boundaries."""
        stations = np.arange(0.0, road.length + 1e-9, 0.5)
        if stations[-1] < road.length:
            stations = np.append(stations, road.length)
        virtual: dict = {}
        for side in ("right", "left"):
            sg = road.sign(side)
            for k, band in enumerate(road.driving_bands(side)):
                t_in, t_out = sg * band.a, sg * band.b
                ids = []
                for s in stations:
                    li = self._edge_at(road, t_in, s)
                    ri = self._edge_at(road, t_out, s)
                    ids.append((li, ri))
                # split into sections of constant (left, right)
                sections = []
                start = 0
                for i in range(1, len(stations) + 1):
                    if i == len(stations) or ids[i] != ids[start]:
                        sections.append((stations[start], stations[i - 1] if i == len(stations) else stations[i], ids[start]))
                        start = i
                prev_id = None
                lane_ids = []
                for s0, s1, (li, ri) in sections:
                    if s1 - s0 < 0.25:
                        continue
                    li = li or self._virtual(road, t_in, s0, s1, virtual)
                    ri = ri or self._virtual(road, t_out, s0, s1, virtual)
                    lid = self.new_id("lane")
                    lane = dict(id=lid, road=road.spec.id, side=side, index=k + 1, kind=band.kind,
                                direction="forward" if side == "right" else "backward", t_left=t_in, t_right=t_out,
                                s0=float(s0), s1=float(s1), left=li, right=ri, width_m=band.b - band.a,
                                predecessor=None, successor=None)
                    if prev_id is not None:
                        # in driving direction: forward lanes run with s, backward ones against it
                        prev = next(x for x in self.lanes if x["id"] == prev_id)
                        if side == "right":
                            prev["successor"], lane["predecessor"] = lid, prev_id
                        else:
                            prev["predecessor"], lane["successor"] = lid, prev_id
                    self.lanes.append(lane)
                    prev_id = lid
                    lane_ids.append(lid)

    def _virtual(self, road, t, s0, s1, cache):
        key = (road.spec.id, round(t, 6), round(s0, 3), round(s1, 3))
        if key not in cache:
            vid = self.new_id("virtual")
            cache[key] = vid
            self.boundaries.append(dict(id=vid, kind="virtual", pattern=None, stroke_m=None, gap_m=None, width_m=None,
                                        color=None, road=road.spec.id, t=t, s0=s0, s1=s1))
        return cache[key]

    # -- surface decals -------------------------------------------------------
    def build_decals(self):
        f = self.features
        for road in self.roads:
            km = road.length / 1000.0
            lanes = [(side, b) for side in ("right", "left") for b in road.bands[side] if b.kind in rd.ROAD_LEVEL]
            if not lanes:
                continue
            rng = self.rng

            def lane_point(margin=0.4):
                side, band = lanes[int(rng.integers(len(lanes)))]
                sg = road.sign(side)
                w = band.b - band.a
                t = sg * (band.a + margin + rng.random() * max(w - 2 * margin, 0.01))
                return float(rng.uniform(2.0, road.length - 2.0)), t

            for _ in range(rng.poisson(f.manholes_per_km * km)):
                s, t = lane_point(0.6)
                self.decals.append((road.index, 0, [s, t, 0.31, 0, 0, 0, 0, 0], None, MANHOLE_REFLECTANCE))
            for _ in range(rng.poisson(f.wet_patches_per_km * km)):
                s, t = lane_point(0.8)
                a, b = rng.uniform(0.8, 2.5), rng.uniform(0.5, 1.5)
                self.decals.append((road.index, 1, [s, t, a, b, rng.uniform(0, np.pi), 0, 0, 0], None, WET_REFLECTANCE))
            for _ in range(rng.poisson(f.patches_per_km * km)):
                s, t = lane_point(1.0)
                a, b = rng.uniform(1.5, 4.0), rng.uniform(1.0, 2.5)
                ang = rng.uniform(-0.2, 0.2)
                c, sn = np.cos(ang), np.sin(ang)
                corners = np.array([[-a, -b], [a, -b], [a, b], [-a, b]]) / 2
                quad = np.column_stack([s + corners[:, 0] * c - corners[:, 1] * sn, t + corners[:, 0] * sn + corners[:, 1] * c])
                refl = PATCH_REFLECTANCES[int(rng.integers(2))]
                self.decals.append((road.index, 2, [0] * 8, quad, refl))
            for _ in range(rng.poisson(f.tar_snakes_per_km * km)):
                s, t = lane_point(0.3)
                n = int(rng.integers(6, 25))
                ang = rng.uniform(0, 2 * np.pi)
                pts = [(s, t)]
                for _k in range(n):
                    ang += rng.normal(0, 0.5)
                    s += 0.25 * np.cos(ang)
                    t += 0.25 * np.sin(ang)
                    pts.append((s, t))
                w = rng.uniform(0.015, 0.03)
                for (s0, t0), (s1, t1) in zip(pts[:-1], pts[1:]):
                    ds, dt = s1 - s0, t1 - t0
                    nrm = np.hypot(ds, dt) + 1e-12
                    ns, nt = -dt / nrm * w, ds / nrm * w
                    quad = np.array([[s0 - ns, t0 - nt], [s1 - ns, t1 - nt], [s1 + ns, t1 + nt], [s0 + ns, t0 + nt]])
                    area = 0.5 * np.sum(quad[:, 0] * np.roll(quad[:, 1], -1) - np.roll(quad[:, 0], -1) * quad[:, 1])
                    if area < 0:
                        quad = quad[::-1].copy()
                    self.decals.append((road.index, 2, [0] * 8, quad, TAR_SNAKE_REFLECTANCE))

    # -- objects --------------------------------------------------------------
    def add_box(self, center, half, yaw, mat):
        """A closed box (12 triangles) centred at *center* with half extents *half*, rotated by yaw about z."""
        c, s = math.cos(yaw), math.sin(yaw)
        hx, hy, hz = half
        corners = []
        for dz in (-hz, hz):
            for dx, dy in ((-hx, -hy), (hx, -hy), (hx, hy), (-hx, hy)):
                corners.append([center[0] + dx * c - dy * s, center[1] + dx * s + dy * c, center[2] + dz])
        v = np.array(corners)
        faces = [(0, 1, 2, 3), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7)]
        tris = []
        for a, b, cc, d in faces:
            tris.append([v[a], v[b], v[cc]])
            tris.append([v[a], v[cc], v[d]])
        tris = np.array(tris)
        self.tris.append(tris)
        self.tri_mat.append(np.full(len(tris), MAT[mat], np.int32))
        self.tri_road.append(np.full(len(tris), -1, np.int32))
        self.tri_st.append(np.zeros((len(tris), 3, 2)))

    def _yaw(self, road, s):
        return float(road.ref.eval([s])[2][0])

    def _forbidden(self, road, s, margin):
        """True near junction mouths, crosswalks and the road ends (no parked cars, buildings)."""
        if s < margin or s > road.length - margin:
            return True
        for _, a, b in road.side_gaps:
            if a - margin <= s <= b + margin:
                return True
        for cw in road.spec.crosswalks:
            if abs(s - cw.s) < cw.length / 2 + margin:
                return True
        return False

    def build_objects(self):
        f = self.features
        rng = self.rng
        for road in self.roads:
            km = road.length / 1000.0
            for side in ("right", "left"):
                sg = road.sign(side)
                bands = road.bands[side]
                parking = [b for b in bands if b.kind == "parking"]
                # parked cars, some standing over the edge line
                for band in parking:
                    s = float(rng.uniform(3, 10))
                    density = f.parked_cars_per_km / 1000.0
                    while s < road.length - 5 and density > 0:
                        gap = rng.exponential(1.0 / max(density, 1e-6)) if density < 0.18 else rng.uniform(0.8, 3.0)
                        s += 4.5 + gap
                        if s > road.length - 5 or self._forbidden(road, s, 8.0):
                            continue
                        length, width = float(rng.uniform(4.0, 4.9)), float(rng.uniform(1.7, 1.9))
                        if rng.random() < f.cars_on_lines:
                            inner = band.a - float(rng.uniform(0.15, 0.5))  # over the line into the lane
                        else:
                            inner = band.a + float(rng.uniform(0.15, 0.35))
                        tc = sg * (inner + width / 2)
                        self._car(road, s, tc, length, width)
                        self.parked.append(dict(road=road.spec.id, s=s, t=tc, length=length, width=width))
                # trees on verges, poles and signs at the sidewalk's outer edge
                verge = next((b for b in bands if b.kind == "verge"), None)
                walk = next((b for b in bands if b.kind == "sidewalk"), None)
                if verge is not None and verge.b - verge.a >= 1.2:
                    for _ in range(rng.poisson(f.trees_per_km * km / 2)):
                        s = float(rng.uniform(5, road.length - 5))
                        if self._forbidden(road, s, 4.0):
                            continue
                        t = sg * float(rng.uniform(verge.a + 0.5, verge.b - 0.5))
                        self._tree(road, s, t)
                post_band = walk or verge
                if post_band is not None:
                    for _ in range(rng.poisson(f.poles_per_km * km / 2)):
                        s = float(rng.uniform(5, road.length - 5))
                        if self._forbidden(road, s, 3.0):
                            continue
                        t = sg * (post_band.b - 0.4)
                        x, y = road.ref.point([s], [t])
                        z = float(road.surface_z(s, t)[0])
                        self.cyl.append([x[0], y[0], z - 0.2, z + float(rng.uniform(6.0, 9.0)), 0.08])
                        self.cyl_mat.append(MAT["pole"])
                    for _ in range(rng.poisson(f.signs_per_km * km / 2)):
                        s = float(rng.uniform(5, road.length - 5))
                        if self._forbidden(road, s, 3.0):
                            continue
                        t = sg * (post_band.a + 0.5)
                        x, y = road.ref.point([s], [t])
                        z = float(road.surface_z(s, t)[0])
                        top = z + float(rng.uniform(2.6, 3.2))
                        self.cyl.append([x[0], y[0], z - 0.2, top, 0.04])
                        self.cyl_mat.append(MAT["pole"])
                        yaw = self._yaw(road, s)
                        size = float(rng.choice([0.6, 0.75, 0.9]))
                        self.add_box([x[0], y[0], top + size / 2 - 0.1], [0.02, size / 2, size / 2], yaw, "sign")
                # buildings along the outer edge
                if f.buildings and bands and any(b.kind == "sidewalk" for b in bands):
                    edge = road.outer_edge(side)
                    s = float(rng.uniform(0, 8))
                    while s < road.length:
                        blen = float(rng.uniform(12, 30))
                        mid = s + blen / 2
                        if mid < road.length - 2 and not self._forbidden(road, mid, blen / 2 + 3):
                            depth = 10.0
                            t = sg * (edge + 0.3 + depth / 2)
                            x, y = road.ref.point([mid], [t])
                            z = float(road.surface_z(mid, sg * edge)[0])
                            h = float(rng.uniform(8, 18))
                            self.add_box([x[0], y[0], z - 0.5 + h / 2], [blen / 2, depth / 2, h / 2 + 0.5],
                                         self._yaw(road, mid), "building")
                        s += blen + float(rng.uniform(2, 8))
                # fences along verges
                if verge is not None and f.fences_per_km > 0:
                    for _ in range(rng.poisson(f.fences_per_km * km / 2)):
                        s0 = float(rng.uniform(0, road.length - 20))
                        seg_len = float(rng.uniform(20, 60))
                        self._strip(road, s0, min(s0 + seg_len, road.length), sg * (verge.b - 0.3), 0.0, 1.6, 0.03, "fence")
                if f.guard_rails and bands:
                    edge = road.carriageway_edge(side)
                    self._guardrail(road, 0.0, road.length, sg * (edge + 0.9))
            # the median barrier
            med = road.spec.median
            if med is not None and med.kind == "barrier" and f.guard_rails:
                self._guardrail(road, 0.0, road.length, 0.3)
                self._guardrail(road, 0.0, road.length, -0.3)
            if med is not None and med.kind == "island" and med.width >= 3.0:
                for _ in range(rng.poisson(f.trees_per_km * km / 4)):
                    s = float(rng.uniform(5, road.length - 5))
                    if any(a - 5 <= s <= b + 5 for a, b in road.median_gaps):
                        continue
                    self._tree(road, s, float(rng.uniform(-0.3, 0.3)), crown_max=2.2)
            # traffic
            lanes = [(side, b) for side in ("right", "left") for b in road.driving_bands(side)]
            if lanes and f.moving_cars_per_km > 0 and road.parent is None:
                for _ in range(rng.poisson(f.moving_cars_per_km * km)):
                    side, band = lanes[int(rng.integers(len(lanes)))]
                    sg = road.sign(side)
                    self.moving.append(dict(road=road.index, s0=float(rng.uniform(0, road.length)),
                                            t=sg * 0.5 * (band.a + band.b), dir=1.0 if side == "right" else -1.0,
                                            speed=float(rng.uniform(7.0, 15.0)), t0=0.0,
                                            hx=float(rng.uniform(2.1, 2.5)), hy=0.9, hz=float(rng.uniform(0.65, 0.8))))

    def _car(self, road, s, t, length, width):
        yaw = self._yaw(road, s)
        x, y = road.ref.point([s], [t])
        z = float(road.road_level_z(s, t))
        self.add_box([x[0], y[0], z + 0.2 + 0.4], [length / 2, width / 2, 0.4], yaw, "car")
        c, sn = math.cos(yaw), math.sin(yaw)
        back = -0.25
        self.add_box([x[0] + back * c, y[0] + back * sn, z + 1.0 + 0.23], [length * 0.28, width / 2 - 0.08, 0.23],
                     yaw, "glass")

    def _tree(self, road, s, t, crown_max=3.5):
        rng = self.rng
        x, y = road.ref.point([s], [t])
        z = float(road.surface_z(s, t)[0])
        trunk_h = float(rng.uniform(2.2, 3.2))
        self.cyl.append([x[0], y[0], z - 0.2, z + trunk_h + 1.0, float(rng.uniform(0.12, 0.25))])
        self.cyl_mat.append(MAT["trunk"])
        rx = float(rng.uniform(1.6, crown_max))
        rz = float(rng.uniform(1.8, 3.0))
        self.ell.append([x[0], y[0], z + trunk_h + rz * 0.85, rx, rx * float(rng.uniform(0.85, 1.15)), rz])
        self.ell_mat.append(MAT["crown"])

    def _strip(self, road, s0, s1, t, z0, z1, thick, mat, step=4.0):
        n = max(1, int(np.ceil((s1 - s0) / step)))
        edges = np.linspace(s0, s1, n + 1)
        for a, b in zip(edges[:-1], edges[1:]):
            m = 0.5 * (a + b)
            x, y = road.ref.point([m], [t])
            z = float(road.surface_z(m, t)[0])
            self.add_box([x[0], y[0], z + 0.5 * (z0 + z1)], [0.5 * (b - a) + 0.02, thick / 2, 0.5 * (z1 - z0)],
                         self._yaw(road, m), mat)

    def _guardrail(self, road, s0, s1, t):
        self._strip(road, s0, s1, t, 0.45, 0.75, 0.08, "guardrail")
        for s in np.arange(s0 + 1.0, s1, 2.0):
            x, y = road.ref.point([s], [t + (0.12 if t > 0 else -0.12)])
            z = float(road.surface_z(s, t)[0])
            self.cyl.append([x[0], y[0], z - 0.1, z + 0.72, 0.06])
            self.cyl_mat.append(MAT["guardrail"])

    # -- assemble -------------------------------------------------------------
    def scene(self) -> Scene:
        tri_v = np.concatenate(self.tris) if self.tris else np.zeros((0, 3, 3))
        paint = self.paint
        decals = self.decals
        mk_index = {m["id"]: i for i, m in enumerate(self.markings)}
        return Scene(
            description=self.desc, origin=self.origin, roads=self.roads,
            tri_v=np.ascontiguousarray(tri_v), tri_mat=np.concatenate(self.tri_mat),
            tri_road=np.concatenate(self.tri_road), tri_st=np.ascontiguousarray(np.concatenate(self.tri_st)),
            cyl=np.array(self.cyl, dtype=np.float64).reshape(-1, 5), cyl_mat=np.array(self.cyl_mat, np.int32),
            ell=np.array(self.ell, dtype=np.float64).reshape(-1, 6),
            ell_density=np.full(len(self.ell), LEAF_DENSITY), ell_mat=np.array(self.ell_mat, np.int32),
            paint_quad=np.array([p[1] for p in paint], dtype=np.float64).reshape(-1, 4, 2),
            paint_refl=np.array([p[2] for p in paint], dtype=np.float64),
            paint_wear=np.array([p[3] for p in paint], dtype=np.float64),
            paint_marking=np.array([mk_index[p[4]] for p in paint], np.int64),
            paint_road=np.array([p[0] for p in paint], np.int64),
            decal_kind=np.array([d[1] for d in decals], np.int64),
            decal_par=np.array([d[2] for d in decals], dtype=np.float64).reshape(-1, 8),
            decal_quad=np.array([d[3] if d[3] is not None else np.zeros((4, 2)) for d in decals],
                                dtype=np.float64).reshape(-1, 4, 2),
            decal_refl=np.array([d[4] for d in decals], dtype=np.float64),
            decal_road=np.array([d[0] for d in decals], np.int64),
            moving_cars=self.moving, boundaries=self.boundaries, curbs=self.curbs, markings=self.markings,
            lanes=self.lanes, parked_cars=self.parked,
        )


def _arrow_quads(kind: str, length: float):
    """Convex quads of a turn arrow in its own frame: u forward from the centre, v to the left (metres)."""
    L = length
    u0, u1 = -L / 2, L / 2
    head = 0.4 * L
    shaft_w = 0.16 if L <= 5.5 else 0.2
    head_w = 0.6 if L <= 5.5 else 0.75

    def quad(pts):
        return np.array(pts, dtype=np.float64)

    def straight(v=0.0, top=u1):
        return [quad([[u0, v - shaft_w / 2], [top - head, v - shaft_w / 2], [top - head, v + shaft_w / 2],
                      [u0, v + shaft_w / 2]]),
                quad([[top - head, v - head_w / 2], [top, v], [top, v], [top - head, v + head_w / 2]])]

    def turn(sign):
        # stem to the middle, then a bent piece and a head pointing sideways-forward
        mid = u0 + 0.45 * L
        sw = shaft_w / 2
        qs = [quad([[u0, -sw], [mid, -sw], [mid, sw], [u0, sw]])]
        bend_end = (mid + 0.25 * L, sign * 0.55)
        qs.append(quad([[mid - 0.01, -sw], [bend_end[0], bend_end[1] - sw], [bend_end[0], bend_end[1] + sw],
                        [mid - 0.01, sw]]))
        tip = (bend_end[0] + 0.3 * L, bend_end[1] + sign * 0.35)
        hw = head_w / 2
        base_a = (bend_end[0] - 0.05, bend_end[1] - hw)
        base_b = (bend_end[0] - 0.05, bend_end[1] + hw)
        qs.append(quad([base_a, tip, tip, base_b]))
        if sign < 0:
            qs = [q[::-1].copy() if _signed_area(q) < 0 else q for q in qs]
        return qs

    if kind == "straight":
        return straight()
    if kind == "left":
        return turn(1.0)
    if kind == "right":
        return turn(-1.0)
    if kind == "straight_left":
        return straight(-0.3) + turn(1.0)[1:]
    if kind == "straight_right":
        return straight(0.3) + turn(-1.0)[1:]
    raise ValueError(kind)


def _signed_area(q):
    return 0.5 * np.sum(q[:, 0] * np.roll(q[:, 1], -1) - np.roll(q[:, 0], -1) * q[:, 1])


def build_scene(desc: rd.RoadDescription, seed: int = 0) -> Scene:
    """Build the scene of a road description; *seed* places the random features."""
    b = _Builder(desc, seed)
    ox, oy = b.origin
    for spec in desc.roads:
        theta0 = math.radians(90.0 - spec.heading)
        b.add_road(spec, spec.start[0] - ox, spec.start[1] - oy, theta0, spec.z, spec.grade)
    b.build_meshes()
    b.build_markings()
    b.build_edges_and_lanes()
    b.build_decals()
    b.build_objects()
    return b.scene()

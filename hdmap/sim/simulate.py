"""``hdmap simulate``: survey drives with ground truth.

For each pass the vehicle drives a route of the road description; each
scanner's pulses are cast against the scene in chunks of acquisition time (so
memory does not grow with the drive), the points are georeferenced with the
pass's GNSS error and written as LAZ 1.4, with the true class of every point
kept apart in ``truth/``.
"""

from __future__ import annotations

import collections
import datetime as _dt
import json
import logging
import math
import time as _time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import _atomic
from .._geojson import line_geometry, polygon_geometry, write_features
from .._version import __version__
from ..crs import parse_crs
from ..errors import ConfigError, ParameterError
from ..io import LasWriter
from ..pointcloud import PointCloud
from ..trajectory import Trajectory
from . import road as rd
from .presets import MIN_LENGTH, PRESETS, preset
from .scene import Scene, build_scene
from .vehicle import TRAJECTORY_RATE, plan_run

__all__ = ["ScannerSpec", "default_scanners", "simulate", "SimulationResult", "resolve_description"]

logger = logging.getLogger(__name__)

_GPS_EPOCH = _dt.datetime(1980, 1, 6)
#: Acquisition time cast per batch. Fixed, because traffic moves linearly within a batch:
#: another batch length would move the cars by millimetres and change the output bytes.
CHUNK_SECONDS = 0.2
_LEAP_SECONDS = 18  # GPS - UTC since 2017


@dataclass(frozen=True)
class ScannerSpec:
    """A scanner on the vehicle.

    kind : 'profile' (rotating mirror, one scan plane) or 'multibeam' (spinning head, several beams)
    rate : pulses per second
    frequency : profiles per second (profile) or rotations per second (multibeam)
    lever : (x forward, y left, z up) from the trajectory reference point, metres
    yaw, pitch : orientation of the rotation axis in degrees (profile: axis = driving direction at 0/0)
    """

    kind: str = "profile"
    rate: float = 1_000_000.0
    frequency: float = 250.0
    lever: tuple = (-0.8, 0.0, 0.35)
    yaw: float = 0.0
    pitch: float = 0.0
    max_range: float = 120.0
    min_range: float = 1.5
    range_noise: float = 0.005
    beams: tuple = ()

    def array(self) -> np.ndarray:
        return np.array([0.0 if self.kind == "profile" else 1.0, *self.lever, math.radians(self.yaw),
                         math.radians(self.pitch), self.frequency, self.max_range, self.min_range,
                         self.range_noise, 0.0])


def default_scanners(count: int = 2, rate: float = 1_000_000.0, multibeam: bool = False) -> list[ScannerSpec]:
    """Two profile scanners in an X configuration (rotation axes yawed +-40 degrees), optionally a multi-beam head."""
    if count not in (1, 2):
        raise ParameterError(f"--scanners must be 1 or 2, got {count}")
    out = [ScannerSpec(rate=rate, lever=(-0.8, 0.45, 0.35), yaw=40.0)]
    if count == 2:
        out.append(ScannerSpec(rate=rate, lever=(-0.8, -0.45, 0.35), yaw=-40.0))
    if multibeam:
        beams = tuple(np.round(np.linspace(-25.0, 15.0, 32), 3))
        out.append(ScannerSpec(kind="multibeam", rate=rate * 0.6, frequency=10.0, lever=(0.2, 0.0, 0.45),
                               max_range=100.0, min_range=2.0, range_noise=0.02, beams=beams))
    return out


#: Intensity model: I = gain * reflectance * cos(incidence)^1 * (10 m / max(range, 3 m))^1.7 * speckle + noise,
#: clipped to uint16. Asphalt (0.12) reads about 1,000 at 10 m, paint (0.55) about 4,500; paint saturates
#: closer than about 3.5 m. The exponent is deliberately not 2: no stage may assume it.
INTENSITY_GAIN = 15_000.0
RANGE_EXPONENT = 1.7


def _physics(noise_rate: float) -> np.ndarray:
    """gain, r_ref, r_near, incidence exponent, speckle sigma, additive sigma, noise rate, high-noise height,
    energy left after a porous return, minimum separation of returns, range exponent."""
    from ..classes import HIGH_NOISE_MIN_HEIGHT

    return np.array([INTENSITY_GAIN, 10.0, 3.0, 1.0, 0.10, 20.0, noise_rate, HIGH_NOISE_MIN_HEIGHT, 0.55, 0.8,
                     RANGE_EXPONENT])


@dataclass
class SimulationResult:
    out: Path
    drives: list = field(default_factory=list)
    trajectories: list = field(default_factory=list)
    points: list = field(default_factory=list)
    seconds: float = 0.0
    preview: Path | None = None
    #: seconds spent casting (the calling thread) and merging, encoding and writing points (the
    #: writer thread, overlapping the casting; includes closing the LAZ files)
    timing: dict = field(default_factory=lambda: {"cast_s": 0.0, "write_s": 0.0})

    @property
    def total_points(self) -> int:
        return int(sum(self.points))


def resolve_description(preset_name: str | None = None, road_file=None, length: float | None = None) -> rd.RoadDescription:
    """The road description from a preset (scaled to *length*) or a TOML file."""
    if road_file is not None:
        if length is not None:
            logger.info("--length is ignored with a road description file")
        return rd.load_road_description(road_file)
    name = preset_name or "urban"
    if name not in PRESETS:
        raise ParameterError(f"--preset: unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    lo = MIN_LENGTH[name]
    if length is not None and not lo <= length <= 50_000:
        raise ParameterError(f"--length for preset {name} must be between {lo:g} and 50000 m, got {length:g}")
    return rd.parse_road_description(preset(name, length or 1000.0), source=f"preset {name}", name=name)


def _gps_start(date: _dt.date, pass_index: int, pass_gap: float) -> float:
    start = _dt.datetime(date.year, date.month, date.day, 9, 0, 0)
    gps = (start - _GPS_EPOCH).total_seconds() + _LEAP_SECONDS
    return gps - 1e9 + pass_index * pass_gap  # adjusted standard GPS time


class _NpyStream:
    """Write a 1-D .npy file chunk by chunk (header fixed-size, count patched at the end), atomically."""

    def __init__(self, path: Path, dtype):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.n = 0
        self._ctx = _atomic.atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._fh = open(self._tmp, "wb")
        self._fh.write(self._header(0))

    def _header(self, n: int) -> bytes:
        text = "{'descr': '%s', 'fortran_order': False, 'shape': (%d,), }" % (self.dtype.str, n)
        total = 128
        text = text.ljust(total - 10 - 1) + "\n"
        return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")

    def write(self, arr):
        arr = np.ascontiguousarray(arr, dtype=self.dtype)
        self._fh.write(arr.tobytes())
        self.n += len(arr)

    def close(self, ok: bool = True):
        if ok:
            self._fh.seek(0)
            self._fh.write(self._header(self.n))
        self._fh.close()
        if ok:
            self._ctx.__exit__(None, None, None)
        else:
            err = RuntimeError("aborted")
            self._ctx.__exit__(RuntimeError, err, None)


class _Raster:
    """Mean log-intensity raster accumulated chunk by chunk (for the preview)."""

    def __init__(self, x0, y0, x1, y1, res):
        self.x0, self.y0, self.res = x0, y0, res
        self.nx = max(int(np.ceil((x1 - x0) / res)), 1)
        self.ny = max(int(np.ceil((y1 - y0) / res)), 1)
        self.sum = np.zeros(self.nx * self.ny)
        self.cnt = np.zeros(self.nx * self.ny)

    def add(self, x, y, v):
        i = np.floor((x - self.x0) / self.res).astype(np.int64)
        j = np.floor((y - self.y0) / self.res).astype(np.int64)
        ok = (i >= 0) & (i < self.nx) & (j >= 0) & (j < self.ny)
        k = j[ok] * self.nx + i[ok]
        self.sum += np.bincount(k, weights=v[ok], minlength=self.sum.size)
        self.cnt += np.bincount(k, minlength=self.cnt.size)

    def image(self):
        with np.errstate(invalid="ignore", divide="ignore"):
            img = self.sum / self.cnt
        return img.reshape(self.ny, self.nx)


class _Behind:
    """Run jobs one after another on a worker thread, in order, while the caller goes on.

    The simulator casts batch c + 1 (Numba, all cores, GIL released) while batch
    c is merged, encoded and compressed (laspy/lazrs, GIL mostly released): on
    two cores the overlap alone took a tenth off the wall time (urban, 200 m:
    13.9 s -> 12.7 s, same bytes). At most *depth*
    jobs wait, so memory stays bounded; a job's exception is raised in the caller
    at the next :meth:`submit` or :meth:`drain`. Leaving the ``with`` block waits
    for the running job and drops the waiting ones.
    """

    def __init__(self, depth: int = 2):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hdmap-writer")
        self._pending: collections.deque = collections.deque()
        self._depth = depth
        self.busy_s = 0.0  # time the worker spent on jobs
        self._failed = False

    def _timed(self, fn, args):
        if self._failed:  # after a failure the jobs queued behind it are skipped
            return
        t = _time.perf_counter()
        try:
            fn(*args)
        except BaseException:
            self._failed = True
            raise
        finally:
            self.busy_s += _time.perf_counter() - t

    def submit(self, fn, *args) -> None:
        while len(self._pending) >= self._depth:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._timed, fn, args))

    def drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def __enter__(self) -> "_Behind":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        for f in self._pending:
            f.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)
        return False


def simulate(out, *, preset_name: str | None = "urban", road_file=None, description: rd.RoadDescription | None = None,
             length: float | None = None, passes: int = 2, seed: int = 0, rate: float | None = None,
             speed: float | None = None, scanners: int = 2, multibeam: bool = False, preview=None,
             noise_rate: float | None = None, progress=None) -> SimulationResult:
    """Simulate *passes* survey drives and write LAZ, trajectories, truth and campaign.toml to *out*.

    Parameters
    ----------
    out : path
        Output directory (created).
    preset_name, road_file, description
        The scene: a preset name, a road-description TOML file, or a parsed description.
    length : float, optional
        Road length for presets (m), default 1000.
    passes : int
        Number of drives; they cycle through the description's routes (forward, backward, ...).
    seed : int
        Scene layout, vehicle motion and measurement noise all derive from it.
    rate : float, optional
        Pulses per second per profile scanner (default 1 M).
    speed : float, optional
        Survey speed in m/s (default: the description's ``speed_kmh``).
    scanners : {1, 2}
        Profile scanners on the vehicle.
    multibeam : bool
        Add a spinning 32-beam lidar.
    preview : path, optional
        Write a top-down intensity PNG with the truth drawn over it.
    progress : callable, optional
        Called with the number of points written after each chunk.
    """
    from ..kernels.raycast import boxes_in_sweep, cast_rays, merge_batch, new_buffers

    chunk_seconds = CHUNK_SECONDS
    t_start_wall = _time.perf_counter()
    if passes < 1:
        raise ParameterError(f"--passes must be at least 1, got {passes}")
    if rate is not None and not 1e3 <= rate <= 5e6:
        raise ParameterError(f"--rate must be between 1e3 and 5e6 points/s per scanner, got {rate:g}")
    if speed is not None and not 0.5 <= speed <= 40:
        raise ParameterError(f"--speed must be between 0.5 and 40 m/s, got {speed:g}")
    desc = description or resolve_description(preset_name, road_file, length)
    crs = parse_crs(desc.crs, source="crs of the road description")
    if crs.to_epsg() != 25832:
        raise ConfigError(f"{desc.source}: the simulator works in EPSG:25832 (got {desc.crs}); "
                          "give positions in ETRS89 / UTM 32N")
    out = Path(out)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    scene = build_scene(desc, seed)
    arrays = scene.kernel_arrays()
    specs = default_scanners(scanners, rate or 1_000_000.0, multibeam)
    v = speed if speed is not None else desc.speed_kmh / 3.6
    phys = _physics(desc.features.noise_rate if noise_rate is None else noise_rate)
    E0, N0 = scene.origin
    offsets = np.array([math.floor(E0 / 1000) * 1000, math.floor(N0 / 1000) * 1000, 0.0])
    result = SimulationResult(out=out)

    runs = []
    for k in range(passes):
        legs = desc.drives[k % len(desc.drives)]
        runs.append(plan_run(scene, legs, speed=v, rng=np.random.default_rng([int(seed), 2, k])))
    pass_gap = math.ceil(max(r.duration for r in runs) + 120.0)
    t0_survey = _gps_start(desc.survey_date, 0, pass_gap)
    for car in scene.moving_cars:
        car["t0"] = t0_survey

    raster_all, raster_zoom, focus = _preview_rasters(scene) if preview else (None, None, None)
    buffers = [new_buffers(int(sc.rate * chunk_seconds) + 2 * max(len(sc.beams), 1)) for sc in specs]
    kernel_specs = [(sc.array(), np.radians(np.array(sc.beams, dtype=np.float64))) for sc in specs]
    for k, run in enumerate(runs):
        t_pass = _gps_start(desc.survey_date, k, pass_gap)
        pose = run.kernel_pose()
        laz = out / f"drive_{k}.laz"
        classes = _NpyStream(out / "truth" / f"classes_{k}.npy", np.uint8)
        ok = False

        def emit(parts, writer):
            """Merge one batch of the scanners' points in time order and write it (on the writer thread,
            which is drained before the next pass)."""
            b = merge_batch(parts, t_pass)  # time order, independent of the batching
            m = len(b["gps_time"])
            if m == 0:
                return
            xyz = b["xyz"]
            # coordinates computed by the caster, finite by construction: no check
            cloud = PointCloud._unchecked(xyz, {
                "intensity": b["intensity"],
                "return_number": b["ret"],
                "number_of_returns": b["nret"],
                "scanner_channel": b["scanner"],
                "classification": np.zeros(m, np.uint8),
                "scan_angle": b["scan_angle"],
                "point_source_id": np.full(m, k, np.uint16),
                "gps_time": b["gps_time"],
            }, crs, None)
            writer.write(cloud)
            classes.write(b["cls"])
            if raster_all is not None:
                li = np.log10(np.maximum(b["intensity"].astype(np.float64), 1.0))
                raster_all.add(xyz[:, 0], xyz[:, 1], li)
                raster_zoom.add(xyz[:, 0], xyz[:, 1], li)
            if progress is not None:
                progress(m)

        try:
            with LasWriter(laz, crs=crs, offsets=offsets, system_identifier="hdmap simulator") as writer, \
                    _Behind() as behind:
                n_chunks = int(math.ceil(run.duration / chunk_seconds))
                for c in range(n_chunks):
                    ta, tb = c * chunk_seconds, min((c + 1) * chunk_seconds, run.duration)
                    boxes = scene.moving_boxes(t_pass + 0.5 * (ta + tb))
                    if len(boxes):
                        boxes[:, 9] = 0.5 * (ta + tb)
                        # only traffic within reach of the scanners during this batch
                        i_mid = min(int(0.5 * (ta + tb) * TRAJECTORY_RATE), len(run.xyz) - 1)
                        reach = max(sc.max_range for sc in specs) + 10.0 + 30.0 * chunk_seconds
                        near = np.hypot(boxes[:, 0] - run.xyz[i_mid, 0], boxes[:, 1] - run.xyz[i_mid, 1]) < reach
                        boxes = np.ascontiguousarray(boxes[near])
                    parts = []
                    for si, sc in enumerate(specs):
                        step = max(len(sc.beams), 1)
                        r0 = int(round(ta * sc.rate / step)) * step
                        r1 = int(round(tb * sc.rate / step)) * step
                        n = r1 - r0
                        if n <= 0:
                            continue
                        tc = _time.perf_counter()
                        scanner, beams = kernel_specs[si]
                        mine = boxes_in_sweep(boxes, scanner, pose, 1.0 / TRAJECTORY_RATE, r0 / sc.rate, r1 / sc.rate)
                        pts = cast_rays(arrays, scanner, beams, pose,
                                        1.0 / TRAJECTORY_RATE, t0=0.0, ray0=r0, n_rays=n, rate=sc.rate,
                                        seed=int(seed), stream=k * 8 + si, phys=phys, boxes=mine,
                                        box_mat=np.full(len(mine), _car_material(), np.int32),
                                        buffers=buffers[si], offset=(E0, N0, 0.0))
                        result.timing["cast_s"] += _time.perf_counter() - tc
                        pts["scanner"] = np.full(len(pts["t"]), si, np.uint8)
                        parts.append(pts)
                    if parts:
                        # the points are fresh arrays (compacted out of the reused buffers): the writer
                        # thread merges and writes them while the next batch is cast
                        behind.submit(emit, parts, writer)
                behind.drain()
                result.timing["write_s"] += behind.busy_s
                tw = _time.perf_counter()
            result.timing["write_s"] += _time.perf_counter() - tw  # closing flushes the last LAZ chunks
            ok = True
        finally:
            classes.close(ok)
        n_written = writer.point_count
        traj = Trajectory(t_pass + run.time, run.xyz + run.drift + [E0, N0, 0.0], run.roll, run.pitch,
                          np.mod(np.pi / 2 - run.yaw, 2 * np.pi), crs=crs, source=f"pass {k}")
        traj.write_ascii(out / f"trajectory_{k}.txt")
        traj.write_sbet(out / f"trajectory_{k}.sbet")
        result.drives.append(laz)
        result.trajectories.append(out / f"trajectory_{k}.txt")
        result.points.append(n_written)
        logger.info("pass %d: %s points, %.0f m in %.1f s of survey time", k, f"{n_written:,}", run.length_m,
                    run.duration)
    write_truth(scene, out / "truth", runs=runs, seed=seed)
    _write_campaign(out, desc, result, seed)
    if preview:
        from .preview import render_preview

        result.preview = render_preview(scene, raster_all, raster_zoom, focus, Path(preview))
    result.seconds = _time.perf_counter() - t_start_wall
    return result


def _car_material() -> int:
    from .scene import MAT

    return MAT["car"]


def _preview_rasters(scene: Scene):
    E0, N0 = scene.origin
    tri = scene.tri_v
    lo = tri[:, :, :2].reshape(-1, 2).min(0) + [E0, N0]
    hi = tri[:, :, :2].reshape(-1, 2).max(0) + [E0, N0]
    res = max((hi - lo).max() / 1400.0, 0.05)
    focus = _focus_point(scene) + np.array([E0, N0])
    half = np.array([30.0, 30.0])
    return (_Raster(lo[0], lo[1], hi[0], hi[1], res),
            _Raster(focus[0] - half[0], focus[1] - half[1], focus[0] + half[0], focus[1] + half[1], 0.05), focus)


def _focus_point(scene: Scene) -> np.ndarray:
    """Where the zoomed preview looks: the first junction, else the first crosswalk, else mid-road."""
    road = scene.roads[0]
    s = road.length / 2
    if road.spec.junctions:
        s = road.spec.junctions[0].s - 12.0
    elif road.spec.crosswalks:
        s = road.spec.crosswalks[0].s
    x, y = road.ref.point([s], [0.0])
    return np.array([x[0], y[0]])


# --------------------------------------------------------------------------
# truth files
# --------------------------------------------------------------------------
def _sample_s(s0, s1, step=1.0):
    n = max(int(np.ceil((s1 - s0) / step)), 1)
    return np.linspace(s0, s1, n + 1)


def write_truth(scene: Scene, tdir: Path, *, runs=None, seed=0):
    """Write boundaries, curbs, markings and lanes as GeoJSON (EPSG:25832) and scene facts as JSON."""
    E0, N0 = scene.origin
    roads = {r.spec.id: r for r in scene.roads}

    def world(xyz):
        xyz = np.array(xyz, dtype=np.float64)
        xyz[:, 0] += E0
        xyz[:, 1] += N0
        return xyz

    def along(road, t, s0, s1):
        s = _sample_s(s0, s1)
        return world(road.xyz(s, np.full(len(s), t)))

    feats = []
    for b in scene.boundaries:
        road = roads[b["road"]]
        props = {k: b[k] for k in ("id", "kind", "pattern", "stroke_m", "gap_m", "width_m", "color", "road")}
        feats.append((line_geometry(along(road, b["t"], b["s0"], b["s1"])), props))
    write_features(tdir / "boundaries.geojson", feats, name="boundaries")

    feats = []
    for c in scene.curbs:
        road = roads[c["road"]]
        xyz = world(c["xyz"]) if "xyz" in c else along(road, c["t"], c["s0"], c["s1"])
        props = {"id": c["id"], "kind": c["kind"], "height_m": round(float(c["height_m"]), 4), "road": c["road"]}
        feats.append((line_geometry(xyz), props))
    write_features(tdir / "curbs.geojson", feats, name="curbs")

    feats = []
    for mk in scene.markings:
        road = roads[mk["road"]]
        if "quads" in mk:
            import shapely

            polys = []
            for q in mk["quads"]:
                x, y = road.ref.point(q[:, 0], q[:, 1])
                polys.append(shapely.Polygon(np.column_stack([x, y])).buffer(0))
            geom = shapely.union_all(polys)
            if geom.geom_type != "Polygon":
                geom = geom.convex_hull
            ring = np.asarray(geom.exterior.coords)[:-1]
            s_mid = float(np.mean([q[:, 0].mean() for q in mk["quads"]]))
            z = float(road.road_level_z(s_mid, 0.0))
            xyz = world(np.column_stack([ring, np.full(len(ring), z)]))
        else:
            s0, s1, t0, t1 = mk["st"][0]
            s = _sample_s(s0, s1, 0.5)
            a = road.xyz(s, np.full(len(s), t0))
            b = road.xyz(s[::-1], np.full(len(s), t1))
            xyz = world(np.vstack([a, b]))
        props = {"id": mk["id"], "type": mk["type"], "road": mk["road"], "worn": bool(mk.get("wear", 0) > 0)}
        if "boundary" in mk:
            props["boundary"] = mk["boundary"]
        if "group" in mk:
            props["group"] = mk["group"]
        feats.append((polygon_geometry([xyz]), props))
    write_features(tdir / "markings.geojson", feats, name="markings")

    feats = []
    for ln in scene.lanes:
        road = roads[ln["road"]]
        tc = 0.5 * (ln["t_left"] + ln["t_right"])
        xyz = along(road, tc, ln["s0"], ln["s1"])
        if ln["direction"] == "backward":
            xyz = xyz[::-1]
        props = {k: ln[k] for k in ("id", "road", "left", "right", "direction", "width_m", "kind", "index",
                                    "predecessor", "successor")}
        props["width_m"] = round(float(props["width_m"]), 4)
        feats.append((line_geometry(xyz), props))
    write_features(tdir / "lanes.geojson", feats, name="lanes")

    facts = {
        "generator": f"hdmap {__version__} simulator",
        "seed": int(seed),
        "origin": [E0, N0],
        "roads": [{"id": r.spec.id, "length_m": round(r.length, 3), "context": r.spec.context} for r in scene.roads],
        "parked_cars": [{"road": p["road"], "s": round(p["s"], 3), "t": round(p["t"], 3),
                         "length": round(p["length"], 3), "width": round(p["width"], 3),
                         "xy": [round(float(v), 3) for v in np.array(roads[p["road"]].ref.point([p["s"]], [p["t"]])).ravel() + [E0, N0]],
                         "yaw": round(float(roads[p["road"]].ref.eval([p["s"]])[2][0]), 6)} for p in scene.parked_cars],
        "moving_cars": len(scene.moving_cars),
        "passes": [{"length_m": round(r.length_m, 3), "duration_s": round(r.duration, 3)} for r in (runs or [])],
        "materials_reflectance": {"asphalt": 0.12, "paint": 0.55},
    }
    _atomic.write_text_atomic(tdir / "scene.json", json.dumps(facts, indent=1) + "\n")


def _toml_str(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write_campaign(out: Path, desc: rd.RoadDescription, result: SimulationResult, seed: int):
    lines = [
        f"# hdmap campaign, written by hdmap simulate ({desc.name}, seed {seed})",
        "# format: see hdmap.pipelines.campaign; paths are relative to this file's directory",
        "[campaign]",
        f"name = {_toml_str(f'{desc.name}-seed{seed}')}",
        f"crs = {_toml_str(desc.crs)}",
        "",
    ]
    for k, (laz, traj) in enumerate(zip(result.drives, result.trajectories)):
        lines += [
            "[[drives]]",
            f"name = {_toml_str(f'pass{k}')}",
            f"laz = [{_toml_str(Path(laz).name)}]",
            f"trajectory = {_toml_str(Path(traj).name)}",
            f"crs = {_toml_str(desc.crs)}",
            "",
        ]
    lines += [
        "[tiles]",
        "size = 100.0",
        "buffer = 16.0",
        "vector_buffer = 35.0",
        "",
        "[truth]",
        f"dir = {_toml_str('truth')}",
        "",
    ]
    _atomic.write_text_atomic(out / "campaign.toml", "\n".join(lines))

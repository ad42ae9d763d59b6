"""Shared fixtures: small LAS/LAZ files written with laspy directly (independent of hdmap's writer)."""

from __future__ import annotations

import os

import laspy
import numpy as np
import pyproj
import pytest

from hdmap.trajectory import Trajectory

os.environ.setdefault("NUMBA_CACHE_DIR", "")  # use the default (__pycache__ beside the kernels)

UTM32 = pyproj.CRS.from_epsg(25832)
GK4 = pyproj.CRS.from_epsg(31468)


def random_dimension(rng, dim, n):
    """Random valid values for one laspy dimension."""
    if dim.kind == laspy.DimensionKind.BitField:
        return rng.integers(0, 2**dim.num_bits, n).astype(np.uint8)
    dtype = dim.dtype
    if dim.num_elements > 1:
        shape = (n, dim.num_elements)
        base = dtype.base
    else:
        shape = (n,)
        base = dtype
    if base.kind == "f":
        return rng.normal(0, 1000, shape).astype(base)
    info = np.iinfo(base)
    return rng.integers(info.min, info.max, shape, dtype=base, endpoint=True)


def make_las(path, n=5000, *, point_format=6, version=None, crs=UTM32, extra=(), rng=None, origin=(692000.0, 5343800.0, 480.0),
             scales=(0.001, 0.001, 0.001)):
    """Write a LAS/LAZ file with random values in every dimension; return the laspy LasData written."""
    rng = np.random.default_rng(0) if rng is None else rng
    header = laspy.LasHeader(point_format=point_format, version=version)
    header.scales = np.array(scales)
    header.offsets = np.array(origin)
    for params in extra:
        header.add_extra_dim(params)
    if crs is not None:
        header.add_crs(crs)
    las = laspy.LasData(header)
    las.X = rng.integers(-200_000, 200_000, n).astype(np.int32)
    las.Y = rng.integers(-200_000, 200_000, n).astype(np.int32)
    las.Z = rng.integers(-5_000, 20_000, n).astype(np.int32)
    for dim in las.point_format.dimensions:
        if dim.name in ("X", "Y", "Z"):
            continue
        if dim.name == "gps_time":
            las.gps_time = np.sort(rng.uniform(4.0e8, 4.0e8 + 100, n))
            continue
        if dim.name == "return_number":
            continue
        if dim.name.startswith("wavepacket") or dim.name in ("return_point_wave_location", "x_t", "y_t", "z_t"):
            continue  # set below with realistic values
        if dim.name == "number_of_returns":
            nr = rng.integers(1, 2**dim.num_bits, n).astype(np.uint8)
            las.number_of_returns = nr
            las.return_number = (rng.integers(0, 1 << 30, n) % nr + 1).astype(np.uint8)
            continue
        if dim.name == "scan_angle":
            las.scan_angle = rng.integers(-30000, 30000, n).astype(np.int16)
            continue
        if dim.name == "scan_angle_rank":
            las.scan_angle_rank = rng.integers(-90, 90, n).astype(np.int8)
            continue
        if dim.name == "classification" and point_format < 6:
            las.classification = rng.integers(0, 32, n).astype(np.uint8)
            continue
        if dim.is_standard or dim.scales is None:
            las[dim.name] = random_dimension(rng, dim, n)
        else:  # scaled extra bytes: give values on the grid
            raw = rng.integers(-1000, 1000, n)
            las[dim.name] = raw * dim.scales[0] + dim.offsets[0]
    if "wavepacket_index" in las.point_format.dimension_names:
        # realistic waveform fields: LAZ's wave-packet coder predicts each
        # packet from the previous one and does not round-trip arbitrary
        # random bit patterns in these fields (seen with lazrs 0.8)
        size = rng.integers(100, 300, n).astype(np.uint32)
        las.wavepacket_index = np.ones(n, np.uint8)
        if str(path).endswith(".laz"):  # see hdmap.io: lazrs mis-codes wave packets across scanner channels
            las.scanner_channel = np.zeros(n, np.uint8)
        las.wavepacket_size = size
        las.wavepacket_offset = (60 + np.concatenate([[0], np.cumsum(size[:-1], dtype=np.uint64)])).astype(np.uint64)
        las.return_point_wave_location = rng.uniform(0, 5000, n).astype(np.float32)
        for name in ("x_t", "y_t", "z_t"):
            las[name] = rng.uniform(-1e-3, 1e-3, n).astype(np.float32)
    las.write(str(path))
    return las


@pytest.fixture
def utm_laz(tmp_path):
    """A small LAZ 1.4 (point format 6) file with an EPSG:25832 WKT VLR."""
    path = tmp_path / "utm.laz"
    las = make_las(path, n=20_000, point_format=6)
    return path, las


# --------------------------------------------------------------------------
# simulated and classified surveys shared by the classification and vectorisation tests
# --------------------------------------------------------------------------
SCENES = {
    # small, fixed-seed drives: two passes in opposite directions, reduced pulse rate to keep the suite fast
    "urban": dict(preset_name="urban", length=150, passes=2, seed=11, rate=150_000),
    "motorway": dict(preset_name="motorway", length=160, passes=2, seed=11, rate=100_000),
}


@pytest.fixture(scope="session", params=sorted(SCENES))
def scene(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"cls_{request.param}")
    from hdmap.sim import simulate

    result = simulate(out, **SCENES[request.param])
    drives = [out / f"drive_{k}.laz" for k in range(len(result.drives))]
    trajectories = [Trajectory.read(out / f"trajectory_{k}.txt") for k in range(len(result.drives))]
    return request.param, out, drives, trajectories


@pytest.fixture(scope="session")
def classified(scene):
    name, out, drives, trajectories = scene
    from hdmap.stream import classify_file

    outputs = [out / f"classified_{k}.laz" for k in range(len(drives))]
    result = classify_file(drives, outputs, trajectories, tile=60.0, halo=12.0, max_tile_points=2_500_000)
    return result, outputs




@pytest.fixture(scope="session")
def extracted(scene, classified, tmp_path_factory):
    """The LaneMap extracted from a classified scene, its result directory and its accuracy metrics."""
    from hdmap.evaluate_map import evaluate_map
    from hdmap.vectorize import extract_files

    name, out, drives, trajectories = scene
    _, outputs = classified
    res = tmp_path_factory.mktemp(f"map_{name}")
    m = extract_files(outputs, res, trajectories)
    metrics = evaluate_map(out / "truth", res, trajectories=sorted(out.glob("trajectory_*.txt")))
    return name, m, res, metrics


# --------------------------------------------------------------------------
# ground-truth lane maps of the simulator presets (no ray casting: the scene only), for the exporters
# --------------------------------------------------------------------------
TRUTH_PRESETS = ("urban", "tempus-b13", "motorway", "junction")


def truth_map(preset: str, length: float = 200.0, seed: int = 11):
    """The simulator's ground truth of *preset* as a LaneMap (read back from the truth GeoJSON it writes)."""
    import tempfile
    from pathlib import Path

    from hdmap import LaneMap
    from hdmap.sim.scene import build_scene
    from hdmap.sim.simulate import resolve_description, write_truth

    scene = build_scene(resolve_description(preset, None, length), seed=seed)
    with tempfile.TemporaryDirectory() as d:
        write_truth(scene, Path(d), seed=seed)
        return LaneMap.from_geojson(d)


@pytest.fixture(scope="session", params=TRUTH_PRESETS)
def truth_lanemap(request):
    """(preset name, LaneMap) of the simulator's truth, for each preset."""
    return request.param, truth_map(request.param)

"""The simulator must look like a survey: tests of the physics, not only of the files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely

import hdmap
from hdmap import Class
from hdmap._geojson import read_features
from hdmap.municipalities import load_municipalities
from hdmap.sim import simulate

GROUND_LIKE = (Class.GROUND, Class.ROAD_SURFACE, Class.ROAD_MARKING, Class.CURB)


def load(result, k=0):
    cloud = hdmap.read(result.drives[k])
    classes = np.load(result.out / "truth" / f"classes_{k}.npy")
    assert len(classes) == len(cloud)
    return cloud, classes


def polygons(result, **where):
    feats, epsg = read_features(result.out / "truth" / "markings.geojson")
    assert epsg == 25832
    out = []
    for f in feats:
        if all(f["properties"].get(k) == v for k, v in where.items()):
            out.append((shapely.geometry.shape(f["geometry"]), f["properties"]))
    return out


def test_same_seed_same_bytes_other_seed_other_scene(tmp_path):
    kw = dict(preset_name="junction", length=60, passes=1, rate=30_000)
    a = simulate(tmp_path / "a", seed=11, **kw)
    b = simulate(tmp_path / "b", seed=11, **kw)
    c = simulate(tmp_path / "c", seed=12, **kw)
    files = sorted(p.relative_to(a.out) for p in a.out.rglob("*") if p.is_file())
    assert len(files) >= 10
    for f in files:
        assert (a.out / f).read_bytes() == (b.out / f).read_bytes(), f
    assert (a.out / "drive_0.laz").read_bytes() != (c.out / "drive_0.laz").read_bytes()
    # another seed is another scene (distractors, objects), not only other noise
    assert (a.out / "truth" / "scene.json").read_text() != (c.out / "truth" / "scene.json").read_text() or \
        (a.out / "truth" / "markings.geojson").read_bytes() != (c.out / "truth" / "markings.geojson").read_bytes()


def test_a_failure_while_writing_leaves_no_drive(tmp_path):
    """Points are written on a worker thread: its errors reach the caller, and no half-written LAZ stays."""
    calls = []

    def progress(n):
        calls.append(n)
        if len(calls) == 3:
            raise RuntimeError("disk full (simulated)")

    with pytest.raises(RuntimeError, match="disk full"):
        simulate(tmp_path / "s", preset_name="junction", length=60, passes=1, rate=30_000, seed=1, progress=progress)
    assert len(calls) == 3
    assert not list((tmp_path / "s").glob("*.laz*")) and not list((tmp_path / "s").rglob("classes_*.npy*"))


def test_marking_points_lie_inside_marking_polygons(sim_urban):
    cloud, cls = load(sim_urban)
    marks = shapely.union_all([g for g, _ in polygons(sim_urban)])
    paint = cls == Class.ROAD_MARKING
    assert paint.sum() > 2000
    pts = shapely.points(cloud.xyz[paint, :2])
    # GNSS drift of the pass (2 cm sigma per axis) and range noise shift points off the truth
    near = shapely.dwithin(pts, marks, 0.10)
    assert near.mean() > 0.995
    # and asphalt points are not found deep inside intact paint
    intact = shapely.union_all([g for g, p in polygons(sim_urban) if not p["worn"] and p["type"] != "crosswalk"])
    core = intact.buffer(-0.08)
    road = cls == Class.ROAD_SURFACE
    inside_core = shapely.contains_xy(core, cloud.x[road], cloud.y[road])
    inside_paint = shapely.contains_xy(core, cloud.x[paint], cloud.y[paint])
    assert inside_core.sum() < 0.02 * inside_paint.sum()


def test_dashed_lines_follow_the_rms_pattern(sim_urban):
    feats, _ = read_features(sim_urban.out / "truth" / "boundaries.geojson")
    dashed = [f for f in feats if f["properties"]["pattern"] == "dashed"]
    assert dashed, "the urban preset has a dashed centre line"
    for f in dashed:
        p = f["properties"]
        assert (p["stroke_m"], p["gap_m"]) in ((3.0, 6.0), (3.0, 3.0))  # Leitlinie in towns, 1:1 near junctions
        assert p["kind"] == "line_thin" and p["width_m"] == pytest.approx(0.12)
        line = shapely.geometry.shape(f["geometry"])
        strokes = sorted(
            (min(line.project(shapely.Point(c)) for c in g.exterior.coords),
             max(line.project(shapely.Point(c)) for c in g.exterior.coords))
            for g, _ in polygons(sim_urban, boundary=p["id"])
        )
        assert len(strokes) >= 3
        lengths = np.array([b - a for a, b in strokes])
        gaps = np.array([strokes[i + 1][0] - strokes[i][1] for i in range(len(strokes) - 1)])
        np.testing.assert_allclose(lengths[:-1], p["stroke_m"], atol=0.03)
        np.testing.assert_allclose(gaps, p["gap_m"], atol=0.03)


def _car_frames(result):
    facts = json.loads((result.out / "truth" / "scene.json").read_text())
    return facts["parked_cars"]


def _count_in_rect(xy, center, axis, along, across, a0, a1, l0, l1):
    d = xy - center
    u = d @ axis
    v = d @ across
    return int(((u >= a0) & (u <= a1) & (v >= l0) & (v <= l1)).sum())


def test_ground_behind_parked_cars_is_shadowed(sim_urban):
    cloud, cls = load(sim_urban)
    ground = np.isin(cls, GROUND_LIKE)
    xy = cloud.xyz[ground, :2]
    cars = _car_frames(sim_urban)
    assert len(cars) >= 3
    shadow = reference = 0
    for car in cars:
        c = np.array(car["xy"])
        fwd = np.array([np.cos(car["yaw"]), np.sin(car["yaw"])])
        left = np.array([-fwd[1], fwd[0]])
        out = -left if car["t"] < 0 else left  # away from the road centre
        half_l, half_w = car["length"] / 2, car["width"] / 2
        shadow += _count_in_rect(xy, c, fwd, None, out, -0.3 * half_l, 0.3 * half_l, half_w + 0.2, half_w + 1.2)
        # the same strip beside the road where no car stands (checked against all cars)
        for shift in (half_l + 6.0, -(half_l + 6.0)):
            c2 = c + fwd * shift
            if all(np.linalg.norm(np.array(o["xy"]) - c2) > half_l + 3.0 for o in cars):
                reference += _count_in_rect(xy, c2, fwd, None, out, -0.3 * half_l, 0.3 * half_l, half_w + 0.2,
                                            half_w + 1.2)
                break
    assert reference > 200
    assert shadow < 0.15 * reference, (shadow, reference)


def _trajectory_distance(result, k, xy):
    traj = hdmap.Trajectory.read(result.trajectories[k])
    from scipy.spatial import cKDTree

    tree = cKDTree(traj.xyz[:, :2])
    d, _ = tree.query(xy)
    return d


def test_point_density_falls_with_range(sim_urban):
    cloud, cls = load(sim_urban)
    road = cls == Class.ROAD_SURFACE
    xy = cloud.xyz[road, :2]
    d = _trajectory_distance(sim_urban, 0, xy)
    length = hdmap.Trajectory.read(sim_urban.trajectories[0]).length_m
    near = ((d > 1.5) & (d < 3.5)).sum() / (2 * 2.0 * length)
    far = ((d > 6.0) & (d < 8.0)).sum() / (2 * 2.0 * length)
    assert near > 1.8 * far > 0


def _scanner_geometry(result, cloud):
    """Range and cosine of incidence (flat ground) of every point, from the recorded trajectory and lever arms."""
    from hdmap.kernels.raycast import pose_matrices
    from hdmap.sim import default_scanners

    traj = hdmap.Trajectory.read(result.trajectories[0])
    pos, att = traj.interpolate(cloud.gps_time)
    yaw = np.pi / 2 - att[:, 2]
    R = pose_matrices(pos, att[:, 0], att[:, 1], yaw)[:, 3:12].reshape(-1, 3, 3)
    levers = np.array([s.lever for s in default_scanners(2)])
    origin = pos + np.einsum("nij,nj->ni", R, levers[cloud.scanner_channel])
    d = cloud.xyz - origin
    rng = np.linalg.norm(d, axis=1)
    return rng, np.abs(d[:, 2]) / rng


def test_paint_and_asphalt_intensity_follow_the_model(sim_urban):
    from hdmap.sim.simulate import RANGE_EXPONENT

    cloud, cls = load(sim_urban)
    intact = shapely.union_all([g.buffer(-0.04) for g, p in polygons(sim_urban) if not p["worn"]])
    rng, cosi = _scanner_geometry(sim_urban, cloud)
    band = (rng > 5.0) & (rng < 7.0)
    paint = band & (cls == Class.ROAD_MARKING) & shapely.contains_xy(intact, cloud.x, cloud.y)
    asphalt = band & (cls == Class.ROAD_SURFACE)
    assert paint.sum() > 300 and asphalt.sum() > 3000
    ratio = np.median(cloud.intensity[paint]) / np.median(cloud.intensity[asphalt])
    assert 3.9 < ratio < 5.3, ratio  # reflectance 0.55 vs 0.12 (4.6), same range and incidence
    # asphalt near and far: once range (r^-1.7) and incidence (cos) are divided out, the same level
    model = cosi * (10.0 / np.maximum(rng, 3.0)) ** RANGE_EXPONENT
    level = cloud.intensity / model
    road = cls == Class.ROAD_SURFACE
    near = road & (rng > 4.5) & (rng < 5.5)
    far = road & (rng > 9.5) & (rng < 10.5)
    raw = np.median(cloud.intensity[far]) / np.median(cloud.intensity[near])
    assert raw < 0.3  # it really falls off
    assert np.median(level[far]) / np.median(level[near]) == pytest.approx(1.0, abs=0.15)


def test_trees_give_several_returns_and_noise_is_present(sim_urban):
    cloud, cls = load(sim_urban)
    veg = cls == Class.HIGH_VEGETATION
    assert veg.sum() > 100
    assert (cloud.number_of_returns[veg] > 1).mean() > 0.2
    multi = cloud.number_of_returns > 1
    np.testing.assert_array_less(cloud.return_number[multi] - 1, cloud.number_of_returns[multi])
    noise = np.isin(cls, (Class.LOW_NOISE, Class.HIGH_NOISE))
    assert 20 < noise.sum() < 0.002 * len(cls)


def test_tempus_b13_has_points_on_both_sides_of_the_municipal_boundary(sim_b13):
    cloud, _ = load(sim_b13)
    munis = {m.name: m.geometry for m in load_municipalities()}
    in_munich = shapely.contains_xy(munis["München"], cloud.x, cloud.y).sum()
    in_osh = shapely.contains_xy(munis["Oberschleißheim"], cloud.x, cloud.y).sum()
    assert in_munich > 10_000 and in_osh > 10_000
    assert cloud.crs.to_epsg() == 25832


def test_truth_files_are_consistent(sim_b13):
    tdir = sim_b13.out / "truth"
    bounds, _ = read_features(tdir / "boundaries.geojson")
    curbs, _ = read_features(tdir / "curbs.geojson")
    lanes, _ = read_features(tdir / "lanes.geojson")
    ids = {f["properties"]["id"] for f in bounds + curbs}
    assert len(ids) == len(bounds) + len(curbs)
    for ln in lanes:
        p = ln["properties"]
        assert p["left"] in ids and p["right"] in ids
        assert p["direction"] in ("forward", "backward")
        assert 2.5 <= p["width_m"] <= 4.0
    stops = polygons(sim_b13, type="stop_line")
    crosswalks = polygons(sim_b13, type="crosswalk")
    arrows = [g for g, p in polygons(sim_b13) if p["type"].startswith("arrow_")]
    assert len(stops) == 4 and len(crosswalks) == 4 and len(arrows) >= 4
    assert {f["properties"]["kind"] for f in curbs} == {"curbstone"}
    for f in bounds + curbs + lanes:
        assert len(f["geometry"]["coordinates"][0]) == 3  # 3D
    # the campaign file names the drives it was written with
    text = (sim_b13.out / "campaign.toml").read_text()
    assert 'laz = ["drive_0.laz"]' in text and 'trajectory = "trajectory_0.txt"' in text

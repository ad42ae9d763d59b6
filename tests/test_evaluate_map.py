"""Map metrics (hdmap.evaluate_map) on small synthetic truth / result directories."""

from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest

from hdmap._geojson import line_geometry, polygon_geometry, write_features
from hdmap.evaluate_map import evaluate_map, format_map_metrics
from hdmap.trajectory import Trajectory

X0, Y0, Z0 = 692000.0, 5343000.0, 480.0  # somewhere in EPSG:25832
SIM_URBAN = "/tmp/sim-urban"


def line(x0, y0, x1, y1, n=51):
    """3D line from (x0, y0) to (x1, y1) (local coordinates), *n* vertices."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    xy = np.array([x0, y0]) + t * np.array([x1 - x0, y1 - y0])
    return np.column_stack([xy[:, 0] + X0, xy[:, 1] + Y0, np.full(len(xy), Z0)])


def rect(x0, y0, x1, y1):
    return [[[x0 + X0, y0 + Y0, Z0], [x1 + X0, y0 + Y0, Z0], [x1 + X0, y1 + Y0, Z0], [x0 + X0, y1 + Y0, Z0]]]


def boundary(id, coords, *, kind="line_thin", pattern="solid", stroke=None, gap=None):
    return line_geometry(coords), {"id": id, "kind": kind, "pattern": None if kind == "virtual" else pattern,
                                   "stroke_m": stroke, "gap_m": gap, "width_m": 0.12, "color": "white", "road": "r"}


def curb(id, coords, kind="curbstone"):
    return line_geometry(coords), {"id": id, "kind": kind, "height_m": 0.12, "road": "r"}


def marking(id, type, ring, **extra):
    return polygon_geometry(ring), {"id": id, "type": type, "road": "r", "worn": False, **extra}


def lane(id, coords, direction="forward", width=3.5, **extra):
    return line_geometry(coords), {"id": id, "road": "r", "left": None, "right": None, "direction": direction,
                                   "width_m": width, "kind": "lane", "index": 1, **extra}


def write_map(path, boundaries=(), curbs=(), markings=(), lanes=()):
    path.mkdir(parents=True, exist_ok=True)
    for name, feats in (("boundaries", boundaries), ("curbs", curbs), ("markings", markings), ("lanes", lanes)):
        write_features(path / f"{name}.geojson", list(feats))
    return path


def scene():
    """A 100 m two-lane road along x (local y from 0 to 7), with markings."""
    return {
        "boundaries": [
            boundary("b1", line(0, 0, 100, 0), kind="line_thick"),
            boundary("b2", line(0, 3.5, 100, 3.5), pattern="dashed", stroke=3.0, gap=6.0),
            boundary("b3", line(0, 7, 100, 7)),
            boundary("v1", line(100, 3.5, 120, 3.5), kind="virtual"),
        ],
        "curbs": [curb("c1", line(0, -0.5, 100, -0.5)), curb("c2", line(0, 7.5, 100, 7.5), "road_border")],
        "markings": [
            marking("s1", "stop_line", rect(90, 0, 90.5, 3.5)),
            marking("cw1", "crosswalk", rect(60, 0, 64, 7)),
            *[marking(f"bar{k}", "crosswalk_bar", rect(60, 0.5 + k, 64, 1.0 + k), group="cw1") for k in range(0, 6, 1)],
            marking("a1", "arrow_straight", rect(20, 1.25, 25, 2.25)),
            marking("a2", "arrow_straight_left", rect(30, 4.75, 35, 5.75)),
        ],
        "lanes": [
            lane("l1", line(0, 1.75, 100, 1.75)),
            lane("l2", line(100, 5.25, 0, 5.25), "backward"),
        ],
    }


TRAJ = np.array([[X0, Y0 + 1.75], [X0 + 100, Y0 + 1.75]])


@pytest.fixture
def truth(tmp_path):
    return write_map(tmp_path / "truth", **scene())


def test_truth_against_itself(truth):
    m = evaluate_map(truth, truth, trajectories=[TRAJ])
    json.dumps(m)  # plain values only
    for part in ("boundaries", "curbs"):
        b = m[part]
        for key in ("completeness_0.10", "completeness_0.20", "correctness_0.10", "correctness_0.20", "kind_accuracy"):
            assert b[key] == 1.0, (part, key)
        assert b["rmse_m"] == 0.0
    b = m["boundaries"]
    assert b["pattern_accuracy"] == 1.0
    assert b["stroke_error_m"] == 0.0 and b["gap_error_m"] == 0.0
    # the virtual line is left out
    assert b["truth_length_m"] == pytest.approx(300.0) and b["result_length_m"] == pytest.approx(300.0)
    assert m["curbs"]["truth_length_m"] == pytest.approx(200.0)
    assert m["markings"] == {
        "stop_line": {"precision": 1.0, "recall": 1.0, "truth": 1, "result": 1},
        "crosswalk": {"precision": 1.0, "recall": 1.0, "truth": 1, "result": 1},  # the group polygon, not the bars
        "arrow": {"precision": 1.0, "recall": 1.0, "truth": 2, "result": 2},
    }
    ln = m["lanes"]
    assert ln == {"count_accuracy": 1.0, "centerline_rmse_m": 0.0, "centerline_matched": 1.0, "width_error_m": 0.0,
                  "stations": 200}
    text = format_map_metrics(m)
    assert "boundaries" in text and "crosswalk" in text and "count_acc" in text


def test_shifted_line(tmp_path):
    truth = write_map(tmp_path / "t", boundaries=[boundary("b", line(0, 0, 100, 0))])
    result = write_map(tmp_path / "r", boundaries=[boundary("b", line(0, 0.15, 100, 0.15))])
    b = evaluate_map(truth, result)["boundaries"]
    assert b["completeness_0.10"] == 0.0 and b["correctness_0.10"] == 0.0
    assert b["completeness_0.20"] == 1.0 and b["correctness_0.20"] == 1.0
    assert b["rmse_m"] == pytest.approx(0.15, abs=1e-4)


def test_half_missing_and_false_lines(tmp_path):
    truth = write_map(tmp_path / "t", boundaries=[boundary("b", line(0, 0, 100, 0))])
    half = write_map(tmp_path / "half", boundaries=[boundary("b", line(0, 0, 50, 0))])
    b = evaluate_map(truth, half, step_m=0.1)["boundaries"]
    # truth within d of the result: x <= 50 + d
    assert b["completeness_0.10"] == pytest.approx(0.5, abs=0.002)
    assert b["completeness_0.20"] == pytest.approx(0.502, abs=0.001)
    assert b["correctness_0.20"] == 1.0
    extra = write_map(tmp_path / "extra", boundaries=[boundary("b", line(0, 0, 100, 0)),
                                                      boundary("x", line(0, 5, 100, 5))])
    b = evaluate_map(truth, extra)["boundaries"]
    assert b["completeness_0.20"] == 1.0
    assert b["correctness_0.10"] == 0.5 and b["correctness_0.20"] == 0.5
    assert b["rmse_m"] == 0.0  # over matched samples only
    assert b["result_length_m"] == pytest.approx(200.0)


def test_pattern_kind_stroke_gap(tmp_path):
    truth = write_map(tmp_path / "t", boundaries=[
        boundary("d", line(0, 0, 100, 0), pattern="dashed", stroke=3.0, gap=6.0),
        boundary("s", line(0, 3.5, 100, 3.5), kind="line_thick"),
    ])
    result = write_map(tmp_path / "r", boundaries=[
        # the dashed line in two pieces: the longer one decides the stroke / gap match
        boundary("d1", line(0, 0.05, 70, 0.05), pattern="dashed", stroke=3.25, gap=5.5),
        boundary("d2", line(70, 0.05, 100, 0.05), pattern="dashed", stroke=4.0, gap=9.0),
        boundary("s", line(0, 3.5, 100, 3.5), kind="line_thin", pattern="dashed", stroke=3.0, gap=6.0),
        boundary("virtual", line(0, 1.75, 100, 1.75), kind="virtual"),  # ignored
    ])
    b = evaluate_map(truth, result)["boundaries"]
    assert b["stroke_error_m"] == pytest.approx(0.25)
    assert b["gap_error_m"] == pytest.approx(0.5)
    assert b["pattern_accuracy"] == pytest.approx(0.5, abs=0.001)  # the solid line came out dashed
    assert b["kind_accuracy"] == pytest.approx(0.5, abs=0.001)  # and thin
    assert b["correctness_0.20"] == 1.0
    assert b["rmse_m"] == pytest.approx(np.sqrt(0.05**2 / 2), abs=1e-4)
    # no dashed result line near the dashed truth line -> None
    solid = write_map(tmp_path / "solid", boundaries=[boundary("d", line(0, 0, 100, 0))])
    b = evaluate_map(truth, solid)["boundaries"]
    assert b["stroke_error_m"] is None and b["gap_error_m"] is None


def test_curbs_kind(tmp_path):
    truth = write_map(tmp_path / "t", curbs=[curb("c1", line(0, 0, 100, 0)), curb("c2", line(0, 10, 100, 10))])
    result = write_map(tmp_path / "r", curbs=[curb("c1", line(0, 0.1, 100, 0.1)),
                                              curb("c2", line(0, 10, 40, 10), "road_border")])
    c = evaluate_map(truth, result)["curbs"]
    assert c["completeness_0.20"] == pytest.approx(140.2 / 200, abs=0.002)
    assert c["correctness_0.20"] == 1.0
    assert c["kind_accuracy"] == pytest.approx(100 / 140, abs=0.002)
    assert "pattern_accuracy" not in c and "stroke_error_m" not in c


def test_lane_count_missing_half_a_lane(truth, tmp_path):
    s = scene()
    s["lanes"] = [lane("l1", line(0, 1.75, 100, 1.75)),
                  lane("l2", line(100, 5.25, 50, 5.25), "backward")]  # the second lane only from x=100 to 50
    result = write_map(tmp_path / "r", **s)
    ln = evaluate_map(truth, result, trajectories=[TRAJ])["lanes"]
    # 100 stations on each truth lane (x = 0.5 ... 99.5); at x < 50 the truth counts 2 lanes, the result 1:
    # 50 of the 100 stations on l1 and 50 of the 100 on l2 disagree -> exactly 0.5
    assert ln["stations"] == 200
    assert ln["count_accuracy"] == 0.5
    assert ln["centerline_rmse_m"] == 0.0 and ln["centerline_matched"] == 1.0


def test_lane_extra_pieces_and_neighbouring_road(truth, tmp_path):
    s = scene()
    # lane l1 in three pieces (meeting at the station x = 30.5; overlapping over 0.4 m around the station
    # x = 60.5, 5 cm apart): still one lane; a lane at 45 degrees across the road does not count (more than 20 degrees
    # from parallel); a parallel road 30 m away lies beyond the 25 m cross-section
    s["lanes"] = [lane("a", line(0, 1.75, 30.5, 1.75)), lane("b", line(30.5, 1.75, 60.7, 1.75)),
                  lane("c", line(60.3, 1.8, 100, 1.8)),
                  lane("l2", line(100, 5.25, 0, 5.25), "backward"),
                  lane("side", line(40, 0, 47, 7)), lane("far", line(0, 35, 100, 35))]
    result = write_map(tmp_path / "r", **s)
    ln = evaluate_map(truth, result)["lanes"]
    assert ln["count_accuracy"] == 1.0
    # a false extra lane counts where it lies within the carriageway: between the outermost truth lane
    # centerlines (y = 1.75 and 5.25) widened by 1 m
    s["lanes"] = [*scene()["lanes"], lane("x", line(0, 6.0, 50, 6.0))]
    ln = evaluate_map(truth, write_map(tmp_path / "r2", **s))["lanes"]
    assert ln["count_accuracy"] == 0.5


def test_lane_centerline_and_width(truth, tmp_path):
    s = scene()
    n = 51
    profile = np.linspace(3.0, 4.0, n).tolist()  # 3.0 at x=0 to 4.0 at x=100: |error| is uniform on [0, 0.5]
    s["lanes"] = [lane("l1", line(0, 1.95, 100, 1.95, n), width=3.5, width_profile=profile),
                  lane("l2", line(0, 5.25, 100, 5.25), "forward")]  # wrong direction: not matched
    ln = evaluate_map(truth, write_map(tmp_path / "r", **s))["lanes"]
    assert ln["centerline_matched"] == pytest.approx(0.5)
    assert ln["centerline_rmse_m"] == pytest.approx(0.2, abs=1e-4)
    assert ln["width_error_m"] == pytest.approx(0.25, abs=0.002)
    assert ln["count_accuracy"] == 1.0  # the count ignores the direction


def test_markings_matching(truth, tmp_path):
    s = scene()
    s["markings"] = [
        marking("s1", "stop_line", rect(90.2, 0, 90.7, 3.5)),  # overlap 0.3 of 0.5 m: matched
        marking("cw1", "crosswalk", rect(62.5, 0, 66.5, 7)),  # overlap 1.5 of 4 m: not matched
        marking("a1", "arrow_straight", rect(20, 1.25, 25, 2.25)),
        marking("a1b", "arrow_straight", rect(20.5, 1.25, 25.5, 2.25)),  # a duplicate: one-to-one, unmatched
        marking("a3", "arrow_left", rect(30, 4.75, 35, 5.75)),  # family "arrow", type need not agree
        marking("s2", "stop_line", rect(20, 1.25, 25, 2.25)),  # on an arrow, but another family
    ]
    mk = evaluate_map(truth, write_map(tmp_path / "r", **s))["markings"]
    assert mk["stop_line"] == {"precision": 0.5, "recall": 1.0, "truth": 1, "result": 2}
    assert mk["crosswalk"] == {"precision": 0.0, "recall": 0.0, "truth": 1, "result": 1}
    assert mk["arrow"] == {"precision": pytest.approx(2 / 3, abs=1e-4), "recall": 1.0, "truth": 2, "result": 3}


def test_region_clipping(tmp_path):
    s = scene()
    s["boundaries"].append(boundary("far", line(0, 60, 100, 60)))
    s["curbs"].append(curb("far", line(0, 61, 100, 61)))
    s["markings"].append(marking("farrow", "arrow_straight", rect(20, 59, 25, 60)))
    s["lanes"].append(lane("far", line(0, 58, 100, 58)))
    truth = write_map(tmp_path / "t", **s)
    result = write_map(tmp_path / "r", **scene())  # nothing of the far road
    # trajectory as a file
    t = np.linspace(0, 10, 101)
    xyz = np.column_stack([X0 + 10 * t, np.full_like(t, Y0 + 1.75), np.full_like(t, Z0)])
    Trajectory(t, xyz, heading=np.full_like(t, np.pi / 2)).write_ascii(tmp_path / "trajectory_0.txt")
    m = evaluate_map(truth, result, trajectories=[tmp_path / "trajectory_0.txt"], reach_m=20.0)
    assert m["boundaries"]["completeness_0.20"] == 1.0
    assert m["boundaries"]["truth_length_m"] == pytest.approx(300.0)
    assert m["curbs"]["completeness_0.20"] == 1.0
    assert m["markings"]["arrow"]["recall"] == 1.0 and m["markings"]["arrow"]["truth"] == 2
    assert m["lanes"]["count_accuracy"] == 1.0 and m["lanes"]["stations"] == 200
    # partly inside: the reach cuts the truth line at y = 21.75 (line at x = 50 across the road)
    s2 = {"boundaries": [boundary("across", line(50, -40, 50, 40))]}
    truth2 = write_map(tmp_path / "t2", **s2)
    b = evaluate_map(truth2, truth2, trajectories=[TRAJ])["boundaries"]
    assert b["truth_length_m"] == pytest.approx(40.0, abs=0.01)
    # without trajectories everything counts
    m = evaluate_map(truth, result)
    assert m["boundaries"]["completeness_0.20"] == 0.75
    assert m["markings"]["arrow"]["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["lanes"]["stations"] == 300 and m["lanes"]["count_accuracy"] == pytest.approx(200 / 300, abs=1e-4)


def test_missing_files(tmp_path, truth):
    with pytest.raises(FileNotFoundError, match=r"nowhere.*boundaries\.geojson.*lanes\.geojson"):
        evaluate_map(tmp_path / "nowhere", truth)
    result = write_map(tmp_path / "r", **scene())
    (result / "lanes.geojson").unlink()
    with pytest.raises(FileNotFoundError, match=r"lanes\.geojson.*result"):
        evaluate_map(truth, result)
    with pytest.raises(FileNotFoundError, match="truth"):
        evaluate_map(result, truth)


def test_empty_result(truth, tmp_path):
    m = evaluate_map(truth, write_map(tmp_path / "empty"))
    json.dumps(m)
    b = m["boundaries"]
    assert b["completeness_0.20"] == 0.0 and b["correctness_0.20"] is None and b["rmse_m"] is None
    assert b["pattern_accuracy"] is None and b["stroke_error_m"] is None
    assert m["markings"]["arrow"] == {"precision": None, "recall": 0.0, "truth": 2, "result": 0}
    assert m["lanes"]["count_accuracy"] == 0.0 and m["lanes"]["centerline_rmse_m"] is None
    assert "-" in format_map_metrics(m)


@pytest.mark.skipif(not os.path.isdir(os.path.join(SIM_URBAN, "truth")), reason="no simulated survey in /tmp/sim-urban")
def test_simulated_urban_truth_against_itself():
    trajectories = sorted(glob.glob(os.path.join(SIM_URBAN, "trajectory_*.txt")))
    truth = os.path.join(SIM_URBAN, "truth")
    m = evaluate_map(truth, truth, trajectories=trajectories)
    json.dumps(m)
    for part in ("boundaries", "curbs"):
        assert m[part]["completeness_0.10"] == 1.0 and m[part]["correctness_0.10"] == 1.0
        assert m[part]["rmse_m"] == 0.0 and m[part]["truth_length_m"] > 100
    assert m["boundaries"]["pattern_accuracy"] == 1.0
    for fam in m["markings"].values():
        assert fam["precision"] in (1.0, None) and fam["recall"] in (1.0, None)
    assert m["lanes"]["count_accuracy"] == 1.0 and m["lanes"]["stations"] > 100
    assert m["lanes"]["centerline_rmse_m"] == 0.0

"""Road descriptions, reference lines and scenes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hdmap import errors
from hdmap.cli import main
from hdmap.sim import PRESETS, build_scene, load_road_description, parse_road_description, preset
from hdmap.sim.refline import ReferenceLine, Segment


def test_arc_and_clothoid_geometry():
    R = 100.0
    arc = ReferenceLine([Segment("arc", np.pi * R / 2, 1 / R, 1 / R)])
    x, y, theta, _ = arc.eval([np.pi * R / 2])
    np.testing.assert_allclose([x[0], y[0], theta[0]], [R, R, np.pi / 2], atol=1e-9)
    # clothoid from 0 to 1/R over L: heading L / (2R) at its end, curvature linear
    L = 60.0
    sp = ReferenceLine([Segment("spiral", L, 0.0, 1 / R)])
    _, _, th, k = sp.eval([0, L / 2, L])
    np.testing.assert_allclose(th, [0, L / 8 / R, L / 2 / R], atol=1e-12)
    np.testing.assert_allclose(k, [0, 0.5 / R, 1 / R], atol=1e-12)
    # Fresnel integrals (series) for the end point of the clothoid: x = int cos(s^2 / (2RL)) ds
    s = np.linspace(0, L, 200_001)
    xe = np.trapezoid(np.cos(s**2 / (2 * R * L)), s)
    ye = np.trapezoid(np.sin(s**2 / (2 * R * L)), s)
    x, y, _, _ = sp.eval([L])
    np.testing.assert_allclose([x[0], y[0]], [xe, ye], atol=1e-6)


@settings(deadline=None, max_examples=30)
@given(st.lists(st.tuples(st.sampled_from(["line", "arc", "spiral"]), st.floats(5, 80),
                          st.floats(-0.02, 0.02)), min_size=1, max_size=5),
       st.floats(-3, 3))
def test_offset_lines_keep_their_distance(segs, offset):
    k = 0.0
    segments = []
    for kind, length, curv in segs:
        if kind == "line":
            segments.append(Segment("line", length))
            k = 0.0
        elif kind == "arc":
            segments.append(Segment("arc", length, curv, curv))
            k = curv
        else:
            segments.append(Segment("spiral", length, k, curv))
            k = curv
    ref = ReferenceLine(segments, 10.0, -5.0, 0.3)
    s = np.linspace(0, ref.length, 400)
    x0, y0 = ref.point(s, 0.0)
    x1, y1 = ref.point(s, offset)
    np.testing.assert_allclose(np.hypot(x1 - x0, y1 - y0), abs(offset), atol=1e-9)
    # arc length: the polyline length approaches the station length
    dense = np.linspace(0, ref.length, 20_001)
    xd, yd = ref.point(dense, 0.0)
    assert np.hypot(np.diff(xd), np.diff(yd)).sum() == pytest.approx(ref.length, rel=1e-6)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build(name):
    desc = parse_road_description(preset(name, 300), source=name)
    scene = build_scene(desc, seed=1)
    assert len(scene.tri_v) > 1000 and scene.lanes and scene.boundaries
    # every lane boundary id exists
    ids = {b["id"] for b in scene.boundaries} | {c["id"] for c in scene.curbs}
    assert all(ln["left"] in ids and ln["right"] in ids for ln in scene.lanes)


def write(tmp_path, text):
    p = tmp_path / "road.toml"
    p.write_text(text)
    return p


GOOD = """
name = "test street"
[[roads]]
id = "a"
start = [692000.0, 5343500.0]
geometry = [{type = "line", length = 100}]
right = [{type = "lane", width = 3.25}, {type = "curb"}, {type = "sidewalk", width = 2}]
left = [{type = "lane", width = 3.25}]
"""


def test_road_file_round_trip(tmp_path):
    desc = load_road_description(write(tmp_path, GOOD))
    assert desc.name == "test street" and desc.roads[0].right[1].height == pytest.approx(0.12)
    assert [leg.direction for d in desc.drives for leg in d] == ["forward", "backward"]


@pytest.mark.parametrize("change,needle", [
    ('id = "a"', r"roads\[0\]: unknown key 'colour'", ),
    ("width = 3.25}, {type", r"roads\[0\].right\[0\].width: a lane must be 2.0-5.0 m wide, got 9"),
    ("length = 100", r"roads\[0\].geometry\[0\].length: must be between 0.1 and 100000, got -5"),
    ('type = "curb"', r"roads\[0\].right\[1\].type: must be one of .*, got 'kerb'"),
])
def test_bad_road_files_name_the_place(tmp_path, change, needle):
    text = GOOD
    if change == 'id = "a"':
        text = text.replace('id = "a"', 'id = "a"\ncolour = "red"')
    elif change.startswith("width"):
        text = text.replace("width = 3.25}, {type", "width = 9}, {type", 1)
    elif change.startswith("length"):
        text = text.replace("length = 100", "length = -5")
    else:
        text = text.replace('type = "curb"', 'type = "kerb"')
    with pytest.raises(errors.ConfigError, match=needle):
        load_road_description(write(tmp_path, text))


def test_not_toml(tmp_path):
    with pytest.raises(errors.ConfigError, match=r"road\.toml: not valid TOML"):
        load_road_description(write(tmp_path, "roads = [\n"))


def test_cli_simulate_and_errors(tmp_path, capsys):
    out = tmp_path / "sim"
    code = main(["-q", "simulate", str(out), "--preset", "junction", "--length", "60", "--passes", "1",
                 "--rate", "20000", "--preview", str(out / "preview.png")])
    assert code == 0
    text = capsys.readouterr().out
    assert "simulated" in text and (out / "drive_0.laz").exists() and (out / "preview.png").stat().st_size > 10_000
    assert (out / "truth" / "lanes.geojson").exists() and (out / "trajectory_0.sbet").exists()
    code = main(["simulate", str(tmp_path / "x"), "--preset", "urban", "--rate", "5"])
    err = capsys.readouterr().err
    assert code == 2 and "--rate must be between" in err
    bad = write(tmp_path, GOOD.replace("width = 3.25}]", "width = 1}]"))
    code = main(["simulate", str(tmp_path / "y"), "--road", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "road.toml: roads[0].left[0].width" in err


def test_documented_example_road_builds():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "docs" / "road-example.toml"
    desc = load_road_description(path)
    scene = build_scene(desc, seed=3)
    patterns = {b["pattern"] for b in scene.boundaries if b["kind"] != "virtual"}
    assert patterns == {"solid_dashed", "solid"}
    assert any(m["type"] == "arrow_straight_left" for m in scene.markings)

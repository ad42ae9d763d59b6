"""Trajectory files, checks and interpolation."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hdmap import Trajectory, errors
from hdmap.trajectory import SBET_DTYPE

from .conftest import GK4, UTM32


def circle_drive(n=401, dt=0.01, radius=50.0, t0=4.0e8):
    """A drive on a circle: heading clockwise from north follows the tangent."""
    t = t0 + np.arange(n) * dt
    ang = np.linspace(0, 1.5 * np.pi, n)  # math angle, counter-clockwise
    x = 692000 + radius * np.cos(ang)
    y = 5343800 + radius * np.sin(ang)
    z = 480 + 0.01 * np.arange(n)
    # moving counter-clockwise: direction (-sin, cos); heading (cw from north) = atan2(east, north)
    heading = np.mod(np.arctan2(-np.sin(ang), np.cos(ang)), 2 * np.pi)
    roll = np.radians(np.linspace(-2, 2, n))
    pitch = np.radians(np.linspace(1, -1, n))
    return Trajectory(t, np.column_stack([x, y, z]), roll, pitch, heading, crs=UTM32)


def slow_interpolate(traj, times):
    """Reference: per query, find the bracketing samples with a Python loop."""
    out_p, out_a = [], []
    for t in times:
        i = 0
        while i + 1 < len(traj.time) - 1 and traj.time[i + 1] <= t:
            i += 1
        w = (t - traj.time[i]) / (traj.time[i + 1] - traj.time[i])
        out_p.append(traj.xyz[i] * (1 - w) + traj.xyz[i + 1] * w)
        att = []
        for arr in (traj.roll, traj.pitch, traj.heading):
            d = (arr[i + 1] - arr[i] + np.pi) % (2 * np.pi) - np.pi
            att.append(arr[i] + d * w)
        att[2] %= 2 * np.pi
        out_a.append(att)
    return np.array(out_p), np.array(out_a)


def test_interpolation_matches_slow_reference():
    traj = circle_drive()
    rng = np.random.default_rng(0)
    times = np.concatenate([rng.uniform(*traj.span, 500), traj.time[[0, 1, 200, -1]]])
    pos, att = traj.interpolate(times)
    ref_p, ref_a = slow_interpolate(traj, times)
    np.testing.assert_allclose(pos, ref_p, atol=1e-9)
    d = np.angle(np.exp(1j * (att - ref_a)))
    np.testing.assert_allclose(d, 0, atol=1e-12)
    np.testing.assert_allclose(traj.position_at(times), pos)


@settings(deadline=None, max_examples=60)
@given(st.lists(st.floats(0, 2 * np.pi - 1e-9), min_size=2, max_size=30), st.floats(0, 1))
@example(headings=[0.0, 4.0], frac=1.1816090935103048e-300)  # a tiny negative angle once came back as 2 pi
def test_heading_interpolates_the_short_way_round(headings, frac):
    n = len(headings)
    traj = Trajectory(np.arange(n, dtype=float), np.zeros((n, 3)), heading=np.array(headings), max_gap=None)
    t = frac * (n - 1)
    h = traj.attitude_at([t])[0, 2]
    i = min(int(np.floor(t)), n - 2)
    a, b = headings[i], headings[i + 1]
    # the result lies on the shorter arc between a and b
    arc = abs(np.angle(np.exp(1j * (b - a))))
    assert abs(np.angle(np.exp(1j * (h - a)))) <= arc + 1e-9
    assert abs(np.angle(np.exp(1j * (h - b)))) <= arc + 1e-9
    assert 0 <= h < 2 * np.pi


def test_ascii_round_trip(tmp_path):
    traj = circle_drive()
    path = traj.write_ascii(tmp_path / "traj.txt")
    back = Trajectory.read(path)
    np.testing.assert_allclose(back.time, traj.time, atol=1e-6)
    np.testing.assert_allclose(back.xyz, traj.xyz, atol=1e-4)
    np.testing.assert_allclose(np.angle(np.exp(1j * (back.heading - traj.heading))), 0, atol=1e-6)
    assert back.crs.to_epsg() == 25832


@pytest.mark.parametrize("sep", [" ", "\t", ",", ", ", "  "])
def test_ascii_separators_comments_and_header(tmp_path, sep):
    rows = [[100.0, 692000.0, 5343800.0, 480.0, 0.5, -0.25, 90.0],
            [100.5, 692005.0, 5343800.0, 480.1, 0.5, -0.25, 90.0],
            [101.0, 692010.0, 5343800.0, 480.2, 0.5, -0.25, 90.0]]
    text = "# exported by the INS post-processing\n" + sep.join(["time", "x", "y", "z", "roll", "pitch", "heading"]) + "\n"
    text += "\n".join(sep.join(f"{v:.3f}" for v in r) for r in rows) + "\n# end\n"
    path = tmp_path / "t.txt"
    path.write_text(text)
    traj = Trajectory.read(path)
    assert len(traj) == 3
    np.testing.assert_allclose(np.degrees(traj.roll), 0.5)
    np.testing.assert_allclose(traj.direction_at([100.25])[0], [1.0, 0.0], atol=1e-12)  # heading 90 = east


def test_ascii_header_gives_column_order(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("heading,time,easting,northing,height,roll,pitch\n"
                    "180,0,692000,5343800,480,0,0\n180,1,692000,5343790,480,0,0\n")
    traj = Trajectory.read(path)
    np.testing.assert_allclose(traj.xyz[1], [692000, 5343790, 480])
    np.testing.assert_allclose(np.degrees(traj.heading), 180)


def travel_heading(xy):
    """Heading (cw from grid north) of the direction of travel, by central differences."""
    d = np.gradient(xy, axis=0)
    return np.mod(np.arctan2(d[:, 0], d[:, 1]), 2 * np.pi)


def test_ascii_crs_comment_and_reprojection(tmp_path):
    gk = pyproj.Transformer.from_crs(UTM32, GK4, always_xy=True)
    traj = circle_drive()
    x, y, z = gk.transform(traj.xyz[:, 0], traj.xyz[:, 1], traj.xyz[:, 2])
    gk_xy = np.column_stack([x, y])
    # a GK4 trajectory whose heading is the direction of travel in the GK4 grid
    gk_traj = Trajectory(traj.time, np.column_stack([x, y, z]), traj.roll, traj.pitch, travel_heading(gk_xy), crs=GK4)
    path = gk_traj.write_ascii(tmp_path / "gk.txt")
    back = Trajectory.read(path)
    assert back.crs.to_epsg() == 31468
    utm = back.to_crs("EPSG:25832")
    np.testing.assert_allclose(utm.xyz[:, :2], traj.xyz[:, :2], atol=1e-3)
    # grid north differs by about 1.4 degrees between the two systems here; after the conversion
    # the heading must again be the direction of travel, now in the UTM grid
    rotation = np.degrees(np.angle(np.exp(1j * (utm.heading - back.heading))))
    lon, lat = pyproj.Transformer.from_crs(UTM32, "EPSG:4326", always_xy=True).transform(traj.xyz[:, 0], traj.xyz[:, 1])
    gamma_utm = pyproj.Proj(UTM32).get_factors(lon, lat).meridian_convergence
    gamma_gk = pyproj.Proj(GK4).get_factors(lon, lat).meridian_convergence
    np.testing.assert_allclose(rotation, gamma_gk - gamma_utm, atol=1e-3)  # grid bearing = true bearing - convergence
    assert abs(rotation.mean()) > 2.0  # about 2.24 degrees: a real correction, not a no-op
    err = np.degrees(np.abs(np.angle(np.exp(1j * (travel_heading(utm.xyz[:, :2]) - utm.heading)))))
    assert np.median(err) < 0.01


def test_sbet_written_and_read_back(tmp_path):
    traj = circle_drive()
    path = traj.write_sbet(tmp_path / "drive.sbet")
    assert path.stat().st_size == len(traj) * 136
    rec = np.fromfile(path, dtype=SBET_DTYPE)
    assert 0.8 < rec["lat"].mean() < 0.9 and 0.19 < rec["lon"].mean() < 0.21  # radians near Munich
    back = Trajectory.read(path)
    np.testing.assert_allclose(back.xyz, traj.xyz, atol=1e-6)
    np.testing.assert_allclose(np.angle(np.exp(1j * (back.heading - traj.heading))), 0, atol=1e-7)
    np.testing.assert_allclose(back.roll, traj.roll)
    # the true heading stored in the file differs from the grid heading by the meridian convergence
    # (true = grid + convergence; east of UTM 32's central meridian, about +1.9 degrees here)
    conv = np.degrees(np.angle(np.exp(1j * (rec["heading"] - traj.heading))))
    expected = pyproj.Proj("EPSG:25832").get_factors(np.degrees(rec["lon"]), np.degrees(rec["lat"])).meridian_convergence
    np.testing.assert_allclose(conv, expected, atol=1e-3)
    assert conv.mean() > 1.5


# --- bad input --------------------------------------------------------------
def test_missing_trajectory(tmp_path):
    with pytest.raises(errors.InputFileNotFoundError, match="no such trajectory file"):
        Trajectory.read(tmp_path / "none.txt")


def test_unsorted_trajectory_names_the_line(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("# c\n0 0 0 0 0 0 0\n1 1 0 0 0 0 0\n0.5 2 0 0 0 0 0\n")
    with pytest.raises(errors.TrajectoryError, match=r"t\.txt: time goes back in time at line 4.*sort"):
        Trajectory.read(path)


def test_repeated_time(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("0 0 0 0 0 0 0\n1 1 0 0 0 0 0\n1 2 0 0 0 0 0\n")
    with pytest.raises(errors.TrajectoryError, match="time repeats at line 3"):
        Trajectory.read(path)


def test_gappy_trajectory(tmp_path):
    t = np.concatenate([np.arange(0, 10, 0.01), np.arange(15, 20, 0.01)])
    traj = Trajectory(t, np.zeros((len(t), 3)), max_gap=None)
    path = traj.write_ascii(tmp_path / "gap.txt")
    with pytest.raises(errors.TrajectoryError, match=r"gap\.txt: gap of 5\.0\d* s .*max_gap"):
        Trajectory.read(path)
    assert len(Trajectory.read(path, max_gap=6)) == len(t)


def test_times_outside_trajectory():
    traj = circle_drive()
    t0, t1 = traj.span
    with pytest.raises(errors.TrajectoryRangeError, match=r"2 of 4 point times lie outside the trajectory"):
        traj.position_at([t0 - 1, t0, t1, t1 + 0.5])
    traj.position_at([t1 + 0.001], tolerance=0.01)  # accepted within a tolerance


def test_nan_in_trajectory(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("0 0 0 0 0 0 0\n1 nan 0 0 0 0 0\n2 2 0 0 0 0 0\n")
    with pytest.raises(errors.TrajectoryError, match=r"NaN or infinite values \(first line 2\)"):
        Trajectory.read(path)


def test_too_few_columns(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("0 0 0 0 0 0\n")
    with pytest.raises(errors.TrajectoryError, match=r"line 1: 6 columns, expected 7"):
        Trajectory.read(path)


def test_garbage_line(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("0 0 0 0 0 0 0\n1 x 0 0 0 0 0\n")
    with pytest.raises(errors.TrajectoryError, match=r"line 2: cannot read numbers"):
        Trajectory.read(path)


def test_empty_trajectory(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("# nothing here\n\n")
    with pytest.raises(errors.EmptyInputError, match="no trajectory samples"):
        Trajectory.read(path)
    sbet = tmp_path / "e.sbet"
    sbet.write_bytes(b"")
    with pytest.raises(errors.EmptyInputError):
        Trajectory.read(sbet)


def test_truncated_sbet(tmp_path):
    path = circle_drive().write_sbet(tmp_path / "d.sbet")
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(errors.TrajectoryError, match="not a whole number of 136-byte SBET records"):
        Trajectory.read(path)

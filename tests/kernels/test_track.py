"""The position/heading kernel against Trajectory.interpolate (its reference)."""

from __future__ import annotations

import numpy as np
import pytest

from hdmap import Trajectory
from hdmap.kernels import track


def _trajectory(m=200, seed=0):
    rng = np.random.default_rng(seed)
    time = 4.6e8 + np.cumsum(rng.uniform(0.005, 0.02, m))
    xyz = np.column_stack([691000 + np.cumsum(rng.normal(0, 0.1, m)), 5.343e6 + np.cumsum(rng.normal(0.2, 0.1, m)),
                           np.full(m, 490.0)])
    heading = np.mod(np.cumsum(rng.normal(0, 0.3, m)) + 6.2, 2 * np.pi)  # wraps round 0 / 2 pi
    return Trajectory(time, xyz, np.zeros(m), np.zeros(m), heading)


@pytest.mark.parametrize("n", [0, 1, 5000])
def test_matches_interpolate_inside_and_leaves_the_rest(n):
    traj = _trajectory()
    t0, t1 = traj.span
    rng = np.random.default_rng(n)
    t = rng.uniform(t0 - 1, t1 + 1, n)
    if n > 10:
        t[:3] = [t0, t1, traj.time[17]]  # both ends and a sample time exactly
        t[3] = np.nan
    pos = np.full((n, 3), -7.0)
    head = np.full(n, -7.0)
    filled = track.position_heading(traj.time, traj.xyz, traj.heading, t, pos, head)
    inside = (t >= t0) & (t <= t1)
    assert filled == inside.sum()
    ref_pos, att = traj.interpolate(t[inside])
    np.testing.assert_array_equal(pos[inside], ref_pos)
    d = np.abs(np.angle(np.exp(1j * (head[inside] - att[:, 2]))))
    assert d.max(initial=0) < 1e-12 and (head[inside] >= 0).all() and (head[inside] < 2 * np.pi).all()
    assert (pos[~inside] == -7.0).all() and (head[~inside] == -7.0).all()


def test_rejects_a_single_sample():
    with pytest.raises(ValueError, match=">= 2 samples"):
        track.position_heading(np.zeros(1), np.zeros((1, 3)), np.zeros(1), np.zeros(3), np.zeros((3, 3)), np.zeros(3))


def test_points_in_time_order_share_intervals_and_match_interpolate():
    """As a drive's points come: sorted times, many per sample interval, across several chunks of work."""
    traj = _trajectory()
    t0, t1 = traj.span
    t = np.sort(np.random.default_rng(1).uniform(t0 - 0.05, t1, 30000))
    t[5000:5010] = traj.time[40]  # on a sample time
    t[-1] = t1
    pos = np.full((len(t), 3), -7.0)
    head = np.full(len(t), -7.0)
    inside = (t >= t0) & (t <= t1)
    assert track.position_heading(traj.time, traj.xyz, traj.heading, t, pos, head) == inside.sum()
    ref_pos, att = traj.interpolate(t[inside])
    np.testing.assert_array_equal(pos[inside], ref_pos)
    assert np.abs(np.angle(np.exp(1j * (head[inside] - att[:, 2])))).max() < 1e-12

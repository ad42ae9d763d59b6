"""Trajectory kernels: the vehicle's position and heading at each point's GPS time.

The trajectory is sampled at sorted times; a point between two samples gets the
linear interpolation of the position and of the heading (the short way round
the circle), exactly as :meth:`hdmap.Trajectory.interpolate` computes them, in
one parallel pass without the roll and pitch the classification does not need.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ._jit import jit_parallel

__all__ = ["position_heading"]


def position_heading(time: np.ndarray, xyz: np.ndarray, heading: np.ndarray, t: np.ndarray,
                     pos_out: np.ndarray, head_out: np.ndarray) -> int:
    """Fill ``pos_out[i]`` (3) and ``head_out[i]`` for every *t[i]* inside ``[time[0], time[-1]]``;
    other rows are left as they are. Returns how many points were filled.

    *time* must be strictly increasing with at least two samples.
    """
    time = np.ascontiguousarray(time, dtype=np.float64)
    xyz = np.ascontiguousarray(xyz, dtype=np.float64)
    heading = np.ascontiguousarray(heading, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if time.ndim != 1 or len(time) < 2 or xyz.shape != (len(time), 3) or heading.shape != time.shape:
        raise ValueError("need >= 2 samples: time (m,), xyz (m, 3), heading (m,)")
    if pos_out.shape != (len(t), 3) or head_out.shape != t.shape:
        raise ValueError("pos_out must be (n, 3) and head_out (n,) for n times")
    return int(_position_heading(time, xyz, heading, t, pos_out, head_out))


@jit_parallel
def _position_heading(time, xyz, heading, t, pos, head):
    n = t.shape[0]
    m = time.shape[0]
    t0, t1 = time[0], time[m - 1]
    two_pi = 2.0 * np.pi
    chunk = 4096
    nchunk = (n + chunk - 1) // chunk
    filled = np.zeros(nchunk, np.int64)
    for c in prange(nchunk):
        # points come in time order within a drive: most of a chunk's points share a sample interval with the
        # point before them, whose index and short-way heading change are kept
        k = -1
        d = 0.0
        for i in range(c * chunk, min((c + 1) * chunk, n)):
            ti = t[i]
            if not (ti >= t0 and ti <= t1):
                continue
            if k < 0 or not (time[k] <= ti and ti < time[k + 1]):
                # searchsorted(time, ti, side="right") - 1, clipped to [0, m - 2]
                lo, hi = 0, m
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if time[mid] <= ti:
                        lo = mid + 1
                    else:
                        hi = mid
                k = min(max(lo - 1, 0), m - 2)
                d = heading[k + 1] - heading[k]
                d = math.atan2(math.sin(d), math.cos(d))  # the short way round
            w = (ti - time[k]) / (time[k + 1] - time[k])
            for j in range(3):
                a = xyz[k, j]
                pos[i, j] = a + (xyz[k + 1, j] - a) * w
            h = np.fmod(heading[k] + d * w, two_pi)
            if h < 0.0:
                h += two_pi
            head[i] = h if h < two_pi else 0.0
            filled[c] += 1
    return filled.sum()

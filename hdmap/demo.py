"""``hdmap demo``: the end-to-end run on built-in data.

It grows with the project. Today it writes a short synthetic survey drive (LAZ
with an EPSG:25832 WKT VLR, plus its trajectory as ASCII and SBET), reads both
back through the public API and prints what ``hdmap info`` prints.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .crs import PROJECT_CRS
from .info import format_summary, summarize
from .io import write
from .pointcloud import PointCloud
from .trajectory import Trajectory

__all__ = ["run_demo"]

logger = logging.getLogger(__name__)


def _drive(seconds: float = 20.0, speed: float = 10.0, rate: float = 100_000.0, seed: int = 0):
    """A straight drive north along E 692,000 through a 24 m wide street canyon, profile scanner at 100 Hz."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = 4.0e8 + np.arange(n) / rate
    profile_hz = 100.0
    phase = (t - t[0]) * profile_hz % 1.0
    ang = phase * 2 * np.pi
    north = 5343700.0 + speed * (t - t[0])
    dx, dz = np.sin(ang), np.cos(ang)
    h = 2.3
    with np.errstate(divide="ignore"):
        r_ground = np.where(dz < -1e-3, h / -dz, np.inf)
        r_wall = np.where(np.abs(dx) > 1e-3, 12.0 / np.abs(dx), np.inf)
    r = np.minimum(np.minimum(r_ground, r_wall), 80.0) + rng.normal(0, 0.005, n)
    keep = r < 79.0
    xyz = np.column_stack([692000.0 + dx * r, north, 480.0 + h + dz * r])[keep]
    intensity = np.clip(1500 + 25000 / (1 + r[keep]) + rng.normal(0, 200, keep.sum()), 0, 65535).astype(np.uint16)
    cloud = PointCloud(xyz, {
        "gps_time": t[keep], "intensity": intensity,
        "return_number": np.ones(keep.sum(), np.uint8), "number_of_returns": np.ones(keep.sum(), np.uint8),
        "point_source_id": np.zeros(keep.sum(), np.uint16),
    }, crs=PROJECT_CRS)
    tt = 4.0e8 + np.arange(0, seconds + 0.01, 0.01)
    pos = np.column_stack([np.full(len(tt), 692000.0), 5343700.0 + speed * (tt - tt[0]), np.full(len(tt), 482.3)])
    traj = Trajectory(tt, pos, heading=np.zeros(len(tt)), crs=PROJECT_CRS, source="demo trajectory")
    return cloud, traj


def run_demo(out: str | Path = "demo-out", *, echo=print) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cloud, traj = _drive()
    laz = write(out / "drive_0.laz", cloud)
    traj.write_ascii(out / "trajectory_0.txt")
    traj.write_sbet(out / "trajectory_0.sbet")
    back = Trajectory.read(out / "trajectory_0.sbet")
    pos = back.position_at(cloud.attrs["gps_time"][:: max(len(cloud) // 5, 1)])
    echo(format_summary(summarize(laz)))
    echo(f"trajectory: {len(back)} samples, {back.length_m:.1f} m driven; "
         f"vehicle at the first point: E {pos[0, 0]:.3f} N {pos[0, 1]:.3f}")
    echo(f"demo output in {out.resolve()}")
    return out

"""The survey vehicle: its path along a route, speed changes, attitude and GNSS drift."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import road as rd

__all__ = ["VehicleRun", "plan_run", "IMU_HEIGHT", "TRAJECTORY_RATE"]

IMU_HEIGHT = 1.9  # m above the road: the trajectory's reference point (roof platform)
TRAJECTORY_RATE = 100.0  # Hz


@dataclass
class VehicleRun:
    """One pass: the true pose series (local frame) and the GNSS error added to what is recorded."""

    time: np.ndarray  # seconds from the start of the pass
    xyz: np.ndarray  # true IMU positions, local frame
    roll: np.ndarray
    pitch: np.ndarray
    yaw: np.ndarray  # mathematical angle of the forward axis, radians from east
    drift: np.ndarray  # (n, 3) position error of the recorded trajectory and the points
    length_m: float

    @property
    def duration(self) -> float:
        return float(self.time[-1])

    def kernel_pose(self) -> np.ndarray:
        """(n, 15) position, body-to-world matrix and GNSS error at uniform steps of 1/TRAJECTORY_RATE."""
        from ..kernels.raycast import pose_matrices

        return pose_matrices(self.xyz, self.roll, self.pitch, self.yaw, self.drift)


def _leg_points(scene, leg: rd.RouteLeg, step: float):
    road = next(r for r in scene.roads if r.spec.id == leg.road)
    side = "right" if leg.direction == "forward" else "left"
    lanes = road.driving_bands(side)
    if not lanes:
        raise ValueError(f"road {leg.road!r} has no lane on the {side} side for a {leg.direction} drive")
    band = lanes[min(leg.lane, len(lanes)) - 1]
    t = road.sign(side) * 0.5 * (band.a + band.b)
    s = np.arange(0.0, road.length, step)
    s = np.append(s, road.length)
    if leg.direction == "backward":
        s = s[::-1]
    x, y = road.ref.point(s, np.full(len(s), t))
    z = road.road_level_z(s, np.full(len(s), t))
    # roll from the road's cross slope: height difference 0.8 m to each side of the vehicle
    left = 1.0 if leg.direction == "forward" else -1.0  # +t is the driver's left when driving forward
    zl = road.road_level_z(s, np.full(len(s), t + 0.8 * left))
    zr = road.road_level_z(s, np.full(len(s), t - 0.8 * left))
    roll = np.arctan2(zr - zl, 1.6) * -1.0
    return np.column_stack([x, y, z]), roll


def _smooth(a: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or len(a) <= width:
        return a
    k = np.hanning(width + 2)[1:-1]
    k /= k.sum()
    pad = width // 2
    ext = np.concatenate([np.repeat(a[:1], pad, 0), a, np.repeat(a[-1:], pad, 0)])
    return np.stack([np.convolve(ext[:, i], k, mode="same")[pad:-pad] for i in range(a.shape[1])], 1) if a.ndim == 2 \
        else np.convolve(ext, k, mode="same")[pad:-pad]


def plan_run(scene, legs, *, speed: float, rng: np.random.Generator, drift_sigma: float = 0.02) -> VehicleRun:
    """Drive *legs* at about *speed* m/s: smooth path, speed changes, attitude, GNSS drift."""
    step = 0.25
    pts, rolls = [], []
    for leg in legs:
        p, r = _leg_points(scene, leg, step)
        if pts:
            # connect through the junction in a straight line
            gap = np.linalg.norm(p[0, :2] - pts[-1][-1, :2])
            if gap > step:
                n = int(np.ceil(gap / step))
                w = np.linspace(0, 1, n + 1)[1:-1, None]
                pts.append(pts[-1][-1] * (1 - w) + p[0] * w)
                rolls.append(np.zeros(len(w)))
        pts.append(p)
        rolls.append(r)
    path = np.vstack(pts)
    roll_path = np.concatenate(rolls)
    keep = np.concatenate([[True], np.linalg.norm(np.diff(path[:, :2], axis=0), axis=1) > 1e-6])
    path, roll_path = path[keep], roll_path[keep]
    path[:, :2] = _smooth(path[:, :2], 21)  # ~5 m: no kinks where legs join
    seg = np.linalg.norm(np.diff(path[:, :2], axis=0), axis=1)
    u = np.concatenate([[0.0], np.cumsum(seg)])
    total = float(u[-1])
    # lateral wander inside the lane (slow, +-0.15 m)
    tang = np.gradient(path[:, :2], u, axis=0)
    tang /= np.linalg.norm(tang, axis=1, keepdims=True)
    normal = np.column_stack([-tang[:, 1], tang[:, 0]])
    phase = rng.uniform(0, 2 * np.pi, 2)
    wander = 0.10 * np.sin(2 * np.pi * u / 90.0 + phase[0]) + 0.05 * np.sin(2 * np.pi * u / 37.0 + phase[1])
    path[:, :2] += normal * wander[:, None]
    # speed: slow swells, slower near junctions
    ph = rng.uniform(0, 2 * np.pi, 2)
    v = speed * (1 + 0.08 * np.sin(2 * np.pi * u / 180.0 + ph[0]) + 0.04 * np.sin(2 * np.pi * u / 55.0 + ph[1]))
    for road in scene.roads:
        for j in road.spec.junctions:
            jx, jy = road.ref.point([j.s], [0.0])
            d = np.hypot(path[:, 0] - jx[0], path[:, 1] - jy[0])
            v *= np.where(d < 45.0, 0.6 + 0.4 * d / 45.0, 1.0)
    v = np.maximum(v, 2.0)
    time_u = np.concatenate([[0.0], np.cumsum(seg / (0.5 * (v[1:] + v[:-1])))])
    duration = float(time_u[-1])
    t = np.arange(0.0, duration + 1.0 / TRAJECTORY_RATE, 1.0 / TRAJECTORY_RATE)
    uu = np.interp(t, time_u, u)
    x = np.interp(uu, u, path[:, 0])
    y = np.interp(uu, u, path[:, 1])
    z = np.interp(uu, u, path[:, 2]) + IMU_HEIGHT
    # attitude: heading from the path, pitch from the grade, roll from the cross slope; small vibrations
    dx = np.interp(uu, u, np.gradient(path[:, 0], u))
    dy = np.interp(uu, u, np.gradient(path[:, 1], u))
    yaw = np.unwrap(np.arctan2(dy, dx))
    dzdu = np.interp(uu, u, np.gradient(_smooth(path[:, 2:3], 41)[:, 0], u))
    pitch = np.arctan(dzdu)
    roll = np.interp(uu, u, roll_path)
    vib = rng.normal(0.0, 1.0, (len(t), 2))
    vib = _smooth(vib, 15) * math.radians(0.05)
    pitch = pitch + vib[:, 0]
    roll = roll + vib[:, 1]
    # body roll from lateral acceleration (0.4 degrees per m/s^2, leaning out of the turn)
    vt = np.interp(uu, u, v)
    kappa = np.gradient(yaw, uu)
    roll = roll - math.radians(0.4) * vt**2 * kappa
    # GNSS error: a constant offset per pass plus a slow wander
    off = rng.normal(0.0, drift_sigma, 3)
    wph = rng.uniform(0, 2 * np.pi, 3)
    drift = off[None, :] + 0.3 * drift_sigma * np.sin(2 * np.pi * t[:, None] / 45.0 + wph[None, :])
    return VehicleRun(t, np.column_stack([x, y, z]), roll, pitch, yaw, drift, total)

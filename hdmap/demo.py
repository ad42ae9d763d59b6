"""``hdmap demo``: the end-to-end run on built-in data.

It grows with the project. Today it simulates a survey of the TEMPUS B13
corridor (two passes over a signalised junction, across the Munich /
Oberschleißheim boundary), checks the drives through the public API and prints
what was made, with a preview image.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ._geojson import read_features
from .info import format_summary, summarize
from .trajectory import Trajectory

__all__ = ["run_demo", "DEMO_LENGTH_M", "DEMO_RATE"]

logger = logging.getLogger(__name__)

DEMO_LENGTH_M = 1000.0
DEMO_RATE = 250_000.0  # pulses/s per scanner: a quarter of a survey scanner, to keep the demo short


def run_demo(out: str | Path = "demo-out", *, echo=print, length: float = DEMO_LENGTH_M, rate: float = DEMO_RATE,
             progress=None) -> Path:
    from .sim import simulate

    out = Path(out)
    sim_dir = out / "survey"
    result = simulate(sim_dir, preset_name="tempus-b13", length=length, passes=2, seed=2026, rate=rate,
                      preview=sim_dir / "preview.png", progress=progress)
    echo(f"simulated {result.total_points:,} points in {result.seconds:.1f} s "
         f"({result.total_points / result.seconds / 1e6:.2f} M points/s incl. LAZ writing)")
    for laz in result.drives:
        echo(format_summary(summarize(laz)))
    for traj_path in result.trajectories:
        traj = Trajectory.read(traj_path)
        echo(f"{traj_path.name}: {len(traj)} samples, {traj.length_m:.0f} m in {traj.span[1] - traj.span[0]:.1f} s")
    truth = sim_dir / "truth"
    counts = {name: len(read_features(truth / f"{name}.geojson")[0]) for name in ("boundaries", "curbs", "markings",
                                                                                    "lanes")}
    classes = np.concatenate([np.load(truth / f"classes_{k}.npy") for k in range(len(result.drives))])
    road = np.isin(classes, (11, 64)).mean()
    echo("ground truth: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f"; {road:.0%} of points on the road")
    echo(f"preview: {result.preview}")
    echo(f"campaign file: {sim_dir / 'campaign.toml'}")
    return out

"""``hdmap demo``: the end-to-end run on built-in data.

It grows with the project. Today it simulates a survey of the TEMPUS B13
corridor (two passes over a signalised junction, across the Munich /
Oberschleißheim boundary), checks the drives through the public API, prints
what was made with a preview image, classifies both drives together (streamed
in blocks, as ``hdmap classify`` does), measures the classes against the
simulator's truth, extracts the lane map (``hdmap extract``), measures it, and
exports it as Lanelet2 and OpenDRIVE.
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
             classify: bool = True, progress=None) -> Path:
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
    if classify:
        from .evaluate import evaluate_points, format_metrics, write_metrics
        from .stream import classify_file

        cls_dir = out / "classified"
        cls_dir.mkdir(parents=True, exist_ok=True)
        outputs = [cls_dir / laz.name for laz in result.drives]
        trajectories = [Trajectory.read(p) for p in result.trajectories]
        res = classify_file(result.drives, outputs, trajectories, progress=progress)
        echo(f"classified {res.points:,} points in {res.tiles} block(s): stages {res.timing['classify']:.0f} s "
             f"({res.points / max(res.timing['classify'], 1e-9) / 1e6:.2f} M points/s), reading/spilling "
             f"{res.timing['read_spill']:.0f} s, writing {res.timing['write']:.0f} s -> {cls_dir}")
        metrics = evaluate_points(sim_dir, outputs)
        write_metrics(out / "classification-metrics.json", {"truth": str(sim_dir), "points": metrics})
        echo(format_metrics(metrics))
        _map(out, sim_dir, outputs, trajectories, result.trajectories, echo)
    return out


def _map(out: Path, sim_dir: Path, classified, trajectories, trajectory_files, echo) -> None:
    """Extract the lane map, measure it against the truth and export it for Lanelet2 and OpenDRIVE tools."""
    import time

    from .evaluate import write_metrics
    from .evaluate_map import evaluate_map, format_map_metrics
    from .export import export
    from .vectorize import extract_files, map_summary

    map_dir = out / "map"
    t0 = time.perf_counter()
    m = extract_files(classified, map_dir, trajectories)
    echo(f"extracted {map_summary(m)} in {time.perf_counter() - t0:.0f} s -> {map_dir}")
    metrics = evaluate_map(sim_dir / "truth", map_dir, trajectories=list(trajectory_files))
    write_metrics(out / "map-metrics.json", {"truth": str(sim_dir), "result": str(map_dir), **metrics})
    echo(format_map_metrics(metrics))
    for fmt, name in (("lanelet2", "map.osm"), ("opendrive", "map.xodr")):
        path = export(m, fmt, map_dir / name)
        echo(f"{fmt}: {path}")

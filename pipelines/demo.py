"""``hdmap demo``: the end-to-end run on built-in data.

It simulates a survey of the TEMPUS B13 corridor (two passes over a
signalised junction, across the Munich / Oberschleißheim boundary), checks the
drives through the public API, and runs the campaign file the simulator wrote
through the batch pipeline (:func:`hdmap.pipelines.run`): classified tiles,
the stitched lane map, deliveries for Munich, Oberschleißheim and the whole
field, the accuracy against the simulator's truth and the QA report.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from hdmap._geojson import read_features
from hdmap.info import format_summary, summarize
from hdmap.trajectory import Trajectory

__all__ = ["run_demo", "DEMO_LENGTH_M", "DEMO_RATE"]

logger = logging.getLogger(__name__)

DEMO_LENGTH_M = 1000.0
DEMO_RATE = 100_000.0  # pulses/s per scanner: a tenth of a survey scanner, so the demo takes minutes on 2 cores


def run_demo(out: str | Path = "demo-out", *, echo=print, length: float = DEMO_LENGTH_M, rate: float = DEMO_RATE,
             workers: int | None = None, progress=None, show_progress: bool = True) -> Path:
    """Simulate, run the pipeline, print what was made; returns the output directory.

    ``out/survey`` holds the simulation (with ``campaign.toml``), ``out/run``
    the pipeline's run directory.
    """
    from hdmap.evaluate import format_metrics
    from hdmap.evaluate_map import format_map_metrics
    from hdmap.sim import simulate

    from .run import run

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
    run_dir = out / "run"
    if (run_dir / "run.json").exists():  # the demo's own earlier run: start afresh
        shutil.rmtree(run_dir)
    res = run(sim_dir / "campaign.toml", run_dir, workers=workers, progress=show_progress, echo=echo)
    acc = res.metrics.get("accuracy") or {}
    if "points" in acc:
        echo(format_metrics(acc["points"]))
    if "map" in acc:
        echo(format_map_metrics(acc["map"]))
    total = sum(res.seconds.values())
    echo(f"pipeline: {res.points:,} points, {res.tiles} tiles in {total:.0f} s "
         f"({res.points / max(total, 1e-9) / 1e6:.2f} M points/s); "
         + ", ".join(f"{k} {v:.0f} s" for k, v in res.seconds.items()))
    for key, path in res.deliveries.items():
        echo(f"delivery {key}: " + ", ".join(sorted(p.name for p in Path(path).iterdir())))
    echo(f"QA report: {res.report}")
    return out

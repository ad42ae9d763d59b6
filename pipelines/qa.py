"""QA of a run: ``qa/metrics.json`` and the HTML report (``qa/report.html`` with its plots).

Accuracy against the truth is measured when the campaign names one (campaigns
written by ``hdmap simulate`` do): point classes of the tile LAZ and the map
against the simulated lane boundaries, curbs, markings and lanes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from hdmap import __version__
from hdmap._atomic import write_text_atomic

from .campaign import Campaign
from .deliver import map_stats

__all__ = ["write_qa", "SAMPLE_TILES"]

logger = logging.getLogger("hdmap.pipelines")

SAMPLE_TILES = 3
"""Tiles shown zoomed in the report: the ones with the most boundary length."""


def _accuracy(c: Campaign, out: Path, stats: dict) -> dict | None:
    """Point classes (from the tiles' confusion counts against the per-point truth) and the map, against the
    simulator's truth."""
    if c.truth_dir is None:
        return None
    from hdmap.evaluate import metrics_from_counts
    from hdmap.evaluate_map import evaluate_map

    acc: dict = {}
    if stats and all("truth_counts" in s for s in stats.values()):
        counts = np.zeros((256, 256), np.int64)
        for s in stats.values():
            for key, n in s["truth_counts"].items():
                t, p = key.split("_")
                counts[int(t), int(p)] += n
        acc["points"] = metrics_from_counts(counts)
        acc["points"].pop("confusion", None)
    trajs = [d.trajectory for d in c.drives if d.trajectory is not None]
    try:
        acc["map"] = evaluate_map(c.truth_dir, out / "vectors", trajectories=trajs)
    except Exception as exc:  # noqa: BLE001 - QA reports what it cannot measure instead of failing the run
        logger.warning("map accuracy not measured: %s", exc)
    return acc or None


def _samples(out: Path, lanemap, tiles: list[dict]) -> list[dict]:
    import shapely

    if not tiles:
        return []
    lines = [shapely.LineString(b.xyz[:, :2]) for b in lanemap.lines]
    tree = shapely.STRtree(lines) if lines else None
    scored = []
    for t in tiles:
        laz = out / "tiles" / f"{t['key']}.laz"
        if not laz.exists():
            continue
        box = shapely.box(*t["bounds"])
        length = sum(lines[i].intersection(box).length for i in tree.query(box)) if tree is not None else 0.0
        scored.append((-round(length, 3), t["key"], t, laz))
    scored.sort(key=lambda s: (s[0], s[1]))
    return [{"key": t["key"], "laz": laz, "bounds": t["bounds"]} for _, _, t, laz in scored[:SAMPLE_TILES]]


def write_qa(c: Campaign, out: Path, lanemap, parts: dict, munis, tiles: list[dict], stats: dict, seconds: dict,
             points: int):
    """Write ``qa/metrics.json`` and ``qa/report.html``; returns (report path, metrics)."""
    from hdmap.trajectory import Trajectory

    from .report import ReportInput, write_report

    qa = out / "qa"
    qa.mkdir(exist_ok=True)
    classes: dict = {}
    for s in stats.values():
        for k, v in s.get("classes", {}).items():
            classes[k] = classes.get(k, 0) + v
    accuracy = _accuracy(c, out, stats)
    metrics = {
        "campaign": {"name": c.name, "hash": c.hash}, "version": __version__,
        "points": points, "tiles": len(tiles), "classes": dict(sorted(classes.items(), key=lambda kv: int(kv[0]))),
        "map": map_stats(lanemap), "regions": {k: map_stats(p) for k, p in parts.items()},
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "accuracy": accuracy,
    }
    write_text_atomic(qa / "metrics.json", json.dumps(metrics, indent=1, default=_json_default) + "\n")
    trajs = []
    for d in c.drives:
        if d.trajectory is not None:
            tr = Trajectory.read(d.trajectory, crs=d.crs, to_crs=c.crs)
            trajs.append((d.name, tr.xyz[:, :2]))
    summary = {"points": points, "drives": len(c.drives), "tiles": len(tiles),
               "km of lane": metrics["map"]["lane_km"], **{f"{k} (s)": round(v, 1) for k, v in seconds.items()}}
    data = ReportInput(
        title=f"hdmap QA — {c.name}", campaign=c.to_dict(), version=__version__, municipalities=munis,
        tiles=tiles, trajectories=trajs, lanemap=lanemap, parts=parts, samples=_samples(out, lanemap, tiles),
        accuracy=accuracy, summary=summary)
    report = write_report(qa, data)
    return report, metrics


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"not JSON-able: {type(v).__name__}")

"""Vectorisation: map accuracy per preset and time per km of road.

    python benchmarks/extract.py [--length 200] [--rate 250000]

For the presets urban, tempus-b13, motorway and junction (fixed seeds, every
distractor on, two passes in opposite directions; junction four, both streets
both ways), each
in a fresh process: simulate, classify all drives together (``classify_file``),
extract the map from the classified drives with their trajectories (as
``hdmap extract`` does, LAZ reading included) and evaluate it against the truth
(:func:`hdmap.evaluate_map.evaluate_map`, inside 20 m of the drives).

Time per km: wall time of the extraction (reading the classified LAZ, all
stages, writing GeoJSON and GeoPackage) divided by the road length surveyed,
after a warm-up extraction so Numba kernels are compiled.

Results: ``benchmarks/results/extract.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_bytes, run_child, write_result  # noqa: E402

#: The issue names urban, tempus-b13 and motorway; junction (a four-way crossing of two town streets) is
#: measured too, as a scene the stages were not built on, surveyed as a campaign would: both streets driven
#: both ways (its four routes). tempus-b13 already measures a cross road seen only from the main road.
PRESETS = ("urban", "tempus-b13", "motorway", "junction")
ISSUE_PRESETS = ("urban", "tempus-b13", "motorway")
SEEDS = {"urban": 11, "tempus-b13": 11, "motorway": 11, "junction": 11}
PASSES = {"urban": 2, "tempus-b13": 2, "motorway": 2, "junction": 4}

#: The issue's targets: (metric path, comparison, value).
TARGETS = [
    ("boundaries.completeness_0.20", ">=", 0.97),
    ("boundaries.correctness_0.20", ">=", 0.98),
    ("boundaries.completeness_0.10", ">=", 0.90),
    ("boundaries.rmse_m", "<=", 0.04),
    ("boundaries.pattern_accuracy", ">=", 0.95),
    ("boundaries.stroke_error_m", "<=", 0.3),
    ("boundaries.gap_error_m", "<=", 0.3),
    ("curbs.completeness_0.20", ">=", 0.90),
    ("curbs.correctness_0.20", ">=", 0.95),
    ("markings.stop_line.precision", ">=", 0.90),
    ("markings.stop_line.recall", ">=", 0.90),
    ("markings.crosswalk.precision", ">=", 0.90),
    ("markings.crosswalk.recall", ">=", 0.90),
    ("lanes.count_accuracy", ">=", 0.95),
    ("lanes.centerline_rmse_m", "<=", 0.05),
    ("lanes.width_error_m", "<=", 0.05),
]


def lookup(metrics: dict, path: str):
    """``metrics["a"]["b.c"]``-style lookup for dotted paths whose last key may hold a dot."""
    node = metrics
    parts = path.split(".")
    i = 0
    while i < len(parts):
        for j in range(len(parts), i, -1):
            key = ".".join(parts[i:j])
            if isinstance(node, dict) and key in node:
                node = node[key]
                i = j
                break
        else:
            return None
    return node


def check(metrics: dict) -> dict:
    """Each target: True (held), False (missed) or None (nothing to measure, e.g. no stop line in the scene)."""
    out = {}
    for path, op, target in TARGETS:
        v = lookup(metrics, path)
        out[path] = None if v is None else bool(v >= target if op == ">=" else v <= target)
    return out


def child(preset: str, length: float, rate: float) -> dict:
    import numba

    import hdmap
    from hdmap.evaluate_map import evaluate_map
    from hdmap.io import read_header
    from hdmap.sim import simulate
    from hdmap.stream import classify_file
    from hdmap.vectorize import extract_files

    numba.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp(prefix="hdmap-bench-ext-"))
    try:
        sim = simulate(tmp, preset_name=preset, length=length, passes=PASSES[preset], seed=SEEDS[preset], rate=rate)
        drives = [tmp / f"drive_{k}.laz" for k in range(len(sim.drives))]
        tfiles = [tmp / f"trajectory_{k}.txt" for k in range(len(sim.drives))]
        trajs = [hdmap.Trajectory.read(p) for p in tfiles]
        outs = [tmp / f"classified_{k}.laz" for k in range(len(drives))]
        classify_file(drives, outs, trajs)
        extract_files(outs, tmp / "warm", trajs)  # warm-up: Numba compilation, file caches
        t0 = time.perf_counter()
        m = extract_files(outs, tmp / "map", trajs)
        wall = time.perf_counter() - t0
        metrics = evaluate_map(tmp / "truth", tmp / "map", trajectories=tfiles)
        facts = json.loads((tmp / "truth" / "scene.json").read_text())
        road_km = sum(r["length_m"] for r in facts["roads"]) / 1000.0
        return {
            "points": sum(read_header(p).point_count for p in outs),
            "drives": len(drives), "road_km": road_km, "extract_s": wall, "s_per_km": wall / road_km,
            "objects": {"boundaries": len(m.lines), "curbs": len(m.curbs), "lanes": len(m.lanes),
                        "markings": len(m.markings)},
            "peak_rss_bytes": peak_rss_bytes(),
            "metrics": metrics,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=float, default=200.0, help="street length per preset (m)")
    ap.add_argument("--rate", type=float, default=250_000, help="pulses/s per profile scanner")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], float(args.child[1]), float(args.child[2]))))
        return
    me = Path(__file__)
    presets = {}
    for preset in PRESETS:
        r = run_child(me, ["--child", preset, str(args.length), str(args.rate)])
        r["targets_held"] = check(r["metrics"])
        presets[preset] = r
        mb, mc, ml = r["metrics"]["boundaries"], r["metrics"]["curbs"], r["metrics"]["lanes"]
        print(f"{preset:11s} {r['s_per_km']:6.1f} s/km  lines {mb['completeness_0.20']} / {mb['correctness_0.20']} "
              f"rmse {mb['rmse_m']} pattern {mb['pattern_accuracy']}  curbs {mc['completeness_0.20']} / "
              f"{mc['correctness_0.20']}  lanes {ml['count_accuracy']} cl {ml['centerline_rmse_m']} "
              f"w {ml['width_error_m']}  missed: "
              f"{[k for k, v in r['targets_held'].items() if v is False]}", flush=True)
    out = write_result("extract", {
        "command": f"python benchmarks/extract.py --length {args.length:g} --rate {args.rate:g}",
        "setup": f"presets with seeds {SEEDS}, {args.length:g} m, passes {PASSES} (forward and backward), 2 profile "
                 f"scanners x {args.rate:g} pulses/s, every distractor on; classify_file then extract_files on all "
                 "drives with their trajectories; evaluate_map within 20 m of the drives; 2 Numba threads",
        "targets": [{"metric": p, "op": op, "value": v} for p, op, v in TARGETS],
        "presets": presets,
        "summary": {
            "targets_missed": {p: [k for k, v in r["targets_held"].items() if v is False] for p, r in presets.items()},
            "all_targets_held": all(v is not False for r in presets.values() for v in r["targets_held"].values()),
            # the issue's presets alone (junction is measured beyond them)
            "issue_presets_held": all(v is not False for name, r in presets.items() if name in ISSUE_PRESETS
                                      for v in r["targets_held"].values()),
            "max_s_per_km": max(r["s_per_km"] for r in presets.values()),
            "max_s_per_km_issue_presets": max(r["s_per_km"] for p, r in presets.items() if p in ISSUE_PRESETS),
        },
    })
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

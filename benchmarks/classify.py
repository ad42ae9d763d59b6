"""Point classification: accuracy per preset, speed, memory, and two peers on the same points.

    python benchmarks/classify.py [--length 150] [--rate 500000]

For the presets urban, tempus-b13 and motorway (fixed seeds, every distractor
on, two passes in opposite directions), each in a fresh process:

* simulate, then ``classify_file`` both drives together (tiles streamed from
  disk, as ``hdmap classify`` does) and evaluate against the truth;
* speed of the classification stages alone (the summed ``classify()`` calls:
  no LAS/LAZ reading, decoding or writing, no tile spilling), in survey points
  per second, after a warm-up run so Numba kernels are compiled;
* peak RSS of the process in bytes per survey point.

On a block of the tempus-b13 survey (all drives, about 6 M points, in memory)
the peers run on the same points as our stages:

* cloth simulation filter (CSF, ``cloth-simulation-filter``, urban settings)
  against our ground stage: time and F1 of "terrain" (truth 2, 11, 64, 67);
* Open3D statistical outlier removal (20 neighbours, 2 sigma) against our
  noise stage (with the ground model it needs): time and F1 of noise (7, 18).

Results: ``benchmarks/results/classify.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_bytes, run_child, write_result  # noqa: E402

PRESETS = ("urban", "tempus-b13", "motorway")
SEEDS = {"urban": 1, "tempus-b13": 1, "motorway": 1}
TERRAIN = (2, 11, 64, 67)
NOISE = (7, 18)


def _f1(truth_mask, pred_mask) -> dict:
    tp = int((truth_mask & pred_mask).sum())
    p = tp / max(int(pred_mask.sum()), 1)
    r = tp / max(int(truth_mask.sum()), 1)
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def _warm_up() -> None:
    from hdmap.classify import classify
    from hdmap.sim import simulate

    import hdmap

    tmp = Path(tempfile.mkdtemp(prefix="hdmap-bench-warm-"))
    try:
        simulate(tmp, preset_name="urban", length=40, passes=1, seed=5, rate=50_000)
        classify(hdmap.read(tmp / "drive_0.laz"), hdmap.Trajectory.read(tmp / "trajectory_0.txt"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def child_accuracy(preset: str, length: float, rate: float, keep: str | None) -> dict:
    import numba

    import hdmap
    from hdmap.evaluate import evaluate_points
    from hdmap.sim import simulate
    from hdmap.stream import classify_file

    numba.set_num_threads(2)
    _warm_up()
    tmp = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="hdmap-bench-cls-"))
    try:
        sim = simulate(tmp, preset_name=preset, length=length, passes=2, seed=SEEDS[preset], rate=rate)
        drives = [tmp / f"drive_{k}.laz" for k in range(len(sim.drives))]
        trajs = [hdmap.Trajectory.read(tmp / f"trajectory_{k}.txt") for k in range(len(sim.drives))]
        outs = [tmp / f"classified_{k}.laz" for k in range(len(drives))]
        rss0 = peak_rss_bytes()
        t0 = time.perf_counter()
        res = classify_file(drives, outs, trajs)
        wall = time.perf_counter() - t0
        metrics = evaluate_points(tmp, outs)
        labels = metrics["confusion"]["labels"]
        cm = np.array(metrics["confusion"]["rows_truth_cols_predicted"])
        t_in = np.isin(labels, TERRAIN)
        tp = cm[np.ix_(t_in, t_in)].sum()
        p, r = tp / cm[:, t_in].sum(), tp / cm[t_in, :].sum()
        return {
            "points": res.points, "tiles": res.tiles, "max_tile_points": res.max_tile_points,
            "classify_s": res.timing["classify"], "read_spill_s": res.timing["read_spill"],
            "write_s": res.timing["write"], "wall_s": wall,
            "peak_rss_bytes": peak_rss_bytes(), "peak_rss_before_bytes": rss0,
            "metrics": {k: metrics[k] for k in ("ground", "road_surface", "ground_or_road", "curb", "road_marking",
                                               "noise")},
            "terrain": {"precision": p, "recall": r, "f1": 2 * p * r / (p + r)},
        }
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def child_peers(sim_dir: str, block: float) -> dict:
    import CSF
    import numba
    import open3d as o3d

    import hdmap
    from hdmap.classify import STAGES, detect_noise, ground_model

    numba.set_num_threads(2)
    _warm_up()
    sim_dir = Path(sim_dir)
    clouds, truth, ours = [], [], []
    k = 0
    while (sim_dir / f"drive_{k}.laz").exists():
        c = hdmap.read(sim_dir / f"drive_{k}.laz")
        o = hdmap.read(sim_dir / f"classified_{k}.laz")
        clouds.append(c)
        truth.append(np.load(sim_dir / "truth" / f"classes_{k}.npy"))
        ours.append(o.attrs["classification"])
        k += 1
    cloud = hdmap.PointCloud.concatenate(clouds)
    truth = np.concatenate(truth)
    ours = np.concatenate(ours)
    # a block across the street around the middle of the survey, all drives
    y_mid = np.median(cloud.y)
    m = np.abs(cloud.y - y_mid) < block / 2
    xyz = cloud.xyz[m]
    truth, ours = truth[m], ours[m]
    trajs = [hdmap.Trajectory.read(p) for p in sorted(sim_dir.glob("trajectory_*.txt"))]
    seeds = np.concatenate([t.xyz for t in trajs])
    out = {"points": int(len(xyz)), "block_m": block}
    # ours: ground stage, then noise stage (which needs the ground)
    t0 = time.perf_counter()
    g = ground_model(xyz, seeds)
    t_ground = time.perf_counter() - t0
    t0 = time.perf_counter()
    detect_noise(xyz, g.dz, STAGES["noise"].resolve(None))
    t_noise = time.perf_counter() - t0
    truth_terrain = np.isin(truth, TERRAIN)
    truth_noise = np.isin(truth, NOISE)
    out["ours_ground"] = {"seconds": t_ground, **_f1(truth_terrain, np.isin(ours, TERRAIN)),
                          "note": "time of ground_model(); F1 of the full classification's terrain classes"}
    out["ours_noise"] = {"seconds": t_ground + t_noise, "noise_stage_only_s": t_noise,
                         **_f1(truth_noise, np.isin(ours, NOISE)),
                         "note": "time includes the ground model the noise stage needs"}
    # CSF (urban settings of its authors: rigidness 3, 0.5 m cloth, threshold 0.5 m)
    csf = CSF.CSF()
    csf.params.bSloopSmooth = False
    csf.params.cloth_resolution = 0.5
    csf.params.rigidness = 3
    csf.params.class_threshold = 0.5
    local = xyz - xyz.min(axis=0)
    t0 = time.perf_counter()
    csf.setPointCloud(local)
    ground_idx, off_idx = CSF.VecInt(), CSF.VecInt()
    csf.do_filtering(ground_idx, off_idx, False)
    t_csf = time.perf_counter() - t0
    csf_ground = np.zeros(len(xyz), bool)
    csf_ground[np.asarray(ground_idx, dtype=np.int64)] = True
    out["csf_ground"] = {"seconds": t_csf, **_f1(truth_terrain, csf_ground),
                         "settings": "cloth_resolution 0.5, rigidness 3, class_threshold 0.5, no slope smoothing"}
    # Open3D statistical outlier removal
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(local))
    t0 = time.perf_counter()
    _, keep = pc.remove_statistical_outlier(nb_neighbors=20, std_ratio=2.0)
    t_sor = time.perf_counter() - t0
    sor_noise = np.ones(len(xyz), bool)
    sor_noise[np.asarray(keep, dtype=np.int64)] = False
    out["open3d_sor_noise"] = {"seconds": t_sor, **_f1(truth_noise, sor_noise),
                               "settings": "nb_neighbors 20, std_ratio 2.0"}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=float, default=150.0, help="street length per preset (m)")
    ap.add_argument("--rate", type=float, default=500_000, help="pulses/s per profile scanner")
    ap.add_argument("--block", type=float, default=30.0, help="length of the block the peers run on (m)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        if args.child[0] == "accuracy":
            keep = args.child[4] if len(args.child) > 4 else None
            print(json.dumps(child_accuracy(args.child[1], float(args.child[2]), float(args.child[3]), keep)))
        else:
            print(json.dumps(child_peers(args.child[1], float(args.child[2]))))
        return
    me = Path(__file__)
    keep = Path(tempfile.mkdtemp(prefix="hdmap-bench-keep-"))
    try:
        presets = {}
        for preset in PRESETS:
            extra = [str(keep)] if preset == "tempus-b13" else []
            r = run_child(me, ["--child", "accuracy", preset, str(args.length), str(args.rate), *extra])
            r["classify_mpts_per_s"] = r["points"] / r["classify_s"] / 1e6
            r["end_to_end_mpts_per_s"] = r["points"] / r["wall_s"] / 1e6
            r["peak_rss_bytes_per_point"] = r["peak_rss_bytes"] / r["points"]
            presets[preset] = r
            mm = r["metrics"]
            print(f"{preset:11s} {r['points'] / 1e6:5.1f} M pts  stages {r['classify_mpts_per_s']:.2f} Mpts/s  "
                  f"end-to-end {r['end_to_end_mpts_per_s']:.2f}  RSS {r['peak_rss_bytes_per_point']:.0f} B/pt  "
                  f"gor {mm['ground_or_road']['f1']:.4f} road {mm['road_surface']['f1']:.4f} "
                  f"mark P {mm['road_marking']['precision']:.4f} R {mm['road_marking']['recall']:.4f} "
                  f"curb {mm['curb']['f1'] if mm['curb']['f1'] is not None else float('nan'):.4f} "
                  f"noise {mm['noise']['f1']:.4f}", flush=True)
        peers = run_child(me, ["--child", "peers", str(keep), str(args.block)])
        print(json.dumps(peers, indent=1), flush=True)
    finally:
        shutil.rmtree(keep, ignore_errors=True)
    targets = {"ground_or_road.f1": 0.99, "road_surface.f1": 0.98, "road_marking.precision": 0.95,
               "road_marking.recall": 0.95, "curb.f1": 0.85, "noise.f1": 0.90}
    held = {}
    for preset, r in presets.items():
        for key, target in targets.items():
            group, metric = key.split(".")
            v = r["metrics"][group][metric]
            held[f"{preset}.{key}"] = None if v is None else bool(v >= target)
    out = write_result("classify", {
        "command": f"python benchmarks/classify.py --length {args.length:g} --rate {args.rate:g} --block {args.block:g}",
        "setup": f"presets with seeds {SEEDS}, {args.length:g} m, 2 passes, 2 profile scanners x {args.rate:g} pulses/s, "
                 "every distractor on; classify_file (100 m tiles, 12 m halo) on both drives together; 2 Numba threads",
        "presets": presets,
        "peers": peers,
        "targets": targets,
        "summary": {
            "targets_held": held,
            "all_accuracy_targets_held": all(v is not False for v in held.values()),
            "min_classify_mpts_per_s": min(r["classify_mpts_per_s"] for r in presets.values()),
            "speed_target_mpts_per_s": 20.0,
            "max_peak_rss_bytes_per_point": max(r["peak_rss_bytes_per_point"] for r in presets.values()),
        },
    })
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

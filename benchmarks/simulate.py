"""Simulator throughput and memory.

    python benchmarks/simulate.py [--length 600] [--repeats 3]

For the presets urban, tempus-b13 and motorway at survey rates (two profile
scanners at 1 M pulses/s each, the presets' speeds), in fresh processes after
a warm-up run (Numba compiled and cached):

* simulated points per second: whole ``simulate()`` wall time (scene, casting,
  georeferencing, LAZ 1.4 writing, truth files) -- the target figure -- and,
  for reading, the points per second of time spent casting and of time the
  writer thread was busy (they overlap: batch c is written while batch c + 1
  is cast, both competing for the two cores);
* CPU time of the process (all threads) per point, for comparing runs on
  machines of different speed: the wall-time figures move by tens of percent
  between machines of the same kind;
* peak RSS for a short and a four times longer drive (memory must not grow with
  the drive: points are written chunk by chunk).

Results: ``benchmarks/results/simulate.json``.
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
from _common import median, peak_rss_bytes, run_child, write_result  # noqa: E402

PRESETS = ("urban", "tempus-b13", "motorway")


def child(preset: str, length: float, warm: bool) -> dict:
    import numba

    from hdmap.sim import simulate

    numba.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp(prefix="hdmap-bench-sim-"))
    try:
        if warm:
            simulate(tmp / "warm", preset_name=preset, length=150, passes=1, seed=99, rate=50_000)
        t0 = time.perf_counter()
        c0 = time.process_time()
        r = simulate(tmp / "run", preset_name=preset, length=length, passes=1, seed=1)
        wall = time.perf_counter() - t0
        return {"points": r.total_points, "wall_s": wall, "cpu_s": time.process_time() - c0,
                "cast_s": r.timing["cast_s"], "write_s": r.timing["write_s"],
                "peak_rss_bytes": peak_rss_bytes(), "drive_m": length}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=float, default=600.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", nargs=3, metavar=("PRESET", "LENGTH", "WARM"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], float(args.child[1]), args.child[2] == "1")))
        return
    me = Path(__file__)
    speed = {}
    for preset in PRESETS:
        runs = [run_child(me, ["--child", preset, str(args.length), "1"]) for _ in range(args.repeats)]
        pts = runs[0]["points"]
        wall = median([r["wall_s"] for r in runs])
        cast = median([r["cast_s"] for r in runs])
        write = median([r["write_s"] for r in runs])
        speed[preset] = {
            "points": pts,
            "end_to_end_mpts_per_s": pts / wall / 1e6,
            "ray_casting_mpts_per_s": pts / cast / 1e6,
            "writing_mpts_per_s": pts / write / 1e6,
            "wall_s_all": [r["wall_s"] for r in runs],
            # CPU time of all threads per point: what the machine's speed and sharing change least
            "cpu_ns_per_point_median": median([r["cpu_s"] for r in runs]) / pts * 1e9,
            "cast_s_median": cast,
            "write_s_median": write,
        }
        print(f"{preset:11s} {pts / 1e6:6.1f} M pts  end-to-end {pts / wall / 1e6:5.2f} Mpts/s  "
              f"casting {pts / cast / 1e6:5.2f}  writing {pts / write / 1e6:5.2f}  "
              f"CPU {speed[preset]['cpu_ns_per_point_median']:.0f} ns/point", flush=True)
    # memory against drive length (urban, cold processes, no warm-up: only the run itself)
    mem = {}
    for length in (args.length / 4, args.length):
        r = run_child(me, ["--child", "urban", str(length), "0"])
        mem[f"{length:g}m"] = {"points": r["points"], "peak_rss_bytes": r["peak_rss_bytes"]}
        print(f"urban {length:g} m: {r['points'] / 1e6:.1f} M points, peak RSS {r['peak_rss_bytes'] / 1e9:.2f} GB",
              flush=True)
    short, long_ = mem[f"{args.length / 4:g}m"], mem[f"{args.length:g}m"]
    out = write_result("simulate", {
        "command": f"python benchmarks/simulate.py --length {args.length:g} --repeats {args.repeats}",
        "setup": "2 profile scanners x 1 M pulses/s, 250 profiles/s, preset speeds, 1 pass, 2 Numba threads; "
                 "casting and writing overlap (writer thread); OpenMP threads wait passively (OMP_WAIT_POLICY)",
        "speed": speed,
        "memory": mem,
        "summary": {
            "min_end_to_end_mpts_per_s": min(v["end_to_end_mpts_per_s"] for v in speed.values()),
            "peak_rss_long_over_short": long_["peak_rss_bytes"] / short["peak_rss_bytes"],
            "points_long_over_short": long_["points"] / short["points"],
        },
    })
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

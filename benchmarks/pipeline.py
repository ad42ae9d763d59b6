"""The batch pipeline (``hdmap run``): speed against the I/O floor, scaling, memory, tile-size invariance.

    python benchmarks/pipeline.py [--length 1000] [--rate 100000] [--mem-rate 20000] [--inv-length 400]

1. A simulated campaign: ``tempus-b13``, *length* m, two passes, *rate* pulses/s
   per scanner (1000 m at 100 kHz: about 20 M points).
2. **I/O floor**, measured in this benchmark run on the same files: read every
   input LAZ with laspy in 1 M-point chunks and write the same points to one
   LAZ per input (laspy, lazrs). Measured before and after the pipeline runs;
   the median is the floor.
3. **Pipeline** with 2 local workers and with 1, each in a fresh process (Numba
   kernels compiled beforehand by a warm-up run, so the cache is warm):
   wall time, ratio to the floor, M points/s, survey-km per hour (km driven:
   both passes), speed-up of 2 workers over 1.
4. **Memory**: the whole run (main process plus every worker, RSS sampled every
   0.1 s and summed) on a 1 km and a 4 km drive at *mem-rate*; ratio of the peaks.
5. **Tile-size invariance**: the stitched boundaries of 25 m and 200 m tiles
   on a *inv-length* m campaign at *rate*, compared with the buffer method at
   0.05 m (completeness and correctness, lane lines and curbs/road borders).

Results: ``benchmarks/results/pipeline.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median, run_child, write_result  # noqa: E402

TARGETS = {"floor_ratio": ("<=", 2.0), "speedup_2_vs_1": (">=", 1.7), "memory_ratio_4km_1km": ("<=", 1.2),
           "invariance_min": (">=", 0.99)}


class TreeRSS:
    """Peak of the summed RSS of this process and all its descendants, sampled in a thread."""

    def __init__(self, interval=0.1):
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        import psutil

        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


def _campaign(sim: Path, size: float | None = None) -> Path:
    """The simulator's campaign file, optionally with another tile size."""
    path = sim / "campaign.toml"
    if size is None:
        return path
    out = sim / f"campaign_{size:g}.toml"
    text = path.read_text(encoding="utf-8")
    import re

    out.write_text(re.sub(r"(?m)^size = .*$", f"size = {size:.1f}", text), encoding="utf-8")
    return out


# ---------------------------------------------------------------------------
# children (fresh processes)
# ---------------------------------------------------------------------------
def child_simulate(out: str, length: float, rate: float) -> dict:
    from hdmap.sim import simulate

    r = simulate(out, preset_name="tempus-b13", length=length, passes=2, seed=2026, rate=rate)
    km = 0.0
    from hdmap.trajectory import Trajectory

    for t in r.trajectories:
        km += Trajectory.read(t).length_m / 1000.0
    return {"points": r.total_points, "drive_km": km, "drives": [str(p) for p in r.drives]}


def child_floor(drives: list[str], out: str) -> dict:
    import laspy

    t0 = time.perf_counter()
    n = 0
    for k, path in enumerate(drives):
        with laspy.open(path) as reader, laspy.open(Path(out) / f"floor_{k}.laz", mode="w",
                                                    header=reader.header) as writer:
            for chunk in reader.chunk_iterator(1_000_000):
                writer.write_points(chunk)
                n += len(chunk)
    return {"seconds": time.perf_counter() - t0, "points": n}


def child_run(campaign: str, out: str, workers: int) -> dict:
    from hdmap.pipelines import run

    t0 = time.perf_counter()
    with TreeRSS() as mem:
        res = run(campaign, out, workers=workers, progress=False)
    return {"seconds": time.perf_counter() - t0, "stages": {k: round(v, 2) for k, v in res.seconds.items()},
            "points": res.points, "tiles": res.tiles, "peak_rss_bytes": mem.peak,
            "accuracy": (res.metrics.get("accuracy") or {})}


def child_compare(a: str, b: str) -> dict:
    from hdmap.evaluate_map import evaluate_map

    m = evaluate_map(Path(a) / "vectors", Path(b) / "vectors", buffers=(0.05, 0.20))
    return {layer: {k: v for k, v in m[layer].items() if k.startswith(("completeness", "correctness", "pattern",
                                                                        "truth_length", "result_length"))}
            for layer in ("boundaries", "curbs")}


CHILDREN = {"simulate": child_simulate, "floor": child_floor, "run": child_run, "compare": child_compare}


def _child(name: str, *args) -> dict:
    return run_child(Path(__file__), ["--child", name, json.dumps(list(args))])


# ---------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=float, default=1000.0)
    ap.add_argument("--rate", type=float, default=100_000.0)
    ap.add_argument("--mem-rate", type=float, default=20_000.0)
    ap.add_argument("--inv-length", type=float, default=400.0)
    ap.add_argument("--keep", help="keep the work directory here")
    ap.add_argument("--child")
    ap.add_argument("args", nargs="?")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(CHILDREN[a.child](*json.loads(a.args))))
        return
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="hdmap-bench-pipeline-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = _bench(a, work)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    path = write_result("pipeline", result)
    print(json.dumps(result["summary"], indent=1))
    print(f"-> {path}")


def _bench(a, work: Path) -> dict:
    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    # warm-up: Numba's on-disk cache gets every kernel the pipeline uses
    warm = work / "warm"
    _child("simulate", str(warm), 150.0, 20_000.0)
    _child("run", str(_campaign(warm)), str(work / "warm_run"), 2)
    log("warm-up done")
    sim = work / "main"
    facts = _child("simulate", str(sim), a.length, a.rate)
    log(f"campaign: {facts['points']:,} points, {facts['drive_km']:.2f} km driven")
    floors = [_child("floor", facts["drives"], str(work))["seconds"]]
    runs = {}
    for workers in (2, 1):
        out = work / f"run_{workers}"
        runs[workers] = _child("run", str(_campaign(sim)), str(out), workers)
        log(f"{workers} worker(s): {runs[workers]['seconds']:.1f} s {runs[workers]['stages']}")
        shutil.rmtree(out, ignore_errors=True)
    floors.append(_child("floor", facts["drives"], str(work))["seconds"])
    floor = median(floors)
    log(f"floor {floors}")
    n = facts["points"]
    t2, t1 = runs[2]["seconds"], runs[1]["seconds"]
    speed = {
        "campaign": {"preset": "tempus-b13", "length_m": a.length, "passes": 2, "rate_hz": a.rate, "points": n,
                     "drive_km": round(facts["drive_km"], 3)},
        "io_floor_s": {"runs": [round(f, 2) for f in floors], "median": round(floor, 2)},
        "workers_2": dict(runs[2], mpts_per_s=round(n / t2 / 1e6, 3), survey_km_per_h=round(facts["drive_km"] / t2 *
                                                                                            3600, 2)),
        "workers_1": dict(runs[1], mpts_per_s=round(n / t1 / 1e6, 3), survey_km_per_h=round(facts["drive_km"] / t1 *
                                                                                            3600, 2)),
    }
    # memory: 1 km vs 4 km
    mem = {}
    for km in (1, 4):
        s = work / f"mem_{km}"
        f = _child("simulate", str(s), km * 1000.0, a.mem_rate)
        r = _child("run", str(_campaign(s)), str(work / f"mem_run_{km}"), 2)
        mem[f"{km}km"] = {"points": f["points"], "peak_rss_bytes": r["peak_rss_bytes"], "seconds": round(r["seconds"], 1),
                          "tiles": r["tiles"]}
        log(f"memory {km} km: {r['peak_rss_bytes'] / 1e9:.2f} GB")
        shutil.rmtree(work / f"mem_run_{km}", ignore_errors=True)
        shutil.rmtree(s, ignore_errors=True)
    # tile-size invariance
    s = work / "inv"
    f = _child("simulate", str(s), a.inv_length, a.rate)
    for size in (25.0, 200.0):
        r = _child("run", str(_campaign(s, size)), str(work / f"inv_{size:g}"), 2)
        log(f"tiles {size:g} m: {r['tiles']} tiles, {r['seconds']:.1f} s")
    inv = _child("compare", str(work / "inv_25"), str(work / "inv_200"))
    inv_min = min(v for layer in inv.values() for k, v in layer.items() if k.endswith("0.05"))
    summary = {
        "points": n,
        "floor_s": round(floor, 2),
        "wall_2_workers_s": round(t2, 2),
        "floor_ratio": round(t2 / floor, 2),
        "mpts_per_s_2_workers": round(n / t2 / 1e6, 3),
        "survey_km_per_h_2_workers": speed["workers_2"]["survey_km_per_h"],
        "speedup_2_vs_1": round(t1 / t2, 3),
        "memory_ratio_4km_1km": round(mem["4km"]["peak_rss_bytes"] / mem["1km"]["peak_rss_bytes"], 3),
        "invariance_min": inv_min,
        "invariance_lane_lines_min": min(v for k, v in inv["boundaries"].items() if k.endswith("0.05")),
    }
    verdict = {}
    for key, (op, target) in TARGETS.items():
        v = summary[key]
        verdict[key] = {"value": v, "target": f"{op} {target}", "met": (v <= target) if op == "<=" else (v >= target)}
    summary["targets"] = verdict
    return {"command": "python benchmarks/pipeline.py " + " ".join(
        f"--{k.replace('_', '-')} {v:g}" for k, v in (("length", a.length), ("rate", a.rate),
                                                      ("mem_rate", a.mem_rate), ("inv_length", a.inv_length))),
            "summary": summary, "speed": speed, "memory": mem, "invariance": {"campaign_length_m": a.inv_length,
                                                                              "rate_hz": a.rate, "25m_vs_200m": inv}}


if __name__ == "__main__":
    main()

"""LAZ read/write throughput: the floor every later benchmark is compared with.

    python benchmarks/io.py [--points 20000000] [--repeats 3]

Makes (once, cached in benchmarks/_work/) a LAZ file of mobile-mapping-like
points (profile scan lines along a street, in acquisition order, so LAZ
compresses them as it would a real drive), then measures in fresh processes:

* read whole (``hdmap.read``) and chunked (``hdmap.iter_chunks``, default chunk size),
* write whole (``hdmap.write``) and chunked (``hdmap.io.LasWriter``),

each with 1 and 2 decoder/encoder threads (``RAYON_NUM_THREADS``, which lazrs'
parallel backend uses), reporting the median Mpts/s and the peak RSS of the
process. Results: ``benchmarks/results/io.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, median, peak_rss_bytes, run_child, write_result  # noqa: E402


def synthetic_drive(start: int, n: int, seed: int = 0):
    """Points start .. start+n of a profile-scanner-like drive: 250 profiles/s at 10 m/s through a street canyon."""
    rng = np.random.default_rng([seed, start])
    per_profile = 4000
    k = np.arange(start, start + n)
    prof = k // per_profile
    ang = (k % per_profile) / per_profile * 2 * np.pi
    x_vehicle = prof * 0.04  # 10 m/s / 250 Hz
    dy, dz = np.sin(ang), np.cos(ang)  # profile plane across the road
    h = 2.2
    t_ground = np.where(dz < -1e-3, h / -np.where(dz < -1e-3, dz, -1), np.inf)
    t_wall = np.where(np.abs(dy) > 1e-3, 12.0 / np.abs(np.where(np.abs(dy) > 1e-3, dy, 1)), np.inf)
    t = np.minimum(np.minimum(t_ground, t_wall), 60.0)
    t += rng.normal(0, 0.005, n)
    x = 692000.0 + x_vehicle + rng.normal(0, 0.002, n)
    y = 5343800.0 + dy * t
    z = 480.0 + h + dz * t
    intensity = np.clip(2000 + 1000 * np.sin(x * 0.7) + rng.normal(0, 300, n), 0, 65535).astype(np.uint16)
    gps = 4.0e8 + prof / 250.0 + (k % per_profile) / per_profile / 250.0
    return np.column_stack([x, y, z]), intensity, gps, (prof % 65536).astype(np.uint16)


def make_input(n: int) -> Path:
    import hdmap
    from hdmap.io import LasWriter

    path = WORK / f"io_{n}.laz"
    if path.exists():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    step = 2_000_000
    with LasWriter(path, crs="EPSG:25832", offsets=[692000, 5343000, 0]) as w:
        for start in range(0, n, step):
            m = min(step, n - start)
            xyz, inten, gps, _ = synthetic_drive(start, m)
            w.write(hdmap.PointCloud(xyz, {
                "intensity": inten, "gps_time": gps,
                "return_number": np.ones(m, np.uint8), "number_of_returns": np.ones(m, np.uint8),
                "point_source_id": np.ones(m, np.uint16),
            }, crs=None))
    return path


# --- child: one measurement -------------------------------------------------
def child(mode: str, path: str) -> dict:
    import hdmap
    from hdmap.io import LasWriter, iter_chunks

    out = Path(path).with_name(f"io_out_{mode}.laz")
    if mode == "read_whole":
        t0 = time.perf_counter()
        cloud = hdmap.read(path)
        dt = time.perf_counter() - t0
        n = len(cloud)
    elif mode == "read_chunked":
        t0 = time.perf_counter()
        n = 0
        for c in iter_chunks(path):
            n += len(c)
        dt = time.perf_counter() - t0
    elif mode == "write_whole":
        cloud = hdmap.read(path)
        n = len(cloud)
        t0 = time.perf_counter()
        hdmap.write(out, cloud)
        dt = time.perf_counter() - t0
    elif mode == "write_chunked":  # read and write streamed; the write time alone is what we report
        n = 0
        dt = 0.0
        with LasWriter(out) as w:
            for c in iter_chunks(path):
                t0 = time.perf_counter()
                w.write(c)
                dt += time.perf_counter() - t0
                n += len(c)
            t0 = time.perf_counter()
        dt += time.perf_counter() - t0  # closing writes the last chunk and the chunk table
    else:
        raise SystemExit(f"unknown mode {mode}")
    if out.exists():
        out.unlink()
    return {"seconds": dt, "points": n, "peak_rss_bytes": peak_rss_bytes()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=20_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    path = make_input(args.points)
    size = path.stat().st_size
    results = {}
    for mode in ("read_whole", "read_chunked", "write_whole", "write_chunked"):
        for threads in (1, 2):
            runs = [run_child(Path(__file__), ["--child", mode, str(path)], env={"RAYON_NUM_THREADS": str(threads)})
                    for _ in range(args.repeats)]
            secs = median([r["seconds"] for r in runs])
            n = runs[0]["points"]
            results[f"{mode}_{threads}t"] = {
                "mpts_per_s": n / secs / 1e6,
                "seconds_median": secs,
                "seconds_all": [r["seconds"] for r in runs],
                "peak_rss_bytes": int(median([r["peak_rss_bytes"] for r in runs])),
                "peak_rss_bytes_per_point": median([r["peak_rss_bytes"] for r in runs]) / n,
                "threads": threads,
            }
            print(f"{mode:14s} {threads}t  {n / secs / 1e6:6.2f} Mpts/s  peak RSS {results[f'{mode}_{threads}t']['peak_rss_bytes'] / 1e9:.2f} GB",
                  flush=True)
    ratio = results["read_whole_1t"]["peak_rss_bytes"] / results["read_chunked_1t"]["peak_rss_bytes"]
    out = write_result("io", {
        "command": "python benchmarks/io.py --points %d --repeats %d" % (args.points, args.repeats),
        "input": {"points": args.points, "file_bytes": size, "bytes_per_point": size / args.points,
                  "kind": "synthetic profile-scanner street drive, acquisition order, LAZ point format 6"},
        "results": results,
        "summary": {
            "read_mpts_per_s_2t": results["read_chunked_2t"]["mpts_per_s"],
            "write_mpts_per_s_2t": results["write_chunked_2t"]["mpts_per_s"],
            "whole_vs_chunked_read_peak_rss_ratio": ratio,
        },
    })
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

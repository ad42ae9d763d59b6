"""``hdmap run``: a whole survey campaign in, deliveries per municipality out.

The steps (DESIGN.md, Batch pipelines):

1. **plan** from the LAS headers (points, extent, formats; every input is
   checked before anything is written);
2. **spill**: every drive is read once, in chunks, into base squares on disk
   (``work/spill``; memory bounded by the chunk size);
3. **tiles**, in parallel: (a) classification with a ``buffer`` of context,
   (b) road markings with the survey's intensity curve (summed from every
   tile's histograms) and the classified tile LAZ (``tiles/``, each point
   once), (c) local vectors with a ``vector_buffer`` of context, cut to the
   tile;
4. **stitch** the tiles' vectors into one network, build lanes on it
   (``vectors/``);
5. **partition** by municipality (cut at the border with a shared vertex);
6. **deliveries** per municipality and for the whole field, each with a
   ``manifest.json``;
7. **QA**: ``qa/metrics.json`` and ``qa/report.html``.

Every tile's output is written atomically and followed by a done-marker, so a
run killed at any point continues with ``resume=True`` where it stopped; the
steps after the tiles are cheap and always redone. The outputs are
deterministic: a resumed run's deliveries are byte-identical to an
uninterrupted run's.

When the run has finished, the bulky intermediates (the spilled points and the
per-tile codes and histograms in ``work/``, several times the size of the
input LAZ) are removed unless ``keep_work=True``; the done-markers and the
tiles' vectors stay, so ``resume`` on a finished run redoes the cheap steps
4 to 7 only.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import logging
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdmap import __version__
from hdmap._atomic import is_temp_name, write_bytes_atomic, write_text_atomic
from hdmap._progress import progress_bar
from hdmap.errors import ConfigError
from hdmap.io import iter_chunks, read_header

from . import tasks
from .campaign import Campaign, load_campaign
from .executors import InlineExecutor, open_executor
from .tiling import Grid, SpillStore, spill_dtype, tile_name

__all__ = ["run", "RunResult"]

logger = logging.getLogger("hdmap.pipelines")

RUN_FILE = "run.json"
_OUT_FORMATS = {"lanelet2": "map.osm", "opendrive": "map.xodr", "gpkg": "map.gpkg"}
_CLASSIFY_MIN_FORMAT = {0: 6, 1: 6, 2: 7, 3: 7, 4: 9, 5: 10}


@dataclass
class RunResult:
    """What :func:`run` made."""

    out: Path
    lanemap: object
    parts: dict
    deliveries: dict
    report: Path | None
    metrics: dict
    seconds: dict = field(default_factory=dict)
    points: int = 0
    tiles: int = 0


# ---------------------------------------------------------------------------
# plan
# ---------------------------------------------------------------------------
def _plan_inputs(c: Campaign) -> dict:
    """Headers of every input: point counts, formats, extent, the attributes all of them carry."""
    from hdmap.crs import transformer

    total, fmts, names, lo, hi = 0, set(), None, np.full(2, np.inf), np.full(2, -np.inf)
    per_drive: dict = {}
    dtypes: dict = {}
    for d in c.drives:
        for path in d.laz:
            h = read_header(path)
            total += int(h.point_count)
            per_drive[d.name] = per_drive.get(d.name, 0) + int(h.point_count)
            fmts.add(int(h.point_format.id))
            dims = set(h.point_format.dimension_names) - {"X", "Y", "Z"}
            names = dims if names is None else names & dims
            src = d.crs or _file_crs(h, path)
            tr = transformer(src, c.crs)
            xs = [h.mins[0], h.maxs[0], h.mins[0], h.maxs[0]]
            ys = [h.mins[1], h.mins[1], h.maxs[1], h.maxs[1]]
            ex, ey = tr.transform(xs, ys)
            lo = np.minimum(lo, [min(ex), min(ey)])
            hi = np.maximum(hi, [max(ex), max(ey)])
            if not dtypes and int(h.point_count):
                for chunk in iter_chunks(path, 1, crs=d.crs):
                    dtypes = {n: v.dtype.str for n, v in chunk.attrs.items()}
                    break
    attrs = [(n, dtypes[n]) for n in sorted(names or ()) if n in dtypes and n not in ("classification",)]
    attrs.append(("classification", "|u1"))
    fmt = max(fmts) if fmts else 6
    return {"points": total, "drive_points": per_drive, "formats": sorted(fmts), "attrs": attrs, "bounds": [*lo.tolist(), *hi.tolist()],
            "point_format": fmt if fmt >= 6 else _CLASSIFY_MIN_FORMAT.get(fmt, 6)}


def _file_crs(header, path):
    from hdmap.io import file_crs

    crs = file_crs(header, path)
    if crs is None:
        raise ConfigError(f"{path}: no CRS in the file and none in the campaign; add crs = \"EPSG:...\" "
                          "to the drive's [[drives]] table")
    return crs


# ---------------------------------------------------------------------------
# run directory
# ---------------------------------------------------------------------------
def _open_run_dir(out: Path, c: Campaign, resume: bool) -> bool:
    """Create or reopen the run directory; True when resuming."""
    state = out / RUN_FILE
    if state.exists():
        info = json.loads(state.read_text(encoding="utf-8"))
        if not resume:
            raise ConfigError(f"{out}: holds a run of campaign {info.get('campaign')!r}; pass --resume to continue "
                              "it, or choose another --out (or delete the directory)")
        if info.get("hash") != c.hash:
            raise ConfigError(f"{c.path}: the campaign changed since the run in {out} started (hash "
                              f"{info.get('hash', '?')[:12]} then, {c.hash[:12]} now); --resume continues only the "
                              "same campaign: undo the change, or start a new run in another --out")
        return True
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out}: exists, is not empty and holds no hdmap run; choose an empty or new --out")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(state, json.dumps({"campaign": c.name, "hash": c.hash, "campaign_file": str(c.path),
                                         "version": __version__}, indent=1) + "\n")
    return False


def _remove_temp_files(out: Path) -> None:
    """Delete the temporary files (``.name.pid.part``) a killed run left half-written.

    Every output is written to such a file and renamed when complete, so a
    leftover one holds nothing that is kept; the step that wrote it is redone.
    """
    stale = [p for p in out.rglob("*") if is_temp_name(p) and p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    if stale:
        logger.info("removed %d half-written temporary file(s) of the interrupted run", len(stale))


@contextlib.contextmanager
def _run_log(out: Path):
    handler = logging.FileHandler(out / "run.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("hdmap")
    old = root.level
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
        handler.close()


def _parallel(ex, fn, jobs: list[dict], desc: str, points: list[int], show: bool) -> list[dict]:
    """Run *jobs* on the executor with a progress bar (tiles, points/s, ETA); results in job order."""
    if not jobs:
        return []
    t0 = time.perf_counter()
    done_pts = 0
    results: list = [None] * len(jobs)
    with progress_bar(total=len(jobs), desc=desc, unit="tile", enabled=show) as bar:
        if isinstance(ex, InlineExecutor):  # one at a time, so the bar moves
            for i, job in enumerate(jobs):
                results[i] = fn(job)
                done_pts += points[i]
                bar.update(1)
                bar.set_postfix_str(f"{done_pts / max(time.perf_counter() - t0, 1e-9) / 1e6:.2f} Mpts/s")
            futs = {}
        else:
            # the largest tiles first: a large tile started last would keep one worker busy while the
            # others have nothing left to do (results are kept in job order whatever the order of work)
            order = sorted(range(len(jobs)), key=lambda i: (-points[i], i))
            futs = {ex.submit(fn, jobs[i]): i for i in order}
        try:
            for fut in cf.as_completed(futs):
                i = futs[fut]
                try:
                    results[i] = fut.result()
                except Exception as exc:
                    what = jobs[i].get("name", jobs[i].get("tile"))
                    logger.error("%s: %s failed: %s", desc, what, exc)
                    raise
                done_pts += points[i]
                bar.update(1)
                bar.set_postfix_str(f"{done_pts / max(time.perf_counter() - t0, 1e-9) / 1e6:.2f} Mpts/s")
        except BaseException:
            for f in futs:
                f.cancel()
            raise
    logger.info("%s: %d in %.1f s (%.2f M points/s)", desc, len(jobs), time.perf_counter() - t0,
                sum(points) / max(time.perf_counter() - t0, 1e-9) / 1e6)
    return results


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------
def run(campaign, out=None, *, workers: int | None = None, dask_scheduler: str | None = None, resume: bool = False,
        progress: bool = True, echo=None, chunk_size: int = 1_000_000, keep_work: bool = False) -> RunResult:
    """Process a survey campaign; see the module documentation.

    Parameters
    ----------
    campaign : path or Campaign
        The campaign file (:mod:`hdmap.pipelines.campaign`).
    out : path, optional
        Run directory (default: ``out`` beside the campaign file). Must be new
        or empty, unless *resume*.
    workers : int, optional
        Local worker processes (default: one per core).
    dask_scheduler : str, optional
        Run the tiles on this Dask cluster instead (``tcp://host:8786``).
    resume : bool
        Continue the run in *out* (the campaign must be unchanged).
    progress : bool
        Progress bars on a terminal (log lines otherwise).
    echo : callable, optional
        Called with one-line messages on what was done (the command line prints them).
    keep_work : bool
        Keep the spilled points and per-tile intermediates in ``out/work`` after
        a finished run (for debugging; they take several times the input's size).
    """
    c = campaign if isinstance(campaign, Campaign) else load_campaign(campaign)
    out = Path(out) if out is not None else c.dir / "out"
    say = echo or (lambda s: None)
    inputs = _plan_inputs(c)  # reads every header: bad inputs fail before anything is written
    with open_executor(workers, dask_scheduler) as (ex, where):  # an unreachable cluster too
        resumed = _open_run_dir(out, c, resume)
        with _run_log(out):
            logger.info("hdmap %s: campaign %s (%s), %d drive(s), %d input file(s), %s points; %s",
                        __version__, c.name, c.hash[:12], len(c.drives), sum(len(d.laz) for d in c.drives),
                        f"{inputs['points']:,}", "resuming" if resumed else "new run")
            logger.info("tiles run on %s", where)
            if resumed:
                _remove_temp_files(out)
            result = _run(c, out, ex, inputs, progress, say, chunk_size)
            if not keep_work:
                _remove_intermediates(out / "work")
            return result


#: what a finished run no longer needs (every tile task that reads them is done)
_INTERMEDIATES = ("spill", "classes", "final", "histograms")


def _remove_intermediates(work: Path) -> None:
    import shutil

    freed = 0
    for sub in _INTERMEDIATES:
        d = work / sub
        if d.is_dir():
            freed += sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
            shutil.rmtree(d)
    logger.info("removed the intermediates in %s (%.1f MB; keep them with --keep-work)", work, freed / 1e6)


def _truth_classes(c: Campaign) -> list[str] | None:
    """The simulator's per-point truth of each drive (``truth/classes_K.npy`` for ``drive_K.laz``), or None
    when the campaign has no truth or its drives are not the simulator's files one to one."""
    import re

    if c.truth_dir is None:
        return None
    out = []
    for d in c.drives:
        m = re.fullmatch(r"drive_(\d+)\.laz", d.laz[0].name) if len(d.laz) == 1 else None
        path = c.truth_dir / f"classes_{m.group(1)}.npy" if m else None
        if path is None or not path.exists() or \
                np.load(path, mmap_mode="r").shape[0] != int(read_header(d.laz[0]).point_count):
            logger.info("drive %s: no per-point truth matching its points; point accuracy not measured", d.name)
            return None
        out.append(str(path))
    return out


def _traj_spec(c: Campaign) -> list[dict]:
    return [{"path": None if d.trajectory is None else str(d.trajectory),
             "crs": None if d.crs is None else d.crs.to_wkt(), "to_crs": c.crs.to_wkt()} for d in c.drives]


def _run(c: Campaign, out: Path, ex, inputs: dict, show: bool, say, chunk_size: int) -> RunResult:
    work = out / "work"
    work.mkdir(exist_ok=True)
    seconds: dict = {}
    grid = Grid.for_context(c.tile_size, max(c.buffer, c.vector_buffer))
    dtype = spill_dtype(inputs["attrs"])
    crs_wkt = c.crs.to_wkt()
    # 2. spill
    t0 = time.perf_counter()
    jobs = [{"name": d.name, "work": str(work), "drive": k, "laz": [str(p) for p in d.laz],
             "src_crs": None if d.crs is None else d.crs.to_wkt(), "crs": crs_wkt, "base": grid.base,
             "dtype": [list(f) for f in dtype.descr], "chunk_size": chunk_size}
            for k, d in enumerate(c.drives) if not tasks.is_done(work, "spill", f"d{k}")]
    pts = [inputs["drive_points"][job["name"]] for job in jobs]
    _parallel(ex, tasks.spill_drive, jobs, "spill", pts, show)
    spills = [tasks.done_info(work, "spill", f"d{k}") for k in range(len(c.drives))]
    seconds["spill"] = time.perf_counter() - t0
    bases: dict = {}
    for k, info in enumerate(spills):
        for key, n in info["counts"].items():
            bases.setdefault(key, [0] * len(c.drives))[k] = n
    lo = np.min([s["min"][:2] for s in spills if s["points"]], axis=0) if any(s["points"] for s in spills) \
        else np.zeros(2)
    plan = {"tile_size": grid.size, "k": grid.k, "dtype": [list(f) for f in dtype.descr], "drives": len(c.drives),
            "origin": (np.floor(lo / 100.0) * 100.0).tolist(), "bases": dict(sorted(bases.items())),
            "points": int(sum(s["points"] for s in spills))}
    text = json.dumps(plan, sort_keys=True)
    if not (work / "plan.json").exists() or (work / "plan.json").read_text(encoding="utf-8") != text:
        write_text_atomic(work / "plan.json", text)
    st = SpillStore(work)
    tiles = st.tiles()
    names = [tile_name(t, grid.size) for t in tiles]
    per_tile: dict = {}
    for key, counts in st.bases.items():
        t = grid.tile_of(key)
        per_tile[t] = per_tile.get(t, 0) + sum(counts)
    tile_pts = [per_tile[t] for t in tiles]
    logger.info("%d tiles of %g m (base squares of %g m), %s points", len(tiles), grid.size, grid.base,
                f"{plan['points']:,}")
    attrs = [n for n, _ in inputs["attrs"]]
    common = {"work": str(work), "crs": crs_wkt, "attrs": attrs, "trajectories": _traj_spec(c)}

    def tile_jobs(stage, **extra):
        todo = [(t, n, p) for t, n, p in zip(tiles, names, tile_pts) if not tasks.is_done(work, stage, n)]
        return [dict(common, tile=list(t), name=n, **extra) for t, n, _ in todo], [p for _, _, p in todo]

    # 3a. classify
    t0 = time.perf_counter()
    jobs, pts = tile_jobs("classify", buffer=c.buffer, params=c.classify_params)
    _parallel(ex, tasks.classify_tile, jobs, "classify", pts, show)
    seconds["classify"] = time.perf_counter() - t0
    # the survey's intensity curve from every tile's histograms (fixed order: deterministic sums)
    from hdmap.classify import STAGES as CSTAGES, intensity_curve
    from hdmap.params import resolve_stages

    # (not needed, and its histograms may be gone, when every markings task is done)
    if not all(tasks.is_done(work, "paint", n) for n in names):
        hist: dict = {}
        for n in names:
            tasks.add_sparse_histograms(hist, work / "histograms" / f"{n}.npz")
        cpar = resolve_stages(CSTAGES, c.classify_params)
        write_bytes_atomic(work / "curve.pkl", pickle.dumps(intensity_curve(hist, cpar["intensity"]), protocol=5))
    # 3b. markings with the survey's curve, tile LAZ
    t0 = time.perf_counter()
    tiles_dir = out / "tiles"
    tiles_dir.mkdir(exist_ok=True)
    jobs, pts = tile_jobs("paint", buffer=c.buffer, params=c.classify_params, write_laz="laz" in c.formats,
                          tiles_dir=str(tiles_dir), point_format=inputs["point_format"], truth=_truth_classes(c))
    paint = _parallel(ex, tasks.paint_tile, jobs, "markings", pts, show)
    seconds["markings"] = time.perf_counter() - t0
    # 3c. local vectors
    t0 = time.perf_counter()
    jobs, pts = tile_jobs("vectorize", vector_buffer=c.vector_buffer, params=c.extract_params)
    _parallel(ex, tasks.vectorize_tile, jobs, "vectors", pts, show)
    seconds["vectors"] = time.perf_counter() - t0
    del paint
    # 4. stitch and lanes
    t0 = time.perf_counter()
    lanemap = _stitch(c, work, names, st)
    vdir = out / "vectors"
    vdir.mkdir(exist_ok=True)
    lanemap.to_geojson(vdir)
    lanemap.to_gpkg(vdir / "map.gpkg")
    seconds["stitch"] = time.perf_counter() - t0
    from hdmap.vectorize import map_summary

    say(f"{plan['points']:,} points in {len(tiles)} tiles -> {map_summary(lanemap)}")
    # 5./6. partition and deliveries
    from .deliver import write_deliveries

    # (the packages are written by the workers while this process measures the QA)
    t0 = time.perf_counter()
    tile_info = [{"key": n, "bounds": grid.bounds(t), "points": p} for t, n, p in zip(tiles, names, tile_pts)]
    parts, pending, munis = write_deliveries(c, out, lanemap, tile_info, submit=ex.submit)
    # 7. QA
    from .qa import write_qa

    stats = {n: tasks.done_info(work, "paint", n) for n in names}
    report, metrics = write_qa(c, out, lanemap, parts, munis, tile_info, stats, seconds, plan["points"])
    deliveries = {key: Path(f.result()) for key, f in pending.items()}
    seconds["deliveries_and_qa"] = time.perf_counter() - t0
    for key, path in deliveries.items():
        say(f"delivery {key}: {path}")
    say(f"QA report: {report}")
    return RunResult(out, lanemap, parts, deliveries, report, metrics, seconds, plan["points"], len(tiles))


def _stitch(c: Campaign, work: Path, names: list[str], st: SpillStore):
    from hdmap.params import resolve_stages
    from hdmap.trajectory import Trajectory
    from hdmap.vectorize import STAGES, assemble

    from .stitch import stitch

    results = [pickle.loads((work / "vectors" / f"{n}.pkl").read_bytes()) for n in names]
    joined = stitch(results, road_cell=tasks.ROAD_CELL)
    trajs = [Trajectory.read(d.trajectory, crs=d.crs, to_crs=c.crs) for d in c.drives if d.trajectory is not None]
    par = resolve_stages(STAGES, c.extract_params)
    epsg = c.crs.to_epsg() or 25832
    m = assemble(joined["lines"], joined["curbs"], joined["borders"], joined["markings"], joined["road_xy"], trajs,
                 st.origin, int(epsg), par, road_id=c.name)
    m.metadata = {"generator": "hdmap run", "campaign": c.name, "campaign_hash": c.hash,
                  "drives": [d.name for d in c.drives], "version": __version__}
    return m

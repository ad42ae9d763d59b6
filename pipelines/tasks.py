"""The units of work of a run, as module-level functions of plain arguments.

They run in this process, in local worker processes or on Dask workers, so
each takes a small JSON-able ``job`` dict (paths, keys, parameters), reads what
it needs from the run directory, writes its outputs atomically, and returns a
small summary. A stage's per-tile output is complete only when its done-marker
(``work/done/<stage>/<tile>``) exists; markers are written last.
"""

from __future__ import annotations

import functools
import io
import json
import pickle
import shutil
import time
from pathlib import Path

import numpy as np

from hdmap import classes as C
from hdmap._atomic import write_bytes_atomic, write_text_atomic
from hdmap.classify import classify, mark_paint
from hdmap.io import LasWriter, iter_chunks
from hdmap.pointcloud import PointCloud
from hdmap.tiles import TileSpill
from hdmap.trajectory import Trajectory

from .tiling import SpillStore, tile_name

__all__ = ["spill_drive", "classify_tile", "paint_tile", "vectorize_tile", "is_done", "mark_done"]

ROAD_CELL = 0.5
"""Cell (m) of the road raster the tiles hand to lane building."""


# ---------------------------------------------------------------------------
# done-markers
# ---------------------------------------------------------------------------
def _marker(work: Path, stage: str, name: str) -> Path:
    return Path(work) / "done" / stage / name


def is_done(work: Path, stage: str, name: str) -> bool:
    return _marker(work, stage, name).exists()


def mark_done(work: Path, stage: str, name: str, info: dict) -> None:
    path = _marker(work, stage, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(info, sort_keys=True) + "\n")


def done_info(work: Path, stage: str, name: str) -> dict:
    return json.loads(_marker(work, stage, name).read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------
# per-process caches (a worker runs many tiles)
# ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _store(work: str, stamp: float) -> SpillStore:
    return SpillStore(Path(work))


def store(work) -> SpillStore:
    plan = Path(work) / "plan.json"
    return _store(str(work), plan.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _trajectories(spec: str):
    out = []
    for item in json.loads(spec):
        if item["path"] is None:
            continue
        out.append(Trajectory.read(item["path"], crs=item["crs"], to_crs=item["to_crs"]))
    return out


def trajectories(job) -> list:
    return _trajectories(json.dumps(job["trajectories"], sort_keys=True))


def _npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def sparse_histograms(hist: dict) -> dict:
    """The non-zero bins of each group's (keys, bins) histogram as flat indices and counts.

    A dense histogram is ~10 MB per group whatever the tile holds; a tile fills a
    few thousand bins, so the sparse form keeps the work folder small.
    """
    out = {}
    for g in sorted(hist):
        h = np.asarray(hist[g])
        flat = h.ravel()
        idx = np.flatnonzero(flat)
        out[f"g{int(g)}_shape"] = np.asarray(h.shape, np.int64)
        out[f"g{int(g)}_index"] = idx.astype(np.int64)
        out[f"g{int(g)}_count"] = flat[idx].astype(np.int64)
    return out


def add_sparse_histograms(total: dict, path: Path) -> dict:
    """Add the histograms stored by :func:`sparse_histograms` at *path* to *total* (group -> dense array)."""
    with np.load(path) as z:
        for key in sorted(k for k in z.files if k.endswith("_shape")):
            g = int(key[1:-len("_shape")])
            shape = tuple(int(v) for v in z[key])
            if g not in total:
                total[g] = np.zeros(shape, np.int64)
            elif total[g].shape != shape:
                raise ValueError(f"{path}: histogram of group {g} has shape {shape}, expected {total[g].shape}")
            total[g].reshape(-1)[z[f"g{g}_index"]] += z[f"g{g}_count"]
    return total


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim`` (None elsewhere)."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _release_memory() -> None:
    """Return the free heap pages of a finished tile task to the OS. glibc keeps them for reuse, so a
    worker process stayed at the size of its largest tile context through the exports at the end of the
    run, where the whole run's memory peaks."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _xyz(rec: np.ndarray, idx: np.ndarray, origin=(0.0, 0.0)) -> np.ndarray:
    """``(len(idx), 3)`` coordinates of the records *idx*, less *origin* in x and y."""
    xyz = np.empty((len(idx), 3))
    for j, name in enumerate("xyz"):
        np.take(rec[name], idx, out=xyz[:, j])
    xyz[:, 0] -= origin[0]
    xyz[:, 1] -= origin[1]
    return xyz


def _unique_cells(xy: np.ndarray, cell: float) -> np.ndarray:
    """The distinct cells ``floor(xy / cell)`` holding points of *xy*, ``(k, 2)`` int64 in lexicographic
    order: ``np.unique(..., axis=0)`` of them, through one int64 key marked in a table over the points'
    extent (a tile's: small), or sorted where that is large (2 M points of a tile: 0.12 s; sorted 0.4 s;
    ``axis=0`` 1.3 s)."""
    ij = np.floor(xy / cell).astype(np.int64)
    if not len(ij):
        return ij.reshape(0, 2)
    lo = ij.min(axis=0)
    nx, ny = (ij.max(axis=0) - lo + 1).tolist()
    key = (ij[:, 0] - lo[0]) * ny + (ij[:, 1] - lo[1])
    if nx * ny <= 4 * len(key) + 1024:
        seen = np.zeros(nx * ny, np.bool_)
        seen[key] = True
        key = np.flatnonzero(seen)
    else:
        key = np.unique(key)
    return np.column_stack([key // ny + lo[0], key % ny + lo[1]])


def _cloud(rec: np.ndarray, idx: np.ndarray, attrs: list[str], crs) -> PointCloud:
    """The records *idx* as a cloud, gathered field by field (a gather of whole records first, then a copy
    of each field out of them, took five times as long)."""
    return PointCloud._unchecked(_xyz(rec, idx), {n: rec[n][idx] for n in attrs}, crs, None)


def _crs(job):
    import pyproj

    return pyproj.CRS.from_user_input(job["crs"])


def _tile_context(job: dict, radius: float):
    """What every tile task starts from: run dir, spill store, tile key and name, and the points of the
    tile and its surroundings (records, core mask, base-square spans, within-*radius* mask)."""
    work = Path(job["work"])
    st = store(work)
    tile = tuple(job["tile"])
    rec, core, spans, near = st.context(tile, radius)
    return work, st, tile, tile_name(tile, st.grid.size), rec, core, spans, near


def _write_codes(path: Path, st: SpillStore, tile, spans, codes: np.ndarray) -> None:
    """Per-point codes of the tile's own base squares, one array per square (what :meth:`SpillStore.codes` reads)."""
    own = {f"{k[0]}_{k[1]}": codes[a:b] for k, a, b in spans if st.grid.tile_of(k) == tile}
    write_bytes_atomic(path, _npz_bytes(own))


# ---------------------------------------------------------------------------
# stage 2: spill a drive into base squares
# ---------------------------------------------------------------------------
def spill_drive(job: dict) -> dict:
    """Read every LAZ file of one drive once, in chunks, into ``work/spill/d<k>/`` base squares."""
    work = Path(job["work"])
    d = int(job["drive"])
    out = work / "spill" / f"d{d}"
    if out.exists():  # an interrupted earlier attempt
        shutil.rmtree(out)
    out.mkdir(parents=True)
    dtype = np.dtype([tuple(f) for f in job["dtype"]][:-1])  # TileSpill adds "core"
    attrs = [n for n in dtype.names if n not in ("x", "y", "z", "drive", "index")]
    spill = TileSpill(out, job["base"], 0.0, dtype, buffer_bytes=job.get("buffer_bytes", 64 << 20))
    t0 = time.perf_counter()
    n = 0
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    for path in job["laz"]:
        for chunk in iter_chunks(path, job["chunk_size"], crs=job["src_crs"], to_crs=job["crs"]):
            rec = np.empty(len(chunk), spill.dtype)  # (spilled without another copy)
            rec["x"], rec["y"], rec["z"] = chunk.xyz[:, 0], chunk.xyz[:, 1], chunk.xyz[:, 2]
            rec["drive"] = d
            rec["index"] = np.arange(n, n + len(chunk))
            for name in attrs:
                rec[name] = chunk.attrs[name]
            spill.add(rec)
            lo = np.minimum(lo, chunk.xyz.min(axis=0))
            hi = np.maximum(hi, chunk.xyz.max(axis=0))
            n += len(chunk)
    spill.flush()
    counts = {f"{k[0]},{k[1]}": int(spill.count(k)) for k in sorted(spill.keys())}
    info = {"drive": d, "points": n, "counts": counts, "min": lo.tolist(), "max": hi.tolist(),
            "seconds": time.perf_counter() - t0}
    mark_done(work, "spill", f"d{d}", info)
    return info


# ---------------------------------------------------------------------------
# stage 3a: classify a tile with its buffer
# ---------------------------------------------------------------------------
def classify_tile(job: dict) -> dict:
    """Every classification stage but the markings (judged by :func:`paint_tile` with the survey's curve) on
    the tile and its buffer; the codes of the tile's own points, and its intensity histograms (summed over
    the run into the survey's intensity curve)."""
    t0 = time.perf_counter()
    work, st, tile, name, rec, core, spans, near = _tile_context(job, job["buffer"])
    sel = np.flatnonzero(near)
    attrs = job["attrs"]
    # paint is judged by paint_tile with the survey's curve: not here
    codes, info = classify(_cloud(rec, sel, attrs, _crs(job)), trajectories(job), job["params"], details=True,
                           log_degraded=False, own_points=core[sel], markings=False)
    full = np.zeros(len(rec), np.uint8)
    full[sel] = codes
    _write_codes(work / "classes" / f"{name}.npz", st, tile, spans, full)
    write_bytes_atomic(work / "histograms" / f"{name}.npz", _npz_bytes(sparse_histograms(info["histograms"])))
    summary = {"tile": name, "points": int(core.sum()), "context": int(len(sel)), "degraded": list(info["degraded"]),
               "seconds": time.perf_counter() - t0}
    mark_done(work, "classify", name, summary)
    _release_memory()
    return summary


# ---------------------------------------------------------------------------
# stage 3b: markings with the survey's intensity curve; the classified tile LAZ
# ---------------------------------------------------------------------------
def paint_tile(job: dict) -> dict:
    """Road markings judged with the survey's intensity curve; writes the tile's final codes and its LAZ."""
    t0 = time.perf_counter()
    work, st, tile, name, rec, core, spans, near = _tile_context(job, job["buffer"])
    known = st.codes(work / "classes", spans, len(rec))
    sel = np.flatnonzero(near)
    curve = pickle.loads((work / "curve.pkl").read_bytes())
    road = np.isin(known[sel], (C.Class.ROAD_SURFACE, C.Class.ROAD_MARKING))
    final = known.copy()
    if road.any():
        paint = mark_paint(_cloud(rec, sel, job["attrs"], _crs(job)), road, known[sel] == C.Class.CURB,
                           trajectories(job), job["params"], curve)
        final[sel[road]] = np.where(paint[road], C.Class.ROAD_MARKING, C.Class.ROAD_SURFACE)
    _write_codes(work / "final" / f"{name}.npz", st, tile, spans, final)
    idx = np.flatnonzero(core)  # the tile's own base squares, in load order
    if job["write_laz"]:
        out = Path(job["tiles_dir"]) / f"{name}.laz"
        cloud = _cloud(rec, idx, job["attrs"], _crs(job)).with_attrs(classification=final[idx])
        with LasWriter(out, crs=_crs(job), point_format=job["point_format"]) as w:
            w.write(cloud)
    counts = np.bincount(final[core], minlength=256)
    summary = {"tile": name, "points": int(core.sum()), "seconds": time.perf_counter() - t0,
               "classes": {str(c): int(counts[c]) for c in np.flatnonzero(counts)}}
    if job.get("truth"):
        summary["truth_counts"] = _truth_counts(rec["drive"][idx], rec["index"][idx], final[idx], job["truth"])
    mark_done(work, "paint", name, summary)
    _release_memory()
    return summary


def _truth_counts(drive: np.ndarray, index: np.ndarray, codes: np.ndarray, truth: list) -> dict:
    """Confusion counts ``{"true_predicted": n}`` of a tile's points (their *drive* and point *index* in
    it) against the simulator's per-drive truth classes (``truth[drive]``: a ``.npy`` in the drive's point
    order), read by point index."""
    from hdmap.evaluate import class_counts

    total = np.zeros((256, 256), np.int64)
    for d in np.unique(drive):
        sel = drive == d
        classes = np.load(truth[int(d)], mmap_mode="r")
        total += class_counts(np.asarray(classes[index[sel]]), codes[sel])
    t, p = np.nonzero(total)
    return {f"{a}_{b}": int(total[a, b]) for a, b in zip(t.tolist(), p.tolist())}


# ---------------------------------------------------------------------------
# stage 3c: local vectors of a tile
# ---------------------------------------------------------------------------
def vectorize_tile(job: dict) -> dict:
    """Boundaries and markings from the tile and its vector buffer, cut to the tile; its road cells."""
    from hdmap.params import resolve_stages
    from hdmap.vectorize import _NEEDED, STAGES, local_vectors

    from .stitch import clip_tile

    t0 = time.perf_counter()
    work, st, tile, name, rec, core, spans, near = _tile_context(job, job["vector_buffer"])
    cls = st.codes(work / "final", spans, len(rec))
    keep = np.flatnonzero(near & np.isin(cls, _NEEDED))
    core, cls = core[keep], cls[keep]
    loc = _xyz(rec, keep, st.origin)
    del rec
    road = np.isin(cls, (C.Class.ROAD_SURFACE, C.Class.ROAD_MARKING))
    par = resolve_stages(STAGES, job["params"])
    parts = local_vectors(loc, cls, par)
    x0, y0, x1, y1 = st.grid.bounds(tile)
    box = (x0 - st.origin[0], y0 - st.origin[1], x1 - st.origin[0], y1 - st.origin[1])
    result = clip_tile(parts, box)
    result["road_cells"] = _unique_cells(loc[core & road, :2], ROAD_CELL)
    result["tile"] = name
    write_bytes_atomic(work / "vectors" / f"{name}.pkl", pickle.dumps(result, protocol=5))
    summary = {"tile": name, "points": int(core.sum()), "seconds": time.perf_counter() - t0,
               "pieces": sum(len(result[k]) for k in ("lines", "curbs", "borders"))}
    mark_done(work, "vectorize", name, summary)
    _release_memory()
    return summary

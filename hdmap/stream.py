"""Classify LAS/LAZ files of any size with bounded memory.

:func:`classify_file` reads the input in chunks three times at most:

1. spill the fields classification needs (coordinates, intensity, GPS time,
   drive and scanner channel, the point's index) into small square base tiles
   on disk (:class:`hdmap.tiles.TileSpill`), counting the points per tile;
2. plan rectangular blocks of base tiles (:func:`plan_blocks`: edges up to
   ``tile``, the least work while no block with its halo holds more than
   ``max_tile_points``; dense multi-pass surveys get smaller blocks); classify
   block by block with the points of the surrounding ``halo`` metres (so grid
   stages see across block edges), the markings in a second pass with the
   survey's intensity curve, and keep the codes of the block's own points in a
   memory-mapped array;
3. stream the input again and write it out with the new classification: every
   input attribute and extra byte is kept, and nothing appears at the output
   path until the whole file is written.

Peak memory follows ``max_tile_points``, not the file.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .classes import Class
from .classify import STAGES, classify, intensity_curve, mark_paint
from .errors import ParameterError
from .params import resolve_stages
from .io import DEFAULT_CHUNK_SIZE, LasWriter, iter_chunks, read_header
from .pointcloud import PointCloud
from .tiles import TileSpill

__all__ = ["classify_file", "plan_blocks", "ClassifyResult", "DEFAULT_TILE", "DEFAULT_HALO", "DEFAULT_MAX_TILE_POINTS"]

logger = logging.getLogger(__name__)

DEFAULT_TILE = 100.0
"""Default tile edge (m) of :func:`classify_file`."""
DEFAULT_HALO = 8.0
"""Default halo (m): wider than the ground stage's opening window and the intensity background."""
DEFAULT_MAX_TILE_POINTS = 6_000_000
"""Default largest number of points (block plus halo) classified at once: about 2.5 GB."""
BASE_TILE = 5.0
"""Edge of the base tiles on disk (m); blocks are made of them."""

_FIELDS = [("x", "f8"), ("y", "f8"), ("z", "f8"), ("index", "i8")]
_OPTIONAL = {"intensity": "u2", "gps_time": "f8", "point_source_id": "u2", "scanner_channel": "u1"}


@dataclass
class ClassifyResult:
    """What :func:`classify_file` did."""

    path: Path | list  # the output, or the outputs of several inputs
    points: int
    tiles: int
    counts: dict = field(default_factory=dict)  # class code -> points
    max_tile_points: int = 0
    timing: dict = field(default_factory=dict)  # seconds: read_spill, classify (the stages alone), write


def plan_blocks(counts: dict, base: float, halo: float, max_edge: float, max_points: int) -> tuple[int, int, int]:
    """Block shape (in base tiles) for :func:`classify_file`, and the most points a block with its halo holds.

    *counts* maps base-tile keys ``(tx, ty)`` to their numbers of points. Blocks
    are rectangles of ``kx x ky`` base tiles, each edge up to *max_edge* metres.
    Every block is classified with the points of a halo ring around it, so the
    work is the sum of the blocks' points with their rings: of the shapes whose
    fullest block (ring included) stays within *max_points*, the one with the
    least work wins (then the one with fewer blocks, then the squarer one). A
    street survey is a band: blocks long along it and as wide as it, or square
    ones when it runs diagonally, whichever the counts say costs less. Returns
    ``(kx, ky, fullest)``; when no shape fits, the one with the smallest fullest block.
    """
    ring = int(np.ceil(halo / base))
    keys = np.array(list(counts.keys()), dtype=np.int64).reshape(-1, 2)
    vals = np.array(list(counts.values()), dtype=np.int64)
    top = max(int(max_edge // base), 1)
    # every edge up to 20 base tiles (100 m), then steps of a fifth: a large --tile stays quick to plan
    sizes = sorted({k for k in range(1, min(top, 20) + 1)} | {min(int(20 * 1.2 ** i), top) for i in range(64)})
    best = None
    for kx in sizes:
        for ky in sizes:
            total, fullest, blocks = _block_loads(keys, vals, kx, ky, ring)
            fits = fullest <= max_points
            rank = (not fits, total if fits else fullest, blocks, abs(kx - ky), kx)
            if best is None or rank < best[0]:
                best = (rank, kx, ky, fullest)
    return best[1], best[2], best[3]


def _block_loads(keys: np.ndarray, vals: np.ndarray, kx: int, ky: int, ring: int) -> tuple[int, int, int]:
    """Work (points summed over blocks, rings included), fullest block and number of blocks for kx x ky blocks."""
    if not len(keys):
        return 0, 0, 0
    own = np.unique((keys[:, 0] // kx) * (1 << 32) + (keys[:, 1] // ky))
    bk, loads = [], []
    # a tile at tx lies in block bx's extended range [bx kx - ring, (bx + 1) kx + ring) for consecutive bx
    # (i.e. ceil((tx - ring - kx + 1) / kx) <= bx <= floor((tx + ring) / kx))
    lo_x, hi_x = -((ring + kx - 1 - keys[:, 0]) // kx), (keys[:, 0] + ring) // kx
    lo_y, hi_y = -((ring + ky - 1 - keys[:, 1]) // ky), (keys[:, 1] + ring) // ky
    for ox in range(int((hi_x - lo_x).max()) + 1):
        for oy in range(int((hi_y - lo_y).max()) + 1):
            bx, by = lo_x + ox, lo_y + oy
            m = (bx <= hi_x) & (by <= hi_y)
            bk.append(bx[m] * (1 << 32) + by[m])
            loads.append(vals[m])
    bk = np.concatenate(bk)
    u, inv = np.unique(bk, return_inverse=True)
    load = np.bincount(inv, weights=np.concatenate(loads), minlength=len(u)).astype(np.int64)
    load = load[np.isin(u, own)]  # blocks that own no tile are not classified
    return int(load.sum()), int(load.max()), len(own)


def classify_file(src, dst, trajectory=None, params=None, *, tile: float = DEFAULT_TILE, halo: float = DEFAULT_HALO,
                  max_tile_points: int = DEFAULT_MAX_TILE_POINTS, chunk_size: int = DEFAULT_CHUNK_SIZE, crs=None,
                  workdir=None, progress=None) -> ClassifyResult:
    """Classify the points of *src* and write them to *dst*, streaming.

    Parameters
    ----------
    src, dst : path, or lists of paths of equal length
        Input and output LAS/LAZ. Several inputs (drives of one campaign) are
        classified together, so every place is judged with all drives that saw
        it; each goes to its own output. An output keeps every attribute of its
        input; the point format is raised to 6-10 when needed for classes
        above 31.
    trajectory : Trajectory or list of Trajectory, optional
        See :func:`hdmap.classify.classify`.
    params : dict, optional
        Stage parameters (:data:`hdmap.classify.STAGES`).
    tile, halo : float
        Largest block edge and the halo around each block (m).
    max_tile_points : int
        Blocks shrink (down to one 5 m base tile) until none holds more points
        with its halo: this bounds memory.
    chunk_size : int
        Points read at a time.
    crs : CRS-like, optional
        CRS of *src* when its header has none.
    workdir : path, optional
        Where the tile files go (default: beside *dst*); needs about 1.5 x
        60 bytes per point of free space while running.
    progress : callable, optional
        Called with a number of points as work advances (three passes).
    """
    srcs = [Path(p) for p in ([src] if isinstance(src, (str, Path)) else src)]
    dsts = [Path(p) for p in ([dst] if isinstance(dst, (str, Path)) else dst)]
    if len(srcs) != len(dsts) or not srcs:
        raise ParameterError(f"{len(srcs)} input(s) but {len(dsts)} output(s): give one output per input")
    for a in srcs:
        for b in dsts:
            if a.resolve() == b.resolve():
                raise ParameterError(f"{b}: the output would overwrite the input {a}; choose another output path")
    if not tile >= BASE_TILE:
        raise ParameterError(f"--tile ({tile} m) must be at least {BASE_TILE:g} m")
    if not 0 <= halo <= 100:
        raise ParameterError(f"--halo ({halo} m) must be between 0 and 100 m")
    if int(max_tile_points) < 1000:
        raise ParameterError(f"max_tile_points ({max_tile_points}) must be at least 1000")
    headers = [read_header(p) for p in srcs]
    counts_in = [int(h.point_count) for h in headers]
    n = sum(counts_in)
    common = set.intersection(*(set(h.point_format.dimension_names) for h in headers))
    dtype = np.dtype(_FIELDS + [(k, v) for k, v in _OPTIONAL.items() if k in common])
    extra = dtype.names[4:]
    base = Path(workdir) if workdir is not None else dsts[0].parent
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".hdmap-classify-", dir=base))
    tick = progress or (lambda k: None)
    timing = {"read_spill": 0.0, "classify": 0.0, "write": 0.0}
    t0 = time.perf_counter()
    try:
        spill = TileSpill(tmp, BASE_TILE, 0.0, dtype)
        offset = 0
        crs_seen = None
        for path in srcs:
            for chunk in iter_chunks(path, chunk_size, crs=crs):
                if crs_seen is not None and chunk.crs is not None and not chunk.crs.equals(crs_seen):
                    raise ParameterError(f"{path}: CRS differs from {srcs[0]}'s; reproject the drives to one CRS first")
                crs_seen = crs_seen or chunk.crs
                rec = np.empty(len(chunk), spill.dtype)  # (spilled without another copy)
                rec["x"], rec["y"], rec["z"] = chunk.xyz[:, 0], chunk.xyz[:, 1], chunk.xyz[:, 2]
                rec["index"] = np.arange(offset, offset + len(chunk))
                for name in extra:
                    rec[name] = chunk.attrs[name]
                spill.add(rec)
                offset += len(chunk)
                tick(len(chunk) // 3)
        spill.flush()
        timing["read_spill"] = time.perf_counter() - t0
        labels = np.lib.format.open_memmap(tmp / "classes.npy", mode="w+", dtype=np.uint8, shape=(n,))
        labels[:] = Class.UNCLASSIFIED
        counts_tiles = {key: spill.count(key) for key in spill.keys()}
        kx, ky, fullest = plan_blocks(counts_tiles, BASE_TILE, halo, tile, int(max_tile_points))
        ex, ey = kx * BASE_TILE, ky * BASE_TILE
        if fullest > max_tile_points:
            logger.warning("the fullest %g x %g m block holds %d points with its halo, more than max_tile_points=%d "
                           "(no block shape fits); memory will exceed the budget there", ex, ey, fullest,
                           max_tile_points)
        ring = int(np.ceil(halo / BASE_TILE))
        blocks = sorted({(tx // kx, ty // ky) for tx, ty in counts_tiles})
        logger.info("classifying %d points in %d block(s) of %g x %g m (halo %g m)", n, len(blocks), ex, ey, halo)
        biggest = 0
        degraded: dict = {}
        histograms: dict = {}

        buffers: dict = {}

        def reused(name, shape, dtype):
            """An array kept from block to block (fresh memory costs page faults every time)."""
            have = buffers.get(name)
            if have is None or len(have) < shape[0]:
                have = buffers[name] = np.empty((max(shape[0], int(fullest)),) + shape[1:], dtype)
            return have[:shape[0]]

        def load_block(bx, by):
            """The block's points (its own base tiles, whole) and those of the ring tiles within *halo*."""
            x0, y0 = bx * ex, by * ey
            pieces = []  # (tile, records of a ring tile within the halo, or None for an own tile)
            n = 0
            for tx in range(bx * kx - ring, bx * kx + kx + ring):
                for ty in range(by * ky - ring, by * ky + ky + ring):
                    if (tx, ty) not in counts_tiles:
                        continue
                    if tx // kx == bx and ty // ky == by:
                        pieces.append(((tx, ty), None))
                        n += counts_tiles[(tx, ty)]
                        continue
                    part = spill.load((tx, ty))
                    dx = np.maximum(np.maximum(x0 - part["x"], part["x"] - (x0 + ex)), 0.0)
                    dy = np.maximum(np.maximum(y0 - part["y"], part["y"] - (y0 + ey)), 0.0)
                    part = part[dx * dx + dy * dy <= halo * halo]
                    pieces.append(((tx, ty), part))
                    n += len(part)
            rec = reused("rec", (n,), spill.dtype)
            core = reused("core", (n,), np.bool_)
            a = 0
            for key, part in pieces:
                b = a + (counts_tiles[key] if part is None else len(part))
                if part is None:
                    spill.load_into(key, rec[a:b])
                else:
                    rec[a:b] = part
                core[a:b] = part is None
                a = b
            xyz = reused("xyz", (n, 3), np.float64)
            xyz[:, 0], xyz[:, 1], xyz[:, 2] = rec["x"], rec["y"], rec["z"]
            return rec, core, PointCloud._unchecked(xyz, {name: rec[name] for name in extra}, crs_seen, None)

        # pass 1: every stage per block; the blocks' intensity histograms add up to the survey's curve. With
        # several blocks and a trajectory, paint is judged in pass 2 only (pass 1's would be overwritten)
        later = len(blocks) > 1 and trajectory is not None and "intensity" in extra and "gps_time" in extra
        for i, (bx, by) in enumerate(blocks):
            rec, core, cloud = load_block(bx, by)
            biggest = max(biggest, len(rec))
            t1 = time.perf_counter()
            codes, info = classify(cloud, trajectory, params, details=True, log_degraded=False, own_points=core,
                                   markings=not later)
            timing["classify"] += time.perf_counter() - t1
            for d in info["degraded"]:
                degraded[d] = degraded.get(d, 0) + 1
            for g, hist in info["histograms"].items():  # (a copy: the block's arrays are not kept)
                histograms[g] = histograms[g] + hist if g in histograms else hist.copy()
            del info
            labels[rec["index"][core]] = codes[core]
            tick(int(core.sum()) // 6)
            logger.debug("block %d/%d (%d, %d): %d points (%d own)", i + 1, len(blocks), bx, by, len(rec),
                         int(core.sum()))
        # pass 2: markings again with the survey's intensity curve (a block alone can be too short: a solid
        # line at a constant offset from a straight drive would pass for asphalt)
        if later or (histograms and len(blocks) > 1):
            stage_params = resolve_stages(STAGES, params)
            curve = intensity_curve(histograms, stage_params["intensity"]) if histograms else None
            for bx, by in blocks:
                rec, core, cloud = load_block(bx, by)
                t1 = time.perf_counter()
                if curve is None:
                    # pass 1 left paint to this pass, but the trajectory gave no road point a range (its times
                    # miss the points'): each block is classified whole, as without a second pass
                    codes = classify(cloud, trajectory, params, log_degraded=False, own_points=core)
                    timing["classify"] += time.perf_counter() - t1  # (its degraded steps: counted in pass 1)
                    labels[rec["index"][core]] = codes[core]
                    tick(int(core.sum()) // 6)
                    continue
                known = np.asarray(labels[rec["index"]])
                road = np.isin(known, (Class.ROAD_SURFACE, Class.ROAD_MARKING))
                paint = mark_paint(cloud, road, known == Class.CURB, trajectory, stage_params, curve)
                timing["classify"] += time.perf_counter() - t1
                own = core & road
                labels[rec["index"][own]] = np.where(paint[own], Class.ROAD_MARKING, Class.ROAD_SURFACE)
                tick(int(core.sum()) // 6)
        else:
            tick(n // 6)
        keys = blocks
        buffers.clear()
        for d, count in degraded.items():
            logger.info("classification degraded in %d of %d block(s): %s", count, len(blocks), d)
        labels.flush()
        counts = np.bincount(labels, minlength=256)
        t2 = time.perf_counter()
        offset = 0
        for path, out, count in zip(srcs, dsts, counts_in):
            part = np.asarray(labels[offset:offset + count])
            top = int(part.max()) if count else None
            with LasWriter(out, max_class=top) as writer:
                for chunk in iter_chunks(path, chunk_size, crs=crs):
                    writer.write(chunk.with_attrs(classification=np.asarray(labels[offset:offset + len(chunk)])))
                    offset += len(chunk)
                    tick(len(chunk) - len(chunk) // 3 * 2)
        timing["write"] = time.perf_counter() - t2
        return ClassifyResult(dsts[0] if len(dsts) == 1 else dsts, n, len(keys),
                              {int(c): int(counts[c]) for c in np.flatnonzero(counts)}, biggest, timing)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

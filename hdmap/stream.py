"""Classify LAS/LAZ files of any size with bounded memory.

:func:`classify_file` reads the input in chunks three times at most:

1. spill the fields classification needs (coordinates, intensity, GPS time,
   drive and scanner channel, the point's index) into square tiles on disk,
   each with a halo of its neighbours' points (:class:`hdmap.tiles.TileSpill`);
2. classify tile by tile (halo included, so grid stages see across tile edges)
   and keep the codes of the tile's own points in a memory-mapped array;
3. stream the input again and write it out with the new classification: every
   input attribute and extra byte is kept, and nothing appears at the output
   path until the whole file is written.

Peak memory follows the tile size (``tile`` m square plus halo), not the file.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .classes import Class
from .classify import classify
from .errors import ParameterError
from .io import DEFAULT_CHUNK_SIZE, LasWriter, iter_chunks, read_header
from .pointcloud import PointCloud
from .tiles import TileSpill

__all__ = ["classify_file", "ClassifyResult", "DEFAULT_TILE", "DEFAULT_HALO"]

logger = logging.getLogger(__name__)

DEFAULT_TILE = 100.0
"""Default tile edge (m) of :func:`classify_file`."""
DEFAULT_HALO = 12.0
"""Default halo (m): wider than the ground stage's opening window and fill distance."""

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


def classify_file(src, dst, trajectory=None, params=None, *, tile: float = DEFAULT_TILE, halo: float = DEFAULT_HALO,
                  chunk_size: int = DEFAULT_CHUNK_SIZE, crs=None, workdir=None, progress=None) -> ClassifyResult:
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
        Tile edge and halo (m). Memory grows with the points in one tile.
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
    if not tile > 2 * halo:
        raise ParameterError(f"--tile ({tile} m) must be more than twice the halo ({halo} m)")
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
    try:
        spill = TileSpill(tmp, tile, halo, dtype)
        offset = 0
        crs_seen = None
        for path in srcs:
            for chunk in iter_chunks(path, chunk_size, crs=crs):
                if crs_seen is not None and chunk.crs is not None and not chunk.crs.equals(crs_seen):
                    raise ParameterError(f"{path}: CRS differs from {srcs[0]}'s; reproject the drives to one CRS first")
                crs_seen = crs_seen or chunk.crs
                rec = np.empty(len(chunk), dtype)
                rec["x"], rec["y"], rec["z"] = chunk.xyz[:, 0], chunk.xyz[:, 1], chunk.xyz[:, 2]
                rec["index"] = np.arange(offset, offset + len(chunk))
                for name in extra:
                    rec[name] = chunk.attrs[name]
                spill.add(rec)
                offset += len(chunk)
                tick(len(chunk) // 3)
        spill.flush()
        labels = np.lib.format.open_memmap(tmp / "classes.npy", mode="w+", dtype=np.uint8, shape=(n,))
        labels[:] = Class.UNCLASSIFIED
        keys = spill.keys()
        biggest = 0
        for i, key in enumerate(keys):
            rec = spill.load(key)
            biggest = max(biggest, len(rec))
            xyz = np.column_stack([rec["x"], rec["y"], rec["z"]])
            cloud = PointCloud._unchecked(xyz, {name: rec[name] for name in extra}, crs_seen, None)
            codes = classify(cloud, trajectory, params)
            core = rec["core"]
            labels[rec["index"][core]] = codes[core]
            spill.remove(key)
            tick(int(core.sum()) // 3)
            logger.debug("tile %d/%d %s: %d points (%d own)", i + 1, len(keys), key, len(rec), int(core.sum()))
        labels.flush()
        counts = np.bincount(labels, minlength=256)
        offset = 0
        for path, out, count in zip(srcs, dsts, counts_in):
            part = np.asarray(labels[offset:offset + count])
            top = int(part.max()) if count else None
            with LasWriter(out, max_class=top) as writer:
                for chunk in iter_chunks(path, chunk_size, crs=crs):
                    writer.write(chunk.with_attrs(classification=np.asarray(labels[offset:offset + len(chunk)])))
                    offset += len(chunk)
                    tick(len(chunk) - len(chunk) // 3 * 2)
        return ClassifyResult(dsts[0] if len(dsts) == 1 else dsts, n, len(keys),
                              {int(c): int(counts[c]) for c in np.flatnonzero(counts)}, biggest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

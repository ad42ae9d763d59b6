"""Summaries of point-cloud files (what ``hdmap info`` prints)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .crs import crs_label, epsg_code
from .io import DEFAULT_CHUNK_SIZE, file_crs, iter_chunks, read_header

__all__ = ["FileSummary", "summarize"]


@dataclass
class FileSummary:
    """Facts about one LAS/LAZ file.

    ``density_per_m2`` is the point count divided by the occupied area: the
    number of ``cell_m`` x ``cell_m`` cells holding at least one point, times
    the cell area. Bounds are computed from the points, not copied from the
    header.
    """

    path: str
    points: int
    point_format: int
    las_version: str
    compressed: bool
    crs: str
    epsg: int | None
    bounds: dict | None
    time_span: list | None
    occupied_area_m2: float
    density_per_m2: float | None
    cell_m: float
    extra_dims: list
    file_size_bytes: int

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(path, *, cell: float = 1.0, chunk_size: int = DEFAULT_CHUNK_SIZE, progress=None) -> FileSummary:
    """Read *path* once, chunk by chunk, and summarise it.

    Parameters
    ----------
    cell : float
        Cell size (m) of the occupancy grid behind the density.
    progress : callable, optional
        Called with the number of points of each chunk read.
    """
    if not cell > 0:
        raise ValueError(f"cell must be a positive size in metres, got {cell}")
    path = Path(path)
    header = read_header(path)
    crs = file_crs(header, path)
    n = int(header.point_count)
    mins = np.full(3, np.inf)
    maxs = np.full(3, -np.inf)
    tmin, tmax = np.inf, -np.inf
    cells = np.empty(0, dtype=np.int64)
    has_time = "gps_time" in header.point_format.dimension_names
    origin = None
    if n:
        for chunk in iter_chunks(path, chunk_size, require_crs=False):
            xyz = chunk.xyz
            mins = np.minimum(mins, xyz.min(axis=0))
            maxs = np.maximum(maxs, xyz.max(axis=0))
            if has_time:
                t = chunk.attrs["gps_time"]
                tmin, tmax = min(tmin, float(t.min())), max(tmax, float(t.max()))
            if origin is None:
                origin = np.floor(xyz[0, :2] / cell) * cell
            ij = np.floor((xyz[:, :2] - origin) / cell).astype(np.int64)
            key = (ij[:, 0] + (1 << 31)) << 32 | (ij[:, 1] + (1 << 31))
            cells = np.union1d(cells, np.unique(key))
            if progress is not None:
                progress(len(chunk))
    area = float(len(cells)) * cell * cell
    return FileSummary(
        path=str(path),
        points=n,
        point_format=header.point_format.id,
        las_version=str(header.version),
        compressed=bool(header.are_points_compressed),
        crs=crs_label(crs),
        epsg=epsg_code(crs),
        bounds=None if not n else {"min": mins.tolist(), "max": maxs.tolist()},
        time_span=[tmin, tmax] if (n and has_time) else None,
        occupied_area_m2=area,
        density_per_m2=(n / area) if area else None,
        cell_m=cell,
        extra_dims=list(header.point_format.extra_dimension_names),
        file_size_bytes=os.path.getsize(path),
    )


def format_summary(s: FileSummary) -> str:
    """The text block ``hdmap info`` prints for one file."""
    lines = [s.path]
    add = lambda k, v: lines.append(f"  {k:<14}{v}")  # noqa: E731
    add("points", f"{s.points:,}")
    add("point format", f"{s.point_format} (LAS {s.las_version}{', LAZ' if s.compressed else ''})")
    add("CRS", s.crs)
    if s.bounds:
        lo, hi = s.bounds["min"], s.bounds["max"]
        for k, axis in enumerate("xyz"):
            add(f"bounds {axis}", f"{lo[k]:.3f} .. {hi[k]:.3f}  ({hi[k] - lo[k]:.3f} m)")
    if s.time_span:
        t0, t1 = s.time_span
        add("time span", f"{t0:.6f} .. {t1:.6f}  ({t1 - t0:.3f} s)")
    else:
        add("time span", "no GPS time in this point format")
    if s.density_per_m2 is not None:
        add("density", f"{s.density_per_m2:,.1f} pts/m² over {s.occupied_area_m2:,.0f} m² occupied ({s.cell_m:g} m cells)")
    if s.extra_dims:
        add("extra dims", ", ".join(s.extra_dims))
    add("file size", f"{s.file_size_bytes / 1e6:,.1f} MB")
    return "\n".join(lines)

"""Point classification of street scans: noise, ground, curbs, road surface, road markings.

The stages work on grids, not on point neighbourhoods, so the cost per point is
a few array passes:

1. **Ground** (:func:`ground_model`): lowest point per 0.25 m cell (a lone low
   outlier replaced by the next lowest, cells far below their neighbours by the
   neighbours' median), a morphological opening of that surface (window larger
   than cars, so objects vanish and curbs stay), cells close to the opening are
   ground candidates, grown from seeds under the trajectory with bounded steps.
   Every point gets its height above that ground (``dz``).
2. **Noise** (:func:`detect_noise`): points far below the ground (low noise, 7)
   and isolated points (few others in the surrounding 1.5 m voxel block): low
   noise up to :data:`~hdmap.classes.HIGH_NOISE_MIN_HEIGHT` above the ground,
   high noise (18) above.
3. **Curbs** (:func:`detect_curbs`): on a 0.1 m grid of the lowest ground
   point, a step of 0.05-0.30 m between two flat levels over at most 0.1 m, in
   any of eight directions; points between the two levels within a cell of a
   face cell (the face) and on the upper level within the curb-stone width of
   the face are curb (67).
4. **Road surface** (:func:`detect_road`): ground that is smooth and connected
   to the trajectory footprint without crossing a curb or a step (11); other
   ground stays 2.
5. **Intensity** (:func:`normalize_intensity`): with a trajectory, intensity of
   road points divided by the median road intensity at the same range, per
   drive and scanner channel (an empirical curve: no range law is assumed);
   then the local background (a low percentile of the surrounding 2 m).
6. **Markings** (:func:`detect_markings`): road points clearly brighter than
   their background, then shape checks on the painted raster (specks, round
   blobs like manhole covers and hairlines like tar snakes are removed).

Without a trajectory everything still runs: seeds come from the data and the
intensity is compared with a smaller background window only; the log says so.
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from dataclasses import dataclass

import numpy as np

from . import _specks
from .classes import HIGH_NOISE_MIN_HEIGHT, Class
from .kernels import grid as G
from .kernels import track
from .params import Param, ParamSet, resolve_stages
from .pointcloud import PointCloud

__all__ = [
    "STAGES", "classify", "ground_model", "detect_noise", "detect_curbs", "detect_road", "normalize_intensity",
    "detect_markings", "GroundModel", "trajectory_positions", "intensity_histograms", "intensity_curve", "mark_paint",
]

logger = logging.getLogger(__name__)

STAGES = {
    "ground": ParamSet("ground", [
        Param("cell", 0.25, "cell size of the ground grid (m)", 0.05, 2.0),
        Param("opening", 6.0, "window of the morphological opening (m): larger than cars, smaller than terraces", 1.0, 50.0),
        Param("candidate_height", 0.30, "cells within this height of the opened surface are ground candidates (m)", 0.02, 2.0),
        Param("max_step", 0.35, "largest height step between neighbouring ground cells (m); curbs are crossed", 0.05, 2.0),
        Param("tolerance", 0.15, "points up to this height above the ground surface are ground (m)", 0.01, 1.0),
        Param("outlier", 0.20, "a cell's lowest point this far below the next lowest or the neighbours is an outlier (m)", 0.02, 2.0),
        Param("min_area", 10.0, "without a trajectory: ground patches smaller than this are not ground (m^2)", 0.0, 1e6),
        Param("fill_distance", 10.0, "the ground surface is extended this far beyond seen ground (m)", 0.0, 1000.0),
        Param("fine_cell", 0.10, "cell of the fine ground levels (sidewalks and curb tops inside coarse cells) (m)", 0.02, 1.0),
        Param("fine_flat", 0.03, "a fine level counts where 5 of its 8 neighbours are within this height (m)", 0.005, 0.5),
    ]),
    "noise": ParamSet("noise", [
        Param("below", 0.25, "points this far below the ground are low noise (m)", 0.02, 5.0),
        Param("below_reach", 1.0, "... where ground was seen within this distance (elsewhere the ground is extrapolated: "
              "light wells, ramps, lower yards) (m)", 0.0, 100.0),
        Param("voxel", 0.5, "voxel size of the isolation test (m)", 0.05, 5.0),
        Param("max_neighbours", 2, "a point with at most this many points in its 3x3x3 voxel block (itself included) is isolated", 1, 100),
        Param("min_height", 0.25, "only points this far above the ground are tested for isolation (m)", 0.0, 10.0),
        Param("high_height", HIGH_NOISE_MIN_HEIGHT, "isolated points higher than this above the ground are high noise (m)", 0.5, 100.0),
        Param("gap", 0.20, "a point whose nearest neighbour (same scanner channel) is farther than this ... (m)", 0.02, 5.0),
        Param("gap_ratio", 10.0, "... and than this many times that neighbour's own spacing is noise (a return in the air "
              "above the road or behind a facade); 0 switches the test off", 0.0, 1000.0),
        Param("gap_radius", 1.0, "the gap test looks for neighbours this far (m)", 0.05, 10.0),
    ]),
    "curbs": ParamSet("curbs", [
        Param("cell", 0.10, "cell size of the curb grid (m)", 0.02, 0.5),
        Param("min_height", 0.05, "smallest curb height (m)", 0.01, 0.5),
        Param("max_height", 0.32, "largest curb height (m)", 0.05, 1.0),
        Param("flat", 0.035, "height spread allowed on each side of a step (m)", 0.005, 0.2),
        Param("run", 4, "cells of flat ground needed on each side of a step", 2, 20),
        Param("smooth", 0.04, "a cell whose two lowest points differ by more is rough (grass), not a curb side (m)", 0.0, 1.0),
        Param("foot", 0.015, "points this far above the road level at a face belong to the face (m) ...", 0.0, 0.2),
        Param("foot_share", 0.15, "... or this share of the curb height, whichever is more (also below the top)", 0.0, 0.5),
        Param("width", 0.15, "width of the curb stone's top counted as curb (m)", 0.0, 0.6),
        Param("min_length", 1.0, "shorter runs of curb face are dropped (m)", 0.0, 20.0),
        Param("bridge", 7.0, "gaps up to this long between aligned curb runs (parked cars, poles, lowered curbs at "
              "crossings and driveways) still bar the road (m); side streets leave wider gaps", 0.0, 30.0),
        Param("bridge_angle", 20.0, "... if both runs and the gap between them agree in direction within this (deg)",
              0.0, 90.0),
    ]),
    "road": ParamSet("road", [
        Param("max_step", 0.04, "largest height step between neighbouring road cells (m)", 0.005, 0.5),
        Param("roughness", 0.05, "largest height spread of one drive's ground points in a road cell (m)", 0.005, 0.5),
        Param("tolerance", 0.06, "points up to this height above the road level of their cell are road (m)", 0.01, 0.5),
        Param("seed_radius", 1.2, "ground within this distance of the trajectory seeds the road (m): the vehicle's own lane", 0.5, 20.0),
        Param("seed_height", 0.06, "... if within this height of the level the vehicle stands on (m)", 0.005, 1.0),
        Param("context_margin", 3.0, "a block classified with context around it (a tile and its buffer): the road "
              "does not grow through the context's outer margin, where a curb can be cut off (m)", 0.0, 50.0),
        Param("max_gap", 0.5, "the road grows across cells without any point up to this far (m), at the level of "
              "the cell before them: far from the scanner its lines lie further apart than a cell", 0.0, 5.0),
    ]),
    "intensity": ParamSet("intensity", [
        Param("range_bin", 0.25, "range bin of the empirical intensity curve (m)", 0.05, 5.0),
        Param("range_smooth", 1.0, "the curve is a running median over this many metres of range on each side", 0.0, 10.0),
        Param("range_max", 120.0, "ranges beyond this share the last bin (m)", 5.0, 1000.0),
        Param("sectors", 12, "direction sectors around the vehicle in the empirical curve", 1, 72),
        Param("min_samples", 30, "road points needed in a (range, sector) bin; fewer: range-only curve", 1, 10000),
        Param("background_cell", 0.25, "cell size of the background grid (m)", 0.05, 2.0),
        Param("background_window", 2.25, "window of the local background (m)", 0.25, 20.0),
        Param("background_window_no_trajectory", 1.25, "background window when no trajectory gives ranges (m)", 0.25, 20.0),
        Param("background_percentile", 30.0, "percentile of the window taken as background (paint covers less)", 1.0, 90.0),
    ]),
    "markings": ParamSet("markings", [
        Param("ratio", 1.8, "intensity / background above which a road point is paint", 1.05, 20.0),
        Param("level_ratio", 1.6, "... and brighter than this times the survey's asphalt at its range", 1.0, 20.0),
        Param("sigmas", 3.0, "... and at least this many noise levels (relative spread at its range) above 1", 0.0, 50.0),
        Param("pool", 4, "three or more bright returns within a raster cell of each other pool their evidence "
                         "against the noise level, counting at most this many (1: each return alone)", 1, 100),
        Param("cell", 0.05, "raster cell for linking paint points into patches (m)", 0.01, 0.5),
        Param("link", 0.10, "paint points closer than this belong to one patch (m)", 0.0, 1.0),
        Param("min_points", 4, "patches with fewer points are speckle", 1, 1000),
        Param("min_area", 0.015, "patches smaller than this (length x width) are speckle (m^2)", 0.0, 5.0),
        Param("min_width", 0.07, "painted patches thinner than this are hairlines, e.g. tar snakes (m)", 0.0, 1.0),
        Param("blob_length", 0.9, "patches shorter than this ...", 0.0, 5.0),
        Param("blob_width", 0.40, "... and wider than this are round blobs, e.g. manhole covers", 0.0, 5.0),
        Param("sparse_density", 300.0, "where the road is sampled at fewer points per m^2 than this, patches too small "
              "to judge alone (specks) are paint when they lie in a row (a line far from the scanner, crossed by "
              "two or three returns per scan line); 0: never", 0.0, 1e6),
        Param("speck_gap", _specks.GAP, "specks up to this far apart along a row belong to it (m)", 0.1, 10.0),
        Param("speck_count", _specks.COUNT, "fewest specks in a row", 2, 1000),
        Param("speck_tolerance", _specks.TOLERANCE, "largest distance of a speck's centre from its row's line (m)",
              0.005, 1.0),
    ]),
}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
@dataclass
class _Frame:
    """A grid over the points' xy extent."""

    x0: float
    y0: float
    cell: float
    nx: int
    ny: int

    @classmethod
    def around(cls, xy: np.ndarray, cell: float, pad: int = 2) -> "_Frame":
        b = G.xy_bounds(xy[:, 0], xy[:, 1])
        lo = np.floor(np.array(b[:2]) / cell) * cell - pad * cell
        hi = np.array(b[2:]) + pad * cell
        nx = int(np.ceil((hi[0] - lo[0]) / cell)) + 1
        ny = int(np.ceil((hi[1] - lo[1]) / cell)) + 1
        return cls(float(lo[0]), float(lo[1]), cell, nx, ny)

    def index(self, xy, where=None):
        """Flat cell index of points xy (-1 outside the grid, and where *where* is False)."""
        return G.cell_index(xy[:, 0], xy[:, 1], self.x0, self.y0, self.cell, self.nx, self.ny, where)

    def cells_of(self, xy):
        """(ix, iy) integer cell coordinates (clipped) of points xy."""
        return G.cell_coords(xy[:, 0], xy[:, 1], self.x0, self.y0, self.cell, self.nx, self.ny)

    def flat_of(self, xy):
        """``ix * ny + iy`` of :meth:`cells_of`: gather rasters with ``raster.ravel()[flat]``."""
        return G.cell_flat(xy[:, 0], xy[:, 1], self.x0, self.y0, self.cell, self.nx, self.ny)


@dataclass
class GroundModel:
    """The ground surface as a raster (NaN farther than ``fill_distance`` from seen ground), and each
    point's height above it."""

    frame: _Frame
    height: np.ndarray  # (nx, ny) ground height, filled where the ground was not seen
    ground_cell: np.ndarray  # (nx, ny) bool: the cell's lowest point is ground
    dz: np.ndarray  # per point: height above the ground surface (NaN far from any ground)
    idx: np.ndarray  # per point: flat cell index
    seeds: np.ndarray  # (nx, ny) bool: cells under the trajectory footprint (or data seeds)
    vehicle_height: float | None  # trajectory reference point above the ground, when known

    def height_at(self, xy: np.ndarray) -> np.ndarray:
        ix, iy = self.frame.cells_of(xy)
        return self.height[ix, iy]


LEVEL_BLOCK = 4.0
"""Side (m) of the squares, aligned to the coordinate grid, over which drive height offsets are estimated."""
LEVEL_REACH = 2
"""Each square's offsets come from the cells of the (2 * LEVEL_REACH + 1)^2 squares around it (20 m)."""
LEVEL_MIN_CELLS = 50
"""Fewest cells two drives must share around a square to estimate their offset there."""


def _level_drives(xyz: np.ndarray, source: np.ndarray, cell: float) -> np.ndarray:
    """Copy of *xyz* with each drive's heights shifted onto a reference drive, locally.

    Drives of a survey differ by their georeferencing error (a few cm, which
    drifts along a drive); where they overlap, the lowest point per cell of
    each drive gives its vertical offset. The offset of a point is the median
    (to the millimetre, then the mean within that millimetre) over the shared
    cells of the squares (``LEVEL_BLOCK``, aligned to the
    coordinate grid) around its own square, 20 m across; the reference is the
    first drive (lowest id) with ``LEVEL_MIN_CELLS`` cells there. So the shift
    of a point depends on the points within about 12 m of it only: a block of a
    survey classified with a halo of at least that much gets the same heights
    whatever its size (tile-size invariance), and a slowly drifting error is
    followed. Only the classification uses the shifted heights; the output
    coordinates are never changed.
    """
    ids, inv = _small_unique(source, inverse=True)
    nd = len(ids)
    frame = _Frame.around(xyz[:, :2], cell)
    cidx = frame.index(xyz)
    key = np.where(cidx >= 0, cidx * nd + inv, -1)
    start, order = G.bin_points(key, frame.nx * frame.ny * nd)
    lo1, _lo2, _hi, cnt = G.cell_stats(xyz[:, 2], start, order)
    low = np.where(cnt >= 3, lo1, np.nan).reshape(frame.nx * frame.ny, nd)
    seen_cells = np.flatnonzero(np.isfinite(low).any(axis=1))
    if not len(seen_cells):
        return xyz
    low = low[seen_cells]
    # the square (absolute grid) of every occupied cell (a cell lies in one square: both grids are aligned to
    # the coordinates' zero); only occupied squares are kept (a long diagonal drive's bounding box would
    # hold millions of empty ones)
    occupied = np.flatnonzero(cnt.reshape(frame.nx * frame.ny, nd).any(axis=1))
    ci, cj = occupied // frame.ny, occupied % frame.ny
    bx = np.floor((frame.x0 + (ci + 0.5) * cell) / LEVEL_BLOCK).astype(np.int64)
    by = np.floor((frame.y0 + (cj + 0.5) * cell) / LEVEL_BLOCK).astype(np.int64)
    bx0, by0 = bx.min() - LEVEL_REACH, by.min() - LEVEL_REACH
    nby = int(by.max() - by0 + LEVEL_REACH + 1)
    okey = (bx - bx0) * nby + (by - by0)
    squares, osq = np.unique(okey, return_inverse=True)
    ns = len(squares)
    sq = osq.ravel()[np.searchsorted(occupied, seen_cells)]  # seen cells are occupied
    cell_sq = np.zeros(frame.nx * frame.ny, np.int64)
    cell_sq[occupied] = osq.ravel()
    # each square's neighbours within LEVEL_REACH (-1 where not occupied)
    offs = [dx * nby + dy for dx in range(-LEVEL_REACH, LEVEL_REACH + 1) for dy in range(-LEVEL_REACH, LEVEL_REACH + 1)]
    nbrs = []
    for o in offs:
        j = np.minimum(np.searchsorted(squares, squares + o), ns - 1)
        nbrs.append(np.where(squares[j] == squares + o, j, -1))

    def window(a):  # sum over the squares around each (exact: integers)
        out = np.zeros_like(a)
        for j in nbrs:
            ok = j >= 0
            out[ok] += a[j[ok]]
        return out

    seen = window(np.stack([np.bincount(sq, np.isfinite(low[:, k]), ns).astype(np.int64) for k in range(nd)],
                           axis=-1))
    enough = seen >= LEVEL_MIN_CELLS
    ref = np.where(enough.any(axis=-1), np.argmax(enough, axis=-1), -1)
    # per square and drive pair, a histogram of the cells' height differences (1 mm bins): windowed sums
    # of histograms give the median over the squares around each square without sorting
    shift = np.zeros((ns, nd))
    nbin = 2 * _LEVEL_BINS
    for k in range(1, nd):
        for r in range(k):
            use = ref == r
            if not use.any():
                continue
            d = low[:, k] - low[:, r]
            ok = np.isfinite(d) & (np.abs(d) < _LEVEL_BINS * 1e-3)
            b = np.floor(d[ok] * 1e3).astype(np.int64) + _LEVEL_BINS
            flat = sq[ok] * nbin + b
            hist = window(np.bincount(flat, minlength=ns * nbin).reshape(ns, nbin))
            med = _hist_median(hist, np.ones(nbin, bool)[None, :])
            near = np.abs(np.arange(nbin)[None, :] - med[:, None]) < 100  # within 0.1 m of it
            med2 = _hist_median(hist, near)
            n2 = np.where(near, hist, 0).sum(axis=-1)
            good = use & (n2 >= LEVEL_MIN_CELLS) & (med2 >= 0)
            # the offset: the mean of the differences in the median's bin (finer than the bins); summed as
            # integer micrometres, exactly, so a square's offset does not depend on what else is loaded
            um = np.bincount(flat, np.round(d[ok] * 1e6), ns * nbin)  # whole numbers far below 2**53: exact
            sums = window(um.astype(np.int64).reshape(ns, nbin))
            m2 = np.maximum(med2, 0)[:, None]
            inbin = (np.take_along_axis(sums, m2, -1)[:, 0] * 1e-6
                     / np.maximum(np.take_along_axis(hist, m2, -1)[:, 0], 1))
            shift[:, k] = np.where(good, inbin, shift[:, k])
    if not np.any(shift):
        return xyz
    out = xyz.copy()
    out[:, 2] -= shift.ravel()[cell_sq[np.maximum(cidx, 0)] * nd + inv]  # shift[square, drive]
    return out


_LEVEL_BINS = 300
"""Height differences between drives are binned by millimetre within +-0.3 m (larger ones are not offsets)."""


def _hist_median(hist: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Bin of the median of each histogram (last axis) restricted to *mask*; -1 where it is empty
    (the lower median: the first bin where the running count reaches half)."""
    h = np.where(mask, hist, 0)
    cum = h.cumsum(axis=-1)
    total = cum[..., -1]
    med = np.argmax(cum >= ((total + 1) // 2)[..., None], axis=-1)
    return np.where(total > 0, med, -1)


def trajectory_positions(cloud: PointCloud, trajectories):
    """Vehicle position (n, 3) and heading (n,) at each point's GPS time, NaN where no trajectory covers it.

    Returns ``(positions, headings)`` or ``(None, None)``.

    *trajectories* is a Trajectory or a list of them (several drives: each point
    finds the one whose time span holds its GPS time).
    """
    if trajectories is None:
        return None, None
    if not isinstance(trajectories, (list, tuple)):
        trajectories = [trajectories]
    if "gps_time" not in cloud.attrs:
        logger.warning("the points have no GPS time: the trajectory cannot be used")
        return None, None
    t = cloud.attrs["gps_time"]
    pos = np.full((len(cloud), 3), np.nan)
    head = np.full(len(cloud), np.nan)
    for traj in trajectories:
        if traj.crs is not None and cloud.crs is not None and not traj.crs.equals(cloud.crs):
            traj = traj.to_crs(cloud.crs)
        # (Trajectory.interpolate's arithmetic in one parallel pass, without roll and pitch)
        track.position_heading(traj.time, traj.xyz, traj.heading, t, pos, head)
    if np.isnan(pos[:, 0]).all():
        logger.warning("no point time lies inside the trajectory: classifying without it")
        return None, None
    return pos, head


# --------------------------------------------------------------------------
# 1. ground
# --------------------------------------------------------------------------
def ground_model(xyz: np.ndarray, seeds_xyz: np.ndarray | None = None, params: dict | None = None) -> GroundModel:
    """Ground surface of a street scan.

    Parameters
    ----------
    xyz : (n, 3) float64
    seeds_xyz : (m, 3) float64, optional
        Vehicle positions (trajectory samples or per-point positions); ground
        near them seeds the region growing. Without seeds every candidate cell
        is a seed.
    params : dict, optional
        ``ground`` parameters (see :data:`STAGES`).
    """
    p = STAGES["ground"].resolve(params)
    xyz = np.ascontiguousarray(xyz, dtype=np.float64)
    frame = _Frame.around(xyz[:, :2], p["cell"])
    idx = frame.index(xyz)
    start, order = G.bin_points(idx, frame.nx * frame.ny)
    lo1, lo2, hi, cnt = G.cell_stats(xyz[:, 2], start, order)
    shape = (frame.nx, frame.ny)
    z = lo1.copy()
    lone = (lo2 - lo1 > p["outlier"]) & (cnt >= 3)
    z[lone] = lo2[lone]
    z = z.reshape(shape)
    med = G.median3(z)
    low = z < med - p["outlier"]
    z = np.where(low, med, z)
    r = max(int(round(p["opening"] / 2 / frame.cell)), 1)
    opened = G.max_filter(G.min_filter(z, r), r)
    candidate = (z - opened) < p["candidate_height"]
    candidate &= np.isfinite(z)
    vehicle_height = None
    if seeds_xyz is not None and len(seeds_xyz):
        seeds, vehicle_height = _seed_cells(frame, z, candidate, seeds_xyz, 3.0, 0.2)
        if not seeds.any():
            logger.debug("no ground found near the trajectory here; seeding from the data")
            seeds = _large_components(candidate, p["min_area"] / frame.cell**2)
    else:
        seeds = _large_components(candidate, p["min_area"] / frame.cell**2)
    ground = G.grow_region(seeds, candidate, np.nan_to_num(z, nan=0.0), p["max_step"], 8)
    height = np.where(ground, z, np.nan)
    filled = G.nearest_fill(height, p["fill_distance"] / frame.cell)
    coarse = G.gather_cells(filled, idx)
    dz = xyz[:, 2] - coarse
    # A coarse cell at a curb holds the lower level; the sidewalk and the curb's top keep their own level
    # on a finer grid, where that level is a flat area up to max_step above the coarse ground (a car's
    # lower edge is no flat area: it has no flat neighbours across it).
    fine = _Frame.around(xyz[:, :2], p["fine_cell"])
    near = np.isfinite(dz) & (dz > -p["outlier"]) & (dz <= p["max_step"])
    fidx = fine.index(xyz, near)
    fstart, forder = G.bin_points(fidx, fine.nx * fine.ny)
    f1, f2, _fh, fcnt = G.cell_stats(xyz[:, 2], fstart, forder)
    fz = np.where((f2 - f1 > 0.05) & (fcnt >= 3), f2, f1).reshape(fine.nx, fine.ny)
    flat = G.similar_neighbours(fz, p["fine_flat"]) >= 5
    fi, fj = np.meshgrid(np.arange(fine.nx), np.arange(fine.ny), indexing="ij")
    centres = np.column_stack([fine.x0 + (fi.ravel() + 0.5) * fine.cell, fine.y0 + (fj.ravel() + 0.5) * fine.cell])
    coarse_at_fine = G.gather_cells(filled, frame.index(centres)).reshape(fine.nx, fine.ny)
    raised = fz - coarse_at_fine
    level = np.where(flat & (raised <= p["max_step"]) & (raised >= -0.05), fz, coarse_at_fine)
    chosen = G.closest_level(xyz[:, 0], xyz[:, 1], xyz[:, 2], level, fine.x0, fine.y0, fine.cell)
    np.copyto(chosen, coarse, where=~np.isfinite(chosen))
    np.subtract(xyz[:, 2], chosen, out=dz)
    return GroundModel(frame, filled, ground, dz, idx, seeds, vehicle_height)


def _seed_cells(frame: _Frame, z, candidate, seeds_xyz, radius: float, height_tol: float, vehicle_height=None):
    """Ground candidates within *radius* of the vehicle path at the expected height below it.

    Returns ``(seeds, vehicle_height)``; the height of the trajectory reference
    point above the ground is estimated (median over the footprint) unless given.
    """
    pos = seeds_xyz[np.isfinite(seeds_xyz).all(axis=1)]
    if not len(pos):
        return np.zeros_like(candidate), vehicle_height
    ix, iy = frame.cells_of(pos[:, :2])
    keep = np.unique(ix * frame.ny + iy, return_index=True)[1]
    pos, ix, iy = pos[keep], ix[keep], iy[keep]
    r = int(np.ceil(radius / frame.cell))
    if vehicle_height is None:
        offs = []
        step = max(r // 3, 1)
        for dx in range(-r, r + 1, step):
            for dy in range(-r, r + 1, step):
                a, b = np.clip(ix + dx, 0, frame.nx - 1), np.clip(iy + dy, 0, frame.ny - 1)
                v = pos[:, 2] - z[a, b]
                offs.append(v[candidate[a, b]])
        offs = np.concatenate(offs) if offs else np.empty(0)
        offs = offs[np.isfinite(offs) & (offs > 0.3)]
        if not len(offs):
            return np.zeros_like(candidate), None
        vehicle_height = float(np.median(offs))
    # the level the vehicle stands on: the median candidate height right under it (one cell around), which
    # follows cross slope and roll better than the reference point's height minus one mean vehicle height
    under = np.full((len(pos), 9), np.nan)
    for k, (dx, dy) in enumerate((dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)):
        a, b = np.clip(ix + dx, 0, frame.nx - 1), np.clip(iy + dy, 0, frame.ny - 1)
        under[:, k] = np.where(candidate[a, b], z[a, b], np.nan)
    expected = pos[:, 2] - vehicle_height
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        level = np.nanmedian(under, axis=1)
    level = np.where(np.abs(level - expected) < max(height_tol, 0.25), level, expected)
    seeds = np.zeros_like(candidate)
    for dx in range(-r, r + 1):
        for dy in range(-r, r + 1):
            if dx * dx + dy * dy > r * r:
                continue
            a, b = ix + dx, iy + dy
            ok = (a >= 0) & (a < frame.nx) & (b >= 0) & (b < frame.ny)
            a, b, lv = a[ok], b[ok], level[ok]
            good = candidate[a, b] & (np.abs(z[a, b] - lv) < height_tol)
            seeds[a[good], b[good]] = True
    return seeds, vehicle_height


def _large_components(mask, min_cells: float) -> np.ndarray:
    """Connected parts of *mask* with at least *min_cells* cells (isolated specks are not ground)."""
    labels, n = G.label_components(mask, 8)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    big = sizes >= min_cells
    big[0] = False
    return big[labels]


# --------------------------------------------------------------------------
# 2. noise
# --------------------------------------------------------------------------
def detect_noise(xyz: np.ndarray, dz: np.ndarray, params: dict | None = None, seen: np.ndarray | None = None,
                 channel: np.ndarray | None = None) -> np.ndarray:
    """Noise class per point: 0 (not noise), 7 (low noise) or 18 (high noise).

    *dz* is the height above the ground (:attr:`GroundModel.dz`); *seen*
    (optional, per point) says whether ground was observed near the point:
    only there is a point below the ground surface evidence of noise.

    Three tests: points far below the ground; isolated points (few others in
    their voxel block) above it; and points that stand apart from the
    sampling of the surface beside them (:func:`hdmap.kernels.grid.gap_outliers`),
    such as a return a few decimetres above the road, judged against the
    spacing of their own scanner *channel* (optional, per point, 0..255).
    """
    p = STAGES["noise"].resolve(params)
    out = np.zeros(len(xyz), np.uint8)
    dz = np.asarray(dz, dtype=np.float64)
    known = np.isfinite(dz)
    below = known & (dz < -p["below"])
    if seen is not None:
        below &= seen
    out[below] = Class.LOW_NOISE
    # far from any seen ground (NaN): only the isolation test applies, heights unknown count as high
    height = np.where(known, dz, np.inf)
    cand = np.flatnonzero(height > p["min_height"])
    if len(cand):
        v = G.voxel_coords(xyz, cand, p["voxel"])
        counts = G.voxel_neighbour_counts(v[:, 0], v[:, 1], v[:, 2])
        iso = cand[counts <= p["max_neighbours"]]
        out[iso] = np.where(height[iso] > p["high_height"], Class.HIGH_NOISE, Class.LOW_NOISE)
    if p["gap_ratio"] > 0:
        gap = G.gap_outliers(xyz[:, 0], xyz[:, 1], xyz[:, 2], channel, p["gap"], p["gap_ratio"],
                             max(p["gap_radius"], p["gap"])) & (out == 0)
        out[gap] = np.where(height[gap] > p["high_height"], Class.HIGH_NOISE, Class.LOW_NOISE)
    return out


# --------------------------------------------------------------------------
# 3. curbs
# --------------------------------------------------------------------------
def detect_curbs(xyz: np.ndarray, ground: GroundModel, is_ground: np.ndarray, params: dict | None = None,
                 groups: np.ndarray | None = None):
    """Curb points (bool per point) and the curb raster.

    On a fine grid of the lowest ground point per cell, face cells are found
    with :func:`hdmap.kernels.grid.curb_steps` (a step between two flat,
    smooth levels). Each ground point near a face is then placed relative to
    that face: points between the two levels within the zone (below) are the
    face itself, points on the upper level within ``width`` behind the face are
    the curb stone's top.

    *groups* (e.g. the drive of each point) lets every drive place the face on
    its own: drives carry their own georeferencing error of a few centimetres.

    Returns ``(curb_points, frame, zone)``: *zone* marks cells of the curb grid
    within one cell of a face or of a bridged gap between aligned faces (the
    barrier the road does not cross).
    """
    p = STAGES["curbs"].resolve(params)
    frame = _Frame.around(xyz[:, :2], p["cell"])
    idx = frame.index(xyz, is_ground)
    start, order = G.bin_points(idx, frame.nx * frame.ny)
    lo1, lo2, hi, cnt = G.cell_stats(xyz[:, 2], start, order)
    z = lo1.reshape(frame.nx, frame.ny)
    spread = np.where(cnt >= 2, lo2 - lo1, np.nan).reshape(frame.nx, frame.ny)
    low, high, face, direction, gap = G.curb_steps(z, spread, p["min_height"], p["max_height"], p["flat"],
                                                    int(p["run"]), p["smooth"])
    curb = np.zeros(len(xyz), np.bool_)
    # curbs are long: drop short clusters of face cells (rough patches that happen to look like steps)
    labels, n = G.label_components(face, 8)
    if n:
        li, lj = np.nonzero(face)
        # in whole cells: the same for every grid origin (a tile's and the survey's), to the last bit
        count, length, width = G.component_shapes(labels[li, lj], li, lj, n, 0.0)
        long_ = length + 1.0 >= p["min_length"] / frame.cell - 1e-9
        long_[0] = False
        face = long_[labels]
        labels = np.where(face, labels, 0)
    bridged = face | _bridge_gaps(labels, frame.cell, p["bridge"], p["bridge_angle"]) if n else face
    zone = G.max_filter(np.where(bridged, 1.0, np.nan), 1) == 1.0
    if not face.any():
        return curb, frame, zone
    # every ground point near a face: low (road level), high (top level) or between (the face)
    reach = int(np.ceil((p["width"] + 0.1) / frame.cell)) + 1
    lo_r = G.nearest_fill(np.where(face, low, np.nan), reach)
    hi_r = G.nearest_fill(np.where(face, high, np.nan), reach)
    flat = frame.flat_of(xyz[:, :2])
    k = np.flatnonzero(is_ground & np.isfinite(lo_r.ravel()[flat]))
    fk = flat[k]
    del flat
    lo, hg = lo_r.ravel()[fk], hi_r.ravel()[fk]
    zz = xyz[k, 2]
    margin = np.maximum(p["foot_share"] * (hg - lo), p["foot"])
    is_low = zz <= lo + margin
    is_high = (zz >= hg - margin) & (zz < hg + 0.06)
    # the face itself is (near) vertical: it lies in the zone (within a cell of a face cell, or of a bridged
    # gap between them). Farther out on the low side a point above the face's low level is road rising with
    # its cross slope (the low level is the mean of each cell's lowest point, below the surface by the
    # noise): a band of road taken for curb there, 0.4 m out, doubled the curb line of a dense scan
    between = ~is_low & (zz < hg - margin) & zone.ravel()[fk]
    # the top of the stone: upper-level points within `width` of the nearest road-level point of the same
    # drive (drives carry their own few centimetres of georeferencing error)
    grp = np.zeros(len(k), np.int64) if groups is None else _small_unique(groups[k], inverse=True)[1]
    qi = np.flatnonzero(is_high)
    li = np.flatnonzero(is_low)
    dist = G.nearest_in_group(xyz[k[qi], 0], xyz[k[qi], 1], grp[qi], xyz[k[li], 0], xyz[k[li], 1], grp[li],
                              0.05, p["width"] + 0.1)
    top = np.zeros(len(k), np.bool_)
    top[qi] = dist <= p["width"] + 0.01
    curb[k] = between | top
    return curb, frame, zone


def _bridge_gaps(labels: np.ndarray, cell: float, max_gap: float, max_angle_deg: float,
                 end_reach: float = 2.5) -> np.ndarray:
    """Raster of straight segments joining aligned runs of curb face across gaps up to *max_gap*.

    Each labelled run gets its two end cells and, at each, the direction in
    which it leaves (from the run's cells within *end_reach* metres of the
    end); two ends of different runs are joined when the gap is short and
    both runs point along the gap there (within *max_angle_deg*), so an end
    beside the other run rather than beyond it is not joined, nor are the
    two corners of a side street's mouth.
    """
    out = np.zeros(labels.shape, np.bool_)
    li, lj = np.nonzero(labels)
    if not len(li) or max_gap <= 0:
        return out
    lab = labels[li, lj]
    n = int(lab.max()) + 1
    x, y = li.astype(np.float64), lj.astype(np.float64)
    local = max(end_reach / cell, 2.0)
    ends = []  # (label, x, y, outward ux, outward uy)
    order = np.argsort(lab, kind="stable")
    bounds = np.searchsorted(lab[order], np.arange(n + 1))
    for k in range(1, n):
        m = order[bounds[k]:bounds[k + 1]]
        if len(m) < 2:
            continue
        # the run's two ends by a double sweep (farthest from the centre, then farthest from that), and each
        # end's outward direction from the cells just behind it: an L-shaped run (a curb turning round a
        # corner into a side street) points along the side street at that end, not along its long arm
        mx, my = x[m].mean(), y[m].mean()
        a = m[np.argmax((x[m] - mx) ** 2 + (y[m] - my) ** 2)]
        b = m[np.argmax((x[m] - x[a]) ** 2 + (y[m] - y[a]) ** 2)]
        for c in (a, b):
            near = m[(x[m] - x[c]) ** 2 + (y[m] - y[c]) ** 2 <= local * local]
            ox, oy = x[c] - x[near].mean(), y[c] - y[near].mean()
            norm = math.hypot(ox, oy)
            if norm < 0.25 * local:  # a blob, not a run: no direction at this end
                continue
            ends.append((k, x[c], y[c], ox / norm, oy / norm))
    if len(ends) < 2:
        return out
    e = np.array(ends)
    cos_max = np.cos(np.radians(max_angle_deg))
    reach = max_gap / cell
    for i in range(len(e)):
        gx, gy = e[:, 1] - e[i, 1], e[:, 2] - e[i, 2]
        dist = np.hypot(gx, gy)
        with np.errstate(invalid="ignore", divide="ignore"):
            along_i = (gx * e[i, 3] + gy * e[i, 4]) / dist  # the gap continues run i outwards ...
            along_j = -(gx * e[:, 3] + gy * e[:, 4]) / dist  # ... and reaches run j from its outer side
        ok = (e[:, 0] != e[i, 0]) & (dist <= reach) & (dist > 0) & (along_i >= cos_max) & (along_j >= cos_max)
        for j in np.flatnonzero(ok):
            steps = int(np.ceil(dist[j] * 2)) + 1
            s = np.linspace(0.0, 1.0, steps)
            px = np.rint(e[i, 1] + s * gx[j]).astype(np.int64)
            py = np.rint(e[i, 2] + s * gy[j]).astype(np.int64)
            out[px, py] = True
    return out


# --------------------------------------------------------------------------
# 4. road surface
# --------------------------------------------------------------------------
def detect_road(xyz: np.ndarray, ground: GroundModel, is_ground: np.ndarray, curb_zone, curb_frame: _Frame,
                seeds_xyz: np.ndarray | None, params: dict | None = None, groups: np.ndarray | None = None,
                own: np.ndarray | None = None) -> np.ndarray:
    """Road-surface points: smooth ground connected to the trajectory footprint without crossing a curb.

    Smooth: within every drive (*groups*) the ground points of a cell spread
    over at most ``roughness`` in height (asphalt, paint, stone do; grass, whose
    returns come from a canopy, does not).

    *own* (optional) marks the points the caller classifies when the others are
    context around them (a tile and its buffer). The road then does not grow
    through the outer ``context_margin`` of the context: where the context is
    cut off, so is a curb, and the growth would go round its cut end onto the
    sidewalk behind it.
    """
    p = STAGES["road"].resolve(params)
    f = ground.frame
    z = np.where(ground.ground_cell, ground.height, np.nan)
    grp = np.zeros(len(xyz), np.int64) if groups is None else _small_unique(groups, inverse=True)[1]
    ng = int(grp.max()) + 1 if len(grp) else 1
    cell = f.index(xyz, is_ground)
    key = np.where(cell >= 0, cell * ng + grp, -1)
    start, order = G.bin_points(key, f.nx * f.ny * ng)
    lo1, _lo2, hi, cnt = G.cell_stats(xyz[:, 2], start, order)
    lo1, hi, cnt = (a.reshape(f.nx, f.ny, ng) for a in (lo1, hi, cnt))
    rough = _spread(lo1, hi, cnt)
    # too few points in a cell to tell (far from the scanner): the 2 x 2 blocks of cells around it decide, so
    # that grass seen sparsely does not pass for asphalt
    coarse = _block_spread(lo1, hi, cnt)
    unknown = np.isnan(rough)
    rough[unknown] = coarse[unknown]
    # curb barrier on the ground grid: any ground cell holding a curb-zone cell
    barrier = np.zeros((f.nx, f.ny), np.bool_)
    if curb_zone.any():
        ci, cj = np.nonzero(curb_zone)
        cx = curb_frame.x0 + (ci + 0.5) * curb_frame.cell
        cy = curb_frame.y0 + (cj + 0.5) * curb_frame.cell
        gi, gj = f.cells_of(np.column_stack([cx, cy]))
        barrier[gi, gj] = True
    smooth = ground.ground_cell & ~(rough > p["roughness"]) & ~barrier
    flat = f.flat_of(xyz[:, :2])
    allowed = smooth
    if own is not None and not own.all() and p["context_margin"] > 0:
        allowed = smooth & ~_context_margin(f, flat, own, p["context_margin"])
    seeds = None
    if seeds_xyz is not None and len(seeds_xyz) and ground.vehicle_height is not None:
        seeds, _ = _seed_cells(f, z, smooth, seeds_xyz, p["seed_radius"], p["seed_height"], ground.vehicle_height)
    if seeds is None or not seeds.any():
        seeds = _largest_component(smooth)
    # cells without any point (not even a car's or a curb's): scan-line gaps, crossed at the level before them
    empty = np.ones(f.nx * f.ny, np.bool_)
    empty[flat[flat >= 0]] = False
    # beyond such a gap the 2 x 2 blocks must be smooth too: a curb seen from afar is smeared into a ramp of
    # small steps, each within max_step, which the growth would otherwise climb onto the sidewalk
    road_cells = G.grow_region(seeds, allowed, np.nan_to_num(z, nan=0.0), p["max_step"], 4,
                               gaps=empty.reshape(f.nx, f.ny), max_gap=int(round(p["max_gap"] / f.cell)),
                               beyond=~(coarse > p["roughness"]))
    # points in barrier cells next to the road belong to the road when at its level
    edge = G.max_filter(np.where(road_cells, 1.0, np.nan), 1) == 1.0
    edge &= barrier & ~road_cells
    taken = (road_cells | edge).ravel()[flat]
    level = ground.height.ravel()[flat]
    # a sparse cell can hold a curb's face and top above the road level: only points at that level are road
    return is_ground & taken & (xyz[:, 2] - level < p["tolerance"])


def _spread(lo: np.ndarray, hi: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """Largest height spread (hi - lo) over the groups (last axis) with at least 3 points; NaN where none has."""
    with np.errstate(all="ignore"):
        spread = np.where(cnt >= 3, hi - lo, -np.inf).max(axis=-1)
    spread[np.isinf(spread)] = np.nan
    return spread


def _block_spread(lo: np.ndarray, hi: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """Per cell, the largest :func:`_spread` of the four 2 x 2 blocks of cells that contain it (each group's
    lowest and highest point and count over the block); NaN where none has enough points. Sliding blocks:
    the same for any grid origin on whole cells (a tile's and the survey's)."""
    nx, ny = lo.shape[:2]
    if nx < 2 or ny < 2:
        return np.full((nx, ny), np.nan)
    blo = np.fmin(np.fmin(lo[:-1, :-1], lo[1:, :-1]), np.fmin(lo[:-1, 1:], lo[1:, 1:]))  # empty cells are NaN
    bhi = np.fmax(np.fmax(hi[:-1, :-1], hi[1:, :-1]), np.fmax(hi[:-1, 1:], hi[1:, 1:]))
    bcnt = cnt[:-1, :-1] + cnt[1:, :-1] + cnt[:-1, 1:] + cnt[1:, 1:]
    block = _spread(blo, bhi, bcnt)  # block (i, j) covers cells i..i+1, j..j+1
    out = np.full((nx + 1, ny + 1), np.nan)
    out[1:-1, 1:-1] = block
    return np.fmax(np.fmax(out[:-1, :-1], out[1:, :-1]), np.fmax(out[:-1, 1:], out[1:, 1:]))


def _small_unique(a: np.ndarray, inverse: bool = False):
    """``np.unique`` (with ``return_inverse``) of small non-negative integers such as drive and scanner
    ids, by counting instead of sorting: the same result, linear in the number of points."""
    a = np.asarray(a)
    if a.size == 0 or a.min() < 0 or a.max() > 1 << 24:
        return np.unique(a, return_inverse=True) if inverse else np.unique(a)
    a = a.astype(np.int64, copy=False)
    ids = np.flatnonzero(np.bincount(a))
    return (ids, _slots(a, ids)) if inverse else ids


def _slots(a: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Position of each value of *a* in the sorted *ids*, -1 where it is not among them."""
    if len(ids) and len(a) and 0 <= ids[0] and ids[-1] <= 1 << 24 and a.min() >= 0:
        lookup = np.full(max(int(ids[-1]), int(a.max())) + 1, -1, np.int64)
        lookup[ids] = np.arange(len(ids))
        return lookup[a]
    if not len(ids):
        return np.full(len(a), -1, np.int64)
    pos = np.minimum(np.searchsorted(ids, a), len(ids) - 1)
    return np.where(ids[pos] == a, pos, -1).astype(np.int64)


def _context_margin(f: _Frame, flat: np.ndarray, own: np.ndarray, margin: float) -> np.ndarray:
    """Cells within *margin* of the outside of the footprint of the points in (flat) cells *flat* (empty
    cells connected to the frame's border; holes inside, such as the shadows of cars, are not outside),
    except cells that hold own points."""
    occupied = np.zeros(f.nx * f.ny, np.bool_)
    occupied[flat] = True
    occupied = occupied.reshape(f.nx, f.ny)
    labels, _ = G.label_components(~occupied, 4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    outside = np.isin(labels, border[border > 0])
    near = G.distance_transform(outside) <= margin / f.cell
    mine = np.zeros(f.nx * f.ny, np.bool_)
    mine[flat[own]] = True
    return near & ~mine.reshape(f.nx, f.ny)


def _largest_component(mask):
    labels, n = G.label_components(mask, 4)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


# --------------------------------------------------------------------------
# 5. intensity
# --------------------------------------------------------------------------
_LOG_I = (0.0, 11.1, 444)  # histogram of log intensity: range and bins (0.025 steps; uint16 needs 11.09)
_QS = (0.05, 0.20, 0.50)  # quantiles of log intensity per bin: the 20th is the level
_ZS = (1.6449 - 0.8416, 0.8416)  # standard normal: 20th minus 5th percentile, median minus 20th
_LOG_2 = math.log(2.0)


def _range_sector_keys(xyz, positions, headings, p):
    """Per point: range/sector key of the empirical curve (nr * sectors), and whether the point has a range."""
    nr = int(np.ceil(p["range_max"] / p["range_bin"]))
    na = int(p["sectors"])
    key, has = G.range_sector_keys(xyz, positions, headings, p["range_bin"], nr, na)
    return key, has, nr, na


def intensity_histograms(intensity, road, xyz, positions, headings, groups, params: dict | None = None) -> dict:
    """Histograms of road points' log intensity per group (drive x scanner) and (range, sector) bin.

    They add up over blocks of a survey (sum the arrays of equal keys), so the
    empirical curve of :func:`intensity_curve` can describe a whole drive while
    the points are classified block by block. Empty without positions.
    """
    p = STAGES["intensity"].resolve(params)
    if positions is None:
        return {}
    return _histograms(intensity, road, _range_sector_keys(xyz, positions, headings, p), groups)


@functools.lru_cache(maxsize=1)
def _uint16_log_tables() -> tuple[np.ndarray, np.ndarray]:
    """For every uint16 intensity: its log (as :func:`_log_intensity`) and the bin of that log in the
    intensity histograms (as ``binned_histogram`` bins it): exactly the same numbers, looked up."""
    logi = np.log(np.maximum(np.arange(1 << 16, dtype=np.float64), 1.0))
    lo, hi, nbins = _LOG_I
    f = (logi - lo) * (nbins / (hi - lo))
    bins = np.where(f < 0.0, 0, np.where(f >= nbins, nbins - 1, np.floor(np.maximum(f, 0.0)))).astype(np.int64)
    logi.flags.writeable = False
    bins.flags.writeable = False
    return logi, bins


def _log_intensity(intensity: np.ndarray) -> np.ndarray:
    """log(max(intensity, 1)) as float64 (a table lookup for uint16 intensities, as LAS stores them)."""
    intensity = np.asarray(intensity)
    if intensity.dtype == np.uint16:
        return _uint16_log_tables()[0][intensity]
    return np.log(np.maximum(intensity.astype(np.float64), 1.0))


def _histograms(intensity, road, keys, groups) -> dict:
    key, has, nr, na = keys
    grp = np.zeros(len(key), np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    if np.asarray(intensity).dtype == np.uint16:  # one pass for every group
        counted = road & has
        ids = _small_unique(grp[counted])  # (only the groups with counted points get a histogram)
        hist, _ = G.grouped_histograms(key, intensity, _uint16_log_tables()[1], _slots(grp, ids), counted, len(ids),
                                       nr * na, _LOG_I[2])
        return {int(g): hist[k] for k, g in enumerate(ids.tolist())}
    sel = np.flatnonzero(road & has)
    logi = _log_intensity(intensity)
    out = {}
    for g in _small_unique(grp[sel]):
        m = sel[grp[sel] == g]
        out[int(g)] = G.binned_histogram(key[m], logi[m], nr * na, *_LOG_I)
    return out


def intensity_curve(histograms: dict, params: dict | None = None) -> dict:
    """The empirical curve per group: level (20th percentile) and noise level of asphalt's log
    intensity per (range, sector) bin, from :func:`intensity_histograms`, as (bins, 2).

    A profile scanner sees a given range at a fixed place beside the vehicle, so
    a bin can be mostly paint (a solid line at that offset): the level is a low
    percentile, and the curve is a running median over neighbouring ranges
    (unbiased where the curve is linear, robust to a few painted bins). Bins
    with too few samples take the range-only curve of their group.
    """
    p = STAGES["intensity"].resolve(params)
    nr = int(np.ceil(p["range_max"] / p["range_bin"]))
    na = int(p["sectors"])
    k = int(round(p["range_smooth"] / p["range_bin"]))
    curve = {}
    for g, hist in histograms.items():
        hist = hist.reshape(nr, na, -1)
        cnt = hist.sum(axis=2)
        q = G.histogram_quantiles(hist.reshape(nr * na, -1), _LOG_I[0], _LOG_I[1], _QS).reshape(nr, na, len(_QS))
        q[cnt < p["min_samples"]] = np.nan
        q = _running_median(q, k, axis=0)
        hist_r = hist.sum(axis=1)
        q_r = G.histogram_quantiles(hist_r, _LOG_I[0], _LOG_I[1], _QS)
        q_r[hist_r.sum(axis=1) < p["min_samples"]] = np.nan
        q_r = _running_median(q_r, k, axis=0)
        few = ~np.isfinite(q[:, :, 1])
        q[few] = np.broadcast_to(q_r[:, None, :], q.shape)[few]
        q = q.reshape(nr * na, len(_QS))
        curve[g] = np.stack([q[:, 1], _noise_level(q)], axis=1)
    return curve


def _noise_level(q: np.ndarray) -> np.ndarray:
    """Noise level of log intensity from its 5th, 20th and 50th percentiles (rows of *q*).

    The smaller of the spreads below and above the level (the 20th percentile):
    each is inflated by one thing, the one below by the long dark tail of far
    returns (twice the one above at 20 m on tempus-b13), the one above by paint
    (half of a bin beside a solid line). Where the 5th percentile reads two
    counts or less, the spread below is clipped at the scale's floor and only
    the one above counts; and no noise level is below one count.
    """
    below = np.where(q[:, 0] > _LOG_2, (q[:, 1] - q[:, 0]) / _ZS[0], np.nan)
    above = (q[:, 2] - q[:, 1]) / _ZS[1]
    return np.fmax(np.fmin(below, above), np.exp(-q[:, 1]))


def normalize_intensity(intensity: np.ndarray, road: np.ndarray, xyz: np.ndarray, positions: np.ndarray | None,
                        headings: np.ndarray | None, groups: np.ndarray | None, params: dict | None = None,
                        curve: dict | None = None, _keys=None):
    """Intensity of road points relative to their surroundings.

    With vehicle positions (and headings) at every point, each group (drive x
    scanner channel) gets an empirical curve of road intensity over range and
    direction (:func:`intensity_curve`; no range law and no lever arm is
    assumed, the data tells), from these points or given as *curve* (e.g. of a
    whole survey). The normalised intensity is then compared with the local
    background of the same group (a low percentile of the surrounding window),
    because drives and scanners see a place from different ranges.

    Returns ``(ratio, sigma, degraded, level)``: the point's intensity over its
    background (NaN off the road), the relative spread of road intensity at the
    point's range and direction (its noise level), whether no trajectory was
    available (then only the local background of a smaller window is used),
    and the point's intensity over the curve alone (NaN when degraded).
    """
    p = STAGES["intensity"].resolve(params)
    n = len(xyz)
    logi = _log_intensity(intensity)
    sel = np.flatnonzero(road)
    grp = np.zeros(n, np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    degraded = positions is None
    if not degraded:
        keys = _keys if _keys is not None else _range_sector_keys(xyz, positions, headings, p)
        key, has = keys[0], keys[1]
        degraded = not has[sel].any()
    if not degraded:
        if curve is None:
            curve = intensity_curve(_histograms(intensity, road, keys, groups), p)
        # each point against its group's curve at its range and sector (NaN without a curve there)
        gids = np.array(sorted(int(g) for g in curve), np.int64)
        table = np.stack([curve[g] for g in gids.tolist()]) if len(gids) else np.zeros((0, 1, 2))
        lnorm, sigma = G.relative_to_curve(logi, key, has, _slots(grp, gids), table)
    else:
        lnorm, sigma = logi, np.full(n, np.nan)
    window = p["background_window"] if not degraded else p["background_window_no_trajectory"]
    frame = _Frame.around(xyz[:, :2], p["background_cell"])
    r = max(int(round(window / 2 / frame.cell)), 1)
    ratio = np.full(n, np.nan)
    cell = frame.index(xyz, road)
    ncell = frame.nx * frame.ny
    good = sel[np.isfinite(lnorm[sel])]
    gids, inv = _small_unique(grp[good], inverse=True)
    slot = np.full(n, -1, np.int64)
    slot[good] = inv
    # the cell means of every group and of all groups together (last row), in one pass
    means = G.grouped_cell_means(lnorm, cell, slot, len(gids), ncell)
    all_bg = G.percentile_filter(means[-1].reshape(frame.nx, frame.ny), r, p["background_percentile"], min_count=3)
    start, order = G.bin_points(inv, len(gids))  # the good points group by group, in their order
    for k in range(len(gids)):
        m = good[order[start[k]:start[k + 1]]]
        bg = G.percentile_filter(means[k].reshape(frame.nx, frame.ny), r, p["background_percentile"], min_count=3)
        b = G.gather_cells(bg, cell[m])
        b = np.where(np.isfinite(b), b, G.gather_cells(all_bg, cell[m]))
        ratio[m] = np.exp(lnorm[m] - b)
    return ratio, sigma, degraded, np.exp(lnorm) if not degraded else np.full(n, np.nan)


def _running_median(a: np.ndarray, k: int, axis: int) -> np.ndarray:
    """Median over a window of 2k+1 along *axis*, ignoring NaN (NaN where the window holds none)."""
    if k <= 0:
        return a
    a = np.moveaxis(a, axis, -1)
    pad = np.pad(a, [(0, 0)] * (a.ndim - 1) + [(k, k)], constant_values=np.nan)
    win = np.lib.stride_tricks.sliding_window_view(pad, 2 * k + 1, axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = np.nanmedian(win, axis=-1)
    return np.moveaxis(out, -1, axis)


# --------------------------------------------------------------------------
# 6. markings
# --------------------------------------------------------------------------
def detect_markings(xyz: np.ndarray, ratio: np.ndarray, sigma: np.ndarray | None = None,
                    params: dict | None = None, level: np.ndarray | None = None) -> np.ndarray:
    """Road-marking points: bright against their background, in patches shaped like paint.

    *sigma* (optional) is each point's noise level of log intensity; where
    given, the ratio must also exceed ``exp(sigmas * sigma)`` (far, noisy
    returns need more evidence). *level* (optional) is the intensity over the survey's asphalt
    curve: paint must also be brighter than ``level_ratio`` times asphalt in
    general, not only than its surroundings (asphalt around a dark wet patch
    is bright against the patch, not against the road).

    Far away the noise level is high and a line is crossed by few returns, each
    alone too weak to tell from noise (at 20 m on tempus-b13, three returns
    4 cm apart along one scan line). Bright returns that fail the noise test
    alone may pass it together: with k >= 3 bright returns in the 3 x 3 cells
    around a return, their mean must exceed ``sigmas * sigma / sqrt(min(k, pool))``
    (independent measurements of one surface). Every return must still be
    brighter than ``ratio`` times its background.
    """
    p = STAGES["markings"].resolve(params)
    r = np.nan_to_num(ratio, nan=0.0)
    eligible = r > p["ratio"]
    if level is not None:
        eligible &= ~(level <= p["level_ratio"])  # NaN (no curve there) does not veto
    if sigma is None:
        ok = eligible
    else:
        with np.errstate(divide="ignore"):
            score = np.log(np.maximum(r, 1e-300))
        need = np.maximum(np.log(p["ratio"]), np.nan_to_num(p["sigmas"] * sigma, nan=0.0))
        ok = eligible & (score > need)
        weak = np.flatnonzero(eligible & ~ok)
        if p["pool"] > 1 and len(weak):
            ok[weak] = _pooled_test(xyz, eligible, score, need, weak, p["cell"], p["pool"])
    cand = np.flatnonzero(ok)
    out = np.zeros(len(xyz), np.bool_)
    if not len(cand):
        return out
    # link candidate points closer than `link` into patches, then judge each patch's shape
    frame = _Frame.around(xyz[cand, :2], p["cell"])
    ix, iy = frame.cells_of(xyz[cand, :2])
    raster = np.zeros((frame.nx, frame.ny))
    raster[ix, iy] = 1.0
    link = max(int(round(p["link"] / p["cell"])), 0)
    grown = G.max_filter(np.where(raster > 0, 1.0, np.nan), link) == 1.0 if link else raster > 0
    labels, n = G.label_components(grown, 8)
    if n == 0:
        return out
    lab = labels[ix, iy]
    count, length, width = G.component_shapes(lab, xyz[cand, 0], xyz[cand, 1], n)
    width_eff = width + p["cell"]  # points sample the stroke; its edges lie half a spacing beyond them
    keep = (count >= p["min_points"]) & ((length + p["cell"]) * width_eff >= p["min_area"])
    keep &= width_eff >= p["min_width"]
    blob = (length < p["blob_length"]) & (width_eff > p["blob_width"])
    keep &= ~blob
    keep[0] = False
    out[cand] = keep[lab]
    if p["sparse_density"] > 0:
        out[cand] |= _speck_rows(xyz, ratio, ok, cand, lab, count, ~keep & ~blob & (count >= 2), p)[lab]
    return out


def _speck_rows(xyz, ratio, ok, cand, lab, count, small, p) -> np.ndarray:
    """Which patches (by label) are specks in a row (:func:`hdmap._specks.speck_rows`): a line crossed by
    few returns per scan line far from the scanner. Only *small* patches where the road is sampled at fewer
    than ``sparse_density`` points per m^2 count: where it is sampled densely, a line makes a patch."""
    small[0] = False
    rows = np.zeros(len(small), np.bool_)
    ids = np.flatnonzero(small)
    if len(ids) < p["speck_count"]:
        return rows
    road = np.flatnonzero(np.isfinite(ratio))
    road_xy = xyz[road, :2]
    frame = _Frame.around(road_xy, 0.25)
    density = _box3(np.bincount(frame.flat_of(road_xy), minlength=frame.nx * frame.ny).reshape(frame.nx, frame.ny)
                    .astype(np.float64)) / (0.75 * 0.75)
    del road_xy
    centre = np.column_stack([np.bincount(lab, xyz[cand, 0], len(small))[ids],
                              np.bincount(lab, xyz[cand, 1], len(small))[ids]]) / count[ids, None]
    cx, cy = frame.cells_of(centre)
    ids = ids[density[cx, cy] < p["sparse_density"]]
    if len(ids) < p["speck_count"]:
        return rows
    start, order = G.bin_points(lab, len(small))  # the candidates patch by patch
    specks = [cand[order[start[k]:start[k + 1]]] for k in ids]
    unpainted = road[~ok[road]]
    for members, *_ in _specks.speck_rows([xyz[s_] for s_ in specks], xyz[unpainted, :2], p["speck_gap"],
                                            p["speck_tolerance"], p["speck_count"]):
        rows[ids[members]] = True
    return rows


def _drive_groups(cloud: PointCloud) -> np.ndarray:
    """Group of each point for the intensity curves: drive x scanner channel (0 where unknown)."""
    zeros = np.zeros(len(cloud), np.int64)
    src = cloud.attrs.get("point_source_id", zeros).astype(np.int64)
    ch = cloud.attrs.get("scanner_channel", zeros).astype(np.int64)
    return src * 16 + ch


def _pooled_test(xyz, eligible, score, need, weak, cell, pool):
    """Whether the *weak* returns pass the noise test pooled with the eligible returns in the 3 x 3
    cells around them (see :func:`detect_markings`)."""
    el = np.flatnonzero(eligible)
    frame = _Frame.around(xyz[el, :2], cell)
    ix, iy = frame.cells_of(xyz[el, :2])
    flat = ix * frame.ny + iy
    ncell = frame.nx * frame.ny
    total = np.bincount(flat, weights=score[el], minlength=ncell).reshape(frame.nx, frame.ny)
    count = np.bincount(flat, minlength=ncell).reshape(frame.nx, frame.ny).astype(np.float64)
    total, count = _box3(total), _box3(count)
    wx, wy = frame.cells_of(xyz[weak, :2])
    k = count[wx, wy]
    mean = total[wx, wy] / k  # k >= 1: the weak return itself is eligible
    # at least three: bright pairs of asphalt returns are common by chance (each pooled return was chosen for
    # being bright, so the pool's mean is biased up): on a synthetic far line (noise level 0.5, eight seeds)
    # pairs made the false rate on asphalt 2-6 times that of single returns, three 1.2-2.8 times, while
    # paint found rose from 0.51 to 0.97 and 0.95)
    return (k >= 3) & (mean >= need[weak] / np.sqrt(np.minimum(k, pool)))


def _box3(a):
    """Sum over the 3 x 3 cells around each cell (zero beyond the edges)."""
    pad = np.pad(a, 1)
    out = np.zeros_like(a)
    for dx in range(3):
        for dy in range(3):
            out += pad[dx:dx + a.shape[0], dy:dy + a.shape[1]]
    return out


def _paint(intensity, road, xyz, positions, headings, groups, p, curve, keys=None):
    """Intensity and marking stages: ``(paint, ratio, degraded)``; paint only on *road*."""
    ratio, sigma, no_range, level = normalize_intensity(intensity, road, xyz, positions, headings, groups,
                                                        p["intensity"], curve, _keys=keys)
    paint = detect_markings(xyz, ratio, sigma if not no_range else None, p["markings"], level) & road
    return paint, ratio, no_range


def mark_paint(cloud: PointCloud, road: np.ndarray, curb: np.ndarray, trajectory=None, params=None,
               curve: dict | None = None) -> np.ndarray:
    """Road-marking points among *road*, given the road and curb points (e.g. from an earlier pass).

    The intensity and marking stages of :func:`classify` alone: with *curve*
    (the survey's intensity curves) a block of a survey is judged like the
    whole. Paint at a curb's foot (within a cell of a cell where curb points are
    at least half of the points) is not paint.
    """
    p = resolve_stages(STAGES, params)
    if "intensity" not in cloud.attrs or not road.any():
        return np.zeros(len(cloud), np.bool_)
    xyz = cloud.xyz
    # the stages look at road points only: positions, ranges and ratios of those alone (their grids are
    # aligned to the coordinates, so a smaller extent changes no cell)
    sel = np.flatnonzero(road)
    used = ("intensity", "gps_time", "point_source_id", "scanner_channel")
    on_road = PointCloud._unchecked(xyz[sel], {k: v[sel] for k, v in cloud.attrs.items() if k in used}, cloud.crs,
                                    None)
    positions, headings = trajectory_positions(on_road, trajectory)
    mine, _, _ = _paint(on_road.attrs["intensity"], np.ones(len(sel), np.bool_), on_road.xyz, positions, headings,
                        _drive_groups(on_road), p, curve)
    paint = np.zeros(len(cloud), np.bool_)
    paint[sel] = mine
    del on_road, positions, headings, mine
    if curb.any():
        # the curb zone of classify() (face cells grown by one cell), from the codes alone: cells where curb
        # points are at least half of the points, grown by one cell. A few curb points scattered on the road
        # beside a curb (its foot) do not count: growing round each of them wiped whole dashes of the lane
        # line next to a median curb (b13: marking recall 0.91 streamed in blocks against 0.975 in memory)
        frame = _Frame.around(xyz[:, :2], p["curbs"]["cell"])
        flat = frame.flat_of(xyz[:, :2])
        ncell = frame.nx * frame.ny
        curbs = np.bincount(flat[curb], minlength=ncell)
        zone = ((curbs > 0) & (curbs * 2 >= np.bincount(flat, minlength=ncell))).reshape(frame.nx, frame.ny)
        zone = G.max_filter(np.where(zone, 1.0, np.nan), 1) == 1.0
        paint &= ~zone.ravel()[flat]
    return paint


# --------------------------------------------------------------------------
# everything
# --------------------------------------------------------------------------
def classify(cloud: PointCloud, trajectory=None, params=None, *, details: bool = False, log_degraded: bool = True,
             curve: dict | None = None, own_points: np.ndarray | None = None, markings: bool = True):
    """Classify every point of a street scan.

    Parameters
    ----------
    cloud : PointCloud
        Points in a projected CRS (metres). Uses ``intensity``, ``gps_time``,
        ``point_source_id`` and ``scanner_channel`` when present.
    trajectory : Trajectory or list of Trajectory, optional
        The vehicle path(s); each point finds its position by GPS time. Without
        one, seeds come from the data and intensity is normalised locally only.
    params : dict, optional
        Stage parameters, ``{"ground": {"cell": 0.25}, ...}`` or
        ``{"ground.cell": 0.25}``; see :data:`STAGES`.
    details : bool
        Also return a dict of intermediate results (ground model, ratios,
        ``degraded``: the steps that ran without what they need, ...).
    log_degraded : bool
        Log the degraded steps (callers that classify many tiles summarise them instead).
    curve : dict, optional
        Empirical intensity curves (:func:`intensity_curve`) to use instead of
        ones estimated from these points, e.g. those of the whole survey when
        classifying it block by block.
    own_points : bool array, optional
        For a block of a survey classified with a halo of its neighbours'
        points: which points are the block's own (default all). Only these
        enter the returned ``histograms`` (so the blocks' histograms count
        each survey point once, whatever the block size), and the road does
        not grow through the halo's outer margin (see :func:`detect_road`).
        The codes of the halo points are less reliable: keep the own ones.
    markings : bool
        False skips the intensity and marking stages (no point is 64; with
        *details* the ``histograms`` are still counted): for a caller that
        judges paint afterwards with the survey's curve (:func:`mark_paint`),
        as block-by-block classification does.

    Returns
    -------
    ndarray of uint8
        Class codes (:class:`hdmap.Class`): 2, 7, 11, 18, 64, 67, and 1 for
        everything else.
    """
    p = resolve_stages(STAGES, params)
    n = len(cloud)
    out = np.full(n, Class.UNCLASSIFIED, np.uint8)
    if n == 0:
        return (out, {"degraded": []}) if details else out
    xyz = cloud.xyz
    source = cloud.attrs["point_source_id"].astype(np.int64) if "point_source_id" in cloud.attrs else None
    if source is not None and len(_small_unique(source)) > 1:
        xyz = _level_drives(xyz, source, p["ground"]["cell"])
    positions, headings = trajectory_positions(cloud, trajectory)
    degraded = []
    if positions is None:
        degraded.append("ground/road seeds from the data (no trajectory)")
    seeds = None
    if positions is not None:
        good = np.isfinite(positions[:, 0])
        seeds = positions[np.flatnonzero(good)[:: max(int(good.sum() // 20000), 1)]]
    ground = ground_model(xyz, seeds, p["ground"])
    flat = ground.frame.flat_of(xyz[:, :2])
    reach = int(np.ceil(p["noise"]["below_reach"] / ground.frame.cell))
    seen = G.max_filter(np.where(ground.ground_cell, 1.0, np.nan), reach) == 1.0 if reach else ground.ground_cell
    noise = detect_noise(xyz, ground.dz, p["noise"], seen.ravel()[flat], cloud.attrs.get("scanner_channel"))
    is_ground = (ground.dz >= -p["noise"]["below"]) & (ground.dz <= p["ground"]["tolerance"]) & (noise == 0)
    is_ground &= ground.ground_cell.ravel()[flat] | (ground.dz <= 0.5 * p["ground"]["tolerance"])
    del flat
    curb, curb_frame, curb_zone = detect_curbs(xyz, ground, is_ground, p["curbs"], groups=source)
    road = detect_road(xyz, ground, is_ground & ~curb, curb_zone, curb_frame, seeds, p["road"], groups=source,
                       own=own_points)
    groups = _drive_groups(cloud)
    ratio = np.full(n, np.nan)
    paint = np.zeros(n, np.bool_)
    histograms = {}
    if "intensity" in cloud.attrs:
        # ranges from the points as measured (the levelled heights are for the ground stages only)
        keys = None if positions is None else _range_sector_keys(cloud.xyz, positions, headings, p["intensity"])
        if details and keys is not None:
            # the caller adds them up over blocks (each point counted once: its own block's points); the
            # curve of these points comes from the same counts
            counted = road if own_points is None else road & own_points
            histograms = _histograms(cloud.attrs["intensity"], counted, keys, groups)
            if curve is None and histograms and markings:
                curve = intensity_curve(histograms, p["intensity"])
    if "intensity" in cloud.attrs and markings:
        paint, ratio, no_range = _paint(cloud.attrs["intensity"], road, xyz, positions, headings, groups, p, curve,
                                        keys)
        if no_range:
            degraded.append("intensity compared locally only (no ranges without a trajectory)")
        # the foot of a curb face sits at road level and its stone is brighter than asphalt: not paint
        paint &= ~curb_zone.ravel()[curb_frame.flat_of(xyz[:, :2])]
    elif "intensity" not in cloud.attrs:
        degraded.append("no intensity: markings not detected")
    elif keys is None or not (keys[1] & road).any():  # (what normalize_intensity would have said)
        degraded.append("intensity compared locally only (no ranges without a trajectory)")
    out[is_ground] = Class.GROUND
    out[road] = Class.ROAD_SURFACE
    out[paint] = Class.ROAD_MARKING
    out[curb] = Class.CURB
    nz = noise > 0
    out[nz] = noise[nz]
    for d in degraded if log_degraded else ():
        logger.info("classification degraded: %s", d)
    if details:
        return out, {"ground": ground, "noise": noise, "curb_zone": curb_zone, "curb_frame": curb_frame,
                     "ratio": ratio, "degraded": degraded, "positions": positions, "road": road,
                     "histograms": histograms}

    return out

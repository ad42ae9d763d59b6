"""The tile grid of a run and the on-disk store of spilled points.

Points are spilled once, per drive, into *base* squares (``base`` metres,
a whole fraction of the tile edge) under ``work/spill/d<k>/``. A tile is
``k x k`` base squares; a tile's work loads the base squares within its
context radius, so a 25 m buffer around a 200 m tile reads 250 m squares, not
three 200 m tiles in each direction.

Every load returns the points in one fixed order (base squares sorted, then
drives in campaign order, then the order they were read), so per-base arrays
written by one stage (class codes) line up with the points another tile's
stage loads later.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdmap.kernels.grid import within_box
from hdmap.tiles import read_exactly

__all__ = ["Grid", "SpillStore", "tile_name", "spill_dtype"]

#: Fields every spill record has; the drives' point attributes follow.
BASE_FIELDS = [("x", "<f8"), ("y", "<f8"), ("z", "<f8"), ("drive", "<u2"), ("index", "<i8")]


def spill_dtype(attrs: list[tuple[str, str]]) -> np.dtype:
    """Record layout of the spill: :data:`BASE_FIELDS`, the attributes, and TileSpill's ``core`` flag."""
    return np.dtype(BASE_FIELDS + [(n, d) for n, d in attrs] + [("core", "?")])


def _fmt(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.3f}".rstrip("0").replace(".", "p")


def tile_name(key, size: float) -> str:
    """``E692000_N5343500``: the tile's south-west corner in the project CRS."""
    return f"E{_fmt(key[0] * size)}_N{_fmt(key[1] * size)}"


@dataclass(frozen=True)
class Grid:
    """Square tiles of edge *size*, each made of ``k x k`` base squares."""

    size: float
    k: int

    @classmethod
    def for_context(cls, size: float, context: float) -> "Grid":
        """Base squares about as large as the widest context (at least 5 m), dividing the tile evenly."""
        k = max(1, int(size // max(context, 5.0)))
        return cls(float(size), k)

    @property
    def base(self) -> float:
        return self.size / self.k

    def tile_of(self, base_key) -> tuple[int, int]:
        return (base_key[0] // self.k, base_key[1] // self.k)

    def bounds(self, tile) -> tuple[float, float, float, float]:
        s = self.size
        return (tile[0] * s, tile[1] * s, (tile[0] + 1) * s, (tile[1] + 1) * s)

    def window(self, tile, radius: float) -> list[tuple[int, int]]:
        """Base keys that may hold points within *radius* of the tile (sorted)."""
        ring = int(math.ceil(radius / self.base)) if radius > 0 else 0
        x0, y0 = tile[0] * self.k - ring, tile[1] * self.k - ring
        n = self.k + 2 * ring
        return [(x0 + i, y0 + j) for i in range(n) for j in range(n)]


class SpillStore:
    """Read access to the spilled points of a run (any process, any machine sharing the directory)."""

    def __init__(self, work: Path):
        self.work = Path(work)
        plan = json.loads((self.work / "plan.json").read_text(encoding="utf-8"))
        self.grid = Grid(plan["tile_size"], plan["k"])
        self.dtype = np.dtype([tuple(f) for f in plan["dtype"]])
        self.drives = int(plan["drives"])
        self.origin = np.array(plan["origin"], dtype=np.float64)
        self.bases: dict[tuple[int, int], list[int]] = {
            tuple(int(v) for v in key.split(",")): counts for key, counts in plan["bases"].items()}
        self.plan = plan

    def load(self, keys) -> tuple[np.ndarray, list]:
        """Records of the base squares *keys* (those that exist), and [(key, start, stop)] slices."""
        files, spans, n = [], [], 0
        for key in sorted(keys):
            counts = self.bases.get(tuple(key))
            if counts is None:
                continue
            start = n
            for d, c in enumerate(counts):
                if c:
                    files.append((self.work / "spill" / f"d{d}" / f"tile_{key[0]}_{key[1]}.bin", key, n, n + c))
                    n += c
            spans.append((tuple(key), start, n))
        # each file straight into its slice of one array (no list of parts concatenated afterwards)
        rec = np.empty(n, self.dtype)
        for path, key, a, b in files:
            if not read_exactly(path, rec[a:b]):
                have = path.stat().st_size // self.dtype.itemsize
                raise RuntimeError(f"{path.parent}: base {key} holds {have} points, the plan says {b - a}; "
                                   f"the spill is damaged: delete {self.work} and rerun")
        return rec, spans

    def context(self, tile, radius: float) -> tuple[np.ndarray, np.ndarray, list, np.ndarray]:
        """The base squares around *tile*: (records, core mask, spans of the base squares, mask of the
        points in the tile or within *radius* of it)."""
        rec, spans = self.load(self.grid.window(tile, radius))
        x0, y0, x1, y1 = self.grid.bounds(tile)
        core = np.zeros(len(rec), bool)
        for key, a, b in spans:
            if self.grid.tile_of(key) == tuple(tile):
                core[a:b] = True
        near = core | within_box(rec["x"], rec["y"], (x0, y0, x1, y1), radius)
        return rec, core, spans, near

    def codes(self, directory: Path, spans, n: int, fill: int = 0) -> np.ndarray:
        """Per-point class codes of loaded base squares from the per-tile ``.npz`` files of a stage."""
        out = np.full(n, fill, np.uint8)
        cache: dict = {}
        for key, a, b in spans:
            tile = self.grid.tile_of(key)
            if tile not in cache:
                cache[tile] = np.load(Path(directory) / f"{tile_name(tile, self.grid.size)}.npz")
            arr = cache[tile][f"{key[0]}_{key[1]}"]
            if len(arr) != b - a:
                raise RuntimeError(f"{directory}: codes of base {key} do not match its points; delete the run "
                                   "directory and rerun")
            out[a:b] = arr
        return out

    def tiles(self) -> list[tuple[int, int]]:
        return sorted({self.grid.tile_of(k) for k in self.bases})

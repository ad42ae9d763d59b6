"""Square tiles with a halo, spilled to disk: bounded memory for files of any size.

Grid stages need the neighbourhood of every point, not the neighbourhood of the
point's position in the file: survey drives come back to the same street, so a
file's chunks are not spatial units. :class:`TileSpill` sorts the points of a
stream of chunks into square tiles on disk (each point in its own tile, and as
*halo* in every neighbouring tile within ``halo`` metres), so a tile can later
be loaded and processed alone with the context its edges need.

Memory follows the largest tile (plus a bounded write buffer), not the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from .kernels.grid import bin_points

__all__ = ["TileSpill", "read_exactly"]


def read_exactly(path, out: np.ndarray) -> bool:
    """Read the records file *path* into the contiguous array *out*; whether it held exactly ``out.nbytes``."""
    with open(path, "rb") as fh:
        got = fh.readinto(out.view(np.uint8))
        return got == out.nbytes and not fh.read(1)


class TileSpill:
    """Points spilled into tile files under *directory*.

    Parameters
    ----------
    directory : path
        An existing, empty directory (owned by the caller; e.g. a temporary one).
    tile : float
        Tile edge (m).
    halo : float
        Points this close to a neighbouring tile are also written there (m);
        must be smaller than *tile*.
    dtype : numpy structured dtype
        Record layout; must hold float fields ``x`` and ``y``. A bool field
        ``core`` is added: True in the point's own tile, False in a halo.
    buffer_bytes : int
        Records are buffered per tile and flushed when all buffers together
        exceed this.

    Examples
    --------
    >>> import tempfile
    >>> dt = np.dtype([("x", "f8"), ("y", "f8"), ("i", "i8")])
    >>> rec = np.zeros(3, dt); rec["x"] = [1.0, 9.5, 25.0]; rec["i"] = [0, 1, 2]
    >>> with tempfile.TemporaryDirectory() as d:
    ...     spill = TileSpill(d, tile=10.0, halo=1.0, dtype=dt)
    ...     spill.add(rec)
    ...     spill.flush()
    ...     owners = [(key, spill.load(key)["i"].tolist()) for key in spill.keys()]
    ...     halo = spill.load((1, 0))[["i", "core"]].tolist()
    >>> owners  # tiles owning points, with the halo points they hold
    [((0, 0), [0, 1]), ((2, 0), [2])]
    >>> halo  # point 1 lies within 1 m of tile (1, 0): there only as halo
    [(1, False)]
    """

    def __init__(self, directory, tile: float, halo: float, dtype, *, buffer_bytes: int = 64 << 20):
        if not tile > 0:
            raise ValueError(f"tile must be a positive size in metres, got {tile}")
        if not 0 <= halo < tile:
            raise ValueError(f"halo must be at least 0 and smaller than the tile ({tile} m), got {halo}")
        self.directory = Path(directory)
        self.tile = float(tile)
        self.halo = float(halo)
        fields = [(name, dtype.fields[name][0]) for name in dtype.names]
        self.dtype = np.dtype(fields + [("core", "?")])
        self._buffer_bytes = int(buffer_bytes)
        self._pending: dict[tuple[int, int], list[np.ndarray]] = {}
        self._pending_bytes = 0
        self._counts: dict[tuple[int, int], int] = {}
        self._core: dict[tuple[int, int], int] = {}

    def _path(self, key) -> Path:
        return self.directory / f"tile_{key[0]}_{key[1]}.bin"

    def add(self, records: np.ndarray) -> None:
        """Spill a chunk of records (their own tile, and halos).

        Records already in this spill's :attr:`dtype` (``core`` included) are
        not copied (without a halo their ``core`` flag is set to True): they
        may be kept until the next :meth:`flush`, so do not change them.
        """
        if not len(records):
            return
        x = records["x"]
        y = records["y"]
        tx = np.floor(x / self.tile).astype(np.int64)
        ty = np.floor(y / self.tile).astype(np.int64)
        if records.dtype == self.dtype:
            out = records
        else:
            out = np.empty(len(records), self.dtype)
            for name in records.dtype.names:
                out[name] = records[name]
        if self.halo == 0:  # every point in its own tile only
            out["core"] = True
            self._queue(out, tx, ty)
        else:
            fx = x - tx * self.tile  # position inside the own tile
            fy = y - ty * self.tile
            for dx in (-1, 0, 1):
                mx = np.ones(len(x), bool) if dx == 0 else (fx < self.halo if dx < 0 else fx >= self.tile - self.halo)
                for dy in (-1, 0, 1):
                    my = np.ones(len(y), bool) if dy == 0 else (fy < self.halo if dy < 0 else fy >= self.tile - self.halo)
                    sel = np.flatnonzero(mx & my)
                    if not len(sel):
                        continue
                    part = out[sel]
                    part["core"] = dx == 0 and dy == 0
                    self._queue(part, tx[sel] + dx, ty[sel] + dy)
        if self._pending_bytes > self._buffer_bytes:
            self.flush()

    def _queue(self, part, kx, ky) -> None:
        # the records tile by tile, each tile's in their order (a counting sort over the chunk's tile range;
        # a chunk of a drive spans few tiles)
        x0, y0 = int(kx.min()), int(ky.min())
        w = int(ky.max()) - y0 + 1
        ncell = (int(kx.max()) - x0 + 1) * w
        if ncell <= 4 * len(kx) + 4096:
            start, order = bin_points((kx - x0) * w + (ky - y0), ncell)
            cells = np.flatnonzero(start[1:] > start[:-1])
            spans = zip(start[cells].tolist(), start[cells + 1].tolist())
        else:
            key = kx * (1 << 32) + (ky & 0xFFFFFFFF)
            order = np.argsort(key, kind="stable")
            key = key[order]
            cuts = np.flatnonzero(np.diff(key)) + 1
            spans = zip(np.r_[0, cuts].tolist(), np.r_[cuts, len(key)].tolist())
        core = bool(part["core"][0])  # the same for the whole part
        for lo, hi in spans:
            i = order[lo]
            tk = (int(kx[i]), int(ky[i]))
            block = part[order[lo:hi]] if hi - lo < len(part) else part
            self._pending.setdefault(tk, []).append(block)
            self._pending_bytes += block.nbytes
            self._counts[tk] = self._counts.get(tk, 0) + len(block)
            if core:
                self._core[tk] = self._core.get(tk, 0) + len(block)

    def flush(self) -> None:
        """Write all buffered records to their tile files."""
        for key, blocks in self._pending.items():
            with open(self._path(key), "ab") as fh:
                for b in blocks:
                    fh.write(b.tobytes())
        self._pending.clear()
        self._pending_bytes = 0

    def keys(self) -> list[tuple[int, int]]:
        """Tiles that own at least one point, in row order."""
        return sorted(k for k, c in self._core.items() if c)

    def count(self, key) -> int:
        """Records in a tile (own points and halo)."""
        return self._counts.get(key, 0)

    def load(self, key) -> np.ndarray:
        """All records of tile *key* (call :meth:`flush` first)."""
        path = self._path(key)
        if not path.exists():
            return np.empty(0, self.dtype)
        return np.fromfile(path, dtype=self.dtype)

    def load_into(self, key, out: np.ndarray) -> None:
        """Read tile *key*'s records into *out* (a contiguous array of this spill's dtype and exactly
        :meth:`count` records), e.g. a slice of a buffer reused from tile to tile."""
        if out.dtype != self.dtype or len(out) != self.count(key) or not out.flags.c_contiguous:
            raise ValueError(f"tile {key}: need a contiguous array of {self.count(key)} records of the spill's dtype")
        if len(out) and not read_exactly(self._path(key), out):
            raise OSError(f"{self._path(key)}: the tile file does not hold {len(out)} records; it is damaged")

    def __iter__(self) -> Iterator[tuple[tuple[int, int], np.ndarray]]:
        for key in self.keys():
            yield key, self.load(key)

    def remove(self, key) -> None:
        """Delete a tile's file (disk space is released as tiles are done)."""
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass

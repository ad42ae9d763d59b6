"""Vehicle trajectories: reading, checking and interpolating at point times.

A :class:`Trajectory` is a time-sorted series of positions (project CRS) and
attitudes (roll, pitch, heading in radians; heading clockwise from grid north,
as surveyors and the ASCII format count it). It is read from

* ASCII: one sample per line, ``time x y z roll pitch heading``, separated by
  white space or commas, angles in degrees, heading clockwise from north;
  lines starting with ``#`` are comments; a first line of column names is
  allowed (and, if it names the seven columns, gives their order). A comment
  ``# crs: EPSG:25832`` records the CRS of x/y/z.
* Applanix SBET: binary records of 17 little-endian float64 (time, latitude,
  longitude, altitude, three velocities, roll, pitch, platform heading, wander
  angle, three accelerations, three angular rates), angles in radians, position
  geographic. Positions are converted to the project CRS and the true heading
  is turned into a grid heading (meridian convergence).

Interpolation is linear in position and attitude (angles unwrapped), fully
vectorised; asking for a time outside the trajectory is an error, because an
extrapolated position would silently put points in the wrong place.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pyproj

from . import _atomic
from .crs import PROJECT_CRS, crs_label, parse_crs, transformer
from .errors import EmptyInputError, InputFileNotFoundError, TrajectoryError, TrajectoryRangeError

__all__ = ["Trajectory", "DEFAULT_MAX_GAP", "SBET_DTYPE"]

logger = logging.getLogger(__name__)

#: Largest time step (s) accepted between consecutive samples. Survey
#: trajectories come at 50-200 Hz; a longer gap means missing data, and
#: positions inside it would be guesses.
DEFAULT_MAX_GAP = 2.0

#: One SBET record.
SBET_DTYPE = np.dtype(
    [
        ("time", "<f8"), ("lat", "<f8"), ("lon", "<f8"), ("alt", "<f8"),
        ("vel_x", "<f8"), ("vel_y", "<f8"), ("vel_z", "<f8"),
        ("roll", "<f8"), ("pitch", "<f8"), ("heading", "<f8"), ("wander", "<f8"),
        ("acc_x", "<f8"), ("acc_y", "<f8"), ("acc_z", "<f8"),
        ("rate_x", "<f8"), ("rate_y", "<f8"), ("rate_z", "<f8"),
    ]
)

_COLUMNS = ("time", "x", "y", "z", "roll", "pitch", "heading")
_ALIASES = {
    "t": "time", "gps_time": "time", "gpstime": "time", "time": "time",
    "x": "x", "easting": "x", "east": "x", "e": "x",
    "y": "y", "northing": "y", "north": "y", "n": "y",
    "z": "z", "height": "z", "h": "z", "alt": "z", "altitude": "z", "elevation": "z",
    "roll": "roll", "pitch": "pitch", "heading": "heading", "yaw": "heading",
}
_SPLIT = re.compile(r"[,\s]+")


class Trajectory:
    """Positions and attitudes of the survey vehicle over time.

    Parameters
    ----------
    time : array_like, shape (n,)
        Strictly increasing times in seconds (the same time base as the
        points' ``gps_time``).
    xyz : array_like, shape (n, 3)
        Positions in *crs*.
    roll, pitch, heading : array_like, shape (n,), optional
        Attitude in radians; heading clockwise from grid north. Zero if omitted.
    crs : pyproj.CRS, optional
        CRS of *xyz* (default EPSG:25832).
    source : str
        Name used in error messages (the file name when read from a file).
    max_gap : float
        Largest allowed step between samples in seconds.

    Raises
    ------
    hdmap.errors.TrajectoryError
        Fewer than two samples, NaN values, times not strictly increasing, or
        a gap longer than *max_gap*.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([0.0, 1.0, 2.0])
    >>> xyz = np.array([[0, 0, 0], [10, 0, 0], [20, 0, 0]], float)
    >>> tr = Trajectory(t, xyz, heading=np.radians([90, 90, 90]))
    >>> tr.position_at([0.5, 1.5])[:, 0].tolist()
    [5.0, 15.0]
    """

    __slots__ = ("time", "xyz", "roll", "pitch", "heading", "crs", "source", "lines")

    def __init__(self, time, xyz, roll=None, pitch=None, heading=None, *, crs=None, source: str = "trajectory",
                 max_gap: float = DEFAULT_MAX_GAP, lines=None):
        time = np.ascontiguousarray(time, dtype=np.float64)
        xyz = np.ascontiguousarray(xyz, dtype=np.float64)
        n = len(time)
        zeros = np.zeros(n)
        roll = zeros if roll is None else np.ascontiguousarray(roll, dtype=np.float64)
        pitch = zeros if pitch is None else np.ascontiguousarray(pitch, dtype=np.float64)
        heading = zeros if heading is None else np.ascontiguousarray(heading, dtype=np.float64)
        self.source = str(source)
        self.lines = None if lines is None else np.asarray(lines)
        if time.ndim != 1 or xyz.shape != (n, 3) or any(a.shape != (n,) for a in (roll, pitch, heading)):
            raise TrajectoryError(
                f"{source}: time must have shape (n,), xyz (n, 3) and the angles (n,); got time {time.shape}, "
                f"xyz {xyz.shape}, roll {roll.shape}, pitch {pitch.shape}, heading {heading.shape}"
            )
        if n == 0:
            raise EmptyInputError(f"{source}: the trajectory has no samples; check the export")
        if n < 2:
            raise TrajectoryError(f"{source}: a trajectory needs at least 2 samples to interpolate, got {n}")
        stacked = np.column_stack([time, xyz, roll, pitch, heading])
        bad_rows = ~np.isfinite(stacked).all(axis=1)
        if bad_rows.any():
            i = int(np.flatnonzero(bad_rows)[0])
            raise TrajectoryError(
                f"{source}: {int(bad_rows.sum())} samples hold NaN or infinite values (first {self._where(i)}); "
                "remove them or re-export the trajectory"
            )
        dt = np.diff(time)
        if (dt <= 0).any():
            i = int(np.flatnonzero(dt <= 0)[0])
            what = "repeats" if dt[i] == 0 else "goes back in time"
            raise TrajectoryError(
                f"{source}: time {what} at {self._where(i + 1)} (t={time[i + 1]:.6f} after t={time[i]:.6f}); "
                "a trajectory must be sorted by strictly increasing time: sort the file or re-export it"
            )
        if max_gap is not None and dt.max() > max_gap:
            i = int(np.argmax(dt))
            raise TrajectoryError(
                f"{source}: gap of {dt[i]:.3f} s between t={time[i]:.6f} and t={time[i + 1]:.6f} "
                f"({self._where(i)} and {self._where(i + 1)}), more than max_gap={max_gap:g} s "
                f"(median step {np.median(dt):.4f} s); positions inside the gap would be guesses. "
                "Re-export the trajectory without the gap, or accept it with a larger max_gap (--max-gap)"
            )
        self.time = time
        self.xyz = xyz
        self.roll = roll
        self.pitch = pitch
        self.heading = np.mod(heading, 2 * np.pi)
        self.crs = PROJECT_CRS if crs is None else parse_crs(crs, source=f"crs of {source}")

    def _where(self, i: int) -> str:
        if self.lines is not None:
            return f"line {int(self.lines[i])}"
        return f"sample {i}"

    def __len__(self) -> int:
        return len(self.time)

    def __repr__(self) -> str:
        return (f"<Trajectory {self.source!r} n={len(self)} t=[{self.time[0]:.3f}, {self.time[-1]:.3f}] "
                f"crs={crs_label(self.crs)}>")

    @property
    def span(self) -> tuple[float, float]:
        """``(first, last)`` sample time."""
        return float(self.time[0]), float(self.time[-1])

    @property
    def length_m(self) -> float:
        """Horizontal length of the driven path in metres."""
        return float(np.hypot(*np.diff(self.xyz[:, :2], axis=0).T).sum())

    # -- interpolation ------------------------------------------------------
    def _locate(self, t, source: str, tolerance: float):
        t = np.asarray(t, dtype=np.float64)
        t0, t1 = self.time[0], self.time[-1]
        outside = (t < t0 - tolerance) | (t > t1 + tolerance) | ~np.isfinite(t)
        if outside.any():
            n_out = int(outside.sum())
            bad = t[outside]
            raise TrajectoryRangeError(
                f"{n_out} of {t.size} {source} times lie outside the trajectory {self.source} "
                f"[{t0:.6f}, {t1:.6f}] (those times span {np.nanmin(bad):.6f} .. {np.nanmax(bad):.6f}); "
                "give the trajectory that covers this drive (same GPS time base), or crop the points to it"
            )
        tc = np.clip(t, t0, t1)
        idx = np.searchsorted(self.time, tc, side="right") - 1
        np.clip(idx, 0, len(self.time) - 2, out=idx)
        w = (tc - self.time[idx]) / (self.time[idx + 1] - self.time[idx])
        return idx, w

    def position_at(self, t, *, source: str = "point", tolerance: float = 0.0) -> np.ndarray:
        """Interpolated positions ``(m, 3)`` at times *t*.

        Raises
        ------
        hdmap.errors.TrajectoryRangeError
            If a time lies more than *tolerance* seconds outside the trajectory.
        """
        idx, w = self._locate(t, source, tolerance)
        a = self.xyz[idx]
        return a + (self.xyz[idx + 1] - a) * w[..., None]

    def attitude_at(self, t, *, source: str = "point", tolerance: float = 0.0) -> np.ndarray:
        """Interpolated ``(m, 3)`` roll, pitch, heading in radians (heading in [0, 2π))."""
        idx, w = self._locate(t, source, tolerance)
        return self._attitude(idx, w)

    def interpolate(self, t, *, source: str = "point", tolerance: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Positions ``(m, 3)`` and attitudes ``(m, 3)`` at times *t* in one pass."""
        idx, w = self._locate(t, source, tolerance)
        a = self.xyz[idx]
        return a + (self.xyz[idx + 1] - a) * w[..., None], self._attitude(idx, w)

    def _attitude(self, idx, w) -> np.ndarray:
        out = np.empty(idx.shape + (3,))
        for k, arr in enumerate((self.roll, self.pitch, self.heading)):
            a = arr[idx]
            d = np.angle(np.exp(1j * (arr[idx + 1] - a)))  # shortest way round
            out[..., k] = a + d * w
        h = np.mod(out[..., 2], 2 * np.pi)
        out[..., 2] = np.where(h < 2 * np.pi, h, 0.0)  # mod of a tiny negative angle rounds to 2 pi itself
        return out

    def direction_at(self, t, **kw) -> np.ndarray:
        """Unit driving direction (east, north) from the heading at times *t*."""
        h = self.attitude_at(t, **kw)[..., 2]
        return np.stack([np.sin(h), np.cos(h)], axis=-1)

    # -- conversion ---------------------------------------------------------
    def to_crs(self, crs) -> "Trajectory":
        """The same trajectory in another CRS (heading corrected for the change of grid north)."""
        dst = parse_crs(crs, source="to_crs")
        if dst.equals(self.crs):
            return self
        xyz = _transform(self.xyz, self.crs, dst)
        rot = _north_rotation(self.xyz, self.crs, dst)
        return Trajectory(self.time, xyz, self.roll, self.pitch, self.heading + rot, crs=dst,
                          source=self.source, max_gap=None, lines=self.lines)

    def crop(self, t0: float, t1: float) -> "Trajectory":
        """Samples in ``[t0, t1]`` plus one on each side, so interpolation over that span still works."""
        i0 = max(int(np.searchsorted(self.time, t0, side="right")) - 1, 0)
        i1 = min(int(np.searchsorted(self.time, t1, side="left")) + 1, len(self.time))
        sl = slice(i0, max(i1, i0 + 2))
        return Trajectory(self.time[sl], self.xyz[sl], self.roll[sl], self.pitch[sl], self.heading[sl], crs=self.crs,
                          source=self.source, max_gap=None, lines=None if self.lines is None else self.lines[sl])

    # -- files --------------------------------------------------------------
    @classmethod
    def read(cls, path, *, format: str | None = None, crs=None, to_crs=None, max_gap: float = DEFAULT_MAX_GAP) -> "Trajectory":
        """Read an ASCII or SBET trajectory.

        Parameters
        ----------
        path : str or path-like
        format : {'ascii', 'sbet'}, optional
            Default: ``sbet`` for ``.sbet``/``.out`` files, ASCII otherwise.
        crs : CRS-like, optional
            ASCII: CRS of x/y/z (default: the ``# crs:`` comment, else
            EPSG:25832). SBET: geographic CRS of the file (default EPSG:4979,
            WGS 84 3D).
        to_crs : CRS-like, optional
            Result CRS. SBET defaults to EPSG:25832.
        max_gap : float
            See :class:`Trajectory`.
        """
        path = Path(path)
        if not path.exists():
            raise InputFileNotFoundError(path, "trajectory file")
        if format is None:
            format = "sbet" if path.suffix.lower() in (".sbet", ".out") else "ascii"
        if format == "sbet":
            traj = _read_sbet(path, crs, to_crs, max_gap)
        elif format == "ascii":
            traj = _read_ascii(path, crs, max_gap)
            if to_crs is not None:
                traj = traj.to_crs(to_crs)
        else:
            raise ValueError(f"format must be 'ascii' or 'sbet', got {format!r}")
        logger.debug("read %r", traj)
        return traj

    def write_ascii(self, path) -> Path:
        """Write the ASCII format (degrees, heading clockwise from north), atomically."""
        lines = [
            "# hdmap trajectory: time x y z roll pitch heading (degrees, heading clockwise from grid north)",
            f"# crs: {crs_label(self.crs)}",
            "time x y z roll pitch heading",
        ]
        deg = np.degrees(np.column_stack([self.roll, self.pitch, self.heading]))
        body = np.column_stack([self.time, self.xyz, deg])
        text = "\n".join(lines) + "\n" + "\n".join(
            f"{r[0]:.6f} {r[1]:.4f} {r[2]:.4f} {r[3]:.4f} {r[4]:.5f} {r[5]:.5f} {r[6]:.5f}" for r in body
        ) + "\n"
        return _atomic.write_text_atomic(path, text)

    def write_sbet(self, path, *, geographic_crs="EPSG:4979") -> Path:
        """Write an Applanix SBET file (radians, WGS 84 lat/lon, true heading), atomically.

        Velocities are finite differences of the positions (x north, y east,
        z down; wander angle 0); accelerations and angular rates are zero.
        """
        geo = parse_crs(geographic_crs, source="geographic_crs")
        lonlat = _transform(self.xyz, self.crs, geo)
        rot = _north_rotation(self.xyz, self.crs, geo)  # grid -> true
        rec = np.zeros(len(self), dtype=SBET_DTYPE)
        rec["time"] = self.time
        rec["lat"] = np.radians(lonlat[:, 1])
        rec["lon"] = np.radians(lonlat[:, 0])
        rec["alt"] = lonlat[:, 2]
        vel = np.gradient(self.xyz, self.time, axis=0)
        rec["vel_x"], rec["vel_y"], rec["vel_z"] = vel[:, 1], vel[:, 0], -vel[:, 2]
        rec["roll"] = self.roll
        rec["pitch"] = self.pitch
        rec["heading"] = np.angle(np.exp(1j * (self.heading + rot)))  # (-pi, pi] as Applanix writes it
        return _atomic.write_bytes_atomic(path, rec.tobytes())


def _transform(xyz: np.ndarray, src: pyproj.CRS, dst: pyproj.CRS) -> np.ndarray:
    x, y, z = transformer(src, dst).transform(xyz[:, 0], xyz[:, 1], xyz[:, 2])
    return np.column_stack([x, y, z])


def _north_rotation(xyz: np.ndarray, src: pyproj.CRS, dst: pyproj.CRS) -> np.ndarray:
    """Angle (rad, clockwise) to add to a heading measured from *src*'s north to get one from *dst*'s north.

    Computed numerically: a short step towards *src* north is transformed and
    its bearing measured in *dst*. Geographic systems take north as increasing
    latitude (true north).
    """
    step = 1e-6 if src.is_geographic else 0.1
    tr = transformer(src, dst)
    x0, y0 = xyz[:, 0], xyz[:, 1]  # lon, lat in degrees for a geographic src (always_xy)
    ax, ay = tr.transform(x0, y0)
    bx, by = tr.transform(x0, y0 + step)
    ax, ay, bx, by = map(np.asarray, (ax, ay, bx, by))
    if dst.is_geographic:  # bearing on the ellipsoid: east scale N cos(lat), north scale M
        f = 1.0 / dst.ellipsoid.inverse_flattening if dst.ellipsoid.inverse_flattening else 0.0
        e2 = f * (2 - f)
        phi = np.radians(ay)
        dx = (bx - ax) * np.cos(phi) * (1 - e2 * np.sin(phi) ** 2) / (1 - e2)
        dy = by - ay
    else:
        dx, dy = bx - ax, by - ay
    return np.arctan2(dx, dy)


def _read_ascii(path: Path, crs, max_gap) -> Trajectory:
    text = path.read_text(encoding="utf-8", errors="replace")
    rows: list[list[float]] = []
    linenos: list[int] = []
    order = list(range(7))
    file_crs = None
    header_seen = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            m = re.match(r"#\s*crs\s*[:=]\s*(\S.*)$", line, flags=re.IGNORECASE)
            if m:
                file_crs = m.group(1).strip()
            continue
        tokens = [tok for tok in _SPLIT.split(line) if tok]
        try:
            values = [float(tok) for tok in tokens]
        except ValueError:
            if not rows and not header_seen:  # a column-name line
                header_seen = True
                names = [_ALIASES.get(tok.lower()) for tok in tokens]
                if all(names[:7]) and sorted(names[:7]) == sorted(_COLUMNS):
                    order = [names.index(c) for c in _COLUMNS]
                elif any(names):
                    raise TrajectoryError(
                        f"{path}: line {lineno}: header {line!r} does not name the 7 columns "
                        f"{' '.join(_COLUMNS)}; fix the header or make it a '#' comment"
                    ) from None
                continue
            raise TrajectoryError(
                f"{path}: line {lineno}: cannot read numbers from {line[:80]!r}; expected 7 columns "
                f"'{' '.join(_COLUMNS)}' separated by spaces or commas"
            ) from None
        if len(values) < 7:
            raise TrajectoryError(
                f"{path}: line {lineno}: {len(values)} columns, expected 7 ({' '.join(_COLUMNS)}); "
                "angles in degrees, heading clockwise from north"
            )
        rows.append(values[:7])  # further columns (e.g. accuracies) are ignored
        linenos.append(lineno)
    if not rows:
        raise EmptyInputError(f"{path}: no trajectory samples found (only comments or blank lines?)")
    arr = np.array(rows, dtype=np.float64)[:, order]
    if crs is None:
        crs = file_crs if file_crs is not None else PROJECT_CRS
    crs = parse_crs(crs, source=f"crs of {path}")
    ang = np.radians(arr[:, 4:7])
    return Trajectory(arr[:, 0], arr[:, 1:4], ang[:, 0], ang[:, 1], ang[:, 2], crs=crs, source=str(path),
                      max_gap=max_gap, lines=np.array(linenos))


def _read_sbet(path: Path, crs, to_crs, max_gap) -> Trajectory:
    size = os.path.getsize(path)
    if size == 0:
        raise EmptyInputError(f"{path}: the SBET file is empty")
    if size % SBET_DTYPE.itemsize:
        raise TrajectoryError(
            f"{path}: {size} bytes is not a whole number of {SBET_DTYPE.itemsize}-byte SBET records; "
            "the file is truncated or not an SBET (for text use format='ascii')"
        )
    rec = np.fromfile(path, dtype=SBET_DTYPE)
    lat, lon = np.degrees(rec["lat"]), np.degrees(rec["lon"])
    if not ((np.abs(lat) <= 90).all() and (np.abs(lon) <= 360).all()):
        raise TrajectoryError(
            f"{path}: latitude/longitude out of range (radians expected); is this an SBET file?"
        )
    geo = parse_crs("EPSG:4979" if crs is None else crs, source=f"crs of {path}")
    dst = parse_crs(PROJECT_CRS if to_crs is None else to_crs, source="to_crs")
    lonlat = np.column_stack([lon, lat, rec["alt"]])
    xyz = _transform(lonlat, geo, dst)
    rot = _north_rotation(lonlat, geo, dst)  # true -> grid
    return Trajectory(rec["time"], xyz, rec["roll"], rec["pitch"], rec["heading"] + rot, crs=dst, source=str(path),
                      max_gap=max_gap)

"""The point cloud: a struct of arrays with a CRS.

A :class:`PointCloud` holds ``xyz`` (``(n, 3)`` float64, project CRS) and named
attribute arrays using the LAS dimension names (``intensity``, ``gps_time``,
``return_number``, ``classification``, ``point_source_id``, extra-bytes
dimensions, ...). Stages take and return plain arrays; the cloud is only the
container that travels between reader, stages and writer.

When a cloud was read from a LAS/LAZ file it remembers the file's layout
(:class:`LasLayout`: point format, scales, offsets, extra dimensions, VLRs), so
the writer can give back every attribute exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import pyproj

from .errors import InvalidCoordinatesError

__all__ = ["PointCloud", "LasLayout"]


@dataclass(frozen=True, eq=False)
class LasLayout:
    """How the points were stored in the LAS/LAZ file they came from.

    Attributes
    ----------
    point_format : int
        LAS point data record format (0-10).
    version : str
        LAS version, e.g. ``"1.4"``.
    scales, offsets : ndarray
        Coordinate scale and offset of the source header; a cloud written
        back with unchanged coordinates reproduces the stored integers.
    extra_dims : tuple of (name, numpy dtype string, description)
        Extra-bytes dimensions of the source.
    header : laspy.LasHeader or None
        The source header itself, the template for writing (its other VLRs,
        system identifier, creation date, ...). Treat as read-only.
    """

    point_format: int
    version: str
    scales: np.ndarray
    offsets: np.ndarray
    extra_dims: tuple = ()
    header: Any = field(default=None, repr=False)


class PointCloud:
    """Points as a struct of arrays.

    Parameters
    ----------
    xyz : array_like, shape (n, 3)
        Coordinates in *crs*, converted to float64.
    attrs : mapping of str to array_like, optional
        Per-point attributes, each of length n, named as LAS dimensions.
    crs : pyproj.CRS, optional
        The coordinate system of *xyz*.
    layout : LasLayout, optional
        The LAS layout of the source file, kept for lossless writing.

    Raises
    ------
    hdmap.errors.InvalidCoordinatesError
        If *xyz* has the wrong shape or holds NaN or infinite values.
    ValueError
        If an attribute's length differs from the number of points.

    Examples
    --------
    >>> import numpy as np
    >>> pc = PointCloud(np.zeros((3, 3)), {"intensity": np.array([1, 2, 3], np.uint16)})
    >>> len(pc), pc.intensity.tolist()
    (3, [1, 2, 3])
    >>> len(pc[pc.intensity > 1])
    2
    """

    __slots__ = ("xyz", "attrs", "crs", "layout")

    def __init__(
        self,
        xyz,
        attrs: Mapping[str, Any] | None = None,
        *,
        crs: pyproj.CRS | None = None,
        layout: LasLayout | None = None,
        source: str = "xyz",
    ):
        xyz = np.ascontiguousarray(xyz, dtype=np.float64)
        if xyz.ndim != 2 or xyz.shape[1] != 3:
            raise InvalidCoordinatesError(f"{source}: expected an (n, 3) array of coordinates, got shape {xyz.shape}")
        finite = np.isfinite(xyz).all(axis=1)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise InvalidCoordinatesError(
                f"{source}: {len(bad)} of {len(xyz)} points have NaN or infinite coordinates "
                f"(first at index {bad[0]}: {xyz[bad[0]].tolist()}); drop or repair them before processing"
            )
        n = len(xyz)
        clean: dict[str, np.ndarray] = {}
        for name, arr in (attrs or {}).items():
            arr = np.asarray(arr)
            if arr.shape[:1] != (n,):
                raise ValueError(f"attribute {name!r} has length {arr.shape[:1]}, expected {n} (one value per point)")
            clean[name] = arr
        self.xyz = xyz
        self.attrs = clean
        self.crs = crs
        self.layout = layout

    # -- container protocol -------------------------------------------------
    def __len__(self) -> int:
        return len(self.xyz)

    def __getattr__(self, name: str) -> np.ndarray:
        # only called when normal lookup fails: expose attributes as properties
        try:
            return object.__getattribute__(self, "attrs")[name]
        except KeyError:
            raise AttributeError(
                f"point cloud has no attribute {name!r}; it has: {', '.join(sorted(self.attrs)) or 'none'}"
            ) from None

    def __getitem__(self, index) -> "PointCloud":
        """A new cloud with the points selected by a mask, slice or index array."""
        if isinstance(index, str):
            return self.attrs[index]
        return PointCloud._unchecked(
            self.xyz[index], {k: v[index] for k, v in self.attrs.items()}, self.crs, self.layout
        )

    def __contains__(self, name: str) -> bool:
        return name in self.attrs

    def __repr__(self) -> str:
        from .crs import crs_label

        return f"<PointCloud n={len(self)} crs={crs_label(self.crs)} attrs=[{', '.join(self.attrs)}]>"

    @classmethod
    def _unchecked(cls, xyz, attrs, crs, layout) -> "PointCloud":
        """Build without validation (the arrays come from a checked cloud)."""
        obj = object.__new__(cls)
        obj.xyz = np.ascontiguousarray(xyz)
        obj.attrs = attrs
        obj.crs = crs
        obj.layout = layout
        return obj

    # -- convenience --------------------------------------------------------
    @property
    def x(self) -> np.ndarray:
        return self.xyz[:, 0]

    @property
    def y(self) -> np.ndarray:
        return self.xyz[:, 1]

    @property
    def z(self) -> np.ndarray:
        return self.xyz[:, 2]

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mins, maxs)``, each of shape (3,). Raises ValueError on an empty cloud."""
        if len(self) == 0:
            raise ValueError("an empty point cloud has no bounds")
        return self.xyz.min(axis=0), self.xyz.max(axis=0)

    def copy(self) -> "PointCloud":
        return PointCloud._unchecked(self.xyz.copy(), {k: v.copy() for k, v in self.attrs.items()}, self.crs, self.layout)

    def with_attrs(self, **attrs) -> "PointCloud":
        """A shallow copy with attributes added or replaced."""
        new = dict(self.attrs)
        n = len(self)
        for name, arr in attrs.items():
            arr = np.asarray(arr)
            if arr.shape[:1] != (n,):
                raise ValueError(f"attribute {name!r} has length {arr.shape[:1]}, expected {n}")
            new[name] = arr
        return PointCloud._unchecked(self.xyz, new, self.crs, self.layout)

    @classmethod
    def concatenate(cls, clouds: Iterable["PointCloud"]) -> "PointCloud":
        """Join clouds that share CRS and attribute names (in the order given)."""
        clouds = list(clouds)
        if not clouds:
            raise ValueError("concatenate needs at least one point cloud")
        first = clouds[0]
        names = list(first.attrs)
        for c in clouds[1:]:
            if set(c.attrs) != set(names):
                raise ValueError(
                    f"cannot concatenate clouds with different attributes: {sorted(names)} vs {sorted(c.attrs)}"
                )
            if (c.crs is None) != (first.crs is None) or (c.crs is not None and not c.crs.equals(first.crs)):
                raise ValueError("cannot concatenate clouds in different CRSs; reproject them first")
        xyz = np.concatenate([c.xyz for c in clouds])
        attrs = {k: np.concatenate([c.attrs[k] for c in clouds]) for k in names}
        return cls._unchecked(xyz, attrs, first.crs, first.layout)

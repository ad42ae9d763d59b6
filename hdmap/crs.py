"""Coordinate reference systems: parsing user input and reprojecting points.

hdmap works in ETRS89 / UTM zone 32N (EPSG:25832) by default, the Bavarian
official frame. Inputs in other systems (e.g. DHDN / Gauss-Krüger zone 4,
EPSG:31468) are reprojected with pyproj, chunk by chunk, at the edges.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import pyproj
from pyproj.exceptions import CRSError as _PyprojCRSError

from .errors import CRSError

__all__ = ["PROJECT_CRS", "parse_crs", "crs_label", "epsg_code", "transformer", "transform_xyz"]

logger = logging.getLogger(__name__)

#: The default project CRS: ETRS89 / UTM zone 32N.
PROJECT_CRS = pyproj.CRS.from_epsg(25832)


def parse_crs(value, *, source: str = "crs") -> pyproj.CRS:
    """Turn user input into a :class:`pyproj.CRS`.

    Parameters
    ----------
    value : pyproj.CRS, int, or str
        An EPSG code (``25832`` or ``"EPSG:25832"``), a WKT or PROJ string, or a CRS.
    source : str
        What the value came from (an option or file name), quoted in the error.

    Raises
    ------
    hdmap.errors.CRSError
        If pyproj does not know the CRS.

    Examples
    --------
    >>> parse_crs("EPSG:25832").to_epsg()
    25832
    >>> parse_crs(31468).name
    'DHDN / 3-degree Gauss-Kruger zone 4'
    """
    if isinstance(value, pyproj.CRS):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        raise CRSError(f"{source}: no CRS given; give an EPSG code such as EPSG:25832")
    try:
        if isinstance(value, (int, np.integer)):
            return pyproj.CRS.from_epsg(int(value))
        text = str(value).strip()
        if text.isdigit():
            return pyproj.CRS.from_epsg(int(text))
        return pyproj.CRS.from_user_input(text)
    except _PyprojCRSError as exc:
        raise CRSError(
            f"{source}: unknown CRS {value!r} ({_first_line(exc)}); "
            "give an EPSG code such as EPSG:25832, or a WKT/PROJ string"
        ) from None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def epsg_code(crs: pyproj.CRS | None) -> int | None:
    """The EPSG code of *crs* if it has one (horizontal part of a compound CRS too)."""
    if crs is None:
        return None
    code = crs.to_epsg(min_confidence=70)
    if code is None and crs.is_compound:
        for sub in crs.sub_crs_list:
            if sub.is_projected or sub.is_geographic:
                return sub.to_epsg(min_confidence=70)
    return code


def crs_label(crs: pyproj.CRS | None) -> str:
    """Short text for people: ``'EPSG:25832'`` or the CRS name, ``'none'`` if missing."""
    if crs is None:
        return "none"
    code = crs.to_epsg(min_confidence=70)
    if code is not None:
        return f"EPSG:{code}"
    if crs.is_compound:
        parts = [crs_label(sub) for sub in crs.sub_crs_list]
        return " + ".join(parts)
    return crs.name


@functools.lru_cache(maxsize=32)
def _cached_transformer(src_wkt: str, dst_wkt: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(
        pyproj.CRS.from_wkt(src_wkt), pyproj.CRS.from_wkt(dst_wkt), always_xy=True
    )


def transformer(src: pyproj.CRS, dst: pyproj.CRS) -> pyproj.Transformer:
    """A cached ``always_xy`` transformer from *src* to *dst*."""
    return _cached_transformer(src.to_wkt(), dst.to_wkt())


#: Points transformed per pyproj call; bounds the temporary memory of a reprojection.
TRANSFORM_CHUNK = 1_000_000


def transform_xyz(xyz: np.ndarray, src: pyproj.CRS, dst: pyproj.CRS, *, chunk_size: int = TRANSFORM_CHUNK) -> np.ndarray:
    """Reproject an ``(n, 3)`` float64 array from *src* to *dst*.

    Heights pass through unchanged unless both systems have a vertical component
    pyproj can relate. The work is done in slices of *chunk_size* points so the
    temporary arrays stay small; the result is a new array.
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    out = np.empty_like(xyz)
    if src.equals(dst):
        out[:] = xyz
        return out
    tr = transformer(src, dst)
    for start in range(0, len(xyz), chunk_size):
        part = xyz[start : start + chunk_size]
        x, y, z = tr.transform(part[:, 0], part[:, 1], part[:, 2], errcheck=False)
        out[start : start + chunk_size, 0] = x
        out[start : start + chunk_size, 1] = y
        out[start : start + chunk_size, 2] = z
    if not np.isfinite(out).all():
        bad = int((~np.isfinite(out).all(axis=1)).sum())
        raise CRSError(
            f"reprojection {crs_label(src)} -> {crs_label(dst)} failed for {bad} of {len(xyz)} points "
            "(outside the area of use of the source or target CRS?); check the source CRS of the input"
        )
    return out

"""Exports of a :class:`~hdmap.LaneMap` for other tools, and readers back into one.

- :mod:`hdmap.export.lanelet2` — Lanelet2 OSM (WGS84 lat/lon nodes, projection origin near the data).
- :mod:`hdmap.export.opendrive` — ASAM OpenDRIVE 1.8 (default) or 1.6, georeferenced.
- GeoJSON and GeoPackage are the LaneMap's own formats (:meth:`~hdmap.LaneMap.to_geojson`,
  :meth:`~hdmap.LaneMap.to_gpkg`).

:func:`export` writes any of the four from a map or from a directory written by
``hdmap extract``; it is what ``hdmap export`` calls.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import FileFormatError
from ..lanemap import LaneMap
from .lanelet2 import read_lanelet2, write_lanelet2
from .opendrive import read_opendrive, write_opendrive

__all__ = ["FORMATS", "export", "load_result", "read_lanelet2", "read_opendrive", "write_lanelet2",
           "write_opendrive"]

#: Output formats of :func:`export`, with the file suffix each one usually has.
FORMATS = {"lanelet2": ".osm", "opendrive": ".xodr", "gpkg": ".gpkg", "geojson": ""}


def load_result(path: str | os.PathLike) -> LaneMap:
    """Read a LaneMap from a result directory (GeoJSON layers), a GeoPackage, a Lanelet2 ``.osm`` or an ``.xodr``."""
    path = Path(path)
    if path.is_dir():
        if not any((path / f"{layer}.geojson").exists() for layer in ("boundaries", "curbs", "lanes")):
            gpkg = path / "map.gpkg"
            if gpkg.exists():
                return LaneMap.from_gpkg(gpkg)
            raise FileFormatError(
                f"{path}: no boundaries.geojson, curbs.geojson, lanes.geojson or map.gpkg here; "
                "give a directory written by `hdmap extract`")
        return LaneMap.from_geojson(path)
    suffix = path.suffix.lower()
    if suffix == ".gpkg":
        return LaneMap.from_gpkg(path)
    if suffix == ".osm":
        return read_lanelet2(path)
    if suffix == ".xodr":
        return read_opendrive(path)
    return LaneMap.from_geojson(path)


def export(lanemap: LaneMap | str | os.PathLike, fmt: str, out: str | os.PathLike, **options) -> Path:
    """Write *lanemap* (a LaneMap, or a result directory / GeoPackage to read one from) as *fmt* to *out*.

    Parameters
    ----------
    lanemap : LaneMap or path
    fmt : {"lanelet2", "opendrive", "gpkg", "geojson"}
    out : path
        Output file (a directory for ``geojson``). Written atomically (``geojson``: each layer file).
    **options
        Passed to the writer, e.g. ``version="1.6"`` for OpenDRIVE or ``autoware=True`` for Lanelet2.

    Returns
    -------
    Path
        The path written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    m = lanemap if isinstance(lanemap, LaneMap) else load_result(lanemap)
    out = Path(out)
    if m.metadata.get("georeferenced") is False and fmt in ("lanelet2", "opendrive"):
        src = m.metadata.get("file") or (lanemap if not isinstance(lanemap, LaneMap) else "the map")
        raise FileFormatError(
            f"{src}: has no geoReference, so its coordinates are local, not EPSG:{m.epsg}; a {fmt} export would "
            "place it at the wrong spot on Earth. Georeference the source first, or export as gpkg/geojson")
    if fmt == "geojson":
        if options:
            raise TypeError(f"geojson export takes no options, got {', '.join(options)}")
        m.to_geojson(out)
        return out
    if fmt == "gpkg":
        if options:
            raise TypeError(f"gpkg export takes no options, got {', '.join(options)}")
        return m.to_gpkg(out)
    if fmt == "lanelet2":
        return write_lanelet2(m, out, **options)
    return write_opendrive(m, out, **options)

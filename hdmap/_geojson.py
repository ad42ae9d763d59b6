"""Small, deterministic GeoJSON writing (projected CRS named the GDAL way)."""

from __future__ import annotations

import json
import math

import numpy as np

from ._atomic import write_text_atomic

__all__ = ["line_geometry", "polygon_geometry", "write_features", "read_features", "crs_member"]

_DECIMALS = 4  # 0.1 mm in a projected CRS


def _coords(xyz) -> list:
    arr = np.asarray(xyz, dtype=np.float64)
    return [[round(float(v), _DECIMALS) for v in row] for row in arr]


def line_geometry(xyz) -> dict:
    return {"type": "LineString", "coordinates": _coords(xyz)}


def polygon_geometry(rings) -> dict:
    """Polygon from a list of rings (first exterior); rings are closed if needed."""
    out = []
    for ring in rings:
        r = _coords(ring)
        if r[0] != r[-1]:
            r.append(list(r[0]))
        out.append(r)
    return {"type": "Polygon", "coordinates": out}


def crs_member(epsg: int) -> dict:
    return {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"}}


def _clean(value):
    if isinstance(value, (np.floating,)):
        value = float(value)
    if isinstance(value, (np.integer,)):
        value = int(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def write_features(path, features, *, epsg: int = 25832, name: str | None = None):
    """Write ``[(geometry, properties), ...]`` as a FeatureCollection, atomically and byte-stably."""
    fc = {"type": "FeatureCollection"}
    if name:
        fc["name"] = name
    fc["crs"] = crs_member(epsg)
    fc["features"] = [{"type": "Feature", "properties": _clean(props), "geometry": geom} for geom, props in features]
    return write_text_atomic(path, json.dumps(fc, ensure_ascii=False, separators=(",", ":")) + "\n")


def read_features(path):
    """``(features, epsg)`` of a GeoJSON file written by :func:`write_features` (or any FeatureCollection)."""
    with open(path, encoding="utf-8") as fh:
        fc = json.load(fh)
    epsg = None
    name = fc.get("crs", {}).get("properties", {}).get("name", "")
    if "EPSG" in name:
        epsg = int(name.rsplit(":", 1)[-1])
    return fc.get("features", []), epsg

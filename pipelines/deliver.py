"""Delivery packages: the map cut per municipality and for the whole field, each with a manifest.

``deliveries/<AGS>_<name>/`` holds the part of the map inside that
municipality (cut at its border with a shared vertex, see
:mod:`hdmap.pipelines.partition`); ``deliveries/tempus/`` the whole map.
Each has the campaign's formats (``map.osm``, ``map.xodr``, ``map.gpkg``) and a
``manifest.json``: sha256 and size of every file, CRS, extent (project CRS and
WGS 84), software version, campaign name and hash, source drives, a QA summary
and the data licence and attributions. Nothing in a manifest depends on the
time or place of the run, so a rerun gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from hdmap import __version__
from hdmap._atomic import write_text_atomic
from hdmap.export import export
from hdmap.municipalities import BUNDLED_ATTRIBUTION, load_municipalities

from .campaign import Campaign

__all__ = ["write_deliveries", "write_delivery", "map_stats", "WHOLE"]

logger = logging.getLogger("hdmap.pipelines")

WHOLE = "tempus"
"""Directory name of the whole-field delivery."""
_FILES = {"lanelet2": "map.osm", "opendrive": "map.xodr", "gpkg": "map.gpkg"}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def map_stats(m) -> dict:
    """Counts and lengths of a map (the QA summary of a manifest)."""
    km: dict = {}
    for b in m.boundaries:
        key = b.kind if not b.kind.startswith("line") else f"{b.kind}_{b.pattern}"
        km[key] = km.get(key, 0.0) + b.length / 1000.0
    lane_km = sum(float(np.hypot(*np.diff(ln.centerline[:, :2], axis=0).T).sum()) for ln in m.lanes) / 1000.0
    kinds: dict = {}
    for mk in m.markings:
        key = "arrow" if mk.type.startswith("arrow") else mk.type
        kinds[key] = kinds.get(key, 0) + 1
    return {"boundaries": len(m.boundaries), "boundary_km": {k: round(v, 4) for k, v in sorted(km.items())},
            "lanes": len(m.lanes), "lane_km": round(lane_km, 4), "markings": dict(sorted(kinds.items()))}


def _extent(m, crs) -> dict | None:
    from hdmap.crs import parse_crs, transformer

    pts = [b.xyz[:, :2] for b in m.boundaries] + [ln.centerline[:, :2] for ln in m.lanes] + \
        [mk.polygon[:, :2] for mk in m.markings]
    if not pts:
        return None
    xy = np.vstack(pts)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    lon, lat = transformer(crs, parse_crs("EPSG:4326")).transform([lo[0], hi[0], lo[0], hi[0]], [lo[1], lo[1], hi[1], hi[1]])
    return {"project": [round(float(v), 3) for v in (*lo, *hi)],
            "wgs84_lonlat": [round(min(lon), 7), round(min(lat), 7), round(max(lon), 7), round(max(lat), 7)]}


def write_delivery(job: tuple) -> Path:
    """One delivery package (a task: runs on the run's executor)."""
    return _write(*job)


def _write(c: Campaign, directory: Path, m, key: str, region_name: str | None, licence_note: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    skipped = {}
    for fmt in c.formats:
        if fmt not in _FILES:
            continue
        if fmt in ("lanelet2", "opendrive") and not m.lanes:
            skipped[fmt] = "no lanes in this part of the map"
            logger.warning("delivery %s: no lanes, so no %s file", key, fmt)
            (directory / _FILES[fmt]).unlink(missing_ok=True)
            (directory / (_FILES[fmt] + ".origin.json")).unlink(missing_ok=True)
            continue
        export(m, fmt, directory / _FILES[fmt])
    files = {p.name: {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in sorted(directory.iterdir())
             if p.is_file() and p.name != "manifest.json" and not p.name.startswith(".")}
    manifest = {
        "delivery": key,
        "region": region_name,
        "campaign": {"name": c.name, "hash": c.hash},
        "software": {"name": "hdmap", "version": __version__},
        "crs": {"epsg": c.crs.to_epsg(), "name": c.crs.name,
                "heights": "as in the source drives (DHHN2016 for TEMPUS surveys)"},
        "extent": _extent(m, c.crs),
        "source_drives": [{"name": d.name, "laz": [p.name for p in d.laz],
                           "trajectory": None if d.trajectory is None else d.trajectory.name} for d in c.drives],
        "qa": map_stats(m),
        "licence": {"data": c.data_licence or None, "attribution": licence_note},
        "files": dict(sorted(files.items())),
        "not_written": skipped,
    }
    write_text_atomic(directory / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True,
                                                              ensure_ascii=False) + "\n")
    return directory


def write_deliveries(c: Campaign, out: Path, lanemap, tiles: list[dict], submit=None):
    """Cut *lanemap* by municipality and write every delivery.

    Returns (parts, {key: directory or future}, municipalities). With *submit*
    (an executor's ``submit``) the packages are written as tasks and the values
    are futures of their directories. *tiles* (``{"key", "bounds", ...}``) get a
    ``region``: the municipality holding the tile's centre.
    """
    import shapely

    munis = load_municipalities(c.municipalities_file, crs=c.crs)
    attribution = c.attribution or "; ".join(sorted({m.license for m in munis if m.license}))
    if c.municipalities_file is None and not c.attribution:
        attribution = BUNDLED_ATTRIBUTION
    note = f"Map: derived from the {c.name} survey. {attribution}"
    for t in tiles:
        x0, y0, x1, y1 = t["bounds"]
        centre = shapely.Point(0.5 * (x0 + x1), 0.5 * (y0 + y1))
        t["region"] = next((m.slug for m in munis if m.geometry.covers(centre)), None)
    ddir = out / "deliveries"
    parts = {}
    jobs = []
    if c.per_municipality:
        from .partition import partition

        parts = partition(lanemap, [(m.slug, m.geometry) for m in munis])
        names = {m.slug: m.name for m in munis}
        jobs = [(c, ddir / key, part, key, names[key], note) for key, part in parts.items()]
    jobs.append((c, ddir / WHOLE, lanemap, WHOLE, None, note))
    run = submit or (lambda fn, job: fn(job))
    # the whole field first: it is the largest
    deliveries = {job[3]: run(write_delivery, job) for job in jobs[::-1]}
    return parts, dict(sorted(deliveries.items(), key=lambda kv: (kv[0] == WHOLE, kv[0]))), munis

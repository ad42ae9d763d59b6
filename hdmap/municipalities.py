"""Municipal boundaries of the test field (for partitioning deliveries by owner).

The bundled file is a simplified copy of BKG VG250 (dl-de/by-2-0, © GeoBasis-DE /
BKG, Daten verändert); a campaign can name the official boundaries instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import shapely

from .crs import PROJECT_CRS, parse_crs, transformer
from .errors import ConfigError, InputFileNotFoundError

__all__ = ["Municipality", "load_municipalities", "BUNDLED_ATTRIBUTION"]

BUNDLED_ATTRIBUTION = ("Municipal boundaries: © GeoBasis-DE / BKG (Daten verändert), "
                       "Datenlizenz Deutschland – Namensnennung – Version 2.0 (dl-de/by-2-0)")


@dataclass(frozen=True)
class Municipality:
    name: str
    ags: str
    geometry: object  # shapely polygon in the requested CRS
    license: str

    @property
    def slug(self) -> str:
        """Directory name for deliveries: ``<AGS>_<name>`` in ASCII (``09162000_Muenchen``)."""
        name = self.name
        for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("Ä", "Ae"), ("Ö", "Oe"), ("Ü", "Ue"), ("ß", "ss")):
            name = name.replace(a, b)
        safe = "".join(c if (c.isascii() and c.isalnum()) else "_" for c in name)
        while "__" in safe:
            safe = safe.replace("__", "_")
        return f"{self.ags}_{safe.strip('_')}"


def load_municipalities(path=None, *, crs=PROJECT_CRS) -> list[Municipality]:
    """Read municipality polygons (GeoJSON with ``name`` and ``ags`` properties) into *crs*.

    Without *path* the bundled TEMPUS file is used. Coordinates in the file are
    taken as WGS 84 lon/lat unless the file names another CRS.
    """
    if path is None:
        text = resources.files("hdmap").joinpath("data/tempus-municipalities.geojson").read_text(encoding="utf-8")
        source = "bundled tempus-municipalities.geojson"
    else:
        path = Path(path)
        if not path.exists():
            raise InputFileNotFoundError(path, "municipality boundary file")
        text = path.read_text(encoding="utf-8")
        source = str(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not valid GeoJSON ({exc})") from None
    src = "EPSG:4326"
    name = data.get("crs", {}).get("properties", {}).get("name", "")
    if name and "CRS84" not in name:
        src = name
    tr = transformer(parse_crs(src, source=f"crs of {source}"), parse_crs(crs))
    out = []
    for i, feat in enumerate(data.get("features", [])):
        props = feat.get("properties") or {}
        if "name" not in props or "ags" not in props:
            raise ConfigError(f"{source}: feature {i} lacks a 'name' or 'ags' property; both are needed")
        geom = shapely.geometry.shape(feat["geometry"])
        geom = shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
        out.append(Municipality(str(props["name"]), str(props["ags"]), shapely.make_valid(geom),
                                str(props.get("license", ""))))
    if not out:
        raise ConfigError(f"{source}: no municipality polygons found")
    return out

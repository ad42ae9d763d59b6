"""Grass canopy returns stay above the verge: a grazing ray meets the canopy at the verge's edge, not over the asphalt."""

from __future__ import annotations

import laspy
import numpy as np
import pytest
import shapely

from hdmap import LaneMap
from hdmap.classes import Class


def test_verge_returns_do_not_reach_over_the_carriageway(scene):
    name, out, drives, _ = scene
    truth = LaneMap.from_geojson(out / "truth")
    borders = [b for b in truth.curbs if b.kind == "road_border"]
    if not borders:
        pytest.skip(f"{name} has no unmarked road edge next to a verge")
    las = laspy.read(drives[0])
    cls = np.load(out / "truth" / "classes_0.npy")
    xy = np.column_stack([las.x, las.y])
    carriageway = shapely.Polygon(np.vstack([borders[0].xyz[:, :2], borders[1].xyz[::-1, :2]]))
    if not carriageway.is_valid:
        carriageway = shapely.Polygon(np.vstack([borders[0].xyz[:, :2], borders[1].xyz[:, :2]]))
    assert carriageway.is_valid and carriageway.area > 1000
    inner = carriageway.buffer(-0.05)
    verge = np.flatnonzero(cls == int(Class.GROUND))
    assert len(verge) > 1000
    inside = shapely.contains_xy(inner, xy[verge, 0], xy[verge, 1])
    # before the fix, canopy returns of grazing rays landed up to 0.6 m over the asphalt (7 % of them on a 150 m motorway drive)
    assert inside.mean() < 0.002, f"{inside.sum()} of {len(verge)} verge returns lie over the carriageway"

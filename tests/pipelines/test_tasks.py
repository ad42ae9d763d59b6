"""Helpers of the tile tasks against plain NumPy."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

tasks = importlib.import_module("hdmap.pipelines.tasks")


@pytest.mark.parametrize("n", [0, 1, 1000])
@pytest.mark.parametrize("spread", [50.0, 1e5])  # a tile's extent (a table of cells), and a huge one (sorted)
def test_unique_cells_match_numpy(n, spread):
    rng = np.random.default_rng(n)
    xy = rng.normal(0, spread, (n, 2)) + [691_000.0, 5_338_000.0]
    got = tasks._unique_cells(xy, 0.5)
    ref = np.unique(np.floor(xy / 0.5).astype(np.int64), axis=0)
    assert got.dtype == np.int64 and got.shape == (len(ref), 2)
    np.testing.assert_array_equal(got, ref)


def test_cloud_and_coordinates_gathered_from_records():
    rng = np.random.default_rng(3)
    rec = np.zeros(50, [("x", "f8"), ("y", "f8"), ("z", "f8"), ("intensity", "u2"), ("drive", "u1")])
    for f in ("x", "y", "z"):
        rec[f] = rng.uniform(0, 1e6, 50)
    rec["intensity"] = rng.integers(0, 65535, 50)
    idx = np.array([7, 3, 3, 49, 0])
    cloud = tasks._cloud(rec, idx, ["intensity"], None)
    np.testing.assert_array_equal(cloud.xyz, np.column_stack([rec["x"], rec["y"], rec["z"]])[idx])
    np.testing.assert_array_equal(cloud.attrs["intensity"], rec["intensity"][idx])
    assert cloud.xyz.flags.c_contiguous and cloud.attrs["intensity"].flags.c_contiguous
    loc = tasks._xyz(rec, idx, (100.0, 200.0))
    np.testing.assert_array_equal(loc, np.column_stack([rec["x"][idx] - 100.0, rec["y"][idx] - 200.0,
                                                        rec["z"][idx]]))

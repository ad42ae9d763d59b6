"""LAS record packing against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from hdmap.kernels.las import scaled_ints


def reference(xyz, offsets, scales):
    return np.round((xyz - offsets) / scales)


@pytest.mark.parametrize("n", [0, 1, 1000])
def test_scaled_ints_match_numpy_round_half_even(n):
    rng = np.random.default_rng(n)
    offsets = np.array([691000.0, 5343000.0, 0.0])
    xyz = offsets + rng.uniform(-2000, 2000, (n, 3))
    if n > 4:
        xyz[:4] = offsets + [[0.0005, 0.0015, -0.0025]] * 4  # exact ties at 1 mm go to even
    scales = np.array([0.001, 0.001, 0.001])
    out = np.zeros((3, n), np.int32)
    assert scaled_ints(xyz, offsets, scales, *out)
    np.testing.assert_array_equal(out.T, reference(xyz, offsets, scales).astype(np.int32))


def test_scaled_ints_write_into_a_structured_record():
    rec = np.zeros(3, dtype=[("X", "<i4"), ("Y", "<i4"), ("Z", "<i4"), ("intensity", "<u2")])
    xyz = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 1e6], [2.147e6, -2.147e6, 0.0]])
    assert scaled_ints(xyz, [0, 0, 0], [0.001, 0.01, 0.01], rec["X"], rec["Y"], rec["Z"])
    assert rec["X"].tolist() == [1000, -1000, 2147000000] and rec["Z"].tolist() == [300, 100000000, 0]
    assert rec["intensity"].tolist() == [0, 0, 0]


@pytest.mark.parametrize("bad", [np.nan, np.inf, 2.2e6, -2.2e6])
def test_scaled_ints_refuse_what_int32_cannot_hold(bad):
    xyz = np.zeros((5, 3))
    xyz[3, 1] = bad
    out = np.zeros((3, 5), np.int32)
    assert not scaled_ints(xyz, [0, 0, 0], [0.001, 0.001, 0.001], *out)

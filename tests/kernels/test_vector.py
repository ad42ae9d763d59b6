"""Vectorisation kernels against slow, obviously correct references."""

from __future__ import annotations

import numpy as np
import pytest

from hdmap.kernels.vector import axis_profile, sparse_components


def _ref_components(ix, iy, r):
    """Union-find over every pair of cells (O(n^2)), then labels in order of each component's smallest (iy, ix)."""
    cells = sorted(set(zip(iy.tolist(), ix.tolist())))
    parent = list(range(len(cells)))

    def find(a):
        while parent[a] != a:
            a = parent[a]
        return a

    for i, (yi, xi) in enumerate(cells):
        for j in range(i + 1, len(cells)):
            yj, xj = cells[j]
            if max(abs(yi - yj), abs(xi - xj)) <= r:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    roots = {}
    lab_of = {}
    for i, c in enumerate(cells):
        rt = find(i)
        roots.setdefault(rt, len(roots))
        lab_of[c] = roots[rt]
    return np.array([lab_of[(y, x)] for y, x in zip(iy.tolist(), ix.tolist())]), len(roots)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("radius", [1, 2, 3])
def test_sparse_components_match_reference(seed, radius):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    ix = rng.integers(-40, 40, n)
    iy = rng.integers(-40, 40, n)
    lab, k = sparse_components(ix, iy, radius)
    ref, kr = _ref_components(ix, iy, radius)
    assert k == kr
    np.testing.assert_array_equal(lab, ref)


def test_sparse_components_edge_cases():
    lab, k = sparse_components(np.array([], np.int64), np.array([], np.int64), 2)
    assert k == 0 and len(lab) == 0
    lab, k = sparse_components(np.array([5]), np.array([7]), 1)
    assert k == 1 and lab.tolist() == [0]
    # all points in one cell, and huge (UTM-sized, 5 cm) cell coordinates
    big = np.full(10, 13_840_000)
    lab, k = sparse_components(big, big + 1, 1)
    assert k == 1 and (lab == 0).all()
    lab, k = sparse_components(np.array([10**8, 10**8 + 2, 10**8 + 5]), np.array([0, 0, 0]), 2)
    assert lab.tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="radius"):
        sparse_components(np.array([1]), np.array([1]), 0)


def test_sparse_components_independent_of_order():
    rng = np.random.default_rng(3)
    ix, iy = rng.integers(0, 60, 500), rng.integers(0, 60, 500)
    lab, _ = sparse_components(ix, iy, 2)
    perm = rng.permutation(500)
    lab2, _ = sparse_components(ix[perm], iy[perm], 2)
    np.testing.assert_array_equal(lab[perm], lab2)


@pytest.mark.parametrize("seed", range(4))
def test_axis_profile_matches_reference(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 400))
    u = rng.uniform(-1, 6, n)
    v = rng.normal(0.3, 0.05, n)
    z = rng.normal(480, 0.01, n)
    step, lo, nb = 0.25, 0.0, 20
    c, w, zm, cnt = axis_profile(u, v, z, step, lo, nb, 3)
    for k in range(nb):
        m = (u >= lo + k * step) & (u < lo + (k + 1) * step)
        assert cnt[k] == m.sum()
        if m.sum() >= 3:
            assert c[k] == pytest.approx(v[m].mean(), abs=1e-12)
            assert w[k] == pytest.approx(np.sqrt(12 * v[m].var()), abs=1e-12)
            assert zm[k] == pytest.approx(z[m].mean(), abs=1e-9)
        else:
            assert np.isnan(c[k]) and np.isnan(w[k])


def test_axis_profile_width_of_a_uniform_strip():
    rng = np.random.default_rng(0)
    u = rng.uniform(0, 10, 200_000)
    v = rng.uniform(-0.06, 0.06, 200_000)  # a 0.12 m Schmalstrich
    _, w, _, _ = axis_profile(u, v, np.zeros_like(u), 0.5, 0.0, 20, 3)
    assert np.all(np.abs(w - 0.12) < 0.003)

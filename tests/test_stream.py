"""Planning the blocks of :func:`hdmap.stream.classify_file`: work, memory bound, shape."""

from __future__ import annotations

import numpy as np
import pytest

from hdmap.stream import _block_loads, plan_blocks


def _brute_loads(counts: dict, kx: int, ky: int, ring: int) -> tuple[int, int, int]:
    own = {(tx // kx, ty // ky) for tx, ty in counts}
    loads = [sum(v for (tx, ty), v in counts.items()
                 if bx * kx - ring <= tx < (bx + 1) * kx + ring and by * ky - ring <= ty < (by + 1) * ky + ring)
             for bx, by in own]
    return sum(loads), max(loads), len(own)


@pytest.mark.parametrize("seed", range(40))
def test_block_loads_count_every_tile_in_every_ring_it_falls_in(seed):
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(-9, 9, (int(rng.integers(1, 50)), 2)), axis=0)
    vals = rng.integers(1, 1000, len(keys))
    kx, ky, ring = (int(v) for v in rng.integers(1, 6, 3) - [0, 0, 1])
    counts = {tuple(k): int(v) for k, v in zip(keys.tolist(), vals.tolist())}
    assert _block_loads(keys, vals, kx, ky, ring) == _brute_loads(counts, kx, ky, ring)


def _band(direction: str, length: int = 40, width: int = 6, per_tile: int = 1000) -> dict:
    """Base tiles of a street survey: a band of tiles along x, along y or along the diagonal (across: 11 to
    16, not aligned with blocks of any common size)."""
    out = {}
    for a in range(length):
        for b in range(11, 11 + width):
            key = {"x": (a, b), "y": (b, a), "diagonal": (a + b // 2, a - (b + 1) // 2)}[direction]
            out[key] = per_tile
    return out


@pytest.mark.parametrize("direction", ["x", "y"])
def test_blocks_along_a_street_are_long_and_as_wide_as_it(direction):
    counts = _band(direction, width=10)
    budget = 120_000  # 120 tiles with the ring: 8 tiles of the band's length (and 2 x 2 of ring) at most
    kx, ky, fullest = plan_blocks(counts, 5.0, 8.0, 100.0, budget)
    assert fullest <= budget
    across = {ty // ky for _, ty in counts} if direction == "x" else {tx // kx for tx, _ in counts}
    assert len(across) == 1  # the band's whole width in one row of blocks
    work = _block_loads(np.array(list(counts)), np.array(list(counts.values())), kx, ky, 2)[0]
    square = min(_block_loads(np.array(list(counts)), np.array(list(counts.values())), k, k, 2)[0]
                 for k in range(1, 21)
                 if _block_loads(np.array(list(counts)), np.array(list(counts.values())), k, k, 2)[1] <= budget)
    assert work < 0.8 * square


def test_a_diagonal_street_still_gets_blocks_within_the_budget():
    counts = _band("diagonal")
    kx, ky, fullest = plan_blocks(counts, 5.0, 8.0, 100.0, 60_000)
    assert fullest <= 60_000
    assert kx >= 1 and ky >= 1


def test_when_no_shape_fits_the_budget_the_fullest_block_is_as_small_as_can_be_and_reported():
    counts = {(0, 0): 10_000, (0, 1): 10_000, (1, 0): 10_000, (9, 9): 1_000}
    kx, ky, fullest = plan_blocks(counts, 5.0, 8.0, 100.0, 5_000)
    assert fullest == 30_000  # every block with its ring holds the three full tiles
    assert _block_loads(np.array(list(counts)), np.array(list(counts.values())), kx, ky, 2)[1] == fullest


def test_a_tile_is_read_into_a_slice_of_a_reused_buffer(tmp_path):
    from hdmap.tiles import TileSpill

    dt = np.dtype([("x", "f8"), ("y", "f8"), ("i", "i8")])
    rec = np.zeros(5, dt)
    rec["x"], rec["i"] = [1.0, 2.0, 12.0, 3.0, 14.0], np.arange(5)
    spill = TileSpill(tmp_path, 10.0, 0.0, dt)
    spill.add(rec)
    spill.flush()
    buf = np.zeros(10, spill.dtype)
    spill.load_into((1, 0), buf[4:6])
    assert buf["i"][4:6].tolist() == [2, 4] and buf["core"][4:6].all()
    np.testing.assert_array_equal(buf[4:6], spill.load((1, 0)))
    with pytest.raises(ValueError, match="3 records"):
        spill.load_into((0, 0), buf[:2])


def test_a_large_tile_edge_is_searched_in_steps_and_still_covers_a_sparse_survey_in_few_blocks():
    counts = {(a, b): 1000 for a in range(400) for b in range(8)}  # 2 km x 40 m, 3.2 M points
    kx, ky, fullest = plan_blocks(counts, 5.0, 8.0, 1000.0, 6_000_000)
    assert (kx, ky) == (200, 200)  # the largest edge allowed (1000 m): two blocks
    assert len({(tx // kx, ty // ky) for tx, ty in counts}) == 2 and fullest <= 6_000_000

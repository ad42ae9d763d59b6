"""Small fixed-seed simulations shared by the simulator tests (made once per session)."""

from __future__ import annotations

import pytest

from hdmap.sim import simulate


@pytest.fixture(scope="session")
def sim_urban(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim_urban")
    return simulate(out, preset_name="urban", length=140, passes=2, seed=7, rate=150_000)


@pytest.fixture(scope="session")
def sim_b13(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim_b13")
    return simulate(out, preset_name="tempus-b13", length=540, passes=1, seed=3, rate=40_000)

"""The survey simulator: mobile-mapping drives through RMS-conformant streets, with ground truth.

>>> from hdmap.sim import simulate
>>> result = simulate("sim-out", preset_name="urban", length=300, passes=2, seed=1, rate=200_000)  # doctest: +SKIP
"""

from .presets import PRESETS, preset
from .road import RoadDescription, load_road_description, parse_road_description
from .scene import Scene, build_scene
from .simulate import ScannerSpec, SimulationResult, default_scanners, resolve_description, simulate, write_truth

__all__ = [
    "PRESETS",
    "RoadDescription",
    "Scene",
    "ScannerSpec",
    "SimulationResult",
    "build_scene",
    "default_scanners",
    "load_road_description",
    "parse_road_description",
    "preset",
    "resolve_description",
    "simulate",
    "write_truth",
]

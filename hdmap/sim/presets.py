"""Built-in road descriptions (``--preset``), each a function of the road length.

They are written in the road-description format (see :mod:`hdmap.sim.road`), so
``hdmap simulate --dump-road`` shows a starting point for one's own file.
"""

from __future__ import annotations

__all__ = ["PRESETS", "preset"]


def _urban(length: float) -> dict:
    """A two-lane town street with parking, a bike lane, a zebra crossing and a bend."""
    L = float(length)
    straight = max(L * 0.35, 10.0)
    arc = max(L - 2 * straight - 60.0, 10.0)
    return {
        "name": "urban",
        "context": "urban",
        "speed_kmh": 40,
        "roads": [{
            "id": "street",
            "start": [691300.0, 5338200.0],  # Munich-Milbertshofen, inside the city
            "heading": 20.0,
            "z": 482.0,
            "grade": 0.006,
            "cross_slope": 0.025,
            "crown": True,
            "geometry": [
                {"type": "line", "length": straight},
                {"type": "spiral", "length": 30.0, "radius_end": 350.0},
                {"type": "arc", "length": arc, "radius": 350.0},
                {"type": "spiral", "length": 30.0},  # back to straight
                {"type": "line", "length": max(L - straight - arc - 60.0, 10.0)},
            ],
            "centre": {"pattern": "dashed"},
            "right": [
                {"type": "lane", "width": 3.25},
                {"type": "bike", "width": 1.6},
                {"type": "parking", "width": 2.1},
                {"type": "curb", "height": 0.12},
                {"type": "sidewalk", "width": 2.6},
                {"type": "verge", "width": 2.0},
            ],
            "left": [
                {"type": "lane", "width": 3.25},
                {"type": "parking", "width": 2.1},
                {"type": "curb", "height": 0.12},
                {"type": "sidewalk", "width": 2.6},
                {"type": "verge", "width": 2.0},
            ],
            "crosswalks": [{"s": round(L * 0.62, 1), "length": 4.0}],
        }],
        "features": {"parked_cars_per_km": 60, "buildings": True, "trees_per_km": 30, "moving_cars_per_km": 8},
    }


def _tempus_b13(length: float) -> dict:
    """B13 corridor: dual carriageway, two lanes each way, median island, signalised junction.

    Runs north along E 692,000 from N 5,343,500 and crosses the Munich /
    Oberschleißheim boundary (near N 5,343,950 in the bundled boundaries) after
    about 450 m.
    """
    L = float(length)
    sj = max(min(250.0, L * 0.3), 45.0)
    arm = {
        "geometry": [{"type": "line", "length": 70.0}],
        "right": [{"type": "lane", "width": 3.25}, {"type": "curb", "height": 0.12},
                  {"type": "sidewalk", "width": 2.5}, {"type": "verge", "width": 1.5}],
        "left": [{"type": "lane", "width": 3.25}, {"type": "curb", "height": 0.12},
                 {"type": "sidewalk", "width": 2.5}, {"type": "verge", "width": 1.5}],
        "centre": {"pattern": "solid"},
        "crosswalks": [{"s": 2.0, "length": 4.0}],
        "stop_lines": [{"s": 7.0, "side": "left"}],
        "arrows": [{"s": 9.0, "side": "left", "lane": 1, "type": "straight"}],
    }
    box = 3.25 + 3.25  # half width of the arms' carriageway on each side of the junction centre
    cw = 4.0
    approach = box + 1.0 + cw + 1.0  # stop line distance from the junction centre
    return {
        "name": "tempus-b13",
        "context": "urban",
        "speed_kmh": 50,
        "roads": [{
            "id": "b13",
            "start": [692000.0, 5343500.0],
            "heading": 0.0,
            "z": 484.0,
            "grade": 0.002,
            "cross_slope": 0.025,
            "crown": True,
            "geometry": [
                {"type": "line", "length": max(L * 0.55, 10.0)},
                {"type": "spiral", "length": 40.0, "radius_end": -1500.0},
                {"type": "arc", "length": max(L * 0.45 - 40.0, 1.0), "radius": -1500.0},
            ],
            "median": {"width": 4.0, "type": "island", "height": 0.15},
            "right": [
                {"type": "lane", "width": 3.5},
                {"type": "lane", "width": 3.5},
                {"type": "curb", "height": 0.15},
                {"type": "sidewalk", "width": 3.0},
                {"type": "verge", "width": 3.0},
            ],
            "left": [
                {"type": "lane", "width": 3.5},
                {"type": "lane", "width": 3.5},
                {"type": "curb", "height": 0.15},
                {"type": "sidewalk", "width": 3.0},
                {"type": "verge", "width": 3.0},
            ],
            "crosswalks": [{"s": sj - box - 1.0 - cw / 2, "length": cw}, {"s": sj + box + 1.0 + cw / 2, "length": cw}],
            "stop_lines": [{"s": sj - approach, "side": "right"}, {"s": sj + approach, "side": "left"}],
            "arrows": [
                {"s": sj - approach - 8.0, "side": "right", "lane": 1, "type": "straight_left"},
                {"s": sj - approach - 8.0, "side": "right", "lane": 2, "type": "straight_right"},
                {"s": sj + approach + 8.0, "side": "left", "lane": 1, "type": "straight_left"},
                {"s": sj + approach + 8.0, "side": "left", "lane": 2, "type": "straight_right"},
            ],
            "junctions": [{"s": sj, "arms": [
                {"side": "left", "road": dict(arm, id="b13-west")},
                {"side": "right", "road": dict(arm, id="b13-east")},
            ]}],
        }],
        "features": {"parked_cars_per_km": 0, "buildings": True, "trees_per_km": 40, "moving_cars_per_km": 14,
                     "poles_per_km": 25, "signs_per_km": 10},
        "drives": [
            {"route": [{"road": "b13", "direction": "forward", "lane": 2}]},
            {"route": [{"road": "b13", "direction": "backward", "lane": 2}]},
            {"route": [{"road": "b13", "direction": "forward", "lane": 1}]},
            {"route": [{"road": "b13", "direction": "backward", "lane": 1}]},
        ],
    }


def _motorway(length: float) -> dict:
    """A9-like motorway: three lanes each way, hard shoulders, median with guard rails."""
    L = float(length)
    return {
        "name": "motorway",
        "context": "motorway",
        "speed_kmh": 80,
        "roads": [{
            "id": "a9",
            "start": [694300.0, 5348200.0],  # A9 near Garching-Hochbrück
            "heading": 340.0,
            "z": 478.0,
            "grade": -0.003,
            "cross_slope": 0.025,
            "crown": True,
            "geometry": [
                {"type": "line", "length": max(L * 0.4, 10.0)},
                {"type": "spiral", "length": 80.0, "radius_end": 2500.0},
                {"type": "arc", "length": max(L * 0.6 - 80.0, 1.0), "radius": 2500.0},
            ],
            "median": {"width": 4.0, "type": "barrier"},
            "right": [
                {"type": "lane", "width": 3.75},
                {"type": "lane", "width": 3.75},
                {"type": "lane", "width": 3.75},
                {"type": "shoulder", "width": 2.5},
                {"type": "verge", "width": 6.0},
            ],
            "left": [
                {"type": "lane", "width": 3.75},
                {"type": "lane", "width": 3.75},
                {"type": "lane", "width": 3.75},
                {"type": "shoulder", "width": 2.5},
                {"type": "verge", "width": 6.0},
            ],
        }],
        "features": {"parked_cars_per_km": 0, "buildings": False, "trees_per_km": 10, "moving_cars_per_km": 25,
                     "poles_per_km": 8, "signs_per_km": 4, "guard_rails": True, "fences_per_km": 2,
                     "manholes_per_km": 0, "tar_snakes_per_km": 20},
        "drives": [
            {"route": [{"road": "a9", "direction": "forward", "lane": 2}]},
            {"route": [{"road": "a9", "direction": "backward", "lane": 2}]},
        ],
    }


def _junction(length: float) -> dict:
    """A four-way crossing of two two-lane town streets with crosswalks, stop lines and arrows."""
    L = float(length)
    half = L / 2
    arm_len = max(min(L / 2, 150.0), 30.0)

    def approach_features(cw_s, stop_s, side):
        return {"crosswalks": [{"s": cw_s, "length": 4.0}], "stop_lines": [{"s": stop_s, "side": side}]}

    def arm(rid):
        a = {
            "id": rid,
            "geometry": [{"type": "line", "length": arm_len}],
            "right": [{"type": "lane", "width": 3.25}, {"type": "curb", "height": 0.12},
                      {"type": "sidewalk", "width": 2.5}, {"type": "verge", "width": 1.5}],
            "left": [{"type": "lane", "width": 3.25}, {"type": "curb", "height": 0.12},
                     {"type": "sidewalk", "width": 2.5}, {"type": "verge", "width": 1.5}],
            "centre": {"pattern": "dashed"},
            "arrows": [{"s": 12.0, "side": "left", "lane": 1, "type": "straight"}],
        }
        a.update(approach_features(3.0, 7.5, "left"))
        return a

    box = 3.25
    return {
        "name": "junction",
        "context": "urban",
        "speed_kmh": 30,
        "roads": [{
            "id": "ns",
            "start": [690900.0, 5340500.0],  # Munich-Am Hart
            "heading": 0.0,
            "z": 486.0,
            "grade": 0.0,
            "cross_slope": 0.02,
            "crown": True,
            "geometry": [{"type": "line", "length": L}],
            "centre": {"pattern": "dashed"},
            "right": [{"type": "lane", "width": 3.25}, {"type": "curb", "height": 0.12},
                      {"type": "sidewalk", "width": 2.5}, {"type": "verge", "width": 1.5}],
            "left": [{"type": "lane", "width": 3.25}, {"type": "curb", "height": 0.12},
                     {"type": "sidewalk", "width": 2.5}, {"type": "verge", "width": 1.5}],
            "crosswalks": [{"s": half - box - 3.0, "length": 4.0}, {"s": half + box + 3.0, "length": 4.0}],
            "stop_lines": [{"s": half - box - 7.5, "side": "right"}, {"s": half + box + 7.5, "side": "left"}],
            "arrows": [{"s": half - box - 14.0, "side": "right", "lane": 1, "type": "straight_right"},
                       {"s": half + box + 14.0, "side": "left", "lane": 1, "type": "straight_right"}],
            "junctions": [{"s": half, "arms": [{"side": "left", "road": arm("west")},
                                               {"side": "right", "road": arm("east")}]}],
        }],
        "features": {"parked_cars_per_km": 0, "buildings": True, "trees_per_km": 30, "moving_cars_per_km": 10},
        "drives": [
            {"route": [{"road": "ns", "direction": "forward", "lane": 1}]},
            {"route": [{"road": "ns", "direction": "backward", "lane": 1}]},
            {"route": [{"road": "west", "direction": "backward", "lane": 1},
                       {"road": "east", "direction": "forward", "lane": 1}]},
            {"route": [{"road": "east", "direction": "backward", "lane": 1},
                       {"road": "west", "direction": "forward", "lane": 1}]},
        ],
    }


PRESETS = {"urban": _urban, "tempus-b13": _tempus_b13, "motorway": _motorway, "junction": _junction}
#: Shortest road (m) each preset can be built with (junction furniture must fit).
MIN_LENGTH = {"urban": 30.0, "tempus-b13": 120.0, "motorway": 30.0, "junction": 60.0}


def preset(name: str, length: float = 1000.0) -> dict:
    """The road description of preset *name* for a road of about *length* metres."""
    try:
        return PRESETS[name](length)
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}") from None

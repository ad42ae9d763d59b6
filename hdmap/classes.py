"""Point classes: one table for every stage, writer and report.

Codes follow LAS 1.4 / ASPRS where a standard code exists and use the user range
(64-255) otherwise; 65 (pole) and 66 (traffic sign) match a common vendor
convention. Codes above 31 need LAS point formats 6-10; the writers upgrade a
legacy point format when such a code is written (see :func:`hdmap.io.write`).

>>> from hdmap.classes import Class
>>> int(Class.ROAD_MARKING), Class.ROAD_MARKING.label
(64, 'road marking')
>>> Class.from_name("road_surface")
<Class.ROAD_SURFACE: 11>
"""

from __future__ import annotations

import enum

__all__ = ["Class", "CLASS_TABLE", "class_names", "HIGH_NOISE_MIN_HEIGHT", "ROAD_CLASSES", "GROUND_CLASSES"]

#: Noise points (isolated returns, multipath) count as *high* noise (18) when they lie
#: more than this many metres above the surface below them; below the ground or
#: lower than this they are *low* noise (7). The simulator's truth and the noise
#: stage use the same definition.
HIGH_NOISE_MIN_HEIGHT = 5.0


class Class(enum.IntEnum):
    """Classification codes used by hdmap."""

    CREATED = 0
    UNCLASSIFIED = 1
    GROUND = 2
    LOW_VEGETATION = 3
    MEDIUM_VEGETATION = 4
    HIGH_VEGETATION = 5
    BUILDING = 6
    LOW_NOISE = 7
    ROAD_SURFACE = 11
    HIGH_NOISE = 18
    ROAD_MARKING = 64
    POLE = 65
    TRAFFIC_SIGN = 66
    CURB = 67

    @property
    def label(self) -> str:
        """Human-readable name, e.g. ``'road surface'``."""
        return CLASS_TABLE[self][0]

    @property
    def description(self) -> str:
        return CLASS_TABLE[self][1]

    @classmethod
    def from_name(cls, name: str) -> "Class":
        """Look a class up by its snake_case name (``'road_marking'``)."""
        try:
            return cls[name.upper()]
        except KeyError:
            known = ", ".join(c.name.lower() for c in cls)
            raise ValueError(f"unknown class name {name!r}; known: {known}") from None


#: code -> (label, description)
CLASS_TABLE: dict[Class, tuple[str, str]] = {
    Class.CREATED: ("never classified", "LAS 0: created, never classified"),
    Class.UNCLASSIFIED: ("unclassified", "LAS 1: processed but no class assigned"),
    Class.GROUND: ("ground", "LAS 2: bare ground that is not road surface (verges, sidewalks, squares)"),
    Class.LOW_VEGETATION: ("low vegetation", "LAS 3"),
    Class.MEDIUM_VEGETATION: ("medium vegetation", "LAS 4"),
    Class.HIGH_VEGETATION: ("high vegetation", "LAS 5: tree crowns"),
    Class.BUILDING: ("building", "LAS 6: facades and walls"),
    Class.LOW_NOISE: ("low noise", "LAS 7: isolated points and points below the ground"),
    Class.ROAD_SURFACE: ("road surface", "LAS 11: drivable surface connected to the trajectory, bounded by curbs"),
    Class.HIGH_NOISE: ("high noise", "LAS 18: isolated points high above the ground"),
    Class.ROAD_MARKING: ("road marking", "user 64: paint on the road surface"),
    Class.POLE: ("pole", "user 65: poles and posts"),
    Class.TRAFFIC_SIGN: ("traffic sign", "user 66: sign plates (retroreflective)"),
    Class.CURB: ("curb", "user 67: curb stones: the height step between carriageway and sidewalk"),
}


#: Classes that lie on the drivable surface.
ROAD_CLASSES = (Class.ROAD_SURFACE, Class.ROAD_MARKING)
#: Classes that are bare ground of any kind (what the ground stage finds).
GROUND_CLASSES = (Class.GROUND, Class.ROAD_SURFACE, Class.ROAD_MARKING, Class.CURB)


def class_names() -> dict[int, str]:
    """``{code: snake_case_name}`` for every class, e.g. ``{64: 'road_marking', ...}``."""
    return {int(c): c.name.lower() for c in Class}

"""hdmap: lane-level HD maps from mobile-mapping point clouds.

Read survey drives (LAS/LAZ plus the vehicle trajectory), classify the points,
extract lane geometry and write maps for automated-driving tests.

>>> import hdmap
>>> cloud = hdmap.read("drive_0.laz")                       # doctest: +SKIP
>>> traj = hdmap.Trajectory.read("trajectory_0.txt")         # doctest: +SKIP
"""

import logging as _logging

from . import classes, errors
from ._version import __version__
from .classes import Class
from .io import iter_chunks, read, read_copc, write
from .pointcloud import LasLayout, PointCloud
from .lanemap import Boundary, Lane, LaneMap, Marking
from .trajectory import Trajectory
from .vectorize import extract

__all__ = [
    "__version__",
    "Boundary",
    "Class",
    "Lane",
    "LaneMap",
    "Marking",
    "LasLayout",
    "PointCloud",
    "Trajectory",
    "classes",
    "errors",
    "extract",
    "iter_chunks",
    "read",
    "read_copc",
    "write",
]

_logging.getLogger(__name__).addHandler(_logging.NullHandler())

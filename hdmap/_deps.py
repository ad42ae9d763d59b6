"""Guarded imports of heavy or optional dependencies, with messages that say what to install."""

from __future__ import annotations

import importlib

from .errors import MissingDependencyError

__all__ = ["require_open3d", "require_pdal"]


def require_open3d():
    """Import Open3D, explaining the Debian system library its wheel needs."""
    try:
        return importlib.import_module("open3d")
    except ImportError as exc:
        text = str(exc)
        if "libusb" in text:
            raise MissingDependencyError(
                "open3d cannot be imported: the system library libusb-1.0 is missing "
                f"({text}); install it with 'apt-get install libusb-1.0-0' (Debian/Ubuntu), "
                "or run 'make test'/'make demo', which install it"
            ) from None
        if "libGL" in text or "libgomp" in text:
            raise MissingDependencyError(
                f"open3d cannot be imported: a system library is missing ({text}); "
                "install libgl1 and libgomp1 (Debian: apt-get install libgl1 libgomp1)"
            ) from None
        raise MissingDependencyError(f"open3d is not installed ({text}); pip install open3d") from None


def require_pdal():
    """Import the PDAL Python bindings (optional extra ``hdmap[pdal]``)."""
    try:
        return importlib.import_module("pdal")
    except ImportError as exc:
        raise MissingDependencyError(
            f"PDAL is not available ({exc}). It is an optional extra: it needs the PDAL C++ library, "
            "which Debian 12 does not package and PyPI ships only as source; install PDAL (e.g. from "
            "conda-forge) and then 'pip install hdmap[pdal]'"
        ) from None

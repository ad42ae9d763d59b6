"""Packing points into LAS records."""

from __future__ import annotations

import numpy as np

from ._jit import jit

__all__ = ["scaled_ints"]

_I32_MIN = float(np.iinfo(np.int32).min)
_I32_MAX = float(np.iinfo(np.int32).max)


def scaled_ints(xyz: np.ndarray, offsets, scales, out_x: np.ndarray, out_y: np.ndarray, out_z: np.ndarray) -> bool:
    """Write ``round((xyz - offsets) / scales)`` into three int32 arrays (e.g. a LAS record's X, Y, Z).

    Rounding is half to even, as ``numpy.round``. The output arrays may be
    strided views (fields of a structured array). Returns False, leaving the
    outputs partly written, if a value does not fit int32 or is not finite.
    """
    xyz = np.ascontiguousarray(xyz, dtype=np.float64)
    off = np.ascontiguousarray(offsets, dtype=np.float64)
    sc = np.ascontiguousarray(scales, dtype=np.float64)
    return bool(_scaled_ints(xyz, off[0], off[1], off[2], sc[0], sc[1], sc[2], out_x, out_y, out_z))


@jit
def _scaled_ints(xyz, o0, o1, o2, s0, s1, s2, out_x, out_y, out_z):
    for i in range(xyz.shape[0]):
        a = np.rint((xyz[i, 0] - o0) / s0)
        b = np.rint((xyz[i, 1] - o1) / s1)
        c = np.rint((xyz[i, 2] - o2) / s2)
        # written so that NaN fails too
        if not (_I32_MIN <= a <= _I32_MAX and _I32_MIN <= b <= _I32_MAX and _I32_MIN <= c <= _I32_MAX):
            return False
        out_x[i] = np.int32(a)
        out_y[i] = np.int32(b)
        out_z[i] = np.int32(c)
    return True

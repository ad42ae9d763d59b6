"""One place for the JIT settings of every kernel.

``cache=True`` stores compiled code beside the source, so worker processes and
later runs skip compilation; it only works for kernels without dynamic globals
(pass thread counts in, never call ``numba.get_num_threads()`` inside).

Fast-math is off by default: with reassociation, contraction (FMA) or
approximate functions LLVM compiles the vectorised body of a loop and its
scalar remainder differently, so a point's value would depend on which thread
and which iteration slot computed it, and output bytes on the thread count
(the simulator and the Dask-vs-local identity tests caught exactly that).
Kernels that only count or compare may opt in with ``fastmath=FASTMATH``;
``nnan``/``ninf`` are never used: lidar data has NaNs and kernels must see them.
"""

from __future__ import annotations

import numba

__all__ = ["FASTMATH", "jit", "jit_parallel"]

#: Opt-in fast-math flags for kernels whose results do not depend on rounding.
FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})


def jit(fn=None, **options):
    """``numba.njit`` with hdmap's defaults (serial, cached, no fast-math)."""
    opts = dict(cache=True, nogil=True)
    opts.update(options)
    if fn is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(fn)


def jit_parallel(fn=None, **options):
    """``numba.njit(parallel=True)`` with hdmap's defaults (use ``numba.prange`` inside)."""
    return jit(fn, parallel=True, **options)

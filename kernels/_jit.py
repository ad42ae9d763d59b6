"""One place for the JIT settings of every kernel.

``cache=True`` stores compiled code beside the source, so worker processes and
later runs skip compilation; it only works for kernels without dynamic globals
(pass thread counts in, never call ``numba.get_num_threads()`` inside).

Fast-math: we allow reassociation, contraction (FMA), approximate functions and
reciprocals, but *not* ``nnan``/``ninf``: lidar data has NaNs and the kernels
must see them.
"""

from __future__ import annotations

import numba

__all__ = ["FASTMATH", "jit", "jit_parallel"]

FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})


def jit(fn=None, **options):
    """``numba.njit`` with hdmap's defaults (serial)."""
    opts = dict(cache=True, nogil=True, fastmath=set(FASTMATH))
    opts.update(options)
    if fn is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(fn)


def jit_parallel(fn=None, **options):
    """``numba.njit(parallel=True)`` with hdmap's defaults (use ``numba.prange`` inside)."""
    return jit(fn, parallel=True, **options)

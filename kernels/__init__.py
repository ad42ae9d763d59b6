"""Numba kernels: arrays in, arrays out, no I/O (installed as ``hdmap.kernels``).

Kernels import nothing from hdmap. Private jitted functions start with ``_``;
the public wrappers beside them check and convert their input.
"""

__all__: list[str] = []

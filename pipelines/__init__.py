"""Batch runs over survey campaigns (installed as ``hdmap.pipelines``).

Campaign configuration, tiling, executors and stitching live here; they use
the library (``hdmap``) and never the other way round.
"""

__all__: list[str] = []

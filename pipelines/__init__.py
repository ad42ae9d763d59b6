"""Batch runs over survey campaigns (installed as ``hdmap.pipelines``).

Campaign configuration, tiling, executors, stitching, deliveries and the QA
report live here; they use the library (``hdmap``) and never the other way
round (only the command line reaches in). ``hdmap run CAMPAIGN.toml`` and
:func:`run` are the same thing.
"""

from .campaign import Campaign, Drive, load_campaign
from .run import RunResult, run

__all__ = ["run", "RunResult", "load_campaign", "Campaign", "Drive"]

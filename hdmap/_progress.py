"""Progress reporting for long work: bars on a terminal, plain log lines otherwise.

Library code takes an optional ``progress`` callable and never draws anything
itself; the command line decides how progress is shown (see
:func:`progress_bar`).
"""

from __future__ import annotations

import logging
import sys
import time

__all__ = ["progress_bar"]

logger = logging.getLogger("hdmap")


class _LogProgress:
    """Progress as log lines, at most every *interval* seconds (for files, CI and pipes)."""

    def __init__(self, total, desc, unit, interval=10.0):
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.n = 0
        self.t0 = self._last = time.monotonic()
        self._logged = False

    def update(self, n=1):
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._log(now)

    def _log(self, now):
        self._logged = True
        rate = self.n / max(now - self.t0, 1e-9)
        if self.total:
            eta = (self.total - self.n) / rate if rate > 0 else float("inf")
            logger.info("%s: %s/%s %s (%.1f%%), %.3g %s/s, ETA %.0f s", self.desc, f"{self.n:,}", f"{self.total:,}",
                        self.unit, 100.0 * self.n / self.total, rate, self.unit, eta)
        else:
            logger.info("%s: %s %s, %.3g %s/s", self.desc, f"{self.n:,}", self.unit, rate, self.unit)

    def set_postfix_str(self, text):  # tqdm compatibility
        pass

    def close(self):
        if self._logged:  # short work stays silent; long work gets a final line
            self._log(time.monotonic())

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        return False


def progress_bar(total=None, desc="", unit="it", *, enabled=True, unit_scale=False):
    """A tqdm bar if stderr is a terminal and *enabled*, else log lines.

    Both offer ``update(n)``, ``close()`` and the context-manager protocol.
    """
    if enabled and sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, dynamic_ncols=True, leave=False)
    return _LogProgress(total, desc, unit)

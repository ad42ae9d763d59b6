"""Where tile work runs: this process, local worker processes, or a Dask cluster.

All three are :class:`concurrent.futures.Executor` objects, so the runner has
one code path: it submits module-level functions with plain arguments (paths,
numbers, dicts) and waits for their results. Dask's executor comes from
``distributed.Client.get_executor()``.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import os

from hdmap.errors import MissingDependencyError, ParameterError

__all__ = ["open_executor", "InlineExecutor", "cpu_count"]

logger = logging.getLogger(__name__)


def cpu_count() -> int:
    """Cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class InlineExecutor(cf.Executor):
    """Runs each task at submission, in this process (one worker: no copies, plain tracebacks)."""

    def submit(self, fn, /, *args, **kwargs):
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            fut.set_exception(exc)
        return fut


def _init_worker(threads: int) -> None:
    """Give each worker process its share of the cores for Numba's parallel loops."""
    import numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


@contextlib.contextmanager
def open_executor(workers: int | None = None, dask_scheduler: str | None = None):
    """An executor for tile work, closed on exit.

    Parameters
    ----------
    workers : int, optional
        Local worker processes (default: the number of cores). 1 runs every
        task in this process. Ignored with *dask_scheduler*.
    dask_scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``); its
        workers must have the same hdmap installed and see the run directory
        under the same path (a shared file system).

    Yields
    ------
    (executor, description)
    """
    if dask_scheduler:
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - a dependency of hdmap
            raise MissingDependencyError("--dask-scheduler needs the 'distributed' package: "
                                         "pip install 'dask[distributed]'") from exc
        try:
            client = Client(dask_scheduler, timeout="30s", set_as_default=False)
        except OSError as exc:
            raise ParameterError(f"--dask-scheduler {dask_scheduler}: cannot connect ({exc}); "
                                 "check the address and that the scheduler runs") from None
        try:
            n = len(client.scheduler_info().get("workers", {}))
            yield client.get_executor(), f"Dask cluster at {dask_scheduler} ({n} worker(s))"
        finally:
            client.close()
        return
    if workers is not None and int(workers) < 1:
        raise ParameterError(f"--workers must be at least 1, got {workers}")
    n = int(workers) if workers is not None else cpu_count()
    if n == 1:
        yield InlineExecutor(), "this process"
        return
    # forkserver: no inherited locks or Numba thread pools from the parent
    ctx = multiprocessing.get_context("forkserver")
    threads = max(1, cpu_count() // n)
    with cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker,
                                initargs=(threads,)) as pool:
        yield pool, f"{n} local worker processes"

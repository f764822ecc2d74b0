"""Many Bayesian fits at once: :func:`bayes_pool_many` shares them among forked worker processes."""

from __future__ import annotations

from meta.models.bayes import BayesResult, bayes_pool


#: Below this many fits :func:`bayes_pool_many` fits them in this process (starting workers would cost more).
PARALLEL_MIN_FITS = 48


def _fit_one(call) -> BayesResult:
    args, kwargs = call
    return bayes_pool(*args, **kwargs)


def bayes_pool_many(calls, workers: int | None = None) -> list:
    """``bayes_pool(*args, **kwargs)`` for every ``(args, kwargs)`` in ``calls``, results in order.

    With at least :data:`PARALLEL_MIN_FITS` fits and two or more CPUs they are shared among forked worker
    processes (at most 4): the same code on the same numbers, so the same results to the last bit.
    """
    import os

    calls = list(calls)
    if workers is None:
        try:
            workers = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            workers = os.cpu_count() or 1
    workers = max(1, min(4, int(workers), len(calls)))
    import multiprocessing as mp

    if len(calls) < PARALLEL_MIN_FITS or workers < 2 or "fork" not in mp.get_all_start_methods():
        return [_fit_one(c) for c in calls]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as pool:
        return list(pool.map(_fit_one, calls, chunksize=max(1, len(calls) // (4 * workers))))

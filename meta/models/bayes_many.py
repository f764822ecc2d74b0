"""Many Bayesian fits at once: :func:`bayes_pool_many` fits each distinct call once, sharing them among forked
worker processes when there are many."""

from __future__ import annotations

import struct

import numpy as np

from meta.models.bayes import BayesResult, bayes_pool


#: Below this many fits :func:`bayes_pool_many` fits them in this process (starting workers would cost more).
PARALLEL_MIN_FITS = 48


def _fit_one(call) -> BayesResult:
    args, kwargs = call
    return bayes_pool(*args, **kwargs)


def _exact(value):
    """``value`` as a key that is equal only for the same type and the same bits (arrays: dtype, shape, bytes)."""
    if isinstance(value, np.ndarray):
        return "array", value.dtype.str, value.shape, value.tobytes()
    if isinstance(value, float):
        return "float", struct.pack("<d", value)
    return type(value).__name__, value


def call_key(call):
    """A hashable key of a call ``(args, kwargs)`` of :func:`bayes_pool`, equal only for the exact same inputs;
    None when an argument has no such key (the call is then fitted on its own)."""
    args, kwargs = call
    key = (tuple(_exact(a) for a in args), tuple(sorted((k, _exact(v)) for k, v in kwargs.items())))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def bayes_pool_many(calls, workers: int | None = None, known: dict | None = None) -> list:
    """``bayes_pool(*args, **kwargs)`` for every ``(args, kwargs)`` in ``calls``, results in order.

    Calls with the exact same inputs (:func:`call_key`) are fitted once and share the result. With at least
    :data:`PARALLEL_MIN_FITS` distinct fits and two or more CPUs they are shared among forked worker processes
    (at most 4): the same code on the same numbers, so the same results to the last bit.

    ``known``: the fits made before, {:func:`call_key`: result}; a call found there is not fitted again, and the
    fits made now are added to it (a run fits some cells first and the others later:
    :func:`meta.analyses.fewstudies.add_few_studies_columns`).
    """
    calls = list(calls)
    known = {} if known is None else known
    keys = [call_key(call) for call in calls]
    todo = {}  # a call to fit: its key (its position when it has none) -> its position
    for i, key in enumerate(keys):
        if key is None or key not in known:
            todo.setdefault(i if key is None else key, i)
    fits = dict(zip(todo, _fit_all([calls[i] for i in todo.values()], workers)))
    known.update((key, fit) for key, fit in fits.items() if not isinstance(key, int))
    return [fits[i] if key is None else known[key] for i, key in enumerate(keys)]


def parallel_workers(n_fits: int, workers: int | None = None) -> int:
    """How many forked worker processes :func:`bayes_pool_many` shares ``n_fits`` distinct fits among (at most 4, one
    per CPU, or ``workers``); 0 when it fits them in this process: fewer than :data:`PARALLEL_MIN_FITS`, one CPU, or
    no fork."""
    import multiprocessing as mp
    import os

    if workers is None:
        try:
            workers = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            workers = os.cpu_count() or 1
    workers = max(1, min(4, int(workers), n_fits))
    if n_fits < PARALLEL_MIN_FITS or workers < 2 or "fork" not in mp.get_all_start_methods():
        return 0
    return workers


def _fit_all(calls: list, workers: int | None) -> list:
    """The fits of ``calls`` in order, in this process or (many fits) in forked worker processes."""
    import multiprocessing as mp

    workers = parallel_workers(len(calls), workers)
    if not workers:
        return [_fit_one(c) for c in calls]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as pool:
        return list(pool.map(_fit_one, calls, chunksize=max(1, len(calls) // (4 * workers))))

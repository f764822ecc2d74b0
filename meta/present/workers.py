"""Worker processes that draw figures while this process does other work (stage 5, beside ``figures``).

A :class:`Crew` forks worker processes (after matplotlib is imported; ``meta run`` has hidden the libraries and
inputs from the garbage collector, :func:`meta.control.freeze_gc`, so their pages stay shared) that share one list
of :class:`meta.present.figures.FigureJob`, inherited through the fork (nothing is pickled or sent), and one counter:
each worker takes the next job (biggest first) and draws it into the output folder with
:func:`meta.present.figures.render`, so the bytes are the ones this process would write. The parent starts no
thread, so it may fork again while a crew draws (the sensitivity analysis's Bayesian fits do:
:func:`meta.models.bayes_many.bayes_pool_many`).

A worker ignores Ctrl-C (its parent stops it: :meth:`Crew.stop`), dies at SIGTERM, stops between figures when its
parent is gone, and says Python warnings on stderr even when its parent was recording them (``meta run``'s console
record). The first error of a worker is raised in the parent by :meth:`Crew.join`.
"""

from __future__ import annotations

import os
import signal
import sys
import warnings
from pathlib import Path

from meta.present.figures import render


def can_fork() -> bool:
    """Whether worker processes can be forked here (POSIX)."""
    import multiprocessing as mp

    return "fork" in mp.get_all_start_methods()


def warm() -> None:
    """Import matplotlib (Agg) and every drawing module in this process, so that forked workers start warm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401  (imported before the fork: workers inherit it)

    from meta.present import component_figure, overview, plots, spec_curve  # noqa: F401


def biggest_first(jobs: list) -> list:
    """``jobs`` ordered by the size of their payload, biggest first, so that one slow figure does not finish last
    alone."""
    return sorted(jobs, key=lambda j: -sum(len(v) if hasattr(v, "__len__") else 1 for v in j.payload.values()))


class Crew:
    """``workers`` forked processes drawing ``jobs`` into ``folder`` from now on, while this process goes on.

    Parameters
    ----------
    jobs : list of FigureJob
        What to draw; every job's files are written into ``folder`` by one worker.
    folder : Path
        The figures folder (it exists).
    workers : int
        Processes to fork (at least 1; at most one per job is useful).
    """

    def __init__(self, jobs: list, folder: Path, workers: int):
        import multiprocessing as mp

        from meta import control

        warm()
        control.freeze_more()  # what the workers inherit (the analysis so far) need not be walked by their collections
        ctx = mp.get_context("fork")
        self.jobs = biggest_first(jobs)
        self.counter = ctx.Value("q", 0)  # the next job to take (with its lock)
        self.procs, self.conns = [], []
        parent = os.getpid()
        try:
            for _ in range(max(1, int(workers))):
                receive, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_draw_share, args=(self.jobs, str(folder), self.counter, send, parent),
                                   daemon=True, name="meta-figures")
                proc.start()
                send.close()  # the worker holds the only sending end: its exit ends the parent's receive
                self.procs.append(proc)
                self.conns.append(receive)
        except BaseException:
            self.stop()
            raise

    def join(self) -> None:
        """Wait for every worker; raise the first error a worker met (or its death by a signal)."""
        error = None
        for proc, conn in zip(self.procs, self.conns):
            try:
                said = conn.recv()  # one word at the end: None when every job it took was drawn
            except EOFError:
                said = None
            proc.join()
            if said is None and proc.exitcode != 0:
                said = RuntimeError(f"a figure worker ended with status {proc.exitcode}")
            error = error or said
            conn.close()
        self.procs, self.conns = [], []
        if error is not None:
            raise error

    def stop(self) -> None:
        """End the workers still drawing (SIGTERM) and wait for them: no process outlives the crew."""
        for proc in self.procs:
            if proc.exitcode is None:
                proc.terminate()
        for proc in self.procs:
            proc.join()
        for conn in self.conns:
            conn.close()
        self.procs, self.conns = [], []


def _draw_share(jobs: list, folder: str, counter, conn, parent: int) -> None:
    """A worker's life: take the next job until none is left (or the parent is gone), then say None or the error."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops the crew
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    warnings.showwarning = _say_warning
    error = None
    try:
        while os.getppid() == parent:
            with counter.get_lock():
                i = counter.value
                counter.value = i + 1
            if i >= len(jobs):
                break
            render(jobs[i], folder)
    except BaseException as exc:  # noqa: BLE001 - said to the parent, which raises it
        error = exc
    try:
        conn.send(error)
    except Exception:  # noqa: BLE001 - an error that cannot be pickled is said as text
        conn.send(RuntimeError(f"{type(error).__name__}: {error}"))
    conn.close()


def _say_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Python's own display of a warning, on stderr (a worker forked while its parent recorded warnings would
    otherwise keep them in a list nobody reads)."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

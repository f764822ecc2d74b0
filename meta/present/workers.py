"""Worker processes that draw figures while this process does other work (stage 5, beside ``figures``).

A :class:`Crew` has one worker, the *leader*, and goes on at once: matplotlib is imported, and the first batch of
:class:`meta.present.figures.FigureJob` made, in the leader, not in this process (``meta run`` hands it a function
that makes the forest plots' jobs from the pooled results). ``meta run`` forks the leader before the analysis (a
:class:`Spare`, which imports matplotlib meanwhile and is sent the function with the results through its pipe);
otherwise the crew forks it then, and it inherits them through the fork. The leader keys that batch
and takes the unchanged figures from the previous output folder (:func:`meta.present.figures.reuse_job`), tells this
process the jobs (without their payload), their keys and what it reused (:meth:`Crew.first`), then forks *followers*
(warm: matplotlib and every font and line of text drawn so far are inherited) that share the jobs left to draw with
it: each takes the next one (slowest first) from a shared counter and draws it into the output folder with
:func:`meta.present.figures.render`, so the bytes are the ones this process would write. Later batches (keyed and
reused here) are handed to the leader (:meth:`Crew.send`, pickled into a file in the output folder that the leader
reads and removes, so that a big batch never blocks this process) and drawn the same way by new followers. This
process starts no thread, so it may fork again while a crew draws (the sensitivity analysis's Bayesian fits do:
:func:`meta.models.bayes_many.bayes_pool_many`).

A worker ignores Ctrl-C (this process stops the crew: :meth:`Crew.stop`); the leader, at SIGTERM, ends and reaps its
follower before it dies; a worker stops between figures when its parent is gone, and says Python warnings on stderr
even when this process was recording them (``meta run``'s console record). The first error of a worker is raised
here by :meth:`Crew.join` (or :meth:`Crew.first`).
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import warnings
from pathlib import Path

from meta.present.figures import FigureJob, render, reuse_jobs


def can_fork() -> bool:
    """Whether worker processes can be forked here (POSIX)."""
    import multiprocessing as mp

    return "fork" in mp.get_all_start_methods()


def parallel(workers: int) -> bool:
    """Whether figures are drawn by worker processes: two or more wanted, and forking possible."""
    return workers >= 2 and can_fork()


#: Signals whose inherited Python handlers (the CLI's raise KeyboardInterrupt / SystemExit) must never run in a
#: forked worker: a worker started by :func:`_start` has them blocked until it has set its own (:func:`_own`).
_STOPS = {signal.SIGINT, signal.SIGTERM}


def _start(proc) -> None:
    """``proc.start()`` with SIGINT and SIGTERM blocked in the child until it has set its own handlers (they arrive
    then). Unblocked, a signal in the child's first moments would run the parent's handler, whose exception escapes
    multiprocessing's start-up in the child and lets the child go on as a copy of the parent."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
    try:
        proc.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _own(on_sigterm=signal.SIG_DFL) -> None:
    """A worker's own signal handling: Ctrl-C ignored (it reaches the parent, which stops the workers), SIGTERM
    ``on_sigterm``; then what was blocked by :func:`_start` arrives."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)


def warm(lang: str | None = None) -> None:
    """Import matplotlib's figure and Agg canvas (not pyplot: the figures are made without it) and every drawing
    module in this process, so that processes forked from it start warm; with ``lang``, load Babel's number data
    for it too (the figures' labels)."""
    from meta.present import drawing

    drawing.import_matplotlib()  # before the fork: followers inherit it
    from meta.present import agg_text, component_figure, one_tick, overview, plots, png, spec_curve  # noqa: F401

    if lang is not None:
        from meta.i18n import fmt_num

        fmt_num(0.0, 1, lang)


def _fork(target, args: tuple) -> tuple:
    """(process, this process's end of a pipe to it): ``target(*args, its end, this end, this pid)`` in a figure
    worker forked now (:func:`_start`; the worker closes this end at once, so that this process's death, even by
    SIGKILL, ends its reads; this process keeps only its own end)."""
    import multiprocessing as mp

    from meta import control

    control.freeze_more()  # what the worker inherits (the analysis so far) need not be walked by its collections
    ctx = mp.get_context("fork")
    mine, theirs = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=target, args=(*args, theirs, mine, os.getpid()), daemon=True, name="meta-figures")
    try:
        _start(proc)
    except BaseException:
        mine.close()
        raise
    finally:
        theirs.close()
    return proc, mine


class Spare:
    """A figure leader forked *before* the analysis, on the core the analysis leaves idle: it imports matplotlib and
    the drawing modules (:func:`warm`) while this process analyses, then waits until a :class:`Crew` hands it its
    first batch (:meth:`take`). The batch then goes to it through a pipe (pickled) instead of by a fork after the
    analysis, so that matplotlib's import (0.3-0.4 s of CPU) is no longer spent while every core is busy.

    A spare nobody takes is stopped by :meth:`stop` (the ``with`` block of :func:`standing_by`); it ends by itself
    when this process is gone, ignores Ctrl-C (this process stops it) and dies at SIGTERM.
    """

    def __init__(self, lang: str | None = None, paused: tuple | None = None):
        self.proc, self.conn = _fork(_stand_by, (lang, paused))
        self.taken = False

    def take(self, first, folder: Path, workers: int, keyed) -> tuple | None:
        """Hand the spare the first batch (``first`` is pickled: a function and what it needs); its (process,
        pipe), or None when it cannot take it (it is gone, or ``first`` cannot be pickled: then it is stopped and
        the caller forks a leader as before)."""
        if self.taken or self.conn.closed:
            return None
        try:
            self.conn.send(("lead", first, str(folder), workers, keyed))
        except (OSError, pickle.PicklingError, TypeError, AttributeError):
            self.stop()
            return None
        self.taken = True
        return self.proc, self.conn

    def stop(self) -> None:
        """End the spare unless a crew took it (then it is the crew's to stop: :meth:`Crew.stop`)."""
        if not (self.taken or self.conn.closed):
            _end(self.proc, self.conn)


def _end(proc, conn) -> None:
    """End a leader (SIGTERM, unless it has ended) and wait for it; close this process's end of its pipe."""
    if proc.exitcode is None:
        proc.terminate()
    proc.join()
    conn.close()


def _stand_by(lang: str | None, paused: tuple | None, conn, parents_end, parent: int) -> None:
    """The spare's life (:class:`Spare`, forked by :func:`_fork`): warm up, wait for the first batch, then lead
    (:func:`_lead`). ``paused``: forked while the command's garbage collector was paused (:func:`meta.control.pause_gc`,
    its thresholds): once warm it collects again, as the command does after reading (:func:`meta.control.freeze_gc`)."""
    from meta import control

    parents_end.close()
    _own()
    warnings.showwarning = _say_warning
    warm(lang)
    if paused is not None:
        control.freeze_gc(paused)
    try:
        said = conn.recv()
    except (EOFError, OSError):  # the parent is gone, or stopped waiting
        return
    if said[0] == "lead":
        _lead(*said[1:], conn, parent)


#: Relative drawing time of one figure of each kind, measured in a cold ``meta run`` on inputs/ (tests/benchmarks/
#: timeline_run.py: the overview ~0.4 s, the component figure ~0.2-0.5 s, a specification curve ~0.2 s, a forest
#: plot 0.05-0.25 s); a kind not listed counts as a forest plot.
DRAW_COST = {"overview": 4, "components": 3, "spec_curve": 2, "forest": 1}


def slowest_first(jobs: list) -> list:
    """``jobs`` ordered slowest first, so that one slow figure does not finish last alone while the other workers
    wait: by the kind's :data:`DRAW_COST`, then by the size of the payload (its rows, as many as the figure draws)."""
    def cost(job):
        size = sum(len(v) if hasattr(v, "__len__") else 1 for v in job.payload.values())
        return -DRAW_COST.get(job.kind, 1), -size

    return sorted(jobs, key=cost)


def described(job: FigureJob) -> FigureJob:
    """``job`` without its payload: what the report needs of a figure drawn elsewhere (name, kind, title, files)."""
    return FigureJob(job.name, job.kind, job.title, dict(job.files), {}, dict(job.save))


class Crew:
    """Worker processes drawing figures into ``folder`` from now on, while this process goes on.

    Parameters
    ----------
    first : list of FigureJob, or a function returning them
        The first batch; a function is called in the leader (after the fork), so this process never makes it.
    folder : Path
        The figures folder (it exists).
    workers : int
        Processes drawing at once (the leader and up to ``workers - 1`` followers; at least 1).
    keyed : tuple (version, previous, old keys), optional
        The leader keys the first batch with :func:`meta.present.figures.job_key` and takes unchanged figures from
        the previous output folder (:func:`meta.present.figures.reuse_job`); without it the batch is drawn whole and
        reported without keys.
    """

    def __init__(self, first, folder: Path, workers: int, keyed: tuple | None = None, spare: Spare | None = None):
        self.folder, self.batches, self._first = Path(folder), 0, None
        lead = (first, str(folder), max(1, int(workers)), keyed)
        taken = spare.take(*lead) if spare is not None else None
        self.proc, self.conn = taken if taken is not None else _fork(_lead_forked, lead)
        self.procs = [self.proc]

    def first(self) -> tuple[list, dict, list]:
        """(the first batch's jobs without payload, {"figures/<file>": key}, [files reused]), as the leader said them
        once it had made and keyed the batch; raises the leader's error when it failed first."""
        if self._first is None:
            said = self._receive()
            if said[0] == "first":
                self._first = said[1:]
            else:  # the leader ended before it said the batch
                self._first = said[1] or RuntimeError("a figure worker ended before it made its figures")
        if isinstance(self._first, BaseException):
            raise self._first
        return self._first

    def send(self, jobs: list) -> None:
        """Draw ``jobs`` (a later batch, already keyed and reused here) after the batches before it."""
        self.batches += 1
        path = self.folder / f".batch-{self.batches}.pickle"  # read and removed by the leader
        path.write_bytes(pickle.dumps(slowest_first(jobs), protocol=pickle.HIGHEST_PROTOCOL))
        try:
            self.conn.send(("batch", str(path)))
        except OSError:  # the leader is gone: its error (or its death) is raised by join
            path.unlink(missing_ok=True)

    def join(self) -> None:
        """Wait until every batch is drawn and the workers are gone; raise the first error a worker met (or the
        leader's death by a signal)."""
        error = None
        try:
            self.first()
        except BaseException as exc:  # noqa: BLE001 - raised below, after the leader is reaped
            error = exc
        if error is None:
            try:
                self.conn.send(("end",))
            except OSError:
                pass
            error = self._receive()[1]
        self.proc.join()
        self.conn.close()
        self.procs = []
        if error is None and self.proc.exitcode != 0:
            error = RuntimeError(f"a figure worker ended with status {self.proc.exitcode}")
        for left in self.folder.glob(".batch-*.pickle"):  # a batch the leader never read
            left.unlink(missing_ok=True)
        if error is not None:
            raise error

    def _receive(self) -> tuple:
        try:
            return self.conn.recv()
        except EOFError:
            return ("done", None)

    def stop(self) -> None:
        """End the workers still drawing (SIGTERM: the leader ends and reaps its follower first) and wait for them:
        no process outlives the crew."""
        _end(self.proc, self.conn)
        self.procs = []


def _lead_forked(first, folder: str, workers: int, keyed, conn, parents_end, parent: int) -> None:
    """A leader forked after pooling (:func:`_fork`): :func:`_lead`."""
    parents_end.close()
    _lead(first, folder, workers, keyed, conn, parent)


def _lead(first, folder: str, workers: int, keyed, conn, parent: int) -> None:
    """The leader's life: make and key the first batch, say it, draw it with followers; then each later batch the
    parent sends, until it says the end; then say None or the first error."""
    warnings.showwarning = _say_warning
    crew = _Followers(workers, parent, conn)
    _own(crew.terminate)  # at SIGTERM the leader ends and reaps its followers, then dies
    error = None
    try:
        jobs = first() if callable(first) else list(first)
        todo, keys, reused = reuse_jobs(jobs, Path(folder), *keyed) if keyed is not None else (jobs, {}, [])
        conn.send(("first", [described(j) for j in jobs], keys, reused))
        todo = slowest_first(todo)
        held = todo[len(todo) - len(todo) // HELD_BACK:]  # the quickest, drawn with the next batch
        crew.draw(todo[:len(todo) - len(held)], folder)
        while os.getppid() == parent:
            if held and not conn.poll():  # no batch yet: nothing to wait for
                crew.draw(held, folder)
                held = []
            said = conn.recv()
            jobs = _batch(said) if said[0] == "batch" else []
            crew.draw(slowest_first([*held, *jobs]), folder)
            held = []
            if said[0] != "batch":
                break
    except EOFError:  # the parent is gone
        pass
    except BaseException as exc:  # noqa: BLE001 - said to the parent, which raises it
        error = exc
    _say(conn, ("done", error))


#: The leader holds back the quickest 1/HELD_BACK of the first batch (forest plots) and draws them with the next batch
#: (the specification curves and the component figure, a few slow figures), slowest first: the workers then end
#: on quick figures together, not on slow ones one after the other while a core waits (the gap between the last two
#: workers' ends: median 0.29 -> 0.04 s in 6 interleaved runs each, timeline_run.py --ends in tests/benchmarks/
#: bench_ab.out). Without a next batch by the time the rest is drawn, they are drawn at once.
HELD_BACK = 4


def _batch(said: tuple) -> list:
    """The jobs of a later batch the parent said (``("batch", path)``: pickled into a file it wrote; removed)."""
    path = Path(said[1])
    jobs = pickle.loads(path.read_bytes())
    path.unlink()
    return jobs


class _Followers:
    """The leader's side of one batch: fork up to ``workers - 1`` followers (after importing matplotlib, so they
    start warm), draw with them from a shared counter, wait for them; their first error is raised."""

    def __init__(self, workers: int, parent: int, conn):
        self.workers, self.parent, self.conn, self.pids = workers, parent, conn, []

    def draw(self, jobs: list, folder: str) -> None:
        if not jobs:
            return
        import multiprocessing as mp

        from meta import control

        warm()
        control.freeze_more()  # matplotlib and the jobs: the followers inherit them
        ctx = mp.get_context("fork")
        counter = ctx.Value("q", 0)  # the next job to take (with its lock)
        conns, leader = [], os.getpid()
        for _ in range(min(self.workers, len(jobs)) - 1):
            receive, send = ctx.Pipe(duplex=False)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # no SIGTERM before the pid is kept
            try:
                pid = os.fork()
                if pid == 0:  # the follower
                    self.conn.close()  # the parent's pipe stays the leader's alone
                    _follow(jobs, folder, counter, receive, send, leader)
                self.pids.append(pid)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
            send.close()
            conns.append(receive)
        error = None
        try:
            _draw_share(jobs, folder, counter, self.parent)
            if os.getppid() != self.parent:  # the parent is gone (killed): its followers stop now too
                self.terminate()
        except BaseException as exc:  # noqa: BLE001 - after the followers are reaped
            error = exc
            self.terminate()
        for receive in conns:
            try:
                said = receive.recv()
            except EOFError:
                said = None
            error = error or said
            receive.close()
        self._reap()
        if error is not None:
            raise error

    def _reap(self) -> None:
        for pid in self.pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.pids = []

    def terminate(self, *signum) -> None:
        """End the followers and reap them; at SIGTERM (``signum`` given) the leader then dies."""
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self._reap()
        if signum:
            os._exit(128 + signal.SIGTERM)


def _follow(jobs: list, folder: str, counter, receive, send, leader: int) -> None:
    """A follower's life (forked by the leader): draw its share, say None or the error, and end (never return into
    the leader's code)."""
    status = 0
    try:
        _own()  # Ctrl-C ignored (as in the leader), SIGTERM default, then the SIGTERM blocked around the fork
        receive.close()
        error = None
        try:
            _draw_share(jobs, folder, counter, leader)
        except BaseException as exc:  # noqa: BLE001 - said to the leader, which raises it
            error = exc
        _say(send, error)
    except BaseException:  # noqa: BLE001 - nothing more can be said
        status = 1
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(status)


def _draw_share(jobs: list, folder: str, counter, parent: int) -> None:
    """Take the next job until none is left (or ``parent`` is gone) and draw it."""
    while os.getppid() == parent:
        with counter.get_lock():
            i = counter.value
            counter.value = i + 1
        if i >= len(jobs):
            break
        render(jobs[i], folder)


def _say(conn, message) -> None:
    """Send ``message`` (an error that cannot be pickled is said as text); a parent gone is no error."""
    try:
        try:
            conn.send(message)
        except (pickle.PicklingError, TypeError, AttributeError):
            error = message[1] if isinstance(message, tuple) else message
            text = RuntimeError(f"{type(error).__name__}: {error}")
            conn.send(("done", text) if isinstance(message, tuple) else text)
    except OSError:
        pass
    conn.close()


def _say_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Python's own display of a warning, on stderr (a worker forked while its parent recorded warnings would
    otherwise keep them in a list nobody reads)."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

"""Run control: the stage a run is in, stop requests from signals, and test pauses at exact stages.

Every layer may call :func:`checkpoint`; the CLI's signal handlers call :func:`request_stop`.
"""

from __future__ import annotations

import os
import signal
import sys
import time

_stop: list[int] = []  # signals received: a stop requested, even if the handler's exception was swallowed


# --------------------------------------------------------------------------- #
# stop requests and test pauses
# --------------------------------------------------------------------------- #
def request_stop(signum: int) -> None:
    """Record that the run must stop (called by the CLI's signal handlers before they raise)."""
    _stop.append(signum)


def clear_stop() -> None:
    _stop.clear()


def stop_requested() -> int | None:
    """The first signal received since :func:`clear_stop`, or None."""
    return _stop[0] if _stop else None


def raise_if_stopped() -> None:
    """Raise the exception the signal's handler raised (again): KeyboardInterrupt for SIGINT, SystemExit else."""
    signum = stop_requested()
    if signum is None:
        return
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


#: What the run is doing (a key of :data:`STAGES`), for the one-line message of an error that escapes.
STAGE = ["start"]
STAGES = {
    "start": "starting", "read": "reading the inputs", "analyse": "analysing", "write": "writing the tables",
    "figures": "drawing the figures", "report": "writing the report", "commit": "replacing the outputs",
}


def checkpoint(stage: str) -> None:
    """Entering ``stage`` (a key of :data:`STAGES`); a stop requested by a signal is honoured here.

    ``META_TEST_PAUSE_AT=<stage>`` (tests only) pauses the run here, saying so on stderr, so that a test can
    send a signal at an exact stage instead of after a guessed delay.
    """
    STAGE[0] = stage
    if os.environ.get("META_TEST_PAUSE_AT") == stage:
        print(f"meta: test pause at {stage}", file=sys.stderr, flush=True)
        deadline = time.monotonic() + float(os.environ.get("META_TEST_PAUSE_SECONDS", "60"))
        while time.monotonic() < deadline:
            time.sleep(0.05)
    raise_if_stopped()


# --------------------------------------------------------------------------- #
# the garbage collector during one command
# --------------------------------------------------------------------------- #
_frozen: list[bool] = []  # True while a command's freeze_gc is in force (until unfreeze_gc)

#: Allocations between two collections of the youngest generation while a command runs, after its imports and
#: reading (CPython's default is 700). Objects that are not in a reference cycle are freed by reference counting
#: whatever this is; the collector only finds cycles (matplotlib's figures, pandas' frames). At 700 it ran ~630
#: times in one ``meta run`` on inputs/ (main process and figure workers: 0.19-0.23 s of CPU), at 10,000 with the pause
#: of :func:`pause_gc` ~47 times (0.07-0.09 s), measured with ``gc.callbacks`` and ``time.thread_time``. At most
#: 10,000 more objects wait for a collection: about one figure's artists.
COMMAND_GC_THRESHOLD = 10_000


def pause_gc() -> tuple | None:
    """Before a command's imports and reading: no collection until :func:`freeze_gc` (what is made then, the
    libraries and the inputs, lives until the end, so collecting meanwhile only walks it). Returns the collector's
    thresholds, given back at the end by :func:`unfreeze_gc`, or None when a caller has frozen objects or disabled
    the collector (then it is left as it is)."""
    import gc

    if gc.get_freeze_count() or not gc.isenabled():
        return None
    gc.disable()
    return gc.get_threshold()


def freeze_gc(paused: tuple | None = None) -> bool:
    """Hide every object alive now (the imported libraries, the inputs and plan read: ~150,000 objects that live
    until the command ends) from the cyclic garbage collector, so that its full collections, in this process and in
    the figure workers forked from it, no longer walk them (:func:`gc.freeze`). Nothing is freed later than it would
    be by reference counting; no output changes. Only when nothing else has frozen objects; returns whether it did
    (then :func:`unfreeze_gc` gives them back at the end of the command). After :func:`pause_gc` (``paused``: its
    thresholds) the collector is enabled again, its youngest generation collected every
    :data:`COMMAND_GC_THRESHOLD` allocations."""
    import gc

    froze = not gc.get_freeze_count()
    if froze:
        gc.freeze()
        _frozen[:] = [True]
    if paused is not None:  # collecting again even when something else froze objects meanwhile
        gc.set_threshold(COMMAND_GC_THRESHOLD, *paused[1:])
        gc.enable()
    return froze


def freeze_more() -> None:
    """Before forking worker processes: hide the objects alive now too (the analysis' tables, which the workers
    inherit and keep), as :func:`freeze_gc` did; nothing unless the running command froze (a caller's frozen
    objects are not added to)."""
    if _frozen:
        import gc

        gc.freeze()


def unfreeze_gc(froze: bool, paused: tuple | None = None) -> None:
    """Undo :func:`freeze_gc` (and :func:`freeze_more`) when it froze, and :func:`pause_gc` (``paused``: the
    thresholds it returned): a caller that runs several commands in one process keeps collecting as before."""
    import gc

    if froze:
        gc.unfreeze()
        _frozen.clear()
    if paused is not None:
        gc.set_threshold(*paused)
        gc.enable()

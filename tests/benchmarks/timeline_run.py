"""Timeline of one ``meta run``: when the main process runs each step and when each worker draws each figure.

``PYTHONPATH=CHECKOUT python tests/benchmarks/timeline_run.py OUT_DIR LOG.jsonl`` runs ``meta run --out OUT_DIR``
in this process with its steps wrapped by timers; every line of ``LOG.jsonl`` is ``[pid, step, start, end]`` in
seconds since this script started (figure workers are forked from it, so their lines carry their own pid). Quoted
in ``bench_ab.out``. Needs the worker design of ``meta/present/workers.py``.

``python tests/benchmarks/timeline_run.py --ends LOG.jsonl`` prints one line on the end of the run: when the main
process began to wait for the figures, when the last two figure workers drew their last figure, and the gap
between those two (a core idle at the end of the run).
"""
import json
import os
import sys
import time

T0 = time.perf_counter()


def main() -> int:
    log = open(sys.argv[2], "w")

    def mark(what, t0, t1):
        log.write(json.dumps([os.getpid(), what, round(t0 - T0, 3), round(t1 - T0, 3)]) + "\n")
        log.flush()

    from meta import cli
    from meta.analyses import pipeline
    from meta.present import figures, report, workers
    from meta.write import outputs

    def wrap(owner, name, label=None):
        fn = getattr(owner, name)

        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                mark(label or (f"draw {a[0].name}" if name == "render" else name), t0, time.perf_counter())
        setattr(owner, name, timed)

    for owner, name, label in ((pipeline, "analyse", None), (pipeline, "add_sensitivity", None),
                               (workers, "render", None), (report, "render_report", None),
                               (outputs, "_write_tables", None), (outputs, "_write_or_reuse_workbook", "workbook"),
                               (figures.Drawing, "finish", "wait for figures")):
        wrap(owner, name, label)
    with open(os.devnull, "w") as null:
        stdout, sys.stdout = sys.stdout, null
        try:
            return cli.main(["run", "--out", sys.argv[1]])
        finally:
            sys.stdout = stdout


def ends(path: str) -> str:
    """The end of the run in ``path`` (a log written by :func:`main`): see the module docstring."""
    rows = [json.loads(line) for line in open(path)]
    last = {}
    for pid, what, _, end in rows:
        if what.startswith("draw "):
            last[pid] = max(last.get(pid, 0.0), end)
    a, b = sorted(last.values())[-2:]
    wait = next(r for r in rows if r[1] == "wait for figures")
    return (f"main waits from {wait[2]:.3f} to {wait[3]:.3f}; the last two workers end at {a:.3f} and {b:.3f}: "
            f"gap {b - a:.3f} s")


if __name__ == "__main__":
    if sys.argv[1] == "--ends":
        print(ends(sys.argv[2]))
        sys.exit(0)
    sys.exit(main())

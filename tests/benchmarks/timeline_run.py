"""Timeline of one ``meta run``: when the main process runs each step and when each worker draws each figure.

``PYTHONPATH=CHECKOUT python tests/benchmarks/timeline_run.py OUT_DIR LOG.jsonl`` runs ``meta run --out OUT_DIR``
in this process with its steps wrapped by timers; every line of ``LOG.jsonl`` is ``[pid, step, start, end]`` in
seconds since this script started (figure workers are forked from it, so their lines carry their own pid). Quoted
in ``bench_ab.out``. Needs the worker design of ``meta/present/workers.py``.
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


if __name__ == "__main__":
    sys.exit(main())

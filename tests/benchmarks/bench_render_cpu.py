"""The figure workers' CPU in real cold runs of two checkouts, side by side (issue 15).

``python tests/benchmarks/bench_render_cpu.py A_CHECKOUT B_CHECKOUT [--repeats 10]`` runs ``meta run`` into an
empty folder with ``PYTHONPATH=A``, then ``B`` (interleaved, A B A B …), each in a child process that wraps
:func:`meta.present.figures.render` as the workers call it (``meta.present.workers.render``) to record, per figure,
its CPU time (``time.process_time``), its kernel time (``ru_stime``) and the minor page faults it caused
(``ru_minflt``), in whichever worker drew it. Printed per run: the sums over the run's figures; then the medians and
the median of the paired ratios B/A (the machine's speed drifts between runs; a pair runs within seconds). Unlike
``bench_figures_cpu.py``, which draws pickled jobs in a fresh process after a warm-up round, this measures the
workers as a run forks them: each figure drawn once, in a process forked from the analysis.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def child(out: str, log_path: str) -> int:
    """One ``meta run --out out`` in this process, every figure's costs appended to ``log_path`` as JSON lines."""
    import resource
    import time

    from meta import cli
    from meta.present import workers

    log = open(log_path, "a")
    render = workers.render

    def measured(job, *a, **k):
        r0, c0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
        try:
            return render(job, *a, **k)
        finally:
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            log.write(json.dumps([os.getpid(), job.name, time.process_time() - c0, r1.ru_stime - r0.ru_stime,
                                  r1.ru_minflt - r0.ru_minflt]) + "\n")
            log.flush()

    workers.render = measured
    with open(os.devnull, "w") as null:
        stdout, sys.stdout = sys.stdout, null
        try:
            return cli.main(["run", "--out", out])
        finally:
            sys.stdout = stdout


def one_run(checkout: Path, folder: Path) -> tuple[float, float, int, int]:
    """(CPU s, kernel s, minor faults, figures) summed over the figures of one cold run of ``checkout``."""
    log = folder / "render.jsonl"
    subprocess.run([sys.executable, __file__, "--child", str(folder / "outputs"), str(log)], cwd=checkout,
                   env={**os.environ, "PYTHONPATH": str(checkout)}, check=True, stdout=subprocess.DEVNULL)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    return sum(r[2] for r in rows), sum(r[3] for r in rows), sum(r[4] for r in rows), len(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkouts", nargs="*", type=Path)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(*args.child)
    a, b = (c.resolve() for c in args.checkouts)
    for c in (a, b):
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(c / "meta")], check=True)
    print(f"bench_render_cpu: A = {a}, B = {b}; load at start: {os.getloadavg()}", flush=True)
    runs = {"A": [], "B": []}
    with tempfile.TemporaryDirectory(prefix="bench_render_") as tmp:
        for i in range(args.repeats):
            for name, checkout in (("A", a), ("B", b)):
                folder = Path(tmp) / f"{name}{i}"
                folder.mkdir()
                runs[name].append(one_run(checkout, folder))
                cpu, kernel, faults, n = runs[name][-1]
                print(f"  run {i + 1} {name}: {n} figures, CPU {cpu:.3f} s (kernel {kernel:.3f} s), "
                      f"{faults} minor faults", flush=True)
    for k, what in ((0, "CPU s"), (1, "kernel s"), (2, "minor faults")):
        ma, mb = (statistics.median(r[k] for r in runs[n]) for n in ("A", "B"))
        paired = statistics.median(rb[k] / ra[k] for ra, rb in zip(runs["A"], runs["B"]))
        print(f"  {what:12s} median A {ma:10.3f}  B {mb:10.3f}  B/A {mb / ma:.3f}  (median of the paired B/A: "
              f"{paired:.3f})")
    print(f"load at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Cold ``meta run`` side by side for two code trees: wall, CPU of the main process and of the figure workers, and
the CPU of each figure as the workers of the run drew it, per kind (issue 15).

``bench_figures_cpu.py`` draws pickled jobs in one warm process; this one measures the figures where they are drawn
in a run: in forked workers that start without the lines of text, fonts and caches of the figures before them, on
the two cores the main process uses at the same time. Each run is a child ``meta run --out DIR`` (cold: empty output
folder) of tree A or B, interleaved A B A B … (``--repeats`` each). The child wraps ``meta.present.workers.render``
(what every worker calls, inherited through the fork) and ``meta.present.figures.render`` with a timer of the
calling process's CPU (``time.process_time``), kernel time and minor page faults (``getrusage``) and appends
``kind cpu kernel faults`` per figure to a file; it reports its own CPU
(``RUSAGE_SELF``), its children's (``RUSAGE_CHILDREN``: the figure workers and the Bayesian fits' workers, reaped)
and its wall time. Printed: medians, ratios B/A and the medians of the paired ratios (each B run against the A run
just before it: the machine's speed drifts between runs), the load average before and after, and whether both trees
wrote the same bytes (every file but ``manifest.json``; the first run of each).

Usage::

    .venv/bin/python tests/benchmarks/bench_figs_ab.py --a /work/main --b . --repeats 5
    .venv/bin/python tests/benchmarks/bench_figs_ab.py --a /work/main --b . --synthetic 60 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported: trees.py
from trees import report_outputs  # noqa: E402

CHILD = """
import os, resource, sys, time
t0 = time.perf_counter()
from meta import cli
from meta.present import figures, workers
LOG = os.environ["BENCH_FIGS_LOG"]

def timed(real):
    def render(job, folder):
        r0, c0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
        try:
            return real(job, folder)
        finally:
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            with open(LOG, "a") as f:
                f.write(f"{job.kind} {time.process_time() - c0} {r1.ru_stime - r0.ru_stime} "
                        f"{r1.ru_minflt - r0.ru_minflt}\\n")
    return render

workers.render = timed(workers.render)
figures.render = timed(figures.render)
rc = cli.main(sys.argv[1:])
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"SELF {me.ru_utime + me.ru_stime} CHILDREN {kids.ru_utime + kids.ru_stime} WALL {time.perf_counter() - t0}",
      file=sys.stderr)
sys.exit(rc)
"""


def run_once(tree: Path, out: Path, extra: list[str], log: Path) -> dict:
    """One cold ``meta run`` with the code of ``tree``: {"main", "workers", "wall", kind: cpu summed}, seconds."""
    shutil.rmtree(out, ignore_errors=True)
    log.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-c", CHILD, "run", "--out", str(out), *extra], cwd=tree,
                          capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "PYTHONPATH": str(tree), "BENCH_FIGS_LOG": str(log)})
    found = re.search(r"SELF ([\d.]+) CHILDREN ([\d.]+) WALL ([\d.]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"meta run failed in {tree}: {done.stderr[-2000:]}")
    res = dict(zip(("main", "workers", "wall"), (float(x) for x in found.groups())))
    per = defaultdict(float)
    for line in log.read_text().splitlines():
        kind, cpu, kernel, faults = line.split()
        per[kind] += float(cpu)
        per["figures"] += float(cpu)
        per["figures kernel"] += float(kernel)
        per["figures faults"] += float(faults)
    return {**res, **per}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", type=Path, required=True, help="code tree A (e.g. /work/main)")
    parser.add_argument("--b", type=Path, required=True, help="code tree B (e.g. this checkout)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lang", default="nl")
    parser.add_argument("--synthetic", type=int, help="SYNTHETIC inputs with this many municipalities "
                                                      "(synthetic_scale.make_scaled_inputs) instead of inputs/")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_figs_ab_"))
    try:
        extra = ["--lang", args.lang]
        what = f"inputs/ ({args.lang})"
        if args.synthetic:
            sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
            from tests.benchmarks.synthetic_scale import make_scaled_inputs

            folder = make_scaled_inputs(work / "inputs", args.synthetic)
            extra += ["--inputs", str(folder), "--plan", str(folder / "plan.toml")]
            what = f"{args.synthetic} SYNTHETIC municipalities ({args.lang})"
        trees = {"A": args.a.resolve(), "B": args.b.resolve()}
        load = os.getloadavg()
        runs = {s: [] for s in trees}
        for i in range(args.repeats):
            for side, tree in trees.items():
                runs[side].append(run_once(tree, work / f"{side}{i}", extra, work / "log"))
                r = runs[side][-1]
                print(f"  {side}: wall {r['wall']:.2f}  main {r['main']:.2f}  workers {r['workers']:.2f}  figures "
                      f"{r['figures']:.2f}", flush=True)
        print(f"bench_figs_ab: cold meta run on {what}, {args.repeats} runs each, interleaved A B A B; load average "
              f"{' '.join(f'{x:.2f}' for x in load)} -> {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"  A = {trees['A']}\n  B = {trees['B']}")
        first = ["wall", "main", "workers", "figures", "figures kernel", "figures faults"]
        keys = first + sorted({k for r in runs["A"] + runs["B"] for k in r} - set(first))
        for key in keys:
            a, b = (statistics.median(r.get(key, 0.0) for r in runs[s]) for s in ("A", "B"))
            paired = statistics.median(rb.get(key, 0.0) / ra[key] if ra.get(key) else float("nan")
                                       for ra, rb in zip(runs["A"], runs["B"]))
            label = {"main": "CPU main process", "workers": "CPU child processes", "wall": "wall",
                     "figures": "CPU all figures", "figures kernel": "kernel CPU of the figures",
                     "figures faults": "minor page faults, figures"}.get(key, f"CPU figures {key}")
            unit = "" if key == "figures faults" else " s"
            print(f"    {label:28s} A {a:8.2f}{unit}   B {b:8.2f}{unit}   B/A = {b / a if a else float('nan'):.2f}"
                  f"   (median of the paired B/A: {paired:.2f})")
        return report_outputs(work / "A0", work / "B0")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""Figure CPU of ``meta run`` on inputs/ under two matplotlib versions, side by side (issue 15; why pyproject pins
``matplotlib<3.11``).

Each version is a folder made by ``pip install --no-deps --target DIR matplotlib==X``; a child process with that
folder first on ``sys.path`` analyses inputs/, draws every figure job once to warm up, then draws each job again
and reports its CPU seconds (``time.process_time``) per kind. Children run interleaved (A B A B ...), ``--reps``
times each; the summary gives medians and the ratio B/A, with the load average.

Usage::

    pip install --no-deps --target /tmp/mpl311 matplotlib==3.11.2
    pip install --no-deps --target /tmp/mpl310 matplotlib==3.10.9
    python tests/benchmarks/bench_figures_mpl.py --a /tmp/mpl311 --b /tmp/mpl310 --reps 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def child() -> None:
    """Draw every figure job of a run on inputs/ in this process; print {kind: [n, cpu seconds]} as JSON."""
    import matplotlib

    from meta import cli
    from meta.analyses.pipeline import analyse
    from meta.present import figures, plots

    args = cli.build_parser().parse_args(["run", "--inputs", str(REPO / "inputs")])
    cli.preflight(args)  # reads inputs/ and the plan as `meta run` does
    plan_path, plan, inputs = args.loaded
    results = analyse(REPO / "inputs", plan, inputs=inputs)
    forest, others = plots.figure_jobs(results, "nl", False)
    cpu, n = defaultdict(float), defaultdict(int)
    with tempfile.TemporaryDirectory() as folder:
        for job in forest + others:  # warm-up: fonts, caches
            figures.render(job, folder)
        for job in forest + others:
            start = time.process_time()
            figures.render(job, folder)
            cpu[job.kind] += time.process_time() - start
            n[job.kind] += 1
    print(json.dumps({"matplotlib": matplotlib.__version__, "kinds": {k: [n[k], cpu[k]] for k in cpu}}))


def run_child(target: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([target, str(REPO)])}
    res = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--a", help="folder holding matplotlib version A")
    parser.add_argument("--b", help="folder holding matplotlib version B")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    if args.child:
        return child()
    print(f"bench_figures_mpl: figure CPU per kind on inputs/, interleaved, {args.reps} runs each")
    print(f"  load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    runs = {"A": [], "B": []}
    for _ in range(args.reps):
        for side, target in (("A", args.a), ("B", args.b)):
            out = run_child(target)
            runs[side].append(out)
            total = sum(c for _, c in out["kinds"].values())
            print(f"  {side} matplotlib {out['matplotlib']}: total {total:.2f} s  "
                  + ", ".join(f"{k} {n} x {c / n:.3f}" for k, (n, c) in sorted(out["kinds"].items())))
    med = {s: statistics.median(sum(c for _, c in r["kinds"].values()) for r in runs[s]) for s in runs}
    print(f"  median total CPU: A ({runs['A'][0]['matplotlib']}) {med['A']:.2f} s, "
          f"B ({runs['B'][0]['matplotlib']}) {med['B']:.2f} s, B/A = {med['B'] / med['A']:.2f}")
    for kind in sorted(runs["A"][0]["kinds"]):
        a = statistics.median(r["kinds"][kind][1] for r in runs["A"])
        b = statistics.median(r["kinds"][kind][1] for r in runs["B"])
        print(f"    {kind:11s} A {a:.2f} s  B {b:.2f} s  B/A = {b / a:.2f}")
    print(f"  load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""The Bayesian few-studies fits of a real ``meta run``, side by side for two code trees (issue 15).

``meta run`` fits the Bayesian model twice per run through :func:`meta.models.bayes_many.bayes_pool_many`: once for
the few-studies columns (``fewstudies.add_few_studies_columns``, during ``analyse``) and once for the prior variants
of the sensitivity analysis (``fewstudies.prior_sensitivity_rows``). This benchmark

1. **captures** those calls (every argument, in order) from one ``meta run --no-figures`` of the tree given by
   ``--capture-tree`` on ``inputs/`` and, with ``--synthetic N``, on SYNTHETIC inputs of N municipalities
   (``synthetic_scale.make_scaled_inputs``, in a temporary folder);
2. **replays** them with each code tree in turn (A B A B …, ``--repeats`` each), in a child process per run that
   imports that tree's ``bayes_pool_many`` and times each of the two batches: its own CPU (``RUSAGE_SELF``), its
   forked workers' CPU (``RUSAGE_CHILDREN``) and the wall time; it prints medians and the ratio B/A, and compares
   every field of every ``BayesResult`` of A and B with exact ``==`` on the bits (NaN included);
3. with ``--runs N``, times N cold ``meta run`` (figures included) per tree and input, interleaved: wall time, the
   main process's CPU and its workers', and checks every output file but ``manifest.json`` is byte-identical.

Usage::

    .venv/bin/python tests/benchmarks/bench_bayes.py --a /work/main --b . --repeats 5 --synthetic 60 --runs 3
    .venv/bin/python tests/benchmarks/bench_bayes.py --a 40fcdf8 --b . --repeats 5 --synthetic 60 --runs 3

The load average is printed at the start and the end; read the ratios with it.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import statistics
import struct
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported: trees.py
from trees import child, cold_run, export, report_outputs  # noqa: E402

HERE = Path(__file__).resolve().parent

CAPTURE = """
import os, pickle, sys
from meta import cli
from meta.analyses import fewstudies
batches = []
original = fewstudies.bayes_pool_many
def recording(calls, *args, **kwargs):
    calls = list(calls)
    batches.append(calls)
    return original(calls, *args, **kwargs)
fewstudies.bayes_pool_many = recording
with open(os.devnull, "w") as null:
    sys.stdout = null
    rc = cli.main(["run", "--no-figures", *sys.argv[2:]])
sys.stdout = sys.__stdout__
pickle.dump(batches, open(sys.argv[1], "wb"))
sys.exit(rc)
"""

REPLAY = """
import pickle, resource, sys, time
from meta.models.bayes_many import bayes_pool_many
batches = pickle.load(open(sys.argv[1], "rb"))
timings, results = [], []
for calls in batches:
    me0, kids0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    fits = bayes_pool_many(calls)
    wall = time.perf_counter() - t0
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    timings.append((me.ru_utime + me.ru_stime - me0.ru_utime - me0.ru_stime,
                    kids.ru_utime + kids.ru_stime - kids0.ru_utime - kids0.ru_stime, wall))
    results.append([tuple(vars(f).items()) for f in fits])
pickle.dump((timings, results), open(sys.argv[2], "wb"))
"""


def bits(value):
    """A field of a BayesResult as something whose == compares every bit (floats by their IEEE bytes)."""
    return struct.pack("<d", value) if isinstance(value, float) else value


def differences(a, b) -> list[str]:
    """Fields of the replayed results that are not bit-identical between two runs."""
    bad = []
    for i, (fits_a, fits_b) in enumerate(zip(a, b)):
        if len(fits_a) != len(fits_b):
            bad.append(f"batch {i}: {len(fits_a)} vs {len(fits_b)} fits")
        for j, (fa, fb) in enumerate(zip(fits_a, fits_b)):
            bad += [f"batch {i} fit {j} {ka}: {va!r} vs {vb!r}" for (ka, va), (kb, vb) in zip(fa, fb)
                    if ka != kb or bits(va) != bits(vb)]
    return bad


def fmt_load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def replay(trees, calls: Path, repeats: int, work: Path, label: str) -> int:
    """Interleaved replay of the captured batches; prints medians and ratios; returns the number of differences."""
    batches = pickle.load(open(calls, "rb"))
    timings = {t: [] for t in trees}
    results = {}
    load0 = fmt_load()
    for _ in range(repeats):
        for i, t in enumerate(trees):
            out = work / f"replay{i}.pkl"
            child(t, REPLAY, calls, out)
            tim, res = pickle.load(open(out, "rb"))
            timings[t].append(tim)
            results.setdefault(t, res)
    print(f"replay of the Bayesian calls of meta run on {label}: batches of {[len(b) for b in batches]} fits, "
          f"{repeats} runs each, interleaved; load average {load0} -> {fmt_load()}")
    base = None
    for t in trees:
        per_batch = [[statistics.median(run[b][k] for run in timings[t]) for k in range(3)]
                     for b in range(len(batches))]
        total = [statistics.median(sum(run[b][k] for b in range(len(batches))) for run in timings[t])
                 for k in range(3)]
        base = base or total
        cpu, base_cpu = total[0] + total[1], base[0] + base[1]
        print(f"  {str(t):36s} CPU {cpu:7.3f} s (x{cpu / base_cpu:.2f}; own {total[0]:.3f}, workers {total[1]:.3f})"
              f"  wall {total[2]:7.3f} s (x{total[2] / base[2]:.2f})   per batch (own, workers, wall): "
              + "; ".join(f"{a:.3f} {b:.3f} {c:.3f}" for a, b, c in per_batch))
    bad = differences(results[trees[0]], results[trees[1]])
    n = sum(len(b) for b in batches)
    print(f"  every field of all {n} BayesResults bit-identical between the trees" if not bad
          else f"  {len(bad)} DIFFERENT fields, e.g. {bad[:5]}")
    return len(bad)


def runs(trees, extra: list[str], repeats: int, work: Path, label: str) -> int:
    """Interleaved cold ``meta run``s (figures included); prints medians and ratios; returns 1 if outputs differ."""
    times = {t: [] for t in trees}
    load0 = fmt_load()
    for _ in range(repeats):
        for i, t in enumerate(trees):
            times[t].append(tuple(cold_run(t, work / f"run{i}", *extra)))
    print(f"cold meta run on {label}, {repeats} runs each, interleaved; load average {load0} -> {fmt_load()}")
    base = None
    for t in trees:
        med = [statistics.median(r[k] for r in times[t]) for k in range(3)]
        cpu = statistics.median(r[0] + r[1] for r in times[t])
        base = base or (med, cpu)
        print(f"  {str(t):36s} wall {med[2]:6.2f} s (x{med[2] / base[0][2]:.2f})   CPU {cpu:6.2f} s "
              f"(x{cpu / base[1]:.2f}; main process {med[0]:.2f} x{med[0] / base[0][0]:.2f}, workers {med[1]:.2f})")
    return report_outputs(work / "run0", work / "run1", shown=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="code tree A: a checkout (e.g. /work/main) or a commit of this "
                        "repository (exported with git archive into a temporary folder)")
    parser.add_argument("--b", type=Path, required=True, help="code tree B, e.g. this checkout")
    parser.add_argument("--capture-tree", type=Path, help="the tree whose meta run is captured (default: A)")
    parser.add_argument("--repeats", type=int, default=5, help="replays per tree")
    parser.add_argument("--synthetic", type=int, default=0, help="also N SYNTHETIC municipalities (0: not)")
    parser.add_argument("--runs", type=int, default=0, help="cold meta runs per tree and input (0: none)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_bayes_"))
    bad = 0
    try:
        a = Path(args.a).resolve() if Path(args.a).is_dir() else export(args.a, work / "a")
        trees = [a, args.b.resolve()]
        for t in trees:  # a tree without meta/ would run whatever meta the virtual environment finds instead
            if not (t / "meta" / "models" / "bayes_many.py").is_file():
                raise SystemExit(f"{t} is not a code tree of meta (no meta/models/bayes_many.py)")
        inputs = [("inputs/", [])]
        if args.synthetic:
            sys.path.insert(0, str(HERE))
            from synthetic_scale import make_scaled_inputs

            folder = make_scaled_inputs(work / "synthetic", args.synthetic)
            inputs.append((f"{args.synthetic} SYNTHETIC municipalities",
                           ["--inputs", str(folder), "--plan", str(folder / "plan.toml")]))
        for n, (label, extra) in enumerate(inputs):
            calls = work / f"calls{n}.pkl"
            child((args.capture_tree or trees[0]).resolve(), CAPTURE, calls, "--out", work / f"capture{n}", *extra)
            bad += replay(trees, calls, args.repeats, work, label)
        for label, extra in inputs if args.runs else ():
            bad += runs(trees, extra, args.runs, work, label)
        return 1 if bad else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

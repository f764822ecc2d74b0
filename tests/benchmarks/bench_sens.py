"""The sensitivity analysis and the component models, and the cold ``meta run`` around them, for two code trees.

Issue 15, lane "sens": the main process runs the sensitivity analysis (``sensitivity_table``) and the component
models (``component_models``) while the figure workers draw, so their CPU is on the run's critical path. This
benchmark measures, for each of two code trees in turn (A B A B …, ``--repeats`` each, interleaved so that both see
the same machine):

1. **in process**: a child with the tree's code analyses the inputs without the sensitivity analysis (untimed), then
   times with ``time.process_time`` (the main process's CPU) ``sensitivity_table`` as a run calls it first (the
   effects of the other SE policy and survey contrast are derived inside it), the part of it spent in the Bayesian
   prior rows (``prior_sensitivity_rows``, another lane's; at scale it fits in worker processes whose CPU is not
   counted here) and ``component_models``, then (lane "post") the writers of the complete results as a cold run
   calls each once: the tables, the workbook's key, the workbook and the report (``render_report``, without the
   figures' files), and the sum of these but the prior rows; and it checks that both trees give equal frames
   (sensitivity, robustness, components: values, dtypes and CSV text). With ``--passes K`` the child times all of it
   K times (each pass from the effects the analysis derived) and reports each quantity's median: on a busy machine
   one pass varies by +-25%;
2. **meta run**: a cold ``meta run`` (empty output folder) in a child reporting its own CPU, its workers' CPU and its
   wall time; both trees' outputs are compared byte for byte (every file but ``manifest.json``).

Each size is one inputs folder: ``inputs/`` and, with ``--sizes 60``, SYNTHETIC inputs of that many municipalities
(``synthetic_scale.make_scaled_inputs``, written to a temporary folder, never to ``inputs/``). Medians, the ratio
B / A and the load average before and after are printed.

Usage::

    .venv/bin/python tests/benchmarks/bench_sens.py --base d2fc8e1               # a commit vs this checkout
    .venv/bin/python tests/benchmarks/bench_sens.py --trees DIR_A DIR_B --sizes 60 --repeats 5
    .venv/bin/python tests/benchmarks/bench_sens.py --trees DIR_A DIR_B --repeats 5 --passes 5 --no-run
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported: trees.py
from trees import add_tree_options, child, code_trees, cold_run, reported, report_outputs  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
IN_PROCESS = """
import copy, dataclasses, pickle, statistics, sys, tempfile, time
from pathlib import Path
from meta.analyses import components, pipeline, sensitivity
from meta.plan import load_plan, plan_file
inputs, dump, passes = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
plan = load_plan(plan_file(None, inputs))
results = pipeline.analyse(inputs, plan, sensitivity=False)
bayes = [0.0]
prior_rows = sensitivity.prior_sensitivity_rows
def timed(*args, **kwargs):
    t = time.process_time()
    try:
        return prior_rows(*args, **kwargs)
    finally:
        bayes[0] += time.process_time() - t
sensitivity.prior_sensitivity_rows = timed
# Babel's numbers loaded first, as outputs._load_shared does before the figure workers are forked
from meta.i18n import fmt_num
from meta.present import report
from meta.write import outputs
fmt_num(0.0, 1, "nl")
out = Path(tempfile.mkdtemp(prefix="bench_sens_out_"))
# each pass starts from the effects the analysis derived (the other SE policy and survey contrast derived again)
fresh = copy.copy(results.effects)
kept = {k: dict(v) for k, v in vars(fresh).items() if isinstance(v, dict)}
spent = []
for _ in range(passes):
    effects = copy.copy(fresh)
    for k, v in kept.items():
        setattr(effects, k, dict(v))
    base, bayes[0] = dataclasses.replace(results, effects=effects), 0.0
    t0 = time.process_time()
    sens = sensitivity.sensitivity_table(base)
    t1 = time.process_time()
    comps = components.component_models(base.studies, base.inputs.arms, plan.shared_control_correlation, plan.level)
    t2 = time.process_time()
    rob = sensitivity.robustness(sens)
    t3 = time.process_time()
    # the writers of the complete results, each called once as a cold run calls it (lane "post")
    done = dataclasses.replace(base, sensitivity=sens, robustness=rob, components=comps)
    times = [t1 - t0, bayes[0], t2 - t1, t3 - t2]
    for write in (lambda: outputs._write_tables(done, out), lambda: outputs.workbook_key(done, "nl", "v"),
                  lambda: outputs.write_workbook(done, out / "meta.xlsx", "nl"),
                  lambda: report.render_report(done, {}, "nl", {})):
        t = time.process_time()
        write()
        times.append(time.process_time() - t)
    spent.append(times + [sum(times) - times[1]])
with open(dump, "wb") as f:
    pickle.dump((sens, rob, comps), f)
print("SPENT " + " ".join(str(statistics.median(column)) for column in zip(*spent)), file=sys.stderr)
"""
#: What :data:`IN_PROCESS` times, in the order it reports them
IN_PROCESS_NAMES = ["sensitivity_table", "  of it: prior rows (Bayes)", "component_models", "robustness", "tables",
                    "workbook key", "workbook", "report (render_report)", "all of these"]


def in_process(tree: Path, inputs: Path, dump: Path, passes: int = 1) -> list[float]:
    """CPU seconds of :data:`IN_PROCESS_NAMES`: sensitivity_table, of it the Bayesian prior rows, component_models,
    robustness, then the writers of the complete results (tables, workbook key, workbook, report), and their sum;
    each the median of ``passes`` passes in one child (the first pass includes what the process does once)."""
    return reported(child(tree, IN_PROCESS, inputs, dump, passes), tree,
                    "SPENT " + " ".join([r"([\d.e-]+)"] * len(IN_PROCESS_NAMES)))


def meta_run(tree: Path, inputs: Path, out: Path) -> list[float]:
    """(main-process CPU, workers' CPU, wall) of one cold ``meta run`` on ``inputs``."""
    extra = []
    if inputs.resolve() != (tree / "inputs").resolve():
        extra = ["--inputs", inputs, "--plan", inputs / "plan.toml"]
    return cold_run(tree, out, *extra)


def equal_frames(a: Path, b: Path) -> bool:
    """Whether two pickled (sensitivity, robustness, components) triples are equal: values, dtypes, CSV text."""
    import pickle

    import pandas as pd

    with open(a, "rb") as fa, open(b, "rb") as fb:
        left, right = pickle.load(fa), pickle.load(fb)
    for x, y in zip(left, right):
        try:
            pd.testing.assert_frame_equal(x, y, check_exact=True)
        except AssertionError:
            return False
        if list(x.dtypes) != list(y.dtypes) or x.to_csv() != y.to_csv():
            return False
    return True


def report(label: str, names: list[str], runs: dict, trees: list[Path]) -> None:
    """Medians per tree and the ratio of the second tree to the first, one line per measured quantity."""
    first = {t: [statistics.median(r[k] for r in runs[t]) for k in range(len(names))] for t in trees}
    print(f"  {label}")
    for k, name in enumerate(names):
        a, b = first[trees[0]][k], first[trees[1]][k]
        ratio = f"x{b / a:.2f}" if a > 0 else "-"
        print(f"    {name:34s} A {a:7.3f} s   B {b:7.3f} s   B/A {ratio}   "
              f"(A runs {' '.join(f'{r[k]:.2f}' for r in runs[trees[0]])}; "
              f"B runs {' '.join(f'{r[k]:.2f}' for r in runs[trees[1]])})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_tree_options(parser, "commit A, compared with this checkout as B (exported with git archive)",
                     "two code trees (checkouts), A and B, instead")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="", help="SYNTHETIC municipalities besides inputs/, e.g. 60")
    parser.add_argument("--no-run", action="store_true", help="only the in-process part")
    parser.add_argument("--passes", type=int, default=1,
                        help="in process: passes per child, the median reported (steadier on a busy machine)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_sens_"))
    try:
        trees = code_trees(args, work)
        folders = [("inputs/", REPO / "inputs")]
        for n in (int(x) for x in args.sizes.split(",") if x.strip()):
            sys.path.insert(0, str(REPO))
            from tests.benchmarks.synthetic_scale import make_scaled_inputs

            folders.append((f"{n} SYNTHETIC municipalities", make_scaled_inputs(work / f"synthetic_{n}", n)))
        status = 0
        print(f"bench_sens: A = {trees[0]}, B = {trees[1]}; {args.repeats} runs each, interleaved A B A B; "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for label, inputs in folders:
            runs = {t: [] for t in trees}
            for _ in range(args.repeats):
                for i, t in enumerate(trees):
                    runs[t].append(in_process(t, inputs, work / f"frames{i}.pkl", args.passes))
            report(f"{label}: in process (CPU of the main process)", IN_PROCESS_NAMES, runs, trees)
            same = equal_frames(work / "frames0.pkl", work / "frames1.pkl")
            print("    frames: equal" if same else "    frames DIFFER")
            status |= not same
            if args.no_run:
                continue
            runs = {t: [] for t in trees}
            for _ in range(args.repeats):
                for i, t in enumerate(trees):
                    runs[t].append(meta_run(t, inputs, work / f"out{i}"))
            report(f"{label}: cold meta run", ["main process CPU", "workers CPU", "wall"], runs, trees)
            status |= report_outputs(work / "out0", work / "out1", "    ")
        print(f"  load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return status
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""The main process's own stages of a cold ``meta run``, side by side for two code trees (issue 15, lane 'start').

For each code tree in turn (A B A B …, ``--repeats`` each) a child process runs ``meta run`` on ``--inputs`` into an
empty folder with some of meta's functions wrapped by timers, installed when their module is first imported (so no
import moves to another stage). It reports the main process's CPU (``time.process_time``) inside each of them —
start-up (the interpreter and ``meta.cli``), preflight (of which load_inputs), analyse, the text check, the forest
jobs (in the main process before fbddae4, in the figure leader since), the figure batches (forking workers),
add_sensitivity, the console counts, the specification-curve jobs, the tables, the workbook's key and the workbook,
the report, waiting for the figures, the manifest, and 'other' (the rest: imports between stages, the README) —
and the CPU spent importing modules (outermost imports only, in any stage); then the whole main process's CPU, its
figure workers' CPU and the wall time, and the main process's CPU (interpreter start-up included) and wall time
(from the child's first line) at the first figure batch, when the figure leader is forked (before 676b11a) or handed
the pooled results (since, the leader forked before the analysis): the serial path the figures wait for, and the
CPU of the imports made until then and the rest (the imports' CPU varies most from run to run). Indented: the parts
of the analysis and of the sensitivity analysis (effects.get sums its calls in both, few-studies its calls in analyse
and in 'complete', which fits after the hand-off the cells whose headline is not Bayesian).
Afterwards one ``python -X importtime -m meta.cli run`` per tree and repeat (interleaved too) gives the summed self
time of every import of the run (the main process and its workers write to the same stderr). Medians, ratios B/A and the load average are
printed; both trees' outputs of the first run are compared byte for byte (every file but ``manifest.json``).

Usage::

    .venv/bin/python tests/benchmarks/bench_start.py --base main              # a commit vs this checkout
    .venv/bin/python tests/benchmarks/bench_start.py --trees DIR_A DIR_B      # two checkouts
    (--repeats 5, --inputs DIR --plan FILE for other inputs, --lang en)

``--base REV`` exports that commit with ``git archive`` into a temporary folder (nothing in the repository changes).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported: trees.py
from trees import add_tree_options, code_trees, report_outputs  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

#: (module, attribute path, stage name): the functions timed in the child (inclusive CPU of each call, summed)
TIMED = (
    ("meta.cli", "preflight", "preflight"),
    ("meta.read.load", "load_inputs", "  load_inputs"),
    ("meta.plan", "check_plan", "  check_plan (all calls)"),
    ("meta.write.rerun", "run_key", "run_key"),
    ("meta.analyses.pipeline", "analyse", "analyse"),
    ("meta.effects.concepts", "EffectsByChoice.get", "  effects.get (all calls)"),
    ("meta.cells", "select_studies", "  select_studies"),
    ("meta.models.engine", "pool_cells", "  pool_cells"),
    ("meta.analyses.tables", "pooled_table", "  pooled_table"),
    ("meta.analyses.fewstudies", "add_few_studies_columns", "  few-studies (Bayes)"),
    ("meta.analyses.tables", "side_by_side", "  side_by_side"),
    ("meta.analyses.tables", "coverage", "  coverage"),
    ("meta.write.outputs", "check_text", "text check"),
    ("meta.present.plots", "forest_jobs", "forest jobs"),
    ("meta.present.figures", "Drawing.add", "figure batches (fork)"),
    ("meta.analyses.pipeline", "complete", "complete (Bayes)"),
    ("meta.analyses.pipeline", "add_sensitivity", "add_sensitivity"),
    ("meta.analyses.sensitivity", "sensitivity_table", "  sensitivity_table"),
    ("meta.analyses.sensitivity", "_reselected_rows", "    _reselected_rows"),
    ("meta.analyses.sensitivity", "prior_sensitivity_rows", "    prior rows (Bayes)"),
    ("meta.analyses.components", "component_models", "  component_models"),
    ("meta.cli", "_console_counts", "console counts"),
    ("meta.present.plots", "sensitivity_jobs", "spec-curve jobs"),
    ("meta.write.outputs", "_write_tables", "tables"),
    ("meta.present.figures", "frames_key", "workbook key"),
    ("meta.write.outputs", "write_workbook", "workbook"),
    ("meta.write.outputs", "_render_report", "report"),
    ("meta.present.figures", "Drawing.finish", "wait for figures"),
    ("meta.write.outputs", "_manifest", "manifest"),
    ("meta.write.outputs", "output_hashes", "manifest"),
)

CHILD = r"""
import importlib.abc, json, resource, sys, time
CPU0, WALL0 = time.process_time(), time.perf_counter()
TIMED = json.loads(sys.argv[1])
FORK = "figure batches (fork)"
spent, depth = {"imports": 0.0}, [0]

def timer(fn, name):
    def timed(*a, **k):
        t0 = time.process_time()
        if name == FORK and "CPU until fork" not in spent:  # the figure leader is forked in the first batch
            spent["CPU until fork"], spent["wall until fork"] = t0, time.perf_counter() - WALL0
            spent["imports until fork"] = spent["imports"]
        try:
            return fn(*a, **k)
        finally:
            spent[name] = spent.get(name, 0.0) + time.process_time() - t0
    return timed

def patch(module):
    for mod, path, name in TIMED:
        if mod == module.__name__:
            owner, attr = module, path
            if "." in path:
                owner_name, attr = path.split(".")
                owner = getattr(module, owner_name, None)
            if owner is not None and callable(getattr(owner, attr, None)):  # a tree without it: not timed
                setattr(owner, attr, timer(getattr(owner, attr), name.strip()))

class Finder(importlib.abc.MetaPathFinder):
    # times every outermost import and patches a timed module when it is executed
    def find_spec(self, name, path, target=None):
        for finder in sys.meta_path:
            if finder is self:
                continue
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or isinstance(loader, type) or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module, run=run):
            depth[0] += 1
            t0 = time.process_time()
            try:
                run(module)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    spent["imports"] += time.process_time() - t0
            patch(module)
        try:
            loader.exec_module = exec_module
        except AttributeError:
            pass
        return spec

sys.meta_path.insert(0, Finder())
from meta import cli
spent["start-up"] = time.process_time() - CPU0
rc = cli.main(sys.argv[2:])
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
spent.update({"main process": me.ru_utime + me.ru_stime, "workers": kids.ru_utime + kids.ru_stime,
              "wall": time.perf_counter() - WALL0})
print("STAGES " + json.dumps(spent), file=sys.stderr)
sys.exit(rc)
"""

ORDER = ("start-up", "preflight", "load_inputs", "check_plan (all calls)", "run_key", "analyse",
         "effects.get (all calls)", "select_studies", "pool_cells", "pooled_table", "few-studies (Bayes)",
         "side_by_side", "coverage", "text check", "forest jobs", "figure batches (fork)", "complete (Bayes)",
         "add_sensitivity", "sensitivity_table", "_reselected_rows", "prior rows (Bayes)", "component_models",
         "console counts", "spec-curve jobs", "tables", "workbook key", "workbook", "report", "wait for figures",
         "manifest", "other", "imports", "main process", "workers", "wall", "CPU until fork", "wall until fork",
         "imports until fork", "CPU until fork less imports")
#: Stages timed inside another one (not counted again in "other"): load_inputs in the preflight, the parts of
#: analyse and add_sensitivity (effects.get sums its calls in both)
NESTED = ("load_inputs", "check_plan (all calls)", "effects.get (all calls)", "select_studies", "pool_cells",
          "pooled_table", "few-studies (Bayes)", "side_by_side", "coverage", "sensitivity_table", "_reselected_rows",
          "prior rows (Bayes)", "component_models")


def run_once(tree: Path, out: Path, extra: list[str]) -> dict:
    """{stage: CPU seconds} (and workers' CPU, wall) of one cold ``meta run`` with the code of ``tree``."""
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(TIMED), "run", "--out", str(out), *extra],
                          cwd=tree, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tree)},
                          timeout=1800)
    found = re.search(r"^STAGES (.*)$", done.stderr, re.M)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"meta run failed in {tree}: {done.stderr[-2000:]}")
    spent = json.loads(found.group(1))
    timed = [k for k in ORDER[:ORDER.index("other")] if k not in NESTED]
    spent["other"] = spent["main process"] - sum(spent.get(k, 0.0) for k in timed)  # imports between stages too
    if "CPU until fork" in spent:  # the serial path without the imports, whose CPU varies most from run to run
        spent["CPU until fork less imports"] = spent["CPU until fork"] - spent["imports until fork"]
    return spent


def importtime_total(tree: Path, out: Path, extra: list[str]) -> float:
    """Summed self time (s) of every import ``python -X importtime -m meta.cli run`` reports (main and workers)."""
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "meta.cli", "run", "--out", str(out), *extra],
                          cwd=tree, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tree)},
                          timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"meta run -X importtime failed in {tree}: {done.stderr[-2000:]}")
    return sum(int(m) for m in re.findall(r"^import time:\s+(\d+) \|", done.stderr, re.M)) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_tree_options(parser)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--inputs", help="inputs folder (default: the tree's inputs/)")
    parser.add_argument("--plan", help="plan file")
    parser.add_argument("--lang", default="nl")
    args = parser.parse_args()
    extra = ["--lang", args.lang] + (["--inputs", args.inputs] if args.inputs else []) + (
        ["--plan", args.plan] if args.plan else [])
    work = Path(tempfile.mkdtemp(prefix="bench_start_"))
    try:
        trees = code_trees(args, work)
        load = os.getloadavg()
        runs = {t: [] for t in trees}
        imports = {t: [] for t in trees}
        for i in range(args.repeats):
            for j, t in enumerate(trees):
                out = work / (f"out{j}" if i == 0 else "out")
                runs[t].append(run_once(t, out, extra))
        for _ in range(max(1, args.repeats // 2)):
            for t in trees:
                imports[t].append(importtime_total(t, work / "out_it", extra))
        end = os.getloadavg()
        print(f"bench_start: cold meta run {' '.join(extra)}, {args.repeats} runs per tree, interleaved; load average "
              f"{' '.join(f'{x:.2f}' for x in load)} -> {' '.join(f'{x:.2f}' for x in end)}")
        print("CPU seconds of the main process per stage (inclusive, imports made in it included; median; 'other' = the\n"
              "main process's CPU outside the stages, e.g. the imports between them), workers' CPU and wall time:")
        print(f"  {'stage':27s}" + "".join(f"{'A' if k == 0 else 'B':>9s}" for k in range(len(trees))) + "    B/A")
        for stage in ORDER:
            med = [statistics.median(r.get(stage, 0.0) for r in runs[t]) for t in trees]
            ratio = f"x{med[1] / med[0]:.2f}" if med[0] > 0 else "-"
            print(f"  {'  ' * (stage in NESTED) + stage:27s}" + "".join(f"{m:9.3f}" for m in med) + f"  {ratio:>6s}")
        med = [statistics.median(imports[t]) for t in trees]
        print(f"  {'-X importtime total':27s}" + "".join(f"{m:9.3f}" for m in med) + f"  x{med[1] / med[0]:.2f}"
              f"   ({len(imports[trees[0]])} runs each; self times of every import, main and workers)")
        for k, t in enumerate(trees):
            name = t if args.trees or k else f"{args.base or 'HEAD'} (git archive)"
            print(f"  {'A' if k == 0 else 'B'} = {name}")
        return report_outputs(work / "out0", work / "out1")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

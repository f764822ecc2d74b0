"""Figure CPU of two code trees side by side, and whether they draw the same bytes (issue 15).

``--build`` analyses an inputs folder once and pickles every figure job of the run (forest plots, specification
curves, the component figure, the overview) in one language. Then for each of ``--reps`` rounds a child process per
tree (``--a``, ``--b``: folders put first on ``PYTHONPATH``, interleaved A B A B ...) unpickles the same jobs,
draws each once to warm up (fonts, caches) and again timed (``time.process_time``), writing the PNGs into its own
folder (the warm-up's kept lines of text and their layouts, ``meta.present.agg_text``, and its text widths,
``drawing._line_width_pt``, are dropped first: a run's worker starts without them and draws each figure once).
The summary gives per kind the median CPU seconds, their ratio B/A and the median of the ratios of each B run to
the A run just before it (the machine's speed drifts between rounds), with the load average, and compares every file
the two trees wrote byte for byte (a PNG of other bytes by its decoded pixels, with Pillow).

Usage::

    python tests/benchmarks/bench_figures_cpu.py --build /tmp/jobs_nl.pkl --inputs inputs --lang nl
    python tests/benchmarks/bench_figures_cpu.py --jobs /tmp/jobs_nl.pkl --a /work/main --b . --reps 3
"""
from __future__ import annotations

import argparse
import filecmp
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported: trees.py
from trees import same_pixels  # noqa: E402


def build(path: str, inputs: str, plan: str | None, lang: str) -> None:
    """Analyse ``inputs`` (with ``plan``) and pickle every figure job of the run in ``lang`` to ``path``."""
    from meta import cli
    from meta.analyses.pipeline import analyse
    from meta.present import plots

    argv = ["run", "--inputs", inputs] + (["--plan", plan] if plan else [])
    args = cli.build_parser().parse_args(argv)
    cli.preflight(args)
    _, loaded_plan, loaded = args.loaded
    results = analyse(Path(inputs), loaded_plan, inputs=loaded)
    forest, others = plots.figure_jobs(results, lang, False)
    Path(path).write_bytes(pickle.dumps(forest + others))


def child(jobs_path: str, out: str, kinds: str | None = None) -> None:
    """Draw every pickled job (of ``kinds``, comma-separated; default all) into ``out`` twice (warm-up, then
    timed); print {kind: [n, cpu s]} as JSON."""
    from meta.present import figures

    jobs = [j for j in pickle.loads(Path(jobs_path).read_bytes()) if not kinds or j.kind in kinds.split(",")]
    cpu, n = defaultdict(float), defaultdict(int)
    with tempfile.TemporaryDirectory() as warm:
        for job in jobs:
            figures.render(job, warm)
    # what a run's worker process starts without: lines of text, their layouts and widths kept from drawing these
    # figures before (a tree without one of these caches has nothing to clear)
    from meta.present import drawing
    drawing._line_width_pt.cache_clear()
    try:
        from meta.present import agg_text
        agg_text._LINES.clear()
        getattr(agg_text, "_LAYOUTS", {}).clear()
    except ImportError:
        pass
    for job in jobs:
        start = time.process_time()
        figures.render(job, out)
        cpu[job.kind] += time.process_time() - start
        n[job.kind] += 1
    print(json.dumps({k: [n[k], cpu[k]] for k in cpu}))


def run_child(tree: str, jobs: str, out: str, kinds: str | None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    res = subprocess.run([sys.executable, __file__, "--child", "--jobs", jobs, "--out", out]
                         + (["--kinds", kinds] if kinds else []), env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def compare(a: Path, b: Path) -> tuple[list[str], list[str]]:
    """(names of the files that differ or exist on one side only, names of the PNGs among them whose pixels, mode,
    size and resolution are the same: their encoder differs, e.g. zlib-ng against zlib since 855f653)."""
    names = sorted({p.name for p in a.iterdir()} | {p.name for p in b.iterdir()})
    differ = [n for n in names if not ((a / n).is_file() and (b / n).is_file()
                                       and filecmp.cmp(a / n, b / n, shallow=False))]
    return differ, [n for n in differ if n.endswith(".png") and (a / n).is_file() and (b / n).is_file()
                    and same_pixels(a / n, b / n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--build", help="pickle the figure jobs of --inputs to this file")
    parser.add_argument("--inputs", default="inputs")
    parser.add_argument("--plan")
    parser.add_argument("--lang", default="nl")
    parser.add_argument("--jobs", help="pickled jobs (from --build)")
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--a", help="code tree A (e.g. /work/main)")
    parser.add_argument("--b", help="code tree B")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--kinds", help="only these kinds of figure (comma-separated: forest,spec_curve,...)")
    args = parser.parse_args()
    if args.build:
        return build(args.build, args.inputs, args.plan, args.lang)
    if args.child:
        return child(args.jobs, args.out, args.kinds)
    print(f"bench_figures_cpu: {args.jobs}, A={args.a} B={args.b}, interleaved, {args.reps} runs each")
    print(f"  load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    runs = {"A": [], "B": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.reps):
            for side, tree in (("A", args.a), ("B", args.b)):
                out = Path(tmp) / f"{side}{i}"
                out.mkdir()
                runs[side].append(run_child(tree, args.jobs, str(out), args.kinds))
                r = runs[side][-1]
                print(f"  {side}: total {sum(c for _, c in r.values()):.2f} s  "
                      + ", ".join(f"{k} {n} x {c / n:.3f}" for k, (n, c) in sorted(r.items())), flush=True)
        differ, same_pixels = compare(Path(tmp) / "A0", Path(tmp) / "B0")
        nfiles = len(list((Path(tmp) / "A0").iterdir()))
    for kind in [*sorted(runs["A"][0]), "total"]:
        cpu = {s: [sum(c for k, (_, c) in r.items() if kind in ("total", k)) for r in runs[s]] for s in ("A", "B")}
        a, b = (statistics.median(cpu[s]) for s in ("A", "B"))
        paired = statistics.median(y / x for x, y in zip(cpu["A"], cpu["B"]))  # each B run against the A run
        print(f"    {kind:11s} A {a:.2f} s  B {b:.2f} s  B/A = {b / a:.2f}  (median of the {len(cpu['A'])} "
              f"paired B/A: {paired:.2f})")
    print(f"  load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  bytes: {nfiles - len(differ)} of {nfiles} files identical"
          + (f"; {len(same_pixels)} PNGs of other bytes with the same pixels" if same_pixels else "")
          + (f"; DIFFER: {sorted(set(differ) - set(same_pixels))}" if set(differ) - set(same_pixels) else ""))


if __name__ == "__main__":
    main()

"""The main process's own CPU in a cold ``meta run``, side by side for two code trees (issue 15).

Since the figures are drawn by worker processes while the main process analyses and writes, the main process's
serial work (start-up imports, reading, the analysis, the report, the workbook, the tables) is the floor of the wall
time. This benchmark runs ``meta run`` on ``inputs/`` from an empty output folder with each code tree in turn
(A B A B …, ``--repeats`` each), in a child process that reports its own CPU (``RUSAGE_SELF``: the main process), its
workers' CPU (``RUSAGE_CHILDREN``) and its wall time, and prints the medians, the ratios to the first tree and the
load average. It checks that both trees wrote the same bytes (every file but ``manifest.json``).

Usage::

    .venv/bin/python tests/benchmarks/bench_main_cpu.py --base 7f511f5          # a commit vs this checkout
    .venv/bin/python tests/benchmarks/bench_main_cpu.py --trees DIR_A DIR_B     # two checkouts

``--base REV`` exports that commit with ``git archive`` into a temporary folder (nothing in the repository changes).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHILD = """
import resource, sys, time
t0 = time.perf_counter()
from meta import cli
rc = cli.main(sys.argv[1:])
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"SELF {me.ru_utime + me.ru_stime} CHILDREN {kids.ru_utime + kids.ru_stime} WALL {time.perf_counter() - t0}",
      file=sys.stderr)
sys.exit(rc)
"""


def run_once(tree: Path, out: Path) -> tuple[float, float, float]:
    """(main-process CPU, workers' CPU, wall) of one cold ``meta run`` with the code of ``tree``, in seconds."""
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run([sys.executable, "-c", CHILD, "run", "--out", str(out)], cwd=tree, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(tree)}, timeout=1800)
    found = re.search(r"SELF ([\d.]+) CHILDREN ([\d.]+) WALL ([\d.]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"meta run failed in {tree}: {done.stderr[-2000:]}")
    return tuple(float(x) for x in found.groups())


def same_outputs(a: Path, b: Path) -> list[str]:
    """The files (but manifest.json) whose bytes differ between two output folders, or that one lacks."""
    names = {p.relative_to(a) for p in a.rglob("*") if p.is_file()} | {p.relative_to(b) for p in b.rglob("*")
                                                                        if p.is_file()}
    return sorted(str(n) for n in names if n.name != "manifest.json"
                  and not ((a / n).is_file() and (b / n).is_file() and filecmp.cmp(a / n, b / n, shallow=False)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", help="a commit to compare with this checkout (exported with git archive)")
    parser.add_argument("--trees", nargs=2, type=Path, help="two code trees (checkouts) to compare instead")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_main_cpu_"))
    try:
        if args.trees:
            trees = [t.resolve() for t in args.trees]
        else:
            base = work / "base"
            base.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.base or "HEAD"], capture_output=True,
                                     check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
            trees = [base, REPO]
        load = os.getloadavg()
        runs = {t: [] for t in trees}
        for _ in range(args.repeats):
            for i, t in enumerate(trees):
                runs[t].append(run_once(t, work / f"out{i}"))
        print(f"bench_main_cpu: cold meta run on inputs/, {args.repeats} runs each, interleaved; load average "
              f"{' '.join(f'{x:.2f}' for x in load)} -> {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        first = [statistics.median(r[k] for r in runs[trees[0]]) for k in range(3)]
        for t in trees:
            med = [statistics.median(r[k] for r in runs[t]) for k in range(3)]
            print(f"  {str(t):40s} main process CPU {med[0]:6.2f} s (x{med[0] / first[0]:.2f})   workers CPU "
                  f"{med[1]:6.2f} s (x{med[1] / first[1]:.2f})   wall {med[2]:6.2f} s (x{med[2] / first[2]:.2f})")
        differ = same_outputs(work / "out0", work / "out1")
        print("  outputs: byte-identical (manifest.json aside)" if not differ else f"  outputs DIFFER: {differ}")
        return 1 if differ else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

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
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported: trees.py
from trees import add_tree_options, code_trees, cold_run, report_outputs  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_tree_options(parser)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_main_cpu_"))
    try:
        trees = code_trees(args, work)
        load = os.getloadavg()
        runs = {t: [] for t in trees}
        for _ in range(args.repeats):
            for i, t in enumerate(trees):
                runs[t].append(cold_run(t, work / f"out{i}"))
        print(f"bench_main_cpu: cold meta run on inputs/, {args.repeats} runs each, interleaved; load average "
              f"{' '.join(f'{x:.2f}' for x in load)} -> {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        first = [statistics.median(r[k] for r in runs[trees[0]]) for k in range(3)]
        for t in trees:
            med = [statistics.median(r[k] for r in runs[t]) for k in range(3)]
            print(f"  {str(t):40s} main process CPU {med[0]:6.2f} s (x{med[0] / first[0]:.2f})   workers CPU "
                  f"{med[1]:6.2f} s (x{med[1] / first[1]:.2f})   wall {med[2]:6.2f} s (x{med[2] / first[2]:.2f})")
        return report_outputs(work / "out0", work / "out1")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

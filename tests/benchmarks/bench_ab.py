"""Checkouts of meta side by side: ``meta run`` cold (empty output folder) wall and CPU time, interleaved.

``python tests/benchmarks/bench_ab.py A_CHECKOUT B_CHECKOUT [C …] [--repeats 3] [--inputs DIR --plan FILE]`` runs
``meta run`` with ``PYTHONPATH=A``, ``PYTHONPATH=B`` … in turn (A B A B …, each into a new empty folder) and prints
every run, the medians, the ratio of each to A and the load average at the start and the end. The runs' own stdout
and stderr are discarded (a failed run is reported). CPU time includes the figure workers.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(checkout: Path, out: Path, extra: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the run and its workers) of one cold ``meta run``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "meta.cli", "run", "--out", str(out), *extra], cwd=checkout,
                         env={**os.environ, "PYTHONPATH": str(checkout)}, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise SystemExit(f"{checkout}: meta run failed ({res.returncode}): {res.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkouts", type=Path, nargs="+")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--inputs")
    ap.add_argument("--plan")
    args = ap.parse_args(argv)
    extra = (["--inputs", args.inputs] if args.inputs else []) + (["--plan", args.plan] if args.plan else [])
    names = [chr(ord("A") + i) for i in range(len(args.checkouts))]
    print(f"load at start: {os.getloadavg()}", flush=True)
    times = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="bench_ab_") as tmp:
        for i in range(args.repeats):
            for name, checkout in zip(names, args.checkouts):
                wall, cpu = one_run(checkout.resolve(), Path(tmp) / f"{name}{i}" / "outputs", extra)
                times[name].append((wall, cpu))
                print(f"{name} run {i + 1}: wall {wall:.2f} s, cpu {cpu:.2f} s", flush=True)
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}
    for name, checkout in zip(names, args.checkouts):
        print(f"{name} ({checkout}): median wall {med[name][0]:.2f} s, cpu {med[name][1]:.2f} s; ratio to A: wall "
              f"{med[name][0] / med['A'][0]:.3f}, cpu {med[name][1] / med['A'][1]:.3f}")
    print(f"load at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

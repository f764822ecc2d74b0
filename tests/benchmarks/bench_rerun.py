"""What an analyst waits for a rerun, two checkouts side by side (issue 15, whole-run reuse).

Interleaved (A B A B ...), ``--reps`` times each, median and ratio B/A, with the load average:

- ``warm``: ``meta run`` into the outputs of the same run (nothing changed);
- ``edit``: one estimate changed in a copy of ``inputs/`` (``--edit-line``, ``--old``, ``--new``), run into the
  outputs of the unedited copy (restored before every run, not timed).

Usage::

    python tests/benchmarks/bench_rerun.py --a /work/main --b . --work /tmp/bench_rerun --reps 3

Each checkout runs with its own code (``PYTHONPATH``) and the Python running this script. Prints one line per run
and a summary; every run's outputs are compared between A and B (``cmp``, all files but ``manifest.json``).
"""
from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def meta(repo: Path, *args: str) -> float:
    """Seconds of one ``meta run`` with the code of ``repo``; stops on failure."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "meta.cli", "run", *args], cwd=repo, env=env, capture_output=True,
                         text=True)
    seconds = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(f"{repo}: meta run {' '.join(args)} failed: {res.stderr}")
    return seconds


def differences(a: Path, b: Path) -> list[str]:
    """Files (relative) that differ between two output folders, manifest.json left out."""
    names = {p.relative_to(a) for p in a.rglob("*") if p.is_file()} | {p.relative_to(b) for p in b.rglob("*")
                                                                         if p.is_file()}
    return sorted(str(n) for n in names if str(n) != "manifest.json" and not (
        (a / n).is_file() and (b / n).is_file() and filecmp.cmp(a / n, b / n, shallow=False)))


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def prepare(sides: dict, work: Path, inputs: Path, edit: tuple[int, str, str]) -> tuple[Path, Path]:
    """Copies of the inputs (unedited and edited) and, per side, the outputs of a cold run of each scenario."""
    original, edited = work / "inputs", work / "inputs_edited"
    for folder in (original, edited):
        shutil.copytree(inputs, folder)
    lines = (edited / "estimates.csv").read_text(encoding="utf-8").split("\n")
    line, old, new = edit
    if old not in lines[line - 1]:
        raise SystemExit(f"estimates.csv line {line} does not hold {old!r}")
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    (edited / "estimates.csv").write_text("\n".join(lines), encoding="utf-8")
    for name, repo in sides.items():
        print(f"prepare {name}: cold runs ({load()})", flush=True)
        meta(repo, "--out", str(work / name / "warm"))
        meta(repo, "--inputs", str(original), "--out", str(work / name / "before_edit"))
    return original, edited


def measure(sides: dict, work: Path, edited: Path, reps: int) -> dict:
    """{(scenario, side): [seconds]}, interleaved."""
    times = {}
    for scenario in ("warm", "edit"):
        for i in range(reps):
            for name, repo in sides.items():
                if scenario == "warm":
                    seconds = meta(repo, "--out", str(work / name / "warm"))
                else:
                    out = work / name / "edit"
                    shutil.rmtree(out, ignore_errors=True)
                    shutil.copytree(work / name / "before_edit", out)
                    seconds = meta(repo, "--inputs", str(edited), "--out", str(out))
                times.setdefault((scenario, name), []).append(seconds)
                print(f"{scenario} {name} run {i + 1}: {seconds:.2f} s (load {load()})", flush=True)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", required=True, help="checkout A (e.g. /work/main)")
    p.add_argument("--b", required=True, help="checkout B (e.g. this worktree)")
    p.add_argument("--work", required=True, help="an empty or new folder for inputs copies and outputs")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--edit-line", type=int, default=17, help="line of estimates.csv to change (default 17)")
    p.add_argument("--old", default=",-0.12,proportion,,,,,,*,,,364,,,,\"-0,12*\"")
    p.add_argument("--new", default=",-0.13,proportion,,,,,,*,,,364,,,,\"-0,13*\"")
    args = p.parse_args()
    sides = {"A": Path(args.a).resolve(), "B": Path(args.b).resolve()}
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"A = {sides['A']}, B = {sides['B']}; load at start {load()}", flush=True)
    _, edited = prepare(sides, work, sides["B"] / "inputs", (args.edit_line, args.old, args.new))
    times = measure(sides, work, edited, args.reps)
    print(f"load at end {load()}")
    for scenario in ("warm", "edit"):
        a, b = (statistics.median(times[(scenario, s)]) for s in ("A", "B"))
        print(f"{scenario}: median A {a:.2f} s, B {b:.2f} s, B/A {b / a:.2f} ({args.reps} runs each, interleaved)")
        diff = differences(work / "A" / scenario, work / "B" / scenario)
        print(f"{scenario}: outputs A vs B differ in {diff or 'nothing'} (manifest.json left out)")


if __name__ == "__main__":
    main()

"""End-to-end benchmark of ``meta run``: time per stage, cold vs warm vs an R/metafor script, and scaling.

Run with ``make bench`` (after ``bench_pool.py``) or ``.venv/bin/python tests/benchmarks/bench_run.py``.
Everything is measured side by side in one invocation, so the ratios hold even when the machine is busy; the
load average at the start and end is printed with the results.

1. **Stages** (real inputs): ``meta run`` in a child process whose stage functions are wrapped with timers
   (read, harmonise, select, pool, tables, sensitivity, components, Bayes, figures, report, workbook, write;
   exclusive time, and what the sensitivity analysis calls itself — harmonise, select, pool — counts as
   sensitivity, except Bayes). Cold (empty output folder) and warm (rerun into the previous outputs);
   median of ``--repeats`` runs.
2. **Cold, warm and R** (real inputs): wall time of the ``meta run`` command as a user runs it (Python start-up
   included) from an empty output folder and again into its previous outputs, and of
   ``Rscript ../shared/bench/peer_metafor.R studies.csv OUTDIR`` on the ``studies.csv`` that run wrote
   (R start-up included). The three are interleaved in every repetition; medians and ratios are printed, and
   the median of the paired ratios cold/R with its 95% interval (:func:`paired_verdict`): the cold target is
   met when the whole interval lies below 1 (with 6 or more repeats; the machine's speed drifts by ±25% between
   minutes, so one ratio of medians may land on either side of 1 when the two are level).
   The R side is skipped, saying so, when ``Rscript`` or metafor is absent.
3. **Scaling**: SYNTHETIC inputs (``synthetic_scale.py``; generated in a temporary folder, never in inputs/)
   with ``--sizes`` municipalities, each reporting every plan outcome × arm × horizon. Per size: cold
   ``meta run`` wall time, the stages, peak resident memory (the run and its figure workers), output sizes,
   and the R script on the same ``studies.csv``; then the growth exponent between sizes
   (time ∝ n^b: b = 1 is linear).

Options: ``--repeats`` (3), ``--sizes`` (6,60,600), ``--scaling-repeats`` (1), ``--no-r``, ``--skip-scaling``,
``--skip-stages``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PEER_R = Path(os.environ.get("META_PEER_R", REPO.parent / "shared" / "bench" / "peer_metafor.R"))
if not PEER_R.exists():  # a worktree lives one level deeper than the main checkout
    PEER_R = Path("/work/shared/bench/peer_metafor.R")
STAGES = ("read", "harmonise", "select", "pool", "tables", "sensitivity", "components", "bayes", "figures",
          "report", "workbook", "write", "other")
#: (module, function, stage) wrapped with a timer in the child process.
WRAPPED = (
    ("meta.read.load", "load_inputs", "read"), ("meta.plan", "load_plan", "read"),
    ("meta.effects.harmonise", "harmonise", "harmonise"), ("meta.cells", "select_studies", "select"),
    ("meta.models.engine", "pool_cells", "pool"), ("meta.analyses.tables", "pooled_table", "tables"),
    ("meta.analyses.tables", "side_by_side", "tables"), ("meta.analyses.tables", "coverage", "tables"),
    ("meta.analyses.sensitivity", "sensitivity_table", "sensitivity"),
    ("meta.analyses.sensitivity", "robustness", "sensitivity"),
    ("meta.analyses.components", "component_models", "components"), ("meta.models.bayes", "bayes_pool_table", "bayes"),
    ("meta.write.outputs", "write_workbook", "workbook"), ("meta.write.outputs", "write_outputs", "write"),
    # meta run: the forest plots are drawn by workers during the sensitivity analysis; "figures" is the wait for
    # the workers at the end, "write" the rest of the writing (tables, manifest) after the sensitivity analysis
    ("meta.present.figures", "Drawing.finish", "figures"), ("meta.write.outputs", "Writing.finish", "write"),
    ("meta.present.report", "render_report", "report"),
)
#: Inside these stages, the stage functions they call count as theirs (except Bayes, always its own).
ABSORBING = ("sensitivity",)


# --------------------------------------------------------------------------- #
# child: one `meta run` in this process, stages timed
# --------------------------------------------------------------------------- #
def child(args) -> int:
    t_start = time.perf_counter()
    sys.path.insert(0, str(REPO))
    import importlib

    from meta import cli  # first: it sets the BLAS thread count before numpy loads

    totals = dict.fromkeys(STAGES, 0.0)
    stack: list[list] = []  # [stage, start, time spent in nested stages]

    def wrap(fn, stage):
        def timed(*a, **kw):
            if stack and stack[-1][0] in ABSORBING and stage != "bayes":
                return fn(*a, **kw)
            stack.append([stage, time.perf_counter(), 0.0])
            try:
                return fn(*a, **kw)
            finally:
                st, t0, nested = stack.pop()
                spent = time.perf_counter() - t0
                totals[st] += spent - nested
                if stack:
                    stack[-1][2] += spent
        timed.__wrapped__ = fn
        return timed

    modules = {name: importlib.import_module(name) for name in {m for m, _, _ in WRAPPED}}
    if args.allow:
        from tests.benchmarks.synthetic_scale import allow_municipalities, municipality_codes

        allow_municipalities(municipality_codes(args.allow))
    originals = {}
    for mod, fn_name, stage in WRAPPED:
        if "." in fn_name:  # a method: wrapped on its class
            cls_name, method = fn_name.split(".")
            cls = getattr(modules[mod], cls_name, None)
            if cls is not None and hasattr(cls, method):
                setattr(cls, method, wrap(getattr(cls, method), stage))
            continue
        fn = getattr(modules[mod], fn_name, None)
        if fn is not None:
            originals[id(fn)] = (fn, wrap(fn, stage))
    for m in [m for name, m in list(sys.modules.items()) if name.startswith("meta") and m is not None]:
        for attr, val in list(vars(m).items()):  # also names bound by `from x import f`
            if callable(val) and id(val) in originals and originals[id(val)][0] is val:
                setattr(m, attr, originals[id(val)][1])

    t_main = time.perf_counter()
    argv = ["run", "--inputs", args.inputs, "--out", args.out] + (["--plan", args.plan] if args.plan else [])
    if args.no_figures:
        argv.append("--no-figures")
    with open(os.devnull, "w") as null:
        stdout, sys.stdout = sys.stdout, null
        try:
            rc = cli.main(argv)
        finally:
            sys.stdout = stdout
    total = time.perf_counter() - t_start
    totals["other"] = total - sum(v for k, v in totals.items() if k != "other")
    out = Path(args.out)
    sizes = {p.name: p.stat().st_size for p in out.glob("*") if p.is_file()}
    fig_bytes = sum(p.stat().st_size for p in (out / "figures").glob("*")) if (out / "figures").is_dir() else 0
    manifest = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else {}
    print(json.dumps({
        "rc": rc, "total": total, "startup": t_main - t_start, "stages": totals,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "maxrss_workers_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "report_mb": sizes.get("report.html", 0) / 1e6, "sensitivity_mb": sizes.get("sensitivity.csv", 0) / 1e6,
        "figures_mb": fig_bytes / 1e6, "reused": len(manifest.get("reused", [])),
        "drawn": len(set(manifest.get("content_keys", {})) - set(manifest.get("reused", []))),  # a rerun taken
        # whole (meta.write.rerun) lists every file under reused, tables too
    }))
    return 0


def run_child(inputs, out, plan=None, allow=0, no_figures=False, timeout=7200) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--inputs", str(inputs), "--out", str(out)]
    if plan:
        cmd += ["--plan", str(plan)]
    if allow:
        cmd += ["--allow", str(allow)]
    if no_figures:
        cmd.append("--no-figures")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    if res["rc"] != 0:
        raise RuntimeError(f"meta run exited {res['rc']}: {proc.stderr.strip()[-2000:]}")
    return res


# --------------------------------------------------------------------------- #
# parent
# --------------------------------------------------------------------------- #
def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def timed(cmd, env=None, cwd=REPO, timeout=7200) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    return time.perf_counter() - t0, proc


def r_available(no_r: bool) -> tuple[bool, str]:
    if no_r:
        return False, "R side skipped (--no-r)"
    rscript = shutil.which("Rscript")
    if rscript is None:
        return False, "Rscript is not on PATH: the R side is skipped"
    if not PEER_R.exists():
        return False, f"{PEER_R} not found: the R side is skipped"
    probe = subprocess.run([rscript, "-e", "quit(status = if (requireNamespace('metafor', quietly=TRUE)) 0 else 3)"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return False, "R is installed but metafor does not load: the R side is skipped"
    return True, ""


def run_r(studies_csv: Path, outdir: Path, timeout: float = 7200) -> tuple[float | None, str]:
    """(wall seconds of peer_metafor.R on ``studies_csv``, "") or (None, why it has no time)."""
    outdir.mkdir(parents=True, exist_ok=True)
    try:
        t, proc = timed(["Rscript", str(PEER_R), str(studies_csv), str(outdir)], timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"stopped after {timeout:.0f} s"
    if proc.returncode != 0:  # the script stops at the first cell metafor cannot fit
        last = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return None, f"failed after {t:.1f} s: " + " ".join(last[-2:])[:160]
    return t, ""


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def median_interval(xs: list[float], coverage: float = 0.95) -> tuple[float, float] | None:
    """A distribution-free interval for the median of ``xs`` (sign-test interval: the order statistics
    x₍ₖ₎ and x₍ₙ₊₁₋ₖ₎ with the largest k whose coverage 1 − 2·P(B ≤ k − 1), B ~ Binomial(n, ½), is at least
    ``coverage``: the sign test's confidence interval for a median, Conover, Practical Nonparametric Statistics,
    3rd ed., 1999), or None when even x₍₁₎ and x₍ₙ₎ cover less (n ≤ 5 at 95%)."""
    xs = sorted(xs)
    n = len(xs)
    below, k = 0.0, 0  # below: P(B <= k - 1)
    while k < n // 2 and 1 - 2 * (below + math.comb(n, k) / 2 ** n) >= coverage:
        below += math.comb(n, k) / 2 ** n
        k += 1
    return (xs[k - 1], xs[n - k]) if k else None


def paired_verdict(cold: list[float], r: list[float]) -> str:
    """The cold-run target judged on the paired ratios cold/R of one invocation (each pair run within seconds,
    so the machine's drifting speed cancels): their median and its 95% interval (:func:`median_interval`);
    'meets' when the interval lies below 1, 'ABOVE' when it lies above 1, else 'level' (neither shown)."""
    ratios = [c / x for c, x in zip(cold, r)]
    middle, ci = statistics.median(ratios), median_interval(ratios)
    if ci is None:
        return f"median of the {len(ratios)} paired ratios cold/R {middle:.2f} (too few runs for a 95% interval)"
    verdict = "meets" if ci[1] < 1 else "ABOVE" if ci[0] > 1 else "level: neither shown at this machine's noise"
    return (f"median of the {len(ratios)} paired ratios cold/R {middle:.2f}, 95% interval {ci[0]:.2f}-{ci[1]:.2f} "
            f"(target <= 1: {verdict})")


def fmt_stages(rows: list[tuple[str, list[dict]]]) -> list[str]:
    head = f"  {'stage':<12}" + "".join(f"{name:>14}" for name, _ in rows)
    lines = [head]
    for stage in STAGES:
        vals = [med([r["stages"][stage] for r in runs]) for _, runs in rows]
        lines.append(f"  {stage:<12}" + "".join(f"{v:>13.2f}s" for v in vals))
    tot = [med([r["total"] for r in runs]) for _, runs in rows]
    lines.append(f"  {'total':<12}" + "".join(f"{v:>13.2f}s" for v in tot))
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", default="6,60,600")
    ap.add_argument("--scaling-repeats", type=int, default=1)
    ap.add_argument("--no-r", action="store_true")
    ap.add_argument("--r-timeout", type=float, default=900, help="seconds the R script may take per size")
    ap.add_argument("--skip-stages", action="store_true")
    ap.add_argument("--skip-scaling", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--inputs", help=argparse.SUPPRESS)
    ap.add_argument("--plan", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--allow", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--no-figures", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)

    has_r, r_msg = r_available(args.no_r)
    commit = os.environ.get("META_BENCH_COMMIT") or subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print("bench_run: meta run end to end (median of repeated runs; ratios from the same invocation)")
    print(f"  python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}, commit {commit}")
    print(f"  load average at start: {load()}")
    print(f"  R: {'Rscript + metafor, ' + str(PEER_R) if has_r else r_msg}")
    inputs = REPO / "inputs"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # as `make meta` leaves it (Makefile BYTECODE): the runs below read compiled modules, not the source
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "meta")], check=True)
    print("  meta compiled to bytecode first (python -m compileall meta), as `make meta` does")
    meta_cmd = [sys.executable, "-m", "meta.cli", "run", "--inputs", str(inputs)]
    with tempfile.TemporaryDirectory(prefix="bench_run_") as tmp:
        tmp = Path(tmp)
        if not args.skip_stages:
            # ---- 1. stages
            print(f"\n[1] stages of `meta run` on inputs/ (seconds, median of {args.repeats})")
            cold, warm = [], []
            for i in range(args.repeats):
                out = tmp / f"stages{i}" / "outputs"
                cold.append(run_child(inputs, out))
                warm.append(run_child(inputs, out))
            for line in fmt_stages([("cold", cold), ("warm", warm)]):
                print(line)
            print(f"  figures drawn / reused: cold {cold[0]['drawn']} / {cold[0]['reused']}, "
                  f"warm {warm[0]['drawn']} / {warm[0]['reused']}; startup (imports before main) "
                  f"{med([r['startup'] for r in cold]):.2f}s")

            # ---- 2. cold / warm / R
            print(f"\n[2] `meta run` as a user runs it vs peer_metafor.R on the same studies.csv "
                  f"(wall seconds incl. start-up, median of {args.repeats}, interleaved)")
            t_cold, t_warm, t_r = [], [], []
            for i in range(args.repeats):
                out = tmp / f"cli{i}" / "outputs"
                t, proc = timed(meta_cmd + ["--out", str(out)], env=env)
                if proc.returncode != 0:
                    raise RuntimeError(proc.stderr)
                t_cold.append(t)
                t, proc = timed(meta_cmd + ["--out", str(out)], env=env)
                t_warm.append(t)
                if has_r:
                    t, why = run_r(out / "studies.csv", tmp / f"r{i}")
                    if t is None:
                        raise RuntimeError(f"peer_metafor.R on inputs/: {why}")
                    t_r.append(t)
            c, w = med(t_cold), med(t_warm)
            print(f"  meta run, empty output folder (cold):   {c:7.2f} s   runs {', '.join(f'{x:.2f}' for x in t_cold)}")
            print(f"  meta run, previous outputs (warm):      {w:7.2f} s   runs {', '.join(f'{x:.2f}' for x in t_warm)}"
                  f"   target <= 3 s: {'meets' if w <= 3 else 'ABOVE'}")
            if has_r:
                r = med(t_r)
                print(f"  Rscript peer_metafor.R:                 {r:7.2f} s   runs {', '.join(f'{x:.2f}' for x in t_r)}")
                print(f"  cold / R = {c / r:.2f}  (target <= 1: {'meets' if c <= r else 'ABOVE'});  warm / R = {w / r:.2f}")
                print(f"  {paired_verdict(t_cold, t_r)}")
            else:
                print(f"  {r_msg}")
            print(f"  load average now: {load()}")

        if not args.skip_scaling:
            # ---- 3. scaling
            if str(REPO) not in sys.path:  # run as a script, sys.path[0] is tests/benchmarks
                sys.path.insert(0, str(REPO))
            from tests.benchmarks.synthetic_scale import make_scaled_inputs

            sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
            print(f"\n[3] scaling on SYNTHETIC inputs (every plan outcome x 2 arms x every horizon per municipality; "
                  f"cold run with figures, median of {args.scaling_repeats})")
            table = []
            for n in sizes:
                folder = make_scaled_inputs(tmp / f"syn{n}" / "inputs", n)
                runs = []
                for i in range(args.scaling_repeats):
                    out = tmp / f"syn{n}" / f"outputs{i}"
                    runs.append(run_child(folder, out, plan=folder / "plan.toml", allow=n))
                studies = tmp / f"syn{n}" / "outputs0" / "studies.csv"
                n_rows = sum(1 for _ in open(studies)) - 1
                t_r, r_why = run_r(studies, tmp / f"syn{n}" / "r", timeout=args.r_timeout) if has_r else (None, r_msg)
                row = {"n": n, "rows": n_rows, "total": med([r["total"] for r in runs]), "r": t_r, "r_why": r_why,
                       "mem": max(r["maxrss_mb"] for r in runs), "mem_w": max(r["maxrss_workers_mb"] for r in runs),
                       "report": runs[0]["report_mb"], "sens": runs[0]["sensitivity_mb"], "figs": runs[0]["figures_mb"],
                       "stages": {s: med([r["stages"][s] for r in runs]) for s in STAGES}}
                table.append(row)
                print(f"  n = {n}: {row['total']:.1f} s, peak {row['mem']:.0f} MB (figure workers {row['mem_w']:.0f} MB)"
                      f", R {f'{t_r:.1f} s' if t_r is not None else r_why}; load {load()}", flush=True)
            print()
            print(f"  {'municipalities':>14} {'study rows':>10} {'meta run s':>10} {'R script s':>10} {'peak MB':>8} "
                  f"{'report MB':>9} {'sens. MB':>8} {'figures MB':>10}   biggest stages")
            for row in table:
                top = sorted(((v, s) for s, v in row["stages"].items() if s != "other"), reverse=True)[:3]
                r_txt = "n/a" if row["r"] is None else f"{row['r']:.1f}"
                print(f"  {row['n']:>14} {row['rows']:>10} {row['total']:>10.1f} {r_txt:>10} {row['mem']:>8.0f} "
                      f"{row['report']:>9.2f} {row['sens']:>8.2f} {row['figs']:>10.2f}   "
                      + ", ".join(f"{s} {v:.1f}" for v, s in top))
            for row in table:
                if row["r"] is None:
                    print(f"  R at {row['n']} municipalities: {row['r_why']}")
            for a, b in zip(table, table[1:]):
                expo = math.log(b["total"] / a["total"]) / math.log(b["n"] / a["n"])
                mem = math.log(b["mem"] / a["mem"]) / math.log(b["n"] / a["n"])
                print(f"  growth {a['n']} -> {b['n']} municipalities: time x{b['total'] / a['total']:.1f} "
                      f"(n^{expo:.2f}), peak memory x{b['mem'] / a['mem']:.1f} (n^{mem:.2f})")
            sixty = next((row for row in table if row["n"] == 60), None)
            if sixty:
                print(f"  target: 60 municipalities < 30 s: {'meets' if sixty['total'] < 30 else 'ABOVE'} "
                      f"({sixty['total']:.1f} s)")
    print(f"\n  load average at end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Throughput benchmark of the batch pooling engine against per-study loops.

Run with ``make bench`` (or ``.venv/bin/python tests/benchmarks/bench_pool.py``).

What it does, in one run on the same synthetic data:

1. Draws ``--n`` (default 100,000) meta-analyses with k = 2..6 studies, shaped
   like the municipal effects: sei ~ U(0.02, 0.07), true tau ~ U(0, 0.06),
   yi ~ N(-0.03, tau^2 + sei^2) (numpy Generator, seed 20261123).
2. Times
   a. ``meta.models.engine.pool_batch(method="REML", test="knha")`` on all of them at
      once; the Q-profile tau^2 interval is always part of that call;
   b. a Python loop over statsmodels' ``combine_effects(yi, vi, method_re="pm")``
      on the first ``--sm-subset`` meta-analyses. Paule-Mandel is used because
      statsmodels' "dl"/"chi2" tau^2 is not truncated at zero and must not be
      used as output; statsmodels computes no tau^2 interval, so this loop does
      *less* work than (a);
   c. an R loop over metafor's ``rma(method="REML", test="knha")`` +
      ``confint()`` on the first ``--r-subset`` meta-analyses, when ``Rscript``
      is on PATH and ``library(metafor)`` loads (skipped with a message
      otherwise). Only the loop is timed, with ``proc.time()``, using metafor's
      default control settings.
3. Prints meta-analyses per second and the ratios in one table.
4. Checks the numbers:
   * ours vs metafor on the R subset (estimate, tau2, tau2 CI bounds). For the
     check R is run a second time, untimed, with tight tolerances
     (``threshold=1e-12, tol=1e-15``; metafor's defaults are absolute 1e-5 on
     tau^2 for Fisher scoring and ~1.2e-4 for the confint root search, too loose
     for a 1e-4 relative comparison on tau^2 values of ~1e-3). The script exits
     with status 1 if any relative difference exceeds 1e-4 (pairs where both
     values are < 1e-10 in absolute value are ignored);
   * our PM tau^2 (``pool_batch(method="PM")``) vs statsmodels' PM tau^2 on the
     statsmodels subset (max absolute difference; statsmodels stops when
     |Q(tau^2) - (k-1)| < 1e-5, so a small difference is expected. Its
     tolerance is not tightened here: statsmodels resets tau^2 to 0 whenever
     Q(tau^2) - (k-1) < 0, which round-off triggers at tight tolerances).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from meta.models.engine import pool_batch  # noqa: E402

SEED = 20261123
K_MAX = 6
REL_TOL_R = 1e-4
TINY = 1e-10
TARGET_VS_R = 200.0

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
infile <- args[1]; outfile <- args[2]; timefile <- args[3]
ok <- suppressWarnings(suppressMessages(requireNamespace("metafor", quietly = TRUE)))
if (!ok) quit(status = 3)
suppressMessages(library(metafor))
dat <- read.csv(infile, colClasses = c("integer", "numeric", "numeric"))
ids <- unique(dat$id)
cells <- split(dat[, c("yi", "vi")], factor(dat$id, levels = ids))
cells <- lapply(cells, function(d) list(yi = d$yi, vi = d$vi))
n <- length(cells)

run <- function(ctrl, cictrl) {
  est <- tau2 <- lo <- hi <- rep(NA_real_, n)
  nerr <- 0L
  for (i in seq_len(n)) {
    d <- cells[[i]]
    r <- tryCatch({
      res <- if (is.null(ctrl)) rma(d$yi, d$vi, method = "REML", test = "knha")
             else rma(d$yi, d$vi, method = "REML", test = "knha", control = ctrl)
      ci <- if (is.null(cictrl)) confint(res) else confint(res, control = cictrl)
      c(res$beta[1], res$tau2, ci$random[1, 2], ci$random[1, 3])
    }, error = function(e) NULL)
    if (is.null(r)) { nerr <- nerr + 1L; next }
    est[i] <- r[1]; tau2[i] <- r[2]; lo[i] <- r[3]; hi[i] <- r[4]
  }
  list(est = est, tau2 = tau2, lo = lo, hi = hi, nerr = nerr)
}

# warm-up (lazy loading, byte-compilation), not timed
invisible(suppressWarnings(confint(rma(cells[[1]]$yi, cells[[1]]$vi, method = "REML", test = "knha"))))

# timed: metafor's default control settings, only the loop
t0 <- proc.time()
def <- suppressWarnings(run(NULL, NULL))
el <- proc.time() - t0

# untimed: tight tolerances, for the agreement check
tight <- suppressWarnings(run(list(threshold = 1e-12, tol = 1e-15, maxiter = 10000),
                              list(tol = 1e-15, maxiter = 10000)))

out <- data.frame(id = ids,
                  estimate_default = def$est, tau2_default = def$tau2,
                  tau2_ci_low_default = def$lo, tau2_ci_high_default = def$hi,
                  estimate = tight$est, tau2 = tight$tau2,
                  tau2_ci_low = tight$lo, tau2_ci_high = tight$hi)
write.csv(out, outfile, row.names = FALSE)
writeLines(c(sprintf("elapsed %.17g", el[["elapsed"]]),
             sprintf("user %.17g", el[["user.self"]]),
             sprintf("sys %.17g", el[["sys.self"]]),
             sprintf("n %d", n),
             sprintf("errors_default %d", def$nerr),
             sprintf("errors_tight %d", tight$nerr),
             sprintf("R %s", R.version.string),
             sprintf("metafor %s", as.character(packageVersion("metafor")))), timefile)
"""


# --------------------------------------------------------------------------- #
# data
# --------------------------------------------------------------------------- #
def make_data(n: int, seed: int = SEED):
    """Padded (n, K_MAX) arrays yi, vi, mask (same layout as ``pad_cells``)."""
    rng = np.random.default_rng(seed)
    k = rng.integers(2, K_MAX + 1, size=n)
    sei = rng.uniform(0.02, 0.07, size=(n, K_MAX))
    tau = rng.uniform(0.0, 0.06, size=n)
    yi = rng.normal(-0.03, np.sqrt(tau[:, None] ** 2 + sei**2))
    mask = np.arange(K_MAX)[None, :] < k[:, None]
    yi = np.where(mask, yi, 0.0)
    vi = np.where(mask, sei**2, 1.0)
    return yi, vi, mask, k


def cells_of(yi, vi, k, n):
    return [(yi[j, : k[j]].copy(), vi[j, : k[j]].copy()) for j in range(n)]


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def rel_diff(ours, ref, tiny=TINY):
    """|ours - ref| / max(|ours|, |ref|), NaN where both are below ``tiny``."""
    ours = np.asarray(ours, float)
    ref = np.asarray(ref, float)
    denom = np.maximum(np.abs(ours), np.abs(ref))
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.abs(ours - ref) / denom
    d = np.where(denom < tiny, np.nan, d)
    d = np.where(ours == ref, 0.0, d)  # exact agreement (including both 0)
    return d


def fmt_rate(x):
    return "n/a" if x is None or not np.isfinite(x) else f"{x:,.0f}"


def nanmax_or_nan(a):
    a = np.asarray(a, float)
    return float(np.nanmax(a)) if np.isfinite(a).any() else float("nan")


# --------------------------------------------------------------------------- #
# the three contenders
# --------------------------------------------------------------------------- #
def time_ours(yi, vi, mask, repeat_if_under=5.0, repeats=3):
    pool_batch(yi[:200], vi[:200], mask[:200], method="REML", test="knha")  # warm-up
    times, cpus = [], []
    t0, c0 = time.perf_counter(), time.process_time()
    res = pool_batch(yi, vi, mask, method="REML", test="knha")
    times.append(time.perf_counter() - t0)
    cpus.append(time.process_time() - c0)
    if times[0] < repeat_if_under:  # cheap enough: best of a few runs
        for _ in range(repeats - 1):
            t0, c0 = time.perf_counter(), time.process_time()
            pool_batch(yi, vi, mask, method="REML", test="knha")
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
    best = int(np.argmin(times))
    return res, times[best], cpus[best], len(times)


def time_statsmodels(cells):
    from statsmodels.stats.meta_analysis import combine_effects

    y0, v0 = cells[0]
    combine_effects(y0, v0, method_re="pm")  # warm-up
    tau2 = np.empty(len(cells))
    est = np.empty(len(cells))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0, c0 = time.perf_counter(), time.process_time()
        for j, (y, v) in enumerate(cells):
            r = combine_effects(y, v, method_re="pm")
            tau2[j] = r.tau2
            est[j] = r.mean_effect_re
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return est, tau2, elapsed, cpu


def run_r(yi, vi, k, n):
    """Returns (dict or None, message)."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None, "Rscript is not on PATH: R/metafor comparison skipped"
    with tempfile.TemporaryDirectory(prefix="bench_pool_") as tmp:
        tmp = Path(tmp)
        infile, outfile, timefile, script = (tmp / "data.csv", tmp / "r_out.csv",
                                             tmp / "r_time.txt", tmp / "loop.R")
        ids = np.repeat(np.arange(n), k[:n])
        sel = np.arange(K_MAX)[None, :] < k[:n, None]
        data = np.column_stack([ids, yi[:n][sel], vi[:n][sel]])
        with open(infile, "w") as fh:
            fh.write("id,yi,vi\n")
            np.savetxt(fh, data, fmt=["%d", "%.17g", "%.17g"], delimiter=",")
        script.write_text(R_SCRIPT)
        proc = subprocess.run([rscript, "--vanilla", str(script), str(infile), str(outfile), str(timefile)],
                              capture_output=True, text=True)
        if proc.returncode == 3:
            return None, "R is installed but library(metafor) does not load: R/metafor comparison skipped"
        if proc.returncode != 0 or not outfile.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            return None, "Rscript failed (status %d): R/metafor comparison skipped\n    %s" % (
                proc.returncode, "\n    ".join(tail))
        info = {}
        for line in timefile.read_text().splitlines():
            key, _, val = line.partition(" ")
            info[key] = val
        import pandas as pd

        out = pd.read_csv(outfile)
    out = out.sort_values("id").reset_index(drop=True)
    return {"table": out, "elapsed": float(info["elapsed"]), "user": float(info["user"]), "sys": float(info["sys"]),
            "n": int(info["n"]), "errors_default": int(info["errors_default"]),
            "errors_tight": int(info["errors_tight"]), "R": info.get("R", "?"),
            "metafor": info.get("metafor", "?")}, ""


# --------------------------------------------------------------------------- #
# main
# --------------------------------------------------------------------------- #
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="meta-analyses for the batch engine")
    ap.add_argument("--sm-subset", type=int, default=3_000, help="meta-analyses for the statsmodels loop")
    ap.add_argument("--r-subset", type=int, default=1_000, help="meta-analyses for the R/metafor loop")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--no-r", action="store_true", help="skip the R/metafor loop")
    args = ap.parse_args(argv)
    n_sm = min(args.sm_subset, args.n)
    n_r = min(args.r_subset, args.n)

    import scipy
    import statsmodels

    print("bench_pool: meta.models.engine.pool_batch vs per-meta-analysis loops")
    print(f"  python {platform.python_version()} ({platform.python_implementation()}), numpy {np.__version__}, "
          f"scipy {scipy.__version__}, statsmodels {statsmodels.__version__}")
    print(f"  machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")

    t0 = time.perf_counter()
    yi, vi, mask, k = make_data(args.n, args.seed)
    counts = np.bincount(k, minlength=K_MAX + 1)[2:]
    print(f"  data: {args.n:,} meta-analyses (seed {args.seed}), k=2..6 counts {counts.tolist()}, "
          f"generated in {time.perf_counter() - t0:.2f} s")
    print()

    # (a) ours
    print("[a] pool_batch(REML, knha, with Q-profile tau2 CI) on all meta-analyses ...", flush=True)
    res, t_ours, cpu_ours, n_runs = time_ours(yi, vi, mask)
    rate_ours = args.n / t_ours
    n_nonconv = int((~res["converged"]).sum())
    print(f"    {t_ours:.3f} s wall, {cpu_ours:.3f} s CPU (best of {n_runs}); "
          f"{n_nonconv} meta-analyses flagged converged=False")

    # (b) statsmodels
    print(f"[b] statsmodels combine_effects(method_re='pm') loop on the first {n_sm:,} ...", flush=True)
    sm_cells = cells_of(yi, vi, k, n_sm)
    sm_est, sm_tau2, t_sm, cpu_sm = time_statsmodels(sm_cells)
    rate_sm = n_sm / t_sm
    print(f"    {t_sm:.3f} s wall, {cpu_sm:.3f} s CPU")

    # (c) R / metafor
    r = None
    if args.no_r:
        r_msg = "R/metafor comparison skipped (--no-r)"
    else:
        print(f"[c] R loop: metafor rma(REML, knha) + confint() on the first {n_r:,} ...", flush=True)
        r, r_msg = run_r(yi, vi, k, n_r)
    if r is None:
        print(f"    {r_msg}")
        rate_r = None
    else:
        rate_r = r["n"] / r["elapsed"]
        print(f"    {r['elapsed']:.3f} s elapsed ({r['user']:.3f} s user, {r['sys']:.3f} s sys), {r['R']}, metafor {r['metafor']}; "
              f"fits that errored: {r['errors_default']} (default control), {r['errors_tight']} (tight control)")

    # table
    print()
    print("Throughput (meta-analyses per second; ratios use wall-clock time)")
    rows = [
        ("ours: pool_batch REML+knha+QP tau2 CI", args.n, t_ours, cpu_ours),
        ("statsmodels combine_effects PM loop (no tau2 CI)", n_sm, t_sm, cpu_sm),
        ("R metafor rma REML+knha + confint loop",
         r["n"] if r else None, r["elapsed"] if r else None, (r["user"] + r["sys"]) if r else None),
    ]
    w = max(len(row[0]) for row in rows)
    print(f"  {'contender':<{w}}  {'n':>8}  {'wall s':>8}  {'per second':>11}  {'per CPU s':>10}  {'ours / this':>11}")
    for name, n, t, cpu in rows:
        if t is None:
            print(f"  {name:<{w}}  {'-':>8}  {'-':>8}  {'skipped':>11}  {'-':>10}  {'-':>11}")
            continue
        rate = n / t
        print(f"  {name:<{w}}  {n:>8,}  {t:>8.3f}  {fmt_rate(rate):>11}  {fmt_rate(n / cpu):>10}  "
              f"{rate_ours / rate:>10.1f}x")
    if rate_r is not None:
        ratio = rate_ours / rate_r
        verdict = "meets" if ratio >= TARGET_VS_R else "BELOW"
        print(f"  target ours/R >= {TARGET_VS_R:.0f}x (wall clock): {verdict} ({ratio:.1f}x; "
              f"on CPU time {(args.n / cpu_ours) / (r['n'] / (r['user'] + r['sys'])):.1f}x)")
    print()

    # agreement
    status = 0
    print("Agreement")
    ours_pm = pool_batch(yi[:n_sm], vi[:n_sm], mask[:n_sm], method="PM", test="knha")
    d_pm = np.abs(ours_pm["tau2"] - sm_tau2)
    d_pm_rel = rel_diff(ours_pm["tau2"], sm_tau2)
    print(f"  PM tau2, ours vs statsmodels (n={n_sm:,}): max |diff| = {np.max(d_pm):.3g}, "
          f"max relative diff = {nanmax_or_nan(d_pm_rel):.3g} (statsmodels stops at |Q - (k-1)| < 1e-5)")
    if r is not None:
        tab = r["table"]
        nr = r["n"]
        ours_keys = ("estimate", "tau2", "tau2_ci_low", "tau2_ci_high")
        worst = 0.0
        parts = []
        for key in ours_keys:
            d = rel_diff(res[key][:nr], tab[key].to_numpy(float))
            mx = nanmax_or_nan(d)
            parts.append(f"{key} {mx:.2g}")
            worst = max(worst, mx if np.isfinite(mx) else 0.0)
            if np.isfinite(mx) and mx > REL_TOL_R:
                bad = np.where(d > REL_TOL_R)[0]
                print(f"    {key}: {bad.size} meta-analyses differ by > {REL_TOL_R:g} relative, "
                      f"first ids {bad[:5].tolist()}")
        print(f"  ours vs metafor, tight control (n={nr:,}), max relative diff: " + ", ".join(parts))
        parts = [f"{key} {nanmax_or_nan(np.abs(res[key][:nr] - tab[key + '_default'].to_numpy(float))):.2g}"
                 for key in ours_keys]
        print(f"  ours vs metafor, default control as timed (information only; metafor stops at |dtau2| < 1e-5 "
              f"and confint at ~1.2e-4), max abs diff: " + ", ".join(parts))
        n_missing = int(tab[[key for key in ours_keys]].isna().any(axis=1).sum())
        if n_missing:
            print(f"  ({n_missing} meta-analyses had no metafor result and were left out)")
        conv_r = res["converged"][:nr]
        if not conv_r.all():
            print(f"  ({int((~conv_r).sum())} meta-analyses in the R subset are flagged converged=False by ours)")
        if worst > REL_TOL_R:
            print(f"  FAIL: ours disagrees with metafor by {worst:.3g} relative (> {REL_TOL_R:g})")
            status = 1
        else:
            print(f"  OK: ours agrees with metafor (tight control) within {REL_TOL_R:g} relative "
                  f"(pairs with both values < {TINY:g} ignored)")
    else:
        print(f"  ours vs metafor: not checked ({r_msg})")
    if n_nonconv:
        print(f"  note: pool_batch flagged {n_nonconv} of {args.n:,} meta-analyses as not converged")
    return status


if __name__ == "__main__":
    sys.exit(main())

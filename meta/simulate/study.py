"""The study: replications of the six experiments, pooled in batches, and the performance of each interval.

Every (τ, k, SE policy) block of ``reps`` meta-analyses is stacked into one padded batch, so each method × test is
one :func:`meta.models.engine.pool_batch` call; :func:`meta.models.bayes.bayes_pool` runs one replication at a
time on the first ``bayes_reps``. The same simulated trials serve every k, method, test and policy (common random
numbers). Monte Carlo SEs: coverage √(c(1 − c)/R); bias sd/√R; the prediction interval's coverage is the exact
conditional probability Φ((hi − μ)/τ) − Φ((lo − μ)/τ) (the indicator of μ inside it when τ = 0), averaged, sd/√R.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from scipy import special

from meta.models.bayes import bayes_pool
from meta.models.engine import pool_batch
from meta.simulate.printing import Printed, print_municipality, print_with_marks, reconstruct_se
from meta.simulate.settings import BAYES_GRID, BAYES_METHOD, BAYES_TEST, LEVEL, POOLED_ARM, Settings
from meta.simulate.summary import SimulationResult  # noqa: F401  (what run_simulation returns; also named here)
from meta.simulate.trials import Trials, simulate_trials


def performance(estimate, ci_low, ci_high, pi_low, pi_high, mu: float, tau: float) -> dict:
    """Coverage of μ, bias, RMSE, interval widths and prediction-interval coverage, with MC standard errors."""
    est = np.asarray(estimate, float)
    R = est.size
    cover = (ci_low <= mu) & (mu <= ci_high)
    c = float(cover.mean())
    if tau > 0:
        pc = special.ndtr((np.asarray(pi_high) - mu) / tau) - special.ndtr((np.asarray(pi_low) - mu) / tau)
    else:
        pc = ((pi_low <= mu) & (mu <= pi_high)).astype(float)
    err = est - mu
    width = np.asarray(ci_high) - np.asarray(ci_low)
    return {
        "reps": R,
        "coverage": c,
        "coverage_mcse": math.sqrt(c * (1 - c) / R),
        "pi_coverage": float(pc.mean()),
        "pi_coverage_mcse": float(pc.std(ddof=1) / math.sqrt(R)),
        "bias": float(err.mean()),
        "bias_mcse": float(err.std(ddof=1) / math.sqrt(R)),
        "rmse": float(math.sqrt((err**2).mean())),
        "ci_width_median": float(np.median(width)),
        "ci_width_mean": float(width.mean()),
    }


def _bayes_task(task):
    """Posterior summaries of bayes_pool for the rows of one (tau, k, policy) block (module level: picklable)."""
    key, y, v, scale = task
    out = np.empty((len(y), 5))
    for i in range(len(y)):
        r = bayes_pool(y[i], v[i], tau_prior_scale=scale, level=LEVEL, grid_size=BAYES_GRID)
        out[i] = (r.estimate, r.ci_low, r.ci_high, r.pi_low, r.pi_high)
    return key, out


def _run_bayes(tasks, jobs: int):
    """{block key: posterior summaries} of every task, in ``jobs`` processes (the results do not depend on it)."""
    if jobs <= 1 or len(tasks) <= 1:
        return dict(_bayes_task(t) for t in tasks)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return dict(pool.map(_bayes_task, tasks))


def _tau_seed(seed: int, tau: float) -> np.random.SeedSequence:
    """One stream per (seed, τ): results for a τ do not depend on which other τ are run."""
    return np.random.SeedSequence([int(seed), int(round(tau * 1000))])


def run_simulation(settings: Settings) -> SimulationResult:
    """Run the simulation study (design: :mod:`meta.simulate`); the results table is sorted by τ, k, policy,
    method and test in the order of the settings."""
    settings.check()
    t0 = time.perf_counter()
    reg_rows, rec_rows, blocks = [], [], []
    for tau in settings.taus:
        reg, rec, tau_blocks = _simulate_tau(settings, tau)
        reg_rows += reg
        rec_rows += rec
        blocks += tau_blocks
    rows = _pool_classical(blocks, settings)
    if settings.bayes_reps > 0:
        rows += _pool_bayes(blocks, settings)
    return SimulationResult(_tidy(rows, settings), pd.DataFrame(reg_rows), pd.DataFrame(rec_rows), settings,
                            time.perf_counter() - t0)


def _simulate_tau(settings: Settings, tau: float):
    """Trials of the first max(k) municipalities at one τ: their diagnostics and one padded block per (k, policy).

    A block is ((τ, k, policy, names), Y, V) with Y, V of shape (reps, max k); columns past k are padding.
    """
    kmax, R = max(settings.ks), settings.reps
    design = settings.design[:kmax]
    rngs = [np.random.default_rng(s) for s in _tau_seed(settings.seed, tau).spawn(len(design))]
    reg_rows, rec_rows, printed = [], [], []
    for rng, muni in zip(rngs, design):
        tr = simulate_trials(rng, muni, R, settings.mu, tau, settings.rho, settings.base_rate,
                             settings.regression_se)
        pr = print_municipality(tr, settings.policies)
        printed.append(pr)
        reg_rows += _regression_rows(tr, tau)
        rec_rows.append(_reconstruction_row(tr, pr, tau, settings.policies))
    blocks = []
    for k in settings.ks:
        for policy in settings.policies:
            Y = np.zeros((R, kmax))
            V = np.ones((R, kmax))
            Y[:, :k] = np.column_stack([p.yi[policy] for p in printed[:k]])
            V[:, :k] = np.column_stack([p.sei[policy] for p in printed[:k]]) ** 2
            blocks.append(((tau, k, policy, "+".join(m.name for m in design[:k])), Y, V))
    return reg_rows, rec_rows, blocks


def _pool_classical(blocks, settings: Settings) -> list[dict]:
    """One results row per block × method × test, each method × test one :func:`pool_batch` over all blocks."""
    R, kmax = settings.reps, max(settings.ks)
    Y = np.concatenate([b[1] for b in blocks])
    V = np.concatenate([b[2] for b in blocks])
    mask = np.concatenate([np.broadcast_to(np.arange(kmax) < key[1], (R, kmax)) for key, _, _ in blocks])
    rows = []
    for method in settings.methods:
        for test in settings.tests:
            res = pool_batch(Y, V, mask, method=method, test=test, level=LEVEL)
            for b, ((tau, k, policy, names), _, _) in enumerate(blocks):
                sl = slice(b * R, (b + 1) * R)
                row = {"tau": tau, "k": k, "se_policy": policy, "method": method, "test": test}
                row.update(performance(res["estimate"][sl], res["ci_low"][sl], res["ci_high"][sl],
                                       res["pi_low"][sl], res["pi_high"][sl], settings.mu, tau))
                tau2 = np.nan_to_num(res["tau2"][sl])
                row.update({"tau2_mean": float(tau2.mean()), "tau2_zero_share": float((tau2 <= 0).mean()),
                            "not_converged": int((~res["converged"][sl].astype(bool)).sum()),
                            "municipalities": names})
                rows.append(row)
    return rows


def _pool_bayes(blocks, settings: Settings) -> list[dict]:
    """One results row per block for the Bayesian model, on the first ``bayes_reps`` replications."""
    B = settings.bayes_reps
    tasks = [(key, Yb[:B, :key[1]], Vb[:B, :key[1]], settings.tau_prior_scale) for key, Yb, Vb in blocks]
    rows = []
    for (tau, k, policy, names), out in _run_bayes(tasks, settings.jobs).items():
        row = {"tau": tau, "k": k, "se_policy": policy, "method": BAYES_METHOD, "test": BAYES_TEST}
        row.update(performance(out[:, 0], out[:, 1], out[:, 2], out[:, 3], out[:, 4], settings.mu, tau))
        row.update({"tau2_mean": math.nan, "tau2_zero_share": math.nan, "not_converged": 0,
                    "municipalities": names})
        rows.append(row)
    return rows


def _tidy(rows: list[dict], settings: Settings) -> pd.DataFrame:
    """The results table: the rows with μ, level and the τ prior's scale, sorted in the order of the settings."""
    table = pd.DataFrame(rows)
    table.insert(0, "mu", settings.mu)
    table["level"] = LEVEL
    table["tau_prior_scale"] = np.where(table["method"] == BAYES_METHOD, settings.tau_prior_scale, np.nan)
    rank = {
        "method": {m: i for i, m in enumerate([*settings.methods, BAYES_METHOD])},
        "test": {t: i for i, t in enumerate([*settings.tests, BAYES_TEST])},
        "se_policy": {p: i for i, p in enumerate(settings.policies)},
    }
    return table.sort_values(["tau", "k", "se_policy", "method", "test"],
                             key=lambda col: col.map(rank[col.name]) if col.name in rank else col,
                             kind="stable").reset_index(drop=True)


def _regression_rows(tr: Trials, tau: float) -> list[dict]:
    """Per arm: SD of (estimate − θ) across replications against the RMS of the regression SEs."""
    muni = tr.municipality
    err = tr.estimate - tr.theta
    return [{
        "tau": tau, "municipality": muni.name, "arm": arm, "n_arm": muni.n(arm), "n_control": muni.n_control,
        "reps": len(err), "sd_estimate": float(err[:, j].std(ddof=1)),
        "rms_se": float(np.sqrt((tr.se[:, j] ** 2).mean())), "mean_estimate_minus_theta": float(err[:, j].mean()),
        "share_p0_raised": float(tr.raised.mean()),
    } for j, arm in enumerate(muni.treatment_arms)]


def _reconstruction_row(tr: Trials, pr: Printed, tau: float, policies) -> dict:
    """How the SEs reconstructed from marks compare with the regression's own SE (pooled arm)."""
    lo, hi = pr.bracket
    true = pr.true_se
    rec = {"tau": tau, "municipality": tr.municipality.name, "reps": len(true),
           "share_star": float((pr.mark == "*").mean()), "share_tilde": float((pr.mark == "~").mean()),
           "share_unmarked": float((pr.mark == "").mean()),
           "bracket_contains_true_se": float(((lo <= true) & (true <= hi)).mean())}
    for policy in policies:
        if policy.startswith("marks-"):
            rec[f"{policy}_below_true_se"] = float((pr.sei[policy] < true).mean())
            rec[f"{policy}_below_90pct_true_se"] = float((pr.sei[policy] < 0.9 * true).mean())
            rec[f"{policy}_ratio_median"] = float(np.median(pr.sei[policy] / true))
    # the same without the common-SE constraint: does the constraint cause the misses?
    m = tr.municipality
    printed, marks, h = print_with_marks(tr.estimate, tr.pval)
    s, _, _ = reconstruct_se(printed, marks, h, [m.n(a) for a in m.treatment_arms], m.n_control, "conservative",
                             common_se=False)
    j = m.treatment_arms.index(POOLED_ARM)
    rec["conservative_without_common_se_below_true_se"] = float((s[:, j] < true).mean())
    return rec


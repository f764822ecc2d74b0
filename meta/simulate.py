"""Does the method keep its promise? A simulation study of the whole chain (``meta simulate``).

Each replication re-runs the six experiments at the level of individuals, analyses
each municipality the way the reports did, prints the results the way the reports
print them, reconstructs standard errors the way :mod:`meta.effects.harmonise` does, and
pools them with :func:`meta.models.engine.pool_batch` (all replications in one batch) and
with :func:`meta.models.bayes.bayes_pool` (one replication at a time). What it reports is
the *actual* coverage of the nominal 95% intervals for the mean effect μ, the bias
of the pooled estimate and the coverage of the prediction interval for a new
municipality's true effect, per estimator × test × SE policy × number of
municipalities k, with Monte Carlo standard errors.

Data-generating model
---------------------
* **Arms and sizes** (:data:`DESIGN`): Nijmegen exemption 130, intensive 128,
  control 131 (randomised, ``inputs/arms.csv``); Wageningen exemption 106,
  intensive 98, release 113, control 93 (bruto randomised); Groningen the 'Yes'
  participant counts of the slides, exemption 183, intensive 144, release 153,
  control 222 (its free-choice arm is left out); Tilburg, Utrecht and Deventer
  are ASSUMED to have the national design's exemption, intensive, release and
  control arms with 150 people each (their reports are not available here).
  Arm sizes are fixed (complete randomisation), nobody drops out.
* **Outcome**: binary (e.g. "works more than 12 hours a week"). Per municipality
  and replication the control share p₀ is drawn from U(10%, 25%); every
  treatment arm a of municipality m has the true effect θ_{m,a} = μ + u_{m,a},
  u ~ N(0, τ²), in percentage points, independently across arms and
  municipalities. The pooled arm is **exemption** (every municipality has one);
  the other arms are there because the reports' regressions contain them (and the
  common-SE constraint of the mark reconstruction uses them). Where p₀ + θ would
  fall below 2%, p₀ is raised for the whole municipality so that every θ is kept
  exactly (the effect distribution stays N(μ, τ²); the share of municipalities
  for which this happened is reported).
* **Covariate**: one baseline covariate x ~ N(0, 1) that predicts the outcome:
  y = 1{ρx + √(1−ρ²)ε < Φ⁻¹(p_arm)}, ε ~ N(0, 1), so P(y = 1 | arm) = p_arm
  exactly and x has latent correlation −ρ with the outcome (default ρ = 0.6).
  Because x is independent of the arm, the adjusted arm coefficient estimates
  the risk difference θ (in expectation over x).
* **Analysis per municipality** (the LOEP-style model): a linear probability model
  of y on an intercept, the treatment-arm dummies and x, fitted by closed-form
  OLS for all replications at once (batched normal equations), with HC1-robust
  (default) or classical standard errors; p-values from t with n − p df, as
  regression software prints them.

How the results are printed
---------------------------
* ``reported``: estimate and SE printed as proportions with three decimals
  (0.1 pp); ``se_method = reported_se``.
* ``marks-central`` / ``marks-conservative``: as Nijmegen prints them — the
  estimate as a proportion with two decimals and a mark, ``*`` p < 0.05, ``~``
  p < 0.10 (``significance_legends.csv``, Nijmegen tables). The SE is
  reconstructed with :func:`meta.effects.harmonise.mark_bracket` (half a unit of the
  last printed decimal, :func:`meta.effects.harmonise.half_unit`), capped by
  :func:`meta.effects.harmonise.range_bound` with the arm and control N, narrowed by the
  common-SE constraint across the arms of the municipality's regression
  (:func:`meta.effects.harmonise.common_se`, the function ``harmonise`` uses: σ-brackets
  lo/f, hi/f with f = √(1/n_a + 1/n_c) intersected and mapped back when they
  intersect) and turned into a value by
  :func:`meta.effects.harmonise.se_from_bracket` with the policy ``central`` or
  ``conservative``. Every municipality in a pool is printed the same way.

Pooling
-------
The exemption effects of the first k municipalities in the fixed order of
:data:`DESIGN` (Nijmegen, Wageningen, Groningen, Tilburg, Utrecht, Deventer; so
k = 2 is the pair transcribed today) are pooled for every method (DL, REML, PM)
× test (z, knha, adhoc) × SE policy, and with the Bayesian normal-normal model
(half-normal prior on τ, flat prior on μ; posterior median and equal-tailed
intervals) on the first ``bayes_reps`` replications only, because it runs one
replication at a time. The same simulated trials are used for every k, method,
test and policy (common random numbers), so differences between them are
estimated more precisely than each coverage on its own.

Monte Carlo standard errors: coverage √(c(1 − c)/R); bias sd/√R; the prediction
interval's coverage is the exact conditional probability
Φ((hi − μ)/τ) − Φ((lo − μ)/τ) that a new municipality's true effect falls inside
it (the indicator of μ inside it when τ = 0), averaged over replications, with
its sd/√R.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special

from meta.models.engine import pool_batch
from meta.effects.harmonise import common_se as common_se_constraint
from meta.effects.harmonise import half_unit, mark_bracket, range_bound, se_from_bracket

LEVEL = 95.0
METHODS = ("DL", "REML", "PM")
TESTS = ("z", "knha", "adhoc")
SE_POLICIES = ("reported", "marks-central", "marks-conservative")
BAYES_METHOD = "Bayes"
BAYES_TEST = "posterior"
#: Nijmegen's legend (``inputs/significance_legends.csv``, 002 Tabel 3-8): mark -> (p_below, p_at_least).
NIJMEGEN_LEGEND = {"*": (0.05, math.nan), "~": (0.10, 0.05), "": (math.nan, 0.10)}
#: Width of the outcome's range in percentage points (a share: 0-100).
SHARE_RANGE_PP = 100.0
#: Decimals of a proportion as printed: with an SE (0.1 pp) and with marks only (1 pp, as Nijmegen).
DECIMALS_WITH_SE = 3
DECIMALS_WITH_MARKS = 2
#: Lowest true share of any arm; p0 is raised for the whole municipality to keep every effect exact.
MIN_SHARE = 0.02
#: Initial trapezoid grid of bayes_pool; it doubles the grid until converged, so this only saves time.
BAYES_GRID = 64
DEFAULT_OUT = "inputs/simulation"
RESULTS_FILE = "simulation_results.csv"
SUMMARY_FILE = "simulation_summary.md"


@dataclass(frozen=True)
class Municipality:
    """One experiment: its arms (treatment arms first, ``control`` last) and their sizes."""

    name: str
    arms: tuple[tuple[str, int], ...]
    sizes: str  # where the sizes come from

    @property
    def treatment_arms(self) -> tuple[str, ...]:
        return tuple(a for a, _ in self.arms if a != "control")

    @property
    def n_control(self) -> int:
        return dict(self.arms)["control"]

    def n(self, arm: str) -> int:
        return dict(self.arms)[arm]


#: The six experiments in the order in which they enter a pool of k municipalities.
DESIGN: tuple[Municipality, ...] = (
    Municipality("nijmegen", (("exemption", 130), ("intensive", 128), ("control", 131)),
                 "randomised N, inputs/arms.csv (002:727-732); the exemption and intensive arms also get release"),
    Municipality("wageningen", (("exemption", 106), ("intensive", 98), ("release", 113), ("control", 93)),
                 "bruto randomised N, inputs/arms.csv (004:1429-1437)"),
    Municipality("groningen", (("exemption", 183), ("intensive", 144), ("release", 153), ("control", 222)),
                 "'Yes' participant counts of the slides (000:273-277); free-choice arm left out"),
    Municipality("tilburg", (("exemption", 150), ("intensive", 150), ("release", 150), ("control", 150)),
                 "ASSUMED: national design arms, 150 per arm"),
    Municipality("utrecht", (("exemption", 150), ("intensive", 150), ("release", 150), ("control", 150)),
                 "ASSUMED: national design arms, 150 per arm"),
    Municipality("deventer", (("exemption", 150), ("intensive", 150), ("release", 150), ("control", 150)),
                 "ASSUMED: national design arms, 150 per arm"),
)
POOLED_ARM = "exemption"


@dataclass(frozen=True)
class Settings:
    """Everything that determines a simulation run (all effects in percentage points)."""

    reps: int = 2000
    bayes_reps: int = 1000  # the committed run (inputs/simulation); Monte Carlo SE of a 95% coverage about 0.7 points
    seed: int = 20170101
    mu: float = -3.0
    taus: tuple[float, ...] = (0.0, 3.0, 6.0)
    ks: tuple[int, ...] = (2, 3, 4, 5, 6)
    tau_prior_scale: float = 5.0
    #: the report's headline is the Bayesian model for k <= few_studies_k, REML + HKSJ above (plan key, issue 12)
    few_studies_k: int = 4
    rho: float = 0.6
    base_rate: tuple[float, float] = (0.10, 0.25)
    regression_se: str = "hc1"
    methods: tuple[str, ...] = METHODS
    tests: tuple[str, ...] = TESTS
    policies: tuple[str, ...] = SE_POLICIES
    jobs: int = 1
    design: tuple[Municipality, ...] = field(default=DESIGN, repr=False)

    def check(self) -> "Settings":
        if self.reps < 2:
            raise ValueError(f"reps must be at least 2, got {self.reps}")
        if not 0 <= self.bayes_reps <= self.reps:
            raise ValueError(f"bayes_reps must be between 0 and reps ({self.reps}), got {self.bayes_reps}")
        if any(not 1 <= k <= len(self.design) for k in self.ks):
            raise ValueError(f"every k must be between 1 and {len(self.design)}, got {list(self.ks)}")
        if any(not (t >= 0 and math.isfinite(t)) for t in self.taus):
            raise ValueError(f"every tau must be finite and >= 0, got {list(self.taus)}")
        if not (self.tau_prior_scale > 0):
            raise ValueError(f"tau prior scale must be > 0, got {self.tau_prior_scale}")
        if self.few_studies_k < 1:
            raise ValueError(f"few_studies_k must be >= 1, got {self.few_studies_k}")
        if not 0 <= self.rho < 1:
            raise ValueError(f"rho must be in [0, 1), got {self.rho}")
        lo, hi = self.base_rate
        if not 0 < lo <= hi < 1:
            raise ValueError(f"base rate range must satisfy 0 < low <= high < 1, got {self.base_rate}")
        if self.regression_se not in ("hc1", "classical"):
            raise ValueError(f"regression_se must be 'hc1' or 'classical', got {self.regression_se!r}")
        bad = [p for p in self.policies if p not in SE_POLICIES]
        if bad:
            raise ValueError(f"unknown SE policy {bad[0]!r}; choose from {', '.join(SE_POLICIES)}")
        return self


# --------------------------------------------------------------------------- #
# individual-level trials and the per-municipality regression
# --------------------------------------------------------------------------- #
@dataclass
class Trials:
    """Per-replication results of one municipality's regression; arrays (reps, treatment arms), pp."""

    municipality: Municipality
    theta: np.ndarray      # true effects
    estimate: np.ndarray   # OLS arm coefficients
    se: np.ndarray         # their standard errors (HC1 or classical)
    pval: np.ndarray       # two-sided t p-values, df = n - p
    p0: np.ndarray         # control shares, (reps,)
    raised: np.ndarray     # p0 raised to keep every effect exact, (reps,)


def true_effects(rng, reps: int, n_arms: int, mu: float, tau: float) -> np.ndarray:
    """θ = μ + u, u ~ N(0, τ²), shape (reps, n_arms), in percentage points."""
    return mu + tau * rng.standard_normal((reps, n_arms))


def ols_batch(X: np.ndarray, y: np.ndarray, se_type: str = "hc1"):
    """Closed-form OLS for a batch of regressions.

    Parameters
    ----------
    X : (R, n, p) design matrices; y : (R, n) outcomes.
    se_type : ``hc1`` (White's sandwich × n/(n − p)) or ``classical`` (σ̂²(XᵀX)⁻¹).

    Returns
    -------
    beta, se : (R, p) arrays.
    """
    R, n, p = X.shape
    XtX_inv = np.linalg.inv(np.matmul(X.transpose(0, 2, 1), X))
    beta = np.matmul(XtX_inv, np.matmul(X.transpose(0, 2, 1), y[:, :, None]))[:, :, 0]
    e = y - np.matmul(X, beta[:, :, None])[:, :, 0]
    if se_type == "classical":
        s2 = (e * e).sum(axis=1) / (n - p)
        var = s2[:, None] * np.diagonal(XtX_inv, axis1=1, axis2=2)
    elif se_type == "hc1":
        Xe = X * e[:, :, None]
        meat = np.matmul(Xe.transpose(0, 2, 1), Xe)
        V = np.matmul(np.matmul(XtX_inv, meat), XtX_inv) * (n / (n - p))
        var = np.diagonal(V, axis1=1, axis2=2)
    else:
        raise ValueError(f"se_type must be 'hc1' or 'classical', got {se_type!r}")
    return beta, np.sqrt(var)


def simulate_trials(rng, municipality: Municipality, reps: int, mu: float, tau: float, rho: float = 0.6,
                    base_rate=(0.10, 0.25), se_type: str = "hc1", chunk: int = 500) -> Trials:
    """Simulate ``reps`` replications of one experiment and fit the LOEP-style regression to each.

    The regression is y ~ 1 + treatment-arm dummies + x (linear probability model); coefficients and
    SEs are returned in percentage points.
    """
    arms = municipality.treatment_arms
    a = len(arms)
    sizes = np.array([municipality.n(x) for x in arms] + [municipality.n_control])
    n = int(sizes.sum())
    group = np.repeat(np.arange(a + 1), sizes)        # a = control
    dummies = (group[:, None] == np.arange(a)[None, :]).astype(float)   # (n, a)
    p = a + 2
    df = n - p

    theta = true_effects(rng, reps, a, mu, tau)
    p0 = rng.uniform(base_rate[0], base_rate[1], reps)
    needed = MIN_SHARE - theta.min(axis=1) / 100.0
    raised = needed > p0
    p0 = np.maximum(p0, needed)
    p_arm = np.concatenate([p0[:, None] + theta / 100.0, p0[:, None]], axis=1)   # (reps, a + 1)
    p_arm = np.clip(p_arm, 1e-6, 1 - 1e-6)   # only binds for extreme mu/tau, where effects cannot be shares
    theta = (p_arm[:, :a] - p_arm[:, a:]) * 100.0
    threshold = special.ndtri(p_arm)          # (reps, a + 1)

    est = np.empty((reps, a))
    se = np.empty((reps, a))
    for start in range(0, reps, chunk):
        r = min(chunk, reps - start)
        x = rng.standard_normal((r, n))
        eps = rng.standard_normal((r, n))
        latent = rho * x + math.sqrt(1 - rho * rho) * eps
        y = (latent < threshold[start:start + r][:, group]).astype(float)
        X = np.empty((r, n, p))
        X[:, :, 0] = 1.0
        X[:, :, 1:a + 1] = dummies[None, :, :]
        X[:, :, a + 1] = x
        beta, s = ols_batch(X, y, se_type)
        est[start:start + r] = beta[:, 1:a + 1] * 100.0
        se[start:start + r] = s[:, 1:a + 1] * 100.0
    pval = 2 * special.stdtr(df, -np.abs(est / se))  # scipy.stats.t.sf
    return Trials(municipality, theta, est, se, pval, p0, raised)


# --------------------------------------------------------------------------- #
# printing and reconstruction
# --------------------------------------------------------------------------- #
def print_with_se(estimate, se, decimals: int = DECIMALS_WITH_SE):
    """Estimate and SE (pp) as a report prints them with ``decimals`` decimals of a proportion; back in pp."""
    f = 10.0 ** decimals
    return np.round(np.asarray(estimate) / 100 * f) / f * 100, np.round(np.asarray(se) / 100 * f) / f * 100


def mark_of(pval) -> np.ndarray:
    """Nijmegen's marks: ``*`` p < 0.05, ``~`` 0.05 ≤ p < 0.10, empty otherwise."""
    pval = np.asarray(pval)
    return np.where(pval < 0.05, "*", np.where(pval < 0.10, "~", ""))


def print_with_marks(estimate, pval, decimals: int = DECIMALS_WITH_MARKS):
    """What a marks-only table shows: the estimate (pp) rounded to ``decimals`` decimals of a proportion, its mark,
    and h, half a unit of the last printed decimal in pp (:func:`meta.effects.harmonise.half_unit`)."""
    f = 10.0 ** decimals
    printed = np.round(np.asarray(estimate) / 100 * f) / f
    h = half_unit(f"{-0.11:.{decimals}f}") * 100.0
    return printed * 100.0, mark_of(pval), h


@lru_cache(maxsize=None)
def _bracket(abs_est: float, h: float, mark: str) -> tuple[float, float]:
    p_below, p_at_least = NIJMEGEN_LEGEND[mark]
    return mark_bracket(abs_est, h, p_below, p_at_least)


def reconstruct_se(printed, marks, h: float, n_arm, n_control: int, policy: str, common_se: bool = True):
    """Standard errors of one municipality's arm-versus-control rows reconstructed from their marks.

    The same functions as :func:`meta.effects.harmonise.harmonise`: :func:`~meta.effects.harmonise.mark_bracket`,
    :func:`~meta.effects.harmonise.range_bound`, :func:`~meta.effects.harmonise.common_se` and
    :func:`~meta.effects.harmonise.se_from_bracket`.

    Parameters
    ----------
    printed, marks : (R, a) arrays of printed estimates (pp) and marks of the a arms of one regression.
    h : half a unit of the last printed decimal (pp).
    n_arm : the a arm sizes; n_control : the control group's size.
    policy : ``central`` or ``conservative`` (:func:`meta.effects.harmonise.se_from_bracket`).
    common_se : apply harmonise's common-SE constraint across the a rows of each replication.

    Returns
    -------
    sei, sei_low, sei_high : (R, a) arrays.
    """
    printed = np.asarray(printed, float)
    marks = np.asarray(marks)
    abs_est = np.round(np.abs(printed), 9)        # exact keys for the cache (printed values are on a grid)
    lo = np.empty(printed.shape)
    hi = np.empty(printed.shape)
    for idx in np.ndindex(printed.shape):
        lo[idx], hi[idx] = _bracket(float(abs_est[idx]), float(h), str(marks[idx]))
    n_arm = np.asarray(n_arm, float)
    cap = np.array([range_bound(SHARE_RANGE_PP, na, n_control) for na in n_arm])
    hi = np.minimum(hi, cap[None, :])
    if common_se and printed.shape[1] >= 2:
        lo, hi = common_se_constraint(lo, hi, np.sqrt(1 / n_arm + 1 / n_control)[None, :])
    p_below = np.vectorize(lambda m: NIJMEGEN_LEGEND[m][0], otypes=[float])(marks)
    p_at_least = np.vectorize(lambda m: NIJMEGEN_LEGEND[m][1], otypes=[float])(marks)
    return se_from_bracket(lo, hi, policy, np.abs(printed), p_below, p_at_least), lo, hi


@dataclass
class Printed:
    """The pooled arm's (yi, sei) per municipality and SE policy, arrays (reps,), plus diagnostics."""

    yi: dict
    sei: dict
    true_se: np.ndarray
    theta: np.ndarray
    mark: np.ndarray
    bracket: tuple[np.ndarray, np.ndarray]


def print_municipality(trials: Trials, policies=SE_POLICIES) -> Printed:
    """Print one municipality's regression the way the reports do, under every SE policy."""
    m = trials.municipality
    j = m.treatment_arms.index(POOLED_ARM)
    yi, sei = {}, {}
    if "reported" in policies:
        y, s = print_with_se(trials.estimate[:, j], trials.se[:, j])
        yi["reported"], sei["reported"] = y, s
    printed, marks, h = print_with_marks(trials.estimate, trials.pval)
    n_arm = [m.n(x) for x in m.treatment_arms]
    lo = hi = None
    for policy in policies:
        if policy.startswith("marks-"):
            s, lo, hi = reconstruct_se(printed, marks, h, n_arm, m.n_control, policy.split("-", 1)[1])
            yi[policy], sei[policy] = printed[:, j], s[:, j]
    if lo is None:
        _, lo, hi = reconstruct_se(printed, marks, h, n_arm, m.n_control, "central")
    return Printed(yi, sei, trials.se[:, j], trials.theta[:, j], marks[:, j], (lo[:, j], hi[:, j]))


# --------------------------------------------------------------------------- #
# pooling and performance measures
# --------------------------------------------------------------------------- #
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
    from meta.models.bayes import bayes_pool

    key, y, v, scale = task
    out = np.empty((len(y), 5))
    for i in range(len(y)):
        r = bayes_pool(y[i], v[i], tau_prior_scale=scale, level=LEVEL, grid_size=BAYES_GRID)
        out[i] = (r.estimate, r.ci_low, r.ci_high, r.pi_low, r.pi_high)
    return key, out


def _run_bayes(tasks, jobs: int):
    if jobs <= 1 or len(tasks) <= 1:
        return dict(_bayes_task(t) for t in tasks)
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return dict(pool.map(_bayes_task, tasks))


@dataclass
class SimulationResult:
    """The tidy results table and the diagnostics of one run."""

    results: pd.DataFrame
    regression_check: pd.DataFrame
    reconstruction_check: pd.DataFrame
    settings: Settings
    seconds: float = math.nan


def _tau_seed(seed: int, tau: float) -> np.random.SeedSequence:
    """One stream per (seed, τ): results for a τ do not depend on which other τ are run."""
    return np.random.SeedSequence([int(seed), int(round(tau * 1000))])


def run_simulation(settings: Settings) -> SimulationResult:
    """Run the simulation study; see the module docstring for the design.

    Every (τ, k, SE policy) block of ``reps`` meta-analyses is stacked into one padded batch, so each
    method × test is a single :func:`meta.models.engine.pool_batch` call over all of them.
    """
    settings.check()
    t0 = time.perf_counter()
    kmax = max(settings.ks)
    design = settings.design[:kmax]
    R = settings.reps
    reg_rows, rec_rows, blocks = [], [], []
    for tau in settings.taus:
        rngs = [np.random.default_rng(s) for s in _tau_seed(settings.seed, tau).spawn(len(design))]
        printed = []
        for rng, muni in zip(rngs, design):
            tr = simulate_trials(rng, muni, R, settings.mu, tau, settings.rho, settings.base_rate,
                                 settings.regression_se)
            pr = print_municipality(tr, settings.policies)
            printed.append(pr)
            reg_rows += _regression_rows(tr, tau)
            rec_rows.append(_reconstruction_row(tr, pr, tau, settings.policies))
        for k in settings.ks:
            for policy in settings.policies:
                Y = np.zeros((R, kmax))
                V = np.ones((R, kmax))
                Y[:, :k] = np.column_stack([p.yi[policy] for p in printed[:k]])
                V[:, :k] = np.column_stack([p.sei[policy] for p in printed[:k]]) ** 2
                blocks.append(((tau, k, policy, "+".join(m.name for m in design[:k])), Y, V))

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

    if settings.bayes_reps > 0:
        B = settings.bayes_reps
        tasks = [(key, Yb[:B, :key[1]], Vb[:B, :key[1]], settings.tau_prior_scale) for key, Yb, Vb in blocks]
        for (tau, k, policy, names), out in _run_bayes(tasks, settings.jobs).items():
            row = {"tau": tau, "k": k, "se_policy": policy, "method": BAYES_METHOD, "test": BAYES_TEST}
            row.update(performance(out[:, 0], out[:, 1], out[:, 2], out[:, 3], out[:, 4], settings.mu, tau))
            row.update({"tau2_mean": math.nan, "tau2_zero_share": math.nan, "not_converged": 0,
                        "municipalities": names})
            rows.append(row)

    table = pd.DataFrame(rows)
    table.insert(0, "mu", settings.mu)
    table["level"] = LEVEL
    table["tau_prior_scale"] = np.where(table["method"] == BAYES_METHOD, settings.tau_prior_scale, np.nan)
    rank = {
        "method": {m: i for i, m in enumerate([*settings.methods, BAYES_METHOD])},
        "test": {t: i for i, t in enumerate([*settings.tests, BAYES_TEST])},
        "se_policy": {p: i for i, p in enumerate(settings.policies)},
    }
    table = table.sort_values(["tau", "k", "se_policy", "method", "test"],
                              key=lambda col: col.map(rank[col.name]) if col.name in rank else col,
                              kind="stable").reset_index(drop=True)
    return SimulationResult(table, pd.DataFrame(reg_rows), pd.DataFrame(rec_rows), settings,
                            time.perf_counter() - t0)


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


# --------------------------------------------------------------------------- #
# summary
# --------------------------------------------------------------------------- #
#: The specifications of the verdict table: (label, method, test, policy).
MAIN_SPECS = (
    ("REML + HKSJ (knha), reported SE", "REML", "knha", "reported"),
    ("REML + HKSJ with q >= 1 (adhoc), reported SE", "REML", "adhoc", "reported"),
    ("REML + Wald (z), reported SE", "REML", "z", "reported"),
    ("DL + Wald (z), reported SE", "DL", "z", "reported"),
    ("PM + HKSJ (knha), reported SE", "PM", "knha", "reported"),
    ("REML + HKSJ, SE from marks (central)", "REML", "knha", "marks-central"),
    ("REML + HKSJ, SE from marks (conservative)", "REML", "knha", "marks-conservative"),
    ("REML + Wald (z), SE from marks (central)", "REML", "z", "marks-central"),
    ("Bayes, half-normal tau prior, reported SE", BAYES_METHOD, BAYES_TEST, "reported"),
    ("Bayes, half-normal tau prior, SE from marks (central)", BAYES_METHOD, BAYES_TEST, "marks-central"),
)


def canonical_command(s: Settings, out) -> str:
    """The ``meta simulate`` command that reproduces a run exactly (``--jobs`` does not change results)."""
    parts = ["meta", "simulate", "--reps", str(s.reps), "--bayes-reps", str(s.bayes_reps), "--seed", str(s.seed),
             "--mu", f"{s.mu:g}", "--tau", *[f"{t:g}" for t in s.taus], "--k", *[str(k) for k in s.ks],
             "--tau-prior-scale", f"{s.tau_prior_scale:g}", "--rho", f"{s.rho:g}",
             "--regression-se", s.regression_se, "--few-studies-k", str(s.few_studies_k), "--out", str(out)]
    return " ".join(shlex.quote(p) for p in parts)


def _cell(t: pd.DataFrame, tau, k, method, test, policy, col="coverage"):
    r = t[(t["tau"] == tau) & (t["k"] == k) & (t["method"] == method) & (t["test"] == test)
          & (t["se_policy"] == policy)]
    return None if r.empty else r.iloc[0]


def _pct(x) -> str:
    return f"{100 * x:.1f}%"


def _md_table(header, body) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return lines


def verdict_sentences(t: pd.DataFrame, s: Settings) -> list[str]:
    """Plain-language verdicts for an analyst, filled from the results table."""
    out = []
    k0 = min(s.ks)
    names = t.loc[t["k"] == k0, "municipalities"].iloc[0].replace("+", " and ").title().replace(" And ", " and ")
    for tau in s.taus:
        hk = _cell(t, tau, k0, "REML", "knha", "reported")
        wz = _cell(t, tau, k0, "REML", "z", "reported")
        dz = _cell(t, tau, k0, "DL", "z", "reported")
        parts = []
        if hk is not None:
            parts.append(f"a 95% HKSJ interval from REML covers the true mean effect {_pct(hk.coverage)} of the time "
                         f"(median width {hk.ci_width_median:.0f} pp)")
        if wz is not None:
            only = "only " if wz.coverage < 0.93 else ""
            zs = (f"a Wald (z) interval from REML {only}{_pct(wz.coverage)} "
                  f"(median width {wz.ci_width_median:.0f} pp)")
            if dz is not None:
                zs += f", from DerSimonian-Laird {_pct(dz.coverage)}"
            parts.append(zs)
        marks = [(word, _cell(t, tau, k0, "REML", "knha", policy))
                 for policy, word in (("marks-central", "central"), ("marks-conservative", "conservative"))]
        marks = [(w, c) for w, c in marks if c is not None]
        if marks:
            parts.append("HKSJ intervals from SEs reconstructed from significance marks cover "
                         + " and ".join(f"{_pct(c.coverage)} ({w})" for w, c in marks))
        b = _cell(t, tau, k0, BAYES_METHOD, BAYES_TEST, "reported")
        if b is not None:
            parts.append(f"the Bayesian interval (half-normal prior on tau, scale {s.tau_prior_scale:g} pp) covers "
                         f"{_pct(b.coverage)} (median width {b.ci_width_median:.0f} pp; {int(b.reps)} replications)")
        if parts:
            out.append(f"- **k = {k0} ({names}), between-municipality SD tau = {tau:g} pp:** " + "; ".join(parts)
                       + ".")
    rule = [(tau, cells) for label, tau, cells in headline_rows(t, s) if label.startswith("headline")]
    cov = [c.coverage for _, cells in rule for c in cells if c is not None]
    few = [c.ci_width_median for _, cells in rule for k, c in zip(s.ks, cells) if c is not None and k <= s.few_studies_k]
    hk_few = [c.ci_width_median for tau in s.taus for k in s.ks if k <= s.few_studies_k
              for c in [_cell(t, tau, k, "REML", "knha", "reported")] if c is not None]
    if cov and few and any(c is not None and k <= s.few_studies_k for _, cells in rule for k, c in zip(s.ks, cells)
                           if c is not None and c.method == BAYES_METHOD):
        out.append(f"- **The report's headline** (Bayesian for k <= {s.few_studies_k}, REML + HKSJ above) covers "
                   f"{100 * min(cov):.0f}-{100 * max(cov):.0f}% over every tau and k simulated; for "
                   f"k <= {s.few_studies_k} its median width is {min(few):.0f}-{max(few):.0f} pp against "
                   f"{min(hk_few):.0f}-{max(hk_few):.0f} pp for REML + HKSJ.")
    kmax = max(s.ks)
    if kmax != k0:
        bits = []
        for tau in s.taus:
            hk = _cell(t, tau, kmax, "REML", "knha", "reported")
            wz = _cell(t, tau, kmax, "REML", "z", "reported")
            if hk is not None and wz is not None:
                bits.append(f"tau = {tau:g} pp: HKSJ {_pct(hk.coverage)} (median width {hk.ci_width_median:.0f} pp), "
                            f"Wald {_pct(wz.coverage)}")
        if bits:
            out.append(f"- **k = {kmax}:** " + "; ".join(bits) + ".")
    return out


def _spec_values(t: pd.DataFrame, method, test, policy, col="coverage", taus=None, ks=None) -> np.ndarray:
    sel = (t["method"] == method) & (t["test"] == test) & (t["se_policy"] == policy)
    if taus is not None:
        sel &= t["tau"].isin(list(taus))
    if ks is not None:
        sel &= t["k"].isin(list(ks))
    return t.loc[sel, col].to_numpy(float)


def _zero_share(t: pd.DataFrame, tau) -> np.ndarray:
    """Share of REML pools (printed SEs) with τ̂² = 0, per k, at one τ."""
    return _spec_values(t, "REML", "knha", "reported", "tau2_zero_share", taus=[tau])


def _range_pct(x) -> str:
    lo, hi = 100 * np.min(x), 100 * np.max(x)
    return f"{lo:.0f}%" if round(lo) == round(hi) else f"{lo:.0f}-{hi:.0f}%"


def plain_words(t: pd.DataFrame, rc: pd.DataFrame, s: Settings) -> list[str]:
    """The lessons of a run in plain words, every number taken from the results (bullets)."""
    out = []
    k0, tmax, ks = min(s.ks), max(s.taus), list(s.ks)
    hk = _spec_values(t, "REML", "knha", "reported")
    if hk.size:
        w0 = _spec_values(t, "REML", "knha", "reported", "ci_width_median", ks=[k0])
        verdict = "keep their promise" if hk.min() >= 0.92 else "do not always keep their promise"
        lo_w, hi_w = round(float(np.min(w0))), round(float(np.max(w0)))
        widths = f"{lo_w}" if lo_w == hi_w else f"{lo_w}-{hi_w}"
        out.append(f"- HKSJ (test knha) intervals from REML {verdict}: they cover {_range_pct(hk)} over every "
                   f"tau and k simulated. The price is width: with k = {k0} the median 95% interval is "
                   f"{widths} pp wide, because it uses a t distribution with k - 1 = {k0 - 1} degree(s) of "
                   "freedom. Such an interval is honest but says little.")
    wz = _spec_values(t, "REML", "z", "reported", taus=[tmax])
    if wz.size and tmax > 0:
        line = f"- Wald (z) intervals with tau = {tmax:g} pp cover {_range_pct(wz)} for k = {ks[0]}-{ks[-1]}"
        if wz.max() < 0.93:
            line += (": too narrow as soon as municipalities truly differ, and more municipalities (up to six) do "
                     "not fix this. A Wald interval from a handful of municipalities should not be read as a 95% "
                     "interval.")
        else:
            line += "."
        out.append(line)
    ad = _spec_values(t, "REML", "adhoc", "reported", ks=[k for k in ks if k <= 3])
    if ad.size:
        word = "over-covers" if ad.min() > 0.96 else "covers"
        out.append(f"- The adhoc variant (HKSJ with its scale factor floored at 1) {word} with k <= 3 "
                   f"({_range_pct(ad)}), with wider intervals than HKSJ.")
    hc = _spec_values(t, "REML", "knha", "marks-central")
    hv = _spec_values(t, "REML", "knha", "marks-conservative")
    if hc.size and hk.size == hc.size:
        diff = np.abs(hc - hk).max()
        line = (f"- With SEs reconstructed from significance marks, HKSJ covers {_range_pct(hc)} (central) "
                f"and {_range_pct(hv) if hv.size else 'n/a'} (conservative), at most {100 * diff:.1f} percentage "
                "points from the same intervals built on printed SEs. ")
        if not rc.empty and {"marks-central_ratio_median", "marks-conservative_ratio_median"} <= set(rc.columns):
            line += (f"The reconstructed SEs are larger than the true ones on the whole (median ratio "
                     f"{rc['marks-central_ratio_median'].median():.2f} central, "
                     f"{rc['marks-conservative_ratio_median'].median():.2f} conservative)")
            zc = _spec_values(t, "REML", "z", "marks-central")
            zr = _spec_values(t, "REML", "z", "reported")
            if zc.size and zc.size == zr.size:
                d = 100 * (zc - zr).mean()
                line += (f"; Wald intervals from them cover {abs(d):.1f} points {'more' if d >= 0 else 'less'} on "
                         "average than Wald intervals from printed SEs, while HKSJ rescales by the observed spread")
            line += "."
        out.append(line)
    bias_rep = _spec_values(t, "REML", "z", "reported", "bias")
    bias_mk = _spec_values(t, "REML", "z", "marks-central", "bias")
    if bias_rep.size:
        rmse = _spec_values(t, "REML", "z", "reported", "rmse")
        ratio = np.abs(bias_rep / rmse).max()
        size = "small against" if ratio < 0.2 else "not negligible against"
        line = (f"- Bias of the pooled REML estimate is {size} its uncertainty (at most {100 * ratio:.0f}% of the "
                f"RMSE, which is {rmse.min():.1f}-{rmse.max():.1f} pp): at most {np.abs(bias_rep).max():.2f} pp with "
                "printed SEs")
        if bias_mk.size:
            line += f", at most {np.abs(bias_mk).max():.2f} pp with SEs from marks"
        line += (". What bias there is comes from weights that depend on the estimate: the SE of a difference in "
                 "shares is smaller where a share is lower, so with printed SEs the effects that lower the share "
                 "weigh more")
        if bias_mk.size:
            toward_zero = float(np.mean(bias_mk)) * math.copysign(1.0, s.mu) < 0
            line += ("; with marks, an estimate that earned a mark gets a smaller reconstructed SE than an unmarked "
                     "one (pulling the pooled estimate away from zero), while the central SE of an unmarked estimate "
                     "grows with its size, because the mark's lower bound does (pulling it towards zero); on "
                     f"average the net bias here points {'towards' if toward_zero else 'away from'} zero")
        out.append(line + ".")
    pi = {tau: _spec_values(t, "REML", "knha", "reported", "pi_coverage", taus=[tau]) for tau in s.taus if tau > 0}
    pi = {tau: v for tau, v in pi.items() if v.size}
    if pi:
        out.append("- The prediction interval for a new municipality's true effect (REML + HKSJ) covers "
                   + "; ".join(f"{_range_pct(v)} at tau = {tau:g} pp" for tau, v in pi.items())
                   + f" over k = {ks[0]}-{ks[-1]}. With few municipalities tau is often estimated as zero (REML: in "
                   + "; ".join(f"{_range_pct(_zero_share(t, tau))} of the pools at tau = {tau:g} pp" for tau in pi)
                   + "), and the prediction interval then shrinks to the confidence interval.")
    same = []
    if 2 in s.ks:
        cols = ["coverage", "bias", "ci_width_median"]
        rows = [t[(t["k"] == 2) & (t["method"] == m)].sort_values(["tau", "se_policy", "test"])[cols].to_numpy()
                for m in s.methods]
        same = len(rows) > 1 and all(r.shape == rows[0].shape and np.allclose(r, rows[0]) for r in rows[1:])
    if same:
        out.append(f"- With k = 2 the estimators {', '.join(s.methods)} give the same tau^2 (for two studies they "
                   "coincide algebraically), so their rows are identical.")
    by = _spec_values(t, BAYES_METHOD, BAYES_TEST, "reported")
    if by.size:
        reps = int(t.loc[t["method"] == BAYES_METHOD, "reps"].iloc[0])
        lines = []
        for tau in s.taus:
            c = _spec_values(t, BAYES_METHOD, BAYES_TEST, "reported", taus=[tau])
            w = _spec_values(t, BAYES_METHOD, BAYES_TEST, "reported", "ci_width_median", taus=[tau], ks=[k0])
            lines.append(f"{_range_pct(c)} at tau = {tau:g} pp (median width at k = {k0}: {w[0]:.0f} pp)")
        out.append(f"- The Bayesian interval (half-normal prior on tau with scale {s.tau_prior_scale:g} pp; "
                   f"{reps} replications, Monte Carlo SE up to {100 * math.sqrt(0.25 / reps):.1f} points) covers "
                   + "; ".join(lines) + ". Its coverage rests on the prior scale being about right for the true "
                   "spread between municipalities.")
    if not rc.empty and "marks-conservative_below_true_se" in rc:
        worst = rc["marks-conservative_below_true_se"].max()
        w90 = rc["marks-conservative_below_90pct_true_se"].max()
        free = rc["conservative_without_common_se_below_true_se"].max()
        se_word = "HC1-robust" if s.regression_se == "hc1" else "classical"
        out.append(f"- The conservative SE (the upper bound of the bracket) is below the regression's own SE in at "
                   f"most {_pct(worst)} of the rows (below 90% of it in at most {_pct(w90)}); without the "
                   f"common-SE constraint this happens in {_pct(free)}. The constraint assumes equal outcome "
                   f"variance in all arms of a regression (`inputs/README.md`, assumption iii), which {se_word} "
                   "SEs of shares that differ between arms do not satisfy exactly.")
    return out


def headline_rows(t: pd.DataFrame, s: Settings, policy: str = "reported") -> list[tuple[str, float, list]]:
    """(label, tau, cells per k) for the Bayesian model, REML + HKSJ and the report's headline rule
    (Bayesian for k <= ``few_studies_k``, REML + HKSJ above); a cell is a results row or None."""
    out = []
    for tau in s.taus:
        bayes = [_cell(t, tau, k, BAYES_METHOD, BAYES_TEST, policy) for k in s.ks]
        hksj = [_cell(t, tau, k, "REML", "knha", policy) for k in s.ks]
        rule = [b if k <= s.few_studies_k else h for k, b, h in zip(s.ks, bayes, hksj)]
        out += [(f"Bayesian, half-normal tau prior (scale {s.tau_prior_scale:g} pp)", tau, bayes),
                ("REML + HKSJ", tau, hksj),
                (f"headline as reported (Bayesian for k <= {s.few_studies_k}, REML + HKSJ above)", tau, rule)]
    return out


def headline_section(t: pd.DataFrame, s: Settings) -> list[str]:
    """The summary section on the report's headline: coverage and median width at every k, beside HKSJ's."""
    rows = headline_rows(t, s)
    if not any(c is not None for label, _, cells in rows if label.startswith("Bayesian") for c in cells):
        return []
    reps = t.loc[t["method"] == BAYES_METHOD, "reps"]
    L = [f"## The report's headline: Bayesian for k <= {s.few_studies_k}, REML + HKSJ above (printed SEs)", "",
         "Coverage of the 95% interval for mu in % (Monte Carlo SE) and its median width in pp; the Bayesian rows rest "
         f"on the first {int(reps.max()) if len(reps) else 0} replications, the HKSJ rows on {s.reps}.", ""]
    body = [[f"tau = {tau:g}: {label}"] + [
        "" if c is None else f"{100 * c.coverage:.1f} ({100 * c.coverage_mcse:.1f}); {c.ci_width_median:.1f} pp"
        for c in cells] for label, tau, cells in rows]
    L += _md_table(["interval", *[f"k = {k}" for k in s.ks]], body)
    return L + [""]


def summary_markdown(res: SimulationResult, out, command: str | None = None) -> str:
    """The short markdown summary: verdict, the main coverage table per tau, bias, settings, diagnostics."""
    s, t = res.settings, res.results
    cmd = command or canonical_command(s, out)
    L = ["# Does the method keep its promise? Simulation of the whole chain", ""]
    L += ["Individual-level trials shaped like the six experiments are analysed with the LOEP-style regression, "
          "printed the way the reports print them, given standard errors the way `meta.effects.harmonise` derives them and "
          "pooled with `meta.models.engine.pool_batch` and `meta.models.bayes.bayes_pool`. The tables give how often the nominal "
          "95% interval for the mean effect mu actually contains it (coverage; 95% is the promise).", ""]
    L += ["## Verdict", ""]
    L += verdict_sentences(t, s)
    L += ["", "What this means:", ""]
    L += plain_words(t, res.reconstruction_check, s)
    L += [""]
    L += headline_section(t, s)

    for tau in s.taus:
        L += [f"## Coverage of the 95% interval for mu, tau = {tau:g} pp (Monte Carlo SE in brackets)", ""]
        body = []
        for label, method, test, policy in MAIN_SPECS:
            cells = [_cell(t, tau, k, method, test, policy) for k in s.ks]
            if all(c is None for c in cells):
                continue
            body.append([label] + ["" if c is None else f"{100 * c.coverage:.1f} ({100 * c.coverage_mcse:.1f})"
                                   for c in cells])
        L += _md_table(["specification", *[f"k = {k}" for k in s.ks]], body)
        L += ["", f"Median width of the interval (pp), tau = {tau:g} pp:", ""]
        body = []
        for label, method, test, policy in MAIN_SPECS[:3] + MAIN_SPECS[5:7] + MAIN_SPECS[8:9]:
            cells = [_cell(t, tau, k, method, test, policy) for k in s.ks]
            if all(c is None for c in cells):
                continue
            body.append([label] + ["" if c is None else f"{c.ci_width_median:.1f}" for c in cells])
        L += _md_table(["specification", *[f"k = {k}" for k in s.ks]], body)
        L += [""]

    L += ["## Prediction interval for a new municipality's true effect (coverage, %)", ""]
    body = []
    for tau in s.taus:
        for label, method, test, policy in (MAIN_SPECS[0], MAIN_SPECS[2], MAIN_SPECS[8]):
            cells = [_cell(t, tau, k, method, test, policy) for k in s.ks]
            if all(c is None for c in cells):
                continue
            body.append([f"tau = {tau:g}: {label}"] + [
                "" if c is None else f"{100 * c.pi_coverage:.1f} ({100 * c.pi_coverage_mcse:.1f})" for c in cells])
    L += _md_table(["specification", *[f"k = {k}" for k in s.ks]], body)

    L += ["", "## Bias of the pooled estimate (pp; true mu = " f"{s.mu:g} pp)", ""]
    body = []
    for tau in s.taus:
        for label, method, policy in (("REML, reported SE", "REML", "reported"), ("DL, reported SE", "DL", "reported"),
                                      ("REML, marks (central)", "REML", "marks-central"),
                                      ("REML, marks (conservative)", "REML", "marks-conservative"),
                                      ("Bayes (posterior median), reported SE", BAYES_METHOD, "reported")):
            test = BAYES_TEST if method == BAYES_METHOD else "z"
            cells = [_cell(t, tau, k, method, test, policy) for k in s.ks]
            if all(c is None for c in cells):
                continue
            body.append([f"tau = {tau:g}: {label}"] + [
                "" if c is None else f"{c.bias:+.2f} ({c.bias_mcse:.2f})" for c in cells])
    L += _md_table(["estimate", *[f"k = {k}" for k in s.ks]], body)

    rc = res.reconstruction_check
    if not rc.empty:
        L += ["", "## Standard errors reconstructed from marks (exemption arm, all tau)", ""]
        g = rc.groupby("municipality", sort=False).mean(numeric_only=True)
        body = []
        for name, r in g.iterrows():
            cells = [name, _pct(r["share_star"]), _pct(r["share_tilde"]), _pct(r["share_unmarked"]),
                     _pct(r["bracket_contains_true_se"])]
            for policy in ("marks-central", "marks-conservative"):
                if f"{policy}_below_true_se" in r:
                    cells += [_pct(r[f"{policy}_below_true_se"]), f"{r[f'{policy}_ratio_median']:.2f}"]
                else:
                    cells += ["", ""]
            cells.append(_pct(r["conservative_without_common_se_below_true_se"]))
            body.append(cells)
        L += _md_table(["municipality", "*", "~", "no mark", "bracket holds true SE", "central < true SE",
                        "central / true (median)", "conservative < true SE", "conservative / true (median)",
                        "conservative < true SE without the common-SE constraint"], body)
        L += ["", "\"True SE\" is the SE the municipality's own regression computed (the one behind its mark). "
              "Shares are averaged over the tau settings."]

    rg = res.regression_check
    if not rg.empty:
        L += ["", "## Check: regression SEs against the spread of the estimates "
              f"(pooled arm, tau = {min(s.taus):g} pp)", ""]
        sub = rg[(rg["tau"] == min(s.taus)) & (rg["arm"] == POOLED_ARM)]
        body = [[r.municipality, f"{r.n_arm}/{r.n_control}", f"{r.sd_estimate:.2f}", f"{r.rms_se:.2f}",
                 f"{r.mean_estimate_minus_theta:+.2f}"] for r in sub.itertuples()]
        L += _md_table(["municipality", "N arm/control", "SD of estimate - theta (pp)", "RMS of regression SE (pp)",
                        "mean estimate - theta (pp)"], body)
        raised = rg["share_p0_raised"].max()
        L += ["", f"Largest share of replications in which a control share was raised to keep every true effect "
              f"exact: {_pct(raised)}."]

    L += ["", "## Settings", "", f"- Command: `{cmd}`",
          f"- Seed {s.seed}; {s.reps} replications per tau (Bayesian model: the first {s.bayes_reps}, because "
          "it is computed one replication at a time); the same simulated trials serve every k, method, test and "
          "SE policy.",
          f"- Mean effect mu = {s.mu:g} pp; between-municipality SD tau in {{{', '.join(f'{x:g}' for x in s.taus)}}} "
          "pp; every treatment arm's true effect is mu + u, u ~ N(0, tau^2), independently.",
          f"- Control share drawn from U({s.base_rate[0]:.0%}, {s.base_rate[1]:.0%}) per municipality and "
          f"replication; one baseline covariate with latent correlation {s.rho:g} with the outcome.",
          f"- Regression per municipality: linear probability model on arm dummies + covariate, "
          f"{'HC1-robust' if s.regression_se == 'hc1' else 'classical'} SEs, t p-values.",
          "- Printing: with SEs, estimate and SE to 3 decimals of a proportion; marks only (Nijmegen: `*` p<0.05, "
          "`~` p<0.10), estimate to 2 decimals. Every municipality in a pool is printed the same way. SE from "
          "marks: `mark_bracket` (half-unit rounding), `range_bound` with the arm and control N, the common-SE "
          "constraint across the arms of one regression (`common_se`), `se_from_bracket` (central or conservative).",
          f"- Pools: the exemption arm of the first k municipalities in the order "
          f"{', '.join(m.name for m in s.design)} (k = 2 is the pair transcribed today).",
          "- Arm sizes: " + "; ".join(f"{m.name} " + ", ".join(f"{a} {n}" for a, n in m.arms) + f" ({m.sizes})"
                                       for m in s.design[:max(s.ks)]) + ".",
          f"- Bayesian model: half-normal prior on tau with scale {s.tau_prior_scale:g} pp, flat prior on mu; "
          "posterior median and equal-tailed 95% intervals.",
          "- Not modelled: attrition (the range bound uses the full arm N), between-arm contrasts printed next to "
          "the arm columns, and Wageningen's different legend (every marks-only municipality uses Nijmegen's).",
          f"- Full results: `{RESULTS_FILE}`, one row per tau x k x SE policy x method x test: `coverage` of the "
          "interval for mu, `pi_coverage` of the prediction interval for a new municipality's true effect, `bias` "
          "and `rmse` of the pooled estimate (pp), median and mean interval width (pp), mean tau^2 estimate and share "
          "of zero estimates, each with its Monte Carlo SE (`*_mcse`) where one applies; `reps` is the number of "
          "replications behind the row."]
    if math.isfinite(res.seconds):
        L += [f"- Runtime: {res.seconds:.0f} s with {s.jobs} process(es) for the Bayesian part."]
    return "\n".join(L) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_outputs(res: SimulationResult, out, command: str | None = None) -> tuple[Path, Path]:
    """Write ``simulation_results.csv`` and ``simulation_summary.md`` into ``out`` (created if needed)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / RESULTS_FILE, out / SUMMARY_FILE
    _write_atomic(csv_path, res.results.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
    _write_atomic(md_path, summary_markdown(res, out, command))
    return csv_path, md_path


# --------------------------------------------------------------------------- #
# command line
# --------------------------------------------------------------------------- #
QUICK = {"reps": 300, "bayes_reps": 20}
DEFAULTS = Settings()


def _add_options(p: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    p.add_argument("--reps", type=int, default=None,
                   help=f"replications per tau (default {d.reps}; {QUICK['reps']} with --quick)")
    p.add_argument("--bayes-reps", type=int, default=None,
                   help=f"replications for the Bayesian model, the first of --reps (default {d.bayes_reps}; "
                        f"{QUICK['bayes_reps']} with --quick; 0 to skip)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    p.add_argument("--mu", type=float, default=d.mu, help=f"mean true effect in pp (default {d.mu:g})")
    p.add_argument("--tau", type=float, nargs="+", default=list(d.taus),
                   help="between-municipality SD(s) of the true effect in pp (default 0 3 6)")
    p.add_argument("--k", type=int, nargs="+", default=list(d.ks),
                   help="numbers of municipalities pooled, the first k of nijmegen wageningen groningen tilburg "
                        "utrecht deventer (default 2 3 4 5 6)")
    p.add_argument("--tau-prior-scale", type=float, default=d.tau_prior_scale,
                   help=f"scale of the half-normal prior on tau in pp (default {d.tau_prior_scale:g})")
    p.add_argument("--few-studies-k", type=int, default=d.few_studies_k,
                   help=f"the summary's headline rule: Bayesian for k <= this, REML + HKSJ above (default "
                        f"{d.few_studies_k}, the plan's few_studies_k); does not change any pooled result")
    p.add_argument("--rho", type=float, default=d.rho,
                   help=f"latent correlation of the baseline covariate with the outcome (default {d.rho:g})")
    p.add_argument("--regression-se", choices=("hc1", "classical"), default=d.regression_se,
                   help="standard errors of the per-municipality regression (default hc1)")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="processes for the Bayesian part (default min(2, cores)); results do not depend on it")
    p.add_argument("--quick", action="store_true",
                   help=f"a fast run for tests: --reps {QUICK['reps']} --bayes-reps {QUICK['bayes_reps']} "
                        "unless given")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"folder for {RESULTS_FILE} and {SUMMARY_FILE} "
                                                      f"(default {DEFAULT_OUT}/)")


DESCRIPTION = (
    "Simulation study of the whole chain: individual-level trials shaped like the six experiments, the LOEP-style\n"
    "regression per municipality, estimates printed with SEs or only with significance marks, SEs reconstructed\n"
    "as meta.effects.harmonise does, then pooling for k = 2..6 with DL/REML/PM x z/knha/adhoc and the Bayesian model.\n"
    "Writes simulation_results.csv (coverage, bias, prediction-interval coverage, Monte Carlo SEs) and\n"
    "simulation_summary.md (the verdict in plain words) into --out.\n"
    "Example: meta simulate --reps 2000 --out inputs/simulation"
)


def add_subcommand(sub) -> argparse.ArgumentParser:
    """Register ``meta simulate`` on an argparse subparsers object."""
    p = sub.add_parser("simulate", help="simulation study: actual coverage and bias of the pooled intervals",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_options(p)
    p.set_defaults(func=cmd_simulate)
    return p


def settings_from_args(args) -> Settings:
    reps = args.reps if args.reps is not None else (QUICK["reps"] if args.quick else DEFAULTS.reps)
    bayes = args.bayes_reps if args.bayes_reps is not None else (
        QUICK["bayes_reps"] if args.quick else DEFAULTS.bayes_reps)
    return replace(DEFAULTS, reps=reps, bayes_reps=min(bayes, reps), seed=args.seed, mu=args.mu,
                   taus=tuple(args.tau), ks=tuple(sorted(set(args.k))), tau_prior_scale=args.tau_prior_scale,
                   few_studies_k=args.few_studies_k, rho=args.rho, regression_se=args.regression_se, jobs=max(1, args.jobs)).check()


def cmd_simulate(args) -> int:
    """Run ``meta simulate``: simulate, write both files, print where they are and the verdict."""
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"meta simulate: error: {exc}", file=sys.stderr)
        return 2
    res = run_simulation(settings)
    csv_path, md_path = write_outputs(res, args.out)
    print(f"wrote {csv_path} and {md_path} ({res.seconds:.0f} s)")
    for line in verdict_sentences(res.results, settings):
        print(line)
    return 0


def main(argv=None) -> int:
    """Stand-alone entry point: ``main(['--out', 'inputs/simulation'])`` is ``meta simulate --out inputs/simulation``."""
    parser = argparse.ArgumentParser(prog="meta simulate", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_options(parser)
    return cmd_simulate(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Bayesian normal-normal random-effects meta-analysis for few studies.

The model is the one of Friede et al. (2017) and Röver's ``bayesmeta`` (2020)::

    yᵢ | θᵢ      ~ N(θᵢ, vᵢ)                    (i = 1..k, vᵢ known)
    θᵢ | μ, τ    ~ N(μ, τ²)
    τ            ~ half-normal(scale s)        p(τ) ∝ exp(−τ²/(2s²)), τ ≥ 0
                   or half-Cauchy(scale s)     p(τ) ∝ 1/(1 + τ²/s²)   (sensitivity analysis)
    μ            ~ flat (improper uniform)     or N(0, σ_μ²)

and it is computed without a sampler: the marginal posterior of τ is known in
closed form up to a constant, and given τ the effect μ and a new study's true
effect θ_new are normal. Everything else is one integral over τ.

Marginal posterior of τ
-----------------------
With wᵢ(τ) = 1/(vᵢ + τ²), flat prior on μ::

    μ̂(τ) = Σwᵢyᵢ / Σwᵢ,     V_μ(τ) = 1 / Σwᵢ,
    p(τ | y) ∝ p(τ) · V_μ^{1/2} · Πᵢ (vᵢ + τ²)^{−1/2} · exp(−½ Σᵢ wᵢ (yᵢ − μ̂)²).

A normal prior μ ~ N(0, σ_μ²) enters as one more "observation" y₀ = 0 with the
fixed variance σ_μ² (it does not get τ² added): the sums in μ̂, V_μ and the
exponent then run over i = 0..k.

Conditionally on τ::

    μ     | τ, y ~ N(μ̂(τ), V_μ(τ))
    θ_new | τ, y ~ N(μ̂(τ), V_μ(τ) + τ²)

so the marginal posteriors of μ and θ_new are continuous mixtures of normals
over p(τ | y) — the DIRECT idea of Röver (2020, sec. 2.3).

Numerical integration
---------------------
All integrands are smooth *even* functions of τ (they depend on τ² only, and
the half-normal density extends to the even normal density). Substituting
τ = c·sinh(u), with dτ = c·cosh(u)·du, keeps them even in u, so the trapezoid
rule on u ∈ [0, U] has no Euler-Maclaurin boundary error at u = 0 and converges
geometrically in the step h (the integrand is negligible at U by construction).
The map spaces nodes ``c·h`` apart near τ = 0 and geometrically (relative
spacing h) further out, so one grid resolves every scale in the problem —
c = ½·min(s, √min vᵢ) — up to the cut-off U, chosen so that a rigorous upper
bound of log p(τ | y) has fallen 50 nats below its maximum beyond it.

The trapezoid nodes τⱼ with normalised weights ωⱼ give the mixtures
F_μ(x) = Σⱼ ωⱼ Φ((x − μ̂ⱼ)/√V_μⱼ) (likewise for θ_new); quantiles are the roots
of F = p (Brent's method, bracketed by Chebyshev's inequality). Quantiles of τ
are roots of its CDF, integrated by 8-point Gauss-Legendre on every interval of
the grid and on the partial interval up to the candidate root. The grid is
doubled until the quantiles computed on the grid and on its every-other-node
subgrid agree to ``REL_TOL`` times the smaller of the posterior sd and the
interval's width (the half-Cauchy prior can leave μ without a finite sd), and the
probabilities to ``REL_TOL`` (so the returned values are well inside the target
accuracy of 1e-4 of the interval width).

(The mixture quantiles and probabilities are in :mod:`meta.models.mixtures`.)

Decision probabilities are values of the same mixture CDF:
P(μ > 0 | y) = Σⱼ ωⱼ Φ(μ̂ⱼ/√V_μⱼ), P(μ < −δ | y) = F_μ(−δ), P(|μ| < δ | y) = F_μ(δ) − F_μ(−δ).

References
----------
Röver C (2020). Bayesian random-effects meta-analysis using the bayesmeta R
package. J Stat Softw 93(6):1-51. doi:10.18637/jss.v093.i06
Friede T, Röver C, Wandel S, Neuenschwander B (2017). Meta-analysis of few
small studies in orphan diseases. Res Synth Methods 8:79-91. doi:10.1002/jrsm.1217
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np

from meta.models.conditional import conditional, log_prior
from meta.models.mixtures import (grid_quantiles, grid_quantiles_within, mixture_probabilities, mixture_quantiles,
                                  mixture_quantiles_within)
from meta.models.roots import brentq

#: Grid refinement stops when the quantiles move by less than this times the posterior sd.
REL_TOL = 1e-7
#: The grid is not refined beyond this many trapezoid intervals.
MAX_GRID = 2**17
#: Cut the τ range where an upper bound of log p(τ|y) is this far below the maximum.
TAIL_NATS = 50.0

#: The smallest positive normal float (a floor for the scales of :func:`_max_change`).
_TINY = np.finfo(float).tiny

#: The keys of a :class:`BayesResult`, in order.
BAYES_KEYS = (
    "k", "estimate", "mean", "sd", "ci_low", "ci_high", "pi_low", "pi_high",
    "tau_median", "tau_ci_low", "tau_ci_high", "prior_tau_scale", "prior_mu_sd", "level",
    "tau_prior", "delta", "p_gt_0", "p_lt_minus_delta", "p_within_delta",
)
#: Priors for τ: half-normal (the default, Friede et al. 2017) and half-Cauchy (a heavier-tailed alternative).
TAU_PRIORS = ("halfnormal", "halfcauchy")


@dataclass(frozen=True)
class BayesResult:
    """Posterior summaries of one Bayesian random-effects meta-analysis.

    Attributes
    ----------
    k : int
        Number of studies.
    estimate : float
        Posterior median of μ.
    mean, sd : float
        Posterior mean and standard deviation of μ (NaN where they do not exist: with the half-Cauchy prior and
        a flat μ prior the mean needs k ≥ 2 and the sd k ≥ 3).
    ci_low, ci_high : float
        Equal-tailed credible interval for μ at ``level`` percent.
    pi_low, pi_high : float
        Equal-tailed posterior predictive interval for a new study's true
        effect θ_new ~ N(μ, τ²) at ``level`` percent.
    tau_median, tau_ci_low, tau_ci_high : float
        Posterior median and equal-tailed ``level`` interval of τ.
    prior_tau_scale : float
        Scale s of the half-normal prior on τ.
    prior_mu_sd : float or None
        Standard deviation of the N(0, σ_μ²) prior on μ; None for the flat prior.
    level : float
        Interval level in percent.
    tau_prior : {"halfnormal", "halfcauchy"}
        Family of the prior on τ (scale ``prior_tau_scale``).
    delta : float
        Threshold δ ≥ 0 of the decision probabilities (NaN when none was given).
    p_gt_0 : float
        P(μ > 0 | y).
    p_lt_minus_delta, p_within_delta : float
        P(μ < −δ | y) and P(|μ| < δ | y); NaN when no δ was given.
    """

    k: int
    estimate: float
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    tau_median: float
    tau_ci_low: float
    tau_ci_high: float
    prior_tau_scale: float
    prior_mu_sd: float | None
    level: float
    tau_prior: str = "halfnormal"
    delta: float = math.nan
    p_gt_0: float = math.nan
    p_lt_minus_delta: float = math.nan
    p_within_delta: float = math.nan

    def to_dict(self, keys: Iterable[str] | None = None) -> dict:
        """The result as a plain dict, optionally restricted to ``keys``."""
        d = asdict(self)
        return d if keys is None else {key: d[key] for key in keys}


# --------------------------------------------------------------------------- #
# input handling
# --------------------------------------------------------------------------- #
def _check_inputs(yi, vi, tau_prior_scale, level, mu_prior_sd, grid_size, tau_prior="halfnormal", delta=None):
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    if y.ndim > 1 or v.ndim > 1:
        raise ValueError(f"yi and vi must be one-dimensional, got shapes {y.shape} and {v.shape}")
    y, v = y.ravel(), v.ravel()
    if y.shape != v.shape:
        raise ValueError(f"yi has {y.size} values but vi has {v.size}; give one variance per effect")
    if y.size < 1:
        raise ValueError("no studies to pool (k = 0)")
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise ValueError(f"yi must be finite: study {bad[0]} has yi = {y[bad[0]]!r}")
    bad = np.flatnonzero(~(np.isfinite(v) & (v > 0)))
    if bad.size:
        raise ValueError(f"vi must be finite and > 0: study {bad[0]} has vi = {v[bad[0]]!r}; "
                         "check the standard error of that study")
    s = float(tau_prior_scale)
    if not (math.isfinite(s) and s > 0):
        raise ValueError(f"tau_prior_scale must be finite and > 0, got {tau_prior_scale!r}")
    level = float(level)
    if not (0 < level < 100):
        raise ValueError(f"level must be a percentage between 0 and 100, got {level!r}")
    if mu_prior_sd is not None:
        mu_prior_sd = float(mu_prior_sd)
        if not (math.isfinite(mu_prior_sd) and mu_prior_sd > 0):
            raise ValueError(f"mu_prior_sd must be None (flat prior) or finite and > 0, got {mu_prior_sd!r}")
    if isinstance(grid_size, bool) or int(grid_size) != grid_size or not (8 <= grid_size <= MAX_GRID):
        raise ValueError(f"grid_size must be an integer between 8 and {MAX_GRID}, got {grid_size!r}")
    if tau_prior not in TAU_PRIORS:
        raise ValueError(f"tau_prior must be one of {', '.join(TAU_PRIORS)}, got {tau_prior!r}")
    if delta is not None:
        delta = float(delta)
        if not (math.isfinite(delta) and delta >= 0):
            raise ValueError(f"delta must be None or finite and >= 0, got {delta!r}")
    return y, v, s, level, mu_prior_sd, int(grid_size), delta


def _log_upper_bound(tau, v, s, tau_prior="halfnormal"):
    """An upper bound of the unnormalised log p(τ|y) of :func:`meta.models.conditional.conditional`.

    V_μ ≤ (max v + τ²)/k and the quadratic forms are ≥ 0, so
    log p ≤ log p(τ) + ½ log((max v + τ²)/k) − (k/2) log(min v + τ²);
    the bound decreases for τ > s (half-normal) and for every τ (half-Cauchy, where it falls like τ^−(k+1)).
    """
    t2 = np.asarray(tau, dtype=float) ** 2
    k = v.size
    return log_prior(t2, s, tau_prior) + 0.5 * np.log((v.max() + t2) / k) - 0.5 * k * np.log(v.min() + t2)


def _tau_cutoff(v, s, log_max, tau_prior="halfnormal"):
    """Smallest T ≥ s beyond which the upper bound is TAIL_NATS below ``log_max``."""
    target = log_max - TAIL_NATS
    f = lambda t: _log_upper_bound(t, v, s, tau_prior) - target  # noqa: E731
    lo = s
    if f(lo) <= 0:
        return lo
    hi = 2 * lo
    while f(hi) > 0:
        hi *= 2
    return brentq(f, lo, hi, xtol=1e-6 * lo)




def _weights(u, dens):
    """Normalised trapezoid weights of the nodes u (step h, u₀ = 0) with the density ``dens`` there."""
    h = u[1] - u[0]
    trap = dens * h
    trap[0] *= 0.5
    trap[-1] *= 0.5
    return trap / trap.sum()


def _summaries(u, c, tau, dens, mu, V, probs, density, delta=None):
    """Posterior summaries from trapezoid nodes u (step h, u₀ = 0), the density in u at
    the nodes (``dens``) and as a function (``density``, same scaling)."""
    weights = _weights(u, dens)
    q_mu, mean, sd = mixture_quantiles(probs, weights, mu, V)
    q_new, _, sd_new = mixture_quantiles(probs, weights, mu, V + tau**2)
    q_tau = c * np.sinh(grid_quantiles(u, density, probs))
    tau_mean = float(weights @ tau)
    sd_tau = math.sqrt(max(float(weights @ (tau - tau_mean) ** 2), 0.0))
    return {"q_mu": q_mu, "mean": mean, "sd": sd, "q_new": q_new, "sd_new": sd_new,
            "q_tau": q_tau, "sd_tau": sd_tau, "probs": mixture_probabilities(weights, mu, V, delta)}


def _scale(sd, q):
    """What a quantile's change is measured in: the smaller of the posterior sd and the interval's width."""
    return max(min(sd, float(q[-1] - q[0])), _TINY)


def _probability_change(a, b):
    return float(np.nanmax(np.abs(np.subtract(a, b))))


def _max_change(a, b):
    """Largest change between two summaries: of any quantile relative to the smaller of its posterior sd and
    its interval's width (:func:`_scale`), and of any probability."""
    return max(
        float(np.max(np.abs(a["q_mu"] - b["q_mu"]))) / _scale(a["sd"], a["q_mu"]),
        float(np.max(np.abs(a["q_new"] - b["q_new"]))) / _scale(a["sd_new"], a["q_new"]),
        float(np.max(np.abs(a["q_tau"] - b["q_tau"]))) / _scale(a["sd_tau"], a["q_tau"]),
        _probability_change(a["probs"], b["probs"]),
    )


def _subgrid_agrees(current, u, c, tau, dens, mu, V, probs, density, delta):
    """True when :func:`_max_change` of ``current`` and the summaries of the subgrid (u, tau, …) is certainly at
    most ``REL_TOL`` — shown without the subgrid's quantiles: each lies within ¼·REL_TOL·scale of the current one
    (:func:`meta.models.mixtures.mixture_quantiles_within`, :func:`~meta.models.mixtures.grid_quantiles_within`),
    and its probabilities (computed as in :func:`_summaries`) change by at most REL_TOL. False when that is not
    shown; the caller then computes the subgrid's summaries and :func:`_max_change`, which decides alike."""
    weights = _weights(u, dens)
    if not _probability_change(current["probs"], mixture_probabilities(weights, mu, V, delta)) <= REL_TOL:
        return False
    ranges = {}
    for key, sd in (("q_mu", "sd"), ("q_new", "sd_new"), ("q_tau", "sd_tau")):
        q = current[key]
        a = 0.25 * REL_TOL * _scale(current[sd], q)
        if not (math.isfinite(a) and a > 1e-12 * float(np.max(np.abs(q)))):  # q ± a far apart from q's rounding
            return False
        ranges[key] = (q - a, q + a)
    return (mixture_quantiles_within(probs, weights, mu, V, *ranges["q_mu"])
            and mixture_quantiles_within(probs, weights, mu, V + tau**2, *ranges["q_new"])
            and grid_quantiles_within(u, density, probs, *(np.arcsinh(q / c) for q in ranges["q_tau"])))


def _tau_range(y, v, s, mu_prior_sd, tau_prior):
    """The map τ = c·sinh(u) and its range u ∈ [0, U]: ``(c, U)``.

    c = ½·min(s, √min vᵢ). The bulk of p(τ|y) is located on a coarse grid (513 nodes), and U is where the
    upper bound of log p(τ|y) (:func:`_tau_cutoff`) has fallen ``TAIL_NATS`` below the largest value found.
    """
    c = 0.5 * min(s, math.sqrt(v.min()))
    # range of τ: locate the bulk on a coarse grid, then cut where the bound has decayed
    T = 10.0 * max(s, math.sqrt(v.max()), float(np.ptp(y)))
    for _ in range(100):
        coarse = c * np.sinh(np.linspace(0.0, math.asinh(T / c), 513))
        log_max = float(np.max(conditional(coarse, y, v, s, mu_prior_sd, tau_prior)[0]))
        T_needed = _tau_cutoff(v, s, log_max, tau_prior)
        if T_needed <= T:
            T = T_needed  # the bulk (where log p is near log_max) lies below T_needed
            break
        T = T_needed
    return c, math.asinh(T / c)


def _integrate(y, v, s, mu_prior_sd, tau_prior, probs, delta, n):
    """Posterior summaries (:func:`_summaries`) on a trapezoid grid of n intervals in u, doubled until they agree
    with those of the every-other-node subgrid (or of the previous grid) to ``REL_TOL`` (:func:`_max_change`);
    warns when ``MAX_GRID`` is reached first."""
    c, U = _tau_range(y, v, s, mu_prior_sd, tau_prior)
    previous = None
    while True:
        u = np.linspace(0.0, U, n + 1)
        tau = c * np.sinh(u)
        logp, mu, V = conditional(tau, y, v, s, mu_prior_sd, tau_prior)
        shift = float(logp.max())
        dens = np.exp(logp - shift) * c * np.cosh(u)

        def density(x, shift=shift):
            x = np.asarray(x, dtype=float)
            return (np.exp(conditional(c * np.sinh(x), y, v, s, mu_prior_sd, tau_prior)[0] - shift)
                    * c * np.cosh(x))

        current = _summaries(u, c, tau, dens, mu, V, probs, density, delta)
        subgrid = (u[::2], c, tau[::2], dens[::2], mu[::2], V[::2], probs, density, delta)
        if previous is None and _subgrid_agrees(current, *subgrid):
            return current
        half = _summaries(*subgrid) if previous is None else previous
        if _max_change(current, half) <= REL_TOL:
            return current
        if 2 * n > MAX_GRID:
            warnings.warn(f"bayes_pool: quantiles still moved by {_max_change(current, half):.2g} sd "
                          f"at grid_size = {n}", RuntimeWarning, stacklevel=3)
            return current
        previous, n = current, 2 * n


# --------------------------------------------------------------------------- #
# public API
# --------------------------------------------------------------------------- #
def bayes_pool(yi, vi, tau_prior_scale, level: float = 95.0, mu_prior_sd: float | None = None,
               grid_size: int = 1024, tau_prior: str = "halfnormal", delta: float | None = None) -> BayesResult:
    """Bayesian normal-normal random-effects meta-analysis by integration over τ.

    Parameters
    ----------
    yi, vi : array_like, shape (k,)
        Effect estimates and their (known) sampling variances ``vi = sei**2``;
        k ≥ 1, all finite, ``vi > 0``.
    tau_prior_scale : float
        Scale s > 0 of the prior on the heterogeneity τ, in the units of
        ``yi`` (half-normal: prior median of τ is 0.674·s). Friede et al.
        (2017) recommend s of about half a "large" effect for few studies.
    level : float, default 95
        Level in percent of the equal-tailed credible and predictive intervals.
    mu_prior_sd : float or None, default None
        None: flat (improper uniform) prior on μ. Otherwise μ ~ N(0, mu_prior_sd²).
    grid_size : int, default 1024
        Initial number of trapezoid intervals over u (τ = c·sinh u); doubled
        (up to ``MAX_GRID``) until the quantiles are stable to ``REL_TOL``·sd.
    tau_prior : {"halfnormal", "halfcauchy"}, default "halfnormal"
        Family of the prior on τ: p(τ) ∝ exp(−τ²/(2s²)) or ∝ 1/(1 + τ²/s²).
    delta : float or None, default None
        Threshold δ ≥ 0 of the decision probabilities P(μ < −δ | y) and
        P(|μ| < δ | y); None leaves them NaN. P(μ > 0 | y) is always given.

    Returns
    -------
    BayesResult
        Posterior median (``estimate``), mean and sd of μ; credible interval
        for μ; predictive interval for θ_new; median and interval of τ.

    Notes
    -----
    Model: yᵢ ~ N(θᵢ, vᵢ), θᵢ ~ N(μ, τ²), τ ~ half-normal(s), μ flat or
    N(0, σ_μ²). With wᵢ = 1/(vᵢ + τ²), μ̂ = Σwᵢyᵢ/Σwᵢ and V_μ = 1/Σwᵢ
    (the normal μ prior adds the pseudo-observation 0 with variance σ_μ²),

    * p(τ|y) ∝ p(τ) V_μ^{1/2} Πᵢ(vᵢ + τ²)^{−1/2} exp(−½ Σᵢ wᵢ(yᵢ − μ̂)²),
    * μ | τ, y ~ N(μ̂, V_μ) and θ_new | τ, y ~ N(μ̂, V_μ + τ²),
    * p(μ|y) = ∫ N(μ; μ̂(τ), V_μ(τ)) p(τ|y) dτ, evaluated as a finite mixture
      of normals on a trapezoid grid in u, τ = c·sinh(u) (see the module
      docstring for why this converges geometrically), and quantiles as
      roots of the mixture CDF.

    With k = 1 and the flat prior, p(τ|y) is the prior itself and
    μ | y = ∫ N(y₁, v₁ + τ²) p(τ) dτ: wider than the study's own interval.
    As s → 0 the result tends to the common-effect estimate and its z interval.

    References
    ----------
    Röver C (2020). Bayesian random-effects meta-analysis using the bayesmeta
    R package. J Stat Softw 93(6):1-51.
    Friede T, Röver C, Wandel S, Neuenschwander B (2017). Meta-analysis of few
    small studies in orphan diseases. Res Synth Methods 8:79-91.

    Examples
    --------
    >>> r = bayes_pool([-10.0, -4.0, 2.0], [4.8**2, 5.6**2, 5.7**2], tau_prior_scale=5.0)
    >>> r.k, round(r.estimate, 2), r.ci_low < r.estimate < r.ci_high
    (3, -4.53, True)
    """
    y, v, s, level, mu_prior_sd, n, delta = _check_inputs(yi, vi, tau_prior_scale, level, mu_prior_sd, grid_size,
                                                          tau_prior, delta)
    alpha = 1.0 - level / 100.0
    probs = (alpha / 2.0, 0.5, 1.0 - alpha / 2.0)

    current = _integrate(y, v, s, mu_prior_sd, tau_prior, probs, delta, n)
    q_mu, q_new, q_tau = current["q_mu"], current["q_new"], current["q_tau"]
    p_gt_0, p_lt, p_within = current["probs"]
    mean, sd = float(current["mean"]), float(current["sd"])
    if tau_prior == "halfcauchy" and mu_prior_sd is None:
        # p(τ|y) falls like τ^−(k+1): E|μ| is infinite for k = 1 and Var μ for k ≤ 2 (the grid's are truncated)
        mean = math.nan if y.size < 2 else mean
        sd = math.nan if y.size < 3 else sd
    return BayesResult(
        k=int(y.size),
        estimate=float(q_mu[1]),
        mean=mean,
        sd=sd,
        ci_low=float(q_mu[0]),
        ci_high=float(q_mu[2]),
        pi_low=float(q_new[0]),
        pi_high=float(q_new[2]),
        tau_median=float(q_tau[1]),
        tau_ci_low=float(q_tau[0]),
        tau_ci_high=float(q_tau[2]),
        prior_tau_scale=s,
        prior_mu_sd=mu_prior_sd,
        level=level,
        tau_prior=tau_prior,
        delta=math.nan if delta is None else delta,
        p_gt_0=p_gt_0,
        p_lt_minus_delta=p_lt,
        p_within_delta=p_within,
    )


def bayes_pool_table(studies, cell_columns, tau_prior_scale, level: float = 95.0,
                     mu_prior_sd: float | None = None, tau_prior: str = "halfnormal", delta: float | None = None):
    """Apply :func:`bayes_pool` to every cell of a studies table.

    Parameters
    ----------
    studies : pandas.DataFrame
        One row per study with ``yi`` and ``sei`` and the ``cell_columns``.
    cell_columns : sequence of str
        Columns whose combination defines a cell (one meta-analysis).
    tau_prior_scale : float
        Scale of the half-normal prior on τ, in the units of ``yi``.
    level : float, default 95
        Interval level in percent.
    mu_prior_sd : float or None, default None
        None for the flat prior on μ, else the sd of a N(0, mu_prior_sd²) prior.
    tau_prior : {"halfnormal", "halfcauchy"}, default "halfnormal"
        Family of the prior on τ.
    delta : float or None, default None
        Threshold of the decision probabilities (see :func:`bayes_pool`).

    Returns
    -------
    pandas.DataFrame
        One row per cell (sorted by the cell columns, as
        :func:`meta.models.engine.pool_cells`) with the cell columns followed by the
        fields of :class:`BayesResult` (``BAYES_KEYS``).
    """
    import pandas as pd

    cell_columns = list(cell_columns)
    missing = [c for c in [*cell_columns, "yi", "sei"] if c not in studies.columns]
    if missing:
        raise ValueError(f"studies lacks the column(s) {', '.join(missing)}")
    if len(studies) == 0:
        return pd.DataFrame(columns=[*cell_columns, *BAYES_KEYS])
    rows = []
    for key, g in studies.groupby(cell_columns, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        try:
            res = bayes_pool(g["yi"].to_numpy(float), g["sei"].to_numpy(float) ** 2, tau_prior_scale,
                             level=level, mu_prior_sd=mu_prior_sd, tau_prior=tau_prior, delta=delta)
        except ValueError as err:
            raise ValueError(f"cell {dict(zip(cell_columns, key))}: {err}") from err
        rows.append({**dict(zip(cell_columns, key)), **res.to_dict()})
    return pd.DataFrame(rows, columns=[*cell_columns, *BAYES_KEYS])

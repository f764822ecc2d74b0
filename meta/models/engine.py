"""Univariate random-effects meta-analysis, vectorised over many cells at once.

This is the *pool* stage. It knows nothing of municipalities or files: it takes
effect sizes ``yi`` and sampling variances ``vi`` and returns pooled estimates,
heterogeneity statistics and intervals that match R's metafor (``rma.uni``,
``predict.rma`` and ``confint.rma.uni``) number for number; the reference values
and the exact R calls are in ``tests/reference/``.

Every function works on a *batch*: arrays of shape ``(m, K)`` hold ``m``
independent meta-analyses of up to ``K`` studies each, padded on the right and
described by a boolean ``mask``. All estimators, tests and the Q-profile interval
are computed for the whole batch in one vectorised pass, with no Python loop over
cells (iterative estimators iterate over the batch as a whole).

Vocabulary (metafor's): ``yi`` effects, ``vi`` sampling variances, ``wi``
weights, ``tau2`` between-study variance, ``I2`` and ``H2`` heterogeneity,
``Q``/``Q_p`` Cochran's test, ``pi_low``/``pi_high`` the prediction interval.

References
----------
Viechtbauer W (2005). Bias and efficiency of meta-analytic variance estimators
in the random-effects model. J Educ Behav Stat 30:261-293.
Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity in
meta-analysis. Stat Med 26:37-52.
Veroniki AA et al. (2016). Methods to estimate the between-study variance and its
uncertainty in meta-analysis. Res Synth Methods 7:55-79.
Knapp G, Hartung J (2003). Improved tests for a random effects meta-regression
with a single covariate. Stat Med 22:2693-2710.
Röver C, Knapp G, Friede T (2015). Hartung-Knapp-Sidik-Jonkman approach and its
modification for random-effects meta-analysis with few studies. BMC Med Res
Methodol 15:99 (the ``adhoc`` floor).
Higgins JPT, Thompson SG (2002). Quantifying heterogeneity in a meta-analysis.
Stat Med 21:1539-1558.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np
from scipy import special

# scipy.stats' t, normal and chi² functions are these scipy.special calls (identical values); scipy.stats itself is
# not imported because its import alone costs more than a whole ``meta pool`` (``python -X importtime``).


def t_ppf(q, df):
    """Quantile of Student's t (``scipy.stats.t.ppf``)."""
    return special.stdtrit(df, q)


def t_sf(x, df):
    """Upper tail of Student's t (``scipy.stats.t.sf``)."""
    return special.stdtr(df, -np.asarray(x, dtype=float))


def norm_ppf(q):
    """Standard normal quantile (``scipy.stats.norm.ppf``)."""
    return special.ndtri(q)


def norm_sf(x):
    """Standard normal upper tail (``scipy.stats.norm.sf``)."""
    return special.ndtr(-np.asarray(x, dtype=float))


def chi2_sf(x, df):
    """Upper tail of χ² (``scipy.stats.chi2.sf``)."""
    return special.chdtrc(df, x)


def chi2_ppf(q, df):
    """Quantile of χ² (``scipy.stats.chi2.ppf``)."""
    return 2 * special.gammaincinv(np.asarray(df, dtype=float) / 2, q)

METHODS = ("DL", "HE", "SJ", "HS", "ML", "REML", "PM", "EB", "FE")
TESTS = ("z", "knha", "adhoc")
#: Relative convergence criterion of the iterative estimators (ML, REML, PM/EB)
#: and of the Q-profile root finding.
TOL = 1e-10
MAX_ITER = 1000

#: The keys ``meta pool`` prints, in this order.
POOL_KEYS = (
    "k", "method", "test", "estimate", "se", "ci_low", "ci_high", "pval",
    "tau2", "tau2_ci_low", "tau2_ci_high", "I2", "H2", "Q", "Q_p",
    "pi_low", "pi_high",
)


class PoolingError(ValueError):
    """Raised when effects or variances cannot be pooled as given."""


@dataclass(frozen=True)
class PoolResult:
    """One pooled meta-analysis (the holder ``pool`` returns).

    Attributes follow metafor's names; intervals are at ``level`` percent.
    ``I2`` and ``H2`` are metafor's τ²-based definitions; ``I2_Q`` is the
    Higgins-Thompson Q-based I². ``single_study`` is true when k = 1 and the
    study is returned unpooled. ``converged`` is false when an iterative
    estimator did not reach ``TOL`` within ``MAX_ITER`` iterations.
    """

    k: int
    method: str
    test: str
    level: float
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    pval: float
    tau2: float
    tau2_ci_low: float
    tau2_ci_high: float
    I2: float
    I2_ci_low: float
    I2_ci_high: float
    H2: float
    H2_ci_low: float
    H2_ci_high: float
    I2_Q: float
    Q: float
    Q_df: int
    Q_p: float
    pi_low: float
    pi_high: float
    df: float
    converged: bool
    single_study: bool

    def to_dict(self, keys: Iterable[str] | None = None) -> dict:
        """The result as a plain dict (NaN kept as float NaN), optionally restricted to ``keys``."""
        d = asdict(self)
        if keys is None:
            return d
        return {key: d[key] for key in keys}


# --------------------------------------------------------------------------- #
# input handling
# --------------------------------------------------------------------------- #
def _as_batch(yi, vi, mask=None):
    """Return float arrays ``(y, v, mask)`` of shape (m, K), validated.

    Padded positions (``mask`` false) are set to y = 0, v = 1 so they are inert:
    every sum below multiplies by the mask-weighted ``wi``.
    """
    y = np.atleast_2d(np.asarray(yi, dtype=float))
    v = np.atleast_2d(np.asarray(vi, dtype=float))
    if y.shape != v.shape:
        raise PoolingError(f"yi has shape {y.shape} but vi has shape {v.shape}; give one variance per effect")
    if mask is None:
        m = np.ones(y.shape, dtype=bool)
    else:
        m = np.atleast_2d(np.asarray(mask, dtype=bool))
        if m.shape != y.shape:
            raise PoolingError(f"mask has shape {m.shape} but yi has shape {y.shape}")
    bad_y = m & ~np.isfinite(y)
    if bad_y.any():
        cell, study = np.argwhere(bad_y)[0]
        raise PoolingError(f"yi must be finite: cell {cell}, study {study} has yi = {y[cell, study]!r}")
    bad_v = m & ~(np.isfinite(v) & (v > 0))
    if bad_v.any():
        cell, study = np.argwhere(bad_v)[0]
        raise PoolingError(
            f"vi must be finite and > 0: cell {cell}, study {study} has vi = {v[cell, study]!r}; "
            "check the standard error of that study"
        )
    k = m.sum(axis=1)
    if (k < 1).any():
        raise PoolingError(f"cell {int(np.argmax(k < 1))} has no studies (k = 0); nothing to pool")
    y = np.where(m, y, 0.0)
    v = np.where(m, v, 1.0)
    return y, v, m, k


def _check_choice(method: str, test: str) -> tuple[str, str]:
    method = str(method).upper()
    test = str(test).lower()
    if method not in METHODS:
        raise PoolingError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if test not in TESTS:
        raise PoolingError(f"unknown test {test!r}; choose one of {', '.join(TESTS)}")
    return method, test


# --------------------------------------------------------------------------- #
# building blocks (all (m, K) -> (m,))
# --------------------------------------------------------------------------- #
def _wmean(y, w):
    """Weighted mean Σ wᵢyᵢ / Σ wᵢ per row.

    Computed as y₀ + Σwᵢ(yᵢ − y₀)/Σwᵢ with y₀ the row's first study (weights are
    zero on padding), so identical effects give their value exactly and Q = 0.
    """
    y0 = y[np.arange(len(y)), np.argmax(w > 0, axis=1)]
    return y0 + (w * (y - y0[:, None])).sum(axis=1) / w.sum(axis=1)


def _q_gen(y, v, mask, tau2):
    """Generalised Q statistic  Q(τ²) = Σ wᵢ(yᵢ − μ̂_τ)², wᵢ = 1/(vᵢ + τ²).

    Also returns its derivative dQ/dτ² = −Σ wᵢ²(yᵢ − μ̂_τ)² (μ̂_τ is stationary).
    """
    w = mask / (v + tau2[:, None])
    mu = _wmean(y, w)
    r2 = (y - mu[:, None]) ** 2
    return (w * r2).sum(axis=1), -(w * w * r2).sum(axis=1)


def _typical_v(v, mask, k):
    """metafor's typical within-study variance for I² and H².

    s² = (k − 1) Σwᵢ / [(Σwᵢ)² − Σwᵢ²],  wᵢ = 1/vᵢ  (Higgins & Thompson 2002, eq. 9).
    For k = 1 it is v₁.
    """
    w = mask / v
    sw, sw2 = w.sum(axis=1), (w * w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s2 = (k - 1) * sw / (sw**2 - sw2)
    return np.where(k > 1, s2, (mask * v).sum(axis=1))


def _solve_decreasing(fun, target, lo, hi, scale):
    """Vectorised root of decreasing functions ``fun(rows, x) = target`` on brackets [lo, hi].

    Safeguarded Newton: a Newton step is taken when it stays inside the bracket
    and at least halves it, a bisection step otherwise. Each iteration evaluates
    only the rows not yet done (``fun`` receives their indices), so a few slow
    rows do not make the whole batch iterate. A row is done when its step or its
    bracket is below ``TOL * scale``. ``fun`` returns (f, df/dx). Returns (root, converged).
    """
    lo = np.array(lo, dtype=float)
    hi = np.array(hi, dtype=float)
    target = np.broadcast_to(np.asarray(target, dtype=float), lo.shape)
    x = 0.5 * (lo + hi)
    width = np.full(x.shape, np.inf)
    done = np.zeros(x.shape, dtype=bool)
    rows = np.arange(len(x))
    for _ in range(MAX_ITER):
        if rows.size == 0:
            break
        xr, lr, hr = x[rows], lo[rows], hi[rows]
        f, df = fun(rows, xr)
        g = f - target[rows]
        lr = np.where(g > 0, xr, lr)  # decreasing: g > 0 means the root lies above x
        hr = np.where(g > 0, hr, xr)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = xr - g / df
        ok = np.isfinite(newton) & (newton > lr) & (newton < hr) & (np.abs(newton - xr) <= 0.5 * width[rows])
        x_new = np.where(ok, newton, 0.5 * (lr + hr))
        width[rows] = hr - lr
        finished = (np.abs(x_new - xr) <= TOL * scale[rows]) | ((hr - lr) <= TOL * scale[rows])
        x[rows], lo[rows], hi[rows] = x_new, lr, hr
        done[rows[finished]] = True
        rows = rows[~finished]
    return x, done


# --------------------------------------------------------------------------- #
# τ² estimators
# --------------------------------------------------------------------------- #
def _tau2_closed_form(method, y, v, mask, k):
    """DL, HE, SJ and HS estimators of τ² (truncated at zero).

    DL:  τ² = [Q − (k−1)] / [Σwᵢ − Σwᵢ²/Σwᵢ], wᵢ = 1/vᵢ  (DerSimonian & Laird 1986).
    HE:  τ² = Σ(yᵢ − ȳ)²/(k−1) − Σvᵢ/k  (Hedges 1983; unweighted).
    SJ:  τ₀² = Σ(yᵢ − ȳ)²/k;  τ² = τ₀² Σwᵢ(yᵢ − μ̂)²/(k−1), wᵢ = 1/(vᵢ + τ₀²)
         (Sidik & Jonkman 2005; as metafor, always non-negative).
    HS:  τ² = (Q − k) / Σwᵢ, wᵢ = 1/vᵢ  (Hunter & Schmidt 2004).
    """
    km1 = k - 1
    ybar = (mask * y).sum(axis=1) / k
    ss_unw = (mask * (y - ybar[:, None]) ** 2).sum(axis=1)
    w = mask / v
    sw = w.sum(axis=1)
    Q = (w * (y - _wmean(y, w)[:, None]) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "DL":
            tau2 = (Q - km1) / (sw - (w * w).sum(axis=1) / sw)
        elif method == "HE":
            tau2 = ss_unw / km1 - (mask * v).sum(axis=1) / k
        elif method == "HS":
            tau2 = (Q - k) / sw
        elif method == "SJ":
            tau0 = ss_unw / k
            q0, _ = _q_gen(y, v, mask, tau0)
            tau2 = tau0 * q0 / km1
        else:  # pragma: no cover - guarded by callers
            raise PoolingError(method)
    return np.maximum(np.nan_to_num(tau2, nan=0.0), 0.0)


def _score_parts(method, y, v, mask, tau2):
    """Likelihood score U(τ²) of ML or REML, its Fisher information and its exact derivative.

    With wᵢ = 1/(vᵢ + τ²), rᵢ = yᵢ − μ̂ and, for REML, P = W − wwᵀ/Σw:
        ML:   U = Σwᵢ²rᵢ² − Σwᵢ,    information Σwᵢ²
        REML: U = Σwᵢ²rᵢ² − tr P,   information tr PP,
              tr P = Σwᵢ − Σwᵢ²/Σwᵢ,  tr PP = Σwᵢ² − 2Σwᵢ³/Σwᵢ + (Σwᵢ²)²/(Σwᵢ)²,
    and dU/dτ² = information − 2[Σwᵢ³rᵢ² − (Σwᵢ²rᵢ)²/Σwᵢ] (Viechtbauer 2005).
    """
    w = mask / (v + tau2[:, None])
    w2 = w * w
    sw, sw2, sw3 = w.sum(axis=1), w2.sum(axis=1), (w2 * w).sum(axis=1)
    r = y - _wmean(y, w)[:, None]
    score = (w2 * r * r).sum(axis=1)
    if method == "ML":
        u, info = score - sw, sw2
    else:
        u, info = score - (sw - sw2 / sw), sw2 - 2 * sw3 / sw + sw2**2 / sw**2
    curvature = (w2 * w * r * r).sum(axis=1) - (w2 * r).sum(axis=1) ** 2 / sw
    return u, info, info - 2 * curvature


def _loglik(method, y, v, mask, tau2):
    """Log-likelihood of ML or REML up to a constant: −½[Σlog(vᵢ+τ²) (+ log Σwᵢ for REML) + Σwᵢrᵢ²]."""
    w = mask / (v + tau2[:, None])
    r = y - _wmean(y, w)[:, None]
    ll = (mask * np.log(v + tau2[:, None])).sum(axis=1) + (w * r * r).sum(axis=1)
    if method == "REML":
        ll = ll + np.log(w.sum(axis=1))
    return -0.5 * ll


FISHER_ITER = 100


def _tau2_fisher_scoring(method, y, v, mask, k, scale):
    """ML or REML τ² by Fisher scoring, started at the HE estimate (as metafor).

    1. Fisher scoring τ² ← max(0, τ² + U/I) (see :func:`_score_parts`) on the rows not yet
       converged, until |Δτ²| ≤ TOL·scale.
    2. Rows still moving after ``FISHER_ITER`` steps (Fisher scoring can oscillate when
       the information is a poor stand-in for the curvature) are solved as the root
       of U on a bracket from their last two iterates, widened until it holds a
       sign change, by Newton steps on the exact derivative safeguarded by bisection;
       U ≤ 0 at τ² = 0 means the maximum is at the boundary.
    3. As metafor: a positive τ² whose log-likelihood is below that at τ² = 0 (a local
       maximum) is replaced by 0.
    """
    multi = k > 1
    tau2 = np.where(multi, _tau2_closed_form("HE", y, v, mask, k), 0.0)
    prev = tau2.copy()
    converged = ~multi  # k = 1: nothing to estimate
    rows = np.flatnonzero(multi)
    for _ in range(FISHER_ITER):
        if rows.size == 0:
            break
        t = tau2[rows]
        u, info, _ = _score_parts(method, y[rows], v[rows], mask[rows], t)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.maximum(t + u / info, 0.0)
        finished = np.abs(new - t) <= TOL * scale[rows]
        prev[rows], tau2[rows] = t, new
        converged[rows[finished]] = True
        rows = rows[~finished]
    if rows.size:
        yy, vv, mm, sc = y[rows], v[rows], mask[rows], scale[rows]
        lo = np.minimum(prev[rows], tau2[rows])
        hi = np.maximum(prev[rows], tau2[rows])
        for _ in range(200):  # widen until U(lo) > 0 (or lo = 0) and U(hi) < 0
            u_lo = _score_parts(method, yy, vv, mm, lo)[0]
            u_hi = _score_parts(method, yy, vv, mm, hi)[0]
            bracketed = ((u_lo > 0) | (lo == 0)) & (u_hi < 0)
            if bracketed.all():
                break
            lo = np.where((u_lo > 0) | (lo == 0), lo, np.where(lo / 2 < TOL * sc, 0.0, lo / 2))
            hi = np.where(u_hi < 0, hi, 2 * hi + sc)
        u_lo = _score_parts(method, yy, vv, mm, lo)[0]
        u_hi = _score_parts(method, yy, vv, mm, hi)[0]
        bracketed = ((u_lo > 0) | (lo == 0)) & (u_hi < 0)

        def score(sub, t):
            u, _, du = _score_parts(method, yy[sub], vv[sub], mm[sub], t)
            return u, du

        root, ok = _solve_decreasing(score, 0.0, lo, hi, sc)
        at_zero = (lo == 0) & (u_lo <= 0)
        tau2[rows] = np.where(at_zero, 0.0, root)
        converged[rows] = at_zero | (ok & bracketed)
    positive = np.flatnonzero(multi & (tau2 > 0))
    if positive.size:
        args = (y[positive], v[positive], mask[positive])
        worse = _loglik(method, *args, np.zeros(positive.size)) > _loglik(method, *args, tau2[positive])
        tau2[positive[worse]] = 0.0
    return tau2, converged


def _root_of_q(y, v, mask, k, target, scale):
    """τ² at which the generalised Q equals ``target`` per row; 0 where Q(0) ≤ target.

    Q(τ²) is decreasing; Q(τ²) ≤ Σ(yᵢ − ȳ)²/τ², so τ² = Σ(yᵢ − ȳ)²/target brackets the root.
    Only rows with Q(0) > target are solved.
    """
    target = np.broadcast_to(np.asarray(target, dtype=float), k.shape)
    q0, _ = _q_gen(y, v, mask, np.zeros(len(k)))
    need = np.flatnonzero((q0 > target) & (k > 1))
    root = np.zeros(len(k))
    ok = np.ones(len(k), dtype=bool)
    if need.size:
        yy, vv, mm = y[need], v[need], mask[need]
        ybar = (mm * yy).sum(axis=1) / k[need]
        upper = (mm * (yy - ybar[:, None]) ** 2).sum(axis=1) / target[need] * 1.000001 + TOL * scale[need]
        r, o = _solve_decreasing(lambda sub, t: _q_gen(yy[sub], vv[sub], mm[sub], t), target[need],
                                 np.zeros(need.size), upper, scale[need])
        root[need], ok[need] = r, o
    return root, ok


def _tau2_pm(y, v, mask, k, scale):
    """Paule-Mandel τ² (identical to Morris' empirical Bayes, metafor's EB).

    The root of Q(τ²) = k − 1 for the generalised Q statistic; zero when
    Q(0) ≤ k − 1 (Paule & Mandel 1982; Viechtbauer et al. 2015).
    """
    return _root_of_q(y, v, mask, k, (k - 1).astype(float), scale)


def _qprofile_bound(y, v, mask, k, target, scale):
    """τ² at which the generalised Q equals the χ² quantile ``target`` (0 when Q(0) ≤ target)."""
    return _root_of_q(y, v, mask, k, target, scale)


# --------------------------------------------------------------------------- #
# the batch engine
# --------------------------------------------------------------------------- #
def pool_batch(yi, vi, mask=None, method: str = "REML", test: str = "knha", level: float = 95.0) -> dict:
    """Pool a batch of meta-analyses in one vectorised pass.

    Parameters
    ----------
    yi, vi : array_like, shape (m, K) or (K,)
        Effect sizes and their sampling variances; row j is meta-analysis j.
    mask : array_like of bool, optional
        Which entries are studies (rows may have different k). Default: all.
    method : {"DL", "HE", "SJ", "HS", "ML", "REML", "PM", "EB", "FE"}
        τ² estimator; "FE" is the common-effect model (τ² = 0).
    test : {"z", "knha", "adhoc"}
        Inference for the pooled effect: Wald ``z``; Hartung-Knapp-Sidik-Jonkman
        ``knha`` (se multiplied by √q with q = Σwᵢ(yᵢ − μ̂)²/(k−1), t with k−1 df);
        ``adhoc`` the same with q floored at 1 (Röver et al. 2015).
    level : float
        Confidence level in percent for every interval.

    Returns
    -------
    dict of numpy arrays, each of shape (m,)
        ``k, estimate, se, ci_low, ci_high, pval, tau2, tau2_ci_low,
        tau2_ci_high, I2, I2_ci_low, I2_ci_high, H2, H2_ci_low, H2_ci_high, I2_Q,
        Q, Q_df, Q_p, pi_low, pi_high, df, converged, single_study``.

    Notes
    -----
    * RE weights wᵢ = 1/(vᵢ + τ̂²); μ̂ = Σwᵢyᵢ/Σwᵢ; se = 1/√Σwᵢ.
    * Prediction interval (metafor's ``predict``): μ̂ ± c·√(τ̂² + se²), c the
      z quantile for ``z``, the t(k−1) quantile for ``knha``/``adhoc``.
    * Q = Σvᵢ⁻¹(yᵢ − μ̂_FE)², df k−1. I² = 100·τ̂²/(τ̂² + s²) and H² = (τ̂² + s²)/s²
      with s² from ``_typical_v`` (metafor); for FE, I² = 100·max(0, (Q−df)/Q)
      and H² = Q/df as metafor reports them. I2_Q is always the Q-based value.
    * τ² CI: Q-profile (Viechtbauer 2007): the τ² where Q(τ²) equals the
      χ²_{k−1} quantiles 1−α/2 (lower) and α/2 (upper), truncated at 0; I² and
      H² intervals follow from its bounds.
    * k = 1: the study is returned unpooled (estimate = yᵢ, se = √vᵢ, z
      interval), heterogeneity is NaN and ``single_study`` is true.
    """
    method, test = _check_choice(method, test)
    if not (0 < float(level) < 100):
        raise PoolingError(f"level must be a percentage between 0 and 100, got {level!r}")
    y, v, mask, k = _as_batch(yi, vi, mask)
    alpha = 1 - float(level) / 100
    s2 = _typical_v(v, mask, k)
    scale = s2  # scale for relative convergence (τ² is measured against typical vᵢ)
    km1 = k - 1
    multi = k > 1

    # τ²
    converged = np.ones(len(k), dtype=bool)
    if method == "FE":
        tau2 = np.zeros(len(k))
    elif method in ("DL", "HE", "SJ", "HS"):
        tau2 = _tau2_closed_form(method, y, v, mask, k)
    elif method in ("ML", "REML"):
        tau2, converged = _tau2_fisher_scoring(method, y, v, mask, k, scale)
    else:  # PM, EB
        tau2, converged = _tau2_pm(y, v, mask, k, scale)
    tau2 = np.where(multi, tau2, np.nan)
    tau2_fit = np.nan_to_num(tau2, nan=0.0)

    # pooled effect
    w = mask / (v + tau2_fit[:, None])
    sw = w.sum(axis=1)
    mu = _wmean(y, w)
    se = 1 / np.sqrt(sw)
    df = np.where(test == "z", np.inf, km1.astype(float))
    if test != "z":
        with np.errstate(divide="ignore", invalid="ignore"):
            q_scale = (w * (y - mu[:, None]) ** 2).sum(axis=1) / km1
        if test == "adhoc":
            q_scale = np.maximum(q_scale, 1.0)
        se = np.where(multi, se * np.sqrt(q_scale), se)
        df = np.where(multi, df, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = mu / se
    finite_df = np.isfinite(df)
    crit = np.where(finite_df, t_ppf(1 - alpha / 2, np.where(finite_df, df, 1)), norm_ppf(1 - alpha / 2))
    pval = np.where(finite_df, 2 * t_sf(np.abs(stat), np.where(finite_df, df, 1)), 2 * norm_sf(np.abs(stat)))
    ci_low, ci_high = mu - crit * se, mu + crit * se
    pi_half = crit * np.sqrt(tau2_fit + se**2)
    pi_low, pi_high = mu - pi_half, mu + pi_half

    # heterogeneity
    w_fe = mask / v
    Q = (w_fe * (y - _wmean(y, w_fe)[:, None]) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # Q → 0: (Q − df)/Q → −inf → 0
        Q_p = np.where(multi, chi2_sf(Q, np.maximum(km1, 1)), np.nan)
        I2_Q = np.where(multi & (Q > 0), 100 * np.maximum(0.0, (Q - km1) / Q), 0.0)
        H2_Q = np.where(multi, Q / km1, np.nan)
    if method == "FE":
        I2, H2 = I2_Q, H2_Q
    else:
        I2 = 100 * tau2_fit / (tau2_fit + s2)
        H2 = (tau2_fit + s2) / s2

    # Q-profile interval for τ²
    if method == "FE":
        tau2_ci_low = tau2_ci_high = np.full(len(k), np.nan)
        ci_ok = np.ones(len(k), dtype=bool)
    else:
        df_q = np.maximum(km1, 1)
        t_low, ok_low = _qprofile_bound(y, v, mask, k, chi2_ppf(1 - alpha / 2, df_q), scale)
        t_high, ok_high = _qprofile_bound(y, v, mask, k, chi2_ppf(alpha / 2, df_q), scale)
        tau2_ci_low, tau2_ci_high = t_low, t_high
        ci_ok = ok_low & ok_high
    I2_ci_low = 100 * tau2_ci_low / (tau2_ci_low + s2)
    I2_ci_high = 100 * tau2_ci_high / (tau2_ci_high + s2)
    H2_ci_low = (tau2_ci_low + s2) / s2
    H2_ci_high = (tau2_ci_high + s2) / s2

    nan = np.full(len(k), np.nan)
    single = ~multi
    out = {
        "k": k,
        "estimate": mu,
        "se": se,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "pval": pval,
        "tau2": tau2,
        "tau2_ci_low": np.where(multi, tau2_ci_low, nan),
        "tau2_ci_high": np.where(multi, tau2_ci_high, nan),
        "I2": np.where(multi, I2, nan),
        "I2_ci_low": np.where(multi, I2_ci_low, nan),
        "I2_ci_high": np.where(multi, I2_ci_high, nan),
        "H2": np.where(multi, H2, nan),
        "H2_ci_low": np.where(multi, H2_ci_low, nan),
        "H2_ci_high": np.where(multi, H2_ci_high, nan),
        "I2_Q": np.where(multi, I2_Q, nan),
        "Q": np.where(multi, Q, nan),
        "Q_df": km1,
        "Q_p": Q_p,
        "pi_low": pi_low,
        "pi_high": pi_high,
        "df": df,
        "converged": np.where(multi, converged & ci_ok, True),
        "single_study": single,
    }
    return out


def pool(yi, vi, method: str = "REML", test: str = "knha", level: float = 95.0) -> PoolResult:
    """Pool one meta-analysis; see :func:`pool_batch` for the formulas.

    Parameters
    ----------
    yi, vi : array_like, shape (k,)
        Effect sizes and sampling variances (``vi = sei**2``).

    Examples
    --------
    >>> r = pool([-0.10, -0.04, 0.02], [0.03**2, 0.05**2, 0.04**2], method="REML", test="knha")
    >>> r.k, round(r.estimate, 4)
    (3, -0.0439)
    """
    method, test = _check_choice(method, test)
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    if y.size == 0:
        raise PoolingError("no studies to pool (k = 0)")
    batch = pool_batch(y[None, :], v[None, :], method=method, test=test, level=level)
    row = {key: val[0] for key, val in batch.items()}
    return PoolResult(
        k=int(row["k"]),
        method=method,
        test=test,
        level=float(level),
        **{key: float(row[key]) for key in (
            "estimate", "se", "ci_low", "ci_high", "pval", "tau2", "tau2_ci_low", "tau2_ci_high",
            "I2", "I2_ci_low", "I2_ci_high", "H2", "H2_ci_low", "H2_ci_high", "I2_Q", "Q", "Q_p",
            "pi_low", "pi_high", "df")},
        Q_df=int(row["Q_df"]),
        converged=bool(row["converged"]),
        single_study=bool(row["single_study"]),
    )


def pad_cells(groups: list[tuple[np.ndarray, np.ndarray]]):
    """Stack ragged (yi, vi) pairs into padded (m, K) arrays and a mask for :func:`pool_batch`."""
    K = max((len(g[0]) for g in groups), default=1)
    m = len(groups)
    y = np.zeros((m, K))
    v = np.ones((m, K))
    mask = np.zeros((m, K), dtype=bool)
    for j, (gy, gv) in enumerate(groups):
        n = len(gy)
        y[j, :n], v[j, :n], mask[j, :n] = gy, gv, True
    return y, v, mask


def pool_cells(studies, cell_columns, method: str = "REML", test: str = "knha", level: float = 95.0):
    """Pool every cell of a studies table in one batch.

    Parameters
    ----------
    studies : pandas.DataFrame
        One row per study with ``yi`` and ``sei`` and the ``cell_columns``.
    cell_columns : sequence of str
        Columns whose combination defines a cell (one meta-analysis).

    Returns
    -------
    pandas.DataFrame
        One row per cell (sorted by the cell columns) with the cell columns and
        every output of :func:`pool_batch`, plus ``method``, ``test`` and ``level``.
    """
    import pandas as pd

    cell_columns = list(cell_columns)
    if len(studies) == 0:
        return pd.DataFrame(columns=[*cell_columns, "k"])
    # padded arrays filled in one step: row = the cell's number (sorted), column = the study's place in its cell
    by = studies.groupby(cell_columns, sort=True, dropna=False)
    cell, place = by.ngroup().to_numpy(), by.cumcount().to_numpy()
    keys = by.size().index.tolist()
    y = np.zeros((len(keys), int(place.max()) + 1))
    v = np.ones_like(y)
    mask = np.zeros(y.shape, dtype=bool)
    y[cell, place] = studies["yi"].to_numpy(float)
    v[cell, place] = studies["sei"].to_numpy(float) ** 2
    mask[cell, place] = True
    res = pool_batch(y, v, mask, method=method, test=test, level=level)
    table = pd.DataFrame([dict(zip(cell_columns, key if isinstance(key, tuple) else (key,))) for key in keys])
    for name, values in res.items():
        table[name] = values
    table["method"], table["test"], table["level"] = method.upper(), test.lower(), float(level)
    return table

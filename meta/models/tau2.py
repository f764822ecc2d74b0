"""The between-study variance τ² of the univariate model: its estimators and its Q-profile interval.

Every function works on a batch (see :mod:`meta.models.engine`): arrays of shape ``(m, K)`` hold ``m``
meta-analyses of up to ``K`` studies, padded on the right, with a boolean ``mask``; padded positions hold
y = 0, v = 1 and get zero weight. Iterative estimators iterate over the batch as a whole, solving only the rows
not yet converged.

References
----------
DerSimonian R, Laird N (1986). Meta-analysis in clinical trials. Control Clin Trials 7:177-188.
Paule RC, Mandel J (1982). Consensus values and weighting factors. J Res Natl Bur Stand 87:377-385.
Viechtbauer W (2005). Bias and efficiency of meta-analytic variance estimators in the random-effects model.
J Educ Behav Stat 30:261-293.
Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity in meta-analysis. Stat Med 26:37-52.
Higgins JPT, Thompson SG (2002). Quantifying heterogeneity in a meta-analysis. Stat Med 21:1539-1558.
"""

from __future__ import annotations

import numpy as np

from meta.models.distributions import chi2_ppf

#: Relative convergence criterion of the iterative estimators (ML, REML, PM/EB)
#: and of the Q-profile root finding.
TOL = 1e-10
MAX_ITER = 1000


# --------------------------------------------------------------------------- #
# building blocks (all (m, K) -> (m,))
# --------------------------------------------------------------------------- #
def wmean(y, w):
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
    mu = wmean(y, w)
    r2 = (y - mu[:, None]) ** 2
    return (w * r2).sum(axis=1), -(w * w * r2).sum(axis=1)


def typical_v(v, mask, k):
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
    Q = (w * (y - wmean(y, w)[:, None]) ** 2).sum(axis=1)
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
            raise ValueError(f"not a closed-form tau2 estimator: {method!r}")
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
    r = y - wmean(y, w)[:, None]
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
    r = y - wmean(y, w)[:, None]
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


def estimate_tau2(method, y, v, mask, k, scale):
    """τ² per row by ``method`` (one of :data:`meta.models.engine.METHODS`) and whether it converged.

    FE: 0; DL, HE, SJ, HS: closed form (:func:`_tau2_closed_form`); ML, REML: Fisher scoring
    (:func:`_tau2_fisher_scoring`); PM, EB: the root of the generalised Q (:func:`_tau2_pm`).
    ``scale`` (the typical within-study variance) sets the relative convergence criterion.
    """
    converged = np.ones(len(k), dtype=bool)
    if method == "FE":
        tau2 = np.zeros(len(k))
    elif method in ("DL", "HE", "SJ", "HS"):
        tau2 = _tau2_closed_form(method, y, v, mask, k)
    elif method in ("ML", "REML"):
        tau2, converged = _tau2_fisher_scoring(method, y, v, mask, k, scale)
    else:  # PM, EB
        tau2, converged = _tau2_pm(y, v, mask, k, scale)
    return tau2, converged


def qprofile_ci(y, v, mask, k, alpha, scale):
    """Q-profile interval for τ² (Viechtbauer 2007) and whether both bounds converged.

    The bounds are the τ² at which the generalised Q(τ²) equals the χ²_{k−1} quantiles 1 − α/2 (lower) and
    α/2 (upper); a bound is 0 where Q(0) is already at or below its quantile.
    """
    df_q = np.maximum(k - 1, 1)
    t_low, ok_low = _qprofile_bound(y, v, mask, k, chi2_ppf(1 - alpha / 2, df_q), scale)
    t_high, ok_high = _qprofile_bound(y, v, mask, k, chi2_ppf(alpha / 2, df_q), scale)
    return t_low, t_high, ok_low & ok_high

"""Quantiles and probabilities of the posteriors of :mod:`meta.models.bayes`, which are finite mixtures.

On a grid of τ with normalised weights ωⱼ the posterior of μ is the mixture Σⱼ ωⱼ N(mⱼ, Vⱼ): its CDF is
F(x) = Σⱼ ωⱼ Φ((x − mⱼ)/√Vⱼ), its quantiles the roots of F = p (Brent's method, bracketed by Chebyshev's
inequality), and decision probabilities are values of F. The posterior of τ itself is a density on the grid,
whose quantiles come from its integral by Gauss-Legendre quadrature (:func:`grid_quantiles`).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import special

from meta.models.roots import brentq

#: Relative tolerance of the roots (brentq's smallest).
_RTOL = 4 * np.finfo(float).eps


def _moments(weights, means, variances):
    """Mean and sd of Σ ωⱼ N(mⱼ, Vⱼ) (ω normalised)."""
    mean = float(weights @ means)
    var = float(weights @ (variances + (means - mean) ** 2))
    return mean, math.sqrt(var)


def _bracket(p, mean, sd):
    """Chebyshev: P(|X − mean| ≥ K·sd) ≤ 1/K², so the p-quantile lies within K·sd for K² > 1/min(p, 1−p)."""
    K = 1.0 / math.sqrt(min(p, 1.0 - p)) + 1.0
    return mean - K * sd, mean + K * sd


def mixture_quantiles(probs, weights, means, variances):
    """Quantiles of Σ ωⱼ N(mⱼ, Vⱼ) (ω normalised) by Brent's method; also mean and sd."""
    mean, sd = _moments(weights, means, variances)
    sds = np.sqrt(variances)

    @functools.cache  # the lower and upper quantiles usually share their bracket, whose ends brentq evaluates first
    def cdf(x):
        return float(weights @ special.ndtr((x - means) / sds))

    out = []
    for p in probs:
        lo, hi = _bracket(p, mean, sd)
        out.append(brentq(lambda x: cdf(x) - p, lo, hi, xtol=1e-12 * sd, rtol=_RTOL))
    return np.array(out), mean, sd


def mixture_quantiles_within(probs, weights, means, variances, lows, highs):
    """Whether every quantile :func:`mixture_quantiles` gives lies in [lows[i], highs[i]], without finding it.

    Its root of F = p is there when F(lows[i]) < p < F(highs[i]) inside the Chebyshev bracket: F rises (up to
    rounding, far below the ranges the caller asks about), so every sign change of F − p brentq can converge to is
    inside. One vectorised pass of F at the 2·len(probs) ends; False when any end fails (or is NaN).
    """
    mean, sd = _moments(weights, means, variances)
    ends = np.concatenate((lows, highs))
    F = special.ndtr((ends[:, None] - means) / np.sqrt(variances)) @ weights
    for i, p in enumerate(probs):
        lo, hi = _bracket(p, mean, sd)
        if not (lo < lows[i] and highs[i] < hi and F[i] < p < F[len(probs) + i]):
            return False
    return True


#: Gauss-Legendre nodes per grid interval for the cumulative distribution of τ.
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(8)


def _cumulative(u, density):
    """∫ from u₀ to every node of ``density``: 8-point Gauss-Legendre on every grid interval, summed."""
    half = 0.5 * np.diff(u)
    mid = 0.5 * (u[1:] + u[:-1])
    panels = half * (density((mid[:, None] + half[:, None] * _GL_NODES).ravel()).reshape(-1, _GL_NODES.size)
                     @ _GL_WEIGHTS)
    return np.concatenate(([0.0], np.cumsum(panels)))


def _interval(cum, p, total):
    """The grid interval j, [u_j, u_j+1], in which :func:`grid_quantiles` seeks the p-quantile."""
    return min(max(int(np.searchsorted(cum, p * total)) - 1, 0), len(cum) - 2)


def grid_quantiles(u, density, probs):
    """Quantiles of u under the (unnormalised) density ``density(u)``, mapped back by the caller.

    P(u ≤ x) = ∫₀ˣ g / ∫₀ᵁ g with g integrated by 8-point Gauss-Legendre on every grid
    interval; the quantile is the root in its interval, where the partial integral
    [u_j, x] is again done by Gauss-Legendre on the exact density.
    """
    cum = _cumulative(u, density)
    total = cum[-1]

    def partial(x, j):
        h = 0.5 * (x - u[j])
        return cum[j] + h * float(density(u[j] + h * (_GL_NODES + 1.0)) @ _GL_WEIGHTS)

    out = []
    for p in probs:
        j = _interval(cum, p, total)
        @functools.cache  # brentq starts with f(lo) and f(hi), which the bracket check below has computed
        def f(x, j=j, p=p):
            return partial(x, j) / total - p

        lo, hi = u[j], u[j + 1]
        if f(lo) >= 0:
            out.append(lo)
        elif f(hi) <= 0:
            out.append(hi)
        else:
            out.append(brentq(f, lo, hi, xtol=1e-15, rtol=_RTOL))
    return np.array(out)


def grid_quantiles_within(u, density, probs, lows, highs):
    """Whether every quantile :func:`grid_quantiles` gives lies in [lows[i], highs[i]] (in u), without finding it.

    The quantile lies in the grid interval [u_j, u_j+1] of :func:`_interval`. Where lows[i] is inside it, the
    partial integral at lows[i] must be below p·total (then it is at u_j too, which is not returned, and brentq's
    sign change is above lows[i]: the integral rises, up to rounding far below the ranges the caller asks about);
    where highs[i] is inside, above it. The partial integrals at all those ends come from one call of ``density``.
    """
    cum = _cumulative(u, density)
    total = cum[-1]
    ends, signs, starts, targets = [], [], [], []
    for p, low, high in zip(probs, lows, highs):
        j = _interval(cum, p, total)
        lo, hi = u[j], u[j + 1]
        if not (low < hi and high > lo):
            return False
        for end, sign in ((low, -1.0), (high, 1.0)):
            if lo < end < hi:
                ends.append(end)
                signs.append(sign)
                starts.append(j)
                targets.append(p)
    if not ends:
        return True
    start = u[starts]
    h = 0.5 * (np.array(ends) - start)
    nodes = start[:, None] + h[:, None] * (_GL_NODES + 1.0)
    partial = cum[starts] + h * (density(nodes.ravel()).reshape(nodes.shape) @ _GL_WEIGHTS)
    return bool(np.all(np.array(signs) * (partial / total - np.array(targets)) > 0))


def mixture_probabilities(weights, means, variances, delta):
    """P(μ > 0), P(μ < −δ), P(|μ| < δ) under Σ ωⱼ N(mⱼ, Vⱼ), each summed without cancellation."""
    sds = np.sqrt(variances)
    p_gt_0 = float(weights @ special.ndtr(means / sds))
    if delta is None:
        return p_gt_0, math.nan, math.nan
    p_lt = float(weights @ special.ndtr((-delta - means) / sds))
    p_within = float(weights @ (special.ndtr((delta - means) / sds) - special.ndtr((-delta - means) / sds)))
    return p_gt_0, p_lt, p_within

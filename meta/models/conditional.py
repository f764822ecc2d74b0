"""The posterior of the normal-normal model of :mod:`meta.models.bayes` given τ, on a grid of τ.

With wᵢ(τ) = 1/(vᵢ + τ²) (flat prior on μ)::

    μ̂(τ) = Σwᵢyᵢ / Σwᵢ,     V_μ(τ) = 1 / Σwᵢ,
    log p(τ|y) = log p(τ) + ½ log V_μ − ½ Σᵢ log(vᵢ + τ²) − ½ Σᵢ wᵢ(yᵢ − μ̂)² + const;

a normal prior μ ~ N(0, σ_μ²) is one more observation 0 with the variance σ_μ² (no τ² added).

How the sums are computed
-------------------------
Every sum over the studies runs in numpy's pairwise order (:func:`pairwise_sum`), the order of ``np.sum`` along a
row: a grid of n values of τ and k studies is laid out either as n rows of k (few nodes: :func:`_by_rows`) or as k
rows of n (many nodes: :func:`_by_studies`, with long contiguous rows and no per-node loop inside numpy), and both
give the same numbers to the last bit.
"""

from __future__ import annotations

import numpy as np

#: Below this many values of τ (or with one study) the grid is laid out one row per τ (:func:`_by_rows`).
ROWS_BELOW = 64
#: The studies × τ layout (:func:`_by_studies`) works on blocks of about this many values (they stay in the cache).
BLOCK_VALUES = 1 << 16


def log_prior(t2, s, tau_prior):
    """log p(τ) + const from τ²: −τ²/(2s²) (half-normal) or −log(1 + τ²/s²) (half-Cauchy)."""
    if tau_prior == "halfcauchy":
        return -np.log1p(t2 / s**2)
    return -0.5 * t2 / s**2


def pairwise_sum(a):
    """Σ over the first axis of ``a`` (m, …), added in the order ``np.sum`` adds a contiguous row of m values.

    numpy's pairwise summation (``pairwise_sum`` in numpy/_core/src/umath/loops_utils.h.src): fewer than 8 terms
    are added one by one to 0; up to 128 terms go to 8 partial sums rᵢ (term j to r_{j mod 8}, the last m mod 8
    terms added one by one at the end) combined as ((r₀+r₁)+(r₂+r₃))+((r₄+r₅)+(r₆+r₇)); a longer run is split
    in two halves (the first a multiple of 8 long) summed the same way. Here each "term" is a whole row of ``a``.
    """
    m = a.shape[0]
    if m < 8:
        res = np.zeros(a.shape[1:])
        for i in range(m):
            res += a[i]
        return res
    if m <= 128:
        end = m - m % 8
        r = a[0:8].copy()
        for i in range(8, end, 8):
            r += a[i:i + 8]
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        for i in range(end, m):
            res += a[i]
        return res
    half = m // 2
    half -= half % 8
    return pairwise_sum(a[:half]) + pairwise_sum(a[half:])


def conditional(tau, y, v, s, mu_prior_sd, tau_prior="halfnormal"):
    """log p(τ|y) + const, μ̂(τ) and V_μ(τ) for an array of τ (see the module docstring)."""
    tau = np.asarray(tau, dtype=float)
    if tau.size < ROWS_BELOW or v.size == 1:
        return _by_rows(tau, y, v, s, mu_prior_sd, tau_prior)
    step = min(tau.size, max(ROWS_BELOW, BLOCK_VALUES // v.size))
    # the blocks' three (k, n) arrays, allocated once: fresh arrays per block cost a page fault per 4 KiB (sys CPU)
    size, gap = v.size * step, 24  # the gap: the three do not start a multiple of 4 KiB apart (same cache sets)
    flat = np.empty(3 * (size + gap))
    buffers = [flat[i * (size + gap):i * (size + gap) + size] for i in range(3)]
    out = np.empty((3, tau.size))
    for i in range(0, tau.size, step):
        out[:, i:i + step] = _by_studies(tau[i:i + step], y, v, s, mu_prior_sd, tau_prior, buffers)
    return out[0], out[1], out[2]


def _mu_given_tau(sw, swr, y0, mu_prior_sd):
    """μ̂(τ) and V_μ(τ) from Σw and Σw(y - y0) (w = 1/(v + τ²), y0 centres for accuracy); the normal prior N(0,
    mu_prior_sd²) on μ, when given, counts as one more study with y = 0 and w0 = 1/mu_prior_sd²:
    μ̂ = y0 + (Σw(y - y0) + w0 (0 - y0)) / (Σw + w0), V_μ = 1 / (Σw + w0)."""
    if mu_prior_sd is not None:
        w0 = 1.0 / mu_prior_sd**2
        sw = sw + w0
        swr = swr + w0 * (0.0 - y0)
    return y0 + swr / sw, 1.0 / sw


def _by_rows(tau, y, v, s, mu_prior_sd, tau_prior):
    """:func:`conditional` with one row of k studies per τ."""
    t2 = tau[:, None] ** 2
    w = 1.0 / (v + t2)                                  # (n, k)
    y0 = y[0]                                           # centre for accuracy
    sw = w.sum(axis=1)
    swr = (w * (y - y0)).sum(axis=1)
    mu, V = _mu_given_tau(sw, swr, y0, mu_prior_sd)
    q = (w * (y - mu[:, None]) ** 2).sum(axis=1)
    if mu_prior_sd is not None:
        q = q + mu**2 / mu_prior_sd**2
    logp = (log_prior(t2[:, 0], s, tau_prior) + 0.5 * np.log(V)
            - 0.5 * np.log(v + t2).sum(axis=1) - 0.5 * q)
    return logp, mu, V


def _by_studies(tau, y, v, s, mu_prior_sd, tau_prior, buffers=None):
    """:func:`conditional` with one row of n values of τ per study; the same operations on the same numbers as
    :func:`_by_rows` (its row sums are :func:`pairwise_sum` over the studies). ``buffers``: three flat arrays of at
    least k·n values to work in (default: new ones)."""
    shape = (v.size, tau.size)
    if buffers is None:
        buffers = [np.empty(v.size * tau.size) for _ in range(3)]
    vt, w, work = (b[:shape[0] * shape[1]].reshape(shape) for b in buffers)
    t2 = tau**2
    np.add(v[:, None], t2, out=vt)
    np.divide(1.0, vt, out=w)
    y0 = y[0]
    sw = pairwise_sum(w)
    np.multiply(w, (y - y0)[:, None], out=work)
    swr = pairwise_sum(work)
    mu, V = _mu_given_tau(sw, swr, y0, mu_prior_sd)
    np.subtract(y[:, None], mu, out=work)
    np.square(work, out=work)
    np.multiply(w, work, out=work)
    q = pairwise_sum(work)
    if mu_prior_sd is not None:
        q = q + mu**2 / mu_prior_sd**2
    np.log(vt, out=vt)
    logp = log_prior(t2, s, tau_prior) + 0.5 * np.log(V) - 0.5 * pairwise_sum(vt) - 0.5 * q
    return logp, mu, V

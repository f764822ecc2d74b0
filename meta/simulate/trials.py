"""The data-generating model: individual-level trials of one experiment and its LOEP-style regression.

Per replication the control share p₀ ~ U(base_rate); every treatment arm's true effect θ = μ + u, u ~ N(0, τ²)
(pp); outcome y = 1{ρx + √(1−ρ²)ε < Φ⁻¹(p_arm)} with a baseline covariate x ~ N(0, 1), so P(y = 1 | arm) = p_arm
exactly. The regression is the linear probability model y ~ 1 + arm dummies + x (see :mod:`meta.simulate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from meta.simulate.settings import MIN_SHARE, Municipality


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

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

This module is the batch driver (:func:`pool_batch`) with the pooled effect, its
tests and intervals and the heterogeneity statistics, and the one-analysis and
studies-table front ends (:func:`pool`, :func:`pool_cells`). The τ² estimators and
the Q-profile interval are in :mod:`meta.models.tau2`; the t, normal and χ²
functions in :mod:`meta.models.distributions`.

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

from meta.models.choices import METHODS, TESTS  # the names in one place (meta.cli lists them); re-exported here
from meta.models.distributions import chi2_sf, norm_ppf, norm_sf, t_ppf, t_sf
from meta.models.tau2 import estimate_tau2, qprofile_ci, typical_v, wmean

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
# the pooled effect and heterogeneity at a given τ²
# --------------------------------------------------------------------------- #
def _pooled_effect(y, v, mask, k, tau2_fit, test, alpha):
    """The pooled effect with its test, confidence and prediction intervals at τ² = ``tau2_fit``.

    μ̂ = Σwᵢyᵢ/Σwᵢ, se = 1/√Σwᵢ with wᵢ = 1/(vᵢ + τ²); for ``knha`` se·√q with
    q = Σwᵢ(yᵢ − μ̂)²/(k−1) (``adhoc``: max(q, 1)) and t with k−1 df; the prediction
    interval is μ̂ ± c·√(τ² + se²), c the critical value of the test.
    Returns a dict with ``estimate, se, ci_low, ci_high, pval, pi_low, pi_high, df``.
    """
    km1 = k - 1
    multi = k > 1
    w = mask / (v + tau2_fit[:, None])
    sw = w.sum(axis=1)
    mu = wmean(y, w)
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
    pi_half = crit * np.sqrt(tau2_fit + se**2)
    return {"estimate": mu, "se": se, "ci_low": mu - crit * se, "ci_high": mu + crit * se, "pval": pval,
            "pi_low": mu - pi_half, "pi_high": mu + pi_half, "df": df}


def _heterogeneity(y, v, mask, k, method, tau2_fit, s2):
    """Cochran's Q (df k−1) with its p-value, the Q-based I², and metafor's I² and H².

    Returns ``(Q, Q_p, I2_Q, I2, H2)``: Q = Σvᵢ⁻¹(yᵢ − μ̂_FE)²; I2_Q = 100·max(0, (Q − df)/Q);
    I² = 100·τ²/(τ² + s²) and H² = (τ² + s²)/s² (s² the typical within-study
    variance), or for FE the Q-based I² and H² = Q/df.
    """
    km1 = k - 1
    multi = k > 1
    w_fe = mask / v
    Q = (w_fe * (y - wmean(y, w_fe)[:, None]) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # Q → 0: (Q − df)/Q → −inf → 0
        Q_p = np.where(multi, chi2_sf(Q, np.maximum(km1, 1)), np.nan)
        I2_Q = np.where(multi & (Q > 0), 100 * np.maximum(0.0, (Q - km1) / Q), 0.0)
        H2_Q = np.where(multi, Q / km1, np.nan)
    if method == "FE":
        return Q, Q_p, I2_Q, I2_Q, H2_Q
    return Q, Q_p, I2_Q, 100 * tau2_fit / (tau2_fit + s2), (tau2_fit + s2) / s2


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
      with s² from :func:`meta.models.tau2.typical_v` (metafor); for FE, I² = 100·max(0, (Q−df)/Q)
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
    s2 = typical_v(v, mask, k)  # also the scale of relative convergence (τ² is measured against typical vᵢ)
    multi = k > 1

    tau2, converged = estimate_tau2(method, y, v, mask, k, s2)
    tau2 = np.where(multi, tau2, np.nan)
    tau2_fit = np.nan_to_num(tau2, nan=0.0)
    effect = _pooled_effect(y, v, mask, k, tau2_fit, test, alpha)
    Q, Q_p, I2_Q, I2, H2 = _heterogeneity(y, v, mask, k, method, tau2_fit, s2)
    if method == "FE":
        tau2_ci_low = tau2_ci_high = np.full(len(k), np.nan)
        ci_ok = np.ones(len(k), dtype=bool)
    else:
        tau2_ci_low, tau2_ci_high, ci_ok = qprofile_ci(y, v, mask, k, alpha, s2)

    nan = np.full(len(k), np.nan)
    het = {  # NaN for k = 1
        "tau2_ci_low": tau2_ci_low, "tau2_ci_high": tau2_ci_high,
        "I2": I2,
        "I2_ci_low": 100 * tau2_ci_low / (tau2_ci_low + s2), "I2_ci_high": 100 * tau2_ci_high / (tau2_ci_high + s2),
        "H2": H2, "H2_ci_low": (tau2_ci_low + s2) / s2, "H2_ci_high": (tau2_ci_high + s2) / s2,
        "I2_Q": I2_Q, "Q": Q,
    }
    return {
        "k": k,
        **{key: effect[key] for key in ("estimate", "se", "ci_low", "ci_high", "pval")},
        "tau2": tau2,
        **{key: np.where(multi, val, nan) for key, val in het.items()},
        "Q_df": k - 1,
        "Q_p": Q_p,
        **{key: effect[key] for key in ("pi_low", "pi_high", "df")},
        "converged": np.where(multi, converged & ci_ok, True),
        "single_study": ~multi,
    }


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
    return pool_cells_each(studies, cell_columns, [(method, test)], level)[0]


def pool_cells_each(studies, cell_columns, choices, level: float = 95.0) -> list:
    """:func:`pool_cells` under each ``(method, test)`` of ``choices``, the cells grouped and padded once.

    Each table is the one :func:`pool_cells` returns for that choice, number for number (the same batch).
    """
    import pandas as pd

    cell_columns = list(cell_columns)
    if len(studies) == 0:
        return [pd.DataFrame(columns=[*cell_columns, "k"]) for _ in choices]
    # padded arrays filled in one step: row = the cell's number (sorted), column = the study's place in its cell
    by = studies.groupby(cell_columns, sort=True, dropna=False)
    cell, place = by.ngroup().to_numpy(), by.cumcount().to_numpy()
    keys = [key if isinstance(key, tuple) else (key,) for key in by.size().index.tolist()]
    y = np.zeros((len(keys), int(place.max()) + 1))
    v = np.ones_like(y)
    mask = np.zeros(y.shape, dtype=bool)
    y[cell, place] = studies["yi"].to_numpy(float)
    v[cell, place] = studies["sei"].to_numpy(float) ** 2
    mask[cell, place] = True
    key_columns = {c: [key[j] for key in keys] for j, c in enumerate(cell_columns)}
    tables = []
    for method, test in choices:
        res = pool_batch(y, v, mask, method=method, test=test, level=level)
        # one constructor call (a column inserted at a time cost more than the pooling)
        tables.append(pd.DataFrame({**key_columns, **res, "method": [method.upper()] * len(keys),
                                    "test": [test.lower()] * len(keys), "level": np.full(len(keys), float(level))}))
    return tables

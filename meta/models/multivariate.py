"""Multivariate (GLS) meta-analysis of arms that share a control group.

A municipality that randomised several treatment arms against one control group
reports one effect per arm, ``y_i = p_arm,i - p_control``. Those effects are
correlated, because every one of them subtracts the same control-group estimate.
For differences in shares, the sampling covariance of two arms' effects is the
binomial variance of the shared control group,

    Cov(y_i, y_j) = p0 (1 - p0) / n0        (i != j, same municipality),

and Var(y_i) = p_i (1 - p_i) / n_i + p0 (1 - p0) / n0 (Gleser & Olkin 2009).
Treating such arms as independent studies counts the control group twice.

This module fits the model that metafor writes as
``rma.mv(yi, V, mods = X, random = ~ 1 | study)``:

    y = X beta + Z u + e,    e ~ N(0, V),    u ~ N(0, tau2 I_g),

with ``V`` the known k x k sampling covariance (block-diagonal across groups),
``Z`` the k x g indicator matrix of the groups (municipalities or studies), and
one random effect per group that all of that group's estimates share. The
marginal covariance is ``M = V + tau2 Z Z'``. ``tau2``, the between-group variance
(metafor's ``sigma2`` of ``rma.mv``; the univariate model's τ² when every group has
one estimate, hence this module's name for it), is estimated by REML
(or ML), or fixed at 0 (``method="FE"``, the Gleser-Olkin GLS model). Results
match metafor 3.8-1; the reference values and R calls are in
``tests/reference/metafor_rma_mv_reference.json``.

Its inputs are built by :mod:`meta.models.covariance` (``V``: shared control groups, blocks by group) and
:mod:`meta.models.design` (the additive component design and which components it can identify); the
likelihood and the estimation of ``tau2`` are in :mod:`meta.models.gls`.

References
----------
Gleser LJ, Olkin I (2009). Stochastically dependent effect sizes. In: Cooper H,
Hedges LV, Valentine JC (eds), The Handbook of Research Synthesis and
Meta-Analysis, 2nd ed., ch. 19, pp. 357-376. New York: Russell Sage Foundation.
Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package.
Journal of Statistical Software 36(3):1-48. doi:10.18637/jss.v036.i03
Jackson D, Riley R, White IR (2011). Multivariate meta-analysis: potential and
promise. Statistics in Medicine 30(20):2481-2498. doi:10.1002/sim.4172
Harville DA (1977). Maximum likelihood approaches to variance component
estimation and to related problems. JASA 72:320-338 (REML score and information).
"""
from __future__ import annotations
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from meta.models.covariance import SYMMETRY_RTOL
from meta.models.design import identifiability
from meta.models.distributions import chi2_sf, norm_ppf, norm_sf
from meta.models.gls import maximum_likelihood_tau2, state_factory

__all__ = ["MVResult", "fit_mv"]

METHODS = ("REML", "ML", "FE")
_FE_ALIASES = {"EE": "FE", "CE": "FE"}  # metafor's names for the same model
#: metafor's test for an intercept column (``.is.intercept``): all |x - 1| < 1e-8
_INTERCEPT_EPS = 1e-8


# --------------------------------------------------------------------------- #
# result
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, eq=False)
class MVResult:
    """Result of :func:`fit_mv` (metafor's ``rma.mv`` names in brackets).

    Attributes
    ----------
    estimate : ndarray, shape (p,)
        GLS estimates beta-hat (``beta``).
    se, zval, pval : ndarray, shape (p,)
        Standard errors, Wald z = estimate / se and two-sided normal p-values.
    ci_low, ci_high : ndarray, shape (p,)
        Wald intervals estimate -/+ z_{1-alpha/2} se at ``level`` percent.
    vcov : ndarray, shape (p, p)
        (X' M^-1 X)^-1 at the estimated tau2 (``vb``).
    tau2 : float
        Variance of the random effect shared by all estimates of a group
        (metafor's ``sigma2``); 0 for ``method="FE"``.
    Q, Q_df, Q_p : float, int, float
        Test for residual heterogeneity, computed with V alone (``QE``, ``QEp``); the
        names are those of :class:`meta.models.engine.PoolResult`, whose Q this is for an
        intercept-only model with a diagonal V. ``Q_p`` is NaN when Q_df = 0.
    QM, QM_df, QM_p : float, int, float
        Wald test that all coefficients are 0, leaving out the intercept when X
        has an intercept column and other columns (``QM``, ``QMdf``, ``QMp``).
    k, p : int
        Number of estimates and of coefficients.
    names : tuple of str
        Coefficient names (``"intrcpt"`` for an intercept column).
    converged : bool
        True when tau2 was found to the tolerance (always true for FE).
    logLik : float
        Restricted (REML) log-likelihood at tau2, including metafor's
        +1/2 log|X'X| term, so it equals metafor's ``fit.stats["ll", "REML"]``.
    logLik_ML : float
        Full (ML) log-likelihood at tau2 (``fit.stats["ll", "ML"]``).
    level : float
        Confidence level in percent.
    method : str
        ``"REML"``, ``"ML"`` or ``"FE"``.
    n_groups : int
        Number of groups (levels of the random effect).
    """

    estimate: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    zval: np.ndarray
    pval: np.ndarray
    vcov: np.ndarray
    tau2: float
    Q: float
    Q_df: int
    Q_p: float
    QM: float
    QM_df: int
    QM_p: float
    k: int
    p: int
    names: tuple
    converged: bool
    logLik: float
    level: float
    logLik_ML: float = math.nan
    method: str = "REML"
    n_groups: int = 0

    def to_dict(self) -> dict:
        """The result as a plain dict; arrays become lists."""
        d = asdict(self)
        return {key: (val.tolist() if isinstance(val, np.ndarray) else val) for key, val in d.items()}

    def table(self) -> pd.DataFrame:
        """Coefficient table (one row per coefficient) as a DataFrame."""
        return pd.DataFrame(
            {"estimate": self.estimate, "se": self.se, "zval": self.zval, "pval": self.pval,
             "ci_low": self.ci_low, "ci_high": self.ci_high},
            index=pd.Index(self.names, name="coefficient"),
        )


# --------------------------------------------------------------------------- #
# input checks
# --------------------------------------------------------------------------- #
def _as_vector(yi) -> np.ndarray:
    y = np.asarray(yi, dtype=float)
    if y.ndim != 1:
        y = y.squeeze()
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"yi must be a non-empty 1-D array of effects; got shape {np.shape(yi)}")
    if not np.all(np.isfinite(y)):
        i = int(np.flatnonzero(~np.isfinite(y))[0])
        raise ValueError(f"yi must be finite; estimate {i} is {y[i]!r}")
    return y


def _check_cov(V, k: int, what: str = "V") -> np.ndarray:
    """Return V, symmetrised, after checking it is a valid covariance (finite, symmetric, positive definite: a
    Cholesky factor of each block of V that no covariance links to another, :func:`_blocks`; numpy's, as the fits in
    :mod:`meta.models.gls` use, so scipy.linalg is not imported)."""
    V = np.asarray(V, dtype=float)
    if V.ndim == 1:  # sampling variances only: independent estimates
        V = np.diag(V)
    if V.shape != (k, k):
        raise ValueError(f"{what} must be a {k} x {k} matrix for {k} estimates; got shape {V.shape}")
    if not np.all(np.isfinite(V)):
        i, j = np.argwhere(~np.isfinite(V))[0]
        raise ValueError(f"{what} must be finite; {what}[{i}, {j}] is {V[i, j]!r}")
    scale = np.max(np.abs(V)) if V.size else 0.0
    asym = np.max(np.abs(V - V.T)) if V.size else 0.0
    if asym > SYMMETRY_RTOL * scale:
        i, j = np.unravel_index(np.argmax(np.abs(V - V.T)), V.shape)
        raise ValueError(f"{what} must be symmetric; {what}[{i}, {j}] = {V[i, j]!r} but "
                         f"{what}[{j}, {i}] = {V[j, i]!r}")
    V = (V + V.T) / 2.0
    if np.any(np.diag(V) <= 0):
        i = int(np.flatnonzero(np.diag(V) <= 0)[0])
        raise ValueError(f"{what} must be positive definite; its diagonal (the sampling variance) "
                         f"of estimate {i} is {V[i, i]!r}")
    try:
        for rows in _blocks(V):
            np.linalg.cholesky(V[np.ix_(rows, rows)])
    except np.linalg.LinAlgError:
        ev = np.linalg.eigvalsh(V)
        raise ValueError(
            f"{what} must be positive definite; its smallest eigenvalue is {ev[0]:.3g}. A covariance "
            "between two arms larger than either arm's variance (e.g. a control-group variance "
            "larger than an arm difference's variance) makes this happen"
        ) from None
    return V


def _blocks(V: np.ndarray) -> list:
    """The index sets of V's blocks: the connected components of its non-zero covariances (a matrix is positive
    definite exactly when every such block is), or all of V in one when it has more than 4k of them (then
    finding the blocks would cost more than factorising V whole)."""
    k = V.shape[0]
    i, j = np.nonzero(np.triu(V != 0, 1))
    if len(i) > 4 * k:
        return [np.arange(k)]
    parent = list(range(k))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in zip(i.tolist(), j.tolist()):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict = {}
    for a in range(k):
        members.setdefault(root(a), []).append(a)
    return [np.array(rows) for rows in members.values()]


def _is_intercept(col: np.ndarray) -> bool:
    return bool(np.all(np.abs(col - 1.0) < _INTERCEPT_EPS))


def _check_design(X, k: int, names) -> tuple[np.ndarray, tuple]:
    if X is None:
        Xa = np.ones((k, 1))
        default = ("intrcpt",)
    else:
        default = tuple(str(c) for c in X.columns) if isinstance(X, pd.DataFrame) else None
        Xa = np.asarray(X, dtype=float)
        if Xa.ndim == 1:
            Xa = Xa[:, None]
        if Xa.ndim != 2 or Xa.shape[0] != k:
            raise ValueError(f"X must have one row per estimate ({k}); got shape {np.shape(X)}")
        if Xa.shape[1] == 0:
            raise ValueError("X has no columns")
        if not np.all(np.isfinite(Xa)):
            i, j = np.argwhere(~np.isfinite(Xa))[0]
            raise ValueError(f"X must be finite; X[{i}, {j}] is {Xa[i, j]!r}")
        if default is None:
            default = tuple("intrcpt" if _is_intercept(Xa[:, j]) else f"X{j + 1}" for j in range(Xa.shape[1]))
    p = Xa.shape[1]
    if names is None:
        names = default
    else:
        names = tuple(str(n) for n in names)
        if len(names) != p:
            raise ValueError(f"names has {len(names)} entries but X has {p} columns")
    rank = np.linalg.matrix_rank(Xa)
    if rank < p:
        ident = identifiability(Xa, names=names)
        raise ValueError(
            f"X has rank {rank} < {p} columns ({k} estimates), so the coefficients are not identifiable. "
            + ident.statement
        )
    return Xa, names


def _group_matrix(groups, k: int) -> np.ndarray:
    if groups is None:
        return np.eye(k)
    g = np.asarray(groups, dtype=object).ravel()
    if g.size != k:
        raise ValueError(f"groups must have one label per estimate ({k}); got {g.size}")
    codes, uniques = pd.factorize(pd.Series(g), sort=False)
    if np.any(codes < 0):
        raise ValueError(f"groups must not be missing; estimate {int(np.flatnonzero(codes < 0)[0])} has no group")
    Z = np.zeros((k, len(uniques)))
    Z[np.arange(k), codes] = 1.0
    return Z


# --------------------------------------------------------------------------- #
# pieces of the fit
# --------------------------------------------------------------------------- #
def _check_method(method, level) -> tuple[str, float]:
    """The method in upper case (metafor's "EE" and "CE" read as "FE") and the level as a float, both checked."""
    method = str(method).upper()
    method = _FE_ALIASES.get(method, method)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    level = float(level)
    if not 0.0 < level < 100.0:
        raise ValueError(f"level is a percentage between 0 and 100; got {level!r}")
    return method, level


def _fit_tau2(y, V, X, Z, method) -> tuple[float, bool]:
    """tau2 and whether it converged: 0 for FE, else :func:`meta.models.gls.maximum_likelihood_tau2`.

    Raises a ValueError when REML has k <= p or when X already holds one coefficient per group (then the random
    effect is confounded with the fixed effects: rank [X Z] = rank X).
    """
    if method == "FE":
        return 0.0, True
    k, p = X.shape
    if method == "REML" and k <= p:
        raise ValueError(f"REML needs more estimates than coefficients; k = {k}, p = {p}")
    # Z's g columns are disjoint group indicators (rank g), so rank [X Z] >= g: with more groups than X has columns
    # it exceeds rank X and the SVD of the k x (p + g) matrix [X Z] is not needed
    if Z.shape[1] <= p and np.linalg.matrix_rank(np.hstack([X, Z])) == np.linalg.matrix_rank(X):
        raise ValueError(
            "the random effect is confounded with the fixed effects (X already contains one "
            "coefficient per group), so tau2 is not identifiable; use method='FE' or drop "
            "those columns"
        )
    return maximum_likelihood_tau2(y, V, X, Z, method)


def _wald(coef, vcov, level) -> dict:
    """Wald se = √diag(vcov), z = coef/se, two-sided normal p and coef ∓ z_{1−α/2}·se at ``level`` percent."""
    se = np.sqrt(np.diag(vcov))
    zval = coef / se
    crit = norm_ppf(1.0 - (1.0 - level / 100.0) / 2.0)
    return dict(se=se, ci_low=coef - crit * se, ci_high=coef + crit * se, zval=zval, pval=2.0 * norm_sf(np.abs(zval)))


def _omnibus_test(coef, vcov, X) -> tuple[float, int, float]:
    """QM = b_B' vcov_BB^-1 b_B, chi-squared with |B| df; B leaves out the intercept when X has one and other columns
    (metafor's default ``btt``)."""
    p = X.shape[1]
    intercept = [j for j in range(p) if _is_intercept(X[:, j])]
    btt = [j for j in range(p) if j not in intercept[:1]] if (intercept and p > 1) else list(range(p))
    b_t = coef[btt]
    QM = float(b_t @ np.linalg.solve(vcov[np.ix_(btt, btt)], b_t))
    QM_df = len(btt)
    return QM, QM_df, float(chi2_sf(QM, QM_df))


# --------------------------------------------------------------------------- #
# the model
# --------------------------------------------------------------------------- #
def fit_mv(yi, V, X=None, groups=None, method: str = "REML", level: float = 95.0, names=None) -> MVResult:
    r"""Fit the multivariate random-effects model ``y = X beta + Z u + e`` by GLS.

    The model is metafor's ``rma.mv(yi, V, mods = X, random = ~ 1 | group)``:

    .. math::

        y = X\beta + Zu + \varepsilon, \quad \varepsilon \sim N(0, V), \quad
        u \sim N(0, \tau^2 I_g), \quad M = \operatorname{Var}(y) = V + \tau^2 ZZ^\top,

    with V the known sampling covariance (for arms that share a control group,
    see :func:`shared_control_cov`), Z the k x g 0/1 indicator of the groups
    and one random effect per group, shared by all of that group's estimates
    (a compound-symmetric between-arm covariance, Jackson, Riley & White 2011).

    Estimation:

    * ``tau2`` maximises the restricted log-likelihood (REML)

      .. math::

          \ell_R(\tau^2) = -\tfrac{k-p}{2}\log 2\pi + \tfrac12\log|X^\top X|
          - \tfrac12\log|M| - \tfrac12\log|X^\top M^{-1}X| - \tfrac12 (y-X\hat\beta)^\top M^{-1}(y-X\hat\beta)

      over tau2 >= 0 (the 1/2 log|X'X| term is metafor's convention), found
      from the score equation
      :math:`\tfrac12\{y^\top P ZZ^\top P y - \operatorname{tr}(P ZZ^\top)\} = 0`,
      :math:`P = M^{-1} - M^{-1}X(X^\top M^{-1}X)^{-1}X^\top M^{-1}`, with a
      grid search for brackets, Brent's method to relative 1e-13, and the
      boundary tau2 = 0 whenever the score there is <= 0 (Harville 1977).
      ``"ML"`` uses the full likelihood (M^-1 in place of P in the trace),
      and ``"FE"`` fixes tau2 = 0 (the Gleser & Olkin 2009 GLS model).
    * :math:`\hat\beta = (X^\top M^{-1}X)^{-1}X^\top M^{-1}y` and
      :math:`\operatorname{vcov} = (X^\top M^{-1}X)^{-1}` at the estimated tau2;
      Wald :math:`z_j = \hat\beta_j/\mathrm{se}_j`, two-sided normal p-values and
      intervals :math:`\hat\beta_j \pm z_{1-\alpha/2}\,\mathrm{se}_j`.
    * :math:`Q_E = (y - Xb_V)^\top V^{-1}(y - Xb_V)`, with :math:`b_V` the GLS
      fit under V alone, is referred to chi-squared with k - p df (residual
      heterogeneity beyond sampling error).
    * :math:`Q_M = \hat\beta_B^\top \operatorname{vcov}_{BB}^{-1}\hat\beta_B`, chi-squared
      with |B| df, where B is every coefficient except the intercept when X has
      an intercept column and at least one other column (metafor's default
      ``btt``); for an intercept-only model, B is the intercept, so
      :math:`Q_M = z^2`.

    Parameters
    ----------
    yi : array_like, shape (k,)
        Effect estimates (e.g. arm share minus control share).
    V : array_like, shape (k, k) or (k,)
        Known sampling covariance, symmetric positive definite; usually
        block-diagonal across groups (:func:`block_diag_cov`). A 1-D array is
        read as the diagonal (independent estimates).
    X : array_like or DataFrame, shape (k, p), optional
        Design matrix of full column rank; default an intercept column. A
        DataFrame's column names become the coefficient names. A rank-deficient
        X raises a ValueError that says which columns are aliased
        (see :func:`identifiability`).
    groups : array_like, shape (k,), optional
        Group label (municipality, study) of each estimate; estimates with the
        same label share one random effect. Default: every estimate its own group
        (then, with a diagonal V and an intercept, this is the univariate REML
        model of :func:`meta.models.engine.pool`).
    method : {"REML", "ML", "FE"}
        Estimator of tau2 ("EE" and "CE" are accepted as metafor's names for FE).
    level : float
        Confidence level in percent, 0 < level < 100.
    names : sequence of str, optional
        Coefficient names; default the DataFrame columns, ``"intrcpt"`` for an
        intercept column and ``"X1"``, ``"X2"``, ... otherwise.

    Returns
    -------
    MVResult

    Raises
    ------
    ValueError
        On non-finite input, mismatched shapes, a V that is not symmetric
        positive definite, a rank-deficient X, a random effect that X already
        absorbs (every group has its own fixed effect), k <= p for REML, or an
        unknown method.

    References
    ----------
    Gleser LJ, Olkin I (2009). Stochastically dependent effect sizes. In Cooper H,
    Hedges LV, Valentine JC (eds), The Handbook of Research Synthesis and
    Meta-Analysis, 2nd ed., pp. 357-376.
    Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package.
    J Stat Softw 36(3):1-48.
    Jackson D, Riley R, White IR (2011). Multivariate meta-analysis: potential and
    promise. Stat Med 30:2481-2498.

    Examples
    --------
    Two arms sharing one control group (municipality A) and one arm elsewhere (B):

    >>> VA = shared_control_cov(0.20, 100, [0.0037, 0.0025375])
    >>> V = block_diag_cov([VA, [[0.003]]])
    >>> res = fit_mv([0.10, 0.05, 0.02], V, groups=["A", "A", "B"], method="FE")
    >>> res.names, round(float(res.estimate[0]), 4)
    (('intrcpt',), 0.046)
    """
    method, level = _check_method(method, level)
    y = _as_vector(yi)
    k = y.size
    V = _check_cov(V, k)
    Xa, names = _check_design(X, k, names)
    p = Xa.shape[1]
    Z = _group_matrix(groups, k)
    tau2, converged = _fit_tau2(y, V, Xa, Z, method)

    state = state_factory(V, Z)
    st = state(y, Xa, tau2)
    logdet_XtX = 2.0 * float(np.sum(np.log(np.abs(np.diag(np.linalg.qr(Xa)[1])))))
    vcov = (st.vcov + st.vcov.T) / 2.0
    wald = _wald(st.beta, vcov, level)
    # residual heterogeneity under V alone (tau2 = 0)
    Q = (st if tau2 == 0.0 else state(y, Xa, 0.0)).rss
    Q_df = k - p
    Q_p = float(chi2_sf(Q, Q_df)) if Q_df > 0 else math.nan
    QM, QM_df, QM_p = _omnibus_test(st.beta, vcov, Xa)

    arrays = {}
    for key, val in dict(estimate=st.beta, **wald, vcov=vcov).items():
        val = np.array(val, dtype=float)
        val.setflags(write=False)
        arrays[key] = val
    return MVResult(
        **arrays,
        tau2=float(tau2),
        Q=float(Q), Q_df=int(Q_df), Q_p=Q_p,
        QM=QM, QM_df=int(QM_df), QM_p=QM_p,
        k=int(k), p=int(p), names=tuple(names),
        converged=bool(converged),
        logLik=float(st.loglik("REML", k, p, logdet_XtX)), level=level,
        logLik_ML=float(st.loglik("ML", k, p, logdet_XtX)), method=method, n_groups=int(Z.shape[1]),
    )

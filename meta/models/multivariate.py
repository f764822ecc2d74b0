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

    y = X beta + Z u + e,    e ~ N(0, V),    u ~ N(0, sigma2 I_g),

with ``V`` the known k x k sampling covariance (block-diagonal across groups),
``Z`` the k x g indicator matrix of the groups (municipalities or studies), and
one random effect per group that all of that group's estimates share. The
marginal covariance is ``M = V + sigma2 Z Z'``. ``sigma2`` is estimated by REML
(or ML), or fixed at 0 (``method="FE"``, the Gleser-Olkin GLS model). Results
match metafor 3.8-1; the reference values and R calls are in
``tests/reference/metafor_rma_mv_reference.json``.

It also holds the helpers that build the inputs:

* :func:`shared_control_cov` and :func:`block_diag_cov` build ``V``;
* :func:`component_design` builds the additive component design (one 0/1
  column per intervention component: exemption, intensive, release, ...);
* :func:`identifiability` says which components the available arms can
  separate, in plain English.

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

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
from scipy import linalg, optimize, special

__all__ = [
    "MVResult",
    "fit_mv",
    "shared_control_cov",
    "block_diag_cov",
    "component_design",
    "identifiability",
    "Aliasing",
    "Identifiability",
]

METHODS = ("REML", "ML", "FE")
_FE_ALIASES = {"EE": "FE", "CE": "FE"}  # metafor's names for the same model
#: relative tolerance on sigma2 for the root of the score equation
SIGMA2_RTOL = 1e-13
#: metafor's test for an intercept column (``.is.intercept``): all |x - 1| < 1e-8
_INTERCEPT_EPS = 1e-8
#: relative asymmetry of V that is still accepted as rounding
_SYMMETRY_RTOL = 1e-10


# --------------------------------------------------------------------------- #
# result
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, eq=False)
class MVResult:
    """Result of :func:`fit_mv` (metafor's ``rma.mv`` names in brackets).

    Attributes
    ----------
    coef : ndarray, shape (p,)
        GLS estimates beta-hat (``beta``).
    se, zval, pval : ndarray, shape (p,)
        Standard errors, Wald z = coef / se and two-sided normal p-values.
    ci_low, ci_high : ndarray, shape (p,)
        Wald intervals coef -/+ z_{1-alpha/2} se at ``level`` percent.
    vcov : ndarray, shape (p, p)
        (X' M^-1 X)^-1 at the estimated sigma2 (``vb``).
    sigma2 : float
        Variance of the random effect shared by all estimates of a group
        (``sigma2``); 0 for ``method="FE"``.
    QE, QE_df, QE_p : float, int, float
        Test for residual heterogeneity, computed with V alone (``QE``, ``QEp``).
        ``QE_p`` is NaN when QE_df = 0.
    QM, QM_df, QM_p : float, int, float
        Wald test that all coefficients are 0, leaving out the intercept when X
        has an intercept column and other columns (``QM``, ``QMdf``, ``QMp``).
    k, p : int
        Number of estimates and of coefficients.
    names : tuple of str
        Coefficient names (``"intrcpt"`` for an intercept column).
    converged : bool
        True when sigma2 was found to the tolerance (always true for FE).
    logLik : float
        Restricted (REML) log-likelihood at sigma2, including metafor's
        +1/2 log|X'X| term, so it equals metafor's ``fit.stats["ll", "REML"]``.
    logLik_ML : float
        Full (ML) log-likelihood at sigma2 (``fit.stats["ll", "ML"]``).
    level : float
        Confidence level in percent.
    method : str
        ``"REML"``, ``"ML"`` or ``"FE"``.
    n_groups : int
        Number of groups (levels of the random effect).
    """

    coef: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    zval: np.ndarray
    pval: np.ndarray
    vcov: np.ndarray
    sigma2: float
    QE: float
    QE_df: int
    QE_p: float
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
            {"estimate": self.coef, "se": self.se, "zval": self.zval, "pval": self.pval,
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


def _check_cov(V, k: int, what: str = "V") -> tuple[np.ndarray, np.ndarray]:
    """Return (V, lower Cholesky factor of V) after checking V is a valid covariance."""
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
    if asym > _SYMMETRY_RTOL * scale:
        i, j = np.unravel_index(np.argmax(np.abs(V - V.T)), V.shape)
        raise ValueError(f"{what} must be symmetric; {what}[{i}, {j}] = {V[i, j]!r} but "
                         f"{what}[{j}, {i}] = {V[j, i]!r}")
    V = (V + V.T) / 2.0
    if np.any(np.diag(V) <= 0):
        i = int(np.flatnonzero(np.diag(V) <= 0)[0])
        raise ValueError(f"{what} must be positive definite; its diagonal (the sampling variance) "
                         f"of estimate {i} is {V[i, i]!r}")
    try:
        L = linalg.cholesky(V, lower=True)
    except linalg.LinAlgError:
        ev = np.linalg.eigvalsh(V)
        raise ValueError(
            f"{what} must be positive definite; its smallest eigenvalue is {ev[0]:.3g}. A covariance "
            "between two arms larger than either arm's variance (e.g. a control-group variance "
            "larger than an arm difference's variance) makes this happen"
        ) from None
    return V, L


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
# likelihood pieces at one value of sigma2
# --------------------------------------------------------------------------- #
class _State:
    """GLS quantities at one sigma2, computed through the Cholesky factor of M.

    With M = L L', whitened Xw = L^-1 X, yw = L^-1 y, Zw = L^-1 Z and the thin
    QR decomposition Xw = Q R:

    * beta = R^-1 Q' yw,  vcov = (X'M^-1 X)^-1 = R^-1 R^-T;
    * r = (I - QQ') yw, so r'r = (y - X beta)' M^-1 (y - X beta) and P y = L^-T r,
      with P = M^-1 - M^-1 X (X'M^-1 X)^-1 X'M^-1;
    * Z'P y = Zw' r and Z'P Z = Zw'Zw - (Q'Zw)'(Q'Zw).
    """

    def __init__(self, y, V, X, Z, sigma2):
        M = V + sigma2 * (Z @ Z.T) if sigma2 != 0 else V
        L = np.linalg.cholesky(M)
        p = X.shape[1]
        # one solve with L for [X y Z] (numpy's LAPACK solve: scipy's solve_triangular has a large
        # per-call overhead on these tiny matrices)
        W = np.linalg.solve(L, np.column_stack([X, y, Z]))
        Xw, yw, Zw = W[:, :p], W[:, p], W[:, p + 1:]
        Q, r = self._gls(Xw, yw, 2.0 * float(np.sum(np.log(np.diag(L)))))
        zr = Zw.T @ r  # Z' P y
        QtZ = Q.T @ Zw
        ZtMiZ = Zw.T @ Zw
        ZtPZ = ZtMiZ - QtZ.T @ QtZ
        self.quad = float(zr @ zr)
        self.tr_P = float(np.trace(ZtPZ))
        self.tr_Mi = float(np.trace(ZtMiZ))
        self.info_reml = 0.5 * float(np.sum(ZtPZ * ZtPZ))
        self.info_ml = 0.5 * float(np.sum(ZtMiZ * ZtMiZ))

    def _gls(self, Xw, yw, logdet_M):
        """GLS fit on whitened data: beta = R^-1 Q' yw, vcov = R^-1 R^-T, rss = r'r with r = (I - QQ') yw.

        Sets ``beta, vcov, rss, logdet_M, logdet_XtMiX`` and returns ``(Q, r)`` for the score pieces.
        """
        Q, R = np.linalg.qr(Xw)
        Rinv = np.linalg.solve(R, np.eye(Xw.shape[1]))
        self.beta = Rinv @ (Q.T @ yw)
        self.vcov = Rinv @ Rinv.T
        r = yw - Q @ (Q.T @ yw)
        self.rss = float(r @ r)
        self.logdet_M = logdet_M
        self.logdet_XtMiX = 2.0 * float(np.sum(np.log(np.abs(np.diag(R)))))
        return Q, r

    def score(self, method):
        """d logLik / d sigma2: 1/2 (y'P ZZ' P y - tr(P ZZ')) (REML) or with M^-1 in the trace (ML)."""
        return 0.5 * (self.quad - (self.tr_P if method == "REML" else self.tr_Mi))

    def loglik(self, method, k, p, logdet_XtX):
        """REML: -(k-p)/2 log 2pi + 1/2 log|X'X| - 1/2 log|M| - 1/2 log|X'M^-1X| - 1/2 RSS; ML: -k/2 log 2pi - 1/2 log|M| - 1/2 RSS."""
        if method == "ML":
            return -0.5 * k * math.log(2 * math.pi) - 0.5 * self.logdet_M - 0.5 * self.rss
        return (-0.5 * (k - p) * math.log(2 * math.pi) + 0.5 * logdet_XtX - 0.5 * self.logdet_M
                - 0.5 * self.logdet_XtMiX - 0.5 * self.rss)


class _BlockState(_State):
    """The quantities of :class:`_State` when M is block-diagonal by group (V has no covariance across groups).

    Then M = blockdiag(V_g + sigma2 11'), whitening is one small Cholesky per group, Zw has one non-zero column
    per group (L_g^-1 1), Z'M^-1 Z is diagonal (d_g = 1'M_g^-1 1) and, with A = Q'Zw (p x g),

        Z'P Z = diag(d) - A'A,   tr(Z'PZ) = sum d - ||A||^2,
        ||Z'PZ||^2 = sum d^2 - 2 sum_g d_g ||A_g||^2 + ||A A'||^2,

    so no k x k or g x g matrix is formed: the cost is linear in the number of groups instead of cubic in k.
    Same formulas as :class:`_State`; the numbers agree to rounding.
    """

    def __init__(self, y, V, X, Z, sigma2, layout):
        codes, by_size = layout
        k, p = X.shape
        G = Z.shape[1]
        Xw = np.empty_like(X)
        yw = np.empty(k)
        zw = np.empty(k)
        logdet = 0.0
        for idx in by_size:  # idx: (n, s) row indices of n groups of size s
            Mb = V[idx[:, :, None], idx[:, None, :]] + sigma2
            Lb = np.linalg.cholesky(Mb)
            rhs = np.concatenate([X[idx], y[idx][:, :, None], np.ones(idx.shape + (1,))], axis=2)
            Wb = np.linalg.solve(Lb, rhs)
            Xw[idx] = Wb[:, :, :p]
            yw[idx] = Wb[:, :, p]
            zw[idx] = Wb[:, :, p + 1]
            logdet += 2.0 * float(np.sum(np.log(np.diagonal(Lb, axis1=1, axis2=2))))
        Q, r = self._gls(Xw, yw, logdet)
        zr = np.bincount(codes, weights=zw * r, minlength=G)  # Z' P y
        d = np.bincount(codes, weights=zw * zw, minlength=G)  # diag of Z'M^-1 Z
        A = np.stack([np.bincount(codes, weights=Q[:, j] * zw, minlength=G) for j in range(p)])  # Q'Zw
        a2 = np.sum(A * A, axis=0)
        AAt = A @ A.T
        self.quad = float(zr @ zr)
        self.tr_P = float(np.sum(d) - np.sum(a2))
        self.tr_Mi = float(np.sum(d))
        self.info_reml = 0.5 * float(np.sum(d * d) - 2.0 * np.sum(d * a2) + np.sum(AAt * AAt))
        self.info_ml = 0.5 * float(np.sum(d * d))


def _block_layout(V, Z):
    """(group code per row, [row indices of the groups of each size]) when V has no covariance across the groups
    of Z (one 1 per row), else None: then M = V + sigma2 ZZ' is block-diagonal and :class:`_BlockState` applies."""
    if not np.all(Z.sum(axis=1) == 1):
        return None
    codes = np.argmax(Z, axis=1)
    if np.any(V[codes[:, None] != codes[None, :]] != 0):
        return None
    members = {}
    for i, g in enumerate(codes):
        members.setdefault(int(g), []).append(i)
    by_size = {}
    for g in sorted(members):
        by_size.setdefault(len(members[g]), []).append(members[g])
    return codes, [np.array(rows, dtype=int) for _, rows in sorted(by_size.items())]


def _state_factory(V, Z):
    """``state(y, X, sigma2)``: :class:`_BlockState` when M is block-diagonal by group, else the dense
    :class:`_State`."""
    layout = _block_layout(V, Z)
    if layout is None:
        return lambda y, X, s2: _State(y, V, X, Z, s2)
    return lambda y, X, s2: _BlockState(y, V, X, Z, s2, layout)


def _estimate_sigma2(y, V, X, Z, method) -> tuple[float, bool]:
    """Maximise the (restricted) log-likelihood over sigma2 >= 0.

    The score is evaluated on sigma2 = 0 and a log-spaced grid up to an upper
    bound where the score is negative. Each sign change from + to - brackets a
    local maximum, which Brent's method refines on the score equation (relative
    tolerance ``SIGMA2_RTOL``); sigma2 = 0 is a candidate when the score there
    is <= 0. The candidate with the largest log-likelihood wins.
    """
    k, p = X.shape
    logdet_XtX = 2.0 * float(np.sum(np.log(np.abs(np.diag(np.linalg.qr(X)[1])))))
    state = _state_factory(V, Z)
    score = lambda s2: state(y, X, s2).score(method)  # noqa: E731
    loglik = lambda s2: state(y, X, s2).loglik(method, k, p, logdet_XtX)  # noqa: E731

    s0 = score(0.0)
    yvar = float(np.var(y, ddof=1)) if k > 1 else 0.0
    upper = 10.0 * max(yvar, float(np.max(np.diag(V))))
    converged = True
    for _ in range(60):
        if score(upper) < 0:
            break
        upper *= 10.0
    else:
        converged = False  # the likelihood still increases at a huge sigma2
    grid = np.concatenate([[0.0], upper * np.geomspace(1e-12, 1.0, 49)])
    scores = np.array([s0] + [score(g) for g in grid[1:]])
    candidates = []
    if s0 <= 0:
        candidates.append((0.0, True))
    for i in range(len(grid) - 1):
        if scores[i] > 0 and scores[i + 1] <= 0:
            if scores[i + 1] == 0:
                candidates.append((float(grid[i + 1]), True))
                continue
            root, info = optimize.brentq(score, grid[i], grid[i + 1], xtol=1e-300, rtol=SIGMA2_RTOL,
                                         maxiter=1000, full_output=True, disp=False)
            candidates.append((float(root), bool(info.converged)))
    if not candidates:  # score > 0 everywhere up to `upper`
        return float(upper), False
    best = max(candidates, key=lambda c: loglik(c[0]))
    return best[0], converged and best[1]


# --------------------------------------------------------------------------- #
# the model
# --------------------------------------------------------------------------- #
def fit_mv(yi, V, X=None, groups=None, method: str = "REML", level: float = 95.0, names=None) -> MVResult:
    r"""Fit the multivariate random-effects model ``y = X beta + Z u + e`` by GLS.

    The model is metafor's ``rma.mv(yi, V, mods = X, random = ~ 1 | group)``:

    .. math::

        y = X\beta + Zu + \varepsilon, \quad \varepsilon \sim N(0, V), \quad
        u \sim N(0, \sigma^2 I_g), \quad M = \operatorname{Var}(y) = V + \sigma^2 ZZ^\top,

    with V the known sampling covariance (for arms that share a control group,
    see :func:`shared_control_cov`), Z the k x g 0/1 indicator of the groups
    and one random effect per group, shared by all of that group's estimates
    (a compound-symmetric between-arm covariance, Jackson, Riley & White 2011).

    Estimation:

    * ``sigma2`` maximises the restricted log-likelihood (REML)

      .. math::

          \ell_R(\sigma^2) = -\tfrac{k-p}{2}\log 2\pi + \tfrac12\log|X^\top X|
          - \tfrac12\log|M| - \tfrac12\log|X^\top M^{-1}X| - \tfrac12 (y-X\hat\beta)^\top M^{-1}(y-X\hat\beta)

      over sigma2 >= 0 (the 1/2 log|X'X| term is metafor's convention), found
      from the score equation
      :math:`\tfrac12\{y^\top P ZZ^\top P y - \operatorname{tr}(P ZZ^\top)\} = 0`,
      :math:`P = M^{-1} - M^{-1}X(X^\top M^{-1}X)^{-1}X^\top M^{-1}`, with a
      grid search for brackets, Brent's method to relative 1e-13, and the
      boundary sigma2 = 0 whenever the score there is <= 0 (Harville 1977).
      ``"ML"`` uses the full likelihood (M^-1 in place of P in the trace),
      and ``"FE"`` fixes sigma2 = 0 (the Gleser & Olkin 2009 GLS model).
    * :math:`\hat\beta = (X^\top M^{-1}X)^{-1}X^\top M^{-1}y` and
      :math:`\operatorname{vcov} = (X^\top M^{-1}X)^{-1}` at the estimated sigma2;
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
        Estimator of sigma2 ("EE" and "CE" are accepted as metafor's names for FE).
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
    >>> res.names, round(float(res.coef[0]), 4)
    (('intrcpt',), 0.046)
    """
    method = str(method).upper()
    method = _FE_ALIASES.get(method, method)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    level = float(level)
    if not 0.0 < level < 100.0:
        raise ValueError(f"level is a percentage between 0 and 100; got {level!r}")
    y = _as_vector(yi)
    k = y.size
    V, LV = _check_cov(V, k)
    Xa, names = _check_design(X, k, names)
    p = Xa.shape[1]
    Z = _group_matrix(groups, k)

    if method != "FE":
        if method == "REML" and k <= p:
            raise ValueError(f"REML needs more estimates than coefficients; k = {k}, p = {p}")
        if np.linalg.matrix_rank(np.hstack([Xa, Z])) == np.linalg.matrix_rank(Xa):
            raise ValueError(
                "the random effect is confounded with the fixed effects (X already contains one "
                "coefficient per group), so sigma2 is not identifiable; use method='FE' or drop "
                "those columns"
            )
        sigma2, converged = _estimate_sigma2(y, V, Xa, Z, method)
    else:
        sigma2, converged = 0.0, True

    state = _state_factory(V, Z)
    st = state(y, Xa, sigma2)
    logdet_XtX = 2.0 * float(np.sum(np.log(np.abs(np.diag(np.linalg.qr(Xa)[1])))))
    ll_reml = st.loglik("REML", k, p, logdet_XtX)
    ll_ml = st.loglik("ML", k, p, logdet_XtX)

    coef = st.beta
    vcov = (st.vcov + st.vcov.T) / 2.0
    se = np.sqrt(np.diag(vcov))
    zval = coef / se
    pval = 2.0 * special.ndtr(-np.abs(zval))  # scipy.stats.norm.sf
    crit = special.ndtri(1.0 - (1.0 - level / 100.0) / 2.0)  # norm.ppf
    ci_low, ci_high = coef - crit * se, coef + crit * se

    # residual heterogeneity under V alone (sigma2 = 0)
    st0 = st if sigma2 == 0.0 else state(y, Xa, 0.0)
    QE = st0.rss
    QE_df = k - p
    QE_p = float(special.chdtrc(QE_df, QE)) if QE_df > 0 else math.nan

    # omnibus Wald test, leaving out the intercept as metafor does
    intercept = [j for j in range(p) if _is_intercept(Xa[:, j])]
    btt = [j for j in range(p) if j not in intercept[:1]] if (intercept and p > 1) else list(range(p))
    b_t = coef[btt]
    QM = float(b_t @ np.linalg.solve(vcov[np.ix_(btt, btt)], b_t))
    QM_df = len(btt)
    QM_p = float(special.chdtrc(QM_df, QM))

    arrays = {}
    for key, val in dict(coef=coef, se=se, ci_low=ci_low, ci_high=ci_high, zval=zval, pval=pval,
                         vcov=vcov).items():
        val = np.array(val, dtype=float)
        val.setflags(write=False)
        arrays[key] = val
    return MVResult(
        **arrays,
        sigma2=float(sigma2),
        QE=float(QE), QE_df=int(QE_df), QE_p=QE_p,
        QM=QM, QM_df=int(QM_df), QM_p=QM_p,
        k=int(k), p=int(p), names=tuple(names),
        converged=bool(converged),
        logLik=float(ll_reml), level=level,
        logLik_ML=float(ll_ml), method=method, n_groups=int(Z.shape[1]),
    )


# --------------------------------------------------------------------------- #
# building V
# --------------------------------------------------------------------------- #
def shared_control_cov(p_control: float, n_control: float, var_arm) -> np.ndarray:
    r"""Sampling covariance of several arm-minus-control differences in shares from one municipality.

    For arms i = 1..m compared with one control group (share p0, size n0),
    :math:`y_i = \hat p_i - \hat p_0` and

    .. math::

        \operatorname{Var}(y_i) = \frac{p_i(1-p_i)}{n_i} + \frac{p_0(1-p_0)}{n_0}, \qquad
        \operatorname{Cov}(y_i, y_j) = \operatorname{Var}(\hat p_0) = \frac{p_0(1-p_0)}{n_0}
        \quad (i \ne j),

    because the arms are independent samples and only the control term is
    shared (Gleser & Olkin 2009, eq. 19.20 for risk differences).

    Parameters
    ----------
    p_control : float
        Control-group share p0, 0 <= p0 <= 1.
    n_control : float
        Control-group size n0 > 0.
    var_arm : array_like, shape (m,)
        Sampling variance of each arm's difference (the full Var(y_i), which
        already contains the control term). Each must be at least p0(1-p0)/n0.

    Returns
    -------
    ndarray, shape (m, m)
        Diagonal ``var_arm``, every off-diagonal element p0(1-p0)/n0.

    Examples
    --------
    >>> shared_control_cov(0.2, 100, [0.0037, 0.0025375])
    array([[0.0037   , 0.0016   ],
           [0.0016   , 0.0025375]])
    """
    p0 = float(p_control)
    n0 = float(n_control)
    if not (math.isfinite(p0) and 0.0 <= p0 <= 1.0):
        raise ValueError(f"p_control is a share between 0 and 1; got {p_control!r}")
    if not (math.isfinite(n0) and n0 > 0):
        raise ValueError(f"n_control must be a positive size; got {n_control!r}")
    v = np.atleast_1d(np.asarray(var_arm, dtype=float))
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"var_arm must be a non-empty 1-D array of variances; got shape {np.shape(var_arm)}")
    if not np.all(np.isfinite(v) & (v > 0)):
        i = int(np.flatnonzero(~(np.isfinite(v) & (v > 0)))[0])
        raise ValueError(f"var_arm must be finite and > 0; arm {i} has {v[i]!r}")
    c = p0 * (1.0 - p0) / n0
    if np.any(v < c * (1.0 - 1e-12)):
        i = int(np.flatnonzero(v < c * (1.0 - 1e-12))[0])
        raise ValueError(
            f"arm {i} has variance {v[i]:.6g}, below the control group's own variance "
            f"p0(1-p0)/n0 = {c:.6g}; the variance of an arm-minus-control difference includes the "
            "control's variance, so var_arm is probably the arm's own variance only"
        )
    out = np.full((v.size, v.size), c)
    np.fill_diagonal(out, v)
    return out


def block_diag_cov(blocks) -> np.ndarray:
    """Block-diagonal covariance from per-group blocks (zero covariance between groups).

    Parameters
    ----------
    blocks : sequence of array_like
        Square symmetric matrices, one per group, in the order of the estimates;
        a scalar or length-1 input is a 1 x 1 block.

    Returns
    -------
    ndarray, shape (k, k)
        ``scipy.linalg.block_diag(*blocks)``, with k the sum of the block sizes.
    """
    mats = []
    for i, b in enumerate(blocks):
        a = np.asarray(b, dtype=float)
        if a.ndim < 2:
            if a.size != 1:
                raise ValueError(f"block {i} is 1-D with {a.size} entries; give a square matrix")
            a = a.reshape(1, 1)
        if a.ndim != 2 or a.shape[0] != a.shape[1]:
            raise ValueError(f"block {i} must be square; got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"block {i} contains a non-finite value")
        if np.max(np.abs(a - a.T)) > _SYMMETRY_RTOL * max(np.max(np.abs(a)), 1e-300):
            raise ValueError(f"block {i} is not symmetric")
        mats.append(a)
    if not mats:
        raise ValueError("no blocks given")
    return linalg.block_diag(*mats)


# --------------------------------------------------------------------------- #
# component model and identifiability
# --------------------------------------------------------------------------- #
def component_design(arm_components: pd.DataFrame, components: list[str]) -> pd.DataFrame:
    """Design matrix of the additive component model, one 0/1 column per component.

    The additive component model says an arm's effect against control is the sum
    of the effects of the components it contains,
    ``y_arm - y_control = sum_c x_arm,c * beta_c``, with no intercept (an arm with
    no component is the control group). The rows should therefore be the treatment
    arms, not the control.

    Parameters
    ----------
    arm_components : DataFrame
        One row per arm with a 0/1 (or boolean) column per component, such as
        ``inputs/arms.csv`` (columns ``exemption``, ``intensive``, ``release``).
        When it has an ``arm`` column, the result is indexed by it (prefixed
        by ``municipality/`` when that column exists too); otherwise its index is kept.
    components : list of str
        Component columns to use, in order.

    Returns
    -------
    DataFrame, shape (n_arms, len(components))
        Float 0/1 design; pass it to :func:`fit_mv` as ``X`` (the column names
        become the coefficient names) or to :func:`identifiability`.
    """
    if not isinstance(arm_components, pd.DataFrame):
        raise ValueError("arm_components must be a pandas DataFrame with one row per arm")
    components = list(components)
    if not components:
        raise ValueError("components is empty")
    if len(set(components)) != len(components):
        raise ValueError(f"components has duplicates: {components}")
    missing = [c for c in components if c not in arm_components.columns]
    if missing:
        raise ValueError(f"arm_components has no column(s) {missing}; it has {list(arm_components.columns)}")
    X = arm_components[components].apply(pd.to_numeric, errors="coerce").astype(float)
    bad = X.isna() | ~X.isin([0.0, 1.0])
    if bad.to_numpy().any():
        r, c = np.argwhere(bad.to_numpy())[0]
        raise ValueError(f"component columns must be 0/1; row {r}, column {components[c]!r} has "
                         f"{arm_components[components].iloc[r, c]!r}")
    if "arm" in arm_components.columns:
        arm = arm_components["arm"].astype(str)
        if "municipality" in arm_components.columns:
            arm = arm_components["municipality"].astype(str) + "/" + arm
        X.index = pd.Index(arm.to_numpy(), name="arm")
    X.columns = pd.Index(components, name="component")
    return X


@dataclass(frozen=True)
class Aliasing:
    """One group of components that the design cannot separate.

    Attributes
    ----------
    kind : str
        ``"never_given"`` (a zero column), ``"always_together"`` (identical
        columns: only their sum is identifiable) or ``"linear_dependence"``.
    components : tuple of str
        The components involved, in design order; none of them is identifiable
        on its own.
    estimable : tuple of str
        Combinations of these components the arms do identify (distinct arm
        patterns restricted to these components), e.g. ``"exemption + release"``.
    null_combinations : tuple of str
        A basis of the directions the data cannot see: adding any multiple of
        such a combination to the coefficients leaves every arm's effect unchanged.
    statement : str
        The plain-English explanation.
    """

    kind: str
    components: tuple
    estimable: tuple
    null_combinations: tuple
    statement: str

    def __str__(self) -> str:
        return self.statement


class Identifiability(NamedTuple):
    """``(rank, issues)`` returned by :func:`identifiability`."""

    rank: int
    issues: list

    @property
    def non_identifiable(self) -> tuple:
        """Names of the components that are not identifiable on their own."""
        return tuple(c for issue in self.issues for c in issue.components)

    @property
    def statement(self) -> str:
        """All statements joined, or a sentence saying every component is identifiable."""
        if not self.issues:
            return "All components are identifiable from the available arms."
        return " ".join(issue.statement for issue in self.issues)


def _join(words: Sequence[str], conj: str = "and") -> str:
    words = list(words)
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + f" {conj} " + words[-1]


def _fmt_coef(c: float) -> str:
    c = float(c)
    return f"{c:.6g}" if abs(c - round(c)) > 1e-9 else str(int(round(c)))


def _combo(coefs: np.ndarray, names: Sequence[str], tol: float) -> str:
    """``[1, 0, 1]`` -> ``"a + c"``; ``[1, -1, 0]`` -> ``"a - b"``; ``[2, 1]`` -> ``"2*a + b"``."""
    parts = []
    for c, n in zip(coefs, names):
        if abs(c) <= tol:
            continue
        mag = abs(c)
        term = n if abs(mag - 1.0) <= tol else f"{_fmt_coef(mag)}*{n}"
        if not parts:
            parts.append(term if c > 0 else f"-{term}")
        else:
            parts.append(("+ " if c > 0 else "- ") + term)
    return " ".join(parts) if parts else "0"


def _rref(A: np.ndarray, tol: float) -> tuple[np.ndarray, list[int]]:
    """Reduced row echelon form (partial pivoting) and the pivot columns."""
    A = np.array(A, dtype=float)
    m, n = A.shape
    pivots: list[int] = []
    r = 0
    for c in range(n):
        if r == m:
            break
        i = r + int(np.argmax(np.abs(A[r:, c])))
        if abs(A[i, c]) <= tol:
            A[r:, c] = 0.0
            continue
        A[[r, i]] = A[[i, r]]
        A[r] /= A[r, c]
        for j in range(m):
            if j != r and A[j, c] != 0.0:
                A[j] -= A[j, c] * A[r]
        pivots.append(c)
        r += 1
    A[np.abs(A) <= tol] = 0.0
    return A[:r], pivots


def identifiability(X, names: Sequence[str] | None = None) -> Identifiability:
    """Which columns (components) of a design the data can estimate, in plain English.

    A coefficient beta_j is identifiable iff the unit vector e_j lies in the row
    space of X, i.e. iff every vector of the null space of X is 0 at j. The rank
    is computed from the singular values (tolerance max(n, p) * eps * s_max, as
    ``numpy.linalg.matrix_rank``); the null space comes from the reduced row
    echelon form, whose basis vectors are the design's fundamental circuits.
    Components linked through a common null vector form one aliased group;
    groups are reported as:

    * a component in no arm (zero column): "X is not given in any of the
      available arms, so its effect is not identifiable.";
    * components with identical columns: "A and B are always given together in
      the available arms, so only their sum is identifiable.";
    * any other linear dependence: which combinations the arms give, how many
      independent combinations are estimable, and which component is part of
      every one of those arms.

    Parameters
    ----------
    X : array_like or DataFrame, shape (n_arms, p)
        Design matrix, e.g. from :func:`component_design`.
    names : sequence of str, optional
        Column names; default the DataFrame columns or ``"X1"``, ``"X2"``, ...

    Returns
    -------
    Identifiability
        A named tuple ``(rank, issues)``: ``issues`` is a list of
        :class:`Aliasing` (empty when every column is identifiable); ``str(issue)``
        is its statement. ``.non_identifiable`` lists the affected components and
        ``.statement`` joins the statements.

    Examples
    --------
    >>> X = pd.DataFrame({"exemption": [1, 0], "intensive": [0, 1], "release": [1, 0]})
    >>> rank, issues = identifiability(X)
    >>> rank, str(issues[0])
    (2, 'exemption and release are always given together in the available arms, so only their sum is identifiable.')
    """
    if names is None:
        names = [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None
    A = np.asarray(X, dtype=float)
    if A.ndim == 1:
        A = A[:, None]
    if A.ndim != 2 or A.shape[1] == 0:
        raise ValueError(f"X must be a 2-D design matrix; got shape {np.shape(X)}")
    if not np.all(np.isfinite(A)):
        raise ValueError("X must be finite")
    n, p = A.shape
    names = [f"X{j + 1}" for j in range(p)] if names is None else [str(c) for c in names]
    if len(names) != p:
        raise ValueError(f"names has {len(names)} entries but X has {p} columns")

    rank = int(np.linalg.matrix_rank(A)) if n else 0
    scale = float(np.max(np.abs(A))) if A.size else 0.0
    tol = 1e-9 * max(scale, 1e-300)
    R, pivots = _rref(A, tol) if n else (np.zeros((0, p)), [])
    free = [j for j in range(p) if j not in pivots]
    null_basis = []
    for f in free:
        v = np.zeros(p)
        v[f] = 1.0
        for i, c in enumerate(pivots):
            v[c] = -R[i, f]
        v[np.abs(v) <= tol] = 0.0
        if v[np.flatnonzero(v)[0]] < 0:  # first non-zero coefficient positive, for reading
            v = -v
        null_basis.append(v)

    # components linked by a common null vector form one aliased group (union-find)
    parent = list(range(p))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    involved = set()
    for v in null_basis:
        supp = list(np.flatnonzero(v))
        involved.update(supp)
        for a in supp[1:]:
            parent[find(a)] = find(supp[0])
    groups: dict[int, list[int]] = {}
    for j in sorted(involved):
        groups.setdefault(find(j), []).append(j)

    issues = []
    for cols in sorted(groups.values(), key=lambda c: c[0]):
        gnames = [names[j] for j in cols]
        nulls = tuple(_combo(v[cols], gnames, tol) for v in null_basis if np.any(v[cols] != 0))
        sub = A[:, cols]
        if len(cols) == 1 and np.all(np.abs(sub) <= tol):
            issues.append(Aliasing(
                kind="never_given", components=(gnames[0],), estimable=(), null_combinations=nulls,
                statement=f"{gnames[0]} is not given in any of the available arms, so its effect is not identifiable."))
            continue
        rows = sub[np.any(np.abs(sub) > tol, axis=1)]
        distinct = []
        for r in rows:
            if not any(np.allclose(r, d, rtol=0, atol=tol) for d in distinct):
                distinct.append(r)
        combos = tuple(_combo(d, gnames, tol) for d in distinct)
        if np.allclose(sub, sub[:, :1], rtol=0, atol=tol):
            issues.append(Aliasing(
                kind="always_together", components=tuple(gnames), estimable=(" + ".join(gnames),),
                null_combinations=nulls,
                statement=(f"{_join(gnames)} are always given together in the available arms, "
                           "so only their sum is identifiable.")))
            continue
        r_g = int(np.linalg.matrix_rank(np.array(distinct))) if distinct else 0
        shown = list(combos[:6]) + ([f"... ({len(combos)} patterns in all)"] if len(combos) > 6 else [])
        text = (f"{_join(gnames)} are not separately identifiable: the available arms give only "
                f"{_join(shown)}, so only {r_g} independent combination{'s' if r_g != 1 else ''} "
                f"of these {len(cols)} components can be estimated")
        if len(distinct) >= 2:
            diff = _combo(distinct[0] - distinct[1], gnames, tol)
            those = "those sums" if all(np.all(np.isin(d, (0.0, 1.0))) for d in distinct) else "those combinations"
            if len(distinct) == 2:
                text += f" ({those} and their difference, {diff})"
            else:
                text += f" ({those} and differences between them, such as {diff})"
        text += "."
        always = [gnames[i] for i in range(len(cols)) if np.all(np.abs(rows[:, i]) > tol)]
        others = [g for g in gnames if g not in always]
        if always and others:
            text += (f" {_join(always)} {'is' if len(always) == 1 else 'are'} part of every one of these arms, "
                     f"so the arms never show {_join(others, 'or')} without "
                     f"{'it' if len(always) == 1 else 'them'}.")
        issues.append(Aliasing(kind="linear_dependence", components=tuple(gnames), estimable=combos,
                               null_combinations=nulls, statement=text))
    return Identifiability(rank=rank, issues=issues)

"""The multivariate model's likelihood at one tau2, by GLS, and the tau2 that maximises it.

For ``y = X beta + Z u + e`` with ``e ~ N(0, V)`` and ``u ~ N(0, tau2 I_g)`` the marginal covariance is
``M = V + tau2 Z Z'``. :class:`_State` computes the GLS fit, the (restricted) log-likelihood and its score in
tau2 through the Cholesky factor of M; :class:`_BlockState` does the same one group at a time when M is
block-diagonal by group; :func:`maximum_likelihood_tau2` finds the maximum over tau2 >= 0.

References
----------
Harville DA (1977). Maximum likelihood approaches to variance component estimation and to related problems.
JASA 72:320-338 (REML score and information).
Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat Softw 36(3):1-48.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from meta.models.roots import brentq

#: relative tolerance on tau2 for the root of the score equation
TAU2_RTOL = 1e-13


class _State:
    """GLS quantities at one tau2, computed through the Cholesky factor of M.

    With M = L L', whitened Xw = L^-1 X, yw = L^-1 y, Zw = L^-1 Z and the thin
    QR decomposition Xw = Q R:

    * beta = R^-1 Q' yw,  vcov = (X'M^-1 X)^-1 = R^-1 R^-T;
    * r = (I - QQ') yw, so r'r = (y - X beta)' M^-1 (y - X beta) and P y = L^-T r,
      with P = M^-1 - M^-1 X (X'M^-1 X)^-1 X'M^-1;
    * Z'P y = Zw' r and Z'P Z = Zw'Zw - (Q'Zw)'(Q'Zw).
    """

    def __init__(self, y, V, X, Z, tau2):
        M = V + tau2 * (Z @ Z.T) if tau2 != 0 else V
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
        self._ZtPZ, self._ZtMiZ = ZtPZ, ZtMiZ

    @functools.cached_property
    def info_reml(self) -> float:
        """The REML information on tau2, 1/2 ||Z'PZ||^2 (computed when asked: the search over tau2 needs only the
        score)."""
        return 0.5 * float(np.sum(self._ZtPZ * self._ZtPZ))

    @functools.cached_property
    def info_ml(self) -> float:
        """The ML information on tau2, 1/2 ||Z'M^-1 Z||^2 (computed when asked)."""
        return 0.5 * float(np.sum(self._ZtMiZ * self._ZtMiZ))

    def _gls(self, Xw, yw, logdet_M):
        """GLS fit on whitened data: beta = R^-1 Q' yw, vcov = R^-1 R^-T, rss = r'r with r = (I - QQ') yw.

        Sets ``rss, logdet_M, logdet_XtMiX`` (``beta`` and ``vcov`` when first asked: the search over tau2 evaluates
        the score and the likelihood at ~50 values and uses neither) and returns ``(Q, r)`` for the score pieces.
        """
        Q, R = np.linalg.qr(Xw)
        self._Q, self._R, self._yw = Q, R, yw
        r = yw - Q @ (Q.T @ yw)
        self.rss = float(r @ r)
        self.logdet_M = logdet_M
        self.logdet_XtMiX = 2.0 * float(np.sum(np.log(np.abs(np.diag(R)))))
        return Q, r

    @functools.cached_property
    def _Rinv(self):
        return np.linalg.solve(self._R, np.eye(self._R.shape[1]))

    @functools.cached_property
    def beta(self):
        """GLS coefficients R^-1 Q' yw."""
        return self._Rinv @ (self._Q.T @ self._yw)

    @functools.cached_property
    def vcov(self):
        """(X'M^-1 X)^-1 = R^-1 R^-T."""
        return self._Rinv @ self._Rinv.T

    def score(self, method):
        """d logLik / d tau2: 1/2 (y'P ZZ' P y - tr(P ZZ')) (REML) or with M^-1 in the trace (ML)."""
        return 0.5 * (self.quad - (self.tr_P if method == "REML" else self.tr_Mi))

    def loglik(self, method, k, p, logdet_XtX):
        """Log-likelihood at this tau2.

        REML: -(k-p)/2 log 2pi + 1/2 log|X'X| - 1/2 log|M| - 1/2 log|X'M^-1X| - 1/2 RSS;
        ML: -k/2 log 2pi - 1/2 log|M| - 1/2 RSS.
        """
        if method == "ML":
            return -0.5 * k * math.log(2 * math.pi) - 0.5 * self.logdet_M - 0.5 * self.rss
        return (-0.5 * (k - p) * math.log(2 * math.pi) + 0.5 * logdet_XtX - 0.5 * self.logdet_M
                - 0.5 * self.logdet_XtMiX - 0.5 * self.rss)


class _BlockState(_State):
    """The quantities of :class:`_State` when M is block-diagonal by group (V has no covariance across groups).

    Then M = blockdiag(V_g + tau2 11'), whitening is one small Cholesky per group, Zw has one non-zero column
    per group (L_g^-1 1), Z'M^-1 Z is diagonal (d_g = 1'M_g^-1 1) and, with A = Q'Zw (p x g),

        Z'P Z = diag(d) - A'A,   tr(Z'PZ) = sum d - ||A||^2,
        ||Z'PZ||^2 = sum d^2 - 2 sum_g d_g ||A_g||^2 + ||A A'||^2,

    so no k x k or g x g matrix is formed: the cost is linear in the number of groups instead of cubic in k.
    Same formulas as :class:`_State`; the numbers agree to rounding.
    """

    def __init__(self, y, V, X, Z, tau2, layout, blocks=None):
        codes, by_size = layout
        k, p = X.shape
        G = Z.shape[1]
        Xw = np.empty_like(X)
        yw = np.empty(k)
        zw = np.empty(k)
        logdet = 0.0
        for idx, (Vb, rhs) in zip(by_size, blocks or block_inputs(y, V, X, layout)):
            # idx: (n, s) row indices of n groups of size s
            Lb = np.linalg.cholesky(Vb + tau2)
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
        self.quad = float(zr @ zr)
        self.tr_P = float(np.sum(d) - np.sum(a2))
        self.tr_Mi = float(np.sum(d))
        self._d, self._a2, self._A = d, a2, A

    @functools.cached_property
    def info_reml(self) -> float:
        """1/2 ||Z'PZ||^2 = 1/2 (sum d^2 - 2 sum d ||A_g||^2 + ||A A'||^2), computed when asked."""
        d, a2, A = self._d, self._a2, self._A
        AAt = A @ A.T
        return 0.5 * float(np.sum(d * d) - 2.0 * np.sum(d * a2) + np.sum(AAt * AAt))

    @functools.cached_property
    def info_ml(self) -> float:
        """1/2 sum d^2, computed when asked."""
        return 0.5 * float(np.sum(self._d * self._d))


def _block_layout(V, Z):
    """(group code per row, [row indices of the groups of each size]) when V has no covariance across the groups
    of Z (one 1 per row), else None: then M = V + tau2 ZZ' is block-diagonal and :class:`_BlockState` applies."""
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


def block_inputs(y, V, X, layout) -> list:
    """Per group size of ``layout``: the groups' blocks of V, (n, s, s), and the right-hand sides [X y 1], (n, s,
    p + 2), that :class:`_BlockState` whitens; they do not depend on tau2."""
    return [(V[idx[:, :, None], idx[:, None, :]],
             np.concatenate([X[idx], y[idx][:, :, None], np.ones(idx.shape + (1,))], axis=2)) for idx in layout[1]]


def state_factory(V, Z):
    """``state(y, X, tau2)``: :class:`_BlockState` when M is block-diagonal by group, else the dense
    :class:`_State`. The block inputs of the last (y, X) are kept: the search over tau2 evaluates many tau2 at the
    same data."""
    layout = _block_layout(V, Z)
    if layout is None:
        return lambda y, X, s2: _State(y, V, X, Z, s2)
    last: list = []  # [(y, X, block_inputs)] of the last call

    def state(y, X, s2):
        if not (last and last[0][0] is y and last[0][1] is X):
            last[:] = [(y, X, block_inputs(y, V, X, layout))]
        return _BlockState(y, V, X, Z, s2, layout, last[0][2])

    return state


def maximum_likelihood_tau2(y, V, X, Z, method) -> tuple[float, bool]:
    """Maximise the (restricted) log-likelihood over tau2 >= 0.

    The score is evaluated on tau2 = 0 and a log-spaced grid up to an upper
    bound where the score is negative. Each sign change from + to - brackets a
    local maximum, which Brent's method refines on the score equation (relative
    tolerance ``TAU2_RTOL``); tau2 = 0 is a candidate when the score there
    is <= 0. The candidate with the largest log-likelihood wins.
    """
    k, p = X.shape
    logdet_XtX = 2.0 * float(np.sum(np.log(np.abs(np.diag(np.linalg.qr(X)[1])))))
    state, states = state_factory(V, Z), {}

    def at(s2):  # each tau2 fitted once: brentq starts at the grid points and returns a point it evaluated
        st = states.get(s2)
        if st is None:
            st = states[s2] = state(y, X, s2)
        return st

    score = lambda s2: at(s2).score(method)  # noqa: E731
    loglik = lambda s2: at(s2).loglik(method, k, p, logdet_XtX)  # noqa: E731

    s0 = score(0.0)
    yvar = float(np.var(y, ddof=1)) if k > 1 else 0.0
    upper = 10.0 * max(yvar, float(np.max(np.diag(V))))
    converged = True
    for _ in range(60):
        if score(upper) < 0:
            break
        upper *= 10.0
    else:
        converged = False  # the likelihood still increases at a huge tau2
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
            root, info = brentq(score, grid[i], grid[i + 1], xtol=1e-300, rtol=TAU2_RTOL, maxiter=1000,
                                full_output=True, disp=False)
            candidates.append((float(root), bool(info.converged)))
    if not candidates:  # score > 0 everywhere up to `upper`
        return float(upper), False
    best = max(candidates, key=lambda c: loglik(c[0]))
    return best[0], converged and best[1]

"""The known sampling covariance V of the multivariate model: arms that share a control group, and groups.

A municipality that randomised several treatment arms against one control group reports one effect per arm,
``y_i = p_arm,i - p_control``. Those effects are correlated, because every one of them subtracts the same
control-group estimate (Gleser & Olkin 2009); across municipalities they are independent, so V is
block-diagonal by municipality.

References
----------
Gleser LJ, Olkin I (2009). Stochastically dependent effect sizes. In: Cooper H, Hedges LV, Valentine JC (eds),
The Handbook of Research Synthesis and Meta-Analysis, 2nd ed., ch. 19, pp. 357-376. New York: Russell Sage
Foundation.
"""

from __future__ import annotations

import math

import numpy as np

#: relative asymmetry of a covariance that is still accepted as rounding
SYMMETRY_RTOL = 1e-10


def shared_control_cov(p_control: float, n_control: float, var_arm, points_per_share: float = 1.0) -> np.ndarray:
    r"""Sampling covariance of several arm-minus-control differences in shares from one municipality.

    For arms i = 1..m compared with one control group (share p0, size n0),
    :math:`y_i = \hat p_i - \hat p_0` and

    .. math::

        \operatorname{Var}(y_i) = \frac{p_i(1-p_i)}{n_i} + \frac{p_0(1-p_0)}{n_0}, \qquad
        \operatorname{Cov}(y_i, y_j) = \operatorname{Var}(\hat p_0) = \frac{p_0(1-p_0)}{n_0}
        \quad (i \ne j),

    because the arms are independent samples and only the control term is
    shared (Gleser & Olkin 2009, eq. 19.20 for risk differences). With effects
    in percentage points, y_i = 100 (p_i - p_0), every element is 100² times
    as large (``points_per_share=100``).

    Parameters
    ----------
    p_control : float
        Control-group share p0, 0 <= p0 <= 1.
    n_control : float
        Control-group size n0 > 0.
    var_arm : array_like, shape (m,)
        Sampling variance of each arm's difference (the full Var(y_i), which
        already contains the control term), in the units of the effects. Each
        must be at least the control's own variance.
    points_per_share : float, default 1
        Units of the effects per unit of share: 1 for differences in shares,
        100 for percentage points. The covariance is points_per_share² p0(1-p0)/n0.

    Returns
    -------
    ndarray, shape (m, m)
        Diagonal ``var_arm``, every off-diagonal element
        points_per_share² p0(1-p0)/n0.

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
    if not (math.isfinite(points_per_share) and points_per_share > 0):
        raise ValueError(f"points_per_share must be finite and > 0; got {points_per_share!r}")
    c = points_per_share**2 * p0 * (1.0 - p0) / n0
    if np.any(v < c * (1.0 - 1e-12)):
        i = int(np.flatnonzero(v < c * (1.0 - 1e-12))[0])
        factor = "" if points_per_share == 1 else f"{points_per_share:g}²·"
        raise ValueError(
            f"arm {i} has variance {v[i]:.6g}, below the control group's own variance "
            f"{factor}p0(1-p0)/n0 = {c:.6g}; the variance of an arm-minus-control difference includes the "
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
        ``scipy.linalg.block_diag(*blocks)`` (zeros, each block copied into its place), with k the sum of the
        block sizes; scipy.linalg is not imported for it (~0.04 s of CPU in ``meta run``'s main process).
    """
    same = _same_shape(blocks)
    if same is not None:
        return same
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
        if np.max(np.abs(a - a.T)) > SYMMETRY_RTOL * max(np.max(np.abs(a)), 1e-300):
            raise ValueError(f"block {i} is not symmetric")
        mats.append(a)
    if not mats:
        raise ValueError("no blocks given")
    k = sum(a.shape[0] for a in mats)
    out, at = np.zeros((k, k)), 0
    for a in mats:
        out[at:at + a.shape[0], at:at + a.shape[0]] = a
        at += a.shape[0]
    return out


def _same_shape(blocks) -> np.ndarray | None:
    """:func:`block_diag_cov` of blocks that are all 2-D arrays of one square shape (every municipality with the same
    number of arms), checked and placed all at once; None for any other blocks, or when a check fails (then
    :func:`block_diag_cov`'s loop names the first bad block)."""
    if not isinstance(blocks, (list, tuple)) or not blocks:
        return None
    shape = getattr(blocks[0], "shape", None)
    if not (shape is not None and len(shape) == 2 and shape[0] == shape[1]
            and all(isinstance(b, np.ndarray) and b.shape == shape for b in blocks)):
        return None
    A = np.asarray(blocks, dtype=float)
    if not np.all(np.isfinite(A)):
        return None
    asym = np.max(np.abs(A - A.transpose(0, 2, 1)), axis=(1, 2))
    if np.any(asym > SYMMETRY_RTOL * np.maximum(np.max(np.abs(A), axis=(1, 2)), 1e-300)):
        return None
    n, s = A.shape[0], shape[0]
    out = np.zeros((n * s, n * s))
    at = np.arange(n * s).reshape(n, s)
    out[at[:, :, None], at[:, None, :]] = A
    return out

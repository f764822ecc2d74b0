"""How the reports print a regression, and the standard errors reconstructed from what they print.

``reported``: estimate and SE as proportions with three decimals. ``marks-*``: the estimate with two decimals and
Nijmegen's mark; the SE comes back through the functions :mod:`meta.effects.harmonise` uses (one place for the
rules, :mod:`meta.effects.se`): :func:`~meta.effects.se.mark_bracket`, :func:`~meta.effects.se.range_bound`,
:func:`~meta.effects.se.common_se` and :func:`~meta.effects.se.se_from_bracket`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from meta.effects.se import common_se as common_se_constraint
from meta.effects.se import half_unit, mark_bracket, range_bound, se_from_bracket
from meta.simulate.settings import (DECIMALS_WITH_MARKS, DECIMALS_WITH_SE, NIJMEGEN_LEGEND, POOLED_ARM, SE_POLICIES,
                                    SHARE_RANGE_PP)
from meta.simulate.trials import Trials


def print_with_se(estimate, se, decimals: int = DECIMALS_WITH_SE):
    """Estimate and SE (pp) as a report prints them with ``decimals`` decimals of a proportion; back in pp."""
    f = 10.0 ** decimals
    return np.round(np.asarray(estimate) / 100 * f) / f * 100, np.round(np.asarray(se) / 100 * f) / f * 100


def mark_of(pval) -> np.ndarray:
    """Nijmegen's marks: ``*`` p < 0.05, ``~`` 0.05 ≤ p < 0.10, empty otherwise."""
    pval = np.asarray(pval)
    return np.where(pval < 0.05, "*", np.where(pval < 0.10, "~", ""))


def print_with_marks(estimate, pval, decimals: int = DECIMALS_WITH_MARKS):
    """What a marks-only table shows: the estimate (pp) rounded to ``decimals`` decimals of a proportion, its mark,
    and h, half a unit of the last printed decimal in pp (:func:`meta.effects.se.half_unit`)."""
    f = 10.0 ** decimals
    printed = np.round(np.asarray(estimate) / 100 * f) / f
    h = half_unit(f"{-0.11:.{decimals}f}") * 100.0
    return printed * 100.0, mark_of(pval), h


@lru_cache(maxsize=None)
def _bracket(abs_est: float, h: float, mark: str) -> tuple[float, float]:
    p_below, p_at_least = NIJMEGEN_LEGEND[mark]
    return mark_bracket(abs_est, h, p_below, p_at_least)


def reconstruct_se(printed, marks, h: float, n_arm, n_control: int, policy: str, common_se: bool = True):
    """Standard errors of one municipality's arm-versus-control rows reconstructed from their marks.

    The same functions as :func:`meta.effects.harmonise.harmonise`: :func:`~meta.effects.se.mark_bracket`,
    :func:`~meta.effects.se.range_bound`, :func:`~meta.effects.se.common_se` and
    :func:`~meta.effects.se.se_from_bracket`.

    Parameters
    ----------
    printed, marks : (R, a) arrays of printed estimates (pp) and marks of the a arms of one regression.
    h : half a unit of the last printed decimal (pp).
    n_arm : the a arm sizes; n_control : the control group's size.
    policy : ``central`` or ``conservative`` (:func:`meta.effects.se.se_from_bracket`).
    common_se : apply harmonise's common-SE constraint across the a rows of each replication.

    Returns
    -------
    sei, sei_low, sei_high : (R, a) arrays.
    """
    printed = np.asarray(printed, float)
    marks = np.asarray(marks)
    abs_est = np.round(np.abs(printed), 9)        # exact keys for the cache (printed values are on a grid)
    lo = np.empty(printed.shape)
    hi = np.empty(printed.shape)
    for idx in np.ndindex(printed.shape):
        lo[idx], hi[idx] = _bracket(float(abs_est[idx]), float(h), str(marks[idx]))
    n_arm = np.asarray(n_arm, float)
    cap = np.array([range_bound(SHARE_RANGE_PP, na, n_control) for na in n_arm])
    hi = np.minimum(hi, cap[None, :])
    if common_se and printed.shape[1] >= 2:
        lo, hi = common_se_constraint(lo, hi, np.sqrt(1 / n_arm + 1 / n_control)[None, :])
    p_below = np.vectorize(lambda m: NIJMEGEN_LEGEND[m][0], otypes=[float])(marks)
    p_at_least = np.vectorize(lambda m: NIJMEGEN_LEGEND[m][1], otypes=[float])(marks)
    return se_from_bracket(lo, hi, policy, np.abs(printed), p_below, p_at_least), lo, hi


@dataclass
class Printed:
    """The pooled arm's (yi, sei) per municipality and SE policy, arrays (reps,), plus diagnostics."""

    yi: dict
    sei: dict
    true_se: np.ndarray
    theta: np.ndarray
    mark: np.ndarray
    bracket: tuple[np.ndarray, np.ndarray]


def print_municipality(trials: Trials, policies=SE_POLICIES) -> Printed:
    """Print one municipality's regression the way the reports do, under every SE policy."""
    m = trials.municipality
    j = m.treatment_arms.index(POOLED_ARM)
    yi, sei = {}, {}
    if "reported" in policies:
        y, s = print_with_se(trials.estimate[:, j], trials.se[:, j])
        yi["reported"], sei["reported"] = y, s
    printed, marks, h = print_with_marks(trials.estimate, trials.pval)
    n_arm = [m.n(x) for x in m.treatment_arms]
    lo = hi = None
    for policy in policies:
        if policy.startswith("marks-"):
            s, lo, hi = reconstruct_se(printed, marks, h, n_arm, m.n_control, policy.split("-", 1)[1])
            yi[policy], sei[policy] = printed[:, j], s[:, j]
    if lo is None:
        _, lo, hi = reconstruct_se(printed, marks, h, n_arm, m.n_control, "central")
    return Printed(yi, sei, trials.se[:, j], trials.theta[:, j], marks[:, j], (lo[:, j], hi[:, j]))

"""Brent's bracketing root finder, the same steps and the same root as ``scipy.optimize.brentq``, bit for bit.

scipy.optimize is not imported for it: its import costs ~0.2 s of CPU (it loads scipy.sparse, scipy.spatial,
scipy.fft and the HiGHS solver), more than every root ``meta run`` finds, and ``meta run`` needs nothing else of it
(``python -X importtime``; tests/benchmarks/bench_start.py). :func:`brentq` is the algorithm of scipy's C routine
(``scipy/optimize/Zeros/brentq.c``, by Charles Harris; BSD licence) in Python: the same IEEE double operations in
the same order, so the same iterates, function calls and root (tests/test_roots.py compares every root with
scipy's). Brent (1973), *Algorithms for Minimization Without Derivatives*, ch. 4: inverse quadratic extrapolation
or secant steps while they shrink the bracket fast enough, else bisection; it stops when half the bracket is
below ``delta = (xtol + rtol·|x|) / 2`` or f(x) = 0.
"""

from __future__ import annotations

import math
import operator
import sys
from typing import NamedTuple

#: scipy.optimize.brentq's defaults: absolute and (smallest allowed) relative tolerance, iterations
XTOL = 2e-12
RTOL = 4 * sys.float_info.epsilon
MAXITER = 100


class RootResults(NamedTuple):
    """What ``full_output=True`` returns besides the root (the fields of scipy's ``RootResults`` meta reads)."""

    root: float
    iterations: int
    converged: bool


def brentq(f, a: float, b: float, xtol: float = XTOL, rtol: float = RTOL, maxiter: int = MAXITER,
           full_output: bool = False, disp: bool = True):
    """A root of ``f`` in [a, b], where f(a) and f(b) differ in sign, by Brent's method (``scipy.optimize.brentq``).

    Parameters
    ----------
    f : callable
        ``f(x)`` of a float, returning a number; a NaN stops the search with ValueError.
    a, b : float
        The bracket.
    xtol, rtol : float
        The root is within ``xtol + rtol·|root|`` of the exact one; ``xtol > 0``, ``rtol ≥ 4·eps``.
    maxiter : int
        At most this many iterations; then RuntimeError (``disp``), or the last iterate with ``converged=False``.
    full_output, disp : bool
        As in scipy: return ``(root, RootResults)``; raise when not converged.

    Returns
    -------
    float, or (float, RootResults) with ``full_output``
    """
    if xtol <= 0:
        raise ValueError(f"xtol too small ({xtol:g} <= 0)")
    if rtol < RTOL:
        raise ValueError(f"rtol too small ({rtol:g} < {RTOL:g})")
    maxiter = operator.index(maxiter)
    if maxiter < 0:
        raise ValueError("maxiter must be >= 0")
    root, iterations, converged = _search(f, float(a), float(b), float(xtol), float(rtol), maxiter)
    if not converged and disp:
        raise RuntimeError(f"Failed to converge after {iterations} iterations.")
    if full_output:
        return root, RootResults(root, iterations, converged)
    return root


def _value(f, x: float) -> float:
    """f(x) as a float; a NaN raises ValueError, as scipy's wrapper does."""
    fx = float(f(x))
    if math.isnan(fx):
        raise ValueError(f"The function value at x={x} is NaN; solver cannot continue.")
    return fx


def _search(f, xpre: float, xcur: float, xtol: float, rtol: float, maxiter: int) -> tuple[float, int, bool]:
    """(root, iterations, converged) of brentq.c's loop. xcur is the newest iterate, xpre the one before, xblk
    the end of the bracket [xcur, xblk] opposite it; scur and spre the last two steps."""
    fpre, fcur = _value(f, xpre), _value(f, xcur)
    if fpre == 0:  # brentq.c: a root at either end first, then the signs; no iteration ran (brentq.c returns
        return xpre, 0, True  # before it sets its count, so scipy reports whatever that memory held: 1 or garbage)
    if fcur == 0:
        return xcur, 0, True
    if math.copysign(1.0, fpre) == math.copysign(1.0, fcur):  # C's signbit; fpre * fcur > 0 underflows to 0
        raise ValueError("f(a) and f(b) must have different signs")
    xblk = fblk = spre = scur = 0.0
    for i in range(maxiter):
        if fpre != 0 and fcur != 0 and (fpre < 0) != (fcur < 0):  # C's signbit: -0.0 is excluded, NaN raised
            xblk, fblk = xpre, fpre
            spre = scur = xcur - xpre
        if abs(fblk) < abs(fcur):
            xpre, xcur, xblk = xcur, xblk, xcur
            fpre, fcur, fblk = fcur, fblk, fcur
        delta = (xtol + rtol * abs(xcur)) / 2
        sbis = (xblk - xcur) / 2
        if fcur == 0 or abs(sbis) < delta:
            return xcur, i + 1, True
        if abs(spre) > delta and abs(fcur) < abs(fpre):
            stry = _trial_step(xpre, xcur, xblk, fpre, fcur, fblk)
            take = 2 * abs(stry) < min(abs(spre), 3 * abs(sbis) - delta)  # min is C's MIN: neither is NaN
            spre, scur = (scur, stry) if take else (sbis, sbis)
        else:
            spre = scur = sbis
        xpre, fpre = xcur, fcur
        xcur += scur if abs(scur) > delta else (delta if sbis > 0 else -delta)
        fcur = _value(f, xcur)
    return xcur, maxiter, False


def _trial_step(xpre, xcur, xblk, fpre, fcur, fblk) -> float:
    """The secant step (xpre is xblk) or the inverse quadratic extrapolation step from xcur.

    Where C divides by zero (a flat stretch of f) it gets ±inf or NaN, and the step is then never taken
    (``2·|stry| < …`` is false); Python raises ZeroDivisionError instead, answered with inf: the same bisection.
    """
    try:
        if xpre == xblk:
            return -fcur * (xcur - xpre) / (fcur - fpre)
        dpre = (fpre - fcur) / (xpre - xcur)
        dblk = (fblk - fcur) / (xblk - xcur)
        return -fcur * (fblk * dblk - fpre * dpre) / (dblk * dpre * (fblk - fpre))
    except ZeroDivisionError:
        return math.inf

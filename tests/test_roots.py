"""meta.models.roots.brentq against scipy.optimize.brentq, whose algorithm it is: the same root, bit for bit, and the
same errors (the reference is scipy's C routine, imported here only)."""
import math
import random

import numpy as np
import pytest
from scipy import optimize, special

from meta.models.roots import RTOL, brentq


def _functions(rng: random.Random, n: int):
    """(f, a, b) brackets of several shapes: odd powers (slow convergence at a multiple root), normal mixtures' CDFs
    (what meta's Bayesian quantiles solve), steep tanh, a wiggly exponential, clipped ramps (flat stretches with
    equal values: the divisions by zero of the extrapolation) and scaled quadratics from 1e-320 (subnormal values
    whose product underflows to -0.0) to 1e300 (overflow to inf)."""
    for _ in range(n):
        kind = rng.randrange(6)
        if kind == 0:
            c, p = rng.uniform(-5, 5), rng.choice([1, 3, 5])
            yield (lambda x, c=c, p=p: (x - c) ** p), c - rng.uniform(0.01, 10), c + rng.uniform(0.01, 10)
        elif kind == 1:
            w, p = np.array([rng.random() for _ in range(4)]), rng.random()
            m, s = np.array([rng.gauss(0, 1) for _ in range(4)]), np.array([rng.uniform(.1, 2) for _ in range(4)])
            yield (lambda x, w=w / w.sum(), m=m, s=s, p=p: float(special.ndtr((x - m) / s) @ w) - p), -20.0, 20.0
        elif kind == 2:
            k = rng.uniform(0.1, 50)
            yield (lambda x, k=k: math.tanh(k * (x - 0.3))), -1.0, 2.0
        elif kind == 3:
            yield (lambda x: math.exp(x) - 2.0 + 1e-3 * math.sin(50 * x)), rng.uniform(-3, 0.5), rng.uniform(0.8, 4)
        elif kind == 4:
            c = rng.uniform(-1, 1)
            yield (lambda x, c=c: max(-1.0, min(1.0, 1e3 * (x - c)))), -2.0, 2.0
        else:
            s = 10 ** rng.uniform(-320, 300)
            yield (lambda x, s=s: s * (x * x - 2)), 0.0, rng.uniform(1.5, 1e5)


def _outcome(solver, f, a, b, **options):
    """(root, converged, iterations), or (error type, message)."""
    try:
        root, info = solver(f, a, b, full_output=True, disp=False, **options)
        return root, math.copysign(1.0, root), bool(info.converged), info.iterations
    except (ValueError, RuntimeError) as err:
        return type(err), str(err)


def test_brentq_returns_scipys_root_bit_for_bit_and_its_iterations_on_2400_brackets_and_tolerances():
    rng = random.Random(15)
    options = ({}, {"xtol": 1e-300, "rtol": 1e-13, "maxiter": 1000}, {"xtol": 1e-15, "rtol": RTOL},
               {"xtol": 1e-3, "rtol": 1e-6}, {"maxiter": 4})
    compared = 0
    for f, a, b in _functions(rng, 480):
        for opts in options:
            assert _outcome(brentq, f, a, b, **opts) == _outcome(optimize.brentq, f, a, b, **opts), (a, b, opts)
            compared += 1
    assert compared == 2400


def test_brentq_without_full_output_returns_the_float_scipy_returns_and_an_end_that_is_a_root():
    f = lambda x: x ** 3 - 2 * x - 5  # noqa: E731
    assert brentq(f, 2.0, 3.0) == optimize.brentq(f, 2.0, 3.0) and isinstance(brentq(f, 2.0, 3.0), float)
    assert brentq(lambda x: x, 0.0, 1.0) == 0.0 and brentq(lambda x: x - 1, 0.0, 1.0) == 1.0


def test_brentq_raises_what_scipy_raises_for_a_bracket_without_sign_change_a_nan_or_too_few_iterations():
    cases = [(lambda x: x * x + 1, -1.0, 1.0, {}), (lambda x: math.nan if x > 0.5 else x - 0.7, 0.0, 1.0, {}),
             (lambda x: x ** 3 - 0.3, 0.0, 1.0, {"maxiter": 3})]
    for f, a, b, opts in cases:
        with pytest.raises((ValueError, RuntimeError)) as ours:
            brentq(f, a, b, **opts)
        with pytest.raises((ValueError, RuntimeError)) as theirs:
            optimize.brentq(f, a, b, **opts)
        assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))


def test_brentq_refuses_tolerances_scipy_refuses():
    for opts, message in (({"xtol": 0.0}, "xtol too small"), ({"rtol": RTOL / 2}, "rtol too small")):
        with pytest.raises(ValueError, match=message):
            brentq(lambda x: x, -1.0, 1.0, **opts)
        with pytest.raises(ValueError, match=message):
            optimize.brentq(lambda x: x, -1.0, 1.0, **opts)


@pytest.mark.parametrize("f, a, b", [
    (lambda x: x, 0.0, 1.0),  # the root at the lower end
    (lambda x: x - 1, 0.0, 1.0),  # at the upper end
    (lambda x: x, -0.0, 1.0),  # at a negative zero
    (lambda x: 1e-200 * (x - 0.5) * 1e-200, 0.0, 1.0),  # f(a) = -0.0, f(b) = +0.0
], ids=["lower", "upper", "negative zero", "signed zeros"])
def test_brentq_returns_a_root_at_a_bracket_end_as_scipy_does_after_no_iteration(f, a, b):
    """scipy's iteration count is not compared here: brentq.c returns a root at a bracket end before it sets the
    count, so scipy reports uninitialised memory (1 when run alone, -674354256 once in the full suite)."""
    ours, theirs = brentq(f, a, b, full_output=True), optimize.brentq(f, a, b, full_output=True)
    assert (ours[0], math.copysign(1, ours[0]), ours[1].converged) == (
        theirs[0], math.copysign(1, theirs[0]), theirs[1].converged)
    assert ours[1].iterations == 0


def test_brentq_refuses_ends_of_the_same_sign_whose_product_underflows_as_scipy_does():
    # f(a) = 2e-200 and f(b) = 3e-200: their product is 0 in doubles; the signs are compared, not the product
    def f(x):
        return 1e-200 * (x + 2)

    with pytest.raises(ValueError, match="different signs") as theirs:
        optimize.brentq(f, 0.0, 1.0)
    with pytest.raises(ValueError, match="different signs") as ours:
        brentq(f, 0.0, 1.0)
    assert str(ours.value) == str(theirs.value)

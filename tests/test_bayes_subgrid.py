"""The grid's convergence check decides without the subgrid's quantiles where they certainly agree (same bits).

meta.models.bayes._integrate stops refining when the summaries of the grid and of its every-other-node subgrid agree
to REL_TOL (_max_change). The subgrid's quantiles need not be found for that: _subgrid_agrees shows that each lies
within a quarter of the allowed change of the grid's (mixtures.mixture_quantiles_within, grid_quantiles_within: the
CDF or the partial integral on either side), and falls back to computing them when it cannot. The tests check that
the ranges are told apart exactly as the roots fall, that an agreement it shows is one _max_change finds, and that
every field of every fit is the same to the last bit with and without it.
"""
from __future__ import annotations

import struct

import numpy as np
import pytest

from meta.models import bayes
from meta.models.mixtures import (grid_quantiles, grid_quantiles_within, mixture_quantiles,
                                  mixture_quantiles_within)

PROBS = (0.025, 0.5, 0.975)

#: (yi, vi, tau_prior_scale, keyword arguments): few studies, one study, both τ priors, a normal μ prior, δ, τ far
#: in the prior's tail
FITS = [
    ([-12.0], [28.66**2], 5.0, {"delta": 2.0}),
    ([-0.0778, -0.09], [3.056, 3.2], 0.25, {}),
    ([-10.0, -4.0, 2.0], [4.8**2, 5.6**2, 5.7**2], 5.0, {"delta": 1.0}),
    ([-10.0, -4.0, 2.0], [4.8**2, 5.6**2, 5.7**2], 5.0, {"tau_prior": "halfcauchy"}),
    ([1.0, 3.0, -2.0, 0.5], [1.0, 2.0, 1.5, 0.8], 2.0, {"mu_prior_sd": 3.0, "level": 80}),
    ([-1000.0, 1000.0], [1.0, 1.0], 5.0, {}),
]


def bits(result) -> tuple:
    return tuple(struct.pack("<d", v) if isinstance(v, float) else v for v in vars(result).values())


def mixture(seed=0, n=257):
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.0, 1.0, n)
    return weights / weights.sum(), rng.normal(0.0, 3.0, n), rng.uniform(0.5, 9.0, n)


def test_mixture_quantiles_are_within_exactly_the_ranges_that_hold_them():
    weights, means, variances = mixture()
    q, _, sd = mixture_quantiles(PROBS, weights, means, variances)
    d = 1e-7 * sd
    assert mixture_quantiles_within(PROBS, weights, means, variances, q - d, q + d)
    assert not mixture_quantiles_within(PROBS, weights, means, variances, q + d, q + 2 * d)
    assert not mixture_quantiles_within(PROBS, weights, means, variances, q - 2 * d, q - d)
    one_off = q.copy()
    one_off[1] += 2 * d
    assert not mixture_quantiles_within(PROBS, weights, means, variances, one_off - d, one_off + d)


def density(x):
    return x**2 * np.exp(-x)


@pytest.mark.parametrize("d", [1e-9, 1e-4, 1.0])  # inside the root's grid interval, and wider than it (no search)
def test_grid_quantiles_are_within_exactly_the_ranges_that_hold_them(d):
    u = np.linspace(0.0, 40.0, 513)
    q = grid_quantiles(u, density, PROBS)
    assert grid_quantiles_within(u, density, PROBS, q - d, q + d)
    assert not grid_quantiles_within(u, density, PROBS, q + d, q + 2 * d)
    assert not grid_quantiles_within(u, density, PROBS, q - 2 * d, q - d)


@pytest.fixture(scope="module")
def checks():
    """The (grid size, grid's summaries, subgrid's arguments, changes) of the first convergence check of every fit of
    FITS from 8, 16, 32 and 1024 intervals (changes from ~1e-15 to ~1e15), and the check itself."""
    seen, original = [], bayes._subgrid_agrees

    def recording(current, *subgrid):
        seen.append((n, current, subgrid, bayes._max_change(current, bayes._summaries(*subgrid))))
        return original(current, *subgrid)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bayes, "_subgrid_agrees", recording)
        for n in (8, 16, 32, 1024):
            for y, v, s, kwargs in FITS:
                bayes.bayes_pool(y, v, s, grid_size=n, **kwargs)
    return seen, original


@pytest.mark.parametrize("rel_tol", [1e-3, 1e-5, 1e-7, 1e-9, 1e-12, 1e-16])
def test_an_agreement_is_shown_without_the_subgrid_quantiles_where_and_only_where_max_change_finds_it(
        rel_tol, checks, monkeypatch):
    seen, subgrid_agrees = checks
    monkeypatch.setattr(bayes, "REL_TOL", rel_tol)
    for n, current, subgrid, change in seen:
        agrees = subgrid_agrees(current, *subgrid)
        # shown: every quantile within a quarter of the tolerance, the probabilities within it
        assert not agrees or change <= rel_tol, (n, change)
        if change <= rel_tol / 8 and rel_tol >= 1e-9:  # well inside (and far from the quantiles' rounding): shown
            assert agrees, (n, change)


@pytest.mark.parametrize("y, v, s, kwargs", FITS)
def test_every_field_is_the_same_to_the_last_bit_without_the_shortcut(y, v, s, kwargs, monkeypatch):
    fast = bayes.bayes_pool(y, v, s, **kwargs)
    monkeypatch.setattr(bayes, "_subgrid_agrees", lambda *args: False)
    assert bits(fast) == bits(bayes.bayes_pool(y, v, s, **kwargs))

"""The two layouts of meta.models.conditional give the same bits (the Bayesian outputs stay byte-identical).

The posterior given τ is computed one row of k studies per τ for few nodes and one row of n nodes per study for many
(meta.models.conditional.conditional picks by size); numpy's row sums are pairwise, so the second layout adds the
studies in that order (pairwise_sum). Both are compared here on the bits, against numpy's own np.sum and against
each other, over sizes that cross numpy's summation thresholds (8 and 128 terms).
"""
from __future__ import annotations

import numpy as np
import pytest

from meta.models import conditional as cond

# study counts either side of numpy's thresholds of pairwise summation (< 8 terms one by one, blocks of 128)
STUDY_COUNTS = (1, 2, 3, 7, 8, 9, 15, 16, 17, 60, 127, 128, 129, 136, 300)


def same_bits(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and np.array_equal(a.view(np.int64), b.view(np.int64))


@pytest.mark.parametrize("m", STUDY_COUNTS)
def test_pairwise_sum_adds_in_the_order_of_np_sum_along_a_row(m):
    rng = np.random.default_rng(m)
    # magnitudes over 12 orders and both signs, so that any other order of the additions changes the last bits
    a = rng.lognormal(0.0, 4.0, (m, 257)) * rng.choice([-1.0, 1.0], (m, 257))
    assert same_bits(cond.pairwise_sum(a), np.ascontiguousarray(a.T).sum(axis=1))


def test_pairwise_sum_in_another_order_would_be_caught():
    rng = np.random.default_rng(0)
    a = rng.lognormal(0.0, 4.0, (60, 257)) * rng.choice([-1.0, 1.0], (60, 257))
    sequential = np.add.accumulate(a, axis=0)[-1]
    assert not same_bits(sequential, np.ascontiguousarray(a.T).sum(axis=1))


@pytest.mark.parametrize("k", STUDY_COUNTS)
@pytest.mark.parametrize("tau_prior, mu_prior_sd", [("halfnormal", None), ("halfcauchy", 10.0)])
def test_both_layouts_give_the_same_bits(k, tau_prior, mu_prior_sd):
    rng = np.random.default_rng(k)
    y, v = rng.normal(0.0, 5.0, k), rng.uniform(1.0, 40.0, k)
    tau = np.abs(rng.normal(0.0, 10.0, 1500))
    tau[0] = 0.0
    by_rows = cond._by_rows(tau, y, v, 5.0, mu_prior_sd, tau_prior)
    by_studies = cond._by_studies(tau, y, v, 5.0, mu_prior_sd, tau_prior)
    assert all(same_bits(a, b) for a, b in zip(by_rows, by_studies))


@pytest.mark.parametrize("n", [1, 8, cond.ROWS_BELOW - 1, cond.ROWS_BELOW, 1025, 8192 + 7])
def test_conditional_in_blocks_equals_one_row_per_tau(n, monkeypatch):
    rng = np.random.default_rng(n)
    y, v = rng.normal(0.0, 5.0, 60), rng.uniform(1.0, 40.0, 60)
    tau = np.linspace(0.0, 40.0, n)
    monkeypatch.setattr(cond, "BLOCK_VALUES", 60 * 100)  # blocks of 100 values of τ: several, the last one shorter
    assert all(same_bits(a, b) for a, b in zip(cond.conditional(tau, y, v, 5.0, None),
                                               cond._by_rows(tau, y, v, 5.0, None, "halfnormal")))

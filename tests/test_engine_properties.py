"""Properties of the pooling engine that must hold for any data (hypothesis), and its edge cases."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from meta.models.engine import METHODS, TESTS, PoolingError, pool, pool_batch

effects = st.lists(st.floats(-50, 50, allow_nan=False), min_size=2, max_size=6)
ses = st.floats(0.5, 8.0)


@st.composite
def municipal_sets(draw):
    yi = draw(effects)
    sei = [draw(ses) for _ in yi]
    return np.array(yi), np.array(sei) ** 2


@settings(max_examples=60, deadline=None)
@given(data=municipal_sets(), method=st.sampled_from(METHODS), test=st.sampled_from(TESTS), seed=st.integers(0, 10**6))
def test_study_order_does_not_matter(data, method, test, seed):
    yi, vi = data
    perm = np.random.default_rng(seed).permutation(len(yi))
    a = pool(yi, vi, method=method, test=test).to_dict()
    b = pool(yi[perm], vi[perm], method=method, test=test).to_dict()
    for key in ("estimate", "se", "tau2", "ci_low", "ci_high", "I2", "Q", "pi_low", "tau2_ci_high"):
        assert math.isclose(a[key], b[key], rel_tol=1e-7, abs_tol=1e-9) or (math.isnan(a[key]) and math.isnan(b[key]))


@settings(max_examples=80, deadline=None)
@given(data=municipal_sets(), method=st.sampled_from(METHODS), test=st.sampled_from(TESTS))
def test_tau2_nonnegative_I2_in_range_and_ci_contains_estimate(data, method, test):
    yi, vi = data
    r = pool(yi, vi, method=method, test=test)
    assert r.tau2 >= 0
    assert 0 <= r.I2 < 100
    assert r.ci_low <= r.estimate <= r.ci_high
    assert r.pi_low <= r.ci_low + 1e-12 and r.pi_high >= r.ci_high - 1e-12
    if method != "FE":
        assert 0 <= r.tau2_ci_low <= r.tau2_ci_high


@settings(max_examples=60, deadline=None)
@given(data=municipal_sets(), method=st.sampled_from(METHODS), c=st.sampled_from([-3.0, 0.01, 2.5, 100.0]))
def test_scaling_yi_scales_estimate_by_c_and_tau2_by_c_squared(data, method, c):
    yi, vi = data
    a = pool(yi, vi, method=method, test="z")
    b = pool(c * yi, c * c * vi, method=method, test="z")
    assert math.isclose(b.estimate, c * a.estimate, rel_tol=1e-6, abs_tol=1e-9 * abs(c))
    assert math.isclose(b.tau2, c * c * a.tau2, rel_tol=1e-5, abs_tol=1e-9 * c * c * float(np.mean(vi)))


@settings(max_examples=60, deadline=None)
@given(data=municipal_sets(), test=st.sampled_from(TESTS))
def test_fe_and_re_agree_when_tau2_is_zero(data, test):
    yi, vi = data
    re = pool(yi, vi, method="DL", test=test)
    fe = pool(yi, vi, method="FE", test=test)
    if re.tau2 == 0:
        assert math.isclose(re.estimate, fe.estimate, rel_tol=1e-12, abs_tol=1e-12)
        assert math.isclose(re.se, fe.se, rel_tol=1e-12)


@settings(max_examples=80, deadline=None)
@given(data=municipal_sets(), method=st.sampled_from(METHODS))
def test_adhoc_interval_is_never_narrower_than_wald(data, method):
    yi, vi = data
    wald = pool(yi, vi, method=method, test="z")
    adhoc = pool(yi, vi, method=method, test="adhoc")
    assert adhoc.ci_high - adhoc.ci_low >= (wald.ci_high - wald.ci_low) * (1 - 1e-12)


def test_single_study_is_returned_unpooled_and_flagged():
    r = pool([-10.0], [4.8**2], method="REML", test="knha")
    assert r.single_study and r.k == 1
    assert r.estimate == -10.0 and math.isclose(r.se, 4.8)
    assert math.isclose(r.ci_low, -10.0 - 1.959963984540054 * 4.8)
    assert math.isnan(r.tau2) and math.isnan(r.I2) and math.isnan(r.Q_p)
    assert r.converged


def test_two_studies_give_finite_but_very_wide_knha_interval():
    r = pool([-10.0, 2.0], [4.8**2, 5.7**2], method="REML", test="knha")
    assert r.k == 2 and not r.single_study
    assert math.isfinite(r.ci_low) and math.isfinite(r.ci_high)
    z = pool([-10.0, 2.0], [4.8**2, 5.7**2], method="REML", test="z")
    assert (r.ci_high - r.ci_low) > 3 * (z.ci_high - z.ci_low)  # t with 1 df: 12.7 vs 1.96


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_invalid_variance_raises_a_clear_error(bad):
    with pytest.raises(PoolingError, match="vi must be finite and > 0: cell 0, study 1"):
        pool([1.0, 2.0, 3.0], [1.0, bad, 1.0])


def test_nan_effect_raises_a_clear_error():
    with pytest.raises(PoolingError, match="yi must be finite"):
        pool([1.0, float("nan")], [1.0, 1.0])


def test_unknown_method_and_test_are_refused():
    with pytest.raises(PoolingError, match="unknown method"):
        pool([1.0, 2.0], [1.0, 1.0], method="XYZ")
    with pytest.raises(PoolingError, match="unknown test"):
        pool([1.0, 2.0], [1.0, 1.0], test="t")


def test_batch_with_ragged_cells_equals_one_by_one():
    rng = np.random.default_rng(1)
    cells = [(rng.normal(0, 5, k), rng.uniform(2, 6, k) ** 2) for k in (1, 2, 3, 6, 4)]
    from meta.models.engine import pad_cells

    y, v, mask = pad_cells(cells)
    batch = pool_batch(y, v, mask, method="REML", test="knha")
    for j, (yi, vi) in enumerate(cells):
        one = pool(yi, vi, method="REML", test="knha")
        assert math.isclose(batch["estimate"][j], one.estimate, rel_tol=1e-12)
        assert math.isclose(batch["ci_high"][j], one.ci_high, rel_tol=1e-12)


def _loglik_grid(yi, vi, method):
    grid = np.concatenate([[0.0], np.geomspace(1e-8, 50 * (np.var(yi) + np.mean(vi)), 40001)])
    w = 1 / (vi[None, :] + grid[:, None])
    mu = (w * yi).sum(1) / w.sum(1)
    ll = -0.5 * (np.log(vi[None, :] + grid[:, None]).sum(1) + (w * (yi - mu[:, None]) ** 2).sum(1))
    if method == "REML":
        ll -= 0.5 * np.log(w.sum(1))
    return grid, ll


@settings(max_examples=60, deadline=None)
@given(data=municipal_sets(), method=st.sampled_from(["ML", "REML"]))
def test_ml_and_reml_tau2_is_the_global_maximum_of_the_likelihood(data, method):
    yi, vi = data
    r = pool(yi, vi, method=method, test="z")
    _, ll = _loglik_grid(yi, vi, method)
    w = 1 / (vi + r.tau2)
    mu = (w * yi).sum() / w.sum()
    ll_ours = -0.5 * (np.log(vi + r.tau2).sum() + (w * (yi - mu) ** 2).sum() + (np.log(w.sum()) if method == "REML" else 0))
    assert r.converged
    assert ll_ours >= ll.max() - 1e-9 * abs(ll.max()) - 1e-9


@settings(max_examples=60, deadline=None)
@given(data=municipal_sets(), method=st.sampled_from(METHODS), test=st.sampled_from(TESTS),
       scale=st.sampled_from([1e-8, 1e-4, 1.0, 1e3, 1e6]), tiny=st.booleans(), identical=st.booleans())
def test_results_stay_finite_at_numerical_edges(data, method, test, scale, tiny, identical):
    """Very small and very large effects, one variance a million times smaller, all estimates identical."""
    yi, vi = data
    yi, vi = yi * scale, vi * scale**2
    if tiny:
        vi = vi.copy()
        vi[0] = vi[0] * 1e-6
    if identical:
        yi = np.full_like(yi, yi[0])
    r = pool(yi, vi, method=method, test=test).to_dict()
    for key in ("estimate", "se", "ci_low", "ci_high", "tau2", "I2", "H2", "Q", "pi_low", "pi_high"):
        assert math.isfinite(r[key]), (key, r[key])
    if identical:
        assert r["tau2"] == 0 and r["Q"] == 0

"""The Bayesian random-effects model (meta.models.bayes) against computations that share none of its machinery.

* A long, seeded Metropolis-within-Gibbs run on the joint posterior p(μ, τ | y) ∝ p(τ) p(μ) Πᵢ N(yᵢ; μ, vᵢ + τ²)
  (θᵢ integrated out analytically). μ | τ, y is drawn exactly (normal full conditional, derived here from the
  joint); τ | μ, y is updated by Metropolis-Hastings (a random walk on log τ and an independence proposal from the
  half-normal prior). It never uses the closed-form marginal p(τ | y), the τ grid or the normal mixture of
  ``bayes_pool``. Monte Carlo standard errors of the quantiles come from batches of independent chains, so
  within-chain autocorrelation is accounted for; the tolerance is 4 MC standard errors plus 0.002 posterior sd.
* Brute-force two-dimensional adaptive quadrature (scipy.integrate.quad, nested) of the same joint density.
* Exact facts: k = 1 with a flat μ prior leaves the τ prior unchanged; τ prior scale → 0 gives the common-effect
  (FE) estimate and its z interval; invariance under reordering, shift and scale.

Data are shaped like municipal effects in percentage points; the τ prior scale is 5 percentage points.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from meta.models.bayes import BAYES_KEYS, BayesResult, bayes_pool, bayes_pool_table
from meta.models.engine import pool

CASES = {
    "three_municipalities_flat": dict(yi=[-10.0, -4.0, 2.0], sei=[4.8, 5.6, 5.7], s=5.0, mu_sd=None, level=95.0),
    "two_municipalities_flat": dict(yi=[-6.0, 3.0], sei=[3.9, 6.2], s=5.0, mu_sd=None, level=95.0),
    "four_municipalities_normal_mu_prior": dict(yi=[-7.5, 1.0, -2.5, 4.0], sei=[3.0, 4.5, 2.8, 6.0], s=5.0,
                                                mu_sd=10.0, level=90.0),
}


# --------------------------------------------------------------------------- #
# the independent sampler
# --------------------------------------------------------------------------- #
def _log_target_tau(tau, mu, y, v, s):
    """log p(τ | μ, y) + const from the joint: half-normal prior × Πᵢ N(yᵢ; μ, vᵢ + τ²)."""
    var = v + tau[:, None] ** 2
    return -0.5 * tau**2 / s**2 - 0.5 * np.log(var).sum(axis=1) - 0.5 * ((y - mu[:, None]) ** 2 / var).sum(axis=1)


def metropolis_within_gibbs(y, v, s, mu_sd, seed, n_chains=4000, n_burn=150, n_keep=150):
    """Draws of (μ, τ, θ_new), shape (n_chains, n_keep) each, from independent chains run side by side."""
    rng = np.random.default_rng(seed)
    y, v = np.asarray(y, float), np.asarray(v, float)
    tau = np.abs(rng.normal(0.0, s, n_chains))           # start from the prior
    mu = rng.normal(y.mean(), 3 * np.sqrt(v.max()), n_chains)
    prec0 = 0.0 if mu_sd is None else 1.0 / mu_sd**2
    out_mu, out_tau = np.empty((n_chains, n_keep)), np.empty((n_chains, n_keep))
    for it in range(n_burn + n_keep):
        # μ | τ, y: the joint is Gaussian in μ with precision Σ 1/(vᵢ+τ²) (+ 1/σ_μ²) and mean Σ yᵢ/(vᵢ+τ²) / precision
        w = 1.0 / (v + tau[:, None] ** 2)
        prec = w.sum(axis=1) + prec0
        mu = (w * y).sum(axis=1) / prec + rng.standard_normal(n_chains) / np.sqrt(prec)
        # τ | μ, y: random walk on log τ (Jacobian τ'/τ) ...
        cur = _log_target_tau(tau, mu, y, v, s)
        prop = tau * np.exp(0.9 * rng.standard_normal(n_chains))
        new = _log_target_tau(prop, mu, y, v, s)
        accept = np.log(rng.random(n_chains)) < new - cur + np.log(prop) - np.log(tau)
        tau, cur = np.where(accept, prop, tau), np.where(accept, new, cur)
        # ... and an independence proposal from the half-normal prior (acceptance = likelihood ratio)
        prop = np.abs(rng.normal(0.0, s, n_chains))
        new = _log_target_tau(prop, mu, y, v, s)
        accept = np.log(rng.random(n_chains)) < (new + 0.5 * prop**2 / s**2) - (cur + 0.5 * tau**2 / s**2)
        tau = np.where(accept, prop, tau)
        if it >= n_burn:
            out_mu[:, it - n_burn], out_tau[:, it - n_burn] = mu, tau
    theta_new = out_mu + out_tau * rng.standard_normal(out_mu.shape)
    return out_mu, out_tau, theta_new


def quantiles_with_mcse(draws, probs, n_batches=40):
    """Quantiles of all draws and their MC standard errors from batches of whole chains."""
    q = np.quantile(draws.ravel(), probs)
    batches = np.array_split(draws, n_batches, axis=0)
    qb = np.array([np.quantile(b.ravel(), probs) for b in batches])
    return q, qb.std(axis=0, ddof=1) / math.sqrt(n_batches)


@pytest.fixture(scope="module", params=list(CASES))
def case_with_draws(request):
    c = CASES[request.param]
    v = np.square(c["sei"])
    seed = 20170 + list(CASES).index(request.param)
    draws = metropolis_within_gibbs(c["yi"], v, c["s"], c["mu_sd"], seed=seed)
    res = bayes_pool(c["yi"], v, c["s"], level=c["level"], mu_prior_sd=c["mu_sd"])
    return request.param, c, res, draws


def _assert_within_mc_error(name, exact, q, se, sd):
    tol = 4 * se + 0.002 * sd
    assert abs(exact - q) <= tol, f"{name}: bayes_pool {exact:.5f}, MCMC {q:.5f} ± {se:.5f} (tol {tol:.5f})"


def test_posterior_quantiles_of_mu_match_long_gibbs_run(case_with_draws):
    name, c, res, (mu, tau, new) = case_with_draws
    a = 1 - c["level"] / 100
    q, se = quantiles_with_mcse(mu, [a / 2, 0.5, 1 - a / 2])
    for label, exact, qi, sei in zip(("ci_low", "median", "ci_high"), (res.ci_low, res.estimate, res.ci_high), q, se):
        _assert_within_mc_error(f"{name} mu {label}", exact, qi, sei, res.sd)
    # posterior mean and sd too (MC error of the mean from the same batches)
    batch_means = np.array([b.mean() for b in np.array_split(mu, 40, axis=0)])
    se_mean = batch_means.std(ddof=1) / math.sqrt(40)
    _assert_within_mc_error(f"{name} mu mean", res.mean, mu.mean(), se_mean, res.sd)
    assert abs(res.sd / mu.std() - 1) < 0.01


def test_posterior_median_and_interval_of_tau_match_long_gibbs_run(case_with_draws):
    name, c, res, (mu, tau, new) = case_with_draws
    a = 1 - c["level"] / 100
    q, se = quantiles_with_mcse(tau, [a / 2, 0.5, 1 - a / 2])
    sd_tau = tau.std()
    for label, exact, qi, sei in zip(("low", "median", "high"),
                                     (res.tau_ci_low, res.tau_median, res.tau_ci_high), q, se):
        _assert_within_mc_error(f"{name} tau {label}", exact, qi, sei, sd_tau)


def test_predictive_interval_matches_long_gibbs_run(case_with_draws):
    name, c, res, (mu, tau, new) = case_with_draws
    a = 1 - c["level"] / 100
    q, se = quantiles_with_mcse(new, [a / 2, 1 - a / 2])
    sd_new = new.std()
    _assert_within_mc_error(f"{name} pi_low", res.pi_low, q[0], se[0], sd_new)
    _assert_within_mc_error(f"{name} pi_high", res.pi_high, q[1], se[1], sd_new)


def test_sampler_is_precise_enough_to_catch_a_wrong_posterior(case_with_draws):
    """The MC tolerance is below 3% of the posterior sd of μ and of τ.

    For scale: dropping the V_μ^{1/2} factor from p(τ|y) (using the profile instead of the integrated likelihood)
    moves the interval ends of μ by 5-21% of its posterior sd and the median of τ by 12-21% of its posterior sd
    on these three data sets, so that mistake could not pass the comparisons above.
    """
    name, c, res, (mu, tau, new) = case_with_draws
    a = 1 - c["level"] / 100
    _, se = quantiles_with_mcse(mu, [a / 2, 0.5, 1 - a / 2])
    assert np.all(4 * se + 0.002 * res.sd < 0.03 * res.sd), (name, se, res.sd)
    _, se_tau = quantiles_with_mcse(tau, [0.5])
    assert 4 * se_tau[0] + 0.002 * tau.std() < 0.03 * tau.std(), (name, se_tau, tau.std())


# --------------------------------------------------------------------------- #
# brute-force quadrature of the joint density
# --------------------------------------------------------------------------- #
def _joint(mu, tau, y, v, s, mu_sd):
    """Unnormalised p(μ, τ | y) = p(τ) p(μ) Πᵢ N(yᵢ; μ, vᵢ + τ²) for an array of μ and a scalar τ."""
    mu = np.asarray(mu, float)[..., None]
    dens = stats.halfnorm.pdf(tau, scale=s) * np.prod(stats.norm.pdf(y, mu, np.sqrt(v + tau**2)), axis=-1)
    return dens if mu_sd is None else dens * stats.norm.pdf(mu[..., 0], 0.0, mu_sd)


@pytest.mark.parametrize("name", ["three_municipalities_flat", "four_municipalities_normal_mu_prior"])
def test_quantiles_agree_with_brute_force_two_dimensional_quadrature(name):
    """P(μ ≤ reported quantile | y), by adaptive quadrature over τ of a 400-node Gauss-Legendre rule over μ, is the
    nominal probability to 1e-8 (a quantile error of about 1e-7 posterior sd; the target is 1e-4)."""
    c = CASES[name]
    y, v, s = np.asarray(c["yi"]), np.square(c["sei"]), c["s"]
    res = bayes_pool(y, v, s, level=c["level"], mu_prior_sd=c["mu_sd"])
    nodes, weights = np.polynomial.legendre.leggauss(400)
    opts = dict(epsabs=1e-13, epsrel=1e-11, limit=200)
    tau_max = 12 * s                                   # half-normal tail beyond: e^{-72}

    def mu_mass(tau, upper):
        lower = y.min() - 25 * math.sqrt(v.max() + tau**2)
        if upper is None:
            upper = y.max() + 25 * math.sqrt(v.max() + tau**2)
        m = 0.5 * (upper - lower) * nodes + 0.5 * (upper + lower)
        return 0.5 * (upper - lower) * weights @ _joint(m, tau, y, v, s, c["mu_sd"])

    total = integrate.quad(lambda t: mu_mass(t, None), 0, tau_max, **opts)[0]
    a = 1 - c["level"] / 100
    for x, p in ((res.ci_low, a / 2), (res.estimate, 0.5), (res.ci_high, 1 - a / 2)):
        assert integrate.quad(lambda t: mu_mass(t, x), 0, tau_max, **opts)[0] / total == pytest.approx(p, abs=1e-8)
    assert integrate.quad(lambda t: mu_mass(t, None), 0, res.tau_median, **opts)[0] / total == pytest.approx(
        0.5, abs=1e-8)


# --------------------------------------------------------------------------- #
# exact limits
# --------------------------------------------------------------------------- #
def test_single_study_leaves_the_tau_prior_unchanged_and_widens_the_interval():
    y1, se1, s = -4.0, 5.6, 5.0
    res = bayes_pool([y1], [se1**2], s)
    assert res.k == 1
    # flat μ prior, k = 1: p(τ|y) = p(τ), so τ's quantiles are the half-normal's
    hn = stats.halfnorm(scale=s)
    assert res.tau_median == pytest.approx(hn.ppf(0.5), rel=1e-7)
    assert res.tau_ci_low == pytest.approx(hn.ppf(0.025), rel=1e-6)
    assert res.tau_ci_high == pytest.approx(hn.ppf(0.975), rel=1e-7)
    # μ | y = ∫ N(y₁, v₁ + τ²) p(τ) dτ: symmetric about y₁ with variance v₁ + s²
    assert res.estimate == pytest.approx(y1, abs=1e-9)
    assert res.mean == pytest.approx(y1, abs=1e-9)
    assert res.sd == pytest.approx(math.sqrt(se1**2 + s**2), rel=1e-9)
    cdf = lambda x: integrate.quad(lambda t: stats.norm.cdf(x, y1, math.sqrt(se1**2 + t**2)) * hn.pdf(t),
                                   0, np.inf, epsabs=1e-13)[0]
    assert cdf(res.ci_low) == pytest.approx(0.025, abs=1e-8)
    assert cdf(res.ci_high) == pytest.approx(0.975, abs=1e-8)
    # wider than the study's own interval, and the prediction interval wider still
    z = stats.norm.ppf(0.975)
    assert res.ci_low < y1 - z * se1 and res.ci_high > y1 + z * se1
    assert res.pi_low < res.ci_low and res.pi_high > res.ci_high


@pytest.mark.parametrize("name", list(CASES)[:2])
def test_vanishing_tau_prior_gives_the_common_effect_estimate_and_z_interval(name):
    c = CASES[name]
    v = np.square(c["sei"])
    fe = pool(c["yi"], v, method="FE", test="z")
    res = bayes_pool(c["yi"], v, tau_prior_scale=1e-6)
    for ours, theirs in ((res.estimate, fe.estimate), (res.mean, fe.estimate), (res.sd, fe.se),
                         (res.ci_low, fe.ci_low), (res.ci_high, fe.ci_high),
                         (res.pi_low, fe.ci_low), (res.pi_high, fe.ci_high)):
        assert ours == pytest.approx(theirs, abs=1e-6 * fe.se)
    assert res.tau_ci_high < 1e-5


def test_vague_normal_mu_prior_approaches_the_flat_prior_and_a_tight_one_shrinks_to_zero():
    c = CASES["three_municipalities_flat"]
    v = np.square(c["sei"])
    flat = bayes_pool(c["yi"], v, 5.0)
    vague = bayes_pool(c["yi"], v, 5.0, mu_prior_sd=1e5)
    for key in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high", "tau_median"):
        assert getattr(vague, key) == pytest.approx(getattr(flat, key), abs=1e-6 * flat.sd)
    tight = bayes_pool(c["yi"], v, 5.0, mu_prior_sd=1e-3)
    assert abs(tight.estimate) < 1e-3 and tight.sd < 1.01e-3
    assert vague.prior_mu_sd == 1e5 and flat.prior_mu_sd is None


def test_result_does_not_depend_on_the_initial_grid_size():
    c = CASES["two_municipalities_flat"]
    v = np.square(c["sei"])
    ref = bayes_pool(c["yi"], v, 5.0, grid_size=8192)
    for n in (16, 128, 1024):
        res = bayes_pool(c["yi"], v, 5.0, grid_size=n)
        for key in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high"):
            assert getattr(res, key) == pytest.approx(getattr(ref, key), abs=1e-6 * ref.sd)
        for key in ("tau_median", "tau_ci_low", "tau_ci_high"):
            assert getattr(res, key) == pytest.approx(getattr(ref, key), abs=1e-6 * c["s"])


def test_extreme_heterogeneity_pushes_tau_into_the_prior_tail():
    # two studies 2000 points apart with se 1: τ sits far beyond the prior scale; μ stays centred
    res = bayes_pool([-1000.0, 1000.0], [1.0, 1.0], tau_prior_scale=5.0)
    assert 70 < res.tau_ci_low < res.tau_median < res.tau_ci_high < 100
    assert res.estimate == pytest.approx(0.0, abs=1e-9 * res.sd)
    assert res.ci_low == pytest.approx(-res.ci_high, rel=1e-9)


# --------------------------------------------------------------------------- #
# properties
# --------------------------------------------------------------------------- #
effects = st.lists(st.tuples(st.floats(-30, 30), st.floats(0.5, 15)), min_size=1, max_size=6)
PROPS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _keys_close(a: BayesResult, b: BayesResult, rel=1e-6):
    for key in ("estimate", "mean", "ci_low", "ci_high", "pi_low", "pi_high"):
        assert getattr(a, key) == pytest.approx(getattr(b, key), abs=rel * a.sd), key
    for key in ("tau_median", "tau_ci_low", "tau_ci_high"):
        assert getattr(a, key) == pytest.approx(getattr(b, key), abs=rel * a.prior_tau_scale), key


@PROPS
@given(effects, st.floats(1.0, 20.0), st.randoms(use_true_random=False))
def test_order_of_studies_does_not_matter(studies, s, rnd):
    y, se = map(np.array, zip(*studies))
    perm = list(range(len(y)))
    rnd.shuffle(perm)
    _keys_close(bayes_pool(y, se**2, s), bayes_pool(y[perm], se[perm] ** 2, s))


@PROPS
@given(effects, st.floats(1.0, 20.0), st.sampled_from([50.0, 80.0, 95.0, 99.0]),
       st.one_of(st.none(), st.floats(1.0, 50.0)))
def test_intervals_are_ordered_and_contain_the_median(studies, s, level, mu_sd):
    y, se = map(np.array, zip(*studies))
    r = bayes_pool(y, se**2, s, level=level, mu_prior_sd=mu_sd)
    assert r.pi_low < r.ci_low < r.estimate < r.ci_high < r.pi_high
    assert 0 < r.tau_ci_low < r.tau_median < r.tau_ci_high
    assert r.sd > 0 and r.k == len(y) and r.level == level


@PROPS
@given(effects, st.floats(1.0, 20.0), st.floats(-50, 50), st.floats(0.1, 10.0))
def test_flat_prior_result_is_shift_and_scale_equivariant(studies, s, shift, scale):
    y, se = map(np.array, zip(*studies))
    a = bayes_pool(y, se**2, s)
    b = bayes_pool(scale * y + shift, (scale * se) ** 2, scale * s)
    for key in ("estimate", "mean", "ci_low", "ci_high", "pi_low", "pi_high"):
        assert getattr(b, key) == pytest.approx(scale * getattr(a, key) + shift, abs=1e-6 * b.sd), key
    for key in ("sd", "tau_median", "tau_ci_low", "tau_ci_high"):
        assert getattr(b, key) == pytest.approx(scale * getattr(a, key), rel=1e-6), key


def test_wider_level_gives_wider_intervals():
    c = CASES["three_municipalities_flat"]
    v = np.square(c["sei"])
    r80, r95 = bayes_pool(c["yi"], v, 5.0, level=80), bayes_pool(c["yi"], v, 5.0, level=95)
    assert r95.ci_low < r80.ci_low < r80.estimate < r80.ci_high < r95.ci_high
    assert r95.estimate == r80.estimate


# --------------------------------------------------------------------------- #
# validation and the table
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("kwargs, message", [
    (dict(yi=[], vi=[]), "k = 0"),
    (dict(yi=[1.0, np.nan], vi=[1.0, 1.0]), "yi must be finite"),
    (dict(yi=[1.0, 2.0], vi=[1.0, 0.0]), "vi must be finite and > 0"),
    (dict(yi=[1.0, 2.0], vi=[1.0, np.inf]), "vi must be finite and > 0"),
    (dict(yi=[1.0, 2.0], vi=[1.0]), "one variance per effect"),
    (dict(yi=[1.0], vi=[1.0], tau_prior_scale=0.0), "tau_prior_scale"),
    (dict(yi=[1.0], vi=[1.0], tau_prior_scale=np.inf), "tau_prior_scale"),
    (dict(yi=[1.0], vi=[1.0], level=100), "level"),
    (dict(yi=[1.0], vi=[1.0], mu_prior_sd=-1.0), "mu_prior_sd"),
    (dict(yi=[1.0], vi=[1.0], grid_size=3), "grid_size"),
])
def test_invalid_input_raises_a_clear_value_error(kwargs, message):
    kwargs = {"tau_prior_scale": 5.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        bayes_pool(**kwargs)


def test_table_pools_each_cell_and_matches_bayes_pool():
    studies = pd.DataFrame({
        "outcome": ["work", "work", "work", "benefit", "benefit", "exit"],
        "arm": ["A", "A", "A", "A", "A", "A"],
        "yi": [-10.0, -4.0, 2.0, -6.0, 3.0, 1.5],
        "sei": [4.8, 5.6, 5.7, 3.9, 6.2, 2.0],
    })
    table = bayes_pool_table(studies, ["outcome", "arm"], tau_prior_scale=5.0, level=90.0)
    assert list(table.columns) == ["outcome", "arm", *BAYES_KEYS]
    assert list(table["outcome"]) == ["benefit", "exit", "work"]
    assert list(table["k"]) == [2, 1, 3]
    for _, row in table.iterrows():
        g = studies[studies["outcome"] == row["outcome"]]
        ref = bayes_pool(g["yi"], g["sei"] ** 2, 5.0, level=90.0)
        got, want = row.drop(["outcome", "arm"]).to_dict(), ref.to_dict()
        assert got.keys() == want.keys()
        for key in want:  # NaN (no δ given) equals NaN here
            assert got[key] == want[key] or (isinstance(want[key], float) and math.isnan(want[key])
                                              and math.isnan(got[key])), key
    empty = bayes_pool_table(studies.iloc[:0], ["outcome", "arm"], tau_prior_scale=5.0)
    assert len(empty) == 0 and list(empty.columns) == ["outcome", "arm", *BAYES_KEYS]
    bad = studies.assign(sei=[4.8, 5.6, 5.7, 3.9, 0.0, 2.0])
    with pytest.raises(ValueError, match="benefit"):
        bayes_pool_table(bad, ["outcome", "arm"], tau_prior_scale=5.0)

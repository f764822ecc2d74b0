"""`meta pool --bayes` against a brute-force two-dimensional quadrature written here, separately from meta/models/bayes.py.

The reference integrates the joint posterior p(μ, τ | y) ∝ p(τ) · Πᵢ N(yᵢ; μ, vᵢ + τ²) (flat prior on μ, the θᵢ
integrated out) by tensor-product Gauss-Legendre quadrature: τ = s·tan(φ) with φ on [0, π/2) (so the prior's tail is
a finite interval and any τ prior is covered), and for every τ node μ on its own range
[min y − 14·√(max v + τ²), max y + 14·√(max v + τ²)] cut at the point x where a CDF is wanted. It never uses the
marginal p(τ | y), the conditional normal μ | τ, y, the sinh grid or the mixture CDF of ``bayes_pool``.

What is checked, on seven held-out data sets (k = 1..6 in percentage points; k = 3 on a 0–10 scale at the 90% level)
and two half-Cauchy ones:

* every quantile the command prints (μ's median and interval ends, τ's, the predictive interval's) lies within 1e-4 of
  its interval's width of the true quantile (the issue asks 1e-3): the reference CDF at (quantile ∓ 1e-4·width)
  brackets the nominal probability;
* P(μ > 0), P(μ < −δ) and P(|μ| < δ) agree with the reference to 1e-3 (and in fact to 1e-6);
* the posterior mean and sd agree to 1e-3 of the interval width.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import special

from meta import cli
from meta.models.bayes import bayes_pool

from tests.conftest import run_meta

#: Held-out data sets (not used anywhere else): (yi, sei, tau prior scale, delta, level)
DATA = {
    "k1_one_municipality": ([3.1], [4.4], 5.0, 2.0, 95.0),
    "k2_two_municipalities": ([-7.9, 1.2], [3.3, 5.1], 5.0, 2.0, 95.0),
    "k3_heterogeneous": ([2.5, -4.0, 9.8], [2.9, 4.1, 3.6], 5.0, 2.0, 95.0),
    "k4_homogeneous": ([-1.5, -3.2, -0.4, -2.7], [2.2, 3.0, 2.6, 4.5], 5.0, 2.0, 95.0),
    "k5_wide_spread": ([-12.0, 4.5, -3.3, 6.1, -8.2], [3.5, 2.8, 4.2, 3.1, 5.0], 5.0, 2.0, 95.0),
    "k6_six_municipalities": ([0.8, 1.9, -2.2, 3.5, 0.1, 2.6], [1.9, 2.4, 3.3, 2.0, 2.7, 3.8], 5.0, 2.0, 95.0),
    "k3_scale_0_10_level_90": ([0.31, -0.12, 0.05], [0.15, 0.22, 0.18], 0.5, 0.2, 90.0),
}
N_PHI, N_MU = 200, 400  # probability error of the reference below 1e-7 (600 x 1200 nodes agree to 1e-7)
GL_PHI = np.polynomial.legendre.leggauss(N_PHI)
GL_MU = np.polynomial.legendre.leggauss(N_MU)


class BruteForce:
    """The joint posterior of (μ, τ) on a tensor Gauss-Legendre grid; CDFs by cutting the μ range at x."""

    def __init__(self, y, v, s, prior="halfnormal"):
        self.y, self.v, self.s, self.prior = np.asarray(y, float), np.asarray(v, float), float(s), prior
        with np.errstate(divide="ignore"):  # the prior underflows to 0 near φ = π/2
            self.shift = float(np.max(np.log(self._mu_mass(self._phi_nodes(0.0, math.pi / 2)[0], None, shifted=False))))
        phi, w = self._phi_nodes(0.0, math.pi / 2)
        self.total = float(w @ self._mu_mass(phi, None))

    @staticmethod
    def _phi_nodes(a, b):
        x, w = GL_PHI
        return 0.5 * (b - a) * x + 0.5 * (b + a), 0.5 * (b - a) * w

    def _log_prior_dtau(self, phi):
        """log of p(τ) dτ/dφ for τ = s·tan φ (normalising constants dropped)."""
        tau = self.s * np.tan(phi)
        jac = np.log(self.s) - 2 * np.log(np.cos(phi))
        if self.prior == "halfcauchy":
            return -np.log1p(tau**2 / self.s**2) + jac  # = const: the half-Cauchy is uniform in φ
        return -0.5 * tau**2 / self.s**2 + jac

    def _mu_mass(self, phi, x, weight=None, shifted=True):
        """∫ p(μ, τ(φ) | y)·g(μ) dμ over μ ≤ x (all μ when x is None) for each φ; g = weight(μ, τ) or 1."""
        tau = self.s * np.tan(phi)[:, None]
        half = 14 * np.sqrt(self.v.max() + tau**2)
        lo, hi = self.y.min() - half, self.y.max() + half
        up = hi if x is None else np.clip(x, lo, hi)
        t, w = GL_MU
        mu = 0.5 * (up - lo) * t + 0.5 * (up + lo)                    # (n_phi, n_mu)
        var = self.v[None, None, :] + tau[:, :, None] ** 2
        loglik = -0.5 * (np.log(2 * np.pi * var) + (self.y - mu[:, :, None]) ** 2 / var).sum(axis=2)
        logj = loglik + self._log_prior_dtau(phi)[:, None]
        if shifted:
            logj = logj - self.shift
        g = np.exp(logj) if weight is None else np.exp(logj) * weight(mu, tau)
        return 0.5 * (up - lo)[:, 0] * (g @ w)

    def cdf_mu(self, x):
        phi, w = self._phi_nodes(0.0, math.pi / 2)
        return float(w @ self._mu_mass(phi, x)) / self.total

    def cdf_new(self, x):
        """P(θ_new ≤ x | y) = E[Φ((x − μ)/τ)] over the joint posterior."""
        phi, w = self._phi_nodes(0.0, math.pi / 2)
        return float(w @ self._mu_mass(phi, None, weight=lambda mu, tau: special.ndtr((x - mu) / tau))) / self.total

    def cdf_tau(self, x):
        phi, w = self._phi_nodes(0.0, math.atan(x / self.s))
        return float(w @ self._mu_mass(phi, None)) / self.total

    def moments_mu(self):
        phi, w = self._phi_nodes(0.0, math.pi / 2)
        m1 = float(w @ self._mu_mass(phi, None, weight=lambda mu, tau: mu)) / self.total
        m2 = float(w @ self._mu_mass(phi, None, weight=lambda mu, tau: mu**2)) / self.total
        return m1, math.sqrt(m2 - m1**2)


def _pool_json(capsys, tmp_path, y, se, *options):
    path = tmp_path / "effects.csv"
    path.write_text("yi,sei\n" + "".join(f"{a!r},{b!r}\n" for a, b in zip(y, se)), encoding="utf-8")
    assert cli.main(["pool", str(path), "--bayes", *options]) == 0
    return json.loads(capsys.readouterr().out)


def _assert_quantile(name, cdf, q, p, width, rel=1e-4):
    lo, hi = cdf(q - rel * width), cdf(q + rel * width)
    assert lo < p < hi, f"{name}: reference CDF at q ∓ {rel}·width is [{lo:.7f}, {hi:.7f}], nominal {p}"


@pytest.fixture(scope="module", params=list(DATA))
def case(request, tmp_path_factory):
    y, se, s, delta, level = DATA[request.param]
    return request.param, y, se, s, delta, level, BruteForce(y, np.square(se), s)


def test_printed_json_has_exactly_the_keys_of_the_issue_in_order(case, capsys, tmp_path):
    name, y, se, s, delta, level, _ = case
    out = _pool_json(capsys, tmp_path, y, se, "--tau-prior-scale", str(s), "--delta", str(delta), "--level", str(level))
    assert list(out) == ["k", "model", "tau_prior_scale", "delta", "level", "mu_mean", "mu_median", "mu_sd", "mu_low",
                         "mu_high", "tau_median", "tau_low", "tau_high", "pred_low", "pred_high", "p_gt_0",
                         "p_lt_minus_delta", "p_within_delta"]
    assert (out["k"], out["tau_prior_scale"], out["delta"], out["level"]) == (len(y), s, delta, level)
    assert "half-normal" in out["model"] and "flat" in out["model"]


def test_quantiles_are_within_1e_4_of_the_interval_width_of_brute_force_quadrature(case, capsys, tmp_path):
    """The issue asks 1e-3 of the width against an independent computation and 1e-4 of the method; both hold."""
    name, y, se, s, delta, level, ref = case
    out = _pool_json(capsys, tmp_path, y, se, "--tau-prior-scale", str(s), "--delta", str(delta), "--level", str(level))
    a = 1 - level / 100
    w_mu, w_tau, w_new = (out["mu_high"] - out["mu_low"], out["tau_high"] - out["tau_low"],
                          out["pred_high"] - out["pred_low"])
    for key, p in (("mu_low", a / 2), ("mu_median", 0.5), ("mu_high", 1 - a / 2)):
        _assert_quantile(f"{name} {key}", ref.cdf_mu, out[key], p, w_mu)
    for key, p in (("tau_low", a / 2), ("tau_median", 0.5), ("tau_high", 1 - a / 2)):
        _assert_quantile(f"{name} {key}", ref.cdf_tau, out[key], p, w_tau)
    for key, p in (("pred_low", a / 2), ("pred_high", 1 - a / 2)):
        _assert_quantile(f"{name} {key}", ref.cdf_new, out[key], p, w_new)
    mean, sd = ref.moments_mu()
    assert out["mu_mean"] == pytest.approx(mean, abs=1e-3 * w_mu)
    assert out["mu_sd"] == pytest.approx(sd, abs=1e-3 * w_mu)


def test_decision_probabilities_match_brute_force_quadrature(case, capsys, tmp_path):
    name, y, se, s, delta, level, ref = case
    out = _pool_json(capsys, tmp_path, y, se, "--tau-prior-scale", str(s), "--delta", str(delta), "--level", str(level))
    expected = {"p_gt_0": 1 - ref.cdf_mu(0.0), "p_lt_minus_delta": ref.cdf_mu(-delta),
                "p_within_delta": ref.cdf_mu(delta) - ref.cdf_mu(-delta)}
    for key, value in expected.items():
        assert out[key] == pytest.approx(value, abs=1e-3), key   # the issue's tolerance
        assert out[key] == pytest.approx(value, abs=1e-6), key   # what the quadrature actually delivers
    assert out["p_lt_minus_delta"] + out["p_within_delta"] + out["p_gt_0"] == pytest.approx(
        1 - ref.cdf_mu(0.0) + ref.cdf_mu(delta), abs=1e-6)  # P(μ < −δ) + P(|μ| < δ) = P(μ < δ)


@pytest.mark.parametrize("y, se", [([-7.9, 1.2], [3.3, 5.1]), ([-1.5, -3.2, -0.4, 6.7], [2.2, 3.0, 2.6, 4.5])])
def test_half_cauchy_prior_of_the_sensitivity_analysis_matches_brute_force_quadrature(y, se):
    s, delta = 5.0, 2.0
    ref = BruteForce(y, np.square(se), s, prior="halfcauchy")
    r = bayes_pool(y, np.square(se), s, tau_prior="halfcauchy", delta=delta)
    for key, p in (("ci_low", 0.025), ("estimate", 0.5), ("ci_high", 0.975)):
        _assert_quantile(key, ref.cdf_mu, getattr(r, key), p, r.ci_high - r.ci_low)
    for key, p in (("pi_low", 0.025), ("pi_high", 0.975)):
        _assert_quantile(key, ref.cdf_new, getattr(r, key), p, r.pi_high - r.pi_low)
    _assert_quantile("tau_median", ref.cdf_tau, r.tau_median, 0.5, r.tau_ci_high - r.tau_ci_low)
    assert r.p_gt_0 == pytest.approx(1 - ref.cdf_mu(0.0), abs=1e-6)
    assert r.p_within_delta == pytest.approx(ref.cdf_mu(delta) - ref.cdf_mu(-delta), abs=1e-6)
    # the posterior sd of μ does not exist for k = 2 under this prior (p(τ|y) ~ τ^-3); it is not made up
    assert math.isnan(r.sd) == (len(y) < 3) and math.isfinite(r.mean)


def test_half_cauchy_with_one_study_has_no_posterior_mean_but_its_quantiles_are_right():
    ref = BruteForce([3.1], [4.4**2], 5.0, prior="halfcauchy")
    r = bayes_pool([3.1], [4.4**2], 5.0, tau_prior="halfcauchy")
    assert math.isnan(r.mean) and math.isnan(r.sd) and r.estimate == pytest.approx(3.1, abs=1e-9)
    for key, p in (("ci_low", 0.025), ("ci_high", 0.975)):
        _assert_quantile(key, ref.cdf_mu, getattr(r, key), p, r.ci_high - r.ci_low)


def test_reference_quadrature_is_sharp_enough_to_tell_a_thousandth_of_the_width():
    """The check above has teeth: moving a quantile by 1e-4 of its width moves the reference CDF by well over ten
    times the quadrature's own error (below 1e-7: the CDF at the reported median is 0.5 to that precision)."""
    y, se, s, delta, level = DATA["k2_two_municipalities"]
    ref = BruteForce(y, np.square(se), s)
    r = bayes_pool(y, np.square(se), s)
    assert ref.cdf_mu(r.estimate) == pytest.approx(0.5, abs=1e-7)
    w = r.ci_high - r.ci_low
    assert ref.cdf_mu(r.ci_low + 1e-4 * w) - ref.cdf_mu(r.ci_low) > 1e-6
    # and a wrong model is caught: the same data with the τ prior scale doubled moves the lower end by far more
    wrong = bayes_pool(y, np.square(se), 2 * s)
    assert not (ref.cdf_mu(wrong.ci_low - 1e-4 * w) < 0.025 < ref.cdf_mu(wrong.ci_low + 1e-4 * w))


@pytest.mark.parametrize("options, message", [
    (["--tau-prior-scale", "0"], "--tau-prior-scale"),
    (["--tau-prior-scale", "-5"], "--tau-prior-scale"),
    (["--delta", "-1"], "--delta"),
    (["--level", "100"], "--level"),
    (["--method", "DL"], "--method"),
])
def test_bad_bayes_options_end_with_one_line_and_exit_2(options, message, capsys, tmp_path):
    path = tmp_path / "effects.csv"
    path.write_text("yi,sei\n-6,3.9\n3,6.2\n", encoding="utf-8")
    assert cli.main(["pool", str(path), "--bayes", *options]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr()
    assert err.out == "" and err.err.count("\n") == 1 and message in err.err and err.err.startswith("meta: error:")


def test_bayes_options_without_bayes_are_refused(capsys, tmp_path):
    path = tmp_path / "effects.csv"
    path.write_text("yi,sei\n-6,3.9\n3,6.2\n", encoding="utf-8")
    assert cli.main(["pool", str(path), "--delta", "2"]) == cli.EXIT_BAD_INPUT
    assert "--bayes" in capsys.readouterr().err


def test_command_line_bad_file_row_is_one_line_with_exit_2(tmp_path):
    path = tmp_path / "effects.csv"
    path.write_text("yi,sei\n-6,3.9\n3,0\n", encoding="utf-8")
    res = run_meta("pool", str(path), "--bayes")
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "row 2, column sei" in res.stderr

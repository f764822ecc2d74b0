"""meta.models.multivariate reproduces metafor 3.8-1's rma.mv on the Gleser & Olkin (2009) multiple-treatment data.

Reference values: tests/reference/metafor_rma_mv_reference.json (see tests/reference/README.md). rma.mv optimises
the log-likelihood itself and pins σ² down only to ~1e-9..4e-7 relative, so for the one-variance-component fits
the reference is ``hand_check``: σ² from the REML score equation (uniroot, tol 1e-15) and rma.mv refitted with σ²
fixed there (``result_at_hand_sigma2``). Everything at that σ² is compared at relative 1e-6, σ² itself at 1e-5.
The ``random = ~ trt | study`` fits (struct CS and UN) are not identified with 6 estimates in 3 studies; the JSON
flags them and they are not used as targets.
"""
import math
from dataclasses import FrozenInstanceError

import numpy as np
import pandas as pd
import pytest

from meta.models.engine import pool
from meta.models.covariance import block_diag_cov, shared_control_cov
from meta.models.design import component_design, identifiability
from meta.models.multivariate import MVResult, fit_mv
from tests.conftest import HERE, REPO, load_json

REF = load_json("metafor_rma_mv_reference.json")
GLESER = [c for c in REF["cases"] if c["id"].startswith("gleser2009_")]
NOT_IDENTIFIED = [c for c in GLESER if c["id"].endswith(("/RE_trt_CS", "/RE_trt_UN"))]
USABLE = [c for c in GLESER if c not in NOT_IDENTIFIED]
HAND = [c for c in USABLE if "hand_check" in c]
BCG_MV = next(c for c in REF["cases"] if c["id"] == "bcg/rma.mv_vs_rma.uni_REML")
BCG_UNI = next(c for c in load_json("metafor_reference.json")["cases"] if c["id"] == "bcg/REML/z")

COMPONENTS = ["exemption", "intensive", "release"]
RTOL = 1e-6
RTOL_SIGMA2 = 1e-5


def _fit(case, method=None):
    """fit_mv with the data and model of one rma.mv case, read off its recorded call."""
    d = case["data"]
    call = case["call"]
    if "mods = ~ factor(trt) - 1" in call:
        trt = np.asarray(d["trt"])
        X = pd.DataFrame({f"factor(trt){t}": (trt == t).astype(float) for t in (1, 2, 3)})
    else:
        X = None
    if method is None:
        method = "FE" if "method='FE'" in call else "REML"
        assert method == "FE" or "method='REML'" in call
    return fit_mv(d["yi"], np.asarray(d["V"]), X=X, groups=d["study"], method=method)


def _reference(case):
    return case["hand_check"]["result_at_hand_sigma2"] if "hand_check" in case else case["result"]


def _close(ours, ref, rtol=RTOL, atol=0.0):
    return np.allclose(np.asarray(ours, dtype=float), np.asarray(ref, dtype=float), rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- #
# the reference file
# --------------------------------------------------------------------------- #
def test_reference_file_is_metafor_3_8_1_with_eight_usable_gleser_olkin_fits():
    assert REF["metafor_version"] == "3.8-1"
    assert [c["id"] for c in USABLE] == [
        f"gleser2009_{m}/{f}" for m in ("RD", "OR") for f in ("FE_trt", "RE_intercept_study", "RE_trt_study")]
    assert len(NOT_IDENTIFIED) == 4
    assert all(c["error"] is None for c in GLESER)


@pytest.mark.parametrize("case", NOT_IDENTIFIED, ids=[c["id"] for c in NOT_IDENTIFIED])
def test_trt_by_study_fits_are_flagged_as_not_identified_and_not_used(case):
    # the flag is in the case's description (and the README): ρ runs to the boundary -1, τ² arbitrary
    assert "random = ~ trt | study" in case["description"]
    assert "not identifiable" in case["description"] or "weakly identified" in case["description"]
    assert abs(case["result"]["rho"][0]) > 1 - 1e-6
    assert "hand_check" not in case
    readme = (HERE / "reference" / "README.md").read_text()
    assert "not identified" in readme and "Do not use them as" in readme


# --------------------------------------------------------------------------- #
# fit_mv against metafor
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("case", USABLE, ids=[c["id"] for c in USABLE])
def test_fit_mv_matches_rma_mv_at_the_hand_checked_sigma2(case):
    res = _fit(case)
    ref = _reference(case)
    assert isinstance(res, MVResult)
    assert (res.k, res.p) == (ref["k"], ref["p"])
    assert res.names == tuple(ref["coef_names"])
    assert res.converged
    pairs = {"estimate": "coefficients", "se": "se", "zval": "zval", "pval": "pval", "ci_low": "ci_low",
             "ci_high": "ci_high", "vcov": "vcov", "Q": "QE", "Q_p": "QEp", "QM": "QM", "QM_p": "QMp"}
    wrong = {ours: (getattr(res, ours), ref[theirs]) for ours, theirs in pairs.items()
             if not _close(getattr(res, ours), ref[theirs])}
    assert not wrong, f"{case['call']}: {wrong}"
    assert res.Q_df == ref["QEdf"]
    assert res.QM_df == ref["QMdf"][0]
    assert res.level == ref["level"] == 95
    assert math.isclose(res.logLik, ref["fit_stats"]["REML"], rel_tol=RTOL)
    assert math.isclose(res.logLik_ML, ref["fit_stats"]["ML"], rel_tol=RTOL)


@pytest.mark.parametrize("case", HAND, ids=[c["id"] for c in HAND])
def test_reml_sigma2_solves_the_score_equation_like_the_hand_check(case):
    res = _fit(case)
    hand = case["hand_check"]
    assert math.isclose(res.tau2, hand["sigma2"], rel_tol=RTOL_SIGMA2, abs_tol=1e-15)
    assert res.tau2 >= 0.0
    assert _close(res.estimate, hand["coefficients"]) and _close(res.se, hand["se"])
    if hand["sigma2"] == 0:
        assert res.tau2 == 0.0  # boundary optimum found exactly, not a hair above 0


@pytest.mark.parametrize("case", HAND, ids=[c["id"] for c in HAND])
def test_reml_fit_agrees_with_rma_mv_own_optimum_to_its_accuracy(case):
    # rma.mv(nlm) is ~4e-7 off in σ² (RD intercept) and reports 8e-14 for a boundary 0 (RD trt)
    res = _fit(case)
    ref = case["result"]
    assert math.isclose(res.tau2, ref["sigma2"][0], rel_tol=RTOL_SIGMA2, abs_tol=1e-12)
    assert _close(res.estimate, ref["coefficients"]) and _close(res.se, ref["se"])
    assert math.isclose(res.Q, ref["QE"], rel_tol=RTOL)


@pytest.mark.parametrize("measure", ["RD", "OR"])
def test_fixed_effect_gls_reproduces_gleser_olkin_published_table(measure):
    case = next(c for c in USABLE if c["id"] == f"gleser2009_{measure}/FE_trt")
    pub = case["published"]
    res = _fit(case)
    assert res.tau2 == 0.0 and res.method == "FE"
    assert _close(res.estimate, pub["fe_coefficients"], rtol=0, atol=0.5e-4)
    if measure == "RD":
        assert _close(res.vcov * 1e6, pub["fe_vcov_times_1e6"], rtol=0, atol=0.5e-3)
    else:
        assert _close(res.vcov, pub["fe_vcov"], rtol=0, atol=0.5e-5)
    assert math.isclose(res.Q, pub["fe_QE"], abs_tol=0.5e-3)


def test_fe_and_reml_coincide_when_reml_sigma2_is_zero():
    for measure in ("RD", "OR"):
        case = next(c for c in USABLE if c["id"] == f"gleser2009_{measure}/RE_trt_study")
        reml, fe = _fit(case), _fit(case, method="FE")
        assert reml.tau2 == 0.0
        assert np.array_equal(reml.estimate, fe.estimate) and np.array_equal(reml.vcov, fe.vcov)


def test_level_sets_the_wald_interval_width():
    case = next(c for c in USABLE if c["id"] == "gleser2009_RD/RE_intercept_study")
    d = case["data"]
    res = fit_mv(d["yi"], d["V"], groups=d["study"], level=90)
    assert res.level == 90.0
    assert _close(res.ci_high - res.estimate, 1.6448536269514722 * res.se, rtol=1e-12)


# --------------------------------------------------------------------------- #
# univariate special case
# --------------------------------------------------------------------------- #
def test_diagonal_V_with_intercept_equals_univariate_reml_from_engine_pool():
    yi, vi = BCG_UNI["yi"], BCG_UNI["vi"]
    res = fit_mv(yi, np.diag(vi))
    uni = pool(yi, vi, method="REML", test="z")
    assert res.names == ("intrcpt",) and res.n_groups == len(yi)
    assert math.isclose(res.tau2, uni.tau2, rel_tol=1e-8)
    for ours, theirs in [(res.estimate[0], uni.estimate), (res.se[0], uni.se), (res.ci_low[0], uni.ci_low),
                         (res.ci_high[0], uni.ci_high), (res.pval[0], uni.pval), (res.Q, uni.Q),
                         (res.Q_p, uni.Q_p)]:
        assert math.isclose(ours, theirs, rel_tol=1e-8), (ours, theirs)
    assert res.Q_df == uni.Q_df
    # and both equal metafor's rma() REML
    assert math.isclose(res.tau2, BCG_UNI["result"]["tau2"], rel_tol=1e-8)
    assert math.isclose(res.estimate[0], BCG_UNI["result"]["estimate"], rel_tol=1e-8)


def test_diagonal_V_fit_equals_rma_mv_with_one_random_effect_per_trial():
    ref = BCG_MV["rma_mv"]
    res = fit_mv(BCG_MV["yi"], BCG_MV["vi"], groups=BCG_MV["trial"])  # 1-D V = its diagonal
    assert BCG_MV["comparison"]["equal_to_1e_6"] is True
    assert math.isclose(res.tau2, ref["sigma2"][0], rel_tol=RTOL_SIGMA2)
    for ours, theirs in [("estimate", "coefficients"), ("se", "se"), ("ci_low", "ci_low"), ("ci_high", "ci_high"),
                         ("pval", "pval"), ("Q", "QE"), ("Q_p", "QEp"), ("QM", "QM"), ("QM_p", "QMp")]:
        assert _close(getattr(res, ours), ref[theirs]), ours
    assert math.isclose(res.logLik, ref["logLik"], rel_tol=RTOL)


def test_diagonal_V_ml_equals_univariate_ml_from_engine_pool():
    yi, vi = BCG_UNI["yi"], BCG_UNI["vi"]
    res = fit_mv(yi, np.diag(vi), method="ML")
    uni = pool(yi, vi, method="ML", test="z")
    assert math.isclose(res.tau2, uni.tau2, rel_tol=1e-8)
    assert math.isclose(res.estimate[0], uni.estimate, rel_tol=1e-8)
    assert math.isclose(res.se[0], uni.se, rel_tol=1e-8)


def test_groups_default_to_one_group_per_estimate():
    yi, vi = BCG_UNI["yi"], BCG_UNI["vi"]
    a = fit_mv(yi, np.diag(vi))
    b = fit_mv(yi, np.diag(vi), groups=[f"trial {i}" for i in range(len(yi))])
    assert a.tau2 == b.tau2 and np.array_equal(a.estimate, b.estimate)


def _ml_problems():
    rd = next(c for c in USABLE if c["id"] == "gleser2009_RD/RE_intercept_study")["data"]
    pairs = np.repeat(np.arange(7), 2)[: len(BCG_MV["yi"])]  # bcg trials grouped in pairs: groups of 2 share u
    return {
        "gleser_RD_intercept": (np.asarray(rd["yi"]), np.asarray(rd["V"]), np.asarray(rd["study"])),
        "bcg_in_pairs": (np.asarray(BCG_MV["yi"]), np.diag(BCG_MV["vi"]), pairs),
    }


@pytest.mark.parametrize("name", list(_ml_problems()))
def test_ml_and_reml_sigma2_maximise_independently_computed_likelihoods(name):
    y, V, groups = _ml_problems()[name]
    Z = (groups[:, None] == np.unique(groups)[None, :]).astype(float)
    X = np.ones((len(y), 1))

    def loglik(s2, reml):
        M = V + s2 * Z @ Z.T
        Mi = np.linalg.inv(M)
        XtMiX = X.T @ Mi @ X
        b = np.linalg.solve(XtMiX, X.T @ Mi @ y)
        r = y - X @ b
        ll = -0.5 * np.linalg.slogdet(M)[1] - 0.5 * r @ Mi @ r
        if reml:
            return ll - 0.5 * (len(y) - 1) * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(XtMiX)[1] \
                + 0.5 * np.linalg.slogdet(X.T @ X)[1]
        return ll - 0.5 * len(y) * np.log(2 * np.pi)

    ml = fit_mv(y, V, groups=groups, method="ML")
    reml = fit_mv(y, V, groups=groups, method="REML")
    assert ml.converged and reml.converged
    assert math.isclose(ml.logLik_ML, loglik(ml.tau2, False), rel_tol=1e-10)
    assert math.isclose(reml.logLik, loglik(reml.tau2, True), rel_tol=1e-10)
    grid = np.linspace(0.0, 5.0 * reml.tau2, 2001)
    for res, reml_flag in ((ml, False), (reml, True)):
        best = grid[np.argmax([loglik(s, reml_flag) for s in grid])]
        assert abs(best - res.tau2) <= grid[1]
    assert reml.tau2 > 0 and ml.tau2 < reml.tau2  # ML shrinks sigma2 (here to the boundary 0 for RD)
    if name == "gleser_RD_intercept":
        assert ml.tau2 == 0.0


# --------------------------------------------------------------------------- #
# building V
# --------------------------------------------------------------------------- #
def test_shared_control_cov_puts_the_control_binomial_variance_off_the_diagonal():
    # control: p0 = 0.2, n0 = 100  ->  p0(1-p0)/n0 = 0.0016
    # arm 1: p = 0.30, n = 100 -> 0.21/100 + 0.0016 = 0.0037; arm 2: p = 0.25, n = 200 -> 0.1875/200 + 0.0016
    V = shared_control_cov(0.2, 100, [0.0037, 0.0025375])
    assert np.allclose(V, [[0.0037, 0.0016], [0.0016, 0.0025375]], rtol=1e-14, atol=0)
    V3 = shared_control_cov(0.5, 50, [0.01, 0.02, 0.03])
    assert np.allclose(V3[~np.eye(3, dtype=bool)], 0.005, rtol=1e-14) and np.allclose(np.diag(V3), [0.01, 0.02, 0.03])


def test_shared_control_and_block_diag_rebuild_the_gleser_olkin_risk_difference_V():
    d = GLESER[0]["data"]
    study, vi = np.asarray(d["study"]), np.asarray(d["vi"])
    blocks = []
    for s in np.unique(study):
        rows = np.flatnonzero(study == s)
        p0 = d["ai"][rows[0]] / d["n1i"][rows[0]]
        blocks.append(shared_control_cov(p0, d["n1i"][rows[0]], vi[rows]))
    assert np.allclose(block_diag_cov(blocks), d["V"], rtol=1e-12, atol=0)


def test_shared_control_cov_rejects_an_arm_variance_without_the_control_term():
    with pytest.raises(ValueError, match="below the control group's own variance"):
        shared_control_cov(0.2, 100, [0.0037, 0.001])
    with pytest.raises(ValueError, match="share between 0 and 1"):
        shared_control_cov(1.2, 100, [0.01])
    with pytest.raises(ValueError, match="positive size"):
        shared_control_cov(0.2, 0, [0.01])


def test_block_diag_cov_accepts_scalars_and_rejects_non_square_blocks():
    assert np.array_equal(block_diag_cov([[[2.0, 1.0], [1.0, 2.0]], 3.0]),
                          [[2, 1, 0], [1, 2, 0], [0, 0, 3]])
    with pytest.raises(ValueError, match="square"):
        block_diag_cov([np.ones((2, 3))])
    with pytest.raises(ValueError, match="not symmetric"):
        block_diag_cov([[[1.0, 0.5], [0.4, 1.0]]])


# --------------------------------------------------------------------------- #
# input validation
# --------------------------------------------------------------------------- #
_V2 = np.array([[0.02, 0.01], [0.01, 0.03]])


@pytest.mark.parametrize("kwargs, message", [
    (dict(yi=[0.1, 0.2], V=[[0.02, 0.01], [0.011, 0.03]]), "symmetric"),
    (dict(yi=[0.1, 0.2], V=[[0.01, 0.02], [0.02, 0.01]]), "positive definite"),
    (dict(yi=[0.1, 0.2], V=[[0.01, 0.0], [0.0, -0.01]]), "positive definite"),
    (dict(yi=[0.1, 0.2, 0.3], V=_V2), "3 x 3"),
    (dict(yi=[0.1, np.nan], V=_V2), "yi must be finite"),
    (dict(yi=[0.1, 0.2], V=[[0.02, np.inf], [np.inf, 0.03]]), "V must be finite"),
    (dict(yi=[0.1, 0.2], V=_V2, X=np.ones((3, 1))), "one row per estimate"),
    (dict(yi=[0.1, 0.2], V=_V2, groups=["a"]), "one label per estimate"),
    (dict(yi=[0.1, 0.2], V=_V2, method="DL"), "unknown method"),
    (dict(yi=[0.1, 0.2], V=_V2, level=105), "percentage"),
    (dict(yi=[0.1, 0.2], V=_V2, X=np.eye(2)), "REML needs more estimates"),
    (dict(yi=[0.1, 0.2, 0.3], V=np.eye(3) * 0.01, groups=["a", "a", "b"], X=[[1, 0], [1, 0], [0, 1]]),
     "confounded"),
])
def test_fit_mv_rejects_invalid_input_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_mv(**kwargs)


def test_fit_mv_explains_a_rank_deficient_component_design():
    X = pd.DataFrame({"exemption": [1.0, 0.0, 1.0], "intensive": [0.0, 1.0, 0.0], "release": [1.0, 0.0, 1.0]})
    with pytest.raises(ValueError, match="exemption and release are always given together"):
        fit_mv([0.1, 0.2, 0.15], np.eye(3) * 0.01, X=X, method="FE")


def test_result_is_immutable():
    res = fit_mv(BCG_UNI["yi"], BCG_UNI["vi"])
    with pytest.raises(FrozenInstanceError):
        res.tau2 = 0.0
    with pytest.raises(ValueError):
        res.estimate[0] = 0.0
    assert res.table().shape == (1, 6) and res.to_dict()["names"] == ("intrcpt",)


# --------------------------------------------------------------------------- #
# component model and identifiability
# --------------------------------------------------------------------------- #
NIJMEGEN_STATEMENT = (
    "exemption, intensive and release are not separately identifiable: the available arms give only "
    "exemption + release and intensive + release, so only 2 independent combinations of these 3 components "
    "can be estimated (those sums and their difference, exemption - intensive). release is part of every one "
    "of these arms, so the arms never show exemption or intensive without it."
)


def _arms(rows):
    return pd.DataFrame(rows, columns=["arm", *COMPONENTS])


def test_nijmegen_like_arms_identify_only_the_sums_with_release():
    X = component_design(_arms([("exemption_release", 1, 0, 1), ("intensive_release", 0, 1, 1)]), COMPONENTS)
    assert X.to_numpy().tolist() == [[1, 0, 1], [0, 1, 1]]
    rank, issues = identifiability(X)
    assert rank == 2
    assert len(issues) == 1
    issue = issues[0]
    assert issue.kind == "linear_dependence"
    assert issue.components == ("exemption", "intensive", "release")
    assert issue.estimable == ("exemption + release", "intensive + release")
    assert issue.null_combinations == ("exemption + intensive - release",)
    assert str(issue) == NIJMEGEN_STATEMENT


def test_wageningen_like_single_component_arms_identify_every_component():
    X = component_design(_arms([("exemption", 1, 0, 0), ("intensive", 0, 1, 0), ("release", 0, 0, 1)]),
                         COMPONENTS)
    result = identifiability(X)
    assert tuple(result) == (3, [])
    assert result.non_identifiable == ()
    assert result.statement == "All components are identifiable from the available arms."


def test_components_always_given_together_leave_only_their_sum_identifiable():
    X = component_design(_arms([("exemption_release", 1, 0, 1), ("intensive", 0, 1, 0)]), COMPONENTS)
    rank, issues = identifiability(X)
    assert rank == 2
    assert [str(i) for i in issues] == [
        "exemption and release are always given together in the available arms, so only their sum is identifiable."]
    assert issues[0].estimable == ("exemption + release",)


def test_a_component_in_no_arm_is_reported_as_never_given():
    X = component_design(_arms([("exemption", 1, 0, 0), ("release", 0, 0, 1)]), COMPONENTS)
    rank, issues = identifiability(X)
    assert rank == 2
    assert [str(i) for i in issues] == [
        "intensive is not given in any of the available arms, so its effect is not identifiable."]


def test_the_real_arm_register_nijmegen_alone_cannot_separate_release_but_with_wageningen_can():
    arms = pd.read_csv(REPO / "inputs" / "arms.csv")
    treated = arms[arms["randomised"] & (arms["control"] == 0) & (arms["arm_class"] != "pooled_arms")]
    nijmegen = component_design(treated[treated["municipality"] == "nijmegen"], COMPONENTS)
    wageningen = component_design(treated[treated["municipality"] == "wageningen"], COMPONENTS)
    assert list(nijmegen.index) == ["nijmegen/exemption_release", "nijmegen/intensive_release"]
    assert identifiability(nijmegen).statement == NIJMEGEN_STATEMENT
    assert identifiability(wageningen) == (3, [])
    assert identifiability(pd.concat([nijmegen, wageningen])) == (3, [])


def test_component_model_with_one_arm_per_component_returns_each_arms_effect():
    # three arms sharing one control group: with X = I the GLS fit is y itself, whatever V is
    X = component_design(_arms([("exemption", 1, 0, 0), ("intensive", 0, 1, 0), ("release", 0, 0, 1)]),
                         COMPONENTS)
    V = shared_control_cov(0.25, 93, [0.0040, 0.0042, 0.0038])
    y = [0.03, -0.01, 0.05]
    res = fit_mv(y, V, X=X, groups=["wageningen"] * 3, method="FE")
    assert res.names == tuple(COMPONENTS)
    assert np.allclose(res.estimate, y, rtol=1e-12) and np.allclose(res.vcov, V, rtol=1e-10)
    assert res.Q_df == 0 and math.isnan(res.Q_p)
    assert res.QM_df == 3  # no intercept column: every coefficient is tested


def test_component_design_rejects_non_binary_or_missing_columns():
    with pytest.raises(ValueError, match="0/1"):
        component_design(_arms([("x", 1, 0, 2)]), COMPONENTS)
    with pytest.raises(ValueError, match="no column"):
        component_design(_arms([("x", 1, 0, 1)]), ["exemption", "bonus"])


def test_identifiability_works_on_plain_arrays_with_names():
    rank, issues = identifiability(np.array([[1, 1, 0], [1, 0, 1]]), names=["intrcpt", "a", "b"])
    assert rank == 2 and issues[0].components == ("intrcpt", "a", "b")


def test_a_block_of_v_that_is_not_positive_definite_is_refused_wherever_it_sits():
    from meta.models.multivariate import _blocks

    good = [[0.02, 0.01], [0.01, 0.03]]
    bad = [[0.01, 0.02], [0.02, 0.01]]  # covariance above both variances
    for blocks in ([good, bad, good], [bad, good], [good, good, [[0.01]], bad]):
        V = block_diag_cov(blocks)
        with pytest.raises(ValueError, match="positive definite; its smallest eigenvalue"):
            fit_mv(np.zeros(len(V)), V, method="FE")
    # the blocks are the connected components of the covariances, wherever their rows are
    V = np.diag([1.0, 2.0, 3.0, 4.0, 5.0])
    V[0, 3] = V[3, 0] = 0.5
    V[1, 4] = V[4, 1] = 0.5
    assert [b.tolist() for b in _blocks(V)] == [[0, 3], [1, 4], [2]]
    V[1, 4] = V[4, 1] = 3.5  # now rows 1 and 4 alone are not positive definite (3.5² > 2·5)
    with pytest.raises(ValueError, match="positive definite"):
        fit_mv(np.zeros(5), V, method="FE")


def test_more_groups_than_coefficients_are_never_confounded_with_the_fixed_effects():
    # 3 groups, 2 coefficients: fitted (rank [X Z] >= 3 > rank X); 2 groups that X spans: refused
    X = [[1, 0], [0, 1], [1, 0], [0, 1], [1, 0]]
    res = fit_mv([0.1, 0.2, 0.15, 0.25, 0.05], np.eye(5) * 0.01, X=X, groups=["a", "a", "b", "b", "c"])
    assert res.n_groups == 3 and res.p == 2
    with pytest.raises(ValueError, match="confounded"):
        fit_mv([0.1, 0.2, 0.15, 0.25], np.eye(4) * 0.01, X=[[1, 0], [0, 1], [1, 0], [0, 1]],
               groups=["a", "b", "a", "b"])


def test_blocks_of_one_shape_give_scipys_block_diagonal_and_the_same_errors_as_any_others():
    from scipy import linalg

    rng = np.random.default_rng(3)
    blocks = []
    for _ in range(7):
        a = rng.normal(size=(2, 2))
        blocks.append(a @ a.T + np.eye(2))
    V = block_diag_cov(blocks)
    assert V.dtype == np.float64 and V.flags["C_CONTIGUOUS"]
    assert np.array_equal(V, linalg.block_diag(*blocks))
    asym = [b.copy() for b in blocks]
    asym[4][0, 1] += 0.1
    with pytest.raises(ValueError, match="block 4 is not symmetric"):
        block_diag_cov(asym)
    nan = [b.copy() for b in blocks]
    nan[2][1, 1] = np.nan
    with pytest.raises(ValueError, match="block 2 contains a non-finite value"):
        block_diag_cov(nan)


def test_the_tau2_search_fits_each_tau2_once_and_both_state_layouts_give_the_same_information(monkeypatch):
    """maximum_likelihood_tau2 keeps the GLS state of each tau2 it evaluates (brentq starts at two grid points and
    returns a point it evaluated; the likelihood is read at the candidates); the information on tau2, computed only
    when asked, is the same by the block-wise and the dense formulas."""
    from meta.models import gls

    rng = np.random.default_rng(4)
    groups = np.repeat(np.arange(6), 2)
    Z = (groups[:, None] == np.arange(6)[None, :]).astype(float)
    V = np.kron(np.eye(6), np.array([[0.04, 0.01], [0.01, 0.05]]))
    X = np.column_stack([np.ones(12), np.tile([0.0, 1.0], 6)])
    y = X @ np.array([0.1, -0.2]) + rng.normal(size=12) * 0.4
    seen = []
    real = gls._BlockState.__init__

    def counted(self, y_, V_, X_, Z_, tau2, *args):
        seen.append(float(tau2))
        real(self, y_, V_, X_, Z_, tau2, *args)

    monkeypatch.setattr(gls._BlockState, "__init__", counted)
    tau2, converged = gls.maximum_likelihood_tau2(y, V, X, Z, "REML")
    assert converged and tau2 > 0 and len(seen) == len(set(seen)) > 40
    block = gls.state_factory(V, Z)(y, X, tau2)
    dense = gls._State(y, V, X, Z, tau2)
    assert isinstance(block, gls._BlockState)
    for name in ("info_reml", "info_ml", "quad", "tr_P", "rss"):
        assert getattr(block, name) == pytest.approx(getattr(dense, name), rel=1e-10)
    np.testing.assert_allclose(block.beta, dense.beta, rtol=1e-10)
    np.testing.assert_allclose(block.vcov, dense.vcov, rtol=1e-10)

"""The component model's sampling covariance (meta.analyses.components) against matrices written out by hand.

The share branch is the covariance of arms that share one control group (Gleser & Olkin 2009):
Var(y_i) = se_i², Cov(y_i, y_j) = p0 (1 - p0) / n0, times 100² for effects in percentage points. The expected
matrices below are computed by hand from those formulas, not by the code under test.
"""
import numpy as np
import pandas as pd
import pytest

from meta.analyses.components import component_models, sampling_cov
from meta.models.covariance import shared_control_cov


def _cell(rows):
    return pd.DataFrame(rows, columns=["municipality", "arm", "sei", "share_control", "n_control"])


def test_sampling_cov_is_the_shared_control_covariance_in_percentage_points_and_rho_elsewhere():
    # A: control share 0.2 of n0 = 100 -> 100² · 0.2 · 0.8 / 100 = 16 (pp²) between its two arms.
    # B: no control share -> rho · se_a · se_b = 0.5 · 2 · 3 = 3.
    cell = _cell([("A", "exemption", 5.0, 0.2, 100), ("A", "intensive", 4.5, 0.2, 100),
                  ("B", "exemption", 2.0, np.nan, np.nan), ("B", "release", 3.0, np.nan, np.nan)])
    expected = np.array([[25.0, 16.0, 0.0, 0.0],
                         [16.0, 20.25, 0.0, 0.0],
                         [0.0, 0.0, 4.0, 3.0],
                         [0.0, 0.0, 3.0, 9.0]])
    np.testing.assert_allclose(sampling_cov(cell, rho=0.5), expected, rtol=1e-12, atol=0)


def test_shared_control_cov_in_percentage_points_is_100_squared_times_the_share_covariance():
    # 0.2 · 0.8 / 100 = 0.0016 per share², 16 per pp²; the diagonal is taken as given
    np.testing.assert_allclose(shared_control_cov(0.2, 100, [37.0, 25.375], points_per_share=100.0),
                               [[37.0, 16.0], [16.0, 25.375]], rtol=1e-12, atol=0)
    np.testing.assert_allclose(shared_control_cov(0.2, 100, [0.0037, 0.0025375]),
                               [[0.0037, 0.0016], [0.0016, 0.0025375]], rtol=1e-12, atol=0)


def test_sampling_cov_names_the_municipality_whose_arm_variance_is_below_its_control_variance():
    cell = _cell([("A", "exemption", 5.0, 0.2, 100), ("A", "intensive", 3.9, 0.2, 100)])  # 3.9² = 15.21 < 16
    with pytest.raises(ValueError, match=r"^A: arm 1 has variance 15\.21, below the control group's own variance"):
        sampling_cov(cell, rho=0.5)


def test_component_model_reports_an_inconsistent_covariance_as_not_fitted_with_the_reason():
    studies = pd.DataFrame({
        "outcome_key": "werk", "period": "einde", "unit_h": "percentage_points",
        "municipality": ["A", "A", "B"], "arm": ["exemption", "intensive", "exemption"],
        "yi": [1.0, 2.0, 1.5], "sei": [5.0, 3.9, 4.0],
        "share_control": [0.2, 0.2, np.nan], "n_control": [100, 100, np.nan],
    })
    arms = pd.DataFrame({"municipality": ["A", "A", "B"], "arm": ["exemption", "intensive", "exemption"],
                         "exemption": [1, 0, 1], "intensive": [0, 1, 0], "release": 0, "fulltime_bonus": 0,
                         "free_choice": 0, "control": 0})
    out = component_models(studies, arms, rho=0.5)
    assert len(out) == 1 and bool(out["identifiable"].iloc[0]) and out["component"].iloc[0] == ""
    assert out["statement"].iloc[0].startswith("not fitted: A: arm 1 has variance 15.21, below the control group's")


def test_the_identifiability_of_a_repeated_design_is_worked_out_once_and_keyed_on_its_values_shape_and_names():
    from meta.analyses.components import _Identifiability
    from meta.models.design import identifiability

    known = _Identifiability()
    X = np.array([[1.0, 1.0], [0.0, 1.0]])
    same = known(X, ["exemption", "release"])
    assert known(X.copy(order="F"), ["exemption", "release"]) is same
    assert same == identifiability(X, ["exemption", "release"])
    bundled = np.array([[1.0, 1.0], [1.0, 1.0]])
    assert known(bundled, ["exemption", "release"]).statement == identifiability(bundled, ["exemption", "release"]).statement
    assert known(bundled, ["intensive", "release"]).statement.startswith("intensive and release")
    assert known(X[:1], ["exemption", "release"]).rank == 1  # the same first row alone: another shape, another answer

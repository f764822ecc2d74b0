"""Standard errors reconstructed from what reports print, tested where the true SE is known."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from meta.harmonise import (central_value, common_se, half_unit, harmonise, mark_bracket, range_bound,
                            se_from_bracket)

NIJMEGEN_LEGEND = {"*": (0.05, math.nan), "~": (0.10, 0.05), "": (math.nan, 0.10)}
WAGENINGEN_LEGEND = {"***": (0.01, math.nan), "**": (0.05, 0.01), "*": (0.10, 0.05), "": (math.nan, 0.10)}


def _mark(p, legend):
    for mark, (below, at_least) in legend.items():
        if (math.isnan(below) or p < below) and (math.isnan(at_least) or p >= at_least):
            return mark
    raise AssertionError(p)


@pytest.mark.parametrize("legend", [NIJMEGEN_LEGEND, WAGENINGEN_LEGEND], ids=["nijmegen", "wageningen"])
def test_mark_bracket_always_contains_the_true_se_of_rounded_printed_estimates(legend):
    rng = np.random.default_rng(7)
    n_arm, n_ctrl = rng.integers(60, 400, 4000), rng.integers(60, 400, 4000)
    p0 = rng.uniform(0.05, 0.4, 4000)
    delta = rng.normal(0, 0.06, 4000)
    p1 = np.clip(p0 + delta, 0.01, 0.95)
    true_se = np.sqrt(p1 * (1 - p1) / n_arm + p0 * (1 - p0) / n_ctrl)
    est = rng.normal(p1 - p0, true_se)
    printed = np.round(est, 2)  # the report prints two decimals
    pval = 2 * stats.norm.sf(np.abs(est) / true_se)
    for e_print, s, p, na, nc in zip(printed, true_se, pval, n_arm, n_ctrl):
        below, at_least = legend[_mark(p, legend)]
        lo, hi = mark_bracket(abs(e_print), 0.005, below, at_least, True)
        hi = min(hi, range_bound(1.0, na, nc))
        assert lo <= s * (1 + 1e-12) and s <= hi * (1 + 1e-12)
        c = central_value(lo, hi, "central", abs(e_print), below, at_least)
        assert lo <= c <= hi
        assert central_value(lo, hi, "conservative") == hi


def test_central_se_from_tilde_mark_is_close_to_the_truth():
    # p in [0.05, 0.10): |e|/SE in (1.645, 1.960]; the central SE is within 10% of any SE in that range
    e, s_true = 0.08, 0.08 / 1.8
    lo, hi = mark_bracket(e, 0.0, 0.10, 0.05, True)
    assert abs(central_value(lo, hi, "central", e, 0.10, 0.05) / s_true - 1) < 0.10


def test_half_unit_reads_the_printed_decimals():
    assert half_unit("-0,11*") == 0.005
    assert half_unit("23,3%") == 0.05
    assert half_unit("-1.45***") == 0.005
    assert half_unit("12") == 0.5
    assert math.isnan(half_unit("n.v.t."))


def test_range_bound_is_the_largest_binomial_se():
    assert math.isclose(range_bound(1.0, 100, 100), math.sqrt(0.25 / 100 + 0.25 / 100))
    assert range_bound(1.0, math.nan, 100) == math.inf


# --------------------------------------------------------------------------- whole-frame harmonisation
def _registers():
    outcomes = pd.DataFrame([dict(outcome="income_gt70_wml", label_en="x", unit="percentage_points", concept="exit",
                                  scale_min="0", scale_max="100")])
    arms = pd.DataFrame([
        dict(municipality="m", arm=a, randomised=True, exemption=int(a == "ex"), intensive=int(a == "in"), release=0,
             fulltime_bonus=0, free_choice=0, control=int(a == "control"), arm_class=c, n_randomised=n,
             release_pct="", release_cap_eur_month="")
        for a, c, n in (("ex", "exemption", 130), ("in", "intensive", 128), ("control", "control", 131))])
    legends = pd.DataFrame([dict(source_file="f", source_table="T", mark=m, p_below=b, p_at_least=a, two_sided="true")
                            for m, (b, a) in NIJMEGEN_LEGEND.items()])
    return outcomes, arms, legends


def _row(i, **kw):
    base = dict(input_row=i, municipality="m", arm="ex", comparator="control", outcome="income_gt70_wml",
                horizon_months=16, model="loep", population="all", estimate=math.nan, unit="proportion",
                se=math.nan, ci_low=math.nan, ci_high=math.nan, ci_level=math.nan, p_value=math.nan, significance="",
                n_arm=pd.NA, n_control=pd.NA, n_table=pd.NA, share_arm=math.nan, share_control=math.nan, printed="",
                source_file="f", source_table="T", source_line=1)
    base.update(kw)
    return base


def test_each_se_method_is_applied_and_named():
    outcomes, arms, legends = _registers()
    rows = pd.DataFrame([
        _row(1, estimate=-0.05, se=0.02, printed="-0,05"),
        _row(2, estimate=-0.05, ci_low=-0.09, ci_high=-0.01, ci_level=95.0, printed="-0,05"),
        _row(3, estimate=-0.05, p_value=0.0124, printed="-0,05"),
        _row(4, estimate=0.07, share_arm=0.25, share_control=0.18, n_arm=100, n_control=90, printed="7%",
             unit="proportion"),
        _row(5, estimate=-0.10, significance="~", printed="-0,10~", model="basis"),
    ])
    h = harmonise(rows, outcomes, arms, legends)
    assert list(h["se_method"]) == ["reported_se", "from_ci", "from_p", "from_shares_binomial",
                                    "from_significance_marks"]
    assert math.isclose(h["yi"][0], -5.0) and math.isclose(h["sei"][0], 2.0)
    assert math.isclose(h["sei"][1], 8.0 / (2 * stats.norm.ppf(0.975)))
    assert math.isclose(h["sei"][2], 5.0 / stats.norm.isf(0.0124 / 2))
    assert math.isclose(h["sei"][3], 100 * math.sqrt(0.25 * 0.75 / 100 + 0.18 * 0.82 / 90))
    lo, hi = h["sei_low"][4], h["sei_high"][4]
    assert math.isclose(lo, 9.5 / stats.norm.isf(0.025)) and math.isclose(hi, 10.5 / stats.norm.isf(0.05))
    assert h["eligible"].all()


def test_rows_of_one_regression_share_a_common_se_bracket():
    outcomes, arms, legends = _registers()
    # exemption -0,10* (SE < 0.105/1.96); intensive -0,02 without mark (SE >= 0.015/1.645), same table/model
    rows = pd.DataFrame([_row(1, estimate=-0.10, significance="*", printed="-0,10*"),
                         _row(2, arm="in", estimate=-0.02, significance="", printed="-0,02", n_table=364)])
    h = harmonise(rows, outcomes, arms, legends)
    f_ex, f_in = math.sqrt(1 / 130 + 1 / 131), math.sqrt(1 / 128 + 1 / 131)
    assert math.isclose(h["sei_low"][0], (1.5 / stats.norm.isf(0.05)) / f_in * f_ex)
    assert math.isclose(h["sei_high"][1], (10.5 / stats.norm.isf(0.025)) / f_ex * f_in)


def test_comparisons_that_are_not_randomised_effects_are_never_eligible():
    outcomes, arms, legends = _registers()
    arms = pd.concat([arms, pd.DataFrame([dict(municipality="m", arm="ref", randomised=False, exemption=0, intensive=0,
                                               release=0, fulltime_bonus=0, free_choice=0, control=1,
                                               arm_class="reference", n_randomised=pd.NA, release_pct="",
                                               release_cap_eur_month="")])], ignore_index=True)
    rows = pd.DataFrame([_row(1, comparator="ref", estimate=0.1, se=0.02, printed="0,10"),
                         _row(2, arm="in", comparator="ex", estimate=0.01, se=0.02, printed="0,01"),
                         _row(3, arm="control", comparator="control", estimate=0.01, se=0.02, printed="0,01")])
    h = harmonise(rows, outcomes, arms, legends)
    assert not h["eligible"].any()
    assert "non-randomised" in h["reason"][0]
    assert "between-arm" in h["reason"][1]
    assert "within one group" in h["reason"][2]


def test_arm_share_levels_are_differenced_against_the_control_share_of_the_same_column():
    outcomes, arms, legends = _registers()
    rows = pd.DataFrame([
        _row(1, comparator="none", estimate=23.3, unit="percent", share_arm=0.233, n_arm=103, printed="23,3%"),
        _row(2, arm="control", comparator="none", estimate=14.8, unit="percent", share_arm=0.148, n_arm=88,
             printed="14,8%")])
    h = harmonise(rows, outcomes, arms, legends)
    assert h["eligible"][0] and not h["eligible"][1]
    assert math.isclose(h["yi"][0], 8.5)
    assert math.isclose(h["sei"][0], 100 * math.sqrt(0.233 * 0.767 / 103 + 0.148 * 0.852 / 88))
    assert h["comparator_row"][0] == 2
    assert "comparator share" in h["reason"][1]


def test_central_se_keeps_a_star_row_significant_and_others_within_their_range():
    """'*' (p < 0.05) stays significant, '~' lands in [0.05, 0.10], no mark stays non-significant."""
    for e, mark, (below, at_least) in [(0.12, "*", (0.05, math.nan)), (0.09, "~", (0.10, 0.05)),
                                       (0.05, "", (math.nan, 0.10))]:
        lo, hi = mark_bracket(e, 0.005, below, at_least, True)
        hi = min(hi, range_bound(1.0, 120, 120))
        se = central_value(lo, hi, "central", e, below, at_least)
        p = 2 * stats.norm.sf(e / se)
        if mark == "*":
            assert p < 0.05
        elif mark == "~":
            assert 0.045 <= p < 0.11  # rounding of the printed estimate widens the band slightly
        else:
            assert p >= 0.10
        assert lo <= se <= hi


def test_central_se_of_a_star_row_puts_its_p_value_at_half_the_threshold():
    # Nijmegen hours > 12, LOEP: -0,12* -> SE = 0.12 / z_{1 - 0.025/2}
    se = central_value(0.0, 0.0638, "central", 0.12, 0.05, math.nan)
    assert math.isclose(se, 0.12 / stats.norm.isf(0.0125))


def test_central_value_of_other_brackets_is_the_geometric_centre_with_the_lower_bound_floored_at_a_third():
    # Nijmegen Tabel 3 (002:354-358), LOEP model, brackets as harmonise builds them (no mark: p >= 0.10, so
    # lo = (|e| - 0.5)/z_0.95; hi = the range bound 50*sqrt(1/n_a + 1/n_c) with worst-case N):
    # permanent contract 0,04 -> [2.1278, 6.8844]: hi/lo = 3.24 > 3, so lo is floored at hi/3 -> hi/sqrt(3);
    # hours > 27 -0,05 -> [2.7358, 6.8844]: sqrt(2.7358 * 6.8844). The larger estimate now gets the larger SE
    # (the old rule gave 6.88 and 4.81).
    assert central_value(2.1278, 6.8844, "central", 4.0, math.nan, 0.10) == pytest.approx(6.8844 / math.sqrt(3))
    assert central_value(2.7358, 6.8844, "central", 5.0, math.nan, 0.10) == pytest.approx(math.sqrt(2.7358 * 6.8844))
    assert central_value(0.10, 0.12, "central", 0.15, 0.10, 0.05) == pytest.approx(math.sqrt(0.012))
    assert central_value(0.0, 0.3, "central", 0.0, math.nan, 0.10) == pytest.approx(0.3 / math.sqrt(3))
    assert math.isnan(central_value(0.1, math.inf, "central", 0.3, math.nan, 0.10))
    assert central_value(0.0, 0.2, "conservative", 0.3, 0.05, math.nan) == 0.2


# every kind of mark the legends contain: p below a threshold only ('*' Nijmegen, '***' Wageningen), a band
# ('~' Nijmegen, '*'/'**' Wageningen), no mark (a lower bound only); |e| = 4 pp
MARK_KINDS = {"star": (4.0, 0.05, math.nan), "band": (4.0, 0.10, 0.05), "none": (4.0, math.nan, 0.10),
              "zero estimate": (0.0, math.nan, 0.10)}


def _bracket_grid():
    """Brackets 0 <= lo <= hi on a fine grid that crosses hi/lo = 3 (the old rule's jump) many times."""
    lo = np.linspace(0.0, 8.0, 401)
    hi = np.linspace(0.5, 9.0, 426)
    L, H = np.meshgrid(lo, hi, indexing="ij")
    return L, H


@pytest.mark.parametrize("kind", list(MARK_KINDS))
def test_central_se_never_falls_when_either_bound_rises(kind):
    abs_est, below, at_least = MARK_KINDS[kind]
    L, H = _bracket_grid()
    se = se_from_bracket(L, H, "central", abs_est, below, at_least)
    ok = L <= H
    d_lo = np.diff(se, axis=0)[(ok[1:] & ok[:-1])]
    d_hi = np.diff(se, axis=1)[(ok[:, 1:] & ok[:, :-1])]
    assert d_lo.min() >= -1e-12 and d_hi.min() >= -1e-12


@pytest.mark.parametrize("kind", list(MARK_KINDS))
def test_central_se_is_continuous_in_both_bounds_with_no_step_larger_than_the_step_in_the_bound(kind):
    """1-Lipschitz in lo and in hi: a change of a bound by d changes the SE by at most d (no jump anywhere)."""
    abs_est, below, at_least = MARK_KINDS[kind]
    L, H = _bracket_grid()
    se = se_from_bracket(L, H, "central", abs_est, below, at_least)
    ok = L <= H
    step_lo, step_hi = L[1, 0] - L[0, 0], H[0, 1] - H[0, 0]
    d_lo = np.abs(np.diff(se, axis=0))[(ok[1:] & ok[:-1])]
    d_hi = np.abs(np.diff(se, axis=1))[(ok[:, 1:] & ok[:, :-1])]
    assert d_lo.max() <= step_lo * (1 + 1e-9) and d_hi.max() <= step_hi * (1 + 1e-9)
    assert np.all((L[ok] - 1e-12 <= se[ok]) & (se[ok] <= H[ok] + 1e-12))


def test_the_old_midpoint_or_upper_bound_rule_fails_the_monotonicity_claim():
    """The property test can fail: the rule replaced here (midpoint if hi/lo <= 3, else hi) falls as lo rises."""
    def old(lo, hi):
        return np.where((lo > 0) & (hi / np.where(lo > 0, lo, 1) <= 3), 0.5 * (lo + hi), hi)
    L, H = _bracket_grid()
    with np.errstate(divide="ignore", invalid="ignore"):
        se = old(L, H)
    ok = L <= H
    assert np.diff(se, axis=0)[(ok[1:] & ok[:-1])].min() < -1.0


def test_the_common_se_constraint_intersects_sigma_brackets_and_leaves_disjoint_ones_alone():
    f = np.array([1.0, 2.0])
    lo, hi = common_se([1.0, 1.0], [3.0, 5.0], f)          # sigma in [1, 3] and [0.5, 2.5] -> [1, 2.5]
    np.testing.assert_allclose(lo, [1.0, 2.0])
    np.testing.assert_allclose(hi, [2.5, 5.0])
    lo, hi = common_se([[4.0, 0.5]], [[5.0, 1.0]], f)      # sigma in [4, 5] and [0.25, 0.5]: disjoint
    np.testing.assert_allclose(lo, [[4.0, 0.5]])
    np.testing.assert_allclose(hi, [[5.0, 1.0]])

"""Standard errors reconstructed from what reports print, tested where the true SE is known."""
import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from meta.effects.harmonise import harmonise
from meta.effects.se import (central_value, common_se, common_se_factor, half_unit, mark_bracket, range_bound,
                             se_from_bracket)
from meta.read.schema import parse_printed
from tests.conftest import REPO

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


# Every token shape in inputs/estimates.csv `printed` (digits -> 9), one real token each, with the number and the
# half-unit worked out by hand: the half-unit is half of one unit of the last decimal of the number itself, never
# of a footnote digit glued to it.
TOKEN_SHAPES = [
    # shape        token        mark     number  half-unit   where (input row)
    ("9,9",        "0,01",      "",      0.01,   0.005),     # Nijmegen Tabel 3, row 7
    ("-9,9",       "-0,08",     "",      -0.08,  0.005),     # row 6
    ("-9,9*",      "-0,11*",    "*",     -0.11,  0.005),     # row 1
    ("9,9*",       "0,10*",     "*",     0.10,   0.005),     # row 38
    ("-9,9~",      "-0,09~",    "~",     -0.09,  0.005),     # row 3
    ("9,9~",       "0,06~",     "~",     0.06,   0.005),     # row 41
    ("9,9%",       "23,5%",     "",      23.5,   0.05),      # Wageningen Tabel 2.2, row 216
    ("9,9%*",      "6,4%*",     "*",     6.4,    0.05),      # row 283
    ("9,9%**",     "8,7%**",    "**",    8.7,    0.05),      # row 285
    ("9.9%",       "23.3%",     "",      23.3,   0.05),      # row 223
    ("-9.9%",      "-0.7%",     "",      -0.7,   0.05),      # row 271
    ("9.9%*",      "4.2%*",     "*",     4.2,    0.05),      # row 275
    ("9.9%**",     "12.9%**",   "**",    12.9,   0.05),      # row 268
    ("9.9%***",    "9.5%***",   "***",   9.5,    0.05),      # row 276
    ("9.9%9)",     "11.4%1)",   "1)",    11.4,   0.05),      # row 270: '1)' is a footnote mark
    ("9.9",        "0.001",     "",      0.001,  0.0005),    # Tabel 3.7, row 280
    ("9.9",        "5.78",      "",      5.78,   0.005),     # row 293
    ("9.9 (mark elsewhere)", "0.056", "*", 0.056, 0.0005),   # row 278: the mark is on the P>z cell
    ("9.9*",       "4.26*",     "*",     4.26,   0.005),     # row 316
    ("9.9**",      "4.43**",    "**",    4.43,   0.005),     # row 315
    ("9.9***",     "6.18***",   "***",   6.18,   0.005),     # row 294
    ("9.9)",       "4.291)",    "1)",    4.29,   0.005),     # row 310: 4.29 with footnote 1)
    ("9.9*9)",     "6.36*1)",   "*1)",   6.36,   0.005),     # row 406
    ("9.9l",       "5.7l",      "",      5.71,   0.005),     # row 332: letter l = digit 1 (PDF extraction)
    ("-9.9)",      "-4.71)",    "1)",    -4.7,   0.05),      # Tabel A.2, row 503: -4.7 with footnote 1)
    ("-9.9*",      "-3.3*",     "*",     -3.3,   0.05),      # Tabel A.1, row 486
    ("-9.9**",     "-1.35**",   "**",    -1.35,  0.005),     # row 520
    ("-9.9***",    "-1.7***",   "***",   -1.7,   0.05),      # row 499
    (".9*",        ".47*",      "*",     0.47,   0.005),     # row 485: no leading digit
    (".9**",       ".76**",     "**",    0.76,   0.005),     # row 495
    (".9***",      ".82***",    "***",   0.82,   0.005),     # row 490
    (".9)",        ".681)",     "1)",    0.68,   0.005),     # row 492
    ("-.9*",       "-.69*",     "*",     -0.69,  0.005),     # row 489
    ("-.9**",      "-.88**",    "**",    -0.88,  0.005),     # row 510
    ("-.9***",     "-.97***",   "***",   -0.97,  0.005),     # row 512
    ("-.9)",       "-.392)",    "2)",    -0.39,  0.005),     # row 488: footnote 2)
    ("--.9***",    "--.67***",  "***",   -0.67,  0.005),     # row 514: doubled minus
    ("integer",    "12",        "",      12.0,   0.5),
]


@pytest.mark.parametrize("shape, token, mark, number, h", TOKEN_SHAPES, ids=[t[0] for t in TOKEN_SHAPES])
def test_half_unit_and_number_of_every_printed_token_shape(shape, token, mark, number, h):
    parsed = parse_printed(token)
    assert parsed.number == pytest.approx(number, abs=1e-12)
    assert parsed.mark == ("" if shape.endswith("(mark elsewhere)") else mark)
    assert half_unit(token) == pytest.approx(h, rel=1e-12)


def test_footnote_marks_are_cut_off_even_when_the_mark_is_not_given():
    assert half_unit("-4.71)") == pytest.approx(0.05) and half_unit("6.36*1)") == pytest.approx(0.005)
    assert math.isnan(half_unit("n.v.t.")) and parse_printed("n.v.t.") is None


def test_the_token_shapes_tested_are_all_the_shapes_in_the_transcription():
    est = pd.read_csv(REPO / "inputs" / "estimates.csv", dtype=str, keep_default_na=False)
    shapes = {re.sub(r"\d+", "9", t) for t in est["printed"]}
    tested = {re.sub(r"\d+", "9", t[1]) for t in TOKEN_SHAPES}
    assert shapes <= tested, sorted(shapes - tested)


def test_every_printed_token_reads_as_its_transcribed_estimate_on_the_grid_of_its_half_unit():
    """The number read from `printed` (marks cut off) equals the independently typed `estimate`, and the estimate
    is a multiple of twice the half-unit: so no footnote digit is read as a decimal and no decimal is dropped."""
    est = pd.read_csv(REPO / "inputs" / "estimates.csv", dtype=str, keep_default_na=False)
    bad = []
    for i, r in enumerate(est.itertuples(), start=1):
        value, h = parse_printed(r.printed).number, half_unit(r.printed)
        steps = float(r.estimate) / (2 * h)
        if abs(value - float(r.estimate)) > 1e-9 or abs(steps - round(steps)) > 1e-6:
            bad.append((i, r.printed, r.significance, r.estimate, value, h))
    assert not bad, bad


def _typed_half_unit(estimate: str) -> float:
    """Half a unit of the last decimal the transcriber typed in `estimate` (a dot decimal, trailing zeros kept)."""
    return 0.5 * 10.0 ** -(len(estimate.split(".")[1]) if "." in estimate else 0)


def test_the_half_unit_read_from_printed_equals_the_decimals_typed_in_estimate_for_every_row():
    est = pd.read_csv(REPO / "inputs" / "estimates.csv", dtype=str, keep_default_na=False)
    bad = [(i, r.printed, r.estimate) for i, r in enumerate(est.itertuples(), start=1)
           if half_unit(r.printed) != _typed_half_unit(r.estimate)]
    assert not bad, bad


@pytest.fixture(scope="module")
def real_harmonised():
    from meta.read.load import load_inputs
    inputs = load_inputs(REPO / "inputs")
    legend = {(r.source_file, r.source_table, r.mark): (r.p_below, r.p_at_least) for r in inputs.legends.itertuples()}
    est = pd.read_csv(REPO / "inputs" / "estimates.csv", dtype=str, keep_default_na=False)
    return harmonise(inputs.estimates, inputs.outcomes, inputs.arms, inputs.legends, "central"), legend, est


def test_every_se_from_marks_gives_the_printed_estimate_a_p_value_its_mark_allows(real_harmonised):
    """p = 2(1 - Phi(|e|/SE)) for some |e| within rounding of the printed number must lie in the mark's range,
    with the rounding taken from the decimals typed in `estimate` (not from half_unit). Wageningen A.2 row 511
    ('-.86**', p in [0.01, 0.05)) had SE 0.278, i.e. p = 0.002 even for |e| = 0.865."""
    h, legend, est = real_harmonised
    bad = []
    for i in np.nonzero((h["se_method"] == "from_significance_marks").to_numpy() & h["sei"].notna().to_numpy())[0]:
        r, typed = h.iloc[i], est.iloc[i]
        f = 100.0 if r["unit"] == "proportion" and r["unit_h"] == "percentage_points" else 1.0
        below, at_least = legend[(r["source_file"], r["source_table"], typed["significance"])]
        e, d = abs(float(typed["estimate"])) * f, _typed_half_unit(typed["estimate"]) * f
        p_small = 2 * stats.norm.sf((e + d) / r["sei"])   # the smallest p the rounding allows
        p_large = 2 * stats.norm.sf(max(e - d, 0) / r["sei"])
        if (not math.isnan(below) and p_small >= below * (1 + 1e-9)) or \
                (not math.isnan(at_least) and p_large < at_least * (1 - 1e-9)):
            bad.append((int(r["input_row"]), r["printed"], r["sei"], p_small, p_large))
    assert not bad, bad


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


def test_the_common_se_factor_is_the_root_of_the_inverse_arm_sizes_and_1_where_an_n_is_unknown():
    assert common_se_factor(130, 131) == pytest.approx(math.sqrt(1 / 130 + 1 / 131), rel=1e-15)
    assert common_se_factor(None, 131) == common_se_factor(math.nan, 131) == common_se_factor(130, 0) == 1.0
    np.testing.assert_allclose(common_se_factor([100, 50], 100), [math.sqrt(0.02), math.sqrt(0.03)], rtol=1e-15)


# --------------------------------------------------------------------------- shares and N against the printed mark
def test_a_binomial_se_inside_the_bracket_of_its_mark_is_kept_and_the_bracket_narrowed_to_the_intersection():
    outcomes, arms, legends = _registers()
    # Nijmegen legend: no mark = p >= 0.10 -> SE >= (7 - 0.5)/1.645 = 3.95; binomial SE of 25% (100) vs 18% (90):
    # 100*sqrt(.25*.75/100 + .18*.82/90) = 5.97; shares known to +-0.005 (the effect's decimals)
    rows = pd.DataFrame([_row(1, estimate=0.07, share_arm=0.25, share_control=0.18, n_arm=100, n_control=90,
                              printed="0,07", significance="")])
    h = harmonise(rows, outcomes, arms, legends)
    s = 100 * math.sqrt(0.25 * 0.75 / 100 + 0.18 * 0.82 / 90)
    s_lo = 100 * math.sqrt(0.245 * 0.755 / 100 + 0.175 * 0.825 / 90)
    s_hi = 100 * math.sqrt(0.255 * 0.745 / 100 + 0.185 * 0.815 / 90)
    assert h["se_method"][0] == "from_shares_binomial_and_marks" and h["eligible"][0]
    assert math.isclose(h["sei"][0], s)
    assert math.isclose(h["sei_low"][0], s_lo) and math.isclose(h["sei_high"][0], s_hi)


def test_a_binomial_se_outside_the_bracket_of_its_mark_excludes_the_row_and_says_why():
    outcomes, arms, legends = _registers()
    # '*' (p < 0.05) on 4 pp says SE < 4.5/1.96 = 2.30; the binomial SE of 20% (100) vs 16% (90) is
    # 100*sqrt(.2*.8/100 + .16*.84/90) = 5.56
    rows = pd.DataFrame([_row(1, estimate=0.04, share_arm=0.20, share_control=0.16, n_arm=100, n_control=90,
                              printed="0,04*", significance="*"),
                         _row(2, arm="in", comparator="ex", estimate=0.04, share_arm=0.20, share_control=0.16,
                              n_arm=100, n_control=90, printed="0,04*", significance="*")])
    h = harmonise(rows, outcomes, arms, legends)
    assert not h["eligible"].any()
    assert h["reason"][0].startswith("standard error contradicts the printed mark")
    assert "5.56" in h["reason"][0] and "[0.00, 2.30]" in h["reason"][0]
    assert h["reason"][1].startswith("between-arm contrast") and "besides, its binomial SE 5.56" in h["reason"][1]


def test_a_mark_that_bounds_nothing_leaves_the_binomial_se_alone():
    outcomes, arms, legends = _registers()
    legends = pd.concat([legends, pd.DataFrame([dict(source_file="f", source_table="T", mark="2)", p_below=math.nan,
                                                     p_at_least=math.nan, two_sided="true")])], ignore_index=True)
    rows = pd.DataFrame([_row(1, estimate=0.04, share_arm=0.20, share_control=0.16, n_arm=100, n_control=90,
                              printed="0,042)", significance="2)")])
    h = harmonise(rows, outcomes, arms, legends)
    assert h["se_method"][0] == "from_shares_binomial" and h["eligible"][0]
    assert h["sei_low"][0] == h["sei_high"][0] == h["sei"][0]


def test_wageningen_table_3_5_shares_are_checked_against_their_marks(real_harmonised):
    """004 Tabel 3.5 (lines 2649-2661): 'Treatments' vs control prints 4.2%* (p in [0.05, 0.10): SE in
    [4.15/1.960, 4.25/1.645] = [2.12, 2.58]) with shares 19.6% (N 303) and 15.4% (N 88): binomial SE
    100*sqrt(.196*.804/303 + .154*.846/88) = 4.47 -> contradiction. The arm-vs-control rows are unmarked (p >= 0.15)
    and agree with their binomial SE."""
    h, _, _ = real_harmonised
    row = h.set_index("input_row")
    s275 = 100 * math.sqrt(0.196 * 0.804 / 303 + 0.154 * 0.846 / 88)
    assert f"{s275:.2f}" == "4.47" and "[2.12, 2.58]" in row.loc[275, "reason"]
    assert "contradict" in row.loc[275, "reason"] and not row.loc[275, "eligible"]
    for i in (268, 270):
        assert "contradict" in row.loc[i, "reason"]
    for i, (p1, n1) in {267: (0.230, 103), 269: (0.215, 92), 271: (0.147, 108)}.items():
        assert row.loc[i, "se_method"] == "from_shares_binomial_and_marks" and row.loc[i, "eligible"]
        assert math.isclose(row.loc[i, "sei"], 100 * math.sqrt(p1 * (1 - p1) / n1 + 0.154 * 0.846 / 88))
    contradicted = {int(i) for i, r in row.iterrows() if "contradict" in str(r["reason"])}
    assert contradicted == {268, 270, 275}


def test_one_harmonisation_gives_each_se_policy_the_rows_a_fresh_one_gives_whatever_was_asked_before():
    from meta.effects.harmonise import Harmonisation
    from meta.read.load import load_inputs

    i = load_inputs(REPO / "inputs")
    shared = Harmonisation(i.estimates, i.outcomes, i.arms, i.legends)
    conservative = shared.under("conservative")
    central = shared.under("central")
    pd.testing.assert_frame_equal(central, Harmonisation(i.estimates, i.outcomes, i.arms, i.legends).under("central"),
                                  check_exact=True)
    pd.testing.assert_frame_equal(shared.under("conservative"), conservative, check_exact=True)
    marks = (central["se_method"] == "from_significance_marks").to_numpy()
    assert marks.any() and (central["sei"].to_numpy()[marks] != conservative["sei"].to_numpy()[marks]).any()
    # the policy chooses only the mark rows' SE
    assert np.array_equal(central["sei"].to_numpy()[~marks], conservative["sei"].to_numpy()[~marks], equal_nan=True)

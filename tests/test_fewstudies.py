"""Few studies, honest answers (issue 12): the headline follows k, decision probabilities, priors from the plan, and no
printed interval outside what its unit allows.

Expected values come from the engine (metafor-validated) and from ``bayes_pool`` (validated against an independent
quadrature in tests/test_bayes_pool_cli.py), never from the code under test; the "second municipality" data are
SYNTHETIC rows appended to the real inputs, named so in their note.
"""
from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest
from scipy import stats

from meta.models import engine

from meta.analyses import fewstudies, sensitivity, tables

from meta.read import load
from meta.models.bayes import bayes_pool
from meta.analyses.fewstudies import add_few_studies_columns, impossible_columns, prior_sensitivity_rows, range_widths
from meta.errors import InputError
from meta.plan import Plan, load_plan
from meta.cells import CELL_COLUMNS
from meta.plan import BAYES_UNIT_KEYS
from tests.conftest import REPO
from tests.synthetic import run_with_synthetic_second_municipality


@pytest.fixture(scope="module")
def outcomes():
    return load.load_inputs(REPO / "inputs").outcomes


def _studies(cells):
    """cells: {(outcome, arm_class): [(municipality, yi, sei), ...]} for hours_gt12 / wellbeing at 16 months."""
    rows = []
    for (outcome, arm_class), studies in cells.items():
        unit = {"hours_gt12": "percentage_points", "wellbeing_0_10": "scale_0_10"}[outcome]
        for m, y, se in studies:
            rows.append(dict(outcome_key=outcome, outcome=outcome, horizon_months=16, period="m16", arm_class=arm_class,
                             unit_h=unit, municipality=m, arm=arm_class, yi=y, sei=se, se_method="reported_se"))
    return pd.DataFrame(rows)


def _pooled(studies, outcomes, plan):
    raw = engine.pool_cells(studies, CELL_COLUMNS, plan.method, plan.test, plan.level)
    return add_few_studies_columns(tables.pooled_table(raw, studies, outcomes, plan), studies, outcomes, plan)


CELLS = {
    ("hours_gt12", "exemption"): [("nijmegen", -12.0, 5.35)],
    ("hours_gt12", "intensive"): [("nijmegen", -12.0, 5.35), ("wageningen", 8.0, 6.0)],
    ("hours_gt12", "release"): [(m, y, 4.0) for m, y in zip(("groningen", "nijmegen", "tilburg", "utrecht", "deventer"),
                                                             (-3.0, 1.0, -5.0, 2.0, -1.0))],
    ("wellbeing_0_10", "exemption"): [("nijmegen", -0.44, 0.2), ("wageningen", -0.1, 0.25)],
}


@pytest.fixture(scope="module")
def pooled(outcomes):
    studies = _studies(CELLS)
    return studies, _pooled(studies, outcomes, Plan()).set_index(["outcome_key", "arm_class"])


def test_two_municipalities_get_the_bayesian_headline_with_the_plans_prior_for_their_unit(pooled):
    studies, p = pooled
    r = p.loc[("hours_gt12", "intensive")]
    ref = bayes_pool([-12.0, 8.0], [5.35**2, 6.0**2], tau_prior_scale=5.0, delta=2.0)
    assert r["headline"] == "bayes" and "half-normal" in r["headline_model"] and "scale 5" in r["headline_model"]
    for col, val in (("estimate", ref.estimate), ("se", ref.sd), ("ci_low", ref.ci_low), ("ci_high", ref.ci_high),
                     ("pi_low", ref.pi_low), ("pi_high", ref.pi_high), ("p_gt_0", ref.p_gt_0),
                     ("p_lt_minus_delta", ref.p_lt_minus_delta), ("p_within_delta", ref.p_within_delta)):
        assert r[col] == pytest.approx(val, rel=1e-12), col
    assert math.isnan(r["pval"]) and r["p_harm"] == r["p_lt_minus_delta"]  # hours > 12: higher is better
    w = p.loc[("wellbeing_0_10", "exemption")]
    ref = bayes_pool([-0.44, -0.1], [0.2**2, 0.25**2], tau_prior_scale=0.5, delta=0.2)
    assert w["headline"] == "bayes" and w["estimate"] == pytest.approx(ref.estimate, rel=1e-12)
    assert (w["tau_prior_scale"], w["delta"]) == (0.5, 0.2)


def test_classical_fits_stay_beside_the_bayesian_headline(pooled):
    studies, p = pooled
    r = p.loc[("hours_gt12", "intensive")]
    y, v = [-12.0, 8.0], [5.35**2, 6.0**2]
    hksj, wald, fe = engine.pool(y, v, "REML", "adhoc"), engine.pool(y, v, "REML", "z"), engine.pool(y, v, "FE", "z")
    assert (r["classical_estimate"], r["classical_ci_low"], r["classical_ci_high"], r["classical_pi_high"]) == \
        pytest.approx((hksj.estimate, hksj.ci_low, hksj.ci_high, hksj.pi_high), rel=1e-9)
    assert (r["wald_ci_low"], r["wald_ci_high"]) == pytest.approx((wald.ci_low, wald.ci_high), rel=1e-9)
    assert (r["fe_estimate"], r["fe_ci_low"], r["fe_ci_high"]) == pytest.approx((fe.estimate, fe.ci_low, fe.ci_high),
                                                                               rel=1e-9)
    # the classical interval of two discordant municipalities exceeds what a difference of shares can be
    assert r["classical_ci_low"] < -100 and r["classical_ci_high"] > 100
    assert {"classical_ci_low", "classical_ci_high", "classical_pi_low", "classical_pi_high"} <= set(
        r["impossible"].split(";"))
    assert not {"estimate", "ci_low", "ci_high", "pi_low", "pi_high"} & set(r["impossible"].split(";"))


def test_more_than_few_studies_keep_the_classical_headline_and_one_study_is_shown_as_reported(pooled):
    studies, p = pooled
    many = p.loc[("hours_gt12", "release")]
    hksj = engine.pool([-3.0, 1.0, -5.0, 2.0, -1.0], [16.0] * 5, "REML", "adhoc")
    assert many["k"] == 5 and many["headline"] == "classical" and many["headline_model"] == "REML + adhoc"
    assert (many["estimate"], many["ci_low"], many["ci_high"]) == pytest.approx(
        (hksj.estimate, hksj.ci_low, hksj.ci_high), rel=1e-9)
    assert many["p_source"] == fewstudies.SOURCE_POSTERIOR and not math.isnan(many["p_gt_0"])
    one = p.loc[("hours_gt12", "exemption")]
    z = stats.norm.ppf(0.975)
    assert one["headline"] == "single study" and one["estimate"] == -12.0
    assert (one["ci_low"], one["ci_high"]) == pytest.approx((-12.0 - z * 5.35, -12.0 + z * 5.35), rel=1e-9)
    # its probabilities are about the municipality's own effect N(y, se²)
    assert one["p_source"] == fewstudies.SOURCE_SINGLE
    assert one["p_gt_0"] == pytest.approx(stats.norm.sf(0, -12.0, 5.35), rel=1e-12)
    assert one["p_within_delta"] == pytest.approx(stats.norm.cdf(2, -12, 5.35) - stats.norm.cdf(-2, -12, 5.35),
                                                  rel=1e-12)


def test_few_studies_k_from_the_plan_moves_the_switch(outcomes):
    studies = _studies({k: v for k, v in CELLS.items() if k[1] == "release"})
    p = _pooled(studies, outcomes, Plan(few_studies_k=5))
    assert list(p["headline"]) == ["bayes"]
    p = _pooled(studies, outcomes, Plan(few_studies_k=1))
    assert list(p["headline"]) == ["classical"]


def test_feasible_range_comes_from_the_outcome_register(outcomes):
    w = range_widths(outcomes)
    assert (w["percentage_points"], w["scale_0_10"], w["scale_1_10"], w["scale_1_6"]) == (100.0, 10.0, 9.0, 5.0)
    assert "scale_unknown" not in w and "hours_per_week" not in w
    row = {"range_high": 10.0, "ci_low": -10.5, "ci_high": 9.9, "tau2_ci_high": 100.5, "tau2": 99.0,
           "bayes_tau_ci_high": 10.2}
    assert impossible_columns(row) == ["ci_low", "bayes_tau_ci_high", "tau2_ci_high"]
    assert impossible_columns({"range_high": math.nan, "ci_low": -1e9}) == []


def test_prior_variants_are_the_plans_scale_halved_doubled_and_half_cauchy():
    studies = _studies({("hours_gt12", "intensive"): [("nijmegen", -11.0, 3.0), ("wageningen", -7.0, 3.0)]})
    rows = prior_sensitivity_rows(studies, Plan())
    assert list(rows["spec_group"]) == ["Bayesian", "prior", "prior", "prior"]
    y, v = [-11.0, -7.0], [9.0, 9.0]
    for (_, r), (s, family) in zip(rows.iterrows(), ((5.0, "halfnormal"), (2.5, "halfnormal"), (10.0, "halfnormal"),
                                                      (5.0, "halfcauchy"))):
        ref = bayes_pool(y, v, s, tau_prior=family)
        assert (r["estimate"], r["ci_low"], r["ci_high"]) == pytest.approx((ref.estimate, ref.ci_low, ref.ci_high),
                                                                          rel=1e-12)
    # here the plan's prior excludes zero but the doubled scale and the half-Cauchy prior do not
    sens = rows.assign(verdict=[sensitivity.verdict(a, b) for a, b in zip(rows["ci_low"], rows["ci_high"])])
    dep = sensitivity.prior_dependence(sens)
    assert list(dep["verdict"]) == ["negative"] and bool(dep["depends_on_prior"].iloc[0])
    assert dep["changed_by"].iloc[0] == "half-normal, scale × 2 (10);half-Cauchy, same scale (5)"
    # a single study gets no prior rows: it is shown as reported
    assert prior_sensitivity_rows(_studies({("hours_gt12", "exemption"): [("nijmegen", -12.0, 5.35)]}), Plan()).empty


# --------------------------------------------------------------------------- #
# the plan
# --------------------------------------------------------------------------- #
def test_default_plan_file_states_every_units_prior_and_delta_with_reasons():
    plan = load_plan(REPO / "inputs" / "plan.toml")
    assert plan.few_studies_k == 4
    pp, s010 = plan.bayes_unit("percentage_points"), plan.bayes_unit("scale_0_10")
    assert (pp["tau_prior_scale"], pp["delta"], s010["tau_prior_scale"], s010["delta"]) == (5.0, 2.0, 0.5, 0.2)
    for unit, *values in plan.bayes_units:
        u = plan.bayes_unit(unit)
        assert all(u[k].strip() for k in BAYES_UNIT_KEYS if k.endswith(("reason", "reason_nl"))), unit
    assert plan.bayes_unit("scale_unknown") is None


@pytest.mark.parametrize("text, message", [
    ("bayes_tau_scale_pp = 5.0\n", "replaced by bayes_units.percentage_points.tau_prior_scale"),
    ("few_studies_k = 0\n", "few_studies_k"),
    ("bayes_units.percentage_points.tau_prior_scale = 5\nbayes_units.percentage_points.delta = 2\n"
     "bayes_units.percentage_points.delta_reason = 'one in fifty'\n", "tau_prior_reason' is missing"),
    ("bayes_units.percentage_points.tau_prior_scale = 0\nbayes_units.percentage_points.tau_prior_reason = 'x'\n"
     "bayes_units.percentage_points.delta = 2\nbayes_units.percentage_points.delta_reason = 'y'\n",
     "tau_prior_scale': 0 must be a number > 0"),
    ("bayes_units.percentage_points.tau_prior_scale = 5\nbayes_units.percentage_points.tau_prior_reason = ' '\n"
     "bayes_units.percentage_points.delta = 2\nbayes_units.percentage_points.delta_reason = 'y'\n", "non-empty"),
    ("bayes_units.percentage_points.scale = 5\n", "unknown"),
])
def test_bad_few_studies_plan_settings_are_refused_naming_the_key(tmp_path, text, message):
    path = tmp_path / "plan.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(message)):
        load_plan(path)


def test_a_unit_in_the_plan_replaces_its_defaults_and_leaves_the_other_units(tmp_path):
    path = tmp_path / "plan.toml"
    path.write_text("bayes_units.scale_0_10.tau_prior_scale = 1.0\nbayes_units.scale_0_10.tau_prior_reason = 'r'\n"
                    "bayes_units.scale_0_10.delta = 0.5\nbayes_units.scale_0_10.delta_reason = 'd'\n", encoding="utf-8")
    plan = load_plan(path)
    assert plan.bayes_unit("scale_0_10") == {"tau_prior_scale": 1.0, "tau_prior_reason": "r", "delta": 0.5,
                                             "delta_reason": "d", "tau_prior_reason_nl": "r", "delta_reason_nl": "d"}
    assert plan.bayes_unit("percentage_points") == Plan().bayes_unit("percentage_points")


# --------------------------------------------------------------------------- #
# what a person sees: the default run and a run with a second municipality
# --------------------------------------------------------------------------- #
BRACKETS = re.compile(r"\[(−?-?\d+(?:[.,]\d+)?)[,;] (−?-?\d+(?:[.,]\d+)?)\]")  # [a, b] or, in Dutch, [a; b]


def _numbers_in_brackets(text):
    for a, b in BRACKETS.findall(text):
        yield tuple(float(x.replace("−", "-").replace(",", ".")) for x in (a, b))


def _without_images(html):
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)


def _headline_table(report_html):
    a = report_html.index('id="headline"')
    return report_html[a:report_html.index("</table>", a)]


def test_default_run_prints_no_impossible_interval(real_run):
    out, _ = real_run
    pooled = pd.read_csv(out / "pooled.csv")
    # concept cells with two municipalities get the Bayesian headline, the others are shown as reported
    assert (pooled["headline"] == pooled["k"].map(lambda k: "bayes" if k >= 2 else "single study")).all()
    # impossible values occur only among the classical fits kept beside the headline (printed as 'onbepaald')
    named = {c for cell in pooled["impossible"].dropna() for c in cell.split(";")}
    assert not named & {"headline", "estimate", "ci_low", "ci_high", "bayes_ci_low", "bayes_ci_high"}, named
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Beslissingskansen" in html and "Friede" in html and "Cochrane Handbook §10.10.4" in html
    pairs = list(_numbers_in_brackets(_without_images(html)))
    assert len(pairs) > 20  # every bracketed pair in the report (every unit here lies within ±100)
    for lo, hi in pairs:
        assert -100 <= lo <= hi <= 100


@pytest.fixture(scope="module")
def second_municipality(tmp_path_factory):
    """The real inputs plus SYNTHETIC Wageningen rows for 'hours > 12 h/week' at 16 months (k = 2 in two cells)."""
    return run_with_synthetic_second_municipality(tmp_path_factory.mktemp("second"),
                                                  "SYNTHETIC: a second municipality for a test")


def test_second_municipality_shows_the_bayesian_headline_and_no_impossible_interval(second_municipality):
    from meta.present import plots, report

    res = second_municipality
    p = res.pooled[res.pooled["k"] == 2].set_index("arm_class")
    assert list(p["headline"]) == ["bayes", "bayes"]
    ex = p.loc["exemption"]
    assert ex["classical_ci_low"] < -100 < 100 < ex["classical_ci_high"]  # the classical interval is impossible
    html = report.render_report(res, {}, "nl", {})
    table = _headline_table(html)
    assert table.count("Bayesiaans: mediaan [GI]") == 2 and "onbepaald (k = 2)" in table
    # "onbepaald" only for τ² and I² of two municipalities, with their own footnote; the footnote on values outside
    # the feasible range is not printed, since the classical interval stays in pooled.csv and under the forest plot
    assert "τ² en I² bij twee gemeenten" in html
    assert "de grens valt buiten wat voor deze eenheid mogelijk is" not in html
    for lo, hi in _numbers_in_brackets(_without_images(html)):  # the whole report, not only the headline table
        assert -100 <= lo <= hi <= 100
    # the forest plot: Bayesian diamond, classical fits in the footer with the impossible bound as 'onbepaald'
    rows = plots.forest_rows(res, "hours_gt12", 16, "percentage_points", "nl")
    pooled_rows = rows[rows["kind"] == "pooled"]
    assert list(pooled_rows["est"]) == pytest.approx(list(p["estimate"]))
    assert all("Bayesiaans" in label for label in pooled_rows["label"])
    footer = " ".join(rows.attrs["footer"])
    assert "REML + HKSJ" in footer and "REML + Wald" in footer and "gemeenschappelijk effect" in footer
    assert "onbepaald (k = 2)" in footer
    for lo, hi in _numbers_in_brackets(footer + " ".join(rows["ci"])):
        assert -100 <= lo <= hi <= 100
    # the workbook: impossible values become text, the raw numbers stay in pooled.csv
    from meta.write import workbook

    for lang, word in (("en", "undetermined (k = 2)"), ("nl", "onbepaald (k = 2)")):
        wb = workbook.headline_sheet(res, lang)
        row = wb[(wb["k"] == 2) & (wb["arm_class"] == ("exemption" if lang == "en" else "ontheffing"))].iloc[0]
        assert row["classical_ci_low"] == word and row["classical_ci_high"] == word
        for col in set(fewstudies.EFFECT_COLUMNS) & set(wb.columns):
            x = row[col]
            assert isinstance(x, str) or x is None or abs(x) <= 100, col


def test_decision_table_gives_probabilities_delta_with_reason_and_the_prior_dependence(second_municipality):
    from meta.present import fewstudies_report

    html = fewstudies_report.decision_section(second_municipality, "nl")
    for words in ("Kans dat het effect positief is", "Kans op schade groter dan δ",
                  "Kans dat het effect praktisch nul is", "Hangt de conclusie af van de prior?",
                  "één op de vijftig mensen in de bijstand", "half-normale prior met schaal 5 pp"):
        assert words in html, words
    p = second_municipality.pooled
    ex = p[(p["k"] == 2) & (p["arm_class"] == "exemption")].iloc[0]
    assert f"{100 * ex['p_gt_0']:.0f}%" in html
    en = fewstudies_report.decision_section(second_municipality, "en")
    assert "Probability the effect is positive" in en and "one person in fifty on welfare" in en


def test_committed_simulation_has_the_bayesian_headline_beside_hksj_at_every_k_and_the_report_quotes_it():
    from meta.present import fewstudies_report
    from meta.simulate.settings import SIMULATION_RESULTS, SIMULATION_SUMMARY
    from meta.simulate import read_summary

    results = SIMULATION_RESULTS
    t = pd.read_csv(results)
    for method, test in (("Bayes", "posterior"), ("REML", "knha")):
        part = t[(t["method"] == method) & (t["test"] == test) & (t["se_policy"] == "reported")]
        assert sorted(set(part["k"])) == [2, 3, 4, 5, 6] and part["ci_width_median"].notna().all()
    summary = SIMULATION_SUMMARY.with_name("simulation_summary.md").read_text(encoding="utf-8")
    assert "## The report's headline: Bayesian for k <= 4, REML + HKSJ above" in summary
    assert "--bayes-reps 1000" in summary  # the committed run is the one its command line says
    run = read_summary(SIMULATION_SUMMARY)  # the report reads this JSON, and the table it names
    assert run.settings.bayes_reps == 1000 and "--bayes-reps 1000" in json.loads(SIMULATION_SUMMARY.read_text())["command"]
    assert (t.loc[t["method"] == "Bayes", "reps"] == 1000).all()
    html = fewstudies_report.simulation_quote(SIMULATION_SUMMARY, "nl")
    b2 = t[(t["method"] == "Bayes") & (t["k"] == 2) & (t["tau"] == 0) & (t["se_policy"] == "reported")].iloc[0]
    assert f"{100 * b2['coverage']:.0f}% ({b2['ci_width_median']:.0f} pp)" in html
    assert "te smal" in html or "dekt" in html


def test_decision_table_says_yes_and_which_prior_when_the_conclusion_depends_on_it(outcomes):
    from types import SimpleNamespace

    from meta.present import fewstudies_report

    studies = _studies({("hours_gt12", "intensive"): [("nijmegen", -11.0, 3.0), ("wageningen", -7.0, 3.0)]})
    rows = prior_sensitivity_rows(studies, Plan())
    sens = rows.assign(verdict=[sensitivity.verdict(a, b) for a, b in zip(rows["ci_low"], rows["ci_high"])])
    res = SimpleNamespace(pooled=_pooled(studies, outcomes, Plan()), sensitivity=sens, plan=Plan(),
                          inputs=SimpleNamespace(outcomes=outcomes))
    nl = fewstudies_report.decision_section(res, "nl")
    assert "<b>ja</b>: half-normaal, schaal × 2 (10); half-Cauchy, zelfde schaal (5)" in nl
    en = fewstudies_report.decision_section(res, "en")
    assert "<b>yes</b>: half-normal, scale × 2 (10); half-Cauchy, same scale (5)" in en


def test_heterogeneity_intervals_of_two_municipalities_print_undetermined_and_keep_the_point_and_the_numbers(pooled):
    # with k = 2 the Q-profile interval for τ² (and I²) rests on Q with one degree of freedom: the Kerntabel prints
    # "onbepaald (k = 2)" for it and keeps τ² and I² themselves; pooled.csv keeps both bounds
    from meta.present import fewstudies_report as fsr
    _, p = pooled
    two, five = p.loc[("hours_gt12", "intensive")], p.loc[("hours_gt12", "release")]
    assert int(two["k"]) == 2 and math.isfinite(two["tau2_ci_low"]) and math.isfinite(two["I2_ci_high"])
    assert fsr.heterogeneity_interval_text(two, "tau2_ci_low", "tau2_ci_high", 2, "nl") == "[onbepaald (k = 2)]"
    assert fsr.heterogeneity_interval_text(two, "I2_ci_low", "I2_ci_high", 0, "en") == "[undetermined (k = 2)]"
    text = fsr.heterogeneity_interval_text(five, "tau2_ci_low", "tau2_ci_high", 2, "nl")
    assert "onbepaald" not in text and text.startswith("[") and ";" in text


def test_a_single_study_whose_se_is_only_an_upper_bound_gets_no_decision_probabilities(pooled):
    # a probability computed from a worst-case SE is no probability: the decision table says so instead
    from meta.present import fewstudies_report as fsr
    _, p = pooled
    one = p.reset_index()
    one = one[one["k"] == 1].iloc[0].copy()
    assert fsr._decision_row(one, "nl", {}, {}, "einde experiment")["p_gt_0"].endswith("%")
    one["se_upper_bound_only"] = True
    row = fsr._decision_row(one, "nl", {}, {}, "einde experiment")
    assert row["p_gt_0"] == row["p_harm"] == row["p_within"] == "niet te bepalen"


def test_range_bound_cells_print_p_as_upper_bound_mark_the_interval_and_are_counted_first(real_run):
    # by hand: the 30 single-study cells of Wageningen's survey effects (3 arms × 5 concepts × 2 waves) rest on the
    # range bound; gezondheid 2 jaar ontheffing has p = 0.9647 (pooled.csv) and is printed as an upper bound
    out, _ = real_run
    pooled = pd.read_csv(out / "pooled.csv")
    row = pooled[(pooled["outcome_key"] == "gezondheid") & (pooled["period"] == "meting_2jaar")
                 & (pooled["arm_class"] == "exemption")].iloc[0]
    assert bool(row["se_upper_bound_only"]) and round(row["pval"], 3) == 0.965
    html = (out / "report.html").read_text(encoding="utf-8")
    table = _headline_table(html)
    assert "≤0,965" in table and table.count("]†") == 30
    assert "≤ 0," not in table  # written as "<0,001" and "≥0,1" are: no space after the sign
    assert "in 30 van de 47 cellen heeft de enige studie een" in re.sub(r"\s+", " ", html)


def test_forest_weights_print_below_one_and_above_ninety_nine_percent_as_bounds_so_they_never_pass_100():
    from meta.present.plots import weight_text

    assert [weight_text(w, "nl") for w in (0.004, 0.996, 0.52, 0.48)] == ["<1%", ">99%", "52%", "48%"]


def test_a_specification_curve_draws_only_cells_where_some_specification_pools_two_studies_and_the_report_says_so():
    from meta.present.report import _uncurved
    from meta.present.spec_curve import spec_curve_jobs

    def cell(outcome, arm, ks):
        return pd.DataFrame(dict(outcome_key=outcome, period="p", arm_class=arm, unit_h="percentage_points",
                                 spec_group=["main", "estimator", "leave one out"][:len(ks)],
                                 spec=["REML + adhoc", "FE", "without a"][:len(ks)], k=ks, estimate=1.0,
                                 ci_low=0.0, ci_high=2.0, verdict="positive"))

    sens = pd.concat([cell("a", "exemption", [2, 2, 1]), cell("a", "intensive", [1, 1]),
                      cell("b", "exemption", [1, 1])], ignore_index=True)
    outcomes = pd.DataFrame(dict(outcome=["a", "b"], label_nl=["A", "B"], label_en=["A", "B"]))
    jobs = spec_curve_jobs(sens, outcomes, "nl")
    assert [j.name for j in jobs] == ["specification_curve_a"]  # b: one study in every specification
    drawn = jobs[0].payload["sens"]
    assert set(drawn["arm_class"]) == {"exemption"} and len(drawn) == 3  # every row of the drawn cell, k = 1 too
    assert _uncurved(sens, {"a": "A", "b": "B"}, "nl") == dict(n=2, outcomes="A en B")
    assert _uncurved(sens, {"a": "A", "b": "B"}, "en") == dict(n=2, outcomes="A and B")
    assert _uncurved(sens[sens["outcome_key"] == "a"].iloc[:3], {}, "nl") is None
    from meta.i18n import t

    for lang in ("nl", "en"):
        line = t("robustness_no_curve", lang, n=2, outcomes="A, B")
        assert "2" in line and "sensitivity.csv" in line


def test_specification_curve_cuts_an_interval_at_the_feasible_range_and_keeps_the_axis_within_it():
    import matplotlib.pyplot as plt

    from meta.present.plots import feasible_ranges
    from meta.present.spec_curve import draw_spec_curve

    sens = pd.DataFrame(dict(outcome_key="o", period="p", arm_class="exemption", unit_h="percentage_points",
                             spec_group=["main", "estimator"], spec=["REML + adhoc", "FE"], estimate=[-2.0, -1.0],
                             ci_low=[-120.0, -5.0], ci_high=[95.0, 3.0], verdict="no significant effect"))
    ranges = feasible_ranges(pd.DataFrame(dict(unit_h=["percentage_points"], range_high=[100.0])))
    assert ranges == {"percentage_points": 100.0}
    fig = draw_spec_curve(sens, "o", "t", "nl", ranges=ranges)
    lo, hi = fig.axes[0].get_ylim()
    assert -115 < lo < -100 and hi < 105
    labels = [x.get_text() for x in fig.axes[0].texts]  # the tick labels (spec_curve.spec_ticks)
    assert "schatter: vast effect (FE)" in labels and "hoofdanalyse: REML + Hartung-Knapp, ad-hocvariant" in labels
    assert any("afgekapt bij ±100" in x.get_text() for x in fig.legends[0].get_texts())
    plt.close(fig)


def test_classical_interval_of_two_municipalities_prints_undetermined_even_inside_the_feasible_range(pooled):
    # wellbeing exemption: two studies, HKSJ on t with 1 df; its bounds lie inside ±10 (not "impossible") yet span
    # about 12.7 standard errors each way: forest footer and workbook print "onbepaald (k = 2)" for them, the Wald and
    # common-effect intervals stay numbers, pooled.csv keeps the bounds
    from meta.present import fewstudies_report as fsr
    _, p = pooled
    two = p.loc[("wellbeing_0_10", "exemption")]
    assert int(two["k"]) == 2 and -10 < two["classical_ci_low"] < two["classical_ci_high"] < 10
    assert not fsr.impossible(two) & {"classical_ci_low", "classical_ci_high"}
    text = fsr.classical_fits_text(two, 2, "nl")
    assert text.startswith("REML + ") and "[onbepaald (k = 2)]" in text  # once for the interval, not per bound
    assert "onbepaald (k = 2); onbepaald" not in text
    assert text.count("onbepaald") == 1  # Wald and common effect keep their numbers
    five = p.loc[("hours_gt12", "release")]
    assert "onbepaald" not in fsr.classical_fits_text(five, 1, "nl")
    assert fsr.one_df(two) and not fsr.one_df(five)


def test_specification_curve_draws_a_specification_not_counted_in_the_verdict_hollow_grey_with_its_legend_entry():
    # a plain Hartung-Knapp row with scale factor < 1 is listed but not counted (sensitivity.robustness); the curve
    # must not draw it in the verdict colour of a counted specification
    import matplotlib.pyplot as plt

    from meta.present.spec_curve import NOT_COUNTED_COLOR, SPEC_COLORS, draw_spec_curve
    from matplotlib.colors import to_hex

    sens = pd.DataFrame(dict(outcome_key="o", period="p", arm_class="exemption", unit_h="scale_points",
                             spec_group=["main", "test"], spec=["REML + adhoc", "knha"], estimate=[-1.0, -0.9],
                             ci_low=[-3.0, -1.5], ci_high=[1.0, -0.2],
                             verdict=["no significant effect", "negative"],
                             not_counted=["", "knha scale factor q = 0.4 < 1: not counted in the verdict"]))
    for lang, entry in (("nl", "niet meegeteld (schaalfactor < 1)"), ("en", "not counted (scale factor < 1)")):
        fig = draw_spec_curve(sens, "o", "t", lang)
        points = fig.axes[0].collections[-1]  # the estimates (one scatter), sorted by estimate: main first
        faces = [to_hex(c) for c in points.get_facecolors()]
        edges = [to_hex(c) for c in points.get_edgecolors()]
        assert faces[1] == "#ffffff" and edges[1] == NOT_COUNTED_COLOR != SPEC_COLORS["negative"]
        assert faces[0] == SPEC_COLORS["no significant effect"]
        assert entry in [x.get_text() for x in fig.legends[0].get_texts()]
        plt.close(fig)


def test_specification_curve_marks_an_outer_bound_with_a_dagger_and_footnote_and_not_in_a_verdict_colour():
    # 'gemeente weggelaten: Nijmegen' leaves Wageningen alone, whose SE is only an upper bound: its interval is an
    # outer bound (the Kerntabel's †), not a verdict 'geen significant effect'
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    from meta.present.fewstudies_report import UPPER_MARK
    from meta.present.spec_curve import SPEC_COLORS, UPPER_COLOR, draw_spec_curve

    sens = pd.DataFrame(dict(outcome_key="o", period="p", arm_class="exemption", unit_h="scale_points",
                             spec_group=["main", "leave one out"], spec=["REML + adhoc", "without nijmegen"],
                             k=[2, 1], estimate=[-1.0, 0.03], ci_low=[-3.0, -4.0], ci_high=[1.0, 4.0],
                             verdict="no significant effect", not_counted="", se_upper_bound_only=[False, True]))
    fig = draw_spec_curve(sens, "o", "t", "nl")
    labels = [x.get_text() for x in fig.axes[0].texts]
    assert f"gemeente weggelaten: Nijmegen {UPPER_MARK}" in labels
    assert "hoofdanalyse: REML + Hartung-Knapp, ad-hocvariant" in labels  # no mark on the pooled row
    faces = [to_hex(c) for c in fig.axes[0].collections[-1].get_facecolors()]
    assert faces == [SPEC_COLORS["no significant effect"], UPPER_COLOR] and UPPER_COLOR not in SPEC_COLORS.values()
    assert any(x.get_text().startswith(UPPER_MARK) and "buitengrens" in x.get_text() for x in fig.texts)
    plt.close(fig)


def test_overview_figure_draws_an_outer_bound_as_an_open_square_with_a_dagger_and_the_footnote():
    # a Wageningen survey row whose SE is only an upper bound: its interval is an outer bound (the Kerntabel's †)
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    from meta.present.fewstudies_report import UPPER_MARK
    from meta.present.overview import draw_overview_rows

    rows = pd.DataFrame([dict(kind="header", label="Ontheffing", unit_h="", studies=[], pooled=None, upper=[]),
                         dict(kind="cell", label=f"welbevinden {UPPER_MARK}", unit_h="scale_0_10",
                              studies=[("nijmegen", -0.5, -0.9, -0.1), ("wageningen", 0.03, -4.0, 4.1)],
                              pooled=(-0.47, -1.5, 0.6), upper=[False, True])])
    fig = draw_overview_rows(rows, [("nijmegen", "Nijmegen"), ("wageningen", "Wageningen")], 95.0, "nl")
    squares = fig.axes[0].collections[-1]
    faces, edges = [to_hex(c) for c in squares.get_facecolors()], [to_hex(c) for c in squares.get_edgecolors()]
    assert faces[1] == "#ffffff" != edges[1] and faces[0] == edges[0]  # Wageningen open, Nijmegen filled
    assert any(x.get_text().startswith(UPPER_MARK) and "buitengrens" in x.get_text() for x in fig.texts)
    plt.close(fig)


def test_specification_curve_legend_with_five_entries_stays_inside_the_figure():
    # English, an interval cut at the feasible range and a specification not counted: six legend entries (the
    # three verdicts, each drawn in its colour by a counted specification since 1b44148, the main analysis' marker
    # and the two notes): two rows of three
    import matplotlib.pyplot as plt

    from meta.present.plots import feasible_ranges
    from meta.present.spec_curve import draw_spec_curve

    sens = pd.DataFrame(dict(outcome_key="o", period="p", arm_class="exemption", unit_h="scale_0_10",
                             spec_group=["main", "test", "estimator", "SE policy"],
                             spec=["REML + adhoc", "knha", "FE", "conservative"], k=2,
                             estimate=[-1.0, -0.9, 0.5, -0.8], ci_low=[-30.0, -1.5, 0.1, -1.4],
                             ci_high=[1.0, -0.2, 0.9, -0.1],
                             verdict=["no significant effect", "negative", "positive", "negative"],
                             not_counted=["", "knha scale factor q = 0.4 < 1", "", ""]))
    fig = draw_spec_curve(sens, "o", "t", "en",
                          ranges=feasible_ranges(pd.DataFrame(dict(unit_h=["scale_0_10"], range_high=[10.0]))))
    fig.canvas.draw()
    box, page = fig.legends[0].get_window_extent(), fig.bbox
    assert len(fig.legends[0].get_texts()) == 6
    assert box.x0 >= page.x0 and box.x1 <= page.x1 + 0.5
    plt.close(fig)


def test_overview_past_eight_municipalities_draws_its_ticks_without_a_matplotlib_warning():
    # at 60 SYNTHETIC municipalities the overview's ticks ('|', an unfilled marker) were given edge colours, which
    # matplotlib ignores with a UserWarning listing every colour (75 kB on stderr per run)
    import warnings

    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    from meta.present.overview import MANY_COLOR, OVERVIEW_MAX_COLORED, draw_overview_rows

    n = OVERVIEW_MAX_COLORED + 2
    munis = [(f"synthetic_{i:03d}", f"SYNTHETIC {i:03d}") for i in range(1, n + 1)]
    rows = pd.DataFrame([dict(kind="header", label="Ontheffing", unit_h="", studies=[], pooled=None, upper=[]),
                         dict(kind="cell", label="werk", unit_h="percentage_points",
                              studies=[(m, float(i) - 5, float(i) - 9, float(i) - 1) for i, (m, _) in enumerate(munis)],
                              pooled=(-0.5, -2.0, 1.0), upper=[False] * n)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = draw_overview_rows(rows, munis, 95.0, "nl")
        fig.canvas.draw()
    ticks = fig.axes[0].collections[-1]
    assert {to_hex(c) for c in ticks.get_facecolors()} == {to_hex(MANY_COLOR)} and len(ticks.get_offsets()) == n
    plt.close(fig)


@pytest.mark.parametrize("folder", ["inputs", "synthetic"])
def test_the_first_figures_are_the_same_from_the_headline_fits_alone_and_the_completed_results_are_the_whole_ones(
        folder, tmp_path, monkeypatch):
    """``meta run`` hands the forest plots and the overview results whose pooled table has the Bayesian fits of the
    cells with a Bayesian headline only (analyse(figures_first=True)); the other cells are fitted after the hand-off
    (pipeline.complete). The real inputs have single studies (k = 1) and pairs (Bayesian headline); the SYNTHETIC
    ones six municipalities per cell (k > few_studies_k: the classical headline). The side-by-side table and the
    coverage matrix are made after the hand-off too. A spare leader is sent only what those figures read
    (outputs.first_figures_read)."""
    from meta.analyses import pipeline
    from meta.models import bayes_many
    from meta.present.figures import job_key
    from meta.write import outputs
    from tests.benchmarks.synthetic_scale import make_scaled_inputs

    inputs = (REPO / "inputs" if folder == "inputs" else
              make_scaled_inputs(tmp_path / "inputs", 6, outcomes=["income_gt70_wml"], horizons=[16]))
    plan = load_plan(inputs / "plan.toml")
    fitted = []
    fit_one = bayes_many._fit_one
    monkeypatch.setattr(bayes_many, "_fit_one", lambda call: fitted.append(call) or fit_one(call))
    first = pipeline.analyse(inputs, plan, sensitivity=False, figures_first=True)
    bayes_first = first.pooled["headline"] == fewstudies.HEADLINE_BAYES
    assert first.pooled["bayes_estimate"].notna().tolist() == bayes_first.tolist()
    assert len(fitted) == bayes_first.sum()
    whole = pipeline.complete(first)
    assert whole.incomplete is None and (~whole.pooled["bayes_estimate"].notna()).sum() < (~bayes_first).sum()
    assert len(first.side_by_side) == len(first.coverage) == 0 < len(whole.side_by_side) < len(whole.coverage)
    n_fits = len(fitted)
    at_once = pipeline.analyse(inputs, plan, sensitivity=False)
    for table in ("pooled", "side_by_side", "coverage"):
        pd.testing.assert_frame_equal(getattr(whole, table), getattr(at_once, table), check_exact=True)
    assert len(fitted) == 2 * n_fits  # as many fits as analyse alone makes: none twice
    sent = outputs.first_figures_read(first)  # what a spare leader is sent: what the figures read, no more
    assert len(sent.harmonised) == len(sent.inputs.estimates) == 0 < len(sent.studies)
    keys = [[job_key(job, "same code") for job in outputs._first_figures(r, lang, svg)]
            for lang, svg in (("nl", False), ("en", True)) for r in (first, whole, sent)]
    assert len(keys[0]) > 1 and keys[0] == keys[1] == keys[2] and keys[3] == keys[4] == keys[5] != keys[0]


def test_fits_the_figures_do_not_read_are_made_first_all_the_same_when_they_would_go_to_worker_processes(
        tmp_path, monkeypatch):
    """At scale (60 SYNTHETIC municipalities: 102 fits of classical-headline cells) analyse(figures_first=True)
    fits every cell before the hand-off, in worker processes while the figure leader warms up, as analyse() does;
    they are deferred only where they would run one after another in this process (inputs/: 37 single studies)."""
    from meta.analyses import pipeline
    from meta.models import bayes_many
    from tests.benchmarks.synthetic_scale import make_scaled_inputs

    inputs = make_scaled_inputs(tmp_path / "inputs", 6, outcomes=["income_gt70_wml"], horizons=[16])
    plan = load_plan(inputs / "plan.toml")
    first = pipeline.analyse(inputs, plan, sensitivity=False, figures_first=True)
    assert first.pooled["bayes_estimate"].isna().all()  # k = 6: no Bayesian headline, nothing fitted yet
    monkeypatch.setattr(bayes_many, "PARALLEL_MIN_FITS", 1)  # these few fits would now go to worker processes
    if not bayes_many.parallel_workers(len(first.pooled)):
        pytest.skip("one CPU or no fork: fits are never shared among worker processes here")
    first = pipeline.analyse(inputs, plan, sensitivity=False, figures_first=True)
    assert first.pooled["bayes_estimate"].notna().all()
    pd.testing.assert_frame_equal(first.pooled, pipeline.complete(first).pooled, check_exact=True)

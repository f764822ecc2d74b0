"""LOEP concepts: the harmonisation register, Wageningen's survey effects and the pools they make.

The pooled cell is recomputed here by hand from ``inputs/`` (printed numbers, the register's transform, a grid
REML and the Hartung-Knapp interval written out in numpy), independently of ``meta.models.engine``.
"""
from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from meta.effects import concepts

from meta.analyses import pipeline
from meta.plan import load_plan
from tests.conftest import REPO, SEEDS, needs_seeds

S = dict(dtype=str, keep_default_na=False)
INPUTS = REPO / "inputs"


@pytest.fixture(scope="module")
def results():
    return pipeline.analyse(INPUTS, load_plan(INPUTS / "plan.toml"))


def test_every_transcribed_outcome_row_is_mapped_or_listed_as_deliberately_unmapped():
    est = pd.read_csv(INPUTS / "estimates.csv", **S)
    reg = pd.read_csv(INPUTS / "harmonisation.csv", **S)
    listed = set(zip(reg["municipality"], reg["outcome"], reg["horizon_months"]))
    missing = sorted(set(zip(est["municipality"], est["outcome"], est["horizon_months"])) - listed)
    assert not missing, f"neither mapped nor listed as unmapped in harmonisation.csv: {missing[:5]}"
    assert (reg["reason"].str.len() > 20).all() and (reg["source_lines"] != "").all()


def test_the_register_check_catches_an_unlisted_row(tmp_path):
    """The check above can fail: a transcribed row whose (municipality, outcome, horizon) is not in the register."""
    est = pd.read_csv(INPUTS / "estimates.csv", **S)
    reg = pd.read_csv(INPUTS / "harmonisation.csv", **S)
    reg = reg[~((reg["outcome"] == "hours_gt12") & (reg["municipality"] == "nijmegen"))]
    listed = set(zip(reg["municipality"], reg["outcome"], reg["horizon_months"]))
    assert ("nijmegen", "hours_gt12", "16") in set(zip(est["municipality"], est["outcome"], est["horizon_months"])) - listed


def test_a_row_missing_from_the_register_is_excluded_with_that_reason(tmp_path, results):
    folder = tmp_path / "inputs"
    folder.mkdir()
    for f in INPUTS.glob("*.csv"):
        (folder / f.name).write_bytes(f.read_bytes())
    reg = pd.read_csv(folder / "harmonisation.csv", **S)
    reg[~((reg["outcome"] == "hours_gt12") & (reg["municipality"] == "nijmegen"))].to_csv(
        folder / "harmonisation.csv", index=False, lineterminator="\n")
    res = pipeline.analyse(folder, results.plan)
    hit = res.excluded[(res.excluded["outcome"] == "hours_gt12") & (res.excluded["model"] == "loep")
                       & (res.excluded["comparator"] == "control")]
    assert len(hit) == 2 and hit["reason"].str.startswith("no row in harmonisation.csv").all()


@needs_seeds
def test_every_cited_source_line_exists_in_its_seed():
    lengths = {p.name[:3]: len(p.read_text(encoding="utf-8").splitlines()) for p in SEEDS.glob("00*.txt")}
    for name in ("harmonisation.csv", "concepts.csv", "periods.csv"):
        for cell in pd.read_csv(INPUTS / name, **S)["source_lines"]:
            for ref in filter(None, cell.split(";")):
                doc, lines = ref.split(":")
                assert max(map(int, lines.split("-"))) <= lengths[doc], (name, ref)


@needs_seeds
def test_word_for_word_equivalences_hold_in_the_seeds():
    """The questions the register pools as one concept are printed in both reports (lines cited in the register)."""
    text = {p.name[:3]: p.read_text(encoding="utf-8").splitlines() for p in SEEDS.glob("00*.txt")}
    same = {
        "Wat vindt u van uw gezondheid?": (("002", 780), ("004", 3452)),
        "Ik kan betaald werk vinden als ik er echt moeite voor doe": (("002", 797), ("004", 4002)),
        "de meeste mensen te vertrouwen zijn": (("002", 788), ("004", 4176)),
    }
    for words, places in same.items():
        for doc, line in places:
            window = " ".join(" ".join(text[doc][line - 1:line + 3]).split())  # the report text wraps lines
            assert words in window, (words, doc, line)


def test_werk_pools_nijmegen_and_wageningen_for_exemption_and_intensive(results):
    p = results.pooled
    for arm_class in ("exemption", "intensive"):
        row = p[(p["outcome_key"] == "werk") & (p["period"] == "einde_experiment") & (p["arm_class"] == arm_class)]
        assert len(row) == 1
        r = row.iloc[0]
        assert r["k"] == 2 and r["municipalities"] == "nijmegen;wageningen"
        assert r["codes"] == "income_gt70_wml;exit_to_work_fulltime" and r["horizons"] == "16;24"
        assert all(np.isfinite(r[c]) for c in ("tau2", "I2", "Q"))


def test_every_pooled_cell_combines_two_municipalities(results):
    multi = results.pooled[results.pooled["k"] >= 2]
    survey = multi[multi["period"] != "einde_experiment"]
    assert len(set(survey["outcome_key"])) >= 3  # what honest SEs allow today (see inputs/README.md)
    for _, r in multi.iterrows():
        s = results.studies[(results.studies["outcome_key"] == r["outcome_key"])
                            & (results.studies["period"] == r["period"])
                            & (results.studies["arm_class"] == r["arm_class"])]
        assert len(s) == r["k"] and s["municipality"].nunique() == r["k"]


def _grid_reml(y, v):
    """REML τ² by brute force on a grid (restricted log-likelihood), independent of meta.models.engine."""
    grid = np.linspace(0, 4 * np.var(y) + 4 * v.max() + 1e-9, 400001)
    w = 1 / (v[None, :] + grid[:, None])
    mu = (w * y).sum(1) / w.sum(1)
    ll = -0.5 * (np.log(v[None, :] + grid[:, None]).sum(1) + np.log(w.sum(1)) + (w * (y - mu[:, None]) ** 2).sum(1))
    return grid[np.argmax(ll)], grid[1]


def test_one_pooled_concept_cell_recomputed_by_hand_from_inputs(results):
    """welbevinden, survey after 1 year, exemption: Nijmegen Tabel 8 (1–10, × 10/9) + Wageningen Tabel 3.8."""
    est = pd.read_csv(INPUTS / "estimates.csv", **S)
    pick = lambda **kw: est[np.logical_and.reduce([est[k] == v for k, v in kw.items()])].iloc[0]  # noqa: E731
    # Nijmegen: the printed difference on 1-10, mapped onto 0-10 by the register's transform
    nij = pick(municipality="nijmegen", outcome="wellbeing", horizon_months="12", arm="exemption_release",
               comparator="control")
    assert nij["printed"] == "-0,44*"
    y_n = -0.44 * 10 / 9
    # its SE on 1-10 is harmonise's reconstruction from the mark (tested in test_harmonise); the transform scales it
    strict = replace(results.plan, outcome_level="strict", outcomes=("wellbeing",), horizons=(12,))
    from meta import cells as selection

    h = concepts.effects(results.inputs, strict.se_policy, strict.survey_contrast)
    s_strict, _ = selection.select_studies(h, results.inputs.outcomes, strict)
    se_n = float(s_strict[s_strict["arm"] == "exemption_release"]["sei"].iloc[0]) * 10 / 9
    # Wageningen: the change since baseline of the printed adjusted means (Tabel 3.8, lines 3361 and 3366)
    m = {(r["arm"], r["horizon_months"]): float(r["estimate"]) for _, r in
         est[(est["municipality"] == "wageningen") & (est["outcome"] == "wellbeing_0_10")
             & (est["model"] == "ols_adjusted_mean")].iterrows()}
    assert (m[("exemption", "12")], m[("control", "12")], m[("exemption", "0")], m[("control", "0")]) == \
        (6.18, 6.26, 5.78, 5.89)
    y_w = (6.18 - 6.26) - (5.78 - 5.89)
    # range bound, scale 0-10: respondents (Tabel 2.4) minus the shortfall 764 - 748 (model N, Tabel 3.8 legend)
    lost = (90 + 56 + 57 + 68 + 53 + 46 + 88 + 72 + 64 + 59 + 58 + 53) - 748
    se_w = 5 * math.sqrt(1 / (56 - lost) + 1 / (58 - lost)) + 5 * math.sqrt(1 / (90 - lost) + 1 / (59 - lost))
    s = results.studies[(results.studies["outcome_key"] == "welbevinden") & (results.studies["period"] == "meting_1jaar")
                        & (results.studies["arm_class"] == "exemption")].set_index("municipality")
    assert math.isclose(s.loc["nijmegen", "yi"], y_n, rel_tol=1e-9)
    assert math.isclose(s.loc["nijmegen", "sei"], se_n, rel_tol=1e-9)
    assert math.isclose(s.loc["wageningen", "yi"], y_w, abs_tol=1e-9)
    assert math.isclose(s.loc["wageningen", "sei"], se_w, rel_tol=1e-9)
    # pooled by hand: REML on a grid, Hartung-Knapp interval (scale factor floored at 1), Q, I² (metafor's τ²-based definition)
    y, v = np.array([y_n, y_w]), np.array([se_n, se_w]) ** 2
    t2, step = _grid_reml(y, v)
    w = 1 / (v + t2)
    mu = (w * y).sum() / w.sum()
    q_hk = (w * (y - mu) ** 2).sum() / (len(y) - 1)
    half = stats.t.ppf(0.975, len(y) - 1) * math.sqrt(max(q_hk, 1.0) / w.sum())  # the plan's adhoc floor
    w0 = 1 / v
    q = (w0 * (y - (w0 * y).sum() / w0.sum()) ** 2).sum()
    s2 = (len(y) - 1) * w0.sum() / (w0.sum() ** 2 - (w0 ** 2).sum())
    i2 = 100 * t2 / (t2 + s2)
    p = results.pooled[(results.pooled["outcome_key"] == "welbevinden") & (results.pooled["period"] == "meting_1jaar")
                       & (results.pooled["arm_class"] == "exemption")].iloc[0]
    assert p["k"] == 2 and p["transforms"] == "scale_1_10_to_0_10;identity" and p["codes"] == "wellbeing;wellbeing_0_10"
    assert math.isclose(p["tau2"], t2, abs_tol=2 * step)
    assert math.isclose(p["classical_estimate"], mu, rel_tol=1e-4, abs_tol=1e-6)
    assert math.isclose(p["classical_ci_low"], mu - half, rel_tol=1e-4, abs_tol=1e-6)
    assert math.isclose(p["Q"], q, rel_tol=1e-9)
    assert math.isclose(p["I2"], i2, abs_tol=1e-3)


CHECKS = pd.read_csv(INPUTS / "notes" / "wageningen_survey_checks.csv", **S)


@pytest.mark.parametrize("check", CHECKS.to_dict("records"), ids=lambda c: f"{c['outcome']}-{c['arm']}-"
                         f"{c['horizon_months']}-{c['contrast']}")
def test_derived_survey_difference_agrees_with_the_recorded_check_of_the_report_text(results, check):
    h = concepts.survey_differences(
        __import__("meta.effects.harmonise", fromlist=["harmonise"]).harmonise(
            results.inputs.estimates, results.inputs.outcomes, results.inputs.arms, results.inputs.legends),
        results.inputs.outcomes, results.inputs.arms, check["contrast"])
    row = h[(h["municipality"] == "wageningen") & (h["outcome"] == check["outcome"]) & (h["arm"] == check["arm"])
            & (h["horizon_months"] == int(check["horizon_months"])) & (h["model"] == "ols_adjusted_mean")]
    assert len(row) == 1
    assert float(check["low"]) <= row["yi"].iloc[0] <= float(check["high"]), check["verdict"]
    assert re.fullmatch(r"004:\d+(-\d+)?(;004:\d+(-\d+)?)*", check["source_lines"])


def test_survey_marks_are_not_used_for_the_arm_vs_control_se(results):
    """The stars in Tabel 3.8-3.14 test changes over time (the control row carries them too): SE from the range."""
    w = results.studies[(results.studies["municipality"] == "wageningen") & (results.studies["model"] == "ols_adjusted_mean")]
    assert len(w) and (w["se_method"] == concepts.SE_METHOD).all() and (w["sei_low"] == 0).all()
    ex = results.excluded
    unbounded = ex[(ex["outcome"] == "volunteering_care_hours") & (ex["horizon_months"] == 24) & (ex["arm"] == "intensive")
                   & (ex["model"] == "ols_adjusted_mean")]
    assert unbounded["reason"].iloc[0].startswith("no standard error can be derived")


def test_deeltijdwerk_says_wageningen_prints_no_number(results):
    cov = results.coverage
    c = cov[(cov["municipality"] == "wageningen") & (cov["outcome_key"] == "deeltijdwerk")
            & (cov["period"] == "einde_experiment") & (cov["arm_class"] == "exemption")].iloc[0]
    assert c["status"] == "not reported" and "004:2054-2058" in c["where"]


def test_transform_scales_estimate_and_every_bound_alike():
    frame = pd.DataFrame({"yi": [-0.44], "sei": [0.2], "sei_low": [0.1], "sei_high": [0.3], "unit_h": ["scale_1_10"],
                          "transform": ["scale_1_10_to_0_10"], "concept": ["welbevinden"]})
    out = concepts.to_concept_scale(frame, pd.DataFrame({"concept": ["welbevinden"], "unit": ["scale_0_10"]}))
    assert np.allclose(out[["yi", "sei", "sei_low", "sei_high"]].iloc[0], np.array([-0.44, 0.2, 0.1, 0.3]) * 10 / 9)
    assert out["unit_h"].iloc[0] == "scale_0_10"


def test_strict_level_stays_as_a_sensitivity_specification(results):
    sens = results.sensitivity
    werk = sens[(sens["outcome_key"] == "werk") & (sens["arm_class"] == "exemption")]
    assert {"strict: income_gt70_wml 16 m", "strict: exit_to_work_fulltime 24 m"} <= set(werk["spec"])
    assert "harmonisation: sensitivity mappings" in set(werk["spec"])


def test_a_municipality_added_later_takes_the_mapping_of_the_same_code_and_month_and_says_so():
    register = pd.DataFrame([
        dict(municipality="nijmegen", outcome="income_gt70_wml", horizon_months="16", concept="werk",
             period="einde_experiment", transform="identity", role="primary", reason="r", source_lines="002:349")])
    rows = pd.DataFrame({"municipality": ["groningen", "groningen", "nijmegen"],
                         "outcome": ["income_gt70_wml", "income_gt70_wml", "income_gt70_wml"],
                         "horizon_months": [16, 24, 16]})
    out = concepts.map_concepts(rows, register)
    assert list(out["concept"]) == ["werk", "", "werk"]
    assert out["harmonisation_reason"].iloc[0].startswith("no row of its own in harmonisation.csv")
    assert out["harmonisation_reason"].iloc[2] == "r" and out["harmonisation_role"].iloc[1] == ""


def test_cells_nijmegen_prints_without_a_derivable_se_are_marked_printed_not_unreported(results):
    # by hand from inputs/estimates.csv: Nijmegen's LOEP rows (primary mapping, vs control) excluded with "no
    # standard error can be derived" (unmarked estimates of tables whose N per arm is not printed): rows 51-52
    # (jobsearch_confidence 24 m), 69-70 (jobsearch_intensity 24), 90-91 / 93-94 (voluntary_activities 12 / 24),
    # 108-109 / 111-112 (trust__others 12 / 24), 117-118 (trust__municipality 24), 165-166 (general health 24),
    # 201-202 (wellbeing 24)
    expected = {("zelfeffectiviteit_werk", "meting_2jaar"), ("zoekintensiteit", "meting_2jaar"),
                ("vrijwillige_activiteiten", "meting_1jaar"), ("vrijwillige_activiteiten", "meting_2jaar"),
                ("vertrouwen_sociaal", "meting_1jaar"), ("vertrouwen_sociaal", "meting_2jaar"),
                ("vertrouwen_instituties", "meting_2jaar"), ("gezondheid", "meting_2jaar"),
                ("welbevinden", "meting_2jaar")}
    cov = results.coverage
    nij = cov[cov["municipality"] == "nijmegen"]
    for arm_class in ("exemption", "intensive"):
        got = nij[(nij["arm_class"] == arm_class) & (nij["status"] == "printed-no-SE")]
        assert set(zip(got["outcome_key"], got["period"])) == expected
    c = nij[(nij["outcome_key"] == "welbevinden") & (nij["period"] == "meting_2jaar")].iloc[0]
    assert ":599" in c["where"] and "no standard error can be derived" in c["where"]
    # what Nijmegen does not print at all stays 'not reported' (mental health index: only its items, unmapped)
    mental = nij[(nij["outcome_key"] == "mentale_gezondheid") & nij["arm_class"].isin(["exemption", "intensive"])]
    assert len(mental) and set(mental["status"]) == {"not reported"}


def test_only_wageningens_range_bound_survey_rows_have_an_se_that_is_only_an_upper_bound(results):
    # by hand from inputs/estimates.csv: every Wageningen survey effect (model ols_adjusted_mean, Tabel 3.8-3.14,
    # differenced adjusted means) takes the range bound with nothing below it (36 study rows); Nijmegen's rows take
    # the centre of their mark bracket (below its upper bound) and Wageningen's exit shares an exact binomial SE
    s = results.studies
    survey = (s["municipality"] == "wageningen") & (s["model"] == "ols_adjusted_mean")
    assert int(survey.sum()) == 36
    assert s.loc[survey, "se_upper_bound_only"].all() and not s.loc[~survey, "se_upper_bound_only"].any()
    p = results.pooled
    single_wageningen = (p["k"] == 1) & (p["municipalities"] == "wageningen") & (p["unit_h"] == "scale_0_10")
    assert int(single_wageningen.sum()) == 30
    assert p.loc[single_wageningen, "se_upper_bound_only"].all()
    assert not p.loc[~single_wageningen, "se_upper_bound_only"].any()  # a cell with Nijmegen in it is not


def test_an_se_is_only_an_upper_bound_when_it_is_the_bracket_top_with_nothing_below():
    from meta.effects.se import upper_bound_only
    # sei = hi with lo = 0: the range bound; the centre hi/√3 is not; nor an exact SE; nor hi with an informative lo
    got = upper_bound_only([1.79, 1.79 / 3 ** 0.5, 0.5, 0.104], [0.0, 0.0, 0.5, 0.094], [1.79, 1.79, 0.5, 0.104])
    assert got.tolist() == [True, False, False, False]


def test_each_se_policy_and_survey_contrast_gives_the_rows_of_its_own_fresh_derivation(results):
    # EffectsByChoice harmonises once, works out each contrast's survey changes once and maps the register once, and
    # gives later derivations what it found: each must equal a fresh harmonise, survey_differences and map_concepts
    # of that policy and contrast (values, dtypes, column order)
    from meta.effects.harmonise import harmonise
    from meta.effects.se import upper_bound_only

    inputs = results.inputs
    effects = concepts.EffectsByChoice(inputs)
    for policy, contrast in (("central", "change"), ("conservative", "change"), ("central", "wave"),
                             ("conservative", "wave")):
        h = concepts.survey_differences(harmonise(inputs.estimates, inputs.outcomes, inputs.arms, inputs.legends,
                                                  policy), inputs.outcomes, inputs.arms, contrast)
        want = concepts.map_concepts(h, inputs.harmonisation)
        want = want.assign(se_upper_bound_only=upper_bound_only(want["sei"], want["sei_low"], want["sei_high"]))
        pd.testing.assert_frame_equal(effects.get(policy, contrast), want, check_exact=True)
    # rows in another order are mapped afresh, not given the first derivation's columns
    shuffled = h.iloc[::-1]
    pd.testing.assert_frame_equal(effects._map_concepts(shuffled), concepts.map_concepts(shuffled, inputs.harmonisation))


def test_the_studies_of_a_narrowed_selection_are_select_studies_studies_in_those_columns(results):
    from meta import cells as selection

    h, plan, inputs = results.harmonised, results.plan, results.inputs
    for variant, roles in ((plan, ("primary",)), (plan, ("sensitivity", "primary")),
                           (replace(plan, include_derived_from_marks=False), ("primary",))):
        want = selection.select_studies(h, inputs.outcomes, variant, inputs.concepts, roles)[0]
        narrow = h[[c for c in h.columns if c in selection.SELECTION_COLUMNS]]
        got = selection.cell_studies(narrow, inputs.outcomes, variant, inputs.concepts, roles)
        pd.testing.assert_frame_equal(got, want[list(got.columns)], check_exact=True)


def test_the_selections_sort_order_is_pandas_stable_sort_with_missing_values_last():
    from meta.cells import sort_order

    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(0, 30))
        frame = pd.DataFrame({"a": pd.array(rng.choice(["b", "a", "ä", None], n).tolist(), dtype="str"),
                              "b": rng.integers(0, 3, n), "c": pd.array(rng.choice(["x", "y"], n).tolist(), dtype="str")},
                             index=rng.permutation(n) + 5)
        for cols in (["a", "b"], ["c", "b"], ["b"]):
            want = frame.reset_index(drop=True).sort_values(cols, kind="mergesort").index.to_numpy()
            assert sort_order(frame, cols).tolist() == want.tolist()


def test_one_set_of_rows_selected_under_several_variants_gives_each_variant_select_studies_studies(results):
    # the sensitivity analysis selects the same harmonised rows under up to four plan variants: cells.rows keeps
    # what the selection derives from the rows alone (filters' rows, slot codes, ranks) between them, and
    # cell_studies(columns=...) takes the kept rows alone; each must equal select_studies's studies of that variant
    from meta import cells as selection

    h, plan, inputs = results.harmonised, results.plan, results.inputs
    narrow = h[[c for c in h.columns if c in selection.SELECTION_COLUMNS]]
    shared = selection.rows(narrow, inputs.outcomes, inputs.concepts)
    columns = ("outcome_key", "period", "arm_class", "unit_h", "municipality", "yi", "sei", "harmonisation_role",
               "cell")
    variants = [(plan, ("primary",)), (replace(plan, model_preference=("basis", "loep")), ("primary",)),
                (plan, ("sensitivity", "primary")), (replace(plan, include_derived_from_marks=False), ("primary",)),
                (replace(plan, periods=("meting_1jaar",)), ("primary",)), (plan, ("primary",))]
    for variant, roles in variants:
        want = selection.select_studies(h, inputs.outcomes, variant, inputs.concepts, roles)[0]
        got = selection.cell_studies(shared, inputs.outcomes, variant, inputs.concepts, roles, columns=columns)
        assert list(got.columns) == list(columns) and len(got)
        pd.testing.assert_frame_equal(got, want[list(columns)], check_exact=True)

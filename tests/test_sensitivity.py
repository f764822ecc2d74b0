"""The robustness verdict of the sensitivity analysis (meta.analyses.sensitivity)."""

import pandas as pd
import pytest

from meta.analyses import sensitivity
from meta.cells import CELL_COLUMNS


def _studies(cells):
    rows = []
    for (outcome, arm), studies in cells.items():
        for muni, yi, sei in studies:
            rows.append({"outcome_key": outcome, "period": "p1", "arm_class": arm, "unit_h": "scale_0_10",
                         "municipality": muni, "yi": yi, "sei": sei})
    return pd.DataFrame(rows)


def test_knha_scale_factor_is_the_weighted_residual_variance_over_k_minus_1():
    # two studies that agree almost perfectly: REML τ² = 0, w = 1/0.1² = 100, μ = 0.505,
    # q = Σw(y − μ)²/(k − 1) = 100·2·0.005²/1 = 0.005 (by hand); a single study has no q (1: nothing scaled)
    studies = _studies({("a", "exemption"): [("x", 0.50, 0.1), ("y", 0.51, 0.1)],
                        ("a", "intensive"): [("x", 0.50, 0.1)]})
    q = sensitivity.knha_scale(studies, "REML", 95.0)
    assert q[("a", "p1", "exemption", "scale_0_10")] == pytest.approx(0.005, rel=1e-9)
    assert q[("a", "p1", "intensive", "scale_0_10")] == pytest.approx(1.0)


def _sens_row(spec_group, spec, ci_low, ci_high, not_counted=""):
    return {"outcome_key": "a", "period": "p1", "arm_class": "exemption", "unit_h": "scale_0_10",
            "spec_group": spec_group, "spec": spec, "k": 2, "municipalities": "x;y", "estimate": 0.5,
            "ci_low": ci_low, "ci_high": ci_high, "verdict": sensitivity.verdict(ci_low, ci_high),
            "not_counted": not_counted}


def test_a_collapsed_knha_row_does_not_change_the_robustness_verdict_and_is_named():
    sens = pd.DataFrame([_sens_row("main", "REML + adhoc", -0.9, 1.9),
                         _sens_row("test", "z", -0.1, 1.1),
                         _sens_row("test", "knha", 0.4, 0.6, "knha scale factor q = 0.005 < 1")])
    rob = sensitivity.robustness(sens)
    assert bool(rob["survives_all"].iloc[0]) and rob["changed_by"].iloc[0] == ""
    assert rob["n_specs"].iloc[0] == 2  # the main row and z; the collapsed knha row is not counted
    assert rob["not_counted"].iloc[0] == "test: knha"


def test_a_knha_row_with_scale_factor_at_least_1_still_counts():
    sens = pd.DataFrame([_sens_row("main", "REML + adhoc", -0.9, 1.9),
                         _sens_row("test", "knha", 0.4, 0.6)])
    rob = sensitivity.robustness(sens)
    assert not bool(rob["survives_all"].iloc[0]) and rob["changed_by"].iloc[0] == "test: knha"
    assert rob["not_counted"].iloc[0] == ""


def test_sensitivity_rows_of_collapsed_knha_say_why_they_are_not_counted():
    studies = _studies({("a", "exemption"): [("x", 0.50, 0.1), ("y", 0.51, 0.1)]})
    reasons = sensitivity.not_counted_reasons(studies, "REML", "knha", 95.0)
    text = reasons[("a", "p1", "exemption", "scale_0_10")]
    assert "0.005" in text and "Röver" in text
    assert sensitivity.not_counted_reasons(studies, "REML", "z", 95.0) == {}


def _synthetic_tables(widths_per_table, seed=7):
    """SYNTHETIC studies tables: table i has one cell per entry of widths_per_table[i], with that many studies."""
    import numpy as np

    rng = np.random.default_rng(seed)
    frames = []
    for widths in widths_per_table:
        cells = {(f"o{c}", "exemption"): [(f"m{j}", float(rng.normal(0, 3)), float(rng.uniform(0.5, 3)))
                                          for j in range(k)] for c, k in enumerate(widths)}
        frames.append(_studies(cells))
    return frames


def test_stacked_pooling_gives_each_table_the_numbers_pooling_it_alone_gives_to_the_last_bit():
    from types import SimpleNamespace

    from meta.models import engine

    frames = _synthetic_tables([(2, 3), (7, 1), (5,), (9, 4), (9, 2), (16, 3), (8,), (17,)])
    plan = SimpleNamespace(method="REML", test="knha", level=95.0)
    stacked = pd.concat([f.assign(_table=i) for i, f in enumerate(frames)], ignore_index=True)
    pooled = sensitivity._pool_tables(stacked, plan)
    assert pooled["_table"].is_monotonic_increasing
    for i, frame in enumerate(frames):
        got = pooled[pooled["_table"] == i].drop(columns="_table").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, engine.pool_cells(frame, CELL_COLUMNS, "REML", "knha", 95.0),
                                      check_exact=True)


def test_pooling_a_cell_beside_a_wider_one_can_move_the_last_bit_so_stacking_keeps_widths_apart():
    # the reason _pool_tables batches by padded width: numpy sums 8 or more terms pairwise, so a 9-study cell
    # padded to 16 is summed in another order than alone (this is what the previous test guards against)
    from meta.models import engine

    narrow, wide = _synthetic_tables([(9,), (16,)], seed=3)
    alone = engine.pool_cells(narrow, CELL_COLUMNS, "REML", "knha", 95.0)
    both = pd.concat([narrow.assign(_t=0), wide.assign(_t=1)], ignore_index=True)
    together = engine.pool_cells(both, (*CELL_COLUMNS, "_t"), "REML", "knha", 95.0)
    together = together[together["_t"] == 0].reset_index(drop=True)
    cols = ["estimate", "se", "tau2", "ci_low", "ci_high", "Q", "I2"]
    assert not (alone[cols].to_numpy() == together[cols].to_numpy()).all()
    assert alone[cols].to_numpy() == pytest.approx(together[cols].to_numpy(), rel=1e-12)


def test_records_gives_the_values_and_types_to_dict_gives():
    import math

    from meta.read.reader import records

    frame = pd.DataFrame({"s": pd.array(["a", None, "c"], dtype="str"), "i": pd.array([1, None, 3], dtype="Int64"),
                          "f": [0.5, math.nan, -0.0], "b": [True, False, True], "n": [1, 2, 3]})
    want, got = frame.to_dict("records"), records(frame)
    assert [[type(v) for v in r.values()] for r in got] == [[type(v) for v in r.values()] for r in want]
    assert [{k: v for k, v in r.items() if not (isinstance(v, float) and math.isnan(v))} for r in got] == \
        [{k: v for k, v in r.items() if not (isinstance(v, float) and math.isnan(v))} for r in want]


def test_a_sensitivity_row_of_one_study_whose_se_is_only_an_upper_bound_is_flagged_and_a_pooled_row_is_not():
    # leaving Nijmegen out leaves Wageningen alone, whose SE is only an upper bound: that row's interval is an outer
    # bound (the Kerntabel's †); the pooled rows and Nijmegen alone are not
    studies = _studies({("a", "exemption"): [("nijmegen", 0.5, 0.2), ("wageningen", 0.1, 2.0)]})
    studies["se_upper_bound_only"] = studies["municipality"] == "wageningen"
    pooled = pd.DataFrame([{**dict(zip(CELL_COLUMNS, ("a", "p1", "exemption", "scale_0_10"))), "k": 2,
                            "estimate": 0.5, "ci_low": -1.0, "ci_high": 2.0}])
    assert [r["se_upper_bound_only"] for r in sensitivity._spec_rows(pooled, "main", "REML + adhoc", studies)] == [False]
    loo = sensitivity.leave_one_out_studies(studies)
    batch = sensitivity.engine.pool_cells(loo, (*CELL_COLUMNS, "spec"), "REML", "adhoc", 95.0)
    rows = sensitivity._spec_rows(batch, "leave one out", None, loo, by="spec")
    assert {r["spec"]: r["se_upper_bound_only"] for r in rows} == {"without nijmegen": True,
                                                                   "without wageningen": False}
    assert "se_upper_bound_only" in sensitivity.SPEC_COLUMNS


def test_a_study_with_a_missing_cell_column_belongs_to_no_cell_as_in_groupby():
    studies = _studies({("a", "exemption"): [("nijmegen", 0.5, 0.2), ("wageningen", 0.1, 2.0), ("tilburg", 0.3, 1.0)],
                        ("b", "intensive"): [("utrecht", 0.2, 0.5)]})
    studies.loc[1, "unit_h"] = None
    studies["se_upper_bound_only"] = [False, False, False, True]
    key_a, key_b = ("a", "p1", "exemption", "scale_0_10"), ("b", "p1", "intensive", "scale_0_10")
    assert sensitivity._cell_rows(studies, list(CELL_COLUMNS)) == {key_a: [0, 2], key_b: [3]}
    assert sensitivity._municipalities(studies, list(CELL_COLUMNS)) == {key_a: "nijmegen;tilburg", key_b: "utrecht"}
    assert sensitivity._upper_bound_keys(studies, list(CELL_COLUMNS)) == {key_b}
    groups = studies.groupby(list(CELL_COLUMNS), sort=False).indices
    assert {k: list(v) for k, v in groups.items()} == sensitivity._cell_rows(studies, list(CELL_COLUMNS))


def _prior_dependence_by_groupby(sens: pd.DataFrame) -> pd.DataFrame:
    """prior_dependence written with pandas' groupby and masks, the way it first was (the reference)."""
    cols = [*CELL_COLUMNS, "verdict", "depends_on_prior", "changed_by", "estimate_min", "estimate_max"]
    part = sens[sens["spec_group"].isin(["Bayesian", "prior"])]
    rows = []
    for key, g in part.groupby(list(CELL_COLUMNS), sort=True):
        base = g[g["spec_group"] == "Bayesian"]
        if base.empty:
            continue
        v = base["verdict"].iloc[0]
        other = g[(g["spec_group"] == "prior") & (g["verdict"] != v)]
        rows.append({**dict(zip(CELL_COLUMNS, key)), "verdict": v, "depends_on_prior": not other.empty,
                     "changed_by": ";".join(other["spec"]), "estimate_min": g["estimate"].min(),
                     "estimate_max": g["estimate"].max()})
    return pd.DataFrame(rows, columns=cols)


def test_prior_dependence_read_from_lists_equals_the_groupby_formulation_on_random_frames():
    import numpy as np

    rng = np.random.default_rng(20261202)
    texts = ("outcome_key", "period", "arm_class", "unit_h", "spec_group", "spec", "verdict")
    seen_dependent = 0
    for trial in range(200):
        n = int(rng.integers(0, 30))

        def pick(values):
            return [values[i] for i in rng.integers(0, len(values), n)]

        sens = pd.DataFrame({
            "outcome_key": pick(["b", "a", None, "é"]), "period": pick(["p2", "p1"]), "arm_class": pick(["x", "y"]),
            "unit_h": pick(["u", None, "v"]) if trial % 2 else pick(["u"]),
            "spec_group": pick(["Bayesian", "prior", "main"]), "spec": pick(["s1", "s2", "s3"]),
            "verdict": pick(["positive", "negative", None]), "estimate": pick([1.0, np.nan, -2.0, 0.5])})
        sens = sens.astype({c: "str" for c in texts})  # missing texts stay missing
        got = sensitivity.prior_dependence(sens)
        pd.testing.assert_frame_equal(got, _prior_dependence_by_groupby(sens), check_exact=True)
        seen_dependent += int(got["depends_on_prior"].sum())
    assert seen_dependent > 0  # the frames exercised cells whose verdict a prior changes


@pytest.fixture(scope="module")
def real():
    from meta.analyses import pipeline
    from meta.plan import REPO, load_plan

    return pipeline.analyse(REPO / "inputs", load_plan(REPO / "inputs" / "plan.toml"))


def _by_cell(sens: pd.DataFrame) -> dict:
    out = {}
    for r in sens.to_dict("records"):
        out.setdefault(tuple(r[c] for c in CELL_COLUMNS), []).append(r)
    return out


def test_the_bayesian_row_with_the_plans_prior_repeats_a_bayesian_main_row_and_is_not_counted_twice(real):
    # where the headline is the Bayesian model, the prior-sensitivity family's "Bayesian" row (the plan's τ prior)
    # is the same fit as the main row: the same numbers (checked here), marked, and left out of n_specs
    checked = 0
    for key, rows in _by_cell(real.sensitivity).items():
        main = next(r for r in rows if r["spec_group"] == "main")
        for r in (r for r in rows if r["spec_group"] == "Bayesian"):
            if main["spec"].startswith("Bayesian"):
                assert (r["estimate"], r["ci_low"], r["ci_high"]) == (main["estimate"], main["ci_low"],
                                                                      main["ci_high"]), key
                assert r["not_counted"] == sensitivity.REPEATS_MAIN, key
                checked += 1
            else:
                assert r["not_counted"] == "", key
    assert checked == 8  # the eight cells of two municipalities on inputs/


def test_a_choice_that_leaves_a_cell_with_the_main_studies_repeats_the_plans_classical_row_and_only_then(real):
    # a re-selected specification (model column, SE policy, SE from marks, survey contrast, outcome definition)
    # whose studies are the main analysis's gives the plan's classical numbers again: marked as a repeat, which
    # its numbers confirm; the review's example, the survey contrast for werk (a register outcome), is one; the
    # survey contrast for ervaren gezondheid at 1 year (Wageningen's adjusted means) changes the pool and is not
    classical_spec = f"{real.plan.method} + {real.plan.test}"
    cells = _by_cell(real.sensitivity)
    marked = 0
    for key, rows in cells.items():
        plan_row = next(r for r in rows if r["spec_group"] in ("main", "classical") and r["spec"] == classical_spec)
        for r in rows:
            if r["not_counted"] == sensitivity.REPEATS_PLAN:
                assert (r["k"], r["estimate"], r["ci_low"], r["ci_high"]) == (
                    plan_row["k"], plan_row["estimate"], plan_row["ci_low"], plan_row["ci_high"]), (key, r["spec"])
                marked += 1
    assert marked == 216
    contrast = {(k[0], k[2]): r["not_counted"] for k, rows in cells.items() for r in rows
                if r["spec_group"] == "survey contrast" and k[1] in ("einde_experiment", "meting_1jaar")}
    assert contrast[("werk", "exemption")] == sensitivity.REPEATS_PLAN
    assert contrast[("gezondheid", "exemption")] == ""


def test_robustness_counts_neither_repeats_nor_rows_left_out_and_lists_them_apart():
    sens = pd.DataFrame([_sens_row("main", "Bayesian headline (plan's τ prior)", -0.9, 1.9),
                         _sens_row("classical", "REML + adhoc", -0.8, 1.8),
                         _sens_row("Bayesian", "half-normal τ prior, scale 5", -0.9, 1.9, sensitivity.REPEATS_MAIN),
                         _sens_row("survey contrast", "wave", -0.8, 1.8, sensitivity.REPEATS_PLAN),
                         _sens_row("test", "knha", 0.4, 0.6, "knha scale factor q = 0.005 < 1")])
    rob = sensitivity.robustness(sens)
    assert rob["n_specs"].iloc[0] == 2  # the main row and the classical row; the other three are not counted
    assert rob["not_counted"].iloc[0] == "test: knha"
    assert rob["repeats"].iloc[0] == "Bayesian: half-normal τ prior, scale 5;survey contrast: wave"
    assert bool(rob["survives_all"].iloc[0])


def test_with_one_study_every_estimator_and_test_repeats_the_main_row_and_in_a_pool_none_does(real):
    # one study is what every τ² estimator and test returns (the second review of the report, item 14: a single
    # study's row counted 12 specifications, 8 estimators and 2 tests among them, that cannot differ); in a pool of
    # two the estimators are other specifications and count
    for key, rows in _by_cell(real.sensitivity).items():
        main = next(r for r in rows if r["spec_group"] == "main")
        pooling = [r for r in rows if r["spec_group"] in ("estimator", "test")]
        if main["k"] == 1:
            assert pooling and all(r["not_counted"] == sensitivity.REPEATS_SINGLE for r in pooling), key
            assert all((r["estimate"], r["ci_low"], r["ci_high"]) == (main["estimate"], main["ci_low"],
                                                                       main["ci_high"]) for r in pooling), key
        else:
            assert not any(r["not_counted"] == sensitivity.REPEATS_SINGLE for r in rows), key
    rob = real.robustness
    single = rob[(rob["outcome_key"] == "werk") & (rob["arm_class"] == "release")].iloc[0]
    assert int(single["n_specs"]) == 1  # Wageningen's release arm alone: every other specification repeats it

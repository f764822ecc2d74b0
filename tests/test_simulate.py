"""The simulation study (meta.simulate): its trials, its SE reconstruction, its coverage and its command line.

Every test is seeded, so the Monte Carlo tolerances below are fixed numbers, not chances of failure; they are
chosen as 3-4 Monte Carlo standard errors so that a correct implementation passes for essentially any seed.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from meta import simulate as sim
from meta.effects.harmonise import harmonise
from meta.errors import InputError
from meta.read.load import load_inputs

REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- #
# the per-municipality regression
# --------------------------------------------------------------------------- #
def test_ols_batch_matches_statsmodels_on_a_few_regressions():
    import statsmodels.api as smapi

    rng = np.random.default_rng(3)
    X = np.concatenate([np.ones((4, 50, 1)), rng.normal(size=(4, 50, 2)), (rng.random((4, 50, 1)) < 0.5)], axis=2)
    y = (rng.random((4, 50)) < 0.3).astype(float)
    for se_type, cov in (("hc1", "HC1"), ("classical", "nonrobust")):
        beta, se = sim.ols_batch(X, y, se_type)
        for r in range(4):
            fit = smapi.OLS(y[r], X[r]).fit(cov_type=cov)
            np.testing.assert_allclose(beta[r], fit.params, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(se[r], fit.bse, rtol=1e-10)


@pytest.mark.parametrize("se_type", ["hc1", "classical"])
@pytest.mark.parametrize("tau", [0.0, 6.0])
def test_regression_ses_match_the_spread_of_the_estimates(se_type, tau):
    """The SE a municipality's regression reports equals the SD of its estimate across replications (within MC)."""
    reps = 4000
    tol = 4 / math.sqrt(2 * (reps - 1))          # 4 MC standard errors of a sample SD, relative
    rng = np.random.default_rng(11)
    for muni in sim.DESIGN:
        tr = sim.simulate_trials(rng, muni, reps, mu=-3.0, tau=tau, se_type=se_type)
        err = tr.estimate - tr.theta
        sd = err.std(axis=0, ddof=1)
        rms_se = np.sqrt((tr.se**2).mean(axis=0))
        assert np.all(np.abs(sd / rms_se - 1) < tol), (muni.name, sd, rms_se)
        # the adjusted arm coefficient is unbiased for the risk difference
        assert np.all(np.abs(err.mean(axis=0)) < 4 * sd / math.sqrt(reps)), (muni.name, err.mean(axis=0))


def test_true_effects_are_kept_exact_and_control_shares_stay_in_range():
    rng = np.random.default_rng(5)
    muni = sim.DESIGN[1]
    tr = sim.simulate_trials(rng, muni, 3000, mu=-3.0, tau=6.0)
    assert tr.theta.std() == pytest.approx(6.0, rel=0.05)
    assert tr.theta.mean() == pytest.approx(-3.0, abs=0.3)
    assert tr.p0.min() >= 0.10 and np.all((tr.p0[:, None] + tr.theta / 100) >= sim.MIN_SHARE - 1e-12)
    assert np.all(tr.p0[~tr.raised] <= 0.25)


def test_the_covariate_makes_the_adjusted_model_more_precise():
    reps = 1500
    a = sim.simulate_trials(np.random.default_rng(1), sim.DESIGN[0], reps, -3.0, 0.0, rho=0.0)
    b = sim.simulate_trials(np.random.default_rng(1), sim.DESIGN[0], reps, -3.0, 0.0, rho=0.8)
    assert b.se.mean() < 0.95 * a.se.mean()


# --------------------------------------------------------------------------- #
# printing and reconstruction
# --------------------------------------------------------------------------- #
def test_reconstruction_equals_meta_harmonise_on_nijmegen_rows():
    """reconstruct_se gives the sei that meta.effects.harmonise computes for the same printed rows (both policies)."""
    inputs = load_inputs(REPO / "inputs")
    e = inputs.estimates
    base = e[(e["municipality"] == "nijmegen") & (e["source_table"] == "Tabel 3") & (e["model"] == "loep")
             & (e["outcome"] == "income_gt70_wml")].set_index("arm")
    assert list(base.index) == ["exemption_release", "intensive_release"]
    reps = 150
    tr = sim.simulate_trials(np.random.default_rng(8), sim.DESIGN[0], reps, -3.0, 6.0)
    printed, marks, h = sim.print_with_marks(tr.estimate, tr.pval)
    rows = []
    for r in range(reps):
        for j, arm in enumerate(["exemption_release", "intensive_release"]):
            row = base.loc[arm].copy()
            value = printed[r, j] / 100
            row["arm"], row["estimate"], row["significance"] = arm, value, marks[r, j]
            row["printed"] = f"{value:.2f}".replace(".", ",") + marks[r, j]
            row["horizon_months"] = 1000 + r          # one regression per replication
            row["n_table"] = 389                      # no attrition in the simulation
            row["input_row"] = len(rows) + 1
            rows.append(row)
    frame = pd.DataFrame(rows).reset_index(drop=True)
    for policy in ("central", "conservative"):
        h_out = harmonise(frame, inputs.outcomes, inputs.arms, inputs.legends, se_policy=policy)
        assert (h_out["se_method"] == "from_significance_marks").all()
        theirs = h_out["sei"].to_numpy().reshape(reps, 2)
        ours, lo, hi = sim.reconstruct_se(printed, marks, h, [130, 128], 131, policy)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
        np.testing.assert_allclose(lo, h_out["sei_low"].to_numpy().reshape(reps, 2), rtol=1e-12)
        np.testing.assert_allclose(hi, h_out["sei_high"].to_numpy().reshape(reps, 2), rtol=1e-12)


def test_marks_conservative_ses_are_almost_never_below_the_true_se():
    """The upper bound of the bracket is below the regression's own SE only where the common-SE constraint's
    equal-variance assumption fails: never with classical SEs or without the constraint, rarely with HC1 SEs."""
    reps = 2000
    shares = {}
    for se_type in ("hc1", "classical"):
        rng = np.random.default_rng(21)
        for muni in sim.DESIGN:
            tr = sim.simulate_trials(rng, muni, reps, -3.0, 6.0, se_type=se_type)
            printed, marks, h = sim.print_with_marks(tr.estimate, tr.pval)
            n_arm = [muni.n(a) for a in muni.treatment_arms]
            for common in (True, False):
                s, lo, hi = sim.reconstruct_se(printed, marks, h, n_arm, muni.n_control, "conservative",
                                               common_se=common)
                shares[(se_type, common, muni.name)] = (np.mean(s < tr.se), np.mean(s < 0.9 * tr.se))
                c, _, _ = sim.reconstruct_se(printed, marks, h, n_arm, muni.n_control, "central", common_se=common)
                assert np.all(c <= s)
    for (se_type, common, name), (below, far_below) in shares.items():
        if se_type == "classical" or not common:
            assert below <= 0.001, (se_type, common, name, below)
        else:
            assert below <= 0.06 and far_below <= 0.02, (se_type, common, name, below, far_below)


def test_printing_rounds_like_the_reports():
    y, s = sim.print_with_se(np.array([-3.14159, 2.71828]), np.array([4.44449, 3.0001]))
    np.testing.assert_allclose(y, [-3.1, 2.7])
    np.testing.assert_allclose(s, [4.4, 3.0])
    printed, marks, h = sim.print_with_marks(np.array([-11.4, -4.6, 0.4]), np.array([0.01, 0.07, 0.5]))
    np.testing.assert_allclose(printed, [-11.0, -5.0, 0.0])
    assert list(marks) == ["*", "~", ""] and h == pytest.approx(0.5)


# --------------------------------------------------------------------------- #
# coverage of the pooled intervals
# --------------------------------------------------------------------------- #
def _run(**kw):
    base = dict(reps=2000, bayes_reps=0, seed=20170101, methods=("REML",), policies=("reported",))
    base.update(kw)
    return sim.run_simulation(sim.Settings(**base)).results


def test_hksj_from_reported_ses_covers_95_percent_with_six_municipalities_and_no_heterogeneity():
    t = _run(taus=(0.0,), ks=(6,), tests=("knha",))
    row = t.iloc[0]
    assert row["k"] == 6 and row["method"] == "REML" and row["test"] == "knha" and row["reps"] == 2000
    mcse = math.sqrt(0.95 * 0.05 / row["reps"])
    assert abs(row["coverage"] - 0.95) <= 3 * mcse, row["coverage"]
    assert abs(row["bias"]) <= 4 * row["bias_mcse"]


def test_wald_coverage_with_two_heterogeneous_municipalities_is_clearly_below_95_percent():
    t = _run(taus=(6.0,), ks=(2,), tests=("z", "knha"), methods=("REML", "DL"))
    z = t[t["test"] == "z"]
    hk = t[(t["test"] == "knha") & (t["method"] == "REML")].iloc[0]
    mcse = math.sqrt(0.95 * 0.05 / 2000)
    assert (z["coverage"] < 0.95 - 6 * mcse).all(), z["coverage"].tolist()
    assert hk["coverage"] > z["coverage"].max() + 0.03
    assert hk["ci_width_median"] > 3 * z["ci_width_median"].max()


def test_results_are_reproducible_and_do_not_depend_on_the_number_of_processes():
    kw = dict(reps=60, bayes_reps=3, taus=(3.0,), ks=(2, 3), methods=("REML", "DL"), tests=("z", "knha"),
              policies=("reported", "marks-central"))
    a = sim.run_simulation(sim.Settings(jobs=1, **kw)).results
    b = sim.run_simulation(sim.Settings(jobs=2, **kw)).results
    pd.testing.assert_frame_equal(a, b)
    assert set(a["method"]) == {"REML", "DL", sim.BAYES_METHOD}
    assert (a.loc[a["method"] == sim.BAYES_METHOD, "reps"] == 3).all()
    # the same trials serve every k: a tau stream does not depend on the other taus
    c = sim.run_simulation(sim.Settings(jobs=1, **{**kw, "taus": (0.0, 3.0)})).results
    pd.testing.assert_frame_equal(a, c[c["tau"] == 3.0].reset_index(drop=True))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="every k"):
        sim.Settings(ks=(7,)).check()
    with pytest.raises(ValueError, match="bayes_reps"):
        sim.Settings(reps=10, bayes_reps=20).check()
    with pytest.raises(ValueError, match="SE policy"):
        sim.Settings(policies=("exact",)).check()


# --------------------------------------------------------------------------- #
# command line
# --------------------------------------------------------------------------- #
def test_quick_cli_writes_the_results_the_json_summary_and_the_markdown(tmp_path, capsys):
    out = tmp_path / "sim"
    assert sim.main(["--quick", "--jobs", "1", "--out", str(out)]) == 0
    csv, md, js = out / sim.RESULTS_FILE, out / sim.SUMMARY_FILE, out / sim.JSON_FILE
    assert csv.exists() and md.exists() and js.exists()
    run = sim.read_summary(js)
    assert md.read_text() == sim.summary_markdown(run, out, json.loads(js.read_text())["command"])
    t = pd.read_csv(csv)
    assert set(t["k"]) == {2, 3, 4, 5, 6} and set(t["tau"]) == {0.0, 3.0, 6.0}
    assert set(t["se_policy"]) == set(sim.SE_POLICIES)
    assert set(t["method"]) == {*sim.METHODS, sim.BAYES_METHOD}
    assert {"coverage", "coverage_mcse", "bias", "bias_mcse", "pi_coverage", "pi_coverage_mcse"} <= set(t.columns)
    assert len(t) == 3 * 5 * 3 * (3 * 3 + 1)
    text = md.read_text()
    assert "meta simulate --reps 300 --bayes-reps 20 --seed 20170101" in text
    assert "## Verdict" in text and "k = 2 (Nijmegen and Wageningen)" in text
    assert "wrote" in capsys.readouterr().out


def test_add_subcommand_registers_simulate_with_an_example():
    parser = argparse.ArgumentParser(prog="meta")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sim.add_subcommand(sub)
    assert "Example: meta simulate --reps 2000 --out inputs/simulation" in p.description
    args = parser.parse_args(["simulate", "--reps", "50", "--tau", "0", "4", "--k", "2", "3", "--out", "x"])
    assert args.func is sim.cmd_simulate
    s = sim.settings_from_args(args)
    assert (s.reps, s.taus, s.ks, s.bayes_reps) == (50, (0.0, 4.0), (2, 3), 50)
    assert sim.settings_from_args(parser.parse_args(["simulate", "--quick"])).reps == sim.QUICK["reps"]


# --------------------------------------------------------------------------- #
# the JSON summary: what the report reads
# --------------------------------------------------------------------------- #
def _small_run(tmp_path):
    settings = sim.Settings(reps=40, bayes_reps=3, taus=(3.0,), ks=(2, 3), methods=("REML", "DL"),
                            tests=("z", "knha"), policies=("reported", "marks-central"), jobs=1)
    res = sim.run_simulation(settings)
    sim.write_outputs(res, tmp_path, command="meta simulate --test")
    return res


def test_the_json_summary_gives_back_the_settings_diagnostics_and_results_of_the_run(tmp_path):
    res = _small_run(tmp_path)
    back = sim.read_summary(tmp_path / sim.JSON_FILE)
    assert back.settings == res.settings and back.seconds == res.seconds
    pd.testing.assert_frame_equal(back.reconstruction_check, res.reconstruction_check)
    pd.testing.assert_frame_equal(back.regression_check, res.regression_check)
    num = res.results.select_dtypes("number").columns
    np.testing.assert_allclose(back.results[num].to_numpy(float), res.results[num].to_numpy(float), rtol=1e-5)
    assert (back.results["municipalities"] == res.results["municipalities"]).all()


def test_a_results_table_changed_or_missing_after_its_summary_is_refused(tmp_path):
    _small_run(tmp_path)
    csv = tmp_path / sim.RESULTS_FILE
    csv.write_text(csv.read_text().replace("nijmegen+wageningen", "nijmegen+groningen", 1))
    with pytest.raises(InputError, match="sha256 differs"):
        sim.read_summary(tmp_path / sim.JSON_FILE)
    csv.unlink()
    with pytest.raises(InputError, match="does not exist"):
        sim.read_summary(tmp_path / sim.JSON_FILE)


def test_the_committed_markdown_verdict_is_what_the_report_computes_from_the_committed_json():
    """The three committed files are one run: the Markdown's 'Verdict' section equals the lines the report renders
    from the JSON summary and the results table it names."""
    folder = REPO / sim.DEFAULT_OUT
    run = sim.read_summary(folder / sim.JSON_FILE)
    text = (folder / sim.SUMMARY_FILE).read_text(encoding="utf-8")
    section = text.split("## Verdict\n\n", 1)[1].split("\n\n## ", 1)[0]
    assert section.splitlines() == sim.verdict_lines(run.results, run.reconstruction_check, run.settings)
    assert f"--reps {run.settings.reps} --bayes-reps {run.settings.bayes_reps}" in text


def test_the_english_report_renders_the_verdict_from_the_json_summary():
    from meta.present.report import SIMULATION_SUMMARY, simulation_verdict

    assert SIMULATION_SUMMARY.name == sim.JSON_FILE
    html = simulation_verdict(lang="en")
    assert "<li><b>k = 2 (Nijmegen and Wageningen), between-municipality SD tau = 0 pp:</b>" in html
    assert "<p>What this means:</p><ul><li>HKSJ (test knha) intervals from REML" in html
    assert "<code translate='no'>inputs/README.md</code>" in html


def test_the_reports_simulation_rows_are_the_pivot_tables_rows_read_from_the_columns():
    """report_simulation._by_tau_and_k reads the (tau, k) rows from the columns where each (tau, k, test) has one
    row and nothing is missing, and leaves repeats, missing values and absent tests to pivot_table: the same rows
    either way."""
    from meta.present.report_simulation import _by_tau_and_k

    def pivoted(r):
        wide = r.pivot_table(index=["tau", "k"], columns="test", values=["coverage", "ci_width_median"])
        wide = wide.reset_index()
        return list(zip(*(wide[c].tolist() for c in (("tau", ""), ("k", ""), ("coverage", "knha"),
                                                      ("ci_width_median", "knha"), ("coverage", "z"),
                                                      ("ci_width_median", "z")))))

    rng = np.random.default_rng(5)
    grid = [(tau, k, test) for tau in (0.0, 2.5, 1.0) for k in (4, 2, 3) for test in ("z", "knha")]
    for trial in range(60):
        rows = [grid[i] for i in rng.permutation(len(grid))]
        if trial % 4 == 1:
            rows.append(rows[0])  # a repeated (tau, k, test): pivot_table takes the mean
        r = pd.DataFrame(rows, columns=["tau", "k", "test"]).astype({"test": "str"})
        r["coverage"] = rng.random(len(r))
        r["ci_width_median"] = rng.random(len(r)) * 50
        if trial % 4 == 2:
            r.loc[3, "coverage"] = np.nan
        if trial % 4 == 3:
            r = r.iloc[1:]  # one (tau, k) lacks a test
        assert repr(_by_tau_and_k(r)) == repr(pivoted(r))  # repr: every float, NaN equal to NaN

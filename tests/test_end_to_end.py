"""`meta run` end to end: on the real inputs and on a SYNTHETIC set where every municipality has numbers."""
import filecmp
import json
import math

import numpy as np
import pandas as pd
import pytest

from meta.models.engine import pool
from tests.conftest import REPO
from tests.synthetic import make_synthetic_inputs

from tests.conftest import run_meta as _run


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("synthetic")
    inputs = make_synthetic_inputs(base / "inputs")
    out = base / "outputs"
    res = _run("run", "--inputs", str(inputs), "--plan", str(inputs / "plan.toml"), "--out", str(out),
               "--svg")
    assert res.returncode == 0, res.stderr
    return inputs, out, res


def test_real_run_writes_every_output(real_run):
    out, res = real_run
    for name in ("pooled.csv", "pooled.parquet", "studies.csv", "studies.parquet", "excluded.csv", "coverage.csv",
                 "side_by_side.csv", "report.html", "manifest.json", "README.md"):
        assert (out / name).is_file(), name
    assert list((out / "figures").glob("*.png"))
    assert not list((out / "figures").glob("*.svg"))  # SVG only on request (--svg)
    assert res.stdout.strip().splitlines()[-1].startswith("meta: rapport in ")  # Dutch by default
    assert len(res.stdout.strip().splitlines()) <= 6


def test_pending_municipalities_stay_visibly_pending(real_run):
    out, _ = real_run
    cov = pd.read_csv(out / "coverage.csv")
    for muni in ("groningen", "tilburg", "utrecht", "deventer"):
        c = cov[cov["municipality"] == muni]
        assert set(c["status"]) <= {"pending", "not applicable"} and "pending" in set(c["status"])
    sbs = pd.read_csv(out / "side_by_side.csv")
    assert (sbs["groningen"] == "pending").all()
    assert "pending" in (out / "report.html").read_text()


def test_manifest_records_input_hashes_plan_versions_and_commit(real_run):
    out, _ = real_run
    m = json.loads((out / "manifest.json").read_text())
    assert set(m["inputs"]) == {"municipalities", "arms", "outcomes", "legends", "estimates", "sources", "source_pages",
                                "periods", "concepts", "harmonisation"}
    assert all(len(v["sha256"]) == 64 for v in m["inputs"].values())
    assert m["plan"]["method"] == "REML" and m["plan"]["test"] == "adhoc"
    assert m["versions"]["numpy"] and m["git_commit"]


def test_two_runs_give_byte_identical_tables(real_run, tmp_path):
    out, _ = real_run
    again = tmp_path / "again"
    assert _run("run", "--out", str(again), "--no-sensitivity").returncode == 0  # same tables, without sensitivity
    for name in ("pooled.csv", "pooled.parquet", "studies.csv", "studies.parquet", "excluded.csv", "coverage.csv",
                 "side_by_side.csv"):
        assert filecmp.cmp(out / name, again / name, shallow=False), name


def test_synthetic_pooled_numbers_recompute_from_studies_csv(synthetic_run):
    inputs, out, _ = synthetic_run
    pooled = pd.read_csv(out / "pooled.csv")
    studies = pd.read_csv(out / "studies.csv")
    multi = pooled[pooled["k"] >= 2]
    assert len(multi) >= 4
    for _, p in multi.iterrows():
        s = studies[(studies["outcome_key"] == p["outcome_key"]) & (studies["period"] == p["period"])
                    & (studies["arm_class"] == p["arm_class"])]
        assert len(s) == p["k"]
        # independent recomputation: DerSimonian-Laird-free REML by brute-force maximisation of the restricted
        # likelihood on a grid, then the HKSJ interval by hand
        y, v = s["yi"].to_numpy(), s["sei"].to_numpy() ** 2
        grid = np.linspace(0, 4 * np.var(y) + 1e-9, 200001)
        w = 1 / (v[None, :] + grid[:, None])
        mu = (w * y).sum(1) / w.sum(1)
        ll = -0.5 * (np.log(v[None, :] + grid[:, None]).sum(1) + np.log(w.sum(1)) + (w * (y - mu[:, None]) ** 2).sum(1))
        t2 = grid[np.argmax(ll)]
        wi = 1 / (v + t2)
        m = (wi * y).sum() / wi.sum()
        q = max((wi * (y - m) ** 2).sum() / (len(y) - 1), 1.0)  # the plan's test: HKSJ floored at 1 (adhoc)
        se = math.sqrt(q / wi.sum())
        from scipy import stats

        half = stats.t.ppf(0.975, len(y) - 1) * se
        assert math.isclose(p["estimate"], m, rel_tol=1e-3, abs_tol=1e-3)
        assert math.isclose(p["ci_low"], m - half, rel_tol=1e-3, abs_tol=1e-2)
        assert math.isclose(p["tau2"], t2, rel_tol=1e-2, abs_tol=grid[1] * 2)


def test_synthetic_run_flags_derived_standard_errors_and_excludes_between_arm_rows(synthetic_run):
    _, out, _ = synthetic_run
    studies = pd.read_csv(out / "studies.csv")
    assert (studies["se_method"] == "from_significance_marks").sum() == 1
    pooled = pd.read_csv(out / "pooled.csv")
    flagged = pooled[pooled["se_methods"].str.contains("from_significance_marks")]
    assert len(flagged) == 1 and bool(flagged["flag_derived_se"].iloc[0])
    excluded = pd.read_csv(out / "excluded.csv")
    assert excluded["reason"].str.contains("between-arm").any()


def test_svg_copies_are_written_on_request_for_forest_plots_and_components(synthetic_run):
    _, out, _ = synthetic_run
    pngs = {p.stem for p in (out / "figures").glob("forest_*.png")} | {"components", "overview"}
    assert pngs and {p.stem for p in (out / "figures").glob("*.svg")} == pngs


def test_synthetic_forest_plots_have_a_pooled_diamond(synthetic_run):
    from meta.analyses import pipeline
    from meta.present import plots
    from meta.plan import load_plan

    inputs, out, _ = synthetic_run
    results = pipeline.analyse(inputs, load_plan(inputs / "plan.toml"))
    rows = plots.forest_rows(results, "income_gt70_wml", 16, "percentage_points")
    assert (rows["kind"] == "pooled").sum() == 2 and (rows["kind"] == "pi").sum() == 2
    assert rows["label"].is_unique
    fig = plots.draw_forest(results, "income_gt70_wml", 16, "percentage_points", "t")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    diamonds = sum(isinstance(p, Polygon) for p in fig.axes[0].patches)
    plt.close(fig)
    assert diamonds == 2


def test_pool_command_prints_exactly_the_keys_and_matches_metafor(tmp_path, metafor_reference):
    case = next(c for c in metafor_reference["cases"] if c["id"] == "bcg/REML/knha")
    f = tmp_path / "bcg.csv"
    pd.DataFrame({"label": range(len(case["yi"])), "yi": case["yi"], "vi": case["vi"]}).to_csv(f, index=False)
    res = _run("pool", str(f), "--method", "REML", "--test", "knha", "--level", "95")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert list(out) == ["k", "method", "test", "estimate", "se", "ci_low", "ci_high", "pval", "tau2", "tau2_ci_low",
                         "tau2_ci_high", "I2", "H2", "Q", "Q_p", "pi_low", "pi_high"]
    for key in ("estimate", "se", "ci_low", "tau2", "tau2_ci_high", "I2", "Q_p", "pi_high"):
        assert math.isclose(out[key], case["result"][key], rel_tol=1e-4), key


def test_pool_command_accepts_sei_and_agrees_with_vi(tmp_path):
    yi, sei = [-0.1, -0.04, 0.02], [0.03, 0.05, 0.04]
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    pd.DataFrame({"yi": yi, "sei": sei}).to_csv(a, index=False)
    pd.DataFrame({"yi": yi, "vi": np.square(sei)}).to_csv(b, index=False)
    ra, rb = json.loads(_run("pool", str(a)).stdout), json.loads(_run("pool", str(b)).stdout)
    for key, value in ra.items():
        if isinstance(value, float):
            assert math.isclose(value, rb[key], rel_tol=1e-12), key
    assert ra["estimate"] == pytest.approx(pool(yi, np.square(sei)).estimate)


@pytest.mark.parametrize("content,needle", [
    ("", "empty"),
    ("yi,vi\n", "header only"),
    ("effect,variance\n1,2\n", "lack 'yi'"),
    ("yi,vi\n0.1,abc\n", "row 1, column vi"),
    ("yi,vi\n\"0,1\",0.2\n", "decimal separator"),
    ("yi,sei\n0.1,0\n", "must be > 0"),
    ("yi,vi\n0.1,nan\n", "not a finite number"),
])
def test_pool_command_refuses_bad_files_with_one_line_and_status_2(tmp_path, content, needle):
    f = tmp_path / "bad.csv"
    f.write_text(content)
    res = _run("pool", str(f))
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr and str(f) in res.stderr


def test_a_cell_that_does_not_converge_is_excluded_with_its_reason_and_the_run_goes_on(monkeypatch):
    from meta.models import engine
    from meta.analyses import pipeline
    from meta.plan import load_plan

    real = engine.pool_cells

    def one_fails(*args, **kwargs):
        out = real(*args, **kwargs)
        out.loc[0, "converged"] = False
        return out

    monkeypatch.setattr(engine, "pool_cells", one_fails)
    res = pipeline.analyse(REPO / "inputs", load_plan(REPO / "inputs" / "plan.toml"))
    moved = res.excluded[res.excluded["reason"].str.startswith("cell could not be pooled")]
    assert len(moved) >= 1
    n_in = len(res.inputs.estimates)
    assert len(res.studies) + len(res.excluded) == n_in
    assert set(res.studies["input_row"]).isdisjoint(set(res.excluded["input_row"]))

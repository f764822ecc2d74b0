"""Cheap checks of the performance work (issue 15); the timings themselves are in tests/benchmarks/bench_run.py."""
import filecmp
import json
import shutil
import subprocess
import sys

import pandas as pd

from tests.conftest import REPO, run_meta
from meta.plan import load_plan

#: Never needed to print help or to pool one CSV: drawing, workbooks, parquet, scipy.stats.
HEAVY = ("matplotlib", "openpyxl", "xlsxwriter", "odf", "scipy.stats")


def _modules_after(argv: list[str]) -> set[str]:
    code = (
        "import json, sys\n"
        "from meta import cli\n"
        "try:\n"
        f"    cli.main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_meta_help_imports_no_figure_library_no_workbook_engine_and_no_scipy_stats():
    loaded = _modules_after(["--help"])
    assert "meta.simulate" in loaded  # the check is not vacuous: the full parser was built (every subcommand)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_meta_help_imports_neither_numpy_nor_pandas_nor_scipy():
    loaded = _modules_after(["--help"])
    assert "meta.simulate.command" in loaded  # meta simulate's options were registered (not vacuous)
    assert not loaded & {"numpy", "pandas", "scipy", "pyarrow"}, sorted(loaded & {"numpy", "pandas", "scipy", "pyarrow"})


def test_meta_pool_imports_no_report_template_number_format_optimiser_or_parquet_engine(tmp_path):
    f = tmp_path / "effects.csv"
    f.write_text("yi,vi\n0.1,0.01\n0.3,0.02\n-0.1,0.015\n")
    loaded = _modules_after(["pool", str(f)])
    assert "meta.models.engine" in loaded
    unneeded = {"jinja2", "babel", "scipy.optimize", "pyarrow.parquet", "meta.models.bayes", "meta.simulate.study"}
    assert not loaded & unneeded, sorted(loaded & unneeded)


def test_meta_pool_builds_no_other_subcommand_and_imports_no_figure_library_or_workbook_engine(tmp_path):
    f = tmp_path / "effects.csv"
    f.write_text("yi,vi\n0.1,0.01\n0.3,0.02\n-0.1,0.015\n")
    loaded = _modules_after(["pool", str(f)])
    assert "meta.models.engine" in loaded
    assert not loaded & {*HEAVY, "meta.analyses.pipeline", "meta.simulate"}, \
        sorted(loaded & {*HEAVY, "meta.analyses.pipeline", "meta.simulate"})


def _imported_by(modules: str) -> set[str]:
    """sys.modules after importing ``modules`` (comma-separated) in a fresh interpreter."""
    code = f"import json, sys\nimport {modules}\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout))


def test_the_modules_of_meta_run_import_no_scipy_optimize():
    # every module meta run's main process and figure workers import (the analysis, its models, the outputs,
    # figures, report and workbook): the root finder is meta.models.roots, and scipy.optimize's import alone cost
    # ~0.2 s of CPU before the figure workers were forked
    loaded = _imported_by("meta.analyses.pipeline, meta.analyses.components, meta.write.outputs, meta.present.plots, "
                          "meta.present.overview, meta.present.report, meta.present.workers, meta.write.workbook")
    assert {"scipy.special", "meta.models.gls", "meta.models.bayes", "meta.models.mixtures"} <= loaded  # not vacuous
    assert "scipy.optimize" not in loaded


def test_the_component_models_and_the_writers_import_no_scipy_linalg():
    # what meta run's main process imports after forking the figure leader (the component models, the workbook, the
    # report): the covariance checks and block-diagonal matrices use numpy, and scipy.linalg's import alone cost
    # ~0.04 s of CPU there
    loaded = _imported_by("meta.analyses.pipeline, meta.analyses.components, meta.write.outputs, "
                          "meta.present.report, meta.write.workbook")
    assert {"meta.models.multivariate", "meta.models.covariance", "scipy.special"} <= loaded  # not vacuous
    assert "scipy.linalg" not in loaded


def test_what_meta_run_imports_before_forking_the_figure_workers_leaves_out_the_component_models_and_jinja2():
    # the modules cli.main, preflight and _analyse_and_write import before writing() forks the figure leader; what
    # only the main process needs after the fork (the component models with scipy.linalg, Jinja2 for the report)
    # is imported then, while the workers draw
    loaded = _imported_by("meta.cli, meta.read.load, meta.write.rerun, meta.analyses.pipeline, meta.write.outputs, "
                          "meta.present.figures, meta.present.workers, meta.present.templating")
    assert {"meta.analyses.sensitivity", "meta.present.plots", "scipy.special"} <= loaded  # not vacuous
    unneeded = {"meta.analyses.components", "meta.models.multivariate", "scipy.linalg", "jinja2"}
    assert not loaded & unneeded, sorted(loaded & unneeded)


def _differences(a, b) -> list[str]:
    """Relative paths whose bytes differ between two output folders (or exist in one only)."""
    out = []
    names = {p.relative_to(a) for p in a.rglob("*") if p.is_file()} | {p.relative_to(b) for p in b.rglob("*")
                                                                         if p.is_file()}
    for rel in sorted(names):
        if not ((a / rel).is_file() and (b / rel).is_file() and filecmp.cmp(a / rel, b / rel, shallow=False)):
            out.append(str(rel))
    return out


def test_a_rerun_reuses_unchanged_figures_and_workbook_redraws_a_missing_one_and_writes_the_same_bytes(real_run, tmp_path):
    drawn, _ = real_run  # drawn from an empty folder: nothing reused
    first = json.loads((drawn / "manifest.json").read_text())
    assert first["reused"] == [] and "meta.xlsx" in first["content_keys"]
    figures = sorted(n for n in first["content_keys"] if n.startswith("figures/"))
    assert len(figures) == len(list((drawn / "figures").iterdir()))  # every figure has a key
    warm = tmp_path / "outputs"
    shutil.copytree(drawn, warm)
    missing = figures[0]
    (warm / missing).unlink()  # this one must be drawn again, the others reused
    res = run_meta("run", "--out", str(warm), "--jobs", "1")
    assert res.returncode == 0, res.stderr
    second = json.loads((warm / "manifest.json").read_text())
    assert second["reused"] == sorted(set(first["content_keys"]) - {missing})
    assert second["content_keys"] == first["content_keys"]
    assert _differences(drawn, warm) == ["manifest.json"]
    for m in (first, second):
        m.pop("reused")
    assert first == second


def test_a_figure_key_changes_with_its_data_language_and_drawing_code():
    from meta.present.figures import FigureJob, job_key

    rows = pd.DataFrame({"label": ["a", "b"], "est": [0.1, 0.2]})
    job = FigureJob("f", "forest", "t", {"png": "f.png"}, dict(rows=rows, lang="nl"), {"dpi": 110})
    base = job_key(job, "v1")
    assert job_key(job, "v1") == base
    assert job_key(job, "v2") != base  # drawing code changed
    changed = dict(rows=rows.assign(est=[0.1, 0.2000000001]), lang="nl")
    assert job_key(FigureJob("f", "forest", "t", {"png": "f.png"}, changed, {"dpi": 110}), "v1") != base
    assert job_key(FigureJob("f", "forest", "t", {"png": "f.png"}, dict(rows=rows, lang="en"), {"dpi": 110}),
                   "v1") != base
    assert job_key(FigureJob("f", "forest", "t", {"png": "f.png", "svg": "f.svg"}, dict(rows=rows, lang="nl"),
                             {"dpi": 110}), "v1") != base


def test_a_table_key_sees_a_missing_text_a_dtype_pd_na_the_last_bit_of_a_float_and_index_names_not_how_it_was_built():
    from meta.present.figures import frames_key

    base = pd.DataFrame({"label": ["a", ""], "est": [0.1, 0.2], "k": pd.array([1, 2], dtype="Int64")})
    key = frames_key("t", {"rows": base}, "v")
    assert frames_key("t", {"rows": pd.DataFrame({"label": ["a", ""], "est": [0.1, 0.2],
                                                  "k": pd.array([1, 2], dtype="Int64")})}, "v") == key
    assert frames_key("t", {"rows": base.copy().iloc[::-1].iloc[::-1]}, "v") == key  # a copy, the same content
    for changed in (base.assign(label=["a", None]),  # a missing text is not an empty one (CSV wrote both as '')
                    base.assign(est=[0.1, 0.2 + 2 ** -54]), base.assign(est=[0.1, -0.0 + 0.2]).astype({"est": "f4"}),
                    base.assign(k=pd.array([1, None], dtype="Int64")), base.assign(k=["1", "2"]),
                    base.assign(label=["a", "<NA>"]).assign(k=pd.array([1, pd.NA], dtype="Int64")),
                    base.set_axis([5, 6]), base.rename(columns={"est": "estimate"}),
                    base.rename_axis("row"), base.rename_axis(columns="field"),  # names the CSV key wrote
                    base.set_index(["label", "k"]), base.set_index(["label", "k"]).rename_axis(["label", "n"])):
        assert frames_key("t", {"rows": changed}, "v") != key
    with_attrs = base.copy()
    with_attrs.attrs["footer"] = "x"
    assert frames_key("t", {"rows": with_attrs}, "v") != key


def test_run_without_figures_says_no_report_was_written(tmp_path):
    res = run_meta("run", "--out", str(tmp_path / "o"), "--no-figures")
    assert res.returncode == 0, res.stderr
    assert "rapport in" not in res.stdout and "geen rapport" in res.stdout  # the console speaks Dutch by default
    assert not (tmp_path / "o" / "report.html").exists()


def test_past_fifty_municipalities_forest_plots_show_a_strip_and_the_report_counts_instead_of_naming(tmp_path):
    from meta.read import load
    from meta.analyses import pipeline
    from meta.present import plots, report
    from tests.benchmarks.synthetic_scale import make_scaled_inputs

    n = plots.FOREST_MAX_STUDIES + 1
    inputs = make_scaled_inputs(tmp_path / "inputs", n, outcomes=["income_gt70_wml"], horizons=[16])  # SYNTHETIC
    res = pipeline.analyse(inputs, load_plan(inputs / "plan.toml"), sensitivity=False)
    outcome, horizon, unit = plots.figure_cells(res)[0]
    rows = plots.forest_rows(res, outcome, horizon, unit, "nl")
    assert (rows["kind"] == "study").sum() == 0
    strips = rows[rows["kind"] == "strip"]
    assert len(strips) == 2 and all(len(p.split(";")) == n for p in strips["points"])
    fig = plots.draw_forest_rows(rows, unit, "t", 95.0, "nl")
    height = fig.get_size_inches()[1]
    import matplotlib.pyplot as plt

    plt.close(fig)
    assert height < 8  # one page, not a row per municipality
    names = set(res.inputs.municipalities["name"])
    for html in (report.coverage_table(res, "nl"), report.side_by_side_table(res, "nl"),
                 report.sources_table(res, "nl"), report.headline_table(res, "nl")):
        assert not any(name in html for name in names)
    assert "side_by_side.csv" in report.side_by_side_table(res, "en")
    for lang, many in (("nl", f"{n} gemeenten"), ("en", f"{n} municipalities")):  # the whole page counts, too
        page = report.render_report(res, {}, lang)
        assert not [name for name in names if name in page] and many in page


def test_the_control_characters_refused_before_writing_are_exactly_those_openpyxl_refuses():
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    from meta.write.outputs import ILLEGAL_CHARACTERS_RE as ours

    assert (ours.pattern, ours.flags) == (ILLEGAL_CHARACTERS_RE.pattern, ILLEGAL_CHARACTERS_RE.flags)
    assert [c for c in map(chr, range(128)) if ours.search(c)] == [c for c in map(chr, range(128))
                                                                   if ILLEGAL_CHARACTERS_RE.search(c)]


def test_bayesian_fits_shared_among_worker_processes_equal_the_same_fits_in_one_process_to_the_last_bit():
    import numpy as np

    from meta.models.bayes import bayes_pool
    from meta.models.bayes_many import PARALLEL_MIN_FITS, bayes_pool_many

    rng = np.random.default_rng(15)
    calls = [((rng.normal(0, 2, 3), rng.uniform(0.5, 4, 3)), dict(level=95.0, tau_prior=family))
             for family in ("halfnormal", "halfcauchy") for _ in range(PARALLEL_MIN_FITS // 2)]
    calls = [((y, v, s), kw) for (y, v), kw, s in zip((c[0] for c in calls), (c[1] for c in calls),
                                                      np.linspace(0.5, 5, len(calls)))]
    parallel = bayes_pool_many(calls, workers=2)
    serial = [bayes_pool(*a, **k) for a, k in calls]
    assert len(parallel) == len(calls) >= PARALLEL_MIN_FITS
    assert [repr(p) for p in parallel] == [repr(s) for s in serial]  # repr: every float to the last bit, NaN too


def test_the_figure_cache_key_covers_the_wording_and_templates_not_only_the_python_sources():
    """A change of meta/messages.toml or a report template alone must redraw (and rewrite) the cached files."""
    from meta.present import figures

    names = {p.relative_to(REPO / "meta").as_posix() for p in figures.code_files()}
    assert {"messages.toml", "present/templates/report.html.j2", "present/templates/report.css",
            "present/figures.py"} <= names
    assert not any("__pycache__" in n for n in names)


def test_make_meta_compiles_metas_modules_to_bytecode_before_it_runs_them():
    """An editable install leaves meta as source and PYTHONDONTWRITEBYTECODE (set on some machines) stops Python
    from keeping what it compiles: without this step every run compiled ~100 modules again."""
    dry = subprocess.run(["make", "-n", "-W", "pyproject.toml", "meta"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    compiled = [i for i, line in enumerate(dry) if "-m compileall" in line and line.rstrip().endswith(" meta")]
    ran = [i for i, line in enumerate(dry) if line.rstrip().endswith("meta run")]
    assert compiled and ran and compiled[0] < ran[0], dry


def test_the_benchmarks_median_interval_has_the_sign_test_ranks_and_its_verdict_needs_the_whole_interval():
    """bench_run's interval for the median of the paired cold/R ratios has the ranks the binomial(n, 1/2) sums give
    for 95%, worked out by hand: n = 6: 1 and 6 (1 - 2/64 = 96.9%); n = 11: 2 and 10 (1 - 2·12/2048 = 98.8%; ranks 3
    and 9 cover 1 - 2·67/2048 = 93.5%); n = 21: 6 and 16 (1 - 2·27896/2^21 = 97.3%; ranks 7 and 15: 92.2%); none for
    n = 5 (1 - 2/32 = 93.8% at best). 'meets' or 'ABOVE' only when the whole interval lies below or above 1."""
    from tests.benchmarks.bench_run import median_interval, paired_verdict

    assert median_interval([0.5, 0.9, 1.1, 0.7, 0.8]) is None
    assert median_interval([6.0, 1.0, 5.0, 2.0, 4.0, 3.0]) == (1.0, 6.0)
    assert median_interval([float(x) for x in range(11, 0, -1)]) == (2.0, 10.0)
    assert median_interval([float(x) for x in range(1, 22)]) == (6.0, 16.0)
    r = [3.0] * 11
    assert "meets" in paired_verdict([3.0 * x for x in (0.8, 0.9, 0.85, 0.9, 0.95, 0.9, 0.9, 0.85, 0.8, 0.9, 1.05)], r)
    assert "ABOVE" in paired_verdict([3.0 * x for x in (1.2, 1.1, 1.1, 0.95, 1.1, 1.2, 1.1, 1.1, 1.3, 1.1, 1.1)], r)
    assert "level" in paired_verdict([3.0 * x for x in (0.9, 1.1, 0.95, 1.05, 1.0, 0.9, 1.1, 0.97, 1.02, 1.0, 0.99)], r)


_SHUTDOWN = (
    "import sys\n"
    "from meta import cli\n"
    "class Held:\n"
    "    def __del__(self):\n"
    "        sys.stdout.write('freed at exit\\n')\n"
    "def main():\n"
    "    held = Held()\n"
    "    held.cycle = held  # alive when main returns, held by a reference cycle only (as the modules hold the heap)\n"
    "    cli.held = held\n"
    "    del cli.held\n"
    "    return 3\n"
    "cli.main = main\n"
    "sys.stdout.write('ran\\n')\n"
)


def test_the_meta_program_exits_with_mains_status_without_collecting_what_was_alive_when_main_returned():
    # The program (cli.command) freezes the objects alive when main returns, so the interpreter's last collection
    # passes over them: a cycle made by main is not collected (its __del__ never runs); plain sys.exit(main())
    # collects it at exit (the control: not vacuous), which for meta run is freeing the whole heap (0.25-0.35 s).
    ran = {}
    for how in ("cli.command()", "sys.exit(cli.main())"):
        out = subprocess.run([sys.executable, "-c", _SHUTDOWN + how], capture_output=True, text=True, cwd=REPO,
                             timeout=120)
        ran[how] = (out.returncode, out.stdout.split())
    assert ran["sys.exit(cli.main())"] == (3, ["ran", "freed", "at", "exit"])
    assert ran["cli.command()"] == (3, ["ran"])


def test_every_way_to_start_meta_as_a_program_goes_through_command():
    import ast
    import tomllib
    from importlib.metadata import entry_points

    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["meta"] == "meta.cli:command"
    installed = [e.value for e in entry_points(group="console_scripts", name="meta")]
    assert installed == ["meta.cli:command"], f"{installed}: the virtual environment predates it; run make"
    for module in ("meta/__main__.py", "meta/cli.py"):  # python -m meta; python -m meta.cli (tests, benchmarks)
        tree = ast.parse((REPO / module).read_text())
        last = tree.body[-1]
        if isinstance(last, ast.If):  # if __name__ == "__main__":
            last = last.body[-1]
        assert ast.unparse(last) == "command()", (module, ast.unparse(last))

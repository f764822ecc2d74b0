"""Tools for the analysts: templates for pending cells, checking them, the notebook API, Excel, Dutch."""
import re

import pandas as pd
import pytest

from tests.conftest import REPO, run_meta


def test_template_lists_exactly_the_pending_cells_of_a_municipality(tmp_path):
    out = tmp_path / "groningen.csv"
    res = run_meta("template", "--municipality", "groningen", "--out", str(out))
    assert res.returncode == 0, res.stderr
    t = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(t.columns) == list(pd.read_csv(REPO / "inputs" / "estimates.csv", nrows=0).columns)
    arms = pd.read_csv(REPO / "inputs" / "arms.csv", dtype=str, keep_default_na=False)
    g = arms[(arms["municipality"] == "groningen") & (arms["randomised"] == "true")
             & arms["arm_class"].isin(["exemption", "intensive", "release", "free_choice"])]
    core = ["income_gt70_wml", "hours_gt12", "hours_gt27", "hours_gt8", "permanent_contract", "exit_to_work_fulltime"]
    # at the concept level, each register outcome at the months harmonisation.csv maps it at (16, or 24 for the
    # full exit to work) among the plan's horizons
    reg = pd.read_csv(REPO / "inputs" / "harmonisation.csv", dtype=str, keep_default_na=False)
    months = {o: {h for h in reg.loc[(reg["outcome"] == o) & reg["role"].isin(["primary", "sensitivity"]),
                                     "horizon_months"] if h in ("12", "16", "24")} for o in core}
    assert len(t) == len(g) * sum(len(m) for m in months.values())
    assert set(t["arm"]) == set(g["arm"]) and set(t["outcome"]) == set(core)
    assert set(zip(t["outcome"], t["horizon_months"])) == {(o, h) for o, m in months.items() for h in m}
    assert (t["estimate"] == "").all()


def test_template_refuses_a_transcribed_municipality():
    res = run_meta("template", "--municipality", "nijmegen")
    assert res.returncode == 2 and "already transcribed" in res.stderr


def test_check_lists_empty_cells_and_accepts_filled_rows(tmp_path):
    out = tmp_path / "g.csv"
    assert run_meta("template", "--municipality", "groningen", "--out", str(out)).returncode == 0
    t = pd.read_csv(out, dtype=str, keep_default_na=False)
    # a source already in sources.csv, so no --sources file is needed
    t.loc[0, ["estimate", "unit", "printed", "source_file", "source_table", "source_line", "se"]] = \
        ["-0.05", "proportion", "-0,05", "000_894c2ceba613a680.txt", "Tabel 3", "12", "0.02"]
    t.to_csv(out, index=False)
    res = run_meta("check", str(out))
    assert res.returncode == 1
    assert f"{len(t)} rows: 1 complete and valid, 0 with errors, {len(t) - 1} still empty" in res.stdout
    assert f"estimate, unit, printed, source_file, source_table, source_line: {len(t) - 1} rows (2-{len(t)})" in res.stdout
    t.loc[0, "se"] = "-0.02"
    t.to_csv(out, index=False)
    bad = run_meta("check", str(out))
    assert bad.returncode == 2 and "column se (1 row):" in bad.stdout and "row 1: standard error -0.02" in bad.stdout


def test_readme_notebook_example_runs():
    block = re.search(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
    lines = [ln for ln in block.splitlines() if "out=" not in ln]  # the example that writes files is not run here
    namespace = {}
    exec("\n".join(lines), namespace)  # noqa: S102 - executing our own README example
    res = namespace["res"]
    assert len(res.pooled) > 0 and len(res.studies) > 0 and len(res.coverage) > 0
    import matplotlib.figure
    import matplotlib.pyplot as plt

    fig = namespace["fig"]
    plt.close(fig)
    assert isinstance(fig, matplotlib.figure.Figure)


def test_api_writes_nothing_unless_asked(tmp_path, monkeypatch):
    import meta

    monkeypatch.chdir(tmp_path)
    res = meta.run(figures=False)
    assert res.figures == {} and list(tmp_path.iterdir()) == []
    meta.run(figures=False, out=tmp_path / "o")
    assert (tmp_path / "o" / "pooled.csv").is_file()


def test_workbook_is_dutch_by_default_with_numeric_estimates(real_run):
    from openpyxl import load_workbook

    out, _ = real_run
    wb = load_workbook(out / "meta.xlsx")
    assert wb.sheetnames[0] == "Kerntabel"
    ws = wb["Kerntabel"]
    headers = [c.value for c in ws[1]]
    assert "Schatting" in headers and "BI onder" in headers and "Periode" in headers and "Gecombineerde maanden" in headers
    col = headers.index("Schatting") + 1
    assert isinstance(ws.cell(row=2, column=col).value, (int, float))
    assert ws.cell(row=2, column=col).number_format == "0.00"


def test_report_and_figures_are_dutch_by_default_and_english_on_request(real_run, tmp_path):
    out, _ = real_run
    nl = (out / "report.html").read_text(encoding="utf-8")
    assert '<html lang="nl">' in nl and "Kerntabel" in nl and "Openstaande gemeenten" in nl
    en_out = tmp_path / "en"
    assert run_meta("run", "--out", str(en_out), "--lang", "en").returncode == 0
    en = (en_out / "report.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in en and "Headline table" in en and "Kerntabel" not in en


@pytest.mark.parametrize("cmd", [[], ["pool"], ["run"], ["coverage"], ["template"], ["check"], ["add"], ["reconcile"],
                                 ["simulate"]])
def test_every_help_says_what_it_does_with_an_example(cmd):
    res = run_meta(*cmd, "--help")
    assert res.returncode == 0 and "Example: meta" in res.stdout

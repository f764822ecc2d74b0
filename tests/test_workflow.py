"""The command line as an analyst meets it: ``python -m meta``, the plan of ``--inputs``, Dutch CSVs for
``meta pool``, honest cell counts, a clean clone that stays clean, and a coverage table that fits a terminal."""
import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import REPO, run_meta


def _main(capsys, *args):
    """The command line in-process (cheaper than a subprocess): (exit status, stdout, stderr)."""
    from meta.cli import main

    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_python_dash_m_meta_is_the_meta_command():
    res = subprocess.run([sys.executable, "-m", "meta", "pool", "--help"], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "Example: meta pool" in res.stdout


def test_plan_file_is_the_one_in_the_inputs_folder_unless_plan_is_given(tmp_path):
    from meta.plan import DEFAULT_INPUTS, plan_file

    assert plan_file(None, None) == DEFAULT_INPUTS / "plan.toml"
    assert plan_file(None, tmp_path) is None  # a folder without plan.toml: the built-in defaults
    (tmp_path / "plan.toml").write_text("level = 90\n")
    assert plan_file(None, tmp_path) == tmp_path / "plan.toml"
    assert plan_file("other.toml", tmp_path) == __import__("pathlib").Path("other.toml")


def test_inputs_dir_plan_is_read_and_coverage_fits_100_columns(tmp_path, capsys):
    inputs = tmp_path / "inputs"
    shutil.copytree(REPO / "inputs", inputs)
    plan = (inputs / "plan.toml").read_text(encoding="utf-8")
    plan = plan.replace('periods = ["einde_experiment", "meting_1jaar", "meting_2jaar"]', 'periods = ["meting_2jaar"]')
    (inputs / "plan.toml").write_text(plan, encoding="utf-8")
    status, out, err = _main(capsys, "coverage", "--inputs", str(inputs))
    assert status == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    table = [line.split() for line in lines if line.startswith(("gezondheid ", "welbevinden "))]
    assert table and {row[1] for row in table} == {"meting_2jaar"}  # only the period of DIR/plan.toml
    status, out, _ = _main(capsys, "coverage", "--wide", "--inputs", str(inputs))
    assert status == 0 and "wageningen / release" in out


def test_coverage_text_has_one_symbol_per_arm_class_and_municipality():
    from meta.analyses.tables import coverage_text

    cov = pd.DataFrame([
        ("alpha", "exemption", "o", "m16", "transcribed"), ("alpha", "intensive", "o", "m16", "pending"),
        ("beta", "exemption", "o", "m16", "not applicable"), ("beta", "intensive", "o", "m16", "derived-SE"),
    ], columns=["municipality", "arm_class", "outcome_key", "period", "status"])
    text = coverage_text(cov)
    assert "E exemption, I intensive" in text
    row = next(line for line in text.splitlines() if line.startswith("o "))
    assert row.split() == ["o", "m16", "Tp", "-D"]


@pytest.mark.parametrize("content", [
    "label;yi;sei\na;-0,10;0,03\nb;-0,04;0,05\nc;0,02;0,04\n",  # Excel, Dutch locale
    "\ufefflabel;yi;sei\r\na;-0,10;0,03\r\nb;-0,04;0,05\r\nc;0,02;0,04\r\n",  # ... with BOM and CRLF
    "label;yi;sei\na;-0.10;0.03\nb;-0.04;0.05\nc;0.02;0.04\n",  # semicolons with decimal points
])
def test_pool_reads_semicolon_files_like_the_comma_file(tmp_path, capsys, content):
    comma = tmp_path / "comma.csv"
    comma.write_text("label,yi,sei\na,-0.10,0.03\nb,-0.04,0.05\nc,0.02,0.04\n")
    dutch = tmp_path / "dutch.csv"
    dutch.write_bytes(content.encode("utf-8"))
    a, b = _main(capsys, "pool", str(comma)), _main(capsys, "pool", str(dutch))
    assert a[0] == 0 and b[0] == 0, b[2]
    assert json.loads(a[1]) == json.loads(b[1])
    assert "semicolon-separated" in b[2]  # the conversion is said


def test_pool_says_precisely_why_a_mixed_semicolon_file_is_refused(tmp_path, capsys):
    f = tmp_path / "mixed.csv"
    f.write_text("yi;sei\n-0,10;0.03\n0,02;0,04\n")
    status, _, err = _main(capsys, "pool", str(f))
    assert status == 2
    assert "row 1 (line 2), column sei" in err and "decimal point" in err and "'0,03'" in err


def test_pooled_cells_count_only_cells_with_two_or_more_studies(real_run):
    out, res = real_run
    pooled = pd.read_csv(out / "pooled.csv")
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["pooled_cells"] == int((pooled["k"] >= 2).sum())
    assert counts["single_study_cells"] == int((pooled["k"] == 1).sum())
    assert counts["pooled_cells"] + counts["single_study_cells"] == len(pooled)
    assert (f"{counts['pooled_cells']} cellen gepoold (k ≥ 2)" in res.stdout  # Dutch by default
            and f"{counts['single_study_cells']} cellen met één studie" in res.stdout)


def test_cell_counts_of_a_table_with_pooled_and_single_cells():
    from meta.analyses.pipeline import cell_counts

    assert cell_counts(pd.DataFrame({"k": [1, 2, 5, 1, 1]})) == (2, 3)
    assert cell_counts(pd.DataFrame({"k": []})) == (0, 0)


def _git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_a_run_in_a_fresh_clone_leaves_it_clean_and_stamps_a_clean_commit(tmp_path):
    if _git("rev-parse", "HEAD", cwd=REPO).returncode != 0:
        pytest.fail(f"{REPO} is not a git repository; this test needs the repository's history")
    clone = tmp_path / "clone"
    assert _git("clone", "--quiet", str(REPO), str(clone), cwd=tmp_path).returncode == 0
    env = {**os.environ, "PYTHONPATH": str(clone)}
    # the default --out is the clone's outputs/: its temporary folder is built inside the clone
    res = subprocess.run([sys.executable, "-m", "meta", "run", "--no-figures", "--no-sensitivity"], cwd=clone, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    manifest = json.loads((clone / "outputs" / "manifest.json").read_text())
    head = _git("rev-parse", "HEAD", cwd=clone).stdout.strip()
    assert manifest["git_commit"] == head  # no "-dirty"
    assert _git("status", "--porcelain", "--untracked-files=all", cwd=clone).stdout == ""

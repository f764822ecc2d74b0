"""Whole-run reuse (issue 15, meta.write.rerun): a rerun with the same key into unchanged outputs takes them whole,
writes the same bytes as a run that analyses, prints the same summary and imports no drawing or analysis library;
anything that changes an output makes the run analyse again."""
import filecmp
import hashlib
import json
import shutil
import subprocess
import sys

import pytest

from meta.present import figures as figcache
from meta.read.load import load_inputs
from meta.write import rerun
from tests.conftest import REPO, run_meta

OPTIONS = {"lang": "nl", "svg": False, "no_figures": False, "no_sensitivity": False, "jobs": None}


def _differences(a, b) -> list[str]:
    """Relative paths whose bytes differ between two output folders (or exist in one only)."""
    names = {p.relative_to(a) for p in a.rglob("*") if p.is_file()} | {p.relative_to(b) for p in b.rglob("*")
                                                                         if p.is_file()}
    return sorted(str(rel) for rel in names if not ((a / rel).is_file() and (b / rel).is_file()
                                                    and filecmp.cmp(a / rel, b / rel, shallow=False)))


@pytest.fixture()
def cached_copy(real_run, tmp_path):
    """The session's uncached run copied to a new folder (byte copies, not links), and its manifest."""
    drawn, res = real_run
    copy = tmp_path / "outputs"
    shutil.copytree(drawn, copy)
    return drawn, res, copy, json.loads((drawn / "manifest.json").read_text())


def test_a_cached_rerun_writes_the_same_bytes_and_prints_the_same_summary_as_the_run_that_analysed(cached_copy):
    drawn, first_res, warm, first = cached_copy
    res = run_meta("run", "--out", str(warm))
    assert res.returncode == 0, res.stderr
    second = json.loads((warm / "manifest.json").read_text())
    assert second["reused"] == sorted(first["files"]) and len(first["files"]) > 10  # taken whole, not analysed
    assert _differences(drawn, warm) == ["manifest.json"]
    for m in (first, second):
        m.pop("reused"), m.pop("git_commit")
    assert first == second
    assert res.stdout.replace(str(warm), "OUT") == first_res.stdout.replace(str(drawn), "OUT")
    assert res.stderr == first_res.stderr


def test_the_cached_path_imports_neither_matplotlib_nor_scipy_nor_the_analysis(cached_copy):
    _, _, warm, first = cached_copy
    code = ("import json, sys\nfrom meta import cli\n"
            f"status = cli.main(['run', '--out', {str(warm)!r}])\n"
            "print(json.dumps([status, sorted(sys.modules)]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    status, modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert status == 0 and json.loads((warm / "manifest.json").read_text())["reused"] == sorted(first["files"])
    heavy = {m for m in modules if m.split(".")[0] in ("matplotlib", "scipy", "openpyxl")
             or m.startswith(("meta.analyses", "meta.present.plots", "meta.present.report", "meta.write.outputs"))}
    assert "meta.write.rerun" in modules and heavy == set(), sorted(heavy)


@pytest.fixture(scope="module")
def inputs_copy(tmp_path_factory):
    """A copy of inputs/ (with its plan) and the files a run on it reads."""
    folder = tmp_path_factory.mktemp("rerun") / "inputs"
    shutil.copytree(REPO / "inputs", folder)
    return folder


def _key(folder, options=OPTIONS, plan="plan.toml"):
    return rerun.run_key(rerun.files_read(load_inputs(folder).files, folder / plan), options)


def test_the_run_key_changes_with_one_input_byte_the_plan_the_language_and_svg_but_not_with_jobs(inputs_copy):
    key = _key(inputs_copy)
    assert _key(inputs_copy, {**OPTIONS, "jobs": 4}) == key  # same bytes whichever number of processes draws
    assert _key(inputs_copy, {**OPTIONS, "lang": "en"}) != key
    assert _key(inputs_copy, {**OPTIONS, "svg": True}) != key
    assert _key(inputs_copy, {**OPTIONS, "no_figures": True}) != key
    assert _key(inputs_copy, {**OPTIONS, "no_sensitivity": True}) != key
    for name in ("estimates.csv", "plan.toml"):
        path = inputs_copy / name
        original = path.read_bytes()
        path.write_bytes(original.replace(b"ITT, CBS", b"ITT; CBS", 1) if name == "estimates.csv"
                         else original + b"\n# one more line\n")
        try:
            assert _key(inputs_copy) != key, name
        finally:
            path.write_bytes(original)
    assert _key(inputs_copy) == key


def test_the_run_key_changes_with_the_blas_threads_and_a_matplotlibrc(inputs_copy, monkeypatch, tmp_path):
    key = _key(inputs_copy)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "7")
    assert _key(inputs_copy) != key
    monkeypatch.undo()
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path))
    without = _key(inputs_copy)
    (tmp_path / "matplotlibrc").write_text("font.size: 20\n")
    assert _key(inputs_copy) != without


def _fake_outputs(folder, key="k"):
    """A small output folder as a run with ``key`` leaves it."""
    (folder / "figures").mkdir(parents=True)
    (folder / "pooled.csv").write_text("a,b\n1,2\n")
    (folder / "figures" / "f.png").write_bytes(b"\x89PNG fake")
    files = ["figures/f.png", "pooled.csv"]
    manifest = {"run_key": key, "files": files, "console": {"failed_cells": 0},
                "sha256": {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in files},
                "content_keys": {"figures/f.png": "fig"}, "reused": [], "git_commit": "old"}
    rerun.write_manifest(folder, manifest)
    return manifest


def test_unchanged_outputs_with_the_same_key_are_taken_whole_with_the_manifest_renewed(tmp_path):
    out = tmp_path / "out"
    manifest = _fake_outputs(out)
    assert rerun.reuse_previous(out, "k") == {"failed_cells": 0}
    again = json.loads((out / "manifest.json").read_text())
    assert again["reused"] == manifest["files"] and again["git_commit"] != "old"
    assert {k: v for k, v in again.items() if k not in ("reused", "git_commit")} == \
           {k: v for k, v in manifest.items() if k not in ("reused", "git_commit")}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary or parked folder left


@pytest.mark.parametrize("change", ["edited", "missing", "other key", "no hashes"])
def test_an_edited_or_missing_output_or_another_key_makes_the_run_analyse_and_leaves_the_folder_alone(tmp_path, change):
    out = tmp_path / "out"
    _fake_outputs(out)
    key = "k"
    if change == "edited":
        (out / "figures" / "f.png").write_bytes(b"\x89PNG fakf")  # one byte
    elif change == "missing":
        (out / "pooled.csv").unlink()
    elif change == "other key":
        key = "another"
    else:  # a manifest written before the SHA-256 of every file was recorded
        m = json.loads((out / "manifest.json").read_text())
        m.pop("sha256")
        rerun.write_manifest(out, m)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert rerun.reuse_previous(out, key) is None
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_figure_cache_does_not_reuse_a_figure_edited_since_it_was_written(tmp_path):
    out = tmp_path / "out"
    _fake_outputs(out)
    assert figcache.previous_keys(out) == {"figures/f.png": "fig"}
    (out / "figures" / "f.png").write_bytes(b"\x89PNG fakf")
    assert figcache.previous_keys(out) == {}


def test_a_rerun_after_one_input_byte_changed_analyses_again(inputs_copy, tmp_path):
    out = tmp_path / "out"
    args = ("run", "--inputs", str(inputs_copy), "--out", str(out), "--no-sensitivity")
    assert run_meta(*args).returncode == 0
    first = json.loads((out / "manifest.json").read_text())
    assert run_meta(*args).returncode == 0
    assert json.loads((out / "manifest.json").read_text())["reused"] == first["files"]  # unchanged: taken whole
    path = inputs_copy / "estimates.csv"
    original = path.read_bytes()
    path.write_bytes(original.replace(b"ITT, CBS", b"ITT; CBS", 1))
    try:
        res = run_meta(*args)
    finally:
        path.write_bytes(original)
    assert res.returncode == 0, res.stderr
    third = json.loads((out / "manifest.json").read_text())
    assert third["reused"] != third["files"] and third["run_key"] != first["run_key"]
    assert "ITT; CBS" in (out / "studies.csv").read_text() + (out / "excluded.csv").read_text()


def test_the_key_sees_every_installed_library_but_not_how_meta_itself_was_started(tmp_path, monkeypatch):
    for name in ("meta.egg-info", "meta-0.1.0.dist-info", "numpy-9.9.dist-info", "interface_meta-2.0.dist-info"):
        (tmp_path / name).mkdir()
    monkeypatch.setattr(sys, "path", [str(tmp_path)])  # a checkout's meta.egg-info is on sys.path with python -m
    assert rerun.installed_distributions() == ["interface_meta-2.0.dist-info", "numpy-9.9.dist-info"]


def test_a_rerun_taking_the_outputs_whole_repeats_the_warnings_the_analysis_gave(tmp_path, monkeypatch, capsys):
    import warnings

    from meta import cli
    from meta.analyses import pipeline

    real = pipeline.analyse

    def warning_analyse(*a, **k):
        warnings.warn("bayes_pool: quantiles still moved (a test)", UserWarning)
        return real(*a, **k)

    monkeypatch.setattr(pipeline, "analyse", warning_analyse)
    out = str(tmp_path / "out")
    assert cli.main(["run", "--out", out, "--no-sensitivity"]) == 0
    first = capsys.readouterr()
    assert cli.main(["run", "--out", out, "--no-sensitivity"]) == 0
    second = capsys.readouterr()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["reused"] == manifest["files"]  # the second run took the outputs whole
    assert "UserWarning: bayes_pool: quantiles still moved (a test)" in first.err
    assert second.err == first.err and second.out == first.out


def test_a_run_records_every_file_it_wrote_with_the_sha256_of_its_bytes(real_run):
    # Writing.finish hashes the files the main process wrote while the figure workers still draw, and the rest
    # (figures, report) after them: every file of the folder is listed once, with the SHA-256 of its final bytes
    out, _ = real_run
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert manifest["files"] == files and any(f.startswith("figures/") for f in files)
    assert manifest["sha256"] == {f: hashlib.sha256((out / f).read_bytes()).hexdigest() for f in files}

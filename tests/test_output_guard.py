"""Nothing meta did not write is ever deleted: one guard (:func:`meta.write.outdir.check_out_dir`) for ``meta run --out``
and ``meta.run(out=...)``, and the ways writing the outputs can fail end in one line, exit 2 or 3, the previous
outputs untouched.

Everything runs in temporary folders (never the repository's ``outputs/``); the analysis runs once per module
without the sensitivity analysis, and the writers without figures.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
from pathlib import Path

import pytest

import meta
from meta import cli
from meta.write import outdir
from meta.analyses import pipeline
from meta.errors import InputError
from meta import control
from meta.plan import DEFAULT_INPUTS, DEFAULT_PLAN, load_plan
from meta.write import outputs
from tests.conftest import REPO


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def results():
    return pipeline.analyse(DEFAULT_INPUTS, load_plan(DEFAULT_PLAN), sensitivity=False)


@pytest.fixture
def inputs_copy(tmp_path):
    folder = tmp_path / "project" / "inputs"
    shutil.copytree(REPO / "inputs", folder, ignore=shutil.ignore_patterns("notes", "simulation"))
    return folder


@pytest.fixture
def previous(tmp_path, results):
    """A previous outputs folder written by meta (tables only)."""
    out = tmp_path / "outputs"
    outputs.write_outputs(results, out, None, draw=False)
    return out


def _api(inputs, out):
    meta.run(inputs=inputs, plan=inputs / "plan.toml", out=out, figures=False, sensitivity=False)


def _cli(inputs, out, capsys):
    status = cli.main(["run", "--inputs", str(inputs), "--plan", str(inputs / "plan.toml"), "--out", str(out),
                       "--no-sensitivity"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == cli.EXIT_BAD_INPUT and len(err) == 1 and err[0].startswith("meta: error: "), err
    return err[0]


def _where(kind, tmp_path, inputs):
    if kind == "foreign_file":
        out = tmp_path / "my_folder"
        out.mkdir()
        (out / "thesis.docx").write_bytes(b"PK thesis")
        return out, "meta did not write"
    if kind == "inputs":
        return inputs, "holds the inputs"
    if kind == "above_inputs":
        return inputs.parent, "holds the inputs"
    if kind == "repository_root":
        return REPO, "repository"
    raise AssertionError(kind)


GUARDED = ("foreign_file", "inputs", "above_inputs", "repository_root")


@pytest.mark.parametrize("kind", GUARDED)
def test_the_notebook_api_refuses_what_the_cli_refuses_and_deletes_nothing(kind, tmp_path, inputs_copy, capsys):
    out, why = _where(kind, tmp_path, inputs_copy)
    watched = out if kind != "repository_root" else inputs_copy.parent
    before = snapshot(watched)
    with pytest.raises(InputError, match=why):
        _api(inputs_copy, out)
    assert snapshot(watched) == before
    line = _cli(inputs_copy, out, capsys)
    assert why in line
    assert snapshot(watched) == before
    assert not list(out.parent.glob(f".{out.name}.*")), "a temporary or parked folder was left"


def test_the_writer_itself_refuses_a_folder_holding_an_input(results, tmp_path):
    """write_outputs is guarded too (a caller that skips run()): the estimates file's folder is refused."""
    with pytest.raises(InputError, match="holds the inputs"):
        outputs.write_outputs(results, REPO / "inputs", None, draw=False)


def test_a_foreign_file_dropped_into_previous_outputs_is_refused_not_deleted(previous, results):
    (previous / "figures").mkdir()
    (previous / "figures" / "my_notes.txt").write_text("mine")
    before = snapshot(previous)
    with pytest.raises(InputError, match="figures/my_notes.txt"):
        outputs.write_outputs(results, previous, None, draw=False)
    assert snapshot(previous) == before


def test_previous_outputs_listed_in_their_manifest_are_replaced(previous, results):
    listed = json.loads((previous / "manifest.json").read_text())["files"]
    assert "studies.csv" in listed and "manifest.json" not in listed
    (previous / "studies.csv").write_text("stale")
    outputs.write_outputs(results, previous, None, draw=False)
    assert (previous / "studies.csv").read_text() != "stale"


def test_a_read_only_output_folder_is_refused(previous, results):
    os.chmod(previous, 0o555)
    try:
        before = snapshot(previous)
        with pytest.raises(InputError, match="read-only"):
            outputs.write_outputs(results, previous, None, draw=False)
        assert snapshot(previous) == before
        assert not list(previous.parent.glob(".outputs.*"))
    finally:
        os.chmod(previous, 0o755)


def test_a_read_only_parked_copy_of_a_dead_run_is_removed(previous):
    parked = previous.parent / ".outputs.old-999999999"
    shutil.copytree(previous, parked)
    os.chmod(parked, 0o555)
    outdir.recover_interrupted(previous)
    assert not parked.exists()


def test_a_mount_point_is_refused(previous, results, monkeypatch):
    real = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == previous or real(p))
    with pytest.raises(InputError, match="mount point"):
        outputs.write_outputs(results, previous, None, draw=False)


def test_outputs_get_the_usual_folder_mode_not_0700(tmp_path, results):
    old = os.umask(0o022)
    try:
        outputs.write_outputs(results, tmp_path / "fresh", None, draw=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) == 0o755


def test_a_stop_swallowed_in_a_callback_still_stops_before_the_outputs_are_replaced(previous, results):
    """SIGTERM's exception raised inside a weakref callback is dropped by CPython; the recorded stop is not."""
    before = snapshot(previous)
    control.request_stop(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as exc:
            outputs.write_outputs(results, previous, None, draw=False)
    finally:
        control.clear_stop()
    assert exc.value.code == 128 + signal.SIGTERM
    assert snapshot(previous) == before
    assert not list(previous.parent.glob(".outputs.*"))


@pytest.mark.parametrize("code,where,said", [
    (errno.ENOSPC, "write", "the disk is full"),
    (errno.EPERM, "rename", "not permitted"),
    (errno.EBUSY, "rename", "in use or a mount point"),
])
def test_write_failures_end_in_one_line_and_leave_the_previous_outputs(previous, tmp_path, capsys, monkeypatch, code,
                                                                       where, said):
    before = snapshot(previous)

    def fail(*a, **k):
        raise OSError(code, os.strerror(code))

    if where == "write":
        monkeypatch.setattr(outputs, "_write_table", fail)
    else:
        real = os.replace
        monkeypatch.setattr(os, "replace", lambda a, b: fail() if Path(a) == previous else real(a, b))
    status = cli.main(["run", "--out", str(previous), "--no-sensitivity"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == cli.EXIT_BAD_INPUT, err
    assert len(err) == 1 and said in err[0] and "previous outputs are untouched" in err[0], err
    assert snapshot(previous) == before
    assert not list(previous.parent.glob(".outputs.*"))


def test_an_internal_error_is_one_line_exit_3_naming_the_stage(previous, capsys, monkeypatch):
    before = snapshot(previous)

    def boom(*a, **k):
        raise ValueError("something the code did not expect")

    monkeypatch.setattr(pipeline.concepts, "EffectsByChoice", boom)  # the first step of the analysis
    status = cli.main(["run", "--out", str(previous), "--no-sensitivity"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == cli.EXIT_INTERNAL
    assert len(err) == 1 and err[0].startswith("meta: internal error while analysing"), err
    assert "please report" in err[0] and "Traceback" not in err[0]
    assert snapshot(previous) == before


def test_the_writer_refuses_a_control_character_in_a_text_column_of_either_pandas_text_dtype(results):
    """check_text is the last guard before the workbook: it must see text columns whether pandas stores them as
    'object' or (pandas 3) as the 'str' dtype — it once skipped every non-object column and so checked nothing."""
    from dataclasses import replace

    import pandas as pd

    for dtype in (object, "string"):
        studies = results.studies.copy()
        studies["note"] = pd.Series(["ITT\x00 CBS"] + [""] * (len(studies) - 1), dtype=dtype)
        with pytest.raises(InputError, match=r"column note: .*control character"):
            outputs.check_text(replace(results, studies=studies))
    outputs.check_text(results)  # the real run's tables pass


def test_the_writer_names_the_first_control_character_by_table_column_and_row(results):
    """check_text searches every text at once and names the first bad cell as a table-by-table, column-by-column,
    row-by-row search would: the studies before the excluded rows, an earlier column before a later one."""
    from dataclasses import replace

    import pandas as pd

    studies, excluded = results.studies.copy(), results.excluded.copy()
    studies["later"] = ["ok"] * (len(studies) - 1) + ["bad\x01 later"]
    studies.insert(1, "early", ["fine", "bad\x02 early"] + ["x"] * (len(studies) - 2))
    excluded["note"] = pd.Series(["bad\x03 excluded"] * len(excluded), dtype=object)
    row = int(studies["input_row"].iloc[1])
    with pytest.raises(InputError, match=rf"row {row} \(line {row + 1}\), column early: 'bad\\x02 early'"):
        outputs.check_text(replace(results, studies=studies, excluded=excluded))
    with pytest.raises(InputError, match=r"column later: 'bad\\x01 later'"):
        outputs.check_text(replace(results, studies=studies.drop(columns="early"), excluded=excluded))
    with pytest.raises(InputError, match=r"column note: 'bad\\x03 excluded'"):
        outputs.check_text(replace(results, excluded=excluded))


@pytest.mark.parametrize("table", ["studies", "coverage"])
def test_text_no_output_can_hold_is_refused_after_the_figures_are_handed_over_and_nothing_is_left(results, tmp_path,
                                                                                                  table):
    """The writer checks the complete tables when it finishes (after the hand-off to the figure workers, and after
    the side-by-side table and the coverage matrix are made): the error stops the workers and removes the temporary
    folder they drew into."""
    import multiprocessing as mp
    from dataclasses import replace

    frame = getattr(results, table).copy()
    frame["note"] = ["ITT\x00 CBS"] + [""] * (len(frame) - 1)
    out = tmp_path / "outputs"
    with pytest.raises(InputError, match=r"column note: .*control character"):
        with outputs.writing(results, out, None, draw=True, jobs=2) as writer:
            writer.finish(replace(results, **{table: frame}))
    assert list(tmp_path.iterdir()) == []  # no temporary folder, no outputs
    assert mp.active_children() == []  # the figure workers were stopped and reaped


def test_results_the_analysis_left_incomplete_for_the_figures_are_completed_before_they_are_written(results, tmp_path):
    """analyse(..., figures_first=True) leaves the single studies' Bayesian columns, the side-by-side table and the
    coverage matrix for later (meta run completes them after the hand-off); the writer completes them itself, so a
    notebook that writes such results gets the same tables."""
    partial = pipeline.analyse(DEFAULT_INPUTS, load_plan(DEFAULT_PLAN), sensitivity=False, figures_first=True)
    assert partial.incomplete is not None and len(partial.coverage) == 0
    outputs.write_outputs(partial, tmp_path / "partial", None, draw=False)
    outputs.write_outputs(results, tmp_path / "whole", None, draw=False)
    for name in ("pooled.csv", "coverage.csv", "side_by_side.csv", "studies.csv"):
        assert (tmp_path / "partial" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name

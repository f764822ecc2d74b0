"""Faults: a crash (SIGKILL), Ctrl-C (SIGINT) or SIGTERM in the middle of ``meta run`` leaves the previous outputs intact.

Each test starts a real ``meta run`` over a copy of a previous outputs folder with ``META_TEST_PAUSE_AT=<stage>``,
which makes the run stop at that stage and say so on stderr; the signal is sent then, so every test interrupts
exactly the stage it names (no guessed delays, no skips). Stages: ``read`` (inputs), ``analyse``, ``write``
(tables in the temporary folder), ``figures``, ``report``, ``commit`` (between the two renames: the previous
outputs are parked as ``.outputs.old-PID``). Required: the outputs folder is byte for byte the previous one;
nothing else is left next to it except, after SIGKILL only, the unfinished ``.outputs.tmp-*`` folder (and at
``commit`` the parked previous outputs, which the next run puts back); Ctrl-C ends with status 130 and one line
saying the outputs were not replaced; SIGTERM with status 143. A later run ignores such leftovers (removes them
when their name carries the pid of a dead run, else names them) and replaces the outputs whole.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from meta import cli

from meta.write import outdir
from tests.conftest import REPO, run_meta

META = [sys.executable, "-m", "meta.cli"]


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


@pytest.fixture
def previous(real_run, tmp_path):
    """A complete previous outputs folder (a copy of the session's real run) in an empty folder."""
    out = tmp_path / "outputs"
    shutil.copytree(real_run[0], out)
    return out, snapshot(out)


def _default_sigint():
    # a shell starts background jobs with SIGINT ignored, and Python keeps an ignored SIGINT ignored:
    # give the child the default disposition so that it gets KeyboardInterrupt as from a terminal's Ctrl-C
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_paused(out: Path, stage: str, *extra) -> subprocess.Popen:
    """Start ``meta run`` and return once it is paused at ``stage`` (it said so on stderr)."""
    env = {**os.environ, "META_TEST_PAUSE_AT": stage}
    proc = subprocess.Popen([*META, "run", "--out", str(out), *extra], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint, env=env)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith(f"meta: test pause at {stage}"):
            return proc
    proc.wait()
    raise AssertionError(f"the run never reached stage {stage!r} (status {proc.returncode}):\n{''.join(seen)}")


FIGURES = ("figures", "report")  # stages that exist only when figures are drawn
KILLS = [
    (signal.SIGINT, "read"), (signal.SIGKILL, "analyse"), (signal.SIGINT, "write"), (signal.SIGTERM, "write"),
    (signal.SIGINT, "figures"), (signal.SIGKILL, "figures"), (signal.SIGTERM, "report"),
    (signal.SIGINT, "commit"), (signal.SIGTERM, "commit"),
]


@pytest.mark.parametrize("sig,stage", KILLS, ids=[f"{signal.Signals(s).name}-at-{st}" for s, st in KILLS])
def test_a_run_stopped_at_any_stage_leaves_the_previous_outputs_intact(previous, sig, stage):
    # options other than the previous run's, so the run analyses and draws (the same options take the outputs whole)
    _stop_and_check(*previous, sig, stage, ("--lang", "en") if stage in FIGURES else ("--no-sensitivity",))


REUSE_KILLS = [(signal.SIGINT, "write"), (signal.SIGKILL, "write"), (signal.SIGTERM, "commit")]


@pytest.mark.parametrize("sig,stage", REUSE_KILLS,
                         ids=[f"{signal.Signals(s).name}-at-{st}" for s, st in REUSE_KILLS])
def test_a_rerun_taking_the_outputs_whole_stopped_at_any_stage_leaves_them_intact(previous, sig, stage):
    _stop_and_check(*previous, sig, stage, ())  # the previous run's options: meta.write.rerun takes them whole


def _stop_and_check(out: Path, before: dict, sig, stage: str, extra: tuple) -> None:
    """Stop ``meta run --out out *extra`` with ``sig`` at ``stage``; the outputs must be as ``before``."""
    proc = run_paused(out, stage, *extra)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=300)
    assert snapshot(out) == before, "the previous outputs changed"
    leftovers = sorted(p.name for p in out.parent.iterdir() if p.name != "outputs")
    if sig == signal.SIGINT:
        assert proc.returncode == cli.EXIT_INTERRUPTED, (proc.returncode, stderr)
        assert stderr.strip().splitlines()[-1].startswith("meta: interrupted; the outputs folder is as it was")
        assert leftovers == [], f"an interrupted run left {leftovers}"
    elif sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM, (proc.returncode, stderr)
        assert leftovers == [], f"a terminated run left {leftovers}"
    else:
        assert proc.returncode == -signal.SIGKILL
        assert all(name.startswith(".outputs.tmp-") for name in leftovers), leftovers
    assert "Traceback" not in stderr


def test_next_run_ignores_what_a_killed_run_left_and_replaces_the_outputs(previous, real_run):
    out, before = previous
    proc = run_paused(out, "write", "--no-sensitivity")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=300)
    strays = sorted(p.name for p in out.parent.glob(".outputs.tmp-*"))
    assert strays and snapshot(out) == before

    res = run_meta("run", "--out", str(out), "--no-figures", "--no-sensitivity")
    assert res.returncode == 0, res.stderr
    for stray in strays:  # removed (its name carries the pid of a dead run), or named in a warning
        assert not (out.parent / stray).exists() or (stray in res.stderr and "never used" in res.stderr), res.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["input_rows"] > 0
    assert (out / "studies.csv").read_bytes() == (real_run[0] / "studies.csv").read_bytes()
    assert not (out / "figures").exists(), "the new outputs must be the --no-figures run's, whole"
    for stray in strays:  # never the outputs
        if (out.parent / stray).exists():
            assert not (out.parent / stray / "manifest.json").exists()


def test_a_run_killed_between_its_two_renames_is_undone_by_the_next_run(previous, real_run):
    """SIGKILL after the previous outputs were parked and before the new ones were moved in: no outputs folder;
    the next run puts the parked one back first, then replaces it whole."""
    out, before = previous
    proc = run_paused(out, "commit", "--no-sensitivity")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=300)
    parked = out.parent / f".outputs.old-{proc.pid}"
    assert not out.exists() and snapshot(parked) == before
    res = run_meta("run", "--out", str(out), "--no-figures", "--no-sensitivity")
    assert res.returncode == 0, res.stderr
    assert "restored the previous outputs" in res.stderr
    assert not parked.exists() and (out / "studies.csv").read_bytes() == (real_run[0] / "studies.csv").read_bytes()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_outputs_parked_by_a_dead_run_are_put_back(previous, capsys):
    out, before = previous
    parked = out.parent / f".outputs.old-{_dead_pid()}"
    os.replace(out, parked)  # what a SIGKILL between os.replace(out, backup) and os.replace(tmp, out) leaves
    cli._stderr_warnings()
    outdir.recover_interrupted(out)
    assert snapshot(out) == before and not parked.exists()
    assert "restored the previous outputs" in capsys.readouterr().err


def test_a_stale_parked_copy_is_removed_when_the_outputs_exist(previous):
    out, before = previous
    parked = out.parent / f".outputs.old-{_dead_pid()}"
    shutil.copytree(out, parked)
    outdir.recover_interrupted(out)
    assert not parked.exists() and snapshot(out) == before


def test_a_parked_copy_of_a_running_run_is_left_alone(previous):
    out, _ = previous
    parked = out.parent / f".outputs.old-{os.getpid()}"
    parked.mkdir()
    os.replace(out, out.parent / "elsewhere")
    outdir.recover_interrupted(out)
    assert parked.is_dir() and not out.exists()

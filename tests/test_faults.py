"""Faults: a crash (SIGKILL), Ctrl-C (SIGINT) or SIGTERM in the middle of ``meta run`` leaves the previous outputs intact.

Each test starts a real ``meta run`` (figures and report included) over a copy of a previous outputs folder,
sends the signal after a delay (counted from the start, or from the moment the temporary output folder
appears, i.e. while tables, figures and the report are being written) and then requires: the outputs folder
is byte for byte the previous one; nothing else appeared next to it except, after SIGKILL only, the
unfinished ``.outputs.tmp-*`` folder (which is never the outputs); and a Ctrl-C ends with status 130 and one
line saying the outputs were not replaced; SIGTERM with status 143 and no leftovers. A later run ignores such
leftovers (removes them when their name carries the pid of a dead run, else names them) and replaces the
outputs whole; a previous outputs folder parked by a run killed between its two renames is put back.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meta import cli
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


def start_run(out: Path, *extra) -> subprocess.Popen:
    return subprocess.Popen([*META, "run", "--out", str(out), *extra], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


def kill_after(proc: subprocess.Popen, parent: Path, sig: int, when: str, delay: float, timeout: float = 120):
    """Send ``sig`` ``delay`` s after the start, or after the temporary output folder appears. True if sent."""
    t0 = time.monotonic()
    if when == "writing":
        while not list(parent.glob(".outputs.tmp-*")):
            if proc.poll() is not None or time.monotonic() - t0 > timeout:
                return False
            time.sleep(0.02)
        t0 = time.monotonic()
    while time.monotonic() - t0 < delay:
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    if proc.poll() is not None:
        return False
    proc.send_signal(sig)
    return True


KILLS = [  # (signal, counted from, delay in s)
    (signal.SIGINT, "start", 0.5),      # while importing
    (signal.SIGKILL, "start", 2.5),     # while reading and analysing
    (signal.SIGINT, "writing", 0.2),    # tables being written
    (signal.SIGINT, "writing", 2.5),    # figures being drawn
    (signal.SIGTERM, "writing", 1.5),   # e.g. a scheduler stopping the job
    (signal.SIGKILL, "writing", 4.0),
    (signal.SIGINT, "writing", 6.0),
]


@pytest.mark.parametrize("sig,when,delay", KILLS,
                         ids=[f"{signal.Signals(s).name}-{w}+{d}s" for s, w, d in KILLS])
def test_killed_run_leaves_previous_outputs_intact(previous, sig, when, delay):
    out, before = previous
    proc = start_run(out)
    sent = kill_after(proc, out.parent, sig, when, delay)
    stdout, stderr = proc.communicate(timeout=300)
    if not sent:
        assert proc.returncode == 0, stderr
        pytest.skip(f"the run finished before the signal ({delay} s after {when}): nothing to interrupt")
    assert snapshot(out) == before, "the previous outputs changed"
    leftovers = sorted(p.name for p in out.parent.iterdir() if p.name != "outputs")
    if sig == signal.SIGINT and proc.returncode == 0 and "Exception ignored" in stderr:
        # CPython drops a KeyboardInterrupt raised inside a finalizer or weakref callback ("Exception ignored in");
        # the run then completes normally. The outputs (deterministic) are checked equal above.
        assert leftovers == [], f"a completed run left {leftovers}"
    elif sig == signal.SIGINT:
        assert proc.returncode in (cli.EXIT_INTERRUPTED, -signal.SIGINT), (proc.returncode, stderr)
        if proc.returncode == cli.EXIT_INTERRUPTED:
            assert stderr.strip().splitlines()[-1].startswith("meta: interrupted; the outputs folder is as it was")
        assert leftovers == [], f"an interrupted run left {leftovers}"
    elif sig == signal.SIGTERM:
        assert proc.returncode in (128 + signal.SIGTERM, -signal.SIGTERM), (proc.returncode, stderr)
        if proc.returncode == 128 + signal.SIGTERM:
            assert leftovers == [], f"a terminated run left {leftovers}"
    else:
        assert proc.returncode == -signal.SIGKILL
        assert all(name.startswith(".outputs.tmp-") for name in leftovers), leftovers


def test_next_run_ignores_what_a_killed_run_left_and_replaces_the_outputs(previous, real_run):
    out, before = previous
    proc = start_run(out)
    assert kill_after(proc, out.parent, signal.SIGKILL, "writing", 0.3), "the run ended before it was killed"
    proc.communicate(timeout=300)
    strays = sorted(p.name for p in out.parent.glob(".outputs.tmp-*"))
    assert strays and snapshot(out) == before

    res = run_meta("run", "--out", str(out), "--no-figures")
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


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_outputs_parked_by_a_run_killed_between_its_renames_are_put_back(previous, capsys):
    out, before = previous
    parked = out.parent / f".outputs.old-{_dead_pid()}"
    os.replace(out, parked)  # what a SIGKILL between os.replace(out, backup) and os.replace(tmp, out) leaves
    cli._stderr_warnings()
    cli._recover_interrupted(out)
    assert snapshot(out) == before and not parked.exists()
    assert "restored the previous outputs" in capsys.readouterr().err


def test_a_stale_parked_copy_is_removed_when_the_outputs_exist(previous):
    out, before = previous
    parked = out.parent / f".outputs.old-{_dead_pid()}"
    shutil.copytree(out, parked)
    cli._recover_interrupted(out)
    assert not parked.exists() and snapshot(out) == before


def test_a_parked_copy_of_a_running_run_is_left_alone(previous):
    out, _ = previous
    parked = out.parent / f".outputs.old-{os.getpid()}"
    parked.mkdir()
    os.replace(out, out.parent / "elsewhere")
    cli._recover_interrupted(out)
    assert parked.is_dir() and not out.exists()

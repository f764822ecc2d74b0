"""Shared test helpers."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _seeds() -> Path:
    """The Dutch source reports the transcription cites; they are not in the repository. ``META_SEEDS``, else
    ``shared/seeds`` beside the checkout (/work/main) or beside its worktree folder (/work/wt/<name>)."""
    if os.environ.get("META_SEEDS"):
        return Path(os.environ["META_SEEDS"])
    beside = REPO.parent / "shared" / "seeds"
    return beside if beside.is_dir() else REPO.parent.parent / "shared" / "seeds"


SEEDS = _seeds()
#: A test that reads the seeds skips where they are absent, listed with this reason in pytest's summary (-ra).
needs_seeds = pytest.mark.skipif(not SEEDS.is_dir(), reason=f"seed reports not found at {SEEDS} (set META_SEEDS)")


def load_json(name):
    return json.loads((HERE / "reference" / name).read_text())


@pytest.fixture(scope="session")
def metafor_reference():
    return load_json("metafor_reference.json")


META = [sys.executable, "-m", "meta.cli"]


def run_meta(*args, cwd=REPO):
    """Run the ``meta`` command line in a subprocess."""
    return subprocess.run([*META, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="session")
def real_run(tmp_path_factory):
    """``meta run`` on the real inputs into a temporary folder (once per test session)."""
    out = tmp_path_factory.mktemp("real") / "outputs"
    res = run_meta("run", "--out", str(out))
    assert res.returncode == 0, res.stderr
    return out, res

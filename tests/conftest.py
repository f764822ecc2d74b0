"""Shared test helpers."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


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

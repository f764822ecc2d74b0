"""Shared test helpers."""
import json
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def load_json(name):
    return json.loads((HERE / "reference" / name).read_text())


@pytest.fixture(scope="session")
def metafor_reference():
    return load_json("metafor_reference.json")

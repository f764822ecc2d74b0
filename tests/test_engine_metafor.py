"""The engine reproduces R's metafor 3.8-1 (rma.uni, predict, confint) on every case of tests/reference.

Reference values were printed by ``Rscript tests/reference/metafor_reference.R``; each case records the exact R
call. Tolerances: relative 1e-6 for the closed-form estimators (DL, HE, SJ, HS, FE), 1e-4 for the iterative ones
(ML, REML, PM, EB). Quantities that are zero in exact arithmetic (τ² at the boundary and the I², τ² bounds derived
from it) are compared with an absolute tolerance of 1e-7 on I² (percent) and 1e-9·s² on τ², because metafor's
Fisher scoring stops a hair above zero there.
"""
import math

import numpy as np
import pytest

from meta.models.engine import pool, pool_batch
from tests.conftest import load_json

REF = load_json("metafor_reference.json")
CASES = [c for c in REF["cases"] if c["result"] is not None]
KEYS = ("k", "estimate", "se", "ci_low", "ci_high", "pval", "tau2", "tau2_ci_low", "tau2_ci_high", "I2", "H2",
        "Q", "Q_p", "pi_low", "pi_high", "I2_ci_low", "I2_ci_high", "H2_ci_low", "H2_ci_high")
CLOSED_FORM = ("DL", "HE", "SJ", "HS", "FE")


def _close(ours, ref, method, key, s2):
    if ref is None:
        return ours is None or (isinstance(ours, float) and math.isnan(ours))
    rtol = 1e-6 if method in CLOSED_FORM else 1e-4
    atol = 0.0
    if key.startswith("I2"):
        atol = 1e-7
    elif key.startswith("tau2"):
        atol = 1e-9 * s2
    elif key.startswith("H2"):
        atol = 1e-9
    elif key in ("pval", "Q_p"):
        atol = 1e-300
    return math.isclose(ours, ref, rel_tol=rtol, abs_tol=atol)


def test_reference_file_records_versions_and_calls():
    assert REF["metafor_version"] == "3.8-1"
    assert len(CASES) > 1500
    assert all(c["call"].startswith("rma(") for c in CASES)
    datasets = {c["dataset"].split("_")[0] for c in CASES}
    assert {"bcg", "normand1999", "raudenbush1985", "synth", "edge"} <= datasets


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_pool_matches_metafor(case):
    res = pool(case["yi"], case["vi"], method=case["method"], test=case["test"], level=case["level"]).to_dict()
    s2 = case["result"]["s2"]
    wrong = {k: (res[k], case["result"][k]) for k in KEYS
             if not _close(float(res[k]), case["result"][k], case["method"], k, s2)}
    assert not wrong, f"{case['call']}: {wrong}"


@pytest.mark.parametrize("method", ["DL", "HE", "SJ", "HS", "ML", "REML", "PM", "EB", "FE"])
@pytest.mark.parametrize("test", ["z", "knha", "adhoc"])
def test_batch_matches_metafor_for_every_synthetic_set_at_once(method, test):
    cases = [c for c in CASES if c["dataset"].startswith("synth") and c["method"] == method and c["test"] == test]
    assert cases
    K = max(len(c["yi"]) for c in cases)
    y = np.zeros((len(cases), K))
    v = np.ones((len(cases), K))
    mask = np.zeros((len(cases), K), dtype=bool)
    for j, c in enumerate(cases):
        n = len(c["yi"])
        y[j, :n], v[j, :n], mask[j, :n] = c["yi"], c["vi"], True
    out = pool_batch(y, v, mask, method=method, test=test)
    for j, c in enumerate(cases):
        for key in ("estimate", "se", "tau2", "tau2_ci_high", "pi_low", "I2"):
            assert _close(float(out[key][j]), c["result"][key], method, key, c["result"]["s2"]), (c["id"], key)


HARD = load_json("metafor_hard_cases.json")


@pytest.mark.parametrize("case", HARD["cases"], ids=[c["id"] for c in HARD["cases"]])
def test_reml_finds_the_global_maximum_where_fisher_scoring_oscillates_or_stalls(case):
    """Rows of the benchmark data where plain Fisher scoring oscillates (metafor errors: 'did not converge') or stops
    at a local maximum (metafor falls back to 0): the engine matches R's direct maximisation of the REML likelihood."""
    r = pool(case["yi"], case["vi"], method="REML", test="z")
    assert r.converged
    assert math.isclose(r.tau2, case["reml_argmax_tau2"], rel_tol=1e-5, abs_tol=1e-12)
    if case["metafor_tau2"] is not None:
        assert math.isclose(r.tau2, case["metafor_tau2"], rel_tol=1e-5, abs_tol=1e-12)

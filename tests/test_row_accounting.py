"""Row accounting: every input row appears in exactly one of ``studies.csv`` or ``excluded.csv``.

Checked on the real run's files, and with hypothesis on generated inputs (the real ``estimates.csv`` with rows
dropped, duplicated under a changed key and modified, under varied plans; and the SYNTHETIC sets of
``tests/synthetic.py`` with random seeds), calling :func:`meta.analyses.pipeline.analyse` in-process.
"""
from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, reject, settings, strategies as st

from meta.read import estimates

from meta.analyses import pipeline
from meta.errors import InputError
from meta.plan import Plan
from meta.plan import load_plan
from tests.conftest import REPO
from tests.synthetic import make_synthetic_inputs

S = dict(dtype=str, keep_default_na=False)
REAL = pd.read_csv(REPO / "inputs" / "estimates.csv", **S)
REAL_PLAN = load_plan(REPO / "inputs" / "plan.toml")
IDENTITY = ("municipality", "arm", "comparator", "outcome", "model", "population", "source_table")
SETTINGS = settings(max_examples=12, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check_accounting(studies: pd.DataFrame, excluded: pd.DataFrame, estimates: pd.DataFrame):
    """``estimates`` as read from the file (strings); studies/excluded with ``input_row`` (1-based)."""
    used, dropped = list(studies["input_row"]), list(excluded["input_row"])
    assert len(used) == len(set(used)), "a row is used twice"
    assert len(dropped) == len(set(dropped)), "a row is listed twice in excluded"
    assert not set(used) & set(dropped), f"rows both used and excluded: {sorted(set(used) & set(dropped))[:10]}"
    missing = set(range(1, len(estimates) + 1)) - set(used) - set(dropped)
    assert not missing, f"rows lost: {sorted(missing)[:10]}"
    assert set(used) | set(dropped) == set(range(1, len(estimates) + 1))
    assert excluded["reason"].notna().all() and (excluded["reason"].astype(str).str.len() > 0).all()
    # input_row points at the right row of the file
    for frame in (studies, excluded):
        if len(frame):
            source = estimates.iloc[frame["input_row"].astype(int) - 1]
            for col in IDENTITY:
                assert list(frame[col].astype(str)) == list(source[col]), col


def test_real_run_accounts_for_every_row_exactly_once(real_run):
    out, _ = real_run
    check_accounting(pd.read_csv(out / "studies.csv", **S).astype({"input_row": int}),
                     pd.read_csv(out / "excluded.csv", **S).astype({"input_row": int}), REAL)


@pytest.fixture(scope="module")
def registers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("accounting") / "inputs"
    folder.mkdir()
    for name in ("municipalities.csv", "arms.csv", "outcomes.csv", "significance_legends.csv", "periods.csv",
                 "concepts.csv", "harmonisation.csv"):
        shutil.copy(REPO / "inputs" / name, folder / name)
    return folder


def mutate(rng: np.random.Generator, p_drop: float, n_dup: int, n_mod: int) -> pd.DataFrame:
    """The real estimates with rows dropped, duplicated under a new key, and modified (keys kept unique)."""
    rows = REAL[rng.random(len(REAL)) >= p_drop].reset_index(drop=True)
    if len(rows) == 0:
        rows = REAL.iloc[:1].copy()
    dups = rows.iloc[rng.integers(0, len(rows), n_dup)].copy()
    dups["population"] = [f"dup{i}" for i in range(len(dups))]
    dups["model"] = rng.choice(["loep", "logit_incl_dropouts", "raw_shares", "basis"], len(dups))
    rows = pd.concat([rows, dups], ignore_index=True)
    for i in rng.integers(0, len(rows), n_mod):
        what = rng.integers(0, 4)
        if what == 0:
            rows.loc[i, "horizon_months"] = rng.choice(["", "0", "12", "16", "24", "27", "36"])
        elif what == 1:
            rows.loc[i, "se"] = "" if rng.random() < 0.5 else f"{rng.uniform(0.001, 0.2):.3f}"
        elif what == 2:
            rows.loc[i, "model"] = rng.choice(REAL_PLAN.model_preference)
        else:
            rows.loc[i, "population"] = rng.choice(["all", "all_incl_dropouts", "stock", "respondents_m2"])
    rows = rows.drop_duplicates(subset=list(estimates.ESTIMATE_KEY), keep="first")  # a modification may repeat a key
    return rows.iloc[rng.permutation(len(rows))].reset_index(drop=True)


REGISTER = pd.read_csv(REPO / "inputs" / "harmonisation.csv", **S)
#: the outcome codes the real plan's concepts are made of (its strict-level counterpart)
STRICT_OUTCOMES = tuple(dict.fromkeys(REGISTER.loc[REGISTER["concept"].isin(REAL_PLAN.outcomes)
                                                   & (REGISTER["outcome"] != ""), "outcome"]))
plans = st.builds(
    lambda horizons, level, derived, policy: Plan(
        **{**REAL_PLAN.__dict__, "horizons": tuple(sorted(horizons)), "outcome_level": level,
           "outcomes": REAL_PLAN.outcomes if level == "concept" else STRICT_OUTCOMES,
           "include_derived_from_marks": derived, "se_policy": policy}),
    st.sets(st.sampled_from([0, 12, 16, 24, 27]), min_size=1), st.sampled_from(["strict", "concept"]),
    st.booleans(), st.sampled_from(["central", "conservative"]))


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), p_drop=st.sampled_from([0.0, 0.1, 0.5, 0.9]),
       n_dup=st.integers(0, 40), n_mod=st.integers(0, 60), plan=plans)
def test_generated_inputs_account_for_every_row_exactly_once(registers, seed, p_drop, n_dup, n_mod, plan):
    rows = mutate(np.random.default_rng(seed), p_drop, n_dup, n_mod)
    rows.to_csv(registers / "estimates.csv", index=False, lineterminator="\n")
    # preferences the rows have (a preference that matches no row is refused: checked by the bad input catalogue)
    plan = replace(plan, **{name: tuple(v for v in getattr(plan, name) if v in set(rows[col])) or (rows[col].iloc[0],)
                            for name, col in (("model_preference", "model"), ("population_preference", "population"))})
    try:
        results = pipeline.analyse(registers, plan, sensitivity=False)
    except InputError:
        reject()  # a mutation the loader refuses (checked by the bad input catalogue, not here)
    check_accounting(results.studies, results.excluded, pd.read_csv(registers / "estimates.csv", **S))


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_synthetic_inputs_account_for_every_row_exactly_once(tmp_path_factory, seed):
    folder = make_synthetic_inputs(tmp_path_factory.mktemp("synthetic") / "inputs", seed=seed)
    results = pipeline.analyse(folder, load_plan(folder / "plan.toml"), sensitivity=False)
    check_accounting(results.studies, results.excluded, pd.read_csv(folder / "estimates.csv", **S))

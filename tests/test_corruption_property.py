"""A typo in one cell of ``estimates.csv`` never changes a pooled number silently.

Hypothesis corrupts one cell of a copy of the real ``estimates.csv`` (mostly of rows the analysis uses) the way
hands and spreadsheets do: a stray character (underscore, comma, space, no-break space, %, e, a letter), a
number scaled by 100 either way, a blank cell, a dropped or doubled character, a sign flipped. The analysis then
runs in-process without the sensitivity analysis. Allowed outcomes: refused (``InputError``, the one-line error of
the CLI), or accepted with the pooled table unchanged, or accepted with a warning. Forbidden: any other exception
(a traceback), and an accepted run whose pooled numbers changed without a warning.

Dropped and doubled characters are applied to the cells a cross-check guards (estimate and mark against the
printed token, codes against the registers and against each other, horizons and decimals against their table);
not to sample sizes, SEs, intervals and p-values alone, where a dropped digit can give another plausible value
that no rule can tell from the right one (a sample size 103 typed 13): those are for the double entry
(tests/transcription/). Stray characters, blanks, signs and factors of 100 are applied everywhere.
"""
from __future__ import annotations

import logging
import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from meta.read import load

from meta.analyses import pipeline
from meta.errors import InputError
from meta.plan import check_plan, load_plan
from tests.conftest import REPO

S = dict(dtype=str, keep_default_na=False)
REAL = pd.read_csv(REPO / "inputs" / "estimates.csv", **S)
PLAN = load_plan(REPO / "inputs" / "plan.toml")
COLUMNS = ("estimate", "printed", "significance", "se", "horizon_months", "unit", "municipality", "arm", "outcome",
           "model", "population", "comparator", "p_value", "ci_low", "ci_high", "n_arm", "n_control")
POOLED = ["estimate", "se", "ci_low", "ci_high"]
UNGUARDED = ("se", "p_value", "ci_low", "ci_high", "n_arm", "n_control")


def pooled_numbers(results) -> pd.DataFrame:
    keys = [c for c in ("outcome_key", "horizon_months", "arm_class", "unit_h") if c in results.pooled.columns]
    return results.pooled[keys + POOLED].sort_values(keys).reset_index(drop=True)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corrupt") / "inputs"
    shutil.copytree(REPO / "inputs", folder, ignore=shutil.ignore_patterns("notes", "simulation"))
    results = pipeline.analyse(folder, PLAN, sensitivity=False)
    used = sorted(int(r) for r in results.studies["input_row"])
    return folder, pooled_numbers(results), used


def corrupt(text: str, how: str, pos: float, char: str) -> str:
    i = int(pos * (len(text) + 1))
    if how == "insert":
        return text[:i] + char + text[i:]
    if how == "drop" and text:
        i = min(i, len(text) - 1)
        return text[:i] + text[i + 1:]
    if how == "double" and text:
        i = min(i, len(text) - 1)
        return text[:i] + text[i] + text[i:]
    if how == "blank":
        return ""
    if how == "sign":
        return text[1:] if text.startswith("-") else "-" + text
    if how in ("times100", "div100"):
        try:
            x = float(text)
        except ValueError:
            return text + "00"
        return f"{x * 100:g}" if how == "times100" else f"{x / 100:g}"
    return text + char


class Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@settings(max_examples=30, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(used_row=st.booleans(), row_pick=st.floats(0, 1, exclude_max=True), column=st.sampled_from(COLUMNS),
       how=st.sampled_from(["insert", "drop", "double", "blank", "sign", "times100", "div100"]),
       pos=st.floats(0, 1), char=st.sampled_from(["_", ",", " ", "\u00a0", "%", "e", "x", "0", "1", ".", "-"]))
def test_one_corrupted_cell_is_refused_or_said_or_changes_nothing(baseline, used_row, row_pick, column, how, pos, char):
    folder, before, used = baseline
    rows = used if used_row else list(range(1, len(REAL) + 1))
    row = rows[int(row_pick * len(rows))]
    if how in ("drop", "double") and column in UNGUARDED:
        how = "insert"
    frame = REAL.copy()
    original = frame.at[row - 1, column]
    frame.at[row - 1, column] = corrupt(original, how, pos, char)
    frame.to_csv(folder / "estimates.csv", index=False, lineterminator="\n")
    handler = Warnings()
    logging.getLogger("meta").addHandler(handler)
    try:
        results = pipeline.analyse(folder, PLAN, sensitivity=False)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    finally:
        logging.getLogger("meta").removeHandler(handler)
        REAL.to_csv(folder / "estimates.csv", index=False, lineterminator="\n")
    warnings = handler.messages + check_plan(PLAN, results.inputs)
    after = pooled_numbers(results)
    same = after.shape == before.shape and np.allclose(after[POOLED].to_numpy(float), before[POOLED].to_numpy(float),
                                                       equal_nan=True, rtol=0, atol=1e-12)
    assert same or warnings, (f"row {row}, column {column}: {original!r} -> {frame.at[row - 1, column]!r} changed the "
                              "pooled numbers without a warning")


def test_a_value_deleted_from_one_row_of_a_table_is_warned_about_and_a_full_table_is_not(baseline):
    """The example Hypothesis found: Wageningen Tabel 3.9 prints an N for every wave of every arm; the rows
    without a horizon (the model's overall row) print none. Deleting one wave's N changes its SE."""
    folder, _, _ = baseline
    assert load.load_inputs(folder).notices == ()  # the real inputs: no row is the only blank one of its group
    frame = REAL.copy()
    row = int(frame.index[(frame["source_table"] == "Tabel 3.9") & (frame["outcome"] == "health_subjective_0_10")
                          & (frame["arm"] == "intensive") & (frame["horizon_months"] == "12")][0]) + 1
    frame.at[row - 1, "n_arm"] = ""
    frame.to_csv(folder / "estimates.csv", index=False, lineterminator="\n")
    try:
        notices = load.load_inputs(folder).notices
    finally:
        REAL.to_csv(folder / "estimates.csv", index=False, lineterminator="\n")
    assert any(f"row {row} (line {row + 1}), column n_arm: blank in this row only of the health_subjective_0_10 rows "
               "of Tabel 3.9" in n for n in notices), notices

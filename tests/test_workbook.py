"""The workbook's data rows built as strings (meta.write.sheet_xml) are the bytes openpyxl writes for them."""

from __future__ import annotations

import pandas as pd
import pytest

from meta.write.sheet_xml import rows_xml
from meta.write.workbook import _cell_values, write_sheets

#: values openpyxl writes in every way it has: escaped and white-space-preserved texts, an empty and an all-blank
#: text, non-ASCII, a text in a number-formatted column, -0, tiny, huge and 16-digit numbers, bools, empty cells
TRICKY = pd.DataFrame({
    "printed": ["a & b < c > d", " leading", "trailing ", "   ", "", None, "Eén – τ² ≥ 5", "two\nlines", "-0,062",
                "\U0001F600 =x"],
    "estimate": [0.1 + 0.2, -0.0, 1e-20, 1.2345678901234567e17, None, "onbepaald (k = 2)", 5, True, float("nan"),
                 -3.25],
    "k": [1, 2**53 + 1, 0, -7, None, True, False, 3, 4, 5],
    "se": [None] * 9 + [0.5],
    "municipality": ["=", "#", "Nijmegen", "x" * 300, None, "a\tb", "", "z", "y", "w"],
}, columns=["printed", "estimate", "k", "se", "municipality"])


def _xlsx(tmp_path, name, sheets, fast):
    path = tmp_path / f"{name}.xlsx"
    write_sheets(sheets, path, "nl", fast=fast)
    return path.read_bytes()


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_rows_built_as_strings_give_the_bytes_openpyxl_writes_for_every_kind_of_value(tmp_path, lang):
    sheets = {"Een": TRICKY, "Leeg": TRICKY.iloc[:0], "Twee": TRICKY.iloc[::-1].reset_index(drop=True)}
    columns = [_cell_values(TRICKY[c]) for c in TRICKY.columns]
    assert rows_xml(columns, [None, 2, None, 3, None]) is not None  # the fast path is taken, not the fallback
    path_fast, path_slow = tmp_path / "fast.xlsx", tmp_path / "slow.xlsx"
    write_sheets(sheets, path_fast, lang, fast=True)
    write_sheets(sheets, path_slow, lang, fast=False)
    assert path_fast.read_bytes() == path_slow.read_bytes()


@pytest.mark.parametrize("value", ["=SUM(A1:A2)", "#N/A", float("inf"), "x" * 40000, "bell\x07"])
def test_a_value_openpyxl_writes_otherwise_is_left_to_openpyxl(tmp_path, value):
    from openpyxl.utils.exceptions import IllegalCharacterError

    assert rows_xml([[1.0, value]], [None]) is None
    sheets = {"Blad": pd.DataFrame({"printed": ["gewoon", value], "estimate": [1.5, 2.5]})}
    if isinstance(value, str) and "\x07" in value:  # openpyxl refuses a control character; so does the fallback
        with pytest.raises(IllegalCharacterError):
            _xlsx(tmp_path, "fast", sheets, True)
        return
    assert _xlsx(tmp_path, "fast", sheets, True) == _xlsx(tmp_path, "slow", sheets, False)


@pytest.fixture(scope="module")
def results():
    from meta.analyses import pipeline
    from meta.plan import DEFAULT_INPUTS, DEFAULT_PLAN, load_plan

    return pipeline.analyse(DEFAULT_INPUTS, load_plan(DEFAULT_PLAN), sensitivity=False)


def test_the_real_workbook_is_the_same_bytes_whichever_way_its_rows_are_written(tmp_path, results):
    from meta.write.workbook import workbook_sheets

    sheets = workbook_sheets(results, "nl")
    assert _xlsx(tmp_path, "fast", sheets, True) == _xlsx(tmp_path, "slow", sheets, False)


def test_the_workbook_key_changes_with_a_reference_a_name_the_plan_and_the_language_the_sheets_print(results):
    """A rerun reuses meta.xlsx when its key is unchanged: the key must see every input the sheets print, not only
    the run's tables (a changed reference in sources.csv once left the Bronnen sheet stale)."""
    from dataclasses import replace

    from meta.write.outputs import workbook_key
    from meta.write.workbook import sources_sheet

    base = workbook_key(results, "nl", "v")
    assert workbook_key(results, "nl", "v") == base
    sources = results.inputs.sources.copy()
    sources.loc[0, "label_nl"] += " (gewijzigd)"
    edited = replace(results, inputs=replace(results.inputs, sources=sources))
    assert sources_sheet(edited, "nl")["source"].tolist() != sources_sheet(results, "nl")["source"].tolist()
    assert workbook_key(edited, "nl", "v") != base
    names = results.inputs.municipalities.assign(name=results.inputs.municipalities["name"] + "x")
    assert workbook_key(replace(results, inputs=replace(results.inputs, municipalities=names)), "nl", "v") != base
    assert workbook_key(replace(results, plan=replace(results.plan, level=90.0)), "nl", "v") != base
    assert workbook_key(results, "en", "v") != base
    assert workbook_key(results, "nl", "w") != base

"""The workbook meta writes itself (meta.write.xlsx_package, its rows by meta.write.sheet_xml) is the bytes openpyxl
writes for it."""

from __future__ import annotations

import pandas as pd
import pytest

from meta.write import xlsx_package
from meta.write.sheet_xml import rows_xml
from meta.write.workbook import FORMATS, _cell_values, write_sheets

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


def _xlsx(tmp_path, name, sheets, fast, lang="nl"):
    path = tmp_path / f"{name}.xlsx"
    write_sheets(sheets, path, lang, fast=fast)
    return path.read_bytes()


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_rows_built_as_strings_give_the_bytes_openpyxl_writes_for_every_kind_of_value(tmp_path, lang):
    sheets = {"Een": TRICKY, "Leeg": TRICKY.iloc[:0], "Twee": TRICKY.iloc[::-1].reset_index(drop=True)}
    columns = [_cell_values(TRICKY[c].tolist()) for c in TRICKY.columns]
    assert rows_xml(columns, [None, 2, None, 3, None]) is not None  # the fast path is taken, not the fallback
    path_fast, path_slow = tmp_path / "fast.xlsx", tmp_path / "slow.xlsx"
    _assert_meta_writes_it(sheets, path_fast, lang)
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


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_the_real_workbook_is_the_same_bytes_whichever_way_it_is_written(tmp_path, results, lang):
    from meta.write.workbook import workbook_sheets

    sheets = workbook_sheets(results, lang)
    ours = _assert_meta_writes_it(sheets, tmp_path / "ours.xlsx", lang)
    assert ours == _xlsx(tmp_path, "slow", sheets, False, lang)
    xlsx_package.openpyxl_package(_specs(sheets, lang), tmp_path / "parts.xlsx", fast=True)  # openpyxl's parts only
    assert ours == (tmp_path / "parts.xlsx").read_bytes()


def _specs(sheets: dict, lang: str) -> list:
    """What write_sheets gives xlsx_package for ``sheets``."""
    from meta.write.workbook import sheet_specs

    return sheet_specs(sheets, lang)


def _assert_meta_writes_it(sheets: dict, path, lang: str) -> bytes:
    """meta.xlsx written by xlsx_package.package itself (not left to openpyxl), and its bytes."""
    assert xlsx_package.package(_specs(sheets, lang), path) is not None
    return path.read_bytes()


def test_a_number_format_or_sheet_name_meta_does_not_know_is_left_to_openpyxl_with_the_same_bytes(tmp_path):
    sheets = {"Blad": TRICKY}
    specs = _specs(sheets, "nl")
    odd_format = [(*specs[0][:4], ["0.0%", None, None, "0.000", None])]
    odd_name = [("Blad 2", *specs[0][1:])]
    for name, spec in (("format", odd_format), ("name", odd_name)):
        assert xlsx_package.package(spec, tmp_path / f"{name}.xlsx") is None
        assert not (tmp_path / f"{name}.xlsx").exists()
        xlsx_package.write(spec, tmp_path / f"{name}_fast.xlsx")
        xlsx_package.write(spec, tmp_path / f"{name}_slow.xlsx", fast=False)
        assert (tmp_path / f"{name}_fast.xlsx").read_bytes() == (tmp_path / f"{name}_slow.xlsx").read_bytes()


def test_what_meta_copies_from_openpyxl_is_what_the_installed_openpyxl_has():
    import openpyxl
    from openpyxl.cell.cell import ERROR_CODES
    from openpyxl.styles.numbers import BUILTIN_FORMATS_REVERSE
    from openpyxl.utils import get_column_letter
    from openpyxl.writer.theme import theme_xml

    from meta.write import sheet_xml

    assert xlsx_package.OPENPYXL_VERSION == openpyxl.__version__
    assert xlsx_package.THEME.read_text(encoding="utf-8") == theme_xml
    assert sheet_xml.ERROR_CODES == ERROR_CODES
    assert all(sheet_xml.column_letter(j) == get_column_letter(j) for j in range(1, 18279))
    assert {f: BUILTIN_FORMATS_REVERSE[f] for f in xlsx_package.BUILTIN_FORMATS} == xlsx_package.BUILTIN_FORMATS
    assert not set(xlsx_package.CUSTOM_FORMATS) & set(BUILTIN_FORMATS_REVERSE)
    assert set(FORMATS.values()) <= set(xlsx_package.BUILTIN_FORMATS) | set(xlsx_package.CUSTOM_FORMATS)


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


def test_writing_the_workbook_imports_no_openpyxl(tmp_path):
    """openpyxl's import (0.1-0.35 s of CPU) is what a cold meta run saves by writing the package itself."""
    import subprocess
    import sys

    code = ("import sys, pandas as pd; from meta.write.workbook import write_sheets; "
            f"write_sheets({{'Blad': pd.DataFrame({{'estimate': [1.5, None], 'printed': ['a', 'b']}})}}, "
            f"{str(tmp_path / 'w.xlsx')!r}, 'nl'); print('openpyxl' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    assert (tmp_path / "w.xlsx").stat().st_size > 0


def test_the_workbook_reads_no_table_its_key_leaves_out(results, tmp_path):
    # workbook_key hashes only WORKBOOK_TABLES of the run's tables (the harmonised rows cost most of its CPU): the
    # workbook written without the others must be the same bytes, and the key the same; a sheet that starts reading
    # another table fails here (then add it to WORKBOOK_TABLES)
    from dataclasses import fields, replace

    import pandas as pd

    from meta.analyses.pipeline import add_sensitivity
    from meta.write.outputs import WORKBOOK_TABLES, workbook_key
    from meta.write.workbook import write_workbook

    results = add_sensitivity(results)  # the sensitivity, robustness and component tables too
    others = [f.name for f in fields(results) if isinstance(getattr(results, f.name), pd.DataFrame)
              and f.name not in WORKBOOK_TABLES]
    assert {"harmonised", "robustness", "components", "side_by_side"} <= set(others)
    assert all(len(getattr(results, name)) for name in [*others, *WORKBOOK_TABLES])  # not vacuous
    bare = replace(results, **{name: pd.DataFrame() for name in others})
    write_workbook(results, tmp_path / "whole.xlsx", "nl")
    write_workbook(bare, tmp_path / "bare.xlsx", "nl")
    assert (tmp_path / "bare.xlsx").read_bytes() == (tmp_path / "whole.xlsx").read_bytes()
    assert workbook_key(bare, "nl", "v") == workbook_key(results, "nl", "v")
    for name in WORKBOOK_TABLES:  # each table the sheets read is in the key
        assert workbook_key(replace(results, **{name: getattr(results, name).iloc[1:]}), "nl", "v") != \
            workbook_key(results, "nl", "v")

"""Comparing transcriptions cell by cell: two rows (numbers compared as numbers, keys as whole numbers), and two
files of the same rows (``meta reconcile``, double entry).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from meta.errors import InputError
from meta.read.estimates import ESTIMATE_COLUMNS, ESTIMATE_FLOATS, ESTIMATE_INTS, ESTIMATE_KEY, ESTIMATE_OPTIONAL_INTS
from meta.read.reader import read_csv_strict

#: The template's cell: the key of ``estimates.csv`` without the source table (rows of two transcriptions are
#: matched on it when it is unique in both).
CELL_KEY = ("municipality", "arm", "comparator", "outcome", "horizon_months", "model", "population")
#: Columns compared as numbers (``0.10`` and ``0.1`` agree).
_NUMERIC = frozenset((*ESTIMATE_FLOATS, *ESTIMATE_INTS, *ESTIMATE_OPTIONAL_INTS))


def _same(a: str, b: str, numeric: bool) -> bool:
    if a == b:
        return True
    if numeric and a != "" and b != "":
        try:
            return float(a) == float(b)
        except ValueError:
            return False
    return False


def differing(a: dict, b: dict, columns) -> list[str]:
    """The ``columns`` in which rows ``a`` and ``b`` differ (numbers compared as numbers)."""
    return [c for c in columns if not _same(str(a.get(c, "")), str(b.get(c, "")), c in _NUMERIC)]


def row_key(record: dict, key) -> tuple:
    """A row's key, whole numbers compared as numbers ('16' and '16.0' are the same horizon)."""
    out = []
    for k in key:
        value = str(record.get(k, ""))
        if k in _NUMERIC and re.fullmatch(r"[-+]?\d+(\.0*)?", value):
            value = str(int(float(value)))
        out.append(value)
    return tuple(out)


@dataclass
class Conflict:
    """A row of the analyst's file whose key is already in ``estimates.csv`` with other values."""

    row: int
    existing_row: int
    columns: list  # the differing columns
    message: str


def plan_addition(rows: pd.DataFrame, existing: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[Conflict]]:
    """Which checked rows are new, which are already in ``estimates.csv`` unchanged, and which conflict.

    ``rows`` and ``existing`` are string frames with ``input_row``. A row conflicts when ``existing`` has a row
    with the same :data:`meta.read.estimates.ESTIMATE_KEY` and any other cell different (numbers compared as numbers,
    the note not compared). Returns (new rows, messages about identical rows skipped, conflicts).
    """
    key = list(ESTIMATE_KEY)
    columns = [c for c in ESTIMATE_COLUMNS if c not in key and c != "note"]
    index = {row_key(r, key): r for r in existing.to_dict("records")}
    new, same, conflicts = [], [], []
    for r in rows.to_dict("records"):
        old = index.get(row_key(r, key))
        if old is None:
            new.append(r)
            continue
        diff = differing(r, old, columns)
        if diff:
            conflicts.append(Conflict(int(r["input_row"]), int(old["input_row"]), diff,
                                      f"({', '.join(str(r[k]) for k in key)}) is already estimates.csv row "
                                      f"{old['input_row']} with other values: "
                                      + "; ".join(f"{c} {old[c]!r} there, {r[c]!r} here" for c in diff)))
        else:
            same.append(f"row {r['input_row']}: already estimates.csv row {old['input_row']}, identical: skipped")
    return pd.DataFrame(new, columns=rows.columns), same, conflicts


def reconcile(first: Path, second: Path) -> list[str]:
    """Every cell where two transcriptions of the same rows differ (numbers compared as numbers).

    Rows are matched on :data:`CELL_KEY` (the template's cell) when it is unique in both files, else on the
    full :data:`meta.read.estimates.ESTIMATE_KEY`. The ``note`` column is not compared. Returns the lines to print; the
    first is a summary.
    """
    a = read_csv_strict(first, ESTIMATE_COLUMNS)
    b = read_csv_strict(second, ESTIMATE_COLUMNS)
    key = list(CELL_KEY)
    if a.duplicated(key).any() or b.duplicated(key).any():
        key = list(ESTIMATE_KEY)
    for frame, path in ((a, first), (b, second)):
        dup = frame.duplicated(key)
        if dup.any():
            r = frame[dup].iloc[0]
            raise InputError(f"{path}: row {r['input_row']} (line {int(r['input_row']) + 1}): the same cell "
                             f"({', '.join(str(r[k]) for k in key)}) twice; keep one row per cell")
    columns = [c for c in ESTIMATE_COLUMNS if c not in key and c != "note"]
    columns += [c for c in ESTIMATE_OPTIONAL_INTS if c in a.columns or c in b.columns]
    rows_a = {row_key(r, key): r for r in a.to_dict("records")}
    rows_b = {row_key(r, key): r for r in b.to_dict("records")}
    lines, n_cells, n_rows = [], 0, 0
    for k in [k for k in rows_a if k in rows_b]:
        ra, rb = rows_a[k], rows_b[k]
        diff = differing(ra, rb, columns)
        if diff:
            n_rows += 1
            n_cells += len(diff)
            lines.append(f"{' '.join(map(str, k))} (first row {ra['input_row']}, second row {rb['input_row']}):")
            width = max(len(c) for c in diff)
            lines += [f"  {c:<{width}}  {ra.get(c, '')!r:>12} | {rb.get(c, '')!r}" for c in diff]
    only_a = [k for k in rows_a if k not in rows_b]
    only_b = [k for k in rows_b if k not in rows_a]
    for keys, rows, path in ((only_a, rows_a, first), (only_b, rows_b, second)):
        for k in keys:
            lines.append(f"{' '.join(map(str, k))}: only in {path} (row {rows[k]['input_row']})")
    same = len([k for k in rows_a if k in rows_b]) - n_rows
    summary = (f"meta reconcile: {len(a)} rows in {first}, {len(b)} in {second}: {same} identical, {n_rows} differ in "
               f"{n_cells} cells, {len(only_a) + len(only_b)} in one file only")
    return [summary, *lines]


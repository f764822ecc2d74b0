"""The one CSV ``meta pool`` reads: a table of effects, ``yi`` with ``vi`` or ``sei`` (optional ``label``)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from meta.errors import InputError
from meta.read import schema
from meta.read.reader import BOM, read_csv_strict

log = logging.getLogger(__name__)


def read_pool_csv(path: Path) -> tuple[list[float], list[float]]:
    """Read a ``meta pool`` CSV: columns ``yi`` and ``vi`` or ``sei``; optional ``label``.

    Read by :func:`meta.read.reader.read_csv_strict`, the reader of every input file: comma-separated with decimal
    points, or semicolon-separated with decimal commas as Excel writes it in a Dutch locale (said on stderr);
    UTF-8 with or without byte-order mark. Numbers may have an exponent (``1e-3``: they come from software).
    Returns (yi, vi) as lists of floats, vi = sei² when the file gives ``sei``. Raises :class:`InputError` naming
    the file, row (1-based data row, header is row 0), column and the fix for the first problem.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found; give the path of a CSV with columns yi and vi (or sei)")
    if not path.read_bytes().replace(BOM, b"", 1).strip():
        raise InputError(f"{path}: the file is empty; it needs a header row 'yi,vi' (or 'yi,sei') and one row per study")
    frame = read_csv_strict(path, ())  # no required columns: the messages below are pool's own
    var_col = _variance_column(path, [c for c in frame.columns if c != "input_row"])
    yi, vi = [], []
    for i, y_text, v_text in zip(frame["input_row"], frame["yi"], frame[var_col]):
        y, v = _number(path, i, "yi", y_text), _number(path, i, var_col, v_text)
        if v <= 0 or (var_col == "sei" and v ** 2 == 0):
            raise InputError(f"{path}: row {i}, column {var_col}: {v!r} must be > 0; check the study's standard error")
        yi.append(y)
        vi.append(v ** 2 if var_col == "sei" else v)
    return yi, vi


def _variance_column(path: Path, columns: list[str]) -> str:
    """``vi`` or ``sei``: the header must have ``yi`` and exactly one of them; other columns are warned about."""
    if "yi" not in columns or not ({"vi", "sei"} & set(columns)):
        raise InputError(
            f"{path}: row 0 (header): columns {columns} lack 'yi' and one of 'vi'/'sei'; "
            "name the effect column yi and its variance vi (or standard error sei)"
        )
    if {"vi", "sei"} <= set(columns):
        raise InputError(f"{path}: row 0 (header): both 'vi' and 'sei' given; keep only one of them")
    unknown = [c or "(unnamed)" for c in columns if c not in ("yi", "vi", "sei", "label")]
    if unknown:
        log.warning(f"{path}: row 0 (header): column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                    "ignored; meta pool reads yi, vi or sei, and label")
    return "vi" if "vi" in columns else "sei"


def _number(path: Path, row: int, col: str, text: str) -> float:
    """One cell as a finite float (:func:`meta.read.schema.parse_number`, exponent allowed); blank is refused."""
    try:
        x = schema.parse_number(text, exponent=True)  # Python's float would read 0_05 as 5
    except schema.SchemaError as exc:
        hint = ""
        if "," in text:
            hint = (" (a decimal comma: use a dot as decimal separator in a comma-separated file, or save "
                    "the file with semicolons between the columns)")
        raise InputError(f"{path}: row {row}, column {col}: " + (f"{text!r} is not a number{hint}" if hint else
                                                                   str(exc)))
    if not math.isfinite(x):  # blank
        raise InputError(f"{path}: row {row}, column {col}: blank; every study needs yi and its vi (or sei)")
    return x


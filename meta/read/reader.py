"""The strict CSV reader of every input file, and the checks of one table against its declaration.

:func:`read_csv_strict` reads a CSV as strings without guessing; :func:`validate_table` checks every cell against
its :class:`meta.read.schema.Table`; :func:`check_codes` and :func:`check_unique` check a column against a register
and a key for duplicates. A refusal is an :class:`meta.errors.InputError` naming the file, the row (data row,
counting from 1; the file line is row + 1), the column and the fix (:func:`where`). Warnings (a conversion
applied, a column ignored) go to the ``meta.read`` loggers; :func:`meta.read.load.load_inputs` keeps them and
``meta.cli`` prints them on stderr.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from pathlib import Path

import pandas as pd

from meta.errors import InputError
from meta.read import schema

#: Columns a file may have besides its required ones (anything else is warned about and ignored).
KNOWN_OPTIONAL = {t.required: t.optional for t in schema.TABLES.values()}
#: Whole-number and numeric columns of any input file: in a semicolon-separated file their decimal commas are
#: read as decimals (yi, vi, sei: `meta pool`).
INT_COLUMNS = schema.INT_COLUMNS
NUMERIC_COLUMNS = schema.NUMERIC_COLUMNS | {"yi", "vi", "sei"}

#: A number written with a decimal comma, or with a decimal point (a semicolon-separated file uses one of them).
COMMA_NUMBER = re.compile(r"^[-+]?\d*,\d+([eE][-+]?\d+)?$")
DOT_NUMBER = re.compile(r"^[-+]?\d*\.\d+([eE][-+]?\d+)?$")
_DOT_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(\.\d{3})+$")
#: The UTF-8 byte-order mark Excel writes at the start of 'CSV UTF-8'.
BOM = b"\xef\xbb\xbf"
_SPACES = " \t\u00a0\u2007\u202f\u200b\ufeff"

log = logging.getLogger(__name__)


def where(path: Path, row: int | None = None, column: str | None = None) -> str:
    """``path: row R (line R+1), column C``: the place a message names (row 0 is the header)."""
    parts = [str(path)]
    if row is not None:
        parts.append(f"row {row} (line {row + 1})")
    if column is not None:
        parts.append(f"column {column}")
    return ": ".join([parts[0], ", ".join(parts[1:])]) if len(parts) > 1 else parts[0]


def _refuse(message: str):
    raise InputError(message)


def first_line(text: str) -> str:
    """The header line of a CSV text (any line ending)."""
    return re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]


def delimiter_of(header: str) -> str:
    """The delimiter a header line declares: ``;`` when it has semicolons and no comma, else ``,``.

    Column names contain neither ``,`` nor ``;``, so the header alone decides (:func:`read_csv_strict` refuses a
    header that mixes them).
    """
    return ";" if ";" in header and "," not in header else ","


def _decode(path: Path, raw: bytes) -> tuple[str, list[str]]:
    """Bytes → text; a UTF-8 byte-order mark is dropped (and said), anything not UTF-8 is refused."""
    notes = []
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        _refuse(f"{path}: the file is UTF-16 (Excel's 'Unicode text'); save it as 'CSV UTF-8 (comma delimited)'")
    if raw.startswith(BOM):
        raw = raw[len(BOM):]
        notes.append("UTF-8 with byte-order mark")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        _refuse_not_utf8(path, raw, exc)
    if "\r\n" in text:
        notes.append("Windows line endings")
    return text, notes


def _refuse_not_utf8(path: Path, raw: bytes, exc: UnicodeDecodeError):
    """Refuse a byte that is not UTF-8, naming its row and (from the header) its column."""
    row = raw.count(b"\n", 0, exc.start)
    header = raw.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    delimiter = delimiter_of(header)
    line_start = raw.rfind(b"\n", 0, exc.start) + 1
    prefix = raw[line_start:exc.start].decode("utf-8", "replace")
    position = len(next(csv.reader([prefix], delimiter=delimiter), [""]))
    names = next(csv.reader([header], delimiter=delimiter), [])
    column = names[position - 1].strip() if 0 < position <= len(names) else None
    _refuse(f"{where(path, row, column)}: byte 0x{raw[exc.start]:02x} is not UTF-8 (the file was probably "
            "saved as ANSI/Windows-1252); save it as 'CSV UTF-8 (comma delimited)'")


def _delimiter(path: Path, text: str) -> str:
    """The delimiter, read from the header alone; a header mixing commas and semicolons, or tabs, is refused."""
    header = first_line(text)
    if "," in header and ";" in header:
        _refuse(f"{where(path, 0)}: the header mixes commas and semicolons; separate all columns with commas "
                "(or all with semicolons)")
    if "\t" in header and "," not in header and ";" not in header:
        _refuse(f"{where(path, 0)}: the header is separated by tabs; save the file as 'CSV UTF-8 (comma delimited)'")
    return delimiter_of(header)


def _split_decimal_comma(path, row, header, cells):
    """In a comma-separated row with too many cells: the first number split by a decimal comma, as a message."""
    for j in range(min(len(header), len(cells) - 1)):
        a, b = cells[j].strip(), cells[j + 1].strip()
        if header[j] in NUMERIC_COLUMNS and re.fullmatch(r"[-+]?\d+", a) and re.fullmatch(r"\d+", b):
            return (f"{where(path, row, header[j])}: {a},{b} is a number with a decimal comma, which splits the cell "
                    f"in a comma-separated file; write {a}.{b}")
    return None


def _normalise_decimals(frame: pd.DataFrame, path: Path) -> bool:
    """Semicolon-separated file: decimal commas in numeric columns become dots; a mix of both is refused.

    Returns True when decimal commas were converted.
    """
    columns = [c for c in frame.columns if c in NUMERIC_COLUMNS]
    first_comma = first_dot = None
    for i in range(len(frame)):
        for col in columns:
            value = frame[col].iat[i]
            if first_comma is None and COMMA_NUMBER.match(value):
                first_comma = (i + 1, col, value)
            elif (first_dot is None and DOT_NUMBER.match(value)
                  and not (col in INT_COLUMNS and _DOT_THOUSANDS.match(value))):
                first_dot = (i + 1, col, value)
    if first_comma and first_dot:
        row, col, value = first_dot
        crow, ccol, cvalue = first_comma
        _refuse(f"{where(path, row, col)}: {value!r} has a decimal point, but this semicolon-separated file writes "
                f"decimals with a comma (row {crow}, column {ccol}: {cvalue!r}); write {value.replace('.', ',')!r}")
    if first_comma is None:
        return False
    for col in columns:
        frame[col] = [v.replace(",", ".") if COMMA_NUMBER.match(v) else v for v in frame[col]]
    return True


def read_csv_strict(path: Path, required: tuple[str, ...], optional: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Read a CSV as strings; check it exists, is non-empty and has ``required`` columns.

    Read without guessing, and said on the ``meta.read`` loggers when applied: a UTF-8 byte-order mark, Windows
    line endings, and a semicolon-separated file as Excel saves it in a Dutch locale (the header decides the
    delimiter; in such a file the numeric columns may use decimal commas, consistently). Refused with file, row,
    column and the fix: not UTF-8, a header mixing delimiters, a row with more or fewer cells than the header
    (e.g. a decimal comma in a comma-separated file), an empty line, a duplicated column name. Columns that are
    neither ``required`` nor ``optional`` (default: the file's :data:`KNOWN_OPTIONAL`) are warned about and
    otherwise ignored. Returns the cells as strings (spaces around them trimmed) with an ``input_row`` column
    first (1, 2, ...).
    """
    path = Path(path)
    text, notes = _read_text(path, required)
    delimiter = _delimiter(path, text)
    rows = _records(path, text, delimiter)
    header = [c.strip() for c in rows[0]]
    _check_shape(path, header, rows[1:], delimiter, required)
    stripped = [[c.strip().strip(_SPACES).strip() for c in cells] for cells in rows[1:]]  # strip(c), inlined
    frame = pd.DataFrame(stripped, columns=header)
    _warn_trimmed(path, header, rows[1:], stripped)
    _warn_unknown(path, header, required, KNOWN_OPTIONAL.get(tuple(required)) if optional is None else optional)
    if delimiter == ";":
        notes.insert(0, "semicolon-separated with decimal commas (Excel, Dutch locale)"
                     if _normalise_decimals(frame, path) else "semicolon-separated")
    if notes:
        log.warning(f"{path}: read as {', '.join(notes)}")
    frame.insert(0, "input_row", range(1, len(frame) + 1))
    return frame


def _read_text(path: Path, required: tuple[str, ...]) -> tuple[str, list[str]]:
    """The text of an existing, non-empty file, and the notes of its decoding (:func:`_decode`)."""
    if not path.exists():
        _refuse(f"{path}: file not found; restore it from git or give --inputs the folder that holds it")
    if path.is_dir():
        _refuse(f"{path}: is a folder, not a file; restore the CSV file from git")
    raw = path.read_bytes()
    if not raw.replace(BOM, b"", 1).strip():
        _refuse(f"{path}: the file is empty; it needs a header row with {', '.join(required[:4])}, ... "
                "(restore it from git)")
    return _decode(path, raw)


def _records(path: Path, text: str, delimiter: str) -> list[list[str]]:
    """The CSV records of ``text`` (header first), trailing empty rows dropped; a file of empty cells refused."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[list[str]] = []
    try:
        for cells in reader:
            rows.append(cells)
    except csv.Error as exc:
        _refuse(f"{where(path, len(rows))}: cannot be read ({exc}); a cell that starts with a quote must end with "
                "one, and a quote inside a quoted cell is written twice (\"\")")
    while rows and all(c.strip() == "" for c in rows[-1]):
        rows.pop()  # trailing empty rows (Excel writes them for formatted but empty cells)
    if not rows:
        _refuse(f"{path}: the file has no header, only empty cells; restore it from git")
    return rows


def _check_shape(path: Path, header: list[str], rows: list[list[str]], delimiter: str, required) -> None:
    """Refuse a duplicated column name, an empty line, a row whose cells do not match the header, a missing
    required column, and a file with a header only."""
    seen = set()
    for col in header:
        if col and col in seen:
            _refuse(f"{where(path, 0, col)}: column name {col!r} appears twice in the header; keep one of them")
        seen.add(col)
    for i, cells in enumerate(rows, start=1):
        if not cells:
            _refuse(f"{where(path, i)}: the line is empty; delete it (rows are numbered, and every row after it "
                    "would be named wrongly)")
        if len(cells) != len(header):
            message = _split_decimal_comma(path, i, header, cells) if delimiter == "," else None
            sep = "comma" if delimiter == "," else "semicolon"
            _refuse(message or f"{where(path, i)}: {len(cells)} cells where the header has {len(header)}; put "
                               f"quotes around a text cell that contains a {sep}, or add the missing cells")
    missing = [c for c in required if c not in header]
    if missing:
        if len(header) == 1 and delimiter == "," and ";" not in header[0]:
            _refuse(f"{where(path, 0, missing[0])}: the header has a single column; save the file as "
                    "comma-separated CSV with the columns of inputs/README.md")
        _refuse(f"{where(path, 0, missing[0])}: required column is missing; add a column named {missing[0]!r}")
    if not rows:
        _refuse(f"{path}: header only, no rows; add the rows or restore the file from git")


def _warn_trimmed(path: Path, header: list[str], rows: list[list[str]], stripped: list[list[str]]) -> None:
    """One warning for the cells (outside free text) that had spaces around them (``stripped``: the cells of
    ``rows`` through :func:`strip`)."""
    checked = [j for j, col in enumerate(header) if col not in schema.FREE_TEXT]
    trimmed = [(i, header[j], bare[j]) for i, (cells, bare) in enumerate(zip(rows, stripped), start=1) for j in checked
               if cells[j] != bare[j] and bare[j]]
    if trimmed:
        i, col, cell = trimmed[0]
        more = f" (and {len(trimmed) - 1} more cells)" if len(trimmed) > 1 else ""
        log.warning(f"{where(path, i, col)}: spaces or no-break spaces around {cell!r} trimmed{more}; "
                    "the cells are read without them")


def _warn_unknown(path: Path, header: list[str], required, optional) -> None:
    """One warning for the columns that are neither required nor optional (none when ``optional`` is None)."""
    if optional is None:
        return
    unknown = [c or f"(unnamed column {j + 1})" for j, c in enumerate(header) if c not in required and c not in optional]
    if unknown:
        log.warning(f"{where(path, 0, unknown[0])}: unknown column{'s' if len(unknown) > 1 else ''} "
                    f"{', '.join(map(repr, unknown))} ignored; check the name against inputs/README.md, "
                    "or delete the column")


def strip(cell: str) -> str:
    """A cell without the spaces around it, including no-break and zero-width spaces (Excel and PDFs add them)."""
    return cell.strip().strip(_SPACES).strip()


def validate_table(frame: pd.DataFrame, table: schema.Table, path: Path, convert: tuple[str, ...] = ()) -> pd.DataFrame:
    """Check every cell of ``frame`` against its :class:`meta.read.schema.Table`; convert the ``convert`` columns.

    Numbers in ``convert`` become floats (``number``) or nullable integers (``whole``); the others stay as
    the text read. Normalisations (``16.0`` read as 16) are said in one warning per file.
    """
    out = frame.copy()
    notes: list[tuple[int, str, str]] = []
    rows = frame["input_row"].tolist()
    for col in table.columns:
        if col.name not in frame.columns:
            continue
        texts = frame[col.name].tolist()  # a column's texts at once, not cell by cell
        values = texts if _plain_texts(col, texts) else _distinct_values(col, texts)
        if values is None:  # a cell is refused or gives a note: each in turn, in row order
            values = _checked_cells(col, texts, rows, path, notes)
        if col.name in convert:
            if col.kind == "whole":
                out[col.name] = pd.array([None if (isinstance(v, float) and math.isnan(v)) else v for v in values],
                                         dtype="Int64")
            elif col.kind == "number":
                out[col.name] = [float(v) for v in values]
    if notes:
        row, column, note = notes[0]
        more = f" (and {len(notes) - 1} more cells)" if len(notes) > 1 else ""
        log.warning(f"{where(path, row, column)}: {note}{more}; write whole numbers without decimals")
    return out


def _plain_texts(col: schema.Column, texts: list) -> bool:
    """Whether :func:`meta.read.schema.check_cell` returns every cell of a text, code or choice column as it is and
    refuses none, shown for the column at once: a blank only where the column allows one, no control character (one
    search of the cells joined by a newline, which is none), only listed choices. False otherwise (then each cell is
    checked, and the first bad one named, by :func:`_checked_cells`)."""
    if col.kind not in ("text", "code", "choice") or (not col.blank and "" in texts):
        return False
    try:
        joined = "\n".join(texts)
    except TypeError:  # a cell that is no text
        return False
    return not schema.CONTROL.search(joined) and (col.kind != "choice" or set(texts) <= {"", *col.choices})


def _distinct_values(col: schema.Column, texts: list) -> list | None:
    """:func:`meta.read.schema.check_cell` of every cell, computed once per distinct text (a number column repeats
    few: blanks, confidence levels, sample sizes); None when a text is refused or gives a note (then
    :func:`_checked_cells` names the first in row order)."""
    value = {}
    for text in dict.fromkeys(texts):
        notes: list[str] = []
        try:
            value[text] = schema.check_cell(col, text, notes)
        except schema.SchemaError:
            return None
        if notes:
            return None
    return [value[text] for text in texts]


def _checked_cells(col: schema.Column, texts: list, rows: list, path: Path, notes: list) -> list:
    """:func:`meta.read.schema.check_cell` of each cell of a column (its parsed values), the first bad one refused
    naming file, row and column; its notes (a whole number written ``16.0``) appended to ``notes``."""
    values = []
    for text, row in zip(texts, rows):
        cell_notes: list[str] = []
        try:
            values.append(schema.check_cell(col, text, cell_notes))
        except schema.SchemaError as exc:
            raise InputError(f"{where(path, row, col.name)}: {exc}") from None
        notes += [(row, col.name, n) for n in cell_notes]
    return values


def check_codes(frame, path, column, allowed, what, fix) -> None:
    """Refuse the first value of ``column`` that is not in ``allowed`` (a register's codes)."""
    for value, row in zip(frame[column].tolist(), frame["input_row"].tolist()):
        if value not in allowed:
            raise InputError(f"{where(path, row, column)}: unknown {what} {value!r}; {fix}")


def check_unique(frame, path, key, fix) -> None:
    """Refuse the first row whose ``key`` columns repeat an earlier row's, naming both rows."""
    dup = frame.duplicated(list(key), keep="first")
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        row = int(frame["input_row"].iloc[i])
        first = frame[(frame[list(key)] == frame[list(key)].iloc[i]).all(axis=1)]["input_row"].iloc[0]
        raise InputError(
            f"{where(path, row, key[-1])}: duplicated key ({', '.join(map(str, frame[list(key)].iloc[i]))}) "
            f"already on row {first}; {fix}"
        )


def records(frame: pd.DataFrame) -> list[dict]:
    """``frame.to_dict("records")``, the same values of the same types (a missing value of a nullable integer
    column as ``None``), built column by column: ``to_dict`` boxes every cell through pandas' row machinery, which
    cost more than the harmonisation it fed at scale (tests/benchmarks/synthetic_scale.py)."""
    names = list(frame.columns)
    columns = []
    for name in names:
        values = frame[name].tolist()
        dtype = frame[name].dtype
        if isinstance(dtype, pd.api.extensions.ExtensionDtype) and not isinstance(dtype, pd.StringDtype):
            values = [None if v is pd.NA else v for v in values]
        columns.append(values)
    return [dict(zip(names, row)) for row in zip(*columns)]

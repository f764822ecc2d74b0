"""Load and validate the registers, the transcription and the plan (stage 1).

Everything in ``inputs/`` is read here and nowhere else. Each reader returns a
DataFrame of strings converted to the declared types, or raises
:class:`InputError` with the file, the row (data row, counting from 1; the file
line is row + 1), the column and what to do about it.
"""

from __future__ import annotations

import csv
import difflib
import io
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from meta.read import schema
from meta.read.schema import COMPONENTS, FOOTNOTE_MARK as _FOOTNOTE_MARK, MAX_HORIZON_MONTHS, SIGNIFICANCE_MARKS  # noqa: F401

# Column lists, from the one declaration of each file in meta/read/schema.py.
ESTIMATE_COLUMNS = schema.ESTIMATES.required
ESTIMATE_FLOATS = schema.ESTIMATES.of_kind("number")
ESTIMATE_OPTIONAL_INTS = tuple(c for c in schema.ESTIMATES.optional if c in schema.INT_COLUMNS)
ESTIMATE_INTS = tuple(c for c in schema.ESTIMATES.of_kind("whole") if c not in ESTIMATE_OPTIONAL_INTS)
ESTIMATE_KEY = schema.ESTIMATES.key
MUNICIPALITY_COLUMNS = schema.MUNICIPALITIES.required
ARM_COLUMNS = schema.ARMS.required
OUTCOME_COLUMNS = schema.OUTCOMES.required
LEGEND_COLUMNS = schema.LEGENDS.required
PERIOD_COLUMNS = schema.PERIODS.required
CONCEPT_COLUMNS = schema.CONCEPTS.required
HARMONISATION_COLUMNS = schema.HARMONISATION.required
HARMONISATION_ROLES = schema.HARMONISATION_ROLES
#: Scale transforms of ``harmonisation.csv``: name → (outcome unit, concept unit, factor). A difference d on the
#: outcome's scale becomes factor·d on the concept's scale; ``yi``, ``sei``, ``sei_low`` and ``sei_high`` alike. A
#: difference on 1–10 maps onto 0–10 by (x − 1)·10/9, so differences scale by 10/9; a 1–5 item by (x − 1)·10/4.
TRANSFORMS = {
    "identity": (None, None, 1.0),
    "scale_1_10_to_0_10": ("scale_1_10", "scale_0_10", 10 / 9),
    "scale_1_5_to_0_10": ("scale_1_5", "scale_0_10", 10 / 4),
}
_SOURCE_LINES = re.compile(r"^\d{3}:\d+(-\d+)?(;\d{3}:\d+(-\d+)?)*$")

#: ``sources.csv``: one row per source document; every field as printed, with the line(s) where it is printed.
SOURCE_FIELDS = schema.SOURCE_FIELDS
SOURCE_COLUMNS = schema.SOURCES.required
#: ``source_pages.csv``: lines of a source whose page is printed in the text file (page-number line or contents).
SOURCE_PAGE_COLUMNS = schema.SOURCE_PAGES.required
SOURCE_PAGE_KINDS = ("page_number", "toc_heading")
_LINES = re.compile(r"^\d+(-\d+)?(; ?\d+(-\d+)?)*$")

#: Columns a file may have besides its required ones (anything else is warned about and ignored).
KNOWN_OPTIONAL = {t.required: t.optional for t in schema.TABLES.values()}
#: Whole-number and numeric columns of any input file: in a semicolon-separated file their decimal commas are
#: read as decimals (yi, vi, sei: `meta pool`).
INT_COLUMNS = schema.INT_COLUMNS
NUMERIC_COLUMNS = schema.NUMERIC_COLUMNS | {"yi", "vi", "sei"}

_DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+$")
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}([.,]\d{3})+$")
_COMMA_NUMBER = re.compile(r"^[-+]?\d*,\d+([eE][-+]?\d+)?$")
_DOT_NUMBER = re.compile(r"^[-+]?\d*\.\d+([eE][-+]?\d+)?$")
_DOT_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(\.\d{3})+$")
_BOM = b"\xef\xbb\xbf"

#: Warnings (a conversion applied, a column ignored) go to this logger; ``meta.cli`` prints them on stderr.
log = logging.getLogger("meta.read.load")


from meta.errors import InputError  # noqa: E402,F401  (defined without pandas; re-exported here)


@dataclass(frozen=True)
class Inputs:
    """Everything read from ``inputs/``, validated."""

    municipalities: pd.DataFrame
    arms: pd.DataFrame
    outcomes: pd.DataFrame
    legends: pd.DataFrame
    estimates: pd.DataFrame
    files: dict = field(default_factory=dict)  # name -> Path of every input read
    notices: tuple = ()  # every warning given while reading (conversions applied, columns ignored)
    sources: pd.DataFrame = field(default_factory=pd.DataFrame)  # sources.csv (empty when the folder has none)
    source_pages: pd.DataFrame = field(default_factory=pd.DataFrame)  # source_pages.csv
    periods: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(PERIOD_COLUMNS)))
    concepts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(CONCEPT_COLUMNS)))
    harmonisation: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(HARMONISATION_COLUMNS)))


def _where(path: Path, row: int | None = None, column: str | None = None) -> str:
    parts = [str(path)]
    if row is not None:
        parts.append(f"row {row} (line {row + 1})")
    if column is not None:
        parts.append(f"column {column}")
    return ": ".join([parts[0], ", ".join(parts[1:])]) if len(parts) > 1 else parts[0]


def _refuse(message: str):
    raise InputError(message)


def _decode(path: Path, raw: bytes) -> tuple[str, list[str]]:
    """Bytes → text; a UTF-8 byte-order mark is dropped (and said), anything not UTF-8 is refused."""
    notes = []
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        _refuse(f"{path}: the file is UTF-16 (Excel's 'Unicode text'); save it as 'CSV UTF-8 (comma delimited)'")
    if raw.startswith(_BOM):
        raw = raw[len(_BOM):]
        notes.append("UTF-8 with byte-order mark")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        row = raw.count(b"\n", 0, exc.start)
        header = raw.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
        delimiter = ";" if ";" in header and "," not in header else ","
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        prefix = raw[line_start:exc.start].decode("utf-8", "replace")
        position = len(next(csv.reader([prefix], delimiter=delimiter), [""]))
        names = next(csv.reader([header], delimiter=delimiter), [])
        column = names[position - 1].strip() if 0 < position <= len(names) else None
        _refuse(f"{_where(path, row, column)}: byte 0x{raw[exc.start]:02x} is not UTF-8 (the file was probably "
                "saved as ANSI/Windows-1252); save it as 'CSV UTF-8 (comma delimited)'")
    if "\r\n" in text:
        notes.append("Windows line endings")
    return text, notes


def _delimiter(path: Path, text: str) -> str:
    """The delimiter, read from the header alone (column names contain neither ``,`` nor ``;``)."""
    header = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
    has_comma, has_semicolon = "," in header, ";" in header
    if has_comma and has_semicolon:
        _refuse(f"{_where(path, 0)}: the header mixes commas and semicolons; separate all columns with commas "
                "(or all with semicolons)")
    if has_semicolon:
        return ";"
    if "\t" in header and not has_comma:
        _refuse(f"{_where(path, 0)}: the header is separated by tabs; save the file as 'CSV UTF-8 (comma delimited)'")
    return ","


def _split_decimal_comma(path, row, header, cells):
    """In a comma-separated row with too many cells: the first number split by a decimal comma, as a message."""
    for j in range(min(len(header), len(cells) - 1)):
        a, b = cells[j].strip(), cells[j + 1].strip()
        if header[j] in NUMERIC_COLUMNS and re.fullmatch(r"[-+]?\d+", a) and re.fullmatch(r"\d+", b):
            return (f"{_where(path, row, header[j])}: {a},{b} is a number with a decimal comma, which splits the cell "
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
            if first_comma is None and _COMMA_NUMBER.match(value):
                first_comma = (i + 1, col, value)
            elif (first_dot is None and _DOT_NUMBER.match(value)
                  and not (col in INT_COLUMNS and _DOT_THOUSANDS.match(value))):
                first_dot = (i + 1, col, value)
    if first_comma and first_dot:
        row, col, value = first_dot
        crow, ccol, cvalue = first_comma
        _refuse(f"{_where(path, row, col)}: {value!r} has a decimal point, but this semicolon-separated file writes "
                f"decimals with a comma (row {crow}, column {ccol}: {cvalue!r}); write {value.replace('.', ',')!r}")
    if first_comma is None:
        return False
    for col in columns:
        frame[col] = [v.replace(",", ".") if _COMMA_NUMBER.match(v) else v for v in frame[col]]
    return True


def read_csv_strict(path: Path, required: tuple[str, ...], name: str | None = None,
                    optional: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Read a CSV as strings; check it exists, is non-empty and has ``required`` columns.

    Read without guessing, and said on the ``meta.read.load`` logger when applied: a UTF-8 byte-order mark, Windows
    line endings, and a semicolon-separated file as Excel saves it in a Dutch locale (the header decides the
    delimiter; in such a file the numeric columns may use decimal commas, consistently). Refused with file, row,
    column and the fix: not UTF-8, a header mixing delimiters, a row with more or fewer cells than the header
    (e.g. a decimal comma in a comma-separated file), an empty line, a duplicated column name. Columns that are
    neither ``required`` nor ``optional`` (default: the file's :data:`KNOWN_OPTIONAL`) are warned about and
    otherwise ignored.
    """
    path = Path(path)
    if not path.exists():
        _refuse(f"{path}: file not found; restore it from git or give --inputs the folder that holds it")
    if path.is_dir():
        _refuse(f"{path}: is a folder, not a file; restore the CSV file from git")
    raw = path.read_bytes()
    if not raw.replace(_BOM, b"", 1).strip():
        _refuse(f"{path}: the file is empty; it needs a header row with {', '.join(required[:4])}, ... "
                "(restore it from git)")
    text, notes = _decode(path, raw)
    delimiter = _delimiter(path, text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[list[str]] = []
    try:
        for cells in reader:
            rows.append(cells)
    except csv.Error as exc:
        _refuse(f"{_where(path, len(rows))}: cannot be read ({exc}); a cell that starts with a quote must end with "
                "one, and a quote inside a quoted cell is written twice (\"\")")
    while rows and all(c.strip() == "" for c in rows[-1]):
        rows.pop()  # trailing empty rows (Excel writes them for formatted but empty cells)
    if not rows:
        _refuse(f"{path}: the file has no header, only empty cells; restore it from git")
    header = [c.strip() for c in rows[0]]
    seen = set()
    for j, col in enumerate(header):
        if col and col in seen:
            _refuse(f"{_where(path, 0, col)}: column name {col!r} appears twice in the header; keep one of them")
        seen.add(col)
    for i, cells in enumerate(rows[1:], start=1):
        if not cells:
            _refuse(f"{_where(path, i)}: the line is empty; delete it (rows are numbered, and every row after it "
                    "would be named wrongly)")
        if len(cells) != len(header):
            message = _split_decimal_comma(path, i, header, cells) if delimiter == "," else None
            sep = "comma" if delimiter == "," else "semicolon"
            _refuse(message or f"{_where(path, i)}: {len(cells)} cells where the header has {len(header)}; put "
                               f"quotes around a text cell that contains a {sep}, or add the missing cells")
    missing = [c for c in required if c not in header]
    if missing:
        if len(header) == 1 and delimiter == "," and ";" not in header[0]:
            _refuse(f"{_where(path, 0, missing[0])}: the header has a single column; save the file as "
                    "comma-separated CSV with the columns of inputs/README.md")
        _refuse(f"{_where(path, 0, missing[0])}: required column is missing; add a column named {missing[0]!r}")
    if len(rows) == 1:
        _refuse(f"{path}: header only, no rows; add the rows or restore the file from git")
    frame = pd.DataFrame([[_strip(c) for c in cells] for cells in rows[1:]], columns=header)
    trimmed = [(i, col, cells[j]) for i, cells in enumerate(rows[1:], start=1) for j, col in enumerate(header)
               if col not in schema.FREE_TEXT and cells[j] != _strip(cells[j]) and _strip(cells[j])]
    if trimmed:
        i, col, cell = trimmed[0]
        more = f" (and {len(trimmed) - 1} more cells)" if len(trimmed) > 1 else ""
        log.warning(f"{_where(path, i, col)}: spaces or no-break spaces around {_strip(cell)!r} trimmed{more}; "
                    "the cells are read without them")
    if optional is None:
        optional = KNOWN_OPTIONAL.get(tuple(required))
    if optional is not None:
        unknown = [c or f"(unnamed column {j + 1})" for j, c in enumerate(header)
                   if c not in required and c not in optional]
        if unknown:
            log.warning(f"{_where(path, 0, unknown[0])}: unknown column{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(map(repr, unknown))} ignored; check the name against inputs/README.md, "
                        "or delete the column")
    if delimiter == ";":
        notes.insert(0, "semicolon-separated with decimal commas (Excel, Dutch locale)"
                     if _normalise_decimals(frame, path) else "semicolon-separated")
    if notes:
        log.warning(f"{path}: read as {', '.join(notes)}")
    frame.insert(0, "input_row", range(1, len(frame) + 1))
    return frame


_SPACES = " \t\u00a0\u2007\u202f\u200b\ufeff"


def _strip(cell: str) -> str:
    """A cell without the spaces around it, including no-break and zero-width spaces (Excel and PDFs add them)."""
    return cell.strip().strip(_SPACES).strip()


def parse_number(text: str, path: Path, row: int, column: str, integer: bool = False):
    """Parse one numeric cell as :func:`meta.read.schema.parse_number` does; blank → NaN. Refusals name the cell."""
    try:
        return schema.parse_number(text, whole=integer)
    except schema.SchemaError as exc:
        raise InputError(f"{_where(path, row, column)}: {exc}") from None


def validate_table(frame: pd.DataFrame, table: schema.Table, path: Path, convert: tuple[str, ...] = ()) -> pd.DataFrame:
    """Check every cell of ``frame`` against its :class:`meta.read.schema.Table`; convert the ``convert`` columns.

    Numbers in ``convert`` become floats (``number``) or nullable integers (``whole``); the others stay as
    the text read. Normalisations (``16.0`` read as 16) are said in one warning per file.
    """
    out = frame.copy()
    notes: list[tuple[int, str, str]] = []
    for col in table.columns:
        if col.name not in frame.columns:
            continue
        values = []
        for text, row in zip(frame[col.name], frame["input_row"]):
            cell_notes: list[str] = []
            try:
                values.append(schema.check_cell(col, text, cell_notes))
            except schema.SchemaError as exc:
                raise InputError(f"{_where(path, row, col.name)}: {exc}") from None
            notes += [(row, col.name, n) for n in cell_notes]
        if col.name in convert:
            if col.kind == "whole":
                out[col.name] = pd.array([None if (isinstance(v, float) and math.isnan(v)) else v for v in values],
                                         dtype="Int64")
            elif col.kind == "number":
                out[col.name] = [float(v) for v in values]
    if notes:
        row, column, note = notes[0]
        more = f" (and {len(notes) - 1} more cells)" if len(notes) > 1 else ""
        log.warning(f"{_where(path, row, column)}: {note}{more}; write whole numbers without decimals")
    return out


def _check_codes(frame, path, column, allowed, what, fix):
    for value, row in zip(frame[column], frame["input_row"]):
        if value not in allowed:
            raise InputError(f"{_where(path, row, column)}: unknown {what} {value!r}; {fix}")


def _check_unique(frame, path, key, fix):
    dup = frame.duplicated(list(key), keep="first")
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        row = int(frame["input_row"].iloc[i])
        first = frame[(frame[list(key)] == frame[list(key)].iloc[i]).all(axis=1)]["input_row"].iloc[0]
        raise InputError(
            f"{_where(path, row, key[-1])}: duplicated key ({', '.join(map(str, frame[list(key)].iloc[i]))}) "
            f"already on row {first}; {fix}"
        )


def load_municipalities(path: Path) -> pd.DataFrame:
    """The municipality register: the one list of municipalities (a new one is added by adding a row)."""
    frame = read_csv_strict(path, MUNICIPALITY_COLUMNS)
    frame = validate_table(frame, schema.MUNICIPALITIES, path)
    bad = [(m, r) for m, r in zip(frame["municipality"], frame["input_row"]) if not re.fullmatch(r"[a-z][a-z0-9_]*", m)]
    if bad:
        m, r = bad[0]
        raise InputError(f"{_where(path, r, 'municipality')}: code {m!r} must be lower-case letters, digits or _ "
                         f"(e.g. {re.sub('[^a-z0-9_]', '_', m.lower())!r}); it names the municipality in every file")
    _check_unique(frame, path, ("municipality",), "keep one row per municipality")
    return frame


def load_arms(path: Path, municipalities: pd.DataFrame) -> pd.DataFrame:
    frame = read_csv_strict(path, ARM_COLUMNS)
    frame = validate_table(frame, schema.ARMS, path, convert=("n_randomised",))
    _check_codes(frame, path, "municipality", set(municipalities["municipality"]), "municipality",
                 "add it to municipalities.csv or fix the code")
    _check_unique(frame, path, ("municipality", "arm"), "keep one row per municipality and arm")
    for col in COMPONENTS:
        frame[col] = frame[col].astype(int)
    frame["randomised"] = frame["randomised"] == "true"
    no_component = (frame[list(COMPONENTS)].sum(axis=1) == 0) & (frame["arm_class"] != "reference")
    if no_component.any():
        row = int(frame.loc[no_component, "input_row"].iloc[0])
        raise InputError(
            f"{_where(path, row, 'exemption')}: arm has no components; set at least one of "
            f"{', '.join(COMPONENTS)} to 1"
        )
    return frame


def load_outcomes(path: Path) -> pd.DataFrame:
    frame = read_csv_strict(path, OUTCOME_COLUMNS)
    frame = validate_table(frame, schema.OUTCOMES, path)
    _check_unique(frame, path, ("outcome",), "keep one row per outcome code")
    for value, row in zip(frame["unit"], frame["input_row"]):
        if schema.unit(value) is None:
            raise InputError(f"{_where(path, row, 'unit')}: unknown unit {value!r}; use one of {schema.unit_names()}")
    if {"scale_min", "scale_max"} <= set(frame.columns):
        for lo, hi, row in zip(frame["scale_min"], frame["scale_max"], frame["input_row"]):
            if (lo == "") != (hi == ""):
                col = "scale_min" if lo == "" else "scale_max"
                raise InputError(f"{_where(path, row, col)}: give both scale_min and scale_max, or neither "
                                 "(blank for an unbounded outcome)")
            if lo != "" and float(lo) >= float(hi):
                raise InputError(f"{_where(path, row, 'scale_max')}: scale_max {hi} must be above scale_min {lo}; "
                                 "give the lowest and highest value one person's outcome can take")
    return frame


def load_legends(path: Path) -> pd.DataFrame:
    frame = read_csv_strict(path, LEGEND_COLUMNS)
    for mark, row in zip(frame["mark"], frame["input_row"]):
        if mark not in SIGNIFICANCE_MARKS and not _FOOTNOTE_MARK.match(mark):
            raise InputError(f"{_where(path, row, 'mark')}: unknown significance mark {mark!r}; "
                             "use one of ~ * ** *** (or a footnote mark such as 1)), blank for 'no mark'")
    frame = validate_table(frame, schema.LEGENDS, path, convert=("p_below", "p_at_least", "legend_line"))
    for r in frame.itertuples(index=False):
        if not (math.isnan(r.p_below) or math.isnan(r.p_at_least)) and not r.p_at_least < r.p_below:
            raise InputError(f"{_where(path, r.input_row, 'p_at_least')}: the band p >= {r.p_at_least:g} and "
                             f"p < {r.p_below:g} is empty; check both thresholds against the legend")
    _check_unique(frame, path, ("source_file", "source_table", "mark"), "keep one row per table and mark")
    return frame


def _half_unit(x: float) -> float:
    """Half a unit of the last decimal of ``x`` as written in the file (0.0005 for 0.029)."""
    text = repr(float(x))
    if "e" in text:
        return 0.0
    decimals = len(text.split(".")[1].rstrip("0")) if "." in text else 0
    return 0.5 * 10.0 ** -decimals


def _check_se_ci_p_agree(r, where, printed) -> None:
    """Where a row gives two of SE, interval and p-value, they must agree within the rounding of the printed
    numbers: SE ≈ (ci_high − ci_low) / (2 z), and p ≈ 2 Φ(−|estimate| / SE). A typo in one of them would
    otherwise change the SE used without a word."""
    from scipy import special  # norm.isf(q) = -ndtri(q), norm.sf(x) = ndtr(-x): no scipy.stats import

    if not math.isnan(r.se) and not (math.isnan(r.ci_low) or math.isnan(r.ci_high) or math.isnan(r.ci_level)):
        z = float(-special.ndtri((1 - r.ci_level / 100) / 2))
        implied = (r.ci_high - r.ci_low) / (2 * z)
        slack = (_half_unit(r.ci_low) + _half_unit(r.ci_high)) / (2 * z) + _half_unit(r.se) + 1e-12
        if abs(implied - r.se) > max(slack, 0.02 * r.se):
            raise InputError(f"{where('se')}: standard error {r.se:g} disagrees with the interval "
                             f"[{r.ci_low:g}, {r.ci_high:g}] (which implies {implied:.3g}); check both against the "
                             "source line")
    if not math.isnan(r.se) and not math.isnan(r.p_value) and r.se > 0:
        h_e = 0.5 * 10.0 ** -printed.decimals
        h_s = _half_unit(r.se)
        z_lo = max(abs(r.estimate) - h_e, 0.0) / (r.se + h_s)
        z_hi = (abs(r.estimate) + h_e) / max(r.se - h_s, 1e-300)
        p_hi, p_lo = 2 * special.ndtr(-z_lo), 2 * special.ndtr(-z_hi)
        h_p = _half_unit(r.p_value)
        if not (p_lo - h_p - 1e-12 <= r.p_value <= p_hi + h_p + 1e-12):
            raise InputError(f"{where('p_value')}: p-value {r.p_value:g} disagrees with the estimate {r.estimate:g} and "
                             f"its standard error {r.se:g} (which give p between {p_lo:.3g} and {p_hi:.3g}); check the "
                             "three numbers against the source line")


def _check_estimate_row(r, where, legend_band) -> list[str]:
    """The checks of one ``estimates.csv`` row that need more than one cell; returns warnings."""
    warnings = []
    u = schema.unit(r.unit)
    if u is None:
        raise InputError(f"{where('unit')}: unknown unit {r.unit!r}; use one of {schema.unit_names()}")
    lo, hi = u.level if r.comparator == "none" else (-u.width, u.width)
    if not (lo <= r.estimate <= hi):
        raise InputError(f"{where('estimate')}: {r.estimate:g} is outside [{lo:g}, {hi:g}] allowed for "
                         f"{'a level' if r.comparator == 'none' else 'a difference'} in unit {r.unit!r}; check the "
                         "unit (proportion vs percent, the scale) or the number")
    printed = schema.parse_printed(r.printed)
    if printed is None:
        raise InputError(f"{where('printed')}: {r.printed!r} cannot be read as a printed number; copy the token "
                         "exactly as printed (digits with a decimal comma or dot, optional %, then the mark)")
    if abs(printed.number - r.estimate) > 1e-9 * max(1.0, abs(r.estimate)):
        raise InputError(f"{where('estimate')}: {r.estimate:g} differs from the printed token {r.printed!r} "
                         f"({printed.number:g}); write the number as printed (estimate is the printed number in "
                         "its printed unit)")
    if r.significance and not printed.mark and math.isnan(r.p_value):
        raise InputError(f"{where('significance')}: mark {r.significance!r} is not in the printed token {r.printed!r}; "
                         "copy the token with its mark (a mark printed in another column needs the row's p_value)")
    if printed.mark and printed.mark != r.significance:
        raise InputError(f"{where('significance')}: mark {r.significance!r} differs from the mark in the printed "
                         f"token {r.printed!r} ({printed.mark!r}); copy the mark as printed")
    if printed.percent and r.unit not in ("percent", "percentage_points"):
        raise InputError(f"{where('unit')}: the printed token {r.printed!r} has a % sign but the unit is "
                         f"{r.unit!r}; use percent (a level) or percentage_points (a difference)")
    if r.unit in ("percent", "percentage_points") and not printed.percent and abs(r.estimate) < 1 \
            and printed.decimals >= 2:
        warnings.append(f"{where('unit')}: unit {r.unit!r} but the printed token {r.printed!r} has no % sign and "
                        "looks like a proportion; check the unit")
    s_lo, s_hi = u.se_range
    if not math.isnan(r.se) and not (s_lo < r.se <= s_hi):
        raise InputError(f"{where('se')}: standard error {r.se:g} is implausible for unit {r.unit!r} (it must be "
                         f"above {s_lo:g} and at most {s_hi:g}); check the printed value and the unit")
    if not (math.isnan(r.ci_low) or math.isnan(r.ci_high)):
        if r.ci_low > r.ci_high:
            raise InputError(f"{where('ci_low')}: ci_low {r.ci_low} > ci_high {r.ci_high}; swap them")
        if r.ci_low == r.ci_high:
            raise InputError(f"{where('ci_high')}: the interval [{r.ci_low}, {r.ci_high}] has no width; check the "
                             "two bounds against the source line")
        if not (r.ci_low <= r.estimate <= r.ci_high):
            raise InputError(
                f"{where('ci_low' if r.estimate < r.ci_low else 'ci_high')}: the interval [{r.ci_low}, {r.ci_high}] "
                f"does not contain the estimate {r.estimate}; check the three numbers against the source line")
        if math.isnan(r.ci_level):
            raise InputError(f"{where('ci_level')}: a CI is given without its level; write e.g. 95")
        if r.ci_high - r.ci_low > 2 * u.width:
            raise InputError(f"{where('ci_high')}: the interval [{r.ci_low:g}, {r.ci_high:g}] is wider than the "
                             f"whole range of unit {r.unit!r}; check the bounds and the unit")
    band = legend_band.get((r.source_file, r.source_table, r.significance))
    if band is not None and not math.isnan(r.p_value):
        p_below, p_at_least = band
        if (not math.isnan(p_below) and r.p_value >= p_below) or (not math.isnan(p_at_least) and
                                                                  r.p_value < p_at_least):
            raise InputError(f"{where('p_value')}: p-value {r.p_value:g} contradicts the mark {r.significance!r} "
                             f"(p in [{p_at_least:g}, {p_below:g}) by the legend of {r.source_table}); check the "
                             "p-value, the mark and the legend")
    _check_se_ci_p_agree(r, where, printed)
    return warnings


def load_periods(path: Path) -> pd.DataFrame:
    """``periods.csv``: one row per period, with the month range (months since the start) it covers."""
    frame = validate_table(read_csv_strict(path, PERIOD_COLUMNS), schema.PERIODS, path,
                           convert=("month_min", "month_max"))
    _check_unique(frame, path, ("period",), "keep one row per period")
    for lo, hi, row in zip(frame["month_min"], frame["month_max"], frame["input_row"]):
        if lo > hi:
            raise InputError(f"{_where(path, row, 'month_max')}: month_max {hi} is below month_min {lo}; give the "
                             "first and last month of the period")
    _check_source_lines(frame, path)
    return frame


def load_concepts(path: Path) -> pd.DataFrame:
    """``concepts.csv``: one row per LOEP concept, with its labels and the unit effects are pooled in."""
    frame = validate_table(read_csv_strict(path, CONCEPT_COLUMNS), schema.CONCEPTS, path)
    _check_unique(frame, path, ("concept",), "keep one row per concept")
    for value, row in zip(frame["unit"], frame["input_row"]):
        if schema.unit(value) is None:
            raise InputError(f"{_where(path, row, 'unit')}: unknown unit {value!r}; use one of {schema.unit_names()}")
    _check_source_lines(frame, path)
    return frame


def load_harmonisation(path: Path, municipalities, outcomes, periods, concepts) -> pd.DataFrame:
    """``harmonisation.csv``: municipality × outcome × horizon → concept, period, transform and role.

    Refused with file, row, column and fix: an unknown municipality, outcome, concept, period, transform or role; a
    horizon outside its period's months; a transform whose units do not lead from the outcome's unit to the
    concept's; a mapping row (primary, sensitivity) with a blank concept, period or transform, an unmapped row with
    any of them filled; a blank reason or source; two rows for one municipality, outcome and horizon; two primary
    rows for one municipality, concept and period.
    """
    frame = validate_table(read_csv_strict(path, HARMONISATION_COLUMNS), schema.HARMONISATION, path)
    _check_codes(frame, path, "municipality", set(municipalities["municipality"]), "municipality",
                 f"use one of {', '.join(municipalities['municipality'])}")
    _check_source_lines(frame, path)
    unit_of = dict(zip(outcomes["outcome"], outcomes["unit"]))
    concept_unit = dict(zip(concepts["concept"], concepts["unit"]))
    months = {p: (lo, hi) for p, lo, hi in zip(periods["period"], periods["month_min"], periods["month_max"])}
    for r in frame.itertuples(index=False):
        where = lambda col: _where(path, r.input_row, col)  # noqa: E731
        maps = r.role in ("primary", "sensitivity")
        if r.role == "not_reported":
            if r.outcome or r.horizon_months or r.transform:
                raise InputError(f"{where('outcome')}: a not_reported row names no outcome, horizon or transform; "
                                 "clear them (it says which concept and period a municipality has no number for)")
        elif r.outcome not in unit_of:
            raise InputError(f"{where('outcome')}: unknown outcome {r.outcome!r}; use a code of outcomes.csv")
        if maps or r.role == "not_reported":
            for col, known, fix in (("concept", concept_unit, "concepts.csv"), ("period", months, "periods.csv")):
                if getattr(r, col) not in known:
                    raise InputError(f"{where(col)}: unknown {col} {getattr(r, col)!r}; use one of {fix} "
                                     f"({', '.join(known)})")
        else:
            for col in ("concept", "period", "transform"):
                if getattr(r, col):
                    raise InputError(f"{where(col)}: an unmapped row maps nothing; clear {col}, or set role to "
                                     "primary or sensitivity")
        if not maps:
            continue
        if r.transform not in TRANSFORMS:
            raise InputError(f"{where('transform')}: unknown transform {r.transform!r}; use one of "
                             f"{', '.join(TRANSFORMS)}")
        source, target, _ = TRANSFORMS[r.transform]
        have, want = unit_of[r.outcome], concept_unit[r.concept]
        if (source is None and have != want) or (source is not None and (have, want) != (source, target)):
            fits = [n for n, (a, b, _) in TRANSFORMS.items() if (a, b) == (have, want) or (a is None and have == want)]
            raise InputError(f"{where('transform')}: {r.transform} does not lead from the outcome's unit {have!r} to "
                             f"the concept's unit {want!r}; use {' or '.join(fits) or 'another concept'}")
        if r.horizon_months == "":
            raise InputError(f"{where('horizon_months')}: a mapped row needs the horizon it maps; write the months "
                             "since the start, or set role to unmapped")
        lo, hi = months[r.period]
        if not lo <= int(r.horizon_months) <= hi:
            raise InputError(f"{where('horizon_months')}: horizon {r.horizon_months} is outside period {r.period} "
                             f"({lo}-{hi} months in periods.csv); choose the period that covers it")
    keyed = frame[frame["outcome"] != ""]
    _check_unique(keyed, path, ("municipality", "outcome", "horizon_months"),
                  "keep one row per municipality, outcome and horizon")
    primary = frame[frame["role"] == "primary"]
    _check_unique(primary, path, ("municipality", "concept", "period"),
                  "one primary row per municipality, concept and period; make the other a sensitivity row")
    return frame


def _check_source_lines(frame, path):
    for value, row in zip(frame["source_lines"], frame["input_row"]):
        if value and not _SOURCE_LINES.match(value):
            raise InputError(f"{_where(path, row, 'source_lines')}: {value!r} is not a list of seed lines; write "
                             "e.g. 002:349;004:2044-2049 (seed number, colon, line or line range; ';' between)")


def load_estimates(path: Path, municipalities, arms, outcomes, legends) -> pd.DataFrame:
    """Load ``estimates.csv``: every cell against :data:`meta.read.schema.ESTIMATES`, then against the registers.

    Beyond the cells: the unit is known and the estimate in its range (a level or a difference), the
    ``printed`` token re-read gives the estimate and the mark, the SE is plausible for the unit, the interval
    holds the estimate, a p-value agrees with its mark's legend, and every code is in its register.
    """
    frame = read_csv_strict(path, ESTIMATE_COLUMNS)
    for col in ESTIMATE_OPTIONAL_INTS:
        if col not in frame.columns:
            frame[col] = ""
    frame = validate_table(frame, schema.ESTIMATES, path, convert=ESTIMATE_FLOATS + ESTIMATE_INTS + ESTIMATE_OPTIONAL_INTS)
    codes = list(municipalities["municipality"])
    _check_codes(frame, path, "municipality", set(codes), "municipality",
                 f"use one of {', '.join(codes)}, or add the municipality to municipalities.csv")
    pending = set(municipalities.loc[municipalities["status"] == "pending", "municipality"])
    for muni, row in zip(frame["municipality"], frame["input_row"]):
        if muni in pending:
            raise InputError(
                f"{_where(path, row, 'municipality')}: {muni!r} is 'pending' in municipalities.csv but has estimate rows; "
                "set its status to 'transcribed' once its numbers are checked, or remove the rows"
            )
    arm_keys = set(zip(arms["municipality"], arms["arm"]))
    for col in ("arm", "comparator"):
        for muni, value, row in zip(frame["municipality"], frame[col], frame["input_row"]):
            if col == "comparator" and value == "none":
                continue
            if (muni, value) not in arm_keys:
                raise InputError(
                    f"{_where(path, row, col)}: unknown arm {value!r} for {muni}; add it to arms.csv or use a listed arm code"
                )
    _check_codes(frame, path, "outcome", set(outcomes["outcome"]), "outcome", "add it to outcomes.csv or fix the code")
    _check_unique(frame, path, ESTIMATE_KEY, "give the rows different model or population codes, or remove one")
    legend_keys = set(zip(legends["source_file"], legends["source_table"], legends["mark"]))
    legend_band = {(f, t, m): (pb, pa) for f, t, m, pb, pa in zip(legends["source_file"], legends["source_table"],
                                                                  legends["mark"], legends["p_below"],
                                                                  legends["p_at_least"])}
    randomised = ({m: int(n) for m, n in zip(municipalities["municipality"], municipalities["n_randomised_total"]) if n}
                  if "n_randomised_total" in municipalities.columns else {})
    is_randomised = dict(zip(zip(arms["municipality"], arms["arm"]), arms["randomised"]))
    warnings = []
    for r in frame.itertuples(index=False):
        where = lambda col: _where(path, r.input_row, col)  # noqa: E731
        if r.significance not in SIGNIFICANCE_MARKS and (r.source_file, r.source_table, r.significance) not in legend_keys:
            raise InputError(
                f"{where('significance')}: significance mark {r.significance!r} is not one of ~ * ** *** and no legend "
                f"of {r.source_table} defines it; copy the mark as printed and add the table's legend to "
                "significance_legends.csv, or leave it blank"
            )
        if r.significance and (r.source_file, r.source_table, r.significance) not in legend_keys:
            raise InputError(
                f"{where('significance')}: no legend for mark {r.significance!r} in {r.source_file} {r.source_table}; "
                "add the table's legend to significance_legends.csv"
            )
        warnings += _check_estimate_row(r, where, legend_band)
        total = randomised.get(r.municipality)
        if not (is_randomised.get((r.municipality, r.arm)) and (r.comparator == "none" or
                                                                is_randomised.get((r.municipality, r.comparator)))):
            total = None  # a non-randomised reference group counts people outside the experiment
        for col in ("n_arm", "n_control", "n_table"):
            n = getattr(r, col)
            if total and not pd.isna(n) and n > total:
                raise InputError(f"{where(col)}: sample size {n} exceeds the {total} people {r.municipality} randomised "
                                 "(municipalities.csv n_randomised_total); check the number")
    _check_units_agree(frame, path)
    _check_lone_codes(frame, path)
    warnings += _lone_horizons(frame, path) + _lone_decimals(frame, path) + _lone_filled(frame, path)
    if warnings:
        more = f" (and {len(warnings) - 1} more rows)" if len(warnings) > 1 else ""
        log.warning(warnings[0] + more)
    return frame


_CODE = re.compile(r"^[a-z][a-z0-9_]*$")


def _check_lone_codes(frame: pd.DataFrame, path: Path) -> None:
    """``model`` and ``population`` have no register: a code is refused when it is not lower-case letters, digits
    and _, or when it occurs in one row only and looks like a code other rows use (``loepx`` next to ``loep``):
    a typo there would move the row out of the plan's preferences without a word."""
    for col in ("model", "population"):
        counts = frame[col].value_counts()
        common = [c for c in counts.index if counts[c] > 1]
        for value, row in zip(frame[col], frame["input_row"]):
            if not _CODE.match(value):
                raise InputError(f"{_where(path, row, col)}: code {value!r} must be lower-case letters, digits and _ "
                                 f"(e.g. {re.sub('[^a-z0-9_]', '', value.lower()).strip('_')!r})")
            if counts[value] == 1:
                close = difflib.get_close_matches(value, common, 1, cutoff=0.8)
                if close:
                    raise InputError(f"{_where(path, row, col)}: {col} {value!r} occurs in this row only and looks like "
                                     f"{close[0]!r} ({counts[close[0]]} rows); fix the code (or, if it is really "
                                     "another model, give it a name that is not a near-copy)")


def _lone_horizons(frame: pd.DataFrame, path: Path) -> list[str]:
    """Warnings for a horizon that occurs in one row only of a table whose other rows share other horizons (``6``
    typed for ``16`` moves the row out of the plan's horizons). Horizon 0 (a baseline measurement) is exempt."""
    out = []
    for (_, table), group in frame.groupby(["source_file", "source_table"], sort=False):
        counts = group["horizon_months"].dropna().value_counts()
        if len(counts) and group["horizon_months"].isna().sum() == 1:
            row = int(group.loc[group["horizon_months"].isna(), "input_row"].iloc[0])
            out.append(f"{_where(path, row, 'horizon_months')}: blank in this row only of {table} (its other rows "
                       "have horizons); check it against the table")
        if len(counts) < 2:
            continue
        for h, row in zip(group["horizon_months"], group["input_row"]):
            if not pd.isna(h) and h != 0 and counts[h] == 1:
                others = ", ".join(str(int(x)) for x in sorted(counts.index) if x != h)
                out.append(f"{_where(path, row, 'horizon_months')}: horizon {int(h)} occurs in this row only of "
                           f"{table} (its other rows: {others}); check it against the table")
    return out


#: Cells a table fills for all its rows or for none: one row filled where the others are blank is warned about.
_FILLED_TOGETHER = ("se", "ci_low", "ci_high", "p_value", "n_arm", "n_control", "n_table", "share_arm",
                    "share_control")


def _lone_filled(frame: pd.DataFrame, path: Path) -> list[str]:
    """Warnings for a value in one row only of a table whose other rows leave that column blank (an SE typed
    into the wrong row would replace the SE derived from the row's mark)."""
    out = []
    for (_, table), group in frame.groupby(["source_file", "source_table"], sort=False):
        if len(group) < 3:
            continue
        for col in _FILLED_TOGETHER:
            filled = group[col].notna()
            if int(filled.sum()) == 1:
                row = int(group.loc[filled, "input_row"].iloc[0])
                out.append(f"{_where(path, row, col)}: the only row of {table} with a {col}; check that it belongs to "
                           "this row")
    return out


def _lone_decimals(frame: pd.DataFrame, path: Path) -> list[str]:
    """Warnings for a printed token with a number of decimals no other row of its table and unit has (``-0,0500``
    for ``-0,05``): the decimals set the rounding half-unit that brackets an SE derived from marks."""
    decimals = [schema.parse_printed(t).decimals for t in frame["printed"]]
    out = []
    for (_, table, unit), group in frame.assign(_dec=decimals).groupby(["source_file", "source_table", "unit"],
                                                                        sort=False):
        counts = group["_dec"].value_counts()
        if len(counts) < 2 or len(group) < 3:
            continue
        for d, row, token in zip(group["_dec"], group["input_row"], group["printed"]):
            if counts[d] == 1:
                out.append(f"{_where(path, row, 'printed')}: {token!r} has {d} decimals, no other {unit} number of "
                           f"{table} has; check the token against the source line")
    return out


def _check_units_agree(frame: pd.DataFrame, path: Path) -> None:
    """One table prints one outcome in one unit: the levels (comparator ``none``) of a table and outcome share a
    unit, and so do its differences. A row that differs from the majority is refused (a unit typo would
    otherwise scale the number by 100)."""
    kind = (frame["comparator"] == "none").map({True: "levels", False: "differences"})
    for key, group in frame.assign(_kind=kind).groupby(["source_file", "source_table", "outcome", "_kind"], sort=False):
        units = group["unit"].value_counts()
        if len(units) > 1:
            majority = units.index[0]
            r = group[group["unit"] != majority].iloc[0]
            raise InputError(f"{_where(path, int(r['input_row']), 'unit')}: unit {r['unit']!r}, but the other "
                             f"{key[3]} of {key[2]} in {key[1]} are in {majority!r}; one table prints one outcome in one "
                             "unit: check the unit against the printed token")


def load_sources(path: Path, estimates: pd.DataFrame | None = None) -> pd.DataFrame:
    """Load ``sources.csv`` (one row per source document) and check that it covers ``estimates``.

    Every field is copied as printed and names the line(s) where it is printed (``<field>_line``: ``7`` or
    ``7-8; 15``). A value the text file does not print may be supplied in [brackets], with no line, and the
    note says on what evidence. Refused: a printed value without its line, a line without a value, a
    bracketed value with a line, a year that is not four digits, a URL that is not http(s), a duplicated
    file, and a ``source_file`` of ``estimates`` with no row here.
    """
    frame = read_csv_strict(path, SOURCE_COLUMNS)
    validate_table(frame, schema.SOURCES, path)
    _check_unique(frame, path, ("source_file",), "keep one row per source file")
    for r in frame.itertuples(index=False):
        where = lambda col: _where(path, r.input_row, col)  # noqa: E731
        for f in SOURCE_FIELDS:
            value, lines = getattr(r, f), getattr(r, f"{f}_line")
            supplied = value.startswith("[") and value.endswith("]")
            if lines and not _LINES.match(lines):
                raise InputError(f"{where(f + '_line')}: {lines!r} is not a line number or list of lines; write e.g. "
                                 "7, 7-8 or 10-11; 15")
            if value == "" and lines:
                raise InputError(f"{where(f)}: blank, but {f}_line says it is printed on line {lines}; copy it from "
                                 "there, or clear the line")
            if value and not supplied and not lines:
                raise InputError(f"{where(f + '_line')}: {f} {value!r} has no line; give the line where the text file "
                                 "prints it, or write the value in [brackets] if it is supplied and say why in note")
            if supplied and lines:
                raise InputError(f"{where(f)}: {value!r} is in [brackets] (supplied, not printed) but has a line; "
                                 "remove the brackets if it is printed there, or clear the line")
            bare = value.strip("[]")
            if f == "year" and value and not re.fullmatch(r"\d{4}", bare):
                raise InputError(f"{where(f)}: year {value!r} must be four digits (or [four digits] if supplied)")
            if f == "url" and value and not re.match(r"^https?://", bare):
                raise InputError(f"{where(f)}: {value!r} is not a web address; write it with http:// or https://")
    if estimates is not None and len(estimates):
        known = set(frame["source_file"])
        for source, row in zip(estimates["source_file"], estimates["input_row"]):
            if source not in known:
                raise InputError(f"{path}: no row for source_file {source!r}, which estimates.csv row {row} cites; "
                                 "add a row with its title, authors, year and publisher as printed")
    return frame


def load_source_pages(path: Path, sources: pd.DataFrame) -> pd.DataFrame:
    """Load ``source_pages.csv``: lines of a source text whose printed page is known, and how.

    ``page_number``: the line is a page number printed at the foot of page ``page``. ``toc_heading``: the
    line is a heading the table of contents (at ``toc_line``) puts on page ``page``. Per source, pages must
    not decrease as lines increase.
    """
    frame = read_csv_strict(path, SOURCE_PAGE_COLUMNS)
    _check_codes(frame, path, "source_file", set(sources["source_file"]), "source file",
                 "add it to sources.csv or fix the name")
    _check_codes(frame, path, "kind", SOURCE_PAGE_KINDS, "kind", f"use {' or '.join(SOURCE_PAGE_KINDS)}")
    validate_table(frame, schema.SOURCE_PAGES, path)
    for r in frame.itertuples(index=False):
        if r.line == "" or r.page == "":
            raise InputError(f"{_where(path, r.input_row, 'line' if r.line == '' else 'page')}: blank; every row "
                             "needs the line and its page")
        if (r.kind == "toc_heading") != (r.toc_line != ""):
            raise InputError(f"{_where(path, r.input_row, 'toc_line')}: a toc_heading row needs the line of its "
                             "contents entry, a page_number row none")
    frame = validate_table(frame, schema.SOURCE_PAGES, path, convert=("line", "page", "toc_line"))
    _check_unique(frame, path, ("source_file", "line"), "keep one row per line")
    for source, rows in frame.groupby("source_file", sort=False):
        rows = rows.sort_values("line")
        pages = rows["page"].astype(int).to_numpy()
        bad = [i for i in range(1, len(pages)) if pages[i] < pages[i - 1]
               or (rows["kind"].iat[i] == rows["kind"].iat[i - 1] == "page_number" and pages[i] == pages[i - 1])]
        if bad:
            r = rows.iloc[bad[0]]
            raise InputError(f"{_where(path, int(r['input_row']), 'page')}: page {r['page']} at line {r['line']} of "
                             f"{source} comes after page {pages[bad[0] - 1]} at an earlier line; check both rows")
    return frame


def load_inputs(folder: Path) -> Inputs:
    """Read and validate every register and the transcription in ``folder``."""
    folder = Path(folder)
    files = {
        "municipalities": folder / "municipalities.csv",
        "arms": folder / "arms.csv",
        "outcomes": folder / "outcomes.csv",
        "legends": folder / "significance_legends.csv",
        "estimates": folder / "estimates.csv",
        "periods": folder / "periods.csv",
        "concepts": folder / "concepts.csv",
        "harmonisation": folder / "harmonisation.csv",
    }
    collector = _Collect()
    log.addHandler(collector)
    try:
        municipalities = load_municipalities(files["municipalities"])
        arms = load_arms(files["arms"], municipalities)
        outcomes = load_outcomes(files["outcomes"])
        legends = load_legends(files["legends"])
        estimates = load_estimates(files["estimates"], municipalities, arms, outcomes, legends)
        sources = pd.DataFrame(columns=["input_row", *SOURCE_COLUMNS])
        source_pages = pd.DataFrame(columns=["input_row", *SOURCE_PAGE_COLUMNS])
        if (folder / "sources.csv").exists():  # optional: without it the report cites file names and lines
            files["sources"] = folder / "sources.csv"
            sources = load_sources(files["sources"], estimates)
            if (folder / "source_pages.csv").exists():
                files["source_pages"] = folder / "source_pages.csv"
                source_pages = load_source_pages(files["source_pages"], sources)
        periods = load_periods(files["periods"])
        concepts = load_concepts(files["concepts"])
        harmonisation = load_harmonisation(files["harmonisation"], municipalities, outcomes, periods, concepts)
    finally:
        log.removeHandler(collector)
    return Inputs(municipalities, arms, outcomes, legends, estimates, files, tuple(collector.messages), sources,
                  source_pages, periods, concepts, harmonisation)


class _Collect(logging.Handler):
    """Keeps the warnings of one :func:`load_inputs` call for ``Inputs.notices``."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())

"""The schema of every input file, declared once; reading one cell; the printed token.

Each input file is a :class:`Table` of :class:`Column` declarations: kind (code, text, number, whole number,
one of a set of values), whether the column must be present and whether a cell may be blank, and the range
of a number (open or closed ends). Every reader checks its cells with :func:`meta.read.reader.validate_table`
(``meta run``, ``meta check`` and ``meta add`` alike); what depends on another file (codes, units of an
outcome, legends) is checked by the loaders in :mod:`meta.read.registers` and :mod:`meta.read.estimates`. The
plan's settings are declared beside the plan (:data:`meta.plan.PLAN`) and checked with the same :class:`Column`
ranges and :class:`SchemaError`.

Why a small dataclass schema rather than pandera or JSON Schema: every refusal here must name file, row
(data row counting from 1, the file line is one more), column and the fix, in words an analyst reads; the
numbers must be parsed strictly (Python's ``float`` accepts ``0_05``, ``1e1``, ``nan`` and ``infinity``); and
some cells are normalised with a note (``16.0`` → 16, spaces trimmed) rather than refused. A general validator
would need all three bolted on and a translation layer for its messages; these declarations are plain data
that a new register (e.g. the concept mapping) declares in a few lines and validates with the same function.

Numbers, everywhere: a dot decimal, digits only (``-0.11``, ``.5``, ``12``); refused with the fix: decimal
comma, thousands separator, percent sign, exponent (``1e1``), underscore (``0_05``), text, ``nan``/``inf``.
A whole-number column accepts ``16.0`` as 16 with a note.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# --------------------------------------------------------------------------- #
# vocabularies
# --------------------------------------------------------------------------- #
#: The intervention components an arm can have, each a 0/1 column of arms.csv (the only list of them).
TREATMENT_COMPONENTS = ("exemption", "intensive", "release", "fulltime_bonus", "free_choice")
#: The 0/1 columns of arms.csv: the treatment components and ``control``, which marks the control arm.
COMPONENTS = (*TREATMENT_COMPONENTS, "control")
SIGNIFICANCE_MARKS = ("", "~", "*", "**", "***")
#: Footnote-style marks some reports use (``1)`` = p<0.15 in Wageningen); allowed only where the table's legend defines them.
FOOTNOTE_MARK = re.compile(r"^\*{0,3}\d\)$")
#: The p thresholds a significance legend can have (the values reports print: 0.10 for ``~``/``*``, 0.05, 0.01,
#: 0.001, and Wageningen's footnote marks at 0.11, 0.13, 0.15). A legend threshold outside this set is a typo
#: (``0.5`` for ``0.05``); add a value here only when a report really prints it.
P_THRESHOLDS = (0.001, 0.005, 0.01, 0.05, 0.10, 0.11, 0.13, 0.15, 0.20)
#: A code that names a municipality, model or population in every file: lower-case letters, digits and _, first a
#: letter (use with ``fullmatch``).
CODE = re.compile(r"[a-z][a-z0-9_]*")
#: Largest plausible horizon (months since the start); the experiments ran about two years.
MAX_HORIZON_MONTHS = 120


@dataclass(frozen=True)
class Unit:
    """A unit an estimate may be printed in: the range of a level, of a difference, and of a plausible SE.

    ``level`` is the range one group's value (a share, a mean) can take, ``width`` the largest possible
    difference (``level`` width; ``inf`` for unbounded units); an SE is plausible in ``(width * 1e-4, width]``
    (``se_max`` for unbounded units), i.e. neither the SE of a sample of hundreds of millions nor wider than
    the whole scale.
    """

    level: tuple[float, float] = (-math.inf, math.inf)
    se_max: float = math.inf

    @property
    def width(self) -> float:
        return self.level[1] - self.level[0]

    @property
    def se_range(self) -> tuple[float, float]:
        if math.isfinite(self.width):  # at most w/2: the SE of a difference of two means with 2 people per arm
            return self.width * 1e-4, self.width / 2
        return 0.0, self.se_max


#: Every unit ``estimates.csv`` and ``outcomes.csv`` may use (``scale_A_B`` is any scale from A to B).
UNITS = {
    "proportion": Unit((0.0, 1.0)),
    "percent": Unit((0.0, 100.0)),
    "percentage_points": Unit((0.0, 100.0)),
    "hours_per_week": Unit((0.0, 168.0)),
    "count_past_4_weeks": Unit((0.0, 500.0)),
    "coef_ols_or_logit": Unit(se_max=100.0),
    "scale_unknown": Unit(se_max=100.0),
}
_SCALE = re.compile(r"^scale_(\d+)_(\d+)$")
#: Units of shares, in which a difference is converted to percentage points.
SHARE_UNITS = ("proportion", "percent", "percentage_points")


def unit(name: str) -> Unit | None:
    """The :class:`Unit` called ``name`` (``scale_1_10`` → levels 1..10), or None when it is not a unit."""
    if name in UNITS:
        return UNITS[name]
    m = _SCALE.match(name)
    if m and int(m.group(1)) < int(m.group(2)):
        return Unit((float(m.group(1)), float(m.group(2))))
    return None


def unit_names() -> str:
    return ", ".join([*UNITS, "scale_A_B (e.g. scale_0_10)"])


# --------------------------------------------------------------------------- #
# declarations
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Column:
    """One column of an input file.

    ``kind``: ``code`` (an identifier, compared exactly), ``text`` (free text: only control characters are
    refused), ``number``, ``whole`` (whole number), ``choice`` (one of ``choices``). ``low``/``high`` bound
    a number, excluded when ``low_open``/``high_open``; ``choices`` may also restrict a number to a set.
    """

    name: str
    kind: str = "code"
    required: bool = True
    blank: bool = True
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    what: str = "value"
    fix: str = "check the number against the source"

    def bounds(self) -> str:
        lo = "" if self.low is None else f"{'>' if self.low_open else '>='} {self.low:g}"
        hi = "" if self.high is None else f"{'<' if self.high_open else '<='} {self.high:g}"
        return " and ".join(x for x in (lo, hi) if x)

    def in_range(self, x: float) -> bool:
        if self.low is not None and (x < self.low or (self.low_open and x == self.low)):
            return False
        if self.high is not None and (x > self.high or (self.high_open and x == self.high)):
            return False
        return True


@dataclass(frozen=True)
class Table:
    """An input file: its columns (required ones first, in file order) and its key."""

    file: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    doc: str = ""

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def optional(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if not c.required)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def of_kind(self, *kinds: str) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.kind in kinds)


def _n(name, what="number of people", required=True, low=1):
    return Column(name, "whole", required=required, low=low, what=what,
                  fix="write the number as printed, or leave it blank if the source does not print it")


def _text(name, required=True):
    return Column(name, "text", required=required)


MUNICIPALITIES = Table("municipalities.csv", (
    Column("municipality", blank=False),
    _text("name"),
    Column("status", "choice", blank=False, choices=("transcribed", "pending"), what="status",
           fix="use 'transcribed' or 'pending'"),
    _text("source_documents"),
    _text("pending_where"),
    *(_text(c, required=False) for c in ("period_start", "period_end", "intake_start", "intake_end")),
    _n("n_randomised_total", required=False),
    _n("n_control", required=False),
    *(_text(c, required=False) for c in ("n_per_arm_note", "source_lines", "note", "pending_where_nl")),
), key=("municipality",), doc="one row per municipality; the register is the only list of municipalities")

ARMS = Table("arms.csv", (
    Column("municipality", blank=False),
    Column("arm", blank=False),
    _text("name_nl"),
    _text("name_en"),
    Column("randomised", "choice", blank=False, choices=("true", "false"), fix="write true or false"),
    *(Column(c, "choice", blank=False, choices=("0", "1"), what=f"value in component {c}",
             fix="write 1 (has it) or 0") for c in COMPONENTS),
    Column("arm_class", blank=False),
    _n("n_randomised", what="number"),
    Column("release_pct", "number", required=False, low=0, high=100, what="percentage"),
    Column("release_cap_eur_month", "number", required=False, low=0, what="amount"),
    _n("release_months", what="number", required=False),
    *(_text(c, required=False) for c in ("n_source", "verified", "source", "note")),
), key=("municipality", "arm"))

OUTCOMES = Table("outcomes.csv", (
    Column("outcome", blank=False),
    _text("label_en"),
    _text("label_nl"),
    _text("definition"),
    Column("unit", blank=False),
    Column("direction", "choice", blank=False, choices=("higher_better", "lower_better", "neutral"),
           what="direction", fix="use higher_better, lower_better or neutral"),
    Column("data_source", "choice", blank=False, choices=("registers", "survey"), what="data source",
           fix="use registers or survey"),
    Column("scale_min", "number", required=False),
    Column("scale_max", "number", required=False),
), key=("outcome",))

_P_FIX = (f"a legend threshold is one of {', '.join(f'{p:g}' for p in P_THRESHOLDS)} (write 0.05, not 5 or 0.5); "
          "copy it from the table's legend")
LEGENDS = Table("significance_legends.csv", (
    _text("source_file"),
    _text("source_table"),
    _text("mark"),
    Column("p_below", "number", choices=P_THRESHOLDS, what="p threshold", fix=_P_FIX),
    Column("p_at_least", "number", choices=P_THRESHOLDS, what="p threshold", fix=_P_FIX),
    Column("two_sided", "choice", blank=False, choices=("true", "false", "unknown"), what="two_sided value",
           fix="write true, false or unknown (the legend does not say)"),
    _n("legend_line", what="line number"),
    _text("legend_text"),
), key=("source_file", "source_table", "mark"))

ESTIMATES = Table("estimates.csv", (
    Column("municipality", blank=False),
    Column("arm", blank=False),
    Column("comparator", blank=False),
    Column("outcome", blank=False),
    Column("horizon_months", "whole", low=0, high=MAX_HORIZON_MONTHS, what="horizon",
           fix=f"write the number of months between 0 and {MAX_HORIZON_MONTHS} since the start of the experiment "
               "(blank if the table has no horizon)"),
    Column("model", blank=False),
    Column("population", blank=False),
    Column("estimate", "number", blank=False, what="estimate",
           fix="every row holds one printed number; write it with a dot decimal"),
    Column("unit", blank=False),
    Column("se", "number", low=0, low_open=True, what="standard error",
           fix="check the printed value or leave it blank"),
    Column("ci_low", "number", what="interval bound"),
    Column("ci_high", "number", what="interval bound"),
    Column("ci_level", "number", low=50, high=100, low_open=True, high_open=True, what="confidence level",
           fix="write 95 for a 95% interval (the level in percent, not 0.95)"),
    Column("p_value", "number", low=0, high=1, low_open=True, what="p-value",
           fix="write it as printed (0.03, not 3%; a printed p < 0.001 is written 0.001), or leave it blank"),
    _text("significance"),
    _n("n_arm", what="sample size"),
    _n("n_control", what="sample size"),
    _n("n_table", what="sample size", required=False),
    # observations (person x measurement) of a model pooled over questionnaire waves, as its table legend prints
    # them (Wageningen Tabel 3.8-3.14, "N=748"): used for the worst-case N of per-wave adjusted means
    _n("n_obs", what="number of observations", required=False),
    Column("share_arm", "number", low=0, high=1, what="share", fix="write it as a proportion between 0 and 1"),
    Column("share_control", "number", low=0, high=1, what="share", fix="write it as a proportion between 0 and 1"),
    Column("printed", "text", blank=False, fix="copy the token exactly as printed on source_line"),
    Column("source_file", "text", blank=False, fix="name the seed file the number is printed in"),
    Column("source_table", "text", blank=False, fix="name the table the number is printed in"),
    _n("source_line", what="line number"),
    _text("note"),
), key=("municipality", "arm", "comparator", "outcome", "horizon_months", "model", "population", "source_table"))

#: The bibliographic fields of ``sources.csv``; each has a ``<field>_line`` column (lines such as ``7-8; 15``).
SOURCE_FIELDS = ("title", "authors", "year", "publisher", "published_in", "pages", "url")

SOURCES = Table("sources.csv", (
    Column("source_file", "text", blank=False, fix="name the text file the estimates cite"),
    Column("label_nl", "text", blank=False, fix="give a short Dutch name, e.g. Nijmegen-rapport"),
    Column("label_en", "text", blank=False, fix="give a short English name, e.g. Nijmegen report"),
    *(c for f in SOURCE_FIELDS for c in (_text(f), _text(f"{f}_line"))),
    _text("note"),
), key=("source_file",), doc="one row per source document, every field as printed with its line (meta.read.registers.load_sources)")

SOURCE_PAGES = Table("source_pages.csv", (
    _text("source_file"),
    _n("line", what="number"),
    _n("page", what="number"),
    Column("kind", "choice", blank=False, choices=("page_number", "toc_heading"), what="kind",
           fix="use page_number or toc_heading"),
    _n("toc_line", what="number"),
), key=("source_file", "line"))

#: Roles of a harmonisation row: pooled by default, used in the harmonisation sensitivity specification, deliberately
#: not mapped (reason given), or a concept a municipality reports no number for (outcome blank, reason given).
HARMONISATION_ROLES = ("primary", "sensitivity", "unmapped", "not_reported")
_SOURCE_LINES_FIX = "write e.g. 002:349;004:2044-2049 (seed number, colon, line or line range; ';' between)"
_MONTH = dict(low=0, high=MAX_HORIZON_MONTHS, what="month",
              fix=f"write a whole number of months between 0 and {MAX_HORIZON_MONTHS} since the start")
PERIODS = Table("periods.csv", (
    Column("period", blank=False),
    Column("label_nl", "text", blank=False, fix="give the period's Dutch label"),
    Column("label_en", "text", blank=False, fix="give the period's English label"),
    Column("month_min", "whole", blank=False, **_MONTH),
    Column("month_max", "whole", blank=False, **_MONTH),
    Column("definition", "text", blank=False, fix="say which measurement of each municipality the period holds"),
    Column("source_lines", "text", blank=False, fix=_SOURCE_LINES_FIX),
), key=("period",), doc="one row per period a concept is pooled in, with its month range")
CONCEPTS = Table("concepts.csv", (
    Column("concept", blank=False),
    Column("label_nl", "text", blank=False, fix="give the concept's Dutch label"),
    Column("label_en", "text", blank=False, fix="give the concept's English label"),
    Column("unit", blank=False, fix="the unit every mapped row is put on, e.g. percentage_points or scale_0_10"),
    Column("definition", "text", blank=False, fix="define the concept, with the source lines"),
    Column("source_lines", "text", blank=False, fix=_SOURCE_LINES_FIX),
), key=("concept",), doc="one row per LOEP concept")
HARMONISATION = Table("harmonisation.csv", (
    Column("municipality", blank=False),
    Column("outcome"),
    Column("horizon_months", "whole", low=0, high=MAX_HORIZON_MONTHS, what="horizon",
           fix=f"write the number of months between 0 and {MAX_HORIZON_MONTHS} (blank where the row has none)"),
    Column("concept"),
    Column("period"),
    Column("transform"),
    Column("role", "choice", blank=False, choices=HARMONISATION_ROLES, what="role",
           fix=f"use one of {', '.join(HARMONISATION_ROLES)}"),
    Column("reason", "text", blank=False, fix="say why the row is mapped (or not) this way, with the source lines"),
    Column("source_lines", "text", blank=False, fix=_SOURCE_LINES_FIX),
), key=("municipality", "outcome", "horizon_months"),
    doc="one row per municipality x outcome x horizon of estimates.csv: concept, period, transform, role")

TABLES = {t.file: t for t in (MUNICIPALITIES, ARMS, OUTCOMES, LEGENDS, ESTIMATES, SOURCES, SOURCE_PAGES,
                              PERIODS, CONCEPTS, HARMONISATION)}
#: Whole-number and numeric columns of any input file (a semicolon-separated file may write their decimals
#: with commas).
INT_COLUMNS = frozenset(c for t in TABLES.values() for c in t.of_kind("whole"))
NUMERIC_COLUMNS = frozenset(c for t in TABLES.values() for c in t.of_kind("whole", "number"))
#: Columns whose spaces are part of the text (no note when they are trimmed).
FREE_TEXT = frozenset(c for t in TABLES.values() for c in t.of_kind("text")) - {"printed", "significance", "mark"}


# --------------------------------------------------------------------------- #
# reading one cell
# --------------------------------------------------------------------------- #
class SchemaError(ValueError):
    """A cell that breaks the schema; the readers turn it into an ``InputError`` naming file, row and column."""


_PLAIN = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)$")
_DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+$")
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}([.,]\d{3})+$")
_EXPONENT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")
_LEADING_ZERO = re.compile(r"^([-+]?)0+(?=\d)")
_WHOLE_AS_FLOAT = re.compile(r"^[-+]?\d+\.0*$")
#: What no output can hold: control characters (NUL, bell, DEL, ...; tab, newline and carriage return are text), and
#: the characters XML 1.0 leaves out (surrogates, the noncharacters U+FFFE and U+FFFF), which made meta.xlsx a file
#: no spreadsheet opens
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def parse_number(text: str, whole: bool = False, notes: list | None = None, exponent: bool = False) -> float | int:
    """One numeric cell → float (or int when ``whole``); blank → NaN. Raises :class:`SchemaError` with the fix.

    Accepted: an optional sign, digits, a dot decimal. A whole number written ``16.0`` is read as 16 and a note
    is appended to ``notes``. Refused with the fix: decimal comma, thousands separator, percent sign, exponent
    (unless ``exponent``), underscore, leading zero, any other text, and a fraction in a whole-number column.
    """
    if text == "":
        return math.nan
    if whole and _THOUSANDS.match(text) and not _WHOLE_AS_FLOAT.match(text):
        raise SchemaError(f"{text!r} has a thousands separator; write {re.sub('[.,]', '', text)!r}")
    if exponent and _EXPONENT.match(text):  # allowed where numbers come from software (meta pool's yi, vi)
        value = float(text)
        if not math.isfinite(value):
            raise SchemaError(f"{text!r} is not a finite number; write a finite number")
        return value
    if not _PLAIN.match(text):
        if _DECIMAL_COMMA.match(text):
            raise SchemaError(f"{text!r} uses a decimal comma; write {text.replace(',', '.')!r}")
        if _THOUSANDS.match(text):
            raise SchemaError(f"{text!r} has a thousands separator; write {re.sub('[.,]', '', text)!r}")
        if text.endswith("%"):
            raise SchemaError(f"{text!r} has a percent sign; write the number alone and state the unit in the unit "
                              "column")
        if "_" in text:
            raise SchemaError(f"{text!r} has an underscore, which is no digit; write {text.replace('_', '.')!r} "
                              "if that is the printed number")
        if re.match(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$", text):
            raise SchemaError(f"{text!r} is written with an exponent; write the number as printed, "
                              f"e.g. {float(text):.10g}" if math.isfinite(float(text)) else
                              f"{text!r} is not a finite number; write the number as printed")
        if text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise SchemaError(f"{text!r} is not a finite number; write a finite number or leave it blank")
        raise SchemaError(f"{text!r} is not a number; write a number with a dot decimal, or leave it blank")
    if _LEADING_ZERO.match(text):
        fixed = _LEADING_ZERO.sub(r"\1", text)
        raise SchemaError(f"{text!r} starts with a 0 before another digit; write {fixed!r} if that is the printed "
                          "number")
    value = float(text)
    if whole:
        if value != int(value):
            raise SchemaError(f"{text!r} must be a whole number; write it without decimals, or leave the cell blank")
        if not _WHOLE_AS_FLOAT.match(text) and "." in text:
            raise SchemaError(f"{text!r} must be a whole number; write it without decimals")
        if "." in text and notes is not None:
            notes.append(f"{text!r} read as {int(value)}")
        return int(value)
    return value


def check_text(text: str) -> None:
    """Refuse control characters (NUL, ...) and the noncharacters XML leaves out in a text cell (:data:`CONTROL`):
    no output can hold them."""
    m = CONTROL.search(text)
    if m:
        c = m.group(0)
        kind = "noncharacter" if c >= "\ufffe" else "lone surrogate" if c >= "\ud800" else "control character"
        raise SchemaError(f"the cell holds a {kind} ({m.group(0)!r}, at position {m.start() + 1}) that no output "
                          "can store; delete it (retype the cell)")


def check_cell(column: Column, text: str, notes: list | None = None):
    """Validate one cell of ``column``; returns the parsed value (float/int for numbers, else the text)."""
    if text == "":
        if not column.blank:
            raise SchemaError(f"{column.what} is blank; {column.fix}")
        return math.nan if column.kind in ("number", "whole") else text
    if column.kind == "text":
        check_text(text)
        return text
    if column.kind in ("code", "choice"):
        check_text(text)
        if column.kind == "choice" and text not in column.choices:
            raise SchemaError(f"unknown {column.what} {text!r}; {column.fix}")
        return text
    value = parse_number(text, whole=column.kind == "whole", notes=notes)
    if not column.in_range(value):
        raise SchemaError(f"{column.what} {text} must be {column.bounds()}; {column.fix}")
    if column.choices and not any(math.isclose(value, c, rel_tol=0, abs_tol=1e-12) for c in column.choices):
        raise SchemaError(f"{column.what} {text} is not one a legend can have; {column.fix}")
    return value


# --------------------------------------------------------------------------- #
# the printed token
# --------------------------------------------------------------------------- #
_TOKEN = re.compile(r"^(?P<num>[-+]?(?:--)?[\dl]*[.,]?[\dl]+)(?P<pct>%?)(?P<mark>\*{0,3}|~|\*{0,3}\d\))$")


@dataclass(frozen=True)
class Printed:
    """A printed token read as the transcription conventions write it (``inputs/README.md``)."""

    number: float
    decimals: int
    percent: bool
    mark: str

    @property
    def half_unit(self) -> float:
        """Half a unit of the last printed decimal, the rounding error of the printed number: 0.5 · 10^−decimals
        (``-0,11*`` → 0.005, ``12`` → 0.5)."""
        return 0.5 * 10.0 ** -self.decimals


def parse_printed(token: str) -> Printed | None:
    """Read a printed token: ``-0,10*`` → −0.10 with mark ``*``; ``4.2%*`` → 4.2, percent, ``*``; ``4.291)`` →
    4.29 with footnote mark ``1)``; the source's typos ``--.67`` (−0.67) and ``.7l`` (0.71) as in the seed
    text. None when the token is not a number (then it cannot be compared)."""
    m = _TOKEN.match(token.strip().replace("\u2212", "-"))
    if not m:
        return None
    num = m["num"].replace("--", "-").replace("l", "1").replace(",", ".")
    try:
        value = float(num)
    except ValueError:
        return None
    decimals = len(num.split(".", 1)[1]) if "." in num else 0
    return Printed(value, decimals, m["pct"] == "%", m["mark"])


__all__ = [
    "COMPONENTS", "TREATMENT_COMPONENTS", "CODE", "SIGNIFICANCE_MARKS", "FOOTNOTE_MARK", "P_THRESHOLDS",
    "MAX_HORIZON_MONTHS", "Unit", "UNITS",
    "SHARE_UNITS", "unit", "Column", "Table", "MUNICIPALITIES", "ARMS", "OUTCOMES", "LEGENDS", "ESTIMATES",
    "SOURCE_FIELDS", "SOURCES", "SOURCE_PAGES", "HARMONISATION_ROLES", "PERIODS", "CONCEPTS", "HARMONISATION", "unit_names",
    "TABLES", "INT_COLUMNS", "NUMERIC_COLUMNS", "FREE_TEXT", "SchemaError", "parse_number", "check_text",
    "check_cell", "Printed", "parse_printed",
]

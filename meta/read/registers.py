"""The registers: municipalities, arms, outcomes, significance legends, periods, concepts and the harmonisation.

Each loader reads its file with :func:`meta.read.reader.read_csv_strict`, checks every cell against its
declaration in :mod:`meta.read.schema`, then what a register needs beyond its cells (codes of another register,
keys, ranges that depend on two cells), and returns the DataFrame; or raises :class:`meta.errors.InputError`
naming file, row, column and the fix.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from meta.errors import InputError
from meta.read import schema
from meta.read.reader import check_codes, check_unique, read_csv_strict, validate_table, where
from meta.read.schema import COMPONENTS, FOOTNOTE_MARK, SIGNIFICANCE_MARKS

#: Scale transforms of ``harmonisation.csv``: name → (outcome unit, concept unit, factor). A difference d on the
#: outcome's scale becomes factor·d on the concept's scale; ``yi``, ``sei``, ``sei_low`` and ``sei_high`` alike. A
#: difference on 1–10 maps onto 0–10 by (x − 1)·10/9, so differences scale by 10/9; a 1–5 item by (x − 1)·10/4.
TRANSFORMS = {
    "identity": (None, None, 1.0),
    "scale_1_10_to_0_10": ("scale_1_10", "scale_0_10", 10 / 9),
    "scale_1_5_to_0_10": ("scale_1_5", "scale_0_10", 10 / 4),
}
_SOURCE_LINES = re.compile(r"^\d{3}:\d+(-\d+)?(;\d{3}:\d+(-\d+)?)*$")


def load_municipalities(path: Path) -> pd.DataFrame:
    """The municipality register: the one list of municipalities (a new one is added by adding a row)."""
    frame = read_csv_strict(path, schema.MUNICIPALITIES.required)
    frame = validate_table(frame, schema.MUNICIPALITIES, path)
    bad = [(m, r) for m, r in zip(frame["municipality"], frame["input_row"]) if not schema.CODE.fullmatch(m)]
    if bad:
        m, r = bad[0]
        raise InputError(f"{where(path, r, 'municipality')}: code {m!r} must be lower-case letters, digits or _ "
                         f"(e.g. {re.sub('[^a-z0-9_]', '_', m.lower())!r}); it names the municipality in every file")
    check_unique(frame, path, ("municipality",), "keep one row per municipality")
    return frame


def load_arms(path: Path, municipalities: pd.DataFrame) -> pd.DataFrame:
    """The arms of each municipality, with their components (0/1 columns :data:`meta.read.schema.COMPONENTS`)
    as integers and ``randomised`` as a bool; an arm other than a reference group needs a component."""
    frame = read_csv_strict(path, schema.ARMS.required)
    frame = validate_table(frame, schema.ARMS, path, convert=("n_randomised",))
    check_codes(frame, path, "municipality", set(municipalities["municipality"]), "municipality",
                "add it to municipalities.csv or fix the code")
    check_unique(frame, path, ("municipality", "arm"), "keep one row per municipality and arm")
    for col in COMPONENTS:
        frame[col] = frame[col].astype(int)
    frame["randomised"] = frame["randomised"] == "true"
    no_component = (frame[list(COMPONENTS)].sum(axis=1) == 0) & (frame["arm_class"] != "reference")
    if no_component.any():
        row = int(frame.loc[no_component, "input_row"].iloc[0])
        raise InputError(
            f"{where(path, row, 'exemption')}: arm has no components; set at least one of "
            f"{', '.join(COMPONENTS)} to 1"
        )
    return frame


def load_outcomes(path: Path) -> pd.DataFrame:
    """The outcome codes with their unit (:func:`meta.read.schema.unit`) and, for a bounded scale, both ends."""
    frame = read_csv_strict(path, schema.OUTCOMES.required)
    frame = validate_table(frame, schema.OUTCOMES, path)
    check_unique(frame, path, ("outcome",), "keep one row per outcome code")
    _check_units(frame, path)
    if {"scale_min", "scale_max"} <= set(frame.columns):
        for lo, hi, row in zip(frame["scale_min"], frame["scale_max"], frame["input_row"]):
            if (lo == "") != (hi == ""):
                col = "scale_min" if lo == "" else "scale_max"
                raise InputError(f"{where(path, row, col)}: give both scale_min and scale_max, or neither "
                                 "(blank for an unbounded outcome)")
            if lo != "" and float(lo) >= float(hi):
                raise InputError(f"{where(path, row, 'scale_max')}: scale_max {hi} must be above scale_min {lo}; "
                                 "give the lowest and highest value one person's outcome can take")
    return frame


def _check_units(frame: pd.DataFrame, path: Path) -> None:
    for value, row in zip(frame["unit"], frame["input_row"]):
        if schema.unit(value) is None:
            raise InputError(f"{where(path, row, 'unit')}: unknown unit {value!r}; use one of {schema.unit_names()}")


def load_legends(path: Path) -> pd.DataFrame:
    """The significance legends: per source table and mark, the p band the mark stands for (p_at_least ≤ p <
    p_below); a mark is one of :data:`meta.read.schema.SIGNIFICANCE_MARKS` or a footnote mark."""
    frame = read_csv_strict(path, schema.LEGENDS.required)
    for mark, row in zip(frame["mark"], frame["input_row"]):
        if mark not in SIGNIFICANCE_MARKS and not FOOTNOTE_MARK.match(mark):
            raise InputError(f"{where(path, row, 'mark')}: unknown significance mark {mark!r}; "
                             "use one of ~ * ** *** (or a footnote mark such as 1)), blank for 'no mark'")
    frame = validate_table(frame, schema.LEGENDS, path, convert=("p_below", "p_at_least", "legend_line"))
    for r in frame.itertuples(index=False):
        if not (math.isnan(r.p_below) or math.isnan(r.p_at_least)) and not r.p_at_least < r.p_below:
            raise InputError(f"{where(path, r.input_row, 'p_at_least')}: the band p >= {r.p_at_least:g} and "
                             f"p < {r.p_below:g} is empty; check both thresholds against the legend")
    check_unique(frame, path, ("source_file", "source_table", "mark"), "keep one row per table and mark")
    return frame


def load_periods(path: Path) -> pd.DataFrame:
    """``periods.csv``: one row per period, with the month range (months since the start) it covers."""
    frame = validate_table(read_csv_strict(path, schema.PERIODS.required), schema.PERIODS, path,
                           convert=("month_min", "month_max"))
    check_unique(frame, path, ("period",), "keep one row per period")
    for lo, hi, row in zip(frame["month_min"], frame["month_max"], frame["input_row"]):
        if lo > hi:
            raise InputError(f"{where(path, row, 'month_max')}: month_max {hi} is below month_min {lo}; give the "
                             "first and last month of the period")
    _check_source_lines(frame, path)
    return frame


def load_concepts(path: Path) -> pd.DataFrame:
    """``concepts.csv``: one row per LOEP concept, with its labels and the unit effects are pooled in."""
    frame = validate_table(read_csv_strict(path, schema.CONCEPTS.required), schema.CONCEPTS, path)
    check_unique(frame, path, ("concept",), "keep one row per concept")
    _check_units(frame, path)
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
    frame = validate_table(read_csv_strict(path, schema.HARMONISATION.required), schema.HARMONISATION, path)
    check_codes(frame, path, "municipality", set(municipalities["municipality"]), "municipality",
                f"use one of {', '.join(municipalities['municipality'])}")
    _check_source_lines(frame, path)
    unit_of = dict(zip(outcomes["outcome"], outcomes["unit"]))
    concept_unit = dict(zip(concepts["concept"], concepts["unit"]))
    months = {p: (lo, hi) for p, lo, hi in zip(periods["period"], periods["month_min"], periods["month_max"])}
    for r in frame.itertuples(index=False):
        at = lambda col: where(path, r.input_row, col)  # noqa: E731
        _check_mapping_codes(r, at, unit_of, concept_unit, months)
        if r.role in ("primary", "sensitivity"):
            _check_mapping(r, at, unit_of[r.outcome], concept_unit[r.concept], months[r.period])
    keyed = frame[frame["outcome"] != ""]
    check_unique(keyed, path, ("municipality", "outcome", "horizon_months"),
                 "keep one row per municipality, outcome and horizon")
    primary = frame[frame["role"] == "primary"]
    check_unique(primary, path, ("municipality", "concept", "period"),
                 "one primary row per municipality, concept and period; make the other a sensitivity row")
    return frame


def _check_mapping_codes(r, at, unit_of: dict, concept_unit: dict, months: dict) -> None:
    """One harmonisation row: its outcome, concept and period are known, and filled exactly as its role needs."""
    maps = r.role in ("primary", "sensitivity")
    if r.role == "not_reported":
        if r.outcome or r.horizon_months or r.transform:
            raise InputError(f"{at('outcome')}: a not_reported row names no outcome, horizon or transform; "
                             "clear them (it says which concept and period a municipality has no number for)")
    elif r.outcome not in unit_of:
        raise InputError(f"{at('outcome')}: unknown outcome {r.outcome!r}; use a code of outcomes.csv")
    if maps or r.role == "not_reported":
        for col, known, fix in (("concept", concept_unit, "concepts.csv"), ("period", months, "periods.csv")):
            if getattr(r, col) not in known:
                raise InputError(f"{at(col)}: unknown {col} {getattr(r, col)!r}; use one of {fix} "
                                 f"({', '.join(known)})")
    else:
        for col in ("concept", "period", "transform"):
            if getattr(r, col):
                raise InputError(f"{at(col)}: an unmapped row maps nothing; clear {col}, or set role to "
                                 "primary or sensitivity")


def _check_mapping(r, at, have: str, want: str, period_months: tuple) -> None:
    """A mapping row (primary, sensitivity): its transform leads from unit ``have`` to unit ``want``, and its
    horizon lies in its period's months."""
    if r.transform not in TRANSFORMS:
        raise InputError(f"{at('transform')}: unknown transform {r.transform!r}; use one of "
                         f"{', '.join(TRANSFORMS)}")
    source, target, _ = TRANSFORMS[r.transform]
    if (source is None and have != want) or (source is not None and (have, want) != (source, target)):
        fits = [n for n, (a, b, _) in TRANSFORMS.items() if (a, b) == (have, want) or (a is None and have == want)]
        raise InputError(f"{at('transform')}: {r.transform} does not lead from the outcome's unit {have!r} to "
                         f"the concept's unit {want!r}; use {' or '.join(fits) or 'another concept'}")
    if r.horizon_months == "":
        raise InputError(f"{at('horizon_months')}: a mapped row needs the horizon it maps; write the months "
                         "since the start, or set role to unmapped")
    lo, hi = period_months
    if not lo <= int(r.horizon_months) <= hi:
        raise InputError(f"{at('horizon_months')}: horizon {r.horizon_months} is outside period {r.period} "
                         f"({lo}-{hi} months in periods.csv); choose the period that covers it")


def _check_source_lines(frame, path):
    """Refuse a ``source_lines`` cell that is not a list of seed lines (``002:349;004:2044-2049``)."""
    for value, row in zip(frame["source_lines"], frame["input_row"]):
        if value and not _SOURCE_LINES.match(value):
            raise InputError(f"{where(path, row, 'source_lines')}: {value!r} is not a list of seed lines; write "
                             "e.g. 002:349;004:2044-2049 (seed number, colon, line or line range; ';' between)")


# --------------------------------------------------------------------------- #
# the source documents
# --------------------------------------------------------------------------- #
_LINES = re.compile(r"^\d+(-\d+)?(; ?\d+(-\d+)?)*$")
#: Kinds of a ``source_pages.csv`` row (declared in :data:`meta.read.schema.SOURCE_PAGES`).
SOURCE_PAGE_KINDS = schema.SOURCE_PAGES.column("kind").choices


def load_sources(path: Path, estimates: pd.DataFrame | None = None) -> pd.DataFrame:
    """Load ``sources.csv`` (one row per source document) and check that it covers ``estimates``.

    Every field is copied as printed and names the line(s) where it is printed (``<field>_line``: ``7`` or
    ``7-8; 15``). A value the text file does not print may be supplied in [brackets], with no line, and the
    note says on what evidence. Refused: a printed value without its line, a line without a value, a
    bracketed value with a line, a year that is not four digits, a URL that is not http(s), a duplicated
    file, and a ``source_file`` of ``estimates`` with no row here.
    """
    frame = read_csv_strict(path, schema.SOURCES.required)
    validate_table(frame, schema.SOURCES, path)
    check_unique(frame, path, ("source_file",), "keep one row per source file")
    for r in frame.itertuples(index=False):
        at = lambda col: where(path, r.input_row, col)  # noqa: E731
        for f in schema.SOURCE_FIELDS:
            _check_source_field(f, getattr(r, f), getattr(r, f"{f}_line"), at)
    if estimates is not None and len(estimates):
        known = set(frame["source_file"])
        for source, row in zip(estimates["source_file"], estimates["input_row"]):
            if source not in known:
                raise InputError(f"{path}: no row for source_file {source!r}, which estimates.csv row {row} cites; "
                                 "add a row with its title, authors, year and publisher as printed")
    return frame


def _check_source_field(f: str, value: str, lines: str, at) -> None:
    """One field of a ``sources.csv`` row: printed with its line(s), or [supplied] without; a year is four digits
    and a URL starts with http(s)://."""
    supplied = value.startswith("[") and value.endswith("]")
    if lines and not _LINES.match(lines):
        raise InputError(f"{at(f + '_line')}: {lines!r} is not a line number or list of lines; write e.g. "
                         "7, 7-8 or 10-11; 15")
    if value == "" and lines:
        raise InputError(f"{at(f)}: blank, but {f}_line says it is printed on line {lines}; copy it from "
                         "there, or clear the line")
    if value and not supplied and not lines:
        raise InputError(f"{at(f + '_line')}: {f} {value!r} has no line; give the line where the text file "
                         "prints it, or write the value in [brackets] if it is supplied and say why in note")
    if supplied and lines:
        raise InputError(f"{at(f)}: {value!r} is in [brackets] (supplied, not printed) but has a line; "
                         "remove the brackets if it is printed there, or clear the line")
    bare = value.strip("[]")
    if f == "year" and value and not re.fullmatch(r"\d{4}", bare):
        raise InputError(f"{at(f)}: year {value!r} must be four digits (or [four digits] if supplied)")
    if f == "url" and value and not re.match(r"^https?://", bare):
        raise InputError(f"{at(f)}: {value!r} is not a web address; write it with http:// or https://")


def load_source_pages(path: Path, sources: pd.DataFrame) -> pd.DataFrame:
    """Load ``source_pages.csv``: lines of a source text whose printed page is known, and how.

    ``page_number``: the line is a page number printed at the foot of page ``page``. ``toc_heading``: the
    line is a heading the table of contents (at ``toc_line``) puts on page ``page``. Per source, pages must
    not decrease as lines increase.
    """
    frame = read_csv_strict(path, schema.SOURCE_PAGES.required)
    check_codes(frame, path, "source_file", set(sources["source_file"]), "source file",
                "add it to sources.csv or fix the name")
    check_codes(frame, path, "kind", SOURCE_PAGE_KINDS, "kind", f"use {' or '.join(SOURCE_PAGE_KINDS)}")
    validate_table(frame, schema.SOURCE_PAGES, path)
    for r in frame.itertuples(index=False):
        if r.line == "" or r.page == "":
            raise InputError(f"{where(path, r.input_row, 'line' if r.line == '' else 'page')}: blank; every row "
                             "needs the line and its page")
        if (r.kind == "toc_heading") != (r.toc_line != ""):
            raise InputError(f"{where(path, r.input_row, 'toc_line')}: a toc_heading row needs the line of its "
                             "contents entry, a page_number row none")
    frame = validate_table(frame, schema.SOURCE_PAGES, path, convert=("line", "page", "toc_line"))
    check_unique(frame, path, ("source_file", "line"), "keep one row per line")
    for source, rows in frame.groupby("source_file", sort=False):
        rows = rows.sort_values("line")
        pages = rows["page"].astype(int).to_numpy()
        bad = [i for i in range(1, len(pages)) if pages[i] < pages[i - 1]
               or (rows["kind"].iat[i] == rows["kind"].iat[i - 1] == "page_number" and pages[i] == pages[i - 1])]
        if bad:
            r = rows.iloc[bad[0]]
            raise InputError(f"{where(path, int(r['input_row']), 'page')}: page {r['page']} at line {r['line']} of "
                             f"{source} comes after page {pages[bad[0] - 1]} at an earlier line; check both rows")
    return frame

"""A cell of the report (outcome or concept × period × arm class × unit): its key, anchor, order and words.

Shared by the report's sections (:mod:`meta.present.report`, :mod:`meta.present.report_sources`) and the workbook.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter

import pandas as pd

from meta.analyses.tables import cell_order as tables_cell_order, mark_p_ranges as tables_mark_p_ranges
from meta.cells import CELL_COLUMNS
from meta.i18n import arm_class_label, components_label, fmt_p_range, period_label, t

#: What :func:`once` worked out inside the active :func:`sharing` block ({key: value}; empty list outside one).
_SHARED: list[dict] = []


@contextlib.contextmanager
def sharing():
    """Inside the block, :func:`once` works each thing out once: the report's sections and the workbook's sheets read
    the same pooled rows in cell order, the marks' p ranges and the simulation summary (each was worked out two to
    four times per run). A block inside another uses the outer one's. What :func:`once` returns is shared: read it,
    do not change it."""
    if _SHARED:
        yield
        return
    _SHARED.append({})
    try:
        yield
    finally:
        _SHARED.pop()


def once(key, make):
    """``make()``, worked out once per ``key`` inside :func:`sharing` (at every call outside it). A key naming one
    run's results holds ``id(results)``: the results are alive while the block is."""
    if not _SHARED:
        return make()
    memo = _SHARED[-1]
    if key not in memo:
        memo[key] = make()
    return memo[key]


def cell_order(results, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` ordered as the ministry reads: arm class, then outcome (plan order), horizon (see tables); the pooled
    table's order is worked out once (:func:`once`)."""
    if frame is results.pooled:
        return once(("pooled in cell order", id(results)), lambda: tables_cell_order(frame, results.plan))
    return tables_cell_order(frame, results.plan)


def pooled_rows(results) -> list[dict]:
    """The pooled table's rows in cell order (:func:`cell_order`) as dicts (:func:`records`), worked out once
    (:func:`once`); [] when nothing is pooled."""
    return once(("pooled rows", id(results)), lambda: records(cell_order(results, results.pooled))
                if len(results.pooled) else [])


def records(frame: pd.DataFrame) -> list[dict]:
    """``frame``'s rows as {column: value}, read column by column: the Python values ``iterrows`` gives (a float, an
    int, a text, ``pd.NA``) without a Series per row (or ``to_dict``'s lookups per column)."""
    columns = list(frame.columns)
    return [dict(zip(columns, values)) for values in zip(*(col.tolist() for _, col in frame.items()))]


def row_anchor(r) -> str:
    """The HTML id of a Kerntabel row: ``kern-<outcome>-<horizon>-<arm class>`` (the cell columns but the unit)."""
    parts = [str(v) for c, v in zip(CELL_COLUMNS, cell_key(r)) if c != "unit_h"]
    return re.sub(r"[^a-z0-9-]+", "-", "kern-" + "-".join(parts).lower())


def _whole(v):
    return int(v) if isinstance(v, (int, float)) and float(v).is_integer() else v


def cell_key(r) -> tuple:
    """The cell of a pooled or study row (:data:`meta.cells.CELL_COLUMNS`), whole numbers as ``int``."""
    return tuple(_whole(r[c]) for c in CELL_COLUMNS)


def cell_keys(frame: pd.DataFrame) -> list[tuple]:
    """:func:`cell_key` of every row of ``frame``, in order (read column by column, not row by row)."""
    return [tuple(_whole(v) for v in values) for values in zip(*(frame[c].tolist() for c in CELL_COLUMNS))]


def cell_rows(frame: pd.DataFrame) -> dict:
    """{cell: positions of its rows in ``frame``, in order}; a row with a missing cell value is in no cell (as in
    a groupby or an equality mask)."""
    out = {}
    for i, key in enumerate(cell_keys(frame)):
        if not any(isinstance(v, float) and v != v for v in key):
            out.setdefault(key, []).append(i)
    return out


def municipality_names(results) -> dict:
    """{municipality code: its name}."""
    return dict(zip(results.inputs.municipalities["municipality"], results.inputs.municipalities["name"]))


def period_text(results, period: str, lang: str) -> str:
    """A cell's period in words (:func:`meta.i18n.period_label` with the run's period register)."""
    return period_label(period, results.inputs.periods, lang)


class PeriodTexts(dict):
    """{period: :func:`period_text`}, each period looked up in the register once (a section's rows share a few
    periods): ``PeriodTexts(results, lang)[period]``."""

    def __init__(self, results, lang: str):
        super().__init__()
        self.results, self.lang = results, lang

    def __missing__(self, period: str) -> str:
        self[period] = words = period_text(self.results, period, self.lang)
        return words


def simulation_run(path):
    """:func:`meta.simulate.summary.read_summary` of ``path`` (the simulation study the report quotes), read once
    (:func:`once`)."""
    from meta.simulate.summary import read_summary

    return once(("simulation summary", str(path)), lambda: read_summary(path))


def mark_p_ranges(results) -> dict:
    """``{input_row: (p_at_least, p_below, mark)}`` for study rows whose SE came from a mark (see tables; worked out
    once: :func:`once`)."""
    return once(("mark p ranges", id(results)), lambda: tables_mark_p_ranges(results.studies, results.inputs.legends))


def mark_p_texts(results, lang: str = "en") -> dict:
    """For single-study cells whose SE came from a significance mark: the p-value range the mark prints, as text
    (worked out once per language: :func:`once`)."""
    return once(("mark p texts", id(results), lang), lambda: _mark_p_texts(results, lang))


def _mark_p_texts(results, lang: str) -> dict:
    ranges = mark_p_ranges(results)
    out = {}
    studies = results.studies
    marked = studies["input_row"].astype(int).isin(list(ranges))  # only rows with a mark, the columns read
    for s in records(studies.loc[marked, [*CELL_COLUMNS, "input_row"]]):
        if int(s["input_row"]) in ranges:
            at_least, below, mark = ranges[int(s["input_row"])]
            out[cell_key(s)] = (
                fmt_p_range(at_least, below, lang) + (f" ({mark})" if mark else ""))
    return out


#: Past this many municipalities the report counts instead of naming, and leaves the per-municipality tables
#: (side by side, sources) to side_by_side.csv, studies.csv and the workbook, so a national roll-out
#: (~340 municipalities) still gives a report a person can read (and a browser can open).
REPORT_MAX_MUNICIPALITIES = 50


#: Past this many pooled cells the 'read this first' box counts them and points to the headline table instead of
#: naming each one: at 60 SYNTHETIC municipalities it named all 114, a wall of text above the findings.
REPORT_MAX_LISTED_CELLS = 12


def cell_arms(results, lang: str) -> dict:
    """{cell: [(municipality name, its arm's components in words), …]} from the study rows (``arm_components``,
    from ``inputs/arms.csv``), worked out once per language (:func:`once`)."""
    return once(("cell arms", id(results), lang), lambda: _cell_arms(results, lang))


def _cell_arms(results, lang: str) -> dict:
    names, s = municipality_names(results), results.studies
    municipality, components = s["municipality"].tolist(), s["arm_components"].tolist()
    words_of = {c: components_label(c, lang) for c in set(components)}
    return {key: [(names[municipality[i]], words_of[components[i]]) for i in rows]
            for key, rows in cell_rows(s).items()}


def arms_text(arms: list, lang: str) -> str:
    """'Nijmegen: exemption + release …; Wageningen: exemption', or past the limit the municipalities counted per
    arm's components ('exemption: 51 municipalities'), in order of first appearance."""
    if len(arms) > REPORT_MAX_MUNICIPALITIES:
        counts = Counter(components for _, components in arms)
        return "; ".join(f"{components}: {t('n_municipalities', lang, n=n)}" for components, n in counts.items())
    return "; ".join(f"{name}: {components}" for name, components in arms)


def too_many(results) -> bool:
    """More municipalities than the report names one by one (:data:`REPORT_MAX_MUNICIPALITIES`)."""
    return len(results.inputs.municipalities) > REPORT_MAX_MUNICIPALITIES


def cell_texts(results, o: str, h: str, a: str, lang: str, label: dict, periods: PeriodTexts | None = None) -> dict:
    """The outcome, period and arm class of a cell in words (the first three columns of a cell table); ``periods``
    (:class:`PeriodTexts`) keeps the periods' words between a table's rows."""
    return dict(outcome=label.get(o, o), period=period_text(results, h, lang) if periods is None else periods[h],
                arm_class=arm_class_label(a, lang))


"""Where the report's numbers come from: which municipality has a number in which cell (coverage), each
municipality's harmonised estimate side by side, the source of every study row and the full references.

Past :data:`meta.present.report_cells.REPORT_MAX_MUNICIPALITIES` these sections count or point to the CSV files
instead of naming every municipality.
"""

from __future__ import annotations

import re

import pandas as pd
from markupsafe import Markup

from meta.analyses.tables import side_by_side
from meta.i18n import cell_labels, components_label, fmt_interval, fmt_num, printed_text, word, word_list, words
from meta.present import fewstudies_report as fsr
from meta.present.report_cells import PeriodTexts, cell_order, cell_texts, municipality_names, records, too_many
from meta.present.templating import render, text
from meta.read import sources

def _coverage_counts(results, lang: str) -> str:
    """Coverage past ``REPORT_MAX_MUNICIPALITIES``: per outcome × horizon × arm class, municipalities per status."""
    cov = results.coverage
    statuses = [s for s in ("transcribed", "derived-SE", "printed-no-SE", "not reported", "pending", "not applicable")
                if s in set(cov["status"])]
    counts = cov.groupby(["outcome_key", "period", "arm_class", "status"], sort=False).size()
    label, periods = cell_labels(results.inputs, lang), PeriodTexts(results, lang)
    rows = [{**cell_texts(results, o, h, a, lang, label, periods),
             "counts": [int(counts.get((o, h, a, st), 0)) for st in statuses]}
            for (o, h, a), _ in cov.groupby(["outcome_key", "period", "arm_class"], sort=False)]
    return render("coverage_counts.html.j2", lang, statuses=[word("status", st, lang) for st in statuses], rows=rows,
                  n=len(results.inputs.municipalities))


#: The CSS class of a coverage status.
STATUS_CSS = {"transcribed": "ok", "derived-SE": "derived", "pending": "pending", "not applicable": "na",
              "not reported": "notreported", "printed-no-SE": "printed"}
#: Statuses that show a cell in the coverage table: some municipality prints a number for it.
PRINTED = {"transcribed", "derived-SE", "printed-no-SE"}


def coverage_table(results, lang: str = "en") -> str:
    """Which municipality has a number in which cell (``templates/coverage.html.j2``), then where the pending
    municipalities' numbers live; cells in which no municipality has a number are counted, not shown."""
    if too_many(results):
        return _coverage_counts(results, lang)
    munis = list(results.inputs.municipalities["municipality"])
    label, periods = cell_labels(results.inputs, lang), PeriodTexts(results, lang)
    rows, hidden = [], 0
    for (o, h, a), st in _statuses_by_cell(results.coverage).items():
        if not set(st.values()) & PRINTED:
            hidden += 1
            continue
        rows.append({**cell_texts(results, o, h, a, lang, label, periods),
                     "statuses": [(STATUS_CSS.get(st[m], ""), word("status", st[m], lang)) for m in munis]})
    pend = results.inputs.municipalities
    pend = pend[pend["status"] == "pending"]
    col = "pending_where_nl" if lang == "nl" and "pending_where_nl" in pend else "pending_where"
    names = municipality_names(results)
    src, pages = results.inputs.sources, results.inputs.source_pages
    own, shared = shared_sentences([sources.cite_inline(r[col] or r["pending_where"], src, pages, lang)
                                    for _, r in pend.iterrows()])
    return render("coverage.html.j2", lang, munis=[names[m] for m in munis], rows=rows, hidden=hidden,
                  pending=list(zip(pend["name"], own)), shared=shared, n_pending=len(pend),
                  pending_names=word_list(pend["name"], lang),
                  printed_no_se=_printed_no_se(results, names, label, periods))


def _statuses_by_cell(cov) -> dict:
    """{(outcome_key, period, arm_class): {municipality: status}} of ``coverage.csv``, cells in order of first
    appearance, a municipality's last row standing; a row with a missing cell value is in no cell (as the groups of
    ``groupby(sort=False)``, read column by column instead of a frame per cell)."""
    out: dict = {}
    for key, m, status in zip(zip(*(cov[c].tolist() for c in ("outcome_key", "period", "arm_class"))),
                              cov["municipality"].tolist(), cov["status"].tolist()):
        if not any(pd.isna(v) for v in key):
            out.setdefault(key, {})[m] = status
    return out


def _sentences(paragraph: str) -> list[str]:
    """A paragraph split after '.', '?' or '!' followed by a space and a capital or quote (joined again by spaces)."""
    return [x for x in re.split(r"(?<=[.?!])\s+(?=[A-Z'‘\"(])", paragraph.strip()) if x]


def shared_sentences(paragraphs: list[str]) -> tuple[list[str], str]:
    """(each paragraph without the sentences all of them share, those shared sentences once).

    The pending municipalities' notes (``municipalities.csv``, ``pending_where``) repeat the same sentences; the
    report prints them once under the list. With fewer than two paragraphs nothing is shared.
    """
    split = [_sentences(p) for p in paragraphs]
    if len(split) < 2:
        return list(paragraphs), ""
    common = [x for x in split[0] if all(x in other for other in split[1:])]
    return [" ".join(x for x in s if x not in common) for s in split], " ".join(common)


def _printed_no_se(results, names: dict, label: dict, periods: PeriodTexts) -> list[tuple[str, str]]:
    """[(municipality, 'gezondheid (2 jaar), …')]: the cells a municipality prints an estimate for from which no
    standard error can be derived (status ``printed-no-SE`` of ``coverage.csv``), each outcome and period once
    (``periods``: the periods in words)."""
    cov = results.coverage
    cov = cov[cov["status"] == "printed-no-SE"]
    out = []
    for m, g in cov.groupby("municipality", sort=False):
        seen: dict = {}  # outcome -> its periods in words, in order
        for o, h in zip(g["outcome_key"], g["period"]):
            seen.setdefault(o, dict.fromkeys([]))[periods[h]] = None
        out.append((names.get(m, m), "; ".join(f"{label.get(o, o)} ({', '.join(ps)})" for o, ps in seen.items())))
    return out


def side_by_side_table(results, lang: str = "en") -> str:
    """Each municipality's harmonised estimate per cell (``templates/side_by_side.html.j2``)."""
    if too_many(results):
        return _in_files("what_side_by_side", "side_by_side.csv", results, lang)
    sbs = cell_order(results, side_by_side(results.studies, results.inputs.municipalities, results.plan.level, lang))
    munis = list(results.inputs.municipalities["municipality"])
    label, periods = cell_labels(results.inputs, lang), PeriodTexts(results, lang)
    rows = [{**cell_texts(results, r["outcome_key"], r["period"], r["arm_class"], lang, label, periods),
             "unit": fsr.unit_short(r["unit_h"], lang),
             "cells": [("pending" if r[m] == "pending" else "num", word("status", r[m], lang)) for m in munis]}
            for r in records(sbs)]
    return render("side_by_side.html.j2", lang, munis=[municipality_names(results)[m] for m in munis], rows=rows)


def _in_files(what: str, files: str, results, lang: str) -> str:
    """Past ``REPORT_MAX_MUNICIPALITIES``: where the table ``what`` (a catalogue key) is instead."""
    n = len(results.inputs.municipalities)
    return Markup("<p>") + text("in_files", lang, what=text(what, lang), files=files, n=n) + Markup("</p>")


def _citation(src, pages, r, lang: str) -> dict:
    """The citation of a study row, its page (range) kept on one line, and the line of the document's text file for
    whoever checks the transcription (when the citation does not end in that line already; the file is named in
    the reference list)."""
    cite = sources.citation(src, pages, r["source_file"], r["source_table"], r["source_line"], lang)
    line = f"{sources.WORDS[lang]['line']} {int(r['source_line'])}"
    where = sources.page_text(pages, r["source_file"], int(r["source_line"]), lang)
    page = cite.endswith(where)  # the page (range) on one line: 'p. 17–23', never 'p. 17–' / '23'
    return dict(cite_text=cite[: -len(where)] if page else cite, cite_page=where if page else None,
                cite_line=None if cite.endswith(line) else int(r["source_line"]))


def sources_table(results, lang: str = "en") -> str:
    """Every study row with its source (``templates/sources.html.j2``)."""
    if too_many(results):
        return _in_files("what_sources", "studies.csv", results, lang)
    src, pages = sources.source_rows(results.inputs.sources), sources.page_anchors(results.inputs.source_pages)
    names, arms = municipality_names(results), results.inputs.arms
    arm_name = dict(zip(zip(arms["municipality"], arms["arm"]), arms["name_nl" if lang == "nl" else "name_en"]))
    label = cell_labels(results.inputs, lang)
    rows = [dict(
        row=int(r["input_row"]), municipality=names.get(r["municipality"], r["municipality"]),
        arm=arm_name.get((r["municipality"], r["arm"])) or r["arm"],
        components=components_label(r["arm_components"], lang), outcome=label.get(r["outcome"], r["outcome"]),
        horizon=int(r["horizon_months"]), model=words("model", r["model"], lang), printed=printed_text(r["printed"], r["significance"], lang),
        yi=fmt_num(r["yi"], 2, lang), sei=fmt_num(r["sei"], 2, lang),
        bracket="" if r["sei_low"] == r["sei_high"] else " " + fmt_interval(r["sei_low"], r["sei_high"], 2, lang),
        se_method=words("se_method", r["se_method"], lang), **_citation(src, pages, r, lang))
        for r in records(results.studies)]
    return render("sources.html.j2", lang, rows=rows)


def references_section(results, lang: str = "en") -> str:
    """The full reference of every source document (``inputs/sources.csv``) and how its pages are cited."""
    src = results.inputs.sources
    refs = [] if src is None else [
        dict(file=r["source_file"], label=r["label_nl" if lang == "nl" else "label_en"],
             reference=sources.reference(r, lang)) for _, r in src.iterrows()]  # the reference as printed
    return render("references.html.j2", lang, refs=refs)


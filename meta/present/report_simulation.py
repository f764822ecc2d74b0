"""The committed simulation study in the report (``meta simulate``'s summary, quoted, not rerun): the Dutch report
generates its table from the numbers (:func:`simulation_table`), the English one quotes the study's own (English)
verdict (:func:`simulation_verdict`). Used by :func:`meta.present.report.render_report`.
"""

from __future__ import annotations

import re
from pathlib import Path

from markupsafe import Markup

from meta.i18n import fmt_g, fmt_num
from meta.present.templating import esc, render
from meta.simulate.settings import SIMULATION_SUMMARY
from meta.present.report_cells import simulation_run


def _markdown_inline(line: str) -> Markup:
    """The inline markup of :mod:`meta.simulate.words` (``**bold**``, ```code```) as escaped HTML."""
    html = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", str(esc(line)))
    return Markup(re.sub(r"`(.+?)`", r"<code translate='no'>\1</code>", html))


def simulation_table(summary_path: Path = SIMULATION_SUMMARY, lang: str = "nl") -> str:
    """The simulation study's main result in ``lang``, generated from its numbers: the results table the JSON summary
    names (``simulation_results.csv``, read with :func:`meta.simulate.summary.read_summary`).

    Coverage of the nominal interval for the mean effect and its median width, for REML with Hartung-Knapp and
    with Wald (z) intervals, printed standard errors, per between-municipality SD τ and number of municipalities k.
    """
    if not Path(summary_path).exists():
        return render("simulation_table.html.j2", lang, rows=None)
    r = simulation_run(summary_path).results
    r = r[(r["se_policy"] == "reported") & (r["method"] == "REML") & r["test"].isin(["knha", "z"])]
    rows = [dict(tau=fmt_g(tau, lang), k=int(k), hk_coverage=fmt_num(100 * hk_cov, 1, lang),
                 hk_width=fmt_num(hk_width, 0, lang), z_coverage=fmt_num(100 * z_cov, 1, lang),
                 z_width=fmt_num(z_width, 0, lang))
            for tau, k, hk_cov, hk_width, z_cov, z_width in _by_tau_and_k(r)]
    hk, wz = r[r["test"] == "knha"], r[r["test"] == "z"]
    k2 = hk[hk["k"] == hk["k"].min()]
    pct = lambda x: fmt_num(100 * x, 0, lang)  # noqa: E731
    lead = dict(level=fmt_g(r["level"].iloc[0], lang), hk_low=pct(hk["coverage"].min()),
                hk_high=pct(hk["coverage"].max()), wz_low=pct(wz["coverage"].min()), wz_high=pct(wz["coverage"].max()),
                k=int(k2["k"].iloc[0]), width_low=fmt_num(k2["ci_width_median"].min(), 0, lang),
                width_high=fmt_num(k2["ci_width_median"].max(), 0, lang))
    return render("simulation_table.html.j2", lang, rows=rows, lead=lead)


def _by_tau_and_k(r) -> list[tuple]:
    """(tau, k, coverage and median width with HKSJ, the same with Wald) per (tau, k) of the REML rows ``r``, in
    ascending order: the wide table ``r.pivot_table(index=["tau", "k"], columns="test", values=[...])`` gives. Read
    from the columns at once when every (tau, k) has exactly one row per test and no value is missing (the mean of
    one value is that value); else by pivot_table itself, which also loads pandas' reshaping code (~20 ms)."""
    names = ("tau", "k", "test", "coverage", "ci_width_median")
    tau, k, test, coverage, width = (r[c].tolist() for c in names)
    one: dict = {}
    for key, cov, wid in zip(zip(tau, k, test), coverage, width):
        if key in one or any(v != v for v in (*key, cov, wid)):  # a repeated row or a missing value: pivot_table
            one = {}
            break
        one[key] = (cov, wid)
    cells = sorted(set(zip(tau, k)))
    if one and all((t_, k_, x) in one for t_, k_ in cells for x in ("knha", "z")) and len(one) == 2 * len(cells):
        return [(t_, k_, *one[t_, k_, "knha"], *one[t_, k_, "z"]) for t_, k_ in cells]
    wide = r.pivot_table(index=["tau", "k"], columns="test", values=["coverage", "ci_width_median"]).reset_index()
    return list(zip(*(wide[c].tolist() for c in (("tau", ""), ("k", ""), ("coverage", "knha"),
                                                  ("ci_width_median", "knha"), ("coverage", "z"),
                                                  ("ci_width_median", "z")))))


def simulation_verdict(summary_path: Path = SIMULATION_SUMMARY, lang: str = "en") -> str:
    """The 'Verdict' and 'What this means' bullets of the committed simulation study, as HTML.

    The study is run by ``meta simulate`` (``inputs/simulation/``); the report quotes it, it does not rerun it. The
    bullets are :func:`meta.simulate.words.verdict_lines` of the JSON summary and the results table it names (the
    words of the Markdown summary's 'Verdict' section, from the same numbers).
    """
    from meta.simulate.words import verdict_lines  # the English report's only; the Dutch one computes its table

    if not Path(summary_path).exists():
        return render("simulation_verdict.html.j2", lang, blocks=None)
    run = simulation_run(summary_path)
    blocks = []  # ("ul", [items]) for a run of "- " lines, ("p", text) for any other line
    for line in verdict_lines(run.results, run.reconstruction_check, run.settings):
        if line.startswith("- "):
            if not blocks or blocks[-1][0] != "ul":
                blocks.append(("ul", []))
            blocks[-1][1].append(_markdown_inline(line[2:]))
        elif line.strip():
            blocks.append(("p", _markdown_inline(line)))
    return render("simulation_verdict.html.j2", lang, blocks=blocks)


#: The simulation study in the report: the Dutch report generates its table from the numbers, the English one
#: quotes the study's own (English) verdict.
SIMULATION_SECTION = {"nl": simulation_table, "en": simulation_verdict}

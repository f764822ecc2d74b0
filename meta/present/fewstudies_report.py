"""Presenting few-studies results (issue 12): labels, "onbepaald" bounds, decision probabilities, priors, methods.

Present layer, used by :mod:`meta.present.report`, :mod:`meta.present.plots` and the workbook writer. Numbers come from the pooled
table of :mod:`meta.analyses.fewstudies`; nothing is computed here except formatting.

* A bound outside the feasible range of its unit (``impossible`` column) is printed as "onbepaald (k = 2)"
  ("undetermined (k = 2)") with a footnote; the raw value stays in ``pooled.csv``. So is the classical (Hartung-Knapp)
  interval of two studies, which rests on one degree of freedom (:func:`one_df`), and, in the Kerntabel, the τ²/I²
  intervals of two studies (:func:`heterogeneity_undetermined`).
* The headline's model is named in every row: Bayesian (posterior median and credible interval), the plan's
  classical model, or a single study as reported.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
from markupsafe import Markup

from meta.analyses.fewstudies import HEADLINE_BAYES, HEADLINE_CLASSICAL, HEADLINE_SINGLE
from meta.analyses.sensitivity import prior_dependence
from meta.analyses.tables import cell_order
from meta.i18n import (INTERVAL_SEP, arm_class_label, concept_labels, fmt_g, fmt_num, outcome_labels, period_labels,
                       t, unit_words, word_list)
from meta.present.report_cells import records, simulation_run
from meta.present.templating import render, text


def impossible(row) -> set[str]:
    """The columns of a pooled row printed as "onbepaald" (``impossible`` column of :mod:`meta.analyses.fewstudies`)."""
    value = row.get("impossible", "")
    return set(value.split(";")) if isinstance(value, str) and value else set()


#: The classical (plan method + test) interval columns: with two studies and a t test they rest on one degree of
#: freedom.
ONE_DF_COLUMNS = ("classical_ci_low", "classical_ci_high", "classical_pi_low", "classical_pi_high")


def one_df(row) -> bool:
    """Whether the classical interval of a pooled row rests on one degree of freedom: k = 2 with a t test
    (Hartung-Knapp, plain or ad hoc). Its half-width is t₁,₀.₉₇₅ = 12.7 standard errors (Röver et al. 2015;
    Bender et al. 2018): it says nothing even when it stays inside the unit's feasible range, so it is printed
    "onbepaald (k = 2)" like the τ²/I² intervals of two studies; the bounds stay in ``pooled.csv``."""
    return int(row["k"]) == 2 and str(row.get("test", "z")).lower() != "z"


#: The headline's interval columns: under a classical headline they hold the classical fit's interval.
HEADLINE_INTERVAL_COLUMNS = ("ci_low", "ci_high", "pi_low", "pi_high")


def one_df_columns(row) -> set[str]:
    """The interval columns of a pooled row that rest on one degree of freedom (:func:`one_df`): the classical
    ones, and the headline's when the headline is the classical fit (a plan with ``few_studies_k = 1``, or a unit
    without a τ prior)."""
    if not one_df(row):
        return set()
    return set(ONE_DF_COLUMNS) | (set(HEADLINE_INTERVAL_COLUMNS) if row.get("headline") == HEADLINE_CLASSICAL
                                  else set())


def undetermined(row) -> set[str]:
    """The columns of a pooled row printed as "onbepaald (k = …)": outside the unit's feasible range
    (:func:`impossible`) or an interval on one degree of freedom (:func:`one_df_columns`)."""
    return impossible(row) | one_df_columns(row)


def value_text(row, col: str, digits: int, lang: str, fmt=None) -> str:
    """The value of ``col`` in the notation of ``lang``, or "onbepaald (k = …)" when it lies outside the unit's
    feasible range or is a bound of a classical interval on one degree of freedom (:func:`undetermined`)."""
    if col in undetermined(row):
        return t("undetermined", lang, k=int(row["k"]))
    value = row.get(col, math.nan)
    return fmt(value, digits) if fmt is not None else fmt_num(value, digits, lang)


def interval_text(row, lo: str, hi: str, digits: int, lang: str, fmt=None) -> str:
    """``[lo, hi]`` (Dutch: ``[lo; hi]``) with each impossible bound replaced by "onbepaald (k = …)"; when both
    bounds are, the interval is printed once as ``[onbepaald (k = …)]`` (not the words twice)."""
    low, high = value_text(row, lo, digits, lang, fmt), value_text(row, hi, digits, lang, fmt)
    if {lo, hi} <= undetermined(row):
        return f"[{low}]"
    return f"[{low}{INTERVAL_SEP[lang]}{high}]"


#: Interval columns of the heterogeneity statistics (Q-profile for τ², and I², H² from it).
HETEROGENEITY_INTERVALS = ("tau2_ci_low", "tau2_ci_high", "I2_ci_low", "I2_ci_high", "H2_ci_low", "H2_ci_high")
#: Below this many studies the heterogeneity intervals are printed as "onbepaald (k = …)".
HETEROGENEITY_MIN_K = 3


def heterogeneity_undetermined(row) -> bool:
    """Whether the τ²/I² intervals of a pooled row are printed as "onbepaald (k = …)".

    With k = 2 the generalised Q is (y₁ − y₂)²/(v₁ + v₂ + 2τ²), one degree of freedom, and the Q-profile interval
    (Viechtbauer 2007) solves Q(τ²) = χ²₁ quantiles: its upper bound is [(y₁ − y₂)²/χ²₁,₀.₀₂₅ − v₁ − v₂]/2, 0 when
    Q < χ²₁,₀.₀₂₅ = 0.00098 (the two estimates nearly equal: "[0; 0]") and otherwise about 500 (y₁ − y₂)². Either
    says nothing about τ², so only the point estimate is printed; the bounds stay in ``pooled.csv``."""
    return 2 <= int(row["k"]) < HETEROGENEITY_MIN_K


def heterogeneity_interval_text(row, lo: str, hi: str, digits: int, lang: str, fmt=None) -> str:
    """:func:`interval_text` for a τ²/I² interval, or ``[onbepaald (k = 2)]`` (:func:`heterogeneity_undetermined`)."""
    if heterogeneity_undetermined(row):
        return f"[{t('undetermined', lang, k=int(row['k']))}]"
    return interval_text(row, lo, hi, digits, lang, fmt)


#: The mark after an interval that is an outer bound (a study whose SE is only an upper bound): in the Kerntabel
#: (explained once under it) and after the study's interval in a forest plot (explained in its footer).
UPPER_MARK = "†"


def upper_bound_only(row) -> bool:
    """Whether a Kerntabel row is one study whose SE is only an upper bound (``se_upper_bound_only`` of
    ``pooled.csv``): its interval is an outer bound (printed with a mark), its p-value an upper bound (printed
    "≤p") and no decision probability can be computed from it."""
    return int(row["k"]) == 1 and bool(row.get("se_upper_bound_only", False))


def open_square_note(lang: str) -> str:
    """The footnote of a figure that draws an outer-bound interval as an open square marked † (the overview, the
    component figure)."""
    return f"{UPPER_MARK} {t('fig_overview_upper_bound', lang)} {t('fig_note_upper_bound', lang)}"


def footnote(lang: str) -> str:
    """The footnote under a table or figure that prints "onbepaald"."""
    return t("footnote", lang)


def model_text(row, lang: str) -> str:
    """Short name of the model behind the headline columns of a row."""
    headline = row.get("headline", "")
    if headline == HEADLINE_BAYES:
        return t("model_bayes", lang)
    if headline == HEADLINE_SINGLE:
        return t("model_single", lang)
    return f"{row.get('method', '')} + {_test_name(row.get('test', ''))}"


def classical_fit_columns(row) -> tuple[str, ...]:
    """The columns :func:`classical_fits_text` prints for ``row`` (the Wald interval only beside a t test)."""
    wald = ("wald_ci_low", "wald_ci_high") if row.get("test") != "z" else ()
    return ("classical_estimate", "classical_ci_low", "classical_ci_high", *wald, "fe_estimate", "fe_ci_low",
            "fe_ci_high")


def classical_fits_text(row, digits: int, lang: str, fmt=None) -> str:
    """'REML + HKSJ −4.2 [onbepaald (k = 2), …]; REML + Wald …; common effect …' for a footer."""
    method = row.get("method", "")
    test = _test_name(row.get("test", ""))
    parts = [f"{method} + {test} {value_text(row, 'classical_estimate', digits, lang, fmt)} "
             f"{interval_text(row, 'classical_ci_low', 'classical_ci_high', digits, lang, fmt)}"]
    if row.get("test") != "z":
        parts.append(f"{method} + Wald {interval_text(row, 'wald_ci_low', 'wald_ci_high', digits, lang, fmt)}")
    parts.append(f"{t('fe', lang)} {value_text(row, 'fe_estimate', digits, lang, fmt)} "
                 f"{interval_text(row, 'fe_ci_low', 'fe_ci_high', digits, lang, fmt)}")
    return "; ".join(parts)


# --------------------------------------------------------------------------- #
# report sections
# --------------------------------------------------------------------------- #
def _pct(p) -> str:
    """A probability as a whole percentage; '<1%' and '>99%' at the ends, '—' when missing."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "—"
    x = 100 * p
    if x < 1:
        return "<1%"
    if x > 99:
        return ">99%"
    return f"{x:.0f}%"


def unit_digits(unit: str) -> int:
    """Decimals an effect is printed with: percentage points to one, scale points to two."""
    return 1 if unit == "percentage_points" else 2


def unit_short(unit: str, lang: str) -> str:
    """Short unit after a number: 'pp', or 'punt'/'pt' for scale points."""
    return "pp" if unit == "percentage_points" else t("unit_point", lang)


def decision_section(results, lang: str = "nl") -> str:
    """Per cell: P(effect > 0), P(harm > δ), P(|effect| < δ), the predictive interval, and prior dependence.

    One row per pooled cell that has a τ prior for its unit. k = 1 rows speak of the single municipality's own
    effect; k ≥ 2 rows of the mean effect over municipalities (Bayesian posterior).
    """
    p = results.pooled
    if len(p) == 0 or "p_gt_0" not in p:
        return ""
    label = {**outcome_labels(results.inputs.outcomes, lang),
             **concept_labels(getattr(results.inputs, "concepts", None), lang)}
    left_out = _left_out_of_decisions(p[p["p_gt_0"].isna()], label, lang)
    p = cell_order(p[p["p_gt_0"].notna()], results.plan)  # as the Kerntabel: arm class, then outcome
    if len(p) == 0:
        return ""
    dep = prior_dependence(results.sensitivity)
    dep_of = {(r["outcome_key"], r["period"], r["arm_class"], r["unit_h"]): r for r in records(dep)}
    periods = period_labels(p["period"], getattr(results.inputs, "periods", None), lang)
    rows = [_decision_row(r, lang, label, dep_of, period) for r, period in zip(records(p), periods)]
    level = fmt_g(results.plan.level, lang)
    return render("decisions.html.j2", lang, heads=[h.format(level=level) for h in t("decision_heads", lang)],
                  rows=rows, priors=priors_table(results, lang), left_out=left_out)


def _left_out_of_decisions(missing: pd.DataFrame, label: dict, lang: str) -> str:
    """The sentence under the decision table naming the Kerntabel's outcomes it leaves out (``missing``: their
    pooled rows, without decision probabilities; ``label``: the table's outcome labels) because the plan gives their
    unit no τ prior and no δ (``bayes_units``); "" when none is left out."""
    if len(missing) == 0:
        return ""
    names = list(dict.fromkeys(label.get(k, k) for k in missing["outcome_key"]))
    return t("decision_left_out" if len(names) > 1 else "decision_left_out_one", lang, outcomes=word_list(names, lang))


def _decision_row(r: dict, lang: str, label: dict, dep_of: dict, period: str) -> dict:
    """One row of the decision table (a pooled row as a dict, its period in words): the probabilities, δ, the
    predictive interval and prior dependence."""
    d, unit = unit_digits(r["unit_h"]), unit_short(r["unit_h"], lang)
    single = int(r["k"]) == 1
    dr = None if single else dep_of.get((r["outcome_key"], r["period"], r["arm_class"], r["unit_h"]))
    changed_by = None
    if single:
        prior = t("prior_one_municipality", lang)
    elif dr is None:
        prior = "—"
    elif dr["depends_on_prior"]:
        prior, changed_by = None, "; ".join(prior_spec_text(x, lang) for x in dr["changed_by"].split(";"))
    else:
        prior = t("no", lang)
    upper = upper_bound_only(r)  # a probability from a worst-case SE is no probability
    prob = (lambda col: t("not_determinable", lang)) if upper else (lambda col: _pct(r[col]))  # noqa: E731
    return dict(single=single, outcome=label.get(r["outcome_key"], r["outcome_key"]),
                period=period,
                arm_class=arm_class_label(r["arm_class"], lang), k=int(r["k"]), p_gt_0=prob("p_gt_0"),
                p_harm=prob("p_harm"), p_within=prob("p_within_delta"), delta=fmt_num(r["delta"], d, lang),
                upper=upper,
                unit=unit, prior=prior, changed_by=changed_by,
                pred="—" if single else interval_text(r, "bayes_pi_low", "bayes_pi_high", d, lang) + f" {unit}")


def priors_table(results, lang: str = "nl") -> str:
    """The τ prior scale and δ per unit of the pooled cells, each with its reason (from the plan)."""
    units = sorted(set(results.pooled["unit_h"])) if len(results.pooled) else []
    rows = []
    for unit in units:
        u = results.plan.bayes_unit(unit)
        row = dict(unit=unit_words(unit, lang, "name"), scale=None)
        if u is not None:  # the plan's reasons in the report's language
            suffix = "_nl" if lang == "nl" else ""
            row.update(scale=fmt_g(u["tau_prior_scale"], lang), reason_tau=u["tau_prior_reason" + suffix],
                       delta=fmt_num(u["delta"], unit_digits(unit), lang), reason_delta=u["delta_reason" + suffix])
        rows.append(row)
    return render("priors.html.j2", lang, rows=rows)


def simulation_quote(summary_json: Path, lang: str = "nl", policy: str = "reported", few_k: int = 4) -> str:
    """Coverage and median width of the Bayesian interval and of REML + HKSJ at k = 2..6, from the committed
    simulation study: the results table its summary (``inputs/simulation/simulation_summary.json``) names, read with
    :func:`meta.simulate.summary.read_summary` (which refuses a table that is not the one the summary was written
    with); empty when the summary is not there."""
    path = Path(summary_json)
    if not path.exists():
        return ""
    sim = simulation_run(path).results
    sim = sim[sim["se_policy"] == policy]
    ks = sorted(int(k) for k in set(sim["k"]) if k >= 2)
    if not ks:
        return ""
    first = {}  # (tau, k, method, test) -> (coverage, median width) of its first row
    for key, coverage, width in zip(zip(sim["tau"], sim["k"], sim["method"], sim["test"]), sim["coverage"],
                                    sim["ci_width_median"]):
        first.setdefault(key, (coverage, width))
    rows = []
    for tau in sorted(set(sim["tau"])):
        for method, test, name in (("Bayes", "posterior", t("sim_bayes", lang)), ("REML", "knha", "REML + HKSJ")):
            cells = [None if (tau, k, method, test) not in first else
                     f"{100 * first[tau, k, method, test][0]:.0f}% ({first[tau, k, method, test][1]:.0f} pp)"
                     for k in ks]
            rows.append(dict(tau=fmt_g(tau, lang), name=name, cells=cells))
    reps = sim.loc[sim["method"] == "Bayes", "reps"]
    n_b = int(reps.max()) if len(reps) else 0
    n_c = int(sim.loc[sim["method"] == "REML", "reps"].max()) if (sim["method"] == "REML").any() else 0
    return render("simulation_quote.html.j2", lang, n_b=n_b, n_c=n_c, ks=ks, rows=rows,
                  sentence=_simulation_sentence(sim, ks, lang, few_k))


def _simulation_sentence(sim: pd.DataFrame, ks, lang: str, few_k: int = 4) -> str:
    """What the table means, from its numbers: the Bayesian interval's width and coverage against HKSJ's for few
    municipalities, and where it covers less than promised. Empty when either model is missing."""
    few = [k for k in ks if k <= few_k]
    b = sim[(sim["method"] == "Bayes") & sim["k"].isin(few)]
    h = sim[(sim["method"] == "REML") & (sim["test"] == "knha") & sim["k"].isin(few)]
    if b.empty or h.empty:
        return ""
    worst = b.loc[b["coverage"].idxmin()]
    low = b[b["coverage"] < 0.935]
    taus = sorted(set(low["tau"]))
    fine = b[~b["tau"].isin(taus)]

    def span(x):
        lo, hi = fmt_num(100 * x.min(), 1, lang), fmt_num(100 * x.max(), 1, lang)
        return f"{lo}%" if lo == hi else f"{lo}–{hi}%"

    width = lambda x: f"{x.min():.0f}–{x.max():.0f} pp"  # noqa: E731
    out = text("sim_narrower", lang, k=max(few), bayes=width(b["ci_width_median"]), hksj=width(h["ci_width_median"]))
    if taus and len(fine):
        return out + text("sim_covers_but", lang, fine=span(fine["coverage"]), low=span(low["coverage"]),
                          tau_fine=fmt_g(max(set(fine["tau"])), lang), taus=", ".join(fmt_g(x, lang) for x in taus),
                          worst=fmt_num(100 * worst["coverage"], 1, lang), k=int(worst["k"]))
    return out + text("sim_covers" if taus else "sim_and_covers", lang, span=span(b["coverage"]))


def methods_html(results, lang: str = "nl", simulation_summary: Path | None = None) -> str:
    """Why the headline follows k, with the references, and what the simulation says about it (from the summary
    ``simulation_summary`` names, :func:`simulation_quote`)."""
    plan = results.plan
    key = "few_studies_methods" if plan.few_studies_k >= 2 else "few_studies_methods_classical"  # no Bayesian headline
    out = Markup("<p>") + text(key, lang, k=plan.few_studies_k, level=fmt_g(plan.level, lang),
                               method=plan.method, test=_test_name(plan.test)) + Markup("</p>")
    if simulation_summary is not None:
        out += simulation_quote(simulation_summary, lang, few_k=plan.few_studies_k)
    return out


def prior_spec_text(spec: str, lang: str) -> str:
    """A prior variant of :data:`meta.analyses.fewstudies.PRIOR_VARIANTS` in words of ``lang``, its decimal sign
    that of ``lang`` (the catalogue's ``prior_spec`` replaces the English words, in order)."""
    for en, words in t("prior_spec", lang):
        spec = spec.replace(en, words)
    return spec if lang == "en" else re.sub(r"(\d)\.(\d)", r"\1,\2", spec)


def _test_name(test: str) -> str:
    """Short name of a test code: 'HKSJ', 'Wald' or 'HKSJ (ad hoc)' (the scale factor floored at 1)."""
    return {"knha": "HKSJ", "z": "Wald", "adhoc": "HKSJ (ad hoc)"}.get(str(test).lower(), str(test))

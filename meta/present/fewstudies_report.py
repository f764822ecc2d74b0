"""Presenting few-studies results (issue 12): labels, "onbepaald" bounds, decision probabilities, priors, methods.

Present layer, used by :mod:`meta.present.report`, :mod:`meta.present.plots` and the workbook writer. Numbers come from the pooled
table of :mod:`meta.analyses.fewstudies`; nothing is computed here except formatting.

* A bound outside the feasible range of its unit (``impossible`` column) is printed as "onbepaald (k = 2)"
  ("undetermined (k = 2)") with a footnote; the raw value stays in ``pooled.csv``.
* The headline's model is named in every row: Bayesian (posterior median and credible interval), the plan's
  classical model, or a single study as reported.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import pandas as pd

from meta.analyses.fewstudies import HEADLINE_BAYES, HEADLINE_SINGLE
from meta.analyses.tables import cell_order
from meta.i18n import arm_class_label, concept_labels, fmt_g, fmt_num, outcome_labels, period_label, t



def _e(x) -> str:
    return html.escape("" if x is None else str(x))


def impossible(row) -> set[str]:
    """The columns of a pooled row printed as "onbepaald" (``impossible`` column of :mod:`meta.analyses.fewstudies`)."""
    value = row.get("impossible", "")
    return set(value.split(";")) if isinstance(value, str) and value else set()


def value_text(row, col: str, digits: int, lang: str, fmt=None) -> str:
    """The value of ``col`` in the notation of ``lang``, or "onbepaald (k = …)" when it lies outside the unit's
    feasible range."""
    if col in impossible(row):
        return t("undetermined", lang, k=int(row["k"]))
    value = row.get(col, math.nan)
    return fmt(value, digits) if fmt is not None else fmt_num(value, digits, lang)


def interval_text(row, lo: str, hi: str, digits: int, lang: str, fmt=None) -> str:
    """``[lo, hi]`` (Dutch: ``[lo; hi]``) with each impossible bound replaced by "onbepaald (k = …)"."""
    sep = "; " if lang == "nl" else ", "
    return f"[{value_text(row, lo, digits, lang, fmt)}{sep}{value_text(row, hi, digits, lang, fmt)}]"


def has_undetermined(rows: pd.DataFrame, columns=None) -> bool:
    if "impossible" not in rows:
        return False
    for _, r in rows.iterrows():
        bad = impossible(r)
        if bad and (columns is None or bad & set(columns)):
            return True
    return False


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
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "—"
    x = 100 * p
    if x < 1:
        return "&lt;1%"
    if x > 99:
        return "&gt;99%"
    return f"{x:.0f}%"


def unit_digits(unit: str) -> int:
    """Decimals an effect is printed with: percentage points to one, scale points to two."""
    return 1 if unit == "percentage_points" else 2


def unit_short(unit: str, lang: str) -> str:
    """Short unit after a number: 'pp', or 'punt'/'pt' for scale points."""
    return "pp" if unit == "percentage_points" else ("punt" if lang == "nl" else "pt")


def decision_section(results, lang: str = "nl") -> str:
    """Per cell: P(effect > 0), P(harm > δ), P(|effect| < δ), the predictive interval, and prior dependence.

    One row per pooled cell that has a τ prior for its unit. k = 1 rows speak of the single municipality's own
    effect; k ≥ 2 rows of the mean effect over municipalities (Bayesian posterior).
    """
    from meta.analyses.sensitivity import prior_dependence

    p = results.pooled
    if len(p) == 0 or "p_gt_0" not in p:
        return ""
    p = cell_order(p[p["p_gt_0"].notna()], results.plan)  # as the Kerntabel: arm class, then outcome
    if len(p) == 0:
        return ""
    nl = lang == "nl"
    label = {**outcome_labels(results.inputs.outcomes, lang),
             **concept_labels(getattr(results.inputs, "concepts", None), lang)}
    dep = prior_dependence(results.sensitivity)
    dep_of = {(r["outcome_key"], r["period"], r["arm_class"], r["unit_h"]): r for _, r in dep.iterrows()}
    level = fmt_g(results.plan.level, lang)
    head = ("<tr><th>Uitkomst</th><th>Horizon</th><th>Armklasse</th><th>k</th><th>Kans dat het effect positief is"
            "</th><th>Kans op schade groter dan δ</th><th>Kans dat het effect praktisch nul is (|effect| &lt; δ)</th>"
            f"<th>δ</th><th>Als een volgende gemeente dit deed ({level}%-voorspellingsinterval)</th>"
            "<th>Hangt de conclusie af van de prior?</th></tr>" if nl else
            "<tr><th>Outcome</th><th>Horizon</th><th>Arm class</th><th>k</th><th>Probability the effect is positive"
            "</th><th>Probability of harm larger than δ</th><th>Probability the effect is practically zero "
            f"(|effect| &lt; δ)</th><th>δ</th><th>If another municipality did this ({level}% predictive interval)</th>"
            "<th>Does the conclusion depend on the prior?</th></tr>")
    body = []
    for _, r in p.iterrows():
        d, unit = unit_digits(r["unit_h"]), unit_short(r["unit_h"], lang)
        key = (r["outcome_key"], r["period"], r["arm_class"], r["unit_h"])
        if int(r["k"]) == 1:
            pred = "—" if not nl else "—"
            prior = "n.v.t. (één gemeente)" if nl else "n/a (one municipality)"
        else:
            pred = interval_text(r, "bayes_pi_low", "bayes_pi_high", d, lang) + f" {unit}"
            dr = dep_of.get(key)
            if dr is None:
                prior = "—"
            elif dr["depends_on_prior"]:
                prior = ("<b>ja</b>: " if nl else "<b>yes</b>: ") + _e("; ".join(
                    prior_spec_text(x, lang) for x in dr["changed_by"].split(";")))
            else:
                prior = "nee" if nl else "no"
        body.append(
            f"<tr class='{'single' if int(r['k']) == 1 else ''}'><td>{_e(label.get(r['outcome_key'], r['outcome_key']))}"
            f"</td><td>{_e(period_label(r['period'], getattr(results.inputs, 'periods', None), lang))}</td><td>{_e(arm_class_label(r['arm_class'], lang))}</td>"
            f"<td class='num'>{int(r['k'])}</td><td class='num'>{_pct(r['p_gt_0'])}</td>"
            f"<td class='num'>{_pct(r['p_harm'])}</td><td class='num'>{_pct(r['p_within_delta'])}</td>"
            f"<td class='num'>{fmt_num(r['delta'], d, lang)} {unit}</td><td class='num'>{pred}</td><td>{prior}</td></tr>")
    intro = ("<p>De kansen gaan over het gemiddelde effect over gemeenten (Bayesiaans model, rijen met k ≥ 2) of, bij "
             "één gemeente (grijs), over het effect in die gemeente zelf (vlakke prior: de eigen schatting en "
             "standaardfout). ‘Schade’ is een effect in de ongunstige richting van de uitkomst, groter dan δ. Het "
             "voorspellingsinterval beantwoordt de vraag wat een volgende gemeente zou vinden: het telt de spreiding "
             "tussen gemeenten mee. De drempel δ en de prior per eenheid staan met hun reden in de tabel daaronder.</p>"
             if nl else
             "<p>The probabilities are about the mean effect over municipalities (Bayesian model, rows with k ≥ 2) "
             "or, for one municipality (grey), about the effect in that municipality itself (flat prior: its own "
             "estimate and standard error). 'Harm' is an effect in the unfavourable direction of the outcome, larger "
             "than δ. The predictive interval answers what another municipality would find: it includes the spread "
             "between municipalities. The threshold δ and the prior per unit are in the table below, with their "
             "reasons.</p>")
    return f"{intro}<table>{head}{''.join(body)}</table>{priors_table(results, lang)}"


UNIT_NAMES = {"percentage_points": {"nl": "procentpunten (aandelen)", "en": "percentage points (shares)"}}


def _unit_name(unit: str, lang: str) -> str:
    if unit in UNIT_NAMES:
        return UNIT_NAMES[unit]["nl" if lang == "nl" else "en"]
    if unit == "scale_unknown":
        return "schaal onbekend" if lang == "nl" else "scale not stated"
    if unit.startswith("scale_"):
        lo, _, hi = unit.removeprefix("scale_").partition("_")
        return (f"schaal {lo}–{hi}" if lang == "nl" else f"{lo}–{hi} scale")
    return unit.replace("_", " ")


def priors_table(results, lang: str = "nl") -> str:
    """The τ prior scale and δ per unit of the pooled cells, each with its reason (from the plan)."""
    units = sorted(set(results.pooled["unit_h"])) if len(results.pooled) else []
    nl = lang == "nl"
    rows = []
    for unit in units:
        u = results.plan.bayes_unit(unit)
        if u is None:
            rows.append(f"<tr><td>{_e(_unit_name(unit, lang))}</td><td colspan='4'>"
                        + ("geen prior in het plan: geen Bayesiaans model, de klassieke schatting blijft de kern"
                           if nl else "no prior in the plan: no Bayesian model, the classical estimate stays the "
                           "headline") + "</td></tr>")
            continue
        d = unit_digits(unit)
        reason_tau = u["tau_prior_reason_nl"] if nl else u["tau_prior_reason"]
        reason_delta = u["delta_reason_nl"] if nl else u["delta_reason"]
        rows.append(f"<tr><td>{_e(_unit_name(unit, lang))}</td><td class='num'>{fmt_g(u['tau_prior_scale'], lang)}</td>"
                    f"<td>{_e(reason_tau)}</td><td class='num'>{fmt_num(u['delta'], d, lang)}</td>"
                    f"<td>{_e(reason_delta)}</td></tr>")
    head = ("<tr><th>Eenheid</th><th>Schaal half-normale prior op τ</th><th>Waarom</th><th>δ</th><th>Waarom</th></tr>"
            if nl else "<tr><th>Unit</th><th>Scale of the half-normal prior on τ</th><th>Why</th><th>δ</th>"
                       "<th>Why</th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def simulation_quote(results_csv: Path, lang: str = "nl", policy: str = "reported", few_k: int = 4) -> str:
    """Coverage and median width of the Bayesian interval and of REML + HKSJ at k = 2..6, from the committed
    simulation study (``inputs/simulation/simulation_results.csv``); empty when it is not there."""
    path = Path(results_csv)
    if not path.exists():
        return ""
    t = pd.read_csv(path)
    t = t[t["se_policy"] == policy]
    specs = (("Bayes", "posterior", "Bayesiaans" if lang == "nl" else "Bayesian"),
             ("REML", "knha", "REML + HKSJ"))
    ks = sorted(int(k) for k in set(t["k"]) if k >= 2)
    if not ks:
        return ""
    nl = lang == "nl"
    head = ("<tr><th>τ (pp)</th><th>Methode</th>" + "".join(f"<th>k = {k}</th>" for k in ks) + "</tr>")
    body = []
    for tau in sorted(set(t["tau"])):
        for method, test, name in specs:
            cells = []
            for k in ks:
                c = t[(t["tau"] == tau) & (t["k"] == k) & (t["method"] == method) & (t["test"] == test)]
                cells.append("<td>—</td>" if c.empty else
                             f"<td class='num'>{100 * c['coverage'].iloc[0]:.0f}% ({c['ci_width_median'].iloc[0]:.0f} pp)</td>")
            body.append(f"<tr><td class='num'>{fmt_g(tau, lang)}</td><td>{name}</td>{''.join(cells)}</tr>")
    reps = t.loc[t["method"] == "Bayes", "reps"]
    n_b = int(reps.max()) if len(reps) else 0
    n_c = int(t.loc[t["method"] == "REML", "reps"].max()) if (t["method"] == "REML").any() else 0
    intro = (f"<p>Wat levert dat op? In de simulatiestudie (<code translate='no'>meta simulate</code>, beschreven hieronder) dekt het "
             f"95%-interval het ware gemiddelde effect zo vaak (mediane breedte tussen haakjes), bij gedrukte "
             f"standaardfouten; {n_b} herhalingen voor het Bayesiaanse model, {n_c} voor REML + HKSJ:</p>" if nl else
             f"<p>What does that buy? In the simulation study (<code translate='no'>meta simulate</code>, described below) the 95% "
             f"interval covers the true mean effect this often (median width in brackets), with printed standard "
             f"errors; {n_b} replications for the Bayesian model, {n_c} for REML + HKSJ:</p>")
    return f"{intro}<table>{head}{''.join(body)}</table>{_simulation_sentence(t, ks, lang, few_k)}"


def _simulation_sentence(t: pd.DataFrame, ks, lang: str, few_k: int = 4) -> str:
    """What the table means, from its numbers: the Bayesian interval's width and coverage against HKSJ's for few
    municipalities, and where it covers less than promised."""
    few = [k for k in ks if k <= few_k]
    b = t[(t["method"] == "Bayes") & t["k"].isin(few)]
    h = t[(t["method"] == "REML") & (t["test"] == "knha") & t["k"].isin(few)]
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
    if lang == "nl":
        text = (f"Bij 2 tot en met {max(few)} gemeenten is het Bayesiaanse interval veel smaller "
                f"({width(b['ci_width_median'])} tegen {width(h['ci_width_median'])} voor REML + HKSJ)")
        if taus:
            text += (f"; het dekt {span(fine['coverage'])} bij τ ≤ {fmt_g(max(set(fine['tau'])), lang)} pp, maar "
                     f"slechts {span(low['coverage'])} bij τ = {', '.join(fmt_g(x, lang) for x in taus)} pp (laagst "
                     f"{fmt_num(100 * worst['coverage'], 1, lang)}% bij k = {int(worst['k'])}): als gemeenten werkelijk meer "
                     "verschillen dan de prior aanneemt, is het te smal. Die ruil – veel smaller, maar afhankelijk van "
                     "de prior – is de reden dat de gevoeligheid voor de prior per cel wordt getoond.") if len(fine) else (
                     f"; het dekt {span(b['coverage'])}.")
        else:
            text += f" en dekt {span(b['coverage'])}."
    else:
        text = (f"For 2 to {max(few)} municipalities the Bayesian interval is much narrower "
                f"({width(b['ci_width_median'])} against {width(h['ci_width_median'])} for REML + HKSJ)")
        if taus:
            text += (f"; it covers {span(fine['coverage'])} at τ ≤ {max(set(fine['tau'])):g} pp but only "
                     f"{span(low['coverage'])} at τ = {', '.join(f'{x:g}' for x in taus)} pp (lowest "
                     f"{100 * worst['coverage']:.1f}% at k = {int(worst['k'])}): when municipalities truly differ more "
                     "than the prior assumes, it is too narrow. That trade – much narrower, but resting on the prior – "
                     "is why the report shows per cell whether the conclusion depends on the prior.") if len(fine) else (
                     f"; it covers {span(b['coverage'])}.")
        else:
            text += f" and covers {span(b['coverage'])}."
    return f"<p>{text}</p>"


def methods_html(results, lang: str = "nl", simulation_results: Path | None = None) -> str:
    """Why the headline follows k, with the references, and what the simulation says about it."""
    plan = results.plan
    k = plan.few_studies_k
    nl = lang == "nl"
    refs = ("Friede e.a. 2017 (<i>Biometrical Journal</i> 59:658–671); Röver e.a. 2021 (<i>Research Synthesis "
            "Methods</i> 12:448–474); Bender e.a. 2018 (<i>Research Synthesis Methods</i> 9:382–392); Cochrane "
            "Handbook §10.10.4" if nl else
            "Friede et al. 2017 (<i>Biometrical Journal</i> 59:658–671); Röver et al. 2021 (<i>Research Synthesis "
            "Methods</i> 12:448–474); Bender et al. 2018 (<i>Research Synthesis Methods</i> 9:382–392); Cochrane "
            "Handbook §10.10.4")
    text = (f"<p><b>Weinig gemeenten: het Bayesiaanse model als kern.</b> Bij twee tot {k} gemeenten geeft REML met "
            "Hartung-Knapp-Sidik-Jonkman een correct maar nutteloos interval: met k = 2 een t-verdeling met één "
            "vrijheidsgraad, tientallen procentpunten breed, vaak breder dan wat een verschil van aandelen kan zijn. "
            "De methodeliteratuur voor zeer weinig studies (" + refs + ") raadt dan een Bayesiaans random-effectsmodel "
            "aan met een zwak informatieve half-normale prior op de spreiding τ tussen gemeenten, gerapporteerd naast "
            "de klassieke schattingen. Daarom geven de Kerntabel, de ruit in de forestplots en de kernkolommen van "
            f"<code translate='no'>pooled.csv</code> voor cellen met 2 tot en met {k} gemeenten de posterior-mediaan en het centrale "
            f"{fmt_g(plan.level, lang)}%-geloofwaardigheidsinterval (GI) van dat model (vlakke prior op het gemiddelde effect; "
            "schaal van de prior per eenheid uit het plan, zie hierboven). REML + HKSJ, REML + Wald en het "
            "gemeenschappelijk-effectmodel staan ernaast in <code translate='no'>pooled.csv</code> (kolommen <code translate='no'>classical_*</code>, "
            "<code translate='no'>wald_*</code>, <code translate='no'>fe_*</code>), in de werkmap en onder elke forestplot. Boven "
            f"{k} gemeenten blijft {_e(plan.method)} + {_e(_test_name(plan.test))} de kern. Eén gemeente wordt getoond zoals zij "
            "rapporteerde: een ‘gemiddelde over gemeenten’ uit één gemeente is haar eigen schatting, verbreed met de "
            "prior, en beantwoordt een andere vraag (wat vindt een volgende gemeente?), die het voorspellingsinterval "
            "wel expliciet beantwoordt. De gevoeligheidsanalyse herhaalt het model met de halve en dubbele "
            "priorschaal en met een half-Cauchy-prior; de tabel met beslissingskansen zegt per cel of de conclusie "
            "daarvan afhangt. Het model en de kansen zijn gecontroleerd tegen een onafhankelijke tweedimensionale "
            "kwadratuur (<code translate='no'>tests/test_bayes_pool_cli.py</code>) en zijn los op te vragen met "
            "<code translate='no'>meta pool BESTAND --bayes</code>.</p>" if nl else
            f"<p><b>Few municipalities: the Bayesian model as headline.</b> With two to {k} municipalities REML with "
            "Hartung-Knapp-Sidik-Jonkman gives a correct but useless interval: with k = 2 a t distribution with one "
            "degree of freedom, tens of percentage points wide, often wider than a difference of shares can be. The "
            "methods literature for very few studies (" + refs + ") recommends a Bayesian random-effects model with a "
            "weakly informative half-normal prior on the between-municipality spread τ, reported next to the "
            "classical fits. The headline table, the forest-plot diamond and the headline columns of "
            f"<code translate='no'>pooled.csv</code> therefore give, for cells with 2 to {k} municipalities, that model's posterior "
            f"median and central {fmt_g(plan.level, lang)}% credible interval (CrI) (flat prior on the mean effect; prior scale "
            "per unit from the plan, see above). REML + HKSJ, REML + Wald and the common-effect model stay beside it "
            "in <code translate='no'>pooled.csv</code> (columns <code translate='no'>classical_*</code>, <code translate='no'>wald_*</code>, <code translate='no'>fe_*</code>), "
            f"in the workbook and under every forest plot. Above {k} municipalities {_e(plan.method)} + "
            f"{_e(_test_name(plan.test))} stays the headline. One municipality is shown as it reported: a 'mean over "
            "municipalities' from one of them is its own estimate widened by the prior, and answers another question "
            "(what would another municipality find?), which the predictive interval answers explicitly. The "
            "sensitivity analysis repeats the model with half and double the prior scale and with a half-Cauchy "
            "prior; the decision-probability table says per cell whether the conclusion depends on it. The model and "
            "the probabilities are checked against an independent two-dimensional quadrature "
            "(<code translate='no'>tests/test_bayes_pool_cli.py</code>) and can be computed on their own with "
            "<code translate='no'>meta pool FILE --bayes</code>.</p>")
    if simulation_results is not None:
        text += simulation_quote(simulation_results, lang, few_k=k)
    return text


def prior_spec_text(spec: str, lang: str) -> str:
    """A prior variant of :data:`meta.analyses.fewstudies.PRIOR_VARIANTS` in words of ``lang``."""
    if lang != "nl":
        return spec
    for en, nl in (("half-normal τ prior", "half-normale prior op τ"), ("half-normal", "half-normaal"),
                   ("same scale", "zelfde schaal"), ("scale", "schaal")):
        spec = spec.replace(en, nl)
    import re

    return re.sub(r"(\d)\.(\d)", r"\1,\2", spec)


def _test_name(test: str) -> str:
    """Short name of a test code: 'HKSJ', 'Wald' or 'HKSJ (ad hoc)' (the scale factor floored at 1)."""
    return {"knha": "HKSJ", "z": "Wald", "adhoc": "HKSJ (ad hoc)"}.get(str(test).lower(), str(test))

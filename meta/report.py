"""The self-contained HTML report (stage 5): no network, figures embedded.

Every number in the report links back to its source: study rows link to the
sources table, which gives the seed file, table and line and the token as
printed there.
"""

from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path

import pandas as pd

from meta import fewstudies_report as fsr
from meta.harmonise import SE_METHODS
from meta.i18n import arm_class_label, components_label, outcome_labels, t, word
from meta.tables import fmt_number

SE_METHOD_TEXT = {
    "reported_se": "standard error printed in the report",
    "from_ci": "from the printed confidence interval and its level",
    "from_p": "from an exact p-value (two-sided z)",
    "from_shares_binomial": "from arm and control shares and their N (binomial, unadjusted for covariates)",
    "from_shares_binomial_and_marks": "from arm and control shares and their N (binomial), consistent with the printed "
                                      "significance mark",
    "from_significance_marks": "reconstructed from significance marks (bracket; see methods)",
}

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;
line-height:1.45;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:2px solid #1f4e79;padding-bottom:.2em;
margin-top:2em}h3{font-size:1.05em}
table{border-collapse:collapse;font-size:.82em;margin:.6em 0;width:100%}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eef3f8;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.single td{color:#666}
.pending{color:#a05a00;font-style:italic}.na{color:#999}.derived{background:#fff6e0}.ok{background:#eaf6ea}
.notreported{background:#f3f3f3}
.note{background:#f7f7f7;border-left:4px solid #1f4e79;padding:.6em 1em;margin:1em 0}
.warn{border-left-color:#b22222}
img{max-width:100%;height:auto;border:1px solid #ddd;margin:.5em 0}
.small{font-size:.8em;color:#555}
nav a{margin-right:1em}
"""


def _e(x) -> str:
    return html.escape("" if x is None else str(x))


_num = fmt_number


def _p(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return "&lt;0.001" if x < 0.001 else f"{x:.3f}"


def headline_table(results, lang: str = "en") -> str:
    p = results.pooled
    if len(p) == 0:
        return "<p>No cell could be pooled.</p>"
    p = p.sort_values(["k", "outcome_key", "horizon_months", "arm_class"], ascending=[False, True, True, True],
                      kind="mergesort")
    label = _outcome_labels(results, lang)
    head = (f"<tr><th>{t('col_outcome', lang)}</th><th>{t('col_horizon', lang)}</th><th>{t('col_arm_class', lang)}</th>"
            f"<th>k</th><th>{t('col_munis', lang)}</th><th>{fsr.tx('col_model', lang)}</th>"
            f"<th>{t('col_estimate', lang)}</th>"
            f"<th>{fsr.tx('col_interval', lang, level=f'{results.plan.level:g}')}</th><th>p</th><th>{t('col_pi', lang)}</th>"
            f"<th>τ² [CI]</th><th>I² [CI]</th><th>Q p</th><th>{t('col_se_methods', lang)}</th></tr>")
    mo = t("months", lang)
    mark_p = _mark_p_texts(results)
    names = dict(zip(results.inputs.municipalities["municipality"], results.inputs.municipalities["name"]))
    arm_text = {}
    for key, g in results.studies.groupby(["outcome_key", "horizon_months", "arm_class", "unit_h"]):
        arm_text[(key[0], int(key[1]), key[2], key[3])] = "; ".join(
            f"{names[m]}: {components_label(c, lang)}" for m, c in zip(g["municipality"], g["arm_components"])
        ) if len(g) <= REPORT_MAX_MUNICIPALITIES else (f"{len(g)} gemeenten" if lang == "nl" else f"{len(g)} municipalities")
    body = []
    for _, r in p.iterrows():
        single = bool(r["single_study"])
        flag = " ⚠" if r["flag_derived_se"] else ""
        d = 1 if r["unit_h"] == "percentage_points" else 2
        body.append(
            f"<tr class='{'single' if single else ''}'><td>{_e(label.get(r['outcome_key'], r['outcome_label']))}</td>"
            f"<td class='num'>{int(r['horizon_months'])} {mo}</td><td>{_e(arm_class_label(r['arm_class'], lang))}</td>"
            f"<td class='num'>{int(r['k'])}</td><td>{_e(arm_text.get(_cell_key(r), r['municipalities']))}</td>"
            f"<td>{_e(fsr.model_text(r, lang))}</td>"
            f"<td class='num'>{fsr.value_text(r, 'estimate', d, lang)} {_e(_unit_short(r['unit_h']))}</td>"
            f"<td class='num'>{fsr.interval_text(r, 'ci_low', 'ci_high', d, lang)}</td>"
            f"<td class='num'>{mark_p.get(_cell_key(r), _p(r['pval'])) if single else _p(r['pval'])}</td>"
            + (f"<td>{t('single', lang)}</td><td>—</td><td>—</td><td>—</td>" if single else
               f"<td class='num'>{fsr.interval_text(r, 'pi_low', 'pi_high', d, lang)}</td>"
               f"<td class='num'>{fsr.value_text(r, 'tau2', 2, lang)} "
               f"{fsr.interval_text(r, 'tau2_ci_low', 'tau2_ci_high', 2, lang)}</td>"
               f"<td class='num'>{_num(r['I2'], 0)}% [{_num(r['I2_ci_low'], 0)}, {_num(r['I2_ci_high'], 0)}]</td>"
               f"<td class='num'>{_p(r['Q_p'])}</td>")
            + f"<td>{_e(r['se_methods'].replace(';', ', '))}{flag}</td></tr>"
        )
    note = f"<p class='small'>{fsr.footnote(lang)}</p>" if fsr.has_undetermined(p) else ""
    return f"<table>{head}{''.join(body)}</table>{note}"


def _cell_key(r) -> tuple:
    return (r["outcome_key"], int(r["horizon_months"]), r["arm_class"], r["unit_h"])


def _mark_p_texts(results) -> dict:
    """For single-study cells whose SE came from a significance mark: the p-value range the mark prints.

    The p-value computed from a reconstructed SE is a construction; the report shows what the source says.
    """
    legends = results.inputs.legends
    out = {}
    for _, s in results.studies[results.studies["se_method"] == "from_significance_marks"].iterrows():
        row = legends[(legends["source_file"] == s["source_file"]) & (legends["source_table"] == s["source_table"])
                      & (legends["mark"] == s["significance"])]
        if row.empty:
            continue
        below, at_least = row["p_below"].iloc[0], row["p_at_least"].iloc[0]
        mark = f" ({s['significance']})" if s["significance"] else ""
        if not math.isnan(below) and (math.isnan(at_least) or at_least == 0):
            text = f"&lt;{below:g}{mark}"
        elif not math.isnan(below):
            text = f"{at_least:g}–{below:g}{mark}"
        else:
            text = f"≥{at_least:g}"
        out[(s["outcome_key"], int(s["horizon_months"]), s["arm_class"], s["unit_h"])] = text
    return out


def _unit_short(unit: str) -> str:
    return {"percentage_points": "pp"}.get(unit, "pt")


def _outcome_labels(results, lang: str) -> dict:
    return outcome_labels(results.inputs.outcomes, lang)


#: Past this many municipalities the report counts instead of naming, and leaves the per-municipality tables
#: (side by side, sources) to side_by_side.csv, studies.csv and the workbook, so a national roll-out
#: (~340 municipalities) still gives a report a person can read (and a browser can open).
REPORT_MAX_MUNICIPALITIES = 50


def _too_many(results) -> bool:
    return len(results.inputs.municipalities) > REPORT_MAX_MUNICIPALITIES


def _in_files(what_nl: str, what_en: str, files: str, n: int, lang: str) -> str:
    return (f"<p>{n} gemeenten: {what_nl} staat in <code>{files}</code> (ook in <code>meta.xlsx</code>).</p>"
            if lang == "nl" else
            f"<p>{n} municipalities: {what_en} is in <code>{files}</code> (and in <code>meta.xlsx</code>).</p>")


def _coverage_counts(results, lang: str) -> str:
    """Coverage past ``REPORT_MAX_MUNICIPALITIES``: per outcome × horizon × arm class, municipalities per status."""
    cov = results.coverage
    statuses = [s for s in ("transcribed", "derived-SE", "not reported", "pending", "not applicable")
                if s in set(cov["status"])]
    counts = cov.groupby(["outcome_key", "horizon_months", "arm_class", "status"], sort=False).size()
    label = _outcome_labels(results, lang)
    mo = t("months", lang)
    out = [f"<table><tr><th>{t('col_outcome', lang)}</th><th>{t('col_horizon', lang)}</th>"
           f"<th>{t('col_arm_class', lang)}</th>" + "".join(f"<th>{_e(word('status', st, lang))}</th>" for st in statuses)
           + "</tr>"]
    for (o, h, a), g in cov.groupby(["outcome_key", "horizon_months", "arm_class"], sort=False):
        out.append(f"<tr><td>{_e(label.get(o, o))}</td><td class='num'>{h} {mo}</td><td>{_e(arm_class_label(a, lang))}</td>"
                   + "".join(f"<td class='num'>{int(counts.get((o, h, a, st), 0))}</td>" for st in statuses) + "</tr>")
    out.append("</table>")
    return "".join(out) + _in_files("de status per gemeente", "the status per municipality", "coverage.csv",
                                    len(results.inputs.municipalities), lang)


def coverage_table(results, lang: str = "en") -> str:
    if _too_many(results):
        return _coverage_counts(results, lang)
    cov = results.coverage
    munis = list(results.inputs.municipalities["municipality"])
    names = dict(zip(results.inputs.municipalities["municipality"], results.inputs.municipalities["name"]))
    css = {"transcribed": "ok", "derived-SE": "derived", "pending": "pending", "not applicable": "na",
           "not reported": "notreported"}
    out = [f"<table><tr><th>{t('col_outcome', lang)}</th><th>{t('col_horizon', lang)}</th>"
           f"<th>{t('col_arm_class', lang)}</th>" + "".join(f"<th>{_e(names[m])}</th>" for m in munis) + "</tr>"]
    mo = t("months", lang)
    label = _outcome_labels(results, lang)
    n_hidden = 0
    for (o, h, a), g in cov.groupby(["outcome_key", "horizon_months", "arm_class"], sort=False):
        st = dict(zip(g["municipality"], g["status"]))
        if not set(st.values()) & {"transcribed", "derived-SE"}:
            n_hidden += 1
            continue
        out.append(f"<tr><td>{_e(label.get(o, o))}</td><td class='num'>{h} {mo}</td><td>{_e(arm_class_label(a, lang))}</td>"
                   + "".join(f"<td class='{css.get(st[m], '')}'>{_e(word('status', st[m], lang))}</td>" for m in munis)
                   + "</tr>")
    out.append("</table>")
    out.append(f"<p class='small'>{t('coverage_shown', lang, shown=len(out) - 2, hidden=n_hidden)}</p>")
    pend = results.inputs.municipalities
    pend = pend[pend["status"] == "pending"]
    items = "".join(f"<li><b>{_e(r['name'])}</b>: {_e(r['pending_where'])}</li>" for _, r in pend.iterrows())
    return "".join(out) + (f"<p>{t('pending_where', lang)}</p><ul>{items}</ul>" if items else "")


def side_by_side_table(results, lang: str = "en") -> str:
    if _too_many(results):
        return _in_files("de tabel naast elkaar", "the side-by-side table", "side_by_side.csv",
                         len(results.inputs.municipalities), lang)
    sbs = results.side_by_side
    munis = list(results.inputs.municipalities["municipality"])
    names = dict(zip(results.inputs.municipalities["municipality"], results.inputs.municipalities["name"]))
    out = [f"<table><tr><th>{t('col_outcome', lang)}</th><th>{t('col_horizon', lang)}</th>"
           f"<th>{t('col_arm_class', lang)}</th><th>{t('col_unit', lang)}</th>"
           + "".join(f"<th>{_e(names[m])}</th>" for m in munis) + "</tr>"]
    mo = t("months", lang)
    label = _outcome_labels(results, lang)
    for _, r in sbs.iterrows():
        cells = "".join(
            f"<td class='{'pending' if r[m] == 'pending' else 'num'}'>{_e(word('status', r[m], lang))}</td>"
            for m in munis)
        out.append(f"<tr><td>{_e(label.get(r['outcome_key'], r['outcome_key']))}</td>"
                   f"<td class='num'>{int(r['horizon_months'])} {mo}</td>"
                   f"<td>{_e(arm_class_label(r['arm_class'], lang))}</td><td>{_e(_unit_short(r['unit_h']))}</td>"
                   f"{cells}</tr>")
    out.append("</table>")
    return "".join(out)


def sources_table(results, lang: str = "en") -> str:
    from meta import sources

    s = results.studies
    if _too_many(results):
        return _in_files("elke studierij met bron (bestand, tabel, regel)",
                         "every study row with its source (file, table, line)", "studies.csv",
                         len(results.inputs.municipalities), lang)
    src, pages = results.inputs.sources, results.inputs.source_pages

    def cite(r):
        """The citation, and the text file and line for whoever checks the transcription."""
        text = sources.citation(src, pages, r["source_file"], r["source_table"], r["source_line"], lang)
        line = f"{sources.WORDS[lang]['line']} {int(r['source_line'])}"
        where = sources.page_text(pages, r["source_file"], int(r["source_line"]), lang)
        cell = _e(text)
        if text.endswith(where):  # the page (range) on one line: 'p. 17–23', never 'p. 17–' / '23'
            cell = f"{_e(text[: -len(where)])}<span style='white-space:nowrap'>{_e(where)}</span>"
        if text.endswith(line):
            return cell
        return f"{cell}<br><span class='small'>{_e(r['source_file'])}, {_e(line)}</span>"

    out = ["<table><tr><th>#</th><th>Municipality</th><th>Arm (components)</th><th>Outcome</th><th>Horizon</th>"
           "<th>Model</th><th>As printed</th><th>yi</th><th>sei [bracket]</th><th>SE method</th><th>Source</th></tr>"]
    for _, r in s.iterrows():
        bracket = ("" if r["sei_low"] == r["sei_high"]
                   else f" [{_num(r['sei_low'], 2)}, {_num(r['sei_high'], 2)}]")
        out.append(
            f"<tr id='src-{int(r['input_row'])}'><td class='num'>{int(r['input_row'])}</td><td>{_e(r['municipality'])}</td>"
            f"<td>{_e(r['arm'])} ({_e(components_label(r['arm_components'], lang))})</td><td>{_e(r['outcome'])}</td>"
            f"<td class='num'>{int(r['horizon_months'])} m</td><td>{_e(r['model'])}</td>"
            f"<td class='num'><code>{_e(r['printed'])}</code></td><td class='num'>{_num(r['yi'], 2)}</td>"
            f"<td class='num'>{_num(r['sei'], 2)}{bracket}</td><td>{_e(r['se_method'])}</td>"
            f"<td>{cite(r)}</td></tr>")
    out.append("</table>")
    return "".join(out)


def references_section(results, lang: str = "en") -> str:
    """The full reference of every source document (``inputs/sources.csv``) and how its pages are cited."""
    from meta import sources

    src = results.inputs.sources
    if src is None or len(src) == 0:
        return ("<p>Geen <code>sources.csv</code> in de invoermap: bronnen worden genoemd met bestandsnaam en "
                "regelnummer.</p>" if lang == "nl" else
                "<p>No <code>sources.csv</code> in the inputs folder: sources are named by file name and line.</p>")
    items = "".join(f"<li id='ref-{_e(r['source_file'])}'><b>{_e(r['label_nl' if lang == 'nl' else 'label_en'])}"
                    f"</b>: {_e(sources.reference(r, lang))}</li>" for _, r in src.iterrows())
    if lang == "nl":
        how = ("<p class='small'>Paginanummers zijn de gedrukte nummers van het rapport, afgeleid uit het tekstbestand "
               "zelf: uit de inhoudsopgave (het begin van de paragraaf waarin de tabel staat) of uit paginanummers "
               "onderaan een pagina. 'p. 17–23' betekent: op een van die pagina's; 'r. 1429' is de regel in het "
               "tekstbestand waar het tekstbestand geen paginagrens vermeldt. Gegevens tussen [haken] staan niet in "
               "het tekstbestand en zijn afgeleid; de toelichting staat in <code>inputs/sources.csv</code>.</p>")
    else:
        how = ("<p class='small'>Page numbers are the report's printed numbers, derived from the text file itself: "
               "from the table of contents (the start of the section that holds the table) or from page numbers at "
               "the foot of a page. 'p. 17–23' means on one of those pages; 'line 1429' is the line of the text file "
               "where the text file marks no page boundary. Details in [brackets] are not printed in the text file "
               "and are supplied; <code>inputs/sources.csv</code> says on what evidence.</p>")
    return f"<ul>{items}</ul>{how}"


SE_METHOD_TEXT_NL = {
    "reported_se": "standaardfout gedrukt in het rapport",
    "from_ci": "uit het gedrukte betrouwbaarheidsinterval en zijn niveau",
    "from_p": "uit een exacte p-waarde (tweezijdig, z)",
    "from_shares_binomial": "uit de aandelen en N van arm en controlegroep (binomiaal, niet gecorrigeerd voor covariaten)",
    "from_shares_binomial_and_marks": "uit de aandelen en N van arm en controlegroep (binomiaal), in overeenstemming met "
                                      "het gedrukte significantieteken",
    "from_significance_marks": "gereconstrueerd uit significantietekens (interval; zie hieronder)",
}


def methods_section(results, lang: str = "en") -> str:
    plan = results.plan
    s = results.studies
    shares = s["se_method"].value_counts() if len(s) else pd.Series(dtype=int)
    texts = SE_METHOD_TEXT_NL if lang == "nl" else SE_METHOD_TEXT
    of = "van" if lang == "nl" else "of"
    rows_word = "studierijen" if lang == "nl" else "study rows"
    items = "".join(
        f"<li><b>{_e(m)}</b> ({_e(texts[m])}): {int(shares.get(m, 0))} {of} {len(s)} {rows_word} "
        f"({100 * shares.get(m, 0) / max(len(s), 1):.0f}%)</li>" for m in SE_METHODS)
    if lang == "nl":
        return _methods_nl(plan, items)
    test_text = {
        "z": "Wald-type z intervals",
        "knha": "the Hartung-Knapp-Sidik-Jonkman method (t distribution with k−1 degrees of freedom, "
                "variance scaled by the weighted residual mean square)",
        "adhoc": "the Hartung-Knapp-Sidik-Jonkman method with its scale factor floored at 1 (ad hoc variant)",
    }[plan.test.lower()]
    return f"""
<p>Each cell (outcome × horizon × arm class) is a random-effects meta-analysis across the municipalities that
report it, with τ² estimated by <b>{_e(plan.method)}</b> and inference for the pooled effect by {test_text}, at the
{plan.level:g}% level. The τ² interval is the Q-profile interval (Viechtbauer 2007); I² and H² are metafor's τ²-based
definitions. The prediction interval is metafor's: estimate ± t<sub>k−1</sub>·√(τ² + SE²)
(z for Wald). The engine reproduces R's metafor for every estimator and test; the reference values and
the exact R calls are in <code>tests/reference/</code>.</p>
<p>Effects are intention-to-treat differences against the randomised control group, in percentage points for shares
and in scale points for survey indices. Comparisons with non-randomised reference groups and between-arm contrasts are
transcribed but never pooled. When a report prints several model columns the plan prefers
<b>{_e(', '.join(plan.model_preference))}</b>, in that order.</p>
<p>Standard errors ({_e(plan.se_policy)} policy):</p><ul>{items}</ul>
<p>Where a report prints only significance marks, a mark bounds |estimate|/SE: a mark for p below a threshold gives an
upper bound on the SE, no mark a lower bound, a mark for p between two thresholds both. The rounding of the printed
estimate widens the bracket; the outcome's range and the arm sizes give a further upper bound; rows of one regression
share a common SE. The <b>central</b> policy keeps a row marked significant (p below a threshold) significant, with its
p-value at half the threshold, and otherwise uses the geometric centre of the bracket, √(lower·upper), with the
lower bound raised to a third of the upper bound where it is lower (so the value never jumps and never falls when a bound
rises); the <b>conservative</b> policy always uses the upper bound.
Pooled rows with such SEs are marked ⚠; their intervals rest on this reconstruction, not on printed standard errors.
The p-value shown for a single study whose SE came from a mark is the range the mark prints, not a computed number.</p>
<p>Hartung-Knapp intervals can be narrower than Wald intervals when the municipalities agree more closely than their
standard errors imply (scale factor below 1); the ad hoc variant floors that factor at 1 and is part of the sensitivity
analysis. When τ² is estimated as 0 the prediction interval equals the confidence interval: with few municipalities the
spread between them is then not estimable, which is not the same as absent.</p>
<div class='note warn'><b>Few studies.</b> With two municipalities a between-municipality variance cannot be estimated
with any precision and Hartung-Knapp intervals use a t distribution with one degree of freedom: such intervals are
correct but very wide, which is why the Bayesian model is the headline for few municipalities (below). Cells with one
municipality are shown as reported, not pooled.</div>
"""


def _methods_nl(plan, items: str) -> str:
    test_text = {
        "z": "Wald-intervallen (z)",
        "knha": "de methode van Hartung-Knapp-Sidik-Jonkman (t-verdeling met k−1 vrijheidsgraden, variantie geschaald "
                "met het gewogen gemiddelde residukwadraat)",
        "adhoc": "de methode van Hartung-Knapp-Sidik-Jonkman met de schaalfactor naar onderen begrensd op 1 (ad hoc)",
    }[plan.test.lower()]
    return f"""
<p>Elke cel (uitkomst × horizon × armklasse) is een random-effects meta-analyse over de gemeenten die er een cijfer voor
hebben, met τ² geschat met <b>{_e(plan.method)}</b> en inferentie voor het gepoolde effect volgens {test_text}, op
{plan.level:g}%-niveau. Het interval voor τ² is het Q-profielinterval (Viechtbauer 2007); I² en H² volgen de
τ²-definities van metafor. Het predictie-interval is dat van metafor: schatting ± t<sub>k−1</sub>·√(τ² + SE²)
(z bij Wald). De rekenkern reproduceert R's metafor voor elke schatter en toets; de referentiewaarden en de exacte
R-aanroepen staan in <code>tests/reference/</code>.</p>
<p>Effecten zijn intention-to-treat-verschillen met de gerandomiseerde controlegroep, in procentpunten voor aandelen en
in schaalpunten voor survey-indices. Vergelijkingen met niet-gerandomiseerde referentiegroepen en verschillen tussen
armen zijn overgenomen maar worden nooit gepoold. Als een rapport meerdere modelkolommen drukt, kiest het plan
<b>{_e(', '.join(plan.model_preference))}</b>, in die volgorde.</p>
<p>Standaardfouten (beleid: {_e(plan.se_policy)}):</p><ul>{items}</ul>
<p>Waar een rapport alleen significantietekens drukt, begrenst een teken |schatting|/SE: een teken voor p onder een
drempel geeft een bovengrens voor de SE, geen teken een ondergrens, een teken voor p tussen twee drempels beide. De
afronding van de gedrukte schatting verruimt het interval; het bereik van de uitkomst en de armgroottes geven een
verdere bovengrens; rijen uit één regressie delen een gemeenschappelijke SE. Het beleid <b>central</b> houdt een rij
die als significant is gemarkeerd (p onder een drempel) significant, met p op de helft van de drempel, en neemt
anders het meetkundige midden van het interval, √(ondergrens·bovengrens), met de ondergrens opgetrokken tot een derde
van de bovengrens waar die lager ligt (zo springt de waarde nergens en daalt ze nooit als een grens stijgt); het beleid
<b>conservative</b> neemt altijd de bovengrens. Gepoolde rijen met zulke SE's zijn gemarkeerd met ⚠; hun intervallen
rusten op deze reconstructie, niet op gedrukte standaardfouten. De p-waarde bij één studie met een SE uit een teken is
het bereik dat het teken aangeeft, geen berekend getal.</p>
<p>Hartung-Knapp-intervallen kunnen smaller zijn dan Wald-intervallen als de gemeenten meer overeenstemmen dan hun
standaardfouten doen verwachten (schaalfactor onder 1); de ad-hocvariant begrenst die factor op 1 en zit in de
gevoeligheidsanalyse. Als τ² op 0 wordt geschat, valt het predictie-interval samen met het betrouwbaarheidsinterval:
met weinig gemeenten is de spreiding tussen gemeenten dan niet te schatten, wat iets anders is dan afwezig.</p>
<div class='note warn'><b>Weinig studies.</b> Met twee gemeenten is de variantie tussen gemeenten nauwelijks te schatten
en gebruiken Hartung-Knapp-intervallen een t-verdeling met één vrijheidsgraad: zulke intervallen zijn correct maar erg
breed; daarom is bij weinig gemeenten het Bayesiaanse model de kern (hieronder). Cellen met één gemeente worden getoond
zoals gerapporteerd, niet gepoold.</div>
"""


SIMULATION_SUMMARY = Path(__file__).resolve().parent.parent / "inputs" / "simulation" / "simulation_summary.md"


def _markdown_inline(text: str) -> str:
    text = _e(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def simulation_verdict(summary_path: Path = SIMULATION_SUMMARY, lang: str = "en") -> str:
    """The 'Verdict' and 'What this means' bullets of the committed simulation study, as HTML.

    The study is run by ``meta simulate`` (``inputs/simulation/``); the report quotes it, it does not rerun it.
    """
    if not Path(summary_path).exists():
        return ("<p>Simulatiestudie niet gevonden: draai <code>meta simulate</code>.</p>" if lang == "nl" else
                "<p>Simulation study not found: run <code>meta simulate</code>.</p>")
    text = Path(summary_path).read_text(encoding="utf-8")
    m = re.search(r"## Verdict\n(.*?)(?=\n## )", text, re.S)
    body = m.group(1) if m else ""
    items, paras = [], []
    for line in body.splitlines():
        if line.startswith("- "):
            items.append(f"<li>{_markdown_inline(line[2:])}</li>")
        elif line.strip() and not line.startswith("#"):
            if items:
                paras.append(f"<ul>{''.join(items)}</ul>")
                items = []
            paras.append(f"<p>{_markdown_inline(line)}</p>")
    if items:
        paras.append(f"<ul>{''.join(items)}</ul>")
    lead = ("<p>Houdt de methode haar belofte? Een simulatiestudie (<code>meta simulate</code>; volledige tabellen in "
            "<code>inputs/simulation/</code>, hieronder in het Engels) analyseert proeven op individueel niveau die "
            "lijken op de zes experimenten, drukt de resultaten af zoals de rapporten dat doen en poolt ze met deze "
            "software. Oordeel:</p>" if lang == "nl" else
            "<p>Does the method keep its promise? A simulation study (<code>meta simulate</code>; full tables in "
            "<code>inputs/simulation/</code>) analyses individual-level trials shaped like the six experiments, "
            "prints the results the way the reports print them, and pools them with this software. Verdict:</p>")
    return lead + "".join(paras)


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def robustness_section(results, extra: dict, lang: str = "en") -> str:
    rob = results.robustness
    if rob is None or len(rob) == 0:
        return ""
    nl = lang == "nl"
    label = _outcome_labels(results, lang)
    survive = rob[rob["survives_all"]]
    verdict_nl = {"negative": "negatief", "positive": "positief", "no significant effect": "geen significant effect"}
    vw = (lambda v: verdict_nl.get(v, v)) if nl else (lambda v: v)
    head = (f"<tr><th>{t('col_outcome', lang)}</th><th>{t('col_horizon', lang)}</th><th>{t('col_arm_class', lang)}</th>"
            + ("<th>Conclusie (hoofdanalyse)</th><th>Specificaties</th><th>Overeind in alle?</th><th>Bereik schatting</th>"
               "<th>Veranderd door</th></tr>" if nl else
               "<th>Conclusion (main)</th><th>Specifications</th><th>Survives all?</th><th>Estimate range</th>"
               "<th>Changed by</th></tr>"))
    body = "".join(
        f"<tr><td>{_e(label.get(r['outcome_key'], r['outcome_key']))}</td><td class='num'>{int(r['horizon_months'])}</td>"
        f"<td>{_e(arm_class_label(r['arm_class'], lang))}</td><td>{_e(vw(r['verdict']))}</td>"
        f"<td class='num'>{int(r['n_specs'])}</td><td>{('ja' if nl else 'yes') if r['survives_all'] else ('nee' if nl else 'no')}</td>"
        f"<td class='num'>[{_num(r['estimate_min'], 2)}, {_num(r['estimate_max'], 2)}]</td>"
        f"<td>{_e(r['changed_by'].replace(';', '; '))}</td></tr>" for _, r in rob.iterrows())
    groups = sorted(set(results.sensitivity["spec_group"]) - {"main"})
    intro = (f"<p>Elke rij van de hoofdanalyse is opnieuw berekend onder elke redelijke alternatieve keuze "
             f"({_e(', '.join(groups))}). <b>{len(survive)} van de {len(rob)}</b> conclusies blijven in alle "
             "specificaties overeind. Het Bayesiaanse model gebruikt de half-normale prior op τ per eenheid uit het "
             "plan (zie de beslissingskansen) en is herhaald met de halve en dubbele schaal en een half-Cauchy-prior "
             "(cellen met minstens twee gemeenten).</p>" if nl else
             f"<p>Every row of the main analysis was recomputed under every reasonable alternative choice "
             f"({_e(', '.join(groups))}). <b>{len(survive)} of {len(rob)}</b> conclusions survive all specifications. "
             "The Bayesian model uses the half-normal prior on τ per unit from the plan (see the decision "
             "probabilities) and is repeated with half and double the scale and with a half-Cauchy prior (cells with "
             "at least two municipalities).</p>")
    figs = "".join(f"<h3>{_e(f['title'])}</h3><img alt='{_e(f['title'])}' src='{_img(f['png'])}'>"
                   for name, f in extra.items() if name.startswith("specification_curve"))
    return f"{intro}<table>{head}{body}</table>{figs}"


def components_section(results, extra: dict, lang: str = "en") -> str:
    comp = results.components
    if comp is None or len(comp) == 0:
        return ""
    nl = lang == "nl"
    intro = ("<p>Het effect van elke arm t.o.v. de controlegroep is gemodelleerd als de som van de effecten van zijn "
             "onderdelen (additief componentenmodel), met de correlatie tussen armen die één controlegroep delen "
             f"(ρ = {results.plan.shared_control_correlation:g} waar de variantie van de controlegroep onbekend is), "
             "geschat met gegeneraliseerde kleinste kwadraten en een random effect per gemeente (gecontroleerd tegen "
             "metafor's <code>rma.mv</code>).</p>" if nl else
             "<p>Each arm's effect against its control group is modelled as the sum of the effects of its components "
             "(additive component model), with the correlation of arms that share one control group "
             f"(ρ = {results.plan.shared_control_correlation:g} where the control's variance is unknown), fitted by "
             "generalised least squares with a random effect per municipality (checked against metafor's "
             "<code>rma.mv</code>).</p>")
    rows = []
    for key, g in comp.groupby(["outcome_key", "horizon_months"], sort=True):
        fitted = g[g["component"].fillna("") != ""]
        if len(fitted):
            parts = "; ".join(f"{_e(word('component', r['component'].replace('_', ' '), lang))} {_num(r['estimate'], 2)} "
                              f"[{_num(r['ci_low'], 2)}, {_num(r['ci_high'], 2)}]" for _, r in fitted.iterrows())
            rows.append(f"<tr><td>{_e(key[0])}</td><td class='num'>{int(key[1])}</td><td>{parts}</td>"
                        f"<td>{_e(fitted['statement'].iloc[0])}</td></tr>")
        else:
            rows.append(f"<tr><td>{_e(key[0])}</td><td class='num'>{int(key[1])}</td><td>—</td>"
                        f"<td>{_e(g['statement'].iloc[0])}</td></tr>")
    head = (f"<tr><th>{t('col_outcome', lang)}</th><th>{t('col_horizon', lang)}</th>"
            + ("<th>Onderdelen [BI]</th><th>Opmerking</th></tr>" if nl else "<th>Components [CI]</th><th>Note</th></tr>"))
    fig = extra.get("components")
    img = f"<img alt='{_e(fig['title'])}' src='{_img(fig['png'])}'>" if fig else ""
    return f"{intro}<table>{head}{''.join(rows)}</table>{img}"


def render_report(results, figures: dict, lang: str = "nl", extra: dict | None = None) -> str:
    munis = results.inputs.municipalities
    transcribed = ", ".join(munis.loc[munis["status"] == "transcribed", "name"])
    pending = ", ".join(munis.loc[munis["status"] == "pending", "name"])
    n_in, n_used, n_ex = len(results.inputs.estimates), len(results.studies), len(results.excluded)
    reasons = results.excluded["reason"].str.replace(r"\(input rows? [\d, ]+.*\)", "(…)", regex=True).value_counts()
    reason_items = "".join(f"<li>{_e(r)}: {int(n)}</li>" for r, n in reasons.items())
    figs = "".join(
        f"<h3 id='{_e(name)}'>{_e(f['title'])}</h3><img alt='Forest plot: {_e(f['title'])}' src='{_img(f['png'])}'>"
        for name, f in figures.items())
    plan = results.plan
    nav = "".join(f'<a href="#{a}">{label}</a>' for a, label in
                  zip(("headline", "coverage", "forest", "side", "sensitivity", "components", "methods", "sources"),
                      t("nav", lang)))
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{t('title', lang)}</title>
<style>{CSS}</style></head><body>
<h1>{t('title', lang)}</h1>
<p class='small'>{t('generated', lang)} {t('settings', lang, method=_e(plan.method), test=_e(plan.test),
    level=f"{plan.level:g}", policy=_e(plan.se_policy), olevel=_e(plan.outcome_level))}</p>
<nav>{nav}</nav>
<div class='note warn'>{t('read_first', lang, done=_e(transcribed), pending=_e(pending)) if pending else
    t('read_first_all', lang, done=_e(transcribed))}{'' if (results.pooled['k'] >= 2).any() else ' ' + t('nothing_pooled', lang)}</div>
<h2 id="headline">{t('h_headline', lang)}</h2>{headline_table(results, lang)}
<p class='small'>{t('legend_headline', lang)}</p>
<h3 id="decisions">{'Beslissingskansen' if lang == 'nl' else 'Decision probabilities'}</h3>{fsr.decision_section(results, lang)}
<h2 id="coverage">{t('h_coverage', lang)}</h2>{coverage_table(results, lang)}
<h2 id="forest">{t('h_forest', lang)}</h2>{figs or f"<p>{t('no_figures', lang)}</p>"}
<h2 id="side">{t('h_side', lang)}</h2>
<p>{t('side_intro', lang, level=f"{plan.level:g}")}</p>{side_by_side_table(results, lang)}
<h2 id="sensitivity">{'Gevoeligheid' if lang == 'nl' else 'Sensitivity'}</h2>{robustness_section(results, extra or {}, lang)}
<h2 id="components">{'Onderdelen van de interventies' if lang == 'nl' else 'Components of the interventions'}</h2>
{components_section(results, extra or {}, lang)}
<h2 id="methods">{t('h_methods', lang)}</h2>{methods_section(results, lang)}
{fsr.methods_html(results, lang, SIMULATION_SUMMARY.with_name('simulation_results.csv'))}
<h3>{'Simulatiestudie' if lang == 'nl' else 'Simulation study'}</h3>{simulation_verdict(lang=lang)}
<h3>{t('h_accounting', lang)}</h3><p>{t('accounting', lang, n_in=n_in, n_used=n_used, n_ex=n_ex)}</p><ul>{reason_items}</ul>
<h2 id="sources">{t('h_sources', lang)}</h2>{sources_table(results, lang)}
<h2 id="references">{'Bronnen' if lang == 'nl' else 'Sources'}</h2>{references_section(results, lang)}
</body></html>
"""


def write_report(results, path: Path, figures: dict, lang: str = "nl", extra: dict | None = None) -> Path:
    Path(path).write_text(render_report(results, figures, lang, extra), encoding="utf-8")
    return Path(path)

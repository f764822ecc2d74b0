"""``meta.xlsx``: the workbook an analyst expects (stage 5, written by :mod:`meta.analyses.pipeline`).

Sheets (Dutch names with ``lang="nl"``, English with ``"en"``): Kerntabel/Headline, Studies,
Gevoeligheid/Sensitivity, Uitgesloten/Excluded, Dekking/Coverage, Bronnen/Sources and
Toelichting/Notes (what every column means). Every number is a numeric cell, interval bounds have their
own columns, every sheet has an autofilter and a frozen header row. A p-value known only as a range
(from a significance mark) is written as that range in its own text column, never as a number.
Words come from :mod:`meta.i18n`; codes are shown as words. The file is byte-identical across reruns
(fixed document times and zip member times).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from meta.present import fewstudies_report as fsr
from meta.i18n import (arm_class_label, cell_labels, components_label, fmt_p_range, outcome_labels,
                       period_labels, reason_words, spec_words, t, word, words)

SHEETS = {
    "headline": {"nl": "Kerntabel", "en": "Headline"},
    "studies": {"nl": "Studies", "en": "Studies"},
    "sensitivity": {"nl": "Gevoeligheid", "en": "Sensitivity"},
    "excluded": {"nl": "Uitgesloten", "en": "Excluded"},
    "coverage": {"nl": "Dekking", "en": "Coverage"},
    "sources": {"nl": "Bronnen", "en": "Sources"},
    "notes": {"nl": "Toelichting", "en": "Notes"},
}

#: column key → (Dutch header, English header, Dutch meaning, English meaning)
COLUMNS = {
    "arm_class": ("Armklasse", "Arm class", "Soort interventie (ontheffing, intensivering, vrijlating, vrije keuze)",
                  "Kind of intervention (exemption, intensive guidance, earnings release, free choice)"),
    "outcome": ("Uitkomst", "Outcome", "Uitkomstmaat zoals LOEP die heeft afgestemd", "Outcome as harmonised by LOEP"),
    "horizon": ("Horizon (maanden)", "Horizon (months)", "Maanden sinds de start van het experiment",
                "Months since the start of the experiment"),
    "period": ("Periode", "Period", "Periode van het LOEP-begrip (of de horizon op strikt niveau), met de maanden",
               "Period of the LOEP concept (or the horizon at the strict level), with its months"),
    "codes": ("Uitkomstcodes (technisch)", "Outcome codes (technical)",
              "De eigen uitkomstcode van elke gemeente in deze cel, zoals in de invoerbestanden (zelfde volgorde als "
              "Gemeenten); in woorden: Definitie per gemeente",
              "Each municipality's own outcome code in this cell, as in the input files (same order as "
              "Municipalities); in words: Definition per municipality"),
    "definitions": ("Definitie per gemeente", "Definition per municipality",
                    "De eigen uitkomst van elke gemeente in deze cel, in de woorden van het uitkomstregister, op haar "
                    "eigen meetmoment", "Each municipality's own outcome in this cell, in the words of the outcome "
                    "register, at its own month"),
    "horizons": ("Gecombineerde maanden", "Months combined",
                 "Het eigen meetmoment (maanden sinds de start) van elke gemeente in deze cel",
                 "Each municipality's own month (since the start) in this cell"),
    "transforms": ("Schaalomzettingen", "Scale transforms",
                   "Hoe elke uitkomst op de eenheid van het begrip is gezet (harmonisation.csv); geen: niet omgezet",
                   "How each outcome was put on the concept's unit (harmonisation.csv); none: not transformed"),
    "unit": ("Eenheid", "Unit", "Procentpunten (aandelen) of schaalpunten (vragenlijstschalen)",
             "Percentage points (shares) or scale points (survey scales)"),
    "k": ("k", "k", "Aantal gemeenten met een cijfer in deze cel", "Number of municipalities with a number in this cell"),
    "municipalities": ("Gemeenten", "Municipalities", "Gemeenten in deze cel", "Municipalities in this cell"),
    "estimate": ("Schatting", "Estimate", "Effect t.o.v. de controlegroep (gepoold bij k ≥ 2)",
                 "Effect against the control group (pooled when k ≥ 2)"),
    "headline_model": ("Model", "Model", "Model achter Schatting en interval: Bayesiaans (mediaan en "
                       "geloofwaardigheidsinterval, GI) bij weinig gemeenten, klassiek, of één studie",
                       "Model behind Estimate and interval: Bayesian (median and credible interval, CrI) for few "
                       "municipalities, classical, or one study"),
    "classical_estimate": ("Klassiek: schatting", "Classical: estimate", "Schatting van het klassieke model van het plan",
                           "Estimate of the plan's classical model"),
    "classical_ci_low": ("Klassiek: BI onder", "Classical: CI low", "Ondergrens, klassiek model",
                         "Lower bound, classical model"),
    "classical_ci_high": ("Klassiek: BI boven", "Classical: CI high", "Bovengrens, klassiek model",
                          "Upper bound, classical model"),
    "wald_ci_low": ("Wald: BI onder", "Wald: CI low", "Ondergrens met een Wald-interval (z)",
                    "Lower bound with a Wald interval (z)"),
    "wald_ci_high": ("Wald: BI boven", "Wald: CI high", "Bovengrens met een Wald-interval (z)",
                     "Upper bound with a Wald interval (z)"),
    "fe_estimate": ("Gemeenschappelijk effect", "Common effect", "Schatting als alle gemeenten hetzelfde effect hebben",
                    "Estimate if every municipality has the same effect"),
    "fe_ci_low": ("Gemeenschappelijk effect: BI onder", "Common effect: CI low", "Ondergrens, gemeenschappelijk effect",
                  "Lower bound, common effect"),
    "fe_ci_high": ("Gemeenschappelijk effect: BI boven", "Common effect: CI high",
                   "Bovengrens, gemeenschappelijk effect", "Upper bound, common effect"),
    "delta": ("δ", "δ", "Drempel voor een praktisch relevant effect (uit het plan)",
              "Threshold for a practically relevant effect (from the plan)"),
    "p_gt_0": ("Kans effect > 0", "P(effect > 0)", "Kans dat het effect positief is", "Probability the effect is positive"),
    "p_harm": ("Kans schade > δ", "P(harm > δ)", "Kans op een ongunstig effect groter dan δ",
               "Probability of an unfavourable effect larger than δ"),
    "p_within_delta": ("Kans |effect| < δ", "P(|effect| < δ)", "Kans dat het effect praktisch nul is",
                       "Probability the effect is practically zero"),
    "ci_low": ("BI onder", "CI low", "Ondergrens van het betrouwbaarheidsinterval", "Lower bound of the confidence interval"),
    "ci_high": ("BI boven", "CI high", "Bovengrens van het betrouwbaarheidsinterval", "Upper bound of the confidence interval"),
    "pval": ("p", "p", "p-waarde (leeg als p alleen als bereik bekend is; zie 'p (bereik)')",
             "p-value (blank when p is known only as a range; see 'p (range)')"),
    "p_range": ("p (bereik)", "p (range)", "p-bereik dat het significantieteken in het rapport aangeeft",
                "p range the report's significance mark states"),
    "pi_low": ("Predictie onder", "Prediction low", "Ondergrens van het predictie-interval (k ≥ 2)",
               "Lower bound of the prediction interval (k ≥ 2)"),
    "pi_high": ("Predictie boven", "Prediction high", "Bovengrens van het predictie-interval (k ≥ 2)",
                "Upper bound of the prediction interval (k ≥ 2)"),
    "tau2": ("τ²", "τ²", "Variantie van het ware effect tussen gemeenten", "Variance of the true effect between municipalities"),
    "tau2_ci_low": ("τ² BI onder", "τ² CI low", "Ondergrens van het Q-profielinterval voor τ²",
                    "Lower bound of the Q-profile interval for τ²"),
    "tau2_ci_high": ("τ² BI boven", "τ² CI high", "Bovengrens van het Q-profielinterval voor τ²",
                     "Upper bound of the Q-profile interval for τ²"),
    "I2": ("I² (%)", "I² (%)", "Deel van de spreiding dat op verschillen tussen gemeenten wijst",
           "Share of the spread due to differences between municipalities"),
    "I2_ci_low": ("I² BI onder", "I² CI low", "Ondergrens van het interval voor I²", "Lower bound of the interval for I²"),
    "I2_ci_high": ("I² BI boven", "I² CI high", "Bovengrens van het interval voor I²", "Upper bound of the interval for I²"),
    "Q_p": ("Q p", "Q p", "p-waarde van de heterogeniteitstoets Q", "p-value of the heterogeneity test Q"),
    "se_methods": ("SE-methoden", "SE methods", "Hoe de standaardfouten zijn verkregen", "How the standard errors were obtained"),
    "flag_derived_se": ("SE gereconstrueerd", "SE reconstructed",
                        "Ja als minstens één SE uit significantietekens of aandelen is gereconstrueerd",
                        "Yes when at least one SE was reconstructed from significance marks or shares"),
    "se_upper_bound_only": ("SE alleen bovengrens", "SE upper bound only",
                            "Ja als de SE van elke studie alleen van boven begrensd is: bij één studie is het interval "
                            "dan een buitengrens en de p-waarde een bovengrens",
                            "Yes when every study's SE is bounded from above only: for one study the interval is then "
                            "an outer bound and the p-value an upper bound"),
    "single_study": ("Eén studie", "Single study", "Ja als maar één gemeente een cijfer heeft (niet gepoold)",
                     "Yes when one municipality only has a number (not pooled)"),
    "row": ("Rij", "Row", "Rijnummer in inputs/estimates.csv", "Row number in inputs/estimates.csv"),
    "municipality": ("Gemeente", "Municipality", "Gemeente", "Municipality"),
    "arm": ("Arm", "Arm", "Arm van het experiment", "Arm of the experiment"),
    "components": ("Onderdelen", "Components", "Onderdelen van de arm", "Components of the arm"),
    "model": ("Model", "Model", "Modelkolom van het rapport", "Model column of the report"),
    "printed": ("Zoals gedrukt", "As printed", "Het getal letterlijk zoals het rapport het drukt",
                "The number exactly as the report prints it"),
    "se": ("SE", "SE", "Gebruikte standaardfout", "Standard error used"),
    "se_low": ("SE onder", "SE low", "Ondergrens van het SE-interval (uit significantietekens)",
               "Lower bound of the SE bracket (from significance marks)"),
    "se_high": ("SE boven", "SE high", "Bovengrens van het SE-interval", "Upper bound of the SE bracket"),
    "se_method": ("SE-methode", "SE method", "Hoe de standaardfout is verkregen", "How the standard error was obtained"),
    "source_file": ("Bronbestand", "Source file", "Bestand in de bronmap", "File in the sources folder"),
    "source_table": ("Tabel", "Table", "Tabel of passage in de bron", "Table or passage in the source"),
    "source_line": ("Regel", "Line", "Regelnummer in het bronbestand", "Line number in the source file"),
    "spec_group": ("Specificatiegroep", "Specification group", "Welke keuze is gevarieerd", "Which choice was varied"),
    "spec": ("Specificatie", "Specification", "De alternatieve keuze", "The alternative choice"),
    "verdict": ("Conclusie", "Conclusion", "Wat het interval over het teken zegt", "What the interval says about the sign"),
    "reason": ("Reden", "Reason", "Waarom de rij niet is gebruikt", "Why the row is not used"),
    "status": ("Status", "Status",
               "Overgenomen, afgeleide SE, gedrukt zonder af te leiden SE, niet gerapporteerd, openstaand of n.v.t.",
               "Transcribed, derived SE, printed without a derivable SE, not reported, pending or not applicable"),
    "where": ("Waar", "Where", "Waar de cijfers staan (bronregels, of voor openstaande gemeenten: welk rapport)",
              "Where the numbers are (source lines, or for pending municipalities: which report)"),
    "source": ("Bron", "Source", "Korte naam van de bron", "Short name of the source"),
    "reference": ("Volledige verwijzing", "Full reference", "Auteurs, jaar, titel, uitgever zoals gedrukt ([haken]: "
                  "afgeleid, zie inputs/sources.csv)", "Authors, year, title, publisher as printed ([brackets]: "
                  "supplied, see inputs/sources.csv)"),
    "rows_used": ("Rijen gebruikt", "Rows used", "Aantal studierijen uit deze bron", "Number of study rows from this source"),
    "rows_excluded": ("Rijen uitgesloten", "Rows excluded", "Aantal uitgesloten rijen uit deze bron",
                      "Number of excluded rows from this source"),
    "sheet": ("Blad", "Sheet", "Werkblad", "Worksheet"),
    "column": ("Kolom", "Column", "Kolomkop", "Column header"),
    "meaning": ("Betekenis", "Meaning", "Wat de kolom bevat", "What the column holds"),
}
CLASSICAL = ("classical_estimate", "classical_ci_low", "classical_ci_high", "wald_ci_low", "wald_ci_high", "fe_estimate",
             "fe_ci_low", "fe_ci_high")
PROBABILITIES = ("delta", "p_gt_0", "p_harm", "p_within_delta")
#: columns quoted verbatim from the sources (exempt from translation)
VERBATIM = ("printed", "source_file", "source_table", "where", "reference", "codes")
FORMATS = {"estimate": "0.00", "ci_low": "0.00", "ci_high": "0.00", "pi_low": "0.00", "pi_high": "0.00",
           "se": "0.000", "se_low": "0.000", "se_high": "0.000", "pval": "0.000", "Q_p": "0.000", "tau2": "0.000",
           "tau2_ci_low": "0.000", "tau2_ci_high": "0.000", "I2": "0", "I2_ci_low": "0", "I2_ci_high": "0",
           **{c: "0.00" for c in CLASSICAL}, "delta": "0.00", "p_gt_0": "0.000", "p_harm": "0.000",
           "p_within_delta": "0.000"}


def header(key: str, lang: str) -> str:
    return COLUMNS[key][0 if lang == "nl" else 1]


def _yes(x: bool, lang: str) -> str:
    return ("ja" if x else "nee") if lang == "nl" else ("yes" if x else "no")


def _unit(unit: str, lang: str) -> str:
    return t("unit_pp", lang) if unit == "percentage_points" else t("unit_scale", lang)


def _order(results, frame: pd.DataFrame) -> pd.DataFrame:
    from meta.present.report_cells import cell_order

    return cell_order(results, frame) if len(frame) else frame


def headline_sheet(results, lang: str) -> pd.DataFrame:
    from meta.present.report_cells import cell_key, cell_keys, mark_p_ranges, pooled_rows, records

    p = _order(results, results.pooled)
    label, own = cell_labels(results.inputs, lang), outcome_labels(results.inputs.outcomes, lang)
    names = dict(zip(results.inputs.municipalities["municipality"], results.inputs.municipalities["name"]))
    ranges = mark_p_ranges(results)
    by_cell = {}  # cell -> its study rows (records of the columns the sheet reads, read column by column)
    read = [c for c in ("input_row", "municipality", "outcome", "horizon_months", "transform") if c in results.studies]
    for key, s in zip(cell_keys(results.studies), records(results.studies[read])):
        by_cell.setdefault(key, []).append(s)
    rows = []
    periods = dict(zip(p["period"].tolist(), period_labels(p["period"], results.inputs.periods, lang)))
    for r in pooled_rows(results):
        studies = by_cell.get(cell_key(r), [])
        single = bool(r["single_study"])
        mark = ranges.get(int(studies[0]["input_row"])) if single and studies else None
        bad = fsr.undetermined(r)
        val = lambda col: (t("undetermined", lang, k=int(r["k"])) if col in bad  # noqa: E731
                           else r.get(col, None))
        het = lambda col: (t("undetermined", lang, k=int(r["k"])) if fsr.heterogeneity_undetermined(r)  # noqa: E731
                           else val(col))
        rows.append({
            "arm_class": arm_class_label(r["arm_class"], lang), "outcome": label.get(r["outcome_key"], r["outcome_key"]),
            "period": periods[r["period"]], "unit": _unit(r["unit_h"], lang),
            "k": int(r["k"]),
            "municipalities": ", ".join(names.get(m, m) for m in str(r["municipalities"]).split(";") if m),
            "definitions": _definitions(studies, names, own, lang),
            "codes": str(r.get("codes", "")).replace(";", ", "), "horizons": str(r.get("horizons", "")).replace(";", ", "),
            "transforms": _transform_words(studies, names, lang),
            "headline_model": fsr.model_text(r, lang),
            "estimate": val("estimate"), "ci_low": val("ci_low"), "ci_high": val("ci_high"),
            "pval": None if mark else r["pval"], "p_range": fmt_p_range(mark[0], mark[1], lang) if mark else "",
            "pi_low": None if single else val("pi_low"), "pi_high": None if single else val("pi_high"),
            "tau2": None if single else val("tau2"), "tau2_ci_low": None if single else het("tau2_ci_low"),
            "tau2_ci_high": None if single else het("tau2_ci_high"), "I2": None if single else r["I2"],
            "I2_ci_low": None if single else het("I2_ci_low"), "I2_ci_high": None if single else het("I2_ci_high"),
            "Q_p": None if single else r["Q_p"],
            **{c: (None if single else val(c)) for c in CLASSICAL},
            **{c: r.get(c, None) for c in PROBABILITIES},
            "se_methods": ", ".join(words("se_method", m, lang) for m in str(r["se_methods"]).split(";") if m),
            "flag_derived_se": _yes(bool(r["flag_derived_se"]), lang),
            "se_upper_bound_only": _yes(bool(r.get("se_upper_bound_only", False)), lang),
            "single_study": _yes(single, lang),
        })
    return pd.DataFrame(rows, columns=["arm_class", "outcome", "period", "unit", "k", "municipalities", "definitions",
                                       "horizons", "transforms",
                                       "headline_model", "estimate", "ci_low", "ci_high", "pval", "p_range",
                                       "pi_low", "pi_high", "tau2", "tau2_ci_low", "tau2_ci_high", "I2", "I2_ci_low",
                                       "I2_ci_high", "Q_p", *CLASSICAL, *PROBABILITIES, "se_methods",
                                       "flag_derived_se", "se_upper_bound_only", "single_study", "codes"])


def _definitions(studies: list, names: dict, own: dict, lang: str) -> str:
    """'Nijmegen: Looninkomen/maand >70% van WML na 16 mnd; Wageningen: …': each municipality's own outcome, in the
    words of the outcome register, at its own month (the codes stay in the technical column ``codes``)."""
    return "; ".join(
        f"{names.get(s['municipality'], s['municipality'])}: "
        + t("pool_how", lang, outcome=own.get(s["outcome"], s["outcome"]), months=int(s["horizon_months"]),
            unit=t("months", lang), transform="") for s in studies)


def _transform_words(studies: list, names: dict, lang: str) -> str:
    """How each municipality's outcome was put on the concept's unit, in words: "geen" when none was ("identity" in
    ``harmonisation.csv``), else 'Wageningen: 1–10 → 0–10, × 10/9'."""
    scaled = [(s["municipality"], s.get("transform")) for s in studies
              if isinstance(s.get("transform"), str) and s.get("transform") not in ("", "identity")]
    if not scaled:
        return t("console_none", lang)
    return "; ".join(f"{names.get(m, m)}: {t('transform_' + x, lang)}" for m, x in scaled)


def _int(x):
    return None if pd.isna(x) else int(x)


def _row_words(results, frame: pd.DataFrame, lang: str) -> dict:
    names = dict(zip(results.inputs.municipalities["municipality"], results.inputs.municipalities["name"]))
    arms = results.inputs.arms
    arm_name = dict(zip(zip(arms["municipality"], arms["arm"]), arms["name_nl" if lang == "nl" else "name_en"]))
    label = outcome_labels(results.inputs.outcomes, lang)
    col = {c: frame[c].tolist() for c in ("input_row", "municipality", "arm", "outcome", "horizon_months", "model",
                                          "printed", "source_file", "source_table", "source_line")}  # read once
    return {
        "row": [_int(x) for x in col["input_row"]],
        "municipality": [names.get(m, m) for m in col["municipality"]],
        "arm": [arm_name.get((m, a)) or str(a).replace("_", " ") for m, a in zip(col["municipality"], col["arm"])],
        "outcome": [label.get(o, str(o).replace("_", " ")) for o in col["outcome"]],
        "horizon": [_int(h) for h in col["horizon_months"]],
        "model": [words("model", m, lang) if isinstance(m, str) else None for m in col["model"]],
        "printed": col["printed"], "source_file": col["source_file"], "source_table": col["source_table"],
        "source_line": [_int(x) for x in col["source_line"]],
    }


def studies_sheet(results, lang: str) -> pd.DataFrame:
    from meta.present.report_cells import mark_p_ranges

    s = results.studies
    ranges = mark_p_ranges(results)
    out = pd.DataFrame(_row_words(results, s, lang))
    out.insert(2, "arm_class", [arm_class_label(a, lang) for a in s["arm_class"].tolist()])
    out.insert(4, "components", [components_label(c, lang) for c in s["arm_components"].tolist()])
    out["unit"] = [_unit(u, lang) for u in s["unit_h"].tolist()]
    out["estimate"] = s["yi"].to_numpy()
    out["se"] = s["sei"].to_numpy()
    low, high = s["sei_low"].tolist(), s["sei_high"].tolist()
    out["se_low"] = [lo if lo != hi else None for lo, hi in zip(low, high)]
    out["se_high"] = [hi if lo != hi else None for lo, hi in zip(low, high)]
    out["se_method"] = [words("se_method", m, lang) for m in s["se_method"].tolist()]
    out["p_range"] = [fmt_p_range(*ranges[int(r)][:2], lang) if int(r) in ranges else ""
                      for r in s["input_row"].tolist()]
    cols = ["row", "municipality", "arm_class", "arm", "components", "outcome", "horizon", "model", "unit", "printed",
            "estimate", "se", "se_low", "se_high", "se_method", "p_range", "source_file", "source_table", "source_line"]
    return out[cols]


def sensitivity_sheet(results, lang: str) -> pd.DataFrame:
    s = results.sensitivity
    if s is None or len(s) == 0:
        return pd.DataFrame(columns=["arm_class", "outcome", "period", "spec_group", "spec", "k", "estimate", "ci_low",
                                     "ci_high", "verdict"])
    s = _order(results, s)
    label = cell_labels(results.inputs, lang)
    names = dict(zip(results.inputs.municipalities["municipality"], results.inputs.municipalities["name"]))
    groups = s["spec_group"].tolist()
    return pd.DataFrame({
        "arm_class": [arm_class_label(a, lang) for a in s["arm_class"].tolist()],
        "outcome": [label.get(o, o) for o in s["outcome_key"].tolist()],
        "period": period_labels(s["period"], results.inputs.periods, lang),
        "spec_group": [word("spec_group", g, lang) for g in groups],
        "spec": [spec_words(g, sp, lang, names) for g, sp in zip(groups, s["spec"].tolist())],
        "k": [int(k) for k in s["k"].tolist()], "estimate": s["estimate"].to_numpy(),
        "ci_low": s["ci_low"].to_numpy(), "ci_high": s["ci_high"].to_numpy(),
        "verdict": [word("verdict", v, lang) for v in s["verdict"].tolist()]})


def excluded_sheet(results, lang: str) -> pd.DataFrame:
    e = results.excluded
    out = pd.DataFrame(_row_words(results, e, lang))
    out["reason"] = [reason_words(r, lang) for r in e["reason"].tolist()]
    return out[["row", "municipality", "arm", "outcome", "horizon", "model", "printed", "source_file", "source_table",
                "source_line", "reason"]]


def coverage_sheet(results, lang: str) -> pd.DataFrame:
    c = results.coverage
    munis = results.inputs.municipalities
    names = dict(zip(munis["municipality"], munis["name"]))
    col = "pending_where_nl" if lang == "nl" and "pending_where_nl" in munis else "pending_where"
    pending_note = dict(zip(munis["municipality"], munis[col]))
    label = cell_labels(results.inputs, lang)
    municipality, status = c["municipality"].tolist(), c["status"].tolist()
    where = []
    for m, st, w in zip(municipality, status, c["where"].tolist()):
        if st == "pending":
            where.append(pending_note.get(m) or w)
        elif st in ("transcribed", "derived-SE", "printed-no-SE"):
            where.append(w)
        else:
            where.append("")
    return pd.DataFrame({
        "municipality": [names.get(m, m) for m in municipality],
        "arm_class": [arm_class_label(a, lang) for a in c["arm_class"].tolist()],
        "outcome": [label.get(o, o) for o in c["outcome_key"].tolist()],
        "period": period_labels(c["period"], results.inputs.periods, lang),
        "status": [word("status", s, lang) for s in status], "where": where})


def sources_sheet(results, lang: str) -> pd.DataFrame:
    """One row per source file: its short name and full reference (``inputs/sources.csv``, as printed; values
    in [brackets] supplied, see that file), the municipalities it covers and how many of its rows are used."""
    from meta.read import sources

    used = results.studies.groupby("source_file").size()
    excl = results.excluded.groupby("source_file").size()
    names = dict(zip(results.inputs.municipalities["municipality"], results.inputs.municipalities["name"]))
    est = results.inputs.estimates
    src = getattr(results.inputs, "sources", None)
    by_file = {} if src is None or len(src) == 0 else {r["source_file"]: r for _, r in src.iterrows()}
    files = sorted(set(est["source_file"]) | set(by_file))
    label_col = "label_nl" if lang == "nl" else "label_en"
    return pd.DataFrame({
        "source": [by_file[f][label_col] if f in by_file else "" for f in files],
        "reference": [sources.reference(by_file[f], lang) if f in by_file else "" for f in files],
        "source_file": files,
        "municipalities": [", ".join(sorted({names.get(m, m) for m in est.loc[est["source_file"] == f, "municipality"]}))
                           for f in files],
        "rows_used": [int(used.get(f, 0)) for f in files], "rows_excluded": [int(excl.get(f, 0)) for f in files]})


def notes_sheet(sheets: dict, lang: str) -> pd.DataFrame:
    rows = []
    for name, frame in sheets.items():
        for key in frame.columns:
            meaning = COLUMNS[key][2 if lang == "nl" else 3]
            if key in fsr.ONE_DF_COLUMNS:  # why a classical bound of two municipalities reads "onbepaald (k = 2)"
                meaning += "; " + t("workbook_one_df", lang)
            rows.append({"sheet": name, "column": header(key, lang), "meaning": meaning})
    return pd.DataFrame(rows, columns=["sheet", "column", "meaning"])


def workbook_sheets(results, lang: str) -> dict:
    """{sheet name: DataFrame with COLUMNS keys as column names}, in sheet order."""
    sheets = {
        SHEETS["headline"][lang]: headline_sheet(results, lang),
        SHEETS["studies"][lang]: studies_sheet(results, lang),
        SHEETS["sensitivity"][lang]: sensitivity_sheet(results, lang),
        SHEETS["excluded"][lang]: excluded_sheet(results, lang),
        SHEETS["coverage"][lang]: coverage_sheet(results, lang),
        SHEETS["sources"][lang]: sources_sheet(results, lang),
    }
    sheets[SHEETS["notes"][lang]] = notes_sheet(sheets, lang)
    return sheets


def write_workbook(results, path: Path, lang: str = "nl") -> Path:
    """Write ``meta.xlsx``: numeric cells with formats, autofilter, frozen header, byte-identical reruns."""
    from meta.present.report_cells import sharing

    with sharing():  # what several sheets (and the report, in a block around both) read is worked out once
        return write_sheets(workbook_sheets(results, lang), path, lang)


def write_sheets(sheets: dict, path: Path, lang: str, fast: bool = True) -> Path:
    """Write ``{sheet name: frame with COLUMNS keys}`` as a workbook at ``path`` (:mod:`meta.write.xlsx_package`).

    Each sheet: a bold header row, column widths from the header and the first 200 values (8 to 60 characters),
    frozen header, autofilter; a column with a number format in :data:`FORMATS` has it on every data cell (empty
    ones too). ``fast``: the package written by meta as openpyxl writes it (openpyxl when it cannot); else openpyxl
    writes every row."""
    from meta.write.xlsx_package import write

    return write(sheet_specs(sheets, lang), path, fast)


def sheet_specs(sheets: dict, lang: str) -> list:
    """What :func:`meta.write.xlsx_package.write` takes for ``sheets``: per sheet its name, headers, columns' cell
    values, widths and number formats."""
    specs = []
    for name, frame in sheets.items():
        keys = list(frame.columns)
        values = [frame[key].tolist() for key in keys]  # each column read once, for its width and its cells
        specs.append((name, [header(key, lang) for key in keys], [_cell_values(v) for v in values],
                      [_width(header(key, lang), v) for key, v in zip(keys, values)], [FORMATS.get(k) for k in keys]))
    return specs


def _cell_values(values: list) -> list:
    """A column's values (``Series.tolist()``) as workbook cell values: Python scalars, None for a missing value."""
    return [None if v is None or (isinstance(v, float) and v != v) else (v.item() if hasattr(v, "item") else v)
            for v in values]


def _width(head: str, values: list) -> int:
    """A column's width: its header's or its first 200 values' longest text (as ``str`` writes the values
    ``Series.tolist()`` gives), + 2, from 8 to 60 characters."""
    return min(60, max(8, max([len(head)] + [len(str(v)) for v in values[:200]]) + 2))

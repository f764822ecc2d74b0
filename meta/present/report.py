"""The self-contained HTML report (stage 5): no network, figures embedded.

Every number in the report links back to its source: study rows link to the
sources table, which gives the seed file, table and line and the token as
printed there.

Each section is a function that computes its values (numbers formatted by :mod:`meta.i18n`, words from its
catalogue) and renders its template in ``templates/`` (:mod:`meta.present.templating`, autoescaped);
:func:`render_report` puts them into ``templates/report.html.j2``.
"""

from __future__ import annotations

import math

import pandas as pd
from markupsafe import Markup

from meta.present import fewstudies_report as fsr
from meta.present.component_figure import outer_bound_models
from meta.effects.concepts import SE_METHOD as RANGE_BOUND
from meta.effects.harmonise import SE_METHODS
from meta.analyses.tables import dominant_study, plan_order, study_intervals
from meta.present.report_cells import (REPORT_MAX_LISTED_CELLS, REPORT_MAX_MUNICIPALITIES, PeriodTexts, arms_text,
                                       cell_arms, cell_key, cell_keys, cell_order, cell_rows, cell_texts, mark_p_texts,
                                       municipality_names, pooled_rows, records, row_anchor, sharing)
from meta.present.report_simulation import SIMULATION_SECTION, simulation_table, simulation_verdict  # noqa: F401
from meta.present.report_sources import coverage_table, references_section, side_by_side_table, sources_table
from meta.present.templating import esc, render, text
from meta.read import sources
from meta.simulate.settings import SIMULATION_SUMMARY
from meta.version import __version__
from meta.i18n import (arm_class_label, cell_labels, changed_by_words, component_note_words, fmt_g,
                       fmt_interval, fmt_num, fmt_p, method_words, outcome_labels, reason_words, t, word, words,
                       concept_labels, word_list, MISSING)


#: The columns of a pooled row the Kerntabel prints through :func:`meta.present.fewstudies_report.value_text` or
#: ``interval_text`` (:func:`_headline_row`): the footnote on "onbepaald" goes under it only when one of these is
#: printed so (τ² and I²'s intervals have their own footnote), not for the classical fits it leaves to pooled.csv.
HEADLINE_SHOWN = frozenset({"estimate", "ci_low", "ci_high", "pi_low", "pi_high", "tau2"})


def headline_table(results, lang: str = "en") -> str:
    """The Kerntabel (``templates/headline.html.j2``): one row per cell, arm class first, as the ministry reads."""
    p = results.pooled
    if len(p) == 0:
        return render("headline.html.j2", lang, rows=[])
    p = cell_order(results, p)
    label, mark_p, arms = cell_labels(results.inputs, lang), mark_p_texts(results, lang), _arm_texts(results, lang)
    cells, periods = pooled_rows(results), PeriodTexts(results, lang)
    rows = [_headline_row(r, lang, label, mark_p, arms, periods) for r in cells]
    return render("headline.html.j2", lang, rows=rows, level=fmt_g(results.plan.level, lang),
                  note=any(fsr.undetermined(r) & HEADLINE_SHOWN for r in cells),
                  note_upper=any(fsr.upper_bound_only(r) for r in cells),
                  upper_mark=UPPER_MARK,
                  note_heterogeneity=any(fsr.heterogeneity_undetermined(r) for r in cells))


UPPER_MARK = fsr.UPPER_MARK


def _upper_p(p: str, lang: str) -> str:
    """A p-value that is only an upper bound: '≤0,965' (the SE behind it is the largest possible), written as the
    other p-values known only as a range are (``<0,001``, ``≥0,1``: :func:`meta.i18n.fmt_p`, ``fmt_p_range``)."""
    return p if p == MISSING else f"≤{p}"


def upper_bound_count(results, lang: str = "en") -> str:
    """The 'read this first' sentence: how many Kerntabel rows rest on an SE that is only an upper bound."""
    p = results.pooled
    n = sum(fsr.upper_bound_only(r) for r in pooled_rows(results))
    return text("read_first_upper_bound", lang, n=n, total=len(p)) if n else ""


def _arm_texts(results, lang: str) -> dict:
    """{cell: 'Nijmegen: exemption + release …; Wageningen: …'}, or the number of municipalities past the limit."""
    return {key: arms_text(arms, lang) for key, arms in cell_arms(results, lang).items()}


def _headline_row(r: dict, lang: str, label: dict, mark_p: dict, arms: dict, periods: PeriodTexts) -> dict:
    """The values of one Kerntabel row (a pooled row as a dict), formatted."""
    d = fsr.unit_digits(r["unit_h"])
    single = bool(r["single_study"])
    p = fmt_p(r["pval"], lang)
    return dict(
        anchor=row_anchor(r), single=single, arm_class=arm_class_label(r["arm_class"], lang),
        outcome=label.get(r["outcome_key"], r["outcome_label"]), period=periods[r["period"]],
        k=int(r["k"]), munis=arms.get(cell_key(r), r["municipalities"]), model=fsr.model_text(r, lang),
        estimate=fsr.value_text(r, "estimate", d, lang), unit=fsr.unit_short(r["unit_h"], lang),
        interval=fsr.interval_text(r, "ci_low", "ci_high", d, lang) + (UPPER_MARK if fsr.upper_bound_only(r) else ""),
        p=mark_p.get(cell_key(r), _upper_p(p, lang) if fsr.upper_bound_only(r) else p) if single else p,
        pi=fsr.interval_text(r, "pi_low", "pi_high", d, lang), tau2=fsr.value_text(r, "tau2", 2, lang),
        tau2_ci=fsr.heterogeneity_interval_text(r, "tau2_ci_low", "tau2_ci_high", 2, lang),
        I2=fmt_num(r["I2"], 0, lang), I2_ci=fsr.heterogeneity_interval_text(r, "I2_ci_low", "I2_ci_high", 0, lang),
        Q_p=fmt_p(r["Q_p"], lang),
        methods=", ".join(words("se_method", m, lang) for m in str(r["se_methods"]).split(";") if m),
        flag=" ⚠" if r["flag_derived_se"] else "")


def pools_section(results, lang: str = "en") -> str:
    """How each concept cell was made: per municipality its own outcome wording, month and scale transform.

    E.g. "werk, einde experiment = Nijmegen: Looninkomen/maand >70% van WML na 16 mnd; Wageningen: Volledige
    uitstroom naar betaald werk na 24 mnd". A municipality the register lists as ``not_reported`` for the concept
    and period is named with the source lines. Empty at the strict level (a cell is then one code at one month).
    """
    if results.plan.outcome_level != "concept" or len(results.studies) == 0:
        return ""
    concept = concept_labels(results.inputs.concepts, lang)
    register = results.inputs.harmonisation
    missing = {}  # (concept, period) -> the register's not_reported rows for it, in register order
    for r in register[register["role"] == "not_reported"].to_dict("records"):
        missing.setdefault((r["concept"], r["period"]), []).append(r)
    items, periods = [], PeriodTexts(results, lang)
    names, own = municipality_names(results), outcome_labels(results.inputs.outcomes, lang)
    rows = records(results.studies[["outcome_key", "period", "arm_class", "municipality", "outcome", "horizon_months",
                                    "transform"]])
    cells = {}  # (concept, period) -> its study rows
    for r in rows:
        if not (pd.isna(r["outcome_key"]) or pd.isna(r["period"])):  # a missing value is in no group
            cells.setdefault((r["outcome_key"], r["period"]), []).append(r)
    order = plan_order(results.plan)  # as the forest plots follow (werk first)
    for c, period in sorted(cells, key=lambda cell: order(*cell)):
        g = cells[c, period]
        by_class = {}  # arm class -> its municipalities (groupby("arm_class")["municipality"].nunique())
        for r in g:
            if not pd.isna(r["arm_class"]):
                by_class.setdefault(r["arm_class"], set()).update([] if pd.isna(r["municipality"]) else
                                                                  [r["municipality"]])
        k = max(len(m) for m in by_class.values())
        items.append(dict(concept=concept.get(c, c), period=periods[period],
                          k=f"(k = {k})" if k >= 2 else "",
                          parts=" — ".join(_pool_parts(results, g, missing.get((c, period), []), lang, names, own))))
    return render("pools.html.j2", lang, items=items)


def _pool_parts(results, g: list[dict], missing: list, lang: str, names: dict, own: dict) -> list[str]:
    """'Nijmegen: <own outcome> na 16 mnd', one per municipality of a concept cell (its study rows ``g``), then
    those that print no number (``missing``: the harmonisation register's ``not_reported`` rows of the cell);
    ``names``: municipality names, ``own``: outcome labels."""
    definitions = {}  # municipality (first appearance) -> its (outcome, month, transform) combinations
    for m, *key in ((r["municipality"], r["outcome"], r["horizon_months"], r["transform"]) for r in g):
        if not pd.isna(m):  # a missing value is in no group (as in a groupby)
            found = definitions.setdefault(m, set())
            if not any(pd.isna(v) for v in key):
                found.add(tuple(key))
    parts = []
    for m, found in definitions.items():
        how = [t("pool_how", lang, outcome=own.get(o, o), months=int(h), unit=t("months", lang),
                 transform="" if tr == "identity" else f" ({t('transform_' + tr, lang)})")
               for o, h, tr in sorted(found)]
        parts.append(f"{names[m]}: {'; '.join(how)}")
    for r in missing:
        lines = sources.cite_lines(results.inputs.sources, results.inputs.source_pages, r["source_lines"], lang)
        parts.append(f"{names[r['municipality']]}: {t('no_number', lang, lines=lines)}"
                     + t("pool_missing_reason", lang, reason=sources.cite_inline(
                         r["reason"], results.inputs.sources, results.inputs.source_pages, lang)))
    return parts


def pooled_count(results, lang: str = "en") -> str:
    """The 'read this first' sentence: how many cells are pooled (k ≥ 2) and which (past
    :data:`REPORT_MAX_LISTED_CELLS` only how many, with a pointer to the headline table)."""
    p = results.pooled
    multi = p[p["k"] >= 2] if len(p) else p
    if len(multi) == 0:
        return Markup(" ") + text("nothing_pooled", lang)
    groups = [t("pooled_cells_in_table", lang)]
    if len(multi) <= REPORT_MAX_LISTED_CELLS:
        label, periods = cell_labels(results.inputs, lang), PeriodTexts(results, lang)
        classes = {}  # (outcome, period) -> its arm classes in row order; as groupby(sort=True): no missing key
        for o, period, a in zip(*(multi[c].tolist() for c in ("outcome_key", "period", "arm_class"))):
            if not (pd.isna(o) or pd.isna(period)):
                classes.setdefault((o, period), []).append(a)
        groups = [f"{label.get(o, o)} ({periods[period]}: {', '.join(arm_class_label(a, lang) for a in arms)})"
                  for (o, period), arms in sorted(classes.items())]
    return (text("pooled_count", lang, n=len(multi), total=len(p), cells="; ".join(groups))
            + text("pooled_arms", lang, classes=_class_arms(results, multi, lang)))


def _class_arms(results, multi: pd.DataFrame, lang: str) -> str:
    """'ontheffing = Nijmegen: ontheffing + vrijlating …; Wageningen: ontheffing. intensivering = …': what each arm
    class holds in the pooled cells, per municipality by its arm's components (the study rows' ``arm_components``)."""
    arms = cell_arms(results, lang)
    cells_of = {}  # arm class -> its cells in row order, classes in order of first appearance (groupby(sort=False))
    for arm_class, key in zip(multi["arm_class"].tolist(), cell_keys(multi)):
        if not pd.isna(arm_class):
            cells_of.setdefault(arm_class, []).append(key)
    out = []
    for arm_class, keys in cells_of.items():
        seen = list(dict.fromkeys(a for key in keys for a in arms.get(key, [])))
        out.append(f"<b>{esc(arm_class_label(arm_class, lang))}</b> = {esc(arms_text(seen, lang))}")
    return Markup(". ".join(out))


def methods_section(results, lang: str = "en") -> str:
    """The model, test and level, the SE methods with their shares of the study rows, and how marks bound an SE
    (``templates/methods.html.j2``)."""
    plan, s = results.plan, results.studies
    shares = s["se_method"].value_counts() if len(s) else pd.Series(dtype=int)
    items = [dict(name=words("se_method", m, lang), text=word("se_method_long", m, lang), n=int(shares.get(m, 0)),
                  pct=fmt_num(100 * shares.get(m, 0) / max(len(s), 1), 0, lang)) for m in (*SE_METHODS, RANGE_BOUND)]
    few = plan.few_studies_k >= 2
    model = dict(method=plan.method, test=Markup(word("test_long", plan.test.lower(), lang)),
                 level=fmt_g(plan.level, lang), policy=words("policy", plan.se_policy, lang),
                 models="; ".join(words("model", m, lang) for m in plan.model_preference),
                 headline=text("methods_headline_few", lang, k=plan.few_studies_k, level=fmt_g(plan.level, lang))
                 if few else "", few_box=t("few_box_bayes" if few else "few_box_classical", lang))
    return render("methods.html.j2", lang, model=model, items=items, total=len(s))


def robustness_section(results, extra: dict, lang: str = "en") -> str:
    """Per Kerntabel row: does its conclusion survive every specification of the sensitivity analysis, and the
    specification curves (``templates/robustness.html.j2``)."""
    rob = results.robustness
    if rob is None or len(rob) == 0:
        return ""
    label, names = cell_labels(results.inputs, lang), municipality_names(results)
    groups = [word("spec_group", g, lang) for g in sorted(set(results.sensitivity["spec_group"]) - {"main"})]
    # "includes zero" on an outer bound (the only study's SE is an upper bound) is no verdict: not judged or counted
    upper = {cell_key(r) for r in pooled_rows(results) if _upper_and_includes_zero(r)}
    judged = [cell_key(r) not in upper for r in records(rob)]
    periods = PeriodTexts(results, lang)
    intro = dict(groups=", ".join(groups), survive=int(rob["survives_all"][judged].sum()), total=sum(judged))
    rows = [{**cell_texts(results, r["outcome_key"], r["period"], r["arm_class"], lang, label, periods),
             "verdict": word("verdict", r["verdict"], lang), "n_specs": int(r["n_specs"]),
             "survives": bool(r["survives_all"]), "upper": cell_key(r) in upper,
             "range": fmt_interval(r["estimate_min"], r["estimate_max"], fsr.unit_digits(r["unit_h"]), lang),
             "lines": _robustness_lines(r, names, lang)}
            for r in records(cell_order(results, rob))]
    figures = [f for name, f in extra.items() if name.startswith("specification_curve")]
    notes = {c: c in rob and any(isinstance(v, str) and v for v in rob[c]) for c in ("not_counted", "repeats")}
    return render("robustness.html.j2", lang, intro=intro, rows=rows, figures=figures, notes=notes,
                  n_upper=len(judged) - sum(judged),
                  upper_mark=fsr.UPPER_MARK, uncurved=_uncurved(results.sensitivity, label, lang) if figures or extra else None)


def _robustness_lines(r: dict, names: dict, lang: str) -> list[str]:
    """The lines of a robustness row's last cell: what changed its conclusion (left out when it survives and some
    specification was not counted), the specifications not counted, and how many repeats were not counted twice."""
    listed = {c: r.get(c) if isinstance(r.get(c), str) else "" for c in ("not_counted", "repeats")}
    lines = [] if r["survives_all"] and any(listed.values()) else [changed_by_words(r["changed_by"], lang, names)]
    if listed["not_counted"]:
        lines.append(t("robustness_not_counted", lang, specs=changed_by_words(listed["not_counted"], lang, names)))
    if listed["repeats"]:
        lines.append(t("robustness_repeats", lang, n=len(listed["repeats"].split(";"))))
    return lines


def _uncurved(sens: pd.DataFrame, label: dict, lang: str) -> dict | None:
    """The cells without a panel in a specification curve (:func:`meta.present.spec_curve.curve_cells`): their
    number and their outcomes in words, or None when every cell has one."""
    from meta.present.spec_curve import curve_cells

    left = sens[~curve_cells(sens)].drop_duplicates(["outcome_key", "period", "arm_class"])
    if not len(left):
        return None
    outcomes = sorted({label.get(o, o) for o in left["outcome_key"]})
    return dict(n=len(left), outcomes=word_list(outcomes, lang))


def components_section(results, extra: dict, lang: str = "en") -> str:
    """The additive component model per outcome and period, with its note (``templates/components.html.j2``)."""
    comp = results.components
    if comp is None or len(comp) == 0:
        return ""
    label = cell_labels(results.inputs, lang)
    # a model whose every study's SE is only an upper bound has outer-bound intervals: the Kerntabel's mark
    upper = outer_bound_models(results.studies)
    rows, periods, names = [], PeriodTexts(results, lang), municipality_names(results)
    models = {}  # (outcome, period) -> its rows
    for r in records(comp):
        if not (pd.isna(r["outcome_key"]) or pd.isna(r["period"])):  # a missing value is in no group
            models.setdefault((r["outcome_key"], r["period"]), []).append(r)
    order = plan_order(results.plan)
    for key in sorted(models, key=lambda k: order(*k)):  # as the forest plots, werk first
        g = models[key]
        fitted = [r for r in g if not pd.isna(r["component"]) and r["component"] != ""]
        rows.append(dict(outcome=label.get(key[0], key[0]), period=periods[key[1]],
                         parts=_component_parts(fitted, lang, UPPER_MARK if key in upper else "") if fitted
                         else "—", upper=key in upper and len(fitted) > 0,
                         note=component_note_words((fitted or g)[0]["statement"], lang, names)))
    return render("components.html.j2", lang, rho=fmt_g(results.plan.shared_control_correlation, lang), rows=rows,
                  figure=extra.get("components"), upper_mark=UPPER_MARK)


def _component_parts(fitted: list[dict], lang: str, mark: str = "") -> str:
    """'ontheffing 1,2 [-0,3; 2,7]; …': each fitted component's estimate and interval (``mark`` after it); ``fitted``:
    the model's rows of components.csv."""
    d = fsr.unit_digits(fitted[0]["unit_h"])
    return "; ".join(f"{word('component', r['component'].replace('_', ' '), lang)} "
                     f"{fmt_num(r['estimate'], d, lang)} {fmt_interval(r['ci_low'], r['ci_high'], d, lang)}{mark}"
                     for r in fitted)


def _direction(low, high, lang: str) -> str:
    """What the interval says about the sign: below zero, above zero, includes zero, or not determinable."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return t("direction_undetermined", lang)
    if high < 0:
        return t("direction_below", lang)
    if low > 0:
        return t("direction_above", lang)
    return t("direction_includes", lang)


def _upper_and_includes_zero(r) -> bool:
    """One study whose SE is only an upper bound and whose (outer) interval includes zero: the true interval is
    narrower, so whether it includes zero cannot be said (an outer interval that excludes zero still does)."""
    return fsr.upper_bound_only(r) and r["ci_low"] <= 0 <= r["ci_high"]


def findings_section(results, lang: str = "en") -> str:
    """'Wat vonden we': one generated sentence per Kerntabel row, grouped by arm class, each linking to its row.

    Only numbers of the pooled table and the study rows are used; no sentence is written by hand.
    """
    p = results.pooled
    if len(p) == 0:
        return render("findings.html.j2", lang, groups=[])
    p = cell_order(results, p)
    level = fmt_g(results.plan.level, lang)
    finite = p[[math.isfinite(a) and math.isfinite(b) for a, b in zip(p["ci_low"], p["ci_high"])]]
    n_neg, n_pos = int((finite["ci_high"] < 0).sum()), int((finite["ci_low"] > 0).sum())
    n_multi = int((p["k"] >= 2).sum())
    pooled = pooled_rows(results)
    n_upper = sum(_upper_and_includes_zero(r) for r in pooled)
    lead = dict(rows=len(p), multi=n_multi, single=len(p) - n_multi, neg=n_neg, pos=n_pos,
                other=len(p) - n_neg - n_pos - n_upper, level=level, upper=n_upper)
    context = dict(label=cell_labels(results.inputs, lang), arms=cell_arms(results, lang),
                   mark_p=mark_p_texts(results, lang), level=level, rows=cell_rows(results.studies),
                   studies=results.studies[[c for c in _IN_CELL_COLUMNS if c in results.studies.columns]],
                   robust=_robustness_by_cell(results), periods=PeriodTexts(results, lang))
    by_class = {}  # arm class -> its rows, in order of first appearance (as groupby(sort=False))
    for r in pooled:
        if not pd.isna(r["arm_class"]):  # a missing value is in no group
            by_class.setdefault(r["arm_class"], []).append(r)
    groups = []
    for arm_class, g in by_class.items():
        head = t("fig_arms", lang, cls=arm_class_label(arm_class, lang))
        groups.append((head[:1].upper() + head[1:], [_finding(results, r, lang, **context) for r in g]))
    return render("findings.html.j2", lang, lead=lead, groups=groups)


#: The study columns a finding reads of its cell's studies (the dominant study, the municipalities apart)
_IN_CELL_COLUMNS = ("municipality", "outcome", "horizon_months", "transform", "yi", "sei")


#: The unit a finding names after its estimate (else "schaalpunten" / "scale points"): a scale the report does not
#: state is named so, not as points of a known scale
_FINDING_UNIT = {"percentage_points": "unit_pp", "scale_unknown": "unit_scale_unknown_points"}


def _finding(results, r: dict, lang: str, label: dict, arms: dict, mark_p: dict, level: str, rows: dict,
             robust: dict, periods: PeriodTexts, studies: pd.DataFrame) -> dict:
    """The sentence of one Kerntabel row (a pooled row as a dict): what, the estimate with its model, how its SE
    was found, the sign. ``studies``: the study rows' :data:`_IN_CELL_COLUMNS` (taken per cell at ``rows``)."""
    d = fsr.unit_digits(r["unit_h"])
    bayes = r.get("headline") == fsr.HEADLINE_BAYES
    est = t("finding_estimate", lang, estimate=fsr.value_text(r, "estimate", d, lang), level=level,
            unit=t(_FINDING_UNIT.get(r["unit_h"], "unit_scale"), lang),
            kind=t("cri" if bayes else "ci", lang), interval=fsr.interval_text(r, "ci_low", "ci_high", d, lang))
    cell_arms = arms.get(cell_key(r), [])
    if int(r["k"]) >= 2:
        model = t("bayes_median", lang) if bayes else method_words(r.get("method", results.plan.method),
                                                                   r.get("test", results.plan.test), lang)
        body = t("finding_pooled", lang, k=int(r["k"]), munis=arms_text(cell_arms, lang), model=model,
                 estimate=est)
    else:
        muni, components = cell_arms[0] if cell_arms else ("?", "?")
        body = t("finding_single", lang, muni=muni, components=components, estimate=est)
    if int(r["k"]) >= 2 and r["flag_derived_se"]:  # a range bound: a weight and so the pool rest on that bound
        extra = t("finding_derived_se_bound" if RANGE_BOUND in str(r["se_methods"]).split(";")
                  else "finding_derived_se", lang)
    elif cell_key(r) in mark_p:
        extra = t("finding_marks", lang, p=mark_p[cell_key(r)])
    elif r["flag_derived_se"]:  # the SE method in words (shares and N, range bound, ...)
        extra = t("finding_se_method", lang,
                  how=", ".join(words("se_method", m, lang) for m in str(r["se_methods"]).split(";") if m))
    else:
        extra = ""
    # a pooled cell's studies (its dominant study, its municipalities apart); a single study needs none
    in_cell = studies.iloc[rows.get(cell_key(r), [])] if int(r["k"]) >= 2 else None
    dominant = dominant_study(in_cell, r["tau2"]) if int(r["k"]) >= 2 else None
    if dominant is not None:
        muni = municipality_names(results).get(dominant[0], dominant[0])
        extra = text("finding_dominant", lang, muni=muni,
                     pct=">99%" if dominant[1] > 0.99 else fmt_num(100 * dominant[1], 0, lang) + "%") + _wider(
            r, in_cell[in_cell["municipality"] == dominant[0]], results.plan.level, muni, lang) + extra
    extra = _apart(results, r, in_cell, lang) + extra
    bad = fsr.undetermined(r)  # as the interval is printed: outside the range, or a classical one on one df
    if _upper_and_includes_zero(r):  # an outer bound that includes zero says nothing about the sign
        direction = t("direction_upper_bound", lang)
    else:
        direction = _direction(math.nan if "ci_low" in bad else r["ci_low"],
                               math.nan if "ci_high" in bad else r["ci_high"], lang)
    return dict(anchor=row_anchor(r), what=f"{label.get(r['outcome_key'], r['outcome_label'])}, "
                f"{periods[r['period']]}", body=body, direction=direction,
                robust=_not_robust(results, r, lang, robust), extra=extra)


def _wider(r: dict, dominant: pd.DataFrame, level: float, muni: str, lang: str) -> str:
    """Beside a Bayesian headline whose interval is wider than the dominant study's own (``dominant``: its row):
    why the pool is not simply that study's interval (the τ prior's uncertainty about the spread between
    municipalities); else ""."""
    if r.get("headline") != fsr.HEADLINE_BAYES or len(dominant) != 1:
        return ""
    lo, hi = study_intervals(dominant, level)
    return text("finding_dominant_wider", lang, muni=muni) if r["ci_high"] - r["ci_low"] > hi[0] - lo[0] else ""


def _robustness_by_cell(results) -> dict:
    """{(outcome_key, period, arm_class): (survives_all, changed_by)} of each cell's first row of robustness.csv."""
    rob = results.robustness
    if rob is None or len(rob) == 0:
        return {}
    out = {}
    for key, survives, changed in zip(zip(rob["outcome_key"], rob["period"], rob["arm_class"]), rob["survives_all"],
                                      rob["changed_by"]):
        if not any(pd.isna(v) for v in key):  # a missing value equals nothing (as in an equality mask)
            out.setdefault(key, (survives, changed))
    return out


def _not_robust(results, r, lang: str, robust: dict) -> Markup:
    """"; niet robuust: … (anders onder …)" when the cell's conclusion does not survive every specification of the
    sensitivity analysis (``survives_all`` false in robustness.csv; ``robust``: :func:`_robustness_by_cell`), naming
    what changes it; empty otherwise, and for a study whose SE is only an upper bound (a verdict on an outer bound is
    no verdict)."""
    if not robust or fsr.upper_bound_only(r):
        return Markup("")
    hit = robust.get((r["outcome_key"], r["period"], r["arm_class"]))
    if hit is None or bool(hit[0]):
        return Markup("")
    return text("finding_not_robust", lang, changed=changed_by_words(hit[1], lang, municipality_names(results)))

def _apart(results, r, in_cell: pd.DataFrame, lang: str) -> Markup:
    """For a pooled cell whose municipalities differ significantly (Cochran's Q, p below 1 − level): that, whether
    they measure the concept by different definitions (own outcome or month), and each municipality's own estimate,
    interval and definition ("; the municipalities differ significantly (Q = 5.97; p = 0.015) and measure different
    things …: Nijmegen -10.0 pp [-19.1, -0.9] (… at 16 months); Wageningen …"), or past
    :data:`REPORT_MAX_MUNICIPALITIES` where those are (counted, not named). Empty otherwise."""
    if int(r["k"]) < 2 or len(in_cell) < 2 or not r["Q_p"] < 1 - results.plan.level / 100:
        return Markup("")
    definitions = in_cell[["outcome", "horizon_months"]].drop_duplicates()
    key = "finding_apart_both" if len(definitions) >= 2 else "finding_apart_q"
    studies = (text("finding_apart_in_files", lang, n=len(in_cell)) if len(in_cell) > REPORT_MAX_MUNICIPALITIES
               else _apart_studies(results, r, in_cell, lang))
    return text(key, lang, Q=fmt_num(r["Q"], 2, lang), p=fmt_p(r["Q_p"], lang), studies=studies)


def _apart_studies(results, r, in_cell: pd.DataFrame, lang: str) -> str:
    """'Nijmegen -10.0 pp [-19.1, -0.9] (… at 16 months); Wageningen …': each study of a cell with its definition."""
    names, own = municipality_names(results), outcome_labels(results.inputs.outcomes, lang)
    d, unit = fsr.unit_digits(r["unit_h"]), fsr.unit_short(r["unit_h"], lang)
    lo, hi = study_intervals(in_cell, results.plan.level)
    return "; ".join(
        f"{names.get(s['municipality'], s['municipality'])} {fmt_num(s['yi'], d, lang)} {unit} "
        f"{fmt_interval(a, b, d, lang)} ("
        + t("pool_how", lang, outcome=own.get(s["outcome"], s["outcome"]), months=int(s["horizon_months"]),
            unit=t("months", lang), transform=_transform_text(s.get("transform"), lang)) + ")"
        for s, a, b in zip(in_cell.to_dict("records"), lo, hi))


def _transform_text(transform, lang: str) -> str:
    """' (1–10 × 10/9 to 0–10)' for a scale transform; '' for none (identity, or blank at the strict level)."""
    if not isinstance(transform, str) or transform in ("", "identity"):
        return ""
    return f" ({t('transform_' + transform, lang)})"


def render_report(results, figures: dict, lang: str = "nl", extra: dict | None = None) -> str:
    """The whole page (``templates/report.html.j2``): the values of every section, laid out by the templates."""
    extra = extra or {}
    with sharing():  # what several sections read is worked out once (report_cells.once)
        return str(render("report.html.j2", lang, **_page_values(results, figures, extra, lang),
                          **_section_values(results, extra, lang)))


def _page_values(results, figures: dict, extra: dict, lang: str) -> dict:
    """The page's frame: settings, navigation, the 'read this first' note, figures and the row accounting."""
    munis, plan = results.inputs.municipalities, results.plan
    src, pages = results.inputs.sources, results.inputs.source_pages
    said = [reason_words(r, lang) for r in results.excluded["reason"]]
    cited = {w: sources.cite_inline(w, src, pages, lang) for w in dict.fromkeys(said)}  # each distinct reason once
    reasons = pd.Series([cited[w] for w in said], dtype=object).value_counts()
    pooled = results.pooled
    multi = pooled[pooled["k"] >= 2] if len(pooled) else pooled
    return dict(
        settings=dict(method=plan.method, test=words("test", plan.test, lang), level=fmt_g(plan.level, lang),
                      policy=words("policy", plan.se_policy, lang),
                      olevel=words("outcome_level", plan.outcome_level, lang), k=plan.few_studies_k,
                      n_pooled=len(multi),
                      n_bayes=int((multi["headline"] == fsr.HEADLINE_BAYES).sum()) if len(multi) else 0),
        settings_key="settings_few" if plan.few_studies_k >= 2 else "settings", version=__version__,
        nav=list(zip(("findings", "headline", "coverage", "forest", "side", "sensitivity", "components", "methods",
                      "sources"), t("nav", lang))),
        transcribed=_names_text(list(munis.loc[munis["status"] == "transcribed", "name"]), lang),
        pending=_names_text(list(munis.loc[munis["status"] == "pending", "name"]), lang),
        level=fmt_g(plan.level, lang), alpha=fmt_g(round(1 - plan.level / 100, 10), lang), figures=figures, overview=extra.get("overview"),
        accounting=dict(n_in=len(results.inputs.estimates), n_used=len(results.studies), n_ex=len(results.excluded)),
        reasons=[(r, int(n)) for r, n in reasons.items()])


def _names_text(names: list, lang: str) -> str:
    """'Nijmegen, Wageningen', or '60 gemeenten' past :data:`REPORT_MAX_MUNICIPALITIES` ('' for none)."""
    return t("n_municipalities", lang, n=len(names)) if len(names) > REPORT_MAX_MUNICIPALITIES else word_list(names, lang)


def _section_values(results, extra: dict, lang: str) -> dict:
    """Every section of the page, rendered (Markup, or "" for a section the run has nothing for)."""
    return dict(
        pooled_count=pooled_count(results, lang), upper_bound_count=upper_bound_count(results, lang),
        findings=findings_section(results, lang),
        headline=headline_table(results, lang),
        pools=pools_section(results, lang) if results.plan.outcome_level == "concept" else None,
        decisions=fsr.decision_section(results, lang), coverage=coverage_table(results, lang),
        side_by_side=side_by_side_table(results, lang), robustness=robustness_section(results, extra, lang),
        components=components_section(results, extra, lang), methods=methods_section(results, lang),
        few_studies_methods=fsr.methods_html(results, lang, SIMULATION_SUMMARY),
        simulation=SIMULATION_SECTION[lang](lang=lang), sources=sources_table(results, lang),
        references=references_section(results, lang))

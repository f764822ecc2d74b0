"""Sensitivity of every pooled row to the analyst's choices (a specification curve per outcome).

For each cell of the main analysis the same question is answered under every
reasonable alternative: leave one municipality out; every τ² estimator; Wald,
HKSJ and ad hoc inference; each model column a report prints (basis, LOEP,
extra); central versus conservative reconstructed SEs; without studies whose SE
came from significance marks; strict versus concept-level outcome definitions;
the Bayesian model with the plan's τ prior and its prior variants (scale × 0.5, × 2, half-Cauchy; cells with
k ≥ 2). The main specification is the pooled table's headline (the Bayesian model for few studies, else the
plan's method and test; :mod:`meta.analyses.fewstudies`). A conclusion *survives* when every
specification that has a number for the cell gives the same verdict (negative,
positive, or no significant effect at the plan's level).

One specification is shown but not counted: the plain Hartung-Knapp test (``knha``) where its scale factor
q = Σwᵢ(yᵢ − μ̂)²/(k−1) is below 1. There it gives an interval *narrower* than the ad hoc test, which floors q at
1; with few studies that agree closely (k = 2, Q p near 1) q collapses towards 0 and the interval with it, the known
failure the ad hoc variant exists to prevent (Röver, Knapp & Friede 2015, BMC Med Res Methodol 15:99). Such a row
keeps its place in ``sensitivity.csv`` with the reason in ``not_counted``; :func:`robustness` leaves it out of
the verdict and names it in its own ``not_counted`` column.

Pure functions; the batch engine pools each family of specifications in one call
(leave-one-out: every cell × left-out municipality in one batch; one call per
estimator and per test). Effects are derived once per SE policy and survey
contrast: choices made after harmonising (model column, SE from marks, outcome
level, harmonisation mappings) reuse the run's harmonised rows; the other SE
policy and the other survey contrast derive them once more each
(:func:`meta.effects.concepts.effects`, which runs harmonise again).

Scale: a cell with more than ``LOO_ALL_MAX_K`` municipalities leaves out only the
``LOO_TOP`` municipalities whose omission moves the pooled estimate most to first
order (|wᵢ(yᵢ − μ̂)| / (Σw − wᵢ), wᵢ = 1/(vᵢ + τ̂²)), each still refitted exactly;
the ``municipalities`` column lists names for specifications with at most
``LOO_ALL_MAX_K`` municipalities and otherwise says how many (the list is in
studies.csv), so the table grows linearly, not quadratically, with municipalities.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from meta.effects import concepts

from meta.models import engine

from meta import cells as selection
from meta.analyses.fewstudies import HEADLINE_BAYES, prior_sensitivity_rows
from meta.cells import CELL_COLUMNS

SPEC_COLUMNS = ("outcome_key", "period", "arm_class", "unit_h", "spec_group", "spec", "k",
                "municipalities", "estimate", "ci_low", "ci_high", "verdict", "not_counted")
#: Model columns a report may print, tried one at a time in place of the plan's first choice.
MODEL_COLUMNS = ("basis", "loep", "extra")
#: Cells with at most this many municipalities leave each one out in turn (and list names in ``municipalities``).
LOO_ALL_MAX_K = 50
#: Larger cells leave out this many: those whose omission moves the estimate most (module docstring).
LOO_TOP = 10


def verdict(ci_low: float, ci_high: float) -> str:
    """``negative`` / ``positive`` when the interval excludes zero, else ``no significant effect``."""
    if not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return "no estimate"
    if ci_high < 0:
        return "negative"
    if ci_low > 0:
        return "positive"
    return "no significant effect"


def knha_scale(studies: pd.DataFrame, method: str, level: float) -> dict:
    """{cell key: the Hartung-Knapp scale factor q} for every cell of ``studies``.

    q = Σwᵢ(yᵢ − μ̂)²/(k−1), wᵢ = 1/(vᵢ + τ̂²), the factor by which ``knha`` multiplies the variance of μ̂; it is
    the squared ratio of the ``knha`` and ``z`` standard errors at the same τ̂² (1 for a single study: nothing is
    scaled).
    """
    knha = engine.pool_cells(studies, CELL_COLUMNS, method, "knha", level)
    z = engine.pool_cells(studies, CELL_COLUMNS, method, "z", level)
    q = (knha["se"].to_numpy(float) / z["se"].to_numpy(float)) ** 2
    return {tuple(r[c] for c in CELL_COLUMNS): float(x) for r, x in zip(knha.to_dict("records"), q)}


def not_counted_reasons(studies: pd.DataFrame, method: str, test: str, level: float) -> dict:
    """{cell key: why the ``test`` specification does not count toward the verdict} (module docstring): only
    ``knha`` with scale factor q < 1; empty for any other test."""
    if test != "knha":
        return {}
    return {key: (f"knha scale factor q = {q:.3g} < 1: narrower than the ad hoc test, which floors q at 1 "
                  "(Röver, Knapp & Friede 2015); not counted in the verdict")
            for key, q in knha_scale(studies, method, level).items() if q < 1}


def _municipalities(studies: pd.DataFrame, cols: list[str]) -> dict:
    """{cell key: ';'-joined sorted municipalities} (or 'k municipalities …' past ``LOO_ALL_MAX_K``)."""
    out = {}
    for key, names in studies.groupby(cols, sort=False)["municipality"]:
        names = sorted(names)
        out[key] = (";".join(names) if len(names) <= LOO_ALL_MAX_K
                    else f"{len(names)} municipalities (listed in studies.csv)")
    return out


def _spec_rows(pooled: pd.DataFrame, group: str, spec, studies: pd.DataFrame, by: str | None = None,
               not_counted: dict | None = None) -> list[dict]:
    """One row per pooled cell. ``spec`` is the specification's name, or (with ``by``) the name of the
    ``by`` column of ``pooled`` and ``studies`` that tells the specifications of one batch apart. ``not_counted``:
    {cell key: reason} for rows that do not count toward the verdict (:func:`not_counted_reasons`)."""
    cols = [*CELL_COLUMNS, *([by] if by else [])]
    munis = _municipalities(studies, cols)
    out = []
    for r in pooled.to_dict("records"):
        key = tuple(r[c] for c in cols)
        out.append({**{c: r[c] for c in CELL_COLUMNS}, "spec_group": group, "spec": r[by] if by else spec,
                    "k": int(r["k"]), "municipalities": munis.get(key, ""), "estimate": r["estimate"],
                    "ci_low": r["ci_low"], "ci_high": r["ci_high"], "verdict": verdict(r["ci_low"], r["ci_high"]),
                    "not_counted": (not_counted or {}).get(tuple(r[c] for c in CELL_COLUMNS), "")})
    return out


def leave_one_out_studies(studies: pd.DataFrame, pooled: pd.DataFrame | None = None) -> pd.DataFrame:
    """The studies of every leave-one-out specification, stacked, with ``spec`` = ``without <municipality>``.

    Cells with at least two municipalities only. A cell with more than ``LOO_ALL_MAX_K`` municipalities
    leaves out the ``LOO_TOP`` most influential ones (module docstring; needs the main ``pooled`` τ²).
    """
    cols = list(CELL_COLUMNS)
    n = studies.groupby(cols)["municipality"].transform("nunique")
    multi = studies[n >= 2]
    if len(multi) == 0:
        return multi.assign(spec=pd.Series(dtype=object))
    pairs = multi[[*cols, "municipality"]].drop_duplicates().rename(columns={"municipality": "_left_out"})
    big = n[n >= 2] > LOO_ALL_MAX_K
    if big.any():
        pairs = pd.concat([pairs.merge(multi[~big][cols].drop_duplicates(), on=cols),
                           _most_influential(multi[big], pooled)], ignore_index=True)
    loo = multi.merge(pairs, on=cols)
    loo = loo[loo["municipality"] != loo["_left_out"]]
    return loo.assign(spec="without " + loo["_left_out"]).drop(columns="_left_out")


def _most_influential(studies: pd.DataFrame, pooled: pd.DataFrame | None) -> pd.DataFrame:
    """Per cell the ``LOO_TOP`` municipalities whose omission moves the estimate most (first-order)."""
    cols = list(CELL_COLUMNS)
    s = studies[[*cols, "municipality", "yi", "sei"]].copy()
    tau2 = 0.0
    if pooled is not None and len(pooled):
        s = s.merge(pooled[[*cols, "tau2"]], on=cols, how="left")
        tau2 = s["tau2"].fillna(0.0).to_numpy(float)
    w = 1.0 / (s["sei"].to_numpy(float) ** 2 + tau2)
    s["_w"], s["_wy"] = w, w * s["yi"].to_numpy(float)
    sums = s.groupby(cols)[["_w", "_wy"]].transform("sum")
    mu = sums["_wy"] / sums["_w"]
    s["_shift"] = (s["_w"] * (s["yi"] - mu)).abs() / (sums["_w"] - s["_w"])
    by_muni = s.groupby([*cols, "municipality"], as_index=False)["_shift"].max()
    by_muni = by_muni.sort_values([*cols, "_shift", "municipality"], ascending=[True] * len(cols) + [False, True],
                                  kind="mergesort")
    top = by_muni.groupby(cols, sort=False).head(LOO_TOP)
    return top[[*cols, "municipality"]].rename(columns={"municipality": "_left_out"})


def _strict_rows(studies: pd.DataFrame, pool) -> list[dict]:
    """The strict level inside each concept cell: its studies regrouped by exact outcome code and horizon.

    Each exact (code, month) group is pooled on its own (k = 1 where the municipalities' codes differ) and listed
    under the concept cell as ``strict: <code> <months> m``.
    """
    rows = []
    for (code, months), g in studies.groupby(["outcome", "horizon_months"], sort=True):
        spec = f"strict: {code} {int(months)} m"
        for r in _spec_rows(pool(g), "outcome definition", spec, g):
            rows.append(r)
    return rows



def plan_variants(plan) -> list[tuple[str, str, object]]:
    """The specifications that change a choice made before pooling, as (spec_group, spec, plan): each other model
    column first (the plan's later preferences after it), the other SE policy, without SEs from marks (when the plan
    includes them) and the other survey contrast."""
    variants = []
    first = plan.model_preference[0] if plan.model_preference else "loep"
    for model in MODEL_COLUMNS:
        if model != first:
            prefs = (model,) + tuple(m for m in plan.model_preference if m != first and m != model)
            variants.append(("model column", model, replace(plan, model_preference=prefs)))
    other_policy = "conservative" if plan.se_policy == "central" else "central"
    variants.append(("SE policy", other_policy, replace(plan, se_policy=other_policy)))
    if plan.include_derived_from_marks:
        variants.append(("SE from marks", "excluded", replace(plan, include_derived_from_marks=False)))
    other_contrast = "wave" if plan.survey_contrast == "change" else "change"
    variants.append(("survey contrast", other_contrast, replace(plan, survey_contrast=other_contrast)))
    return variants


def sensitivity_table(results) -> pd.DataFrame:
    """Every specification for every cell of the main analysis, one row each (see module docstring)."""
    plan, inputs, studies = results.plan, results.inputs, results.studies
    rows: list[dict] = []
    # effects derived once per SE policy and survey contrast
    harmonised = {(plan.se_policy, plan.survey_contrast): results.harmonised}

    def _studies_for(inputs, variant, roles=("primary",)) -> pd.DataFrame:
        key = (variant.se_policy, variant.survey_contrast)
        if key not in harmonised:
            harmonised[key] = concepts.effects(inputs, *key)
        return selection.select_studies(harmonised[key], inputs.outcomes, variant, inputs.concepts, roles)[0]

    pool = lambda s, method=plan.method, test=plan.test: engine.pool_cells(  # noqa: E731
        s, CELL_COLUMNS, method, test, plan.level)

    # the main analysis is the headline of the pooled table: the Bayesian model for few studies, else the plan's
    main = results.pooled
    bayes_cells = main[main.get("headline", pd.Series("", index=main.index)) == HEADLINE_BAYES] if len(main) else main
    for headline_is_bayes, part in ((False, main.drop(bayes_cells.index)), (True, bayes_cells)):
        if len(part):
            spec = "Bayesian headline (plan's τ prior)" if headline_is_bayes else f"{plan.method} + {plan.test}"
            rows += _spec_rows(part, "main", spec, studies)
    if len(bayes_cells):  # the plan's classical fit, now beside the headline: the run's own (classical_* columns)
        classical = bayes_cells[[*CELL_COLUMNS, "k"]].assign(**{c: bayes_cells[f"classical_{c}"]
                                                               for c in ("estimate", "ci_low", "ci_high")})
        rows += _spec_rows(classical, "classical", f"{plan.method} + {plan.test}", studies)
    for method in engine.METHODS:
        if method != plan.method.upper():
            rows += _spec_rows(pool(studies, method=method), "estimator", method, studies)
    for test in engine.TESTS:
        if test != plan.test.lower():
            rows += _spec_rows(pool(studies, test=test), "test", test, studies,
                               not_counted=not_counted_reasons(studies, plan.method, test, plan.level))
    # leave one municipality out (cells with k >= 2 only): every cell x left-out municipality in one batch
    loo = leave_one_out_studies(studies, main)
    if len(loo):
        batch = engine.pool_cells(loo, (*CELL_COLUMNS, "spec"), plan.method, plan.test, plan.level)
        rows += _spec_rows(batch, "leave one out", None, loo, by="spec")
    # choices made before pooling: re-select (and derive the effects once more for another SE policy or contrast)
    for group, spec, variant in plan_variants(plan):
        s = _studies_for(inputs, variant)
        if len(s):
            rows += _spec_rows(pool(s), group, spec, s)
    if plan.outcome_level == "concept":
        rows += _strict_rows(studies, pool)
        alt = _studies_for(inputs, plan, roles=("sensitivity", "primary"))
        if len(alt) and "sensitivity" in set(alt["harmonisation_role"]):
            rows += _spec_rows(pool(alt), "outcome definition", "harmonisation: sensitivity mappings", alt)
    # Bayesian normal-normal model with the plan's τ prior per unit, and the prior variants (cells with k >= 2: a single
    # study is shown as reported)
    prior_rows = prior_sensitivity_rows(studies, plan, results.pooled)  # the plan's prior: fitted once, in the run
    for _, r in prior_rows.iterrows():
        rows.append({**{c: r[c] for c in SPEC_COLUMNS if c not in ("verdict", "not_counted")},
                     "verdict": verdict(r["ci_low"], r["ci_high"]), "not_counted": ""})
    table = pd.DataFrame(rows, columns=list(SPEC_COLUMNS))
    # keep only cells of the main analysis
    main_keys = table.loc[table["spec_group"] == "main", list(CELL_COLUMNS)].drop_duplicates()
    table = table.merge(main_keys, on=list(CELL_COLUMNS))
    return table.sort_values([*CELL_COLUMNS, "spec_group", "spec"], kind="mergesort").reset_index(drop=True)


def robustness(sens: pd.DataFrame) -> pd.DataFrame:
    """Per main cell: the main verdict, how many specifications count, whether every one agrees, and which
    specifications were not counted (``not_counted``: ``group: spec;…``, the reasons are in ``sensitivity.csv``;
    module docstring)."""
    rows = []
    skipped = sens["not_counted"].fillna("").astype(str) != "" if "not_counted" in sens else pd.Series(False, sens.index)
    for key, g in sens.groupby(list(CELL_COLUMNS), sort=True):
        main = g[g["spec_group"] == "main"].iloc[0]
        left_out = g[skipped.loc[g.index]]
        others = g[(g["verdict"] != "no estimate") & ~skipped.loc[g.index]]
        disagree = others[others["verdict"] != main["verdict"]]
        rows.append({**dict(zip(CELL_COLUMNS, key)), "verdict": main["verdict"], "n_specs": len(others),
                     "survives_all": disagree.empty,
                     "changed_by": ";".join(f"{a}: {b}" for a, b in zip(disagree["spec_group"], disagree["spec"])),
                     "not_counted": ";".join(f"{a}: {b}" for a, b in zip(left_out["spec_group"], left_out["spec"])),
                     "estimate_min": others["estimate"].min(), "estimate_max": others["estimate"].max()})
    return pd.DataFrame(rows)


def prior_dependence(sens: pd.DataFrame) -> pd.DataFrame:
    """Per cell with a Bayesian fit: its verdict under the plan's τ prior and whether a prior variant changes it.

    Columns: the cell columns, ``verdict`` (plan's prior), ``depends_on_prior`` (bool), ``changed_by`` (the variants
    that give another verdict, ``;``-separated), ``estimate_min``/``estimate_max`` over the plan's prior and the
    variants.
    """
    cols = [*CELL_COLUMNS, "verdict", "depends_on_prior", "changed_by", "estimate_min", "estimate_max"]
    if sens is None or len(sens) == 0:
        return pd.DataFrame(columns=cols)
    part = sens[sens["spec_group"].isin(["Bayesian", "prior"])]
    rows = []
    for key, g in part.groupby(list(CELL_COLUMNS), sort=True):
        base = g[g["spec_group"] == "Bayesian"]
        if base.empty:
            continue
        v = base["verdict"].iloc[0]
        other = g[(g["spec_group"] == "prior") & (g["verdict"] != v)]
        rows.append({**dict(zip(CELL_COLUMNS, key)), "verdict": v, "depends_on_prior": not other.empty,
                     "changed_by": ";".join(other["spec"]), "estimate_min": g["estimate"].min(),
                     "estimate_max": g["estimate"].max()})
    return pd.DataFrame(rows, columns=cols)

"""Few studies, honest answers (issue 12): the headline follows the number of municipalities.

For a cell with 2 ≤ k ≤ ``plan.few_studies_k`` the headline columns of the pooled table (``estimate``, ``se``,
``ci_low``, ``ci_high``, ``pi_low``, ``pi_high``) hold the Bayesian random-effects model of :mod:`meta.models.bayes`
(flat prior on μ, half-normal prior on τ with the plan's scale for the cell's unit): posterior median, posterior sd,
central credible interval and the posterior predictive interval for a new municipality's true effect; ``pval`` is
empty (a posterior has none; the decision probabilities take its place). For k above it the plan's classical model
(REML + HKSJ by default) stays the headline. A cell with one municipality shows that municipality's own estimate and
interval, as reported: a "mean over municipalities" from one of them would be the study widened by the τ prior, which
answers a question (what would another municipality get?) that the predictive interval of ``bayes_*`` answers
explicitly.

Beside the headline, every cell keeps the classical fits: ``classical_*`` (plan method + test), ``wald_*`` (plan method
with z intervals), ``fe_*`` (common effect, z), and the Bayesian fit ``bayes_*`` with its prior. Decision
probabilities per cell (δ per unit from the plan): ``p_gt_0`` = P(μ > 0 | y), ``p_lt_minus_delta`` = P(μ < −δ | y),
``p_within_delta`` = P(|μ| < δ | y) and ``p_harm`` (the first of P(μ < −δ), P(μ > δ) that is harm for the outcome's
direction); for k = 1 they are about the single municipality's own effect, N(yᵢ, seᵢ²) (flat prior).

``range_low``/``range_high`` give the feasible range of a difference in the cell's unit (±(scale_max − scale_min) of
``outcomes.csv``: ±100 pp for a share); ``impossible`` lists the columns whose value lies outside it (τ² beyond the
square of the range width). The raw values stay in the table; the report and workbook print "onbepaald (k = …)".

References
----------
Friede T, Röver C, Wandel S, Neuenschwander B (2017). Meta-analysis of two studies in the presence of heterogeneity
with applications in rare diseases. Biometrical Journal 59(4):658-671.
Röver C, Bender R, Dias S, et al. (2021). On weakly informative prior distributions for the heterogeneity parameter in
Bayesian random-effects meta-analysis. Research Synthesis Methods 12(4):448-474.
Bender R, Friede T, Koch A, et al. (2018). Methods for evidence synthesis in the case of very few studies. Research
Synthesis Methods 9(3):382-392.
Higgins JPT, Thomas J, et al. (eds.) Cochrane Handbook for Systematic Reviews of Interventions, version 6, §10.10.4.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import special

from meta.effects.harmonise import range_width
from meta.models import engine
from meta.models.bayes_many import bayes_pool_many, parallel_workers
from meta.plan import Plan
from meta.read.reader import records
from meta.cells import CELL_COLUMNS

HEADLINE_BAYES, HEADLINE_CLASSICAL, HEADLINE_SINGLE = "bayes", "classical", "single study"
#: Columns this module adds to the pooled table, in order.
FEW_STUDIES_COLUMNS = (
    "headline", "headline_model",
    "classical_estimate", "classical_se", "classical_ci_low", "classical_ci_high", "classical_pval",
    "classical_pi_low", "classical_pi_high",
    "wald_ci_low", "wald_ci_high", "wald_pi_low", "wald_pi_high", "fe_estimate", "fe_ci_low", "fe_ci_high",
    "bayes_estimate", "bayes_mean", "bayes_sd", "bayes_ci_low", "bayes_ci_high", "bayes_pi_low", "bayes_pi_high",
    "bayes_tau_median", "bayes_tau_ci_low", "bayes_tau_ci_high", "tau_prior", "tau_prior_scale",
    "delta", "p_gt_0", "p_lt_minus_delta", "p_within_delta", "p_harm", "p_source",
    "range_low", "range_high", "impossible",
)
#: Headline columns that take the Bayesian values for few studies.
HEADLINE_COLUMNS = ("estimate", "se", "ci_low", "ci_high", "pval", "pi_low", "pi_high")
#: Columns whose values are effects in the cell's unit and must lie in its feasible range to be printed.
EFFECT_COLUMNS = (
    "estimate", "ci_low", "ci_high", "pi_low", "pi_high", "classical_estimate", "classical_ci_low",
    "classical_ci_high", "classical_pi_low", "classical_pi_high", "wald_ci_low", "wald_ci_high", "wald_pi_low",
    "wald_pi_high", "fe_estimate", "fe_ci_low", "fe_ci_high", "bayes_estimate", "bayes_ci_low", "bayes_ci_high",
    "bayes_pi_low", "bayes_pi_high",
)
#: Columns in squared units (τ²) and in SD units (τ): bounded by the squared range width and the range width.
SQUARED_COLUMNS = ("tau2", "tau2_ci_low", "tau2_ci_high")
SD_COLUMNS = ("bayes_tau_median", "bayes_tau_ci_low", "bayes_tau_ci_high")
#: Prior variants of the sensitivity analysis: (label, prior family, factor on the plan's scale).
PRIOR_VARIANTS = (("half-normal, scale × 0.5", "halfnormal", 0.5), ("half-normal, scale × 2", "halfnormal", 2.0),
                  ("half-Cauchy, same scale", "halfcauchy", 1.0))
SOURCE_POSTERIOR = "posterior of the mean effect (Bayesian model)"
SOURCE_SINGLE = "the single municipality's own estimate (flat prior)"


def range_widths(outcomes: pd.DataFrame) -> dict:
    """Width of the range a person's outcome can take per harmonised unit (``scale_max − scale_min``,
    :func:`meta.effects.harmonise.range_width`; the largest over the unit's outcomes).

    A difference of two means (or shares) in that unit lies within ±width. Units without ``scale_min``/``scale_max``
    (counts, hours, unknown scales) are absent: they have no feasible range.
    """
    widths: dict = {}
    for r in outcomes.to_dict("records"):
        w = range_width(r)
        if w > 0:
            widths[r["unit"]] = max(widths.get(r["unit"], w), w)
    return dict(sorted(widths.items()))


def headline_model(headline: str, plan: Plan, unit: str) -> str:
    """What the headline columns of a cell hold, in words (English; the report translates)."""
    if headline == HEADLINE_SINGLE:
        return "single study, as reported"
    if headline == HEADLINE_BAYES:
        s = plan.bayes_unit(unit)["tau_prior_scale"]
        return (f"Bayesian random effects: posterior median, {plan.level:g}% credible interval; flat prior on the mean, "
                f"half-normal prior on tau (scale {s:g})")
    return f"{plan.method.upper()} + {plan.test.lower()}"


def _direction_harm(direction: str, p_lt: float, p_within: float) -> float:
    """P(harm larger than δ): P(μ < −δ) when higher is better, P(μ > δ) when lower is better, NaN when neutral."""
    if direction == "higher_better":
        return p_lt
    if direction == "lower_better":
        return 1.0 - p_lt - p_within
    return math.nan


def _single_study_probabilities(y: float, se: float, delta: float) -> tuple[float, float, float]:
    """P(θ > 0), P(θ < −δ), P(|θ| < δ) for θ ~ N(y, se²): the single study with a flat prior."""
    lt = special.ndtr((-delta - y) / se)
    return float(special.ndtr(y / se)), float(lt), float(special.ndtr((delta - y) / se) - lt)


def add_few_studies_columns(pooled: pd.DataFrame, studies: pd.DataFrame, outcomes: pd.DataFrame,
                            plan: Plan, fits: dict | None = None, headline_only: bool = False) -> pd.DataFrame:
    """The pooled table with the headline chosen by k and the columns of :data:`FEW_STUDIES_COLUMNS` added.

    Parameters
    ----------
    pooled : DataFrame
        :func:`meta.analyses.tables.pooled_table` output: the plan's classical fit per cell.
    studies : DataFrame
        The studies pooled (``yi``, ``sei``, the cell columns, ``outcome``).
    outcomes : DataFrame
        The outcome register (``unit``, ``direction``, ``scale_min``, ``scale_max``).
    plan : Plan
        ``few_studies_k``, ``bayes_units`` (τ prior scale and δ per unit), ``method``, ``test``, ``level``.
    fits : dict, optional
        The run's Bayesian fits so far (``known`` of :func:`meta.models.bayes_many.bayes_pool_many`): a cell fitted
        before is not fitted again, and the new fits are added.
    headline_only : bool, default False
        Fit only the cells whose headline is the Bayesian model (2 ≤ k ≤ ``few_studies_k``); the other cells get
        no Bayesian columns or decision probabilities (their headline is the same). The figures drawn from the
        pooled cells read no more (:func:`meta.analyses.pipeline.analyse`, ``figures_first``); the table is then
        made again without it, with ``fits``. Where the other cells' fits would be shared among worker processes
        (:func:`meta.models.bayes_many.parallel_workers`) all are fitted at once, as without it: they then take
        every core while the figure leader warms up instead of competing with the figure workers later.
    """
    if len(pooled) == 0:
        return pooled.reindex(columns=[*pooled.columns, *FEW_STUDIES_COLUMNS])
    keys = list(CELL_COLUMNS)
    out = pooled.copy()
    wald, fe = (_by_cell(t) for t in engine.pool_cells_each(studies, keys, [(plan.method, "z"), ("FE", "z")],
                                                              plan.level))
    # each cell's studies with the columns read below only (a group's frame copies every column it has)
    groups = {k if isinstance(k, tuple) else (k,): g
              for k, g in studies[[*keys, "yi", "sei", "outcome"]].groupby(keys, sort=True, dropna=False)}
    cells = records(out[list(dict.fromkeys([*keys, "k", *HEADLINE_COLUMNS]))])
    cell_keys = [tuple(r[c] for c in keys) for r in cells]
    settings = [plan.bayes_unit(r["unit_h"]) for r in cells]
    if headline_only:
        headline = [s if 2 <= int(r["k"]) <= plan.few_studies_k else None for r, s in zip(cells, settings)]
        later = sum(s is not None and h is None for s, h in zip(settings, headline))  # fits no figure reads
        if not parallel_workers(later):  # else all at once, in worker processes, as without headline_only
            settings = headline
    # the Bayesian fits of all cells at once (shared among worker processes when there are many)
    calls = [((groups[key]["yi"].to_numpy(float), groups[key]["sei"].to_numpy(float) ** 2, s["tau_prior_scale"]),
              dict(level=plan.level, delta=s["delta"])) for key, s in zip(cell_keys, settings) if s is not None]
    fitted = iter(bayes_pool_many(calls, known=fits))
    direction = dict(zip(outcomes["outcome"], outcomes["direction"]))
    widths = range_widths(outcomes)
    rows, bayes_headline = [], {}
    for r, key, s in zip(cells, cell_keys, settings):
        b = next(fitted) if s is not None else None
        row = _few_studies_row(r, groups[key], wald[key], fe[key], s, b, plan, direction)
        if row["headline"] == HEADLINE_BAYES:
            bayes_headline[len(rows)] = dict(estimate=b.estimate, se=b.sd, ci_low=b.ci_low, ci_high=b.ci_high,
                                             pval=math.nan, pi_low=b.pi_low, pi_high=b.pi_high)
        width = widths.get(r["unit_h"], math.nan)
        row["range_low"], row["range_high"] = -width, width
        rows.append(row)
    add = pd.DataFrame(rows, index=out.index)
    for col in add.columns:
        out[col] = add[col]
    if bayes_headline:  # column by column: one positional assignment each rather than one per cell and column
        positions = list(bayes_headline)
        for col in next(iter(bayes_headline.values())):
            out.iloc[positions, out.columns.get_loc(col)] = [bayes_headline[i][col] for i in positions]
    out = out.reindex(columns=[*pooled.columns, *[c for c in FEW_STUDIES_COLUMNS if c not in pooled.columns]])
    out["impossible"] = [";".join(impossible_columns(r)) for r in records(out)]
    return out


def _by_cell(table: pd.DataFrame) -> dict:
    """{cell key: the row of a :func:`meta.models.engine.pool_cells` table, as a dict}."""
    return {tuple(r[c] for c in CELL_COLUMNS): r for r in records(table)}


def _few_studies_row(r: dict, g: pd.DataFrame, w: dict, f: dict, settings: dict | None, b, plan: Plan,
                     direction: dict) -> dict:
    """The columns :func:`add_few_studies_columns` adds to one cell's row ``r`` (but the feasible range): its
    studies ``g``, its Wald (``w``) and common-effect (``f``) fits, and the Bayesian fit ``b`` (None where the
    plan has no τ prior for the unit)."""
    k, unit = int(r["k"]), r["unit_h"]
    row = {f"classical_{c}": r[c] for c in HEADLINE_COLUMNS}
    row.update(wald_ci_low=w["ci_low"], wald_ci_high=w["ci_high"], wald_pi_low=w["pi_low"],
               wald_pi_high=w["pi_high"], fe_estimate=f["estimate"], fe_ci_low=f["ci_low"], fe_ci_high=f["ci_high"])
    if b is not None:
        row.update(bayes_estimate=b.estimate, bayes_mean=b.mean, bayes_sd=b.sd, bayes_ci_low=b.ci_low,
                   bayes_ci_high=b.ci_high, bayes_pi_low=b.pi_low, bayes_pi_high=b.pi_high,
                   bayes_tau_median=b.tau_median, bayes_tau_ci_low=b.tau_ci_low, bayes_tau_ci_high=b.tau_ci_high,
                   tau_prior="half-normal", tau_prior_scale=b.prior_tau_scale, delta=settings["delta"])
        if k == 1:
            probs = _single_study_probabilities(float(g["yi"].iloc[0]), float(g["sei"].iloc[0]), settings["delta"])
            row["p_source"] = SOURCE_SINGLE
        else:
            probs = (b.p_gt_0, b.p_lt_minus_delta, b.p_within_delta)
            row["p_source"] = SOURCE_POSTERIOR
        outcome_directions = {direction.get(o, "neutral") for o in g["outcome"].tolist()}
        row.update(p_gt_0=probs[0], p_lt_minus_delta=probs[1], p_within_delta=probs[2],
                   p_harm=_direction_harm(outcome_directions.pop() if len(outcome_directions) == 1 else "neutral",
                                          probs[1], probs[2]))
    headline = (HEADLINE_SINGLE if k == 1 else
                HEADLINE_BAYES if (k <= plan.few_studies_k and b is not None) else HEADLINE_CLASSICAL)
    row["headline"], row["headline_model"] = headline, headline_model(headline, plan, unit)
    return row


def impossible_columns(row) -> list[str]:
    """The columns of a pooled row whose value lies outside the feasible range of the cell's unit."""
    width = row.get("range_high", math.nan)
    if not (isinstance(width, (int, float)) and math.isfinite(width)):
        return []
    bad = []
    for cols, limit in ((EFFECT_COLUMNS, width), (SD_COLUMNS, width), (SQUARED_COLUMNS, width**2)):
        for c in cols:
            x = row.get(c, math.nan)
            if isinstance(x, (int, float, np.floating)) and math.isfinite(x) and abs(x) > limit:
                bad.append(c)
    return bad


def prior_sensitivity_rows(studies: pd.DataFrame, plan: Plan, pooled: pd.DataFrame | None = None) -> pd.DataFrame:
    """Cells with k ≥ 2 under the plan's τ prior and its variants (:data:`PRIOR_VARIANTS`), one row each.

    Columns: the cell columns, ``spec_group`` ("Bayesian" for the plan's prior, "prior" for the variants),
    ``spec``, ``k``, ``estimate`` (posterior median), ``ci_low``, ``ci_high``, ``p_gt_0``. Units without a τ prior
    in the plan are left out.

    ``pooled``: the run's pooled table (:func:`add_few_studies_columns`), whose ``bayes_*`` columns already hold the
    fit under the plan's prior (the same :func:`meta.models.bayes.bayes_pool` call on the same studies, with δ for
    the decision probabilities); its rows are taken from there instead of being fitted again.
    """
    keys = list(CELL_COLUMNS)
    fitted = {}
    if pooled is not None and len(pooled) and "bayes_estimate" in pooled.columns:
        cols = ["bayes_estimate", "bayes_ci_low", "bayes_ci_high", "p_gt_0"]
        fitted = {tuple(r[:len(keys)]): r[len(keys):]
                  for r in pooled[[*keys, *cols]].itertuples(index=False, name=None)}
    rows, to_fit = [], []
    for key, g in studies[[*keys, "yi", "sei", "municipality"]].groupby(keys, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        cell = dict(zip(keys, key))
        settings = plan.bayes_unit(cell["unit_h"])
        if settings is None or len(g) < 2:
            continue
        y, v, s = g["yi"].to_numpy(float), g["sei"].to_numpy(float) ** 2, settings["tau_prior_scale"]
        specs = [("Bayesian", f"half-normal τ prior, scale {s:g}", "halfnormal", 1.0)]
        specs += [("prior", f"{label} ({factor * s:g})", family, factor) for label, family, factor in PRIOR_VARIANTS]
        for group, spec, family, factor in specs:
            known = fitted.get(key) if group == "Bayesian" else None
            row = {**cell, "spec_group": group, "spec": spec, "k": len(g),
                   "municipalities": ";".join(sorted(g["municipality"]))}
            if known is not None and np.isfinite(known[0]):
                row.update(zip(("estimate", "ci_low", "ci_high", "p_gt_0"), known))
            else:  # fitted below, all cells at once
                to_fit.append((len(rows), ((y, v, factor * s), dict(level=plan.level, tau_prior=family))))
            rows.append(row)
    for (i, _), b in zip(to_fit, bayes_pool_many([call for _, call in to_fit])):
        rows[i].update(estimate=b.estimate, ci_low=b.ci_low, ci_high=b.ci_high, p_gt_0=b.p_gt_0)
    return pd.DataFrame(rows, columns=[*keys, "spec_group", "spec", "k", "municipalities", "estimate", "ci_low",
                                       "ci_high", "p_gt_0"])

"""The analysis chain: inputs × plan → harmonised effects → studies per cell → pooled cells, sensitivity, components.

:func:`analyse` runs every pure stage and returns :class:`Results` (DataFrames only; nothing is drawn or written here).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from meta import cells, control
from meta.analyses import fewstudies, tables
from meta.analyses import sensitivity as sa
from meta.effects import concepts
from meta.effects.harmonise import SE_SOURCE_COLUMN
from meta.errors import InputError
from meta.models import engine
from meta.plan import DEFAULT_INPUTS, Plan, check_plan
from meta.read import load


@dataclass(frozen=True)
class Results:
    """What one run produces, as DataFrames (and figures when drawn)."""

    plan: Plan
    inputs: load.Inputs
    harmonised: pd.DataFrame
    studies: pd.DataFrame
    excluded: pd.DataFrame
    pooled: pd.DataFrame
    side_by_side: pd.DataFrame
    coverage: pd.DataFrame
    sensitivity: pd.DataFrame = field(default_factory=pd.DataFrame)
    robustness: pd.DataFrame = field(default_factory=pd.DataFrame)
    components: pd.DataFrame = field(default_factory=pd.DataFrame)
    figures: dict = field(default_factory=dict)
    #: the effects under each SE policy and survey contrast derived in this run (the sensitivity analysis asks for
    #: the other ones; :class:`meta.effects.concepts.EffectsByChoice`)
    effects: concepts.EffectsByChoice | None = field(default=None, repr=False, compare=False)
    #: what :func:`complete` needs to make the results whole after ``analyse(..., figures_first=True)``: the
    #: classical pooled table and the Bayesian fits made so far; None when they are whole
    incomplete: tuple | None = field(default=None, repr=False, compare=False)


def analyse(inputs_dir: Path = DEFAULT_INPUTS, plan: Plan | None = None, sensitivity: bool = True,
            inputs: load.Inputs | None = None, figures_first: bool = False) -> Results:
    """Run every pure stage on the inputs in ``inputs_dir`` under ``plan``.

    ``inputs``: the same folder already read, and ``plan`` checked against it (:func:`meta.plan.check_plan`; the
    CLI's preflight does both once, and neither is done twice).

    ``sensitivity=False`` skips the sensitivity analysis and the component models (``Results.sensitivity``,
    ``robustness`` and ``components`` stay empty): the pooled numbers are the same, in a fraction of the time;
    :func:`add_sensitivity` adds them later.

    ``figures_first=True`` (with ``sensitivity=False``) makes only what the figures drawn from the pooled cells read:
    the Bayesian model is fitted only where it is the headline (``fewstudies.add_few_studies_columns``,
    ``headline_only``; most fits are of single studies), and the side-by-side table and the coverage matrix stay
    empty. :func:`complete` (or :func:`add_sensitivity`) makes the rest, after ``meta run`` has handed those figures
    to their workers.
    """
    plan = plan or Plan()
    control.checkpoint("read")
    if inputs is None:  # else read, and the plan checked against them, by the caller (the CLI's preflight)
        inputs = load.load_inputs(inputs_dir)
        check_plan(plan, inputs)  # refuses a plan that cannot be meant; warnings are the CLI's to print
    control.checkpoint("analyse")
    effects = concepts.EffectsByChoice(inputs)
    harmonised = effects.get(plan.se_policy, plan.survey_contrast)
    check_standard_errors(harmonised, inputs.files.get("estimates", "estimates.csv"))
    studies, excluded = cells.select_studies(harmonised, inputs.outcomes, plan, inputs.concepts)
    pooled_raw = engine.pool_cells(studies, cells.CELL_COLUMNS, plan.method, plan.test, plan.level)
    if len(pooled_raw) and not pooled_raw["converged"].all():
        # a cell whose estimator did not converge is not reported as pooled: its rows are excluded with the reason
        failed = pooled_raw.loc[~pooled_raw["converged"].astype(bool), list(cells.CELL_COLUMNS)]
        hit = studies.merge(failed, on=list(cells.CELL_COLUMNS), how="left", indicator=True)["_merge"] == "both"
        moved = studies[hit.to_numpy()].assign(
            reason=f"cell could not be pooled: the {plan.method} estimator did not converge")
        excluded = pd.concat([excluded, moved], ignore_index=True).sort_values("input_row", kind="mergesort")
        studies = studies[~hit.to_numpy()].reset_index(drop=True)
        pooled_raw = pooled_raw[pooled_raw["converged"].astype(bool)].reset_index(drop=True)
    classical = tables.pooled_table(pooled_raw, studies, inputs.outcomes, plan, inputs.legends, inputs.concepts)
    fits = {}
    pooled = fewstudies.add_few_studies_columns(classical, studies, inputs.outcomes, plan, fits, figures_first)
    results = Results(plan, inputs, harmonised, studies, excluded, pooled, pd.DataFrame(), pd.DataFrame(),
                      effects=effects, incomplete=(classical, fits) if figures_first else None)
    results = results if figures_first else _with_tables(results)
    return add_sensitivity(results) if sensitivity else results


def complete(results: Results) -> Results:
    """``results`` whole: after ``analyse(..., figures_first=True)`` the Bayesian columns of the cells whose headline
    is not Bayesian are fitted (the others' fits are taken as made), and the side-by-side table and the coverage
    matrix made; else ``results``."""
    if results.incomplete is None:
        return results
    control.checkpoint("analyse")  # after the hand-off (stage 'figures'): an error here is one of the analysis
    classical, fits = results.incomplete
    pooled = fewstudies.add_few_studies_columns(classical, results.studies, results.inputs.outcomes, results.plan,
                                                fits)
    return _with_tables(replace(results, pooled=pooled, incomplete=None))


def _with_tables(results: Results) -> Results:
    """``results`` with the side-by-side table and the coverage matrix of its studies."""
    inputs, plan = results.inputs, results.plan
    sbs = tables.side_by_side(results.studies, inputs.municipalities, plan.level)
    cov = tables.coverage(results.harmonised, results.studies, inputs.municipalities, inputs.arms, inputs.outcomes,
                          plan, concepts.concept_periods(inputs.harmonisation,
                                                         plan.periods or tuple(inputs.periods["period"])),
                          concepts.not_reported(inputs.harmonisation))
    return replace(results, side_by_side=sbs, coverage=cov)


def add_sensitivity(results: Results) -> Results:
    """``results`` of :func:`analyse` with ``sensitivity=False``, completed with the sensitivity analysis
    (:func:`meta.analyses.sensitivity.sensitivity_table`), its robustness verdicts and the component models.

    The pooled cells and studies are not changed: what is drawn from them alone (the forest plots) can be drawn
    while this runs (:func:`meta.write.outputs.writing`). ``analyse(..., sensitivity=True)`` is
    ``add_sensitivity(analyse(..., sensitivity=False))``.
    """
    # imported here, not with this module: the component models are first needed
    # after the figure workers are forked (meta.write.outputs.writing), so the analysis before it does not wait for it
    from meta.analyses import components

    control.checkpoint("analyse")
    results = complete(results)
    plan = results.plan
    sens = sa.sensitivity_table(results)
    comps = components.component_models(results.studies, results.inputs.arms, plan.shared_control_correlation,
                                        plan.level)
    return replace(results, sensitivity=sens, robustness=sa.robustness(sens), components=comps)


def check_standard_errors(harmonised: pd.DataFrame, path) -> None:
    """Refuse a row whose derived SE cannot be pooled (not finite, zero, or so small that its variance
    underflows), naming file, row and the column the SE came from; before any pooling."""
    usable = harmonised["reason"].astype(str) == ""
    sei = pd.to_numeric(harmonised["sei"], errors="coerce")
    bad = usable & ~(np.isfinite(sei) & (sei > 0) & (sei ** 2 > 0) & np.isfinite(sei ** 2))
    if bad.any():
        r = harmonised[bad].iloc[0]
        method = str(r.get("se_method", ""))
        column = SE_SOURCE_COLUMN.get(method, "se")
        raise InputError(f"{path}: row {int(r['input_row'])} (line {int(r['input_row']) + 1}), column {column}: the "
                         f"standard error derived from it ({method or 'none'}) is {r['sei']!r}, which cannot be "
                         "pooled; check the number (an estimate of 0 with a p-value, a p-value of 1, or an interval "
                         "of no width give no SE), or leave the cell blank")



def cell_counts(pooled: pd.DataFrame) -> tuple[int, int]:
    """(cells pooled from k >= 2 studies, cells holding a single study) of a pooled table.

    A single study is shown as reported, not pooled, so it never counts as a pooled cell.
    """
    if len(pooled) == 0:
        return 0, 0
    k = pooled["k"].astype(int)
    return int((k >= 2).sum()), int((k == 1).sum())

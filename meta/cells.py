"""Select the study rows of every pooled cell (stage 3).

A *cell* is outcome × period × arm class (× harmonised unit). At the ``strict`` level the outcome is the outcome
code and the period one horizon (``m16`` = 16 months); at the ``concept`` level they are the LOEP concept and
period of ``harmonisation.csv``, so Nijmegen's wage > 70% WML after 16 months and Wageningen's full exit to work
after 24 months meet in the cell ``werk | einde_experiment``. Within a cell each municipality's arm contributes
one row: the register's primary row (or, in the harmonisation sensitivity specification, a sensitivity row), of
the plan's preferred model column and population. Every harmonised row leaves this stage either as a study of
exactly one cell or as an excluded row with its reason.
"""

from __future__ import annotations

import pandas as pd

from meta.effects import concepts as cp
from meta.plan import Plan

CELL_COLUMNS = ("outcome_key", "period", "arm_class", "unit_h")


def strict_period(horizon) -> str:
    """The period code of one horizon at the strict level: ``m16`` for 16 months ('' when there is none)."""
    return "" if pd.isna(horizon) else f"m{int(horizon)}"


#: The plan key behind each reason a plan filter gives (the start of the reason text), in the order applied.
PLAN_FILTERS = (
    ("outcomes", "outcome not in the plan's outcomes"),
    ("horizons", "horizon not in the plan's horizons"),
    ("arm_classes", "arm class not in the plan's arm classes"),
    ("model_preference", "model column not in the plan's model_preference"),
    ("include_derived_from_marks", "SE derived from significance marks, excluded by the plan"),
    ("model_preference/population_preference", "another row represents"),
)


def plan_removals(excluded: pd.DataFrame) -> dict[str, int]:
    """How many rows each plan filter removed (a row counts under the first filter that removed it), by plan key;
    rows excluded for other reasons (no SE, not pooled as an arm, ...) under ``"other reasons"``."""
    reasons = excluded["reason"].astype(str)
    counts, seen = {}, pd.Series(False, index=excluded.index)
    for key, start in PLAN_FILTERS:
        hit = reasons.str.startswith(start) & ~seen
        counts[key] = int(hit.sum())
        seen |= hit
    counts["other reasons"] = int((~seen).sum())
    return counts


def _rank(value: str, preference: tuple[str, ...]) -> tuple[int, str]:
    """Position in the preference list; unlisted values after all listed ones, alphabetically."""
    return (preference.index(value), "") if value in preference else (len(preference), value)


def select_studies(harmonised: pd.DataFrame, outcomes: pd.DataFrame, plan: Plan, concepts: pd.DataFrame | None = None,
                   roles: tuple[str, ...] = ("primary",)):
    """Split harmonised rows into the studies of each cell and the excluded rows.

    Parameters
    ----------
    harmonised : DataFrame
        Output of :func:`meta.effects.harmonise.harmonise`.
    outcomes : DataFrame
        The outcome register (for the order of outcomes).
    plan : Plan
        Outcomes (strict codes or concepts), horizons, arm classes, model and
        population preferences, and whether SEs derived from significance
        marks may be used.
    concepts : DataFrame, optional
        The concept register (unit per concept); needed at the concept level, where ``harmonised`` must carry
        the columns of :func:`meta.effects.concepts.map_concepts`.
    roles : tuple of str
        Register roles used at the concept level, most preferred first: ``("primary",)`` by default,
        ``("sensitivity", "primary")`` for the harmonisation sensitivity specification.

    Returns
    -------
    studies : DataFrame
        The rows used, with ``outcome_key`` (the outcome code, or its concept when ``plan.outcome_level ==
        "concept"``), ``period`` and the other cell columns; at the concept level ``yi``, ``sei``, ``sei_low``,
        ``sei_high`` and ``unit_h`` are on the concept's scale (the row's ``transform``).
    excluded : DataFrame
        Every other input row with ``reason``.
    """
    h = harmonised.copy()
    reason = _cell_keys(h, plan, roles, h["reason"].copy())
    reason = _plan_filters(h, plan, reason)
    candidates = h[reason == ""].copy()
    if plan.outcome_level != "strict":
        candidates = cp.to_concept_scale(candidates, concepts)
        h.loc[candidates.index, ["yi", "sei", "sei_low", "sei_high", "unit_h"]] = candidates[
            ["yi", "sei", "sei_low", "sei_high", "unit_h"]]
    reason = _one_row_per_slot(candidates, plan, list(outcomes["outcome"]), reason)
    studies = h.loc[reason == ""].drop(columns=["_role_rank"]).copy()
    studies["cell"] = [" | ".join(map(str, t)) for t in zip(*(studies[c].tolist() for c in CELL_COLUMNS))]
    studies = studies.sort_values([*CELL_COLUMNS, "municipality", "arm"], kind="mergesort").reset_index(drop=True)
    excluded = h.loc[reason != ""].drop(columns=["_role_rank"]).copy()
    excluded["reason"] = reason[reason != ""]
    excluded = excluded.sort_values("input_row", kind="mergesort").reset_index(drop=True)
    return studies, excluded


def _exclude(reason: pd.Series, mask, text) -> pd.Series:
    """``reason`` with ``text`` for the rows of ``mask`` that have none yet (the first reason a row gets stands)."""
    return reason.where(~(mask & (reason == "")), text)


def _cell_keys(h: pd.DataFrame, plan: Plan, roles: tuple[str, ...], reason: pd.Series) -> pd.Series:
    """Add ``outcome_key``, ``period`` and ``_role_rank`` to ``h`` (in place) for the plan's level; at the concept
    level, exclude rows the register does not map in ``roles`` or whose period the plan leaves out."""
    if plan.outcome_level == "strict":
        h["outcome_key"] = h["outcome"]
        h["period"] = [strict_period(x) for x in h["horizon_months"]]
        h["_role_rank"] = 0
        return reason
    h["outcome_key"] = h["concept"]
    h["period"] = h["period_concept"]
    role = h["harmonisation_role"]
    reason = _exclude(reason, role == "", "no row in harmonisation.csv for this municipality, outcome and horizon "
                                          "(add one: concept, period and transform, or role unmapped with the reason)")
    reason = _exclude(reason, role == "unmapped",
                      "deliberately unmapped in harmonisation.csv: " + h["harmonisation_reason"])
    reason = _exclude(reason, role.isin(("primary", "sensitivity")) & ~role.isin(roles),
                      role.map(lambda r: f"{r} mapping in harmonisation.csv; pooled only in the harmonisation "
                                         "sensitivity specification" if r == "sensitivity" else
                                         f"{r} mapping in harmonisation.csv; replaced by the sensitivity mapping in "
                                         "this specification"))
    h["_role_rank"] = [roles.index(r) if r in roles else len(roles) for r in role]
    if plan.periods:
        reason = _exclude(reason, ~h["period"].isin(plan.periods), "period not in the plan's periods")
    return reason


def _plan_filters(h: pd.DataFrame, plan: Plan, reason: pd.Series) -> pd.Series:
    """Exclude rows the plan leaves out: outcome, horizon, arm class, model column, SE from marks
    (:data:`PLAN_FILTERS`, in that order)."""
    reason = _exclude(reason, ~h["outcome_key"].isin(plan.outcomes),
                      f"outcome not in the plan's outcomes ({plan.outcome_level} level)")
    reason = _exclude(reason, ~h["horizon_months"].isin(plan.horizons), "horizon not in the plan's horizons")
    reason = _exclude(reason, ~h["arm_class"].isin(plan.arm_classes), "arm class not in the plan's arm classes")
    reason = _exclude(reason, ~h["model"].isin(plan.model_preference),
                      "model column not in the plan's model_preference")
    if not plan.include_derived_from_marks:
        reason = _exclude(reason, h["se_method"] == "from_significance_marks",
                          "SE derived from significance marks, excluded by the plan")
    return reason


def _one_row_per_slot(candidates: pd.DataFrame, plan: Plan, outcome_order: list, reason: pd.Series) -> pd.Series:
    """Keep one candidate per municipality, arm and cell: the register's most preferred role, then the outcome
    register's order, the plan's model and population preferences, a printed effect before a derived one, and
    the first input row; the others get a reason naming the row kept."""
    candidates = candidates.copy()
    candidates["_model_rank"] = [_rank(m, plan.model_preference) for m in candidates["model"].tolist()]
    candidates["_pop_rank"] = [_rank(p, plan.population_preference) for p in candidates["population"].tolist()]
    rank_of = {o: i for i, o in reversed(list(enumerate(outcome_order)))}  # the first place, as list.index
    candidates["_outcome_rank"] = [rank_of[o] for o in candidates["outcome"].tolist()]
    # a printed effect is preferred over one this tool derived from two printed levels
    candidates["_derived"] = candidates["comparator_row"].notna() if "comparator_row" in candidates else False
    candidates = candidates.sort_values(
        ["_role_rank", "_outcome_rank", "_model_rank", "_pop_rank", "_derived", "input_row"], kind="mergesort"
    )
    slot = ["municipality", "arm", *CELL_COLUMNS]
    first = (~candidates.duplicated(slot, keep="first")).to_numpy()
    keys = list(zip(*(candidates[c].tolist() for c in slot)))  # the columns as lists: no pandas call per row
    kept = candidates["input_row"].tolist()
    winner = {}
    for key, row, is_first in zip(keys, kept, first):
        if is_first:
            winner[key] = row
    reason = reason.copy()
    if not first.all():
        reason.loc[candidates.index[~first]] = [
            f"another row represents {key[0]} {key[1]} in this cell (input row {winner[key]}: preferred model, "
            "population, outcome or printed effect)" for key, is_first in zip(keys, first) if not is_first]
    return reason

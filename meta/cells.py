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

import numpy as np
import pandas as pd

from meta.effects import concepts as cp
from meta.plan import Plan

CELL_COLUMNS = ("outcome_key", "period", "arm_class", "unit_h")
#: The columns of a harmonised row :func:`select_studies` reads (the others are carried along to its output).
_READ = ("reason", "input_row", "municipality", "arm", "outcome", "horizon_months", "model", "population",
         "comparator_row", "se_method", "arm_class", "unit_h", "concept", "period_concept", "harmonisation_role",
         "harmonisation_reason")
#: The columns a concept's transform puts on the concept's scale (:func:`meta.effects.concepts.to_concept_scale`).
_SCALED = ("yi", "sei", "sei_low", "sei_high", "unit_h")
#: Every column of the harmonised rows the selection reads (:func:`cell_studies` needs no other).
SELECTION_COLUMNS = tuple(dict.fromkeys((*_READ, *_SCALED, "transform")))


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
    full, reason = _selection(harmonised, outcomes, plan, concepts, roles)
    dropped = np.flatnonzero(reason != "")
    dropped = dropped[sort_order(full[["input_row"]].take(dropped), ["input_row"])]
    excluded = full.take(dropped)
    excluded["reason"] = pd.Series(reason[dropped], index=excluded.index, dtype=harmonised["reason"].dtype)
    return _studies(full, reason), excluded.reset_index(drop=True)


def cell_studies(harmonised: pd.DataFrame, outcomes: pd.DataFrame, plan: Plan, concepts: pd.DataFrame | None = None,
                 roles: tuple[str, ...] = ("primary",)) -> pd.DataFrame:
    """The studies of :func:`select_studies` without its excluded rows (what the sensitivity analysis's
    specifications need), with the columns of ``harmonised`` given: at least those the selection reads
    (:data:`SELECTION_COLUMNS`)."""
    return _studies(*_selection(harmonised, outcomes, plan, concepts, roles))


def _selection(harmonised: pd.DataFrame, outcomes: pd.DataFrame, plan: Plan, concepts, roles) -> tuple:
    """(``harmonised`` with the cell keys and, at the concept level, the values on the concept's scale; every row's
    reason, "" for a study) for :func:`select_studies`."""
    col = {c: harmonised[c] for c in _READ if c in harmonised}  # what the selection reads
    reason = col["reason"].to_numpy(dtype=object, copy=True)
    key, role_rank = _cell_keys(col, plan, roles, reason)
    _plan_filters(col, key, plan, reason)
    at = np.flatnonzero(reason == "")  # the candidates: rows no filter removed
    if plan.outcome_level != "strict":
        scaled = cp.to_concept_scale(harmonised[list(_SCALED) + ["transform", "concept"]].iloc[at], concepts)
        for c in _SCALED:  # the candidates' values on the concept's scale, the other rows' as harmonised
            key[c] = harmonised[c].to_numpy(dtype=object, copy=True)
            key[c][at] = scaled[c].tolist()
    slot = [col["municipality"], col["arm"], *(key.get(c, col.get(c)) for c in CELL_COLUMNS)]
    _one_row_per_slot(col, slot, role_rank, at, plan, list(outcomes["outcome"]), reason)
    full = harmonised.assign(**{c: v if isinstance(v, pd.Series) else pd.Series(
        v, index=harmonised.index, dtype=harmonised[c].dtype if c in _SCALED else "str") for c, v in key.items()})
    return full, reason


def _studies(full: pd.DataFrame, reason: np.ndarray) -> pd.DataFrame:
    """The rows of ``full`` without a reason, sorted by cell, municipality and arm, with their ``cell`` label."""
    kept, cols = np.flatnonzero(reason == ""), [*CELL_COLUMNS, "municipality", "arm"]
    studies = full.take(kept[sort_order(full[cols].take(kept), cols)])  # the sort reads its columns only
    studies["cell"] = [" | ".join(map(str, t)) for t in zip(*(studies[c].tolist() for c in CELL_COLUMNS))]
    return studies.reset_index(drop=True)


def sort_order(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """The positions of ``frame``'s rows in the order ``frame.sort_values(cols, kind="mergesort")`` gives: Python's
    stable sort of the rows' values when every column holds only texts or only integers (the same order: by code
    point, by number), else pandas' own sort (missing values last)."""
    values = [frame[c].tolist() for c in cols]
    if all(all(type(v) is str for v in column) or all(type(v) is int for v in column) for column in values):
        rows = list(zip(*values))
        return np.array(sorted(range(len(rows)), key=rows.__getitem__), dtype=int)
    return frame[cols].reset_index(drop=True).sort_values(cols, kind="mergesort").index.to_numpy()


def _exclude(reason: np.ndarray, mask, text) -> None:
    """Give ``text`` (one text, or one per row) to the rows of ``mask`` that have no reason yet, in place: the first
    reason a row gets stands."""
    hit = np.flatnonzero(np.asarray(mask, dtype=bool) & (reason == ""))
    reason[hit] = text if isinstance(text, str) else np.asarray(text, dtype=object)[hit]


def _cell_keys(col: dict, plan: Plan, roles: tuple[str, ...], reason: np.ndarray) -> tuple[dict, list]:
    """The rows' ``outcome_key`` and ``period`` for the plan's level, and each row's rank among ``roles`` (0 at the
    strict level); at the concept level, exclude rows the register does not map in ``roles`` or whose period the
    plan leaves out (in ``reason``, in place)."""
    if plan.outcome_level == "strict":
        horizons = col["horizon_months"].tolist()
        period = {h: strict_period(h) for h in set(horizons)}
        return {"outcome_key": col["outcome"], "period": [period[h] for h in horizons]}, [0] * len(horizons)
    key = {"outcome_key": col["concept"], "period": col["period_concept"]}
    role = col["harmonisation_role"].to_numpy(dtype=object)
    _exclude(reason, role == "", "no row in harmonisation.csv for this municipality, outcome and horizon "
                                 "(add one: concept, period and transform, or role unmapped with the reason)")
    _exclude(reason, role == "unmapped",
             ("deliberately unmapped in harmonisation.csv: " + col["harmonisation_reason"]).to_numpy(dtype=object))
    for r in sorted({"primary", "sensitivity"} - set(roles)):  # a register role this specification does not use
        _exclude(reason, role == r, f"{r} mapping in harmonisation.csv; pooled only in the harmonisation sensitivity "
                 "specification" if r == "sensitivity" else f"{r} mapping in harmonisation.csv; replaced by the "
                 "sensitivity mapping in this specification")
    if plan.periods:
        _exclude(reason, ~key["period"].isin(plan.periods).to_numpy(), "period not in the plan's periods")
    return key, [roles.index(r) if r in roles else len(roles) for r in role.tolist()]


def _plan_filters(col: dict, key: dict, plan: Plan, reason: np.ndarray) -> None:
    """Exclude rows the plan leaves out (in ``reason``, in place): outcome, horizon, arm class, model column, SE from
    marks (:data:`PLAN_FILTERS`, in that order)."""
    for values, allowed, text in ((key["outcome_key"], plan.outcomes,
                                   f"outcome not in the plan's outcomes ({plan.outcome_level} level)"),
                                  (col["horizon_months"], plan.horizons, "horizon not in the plan's horizons"),
                                  (col["arm_class"], plan.arm_classes, "arm class not in the plan's arm classes"),
                                  (col["model"], plan.model_preference,
                                   "model column not in the plan's model_preference")):
        _exclude(reason, ~values.isin(allowed).to_numpy(), text)
    if not plan.include_derived_from_marks:
        _exclude(reason, (col["se_method"] == "from_significance_marks").to_numpy(),
                 "SE derived from significance marks, excluded by the plan")


def _one_row_per_slot(col: dict, slot: list, role_rank: list, at: np.ndarray, plan: Plan, outcome_order: list,
                      reason: np.ndarray) -> None:
    """Keep one candidate (the rows ``at``) per municipality, arm and cell (``slot``: those key columns): the
    register's most preferred role, then the outcome register's order, the plan's model and population preferences, a
    printed effect before a derived one, and the first input row; the others get a reason naming the row kept (in
    ``reason``, in place)."""
    rank_of = {o: i for i, o in reversed(list(enumerate(outcome_order)))}  # the first place, as list.index
    row = col["input_row"].to_numpy()[at].tolist()
    model, population = col["model"].to_numpy(dtype=object)[at], col["population"].to_numpy(dtype=object)[at]
    model_rank = {m: _rank(m, plan.model_preference) for m in set(model)}
    pop_rank = {p: _rank(p, plan.population_preference) for p in set(population)}
    # a printed effect is preferred over one this tool derived from two printed levels
    derived = (col["comparator_row"].notna().to_numpy()[at].tolist() if "comparator_row" in col else [False] * len(at))
    ranks = list(zip([role_rank[i] for i in at], [rank_of[o] for o in col["outcome"].to_numpy(dtype=object)[at]],
                     [model_rank[m] for m in model], [pop_rank[p] for p in population], derived, row))
    # the slot keys as codes (a missing key equals another missing key, as in DataFrame.duplicated)
    codes = list(zip(*(pd.factorize(v if isinstance(v, pd.Series) else np.asarray(v, dtype=object))[0][at].tolist()
                       for v in slot)))
    winner, losers = {}, []
    for j in sorted(range(len(at)), key=ranks.__getitem__):  # a stable sort: equal ranks keep the input order
        if codes[j] not in winner:
            winner[codes[j]] = row[j]
        else:
            losers.append(j)
    municipality, arm = (np.asarray(v, dtype=object)[at[losers]] for v in slot[:2])
    reason[at[losers]] = [f"another row represents {m} {a} in this cell (input row {winner[codes[j]]}: preferred "
                          "model, population, outcome or printed effect)" for m, a, j in zip(municipality, arm, losers)]

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
    key, reason = _selection(_Rows(harmonised, outcomes, concepts), plan, roles)
    full = _with_keys(harmonised, key)
    dropped = np.flatnonzero(reason != "")
    dropped = dropped[sort_order(full[["input_row"]].take(dropped), ["input_row"])]
    excluded = full.take(dropped)
    excluded["reason"] = pd.Series(reason[dropped], index=excluded.index, dtype=harmonised["reason"].dtype)
    return _studies(full, reason), excluded.reset_index(drop=True)


def cell_studies(harmonised: pd.DataFrame | _Rows, outcomes: pd.DataFrame, plan: Plan,
                 concepts: pd.DataFrame | None = None, roles: tuple[str, ...] = ("primary",),
                 columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The studies of :func:`select_studies` without its excluded rows (what the sensitivity analysis's
    specifications need), with the columns of ``harmonised`` given: at least those the selection reads
    (:data:`SELECTION_COLUMNS`).

    ``harmonised`` may be :func:`rows` of them, which keeps what every selection of the same rows works out alike
    (``outcomes`` and ``concepts`` are then its own). ``columns``: only these of the studies' columns (those that
    exist), in that order; the kept rows alone are then taken, with their cell keys, not every row."""
    rows_ = harmonised if isinstance(harmonised, _Rows) else _Rows(harmonised, outcomes, concepts)
    key, reason = _selection(rows_, plan, roles)
    if columns is None:
        return _studies(_with_keys(rows_.frame, key), reason)
    kept, cols = np.flatnonzero(reason == ""), [*CELL_COLUMNS, "municipality", "arm"]
    part = pd.DataFrame({c: _kept_column(rows_.frame, key, c, kept) for c in dict.fromkeys([*cols, *columns])
                         if c in key or c in rows_.frame})
    studies = part.take(sort_order(part, cols))  # as _studies: the same rows, in the same order
    if "cell" in columns:
        studies["cell"] = _cell_labels(studies)
    return studies[[c for c in columns if c in studies]].reset_index(drop=True)


def rows(harmonised: pd.DataFrame, outcomes: pd.DataFrame, concepts: pd.DataFrame | None = None) -> _Rows:
    """``harmonised`` for :func:`cell_studies` under several plans (the sensitivity analysis's variants): what the
    selection reads and derives from the rows alone is worked out at the first selection and kept."""
    return _Rows(harmonised, outcomes, concepts)


class _Rows:
    """Harmonised rows as the selection reads them: their columns (:data:`_READ`), and what it derives from them
    alone (each column as an array, a filter's rows, each row's slot code and rank by outcome), kept (:meth:`once`)
    for the next selection of the same rows under another plan or register roles."""

    def __init__(self, harmonised: pd.DataFrame, outcomes: pd.DataFrame, concepts: pd.DataFrame | None):
        self.frame, self.concepts = harmonised, concepts
        self.col = {c: harmonised[c] for c in _READ if c in harmonised}
        self.outcome_order = list(outcomes["outcome"])
        self._kept: dict = {}

    def once(self, key, make):
        """``make()``, worked out at the first call with ``key`` and kept."""
        if key not in self._kept:
            self._kept[key] = make()
        return self._kept[key]

    def array(self, name: str) -> np.ndarray:
        """Column ``name`` as an object array (not to be changed)."""
        return self.once(("array", name), lambda: self.frame[name].to_numpy(dtype=object))

    def numbers(self, name: str) -> np.ndarray:
        """Column ``name`` as it is stored (``to_numpy``; not to be changed)."""
        return self.once(("numbers", name), lambda: self.frame[name].to_numpy())

    def outside(self, name: str, values, allowed) -> np.ndarray:
        """Whether each row's ``values`` (a column, or a cell key named ``name``) is not in ``allowed``."""
        return self.once(("outside", name, tuple(allowed)), lambda: ~values.isin(allowed).to_numpy())


def _selection(rows_: _Rows, plan: Plan, roles) -> tuple:
    """(the cell keys of every row and, at the concept level, its values on the concept's scale: {column: Series,
    list or array}, for :func:`_with_keys`; every row's reason, "" for a study) for :func:`select_studies`."""
    reason = rows_.col["reason"].to_numpy(dtype=object, copy=True)
    key, role_rank = _cell_keys(rows_, plan, roles, reason)
    _plan_filters(rows_, key, plan, reason)
    at = np.flatnonzero(reason == "")  # the candidates: rows no filter removed
    if plan.outcome_level != "strict":
        scaled = cp.concept_scale({c: rows_.numbers(c)[at] for c in (*_SCALED, "transform", "concept")},
                                  rows_.concepts)
        for c in _SCALED:  # the candidates' values on the concept's scale, the other rows' as harmonised
            key[c] = rows_.array(c).copy()
            key[c][at] = scaled[c] if c == "unit_h" else scaled[c].tolist()
    _one_row_per_slot(rows_, key, role_rank, at, plan, reason)
    return key, reason


def _with_keys(harmonised: pd.DataFrame, key: dict) -> pd.DataFrame:
    """``harmonised`` with the columns of ``key`` (:func:`_selection`): a Series as it is, a list or array as a column
    of ``harmonised``'s dtype for the values put on the concept's scale, else text."""
    return harmonised.assign(**{c: v if isinstance(v, pd.Series) else pd.Series(
        v, index=harmonised.index, dtype=harmonised[c].dtype if c in _SCALED else "str") for c, v in key.items()})


def _kept_column(harmonised: pd.DataFrame, key: dict, c: str, kept: np.ndarray) -> pd.Series:
    """Column ``c`` of :func:`_with_keys` in the rows at the positions ``kept`` alone."""
    v = key.get(c)
    if v is None:
        return harmonised[c].take(kept)
    if isinstance(v, pd.Series):
        return v.take(kept)
    return pd.Series(np.asarray(v, dtype=object)[kept], index=harmonised.index[kept],
                     dtype=harmonised[c].dtype if c in _SCALED else "str")


def _studies(full: pd.DataFrame, reason: np.ndarray) -> pd.DataFrame:
    """The rows of ``full`` without a reason, sorted by cell, municipality and arm, with their ``cell`` label."""
    kept, cols = np.flatnonzero(reason == ""), [*CELL_COLUMNS, "municipality", "arm"]
    studies = full.take(kept[sort_order(full[cols].take(kept), cols)])  # the sort reads its columns only
    studies["cell"] = _cell_labels(studies)
    return studies.reset_index(drop=True)


def _cell_labels(studies: pd.DataFrame) -> list[str]:
    """Each row's cell as one text: its cell columns joined by " | "."""
    return [" | ".join(map(str, t)) for t in zip(*(studies[c].tolist() for c in CELL_COLUMNS))]


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


def _cell_keys(rows_: _Rows, plan: Plan, roles: tuple[str, ...], reason: np.ndarray) -> tuple[dict, list]:
    """The rows' ``outcome_key`` and ``period`` for the plan's level, and each row's rank among ``roles`` (0 at the
    strict level); at the concept level, exclude rows the register does not map in ``roles`` or whose period the
    plan leaves out (in ``reason``, in place)."""
    col = rows_.col
    if plan.outcome_level == "strict":
        horizons = col["horizon_months"].tolist()
        period = {h: strict_period(h) for h in set(horizons)}
        return {"outcome_key": col["outcome"], "period": [period[h] for h in horizons]}, [0] * len(horizons)
    key = {"outcome_key": col["concept"], "period": col["period_concept"]}
    role = rows_.array("harmonisation_role")
    _exclude(reason, role == "", "no row in harmonisation.csv for this municipality, outcome and horizon "
                                 "(add one: concept, period and transform, or role unmapped with the reason)")
    _exclude(reason, role == "unmapped", rows_.once("unmapped", lambda: (
        "deliberately unmapped in harmonisation.csv: " + col["harmonisation_reason"]).to_numpy(dtype=object)))
    for r in sorted({"primary", "sensitivity"} - set(roles)):  # a register role this specification does not use
        _exclude(reason, role == r, f"{r} mapping in harmonisation.csv; pooled only in the harmonisation sensitivity "
                 "specification" if r == "sensitivity" else f"{r} mapping in harmonisation.csv; replaced by the "
                 "sensitivity mapping in this specification")
    if plan.periods:
        _exclude(reason, rows_.outside("period", key["period"], plan.periods), "period not in the plan's periods")
    return key, rows_.once(("role rank", roles), lambda: [roles.index(r) if r in roles else len(roles)
                                                          for r in role.tolist()])


def _plan_filters(rows_: _Rows, key: dict, plan: Plan, reason: np.ndarray) -> None:
    """Exclude rows the plan leaves out (in ``reason``, in place): outcome, horizon, arm class, model column, SE from
    marks (:data:`PLAN_FILTERS`, in that order)."""
    col = rows_.col
    for name, values, allowed, text in (
            (f"outcome_key {plan.outcome_level}", key["outcome_key"], plan.outcomes,
             f"outcome not in the plan's outcomes ({plan.outcome_level} level)"),
            ("horizon_months", col["horizon_months"], plan.horizons, "horizon not in the plan's horizons"),
            ("arm_class", col["arm_class"], plan.arm_classes, "arm class not in the plan's arm classes"),
            ("model", col["model"], plan.model_preference, "model column not in the plan's model_preference")):
        _exclude(reason, rows_.outside(name, values, allowed), text)
    if not plan.include_derived_from_marks:
        _exclude(reason, rows_.once("marks", lambda: (col["se_method"] == "from_significance_marks").to_numpy()),
                 "SE derived from significance marks, excluded by the plan")


def _one_row_per_slot(rows_: _Rows, key: dict, role_rank: list, at: np.ndarray, plan: Plan,
                      reason: np.ndarray) -> None:
    """Keep one candidate (the rows ``at``) per municipality, arm and cell (the slot: those key columns): the
    register's most preferred role, then the outcome register's order, the plan's model and population preferences, a
    printed effect before a derived one, and the first input row; the others get a reason naming the row kept (in
    ``reason``, in place)."""
    col, row_of = rows_.col, rows_.once("input_row", lambda: rows_.col["input_row"].to_numpy())
    row = row_of[at].tolist()
    model, population = rows_.array("model")[at], rows_.array("population")[at]
    model_rank = {m: _rank(m, plan.model_preference) for m in set(model)}
    pop_rank = {p: _rank(p, plan.population_preference) for p in set(population)}
    # a printed effect is preferred over one this tool derived from two printed levels
    derived = (rows_.once("derived", lambda: col["comparator_row"].notna().to_numpy())[at].tolist()
               if "comparator_row" in col else [False] * len(at))
    outcome_rank = rows_.once("outcome rank", lambda: _outcome_ranks(rows_))
    ranks = list(zip([role_rank[i] for i in at], outcome_rank[at].tolist(), [model_rank[m] for m in model],
                     [pop_rank[p] for p in population], derived, row))
    codes = list(zip(*(c[at].tolist() for c in _slot_codes(rows_, key))))
    winner, losers = {}, []
    for j in sorted(range(len(at)), key=ranks.__getitem__):  # a stable sort: equal ranks keep the input order
        if codes[j] not in winner:
            winner[codes[j]] = row[j]
        else:
            losers.append(j)
    municipality, arm = (rows_.array(c)[at[losers]] for c in ("municipality", "arm"))
    reason[at[losers]] = [f"another row represents {m} {a} in this cell (input row {winner[codes[j]]}: preferred "
                          "model, population, outcome or printed effect)" for m, a, j in zip(municipality, arm, losers)]


def _outcome_ranks(rows_: _Rows) -> np.ndarray:
    """Each row's outcome's first place in the outcome register."""
    rank_of = {o: i for i, o in reversed(list(enumerate(rows_.outcome_order)))}  # the first place, as list.index
    return np.array([rank_of[o] for o in rows_.array("outcome")], dtype=int)


def _slot_codes(rows_: _Rows, key: dict) -> list:
    """Each row's municipality, arm and cell (:data:`CELL_COLUMNS`) as codes, one array per column (a missing value
    equals another missing value, as in DataFrame.duplicated); the columns no plan changes are coded once."""
    out = []
    for c in ("municipality", "arm", *CELL_COLUMNS):
        v = key.get(c, rows_.col.get(c))
        if isinstance(v, pd.Series):  # a column of the rows (or the concept's), the same for every plan
            # kept with the column itself: while the memo holds them no other object can take the id of its key
            out.append(rows_.once(("codes", c, id(v)), lambda v=v: (v, pd.factorize(v)[0]))[1])
        else:  # the strict period or the unit on the concept's scale: this plan's
            out.append(pd.factorize(np.asarray(v, dtype=object))[0])
    return out

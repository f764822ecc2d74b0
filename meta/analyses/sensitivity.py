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

Two kinds of specification are shown but not counted. A specification that repeats another by construction: the
Bayesian model with the plan's τ prior where that model is the main specification (:data:`REPEATS_MAIN`), and a
choice made before pooling (model column, SE policy, SE from marks, survey contrast, outcome definition) that leaves
a cell with exactly the main analysis's studies, so that pooling them with the plan's method and test is the plan's
classical specification again (:data:`REPEATS_PLAN`; e.g. the survey contrast in a cell of register outcomes), and
every other τ² estimator and test where the main specification is one study, which each returns as reported
(:data:`REPEATS_SINGLE`).
Counted, either would add an agreeing specification that is no other choice. And the plain Hartung-Knapp test
(``knha``) where its scale factor
q = Σwᵢ(yᵢ − μ̂)²/(k−1) is below 1. There it gives an interval *narrower* than the ad hoc test, which floors q at
1; with few studies that agree closely (k = 2, Q p near 1) q collapses towards 0 and the interval with it, the known
failure the ad hoc variant exists to prevent (Röver, Knapp & Friede 2015, BMC Med Res Methodol 15:99). Such a row
keeps its place in ``sensitivity.csv`` with the reason in ``not_counted``; :func:`robustness` leaves it out of
the verdict and names it in its own ``not_counted`` column. ``se_upper_bound_only`` marks a row that is one study
whose SE is only an upper bound: its interval is an outer bound (the Kerntabel's †), drawn so in the curves.

Pure functions; the batch engine pools each family of specifications in one call
(leave-one-out: every cell × left-out municipality in one batch; one call per
estimator and per test). Effects are derived once per SE policy and survey
contrast: choices made after harmonising (model column, SE from marks, outcome
level, harmonisation mappings) reuse the run's harmonised rows; the other SE
policy and the other survey contrast derive them once more each
(:class:`meta.effects.concepts.EffectsByChoice`: harmonise runs once per SE policy, the contrast is applied after it).

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
from meta.read.reader import records

from meta import cells as selection
from meta.analyses.fewstudies import HEADLINE_BAYES, prior_sensitivity_rows
from meta.cells import CELL_COLUMNS

SPEC_COLUMNS = ("outcome_key", "period", "arm_class", "unit_h", "spec_group", "spec", "k",
                "municipalities", "estimate", "ci_low", "ci_high", "verdict", "not_counted", "se_upper_bound_only")
#: Model columns a report may print, tried one at a time in place of the plan's first choice.
MODEL_COLUMNS = ("basis", "loep", "extra")
#: The columns of a specification's studies the sensitivity analysis reads.
_STUDY_COLUMNS = (*CELL_COLUMNS, "municipality", "yi", "sei", "se_upper_bound_only")
_SELECTED = {*selection.SELECTION_COLUMNS, *_STUDY_COLUMNS}
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
    return _knha_scale(*engine.pool_cells_each(studies, CELL_COLUMNS, [(method, "knha"), (method, "z")], level))


def _knha_scale(knha: pd.DataFrame, z: pd.DataFrame) -> dict:
    """:func:`knha_scale` from the ``knha`` and ``z`` tables of the same cells and τ² estimator."""
    q = (knha["se"].to_numpy(float) / z["se"].to_numpy(float)) ** 2
    return {tuple(r[c] for c in CELL_COLUMNS): float(x) for r, x in zip(records(knha[list(CELL_COLUMNS)]), q)}


def not_counted_reasons(studies: pd.DataFrame, method: str, test: str, level: float) -> dict:
    """{cell key: why the ``test`` specification does not count toward the verdict} (module docstring): only
    ``knha`` with scale factor q < 1; empty for any other test."""
    if test != "knha":
        return {}
    return _not_counted(knha_scale(studies, method, level))


#: Why a specification that repeats another one is shown but not counted (module docstring).
REPEATS_MAIN = ("the main specification itself (the Bayesian headline with the plan's τ prior): shown, not counted "
                "twice")
REPEATS_PLAN = ("the main analysis's own studies (this choice changes none of this cell's effects), pooled with the "
                "plan's method and test: the plan's classical specification again; shown, not counted twice")
REPEATS_SINGLE = ("one study: every τ² estimator and test gives it as reported, the main specification again; "
                  "shown, not counted twice")
REPEATS = (REPEATS_MAIN, REPEATS_PLAN, REPEATS_SINGLE)


def repeats(sens: pd.DataFrame) -> np.ndarray:
    """Per row of ``sens`` (sensitivity.csv): whether the specification repeats another (:data:`REPEATS`)."""
    if "not_counted" not in sens:
        return np.zeros(len(sens), dtype=bool)
    return np.isin(sens["not_counted"].to_numpy(dtype=object), REPEATS)


def _not_counted(scale: dict) -> dict:
    """{cell key: reason} for the cells whose knha scale factor (:func:`knha_scale`) is below 1."""
    return {key: (f"knha scale factor q = {q:.3g} < 1: narrower than the ad hoc test, which floors q at 1 "
                  "(Röver, Knapp & Friede 2015); not counted in the verdict")
            for key, q in scale.items() if q < 1}


def _cell_rows(frame: pd.DataFrame, cols: list[str], sort: bool = False) -> dict:
    """{cell key: the positions of ``frame``'s rows in that cell}, cells in order of first appearance (``sort``: in
    groupby's sorted order) and rows in frame order; a row with a missing value in ``cols`` belongs to no cell (as in
    groupby)."""
    if len(frame) == 0:
        return {}
    code = frame.groupby(list(cols), sort=sort).ngroup().to_numpy(dtype=float)  # NaN: a missing key
    at = np.flatnonzero(~np.isnan(code))
    at = at[np.argsort(code[at], kind="stable")]  # the rows by cell, each cell's in frame order
    bounds = np.flatnonzero(np.diff(code[at])) + 1
    first = at[np.concatenate([[0], bounds])] if len(at) else at
    keys = zip(*(frame[c].take(first).tolist() for c in cols))
    return dict(zip(keys, (rows.tolist() for rows in np.split(at, bounds))))


def _municipalities(studies: pd.DataFrame, cols: list[str], groups: dict | None = None) -> dict:
    """{cell key: ';'-joined sorted municipalities} (or 'k municipalities …' past ``LOO_ALL_MAX_K``). ``groups``:
    :func:`_cell_rows` of ``studies`` by ``cols`` when already known."""
    groups = _cell_rows(studies, cols) if groups is None else groups
    municipality = studies["municipality"].tolist()
    out = {}
    for key, at in groups.items():
        names = sorted(municipality[i] for i in at)
        out[key] = (";".join(names) if len(names) <= LOO_ALL_MAX_K
                    else f"{len(names)} municipalities (listed in studies.csv)")
    return out


def _upper_bound_keys(studies: pd.DataFrame, cols: list[str], groups: dict | None = None) -> set:
    """The cell keys whose one study has an SE that is only an upper bound (``se_upper_bound_only``): their interval
    is an outer bound, not a verdict (as :func:`meta.present.fewstudies_report.upper_bound_only` for a Kerntabel
    row). A cell of two or more studies is pooled and never in the set. ``groups``: :func:`_cell_rows` of ``studies``
    by ``cols`` when already known."""
    if "se_upper_bound_only" not in studies:
        return set()
    flags = studies["se_upper_bound_only"].fillna(False).astype(bool)
    if not flags.any():
        return set()
    flags = flags.tolist()
    groups = _cell_rows(studies, cols) if groups is None else groups
    return {key for key, at in groups.items() if len(at) == 1 and flags[at[0]]}


def _cells_of(studies: pd.DataFrame, cols: list[str]) -> tuple[dict, set]:
    """(:func:`_municipalities`, :func:`_upper_bound_keys`) of ``studies`` by ``cols``, its rows grouped once."""
    groups = _cell_rows(studies, cols)
    return _municipalities(studies, cols, groups), _upper_bound_keys(studies, cols, groups)


def _spec_rows(pooled: pd.DataFrame, group: str | None, spec, studies: pd.DataFrame | None, by: str | None = None,
               not_counted: dict | None = None, cells: tuple[dict, set] | None = None,
               names: dict | None = None) -> list[dict]:
    """One row per pooled cell. ``spec`` is the specification's name, or (with ``by``) the name of the
    ``by`` column of ``pooled`` and ``studies`` that tells the specifications of one batch apart; ``names``: {``by``
    value: (spec_group, spec)} when that column holds codes instead (``group`` and ``spec`` are then unused).
    ``not_counted``: {cell key (with the ``by`` value when given): reason} for rows that do not count toward the
    verdict (:func:`not_counted_reasons`, :func:`_same_studies`).
    ``cells``: :func:`_cells_of` ``studies`` when already known. ``se_upper_bound_only``: the row is one study whose
    SE is only an upper bound (:func:`_upper_bound_keys`)."""
    cols = [*CELL_COLUMNS, *([by] if by else [])]
    munis, upper = _cells_of(studies, cols) if cells is None else cells
    out = []
    for r in records(pooled[list(dict.fromkeys([*cols, "k", "estimate", "ci_low", "ci_high"]))]):
        key = tuple(r[c] for c in cols)
        row_group, row_spec = names[r[by]] if names else (group, r[by] if by else spec)
        out.append({**{c: r[c] for c in CELL_COLUMNS}, "spec_group": row_group, "spec": row_spec,
                    "k": int(r["k"]), "municipalities": munis.get(key, ""), "estimate": r["estimate"],
                    "ci_low": r["ci_low"], "ci_high": r["ci_high"], "verdict": verdict(r["ci_low"], r["ci_high"]),
                    "not_counted": (not_counted or {}).get(key, ""),
                    "se_upper_bound_only": key in upper and int(r["k"]) == 1})
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
    # merged on an integer code per cell (the same matches, in the same order, as on the four text columns)
    code = {key: i for i, key in enumerate(dict.fromkeys(zip(*(multi[c].tolist() for c in cols))))}
    cell_of = lambda frame: [code[k] for k in zip(*(frame[c].tolist() for c in cols))]  # noqa: E731
    loo = multi.assign(_cell=cell_of(multi)).merge(pairs.assign(_cell=cell_of(pairs)).drop(columns=cols), on="_cell")
    loo = loo[loo["municipality"] != loo["_left_out"]]
    return loo.assign(spec="without " + loo["_left_out"]).drop(columns=["_cell", "_left_out"])


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
    plan, studies = results.plan, results.studies
    cells = _cells_of(studies, list(CELL_COLUMNS))  # of the main studies, used by most families
    rows = _main_rows(results, cells)
    rows += _estimator_and_test_rows(studies, plan, cells)
    # leave one municipality out (cells with k >= 2 only): every cell x left-out municipality in one batch
    loo = leave_one_out_studies(studies[[c for c in _STUDY_COLUMNS if c in studies]], results.pooled)
    if len(loo):
        batch = engine.pool_cells(loo, (*CELL_COLUMNS, "spec"), plan.method, plan.test, plan.level)
        rows += _spec_rows(batch, "leave one out", None, loo, by="spec")
    rows += _reselected_rows(results)
    # Bayesian normal-normal model with the plan's τ prior per unit, and the prior variants (cells with k >= 2: a single
    # study is shown as reported)
    prior_rows = prior_sensitivity_rows(studies, plan, results.pooled)  # the plan's prior: fitted once, in the run
    bayes = _bayes_headline_rows(results.pooled)
    upper, bayes_main = cells[1], set(zip(*(bayes[c].tolist() for c in CELL_COLUMNS)))
    for r in records(prior_rows):
        key = tuple(r[c] for c in CELL_COLUMNS)
        rows.append({**{c: r[c] for c in SPEC_COLUMNS if c not in ("verdict", "not_counted", "se_upper_bound_only")},
                     "verdict": verdict(r["ci_low"], r["ci_high"]),
                     "not_counted": REPEATS_MAIN if r["spec_group"] == "Bayesian" and key in bayes_main else "",
                     "se_upper_bound_only": key in upper and int(r["k"]) == 1})
    table = pd.DataFrame(rows, columns=list(SPEC_COLUMNS))
    # keep only cells of the main analysis
    main_keys = table.loc[table["spec_group"] == "main", list(CELL_COLUMNS)].drop_duplicates()
    table = table.merge(main_keys, on=list(CELL_COLUMNS))
    table["not_counted"] = _single_study_repeats(table)
    return table.sort_values([*CELL_COLUMNS, "spec_group", "spec"], kind="mergesort").reset_index(drop=True)


def _single_study_repeats(table: pd.DataFrame) -> list:
    """``table``'s ``not_counted`` with :data:`REPEATS_SINGLE` for the estimator and test rows of a cell whose main
    specification is one study (each pools the main analysis's one study), where the row gives the main row's
    numbers (as one study under every estimator and test does; a row that did not would count)."""
    numbers = ["k", "estimate", "ci_low", "ci_high"]
    keys = list(zip(*(table[c].tolist() for c in CELL_COLUMNS)))
    values = [tuple(repr(v) for v in row) for row in zip(*(table[c].tolist() for c in numbers))]  # nan == nan
    groups = table["spec_group"].tolist()
    single = {key: v for key, v, g in zip(keys, values, groups) if g == "main" and v[0] == "1"}
    return [REPEATS_SINGLE if g in ("estimator", "test") and not reason and single.get(key) == v else reason
            for key, v, g, reason in zip(keys, values, groups, table["not_counted"].tolist())]


def _bayes_headline_rows(pooled: pd.DataFrame) -> pd.DataFrame:
    """The pooled rows whose main specification is the Bayesian headline (:data:`HEADLINE_BAYES`)."""
    if not len(pooled):
        return pooled
    return pooled[pooled.get("headline", pd.Series("", index=pooled.index)) == HEADLINE_BAYES]


def _main_rows(results, cells: tuple[dict, set]) -> list[dict]:
    """The main specification (the pooled table's headline: the Bayesian model for few studies, else the plan's
    method and test) and, beside a Bayesian headline, the run's own classical fit (``classical_*`` columns)."""
    plan, studies, main = results.plan, results.studies, results.pooled
    rows: list[dict] = []
    bayes_cells = _bayes_headline_rows(main)
    for headline_is_bayes, part in ((False, main.drop(bayes_cells.index)), (True, bayes_cells)):
        if len(part):
            spec = "Bayesian headline (plan's τ prior)" if headline_is_bayes else f"{plan.method} + {plan.test}"
            rows += _spec_rows(part, "main", spec, studies, cells=cells)
    if len(bayes_cells):
        classical = bayes_cells[[*CELL_COLUMNS, "k"]].assign(**{c: bayes_cells[f"classical_{c}"]
                                                               for c in ("estimate", "ci_low", "ci_high")})
        rows += _spec_rows(classical, "classical", f"{plan.method} + {plan.test}", studies, cells=cells)
    return rows


def _estimator_and_test_rows(studies: pd.DataFrame, plan, cells: tuple[dict, set]) -> list[dict]:
    """Every other τ² estimator (with the plan's test) and every other test (with the plan's estimator): the main
    studies grouped and padded once for all of them (:func:`meta.models.engine.pool_cells_each`)."""
    method, test = plan.method.upper(), plan.test.lower()
    choices = [(m, plan.test) for m in engine.METHODS if m != method]
    choices += [(plan.method, t) for t in engine.TESTS if t != test]
    if "knha" != test:  # its scale factor needs the z fit at the plan's estimator too (not_counted_reasons)
        choices += [c for c in ((plan.method, "z"),) if c not in choices]
    tables = dict(zip(choices, engine.pool_cells_each(studies, CELL_COLUMNS, choices, plan.level)))
    rows = []
    for m in engine.METHODS:
        if m != method:
            rows += _spec_rows(tables[(m, plan.test)], "estimator", m, studies, cells=cells)
    for t in engine.TESTS:
        if t != test:
            not_counted = (_not_counted(_knha_scale(tables[(plan.method, "knha")], tables[(plan.method, "z")]))
                           if t == "knha" else {})
            rows += _spec_rows(tables[(plan.method, t)], "test", t, studies, not_counted=not_counted, cells=cells)
    return rows


def _reselected_rows(results) -> list[dict]:
    """Choices made before pooling: each plan variant re-selects the studies (effects derived once more for another
    SE policy or survey contrast), at the concept level the strict outcome definitions inside each concept cell and
    the harmonisation register's sensitivity mappings. All are pooled with the plan's method and test, stacked in
    as few batches as give each specification its own numbers (:func:`_pool_tables`)."""
    plan, inputs, studies = results.plan, results.inputs, results.studies
    effects = results.effects if results.effects is not None else concepts.EffectsByChoice(inputs)

    read = {}  # (SE policy, survey contrast) -> its rows as the selection reads them, shared by the variants

    def studies_for(variant, roles=("primary",)) -> pd.DataFrame:
        choice = (variant.se_policy, variant.survey_contrast)
        if choice not in read:
            h = effects.get(*choice)
            read[choice] = selection.rows(h[[c for c in h.columns if c in _SELECTED]], inputs.outcomes,
                                          inputs.concepts)  # the columns the selection and this analysis read
        return selection.cell_studies(read[choice], inputs.outcomes, variant, inputs.concepts, roles,
                                      columns=(*_STUDY_COLUMNS, "harmonisation_role"))

    specs = [(group, spec, studies_for(variant)) for group, spec, variant in plan_variants(plan)]
    if plan.outcome_level == "concept":
        # the strict level inside each concept cell: its studies regrouped by exact outcome code and horizon, each
        # pooled on its own (k = 1 where the municipalities' codes differ); one table of codes, not one frame each
        strict = studies.groupby(["outcome", "horizon_months"], sort=True)
        specs += [("outcome definition", [f"strict: {code} {int(months)} m" for code, months in strict.size().index],
                   studies.assign(_table=strict.ngroup().fillna(-1).astype(int)))]
        alt = studies_for(plan, roles=("sensitivity", "primary"))
        if len(alt) and "sensitivity" in set(alt["harmonisation_role"]):
            specs.append(("outcome definition", "harmonisation: sensitivity mappings", alt))
    names, tables = {}, []
    for group, spec, frame in specs:  # every specification's studies in one table, told apart by _table
        frame = frame[[c for c in (*_STUDY_COLUMNS, "_table") if c in frame]]
        if isinstance(spec, str):
            frame = frame.assign(_table=len(names))
            spec = [spec]
        else:
            frame = frame[frame["_table"] >= 0].assign(_table=frame["_table"] + len(names))
        if len(frame):
            tables.append(frame)
            names.update({len(names) + i: (group, name) for i, name in enumerate(spec)})
    if not tables:
        return []
    stacked = pd.concat(tables, ignore_index=True)
    pooled = _pool_tables(stacked, plan)
    return _spec_rows(pooled, None, None, stacked, by="_table", names=names,
                      not_counted=dict.fromkeys(_same_studies(stacked, studies), REPEATS_PLAN))


#: What makes two selections of a cell the same studies: who, and the effect and SE pooled.
_SAME = ("municipality", "yi", "sei", "se_upper_bound_only")


def _same_studies(stacked: pd.DataFrame, studies: pd.DataFrame) -> list[tuple]:
    """The (cell key, ``_table``) of ``stacked`` (the re-selected specifications' studies) whose studies are exactly
    the main analysis's studies of that cell (``studies``): the same municipalities with the same ``yi``, ``sei``
    and upper-bound flag, compared as sorted rows (a missing value equals a missing value)."""
    def selections(frame: pd.DataFrame, cols: list[str]) -> dict:
        rows = list(zip(*(frame[c].tolist() for c in _SAME)))
        return {key: sorted(map(repr, (rows[i] for i in at))) for key, at in _cell_rows(frame, cols).items()}

    main = selections(studies, list(CELL_COLUMNS))
    return [key for key, chosen in selections(stacked, [*CELL_COLUMNS, "_table"]).items()
            if main.get(key[:len(CELL_COLUMNS)]) == chosen]


#: Up to this width a batch's padding does not change any cell's sums: numpy adds fewer than 8 terms one after
#: another (padding adds exact zeros at the end), 8 or more pairwise, where the padded width regroups the terms and
#: can move the last bit.
_SEQUENTIAL_WIDTH = 7


def _pool_tables(stacked: pd.DataFrame, plan) -> pd.DataFrame:
    """:func:`meta.models.engine.pool_cells` of each table of ``stacked`` (its ``_table`` column, codes 0, 1, …) with
    the plan's method, test and level, in one batch per padded width: a table's cells are pooled beside others only
    where the batch is padded as the table's own would be (all at most ``_SEQUENTIAL_WIDTH`` studies per cell, or the
    same widest cell), so every number is the one pooling the table alone gives, to the last bit. Rows by table, and
    within a table in the order pooling it alone gives."""
    cols = list(CELL_COLUMNS)
    width = stacked.groupby(["_table", *cols], sort=False, dropna=False).size().groupby(level=0, sort=True).max()
    buckets: dict = {}
    for i, w in zip(width.index.tolist(), width.tolist()):
        buckets.setdefault(w if w > _SEQUENTIAL_WIDTH else 0, []).append(i)
    table = stacked["_table"].to_numpy()
    parts = []
    for members in buckets.values():
        part = stacked[[*cols, "yi", "sei", "_table"]][np.isin(table, members)].reset_index(drop=True)
        parts.append(engine.pool_cells(part, (*cols, "_table"), plan.method, plan.test, plan.level))
    pooled = pd.concat(parts, ignore_index=True)
    return pooled.take(np.argsort(pooled["_table"].to_numpy(), kind="stable")).reset_index(drop=True)


def robustness(sens: pd.DataFrame) -> pd.DataFrame:
    """Per main cell: the main verdict, how many specifications count, whether every one agrees, which
    specifications were not counted for a reason of their own (``not_counted``: ``group: spec;…``) and which
    repeat another (``repeats``, :data:`REPEATS`); the reasons are in ``sensitivity.csv`` (module docstring). Cells
    in sorted order; a row with a missing cell column belongs to no cell (as in groupby)."""
    cols = list(CELL_COLUMNS)
    col = {c: sens[c].tolist() for c in ["spec_group", "spec", "verdict", "estimate"]}
    skipped = ((sens["not_counted"].fillna("").astype(str) != "").tolist() if "not_counted" in sens
               else [False] * len(sens))
    repeated = repeats(sens).tolist()
    cells = _cell_rows(sens, cols)
    group, spec, verdicts = col["spec_group"], col["spec"], col["verdict"]
    rows = []
    for key in sorted(cells):
        at = cells[key]
        main = next(verdicts[i] for i in at if group[i] == "main")
        left_out = [i for i in at if skipped[i] and not repeated[i]]
        others = [i for i in at if verdicts[i] != "no estimate" and not skipped[i]]
        disagree = [i for i in others if verdicts[i] != main]
        low, high = _nan_min_max([col["estimate"][i] for i in others])
        rows.append({**dict(zip(CELL_COLUMNS, key)), "verdict": main, "n_specs": len(others),
                     "survives_all": not disagree,
                     "changed_by": ";".join(f"{group[i]}: {spec[i]}" for i in disagree),
                     "not_counted": ";".join(f"{group[i]}: {spec[i]}" for i in left_out),
                     "repeats": ";".join(f"{group[i]}: {spec[i]}" for i in at if repeated[i]),
                     "estimate_min": low, "estimate_max": high})
    return pd.DataFrame(rows)


def _nan_min_max(values: list) -> tuple[float, float]:
    """Smallest and largest of ``values`` skipping NaN (NaN when none is left), as pandas' Series.min/max."""
    x = np.asarray(values, dtype=float)
    nan = np.isnan(x)
    if nan.all():
        return np.float64(np.nan), np.float64(np.nan)
    return np.where(nan, np.inf, x).min(), np.where(nan, -np.inf, x).max()


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
    group, spec, verdict, estimate = (part[c].tolist() for c in ("spec_group", "spec", "verdict", "estimate"))
    rows = []
    for key, at in _cell_rows(part, list(CELL_COLUMNS), sort=True).items():  # as groupby(sort=True), read once
        base = [i for i in at if group[i] == "Bayesian"]
        if not base:
            continue
        v = verdict[base[0]]
        other = [i for i in at if group[i] == "prior" and verdict[i] != v]
        low, high = _nan_min_max([estimate[i] for i in at])
        rows.append({**dict(zip(CELL_COLUMNS, key)), "verdict": v, "depends_on_prior": bool(other),
                     "changed_by": ";".join(spec[i] for i in other), "estimate_min": low, "estimate_max": high})
    return pd.DataFrame(rows, columns=cols)

"""Tables for analysts: pooled rows, the side-by-side table and the coverage matrix (stage 5).

Pure functions on DataFrames; writing happens in :mod:`meta.write.outputs`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtri

from meta.i18n import fmt_interval, fmt_num, fmt_p_range
from meta.effects.concepts import SE_METHOD as RANGE_BOUND
from meta.plan import Plan
from meta.cells import CELL_COLUMNS, sort_order, strict_period

#: SE methods that rest on assumptions beyond the printed numbers; pooled rows using them are flagged.
DERIVED_SE_METHODS = ("from_significance_marks", "from_shares_binomial", "from_shares_binomial_and_marks", RANGE_BOUND)

POOLED_COLUMNS = (
    "outcome_key", "outcome_label", "period", "arm_class", "unit_h", "k", "municipalities", "arms",
    "codes", "horizons", "transforms",
    "estimate", "se", "ci_low", "ci_high", "pval", "p_range", "pi_low", "pi_high",
    "tau2", "tau2_ci_low", "tau2_ci_high", "I2", "I2_ci_low", "I2_ci_high", "H2", "H2_ci_low", "H2_ci_high",
    "I2_Q", "Q", "Q_df", "Q_p", "method", "test", "level", "df",
    "se_methods", "flag_derived_se", "se_upper_bound_only", "single_study", "converged", "note",
)


#: A study that carries at least this share of a pooled cell's weight dominates it: the report says so.
DOMINANT_WEIGHT = 0.95


def study_weights(sei, tau2: float) -> np.ndarray:
    """Random-effects weights of a cell's studies as shares: w_i = 1 / (sei_i² + τ²), divided by their sum.

    The weights of the classical model (metafor's ``weights()`` for ``rma.uni``; τ² the cell's estimate, 0 when it is
    missing), as the forest plots print them.
    """
    sei = np.asarray(sei, dtype=float)
    w = 1.0 / (sei ** 2 + (0.0 if tau2 is None or np.isnan(tau2) else float(tau2)))
    return w / w.sum()


def dominant_study(cell_studies: pd.DataFrame, tau2: float, threshold: float = DOMINANT_WEIGHT):
    """``(municipality, weight share)`` of the study that carries ≥ ``threshold`` of a pooled cell's weight, else
    None (also for a cell with fewer than two studies)."""
    if len(cell_studies) < 2:
        return None
    w = study_weights(cell_studies["sei"], tau2)
    i = int(np.argmax(w))
    return (cell_studies["municipality"].iloc[i], float(w[i])) if w[i] >= threshold else None


def study_intervals(studies: pd.DataFrame, level: float = 95.0) -> tuple[np.ndarray, np.ndarray]:
    """Each study's Wald interval yi ± z·sei at ``level`` percent (z the normal quantile), as :func:`side_by_side`
    prints it."""
    z = float(ndtri(0.5 + level / 200))
    yi, sei = studies["yi"].to_numpy(float), studies["sei"].to_numpy(float)
    return yi - z * sei, yi + z * sei


def mark_p_ranges(studies: pd.DataFrame, legends: pd.DataFrame) -> dict:
    """For study rows whose SE came from a significance mark: ``{input_row: (p_at_least, p_below, mark)}``.

    The p-value computed from a reconstructed SE is a construction; what the source says is this range
    (the legend of the mark's table: p below ``p_below``, at least ``p_at_least``).
    """
    is_marked = studies["se_method"] == "from_significance_marks"
    if not is_marked.any():
        return {}
    marked = studies.loc[is_marked, ["input_row", "source_file", "source_table", "significance"]]  # the columns read
    legend = {}  # (source_file, source_table, mark) -> the first legend row's (p_at_least, p_below)
    for key, at_least, below in zip(zip(legends["source_file"], legends["source_table"], legends["mark"]),
                                    legends["p_at_least"], legends["p_below"]):
        if not any(pd.isna(v) for v in key):  # a missing value equals nothing (as in an equality mask)
            legend.setdefault(key, (float(at_least), float(below)))
    out = {}
    for row, key in zip(marked["input_row"], zip(marked["source_file"], marked["source_table"], marked["significance"])):
        hit = None if any(pd.isna(v) for v in key) else legend.get(key)
        if hit is not None:
            out[int(row)] = (*hit, "" if pd.isna(key[2]) else str(key[2]))
    return out


def pooled_table(pooled: pd.DataFrame, studies: pd.DataFrame, outcomes: pd.DataFrame, plan: Plan,
                 legends: pd.DataFrame | None = None, concepts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Annotate the engine's per-cell output with who went in, what they combined and how their SEs were obtained.

    ``codes``, ``horizons`` and ``transforms`` list, aligned with ``municipalities``, each study's own outcome code,
    its month and the scale transform that put it on the cell's unit (``identity`` at the strict level).

    A single study whose SE came from a significance mark has no p-value of its own, only the range its mark
    states: ``pval`` is left blank and ``p_range`` holds the range (``<0.05``, ``0.05–0.1``, ``≥0.1``).

    ``se_upper_bound_only`` is true when every study of the cell has an SE that is only an upper bound
    (:func:`meta.effects.se.upper_bound_only`). For a single study its interval is then an outer bound and ``pval``
    an upper bound; for k ≥ 2 the pooled fit rests on such SEs only (no exact bound follows: τ² is estimated too).
    """
    if len(pooled) == 0:
        return pd.DataFrame(columns=POOLED_COLUMNS)
    ranges = mark_p_ranges(studies, legends) if legends is not None else {}
    label = dict(zip(outcomes["outcome"], outcomes["label_en"]))
    concept_label = {} if concepts is None else dict(zip(concepts["concept"], concepts["label_en"]))
    by_cell = _cell_summaries(studies, ranges, plan)
    empty = {"_mark": None, "municipalities": "", "arms": "", "codes": "", "horizons": "", "transforms": "",
             "se_methods": "", "flag_derived_se": False, "se_upper_bound_only": False}
    rows = []
    for cell in pooled.to_dict("records"):
        found = dict(by_cell.get(tuple(str(cell[c]) for c in CELL_COLUMNS), empty))
        mark = found.pop("_mark")
        extra = {
            "pval": float("nan") if mark else cell["pval"],
            "p_range": fmt_p_range(mark[0], mark[1], "en") if mark else "",
            "outcome_label": label.get(cell["outcome_key"], concept_label.get(cell["outcome_key"], cell["outcome_key"])),
            **found,
            "note": ("single study: not pooled, shown as reported" if bool(cell["single_study"]) else "")
            + ("" if bool(cell["converged"]) else "; estimator did not converge"),
        }
        rows.append({**cell, **extra})
    table = pd.DataFrame(rows)
    return table[list(POOLED_COLUMNS)].sort_values(list(CELL_COLUMNS), kind="mergesort").reset_index(drop=True)


def _cell_summaries(studies: pd.DataFrame, ranges: dict, plan: Plan) -> dict:
    """{cell key as texts: what :func:`pooled_table` adds from the cell's studies}, the cells of ``studies.groupby``
    (cell columns, ``sort=False``, ``dropna=False``) in its order, each study's columns read from lists taken once
    (a group's frame slices every column of the studies, and each of its columns is a pandas lookup)."""
    ids = studies.groupby(list(CELL_COLUMNS), sort=False, dropna=False).ngroup().tolist()
    members: dict[int, list[int]] = {}
    for i, group in enumerate(ids):  # positions per cell, numbered in order of first appearance
        members.setdefault(group, []).append(i)
    keys = list(zip(*(studies[c].tolist() for c in CELL_COLUMNS)))
    col = {c: studies[c].tolist() for c in ("municipality", "arm", "outcome", "horizon_months", "se_method")}
    row = studies["input_row"].tolist() if ranges else []  # read only for a mark's p range, as before
    transform = (studies["transform"].tolist() if "transform" in studies and plan.outcome_level == "concept"
                 else ["identity"] * len(studies))
    upper = studies["se_upper_bound_only"].astype(bool).tolist() if "se_upper_bound_only" in studies else None
    by_cell = {}
    for at in members.values():
        methods = sorted({col["se_method"][i] for i in at})
        municipalities = [col["municipality"][i] for i in at]
        by_cell[tuple(str(v) for v in keys[at[0]])] = {
            "_mark": ranges.get(int(row[at[0]])) if ranges and len(at) == 1 else None,
            "municipalities": ";".join(municipalities),
            "arms": ";".join(f"{m}:{col['arm'][i]}" for m, i in zip(municipalities, at)),
            "codes": ";".join(col["outcome"][i] for i in at),
            "horizons": ";".join(str(int(col["horizon_months"][i])) for i in at),
            "transforms": ";".join(transform[i] for i in at),
            "se_methods": ";".join(methods),
            "flag_derived_se": bool(set(methods) & set(DERIVED_SE_METHODS)),
            "se_upper_bound_only": all(upper[i] for i in at) if upper is not None else False,
        }
    return by_cell


def plan_order(plan: Plan):
    """A sort key ``key(outcome_key, period=None)`` in the plan's order: outcomes and periods as ``plan.outcomes``
    and ``plan.periods`` list them (werk first), those it does not list after them by code. The order in which the
    report shows its figures and per-outcome tables (forest plots, specification curves, component models)."""
    outcome = {o: i for i, o in enumerate(plan.outcomes or ())}
    period = {p: i for i, p in enumerate(plan.periods or ())}

    def key(outcome_key, period_key=None):
        return (outcome.get(outcome_key, len(outcome)), str(outcome_key), period.get(period_key, len(period)),
                "" if period_key is None else str(period_key))

    return key


def cell_order(frame: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """``frame`` (with cell columns) as the ministry reads it: arm class, then outcome (both in plan order), horizon."""
    cls = {c: i for i, c in enumerate(plan.arm_classes)}
    out = {o: i for i, o in enumerate(plan.outcomes)}
    rest = [c for c in CELL_COLUMNS if c not in ("arm_class", "outcome_key") and c in frame]  # horizon (or period)
    # the sort keys alone (not every column of the frame) are sorted; the frame is taken in that order once
    key = pd.DataFrame({"_c": [cls.get(c, len(cls)) for c in frame["arm_class"].tolist()],
                        "_o": [out.get(o, len(out)) for o in frame["outcome_key"].tolist()],
                        "outcome_key": frame["outcome_key"].to_numpy(), **{c: frame[c].to_numpy() for c in rest}})
    return frame.take(sort_order(key, ["_c", "_o", "outcome_key", *rest]))  # as sort_values(kind="mergesort")


def side_by_side(studies: pd.DataFrame, municipalities: pd.DataFrame, level: float = 95.0,
                 lang: str = "en") -> pd.DataFrame:
    """Every municipality's harmonised estimate per outcome, horizon and arm class, side by side.

    A cell reads ``-10.0* [-19.1, -0.9] (marks)`` (``lang="nl"``: ``-10,0* [-19,1; -0,9] (tekens)``): yi with
    the mark as printed, its Wald interval from sei, and the SE method when the SE was not printed. Pending
    municipalities read ``pending``; a transcribed municipality without a number reads ``—``.
    """
    short = {"en": {"from_p": "p", "from_shares_binomial": "shares", "from_shares_binomial_and_marks": "shares",
                    "from_significance_marks": "marks", RANGE_BOUND: "range bound"},
             "nl": {"from_p": "p", "from_shares_binomial": "aandelen", "from_shares_binomial_and_marks": "aandelen",
                    "from_significance_marks": "tekens", RANGE_BOUND: "bereikgrens"}}[lang]
    muni = list(municipalities["municipality"])
    status = dict(zip(municipalities["municipality"], municipalities["status"]))
    cols = list(CELL_COLUMNS)
    if len(studies) == 0:
        return pd.DataFrame(columns=[*CELL_COLUMNS, *muni])
    # every study's text at once (vectorised), then one dict per cell: no mask or iterrows per row
    d = np.where(studies["unit_h"].to_numpy() == "percentage_points", 1, 2)
    yi = studies["yi"].to_numpy(float)
    lo, hi = study_intervals(studies, level)
    tags = [short.get(m, "") for m in studies["se_method"]]
    # a difference derived from two printed levels carries no mark of its own (a printed mark belongs to a level)
    derived = (studies["comparator_row"].notna().to_numpy() if "comparator_row" in studies
               else np.zeros(len(studies), dtype=bool))
    marks = ["" if x else m for x, m in zip(derived, studies["significance"])]
    texts = [f"{fmt_num(y, k, lang)}{mark} {fmt_interval(a, b, k, lang)}" + (f" ({tag})" if tag else "")
             for y, mark, a, b, k, tag in zip(yi, marks, lo, hi, d, tags)]
    cells: dict = {}
    for key, m, text in zip(studies[cols].itertuples(index=False, name=None), studies["municipality"], texts):
        cells.setdefault(key, {}).setdefault(m, []).append(text)
    keys = studies[cols].drop_duplicates().sort_values(cols, kind="mergesort")
    rows = []
    for key in keys.itertuples(index=False, name=None):
        found = cells[key]
        row = dict(zip(cols, key))
        for m in muni:
            row[m] = "pending" if status[m] == "pending" else ("; ".join(found[m]) if m in found else "—")
        rows.append(row)
    return pd.DataFrame(rows, columns=[*CELL_COLUMNS, *muni])


def coverage(harmonised: pd.DataFrame, studies: pd.DataFrame, municipalities: pd.DataFrame, arms: pd.DataFrame,
             outcomes: pd.DataFrame, plan: Plan, periods=None, not_reported: pd.DataFrame | None = None) -> pd.DataFrame:
    """Coverage matrix: municipality × arm class × outcome × period with a status each.

    Periods are the plan's horizons at the strict level (``m16``) and, at the concept level, ``periods``: a tuple
    for every concept, or {concept: its periods} (those in which the register maps it). A ``not_reported`` row of
    the harmonisation register puts its reason in ``where``.

    Status: ``transcribed`` (a study row with a printed or exactly derived SE),
    ``derived-SE`` (SE reconstructed from marks or shares), ``printed-no-SE`` (the report prints the
    arm-vs-control estimate, but no standard error can be derived from what it prints, :data:`NO_SE_REASONS`:
    ``where`` names the lines and the reason), ``not reported`` (the municipality has that arm but its report
    prints no usable number for the cell), ``pending`` (no transcription yet: ``where`` says where the numbers
    live), ``not applicable`` (the municipality had no arm of that class).
    """
    status = dict(zip(municipalities["municipality"], municipalities["status"]))
    where = dict(zip(municipalities["municipality"], municipalities["pending_where"]))
    classes_of = arms.groupby("municipality")["arm_class"].apply(set).to_dict()
    by_cell: dict = {}
    used = ["municipality", "arm_class", "outcome_key", "period", "se_method", "source_file", "source_line"]
    for r in studies[used].itertuples(index=False):  # the columns read below only (each cell is a Python object)
        by_cell.setdefault((r.municipality, r.arm_class, r.outcome_key, r.period), []).append(r)
    if plan.outcome_level == "strict" or periods is None:
        periods = tuple(strict_period(h) for h in plan.horizons)
    periods_of = periods if isinstance(periods, dict) else {o: periods for o in plan.outcomes}
    missing = {} if not_reported is None else {
        (r["municipality"], r["concept"], r["period"]): f"{r['reason']} ({r['source_lines']})"
        for r in not_reported.to_dict("records")}
    printed = _printed_without_se(harmonised, plan)
    rows = []
    for m in municipalities["municipality"]:
        for arm_class in plan.arm_classes:
            for outcome in plan.outcomes:
                for horizon in periods_of.get(outcome, ()):
                    s = by_cell.get((m, arm_class, outcome, horizon), [])
                    if arm_class not in classes_of.get(m, set()):
                        st, note = "not applicable", "no arm of this class"
                    elif status[m] == "pending":
                        st, note = "pending", where[m]
                    elif s:
                        derived = any(r.se_method in DERIVED_SE_METHODS for r in s)
                        st = "derived-SE" if derived else "transcribed"
                        note = ";".join(f"{r.source_file}:{r.source_line}" for r in s)
                    elif (m, arm_class, outcome, horizon) in printed:
                        st, note = "printed-no-SE", printed[(m, arm_class, outcome, horizon)]
                    else:
                        st, note = "not reported", missing.get((m, outcome, horizon),
                                                               "no usable number in the transcribed report")
                    rows.append({"municipality": m, "arm_class": arm_class, "outcome_key": outcome,
                                 "period": horizon, "status": st, "where": note})
    return pd.DataFrame(rows)


#: Exclusion reasons (start of ``harmonise``'s text) of a printed arm-vs-control estimate without a usable SE.
NO_SE_REASONS = ("no standard error can be derived", "standard error contradicts the printed mark")


def _printed_without_se(harmonised: pd.DataFrame, plan: Plan) -> dict:
    """{(municipality, arm class, outcome key, period): 'file:line; … (reason)'} for cells whose municipality prints
    an arm-vs-control estimate (at the concept level: under the cell's primary mapping) whose SE cannot be derived
    (:data:`NO_SE_REASONS`)."""
    h = harmonised
    if len(h) == 0:
        return {}
    no_se = h["reason"].astype(str).str.startswith(NO_SE_REASONS) & (h["effective_comparator"] == "control")
    if plan.outcome_level == "concept" and "concept" in h:
        no_se &= h["harmonisation_role"].astype(str) == "primary"
        keys = zip(h["municipality"], h["arm_class"], h["concept"], h["period_concept"])
    else:
        keys = zip(h["municipality"], h["arm_class"], h["outcome"], h["horizon_months"].map(strict_period))
    found: dict = {}
    for key, ok, f, line, reason in zip(keys, no_se, h["source_file"], h["source_line"], h["reason"]):
        if ok:
            found.setdefault(key, []).append((f"{f}:{line}", str(reason).split(":")[0]))
    return {k: "; ".join(dict.fromkeys(w for w, _ in v)) + f" ({v[0][1]})" for k, v in found.items()}


def coverage_matrix(cov: pd.DataFrame) -> pd.DataFrame:
    """Wide view of :func:`coverage`: rows outcome × period, columns municipality/arm class."""
    wide = cov.assign(col=cov["municipality"] + " / " + cov["arm_class"]).pivot_table(
        index=["outcome_key", "period"], columns="col", values="status", aggfunc="first", sort=False)
    return wide.reset_index()


#: One character per coverage status in the compact console view (:func:`coverage_text`).
COVERAGE_SYMBOLS = {"transcribed": "T", "derived-SE": "D", "printed-no-SE": "s", "not reported": ".",
                    "pending": "p", "not applicable": "-"}


def coverage_text(cov: pd.DataFrame) -> str:
    """Compact coverage matrix for a console (about 90 columns for the six municipalities).

    One row per outcome × period, one column per municipality, one character per arm class in that column
    (:data:`COVERAGE_SYMBOLS`), with a legend above the table. ``meta coverage --wide`` prints the full names.
    """
    classes = list(dict.fromkeys(cov["arm_class"]))
    letters = _arm_class_letters(classes)
    munis = list(dict.fromkeys(cov["municipality"]))
    status = {(r.municipality, r.arm_class, r.outcome_key, r.period): r.status
              for r in cov.itertuples(index=False)}
    rows = list(dict.fromkeys(zip(cov["outcome_key"], cov["period"])))
    w_out = max([len("outcome"), *(len(str(o)) for o, _ in rows)])
    w_per = max([len("period"), *(len(str(h)) for _, h in rows)])
    widths = [max(len(m), len(classes)) for m in munis]
    lines = [
        "arm classes in each column: " + ", ".join(f"{letters[c]} {c}" for c in classes),
        "status: " + ", ".join(f"{sym} {name}" for name, sym in COVERAGE_SYMBOLS.items()),
        "",
        f"{'outcome':<{w_out}} {'period':>{w_per}}  " + " ".join(f"{m:<{w}}" for m, w in zip(munis, widths)),
        f"{'':<{w_out}} {'':>{w_per}}  " + " ".join(f"{''.join(letters[c] for c in classes):<{w}}" for w in widths),
    ]
    for outcome, horizon in rows:
        cells = ["".join(COVERAGE_SYMBOLS.get(status.get((m, c, outcome, horizon), ""), "?") for c in classes)
                 for m in munis]
        lines.append(f"{outcome:<{w_out}} {horizon:>{w_per}}  " + " ".join(f"{x:<{w}}" for x, w in zip(cells, widths)))
    return "\n".join(line.rstrip() for line in lines)


def _arm_class_letters(classes: list[str]) -> dict[str, str]:
    """A distinct capital letter per arm class: its first letter, or the first letter not yet taken."""
    taken: dict[str, str] = {}
    for c in classes:
        letter = next((ch.upper() for ch in c if ch.isalpha() and ch.upper() not in taken.values()), "?")
        taken[c] = letter
    return taken


def round_for_output(frame: pd.DataFrame, digits: int = 12) -> pd.DataFrame:
    """Round float columns so written tables are byte-identical across runs and platforms.

    ``DataFrame.round`` rounds each block of numbers at once with numpy's ``round`` (the same values as ``np.round``
    per float column; integers stay as they are, texts and flags untouched), instead of setting every float column
    of a copy one by one (80 columns of the pooled table: ~9 ms against 0.4 ms)."""
    return frame.round(digits)

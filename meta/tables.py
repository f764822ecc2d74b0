"""Tables for analysts: pooled rows, the side-by-side table and the coverage matrix (stage 5).

Pure functions on DataFrames; writing happens in :mod:`meta.pipeline`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.special import ndtri

from meta.load import Plan
from meta.selection import CELL_COLUMNS

#: SE methods that rest on assumptions beyond the printed numbers; pooled rows using them are flagged.
DERIVED_SE_METHODS = ("from_significance_marks", "from_shares_binomial", "from_shares_binomial_and_marks")

POOLED_COLUMNS = (
    "outcome_key", "outcome_label", "horizon_months", "arm_class", "unit_h", "k", "municipalities", "arms",
    "estimate", "se", "ci_low", "ci_high", "pval", "pi_low", "pi_high",
    "tau2", "tau2_ci_low", "tau2_ci_high", "I2", "I2_ci_low", "I2_ci_high", "H2", "H2_ci_low", "H2_ci_high",
    "I2_Q", "Q", "Q_df", "Q_p", "method", "test", "level", "df",
    "se_methods", "flag_derived_se", "single_study", "converged", "note",
)


def pooled_table(pooled: pd.DataFrame, studies: pd.DataFrame, outcomes: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Annotate the engine's per-cell output with who went in and how their SEs were obtained."""
    if len(pooled) == 0:
        return pd.DataFrame(columns=POOLED_COLUMNS)
    label = dict(zip(outcomes["outcome"], outcomes["label_en"]))
    concept_label = {c: c.replace("_", " ") for c in outcomes["concept"]}
    # one pass over the studies per cell (groupby), not a boolean mask over all studies per pooled row
    by_cell = {}
    for key, s in studies.groupby(list(CELL_COLUMNS), sort=False, dropna=False):
        methods = sorted(set(s["se_method"]))
        by_cell[tuple(str(v) for v in key)] = {
            "municipalities": ";".join(s["municipality"]),
            "arms": ";".join(f"{m}:{a}" for m, a in zip(s["municipality"], s["arm"])),
            "se_methods": ";".join(methods),
            "flag_derived_se": bool(set(methods) & set(DERIVED_SE_METHODS)),
        }
    empty = {"municipalities": "", "arms": "", "se_methods": "", "flag_derived_se": False}
    rows = []
    for cell in pooled.to_dict("records"):
        extra = {
            "outcome_label": label.get(cell["outcome_key"], concept_label.get(cell["outcome_key"], cell["outcome_key"])),
            **by_cell.get(tuple(str(cell[c]) for c in CELL_COLUMNS), empty),
            "note": ("single study: not pooled, shown as reported" if bool(cell["single_study"]) else "")
            + ("" if bool(cell["converged"]) else "; estimator did not converge"),
        }
        rows.append({**cell, **extra})
    table = pd.DataFrame(rows)
    return table[list(POOLED_COLUMNS)].sort_values(list(CELL_COLUMNS), kind="mergesort").reset_index(drop=True)


def fmt_number(x, digits: int = 1, missing: str = "—") -> str:
    """A number with ``digits`` decimals for tables, figures and the report; ``missing`` for None or NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return missing
    return f"{x:.{digits}f}"


def side_by_side(studies: pd.DataFrame, municipalities: pd.DataFrame, level: float = 95.0) -> pd.DataFrame:
    """Every municipality's harmonised estimate per outcome, horizon and arm class, side by side.

    A cell reads ``-10.0 [-19.1, -0.9] (marks)``: yi and its Wald interval from sei,
    and the SE method when the SE was not printed. Pending municipalities read
    ``pending``; a transcribed municipality without a number reads ``—``.
    """
    z = float(ndtri(0.5 + level / 200))  # normal quantile
    short = {"reported_se": "", "from_ci": "", "from_p": "p", "from_shares_binomial": "shares",
             "from_shares_binomial_and_marks": "shares", "from_significance_marks": "marks"}
    muni = list(municipalities["municipality"])
    status = dict(zip(municipalities["municipality"], municipalities["status"]))
    cols = list(CELL_COLUMNS)
    if len(studies) == 0:
        return pd.DataFrame(columns=[*CELL_COLUMNS, *muni])
    # every study's text at once (vectorised), then one dict per cell: no mask or iterrows per row
    d = np.where(studies["unit_h"].to_numpy() == "percentage_points", 1, 2)
    yi, sei = studies["yi"].to_numpy(float), studies["sei"].to_numpy(float)
    lo, hi = yi - z * sei, yi + z * sei
    tags = [short.get(m, m) for m in studies["se_method"]]
    texts = [f"{fmt_number(y, k)}{mark} [{fmt_number(a, k)}, {fmt_number(b, k)}]" + (f" ({tag})" if tag else "")
             for y, mark, a, b, k, tag in zip(yi, studies["significance"], lo, hi, d, tags)]
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
             outcomes: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Coverage matrix: municipality × arm class × outcome × horizon with a status each.

    Status: ``transcribed`` (a study row with a printed or exactly derived SE),
    ``derived-SE`` (SE reconstructed from marks or shares), ``not reported``
    (the municipality has that arm but its report prints no usable number for the
    cell), ``pending`` (no transcription yet: ``where`` says where the numbers live),
    ``not applicable`` (the municipality had no arm of that class).
    """
    status = dict(zip(municipalities["municipality"], municipalities["status"]))
    where = dict(zip(municipalities["municipality"], municipalities["pending_where"]))
    classes_of = arms.groupby("municipality")["arm_class"].apply(set).to_dict()
    by_cell: dict = {}
    for r in studies.itertuples(index=False):
        by_cell.setdefault((r.municipality, r.arm_class, r.outcome_key, int(r.horizon_months)), []).append(r)
    rows = []
    for m in municipalities["municipality"]:
        for arm_class in plan.arm_classes:
            for outcome in plan.outcomes:
                for horizon in plan.horizons:
                    s = by_cell.get((m, arm_class, outcome, int(horizon)), [])
                    if arm_class not in classes_of.get(m, set()):
                        st, note = "not applicable", "no arm of this class"
                    elif status[m] == "pending":
                        st, note = "pending", where[m]
                    elif s:
                        derived = any(r.se_method in DERIVED_SE_METHODS for r in s)
                        st = "derived-SE" if derived else "transcribed"
                        note = ";".join(f"{r.source_file}:{r.source_line}" for r in s)
                    else:
                        st, note = "not reported", "no usable number in the transcribed report"
                    rows.append({"municipality": m, "arm_class": arm_class, "outcome_key": outcome,
                                 "horizon_months": horizon, "status": st, "where": note})
    return pd.DataFrame(rows)


def coverage_matrix(cov: pd.DataFrame) -> pd.DataFrame:
    """Wide view of :func:`coverage`: rows outcome × horizon, columns municipality/arm class."""
    wide = cov.assign(col=cov["municipality"] + " / " + cov["arm_class"]).pivot_table(
        index=["outcome_key", "horizon_months"], columns="col", values="status", aggfunc="first", sort=False)
    return wide.reset_index()


#: One character per coverage status in the compact console view (:func:`coverage_text`).
COVERAGE_SYMBOLS = {"transcribed": "T", "derived-SE": "D", "not reported": ".", "pending": "p",
                    "not applicable": "-"}


def coverage_text(cov: pd.DataFrame) -> str:
    """Compact coverage matrix for a console (about 90 columns for the six municipalities).

    One row per outcome × horizon, one column per municipality, one character per arm class in that column
    (:data:`COVERAGE_SYMBOLS`), with a legend above the table. ``meta coverage --wide`` prints the full names.
    """
    classes = list(dict.fromkeys(cov["arm_class"]))
    letters = _arm_class_letters(classes)
    munis = list(dict.fromkeys(cov["municipality"]))
    status = {(r.municipality, r.arm_class, r.outcome_key, r.horizon_months): r.status
              for r in cov.itertuples(index=False)}
    rows = list(dict.fromkeys(zip(cov["outcome_key"], cov["horizon_months"])))
    w_out = max([len("outcome"), *(len(str(o)) for o, _ in rows)])
    widths = [max(len(m), len(classes)) for m in munis]
    lines = [
        "arm classes in each column: " + ", ".join(f"{letters[c]} {c}" for c in classes),
        "status: " + ", ".join(f"{sym} {name}" for name, sym in COVERAGE_SYMBOLS.items()),
        "",
        f"{'outcome':<{w_out}} {'months':>6}  " + " ".join(f"{m:<{w}}" for m, w in zip(munis, widths)),
        f"{'':<{w_out}} {'':>6}  " + " ".join(f"{''.join(letters[c] for c in classes):<{w}}" for w in widths),
    ]
    for outcome, horizon in rows:
        cells = ["".join(COVERAGE_SYMBOLS.get(status.get((m, c, outcome, horizon), ""), "?") for c in classes)
                 for m in munis]
        lines.append(f"{outcome:<{w_out}} {horizon:>6}  " + " ".join(f"{x:<{w}}" for x, w in zip(cells, widths)))
    return "\n".join(line.rstrip() for line in lines)


def _arm_class_letters(classes: list[str]) -> dict[str, str]:
    """A distinct capital letter per arm class: its first letter, or the first letter not yet taken."""
    taken: dict[str, str] = {}
    for c in classes:
        letter = next((ch.upper() for ch in c if ch.isalpha() and ch.upper() not in taken.values()), "?")
        taken[c] = letter
    return taken


def round_for_output(frame: pd.DataFrame, digits: int = 12) -> pd.DataFrame:
    """Round float columns so written tables are byte-identical across runs and platforms."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype.kind == "f":
            out[col] = np.round(out[col].to_numpy(), digits)
    return out

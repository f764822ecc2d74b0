"""Templates for the pending cells of a municipality, and a check of a filled-in template.

``meta template --municipality NAME`` writes the rows an analyst fills from that
municipality's report; ``meta check FILE`` validates them on their own and says
what is still empty. Pure functions; the CLI does the I/O.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from meta import load
from meta.load import InputError, Inputs, Plan

#: Cells every row needs before it can be appended to inputs/estimates.csv.
REQUIRED_TO_FILL = ("estimate", "unit", "printed", "source_file", "source_table", "source_line")
FILL_NOTE = ("TO FILL from the report: estimate and unit as printed (proportion, percent or percentage_points), "
             "the printed token, file, table and line; se or ci_low/ci_high/ci_level or p_value where printed; "
             "the significance mark as printed (add the table's legend to significance_legends.csv); "
             "n_arm/n_control or n_table where printed; model/population if not the LOEP model on all participants")


def core_outcomes(inputs: Inputs, plan: Plan) -> list[str]:
    """The plan's outcomes measured in the registers (the LOEP core outcomes)."""
    registers = set(inputs.outcomes.loc[inputs.outcomes["data_source"] == "registers", "outcome"])
    return [o for o in plan.outcomes if o in registers]


def template_rows(inputs: Inputs, plan: Plan, municipality: str) -> pd.DataFrame:
    """Every arm × core outcome × horizon of the plan, for a pending municipality, as empty estimates rows."""
    munis = inputs.municipalities.set_index("municipality")
    if municipality not in munis.index:
        raise InputError(f"--municipality {municipality!r}: unknown; use one of {', '.join(munis.index)}")
    if munis.loc[municipality, "status"] != "pending":
        raise InputError(f"--municipality {municipality!r}: already transcribed, no pending cells; "
                         "edit inputs/estimates.csv directly")
    arms = inputs.arms[(inputs.arms["municipality"] == municipality) & inputs.arms["randomised"]
                       & inputs.arms["arm_class"].isin(plan.arm_classes)]
    columns = list(pd.read_csv(inputs.files["estimates"], nrows=0).columns)
    rows = []
    for arm in arms["arm"]:
        for outcome in core_outcomes(inputs, plan):
            for horizon in plan.horizons:
                row = {c: "" for c in columns}
                row.update(municipality=municipality, arm=arm, comparator="control", outcome=outcome,
                           horizon_months=str(horizon), model=plan.model_preference[0] if plan.model_preference
                           else "loep", population="all", note=FILL_NOTE)
                rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def check_rows(path: Path, inputs: Inputs) -> tuple[pd.DataFrame, list[str]]:
    """Validate a filled template on its own against the registers.

    Returns (complete rows as validated by the loader, messages about what is still empty).
    Raises :class:`InputError` (file, row, column, fix) for a filled cell that is wrong.
    """
    frame = load.read_csv_strict(path, load.ESTIMATE_COLUMNS)
    empty = {}
    for r in frame.itertuples(index=False):
        missing = [c for c in REQUIRED_TO_FILL if getattr(r, c) == ""]
        if missing:
            empty[r.input_row] = missing
    messages = [f"{path}: row {row} (line {row + 1}): still empty: {', '.join(cols)}" for row, cols in empty.items()]
    complete = frame[~frame["input_row"].isin(list(empty))].drop(columns=["input_row"])
    if len(complete) == 0:
        return complete, messages
    # validate the complete rows with the real loader; the municipality is allowed to be 'pending' here
    munis = inputs.municipalities.copy()
    munis.loc[munis["municipality"].isin(set(complete["municipality"])), "status"] = "transcribed"
    tmp = Path(path).with_name(f".{Path(path).name}.complete.csv")
    try:
        complete.to_csv(tmp, index=False)
        try:
            valid = load.load_estimates(tmp, munis, inputs.arms, inputs.outcomes, inputs.legends)
        except InputError as exc:
            # report positions in the analyst's file, not in the temporary one
            rows = list(frame.loc[~frame["input_row"].isin(list(empty)), "input_row"])

            def original(m):
                orig = rows[int(m.group(1)) - 1]
                return f"row {orig} (line {orig + 1})"

            text = re.sub(r"row (\d+) \(line \d+\)", original, str(exc).replace(str(tmp), str(path)))
            raise InputError(text) from None
    finally:
        tmp.unlink(missing_ok=True)
    for r in valid.itertuples(index=False):
        has_se = not (math.isnan(r.se) and (math.isnan(r.ci_low) or math.isnan(r.ci_high)) and math.isnan(r.p_value)
                      and (math.isnan(r.share_arm) or math.isnan(r.share_control)))
        if not has_se:
            messages.append(f"{path}: {r.municipality} {r.arm} {r.outcome} {r.horizon_months} months: no SE, CI, "
                            "p-value or shares; the SE will be reconstructed from the significance mark "
                            f"{r.significance!r} (check that {r.source_table}'s legend is in significance_legends.csv)")
    return valid, messages

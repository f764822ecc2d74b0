"""The blank rows ``meta template`` writes for an analyst to fill from a municipality's report: one per arm ×
core outcome × horizon of the plan (with the columns of ``estimates.csv``), one for the report's description in
``sources.csv`` and one for the legends of its tables in ``significance_legends.csv``.
"""

from __future__ import annotations

import pandas as pd

from meta.errors import InputError
from meta.plan import Plan
from meta.read import schema
from meta.read.load import Inputs
from meta.template.text import column_names, file_style, read_text

#: Cells every row needs before it can be appended to inputs/estimates.csv.
REQUIRED_TO_FILL = ("estimate", "unit", "printed", "source_file", "source_table", "source_line")
FILL_NOTE = ("TO FILL from the report: estimate and unit as printed (proportion, percent or percentage_points), "
             "the printed token, file, table and line; se or ci_low/ci_high/ci_level or p_value where printed; "
             "the significance mark as printed (and the table's legend in the legends file meta template wrote); "
             "n_arm/n_control or n_table where printed; model/population if not the LOEP model on all participants; "
             "delete the row if the report does not print this cell (it stays 'not reported')")


def core_outcomes(inputs: Inputs, plan: Plan) -> list[str]:
    """The plan's outcomes measured in the registers (the LOEP core outcomes).

    At the concept level: the register outcome codes that ``harmonisation.csv`` maps (primary or sensitivity) onto
    the plan's concepts, in the order of ``outcomes.csv``.
    """
    registers = list(inputs.outcomes.loc[inputs.outcomes["data_source"] == "registers", "outcome"])
    if plan.outcome_level == "concept":
        h = inputs.harmonisation
        mapped = set(h.loc[h["role"].isin(("primary", "sensitivity")) & h["concept"].isin(plan.outcomes), "outcome"])
        return [o for o in registers if o in mapped]
    return [o for o in plan.outcomes if o in registers]


def template_horizons(inputs: Inputs, plan: Plan, outcome: str) -> list[int]:
    """The plan's horizons for ``outcome``; at the concept level only the months ``harmonisation.csv`` maps it at."""
    if plan.outcome_level != "concept":
        return list(plan.horizons)
    h = inputs.harmonisation
    mapped = h[(h["outcome"] == outcome) & h["role"].isin(("primary", "sensitivity")) & h["concept"].isin(plan.outcomes)]
    months = {int(x) for x in mapped["horizon_months"] if str(x) != ""}
    return [x for x in plan.horizons if x in months]


def template_rows(inputs: Inputs, plan: Plan, municipality: str) -> pd.DataFrame:
    """Every arm × core outcome × horizon of the plan, for a pending municipality, as empty estimates rows."""
    munis = inputs.municipalities.set_index("municipality")
    if municipality not in munis.index:
        raise InputError(f"--municipality {municipality!r}: unknown; use one of {', '.join(munis.index)}")
    if munis.loc[municipality, "status"] != "pending":
        raise InputError(f"--municipality {municipality!r}: already transcribed, no pending cells; to add rows, "
                         "write them in a CSV with the columns of inputs/estimates.csv and run meta check, then "
                         "meta add, on it")
    arms = inputs.arms[(inputs.arms["municipality"] == municipality) & inputs.arms["randomised"]
                       & inputs.arms["arm_class"].isin(plan.arm_classes)]
    text = read_text(inputs.files["estimates"])
    columns = column_names(text, file_style(text))  # as the file has them (any delimiter)
    rows = []
    for arm in arms["arm"]:
        for outcome in core_outcomes(inputs, plan):
            for horizon in template_horizons(inputs, plan, outcome):
                row = {c: "" for c in columns}
                row.update(municipality=municipality, arm=arm, comparator="control", outcome=outcome,
                           horizon_months=str(horizon), model=plan.model_preference[0] if plan.model_preference
                           else "loep", population="all", note=FILL_NOTE)
                rows.append(row)
    return pd.DataFrame(rows, columns=columns)
#: Cells every sources.csv row needs before it can be added (the label, and the fields a citation names).
SOURCE_REQUIRED_TO_FILL = ("source_file", "label_nl", "label_en", "title")
SOURCE_FILL_NOTE = ("TO FILL from the report's title page, copying each field as printed and the line(s) of the "
                    "text file where it is printed (<field>_line); leave a field blank when the report does not "
                    "print it; source_file is the file name the rows cite")


def source_template_rows() -> pd.DataFrame:
    """One empty ``sources.csv`` row to describe the report the new rows come from."""
    row = {c: "" for c in schema.SOURCES.required}
    row["note"] = SOURCE_FILL_NOTE
    return pd.DataFrame([row], columns=list(schema.SOURCES.required))
#: Cells every significance_legends.csv row needs (the mark itself may be blank: 'no mark').
LEGEND_REQUIRED_TO_FILL = ("source_file", "source_table", "legend_line", "legend_text")


def legend_template_rows() -> pd.DataFrame:
    """One empty ``significance_legends.csv`` row: for the legend of each table whose marks the rows copy
    (one row per mark; a file whose rows are all blank adds nothing)."""
    return pd.DataFrame([dict.fromkeys(schema.LEGENDS.required, "")], columns=list(schema.LEGENDS.required))


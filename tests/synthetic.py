"""SYNTHETIC inputs for tests only: invented numbers for all six municipalities.

Never used by the default run. The registers are the real ones, with every municipality set to 'transcribed'
and the estimates replaced by made-up rows whose ``note`` says SYNTHETIC.
"""
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import REPO
from meta import api
from meta.plan import load_plan

S = dict(dtype=str, keep_default_na=False)
ARMS = {  # municipality -> (exemption arm, intensive arm) codes in arms.csv
    "groningen": ("exemption", "intensive"), "nijmegen": ("exemption_release", "intensive_release"),
    "tilburg": ("exemption", "intensive"), "utrecht": ("exemption", "intensive"),
    "deventer": ("exemption", "intensive"), "wageningen": ("exemption", "intensive"),
}


def make_synthetic_inputs(folder: Path, seed: int = 11) -> Path:
    """Write a complete SYNTHETIC inputs folder and return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("arms.csv", "outcomes.csv", "significance_legends.csv", "periods.csv", "concepts.csv",
                 "harmonisation.csv"):
        shutil.copy(REPO / "inputs" / name, folder / name)
    # the real plan, with the preferences the synthetic rows have (a preference nobody reports is refused); the
    # SYNTHETIC rows share codes across municipalities: pooled at the strict level (exact code and month)
    plan = (REPO / "inputs" / "plan.toml").read_text(encoding="utf-8")
    plan = re.sub(r'(?m)^model_preference = .*$', 'model_preference = ["loep"]', plan)
    plan = re.sub(r'(?m)^population_preference = .*$', 'population_preference = ["all"]', plan)
    plan = re.sub(r'(?m)^outcome_level = .*$', 'outcome_level = "strict"', plan)
    plan = re.sub(r'(?ms)^outcomes = \[.*?\]$', 'outcomes = ["income_gt70_wml", "hours_gt12"]', plan)
    (folder / "plan.toml").write_text(plan, encoding="utf-8")
    munis = pd.read_csv(REPO / "inputs" / "municipalities.csv", **S)
    munis["status"] = "transcribed"
    munis["note"] = "SYNTHETIC test register"
    munis.to_csv(folder / "municipalities.csv", index=False)
    rng = np.random.default_rng(seed)
    rows = []
    template = pd.read_csv(REPO / "inputs" / "estimates.csv", **S).iloc[0].to_dict()
    for muni, arms in ARMS.items():
        for arm in arms:
            for outcome, horizon in (("income_gt70_wml", 16), ("hours_gt12", 16), ("income_gt70_wml", 24)):
                est = round(float(rng.normal(-0.03, 0.04)), 3)
                se = round(float(rng.uniform(0.02, 0.06)), 3)
                row = {k: "" for k in template}
                row.update(municipality=muni, arm=arm, comparator="control", outcome=outcome,
                           horizon_months=str(horizon), model="loep", population="all", estimate=f"{est}",
                           unit="proportion", se=f"{se}", printed=f"{est}", source_file="SYNTHETIC",
                           source_table="SYNTHETIC", source_line="1", note="SYNTHETIC: invented for tests")
                rows.append(row)
    # one row whose SE must come from a significance mark, and one excluded (between-arm contrast)
    row = dict(rows[0], estimate="-0.11", se="", significance="*", printed="-0,11*", source_file="002_7413e549cc2fe340.txt",
               source_table="Tabel 3", horizon_months="24", outcome="hours_gt12", municipality="nijmegen",
               arm="exemption_release", n_table="364")
    rows.append(row)
    rows.append(dict(rows[0], arm="intensive", comparator="exemption", estimate="0.01", se="0.03", printed="0.01"))
    pd.DataFrame(rows, columns=list(template)).to_csv(folder / "estimates.csv", index=False)
    return folder


def run_with_synthetic_second_municipality(folder: Path, label: str = "SYNTHETIC (test)"):
    """The real inputs plus two SYNTHETIC Wageningen rows for 'hours > 12 h/week' at 16 months, run in memory.

    The rows share Nijmegen's outcome code and month, so at the strict level (exact code and month) exactly two
    cells pool (k = 2): the few-studies headline, diamonds and component notes are then exercised on real inputs.
    Returns ``api.run(...)`` without figures; nothing is written outside ``folder``.
    """
    import csv
    from dataclasses import replace

    from meta.read import load

    from meta.analyses import pipeline

    inputs = Path(folder) / "inputs"
    shutil.copytree(REPO / "inputs", inputs)
    _append_rows(inputs / "estimates.csv", [dict(
        municipality="wageningen", arm=arm, comparator="control", outcome="hours_gt12", horizon_months="16",
        model="loep", population="all", estimate=est, unit="proportion", se="0.06", printed=est,
        source_file="SYNTHETIC", source_table="SYNTHETIC", source_line="1", note=label)
        for arm, est in (("exemption", "0.08"), ("intensive", "-0.02"))], csv)
    _append_rows(inputs / "sources.csv", [dict(
        source_file="SYNTHETIC", label_nl="SYNTHETISCHE bron", label_en="SYNTHETIC source",
        title="[SYNTHETIC rows invented for a test]", note="SYNTHETIC: no document")], csv)
    plan = replace(load_plan(inputs / "plan.toml"), outcome_level="strict",
                   outcomes=("income_gt70_wml", "hours_gt12", "exit_to_work_fulltime"))
    return api.run(plan=plan, inputs=inputs, figures=False)


def _append_rows(path: Path, rows: list[dict], csv) -> None:
    """Append ``rows`` (missing columns blank) to the comma-separated file ``path``."""
    with open(path, encoding="utf-8") as f:
        cols = next(csv.reader(f))
    with open(path, "a", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, cols, lineterminator="\n")
        for row in rows:
            w.writerow({**{c: "" for c in cols}, **row})

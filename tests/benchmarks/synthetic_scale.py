"""SYNTHETIC inputs of any size for the scaling benchmark (never written into inputs/).

``make_scaled_inputs(folder, n)`` writes a complete inputs folder with ``n`` invented municipalities
(``synthetic_001`` …, named "SYNTHETIC 001" …), each with a control group and an exemption and an intensive arm, and
one estimate per arm × plan outcome × plan horizon: the complete table the mission asks for, ``n`` times over. The
registers of outcomes and significance legends and the plan are the repository's; every invented row says SYNTHETIC
in its note. Numbers are drawn from ``numpy.random.default_rng(seed)``: shares as proportions
(estimate ~ N(−0.02, 0.03²) + municipality effect, SE ~ U(0.015, 0.05)), survey scales in their unit
(estimate ~ N(0.05, 0.15²), SE ~ U(0.08, 0.3)); one row in 20 gives its SE as a 95% interval instead.
"""
from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
S = dict(dtype=str, keep_default_na=False)


def municipality_codes(n: int) -> list[str]:
    return [f"synthetic_{i:03d}" for i in range(1, n + 1)]


def make_scaled_inputs(folder: Path, n: int, seed: int = 20261201, outcomes=None, horizons=None) -> Path:
    """Write a SYNTHETIC inputs folder with ``n`` municipalities into ``folder`` and return it.

    ``outcomes`` / ``horizons`` restrict the plan (and the rows) for cheap tests; default all of the plan's."""
    folder = Path(folder)
    if folder.resolve() == (REPO / "inputs").resolve():
        raise ValueError("synthetic inputs are never written into inputs/")
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("outcomes.csv", "significance_legends.csv", "periods.csv", "concepts.csv"):
        shutil.copy(REPO / "inputs" / name, folder / name)
    text = (REPO / "inputs" / "plan.toml").read_text(encoding="utf-8")
    plan = tomllib.loads(text)
    # the plan's choices that SYNTHETIC rows have (the plan refuses values that match no row); the invented rows
    # share outcome codes across municipalities, so they are pooled at the strict level (exact code and month):
    # the outcome codes the plan's concepts are made of
    register = pd.read_csv(REPO / "inputs" / "harmonisation.csv", dtype=str, keep_default_na=False)
    codes_of_plan = list(dict.fromkeys(register.loc[register["concept"].isin(plan["outcomes"])
                                                    & (register["role"] == "primary"), "outcome"]))
    plan["outcomes"] = codes_of_plan
    chosen = {"arm_classes": [c for c in plan["arm_classes"] if c in ("exemption", "intensive")],
              "model_preference": ["loep"], "population_preference": ["all"], "outcome_level": "strict",
              "outcomes": codes_of_plan}
    if outcomes is not None:
        chosen["outcomes"] = plan["outcomes"] = list(outcomes)
    if horizons is not None:
        chosen["horizons"] = plan["horizons"] = list(horizons)
    lines, skipping = [], False
    for ln in text.splitlines():
        if skipping:  # the rest of a replaced multi-line array
            skipping = "]" not in ln
            continue
        key = next((k for k in chosen if ln.startswith(f"{k} ") or ln.startswith(f"{k}=")), None)
        if key is None:
            lines.append(ln)
            continue
        lines.append(f"{key} = {chosen[key]!r}".replace("'", '"'))
        skipping = "[" in ln and "]" not in ln
    (folder / "plan.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rng = np.random.default_rng(seed)
    codes = municipality_codes(n)
    # the concept register names real municipalities only; the SYNTHETIC run is strict, so one placeholder row
    pd.DataFrame([dict(municipality=codes[0], outcome="", horizon_months="", concept="werk", period="einde_experiment",
                       transform="", role="not_reported", reason="SYNTHETIC: the benchmark pools at the strict level",
                       source_lines="002:1")]).to_csv(folder / "harmonisation.csv", index=False)

    real_m = pd.read_csv(REPO / "inputs" / "municipalities.csv", **S)
    m_rows = []
    for i, code in enumerate(codes, start=1):
        row = {c: "" for c in real_m.columns}
        row.update(municipality=code, name=f"SYNTHETIC {i:03d}", status="transcribed", n_randomised_total="900",
                   n_control="300", source_documents="SYNTHETIC", note="SYNTHETIC: invented for the benchmark")
        m_rows.append(row)
    pd.DataFrame(m_rows, columns=real_m.columns).to_csv(folder / "municipalities.csv", index=False)

    real_a = pd.read_csv(REPO / "inputs" / "arms.csv", **S)
    components = ("exemption", "intensive", "release", "fulltime_bonus", "free_choice", "control")
    arm_spec = {"control": ("control", "control"), "exemption": ("exemption", "exemption"),
                "intensive": ("intensive", "intensive")}
    a_rows = []
    for code in codes:
        for arm, (component, arm_class) in arm_spec.items():
            row = {c: "" for c in real_a.columns}
            row.update(municipality=code, arm=arm, name_nl=f"SYNTHETIC {arm}", name_en=f"SYNTHETIC {arm}",
                       randomised="true", arm_class=arm_class, n_randomised="300", n_source="SYNTHETIC",
                       verified="false", source="SYNTHETIC", note="SYNTHETIC: invented for the benchmark")
            row.update({c: ("1" if c == component else "0") for c in components if c in real_a.columns})
            a_rows.append(row)
    pd.DataFrame(a_rows, columns=real_a.columns).to_csv(folder / "arms.csv", index=False)

    outcomes = pd.read_csv(REPO / "inputs" / "outcomes.csv", **S).set_index("outcome")
    template = pd.read_csv(REPO / "inputs" / "estimates.csv", **S).columns
    e_rows = []
    line = 0
    for code in codes:
        shift = rng.normal(0.0, 0.01)  # the municipality's own effect on shares
        for arm in ("exemption", "intensive"):
            for outcome in plan["outcomes"]:
                unit = outcomes.loc[outcome, "unit"]
                for horizon in plan["horizons"]:
                    line += 1
                    if unit == "percentage_points":
                        est, se, unit_in, fmt = rng.normal(-0.02, 0.03) + shift, rng.uniform(0.015, 0.05), "proportion", 3
                    else:
                        est, se, unit_in, fmt = rng.normal(0.05, 0.15), rng.uniform(0.08, 0.3), unit, 2
                    est = round(float(est), fmt)
                    row = dict.fromkeys(template, "")
                    row.update(municipality=code, arm=arm, comparator="control", outcome=outcome,
                               horizon_months=str(horizon), model="loep", population="all", estimate=f"{est}",
                               unit=unit_in, printed=f"{est}", source_file="SYNTHETIC", source_table="SYNTHETIC",
                               source_line=str(line), note="SYNTHETIC: invented for the benchmark")
                    if line % 20 == 0:
                        lo, hi = round(est - 1.96 * se, fmt + 1), round(est + 1.96 * se, fmt + 1)
                        row.update(ci_low=f"{lo}", ci_high=f"{hi}", ci_level="95")
                    else:
                        row.update(se=f"{round(float(se), fmt + 1)}")
                    e_rows.append(row)
    pd.DataFrame(e_rows, columns=template).to_csv(folder / "estimates.csv", index=False)
    return folder


def allow_municipalities(codes: list[str]) -> None:
    """Let this process's loader accept the SYNTHETIC codes while ``meta.read.load`` still hard-codes the six
    municipalities (issue 15 item 6 removes that list; then this does nothing)."""
    from meta.read import load

    if hasattr(load, "MUNICIPALITIES"):
        load.MUNICIPALITIES = tuple(codes)

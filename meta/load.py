"""Load and validate the registers, the transcription and the plan (stage 1).

Everything in ``inputs/`` is read here and nowhere else. Each reader returns a
DataFrame of strings converted to the declared types, or raises
:class:`InputError` with the file, the row (data row, counting from 1; the file
line is row + 1), the column and what to do about it.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

MUNICIPALITIES = ("groningen", "nijmegen", "tilburg", "utrecht", "deventer", "wageningen")
COMPONENTS = ("exemption", "intensive", "release", "fulltime_bonus", "free_choice", "control")
SIGNIFICANCE_MARKS = ("", "~", "*", "**", "***")
#: Footnote-style marks some reports use (``1)`` = p<0.15 in Wageningen); allowed only where the table's legend defines them.
_FOOTNOTE_MARK = re.compile(r"^\*{0,3}\d\)$")

ESTIMATE_COLUMNS = (
    "municipality", "arm", "comparator", "outcome", "horizon_months", "model", "population",
    "estimate", "unit", "se", "ci_low", "ci_high", "ci_level", "p_value", "significance",
    "n_arm", "n_control", "share_arm", "share_control", "printed",
    "source_file", "source_table", "source_line", "note",
)
ESTIMATE_FLOATS = ("estimate", "se", "ci_low", "ci_high", "ci_level", "p_value", "share_arm", "share_control")
ESTIMATE_INTS = ("horizon_months", "n_arm", "n_control", "source_line")
#: Optional columns (blank allowed, may be absent): the total N a table prints.
ESTIMATE_OPTIONAL_INTS = ("n_table",)
ESTIMATE_KEY = ("municipality", "arm", "comparator", "outcome", "horizon_months", "model", "population", "source_table")
#: Units an estimate may be printed in, with the range a *difference* in that unit can take.
ESTIMATE_UNITS = {
    "proportion": (-1.0, 1.0),
    "percent": (-100.0, 100.0),
    "percentage_points": (-100.0, 100.0),
}
#: Units of levels (comparator ``none``) that are shares.
SHARE_UNITS = {"proportion": (0.0, 1.0), "percent": (0.0, 100.0)}

MUNICIPALITY_COLUMNS = ("municipality", "name", "status", "source_documents", "pending_where")
ARM_COLUMNS = ("municipality", "arm", "name_nl", "name_en", "randomised", *COMPONENTS, "arm_class", "n_randomised")
OUTCOME_COLUMNS = ("outcome", "label_en", "label_nl", "definition", "unit", "direction", "data_source", "concept")
LEGEND_COLUMNS = ("source_file", "source_table", "mark", "p_below", "p_at_least", "two_sided", "legend_line", "legend_text")

_DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+$")
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}([.,]\d{3})+$")


class InputError(Exception):
    """Bad input. The message names file, row, column and the fix."""


@dataclass(frozen=True)
class Inputs:
    """Everything read from ``inputs/``, validated."""

    municipalities: pd.DataFrame
    arms: pd.DataFrame
    outcomes: pd.DataFrame
    legends: pd.DataFrame
    estimates: pd.DataFrame
    files: dict = field(default_factory=dict)  # name -> Path of every input read


def _where(path: Path, row: int | None = None, column: str | None = None) -> str:
    parts = [str(path)]
    if row is not None:
        parts.append(f"row {row} (line {row + 1})")
    if column is not None:
        parts.append(f"column {column}")
    return ": ".join([parts[0], ", ".join(parts[1:])]) if len(parts) > 1 else parts[0]


def read_csv_strict(path: Path, required: tuple[str, ...], name: str | None = None) -> pd.DataFrame:
    """Read a CSV as strings; check it exists, is non-empty and has ``required`` columns."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found; restore it from git or give --inputs the folder that holds it")
    text = path.read_bytes()
    if not text.strip():
        raise InputError(f"{path}: the file is empty; it needs a header row with {', '.join(required[:4])}, ...")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start}); save the file as UTF-8 CSV")
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: cannot be parsed as comma-separated CSV ({exc}); save it as CSV with commas")
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame.columns) == 1 and ";" in frame.columns[0]:
        raise InputError(
            f"{_where(path, 0)}: the header is separated by semicolons; save the file as comma-separated CSV"
        )
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(f"{_where(path, 0, missing[0])}: required column is missing; add a column named {missing[0]!r}")
    if len(frame) == 0:
        raise InputError(f"{path}: header only, no rows; add the rows or restore the file from git")
    frame = frame.map(lambda s: s.strip() if isinstance(s, str) else s)
    frame.insert(0, "input_row", range(1, len(frame) + 1))
    return frame


def parse_number(text: str, path: Path, row: int, column: str, integer: bool = False):
    """Parse one numeric cell; blank → NaN. Refuse decimal commas, thousands separators, %, text."""
    if text == "":
        return math.nan
    if _DECIMAL_COMMA.match(text):
        raise InputError(f"{_where(path, row, column)}: {text!r} uses a decimal comma; write {text.replace(',', '.')!r}")
    if _THOUSANDS.match(text) and integer:
        raise InputError(
            f"{_where(path, row, column)}: {text!r} has a thousands separator; write {re.sub('[.,]', '', text)!r}"
        )
    if text.endswith("%"):
        raise InputError(
            f"{_where(path, row, column)}: {text!r} has a percent sign; write the number alone and state the unit in the unit column"
        )
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{_where(path, row, column)}: {text!r} is not a number; write a number with a dot decimal, or leave it blank")
    if not math.isfinite(value):
        raise InputError(f"{_where(path, row, column)}: {text!r} is not a finite number; write a finite number or leave it blank")
    if integer:
        if value != int(value):
            raise InputError(f"{_where(path, row, column)}: {text!r} must be a whole number")
        return int(value)
    return value


def _convert(frame: pd.DataFrame, path: Path, floats=(), ints=()) -> pd.DataFrame:
    out = frame.copy()
    for col in floats:
        out[col] = [parse_number(t, path, r, col) for t, r in zip(frame[col], frame["input_row"])]
    for col in ints:
        values = [parse_number(t, path, r, col, integer=True) for t, r in zip(frame[col], frame["input_row"])]
        out[col] = pd.array([None if (isinstance(v, float) and math.isnan(v)) else v for v in values], dtype="Int64")
    return out


def _check_codes(frame, path, column, allowed, what, fix):
    for value, row in zip(frame[column], frame["input_row"]):
        if value not in allowed:
            raise InputError(f"{_where(path, row, column)}: unknown {what} {value!r}; {fix}")


def _check_unique(frame, path, key, fix):
    dup = frame.duplicated(list(key), keep="first")
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        row = int(frame["input_row"].iloc[i])
        first = frame[(frame[list(key)] == frame[list(key)].iloc[i]).all(axis=1)]["input_row"].iloc[0]
        raise InputError(
            f"{_where(path, row, key[-1])}: duplicated key ({', '.join(map(str, frame[list(key)].iloc[i]))}) "
            f"already on row {first}; {fix}"
        )


def load_municipalities(path: Path) -> pd.DataFrame:
    frame = read_csv_strict(path, MUNICIPALITY_COLUMNS)
    _check_codes(frame, path, "municipality", MUNICIPALITIES, "municipality",
                 f"use one of {', '.join(MUNICIPALITIES)}")
    _check_codes(frame, path, "status", ("transcribed", "pending"), "status", "use 'transcribed' or 'pending'")
    _check_unique(frame, path, ("municipality",), "keep one row per municipality")
    for name in MUNICIPALITIES:
        if name not in set(frame["municipality"]):
            raise InputError(f"{path}: municipality {name!r} is missing; all six need a row (status 'pending' if no numbers yet)")
    return frame


def load_arms(path: Path, municipalities: pd.DataFrame) -> pd.DataFrame:
    frame = read_csv_strict(path, ARM_COLUMNS)
    _check_codes(frame, path, "municipality", set(municipalities["municipality"]), "municipality",
                 "add it to municipalities.csv or fix the code")
    for col in COMPONENTS:
        _check_codes(frame, path, col, ("0", "1"), f"value in component {col}", "write 1 (has it) or 0")
    _check_codes(frame, path, "randomised", ("true", "false"), "value", "write true or false")
    _check_unique(frame, path, ("municipality", "arm"), "keep one row per municipality and arm")
    frame = _convert(frame, path, ints=("n_randomised",))
    for col in COMPONENTS:
        frame[col] = frame[col].astype(int)
    frame["randomised"] = frame["randomised"] == "true"
    no_component = frame[list(COMPONENTS)].sum(axis=1) == 0
    if no_component.any():
        row = int(frame.loc[no_component, "input_row"].iloc[0])
        if frame.loc[no_component, "arm_class"].iloc[0] != "reference":
            raise InputError(
                f"{_where(path, row, 'exemption')}: arm has no components; set at least one of "
                f"{', '.join(COMPONENTS)} to 1"
            )
    return frame


def load_outcomes(path: Path) -> pd.DataFrame:
    frame = read_csv_strict(path, OUTCOME_COLUMNS)
    _check_unique(frame, path, ("outcome",), "keep one row per outcome code")
    _check_codes(frame, path, "direction", ("higher_better", "lower_better", "neutral"), "direction",
                 "use higher_better, lower_better or neutral")
    _check_codes(frame, path, "data_source", ("registers", "survey"), "data source", "use registers or survey")
    return frame


def load_legends(path: Path) -> pd.DataFrame:
    frame = read_csv_strict(path, LEGEND_COLUMNS)
    for mark, row in zip(frame["mark"], frame["input_row"]):
        if mark not in SIGNIFICANCE_MARKS and not _FOOTNOTE_MARK.match(mark):
            raise InputError(f"{_where(path, row, 'mark')}: unknown significance mark {mark!r}; "
                             "use one of ~ * ** *** (or a footnote mark such as 1)), blank for 'no mark'")
    frame = _convert(frame, path, floats=("p_below", "p_at_least"), ints=("legend_line",))
    _check_unique(frame, path, ("source_file", "source_table", "mark"), "keep one row per table and mark")
    return frame


def load_estimates(path: Path, municipalities, arms, outcomes, legends) -> pd.DataFrame:
    """Load ``estimates.csv`` and check it against the registers."""
    frame = read_csv_strict(path, ESTIMATE_COLUMNS)
    for col in ESTIMATE_OPTIONAL_INTS:
        if col not in frame.columns:
            frame[col] = ""
    frame = _convert(frame, path, floats=ESTIMATE_FLOATS, ints=ESTIMATE_INTS + ESTIMATE_OPTIONAL_INTS)
    _check_codes(frame, path, "municipality", set(municipalities["municipality"]), "municipality",
                 f"use one of {', '.join(MUNICIPALITIES)}")
    pending = set(municipalities.loc[municipalities["status"] == "pending", "municipality"])
    for muni, row in zip(frame["municipality"], frame["input_row"]):
        if muni in pending:
            raise InputError(
                f"{_where(path, row, 'municipality')}: {muni!r} is 'pending' in municipalities.csv but has estimate rows; "
                "set its status to 'transcribed' once its numbers are checked, or remove the rows"
            )
    arm_keys = set(zip(arms["municipality"], arms["arm"]))
    for col in ("arm", "comparator"):
        for muni, value, row in zip(frame["municipality"], frame[col], frame["input_row"]):
            if col == "comparator" and value == "none":
                continue
            if (muni, value) not in arm_keys:
                raise InputError(
                    f"{_where(path, row, col)}: unknown arm {value!r} for {muni}; add it to arms.csv or use a listed arm code"
                )
    _check_codes(frame, path, "outcome", set(outcomes["outcome"]), "outcome", "add it to outcomes.csv or fix the code")
    _check_unique(frame, path, ESTIMATE_KEY, "give the rows different model or population codes, or remove one")
    legend_keys = set(zip(legends["source_file"], legends["source_table"], legends["mark"]))
    for r in frame.itertuples(index=False):
        where = lambda col: _where(path, r.input_row, col)  # noqa: E731
        if math.isnan(r.estimate):
            raise InputError(f"{where('estimate')}: estimate is blank; every row holds one printed number")
        if r.comparator == "none":
            rng = SHARE_UNITS.get(r.unit)
        else:
            rng = ESTIMATE_UNITS.get(r.unit)
        if rng is not None and not (rng[0] <= r.estimate <= rng[1]):
            raise InputError(
                f"{where('estimate')}: {r.estimate} is outside [{rng[0]}, {rng[1]}] allowed for unit {r.unit!r}; "
                "check the unit (proportion vs percent) or the number"
            )
        if not math.isnan(r.se) and r.se <= 0:
            raise InputError(f"{where('se')}: standard error {r.se} must be > 0; check the printed value or leave it blank")
        if not (math.isnan(r.ci_low) or math.isnan(r.ci_high)):
            if r.ci_low > r.ci_high:
                raise InputError(f"{where('ci_low')}: ci_low {r.ci_low} > ci_high {r.ci_high}; swap them")
            if not (r.ci_low <= r.estimate <= r.ci_high):
                raise InputError(
                    f"{where('ci_low')}: the interval [{r.ci_low}, {r.ci_high}] does not contain the estimate {r.estimate}; "
                    "check the three numbers against the source line"
                )
            if math.isnan(r.ci_level):
                raise InputError(f"{where('ci_level')}: a CI is given without its level; write e.g. 95")
        if not math.isnan(r.ci_level) and not (0 < r.ci_level < 100):
            raise InputError(f"{where('ci_level')}: {r.ci_level} must be a percentage between 0 and 100, e.g. 95")
        if not math.isnan(r.p_value) and not (0 <= r.p_value <= 1):
            raise InputError(f"{where('p_value')}: p-value {r.p_value} must lie between 0 and 1")
        if r.significance not in SIGNIFICANCE_MARKS and (r.source_file, r.source_table, r.significance) not in legend_keys:
            raise InputError(
                f"{where('significance')}: significance mark {r.significance!r} is not one of ~ * ** *** and no legend "
                f"of {r.source_table} defines it; copy the mark as printed and add the table's legend to "
                "significance_legends.csv, or leave it blank"
            )
        for col in ("share_arm", "share_control"):
            val = getattr(r, col)
            if not math.isnan(val) and not (0 <= val <= 1):
                raise InputError(f"{where(col)}: share {val} must be a proportion between 0 and 1 (write 0.233 for 23.3%)")
        for col in ("n_arm", "n_control"):
            val = getattr(r, col)
            if not pd.isna(val) and val <= 0:
                raise InputError(f"{where(col)}: sample size {val} must be a positive whole number")
        if r.significance and (r.source_file, r.source_table, r.significance) not in legend_keys:
            raise InputError(
                f"{where('significance')}: no legend for mark {r.significance!r} in {r.source_file} {r.source_table}; "
                "add the table's legend to significance_legends.csv"
            )
    return frame


def load_inputs(folder: Path) -> Inputs:
    """Read and validate every register and the transcription in ``folder``."""
    folder = Path(folder)
    files = {
        "municipalities": folder / "municipalities.csv",
        "arms": folder / "arms.csv",
        "outcomes": folder / "outcomes.csv",
        "legends": folder / "significance_legends.csv",
        "estimates": folder / "estimates.csv",
    }
    municipalities = load_municipalities(files["municipalities"])
    arms = load_arms(files["arms"], municipalities)
    outcomes = load_outcomes(files["outcomes"])
    legends = load_legends(files["legends"])
    estimates = load_estimates(files["estimates"], municipalities, arms, outcomes, legends)
    return Inputs(municipalities, arms, outcomes, legends, estimates, files)


# --------------------------------------------------------------------------- #
# the plan
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Plan:
    """What is pooled and how (``inputs/plan.toml``); every field has a default."""

    outcomes: tuple[str, ...] = ("income_gt70_wml", "hours_gt12", "hours_gt27", "hours_gt8", "permanent_contract",
                                 "exit_to_work_fulltime")
    outcome_level: str = "strict"  # "strict" (outcome code) or "concept" (outcomes.csv concept)
    horizons: tuple[int, ...] = (16, 24)
    model_preference: tuple[str, ...] = ("loep",)
    population_preference: tuple[str, ...] = ("all",)
    arm_classes: tuple[str, ...] = ("exemption", "intensive", "release", "free_choice")
    method: str = "REML"
    test: str = "knha"
    level: float = 95.0
    se_policy: str = "central"  # or "conservative"
    include_derived_from_marks: bool = True

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


PLAN_FIELDS = {
    "outcomes": list, "outcome_level": str, "horizons": list, "model_preference": list,
    "population_preference": list, "arm_classes": list, "method": str, "test": str, "level": (int, float),
    "se_policy": str, "include_derived_from_marks": bool,
}


def load_plan(path: Path | None) -> Plan:
    """Read a plan TOML (a flat table of the :class:`Plan` fields); missing fields keep defaults."""
    if path is None:
        return Plan()
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: plan file not found; give --plan an existing TOML file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc}); fix the syntax at that line")
    unknown = sorted(set(data) - set(PLAN_FIELDS))
    if unknown:
        raise InputError(f"{path}: key {unknown[0]!r}: unknown plan setting; use one of {', '.join(PLAN_FIELDS)}")
    values = {}
    for key, val in data.items():
        if not isinstance(val, PLAN_FIELDS[key]) or (PLAN_FIELDS[key] is not bool and isinstance(val, bool)):
            raise InputError(f"{path}: key {key!r}: {val!r} has the wrong type; see inputs/README.md for the plan format")
        values[key] = tuple(val) if isinstance(val, list) else val
    plan = Plan(**values)
    from meta.engine import METHODS, TESTS  # the engine's vocabulary; no stage order issue (constants only)

    if plan.method.upper() not in METHODS:
        raise InputError(f"{path}: key 'method': {plan.method!r} unknown; use one of {', '.join(METHODS)}")
    if plan.test.lower() not in TESTS:
        raise InputError(f"{path}: key 'test': {plan.test!r} unknown; use one of {', '.join(TESTS)}")
    if plan.se_policy not in ("central", "conservative"):
        raise InputError(f"{path}: key 'se_policy': {plan.se_policy!r}; use 'central' or 'conservative'")
    if plan.outcome_level not in ("strict", "concept"):
        raise InputError(f"{path}: key 'outcome_level': {plan.outcome_level!r}; use 'strict' or 'concept'")
    if not (0 < float(plan.level) < 100):
        raise InputError(f"{path}: key 'level': {plan.level!r} must be between 0 and 100")
    return plan

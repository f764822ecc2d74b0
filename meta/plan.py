"""The analysis plan (``inputs/plan.toml``): :class:`Plan`, its defaults, its settings, reading and checking it,
and where it is.

Each key is a field of :class:`Plan` (its default) and, where it has a type, range or allowed values, a
:class:`Setting` of :data:`PLAN`; :func:`load_plan` checks every value against it, :func:`check_plan` the plan
against the inputs. The plan path is resolved here and nowhere else (:func:`plan_file`).
"""

from __future__ import annotations

import difflib
import logging
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from meta.errors import InputError
from meta.read import schema

if TYPE_CHECKING:  # pandas is imported only when the plan is checked against the inputs: `meta --help` starts fast
    from meta.read.load import Inputs

log = logging.getLogger("meta.plan")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_INPUTS = REPO / "inputs"
DEFAULT_PLAN = DEFAULT_INPUTS / "plan.toml"
DEFAULT_OUT = REPO / "outputs"


def plan_file(plan=None, inputs_dir=None) -> Path | None:
    """The plan a command reads: ``plan`` when given, else ``plan.toml`` in the inputs folder when present.

    ``inputs_dir`` None means the repository's ``inputs/``. None is returned when neither exists: the
    :class:`meta.plan.Plan` defaults apply.
    """
    if plan:
        return Path(plan)
    candidate = Path(inputs_dir if inputs_dir is not None else DEFAULT_INPUTS) / "plan.toml"
    return candidate if candidate.exists() else None


#: Per harmonised unit: τ prior scale and δ with the reason for each, in English and Dutch (plan key ``bayes_units``;
#: a plan overrides whole units), in the order of :data:`BAYES_UNIT_KEYS`.
DEFAULT_BAYES_UNITS = (
    ("percentage_points", 5.0,
     "half-normal scale 5 pp: prior median of the between-municipality SD 3.4 pp, 95% below 9.8 pp. The municipalities "
     "ran one national design on similar welfare populations, so their effects on a share in work plausibly differ by "
     "a few pp and rarely by 10 pp or more (a 10 pp effect would itself be large); Friede et al. (2017) take about half "
     "a large effect as scale",
     2.0,
     "2 pp is one person in fifty on welfare: smaller differences in a share are treated as practically zero; it is "
     "well below the standard error of any one municipality's estimate (about 4-7 pp)",
     "half-normale prior met schaal 5 pp: mediaan van de spreiding (SD) tussen gemeenten 3,4 pp, 95% onder 9,8 pp. De "
     "gemeenten voerden één landelijk ontwerp uit bij vergelijkbare bijstandspopulaties; hun effecten op een aandeel "
     "aan het werk verschillen dus aannemelijk enkele pp en zelden 10 pp of meer (een effect van 10 pp is zelf al "
     "groot); Friede e.a. (2017) nemen als schaal ongeveer de helft van een groot effect",
     "2 pp is één op de vijftig mensen in de bijstand: kleinere verschillen in een aandeel gelden als praktisch nul; "
     "dat ligt ruim onder de standaardfout van de schatting van één gemeente (ongeveer 4–7 pp)"),
    ("scale_0_10", 0.5,
     "5% of the 10-point range, as 5 pp is 5% of a share's 0-100 range: municipalities rarely differ by a whole point",
     0.2, "2% of the 10-point range, as 2 pp is of a share's range",
     "5% van het bereik van 10 punten, zoals 5 pp 5% is van het bereik 0–100 van een aandeel: gemeenten verschillen "
     "zelden een heel punt",
     "2% van het bereik van 10 punten, zoals 2 pp van het bereik van een aandeel"),
    ("scale_1_10", 0.5,
     "as on a 0-10 scale (the range is 9 points): municipalities rarely differ by a whole point",
     0.2, "as on a 0-10 scale: 0.2 points, 2.2% of the 9-point range",
     "als op een schaal 0–10 (het bereik is 9 punten): gemeenten verschillen zelden een heel punt",
     "als op een schaal 0–10: 0,2 punt, 2,2% van het bereik van 9 punten"),
    ("scale_1_6", 0.25,
     "5% of the 5-point range, as 5 pp is 5% of a share's range",
     0.1, "2% of the 5-point range, as 2 pp is of a share's range",
     "5% van het bereik van 5 punten, zoals 5 pp 5% is van het bereik van een aandeel",
     "2% van het bereik van 5 punten, zoals 2 pp van het bereik van een aandeel"),
)


@dataclass(frozen=True)
class Plan:
    """What is pooled and how (``inputs/plan.toml``); every field has a default."""

    outcomes: tuple[str, ...] = ("income_gt70_wml", "hours_gt12", "hours_gt27", "hours_gt8", "permanent_contract",
                                 "exit_to_work_fulltime")
    outcome_level: str = "strict"  # "strict" (outcome code) or "concept" (harmonisation.csv concept and period)
    #: periods of ``periods.csv`` pooled at the concept level (empty: all)
    periods: tuple[str, ...] = ()
    horizons: tuple[int, ...] = (16, 24)
    model_preference: tuple[str, ...] = ("loep",)
    population_preference: tuple[str, ...] = ("all",)
    arm_classes: tuple[str, ...] = ("exemption", "intensive", "release", "free_choice")
    method: str = "REML"
    test: str = "adhoc"
    level: float = 95.0
    se_policy: str = "central"  # or "conservative"
    #: how per-wave adjusted means become an effect (meta/effects/concepts.py): "change" since baseline or "wave"
    survey_contrast: str = "change"
    include_derived_from_marks: bool = True
    #: cells with at most this many studies get the Bayesian model as headline (k = 1: the study as reported)
    few_studies_k: int = 4
    #: per harmonised unit: (unit, τ prior scale, its reason, δ of the decision probabilities, its reason); see
    #: :data:`DEFAULT_BAYES_UNITS` and ``inputs/README.md``
    bayes_units: tuple = DEFAULT_BAYES_UNITS
    #: assumed correlation of two arms' effects through their shared control group when the control's own
    #: variance is not known (component meta-regression)
    shared_control_correlation: float = 0.5

    def to_dict(self) -> dict:
        out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
        out["bayes_units"] = {u: dict(zip(BAYES_UNIT_KEYS, rest)) for u, *rest in self.bayes_units}
        return out

    def bayes_unit(self, unit: str) -> dict | None:
        """The plan's τ prior scale and δ (with their reasons) for ``unit``, or None when the plan has none."""
        for u, *rest in self.bayes_units:
            if u == unit:
                return dict(zip(BAYES_UNIT_KEYS, rest))
        return None


#: The settings of one unit under ``bayes_units`` in the plan, in this order; the Dutch reasons (``*_nl``) are optional
#: (the Dutch report shows the English reason when they are missing).
BAYES_UNIT_KEYS = ("tau_prior_scale", "tau_prior_reason", "delta", "delta_reason", "tau_prior_reason_nl",
                   "delta_reason_nl")
BAYES_UNIT_REQUIRED = BAYES_UNIT_KEYS[:4]


# --------------------------------------------------------------------------- #
# the settings: type, range and allowed values of each plan key
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Setting:
    """One plan setting: its type (``str``, ``int``, ``float``, ``bool``, ``list_str``, ``list_int``), range or
    allowed values, and whether the values are compared case-insensitively (then normalised with a note)."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    case: str | None = None  # "upper" / "lower": normalise the case of a choice, with a note
    doc: str = ""
    fix: str = ""

    def column(self) -> schema.Column:
        """The range of a number setting as a :class:`meta.read.schema.Column` (its ``bounds`` and ``in_range``)."""
        return schema.Column(self.name, low=self.low, high=self.high, low_open=self.low_open,
                             high_open=self.high_open)


PLAN = (
    Setting("outcomes", "list_str", doc="concepts (or, at the strict level, outcome codes) to pool; each must be in "
            "concepts.csv (outcomes.csv)"),
    Setting("outcome_level", "str", choices=("strict", "concept"), fix="use 'strict' or 'concept'"),
    Setting("periods", "list_str", doc="periods of periods.csv pooled at the concept level (empty: all)"),
    Setting("survey_contrast", "str", choices=("change", "wave"), fix="use 'change' or 'wave'",
            doc="Wageningen's survey effects: change since baseline, or the difference at the wave"),
    Setting("horizons", "list_int", low=0, high=schema.MAX_HORIZON_MONTHS,
            doc="months since the start; whole numbers", fix="write the list as [12, 16, 24] (months, no quotes)"),
    Setting("model_preference", "list_str", doc="model columns, most preferred first; each must occur in "
            "estimates.csv"),
    Setting("population_preference", "list_str", doc="populations, most preferred first; each must occur in "
            "estimates.csv"),
    Setting("arm_classes", "list_str", doc="arm classes pooled; each must be the arm_class of an arm"),
    Setting("method", "str", case="upper", doc="tau^2 estimator (meta.models.engine.METHODS)"),
    Setting("test", "str", case="lower", doc="inference for the pooled effect (meta.models.engine.TESTS)"),
    Setting("level", "float", low=50, high=100, low_open=True, high_open=True,
            fix="write the level in percent, e.g. 95 (not 0.95)"),
    Setting("se_policy", "str", choices=("central", "conservative"), fix="use 'central' or 'conservative'"),
    Setting("include_derived_from_marks", "bool"),
    Setting("few_studies_k", "int", low=1, fix="cells with at most this many studies get the Bayesian headline; 1 "
            "keeps the classical headline for every pooled cell"),
    Setting("shared_control_correlation", "float", low=0, high=1, high_open=True, fix="give a value in [0, 1)"),
)
SETTINGS = {s.name: s for s in PLAN}


def plan_choices(name: str) -> tuple:
    """Allowed values of a setting; those of ``method`` and ``test`` are the engine's."""
    if name in ("method", "test"):
        from meta.models.engine import METHODS, TESTS  # only when a plan sets method or test: no numpy otherwise

        return tuple(METHODS) if name == "method" else tuple(TESTS)
    return SETTINGS[name].choices if name in SETTINGS else ()


def check_setting(setting: Setting, value, notes: list):
    """Validate (and normalise, with a note in ``notes``) one plan value; raises :class:`meta.read.schema.SchemaError`."""
    kind = setting.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise schema.SchemaError(f"{value!r} has the wrong type; write true or false (no quotes)")
        return value
    if kind in ("int", "float"):
        return _check_number(setting, value, notes)
    if kind == "str":
        return _check_str(setting, value, notes)
    return _check_list(setting, value, notes)


def _check_number(setting: Setting, value, notes: list):
    """An ``int`` or ``float`` setting: a finite number in range (``16.0`` read as 16 for an ``int``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise schema.SchemaError(f"{value!r} has the wrong type; write a number (no quotes)")
    if isinstance(value, float) and not math.isfinite(value):
        raise schema.SchemaError(f"{value!r} is not a finite number; {setting.fix}")
    if setting.kind == "int" and isinstance(value, float):
        if not value.is_integer():
            raise schema.SchemaError(f"{value!r} must be a whole number; {setting.fix or 'write it without decimals'}")
        notes.append(f"{value!r} read as {int(value)}")
        value = int(value)
    col = setting.column()
    if not col.in_range(value):
        raise schema.SchemaError(f"{value!r} must be {col.bounds()}; {setting.fix or 'see inputs/README.md'}")
    return value


def _check_str(setting: Setting, value, notes: list):
    """A ``str`` setting; one with choices is normalised (spaces, case) and must be one of them."""
    if not isinstance(value, str):
        raise schema.SchemaError(f"{value!r} has the wrong type; write it in quotes, see inputs/README.md")
    choices = plan_choices(setting.name)
    if not choices:
        return value
    normal = value.strip()
    if setting.case == "upper":
        normal = normal.upper()
    elif setting.case == "lower":
        normal = normal.lower()
    if normal not in choices:
        raise schema.SchemaError(f"{value!r} unknown; use one of {', '.join(choices)}")
    if normal != value:
        notes.append(f"{value!r} read as {normal!r}")
    return normal


def _check_list(setting: Setting, value, notes: list) -> tuple:
    """A ``list_int`` or ``list_str`` setting: a non-empty list; items checked, trimmed, and listed once."""
    kind = setting.kind
    if not isinstance(value, list):
        example = "[12, 16, 24] (months, no quotes)" if kind == "list_int" else '["a", "b"] (quoted)'
        raise schema.SchemaError(f"{value!r} has the wrong type; write the list as {example}")
    if not value:
        raise schema.SchemaError("the list is empty, so nothing would be pooled; list at least one value or leave the "
                                 "key out for the default")
    out = []
    for item in value:
        if kind == "list_int":
            if isinstance(item, float) and item.is_integer():
                notes.append(f"{item!r} read as {int(item)}")
                item = int(item)
            if isinstance(item, bool) or not isinstance(item, int):
                raise schema.SchemaError(f"{item!r} has the wrong type; write the list as [12, 16, 24] (months, no "
                                         "quotes)")
            col = schema.Column(setting.name, low=setting.low, high=setting.high)
            if not col.in_range(item):
                raise schema.SchemaError(f"{item!r} must be {col.bounds()} months; {setting.fix}")
        else:
            if not isinstance(item, str):
                raise schema.SchemaError(f"{item!r} has the wrong type; write the list as [\"a\", \"b\"] (quoted)")
            if item != item.strip():
                notes.append(f"{item!r} read as {item.strip()!r}")
                item = item.strip()
        if item in out:
            notes.append(f"{item!r} listed twice; used once")
            continue
        out.append(item)
    return tuple(out)


#: The plan's settings and their types (declared in :data:`PLAN`; a setting declared only on :class:`Plan` is
#: checked against its default's type; ``bayes_units`` is a table, checked by :func:`_bayes_units`).
PLAN_FIELDS = {name: SETTINGS[name].kind if name in SETTINGS else type(default)
               for name, default in Plan().__dict__.items()}
#: Plan keys that were replaced, and by what.
RENAMED_PLAN_KEYS = {
    "bayes_tau_scale_pp": "bayes_units.percentage_points.tau_prior_scale",
    "bayes_tau_scale_points": "bayes_units.<unit>.tau_prior_scale (one per scale unit, e.g. scale_0_10)",
}


def _bayes_units(path, table) -> tuple:
    """Validate ``bayes_units`` (unit -> {tau_prior_scale, tau_prior_reason, delta, delta_reason[, *_nl]})."""
    out = []
    for unit, entry in sorted(table.items()):
        key = f"bayes_units.{unit}"
        if not isinstance(entry, dict):
            raise InputError(f"{path}: key {key!r}: give a table with {', '.join(BAYES_UNIT_KEYS)}")
        unknown = sorted(set(entry) - set(BAYES_UNIT_KEYS))
        missing = [k for k in BAYES_UNIT_REQUIRED if k not in entry]
        if unknown:
            raise InputError(f"{path}: key '{key}.{unknown[0]}': unknown; use {', '.join(BAYES_UNIT_KEYS)}")
        if missing:
            raise InputError(f"{path}: key '{key}.{missing[0]}' is missing; every unit needs {', '.join(BAYES_UNIT_REQUIRED)} "
                             "(a number and the reason for it)")
        for k, positive in (("tau_prior_scale", True), ("delta", False)):
            x = entry[k]
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0 or (positive and x == 0):
                raise InputError(f"{path}: key '{key}.{k}': {x!r} must be a number {'> 0' if positive else '>= 0'} "
                                 "in the unit's own scale")
        for k in ("tau_prior_reason", "delta_reason", "tau_prior_reason_nl", "delta_reason_nl"):
            if k in entry and (not isinstance(entry[k], str) or not entry[k].strip()):
                raise InputError(f"{path}: key '{key}.{k}': write the reason for the number as a non-empty string")
        out.append((unit, float(entry["tau_prior_scale"]), entry["tau_prior_reason"].strip(), float(entry["delta"]),
                    entry["delta_reason"].strip(), entry.get("tau_prior_reason_nl", entry["tau_prior_reason"]).strip(),
                    entry.get("delta_reason_nl", entry["delta_reason"]).strip()))
    return tuple(out)


def load_plan(path: Path | None) -> Plan:
    """Read a plan TOML (a flat table of the :class:`Plan` fields); missing fields keep defaults.

    Every value is checked against its :class:`Setting` (type, range, allowed values); harmless
    slips are normalised and said in a warning (``"reml"`` → ``"REML"``, an outcome listed twice, ``16.0``
    → 16); anything else is refused naming the plan file and key.
    """
    if path is None:
        return Plan()
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: plan file not found; give --plan an existing TOML file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: the plan is not UTF-8 text; save it as UTF-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc}); fix the syntax at that line")
    renamed = sorted(set(data) & set(RENAMED_PLAN_KEYS))
    if renamed:
        raise InputError(f"{path}: key {renamed[0]!r}: replaced by {RENAMED_PLAN_KEYS[renamed[0]]} (with the reason "
                         "beside it); see inputs/README.md")
    unknown = sorted(set(data) - set(PLAN_FIELDS))
    if unknown:
        raise InputError(f"{path}: key {unknown[0]!r}: unknown plan setting; use one of {', '.join(PLAN_FIELDS)}")
    defaults = Plan()
    values = {}
    for key, val in data.items():
        setting = SETTINGS.get(key)
        if key == "bayes_units":
            if not isinstance(val, dict):
                raise InputError(f"{path}: key 'bayes_units': give a table per unit ([bayes_units.percentage_points] "
                                 "with tau_prior_scale, tau_prior_reason, delta, delta_reason); see inputs/README.md")
            values[key] = val
            continue
        if setting is None:  # a setting declared only on Plan: its default's type
            default = getattr(defaults, key)
            kind = (bool,) if isinstance(default, bool) else (int, float) if isinstance(default, (int, float)) \
                else (list,) if isinstance(default, tuple) else (type(default),)
            if not isinstance(val, kind) or (bool not in kind and isinstance(val, bool)):
                raise InputError(f"{path}: key {key!r}: {val!r} has the wrong type; see inputs/README.md for the plan "
                                 "format")
            values[key] = tuple(val) if isinstance(val, list) else val
            continue
        notes: list[str] = []
        try:
            values[key] = check_setting(setting, val, notes)
        except schema.SchemaError as exc:
            raise InputError(f"{path}: key {key!r}: {exc}") from None
        for note in notes:
            log.warning(f"{path}: key {key!r}: {note}")
    if "bayes_units" in values:  # the plan's units replace the defaults unit by unit
        given = _bayes_units(path, values["bayes_units"])
        named = {u for u, *_ in given}
        values["bayes_units"] = tuple(sorted([*given, *(d for d in DEFAULT_BAYES_UNITS if d[0] not in named)]))
    return Plan(**values)


def check_plan(plan: Plan, inputs: Inputs, path: Path | str | None = None) -> list[str]:
    """Check the plan against the inputs: refuse what cannot be meant, return warnings for what pools nothing.

    Refused (:class:`InputError` naming the plan file and key): an outcome that is not a code of ``outcomes.csv``
    (``outcome_level = "strict"``) or a concept of ``concepts.csv`` (``"concept"``); a period not in
    ``periods.csv``; an arm class no arm of ``arms.csv`` has; a model or population no row has; a plan that
    selects no row of ``estimates.csv`` at all. Returned as warnings (the run goes on and the cells stay visibly
    empty in the coverage table): a listed outcome or horizon that no row reports (a plan may list what the
    pending municipalities will report).
    """
    where = str(path) if path is not None else "plan"
    _check_outcomes(plan, inputs, where)
    _check_registers(plan, inputs, where)
    key = _outcome_key(plan, inputs)
    _check_selects_rows(plan, inputs, key, where)
    est = inputs.estimates
    estimates_file = inputs.files.get("estimates", "estimates.csv")
    warnings = []
    for name, values, reported in (
        ("outcomes", plan.outcomes, set(key)),
        ("horizons", plan.horizons, set(est["horizon_months"].dropna().astype(int))),
    ):
        missing = [v for v in values if v not in reported]
        if missing:
            warnings.append(f"{where}: key {name!r}: {', '.join(map(repr, missing))} reported by no row of "
                            f"{estimates_file}; {'it stays' if len(missing) == 1 else 'they stay'} empty (remove "
                            f"{'it' if len(missing) == 1 else 'them'} from the plan, or add the rows)")
    return warnings


def _check_outcomes(plan: Plan, inputs: Inputs, where: str) -> None:
    """Every listed outcome is a code of ``outcomes.csv`` (strict level) or a concept of ``concepts.csv``."""
    outcomes_file = inputs.files.get("outcomes", "outcomes.csv")
    concepts_file = inputs.files.get("concepts", "concepts.csv")
    strict = plan.outcome_level == "strict"
    codes, concepts = set(inputs.outcomes["outcome"]), set(inputs.concepts["concept"])
    for o in plan.outcomes:
        if o not in (codes if strict else concepts):
            if strict and o in concepts:
                fix = f"{o!r} is a concept: set outcome_level = \"concept\" or list its outcome codes"
            elif not strict and o in codes:
                fix = (f"{o!r} is an outcome code: list its concept (harmonisation.csv) or set "
                       "outcome_level = \"strict\"")
            else:
                fix = f"add it to {outcomes_file if strict else concepts_file} or fix the {'code' if strict else 'concept'}"
            raise InputError(f"{where}: key 'outcomes': {o!r} is no outcome {'code' if strict else 'concept'} of "
                             f"{outcomes_file if strict else concepts_file}; {fix}")


def _check_registers(plan: Plan, inputs: Inputs, where: str) -> None:
    """Every listed period, arm class, model and population occurs in its register or in ``estimates.csv``."""
    known_periods = list(inputs.periods["period"])
    for period in plan.periods:
        if period not in known_periods:
            raise InputError(f"{where}: key 'periods': {period!r} is no period of "
                             f"{inputs.files.get('periods', 'periods.csv')}; use one of {', '.join(known_periods)}")
    arm_classes = set(inputs.arms["arm_class"])
    for c in plan.arm_classes:
        if c not in arm_classes:
            raise InputError(f"{where}: key 'arm_classes': {c!r} is the arm_class of no arm in "
                             f"{inputs.files.get('arms', 'arms.csv')}; use one of {', '.join(sorted(arm_classes))}")
    estimates_file = inputs.files.get("estimates", "estimates.csv")
    for name, column in (("model_preference", "model"), ("population_preference", "population")):
        present = sorted(set(inputs.estimates[column]))
        for value in getattr(plan, name):
            if value not in present:
                close = difflib.get_close_matches(value, present, 1)
                hint = f"did you mean {close[0]!r}?" if close else f"use values of its {column} column"
                raise InputError(f"{where}: key {name!r}: {value!r} is the {column} of no row of {estimates_file} "
                                 f"and would silently match nothing; {hint}")


def _outcome_key(plan: Plan, inputs: Inputs):
    """Per row of ``estimates.csv``: what the plan's ``outcomes`` name it by (its outcome code at the strict level,
    else the concept ``harmonisation.csv`` maps it to, None when unmapped)."""
    import pandas as pd

    est = inputs.estimates
    if plan.outcome_level == "strict":
        return est["outcome"]
    h = inputs.harmonisation
    mapped = h[h["role"].isin(("primary", "sensitivity"))]
    concept_of = {(m, o, int(hz)): c for m, o, hz, c in zip(mapped["municipality"], mapped["outcome"],
                                                           mapped["horizon_months"], mapped["concept"])}
    return pd.Series([concept_of.get((m, o, None if pd.isna(hz) else int(hz)))
                      for m, o, hz in zip(est["municipality"], est["outcome"], est["horizon_months"])], dtype=object)


def _check_selects_rows(plan: Plan, inputs: Inputs, key, where: str) -> None:
    """Refuse a plan whose outcomes, horizons, models and arm classes together select no row, naming the first
    key that empties the selection."""
    import pandas as pd

    est = inputs.estimates
    estimates_file = inputs.files.get("estimates", "estimates.csv")
    class_of = dict(zip(zip(inputs.arms["municipality"], inputs.arms["arm"]), inputs.arms["arm_class"]))
    arm_class = [class_of.get(k) for k in zip(est["municipality"], est["arm"])]
    selected = key.isin(plan.outcomes).to_numpy()
    for name, mask, what in (
        ("outcomes", selected, "reports one of the plan's outcomes"),
        ("horizons", est["horizon_months"].isin(plan.horizons).fillna(False).to_numpy(dtype=bool),
         "of the plan's outcomes has one of the plan's horizons"),
        ("model_preference", est["model"].isin(plan.model_preference).to_numpy(),
         "of the plan's outcomes and horizons comes from a model the plan lists"),
        ("arm_classes", pd.Series(arm_class).isin(plan.arm_classes).to_numpy(),
         "of the plan's outcomes, horizons and models belongs to an arm class the plan lists"),
    ):
        selected = selected & mask
        if not selected.any():
            raise InputError(f"{where}: key {name!r}: the plan selects no row of {estimates_file}: no row "
                             f"{what}; check {name} against the rows of {estimates_file}")

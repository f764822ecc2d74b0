"""The analysis plan (``inputs/plan.toml``): :class:`Plan`, its defaults, reading and checking it, and where it is.

The plan path is resolved here and nowhere else (:func:`plan_file`).
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
     "groot); Friede e.a. (2017) nemen ongeveer een half groot effect als schaal",
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


#: The plan's settings and their types (declared in :data:`meta.read.schema.PLAN`; a setting declared only on
#: :class:`Plan` is checked against its default's type; ``bayes_units`` is a table, checked by :func:`_bayes_units`).
PLAN_FIELDS = {name: schema.SETTINGS[name].kind if name in schema.SETTINGS else type(default)
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

    Every value is checked against its :class:`meta.read.schema.Setting` (type, range, allowed values); harmless
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
        setting = schema.SETTINGS.get(key)
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
            values[key] = schema.check_setting(setting, val, notes)
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
    (``outcome_level = "strict"``) or a concept of ``concepts.csv`` (``"concept"``); a period not in ``periods.csv``; an arm class no arm of ``arms.csv`` has; a plan
    that selects no row of ``estimates.csv`` at all. Returned as warnings (the run goes on and the cells stay
    visibly empty in the coverage table): a listed outcome or horizon that no row reports (a plan may list what
    the pending municipalities will report).
    """
    import pandas as pd

    where = str(path) if path is not None else "plan"
    outcomes, est = inputs.outcomes, inputs.estimates
    outcomes_file = inputs.files.get("outcomes", "outcomes.csv")
    estimates_file = inputs.files.get("estimates", "estimates.csv")
    strict = plan.outcome_level == "strict"
    concepts_file = inputs.files.get("concepts", "concepts.csv")
    codes, concepts = set(outcomes["outcome"]), set(inputs.concepts["concept"])
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

    for name, column in (("model_preference", "model"), ("population_preference", "population")):
        present = sorted(set(est[column]))
        for value in getattr(plan, name):
            if value not in present:
                close = difflib.get_close_matches(value, present, 1)
                hint = f"did you mean {close[0]!r}?" if close else f"use values of its {column} column"
                raise InputError(f"{where}: key {name!r}: {value!r} is the {column} of no row of {estimates_file} "
                                 f"and would silently match nothing; {hint}")

    if strict:
        key = est["outcome"]
    else:
        h = inputs.harmonisation
        mapped = h[h["role"].isin(("primary", "sensitivity"))]
        concept_of = {(m, o, int(hz)): c for m, o, hz, c in zip(mapped["municipality"], mapped["outcome"],
                                                               mapped["horizon_months"], mapped["concept"])}
        key = pd.Series([concept_of.get((m, o, None if pd.isna(hz) else int(hz)))
                         for m, o, hz in zip(est["municipality"], est["outcome"], est["horizon_months"])], dtype=object)
    horizon = est["horizon_months"]
    class_of = dict(zip(zip(inputs.arms["municipality"], inputs.arms["arm"]), inputs.arms["arm_class"]))
    arm_class = [class_of.get(k) for k in zip(est["municipality"], est["arm"])]
    selected = key.isin(plan.outcomes).to_numpy()
    for name, mask, what in (
        ("outcomes", selected, "reports one of the plan's outcomes"),
        ("horizons", horizon.isin(plan.horizons).fillna(False).to_numpy(dtype=bool),
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
    warnings = []
    for name, values, reported in (
        ("outcomes", plan.outcomes, set(key)),
        ("horizons", plan.horizons, set(horizon.dropna().astype(int))),
    ):
        missing = [v for v in values if v not in reported]
        if missing:
            warnings.append(f"{where}: key {name!r}: {', '.join(map(repr, missing))} reported by no row of "
                            f"{estimates_file}; {'it stays' if len(missing) == 1 else 'they stay'} empty (remove "
                            f"{'it' if len(missing) == 1 else 'them'} from the plan, or add the rows)")
    return warnings

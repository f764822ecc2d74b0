"""LOEP concepts: survey effects from adjusted means, and the harmonisation register applied (stage 2, effects).

Two things happen here, after :func:`meta.effects.harmonise.harmonise`:

1. **Arm-vs-control differences from adjusted means** (:func:`survey_differences`). Wageningen prints, per
   questionnaire wave, the covariate-adjusted mean of each arm (004 Tabel 3.8–3.14, model ``ols_adjusted_mean``,
   comparator ``none``). The effect of an arm at a wave is, by default (plan ``survey_contrast = "change"``), the
   arm-vs-control difference in change since the baseline questionnaire

       yi = (m_arm,wave − m_control,wave) − (m_arm,0 − m_control,0),

   the estimand of Nijmegen's LOEP model, which includes the outcome's baseline value (002:329, 337). Several
   arms start well apart from control (self-reliance, exemption: +0.89 at baseline, 004:4064-4066; institutional
   trust: "Het verschil bij de start blijft in stand", 004:4200), so the plain difference at the wave
   (``survey_contrast = "wave"``, yi = m_arm,wave − m_control,wave, a sensitivity specification) would carry that
   gap into the pool. Its SE cannot come from the marks: the stars in those cells test a change
   over time against the baseline measurement, not the arm-vs-control contrast (004:3270-3287; the control row
   carries stars too, e.g. Tabel 3.8 6.25***, "bij de controlegroep in meting 3 ten opzichte van de nulmeting",
   004:3371-3372). The only honest bound is the range bound (Popoviciu): on a scale of width w,

       SE ≤ (w/2)·√(1/n_arm + 1/n_control),

   with n the wave's questionnaire respondents per arm (Tabel 2.4, ``n_arm``) reduced by the table's shortfall
   (Σ respondents over arms and waves − the model's N of observations printed in the table legend, ``n_obs``):
   the worst case,
   every lost answer taken from this arm at this wave. For the change since baseline the bound is the sum of the
   bounds at the wave and at baseline (Minkowski: SD(a − b) ≤ SD(a) + SD(b) for any correlation). ``sei`` is that
   upper bound (``sei_low`` = 0): nothing bounds the SE from below, so no smaller value can be defended. ``se_method`` = ``from_range_bound``. Caveats: the
   respondent counts are not exactly the models' samples (Tabel 3.9 prints N = 225 for release where its three
   waves sum to 224; Tabel 2.4's baseline total, 306, is one more than its arms, 305, whose counts are used), and
   the bound is for an unadjusted difference (assumption (ii) of ``inputs/README.md``).
   Where the shortfall leaves no positive N (Tabel 3.14, model N = 618 of 765 answers) there is no bound and the
   row is excluded with that reason.

2. **The register** (:func:`map_concepts`, :func:`to_concept_scale`): every harmonised row gets the concept,
   period, transform and role of its ``(municipality, outcome, horizon)`` in ``harmonisation.csv``; at the concept
   level a linear transform with factor f (:data:`meta.read.registers.TRANSFORMS`) maps ``yi``, ``sei``, ``sei_low`` and
   ``sei_high`` alike onto the concept's unit (f = 10/9 for a difference on 1–10 onto 0–10).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from meta.effects.harmonise import Harmonisation, range_width
from meta.effects.se import range_bound, upper_bound_only
from meta.read.registers import TRANSFORMS
from meta.read.reader import records

#: Models whose rows are adjusted means of one group per wave (levels that can be differenced against control).
ADJUSTED_MEAN_MODELS = ("ols_adjusted_mean",)
SE_METHOD = "from_range_bound"
#: How an arm's adjusted means become an effect (plan setting ``survey_contrast``).
SURVEY_CONTRASTS = ("change", "wave")
CONTRAST_TEXT = {"change": "differences in change since baseline", "wave": "differences at the wave"}


def _f(value) -> float:
    """A number as float; NaN when missing (None, NaN or pandas' NA)."""
    return math.nan if value is None or pd.isna(value) else float(value)


def survey_differences(harmonised: pd.DataFrame, outcomes: pd.DataFrame, arms: pd.DataFrame,
                       contrast: str = "change") -> pd.DataFrame:
    """Turn per-wave adjusted means into arm-vs-control effects with a range-bound SE (module docstring).

    Parameters
    ----------
    harmonised : DataFrame
        Output of :func:`meta.effects.harmonise.harmonise` (one row per input row).
    outcomes, arms : DataFrame
        The registers (scale range per outcome; arm class and randomisation per arm).
    contrast : {"change", "wave"}
        ``change``: yi = (m_arm,wave − m_control,wave) − (m_arm,0 − m_control,0), the arm-vs-control difference in
        change since the baseline questionnaire, the estimand of Nijmegen's LOEP model, which includes the baseline
        value (002:329, 337); SE ≤ B_wave + B_0 (Minkowski's inequality, whatever the correlation of the two
        differences, which share respondents). ``wave``: yi = m_arm,wave − m_control,wave; SE ≤ B_wave. B is the
        range bound of the module docstring.

    Returns
    -------
    DataFrame
        ``harmonised`` with, for each arm's adjusted mean at a wave (horizon > 0) that has the control's mean (and
        for ``change`` both baseline means) of the same table, outcome and model: ``yi``, ``sei`` (= ``sei_high``),
        ``sei_low`` = 0, ``se_method``, ``effective_comparator`` = control and ``comparator_row`` (the control's
        row at the wave); ``eligible`` and ``reason`` as for any effect. Baseline, 'Totaal' and control means keep
        a reason saying what they are and which derived rows use them.
    """
    return with_survey_changes(harmonised, survey_changes(harmonised, outcomes, arms, contrast))


def survey_changes(harmonised: pd.DataFrame, outcomes: pd.DataFrame, arms: pd.DataFrame,
                   contrast: str = "change") -> dict | None:
    """What :func:`survey_differences` changes: {row position: {column: new value}}, None when no row is an adjusted
    mean. It reads only columns of the printed rows (:data:`SURVEY_READS`), which no SE policy changes."""
    if contrast not in SURVEY_CONTRASTS:
        raise ValueError(f"contrast must be one of {SURVEY_CONTRASTS}, not {contrast!r}")
    is_mean = (harmonised["model"].isin(ADJUSTED_MEAN_MODELS) & (harmonised["comparator"] == "none")).to_numpy()
    if not is_mean.any():
        return None
    means = _Means(harmonised, is_mean, {r["outcome"]: r for r in records(outcomes)},
                   {(r["municipality"], r["arm"]): r for r in records(arms)})
    new: dict = {}  # position → {column: value}, written at the end (the rows read are never written)
    users: dict = {}
    for i in np.flatnonzero(is_mean):
        for j in _difference(i, contrast, means, new):
            users.setdefault(j, []).append(int(means.col["input_row"][i]))
    for j, rows in users.items():
        what = ("of the control group at this wave" if means.col["horizon_months"][j] > 0
                else "at baseline (nulmeting)")
        new.setdefault(j, {})["reason"] = (f"adjusted mean {what}; used in the derived arm-vs-control "
                                           f"{CONTRAST_TEXT[contrast]} (input rows {', '.join(map(str, sorted(rows)))})")
    return new


def with_survey_changes(harmonised: pd.DataFrame, new: dict | None) -> pd.DataFrame:
    """``harmonised`` with the changes of :func:`survey_changes` written in (the same frame when there are none)."""
    if new is None:
        return harmonised
    out = harmonised.copy()
    out["comparator_row"] = out["comparator_row"].astype(object)
    for name in dict.fromkeys(c for change in new.values() for c in change):
        at = [j for j, change in new.items() if name in change]
        out.iloc[at, out.columns.get_loc(name)] = [new[j][name] for j in at]
    out["comparator_row"] = pd.array([None if pd.isna(v) else int(v) for v in out["comparator_row"]], dtype="Int64")
    return out


#: The columns of one table of adjusted means (one model on one outcome).
_TABLE = ["municipality", "source_table", "outcome", "model"]
#: The columns :func:`_difference` reads (as plain lists: row-wise ``.loc`` on a DataFrame is slow).
_READ = [*_TABLE, "arm", "horizon_months", "estimate", "n_arm", "n_obs", "unit", "unit_h", "input_row"]
#: Every column :func:`survey_changes` reads.
SURVEY_READS = [*_READ, "comparator"]


class _Means:
    """The adjusted-mean rows of :func:`survey_differences`, looked up by table, arm and wave; ``col``: the columns
    it reads, as lists by row position."""

    def __init__(self, out: pd.DataFrame, is_mean, outcome: dict, arm: dict):
        self.outcome, self.arm = outcome, arm
        self.col = {c: out[c].tolist() if c in out.columns else [None] * len(out) for c in _READ}
        means = out.loc[is_mean, [*_TABLE, "arm", "horizon_months", "n_arm"]]  # the columns read here
        # questionnaire answers per table: every arm at every measurement (baseline included), as the model's N
        # counts them
        self.answers = means[means["horizon_months"].notna()].groupby(_TABLE)["n_arm"].sum(min_count=1).to_dict()
        self.row_of = {(*k, a, int(h)): i for k, a, h, i in zip(means[_TABLE].itertuples(index=False), means["arm"],
                                                                means["horizon_months"].fillna(-1),
                                                                np.flatnonzero(is_mean))}

    def row(self, key: tuple, arm: str, wave: int):
        """Position of ``arm``'s mean at ``wave`` (months) in the table ``key``; None when not printed."""
        return self.row_of.get((*key, arm, wave))


def _difference(i, contrast: str, means: _Means, new: dict) -> list:
    """Make the adjusted mean in row position ``i`` an arm-vs-control effect when it can be one (its new values into
    ``new[i]``); return the positions of the means it uses (empty when it is none: a baseline or 'Totaal' mean gets
    its reason, any other row keeps harmonise's)."""
    col = means.col
    r = {c: col[c][i] for c in _READ}
    h = r["horizon_months"]
    if pd.isna(h):
        new[i] = {"reason": "adjusted mean averaged over all measurements, baseline included ('Totaal' column), not "
                            "an effect at a wave"}
        return []
    if h == 0:
        new[i] = {"reason": "baseline (nulmeting) adjusted mean: a level before treatment, not an effect"}
        return []
    if r["arm"] == "control":
        return []
    arm = means.arm[(r["municipality"], r["arm"])]
    key = tuple(r[c] for c in _TABLE)
    c = means.row(key, "control", int(h))
    a0, c0 = means.row(key, r["arm"], 0), means.row(key, "control", 0)
    if (c is None or (contrast == "change" and (a0 is None or c0 is None)) or not bool(arm["randomised"])
            or arm["arm_class"] in ("reference", "pooled_arms") or r["unit"] != r["unit_h"]):
        return []  # harmonise's reason stands
    pairs = [(i, c)] + ([(a0, c0)] if contrast == "change" else [])
    estimate = col["estimate"]
    yi = float(r["estimate"]) - float(estimate[c])
    if contrast == "change":
        yi -= float(estimate[a0]) - float(estimate[c0])
    lost = _f(means.answers.get(key)) - _f(r["n_obs"])  # NaN when either is unknown
    lost = lost if math.isnan(lost) else max(0.0, lost)
    width = range_width(means.outcome[r["outcome"]])
    hi = 0.0
    for x, y in pairs:
        n1, n0 = _f(col["n_arm"][x]) - lost, _f(col["n_arm"][y]) - lost
        hi += range_bound(width, n1, n0) if n1 > 0 and n0 > 0 else math.inf
    change = new.setdefault(i, {})
    change.update(yi=yi, effective_comparator="control", comparator_row=int(col["input_row"][c]), se_method=SE_METHOD)
    if math.isfinite(hi):
        change.update(sei=hi, sei_high=hi, sei_low=0.0, eligible=True, reason="")
    else:
        change.update(sei=math.nan, sei_low=math.nan, sei_high=math.nan, eligible=False,
                      reason=("no standard error can be derived: the marks test changes over time, not this "
                              f"contrast, and {_no_bound(r, width, lost, means)}"))
    return [c] + ([a0, c0] if contrast == "change" else [])


def _no_bound(r, width: float, lost: float, means: _Means) -> str:
    """Why the range bounds nothing for the survey difference of row ``r``."""
    if not width > 0:
        return (f"the outcome has no upper limit ({means.outcome[r['outcome']]['unit'].replace('_', ' ')}), so its "
                "range bounds nothing")
    if math.isnan(lost):
        return "the model's N (table legend, n_obs) is not transcribed"
    return (f"the table's model N {int(r['n_obs'])} is {int(lost)} below its "
            f"{int(means.answers[tuple(r[c] for c in _TABLE)])} questionnaire answers, which leaves no positive worst-case N")


#: The columns :func:`map_concepts` adds, and those it reads.
MAPPING_COLUMNS = ("concept", "period_concept", "transform", "harmonisation_role", "harmonisation_reason")
_MAPPED_BY = ["municipality", "outcome", "horizon_months"]


def map_concepts(harmonised: pd.DataFrame, register: pd.DataFrame) -> pd.DataFrame:
    """Add ``concept, period_concept, transform, harmonisation_role, harmonisation_reason`` from the register.

    A row is mapped by its own ``(municipality, outcome, horizon)`` row of ``harmonisation.csv``. A municipality
    added later (``meta add``) may have no rows there yet: its row then takes the mapping of the same outcome code
    at the same month of the transcribed municipalities (outcome codes are harmonised definitions, outcomes.csv),
    when they all agree, and its reason says so and asks for a row of its own. Otherwise the role is ``""`` and the
    row is excluded at the concept level with that reason.
    """
    out = harmonised.copy()
    keyed = register[register["outcome"] != ""]
    lookup = {(m, o, h): r for m, o, h, r in zip(keyed["municipality"], keyed["outcome"], keyed["horizon_months"],
                                                 records(keyed))}
    by_code: dict = {}
    for (m, o, h), r in lookup.items():
        by_code.setdefault((o, h), []).append(r)
    fields = ("concept", "period", "transform", "role")
    found = []
    for m, o, h in zip(out["municipality"], out["outcome"], out["horizon_months"]):
        key = (o, "" if pd.isna(h) else str(int(h)))
        r = lookup.get((m, *key))
        if r is None and (m, *key) not in lookup:
            same = by_code.get(key, [])
            if same and m not in {x["municipality"] for x in same} \
                    and len({tuple(x[f] for f in fields) for x in same}) == 1:
                r = {**same[0], "reason": (f"no row of its own in harmonisation.csv: mapped as "
                                           f"{', '.join(sorted({x['municipality'] for x in same}))} map the same "
                                           f"outcome code at {key[1]} months; add a row to confirm it")}
        found.append(r)
    out["concept"] = [r["concept"] if r else "" for r in found]
    out["period_concept"] = [r["period"] if r else "" for r in found]
    out["transform"] = [r["transform"] if r else "" for r in found]
    out["harmonisation_role"] = [r["role"] if r else "" for r in found]
    out["harmonisation_reason"] = [r["reason"] if r else "" for r in found]
    return out


def to_concept_scale(frame: pd.DataFrame, concepts: pd.DataFrame) -> pd.DataFrame:
    """Apply each row's transform: ``yi, sei, sei_low, sei_high`` × factor; ``unit_h`` becomes the concept's unit."""
    out = frame.copy()
    scaled = concept_scale({c: out[c] for c in (*SCALED_VALUES, "transform", "concept", "unit_h")}, concepts)
    for col, values in scaled.items():
        out[col] = values
    return out


#: The values a concept's transform multiplies by its factor (:func:`concept_scale`).
SCALED_VALUES = ("yi", "sei", "sei_low", "sei_high")


def concept_scale(columns: dict, concepts: pd.DataFrame) -> dict:
    """:func:`to_concept_scale` of rows given as columns ({name: Series or array}: :data:`SCALED_VALUES`,
    ``transform``, ``concept``, ``unit_h``): {name: the rows' values on the concept's scale} for the scaled values
    (float arrays) and ``unit_h`` (a list)."""
    factor = np.array([TRANSFORMS[t][2] if t in TRANSFORMS else np.nan for t in columns["transform"].tolist()],
                      dtype=float)
    out = {col: np.asarray(columns[col], dtype=float) * factor for col in SCALED_VALUES}
    unit = dict(zip(concepts["concept"].tolist(), concepts["unit"].tolist()))
    out["unit_h"] = [unit.get(c, u) for c, u in zip(columns["concept"].tolist(), columns["unit_h"].tolist())]
    return out


def concept_periods(register: pd.DataFrame, periods: tuple[str, ...]) -> dict:
    """{concept: the periods (of ``periods``, in that order) in which the register maps or lists it}."""
    pairs = set(zip(register["concept"], register["period"]))
    return {c: tuple(p for p in periods if (c, p) in pairs) for c in dict.fromkeys(register["concept"]) if c}


def not_reported(register: pd.DataFrame) -> pd.DataFrame:
    """The register's ``not_reported`` rows: a concept and period a municipality prints no number for, and why."""
    return register[register["role"] == "not_reported"].reset_index(drop=True)


def effects(inputs, se_policy: str = "central", survey_contrast: str = "change") -> pd.DataFrame:
    """Every input row as an effect: :func:`meta.effects.harmonise.harmonise`, survey differences, then the register;
    ``se_upper_bound_only`` marks rows whose SE is only an upper bound (:func:`meta.effects.se.upper_bound_only`)."""
    return EffectsByChoice(inputs).get(se_policy, survey_contrast)


class EffectsByChoice:
    """:func:`effects` of one set of inputs under each SE policy and survey contrast asked for, each derived once:
    harmonise runs once per SE policy (the survey contrast is applied after it), so a run that also needs the other
    contrast (the sensitivity analysis) does not harmonise the same rows again."""

    def __init__(self, inputs):
        self.inputs = inputs
        self._harmonised: dict = {}  # se_policy → harmonise's rows
        self._effects: dict = {}     # (se_policy, survey_contrast) → effects
        self._mapped: pd.DataFrame | None = None  # the rows' keys and map_concepts' columns, of the first derivation
        self._harmonisation: Harmonisation | None = None  # what no SE policy changes, derived once
        self._survey: dict = {}  # survey contrast → (the columns survey_changes read, its changes)

    def get(self, se_policy: str = "central", survey_contrast: str = "change") -> pd.DataFrame:
        """The rows :func:`effects` gives for ``(se_policy, survey_contrast)`` (the same frame on a second call)."""
        key = (se_policy, survey_contrast)
        if key not in self._effects:
            inputs = self.inputs
            if se_policy not in self._harmonised:
                if self._harmonisation is None:
                    self._harmonisation = Harmonisation(inputs.estimates, inputs.outcomes, inputs.arms, inputs.legends)
                self._harmonised[se_policy] = self._harmonisation.under(se_policy)
            h = self._map_concepts(self._survey_differences(self._harmonised[se_policy], survey_contrast))
            # the SE is only an upper bound: interval an outer bound, p an upper bound (meta.effects.se.upper_bound_only)
            self._effects[key] = h.assign(se_upper_bound_only=upper_bound_only(h["sei"], h["sei_low"], h["sei_high"]))
        return self._effects[key]

    def _survey_differences(self, h: pd.DataFrame, contrast: str) -> pd.DataFrame:
        """:func:`survey_differences` of ``h``, its changes worked out once per contrast: they read only columns of
        the printed rows (:data:`SURVEY_READS`), which no SE policy changes, so the other policy's rows (the same
        values in those columns) take the same changes."""
        read = h[[c for c in SURVEY_READS if c in h.columns]]
        if contrast not in self._survey or not read.equals(self._survey[contrast][0]):
            self._survey[contrast] = (read, survey_changes(h, self.inputs.outcomes, self.inputs.arms, contrast))
        return with_survey_changes(h, self._survey[contrast][1])

    def _map_concepts(self, h: pd.DataFrame) -> pd.DataFrame:
        """:func:`map_concepts` of ``h``, worked out once: it reads only each row's municipality, outcome and horizon,
        which no SE policy or survey contrast changes, so a later derivation with the same keys (in the same rows)
        takes the columns of the first."""
        keys = h[_MAPPED_BY]
        if self._mapped is not None and keys.equals(self._mapped[_MAPPED_BY]):
            return h.assign(**{c: self._mapped[c] for c in MAPPING_COLUMNS})
        out = map_concepts(h, self.inputs.harmonisation)
        self._mapped = out[[*_MAPPED_BY, *MAPPING_COLUMNS]]
        return out

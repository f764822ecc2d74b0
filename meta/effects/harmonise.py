"""Harmonise transcribed rows into effects ``yi`` with standard errors ``sei`` (stage 2).

Each input row of ``estimates.csv`` is turned into an effect on its outcome's harmonised unit (percentage points
for shares, scale points for survey indices) with a standard error and the method that produced it (the
formulas are in :mod:`meta.effects.se`):

====================================  ====================================================
``se_method``                         how ``sei`` was obtained
====================================  ====================================================
``reported_se``                       printed standard error
``from_ci``                           (ci_high − ci_low) / (2 z_{(1+level)/2})
``from_p``                            |estimate| / z_{1−p/2} (exact two-sided p)
``from_shares_binomial``              √(p₁(1−p₁)/n₁ + p₀(1−p₀)/n₀), unadjusted; also used
                                      for arm shares printed as levels, differenced
                                      against the control share of the same column
``from_shares_binomial_and_marks``    the binomial SE, checked against the printed
                                      mark: ``sei_low``/``sei_high`` are the intersection
                                      of the binomial SE's rounding range with the
                                      mark's bracket (:func:`~meta.effects.se.shares_and_mark`)
``from_significance_marks``           the bracket the printed mark implies
                                      (:func:`~meta.effects.se.mark_bracket`), capped by the
                                      range bound and narrowed by the common-SE constraint
====================================  ====================================================

A row whose binomial SE lies outside the bracket of its printed mark is not pooled: its ``reason`` says that the
two contradict (``excluded.csv``). For the range bound, when the analysed N per arm is not printed but the
randomised N per arm and the table's total N are, the worst case is used: every lost participant taken from the
arm in question (:func:`_analysis_n`). Rows of one table that share municipality, outcome, horizon, model and
population form one regression for the common-SE constraint (:func:`_common_se_step`).

The value used from a mark's bracket is the plan's ``se_policy`` (:func:`~meta.effects.se.se_from_bracket`, the
one place for the rule; ``meta simulate`` uses it too). Both bounds are kept as ``sei_low`` and ``sei_high``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from meta.effects.se import (binomial_se, binomial_se_range, central_value, common_se, common_se_factor, half_unit,
                             mark_bracket, range_bound, se_from_ci, se_from_p, shares_and_mark)
from meta.read.schema import TREATMENT_COMPONENTS
from meta.read import reader

__all__ = ["SE_METHODS", "SE_SOURCE_COLUMN", "TO_PERCENTAGE_POINTS", "harmonise", "arm_components", "range_width"]

#: Each SE method (module docstring) and the input column it derives the SE from (messages name file, row and column).
SE_SOURCE_COLUMN = {"reported_se": "se", "from_ci": "ci_low", "from_p": "p_value", "from_shares_binomial": "share_arm",
                    "from_shares_binomial_and_marks": "share_arm", "from_significance_marks": "significance"}
SE_METHODS = tuple(SE_SOURCE_COLUMN)
#: Factor from a row's printed unit to the harmonised unit of a share outcome.
TO_PERCENTAGE_POINTS = {"proportion": 100.0, "percent": 1.0, "percentage_points": 1.0}
#: Arm classes that are no single randomised arm: never pooled, never differenced against control.
_NOT_ONE_ARM = ("reference", "pooled_arms")
#: The columns of one regression (the common-SE constraint).
_REGRESSION = ["municipality", "source_table", "outcome", "horizon_months", "model", "population"]


@dataclass
class _Lookup:
    """The registers as plain dicts (row-wise ``.loc`` lookups on DataFrames dominate the run time otherwise),
    and the control levels that arm levels can be differenced against."""

    outcome: dict        # outcome code → register row
    arm: dict            # (municipality, arm) → register row
    legend: dict         # (source_file, source_table, mark) → (p_below, p_at_least, two_sided)
    n_rand: dict         # (municipality, arm) → randomised N, for arms with a known one
    rand_arms_of: dict   # municipality → its randomised arms that are one arm (for the worst-case N)
    control_level: dict  # _level_key → the control group's level row
    level_users: dict    # _level_key → input rows of arm levels differenced against that control level
    factor_of: dict = field(default_factory=dict)  # (n_a, n_b) → common_se_factor, computed once per pair


@dataclass
class _Effect:
    """One row's effect on the harmonised scale, as far as its own printed numbers say."""

    yi: float = math.nan
    sei: float = math.nan
    sei_low: float = math.nan
    sei_high: float = math.nan
    se_method: str = ""
    unit_h: str = ""
    reason: str = ""
    comparator_row: int | None = None  # input row of the control level a derived difference uses
    factor: float = math.nan           # √(1/n_a + 1/n_b) of the common-SE constraint (1 when N is unknown)
    mark: tuple | None = None          # (p_below, p_at_least, two_sided) of an SE from the significance mark
    conflict: str = ""                 # the binomial SE lies outside the bracket of the row's own mark

    def set_se(self, se: float, method: str) -> None:
        """An SE known exactly: ``sei = sei_low = sei_high``."""
        self.sei = self.sei_low = self.sei_high = se
        self.se_method = method


def harmonise(estimates: pd.DataFrame, outcomes: pd.DataFrame, arms: pd.DataFrame, legends: pd.DataFrame,
              se_policy: str = "central") -> pd.DataFrame:
    """Add ``yi, sei, sei_low, sei_high, se_method, unit_h, arm_class, arm_components, eligible, reason``.

    Parameters
    ----------
    estimates : DataFrame
        Validated rows of ``estimates.csv`` (with ``input_row``).
    outcomes, arms, legends : DataFrame
        The registers.
    se_policy : {"central", "conservative"}
        Which value of a significance-mark bracket is used as ``sei``.

    Returns
    -------
    DataFrame
        One row per input row, in input order. ``eligible`` is true for rows that
        are randomised arm-versus-control effects with a usable SE; otherwise
        ``reason`` says why the row cannot be pooled. ``effective_comparator`` and ``comparator_row`` name the
        control level a derived difference uses.
    """
    _check_policy(se_policy)
    return Harmonisation(estimates, outcomes, arms, legends).under(se_policy)


def _check_policy(se_policy: str) -> None:
    if se_policy not in ("central", "conservative"):
        raise ValueError(f"se_policy must be 'central' or 'conservative', not {se_policy!r}")


class Harmonisation:
    """:func:`harmonise` in two steps: what no SE policy changes, worked out once (the registers as dicts, each
    row's effect from its own printed numbers: ``yi``, the SE or a mark's bracket), and :meth:`under` a policy, which
    narrows the mark brackets of each regression, picks each mark row's ``sei`` and decides the pooling on copies of
    those effects. A run that needs both policies (the sensitivity analysis) derives the rows' effects once."""

    def __init__(self, estimates: pd.DataFrame, outcomes: pd.DataFrame, arms: pd.DataFrame, legends: pd.DataFrame):
        self.estimates = estimates
        self.records = reader.records(estimates)
        self.look = _lookup(self.records, outcomes, arms, legends)
        self.effects = [_row_effect(r, self.look) for r in self.records]

    def under(self, se_policy: str = "central") -> pd.DataFrame:
        """:func:`harmonise`'s rows under ``se_policy``."""
        _check_policy(se_policy)
        effects = [copy.copy(e) for e in self.effects]  # the common-SE step and the pooling decision change them
        _common_se_step(self.estimates, effects, se_policy)
        eligible = [_decide_pooling(r, e, self.look.arm) for r, e in zip(self.records, effects)]
        return _with_effects(self.estimates, effects, eligible, self.look.arm)


def _lookup(records: list[dict], outcomes: pd.DataFrame, arms: pd.DataFrame, legends: pd.DataFrame) -> _Lookup:
    """The registers as dicts, and which control levels of ``records`` arm levels are differenced against."""
    arm_meta = {(r["municipality"], r["arm"]): r for r in reader.records(arms)}
    legend = {(f, t, m): (pb, pa, str(ts).lower() != "false")
              for f, t, m, pb, pa, ts in zip(legends["source_file"], legends["source_table"], legends["mark"],
                                             legends["p_below"], legends["p_at_least"], legends["two_sided"])}
    n_rand = _worst_case_n(arms)
    rand_arms_of = {
        m: [a for (mm, a) in n_rand if mm == m and bool(arm_meta[(mm, a)]["randomised"])
            and arm_meta[(mm, a)]["arm_class"] not in _NOT_ONE_ARM]
        for m in set(arms["municipality"])
    }
    # levels (comparator "none"): arm shares with N can be differenced against the control share of the same column
    control_level = {_level_key(r): r for r in records if r["comparator"] == "none" and r["arm"] == "control"}
    level_users: dict = {}
    for r in records:
        if r["comparator"] == "none" and r["arm"] != "control" and _level_key(r) in control_level:
            level_users.setdefault(_level_key(r), []).append(int(r["input_row"]))
    return _Lookup({r["outcome"]: r for r in reader.records(outcomes)}, arm_meta, legend, n_rand, rand_arms_of,
                   control_level, level_users)


def _unit_factor(unit: str, target: str) -> float | None:
    """Factor from a row's printed ``unit`` to its outcome's harmonised unit ``target``; None when there is none."""
    if target == "percentage_points":
        return TO_PERCENTAGE_POINTS.get(unit)
    return 1.0 if unit == target else None


def _row_effect(r: dict, look: _Lookup) -> _Effect:
    """The effect of one row from its own printed numbers (levels: from the control level of the same column)."""
    outcome = look.outcome[r["outcome"]]
    target = outcome["unit"]
    f = _unit_factor(r["unit"], target)
    if f is None:
        return _Effect(reason=f"unit {r['unit']!r} cannot be converted to the outcome's unit {target!r}")
    if r["comparator"] == "none":
        return _level_effect(r, target, look)
    return _contrast_effect(r, f, outcome, look)


def _level_effect(r: dict, target: str, look: _Lookup) -> _Effect:
    """A level of one group: an arm's share minus the control share of the same column (binomial SE), when both
    are printed with N and the arm is one randomised arm; otherwise a reason."""
    e = _Effect(unit_h=target)
    ctrl = look.control_level.get(_level_key(r))
    arm_row = look.arm[(r["municipality"], r["arm"])]
    if r["arm"] == "control":
        users = look.level_users.get(_level_key(r), [])
        e.reason = ("level of the control group; used as the comparator share of derived differences "
                    f"(input rows {', '.join(map(str, users))})" if users
                    else "level of the control group, not an effect")
    elif (ctrl is not None and target == "percentage_points" and _has_share_n(r) and _has_share_n(ctrl)
          and bool(arm_row["randomised"]) and arm_row["arm_class"] not in _NOT_ONE_ARM):
        p1, p0 = r["share_arm"], ctrl["share_arm"]
        e.yi = 100 * (p1 - p0)
        e.set_se(binomial_se(p1, p0, r["n_arm"], ctrl["n_arm"]), "from_shares_binomial")
        e.comparator_row = int(ctrl["input_row"])
    else:
        e.reason = ("level of a non-randomised reference group, not an effect"
                    if arm_row["arm_class"] == "reference" else
                    "level of one group without a control level and N to difference it against")
    return e


def _contrast_effect(r: dict, f: float, outcome: dict, look: _Lookup) -> _Effect:
    """An arm-versus-comparator contrast: ``yi`` in the harmonised unit and its SE by the first method the row's
    printed numbers allow (reported SE, CI, p-value, shares and N, significance mark; module docstring)."""
    e = _Effect(unit_h=outcome["unit"], yi=r["estimate"] * f)
    ra = look.n_rand.get((r["municipality"], r["arm"]))
    rb = look.n_rand.get((r["municipality"], r["comparator"]))
    if (ra, rb) not in look.factor_of:
        look.factor_of[(ra, rb)] = float(common_se_factor(ra, rb))
    e.factor = look.factor_of[(ra, rb)]
    if not pd.isna(r["se"]):
        e.set_se(r["se"] * f, "reported_se")
    elif not (pd.isna(r["ci_low"]) or pd.isna(r["ci_high"])):
        e.set_se(se_from_ci(r["ci_low"], r["ci_high"], r["ci_level"], f), "from_ci")
    elif not pd.isna(r["p_value"]) and 0 < r["p_value"] < 1 and r["estimate"] != 0:
        e.set_se(se_from_p(e.yi, r["p_value"]), "from_p")
    elif not any(pd.isna(r[c]) for c in ("share_arm", "share_control", "n_arm", "n_control")):
        _shares_se(e, r, half_unit(r["printed"]) * f, look.legend)
    else:
        # analysed N per side, for the range bound
        n_a = _analysis_n(r, "arm", look.n_rand, look.rand_arms_of)
        n_b = _analysis_n(r, "comparator", look.n_rand, look.rand_arms_of)
        _mark_se(e, r, half_unit(r["printed"]) * f, range_bound(range_width(outcome), n_a, n_b), look.legend)
    return e


def _shares_se(e: _Effect, r: dict, h: float, legend: dict) -> None:
    """The binomial SE from the printed shares and N, checked against the row's significance mark when the mark
    bounds the SE (:func:`~meta.effects.se.shares_and_mark`); a contradiction is kept in ``e.conflict``."""
    p1, p0 = r["share_arm"], r["share_control"]
    s = binomial_se(p1, p0, r["n_arm"], r["n_control"])
    e.set_se(s, "from_shares_binomial")
    key = (r["source_file"], r["source_table"], r["significance"])
    if key not in legend:
        return
    m_lo, m_hi = mark_bracket(abs(e.yi), h, *legend[key])
    if not (m_lo > 0 or math.isfinite(m_hi)):  # the mark bounds nothing
        return
    # the shares are taken to be printed with the effect's decimals (Wageningen Tabel 3.5: 19.6% and 15.4% give
    # 4.2), so each is known to ± h (in pp; /100 as a proportion)
    b_lo, b_hi = binomial_se_range(p1, p0, r["n_arm"], r["n_control"], h / 100)
    both = shares_and_mark(s, (b_lo, b_hi), (m_lo, m_hi))
    if both is None:
        e.conflict = (f"its binomial SE {s:.2f} pp (from the printed shares and N; {_fmt_bracket(b_lo, b_hi)} with "
                      f"their rounding) lies outside the SE bracket {_fmt_bracket(m_lo, m_hi)} that its printed mark "
                      f"{r['significance'] or '(none)'!r} implies: the printed numbers contradict each other, so no "
                      "SE can be trusted")
    else:
        e.sei, e.sei_low, e.sei_high = both
        e.se_method = "from_shares_binomial_and_marks"


def _mark_se(e: _Effect, r: dict, h: float, range_hi: float, legend: dict) -> None:
    """The bracket of the row's significance mark, capped by the range bound ``range_hi``; ``sei`` is chosen
    after the common-SE step. A mark without a legend row is a reason."""
    key = (r["source_file"], r["source_table"], r["significance"])
    if key not in legend:
        e.reason = f"no legend for mark {r['significance']!r} in {r['source_table']}"
        return
    e.mark = legend[key]
    lo, hi = mark_bracket(abs(e.yi), h, *e.mark)
    e.sei_low, e.sei_high = lo, min(hi, range_hi)
    e.se_method = "from_significance_marks"


def _common_se_step(estimates: pd.DataFrame, effects: list[_Effect], se_policy: str) -> None:
    """Narrow the mark brackets of rows of one regression to a common σ (:func:`~meta.effects.se.common_se`; the
    other contrasts of the regression constrain σ too), then choose each mark row's ``sei``
    (:func:`~meta.effects.se.se_from_bracket`)."""
    marks = np.array([e.se_method == "from_significance_marks" for e in effects], dtype=bool)
    lo_b = np.array([e.sei_low for e in effects], dtype=float)
    hi_b = np.array([e.sei_high for e in effects], dtype=float)
    factor = np.array([e.factor for e in effects], dtype=float)
    keys = np.array(["|".join(map(str, t)) for t in zip(*(estimates[c].tolist() for c in _REGRESSION))], dtype=object)
    contrast = estimates["comparator"].to_numpy() != "none"
    for key in pd.unique(keys[marks]):
        idx = np.nonzero((keys == key) & contrast & ~np.isnan(lo_b))[0]
        if len(idx) < 2:
            continue
        new_lo, new_hi = common_se(lo_b[idx], hi_b[idx], factor[idx])
        sel = marks[idx]
        lo_b[idx[sel]], hi_b[idx[sel]] = new_lo[sel], new_hi[sel]
    for i in np.nonzero(marks)[0]:
        e = effects[i]
        e.sei_low, e.sei_high = lo_b[i], hi_b[i]
        e.sei = central_value(lo_b[i], hi_b[i], se_policy, abs(e.yi), *e.mark)


def _decide_pooling(r: dict, e: _Effect, arm_meta: dict) -> bool:
    """Whether the row is a randomised arm-versus-control effect with a usable SE; otherwise ``e.reason`` says why
    (a contradiction between shares and mark is added to any other reason)."""
    if e.reason:
        return False
    arm = arm_meta[(r["municipality"], r["arm"])]
    comp = "control" if e.comparator_row is not None else r["comparator"]
    if r["arm"] == comp:
        e.reason = "change over time within one group, not a contrast between arms"
    elif comp != "control" and arm_meta[(r["municipality"], comp)]["arm_class"] == "reference":
        e.reason = "comparison with a non-randomised reference group (never pooled as an effect)"
    elif comp != "control":
        e.reason = f"between-arm contrast ({r['arm']} vs {comp}), not against the control group"
    elif arm["arm_class"] == "pooled_arms":
        e.reason = "contrast of several arms pooled together, not one arm"
    elif not bool(arm["randomised"]):
        e.reason = "arm is not randomised"
    elif not (e.sei > 0):
        e.reason = ("no standard error can be derived: the significance mark bounds SE only from below "
                    "and no sample sizes bound it from above")
    elif e.conflict:
        e.reason = f"standard error contradicts the printed mark: {e.conflict}"
    if e.conflict and not e.reason.startswith("standard error contradicts"):
        e.reason += f"; besides, {e.conflict}"
    return not e.reason


def _with_effects(estimates: pd.DataFrame, effects: list[_Effect], eligible: list[bool],
                  arm_meta: dict) -> pd.DataFrame:
    """``estimates`` with the columns of :func:`harmonise`."""
    out = estimates.copy()
    out["effective_comparator"] = ["control" if e.comparator_row is not None else c
                                   for e, c in zip(effects, out["comparator"].tolist())]
    out["comparator_row"] = pd.array([e.comparator_row for e in effects], dtype="Int64")
    for col in ("yi", "sei", "sei_low", "sei_high"):
        out[col] = np.array([getattr(e, col) for e in effects], dtype=float)
    out["se_method"] = [e.se_method for e in effects]
    out["unit_h"] = [e.unit_h for e in effects]
    arm_rows = [arm_meta[(m, a)] for m, a in zip(out["municipality"].tolist(), out["arm"].tolist())]
    out["arm_class"] = [a["arm_class"] for a in arm_rows]
    out["arm_components"] = [arm_components(a) for a in arm_rows]
    out["eligible"] = np.array(eligible, dtype=bool)
    out["reason"] = [e.reason for e in effects]
    return out


def _level_key(r) -> tuple:
    """Rows printed in one column of one table: a share per arm there can be differenced against control."""
    return (r["municipality"], r["outcome"], r["horizon_months"], r["model"], r["population"], r["source_table"])


def _has_share_n(r) -> bool:
    return not (pd.isna(r["share_arm"]) or pd.isna(r["n_arm"]))


def _fmt_bracket(lo: float, hi: float) -> str:
    return f"[{lo:.2f}, {hi:.2f}]" if math.isfinite(hi) else f"[{lo:.2f}, ∞)"


def range_width(outcome_row) -> float:
    """Width of the range a person's outcome can take, in the harmonised unit (100 for a share in pp).

    From the register's ``scale_min`` and ``scale_max``; NaN when the outcome is unbounded or they are blank.
    """
    try:
        return float(outcome_row.get("scale_max", "")) - float(outcome_row.get("scale_min", ""))
    except (TypeError, ValueError):
        return math.nan


def _worst_case_n(arms: pd.DataFrame) -> dict:
    """{(municipality, arm): n_randomised} for arms with a known randomised N."""
    known = arms.dropna(subset=["n_randomised"])
    return {(m, a): int(n) for m, a, n in zip(known["municipality"], known["arm"], known["n_randomised"])}


def _analysis_n(row, side: str, n_rand: dict, rand_arms_of: dict) -> float:
    """Analysed N of one side of a contrast: printed, else the worst case from randomised N and the table's N.

    Worst case: every participant the table lost (Σ randomised N of the municipality's arms − the table's N) taken
    from this side. NaN when neither is known or nothing is left.
    """
    printed = row["n_arm"] if side == "arm" else row["n_control"]
    if not pd.isna(printed):
        return float(printed)
    code = row["arm"] if side == "arm" else row["comparator"]
    n = n_rand.get((row["municipality"], code))
    n_table = row.get("n_table")
    if n is None or n_table is None or pd.isna(n_table):
        return math.nan
    total = sum(n_rand[(row["municipality"], a)] for a in rand_arms_of[row["municipality"]])
    lost = max(0, total - int(n_table))
    return float(n - lost) if n - lost > 0 else math.nan


def arm_components(arm) -> str:
    """Describe an arm by its components, e.g. ``exemption + release 50% ≤ €200/month``."""
    parts = []
    for comp in TREATMENT_COMPONENTS:
        if int(arm[comp]) == 1:
            text = comp.replace("_", " ")
            if comp == "release":
                pct, cap = arm.get("release_pct", ""), arm.get("release_cap_eur_month", "")
                detail = " ".join(x for x in (f"{pct}%" if pct else "", f"≤ €{cap}/month" if cap else "") if x)
                text = f"release {detail}".strip()
            parts.append(text)
    if not parts:
        return "reference group (not randomised)" if arm["arm_class"] == "reference" else "control (usual regime)"
    return " + ".join(parts)

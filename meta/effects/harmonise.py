"""Harmonise transcribed rows into effects ``yi`` with standard errors ``sei`` (stage 2).

Each input row of ``estimates.csv`` is turned into an effect on its outcome's
harmonised unit (percentage points for shares, scale points for survey
indices) with a standard error and the method that produced it:

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
                                      mark's bracket (:func:`shares_and_mark`)
``from_significance_marks``           the bracket the printed mark implies (below)
====================================  ====================================================

A row whose binomial SE lies outside the bracket of its printed mark is not
pooled: its ``reason`` says that the two contradict (``excluded.csv``).

Significance marks bound |estimate|/SE. A mark meaning p ∈ [p_at_least, p_below)
for a two-sided z test gives

    (|e| − h) / z_{1−p_at_least/2}  ≤  SE  <  (|e| + h) / z_{1−p_below/2},

where h is half a unit of the last printed decimal of the number itself (the
estimate was rounded; :func:`half_unit` cuts off marks and footnote digits first).
``*`` (p below a threshold) bounds SE from above, no mark from below, ``~``
both. Two further constraints narrow the bracket:

* **Range bound.** For an outcome bounded on [a, b] the variance of one person's
  outcome is at most (b − a)²/4 (Popoviciu's inequality; 1/4 for a share), so
  the unadjusted difference of two arm means has SE ≤ (b − a)/2 · √(1/n₁ + 1/n₀).
  When the analysed N per arm is not printed but the randomised N per arm and
  the table's total N are, the worst case is used: every lost participant taken
  from the arm in question. Covariate adjustment (LOEP models) does not make SEs
  larger in practice; that is the assumption behind using this for adjusted
  estimates, stated in ``inputs/README.md``.
* **Common SE.** Rows of one table that share municipality, outcome, horizon,
  model and population come from one regression on one sample, so their SEs are
  σ·√(1/n_a + 1/n_b) for a common σ (with equal factors where arm sizes are
  unknown). The σ brackets of the rows are intersected and mapped back.

The value used is a setting (:func:`se_from_bracket`, the one place for the rule;
``meta simulate`` uses it too): ``central`` keeps a ``*`` row significant as
printed (its p-value at half the threshold) and otherwise takes the bracket's
geometric centre √(max(lo, hi/3)·hi) (:func:`bracket_centre`), continuous and
monotone in both bounds; ``conservative`` always takes the upper bound. Both
bounds are kept as ``sei_low`` and ``sei_high``.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
from scipy import special

from meta.read.schema import TREATMENT_COMPONENTS

SE_METHODS = (
    "reported_se", "from_ci", "from_p", "from_shares_binomial", "from_shares_binomial_and_marks",
    "from_significance_marks",
)
#: Factor from a row's printed unit to the harmonised unit of a share outcome.
TO_PERCENTAGE_POINTS = {"proportion": 100.0, "percent": 1.0, "percentage_points": 1.0}

#: A printed number: optional signs (a doubled minus occurs: Wageningen A.2 '--.67***'), digits with an optional
#: decimal part, or a decimal part alone ('.47*', '-.88**'); decimal point or comma.
_NUMBER = re.compile(r"(?P<sign>[-+\u2212]*)(?:(?P<int>\d+)(?:[.,](?P<dec>\d+))?|[.,](?P<dec_only>\d+))")
#: Marks printed after a number: stars, '~', footnote marks glued on ('4.291)' is 4.29 with footnote 1),
#: Wageningen 3.13 '6.36*1)'), and the percent sign ('11.4%1)').
_TRAILING_MARKS = re.compile(r"(?:\*+|~|\d\)|%)+$")


def _number_part(printed: str, mark: str = "") -> str:
    """The number of a printed token without the marks after it.

    ``mark`` is the row's ``significance`` as printed; when the token ends with it, exactly that is cut off first
    (so a footnote digit is never read as a decimal). Then any remaining trailing stars, '~', footnote marks 'd)'
    and '%' are cut off; a letter l after a digit is the digit 1 as the PDF extraction misread it (Wageningen
    Tabel 3.9 '5.7l', transcribed as 5.71; ``inputs/notes/wageningen_transcription.md``).
    """
    token = str(printed).strip()
    mark = "" if mark is None or (isinstance(mark, float) and math.isnan(mark)) else str(mark).strip()
    if mark and token.endswith(mark) and len(token) > len(mark):
        token = token[: -len(mark)]
    token = _TRAILING_MARKS.sub("", token)
    return re.sub(r"(?<=[\d.,])l", "1", token)


def printed_value(printed: str, mark: str = "") -> float:
    """The number a printed token stands for: ``'-.88**'`` → −0.88, ``'-4.71)'`` (mark ``1)``) → −4.7, ``'6,4%*'`` → 6.4.

    NaN when the token holds no number.
    """
    m = _NUMBER.search(_number_part(printed, mark))
    if not m:
        return math.nan
    whole = m.group("int") or "0"
    dec = m.group("dec") if m.group("int") else m.group("dec_only")
    value = float(f"{whole}.{dec}" if dec else whole)
    return -value if m.group("sign").count("-") + m.group("sign").count("\u2212") else value


def half_unit(printed: str, mark: str = "") -> float:
    """Half a unit of the last decimal printed in ``printed``: the rounding error of the printed number.

    ``-0,11*`` → 0.005; ``.47*`` and ``-.88**`` → 0.005 (no leading digit); ``-4.71)`` with mark ``1)`` → 0.05
    (the footnote digit is not a decimal); ``23,3%`` → 0.05; ``12`` → 0.5. ``mark`` is the row's printed
    significance mark (see :func:`printed_value` for how marks are cut off). NaN when ``printed`` holds no number.
    """
    m = _NUMBER.search(_number_part(printed, mark))
    if not m:
        return math.nan
    dec = m.group("dec") if m.group("int") else m.group("dec_only")
    return 0.5 * 10.0 ** (-len(dec or ""))


def z_crit(p: float, two_sided: bool = True) -> float:
    """The z value whose (two-sided) tail probability is ``p``."""
    return float(-special.ndtri(p / 2 if two_sided else p))  # scipy.stats.norm.isf


def mark_bracket(abs_est: float, h: float, p_below: float, p_at_least: float, two_sided: bool = True):
    """SE bracket implied by p ∈ [p_at_least, p_below) for an estimate printed as ``abs_est`` ± ``h``.

    Returns (sei_low, sei_high); 0 and inf where the mark gives no bound.
    """
    lo, hi = 0.0, math.inf
    if not math.isnan(p_below) and p_below < 1:
        hi = (abs_est + h) / z_crit(p_below, two_sided)
    if not math.isnan(p_at_least) and p_at_least > 0:
        lo = max(0.0, abs_est - h) / z_crit(p_at_least, two_sided)
    return lo, hi


def range_bound(range_width: float, n_arm: float, n_control: float) -> float:
    """Largest possible SE of an unadjusted difference of means of an outcome bounded on a range of ``range_width``.

    SE ≤ (width/2)·√(1/n₁ + 1/n₀) (Popoviciu: Var ≤ width²/4). inf when an N is unknown.
    """
    if not (range_width > 0) or not (n_arm > 0) or not (n_control > 0):
        return math.inf
    return range_width / 2 * math.sqrt(1 / n_arm + 1 / n_control)


#: How wide (hi/lo) a bracket may be before its lower bound is treated as uninformative by the ``central`` rule.
CENTRAL_MAX_RATIO = 3.0


def bracket_centre(lo, hi, max_ratio: float = CENTRAL_MAX_RATIO):
    """Geometric centre of the SE bracket [lo, hi], with the lower bound floored at hi / ``max_ratio``.

    centre = √(max(lo, hi/R) · hi),  R = ``max_ratio``.

    An SE is a scale: the centre of [lo, hi] on the log scale (the median of a log-uniform distribution on the
    bracket, the scale-invariant choice) is the geometric mean √(lo·hi). A lower bound far below hi (an unmarked
    estimate near zero gives lo ≈ 0) says nearly nothing, and the geometric mean would follow it to zero; below
    hi/R the lower bound is therefore replaced by hi/R, so such a bracket gets hi/√R (0.577·hi for R = 3). For the
    range bound of a share this is the SE of a share of about 10% where the bound assumes 50%.

    The centre is continuous and non-decreasing in lo and in hi (1-Lipschitz in each), and lies in [lo, hi] when
    0 ≤ lo ≤ hi. Works element-wise on arrays.
    """
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return np.sqrt(np.maximum(lo, hi / max_ratio) * hi)


def se_from_bracket(lo, hi, policy: str, abs_est=math.nan, p_below=math.nan, p_at_least=math.nan,
                    two_sided=True):
    """The SE used from a bracket [lo, hi] reconstructed from a significance mark (element-wise on arrays).

    ``conservative`` → hi, the largest SE the mark and the range allow.

    ``central`` →

    * a mark that only says "p below a threshold" (Nijmegen ``*`` p < 0.05, Wageningen ``***`` p < 0.01):
      the SE at which the printed estimate's p-value is half the threshold, |e| / z_{1−p_below/4} (two-sided),
      clipped into [lo, hi], so the row stays significant as printed;
    * any other bracket (a band such as ``~`` or Wageningen ``*``/``**``, or no mark with an upper bound from
      the range or the regression's other rows): :func:`bracket_centre`, √(max(lo, hi/3) · hi).

    Both are continuous and non-decreasing in lo and hi. (The rule before 2026-12 took the midpoint when
    hi/lo ≤ 3 and hi otherwise: it jumped at hi/lo = 3 and fell when lo rose, so a larger unmarked estimate
    could get half the SE of a slightly smaller one.) NaN when hi is not finite: nothing bounds the SE from
    above, so no SE is derivable.
    """
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    if policy not in ("central", "conservative"):
        raise ValueError(f"policy must be 'central' or 'conservative', not {policy!r}")
    finite = np.isfinite(hi)
    if policy == "conservative":
        return np.where(finite, hi, np.nan)
    abs_est, p_below, p_at_least = (np.asarray(x, float) for x in (abs_est, p_below, p_at_least))
    star = (p_below < 1) & ~(p_at_least > 0) & (abs_est > 0)  # NaN compares False: no bound from the mark
    q = np.where(star, 0.5 * p_below, 0.5)
    z = np.where(np.asarray(two_sided, bool), -special.ndtri(q / 2), -special.ndtri(q))  # scipy.stats.norm.isf
    with np.errstate(invalid="ignore", divide="ignore"):
        star_se = np.minimum(np.maximum(abs_est / z, lo), hi)
        se = np.where(star, star_se, bracket_centre(lo, hi))
    return np.where(finite, se, np.nan)


def central_value(lo: float, hi: float, policy: str, abs_est: float = math.nan, p_below: float = math.nan,
                  p_at_least: float = math.nan, two_sided: bool = True) -> float:
    """:func:`se_from_bracket` for one row (a float)."""
    return float(se_from_bracket(lo, hi, policy, abs_est, p_below, p_at_least, two_sided))


def common_se(lo, hi, factor):
    """Intersect the σ-brackets of rows estimated in one regression and map them back (the common-SE constraint).

    Rows of one regression have SE_j = σ·f_j (f_j = √(1/n_j + 1/n_control), or 1 when N is unknown), so
    σ ∈ [max_j lo_j/f_j, min_j hi_j/f_j]. When that interval is not empty every row's bracket becomes
    [max(lo_j, σ_lo·f_j), min(hi_j, σ_hi·f_j)]; otherwise the rows keep their own brackets.

    Parameters
    ----------
    lo, hi, factor : arrays whose last axis runs over the rows of one regression (leading axes: independent
        regressions, e.g. simulation replications).

    Returns
    -------
    lo, hi : the narrowed brackets, same shape.
    """
    lo, hi, factor = np.asarray(lo, float), np.asarray(hi, float), np.asarray(factor, float)
    s_lo = (lo / factor).max(axis=-1, keepdims=True)
    s_hi = (hi / factor).min(axis=-1, keepdims=True)
    ok = s_lo <= s_hi
    return (np.where(ok, np.maximum(lo, s_lo * factor), lo), np.where(ok, np.minimum(hi, s_hi * factor), hi))


def binomial_se(p1, p0, n1, n0) -> float:
    """SE of a difference of two independent shares in percentage points: 100·√(p₁(1−p₁)/n₁ + p₀(1−p₀)/n₀)."""
    return 100 * math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)


def _share_variance_range(p: float, h: float) -> tuple[float, float]:
    """Smallest and largest p(1−p) for a share printed as ``p`` ± ``h`` (p(1−p) rises up to p = ½, then falls)."""
    a, b = max(p - h, 0.0), min(p + h, 1.0)
    ends = (a * (1 - a), b * (1 - b))
    return min(ends), (0.25 if a <= 0.5 <= b else max(ends))


def binomial_se_range(p1, p0, n1, n0, h_share: float) -> tuple[float, float]:
    """Range of :func:`binomial_se` over shares within ± ``h_share`` of the printed ones (rounding), in pp."""
    v1, v0 = _share_variance_range(p1, h_share), _share_variance_range(p0, h_share)
    return (100 * math.sqrt(v1[0] / n1 + v0[0] / n0), 100 * math.sqrt(v1[1] / n1 + v0[1] / n0))


def shares_and_mark(se_binomial: float, binomial_range: tuple[float, float], mark_range: tuple[float, float]):
    """Check a binomial SE against the bracket of the printed significance mark of the same estimate.

    Both say something about the SE of the printed difference: the shares and N give it up to the rounding of
    the shares (``binomial_range``), the mark bounds it, (|e| − h)/z_{1−p_at_least/2} ≤ SE < (|e| + h)/z_{1−p_below/2}
    (``mark_range``, :func:`mark_bracket`). Their intersection [max of the lower bounds, min of the upper bounds]
    is what both allow.

    Returns
    -------
    (sei, sei_low, sei_high) with sei the binomial SE moved into the intersection (itself when it lies inside),
    or None when the intersection is empty: the printed numbers contradict each other.
    """
    lo = max(binomial_range[0], mark_range[0])
    hi = min(binomial_range[1], mark_range[1])
    if not lo <= hi:
        return None
    return min(max(se_binomial, lo), hi), lo, hi


def _fmt_bracket(lo: float, hi: float) -> str:
    return f"[{lo:.2f}, {hi:.2f}]" if math.isfinite(hi) else f"[{lo:.2f}, ∞)"


def _worst_case_n(arms: pd.DataFrame) -> dict:
    """{(municipality, arm): n_randomised} for arms with a known randomised N."""
    known = arms.dropna(subset=["n_randomised"])
    return {(m, a): int(n) for m, a, n in zip(known["municipality"], known["arm"], known["n_randomised"])}


def _analysis_n(row, side: str, n_rand: dict, rand_arms_of: dict) -> float:
    """Analysed N of one side of a contrast: printed, else the worst case from randomised N and the table's N."""
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
        ``reason`` says why the row cannot be pooled.
    """
    if se_policy not in ("central", "conservative"):
        raise ValueError(f"se_policy must be 'central' or 'conservative', not {se_policy!r}")
    out = estimates.copy()
    # registers as plain dicts: row-wise .loc lookups on DataFrames dominate the run time otherwise
    out_meta = {r["outcome"]: r for r in outcomes.to_dict("records")}
    arm_meta = {(r["municipality"], r["arm"]): r for r in arms.to_dict("records")}
    records = out.to_dict("records")
    legend = {(f, t, m): (pb, pa, str(ts).lower() != "false")
              for f, t, m, pb, pa, ts in zip(legends["source_file"], legends["source_table"], legends["mark"],
                                             legends["p_below"], legends["p_at_least"], legends["two_sided"])}
    n_rand = _worst_case_n(arms)
    rand_arms_of = {
        m: [a for (mm, a) in n_rand if mm == m and bool(arm_meta[(mm, a)]["randomised"])
            and arm_meta[(mm, a)]["arm_class"] not in ("pooled_arms", "reference")]
        for m in set(arms["municipality"])
    }

    # levels (comparator "none"): arm shares with N can be differenced against the control share of the same column
    control_level = {_level_key(r): r for r in records if r["comparator"] == "none" and r["arm"] == "control"}
    level_users: dict = {}
    for r in records:
        if r["comparator"] == "none" and r["arm"] != "control" and _level_key(r) in control_level:
            level_users.setdefault(_level_key(r), []).append(int(r["input_row"]))
    derived_from = [None] * len(out)

    n = len(out)
    yi = np.full(n, np.nan)
    sei = np.full(n, np.nan)
    lo_b = np.full(n, np.nan)
    hi_b = np.full(n, np.nan)
    method = [""] * n
    unit_h = [""] * n
    eligible = np.zeros(n, dtype=bool)
    reason = [""] * n
    factor = np.full(n, np.nan)  # √(1/n_a + 1/n_b) for the common-SE constraint (1 if unknown)
    mark_range = [None] * n  # (p_below, p_at_least, two_sided) of the row's significance mark
    range_hi = np.full(n, np.inf)
    conflict = [""] * n  # binomial SE outside the bracket of the row's own mark

    for i, r in enumerate(records):
        o = out_meta[r["outcome"]]
        target = o["unit"]
        if target == "percentage_points":
            f = TO_PERCENTAGE_POINTS.get(r["unit"])
        else:
            f = 1.0 if r["unit"] == target else None
        if f is None:
            reason[i] = f"unit {r['unit']!r} cannot be converted to the outcome's unit {target!r}"
            continue
        unit_h[i] = target
        if r["comparator"] == "none":
            ctrl = control_level.get(_level_key(r))
            arm_row = arm_meta[(r["municipality"], r["arm"])]
            if r["arm"] == "control":
                users = level_users.get(_level_key(r), [])
                reason[i] = ("level of the control group; used as the comparator share of derived differences "
                             f"(input rows {', '.join(map(str, users))})" if users
                             else "level of the control group, not an effect")
            elif (ctrl is not None and target == "percentage_points" and _has_share_n(r) and _has_share_n(ctrl)
                  and bool(arm_row["randomised"]) and arm_row["arm_class"] not in ("reference", "pooled_arms")):
                p1, p0 = r["share_arm"], ctrl["share_arm"]
                n1, n0 = r["n_arm"], ctrl["n_arm"]
                yi[i] = 100 * (p1 - p0)
                s = binomial_se(p1, p0, n1, n0)
                sei[i] = lo_b[i] = hi_b[i] = s
                method[i] = "from_shares_binomial"
                derived_from[i] = int(ctrl["input_row"])
            else:
                reason[i] = ("level of a non-randomised reference group, not an effect"
                             if arm_row["arm_class"] == "reference" else
                             "level of one group without a control level and N to difference it against")
            continue
        yi[i] = r["estimate"] * f
        h = half_unit(r["printed"], r["significance"]) * f
        # analysed N per side (for the range bound and the common-SE factor)
        n_a = _analysis_n(r, "arm", n_rand, rand_arms_of)
        n_b = _analysis_n(r, "comparator", n_rand, rand_arms_of)
        ra = n_rand.get((r["municipality"], r["arm"]))
        rb = n_rand.get((r["municipality"], r["comparator"]))
        factor[i] = math.sqrt(1 / ra + 1 / rb) if (ra and rb) else 1.0
        range_hi[i] = range_bound(_range_width(o), n_a, n_b)

        if not pd.isna(r["se"]):
            sei[i] = lo_b[i] = hi_b[i] = r["se"] * f
            method[i] = "reported_se"
        elif not (pd.isna(r["ci_low"]) or pd.isna(r["ci_high"])):
            s = (r["ci_high"] - r["ci_low"]) * f / (2 * z_crit(1 - r["ci_level"] / 100))
            sei[i] = lo_b[i] = hi_b[i] = s
            method[i] = "from_ci"
        elif not pd.isna(r["p_value"]) and 0 < r["p_value"] < 1 and r["estimate"] != 0:
            s = abs(yi[i]) / z_crit(r["p_value"])
            sei[i] = lo_b[i] = hi_b[i] = s
            method[i] = "from_p"
        elif not any(pd.isna(r[c]) for c in ("share_arm", "share_control", "n_arm", "n_control")):
            p1, p0 = r["share_arm"], r["share_control"]
            s = binomial_se(p1, p0, r["n_arm"], r["n_control"])
            sei[i] = lo_b[i] = hi_b[i] = s
            method[i] = "from_shares_binomial"
            key = (r["source_file"], r["source_table"], r["significance"])
            if key in legend:
                p_below, p_at_least, two_sided = legend[key]
                m_lo, m_hi = mark_bracket(abs(yi[i]), h, p_below, p_at_least, two_sided)
                if m_lo > 0 or math.isfinite(m_hi):  # the mark bounds the SE: check the two against each other
                    # the shares are taken to be printed with the effect's decimals (Wageningen Tabel 3.5: 19.6% and
                    # 15.4% give 4.2), so each is known to ± h (in pp; /100 as a proportion)
                    b_lo, b_hi = binomial_se_range(p1, p0, r["n_arm"], r["n_control"], h / 100)
                    both = shares_and_mark(s, (b_lo, b_hi), (m_lo, m_hi))
                    if both is None:
                        conflict[i] = (f"its binomial SE {s:.2f} pp (from the printed shares and N; "
                                       f"{_fmt_bracket(b_lo, b_hi)} with their rounding) lies outside the SE bracket "
                                       f"{_fmt_bracket(m_lo, m_hi)} that its printed mark "
                                       f"{r['significance'] or '(none)'!r} implies: the printed numbers contradict "
                                       "each other, so no SE can be trusted")
                    else:
                        sei[i], lo_b[i], hi_b[i] = both
                        method[i] = "from_shares_binomial_and_marks"
        else:
            key = (r["source_file"], r["source_table"], r["significance"])
            if key not in legend:
                reason[i] = f"no legend for mark {r['significance']!r} in {r['source_table']}"
                continue
            p_below, p_at_least, two_sided = legend[key]
            lo, hi = mark_bracket(abs(yi[i]), h, p_below, p_at_least, two_sided)
            lo_b[i], hi_b[i] = lo, min(hi, range_hi[i])
            method[i] = "from_significance_marks"
            mark_range[i] = (p_below, p_at_least, two_sided)

    # common-SE constraint within (municipality, table, outcome, horizon, model, population)
    marks = np.array([m == "from_significance_marks" for m in method])
    group_cols = ["municipality", "source_table", "outcome", "horizon_months", "model", "population"]
    keys = np.array(["|".join(map(str, t)) for t in out[group_cols].itertuples(index=False)], dtype=object)
    contrast = out["comparator"].to_numpy() != "none"
    for key in pd.unique(keys[marks]):
        idx = np.nonzero((keys == key) & contrast & ~np.isnan(lo_b))[0]
        if len(idx) < 2:
            continue
        new_lo, new_hi = common_se(lo_b[idx], hi_b[idx], factor[idx])
        sel = marks[idx]
        lo_b[idx[sel]], hi_b[idx[sel]] = new_lo[sel], new_hi[sel]

    for i in np.nonzero(marks)[0]:
        sei[i] = central_value(lo_b[i], hi_b[i], se_policy, abs(yi[i]), *mark_range[i])

    # eligibility for pooling
    for i, r in enumerate(records):
        if reason[i]:
            continue
        arm = arm_meta[(r["municipality"], r["arm"])]
        comp = "control" if derived_from[i] is not None else r["comparator"]
        if r["arm"] == comp:
            reason[i] = "change over time within one group, not a contrast between arms"
        elif comp != "control" and arm_meta[(r["municipality"], comp)]["arm_class"] == "reference":
            reason[i] = "comparison with a non-randomised reference group (never pooled as an effect)"
        elif comp != "control":
            reason[i] = f"between-arm contrast ({r['arm']} vs {comp}), not against the control group"
        elif arm["arm_class"] == "pooled_arms":
            reason[i] = "contrast of several arms pooled together, not one arm"
        elif not bool(arm["randomised"]):
            reason[i] = "arm is not randomised"
        elif not (sei[i] > 0):
            reason[i] = ("no standard error can be derived: the significance mark bounds SE only from below "
                         "and no sample sizes bound it from above")
        elif conflict[i]:
            reason[i] = f"standard error contradicts the printed mark: {conflict[i]}"
        else:
            eligible[i] = True
        if conflict[i] and not reason[i].startswith("standard error contradicts"):
            reason[i] += f"; besides, {conflict[i]}"

    out["effective_comparator"] = ["control" if d is not None else c for d, c in zip(derived_from, out["comparator"])]
    out["comparator_row"] = pd.array(derived_from, dtype="Int64")
    out["yi"] = yi
    out["sei"] = sei
    out["sei_low"] = lo_b
    out["sei_high"] = hi_b
    out["se_method"] = method
    out["unit_h"] = unit_h
    out["arm_class"] = [arm_meta[(m, a)]["arm_class"] for m, a in zip(out["municipality"], out["arm"])]
    out["arm_components"] = [arm_components(arm_meta[(m, a)]) for m, a in zip(out["municipality"], out["arm"])]
    out["eligible"] = eligible
    out["reason"] = reason
    return out


def _level_key(r) -> tuple:
    """Rows printed in one column of one table: a share per arm there can be differenced against control."""
    return (r["municipality"], r["outcome"], r["horizon_months"], r["model"], r["population"], r["source_table"])


def _has_share_n(r) -> bool:
    return not (pd.isna(r["share_arm"]) or pd.isna(r["n_arm"]))


def _range_width(outcome_row) -> float:
    """Width of the range a person's outcome can take, in the harmonised unit (100 for a share in pp).

    From the register's ``scale_min`` and ``scale_max``; NaN when the outcome is unbounded or they are blank.
    """
    try:
        return float(outcome_row.get("scale_max", "")) - float(outcome_row.get("scale_min", ""))
    except (TypeError, ValueError):
        return math.nan


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

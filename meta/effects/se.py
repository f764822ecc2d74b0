"""Standard errors from what a report prints, escalc-like: from a CI, a p-value, shares and N, significance marks.

One place for every SE formula; :func:`meta.effects.harmonise.harmonise` applies them to transcribed rows and
``meta simulate`` to simulated printed tables, so the simulation study tests exactly the rules the analysis uses.
Numbers are on the harmonised scale (percentage points for shares, scale points for indices); :func:`se_from_ci`
converts its interval with a factor.

=============================  ======================================================================
function                       standard error
=============================  ======================================================================
:func:`se_from_ci`             (ci_high − ci_low) / (2 z_{(1+level)/2})
:func:`se_from_p`              |estimate| / z_{1−p/2} (exact two-sided p)
:func:`binomial_se`            100·√(p₁(1−p₁)/n₁ + p₀(1−p₀)/n₀), unadjusted, in percentage points
:func:`mark_bracket`           the bracket a significance mark implies (below)
:func:`range_bound`            the largest SE an outcome bounded on a range allows (below)
:func:`common_se`              the brackets of rows of one regression narrowed to a common σ (below)
:func:`se_from_bracket`        the value used from a bracket (setting ``se_policy``)
=============================  ======================================================================

Significance marks bound |estimate|/SE. A mark meaning p ∈ [p_at_least, p_below) for a two-sided z test gives

    (|e| − h) / z_{1−p_at_least/2}  ≤  SE  <  (|e| + h) / z_{1−p_below/2},

where h is half a unit of the last printed decimal of the number itself (the estimate was rounded;
:func:`half_unit` reads the printed token with :func:`meta.read.schema.parse_printed`, which cuts off marks and
footnote digits). ``*`` (p below a threshold) bounds SE from above, no mark from below, ``~`` both. Two further
constraints narrow the bracket:

* **Range bound.** For an outcome bounded on [a, b] the variance of one person's outcome is at most (b − a)²/4
  (Popoviciu's inequality; 1/4 for a share), so the unadjusted difference of two arm means has
  SE ≤ (b − a)/2 · √(1/n₁ + 1/n₀). Covariate adjustment (LOEP models) does not make SEs larger in practice; that
  is the assumption behind using this for adjusted estimates, stated in ``inputs/README.md``.
* **Common SE.** Rows of one table that share municipality, outcome, horizon, model and population come from one
  regression on one sample, so their SEs are σ·√(1/n_a + 1/n_b) for a common σ (with equal factors where arm
  sizes are unknown). The σ brackets of the rows are intersected and mapped back.

The value used is a setting (:func:`se_from_bracket`, the one place for the rule): ``central`` keeps a ``*`` row
significant as printed (its p-value at half the threshold) and otherwise takes the bracket's geometric centre
√(max(lo, hi/3)·hi) (:func:`bracket_centre`), continuous and monotone in both bounds; ``conservative`` always takes
the upper bound.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from meta.read.schema import parse_printed


def half_unit(printed: str) -> float:
    """Half a unit of the last decimal printed in ``printed``: the rounding error of the printed number.

    h = ½·10^(−d), d the decimals of the number as :func:`meta.read.schema.parse_printed` reads it: ``-0,11*`` →
    0.005; ``.47*`` and ``-.88**`` → 0.005 (no leading digit); ``-4.71)`` → 0.05 (the footnote mark ``1)`` is no
    decimal); ``23,3%`` → 0.05; ``12`` → 0.5. NaN when ``printed`` is not a printed number.
    """
    token = parse_printed(str(printed))
    return math.nan if token is None else 0.5 * 10.0 ** (-token.decimals)


def z_crit(p: float, two_sided: bool = True) -> float:
    """The z value whose (two-sided) tail probability is ``p``: z = Φ⁻¹(1 − p/2) (or Φ⁻¹(1 − p))."""
    return float(-special.ndtri(p / 2 if two_sided else p))  # scipy.stats.norm.isf


def se_from_ci(ci_low: float, ci_high: float, level: float, scale: float = 1.0) -> float:
    """SE of an estimate from its symmetric ``level`` % confidence interval: (ci_high − ci_low)·s / (2 z_{(1+level)/2}).

    ``scale`` s converts the interval's unit to the harmonised one (100 for a proportion in percentage points).
    """
    return (ci_high - ci_low) * scale / (2 * z_crit(1 - level / 100))


def se_from_p(estimate: float, p_value: float) -> float:
    """SE of an estimate from its exact two-sided p-value of a z test: |estimate| / z_{1−p/2}."""
    return abs(estimate) / z_crit(p_value)


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


def mark_bracket(abs_est: float, h: float, p_below: float, p_at_least: float, two_sided: bool = True):
    """SE bracket implied by p ∈ [p_at_least, p_below) for an estimate printed as ``abs_est`` ± ``h``.

    (|e| − h) / z_{1−p_at_least/2} ≤ SE < (|e| + h) / z_{1−p_below/2} (two-sided; module docstring).

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


def common_se_factor(n_arm, n_control):
    """f = √(1/n_arm + 1/n_control), the factor of σ in SE = σ·f of the rows of one regression (:func:`common_se`).

    1 where an N is unknown (None, NaN or not positive): such rows get equal factors. Element-wise on arrays.
    """
    n_arm, n_control = np.asarray(n_arm, float), np.asarray(n_control, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((n_arm > 0) & (n_control > 0), np.sqrt(1 / n_arm + 1 / n_control), 1.0)


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


def upper_bound_only(sei, sei_low, sei_high, max_ratio: float = CENTRAL_MAX_RATIO):
    """Whether an SE is only an upper bound (element-wise): the SE used is the largest the printed numbers allow
    (``sei`` = ``sei_high``) and nothing informative bounds it from below (``sei_low`` < ``sei_high`` / R, the
    :func:`bracket_centre` rule for an uninformative lower bound, R = ``max_ratio``).

    Such an SE makes the study's interval an *outer* bound (the true one is narrower) and its p-value an *upper*
    bound. It is the range bound of Wageningen's survey effects (``from_range_bound``, ``sei_low`` = 0) and, under
    the ``conservative`` policy, every mark bracket without a lower bound. An SE known exactly (``sei_low`` =
    ``sei_high``) or taken inside its bracket (the ``central`` rule) is not.
    """
    sei, lo, hi = (np.asarray(x, float) for x in (sei, sei_low, sei_high))
    with np.errstate(invalid="ignore"):
        return np.isfinite(sei) & np.isfinite(hi) & (sei >= hi * (1 - 1e-12)) & (lo < hi / max_ratio)


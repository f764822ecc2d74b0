"""The simulation's verdict in plain words, every number taken from the results table and the run's diagnostics.

One place for these sentences: the Markdown summary (:mod:`meta.simulate.markdown`) and the report
(:func:`meta.present.report.simulation_verdict`) both call :func:`verdict_lines`. Inline markup is Markdown's
``**bold**`` and ```code```.

``t`` is the results table (``simulation_results.csv``: one row per τ × k × SE policy × method × test), ``rc`` the
reconstruction check (one row per τ × municipality) and ``s`` the run's :class:`~meta.simulate.settings.Settings`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from meta.simulate.settings import BAYES_METHOD, BAYES_TEST, Settings


def cell(t: pd.DataFrame, tau, k, method, test, policy):
    """The results row of one τ, k, method, test and SE policy (the first), or None (compared as numpy arrays:
    called ~60 times per verdict)."""
    hit = np.flatnonzero((t["tau"].to_numpy() == tau) & (t["k"].to_numpy() == k) & (t["method"].to_numpy() == method)
                         & (t["test"].to_numpy() == test) & (t["se_policy"].to_numpy() == policy))
    return None if not len(hit) else t.iloc[hit[0]]


def pct(x) -> str:
    """A share as a percentage with one decimal: 0.9512 -> ``95.1%``."""
    return f"{100 * x:.1f}%"


def _spec_values(t: pd.DataFrame, method, test, policy, col="coverage", taus=None, ks=None) -> np.ndarray:
    sel = (t["method"] == method) & (t["test"] == test) & (t["se_policy"] == policy)
    if taus is not None:
        sel &= t["tau"].isin(list(taus))
    if ks is not None:
        sel &= t["k"].isin(list(ks))
    return t.loc[sel, col].to_numpy(float)


def _zero_share(t: pd.DataFrame, tau) -> np.ndarray:
    """Share of REML pools (printed SEs) with τ̂² = 0, per k, at one τ."""
    return _spec_values(t, "REML", "knha", "reported", "tau2_zero_share", taus=[tau])


def _range_pct(x) -> str:
    lo, hi = 100 * np.min(x), 100 * np.max(x)
    return f"{lo:.0f}%" if round(lo) == round(hi) else f"{lo:.0f}-{hi:.0f}%"


def verdict_lines(t: pd.DataFrame, rc: pd.DataFrame, s: Settings) -> list[str]:
    """The 'Verdict' section's lines: the verdict bullets, then 'What this means:' and the lessons."""
    return verdict_sentences(t, s) + ["", "What this means:", ""] + plain_words(t, rc, s)


# --------------------------------------------------------------------------- #
# the verdict
# --------------------------------------------------------------------------- #
def verdict_sentences(t: pd.DataFrame, s: Settings) -> list[str]:
    """Plain-language verdicts for an analyst, filled from the results table."""
    k0 = min(s.ks)
    names = t.loc[t["k"] == k0, "municipalities"].iloc[0].replace("+", " and ").title().replace(" And ", " and ")
    out = []
    for tau in s.taus:
        parts = _verdict_parts(t, s, tau, k0)
        if parts:
            out.append(f"- **k = {k0} ({names}), between-municipality SD tau = {tau:g} pp:** " + "; ".join(parts)
                       + ".")
    return out + _headline_verdict(t, s) + _largest_k_verdict(t, s)


def _verdict_parts(t: pd.DataFrame, s: Settings, tau, k0) -> list[str]:
    """HKSJ, Wald, marks and Bayesian coverage at the smallest k and one τ, as clauses of one sentence."""
    hk = cell(t, tau, k0, "REML", "knha", "reported")
    wz = cell(t, tau, k0, "REML", "z", "reported")
    dz = cell(t, tau, k0, "DL", "z", "reported")
    parts = []
    if hk is not None:
        parts.append(f"a 95% HKSJ interval from REML covers the true mean effect {pct(hk.coverage)} of the time "
                     f"(median width {hk.ci_width_median:.0f} pp)")
    if wz is not None:
        only = "only " if wz.coverage < 0.93 else ""
        zs = f"a Wald (z) interval from REML {only}{pct(wz.coverage)} (median width {wz.ci_width_median:.0f} pp)"
        if dz is not None:
            zs += f", from DerSimonian-Laird {pct(dz.coverage)}"
        parts.append(zs)
    marks = [(word, cell(t, tau, k0, "REML", "knha", policy))
             for policy, word in (("marks-central", "central"), ("marks-conservative", "conservative"))]
    marks = [(w, c) for w, c in marks if c is not None]
    if marks:
        parts.append("HKSJ intervals from SEs reconstructed from significance marks cover "
                     + " and ".join(f"{pct(c.coverage)} ({w})" for w, c in marks))
    b = cell(t, tau, k0, BAYES_METHOD, BAYES_TEST, "reported")
    if b is not None:
        parts.append(f"the Bayesian interval (half-normal prior on tau, scale {s.tau_prior_scale:g} pp) covers "
                     f"{pct(b.coverage)} (median width {b.ci_width_median:.0f} pp; {int(b.reps)} replications)")
    return parts


def _headline_verdict(t: pd.DataFrame, s: Settings) -> list[str]:
    """The report's headline rule (Bayesian for k <= few_studies_k, REML + HKSJ above): coverage and width."""
    rule = [(tau, cells) for label, tau, cells in headline_rows(t, s) if label.startswith("headline")]
    cov = [c.coverage for _, cells in rule for c in cells if c is not None]
    few = [c.ci_width_median for _, cells in rule for k, c in zip(s.ks, cells)
           if c is not None and k <= s.few_studies_k]
    hk_few = [c.ci_width_median for tau in s.taus for k in s.ks if k <= s.few_studies_k
              for c in [cell(t, tau, k, "REML", "knha", "reported")] if c is not None]
    if not (cov and few and any(c is not None and k <= s.few_studies_k for _, cells in rule
                                for k, c in zip(s.ks, cells) if c is not None and c.method == BAYES_METHOD)):
        return []
    return [f"- **The report's headline** (Bayesian for k <= {s.few_studies_k}, REML + HKSJ above) covers "
            f"{100 * min(cov):.0f}-{100 * max(cov):.0f}% over every tau and k simulated; for "
            f"k <= {s.few_studies_k} its median width is {min(few):.0f}-{max(few):.0f} pp against "
            f"{min(hk_few):.0f}-{max(hk_few):.0f} pp for REML + HKSJ."]


def _largest_k_verdict(t: pd.DataFrame, s: Settings) -> list[str]:
    """HKSJ against Wald coverage at the largest k simulated (nothing when only one k was run)."""
    kmax = max(s.ks)
    if kmax == min(s.ks):
        return []
    bits = []
    for tau in s.taus:
        hk = cell(t, tau, kmax, "REML", "knha", "reported")
        wz = cell(t, tau, kmax, "REML", "z", "reported")
        if hk is not None and wz is not None:
            bits.append(f"tau = {tau:g} pp: HKSJ {pct(hk.coverage)} (median width {hk.ci_width_median:.0f} pp), "
                        f"Wald {pct(wz.coverage)}")
    return [f"- **k = {kmax}:** " + "; ".join(bits) + "."] if bits else []


def headline_rows(t: pd.DataFrame, s: Settings, policy: str = "reported") -> list[tuple[str, float, list]]:
    """(label, tau, cells per k) for the Bayesian model, REML + HKSJ and the report's headline rule
    (Bayesian for k <= ``few_studies_k``, REML + HKSJ above); a cell is a results row or None."""
    out = []
    for tau in s.taus:
        bayes = [cell(t, tau, k, BAYES_METHOD, BAYES_TEST, policy) for k in s.ks]
        hksj = [cell(t, tau, k, "REML", "knha", policy) for k in s.ks]
        rule = [b if k <= s.few_studies_k else h for k, b, h in zip(s.ks, bayes, hksj)]
        out += [(f"Bayesian, half-normal tau prior (scale {s.tau_prior_scale:g} pp)", tau, bayes),
                ("REML + HKSJ", tau, hksj),
                (f"headline as reported (Bayesian for k <= {s.few_studies_k}, REML + HKSJ above)", tau, rule)]
    return out


# --------------------------------------------------------------------------- #
# what this means
# --------------------------------------------------------------------------- #
def plain_words(t: pd.DataFrame, rc: pd.DataFrame, s: Settings) -> list[str]:
    """The lessons of a run in plain words, every number taken from the results (bullets)."""
    return (_hksj_lesson(t, s) + _wald_lesson(t, s) + _adhoc_lesson(t, s) + _marks_lesson(t, rc)
            + _bias_lesson(t, s) + _prediction_lesson(t, s) + _same_estimators_lesson(t, s) + _bayes_lesson(t, s)
            + _conservative_se_lesson(rc, s))


def _hksj_lesson(t: pd.DataFrame, s: Settings) -> list[str]:
    hk = _spec_values(t, "REML", "knha", "reported")
    if not hk.size:
        return []
    k0 = min(s.ks)
    w0 = _spec_values(t, "REML", "knha", "reported", "ci_width_median", ks=[k0])
    verdict = "keep their promise" if hk.min() >= 0.92 else "do not always keep their promise"
    lo_w, hi_w = round(float(np.min(w0))), round(float(np.max(w0)))
    widths = f"{lo_w}" if lo_w == hi_w else f"{lo_w}-{hi_w}"
    return [f"- HKSJ (test knha) intervals from REML {verdict}: they cover {_range_pct(hk)} over every "
            f"tau and k simulated. The price is width: with k = {k0} the median 95% interval is "
            f"{widths} pp wide, because it uses a t distribution with k - 1 = {k0 - 1} degree(s) of "
            "freedom. Such an interval is honest but says little."]


def _wald_lesson(t: pd.DataFrame, s: Settings) -> list[str]:
    tmax, ks = max(s.taus), list(s.ks)
    wz = _spec_values(t, "REML", "z", "reported", taus=[tmax])
    if not (wz.size and tmax > 0):
        return []
    line = f"- Wald (z) intervals with tau = {tmax:g} pp cover {_range_pct(wz)} for k = {ks[0]}-{ks[-1]}"
    if wz.max() < 0.93:
        line += (": too narrow as soon as municipalities truly differ, and more municipalities (up to six) do "
                 "not fix this. A Wald interval from a handful of municipalities should not be read as a 95% "
                 "interval.")
    else:
        line += "."
    return [line]


def _adhoc_lesson(t: pd.DataFrame, s: Settings) -> list[str]:
    ad = _spec_values(t, "REML", "adhoc", "reported", ks=[k for k in s.ks if k <= 3])
    if not ad.size:
        return []
    word = "over-covers" if ad.min() > 0.96 else "covers"
    return [f"- The adhoc variant (HKSJ with its scale factor floored at 1) {word} with k <= 3 "
            f"({_range_pct(ad)}), with wider intervals than HKSJ."]


def _marks_lesson(t: pd.DataFrame, rc: pd.DataFrame) -> list[str]:
    hk = _spec_values(t, "REML", "knha", "reported")
    hc = _spec_values(t, "REML", "knha", "marks-central")
    hv = _spec_values(t, "REML", "knha", "marks-conservative")
    if not (hc.size and hk.size == hc.size):
        return []
    diff = np.abs(hc - hk).max()
    line = (f"- With SEs reconstructed from significance marks, HKSJ covers {_range_pct(hc)} (central) "
            f"and {_range_pct(hv) if hv.size else 'n/a'} (conservative), at most {100 * diff:.1f} percentage "
            "points from the same intervals built on printed SEs. ")
    if not rc.empty and {"marks-central_ratio_median", "marks-conservative_ratio_median"} <= set(rc.columns):
        line += (f"The reconstructed SEs are larger than the true ones on the whole (median ratio "
                 f"{rc['marks-central_ratio_median'].median():.2f} central, "
                 f"{rc['marks-conservative_ratio_median'].median():.2f} conservative)")
        zc = _spec_values(t, "REML", "z", "marks-central")
        zr = _spec_values(t, "REML", "z", "reported")
        if zc.size and zc.size == zr.size:
            d = 100 * (zc - zr).mean()
            line += (f"; Wald intervals from them cover {abs(d):.1f} points {'more' if d >= 0 else 'less'} on "
                     "average than Wald intervals from printed SEs, while HKSJ rescales by the observed spread")
        line += "."
    return [line]


def _bias_lesson(t: pd.DataFrame, s: Settings) -> list[str]:
    bias_rep = _spec_values(t, "REML", "z", "reported", "bias")
    bias_mk = _spec_values(t, "REML", "z", "marks-central", "bias")
    if not bias_rep.size:
        return []
    rmse = _spec_values(t, "REML", "z", "reported", "rmse")
    ratio = np.abs(bias_rep / rmse).max()
    size = "small against" if ratio < 0.2 else "not negligible against"
    line = (f"- Bias of the pooled REML estimate is {size} its uncertainty (at most {100 * ratio:.0f}% of the "
            f"RMSE, which is {rmse.min():.1f}-{rmse.max():.1f} pp): at most {np.abs(bias_rep).max():.2f} pp with "
            "printed SEs")
    if bias_mk.size:
        line += f", at most {np.abs(bias_mk).max():.2f} pp with SEs from marks"
    line += (". What bias there is comes from weights that depend on the estimate: the SE of a difference in "
             "shares is smaller where a share is lower, so with printed SEs the effects that lower the share "
             "weigh more")
    if bias_mk.size:
        toward_zero = float(np.mean(bias_mk)) * math.copysign(1.0, s.mu) < 0
        line += ("; with marks, an estimate that earned a mark gets a smaller reconstructed SE than an unmarked "
                 "one (pulling the pooled estimate away from zero), while the central SE of an unmarked estimate "
                 "grows with its size, because the mark's lower bound does (pulling it towards zero); on "
                 f"average the net bias here points {'towards' if toward_zero else 'away from'} zero")
    return [line + "."]


def _prediction_lesson(t: pd.DataFrame, s: Settings) -> list[str]:
    ks = list(s.ks)
    pi = {tau: _spec_values(t, "REML", "knha", "reported", "pi_coverage", taus=[tau]) for tau in s.taus if tau > 0}
    pi = {tau: v for tau, v in pi.items() if v.size}
    if not pi:
        return []
    return ["- The prediction interval for a new municipality's true effect (REML + HKSJ) covers "
            + "; ".join(f"{_range_pct(v)} at tau = {tau:g} pp" for tau, v in pi.items())
            + f" over k = {ks[0]}-{ks[-1]}. With few municipalities tau is often estimated as zero (REML: in "
            + "; ".join(f"{_range_pct(_zero_share(t, tau))} of the pools at tau = {tau:g} pp" for tau in pi)
            + "), and the prediction interval then shrinks to the confidence interval."]


def _same_estimators_lesson(t: pd.DataFrame, s: Settings) -> list[str]:
    if 2 not in s.ks:
        return []
    cols = ["coverage", "bias", "ci_width_median"]
    rows = [t[(t["k"] == 2) & (t["method"] == m)].sort_values(["tau", "se_policy", "test"])[cols].to_numpy()
            for m in s.methods]
    same = len(rows) > 1 and all(r.shape == rows[0].shape and np.allclose(r, rows[0]) for r in rows[1:])
    if not same:
        return []
    return [f"- With k = 2 the estimators {', '.join(s.methods)} give the same tau^2 (for two studies they "
            "coincide algebraically), so their rows are identical."]


def _bayes_lesson(t: pd.DataFrame, s: Settings) -> list[str]:
    if not _spec_values(t, BAYES_METHOD, BAYES_TEST, "reported").size:
        return []
    k0 = min(s.ks)
    reps = int(t.loc[t["method"] == BAYES_METHOD, "reps"].iloc[0])
    lines = []
    for tau in s.taus:
        c = _spec_values(t, BAYES_METHOD, BAYES_TEST, "reported", taus=[tau])
        w = _spec_values(t, BAYES_METHOD, BAYES_TEST, "reported", "ci_width_median", taus=[tau], ks=[k0])
        lines.append(f"{_range_pct(c)} at tau = {tau:g} pp (median width at k = {k0}: {w[0]:.0f} pp)")
    return [f"- The Bayesian interval (half-normal prior on tau with scale {s.tau_prior_scale:g} pp; "
            f"{reps} replications, Monte Carlo SE up to {100 * math.sqrt(0.25 / reps):.1f} points) covers "
            + "; ".join(lines) + ". Its coverage rests on the prior scale being about right for the true "
            "spread between municipalities."]


def _conservative_se_lesson(rc: pd.DataFrame, s: Settings) -> list[str]:
    if rc.empty or "marks-conservative_below_true_se" not in rc:
        return []
    worst = rc["marks-conservative_below_true_se"].max()
    w90 = rc["marks-conservative_below_90pct_true_se"].max()
    free = rc["conservative_without_common_se_below_true_se"].max()
    se_word = "HC1-robust" if s.regression_se == "hc1" else "classical"
    return [f"- The conservative SE (the upper bound of the bracket) is below the regression's own SE in at "
            f"most {pct(worst)} of the rows (below 90% of it in at most {pct(w90)}); without the "
            f"common-SE constraint this happens in {pct(free)}. The constraint assumes equal outcome "
            f"variance in all arms of a regression (`inputs/README.md`, assumption iii), which {se_word} "
            "SEs of shares that differ between arms do not satisfy exactly."]

"""The Markdown summary of a run (``simulation_summary.md``): verdict, coverage, width, bias, diagnostics, settings.

Every number comes from the results table and the run's diagnostics; the verdict's words from
:mod:`meta.simulate.words`.
"""

from __future__ import annotations

import math
import shlex

from meta.simulate.settings import BAYES_METHOD, BAYES_TEST, POOLED_ARM, RESULTS_FILE, Settings
from meta.simulate.summary import SimulationResult
from meta.simulate.words import cell, headline_rows, pct, verdict_lines

#: The specifications of the coverage tables: (label, method, test, policy).
MAIN_SPECS = (
    ("REML + HKSJ (knha), reported SE", "REML", "knha", "reported"),
    ("REML + HKSJ with q >= 1 (adhoc), reported SE", "REML", "adhoc", "reported"),
    ("REML + Wald (z), reported SE", "REML", "z", "reported"),
    ("DL + Wald (z), reported SE", "DL", "z", "reported"),
    ("PM + HKSJ (knha), reported SE", "PM", "knha", "reported"),
    ("REML + HKSJ, SE from marks (central)", "REML", "knha", "marks-central"),
    ("REML + HKSJ, SE from marks (conservative)", "REML", "knha", "marks-conservative"),
    ("REML + Wald (z), SE from marks (central)", "REML", "z", "marks-central"),
    ("Bayes, half-normal tau prior, reported SE", BAYES_METHOD, BAYES_TEST, "reported"),
    ("Bayes, half-normal tau prior, SE from marks (central)", BAYES_METHOD, BAYES_TEST, "marks-central"),
)
#: The rows of the bias table: (label, method, policy); the test is z (Bayes: the posterior).
BIAS_SPECS = (
    ("REML, reported SE", "REML", "reported"), ("DL, reported SE", "DL", "reported"),
    ("REML, marks (central)", "REML", "marks-central"), ("REML, marks (conservative)", "REML", "marks-conservative"),
    ("Bayes (posterior median), reported SE", BAYES_METHOD, "reported"),
)


def canonical_command(s: Settings, out) -> str:
    """The ``meta simulate`` command that reproduces a run exactly (``--jobs`` does not change results)."""
    parts = ["meta", "simulate", "--reps", str(s.reps), "--bayes-reps", str(s.bayes_reps), "--seed", str(s.seed),
             "--mu", f"{s.mu:g}", "--tau", *[f"{t:g}" for t in s.taus], "--k", *[str(k) for k in s.ks],
             "--tau-prior-scale", f"{s.tau_prior_scale:g}", "--rho", f"{s.rho:g}",
             "--regression-se", s.regression_se, "--few-studies-k", str(s.few_studies_k), "--out", str(out)]
    return " ".join(shlex.quote(p) for p in parts)


def md_table(header, body) -> list[str]:
    """A Markdown table: header row, rule, one row per list of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return lines


def summary_markdown(res: SimulationResult, out, command: str | None = None) -> str:
    """The short markdown summary: verdict, the main coverage table per tau, bias, settings, diagnostics."""
    s, t = res.settings, res.results
    L = ["# Does the method keep its promise? Simulation of the whole chain", ""]
    L += ["Individual-level trials shaped like the six experiments are analysed with the LOEP-style regression, "
          "printed the way the reports print them, given standard errors the way `meta.effects.harmonise` derives them and "
          "pooled with `meta.models.engine.pool_batch` and `meta.models.bayes.bayes_pool`. The tables give how often the nominal "
          "95% interval for the mean effect mu actually contains it (coverage; 95% is the promise).", ""]
    L += ["## Verdict", ""] + verdict_lines(t, res.reconstruction_check, s) + [""]
    L += headline_section(t, s)
    for tau in s.taus:
        L += coverage_section(t, s, tau)
    L += prediction_section(t, s) + bias_section(t, s)
    L += reconstruction_section(res.reconstruction_check) + regression_section(res.regression_check, s)
    L += settings_section(s, command or canonical_command(s, out), res.seconds)
    return "\n".join(L) + "\n"


def _rows(t, s: Settings, specs, fmt, label=lambda lab, tau: lab, taus=None) -> list[list[str]]:
    """One table row per (τ, spec) with at least one cell: ``label(spec label, τ)`` and ``fmt(row)`` per k."""
    body = []
    for tau in s.taus if taus is None else taus:
        for name, method, test, policy in specs:
            cells = [cell(t, tau, k, method, test, policy) for k in s.ks]
            if all(c is None for c in cells):
                continue
            body.append([label(name, tau)] + ["" if c is None else fmt(c) for c in cells])
    return body


def headline_section(t, s: Settings) -> list[str]:
    """The summary section on the report's headline: coverage and median width at every k, beside HKSJ's."""
    rows = headline_rows(t, s)
    if not any(c is not None for label, _, cells in rows if label.startswith("Bayesian") for c in cells):
        return []
    reps = t.loc[t["method"] == BAYES_METHOD, "reps"]
    L = [f"## The report's headline: Bayesian for k <= {s.few_studies_k}, REML + HKSJ above (printed SEs)", "",
         "Coverage of the 95% interval for mu in % (Monte Carlo SE) and its median width in pp; the Bayesian rows rest "
         f"on the first {int(reps.max()) if len(reps) else 0} replications, the HKSJ rows on {s.reps}.", ""]
    body = [[f"tau = {tau:g}: {label}"] + [
        "" if c is None else f"{100 * c.coverage:.1f} ({100 * c.coverage_mcse:.1f}); {c.ci_width_median:.1f} pp"
        for c in cells] for label, tau, cells in rows]
    L += md_table(["interval", *[f"k = {k}" for k in s.ks]], body)
    return L + [""]


def coverage_section(t, s: Settings, tau) -> list[str]:
    """Coverage of the interval for μ and its median width at one τ, per specification and k."""
    head = ["specification", *[f"k = {k}" for k in s.ks]]
    L = [f"## Coverage of the 95% interval for mu, tau = {tau:g} pp (Monte Carlo SE in brackets)", ""]
    L += md_table(head, _rows(t, s, MAIN_SPECS, lambda c: f"{100 * c.coverage:.1f} ({100 * c.coverage_mcse:.1f})",
                              taus=[tau]))
    L += ["", f"Median width of the interval (pp), tau = {tau:g} pp:", ""]
    widths = MAIN_SPECS[:3] + MAIN_SPECS[5:7] + MAIN_SPECS[8:9]
    L += md_table(head, _rows(t, s, widths, lambda c: f"{c.ci_width_median:.1f}", taus=[tau]))
    return L + [""]


def prediction_section(t, s: Settings) -> list[str]:
    """Coverage of the prediction interval for a new municipality's true effect."""
    L = ["## Prediction interval for a new municipality's true effect (coverage, %)", ""]
    body = _rows(t, s, (MAIN_SPECS[0], MAIN_SPECS[2], MAIN_SPECS[8]),
                 lambda c: f"{100 * c.pi_coverage:.1f} ({100 * c.pi_coverage_mcse:.1f})",
                 label=lambda lab, tau: f"tau = {tau:g}: {lab}")
    return L + md_table(["specification", *[f"k = {k}" for k in s.ks]], body)


def bias_section(t, s: Settings) -> list[str]:
    """Bias of the pooled estimate (pp) with its Monte Carlo SE."""
    L = ["", "## Bias of the pooled estimate (pp; true mu = " f"{s.mu:g} pp)", ""]
    specs = [(lab, m, BAYES_TEST if m == BAYES_METHOD else "z", p) for lab, m, p in BIAS_SPECS]
    body = _rows(t, s, specs, lambda c: f"{c.bias:+.2f} ({c.bias_mcse:.2f})",
                 label=lambda lab, tau: f"tau = {tau:g}: {lab}")
    return L + md_table(["estimate", *[f"k = {k}" for k in s.ks]], body)


def reconstruction_section(rc) -> list[str]:
    """How the SEs reconstructed from marks compare with the regressions' own SEs, per municipality."""
    if rc.empty:
        return []
    L = ["", "## Standard errors reconstructed from marks (exemption arm, all tau)", ""]
    g = rc.groupby("municipality", sort=False).mean(numeric_only=True)
    body = []
    for name, r in g.iterrows():
        cells = [name, pct(r["share_star"]), pct(r["share_tilde"]), pct(r["share_unmarked"]),
                 pct(r["bracket_contains_true_se"])]
        for policy in ("marks-central", "marks-conservative"):
            if f"{policy}_below_true_se" in r:
                cells += [pct(r[f"{policy}_below_true_se"]), f"{r[f'{policy}_ratio_median']:.2f}"]
            else:
                cells += ["", ""]
        cells.append(pct(r["conservative_without_common_se_below_true_se"]))
        body.append(cells)
    L += md_table(["municipality", "*", "~", "no mark", "bracket holds true SE", "central < true SE",
                   "central / true (median)", "conservative < true SE", "conservative / true (median)",
                   "conservative < true SE without the common-SE constraint"], body)
    return L + ["", "\"True SE\" is the SE the municipality's own regression computed (the one behind its mark). "
                "Shares are averaged over the tau settings."]


def regression_section(rg, s: Settings) -> list[str]:
    """The regression SEs against the spread of the estimates (pooled arm, smallest τ)."""
    if rg.empty:
        return []
    L = ["", "## Check: regression SEs against the spread of the estimates "
         f"(pooled arm, tau = {min(s.taus):g} pp)", ""]
    sub = rg[(rg["tau"] == min(s.taus)) & (rg["arm"] == POOLED_ARM)]
    body = [[r.municipality, f"{r.n_arm}/{r.n_control}", f"{r.sd_estimate:.2f}", f"{r.rms_se:.2f}",
             f"{r.mean_estimate_minus_theta:+.2f}"] for r in sub.itertuples()]
    L += md_table(["municipality", "N arm/control", "SD of estimate - theta (pp)", "RMS of regression SE (pp)",
                   "mean estimate - theta (pp)"], body)
    raised = rg["share_p0_raised"].max()
    return L + ["", f"Largest share of replications in which a control share was raised to keep every true effect "
                f"exact: {pct(raised)}."]


def settings_section(s: Settings, cmd: str, seconds: float) -> list[str]:
    """The command, the design and what is not modelled; the runtime when known."""
    L = ["", "## Settings", "", f"- Command: `{cmd}`",
         f"- Seed {s.seed}; {s.reps} replications per tau (Bayesian model: the first {s.bayes_reps}, because "
         "it is computed one replication at a time); the same simulated trials serve every k, method, test and "
         "SE policy.",
         f"- Mean effect mu = {s.mu:g} pp; between-municipality SD tau in {{{', '.join(f'{x:g}' for x in s.taus)}}} "
         "pp; every treatment arm's true effect is mu + u, u ~ N(0, tau^2), independently.",
         f"- Control share drawn from U({s.base_rate[0]:.0%}, {s.base_rate[1]:.0%}) per municipality and "
         f"replication; one baseline covariate with latent correlation {s.rho:g} with the outcome.",
         f"- Regression per municipality: linear probability model on arm dummies + covariate, "
         f"{'HC1-robust' if s.regression_se == 'hc1' else 'classical'} SEs, t p-values.",
         "- Printing: with SEs, estimate and SE to 3 decimals of a proportion; marks only (Nijmegen: `*` p<0.05, "
         "`~` p<0.10), estimate to 2 decimals. Every municipality in a pool is printed the same way. SE from "
         "marks: `mark_bracket` (half-unit rounding), `range_bound` with the arm and control N, the common-SE "
         "constraint across the arms of one regression (`common_se`), `se_from_bracket` (central or conservative).",
         f"- Pools: the exemption arm of the first k municipalities in the order "
         f"{', '.join(m.name for m in s.design)} (k = 2 is the pair transcribed today).",
         "- Arm sizes: " + "; ".join(f"{m.name} " + ", ".join(f"{a} {n}" for a, n in m.arms) + f" ({m.sizes})"
                                      for m in s.design[:max(s.ks)]) + ".",
         f"- Bayesian model: half-normal prior on tau with scale {s.tau_prior_scale:g} pp, flat prior on mu; "
         "posterior median and equal-tailed 95% intervals.",
         "- Not modelled: attrition (the range bound uses the full arm N), between-arm contrasts printed next to "
         "the arm columns, and Wageningen's different legend (every marks-only municipality uses Nijmegen's).",
         f"- Full results: `{RESULTS_FILE}`, one row per tau x k x SE policy x method x test: `coverage` of the "
         "interval for mu, `pi_coverage` of the prediction interval for a new municipality's true effect, `bias` "
         "and `rmse` of the pooled estimate (pp), median and mean interval width (pp), mean tau^2 estimate and share "
         "of zero estimates, each with its Monte Carlo SE (`*_mcse`) where one applies; `reps` is the number of "
         "replications behind the row."]
    if math.isfinite(seconds):
        L += [f"- Runtime: {seconds:.0f} s with {s.jobs} process(es) for the Bayesian part."]
    return L

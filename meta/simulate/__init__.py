"""Does the method keep its promise? A simulation study of the whole chain (``meta simulate``).

Each replication re-runs the six experiments at the level of individuals, analyses
each municipality the way the reports did, prints the results the way the reports
print them, reconstructs standard errors the way :mod:`meta.effects.harmonise` does, and
pools them with :func:`meta.models.engine.pool_batch` (all replications in one batch) and
with :func:`meta.models.bayes.bayes_pool` (one replication at a time). What it reports is
the *actual* coverage of the nominal 95% intervals for the mean effect μ, the bias
of the pooled estimate and the coverage of the prediction interval for a new
municipality's true effect, per estimator × test × SE policy × number of
municipalities k, with Monte Carlo standard errors.

Data-generating model
---------------------
* **Arms and sizes** (:data:`DESIGN`): Nijmegen exemption 130, intensive 128,
  control 131 (randomised, ``inputs/arms.csv``); Wageningen exemption 106,
  intensive 98, release 113, control 93 (bruto randomised); Groningen the 'Yes'
  participant counts of the slides, exemption 183, intensive 144, release 153,
  control 222 (its free-choice arm is left out); Tilburg, Utrecht and Deventer
  are ASSUMED to have the national design's exemption, intensive, release and
  control arms with 150 people each (their reports are not available here).
  Arm sizes are fixed (complete randomisation), nobody drops out.
* **Outcome**: binary (e.g. "works more than 12 hours a week"). Per municipality
  and replication the control share p₀ is drawn from U(10%, 25%); every
  treatment arm a of municipality m has the true effect θ_{m,a} = μ + u_{m,a},
  u ~ N(0, τ²), in percentage points, independently across arms and
  municipalities. The pooled arm is **exemption** (every municipality has one);
  the other arms are there because the reports' regressions contain them (and the
  common-SE constraint of the mark reconstruction uses them). Where p₀ + θ would
  fall below 2%, p₀ is raised for the whole municipality so that every θ is kept
  exactly (the effect distribution stays N(μ, τ²); the share of municipalities
  for which this happened is reported).
* **Covariate**: one baseline covariate x ~ N(0, 1) that predicts the outcome:
  y = 1{ρx + √(1−ρ²)ε < Φ⁻¹(p_arm)}, ε ~ N(0, 1), so P(y = 1 | arm) = p_arm
  exactly and x has latent correlation −ρ with the outcome (default ρ = 0.6).
  Because x is independent of the arm, the adjusted arm coefficient estimates
  the risk difference θ (in expectation over x).
* **Analysis per municipality** (the LOEP-style model): a linear probability model
  of y on an intercept, the treatment-arm dummies and x, fitted by closed-form
  OLS for all replications at once (batched normal equations), with HC1-robust
  (default) or classical standard errors; p-values from t with n − p df, as
  regression software prints them.

How the results are printed
---------------------------
* ``reported``: estimate and SE printed as proportions with three decimals
  (0.1 pp); ``se_method = reported_se``.
* ``marks-central`` / ``marks-conservative``: as Nijmegen prints them — the
  estimate as a proportion with two decimals and a mark, ``*`` p < 0.05, ``~``
  p < 0.10 (``significance_legends.csv``, Nijmegen tables). The SE is
  reconstructed with :func:`meta.effects.se.mark_bracket` (half a unit of the
  last printed decimal, :func:`meta.effects.se.half_unit`), capped by
  :func:`meta.effects.se.range_bound` with the arm and control N, narrowed by the
  common-SE constraint across the arms of the municipality's regression
  (:func:`meta.effects.se.common_se`, the function ``harmonise`` uses: σ-brackets
  lo/f, hi/f with f = √(1/n_a + 1/n_c) intersected and mapped back when they
  intersect) and turned into a value by
  :func:`meta.effects.se.se_from_bracket` with the policy ``central`` or
  ``conservative``. Every municipality in a pool is printed the same way.

Pooling
-------
The exemption effects of the first k municipalities in the fixed order of
:data:`DESIGN` (Nijmegen, Wageningen, Groningen, Tilburg, Utrecht, Deventer; so
k = 2 is the pair transcribed today) are pooled for every method (DL, REML, PM)
× test (z, knha, adhoc) × SE policy, and with the Bayesian normal-normal model
(half-normal prior on τ, flat prior on μ; posterior median and equal-tailed
intervals) on the first ``bayes_reps`` replications only, because it runs one
replication at a time. The same simulated trials are used for every k, method,
test and policy (common random numbers), so differences between them are
estimated more precisely than each coverage on its own.

Monte Carlo standard errors: coverage √(c(1 − c)/R); bias sd/√R; the prediction
interval's coverage is the exact conditional probability
Φ((hi − μ)/τ) − Φ((lo − μ)/τ) that a new municipality's true effect falls inside
it (the indicator of μ inside it when τ = 0), averaged over replications, with
its sd/√R.

Modules
-------
``settings``  the six experiments' arms and sizes (:data:`DESIGN`), :class:`Settings`, file names
``trials``    the data-generating model and the per-municipality regression (:func:`simulate_trials`)
``printing``  printing as the reports do and SEs reconstructed from marks (:func:`reconstruct_se`)
``study``     replications pooled in batches, performance measures (:func:`run_simulation`)
``words``     the verdict in plain words (:func:`verdict_lines`), for the Markdown and the report
``markdown``  the Markdown summary (:func:`summary_markdown`)
``summary``   the files of a run (:func:`write_outputs`) and reading them back (:func:`read_summary`)
``command``   ``meta simulate`` (:func:`add_subcommand`, :func:`cmd_simulate`)
"""

import importlib

#: Where each public name lives; imported on first use (PEP 562), so that registering ``meta simulate`` on meta's
#: parser (:func:`add_subcommand`) does not import the study, its models or scipy.
_HOME = {
    **dict.fromkeys(("QUICK", "add_subcommand", "cmd_simulate", "main", "settings_from_args"), "command"),
    **dict.fromkeys(("canonical_command", "summary_markdown"), "markdown"),
    **dict.fromkeys(("mark_of", "print_municipality", "print_with_marks", "print_with_se", "reconstruct_se"),
                    "printing"),
    **dict.fromkeys(("BAYES_METHOD", "BAYES_TEST", "DEFAULT_OUT", "DESIGN", "JSON_FILE", "LEVEL", "METHODS",
                     "MIN_SHARE", "POOLED_ARM", "RESULTS_FILE", "SE_POLICIES", "SUMMARY_FILE", "TESTS",
                     "Municipality", "Settings"), "settings"),
    **dict.fromkeys(("performance", "run_simulation"), "study"),
    **dict.fromkeys(("SimulationResult", "read_summary", "write_outputs"), "summary"),
    **dict.fromkeys(("Trials", "ols_batch", "simulate_trials", "true_effects"), "trials"),
    **dict.fromkeys(("plain_words", "verdict_lines", "verdict_sentences"), "words"),
}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    """A public name of :data:`_HOME`, imported from its module on first use."""
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_HOME})

"""Models: the statistics, on arrays. They import nothing else of meta (an import-linter contract says so).

* ``engine`` — rma.uni on a batch of cells: the driver ``pool_batch`` (z/knha/adhoc tests, Q, I², H², prediction
  interval), ``pool`` for one analysis, ``pool_cells`` for a studies table; ``tau2`` — every τ² estimator and the
  Q-profile interval; ``distributions`` — the t, normal and χ² functions (scipy.special).
* ``multivariate`` — rma.mv-like GLS with a known V and one random effect per group (``fit_mv``); ``gls`` — its
  likelihood and τ²; ``covariance`` — V for arms that share a control group; ``design`` — the additive component
  design and which components it identifies.
* ``bayes`` — the normal-normal model by quadrature over τ (``bayes_pool``, ``bayes_pool_table``); ``conditional``
  — its posterior given τ on a grid of τ (sums in numpy's pairwise order in either layout); ``mixtures`` —
  quantiles and probabilities of its posterior mixtures; ``bayes_many`` — many fits shared among worker processes.

Every model reports in one vocabulary (metafor's): ``estimate, se, ci_low, ci_high, pval, tau2, Q, Q_df, Q_p``;
bayes adds posterior summaries of τ (``tau_median``, ``tau_ci_low``, ``tau_ci_high``).
"""

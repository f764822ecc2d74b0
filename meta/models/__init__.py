"""Models: the statistics, on arrays. ``engine`` (rma.uni: every τ² estimator, z/knha/adhoc, Q, I², prediction
interval, Q-profile), ``bayes`` (normal-normal model by quadrature), ``multivariate`` (rma.mv-like GLS with known
block-diagonal V). They import nothing else of meta (an import-linter contract says so).
"""

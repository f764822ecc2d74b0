"""The t, normal and χ² distribution functions the models use, as scipy.special calls.

scipy.stats' ``t``, ``norm`` and ``chi2`` functions evaluate exactly these scipy.special functions (identical
values); scipy.stats itself is not imported because its import alone costs more than a whole ``meta pool``
(``python -X importtime``), and scipy.special is imported on the first call, not with this module: building
``meta``'s parser (which reads :data:`meta.models.engine.METHODS`) and a rerun that reuses its outputs import no
scipy.
"""

from __future__ import annotations

import numpy as np


def _special():
    """scipy.special, imported on first use."""
    from scipy import special

    return special


def t_ppf(q, df):
    """Quantile of Student's t (``scipy.stats.t.ppf``)."""
    return _special().stdtrit(df, q)


def t_sf(x, df):
    """Upper tail of Student's t (``scipy.stats.t.sf``)."""
    return _special().stdtr(df, -np.asarray(x, dtype=float))


def norm_ppf(q):
    """Standard normal quantile (``scipy.stats.norm.ppf``)."""
    return _special().ndtri(q)


def norm_sf(x):
    """Standard normal upper tail (``scipy.stats.norm.sf``)."""
    return _special().ndtr(-np.asarray(x, dtype=float))


def chi2_sf(x, df):
    """Upper tail of χ² (``scipy.stats.chi2.sf``)."""
    return _special().chdtrc(df, x)


def chi2_ppf(q, df):
    """Quantile of χ² (``scipy.stats.chi2.ppf``)."""
    return 2 * _special().gammaincinv(np.asarray(df, dtype=float) / 2, q)

"""The t, normal and χ² distribution functions the models use, as scipy.special calls.

scipy.stats' ``t``, ``norm`` and ``chi2`` functions evaluate exactly these scipy.special functions (identical
values); scipy.stats itself is not imported because its import alone costs more than a whole ``meta pool``
(``python -X importtime``).
"""

from __future__ import annotations

import numpy as np
from scipy import special


def t_ppf(q, df):
    """Quantile of Student's t (``scipy.stats.t.ppf``)."""
    return special.stdtrit(df, q)


def t_sf(x, df):
    """Upper tail of Student's t (``scipy.stats.t.sf``)."""
    return special.stdtr(df, -np.asarray(x, dtype=float))


def norm_ppf(q):
    """Standard normal quantile (``scipy.stats.norm.ppf``)."""
    return special.ndtri(q)


def norm_sf(x):
    """Standard normal upper tail (``scipy.stats.norm.sf``)."""
    return special.ndtr(-np.asarray(x, dtype=float))


def chi2_sf(x, df):
    """Upper tail of χ² (``scipy.stats.chi2.sf``)."""
    return special.chdtrc(df, x)


def chi2_ppf(q, df):
    """Quantile of χ² (``scipy.stats.chi2.ppf``)."""
    return 2 * special.gammaincinv(np.asarray(df, dtype=float) / 2, q)

"""Effects: each transcribed row becomes an effect on its harmonised scale (``yi``) with a standard error (``sei``,
its bracket ``sei_low``/``sei_high`` and ``se_method``), the way metafor's ``escalc`` turns printed numbers into
effect sizes. ``se`` holds every SE formula (from a CI, a p-value, shares and N, significance marks; the range bound
and the common-SE constraint), shared with ``meta simulate``; ``harmonise`` applies them row by row; ``concepts``
derives the survey differences from adjusted means and maps rows onto LOEP concepts and periods.
"""

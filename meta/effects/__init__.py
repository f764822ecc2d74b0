"""Effects: each transcribed row becomes an effect on its harmonised scale (``yi``) with a standard error (``sei``,
its bracket ``sei_low``/``sei_high`` and ``se_method``), the way metafor's ``escalc`` turns printed numbers into
effect sizes: SE from a CI, a p-value, shares and N, or significance marks; LOEP concepts and periods.
"""

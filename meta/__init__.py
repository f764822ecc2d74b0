"""meta: pools the Dutch Experimenten Participatiewet (2017-2020) across municipalities.

Stages, one module each, data flowing one way:
``load`` (inputs/ → validated frames) → ``harmonise`` (yi, sei, se_method, arm
classes) → ``selection`` (cells per plan) → ``engine`` (pooling) → ``tables``,
``plots``, ``report`` (outputs/). ``cli`` and ``pipeline`` sit on top.

Importing this package has no side effects on numpy's error state or Python's
warning filters (``forestplot`` is imported lazily inside ``plots``).

Notebook use::

    import meta
    res = meta.run()                      # default plan and inputs, nothing written
    res.pooled, res.studies, res.coverage  # pandas DataFrames
    res.figures["forest_hours_gt12_16m"]   # matplotlib Figure
"""

__version__ = "0.1.0"


def run(plan=None, inputs=None, out=None, lang="nl", figures=True, sensitivity=True):
    """Run the analysis and return a :class:`meta.pipeline.Results` (see :func:`meta.pipeline.run`).

    ``out`` passes the same guard as ``meta run --out`` (:func:`meta.outdir.check_out_dir`).
    """
    from meta import pipeline

    return pipeline.run(plan=plan, inputs=inputs, out=out, lang=lang, figures=figures, sensitivity=sensitivity)

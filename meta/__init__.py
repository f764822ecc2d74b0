"""meta: pools the Dutch Experimenten Participatiewet (2017-2020) across municipalities.

Layers, top to bottom; a module imports only from layers below its own (``pyproject.toml``, checked by
``lint-imports`` in ``make test``)::

    cli                          every subcommand (the only parser; ``meta simulate`` adds its options)
    api | template/              meta.run() for notebooks; adding a municipality: template, check, add, reconcile
    write/                       output folder guard and atomic swap, output files and manifest, workbook
    present/                     forest plots and other figures, figure cache, the HTML report (Jinja2 templates)
    analyses/ | simulate/        inputs × plan → studies → pooled cells; few studies; sensitivity; components |
                                 the simulation study, its summary (JSON + Markdown, quoted by the report)
    cells                        which studies form each cell (plan level: outcome code or LOEP concept)
    effects/                     yi and sei from printed numbers (SE from CI, p, shares+N, marks); concepts
    plan                         the analysis plan: defaults, settings, reading, checking it against the inputs
    read/                        schema of every file, the strict CSV reader, registers, estimates, load_inputs,
                                 meta pool's CSV, citations of the sources
    models/                      engine + tau2 (rma.uni), multivariate + gls, covariance, design (rma.mv, components),
                                 bayes + conditional + mixtures: import nothing else of meta
    i18n | control | errors      words (the catalogue messages.toml) and number formats (NL/EN); run stages and
                                 stop requests; InputError

Importing this package has no side effects on numpy's error state or Python's warning filters.

Notebook use::

    import meta
    res = meta.run()                      # default plan and inputs, nothing written
    res.pooled, res.studies, res.coverage  # pandas DataFrames
    res.figures["forest_werk_einde_experiment"]   # matplotlib Figure
"""

from meta.version import __version__  # noqa: E402,F401  (one place for the version)


def run(plan=None, inputs=None, out=None, lang="nl", figures=True, sensitivity=True):
    """Run the analysis and return a :class:`meta.analyses.pipeline.Results` (see :func:`meta.api.run`).

    ``out`` passes the same guard as ``meta run --out`` (:func:`meta.write.outdir.check_out_dir`).
    """
    from meta import api

    return api.run(plan=plan, inputs=inputs, out=out, lang=lang, figures=figures, sensitivity=sensitivity)

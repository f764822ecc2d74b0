"""Present: what a person reads. Forest plots and the list of figures (``plots``), the overview (``overview``),
specification curves (``spec_curve``), the component figure, what they share (``drawing``), the figure cache and
drawing workers (``figures``), and the HTML report: ``report`` (the page, headline,
findings, methods), ``report_sources`` (coverage, side by side, sources), ``report_cells`` (a cell's key, anchor and
words) and ``fewstudies_report`` compute its values, the Jinja2 templates in ``templates/`` lay them out
(``templating``: one autoescaping environment). Words and number formats come from :mod:`meta.i18n` (the catalogue ``meta/messages.toml``).
"""

"""Present: what a person reads. Forest plots, the overview and specification curves (``plots``), the figure cache
and drawing workers (``figures``), the component figure, and the HTML report: ``report`` (the page, headline,
findings, methods), ``report_sources`` (coverage, side by side, sources), ``report_cells`` (a cell's key, anchor and
words) and ``fewstudies_report`` compute its values, the Jinja2 templates in ``templates/`` lay them out
(``templating``: one autoescaping environment). Words and number formats come from :mod:`meta.i18n` (the catalogue ``meta/messages.toml``).
"""

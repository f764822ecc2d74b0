"""Present: what a person reads. Forest plots, the overview and specification curves (``plots``), the figure cache
and drawing workers (``figures``), the component figure, and the HTML report (``report``, ``fewstudies_report``).
Words and number formats come from :mod:`meta.i18n`.
"""

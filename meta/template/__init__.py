"""Adding a municipality: ``meta template``, ``meta check``, ``meta add``; and ``meta reconcile``.

``meta template --municipality NAME`` writes the rows an analyst fills from that municipality's report, a
one-row description of the report for ``sources.csv`` and a row for its legends (:mod:`meta.template.blank`);
``meta check FILE`` validates them with the loader ``meta run`` uses and prints one summary line and the
problems grouped (:mod:`meta.template.check`); ``meta add FILE`` merges complete, valid rows into the inputs
and refuses rows that conflict with existing ones (:mod:`meta.template.add`, which writes through
:mod:`meta.template.text` in each file's own style); ``meta reconcile FIRST SECOND`` lists every cell where two
transcriptions of the same rows differ (:mod:`meta.template.compare`). Only
:func:`meta.template.add.write_inputs_atomically` writes; the commands themselves are in :mod:`meta.cli`.
"""

"""Read: every input file, once, strictly; nothing here knows about effects, cells or models.

``schema`` declares every input file (columns, kinds, ranges) and reads one cell and one printed token; ``reader``
is the strict CSV reader and checks a table against its declaration; ``registers`` loads municipalities, arms,
outcomes, legends, periods, concepts, the harmonisation and the source documents; ``estimates`` loads the
transcription (``estimates.csv``) with its row and table checks; ``load`` reads a whole inputs folder
(:func:`meta.read.load.load_inputs` → :class:`meta.read.load.Inputs`); ``pool`` reads the CSV of ``meta pool``;
``sources`` turns ``sources.csv`` and ``source_pages.csv`` into citations.
"""

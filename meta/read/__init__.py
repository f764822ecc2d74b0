"""Read: the schema of every input file and of the plan, the strict CSV reader, the registers, the transcription
(``estimates.csv``) and the report descriptions (``sources.csv``). Everything in ``inputs/`` is read here and nowhere
else; nothing here knows about effects, cells or models.
"""

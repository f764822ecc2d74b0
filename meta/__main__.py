"""``python -m meta``: the same command line as the ``meta`` script (see :mod:`meta.cli`)."""

from meta.cli import command

command()

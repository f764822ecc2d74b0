"""The τ² estimators and tests of :mod:`meta.models.engine`, by name: no numpy or scipy, so ``meta --help`` and
the ``meta pool`` parser can list them without importing the engine."""

METHODS = ("DL", "HE", "SJ", "HS", "ML", "REML", "PM", "EB", "FE")
TESTS = ("z", "knha", "adhoc")

"""The one error type for bad input (importable without pandas, so ``meta --help`` and ``meta pool`` start fast)."""


class InputError(Exception):
    """Bad input. The message names file, row, column and the fix."""

"""The version of meta (the same as ``pyproject.toml``'s): ``meta.__version__`` and the report's header read it here,
at the bottom of the layers, so every layer may name it."""

__version__ = "0.1.0"

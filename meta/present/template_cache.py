"""The report's compiled templates kept between runs, as Python keeps compiled modules in ``__pycache__``.

Jinja2 compiles every template to Python code the first time a process renders it (18 templates: ~0.1 s of every
``meta run``). :func:`bytecode_cache` keeps that code in this package's ``__pycache__/jinja-<key>/``, beside Python's
compiled modules (ignored by git, and by :func:`meta.present.figures.code_files`). Jinja2 uses a cached template only when the checksum of its source is
the one it was compiled from; ``<key>`` is the SHA-256 of :mod:`meta.present.templating` (where the environment's
options are set, which change the compiled code too) and the Jinja2 version, so any change of template, options or
library compiles afresh. The rendered page is the same either way: the same code runs. A folder that cannot be
written, or a cached file that cannot be read, only means compiling as without a cache.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import jinja2
from jinja2.bccache import Bucket, FileSystemBytecodeCache

#: Where Python keeps this package's compiled modules.
PYCACHE = Path(__file__).resolve().parent / "__pycache__"


class _QuietCache(FileSystemBytecodeCache):
    """A file system bytecode cache that never fails a run: what it cannot write or read is compiled again."""

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:  # a read-only install, a full disk: the next run compiles again
            pass

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # noqa: BLE001 - a truncated or foreign file: compile as without a cache
            bucket.reset()


def cache_key() -> str:
    """SHA-256 (16 hex digits) of :mod:`meta.present.templating`'s source and the Jinja2 version."""
    source = (Path(__file__).resolve().parent / "templating.py").read_bytes()
    return hashlib.sha256(source + b"\0" + jinja2.__version__.encode()).hexdigest()[:16]


def bytecode_cache(folder: Path | None = None) -> FileSystemBytecodeCache | None:
    """The bytecode cache of the report's environment in ``folder`` (default :data:`PYCACHE` ``/ jinja-<key>``), or
    None when the folder cannot be made (then every process compiles its templates)."""
    folder = Path(folder) if folder is not None else PYCACHE / f"jinja-{cache_key()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return _QuietCache(str(folder))

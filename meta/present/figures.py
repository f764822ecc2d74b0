"""Output files made once: content-addressed reuse and parallel drawing (stage 5, beside ``plots``).

Every figure is a pure function of a small payload (its rows, title, unit, level and language) and of the code.
A figure's *key* is the SHA-256 of

    code version  (the source of every ``meta/*.py`` module and the matplotlib version)
    + the figure's kind, file formats and payload (DataFrames as the bytes of their numbers and their texts as
      JSON, scalars as JSON).

The workbook is keyed the same way by the tables it is made from (:func:`frames_key`). ``manifest.json`` records
the key of every such file (``content_keys``). On the next run a file whose key is unchanged is taken from the
previous output folder (hard link, else byte copy) instead of being made again; the manifest lists those under
``reused``. Figures left to draw are drawn in worker processes (``jobs``; :class:`Drawing`, batch by batch: ``meta
run`` starts the forest plots before the sensitivity analysis), each writing its own files, so the bytes are the
same whichever process drew a figure (PNG without a software stamp, SVG with a fixed hash salt and no date).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path



@dataclass(frozen=True)
class FigureJob:
    """One figure: ``draw(**payload)`` returns a matplotlib Figure; it is saved as ``files`` (format → name)."""

    name: str
    kind: str  # "forest", "spec_curve", "components": picks the drawing function (see :func:`_drawer`)
    title: str
    files: dict  # {"png": "forest_x_16m.png", "svg": ...}
    payload: dict = field(default_factory=dict)
    save: dict = field(default_factory=dict)  # savefig options: dpi, tight


def code_files() -> list[Path]:
    """Every file of the ``meta`` package that can change what is drawn or written: the Python sources, the message
    catalogue (``messages.toml``), the report templates and their CSS (compiled ``__pycache__`` files excluded)."""
    package = Path(__file__).resolve().parents[1]  # meta/
    return sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


@functools.cache
def code_version() -> str:
    """SHA-256 of every file of :func:`code_files` (by its path under ``meta/``) and the versions of the libraries
    that write the files (without importing them): any change of code, wording, template or library makes every file
    again. Computed once per process (the run's key and its figures' keys read it before the figure workers are
    forked; each call hashed ~1.4 MB and parsed five METADATA files)."""
    from importlib.metadata import PackageNotFoundError, version

    h = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]  # meta/
    for path in code_files():
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for pkg in ("matplotlib", "pillow", "pandas", "openpyxl", "numpy", "zlib-ng"):
        try:
            h.update(f"{pkg} {version(pkg)}".encode())
        except PackageNotFoundError:  # pragma: no cover
            pass
    return h.hexdigest()


def _canonical(value) -> bytes:
    """Payload value as deterministic bytes: a DataFrame or Series by :func:`_frame_bytes`, the rest as JSON."""
    import pandas as pd

    if isinstance(value, (pd.DataFrame, pd.Series)):
        return _frame_bytes(value)
    return json.dumps(value, sort_keys=True, default=str).encode("utf-8")


def _frame_bytes(value) -> bytes:
    """A DataFrame or Series as bytes that differ whenever its content does: column labels, dtypes, index, the names
    of the index's and the columns' levels, its ``attrs`` (a forest plot's footer lives there), then every column of
    numbers (int, float, bool, dates) as its machine bytes (every bit of every float) and the other columns (texts,
    nullable integers) together as JSON (floats in them as ``repr``, a value JSON cannot hold as ``[type, repr]``).
    The same frame built again gives the same bytes (no memory addresses, no ids). Cheaper than writing CSV with
    ``repr`` of every float (what this replaced)."""
    import numpy as np
    import pandas as pd

    frame = value.to_frame(name=0) if isinstance(value, pd.Series) else value
    kind = "series " + repr(value.name) if isinstance(value, pd.Series) else "frame"
    columns = [frame.index, *(col for _, col in frame.items())]
    numbers = [isinstance(c.dtype, np.dtype) and c.dtype.kind in "biufcmM" for c in columns]
    head = json.dumps([kind, [repr(c) for c in frame.columns], [str(c.dtype) for c in columns], len(frame),
                       value.attrs, [repr(n) for n in frame.index.names], [repr(n) for n in frame.columns.names]],
                      sort_keys=True, default=str)
    parts = [head.encode("utf-8")]
    parts += [np.ascontiguousarray(c.to_numpy()).tobytes() for c, n in zip(columns, numbers) if n]
    other = [c.tolist() for c, n in zip(columns, numbers) if not n]
    parts.append(json.dumps(other, default=_tagged, check_circular=False).encode("utf-8", "surrogatepass"))
    return b"\0".join(parts)


def _tagged(value) -> list:
    """A value JSON cannot hold (pd.NA, numpy integers, ...) as ``["\0", type name, repr]``: unlike any text."""
    return ["\0", type(value).__name__, repr(value)]


def job_key(job: FigureJob, version: str) -> str:
    """The content key of a figure: code version + kind + formats + save options + payload."""
    h = hashlib.sha256()
    for part in (version, job.kind, job.title, json.dumps(job.files, sort_keys=True),
                 json.dumps(job.save, sort_keys=True)):
        h.update(part.encode("utf-8") + b"\0")
    for name in sorted(job.payload):
        h.update(name.encode("utf-8") + b"\0" + _canonical(job.payload[name]) + b"\0")
    return h.hexdigest()


def _drawer(kind: str):
    from meta.present import component_figure, overview, plots, spec_curve

    return {"forest": plots.draw_forest_rows, "spec_curve": spec_curve.draw_spec_curve,
            "components": component_figure.draw_components, "overview": overview.draw_overview_rows}[kind]


def render(job: FigureJob, folder: str) -> str:
    """Draw one job and save its files into ``folder`` (runs in a worker process or in-process)."""
    import matplotlib

    fig = _drawer(job.kind)(**job.payload)  # made without pyplot (drawing.new_figure): nothing to close
    folder = Path(folder)
    box = "tight" if job.save.get("tight") else None
    for fmt, name in job.files.items():
        if fmt == "png":
            save_png(fig, folder / name, job.save.get("dpi", 100), box)
        else:
            with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "meta"}):  # text as text; stable ids
                fig.savefig(folder / name, bbox_inches=box, metadata={"Date": None, "Creator": None})
    return job.name


def save_png(fig, path, dpi: float, box=None) -> None:
    """Save ``fig`` as PNG: the pixels matplotlib's Agg renders for ``savefig(path, dpi=dpi, bbox_inches=box)``,
    written as RGB when every pixel is opaque (the figures have a white background; no alpha channel to compress),
    with the resolution but no software stamp in the file, by :func:`meta.present.png.png_bytes` (rows unfiltered,
    zlib level 3). The pixels are read from the renderer's buffer in place (no copy) and the alpha bytes checked
    by :func:`meta.present.png.opaque`. Drawn by :class:`meta.present.agg_text.TextCachingCanvas` where
    :func:`meta.present.agg_text.caches_text` allows it."""
    import contextlib

    from meta.present.agg_text import TextCachingCanvas, caches_text, layouts_kept
    from meta.present.png import opaque, png_bytes

    kept = contextlib.nullcontext()
    if caches_text():
        TextCachingCanvas(fig)  # the same pixels, each line of text shaped once per process
        kept = layouts_kept()  # and each text laid out once
    sink = _BufferSink()
    with kept:
        fig.savefig(sink, format="raw", dpi=dpi, bbox_inches=box)
    renderer = fig.canvas.renderer  # the one the raw pixels were drawn with
    w, h = int(renderer.width), int(renderer.height)
    if sink.view is None or sink.view.nbytes != 4 * w * h:  # pragma: no cover - renderer and buffer disagree
        raise RuntimeError(f"{path}: {0 if sink.view is None else sink.view.nbytes} bytes of pixels for {w} x {h}")
    Path(path).write_bytes(png_bytes(sink.view, w, h, alpha=not opaque(sink.view), dpi=dpi))


class _BufferSink:
    """A file-like target for ``savefig(format="raw")`` that keeps the renderer's pixel buffer it is handed instead of
    copying it (valid while the figure's renderer lives)."""

    def __init__(self):
        self.view = None

    def write(self, data) -> int:
        self.view = memoryview(data).cast("B")
        return self.view.nbytes

    def seek(self, offset: int, whence: int = 0) -> int:  # matplotlib takes an object with seek for a file
        return 0


def frames_key(kind: str, frames: dict, version: str | None = None) -> str:
    """Content key of a file made from ``frames`` ({name: DataFrame or JSON-able value}) by the current code."""
    h = hashlib.sha256()
    for part in (version or code_version(), kind):
        h.update(part.encode("utf-8") + b"\0")
    for name in sorted(frames):
        h.update(name.encode("utf-8") + b"\0" + _canonical(frames[name]) + b"\0")
    return h.hexdigest()


def previous_keys(previous: Path | None) -> dict:
    """{relative file name: key} recorded in a previous output folder's manifest ({} when there is none), without
    the files whose bytes no longer have the SHA-256 the manifest recorded (an edited figure is drawn again)."""
    if previous is None:
        return {}
    try:
        manifest = json.loads((Path(previous) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    keys = manifest.get("content_keys")
    keys = {str(k): str(v) for k, v in keys.items()} if isinstance(keys, dict) else {}
    hashes = manifest.get("sha256")  # recorded since whole-run reuse (meta.write.rerun); older manifests lack it
    if isinstance(hashes, dict):  # a file changed since it was written is made again, not reused
        keys = {k: v for k, v in keys.items() if k in hashes and _sha256(Path(previous) / k) == hashes[k]}
    return keys


def sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, as hex (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sha256(path: Path) -> str | None:
    """:func:`sha256`, None when the file cannot be read."""
    try:
        return sha256(path)
    except OSError:
        return None


def reuse(name: str, key: str, previous: Path | None, folder: Path, old: dict | None = None) -> bool:
    """Take ``previous/name`` as ``folder/name`` when the previous run recorded the same key for it."""
    if previous is None:
        return False
    old = previous_keys(previous) if old is None else old
    src = Path(previous) / name
    return old.get(name) == key and src.is_file() and _reuse(src, Path(folder) / name)


def _reuse(src: Path, dst: Path) -> bool:
    try:
        os.link(src, dst)
    except OSError:
        try:
            shutil.copyfile(src, dst)
        except OSError:
            return False
    return True


def default_jobs() -> int:
    """Worker processes for drawing: the CPUs this process may use, at most 4."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(4, n))


def worker_count(jobs: int | None = None) -> int:
    """Worker processes for drawing: ``jobs`` (``--jobs``; at least 1), or :func:`default_jobs` when not given."""
    return default_jobs() if jobs is None else max(1, int(jobs))


def reuse_job(job: FigureJob, folder: Path, version: str, previous: Path | None, old: dict
              ) -> tuple[list[str], str, bool]:
    """(``job``'s files as "figures/<file>", its content key, whether they were taken): its files are taken from the
    ``previous`` output folder into ``folder`` (the figures folder) when ``old`` (:func:`previous_keys`) recorded the
    same key for each of them (all or none: a partial reuse is undone, the job is drawn whole)."""
    key = job_key(job, version)
    names = [f"figures/{n}" for n in job.files.values()]
    root = Path(folder).parent
    if previous is None or not all(old.get(n) == key and (Path(previous) / n).is_file() for n in names):
        return names, key, False
    if all(_reuse(Path(previous) / n, root / n) for n in names):
        return names, key, True
    for n in names:
        (root / n).unlink(missing_ok=True)
    return names, key, False


def reuse_jobs(jobs: list, folder: Path, version: str, previous: Path | None, old: dict
               ) -> tuple[list, dict, list[str]]:
    """:func:`reuse_job` for every job: (the jobs left to draw, ``{"figures/<file>": key}`` of every job, the files
    taken from ``previous``)."""
    todo, keys, reused = [], {}, []
    for job in jobs:
        names, key, taken = reuse_job(job, folder, version, previous, old)
        keys.update(dict.fromkeys(names, key))
        if taken:
            reused.extend(names)
        else:
            todo.append(job)
    return todo, keys, reused


class Batch:
    """Figures given to :meth:`Drawing.add` at once: ``jobs``, or those a crew made (:meth:`Crew.first`)."""

    def __init__(self, jobs: list | None = None, crew=None):
        self._jobs, self._crew = jobs, crew

    def jobs(self) -> list[FigureJob]:
        """The batch's jobs (without payload when a crew made them; waits until it has)."""
        return self._crew.first()[0] if self._crew is not None else self._jobs


class Drawing:
    """Figures made into ``folder`` in batches, while this process does other work between them.

    :meth:`add` takes a batch: a job whose content key the ``previous`` output folder's manifest recorded is taken
    from there (hard link, else byte copy; all its files or none), the others are drawn from then on by one
    :class:`meta.present.workers.Crew` of up to ``workers`` forked processes (default :func:`default_jobs`) that
    takes every batch in turn (a first batch given as a function is made, keyed and reused in the crew's first
    worker); with one worker they are drawn in this process by :meth:`finish`, which waits for every batch and returns
    ``({"figures/<file>": key}, [those reused])`` for the manifest. Leaving the ``with`` block stops the workers
    still drawing (an error, Ctrl-C): no process outlives it. ``spare``: a :class:`meta.present.workers.Spare`
    forked before the analysis, warm, which then leads the first batch's crew instead of a leader forked at
    :meth:`add`.
    """

    def __init__(self, folder: Path, previous: Path | None = None, workers: int | None = None, spare=None):
        self.folder, self.previous, self.spare = Path(folder), previous, spare
        self.workers = worker_count(workers)
        self.keys, self.reused, self.later, self.crews = {}, [], [], []
        self._version = self._old = None  # read once, when first needed

    @property
    def version(self) -> str:
        """:func:`code_version`, read once per run: the figures' keys and the workbook's (:func:`frames_key`)."""
        if self._version is None:
            self._version = code_version()
        return self._version

    @property
    def old_keys(self) -> dict:
        """:func:`previous_keys` of ``previous``, read once per run (it hashes every file of the previous folder):
        the figures and the workbook are reused by it."""
        if self._old is None:
            self._old = previous_keys(self.previous)
        return self._old

    def add(self, jobs) -> "Batch":
        """Reuse or start drawing ``jobs`` (see the class): a list, or a function making them. The first function
        given to a parallel drawing is called in the crew's first worker (:class:`meta.present.workers.Crew`), which
        keys and reuses its jobs there, so that this process neither makes them nor imports matplotlib; later
        batches are keyed and reused here and handed to the same crew. Returns the batch, whose
        :meth:`Batch.jobs` gives its jobs (without payload when made elsewhere)."""
        from meta.present import workers

        parallel = workers.parallel(self.workers)
        if callable(jobs):
            if parallel and not self.crews:
                crew = workers.Crew(jobs, self.folder, self.workers, (self.version, self.previous, self.old_keys),
                                    self.spare)
                self.crews.append(crew)
                return Batch(crew=crew)
            jobs = jobs()
        todo, keys, reused = reuse_jobs(jobs, self.folder, self.version, self.previous, self.old_keys)
        self.keys.update(keys)
        self.reused.extend(reused)
        if todo and parallel and self.crews:
            self.crews[-1].send(todo)
        elif todo and parallel:
            self.crews.append(workers.Crew(todo, self.folder, min(self.workers, len(todo))))
        else:
            self.later.extend(todo)
        return Batch(list(jobs))

    def finish(self) -> tuple[dict, list[str]]:
        """Draw what is left in this process, wait for every worker; the keys and the files reused."""
        for job in self.later:
            render(job, str(self.folder))
        self.later = []
        for crew in self.crews:
            crew.join()
            _, keys, reused = crew.first()  # what the crew keyed and reused itself
            self.keys.update(keys)
            self.reused.extend(reused)
        self.crews = []
        return dict(sorted(self.keys.items())), sorted(self.reused)

    def close(self) -> None:
        """Stop the workers still drawing."""
        for crew in self.crews:
            crew.stop()
        self.crews = []

    def __enter__(self) -> "Drawing":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

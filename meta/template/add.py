"""``meta add``: merge the rows :func:`meta.template.check.check_rows` accepted into the inputs folder.

New rows are appended to ``estimates.csv`` (and the report to ``sources.csv``, its legends to
``significance_legends.csv``) in each file's own style, their municipalities marked ``transcribed``; rows that
conflict with existing ones are refused, identical ones skipped, and nothing is written unless the merged
inputs load (:func:`meta.read.load.load_inputs`). Only :func:`write_inputs_atomically` writes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


from meta.errors import InputError
from meta.read.estimates import ESTIMATE_COLUMNS
from meta.read.load import load_inputs
from meta.read.reader import read_csv_strict
from meta.template.blank import FILL_NOTE, SOURCE_FILL_NOTE
from meta.template.check import Check
from meta.template.compare import plan_addition
from meta.template.text import append, column_names, csv_rows, file_style, read_text, set_status


def write_inputs_atomically(folder: Path, texts: dict[str, str]) -> None:
    """Write the changed input files: every file is first written next to its target, then all are renamed.

    A file is never half-written; the municipalities register is replaced before the estimates, so an
    interruption between the renames leaves inputs that still load (a transcribed municipality without rows).
    """
    order = sorted(texts, key=lambda name: name == "estimates.csv")
    temps = {}
    try:
        for name in order:
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                f.write(texts[name])
            shutil.copymode(folder / name, tmp) if (folder / name).exists() else None
            temps[name] = tmp
        for name in order:
            os.replace(temps[name], folder / name)
            del temps[name]
    finally:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)


def add_rows(result: Check, inputs_dir: Path) -> list[str]:
    """Merge the checked rows into ``inputs_dir``: append new rows to ``estimates.csv`` (and the new report to
    ``sources.csv``, its legends to ``significance_legends.csv``), mark their municipalities ``transcribed``;
    validate the merged inputs with :func:`meta.read.load.load_inputs` before anything is written. Returns the
    lines that say what changed.

    Refuses (:class:`InputError`) a check with errors or empty cells, and rows that conflict with existing ones.
    """
    inputs_dir = Path(inputs_dir)
    if not result.ok:
        raise InputError(f"{result.path}: not added: {len({p.row for p in result.errors})} rows with errors, "
                         f"{len(result.empty) + len(result.source_empty) + len(result.legend_empty)} still empty; "
                         "run meta check "
                         f"{result.path} and fix them first")
    est_path = inputs_dir / "estimates.csv"
    existing = read_csv_strict(est_path, ESTIMATE_COLUMNS)
    new, same = _new_rows(result, existing, est_path)
    texts = {}
    if len(new):
        texts["estimates.csv"] = _appended(est_path, new)
    munis_path = inputs_dir / "municipalities.csv"
    munis_text, changed = set_status(read_text(munis_path), sorted(set(new["municipality"])))
    if changed:
        texts["municipalities.csv"] = munis_text
    n_sources = 0
    if result.sources is not None and len(result.sources):
        added_sources = result.sources[result.sources["source_file"].isin(set(new["source_file"]))]
        added_sources = added_sources.assign(note=["" if n == SOURCE_FILL_NOTE else n for n in added_sources["note"]])
        if len(added_sources):
            texts["sources.csv"] = _appended(inputs_dir / "sources.csv", added_sources)
            n_sources = len(added_sources)
    n_legends = 0
    if result.legends is not None and len(result.legends):
        texts["significance_legends.csv"] = _appended(inputs_dir / "significance_legends.csv", result.legends)
        n_legends = len(result.legends)
    if not texts:
        return [f"meta add: nothing to add: all {len(same)} rows of {result.path} are already in {est_path}"]
    _check_merged(result.path, inputs_dir, texts)
    write_inputs_atomically(inputs_dir, texts)
    total = len(existing) + len(new)
    lines = [f"meta add: {len(new)} rows of {result.path} added to {est_path} (now {total} rows)"]
    lines += [f"meta add: {m}: status pending -> transcribed in {munis_path}" for m in changed]
    if n_sources:
        lines.append(f"meta add: {n_sources} source{'s' if n_sources > 1 else ''} added to {inputs_dir / 'sources.csv'}")
    if n_legends:
        lines.append(f"meta add: {n_legends} legend row{'s' if n_legends > 1 else ''} added to "
                     f"{inputs_dir / 'significance_legends.csv'}")
    if same:
        lines.append(f"meta add: {len(same)} rows already there, identical, skipped")
    return lines


def _new_rows(result: Check, existing, est_path: Path):
    """The checked rows not yet in ``estimates.csv`` (fill-in note dropped), and the messages about identical rows
    skipped; a row that conflicts with the file as it is now is refused."""
    rows = result.rows[result.rows["input_row"].isin(set(result.valid["input_row"]))].copy()
    # numbers as the loader read them (a semicolon file's decimal commas become dots); the fill-in note goes
    rows["note"] = ["" if n == FILL_NOTE else n for n in rows["note"]]
    new, same, conflicts = plan_addition(rows, existing)
    if conflicts:  # meta check reports them too; checked again here against the file as it is now
        raise InputError(f"{result.path}: not added: {len(conflicts)} row{'s' if len(conflicts) > 1 else ''} "
                         f"conflict with {est_path}: " + " | ".join(f"row {c.row}: {c.message}" for c in conflicts)
                         + "; correct this file or the existing rows, nothing was written")
    return new, same


def _appended(path: Path, rows) -> str:
    """The text of ``path`` with ``rows`` appended in its own style (delimiter, decimals, line ending)."""
    text = read_text(path)
    style = file_style(text)
    return append(text, csv_rows(rows, column_names(text, style), style), style)


def _check_merged(path: Path, inputs_dir: Path, texts: dict[str, str]) -> None:
    """Refuse (naming the analyst's ``path``) when a copy of the inputs with the new ``texts`` would not load."""
    with tempfile.TemporaryDirectory(prefix="meta-add-") as tmp:  # the merged inputs must load before any write
        staging = Path(tmp)
        for f in inputs_dir.iterdir():
            if f.is_file() and (f.suffix in (".csv", ".toml")):
                shutil.copy(f, staging / f.name)
        for name, text in texts.items():
            (staging / name).write_text(text, encoding="utf-8", newline="")
        try:
            load_inputs(staging)
        except InputError as exc:
            raise InputError(f"{path}: not added: the merged inputs would be refused: "
                             f"{str(exc).replace(str(staging), str(inputs_dir))}") from None

"""The files of a run, and reading them back: the one source of the numbers that are quoted.

``simulation_results.csv``  the results table (one row per τ × k × SE policy × method × test)
``simulation_summary.json`` everything else the summary and the report quote: the command, the settings and the
                            design, the diagnostics (reconstruction and regression checks), the runtime, and the
                            results file's name and sha256 (the pair is read together or not at all)
``simulation_summary.md``   the Markdown summary, written from the two files above as read back, so it shows
                            exactly the numbers the report computes from them

The report (:mod:`meta.present.report`) reads the JSON and the table with :func:`read_summary`; nothing parses the
Markdown.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import pandas as pd

from meta.errors import InputError
from meta.simulate.settings import JSON_FILE, RESULTS_FILE, SUMMARY_FILE, Municipality, Settings


@dataclass
class SimulationResult:
    """The tidy results table and the diagnostics of one run (:func:`meta.simulate.study.run_simulation` makes it,
    :func:`read_summary` reads it back; here, so that reading a summary imports none of the study)."""

    results: pd.DataFrame
    regression_check: pd.DataFrame
    reconstruction_check: pd.DataFrame
    settings: Settings
    seconds: float = math.nan


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _plain(value):
    """A JSON value: numpy scalars as Python numbers, NaN as null."""
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def summary_record(res: SimulationResult, results_csv: str, command: str) -> dict:
    """The JSON summary of a run whose results table was written as the text ``results_csv``."""
    settings = {f.name: getattr(res.settings, f.name) for f in fields(Settings) if f.name != "design"}
    return {
        "about": "meta simulate: settings, design and diagnostics of the run whose results are in the file named "
                 "under 'results' (numbers in percentage points or shares; see simulation_summary.md)",
        "command": command,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
        "design": [asdict(m) for m in res.settings.design],
        "results": {"file": RESULTS_FILE, "sha256": _sha256(results_csv)},
        "seconds": _plain(float(res.seconds)),
        "reconstruction_check": _records(res.reconstruction_check),
        "regression_check": _records(res.regression_check),
    }


def settings_from_record(record: dict) -> Settings:
    """The :class:`Settings` a JSON summary records (lists back to tuples)."""
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in record["settings"].items()}
    design = tuple(Municipality(m["name"], tuple((a, int(n)) for a, n in m["arms"]), m["sizes"])
                   for m in record["design"])
    return Settings(**kw, design=design)


def read_summary(path) -> SimulationResult:
    """The run a JSON summary describes, with its results table read from the file it names.

    Raises
    ------
    FileNotFoundError
        The summary is missing.
    InputError
        The results table it names is missing, or is not the one the summary was written with (sha256 differs).
    """
    path = Path(path)
    record = json.loads(path.read_text(encoding="utf-8"))
    results_path = path.with_name(record["results"]["file"])
    fix = "run meta simulate again, or restore both files from git"
    if not results_path.exists():
        raise InputError(f"{path} names the results table {results_path}, which does not exist; {fix}")
    text = results_path.read_text(encoding="utf-8")
    if _sha256(text) != record["results"]["sha256"]:
        raise InputError(f"{results_path} is not the results table {path} was written with (sha256 differs); "
                         f"{fix}")
    seconds = record["seconds"]
    return SimulationResult(pd.read_csv(io.StringIO(text)), pd.DataFrame(record["regression_check"]),
                            pd.DataFrame(record["reconstruction_check"]), settings_from_record(record),
                            math.nan if seconds is None else seconds)


def write_outputs(res: SimulationResult, out, command: str | None = None) -> tuple[Path, Path, Path]:
    """Write ``simulation_results.csv``, ``simulation_summary.json`` and ``simulation_summary.md`` into ``out``
    (created if needed); the Markdown is written from the first two as read back (:func:`read_summary`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    from meta.simulate.markdown import canonical_command, summary_markdown  # only when writing a run's files

    cmd = command or canonical_command(res.settings, out)
    csv_path, json_path, md_path = out / RESULTS_FILE, out / JSON_FILE, out / SUMMARY_FILE
    csv_text = res.results.to_csv(index=False, float_format="%.6g", lineterminator="\n")
    _write_atomic(csv_path, csv_text)
    record = summary_record(res, csv_text, cmd)
    _write_atomic(json_path, json.dumps(record, indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    _write_atomic(md_path, summary_markdown(read_summary(json_path), out, cmd))
    return csv_path, json_path, md_path

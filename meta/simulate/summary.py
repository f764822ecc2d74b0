"""The files of a run: the results table (CSV) and the Markdown summary, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

from meta.simulate.markdown import summary_markdown
from meta.simulate.settings import RESULTS_FILE, SUMMARY_FILE
from meta.simulate.study import SimulationResult


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_outputs(res: SimulationResult, out, command: str | None = None) -> tuple[Path, Path]:
    """Write ``simulation_results.csv`` and ``simulation_summary.md`` into ``out`` (created if needed)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / RESULTS_FILE, out / SUMMARY_FILE
    _write_atomic(csv_path, res.results.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
    _write_atomic(md_path, summary_markdown(res, out, command))
    return csv_path, md_path

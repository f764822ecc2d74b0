"""``meta check``: validate a filled template with the loader ``meta run`` uses, and say what is still empty.

:func:`check_rows` validates every complete row on its own (so every wrong row is reported, not only the first),
then the rows together; a filled description of the report (``--sources``) and filled legends (``--legends``)
alike. :func:`format_check` prints one summary line and the problems grouped by column.
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from meta.errors import InputError
from meta.read import schema
from meta.read.estimates import ESTIMATE_COLUMNS, ESTIMATE_KEY, ESTIMATE_OPTIONAL_INTS, load_estimates
from meta.read.load import LOGGER, Inputs
from meta.read.reader import read_csv_strict
from meta.read.registers import load_legends, load_sources
from meta.template.blank import LEGEND_REQUIRED_TO_FILL, REQUIRED_TO_FILL, SOURCE_REQUIRED_TO_FILL
from meta.template.compare import differing, plan_addition, row_key
from meta.template.text import append, column_names, csv_rows, file_style, has_rows, read_text


@dataclass
class Problem:
    """One refused cell: the row of the analyst's file (0: the file itself), the column, the message."""

    row: int
    column: str
    message: str


@dataclass
class Check:
    """What :func:`check_rows` found in a filled template."""

    path: Path
    rows: pd.DataFrame  # every row as read (strings, with input_row)
    valid: pd.DataFrame  # complete rows that passed the loader's checks (converted, with input_row)
    empty: dict = field(default_factory=dict)  # input_row -> columns still empty
    errors: list = field(default_factory=list)  # Problem
    notes: list = field(default_factory=list)  # str: accepted, but worth knowing
    sources: pd.DataFrame | None = None  # rows of the --sources file (complete and valid), if any
    sources_path: Path | None = None
    source_empty: dict = field(default_factory=dict)  # --sources file: input_row -> columns still empty
    legends: pd.DataFrame | None = None  # new rows of the --legends file (complete and valid), if any
    legends_path: Path | None = None
    legend_empty: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.empty and not self.source_empty and not self.legend_empty


_POSITION = re.compile(r"^(?P<path>.*?): row (?P<row>\d+) \(line \d+\)(?:, column (?P<col>[^:]+))?: (?P<msg>.*)$",
                       re.S)


def _problem(exc: InputError, row_map: dict[int, int] | None) -> Problem:
    """An :class:`InputError` of the loader as a Problem in the analyst's file (row numbers mapped back)."""
    m = _POSITION.match(str(exc))
    if not m:
        return Problem(0, "", str(exc).split(": ", 1)[-1])
    row = int(m.group("row"))
    return Problem(row_map.get(row, row) if row_map else row, m.group("col") or "", m.group("msg"))


def _validate_rows(frame: pd.DataFrame, inputs: Inputs, known_sources: set | None,
                   legends: pd.DataFrame | None = None) -> tuple[pd.DataFrame, list, list]:
    """Validate complete estimate rows with the loader of ``meta run`` (:func:`meta.read.estimates.load_estimates`).

    Each row is validated on its own, so every wrong row is reported, not only the first; the rows that pass
    are then validated together (duplicated keys). The municipalities of the rows count as transcribed here.
    ``legends``: the legends to check marks against (default the inputs'; with a ``--legends`` file, merged).
    Returns (valid rows, problems, notes).
    """
    munis = inputs.municipalities.copy()
    munis.loc[munis["municipality"].isin(set(frame["municipality"])), "status"] = "transcribed"
    problems, good, notes = [], [], []
    with tempfile.TemporaryDirectory(prefix="meta-check-") as tmp, _Notes() as said:
        tmp_file = Path(tmp) / "rows.csv"

        def load_rows(rows: pd.DataFrame) -> pd.DataFrame:
            rows.drop(columns=["input_row"]).to_csv(tmp_file, index=False)
            said.messages.clear()
            try:
                return load_estimates(tmp_file, munis, inputs.arms, inputs.outcomes,
                                           inputs.legends if legends is None else legends)
            finally:  # the loader's notes (a value normalised), about the analyst's row, not the temporary file
                row_map = dict(enumerate(rows["input_row"].astype(int), start=1))
                for m in said.messages:
                    problem = _problem(InputError(m), row_map)
                    if problem.row and len(rows) == 1:
                        notes.append(f"row {problem.row}" + (f", column {problem.column}" if problem.column else "")
                                     + f": {problem.message}")

        for i in range(len(frame)):
            row = frame.iloc[[i]]
            n = int(row["input_row"].iat[0])
            if known_sources is not None and row["source_file"].iat[0] not in known_sources:
                problems.append(Problem(n, "source_file", f"no row in sources.csv for {row['source_file'].iat[0]!r}; "
                                        "describe the report in the sources template (meta template writes it) "
                                        "and pass it with --sources"))
                continue
            try:
                load_rows(row)
            except InputError as exc:
                problems.append(_problem(exc, {1: n}))
                continue
            good.append(i)
        if not good:
            return frame.iloc[0:0], problems, notes
        rows = frame.iloc[good]
        key = list(ESTIMATE_KEY)
        keys = [row_key(r, key) for r in rows.to_dict("records")]
        first: dict[tuple, int] = {}
        dup = []
        for n, k in zip(rows["input_row"].astype(int), keys):
            if k in first:
                dup.append(n)
                problems.append(Problem(n, "source_table", f"same cell ({', '.join(k)}) as row {first[k]}; keep one "
                                        "of them, or give them different model or population codes"))
            else:
                first[k] = n
        rows = rows[~rows["input_row"].astype(int).isin(dup)]
        try:
            valid = load_rows(rows)
        except InputError as exc:  # a check across rows (a duplicated key)
            problems.append(_problem(exc, dict(enumerate(rows["input_row"].astype(int), start=1))))
            return frame.iloc[0:0], problems, notes
    valid["input_row"] = rows["input_row"].to_numpy()
    return valid, problems, notes


class _Notes(logging.Handler):
    """Collects the warnings of the ``meta.read`` loggers instead of printing them (used as a context manager)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._logger = logging.getLogger(LOGGER)
        self._propagate = self._logger.propagate

    def emit(self, record):
        self.messages.append(record.getMessage())

    def __enter__(self):
        self._logger.addHandler(self)
        self._logger.propagate = False
        return self

    def __exit__(self, *exc):
        self._logger.removeHandler(self)
        self._logger.propagate = self._propagate
        return False


def check_sources(path: Path, inputs: Inputs) -> tuple[pd.DataFrame, list, dict]:
    """Validate a filled sources template (rows for ``sources.csv``) with the loader's rules.

    A row already in ``sources.csv`` must be identical to it (and is then not added again); a row left blank
    (only the template's note) adds nothing. Returns (complete valid rows not yet in sources.csv, problems, empty rows -> columns).
    """
    frame = read_csv_strict(path, schema.SOURCES.required)
    # a row left as the template wrote it adds nothing (the report may already be in sources.csv)
    frame = frame[[any(getattr(r, c) != "" for c in schema.SOURCES.required if c != "note")
                   for r in frame.itertuples(index=False)]]
    empty = {int(r.input_row): [c for c in SOURCE_REQUIRED_TO_FILL if getattr(r, c) == ""]
             for r in frame.itertuples(index=False)}
    empty = {k: v for k, v in empty.items() if v}
    complete = frame[~frame["input_row"].isin(list(empty))]
    existing = inputs.sources.drop(columns=["input_row"], errors="ignore") if len(inputs.sources) else None
    problems, known_rows = [], []
    with tempfile.TemporaryDirectory(prefix="meta-check-") as tmp:
        tmp_file = Path(tmp) / "sources.csv"
        for i in range(len(complete)):
            row = complete.iloc[[i]].drop(columns=["input_row"])
            n = int(complete["input_row"].iat[i])
            name = row["source_file"].iat[0]
            if existing is not None and name in set(existing["source_file"]):
                old = existing[existing["source_file"] == name].iloc[0].to_dict()
                diff = differing(row.iloc[0].to_dict(), old, [c for c in schema.SOURCES.required if c != "note"])
                if diff:
                    problems.append(Problem(n, diff[0], f"{name!r} is already in sources.csv with other values: "
                                            + "; ".join(f"{c} {old[c]!r} there, {row[c].iat[0]!r} here"
                                                        for c in diff)))
                known_rows.append(i)  # identical: nothing to add
                continue
            row.to_csv(tmp_file, index=False)
            try:
                load_sources(tmp_file)
            except InputError as exc:
                problems.append(_problem(exc, {1: n}))
    bad = {p.row for p in problems} | set(complete["input_row"].iloc[known_rows])
    return complete[~complete["input_row"].isin(bad)], problems, empty


def check_legends(path: Path, inputs: Inputs) -> tuple[pd.DataFrame, pd.DataFrame, list, dict]:
    """Validate filled rows for ``significance_legends.csv`` together with the existing legends (the loader's
    rules: marks, thresholds, one row per table and mark).

    A row already there must be identical (it is then not added again). Returns (new rows as strings, the
    merged legends as :func:`meta.read.registers.load_legends` returns them, problems, empty rows -> columns).
    """
    legends_file = inputs.files["legends"]
    if not has_rows(path):
        return pd.DataFrame(columns=["input_row", *schema.LEGENDS.required]), inputs.legends, [], {}
    frame = read_csv_strict(path, schema.LEGENDS.required)
    frame = frame[[any(getattr(r, c) != "" for c in schema.LEGENDS.required) for r in frame.itertuples(index=False)]]
    empty = {int(r.input_row): [c for c in LEGEND_REQUIRED_TO_FILL if getattr(r, c) == ""]
             for r in frame.itertuples(index=False)}
    empty = {k: v for k, v in empty.items() if v}
    complete = frame[~frame["input_row"].isin(list(empty))]
    text = read_text(legends_file)
    style = file_style(text)
    header = column_names(text, style)
    existing = read_csv_strict(legends_file, schema.LEGENDS.required)
    key = ("source_file", "source_table", "mark")
    index = {tuple(r[k] for k in key): r for r in existing.to_dict("records")}
    problems, new = [], []
    with tempfile.TemporaryDirectory(prefix="meta-check-") as tmp, _Notes():
        tmp_file = Path(tmp) / "significance_legends.csv"

        def load_with(rows: pd.DataFrame) -> pd.DataFrame:
            tmp_file.write_text(append(text, csv_rows(rows, header, style), style), encoding="utf-8", newline="")
            return load_legends(tmp_file)

        for i in range(len(complete)):
            row = complete.iloc[[i]]
            n = int(row["input_row"].iat[0])
            old = index.get(tuple(row[k].iat[0] for k in key))
            if old is not None:
                diff = differing(row.iloc[0].to_dict(), old, list(schema.LEGENDS.required))
                if diff:
                    problems.append(Problem(n, diff[0], f"the legend of ({', '.join(row[k].iat[0] for k in key)}) is "
                                            f"already {legends_file} row {old['input_row']} with other values: "
                                            + "; ".join(f"{c} {old[c]!r} there, {row[c].iat[0]!r} here" for c in diff)))
                continue  # identical: nothing to add
            try:
                load_with(row)
            except InputError as exc:
                problems.append(_problem(exc, {len(existing) + 1: n}))
                continue
            new.append(i)
        new_rows = complete.iloc[new]
        merged = inputs.legends
        if len(new_rows):
            try:
                merged = load_with(new_rows)
            except InputError as exc:  # across the new rows (the same table and mark twice)
                rows_map = {len(existing) + j: int(r) for j, r in enumerate(new_rows["input_row"], start=1)}
                problems.append(_problem(exc, rows_map))
                new_rows, merged = new_rows.iloc[0:0], inputs.legends
    return new_rows, merged, problems, empty


def check_rows(path: Path, inputs: Inputs, sources_path: Path | None = None,
               legends_path: Path | None = None) -> Check:
    """Validate a filled template against the registers, with the loader ``meta run`` uses.

    Rows with a :data:`REQUIRED_TO_FILL` cell still empty are listed as empty; every complete row is validated
    and every wrong cell reported (:func:`_validate_rows`). When ``inputs`` has a ``sources.csv``, every
    ``source_file`` must be in it or in ``sources_path`` (a filled sources template); marks are checked against
    the legends of ``significance_legends.csv`` and of ``legends_path`` (filled legend rows). Raises
    :class:`InputError` only for a file that cannot be read at all (not CSV, columns missing).
    """
    path = Path(path)
    frame = read_csv_strict(path, ESTIMATE_COLUMNS)
    for col in ESTIMATE_OPTIONAL_INTS:
        if col not in frame.columns:
            frame[col] = ""
    frame = frame[["input_row", *ESTIMATE_COLUMNS, *ESTIMATE_OPTIONAL_INTS]]
    empty = {}
    for r in frame.itertuples(index=False):
        missing = [c for c in REQUIRED_TO_FILL if getattr(r, c) == ""]
        if missing:
            empty[int(r.input_row)] = missing
    result = Check(path, frame, frame.iloc[0:0], empty)
    known = None
    if sources_path is not None and not len(inputs.sources):
        result.notes.append(f"--sources {sources_path} not used: the inputs folder has no sources.csv, so the report "
                            "cites file names and lines")
    if len(inputs.sources):
        known = set(inputs.sources["source_file"])
        if sources_path is not None:
            new_sources, problems, s_empty = check_sources(Path(sources_path), inputs)
            result.errors += [Problem(p.row, p.column, f"{sources_path}: {p.message}") for p in problems]
            result.source_empty, result.sources, result.sources_path = s_empty, new_sources, Path(sources_path)
            known |= set(new_sources["source_file"])
    legends = None
    if legends_path is not None:
        new_legends, legends, problems, l_empty = check_legends(Path(legends_path), inputs)
        result.errors += [Problem(p.row, p.column, f"{legends_path}: {p.message}") for p in problems]
        result.legend_empty, result.legends, result.legends_path = l_empty, new_legends, Path(legends_path)
    complete = frame[~frame["input_row"].isin(list(empty))]
    if len(complete):
        result.valid, problems, notes = _validate_rows(complete, inputs, known, legends)
        result.errors += problems
        result.notes += notes
    if len(result.valid) and "estimates" in inputs.files:
        existing = read_csv_strict(inputs.files["estimates"], ESTIMATE_COLUMNS)
        rows = frame[frame["input_row"].isin(set(result.valid["input_row"]))]
        _, same, conflicts = plan_addition(rows, existing)
        result.errors += [Problem(c.row, c.columns[0], f"conflicts with {inputs.files['estimates']}: {c.message}")
                          for c in conflicts]
        result.notes += same
        bad = {c.row for c in conflicts}
        result.valid = result.valid[~result.valid["input_row"].isin(bad)]
    for r in result.valid.itertuples(index=False):
        has_se = not (math.isnan(r.se) and (math.isnan(r.ci_low) or math.isnan(r.ci_high)) and math.isnan(r.p_value)
                      and (math.isnan(r.share_arm) or math.isnan(r.share_control)))
        if not has_se:
            result.notes.append(f"row {r.input_row}: {r.municipality} {r.arm} {r.outcome} {r.horizon_months} months: "
                                "no SE, CI, p-value or shares; the SE will be reconstructed from the significance "
                                f"mark {r.significance!r} (its legend in significance_legends.csv)")
    return result


def _ranges(rows: list[int]) -> str:
    """[1, 2, 3, 5, 7, 8] -> '1-3, 5, 7-8'."""
    rows, out = sorted(rows), []
    i = 0
    while i < len(rows):
        j = i
        while j + 1 < len(rows) and rows[j + 1] == rows[j] + 1:
            j += 1
        out.append(str(rows[i]) if i == j else f"{rows[i]}-{rows[j]}")
        i = j + 1
    return ", ".join(out)


def format_check(result: Check) -> list[str]:
    """One summary line, then the errors grouped by column and the empty cells grouped by what is missing."""
    n = len(result.rows)
    n_bad = len({p.row for p in result.errors if p.row})
    n_empty = len(result.empty)
    lines = [f"meta check {result.path}: {n} rows: {len(result.valid)} complete and valid, {n_bad} with errors, "
             f"{n_empty} still empty"]
    if result.errors:
        lines.append("errors (fix these; row = data row, the file line is one more):")
        by_column: dict[str, list[Problem]] = {}
        for p in result.errors:
            by_column.setdefault(p.column or "(file)", []).append(p)
        for column, problems in by_column.items():
            lines.append(f"  column {column} ({len(problems)} row{'s' if len(problems) > 1 else ''}):")
            lines += [f"    row {p.row}: {p.message}" if p.row else f"    {p.message}" for p in problems]
    if result.empty or result.source_empty or result.legend_empty:
        lines.append("still empty (fill them, or delete the rows the report does not print):")
        for empty, prefix in ((result.empty, ""), (result.source_empty, f"{result.sources_path}: "),
                              (result.legend_empty, f"{result.legends_path}: ")):
            groups: dict[tuple, list[int]] = {}
            for row, cols in empty.items():
                groups.setdefault(tuple(cols), []).append(row)
            for cols, rows in groups.items():
                lines.append(f"  {prefix}{', '.join(cols)}: {len(rows)} row{'s' if len(rows) > 1 else ''} "
                             f"({_ranges(rows)})")
    if result.notes:
        lines.append("notes:")
        lines += [f"  {m}" for m in result.notes]
    return lines


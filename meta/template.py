"""Adding a municipality: template, check, add; and comparing two transcriptions.

``meta template --municipality NAME`` writes the rows an analyst fills from that municipality's report (and a
one-row description of the report for ``sources.csv``); ``meta check FILE`` validates them with the loader
``meta run`` uses and prints one summary line and the problems grouped; ``meta add FILE`` merges complete,
valid rows into ``estimates.csv``, marks the municipality ``transcribed`` in ``municipalities.csv`` and
refuses rows that conflict with existing ones; ``meta reconcile FIRST SECOND`` lists every cell where two
transcriptions of the same table differ. The functions here are pure except :func:`write_inputs_atomically`
and the ``cmd_*`` commands.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from meta.read import load
from meta.read.load import InputError, Inputs
from meta.plan import Plan

#: Cells every row needs before it can be appended to inputs/estimates.csv.
REQUIRED_TO_FILL = ("estimate", "unit", "printed", "source_file", "source_table", "source_line")
FILL_NOTE = ("TO FILL from the report: estimate and unit as printed (proportion, percent or percentage_points), "
             "the printed token, file, table and line; se or ci_low/ci_high/ci_level or p_value where printed; "
             "the significance mark as printed (and the table's legend in the legends file meta template wrote); "
             "n_arm/n_control or n_table where printed; model/population if not the LOEP model on all participants; "
             "delete the row if the report does not print this cell (it stays 'not reported')")


def core_outcomes(inputs: Inputs, plan: Plan) -> list[str]:
    """The plan's outcomes measured in the registers (the LOEP core outcomes).

    At the concept level: the register outcome codes that ``harmonisation.csv`` maps (primary or sensitivity) onto
    the plan's concepts, in the order of ``outcomes.csv``.
    """
    registers = list(inputs.outcomes.loc[inputs.outcomes["data_source"] == "registers", "outcome"])
    if plan.outcome_level == "concept":
        h = inputs.harmonisation
        mapped = set(h.loc[h["role"].isin(("primary", "sensitivity")) & h["concept"].isin(plan.outcomes), "outcome"])
        return [o for o in registers if o in mapped]
    return [o for o in plan.outcomes if o in registers]


def template_horizons(inputs: Inputs, plan: Plan, outcome: str) -> list[int]:
    """The plan's horizons for ``outcome``; at the concept level only the months ``harmonisation.csv`` maps it at."""
    if plan.outcome_level != "concept":
        return list(plan.horizons)
    h = inputs.harmonisation
    mapped = h[(h["outcome"] == outcome) & h["role"].isin(("primary", "sensitivity")) & h["concept"].isin(plan.outcomes)]
    months = {int(x) for x in mapped["horizon_months"] if str(x) != ""}
    return [x for x in plan.horizons if x in months]


def template_rows(inputs: Inputs, plan: Plan, municipality: str) -> pd.DataFrame:
    """Every arm × core outcome × horizon of the plan, for a pending municipality, as empty estimates rows."""
    munis = inputs.municipalities.set_index("municipality")
    if municipality not in munis.index:
        raise InputError(f"--municipality {municipality!r}: unknown; use one of {', '.join(munis.index)}")
    if munis.loc[municipality, "status"] != "pending":
        raise InputError(f"--municipality {municipality!r}: already transcribed, no pending cells; to add rows, "
                         "write them in a CSV with the columns of inputs/estimates.csv and run meta check, then "
                         "meta add, on it")
    arms = inputs.arms[(inputs.arms["municipality"] == municipality) & inputs.arms["randomised"]
                       & inputs.arms["arm_class"].isin(plan.arm_classes)]
    text = _read(inputs.files["estimates"])
    columns = _header(text, file_style(text))  # as the file has them (any delimiter)
    rows = []
    for arm in arms["arm"]:
        for outcome in core_outcomes(inputs, plan):
            for horizon in template_horizons(inputs, plan, outcome):
                row = {c: "" for c in columns}
                row.update(municipality=municipality, arm=arm, comparator="control", outcome=outcome,
                           horizon_months=str(horizon), model=plan.model_preference[0] if plan.model_preference
                           else "loep", population="all", note=FILL_NOTE)
                rows.append(row)
    return pd.DataFrame(rows, columns=columns)


#: Cells every sources.csv row needs before it can be added (the label, and the fields a citation names).
SOURCE_REQUIRED_TO_FILL = ("source_file", "label_nl", "label_en", "title")
SOURCE_FILL_NOTE = ("TO FILL from the report's title page, copying each field as printed and the line(s) of the "
                    "text file where it is printed (<field>_line); leave a field blank when the report does not "
                    "print it; source_file is the file name the rows cite")


def source_template_rows() -> pd.DataFrame:
    """One empty ``sources.csv`` row to describe the report the new rows come from."""
    row = {c: "" for c in load.SOURCE_COLUMNS}
    row["note"] = SOURCE_FILL_NOTE
    return pd.DataFrame([row], columns=list(load.SOURCE_COLUMNS))


#: Cells every significance_legends.csv row needs (the mark itself may be blank: 'no mark').
LEGEND_REQUIRED_TO_FILL = ("source_file", "source_table", "legend_line", "legend_text")


def legend_template_rows() -> pd.DataFrame:
    """One empty ``significance_legends.csv`` row: for the legend of each table whose marks the rows copy
    (one row per mark; a file whose rows are all blank adds nothing)."""
    return pd.DataFrame([dict.fromkeys(load.LEGEND_COLUMNS, "")], columns=list(load.LEGEND_COLUMNS))


# --------------------------------------------------------------------------- #
# check
# --------------------------------------------------------------------------- #
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
    """Validate complete estimate rows with the loader of ``meta run`` (:func:`meta.read.load.load_estimates`).

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
                return load.load_estimates(tmp_file, munis, inputs.arms, inputs.outcomes,
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
        key = list(load.ESTIMATE_KEY)
        keys = [_key(r, key) for r in rows.to_dict("records")]
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
    """Collects the warnings of :mod:`meta.read.load` instead of printing them (used as a context manager)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._logger = logging.getLogger("meta.read.load")
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
    frame = load.read_csv_strict(path, load.SOURCE_COLUMNS)
    # a row left as the template wrote it adds nothing (the report may already be in sources.csv)
    frame = frame[[any(getattr(r, c) != "" for c in load.SOURCE_COLUMNS if c != "note")
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
                diff = _differing(row.iloc[0].to_dict(), old, [c for c in load.SOURCE_COLUMNS if c != "note"])
                if diff:
                    problems.append(Problem(n, diff[0], f"{name!r} is already in sources.csv with other values: "
                                            + "; ".join(f"{c} {old[c]!r} there, {row[c].iat[0]!r} here"
                                                        for c in diff)))
                known_rows.append(i)  # identical: nothing to add
                continue
            row.to_csv(tmp_file, index=False)
            try:
                load.load_sources(tmp_file)
            except InputError as exc:
                problems.append(_problem(exc, {1: n}))
    bad = {p.row for p in problems} | set(complete["input_row"].iloc[known_rows])
    return complete[~complete["input_row"].isin(bad)], problems, empty


def _has_rows(path: Path) -> bool:
    """Whether a CSV has a data row with any non-blank cell (a template left blank adds nothing)."""
    try:
        text = _read(path)
    except (OSError, UnicodeDecodeError):
        return True  # let the loader say what is wrong with it
    style = file_style(text)
    records = list(csv.reader(io.StringIO(text[len(style.bom):], newline=""), delimiter=style.delimiter))
    return any(any(c.strip() for c in rec) for rec in records[1:])


def check_legends(path: Path, inputs: Inputs) -> tuple[pd.DataFrame, pd.DataFrame, list, dict]:
    """Validate filled rows for ``significance_legends.csv`` together with the existing legends (the loader's
    rules: marks, thresholds, one row per table and mark).

    A row already there must be identical (it is then not added again). Returns (new rows as strings, the
    merged legends as :func:`meta.read.load.load_legends` returns them, problems, empty rows -> columns).
    """
    legends_file = inputs.files["legends"]
    if not _has_rows(path):
        return pd.DataFrame(columns=["input_row", *load.LEGEND_COLUMNS]), inputs.legends, [], {}
    frame = load.read_csv_strict(path, load.LEGEND_COLUMNS)
    frame = frame[[any(getattr(r, c) != "" for c in load.LEGEND_COLUMNS) for r in frame.itertuples(index=False)]]
    empty = {int(r.input_row): [c for c in LEGEND_REQUIRED_TO_FILL if getattr(r, c) == ""]
             for r in frame.itertuples(index=False)}
    empty = {k: v for k, v in empty.items() if v}
    complete = frame[~frame["input_row"].isin(list(empty))]
    text = _read(legends_file)
    style = file_style(text)
    header = _header(text, style)
    existing = load.read_csv_strict(legends_file, load.LEGEND_COLUMNS)
    key = ("source_file", "source_table", "mark")
    index = {tuple(r[k] for k in key): r for r in existing.to_dict("records")}
    problems, new = [], []
    with tempfile.TemporaryDirectory(prefix="meta-check-") as tmp, _Notes():
        tmp_file = Path(tmp) / "significance_legends.csv"

        def load_with(rows: pd.DataFrame) -> pd.DataFrame:
            tmp_file.write_text(_append(text, _csv_rows(rows, header, style), style), encoding="utf-8", newline="")
            return load.load_legends(tmp_file)

        for i in range(len(complete)):
            row = complete.iloc[[i]]
            n = int(row["input_row"].iat[0])
            old = index.get(tuple(row[k].iat[0] for k in key))
            if old is not None:
                diff = _differing(row.iloc[0].to_dict(), old, list(load.LEGEND_COLUMNS))
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
    frame = load.read_csv_strict(path, load.ESTIMATE_COLUMNS)
    for col in load.ESTIMATE_OPTIONAL_INTS:
        if col not in frame.columns:
            frame[col] = ""
    frame = frame[["input_row", *load.ESTIMATE_COLUMNS, *load.ESTIMATE_OPTIONAL_INTS]]
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
        existing = load.read_csv_strict(inputs.files["estimates"], load.ESTIMATE_COLUMNS)
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


# --------------------------------------------------------------------------- #
# add
# --------------------------------------------------------------------------- #
def _same(a: str, b: str, numeric: bool) -> bool:
    if a == b:
        return True
    if numeric and a != "" and b != "":
        try:
            return float(a) == float(b)
        except ValueError:
            return False
    return False


_NUMERIC = frozenset((*load.ESTIMATE_FLOATS, *load.ESTIMATE_INTS, *load.ESTIMATE_OPTIONAL_INTS))


def _differing(a: dict, b: dict, columns) -> list[str]:
    return [c for c in columns if not _same(str(a.get(c, "")), str(b.get(c, "")), c in _NUMERIC)]


def _key(record: dict, key) -> tuple:
    """A row's key, whole numbers compared as numbers ('16' and '16.0' are the same horizon)."""
    out = []
    for k in key:
        value = str(record.get(k, ""))
        if k in _NUMERIC and re.fullmatch(r"[-+]?\d+(\.0*)?", value):
            value = str(int(float(value)))
        out.append(value)
    return tuple(out)


@dataclass
class Conflict:
    """A row of the analyst's file whose key is already in ``estimates.csv`` with other values."""

    row: int
    existing_row: int
    columns: list  # the differing columns
    message: str


def plan_addition(rows: pd.DataFrame, existing: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[Conflict]]:
    """Which checked rows are new, which are already in ``estimates.csv`` unchanged, and which conflict.

    ``rows`` and ``existing`` are string frames with ``input_row``. A row conflicts when ``existing`` has a row
    with the same :data:`meta.read.load.ESTIMATE_KEY` and any other cell different (numbers compared as numbers,
    the note not compared). Returns (new rows, messages about identical rows skipped, conflicts).
    """
    key = list(load.ESTIMATE_KEY)
    columns = [c for c in load.ESTIMATE_COLUMNS if c not in key and c != "note"]
    index = {_key(r, key): r for r in existing.to_dict("records")}
    new, same, conflicts = [], [], []
    for r in rows.to_dict("records"):
        old = index.get(_key(r, key))
        if old is None:
            new.append(r)
            continue
        diff = _differing(r, old, columns)
        if diff:
            conflicts.append(Conflict(int(r["input_row"]), int(old["input_row"]), diff,
                                      f"({', '.join(str(r[k]) for k in key)}) is already estimates.csv row "
                                      f"{old['input_row']} with other values: "
                                      + "; ".join(f"{c} {old[c]!r} there, {r[c]!r} here" for c in diff)))
        else:
            same.append(f"row {r['input_row']}: already estimates.csv row {old['input_row']}, identical: skipped")
    return pd.DataFrame(new, columns=rows.columns), same, conflicts


@dataclass(frozen=True)
class _Style:
    """How an input file is written, so that rows added to it match: delimiter, decimal comma, line ending, BOM."""

    delimiter: str = ","
    decimal_comma: bool = False
    newline: str = "\n"
    bom: str = ""


_DOT_DECIMAL = re.compile(r"^[-+]?\d*\.\d+$")
_COMMA_DECIMAL = re.compile(r"^[-+]?\d*,\d+$")


def _read(path: Path) -> str:
    """A file's text exactly (line endings and byte-order mark kept)."""
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def file_style(text: str) -> _Style:
    """The :class:`_Style` of a CSV text (the delimiter from the header, as :mod:`meta.read.load` reads it)."""
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    body = text[len(bom):]
    header = re.split(r"\r\n|\r|\n", body, maxsplit=1)[0]
    delimiter = ";" if ";" in header and "," not in header else ","
    comma = False
    if delimiter == ";":
        records = list(csv.reader(io.StringIO(body, newline=""), delimiter=";"))
        numeric = [j for j, c in enumerate(records[0]) if c.strip() in load.NUMERIC_COLUMNS] if records else []
        comma = any(_COMMA_DECIMAL.match(rec[j].strip()) for rec in records[1:] for j in numeric if j < len(rec))
    return _Style(delimiter, comma, "\r\n" if "\r\n" in body else "\n", bom)


def _csv_rows(frame: pd.DataFrame, columns: list[str], style: _Style = _Style()) -> str:
    """Rows as CSV text in the style of the file they are added to (minimal quoting), no header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=style.delimiter, lineterminator=style.newline)
    for r in frame.to_dict("records"):
        cells = [str(r.get(c, "")) for c in columns]
        if style.decimal_comma:
            cells = [v.replace(".", ",") if c in load.NUMERIC_COLUMNS and _DOT_DECIMAL.match(v) else v
                     for c, v in zip(columns, cells)]
        writer.writerow(cells)
    return buffer.getvalue()


def _append(text: str, addition: str, style: _Style = _Style()) -> str:
    if text and not text.endswith(("\n", "\r")):
        text += style.newline
    return text + addition


def _header(text: str, style: _Style) -> list[str]:
    return [c.strip() for c in next(csv.reader(io.StringIO(text[len(style.bom):]), delimiter=style.delimiter))]


def set_status(text: str, municipalities: list[str], status: str = "transcribed") -> tuple[str, list[str]]:
    """``municipalities.csv`` text with the status of ``municipalities`` set; every other byte kept.

    Returns (new text, the municipalities whose status changed).
    """
    style = file_style(text)
    body = text[len(style.bom):]
    records = list(csv.reader(io.StringIO(body, newline=""), delimiter=style.delimiter))
    header = [c.strip() for c in records[0]]
    i_m, i_s = header.index("municipality"), header.index("status")
    changed = []
    lines = _record_spans(body)
    pieces = [style.bom]
    last = 0
    for rec, (start, end) in zip(records[1:], lines[1:]):
        if rec and rec[i_m].strip() in municipalities and rec[i_s].strip() != status:
            rec = list(rec)
            rec[i_s] = status
            changed.append(rec[i_m].strip())
            buffer = io.StringIO()
            csv.writer(buffer, delimiter=style.delimiter, lineterminator="").writerow(rec)
            pieces.append(body[last:start])
            pieces.append(buffer.getvalue())
            last = end
    pieces.append(body[last:])
    return "".join(pieces), changed


def _record_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of each CSV record of ``text``, without its line ending."""
    spans, start, quoted = [], 0, False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            quoted = not quoted
        elif ch == "\n" and not quoted:
            end = i - 1 if i > start and text[i - 1] == "\r" else i
            spans.append((start, end))
            start = i + 1
        i += 1
    if start < len(text):
        spans.append((start, len(text)))
    return spans


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
    ``sources.csv``), mark their municipalities ``transcribed``; validate the merged inputs with
    :func:`meta.read.load.load_inputs` before anything is written. Returns the lines that say what changed.

    Refuses (:class:`InputError`) a check with errors or empty cells, and rows that conflict with existing ones.
    """
    inputs_dir = Path(inputs_dir)
    if not result.ok:
        raise InputError(f"{result.path}: not added: {len({p.row for p in result.errors})} rows with errors, "
                         f"{len(result.empty) + len(result.source_empty) + len(result.legend_empty)} still empty; "
                         "run meta check "
                         f"{result.path} and fix them first")
    est_path = inputs_dir / "estimates.csv"
    existing = load.read_csv_strict(est_path, load.ESTIMATE_COLUMNS)
    rows = result.rows[result.rows["input_row"].isin(set(result.valid["input_row"]))].copy()
    # numbers as the loader read them (a semicolon file's decimal commas become dots); the fill-in note goes
    rows["note"] = ["" if n == FILL_NOTE else n for n in rows["note"]]
    new, same, conflicts = plan_addition(rows, existing)
    if conflicts:  # meta check reports them too; checked again here against the file as it is now
        raise InputError(f"{result.path}: not added: {len(conflicts)} row{'s' if len(conflicts) > 1 else ''} "
                         f"conflict with {est_path}: " + " | ".join(f"row {c.row}: {c.message}" for c in conflicts)
                         + "; correct this file or the existing rows, nothing was written")
    texts = {}
    if len(new):
        text = _read(est_path)
        style = file_style(text)
        texts["estimates.csv"] = _append(text, _csv_rows(new, _header(text, style), style), style)
    munis_path = inputs_dir / "municipalities.csv"
    munis_text, changed = set_status(_read(munis_path), sorted(set(new["municipality"])))
    if changed:
        texts["municipalities.csv"] = munis_text
    n_sources = 0
    if result.sources is not None and len(result.sources):
        src_path = inputs_dir / "sources.csv"
        src_text = _read(src_path)
        src_style = file_style(src_text)
        cited = set(new["source_file"])
        added_sources = result.sources[result.sources["source_file"].isin(cited)]
        added_sources = added_sources.assign(note=["" if n == SOURCE_FILL_NOTE else n for n in added_sources["note"]])
        if len(added_sources):
            texts["sources.csv"] = _append(src_text, _csv_rows(added_sources, _header(src_text, src_style), src_style),
                                           src_style)
            n_sources = len(added_sources)
    n_legends = 0
    if result.legends is not None and len(result.legends):
        leg_path = inputs_dir / "significance_legends.csv"
        leg_text = _read(leg_path)
        leg_style = file_style(leg_text)
        texts["significance_legends.csv"] = _append(
            leg_text, _csv_rows(result.legends, _header(leg_text, leg_style), leg_style), leg_style)
        n_legends = len(result.legends)
    if not texts:
        return [f"meta add: nothing to add: all {len(same)} rows of {result.path} are already in {est_path}"]
    with tempfile.TemporaryDirectory(prefix="meta-add-") as tmp:  # the merged inputs must load before any write
        staging = Path(tmp)
        for f in inputs_dir.iterdir():
            if f.is_file() and (f.suffix in (".csv", ".toml")):
                shutil.copy(f, staging / f.name)
        for name, text in texts.items():
            (staging / name).write_text(text, encoding="utf-8", newline="")
        try:
            load.load_inputs(staging)
        except InputError as exc:
            raise InputError(f"{result.path}: not added: the merged inputs would be refused: "
                             f"{str(exc).replace(str(staging), str(inputs_dir))}") from None
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


# --------------------------------------------------------------------------- #
# reconcile
# --------------------------------------------------------------------------- #
CELL_KEY = ("municipality", "arm", "comparator", "outcome", "horizon_months", "model", "population")


def reconcile(first: Path, second: Path) -> list[str]:
    """Every cell where two transcriptions of the same rows differ (numbers compared as numbers).

    Rows are matched on :data:`CELL_KEY` (the template's cell) when it is unique in both files, else on the
    full :data:`meta.read.load.ESTIMATE_KEY`. The ``note`` column is not compared. Returns the lines to print; the
    first is a summary.
    """
    a = load.read_csv_strict(first, load.ESTIMATE_COLUMNS)
    b = load.read_csv_strict(second, load.ESTIMATE_COLUMNS)
    key = list(CELL_KEY)
    if a.duplicated(key).any() or b.duplicated(key).any():
        key = list(load.ESTIMATE_KEY)
    for frame, path in ((a, first), (b, second)):
        dup = frame.duplicated(key)
        if dup.any():
            r = frame[dup].iloc[0]
            raise InputError(f"{path}: row {r['input_row']} (line {int(r['input_row']) + 1}): the same cell "
                             f"({', '.join(str(r[k]) for k in key)}) twice; keep one row per cell")
    columns = [c for c in load.ESTIMATE_COLUMNS if c not in key and c != "note"]
    columns += [c for c in load.ESTIMATE_OPTIONAL_INTS if c in a.columns or c in b.columns]
    rows_a = {_key(r, key): r for r in a.to_dict("records")}
    rows_b = {_key(r, key): r for r in b.to_dict("records")}
    lines, n_cells, n_rows = [], 0, 0
    for k in [k for k in rows_a if k in rows_b]:
        ra, rb = rows_a[k], rows_b[k]
        diff = _differing(ra, rb, columns)
        if diff:
            n_rows += 1
            n_cells += len(diff)
            lines.append(f"{' '.join(map(str, k))} (first row {ra['input_row']}, second row {rb['input_row']}):")
            width = max(len(c) for c in diff)
            lines += [f"  {c:<{width}}  {ra.get(c, '')!r:>12} | {rb.get(c, '')!r}" for c in diff]
    only_a = [k for k in rows_a if k not in rows_b]
    only_b = [k for k in rows_b if k not in rows_a]
    for keys, rows, path in ((only_a, rows_a, first), (only_b, rows_b, second)):
        for k in keys:
            lines.append(f"{' '.join(map(str, k))}: only in {path} (row {rows[k]['input_row']})")
    same = len([k for k in rows_a if k in rows_b]) - n_rows
    summary = (f"meta reconcile: {len(a)} rows in {first}, {len(b)} in {second}: {same} identical, {n_rows} differ in "
               f"{n_cells} cells, {len(only_a) + len(only_b)} in one file only")
    return [summary, *lines]

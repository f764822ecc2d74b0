"""The bad input catalogue: ``meta run`` on every case of ``tests/bad_inputs/`` (format in its README.md).

Each case is a small edit of a copy of the real ``inputs/``. A refused case ends with exit status 2, exactly
one line on stderr naming the file, the row and column (file-level problems: the file; plan problems: the
plan file and key; output problems: the output path) and what to do, and leaves the inputs, the plan and the
previous outputs folder byte for byte as they were. An accepted case (Excel's Dutch CSV, byte-order mark,
Windows line endings, an extra column, a plan entry nobody reports yet) succeeds, says what it did on
stderr, and writes the same ``studies.csv`` as the real inputs.

Horizon rule (the issue lists "a horizon that the plan does not know" as bad input): a row's
``horizon_months`` is refused only when no plan could know it, i.e. it is not a whole number of months from
0 to 120 (``240`` typed for ``24``, ``-12``, ``16.5``). A plausible horizon the plan does not pool (the real
inputs have 0 and 27) is not an error: the row is kept and listed in ``excluded.csv`` with the reason
"horizon not in the plan's horizons". A horizon in the plan that no row reports is a warning when the plan
still selects rows, and refused (naming the plan file and key ``horizons``) when the plan selects nothing.
The same holds for a plan outcome that is in ``outcomes.csv`` but reported by no row.

The cases run in-process through ``meta.cli.main`` (the ``meta`` entry point; its return value is the exit
status) so that the 70-odd cases take seconds; a few run as real processes too.
"""
from __future__ import annotations

import csv
import io
import json
import shutil
import tomllib
from pathlib import Path

import pytest

from meta import cli

from meta.read import reader
from tests.conftest import REPO, run_meta

CASES_DIR = Path(__file__).resolve().parent / "bad_inputs"
CASES = {p.stem: tomllib.loads(p.read_text(encoding="utf-8")) for p in sorted(CASES_DIR.glob("*.toml"))}
INPUT_FILES = ("municipalities.csv", "arms.csv", "outcomes.csv", "significance_legends.csv", "estimates.csv",
               "periods.csv", "concepts.csv", "harmonisation.csv")
REFUSED = [name for name, c in CASES.items() if c.get("expect", {}).get("status", 2) == 2]
ACCEPTED = [name for name, c in CASES.items() if c.get("expect", {}).get("status", 2) == 0]


# --------------------------------------------------------------------------- #
# building a case
# --------------------------------------------------------------------------- #
def _quote(cell: str, delimiter: str) -> str:
    """CSV quoting as Python's csv module and Excel do it: only where needed."""
    if any(ch in cell for ch in (delimiter, '"', "\n", "\r")):
        return '"' + cell.replace('"', '""') + '"'
    return cell


class CsvFile:
    """One input CSV as rows of cells, with how it will be saved."""

    def __init__(self, path: Path):
        self.rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
        self.transforms: list[str] = []
        self.raw: set[tuple[int, int]] = set()  # cells written without quoting
        self.literal: set[tuple[int, int]] = set()  # cells set by an edit: written as given, never converted
        self.blank_after: set[int] = set()
        self.content: str | None = None

    def col(self, name: str) -> int:
        return self.rows[0].index(name)

    def render(self) -> bytes:
        if self.content is not None:
            return self.content.encode("utf-8")
        t = set(self.transforms)
        delimiter = ";" if "semicolon" in t else "\t" if "tabs" in t else ","
        numeric = {j for j, c in enumerate(self.rows[0]) if c in reader.NUMERIC_COLUMNS}
        lines = []
        for i, row in enumerate(self.rows):
            cells = []
            for j, cell in enumerate(row):
                if "decimal_comma" in t and i > 0 and j in numeric and (i, j) not in self.literal:
                    cell = cell.replace(".", ",")
                cells.append(cell if (i, j) in self.raw else _quote(cell, delimiter))
            line = delimiter.join(cells)
            if i == 0 and "mixed_header" in t:
                line = line.replace(delimiter, ";", 1)
            lines.append(line)
            if i in self.blank_after:
                lines.append("")
        if "trailing_empty_rows" in t:
            lines += [delimiter * (len(self.rows[0]) - 1)] * 3
        eol = "\r\n" if "crlf" in t else "\n"
        text = eol.join(lines) + eol
        if "cp1252" in t:
            return text.encode("cp1252")
        if "utf16" in t:
            return text.encode("utf-16")
        data = text.encode("utf-8")
        return b"\xef\xbb\xbf" + data if "bom" in t else data


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dict):  # e.g. bayes_units: an inline table
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return "[" + ", ".join(_toml_value(x) for x in v) + "]"


def _apply(edit: dict, files: dict[str, CsvFile], plan: dict, plan_text: list):
    name = edit["file"]
    if name == "plan.toml":
        if "content" in edit:
            plan_text[0] = edit["content"]
        elif "append" in edit:
            plan[edit["key"]] = list(plan[edit["key"]]) + list(edit["append"])
        else:
            plan[edit["key"]] = edit["value"]
        return
    for fname in (INPUT_FILES if name == "*.csv" else (name,)):
        f = files[fname]
        if edit.get("delete"):
            files[fname] = None
        elif "content" in edit:
            f.content = edit["content"]
        elif "transform" in edit:
            f.transforms += edit["transform"]
        elif "keep_rows" in edit:
            f.rows = f.rows[: 1 + edit["keep_rows"]]
        elif "drop_column" in edit:
            j = f.col(edit["drop_column"])
            f.rows = [r[:j] + r[j + 1:] for r in f.rows]
        elif "add_column" in edit:
            f.rows = [f.rows[0] + [edit["add_column"]]] + [r + [edit["value"]] for r in f.rows[1:]]
        elif "rename_column" in edit:
            f.rows[0][f.col(edit["rename_column"])] = edit["to"]
        elif "append_copy_of" in edit:
            row = list(f.rows[edit["append_copy_of"]])
            for col, value in edit.get("set", {}).items():
                row[f.col(col)] = value
            f.rows.append(row)
        elif "blank_line_after" in edit:
            f.blank_after.add(edit["blank_line_after"])
        elif "truncate_row" in edit:
            f.rows[edit["truncate_row"]] = f.rows[edit["truncate_row"]][: edit["cells"]]
        else:
            j = f.col(edit["column"])
            f.rows[edit["row"]][j] = edit["value"]
            f.literal.add((edit["row"], j))
            if edit.get("raw"):
                f.raw.add((edit["row"], j))


def build_case(case: dict, base: Path) -> tuple[Path, Path, Path]:
    """Write the case's inputs, plan and previous outputs under ``base``; return (inputs, plan, out)."""
    inputs = base / "inputs"
    inputs.mkdir(parents=True)
    files = {name: CsvFile(REPO / "inputs" / name) for name in INPUT_FILES}
    plan_source = (REPO / "inputs" / "plan.toml").read_text(encoding="utf-8")
    plan, plan_text = tomllib.loads(plan_source), [None]
    for edit in case.get("edit", []):
        _apply(edit, files, plan, plan_text)
    for name, f in files.items():
        if f is not None:
            (inputs / name).write_bytes(f.render())
    plan_path = inputs / "plan.toml"
    if plan_text[0] is not None:
        plan_path.write_text(plan_text[0], encoding="utf-8")
    elif plan == tomllib.loads(plan_source):
        plan_path.write_text(plan_source, encoding="utf-8")
    else:
        plan_path.write_text("".join(f"{k} = {_toml_value(v)}\n" for k, v in plan.items()), encoding="utf-8")

    out = base / "outputs"  # a previous outputs folder, as a run leaves it
    (out / "figures").mkdir(parents=True)
    (out / "manifest.json").write_text('{"previous": true}\n')
    (out / "studies.csv").write_text("previous studies\n")
    (out / "figures" / "forest.png").write_bytes(b"\x89PNG previous")
    kind = case.get("out")
    if kind == "under_file":
        (base / "blocker.txt").write_text("a regular file\n")
        out = base / "blocker.txt" / "outputs"
    elif kind == "is_file":
        out = base / "results.pdf"
        out.write_bytes(b"%PDF-1.4 someone's report")
    elif kind == "inputs":
        out = inputs
    elif kind == "foreign":
        out = base / "documents"
        out.mkdir()
        (out / "thesis.docx").write_bytes(b"PK thesis")
    return inputs, plan_path, out


def snapshot(folder: Path) -> dict:
    """Every file and folder under ``folder``: relative path → bytes (None for a folder)."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


def run_in_process(capsys, inputs, plan, out, figures=False):
    args = ["run", "--inputs", str(inputs), "--plan", str(plan), "--out", str(out)]
    status = cli.main(args + ([] if figures else ["--no-figures", "--no-sensitivity"]))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def check_refusal(status, err, case, before, after):
    lines = err.strip().splitlines()
    assert status == 2, err
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    line = lines[0]
    assert line.startswith("meta: error: "), line
    for needle in case["expect"]["mentions"]:
        assert needle in line, f"{needle!r} not in {line!r}"
    assert "; " in line.split(": ", 2)[-1] or "; " in line, f"no fix after ';' in {line!r}"
    assert after == before, "the run changed files: " + ", ".join(
        sorted(k for k in set(before) | set(after) if before.get(k, 0) != after.get(k, 0)))


# --------------------------------------------------------------------------- #
# the tests
# --------------------------------------------------------------------------- #
def test_catalogue_has_at_least_30_refused_cases_and_the_accepted_formats():
    assert len(REFUSED) >= 30
    assert {"excel_nl_all_files", "utf8_bom", "windows_line_endings", "semicolon_decimal_comma",
            "unknown_extra_column"} <= {n.split("_", 1)[1] for n in ACCEPTED}
    for name, case in CASES.items():
        assert case.get("description"), name
        assert case.get("expect", {}).get("mentions") or case["expect"].get("status") == 0, name


def test_an_unedited_copy_is_the_real_inputs_byte_for_byte(tmp_path):
    inputs, plan, _ = build_case({}, tmp_path)
    for name in (*INPUT_FILES, "plan.toml"):
        assert (inputs / name).read_bytes() == (REPO / "inputs" / name).read_bytes(), name


@pytest.mark.parametrize("name", REFUSED)
def test_refused_with_one_line_status_2_and_nothing_written(name, tmp_path, capsys):
    case = CASES[name]
    inputs, plan, out = build_case(case, tmp_path)
    before = snapshot(tmp_path)
    status, _, err = run_in_process(capsys, inputs, plan, out)
    check_refusal(status, err, case, before, snapshot(tmp_path))


@pytest.fixture(scope="module")
def real_studies(real_run):
    out, _ = real_run
    return (out / "studies.csv").read_bytes()


@pytest.mark.parametrize("name", ACCEPTED)
def test_accepted_says_what_it_did_and_gives_the_same_studies(name, tmp_path, capsys, real_studies):
    case = CASES[name]
    inputs, plan, out = build_case(case, tmp_path)
    status, _, err = run_in_process(capsys, inputs, plan, out)
    assert status == 0, err
    lines = err.strip().splitlines()
    assert all(line.startswith("meta: warning: ") for line in lines), err
    assert len(lines) == len(set(lines)), f"a warning is repeated:\n{err}"
    for needle in case["expect"].get("warnings", []):
        assert any(needle in line for line in lines), f"{needle!r} not said on stderr:\n{err}"
    assert json.loads((out / "manifest.json").read_text()).get("counts"), "the previous outputs were not replaced"
    if case["expect"].get("same_studies"):
        assert (out / "studies.csv").read_bytes() == real_studies


AS_PROCESS = ("comma_file_unquoted_decimal_comma", "header_only", "se_nan", "plan_not_toml", "out_under_a_regular_file")


@pytest.mark.parametrize("name", [n for n in CASES if n.split("_", 1)[1] in AS_PROCESS])
def test_refused_as_a_real_process(name, tmp_path):
    """The same through the installed entry point in its own process: exit status, stderr, files."""
    case = CASES[name]
    inputs, plan, out = build_case(case, tmp_path)
    before = snapshot(tmp_path)
    res = run_meta("run", "--inputs", str(inputs), "--plan", str(plan), "--out", str(out), "--no-figures", "--no-sensitivity")
    check_refusal(res.returncode, res.stderr, case, before, snapshot(tmp_path))
    assert "Traceback" not in res.stderr


def test_the_preflight_leaves_a_previous_meta_outputs_folder_alone_when_refusing(tmp_path, capsys):
    """The previous outputs are a real run's (copied from the repository's outputs/ README) and survive."""
    case = CASES[REFUSED[0]]
    inputs, plan, out = build_case(case, tmp_path)
    shutil.copy(REPO / "outputs" / "README.md", out / "README.md")
    before = snapshot(tmp_path)
    status, _, err = run_in_process(capsys, inputs, plan, out)
    check_refusal(status, err, case, before, snapshot(tmp_path))

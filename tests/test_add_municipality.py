"""Adding a municipality takes three commands: template, check, add; then run. All in a temporary copy of
inputs/ with SYNTHETIC numbers (invented here, clearly named; the real inputs/ is never touched)."""
import json
import shutil

import pandas as pd
import pytest

from meta.template import add, check
from meta.template.text import set_status
from tests.conftest import REPO

S = dict(dtype=str, keep_default_na=False)
SYNTHETIC_SOURCE = "SYNTHETIC_groningen_report.txt"


def _main(capsys, *args):
    from meta.cli import main

    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "inputs"
    shutil.copytree(REPO / "inputs", folder, ignore=shutil.ignore_patterns("simulation", "notes"))
    return folder


def _fill_synthetic(rows_csv, sources_csv):
    """Fill a template the way an analyst would, but with SYNTHETIC numbers (a share difference per row)."""
    t = pd.read_csv(rows_csv, **S)
    for i in range(len(t)):
        est = f"{0.01 * ((i % 7) - 3):.2f}"  # SYNTHETIC
        t.loc[i, ["estimate", "unit", "printed", "se", "n_arm", "n_control", "source_file", "source_table",
                  "source_line", "note"]] = [est, "proportion", est.replace(".", ","), "0.02", "400", "390",
                                             SYNTHETIC_SOURCE, "SYNTHETIC Tabel 1", str(10 + i),
                                             "SYNTHETIC: invented for a test"]
    t.to_csv(rows_csv, index=False)
    s = pd.read_csv(sources_csv, **S)
    s.loc[0, ["source_file", "label_nl", "label_en", "title", "title_line", "note"]] = [
        SYNTHETIC_SOURCE, "SYNTHETISCH rapport", "SYNTHETIC report", "SYNTHETIC evaluation report", "1",
        "SYNTHETIC: invented for a test"]
    s.to_csv(sources_csv, index=False)
    return t


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_template_check_add_run_with_no_hand_edits(tmp_path, inputs, capsys):
    real_before = _snapshot(REPO / "inputs")
    rows, srcs = tmp_path / "groningen.csv", tmp_path / "groningen_sources.csv"
    status, out, _ = _main(capsys, "template", "--municipality", "groningen", "--inputs", inputs, "--out", rows)
    assert status == 0 and srcs.exists()
    legends = tmp_path / "groningen_legends.csv"
    assert legends.exists()
    # the next commands, spelled out
    assert f"meta check {rows} --sources {srcs} --legends {legends} --inputs {inputs}" in out
    assert f"meta add {rows} --sources {srcs} --legends {legends} --inputs {inputs}" in out

    status, out, _ = _main(capsys, "check", rows, "--sources", srcs, "--legends", legends, "--inputs", inputs)
    n = len(pd.read_csv(rows, **S))
    assert status == 1
    assert out.splitlines()[0] == f"meta check {rows}: {n} rows: 0 complete and valid, 0 with errors, {n} still empty"
    assert len(out.splitlines()) <= 5  # grouped, not one line per empty row

    filled = _fill_synthetic(rows, srcs)
    status, out, _ = _main(capsys, "check", rows, "--sources", srcs, "--legends", legends, "--inputs", inputs)
    assert (status, out.splitlines()[0]) == (0, f"meta check {rows}: {n} rows: {n} complete and valid, "
                                                "0 with errors, 0 still empty")

    n_before = len(pd.read_csv(inputs / "estimates.csv", **S))
    status, out, _ = _main(capsys, "add", rows, "--sources", srcs, "--legends", legends, "--inputs", inputs)
    assert status == 0
    assert "legend" not in out  # the legends file was left blank: nothing added to significance_legends.csv
    assert f"{n} rows of {rows} added to {inputs / 'estimates.csv'} (now {n_before + n} rows)" in out
    assert "groningen: status pending -> transcribed" in out and "1 source added" in out
    est = pd.read_csv(inputs / "estimates.csv", **S)
    added = est[est["municipality"] == "groningen"]
    assert len(added) == n and list(added["estimate"]) == list(filled["estimate"])
    munis = pd.read_csv(inputs / "municipalities.csv", **S).set_index("municipality")["status"]
    assert munis["groningen"] == "transcribed"
    assert SYNTHETIC_SOURCE in set(pd.read_csv(inputs / "sources.csv", **S)["source_file"])
    assert not [p for p in inputs.iterdir() if p.name.endswith(".tmp")]  # no temporary file left

    out_dir = tmp_path / "out"
    status, out, err = _main(capsys, "run", "--inputs", inputs, "--out", out_dir, "--no-figures", "--no-sensitivity")
    assert status == 0, err
    studies = pd.read_csv(out_dir / "studies.csv", **S)
    assert (studies["municipality"] == "groningen").any()
    counts = json.loads((out_dir / "manifest.json").read_text())["counts"]
    assert counts["input_rows"] == n_before + n
    assert _snapshot(REPO / "inputs") == real_before  # the repository's inputs/ is untouched


def test_add_refuses_a_conflicting_row_and_writes_nothing(tmp_path, inputs, capsys):
    rows, srcs = tmp_path / "g.csv", tmp_path / "g_sources.csv"
    _main(capsys, "template", "--municipality", "groningen", "--inputs", inputs, "--out", rows)
    _fill_synthetic(rows, srcs)
    assert _main(capsys, "add", rows, "--sources", srcs, "--inputs", inputs)[0] == 0
    again = _main(capsys, "add", rows, "--sources", srcs, "--inputs", inputs)
    assert again[0] == 0 and "nothing to add" in again[1]  # identical rows: skipped
    before = _snapshot(inputs)
    t = pd.read_csv(rows, **S)
    t.loc[2, ["estimate", "printed"]] = ["0.09", "0,09"]  # SYNTHETIC change of a row already added
    t.to_csv(rows, index=False)
    status, out, _ = _main(capsys, "add", rows, "--sources", srcs, "--inputs", inputs)
    assert status == 2
    assert "1 with errors" in out and "column estimate (1 row):" in out
    assert f"row 3: conflicts with {inputs / 'estimates.csv'}" in out and "estimate '-0.01' there, '0.09' here" in out
    assert "nothing written" in out
    assert _snapshot(inputs) == before


def test_add_checks_conflicts_again_against_the_file_as_it_is_when_writing(tmp_path, inputs, capsys):
    from meta.errors import InputError
    from meta.read.load import load_inputs

    rows, srcs = tmp_path / "g.csv", tmp_path / "g_sources.csv"
    _main(capsys, "template", "--municipality", "groningen", "--inputs", inputs, "--out", rows)
    _fill_synthetic(rows, srcs)
    checked = check.check_rows(rows, load_inputs(inputs), srcs)
    assert checked.ok
    t = pd.read_csv(rows, **S)  # meanwhile someone else adds the same cells with another number (SYNTHETIC)
    t.loc[0, ["estimate", "printed"]] = ["0.08", "0,08"]
    other = tmp_path / "other.csv"
    t.to_csv(other, index=False)
    assert _main(capsys, "add", other, "--sources", srcs, "--inputs", inputs)[0] == 0
    before = _snapshot(inputs)
    with pytest.raises(InputError, match=r"not added: 1 row conflict with .*row 1: .*estimate '0.08' there"):
        add.add_rows(checked, inputs)
    assert _snapshot(inputs) == before


def test_two_rows_for_the_same_cell_are_one_error_each_not_a_stop(tmp_path, inputs, capsys):
    rows, srcs = tmp_path / "g.csv", tmp_path / "g_sources.csv"
    _main(capsys, "template", "--municipality", "groningen", "--inputs", inputs, "--out", rows)
    t = _fill_synthetic(rows, srcs)
    t = pd.concat([t, t.iloc[[0]]], ignore_index=True)  # row 1 twice
    t.to_csv(rows, index=False)
    status, out, _ = _main(capsys, "check", rows, "--sources", srcs, "--inputs", inputs)
    assert status == 2
    assert f"{len(t)} rows: {len(t) - 1} complete and valid, 1 with errors" in out
    assert f"row {len(t)}: same cell (groningen, " in out and "as row 1" in out


def test_add_refuses_rows_the_run_would_refuse_with_every_error_grouped(tmp_path, inputs, capsys):
    rows, srcs = tmp_path / "g.csv", tmp_path / "g_sources.csv"
    _main(capsys, "template", "--municipality", "groningen", "--inputs", inputs, "--out", rows)
    t = _fill_synthetic(rows, srcs)
    t.loc[1, "se"] = "-0.02"
    t.loc[4, "se"] = "0"
    t.loc[6, "estimate"] = "1.7"  # outside [-1, 1] for a proportion: the loader of meta run refuses it
    t.loc[8:10, "printed"] = ""
    t.to_csv(rows, index=False)
    before = _snapshot(inputs)
    status, out, _ = _main(capsys, "add", rows, "--sources", srcs, "--inputs", inputs)
    assert status == 2 and _snapshot(inputs) == before
    assert f"{len(t) - 6} complete and valid, 3 with errors, 3 still empty" in out
    assert "column se (2 rows):" in out and "row 2: standard error -0.02" in out and "row 5: standard error 0 " in out
    assert "column estimate (1 row):" in out and "row 7: 1.7 is outside [-1" in out
    assert "printed: 3 rows (9-11)" in out


def test_a_source_file_missing_from_sources_csv_is_an_error_naming_the_fix(tmp_path, inputs, capsys):
    rows, srcs = tmp_path / "g.csv", tmp_path / "g_sources.csv"
    _main(capsys, "template", "--municipality", "groningen", "--inputs", inputs, "--out", rows)
    _fill_synthetic(rows, srcs)
    status, out, _ = _main(capsys, "check", rows, "--inputs", inputs)  # without --sources
    assert status == 2 and f"no row in sources.csv for '{SYNTHETIC_SOURCE}'" in out and "--sources" in out


def test_set_status_changes_one_cell_and_keeps_every_other_byte():
    text = (REPO / "inputs" / "municipalities.csv").read_text(encoding="utf-8")
    new, changed = set_status(text, ["tilburg"])
    assert changed == ["tilburg"]
    old_lines, new_lines = text.split("\n"), new.split("\n")
    diff = [i for i, (a, b) in enumerate(zip(old_lines, new_lines)) if a != b]
    assert len(old_lines) == len(new_lines) and len(diff) == 1
    assert new_lines[diff[0]] == old_lines[diff[0]].replace("tilburg,Tilburg,pending,", "tilburg,Tilburg,transcribed,", 1)
    assert set_status(new, ["tilburg"]) == (new, [])


def test_an_interrupted_write_leaves_the_inputs_as_they_were(tmp_path, inputs, monkeypatch):
    before = _snapshot(inputs)

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(add.os, "replace", fail)
    with pytest.raises(KeyboardInterrupt):
        add.write_inputs_atomically(inputs, {"estimates.csv": "x\n", "municipalities.csv": "y\n"})
    assert _snapshot(inputs) == before  # and no temporary file is left


def test_reconcile_lists_every_differing_cell_and_compares_numbers_as_numbers(tmp_path, capsys):
    cols = ["municipality", "arm", "comparator", "outcome", "horizon_months", "model", "population", "estimate",
            "unit", "se", "ci_low", "ci_high", "ci_level", "p_value", "significance", "n_arm", "n_control",
            "share_arm", "share_control", "printed", "source_file", "source_table", "source_line", "note"]
    base = dict.fromkeys(cols, "")
    base.update(municipality="groningen", arm="exemption", comparator="control", model="loep", population="all",
                unit="proportion", source_file="SYNTHETIC.txt", source_table="T1")
    first = [dict(base, outcome="hours_gt12", horizon_months="16", estimate="-0.10", se="0.02", source_line="5"),
             dict(base, outcome="hours_gt27", horizon_months="16", estimate="0.03", se="0.02", source_line="6"),
             dict(base, outcome="hours_gt8", horizon_months="16", estimate="0.01", source_line="7")]
    second = [dict(first[0], estimate="-0.1", note="other words"),  # same number, note not compared
              dict(first[1], estimate="0.05", source_line="9"),
              dict(base, outcome="permanent_contract", horizon_months="16", estimate="0.01", source_line="8")]
    a, b = tmp_path / "first.csv", tmp_path / "second.csv"
    pd.DataFrame(first, columns=cols).to_csv(a, index=False)
    pd.DataFrame(second, columns=cols).to_csv(b, index=False, sep=";")  # Excel, Dutch locale: same numbers
    status, out, _ = _main(capsys, "reconcile", a, b)
    lines = out.splitlines()
    assert status == 1
    assert lines[0] == (f"meta reconcile: 3 rows in {a}, 3 in {b}: 1 identical, 1 differ in 2 cells, "
                        "2 in one file only")
    assert lines[1].startswith("groningen exemption control hours_gt27 16 loep all (first row 2, second row 2)")
    assert [line.split()[0] for line in lines[2:4]] == ["estimate", "source_line"]
    assert "'0.03' | '0.05'" in lines[2] and "'6' | '9'" in lines[3]
    assert f"hours_gt8 16 loep all: only in {a} (row 3)" in out and f"permanent_contract 16 loep all: only in {b}" in out
    assert _main(capsys, "reconcile", a, a)[0] == 0


def test_add_reads_a_template_saved_by_dutch_excel_and_writes_dot_decimals(tmp_path, inputs, capsys):
    rows, srcs = tmp_path / "g.csv", tmp_path / "g_sources.csv"
    _main(capsys, "template", "--municipality", "groningen", "--inputs", inputs, "--out", rows)
    t = _fill_synthetic(rows, srcs)
    dutch = t.copy()
    for col in ("estimate", "se"):
        dutch[col] = dutch[col].str.replace(".", ",", regex=False)
    (tmp_path / "g_nl.csv").write_bytes(b"\xef\xbb\xbf" + dutch.to_csv(index=False, sep=";").encode("utf-8"))
    status, out, err = _main(capsys, "add", tmp_path / "g_nl.csv", "--sources", srcs, "--inputs", inputs)
    assert status == 0, out + err
    assert "semicolon-separated with decimal commas" in err  # the conversion is said
    est = pd.read_csv(inputs / "estimates.csv", **S)
    added = est[est["municipality"] == "groningen"]
    assert list(added["estimate"]) == list(t["estimate"]) and list(added["se"]) == list(t["se"])
    assert list(added["printed"]) == list(t["printed"])  # the printed token keeps its decimal comma


def _to_dutch_excel(path):
    """Rewrite a CSV as Excel saves it in a Dutch locale: BOM, semicolons, decimal commas, CRLF."""
    import csv
    import io

    from meta.read.reader import NUMERIC_COLUMNS

    records = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    header = records[0]
    out = io.StringIO()
    w = csv.writer(out, delimiter=";", lineterminator="\r\n")
    w.writerow(header)
    for rec in records[1:]:
        w.writerow([v.replace(".", ",") if h in NUMERIC_COLUMNS and v.replace(".", "", 1).lstrip("-").isdigit()
                    and "." in v else v for h, v in zip(header, rec)])
    path.write_bytes(b"\xef\xbb\xbf" + out.getvalue().encode("utf-8"))


def test_add_keeps_the_style_of_inputs_saved_by_dutch_excel(tmp_path, inputs, capsys):
    from meta.read.load import load_inputs

    for name in ("estimates.csv", "municipalities.csv"):
        _to_dutch_excel(inputs / name)
    before = load_inputs(inputs)
    rows, srcs = tmp_path / "g.csv", tmp_path / "g_sources.csv"
    _main(capsys, "template", "--municipality", "groningen", "--inputs", inputs, "--out", rows)
    t = _fill_synthetic(rows, srcs)
    status, out, err = _main(capsys, "add", rows, "--sources", srcs, "--inputs", inputs)
    assert status == 0, out + err
    raw = (inputs / "estimates.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\r\n") == raw.count(b"\n")  # BOM and CRLF kept
    last = raw.decode("utf-8").rstrip("\r\n").split("\r\n")[-1]
    assert last.startswith("groningen;") and f";{t['estimate'].iloc[-1].replace('.', ',')};" in last
    after = load_inputs(inputs)
    assert len(after.estimates) == len(before.estimates) + len(t)
    assert (after.municipalities.set_index("municipality")["status"]["groningen"] == "transcribed")
    assert after.estimates.drop(columns="input_row").iloc[: len(before.estimates)].equals(
        before.estimates.drop(columns="input_row"))  # the existing rows read exactly as before


def test_rows_with_significance_marks_bring_their_legend(tmp_path, inputs, capsys):
    rows, srcs, legends = tmp_path / "g.csv", tmp_path / "g_sources.csv", tmp_path / "g_legends.csv"
    _main(capsys, "template", "--municipality", "groningen", "--inputs", inputs, "--out", rows)
    t = _fill_synthetic(rows, srcs)
    t.loc[0, ["se", "significance", "printed"]] = ["", "*", t.loc[0, "printed"] + "*"]  # SE only from the mark
    t.to_csv(rows, index=False)
    status, out, _ = _main(capsys, "check", rows, "--sources", srcs, "--legends", legends, "--inputs", inputs)
    assert status == 2 and "column significance (1 row):" in out and "legend" in out  # no legend for '*' yet
    lg = pd.DataFrame([  # SYNTHETIC legend: '*' p < 0.05, no mark p >= 0.05
        dict(source_file=SYNTHETIC_SOURCE, source_table="SYNTHETIC Tabel 1", mark="*", p_below="0.05",
             p_at_least="", two_sided="true", legend_line="40", legend_text="SYNTHETIC * p<0.05"),
        dict(source_file=SYNTHETIC_SOURCE, source_table="SYNTHETIC Tabel 1", mark="", p_below="",
             p_at_least="0.05", two_sided="true", legend_line="40", legend_text="SYNTHETIC * p<0.05"),
    ])
    lg.to_csv(legends, index=False)
    status, out, _ = _main(capsys, "check", rows, "--sources", srcs, "--legends", legends, "--inputs", inputs)
    assert status == 0, out
    assert "row 1: groningen exemption" in out and "reconstructed from the significance mark '*'" in out
    status, out, _ = _main(capsys, "add", rows, "--sources", srcs, "--legends", legends, "--inputs", inputs)
    assert status == 0 and "2 legend rows added to" in out
    table = pd.read_csv(inputs / "significance_legends.csv", **S)
    assert (table["source_file"] == SYNTHETIC_SOURCE).sum() == 2
    status, _, err = _main(capsys, "run", "--inputs", inputs, "--out", tmp_path / "out", "--no-figures",
                           "--no-sensitivity")
    assert status == 0, err
    studies = pd.read_csv(tmp_path / "out" / "studies.csv", **S)
    first = studies[(studies["municipality"] == "groningen") & (studies["source_line"] == "10")]
    assert list(first["se_method"]) == ["from_significance_marks"]
    # a legend that contradicts an existing one is refused, naming both
    lg.loc[0, "p_below"] = "0.10"
    lg.to_csv(legends, index=False)
    status, out, _ = _main(capsys, "check", rows, "--sources", srcs, "--legends", legends, "--inputs", inputs)
    assert status == 2 and "p_below '0.05' there, '0.10' here" in out


def test_a_sources_file_left_blank_adds_nothing_and_rows_may_cite_a_listed_report(tmp_path, inputs, capsys):
    rows, srcs, legends = tmp_path / "g.csv", tmp_path / "g_sources.csv", tmp_path / "g_legends.csv"
    _main(capsys, "template", "--municipality", "groningen", "--inputs", inputs, "--out", rows)
    t = pd.read_csv(rows, **S).iloc[:2]
    t[["estimate", "unit", "printed", "se", "source_file", "source_table", "source_line", "note"]] = [
        "0.01", "proportion", "0,01", "0.02", "000_894c2ceba613a680.txt", "SYNTHETIC", "1", "SYNTHETIC: for a test"]
    t.to_csv(rows, index=False)  # the sources template is left as written
    status, out, _ = _main(capsys, "add", rows, "--sources", srcs, "--legends", legends, "--inputs", inputs)
    assert status == 0, out
    assert "2 rows of" in out and " added to " in out and "source added" not in out  # no source added

"""meta.read.reader.validate_table checks a text, code or choice column at once, and a number column once per distinct
text, when it can: the same frame, the same warning and the same first refused cell as checking every cell with
schema.check_cell."""
import random
from pathlib import Path

import pandas as pd
import pytest

from meta.errors import InputError
from meta.read import reader, schema

#: Cells that pass or break a text column's rules: blank, control characters (NUL, bell, DEL), a newline and a tab
#: (allowed), choices of the column below and a text that is none.
POOL = ["", "a", "b", "x y", "ja", "nee", "\x00", "bell\x07", "del\x7f", "line\nbreak", "tab\tbed", "c", "onbekend"]
#: Cells of a whole-number column: blank, whole, 16.0 (read as 16 with a note), refused (a fraction, a comma, a text)
NUMBERS = ["", "", "3", "16", "16", "16.0", "7.00"] * 6 + ["1.5", "1,5", "x"]


def _table() -> schema.Table:
    return schema.Table("t.csv", (
        schema.Column("free", kind="text", blank=True),
        schema.Column("code", kind="code", blank=False, what="code", fix="write a code"),
        schema.Column("answer", kind="choice", blank=True, choices=("ja", "nee"), what="answer", fix="ja or nee"),
        schema.Column("must", kind="choice", blank=False, choices=("a", "b", "c"), what="letter", fix="a, b or c"),
        schema.Column("n", kind="whole", blank=True),
    ))


def _cell_by_cell(frame: pd.DataFrame, table: schema.Table) -> tuple[str | None, list]:
    """The error of the first bad cell (None: none) and the notes, (row, column, note), checking every cell in
    column order with schema.check_cell."""
    notes = []
    for col in table.columns:
        for text, row in zip(frame[col.name], frame["input_row"]):
            cell = []
            try:
                schema.check_cell(col, text, cell)
            except schema.SchemaError as exc:
                return f"{reader.where(Path('t.csv'), row, col.name)}: {exc}", notes
            notes += [(row, col.name, n) for n in cell]
    return None, notes


def test_validate_table_refuses_the_first_bad_cell_or_gives_the_values_and_warning_checking_each_cell_gives(caplog):
    rng = random.Random(15)
    table, refused = _table(), 0
    for _ in range(400):
        n = rng.randint(1, 6)
        # mostly valid columns (the fast path), sometimes one bad cell somewhere
        good = {"free": ["", "a", "x y", "tab\tbed", "line\nbreak"], "code": ["a", "b", "c"],
                "answer": ["", "ja", "nee"], "must": ["a", "b", "c"]}
        frame = pd.DataFrame({c: [rng.choice(good[c] if rng.random() < 0.97 else POOL) for _ in range(n)]
                              for c in good} | {"n": [rng.choice(NUMBERS) for _ in range(n)]})
        frame.insert(0, "input_row", range(1, n + 1))
        expected, notes = _cell_by_cell(frame, table)
        if expected is None:
            caplog.clear()
            out = reader.validate_table(frame, table, Path("t.csv"), convert=("n",))
            values = [pd.NA if t == "" else int(float(t)) for t in frame["n"]]
            pd.testing.assert_frame_equal(out, frame.assign(n=pd.array(values, dtype="Int64")))
            said = [r.getMessage() for r in caplog.records]
            if notes:
                row, col, note = notes[0]
                more = f" (and {len(notes) - 1} more cells)" if len(notes) > 1 else ""
                assert said == [f"{reader.where(Path('t.csv'), row, col)}: {note}{more}; write whole numbers without "
                                "decimals"]
            else:
                assert said == []
        else:
            refused += 1
            with pytest.raises(InputError) as err:
                reader.validate_table(frame, table, Path("t.csv"))
            assert str(err.value) == expected
    assert 20 < refused < 380  # both paths are exercised


def test_a_text_column_is_checked_at_once_only_when_no_cell_can_be_refused():
    text, choice = schema.Column("t", kind="text", blank=False), schema.Column("c", kind="choice", choices=("ja",))
    assert reader._plain_texts(text, ["a", "b\nc", "d\te"])
    assert not reader._plain_texts(text, ["a", ""])  # blank where the column wants a value
    assert not reader._plain_texts(text, ["a", "b\x1f"])  # a control character
    assert not reader._plain_texts(choice, ["ja", "nee"]) and reader._plain_texts(choice, ["ja", ""])
    assert not reader._plain_texts(schema.Column("n", kind="number"), ["1"])  # numbers are parsed cell by cell

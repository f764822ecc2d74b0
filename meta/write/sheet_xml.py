"""A worksheet's data rows as the XML openpyxl writes for them, built as strings (the workbook's fast path).

:mod:`meta.write.xlsx_package` writes ``meta.xlsx`` with these rows, as openpyxl would (openpyxl writes it when
that module cannot). openpyxl's cell writer (``openpyxl.cell._writer.etree_write_cell``, called by
``WorksheetWriter.write_row``) serialises one ElementTree element per cell, ~25 µs a cell: 5 s for the 200,000
cells of a 60-municipality workbook. :func:`rows_xml` returns the same characters for the values the sheets hold
(None, bool, int, finite float, text) — ``<row r="2"><c r="A2" s="2" t="n"><v>0.5</v></c>…</row>`` with openpyxl's
attribute order, ``"%.16g"`` numbers, ``t="inlineStr"`` texts escaped as ElementTree escapes character data (& < >)
and ``xml:space="preserve"`` where a text starts or ends with white space — and None for any value it does not
write the way openpyxl would (a text openpyxl turns into a formula or an error code, a text over 32,767 characters
or with a control character, a non-finite or other number): the caller then lets openpyxl write the rows.
``tests/test_workbook.py`` compares both ways byte for byte.
"""

from __future__ import annotations

import functools
import math
import re
from html import escape

_MAX_TEXT = 32767  # openpyxl cuts longer texts: left to openpyxl
#: The characters no workbook cell can hold and the texts openpyxl takes for error codes: openpyxl's
#: ``ILLEGAL_CHARACTERS_RE`` and ``ERROR_CODES`` (a test keeps them equal), here so that meta does not import openpyxl
ILLEGAL_CHARACTERS_RE = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")
ERROR_CODES = ('#NULL!', '#DIV/0!', '#VALUE!', '#REF!', '#NAME?', '#NUM!', '#N/A')


@functools.cache
def column_letter(j: int) -> str:
    """The letters of column ``j`` (1 → 'A', 27 → 'AA'), as openpyxl's ``get_column_letter``."""
    letters = ""
    while j:
        j, r = divmod(j - 1, 26)
        letters = chr(65 + r) + letters
    return letters


def text_xml(value: str) -> str | None:
    """``<is><t>…</t></is>`` for a text openpyxl writes as an inline string, else None."""
    if (len(value) > _MAX_TEXT or (len(value) > 1 and value[0] == "=") or value in ERROR_CODES
            or ILLEGAL_CHARACTERS_RE.search(value)):
        return None
    stripped = value.strip()
    space = ' xml:space="preserve"' if stripped and value != stripped else ""
    return f"<is><t{space}>{escape(value, quote=False)}</t></is>"  # & < > as ElementTree escapes character data


def _cells(values: list, letter: str, style: int | None, first_row: int) -> list[str] | None:
    """One column's ``<c>`` elements, one string per row ('' where openpyxl writes nothing), or None."""
    s = "" if style is None else f' s="{style}"'
    out = []
    texts: dict[str, str] = {}  # text -> the end of its cell (a column repeats its texts: statuses, names, yes/no)
    for row, v in enumerate(values, start=first_row):
        kind = type(v)
        if v is None:
            out.append(f'<c r="{letter}{row}"{s} t="n" />' if s else "")
        elif kind is str:
            end = texts.get(v)
            if end is None:
                body = text_xml(v) if v else ""
                if body is None:
                    return None
                end = texts[v] = f' t="inlineStr">{body}</c>' if body else ' t="inlineStr" />'
            out.append(f'<c r="{letter}{row}"{s}{end}')
        elif kind is bool:
            out.append(f'<c r="{letter}{row}"{s} t="b"><v>{"1" if v else "0"}</v></c>')
        elif kind is int or (kind is float and math.isfinite(v)):
            out.append(f'<c r="{letter}{row}"{s} t="n"><v>{"%.16g" % v}</v></c>')
        else:
            return None
    return out


def rows_xml(columns: list[list], styles: list[int | None], first_row: int = 2) -> str | None:
    """The ``<row>`` elements for the rows ``first_row``, ``first_row + 1``, … of a sheet whose column ``j`` holds
    ``columns[j]`` (all of equal length) with cell style ``styles[j]`` (openpyxl's style id, None for unstyled:
    an unstyled empty cell is not written, a styled one is); None if a value is not one this module writes."""
    cells = []
    for j, (values, style) in enumerate(zip(columns, styles), start=1):
        column = _cells(values, column_letter(j), style, first_row)
        if column is None:
            return None
        cells.append(column)
    n = len(columns[0]) if columns else 0
    return "".join(f'<row r="{first_row + i}">{"".join(row)}</row>'
                   for i, row in zip(range(n), zip(*cells) if cells else [()] * n))

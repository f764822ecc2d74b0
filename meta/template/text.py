"""A CSV input file's text as it is written: its style (delimiter, decimal comma, line ending, byte-order mark),
its header, and rows added or changed in that style, every other byte kept.

``meta add`` appends rows to, and changes a status in, files an analyst may have saved from Excel in a Dutch
locale; the rows it writes must read back as the file's own (:mod:`meta.read.reader` reads them).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from meta.read.reader import COMMA_NUMBER, DOT_NUMBER, NUMERIC_COLUMNS, delimiter_of, first_line, strip


@dataclass(frozen=True)
class Style:
    """How an input file is written, so that rows added to it match: delimiter, decimal comma, line ending, BOM."""

    delimiter: str = ","
    decimal_comma: bool = False
    newline: str = "\n"
    bom: str = ""




def read_text(path: Path) -> str:
    """A file's text exactly (line endings and byte-order mark kept)."""
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def file_style(text: str) -> Style:
    """The :class:`Style` of a CSV text: the delimiter and, in a semicolon-separated file, whether its numeric
    columns write decimal commas, by the reader's own rules (:func:`meta.read.reader.delimiter_of`,
    :data:`meta.read.reader.COMMA_NUMBER`)."""
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    body = text[len(bom):]
    delimiter = delimiter_of(first_line(body))
    comma = False
    if delimiter == ";":
        records = list(csv.reader(io.StringIO(body, newline=""), delimiter=";"))
        numeric = [j for j, c in enumerate(records[0]) if c.strip() in NUMERIC_COLUMNS] if records else []
        comma = any(COMMA_NUMBER.match(strip(rec[j])) for rec in records[1:] for j in numeric if j < len(rec))
    return Style(delimiter, comma, "\r\n" if "\r\n" in body else "\n", bom)


def csv_rows(frame: pd.DataFrame, columns: list[str], style: Style = Style()) -> str:
    """Rows as CSV text in the style of the file they are added to (minimal quoting), no header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=style.delimiter, lineterminator=style.newline)
    for r in frame.to_dict("records"):
        cells = [str(r.get(c, "")) for c in columns]
        if style.decimal_comma:
            cells = [v.replace(".", ",") if c in NUMERIC_COLUMNS and DOT_NUMBER.match(v) else v
                     for c, v in zip(columns, cells)]
        writer.writerow(cells)
    return buffer.getvalue()


def append(text: str, addition: str, style: Style = Style()) -> str:
    """``text`` with ``addition`` after it, on a new line in the file's line ending."""
    if text and not text.endswith(("\n", "\r")):
        text += style.newline
    return text + addition


def column_names(text: str, style: Style) -> list[str]:
    """The column names of a CSV text, as the file has them (spaces around them dropped)."""
    return [c.strip() for c in next(csv.reader(io.StringIO(text[len(style.bom):]), delimiter=style.delimiter))]


def has_rows(path: Path) -> bool:
    """Whether a CSV has a data row with any non-blank cell (a template left blank adds nothing)."""
    try:
        text = read_text(path)
    except (OSError, UnicodeDecodeError):
        return True  # let the loader say what is wrong with it
    style = file_style(text)
    records = list(csv.reader(io.StringIO(text[len(style.bom):], newline=""), delimiter=style.delimiter))
    return any(any(c.strip() for c in rec) for rec in records[1:])


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


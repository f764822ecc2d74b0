"""``meta.xlsx`` written whole by meta: the package's parts as the strings openpyxl 3.1.5 writes for these sheets.

Why not openpyxl here: importing it costs ~0.1-0.35 s of CPU on a cold ``meta run`` (more than writing the whole
workbook), and its write-only mode, which :mod:`meta.write.workbook` used for the parts, styles and header rows,
builds an object per cell and part only to serialise the same few fixed strings. This module writes the same
characters itself: the fixed parts (content types, relationships, document properties, the default Office theme in
``theme1.xml``, copied from ``openpyxl.writer.theme``), ``workbook.xml`` (sheet names, filter ranges), ``styles.xml``
(the bold header font, each number format's cell style in the order openpyxl registers them) and each sheet (widths,
frozen header, filter, the header row and the data rows of :mod:`meta.write.sheet_xml`), in openpyxl's member order,
zipped with fixed times. openpyxl stays the reference and the fallback: :func:`package` returns None for anything it
does not write as openpyxl would (a sheet name that is not plain letters and digits, a number format it does not
know, a value :func:`meta.write.sheet_xml.rows_xml` leaves to openpyxl, a sheet without columns), and the caller then
lets openpyxl write the workbook as before. ``tests/test_workbook.py`` compares both ways byte for byte (the real
workbook in both languages, tricky values, empty sheets) and this module's version and theme with the installed
openpyxl's.
"""

from __future__ import annotations

import re
import zipfile
from html import escape
from pathlib import Path

from meta.write.sheet_xml import column_letter, rows_xml, text_xml

#: the default Office theme openpyxl writes (``openpyxl.writer.theme.theme_xml``)
THEME = Path(__file__).with_name("theme1.xml")
#: the openpyxl whose output these parts reproduce (docProps/app.xml names it; a test checks the installed one)
OPENPYXL_VERSION = "3.1.5"
#: number formats of openpyxl's builtin table (their ids) among those the sheets use; others are custom (164, …)
BUILTIN_FORMATS = {"0": 1, "0.00": 2}
#: custom number formats known not to be builtin in openpyxl (a test checks); any other format: openpyxl writes
CUSTOM_FORMATS = ("0.000",)
_FIRST_CUSTOM = 164
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_TYPE = "application/vnd.openxmlformats-officedocument."
#: a zip member's external attributes as openpyxl's archive gives them: parts written from a string (0600), and
#: the sheets, copied from a temporary file (a regular file, 0600)
_FROM_STRING, _FROM_FILE = 0o600 << 16, (0o100000 | 0o600) << 16


def write(sheets: list[tuple[str, list[str], list[list], list[int], list]], path: Path, fast: bool = True) -> Path:
    """Write the workbook of ``sheets`` (as :func:`package` takes them) at ``path``: by :func:`package`, or by
    openpyxl when it cannot or ``fast`` is false (:func:`openpyxl_package`)."""
    if fast and package(sheets, path) is not None:
        return Path(path)
    return openpyxl_package(sheets, path, fast)


def package(sheets: list[tuple[str, list[str], list[list], list[int], list]], path: Path) -> Path | None:
    """Write the workbook of ``sheets`` at ``path``, or return None (nothing written) when openpyxl must.

    Parameters
    ----------
    sheets : list of (name, headers, columns, widths, formats)
        Per sheet, in order: its name, its header texts, its columns' values (Python scalars, None for blank; all of
        one length), each column's width and number format (None for none).

    Returns
    -------
    Path or None
        ``path``, or None when a sheet holds something this module does not write as openpyxl would.
    """
    if not all(name.isascii() and name.isalnum() and headers and all(headers) for name, headers, *_ in sheets):
        return None
    formats = [f for *_, fmts in sheets for f in fmts if f is not None]
    if any(f not in BUILTIN_FORMATS and f not in CUSTOM_FORMATS for f in formats):
        return None
    custom = list(dict.fromkeys(f for f in formats if f not in BUILTIN_FORMATS))  # registered when first set
    ids = {**BUILTIN_FORMATS, **{f: _FIRST_CUSTOM + i for i, f in enumerate(custom)}}
    xfs = [(0, 0)]  # cell styles (number format id, font id): the default, then each as openpyxl first writes it
    parts, refs = [], []
    for name, headers, columns, widths, fmts in sheets:
        header = [text_xml(h) for h in headers]
        if any(h is None for h in header):
            return None
        _add(xfs, (0, 1))  # the header row's bold font: style 1
        n = len(columns[0]) if columns else 0
        styles = [None if f is None or not n else _add(xfs, (ids[f], 0)) for f in fmts]  # when row 2 is written
        rows = rows_xml(columns, styles) if n else ""
        if rows is None:
            return None
        last = f"{column_letter(len(headers))}{n + 1}"
        refs.append((name, last))
        parts.append(_sheet(header, widths, last, rows))
    _write_zip(path, parts, refs, _styles(custom, ids, xfs))
    return Path(path)


def _add(styles: list, style: tuple) -> int:
    """The index of ``style`` in ``styles``, appended first if new (openpyxl's IndexedList)."""
    if style not in styles:
        styles.append(style)
    return styles.index(style)


def _sheet(header: list[str], widths: list[int], last: str, rows: str) -> bytes:
    """One worksheet part: properties, dimension, frozen header, widths, the rows, the filter, the margins."""
    cols = "".join(f'<col width="{w}" customWidth="1" min="{j}" max="{j}" />' for j, w in enumerate(widths, start=1))
    head = "".join(f'<c r="{column_letter(j)}1" s="1" t="inlineStr">{h}</c>' for j, h in enumerate(header, start=1))
    return (f'<worksheet xmlns="{_MAIN}"><sheetPr><outlinePr summaryBelow="1" summaryRight="1" /><pageSetUpPr />'
            f'</sheetPr><dimension ref="A1:{last}" /><sheetViews><sheetView workbookViewId="0"><pane ySplit="1" '
            'topLeftCell="A2" activePane="bottomLeft" state="frozen" /><selection pane="bottomLeft" activeCell="A1" '
            'sqref="A1" /></sheetView></sheetViews><sheetFormatPr baseColWidth="8" defaultRowHeight="15" />'
            f'<cols>{cols}</cols><sheetData><row r="1">{head}</row>{rows}</sheetData><autoFilter ref="A1:{last}" />'
            '<pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" footer="0.5" /></worksheet>'
            ).encode("utf-8", "xmlcharrefreplace")  # as openpyxl writes a sheet: UTF-8, unencodable as &#…;


def _styles(custom: list[str], ids: dict, xfs: list[tuple[int, int]]) -> bytes:
    """``styles.xml``: the custom number formats, the default and bold fonts and the cell styles ``xfs`` (number
    format id, font id)."""
    fmts = "".join(f'<numFmt numFmtId="{ids[f]}" formatCode="{escape(f)}" />' for f in custom)
    num_fmts = f'<numFmts count="{len(custom)}">{fmts}</numFmts>' if custom else '<numFmts count="0" />'
    xf = "".join(f'<xf numFmtId="{fmt}" fontId="{font}" fillId="0" borderId="0" pivotButton="0" quotePrefix="0" '
                 'xfId="0" />' for fmt, font in xfs)
    colors = "".join(f'<rgbColor rgb="{c}" />' for c in _INDEXED_COLORS.split())
    return (f'<styleSheet xmlns="{_MAIN}">{num_fmts}<fonts count="2"><font><name val="Calibri" /><family val="2" />'
            '<color theme="1" /><sz val="11" /><scheme val="minor" /></font><font><b val="1" /></font></fonts>'
            '<fills count="2"><fill><patternFill /></fill><fill><patternFill patternType="gray125" /></fill></fills>'
            '<borders count="1"><border><left /><right /><top /><bottom /><diagonal /></border></borders>'
            '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" /></cellStyleXfs>'
            f'<cellXfs count="{len(xfs)}">{xf}</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" '
            'builtinId="0" hidden="0" /></cellStyles><tableStyles count="0" defaultTableStyle="TableStyleMedium9" '
            f'defaultPivotStyle="PivotStyleLight16" /><colors><indexedColors>{colors}</indexedColors></colors>'
            '</styleSheet>').encode()


def _workbook(refs: list[tuple[str, str]]) -> bytes:
    """``workbook.xml``: the sheets in order and each one's filter range."""
    sheets = "".join(f'<sheet name="{name}" sheetId="{i}" state="visible" r:id="rId{i}" />'
                     for i, (name, _) in enumerate(refs, start=1))
    names = "".join(f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
                    f"'{name}'!{_absolute('A1')}:{_absolute(last)}</definedName>"
                    for i, (name, last) in enumerate(refs))
    return (f'<workbook xmlns:r="{_REL}" xmlns="{_MAIN}"><workbookPr /><workbookProtection /><bookViews>'
            '<workbookView visibility="visible" minimized="0" showHorizontalScroll="1" showVerticalScroll="1" '
            'showSheetTabs="1" tabRatio="600" firstSheet="0" activeTab="0" autoFilterDateGrouping="1" /></bookViews>'
            f'<sheets>{sheets}</sheets><definedNames>{names}</definedNames><calcPr calcId="124519" '
            'fullCalcOnLoad="1" /></workbook>').encode()


def _absolute(ref: str) -> str:
    """'AO48' -> '$AO$48'."""
    digits = len(ref) - len(ref.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    return f"${ref[:digits]}${ref[digits:]}"


def _write_zip(path: Path, sheets: list[bytes], refs: list[tuple[str, str]], styles: bytes) -> None:
    """The parts in openpyxl's order, deflated, every member dated 2020-01-01 (byte-identical reruns)."""
    n = len(sheets)
    members = [("docProps/app.xml", _APP.encode(), _FROM_STRING), ("docProps/core.xml", _CORE.encode(), _FROM_STRING),
               ("xl/theme/theme1.xml", THEME.read_bytes(), _FROM_STRING),
               *((f"xl/worksheets/sheet{i}.xml", xml, _FROM_FILE) for i, xml in enumerate(sheets, start=1)),
               ("xl/styles.xml", styles, _FROM_STRING), ("_rels/.rels", _ROOT_RELS.encode(), _FROM_STRING),
               ("xl/workbook.xml", _workbook(refs), _FROM_STRING),
               ("xl/_rels/workbook.xml.rels", _workbook_rels(n), _FROM_STRING),
               ("[Content_Types].xml", _content_types(n), _FROM_STRING)]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data, attr in members:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = attr
            z.writestr(info, data)


def _workbook_rels(n: int) -> bytes:
    """``xl/_rels/workbook.xml.rels``: the ``n`` sheets, then the styles and the theme."""
    rel = _REL + "/"
    sheets = "".join(f'<Relationship Type="{rel}worksheet" Target="/xl/worksheets/sheet{i}.xml" Id="rId{i}" />'
                     for i in range(1, n + 1))
    return (f'<Relationships xmlns="{_PKG_REL}">{sheets}<Relationship Type="{rel}styles" Target="styles.xml" '
            f'Id="rId{n + 1}" /><Relationship Type="{rel}theme" Target="theme/theme1.xml" Id="rId{n + 2}" />'
            '</Relationships>').encode()


def _content_types(n: int) -> bytes:
    """``[Content_Types].xml``: the defaults, then every part's type."""
    over = [("/xl/styles.xml", _TYPE + "spreadsheetml.styles+xml"), ("/xl/theme/theme1.xml", _TYPE + "theme+xml"),
            ("/docProps/core.xml", "application/vnd.openxmlformats-package.core-properties+xml"),
            ("/docProps/app.xml", _TYPE + "extended-properties+xml"),
            *((f"/xl/worksheets/sheet{i}.xml", _TYPE + "spreadsheetml.worksheet+xml") for i in range(1, n + 1)),
            ("/xl/workbook.xml", _TYPE + "spreadsheetml.sheet.main+xml")]
    return ('<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml" /><Default Extension="xml" '
            'ContentType="application/xml" />'
            + "".join(f'<Override PartName="{p}" ContentType="{t}" />' for p, t in over) + "</Types>").encode()


_APP = ('<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"><Application>'
        f"Microsoft Excel Compatible / Openpyxl {OPENPYXL_VERSION}</Application><AppVersion>"
        f"{OPENPYXL_VERSION.rsplit('.', 1)[0]}</AppVersion></Properties>")
_CORE = ('<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
         'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
         'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:creator>openpyxl</dc:creator>'
         '<dcterms:created xsi:type="dcterms:W3CDTF">2020-01-01T00:00:00Z</dcterms:created>'
         '<dcterms:modified xsi:type="dcterms:W3CDTF">2020-01-01T00:00:00Z</dcterms:modified></cp:coreProperties>')
_ROOT_RELS = (f'<Relationships xmlns="{_PKG_REL}"><Relationship Type="{_REL}/officeDocument" Target="xl/workbook.xml" '
              f'Id="rId1" /><Relationship Type="{_PKG_REL}/metadata/core-properties" Target="docProps/core.xml" '
              f'Id="rId2" /><Relationship Type="{_REL}/extended-properties" Target="docProps/app.xml" Id="rId3" />'
              "</Relationships>")
#: openpyxl's default indexed colours (styles.xml), in order
_INDEXED_COLORS = """
00000000 00FFFFFF 00FF0000 0000FF00 000000FF 00FFFF00 00FF00FF 0000FFFF 00000000 00FFFFFF 00FF0000 0000FF00 000000FF
00FFFF00 00FF00FF 0000FFFF 00800000 00008000 00000080 00808000 00800080 00008080 00C0C0C0 00808080 009999FF 00993366
00FFFFCC 00CCFFFF 00660066 00FF8080 000066CC 00CCCCFF 00000080 00FF00FF 00FFFF00 0000FFFF 00800080 00800000 00008080
000000FF 0000CCFF 00CCFFFF 00CCFFCC 00FFFF99 0099CCFF 00FF99CC 00CC99FF 00FFCC99 003366FF 0033CCCC 0099CC00 00FFCC00
00FF9900 00FF6600 00666699 00969696 00003366 00339966 00003300 00333300 00993300 00993366 00333399 00333333"""


def openpyxl_package(sheets: list, path: Path, fast: bool) -> Path:
    """The workbook of :func:`package`'s ``sheets`` by openpyxl's write-only mode: the parts, styles and header rows;
    with ``fast`` each sheet's data rows as strings (:func:`meta.write.sheet_xml.rows_xml`), put into the sheet when
    the zip is rewritten with fixed times; openpyxl writes a sheet's rows when that function cannot, and every row
    without ``fast``."""
    import datetime as _dt

    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    rows = []
    for sheet in sheets:
        ws = wb.create_sheet(sheet[0])
        rows.append((ws, _openpyxl_sheet(ws, sheet, fast)))
    wb.properties.created = wb.properties.modified = _dt.datetime(2020, 1, 1)
    wb.save(path)
    fix_zip_times(path, {ws.path.lstrip("/"): xml for ws, xml in rows if xml})  # a sheet's path is set by save
    return Path(path)


def _openpyxl_sheet(ws, sheet: tuple, fast: bool) -> str | None:
    """One sheet of a write-only workbook (widths, frozen header, filter, bold header row, the number formats).
    Returns the data rows' XML (:func:`meta.write.sheet_xml.rows_xml`), or None when openpyxl wrote them."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    _, headers, columns, widths, formats = sheet
    n = len(columns[0]) if columns else 0
    for j, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = width
    ws.freeze_panes = "A2"
    last = f"{get_column_letter(max(len(headers), 1))}{n + 1}"
    ws.auto_filter.ref = f"A1:{last}"
    ws.calculate_dimension = lambda: f"A1:{last}"  # the <dimension> the writer asks a worksheet for
    bold = Font(bold=True)
    head = [WriteOnlyCell(ws, value=h) for h in headers]
    for cell in head:
        cell.font = bold
    ws.append(head)
    formatted = {}  # column index -> the one styled cell its values pass through (written before the next row)
    for j, fmt in enumerate(formats):
        if fmt is not None:
            formatted[j] = WriteOnlyCell(ws)
            formatted[j].number_format = fmt
    if fast and n:
        # style ids in the order openpyxl's writer would register them: header first, then row 2 left to right
        xml = rows_xml(columns, [formatted[j].style_id if j in formatted else None for j in range(len(headers))])
        if xml is not None:
            return xml
    for values in zip(*columns):
        row = list(values)
        for j, cell in formatted.items():
            cell.value = row[j]
            row[j] = cell
        ws.append(row)
    return None


def fix_zip_times(path: Path, rows: dict | None = None) -> None:
    """Rewrite a zip (xlsx) with fixed member timestamps, so the same tables give the same bytes; ``rows``
    {member: XML} puts each sheet's data rows after its header row (before ``</sheetData>``)."""
    with zipfile.ZipFile(path) as z:
        members = [(info, z.read(info)) for info in z.infolist()]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for info, data in members:
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time as 'modified'
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2020-01-01T00:00:00Z", data)
            if rows and info.filename in rows:  # as openpyxl writes a sheet: UTF-8, unencodable as &#…;
                data = data.replace(b"</sheetData>", rows[info.filename].encode("utf-8", "xmlcharrefreplace")
                                    + b"</sheetData>", 1)
            fixed = zipfile.ZipInfo(info.filename, date_time=(2020, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            z.writestr(fixed, data)

"""Citations a reader can follow: source document, table and printed page of every number.

The report and the workbook cite with these functions; they sit in ``read`` beside the loaders of
``sources.csv`` and ``source_pages.csv`` (:mod:`meta.read.registers`) because they read nothing but those tables.

The page of a line of a source text comes from ``inputs/source_pages.csv``, the places where the text file
itself prints a page: a page number at the foot of a page (``page_number``: that line and the lines since the
previous page foot are on that page or before it) or a heading that the table of contents puts on a page
(``toc_heading``: that heading begins on that page). A line between two such places lies within their page
range; when no place bounds it on both sides, the citation gives the line of the text file (``r. 1429``) rather
than guess. Titles, authors, years and publishers come from ``inputs/sources.csv``, as printed; values in
[brackets] are supplied, not printed (see that file's note column).
"""

from __future__ import annotations

import math
import re

import pandas as pd

#: Words of the citations, per language.
WORDS = {
    "nl": {"et_al": "e.a.", "and": "&", "no_year": "z.j.", "page": "p.", "line": "r.",
           "file": "tekstbestand", "published_in": "In", "not_printed": "niet gedrukt",
           "supplied": "niet gedrukt, afgeleid uit de tekst"},
    "en": {"et_al": "et al.", "and": "&", "no_year": "n.d.", "page": "p.", "line": "line",
           "file": "text file", "published_in": "In", "not_printed": "not printed",
           "supplied": "not printed, inferred from the text"},
}
_PARTICLES = {"van", "de", "der", "den", "ten", "ter", "te", "het", "'t", "op", "in", "von"}


def page_anchors(pages: pd.DataFrame | None) -> dict:
    """{source_file: [(line, page, kind), …]}: the anchors of ``source_pages.csv`` per file, in file order, read once
    for a table that cites many lines (:func:`page_span` takes this or the table itself)."""
    out: dict = {}
    if pages is not None and len(pages):
        for source_file, *anchor in zip(pages["source_file"], pages["line"], pages["page"], pages["kind"]):
            out.setdefault(source_file, []).append(tuple(anchor))
    return out


def page_span(pages: pd.DataFrame | dict, source_file: str, line: int) -> tuple[int | None, int | None]:
    """(lowest, highest) printed page that line ``line`` of ``source_file`` can be on; None where unbounded.

    From every anchor of :data:`pages` (``source_pages.csv``, or its :func:`page_anchors`) of that file: a
    ``page_number`` anchor at line F with page P puts lines <= F on page <= P and lines > F on page >= P + 1 (it is
    printed at the foot of page P); a ``toc_heading`` anchor at line H with page P puts lines >= H on page >= P and
    lines < H on page <= P (the contents say the heading begins on page P).
    """
    low = high = None
    anchors = pages if isinstance(pages, dict) else page_anchors(pages)
    for a_line, a_page, kind in anchors.get(source_file, ()):
        a_line, a_page = int(a_line), int(a_page)
        if kind == "page_number":
            lo, hi = (a_page + 1, None) if line > a_line else (None, a_page)
        else:
            lo, hi = (a_page, None) if line >= a_line else (None, a_page)
        if lo is not None:
            low = lo if low is None else max(low, lo)
        if hi is not None:
            high = hi if high is None else min(high, hi)
    return low, high


def page_text(pages: pd.DataFrame | dict, source_file: str, line: int, lang: str = "nl") -> str:
    """``p. 17`` (page known), ``p. 17–23`` (between two printed pages) or ``r. 354`` (no page bound on one side)."""
    w = WORDS[lang]
    low, high = page_span(pages, source_file, int(line))
    if low is None or high is None or low > high:
        return f"{w['line']} {int(line)}"
    return f"{w['page']} {low}" if low == high else f"{w['page']} {low}–{high}"


def source_rows(sources: pd.DataFrame | None) -> dict:
    """{source_file: its first row of ``sources.csv``}, read once for a table that cites many rows
    (:func:`citation` takes this or the table itself)."""
    out: dict = {}
    if sources is not None and len(sources):
        for _, row in sources.iterrows():
            out.setdefault(row["source_file"], row)
    return out


def _source_row(sources: pd.DataFrame | dict, source_file: str):
    if isinstance(sources, dict):
        return sources.get(source_file)
    if sources is None or len(sources) == 0:
        return None
    hit = sources[sources["source_file"] == source_file]
    return None if len(hit) == 0 else hit.iloc[0]


def surname(name: str) -> str:
    """The family name of a printed name: from the first particle (van, de, ...) on, else the last word.

    >>> surname("Stefan van Wanrooij"), surname("J. Betkó"), surname("Peer Scheepers")
    ('van Wanrooij', 'Betkó', 'Scheepers')
    """
    words = name.split()
    for i, word in enumerate(words[1:], start=1):
        if word.lower() in _PARTICLES:
            return " ".join(words[i:])
    return words[-1] if words else ""


def _supplied(value: str) -> tuple[str, bool]:
    """A ``sources.csv`` value without its [brackets], and whether it had them (supplied, not printed)."""
    value = str(value).strip()
    if value.startswith("[") and value.endswith("]"):
        return value[1:-1].strip(), True
    return value, False


def author_year(row, lang: str = "nl") -> str:
    """``Betkó e.a., 2020`` / ``Rombouts & Betkó, 2024`` / ``Tilburg University, 2020; niet gedrukt, afgeleid uit de
    tekst`` (no authors printed: the publisher, and values supplied in [brackets] said so in words)."""
    w = WORDS[lang]
    authors = [a.strip() for a in str(row["authors"]).split(";") if a.strip()]
    if len(authors) >= 3:
        who = f"{surname(authors[0])} {w['et_al']}"
    elif len(authors) == 2:
        who = f"{surname(authors[0])} {w['and']} {surname(authors[1])}"
    elif authors:
        who = surname(authors[0])
    else:
        who = str(row["publisher"]) or str(row["label_nl" if lang == "nl" else "label_en"])
    (who, who_supplied), (year, year_supplied) = _supplied(who), _supplied(row["year"])
    year = year or w["no_year"]
    return f"{who}, {year}" + (f"; {w['supplied']}" if who_supplied or year_supplied else "")


def citation(sources: pd.DataFrame | dict, pages: pd.DataFrame | dict, source_file: str, source_table: str,
             source_line, lang: str = "nl") -> str:
    """Where a number is printed, for a reader of the source document.

    ``Nijmegen-rapport (Betkó e.a., 2020), Tabel 3, p. 17–23``: the source's label and author-year from
    ``sources.csv`` (or its :func:`source_rows`), the table as transcribed, the printed page (:func:`page_text`). A
    file without a row in ``sources.csv`` is cited by its file name and line.
    """
    line = None if source_line is None or (isinstance(source_line, float) and math.isnan(source_line)) \
        else int(source_line)
    row = _source_row(sources, source_file)
    where = page_text(pages, source_file, line, lang) if line is not None else ""
    if row is None:
        head = str(source_file)
        where = f"{WORDS[lang]['line']} {line}" if line is not None else ""
    else:
        head = f"{row['label_nl' if lang == 'nl' else 'label_en']} ({author_year(row, lang)})"
    return ", ".join(p for p in (head, str(source_table or ""), where) if p)


def reference(row, lang: str = "nl") -> str:
    """The full reference of one ``sources.csv`` row (APA-like; blank fields left out, [supplied] kept).

    ``Betkó, J., Spierings, N., ... (2020). Rapportage experiment ... . Radboud Social Cultural Research ...``
    """
    w = WORDS[lang]
    authors = [a.strip() for a in str(row["authors"]).split(";") if a.strip()]
    names = []
    for a in authors:
        family = surname(a)
        given = a[: len(a) - len(family)].strip()
        initials = " ".join(f"{g[0]}." for g in re.split(r"[\s.]+", given) if g)
        names.append(f"{family}, {initials}" if initials else family)
    who = (", ".join(names[:-1]) + f" {w['and']} " + names[-1]) if len(names) > 1 else (names[0] if names else "")
    year = str(row["year"]) or w["no_year"]
    if who:
        parts = [f"{who} ({year}).", f"{row['title']}." if row["title"] else ""]
    else:  # no authors printed: the title takes their place (APA)
        parts = [f"{row['title']}." if row["title"] else "", f"({year})."]
    if row["published_in"]:
        parts.append(f"{w['published_in']}: {row['published_in']}.")
    if row["publisher"]:
        parts.append(f"{row['publisher']}.")
    if row["pages"]:
        parts.append(f"{row['pages']} p.")
    if row["url"]:
        parts.append(str(row["url"]))
    parts.append(f"({w['file']} {row['source_file']})")
    return " ".join(p for p in parts if p)


def cite_lines(sources: pd.DataFrame, pages: pd.DataFrame | dict, spec: str, lang: str = "nl") -> str:
    """A register's seed lines (``004:2054-2058;004:2076``) as a reader can follow them: each document's label with
    the printed page of each line range's first line, once per page (``Wageningen-eindverslag, p. 27–39``).

    The seed number is the prefix of a ``sources.csv`` file name (``004_…``); a seed without a row there is cited by
    its number and line (``004, r. 2054``).
    """
    out: dict[str, list[str]] = {}
    files = [] if sources is None or len(sources) == 0 else sources["source_file"].tolist()
    anchors = pages if isinstance(pages, dict) else page_anchors(pages)  # read once for every line cited
    for part in [x.strip() for x in str(spec).split(";") if x.strip()]:
        seed, _, lines = part.partition(":")
        line = int(lines.split("-")[0])
        hit = next((i for i, f in enumerate(files) if isinstance(f, str) and f.startswith(seed + "_")), None)
        if hit is None:
            head, where = seed, f"{WORDS[lang]['line']} {line}"
        else:
            row = sources.iloc[hit]  # the first row of that seed
            head = row["label_nl" if lang == "nl" else "label_en"]
            where = page_text(anchors, row["source_file"], line, lang)
        if where not in out.setdefault(head, []):
            out[head].append(where)
    return "; ".join(f"{head}, {', '.join(where)}" for head, where in out.items())


#: A seed line reference inside prose: "004:2054-2058", "002:213" (seed number, colon, line or line range).
LINE_REF = re.compile(r"\b(\d{3}):(\d+(?:-\d+)?)\b")


def cite_inline(text: str, sources: pd.DataFrame, pages: pd.DataFrame, lang: str = "en") -> str:
    """``text`` with every seed line reference in it ("… full exits (004:2054-2058) …") cited as a reader can follow
    it (:func:`cite_lines`: "… full exits (Wageningen final report, p. 27) …")."""
    if not isinstance(text, str):
        return text
    if not LINE_REF.search(text):
        return text
    anchors = pages if isinstance(pages, dict) else page_anchors(pages)  # read once for every reference
    return LINE_REF.sub(lambda m: cite_lines(sources, anchors, m.group(0), lang), text)

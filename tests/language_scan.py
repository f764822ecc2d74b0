"""Scan what a reader sees (report HTML, workbook cells, figure texts) for English words, code names and
decimal points in the Dutch output, and for Dutch words in the English output.

Verbatim quotations are exempt: in the HTML, elements marked ``translate="no"`` (printed tokens, file and command
names); in the workbook, the columns the writer lists as verbatim.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

#: English words that never occur in Dutch prose (Dutch homographs such as "of", "is", "in", "door" left out).
ENGLISH = frozenset("""
the and with which from for not this that what when where were are has have been by to on at or no yes all each
every one two only without between another cannot shown printed pending transcribed excluded reported pooled
single study weight estimate estimates line source sources municipality municipalities outcome outcomes
marks shares policy conservative central means verdict coverage row rows represents level unit method methods
headline side sensitivity components component exemption intensive release choice months month scale
normal effects intervals reason reasons pooling significance reconstructed derived see note notes read first here
""".split())
#: Dutch words that never occur in English prose.
DUTCH = frozenset("""
de het een en van met uit voor niet zijn wordt werd gemeente gemeenten uitkomst uitkomsten schatting gepoold
openstaand overgenomen bron bronnen regel maanden gewicht onderdelen ontheffing intensivering vrijlating
""".split())
#: Fixed technical terms used as such in Dutch writing.
ALLOWED_PHRASES = ("intention-to-treat", "Hartung-Knapp-Sidik-Jonkman", "Hartung-Knapp", "random-effectsmodel",
                   "metafor", "LOEP", "REML", "Wald", "Q-profiel", "ad hoc", "ad-hoc", "Me Judice", "Tilburg University",
                   "matching",
                   # names of people and journals
                   "De Ruig", "de Kruijk", "de Swart", "Tijdschrift voor arbeidsvraagstukken",
                   "Tijdschrift voor Arbeidsvraagstukken", "Research Synthesis Methods", "Biometrical Journal")
FILE_NAME = re.compile(r"[\w./-]+\.(?:csv|txt|toml|html|xlsx|md|py|png|svg)\b")  # names of files are names
QUOTED = re.compile(r"(?<![A-Za-z])'[^'\n]{1,150}'(?![A-Za-z])")
LABEL_BEFORE = re.compile(r"(?:§|Tabel |Table |Figuur |Figure |Fig\. |versie |version )$")  # a version: no decimal
SNAKE = re.compile(r"\b[a-z][a-z0-9]*_[a-z0-9_]+\b")
NUMBER = re.compile(r"\d+(?:[.,]\d+)+")
DUTCH_NUMBER = re.compile(r"(?:[1-9]\d{0,2}(?:\.\d{3})+|\d+)(?:,\d+)?")  # 1.234,5: point for thousands only
ENGLISH_NUMBER = re.compile(r"(?:[1-9]\d{0,2}(?:,\d{3})+|\d+)(?:\.\d+)?")  # 1,234.5: comma for thousands only


class _Visible(HTMLParser):
    """Visible text of an HTML page (and alt texts), skipping style/script and ``translate="no"`` elements."""

    VOID = {"img", "br", "meta", "link", "hr", "input"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[bool] = []  # per open element: does it hide its text?
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img" and attrs.get("alt"):
            self.parts.append(attrs["alt"])
        if tag in self.VOID:
            return
        hidden = tag in ("style", "script") or attrs.get("translate") == "no"
        self.stack.append(hidden or (bool(self.stack) and self.stack[-1]))

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not (self.stack and self.stack[-1]):
            self.parts.append(data)


def visible_text(html_text: str) -> str:
    parser = _Visible()
    parser.feed(html_text)
    return "\n".join(p for p in parser.parts if p.strip())


def problems(text: str, lang: str) -> list[str]:
    """Every offending token in ``text`` for a document in ``lang``, with a little context."""
    out = []
    text = FILE_NAME.sub(" ", text)
    for phrase in ALLOWED_PHRASES:
        text = text.replace(phrase, " ")
    for m in SNAKE.finditer(text):
        out.append(f"code name {m.group()!r}: …{text[max(0, m.start() - 40):m.end() + 40]}…")
    for m in NUMBER.finditer(text):
        tok = m.group()
        if LABEL_BEFORE.search(text[max(0, m.start() - 8):m.start()]):
            continue  # a section or table number (§10.10.4, Tabel 3.5) or a version (0.1.0), not a decimal
        if lang == "nl" and not DUTCH_NUMBER.fullmatch(tok):
            out.append(f"decimal point {tok!r}: …{text[max(0, m.start() - 40):m.end() + 40]}…")
        if lang == "en" and not ENGLISH_NUMBER.fullmatch(tok):
            out.append(f"decimal comma {tok!r}: …{text[max(0, m.start() - 40):m.end() + 40]}…")
    deny = ENGLISH if lang == "nl" else DUTCH
    text = QUOTED.sub(" ", text)  # quoted titles ('De bijstand kan beter') keep their language
    for m in re.finditer(r"[A-Za-zÀ-ÿ]+", text):
        if m.group().lower() in deny:
            out.append(f"{'English' if lang == 'nl' else 'Dutch'} word {m.group()!r}: "
                       f"…{text[max(0, m.start() - 40):m.end() + 40]}…")
    return out


#: Code a reader of the report should never meet, even inside verbatim (``translate="no"``) elements: a seed file
#: with a line (``002_7413e549cc2fe340.txt, r. 356``), a seed line reference (``004:2054-2058``), a path of the
#: test suite (``tests/…``) and a column-name pattern (``classical_*``). Citations name the document and page
#: (meta.read.sources); the reference list may name a seed file, without a line.
CODE_LEAKS = {
    "seed file with a line": re.compile(r"\b\d{3}_[0-9a-f]{16}\.txt\W{0,3}(?:r\.|line|regel) ?\d+"),
    "seed line reference": re.compile(r"(?<![\d.,:/])\b\d{3}:\d+(?:-\d+)?\b"),
    "test-suite path": re.compile(r"\btests/[\w./]*"),
    "column-name pattern": re.compile(r"\b[a-z]+_\*"),
}


def code_leaks(html_text: str) -> list[str]:
    """Every :data:`CODE_LEAKS` match in the page's text (tags removed, verbatim elements included), in context."""
    text = re.sub(r"<style>.*?</style>", " ", html_text, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return [f"{what} {m.group()!r}: …{text[max(0, m.start() - 40):m.end() + 40]}…"
            for what, pattern in CODE_LEAKS.items() for m in pattern.finditer(text)]

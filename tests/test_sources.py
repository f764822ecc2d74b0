"""Sources a reader can find: inputs/sources.csv and inputs/source_pages.csv, checked against the seed texts,
and the citations (document, table, printed page) the report gives for every number."""
import re

import pandas as pd
import pytest

from meta.errors import InputError
from meta.read import load, registers, schema, sources
from tests.conftest import REPO, SEEDS, needs_seeds

S = dict(dtype=str, keep_default_na=False)
SRC = pd.read_csv(REPO / "inputs" / "sources.csv", **S)
PAGES = pd.read_csv(REPO / "inputs" / "source_pages.csv", **S)
EST = pd.read_csv(REPO / "inputs" / "estimates.csv", **S)
NIJMEGEN, WAGENINGEN = "002_7413e549cc2fe340.txt", "004_831ca70123c2cb81.txt"


def _anchors(*rows):
    return pd.DataFrame(rows, columns=["source_file", "line", "page", "kind"])


def test_page_span_between_contents_headings_and_page_feet():
    # headings at lines 100 (p. 5) and 200 (p. 9); page feet '12' at line 300 and '13' at line 380
    a = _anchors(("f", 100, 5, "toc_heading"), ("f", 200, 9, "toc_heading"),
                 ("f", 300, 12, "page_number"), ("f", 380, 13, "page_number"))
    assert sources.page_span(a, "f", 99) == (None, 5)
    assert sources.page_span(a, "f", 100) == (5, 9)
    assert sources.page_span(a, "f", 150) == (5, 9)
    assert sources.page_span(a, "f", 250) == (9, 12)
    assert sources.page_span(a, "f", 300) == (9, 12)
    assert sources.page_span(a, "f", 301) == (13, 13)
    assert sources.page_span(a, "f", 380) == (13, 13)
    assert sources.page_span(a, "f", 381) == (14, None)
    assert sources.page_span(a, "other", 150) == (None, None)
    assert sources.page_text(a, "f", 150, "nl") == "p. 5–9"
    assert sources.page_text(a, "f", 301, "nl") == "p. 13"
    assert sources.page_text(a, "f", 381, "nl") == "r. 381"
    assert sources.page_text(a, "f", 381, "en") == "line 381"


def test_citations_of_real_rows_name_document_authors_table_and_printed_page():
    inputs = load.load_inputs(REPO / "inputs")
    cite = lambda f, table, line, lang="nl": sources.citation(inputs.sources, inputs.source_pages, f, table, line, lang)  # noqa: E731
    # 002 line 354 is in §2.3, which the contents put on p. 17 (002:31, heading 002:345); §2.4 starts p. 23 (002:32, 002:500)
    assert cite(NIJMEGEN, "Tabel 3", 354) == "Nijmegen-rapport (Betkó e.a., 2020), Tabel 3, p. 17–23"
    assert cite(NIJMEGEN, "Tabel 3", 354, "en") == "Nijmegen report (Betkó et al., 2020), Tabel 3, p. 17–23"
    # 004: page feet ' 39 ' at line 2835 and ' 40 ' at line 2910, so line 2870 is on p. 40
    assert cite(WAGENINGEN, "Tabel X", 2870).endswith("Tabel X, p. 40")
    # 004 Tabel 2.2 (line 1429) lies before the first page foot that survives (' 26 ', line 1833): no lower bound
    # no title page: publisher and year are supplied in [brackets] in sources.csv, and the citation says so in words
    assert cite(WAGENINGEN, "Tabel 2.2", 1429) == ("Wageningen-eindverslag (Tilburg University, 2020; niet gedrukt, "
                                                   "afgeleid uit de tekst), Tabel 2.2, r. 1429")
    assert cite(WAGENINGEN, "Tabel 2.2", 1429, "en").startswith(
        "Wageningen final report (Tilburg University, 2020; not printed, inferred from the text), ")
    assert cite("unknown.txt", "Tabel 1", 7) == "unknown.txt, Tabel 1, r. 7"


def test_every_source_file_of_the_estimates_has_a_sources_row():
    assert set(EST["source_file"]) <= set(SRC["source_file"])
    assert SRC["source_file"].is_unique


@needs_seeds
def test_every_seed_is_listed_in_sources_csv():
    assert set(SRC["source_file"]) == {p.name for p in SEEDS.glob("*.txt")}


def test_surnames_and_full_references():
    assert sources.surname("Stefan van Wanrooij") == "van Wanrooij"
    assert sources.surname("J. Betkó") == "Betkó"
    row = SRC[SRC["source_file"] == NIJMEGEN].iloc[0]
    assert sources.reference(row, "nl") == (
        "Betkó, J., Spierings, N., Gesthuizen, M. & Scheepers, P. (2020). Rapportage experiment Participatiewet "
        "gemeente Nijmegen. Radboud Social Cultural Research, Afdeling Sociologie, Radboud Universiteit. "
        "(tekstbestand 002_7413e549cc2fe340.txt)")
    wag = sources.reference(SRC[SRC["source_file"] == WAGENINGEN].iloc[0], "en")
    assert wag.startswith("[Voorlopig eindverslag Vertrouwensexperiment Wageningen]. ([2020]). [Tilburg University].")


def _lines(spec: str) -> list[int]:
    out = []
    for part in spec.split(";"):
        a, _, b = part.strip().partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[^\W\d_]{4,}|\d{4}", text)]


@needs_seeds
def test_every_printed_field_of_sources_csv_is_on_the_line_it_names():
    problems = []
    for _, r in SRC.iterrows():
        text = (SEEDS / r["source_file"]).read_text(encoding="utf-8").splitlines()
        for field in schema.SOURCE_FIELDS:
            if not r[f"{field}_line"]:
                continue
            printed = " ".join(text[i - 1] for i in _lines(r[f"{field}_line"])).lower()
            missing = [w for w in _words(r[field]) if w.lower() not in printed]
            if missing:
                problems.append((r["source_file"], field, missing))
    assert problems == []


@needs_seeds
def test_every_page_anchor_is_printed_in_the_seed_and_every_page_foot_is_used():
    problems = []
    for _, r in PAGES.iterrows():
        text = (SEEDS / r["source_file"]).read_text(encoding="utf-8").splitlines()
        line = text[int(r["line"]) - 1]
        if r["kind"] == "page_number":
            ok = line.strip() == r["page"]
        else:  # the contents entry ends with the page, and names the heading's section number or first word
            toc = re.sub(r"<[^>]+>", "", text[int(r["toc_line"]) - 1])
            key = re.match(r"\s*(Deel \d+|Paragraaf \d+|\d+(\.\d+)*|\w+)", toc).group(1)
            number = re.sub(r"^Paragraaf ", "", key)
            heading = line.lstrip("#* ")
            ok = (re.search(rf"(\.{{2,}}|\t)\s*{r['page']}\s*$", toc) is not None
                  and (heading.startswith(key) or heading.startswith(f"{number}.")))
        if not ok:
            problems.append(tuple(r))
    assert problems == []
    # completeness: every page foot in the seeds (a number alone on a line after 3 blank lines) is an anchor
    feet = set()
    for f in SRC["source_file"]:
        text = (SEEDS / f).read_text(encoding="utf-8").splitlines()
        for i in range(3, len(text) - 1):
            if re.fullmatch(r"\s*\d{1,3}\s*", text[i]) and not any(t.strip() for t in text[i - 3:i]) \
                    and not text[i + 1].strip():
                feet.add((f, str(i + 1)))
    anchored = set(zip(PAGES.loc[PAGES["kind"] == "page_number", "source_file"],
                       PAGES.loc[PAGES["kind"] == "page_number", "line"]))
    assert feet == anchored


def _write(tmp_path, frame, name="sources.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("change,needle", [
    (dict(title_line=""), "has no line"),
    (dict(year="[2020]", year_line="13"), "in [brackets]"),
    (dict(year="20"), "four digits"),
    (dict(authors_line="seven"), "not a line number"),
    (dict(url="www.example.nl", url_line="3"), "web address"),
    (dict(label_nl=""), "column label_nl: value is blank"),
])
def test_sources_csv_refuses_a_field_that_is_not_traceable(tmp_path, change, needle):
    bad = SRC.copy()
    for col, val in change.items():
        bad.loc[bad["source_file"] == NIJMEGEN, col] = val
    with pytest.raises(InputError) as err:
        registers.load_sources(_write(tmp_path, bad))
    assert needle in str(err.value) and "row 3 (line 4)" in str(err.value)


def test_sources_csv_must_cover_every_source_file_of_the_estimates(tmp_path):
    inputs = load.load_inputs(REPO / "inputs")
    path = _write(tmp_path, SRC[SRC["source_file"] != WAGENINGEN])
    with pytest.raises(InputError, match=f"no row for source_file '{WAGENINGEN}', which estimates.csv row"):
        registers.load_sources(path, inputs.estimates)


def test_source_pages_refuses_pages_that_go_backwards(tmp_path):
    bad = PAGES.copy()
    bad.loc[(bad["source_file"] == WAGENINGEN) & (bad["line"] == "2910"), "page"] = "38"
    with pytest.raises(InputError, match="page 38 at line 2910"):
        registers.load_source_pages(_write(tmp_path, bad, "source_pages.csv"), SRC)


def test_report_cites_pages_and_lists_full_references(real_run):
    out, _ = real_run
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2 id=\"references\">Bronnen</h2>" in html
    assert "Betkó, J., Spierings, N., Gesthuizen, M. &amp; Scheepers, P. (2020)." in html
    text = re.sub(r"<[^>]+>", "", html)  # the citation as a reader sees it, without the markup
    studies = pd.read_csv(out / "studies.csv", **S)
    inputs = load.load_inputs(REPO / "inputs")
    for _, r in studies.iterrows():
        expected = sources.citation(inputs.sources, inputs.source_pages, r["source_file"], r["source_table"],
                                    int(r["source_line"]), "nl")
        assert expected.replace("&", "&amp;") in text
    assert "line 354" not in html


def test_references_section_in_both_languages_and_without_sources_csv():
    from types import SimpleNamespace

    from meta.present.report import references_section

    inputs = load.load_inputs(REPO / "inputs")
    nl = references_section(SimpleNamespace(inputs=inputs), "nl")
    en = references_section(SimpleNamespace(inputs=inputs), "en")
    assert "<b>Nijmegen-rapport</b>" in nl and "(tekstbestand 002_7413e549cc2fe340.txt)" in nl and "Paginanummers" in nl
    assert "<b>Nijmegen report</b>" in en and "(text file 002_7413e549cc2fe340.txt)" in en and "Page numbers" in en
    assert nl.count("<li") == en.count("<li") == len(SRC)
    bare = SimpleNamespace(inputs=SimpleNamespace(sources=pd.DataFrame()))
    assert "Geen <code translate='no'>sources.csv</code>" in references_section(bare, "nl")  # a name, not translated

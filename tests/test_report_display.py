"""What an analyst at the ministry sees on the real inputs: report, forest plots and workbook say what the numbers
allow (review of the Dutch report, REVIEW.md). Expected values are read off the source reports and pooled.csv by
hand, never computed by the code under test."""
from __future__ import annotations

import pytest

from meta.analyses import pipeline
from meta.plan import load_plan
from tests.conftest import REPO


@pytest.fixture(scope="module")
def results():
    return pipeline.analyse(REPO / "inputs", load_plan(REPO / "inputs" / "plan.toml"))


def _forest_footer(results, concept: str, lang: str = "nl") -> str:
    from meta.present import plots

    cells = [c for c in plots.figure_cells(results) if c[0] == concept]
    rows = plots.forest_rows(results, *cells[0], lang)
    return "\n".join(plots._forest_footer(rows, None, lang))


def test_forest_footer_of_werk_prints_no_classical_interval_of_two_municipalities(results):
    # forest_werk_einde_experiment printed "Intensivering, klassiek: REML + HKSJ (ad hoc) -2,0 [-97,7; 93,7]": two
    # municipalities, Hartung-Knapp on one degree of freedom; now "onbepaald (k = 2)" with the footnote saying why
    footer = _forest_footer(results, "werk")
    assert "-97,7" not in footer and "93,7" not in footer
    assert footer.count("[onbepaald (k = 2)]") == 2  # ontheffing and intensivering, once per interval
    assert "onbepaald (k = 2); onbepaald" not in footer
    assert "rust op één vrijheidsgraad" in footer


def test_forest_footnote_on_onbepaald_follows_the_printed_values_not_the_words_in_the_footer(results):
    # the footnote explaining "onbepaald (k = …)" was added when the word appeared anywhere in the footer or the
    # interval texts; it now follows which values forest_rows prints as undetermined (fewstudies_report.undetermined)
    from meta.present import plots

    rows = plots.forest_rows(results, *[c for c in plots.figure_cells(results) if c[0] == "werk"][0], "nl")
    assert rows.attrs["undetermined"] is True  # k = 2 with Hartung-Knapp: the classical interval in the footer
    assert "rust op één vrijheidsgraad" in "\n".join(plots._forest_footer(rows, None, "nl"))
    quiet = rows.copy()
    quiet.attrs = {**rows.attrs, "undetermined": False}
    words = "\n".join(plots._forest_footer(quiet, ["de bron noemt dit onbepaald"], "nl"))
    assert "rust op één vrijheidsgraad" not in words


@pytest.mark.parametrize("row, printed", [
    (dict(k=3, test="knha", impossible=""), False),
    (dict(k=3, test="knha", impossible="pi_high"), True),  # outside the feasible range: printed "onbepaald"
    (dict(k=3, test="knha", impossible="tau2_ci_high"), False),  # not printed in a forest plot
    (dict(k=2, test="z", impossible=""), False),  # Wald: no interval on one degree of freedom
    (dict(k=2, test="knha", impossible=""), False),  # classical interval on 1 df, but only in a Bayesian footer
    (dict(k=2, test="knha", impossible="", headline="bayes"), True),
    (dict(k=3, test="z", impossible="wald_ci_low", headline="bayes"), False),  # Wald = classical: not printed twice
])
def test_a_forest_cell_prints_onbepaald_exactly_where_one_of_its_printed_values_is_undetermined(row, printed):
    from meta.present import fewstudies_report as fsr
    from meta.present import plots

    if row.get("headline") == "bayes":
        row = {**row, "headline": fsr.HEADLINE_BAYES}
    assert plots._prints_undetermined(row) is printed


@pytest.mark.parametrize("headline, printed", [("classical", "[onbepaald (k = 2)]"), ("bayes", "[-13,5; 9,7]")])
def test_a_headline_interval_of_two_municipalities_is_undetermined_when_it_is_the_classical_one(headline, printed):
    # with few_studies_k = 1 (or a unit without a tau prior) a cell of two municipalities has the classical headline:
    # its interval is the Hartung-Knapp one on one degree of freedom (werk, ontheffing: [-97,7; 93,7]) and was
    # printed as numbers in the Kerntabel and the forest plot, though the same interval in the classical columns
    # reads "onbepaald (k = 2)"; a Bayesian headline interval (werk: [-13,5; 9,7]) stays a number
    from meta.present import fewstudies_report as fsr

    lo, hi = (-97.7, 93.7) if headline == "classical" else (-13.5, 9.7)
    row = dict(k=2, test="adhoc", headline=headline, impossible="", ci_low=lo, ci_high=hi, pi_low=lo, pi_high=hi)
    assert fsr.interval_text(row, "ci_low", "ci_high", 1, "nl") == printed
    assert fsr.interval_text({**row, "k": 3}, "ci_low", "ci_high", 1, "nl") == f"[{lo:.1f}; {hi:.1f}]".replace(".", ",")


def test_workbook_prints_the_classical_interval_of_two_municipalities_as_undetermined(results):
    from meta.write import workbook

    sheet = workbook.headline_sheet(results, "nl")
    two = sheet[sheet["k"] == 2]
    assert len(two) == 8 and (two["classical_ci_low"] == "onbepaald (k = 2)").all()
    assert (two["classical_ci_high"] == "onbepaald (k = 2)").all()
    assert two["wald_ci_low"].map(lambda x: isinstance(x, float)).all()  # the Wald interval stays a number
    notes = workbook.notes_sheet({"Kerntabel": sheet}, "nl")
    assert notes["meaning"].str.contains("één vrijheidsgraad").sum() == 2


def test_forest_plots_mark_every_study_whose_se_is_only_an_upper_bound_as_the_kerntabel_does(results):
    # 36 Wageningen survey rows rest on the range bound (studies.csv se_upper_bound_only); the Kerntabel marks their
    # interval "†" (outer bound). Every forest plot marks the same rows with "†" and explains it in its footer; the
    # SE-from-significance-marks rows get "§", so "†" has one meaning in report and figures
    from meta.present import plots

    s = results.studies
    assert int(s["se_upper_bound_only"].sum()) == 36
    marked, notes = 0, []
    for cell in plots.figure_cells(results):
        rows = plots.forest_rows(results, *cell, "nl")
        marked += int(rows.loc[rows["kind"] == "study", "ci"].str.endswith("†").sum())
        notes.append("\n".join(plots._forest_footer(rows, None, "nl")))
    assert marked == 36
    with_mark = [n for n in notes if "† buitengrens: de SE is alleen van boven begrensd" in n]
    assert with_mark and not any("† SE gereconstrueerd" in n for n in notes)
    assert any("§ SE gereconstrueerd uit significantietekens" in n for n in notes)


def _findings(results, lang="nl"):
    import re

    from meta.present import report

    html = str(report.findings_section(results, lang))
    return {re.sub(r"<[^>]+>", "", m.group(1)).split(":")[0]: re.sub(r"<[^>]+>", "", m.group(0))
            for m in re.finditer(r"<li><a href='#[^']*'>([^<]*)</a>.*?</li>", html)}, html


def test_findings_say_not_robust_for_every_cell_whose_conclusion_does_not_survive_every_specification(results):
    # robustness.csv: deeltijdwerk (ontheffing, intensivering) lies wholly below zero in the main analysis but not under
    # the conservative SE policy or another model column; 7 cells in all do not survive every specification, none of
    # them rests on an SE that is only an upper bound. Each of their sentences says "niet robuust" and what changes it
    rob = results.robustness
    failing = rob[~rob["survives_all"].astype(bool)]
    assert len(failing) == 7
    _, html = _findings(results)
    items = html.split("<li>")
    robust_items = [i for i in items if "niet robuust" in i]
    assert len(robust_items) == 7
    part_time = [i for i in items if i.startswith("<a href") and "geheel onder nul" in i and "eeltijd" in i]
    assert len(part_time) == 2 and all("niet robuust" in i and "conservatief" in i for i in part_time)
    assert "#sensitivity" in robust_items[0]
    _, en = _findings(results, "en")
    assert en.count("not robust") == 7


def test_gevoeligheid_gives_no_verdict_for_cells_whose_interval_is_an_outer_bound_and_does_not_count_them(results):
    # 30 single-study cells rest on Wageningen's range-bound SE and their outer interval includes zero (the Kerntabel's
    # 30 "]†"); "overeind: ja" said their 'includes zero' survives, which says nothing. By hand from robustness.csv:
    # 47 rows, 7 fail, 30 of the 40 surviving are those outer bounds -> "10 van de 17" conclusions survive
    import re

    from meta.present import report

    html = str(report.robustness_section(results, {}, "nl"))
    cells = re.findall(r"<td>(ja|nee|geen oordeel†)</td>", html)
    assert cells.count("geen oordeel†") == 30 and cells.count("nee") == 7 and cells.count("ja") == 10
    assert "<b>10 van de 17</b>" in html and "Geen oordeel (30 rijen, niet meegeteld hierboven)" in html
    assert "no verdict†" in str(report.robustness_section(results, {}, "en"))


def test_gevoeligheid_conclusion_column_claims_no_significance_on_rows_it_gives_no_verdict(results):
    # the 30 "geen oordeel†" rows still read "geen significant effect" under Conclusie: an outer bound that includes
    # zero says nothing about significance; the 17 judged rows keep their conclusion
    import re

    from meta.present import report

    for lang, outer, none, no_sig in (("nl", "niet te zeggen (buitengrens)", "geen oordeel†", "geen significant effect"),
                                      ("en", "cannot be said (outer bound)", "no verdict†", "no significant effect")):
        html = str(report.robustness_section(results, {}, lang))
        rows = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in html.split("<tr>")[2:]]
        judged = [r for r in rows if none not in r]
        assert len(rows) == 47 and len(judged) == 17
        assert all(outer in r and no_sig not in r for r in rows if none in r)
        assert not any(outer in r for r in judged)


def test_report_header_names_the_program_and_its_version_in_dutch_prose_not_a_command(results):
    from meta import __version__
    from meta.present import report

    html = report.render_report(results, {}, "nl", {})
    header = html[html.index("<h1>"):html.index("<nav>")]
    assert "meta run" not in header
    assert f"Gemaakt met het analyseprogramma meta, versie {__version__}" in header
    en = report.render_report(results, {}, "en", {})
    assert f"Made with the analysis program meta, version {__version__}" in en[:en.index("<nav>")]


def test_console_says_none_when_the_plan_removes_no_rows():
    from meta.cli import removed_text

    assert removed_text({}, "nl") == "meta: rijen uitgesloten door het plan: geen (elke rij met haar reden in excluded.csv)"
    assert removed_text({"model": 0}, "en").startswith("meta: rows excluded by the plan: none (")
    assert "door het plan: modelvoorkeur 37 (" in removed_text({"model_preference": 37, "outcomes": 0}, "nl")


def test_simulation_quote_refuses_a_results_table_the_summary_was_not_written_with(tmp_path):
    # the quote in Methoden reads the table through simulation_summary.json (sha256), like the simulation table does
    import shutil

    from meta.errors import InputError
    from meta.present import fewstudies_report
    from meta.present.report import SIMULATION_SUMMARY

    for f in SIMULATION_SUMMARY.parent.glob("simulation_*"):
        shutil.copy(f, tmp_path / f.name)
    copy = tmp_path / SIMULATION_SUMMARY.name
    assert "REML + HKSJ" in fewstudies_report.simulation_quote(copy, "nl")
    table = tmp_path / "simulation_results.csv"
    table.write_text(table.read_text(encoding="utf-8").replace("0.9", "0.8", 1), encoding="utf-8")
    with pytest.raises(InputError, match="sha256 differs"):
        fewstudies_report.simulation_quote(copy, "nl")


def test_workbook_kerntabel_shows_each_municipalitys_outcome_in_words_and_keeps_codes_last_as_technical(results):
    # meta.xlsx showed "income_gt70_wml, exit_to_work_fulltime" and "identity, identity" to the reader; the register
    # words (outcomes.csv label_nl) are: Nijmegen "Looninkomen/maand >70% van WML" (16 mnd), Wageningen
    # "Volledige/voltijdse uitstroom naar betaald werk (VT-werk)" (24 mnd); neither outcome is rescaled
    import re

    from meta.write import workbook

    sheet = workbook.headline_sheet(results, "nl")
    werk = sheet[(sheet["outcome"].str.startswith("werk (uit")) & (sheet["k"] == 2)].iloc[0]
    assert werk["definitions"] == ("Nijmegen: Looninkomen/maand >70% van WML na 16 mnd; Wageningen: "
                                   "Volledige/voltijdse uitstroom naar betaald werk (VT-werk) na 24 mnd")
    assert werk["transforms"] == "geen" and list(sheet.columns)[-1] == "codes"
    assert workbook.header("codes", "nl") == "Uitkomstcodes (technisch)"
    reader = sheet.drop(columns=["codes"])
    snake = re.compile(r"\b[a-z][a-z0-9]*_[a-z0-9_]+\b|\bidentity\b")
    assert not [v for col in reader for v in reader[col] if isinstance(v, str) and snake.search(v)]
    en = workbook.headline_sheet(results, "en")
    assert en["transforms"].eq("none").any() and "Wageningen: " in en["definitions"].iloc[0] + "".join(en["definitions"])


def test_components_table_says_which_estimates_rest_on_comparing_municipalities(results):
    # werk: Nijmegen's two arms both include vrijlating (ontheffing + vrijlating, intensivering + vrijlating), so its
    # arms alone separate no component; vrijlating -7,2 [-14,6; 0,2] leans on Nijmegen against Wageningen. The table
    # said "alle onderdelen zijn afzonderlijk te schatten"
    import re

    from meta.present import report

    html = str(report.components_section(results, {}, "nl"))
    werk = [re.sub(r"<[^>]+>", " ", row) for row in html.split("<tr>") if "werk (uit" in row][0]
    assert "vrijlating -7,2 [-14,6; 0,2]" in werk
    assert "alle onderdelen zijn afzonderlijk te schatten" not in werk
    assert "de armen van Nijmegen alleen scheiden ontheffing, intensieve begeleiding en vrijlating niet" in werk
    assert "alle onderdelen zijn te schatten uit de armen van alle gemeenten samen" in werk


def test_components_table_marks_intervals_of_wageningen_only_models_as_outer_bounds_as_the_kerntabel_does(results):
    # the 9 survey models of Wageningen alone (3 arms, every SE the range bound: studies.csv se_upper_bound_only)
    # printed e.g. "intensieve begeleiding 0,06 [-3,69; 3,81]" unmarked while the Kerntabel marks the same "†";
    # the 3 models with Nijmegen too keep plain intervals
    import re

    from meta.present import report

    for lang, note in (("nl", "† buitengrens: de SE is alleen van boven begrensd"),
                       ("en", "† outer bound: the SE is bounded from above only")):
        html = str(report.components_section(results, {}, lang))
        rows = [re.sub(r"<[^>]+>", " ", row) for row in html.split("<tr>")[2:]]
        marked = [r for r in rows if "]†" in r]
        assert len(marked) == 9 and all(r.count("]†") == 3 for r in marked)
        assert not any("Nijmegen" in r for r in marked) and sum("Nijmegen" in r for r in rows) == 4
        assert note in html
    nl = str(report.components_section(results, {}, "nl"))
    assert "intensieve begeleiding 0,06 [-3,69; 3,81]†" in nl and "vrijlating -7,2 [-14,6; 0,2];" not in nl


def test_a_component_no_municipality_separates_on_its_own_is_named_as_identified_only_across_municipalities():
    import numpy as np

    from meta.analyses.components import _across_note

    # A gives release only bundled (exemption + release, intensive + release), B has exemption and intensive alone:
    # release is estimable only from A against B (columns exemption, intensive, release)
    of_muni = np.array(["a", "a", "b", "b"], dtype=object)
    design = np.array([[1, 0, 1], [0, 1, 1], [1, 0, 0], [0, 1, 0]], dtype=float)
    note = _across_note(of_muni, design, ["exemption", "intensive", "release"])
    assert note.startswith("; release identifiable only by comparing municipalities")
    assert "municipality a alone does not separate exemption, intensive, release" in note
    assert _across_note(of_muni[2:], design[2:, :2], ["exemption", "intensive"]) == ""


def test_component_notes_name_the_municipality_and_leave_other_uses_of_the_word_alone():
    from meta.i18n import component_note_words

    note = ("as many arms as components: the fit is exact and residual heterogeneity cannot be assessed; "
            "between-municipality variance not estimable here (fixed at 0); municipality nijmegen alone does not "
            "separate exemption, release: its part …")
    nl = component_note_words(note, "nl", {"nijmegen": "Nijmegen"})
    assert "variantie tussen gemeenten hier niet te schatten" in nl and "de armen van Nijmegen alleen" in nl
    assert "between-municipality variance" in component_note_words(note, "en", {"nijmegen": "Nijmegen"})


def test_summary_only_forest_plot_explains_its_ticks_and_not_squares_it_does_not_draw():
    # past 50 studies an arm class is one strip of ticks (60 SYNTHETIC municipalities drew it); its footer said
    # "Vierkanten naar gewicht …" though the plot has no squares
    import pandas as pd

    from meta.present.plots import forest_footnote

    kinds = ["header", "strip", "pooled", "pi", "stats"]
    strip = pd.DataFrame({"kind": kinds, "ci": ["", "bereik -11,5 – 3,0", "-1,8 [-2,6; -1,0]", "[-4,6; 1,0]", ""]})
    note = " ".join(forest_footnote(strip, "nl"))
    assert "Vierkanten" not in note and note.startswith("Streepjes: de schatting van elke gemeente")
    assert "Squares" not in " ".join(forest_footnote(strip, "en"))
    studies = strip.assign(kind=["header", "study", "pooled", "pi", "stats"])
    assert " ".join(forest_footnote(studies, "nl")).startswith("Vierkanten naar gewicht")


def test_english_report_cites_source_lines_by_document_and_page_not_as_raw_seed_references(results):
    # the English report printed "(004:2054-2058)", "(002:213-215)" in prose; the Dutch one names the document
    import re

    from meta.present import report
    from meta.read.sources import cite_inline

    assert cite_inline("only full exits (004:2054-2058) and", results.inputs.sources, results.inputs.source_pages,
                       "en") == "only full exits (Wageningen final report, p. 27–39) and"
    for lang in ("en", "nl"):
        text = re.sub(r"<[^>]+>", " ", report.render_report(results, {}, lang, {}))
        assert not re.findall(r"\b\d{3}:\d+", text), lang


def test_english_pending_municipalities_name_documents_not_seed_numbers_or_the_seed_folder(results):
    # the English paragraphs said "not in shared/seeds", "001 also cites", "002 announces" (the Dutch ones name the
    # documents); each paragraph and the shared sentences now name the document and cite it by page or line
    import re

    from meta.present.report_sources import coverage_table

    html = str(coverage_table(results, "en"))
    text = re.sub(r"<[^>]+>", " ", html[html.index("Pending municipalities"):])
    assert "shared/seeds" not in text and not re.findall(r"\b00\d\b", text)
    assert "the Nijmegen report announces for early June 2020 (Nijmegen report, p. 8–10)" in text
    assert "The article on the aftermath also cites" in text and text.count("not among the source documents") == 5


#: components.component_models' statement for Nijmegen's two arms (release in both), as the Onderdelen table quotes it
RELEASE_IN_EVERY_ARM_NOTE = (
    "exemption, intensive and release are not separately identifiable: the available arms give only exemption + "
    "release and intensive + release, so only 2 independent combinations of these 3 components can be estimated."
    " release is part of every one of these arms, so the arms never show exemption or intensive without it.")


def test_component_note_says_what_the_arms_never_show_a_component_without():
    # "vrijlating zit in elk van deze armen; de armen tonen ontheffing en intensieve begeleiding dus nooit zonder."
    # ended on a bare "zonder": the English says "without it" (release)
    from meta.i18n import component_note_words

    nl = component_note_words(RELEASE_IN_EVERY_ARM_NOTE, "nl")
    assert nl.endswith("de armen tonen ontheffing en intensieve begeleiding dus nooit zonder vrijlating.")


def test_component_note_starts_each_dutch_sentence_after_a_full_stop_with_a_capital():
    # "... combinaties te schatten. vrijlating zit in elk van deze armen" (Onderdelen, deeltijdwerk)
    from meta.i18n import component_note_words

    nl = component_note_words(RELEASE_IN_EVERY_ARM_NOTE, "nl")
    assert nl.startswith("ontheffing, intensieve begeleiding en vrijlating zijn niet afzonderlijk te schatten")
    assert "combinaties te schatten. Vrijlating zit in elk van deze armen" in nl


def test_kerntabel_warning_legend_names_every_way_a_flagged_se_was_found(results):
    # 30 Kerntabel rows carry "⚠" for an SE that is the bound from the outcome's range (bovengrens uit bereik en
    # respondenten) only; the legend said "gereconstrueerd uit significantietekens of aandelen"
    from meta.analyses.tables import DERIVED_SE_METHODS
    from meta.i18n import t

    p = results.pooled
    flagged = set(";".join(p.loc[p["flag_derived_se"].astype(bool), "se_methods"]).split(";")) - {""}
    assert flagged <= set(DERIVED_SE_METHODS) and "from_range_bound" in flagged
    assert "significantietekens, aandelen of het bereik van de uitkomst" in t("legend_headline", "nl")
    assert "significance marks, shares or the outcome's range" in t("legend_headline", "en")


def test_methods_spell_out_hksj_where_the_report_first_uses_the_abbreviation(results):
    # "REML + HKSJ" (Methoden, simulation table, forest footers) was never spelled out
    import re

    from meta.present import report

    for lang in ("nl", "en"):
        text = re.sub(r"<[^>]+>", " ", report.render_report(results, {}, lang, {}))
        first = text.index("HKSJ")
        assert text[first - len("Hartung-Knapp-Sidik-Jonkman ("):first] == "Hartung-Knapp-Sidik-Jonkman (", lang


def test_leave_one_out_reads_gemeente_weggelaten_then_the_name():
    # Gevoeligheid "Veranderd door" and the specification curves read "zonder één gemeente: zonder Wageningen", then
    # "zonder één gemeente: Wageningen", which reads as "only Wageningen" (second review of the report, item 12):
    # it means Wageningen left out
    from meta.i18n import changed_by_words

    names = {"wageningen": "Wageningen"}
    assert changed_by_words("leave one out: without wageningen", "nl", names) == "gemeente weggelaten: Wageningen"
    assert changed_by_words("leave one out: without wageningen", "en", names).endswith(": without Wageningen")


def test_read_first_names_the_pooled_cells_until_there_are_too_many_then_counts_them(results, monkeypatch):
    """At 60 SYNTHETIC municipalities the box named all 114 pooled cells, a wall of text above the findings; past
    REPORT_MAX_LISTED_CELLS it counts them and points to the headline table. The real inputs pool 8 cells."""
    from meta.present import report

    named = report.pooled_count(results, "nl")
    assert "8 van de 47 cellen" in named and "welbevinden" in named and "kerntabel noemt ze" not in named
    monkeypatch.setattr(report, "REPORT_MAX_LISTED_CELLS", 7)
    counted = report.pooled_count(results, "nl")
    assert "8 van de 47 cellen" in counted and "de kerntabel noemt ze" in counted and "welbevinden" not in counted
    assert "the headline table lists them" in report.pooled_count(results, "en")


def test_the_workbook_and_the_report_in_one_block_work_out_the_pooled_order_and_the_marks_once_and_write_the_same(
        results, monkeypatch, tmp_path):
    # Writing.finish renders both inside report_cells.sharing(): each section and sheet that reads the pooled rows in
    # cell order or the marks' p ranges takes them from the first that worked them out; the bytes must not change
    from meta.present import report, report_cells
    from meta.write import workbook

    calls = {"order": 0, "ranges": 0}
    order, ranges = report_cells.tables_cell_order, report_cells.tables_mark_p_ranges

    def counted_order(frame, plan):
        calls["order"] += frame is results.pooled
        return order(frame, plan)

    def counted_ranges(*args):
        calls["ranges"] += 1
        return ranges(*args)

    monkeypatch.setattr(report_cells, "tables_cell_order", counted_order)
    monkeypatch.setattr(report_cells, "tables_mark_p_ranges", counted_ranges)
    workbook.write_workbook(results, tmp_path / "alone.xlsx", "nl")
    alone = report.render_report(results, {}, "nl", {})
    assert calls == {"order": 2, "ranges": 2}  # once in each: the workbook's sheets share, the sections share
    with report_cells.sharing():
        workbook.write_workbook(results, tmp_path / "shared.xlsx", "nl")
        shared = report.render_report(results, {}, "nl", {})
    assert calls == {"order": 3, "ranges": 3}
    assert shared == alone
    assert (tmp_path / "shared.xlsx").read_bytes() == (tmp_path / "alone.xlsx").read_bytes()


def test_read_first_lists_the_pooled_cells_by_outcome_and_period_in_sorted_order_and_arm_classes_in_row_order(results):
    # pooled_count groups the pooled rows itself (no groupby per section): outcome and period sorted, each cell's arm
    # classes in row order, and 'what each arm class holds' in order of first appearance; rows shuffled here
    import re
    from dataclasses import replace

    from meta.i18n import arm_class_label, cell_labels
    from meta.present import report
    from meta.present.report_cells import period_text

    p = results.pooled.iloc[::-1].reset_index(drop=True)  # another row order than the analysis gives
    shuffled = replace(results, pooled=p)
    text = report.pooled_count(shuffled, "nl")
    multi = p[p["k"] >= 2]
    label = cell_labels(results.inputs, "nl")
    # read off the frame with pandas: the cells in groupby's sorted order, the classes in the frame's row order
    want = "; ".join(f"{label.get(o, o)} ({period_text(results, h, 'nl')}: "
                     f"{', '.join(arm_class_label(a, 'nl') for a in g['arm_class'])})"
                     for (o, h), g in multi.groupby(["outcome_key", "period"], sort=True))
    assert want in text and multi.groupby(["outcome_key", "period"]).ngroups == 4  # 8 cells: 4 outcomes x 2 classes
    first = list(dict.fromkeys(multi["arm_class"]))
    said = re.findall(r"<b>([^<]*)</b> = ", text)  # 'ontheffing = Nijmegen: …', one per arm class
    assert said == [arm_class_label(a, "nl") for a in first] and len(first) == 2


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_with_the_classical_headline_an_impossible_bound_is_drawn_at_the_axis_edge_and_no_tick_passes_100_pp(lang):
    # a plan with few_studies_k = 1 keeps the classical headline for every pooled cell: werk's exemption cell
    # (Nijmegen -10.0, Wageningen 7.6, two municipalities) then has a Hartung-Knapp interval past ±100 pp, printed
    # "onbepaald (k = 2)". Its forest plot drew that diamond and the prediction bar out to about ±190 pp on an axis
    # with ticks at ±200 pp, values a difference of shares cannot take, and squeezed the studies into its middle.
    import dataclasses

    from matplotlib.patches import Polygon

    from meta.present import plots

    plan = dataclasses.replace(load_plan(REPO / "inputs" / "plan.toml"), few_studies_k=1)
    res = pipeline.analyse(REPO / "inputs", plan, sensitivity=False)
    cell = [c for c in plots.figure_cells(res) if c[0] == "werk"][0]
    p = res.pooled[(res.pooled["outcome_key"] == "werk") & (res.pooled["arm_class"] == "exemption")].iloc[0]
    assert p["headline"] == "classical" and p["ci_low"] < -100 < 100 < p["ci_high"]  # the case in point
    rows = plots.forest_rows(res, *cell, lang)
    fig = plots.draw_forest_rows(rows, cell[2], "t", 95.0, lang)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    shown = [x for x in ax.get_xticks() if lo <= x <= hi]
    assert shown and -100 <= min(shown) and max(shown) <= 100
    diamonds = [patch.get_xy()[:, 0] for patch in ax.patches if isinstance(patch, Polygon)]
    assert len(diamonds) == 2  # exemption and intensive guidance
    ex = next(x for x in diamonds if x[1] == pytest.approx(p["estimate"]))
    assert (min(ex), max(ex)) == (lo, hi)  # both bounds impossible: the diamond runs from edge to edge
    arrows = sorted((line.get_marker(), line.get_xdata()[0]) for line in ax.lines if line.get_marker() in ("<", ">"))
    # an arrowhead at each edge for exemption's diamond and both prediction bars (each beyond ±100 pp both ways)
    assert arrows == [("<", lo)] * 3 + [(">", hi)] * 3
    note = "◀ of ▶ aan de rand van de as" if lang == "nl" else "◀ or ▶ at the edge of the axis"
    assert note in "\n".join(plots._forest_footer(rows, None, lang))
    default = pipeline.analyse(REPO / "inputs", load_plan(REPO / "inputs" / "plan.toml"), sensitivity=False)
    assert note not in "\n".join(plots._forest_footer(plots.forest_rows(default, *cell, lang), None, lang))


def test_methods_put_the_two_tests_the_plan_does_not_use_in_the_sensitivity_analysis_as_it_does(results):
    # Methods said the ad hoc variant "zit in de gevoeligheidsanalyse" while the plan's main test is that variant
    # (inputs/plan.toml: test = "adhoc"); the sensitivity analysis holds Wald and plain Hartung-Knapp instead
    from meta.present import report

    assert results.plan.test == "adhoc"
    tests = set(results.sensitivity.loc[results.sensitivity["spec_group"] == "test", "spec"])
    assert tests == {"z", "knha"}
    nl, en = (" ".join(report.render_report(results, {}, lang, {}).split()) for lang in ("nl", "en"))
    assert "de andere twee zitten in de gevoeligheidsanalyse" in nl and "zit in de gevoeligheidsanalyse" not in nl
    assert "the other two are part of the sensitivity analysis" in en


def test_a_study_interval_hidden_by_its_weight_square_is_drawn_as_a_white_line_from_bound_to_bound(results):
    # welbevinden, 1 year: Nijmegen carries 99% (exemption) and >99% (intensive guidance) of the weight, so its
    # square was wider than its interval and no whisker showed: the significant -0,49 [-0,92; -0,06] looked like an
    # estimate whose interval crosses zero (review of the report, item 1). Expected: the bounds printed beside them
    # in the plot, -0,49 [-0,92; -0,06] and -0,04 [-0,30; 0,21].
    from matplotlib.colors import to_rgba

    from meta.present import plots

    def drawn(concept):
        cell = [c for c in plots.figure_cells(results) if c[0] == concept][0]
        fig = plots.draw_forest_rows(plots.forest_rows(results, *cell, "nl"), cell[2], "t", 95.0, "nl")
        white = [list(line.get_xdata()) for line in fig.axes[0].lines if to_rgba(line.get_color()) == (1, 1, 1, 1)]
        return sorted(white), "\n".join(text.get_text() for text in fig.texts)

    white, texts = drawn("welbevinden")
    assert len(white) == 2
    for (lo, hi), (want_lo, want_hi) in zip(white, [(-0.92, -0.06), (-0.30, 0.21)]):
        # inside the printed interval (to its rounding) and covering it but for the square's edge (< 1.3 pt)
        assert want_lo - 0.005 <= lo < hi <= want_hi + 0.005 and hi - lo >= 0.95 * (want_hi - want_lo)
    assert "Witte lijn in een vierkant" in texts
    white, texts = drawn("werk")  # every whisker shows: nothing drawn over a square, no note
    assert white == [] and "Witte lijn" not in texts


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_every_se_tag_in_the_side_by_side_table_is_explained_in_its_caption(results, lang):
    # "(bereikgrens)" / "(range bound)" ended 36 cells of "Naast elkaar" while the caption explained only (tekens)
    # and (aandelen): an outer bound read as a real interval (review of the report, item 6)
    import re

    from meta.analyses import tables
    from meta.i18n import t

    table = tables.side_by_side(results.studies, results.inputs.municipalities, 95.0, lang)
    cells = [v for c in table.columns if c not in tables.CELL_COLUMNS for v in table[c] if isinstance(v, str)]
    tags = {m.group(1) for v in cells for m in [re.search(r"\(([^()]+)\)$", v)] if m}
    assert {"bereikgrens" if lang == "nl" else "range bound", "tekens" if lang == "nl" else "marks"} <= tags
    caption = t("side_intro", lang, level="95")
    assert all(f"({tag})" in caption for tag in tags), tags


def test_with_few_studies_k_1_methods_say_the_classical_estimate_is_the_headline_and_print_no_k_below_2():
    # a plan with few_studies_k = 1 got "Bij twee tot 1 gemeenten", "cellen met 2 tot en met 1 gemeenten" and
    # "Boven 1 gemeenten", and a Methods box saying the Bayesian model is the headline, beside a Kerntabel whose every
    # pooled row is REML + HKSJ (review of the report, item 3)
    import dataclasses

    from meta.present import report

    plan = dataclasses.replace(load_plan(REPO / "inputs" / "plan.toml"), few_studies_k=1)
    res = pipeline.analyse(REPO / "inputs", plan)
    assert set(res.pooled.loc[res.pooled["k"] >= 2, "headline"]) == {"classical"}
    for lang, wrong, right in (("nl", ["tot 1 gemeenten", "tot en met 1 gemeenten", "Boven 1 gemeenten",
                                       "het Bayesiaanse model de kern"],
                                "Weinig gemeenten: de klassieke schatting als kern."),
                               ("en", ["to 1 municipalities", "Above 1 municipalities",
                                       "the Bayesian model is the headline"],
                                "Few municipalities: the classical estimate as headline.")):
        html = " ".join(report.render_report(res, {}, lang, {}).split())
        assert right in html
        assert not [w for w in wrong if w in html], lang


def test_the_kerntabel_explains_onbepaald_only_when_it_prints_a_value_so():
    # under the default plan the Kerntabel prints the Bayesian interval, never a classical one, and "onbepaald" only
    # for tau² and I² (their own footnote); yet the footnote on the classical interval of two municipalities stood
    # under it, because pooled.csv's classical columns held impossible values (review of the report, item 11). With
    # few_studies_k = 1 the Kerntabel prints the classical intervals "onbepaald (k = 2)" and keeps the footnote.
    import dataclasses

    from meta.i18n import t
    from meta.present import report

    plan = load_plan(REPO / "inputs" / "plan.toml")
    for k, shown in ((plan.few_studies_k, False), (1, True)):
        res = pipeline.analyse(REPO / "inputs", dataclasses.replace(plan, few_studies_k=k), sensitivity=False)
        for lang in ("nl", "en"):
            table = report.headline_table(res, lang)
            assert (t("footnote", lang)[:40] in table) is shown, (k, lang)


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_the_decision_table_names_the_kerntabel_outcomes_it_leaves_out_and_why(results, lang):
    # zoekintensiteit (Nijmegen, scale not given in its report) has no τ prior and no δ in the plan, so no decision
    # probabilities: its two Kerntabel rows were missing from 'Beslissingskansen' without a word (review, item 12)
    from meta.i18n import concept_labels, outcome_labels
    from meta.present import fewstudies_report as fsr

    missing = results.pooled[results.pooled["p_gt_0"].isna()]
    assert set(missing["outcome_key"]) == {"zoekintensiteit"} and set(missing["unit_h"]) == {"scale_unknown"}
    assert "scale_unknown" not in {u for u, *_ in results.plan.bayes_units}
    section = " ".join(fsr.decision_section(results, lang).split())
    name = {**outcome_labels(results.inputs.outcomes, lang),  # as the Kerntabel names it
            **concept_labels(results.inputs.concepts, lang)}["zoekintensiteit"]
    words = "Niet in deze tabel:" if lang == "nl" else "Not in this table:"
    assert f"{words} {name}." in section


def test_the_component_figure_marks_the_models_of_outer_bounds_as_the_report_table_does(results):
    # every survey SE of Wageningen is only an upper bound (from the outcome's range and the respondents), so a
    # component model of Wageningen alone has outer-bound intervals: the report's table marks it †, the figure drew
    # it as ordinary squares and whiskers without a note (review of the report, item 7). Nijmegen prints its SEs.
    from matplotlib.colors import to_rgba

    from meta.present import component_figure, plots

    job = [j for j in plots.sensitivity_jobs(results, "nl") if j.kind == "components"][0]
    panels = component_figure.component_rows(**{k: v for k, v in job.payload.items() if k != "title"})
    headers = [r for _, rows in panels for r in rows if r["kind"] == "header"]
    alone = [h for h in headers if h["label"].replace("\n", " ").rstrip(" †").endswith("(Wageningen)")]
    assert len(alone) >= 8 and all(h["label"].endswith("†") for h in alone)
    assert not any(h["label"].endswith("†") for h in headers if "Nijmegen" in h["label"])
    fig = component_figure.draw_components(**job.payload)
    faces = [to_rgba(c) for ax in fig.axes for coll in ax.collections for c in coll.get_facecolors()]
    components_alone = sum(1 for _, rows in panels for r in rows if r["kind"] == "component" and r["upper"])
    assert faces.count((1.0, 1.0, 1.0, 1.0)) == components_alone == 3 * len(alone)  # open squares
    assert any("† (open vierkant) buitengrens" in text.get_text() for text in fig.texts)


def test_the_english_report_words_the_row_accounting_and_the_simulation_table_without_codes_or_dutch(results):
    # en listed "another row represents wageningen exemption in this cell" (codes), "no legend for mark ''" (an empty
    # mark) and the simulation table's column as "Methode" (review of the report, item 9)
    import re

    from meta.present import report

    html = report.render_report(results, {}, "en", {})
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "another row represents this arm in this cell" in text and "no legend for the significance mark" in text
    assert "<th>Method</th>" in html  # the simulation table is there, its column in English
    for code in ("wageningen exemption", "nijmegen exemption", "no legend for mark", "Methode"):
        assert code not in text, code


def test_the_forest_plots_come_in_the_plans_order_of_outcomes_with_werk_first(results):
    # they followed the codes' alphabet: werk, the main outcome, came 14th of 17 (review of the report, item 10).
    # Expected: inputs/plan.toml's outcomes, those with a figure, as written there; periods in its order
    from meta.present import plots

    cells = plots.figure_cells(results)
    order = list(dict.fromkeys(o for o, _, _ in cells))
    assert order == ["werk", "deeltijdwerk", "uren_gt8", "vast_contract", "gezondheid", "mentale_gezondheid",
                     "welbevinden", "zelfeffectiviteit_werk", "vertrouwen_instituties", "vertrouwen_sociaal",
                     "zoekintensiteit"]
    assert [p for o, p, _ in cells if o == "gezondheid"] == ["meting_1jaar", "meting_2jaar"]
    assert len(cells) == len(set(cells)) == 17


def test_with_few_studies_k_1_every_pooled_finding_whose_interval_is_printed_onbepaald_says_it_cannot_be_determined():
    # with the classical headline every pooled cell of two municipalities prints "[onbepaald (k = 2)]", yet the
    # findings said "het interval is niet te bepalen" for three and "het interval omvat nul" for five (those whose
    # Hartung-Knapp bounds happen to lie within ±100 pp or ±10 points): the reader could not see why (review, item 5)
    import dataclasses

    from meta.i18n import t
    from meta.present import report

    plan = dataclasses.replace(load_plan(REPO / "inputs" / "plan.toml"), few_studies_k=1)
    res = pipeline.analyse(REPO / "inputs", plan)
    pooled = int((res.pooled["k"] == 2).sum())
    assert pooled == 8
    for lang in ("nl", "en"):
        html = " ".join(report.findings_section(res, lang).split())
        assert html.count(t("direction_undetermined", lang)) == pooled, lang


def test_a_pool_that_is_almost_one_municipality_says_why_its_bayesian_interval_is_wider_than_that_municipalitys(results):
    # "Nijmegen draagt 99% van het gewicht (klassiek model), dus deze pool is vrijwel alleen de schatting van Nijmegen"
    # stood beside -0,47 [-1,48; 0,61], which includes zero while Nijmegen's own -0,49 [-0,92; -0,06] does not
    # (review of the report, item 14): the four cells where Nijmegen carries ≥ 99% (welbevinden and vertrouwen in
    # instanties after 1 year, both arm classes) now say why; under a classical headline nothing is added
    import dataclasses

    from meta.present import report

    def sentences(res):
        return " ".join(report.findings_section(res, "nl").split()).count("het Bayesiaanse interval is toch breder "
                                                                           "dan dat van Nijmegen alleen")

    assert sentences(results) == 4
    plan = dataclasses.replace(results.plan, few_studies_k=1)
    assert sentences(pipeline.analyse(REPO / "inputs", plan)) == 0


def test_a_specification_curves_legend_lists_only_the_verdicts_it_draws(results):
    # every curve's legend listed "positief" (green), which only vertrouwen in instanties draws, and did not name
    # the large black-edged marker of the main analysis (review, item 13)
    from meta.i18n import t, word
    from meta.present import plots, spec_curve

    positive = word("verdict", "positive", "nl")
    legends = {}
    for job in [j for j in plots.sensitivity_jobs(results, "nl") if j.kind == "spec_curve"]:
        fig = spec_curve.draw_spec_curve(**job.payload)
        legends[job.payload["outcome_key"]] = [x.get_text() for x in fig.legends[0].get_texts()]
    sens = results.sensitivity
    coloured = sens[~spec_curve.not_counted(sens) & ~spec_curve.upper_bound(sens)]
    with_positive = set(coloured.loc[coloured["verdict"] == "positive", "outcome_key"])
    assert with_positive == {"vertrouwen_instituties"}
    assert {o for o, labels in legends.items() if positive in labels} == with_positive
    assert word("verdict", "no significant effect", "nl") in legends["werk"]
    # the plan's own specification, the large black-edged marker, is named in every curve's legend
    assert all(t("fig_spec_main", "nl") in labels for labels in legends.values()) and len(legends) == 4


def test_the_specification_curves_and_the_component_models_come_in_the_plans_order_too(results):
    # after the forest plots (8eb45ee), the specification curves and the Onderdelen table still followed the codes'
    # alphabet (review of the report, item 10). Expected: inputs/plan.toml's order of the outcomes they show
    import re

    from meta.present import plots, report

    curves = [j.payload["outcome_key"] for j in plots.sensitivity_jobs(results, "nl") if j.kind == "spec_curve"]
    assert curves == ["werk", "gezondheid", "welbevinden", "vertrouwen_instituties"]
    html = report.components_section(results, {}, "nl")
    firsts = list(dict.fromkeys(re.findall(r"<tr><td>([^<]*)</td>", html)))
    assert firsts[:4] == ["werk (uit de bijstand door werk)", "deeltijdwerk (&gt; 12 uur per week)",
                          "werk &gt; 8 uur per week", "vast contract"] and firsts[-1] == "zoekintensiteit"



def test_how_each_pool_was_made_lists_the_pools_in_the_plans_order_as_the_forest_plots_do(results):
    # "Hoe elke pool is gemaakt" still followed the codes' alphabet (werk 16th of 17) after the forest plots and the
    # specification curves took the plan's order (review of the report). Expected: the forest plots' order of the
    # same cells (plots.figure_cells, pinned to inputs/plan.toml by the forest-plot test above)
    import re

    from meta.present import plots, report

    listed = re.findall(r"<li><b>([^<]*)</b>, ", report.pools_section(results, "nl"))
    labels = report.concept_labels(results.inputs.concepts, "nl")
    expected = [str(report.esc(labels.get(o, o))) for o, _, _ in plots.figure_cells(results)]
    assert listed == expected
    assert listed[0] == "werk (uit de bijstand door werk)" and len(listed) == 17


def test_the_robustness_table_counts_no_repeated_specification_and_says_how_many_it_left_out(results):
    # the Specificaties column counted the Bayesian model with the plan's prior beside the Bayesian headline (the
    # same fit) and choices that change no study of a cell (review of the report, item 13): werk, ontheffing, had 26
    # specifications of which two repeat others. Expected: robustness.csv's n_specs without them, each row saying
    # how many repeats it left out, and the note explaining them, in both languages
    import re

    from meta.analyses import sensitivity
    from meta.i18n import t
    from meta.present import report

    sens, rob = results.sensitivity, results.robustness
    werk = rob[(rob["outcome_key"] == "werk") & (rob["arm_class"] == "exemption")].iloc[0]
    part = sens[(sens["outcome_key"] == "werk") & (sens["arm_class"] == "exemption")]
    counted = part[part["not_counted"].fillna("") == ""]
    assert int(werk["n_specs"]) == len(counted) == len(part) - 2 == 24
    assert werk["repeats"] == "Bayesian: half-normal τ prior, scale 5;survey contrast: wave"
    assert int(sensitivity.repeats(part).sum()) == 2
    for lang in ("nl", "en"):
        html = report.robustness_section(results, {}, lang)
        assert t("robustness_repeats", lang, n=2) in html and t("robustness_repeats_note", lang) in html
        cells = re.findall(r"<td class='num'>(\d+)</td>", html)
        assert "26" not in cells and "24" in cells, lang


def test_a_specification_curve_draws_no_specification_that_repeats_another(results):
    # a repeat is the same point as the row it repeats: the curve would draw it twice
    from meta.analyses import sensitivity
    from meta.present import plots

    jobs = [j for j in plots.sensitivity_jobs(results, "nl") if j.kind == "spec_curve"]
    drawn = sum(len(j.payload["sens"]) for j in jobs)
    assert all(not sensitivity.repeats(j.payload["sens"]).any() for j in jobs)
    werk = next(j for j in jobs if j.payload["outcome_key"] == "werk").payload["sens"]
    assert len(werk) == 2 * 24  # two panels of 26 specifications (the main one with them), two repeats left out of each
    assert drawn > 0


def test_the_dutch_report_and_forest_plots_name_the_prediction_interval_with_one_word(results):
    # the Dutch texts said "predictie-interval" (Methods, the forest plots' notes, the Kerntabel's column) and
    # "voorspellingsinterval" (the decision table, the findings) for the same interval (review of the report)
    import re

    from meta.i18n import t
    from meta.present import report

    html = report.render_report(results, {}, "nl", {})
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split()).lower()
    notes = _forest_footer(results, "werk").lower()
    assert "predictie" not in text and "predictie" not in notes
    assert "voorspellingsinterval" in text and "voorspellingsinterval" in notes
    assert t("col_pi", "nl") == t("fig_pi", "nl") == "Voorspellingsinterval"


def test_a_list_of_names_in_a_sentence_ends_with_en_in_dutch_and_and_in_english(results):
    # "openstaand: Groningen, Tilburg, Utrecht, Deventer" under every forest plot, and the report's lists of
    # municipalities and outcomes, read as an unfinished sentence in Dutch (review of the report)
    from meta.i18n import word_list
    from meta.present import plots, report

    assert word_list(["a"], "nl") == "a" and word_list([], "en") == ""
    assert word_list(["a", "b", "c"], "nl") == "a, b en c" and word_list(["a", "b", "c"], "en") == "a, b and c"
    for lang, pending in (("nl", "openstaand: Groningen, Tilburg, Utrecht en Deventer"),
                          ("en", "pending: Groningen, Tilburg, Utrecht and Deventer")):
        rows = plots.forest_rows(results, *plots.figure_cells(results)[0], lang)
        pending_rows = rows.loc[rows["kind"] == "pending", "label"]  # made unique with zero-width spaces
        labels = [" ".join(label.replace("\u200b", "").split()) for label in pending_rows]
        assert labels and set(labels) == {pending}, (lang, labels)
    html = report.render_report(results, {}, "nl", {})
    assert "Groningen, Tilburg, Utrecht en Deventer" in html and "Utrecht, Deventer" not in html


def test_the_interval_column_of_a_forest_plot_with_a_bayesian_pooled_row_is_headed_bi_gi(results):
    # werk's forest plot headed its column "Effect [95%-BI]" above the Bayesian row's credible interval (review of
    # the report); a plot with only single studies prints confidence intervals alone and keeps "BI"
    from meta.present import plots

    cells = {c[0]: c for c in plots.figure_cells(results)}
    heads = {}
    for outcome in ("werk", "deeltijdwerk"):
        for lang in ("nl", "en"):
            rows = plots.forest_rows(results, *cells[outcome], lang)
            heads[outcome, lang] = plots._ForestGeometry(rows, [], results.plan.level, lang).effect_head
    assert heads == {("werk", "nl"): "Effect [95%-BI/GI]", ("werk", "en"): "Effect [95% CI/CrI]",
                     ("deeltijdwerk", "nl"): "Effect [95%-BI]", ("deeltijdwerk", "en"): "Effect [95% CI]"}


def test_every_specification_curves_legend_lies_inside_the_figure_in_both_languages(results):
    # the Dutch 'ervaren gezondheid' curve drew its four legend entries in one row 8.3 inches wide on an 8-inch
    # figure: its first entry ("geen significant effect") was cut off at the left edge (second review of the report);
    # the English one lost its first marker the same way
    from meta.present import plots
    from meta.present.spec_curve import draw_spec_curve

    for lang in ("nl", "en"):
        for job in (j for j in plots.sensitivity_jobs(results, lang) if j.kind == "spec_curve"):
            fig = draw_spec_curve(**job.payload)
            fig.canvas.draw()
            box, page = fig.legends[0].get_window_extent(), fig.bbox
            assert box.x0 >= page.x0 and box.x1 <= page.x1 + 0.5, (lang, job.name, box.x0, box.x1, page.x1)


def test_the_decision_tables_note_on_one_outcome_left_out_speaks_of_it_in_the_singular(results):
    # "Niet in deze tabel: zoekintensiteit. Het plan geeft voor hun eenheid ...": one outcome, a plural pronoun
    # (second review of the report, item 15); and the table's period column is headed as the Kerntabel's is
    from meta.i18n import t
    from meta.present import fewstudies_report as fsr

    html = fsr.decision_section(results, "nl")
    assert "Niet in deze tabel: zoekintensiteit. Het plan geeft voor de eenheid daarvan geen prior" in html
    assert "hun eenheid" not in html and "hun schattingen" not in html
    assert t("decision_heads", "nl")[1] == t("col_horizon", "nl") == "Periode"
    assert t("decision_heads", "en")[1] == t("col_horizon", "en") == "Period"


def test_the_pending_municipalities_note_gives_nijmegens_claim_as_nijmegens_not_as_a_fact(results):
    # "Alle experimentgemeenten rapporteren een looninkomen boven 70% van het WML en meer dan 12 uur werk per week"
    # stood in the Dekking section as a fact, beside Wageningen's own rows that print neither (second review of the
    # report, item 6): the Nijmegen report says so (002:299), Wageningen's final report gives full exits to work
    from meta.present import report

    for lang, said, fact in (("nl", "Volgens het Nijmeegse rapport rapporteren alle experimentgemeenten",
                              "Alle experimentgemeenten rapporteren"),
                             ("en", "The Nijmegen report says all experiment municipalities report",
                              "All experiment municipalities report")):
        html = report.render_report(results, {}, lang, {})
        assert said in html and fact not in html, lang


def test_a_finding_on_an_outcome_of_unknown_scale_does_not_call_its_points_scale_points(results):
    # zoekintensiteit: "0,12 schaalpunten" in the findings, while the forest plot says "schaal niet vermeld in het
    # rapport" and the decision table leaves it out for that reason (second review of the report, item 9)
    import re

    from meta.present import report

    for lang, unit in (("nl", "0,12 punten (schaal onbekend)"), ("en", "0.12 points (scale not stated)")):
        text = " ".join(re.sub(r"<[^>]+>", " ", report.findings_section(results, lang)).split())
        assert unit in text, lang
        assert "0,12 schaalpunten (95%-BI [-0,01" not in text and "0.12 scale points (95% CI [-0.01" not in text


def test_a_pooled_finding_with_an_se_that_is_only_an_upper_bound_says_the_pool_rests_on_that_bound(results):
    # six of the eight pools of two hold a Wageningen study whose SE is only an upper bound (from the scale's range);
    # their findings said only "de SE van minstens één gemeente is gereconstrueerd", so "Nijmegen draagt 99% van het
    # gewicht" read as a fact (second review of the report, item 1). Expected: those six say that the bounded study's
    # weight is a lower bound and the pool depends on it; the two werk pools (no range bound) do not
    import html

    from meta.i18n import t
    from meta.present import report

    pooled = results.pooled[results.pooled["k"] >= 2]
    bound = sum("from_range_bound" in str(m).split(";") for m in pooled["se_methods"])
    assert (bound, len(pooled)) == (6, 8)
    for lang in ("nl", "en"):
        text = html.unescape(str(report.findings_section(results, lang)))
        assert text.count(t("finding_derived_se_bound", lang)) == bound, lang  # the six, not the two werk pools
        assert text.count(t("finding_derived_se", lang)) == len(pooled) - bound, lang


def test_methods_say_rows_of_one_regression_share_a_spread_not_one_se_as_the_data_show(results):
    # Methods said "rijen uit één regressie delen een gemeenschappelijke SE", yet Nijmegen's two welbevinden arms
    # (one regression, Tabel 8) have SE 0,22 and 0,13 (second review of the report, item 3): the rows share a spread
    # σ that narrows their brackets (se.common_se), and the policy then picks each row's value within its bracket
    import re

    from meta.present import report

    s = results.studies
    welbevinden = s[(s["municipality"] == "nijmegen") & (s["outcome_key"] == "welbevinden")
                    & (s["period"] == "meting_1jaar")]
    assert len(welbevinden) == 2 and welbevinden["sei"].nunique() == 2  # the data the old sentence contradicted
    for lang, old, new in (("nl", "delen een gemeenschappelijke SE",
                            "twee armen uit één regressie kunnen een andere SE"),
                           ("en", "share a common SE", "two arms of one regression can get different SEs")):
        text = " ".join(re.sub(r"<[^>]+>", " ", report.render_report(results, {}, lang, {})).split())
        assert old not in text and new in text, lang

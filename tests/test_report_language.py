"""The Dutch report, figures and workbook are Dutch all the way down; the English ones stay English.

The scan (tests/language_scan.py) looks at what a reader sees: visible HTML text, workbook cells and the
texts drawn in the figures, for English words, code names (snake_case) and decimal points (Dutch), or
Dutch words and decimal commas (English).
"""
import re

import pytest

from tests.language_scan import code_leaks, problems, visible_text


@pytest.fixture(scope="module")
def results():
    from meta.api import run

    return run(figures=False)  # the repository's plan and inputs, as `meta run` uses them


def _workbook_text(path) -> str:
    from openpyxl import load_workbook

    from meta.write.workbook import COLUMNS, VERBATIM

    verbatim = {h for key in VERBATIM for h in COLUMNS[key][:2]}
    wb = load_workbook(path)
    parts = list(wb.sheetnames)
    for ws in wb:
        heads = [c.value for c in ws[1]]
        parts += [str(h) for h in heads]
        for row in ws.iter_rows(min_row=2, values_only=True):
            parts += [str(v) for h, v in zip(heads, row) if isinstance(v, str) and h not in verbatim]
    return "\n".join(parts)


def _figure_text(fig) -> str:
    from matplotlib.text import Text

    fig.canvas.draw()  # tick labels exist only once drawn
    return "\n".join(t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text())


def test_the_scanner_finds_english_codes_and_decimal_points_but_not_quotations():
    bad = ("<p>SE uit from_significance_marks, 7.6 pp, the estimate <code translate='no'>7.6% exit_to_work</code>"
           "</p>")
    found = problems(visible_text(bad), "nl")
    assert any("from_significance_marks" in p for p in found)
    assert any("'7.6'" in p for p in found) and any("'the'" in p for p in found)
    assert not any("exit_to_work" in p for p in found)  # quoted verbatim
    assert problems(visible_text("<p>-1.234,5 [−3,5; 18,7] gepoold</p>"), "nl") == []
    assert problems(visible_text("<p>7,6 pp van de gemeente</p>"), "en")


def test_dutch_report_workbook_and_console_have_no_english_words_codes_or_decimal_points(real_run):
    out, res = real_run
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<html lang="nl">' in html
    console = re.sub(r"\S*/\S*", " ", res.stdout)  # paths are names
    assert "gepoold" in console
    found = (problems(visible_text(html), "nl") + problems(_workbook_text(out / "meta.xlsx"), "nl")
             + problems(console, "nl"))
    assert found == [], "\n".join(found[:30])
    leaks = code_leaks(html)  # also inside verbatim elements: seed files with lines, seed line refs, test paths
    assert leaks == [], "\n".join(leaks[:30])


def test_the_code_leak_scan_finds_seed_lines_test_paths_and_column_patterns():
    bad = ("<p><code translate='no'>002_7413e549cc2fe340.txt</code>, r. 356; zie 004:2054-2058; in "
           "<code translate='no'>tests/test_bayes_pool_cli.py</code>; kolommen classical_*</p>")
    assert [x.split(" '")[0] for x in code_leaks(bad)] == [
        "seed file with a line", "seed line reference", "test-suite path", "column-name pattern"]
    # a reference may name its text file; 'Tabel 3.5', 'p. 27–39' and '12:448–474' (a journal) are not leaks
    assert code_leaks("<p>(tekstbestand 002_7413e549cc2fe340.txt) Tabel 3.5, p. 27–39; 12:448–474</p>") == []


def test_english_report_and_workbook_stay_english(results, tmp_path):
    from meta.present.report import render_report
    from meta.write.workbook import write_workbook

    html = render_report(results, {}, "en", {})
    write_workbook(results, tmp_path / "meta.xlsx", "en")
    found = problems(visible_text(html), "en") + problems(_workbook_text(tmp_path / "meta.xlsx"), "en")
    assert found == [], "\n".join(found[:30])


def _one_at_a_time(drawers):
    """Each drawer's figure in turn, closed before the next is drawn (pyplot warns past 20 open figures)."""
    import matplotlib.pyplot as plt

    for draw in drawers:
        fig = draw()
        try:
            yield fig
        finally:
            plt.close(fig)


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_figure_texts_are_in_the_report_language(results, lang):
    from meta.present import overview, plots, spec_curve  # noqa: F401
    from meta.present.component_figure import draw_components

    drawers = [lambda o=o, h=h, u=u: plots.draw_forest(results, o, h, u, plots.forest_title(results, o, h, lang), lang)
               for o, h, u in plots.figure_cells(results)]
    sens = results.sensitivity
    drawers.append(lambda: spec_curve.draw_spec_curve(sens, sorted(set(sens["outcome_key"]))[0], "x", lang,
                                                 results.inputs.periods))
    from meta.i18n import concept_labels, outcome_labels

    labels = {**outcome_labels(results.inputs.outcomes, lang), **concept_labels(results.inputs.concepts, lang)}
    drawers.append(lambda: draw_components(results.components, "x", lang, labels))
    for fig in _one_at_a_time(drawers):
        found = problems(_figure_text(fig), lang)
        assert found == [], "\n".join(found[:30])


def test_numbers_are_formatted_by_babel_per_language():
    from meta.i18n import fmt_interval, fmt_num, fmt_p, fmt_p_range

    assert fmt_num(-1234.56, 1, "nl") == "-1.234,6" and fmt_num(-1234.56, 1, "en") == "-1,234.6"
    assert fmt_num(-0.04, 1, "nl") == "0,0"  # no negative zero
    assert fmt_interval(-3.49, 18.69, 1, "nl") == "[-3,5; 18,7]" and fmt_interval(-3.49, 18.69, 1, "en") == "[-3.5, 18.7]"
    assert fmt_p(0.0004, "nl") == "<0,001" and fmt_p(0.179, "en") == "0.179"
    assert fmt_p_range(0.0, 0.05, "nl") == "<0,05" and fmt_p_range(0.05, 0.1, "nl") == "0,05–0,1"
    assert fmt_p_range(0.1, float("nan"), "en") == "≥0.1"


def test_a_kept_number_text_is_what_babel_writes_for_that_value_every_time():
    """fmt_num and fmt_g keep each value's text (functools cache): the text must be Babel's, for any value, the
    first time and again, with -0 apart from 0 where Babel writes them apart."""
    import numpy as np
    from babel.numbers import format_decimal

    from meta.i18n import LOCALES, fmt_g, fmt_num

    rng = np.random.default_rng(11)
    values = [0.0, -0.0, 0.05, -0.05, 0.15, 2.5, -2.5, 1e-7, 123456.789, 1e17, *rng.normal(size=300) * 10.0 **
              rng.integers(-4, 7, 300)]
    for _ in range(2):  # the second pass reads the kept texts
        for x in values:
            for lang in ("nl", "en"):
                for digits in (0, 1, 2, 3):
                    for sign in (False, True):
                        pattern = "#,##0" + ("." + "0" * digits if digits else "")
                        pattern = f"+{pattern};-{pattern}" if sign else pattern
                        want = format_decimal(0.0 if round(x, digits) == 0 else float(x), pattern,
                                              locale=LOCALES[lang])
                        assert fmt_num(x, digits, lang, sign=sign) == want
                        assert fmt_num(np.float64(x), digits, lang, sign=sign) == want
                want_g = format_decimal(float(f"{x:.6g}"), format="#,##0.######", locale=LOCALES[lang])
                assert fmt_g(x, lang) == want_g
    assert fmt_g(-0.0, "nl") != fmt_g(0.0, "nl")  # Babel writes "-0": the kept "0" is not given for it


def test_printed_tokens_show_the_languages_decimal_sign_and_write_out_footnotes():
    from meta.i18n import printed_text

    # Wageningen Tabel 3.9 prints '4.291)': 4.29 with footnote 1), not 4.291
    assert printed_text("4.291)", "1)", "nl") == "4,29 (voetnoot 1)"
    assert printed_text("4.291)", "1)", "en") == "4.29 (footnote 1)"
    assert printed_text("6.36*1)", "*1)", "nl") == "6,36* (voetnoot 1)"
    assert printed_text("7.6%", "", "nl") == "7,6%" and printed_text("-0.7%", "", "nl") == "-0,7%"
    assert printed_text("-0,12*", "*", "nl") == "-0,12*" and printed_text("-0,12*", "*", "en") == "-0.12*"
    assert printed_text("4.29", "**", "nl") == "4.29"  # the mark is not on the token: shown as it is


def test_exclusion_reasons_all_have_dutch_words_and_a_code(results):
    from meta.i18n import reason_code, reason_words

    for reason in set(results.excluded["reason"]):
        assert reason_code(reason) != "other", reason
        assert reason_words(reason, "nl") != reason


def test_kerntabel_is_ordered_by_arm_class_then_outcome_and_every_finding_links_to_its_row(results):
    from meta.present.report import findings_section, headline_table

    table = headline_table(results, "nl")
    ids = re.findall(r"<tr id='(kern-[^']+)'", table)
    assert len(ids) == len(results.pooled) == len(set(ids))
    classes = [next(c for c in results.plan.arm_classes if i.endswith("-" + c.replace("_", "-"))) for i in ids]
    order = [results.plan.arm_classes.index(c) for c in classes]
    assert order == sorted(order)
    for c in set(classes):  # within an arm class: plan order of the outcomes
        outcomes = [results.plan.outcomes.index(o) for i, k in zip(ids, classes) if k == c
                    for o in results.plan.outcomes if i.startswith(f"kern-{o.replace('_', '-')}-")]
        assert outcomes == sorted(outcomes)
    findings = findings_section(results, "nl")
    links = re.findall(r"<a href='#(kern-[^']+)'>", findings)
    assert sorted(links) == sorted(ids)


def test_a_study_with_95_percent_of_the_weight_is_named_and_others_are_not():
    import pandas as pd

    from meta.analyses.tables import dominant_study

    two = pd.DataFrame({"municipality": ["a", "b"], "sei": [0.1, 1.0]})
    # 1/0.01 = 100 against 1/1 = 1: a carries 100/101 = 0.990099 of the weight
    assert dominant_study(two, 0.0) == ("a", pytest.approx(100 / 101))
    # with tau2 = 1: 1/1.01 against 1/2, a carries 0.990/1.490 = 0.664: nobody dominates
    assert dominant_study(two, 1.0) is None
    assert dominant_study(two.iloc[:1], 0.0) is None  # one study is not a pool


def test_findings_name_arm_components_and_a_dominant_study(results):
    from meta.present.report import findings_section

    html = findings_section(results, "nl")
    item = re.search(r"<li><a href='#kern-welbevinden-meting-1jaar-exemption'>.*?</li>", html).group(0)
    # Nijmegen's welbevinden SE is far smaller than Wageningen's range bound: it carries > 95% of the weight
    assert "<b>Nijmegen draagt" in item and "van het gewicht</b>" in item
    # the arm of each municipality by its components (inputs/arms.csv), never the class name alone
    assert "Nijmegen: ontheffing + vrijlating 50% ≤ €200/maand; Wageningen: ontheffing" in item
    # werk: Nijmegen -10.0* and Wageningen +7.6 differ (Q p = 0.015) and define work differently; both are shown
    werk = re.search(r"<li><a href='#kern-werk-einde-experiment-exemption'>.*?</li>", html).group(0)
    row = results.pooled.set_index(["outcome_key", "period", "arm_class"]).loc[("werk", "einde_experiment",
                                                                                  "exemption")]
    assert row["Q_p"] < 0.05
    assert "<b>de gemeenten verschillen significant</b>" in werk and "<b>en meten iets anders</b>" in werk
    assert f"(Q = {row['Q']:.2f}; p = {row['Q_p']:.3f})".replace(".", ",") in werk
    assert "Nijmegen -10,0 pp [" in werk and "na 16 mnd" in werk and "Wageningen 7,6 pp [" in werk and "na 24 mnd" in werk
    gezondheid = re.search(r"<li><a href='#kern-gezondheid-meting-1jaar-exemption'>.*?</li>", html).group(0)
    assert "verschillen significant" not in gezondheid  # Q p = 0.996


def test_workbook_has_the_analysts_sheets_numeric_bounds_filters_and_p_ranges_not_points(results, tmp_path):
    from openpyxl import load_workbook

    from meta.write.workbook import write_workbook

    a, b = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    write_workbook(results, a, "nl")
    write_workbook(results, b, "nl")
    assert a.read_bytes() == b.read_bytes()
    wb = load_workbook(a)
    assert wb.sheetnames == ["Kerntabel", "Studies", "Gevoeligheid", "Uitgesloten", "Dekking", "Bronnen", "Toelichting"]
    for ws in wb:
        assert ws.freeze_panes == "A2" and ws.auto_filter.ref.startswith("A1:")
    ws = wb["Kerntabel"]
    head = [c.value for c in ws[1]]
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    for col in ("Schatting", "BI onder", "BI boven"):
        assert all(isinstance(r[head.index(col)], (int, float)) for r in rows)
    from_marks = [r for r in rows if r[head.index("p (bereik)")]]
    assert from_marks, "the real inputs have single studies whose SE comes from a mark"
    assert all(r[head.index("p")] is None for r in from_marks)
    assert all(re.fullmatch(r"<0,05|0,05–0,1|≥0,1|<0,01|<0,001|0,01–0,05", r[head.index("p (bereik)")])
               for r in from_marks)
    notes = wb["Toelichting"]
    described = {(r[0], r[1]) for r in notes.iter_rows(min_row=2, values_only=True)}
    for sheet in wb.sheetnames[:-1]:
        assert all((sheet, c.value) in described for c in wb[sheet][1])
    en = tmp_path / "en.xlsx"
    write_workbook(results, en, "en")
    assert load_workbook(en).sheetnames == ["Headline", "Studies", "Sensitivity", "Excluded", "Coverage", "Sources",
                                            "Notes"]


def test_pooled_csv_gives_a_mark_only_p_as_a_range_not_a_point(results):
    from meta.analyses.tables import mark_p_ranges

    ranges = mark_p_ranges(results.studies, results.inputs.legends)
    p = results.pooled
    single_from_marks = p[(p["k"] == 1) & (p["se_methods"] == "from_significance_marks")]
    assert len(single_from_marks) and single_from_marks["pval"].isna().all()
    assert (single_from_marks["p_range"] != "").all()
    assert set(single_from_marks["p_range"]) <= {"<0.05", "0.05–0.1", "≥0.1", "<0.01", "<0.001", "0.01–0.05"}
    assert len(ranges) >= len(single_from_marks)


def _all_figures(results, lang):
    """Every figure of the report, drawn one at a time (see :func:`_one_at_a_time`)."""
    from meta.present import overview, plots, spec_curve  # noqa: F401
    from meta.present.component_figure import draw_components
    from meta.i18n import outcome_labels

    drawers = [lambda o=o, h=h, u=u: plots.draw_forest(results, o, h, u, plots.forest_title(results, o, h, lang), lang)
               for o, h, u in plots.figure_cells(results)]
    sens = results.sensitivity
    drawers.append(lambda: spec_curve.draw_spec_curve(sens, sorted(set(sens["outcome_key"]))[0], "x", lang))
    drawers.append(lambda: draw_components(results.components, "x", lang, outcome_labels(results.inputs.outcomes, lang)))
    drawers.append(lambda: overview.draw_overview(results, lang))
    return _one_at_a_time(drawers)


def test_every_figure_prints_8_inches_wide_with_no_text_below_8_points(results):
    from matplotlib.text import Text

    from meta.present.drawing import FIGURE_WIDTH_IN, MIN_FONT_PT

    from meta.present.plots import figure_cells

    n = 0
    for fig in _all_figures(results, "nl"):
        n += 1
        fig.canvas.draw()
        assert fig.get_size_inches()[0] <= FIGURE_WIDTH_IN + 1e-9
        texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
        small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < MIN_FONT_PT]
        assert small == [], small[:5]
        # nothing is drawn outside the figure: its printed size is its size
        box = fig.get_tightbbox(fig.canvas.get_renderer())
        assert box.x0 >= -0.05 and box.x1 <= FIGURE_WIDTH_IN + 0.05, (box, texts[0].get_text())
    assert n == len(figure_cells(results)) + 3  # every forest plot, the specification curve, components, overview


def test_single_study_forest_blocks_have_no_weight_column_and_no_diamond_note(results):
    import matplotlib.pyplot as plt

    from meta.present import overview, plots, spec_curve  # noqa: F401

    single_blocks = unpooled_figures = 0
    for o, h, u in plots.figure_cells(results):
        rows = plots.forest_rows(results, o, h, u, "nl")
        block = (rows["kind"] == "header").cumsum()
        for _, g in rows.groupby(block):
            if not (g["kind"] == "pooled").any():  # a block with one study: no weight, no diamond
                single_blocks += 1
                assert (g["w"] == "").all() and g["weight"].isna().all()
        if not (rows["kind"] == "pooled").any():
            unpooled_figures += 1
            fig = plots.draw_forest(results, o, h, u, "x", "nl")
            text = _figure_text(fig)
            plt.close(fig)
            assert "Gewicht" not in text and "ruit" not in text and "100%" not in text
    assert single_blocks and unpooled_figures  # the real inputs have both (Wageningen alone has release arms)


def test_overview_figure_has_every_kerntabel_row_and_every_study(results):
    from meta.present import overview, plots, spec_curve  # noqa: F401

    rows = overview.overview_rows(results, "nl")
    cells = rows[rows["kind"] == "cell"]
    assert len(cells) == len(results.pooled)
    assert sum(len(s) for s in cells["studies"]) == len(results.studies)
    assert list(rows.loc[rows["kind"] == "header", "label"]) == ["Ontheffing", "Intensivering", "Vrijlating"]
    # a study whose SE is only an upper bound is flagged and its row's label carries the Kerntabel's †
    n_upper = int(results.studies["se_upper_bound_only"].fillna(False).astype(bool).sum())
    assert n_upper > 0 and sum(sum(u) for u in cells["upper"]) == n_upper
    assert all(lab.endswith(" †") == any(u) for lab, u in zip(cells["label"], cells["upper"]))


@pytest.fixture(scope="module")
def pooled_results(tmp_path_factory):
    """SYNTHETIC: the real inputs plus two invented Wageningen rows ('hours > 12 h/week', 16 months), so that two
    cells pool (k = 2) and the report shows pooled rows, diamonds and component notes."""
    from tests.synthetic import run_with_synthetic_second_municipality

    return run_with_synthetic_second_municipality(tmp_path_factory.mktemp("pooled"))


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_a_report_with_pooled_cells_stays_in_its_language_and_links_every_finding(pooled_results, lang):
    import matplotlib.pyplot as plt

    from meta.present import overview, plots, spec_curve  # noqa: F401
    from meta.present.report import findings_section, render_report

    res = pooled_results
    assert (res.pooled["k"] == 2).sum() == 2
    html = render_report(res, {}, lang, {})
    found = problems(visible_text(html), lang) + (code_leaks(html) if lang == "nl" else [])
    assert found == [], "\n".join(found[:30])
    findings = findings_section(res, lang)
    assert findings.count("gepoold over 2 gemeenten" if lang == "nl" else "pooled over 2 municipalities") == 2
    for fig in (plots.draw_forest(res, "hours_gt12", 16, "percentage_points", "x", lang), overview.draw_overview(res, lang)):
        found = problems(_figure_text(fig), lang)
        plt.close(fig)
        assert found == [], "\n".join(found[:30])


def test_the_dutch_catalogue_says_vragenlijst_not_survey():
    # the Dutch report said "surveycontrast" (Gevoeligheid, specification curves) and "survey-indices" (Methoden)
    from meta.i18n import TEXT, spec_words, word

    def texts(v):
        if isinstance(v, dict):
            return [x for y in v.values() for x in texts(y)]
        return [v] if isinstance(v, str) else [x for y in v for x in texts(y)] if isinstance(v, list) else []

    nl = [x for key, v in TEXT.items() for x in texts(v.get("nl", ""))]
    assert not [x for x in nl if "survey" in x.lower()]
    assert word("spec_group", "survey contrast", "nl") == "vragenlijstcontrast"
    assert spec_words("survey contrast", "wave", "nl") == "verschil op het meetmoment"

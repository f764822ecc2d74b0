"""Forest plots (stage 5), drawn with plain matplotlib: weight-sized markers, the pooled diamond, the
prediction-interval bar and the heterogeneity line. Row labels are made unique (a zero-width space appended to
repeats, removed again when drawn), so a label identifies its row.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.special import ndtri

from meta.analyses.tables import plan_order, study_weights
from meta.present import fewstudies_report as fsr
from meta.present.component_figure import outer_bound_models
from meta.i18n import (arm_class_label, components_label, concept_labels, fmt_g, fmt_interval, fmt_num, fmt_p,
                       method_words, outcome_labels, period_label, t, unit_words, word_list)
from meta.present.drawing import (ZWSP, FIGURE_WIDTH_IN, FONT_PT, PNG_DPI, cell_frames, edge_arrows, new_figure,
                                  number_axis, plain_text, text_width_in, unique_labels, wrap_label, wrap_line,
                                  write_now)
from meta.present.overview import overview_job
from meta.present.spec_curve import spec_curve_jobs

#: Past this many studies in one arm class a forest plot shows them as one strip of estimates (a rug) above the
#: pooled diamond instead of a row each, so a national roll-out (~340 municipalities) stays one readable page;
#: every study's number is in side_by_side.csv and the workbook.
FOREST_MAX_STUDIES = 50


def forest_rows(results, outcome_key: str, period, unit: str, lang: str = "en", cells: dict | None = None,
                names: tuple | None = None) -> pd.DataFrame:
    """The rows of one forest plot: per arm class a header, its studies, pooled row, PI row and stats line.

    ``period`` is a cell's period (``m16`` at the strict level; a whole number of months is read so too). A study
    row names the municipality, the arm's components and, at the concept level, the municipality's own outcome
    wording and month (e.g. "Wageningen: exemption — Volledige uitstroom naar betaald werk, 24 mnd").
    ``cells``: :func:`cell_frames` of ``results`` when drawing many figures (each is then looked up, not filtered
    from the whole table); ``names``: :func:`_study_names` when already made.
    """
    if isinstance(period, (int, np.integer)):
        period = f"m{int(period)}"
    plan = results.plan
    munis = results.inputs.municipalities
    pending = [n for n, s in zip(munis["name"], munis["status"]) if s == "pending"]
    d = fsr.unit_digits(unit)
    rows, footer, undetermined, credible = [], [], False, False
    cells = cell_frames(results) if cells is None else cells
    for arm_class in plan.arm_classes:
        s, p = cells.get((outcome_key, period, arm_class, unit), (None, None))  # a cell without studies: no rows
        if s is None or len(s["yi"]) == 0:
            continue
        w = study_weights(s["sei"], p["tau2"])
        rows.append(dict(kind="header", label=t("fig_arms", lang, cls=arm_class_label(arm_class, lang)).capitalize()
                         if lang == "en" else t("fig_arms", lang, cls=arm_class_label(arm_class, lang))))
        if len(s["yi"]) > FOREST_MAX_STUDIES:  # one strip row instead of a row per study
            rows.append(_strip_row(s, w, d, lang))
        else:
            names = names or _study_names(results, lang)
            rows.extend(_study_rows(results, s, w, single=int(p["k"]) < 2, d=d, lang=lang, names=names))
        if pending:
            rows.append(dict(kind="pending", label=wrap_label(t("fig_pending", lang, names=word_list(pending, lang))),
                             ci=t("fig_not_transcribed", lang), w=""))
        if int(p["k"]) >= 2:
            rows.extend(_pooled_rows(p, plan, arm_class, unit, d, lang, footer))
            undetermined = undetermined or _prints_undetermined(p)
            credible = credible or p.get("headline") == fsr.HEADLINE_BAYES
        else:
            rows.append(dict(kind="stats", label=wrap_label(t("fig_single", lang)), ci="", w=""))
    return _rows_frame(rows, footer, undetermined, credible)


def _prints_undetermined(p) -> bool:
    """Whether a pooled cell's rows or its footer line print a value as "onbepaald (k = …)"
    (:func:`meta.present.fewstudies_report.undetermined`): the estimate, interval and prediction interval of its
    pooled rows, and beside a Bayesian headline the classical fits of the footer."""
    shown = {"estimate", "ci_low", "ci_high", "pi_low", "pi_high"}
    if p.get("headline") == fsr.HEADLINE_BAYES:
        shown |= set(fsr.classical_fit_columns(p))
    return bool(fsr.undetermined(p) & shown)


def _strip_row(s: dict, w, d: int, lang: str) -> dict:
    """Past :data:`FOREST_MAX_STUDIES` studies (``s``: a cell's studies from :func:`cell_frames`): one row of
    ticks, one per estimate, with their range."""
    yi = np.asarray(s["yi"], float)
    nl = lang == "nl"
    return dict(kind="strip", label=wrap_label(f"{len(yi)} gemeenten, elk streepje één schatting" if nl
                                               else f"{len(yi)} municipalities, one tick per estimate"),
                est=np.nan, ll=float(yi.min()), hl=float(yi.max()),
                points=";".join(repr(float(x)) for x in yi),
                ci=f"{'bereik' if nl else 'range'} {fmt_num(yi.min(), d, lang)} – {fmt_num(yi.max(), d, lang)}",
                w=f"max {fmt_num(100 * w.max(), 1, lang)}%")


#: The study columns a forest plot's study row reads (``se_upper_bound_only`` when the table has it).
STUDY_ROW_COLUMNS = ("yi", "sei", "se_method", "se_upper_bound_only", "outcome", "horizon_months", "municipality",
                     "arm_components")


def _records(frame, columns) -> list[dict]:
    """The rows of ``frame`` (a DataFrame, or {column: list} from :func:`cell_frames`) as {column: value} of those
    of ``columns`` it has, read column by column (Python values, as ``iterrows`` gives them, without a Series per
    row)."""
    columns = [c for c in columns if c in frame]
    lists = [frame[c] if isinstance(frame, dict) else frame[c].tolist() for c in columns]
    return [dict(zip(columns, values)) for values in zip(*lists)]


def _study_names(results, lang: str) -> tuple[dict, dict]:
    """({outcome: its label in ``lang``}, {municipality: name}): what a forest plot's study rows are labelled with."""
    names = dict(zip(results.inputs.municipalities["municipality"], results.inputs.municipalities["name"]))
    return outcome_labels(results.inputs.outcomes, lang), names


def _study_rows(results, s: dict, w, single: bool, d: int, lang: str, names: tuple | None = None) -> list[dict]:
    """One row per study: municipality, the arm's components (and at the concept level the municipality's own
    outcome wording and month), the estimate with its interval yi ± z·sei, and its weight. ``names``:
    :func:`_study_names` when already made."""
    plan = results.plan
    concept_level = plan.outcome_level == "concept"
    own_label, names = names or _study_names(results, lang)
    z = float(ndtri(0.5 + plan.level / 200))  # normal quantile
    rows = []
    for r, wi in zip(_records(s, STUDY_ROW_COLUMNS), w):
        lo, hi = r["yi"] - z * r["sei"], r["yi"] + z * r["sei"]
        tag = {"from_significance_marks": " §", "from_shares_binomial": " ‡",
               "from_shares_binomial_and_marks": " ‡"}.get(r["se_method"], "")
        if bool(r.get("se_upper_bound_only", False)):  # an outer bound: the Kerntabel's mark
            tag = (tag or " ") + fsr.UPPER_MARK
        own = (f" — {own_label.get(r['outcome'], r['outcome'])}, {int(r['horizon_months'])} {t('months', lang)}"
               if concept_level else "")
        rows.append(dict(kind="study", label=wrap_label(f"{names[r['municipality']]}: "
                                                        f"{components_label(r['arm_components'], lang)}{own}"),
                         est=r["yi"], ll=lo, hl=hi, weight=np.nan if single else wi,
                         ci=f"{fmt_num(r['yi'], d, lang)} {fmt_interval(lo, hi, d, lang)}{tag}",
                         w="" if single else weight_text(wi, lang)))
    return rows


def _pooled_rows(p, plan, arm_class: str, unit: str, d: int, lang: str, footer: list) -> list[dict]:
    """A pooled cell's rows: the pooled estimate, its prediction interval and the heterogeneity line; beside a
    Bayesian headline the classical fits go to ``footer`` (appended to in place)."""
    bayes = p.get("headline") == fsr.HEADLINE_BAYES
    pooled_label = (t("fig_pooled_bayes", lang, level=fmt_g(plan.level, lang)) if bayes
                    else t("fig_pooled", lang, method=method_words(p["method"], p["test"], lang)))
    at = _drawn_at(p)
    rows = [dict(kind="pooled", label=wrap_label(pooled_label), est=at("estimate"),
                 ll=at("ci_low"), hl=at("ci_high"),
                 ci=f"{fsr.value_text(p, 'estimate', d, lang)} {fsr.interval_text(p, 'ci_low', 'ci_high', d, lang)}",
                 w="100%"),
            dict(kind="pi", label=wrap_label(t("fig_pi_bayes", lang) if bayes else t("fig_pi", lang)),
                 est=np.nan, ll=at("pi_low"), hl=at("pi_high"),
                 ci=fsr.interval_text(p, "pi_low", "pi_high", d, lang), w="")]
    if bayes:  # the classical fits stay beside the headline, in the footer
        if not footer:
            footer.append(t("fig_bayes_note", lang, k=plan.few_studies_k, level=fmt_g(plan.level, lang),
                            scale=f"{fmt_g(p['tau_prior_scale'], lang)} "
                                  f"{'pp' if unit == 'percentage_points' else ''}".strip()))
        footer.append(t("fig_classical", lang, cls=arm_class_label(arm_class, lang).capitalize(),
                        fits=fsr.classical_fits_text(p, d, lang)))
    q_p = fmt_p(p["Q_p"], lang)
    q_p = q_p if q_p.startswith("<") else "= " + q_p
    # "PI = BI" only where the two printed intervals are the same (not beside a Bayesian headline whose
    # predictive interval is wider than its credible interval although the classical τ² is 0)
    same = (fsr.interval_text(p, "ci_low", "ci_high", d, lang)
            == fsr.interval_text(p, "pi_low", "pi_high", d, lang))
    zero = ("; τ² = 0: PI = BI" if lang == "nl" else "; τ² = 0: PI = CI") if p["tau2"] == 0 and same else ""
    tau2_text = fmt_g(float(f"{p['tau2']:.3g}"), lang)
    rows.append(dict(kind="stats", label=wrap_label(f"k = {int(p['k'])}, τ² = {tau2_text}, "
                                                    f"I² = {fmt_num(p['I2'], 0, lang)}%, Q p {q_p}{zero}"),
                     ci="", w=""))
    return rows


def _drawn_at(p):
    """Where a pooled cell's values are drawn: a value outside the unit's feasible range (``impossible``, printed
    "onbepaald": e.g. a Hartung-Knapp bound of two municipalities at -112 pp) at -inf or +inf by its sign, drawn at
    the edge of the axis (:func:`_draw_forest_row`), whose limits are set by the other values: the axis never shows
    impossible values, as the overview's does not (:func:`meta.present.overview.overview_rows`)."""
    bad = fsr.impossible(p)

    def at(col: str) -> float:
        value = p[col]
        return math.copysign(math.inf, value) if col in bad and math.isfinite(value) and value != 0 else value

    return at


#: What a forest plot's row without a value in a column has there: no number, no text.
_ROW_DEFAULTS = dict(est=np.nan, ll=np.nan, hl=np.nan, weight=np.nan, ci="", w="")


def _rows_frame(rows: list[dict], footer: list, undetermined: bool = False, credible: bool = False) -> pd.DataFrame:
    """The rows as a frame with every column :func:`draw_forest_rows` reads; labels made unique. ``attrs`` holds the
    footer lines, whether a value is printed "onbepaald" (which adds the footnote saying why) and whether a pooled
    row prints a Bayesian credible interval (the interval column's head then names both kinds)."""
    labels = unique_labels([r["label"] for r in rows])
    frame = pd.DataFrame([{**r, **{c: v for c, v in _ROW_DEFAULTS.items() if c not in r}, "label": label}
                          for r, label in zip(rows, labels)])  # every row complete: no column added or filled
    frame.attrs["footer"] = footer  # lines for the figure's footer (classical fits beside a Bayesian headline)
    frame.attrs["undetermined"] = bool(undetermined)
    frame.attrs["credible"] = bool(credible)
    return frame


def weight_text(w: float, lang: str = "en") -> str:
    """A study's weight (a fraction) as a whole percentage, "<1%" and ">99%" at the ends, so the printed weights
    of a cell never add up visibly past the pooled row's 100% (not "100%" beside "0,4%")."""
    x = 100 * w
    return "<1%" if x < 1 else ">99%" if x > 99 else f"{fmt_num(x, 0, lang)}%"


def draw_forest(results, outcome_key: str, horizon: int, unit: str, title: str, lang: str = "en"):
    """Draw one forest plot; returns the matplotlib Figure (see :func:`draw_forest_rows`)."""
    return draw_forest_rows(forest_rows(results, outcome_key, horizon, unit, lang), unit, title,
                            results.plan.level, lang)


def draw_forest_rows(rows: pd.DataFrame, unit: str, title: str, level: float, lang: str = "en", footer=None):
    """Draw one forest plot from its :func:`forest_rows` at print size (``FIGURE_WIDTH_IN`` wide, no text below
    ``MIN_FONT_PT``); a pure function of its arguments (see ``meta.present.figures``).

    Left: one label per row (arm class headers bold); middle: intervals, weight-sized squares, the pooled
    diamond and prediction bar (past ``FOREST_MAX_STUDIES`` studies, one strip of ticks); right: the estimate
    and interval as text, and the weight when something is pooled. ``footer``: lines under the plot (the
    classical fits beside a Bayesian headline); default ``rows.attrs``. Returns the matplotlib Figure.
    """
    from matplotlib.transforms import blended_transform_factory

    cols = _columns(rows)
    footer = _forest_footer(rows, footer, lang, cols)
    g = _ForestGeometry(rows, footer, level, lang, cols)
    fig = new_figure(g.height, facecolor="white")
    ax = fig.add_axes([g.left_in / FIGURE_WIDTH_IN, g.bottom_in / g.height,
                       1 - (g.left_in + g.right_in) / FIGURE_WIDTH_IN, g.plot_h / g.height])
    ax.set_ylim(0, g.plot_h)
    ax.set_xlim(*g.xlim)
    left = blended_transform_factory(fig.transFigure, ax.transData)
    for r, y in zip((dict(zip(cols, values)) for values in zip(*cols.values())), g.ys):
        _draw_forest_row(fig, ax, left, g, r, y)
    head_y = g.plot_h + 0.12
    fig.text(g.x_label, head_y, t("fig_ylabel", lang), transform=left, ha="left", va="bottom", fontsize=FONT_PT,
             fontweight="bold")
    fig.text(g.x_ci, head_y, g.effect_head, transform=left, ha="left", va="bottom", fontsize=FONT_PT,
             fontweight="bold")
    if g.weights:
        fig.text(g.x_w, head_y, g.weight_head, transform=left, ha="left", va="bottom", fontsize=FONT_PT,
                 fontweight="bold")
    ax.axvline(0, color="black", lw=0.8, zorder=1)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_yticks([])
    number_axis(ax.xaxis, lang)
    ax.tick_params(axis="x", labelsize=FONT_PT)
    ax.set_xlabel(t("fig_xlabel", lang, unit=unit_words(unit, lang)), fontsize=FONT_PT)
    fig.text(0.1 / FIGURE_WIDTH_IN, 1 - 0.1 / g.height, title, ha="left", va="top", fontsize=11, fontweight="bold")
    if g.wrapped_footer:
        fig.text(0.1 / FIGURE_WIDTH_IN, 0.1 / g.height, "\n".join(g.wrapped_footer), fontsize=FONT_PT, ha="left",
                 va="bottom", color="0.2")
    return fig


def _forest_footer(rows: pd.DataFrame, footer, lang: str, cols: dict | None = None) -> list[str]:
    """The lines under a forest plot: ``footer`` (default ``rows.attrs``), the note on "onbepaald" when a value
    is printed so (``rows.attrs["undetermined"]``, set by :func:`forest_rows`), and the footnotes of the marks drawn
    (``cols``: :func:`_columns` of ``rows`` when already made)."""
    footer = list(rows.attrs.get("footer", []) if footer is None else footer)
    if rows.attrs.get("undetermined", False):
        footer = [*footer, plain_text(fsr.footnote(lang))]
    return [*footer, *forest_footnote(rows, lang, cols)]


def _columns(rows: pd.DataFrame) -> dict[str, list]:
    """{column: its values as a Python list} of a forest plot's rows: read once, then walked as plain lists (pandas'
    element access on text columns costs microseconds per value)."""
    return {c: rows[c].tolist() for c in rows.columns}


class _ForestGeometry:
    """Where everything of one forest plot goes, in inches: label | plot | estimate [interval] | weight columns,
    one row per label line, the footer under the axis; x limits with 6% room around every interval and 0."""

    def __init__(self, rows: pd.DataFrame, footer: list[str], level: float, lang: str, cols: dict | None = None):
        cols = _columns(rows) if cols is None else cols  # plain lists: no pandas element access per row
        values = np.concatenate([np.asarray(cols[c], float) for c in ("ll", "est", "hl")] + [[0.0]])
        values = values[np.isfinite(values)]  # NaN (nothing drawn) and ±inf (drawn at the edge: _drawn_at) left out
        lows, highs = values.min(), values.max()
        span = max(highs - lows, 1e-9)
        self.xlim = (lows - 0.06 * span, highs + 0.06 * span)
        self.weights = any(w != "" for w in cols["w"])  # no weight column when nothing is pooled
        self.effect_head = t("fig_effect_bayes" if rows.attrs.get("credible") else "fig_effect", lang,
                             level=fmt_g(level, lang))
        self.weight_head = t("fig_weight", lang)
        gap = 0.15
        label_in = max(text_width_in(x, weight="bold") for x in [*cols["label"], t("fig_ylabel", lang)])
        ci_in = max(text_width_in(x, weight="bold") for x in [*cols["ci"], self.effect_head])
        w_in = max(text_width_in(x, weight="bold") for x in [*cols["w"], self.weight_head]) if self.weights else 0.0
        self.line_in = 1.25 * FONT_PT / 72
        heights = [0.1 + self.line_in * (label.count("\n") + 1) for label in cols["label"]]
        self.left_in = 0.1 + label_in + gap
        self.right_in = gap + ci_in + (gap + w_in if self.weights else 0.0) + 0.1
        axis_pt = 72 * (FIGURE_WIDTH_IN - self.left_in - self.right_in)
        self.data_per_pt = (self.xlim[1] - self.xlim[0]) / axis_pt
        if any(_hidden_in_square(r, self.data_per_pt) is not None for r in _study_values(cols)):  # a white line
            footer = [*footer, t("fig_note_white", lang)]
        self.wrapped_footer = [w for line in footer for w in wrap_line(line)]
        self.bottom_in = 0.7 + 1.25 * FONT_PT / 72 * len(self.wrapped_footer) + 0.1
        self.plot_h = sum(heights)
        self.height = 0.75 + self.plot_h + self.bottom_in
        # y: rows from the top, each as tall as its label
        self.ys, y = [], self.plot_h
        for h in heights:
            self.ys.append(y - h / 2)
            y -= h
        self.x_label = 0.1 / FIGURE_WIDTH_IN
        self.x_ci = 1 - (self.right_in - gap) / FIGURE_WIDTH_IN
        self.x_w = 1 - (0.1 + w_in) / FIGURE_WIDTH_IN


def _draw_forest_row(fig, ax, left, g: _ForestGeometry, r, y: float) -> None:
    """One row: its label, estimate text and weight, and what it draws (study interval and weight-sized square,
    pooled diamond, prediction bar, or a strip of ticks)."""
    from matplotlib.patches import Polygon

    header = r["kind"] == "header"
    fig.text(g.x_label, y, r["label"].replace(ZWSP, ""), transform=left, ha="left", va="center", fontsize=FONT_PT,
             fontweight="bold" if header else "normal")
    if r["ci"]:
        fig.text(g.x_ci, y, r["ci"], transform=left, ha="left", va="center", fontsize=FONT_PT)
    if g.weights and r["w"]:
        fig.text(g.x_w, y, r["w"], transform=left, ha="left", va="center", fontsize=FONT_PT)
    if r["kind"] == "study":
        ax.plot([r["ll"], r["hl"]], [y, y], color="0.35", lw=1.3, zorder=2)
        ax.scatter([r["est"]], [y], s=square_size(r["weight"]), marker="s", color="#1f4e79", zorder=3)
        inside = _hidden_in_square(r, g.data_per_pt)
        if inside is not None:
            ax.plot(inside, [y, y], color="white", lw=1.0, zorder=4, solid_capstyle="butt")
    elif r["kind"] == "pooled":
        half = 0.3 * g.line_in
        ll, est, hl = (_at_edge(r[c], g.xlim) for c in ("ll", "est", "hl"))
        ax.add_patch(Polygon([[ll, y], [est, y + half], [hl, y], [est, y - half]], closed=True, color="#b22222",
                             zorder=3))
        edge_arrows(ax, (r["ll"], r["est"], r["hl"]), y, g.xlim)
    elif r["kind"] == "pi":
        ax.plot([_at_edge(r["ll"], g.xlim), _at_edge(r["hl"], g.xlim)], [y, y], color="#b22222", lw=3, alpha=0.45,
                zorder=2, solid_capstyle="butt")
        edge_arrows(ax, (r["ll"], r["hl"]), y, g.xlim)
    elif r["kind"] == "strip":  # every study's estimate as a tick on one row
        xs = [float(x) for x in str(r["points"]).split(";")]
        ax.scatter(xs, [y] * len(xs), marker="|", s=160, linewidths=0.8, color="#1f4e79", alpha=0.6, zorder=3)


def square_size(weight: float) -> float:
    """A study's square in a forest plot: its area in points² (matplotlib's ``scatter`` size), 30 + 250·weight, or
    40 for a study shown alone (no weight)."""
    return 40 if math.isnan(weight) else 30 + 250 * weight


#: The edge matplotlib draws around a scatter marker, in the marker's colour (``lines.linewidth``, points).
_SQUARE_EDGE_PT = 1.5


def _hidden_in_square(r: dict, data_per_pt: float) -> list[float] | None:
    """For a study row whose interval ends under its square (a study with most of the weight and a narrow interval:
    the square, sized by weight, is wider than the interval, so no whisker shows and a significant estimate looks
    like one that is not): the part of the interval inside the square, [from, to] in data units, drawn as a white
    line over it (:func:`_draw_forest_row`); else None. The square's side is √size points plus its edge
    (:func:`square_size`, :data:`_SQUARE_EDGE_PT`); the white line stays half a point inside the fill."""
    if r.get("kind") != "study" or not all(math.isfinite(r[c]) for c in ("ll", "est", "hl")):
        return None
    side = math.sqrt(square_size(r["weight"]))
    shown = (side + _SQUARE_EDGE_PT) / 2 * data_per_pt
    if r["ll"] < r["est"] - shown and r["hl"] > r["est"] + shown:
        return None  # both whiskers show
    fill = (side / 2 - 0.5) * data_per_pt
    return [max(r["ll"], r["est"] - fill), min(r["hl"], r["est"] + fill)]


def _study_values(cols: dict) -> list[dict]:
    """Each row's kind, estimate, interval and weight from a forest plot's columns (:func:`_columns`)."""
    return [dict(zip(("kind", "ll", "est", "hl", "weight"), v))
            for v in zip(*(cols[c] for c in ("kind", "ll", "est", "hl", "weight")))]


def _at_edge(x: float, xlim: tuple) -> float:
    """``x``, or the axis' left or right edge for -inf or +inf (:func:`_drawn_at`)."""
    return xlim[0] if x == -math.inf else xlim[1] if x == math.inf else x


def forest_footnote(rows: pd.DataFrame, lang: str, cols: dict | None = None) -> list[str]:
    """The footnote lines a forest plot needs: only the symbols and marks it actually draws (``cols``:
    :func:`_columns` of ``rows`` when already made)."""
    nl = lang == "nl"
    notes = []
    cols = cols or {c: rows[c].tolist() for c in ("kind", "ci", "ll", "est", "hl") if c in rows}
    kinds, cis = set(cols["kind"]), [c for c in cols["ci"] if isinstance(c, str)]

    def marked(mark: str) -> bool:
        return any(mark in c for c in cis)

    pooled = "pooled" in kinds
    if pooled and "strip" in kinds:  # past FOREST_MAX_STUDIES: ticks, no squares
        notes.append(t("fig_note_strip", lang))
    if pooled and "study" in kinds:
        notes.append("Vierkanten naar gewicht in het random-effectsmodel; ruit: gepoolde schatting en interval; balk: "
                     "voorspellingsinterval." if nl else
                     "Squares sized by random-effects weight; diamond: pooled estimate and interval; bar: prediction "
                     "interval.")
    if marked("§"):
        notes.append("§ SE gereconstrueerd uit significantietekens." if nl else
                     "§ SE reconstructed from significance marks.")
    if marked(fsr.UPPER_MARK):
        notes.append(f"{fsr.UPPER_MARK} {t('fig_note_upper_bound', lang)}")
    if marked("‡"):
        notes.append("‡ SE uit aandelen en N (binomiaal, niet gecorrigeerd)." if nl else
                     "‡ SE from shares and N (binomial, unadjusted).")
    if any(math.isinf(x) for c in ("ll", "est", "hl") for x in cols.get(c, [])):  # drawn at the edge (_drawn_at)
        notes.append(t("fig_note_edge", lang))
    return [" ".join(notes)] if notes else []


def figure_cells(results) -> list[tuple[str, str, str]]:
    """(outcome_key, period, unit) of every figure, in the order the report shows them: outcomes and periods in the
    plan's order (``outcomes``, ``periods``; werk first, as in the Kerntabel), those the plan does not list after
    them by code, then unit."""
    if len(results.studies) == 0:
        return []
    keys = results.studies[["outcome_key", "period", "unit_h"]].drop_duplicates()
    order = plan_order(results.plan)
    return sorted(((o, p, u) for o, p, u in keys.itertuples(index=False)), key=lambda c: (*order(c[0], c[1]), c[2]))


def figure_name(outcome_key: str, period: str) -> str:
    """File name (without suffix) of one forest plot: ``forest_werk_einde_experiment``, ``forest_hours_gt12_m16``."""
    return f"forest_{outcome_key}_{period}"


def forest_title(results, outcome_key: str, period, lang: str = "en", labels: dict | None = None) -> str:
    """The title of one forest plot: the outcome's (or concept's) label in ``lang`` and the period (``labels``: the
    outcome and concept labels in ``lang`` when already read)."""
    if isinstance(period, (int, np.integer)):
        period = f"m{int(period)}"
    if labels is None:
        labels = {**outcome_labels(results.inputs.outcomes, lang), **concept_labels(results.inputs.concepts, lang)}
    label = labels.get(outcome_key) or outcome_key.replace("_", " ")
    return f"{label} — {period_label(period, results.inputs.periods, lang)}"


def forest_jobs(results, lang: str = "en", svg: bool = False, cells: dict | None = None) -> list:
    """One :class:`meta.present.figures.FigureJob` per outcome × horizon: PNG (read in the report), SVG only when
    asked; ``cells``: :func:`cell_frames` of ``results`` when already made."""
    from meta.present.figures import FigureJob

    jobs = []
    cells = cell_frames(results) if cells is None else cells
    labels = {**outcome_labels(results.inputs.outcomes, lang), **concept_labels(results.inputs.concepts, lang)}
    names = _study_names(results, lang)  # the registers read once for every figure
    for outcome_key, horizon, unit in figure_cells(results):
        name = figure_name(outcome_key, horizon)
        title = forest_title(results, outcome_key, horizon, lang, labels)
        rows = forest_rows(results, outcome_key, horizon, unit, lang, cells, names)
        files = {"png": f"{name}.png", **({"svg": f"{name}.svg"} if svg else {})}
        jobs.append(FigureJob(name, "forest", title, files,
                              dict(rows=rows, unit=unit, title=title, level=float(results.plan.level), lang=lang,
                                   footer=list(rows.attrs.get("footer", []))),  # in the content key too
                              dict(dpi=PNG_DPI)))
    return jobs


def write_forest_plots(results, folder, lang: str = "en", svg: bool = True) -> dict:
    """Write one PNG (and SVG) per outcome × horizon; returns {name: {"png": path, "svg": path, "title": str}}."""
    return write_now(forest_jobs(results, lang, svg), folder)


def components_job(table: pd.DataFrame, lang: str = "en", svg: bool = False, outcomes: pd.DataFrame | None = None,
                   concepts: pd.DataFrame | None = None, periods: pd.DataFrame | None = None, upper=()):
    """The component meta-regression figure job (PNG; SVG only when asked); labels from ``outcomes``, ``concepts``
    and ``periods``; ``upper``: the models with outer-bound intervals
    (:func:`meta.present.component_figure.outer_bound_models`)."""
    from meta.present.figures import FigureJob

    title = ("Componentenmodel: effect per onderdeel" if lang == "nl" else "Component model: effect of each component")
    files = {"png": "components.png", **({"svg": "components.svg"} if svg else {})}
    label = ({**outcome_labels(outcomes, lang), **concept_labels(concepts, lang)} if outcomes is not None else None)
    return FigureJob("components", "components", title, files,
                     dict(table=table, title=title, lang=lang, outcome_label=label, periods=periods,
                          **({"upper": sorted(upper)} if upper else {})),
                     dict(dpi=PNG_DPI))


def write_components_figure(table: pd.DataFrame, folder, lang: str = "en", svg: bool = True,
                            outcomes: pd.DataFrame | None = None) -> dict:
    """The component meta-regression figure (PNG and SVG)."""
    return write_now([components_job(table, lang, svg, outcomes)], folder)


def feasible_ranges(pooled: pd.DataFrame) -> dict:
    """{unit: width}: the feasible range ±width of a difference in each unit, from ``pooled.csv``'s
    ``range_high`` (units without a range are absent)."""
    if "range_high" not in pooled or "unit_h" not in pooled:
        return {}
    r = pooled[["unit_h", "range_high"]].dropna().drop_duplicates("unit_h").sort_values("unit_h")
    return {str(u): float(w) for u, w in zip(r["unit_h"], r["range_high"]) if math.isfinite(float(w))}


def figure_jobs(results, lang: str = "en", svg: bool = False) -> tuple[list, list]:
    """(forest-plot jobs, other jobs: specification curves, the component figure, the overview) of a run."""
    return forest_jobs(results, lang, svg), [*sensitivity_jobs(results, lang, svg), overview_job(results, lang, svg)]


def sensitivity_jobs(results, lang: str = "en", svg: bool = False) -> list:
    """The jobs of the figures drawn from the sensitivity analysis and the component models: the specification
    curves and the component figure (the forest plots and the overview need the pooled cells and studies only)."""
    extra = spec_curve_jobs(results.sensitivity, results.inputs.outcomes, lang, results.inputs.periods,
                            results.inputs.concepts, feasible_ranges(results.pooled), plan_order(results.plan))
    extra.append(components_job(results.components, lang, svg, results.inputs.outcomes, results.inputs.concepts,
                                results.inputs.periods, outer_bound_models(results.studies)))
    return extra



"""Forest plots (stage 5), drawn with plain matplotlib: weight-sized markers, the pooled diamond, the
prediction-interval bar and the heterogeneity line. Row labels are made unique (a zero-width space appended to
repeats, removed again when drawn), so a label identifies its row.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.special import ndtri

from meta.present import fewstudies_report as fsr
from meta.i18n import (arm_class_label, components_label, concept_labels, fmt_g, fmt_interval, fmt_num, fmt_p,
                       method_words, outcome_labels, period_label, spec_words, t, tick_text, word)

ZWSP = "\u200b"  # appended to make otherwise identical labels unique
#: Past this many studies in one arm class a forest plot shows them as one strip of estimates (a rug) above the
#: pooled diamond instead of a row each, so a national roll-out (~340 municipalities) stays one readable page;
#: every study's number is in side_by_side.csv and the workbook.
FOREST_MAX_STUDIES = 50


def number_axis(axis, lang: str) -> None:
    """Tick labels of a numeric axis in the notation of ``lang`` (decimal comma in Dutch)."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(tick_text(lang)))


#: Forest-plot text: labels wrap at this many characters so that the figure prints at FIGURE_WIDTH_IN inches
#: with no text below MIN_FONT_PT points.
LABEL_CHARS = 38
FIGURE_WIDTH_IN = 8.0
MIN_FONT_PT = 8.0
FONT_PT = 9.0
PNG_DPI = 144  # 8 in × 144 = 1152 px: shown at its natural size in the report's 1200 px column


def wrap_label(text: str, width: int = LABEL_CHARS, indent: str = "  ") -> str:
    """A row label indented and wrapped onto as many lines as needed (continuation lines indented further)."""
    import textwrap

    lines = textwrap.wrap(text, width - len(indent), break_on_hyphens=False) or [""]
    return "\n".join([indent + lines[0]] + [indent + "  " + ln for ln in lines[1:]])


def unique_labels(labels: list[str]) -> list[str]:
    """Make labels unique by appending zero-width spaces to repeats (invisible, but distinct)."""
    seen: dict[str, int] = {}
    out = []
    for lab in labels:
        n = seen.get(lab, 0)
        out.append(lab + ZWSP * n)
        seen[lab] = n + 1
    return out


def _unit_label(unit: str, lang: str = "en") -> str:
    if unit == "percentage_points":
        return t("unit_pp", lang)
    if unit == "scale_unknown":
        return t("unit_unknown_scale", lang)
    if unit.startswith("scale_"):
        lo, _, hi = unit.removeprefix("scale_").partition("_")
        return f"{t('unit_scale', lang)}, {lo}–{hi}"
    return unit.replace("_", " ")


def forest_rows(results, outcome_key: str, period, unit: str, lang: str = "en", cells: dict | None = None
                ) -> pd.DataFrame:
    """The rows of one forest plot: per arm class a header, its studies, pooled row, PI row and stats line.

    ``period`` is a cell's period (``m16`` at the strict level; a whole number of months is read so too). A study
    row names the municipality, the arm's components and, at the concept level, the municipality's own outcome
    wording and month (e.g. "Wageningen: exemption — Volledige uitstroom naar betaald werk, 24 mnd").
    ``cells``: :func:`cell_frames` of ``results`` when drawing many figures (each is then looked up, not filtered
    from the whole table).
    """
    if isinstance(period, (int, np.integer)):
        period = f"m{int(period)}"
    plan = results.plan
    concept_level = plan.outcome_level == "concept"
    own_label = outcome_labels(results.inputs.outcomes, lang)
    studies = results.studies
    pooled = results.pooled
    z = float(ndtri(0.5 + plan.level / 200))  # normal quantile
    munis = results.inputs.municipalities
    pending = [n for n, s in zip(munis["name"], munis["status"]) if s == "pending"]
    names = dict(zip(munis["municipality"], munis["name"]))
    d = fsr.unit_digits(unit)
    rows, footer = [], []
    cells = cell_frames(results) if cells is None else cells
    for arm_class in plan.arm_classes:
        s, p = cells.get((outcome_key, period, arm_class, unit), (studies.iloc[:0], None))
        if len(s) == 0:
            continue
        tau2 = 0.0 if math.isnan(p["tau2"]) else p["tau2"]
        w = 1 / (s["sei"].to_numpy() ** 2 + tau2)
        w = w / w.sum()
        rows.append(dict(kind="header", label=t("fig_arms", lang, cls=arm_class_label(arm_class, lang)).capitalize()
                         if lang == "en" else t("fig_arms", lang, cls=arm_class_label(arm_class, lang))))
        single = int(p["k"]) < 2
        if len(s) > FOREST_MAX_STUDIES:  # one strip row instead of a row per study
            yi = s["yi"].to_numpy(float)
            nl = lang == "nl"
            rows.append(dict(kind="strip", label=wrap_label(f"{len(s)} gemeenten, elk streepje één schatting" if nl
                                                            else f"{len(s)} municipalities, one tick per estimate"),
                             est=np.nan, ll=float(yi.min()), hl=float(yi.max()),
                             points=";".join(repr(float(x)) for x in yi),
                             ci=f"{'bereik' if nl else 'range'} {fmt_num(yi.min(), d, lang)} – {fmt_num(yi.max(), d, lang)}",
                             w=f"max {fmt_num(100 * w.max(), 1, lang)}%"))
        for (_, r), wi in zip(s.iterrows() if len(s) <= FOREST_MAX_STUDIES else (), w):
            lo, hi = r["yi"] - z * r["sei"], r["yi"] + z * r["sei"]
            tag = {"from_significance_marks": " †", "from_shares_binomial": " ‡",
                   "from_shares_binomial_and_marks": " ‡"}.get(r["se_method"], "")
            own = (f" — {own_label.get(r['outcome'], r['outcome'])}, {int(r['horizon_months'])} {t('months', lang)}"
                   if concept_level else "")
            rows.append(dict(kind="study", label=wrap_label(f"{names[r['municipality']]}: "
                                                            f"{components_label(r['arm_components'], lang)}{own}"),
                             est=r["yi"], ll=lo, hl=hi, weight=np.nan if single else wi,
                             ci=f"{fmt_num(r['yi'], d, lang)} {fmt_interval(lo, hi, d, lang)}{tag}",
                             w="" if single else weight_text(wi, lang)))
        if pending:
            rows.append(dict(kind="pending", label=wrap_label(t("fig_pending", lang, names=", ".join(pending))),
                             ci=t("fig_not_transcribed", lang), w=""))
        if int(p["k"]) >= 2:
            bayes = p.get("headline") == fsr.HEADLINE_BAYES
            pooled_label = (t("fig_pooled_bayes", lang, level=fmt_g(plan.level, lang)) if bayes
                            else t("fig_pooled", lang, method=method_words(p["method"], p["test"], lang)))
            rows.append(dict(kind="pooled", label=wrap_label(pooled_label), est=p["estimate"],
                             ll=p["ci_low"], hl=p["ci_high"],
                             ci=f"{fsr.value_text(p, 'estimate', d, lang)} {fsr.interval_text(p, 'ci_low', 'ci_high', d, lang)}",
                             w="100%"))
            rows.append(dict(kind="pi", label=wrap_label(t("fig_pi_bayes", lang) if bayes else t("fig_pi", lang)),
                             est=np.nan, ll=p["pi_low"], hl=p["pi_high"],
                             ci=fsr.interval_text(p, "pi_low", "pi_high", d, lang), w=""))
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
        else:
            rows.append(dict(kind="stats", label=wrap_label(t("fig_single", lang)), ci="", w=""))
    frame = pd.DataFrame(rows)
    for col in ("est", "ll", "hl", "weight"):
        if col not in frame:
            frame[col] = np.nan
    for col in ("ci", "w"):
        frame[col] = frame[col].fillna("") if col in frame else ""
    frame["label"] = unique_labels(list(frame["label"]))
    frame.attrs["footer"] = footer  # lines for the figure's footer (classical fits beside a Bayesian headline)
    return frame


def weight_text(w: float, lang: str = "en") -> str:
    """A study's weight (a fraction) as a whole percentage, "<1%" and ">99%" at the ends, so the printed weights
    of a cell never add up visibly past the pooled row's 100% (not "100%" beside "0,4%")."""
    x = 100 * w
    return "<1%" if x < 1 else ">99%" if x > 99 else f"{fmt_num(x, 0, lang)}%"


#: The columns that name one forest-plot cell (one pooled row).
CELL_KEY = ("outcome_key", "period", "arm_class", "unit_h")


def cell_frames(results) -> dict:
    """{(outcome_key, period, arm_class, unit_h): (its studies in table order, its pooled row or None)}: every
    figure's rows looked up once instead of filtered from the whole studies table per figure."""
    studies, pooled = results.studies, results.pooled
    if len(studies) == 0:
        return {}
    first_pooled = {}
    if len(pooled):
        for i, key in enumerate(zip(*(pooled[c] for c in CELL_KEY))):
            first_pooled.setdefault(key, i)
    out = {}
    for key, idx in studies.groupby(list(CELL_KEY), sort=False, dropna=False).indices.items():
        i = first_pooled.get(key)
        out[key] = (studies.iloc[idx], None if i is None else pooled.iloc[i])
    return out


def text_width_in(text: str, size: float = FONT_PT, weight: str = "normal") -> float:
    """Width of the widest line of ``text`` in inches at ``size`` points (matplotlib's own text layout)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    prop = FontProperties(size=size, weight=weight)
    return max((TextToPath().get_text_width_height_descent(line, prop, ismath=False)[0] if line else 0.0)
               for line in str(text).split("\n")) / 72


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon
    from matplotlib.transforms import blended_transform_factory

    lows = pd.concat([rows["ll"], rows["est"], pd.Series([0.0])]).min()
    highs = pd.concat([rows["hl"], rows["est"], pd.Series([0.0])]).max()
    span = max(highs - lows, 1e-9)
    xlim = (lows - 0.06 * span, highs + 0.06 * span)
    footer = list(rows.attrs.get("footer", []) if footer is None else footer)
    undetermined = any("onbepaald" in line or "undetermined" in line for line in [*footer, *rows["ci"]])
    if undetermined:
        footer = [*footer, _plain(fsr.footnote(lang))]
    footer = [*footer, *forest_footnote(rows, lang)]
    weights = bool((rows["w"] != "").any())  # no weight column when nothing is pooled
    effect_head = t("fig_effect", lang, level=fmt_g(level, lang))
    weight_head = t("fig_weight", lang)
    # widths in inches: labels | plot | estimate [interval] | weight
    gap = 0.15
    label_in = max(text_width_in(x, weight="bold") for x in [*rows["label"], t("fig_ylabel", lang)])
    ci_in = max(text_width_in(x, weight="bold") for x in [*rows["ci"], effect_head])
    w_in = max(text_width_in(x, weight="bold") for x in [*rows["w"], weight_head]) if weights else 0.0
    left_in = 0.1 + label_in + gap
    right_in = gap + ci_in + (gap + w_in if weights else 0.0) + 0.1
    lines = [label.count("\n") + 1 for label in rows["label"]]
    line_in = 1.25 * FONT_PT / 72
    heights = [0.1 + line_in * n for n in lines]
    wrapped_footer = [w for line in footer for w in _wrap(line)]
    top_in = 0.75
    bottom_in = 0.7 + 1.25 * FONT_PT / 72 * len(wrapped_footer) + 0.1
    plot_h = sum(heights)
    height = top_in + plot_h + bottom_in
    fig = plt.figure(figsize=(FIGURE_WIDTH_IN, height), facecolor="white")
    ax = fig.add_axes([left_in / FIGURE_WIDTH_IN, bottom_in / height,
                       1 - (left_in + right_in) / FIGURE_WIDTH_IN, plot_h / height])
    # y: rows from the top, each as tall as its label
    ys, y = [], plot_h
    for h in heights:
        ys.append(y - h / 2)
        y -= h
    ax.set_ylim(0, plot_h)
    ax.set_xlim(*xlim)
    left = blended_transform_factory(fig.transFigure, ax.transData)
    x_label = 0.1 / FIGURE_WIDTH_IN
    x_ci = 1 - (right_in - gap) / FIGURE_WIDTH_IN
    x_w = 1 - (0.1 + w_in) / FIGURE_WIDTH_IN
    for (_, r), y in zip(rows.iterrows(), ys):
        header = r["kind"] == "header"
        fig.text(x_label, y, r["label"].replace(ZWSP, ""), transform=left, ha="left", va="center", fontsize=FONT_PT,
                 fontweight="bold" if header else "normal")
        if r["ci"]:
            fig.text(x_ci, y, r["ci"], transform=left, ha="left", va="center", fontsize=FONT_PT)
        if weights and r["w"]:
            fig.text(x_w, y, r["w"], transform=left, ha="left", va="center", fontsize=FONT_PT)
        if r["kind"] == "study":
            ax.plot([r["ll"], r["hl"]], [y, y], color="0.35", lw=1.3, zorder=2)
            size = 40 if math.isnan(r["weight"]) else 30 + 250 * r["weight"]  # one study: a fixed square
            ax.scatter([r["est"]], [y], s=size, marker="s", color="#1f4e79", zorder=3)
        elif r["kind"] == "pooled":
            half = 0.3 * line_in
            ax.add_patch(Polygon([[r["ll"], y], [r["est"], y + half], [r["hl"], y], [r["est"], y - half]],
                                 closed=True, color="#b22222", zorder=3))
        elif r["kind"] == "pi":
            ax.plot([r["ll"], r["hl"]], [y, y], color="#b22222", lw=3, alpha=0.45, zorder=2, solid_capstyle="butt")
        elif r["kind"] == "strip":  # every study's estimate as a tick on one row
            xs = [float(x) for x in str(r["points"]).split(";")]
            ax.scatter(xs, [y] * len(xs), marker="|", s=160, linewidths=0.8, color="#1f4e79", alpha=0.6, zorder=3)
    head_y = plot_h + 0.12
    fig.text(x_label, head_y, t("fig_ylabel", lang), transform=left, ha="left", va="bottom", fontsize=FONT_PT,
             fontweight="bold")
    fig.text(x_ci, head_y, effect_head, transform=left, ha="left", va="bottom", fontsize=FONT_PT, fontweight="bold")
    if weights:
        fig.text(x_w, head_y, weight_head, transform=left, ha="left", va="bottom", fontsize=FONT_PT, fontweight="bold")
    ax.axvline(0, color="black", lw=0.8, zorder=1)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_yticks([])
    number_axis(ax.xaxis, lang)
    ax.tick_params(axis="x", labelsize=FONT_PT)
    ax.set_xlabel(t("fig_xlabel", lang, unit=_unit_label(unit, lang)), fontsize=FONT_PT)
    fig.text(0.1 / FIGURE_WIDTH_IN, 1 - 0.1 / height, title, ha="left", va="top", fontsize=11, fontweight="bold")
    if wrapped_footer:
        fig.text(0.1 / FIGURE_WIDTH_IN, 0.1 / height, "\n".join(wrapped_footer), fontsize=FONT_PT, ha="left",
                 va="bottom", color="0.2")
    return fig


def forest_footnote(rows: pd.DataFrame, lang: str) -> list[str]:
    """The footnote lines a forest plot needs: only the symbols and marks it actually draws."""
    nl = lang == "nl"
    notes = []
    if (rows["kind"] == "pooled").any():
        notes.append("Vierkanten naar gewicht in het random-effectsmodel; ruit: gepoolde schatting en interval; balk: "
                     "predictie-interval." if nl else
                     "Squares sized by random-effects weight; diamond: pooled estimate and interval; bar: prediction "
                     "interval.")
    if rows["ci"].str.contains("†").any():
        notes.append("† SE gereconstrueerd uit significantietekens." if nl else
                     "† SE reconstructed from significance marks.")
    if rows["ci"].str.contains("‡").any():
        notes.append("‡ SE uit aandelen en N (binomiaal, niet gecorrigeerd)." if nl else
                     "‡ SE from shares and N (binomial, unadjusted).")
    return [" ".join(notes)] if notes else []


def _plain(html_text: str) -> str:
    """Text of a short HTML fragment (for a figure)."""
    import re

    return re.sub(r"<[^>]+>", "", html_text)


def _wrap(line: str, width: int = 95) -> list[str]:
    import textwrap

    return textwrap.wrap(line, width) or [""]


def figure_cells(results) -> list[tuple[str, str, str]]:
    """(outcome_key, period, unit) of every figure, in a stable order."""
    if len(results.studies) == 0:
        return []
    keys = results.studies[["outcome_key", "period", "unit_h"]].drop_duplicates()
    keys = keys.sort_values(["outcome_key", "period", "unit_h"], kind="mergesort")
    return [(o, p, u) for o, p, u in keys.itertuples(index=False)]


def figure_name(outcome_key: str, period: str) -> str:
    """File name (without suffix) of one forest plot: ``forest_werk_einde_experiment``, ``forest_hours_gt12_m16``."""
    return f"forest_{outcome_key}_{period}"


def forest_title(results, outcome_key: str, period, lang: str = "en") -> str:
    """The title of one forest plot: the outcome's (or concept's) label in ``lang`` and the period."""
    if isinstance(period, (int, np.integer)):
        period = f"m{int(period)}"
    labels = {**outcome_labels(results.inputs.outcomes, lang), **concept_labels(results.inputs.concepts, lang)}
    label = labels.get(outcome_key) or outcome_key.replace("_", " ")
    return f"{label} — {period_label(period, results.inputs.periods, lang)}"


def forest_jobs(results, lang: str = "en", svg: bool = False) -> list:
    """One :class:`meta.present.figures.FigureJob` per outcome × horizon: PNG (read in the report), SVG only when asked."""
    from meta.present.figures import FigureJob

    jobs = []
    cells = cell_frames(results)
    for outcome_key, horizon, unit in figure_cells(results):
        name = figure_name(outcome_key, horizon)
        title = forest_title(results, outcome_key, horizon, lang)
        rows = forest_rows(results, outcome_key, horizon, unit, lang, cells)
        files = {"png": f"{name}.png", **({"svg": f"{name}.svg"} if svg else {})}
        jobs.append(FigureJob(name, "forest", title, files,
                              dict(rows=rows, unit=unit, title=title, level=float(results.plan.level), lang=lang,
                                   footer=list(rows.attrs.get("footer", []))),  # in the content key too
                              dict(dpi=PNG_DPI, fixed_box=True)))
    return jobs


def write_forest_plots(results, folder, lang: str = "en", svg: bool = True) -> dict:
    """Write one PNG (and SVG) per outcome × horizon; returns {name: {"png": path, "svg": path, "title": str}}."""
    return _write_now(forest_jobs(results, lang, svg), folder)


def _write_now(jobs: list, folder) -> dict:
    """Draw ``jobs`` into ``folder`` in this process (no reuse); {name: {format: path, "title": str}}."""
    from pathlib import Path

    from meta.present.figures import render

    for job in jobs:
        render(job, str(folder))
    return {job.name: {**{fmt: Path(folder) / f for fmt, f in job.files.items()}, "title": job.title} for job in jobs}


def _segments(ax, segments, colors, lw: float, alpha=None, zorder: float = 2):
    """Line segments [((x0, y0), (x1, y1))] as one LineCollection, styled as ``ax.plot`` styles a line (projecting
    caps, ``zorder`` 2); segments with a non-finite end are left out, as ``ax.plot`` leaves them out. Updates the
    data limits as ``ax.plot`` would."""
    from matplotlib.collections import LineCollection

    keep = [i for i, seg in enumerate(segments) if np.isfinite(np.asarray(seg, float)).all()]
    if not keep:
        return None
    lc = LineCollection([segments[i] for i in keep], colors=[colors[i] for i in keep], linewidths=lw, alpha=alpha,
                        capstyle="projecting", joinstyle="round", zorder=zorder)
    ax.add_collection(lc, autolim=True)
    ax.autoscale_view()
    return lc


def _points(ax, x, y, sizes, colors, zorder: float = 3, **kw):
    """Markers at (x, y) as one ``ax.scatter`` call (one artist for every point; drawn in the given order)."""
    return ax.scatter(np.asarray(x, float), np.asarray(y, float), s=sizes, c=list(colors), zorder=zorder, **kw)


SPEC_COLORS = {"negative": "#b22222", "positive": "#1f7a1f", "no significant effect": "#555555", "no estimate": "#bbbbbb"}


def draw_spec_curve(sens: pd.DataFrame, outcome_key: str, title: str, lang: str = "en", periods=None,
                    ranges: dict | None = None):
    """Specification curve for one outcome: a panel per (horizon, arm class), specifications sorted by estimate.

    Each point is one specification's pooled estimate with its interval, coloured by its verdict; the plan's
    main specification is the large black-edged marker; the strip under each panel names the specification group.
    ``ranges``: {unit: width} of the feasible range ±width (``range_high`` of ``pooled.csv``); an interval bound
    beyond it is drawn cut at ±width with a ▲/▼ there, so the axis stays within the feasible range.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = sens[sens["outcome_key"] == outcome_key]
    cells = s[["period", "arm_class", "unit_h"]].drop_duplicates().sort_values(
        ["period", "arm_class"], kind="mergesort")
    # fixed layout in inches (tight_layout costs more than drawing): per panel the plot and its rotated labels,
    # as deep as the longest label needs at 60°
    tick_labels = [f"{word('spec_group', g, lang)}: {spec_words(g, sp, lang)}" for g, sp in zip(s["spec_group"], s["spec"])]
    longest = max([text_width_in(x, MIN_FONT_PT) for x in tick_labels] + [1.0])
    # title line, legend line, then the first panel's title above its plot
    plot_in, labels_in, top_in = 1.5, 0.45 + longest * math.sin(math.radians(60)), 1.05
    height = len(cells) * (plot_in + labels_in) + top_in
    panels = [s[(s["period"] == cell["period"]) & (s["arm_class"] == cell["arm_class"])].sort_values(
        ["estimate", "spec_group", "spec"], kind="mergesort").reset_index(drop=True) for _, cell in cells.iterrows()]
    left_in = spec_left_margin([[f"{word('spec_group', g, lang)}: {spec_words(g, sp, lang)}"
                                 for g, sp in zip(c["spec_group"], c["spec"])] for c in panels])
    fig, axes = plt.subplots(len(cells), 1, figsize=(FIGURE_WIDTH_IN, height), squeeze=False)
    fig.subplots_adjust(left=left_in / FIGURE_WIDTH_IN, right=1 - SPEC_RIGHT_IN / FIGURE_WIDTH_IN,
                        top=1 - top_in / height, bottom=labels_in / height, hspace=labels_in / plot_in)
    clipped_at = None
    for ax, (_, cell), c in zip(axes[:, 0], cells.iterrows(), panels):
        x = np.arange(len(c))
        # one artist for all intervals and one for all points (not two per specification: drawing time)
        cols = [SPEC_COLORS.get(v, "#555555") for v in c["verdict"]]
        main = (c["spec_group"] == "main").to_numpy()
        width = (ranges or {}).get(cell["unit_h"], math.nan)
        lows, highs = c["ci_low"].to_numpy(float), c["ci_high"].to_numpy(float)
        if math.isfinite(width):
            cut_low, cut_high = lows < -width, highs > width
            lows, highs = np.where(cut_low, -width, lows), np.where(cut_high, width, highs)
            for cut, y, marker in ((cut_low, -width, "v"), (cut_high, width, "^")):
                if cut.any():
                    clipped_at = width
                    _points(ax, x[cut], np.full(int(cut.sum()), y), 30, [cols[i] for i in np.flatnonzero(cut)],
                            marker=marker, linewidths=0.0, zorder=3)
        _segments(ax, [((i, lo), (i, hi)) for i, lo, hi in zip(x, lows, highs)], cols, 1.4, alpha=0.8)
        _points(ax, x, c["estimate"], np.where(main, 70, 22), cols,
                edgecolors=["black" if m else col for m, col in zip(main, cols)],
                linewidths=np.where(main, 1.5, 0.0), zorder=3)
        ax.axhline(0, color="black", lw=0.8)
        number_axis(ax.yaxis, lang)
        ax.tick_params(axis="y", labelsize=FONT_PT)
        ax.set_xticks(x)
        ax.set_xticklabels([f"{word('spec_group', g, lang)}: {spec_words(g, sp, lang)}"
                            for g, sp in zip(c["spec_group"], c["spec"])],
                           rotation=SPEC_TICK_ANGLE, ha="right", fontsize=MIN_FONT_PT)
        ax.set_xlim(-0.6, len(c) - 0.4)
        ax.set_title(f"{period_label(cell['period'], periods, lang)} · {arm_class_label(cell['arm_class'], lang)}"
                     f" · {_unit_label(cell['unit_h'], lang)}", fontsize=FONT_PT, loc="left")
        ax.grid(axis="y", color="0.9")
    handles = [plt.Line2D([], [], marker="o", ls="", color=col, label=word("verdict", v, lang))
               for v, col in SPEC_COLORS.items() if v != "no estimate"]
    if clipped_at is not None:
        handles.append(plt.Line2D([], [], marker="^", ls="", color="#555555",
                                  label=t("fig_spec_clipped", lang, width=fmt_g(clipped_at, lang))))
    fig.legend(handles=handles, loc="upper right", bbox_to_anchor=(1 - SPEC_RIGHT_IN / FIGURE_WIDTH_IN,
                                                                   1 - 0.38 / height),
               fontsize=MIN_FONT_PT, frameon=False, ncol=len(handles), borderaxespad=0.0,
               **({"columnspacing": 1.2} if len(handles) > 3 else {}))
    fig.text(0.1 / FIGURE_WIDTH_IN, 1 - 0.1 / height, title, ha="left", va="top", fontsize=11, fontweight="bold")
    return fig


SPEC_RIGHT_IN = 0.16  # right margin of a specification curve (inches)
SPEC_TICK_ANGLE = 60  # the tick labels' rotation (degrees)


def spec_left_margin(panels: list[list[str]], min_in: float = 0.72) -> float:
    """Left margin (inches) that keeps every rotated tick label of a specification curve inside the figure.

    A label of width w at 60°, right-aligned under its tick, reaches w·cos 60° + h·sin 60° to the left of the tick
    (h: the text height). Tick i of n sits at fraction f = (i + 0.6)/n of the plot width A = W − right − left, so
    the label stays inside when left ≥ (reach − f·(W − right))/(1 − f); the margin is the largest such bound
    (at least ``min_in``, room for the y tick labels) plus 0.05 in.
    """
    angle = math.radians(SPEC_TICK_ANGLE)
    h = 1.2 * MIN_FONT_PT / 72
    need = min_in
    for labels in panels:
        n = len(labels)
        for i, label in enumerate(labels):
            f = (i + 0.6) / n
            reach = text_width_in(label, MIN_FONT_PT) * math.cos(angle) + h * math.sin(angle)
            need = max(need, (reach - f * (FIGURE_WIDTH_IN - SPEC_RIGHT_IN)) / (1 - f) + 0.05)
    return need


def spec_curve_jobs(sens: pd.DataFrame, outcomes: pd.DataFrame, lang: str = "en", periods=None,
                    concepts=None, ranges: dict | None = None) -> list:
    """One specification-curve job per outcome, PNG only: read in the report; the numbers are in sensitivity.csv.

    ``periods`` and ``concepts`` (the registers) label the panels and titles at the concept level; ``ranges``
    ({unit: width}, :func:`feasible_ranges`) cuts intervals at the feasible range.
    """
    from meta.present.figures import FigureJob

    label = {**outcome_labels(outcomes, lang), **concept_labels(concepts, lang)}
    jobs = []
    for outcome_key in sorted(set(sens["outcome_key"])):
        name = f"specification_curve_{outcome_key}"
        title = f"{label.get(outcome_key) or outcome_key}: " + ("specificatiecurve" if lang == "nl"
                                                                 else "specification curve")
        part = sens[sens["outcome_key"] == outcome_key].reset_index(drop=True)
        jobs.append(FigureJob(name, "spec_curve", title, {"png": f"{name}.png"},
                              dict(sens=part, outcome_key=outcome_key, title=title, lang=lang, periods=periods,
                                   ranges=ranges),
                              dict(dpi=PNG_DPI)))
    return jobs


def write_spec_curves(sens: pd.DataFrame, outcomes: pd.DataFrame, folder, lang: str = "en") -> dict:
    """One specification-curve figure (PNG) per outcome; returns {name: {"png", "title"}}."""
    return _write_now(spec_curve_jobs(sens, outcomes, lang), folder)


def components_job(table: pd.DataFrame, lang: str = "en", svg: bool = False, outcomes: pd.DataFrame | None = None,
                   concepts: pd.DataFrame | None = None, periods: pd.DataFrame | None = None):
    """The component meta-regression figure job (PNG; SVG only when asked); labels from ``outcomes``, ``concepts``
    and ``periods``."""
    from meta.present.figures import FigureJob

    title = ("Componentenmodel: effect per onderdeel" if lang == "nl" else "Component model: effect of each component")
    files = {"png": "components.png", **({"svg": "components.svg"} if svg else {})}
    label = ({**outcome_labels(outcomes, lang), **concept_labels(concepts, lang)} if outcomes is not None else None)
    return FigureJob("components", "components", title, files,
                     dict(table=table, title=title, lang=lang, outcome_label=label, periods=periods),
                     dict(dpi=PNG_DPI, tight=True))


def write_components_figure(table: pd.DataFrame, folder, lang: str = "en", svg: bool = True,
                            outcomes: pd.DataFrame | None = None) -> dict:
    """The component meta-regression figure (PNG and SVG)."""
    return _write_now([components_job(table, lang, svg, outcomes)], folder)


def feasible_ranges(pooled: pd.DataFrame) -> dict:
    """{unit: width}: the feasible range ±width of a difference in each unit, from ``pooled.csv``'s
    ``range_high`` (units without a range are absent)."""
    if "range_high" not in pooled or "unit_h" not in pooled:
        return {}
    r = pooled[["unit_h", "range_high"]].dropna().drop_duplicates("unit_h").sort_values("unit_h")
    return {str(u): float(w) for u, w in zip(r["unit_h"], r["range_high"]) if math.isfinite(float(w))}


def figure_jobs(results, lang: str = "en", svg: bool = False) -> tuple[list, list]:
    """(forest-plot jobs, other jobs: specification curves, the component figure, the overview) of a run."""
    extra = spec_curve_jobs(results.sensitivity, results.inputs.outcomes, lang, results.inputs.periods,
                            results.inputs.concepts, feasible_ranges(results.pooled))
    extra.append(components_job(results.components, lang, svg, results.inputs.outcomes, results.inputs.concepts,
                                results.inputs.periods))
    extra.append(overview_job(results, lang, svg))
    return forest_jobs(results, lang, svg), extra


MUNICIPALITY_COLORS = ("#1f4e79", "#c55a11", "#548235", "#7030a0", "#bf9000", "#2e75b6", "#843c0c", "#375623")


def overview_rows(results, lang: str = "en") -> pd.DataFrame:
    """The rows of the overview figure: per arm class (plan order) a header, then one row per outcome × horizon.

    Each cell row carries its studies (municipality, yi, lower, upper) and the pooled headline estimate with its
    interval when k >= 2 (``pooled``), in the order of the Kerntabel (arm class, then the plan's outcomes).
    """
    from meta.analyses.tables import cell_order

    plan = results.plan
    z = float(ndtri(0.5 + plan.level / 200))  # = scipy.stats.norm.ppf, without importing scipy.stats
    label = {**outcome_labels(results.inputs.outcomes, lang), **concept_labels(results.inputs.concepts, lang)}
    p = cell_order(results.pooled, plan) if len(results.pooled) else results.pooled
    rows = []
    cells = cell_frames(results)
    for arm_class, g in p.groupby("arm_class", sort=False):
        rows.append(dict(kind="header", label=arm_class_label(arm_class, lang).capitalize(), unit_h="", studies=[],
                         pooled=None))
        for _, r in g.iterrows():
            s = cells.get((r["outcome_key"], r["period"], arm_class, r["unit_h"]), (results.studies.iloc[:0],))[0]
            studies = [(m, y, y - z * se, y + z * se) for m, y, se in zip(s["municipality"], s["yi"], s["sei"])]
            pooled = None
            if int(r["k"]) >= 2:
                bad = fsr.impossible(r)
                pooled = (r["estimate"], np.nan if "ci_low" in bad else r["ci_low"],
                          np.nan if "ci_high" in bad else r["ci_high"])
            rows.append(dict(kind="cell", unit_h=r["unit_h"], studies=studies, pooled=pooled,
                             label=f"{label.get(r['outcome_key'], r['outcome_key'])}, "
                                   f"{period_label(r['period'], results.inputs.periods, lang)}"))
    return pd.DataFrame(rows, columns=["kind", "label", "unit_h", "studies", "pooled"])


def draw_overview(results, lang: str = "en"):
    """The overview figure of a run (see :func:`draw_overview_rows`)."""
    munis = results.inputs.municipalities
    return draw_overview_rows(overview_rows(results, lang), list(zip(munis["municipality"], munis["name"])),
                              float(results.plan.level), lang)


def draw_overview_rows(rows: pd.DataFrame, municipalities: list, level: float, lang: str = "en"):
    """One figure for the whole answer, like the CPB's comparison: per arm class and outcome every municipality's
    estimate with its interval (a coloured square per municipality) and the pooled estimate (a diamond, k >= 2).

    Two panels: shares in percentage points, survey scales in scale points (different scales per outcome, named
    in the label). Print size ``FIGURE_WIDTH_IN`` wide, no text below ``MIN_FONT_PT``. ``rows`` from
    :func:`overview_rows`; ``municipalities`` is [(code, name)] in register order (colours follow it).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Polygon

    names = dict(municipalities)
    codes = [m for m, _ in municipalities]
    color = {m: MUNICIPALITY_COLORS[i % len(MUNICIPALITY_COLORS)] for i, m in enumerate(codes)}
    present = [m for m in codes if any(st[0] == m for sts in rows["studies"] for st in sts)]
    panels = []
    for is_pp in (True, False):
        keep, current = [], None
        for _, r in rows.iterrows():
            if r["kind"] == "header":
                current = r
            elif (r["unit_h"] == "percentage_points") == is_pp:
                if current is not None:
                    keep.append(current)
                    current = None
                keep.append(r)
        if keep:
            panels.append((is_pp, pd.DataFrame(keep)))
    line_in = 1.25 * FONT_PT / 72
    row_in = 0.1 + line_in * 1.7
    wrapped = {id(panel): [wrap_label(x, 40, "  " if k == "cell" else "") for x, k in zip(panel["label"], panel["kind"])]
               for _, panel in panels}
    label_in = max([text_width_in(x, weight="bold") for _, panel in panels for x in wrapped[id(panel)]] + [1.0])
    left_in, right_in = 0.1 + label_in + 0.15, 0.2
    panel_h = [len(panel) * row_in for _, panel in panels]
    top_in, gap_in, bottom_in = 0.45, 0.7, 0.35
    height = top_in + sum(panel_h) + gap_in * len(panels) + bottom_in
    fig = plt.figure(figsize=(FIGURE_WIDTH_IN, height), facecolor="white")
    y_top = height - top_in
    for (is_pp, panel), h in zip(panels, panel_h):
        ax = fig.add_axes([left_in / FIGURE_WIDTH_IN, (y_top - h) / height,
                           1 - (left_in + right_in) / FIGURE_WIDTH_IN, h / height])
        n = len(panel)
        values = [v for sts in panel["studies"] for st in sts for v in st[1:]]
        values += [v for pl in panel["pooled"] if pl is not None for v in pl if np.isfinite(v)]
        lo, hi = min(values + [0.0]), max(values + [0.0])
        span = max(hi - lo, 1e-9)
        ax.set_xlim(lo - 0.05 * span, hi + 0.05 * span)
        ax.set_ylim(-0.5, n - 0.5)
        segs, pts, cols = [], [], []  # every study of the panel: one artist for the lines, one for the squares
        for i, ((_, r), text) in enumerate(zip(panel.iterrows(), wrapped[id(panel)])):
            y = n - 1 - i
            header = r["kind"] == "header"
            ax.text(-(label_in + 0.15) / ((1 - (left_in + right_in) / FIGURE_WIDTH_IN) * FIGURE_WIDTH_IN), y, text,
                    transform=ax.get_yaxis_transform(), ha="left", va="center", fontsize=FONT_PT,
                    fontweight="bold" if header else "normal")
            if header:
                ax.axhline(y + 0.5, color="0.8", lw=0.6)
                continue
            k = len(r["studies"])
            pooled_row = r["pooled"] is not None
            # studies above, the diamond below them in the same row
            offsets = (np.linspace(0.32, -0.05, k) if pooled_row else np.linspace(0.22, -0.22, k)) if k > 1 else [0.0]
            for (m, est, l, u), dy in zip(r["studies"], offsets):
                segs.append(((l, y + dy), (u, y + dy)))
                pts.append((est, y + dy))
                cols.append(color[m])
            if r["pooled"] is not None:
                est, l, u = r["pooled"]
                l = l if np.isfinite(l) else ax.get_xlim()[0]
                u = u if np.isfinite(u) else ax.get_xlim()[1]
                ax.add_patch(Polygon([[l, y - 0.3], [est, y - 0.19], [u, y - 0.3], [est, y - 0.41]], closed=True,
                                     color="#b22222", zorder=4))
        _segments(ax, segs, cols, 1.4, zorder=2)
        _points(ax, [p[0] for p in pts], [p[1] for p in pts], 28, cols, marker="s", zorder=3)
        ax.axvline(0, color="black", lw=0.8, zorder=1)
        ax.set_yticks([])
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        number_axis(ax.xaxis, lang)
        ax.tick_params(axis="x", labelsize=FONT_PT)
        unit = t("unit_pp", lang) if is_pp else (
            "schaalpunten; schaal per uitkomst" if lang == "nl" else "scale points; scale per outcome")
        ax.set_xlabel(t("fig_xlabel", lang, unit=unit), fontsize=FONT_PT)
        y_top -= h + gap_in
    handles = [Line2D([], [], marker="s", ls="-", color=color[m], label=names[m]) for m in present]
    if any(pl is not None for pl in rows["pooled"]):
        handles.append(Line2D([], [], marker="D", ls="", color="#b22222",
                              label="gepoold (k ≥ 2)" if lang == "nl" else "pooled (k ≥ 2)"))
    fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.1 / FIGURE_WIDTH_IN, 0.05 / height),
               ncol=len(handles), fontsize=FONT_PT, frameon=False)
    title = ("Overzicht: effect per armklasse en uitkomst, per gemeente met "
             f"{fmt_g(level, lang)}%-interval" if lang == "nl" else
             f"Overview: effect per arm class and outcome, per municipality with {fmt_g(level, lang)}% interval")
    fig.text(0.1 / FIGURE_WIDTH_IN, 1 - 0.1 / height, title, ha="left", va="top", fontsize=11, fontweight="bold")
    return fig


def overview_job(results, lang: str = "en", svg: bool = False):
    """The overview figure job (PNG, read in the report; SVG only when asked)."""
    from meta.present.figures import FigureJob

    title = "Overzicht per armklasse en uitkomst" if lang == "nl" else "Overview per arm class and outcome"
    munis = results.inputs.municipalities
    files = {"png": "overview.png", **({"svg": "overview.svg"} if svg else {})}
    return FigureJob("overview", "overview", title, files,
                     dict(rows=overview_rows(results, lang), municipalities=list(zip(munis["municipality"],
                                                                                     munis["name"])),
                          level=float(results.plan.level), lang=lang), dict(dpi=PNG_DPI))


def write_overview_figure(results, folder, lang: str = "en", svg: bool = True) -> dict:
    """The overview figure (PNG and SVG); returns {"overview": {"png", "svg", "title"}}."""
    return _write_now([overview_job(results, lang, svg)], folder)

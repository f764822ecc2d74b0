"""Specification curves: every pooled cell's estimate under every alternative specification of the sensitivity
analysis, one panel per outcome."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from meta.analyses.sensitivity import repeats
from meta.i18n import (arm_class_label, concept_labels, fmt_g, outcome_labels, period_label, spec_words, t,
                       unit_words, word)
from meta.present.drawing import (FIGURE_WIDTH_IN, MIN_FONT_PT, FONT_PT, PNG_DPI, draw_points, draw_segments,
                                  new_figure, number_axis, text_width_in, wrap_line, write_now)
from meta.present.fewstudies_report import UPPER_MARK


SPEC_COLORS = {"negative": "#b22222", "positive": "#1f7a1f", "no significant effect": "#555555", "no estimate": "#bbbbbb"}
#: A specification listed but not counted in the robustness verdict (``not_counted`` of sensitivity.csv): a hollow
#: grey marker, whatever its interval says.
NOT_COUNTED_COLOR = "#999999"


def not_counted(c: pd.DataFrame) -> np.ndarray:
    """Per row: whether the specification is left out of the robustness verdict (a reason in ``not_counted``, as
    :func:`meta.analyses.sensitivity.robustness` reads it)."""
    if "not_counted" not in c:
        return np.zeros(_length(c), bool)
    return np.array([not pd.isna(v) and str(v) != "" for v in _values(c, "not_counted")], bool)


def _values(c, name: str) -> list:
    """Column ``name`` of ``c`` (a frame, or a panel's {column: list} from :func:`_panels`) as a list."""
    return c[name].tolist() if isinstance(c, pd.DataFrame) else c[name]


def _length(c) -> int:
    """The number of rows of ``c`` (a frame, or a panel's {column: list})."""
    return len(c) if isinstance(c, pd.DataFrame) else len(next(iter(c.values()), []))


#: A row whose interval is an outer bound (one study whose SE is only an upper bound, ``se_upper_bound_only`` of
#: sensitivity.csv): light grey, † after its label, never a verdict colour.
UPPER_COLOR = "#bdbdbd"


def upper_bound(c: pd.DataFrame) -> np.ndarray:
    """Per row: whether its interval is an outer bound (``se_upper_bound_only``; False where the column is absent)."""
    if "se_upper_bound_only" not in c:
        return np.zeros(_length(c), bool)
    return np.array([False if pd.isna(v) else bool(v) for v in _values(c, "se_upper_bound_only")], bool)


def spec_labels(c: pd.DataFrame, lang: str) -> list[str]:
    """The tick label of every row: ``group: specification``, with † (:data:`UPPER_MARK`) for an outer bound."""
    return [f"{word('spec_group', g, lang)}: {spec_words(g, sp, lang)}{' ' + UPPER_MARK if u else ''}"
            for g, sp, u in zip(c["spec_group"], c["spec"], upper_bound(c))]


def upper_note(lang: str) -> list[str]:
    """The footnote lines of a curve with an outer bound: † (light grey, no verdict) and the forest plots' note."""
    return wrap_line(f"{UPPER_MARK} {t('fig_spec_upper_bound', lang)} {t('fig_note_upper_bound', lang)}", 120)


def draw_spec_curve(sens: pd.DataFrame, outcome_key: str, title: str, lang: str = "en", periods=None,
                    ranges: dict | None = None):
    """Specification curve for one outcome: a panel per (horizon, arm class), specifications sorted by estimate.

    Each point is one specification's pooled estimate with its interval, coloured by its verdict; the plan's
    main specification is the large black-edged marker; the strip under each panel names the specification group.
    ``ranges``: {unit: width} of the feasible range ±width (``range_high`` of ``pooled.csv``); an interval bound
    beyond it is drawn cut at ±width with a ▲/▼ there, so the axis stays within the feasible range. A
    specification not counted in the robustness verdict (:func:`not_counted`) is a hollow grey marker; a row whose
    interval is an outer bound (:func:`upper_bound`) is light grey with † after its label and a footnote.
    """
    from matplotlib.lines import Line2D

    s = sens[sens["outcome_key"] == outcome_key]
    cells = s[["period", "arm_class", "unit_h"]].drop_duplicates().sort_values(
        ["period", "arm_class"], kind="mergesort")
    # fixed layout in inches (tight_layout costs more than drawing): per panel the plot and its rotated labels,
    # as deep as the longest label needs at 60°
    panels = _panels(s, cells)
    tick_labels = [spec_labels(c, lang) for c in panels]  # every row of s is in a panel
    longest = max([text_width_in(x, MIN_FONT_PT) for labels in tick_labels for x in labels] + [1.0])
    note = upper_note(lang) if upper_bound(s).any() else []
    # title line, legend line, then the first panel's title above its plot; under the last panel the footnote
    plot_in, labels_in, top_in = 1.5, 0.45 + longest * math.sin(math.radians(60)), 1.05
    note_in = 0.17 * len(note) + (0.05 if note else 0.0)
    height = len(cells) * (plot_in + labels_in) + top_in + note_in
    left_in = spec_left_margin(tick_labels)
    fig = new_figure(height)
    axes = fig.subplots(len(cells), 1, squeeze=False)
    fig.subplots_adjust(left=left_in / FIGURE_WIDTH_IN, right=1 - SPEC_RIGHT_IN / FIGURE_WIDTH_IN,
                        top=1 - top_in / height, bottom=(labels_in + note_in) / height, hspace=labels_in / plot_in)
    if note:
        fig.text(0.1 / FIGURE_WIDTH_IN, 0.08 / height, "\n".join(note), ha="left", va="bottom",
                 fontsize=MIN_FONT_PT)
    clipped_at = None
    for ax, cell, c, labels in zip(axes[:, 0], cells.to_dict("records"), panels, tick_labels):
        width = _draw_spec_panel(ax, cell, c, labels, (ranges or {}).get(cell["unit_h"], math.nan), lang, periods)
        clipped_at = width if width is not None else clipped_at
    drawn = {v for c in panels for v, skip, upper in zip(c["verdict"], not_counted(c), upper_bound(c))
             if not (skip or upper)}  # the verdicts drawn in their colour (not grey: not counted, outer bound)
    handles = [Line2D([], [], marker="o", ls="", color=col, label=word("verdict", v, lang))
               for v, col in SPEC_COLORS.items() if v != "no estimate" and v in drawn]
    if any(g == "main" for c in panels for g in c["spec_group"]):  # the large black-edged marker
        handles.append(Line2D([], [], marker="o", ls="", markersize=math.sqrt(70), markerfacecolor="white",
                              markeredgecolor="black", markeredgewidth=1.5, label=t("fig_spec_main", lang)))
    if any(not_counted(c).any() for c in panels):
        handles.append(Line2D([], [], marker="o", ls="", color=NOT_COUNTED_COLOR, markerfacecolor="white",
                                  label=t("fig_spec_not_counted", lang)))
    if clipped_at is not None:
        handles.append(Line2D([], [], marker="^", ls="", color="#555555",
                                  label=t("fig_spec_clipped", lang, width=fmt_g(clipped_at, lang))))
    _legend_that_fits(fig, handles, (1 - SPEC_RIGHT_IN / FIGURE_WIDTH_IN, 1 - 0.38 / height),
                      FIGURE_WIDTH_IN - SPEC_RIGHT_IN - 0.1)
    fig.text(0.1 / FIGURE_WIDTH_IN, 1 - 0.1 / height, title, ha="left", va="top", fontsize=11, fontweight="bold")
    return fig



def _panels(s: pd.DataFrame, cells: pd.DataFrame) -> list[dict]:
    """Per row of ``cells`` its panel: the rows of ``s`` of its period and arm class sorted by estimate,
    specification group and specification, as {column: list}. ``s`` is sorted once (stably, so each panel's rows
    keep the order sorting them alone gives) and then walked as plain lists."""
    ordered = s.sort_values(["estimate", "spec_group", "spec"], kind="mergesort")
    columns = {c: ordered[c].tolist() for c in ordered.columns}
    keys = list(zip(columns["period"], columns["arm_class"]))
    panels = []
    for period, arm_class in zip(cells["period"].tolist(), cells["arm_class"].tolist()):
        take = [i for i, k in enumerate(keys) if k == (period, arm_class)]
        panels.append({c: [values[i] for i in take] for c, values in columns.items()})
    return panels


def _draw_spec_panel(ax, cell: dict, c: dict, labels: list[str], width: float, lang: str, periods) -> float | None:
    """One panel of a specification curve (``c``: its rows from :func:`_panels`, ``labels`` their
    :func:`spec_labels`): every specification's interval and estimate (one artist each for all intervals and all
    points), the plan's own specification as the large black-edged marker, interval bounds beyond ±``width`` cut
    there with a ▲/▼. Returns ``width`` when something was cut, else None."""
    clipped_at = None
    x = np.arange(_length(c))
    # one artist for all intervals and one for all points (not two per specification: drawing time)
    skip, upper = not_counted(c), upper_bound(c)
    cols = [UPPER_COLOR if u else NOT_COUNTED_COLOR if sk else SPEC_COLORS.get(v, "#555555")
            for v, sk, u in zip(c["verdict"], skip, upper)]
    skip = skip & ~upper
    main = np.array([g == "main" for g in c["spec_group"]], bool)
    lows, highs = np.asarray(c["ci_low"], float), np.asarray(c["ci_high"], float)
    if math.isfinite(width):
        cut_low, cut_high = lows < -width, highs > width
        lows, highs = np.where(cut_low, -width, lows), np.where(cut_high, width, highs)
        for cut, y, marker in ((cut_low, -width, "v"), (cut_high, width, "^")):
            if cut.any():
                clipped_at = width
                draw_points(ax, x[cut], np.full(int(cut.sum()), y), 30, [cols[i] for i in np.flatnonzero(cut)],
                            marker=marker, linewidths=0.0, zorder=3)
    draw_segments(ax, [((i, lo), (i, hi)) for i, lo, hi in zip(x, lows, highs)], cols, 1.4, alpha=0.8)
    draw_points(ax, x, c["estimate"], np.where(main, 70, 22),
                ["white" if sk else col for sk, col in zip(skip, cols)],
                edgecolors=["black" if m else col for m, col in zip(main, cols)],
                linewidths=np.where(main, 1.5, np.where(skip, 1.2, 0.0)), zorder=3)
    ax.axhline(0, color="black", lw=0.8)
    number_axis(ax.yaxis, lang)
    ax.tick_params(axis="y", labelsize=FONT_PT)
    spec_ticks(ax, x, labels)
    ax.set_xlim(-0.6, len(x) - 0.4)
    # y=1.0 where matplotlib puts a title over an axes without top ticks, given explicitly: matplotlib then skips
    # laying out every tick label to check that (a quarter of a curve's drawing time; the same pixels)
    ax.set_title(f"{period_label(cell['period'], periods, lang)} · {arm_class_label(cell['arm_class'], lang)}"
                 f" · {unit_words(cell['unit_h'], lang)}", fontsize=FONT_PT, loc="left", y=1.0)
    for axis in (ax.xaxis, ax.yaxis):  # no axis labels: a fixed place for the empty label, so matplotlib does not
        axis.set_label_coords(0.5, 0.0)  # lay out the tick labels to place it
    ax.grid(axis="y", color="0.9")
    return clipped_at


def spec_ticks(ax, x, labels: list[str]) -> None:
    """The x ticks of a panel, one per specification with its label, drawn as matplotlib draws
    ``ax.set_xticks(x); ax.set_xticklabels(labels, rotation=SPEC_TICK_ANGLE, ha="right")`` (the same marks, text,
    transforms and pixels) but as one line of tick marks and plain texts: matplotlib's Tick objects (a deep copy and
    a layout pass per tick) cost a third of a curve's drawing time."""
    import matplotlib as mpl
    from matplotlib.lines import TICKDOWN, Line2D

    ax.set_xticks([])
    size, pad = mpl.rcParams["xtick.major.size"], mpl.rcParams["xtick.major.pad"]
    color = mpl.rcParams["xtick.color"]
    ax.add_artist(Line2D(np.asarray(x, float), np.zeros(len(x)), transform=ax.get_xaxis_transform("tick1"),
                         marker=TICKDOWN, linestyle="none", color=color, markeredgecolor=color, markersize=size,
                         markeredgewidth=mpl.rcParams["xtick.major.width"], clip_on=False))
    label_color = mpl.rcParams["xtick.labelcolor"]
    trans = ax.get_xaxis_text1_transform(size + pad)[0]
    for xi, label in zip(x, labels):
        ax.text(float(xi), 0, label, transform=trans, rotation=SPEC_TICK_ANGLE, ha="right", va="top",
                fontsize=MIN_FONT_PT, color=color if label_color == "inherit" else label_color, clip_on=False)


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


#: A cell gets a panel in its outcome's specification curve only when some specification pools at least this many
#: studies: with one study the estimator, test, prior and leave-one-out specifications all return that study, so
#: a curve would repeat one point (its range and what changes it are in the report's robustness table, every
#: specification in sensitivity.csv).
CURVE_MIN_K = 2


def _legend_that_fits(fig, handles: list, anchor: tuple, width_in: float):
    """The figure's legend of ``handles`` at its upper right corner ``anchor`` (figure fraction), in as many columns
    (at most one per entry) as fit ``width_in`` inches, measured as matplotlib lays the legend out: one row when it
    fits, else two or more (a Dutch legend of four entries in one row was 8.3 inches wide on an 8-inch figure, its
    first entry cut off at the left edge)."""
    renderer = fig.canvas.get_renderer()
    for n in range(len(handles), 0, -1):
        legend = fig.legend(handles=handles, loc="upper right", bbox_to_anchor=anchor, fontsize=MIN_FONT_PT,
                            frameon=False, borderaxespad=0.0, ncol=n, **({"columnspacing": 1.2} if n > 3 else {}))
        if n == 1 or legend.get_window_extent(renderer).width / fig.dpi <= width_in:
            return legend
        legend.remove()


def curve_cells(sens: pd.DataFrame) -> pd.Series:
    """Per row of ``sens``: whether its cell (outcome, period, arm class) is drawn in a specification curve, i.e.
    some specification of the cell pools :data:`CURVE_MIN_K` or more studies (every row when ``k`` is absent)."""
    if "k" not in sens or len(sens) == 0:
        return pd.Series(True, index=sens.index)
    k = pd.to_numeric(sens["k"], errors="coerce").fillna(0)
    most = k.groupby([sens["outcome_key"], sens["period"], sens["arm_class"]], sort=False).transform("max")
    return most >= CURVE_MIN_K


def spec_curve_jobs(sens: pd.DataFrame, outcomes: pd.DataFrame, lang: str = "en", periods=None,
                    concepts=None, ranges: dict | None = None, order=None) -> list:
    """One specification-curve job per outcome with a cell to draw (:func:`curve_cells`), PNG only: read in the
    report; the numbers are in sensitivity.csv.

    ``periods`` and ``concepts`` (the registers) label the panels and titles at the concept level; ``ranges``
    ({unit: width}, :func:`feasible_ranges`) cuts intervals at the feasible range; ``order``: a sort key of outcome
    codes (:func:`meta.analyses.tables.plan_order`), else by code.
    """
    from meta.present.figures import FigureJob

    label = {**outcome_labels(outcomes, lang), **concept_labels(concepts, lang)}
    jobs = []
    drawn = sens[curve_cells(sens) & ~repeats(sens)]  # a specification that repeats another would be its point again
    for outcome_key in sorted(set(drawn["outcome_key"]), key=order or (lambda o: o)):
        name = f"specification_curve_{outcome_key}"
        title = f"{label.get(outcome_key) or outcome_key}: " + ("specificatiecurve" if lang == "nl"
                                                                 else "specification curve")
        part = drawn[drawn["outcome_key"] == outcome_key].reset_index(drop=True)
        jobs.append(FigureJob(name, "spec_curve", title, {"png": f"{name}.png"},
                              dict(sens=part, outcome_key=outcome_key, title=title, lang=lang, periods=periods,
                                   ranges=ranges),
                              dict(dpi=PNG_DPI)))
    return jobs


def write_spec_curves(sens: pd.DataFrame, outcomes: pd.DataFrame, folder, lang: str = "en") -> dict:
    """One specification-curve figure (PNG) per outcome; returns {name: {"png", "title"}}."""
    return write_now(spec_curve_jobs(sens, outcomes, lang), folder)

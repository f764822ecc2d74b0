"""The component figure: each component's estimate with its interval, per outcome (:func:`draw_components`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from meta.i18n import period_label, t, word, word_list
from meta.present.drawing import (FIGURE_WIDTH_IN, FONT_PT, MIN_FONT_PT, draw_points, draw_segments, effect_axis,
                                  new_figure, text_width_in, wrap_label, wrap_line)
from meta.present.fewstudies_report import UPPER_MARK, open_square_note


#: Row height in inches: one line of FONT_PT text (1.25 line spacing) and a little air.
LINE_IN = 1.25 * FONT_PT / 72
ROW_PAD_IN = 0.07


def outer_bound_models(studies: pd.DataFrame) -> set:
    """{(outcome_key, period)} of the component models whose every study's SE is only an upper bound
    (``se_upper_bound_only``): their intervals are outer bounds, marked † in the report's table and the figure."""
    if len(studies) == 0 or "se_upper_bound_only" not in studies:
        return set()
    every = studies.groupby(["outcome_key", "period"])["se_upper_bound_only"].all()
    return set(every[every].index)


def component_rows(table: pd.DataFrame, lang: str, outcome_label: dict | None = None,
                   periods: pd.DataFrame | None = None, upper=()) -> list[tuple[bool, list[dict]]]:
    """The rows of the figure as panels [(is percentage points, rows)]: per outcome × period a bold header naming
    the outcome, period and the municipalities (named up to six, else counted; components.csv lists them), then
    one row per fitted component with its estimate and interval. Shares and scales are separate panels, each with
    its own axis, so a scale effect of 0.05 is not drawn at the scale of a 2-point share effect. A model in
    ``upper`` (:func:`outer_bound_models`) has † after its header and its components' ``upper`` set."""
    upper = {tuple(u) for u in upper}
    columns = ("component", "outcome_key", "period", "municipalities", "estimate", "ci_low", "ci_high", "unit_h")
    records = [dict(zip(columns, values)) for values in zip(*(table[c].tolist() if c in table else
                                                              [None] * len(table) for c in columns))]
    fitted = [r for r in records if r["component"] != ""]
    panels = []
    for is_pp in (True, False):
        groups: dict = {}  # (outcome, period): its rows, in order of first appearance (groupby, sort=False)
        for r in fitted:
            if ("unit_h" not in table or (r["unit_h"] == "percentage_points") == is_pp) and not (
                    pd.isna(r["outcome_key"]) or pd.isna(r["period"])):  # groupby leaves out missing keys
                groups.setdefault((r["outcome_key"], r["period"]), []).append(r)
        rows = []
        for (outcome, period), g in groups.items():
            munis = list(dict.fromkeys(m.capitalize() for r in g for m in str(r["municipalities"]).split(";") if m))
            who = word_list(munis, lang) if len(munis) <= 6 else t("n_municipalities", lang, n=len(munis))
            outer = (outcome, period) in upper
            rows.append(dict(kind="header", upper=outer, label=wrap_label(
                f"{(outcome_label or {}).get(outcome, outcome)}, {period_label(str(period), periods, lang)} ({who})"
                + (f" {UPPER_MARK}" if outer else ""), width=50, indent="")))
            for r in g:
                rows.append(dict(kind="component", estimate=float(r["estimate"]), ci_low=float(r["ci_low"]),
                                 ci_high=float(r["ci_high"]), upper=outer,
                                 label=wrap_label(word("component", r["component"].replace("_", " "), lang), 50)))
        if rows:
            panels.append((is_pp, rows))
    return panels


def draw_components(table: pd.DataFrame, title: str, lang: str = "en", outcome_label: dict | None = None,
                    periods: pd.DataFrame | None = None, upper=()):
    """Forest-style figure of the component estimates of every identifiable model: per outcome × period a header,
    then one row per component (its estimate and interval); shares and scales in separate panels.

    ``outcome_label`` maps outcome codes to their labels in ``lang`` (the code is shown when missing); ``periods``
    (the period register) names each period as the report does (:func:`meta.i18n.period_label`); ``upper``: the
    models whose intervals are outer bounds (:func:`outer_bound_models`), drawn with open squares, † after their
    header and a footnote, as the overview draws such studies. Print size ``FIGURE_WIDTH_IN`` wide in a fixed layout
    (inches; no tight box, no text below ``MIN_FONT_PT``).
    """
    panels = component_rows(table, lang, outcome_label, periods, upper)
    labels = [r["label"] for _, rows in panels for r in rows]
    label_in = max([text_width_in(x, weight="bold") for x in labels] + [1.5])
    note = wrap_line(open_square_note(lang), 120) if any(r.get("upper") for _, rows in panels for r in rows) else []
    left_in, right_in, top_in, axis_in = 0.1 + label_in + 0.15, 0.25, 0.5, 0.75
    bottom_in = 0.1 + (0.17 * len(note) + 0.05 if note else 0.0)
    heights = [[ROW_PAD_IN + LINE_IN * (r["label"].count("\n") + 1) for r in rows] for _, rows in panels]
    height = top_in + sum(sum(h) + axis_in for h in heights) + bottom_in + (0.6 if not panels else 0.0)
    fig = new_figure(height, facecolor="white")
    fig.text(0.1 / FIGURE_WIDTH_IN, 1 - 0.1 / height, title, ha="left", va="top", fontsize=11, fontweight="bold")
    if not panels:
        fig.text(0.5, 0.4, t("components_none", lang), ha="center", va="center", fontsize=FONT_PT)
        return fig
    y_top = height - top_in
    width = 1 - (left_in + right_in) / FIGURE_WIDTH_IN
    for (is_pp, rows), h in zip(panels, heights):
        ax = fig.add_axes([left_in / FIGURE_WIDTH_IN, (y_top - sum(h)) / height, width, sum(h) / height])
        _draw_component_panel(ax, rows, h, -(label_in + 0.15) / (width * FIGURE_WIDTH_IN), is_pp, lang)
        y_top -= sum(h) + axis_in
    if note:
        fig.text(0.1 / FIGURE_WIDTH_IN, 0.06 / height, "\n".join(note), ha="left", va="bottom", fontsize=MIN_FONT_PT)
    return fig


def _draw_component_panel(ax, rows: list[dict], heights: list[float], label_x: float, is_pp: bool,
                          lang: str) -> None:
    """One panel: a label per row (headers bold), each component's interval (one artist for all) and estimate
    (one artist for all), the zero line and the x axis in the panel's unit."""
    ys, y = [], sum(heights)
    for h in heights:  # rows from the top, each as tall as its label
        ys.append(y - h / 2)
        y -= h
    ax.set_ylim(0, sum(heights))
    comp = [(r, yy) for r, yy in zip(rows, ys) if r["kind"] == "component"]
    values = [v for r, _ in comp for v in (r["ci_low"], r["ci_high"], r["estimate"]) if np.isfinite(v)] + [0.0]
    lo, hi = min(values), max(values)
    span = max(hi - lo, 1e-9)
    ax.set_xlim(lo - 0.05 * span, hi + 0.05 * span)
    for r, yy in zip(rows, ys):
        header = r["kind"] == "header"
        ax.text(label_x, yy, r["label"], transform=ax.get_yaxis_transform(), ha="left", va="center",
                fontsize=FONT_PT, fontweight="bold" if header else "normal")
    draw_segments(ax, [((r["ci_low"], yy), (r["ci_high"], yy)) for r, yy in comp], ["0.3"] * len(comp), 1.4)
    draw_points(ax, [r["estimate"] for r, _ in comp], [yy for _, yy in comp], 30,
                ["white" if r.get("upper") else "#1f4e79" for r, _ in comp], marker="s", zorder=3,
                edgecolors=["#1f4e79"] * len(comp))  # an outer bound: an open square (as the overview draws it)
    effect_axis(ax, lang, is_pp, "component_xlabel_unit")

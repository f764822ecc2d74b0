"""The overview figure: every arm class × outcome × period at a glance, one point per municipality and the pooled
headline."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.special import ndtri

from meta.present import fewstudies_report as fsr
from meta.i18n import arm_class_label, concept_labels, fmt_g, outcome_labels, period_label, t
from meta.present.drawing import (FIGURE_WIDTH_IN, FONT_PT, MIN_FONT_PT, PNG_DPI, cell_frames, draw_points,
                                  draw_segments, edge_arrows, effect_axis, new_figure, text_width_in, wrap_label,
                                  wrap_line, write_now)


#: Past this many municipalities the colours would repeat and the legend would not fit: every estimate is then a
#: grey tick on its row (no intervals; they are in the forest plots' numbers and side_by_side.csv).
OVERVIEW_MAX_COLORED = 8
MANY_COLOR = "#555555"

MUNICIPALITY_COLORS = ("#1f4e79", "#c55a11", "#548235", "#7030a0", "#bf9000", "#2e75b6", "#843c0c", "#375623")


def overview_rows(results, lang: str = "en", cells: dict | None = None) -> pd.DataFrame:
    """The rows of the overview figure: per arm class (plan order) a header, then one row per outcome × horizon.

    Each cell row carries its studies (municipality, yi, lower, upper) and the pooled headline estimate with its
    interval when k >= 2 (``pooled``), in the order of the Kerntabel (arm class, then the plan's outcomes).
    ``upper``: per study whether its SE is only an upper bound (its interval an outer bound: an open square, † after
    the row's label, as the Kerntabel and forest plots mark it). ``cells``: :func:`cell_frames` of ``results`` when
    already made (the forest plots' jobs use them too).
    """
    from meta.analyses.tables import cell_order

    plan = results.plan
    z = float(ndtri(0.5 + plan.level / 200))  # = scipy.stats.norm.ppf, without importing scipy.stats
    label = {**outcome_labels(results.inputs.outcomes, lang), **concept_labels(results.inputs.concepts, lang)}
    p = cell_order(results.pooled, plan) if len(results.pooled) else results.pooled
    rows, periods = [], {}  # periods: each period's label, looked up once
    cells = cell_frames(results) if cells is None else cells
    read = [c for c in ("outcome_key", "period", "arm_class", "unit_h", "k", "estimate", "ci_low", "ci_high",
                        "impossible") if c in p]  # what a row reads (fewstudies_report.impossible: "impossible")
    for arm_class, g in _by_arm_class(p[read].to_dict("records")).items():
        rows.append(dict(kind="header", label=arm_class_label(arm_class, lang).capitalize(), unit_h="", studies=[],
                         pooled=None, upper=[]))
        for r in g:
            s = cells.get((r["outcome_key"], r["period"], arm_class, r["unit_h"]), ({}, None))[0]
            studies = [(m, y, y - z * se, y + z * se)
                       for m, y, se in zip(s.get("municipality", []), s.get("yi", []), s.get("sei", []))]
            upper = ([False if pd.isna(u) else bool(u) for u in s["se_upper_bound_only"]]
                     if "se_upper_bound_only" in s else [False] * len(studies))
            pooled = None
            if int(r["k"]) >= 2:
                bad = fsr.impossible(r)
                pooled = (r["estimate"], np.nan if "ci_low" in bad else r["ci_low"],
                          np.nan if "ci_high" in bad else r["ci_high"])
            if r["period"] not in periods:
                periods[r["period"]] = period_label(r["period"], results.inputs.periods, lang)
            rows.append(dict(kind="cell", unit_h=r["unit_h"], studies=studies, pooled=pooled, upper=upper,
                             label=f"{label.get(r['outcome_key'], r['outcome_key'])}, {periods[r['period']]}"
                                   + (f" {fsr.UPPER_MARK}" if any(upper) else "")))
    return pd.DataFrame(rows, columns=["kind", "label", "unit_h", "studies", "pooled", "upper"])


def _by_arm_class(records: list[dict]) -> dict:
    """{arm class: its rows} in order of first appearance, each class's rows in table order (as ``groupby(sort=False)``
    groups them, leaving out a missing arm class)."""
    groups: dict = {}
    for r in records:
        if not pd.isna(r["arm_class"]):
            groups.setdefault(r["arm_class"], []).append(r)
    return groups


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
    codes = [m for m, _ in municipalities]
    color = {m: MUNICIPALITY_COLORS[i % len(MUNICIPALITY_COLORS)] for i, m in enumerate(codes)}
    if len(_present(rows, municipalities)) > OVERVIEW_MAX_COLORED:  # colours would repeat: one grey tick each
        color = dict.fromkeys(codes, MANY_COLOR)
    panels = _overview_panels(rows)
    line_in = 1.25 * FONT_PT / 72
    row_in = 0.1 + line_in * 1.7
    wrapped = {id(panel): [wrap_label(r["label"], 40, "  " if r["kind"] == "cell" else "") for r in panel]
               for _, panel in panels}
    label_in = max([text_width_in(x, weight="bold") for _, panel in panels for x in wrapped[id(panel)]] + [1.0])
    left_in, right_in = 0.1 + label_in + 0.15, 0.2
    panel_h = [len(panel) * row_in for _, panel in panels]
    note = _upper_note(rows, lang)
    top_in, gap_in, bottom_in = 0.45, 0.7, 0.35 + 0.17 * len(note)
    height = top_in + sum(panel_h) + gap_in * len(panels) + bottom_in
    fig = new_figure(height, facecolor="white")
    y_top = height - top_in
    for (is_pp, panel), h in zip(panels, panel_h):
        ax = fig.add_axes([left_in / FIGURE_WIDTH_IN, (y_top - h) / height,
                           1 - (left_in + right_in) / FIGURE_WIDTH_IN, h / height])
        label_x = -(label_in + 0.15) / ((1 - (left_in + right_in) / FIGURE_WIDTH_IN) * FIGURE_WIDTH_IN)
        _draw_overview_panel(ax, panel, wrapped[id(panel)], label_x, color, is_pp, lang)
        y_top -= h + gap_in
    _overview_legend_and_title(fig, rows, municipalities, color, height, level, lang, 0.17 * len(note))
    if note:
        fig.text(0.1 / FIGURE_WIDTH_IN, 0.06 / height, "\n".join(note), ha="left", va="bottom", fontsize=MIN_FONT_PT)
    return fig


def _upper_note(rows: pd.DataFrame, lang: str) -> list[str]:
    """The footnote lines when some study's interval is an outer bound (``upper``), and when some pooled bound lies
    outside the feasible range (drawn at the edge of the axis: :func:`overview_rows`); else none."""
    notes = []
    if "upper" in rows and any(any(u) for u in rows["upper"] if isinstance(u, list)):
        notes.append(fsr.open_square_note(lang))
    if "pooled" in rows and any(isinstance(p, tuple) and not all(np.isfinite(p[1:])) for p in rows["pooled"]):
        notes.append(t("fig_note_edge", lang))
    return wrap_line(" ".join(notes), 120) if notes else []


def _overview_panels(rows: pd.DataFrame) -> list[tuple[bool, list[dict]]]:
    """The rows split into a percentage-point panel and a scale-point panel (each a list of rows as {column:
    value}), each arm-class header kept with the first row of its class in that panel; a panel without rows is left
    out."""
    panels = []
    records = rows.to_dict("records")
    for is_pp in (True, False):
        keep, current = [], None
        for r in records:
            if r["kind"] == "header":
                current = r
            elif (r["unit_h"] == "percentage_points") == is_pp:
                if current is not None:
                    keep.append(current)
                    current = None
                keep.append(r)
        if keep:
            panels.append((is_pp, keep))
    return panels


def _draw_overview_panel(ax, panel: list[dict], labels: list[str], label_x: float, color: dict, is_pp: bool,
                         lang: str) -> None:
    """One panel (its rows from :func:`_overview_panels`): per row its label, every municipality's estimate and
    interval (one artist for all lines, one for all squares) and the pooled diamond below them; the x axis with 5%
    room around every value and 0."""
    from matplotlib.patches import Polygon

    n = len(panel)
    ticks = set(color.values()) == {MANY_COLOR}
    values = [v for r in panel for st in r["studies"] for v in (st[1:2] if ticks else st[1:])]
    values += [v for r in panel if r["pooled"] is not None for v in r["pooled"] if np.isfinite(v)]
    lo, hi = min(values + [0.0]), max(values + [0.0])
    span = max(hi - lo, 1e-9)
    ax.set_xlim(lo - 0.05 * span, hi + 0.05 * span)
    ax.set_ylim(-0.5, n - 0.5)
    segs, pts, cols, faces = [], [], [], []  # every study of the panel: one artist for the lines, one for the squares
    for i, (r, text) in enumerate(zip(panel, labels)):
        y = n - 1 - i
        header = r["kind"] == "header"
        ax.text(label_x, y, text, transform=ax.get_yaxis_transform(), ha="left", va="center", fontsize=FONT_PT,
                fontweight="bold" if header else "normal")
        if header:
            ax.axhline(y + 0.5, color="0.8", lw=0.6)
            continue
        k = len(r["studies"])
        pooled_row = r["pooled"] is not None
        if ticks:  # past OVERVIEW_MAX_COLORED municipalities: every estimate as a tick on one line, no intervals
            pts.extend((est, y + 0.12) for _, est, _, _ in r["studies"])
            cols.extend([MANY_COLOR] * k)
            faces.extend([MANY_COLOR] * k)
        else:  # studies above, the diamond below them in the same row
            offsets = (np.linspace(0.32, -0.05, k) if pooled_row else np.linspace(0.22, -0.22, k)) if k > 1 else [0.0]
            upper = r["upper"] if isinstance(r.get("upper"), list) else [False] * k
            for (m, est, l, u), dy, outer in zip(r["studies"], offsets, upper):
                segs.append(((l, y + dy), (u, y + dy)))
                pts.append((est, y + dy))
                cols.append(color[m])
                faces.append("white" if outer else color[m])  # an outer bound: an open square
        if r["pooled"] is not None:
            est, l, u = r["pooled"]
            cut = (l if np.isfinite(l) else -math.inf, u if np.isfinite(u) else math.inf)  # outside the range
            l = l if np.isfinite(l) else ax.get_xlim()[0]
            u = u if np.isfinite(u) else ax.get_xlim()[1]
            ax.add_patch(Polygon([[l, y - 0.3], [est, y - 0.19], [u, y - 0.3], [est, y - 0.41]], closed=True,
                                 color="#b22222", zorder=4))
            edge_arrows(ax, cut, y - 0.3, ax.get_xlim())
    draw_segments(ax, segs, cols, 1.4, zorder=2)
    if ticks:  # a tick is an unfilled marker: drawn in its face colour, it has no edge (an outer bound is not open)
        draw_points(ax, [p[0] for p in pts], [p[1] for p in pts], 60, cols, marker="|", zorder=3, linewidths=1.0)
    else:
        draw_points(ax, [p[0] for p in pts], [p[1] for p in pts], 28, faces, marker="s", zorder=3, edgecolors=cols)
    effect_axis(ax, lang, is_pp, "fig_xlabel")


def _overview_legend_and_title(fig, rows: pd.DataFrame, municipalities: list, color: dict, height: float,
                               level: float, lang: str, note_in: float = 0.0) -> None:
    """The legend (every municipality with a number, and the pooled diamond when something is pooled) and the
    title."""
    from matplotlib.lines import Line2D

    names = dict(municipalities)
    present = _present(rows, municipalities)
    handles = [Line2D([], [], marker="s", ls="-", color=color[m], label=names[m]) for m in present]
    if len(present) > OVERVIEW_MAX_COLORED:
        handles = [Line2D([], [], marker="|", ls="", color=MANY_COLOR, markersize=8,
                          label=t("overview_many", lang, n=len(present)))]
    if any(pl is not None for pl in rows["pooled"]):
        handles.append(Line2D([], [], marker="D", ls="", color="#b22222",
                              label="gepoold (k ≥ 2)" if lang == "nl" else "pooled (k ≥ 2)"))
    fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.1 / FIGURE_WIDTH_IN, (0.05 + note_in) / height),
               ncol=len(handles), fontsize=FONT_PT, frameon=False)
    title = ("Overzicht: effect per armklasse en uitkomst, per gemeente met "
             f"{fmt_g(level, lang)}%-interval" if lang == "nl" else
             f"Overview: effect per arm class and outcome, per municipality with {fmt_g(level, lang)}% interval")
    if len(present) > OVERVIEW_MAX_COLORED:  # the intervals are not drawn
        title = ("Overzicht: effect per armklasse en uitkomst, per gemeente en gepoold" if lang == "nl" else
                 "Overview: effect per arm class and outcome, per municipality and pooled")
    fig.text(0.1 / FIGURE_WIDTH_IN, 1 - 0.1 / height, title, ha="left", va="top", fontsize=11, fontweight="bold")


def _present(rows: pd.DataFrame, municipalities: list) -> list:
    """The municipality codes with a study in the figure, in register order."""
    seen = {st[0] for sts in rows["studies"] for st in sts}
    return [m for m, _ in municipalities if m in seen]


def overview_job(results, lang: str = "en", svg: bool = False, cells: dict | None = None):
    """The overview figure job (PNG, read in the report; SVG only when asked); ``cells`` as for
    :func:`overview_rows`."""
    from meta.present.figures import FigureJob

    title = "Overzicht per armklasse en uitkomst" if lang == "nl" else "Overview per arm class and outcome"
    munis = results.inputs.municipalities
    files = {"png": "overview.png", **({"svg": "overview.svg"} if svg else {})}
    return FigureJob("overview", "overview", title, files,
                     dict(rows=overview_rows(results, lang, cells), municipalities=list(zip(munis["municipality"],
                                                                                     munis["name"])),
                          level=float(results.plan.level), lang=lang), dict(dpi=PNG_DPI))


def write_overview_figure(results, folder, lang: str = "en", svg: bool = True) -> dict:
    """The overview figure (PNG and SVG); returns {"overview": {"png", "svg", "title"}}."""
    return write_now([overview_job(results, lang, svg)], folder)

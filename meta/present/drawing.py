"""What every figure shares: print size and fonts, label wrapping and width, number axes, and artists drawn as one
collection per kind (so a figure with hundreds of rows stays fast)."""

from __future__ import annotations

import functools

import numpy as np

from meta.i18n import t, tick_text


ZWSP = "\u200b"  # appended to make otherwise identical labels unique


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


def new_figure(height_in: float, **kw):
    """A figure ``FIGURE_WIDTH_IN`` × ``height_in`` inches (``kw``: further :class:`matplotlib.figure.Figure`
    options) with an Agg canvas, made without pyplot: a pyplot figure calls back into pyplot whenever an artist of
    it changes (its check for an interactive redraw, ~3% of drawing a forest plot), and the figures are never shown.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(FIGURE_WIDTH_IN, height_in), **kw)
    FigureCanvasAgg(fig)
    return fig


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


def text_width_in(text: str, size: float = FONT_PT, weight: str = "normal") -> float:
    """Width of the widest line of ``text`` in inches at ``size`` points (matplotlib's own text layout)."""
    return max(_line_width_pt(line, float(size), weight) for line in str(text).split("\n")) / 72


@functools.lru_cache(maxsize=8192)
def _line_width_pt(line: str, size: float, weight: str) -> float:
    """Width of one line of text in points (cached: a figure measures the same labels more than once, and laying
    out text costs ~40 µs per character)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    if not line:
        return 0.0
    prop = FontProperties(size=size, weight=weight)
    return TextToPath().get_text_width_height_descent(line, prop, ismath=False)[0]


def plain_text(html_text: str) -> str:
    """Text of a short HTML fragment (for a figure)."""
    import re

    return re.sub(r"<[^>]+>", "", html_text)


def wrap_line(line: str, width: int = 95) -> list[str]:
    import textwrap

    return textwrap.wrap(line, width) or [""]


def effect_axis(ax, lang: str, is_pp: bool, xlabel_key: str) -> None:
    """Style ``ax`` as an effect axis shared by the overview and the component figure: a zero line, only the bottom
    spine, Dutch or English tick numbers at :data:`FONT_PT`, and the x label ``xlabel_key`` (a catalogue key with a
    ``{unit}`` field) in percentage points, or in scale points with the scale per outcome."""
    ax.axvline(0, color="black", lw=0.8, zorder=1)
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    number_axis(ax.xaxis, lang)
    ax.tick_params(axis="x", labelsize=FONT_PT)
    unit = t("unit_pp", lang) if is_pp else t("unit_scale_per_outcome", lang)
    ax.set_xlabel(t(xlabel_key, lang, unit=unit), fontsize=FONT_PT)


def draw_segments(ax, segments, colors, lw: float, alpha=None, zorder: float = 2):
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


def draw_points(ax, x, y, sizes, colors, zorder: float = 3, **kw):
    """Markers at (x, y) as one ``ax.scatter`` call (one artist for every point; drawn in the given order)."""
    return ax.scatter(np.asarray(x, float), np.asarray(y, float), s=sizes, c=list(colors), zorder=zorder, **kw)


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
    groups = studies.groupby(list(CELL_KEY), sort=False, dropna=False).indices
    # every cell's rows taken together once, in table order within a cell; each cell is then a slice of them
    grouped = studies.take(np.concatenate(list(groups.values())))
    out, start = {}, 0
    for key, idx in groups.items():
        i = first_pooled.get(key)
        out[key] = (grouped.iloc[start:start + len(idx)], None if i is None else pooled.iloc[i])
        start += len(idx)
    return out


def write_now(jobs: list, folder) -> dict:
    """Draw ``jobs`` into ``folder`` in this process (no reuse); {name: {format: path, "title": str}}."""
    from pathlib import Path

    from meta.present.figures import render

    for job in jobs:
        render(job, str(folder))
    return {job.name: {**{fmt: Path(folder) / f for fmt, f in job.files.items()}, "title": job.title} for job in jobs}

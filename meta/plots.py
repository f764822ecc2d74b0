"""Forest plots (stage 5), drawn with ``forestplot`` plus what it lacks.

``forestplot`` 0.4.1 silences every Python warning and numpy floating-point
error for the whole process when imported. It is imported lazily, only inside
:func:`_contained`, which restores both states afterwards. What it lacks is
drawn on the axes it returns: weight-sized markers, the pooled diamond, the
prediction-interval bar and the heterogeneity line. Row labels are made
unique because ``forestplot`` merges rows with identical labels.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np
import pandas as pd
from scipy.special import ndtri

from meta import fewstudies_report as fsr
from meta.i18n import arm_class_label, components_label, outcome_labels, t, word
from meta.tables import fmt_number

ZWSP = "\u200b"  # appended to make otherwise identical labels unique
#: Past this many studies in one arm class a forest plot shows them as one strip of estimates (a rug) above the
#: pooled diamond instead of a row each, so a national roll-out (~340 municipalities) stays one readable page;
#: every study's number is in side_by_side.csv and the workbook.
FOREST_MAX_STUDIES = 50


@contextlib.contextmanager
def _contained():
    """Import/use ``forestplot`` and restore warning filters and numpy error state afterwards."""
    filters = list(warnings.filters)
    err = np.geterr()
    try:
        import forestplot  # noqa: F401  (lazy on purpose: import-time side effects)

        yield forestplot
    finally:
        warnings.filters[:] = filters
        warnings._filters_mutated()  # type: ignore[attr-defined]
        np.seterr(**err)


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


def forest_rows(results, outcome_key: str, horizon: int, unit: str, lang: str = "en") -> pd.DataFrame:
    """The rows of one forest plot: per arm class a header, its studies, pooled row, PI row and stats line."""
    plan = results.plan
    studies = results.studies
    pooled = results.pooled
    z = float(ndtri(0.5 + plan.level / 200))  # normal quantile
    munis = results.inputs.municipalities
    pending = [n for n, s in zip(munis["name"], munis["status"]) if s == "pending"]
    names = dict(zip(munis["municipality"], munis["name"]))
    d = 1 if unit == "percentage_points" else 2  # pp to one decimal, scale points to two
    rows, footer = [], []
    for arm_class in plan.arm_classes:
        s = studies[(studies["outcome_key"] == outcome_key) & (studies["horizon_months"] == horizon)
                    & (studies["arm_class"] == arm_class) & (studies["unit_h"] == unit)]
        if len(s) == 0:
            continue
        p = pooled[(pooled["outcome_key"] == outcome_key) & (pooled["horizon_months"] == horizon)
                   & (pooled["arm_class"] == arm_class) & (pooled["unit_h"] == unit)].iloc[0]
        tau2 = 0.0 if math.isnan(p["tau2"]) else p["tau2"]
        w = 1 / (s["sei"].to_numpy() ** 2 + tau2)
        w = w / w.sum()
        rows.append(dict(kind="header", label=t("fig_arms", lang, cls=arm_class_label(arm_class, lang)).capitalize()
                         if lang == "en" else t("fig_arms", lang, cls=arm_class_label(arm_class, lang))))
        if len(s) > FOREST_MAX_STUDIES:  # one strip row instead of a row per study
            yi = s["yi"].to_numpy(float)
            nl = lang == "nl"
            rows.append(dict(kind="strip", label="  " + (f"{len(s)} gemeenten, elk streepje één schatting" if nl else
                                                         f"{len(s)} municipalities, one tick per estimate"),
                             est=np.nan, ll=float(yi.min()), hl=float(yi.max()),
                             points=";".join(repr(float(x)) for x in yi),
                             ci=(f"{'bereik' if nl else 'range'} {fmt_number(yi.min(), d)} – {fmt_number(yi.max(), d)}"),
                             w=(f"max {100 * w.max():.1f}%")))
        for (_, r), wi in zip(s.iterrows() if len(s) <= FOREST_MAX_STUDIES else (), w):
            lo, hi = r["yi"] - z * r["sei"], r["yi"] + z * r["sei"]
            tag = {"from_significance_marks": " †", "from_shares_binomial": " ‡",
                   "from_shares_binomial_and_marks": " ‡"}.get(r["se_method"], "")
            rows.append(dict(kind="study", label=f"  {names[r['municipality']]}: "
                                                 f"{components_label(r['arm_components'], lang)}",
                             est=r["yi"], ll=lo, hl=hi, weight=wi,
                             ci=f"{fmt_number(r['yi'], d)} [{fmt_number(lo, d)}, {fmt_number(hi, d)}]{tag}",
                             w=f"{100 * wi:.0f}%" if wi >= 0.01 else f"{100 * wi:.1f}%"))
        if pending:
            rows.append(dict(kind="pending", label="  " + t("fig_pending", lang, names=", ".join(pending)),
                             ci=t("fig_not_transcribed", lang), w=""))
        if int(p["k"]) >= 2:
            bayes = p.get("headline") == fsr.HEADLINE_BAYES
            pooled_label = (fsr.tx("fig_pooled_bayes", lang, level=f"{plan.level:g}") if bayes
                            else t("fig_pooled", lang, method=p["method"], test=p["test"]))
            rows.append(dict(kind="pooled", label="  " + pooled_label, est=p["estimate"],
                             ll=p["ci_low"], hl=p["ci_high"],
                             ci=f"{fsr.value_text(p, 'estimate', d, lang)} {fsr.interval_text(p, 'ci_low', 'ci_high', d, lang)}",
                             w="100%"))
            rows.append(dict(kind="pi", label="  " + (fsr.tx("fig_pi_bayes", lang) if bayes else t("fig_pi", lang)),
                             est=np.nan, ll=p["pi_low"], hl=p["pi_high"],
                             ci=fsr.interval_text(p, "pi_low", "pi_high", d, lang), w=""))
            if bayes:  # the classical fits stay beside the headline, in the footer
                if not footer:
                    footer.append(fsr.tx("fig_bayes_note", lang, k=plan.few_studies_k, level=f"{plan.level:g}",
                                         scale=f"{p['tau_prior_scale']:g} {'pp' if unit == 'percentage_points' else ''}".strip()))
                footer.append(fsr.tx("fig_classical", lang, cls=arm_class_label(arm_class, lang).capitalize(),
                                     fits=fsr.classical_fits_text(p, d, lang)))
            q_p = "< 0.001" if p["Q_p"] < 0.001 else f"= {p['Q_p']:.3f}"
            zero = ("; τ² = 0: PI = BI" if lang == "nl" else "; τ² = 0: PI = CI") if p["tau2"] == 0 else ""
            rows.append(dict(kind="stats", label=(f"  k = {int(p['k'])}, τ² = {p['tau2']:.3g}, I² = {p['I2']:.0f}%, "
                                                   f"Q p {q_p}{zero}"), ci="", w=""))
        else:
            rows.append(dict(kind="stats", label="  " + t("fig_single", lang), ci="", w=""))
    frame = pd.DataFrame(rows)
    for col in ("est", "ll", "hl", "weight"):
        if col not in frame:
            frame[col] = np.nan
    for col in ("ci", "w"):
        frame[col] = frame[col].fillna("") if col in frame else ""
    frame["label"] = unique_labels(list(frame["label"]))
    frame.attrs["footer"] = footer  # lines for the figure's footer (classical fits beside a Bayesian headline)
    return frame


def draw_forest(results, outcome_key: str, horizon: int, unit: str, title: str, lang: str = "en"):
    """Draw one forest plot; returns the matplotlib Figure."""
    return draw_forest_rows(forest_rows(results, outcome_key, horizon, unit, lang), unit, title,
                            results.plan.level, lang)


def draw_forest_rows(rows: pd.DataFrame, unit: str, title: str, level: float, lang: str = "en", footer=None):
    """Draw one forest plot from its :func:`forest_rows` (a pure function of its arguments: see ``meta.figures``).

    ``footer``: lines under the plot (the classical fits beside a Bayesian headline); default ``rows.attrs``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon
    from matplotlib.ticker import FixedLocator

    lows = pd.concat([rows["ll"], rows["est"], pd.Series([0.0])]).min()
    highs = pd.concat([rows["hl"], rows["est"], pd.Series([0.0])]).max()
    span = max(highs - lows, 1e-9)
    xlim = (lows - 0.06 * span, max(highs + 0.06 * span, 0.1 * span))
    # forestplot: studies only (summary rows get NaN so it draws labels but no marker/line)
    fp_frame = rows.copy()
    fp_frame.loc[fp_frame["kind"] != "study", ["est"]] = np.nan
    strip = fp_frame["kind"] == "strip"  # an invisible marker (markeralpha=0): forestplot needs one estimate
    fp_frame.loc[strip, "est"] = (fp_frame.loc[strip, "ll"] + fp_frame.loc[strip, "hl"]) / 2
    fp_frame.loc[~fp_frame["kind"].isin(["study", "pi"]), ["ll", "hl"]] = np.nan
    # keep the x range wide enough for every interval, diamond and PI
    fp_frame.loc[fp_frame.index[0], ["ll", "hl"]] = xlim
    # fixed margins in inches: the header row (drawn one row above the axes), the title, the x label, the footnote
    footer = list(rows.attrs.get("footer", []) if footer is None else footer)
    undetermined = any("onbepaald" in line or "undetermined" in line for line in [*footer, *rows["ci"]])
    if undetermined:
        footer = [*footer, _plain(fsr.footnote(lang))]
    row_in, top_in, bottom_in = 0.34, 1.15, 1.0 + 0.2 * sum(len(_wrap(line)) for line in footer)
    height = row_in * len(rows) + top_in + bottom_in
    fig, ax = plt.subplots(figsize=(11, height), facecolor="white")
    fig.subplots_adjust(top=1 - top_in / height, bottom=bottom_in / height)
    with _contained() as fp, warnings.catch_warnings():
        # forestplot relabels categorical ticks itself; matplotlib warns about that, harmlessly
        warnings.filterwarnings("ignore", message="set_ticklabels", category=UserWarning)
        ax = fp.forestplot(
            fp_frame, estimate="est", ll="ll", hl="hl", varlabel="label", ci_report=False,
            rightannote=["ci", "w"],
            right_annoteheaders=[t("fig_effect", lang, level=f"{level:g}"), t("fig_weight", lang)],
            xlim=xlim, markeralpha=0, ax=ax, fontsize=10, flush=True, variable_header=t("fig_ylabel", lang),
            xlabel=t("fig_xlabel", lang, unit=_unit_label(unit, lang)),
        )
    ypos = {tick.get_text(): tick.get_position()[1] for tick in ax.get_yticklabels()}
    for tick in ax.get_yticklabels():
        if not tick.get_text().startswith(" "):
            tick.set_fontweight("bold")
    ax.yaxis.set_major_locator(FixedLocator(ax.get_yticks()))
    ax.set_yticklabels([tick.get_text() for tick in ax.get_yticklabels()])
    for _, r in rows.iterrows():
        y = ypos.get(r["label"])
        if y is None:
            continue
        if r["kind"] == "study":
            ax.plot([r["ll"], r["hl"]], [y, y], color="0.35", lw=1.3, zorder=2)
            ax.scatter([r["est"]], [y], s=30 + 250 * r["weight"], marker="s", color="#1f4e79", zorder=3)
        elif r["kind"] == "pooled":
            ax.add_patch(Polygon([[r["ll"], y], [r["est"], y + 0.3], [r["hl"], y], [r["est"], y - 0.3]],
                                 closed=True, color="#b22222", zorder=3))
        elif r["kind"] == "pi":
            ax.plot([r["ll"], r["hl"]], [y, y], color="#b22222", lw=3, alpha=0.45, zorder=2, solid_capstyle="butt")
        elif r["kind"] == "strip":  # every study's estimate as a tick on one row
            xs = [float(x) for x in str(r["points"]).split(";")]
            ax.scatter(xs, [y] * len(xs), marker="|", s=160, linewidths=0.8, color="#1f4e79", alpha=0.6, zorder=3)
    ax.axvline(0, color="black", lw=0.8, zorder=1)
    ax.set_xlim(*xlim)
    fig.text(0.01, 1 - 0.12 / height, title, ha="left", va="top", fontsize=12, fontweight="bold")
    fig.text(0.01, 0.1 / height, t("fig_footnote", lang), fontsize=8, ha="left", va="bottom", color="0.3")
    if footer:
        fig.text(0.01, 0.4 / height, "\n".join(w for line in footer for w in _wrap(line)), fontsize=10, ha="left",
                 va="bottom", color="0.15")
    return fig


def _plain(html_text: str) -> str:
    """Text of a short HTML fragment (for a figure)."""
    import re

    return re.sub(r"<[^>]+>", "", html_text)


def _wrap(line: str, width: int = 125) -> list[str]:
    import textwrap

    return textwrap.wrap(line, width) or [""]


def figure_cells(results) -> list[tuple[str, int, str]]:
    """(outcome_key, horizon, unit) of every figure, in a stable order."""
    if len(results.studies) == 0:
        return []
    keys = results.studies[["outcome_key", "horizon_months", "unit_h"]].drop_duplicates()
    keys = keys.sort_values(["outcome_key", "horizon_months", "unit_h"], kind="mergesort")
    return [(o, int(h), u) for o, h, u in keys.itertuples(index=False)]


def forest_title(results, outcome_key: str, horizon: int, lang: str = "en") -> str:
    """The title of one forest plot: the outcome's label in ``lang`` and the horizon."""
    label = outcome_labels(results.inputs.outcomes, lang).get(outcome_key) or outcome_key.replace("_", " ")
    return f"{label} — {horizon} {t('fig_months', lang)}"


def forest_jobs(results, lang: str = "en", svg: bool = False) -> list:
    """One :class:`meta.figures.FigureJob` per outcome × horizon: PNG (read in the report), SVG only when asked."""
    from meta.figures import FigureJob

    jobs = []
    for outcome_key, horizon, unit in figure_cells(results):
        name = f"forest_{outcome_key}_{horizon}m"
        title = forest_title(results, outcome_key, horizon, lang)
        rows = forest_rows(results, outcome_key, horizon, unit, lang)
        files = {"png": f"{name}.png", **({"svg": f"{name}.svg"} if svg else {})}
        jobs.append(FigureJob(name, "forest", title, files,
                              dict(rows=rows, unit=unit, title=title, level=float(results.plan.level), lang=lang,
                                   footer=list(rows.attrs.get("footer", []))),  # in the content key too
                              dict(dpi=110, fixed_box=True)))
    return jobs


def write_forest_plots(results, folder, lang: str = "en", svg: bool = True) -> dict:
    """Write one PNG (and SVG) per outcome × horizon; returns {name: {"png": path, "svg": path, "title": str}}."""
    return _write_now(forest_jobs(results, lang, svg), folder)


def _write_now(jobs: list, folder) -> dict:
    """Draw ``jobs`` into ``folder`` in this process (no reuse); {name: {format: path, "title": str}}."""
    from pathlib import Path

    from meta.figures import render

    for job in jobs:
        render(job, str(folder))
    return {job.name: {**{fmt: Path(folder) / f for fmt, f in job.files.items()}, "title": job.title} for job in jobs}


SPEC_COLORS = {"negative": "#b22222", "positive": "#1f7a1f", "no significant effect": "#555555", "no estimate": "#bbbbbb"}


def draw_spec_curve(sens: pd.DataFrame, outcome_key: str, title: str, lang: str = "en"):
    """Specification curve for one outcome: a panel per (horizon, arm class), specifications sorted by estimate.

    Each point is one specification's pooled estimate with its interval, coloured by its verdict; the plan's
    main specification is the large black-edged marker; the strip under each panel names the specification group.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = sens[sens["outcome_key"] == outcome_key]
    cells = s[["horizon_months", "arm_class", "unit_h"]].drop_duplicates().sort_values(
        ["horizon_months", "arm_class"], kind="mergesort")
    # fixed layout in inches (tight_layout costs more than drawing): per panel the plot and its rotated labels
    plot_in, labels_in, top_in = 1.5, 2.4, 0.9
    height = len(cells) * (plot_in + labels_in) + top_in
    fig, axes = plt.subplots(len(cells), 1, figsize=(11, height), squeeze=False)
    fig.subplots_adjust(left=0.11, right=0.99, top=1 - top_in / height, bottom=labels_in / height,
                        hspace=labels_in / plot_in)
    for ax, (_, cell) in zip(axes[:, 0], cells.iterrows()):
        c = s[(s["horizon_months"] == cell["horizon_months"]) & (s["arm_class"] == cell["arm_class"])]
        c = c.sort_values(["estimate", "spec_group", "spec"], kind="mergesort").reset_index(drop=True)
        x = np.arange(len(c))
        for i, r in c.iterrows():
            col = SPEC_COLORS.get(r["verdict"], "#555555")
            ax.plot([i, i], [r["ci_low"], r["ci_high"]], color=col, lw=1.4, alpha=0.8)
            main = r["spec_group"] == "main"
            ax.scatter([i], [r["estimate"]], s=70 if main else 22, color=col, edgecolor="black" if main else col,
                       linewidth=1.5 if main else 0, zorder=3)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels([f"{word('spec_group', g, lang)}: {sp}" for g, sp in zip(c["spec_group"], c["spec"])],
                           rotation=60, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(c) - 0.4)
        ax.set_title(f"{int(cell['horizon_months'])} {t('fig_months', lang)} · {arm_class_label(cell['arm_class'], lang)}"
                     f" · {_unit_label(cell['unit_h'], lang)}", fontsize=10, loc="left")
        ax.grid(axis="y", color="0.9")
    handles = [plt.Line2D([], [], marker="o", ls="", color=col, label=word("verdict", v, lang))
               for v, col in SPEC_COLORS.items() if v != "no estimate"]
    fig.legend(handles=handles, loc="upper right", fontsize=8, frameon=False, ncol=3)
    fig.suptitle(title, x=0.01, ha="left", fontsize=12, fontweight="bold")
    return fig


def spec_curve_jobs(sens: pd.DataFrame, outcomes: pd.DataFrame, lang: str = "en") -> list:
    """One specification-curve job per outcome, PNG only: read in the report; the numbers are in sensitivity.csv."""
    from meta.figures import FigureJob

    label = outcome_labels(outcomes, lang)
    jobs = []
    for outcome_key in sorted(set(sens["outcome_key"])):
        name = f"specification_curve_{outcome_key}"
        title = f"{label.get(outcome_key) or outcome_key}: " + ("specificatiecurve" if lang == "nl"
                                                                 else "specification curve")
        part = sens[sens["outcome_key"] == outcome_key].reset_index(drop=True)
        jobs.append(FigureJob(name, "spec_curve", title, {"png": f"{name}.png"},
                              dict(sens=part, outcome_key=outcome_key, title=title, lang=lang), dict(dpi=90)))
    return jobs


def write_spec_curves(sens: pd.DataFrame, outcomes: pd.DataFrame, folder, lang: str = "en") -> dict:
    """One specification-curve figure (PNG) per outcome; returns {name: {"png", "title"}}."""
    return _write_now(spec_curve_jobs(sens, outcomes, lang), folder)


def components_job(table: pd.DataFrame, lang: str = "en", svg: bool = False):
    """The component meta-regression figure job (PNG; SVG only when asked)."""
    from meta.figures import FigureJob

    title = ("Componentenmodel: effect per onderdeel" if lang == "nl" else "Component model: effect of each component")
    files = {"png": "components.png", **({"svg": "components.svg"} if svg else {})}
    return FigureJob("components", "components", title, files, dict(table=table, title=title, lang=lang),
                     dict(dpi=100, tight=True))


def write_components_figure(table: pd.DataFrame, folder, lang: str = "en", svg: bool = True) -> dict:
    """The component meta-regression figure (PNG and SVG)."""
    return _write_now([components_job(table, lang, svg)], folder)


def figure_jobs(results, lang: str = "en", svg: bool = False) -> tuple[list, list]:
    """(forest-plot jobs, other jobs: specification curves and the component figure) of a run."""
    extra = spec_curve_jobs(results.sensitivity, results.inputs.outcomes, lang)
    extra.append(components_job(results.components, lang, svg))
    return forest_jobs(results, lang, svg), extra

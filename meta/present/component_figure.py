"""The component figure: each component's estimate with its interval, per outcome (:func:`draw_components`)."""

from __future__ import annotations

import textwrap

import pandas as pd

from meta.i18n import period_label, t, tick_text, word


def unit_words(unit: str, lang: str) -> str:
    """'procentpunten' / 'schaalpunten' (the unit of a row, named when the figure mixes units)."""
    if unit == "percentage_points":
        return t("unit_pp", lang)
    if str(unit).startswith("scale_"):
        return t("unit_scale", lang)
    return str(unit).replace("_", " ")


def draw_components(table: pd.DataFrame, title: str, lang: str = "en", outcome_label: dict | None = None,
                    periods: pd.DataFrame | None = None):
    """Forest-style figure of the component estimates of every identifiable model (one row per component).

    ``outcome_label`` maps outcome codes to their labels in ``lang`` (the code is shown when missing); ``periods``
    (the period register) names each period as the report does (:func:`meta.i18n.period_label`). When the rows
    mix units each label says its unit ("in procentpunten", "in schaalpunten").
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fitted = table[table["component"] != ""].reset_index(drop=True)
    n = max(len(fitted), 1)
    fig, ax = plt.subplots(figsize=(8.0, 0.55 * n + 1.6))  # print size: 8 in wide, no text below 8 pt
    labels = []
    mixed = fitted["unit_h"].map(lambda u: unit_words(u, lang)).nunique() > 1 if "unit_h" in fitted else False
    for i, r in fitted.iterrows():
        y = n - 1 - i
        ax.plot([r["ci_low"], r["ci_high"]], [y, y], color="0.3", lw=1.4)
        ax.scatter([r["estimate"]], [y], marker="s", color="#1f4e79", zorder=3)
        munis = [m.capitalize() for m in str(r["municipalities"]).split(";") if m]
        # named up to six; past that, counted (the list is in components.csv)
        who = ", ".join(munis) if len(munis) <= 6 else t("n_municipalities", lang, n=len(munis))
        period = period_label(str(r["period"]), periods, lang)
        unit = f", in {unit_words(r['unit_h'], lang)}" if mixed else ""
        text = (f"{(outcome_label or {}).get(r['outcome_key'], r['outcome_key'])}, {period}{unit}: "
                f"{word('component', r['component'].replace('_', ' '), lang)} ({who})")
        labels.append("\n".join(textwrap.wrap(text, 52, break_on_hyphens=False)))
    ax.set_yticks([n - 1 - i for i in range(len(fitted))])
    ax.set_ylim(-0.7, n - 0.3)  # no empty band above the first row or below the last
    ax.set_yticklabels(labels, fontsize=9)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(t("component_xlabel", lang), fontsize=9)
    ax.tick_params(axis="x", labelsize=9)
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(tick_text(lang)))
    if not len(fitted):
        ax.text(0.5, 0.5, t("components_none", lang), ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    fig.tight_layout()
    return fig

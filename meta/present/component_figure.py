"""The component figure: each component's estimate with its interval, per outcome (:func:`draw_components`)."""

from __future__ import annotations

import re
import textwrap

import pandas as pd

from meta.i18n import t, tick_text, word


def draw_components(table: pd.DataFrame, title: str, lang: str = "en", outcome_label: dict | None = None):
    """Forest-style figure of the component estimates of every identifiable model (one row per component).

    ``outcome_label`` maps outcome codes to their labels in ``lang`` (the code is shown when missing).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fitted = table[table["component"] != ""].reset_index(drop=True)
    n = max(len(fitted), 1)
    fig, ax = plt.subplots(figsize=(8.0, 0.55 * n + 1.6))  # print size: 8 in wide, no text below 8 pt
    labels = []
    for i, r in fitted.iterrows():
        y = n - 1 - i
        ax.plot([r["ci_low"], r["ci_high"]], [y, y], color="0.3", lw=1.4)
        ax.scatter([r["estimate"]], [y], marker="s", color="#1f4e79", zorder=3)
        munis = [m.capitalize() for m in str(r["municipalities"]).split(";") if m]
        # named up to six; past that, counted (the list is in components.csv)
        who = ", ".join(munis) if len(munis) <= 6 else t("n_municipalities", lang, n=len(munis))
        period = (r["period"][1:] + f" {t('months', lang)}" if re.fullmatch(r"m\d+", str(r["period"]))
                  else str(r["period"]).replace("_", " "))
        text = (f"{(outcome_label or {}).get(r['outcome_key'], r['outcome_key'])} {period}: "
                f"{word('component', r['component'].replace('_', ' '), lang)} ({who})")
        labels.append("\n".join(textwrap.wrap(text, 42, break_on_hyphens=False)))
    ax.set_yticks([n - 1 - i for i in range(len(fitted))])
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

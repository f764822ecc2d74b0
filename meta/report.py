"""The self-contained HTML report (stage 5): no network, figures embedded.

Every number in the report links back to its source: study rows link to the
sources table, which gives the seed file, table and line and the token as
printed there.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import pandas as pd

from meta.harmonise import SE_METHODS

SE_METHOD_TEXT = {
    "reported_se": "standard error printed in the report",
    "from_ci": "from the printed confidence interval and its level",
    "from_p": "from an exact p-value (two-sided z)",
    "from_shares_binomial": "from arm and control shares and their N (binomial, unadjusted for covariates)",
    "from_significance_marks": "reconstructed from significance marks (bracket; see methods)",
}

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;
line-height:1.45;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:2px solid #1f4e79;padding-bottom:.2em;
margin-top:2em}h3{font-size:1.05em}
table{border-collapse:collapse;font-size:.82em;margin:.6em 0;width:100%}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eef3f8;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.single td{color:#666}
.pending{color:#a05a00;font-style:italic}.na{color:#999}.derived{background:#fff6e0}.ok{background:#eaf6ea}
.notreported{background:#f3f3f3}
.note{background:#f7f7f7;border-left:4px solid #1f4e79;padding:.6em 1em;margin:1em 0}
.warn{border-left-color:#b22222}
img{max-width:100%;height:auto;border:1px solid #ddd;margin:.5em 0}
.small{font-size:.8em;color:#555}
nav a{margin-right:1em}
"""


def _e(x) -> str:
    return html.escape("" if x is None else str(x))


def _num(x, d=1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.{d}f}"


def _p(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return "&lt;0.001" if x < 0.001 else f"{x:.3f}"


def headline_table(results) -> str:
    p = results.pooled
    if len(p) == 0:
        return "<p>No cell could be pooled.</p>"
    p = p.sort_values(["k", "outcome_key", "horizon_months", "arm_class"], ascending=[False, True, True, True],
                      kind="mergesort")
    head = ("<tr><th>Outcome</th><th>Horizon</th><th>Arm class</th><th>k</th><th>Municipalities</th>"
            f"<th>Estimate</th><th>{results.plan.level:g}% CI</th><th>p</th><th>Prediction interval</th>"
            "<th>τ² [CI]</th><th>I² [CI]</th><th>Q p</th><th>SE methods</th></tr>")
    body = []
    for _, r in p.iterrows():
        single = bool(r["single_study"])
        flag = " ⚠" if r["flag_derived_se"] else ""
        body.append(
            f"<tr class='{'single' if single else ''}'><td>{_e(r['outcome_label'])}</td>"
            f"<td class='num'>{int(r['horizon_months'])} m</td><td>{_e(r['arm_class'])}</td>"
            f"<td class='num'>{int(r['k'])}</td><td>{_e(r['municipalities'].replace(';', ', '))}</td>"
            f"<td class='num'>{_num(r['estimate'])} {_e(_unit_short(r['unit_h']))}</td>"
            f"<td class='num'>[{_num(r['ci_low'])}, {_num(r['ci_high'])}]</td><td class='num'>{_p(r['pval'])}</td>"
            + ("<td>single study, not pooled</td><td>—</td><td>—</td><td>—</td>" if single else
               f"<td class='num'>[{_num(r['pi_low'])}, {_num(r['pi_high'])}]</td>"
               f"<td class='num'>{_num(r['tau2'], 2)} [{_num(r['tau2_ci_low'], 2)}, {_num(r['tau2_ci_high'], 2)}]</td>"
               f"<td class='num'>{_num(r['I2'], 0)}% [{_num(r['I2_ci_low'], 0)}, {_num(r['I2_ci_high'], 0)}]</td>"
               f"<td class='num'>{_p(r['Q_p'])}</td>")
            + f"<td>{_e(r['se_methods'].replace(';', ', '))}{flag}</td></tr>"
        )
    return f"<table>{head}{''.join(body)}</table>"


def _unit_short(unit: str) -> str:
    return {"percentage_points": "pp"}.get(unit, "pts")


def coverage_table(results) -> str:
    cov = results.coverage
    munis = list(results.inputs.municipalities["municipality"])
    names = dict(zip(results.inputs.municipalities["municipality"], results.inputs.municipalities["name"]))
    css = {"transcribed": "ok", "derived-SE": "derived", "pending": "pending", "not applicable": "na",
           "not reported": "notreported"}
    out = ["<table><tr><th>Outcome</th><th>Horizon</th><th>Arm class</th>"
           + "".join(f"<th>{_e(names[m])}</th>" for m in munis) + "</tr>"]
    n_hidden = 0
    for (o, h, a), g in cov.groupby(["outcome_key", "horizon_months", "arm_class"], sort=False):
        st = dict(zip(g["municipality"], g["status"]))
        if not set(st.values()) & {"transcribed", "derived-SE"}:
            n_hidden += 1
            continue
        out.append(f"<tr><td>{_e(o)}</td><td class='num'>{h} m</td><td>{_e(a)}</td>"
                   + "".join(f"<td class='{css.get(st[m], '')}'>{_e(st[m])}</td>" for m in munis) + "</tr>")
    out.append("</table>")
    out.append(f"<p class='small'>Shown: the {len(out) - 2} outcome × horizon × arm-class cells in which at least one "
               f"municipality has a number. In the other {n_hidden} cells no municipality has one (pending, not "
               "reported or not applicable); <code>coverage.csv</code> lists every cell.</p>")
    pend = results.inputs.municipalities
    pend = pend[pend["status"] == "pending"]
    items = "".join(f"<li><b>{_e(r['name'])}</b>: {_e(r['pending_where'])}</li>" for _, r in pend.iterrows())
    return "".join(out) + (f"<p>Pending municipalities and where their numbers live:</p><ul>{items}</ul>" if items else "")


def side_by_side_table(results) -> str:
    sbs = results.side_by_side
    munis = list(results.inputs.municipalities["municipality"])
    names = dict(zip(results.inputs.municipalities["municipality"], results.inputs.municipalities["name"]))
    out = ["<table><tr><th>Outcome</th><th>Horizon</th><th>Arm class</th><th>Unit</th>"
           + "".join(f"<th>{_e(names[m])}</th>" for m in munis) + "</tr>"]
    for _, r in sbs.iterrows():
        cells = "".join(
            f"<td class='{'pending' if r[m] == 'pending' else 'num'}'>{_e(r[m])}</td>" for m in munis)
        out.append(f"<tr><td>{_e(r['outcome_key'])}</td><td class='num'>{int(r['horizon_months'])} m</td>"
                   f"<td>{_e(r['arm_class'])}</td><td>{_e(_unit_short(r['unit_h']))}</td>{cells}</tr>")
    out.append("</table>")
    return "".join(out)


def sources_table(results) -> str:
    s = results.studies
    out = ["<table><tr><th>#</th><th>Municipality</th><th>Arm (components)</th><th>Outcome</th><th>Horizon</th>"
           "<th>Model</th><th>As printed</th><th>yi</th><th>sei [bracket]</th><th>SE method</th><th>Source</th></tr>"]
    for _, r in s.iterrows():
        bracket = ("" if r["sei_low"] == r["sei_high"]
                   else f" [{_num(r['sei_low'], 2)}, {_num(r['sei_high'], 2)}]")
        out.append(
            f"<tr id='src-{int(r['input_row'])}'><td class='num'>{int(r['input_row'])}</td><td>{_e(r['municipality'])}</td>"
            f"<td>{_e(r['arm'])} ({_e(r['arm_components'])})</td><td>{_e(r['outcome'])}</td>"
            f"<td class='num'>{int(r['horizon_months'])} m</td><td>{_e(r['model'])}</td>"
            f"<td class='num'><code>{_e(r['printed'])}</code></td><td class='num'>{_num(r['yi'], 2)}</td>"
            f"<td class='num'>{_num(r['sei'], 2)}{bracket}</td><td>{_e(r['se_method'])}</td>"
            f"<td>{_e(r['source_file'])}, {_e(r['source_table'])}, line {int(r['source_line'])}</td></tr>")
    out.append("</table>")
    return "".join(out)


def methods_section(results) -> str:
    plan = results.plan
    s = results.studies
    shares = s["se_method"].value_counts() if len(s) else pd.Series(dtype=int)
    items = "".join(
        f"<li><b>{_e(m)}</b> ({_e(SE_METHOD_TEXT[m])}): {int(shares.get(m, 0))} of {len(s)} study rows "
        f"({100 * shares.get(m, 0) / max(len(s), 1):.0f}%)</li>" for m in SE_METHODS)
    test_text = {
        "z": "Wald-type z intervals",
        "knha": "the Hartung-Knapp-Sidik-Jonkman method (t distribution with k−1 degrees of freedom, "
                "variance scaled by the weighted residual mean square)",
        "adhoc": "the Hartung-Knapp-Sidik-Jonkman method with its scale factor floored at 1 (ad hoc variant)",
    }[plan.test.lower()]
    return f"""
<p>Each cell (outcome × horizon × arm class) is a random-effects meta-analysis across the municipalities that
report it, with τ² estimated by <b>{_e(plan.method)}</b> and inference for the pooled effect by {test_text}, at the
{plan.level:g}% level. The τ² interval is the Q-profile interval (Viechtbauer 2007); I² and H² are metafor's τ²-based
definitions. The prediction interval is metafor's: estimate ± t<sub>k−1</sub>·√(τ² + SE²)
(z for Wald). The engine reproduces R's metafor for every estimator and test; the reference values and
the exact R calls are in <code>tests/reference/</code>.</p>
<p>Effects are intention-to-treat differences against the randomised control group, in percentage points for shares
and in scale points for survey indices. Comparisons with non-randomised reference groups and between-arm contrasts are
transcribed but never pooled. When a report prints several model columns the plan prefers
<b>{_e(', '.join(plan.model_preference))}</b>, in that order.</p>
<p>Standard errors ({_e(plan.se_policy)} policy):</p><ul>{items}</ul>
<p>Where a report prints only significance marks, a mark bounds |estimate|/SE: a mark for p below a threshold gives an
upper bound on the SE, no mark a lower bound, a mark for p between two thresholds both. The rounding of the printed
estimate widens the bracket; the outcome's range and the arm sizes give a further upper bound; rows of one regression
share a common SE. The <b>central</b> policy uses the midpoint of the bracket when the bracket is tight (upper bound at
most three times the lower) and its upper bound otherwise; the <b>conservative</b> policy always uses the upper bound. Pooled rows with such SEs are marked ⚠;
their intervals rest on this reconstruction, not on printed standard errors.</p>
<div class='note warn'><b>Few studies.</b> With two municipalities a between-municipality variance cannot be estimated
with any precision and Hartung-Knapp intervals use a t distribution with one degree of freedom: such intervals are very
wide and that is the honest answer. Cells with one municipality are shown as reported, not pooled.</div>
"""


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def render_report(results, figures: dict) -> str:
    munis = results.inputs.municipalities
    transcribed = ", ".join(munis.loc[munis["status"] == "transcribed", "name"])
    pending = ", ".join(munis.loc[munis["status"] == "pending", "name"])
    n_in, n_used, n_ex = len(results.inputs.estimates), len(results.studies), len(results.excluded)
    reasons = results.excluded["reason"].str.replace(r"\(input row \d+.*\)", "(…)", regex=True).value_counts()
    reason_items = "".join(f"<li>{_e(r)}: {int(n)}</li>" for r, n in reasons.items())
    figs = "".join(
        f"<h3 id='{_e(name)}'>{_e(f['title'])}</h3><img alt='Forest plot: {_e(f['title'])}' src='{_img(f['png'])}'>"
        for name, f in figures.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Experimenten Participatiewet — pooled results</title>
<style>{CSS}</style></head><body>
<h1>Experimenten Participatiewet: pooled effects across municipalities</h1>
<p class='small'>Generated by <code>meta run</code>. Estimator {_e(results.plan.method)}, test {_e(results.plan.test)},
level {results.plan.level:g}%, SE policy {_e(results.plan.se_policy)}, outcomes at {_e(results.plan.outcome_level)} level.</p>
<nav><a href="#headline">Headline</a><a href="#coverage">Coverage</a><a href="#forest">Forest plots</a>
<a href="#side">Side by side</a><a href="#methods">Methods</a><a href="#sources">Sources</a></nav>
<div class='note warn'><b>Read this first.</b> Numbers are transcribed for <b>{_e(transcribed)}</b> only.
<b>{_e(pending)}</b> are pending: their reports are not available here and their cells are empty, not zero.
Any pooled figure therefore speaks for the transcribed municipalities only.</div>
<h2 id="headline">Headline table</h2>{headline_table(results)}
<p class='small'>⚠: at least one study's standard error was reconstructed from significance marks or shares (see methods).
Grey rows: one municipality only, shown as reported.</p>
<h2 id="coverage">Coverage</h2>{coverage_table(results)}
<h2 id="forest">Forest plots</h2>{figs or '<p>No figures.</p>'}
<h2 id="side">Side by side</h2>
<p>Each municipality's harmonised estimate [{results.plan.level:g}% Wald interval from the SE used]; the mark as printed;
(marks) or (shares) where the SE was reconstructed.</p>{side_by_side_table(results)}
<h2 id="methods">Methods</h2>{methods_section(results)}
<h3>Row accounting</h3><p>{n_in} transcribed rows: {n_used} used as studies, {n_ex} excluded
(<code>excluded.csv</code> lists each with its reason):</p><ul>{reason_items}</ul>
<h2 id="sources">Sources of every study row</h2>{sources_table(results)}
</body></html>
"""


def write_report(results, path: Path, figures: dict) -> Path:
    Path(path).write_text(render_report(results, figures), encoding="utf-8")
    return Path(path)

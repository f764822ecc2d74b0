"""The notebook entry point, :func:`run` (also ``meta.run``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from meta.analyses.pipeline import Results, analyse
from meta.i18n import DEFAULT_LANG
from meta.plan import DEFAULT_INPUTS, Plan, load_plan, plan_file
from meta.write import outdir
from meta.write.outputs import write_outputs


def run(plan=None, inputs=None, out=None, lang: str = DEFAULT_LANG, figures: bool = True,
        sensitivity: bool = True) -> Results:
    """The notebook entry point: analyse, draw figures in memory, write files only when ``out`` is given.

    Parameters
    ----------
    plan : Plan, str, Path or None
        A :class:`meta.plan.Plan`, a path to a plan TOML, or None for ``plan.toml`` in the inputs folder (or the
        defaults when that folder has none).
    inputs : str, Path or None
        Folder with the registers and ``estimates.csv``; default the repository's ``inputs/``.
    out : str, Path or None
        When given, every output is also written there (atomically), as ``meta run --out`` does.
    lang : {"nl", "en"}
        Language of the figures (and report when written).
    figures : bool
        Draw the forest plots (``Results.figures``: name → matplotlib Figure).
    sensitivity : bool
        Run the sensitivity analysis and component models (False: quicker; then ``out`` gets tables only).

    Examples
    --------
    >>> import meta
    >>> res = meta.run(figures=False)
    >>> sorted(res.pooled.columns)[:3]
    ['H2', 'H2_ci_high', 'H2_ci_low']
    """
    inputs_dir = Path(inputs) if inputs is not None else DEFAULT_INPUTS
    plan_path = None
    if plan is None:
        plan_path = plan_file(None, inputs)
        plan = load_plan(plan_path)
    elif not isinstance(plan, Plan):
        plan_path = Path(plan)
        plan = load_plan(plan_path)
    if out is not None:  # refused before any work; checked again (with every file read) before writing
        outdir.check_out_dir(out, [inputs_dir] + ([plan_path] if plan_path is not None else []))
    results = analyse(inputs_dir, plan, sensitivity)
    if figures:
        from meta.present import plots

        drawn = {}
        for outcome_key, horizon, unit in plots.figure_cells(results):
            drawn[plots.figure_name(outcome_key, horizon)] = plots.draw_forest(
                results, outcome_key, horizon, unit, plots.forest_title(results, outcome_key, horizon, lang), lang)
        results = replace(results, figures=drawn)
    if out is not None:
        write_outputs(results, Path(out), plan_path, draw=sensitivity, lang=lang)
    return results

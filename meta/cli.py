"""Command line: every ``meta`` subcommand (run, coverage, template, check, add, reconcile; ``pool`` is registered by
:func:`meta.pool_command.add_pool`, ``simulate`` by :func:`meta.simulate.command.add_subcommand`).

Each command imports what it needs when it runs (``meta --help`` and ``meta pool`` start fast). Bad input ends
with one line on stderr naming file, row, column and the fix, and exit status 2; ``run`` and ``coverage`` check
the plan, the inputs and the output folder before any work (:func:`preflight`) and use the plan and inputs it
read. Warnings (a conversion applied to an input, an ignored column, a plan entry nobody reports) are one line
each on stderr. Ctrl-C ends with status 130, SIGTERM with 143, and the outputs untouched.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

# One BLAS thread: meta's matrices are small (at most a few thousand rows), where OpenBLAS's extra threads only
# spin; on a busy machine they made a 1,200 x 1,200 Cholesky 40 times slower (tests/benchmarks/README.md).
# Set before numpy is first imported; a value the user exported wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
log = logging.getLogger("meta.cli")


# Light imports only (no pandas, numpy or matplotlib): ``meta --help`` and ``meta pool`` start fast; each command
# imports what it needs.
from meta import control  # noqa: E402
from meta.errors import InputError  # noqa: E402  (one error type for all bad input; no pandas import)
from meta.plan import DEFAULT_INPUTS, DEFAULT_OUT, check_plan, load_plan, plan_file  # noqa: E402
from meta.pool_command import add_pool  # noqa: E402  (light: imports the engine only when it runs)
from meta.write import outdir  # noqa: E402


def build_parser(pool_only: bool = False) -> argparse.ArgumentParser:
    """The ``meta`` parser; ``pool_only`` registers only ``meta pool`` (then no analysis, figure or workbook module
    is imported)."""
    parser = argparse.ArgumentParser(
        prog="meta",
        description=(
            "Pool the Experimenten Participatiewet across municipalities.\n"
            "Example: meta run            (the default plan, into outputs/)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    add_pool(sub)
    if pool_only:
        return parser

    add_subcommands(sub)
    return parser


# --------------------------------------------------------------------------- #
# warnings, and checks before any work is done
# --------------------------------------------------------------------------- #
class _Stderr(logging.Handler):
    """Prints each warning of the ``meta`` loggers once per command, as one line on stderr."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.seen: set[str] = set()

    def emit(self, record):
        message = " ".join(record.getMessage().splitlines())
        if message not in self.seen:  # a message repeated within one command (e.g. per file read) is said once
            self.seen.add(message)
            print(f"meta: warning: {message}", file=sys.stderr)


def _stderr_warnings() -> None:
    logger = logging.getLogger("meta")
    handler = next((h for h in logger.handlers if isinstance(h, _Stderr)), None)
    if handler is None:
        handler = _Stderr()
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
    handler.seen.clear()


def preflight(args) -> None:
    """Everything ``run`` and ``coverage`` can refuse, checked before any work: plan, inputs, plan against the
    inputs, and (``run``) the output folder. Warnings go to stderr once. The command uses the plan and inputs
    read here (``args.loaded``: plan path, plan, inputs), so each is read once."""
    from meta.read import load

    plan_path = plan_file(args.plan, args.inputs)
    plan = load_plan(plan_path)
    inputs = load.load_inputs(Path(args.inputs))
    for message in check_plan(plan, inputs, plan_path):
        log.warning(message)
    args.loaded = (plan_path, plan, inputs)
    if getattr(args, "out", None) is not None and args.command == "run":
        out = outdir.check_out_dir(args.out, [Path(args.inputs)] + ([plan_path] if plan_path else []))
        outdir.recover_interrupted(out)


def _spare_first(args, paused: tuple | None):
    """For a cold ``meta run`` (``--out`` holds no previous outputs a rerun could take whole): the figure leader
    forked before the inputs are read (:func:`meta.write.outputs.spare`), after the imports it shares, so that it
    has imported matplotlib by the time the analysis hands it the forest plots; else None (a run that does not
    reuse its previous outputs forks it after reading: :func:`_analyse_and_write`)."""
    if args.command != "run" or not _draws(args) or (Path(args.out) / outdir.MANIFEST).is_file():
        return None
    from meta.write import outputs  # pandas and the analysis: imported once, before the fork

    return outputs.spare(True, args.lang, args.jobs, paused)


def _terminated(signum, frame):
    control.request_stop(signum)  # honoured before the outputs are replaced, even if this exception is swallowed
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: a half-written temporary output folder is removed


def _interrupted(signum, frame):
    control.request_stop(signum)
    raise KeyboardInterrupt


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).splitlines())


def main(argv=None) -> int:
    """The ``meta`` command. Exit status: 0 done; 1 ``check`` found empty cells; 2 bad input (one line naming
    file, row, column and the fix), or outputs that cannot be written; 3 an internal error (one line naming the
    stage, with a request to report it); 130 Ctrl-C; 143 SIGTERM. No traceback reaches the user, and the
    previous outputs are untouched unless the run finished replacing them."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(pool_only=argv[:1] == ["pool"])  # ``meta pool`` builds no other subcommand
    args = parser.parse_args(argv)
    _stderr_warnings()
    control.clear_stop()
    control.STAGE[0] = "start"
    previous, froze, paused, spare = {}, False, None, None
    if threading.current_thread() is threading.main_thread():
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, _terminated)
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a background job keeps ignoring Ctrl-C
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, _interrupted)
    try:
        if args.command in ("run", "coverage"):
            paused = control.pause_gc()  # the imports and the reading: nothing to collect
            control.checkpoint("read")
            spare = args.spare = _spare_first(args, paused)
            preflight(args)
            froze = control.freeze_gc(paused)  # libraries and inputs live until the end: no collection walks them
        status = args.func(args)
        stopped = control.stop_requested()
        if stopped is not None:  # the signal's exception was swallowed after the outputs were replaced
            print(f"meta: stopped by signal {stopped} after the run had finished", file=sys.stderr)
            return EXIT_INTERRUPTED if stopped == signal.SIGINT else 128 + stopped
        return status
    except InputError as exc:
        print(f"meta: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("meta: interrupted; the outputs folder is as it was, unless this run had finished replacing it whole",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the top-level guard: no traceback reaches a user
        from meta.models.engine import PoolingError

        stage = control.STAGES.get(control.STAGE[0], control.STAGE[0])
        inputs = getattr(args, "inputs", None) or getattr(args, "file", None)
        at = f" (inputs: {inputs})" if inputs else ""
        if isinstance(exc, PoolingError):
            print(f"meta: error: while {stage}{at}: {_one_line(exc)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if isinstance(exc, OSError):
            print(f"meta: error: while {stage}{at}: {exc.strerror or exc} ({exc.filename or 'no file'}); the "
                  "previous outputs are untouched; free space or fix the permissions and run again", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"meta: internal error while {stage}{at}: {type(exc).__name__}: {_one_line(exc)[:300]}; the "
              "previous outputs are untouched; please report this (command line, inputs and this message) to the "
              "meta maintainers; META_TRACEBACK=1 shows the traceback", file=sys.stderr)
        if os.environ.get("META_TRACEBACK"):
            import traceback

            traceback.print_exc()
        return EXIT_INTERNAL
    finally:
        if spare is not None:  # not taken (an error, a rerun): stopped; taken: the run has stopped it
            spare.stop()
        control.unfreeze_gc(froze, paused)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# --------------------------------------------------------------------------- #
# CLI subcommands
# --------------------------------------------------------------------------- #
def removed_text(removed: dict, lang: str) -> str:
    """The console line on the rows the plan removed, ``{plan key: number of rows}``: "geen" when it removed none."""
    from meta.i18n import t, word

    counts = ", ".join(f"{word('plan_key', key, lang)} {n}" for key, n in removed.items() if n)
    return t("console_removed", lang, counts=counts or t("console_none", lang))


def cmd_run(args) -> int:
    """``meta run``: the analysis of the plan, written atomically into ``--out``; a summary on stdout.

    When ``--out`` holds the outputs of a run with the same key (same code, libraries, files read, options and
    environment; :func:`meta.write.rerun.run_key`) and those files are unchanged, they are taken whole
    (:func:`meta.write.rerun.reuse_previous`) and the summary is the one that run printed; nothing is analysed.
    """
    from meta.i18n import t
    from meta.write import rerun

    plan_path, plan, inputs = args.loaded  # read by the preflight
    lang = args.lang
    print(t("console_reading", lang, inputs=Path(args.inputs), plan=plan_path or t("console_defaults", lang)))
    key = rerun.run_key(rerun.files_read(inputs.files, plan_path), vars(args))
    console = rerun.reuse_previous(Path(os.path.abspath(args.out)), key)
    if console is not None:
        sys.stderr.write("".join(console.get("warnings", [])))  # what the analysis warned, as it said it then
        _print_counts(console, plan, lang)
    else:
        console = _analyse_and_write(args, key)
    failed = console["failed_cells"]
    if failed:
        print(t("console_failed", lang, n=failed))
    out = Path(os.path.abspath(args.out))
    print(t("console_report", lang, path=out / "report.html") if _draws(args) else t("console_tables", lang, path=out))
    return 0


def _draws(args) -> bool:
    """Whether ``meta run`` draws the figures and writes the report: not with ``--no-figures``, nor with
    ``--no-sensitivity`` (the specification curves and the report's robustness section need the sensitivity
    analysis)."""
    return not (args.no_figures or args.no_sensitivity)


def _analyse_and_write(args, key: str) -> dict:
    """The analysis and every output written (with the run's ``key`` and its console counts in the manifest);
    prints the counts and returns them (:func:`_console_counts`, with the Python warnings the analysis gave, as
    printed, under ``warnings``: a rerun that reuses the outputs says them again). The figures that need only the
    pooled cells are drawn by worker processes while this process runs the sensitivity analysis
    (:func:`meta.write.outputs.writing`)."""
    import contextlib
    import warnings

    from meta.analyses.pipeline import add_sensitivity, analyse, complete
    from meta.write.outputs import standing_by, writing

    plan_path, plan, inputs = args.loaded
    with contextlib.ExitStack() as stack:
        spare = getattr(args, "spare", None) or stack.enter_context(standing_by(_draws(args), args.lang, args.jobs))
        with warnings.catch_warnings(record=True) as caught:  # the filters stay as they are: shown as Python would
            results = analyse(Path(args.inputs), plan, sensitivity=False, inputs=inputs, figures_first=True)
            writer = stack.enter_context(writing(results, Path(args.out), plan_path, draw=_draws(args),
                                                 lang=args.lang, svg=args.svg, jobs=args.jobs, spare=spare))
            results = complete(results)  # while worker processes draw the forest plots
            if not args.no_sensitivity:
                results = add_sensitivity(results)
        said = [warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line) for w in caught]
        sys.stderr.write("".join(said))
        console = {**_console_counts(results), "warnings": said}
        _print_counts(console, plan, args.lang)
        writer.finish(results, run_key=key, console=console)
    return console


def _console_counts(results) -> dict:
    """What ``meta run`` prints about a run, as numbers (kept in the manifest for a rerun that reuses it): input
    rows, studies and excluded rows, the rows each plan filter removed (in order), pooled, single-study and
    Bayesian-headline cells, and the cells that could not be pooled."""
    import pandas as pd

    from meta import cells
    from meta.analyses import fewstudies
    from meta.analyses.pipeline import cell_counts

    n_pooled, n_single = cell_counts(results.pooled)
    headline = results.pooled.get("headline", pd.Series(dtype=str))
    failed = results.excluded["reason"].str.startswith("cell could not be pooled")
    return {"input_rows": int(len(results.inputs.estimates)), "studies": int(len(results.studies)),
            "excluded": int(len(results.excluded)),
            "removed": [[key, int(n)] for key, n in cells.plan_removals(results.excluded).items()],
            "pooled_cells": int(n_pooled), "single_study_cells": int(n_single),
            "bayes_cells": int((headline == fewstudies.HEADLINE_BAYES).sum()), "failed_cells": int(failed.sum())}


def _print_counts(console: dict, plan, lang: str) -> None:
    """The lines of ``meta run`` between reading and writing: rows used and excluded, what the plan removed, and
    the cells pooled (from :func:`_console_counts`)."""
    from meta.i18n import fmt_g, method_words, t

    print(t("console_rows", lang, n_in=console["input_rows"], used=console["studies"], excluded=console["excluded"]))
    print(removed_text(dict(console["removed"]), lang))
    n_bayes = console["bayes_cells"]
    print(t("console_cells", lang, pooled=console["pooled_cells"], single=console["single_study_cells"],
            method=method_words(plan.method, plan.test, lang), level=fmt_g(plan.level, lang),
            bayes=t("console_bayes", lang, n=n_bayes, k=plan.few_studies_k) if n_bayes else ""))


def cmd_coverage(args) -> int:
    """``meta coverage``: which cells have numbers (the coverage matrix), on stdout."""
    import pandas as pd

    from meta.analyses import tables
    from meta.analyses.pipeline import analyse

    _, plan, inputs = args.loaded  # read by the preflight
    results = analyse(Path(args.inputs), plan, sensitivity=False, inputs=inputs)  # coverage prints no sensitivity
    if args.wide:
        wide = tables.coverage_matrix(results.coverage)
        with pd.option_context("display.width", 10000, "display.max_columns", 500, "display.max_rows", 5000):
            print(wide.to_string(index=False))
    else:
        print(tables.coverage_text(results.coverage))
    return 0


def cmd_template(args) -> int:
    """``meta template``: the blank rows of a pending municipality, its report's description and legends."""
    from meta.read import load
    from meta.template import blank

    plan = load_plan(plan_file(args.plan, args.inputs))
    inputs = load.load_inputs(Path(args.inputs))
    rows = blank.template_rows(inputs, plan, args.municipality)
    out = Path(args.out or f"template_{args.municipality}.csv")
    rows.to_csv(out, index=False, lineterminator="\n")
    print(f"meta: {len(rows)} pending cells of {args.municipality} written to {out}; fill them from the report")
    extra = ""
    if len(inputs.sources):
        src = out.with_name(f"{out.stem}_sources.csv")
        blank.source_template_rows().to_csv(src, index=False, lineterminator="\n")
        print(f"meta: the report's description for sources.csv written to {src}; fill it from its title page "
              "(leave it blank if the report is already in sources.csv)")
        extra = f" --sources {src}"
    legends = out.with_name(f"{out.stem}_legends.csv")
    blank.legend_template_rows().to_csv(legends, index=False, lineterminator="\n")
    print(f"meta: the legends of the tables whose significance marks you copy, one row per mark, go in {legends} "
          "(rows left blank add nothing)")
    extra += f" --legends {legends}"
    inputs_opt = "" if Path(args.inputs) == DEFAULT_INPUTS else f" --inputs {args.inputs}"
    print(f"meta: then: meta check {out}{extra}{inputs_opt}")
    print(f"meta: then: meta add {out}{extra}{inputs_opt}")
    return 0


def cmd_check(args) -> int:
    """``meta check``: a filled template validated; exit 2 with errors, 1 with empty cells, else 0."""
    from meta.read import load
    from meta.template import check

    inputs = load.load_inputs(Path(args.inputs))
    result = check.check_rows(Path(args.file), inputs, Path(args.sources) if args.sources else None,
                              Path(args.legends) if args.legends else None)
    print("\n".join(check.format_check(result)))
    return 2 if result.errors else (1 if result.empty else 0)


def cmd_add(args) -> int:
    """``meta add``: a filled template checked (as ``meta check``), then merged into the inputs."""
    from meta.read import load
    from meta.template import add, check

    inputs = load.load_inputs(Path(args.inputs))
    result = check.check_rows(Path(args.file), inputs, Path(args.sources) if args.sources else None,
                              Path(args.legends) if args.legends else None)
    if not result.ok:
        print("\n".join(check.format_check(result)))
        print(f"meta add: nothing written: fix the rows above first ({args.file} is unchanged)")
        return 2 if result.errors else 1
    print("\n".join(add.add_rows(result, Path(args.inputs))))
    return 0


def cmd_reconcile(args) -> int:
    """``meta reconcile``: the cells where two transcriptions differ; exit 0 when they agree, else 1."""
    from meta.template import compare

    lines = compare.reconcile(Path(args.first), Path(args.second))
    print("\n".join(lines))
    return 0 if len(lines) == 1 else 1


def _subcommand(sub, name: str, help: str, description: str, func, plan: bool = True, inputs: bool = True):
    """One subcommand with its description (ending in an example) and the shared --plan/--inputs options."""
    p = sub.add_parser(name, help=help, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    if plan:
        p.add_argument("--plan", help="plan TOML (default: plan.toml in the --inputs folder, else built-in defaults)")
    if inputs:
        p.add_argument("--inputs", default=str(DEFAULT_INPUTS), help="folder with the registers and estimates.csv")
    p.set_defaults(func=func)
    return p


def add_subcommands(sub) -> None:
    """Every subcommand but ``pool``: adding a municipality, the analysis, and the simulation study."""
    _add_transcription(sub)
    _add_analysis(sub)
    from meta import simulate

    simulate.add_subcommand(sub)


def _add_transcription(sub) -> None:
    """``meta template``, ``check``, ``add`` and ``reconcile`` (adding a municipality, :mod:`meta.template`)."""
    tp = _subcommand(
        sub, "template", "write the pending cells of a municipality as a CSV to fill in",
        "Write every arm x core outcome x horizon of the plan that is pending for a municipality,\n"
        "with the columns of inputs/estimates.csv, ready to fill from its report and append.\n"
        "Example: meta template --municipality groningen --out groningen.csv", cmd_template)
    tp.add_argument("--municipality", required=True, help="municipality code, e.g. groningen")
    tp.add_argument("--out", help="CSV to write (default template_<municipality>.csv)")

    ck = _subcommand(
        sub, "check", "validate a filled template on its own and say what is still empty",
        "Validate a filled template with the checks of meta run: one summary line, then every wrong\n"
        "cell grouped by column (exit 2), the empty cells grouped (exit 1); all complete and valid: exit 0.\n"
        "Example: meta check groningen.csv --sources groningen_sources.csv --legends groningen_legends.csv",
        cmd_check, plan=False)
    ck.add_argument("file", help="the filled template CSV")
    ck.add_argument("--sources", help="the filled description of the report (rows for sources.csv), when the "
                    "rows cite a report that sources.csv does not list yet")
    ck.add_argument("--legends", help="filled rows for significance_legends.csv: the legends of the tables whose "
                    "marks the rows copy")

    ad = _subcommand(
        sub, "add", "check a filled template and merge it into the inputs",
        "Check a filled template (as meta check), then append its rows to estimates.csv, mark the\n"
        "municipality transcribed in municipalities.csv, add the report to sources.csv and its\n"
        "legends to significance_legends.csv. Refuses rows that conflict with existing ones; writes\n"
        "nothing unless the merged inputs load; prints what changed. Identical rows are skipped.\n"
        "Example: meta add groningen.csv --sources groningen_sources.csv --legends groningen_legends.csv",
        cmd_add, plan=False)
    ad.add_argument("file", help="the filled template CSV")
    ad.add_argument("--sources", help="the filled description of the report (rows for sources.csv)")
    ad.add_argument("--legends", help="filled rows for significance_legends.csv (the legends of the tables)")

    rc = _subcommand(
        sub, "reconcile", "list every cell where two transcriptions of the same rows differ",
        "Compare two transcriptions (double entry) cell by cell; numbers are compared as numbers,\n"
        "the free-text note column is not compared. Exit 0 when they agree, 1 when they differ.\n"
        "Example: meta reconcile groningen_first.csv groningen_second.csv", cmd_reconcile, plan=False, inputs=False)
    rc.add_argument("first", help="the first transcription (CSV with the columns of estimates.csv)")
    rc.add_argument("second", help="the second transcription")


def _add_analysis(sub) -> None:
    """``meta run`` and ``meta coverage``."""
    from meta.i18n import DEFAULT_LANG, LANGS

    p = _subcommand(
        sub, "run", "run the analysis plan: inputs/ -> outputs/ (tables, figures, report)",
        "Run the analysis plan on the inputs and write outputs atomically.\n"
        "Example: meta run --plan inputs/plan.toml --out outputs", cmd_run)
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (replaced whole)")
    p.add_argument("--no-figures", action="store_true", help="skip figures and the report (tables only)")
    p.add_argument("--no-sensitivity", action="store_true",
                   help="skip the sensitivity analysis and component models (and so figures and report): quick checks")
    p.add_argument("--lang", default=DEFAULT_LANG, choices=LANGS, help="language of the report and figures (default nl)")
    p.add_argument("--svg", action="store_true", help="also write SVG copies of the forest plots and component figure")
    p.add_argument("--jobs", type=int, default=None,
                   help="processes drawing figures in parallel (default: CPUs available, at most 4)")

    cv = _subcommand(
        sub, "coverage", "print the coverage matrix (transcribed / derived-SE / printed-no-SE / not reported / pending /"
        " not applicable)",
        "Print which municipality x arm class x outcome x horizon cells have numbers: one character\n"
        "per arm class and municipality, at most 100 characters a line (--wide: full names).\n"
        "Example: meta coverage", cmd_coverage)
    cv.add_argument("--wide", action="store_true", help="one column per municipality / arm class, statuses in full "
                    "(about 550 characters a line)")


def command() -> None:
    """The ``meta`` command as a program (the console script, ``python -m meta`` and ``python -m meta.cli``):
    :func:`main`, then exit with its status without freeing the heap object by object.

    When the interpreter shuts down it collects garbage once more, which breaks the reference cycles that hold the
    modules, and then frees every object they held: the libraries, the inputs and the results (CPython's
    ``Py_FinalizeEx``). After a cold ``meta run`` on inputs/ that took 0.25-0.35 s on one core after the last
    output was in place, 10% of the run. Every object alive now is frozen (:func:`gc.freeze`) first, so that
    collection passes over them and the operating system takes the memory back at once: 0.06-0.07 s. Everything
    else about the exit is as before: the outputs were written, closed and swapped in before :func:`main`
    returned, ``atexit`` handlers run, stdout and stderr are flushed. In-process callers (the tests) call
    :func:`main`, which leaves the collector as it found it.
    """
    status = main()
    import gc

    gc.freeze()
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    command()

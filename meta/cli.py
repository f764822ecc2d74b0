"""Command line: ``meta pool``, ``meta run``, ``meta coverage``.

I/O lives here and in the writers; every other module is pure.
Bad input ends with one line on stderr naming file, row, column and the fix,
and exit status 2; ``run`` and ``coverage`` check the plan, the inputs and the
output folder before any work (:func:`preflight`). Warnings (a conversion
applied to an input, an ignored column, a plan entry nobody reports) are one
line each on stderr. Ctrl-C ends with status 130, SIGTERM with 143, and the outputs untouched.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
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


from meta import outdir, schema  # noqa: E402
from meta.errors import InputError  # noqa: E402  (one error type for all bad input; no pandas import)


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return value


def read_pool_csv(path: Path):
    """Read a ``meta pool`` CSV: columns ``yi`` and ``vi`` or ``sei``; optional ``label``.

    Read by :func:`meta.load.read_csv_strict`, the reader of every input file: comma-separated with decimal
    points, or semicolon-separated with decimal commas as Excel writes it in a Dutch locale (said on stderr);
    UTF-8 with or without byte-order mark. Returns (yi, vi) as lists of floats. Raises :class:`InputError`
    naming the file, row (1-based data row, header is row 0), column and the fix for the first problem.
    """
    from meta import load

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found; give the path of a CSV with columns yi and vi (or sei)")
    if not path.read_bytes().replace(b"\xef\xbb\xbf", b"", 1).strip():
        raise InputError(f"{path}: the file is empty; it needs a header row 'yi,vi' (or 'yi,sei') and one row per study")
    frame = load.read_csv_strict(path, ())  # no required columns: the messages below are pool's own
    columns = [c for c in frame.columns if c != "input_row"]
    if "yi" not in columns or not ({"vi", "sei"} & set(columns)):
        raise InputError(
            f"{path}: row 0 (header): columns {columns} lack 'yi' and one of 'vi'/'sei'; "
            "name the effect column yi and its variance vi (or standard error sei)"
        )
    if {"vi", "sei"} <= set(columns):
        raise InputError(f"{path}: row 0 (header): both 'vi' and 'sei' given; keep only one of them")
    unknown = [c or "(unnamed)" for c in columns if c not in ("yi", "vi", "sei", "label")]
    if unknown:
        log.warning(f"{path}: row 0 (header): column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                    "ignored; meta pool reads yi, vi or sei, and label")
    var_col = "vi" if "vi" in columns else "sei"
    yi, vi = [], []
    for i, y_text, v_text in zip(frame["input_row"], frame["yi"], frame[var_col]):
        values = {}
        for col, text in (("yi", y_text), (var_col, v_text)):
            try:
                x = schema.parse_number(text, exponent=True)  # Python's float would read 0_05 as 5
            except schema.SchemaError as exc:
                hint = ""
                if "," in text:
                    hint = (" (a decimal comma: use a dot as decimal separator in a comma-separated file, or save "
                            "the file with semicolons between the columns)")
                raise InputError(f"{path}: row {i}, column {col}: " + (f"{text!r} is not a number{hint}" if hint else
                                                                        str(exc)))
            if not math.isfinite(x):  # blank
                raise InputError(f"{path}: row {i}, column {col}: blank; every study needs yi and its vi (or sei)")
            values[col] = x
        if values[var_col] <= 0 or (var_col == "sei" and values[var_col] ** 2 == 0):
            raise InputError(f"{path}: row {i}, column {var_col}: {values[var_col]!r} must be > 0; check the study's standard error")
        yi.append(values["yi"])
        vi.append(values[var_col] ** 2 if var_col == "sei" else values[var_col])
    return yi, vi


#: The keys ``meta pool --bayes`` prints, in order (issue 12).
BAYES_POOL_KEYS = (
    "k", "model", "tau_prior_scale", "delta", "level", "mu_mean", "mu_median", "mu_sd", "mu_low", "mu_high",
    "tau_median", "tau_low", "tau_high", "pred_low", "pred_high", "p_gt_0", "p_lt_minus_delta", "p_within_delta",
)
BAYES_MODEL = "normal-normal random effects; flat prior on mu; half-normal prior on tau"


def _check_bayes_options(args) -> None:
    """Refuse options that do not apply to, or cannot define, the Bayesian model (one line each)."""
    if not (math.isfinite(args.level) and 0 < args.level < 100):
        raise InputError(f"--level {args.level!r}: must be a percentage between 0 and 100, such as 95")
    given = [f"--{name}" for name in ("method", "test") if getattr(args, name) is not None]
    if not args.bayes:
        extra = [flag for flag, val in (("--tau-prior-scale", args.tau_prior_scale), ("--delta", args.delta))
                 if val is not None]
        if extra:
            raise InputError(f"{' and '.join(extra)}: only for the Bayesian model; add --bayes")
        return
    if given:
        raise InputError(f"{' and '.join(given)}: not used with --bayes (the Bayesian model has no tau^2 estimator "
                         "or test); leave them out, or drop --bayes")
    for flag, val, ok, need in (("--tau-prior-scale", args.tau_prior_scale, lambda x: x > 0, "> 0"),
                                ("--delta", args.delta, lambda x: x >= 0, ">= 0")):
        if val is not None and not (math.isfinite(val) and ok(val)):
            raise InputError(f"{flag} {val!r}: must be a finite number {need} (in the units of yi)")


def cmd_pool_bayes(args) -> int:
    """``meta pool FILE --bayes``: the Bayesian normal-normal model (meta.bayes) as one JSON object."""
    from meta.bayes import bayes_pool

    yi, vi = read_pool_csv(Path(args.file))
    scale = 5.0 if args.tau_prior_scale is None else args.tau_prior_scale
    delta = 2.0 if args.delta is None else args.delta
    r = bayes_pool(yi, vi, scale, level=args.level, delta=delta)
    out = {"k": r.k, "model": BAYES_MODEL, "tau_prior_scale": scale, "delta": delta, "level": r.level,
           "mu_mean": r.mean, "mu_median": r.estimate, "mu_sd": r.sd, "mu_low": r.ci_low, "mu_high": r.ci_high,
           "tau_median": r.tau_median, "tau_low": r.tau_ci_low, "tau_high": r.tau_ci_high,
           "pred_low": r.pi_low, "pred_high": r.pi_high, "p_gt_0": r.p_gt_0,
           "p_lt_minus_delta": r.p_lt_minus_delta, "p_within_delta": r.p_within_delta}
    print(json.dumps({key: _jsonable(out[key]) for key in BAYES_POOL_KEYS}))
    return 0


def cmd_pool(args) -> int:
    from meta.engine import POOL_KEYS, pool

    _check_bayes_options(args)
    if args.bayes:
        return cmd_pool_bayes(args)
    yi, vi = read_pool_csv(Path(args.file))
    result = pool(yi, vi, method=args.method or "REML", test=args.test or "knha", level=args.level)
    out = {key: _jsonable(val) for key, val in result.to_dict(POOL_KEYS).items()}
    print(json.dumps(out))
    return 0


def build_parser(pool_only: bool = False) -> argparse.ArgumentParser:
    """The ``meta`` parser; ``pool_only`` registers only ``meta pool`` (it then imports no pandas, no figures)."""
    from meta.engine import METHODS, TESTS

    parser = argparse.ArgumentParser(
        prog="meta",
        description=(
            "Pool the Experimenten Participatiewet across municipalities.\n"
            "Example: meta run            (the default plan, into outputs/)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "pool",
        help="pool one table of effects (CSV with yi and vi or sei) and print JSON",
        description=(
            "Pool the studies of one CSV (columns yi and vi or sei, optional label) with a\n"
            "random-effects model and print one JSON object. Comma-separated with decimal points, or\n"
            "semicolon-separated with decimal commas (Excel in a Dutch locale).\n"
            "With --bayes: the Bayesian normal-normal model (flat prior on mu, half-normal prior\n"
            "on tau with scale --tau-prior-scale), posterior medians, central credible intervals,\n"
            "the predictive interval for a new study's true effect and the probabilities\n"
            "P(mu > 0), P(mu < -delta) and P(|mu| < delta).\n"
            "Example: meta pool effects.csv --method REML --test knha --level 95\n"
            "Example: meta pool effects.csv --bayes --tau-prior-scale 5 --delta 2"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="CSV file, one row per study")
    p.add_argument("--method", default=None, type=str.upper, choices=METHODS, help="tau^2 estimator (default REML)")
    p.add_argument("--test", default=None, type=str.lower, choices=TESTS, help="inference for the pooled effect (default knha)")
    p.add_argument("--level", default=95.0, type=float, help="confidence or credible level in percent (default 95)")
    p.add_argument("--bayes", action="store_true",
                   help="Bayesian normal-normal model instead (flat prior on mu, half-normal prior on tau)")
    p.add_argument("--tau-prior-scale", type=float, default=None,
                   help="with --bayes: scale of the half-normal prior on tau, in the units of yi (default 5, the "
                        "plan's scale for percentage points)")
    p.add_argument("--delta", type=float, default=None,
                   help="with --bayes: threshold delta of P(mu < -delta) and P(|mu| < delta), in the units of yi "
                        "(default 2, the plan's delta for percentage points)")
    p.set_defaults(func=cmd_pool)
    if pool_only:
        return parser

    from meta import pipeline

    pipeline.add_subcommands(sub)
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
        if message not in self.seen:  # the inputs are read twice (preflight, then the run): say things once
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
    inputs, and (``run``) the output folder. Warnings go to stderr once."""
    from meta import load, pipeline

    plan_path = pipeline.plan_file(args.plan, args.inputs)
    plan = load.load_plan(plan_path)
    inputs = load.load_inputs(Path(args.inputs))
    for message in load.check_plan(plan, inputs, plan_path):
        log.warning(message)
    args.loaded_inputs = inputs  # the run uses them: the inputs are read once
    if getattr(args, "out", None) is not None and args.command == "run":
        out = outdir.check_out_dir(args.out, [Path(args.inputs)] + ([plan_path] if plan_path else []))
        outdir.recover_interrupted(out)


def _terminated(signum, frame):
    outdir.request_stop(signum)  # honoured before the outputs are replaced, even if this exception is swallowed
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: a half-written temporary output folder is removed


def _interrupted(signum, frame):
    outdir.request_stop(signum)
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
    outdir.clear_stop()
    outdir.STAGE[0] = "start"
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, _terminated)
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a background job keeps ignoring Ctrl-C
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, _interrupted)
    try:
        if args.command in ("run", "coverage"):
            outdir.checkpoint("read")
            preflight(args)
        status = args.func(args)
        stopped = outdir.stop_requested()
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
        from meta.engine import PoolingError

        stage = outdir.STAGES.get(outdir.STAGE[0], outdir.STAGE[0])
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
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

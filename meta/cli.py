"""Command line: ``meta pool``, ``meta run``, ``meta coverage``.

I/O lives here and in the writers; every other module is pure.
Bad input ends with one line on stderr naming file, row, column and the fix,
and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2


from meta.load import InputError  # noqa: E402  (one error type for all bad input)


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return value


def read_pool_csv(path: Path):
    """Read a ``meta pool`` CSV: columns ``yi`` and ``vi`` or ``sei``; optional ``label``.

    Returns (yi, vi) as lists of floats. Raises :class:`InputError` naming the
    file, row (1-based data row, header is row 0) and column of the first problem.
    """
    import pandas as pd

    if not path.exists():
        raise InputError(f"{path}: file not found; give the path of a CSV with columns yi and vi (or sei)")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty; it needs a header row 'yi,vi' (or 'yi,sei') and one row per study")
    except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file
        raise InputError(f"{path}: cannot be read as CSV ({exc}); save it as comma-separated UTF-8")
    frame.columns = [str(c).strip() for c in frame.columns]
    if "yi" not in frame.columns or not ({"vi", "sei"} & set(frame.columns)):
        raise InputError(
            f"{path}: row 0 (header): columns {list(frame.columns)} lack 'yi' and one of 'vi'/'sei'; "
            "name the effect column yi and its variance vi (or standard error sei)"
        )
    if {"vi", "sei"} <= set(frame.columns):
        raise InputError(f"{path}: row 0 (header): both 'vi' and 'sei' given; keep only one of them")
    if len(frame) == 0:
        raise InputError(f"{path}: header only, no studies; add one row per study")
    var_col = "vi" if "vi" in frame.columns else "sei"
    yi, vi = [], []
    for i, row in enumerate(frame.itertuples(index=False), start=1):
        values = {}
        for col in ("yi", var_col):
            text = str(getattr(row, col)).strip()
            try:
                x = float(text)
            except ValueError:
                hint = " (use a dot as decimal separator)" if "," in text else ""
                raise InputError(f"{path}: row {i}, column {col}: {text!r} is not a number{hint}")
            if not math.isfinite(x):
                raise InputError(f"{path}: row {i}, column {col}: {text!r} is not a finite number")
            values[col] = x
        if values[var_col] <= 0:
            raise InputError(f"{path}: row {i}, column {var_col}: {values[var_col]!r} must be > 0; check the study's standard error")
        yi.append(values["yi"])
        vi.append(values[var_col] ** 2 if var_col == "sei" else values[var_col])
    return yi, vi


def cmd_pool(args) -> int:
    from meta.engine import POOL_KEYS, pool

    yi, vi = read_pool_csv(Path(args.file))
    result = pool(yi, vi, method=args.method, test=args.test, level=args.level)
    out = {key: _jsonable(val) for key, val in result.to_dict(POOL_KEYS).items()}
    print(json.dumps(out))
    return 0


def build_parser() -> argparse.ArgumentParser:
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
            "random-effects model and print one JSON object.\n"
            "Example: meta pool effects.csv --method REML --test knha --level 95"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="CSV file, one row per study")
    p.add_argument("--method", default="REML", type=str.upper, choices=METHODS, help="tau^2 estimator (default REML)")
    p.add_argument("--test", default="knha", type=str.lower, choices=TESTS, help="inference for the pooled effect (default knha)")
    p.add_argument("--level", default=95.0, type=float, help="confidence level in percent (default 95)")
    p.set_defaults(func=cmd_pool)

    from meta import pipeline

    pipeline.add_subcommands(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"meta: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001
        from meta.engine import PoolingError

        if isinstance(exc, PoolingError):
            print(f"meta: error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

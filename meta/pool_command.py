"""``meta pool``: one table of effects pooled by the random-effects engine or the Bayesian model, printed as JSON.

Registered by :func:`meta.cli.build_parser` (:func:`add_pool`). Imports nothing heavy until it runs: ``meta pool``
loads only the engine (numpy, scipy) and the CSV reader.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from meta.errors import InputError


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return value


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
    """``meta pool FILE --bayes``: the Bayesian normal-normal model (meta.models.bayes) as one JSON object."""
    from meta.models.bayes import bayes_pool

    from meta.read.pool import read_pool_csv

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
    """``meta pool FILE``: the random-effects model (meta.models.engine) as one JSON object."""
    from meta.models.engine import POOL_KEYS, pool
    from meta.read.pool import read_pool_csv

    _check_bayes_options(args)
    if args.bayes:
        return cmd_pool_bayes(args)
    yi, vi = read_pool_csv(Path(args.file))
    result = pool(yi, vi, method=args.method or "REML", test=args.test or "knha", level=args.level)
    out = {key: _jsonable(val) for key, val in result.to_dict(POOL_KEYS).items()}
    print(json.dumps(out))
    return 0


def add_pool(sub) -> None:
    """``meta pool``: its options, checked against the engine's estimators and tests."""
    from meta.models.choices import METHODS, TESTS  # names only: the engine (numpy, scipy) is imported to pool

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

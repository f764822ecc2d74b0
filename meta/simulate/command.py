"""``meta simulate``: its options (registered on ``meta``'s parser by :mod:`meta.cli`) and what it does."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace

from meta.simulate.settings import DEFAULT_OUT, JSON_FILE, RESULTS_FILE, SUMMARY_FILE, Settings

QUICK = {"reps": 300, "bayes_reps": 20}
DEFAULTS = Settings()


def _add_options(p: argparse.ArgumentParser) -> None:
    """The options of ``meta simulate``; their defaults are :class:`Settings`' (one place)."""
    d = DEFAULTS
    p.add_argument("--reps", type=int, default=None,
                   help=f"replications per tau (default {d.reps}; {QUICK['reps']} with --quick)")
    p.add_argument("--bayes-reps", type=int, default=None,
                   help=f"replications for the Bayesian model, the first of --reps (default {d.bayes_reps}; "
                        f"{QUICK['bayes_reps']} with --quick; 0 to skip)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    p.add_argument("--mu", type=float, default=d.mu, help=f"mean true effect in pp (default {d.mu:g})")
    p.add_argument("--tau", type=float, nargs="+", default=list(d.taus),
                   help="between-municipality SD(s) of the true effect in pp (default 0 3 6)")
    p.add_argument("--k", type=int, nargs="+", default=list(d.ks),
                   help="numbers of municipalities pooled, the first k of nijmegen wageningen groningen tilburg "
                        "utrecht deventer (default 2 3 4 5 6)")
    p.add_argument("--tau-prior-scale", type=float, default=d.tau_prior_scale,
                   help=f"scale of the half-normal prior on tau in pp (default {d.tau_prior_scale:g})")
    p.add_argument("--few-studies-k", type=int, default=d.few_studies_k,
                   help=f"the summary's headline rule: Bayesian for k <= this, REML + HKSJ above (default "
                        f"{d.few_studies_k}, the plan's few_studies_k); does not change any pooled result")
    p.add_argument("--rho", type=float, default=d.rho,
                   help=f"latent correlation of the baseline covariate with the outcome (default {d.rho:g})")
    p.add_argument("--regression-se", choices=("hc1", "classical"), default=d.regression_se,
                   help="standard errors of the per-municipality regression (default hc1)")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="processes for the Bayesian part (default min(2, cores)); results do not depend on it")
    p.add_argument("--quick", action="store_true",
                   help=f"a fast run for tests: --reps {QUICK['reps']} --bayes-reps {QUICK['bayes_reps']} "
                        "unless given")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"folder for {RESULTS_FILE}, {JSON_FILE} and {SUMMARY_FILE} "
                                                      f"(default {DEFAULT_OUT}/)")


DESCRIPTION = (
    "Simulation study of the whole chain: individual-level trials shaped like the six experiments, the LOEP-style\n"
    "regression per municipality, estimates printed with SEs or only with significance marks, SEs reconstructed\n"
    "as meta.effects.harmonise does, then pooling for k = 2..6 with DL/REML/PM x z/knha/adhoc and the Bayesian model.\n"
    "Writes simulation_results.csv (coverage, bias, prediction-interval coverage, Monte Carlo SEs),\n"
    "simulation_summary.json (settings and diagnostics; what the report reads with the results) and\n"
    "simulation_summary.md (the verdict in plain words) into --out.\n"
    "Example: meta simulate --reps 2000 --out inputs/simulation"
)


def add_subcommand(sub) -> argparse.ArgumentParser:
    """Register ``meta simulate`` on an argparse subparsers object."""
    p = sub.add_parser("simulate", help="simulation study: actual coverage and bias of the pooled intervals",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_options(p)
    p.set_defaults(func=cmd_simulate)
    return p


def settings_from_args(args) -> Settings:
    """The checked :class:`Settings` of parsed ``meta simulate`` options (``--quick`` fills unset counts)."""
    reps = args.reps if args.reps is not None else (QUICK["reps"] if args.quick else DEFAULTS.reps)
    bayes = args.bayes_reps if args.bayes_reps is not None else (
        QUICK["bayes_reps"] if args.quick else DEFAULTS.bayes_reps)
    return replace(DEFAULTS, reps=reps, bayes_reps=min(bayes, reps), seed=args.seed, mu=args.mu,
                   taus=tuple(args.tau), ks=tuple(sorted(set(args.k))), tau_prior_scale=args.tau_prior_scale,
                   few_studies_k=args.few_studies_k, rho=args.rho, regression_se=args.regression_se, jobs=max(1, args.jobs)).check()


def cmd_simulate(args) -> int:
    """Run ``meta simulate``: simulate, write the three files, print where they are and the verdict."""
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"meta simulate: error: {exc}", file=sys.stderr)
        return 2
    from meta.simulate.study import run_simulation  # imported when run: building meta's parser stays light
    from meta.simulate.summary import write_outputs
    from meta.simulate.words import verdict_sentences

    res = run_simulation(settings)
    csv_path, json_path, md_path = write_outputs(res, args.out)
    print(f"wrote {csv_path}, {json_path} and {md_path} ({res.seconds:.0f} s)")
    for line in verdict_sentences(res.results, settings):
        print(line)
    return 0


def main(argv=None) -> int:
    """Stand-alone entry point: ``main(['--out', 'inputs/simulation'])`` is ``meta simulate --out inputs/simulation``."""
    parser = argparse.ArgumentParser(prog="meta simulate", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_options(parser)
    return cmd_simulate(parser.parse_args(argv))

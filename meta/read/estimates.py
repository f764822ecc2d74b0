"""The transcription, ``estimates.csv``: every printed number with its unit, uncertainty, mark and source line.

:func:`load_estimates` checks every cell against :data:`meta.read.schema.ESTIMATES`, every code against its
register, and each row's cells against each other (the printed token re-read gives the estimate and the mark;
SE, interval and p-value agree within their rounding); then the rows of one source table against each other
(one unit per outcome; a lone code is refused, and a lone horizon, number of decimals, filled or blank cell that
looks like a typo is warned about).
"""

from __future__ import annotations

import difflib
import itertools
from collections import Counter, namedtuple
import logging
import math
import re
from pathlib import Path
from statistics import NormalDist

import pandas as pd

from meta.errors import InputError
from meta.read import schema
from meta.read.reader import check_codes, check_unique, read_csv_strict, validate_table, where
from meta.read.schema import SIGNIFICANCE_MARKS

# Column lists, from the one declaration of ``estimates.csv`` in meta/read/schema.py.
ESTIMATE_COLUMNS = schema.ESTIMATES.required
ESTIMATE_FLOATS = schema.ESTIMATES.of_kind("number")
ESTIMATE_OPTIONAL_INTS = tuple(c for c in schema.ESTIMATES.optional if c in schema.INT_COLUMNS)
ESTIMATE_INTS = tuple(c for c in schema.ESTIMATES.of_kind("whole") if c not in ESTIMATE_OPTIONAL_INTS)
ESTIMATE_KEY = schema.ESTIMATES.key
#: Cells a table fills for all its rows or for none: one row filled where the others are blank is warned about.
_FILLED_TOGETHER = ("se", "ci_low", "ci_high", "p_value", "n_arm", "n_control", "n_table", "share_arm",
                    "share_control")

log = logging.getLogger(__name__)


def load_estimates(path: Path, municipalities, arms, outcomes, legends) -> pd.DataFrame:
    """Load ``estimates.csv``: every cell against :data:`meta.read.schema.ESTIMATES`, then against the registers.

    Beyond the cells: the unit is known and the estimate in its range (a level or a difference), the
    ``printed`` token re-read gives the estimate and the mark, the SE is plausible for the unit, the interval
    holds the estimate, a p-value agrees with its mark's legend, and every code is in its register.
    """
    frame = read_csv_strict(path, ESTIMATE_COLUMNS)
    for col in ESTIMATE_OPTIONAL_INTS:
        if col not in frame.columns:
            frame[col] = ""
    frame = validate_table(frame, schema.ESTIMATES, path, convert=ESTIMATE_FLOATS + ESTIMATE_INTS + ESTIMATE_OPTIONAL_INTS)
    _check_registers(frame, path, municipalities, arms, outcomes)
    printed = [schema.parse_printed(t) for t in frame["printed"]]  # read once: each row, then decimals by table
    warnings = _check_rows(frame, path, printed, municipalities, arms, legends)
    _check_units_agree(frame, path)
    _check_lone_codes(frame, path)
    warnings += (_lone_horizons(frame, path) + _lone_decimals(frame, path, printed) + _lone_filled(frame, path)
                 + _lone_blank(frame, path))
    if warnings:
        more = f" (and {len(warnings) - 1} more rows)" if len(warnings) > 1 else ""
        log.warning(warnings[0] + more)
    return frame


def _check_registers(frame: pd.DataFrame, path: Path, municipalities, arms, outcomes) -> None:
    """Every municipality, arm, comparator and outcome is in its register, no pending municipality has rows, and
    the key (:data:`ESTIMATE_KEY`) is unique."""
    codes = list(municipalities["municipality"])
    check_codes(frame, path, "municipality", set(codes), "municipality",
                f"use one of {', '.join(codes)}, or add the municipality to municipalities.csv")
    pending = set(municipalities.loc[municipalities["status"] == "pending", "municipality"])
    munis, rows = frame["municipality"].tolist(), frame["input_row"].tolist()  # each column's values at once
    for muni, row in zip(munis, rows):
        if muni in pending:
            raise InputError(
                f"{where(path, row, 'municipality')}: {muni!r} is 'pending' in municipalities.csv but has estimate rows; "
                "set its status to 'transcribed' once its numbers are checked, or remove the rows"
            )
    arm_keys = set(zip(arms["municipality"], arms["arm"]))
    for col in ("arm", "comparator"):
        for muni, value, row in zip(munis, frame[col].tolist(), rows):
            if col == "comparator" and value == "none":
                continue
            if (muni, value) not in arm_keys:
                raise InputError(
                    f"{where(path, row, col)}: unknown arm {value!r} for {muni}; add it to arms.csv or use a listed arm code"
                )
    check_codes(frame, path, "outcome", set(outcomes["outcome"]), "outcome", "add it to outcomes.csv or fix the code")
    check_unique(frame, path, ESTIMATE_KEY, "give the rows different model or population codes, or remove one")


def _check_rows(frame: pd.DataFrame, path: Path, printed: list, municipalities, arms, legends) -> list[str]:
    """The checks of each row on its own (:func:`_check_mark`, :func:`_check_estimate_row`,
    :func:`_check_sample_sizes`); returns the warnings."""
    legend_keys = set(zip(legends["source_file"], legends["source_table"], legends["mark"]))
    legend_band = {(f, t, m): (pb, pa) for f, t, m, pb, pa in zip(legends["source_file"], legends["source_table"],
                                                                  legends["mark"], legends["p_below"],
                                                                  legends["p_at_least"])}
    randomised = ({m: int(n) for m, n in zip(municipalities["municipality"], municipalities["n_randomised_total"]) if n}
                  if "n_randomised_total" in municipalities.columns else {})
    is_randomised = dict(zip(zip(arms["municipality"], arms["arm"]), arms["randomised"]))
    warnings = []
    Row = namedtuple("Row", frame.columns, rename=True)  # as itertuples names them; the columns read at once
    for r, token in zip(itertools.starmap(Row, zip(*(c.tolist() for _, c in frame.items()))), printed):
        at = lambda col: where(path, r.input_row, col)  # noqa: E731
        _check_mark(r, at, legend_keys)
        warnings += _check_estimate_row(r, at, token, legend_band)
        total = randomised.get(r.municipality)
        if not (is_randomised.get((r.municipality, r.arm)) and (r.comparator == "none" or
                                                                is_randomised.get((r.municipality, r.comparator)))):
            total = None  # a non-randomised reference group counts people outside the experiment
        _check_sample_sizes(r, at, total)
    return warnings


def _check_mark(r, at, legend_keys: set) -> None:
    """A significance mark is one of ~ * ** *** or defined by its table's legend, and every mark has a legend."""
    if r.significance not in SIGNIFICANCE_MARKS and (r.source_file, r.source_table, r.significance) not in legend_keys:
        raise InputError(
            f"{at('significance')}: significance mark {r.significance!r} is not one of ~ * ** *** and no legend "
            f"of {r.source_table} defines it; copy the mark as printed and add the table's legend to "
            "significance_legends.csv, or leave it blank"
        )
    if r.significance and (r.source_file, r.source_table, r.significance) not in legend_keys:
        raise InputError(
            f"{at('significance')}: no legend for mark {r.significance!r} in {r.source_file} {r.source_table}; "
            "add the table's legend to significance_legends.csv"
        )


def _check_sample_sizes(r, at, total: int | None) -> None:
    """No sample size exceeds the number of people the municipality randomised (``total``; None: no limit)."""
    for col in ("n_arm", "n_control", "n_table"):
        n = getattr(r, col)
        if total and not pd.isna(n) and n > total:
            raise InputError(f"{at(col)}: sample size {n} exceeds the {total} people {r.municipality} randomised "
                             "(municipalities.csv n_randomised_total); check the number")


def _check_estimate_row(r, at, printed: schema.Printed | None, legend_band: dict) -> list[str]:
    """The checks of one ``estimates.csv`` row that need more than one cell; returns warnings.

    ``printed`` is the row's ``printed`` token as :func:`meta.read.schema.parse_printed` reads it.
    """
    u = schema.unit(r.unit)
    if u is None:
        raise InputError(f"{at('unit')}: unknown unit {r.unit!r}; use one of {schema.unit_names()}")
    lo, hi = u.level if r.comparator == "none" else (-u.width, u.width)
    if not (lo <= r.estimate <= hi):
        raise InputError(f"{at('estimate')}: {r.estimate:g} is outside [{lo:g}, {hi:g}] allowed for "
                         f"{'a level' if r.comparator == 'none' else 'a difference'} in unit {r.unit!r}; check the "
                         "unit (proportion vs percent, the scale) or the number")
    warnings = _check_printed(r, at, printed)
    s_lo, s_hi = u.se_range
    if not math.isnan(r.se) and not (s_lo < r.se <= s_hi):
        raise InputError(f"{at('se')}: standard error {r.se:g} is implausible for unit {r.unit!r} (it must be "
                         f"above {s_lo:g} and at most {s_hi:g}); check the printed value and the unit")
    _check_interval(r, at, u)
    band = legend_band.get((r.source_file, r.source_table, r.significance))
    if band is not None and not math.isnan(r.p_value):
        p_below, p_at_least = band
        if (not math.isnan(p_below) and r.p_value >= p_below) or (not math.isnan(p_at_least) and
                                                                  r.p_value < p_at_least):
            raise InputError(f"{at('p_value')}: p-value {r.p_value:g} contradicts the mark {r.significance!r} "
                             f"(p in [{p_at_least:g}, {p_below:g}) by the legend of {r.source_table}); check the "
                             "p-value, the mark and the legend")
    _check_se_ci_p_agree(r, at, printed)
    return warnings


def _check_printed(r, at, printed: schema.Printed | None) -> list[str]:
    """The printed token gives the row's estimate, mark and (with a % sign) unit; returns a warning when a
    percent unit has a token that looks like a proportion."""
    if printed is None:
        raise InputError(f"{at('printed')}: {r.printed!r} cannot be read as a printed number; copy the token "
                         "exactly as printed (digits with a decimal comma or dot, optional %, then the mark)")
    if abs(printed.number - r.estimate) > 1e-9 * max(1.0, abs(r.estimate)):
        raise InputError(f"{at('estimate')}: {r.estimate:g} differs from the printed token {r.printed!r} "
                         f"({printed.number:g}); write the number as printed (estimate is the printed number in "
                         "its printed unit)")
    if r.significance and not printed.mark and math.isnan(r.p_value):
        raise InputError(f"{at('significance')}: mark {r.significance!r} is not in the printed token {r.printed!r}; "
                         "copy the token with its mark (a mark printed in another column needs the row's p_value)")
    if printed.mark and printed.mark != r.significance:
        raise InputError(f"{at('significance')}: mark {r.significance!r} differs from the mark in the printed "
                         f"token {r.printed!r} ({printed.mark!r}); copy the mark as printed")
    if printed.percent and r.unit not in ("percent", "percentage_points"):
        raise InputError(f"{at('unit')}: the printed token {r.printed!r} has a % sign but the unit is "
                         f"{r.unit!r}; use percent (a level) or percentage_points (a difference)")
    if r.unit in ("percent", "percentage_points") and not printed.percent and abs(r.estimate) < 1 \
            and printed.decimals >= 2:
        return [f"{at('unit')}: unit {r.unit!r} but the printed token {r.printed!r} has no % sign and "
                "looks like a proportion; check the unit"]
    return []


def _check_interval(r, at, u: schema.Unit) -> None:
    """An interval is ordered, has width, holds the estimate, has its level and fits in the unit's range."""
    if math.isnan(r.ci_low) or math.isnan(r.ci_high):
        return
    if r.ci_low > r.ci_high:
        raise InputError(f"{at('ci_low')}: ci_low {r.ci_low} > ci_high {r.ci_high}; swap them")
    if r.ci_low == r.ci_high:
        raise InputError(f"{at('ci_high')}: the interval [{r.ci_low}, {r.ci_high}] has no width; check the "
                         "two bounds against the source line")
    if not (r.ci_low <= r.estimate <= r.ci_high):
        raise InputError(
            f"{at('ci_low' if r.estimate < r.ci_low else 'ci_high')}: the interval [{r.ci_low}, {r.ci_high}] "
            f"does not contain the estimate {r.estimate}; check the three numbers against the source line")
    if math.isnan(r.ci_level):
        raise InputError(f"{at('ci_level')}: a CI is given without its level; write e.g. 95")
    if r.ci_high - r.ci_low > 2 * u.width:
        raise InputError(f"{at('ci_high')}: the interval [{r.ci_low:g}, {r.ci_high:g}] is wider than the "
                         f"whole range of unit {r.unit!r}; check the bounds and the unit")


def _half_unit(x: float) -> float:
    """Half a unit of the last decimal of ``x`` as written in the file (0.0005 for 0.029)."""
    text = repr(float(x))
    if "e" in text:
        return 0.0
    decimals = len(text.split(".")[1].rstrip("0")) if "." in text else 0
    return 0.5 * 10.0 ** -decimals


def _check_se_ci_p_agree(r, at, printed) -> None:
    """Where a row gives two of SE, interval and p-value, they must agree within the rounding of the printed
    numbers: SE ≈ (ci_high − ci_low) / (2 z), and p ≈ 2 Φ(−|estimate| / SE). A typo in one of them would
    otherwise change the SE used without a word."""
    if not math.isnan(r.se) and not (math.isnan(r.ci_low) or math.isnan(r.ci_high) or math.isnan(r.ci_level)):
        z = -NormalDist().inv_cdf((1 - r.ci_level / 100) / 2)
        implied = (r.ci_high - r.ci_low) / (2 * z)
        slack = (_half_unit(r.ci_low) + _half_unit(r.ci_high)) / (2 * z) + _half_unit(r.se) + 1e-12
        if abs(implied - r.se) > max(slack, 0.02 * r.se):
            raise InputError(f"{at('se')}: standard error {r.se:g} disagrees with the interval "
                             f"[{r.ci_low:g}, {r.ci_high:g}] (which implies {implied:.3g}); check both against the "
                             "source line")
    if not math.isnan(r.se) and not math.isnan(r.p_value) and r.se > 0:
        h_e = printed.half_unit
        h_s = _half_unit(r.se)
        z_lo = max(abs(r.estimate) - h_e, 0.0) / (r.se + h_s)
        z_hi = (abs(r.estimate) + h_e) / max(r.se - h_s, 1e-300)
        p_hi, p_lo = 2 * NormalDist().cdf(-z_lo), 2 * NormalDist().cdf(-z_hi)
        h_p = _half_unit(r.p_value)
        if not (p_lo - h_p - 1e-12 <= r.p_value <= p_hi + h_p + 1e-12):
            raise InputError(f"{at('p_value')}: p-value {r.p_value:g} disagrees with the estimate {r.estimate:g} and "
                             f"its standard error {r.se:g} (which give p between {p_lo:.3g} and {p_hi:.3g}); check the "
                             "three numbers against the source line")


# --------------------------------------------------------------------------- #
# the rows of one source table against each other
# --------------------------------------------------------------------------- #
def _check_units_agree(frame: pd.DataFrame, path: Path) -> None:
    """One table prints one outcome in one unit: the levels (comparator ``none``) of a table and outcome share a
    unit, and so do its differences. A row that differs from the majority is refused (a unit typo would
    otherwise scale the number by 100)."""
    kind = (frame["comparator"] == "none").map({True: "levels", False: "differences"})
    keyed = frame.assign(_kind=kind).groupby(["source_file", "source_table", "outcome", "_kind"], sort=False)
    if not (keyed["unit"].nunique() > 1).any():  # every group in one unit (missing units not counted): nothing to say
        return
    for key, group in keyed:
        units = group["unit"].value_counts()
        if len(units) > 1:
            majority = units.index[0]
            r = group[group["unit"] != majority].iloc[0]
            raise InputError(f"{where(path, int(r['input_row']), 'unit')}: unit {r['unit']!r}, but the other "
                             f"{key[3]} of {key[2]} in {key[1]} are in {majority!r}; one table prints one outcome in one "
                             "unit: check the unit against the printed token")


def _check_lone_codes(frame: pd.DataFrame, path: Path) -> None:
    """``model`` and ``population`` have no register: a code is refused when it is not lower-case letters, digits
    and _, or when it occurs in one row only and looks like a code other rows use (``loepx`` next to ``loep``):
    a typo there would move the row out of the plan's preferences without a word."""
    for col in ("model", "population"):
        counts = frame[col].value_counts()
        common = [c for c in counts.index if counts[c] > 1]
        for value, row in zip(frame[col], frame["input_row"]):
            if not schema.CODE.fullmatch(value):
                raise InputError(f"{where(path, row, col)}: code {value!r} must be lower-case letters, digits and _ "
                                 f"(e.g. {re.sub('[^a-z0-9_]', '', value.lower()).strip('_')!r})")
            if counts[value] == 1:
                close = difflib.get_close_matches(value, common, 1, cutoff=0.8)
                if close:
                    raise InputError(f"{where(path, row, col)}: {col} {value!r} occurs in this row only and looks like "
                                     f"{close[0]!r} ({counts[close[0]]} rows); fix the code (or, if it is really "
                                     "another model, give it a name that is not a near-copy)")


def _lone_horizons(frame: pd.DataFrame, path: Path) -> list[str]:
    """Warnings for a horizon that occurs in one row only of a table whose other rows share other horizons (``6``
    typed for ``16`` moves the row out of the plan's horizons). Horizon 0 (a baseline measurement) is exempt."""
    out = []
    horizons, rows = frame["horizon_months"].tolist(), frame["input_row"].tolist()
    for (_, table), idx in _groups(frame, ["source_file", "source_table"]):
        group = [(horizons[i], rows[i]) for i in idx]
        counts = Counter(h for h, _ in group if not pd.isna(h))
        blank = [row for h, row in group if pd.isna(h)]
        if len(counts) and len(blank) == 1:
            out.append(f"{where(path, int(blank[0]), 'horizon_months')}: blank in this row only of {table} (its other "
                       "rows have horizons); check it against the table")
        if len(counts) < 2:
            continue
        for h, row in group:
            if not pd.isna(h) and h != 0 and counts[h] == 1:
                others = ", ".join(str(int(x)) for x in sorted(counts) if x != h)
                out.append(f"{where(path, row, 'horizon_months')}: horizon {int(h)} occurs in this row only of "
                           f"{table} (its other rows: {others}); check it against the table")
    return out


def _lone_filled(frame: pd.DataFrame, path: Path) -> list[str]:
    """Warnings for a value in one row only of a table whose other rows leave that column blank (an SE typed
    into the wrong row would replace the SE derived from the row's mark)."""
    out = []
    filled, rows = frame[list(_FILLED_TOGETHER)].notna().to_numpy(), frame["input_row"].to_numpy()
    for (_, table), idx in _groups(frame, ["source_file", "source_table"]):
        if len(idx) < 3:
            continue
        for j, col in enumerate(_FILLED_TOGETHER):
            hit = idx[filled[idx, j]]
            if len(hit) == 1:
                out.append(f"{where(path, int(rows[hit[0]]), col)}: the only row of {table} with a {col}; check that "
                           "it belongs to this row")
    return out


def _lone_blank(frame: pd.DataFrame, path: Path) -> list[str]:
    """Warnings for a cell left blank in one row only of a table's rows of one outcome (those with a horizon, or
    those without) that fill that column otherwise: a value deleted by mistake (an N, an SE) would change how the
    row's SE is derived without a word. The mirror of :func:`_lone_filled`."""
    out = []
    blank, rows = frame[list(_FILLED_TOGETHER)].isna().to_numpy(), frame["input_row"].to_numpy()
    keyed = frame.assign(_no_horizon=frame["horizon_months"].isna())
    for (_, table, outcome, _), idx in _groups(keyed, ["source_file", "source_table", "outcome", "_no_horizon"]):
        if len(idx) < 3:
            continue
        for j, col in enumerate(_FILLED_TOGETHER):
            hit = idx[blank[idx, j]]
            if len(hit) == 1:
                out.append(f"{where(path, int(rows[hit[0]]), col)}: blank in this row only of the {outcome} rows of "
                           f"{table}; check that the value was not deleted")
    return out


def _groups(frame: pd.DataFrame, keys: list) -> list[tuple]:
    """(key, row positions) of each group of ``frame.groupby(keys, sort=False)``, in its order (first appearance),
    without a frame per group."""
    return sorted(frame.groupby(keys, sort=False).indices.items(), key=lambda item: item[1][0])


def _lone_decimals(frame: pd.DataFrame, path: Path, printed: list) -> list[str]:
    """Warnings for a printed token with a number of decimals no other row of its table and unit has (``-0,0500``
    for ``-0,05``): the decimals set the rounding half-unit that brackets an SE derived from marks.

    ``printed``: the rows' tokens as read by :func:`meta.read.schema.parse_printed` (every one a number here).
    """
    decimals, rows, tokens = [p.decimals for p in printed], frame["input_row"].tolist(), frame["printed"].tolist()
    out = []
    for (_, table, unit), idx in _groups(frame, ["source_file", "source_table", "unit"]):
        counts = Counter(decimals[i] for i in idx)
        if len(counts) < 2 or len(idx) < 3:
            continue
        for d, row, token in ((decimals[i], rows[i], tokens[i]) for i in idx):
            if counts[d] == 1:
                out.append(f"{where(path, row, 'printed')}: {token!r} has {d} decimals, no other {unit} number of "
                           f"{table} has; check the token against the source line")
    return out

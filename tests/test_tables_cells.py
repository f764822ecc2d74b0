"""tables._cell_summaries (what pooled_table adds from each cell's studies) equals the groupby loop it replaced: the
same cells in the same order with the same texts and flags, on the real studies and on random ones with missing
cell keys, single studies with a mark's p range, and both outcome levels."""
import random

import pandas as pd

from meta.analyses import tables
from meta.cells import CELL_COLUMNS
from meta.plan import Plan


def _by_groupby(studies: pd.DataFrame, ranges: dict, plan: Plan) -> dict:
    """The loop pooled_table ran before: one group frame per cell (``groupby(sort=False, dropna=False)``)."""
    by_cell = {}
    for key, s in studies.groupby(list(CELL_COLUMNS), sort=False, dropna=False):
        methods = sorted(set(s["se_method"]))
        mark = ranges.get(int(s["input_row"].iloc[0])) if ranges and len(s) == 1 else None
        by_cell[tuple(str(v) for v in key)] = {
            "_mark": mark,
            "municipalities": ";".join(s["municipality"]),
            "arms": ";".join(f"{m}:{a}" for m, a in zip(s["municipality"], s["arm"])),
            "codes": ";".join(s["outcome"]),
            "horizons": ";".join(str(int(h)) for h in s["horizon_months"]),
            "transforms": ";".join(s["transform"] if "transform" in s and plan.outcome_level == "concept"
                                   else ["identity"] * len(s)),
            "se_methods": ";".join(methods),
            "flag_derived_se": bool(set(methods) & set(tables.DERIVED_SE_METHODS)),
            "se_upper_bound_only": bool(s["se_upper_bound_only"].astype(bool).all()) if "se_upper_bound_only" in s
            else False,
        }
    return by_cell


def _random_studies(rng: random.Random, n: int) -> pd.DataFrame:
    pick = lambda *values: [rng.choice(values) for _ in range(n)]  # noqa: E731
    return pd.DataFrame({
        "input_row": list(range(1, n + 1)), "outcome_key": pick("werk", "deeltijd", None),
        "period": pick("m16", "m24", None), "arm_class": pick("exemption", "intensive"), "unit_h": pick("pp", "sp"),
        "municipality": pick("GRO", "NIJ", "TIL"), "arm": pick("a", "b"), "outcome": pick("w70", "w12"),
        "horizon_months": [float(rng.choice((16, 24))) for _ in range(n)], "transform": pick("identity", "x100"),
        "se_method": pick("from_ci", "from_significance_marks", "from_p"), "se_upper_bound_only": pick(True, False),
    }).astype({c: "str" for c in ("outcome_key", "period", "arm_class", "unit_h", "municipality", "arm", "outcome",
                                  "transform", "se_method")})


def test_cell_summaries_equal_the_groupby_loop_on_random_studies_with_missing_keys_and_marks():
    rng, missing = random.Random(15), 0
    for trial in range(60):
        studies = _random_studies(rng, rng.randint(1, 25))
        missing += bool(studies["outcome_key"].isna().any())
        if trial % 3 == 0:  # the optional columns missing (input_row is read only for a mark's p range)
            studies = studies.drop(columns=["transform", "se_upper_bound_only"] + (["input_row"] if trial % 2 == 0
                                                                                     else []))
        ranges = {r: (0.01, 0.05) for r in studies["input_row"] if rng.random() < 0.5} if trial % 2 else {}
        for level in ("strict", "concept"):
            plan = Plan(outcome_level=level)
            got, want = tables._cell_summaries(studies, ranges, plan), _by_groupby(studies, ranges, plan)
            assert list(got) == list(want) and got == want
    assert missing > 10  # cells with a missing key were compared


def test_cell_summaries_equal_the_groupby_loop_on_the_real_studies():
    from meta.analyses import pipeline
    from meta.plan import load_plan, plan_file
    from tests.conftest import REPO

    inputs = REPO / "inputs"
    plan = load_plan(plan_file(None, inputs))
    results = pipeline.analyse(inputs, plan, sensitivity=False)
    ranges = tables.mark_p_ranges(results.studies, results.inputs.legends)
    assert ranges and len(results.pooled) > 20  # single studies with a mark's range among them
    got, want = tables._cell_summaries(results.studies, ranges, plan), _by_groupby(results.studies, ranges, plan)
    assert list(got) == list(want) and got == want



def test_the_slot_codes_kept_for_a_key_column_keep_the_column_so_no_other_column_can_take_its_id():
    # _slot_codes keeps a key column's codes by the column's id(): were the column freed, CPython could put a later
    # column at the same address and hand it these codes. The memo keeps the column alive as long as its codes.
    import weakref

    from meta import cells

    n = 6
    frame = pd.DataFrame({"municipality": ["a"] * n, "arm": ["x"] * n, "arm_class": ["c"] * n,
                          "unit_h": [0.0] * n, "outcome": ["o"] * n})
    rows = cells._Rows(frame, pd.DataFrame({"outcome": ["o"]}), None)
    column = pd.Series(["k1", "k2", "k1", "k3", "k2", "k1"])
    codes = cells._slot_codes(rows, {"outcome_key": column, "period": ["p"] * n})
    assert list(codes[2]) == [0, 1, 0, 2, 1, 0]
    alive = weakref.ref(column)
    del column
    assert alive() is not None, "the column was freed while its codes are kept under its id"
    other = pd.Series(["k9"] * n)
    assert list(cells._slot_codes(rows, {"outcome_key": other, "period": ["p"] * n})[2]) == [0] * n

"""The tables meta run writes (meta.write.outputs, meta.analyses.tables.round_for_output)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from meta.analyses.tables import round_for_output


def _rounded_column_by_column(frame: pd.DataFrame, digits: int = 12) -> pd.DataFrame:
    """Every float column of a copy set to np.round of its values, one by one (the reference)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype.kind == "f":
            out[col] = np.round(out[col].to_numpy(), digits)
    return out


def test_rounding_for_output_rounds_every_float_column_as_np_round_and_leaves_the_rest_as_it_was():
    rng = np.random.default_rng(7)
    n = 40
    frame = pd.DataFrame({
        "yi": rng.normal(size=n) / 3, "tiny": rng.normal(size=n) * 1e-13, "huge": rng.normal(size=n) * 1e15,
        "k": rng.integers(-5, 5, n), "text": pd.array([f"r{i}" if i % 3 else None for i in range(n)], dtype="str"),
        "flag": rng.integers(0, 2, n).astype(bool), "f32": rng.normal(size=n).astype("float32"),
        "with_nan": np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n)), "obj": pd.Series([0.1 + 0.2] * n, dtype=object)})
    frame.loc[3, "yi"], frame.loc[4, "yi"] = -0.0, np.inf
    got, ref = round_for_output(frame), _rounded_column_by_column(frame)
    pd.testing.assert_frame_equal(got, ref, check_exact=True)
    assert got["obj"].tolist() == [0.1 + 0.2] * n  # an object column is not a float column: untouched
    assert got.to_csv(index=False, lineterminator="\n") == ref.to_csv(index=False, lineterminator="\n")
    a, b = io.BytesIO(), io.BytesIO()
    got.to_parquet(a, index=False, engine="pyarrow", compression="snappy")
    ref.to_parquet(b, index=False, engine="pyarrow", compression="snappy")
    assert a.getvalue() == b.getvalue()
    assert (got["yi"] != frame["yi"]).any() and (got["tiny"] == 0).any()  # the floats were rounded


def test_cell_order_is_the_stable_sort_by_arm_class_and_outcome_in_plan_order_then_outcome_and_period():
    """tables.cell_order sorts with Python's stable sort where every key is a text (cells.sort_order): the same rows
    in the same order as pandas' mergesort of the keys, missing values included (which take pandas' sort)."""
    from dataclasses import replace

    from meta.analyses.tables import cell_order
    from meta.plan import Plan

    plan = replace(Plan(), arm_classes=("intensive", "exemption"), outcomes=("werk", "gezondheid"))
    rng = np.random.default_rng(3)
    for trial in range(100):
        n = int(rng.integers(0, 25))

        def pick(values):
            return [values[i] for i in rng.integers(0, len(values), n)]

        frame = pd.DataFrame({"arm_class": pick(["exemption", "intensive", "release"]),
                              "outcome_key": pick(["werk", "gezondheid", "b_other", "a_other"]),
                              "period": pick(["2jaar", "1jaar", None] if trial % 3 == 0 else ["2jaar", "1jaar"]),
                              "unit_h": pick(["percentage_points"]), "yi": rng.normal(size=n)}).astype(
            {"arm_class": "str", "outcome_key": "str", "period": "str", "unit_h": "str"})
        cls = {c: i for i, c in enumerate(plan.arm_classes)}
        out = {o: i for i, o in enumerate(plan.outcomes)}
        key = pd.DataFrame({"_c": [cls.get(c, len(cls)) for c in frame["arm_class"]],
                            "_o": [out.get(o, len(out)) for o in frame["outcome_key"]],
                            "outcome_key": frame["outcome_key"].to_numpy(), "period": frame["period"].to_numpy(),
                            "unit_h": frame["unit_h"].to_numpy()})
        want = frame.take(key.sort_values(["_c", "_o", "outcome_key", "period", "unit_h"], kind="mergesort").index)
        pd.testing.assert_frame_equal(cell_order(frame, plan), want, check_exact=True)

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

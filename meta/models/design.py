"""The additive component design of the arms and which components it can identify, in plain English.

The additive component model says an arm's effect against control is the sum of the effects of the components
it contains (exemption, intensive guidance, earnings release, ...). :func:`component_design` builds its 0/1
design; :func:`identifiability` says which components the available arms can separate and, where they cannot,
which combinations they do estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd


def component_design(arm_components: pd.DataFrame, components: list[str]) -> pd.DataFrame:
    """Design matrix of the additive component model, one 0/1 column per component.

    The additive component model says an arm's effect against control is the sum
    of the effects of the components it contains,
    ``y_arm - y_control = sum_c x_arm,c * beta_c``, with no intercept (an arm with
    no component is the control group). The rows should therefore be the treatment
    arms, not the control.

    Parameters
    ----------
    arm_components : DataFrame
        One row per arm with a 0/1 (or boolean) column per component, such as
        ``inputs/arms.csv`` (columns ``exemption``, ``intensive``, ``release``).
        When it has an ``arm`` column, the result is indexed by it (prefixed
        by ``municipality/`` when that column exists too); otherwise its index is kept.
    components : list of str
        Component columns to use, in order.

    Returns
    -------
    DataFrame, shape (n_arms, len(components))
        Float 0/1 design; pass it to :func:`fit_mv` as ``X`` (the column names
        become the coefficient names) or to :func:`identifiability`.
    """
    if not isinstance(arm_components, pd.DataFrame):
        raise ValueError("arm_components must be a pandas DataFrame with one row per arm")
    components = list(components)
    if not components:
        raise ValueError("components is empty")
    if len(set(components)) != len(components):
        raise ValueError(f"components has duplicates: {components}")
    missing = [c for c in components if c not in arm_components.columns]
    if missing:
        raise ValueError(f"arm_components has no column(s) {missing}; it has {list(arm_components.columns)}")
    X = arm_components[components].apply(pd.to_numeric, errors="coerce").astype(float)
    bad = X.isna() | ~X.isin([0.0, 1.0])
    if bad.to_numpy().any():
        r, c = np.argwhere(bad.to_numpy())[0]
        raise ValueError(f"component columns must be 0/1; row {r}, column {components[c]!r} has "
                         f"{arm_components[components].iloc[r, c]!r}")
    if "arm" in arm_components.columns:
        arm = arm_components["arm"].astype(str)
        if "municipality" in arm_components.columns:
            arm = arm_components["municipality"].astype(str) + "/" + arm
        X.index = pd.Index(arm.to_numpy(), name="arm")
    X.columns = pd.Index(components, name="component")
    return X


@dataclass(frozen=True)
class Aliasing:
    """One group of components that the design cannot separate.

    Attributes
    ----------
    kind : str
        ``"never_given"`` (a zero column), ``"always_together"`` (identical
        columns: only their sum is identifiable) or ``"linear_dependence"``.
    components : tuple of str
        The components involved, in design order; none of them is identifiable
        on its own.
    estimable : tuple of str
        Combinations of these components the arms do identify (distinct arm
        patterns restricted to these components), e.g. ``"exemption + release"``.
    null_combinations : tuple of str
        A basis of the directions the data cannot see: adding any multiple of
        such a combination to the coefficients leaves every arm's effect unchanged.
    statement : str
        The plain-English explanation.
    """

    kind: str
    components: tuple
    estimable: tuple
    null_combinations: tuple
    statement: str

    def __str__(self) -> str:
        return self.statement


class Identifiability(NamedTuple):
    """``(rank, issues)`` returned by :func:`identifiability`."""

    rank: int
    issues: list

    @property
    def non_identifiable(self) -> tuple:
        """Names of the components that are not identifiable on their own."""
        return tuple(c for issue in self.issues for c in issue.components)

    @property
    def statement(self) -> str:
        """All statements joined, or a sentence saying every component is identifiable."""
        if not self.issues:
            return "All components are identifiable from the available arms."
        return " ".join(issue.statement for issue in self.issues)


def _join(words: Sequence[str], conj: str = "and") -> str:
    words = list(words)
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + f" {conj} " + words[-1]


def _fmt_coef(c: float) -> str:
    c = float(c)
    return f"{c:.6g}" if abs(c - round(c)) > 1e-9 else str(int(round(c)))


def _combo(coefs: np.ndarray, names: Sequence[str], tol: float) -> str:
    """``[1, 0, 1]`` -> ``"a + c"``; ``[1, -1, 0]`` -> ``"a - b"``; ``[2, 1]`` -> ``"2*a + b"``."""
    parts = []
    for c, n in zip(coefs, names):
        if abs(c) <= tol:
            continue
        mag = abs(c)
        term = n if abs(mag - 1.0) <= tol else f"{_fmt_coef(mag)}*{n}"
        if not parts:
            parts.append(term if c > 0 else f"-{term}")
        else:
            parts.append(("+ " if c > 0 else "- ") + term)
    return " ".join(parts) if parts else "0"


def _rref(A: np.ndarray, tol: float) -> tuple[np.ndarray, list[int]]:
    """Reduced row echelon form (partial pivoting) and the pivot columns."""
    A = np.array(A, dtype=float)
    m, n = A.shape
    pivots: list[int] = []
    r = 0
    for c in range(n):
        if r == m:
            break
        i = r + int(np.argmax(np.abs(A[r:, c])))
        if abs(A[i, c]) <= tol:
            A[r:, c] = 0.0
            continue
        A[[r, i]] = A[[i, r]]
        A[r] /= A[r, c]
        for j in range(m):
            if j != r and A[j, c] != 0.0:
                A[j] -= A[j, c] * A[r]
        pivots.append(c)
        r += 1
    A[np.abs(A) <= tol] = 0.0
    return A[:r], pivots


def identifiability(X, names: Sequence[str] | None = None) -> Identifiability:
    """Which columns (components) of a design the data can estimate, in plain English.

    A coefficient beta_j is identifiable iff the unit vector e_j lies in the row
    space of X, i.e. iff every vector of the null space of X is 0 at j. The rank
    is computed from the singular values (tolerance max(n, p) * eps * s_max, as
    ``numpy.linalg.matrix_rank``); the null space comes from the reduced row
    echelon form, whose basis vectors are the design's fundamental circuits.
    Components linked through a common null vector form one aliased group;
    groups are reported as:

    * a component in no arm (zero column): "X is not given in any of the
      available arms, so its effect is not identifiable.";
    * components with identical columns: "A and B are always given together in
      the available arms, so only their sum is identifiable.";
    * any other linear dependence: which combinations the arms give, how many
      independent combinations are estimable, and which component is part of
      every one of those arms.

    Parameters
    ----------
    X : array_like or DataFrame, shape (n_arms, p)
        Design matrix, e.g. from :func:`component_design`.
    names : sequence of str, optional
        Column names; default the DataFrame columns or ``"X1"``, ``"X2"``, ...

    Returns
    -------
    Identifiability
        A named tuple ``(rank, issues)``: ``issues`` is a list of
        :class:`Aliasing` (empty when every column is identifiable); ``str(issue)``
        is its statement. ``.non_identifiable`` lists the affected components and
        ``.statement`` joins the statements.

    Examples
    --------
    >>> X = pd.DataFrame({"exemption": [1, 0], "intensive": [0, 1], "release": [1, 0]})
    >>> rank, issues = identifiability(X)
    >>> rank, str(issues[0])
    (2, 'exemption and release are always given together in the available arms, so only their sum is identifiable.')
    """
    A, names = _as_design(X, names)
    n, p = A.shape
    rank = int(np.linalg.matrix_rank(A)) if n else 0
    scale = float(np.max(np.abs(A))) if A.size else 0.0
    tol = 1e-9 * max(scale, 1e-300)
    null_basis = _null_basis(A, tol)
    issues = [_describe(A, cols, names, null_basis, tol) for cols in _aliased_groups(null_basis, p)]
    return Identifiability(rank=rank, issues=issues)


def _as_design(X, names) -> tuple[np.ndarray, list]:
    """X as a finite 2-D float array and its column names (given, the DataFrame's, or ``X1``, ``X2``, ...)."""
    if names is None:
        names = [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None
    A = np.asarray(X, dtype=float)
    if A.ndim == 1:
        A = A[:, None]
    if A.ndim != 2 or A.shape[1] == 0:
        raise ValueError(f"X must be a 2-D design matrix; got shape {np.shape(X)}")
    if not np.all(np.isfinite(A)):
        raise ValueError("X must be finite")
    p = A.shape[1]
    names = [f"X{j + 1}" for j in range(p)] if names is None else [str(c) for c in names]
    if len(names) != p:
        raise ValueError(f"names has {len(names)} entries but X has {p} columns")
    return A, names


def _null_basis(A: np.ndarray, tol: float) -> list:
    """A basis of the null space of A from its reduced row echelon form: one vector per free column f, with
    v_f = 1 and v_c = −R[i, f] at the i-th pivot column c (the design's fundamental circuits), each signed so
    that its first non-zero coefficient is positive."""
    n, p = A.shape
    R, pivots = _rref(A, tol) if n else (np.zeros((0, p)), [])
    null_basis = []
    for f in (j for j in range(p) if j not in pivots):
        v = np.zeros(p)
        v[f] = 1.0
        for i, c in enumerate(pivots):
            v[c] = -R[i, f]
        v[np.abs(v) <= tol] = 0.0
        if v[np.flatnonzero(v)[0]] < 0:  # first non-zero coefficient positive, for reading
            v = -v
        null_basis.append(v)
    return null_basis


def _aliased_groups(null_basis: list, p: int) -> list:
    """Columns linked by a common null vector, as groups (union-find), each sorted, ordered by first column."""
    parent = list(range(p))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    involved = set()
    for v in null_basis:
        supp = list(np.flatnonzero(v))
        involved.update(supp)
        for a in supp[1:]:
            parent[find(a)] = find(supp[0])
    groups: dict[int, list[int]] = {}
    for j in sorted(involved):
        groups.setdefault(find(j), []).append(j)
    return sorted(groups.values(), key=lambda c: c[0])


def _describe(A: np.ndarray, cols: list, names: list, null_basis: list, tol: float) -> Aliasing:
    """The :class:`Aliasing` of one group of columns: never given, always together, or another dependence."""
    gnames = [names[j] for j in cols]
    nulls = tuple(_combo(v[cols], gnames, tol) for v in null_basis if np.any(v[cols] != 0))
    sub = A[:, cols]
    if len(cols) == 1 and np.all(np.abs(sub) <= tol):
        return Aliasing(
            kind="never_given", components=(gnames[0],), estimable=(), null_combinations=nulls,
            statement=f"{gnames[0]} is not given in any of the available arms, so its effect is not identifiable.")
    rows = sub[np.any(np.abs(sub) > tol, axis=1)]
    distinct = []
    for r in rows:
        if not any(np.allclose(r, d, rtol=0, atol=tol) for d in distinct):
            distinct.append(r)
    combos = tuple(_combo(d, gnames, tol) for d in distinct)
    if np.allclose(sub, sub[:, :1], rtol=0, atol=tol):
        return Aliasing(
            kind="always_together", components=tuple(gnames), estimable=(" + ".join(gnames),),
            null_combinations=nulls,
            statement=(f"{_join(gnames)} are always given together in the available arms, "
                       "so only their sum is identifiable."))
    return Aliasing(kind="linear_dependence", components=tuple(gnames), estimable=combos,
                    null_combinations=nulls, statement=_dependence_statement(gnames, rows, distinct, combos, tol))


def _dependence_statement(gnames: list, rows: np.ndarray, distinct: list, combos: tuple, tol: float) -> str:
    """The plain-English statement for components that are linearly dependent in another way than being
    always together: the combinations the arms give, how many are independent, and which component is part
    of every one of those arms."""
    r_g = int(np.linalg.matrix_rank(np.array(distinct))) if distinct else 0
    shown = list(combos[:6]) + ([f"... ({len(combos)} patterns in all)"] if len(combos) > 6 else [])
    text = (f"{_join(gnames)} are not separately identifiable: the available arms give only "
            f"{_join(shown)}, so only {r_g} independent combination{'s' if r_g != 1 else ''} "
            f"of these {len(gnames)} components can be estimated")
    if len(distinct) >= 2:
        diff = _combo(distinct[0] - distinct[1], gnames, tol)
        those = "those sums" if all(np.all(np.isin(d, (0.0, 1.0))) for d in distinct) else "those combinations"
        if len(distinct) == 2:
            text += f" ({those} and their difference, {diff})"
        else:
            text += f" ({those} and differences between them, such as {diff})"
    text += "."
    always = [gnames[i] for i in range(len(gnames)) if np.all(np.abs(rows[:, i]) > tol)]
    others = [g for g in gnames if g not in always]
    if always and others:
        text += (f" {_join(always)} {'is' if len(always) == 1 else 'are'} part of every one of these arms, "
                 f"so the arms never show {_join(others, 'or')} without "
                 f"{'it' if len(always) == 1 else 'them'}.")
    return text

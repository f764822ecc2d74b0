"""Additive component meta-regression with shared control groups (a pooling stage beside ``engine``).

Each arm's effect against its control group is modelled as the sum of the effects
of its components (exemption, intensive guidance, earnings release, full-time
bonus, free choice), so that bundled arms (Nijmegen gives release in both arms)
still inform the components. Arms of one municipality share its control group, so
their effects are correlated: the sampling covariance is block-diagonal across
municipalities with, within one,

    Cov(ŷ_a, ŷ_b) = 100²·p₀(1 − p₀)/n₀    differences in shares, in percentage points, with a known control
                                         share p₀ and size n₀,
    Cov(ŷ_a, ŷ_b) = ρ · se_a · se_b         otherwise, ρ the plan's ``shared_control_correlation``

(Gleser & Olkin 2009). The model ``y = Xβ + u_municipality + ε`` is fitted by
generalised least squares with a REML random effect per municipality
(:func:`meta.models.multivariate.fit_mv`, checked against metafor's ``rma.mv``). When the
available arms cannot separate the components, the model is not fitted and a plain
statement says which combinations are estimable.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from meta.models.covariance import block_diag_cov, shared_control_cov
from meta.models.design import component_design, identifiability
from meta.models.multivariate import fit_mv
from meta.read.schema import TREATMENT_COMPONENTS as COMPONENTS
MODEL_KEYS = ("outcome_key", "period", "unit_h")
COMPONENT_COLUMNS = (*MODEL_KEYS, "component", "estimate", "se", "ci_low", "ci_high", "pval", "k", "municipalities",
                     "method", "tau2", "Q", "Q_df", "Q_p", "identifiable", "statement")


def sampling_cov(cell: pd.DataFrame, rho: float) -> np.ndarray:
    """Block-diagonal sampling covariance of the arm-versus-control effects in ``cell`` (sorted by municipality).

    Within a municipality the diagonal is seᵢ² and the covariance of two arms is that of their shared control
    group: 100²·p₀(1 − p₀)/n₀ (effects in percentage points, :func:`meta.models.covariance.shared_control_cov`)
    when the rows give one control share p₀ and its size n₀, else ρ·seᵢ·seⱼ. Municipalities are independent.
    Raises a ValueError naming the municipality when an arm's se² is below its control group's own variance.
    """
    codes, uniques = pd.factorize(cell["municipality"], sort=False)  # blocks in order of first appearance
    se_all = cell["sei"].to_numpy(float)
    p0_all = cell["share_control"].to_numpy(float)
    n0_all = pd.to_numeric(cell["n_control"], errors="coerce").to_numpy(float)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    blocks = []
    for g in range(len(uniques)):  # numpy on each municipality's rows: no pandas per block
        rows = order[bounds[g]:bounds[g + 1]]
        se, p0, n0 = se_all[rows], p0_all[rows], n0_all[rows]
        if np.all(np.isfinite(p0)) and np.all(np.isfinite(n0)) and len(set(np.round(p0, 9))) == 1:
            try:
                block = shared_control_cov(p0[0], n0[0], se**2, points_per_share=100.0)
            except ValueError as exc:
                raise ValueError(f"{uniques[g]}: {exc}") from None
        else:
            block = np.outer(se, se) * rho
            np.fill_diagonal(block, se**2)
        blocks.append(block)
    return block_diag_cov(blocks)


def component_models(studies: pd.DataFrame, arms: pd.DataFrame, rho: float, level: float = 95.0) -> pd.DataFrame:
    """Fit the additive component model per outcome × horizon × unit; one row per component (or a statement).

    Parameters
    ----------
    studies : DataFrame
        Harmonised study rows of the main analysis (``yi``, ``sei``, municipality, arm, ...).
    arms : DataFrame
        The arm register (component columns 0/1).
    rho : float
        Correlation of two arms' effects through a shared control when the control's variance is unknown.
    """
    comp = arms.set_index(["municipality", "arm"])[list(COMPONENTS)]
    place = {key: i for i, key in enumerate(comp.index)}
    # each model's rows by municipality and arm (a stable sort of all rows orders every group as sorting it would),
    # one row per (municipality, arm): the same arm may appear once only in a model
    ordered = studies.sort_values(["municipality", "arm"], kind="mergesort")
    ordered = ordered.drop_duplicates([*MODEL_KEYS, "municipality", "arm"])
    at = [place[a] for a in zip(ordered["municipality"].tolist(), ordered["arm"].tolist())]
    # the 0/1 design of every arm the models use, checked once (component_design); a model takes its rows
    used_arms = sorted(set(at))
    design_of = dict(zip(used_arms, component_design(comp.iloc[used_arms], list(COMPONENTS)).to_numpy(float)
                         if used_arms else []))
    identifiable = _Identifiability()
    rows = []
    for key, cell in ordered.groupby(list(MODEL_KEYS), sort=True):
        munis = cell["municipality"].tolist()
        design = np.array([design_of[place[a]] for a in zip(munis, cell["arm"].tolist())])
        used = [c for j, c in enumerate(COMPONENTS) if design[:, j].any()]
        design = np.asfortranarray(design[:, [COMPONENTS.index(c) for c in used]])  # as DataFrame.to_numpy gives it
        ident = identifiable(design, used)
        base = {**dict(zip(MODEL_KEYS, key)), "k": len(cell), "municipalities": ";".join(sorted(set(munis)))}
        if ident.rank < len(used):
            rows.append({**base, "component": "", "identifiable": False, "statement": ident.statement})
            continue
        n_groups = len(set(munis))
        method = "REML" if len(cell) > len(used) and n_groups >= 2 else "FE"
        try:
            V = sampling_cov(cell, rho)
            fit = fit_mv(cell["yi"].to_numpy(float), V, design, groups=munis,
                         method=method, level=level, names=used)
        except ValueError as exc:
            rows.append({**base, "component": "", "identifiable": True, "statement": f"not fitted: {exc}"})
            continue
        note = ("all components are identifiable" if len(cell) > len(used)
                else "as many arms as components: the fit is exact and residual heterogeneity cannot be assessed")
        of_muni = np.array(munis, dtype=object)
        single = [c for j, c in enumerate(used) if len(set(of_muni[design[:, j] == 1])) == 1]
        if single and n_groups >= 2:
            note += (f"; {', '.join(single)} occur(s) in one municipality only, so their estimate also carries "
                     "that municipality's own difference from the others")
        if method == "FE":
            note += "; between-municipality variance not estimable here (fixed at 0)"
        across = _across_note(of_muni, design, used, identifiable)
        if across and note.startswith("all components are identifiable"):
            note = note.replace("all components are identifiable", "all components are identifiable from all "
                                "municipalities' arms together", 1)
        note += across
        for j, name in enumerate(used):
            rows.append({**base, "component": name, "estimate": fit.estimate[j], "se": fit.se[j], "ci_low": fit.ci_low[j],
                         "ci_high": fit.ci_high[j], "pval": fit.pval[j], "method": method, "tau2": fit.tau2,
                         "Q": fit.Q, "Q_df": fit.Q_df, "Q_p": fit.Q_p, "identifiable": True, "statement": note})
    return pd.DataFrame(rows, columns=list(COMPONENT_COLUMNS))


class _Identifiability:
    """:func:`meta.models.design.identifiability` of a design and its component names, each distinct design worked
    out once (one per component_models call: the municipalities of one arm layout share theirs across cells)."""

    def __init__(self):
        self._known: dict = {}

    def __call__(self, X: np.ndarray, names: list):
        key = (X.shape, X.tobytes(), tuple(names))
        if key not in self._known:
            self._known[key] = identifiability(X, names)
        return self._known[key]


def _across_note(of_muni: np.ndarray, X: np.ndarray, used: list, identifiable=identifiability) -> str:
    """Which component estimates rest on comparing municipalities: "; release identifiable only by comparing
    municipalities (…)" for a component no municipality's own arms separate, and "; municipality nijmegen alone does
    not separate exemption, intensive, release: …" for a municipality whose arms all share a component (Nijmegen gives
    release in both arms), so that what it adds to the separate estimates comes from the comparison with the others,
    under the model's assumption that a component has the same effect everywhere. Empty for one municipality.

    A component is separated within a municipality when :func:`meta.models.design.identifiability` of that
    municipality's rows of the design alone finds it identifiable."""
    codes, munis = pd.factorize(of_muni, sort=False)  # municipalities in order of first appearance
    if len(munis) < 2:
        return ""
    order = np.argsort(codes, kind="stable")  # each municipality's rows together, in cell order
    bounds = np.searchsorted(codes[order], np.arange(len(munis) + 1))
    within, notes = set(), []
    for g, m in enumerate(munis.tolist()):
        rows = X[order[bounds[g]:bounds[g + 1]]]
        own = [c for j, c in enumerate(used) if rows[:, j].any()]
        bad = set(identifiable(rows[:, [used.index(c) for c in own]], own).non_identifiable)
        within |= set(own) - bad
        if bad:
            notes.append(f"; municipality {m} alone does not separate {', '.join(c for c in own if c in bad)}: its "
                         "part in these estimates rests on comparing municipalities (assuming each component has the "
                         "same effect in every municipality)")
    only = [c for c in used if c not in within]
    head = (f"; {', '.join(only)} identifiable only by comparing municipalities (no municipality's own arms separate "
            "them)") if only else ""
    return head + "".join(notes)

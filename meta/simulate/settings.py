"""What determines a simulation run: the six experiments' arms and sizes (:data:`DESIGN`) and :class:`Settings`.

The design is described in :mod:`meta.simulate`; every effect is in percentage points (pp).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from meta.plan import REPO

LEVEL = 95.0
METHODS = ("DL", "REML", "PM")
TESTS = ("z", "knha", "adhoc")
SE_POLICIES = ("reported", "marks-central", "marks-conservative")
BAYES_METHOD = "Bayes"
BAYES_TEST = "posterior"
#: Nijmegen's legend (``inputs/significance_legends.csv``, 002 Tabel 3-8): mark -> (p_below, p_at_least).
NIJMEGEN_LEGEND = {"*": (0.05, math.nan), "~": (0.10, 0.05), "": (math.nan, 0.10)}
#: Width of the outcome's range in percentage points (a share: 0-100).
SHARE_RANGE_PP = 100.0
#: Decimals of a proportion as printed: with an SE (0.1 pp) and with marks only (1 pp, as Nijmegen).
DECIMALS_WITH_SE = 3
DECIMALS_WITH_MARKS = 2
#: Lowest true share of any arm; p0 is raised for the whole municipality to keep every effect exact.
MIN_SHARE = 0.02
#: Initial trapezoid grid of bayes_pool; it doubles the grid until converged, so this only saves time.
BAYES_GRID = 64
#: Where ``meta simulate`` writes (the committed run) and its files: the results table, the Markdown summary and the
#: JSON summary of the numbers the report quotes beside the table (settings, diagnostics).
DEFAULT_OUT = "inputs/simulation"
RESULTS_FILE = "simulation_results.csv"
SUMMARY_FILE = "simulation_summary.md"
JSON_FILE = "simulation_summary.json"
#: The committed simulation study (``meta simulate``): the JSON summary the report reads, and the results table it
#: names; the report quotes them, it does not rerun the study (and a rerun's key covers both files).
SIMULATION_SUMMARY = REPO / DEFAULT_OUT / JSON_FILE
SIMULATION_RESULTS = SIMULATION_SUMMARY.with_name(RESULTS_FILE)


@dataclass(frozen=True)
class Municipality:
    """One experiment: its arms (treatment arms first, ``control`` last) and their sizes."""

    name: str
    arms: tuple[tuple[str, int], ...]
    sizes: str  # where the sizes come from

    @property
    def treatment_arms(self) -> tuple[str, ...]:
        return tuple(a for a, _ in self.arms if a != "control")

    @property
    def n_control(self) -> int:
        return dict(self.arms)["control"]

    def n(self, arm: str) -> int:
        return dict(self.arms)[arm]


#: The six experiments in the order in which they enter a pool of k municipalities.
DESIGN: tuple[Municipality, ...] = (
    Municipality("nijmegen", (("exemption", 130), ("intensive", 128), ("control", 131)),
                 "randomised N, inputs/arms.csv (002:727-732); the exemption and intensive arms also get release"),
    Municipality("wageningen", (("exemption", 106), ("intensive", 98), ("release", 113), ("control", 93)),
                 "bruto randomised N, inputs/arms.csv (004:1429-1437)"),
    Municipality("groningen", (("exemption", 183), ("intensive", 144), ("release", 153), ("control", 222)),
                 "'Yes' participant counts of the slides (000:273-277); free-choice arm left out"),
    Municipality("tilburg", (("exemption", 150), ("intensive", 150), ("release", 150), ("control", 150)),
                 "ASSUMED: national design arms, 150 per arm"),
    Municipality("utrecht", (("exemption", 150), ("intensive", 150), ("release", 150), ("control", 150)),
                 "ASSUMED: national design arms, 150 per arm"),
    Municipality("deventer", (("exemption", 150), ("intensive", 150), ("release", 150), ("control", 150)),
                 "ASSUMED: national design arms, 150 per arm"),
)
POOLED_ARM = "exemption"


@dataclass(frozen=True)
class Settings:
    """Everything that determines a simulation run (all effects in percentage points)."""

    reps: int = 2000
    bayes_reps: int = 1000  # the committed run (inputs/simulation); Monte Carlo SE of a 95% coverage about 0.7 points
    seed: int = 20170101
    mu: float = -3.0
    taus: tuple[float, ...] = (0.0, 3.0, 6.0)
    ks: tuple[int, ...] = (2, 3, 4, 5, 6)
    tau_prior_scale: float = 5.0
    #: the report's headline is the Bayesian model for k <= few_studies_k, REML + HKSJ above (plan key, issue 12)
    few_studies_k: int = 4
    rho: float = 0.6
    base_rate: tuple[float, float] = (0.10, 0.25)
    regression_se: str = "hc1"
    methods: tuple[str, ...] = METHODS
    tests: tuple[str, ...] = TESTS
    policies: tuple[str, ...] = SE_POLICIES
    jobs: int = 1
    design: tuple[Municipality, ...] = field(default=DESIGN, repr=False)

    def check(self) -> "Settings":
        if self.reps < 2:
            raise ValueError(f"reps must be at least 2, got {self.reps}")
        if not 0 <= self.bayes_reps <= self.reps:
            raise ValueError(f"bayes_reps must be between 0 and reps ({self.reps}), got {self.bayes_reps}")
        if any(not 1 <= k <= len(self.design) for k in self.ks):
            raise ValueError(f"every k must be between 1 and {len(self.design)}, got {list(self.ks)}")
        if any(not (t >= 0 and math.isfinite(t)) for t in self.taus):
            raise ValueError(f"every tau must be finite and >= 0, got {list(self.taus)}")
        if not (self.tau_prior_scale > 0):
            raise ValueError(f"tau prior scale must be > 0, got {self.tau_prior_scale}")
        if self.few_studies_k < 1:
            raise ValueError(f"few_studies_k must be >= 1, got {self.few_studies_k}")
        if not 0 <= self.rho < 1:
            raise ValueError(f"rho must be in [0, 1), got {self.rho}")
        lo, hi = self.base_rate
        if not 0 < lo <= hi < 1:
            raise ValueError(f"base rate range must satisfy 0 < low <= high < 1, got {self.base_rate}")
        if self.regression_se not in ("hc1", "classical"):
            raise ValueError(f"regression_se must be 'hc1' or 'classical', got {self.regression_se!r}")
        bad = [p for p in self.policies if p not in SE_POLICIES]
        if bad:
            raise ValueError(f"unknown SE policy {bad[0]!r}; choose from {', '.join(SE_POLICIES)}")
        return self

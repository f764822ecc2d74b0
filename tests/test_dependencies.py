"""Every runtime dependency is used by meta/, every library meta/ imports is declared, and statsmodels (a
test-only cross-check) computes the same binomial SE as meta's formula."""
import ast
import math
import re
import sys
import tomllib

import pytest

from meta.effects.harmonise import binomial_se
from tests.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
RUNTIME = {re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower() for d in PYPROJECT["project"]["dependencies"]}
#: pandas imports pyarrow itself when meta writes parquet with engine="pyarrow"; meta names it but never imports it.
USED_BY_NAME = {"pyarrow": 'engine="pyarrow"'}
#: Libraries whose import name is not their distribution's name.
DISTRIBUTION_OF = {"PIL": "pillow", "zlib_ng": "zlib-ng"}


def _imported_by_meta() -> set[str]:
    """Top-level names of every absolute import in meta/ (module level and inside functions)."""
    names = set()
    for path in (REPO / "meta").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return {DISTRIBUTION_OF.get(n, n) for n in names}


def _source_of_meta() -> str:
    return "\n".join(p.read_text() for p in (REPO / "meta").rglob("*.py"))


def test_every_runtime_dependency_is_imported_by_meta():
    imported = _imported_by_meta()
    source = _source_of_meta()
    unused = {d for d in RUNTIME if d not in imported and not (d in USED_BY_NAME and USED_BY_NAME[d] in source)}
    assert unused == set(), f"runtime dependencies meta/ never uses (move them to the dev extra): {sorted(unused)}"


def test_every_library_meta_imports_is_a_runtime_dependency():
    third_party = _imported_by_meta() - set(sys.stdlib_module_names) - {"meta"}
    assert third_party - RUNTIME == set(), f"imported by meta/ but not in [project] dependencies: {third_party - RUNTIME}"


def test_cross_check_libraries_are_not_runtime_dependencies():
    assert "statsmodels" not in RUNTIME and "statsmodels" in PYPROJECT["project"]["optional-dependencies"]["dev"]
    assert not {"pymare", "forestplot"} & RUNTIME


def test_binomial_se_of_two_halves_of_100_is_five_root_two():
    # 100·√(0.25/100 + 0.25/100) = 100·√0.005 = 5√2, by hand
    assert math.isclose(binomial_se(0.5, 0.5, 100, 100), 5 * math.sqrt(2), rel_tol=1e-15)


@pytest.mark.parametrize("count1, n1, count0, n0", [(50, 100, 50, 100), (24, 103, 13, 88), (1, 40, 39, 40),
                                                     (312, 1000, 7, 20)])
def test_binomial_se_is_statsmodels_risk_difference_se(count1, n1, count0, n0):
    """statsmodels' risk-difference variance p₁(1−p₁)/n₁ + p₀(1−p₀)/n₀ gives the same number, to the last bit.

    meta keeps its one-line formula: it takes printed shares (not counts), and importing
    statsmodels.stats.meta_analysis would add ~2 s of imports to every run for one square root (importing numpy,
    scipy.special and pandas took 2.0-2.5 s, with statsmodels.stats.meta_analysis 3.9-5.2 s; five pairs side by
    side at load 8).
    """
    from statsmodels.stats.meta_analysis import effectsize_2proportions

    rd, var = effectsize_2proportions(count1, n1, count0, n0, statistic="diff")
    assert math.isclose(rd, count1 / n1 - count0 / n0, rel_tol=1e-15)
    assert binomial_se(count1 / n1, count0 / n0, n1, n0) == 100 * math.sqrt(var)


def test_the_manifest_lists_the_version_of_meta_and_of_every_runtime_dependency_only():
    from meta.write.outputs import RUNTIME_PACKAGES, _versions

    assert set(RUNTIME_PACKAGES) == {"meta"} | RUNTIME
    versions = _versions()
    assert set(versions) == {"python", "meta"} | RUNTIME
    assert "not installed" not in versions.values()

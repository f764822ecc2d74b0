"""Importing meta, and drawing with forestplot through meta.present.plots, leaves global state as it was."""
import subprocess
import sys
import textwrap

from tests.conftest import REPO


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_importing_every_module_keeps_numpy_errstate_and_warning_filters():
    # scipy registers its own warning filters when first imported; that is scipy's doing, so the
    # third-party dependencies meta imports at module level are imported first (forestplot is NOT among them).
    out = _run("""
        import importlib, pkgutil, warnings
        import numpy as np, scipy.stats, scipy.special, pandas, matplotlib
        before = (np.geterr(), list(warnings.filters))
        import meta
        for m in pkgutil.iter_modules(meta.__path__):
            if m.name != "__main__":  # `python -m meta`: importing it runs the command line
                importlib.import_module(f"meta.{m.name}")
        after = (np.geterr(), list(warnings.filters))
        print(before == after)
    """)
    assert out.strip() == "True"


def test_drawing_a_forest_plot_keeps_numpy_errstate_and_warning_filters():
    out = _run("""
        import warnings
        import numpy as np
        import scipy.stats, pandas, matplotlib
        before = (np.geterr(), list(warnings.filters))
        from meta.present import plots
        with plots._contained() as fp:
            assert hasattr(fp, "forestplot"), "the context must hand out the forestplot module"
            inside = (np.geterr(), list(warnings.filters))
        after = (np.geterr(), list(warnings.filters))
        print(before == after, inside != before)
    """)
    # restored afterwards, and there was something to restore (forestplot changed the state inside)
    assert out.split() == ["True", "True"]


def test_forestplot_really_does_change_global_state_when_imported_bare():
    """The trap is real: the containment above is not testing nothing."""
    out = _run("""
        import warnings
        import numpy as np
        before = (np.geterr(), list(warnings.filters))
        import forestplot
        print(before == (np.geterr(), list(warnings.filters)))
    """)
    assert out.strip() == "False"

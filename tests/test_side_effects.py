"""Importing meta leaves global state as it was: numpy's floating-point error state and the warning filters."""
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
    # third-party dependencies meta imports at module level are imported first.
    out = _run("""
        import importlib, pkgutil, warnings
        import numpy as np, scipy.stats, scipy.special, pandas, matplotlib
        before = (np.geterr(), list(warnings.filters))
        import meta
        names = [m.name for m in pkgutil.walk_packages(meta.__path__, "meta.")
                 if not m.name.endswith(".__main__")]  # `python -m meta(.simulate)`: importing it runs a command
        for name in names:
            importlib.import_module(name)
        after = (np.geterr(), list(warnings.filters))
        print(before == after, len(names))
    """)
    same, n = out.split()
    # every module of every layer folder was imported (packages count as their __init__.py)
    n_files = sum(1 for p in (REPO / "meta").rglob("*.py") if p.name != "__main__.py" and p != REPO / "meta" / "__init__.py")
    assert int(n) == n_files
    assert same == "True"


def test_a_command_hides_its_long_lived_objects_from_the_garbage_collector_only_while_it_runs():
    import gc

    from meta import control

    assert gc.get_freeze_count() == 0
    control.freeze_more()  # no command froze: nothing is frozen
    assert gc.get_freeze_count() == 0
    try:
        froze = control.freeze_gc()
        assert froze and gc.get_freeze_count() > 1000  # the libraries imported so far
        assert control.freeze_gc() is False  # frozen already (by a caller): left as it is
        before, kept = gc.get_freeze_count(), [[] for _ in range(100)]
        control.freeze_more()  # before forking workers: what lives now joins (the command froze)
        assert gc.get_freeze_count() >= before + 100 and kept
    finally:
        control.unfreeze_gc(froze)
    assert gc.get_freeze_count() == 0
    control.freeze_more()  # the command has ended: nothing is frozen any more
    control.unfreeze_gc(False)  # nothing frozen by the command: nothing given back
    assert gc.get_freeze_count() == 0


def test_a_command_pauses_the_garbage_collector_while_it_imports_and_reads_and_gives_its_settings_back():
    import gc

    from meta import control

    before = gc.get_threshold()
    assert gc.isenabled()
    paused = control.pause_gc()
    froze = False
    try:
        assert paused == before and not gc.isenabled()  # the imports and the reading: no collection
        froze = control.freeze_gc(paused)
        assert froze and gc.isenabled()
        assert gc.get_threshold() == (control.COMMAND_GC_THRESHOLD, *before[1:])
    finally:
        control.unfreeze_gc(froze, paused)
    assert gc.isenabled() and gc.get_threshold() == before and gc.get_freeze_count() == 0
    gc.disable()
    try:
        assert control.pause_gc() is None  # a caller that disabled the collector keeps it as it is
    finally:
        gc.enable()


def test_a_command_that_fails_while_reading_leaves_the_garbage_collector_as_it_found_it(tmp_path):
    import gc

    from meta import cli

    before = gc.get_threshold()
    assert cli.main(["run", "--inputs", str(tmp_path / "none"), "--out", str(tmp_path / "out")]) == 2
    assert gc.isenabled() and gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_a_paused_collector_collects_again_even_when_something_else_froze_objects_meanwhile():
    import gc

    from meta import control

    before = gc.get_threshold()
    paused = control.pause_gc()
    froze = False
    try:
        gc.freeze()  # a library, or a caller, froze objects between the pause and the command's freeze
        froze = control.freeze_gc(paused)
        assert froze is False  # not the command's to give back
        assert gc.isenabled() and gc.get_threshold()[0] == control.COMMAND_GC_THRESHOLD
    finally:
        control.unfreeze_gc(froze, paused)
        gc.unfreeze()
    assert gc.isenabled() and gc.get_threshold() == before

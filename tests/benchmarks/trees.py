"""What the side-by-side benchmarks share: two code trees to compare, a child process per run, the outputs' bytes.

The benchmarks ``bench_main_cpu.py``, ``bench_start.py``, ``bench_sens.py``, ``bench_figs_ab.py`` and
``bench_bayes.py`` run the same work with the code of two trees (A and B) in child processes, interleaved, and check
that both trees wrote the same bytes. They are run as ``python tests/benchmarks/X.py`` from the repository root and
import this module as ``trees`` (their folder is put first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: A child ``meta`` CLI call that reports its own CPU (``RUSAGE_SELF``: the main process), its children's CPU
#: (``RUSAGE_CHILDREN``: the figure and fit workers, reaped) and its wall time on stderr.
CPU_CHILD = """
import resource, sys, time
t0 = time.perf_counter()
from meta import cli
rc = cli.main(sys.argv[1:])
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"SELF {me.ru_utime + me.ru_stime} CHILDREN {kids.ru_utime + kids.ru_stime} WALL {time.perf_counter() - t0}",
      file=sys.stderr)
sys.exit(rc)
"""
#: What :data:`CPU_CHILD` prints: main-process CPU, children's CPU, wall (seconds)
CPU_PATTERN = r"SELF ([\d.]+) CHILDREN ([\d.]+) WALL ([\d.]+)"


def same_pixels(a: Path, b: Path) -> bool:
    """Whether two PNG files decode (Pillow) to the same pixels, mode, size and resolution: their bytes may differ
    when only the encoder does (zlib-ng against zlib since 855f653, Pillow against meta.present.png since e47b85f)."""
    import numpy as np
    from PIL import Image

    with Image.open(a) as ia, Image.open(b) as ib:
        return ((ia.mode, ia.size, ia.info.get("dpi")) == (ib.mode, ib.size, ib.info.get("dpi"))
                and np.array_equal(np.asarray(ia), np.asarray(ib)))


#: a PNG embedded in report.html: compared by :func:`same_outputs` through the figure files it copies
_DATA_URI = re.compile(rb"data:image/png;base64,[A-Za-z0-9+/=]+")


def same_outputs(a: Path, b: Path) -> tuple[list[str], list[str]]:
    """(files that differ, PNGs among the others whose bytes differ but whose pixels are the same) of two output
    folders.

    Parameters
    ----------
    a, b : Path
        Two output folders of ``meta run``; compared recursively (``figures/`` too), byte for byte, except a PNG
        (same pixels: :func:`same_pixels`) and ``report.html`` (the same bytes once its PNG data URIs are taken out:
        the embedded figures are the files compared).

    Returns
    -------
    (list of str, list of str)
        Relative paths, sorted; the first is empty when both folders hold the same outputs (``manifest.json``
        aside: it records times and the code's version).
    """
    names = {p.relative_to(a) for p in a.rglob("*") if p.is_file()} | {p.relative_to(b) for p in b.rglob("*")
                                                                        if p.is_file()}
    differ, pixels = [], []
    for n in sorted(names, key=str):
        pa, pb = a / n, b / n
        if n.name == "manifest.json" or (pa.is_file() and pb.is_file() and filecmp.cmp(pa, pb, shallow=False)):
            continue
        if pa.is_file() and pb.is_file() and n.suffix == ".png" and same_pixels(pa, pb):
            pixels.append(str(n))
        elif (pa.is_file() and pb.is_file() and n.name == "report.html"
              and _DATA_URI.sub(b"PNG", pa.read_bytes()) == _DATA_URI.sub(b"PNG", pb.read_bytes())):
            pixels.append(str(n))
        else:
            differ.append(str(n))
    return differ, pixels


def export(rev: str, folder: Path) -> Path:
    """The files of commit ``rev`` of this repository in ``folder`` (git archive; the repository is not touched).

    Parameters
    ----------
    rev : str
        A commit, branch or tag of the repository this file is in.
    folder : Path
        A folder that does not exist yet; created.

    Returns
    -------
    Path
        ``folder``.
    """
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def add_tree_options(parser: argparse.ArgumentParser,
                     base_help: str = "a commit to compare with this checkout (exported with git archive)",
                     trees_help: str = "two code trees (checkouts) to compare instead") -> None:
    """Add ``--base REV`` (a commit against this checkout) and ``--trees DIR_A DIR_B`` (two checkouts) to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The benchmark's parser.
    base_help, trees_help : str
        The options' help texts.
    """
    parser.add_argument("--base", help=base_help)
    parser.add_argument("--trees", nargs=2, type=Path, help=trees_help)


def code_trees(args: argparse.Namespace, work: Path) -> list[Path]:
    """The two code trees the options of :func:`add_tree_options` name: ``--trees``, else ``--base`` and this checkout.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options with ``base`` and ``trees``.
    work : Path
        The benchmark's temporary folder; ``--base`` (``HEAD`` if neither option is given) is exported into
        ``work / "base"``.

    Returns
    -------
    list of Path
        [A, B], absolute.
    """
    if args.trees:
        return [t.resolve() for t in args.trees]
    return [export(args.base or "HEAD", work / "base"), REPO]


def child(tree: Path, code: str, *args) -> subprocess.CompletedProcess:
    """Run ``code`` with the code of ``tree`` (its folder current and first on the path); stop if it fails.

    Parameters
    ----------
    tree : Path
        A code tree of meta.
    code : str
        Python source run with ``python -c``.
    *args
        Its command-line arguments (converted with ``str``).

    Returns
    -------
    subprocess.CompletedProcess
        With ``stdout`` and ``stderr`` as text.
    """
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=tree, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tree)}, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"child failed in {tree}: {done.stderr[-3000:]}")
    return done


def reported(done: subprocess.CompletedProcess, tree: Path, pattern: str) -> list[float]:
    """The numbers a child printed on stderr in the form ``pattern`` (a regular expression with groups).

    Parameters
    ----------
    done : subprocess.CompletedProcess
        What :func:`child` returned.
    tree : Path
        Its code tree, named in the error when the child printed no such line.
    pattern : str
        The line's regular expression, one group per number.

    Returns
    -------
    list of float
    """
    found = re.search(pattern, done.stderr)
    if found is None:
        raise SystemExit(f"child failed in {tree}: {done.stderr[-3000:]}")
    return [float(x) for x in found.groups()]


def cold_run(tree: Path, out: Path, *extra) -> list[float]:
    """(main-process CPU, children's CPU, wall) of one ``meta run`` with the code of ``tree`` into an empty ``out``.

    Parameters
    ----------
    tree : Path
        A code tree of meta.
    out : Path
        The output folder; removed first (a cold run).
    *extra
        More arguments of ``meta run`` (``--inputs``, ``--plan``, ``--lang`` …).

    Returns
    -------
    list of float
        Seconds, as :data:`CPU_CHILD` reports them.
    """
    shutil.rmtree(out, ignore_errors=True)
    return reported(child(tree, CPU_CHILD, "run", "--out", out, *extra), tree, CPU_PATTERN)


def report_outputs(a: Path, b: Path, indent: str = "  ", shown: int | None = None) -> int:
    """Print whether two output folders hold the same outputs (:func:`same_outputs`); 1 if they differ, else 0.

    Parameters
    ----------
    a, b : Path
        Two output folders of ``meta run``.
    indent : str
        Put before the printed line.
    shown : int or None
        At most this many differing files are listed (None: all).

    Returns
    -------
    int
        The benchmark's exit status for the outputs.
    """
    differ, pixels = same_outputs(a, b)
    pngs = sum(p.endswith(".png") for p in pixels)
    said = (f"; {pngs} PNGs of other bytes with the same pixels" if pngs else "") + (
        "; report.html the same apart from its PNG data URIs" if "report.html" in pixels else "")
    print(f"{indent}outputs: identical (manifest.json aside{said})" if not differ
          else f"{indent}outputs DIFFER: {differ[:shown]}")
    return 1 if differ else 0

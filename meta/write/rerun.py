"""Whole-run reuse, make-style: a rerun of ``meta run`` whose key is unchanged takes the previous outputs whole.

``meta run`` is a pure function of what :func:`run_key` hashes (SHA-256):

- the code: every file under ``meta/`` (:func:`meta.present.figures.code_version`);
- the libraries: Python's full version string and implementation, and the name and version of every distribution
  installed on ``sys.path`` (:func:`installed_distributions`: every runtime dependency of ``pyproject.toml`` and
  every library they pull in, read from the ``*.dist-info`` folder names without importing anything);
- the files the run reads (:func:`files_read`): name, absolute path and bytes of every input the preflight loaded
  (``Inputs.files``), the plan file, and the simulation summary and results table the report quotes;
- the options that change a byte written: ``lang``, ``svg``, ``no_figures``, ``no_sensitivity`` (not ``jobs``: the
  same bytes whichever process drew a figure);
- the environment (:func:`environment`): the variables that can change a byte written (BLAS threads, matplotlib's
  configuration folder) and the bytes of every ``matplotlibrc`` matplotlib would read before its own.

``manifest.json`` records the key (``run_key``) and the SHA-256 of every file written (``sha256``). When the next
``meta run`` into the same folder has the same key and every listed file still has its recorded SHA-256,
:func:`reuse_previous` builds the new folder from hard links to those files (byte copies where linking fails),
writes the manifest again with the current git commit and every file under ``reused``, and swaps it in atomically
(:func:`meta.write.outdir.replace_folder`), without importing the analysis, scipy or matplotlib.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from meta.control import checkpoint
from meta.plan import REPO
from meta.present.figures import code_version, sha256  # sha256: one file hash for the figure keys and the run key
from meta.simulate.settings import SIMULATION_RESULTS, SIMULATION_SUMMARY
from meta.write import outdir

#: The packages a run uses: meta and its [project] dependencies in pyproject.toml (tests/test_dependencies.py checks
#: that the two lists agree). Their versions go into the manifest.
RUNTIME_PACKAGES = ("meta", "numpy", "scipy", "pandas", "pyarrow", "matplotlib", "openpyxl", "babel",
                    "jinja2", "markupsafe", "zlib-ng")
#: Environment variables that can change a byte meta writes: the BLAS thread counts (the order of floating-point
#: sums; :mod:`meta.cli` sets 1 unless exported) and where matplotlib finds its configuration. meta reads no other
#: variable that changes an output (``META_TRACEBACK`` and ``META_TEST_PAUSE_*`` do not).
ENVIRONMENT = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "MATPLOTLIBRC", "MPLCONFIGDIR",
               "XDG_CONFIG_HOME", "HOME", "SOURCE_DATE_EPOCH")
#: The options of ``meta run`` that change what is written (``--jobs`` does not).
OUTPUT_OPTIONS = ("lang", "svg", "no_figures", "no_sensitivity")


def git_commit() -> str:
    """The repository's commit, ``-dirty`` when it has uncommitted changes, ``unknown`` without git."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        commit = out.stdout.strip() if out.returncode == 0 else "unknown"
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return commit + ("-dirty" if dirty and commit != "unknown" else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict:
    """Python's version and the installed version of each of :data:`RUNTIME_PACKAGES` (or "not installed")."""
    out = {"python": sys.version.split()[0]}
    for pkg in RUNTIME_PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def installed_distributions() -> list[str]:
    """Every distribution installed on ``sys.path`` as its metadata folder's name (``numpy-2.4.6.dist-info``),
    sorted: any install, upgrade or removal changes the list. Read from folder names only (milliseconds, where
    ``importlib.metadata`` parses every METADATA file). meta's own (``meta-0.1.0.dist-info``, or ``meta.egg-info``
    in a checkout, found only when the working folder is on ``sys.path``) is left out: its code is hashed whole, and
    ``meta run`` and ``python -m meta.cli run`` get the same key."""
    names = set()
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as it:
                names |= {e.name for e in it if e.name.endswith((".dist-info", ".egg-info"))
                          and re.split(r"[-.]", e.name, maxsplit=1)[0].lower() != "meta"}
        except OSError:  # a zip file or a folder that does not exist
            continue
    return sorted(names)


def files_read(input_files: dict, plan_path: Path | None) -> dict:
    """{name: absolute path} of every file a run reads: the inputs the preflight loaded (``Inputs.files``), the plan
    file (when one was read) and the simulation summary and results table the report quotes."""
    files = {f"inputs/{name}": Path(p) for name, p in input_files.items()}
    if plan_path is not None:
        files["plan"] = Path(plan_path)
    files["simulation_summary"], files["simulation_results"] = SIMULATION_SUMMARY, SIMULATION_RESULTS
    return {name: Path(os.path.abspath(p)) for name, p in sorted(files.items())}


def _matplotlibrc_files() -> list[Path]:
    """The ``matplotlibrc`` files matplotlib reads before its own (``matplotlib.matplotlib_fname``): the working
    folder's, ``$MATPLOTLIBRC`` (a file or a folder holding one), and the one in its configuration folder."""
    env = os.environ
    config = env.get("MPLCONFIGDIR") or os.path.join(env.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"),
                                                     "matplotlib")
    candidates = [Path.cwd() / "matplotlibrc", Path(config) / "matplotlibrc"]
    if env.get("MATPLOTLIBRC"):
        candidates[1:1] = [Path(env["MATPLOTLIBRC"]), Path(env["MATPLOTLIBRC"]) / "matplotlibrc"]
    return [p for p in candidates if p.is_file()]


def environment() -> dict:
    """The environment that can change a byte written: :data:`ENVIRONMENT` (unset is None) and the SHA-256 of
    every ``matplotlibrc`` that exists (:func:`_matplotlibrc_files`)."""
    out = {name: os.environ.get(name) for name in ENVIRONMENT}
    out["matplotlibrc"] = {str(p): sha256(p) for p in _matplotlibrc_files()}
    return out


def run_key(files: dict, options: dict) -> str:
    """The key of a run: SHA-256 of the code, Python and the installed distributions, the environment, the options
    and the name, path and bytes of every file read (``files``, from :func:`files_read`; a missing file counts as
    missing)."""
    record = {
        "code": code_version(),
        "python": [sys.version, sys.implementation.name],
        "distributions": installed_distributions(),
        "environment": environment(),
        "options": {name: options[name] for name in OUTPUT_OPTIONS},
        "files": {name: [str(p), sha256(p) if p.is_file() else "missing"] for name, p in files.items()},
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode("utf-8")).hexdigest()


def write_manifest(folder: Path, manifest: dict) -> None:
    """``folder/manifest.json``: sorted keys, two-space indent, one final newline."""
    (Path(folder) / outdir.MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n",
                                                encoding="utf-8")


def output_hashes(folder: Path, names: list[str]) -> dict:
    """{relative name: SHA-256} of the files ``names`` in ``folder`` (recorded in the manifest as ``sha256``)."""
    return {name: sha256(Path(folder) / name) for name in names}


def _previous_manifest(out: Path, key: str) -> dict | None:
    """The manifest of ``out`` when it was written by a run with ``key`` and records every file's SHA-256 and what
    that run printed; else None."""
    try:
        manifest = json.loads((out / outdir.MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("run_key") != key or not isinstance(manifest.get("console"),
                                                                                          dict):
        return None
    files, hashes = manifest.get("files"), manifest.get("sha256")
    if not (isinstance(files, list) and files and isinstance(hashes, dict) and sorted(hashes) == sorted(files)):
        return None
    for name in files:  # relative paths inside the folder only
        if not isinstance(name, str) or name == outdir.MANIFEST or Path(name).is_absolute() or ".." in Path(name).parts:
            return None
    return manifest


def _link_unchanged(previous: Path, folder: Path, hashes: dict) -> bool:
    """Hard-link (else copy) every file of ``hashes`` from ``previous`` into ``folder``; False as soon as one is
    missing, not a regular file, or has another SHA-256 than recorded (checked on the file put in ``folder``)."""
    for name, digest in sorted(hashes.items()):
        source, target = previous / name, folder / name
        if source.is_symlink() or not source.is_file():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
        if sha256(target) != digest:
            return False
    return True


def reuse_previous(out: Path, key: str) -> dict | None:
    """Replace ``out`` by its own files when the run that wrote them had ``key`` and none changed since.

    The files are hard-linked (else copied) into a temporary folder next to ``out``, each checked against the
    SHA-256 the manifest recorded; the manifest is written again with the current git commit and every file under
    ``reused``; the folder is swapped in by :func:`meta.write.outdir.replace_folder` (atomically, as a full run).
    ``out`` has passed :func:`meta.write.outdir.check_out_dir` (the preflight).

    Returns
    -------
    dict or None
        What the reused run printed (the manifest's ``console``), or None when the run must be made: no previous
        manifest, another key, or a file missing or changed (then nothing was touched).
    """
    manifest = _previous_manifest(out, key)
    if manifest is None:
        return None
    with outdir.building(out) as tmp:
        checkpoint("write")
        if not _link_unchanged(out, tmp, manifest["sha256"]):
            outdir.rmtree(tmp)
            return None
        write_manifest(tmp, {**manifest, "git_commit": git_commit(), "reused": sorted(manifest["files"])})
        outdir.replace_folder(tmp, out)
    return manifest["console"]

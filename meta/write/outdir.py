"""The output folder: the one guard every writer passes, the atomic replacement, and recovery after a kill.

Everything that may delete or replace files goes through here, for ``meta run --out`` and ``meta.run(out=...)``
alike: :func:`check_out_dir` refuses an output folder whose replacement would destroy something meta did not
write; :func:`replace_folder` swaps a finished temporary folder in; :func:`recover_interrupted` undoes what a
killed run left. A stop requested by a signal (:func:`request_stop`) is honoured at the last moment before the
previous outputs are touched, even when the exception the signal handler raised was swallowed (CPython drops
exceptions raised inside weakref callbacks and finalizers).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path

from meta.control import checkpoint, raise_if_stopped
from meta.errors import InputError
from meta.plan import REPO
MANIFEST = "manifest.json"
#: What a meta outputs folder written before manifests listed their files may hold (names and suffixes).
_LEGACY_NAMES = {"README.md", MANIFEST, "report.html", "meta.xlsx"}
_LEGACY_SUFFIXES = {".csv", ".parquet"}
_LEGACY_FIGURES = {".png", ".svg"}

log = logging.getLogger("meta.write.outdir")
# --------------------------------------------------------------------------- #
# the guard
# --------------------------------------------------------------------------- #
def _manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_outputs_readme(path: Path) -> bool:
    try:
        return path.is_file() and path.read_text(encoding="utf-8").startswith("# outputs/")
    except (OSError, UnicodeDecodeError):
        return False


def foreign_entries(folder: Path, limit: int = 3) -> list[str]:
    """Up to ``limit`` entries of ``folder`` that meta did not write (relative paths); empty for meta's outputs.

    A meta outputs folder has a ``manifest.json`` whose ``files`` lists every file the run wrote; anything
    else in the folder is foreign. A manifest without that list (runs before it existed) allows the files a
    run writes (README.md, report.html, meta.xlsx, tables as .csv/.parquet, figures/*.png|svg). A folder
    without a manifest is meta's only when it holds nothing but the repository's ``outputs/README.md``.
    """
    manifest = _manifest(folder)
    listed = manifest.get("files") if manifest is not None else None

    def meta_wrote(e: str) -> bool:
        if manifest is None:
            return e == "README.md" and _is_outputs_readme(folder / e)
        if isinstance(listed, list):
            return e in listed or e == MANIFEST
        p = Path(e)
        if len(p.parts) == 1:
            return e in _LEGACY_NAMES or p.suffix in _LEGACY_SUFFIXES
        return len(p.parts) == 2 and p.parts[0] == "figures" and p.suffix in _LEGACY_FIGURES

    foreign = []
    for root, dirs, files in os.walk(folder):  # stops early: --out may be someone's home folder
        rel = Path(root).relative_to(folder)
        names = [(rel / f).as_posix() for f in files] + [(rel / d).as_posix() for d in dirs
                                                         if not os.listdir(Path(root) / d)]
        foreign += sorted(e for e in names if not meta_wrote(e))
        if len(foreign) >= limit:
            break
    return sorted(foreign)[:limit]


def _read_only(folder: Path) -> Path | None:
    """The first folder at or under ``folder`` that nobody may write (mode without any w bit), or None."""
    for p in [folder, *(q for q in folder.rglob("*") if q.is_dir())]:
        try:
            if not p.stat().st_mode & 0o222 or not os.access(p, os.W_OK):
                return p
        except OSError:
            return p
    return None


def check_out_dir(out: Path, inputs: list[Path] | tuple[Path, ...] | Path | None = None) -> Path:
    """Refuse an output folder that cannot be written, or whose replacement would destroy what meta did not write.

    The one guard of ``meta run --out`` and ``meta.run(out=...)``. Refused (:class:`InputError`): a regular
    file; a folder holding any file meta did not write (see :func:`foreign_entries`); a folder that holds an
    input (an input folder, or any folder above one) or the repository (its root or a folder above it); a
    mount point (it cannot be renamed); a read-only or immutable folder (someone protected it); a location
    that cannot be created or written. Returns the absolute path.
    """
    out = Path(os.path.abspath(out))
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: the output folder is a file, not a folder; give another folder (it is replaced "
                         "whole)")
    if isinstance(inputs, (str, Path)):
        inputs = [Path(inputs)]
    for item in inputs or ():
        item = Path(os.path.abspath(item))
        if item == out or out in item.parents:
            raise InputError(f"{out}: the output folder holds the inputs ({item}) and is replaced whole; give "
                             "another output folder")
    if out == REPO or out in REPO.parents or (out / ".git").exists():
        raise InputError(f"{out}: the output folder is a repository (or holds one) and is replaced whole; give "
                         "another output folder, e.g. outputs")
    if out.is_dir():
        foreign = foreign_entries(out)
        if foreign:
            raise InputError(f"{out}: the output folder holds {', '.join(map(repr, foreign))}, which meta did not write, and "
                             "it would be replaced whole; give a new or empty folder, or move that away")
        if os.path.ismount(out):
            raise InputError(f"{out}: the output folder is a mount point and cannot be replaced whole; give a "
                             f"folder inside it, e.g. {out / 'outputs'}")
        locked = _read_only(out)
        if locked is not None:
            raise InputError(f"{out}: the output folder is read-only ({locked}); someone protected it: make it "
                             "writable (chmod -R u+w) or give another output folder")
    existing = out.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{out}: cannot be created: {existing} is a file, not a folder; give another output folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{out}: no permission to write in {existing}; give another output folder or fix its "
                         "permissions")
    return out


# --------------------------------------------------------------------------- #
# replacing and recovering
# --------------------------------------------------------------------------- #
def rmtree(path: Path) -> bool:
    """Remove a folder meta wrote, making read-only subfolders writable on the way. True when it is gone."""

    def make_writable(func, p, _exc):
        try:
            os.chmod(os.path.dirname(p), stat.S_IRWXU)
            if os.path.isdir(p):
                os.chmod(p, stat.S_IRWXU)
            func(p)
        except OSError:
            pass

    if path.is_dir():
        shutil.rmtree(path, onerror=make_writable)
    return not path.exists()


def default_mode(previous: Path | None = None) -> int:
    """Mode for a new outputs folder: the previous folder's, else what ``mkdir`` gives (0777 minus the umask)."""
    if previous is not None and previous.is_dir():
        return stat.S_IMODE(previous.stat().st_mode)
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


def _os_error(out: Path, exc: OSError) -> InputError:
    import errno

    what = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
            errno.EROFS: "the file system is read-only", errno.EBUSY: "the folder is in use or a mount point",
            errno.EPERM: "the operation is not permitted (an immutable or protected folder?)",
            errno.EACCES: "permission denied"}.get(exc.errno, exc.strerror or str(exc))
    return InputError(f"{out}: the outputs cannot be written: {what}; the previous outputs are untouched; free "
                      "space, fix the permissions or give another output folder")


def new_folder(out: Path) -> Path:
    """An empty temporary folder next to ``out`` (``.NAME.tmp-PID-…``) to build the new outputs in, for
    :func:`replace_folder`; a folder that cannot be made is refused as :func:`_os_error` says."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    except OSError as exc:
        raise _os_error(out, exc) from None


@contextlib.contextmanager
def building(out: Path):
    """A new folder to build the outputs of ``out`` in (:func:`new_folder`), removed when anything goes wrong inside
    the ``with`` block; an ``OSError`` is refused as :func:`_os_error` says. The caller swaps the finished folder in
    with :func:`replace_folder` (or removes it with :func:`rmtree` to leave ``out`` as it was)."""
    tmp = new_folder(out)
    try:
        yield tmp
    except OSError as exc:
        rmtree(tmp)
        raise _os_error(out, exc) from None
    except BaseException:
        rmtree(tmp)
        raise


def replace_folder(tmp: Path, out: Path) -> None:
    """Put the finished folder ``tmp`` in place of ``out`` (two renames); the previous ``out`` is removed after.

    A stop requested by a signal is honoured before the first rename. A kill between the renames leaves the
    previous outputs parked as ``.NAME.old-PID``, put back by :func:`recover_interrupted`.
    """
    parent = out.parent
    raise_if_stopped()
    os.chmod(tmp, default_mode(out))
    backup = None
    try:
        if out.exists():
            backup = parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, backup)
        checkpoint("commit")
        os.replace(tmp, out)
    except BaseException as exc:
        if backup is not None and not out.exists():
            os.replace(backup, out)
        if isinstance(exc, OSError):
            raise _os_error(out, exc) from None
        raise
    if backup is not None and not rmtree(backup):
        log.warning(f"{backup}: the previous outputs could not be removed; delete this folder")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def recover_interrupted(out: Path) -> None:
    """Undo what a killed run left next to ``out``: a previous outputs folder parked as ``.NAME.old-PID``.

    A kill between the two renames of :func:`replace_folder` leaves no ``out``: the parked folder is put back.
    A parked folder whose run is gone and whose ``out`` exists is an old copy and is removed (a warning says
    so when it cannot be). Unfinished ``.NAME.tmp-*`` folders are never used as outputs: removed when their
    name carries the pid of a run that is gone (``.NAME.tmp-PID-…``), otherwise named in a warning.
    """
    parent = out.parent
    if not parent.is_dir():
        return
    for parked in sorted(parent.glob(f".{out.name}.old-*")):
        pid = parked.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or _pid_alive(int(pid)) or not parked.is_dir():
            continue
        if not out.exists():
            os.replace(parked, out)
            log.warning(f"{out}: restored the previous outputs from {parked.name} (a run was interrupted while "
                        "replacing them)")
        elif not rmtree(parked):
            log.warning(f"{parked}: an old copy of the outputs that cannot be removed; delete it (chmod -R u+w "
                        "first if it is read-only)")
    strays = []
    for stray in sorted(p for p in parent.glob(f".{out.name}.tmp-*") if p.is_dir()):
        parts = stray.name[len(f".{out.name}.tmp-"):].split("-", 1)  # mkdtemp's own suffix has no "-"
        if len(parts) == 2 and parts[0].isdigit() and not _pid_alive(int(parts[0])) and rmtree(stray):
            continue
        strays.append(stray.name)
    if strays:
        log.warning(f"{parent}: {', '.join(strays)}: unfinished outputs of an interrupted run, never used; "
                    "delete them when no other run is writing")

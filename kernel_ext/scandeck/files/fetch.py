"""Writing a watched run's files out, verified: what ``scandeck files fetch`` does.

Each file version of the run goes under ``DIR`` at its path relative to the
watched root. When the run holds several versions of one path (the file was
rewritten while watched), the newest is written at the path and each older one
beside it with its version before the extension: ``img.tif`` (newest),
``img.v1.tif``, ``img.v2.tif``... (``latest_only``: the newest alone). A run
whose files come from several watched directories (``scandeck watch DIR1 DIR2``,
a run per session) writes each directory's files under a folder named after it
(``DIR/det1/scan_1.raw``, ``DIR/det2/scan_1.raw``; ``det-1``, ``det-2`` when two
directories share a name): the same relative path in two directories is two
files, not two versions of one. A file
already there with the same bytes is left as it is; one with other bytes is
replaced only with ``overwrite``. A path that would leave ``DIR`` (absolute,
or with ``..``) is refused.

The bytes come from wherever :func:`scandeck.files.handler.local_file` finds
them: the original file when this machine sees it, the local cache, the Redis
bus (``watch --transfer``) or the keeper's archive; every copy is checked
against the run's sha256 before it takes its name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..exceptions import ScandeckError
from ..safe_text import printable
from .cache import read_blocks, write_verified
from .follow import PendingFile

__all__ = ["Placed", "copy_verified", "place", "versioned_name"]


@dataclass(frozen=True)
class Placed:
    """Where one file version of a run goes."""

    file: PendingFile
    name: str  # relative posix path under the target directory
    target: Path


def versioned_name(relpath: str, version: int) -> str:
    """The name of an older version of ``relpath``: its version before the extension.

    Examples
    --------
    >>> versioned_name("run1/img.tif", 2)
    'run1/img.v2.tif'
    >>> versioned_name("README", 1)
    'README.v1'
    """
    path = PurePosixPath(relpath)
    return str(path.with_name(f"{path.stem}.v{version}{path.suffix}"))


def _inside(relpath: str) -> PurePosixPath:
    """``relpath`` as a path that stays inside the target directory; ScandeckError otherwise."""
    path = PurePosixPath(relpath)
    if not relpath or path.is_absolute() or ".." in path.parts or "\x00" in relpath or path == PurePosixPath("."):
        raise ScandeckError(
            printable(
                f"the run names a file {relpath!r}, which would be written outside the target "
                "directory; it was not written (the run's documents were not written by scandeck watch?)"
            )
        )
    return path


def _root_of(f: PendingFile) -> str:
    """The watched directory ``f`` was found in: its origin without its relative path."""
    origin, rel = PurePosixPath(f.origin), PurePosixPath(f.relpath).parts
    if rel and origin.parts[-len(rel) :] == rel:
        return str(PurePosixPath(*origin.parts[: -len(rel)]))
    return str(origin.parent)


def _folders(roots: list[str]) -> dict[str, str]:
    """The folder each watched directory's files go under, when a run has files of several."""
    if len(roots) < 2:
        return dict.fromkeys(roots, "")
    names = [PurePosixPath(r).name or "root" for r in roots]
    if len(set(names)) < len(names):
        names = [f"{name}-{i}" for i, name in enumerate(names, 1)]
    return dict(zip(roots, names, strict=True))


def place(files: Iterable[PendingFile], to: Path, *, latest_only: bool = False) -> list[Placed]:
    """Where each file version goes under ``to`` (newest version of a path at the path), in run order.

    Raises :class:`~scandeck.exceptions.ScandeckError` before anything is
    written when a path would leave ``to`` or an older version's name is
    another file's path in the run.
    """
    files = list(files)
    roots = [_root_of(f) for f in files]
    folder = _folders(list(dict.fromkeys(roots)))
    where: list[str] = []  # each file's path under ``to``
    for f, root in zip(files, roots, strict=True):
        rel = _inside(f.relpath).as_posix()
        where.append(_inside(f"{folder[root]}/{rel}").as_posix() if folder[root] else rel)

    newest: dict[str, int] = {}
    for f, path in zip(files, where, strict=True):
        version = int(f.fields["version"])
        newest[path] = max(newest.get(path, version), version)
    paths = set(newest)
    out: list[Placed] = []
    taken: dict[str, PendingFile] = {}
    for f, path in zip(files, where, strict=True):
        version = int(f.fields["version"])
        if version == newest[path]:
            name = path
        elif latest_only:
            continue
        else:
            name = versioned_name(path, version)
            if name in paths:
                raise ScandeckError(
                    printable(
                        f"version {version} of {f.relpath!r} would be written as {name!r}, a file of the "
                        "run by that name; fetch with --latest (newest versions only) or into two directories"
                    )
                )
        if name in taken and taken[name].fields["sha256"] != f.fields["sha256"]:
            raise ScandeckError(
                printable(
                    f"the run holds two different files as version {version} of {f.relpath!r}; fetch with --latest"
                )
            )
        taken[name] = f
        out.append(Placed(f, name, Path(to).joinpath(*PurePosixPath(name).parts)))
    return out


def same_bytes(path: Path, sha256: str, size: int) -> bool:
    """Whether ``path`` already holds the file (size, then sha256)."""
    from .cache import sha256_of

    try:
        return path.stat().st_size == int(size) and sha256_of(path) == sha256
    except OSError:
        return False


def copy_verified(source: Path, target: Path, sha256: str, size: int) -> None:
    """Copy ``source`` to ``target`` through a temporary file beside it, checking size and sha256.

    Raises :class:`~scandeck.exceptions.FileMismatch` naming both hashes (nothing
    is left at ``target`` then).
    """
    write_verified(target, sha256, size, read_blocks(source), what=str(source))

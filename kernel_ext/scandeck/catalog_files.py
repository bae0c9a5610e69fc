"""Named catalogs: the scandeck entries of the Intake catalog files on the search path.

The search path is :func:`scandeck.config.catalog_dirs`: ``$SCANDECK_CATALOGS``,
then ``<data dir>/catalogs``, then the files shipped with scandeck. In each
directory the ``*.yaml`` and ``*.yml`` files are read in name order; the first
definition of a name wins.

Only Intake 2 catalogs (``version: 2``) count, and in them only the entries that
give a scandeck :class:`~scandeck.catalog.Catalog`. Other YAML files are passed
over silently. A file that cannot be read, is not YAML, or says ``version: 2``
but lacks the keys Intake needs is skipped with a logged warning, and named in
the :class:`~scandeck.exceptions.UnknownName` error if the name asked for is not
found elsewhere, since the entry may be in that file.

Examples
--------
>>> from scandeck.catalog_files import list_entries, open_entry
>>> sorted(list_entries())                          # doctest: +SKIP
['beamtime', 'local']
>>> open_entry("local")                             # doctest: +SKIP
<Catalog 'sqlite:///home/me/.local/share/scandeck/store/scandeck.sqlite': 12 runs>
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .config import catalog_dirs, data_dir
from .exceptions import ScandeckError, UnknownName

if TYPE_CHECKING:
    from .catalog import Catalog

__all__ = ["CatalogEntry", "apply_entry_options", "entry_columns_file", "list_entries", "open_entry"]

_log = logging.getLogger(__name__)

# Spelled out rather than imported from .intake_readers: importing that module
# imports intake, and listing names should stay cheap.
_OUTPUT = "scandeck.catalog:Catalog"
_READER = "scandeck.intake_readers:ScandeckReader"
# The keys Intake's Catalog.from_dict indexes unconditionally.
_REQUIRED = ("entries", "data", "aliases", "user_parameters", "metadata")
# Keys Intake makes up for entries added without a name; not worth listing.
_ANONYMOUS = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class CatalogEntry:
    """A named scandeck catalog defined in an Intake catalog file.

    Attributes
    ----------
    name
        What :func:`open_entry` and ``scandeck.open_catalog`` take.
    path
        The catalog file that defines it (the first one on the search path).
    description
        The entry's ``metadata.description``, or ``""``.
    metadata
        The entry's whole ``metadata`` mapping, as written.

    Examples
    --------
    >>> entry = list_entries()["local"]                 # doctest: +SKIP
    >>> entry.path.name, entry.description              # doctest: +SKIP
    ('scandeck.yaml', 'The embedded default store on this machine')
    """

    name: str
    path: Path
    description: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass
class _Scan:
    entries: dict[str, CatalogEntry]
    dirs: list[Path]
    problems: dict[Path, str]  # skipped files and why


def list_entries() -> dict[str, CatalogEntry]:
    """Every named scandeck catalog on the search path, by name, in search order.

    Examples
    --------
    >>> for name, entry in list_entries().items():      # doctest: +SKIP
    ...     print(f"{name:10} {entry.description}  ({entry.path})")
    local      The embedded default store on this machine  (.../catalogs/scandeck.yaml)
    """
    return _scan().entries


def open_entry(name: str) -> Catalog:
    """Open the named entry through Intake, as a :class:`~scandeck.catalog.Catalog`.

    The catalog's :attr:`~scandeck.catalog.Catalog.name` is its store's address, as
    however else that store is opened (one store, one name).

    Raises
    ------
    UnknownName
        No catalog file on the search path defines ``name``; the message lists
        the names that exist and the directories searched.
    ScandeckError
        The entry exists but Intake could not open it, or it did not give a
        scandeck Catalog; the message names the file to fix.

    Examples
    --------
    >>> open_entry("local")                             # doctest: +SKIP
    <Catalog 'sqlite:///home/me/.local/share/scandeck/store/scandeck.sqlite': 12 runs>
    """
    scan = _scan()
    entry = scan.entries.get(name)
    if entry is None:
        raise UnknownName(_unknown_message(name, scan))

    import intake  # only here: it imports many packages

    try:
        result = intake.from_yaml_file(str(entry.path))[name].read()
    except ScandeckError:
        raise  # already says what to do (missing store, unknown scheme, ...)
    except Exception as err:
        # Intake's own errors (bad data reference, unknown reader) do not say
        # which file they came from; add it.
        raise ScandeckError(
            f"catalog entry {name!r} in {entry.path} could not be opened: "
            f"{type(err).__name__}: {err}. Fix the entry in that file."
        ) from err

    from .catalog import Catalog

    if not isinstance(result, Catalog):
        raise ScandeckError(
            f"catalog entry {name!r} in {entry.path} gave a {type(result).__module__}."
            f"{type(result).__qualname__}, not a scandeck Catalog; its reader should be "
            f"{_READER}"
        )
    return apply_entry_options(result, entry)


def apply_entry_options(catalog: Catalog, entry: CatalogEntry) -> Catalog:
    """Give ``catalog``, opened from ``entry`` by any route, what its entry's metadata names:
    its columns file (``columns:``) and the file keeping its facts (``facts:``, Tiled archives)."""
    catalog.columns_file = entry_columns_file(entry)
    facts = _entry_file(entry, "facts", "facts: facts.sqlite")
    if facts is not None:
        from .sources.facts_overlay import FactsOverlay

        if not isinstance(catalog.source, FactsOverlay):
            raise ScandeckError(
                f"catalog entry {entry.name!r} in {entry.path}: facts: is for stores that cannot keep "
                f"comments, tags and computed columns themselves (Tiled archives); {catalog.name} keeps its own"
            )
        catalog.source.use_file(facts)
    return catalog


def _entry_file(entry: CatalogEntry, option: str, example: str) -> Path | None:
    value = entry.metadata.get(option) if isinstance(entry.metadata, Mapping) else None
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ScandeckError(
            f"catalog entry {entry.name!r} in {entry.path}: {option}: must name a file "
            f"(e.g. {example}, relative to the catalog file), not {value!r}"
        )
    return entry.path.parent / Path(value).expanduser()


def entry_columns_file(entry: CatalogEntry) -> Path | None:
    """The columns file an entry names (``columns:`` in its ``metadata``), relative to its catalog file.

    Examples
    --------
    >>> e = CatalogEntry("bt", Path("/cfg/cat.yaml"), metadata={"columns": "bt_columns.py"})
    >>> entry_columns_file(e).as_posix()
    '/cfg/bt_columns.py'
    """
    return _entry_file(entry, "columns", "columns: columns.py")


# -- scanning ------------------------------------------------------------------------------


def _scan() -> _Scan:
    dirs = catalog_dirs()
    scan = _Scan(entries={}, dirs=dirs, problems={})
    for directory in dirs:
        if not directory.is_dir():
            continue
        files = sorted(
            (p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()),
            key=lambda p: p.name,
        )
        for path in files:
            try:
                found = _entries_in(path)
            except _Unusable as err:
                _log.warning("skipping catalog file %s: %s", path, err)
                scan.problems[path] = str(err)
                continue
            for entry in found:
                scan.entries.setdefault(entry.name, entry)
    return scan


class _Unusable(Exception):
    """A catalog file that cannot be used, and why."""


def _entries_in(path: Path) -> list[CatalogEntry]:
    """The scandeck entries one file defines; [] if it is not an Intake 2 catalog."""
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise _Unusable(f"cannot read it ({err})") from err
    except yaml.YAMLError as err:
        raise _Unusable(f"not valid YAML ({err})".replace("\n", " ")) from err
    if not isinstance(content, dict) or content.get("version") != 2:
        return []  # some other YAML file, or an Intake 1 catalog
    missing = [key for key in _REQUIRED if not isinstance(content.get(key), dict)]
    if missing:
        raise _Unusable(
            f"an Intake 2 catalog needs mappings for {', '.join(_REQUIRED)}; "
            f"missing or not a mapping: {', '.join(missing)} (use {{}} for empty ones)"
        )

    readers = {key: spec for key, spec in content["entries"].items() if _gives_catalog(spec)}
    names = [key for key in readers if not _ANONYMOUS.match(str(key))]
    names += [alias for alias, key in content["aliases"].items() if key in readers]
    out = []
    for name in dict.fromkeys(str(n) for n in names):  # keep order, drop repeats
        key = content["aliases"].get(name, name)
        metadata = readers[key].get("metadata") or {}
        description = metadata.get("description", "") if isinstance(metadata, dict) else ""
        out.append(CatalogEntry(name, path, str(description), metadata))
    return out


def _gives_catalog(spec: object) -> bool:
    if not isinstance(spec, dict):
        return False
    output = spec.get("output_instance")
    return output == _OUTPUT or (not output and spec.get("reader") == _READER)


def _unknown_message(name: str, scan: _Scan) -> str:
    if scan.entries:
        available = ", ".join(f"{n} ({e.path})" for n, e in scan.entries.items())
    else:
        available = "none"
    lines = [
        f"no catalog entry named {name!r}.",
        f"Available: {available}.",
        "Searched, in order: " + ", ".join(str(d) for d in scan.dirs) + ".",
    ]
    if scan.problems:
        skipped = "; ".join(f"{p}: {why}" for p, why in scan.problems.items())
        lines.append(f"Skipped unusable catalog files (the entry may be in one): {skipped}.")
    lines.append(
        f"To add {name!r}, define it in a *.yaml Intake catalog file (copy the layout of "
        "scandeck's catalogs/scandeck.yaml) in a directory named in $SCANDECK_CATALOGS "
        f"or in {data_dir() / 'catalogs'}; "
        "or pass a store path or URI instead of a name."
    )
    return "\n".join(lines)

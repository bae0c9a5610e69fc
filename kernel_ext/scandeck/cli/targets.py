"""``--catalog``: which catalog a command works on, opened as :mod:`scandeck.opening` says.

The value is ``--catalog``, else ``$SCANDECK_CATALOG``, else the embedded default
store; how the text is read (a store path, a URI, a catalog name) is
:func:`scandeck.opening.catalog_name`'s decision, not this module's.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from ..opening import ENV_CATALOG, catalog_name
from .errors import CliError

if TYPE_CHECKING:
    from ..catalog import Catalog

__all__ = ["ENV_CATALOG", "add_catalog_option", "default_store_label", "open_target", "target_of"]


def add_catalog_option(parser: argparse.ArgumentParser) -> None:
    """``--catalog NAME|PATH|URI``, for every command that reads or writes runs."""
    parser.add_argument(
        "--catalog",
        metavar="NAME|PATH|URI",
        help=f"the catalog to use: a catalog name, a store directory, a .sqlite file or a URI "
        f"(default: ${ENV_CATALOG}, else the embedded default store)",
    )


def target_of(args: argparse.Namespace) -> str | None:
    """The ``--catalog`` value, else ``$SCANDECK_CATALOG``, else None (the default store)."""
    return args.catalog or os.environ.get(ENV_CATALOG) or None


def open_target(args: argparse.Namespace, *, create: bool = False) -> Catalog:
    """Open the catalog ``--catalog`` names.

    Parameters
    ----------
    args
        Parsed arguments with a ``catalog`` attribute.
    create
        Whether a missing store path may be created (ingest, demo). Reading
        commands refuse, because silently creating an empty store at a mistyped
        path would only show "0 runs".
    """
    from ..opening import open_catalog

    target = target_of(args)
    if target is None:
        return open_catalog()
    name = catalog_name(target)
    if name.kind == "path" and not create:
        path = name.store_path
        if path is not None and not path.exists():
            raise CliError(
                f"no run store at {path}",
                "check the path; 'scandeck ingest' or 'scandeck demo' create a store there",
            )
    return open_catalog(target)


def default_store_label(args: argparse.Namespace) -> str:
    """How to name this catalog to a user: the ``--catalog`` value or "the default store"."""
    target = target_of(args)
    return repr(target) if target else "the default store"

"""The ``scandeck`` command line: list, show, ingest, export runs; run and rerun notebooks.

Every command works on one catalog, chosen with ``--catalog NAME|PATH|URI``
(default: ``$SCANDECK_CATALOG``, else the embedded default store). Errors that
the user can fix print one line on stderr with a hint and exit non-zero:
2 for usage errors (bad arguments, a query that does not parse), 1 for
failures.

The package: :mod:`.main` assembles the parser and runs a command;
:mod:`.errors` (:class:`CliError`, hints), :mod:`.targets` (``--catalog``) and
:mod:`.arguments` (argument types) serve the command modules, one per group:
:mod:`.runs` (ls, show, export, catalogs), :mod:`.write` (ingest, demo),
:mod:`.keeper`, :mod:`.run`, :mod:`.provenance` and :mod:`.rerun`. Library code
never imports from here.

Examples
--------
$ scandeck ls 'plan_name == "scan" and sample == "Ni"' -n 5
$ scandeck show -1
$ scandeck export -1 --format msgpack -o backup/
"""

from __future__ import annotations

from .errors import CliError, report
from .main import main  # the console script scandeck.cli:main (this name hides the module .main)
from .targets import open_target

__all__ = ["CliError", "main", "open_target", "report"]

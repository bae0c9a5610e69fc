"""Reader processes for the transfer tests: they see the bus, not the watched directory.

``python tests/transfer_procs.py read URI UID OUT`` reads every file of watched run UID
through ``scandeck.files`` and writes ``[[relpath, version, sha256 of the bytes read, path], ...]``
to OUT as JSON; ``python tests/transfer_procs.py fetch URI RUN SHA SIZE OUT`` says "reading",
asks the open sources for one file (``files.handler.local_file`` with a path that does not
exist here) and writes ``{"sha256", "path"}`` or ``{"error", "message"}`` to OUT.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import scandeck


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read(uri: str, uid: str, out: str) -> None:
    cat = scandeck.open_catalog(uri)
    rows = [[f.relpath, f.version, _sha(f.path), str(f.path)] for f in scandeck.files(cat[uid])]
    Path(out).write_text(json.dumps(rows))


def fetch(uri: str, run: str, sha256: str, size: str, out: str) -> None:
    from scandeck.exceptions import ScandeckError
    from scandeck.files.handler import local_file

    cat = scandeck.open_catalog(uri)  # kept: sources are asked for files while they are open
    cat.source.start()
    print("reading", flush=True)
    try:
        path = local_file("/nonexistent/on/this/machine.bin", sha256, int(size), run)
    except ScandeckError as err:
        Path(out).write_text(json.dumps({"error": type(err).__name__, "message": str(err)}))
        return
    Path(out).write_text(json.dumps({"sha256": _sha(path), "path": str(path)}))
    cat.close()


if __name__ == "__main__":
    {"read": read, "fetch": fetch}[sys.argv[1]](*sys.argv[2:])

"""A slow instrument for the tests of watched runs: files written in pieces, one after another.

``python tests/file_writer.py DIR N PIECES PAUSE [--lockstep]`` writes ``f000.bin``
... in ``DIR``, each in ``PIECES`` pieces with ``PAUSE`` seconds between them (the
file is open, half-written, meanwhile), and prints ``wrote NAME`` once each file
is closed. With ``--lockstep`` it reads a line from stdin before each file after
the first: a test that answers only once it was handed file ``i`` shows that
file ``i`` reached it before file ``i + 1`` existed. :func:`content` gives the
bytes each file ends with, so a test can check what it read without looking at
the directory.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

#: Bytes per piece.
PIECE = 64 * 1024


def piece(i: int, k: int) -> bytes:
    """Piece ``k`` of file ``i``: deterministic, different for every file and piece."""
    return hashlib.sha256(f"{i}:{k}".encode()).digest() * (PIECE // 32)


def content(i: int, pieces: int) -> bytes:
    """The whole of file ``i``."""
    return b"".join(piece(i, k) for k in range(pieces))


def name(i: int, ext: str = "bin") -> str:
    return f"f{i:03d}.{ext}"


def write(directory: Path, n: int, pieces: int, pause: float, *, lockstep: bool = False, ext: str = "bin") -> None:
    for i in range(n):
        if lockstep and i and not sys.stdin.readline():
            return  # the test is gone
        with open(directory / name(i, ext), "wb") as out:
            for k in range(pieces):
                out.write(piece(i, k))
                out.flush()
                time.sleep(pause)
        print("wrote", name(i, ext), flush=True)


if __name__ == "__main__":
    directory, n, pieces, pause = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    write(directory, n, pieces, pause, lockstep="--lockstep" in sys.argv[5:])

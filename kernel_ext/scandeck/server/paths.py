"""Files the server writes, and only under the server's root directory.

Names that come from records (a notebook's name) are cleaned to a safe file stem,
and every path is resolved and checked to lie inside the root before anything is
created, so neither ``../`` in a name nor a symlinked folder leads outside.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import ApiError

__all__ = ["inside_root", "safe_stem"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
#: Longest stem made from a name: file names stay well under the usual 255-byte limit.
MAX_STEM = 80


def safe_stem(name: str, default: str = "notebook") -> str:
    """``name`` as a file stem: letters, digits, ``-``, ``_`` and inner dots only.

    Examples
    --------
    >>> safe_stem("../../etc/passwd"), safe_stem("peak fit (Ni)"), safe_stem("...")
    ('etc_passwd', 'peak_fit__Ni', 'notebook')
    """
    cleaned = _UNSAFE.sub("_", str(name)).strip("._")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    cleaned = re.sub(r"^[_.]+", "", cleaned)
    return cleaned[:MAX_STEM].rstrip("._") or default


def inside_root(root: str | Path, relative: str | Path, *, create_parent: bool = True) -> Path:
    """The absolute path of ``relative`` under ``root``; refuses anything that resolves outside.

    ``create_parent`` makes the folders in between (each checked again after it exists,
    in case one is a symlink).

    Raises
    ------
    ApiError
        403 ``OutsideRoot`` when the path would leave ``root``.
    """
    base = Path(root).resolve()
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts:
        raise ApiError(403, "OutsideRoot", f"{relative} is not a path inside the server root")
    target = base / rel
    if create_parent:
        target.parent.mkdir(parents=True, exist_ok=True)
    resolved_parent = target.parent.resolve()
    if resolved_parent != base and base not in resolved_parent.parents:
        raise ApiError(
            403,
            "OutsideRoot",
            f"{rel.parent} leads outside the server root (a symlink?); nothing was written",
        )
    return resolved_parent / target.name

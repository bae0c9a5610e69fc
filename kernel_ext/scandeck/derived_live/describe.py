"""A pipeline described for a derived run's start document (``start["pipeline"]``).

The description is JSON, for machines and people alike::

    {
      "format": "scandeck.pipeline/1",
      "summary": "live(primary of 3f2a9c1e) -> map(normalise) -> scan(total) -> to_run(primary)",
      "nodes": [
        {"id": 0, "type": "live", "upstreams": [], "run": "3f2a9c1e-...", "stream": "primary",
         "pages": false, "catalog": "sqlite:///..."},
        {"id": 1, "type": "map", "upstreams": [0],
         "function": {"qualname": "normalise", "module": "__main__", "sha256": "9b1f...",
                      "lines": 3},
         "args": [], "kwargs": {"scale": 2.0}},
        ...
      ],
      "environment": {"python": "3.11.9", "implementation": "CPython", "platform": "Linux-...",
                      "packages": {"numpy": "2.4.0", "scandeck": "0.1.0", "streamz": "0.6.6", ...}}
    }

Nodes are listed sources first (each after its upstreams). A function's ``sha256`` is
of its source text as :func:`inspect.getsource` gives it (for a lambda: the lines it is
written on); None where there is no source (builtins, C functions). Arguments are kept
when they are JSON (numbers, strings, booleans, None, short lists and dicts of them);
anything else as its ``repr``, cut to :data:`MAX_REPR` characters.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import platform
import textwrap
import types
from typing import Any

from ..uris import redact

__all__ = ["FORMAT", "MAX_REPR", "ancestors", "describe", "function_info", "jsonable", "label"]

FORMAT = "scandeck.pipeline/1"
#: Longest ``repr`` kept for an argument that is not JSON.
MAX_REPR = 200
#: Items kept of a list or dict argument.
MAX_ITEMS = 50
#: Distributions named in the environment when installed, besides those the functions come from.
KEY_PACKAGES = ("scandeck", "streamz", "event-model", "bluesky", "numpy", "scipy", "pandas", "xarray")
#: Node attributes worth keeping when they hold plain values (streamz's own parameter names).
_PARAMETERS = ("n", "interval", "returns_state", "with_state", "maxsize", "predicate_name")


def ancestors(node: Any) -> list[Any]:
    """``node`` and every node upstream of it, each after its upstreams (sources first)."""
    order: list[Any] = []
    seen: set[int] = set()

    def visit(item: Any) -> None:
        if id(item) in seen:
            return
        seen.add(id(item))
        for up in item.upstreams:
            if up is not None:
                visit(up)
        order.append(item)

    visit(node)
    return order


def jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` if it is small JSON, else a JSON version of it: repr for what is not JSON.

    Strings are cut to :data:`MAX_REPR` characters, URIs lose their credentials
    (``redis://:secret@host`` -> ``redis://host``): the description is in the start document.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else {"repr": _cut(repr(value))}
    if isinstance(value, str):
        if "://" in value:
            value = redact(value)
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate: no store takes it
                return {"repr": _cut(ascii(value))}
        return _cut(value)
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else repr(value)
    if type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0:
        return jsonable(value.item(), depth)
    if depth < 3 and isinstance(value, (list, tuple)) and len(value) <= MAX_ITEMS:
        return [jsonable(v, depth + 1) for v in value]
    if (
        depth < 3
        and isinstance(value, dict)
        and len(value) <= MAX_ITEMS
        and all(isinstance(k, str) for k in value)
    ):
        return {k: jsonable(v, depth + 1) for k, v in value.items()}
    if callable(value):
        return {"function": function_info(value, depth + 1)}
    return {"repr": _repr(value)}


def _repr(value: Any) -> str:
    kind = type(value)
    if kind.__repr__ is object.__repr__:  # without its address: the same pipeline, the same description
        return str(jsonable(f"<{kind.__module__}.{kind.__qualname__} object>"))
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - someone's __repr__: the description goes on without it
        text = f"<{type(value).__qualname__} object: its repr failed>"
    return str(jsonable(text))


def _cut(text: str) -> str:
    return text if len(text) <= MAX_REPR else text[:MAX_REPR] + "..."


def function_info(fn: Any, depth: int = 0) -> dict[str, Any]:
    """Qualified name, module, sha256 of the source (None if unavailable) of a callable.

    What the source does not say is kept too, as arguments are: a partial's arguments,
    a function's ``defaults`` and ``kwdefaults``, the values of its ``closure`` (the
    variables of the enclosing function it uses), a bound method's ``self``.
    """
    info: dict[str, Any] = {}
    if isinstance(fn, functools.partial):
        info["partial"] = {"args": jsonable(list(fn.args), depth), "keywords": jsonable(dict(fn.keywords), depth)}
        fn = fn.func
    if inspect.ismethod(fn):
        info["self"] = jsonable(fn.__self__, 3)  # its repr: the state a method reads
    named = inspect.isroutine(fn) or inspect.isclass(fn) or isinstance(getattr(fn, "__name__", None), str)
    target = fn if named else type(fn)  # a callable object: its class (numpy ufuncs have a name)
    target = inspect.unwrap(target) if inspect.isfunction(target) else target
    info["qualname"] = str(getattr(target, "__qualname__", None) or getattr(target, "__name__", repr(target)))
    info["module"] = str(getattr(target, "__module__", None) or type(target).__module__)
    if not named:
        info["self"] = {"repr": _repr(fn)}
        call = inspect.getattr_static(target, "__call__", None)  # its method: its source can be found
        # A class's source is looked up by name in its module's file: none for a notebook cell's class.
        target = call if inspect.isfunction(call) else target
    try:
        source = inspect.getsource(target)
    except Exception:  # noqa: BLE001 - OSError, TypeError, and tokenize errors for some lambdas
        info["sha256"] = None
    else:
        if _edited(target, source):
            # The file was edited since the function was imported: its source now is not what runs.
            info["sha256"], info["source"] = None, "edited since imported"
        else:
            info["sha256"] = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
            info["lines"] = source.count("\n") + (not source.endswith("\n"))
    if inspect.isfunction(target) and depth < 2:
        info.update(_captured(target, depth))
    return info


def _edited(fn: Any, source: str) -> bool:
    """True when ``source`` (what the file holds now) does not compile to ``fn``'s code.

    Checked for module-level functions only (a method or a closure compiled on its own
    differs anyway: name mangling, free variables); False when it cannot tell.
    """
    if not inspect.isfunction(fn) or "." in fn.__qualname__ or fn.__closure__:
        return False
    code = fn.__code__
    try:
        compiled = compile(textwrap.dedent(source), code.co_filename, "exec")
    except (SyntaxError, ValueError):
        return False
    for const in compiled.co_consts:
        if isinstance(const, types.CodeType) and const.co_name == code.co_name:
            return (
                const.co_code != code.co_code or const.co_names != code.co_names or _plain(const) != _plain(code)
            )
    return False


def _plain(code: types.CodeType) -> list[Any]:
    """The constants of ``code`` other than nested code objects (whose line numbers differ)."""
    return [c for c in code.co_consts if not isinstance(c, types.CodeType)]


def _captured(fn: Any, depth: int) -> dict[str, Any]:
    """A function's defaults and closure values, as JSON (``{}`` when it has none)."""
    out: dict[str, Any] = {}
    if fn.__defaults__:
        out["defaults"] = jsonable(list(fn.__defaults__), depth + 1)
    if fn.__kwdefaults__:
        out["kwdefaults"] = jsonable(dict(fn.__kwdefaults__), depth + 1)
    closure: dict[str, Any] = {}
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
        try:
            closure[name] = jsonable(cell.cell_contents, depth + 1)
        except ValueError:  # a cell not yet filled
            closure[name] = None
    if closure:
        out["closure"] = closure
    return out


def _short_name(fn: Any) -> str:
    if isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return str(name)


def label(desc: dict[str, Any]) -> str:
    """One node in words for the summary: ``map(normalise)``, ``live(primary of 3f2a9c1e)``."""
    kind = desc["type"]
    if kind == "live":
        return f"live({desc['stream']} of {str(desc['run'])[:8]})"
    if kind == "to_run":
        return f"to_run({desc['stream']})"
    fn = desc.get("function") or desc.get("predicate")
    if fn:
        return f"{kind}({fn['qualname'].rsplit('.', 1)[-1]})"
    return kind


def _node(node: Any, index: dict[int, int], origin: dict[str, Any] | None) -> dict[str, Any]:
    desc: dict[str, Any] = {
        "id": index[id(node)],
        "type": type(node).__name__,
        "upstreams": [index[id(u)] for u in node.upstreams if u is not None and id(u) in index],
    }
    if origin is not None:
        live = origin["live"]
        desc.update(
            type="live",
            run=live.uid,
            stream=origin["stream"],
            pages=origin["pages"],
            catalog=redact(live.source.uri),
        )
        return desc
    name = getattr(node, "name", None)
    if isinstance(name, str) and name and name != desc["type"]:
        desc["name"] = name[:MAX_REPR]
    for attr in ("func", "predicate"):
        fn = getattr(node, attr, None)
        if callable(fn):
            desc["function" if attr == "func" else "predicate"] = function_info(fn)
    args = getattr(node, "args", None)
    if isinstance(args, tuple) and args:
        desc["args"] = jsonable(list(args))
    kwargs = getattr(node, "kwargs", None)
    if isinstance(kwargs, dict) and kwargs:
        desc["kwargs"] = jsonable(kwargs)
    if desc["type"] == "accumulate":
        from streamz.core import no_default

        state = getattr(node, "state", no_default)
        if state is not no_default:
            desc["start"] = jsonable(state)
    for attr in _PARAMETERS:
        value = getattr(node, attr, None)
        if isinstance(value, (bool, int, float, str)):
            desc[attr] = value
    return desc


def environment(functions: list[dict[str, Any]]) -> dict[str, Any]:
    """Python, platform, and versions of the key packages and of the functions' packages."""
    from ..provenance.environment import installed_packages

    installed = installed_packages()
    wanted = set(KEY_PACKAGES)
    for info in functions:
        top = info.get("module", "").split(".", 1)[0].replace("_", "-").lower()
        if top:
            wanted.add(top)
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": {name: installed[name] for name in sorted(wanted) if name in installed},
    }


def describe(nodes: list[Any], origins: dict[int, dict[str, Any]], sink: dict[str, Any]) -> dict[str, Any]:
    """The description of ``nodes`` (as :func:`ancestors` orders them) ending in the ``to_run`` sink.

    ``origins`` maps ``id(stream)`` of the ``scandeck.live`` streams to their origin
    (``{"live", "stream", "pages"}``); ``sink`` holds the to_run node's own fields.
    """
    index = {id(n): i for i, n in enumerate(nodes)}
    described = [_node(n, index, origins.get(id(n))) for n in nodes]
    last = len(described)
    described.append({"id": last, "upstreams": [index[id(nodes[-1])]], **sink, "type": "to_run"})
    functions = [d[k] for d in described for k in ("function", "predicate") if k in d]
    return {
        "format": FORMAT,
        "summary": " -> ".join(label(d) for d in described),
        "nodes": described,
        "environment": environment(functions),
    }


def last_function_name(nodes: list[Any]) -> str | None:
    """The ``__name__`` of the function nearest the end of the pipeline, if it is a usable key."""
    for node in reversed(nodes):
        fn = getattr(node, "func", None)
        if callable(fn):
            name = _short_name(fn)
            return name if name.isidentifier() and not name.startswith("_") else None
    return None

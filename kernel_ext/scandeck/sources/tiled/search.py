"""Scandeck queries answered by a Tiled container of Bluesky runs: counts, pages, OR and NOT.

:func:`.translate.plan` turns a query into Tiled queries; this module evaluates the plan
against the container. An exact part stays a chain of Tiled queries (Tiled ANDs
chained ``search()`` calls), so counts, sorting and offsets come from the server. Tiled
has no OR and no NOT: those become sets of uids (the keys of a search), combined here
and handed back to the server as ``KeysFilter`` (a set to keep) or ``NotIn`` on
``start.uid`` (a set to drop), so the final count and page are still the server's.
Only the candidates of an inexact part (a boolean, ``contains``, a prefix, a query
type :mod:`.translate` does not know) have their metadata downloaded and re-checked
with ``Query.matches``.

Sets of uids travel in the URL: above :data:`URL_BUDGET` characters (about 830 uuids;
httpx refuses a query string past 64 KiB, about 1,300; tiled's server took 1,000) a
set is applied on this side instead, by listing keys. A proxy in front of Tiled may
refuse shorter URLs (a loud 414): lower :attr:`TiledSearch.url_budget` for it.

Nothing is cached between calls: a run's stop document changes what
a query matches without changing the container's length, and Tiled offers no cheap
token for that, so every call asks the server afresh.

Errors of Tiled and httpx propagate unchanged: the source wraps calls in
:func:`.connect.tiled_errors`, which names the server.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tiled import queries as tq

from ...exceptions import InvalidQuery, StoreError
from ...query import Query
from ...safe_text import printable
from .translate import OPEN, AllOf, AnyOf, Leaf, NoneOf, Plan, plan

__all__ = ["TiledSearch", "URL_BUDGET"]

#: Characters of URL-encoded uid lists one request may carry (httpx's limit: 65,536).
URL_BUDGET = 40_000
#: Entries per request when listing (Tiled's largest page).
_PAGE = 300
_NEWEST = (("start.time", -1), ("", -1))  # "" is the insertion order: newest first among equal times
_OLDEST = (("start.time", 1), ("", 1))

#: ``(uid, run node)``: the node as listed, its metadata and structure (how many streams) with it.
Summary = tuple[str, Any]


@dataclass(frozen=True)
class _Chain:
    """Exact within the context it was evaluated in: the context's runs these queries keep."""

    queries: tuple[Any, ...]


@dataclass(frozen=True)
class _Uids:
    """Exactly these runs (all inside the context)."""

    uids: frozenset[str]


_Result = _Chain | _Uids


class TiledSearch:
    """Scandeck queries answered by a Tiled container of Bluesky runs (TiledWriter's layout).

    Parameters
    ----------
    container : tiled Container
        The container client (bluesky-tiled-plugins' ``CatalogOfBlueskyRuns``), whose
        children are runs keyed by uid with metadata ``{"start": ..., "stop": ...}``.

    Notes
    -----
    Order is newest first by ``start.time``, runs with equal times newest-written
    first (Tiled's insertion order), as the embedded stores order by ``(time, seq)``.
    Tiled sorts ``start.time`` through its JSON text, 15 significant digits: runs
    started within ~10 µs of each other fall back on the insertion order.

    Examples
    --------
    >>> search = TiledSearch(container)                          # doctest: +SKIP
    >>> search.count(Key("sample") == "Ni")                      # doctest: +SKIP
    12
    >>> [uid for uid, run in search.page(Query.all(), limit=2)]  # doctest: +SKIP
    ['9f1c...', '03ab...']
    """

    #: Characters of URL-encoded uids one request may carry; lower it for a server behind a
    #: proxy with a short request line (nginx's default buffer is 8 KiB: about 6,000).
    url_budget: int = URL_BUDGET

    def __init__(self, container: Any) -> None:
        self._root = container

    # -- the answers -------------------------------------------------------------------------

    def count(self, query: Query) -> int:
        """Number of runs matching ``query``; always asked of the server afresh."""
        result = self._eval(plan(query), ())
        if isinstance(result, _Uids):  # just listed: counting them again on the server adds a request
            return len(result.uids)
        return len(self._node(result.queries))  # a new node: Tiled's 1 s length cache is empty

    def page(
        self,
        query: Query,
        *,
        limit: int | None = None,
        offset: int = 0,
        before: tuple[float, int] | None = None,
        oldest_first: bool = False,
    ) -> list[Summary]:
        """``(uid, run node)`` of matching runs, newest first (oldest first with ``oldest_first``).

        ``before=(time, seq)`` keeps runs strictly older than ``time`` (strictly newer
        with ``oldest_first``). Tiled knows no ``seq``, so this is a cursor on time
        alone: of several runs with exactly the same start time, a page boundary
        between them skips those beyond it. Start times of one RunEngine differ.
        """
        _check_window(limit, offset)
        steps: list[Plan] = [plan(query)]
        if before is not None:
            steps.append(Leaf((tq.Comparison("gt" if oldest_first else "lt", "start.time", before[0]),)))
        return self._page(steps, limit, offset, _OLDEST if oldest_first else _NEWEST)

    def open_runs(self, query: Query, *, limit: int = 200) -> list[Summary]:
        """Matching runs without a stop document (running, or left incomplete), newest first."""
        _check_window(limit, 0)
        return self._page([plan(query), OPEN], limit, 0, _NEWEST)

    def find_prefix(self, prefix: str, *, limit: int = 11) -> list[Summary]:
        """Runs whose uid starts with ``prefix`` (case-sensitive), sorted by uid, at most ``limit``."""
        _check_window(limit, 0)
        # LIKE ignores ASCII case and reads _ and % as wildcards: it finds a superset
        node = self._node((tq.Like("start.uid", prefix + "%"),))
        found = sorted(uid for uid in node.keys().page_size(_PAGE) if uid.startswith(prefix))
        return self._summaries(found[:limit])

    # -- evaluation --------------------------------------------------------------------------

    def _page(self, steps: list[Plan], limit: int | None, offset: int, order: tuple[Any, ...]) -> list[Summary]:
        if limit == 0:
            return []
        whole = steps[0] if len(steps) == 1 else AllOf(tuple(steps))
        result = self._resolve(whole)
        stop = None if limit is None else offset + limit
        if isinstance(result, _Chain):
            node = self._node(result.queries).sort(*order)
            return list(node.items().page_size(_PAGE)[offset:stop])
        # too many uids for one URL: the server orders the container, this side filters it
        time_bounds = tuple(q for step in steps[1:] if isinstance(step, Leaf) for q in step.queries)
        listing = self._node(time_bounds).sort(*order).keys().page_size(_PAGE)
        ordered = [uid for uid in listing if uid in result.uids]
        return self._summaries(ordered[offset:stop])

    def _resolve(self, whole: Plan) -> _Result:
        """The plan's runs, as one chain of Tiled queries when the URL can carry it."""
        result = self._eval(whole, ())
        if isinstance(result, _Uids) and _fits(self.url_budget, result.uids):
            return _Chain((tq.KeysFilter(keys=sorted(result.uids)),))
        return result

    def _eval(self, node: Plan, ctx: tuple[Any, ...]) -> _Result:
        """The runs of ``node`` among those the exact queries ``ctx`` keep."""
        if isinstance(node, Leaf):
            if node.check is None:
                return _Chain(node.queries)
            return _Uids(frozenset(self._checked(ctx + node.queries, [node.check])))
        if isinstance(node, AnyOf):
            found: set[str] = set()
            for item in node.items:
                found |= self._uids(self._eval(item, ctx), ctx)
            return _Uids(frozenset(found))
        if isinstance(node, NoneOf):
            return self._without(ctx, (), self._uids(self._eval(node.item, ctx), ctx))
        return self._all_of(node, ctx)

    def _all_of(self, node: AllOf, ctx: tuple[Any, ...]) -> _Result:
        leaves, rest = _flatten(node)
        exact = tuple(q for leaf in leaves if leaf.check is None for q in leaf.queries)
        prefilter = tuple(q for leaf in leaves if leaf.check is not None for q in leaf.queries)
        checks = [leaf.check for leaf in leaves if leaf.check is not None]
        inner = ctx + exact + prefilter  # every match of the And is in here
        kept: frozenset[str] | None = None
        dropped: set[str] = set()
        for item in rest:
            if isinstance(item, NoneOf):
                dropped |= self._uids(self._eval(item.item, inner), inner)
            else:
                uids = self._uids(self._eval(item, inner), inner)
                kept = uids if kept is None else kept & uids
        if not checks:
            if kept is not None:
                return _Uids(kept - dropped)
            return self._without(ctx, exact, dropped)
        if kept is not None:
            candidates = self._checked_among(inner, kept, checks)
        else:
            # drop on the server what the URL can carry; the rest below
            candidates = self._checked(
                inner + (_excluding(dropped) if _fits(self.url_budget, dropped) else ()), checks
            )
        return _Uids(frozenset(candidates - dropped))

    def _without(self, ctx: tuple[Any, ...], chain: tuple[Any, ...], dropped: Iterable[str]) -> _Result:
        """The runs ``chain`` keeps in ``ctx``, less ``dropped``: on the server if the URL allows."""
        dropped = frozenset(dropped)
        if not dropped:
            return _Chain(chain)
        if _fits(self.url_budget, dropped, chain):
            return _Chain(chain + _excluding(dropped))
        return _Uids(frozenset(self._keys(ctx + chain)) - dropped)

    # -- requests ----------------------------------------------------------------------------

    def _node(self, queries: tuple[Any, ...]) -> Any:
        node = self._root.new_variation()  # a new client: no cached length
        for q in queries:
            node = node.search(q)
        return node

    def _uids(self, result: _Result, ctx: tuple[Any, ...]) -> frozenset[str]:
        if isinstance(result, _Uids):
            return result.uids
        return frozenset(self._keys(ctx + result.queries))

    def _keys(self, queries: tuple[Any, ...]) -> Iterator[str]:
        return iter(self._node(queries).keys().page_size(_PAGE))

    def _runs(self, queries: tuple[Any, ...]) -> Iterator[tuple[str, Mapping[str, Any], Mapping[str, Any] | None]]:
        """``(uid, start, stop)`` of the runs the queries keep; other kinds of node are no runs."""
        for uid, node in self._node(queries).items().page_size(_PAGE):
            md = node.metadata
            start, stop = md.get("start"), md.get("stop")
            if isinstance(start, Mapping):
                yield uid, start, stop if isinstance(stop, Mapping) else None

    def _checked(self, queries: tuple[Any, ...], checks: list[Query]) -> set[str]:
        return {uid for uid, start, stop in self._runs(queries) if all(c.matches(start, stop) for c in checks)}

    def _checked_among(self, queries: tuple[Any, ...], uids: frozenset[str], checks: list[Query]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(self.url_budget, sorted(uids)):
            found |= self._checked((*queries, tq.KeysFilter(keys=chunk)), checks)
        return found

    def _summaries(self, uids: list[str]) -> list[Summary]:
        """``(uid, run node)`` for ``uids``, in their order; a run gone meanwhile is an error."""
        got: dict[str, Any] = {}
        for chunk in _chunks(self.url_budget, uids):
            for uid, run in self._node((tq.KeysFilter(keys=chunk),)).items().page_size(_PAGE):
                got[uid] = run
        missing = [uid for uid in uids if uid not in got]
        if missing:
            raise StoreError(
                f"run {printable(missing[0])} left the Tiled container while it was being listed "
                f"({len(missing)} run(s) gone); search again"
            )
        return [(uid, got[uid]) for uid in uids]


def _flatten(node: AllOf) -> tuple[list[Leaf], list[Plan]]:
    """The leaves of an And (nested Ands opened) and its other items."""
    leaves: list[Leaf] = []
    rest: list[Plan] = []
    for item in node.items:
        if isinstance(item, AllOf):
            more_leaves, more_rest = _flatten(item)
            leaves += more_leaves
            rest += more_rest
        elif isinstance(item, Leaf):
            leaves.append(item)
        else:
            rest.append(item)
    return leaves, rest


def _excluding(uids: Iterable[str]) -> tuple[Any, ...]:
    uids = sorted(uids)
    # every run has a string start.uid equal to its key (TiledWriter keys runs by it)
    return (tq.NotIn("start.uid", uids),) if uids else ()


def _encoded(uids: Iterable[str]) -> int:
    return len(quote(json.dumps(list(uids))))


def _fits(budget: int, uids: Iterable[str], chain: tuple[Any, ...] = ()) -> bool:
    """Whether ``uids`` and the uid lists already in ``chain`` fit one request's URL."""
    carried = sum(_encoded(q.keys) for q in chain if isinstance(q, tq.KeysFilter))
    carried += sum(_encoded(q.value) for q in chain if isinstance(q, tq.NotIn | tq.In))
    return carried + _encoded(uids) <= budget


def _chunks(budget: int, uids: list[str]) -> Iterator[list[str]]:
    """``uids`` in order, cut into lists that each fit one request."""
    chunk: list[str] = []
    size = 0
    for uid in uids:
        cost = _encoded([uid])  # its brackets' 6 characters pay for the ", " between uids
        if chunk and size + cost > budget:
            yield chunk
            chunk, size = [], 0
        chunk.append(uid)
        size += cost
    if chunk:
        yield chunk


def _check_window(limit: int | None, offset: int) -> None:
    if limit is not None and limit < 0:
        raise InvalidQuery(f"limit must be 0 or more (or None for all), not {limit}")
    if offset < 0:
        raise InvalidQuery(f"offset must be 0 or more, not {offset}")

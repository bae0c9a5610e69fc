"""``scandeck auto``: rerun a recorded notebook on every new scan that matches a query.

:func:`define` makes (or finds) the standing analysis of a record, a query, a
catalog and an exit status; :class:`AutoService` keeps it going: it watches the
catalog for runs that end, reruns each matching one once through the record's
notebook (a rerun record, ``parent`` the record, ``target_scan`` the run, tagged
``auto`` and ``auto:<standing id>``), at most ``workers`` at once, and notes every
step in the ledger (:mod:`.standing`). Only the holder of the analysis's lease
reruns; a second service for the same analysis waits as a standby and takes over
when the first stops or dies.

Examples
--------
>>> standing = define("1a2b3c4d", query='sample == "Ni"')      # doctest: +SKIP
>>> service = AutoService(standing.id)                         # doctest: +SKIP
>>> service.start(); ...; service.close()                      # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import RunNotFound, ScandeckError
from ..query import Query, parse
from ..safe_text import printable
from ..sources.matching import keep_matching
from .auto_define import PAGE, auto_tag, define, describe, ledger_of
from .auto_facts import NOT_ENDED, ended_with, late_matches
from .lease import LeaseKeeper
from .rerun_executors import Result
from .rerun_plan import Target, plan
from .standing import RunRow, lease_owner, owner_text
from .store import ProvStore, open_store

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..sources.protocol import Source
    from .rerun_plan import RerunPlan

__all__ = ["AutoService", "auto_tag", "define", "describe", "ledger_of"]  # the last four: from .auto_define

log = logging.getLogger(__name__)

#: Seconds a lease lasts; the holder renews it every third of that, from a thread of its own
#: (:class:`~.lease.LeaseKeeper`), also while it waits for reruns longer than that.
LEASE_SECONDS = 15.0
#: How long one look at the catalog waits for a change while nothing is in flight.
IDLE_WAIT = 1.0
#: ... and while reruns are in flight (their results are collected between looks).
BUSY_WAIT = 0.05


class AutoService:
    """Keeps one standing analysis going until :meth:`stop`.

    :meth:`serve` blocks; :meth:`start` runs it in a thread.

    ``say`` gets one line per event worth telling a person (a rerun's result, a
    standby, a takeover); its text is printable (nothing of a run goes out raw).
    """

    def __init__(
        self,
        standing_id: str,
        *,
        store: ProvStore | str | Path | None = None,
        say: Callable[[str], None] | None = None,
        on_result: Callable[[RunRow, Result], None] | None = None,
    ) -> None:
        self.store = open_store(store)
        self.ledger = ledger_of(self.store)
        self.standing = self.ledger.get(standing_id)
        self.owner = lease_owner()
        self.say = say or (lambda line: log.info("%s", line))
        self.on_result = on_result
        self.failed: BaseException | None = None
        self.holding = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._inflight: dict[str, Future[Result]] = {}
        self._rows: dict[str, RunRow] = {}
        self._keeper: LeaseKeeper | None = None

    def __repr__(self) -> str:
        return f"AutoService({self.standing.id[:8]} {self.standing.name!r})"

    # -- running ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._guarded, name=f"scandeck-auto-{self.standing.id[:8]}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def close(self, timeout: float | None = None) -> None:
        """Stop and wait: reruns in flight finish and are noted first."""
        self.stop()
        self.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread :meth:`start` started to end (after :meth:`stop`, or a failure)."""
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _guarded(self) -> None:
        try:
            self.serve()
        except BaseException as err:  # noqa: BLE001 - reported through failed and say
            self.failed = err
            self.say(printable(f"error: {type(err).__name__}: {err}"))

    def serve(self) -> None:
        """Wait for the lease, then rerun as runs end, until :meth:`stop`."""
        from ..opening import open_catalog

        if not self._wait_for_lease():
            return
        catalog = open_catalog(self.standing.catalog or None)
        pool = None
        try:
            the_plan = self._plan(catalog)
            the_plan.output_dir.mkdir(parents=True, exist_ok=True)
            from .auto_pool import StandingPool

            pool = StandingPool(the_plan.template, workers=self.standing.workers, dask=self.standing.dask)
            self._recover(catalog)
            self._loop(catalog, the_plan, pool)
        finally:
            try:
                self._drain(catalog)
            finally:
                if pool is not None:
                    pool.close()
                catalog.close()
                self._let_go()

    def _plan(self, catalog: Catalog) -> RerunPlan:
        s = self.standing
        return plan(
            s.record,
            catalog=catalog,
            store=self.store,
            output_dir=s.output_dir,
            catalog_target=s.catalog or None,
            tags=["auto", auto_tag(s.id)],
            check_kernel=s.dask is None,
            targets=[],
        )

    def _wait_for_lease(self) -> bool:
        """Take the lease (and keep it from a thread), waiting as a standby while another holds it."""
        told = False
        while not self._stop.is_set():
            holder = self.ledger.acquire(self.standing.id, self.owner, LEASE_SECONDS)
            if holder is None:
                self._keeper = LeaseKeeper(self.ledger, self.standing.id, self.owner, LEASE_SECONDS)
                self._keeper.start()
                self.holding = True
                if told:
                    self.say(f"took over standing analysis {self.standing.id[:8]}")
                return True
            if not told:
                self.say(
                    printable(
                        f"standby: {owner_text(holder)} runs standing analysis {self.standing.id[:8]}; "
                        "waiting to take over"
                    )
                )
                told = True
            self._stop.wait(LEASE_SECONDS / 3)
        return False

    def _let_go(self) -> None:
        """Stop keeping the lease and give it up (if it is still ours)."""
        if self._keeper is not None:
            self._keeper.stop()
            self._keeper = None
        self.ledger.release(self.standing.id, self.owner)
        self.holding = False

    def _recover(self, catalog: Catalog) -> None:
        """Settle runs a previous holder left claimed: from their rerun records, else pending again."""
        stuck = self.ledger.runs(self.standing.id, ["running"])
        if not stuck:
            return
        tag = auto_tag(self.standing.id)
        saved: dict[str, tuple[bool, str]] = {}
        for rec in reversed(self.store.list(tag=tag)):  # oldest first: a newer record wins
            if rec.target_scan:
                saved[rec.target_scan] = (rec.status == "ok", rec.id)
        for row in stuck:  # it may have died between the record and its values
            if saved.get(row.uid, (False, ""))[0]:
                self._publish(catalog, saved[row.uid][1])
        settled, requeued = self.ledger.reclaim(self.standing.id, saved.get)
        if settled or requeued:
            self.say(f"recovered: {settled} rerun(s) found recorded, {requeued} to run again")

    def _loop(self, catalog: Catalog, the_plan: RerunPlan, pool: Any) -> None:
        source = catalog.source
        query = parse(self.standing.query) if self.standing.query else Query.all()
        token: object = None
        changed = True
        looked = 0.0
        while not self._stop.is_set():
            if self._keeper is None or not self._keeper.held:
                self.holding = False
                self.say(
                    "lost the lease (the store was unreachable too long?); noting the reruns in flight, "
                    "then waiting to take it again"
                )
                self._drain(catalog)
                self._let_go()
                if not self._wait_for_lease():
                    return
                self._recover(catalog)
                continue
            # The catalog is looked at when it changed (or each IDLE_WAIT), not at every pass that
            # collects results: open runs cost a request each on Tiled. The token is renewed only
            # with a look, so a change after it wakes the next wait at once.
            if changed or time.monotonic() - looked >= IDLE_WAIT:
                token = source.change_token()
                self._look(source, query)
                looked = time.monotonic()
            self._collect(catalog)
            self._submit(catalog, the_plan, pool)
            changed = source.wait(token, BUSY_WAIT if self._inflight else IDLE_WAIT)

    def _look(self, source: Source, query: Query) -> None:
        """Note the runs that arrived since the place, and the open ones that ended."""
        sid = self.standing.id
        place = self.ledger.place(sid)
        new = source.runs_since(place, limit=PAGE)
        opened = [(s.uid, s.scan_id) for s in new if s.status in NOT_ENDED]
        finished = [s for s in new if s.status not in NOT_ENDED]
        for row in self.ledger.runs(sid, ["open"]):
            try:
                s = source.get(row.uid)
            except RunNotFound:  # gone from the catalog: nothing to rerun on
                self.ledger.advance(sid, dropped=[row.uid])
                continue
            if s.status not in NOT_ENDED:
                finished.append(s)
        keep = {s.uid for s in keep_matching(source, query, finished) if ended_with(s, self.standing.status)}
        ended = [(s.uid, s.scan_id) for s in finished if s.uid in keep]
        dropped = [s.uid for s in finished if s.uid not in keep]
        seq = new[-1].seq if new else None
        # A query on facts is asked again of ended runs whose facts changed (tagged later, ...).
        mark, late = late_matches(self.ledger, self.standing, source, query, {s.uid for s in finished})
        ended += [(s.uid, s.scan_id) for s in late]
        if opened or ended or dropped or seq is not None or mark is not None:
            self.ledger.advance(sid, seq=seq, opened=opened, ended=ended, dropped=dropped, facts_mark=mark)

    def _submit(self, catalog: Catalog, the_plan: RerunPlan, pool: Any) -> None:
        room = pool.capacity - len(self._inflight)
        for row in self.ledger.claim(self.standing.id, self.owner, room):
            found = self._recorded(row.uid)
            if found is not None:  # a predecessor's rerun recorded after the run was requeued
                ok, record_id = found
                if ok:
                    self._publish(catalog, record_id)
                message = "" if ok else "see the record"
                self.ledger.finish(
                    self.standing.id, row.uid, ok=ok, record_id=record_id, message=message, owner=self.owner
                )
                label = row.scan_id if row.scan_id is not None else row.uid[:8]
                self.say(printable(f"scan {label}: already rerun, record {record_id[:8]}"))
                continue
            self._rows[row.uid] = row
            self._inflight[row.uid] = pool.submit(the_plan.task_for(Target(row.uid, row.scan_id)))

    def _recorded(self, uid: str) -> tuple[bool, str] | None:
        """``(ok, record id)`` of this analysis's newest rerun record of run ``uid``, if there is one.

        Asked before each rerun: a run goes back to pending when the service that claimed it
        lost the lease, and that service's rerun may be recorded after (one indexed query).
        """
        for rec in self.store.list(scan=uid, tag=auto_tag(self.standing.id)):
            if rec.target_scan == uid:
                return rec.status == "ok", rec.id
        return None

    def _collect(self, catalog: Catalog) -> None:
        for uid, future in list(self._inflight.items()):
            if future.done():
                del self._inflight[uid]
                self._noted(catalog, self._rows.pop(uid), future.result())

    def _drain(self, catalog: Catalog) -> None:
        """Wait for the reruns in flight and note them (a stopped service leaves nothing claimed)."""
        for uid, future in list(self._inflight.items()):
            try:
                result = future.result()
            except Exception as err:  # noqa: BLE001 - noted as failed
                result = {"uid": uid, "status": "failed", "record_id": None, "message": str(err)}
            self._noted(catalog, self._rows.pop(uid), result)
        self._inflight.clear()

    def _publish(self, catalog: Catalog, record_id: str) -> None:
        """The rerun's glued values as columns of its run (before the run is noted done: a killed
        service's successor publishes again from the record, which writes the same cells)."""
        from .published import publish_values

        try:
            publish_values(catalog, self.store.get(record_id))
        except (ScandeckError, OSError) as err:  # the rerun stands; its values are in its record
            self.say(printable(f"note: could not publish the values of record {record_id[:8]}: {err}"))

    def _noted(self, catalog: Catalog, row: RunRow, result: Result) -> None:
        ok = result.get("status") == "ok"
        message = result.get("message") or ""
        error = result.get("error") or {}
        if not ok and not message and error:
            message = f"cell {error.get('cell_index')}: {error.get('ename')}: {error.get('evalue')}"
        if ok and result.get("record_id"):
            self._publish(catalog, str(result["record_id"]))
        self.ledger.finish(
            self.standing.id, row.uid, ok=ok, record_id=result.get("record_id"), message=message, owner=self.owner
        )
        label = row.scan_id if row.scan_id is not None else row.uid[:8]
        seconds = float(result.get("seconds") or 0.0)
        line = f"scan {label}: {'ok' if ok else 'failed'} in {seconds:.1f} s"
        if result.get("record_id"):
            line += f", record {str(result['record_id'])[:8]}"
        if not ok and message:
            line += f" ({message.splitlines()[0][:200]})"
        self.say(printable(line))
        if self.on_result is not None:
            try:
                self.on_result(row, result)
            except Exception:  # noqa: BLE001 - a listener's trouble must not stop the service
                log.exception("scandeck: a standing analysis listener failed")

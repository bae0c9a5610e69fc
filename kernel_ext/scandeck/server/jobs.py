"""Rerun jobs: ``scandeck rerun`` in a subprocess per job, its progress read line by line.

:meth:`JobManager.create` checks everything in this process first (the record, its
scan parameter, every scan, the kernel), exactly as the command does, so a bad
request answers 400 and nothing runs. Then it starts ``python -m scandeck.cli rerun
... --progress-json`` in its own session, with the output notebooks and a
``rerun.log`` under ``<root>/reruns/<name>-<id8>-<job>/``. A thread per job reads
one JSON line per finished rerun and calls ``notify(job)``. :meth:`JobManager.cancel`
ends the whole process tree: the command, its worker processes and their kernels.

A subprocess, not a thread: a rerun batch is killable as a whole, and a kernel that
misbehaves cannot take the server with it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import JobNotFound, JobNotRunning
from .paths import inside_root, safe_stem
from .serialize import iso

if TYPE_CHECKING:
    from ..provenance.store import ProvStore
    from .catalogs import CatalogPool

__all__ = ["Job", "JobManager"]

log = logging.getLogger(__name__)

#: Seconds the rerun process tree gets to exit after SIGTERM before it is killed.
TERM_GRACE = 5.0
#: Lines of ``rerun.log`` quoted in a job's message when the command itself failed.
LOG_TAIL = 5


@dataclass
class Job:
    """One batch of reruns of one record (the API's JOB, see :meth:`to_json`)."""

    id: str
    record: str
    name: str
    catalog: str
    scans: list[str]
    scan_ids: list[int | None]
    output_dir: str  # relative to the server root
    started: float = field(default_factory=time.time)
    status: str = "running"
    finished: float | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    message: str | None = None
    process: subprocess.Popen[str] | None = field(default=None, repr=False)
    reader: threading.Thread | None = field(default=None, repr=False)
    killed: list[int] = field(default_factory=list, repr=False)  # pids ended by cancel()

    @property
    def total(self) -> int:
        return len(self.scans)

    def to_json(self) -> dict[str, Any]:
        """The API's JOB."""
        return {
            "id": self.id,
            "record": self.record,
            "name": self.name,
            "catalog": self.catalog,
            "scans": list(self.scans),
            "total": self.total,
            "done": len(self.results),
            "failed": sum(r["status"] != "ok" for r in self.results),
            "status": self.status,
            "started": iso(self.started),
            "finished": iso(self.finished),
            "results": [dict(r) for r in self.results],
            "output_dir": self.output_dir,
            "message": self.message,
        }


class JobManager:
    """Start, follow and cancel rerun jobs; jobs are kept (newest first) while the server runs.

    Parameters
    ----------
    root
        The server's root directory; output goes to ``<root>/reruns/``.
    store
        The provenance store the records are read from and the reruns recorded in.
    catalogs
        Where the scans are looked up (by the request's catalog name).
    notify
        Called with the JOB JSON whenever a job starts, progresses or ends, from any thread.
    """

    def __init__(
        self, root: str | Path, store: ProvStore, catalogs: CatalogPool, notify: Callable[[dict[str, Any]], None]
    ) -> None:
        self.root = Path(root).resolve()
        self.store = store
        self.catalogs = catalogs
        self.notify = notify
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._closed = False

    # -- reading ---------------------------------------------------------------------------------

    def list(self) -> list[dict[str, Any]]:
        """Every job's JSON, newest first."""
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda j: j.started, reverse=True)
            return [j.to_json() for j in jobs]

    def job(self, job_id: str) -> Job:
        """The job ``job_id``; :class:`JobNotFound` if this server has none of that id."""
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"no rerun job {job_id[:40]!r} on this server; GET reruns lists them")
        return job

    def get(self, job_id: str) -> dict[str, Any]:
        """The JOB JSON of ``job_id``."""
        job = self.job(job_id)
        with self._lock:
            return job.to_json()

    # -- starting --------------------------------------------------------------------------------

    def create(self, record: str, scans: Sequence[str], catalog: str, workers: int) -> dict[str, Any]:
        """Check the request, then start the job; returns its JSON. Blocking.

        Raises
        ------
        RecordNotFound, AmbiguousRecord, RunNotFound, AmbiguousUID, RerunSetupError
            The request cannot run; nothing was started or written.
        """
        from ..provenance.rerun import plan

        if self._closed:
            raise JobNotRunning("the server is stopping; no new reruns")
        rec = self.store.get(record)
        cat = self.catalogs.get(catalog)
        job_id = uuid.uuid4().hex[:12]
        rel = Path("reruns") / f"{safe_stem(rec.name)}-{rec.id[:8]}-{job_id}"
        out = inside_root(self.root, rel / "rerun.log", create_parent=False).parent
        the_plan = plan(rec.id, catalog=cat, store=self.store, scans=list(scans), output_dir=out)
        job = Job(
            id=job_id,
            record=rec.id,
            name=rec.name,
            catalog=catalog,
            scans=[t.uid for t in the_plan.targets],
            scan_ids=[t.scan_id for t in the_plan.targets],
            output_dir=rel.as_posix(),
        )
        out = inside_root(self.root, rel / "rerun.log").parent  # now create it, checked again
        target, env = _keyless(self.catalogs.target(catalog))
        command = [
            sys.executable,
            "-m",
            "scandeck.cli",
            "rerun",
            rec.id,
            *[arg for uid in job.scans for arg in ("--scan", uid)],
            "--catalog",
            target,
            "--store",
            str(self.store.directory),
            "--output-dir",
            str(out),
            "--workers",
            str(workers),
            "--no-progress",
            "--progress-json",
        ]
        with open(out / "rerun.log", "w", encoding="utf-8") as logfile:
            # The child keeps its own copy of the descriptor; ours closes with this block.
            job.process = subprocess.Popen(
                command,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=logfile,
                text=True,
                encoding="utf-8",
                errors="replace",
                start_new_session=True,
                env=env,
            )
        with self._lock:
            self._jobs[job.id] = job
        job.reader = threading.Thread(
            target=self._follow, args=(job,), name=f"scandeck-rerun-{job.id}", daemon=True
        )
        job.reader.start()
        log.info("scandeck: rerun job %s: %s on %d scans, pid %s", job.id, rec.id[:8], job.total, job.process.pid)
        data = job.to_json()
        self.notify(data)
        return data

    def _follow(self, job: Job) -> None:
        """The job's thread: read progress lines until the command exits, then settle the status."""
        assert job.process is not None and job.process.stdout is not None
        with job.process.stdout as lines:
            for line in lines:
                result = _parse(line, self.root)
                if result is None:
                    continue
                with self._lock:
                    job.results.append(result)
                    data = job.to_json()
                self.notify(data)
        code = job.process.wait()
        with self._lock:
            if job.status == "running":
                failed = any(r["status"] != "ok" for r in job.results)
                job.status = "success" if code == 0 and not failed and len(job.results) == job.total else "failed"
                if job.status == "failed" and (code not in (0, 1) or len(job.results) < job.total):
                    job.message = f"scandeck rerun exited with status {code}: {self._log_tail(job)}"
                job.finished = time.time()
            data = job.to_json()
        self.notify(data)

    def _log_tail(self, job: Job) -> str:
        try:
            lines = (self.root / job.output_dir / "rerun.log").read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(line.strip() for line in lines[-LOG_TAIL:] if line.strip()) or "(empty log)"

    # -- ending ----------------------------------------------------------------------------------

    def cancel(self, job_id: str) -> dict[str, Any]:
        """End a running job's processes; it becomes ``cancelled``. Blocking (up to ~:data:`TERM_GRACE` s)."""
        job = self.job(job_id)
        with self._lock:
            if job.status != "running":
                raise JobNotRunning(f"rerun job {job.id} already ended ({job.status}); nothing to cancel")
            job.status = "cancelled"
            job.finished = time.time()
            job.message = "cancelled"
            data = job.to_json()
        self.notify(data)
        if job.process is not None:
            job.killed = _end_tree(job.process)
        if job.reader is not None:
            job.reader.join(TERM_GRACE)
        with self._lock:
            return job.to_json()

    def close(self) -> None:
        """Cancel every running job (server stop). Idempotent."""
        self._closed = True
        for job in list(self._jobs.values()):
            if job.status == "running":
                try:
                    self.cancel(job.id)
                except JobNotRunning:
                    pass
            elif job.reader is not None:
                job.reader.join(TERM_GRACE)


def _parse(line: str, root: Path) -> dict[str, Any] | None:
    """A result of a ``--progress-json`` line (output path relative to ``root``), else None."""
    line = line.strip()
    if not line.startswith("{"):
        return None  # anything else a worker printed
    try:
        raw = json.loads(line)
    except ValueError:
        return None
    if not isinstance(raw, dict) or "uid" not in raw or "status" not in raw:
        return None
    output = raw.get("output")
    if output:
        try:
            output = Path(output).resolve().relative_to(root).as_posix()
        except ValueError:
            output = None  # not under the root: nothing the panel could open
    return {
        "uid": raw["uid"],
        "scan_id": raw.get("scan_id"),
        "status": raw["status"],
        "output": output,
        "error": raw.get("error"),
        "record": raw.get("record"),
    }


def _end_tree(process: subprocess.Popen[str]) -> list[int]:
    """SIGTERM the process's session and every descendant (kernels run in sessions of their own),
    SIGKILL what is left after :data:`TERM_GRACE`; returns the pids ended."""
    descendants: list[Any] = []
    try:
        import psutil

        descendants = psutil.Process(process.pid).children(recursive=True)
    except Exception:  # noqa: BLE001 - gone already, or no psutil: the session kill still applies
        pass
    _signal_group(process.pid, signal.SIGTERM)
    for proc in descendants:
        try:
            proc.terminate()
        except Exception:  # noqa: BLE001, S110 - exited meanwhile
            pass
    try:
        process.wait(TERM_GRACE)
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()
    if descendants:
        import psutil

        _, alive = psutil.wait_procs(descendants, timeout=TERM_GRACE)
        for proc in alive:
            try:
                proc.kill()
            except Exception:  # noqa: BLE001, S110
                pass
        psutil.wait_procs(alive, timeout=TERM_GRACE)
    return [process.pid, *(p.pid for p in descendants)]


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # start_new_session: the group id is the command's pid
    except (ProcessLookupError, PermissionError):
        pass


def _keyless(target: str) -> tuple[str, dict[str, str] | None]:
    """A Tiled catalog's key goes to the rerun in its environment, not on its command line (``ps`` shows that)."""
    from ..sources.tiled.connect import uri_option, without_key

    key = uri_option(target, "api_key") if target.startswith("tiled+") else None
    if key is None:
        return target, None
    return without_key(target), {**os.environ, "TILED_API_KEY": key}

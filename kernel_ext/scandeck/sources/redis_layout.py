"""How runs sit in Redis: key names, URI options, connections and the append script.

Under a prefix ``P`` (one per beamline or facility bus):

* ``P:seq``: counter of runs that arrived (a run's ``seq``).
* ``P:runs``: sorted set of run uids scored by ``seq`` (arrival order).
* ``P:run:<uid>``: hash of the run's index: seq, time, scan_id, the start and
  stop documents (msgpack), document/event counts, exit status, the writer's id
  and host/pid, and ``persisted`` once a keeper copied it to the archive.
* ``P:run:<uid>:docs``: stream of the run's documents. The entry id of the
  document at position ``p`` is ``0-(p+1)``, so a reader resumes from any
  position with XRANGE/XREAD, and a writer that retries a document whose reply
  it lost is told "already stored" instead of storing it twice.
* ``P:run:<uid>:desc``: list of its descriptor documents; ``P:run:<uid>:counts``:
  hash of events per descriptor.
* ``P:changes``: capped stream with an entry per stored document (readers block on it).
* ``P:writer:<id>``: a writer's heartbeat key, expiring when the writer is gone.
* ``P:persisted``: set of the uids of runs in Redis that the archive holds too.
* ``P:archive``: URI of the durable catalog that trimmed runs live on in.
* ``P:keeper``: lock of the one active keeper.

A run's facts (:mod:`.redis_facts`), beside its documents:

* ``P:run:<uid>:notes``: list of its annotations (JSON), appended to only;
* ``P:run:<uid>:cells``: hash of its computed cells, column name -> JSON;
* ``P:run:<uid>:sums``: hash of its data summaries, descriptor uid -> JSON
  ``{key: [min, max]}`` (the writer's, replaced as the run goes on);
* ``facts`` in ``P:run:<uid>``: counter of its annotation and cell writes (the
  keeper marks a run persisted only if it copied the facts of that count);
* ``P:facts:seq``: counter of facts writes; ``P:facts``: sorted set of run
  uids scored by the counter at their last facts write (``facts_since``).

A run's transferred files (``scandeck watch --transfer``, :mod:`.redis_files`):

* ``P:run:<uid>:files``: hash of the files sent into the run, sha256 -> JSON
  ``{"size", "chunk", "chunks", "complete"}`` (bytes per chunk, number of
  chunks; ``complete`` once the sender stored them all and verified the hash);
* ``P:run:<uid>:file:<sha256>``: stream of one file's chunks. Chunk ``k`` has
  entry id ``0-(k+1)`` and fields ``offset``, ``sha256`` and ``size`` (of the
  whole file) and ``data``; a sender retrying a chunk whose reply it lost is
  told "already stored". Trimming a run deletes these keys with its others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..exceptions import AuthenticationFailed, ScandeckError, StoreError

#: Our query parameters in a ``redis://`` URI; the others go to redis-py.
_OPTIONS = ("prefix", "archive", "buffer", "heartbeat", "reconnect")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str) -> int:
    """``"64MB"`` -> bytes (k, M, G are powers of 1024)."""
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a size; write e.g. 500kB, 64MB or 2GB")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def _seconds(options: dict[str, str], key: str) -> float:
    """The option ``key`` as a positive number of seconds."""
    seconds = float(options[key])
    if not seconds > 0:
        raise ValueError(f"{key} must be a positive number of seconds, not {options[key]!r}")
    return seconds


@dataclass(frozen=True)
class RedisOptions:
    """A parsed ``redis://host:port/db?prefix=...`` URI.

    ``archive`` is the durable catalog trimmed runs are read from (default: the
    one the keeper published, else the embedded default store); ``buffer`` the
    bytes a writer holds while Redis is away; ``heartbeat`` the seconds after
    which a silent writer's open runs count as ``incomplete``; ``reconnect`` how
    long a reader retries a lost connection before it gives up.
    """

    url: str
    prefix: str = "scandeck"
    archive: str | None = None
    buffer: int = 256 << 20
    heartbeat: float = 10.0
    reconnect: float = 60.0

    @classmethod
    def parse(cls, uri: str) -> RedisOptions:
        parts = urlsplit(uri)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ScandeckError(f"{uri!r} is not a redis:// URI")
        ours: dict[str, str] = {}
        theirs = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            (ours.__setitem__(key, value) if key in _OPTIONS else theirs.append((key, value)))
        url = urlunsplit(parts._replace(query=urlencode(theirs)))
        opts = cls(url=url)
        try:
            if "prefix" in ours:
                if not re.fullmatch(r"[A-Za-z0-9_.\-/]+", ours["prefix"]):
                    raise ValueError(f"prefix {ours['prefix']!r} may hold only letters, digits and _.-/")
                opts = replace(opts, prefix=ours["prefix"])
            if ours.get("archive"):
                opts = replace(opts, archive=ours["archive"])
            if "buffer" in ours:
                opts = replace(opts, buffer=parse_size(ours["buffer"]))
            if "heartbeat" in ours:
                opts = replace(opts, heartbeat=_seconds(ours, "heartbeat"))
            if "reconnect" in ours:
                opts = replace(opts, reconnect=_seconds(ours, "reconnect"))
        except ValueError as err:
            raise ScandeckError(f"bad option in {uri!r}: {err}") from None
        return opts

    @property
    def uri(self) -> str:
        """The canonical URI (what ``Catalog.source.uri`` shows)."""
        parts = urlsplit(self.url)
        query = [(k, v) for k, v in parse_qsl(parts.query)] + [("prefix", self.prefix)]
        if self.archive:
            query.append(("archive", self.archive))
        return urlunsplit(parts._replace(query=urlencode(query, safe="/:")))

    @property
    def where(self) -> str:
        """``host:port/db`` for messages (no password)."""
        parts = urlsplit(self.url)
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or '/0'}"


class Keys:
    """Key names under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.seq = f"{prefix}:seq"
        self.runs = f"{prefix}:runs"
        self.changes = f"{prefix}:changes"
        self.archive = f"{prefix}:archive"
        self.persisted = f"{prefix}:persisted"
        self.keeper = f"{prefix}:keeper"
        self.facts_seq = f"{prefix}:facts:seq"
        self.facts = f"{prefix}:facts"

    def run(self, uid: str) -> str:
        return f"{self.prefix}:run:{uid}"

    def docs(self, uid: str) -> str:
        return f"{self.prefix}:run:{uid}:docs"

    def desc(self, uid: str) -> str:
        return f"{self.prefix}:run:{uid}:desc"

    def counts(self, uid: str) -> str:
        return f"{self.prefix}:run:{uid}:counts"

    def writer(self, writer_id: str) -> str:
        return f"{self.prefix}:writer:{writer_id}"

    def of_run(self, uid: str) -> list[str]:
        return [self.run(uid), self.docs(uid), self.desc(uid), self.counts(uid)]

    def notes(self, uid: str) -> str:
        return f"{self.prefix}:run:{uid}:notes"

    def cells(self, uid: str) -> str:
        return f"{self.prefix}:run:{uid}:cells"

    def sums(self, uid: str) -> str:
        return f"{self.prefix}:run:{uid}:sums"

    def files(self, uid: str) -> str:
        """The hash of a run's transferred files (sha256 -> JSON)."""
        return f"{self.prefix}:run:{uid}:files"

    def file(self, uid: str, sha256: str) -> str:
        """The stream of one transferred file's chunks."""
        return f"{self.prefix}:run:{uid}:file:{sha256}"

    def facts_of(self, uid: str) -> list[str]:
        """The keys of a run's facts: notes, cells, sums."""
        return [self.notes(uid), self.cells(uid), self.sums(uid)]

    def facts_write(self, uid: str, target: str) -> list[str]:
        """The KEYS of :data:`FACTS_SCRIPT` for a write to ``target`` (one of :meth:`facts_of`)."""
        return [self.run(uid), target, self.facts_seq, self.facts, self.changes, self.persisted]


def connect(opts: RedisOptions) -> Any:
    """A redis-py client (hiredis parses when installed); callers handle reconnects."""
    from ..exceptions import require

    redis = require("redis", "redis")
    return redis.Redis.from_url(opts.url, socket_connect_timeout=5, socket_keepalive=True)


def is_auth_error(err: BaseException) -> bool:
    """True when Redis refused the credentials (or wants some): retrying cannot help."""
    import redis

    if isinstance(err, redis.AuthenticationError):
        return True
    return isinstance(err, redis.ResponseError) and str(err).startswith(("NOAUTH", "WRONGPASS"))


def is_connection_error(err: BaseException) -> bool:
    """True for a failure to reach Redis (worth a retry), False for a refused command."""
    import redis

    if is_auth_error(err):  # redis-py makes it a ConnectionError; it is a refusal
        return False
    if isinstance(err, (redis.ConnectionError, redis.TimeoutError, ConnectionError)):
        return True
    # A restarting server answers LOADING / BUSY until it has read its data back.
    return isinstance(err, redis.ResponseError) and str(err).startswith(("LOADING", "BUSY", "MASTERDOWN"))


def auth_failed(opts: RedisOptions, doing: str) -> AuthenticationFailed:
    """The error for refused credentials: where the password goes, never the password.

    Neither the user name is shown: a password written where the user name goes
    (``redis://PASSWORD@host``) would be printed with it.
    """
    parts = urlsplit(opts.url)
    if parts.password:
        problem = "the password in the URI was not accepted (wrong password, or wrong or disabled user)"
    else:
        problem = "the server requires a password and the URI gives none"
    return AuthenticationFailed(
        f"Redis at {opts.where} refused the connection while {doing}: authentication failed, "
        f"{problem}. Put the password in the URI: redis://:PASSWORD@host:port/db, or "
        "redis://USER:PASSWORD@host:port/db for an ACL user (percent-encode @ : / % in it)."
    )


def unreachable(opts: RedisOptions, err: BaseException, doing: str) -> StoreError:
    """The error for a connection that could not be (re-)established."""
    if is_auth_error(err):
        return auth_failed(opts, doing)
    return StoreError(
        f"Redis at {opts.where} is unreachable while {doing}: {err}. Check that redis-server "
        "is running there and reachable from this machine; what is stored stays stored."
    )


#: Store a run's next documents and update its index, atomically. One call takes
#: consecutive documents of one run; it returns one result per document: 1 when
#: stored, 0 when stored before (a retry), -1 for a gap (the server lost earlier
#: documents), -2 for a run another writer holds (a duplicate uid), -3 for a run
#: no longer in Redis (trimmed, or lost by a server restart without persistence).
#: A document for a run the keeper already archived takes the run's ``persisted``
#: mark away, so the run is archived again (completed) before it can be trimmed.
#: KEYS: run, docs, desc, counts, runs, seq, changes, writer, persisted
#: ARGV: uid, writer id, host, pid, token, heartbeat ms, start time, scan_id,
#:       then per document: pos, name, blob, descriptor, n events, exit_status
APPEND_SCRIPT = """
local uid, me = ARGV[1], ARGV[2]
local w = redis.call('HGET', KEYS[1], 'writer')
local n_docs, stored, events, counts, results = nil, 0, 0, {}, {}
for i = 9, #ARGV, 6 do
  local pos, name, blob, desc, n = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
  local r = nil
  if name == 'start' then
    if w then
      if w ~= me then r = -2 end
    else
      local seq = redis.call('INCR', KEYS[6])
      redis.call('HSET', KEYS[1], 'seq', seq, 'time', ARGV[7], 'scan_id', ARGV[8], 'start', blob,
                 'n_docs', 0, 'n_events', 0, 'writer', me, 'host', ARGV[3], 'pid', ARGV[4], 'token', ARGV[5])
      redis.call('ZADD', KEYS[5], seq, uid)
      w, n_docs = me, 0
    end
  elseif not w then
    r = -3
  elseif w ~= me then
    r = -2
  end
  if r == nil then
    if n_docs == nil then n_docs = tonumber(redis.call('HGET', KEYS[1], 'n_docs')) end
    if pos < n_docs then
      r = 0
    elseif pos > n_docs then
      r = -1
    else
      redis.call('XADD', KEYS[2], '0-' .. (pos + 1), 'n', name, 'd', blob, 's', desc)
      n_docs, stored, r = pos + 1, stored + 1, 1
      if n > 0 then
        events = events + n
        counts[desc] = (counts[desc] or 0) + n
      end
      if name == 'descriptor' then redis.call('RPUSH', KEYS[3], blob) end
      if name == 'stop' then redis.call('HSET', KEYS[1], 'stop', blob, 'exit_status', ARGV[i + 5]) end
    end
  end
  results[#results + 1] = r
end
if stored > 0 then
  redis.call('HSET', KEYS[1], 'n_docs', n_docs)
  if events > 0 then
    redis.call('HINCRBY', KEYS[1], 'n_events', events)
    for desc, n in pairs(counts) do redis.call('HINCRBY', KEYS[4], desc, n) end
  end
  if redis.call('HDEL', KEYS[1], 'persisted') == 1 then redis.call('SREM', KEYS[9], uid) end
  redis.call('XADD', KEYS[7], 'MAXLEN', '~', 1000, '*', 'u', uid)
end
redis.call('SET', KEYS[8], '1', 'PX', ARGV[6])
return results
"""


#: Store facts of a run atomically: ``notes`` appends annotations, ``cells`` sets
#: cells by column, ``sums`` sets data summaries by descriptor (only the run's own
#: writer: ARGV[3] is its id). Annotations and cells count in the run's ``facts``
#: counter and take its ``persisted`` mark away, so the keeper copies them to the
#: archive before the run can be trimmed. Every write is numbered in ``P:facts``
#: and wakes the readers blocked on ``P:changes``. Returns the write's number, or
#: -3 for a run not in Redis (trimmed, or never here), -2 for another writer's run.
#: KEYS: run, notes|cells|sums, facts seq, facts, changes, persisted
#: ARGV: uid, 'notes'|'cells'|'sums', writer id (sums) or '', then the entries
#:       (notes: one JSON each; cells and sums: field, JSON pairs)
FACTS_SCRIPT = """
local uid, what = ARGV[1], ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 0 then return -3 end
if what == 'notes' then
  for i = 4, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
else
  if what == 'sums' and redis.call('HGET', KEYS[1], 'writer') ~= ARGV[3] then return -2 end
  for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
if what ~= 'sums' then
  redis.call('HINCRBY', KEYS[1], 'facts', 1)
  if redis.call('HDEL', KEYS[1], 'persisted') == 1 then redis.call('SREM', KEYS[6], uid) end
end
local seq = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[4], seq, uid)
redis.call('XADD', KEYS[5], 'MAXLEN', '~', 1000, '*', 'u', uid)
return seq
"""

"""Live derived runs: ``scandeck.live(run).stream().map(f).to_run(cat)``.

Importing this package registers ``to_run`` on ``streamz.Stream`` (``scandeck.live``
imports it with streamz). ``node`` is the sink, ``writer`` the thread writing the run,
``values`` turns emitted values into event data, ``describe`` writes ``start["pipeline"]``.
"""

from __future__ import annotations

from .node import finish_all, to_run

__all__ = ["finish_all", "to_run"]

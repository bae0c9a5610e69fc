"""Live pipelines: a followed run becomes per-stream tables, then bound code.

``follower`` reads documents in a background thread (through
:class:`scandeck.follow.RunCursor`), ``table`` keeps each stream's rows with their
external data read, ``loop`` runs callbacks on the kernel's own event loop between
user requests, its ``Coalescer`` keeping the latest state and dropping the rest.
"""
